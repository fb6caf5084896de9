/*
 * rooms.c - the daemon's rooms: who may command in them (power levels as
 * the spec rules them), logging in and building the rooms at start-up,
 * their state as the timeline changes it, invites, kicks and bans, and
 * room upgrades (tombstones).  The Matrix calls are the client's
 * (session.h); what they mean for the bot is decided here.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "bot.h"
#include "config.h"
#include "crypto.h"
#include "e2ee.h"
#include "json.h"
#include "log.h"
#include "matrix.h"
#include "msg.h"
#include "outbox.h"
#include "rooms.h"
#include "schedule.h"
#include "session.h"
#include "sync.h"
#include "util.h"

struct room *
bot_room(struct bot *bot, const char *room_id)
{
	for (size_t i = 0; i < bot->nrooms; i++)
		if (!strcmp(bot->rooms[i].id, room_id))
			return &bot->rooms[i];
	return NULL;
}

/* A power level as the spec allows it: an integer within +-(2^53 - 1). */
static int
power_value(const cJSON *v, long *out)
{
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9007199254740991.0 &&
	    v->valuedouble <= 9007199254740991.0))
		return 0;
	*out = (long)v->valuedouble;
	return 1;
}

long
bot_power_level(const cJSON *pl, const char *user)
{
	const cJSON *users;
	long level;

	if (!cJSON_IsObject(pl))
		return 0;
	users = cJSON_GetObjectItemCaseSensitive(pl, "users");
	if (cJSON_IsObject(users) && power_value(
	    cJSON_GetObjectItemCaseSensitive(users, user), &level))
		return level;
	if (power_value(cJSON_GetObjectItemCaseSensitive(pl, "users_default"),
	    &level))
		return level;
	return 0;
}

/* Is user one of the room's creators (sender or additional_creators)? */
static int
is_creator(const cJSON *create, const cJSON *content, const char *user)
{
	const char *sender = json_str(create, "sender");
	const cJSON *more = cJSON_GetObjectItemCaseSensitive(content,
	    "additional_creators"), *v;

	if (sender != NULL && !strcmp(sender, user))
		return 1;
	if (!cJSON_IsArray(more))
		return 0;
	cJSON_ArrayForEach(v, more)
		if (cJSON_IsString(v) && !strcmp(v->valuestring, user))
			return 1;
	return 0;
}

long
bot_room_power(const cJSON *create, const cJSON *pl, const char *user)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(create,
	    "content");
	const char *version, *creator;
	long long v = 1;

	if (!cJSON_IsObject(content))
		content = create;	/* a server before format=event */
	version = json_str(content, "room_version");
	if (version != NULL && str_to_ll(version, 1, 1000000, &v) == -1)
		v = 1;
	/* room versions 12 and later: creators have infinite power */
	if (v >= 12 && is_creator(create, content, user))
		return BOT_POWER_INFINITE;
	if (cJSON_IsObject(pl))
		return bot_power_level(pl, user);
	/* no m.room.power_levels: the creator has 100, everyone else 0 */
	creator = v >= 11 ? json_str(create, "sender") :
	    json_str(content, "creator");
	return (creator != NULL && !strcmp(creator, user)) ||
	    (v >= 12 && is_creator(create, content, user)) ? 100 : 0;
}

int
bot_authorised(const struct bot *bot, const struct room *room,
    const char *sender)
{
	if (room == NULL || !config_is_admin(bot->cfg, sender))
		return 0;
	if (bot->cfg->min_power_level >= 0 &&
	    bot_room_power(room->create, room->power_levels, sender) <
	    bot->cfg->min_power_level)
		return 0;
	return 1;
}

/* ---- room state from the timeline, upgrades ------------------------------- */

