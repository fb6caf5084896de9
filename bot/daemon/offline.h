/*
 * offline.h - commands too old to run, told once per room (offline.c).
 * The list lives in bot->offline (a cJSON object: room id -> entries,
 * at most 50 each) and is freed by offline_flush.
 */
#ifndef BB_OFFLINE_H
#define BB_OFFLINE_H

struct bot;
struct mx_event;

/* Remember that ev (cmdline as typed) in room_id was not run, and why. */
void offline_add(struct bot *bot, const char *room_id,
    const struct mx_event *ev, const char *cmdline, const char *why);
/* Post the list to each room (bot_notice) and empty it. */
void offline_flush(struct bot *bot);

#endif
