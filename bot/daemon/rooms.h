/*
 * rooms.h - the daemon's rooms (rooms.c): the start-up steps that log in,
 * build bot->rooms and upload the sync filter, and what the timeline and
 * sync say of rooms (state, invites, leaves, upgrades).  Power levels
 * and bot_room are in bot.h.
 */
#ifndef BB_ROOMS_H
#define BB_ROOMS_H

#include "session.h"

struct bot;
struct room;
struct mx_event;
struct sync_leave;
struct sync_invite;

/* Start-up steps (and reload): STEP_OK, or the step and *cause. */
enum step rooms_login(struct bot *bot, char **cause);
enum step rooms_build(struct bot *bot, char **cause);
enum step rooms_filter(struct bot *bot, char **cause);

/* A state event of room's timeline or state section. */
void rooms_update_state(struct bot *bot, struct room *room,
    const struct mx_event *ev);
/* rooms.leave: kicked, banned, or our own leave. */
void rooms_left(struct bot *bot, const struct sync_leave *lv);
/* rooms.invite: an admin's invite to a configured (or upgraded) room is
 * followed; every other invite is rejected. */
void rooms_invited(struct bot *bot, const struct sync_invite *inv);
/* Follow room's tombstone; 0 once moved. */
int rooms_follow_upgrade(struct bot *bot, struct room *room);

#endif