void
rooms_update_state(struct bot *bot, struct room *room,
    const struct mx_event *ev)
{
	if (ev->state_key == NULL)
		return;
	if (!strcmp(ev->type, "m.room.encryption")) {
		/* switch at once: the device is made now if need be */
		if (!room->encrypted && bot->e2ee == NULL) {
			char *cause = NULL;

			room->encrypted = 1;
			if (crypto_step(bot, &cause) != STEP_OK) {
				log_warnx("e2ee: %s", cause ? cause : "?");
				e2ee_free(bot->e2ee);
				bot->e2ee = NULL;
			}
			free(cause);
			room->encrypted = 0;
		}
		if (!room->encrypted)
			log_warnx("room %s is now end-to-end encrypted%s",
			    room->id, bot->e2ee != NULL ? "; my messages "
			    "there are encrypted from now on" : ": set "
			    "[matrix] pickle_key_file so that backupbot can "
			    "read it");
		room->encrypted = 1;
		if (ev->content != NULL) {
			cJSON_Delete(room->encryption);
			room->encryption = cJSON_Duplicate(ev->content, 1);
		}
	} else if (!strcmp(ev->type, "m.room.power_levels") &&
	    ev->content != NULL) {
		cJSON_Delete(room->power_levels);
		room->power_levels = cJSON_Duplicate(ev->content, 1);
	} else if (!strcmp(ev->type, "m.room.member")) {
		if (!strcmp(ev->state_key, bot->login.user))
			room->joined = !strcmp(ev->membership, "join");
		if (bot->e2ee != NULL)
			e2ee_members_changed(bot->e2ee, room->id);
	} else if (!strcmp(ev->type, "m.room.tombstone") &&
	    ev->content != NULL && json_str(ev->content,
	    "replacement_room") != NULL && json_str(ev->content,
	    "replacement_room")[0] == '!' &&
	    strcmp(json_str(ev->content, "replacement_room"), room->id) != 0 &&
	    room->replacement == NULL) {
		room->replacement = xstrdup(json_str(ev->content,
		    "replacement_room"));
		log_warnx("room %s was upgraded to %s; following it when "
		    "invited by an admin (or if it is public)",
		    room->configured, room->replacement);
	}
}

/* A configured room whose upgrade (tombstone) points at room_id. */
static struct room *
upgraded_to(struct bot *bot, const char *room_id)
{
	for (size_t i = 0; i < bot->nrooms; i++)
		if (bot->rooms[i].replacement != NULL &&
		    !strcmp(bot->rooms[i].replacement, room_id))
			return &bot->rooms[i];
	return NULL;
}

static enum step room_state(struct bot *, struct room *, char **);

/*
 * Follow a tombstone: join the replacement room (works when invited or
 * public), serve it instead of the old one (schedules and the report
 * thread follow the room), and say so there.  0 once moved.
 */
int
rooms_follow_upgrade(struct bot *bot, struct room *room)
{
	char *esc = mx_escape(room->replacement), *path, *why = NULL;
	char *old = room->id;
	struct mx_resp r;
	struct msg m;
	enum step st;

	path = xasprintf(MX_V3 "/join/%s", esc);
	mx_call(bot->mx, "POST", path, "{}", 30000L, &r);
	free(path);
	free(esc);
	if (r.status != 200) {
		char *d = mx_describe(&r);

		log_info("cannot join the upgraded room %s yet: %s (an admin's "
		    "invite brings me there)", room->replacement, d);
		free(d);
		mx_resp_release(&r);
		return -1;
	}
	mx_resp_release(&r);
	room->id = room->replacement;
	room->replacement = NULL;
	room->joined = 1;
	if ((st = room_state(bot, room, &why)) != STEP_OK) {
		log_warnx("room %s: %s", room->configured, why);
		free(why);
	}
	/* aliases are resolved again: the alias may point here by now */
	if (room->configured[0] == '#') {
		enum step how;
		char *id = session_resolve_room(bot->mx, room->configured, &why,
		    &how);

		if (id != NULL && strcmp(id, room->id) != 0)
			log_warnx("room %s: the alias still points to %s; "
			    "serving the upgraded room %s", room->configured,
			    id, room->id);
		free(id);
		free(why);
		why = NULL;
	}
	if (rooms_filter(bot, &why) != STEP_OK) {
		log_warnx("sync filter after the upgrade: %s", why);
		free(why);
	}
	log_info("moved from %s to the upgraded room %s", old, room->id);
	if (bot->sched != NULL)
		sched_room_moved(bot->sched);
	msg_init(&m);
	msg_textf(&m, "➡️ This room replaces %s (%s): I serve commands here "
	    "now, and schedules and reports continue here.", old,
	    room->configured);
	bot_notice(bot, room->id, &m);
	msg_release(&m);
	free(old);
	return 0;
}

