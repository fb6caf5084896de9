/*
 * approval.c - restore requests, their approval, and the chat flow around
 * them (approval.h).
 *
 * The order that keeps a restore from running twice or unapproved:
 *   !restore     -> check job (hash of the backup, just now)
 *   check ok     -> request stored (pending), then the plan is posted
 *   votes        -> each counted vote stored before it is answered
 *   enough votes -> state "running" stored (fsync) before the job starts
 *   job ends     -> "done"
 * After a crash a "running" request is reported as interrupted and never
 * started again; a "pending" one keeps its votes.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "approval.h"
#include "backend.h"
#include "bot.h"
#include "catalog.h"
#include "config.h"
#include "jobs.h"
#include "human.h"
#include "json.h"
#include "log.h"
#include "matrix.h"
#include "msg.h"
#include "outbox.h"
#include "restore.h"
#include "sync.h"
#include "util.h"

/* Closed requests are kept this long, so late votes get an answer. */
#define KEEP_CLOSED	(7 * 86400)

/* No 0/o, 1/l: ids are read aloud and typed. */
static const char id_chars[] = "abcdefghijkmnpqrstuvwxyz23456789";

static const char *const state_names[] = {
	[REQ_PENDING] = "pending", [REQ_RUNNING] = "running",
	[REQ_DONE] = "done", [REQ_DENIED] = "denied",
	[REQ_EXPIRED] = "expired", [REQ_INTERRUPTED] = "interrupted",
	[REQ_CANCELLED] = "cancelled"
};

/*
 * A reaction to an event the bot does not know as a plan (yet): the plan
 * may have been sent with its answer still on the way, and the admin's
 * ✅ seen first.  Kept a while, and replayed when a plan's id is learnt.
 */
#define EARLY_MAX	32
#define EARLY_KEEP	600	/* seconds */

struct early {
	char		*rel_event;
	char		*sender;
	char		*key;
	int64_t		 ts;
	int		 backlog;
	time_t		 kept_at;
};

struct approvals {
	char		*dir;
	struct request	*head;
	struct early	 early[EARLY_MAX];
};

const char *
approval_state_name(enum req_state s)
{
	return state_names[s];
}

int
approval_valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n != REQ_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(id_chars, s[i]) == NULL)
			return 0;
	return 1;
}

int
approval_count(const struct request *r)
{
	int n = 0;

	for (size_t i = 0; r->approvers != NULL && r->approvers[i] != NULL; i++)
		n++;
	return n;
}

enum vote
approval_vote(struct request *r, const char *who, time_t at)
{
	int n;

	if (r->state != REQ_PENDING)
		return VOTE_CLOSED;
	if (at >= r->expires)
		return VOTE_EXPIRED;
	if (!strcmp(who, r->requester) && !r->self_ok)
		return VOTE_SELF;
	n = approval_count(r);
	for (int i = 0; i < n; i++)
		if (!strcmp(r->approvers[i], who))
			return VOTE_AGAIN;
	r->approvers = xrealloc(r->approvers, (size_t)(n + 2) *
	    sizeof(*r->approvers));
	r->approvers[n] = xstrdup(who);
	r->approvers[n + 1] = NULL;
	return n + 1 >= r->needed ? VOTE_READY : VOTE_COUNTED;
}

/* ---- the store -------------------------------------------------------- */

static void
request_free(struct request *r)
{
	free(r->target);
	free(r->backup);
	free(r->into);
	free(r->from);
	free(r->pitr_time);
	free(r->requester);
	free(r->room);
	free(r->thread);
	free(r->plan_event);
	strv_free(r->approvers);
	cJSON_Delete(r->vote_events);
	free(r->closed_by);
	free(r);
}

static cJSON *
request_json(const struct request *r)
{
	cJSON *j = cJSON_CreateObject(), *a;

	cJSON_AddStringToObject(j, "id", r->id);
	cJSON_AddStringToObject(j, "state", state_names[r->state]);
	cJSON_AddStringToObject(j, "target", r->target);
	cJSON_AddStringToObject(j, "backup", r->backup);
	if (r->into != NULL)
		cJSON_AddStringToObject(j, "into", r->into);
	if (r->from != NULL)
		cJSON_AddStringToObject(j, "from", r->from);
	if (r->pitr_time != NULL)
		cJSON_AddStringToObject(j, "time", r->pitr_time);
	cJSON_AddBoolToObject(j, "replace", r->replace);
	cJSON_AddBoolToObject(j, "flush", r->flush);
	cJSON_AddStringToObject(j, "requester", r->requester);
	cJSON_AddStringToObject(j, "room", r->room);
	cJSON_AddStringToObject(j, "thread", r->thread);
	if (r->plan_event != NULL)
		cJSON_AddStringToObject(j, "plan_event", r->plan_event);
	cJSON_AddNumberToObject(j, "plan_seq", (double)r->plan_seq);
	cJSON_AddNumberToObject(j, "created", (double)r->created);
	cJSON_AddNumberToObject(j, "expires", (double)r->expires);
	cJSON_AddNumberToObject(j, "needed", r->needed);
	cJSON_AddBoolToObject(j, "self_ok", r->self_ok);
	a = cJSON_AddArrayToObject(j, "approvers");
	for (size_t i = 0; r->approvers != NULL && r->approvers[i] != NULL; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(r->approvers[i]));
	if (r->closed_by != NULL)
		cJSON_AddStringToObject(j, "closed_by", r->closed_by);
	if (r->vote_events != NULL)
		cJSON_AddItemToObject(j, "vote_events",
		    cJSON_Duplicate(r->vote_events, 1));
	return j;
}

