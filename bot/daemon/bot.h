/*
 * bot.h - the daemon: configuration, Matrix session, rooms, and the
 * command dispatcher.  bot_run() is the event loop; handlers talk back
 * through bot_reply() and bot_edit().
 */
#ifndef BB_BOT_H
#define BB_BOT_H

#include <limits.h>
#include <stdint.h>
#include <time.h>

#include "cmd.h"
#include "session.h"
#include "version.h"

struct config;
struct jobs;
struct approvals;
struct sched;
struct msg;
struct mx;
struct outbox;
struct state;
struct mx_event;
struct cJSON;
struct e2ee;

struct room {
	char		*id;
	char		*configured;	/* as written in bot.conf */
	int		 joined;
	int		 encrypted;
	struct cJSON	*encryption;	/* m.room.encryption content, or NULL */
	struct cJSON	*power_levels;	/* content, or NULL */
	char		*replacement;	/* m.room.tombstone: upgraded to, or NULL */
	int		 tried_replacement;	/* joined it directly once */
	struct cJSON	*create;	/* m.room.create: the event, or its content
					 * from a server before Matrix 1.16 */
};

struct refusal {
	char	*user;
	int64_t	 at;
};

struct bot {
	struct config	*cfg;
	struct mx	*mx;
	struct outbox	*outbox;
	struct state	*state;
	struct jobs	*jobs;
	struct approvals *approvals;	/* restore requests */
	struct sched	*sched;		/* schedules, alerts */
	/* who we are (login.user, login.device) and the tokens' upkeep */
	struct session_login login;
	char		*filter_id;
	struct room	*rooms;
	size_t		 nrooms;
	time_t		 started;
	int64_t		 first_start;	/* state_dir's first start, ms, our clock */
	int		 first_sync;	/* the first sync after start-up */
	int		 batch_acts;	/* this batch had a command that acts */
	int64_t		 last_sync;	/* ms, our clock: last batch recorded */
	struct refusal	 refusals[64];
	/* commands with a relation of their own: no thread roots (ring) */
	char		*unthreadable[32];
	size_t		 unthreadable_next;
	/* "while I was offline" list, per room, built during the first sync */
	struct cJSON	*offline;
	struct e2ee	*e2ee;		/* NULL: no pickle key, E2EE off */
	char		*e2ee_device;	/* the kept E2EE device's id, or NULL */
	char		*undecryptable[128];	/* "sender session" noticed */
	size_t		 undecryptable_next;
};

/*
 * Entry points of main.c's sub-commands.  Both return the process exit
 * status.  bot_run is the daemon; bot_check prints one line per finding.
 */
int bot_run(const char *config_path);
int bot_check(const char *config_path);
/*
 * The daemon's pieces without the loop (bot_run and bot_check share
 * them): config, state, outbox, approvals and the HTTP client.  0, or -1
 * reported (on stdout with "error: " when quiet); bot_free in both cases.
 */
int bot_open(struct bot *bot, const char *config_path, int quiet);
void bot_free(struct bot *bot);

/*
 * Reply to a command in its thread.  Builds the content from m (released
 * by the caller) and queues it.  Returns the outbox seq (for bot_edit).
 */
uint64_t bot_reply(struct cmd_ctx *ctx, struct msg *m);
/* Replace the text of an earlier reply (progress reports). */
uint64_t bot_edit(struct bot *bot, const char *room_id, uint64_t seq,
    struct msg *m);
/* Queue a top-level notice in a room. */
uint64_t bot_notice(struct bot *bot, const char *room_id, struct msg *m);

struct room *bot_room(struct bot *bot, const char *room_id);

/*
 * Authorisation: 1 if sender may command the bot in room.  Exposed for
 * the tests.
 */
int bot_authorised(const struct bot *bot, const struct room *room,
    const char *sender);
/* Power level of user in a room's m.room.power_levels content. */
long bot_power_level(const struct cJSON *power_levels, const char *user);
/*
 * Power level of user in a room as the spec rules it: creators of room
 * version 12 and later have infinite power (BOT_POWER_INFINITE); with no
 * power_levels (NULL) the creator has 100.  create is the m.room.create
 * event (or its content from an older server), may be NULL.
 */
#define BOT_POWER_INFINITE	LONG_MAX
long bot_room_power(const struct cJSON *create, const struct cJSON *power_levels,
    const char *user);

/*
 * Handle one timeline event (after the seen check).  backlog: it came in
 * the first sync after a restart.  Exposed for the fuzzer.
 */
void bot_handle_event(struct bot *bot, struct room *room,
    const struct mx_event *ev, int backlog);

#endif