/* ---- the start-up steps, over the Matrix client's session.h ---------- */

enum step
rooms_login(struct bot *bot, char **cause)
{
	const struct config *cfg = bot->cfg;
	struct session_login *l = &bot->login;

	/* the config's strings, borrowed: a reload may have replaced them */
	l->mx = bot->mx;
	l->state = bot->state;
	l->user_id = cfg->user_id;
	l->homeserver = cfg->homeserver;
	l->access_token_file = cfg->access_token_file;
	l->password_file = cfg->password_file;
	/* The E2EE device is kept: a new one would lose its keys. */
	free(bot->e2ee_device);
	bot->e2ee_device = e2ee_stored_device(cfg->state_dir);
	l->device_id = bot->e2ee_device != NULL ? bot->e2ee_device :
	    cfg->device_id;
	l->device_name = cfg->device_name;
	return session_login(l, cause);
}

/* A joined room's state; STEP_OK, or the step and *cause (state kept). */
static enum step
room_state(struct bot *bot, struct room *room, char **cause)
{
	return session_room_state(bot->mx, room->id, &room->encrypted,
	    &room->encryption, &room->power_levels, &room->create, cause);
}

static int
in_list(const cJSON *list, const char *id)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, list)
		if (cJSON_IsString(v) && !strcmp(v->valuestring, id))
			return 1;
	return 0;
}

/* Build bot->rooms from the config: resolve, check membership, state. */
enum step
rooms_build(struct bot *bot, char **cause)
{
	struct config *cfg = bot->cfg;
	enum step how = STEP_OK;
	cJSON *joined;

	*cause = NULL;
	if ((joined = session_joined_rooms(bot->mx, cause, &how)) == NULL)
		return how;
	for (size_t i = 0; i < bot->nrooms; i++) {
		free(bot->rooms[i].id);
		free(bot->rooms[i].configured);
		cJSON_Delete(bot->rooms[i].power_levels);
		cJSON_Delete(bot->rooms[i].create);
		cJSON_Delete(bot->rooms[i].encryption);
		free(bot->rooms[i].replacement);
	}
	free(bot->rooms);
	bot->rooms = xcalloc(cfg->rooms.n, sizeof(*bot->rooms));
	bot->nrooms = 0;
	for (size_t i = 0; i < cfg->rooms.n; i++) {
		struct room *room = &bot->rooms[bot->nrooms];
		char *why = NULL, *id;

		id = session_resolve_room(bot->mx, cfg->rooms.v[i], &why, &how);
		if (id == NULL) {
			if (how == STEP_RETRY) {
				*cause = why;
				cJSON_Delete(joined);
				return STEP_RETRY;
			}
			log_warnx("room %s: %s", cfg->rooms.v[i], why);
			free(why);
			continue;
		}
		room->id = id;
		room->configured = xstrdup(cfg->rooms.v[i]);
		room->joined = in_list(joined, id);
		if (!room->joined)
			room->joined = session_join(bot->mx, id);
		if (room->joined) {
			/* Without its power levels, admins would be refused:
			 * the room is not served until its state answers. */
			enum step st = room_state(bot, room, &why);

			if (st != STEP_OK) {
				*cause = xasprintf("room %s: %s",
				    cfg->rooms.v[i], why);
				free(why);
				free(room->id);
				free(room->configured);
				cJSON_Delete(joined);
				return st == STEP_FATAL ? STEP_RETRY : st;
			}
			if (room->encrypted && cfg->pickle_key_file ==
			    NULL && cfg->encryption_key_file == NULL)
				log_warnx("room %s is end-to-end encrypted: set "
				    "[matrix] pickle_key_file so that backupbot "
				    "can keep an encrypted device and read it",
				    room->configured);
		}
		bot->nrooms++;
	}
	cJSON_Delete(joined);
	if (bot->nrooms == 0) {
		*cause = xstrdup("none of the configured rooms exists");
		return STEP_FATAL;
	}
	return STEP_OK;
}

enum step
rooms_filter(struct bot *bot, char **cause)
{
	const char **ids = xcalloc(bot->nrooms + 1, sizeof(*ids));
	enum step s;

	for (size_t i = 0; i < bot->nrooms; i++)
		ids[i] = bot->rooms[i].id;
	s = session_filter(bot->mx, bot->login.user, ids, bot->nrooms,
	    &bot->filter_id, cause);
	free(ids);
	return s;
}

