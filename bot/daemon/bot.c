/*
 * bot.c - the daemon's event loop: /sync long-poll, gap filling, command
 * dispatch, the outbox sender, signals.
 *
 * Order of durability for a sync batch: a command's replies are queued in
 * memory with txnIds derived from the command (outbox.h) and the first
 * goes out at once.  When they are answered (COMMIT_WAIT_MS at most),
 * batch_commit stores in the outbox each reply the homeserver has not
 * accepted (fsynced, tagged with the command's event id), then the seen
 * journal records the command, then next_batch moves on.  The fsyncs no
 * longer precede the reply, and an answered reply is never written.  A
 * crash before the seen journal leaves the command unseen: it is handled
 * again and its replies, named as before, are deduplicated by the
 * homeserver, so none is lost or given twice.  That wait is only for
 * batches of commands that read (CMD_READONLY): a batch with a command
 * that acts is made durable right after its replies are sent, so a crash
 * does not run it twice.  On start-up, commands with
 * replies still queued count as seen.
 */
#include <sys/signalfd.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

#include "approval.h"
#include "bot.h"
#include "metrics.h"
#include "schedule.h"
#include "config.h"
#include "e2ee.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "matrix.h"
#include "msg.h"
#include "offline.h"
#include "outbox.h"
#include "crypto.h"
#include "rooms.h"
#include "pipeline.h"
#include "session.h"
#include "state.h"
#include "sync.h"
#include "util.h"

#define REFUSAL_INTERVAL_MS	(3600 * 1000)
#define GAP_PAGE_LIMIT		100
#define GAP_MAX_PAGES		50
#define SEND_TIMEOUT_MS		30000L
#define STOP_GRACE_MS		10000
#define SYNC_BACKOFF_MAX_MS	10000
#define COMMIT_WAIT_MS		250

/* A room's gap being filled from /messages. */
struct gap {
	struct bot	*bot;
	struct sync_room *room;
	char		*from;		/* next page token */
	struct mx_event	*events;	/* collected, oldest first */
	size_t		 nevents;
	int		 pages;
	int		 attempts;
	int		 done;
	int64_t		 not_before;
	struct mx_call	*call;
};

/* The loop's own state, beside struct bot. */
struct loop {
	struct bot		*bot;
	int			 sigfd;
	int			 stopping;
	int64_t			 stop_deadline;
	int			 reload;
	/* sync */
	struct mx_call		*sync_call;
	int64_t			 sync_not_before;
	char			*sync_since;	/* the position it asked from */
	int64_t			 sync_sent;	/* when (mono ms) */
	long			 sync_wait;	/* its timeout, ms */
	int			 sync_stalls;	/* answers at once, no progress */
	/* a dispatched batch waiting for its replies' answers (batch_commit) */
	char			*commit_batch;	/* its next_batch, or NULL */
	int64_t			 commit_by;
	int			 commit_first_sync;
	int			 commit_first_ever;
	int			 sync_failures;
	struct sync_batch	 batch;		/* being gap-filled */
	int			 have_batch;
	struct gap		*gaps;
	size_t			 ngaps;
	/* outbox */
	struct mx_call		*send_call;
	int64_t			 approval_wait;	/* ms to the next expiry */
	int64_t			 sched_wait;	/* ms to the next schedule */
	struct outbox_item	*sending;
	int			 fatal;
	/* a refused access token (401), being recovered */
	struct mx_resp		 auth_resp;
	int			 auth_lost;
	int			 auth_attempts;
	int64_t			 auth_not_before;
};


/* ---- replies ---------------------------------------------------------- */

uint64_t
bot_reply(struct cmd_ctx *ctx, struct msg *m)
{
	cJSON *c = msg_content(m, MSG_MAX_CONTENT);

	msg_set_thread(c, ctx->thread_root, ctx->event_id);
	return outbox_push(ctx->bot->outbox, ctx->room_id, "m.room.message", c,
	    0, ctx->event_id);
}

uint64_t
bot_edit(struct bot *bot, const char *room_id, uint64_t seq, struct msg *m)
{
	cJSON *c = msg_content(m, MSG_MAX_CONTENT / 2);

	return outbox_push(bot->outbox, room_id, "m.room.message",
	    msg_make_edit(c, ""), seq, NULL);
}

uint64_t
bot_notice(struct bot *bot, const char *room_id, struct msg *m)
{
	return outbox_push(bot->outbox, room_id, "m.room.message",
	    msg_content(m, MSG_MAX_CONTENT), 0, NULL);
}

static void
react(struct bot *bot, const char *room_id, const char *event_id,
    const char *key)
{
	outbox_push(bot->outbox, room_id, "m.reaction",
	    msg_reaction(event_id, key), 0, event_id);
}