static char *
opt_dup(const cJSON *j, const char *key)
{
	const char *s = json_str(j, key);

	return s != NULL ? xstrdup(s) : NULL;
}

/* A request from its file; NULL if anything is off (then left alone). */
static struct request *
request_parse(const char *text, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(text, len), *it;
	struct request *r;
	const char *id, *st;
	size_t k, n = 0;

	if (!cJSON_IsObject(j))
		goto bad;
	id = json_str(j, "id");
	st = json_str(j, "state");
	if (id == NULL || !approval_valid_id(id) || st == NULL ||
	    json_str(j, "target") == NULL || json_str(j, "backup") == NULL ||
	    json_str(j, "requester") == NULL || json_str(j, "room") == NULL ||
	    json_str(j, "thread") == NULL)
		goto bad;
	for (k = 0; k < nitems(state_names); k++)
		if (!strcmp(state_names[k], st))
			break;
	if (k == nitems(state_names))
		goto bad;
	r = xcalloc(1, sizeof(*r));
	memcpy(r->id, id, REQ_ID_LEN + 1);
	r->state = (enum req_state)k;
	r->target = opt_dup(j, "target");
	r->backup = opt_dup(j, "backup");
	r->into = opt_dup(j, "into");
	r->from = opt_dup(j, "from");
	r->pitr_time = opt_dup(j, "time");
	r->replace = cJSON_IsTrue(cJSON_GetObjectItem(j, "replace"));
	r->flush = cJSON_IsTrue(cJSON_GetObjectItem(j, "flush"));
	r->requester = opt_dup(j, "requester");
	r->room = opt_dup(j, "room");
	r->thread = opt_dup(j, "thread");
	r->plan_event = opt_dup(j, "plan_event");
	r->plan_seq = json_u64(j, "plan_seq");
	r->created = (time_t)json_num(j, "created");
	r->expires = (time_t)json_num(j, "expires");
	r->needed = json_int(j, "needed", 1, 10);
	if (r->needed < 1)
		r->needed = 1;
	r->self_ok = cJSON_IsTrue(cJSON_GetObjectItem(j, "self_ok"));
	r->closed_by = opt_dup(j, "closed_by");
	if (cJSON_IsObject(cJSON_GetObjectItem(j, "vote_events")))
		r->vote_events = cJSON_Duplicate(cJSON_GetObjectItem(j,
		    "vote_events"), 1);
	r->approvers = xcalloc(1, sizeof(*r->approvers));
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "approvers")) {
		if (!cJSON_IsString(it) || n >= 64)
			continue;
		r->approvers = xrealloc(r->approvers, (n + 2) *
		    sizeof(*r->approvers));
		r->approvers[n++] = xstrdup(it->valuestring);
		r->approvers[n] = NULL;
	}
	cJSON_Delete(j);
	return r;
bad:
	cJSON_Delete(j);
	return NULL;
}

static char *
request_path(const struct approvals *a, const char *id)
{
	return xasprintf("%s/%s.json", a->dir, id);
}

int
approvals_save(struct approvals *a, struct request *r)
{
	cJSON *j = request_json(r);
	char *text = cJSON_Print(j), *path = request_path(a, r->id);
	int rc = file_write_atomic(path, text, strlen(text), 0600);

	if (rc == -1)
		log_warn("approvals: cannot store %s", path);
	cJSON_Delete(j);
	free(text);
	free(path);
	return rc;
}