/* POST a room membership call (join/leave); 0, or -1 with *cause. */
static int
room_call(struct bot *bot, const char *room_id, const char *what,
    char **cause)
{
	char *esc = mx_escape(room_id), *path;
	struct mx_resp r;
	int ok;

	path = xasprintf(MX_V3 "/rooms/%s/%s", esc, what);
	/* Rare and short: a blocking call keeps this simple. */
	mx_call(bot->mx, "POST", path, "{}", 30000L, &r);
	ok = r.status == 200;
	if (!ok)
		*cause = mx_describe(&r);
	mx_resp_release(&r);
	free(path);
	free(esc);
	return ok ? 0 : -1;
}

/* A room we are served in, other than `except`, to tell things in. */
static struct room *
other_room(struct bot *bot, const struct room *except)
{
	for (size_t i = 0; i < bot->nrooms; i++)
		if (&bot->rooms[i] != except && bot->rooms[i].joined &&
		    !bot->rooms[i].encrypted)
			return &bot->rooms[i];
	return NULL;
}

/*
 * rooms.leave: kicked, banned, or our own leave.  The room is marked left
 * (so an admin's re-invite is followed), logged, and said in another room.
 */
void
rooms_left(struct bot *bot, const struct sync_leave *lv)
{
	struct room *room = bot_room(bot, lv->room_id), *other;
	const char *how = !strcmp(lv->membership, "ban") ? "banned" :
	    "removed";
	struct msg m;

	if (room == NULL || !room->joined)
		return;
	room->joined = 0;
	if (!strcmp(lv->sender, bot->login.user))
		return;		/* our own leave */
	log_warnx("%s from %s by %s%s%s; an admin's invite brings me back",
	    how, room->configured, lv->sender[0] ? lv->sender : "someone",
	    lv->reason[0] ? ": " : "", lv->reason);
	if ((other = other_room(bot, room)) == NULL)
		return;
	msg_init(&m);
	msg_textf(&m, "⚠️ I was %s from %s by %s%s%s. Commands there are not "
	    "heard until an admin invites me again.", how, room->configured,
	    lv->sender[0] ? lv->sender : "someone",
	    lv->reason[0] ? ": " : "", lv->reason);
	bot_notice(bot, other->id, &m);
	msg_release(&m);
}

void
rooms_invited(struct bot *bot, const struct sync_invite *inv)
{
	struct room *room = bot_room(bot, inv->room_id);
	char *why = NULL;

	if (room == NULL && config_is_admin(bot->cfg, inv->inviter) &&
	    (room = upgraded_to(bot, inv->room_id)) != NULL) {
		rooms_follow_upgrade(bot, room);
		return;
	}
	if (room == NULL || !config_is_admin(bot->cfg, inv->inviter)) {
		/* Rejected, not left hanging in the invite list. */
		log_info("rejecting an invite to %s from %s: %s",
		    inv->room_id,
		    inv->inviter[0] ? inv->inviter : "an unknown user",
		    room == NULL ? "not a configured room" : "not an admin");
		if (room_call(bot, inv->room_id, "leave", &why) == -1) {
			log_warnx("cannot reject the invite to %s: %s",
			    inv->room_id, why);
			free(why);
		}
		return;
	}
	if (room->joined)
		return;
	if (room_call(bot, inv->room_id, "join", &why) == -1) {
		log_warnx("cannot join %s: %s", inv->room_id, why);
		free(why);
		return;
	}
	log_info("joined %s on %s's invite", inv->room_id, inv->inviter);
	room->joined = 1;
	/* Power levels decide who may command: wait for them. */
	for (int attempt = 0; room_state(bot, room, &why) != STEP_OK;
	    attempt++) {
		log_warnx("room %s: %s; retrying", room->configured, why);
		free(why);
		why = NULL;
		if (attempt == 4) {
			room->joined = 0;
			log_warnx("room %s: not served until its state can be "
			    "read (invite me again)", room->configured);
			return;
		}
		usleep((useconds_t)backoff_delay(attempt, 500, 4000,
		    randombytes_random()) * 1000);
	}
}

