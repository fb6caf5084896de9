/*
 * status.h - !status (handlers/status.c): the answer is posted at once
 * from what the daemon knows, and edited in place when the health probe
 * job (reachable, versions, sizes, remotes, disk) has reported.
 */
#ifndef BB_STATUS_H
#define BB_STATUS_H

struct bot;
struct job;

/* The probe job of a !status ended: edit the answer with its facts. */
void status_probe_done(struct bot *bot, const struct job *j);

#endif