struct approvals *
approvals_open(const char *dir, char **cause)
{
	struct approvals *a;
	struct dirent *de;
	time_t now = time(NULL);
	DIR *d;

	if (dir_make(dir, 0700) == -1 || (d = opendir(dir)) == NULL) {
		*cause = xasprintf("%s: %s", dir, strerror(errno));
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->dir = xstrdup(dir);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name), len;
		char *path, *text;
		struct request *r;

		if (n != REQ_ID_LEN + 5 || strcmp(de->d_name + REQ_ID_LEN,
		    ".json") != 0)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		text = file_read(path, 256 * 1024, &len);
		r = text != NULL ? request_parse(text, len) : NULL;
		free(text);
		if (r == NULL) {
			log_warnx("approvals: ignoring unreadable %s", path);
		} else if (r->state != REQ_PENDING && r->state != REQ_RUNNING &&
		    now - r->expires > KEEP_CLOSED) {
			unlink(path);
			request_free(r);
		} else {
			r->next = a->head;
			a->head = r;
		}
		free(path);
	}
	closedir(d);
	return a;
}

void
approvals_free(struct approvals *a)
{
	struct request *r, *next;

	if (a == NULL)
		return;
	for (r = a->head; r != NULL; r = next) {
		next = r->next;
		request_free(r);
	}
	for (size_t i = 0; i < EARLY_MAX; i++) {
		free(a->early[i].rel_event);
		free(a->early[i].sender);
		free(a->early[i].key);
	}
	free(a->dir);
	free(a);
}

struct request *
approvals_find(struct approvals *a, const char *id)
{
	for (struct request *r = a->head; r != NULL; r = r->next)
		if (!strcmp(r->id, id))
			return r;
	return NULL;
}

struct request *
approvals_by_plan(struct approvals *a, const char *event_id)
{
	for (struct request *r = a->head; r != NULL; r = r->next)
		if (r->plan_event != NULL && !strcmp(r->plan_event, event_id))
			return r;
	return NULL;
}

struct request *
approvals_open_for(struct approvals *a, const char *target)
{
	for (struct request *r = a->head; r != NULL; r = r->next)
		if ((r->state == REQ_PENDING || r->state == REQ_RUNNING) &&
		    !strcmp(r->target, target))
			return r;
	return NULL;
}