/* A one-line reply in the command's thread. */
static void
reply_line(struct cmd_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply_line(struct cmd_ctx *ctx, const char *fmt, ...)
{
	struct msg m;
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	msg_init(&m);
	msg_text(&m, s);
	bot_reply(ctx, &m);
	msg_release(&m);
	free(s);
}

/* ---- commands --------------------------------------------------------- */

static int
refused_recently(struct bot *bot, const char *user, int64_t now)
{
	struct refusal *oldest = &bot->refusals[0];

	for (size_t i = 0; i < nitems(bot->refusals); i++) {
		struct refusal *r = &bot->refusals[i];

		if (r->user != NULL && !strcmp(r->user, user)) {
			if (now - r->at < REFUSAL_INTERVAL_MS)
				return 1;
			r->at = now;
			return 0;
		}
		if (r->user == NULL || r->at < oldest->at)
			oldest = r;
	}
	free(oldest->user);
	oldest->user = xstrdup(user);
	oldest->at = now;
	return 0;
}

/* Older than backlog_max_age, judged by the event's age on our clock. */
static int
too_old(const struct bot *bot, const struct mx_event *ev)
{
	return ev->when > 0 &&
	    now_ms() - ev->when > bot->cfg->backlog_max_age * 1000;
}

void
bot_handle_event(struct bot *bot, struct room *room, const struct mx_event *ev,
    int backlog)
{
	const struct cmd_entry *ce;
	struct cmd_ctx ctx;
	const char *line;
	char *cause = NULL, *suggest = NULL;
	char **argv = NULL;
	int argc;

	/*
	 * The time rule: nothing from before this state_dir's first start is
	 * ever executed, whichever sync batch (a stale cached one, a replay, a
	 * rejoin) brings it.  ev->when is dated with the server's age, so a
	 * skewed clock neither runs history nor drops new commands.
	 */
	if (bot->first_start > now_ms())
		bot->first_start = now_ms();	/* our clock went back */
	if (ev->when > 0 && ev->when < bot->first_start)
		return;
	if (ev->redacted)
		return;		/* withdrawn before we saw it */
	if (!strcmp(ev->type, "m.room.redaction") && ev->redacts[0] == '$') {
		bot->batch_acts = 1;	/* may withdraw a vote */
		approvals_redaction(bot, room->id, ev->redacts);
		return;
	}
	if (!strcmp(ev->type, "m.reaction") &&
	    strcmp(ev->sender, bot->login.user) != 0 && ev->event_id[0] == '$') {
		/* ✅/❌ on a restore plan; from admins only */
		if (bot_authorised(bot, room, ev->sender)) {
			bot->batch_acts = 1;	/* a vote may start a restore */
			approvals_reaction(bot, ev, backlog);
		}
		return;
	}
	if (strcmp(ev->type, "m.room.message") != 0 ||
	    !strcmp(ev->sender, bot->login.user) ||
	    strcmp(ev->msgtype, "m.text") != 0 ||
	    !strcmp(ev->rel_type, "m.replace") || ev->has_new_content ||
	    ev->event_id[0] != '$')
		return;
	if ((line = cmd_extract(ev->body, bot->cfg->command_prefix)) == NULL)
		return;
	memset(&ctx, 0, sizeof(ctx));
	ctx.bot = bot;
	ctx.room_id = room->id;
	ctx.event_id = ev->event_id;
	ctx.sender = ev->sender;
	ctx.thread_root = !strcmp(ev->rel_type, "m.thread") &&
	    ev->rel_event[0] == '$' ? ev->rel_event : ev->event_id;
	if (ev->rel_type[0] != '\0' && strcmp(ev->rel_type, "m.thread") != 0) {
		/* a reference/annotation cannot root a thread: replies to it
		 * go as plain replies (see send_next) */
		char **slot = &bot->unthreadable[bot->unthreadable_next++ %
		    nitems(bot->unthreadable)];

		free(*slot);
		*slot = xstrdup(ev->event_id);
	}

	if (!bot_authorised(bot, room, ev->sender)) {
		log_warnx("refused a command from %s in %s: not an admin%s",
		    ev->sender, room->id, bot->cfg->min_power_level >= 0 ?
		    " or below min_power_level" : "");
		if (!backlog && !too_old(bot, ev) &&
		    !refused_recently(bot, ev->sender, mono_ms()))
			reply_line(&ctx, "Sorry, %s: only the configured "
			    "admins can give me commands.", ev->sender);
		return;
	}
	if (too_old(bot, ev)) {
		char *first = xstrndup(line, strcspn(line, "\n"));
		char *shown = xasprintf("%s%s", bot->cfg->command_prefix,
		    first);

		free(first);

		log_info("not running %s's command: sent %llds ago, more than "
		    "backlog_max_age", ev->sender,
		    (long long)((now_ms() - ev->when) / 1000));
		offline_add(bot, room->id, ev, shown, "too old");
		free(shown);
		return;
	}
	log_info("command from %s in %s: %.80s", ev->sender, room->id, line);
	if ((argc = argv_split(line, &argv, &cause)) <= 0) {
		reply_line(&ctx, "Cannot read that command: %s.",
		    cause != NULL ? cause : "empty");
		free(cause);
		argv_free(argc, argv);
		return;
	}
	ctx.argc = argc;
	ctx.argv = argv;
	if ((ce = cmd_find(argv[0], &suggest)) == NULL) {
		if (suggest != NULL)
			reply_line(&ctx, "Unknown command \"%s\", did you mean "
			    "%s%s? Try %shelp.", argv[0],
			    bot->cfg->command_prefix, suggest,
			    bot->cfg->command_prefix);
		else
			reply_line(&ctx, "Unknown command \"%s\". Try %shelp.",
			    argv[0], bot->cfg->command_prefix);
		free(suggest);
	} else if (argc - 1 < ce->min_args ||
	    (ce->max_args >= 0 && argc - 1 > ce->max_args)) {
		char *u = cmd_usage(ce, bot->cfg->command_prefix);

		reply_line(&ctx, "Usage: %s", u);
		free(u);
	} else if ((ce->flags & CMD_DANGEROUS) && backlog) {
		reply_line(&ctx, "This %s%s was sent while I was offline; I do "
		    "not run it from the backlog. Ask again if it is still "
		    "wanted.", bot->cfg->command_prefix, ce->name);
	} else {
		if (ce->flags & CMD_SLOW)
			react(bot, room->id, ev->event_id, "👀");
		if (!(ce->flags & CMD_READONLY))
			bot->batch_acts = 1;
		ce->exec(&ctx);
	}
	argv_free(argc, argv);
}

/* ---- sync ------------------------------------------------------------- */

/* A later event of the same batch redacts ev[i]: it is not run. */
static int
redacted_later(const struct mx_event *ev, size_t n, size_t i)
{
	for (size_t k = i + 1; k < n; k++)
		if (!strcmp(ev[k].type, "m.room.redaction") &&
		    !strcmp(ev[k].redacts, ev[i].event_id))
			return 1;
	return 0;
}



static void
handle_events(struct bot *bot, struct room *room, struct mx_event *ev,
    size_t n, int backlog)
{
	for (size_t i = 0; i < n; i++) {
		rooms_update_state(bot, room, &ev[i]);
		if (ev[i].event_id[0] == '\0' ||
		    state_seen(bot->state, ev[i].event_id))
			continue;
		/* its replies are named by it (outbox.h) */
		outbox_command(bot->outbox, ev[i].event_id);
		if (redacted_later(ev, n, i))
			;	/* redacted in this batch: not run */
		else if (room->encrypted && bot->e2ee != NULL &&
		    ev[i].state_key == NULL) {
			struct mx_event plain;
			int r = crypto_room_event(bot, room, &ev[i], &plain, backlog);

			if (r == 0) {
				bot_handle_event(bot, room, &plain, backlog);
				mx_event_release(&plain);
			} else if (r == 1)
				bot_handle_event(bot, room, &ev[i], backlog);
		} else
			bot_handle_event(bot, room, &ev[i], backlog);
		outbox_command(bot->outbox, NULL);
		state_mark_seen(bot->state, ev[i].event_id);
	}
}

static void
gaps_release(struct loop *l)
{
	for (size_t i = 0; i < l->ngaps; i++) {
		mx_cancel(l->bot->mx, l->gaps[i].call);
		free(l->gaps[i].from);
		mx_events_free(l->gaps[i].events, l->gaps[i].nevents);
	}
	free(l->gaps);
	l->gaps = NULL;
	l->ngaps = 0;
}

static void send_next(struct loop *l);
static void batch_commit(struct loop *l);
static void sync_start(struct loop *l, const char *since);

/*
 * Test-only (tests/fault): with BACKUPBOT_TEST_FAULT=die-after-reply, die
 * by SIGKILL as the homeserver's answer to a reply to a command arrives:
 * a batch of commands that read is not yet stored then (the crash that
 * the reply's txnId, derived from its command, makes harmless); one with
 * a command that acts already is (the command is not run again).
 */
static void
fault_die_after_reply(const struct outbox_item *it)
{
	const char *f = getenv("BACKUPBOT_TEST_FAULT");

	if (f != NULL && strcmp(f, "die-after-reply") == 0 && it != NULL &&
	    it->source_event != NULL)
		raise(SIGKILL);
}

/* Every command of the batch is recorded: commit the position. */
static void
batch_finish(struct loop *l)
{
	struct bot *bot = l->bot;
	struct sync_batch *b = &l->batch;
	int backlog = bot->first_sync && state_next_batch(bot->state) != NULL;
	int first_ever = state_next_batch(bot->state) == NULL;

	/* Room keys first: the messages of this batch may need them. */
	if (bot->e2ee != NULL && b->e2ee != NULL)
		e2ee_handle_sync(bot->e2ee, bot->mx, b->e2ee);
	for (size_t i = 0; i < b->nleaves; i++)
		rooms_left(bot, &b->leaves[i]);
	for (size_t i = 0; i < b->ninvites; i++)
		rooms_invited(bot, &b->invites[i]);
	for (size_t i = 0; i < b->nrooms; i++) {
		struct sync_room *sr = &b->rooms[i];
		struct room *room = bot_room(bot, sr->room_id);

		if (room == NULL)
			continue;	/* not ours: the filter let it through */
		for (size_t k = 0; k < sr->nstate; k++)
			rooms_update_state(bot, room, &sr->state[k]);
		if (first_ever) {
			/* History is never executed: just remember it. */
			for (size_t k = 0; k < sr->nevents; k++) {
				rooms_update_state(bot, room, &sr->events[k]);
				if (sr->events[k].event_id[0] != '\0')
					state_mark_seen(bot->state,
					    sr->events[k].event_id);
			}
			continue;
		}
		for (size_t g = 0; g < l->ngaps; g++)
			if (l->gaps[g].room == sr)
				handle_events(bot, room, l->gaps[g].events,
				    l->gaps[g].nevents, backlog);
		handle_events(bot, room, sr->events, sr->nevents, backlog);
	}
	for (size_t i = 0; i < bot->nrooms; i++)
		if (bot->rooms[i].replacement != NULL &&
		    !bot->rooms[i].tried_replacement) {
			bot->rooms[i].tried_replacement = 1;
			rooms_follow_upgrade(bot, &bot->rooms[i]);
		}
	offline_flush(bot);	/* too old commands, from any batch */
	l->commit_first_sync = bot->first_sync;
	l->commit_first_ever = first_ever;
	bot->first_sync = 0;
	/*
	 * The replies go out now; the batch is made durable when they are
	 * answered (batch_commit): the fsyncs overlap their round trip, and
	 * a reply answered by then need not be stored at all.
	 */
	if (l->send_call == NULL)
		send_next(l);
	mx_kick(bot->mx);
	l->commit_batch = xstrdup(b->next_batch);
	l->commit_by = mono_ms() + COMMIT_WAIT_MS;
	gaps_release(l);
	sync_batch_release(b);
	l->have_batch = 0;
	/*
	 * A command that acted (a job started, a vote counted) must not be
	 * run again by a crash: its batch is made durable now, its replies
	 * already on their way.
	 */
	if (outbox_uncommitted(bot->outbox) == 0 || bot->batch_acts)
		batch_commit(l);
}

/*
 * Make the dispatched batch durable, once its replies are answered (or
 * COMMIT_WAIT_MS passed, or we stop), in this order: the replies not yet
 * answered are stored; room keys and seen Megolm indexes (before the
 * server hears of the new position: it then drops the to-device messages
 * that brought them); the next long-poll starts; the seen journal; the
 * position.  The long-poll waits until here, as a plain client's would:
 * a /sync is work for the server, and beside a reply only delays it.
 */
static void
batch_commit(struct loop *l)
{
	struct bot *bot = l->bot;
	char *next_batch = l->commit_batch;

	l->commit_batch = NULL;
	bot->batch_acts = 0;
	outbox_commit(bot->outbox);
	if (bot->e2ee != NULL && e2ee_flush(bot->e2ee) == -1) {
		log_warnx("e2ee: the store cannot be written; this sync is "
		    "read again");
		bot->first_sync = l->commit_first_sync;
		free(next_batch);
		return;
	}
	if (l->sync_call == NULL && !l->stopping && !l->auth_lost &&
	    mono_ms() >= l->sync_not_before) {
		sync_start(l, next_batch);
		mx_kick(bot->mx);
	}
	if (state_flush_seen(bot->state) == 0)
		state_set_next_batch(bot->state, next_batch);
	bot->last_sync = now_ms();
	if (l->commit_first_ever)
		log_info("first start: history before now is not executed");
	if (l->commit_first_sync)
		log_info("ready: listening for commands in %zu room(s)",
		    bot->nrooms);
	free(next_batch);
}

static void gap_fetch(struct gap *g);

static int
gaps_pending(struct loop *l)
{
	for (size_t i = 0; i < l->ngaps; i++)
		if (!l->gaps[i].done)
			return 1;
	return 0;
}

/* "HH:MM UTC" of a time in ms on our clock. */
static void
utc_hhmm(char *out, size_t n, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%d %H:%M UTC", &tm);
}

/* The page limit ended a gap fill before it met known events. */
static void
gap_truncated(struct gap *g)
{
	struct bot *bot = g->bot;
	char from[32], to[32];
	struct msg m;

	utc_hhmm(from, sizeof(from), bot->last_sync > 0 ? bot->last_sync :
	    bot->first_start);
	utc_hhmm(to, sizeof(to), g->nevents > 0 ? g->events[0].when :
	    now_ms());
	log_warnx("gap in %s: stopped after %d pages; commands between %s "
	    "and %s may have been missed", g->room->room_id, g->pages, from,
	    to);
	msg_init(&m);
	msg_textf(&m, "⚠️ Too many messages arrived while my connection was "
	    "interrupted: commands sent between %s and %s may have been "
	    "missed. Please repeat any that got no answer.", from, to);
	bot_notice(bot, g->room->room_id, &m);
	msg_release(&m);
}

static void
gap_done_cb(struct mx_resp *r, void *arg)
{
	struct gap *g = arg;
	struct bot *bot = g->bot;
	struct mx_event *ev;
	char *end = NULL, *cause = NULL;
	size_t n, keep;
	int reached_seen = 0;

	g->call = NULL;
	if (r->status != 200 || sync_parse_messages(r->body, r->len, &ev, &n,
	    &end, &cause) == -1) {
		char *d = cause ? cause : mx_describe(r);

		if ((r->status == 0 || r->status == 429 || r->status >= 500) &&
		    ++g->attempts < 8) {
			g->not_before = mono_ms() + (r->retry_after_ms >= 0 ?
			    r->retry_after_ms : backoff_delay(g->attempts, 500,
			    30000, randombytes_random()));
			log_warnx("filling the gap in %s: %s; retrying",
			    g->room->room_id, d);
		} else {
			struct msg m;

			log_warnx("cannot fill the gap in %s: %s",
			    g->room->room_id, d);
			msg_init(&m);
			msg_text(&m, "⚠️ I could not fetch all messages sent "
			    "while my connection was interrupted; a command "
			    "may have been missed. Please repeat it if it got "
			    "no answer.");
			bot_notice(bot, g->room->room_id, &m);
			msg_release(&m);
			g->done = 1;
		}
		free(d);
		return;
	}
	sync_stamp(ev, n, now_ms());
	/* Events already handled mark the far end of the gap. */
	keep = n;
	for (size_t i = n; i-- > 0; ) {
		if (ev[i].event_id[0] != '\0' &&
		    state_seen(bot->state, ev[i].event_id)) {
			reached_seen = 1;
			keep = n - 1 - i;
			break;
		}
	}
	{
		/* ev is oldest first; keep its newest `keep` events, put
		 * them before what was collected from newer pages. */
		struct mx_event *all = xcalloc(keep + g->nevents + 1,
		    sizeof(*all));

		if (keep > 0)
			memcpy(all, ev + (n - keep), keep * sizeof(*all));
		if (g->nevents > 0)
			memcpy(all + keep, g->events,
			    g->nevents * sizeof(*all));
		for (size_t i = 0; i < n - keep; i++)
			mx_event_release(&ev[i]);
		free(ev);
		free(g->events);
		g->events = all;
		g->nevents += keep;
	}
	g->pages++;
	free(g->from);
	g->from = end;
	/* An empty chunk with an `end` (events we may not see) means go on:
	 * only a missing `end` is the start of the room. */
	if (!reached_seen && end != NULL && g->pages >= GAP_MAX_PAGES)
		gap_truncated(g);
	if (reached_seen || end == NULL || g->pages >= GAP_MAX_PAGES)
		g->done = 1;
	else
		gap_fetch(g);
}

static void
gap_fetch(struct gap *g)
{
	const char *since = state_next_batch(g->bot->state);
	char *esc = mx_escape(g->room->room_id), *from = mx_escape(g->from);
	char *to = since ? mx_escape(since) : NULL, *path;

	path = xasprintf(MX_V3 "/rooms/%s/messages?dir=b&limit=%d&from=%s%s%s",
	    esc, GAP_PAGE_LIMIT, from, to ? "&to=" : "", to ? to : "");
	g->call = mx_start(g->bot->mx, "GET", path, NULL, 60000L, gap_done_cb,
	    g);
	free(path);
	free(to);
	free(from);
	free(esc);
}

/* A 401: keep what recovery needs (errcode, soft_logout); pause syncing. */
static void
auth_lost(struct loop *l, struct mx_resp *r)
{
	if (l->auth_lost)
		return;
	l->auth_lost = 1;
	l->auth_not_before = mono_ms();
	memset(&l->auth_resp, 0, sizeof(l->auth_resp));
	l->auth_resp.status = r->status;
	l->auth_resp.retry_after_ms = -1;
	l->auth_resp.json = r->json;	/* moved: r is released by the caller */
	r->json = NULL;
	r->errcode = r->error = NULL;
	l->auth_resp.errcode = json_str(l->auth_resp.json, "errcode");
}

/* Get a working access token again; never exits, retries with backoff. */
static void
auth_recover(struct loop *l)
{
	char *cause = NULL;
	enum step s = session_recover(&l->bot->login, &l->auth_resp, &cause);

	if (s == STEP_OK) {
		l->auth_lost = 0;
		l->auth_attempts = 0;
		mx_resp_release(&l->auth_resp);
		free(cause);
		return;
	}
	/* one clear line for the operator, then quiet retries */
	if (l->auth_attempts == 0 || s == STEP_FATAL)
		log_warnx("%s", cause != NULL ? cause : "cannot log in");
	else
		log_debug("still no valid access token (attempt %d)",
		    l->auth_attempts + 1);
	free(cause);
	l->auth_not_before = mono_ms() + backoff_delay(l->auth_attempts++,
	    1000, 60000, randombytes_random());
}

/*
 * A long-poll answered well before its timeout with the position it was
 * asked from moved nowhere: a broken server (or a cache in front of it)
 * that would have us ask again at once, forever.  The first two are
 * taken as they come; after that the next /sync waits, doubling up to
 * SYNC_BACKOFF_MAX_MS, until the position moves.
 */
static void
sync_progress(struct loop *l)
{
	int stuck = l->sync_since != NULL && l->sync_wait > 0 &&
	    strcmp(l->batch.next_batch, l->sync_since) == 0 &&
	    mono_ms() - l->sync_sent < l->sync_wait / 2;

	if (!stuck) {
		if (l->sync_stalls > 2)
			log_info("sync: the homeserver moves on again");
		l->sync_stalls = 0;
		return;
	}
	if (++l->sync_stalls <= 2)
		return;
	if (l->sync_stalls == 3)
		log_warnx("sync: the homeserver answers at once without "
		    "moving on; asking less often until it does");
	l->sync_not_before = mono_ms() + backoff_delay(l->sync_stalls - 3,
	    500, SYNC_BACKOFF_MAX_MS, randombytes_random());
}

static void
sync_done_cb(struct mx_resp *r, void *arg)
{
	struct loop *l = arg;
	struct bot *bot = l->bot;
	char *cause = NULL;

	l->sync_call = NULL;
	if (r->status != 200) {
		char *d = mx_describe(r);
		int64_t delay;

		if (r->status == 401) {
			log_warnx("sync: %s", d);
			free(d);
			auth_lost(l, r);
			return;
		}
		/* capped near 10 s: one cheap request, and the first
		 * command after an outage is answered soon */
		delay = r->status == 429 && r->retry_after_ms >= 0 ?
		    r->retry_after_ms : backoff_delay(l->sync_failures, 1000,
		    SYNC_BACKOFF_MAX_MS, randombytes_random());
		l->sync_failures++;
		log_warnx("sync: %s; retrying in %lld ms", d, (long long)delay);
		free(d);
		l->sync_not_before = mono_ms() + delay;
		return;
	}
	if (sync_parse(r->body, r->len, bot->login.user, &l->batch, &cause) == -1) {
		log_warnx("sync: %s; retrying", cause);
		free(cause);
		l->sync_failures++;
		l->sync_not_before = mono_ms() + backoff_delay(l->sync_failures,
		    1000, SYNC_BACKOFF_MAX_MS, randombytes_random());
		return;
	}
	for (size_t i = 0; i < l->batch.nrooms; i++)
		sync_stamp(l->batch.rooms[i].events, l->batch.rooms[i].nevents,
		    now_ms());
	if (l->sync_failures > 0)
		log_info("sync: connection to the homeserver is back");
	l->sync_failures = 0;
	sync_progress(l);
	l->have_batch = 1;
	/* A limited timeline skipped events: fetch them before going on. */
	if (state_next_batch(bot->state) != NULL) {
		for (size_t i = 0; i < l->batch.nrooms; i++) {
			struct sync_room *sr = &l->batch.rooms[i];

			if (!sr->limited || sr->prev_batch == NULL ||
			    bot_room(bot, sr->room_id) == NULL)
				continue;
			l->gaps = xrealloc(l->gaps,
			    (l->ngaps + 1) * sizeof(*l->gaps));
			memset(&l->gaps[l->ngaps], 0, sizeof(*l->gaps));
			l->gaps[l->ngaps].bot = bot;
			l->gaps[l->ngaps].room = sr;
			l->gaps[l->ngaps].from = xstrdup(sr->prev_batch);
			log_info("sync: gap in %s, filling it from /messages",
			    sr->room_id);
			l->ngaps++;
		}
		/* gaps[] may have moved: start fetches only now */
		for (size_t i = 0; i < l->ngaps; i++)
			gap_fetch(&l->gaps[i]);
	}
	if (!gaps_pending(l))
		batch_finish(l);
}

/* The next /sync from since (NULL: the first ever). */
static void
sync_start(struct loop *l, const char *since)
{
	struct bot *bot = l->bot;
	char *fesc = mx_escape(bot->filter_id), *sesc = NULL, *path;
	long timeout = bot->first_sync ? 0 : bot->cfg->sync_timeout * 1000;

	free(l->sync_since);
	l->sync_since = since != NULL ? xstrdup(since) : NULL;
	l->sync_sent = mono_ms();
	l->sync_wait = timeout;
	if (since != NULL)
		sesc = mx_escape(since);
	path = xasprintf(MX_V3 "/sync?filter=%s&timeout=%ld%s%s", fesc,
	    timeout, sesc ? "&since=" : "", sesc ? sesc : "");
	l->sync_call = mx_start(bot->mx, "GET", path, NULL, timeout + 30000L,
	    sync_done_cb, l);
	free(path);
	free(sesc);
	free(fesc);
}

/* ---- outbox sender ---------------------------------------------------- */

static void
send_done_cb(struct mx_resp *r, void *arg)
{
	struct loop *l = arg;
	struct outbox_item *it = l->sending;
	const cJSON *ev = NULL;
	enum outbox_action a;
	char *d;

	l->send_call = NULL;
	l->sending = NULL;
	if (r->status == 200) {
		ev = cJSON_GetObjectItemCaseSensitive(r->json, "event_id");
		fault_die_after_reply(it);
	}
	a = outbox_result(l->bot->outbox, it, r->status,
	    cJSON_IsString(ev) ? ev->valuestring : NULL, r->retry_after_ms,
	    mono_ms());
	if (a == OUTBOX_RETRY) {
		d = mx_describe(r);
		log_warnx("send: %s; will retry", d);
		free(d);
	}
	if (r->status == 401)
		auth_lost(l, r);
}

/* content is threaded on a command that cannot be a thread root. */
static int
unthreadable_root(const struct bot *bot, const cJSON *content)
{
	const cJSON *rel = cJSON_GetObjectItemCaseSensitive(content,
	    "m.relates_to");
	const char *type = json_str(rel, "rel_type"), *root;

	if (type == NULL || strcmp(type, "m.thread") != 0 ||
	    (root = json_str(rel, "event_id")) == NULL)
		return 0;
	for (size_t i = 0; i < nitems(bot->unthreadable); i++)
		if (bot->unthreadable[i] != NULL &&
		    !strcmp(bot->unthreadable[i], root))
			return 1;
	return 0;
}



/*
 * In an encrypted room, encrypt the head once, durably, before its first
 * attempt, when it was not sealed as it was queued (outbox_seal).  0 to
 * send it, -1 when it must wait (retry set).
 */
static int
seal(struct loop *l, struct outbox_item *it)
{
	struct bot *bot = l->bot;
	cJSON *enc = NULL;
	char *sid = NULL;
	int r;

	if (it->session_id != NULL)
		return 0;
	r = crypto_seal(bot, it->room_id, it->type, it->content, &enc, &sid);
	if (r == 0)
		return 0;
	if (r == -1 || outbox_seal(bot->outbox, it, "m.room.encrypted", enc,
	    sid) == -1) {
		free(sid);
		outbox_result(bot->outbox, it, 0, NULL, -1, mono_ms());
		return -1;
	}
	free(sid);
	return 0;
}

static void
send_next(struct loop *l)
{
	struct outbox_item *it = outbox_head(l->bot->outbox, mono_ms());
	char *resc, *tesc, *txesc, *path, *body;
	cJSON *content;

	if (it == NULL)
		return;
	content = it->content;
	if (it->edit_of != 0 && it->session_id == NULL) {
		/* the edit's target event id is known only now */
		cJSON *rel = cJSON_GetObjectItemCaseSensitive(content,
		    "m.relates_to");

		if (cJSON_IsObject(rel))
			cJSON_ReplaceItemInObjectCaseSensitive(rel, "event_id",
			    cJSON_CreateString(it->edit_event));
	}
	/* a command with a relation of its own is no thread root */
	if (unthreadable_root(l->bot, content))
		outbox_unthread(content);
	if (seal(l, it) == -1)
		return;
	content = it->content;
	body = cJSON_PrintUnformatted(content);
	resc = mx_escape(it->room_id);
	tesc = mx_escape(it->type);
	txesc = mx_escape(it->txn_id);
	path = xasprintf(MX_V3 "/rooms/%s/send/%s/%s", resc, tesc, txesc);
	it->inflight = 1;
	l->sending = it;
	l->send_call = mx_start(l->bot->mx, "PUT", path, body, SEND_TIMEOUT_MS,
	    send_done_cb, l);
	free(path);
	free(txesc);
	free(tesc);
	free(resc);
	free(body);
}

/* ---- start-up, reload, loop ------------------------------------------ */

static void
mark_source_seen(const char *event_id, void *arg)
{
	state_mark_seen(arg, event_id);
}

/* Run a start-up step until it succeeds, fails for good, or we stop. */
static int
startup_step(struct loop *l, const char *what,
    enum step (*fn)(struct bot *, char **))
{
	int attempt = 0;

	for (;;) {
		char *cause = NULL;
		enum step s = fn(l->bot, &cause);
		struct signalfd_siginfo si;
		int64_t delay;

		if (s == STEP_OK) {
			free(cause);
			return 0;
		}
		if (s == STEP_FATAL) {
			log_warnx("%s: %s", what, cause ? cause : "failed");
			free(cause);
			return -1;
		}
		delay = session_retry_after();	/* a 429's own wait */
		if (delay < 0)
			delay = backoff_delay(attempt, 1000, 60000,
			    randombytes_random());
		attempt++;
		log_warnx("%s: %s; retrying in %lld ms", what,
		    cause ? cause : "failed", (long long)delay);
		free(cause);
		/* wait, but wake up for SIGTERM */
		mx_poll(l->bot->mx, &l->sigfd, 1, (int)delay);
		while (read(l->sigfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				return -2;
		}
	}
}

static void
reload(struct loop *l)
{
	struct bot *bot = l->bot;
	struct config_errors errs;
	struct config *cfg, *old = bot->cfg;
	int rooms_changed = 0;

	cfg = config_load(old->path, &errs);
	if (cfg == NULL) {
		log_warnx("reload: %s has errors; keeping the running "
		    "configuration", old->path);
		for (size_t i = 0; i < errs.n; i++)
			log_warnx("%s", errs.msg[i]);
		config_errors_release(&errs);
		return;
	}
	if (strcmp(cfg->homeserver, old->homeserver) != 0 ||
	    strcmp(cfg->user_id, old->user_id) != 0 ||
	    strcmp(cfg->state_dir, old->state_dir) != 0)
		log_warnx("reload: homeserver, user_id and state_dir changes "
		    "take effect after a restart");
	if (cfg->rooms.n != old->rooms.n)
		rooms_changed = 1;
	for (size_t i = 0; !rooms_changed && i < cfg->rooms.n; i++)
		rooms_changed = strcmp(cfg->rooms.v[i], old->rooms.v[i]) != 0;
	/* Identity stays as started; everything else is swapped in. */
	free(cfg->homeserver);
	cfg->homeserver = xstrdup(old->homeserver);
	free(cfg->user_id);
	cfg->user_id = xstrdup(old->user_id);
	free(cfg->state_dir);
	cfg->state_dir = xstrdup(old->state_dir);
	bot->cfg = cfg;
	config_free(old);
	log_info("reload: configuration reloaded");
	if (bot->sched != NULL)
		sched_reload(bot->sched);
	{
		char *why = NULL;

		if (metrics_write(bot->cfg, &why) == -1) {
			log_warnx("metrics: %s", why);
			free(why);
		}
	}
	if (rooms_changed) {
		char *cause = NULL;

		if (rooms_build(bot, &cause) != STEP_OK ||
		    rooms_filter(bot, &cause) != STEP_OK)
			log_warnx("reload: rooms: %s", cause ? cause : "?");
		free(cause);
		if (l->sync_call != NULL && !l->have_batch) {
			mx_cancel(bot->mx, l->sync_call);
			l->sync_call = NULL;
		}
	}
}

static int
loop_timeout(struct loop *l)
{
	int64_t now = mono_ms(), t = 60000, w;

	if (l->send_call == NULL && (w = outbox_wait(l->bot->outbox, now)) >= 0
	    && w < t)
		t = w;
	if (l->sync_call == NULL && !l->have_batch && !l->stopping) {
		w = l->sync_not_before - now;
		if (l->commit_batch != NULL)
			w = l->commit_by - now;
		if (w < t)
			t = w < 0 ? 0 : w;
	}
	for (size_t i = 0; i < l->ngaps; i++) {
		if (l->gaps[i].call == NULL && !l->gaps[i].done) {
			w = l->gaps[i].not_before - now;
			if (w < t)
				t = w < 0 ? 0 : w;
		}
	}
	if (l->stopping) {
		w = l->stop_deadline - now;
		if (w < t)
			t = w < 0 ? 0 : w;
	}
	if ((w = jobs_timeout(l->bot->jobs, now)) >= 0 && w < t)
		t = w;
	if (l->auth_lost && (w = l->auth_not_before - now) < t)
		t = w < 0 ? 0 : w;
	if (l->bot->login.refresh_at > 0 && (w = l->bot->login.refresh_at - now) < t)
		t = w < 0 ? 0 : w;
	if (l->approval_wait >= 0 && l->approval_wait < t)
		t = l->approval_wait;
	if (l->sched_wait >= 0 && l->sched_wait < t)
		t = l->sched_wait;
	return (int)t;
}

static void
read_signals(struct loop *l)
{
	struct signalfd_siginfo si;

	while (read(l->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			l->reload = 1;
		} else if (si.ssi_signo == SIGCHLD) {
			/* reaped in jobs_poll() */
		} else if (!l->stopping) {
			log_info("received %s, finishing the current write",
			    strsignal((int)si.ssi_signo));
			l->stopping = 1;
			l->stop_deadline = mono_ms() + STOP_GRACE_MS;
		}
	}
}

static int
loop_run(struct loop *l)
{
	struct bot *bot = l->bot;

	while (!l->fatal) {
		int fds[64], nfds;
		int64_t now;

		fds[0] = l->sigfd;
		nfds = 1 + jobs_fds(bot->jobs, fds + 1, (int)nitems(fds) - 1);
		if (mx_poll(bot->mx, fds, nfds, loop_timeout(l)) == -1)
			return 1;
		read_signals(l);
		jobs_poll(bot->jobs, mono_ms());
		l->approval_wait = approvals_tick(bot, time(NULL));
		l->sched_wait = sched_tick(bot->sched, time(NULL));
		if (l->reload) {
			l->reload = 0;
			reload(l);
		}
		/* the batch's replies are answered, or waited for enough */
		if (l->commit_batch != NULL && (l->stopping || mono_ms() >=
		    l->commit_by || outbox_uncommitted(bot->outbox) == 0))
			batch_commit(l);
		if (l->stopping) {
			/* The sync may go; a send in flight is waited for. */
			if (l->sync_call != NULL) {
				mx_cancel(bot->mx, l->sync_call);
				l->sync_call = NULL;
			}
			if (l->send_call == NULL || mono_ms() >= l->stop_deadline)
				break;
			continue;
		}
		now = mono_ms();
		if (!l->auth_lost && bot->login.refresh_at > 0 &&
		    now >= bot->login.refresh_at) {
			char *why = NULL;

			bot->login.refresh_at = 0;
			if (session_refresh(&bot->login, &why) != STEP_OK) {
				log_warnx("token refresh: %s", why);
				bot->login.refresh_at = now + 5000;
			}
			free(why);
		}
		if (l->auth_lost) {
			if (now >= l->auth_not_before)
				auth_recover(l);
			if (l->auth_lost)
				continue;
		}
		for (size_t i = 0; i < l->ngaps; i++)
			if (!l->gaps[i].done && l->gaps[i].call == NULL &&
			    l->gaps[i].not_before <= now)
				gap_fetch(&l->gaps[i]);
		if (l->have_batch && !gaps_pending(l))
			batch_finish(l);
		if (l->sync_call == NULL && !l->have_batch &&
		    l->commit_batch == NULL && now >= l->sync_not_before)
			sync_start(l, state_next_batch(bot->state));
		if (l->send_call == NULL)
			send_next(l);
	}
	if (l->fatal)
		return 1;
	log_info("stopped");
	return 0;
}

static int
signals_setup(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		fatal("sigprocmask");
	if ((fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("signalfd");
	signal(SIGPIPE, SIG_IGN);
	return fd;
}

void
bot_free(struct bot *bot)
{
	for (size_t i = 0; i < bot->nrooms; i++) {
		free(bot->rooms[i].id);
		free(bot->rooms[i].configured);
		cJSON_Delete(bot->rooms[i].power_levels);
		cJSON_Delete(bot->rooms[i].create);
		free(bot->rooms[i].replacement);
		cJSON_Delete(bot->rooms[i].encryption);
	}
	free(bot->rooms);
	for (size_t i = 0; i < nitems(bot->unthreadable); i++)
		free(bot->unthreadable[i]);
	for (size_t i = 0; i < nitems(bot->refusals); i++)
		free(bot->refusals[i].user);
	for (size_t i = 0; i < nitems(bot->undecryptable); i++)
		free(bot->undecryptable[i]);
	if (bot->e2ee != NULL)
		e2ee_flush(bot->e2ee);
	e2ee_free(bot->e2ee);
	cJSON_Delete(bot->offline);
	jobs_free(bot->jobs);
	sched_free(bot->sched);
	approvals_free(bot->approvals);
	mx_free(bot->mx);
	outbox_free(bot->outbox);
	state_free(bot->state);
	config_free(bot->cfg);
	session_login_release(&bot->login);
	free(bot->e2ee_device);
	free(bot->filter_id);
}

/* Load config, state and outbox; -1 on error (reported). */
int
bot_open(struct bot *bot, const char *config_path, int quiet)
{
	struct config_errors errs;
	char *cause = NULL, *dir;

	memset(bot, 0, sizeof(*bot));
	bot->started = time(NULL);
	if ((bot->cfg = config_load(config_path, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(quiet ? stdout : stderr, "%s%s\n",
			    quiet ? "error: " : "", errs.msg[i]);
		config_errors_release(&errs);
		return -1;
	}
	if (bot->cfg->log_debug)
		log_init(LOG_LVL_DEBUG, NULL);
	if ((bot->state = state_open(bot->cfg->state_dir, &cause)) == NULL) {
		fprintf(quiet ? stdout : stderr, "%sstate_dir: %s\n",
		    quiet ? "error: " : "", cause);
		free(cause);
		return -1;
	}
	dir = xasprintf("%s/outbox", bot->cfg->state_dir);
	bot->outbox = outbox_open(dir, &cause);
	free(dir);
	if (bot->outbox == NULL) {
		fprintf(quiet ? stdout : stderr, "%soutbox: %s\n",
		    quiet ? "error: " : "", cause);
		free(cause);
		return -1;
	}
	dir = xasprintf("%s/approvals", bot->cfg->state_dir);
	bot->approvals = approvals_open(dir, &cause);
	free(dir);
	if (bot->approvals == NULL) {
		fprintf(quiet ? stdout : stderr, "%sapprovals: %s\n",
		    quiet ? "error: " : "", cause);
		free(cause);
		return -1;
	}
	bot->mx = mx_new(bot->cfg->homeserver, bot->cfg->tls_verify);
	return 0;
}

/* ---- end-to-end encryption ------------------------------------------ */






/* ---- the supervisor's ops (jobs.h) ------------------------------------ */

/* A reply in the job's thread; returns its outbox seq. */
static uint64_t
supervisor_post(struct bot *bot, const struct job *j, struct msg *m)
{
	struct cmd_ctx ctx;

	if (j->thread == NULL) {
		/* a scheduled job: the day's thread, perhaps not sent yet */
		cJSON *c = msg_content(m, MSG_MAX_CONTENT);

		if (j->thread_seq == 0)
			return outbox_push(bot->outbox, j->room,
			    "m.room.message", c, 0, NULL);
		return outbox_push_thread(bot->outbox, j->room, c,
		    j->thread_seq);
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.bot = bot;
	ctx.room_id = j->room;
	ctx.thread_root = j->thread;
	ctx.event_id = j->command != NULL ? j->command : j->thread;
	return bot_reply(&ctx, m);
}

static uint64_t
supervisor_edit(struct bot *bot, const char *room, uint64_t seq, struct msg *m)
{
	return bot_edit(bot, room, seq, m);
}

/* A job ended: its submitter, then the approval and the schedule. */
static void
supervisor_ended(struct bot *bot, const struct job *j)
{
	if (j->on_end != NULL)
		j->on_end(bot, j);
	if (j->kind == JOB_PROBE)
		return;
	if (j->kind == JOB_CHECK || j->kind == JOB_RESTORE)
		approvals_job_done(bot, j);
	if (bot->sched != NULL)
		sched_job_done(bot->sched, j);
}

static const struct jobs_ops supervisor_ops = {
	.post = supervisor_post,
	.edit = supervisor_edit,
	.ended = supervisor_ended,
};

int
bot_run(const char *config_path)
{
	struct bot bot;
	struct loop l;
	int r;

	memset(&l, 0, sizeof(l));
	l.sigfd = signals_setup();
	l.bot = &bot;
	if (bot_open(&bot, config_path, 0) == -1) {
		log_warnx("%s: refusing to start", config_path);
		bot_free(&bot);
		close(l.sigfd);
		return 1;
	}
	log_info("backupbot %s starting, homeserver %s", BB_VERSION,
	    bot.cfg->homeserver);
	/* Replies still queued mean their commands were handled. */
	outbox_foreach_source(bot.outbox, mark_source_seen, bot.state);
	state_flush_seen(bot.state);
	if (state_first_start(bot.state, now_ms(), &bot.first_start) == -1) {
		log_warnx("%s: refusing to start: the first start time cannot "
		    "be recorded", config_path);
		bot_free(&bot);
		close(l.sigfd);
		return 1;
	}
	if ((r = startup_step(&l, "login", rooms_login)) != 0 ||
	    (r = startup_step(&l, "rooms", rooms_build)) != 0 ||
	    (r = startup_step(&l, "end-to-end encryption", crypto_step)) != 0 ||
	    (r = startup_step(&l, "sync filter", rooms_filter)) != 0) {
		bot_free(&bot);
		close(l.sigfd);
		return r == -2 ? 0 : 1;
	}
	log_info("logged in as %s (device %s), %zu room(s)", bot.login.user,
	    bot.login.device ? bot.login.device : "?", bot.nrooms);
	bot.jobs = jobs_new(&bot, &supervisor_ops);
	jobs_startup(bot.jobs);
	approvals_startup(&bot);
	bot.sched = sched_new(&bot);
	sched_startup(bot.sched, time(NULL));
	bot.first_sync = 1;
	r = loop_run(&l);
	l.stopping = 1;
	if (l.commit_batch != NULL)
		batch_commit(&l);
	if (l.sync_call != NULL)
		mx_cancel(bot.mx, l.sync_call);
	gaps_release(&l);
	free(l.sync_since);
	if (l.have_batch)
		sync_batch_release(&l.batch);
	mx_resp_release(&l.auth_resp);
	state_flush_seen(bot.state);
	bot_free(&bot);
	close(l.sigfd);
	return r;
}