struct request *
approvals_first(struct approvals *a)
{
	return a->head;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct request *
approvals_add(struct approvals *a, const struct request *t, time_t now,
    char **cause)
{
	struct request *r = xcalloc(1, sizeof(*r));

	do {
		for (int i = 0; i < REQ_ID_LEN; i++)
			r->id[i] = id_chars[randombytes_uniform(
			    sizeof(id_chars) - 1)];
		r->id[REQ_ID_LEN] = '\0';
	} while (approvals_find(a, r->id) != NULL);
	r->state = REQ_PENDING;
	r->target = xstrdup(t->target);
	r->backup = xstrdup(t->backup);
	r->into = dup_or_null(t->into);
	r->from = dup_or_null(t->from);
	r->pitr_time = dup_or_null(t->pitr_time);
	r->replace = t->replace;
	r->flush = t->flush;
	r->requester = xstrdup(t->requester);
	r->room = xstrdup(t->room);
	r->thread = xstrdup(t->thread);
	r->created = now;
	r->expires = t->expires;
	r->needed = t->needed < 1 ? 1 : t->needed;
	r->self_ok = t->self_ok;
	r->approvers = xcalloc(1, sizeof(*r->approvers));
	if (approvals_save(a, r) == -1) {
		*cause = xasprintf("cannot store the request in %s: %s",
		    a->dir, strerror(errno));
		request_free(r);
		return NULL;
	}
	r->next = a->head;
	a->head = r;
	return r;
}

/* ---- the chat flow ---------------------------------------------------- */

/* A message in a request's thread; its outbox seq. */
static uint64_t
say(struct bot *bot, const char *room, const char *thread,
    const char *reply_to, struct msg *m)
{
	struct cmd_ctx ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.bot = bot;
	ctx.room_id = room;
	ctx.thread_root = thread;
	ctx.event_id = reply_to != NULL ? reply_to : thread;
	return bot_reply(&ctx, m);
}

static void
sayf(struct bot *bot, const struct request *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
sayf(struct bot *bot, const struct request *r, const char *fmt, ...)
{
	struct msg m;
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	msg_init(&m);
	msg_text(&m, s);
	say(bot, r->room, r->thread, NULL, &m);
	msg_release(&m);
	free(s);
}

static void
hhmm(char *out, size_t n, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%H:%M UTC", &tm);
}

/* The job's arguments: ID and the options, as `job restore` reads them. */
static const char **
restore_args(const struct request *r, const char **v)
{
	int n = 0;

	v[n++] = r->backup;
	if (r->into != NULL) {
		v[n++] = "--into";
		v[n++] = r->into;
	}
	if (r->from != NULL) {
		v[n++] = "--from";
		v[n++] = r->from;
	}
	if (r->pitr_time != NULL) {
		v[n++] = "--time";
		v[n++] = r->pitr_time;
	}
	if (r->replace)
		v[n++] = "--replace";
	if (r->flush)
		v[n++] = "--flush";
	v[n] = NULL;
	return v;
}

int
approval_recheck(const struct request *r, const struct config *cfg,
    int (*authorised)(void *arg, const char *who), void *arg, char **cause)
{
	const struct target *t = config_target(cfg, r->target);
	struct restore_opts o;
	int still = 0, needed;
	char *why = NULL;

	*cause = NULL;
	if (t == NULL) {
		*cause = xasprintf("the target %s is no longer in the "
		    "configuration", r->target);
		return -1;
	}
	if (!authorised(arg, r->requester)) {
		*cause = xasprintf("%s, who asked for it, is no longer an "
		    "admin", r->requester);
		return -1;
	}
	for (size_t i = 0; r->approvers != NULL && r->approvers[i] != NULL;
	    i++) {
		/* the requester's own vote counts only under self-confirm */
		if (!strcmp(r->approvers[i], r->requester) &&
		    cfg->approvals_required > 0)
			continue;
		if (authorised(arg, r->approvers[i]))
			still++;
	}
	needed = cfg->approvals_required > 0 ? cfg->approvals_required : 1;
	if (still < needed) {
		*cause = xasprintf("%d approval(s) from current admins, and "
		    "approvals_required now asks for %d", still, needed);
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.into = r->into;
	o.from = r->from;
	o.replace = r->replace;
	o.flush = r->flush;
	if (restore_check(t, &o, &why) == -1) {
		*cause = xasprintf("the configuration no longer allows it: %s",
		    why);
		free(why);
		return -1;
	}
	return 0;
}

/* Who may approve in the request's room now (admins, power floor). */
struct room_of {
	struct bot	*bot;
	const char	*room;
};

static int
still_admin(void *arg, const char *who)
{
	struct room_of *ro = arg;

	return bot_authorised(ro->bot, bot_room(ro->bot, ro->room), who);
}

/* Enough approvals: check them again, make "running" durable, then start
 * the job. */
static void
start(struct bot *bot, struct request *r, const char *announce)
{
	const char *args[10];
	struct job *j;
	struct room_of ro = { bot, r->room };
	char *why = NULL;

	if (approval_recheck(r, bot->cfg, still_admin, &ro, &why) == -1) {
		r->state = REQ_CANCELLED;
		approvals_save(bot->approvals, r);
		log_info("request %s cancelled: %s", r->id, why);
		sayf(bot, r, "🚫 %s is cancelled, nothing was restored: %s.",
		    r->id, why);
		free(why);
		return;
	}
	if (announce != NULL)
		sayf(bot, r, "%s", announce);
	r->state = REQ_RUNNING;
	if (approvals_save(bot->approvals, r) == -1) {
		r->state = REQ_PENDING;
		sayf(bot, r, "❌ cannot record that %s is starting (state_dir "
		    "is not writable), so it does not start.", r->id);
		return;
	}
	j = jobs_submit(bot->jobs, JOB_RESTORE, r->target,
	    restore_args(r, args), r->requester, r->room, r->thread, r->thread,
	    0);
	if (j == NULL) {
		/* Nothing ran: it may be started again once the target is free. */
		r->state = REQ_PENDING;
		approvals_save(bot->approvals, r);
		sayf(bot, r, "⚠️ %s is approved but cannot start now: %s. Send "
		    "%sapprove %s again once that is done.", r->id,
		    jobs_last_error(bot->jobs), bot->cfg->command_prefix,
		    r->id);
		return;
	}
	j->request = xstrdup(r->id);
}

/* One vote from who, answered in the thread (quiet: answer only news). */
static void
vote(struct bot *bot, struct request *r, const char *who, time_t at,
    const char *how, int quiet)
{
	char when[16];
	enum vote v;

	/* Approved earlier but could not start: any approval starts it. */
	if (r->state == REQ_PENDING && approval_count(r) >= r->needed &&
	    !quiet) {
		start(bot, r, NULL);
		return;
	}
	v = approval_vote(r, who, at);
	switch (v) {
	case VOTE_COUNTED:
		approvals_save(bot->approvals, r);
		sayf(bot, r, "👍 %s approved %s (%s): %d of %d approval(s).",
		    who, r->id, how, approval_count(r), r->needed);
		break;
	case VOTE_READY:
		if (approvals_save(bot->approvals, r) == -1) {
			sayf(bot, r, "❌ cannot record the approval (state_dir "
			    "is not writable); nothing starts.");
			break;
		}
		{
			char *go = xasprintf("✅ %s approved by %s (%s). "
			    "Restoring %s now.", r->id, who, how, r->target);

			start(bot, r, go);
			free(go);
		}
		break;
	case VOTE_SELF:
		if (!quiet)
			sayf(bot, r, "%s, your own approval does not count: "
			    "another admin must approve %s.", who, r->id);
		break;
	case VOTE_AGAIN:
		if (!quiet)
			sayf(bot, r, "%s already approved %s; an approval "
			    "counts once.", who, r->id);
		break;
	case VOTE_EXPIRED:
		hhmm(when, sizeof(when), r->expires);
		if (!quiet)
			sayf(bot, r, "⌛ %s expired at %s; nothing was "
			    "restored. Ask again with %srestore.", r->id, when,
			    bot->cfg->command_prefix);
		break;
	case VOTE_CLOSED:
		if (!quiet)
			sayf(bot, r, "%s is %s%s%s; approvals no longer "
			    "apply.", r->id, state_names[r->state],
			    r->closed_by ? " by " : "",
			    r->closed_by ? r->closed_by : "");
		break;
	}
}

static void
deny(struct bot *bot, struct request *r, const char *who, const char *how)
{
	if (r->state != REQ_PENDING) {
		sayf(bot, r, "%s is already %s; nothing to deny.", r->id,
		    state_names[r->state]);
		return;
	}
	r->state = REQ_DENIED;
	free(r->closed_by);
	r->closed_by = xstrdup(who);
	approvals_save(bot->approvals, r);
	sayf(bot, r, "❌ %s denied by %s (%s); nothing was restored.", r->id,
	    who, how);
}

/* "✅" and "❌", with or without the emoji variation selector. */
static int
reaction_is(const char *key, const char *base)
{
	size_t n = strlen(base);

	return !strncmp(key, base, n) && (key[n] == '\0' ||
	    !strcmp(key + n, "\xef\xb8\x8f"));
}

static void
early_clear(struct early *e)
{
	free(e->rel_event);
	free(e->sender);
	free(e->key);
	memset(e, 0, sizeof(*e));
}

/* Keep a ✅/❌ on an unknown event while some plan's id is not known. */
static void
early_keep(struct approvals *a, const struct mx_event *ev, int backlog)
{
	struct early *slot = &a->early[0];
	int waiting = 0;

	for (struct request *r = a->head; r != NULL; r = r->next)
		waiting += r->state == REQ_PENDING && r->plan_event == NULL;
	if (!waiting)
		return;
	for (size_t i = 0; i < EARLY_MAX; i++) {
		if (a->early[i].rel_event == NULL) {
			slot = &a->early[i];
			break;
		}
		if (a->early[i].kept_at < slot->kept_at)
			slot = &a->early[i];
	}
	early_clear(slot);
	slot->rel_event = xstrdup(ev->rel_event);
	slot->sender = xstrdup(ev->sender);
	slot->key = xstrdup(ev->key);
	slot->ts = ev->ts;
	slot->backlog = backlog;
	slot->kept_at = time(NULL);
}

/* A plan's id is known now: the reactions that came before it count. */
static void
early_replay(struct bot *bot, const char *plan_event)
{
	struct approvals *a = bot->approvals;

	for (size_t i = 0; i < EARLY_MAX; i++) {
		struct early *e = &a->early[i];
		struct mx_event ev;

		if (e->rel_event == NULL)
			continue;
		if (time(NULL) - e->kept_at > EARLY_KEEP) {
			early_clear(e);
			continue;
		}
		if (strcmp(e->rel_event, plan_event) != 0)
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.event_id = "";
		ev.type = "m.reaction";
		ev.sender = e->sender;
		ev.rel_type = "m.annotation";
		ev.rel_event = e->rel_event;
		ev.key = e->key;
		ev.ts = e->ts;
		approvals_reaction(bot, &ev, e->backlog);
		early_clear(e);
	}
}

static int
has_approved(const struct request *r, const char *who)
{
	for (size_t i = 0; r->approvers != NULL && r->approvers[i] != NULL; i++)
		if (!strcmp(r->approvers[i], who))
			return 1;
	return 0;
}

/* The approver whose ✅ was event_id, or NULL. */
static const char *
voter_of(const struct request *r, const char *event_id)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, r->vote_events)
		if (cJSON_IsString(v) && !strcmp(v->valuestring, event_id))
			return v->string;
	return NULL;
}

/* who's ✅ is gone: the vote no longer counts, unless it already ran. */
static void
withdraw(struct bot *bot, struct request *r, const char *who_in,
    const char *when)
{
	char *who = xstrdup(who_in);
	size_t n = 0, k = 0;

	cJSON_DeleteItemFromObjectCaseSensitive(r->vote_events, who);
	if (r->state != REQ_PENDING) {
		approvals_save(bot->approvals, r);
		sayf(bot, r, "%s removed their ✅ from %s%s, but it is already "
		    "%s; that does not change it.", who, r->id, when,
		    state_names[r->state]);
		free(who);
		return;
	}
	for (; r->approvers != NULL && r->approvers[n] != NULL; n++) {
		if (!strcmp(r->approvers[n], who))
			free(r->approvers[n]);
		else
			r->approvers[k++] = r->approvers[n];
	}
	if (r->approvers != NULL)
		r->approvers[k] = NULL;
	approvals_save(bot->approvals, r);
	log_info("%s withdrew the approval of restore request %s", who,
	    r->id);
	sayf(bot, r, "↩️ %s withdrew the approval of %s (the ✅ was "
	    "removed%s): %d of %d approval(s).", who, r->id, when,
	    approval_count(r), r->needed);
	free(who);
}

void
approvals_redaction(struct bot *bot, const char *room,
    const char *redacted_event)
{
	for (struct request *r = approvals_first(bot->approvals); r != NULL;
	    r = r->next) {
		const char *who;

		if (strcmp(r->room, room) != 0 ||
		    (who = voter_of(r, redacted_event)) == NULL)
			continue;
		withdraw(bot, r, who, "");
	}
}

void
approvals_reaction(struct bot *bot, const struct mx_event *ev, int backlog)
{
	struct request *r;
	int yes = reaction_is(ev->key, "✅"), no = reaction_is(ev->key, "❌");
	time_t at = ev->ts > 0 ? (time_t)(ev->ts / 1000) : time(NULL);

	if ((!yes && !no) || strcmp(ev->rel_type, "m.annotation") != 0)
		return;
	if ((r = approvals_by_plan(bot->approvals, ev->rel_event)) == NULL) {
		early_keep(bot->approvals, ev, backlog);
		return;
	}
	log_info("%s reacted %s to restore request %s", ev->sender,
	    yes ? "approve" : "deny", r->id);
	if (yes) {
		int had = has_approved(r, ev->sender);

		vote(bot, r, ev->sender, at, "✅", backlog);
		if (!had && has_approved(r, ev->sender) &&
		    ev->event_id[0] == '$') {
			/* remembered, so that redacting it withdraws it */
			if (r->vote_events == NULL)
				r->vote_events = cJSON_CreateObject();
			cJSON_DeleteItemFromObjectCaseSensitive(r->vote_events,
			    ev->sender);
			cJSON_AddStringToObject(r->vote_events, ev->sender,
			    ev->event_id);
			approvals_save(bot->approvals, r);
		}
	}
	else if (r->state == REQ_PENDING || !backlog)
		deny(bot, r, ev->sender, "❌");
}

void
approvals_command(struct bot *bot, const char *room, const char *thread,
    const char *event_id, const char *sender, const char *id, int approve)
{
	struct request *r;
	struct msg m;

	if (!approval_valid_id(id) ||
	    (r = approvals_find(bot->approvals, id)) == NULL) {
		msg_init(&m);
		msg_textf(&m, "No restore request \"%s\"%s.", id,
		    approval_valid_id(id) ? "" : " (request ids are 6 "
		    "letters and digits, as in the plan)");
		say(bot, room, thread, event_id, &m);
		msg_release(&m);
		return;
	}
	if (strcmp(r->room, room) != 0) {
		msg_init(&m);
		msg_textf(&m, "Request %s belongs to another room; approve "
		    "it there.", id);
		say(bot, room, thread, event_id, &m);
		msg_release(&m);
		return;
	}
	if (approve)
		vote(bot, r, sender, time(NULL), "!approve", 0);
	else
		deny(bot, r, sender, "!deny");
}

/* The plan: what will happen, and how to approve it. */
static void
post_plan(struct bot *bot, struct request *r, const struct job *j)
{
	const cJSON *res = j->result;
	const struct target *t = config_target(bot->cfg, r->target);
	struct restore_opts ro;
	char size[32], age[32], when[16], **steps;
	const char *loc = json_text(res, "location");
	struct msg m;

	memset(&ro, 0, sizeof(ro));
	ro.into = r->into;
	ro.from = r->from;
	ro.time = r->pitr_time;
	ro.replace = r->replace;
	ro.flush = r->flush;
	human_size(size, sizeof(size), json_num(res, "bytes"));
	human_age(age, sizeof(age), difftime(time(NULL),
	    (time_t)json_num(res, "started")));
	hhmm(when, sizeof(when), r->expires);
	msg_init(&m);
	msg_textf(&m, "🔐 Restore request ");
	msg_code(&m, r->id);
	msg_textf(&m, " by %s: nothing happens until ", r->requester);
	if (r->self_ok)
		msg_textf(&m, "you confirm it with %sapprove %s.",
		    bot->cfg->command_prefix, r->id);
	else
		msg_textf(&m, "%d other admin%s approve%s.", r->needed,
		    r->needed == 1 ? "" : "s", r->needed == 1 ? "s" : "");
	msg_nl(&m);
	msg_text(&m, "backup ");
	msg_code(&m, r->backup);
	msg_textf(&m, " · %s old · %s · ", age, size);
	if (t != NULL && t->kind == TARGET_PGBACKREST) {
		msg_textf(&m, "pgBackRest set %s in %s", json_text(res, "set"),
		    loc);
		if (r->pitr_time != NULL) {
			msg_text(&m, " · to the point in time ");
			msg_code(&m, r->pitr_time);
		}
	} else if (!strcmp(loc, "local"))
		msg_text(&m, "hash verified just now ✓");
	else if (!strcmp(loc, "destinations"))
		msg_text(&m, "the latest copy at the destinations");
	else
		msg_textf(&m, "on remote %s: fetched and its hash checked "
		    "before anything is touched", loc);
	msg_nl(&m);
	steps = restore_steps(t, &ro, r->backup, json_str(res, "database"),
	    json_str(res, "mode"));
	for (size_t i = 0; steps[i] != NULL; i++) {
		msg_nl(&m);
		msg_textf(&m, "%zu. %s", i + 1, steps[i]);
	}
	strv_free(steps);
	msg_nl(&m);
	msg_nl(&m);
	if (r->self_ok)
		msg_textf(&m, "approvals_required = 0: confirm with ");
	else
		msg_textf(&m, "Approve: react ✅ to this message or send ");
	msg_code(&m, "!approve");
	msg_textf(&m, " %s in this thread. Deny: ❌ or ", r->id);
	msg_code(&m, "!deny");
	msg_textf(&m, " %s. Expires at %s (in %ld min).", r->id, when,
	    (long)((r->expires - time(NULL) + 59) / 60));
	r->plan_seq = say(bot, r->room, r->thread, NULL, &m);
	msg_release(&m);
}

/* The restore's check job ended: plan and request, or why not. */
static void
check_done(struct bot *bot, const struct job *j)
{
	const cJSON *res = j->result;
	const struct config *cfg = bot->cfg;
	struct request tmpl, *r;
	struct restore_opts ro;
	char *cause = NULL, *into = NULL;
	int n = 0;
	struct msg m;

	if (res == NULL || strcmp(json_text(res, "status"), "ok") != 0) {
		msg_init(&m);
		msg_textf(&m, "❌ cannot restore %s: ", j->target);
		msg_pre(&m, res != NULL ? json_text(res, "error") :
		    "the check ended without a result");
		msg_text(&m, "Nothing was touched.");
		say(bot, j->room, j->thread, j->command, &m);
		msg_release(&m);
		return;
	}
	memset(&tmpl, 0, sizeof(tmpl));
	while (j->args[n] != NULL)
		n++;
	if (restore_parse_args(n - 1, j->args + 1, &ro) == -1)
		return;		/* checked by the handler already */
	if (config_target(cfg, j->target) == NULL)
		return;		/* removed by a reload meanwhile */
	/* the plan names the new database; the job uses the same name */
	if (config_target(cfg, j->target)->kind == TARGET_POSTGRES &&
	    ro.into == NULL)
		ro.into = into = restore_default_into(config_target(cfg,
		    j->target), time(NULL));
	tmpl.target = j->target;
	tmpl.backup = (char *)json_text(res, "id");
	tmpl.into = (char *)ro.into;
	tmpl.from = (char *)ro.from;
	tmpl.pitr_time = (char *)ro.time;
	tmpl.replace = ro.replace;
	tmpl.flush = ro.flush;
	tmpl.requester = j->requester;
	tmpl.room = j->room;
	tmpl.thread = j->thread;
	tmpl.expires = time(NULL) + cfg->approval_timeout;
	tmpl.needed = cfg->approvals_required > 0 ? cfg->approvals_required : 1;
	tmpl.self_ok = cfg->approvals_required == 0;
	if ((r = approvals_add(bot->approvals, &tmpl, time(NULL),
	    &cause)) == NULL) {
		msg_init(&m);
		msg_textf(&m, "❌ %s", cause);
		say(bot, j->room, j->thread, j->command, &m);
		msg_release(&m);
		free(cause);
		free(into);
		return;
	}
	post_plan(bot, r, j);
	approvals_save(bot->approvals, r);
	log_info("restore request %s of %s by %s: %s, waiting for approval",
	    r->id, r->target, r->requester, r->backup);
	free(into);
}

void
approvals_job_done(struct bot *bot, const struct job *j)
{
	struct request *r;

	if (j->kind == JOB_CHECK) {
		check_done(bot, j);
		return;
	}
	if (j->request == NULL ||
	    (r = approvals_find(bot->approvals, j->request)) == NULL)
		return;
	r->state = REQ_DONE;
	approvals_save(bot->approvals, r);
}

/* Reactions to r's plan given while the bot was down. */
static void
fetch_reactions(struct bot *bot, struct request *r)
{
	char *room = mx_escape(r->room), *ev = mx_escape(r->plan_event);
	char *from = NULL, *path;
	struct mx_resp resp;
	cJSON *present = cJSON_CreateObject();	/* reaction ids still there */
	int complete = 0;

	for (int page = 0; page < 20; page++) {
		struct mx_event *evs = NULL;
		size_t n = 0;
		char *next = NULL, *cause = NULL, *f = from ?
		    mx_escape(from) : NULL;

		path = xasprintf(MX_V1 "/rooms/%s/relations/%s/m.annotation/"
		    "m.reaction?limit=100%s%s", room, ev, f ? "&from=" : "",
		    f ? f : "");
		free(f);
		mx_call(bot->mx, "GET", path, NULL, 30000L, &resp);
		free(path);
		if (resp.status != 200 || sync_parse_relations(resp.body,
		    resp.len, &evs, &n, &next, &cause) == -1) {
			char *d = mx_describe(&resp);

			log_warnx("restore request %s: cannot read the "
			    "reactions to its plan: %s", r->id, cause ? cause :
			    d);
			free(d);
			free(cause);
			mx_resp_release(&resp);
			break;
		}
		mx_resp_release(&resp);
		for (size_t i = 0; i < n; i++) {
			struct room *rm = bot_room(bot, r->room);

			if (evs[i].event_id[0] != '\0')
				cJSON_AddTrueToObject(present,
				    evs[i].event_id);
			if (!strcmp(evs[i].type, "m.reaction") &&
			    strcmp(evs[i].sender, bot->login.user) != 0 &&
			    bot_authorised(bot, rm, evs[i].sender))
				approvals_reaction(bot, &evs[i], 1);
		}
		mx_events_free(evs, n);
		free(from);
		from = next;
		if (from == NULL) {
			complete = 1;
			break;
		}
	}
	/* A ✅ redacted while we were down is no longer among them: the view
	 * after a restart is the live one. */
	for (const cJSON *v = r->vote_events ? r->vote_events->child : NULL;
	    complete && v != NULL; ) {
		const cJSON *next = v->next;

		if (cJSON_IsString(v) && !cJSON_HasObjectItem(present,
		    v->valuestring))
			withdraw(bot, r, v->string, " while I was offline");
		v = next;
	}
	cJSON_Delete(present);
	free(from);
	free(room);
	free(ev);
}

void
approvals_startup(struct bot *bot)
{
	for (struct request *r = approvals_first(bot->approvals); r != NULL;
	    r = r->next) {
		if (r->state == REQ_RUNNING) {
			r->state = REQ_INTERRUPTED;
			approvals_save(bot->approvals, r);
			if (bot_room(bot, r->room) != NULL)
				sayf(bot, r, "⚠️ restore %s of %s was "
				    "interrupted: backupbot stopped while it ran."
				    " It is not started again; check %s and ask "
				    "again with %srestore if needed.", r->id,
				    r->target, r->target,
				    bot->cfg->command_prefix);
			continue;
		}
		if (r->state == REQ_PENDING && r->plan_event != NULL &&
		    bot_room(bot, r->room) != NULL)
			fetch_reactions(bot, r);
	}
}

int64_t
approvals_tick(struct bot *bot, time_t now)
{
	int64_t next = -1;

	for (struct request *r = approvals_first(bot->approvals); r != NULL;
	    r = r->next) {
		int64_t ms;

		if (r->state != REQ_PENDING)
			continue;
		if (r->plan_event == NULL && r->plan_seq != 0) {
			const char *ev = outbox_event_id(bot->outbox,
			    r->plan_seq);

			if (ev != NULL) {
				r->plan_event = xstrdup(ev);
				approvals_save(bot->approvals, r);
				early_replay(bot, r->plan_event);
			}
		}
		if (now >= r->expires) {
			char when[16];

			r->state = REQ_EXPIRED;
			approvals_save(bot->approvals, r);
			hhmm(when, sizeof(when), r->expires);
			sayf(bot, r, "⌛ %s expired at %s without enough "
			    "approvals; nothing was restored.", r->id, when);
			continue;
		}
		ms = (int64_t)(r->expires - now) * 1000;
		if (next == -1 || ms < next)
			next = ms;
	}
	return next;
}
