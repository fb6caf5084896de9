/*
 * status.c - !status [TARGET]: everything an admin needs at a glance.
 *
 * The answer goes out at once from what the daemon knows (catalog,
 * ledger, schedules, jobs), with anything wrong at the top, in words.
 * Health probes (reachable, versions, sizes, remotes, disk) need the
 * data stores, so they run as a short job; when it reports, the same
 * message is edited with its facts (status_probe_done, which the probe
 * job carries as its on_end).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "approval.h"
#include "bot.h"
#include "catalog.h"
#include "cmd.h"
#include "config.h"
#include "pgbackrest.h"
#include "e2ee.h"
#include "jobs.h"
#include "human.h"
#include "json.h"
#include "metrics.h"
#include "msg.h"
#include "outbox.h"
#include "schedule.h"
#include "seal.h"
#include "util.h"

/* Runs kept for !status TARGET. */
#define RUNS_SHOWN	10
/* Outbox depth worth a word: the homeserver is not taking messages. */
#define OUTBOX_WORRY	20
/* Ledger bytes read for the last runs and failures. */
#define LEDGER_READ	(2 * 1024 * 1024)

/* What the ledger says about one target. */
struct runs {
	const char	*target;	/* NULL: every target */
	cJSON		*last_end;	/* per target: newest backup end line */
	cJSON		*recent;	/* the target's newest end lines */
};

static void
runs_fn(const cJSON *end, void *arg)
{
	struct runs *r = arg;
	const char *target = json_text(end, "target");

	if (!strcmp(json_text(end, "kind"), "backup")) {
		cJSON_DeleteItemFromObjectCaseSensitive(r->last_end, target);
		cJSON_AddItemToObject(r->last_end, target,
		    cJSON_Duplicate(end, 1));
	}
	if (r->target != NULL && !strcmp(target, r->target) &&
	    strcmp(json_text(end, "kind"), "probe") != 0) {
		cJSON_AddItemToArray(r->recent, cJSON_Duplicate(end, 1));
		if (cJSON_GetArraySize(r->recent) > RUNS_SHOWN)
			cJSON_DeleteItemFromArray(r->recent, 0);
	}
}

static void
hhmm(char *out, size_t n, time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, n, "%a %H:%M %Z", &tm);
}

/* Problems first: one line each, in words. */
static void
problems(struct bot *bot, const struct runs *runs, const cJSON *probe,
    struct msg *m)
{
	const struct config *cfg = bot->cfg;
	time_t now = time(NULL);
	struct msg p;
	int n = 0;

	msg_init(&p);
#define PROBLEM(...) do { msg_nl(&p); msg_text(&p, "⚠️ "); \
	msg_textf(&p, __VA_ARGS__); n++; } while (0)
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct target *t = &cfg->targets[i];
		const cJSON *end = cJSON_GetObjectItemCaseSensitive(
		    runs->last_end, t->name), *facts;
		struct backup *list;
		size_t nb = catalog_list(cfg, t->name, &list);
		time_t good = nb > 0 ? list[0].ended : 0, drill_at;
		char age[16], *drill_id = NULL;
		int drill_ok;

		if (runs->target != NULL && strcmp(runs->target, t->name)) {
			catalog_free(list, nb);
			continue;
		}
		if (config_records_runs(t)) {
			cJSON *last, *lg;

			catalog_last_runs(cfg, t->name, &last, &lg);
			good = lg ? (time_t)json_num(lg, "ended") : 0;
			cJSON_Delete(last);
			cJSON_Delete(lg);
		}
		if (good == 0)
			PROBLEM("%s: no good backup yet", t->name);
		/* a failure in the same second as the good backup counts */
		if (end != NULL && json_num(end, "at") >= (double)good &&
		    strcmp(json_text(end, "status"), "ok") != 0 &&
		    strcmp(json_text(end, "status"), "partial") != 0) {
			human_age(age, sizeof(age), difftime(now,
			    (time_t)json_num(end, "at")));
			PROBLEM("%s: the last backup %s %s ago: %s", t->name,
			    json_text(end, "status"), age,
			    *json_text(end, "error") ? json_text(end, "error") :
			    "see its thread");
		}
		if (bot->sched != NULL && sched_stale(bot->sched, t->name))
			PROBLEM("%s: stale, the newest good backup is older "
			    "than it should be", t->name);
		if (nb > 0) {
			const cJSON *it;

			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(
			    list[0].manifest, "remotes"))
				if (strcmp(json_text(it, "status"), "ok") != 0)
					PROBLEM("%s: the newest backup has no "
					    "copy on remote %s", t->name,
					    it->string);
		}
		if (catalog_last_drill(cfg, t, &drill_at, &drill_ok,
		    &drill_id) == 0 && !drill_ok)
			PROBLEM("%s: the last restore drill (of %s) failed",
			    t->name, drill_id);
		free(drill_id);
		catalog_free(list, nb);
		facts = probe ? cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(probe, "targets"),
		    t->name) : NULL;
		if (facts != NULL && *json_text(facts, "error"))
			PROBLEM("%s: %s", t->name, json_text(facts, "error"));
		else if (facts != NULL && t->kind == TARGET_PGBACKREST) {
			char *why = pgbackrest_archive_problem(t, facts);

			if (why != NULL)
				PROBLEM("%s: %s", t->name, why);
			free(why);
		}
		if (facts != NULL && *json_text(facts, "key_error"))
			PROBLEM("%s: the key: %s", t->name,
			    json_text(facts, "key_error"));
		if (facts != NULL && json_num(facts, "unauthenticated") > 0)
			PROBLEM("%s: %.0f backup(s) not authenticated (older, "
			    "or changed); restores refuse them", t->name,
			    json_num(facts, "unauthenticated"));
	}
	if (cfg->encryption_key_file == NULL && runs->target == NULL)
		PROBLEM("%s", seal_no_key_warning);
	if (probe != NULL) {
		const cJSON *it, *disk = cJSON_GetObjectItemCaseSensitive(probe,
		    "disk");

		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(probe,
		    "remotes"))
			if (!cJSON_IsTrue(cJSON_GetObjectItem(it, "reachable")))
				PROBLEM("remote %s: %s", it->string,
				    json_text(it, "error"));
		if (json_num(disk, "total") > 0 && json_num(disk, "free") <
		    json_num(disk, "total") / 10) {
			char fr[16];

			human_size(fr, sizeof(fr), json_num(disk, "free"));
			PROBLEM("backup_dir has only %s free", fr);
		}
	}
	for (size_t i = 0; runs->target == NULL && i < bot->nrooms; i++) {
		if (!bot->rooms[i].joined)
			PROBLEM("room %s: not joined", bot->rooms[i].configured);
		if (bot->rooms[i].encrypted)
			PROBLEM("room %s: encrypted, commands there cannot be "
			    "read", bot->rooms[i].configured);
	}
	if (outbox_depth(bot->outbox) > OUTBOX_WORRY)
		PROBLEM("%zu messages wait to be sent: the homeserver is not "
		    "taking them", outbox_depth(bot->outbox));
#undef PROBLEM
	if (n == 0)
		msg_text(m, "✅ nothing needs attention");
	else {
		char *head = n == 1 ? xstrdup("1 thing needs attention:") :
		    xasprintf("%d things need attention:", n);

		msg_bold(m, head);
		free(head);
		msg_append(m, &p);
	}
	msg_release(&p);
}

/* One target: last good, next run, pause, job, remotes, drill. */
static void
target_line(struct bot *bot, const struct target *t, struct msg *m)
{
	const struct config *cfg = bot->cfg;
	time_t now = time(NULL), next, until, drill_at;
	const char *by;
	char age[16], size[16], dur[32], when[32], *drill_id = NULL;
	int drill_ok;

	msg_nl(m);
	msg_text(m, "• ");
	msg_code(m, t->name);
	msg_textf(m, " (%s): ", config_kind_name(t->kind));
	if (config_records_runs(t)) {
		cJSON *last, *good;

		catalog_last_runs(cfg, t->name, &last, &good);
		if (good == NULL)
			msg_text(m, t->kind == TARGET_MEDIA ? "no good sync yet" :
			    "no good run yet");
		else {
			human_age(age, sizeof(age), difftime(now,
			    (time_t)json_num(good, "started")));
			human_duration(dur, sizeof(dur), json_num(good, "ended") -
			    json_num(good, "started"));
			msg_textf(m, "last good %s %s ago, %s",
			    t->kind == TARGET_SCRIPT ? "run" :
			    t->kind == TARGET_MEDIA ? "sync" : json_text(good,
			    "type"), age, dur);
		}
		cJSON_Delete(last);
		cJSON_Delete(good);
	} else {
		struct backup *list;
		size_t n = catalog_list(cfg, t->name, &list);

		if (n == 0)
			msg_text(m, "no good backup yet");
		else {
			const cJSON *it;

			human_age(age, sizeof(age), difftime(now,
			    list[0].started));
			human_size(size, sizeof(size), (double)list[0].bytes);
			human_duration(dur, sizeof(dur), difftime(list[0].ended,
			    list[0].started));
			msg_textf(m, "last good %s ago, %s, %s; %zu kept", age,
			    size, dur, n);
			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(
			    list[0].manifest, "remotes"))
				msg_textf(m, " · %s %s", it->string,
				    !strcmp(json_text(it, "status"), "ok") ?
				    "✓" : "✗");
		}
		catalog_free(list, n);
	}
	if (catalog_last_drill(cfg, t, &drill_at, &drill_ok, &drill_id) == 0) {
		human_age(age, sizeof(age), difftime(now, drill_at));
		msg_textf(m, " · drill %s %s ago", drill_ok ? "✓" : "✗", age);
		free(drill_id);
	} else
		msg_text(m, " · no drill yet");
	if (bot->sched != NULL && sched_paused(bot->sched, t->name, &by,
	    &until)) {
		msg_textf(m, " · ⏸ paused by %s", by);
		if (until != 0) {
			hhmm(when, sizeof(when), until);
			msg_textf(m, " until %s", when);
		}
	} else if (bot->sched != NULL &&
	    (next = sched_next_run(bot->sched, t->name, 0)) != 0) {
		hhmm(when, sizeof(when), next);
		msg_textf(m, " · next %s", when);
	} else
		msg_text(m, " · no schedule");
	for (struct job *j = jobs_first(bot->jobs); j != NULL; j = j->next) {
		char done[16], total[16];

		if (j->state == JOB_DONE || j->kind == JOB_PROBE ||
		    strcmp(j->target, t->name) != 0)
			continue;
		human_size(done, sizeof(done), (double)j->done);
		human_size(total, sizeof(total), (double)j->total);
		if (j->state == JOB_QUEUED)
			msg_textf(m, " · job %d: %s queued (by %s)", j->number,
			    jobs_kind_word(j->kind), j->requester);
		else if (j->total > 0)
			msg_textf(m, " · job %d: %s running (by %s), %s %.0f%%",
			    j->number, jobs_kind_word(j->kind), j->requester,
			    j->phase ? j->phase : "starting",
			    100.0 * (double)j->done / (double)j->total);
		else
			msg_textf(m, " · job %d: %s running (by %s), %s %s",
			    j->number, jobs_kind_word(j->kind), j->requester,
			    j->phase ? j->phase : "starting", done);
	}
}

/* The WAL archive: pg_stat_archiver and `pgbackrest check`. */
static void
facts_pgbackrest(const cJSON *f, struct msg *m)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(f, "archiver");
	char age[16];

	msg_textf(m, "%s pgbackrest check %s", strcmp(json_text(f, "check"),
	    "ok") ? "✗" : "✓", json_text(f, "check"));
	if (a == NULL)
		return;
	if (*json_text(a, "error")) {
		msg_textf(m, "; archiver: %s", json_text(a, "error"));
		return;
	}
	if (json_str(a, "last_archived_wal") != NULL) {
		human_age(age, sizeof(age), json_num(a, "last_archived_age"));
		msg_textf(m, "; last WAL archived %s, %s ago",
		    json_text(a, "last_archived_wal"), age);
	} else
		msg_text(m, "; no WAL archived yet");
	if (json_num(a, "failed_count") > 0) {
		human_age(age, sizeof(age), json_num(a, "last_failed_age"));
		msg_textf(m, "; %.0f failures, the last (%s) %s ago",
		    json_num(a, "failed_count"), json_text(a, "last_failed_wal"),
		    age);
	}
}

/* One target's probe facts, in words. */
static void
facts_line(const struct target *t, const cJSON *f, struct msg *m)
{
	char size[16], age[16];
	const cJSON *it;

	msg_nl(m);
	msg_text(m, "• ");
	msg_code(m, t->name);
	msg_text(m, ": ");
	if (f == NULL) {
		msg_text(m, "no answer");
		return;
	}
	if (*json_text(f, "error")) {
		msg_textf(m, "✗ %s", json_text(f, "error"));
		return;
	}
	switch (t->kind) {
	case TARGET_POSTGRES:
		human_size(size, sizeof(size), json_num(f, "database_size"));
		msg_textf(m, "✓ PostgreSQL %s, database %s %s",
		    json_text(f, "server_version"), json_text(f, "database"),
		    size);
		if (json_num(f, "max_connections") > 0)
			msg_textf(m, ", %.0f of %.0f connections",
			    json_num(f, "connections"),
			    json_num(f, "max_connections"));
		break;
	case TARGET_REDIS:
		human_size(size, sizeof(size), json_num(f, "used_memory"));
		msg_textf(m, "✓ %s %s, %s used, %.0f keys",
		    *json_text(f, "server") ? json_text(f, "server") : "Redis",
		    json_text(f, "server_version"), size,
		    json_num(f, "keys_total"));
		if (json_num(f, "rdb_last_save_time") > 0) {
			human_age(age, sizeof(age), difftime(time(NULL),
			    (time_t)json_num(f, "rdb_last_save_time")));
			msg_textf(m, ", last save %s ago", age);
		}
		break;
	case TARGET_MEDIA:
		msg_textf(m, "%s source %s", cJSON_IsFalse(cJSON_GetObjectItem(f,
		    "reachable")) ? "✗" : "✓", cJSON_IsTrue(
		    cJSON_GetObjectItem(f, "source_empty")) ? "reachable but "
		    "EMPTY" : "reachable");
		break;
	case TARGET_SCRIPT:
		msg_textf(m, "✓ %s ready", json_text(f, "command"));
		break;
	case TARGET_PGBACKREST:
		facts_pgbackrest(f, m);
		break;
	case TARGET_FILES:
		msg_text(m, "✓ paths readable");
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(f,
		    "warnings"))
			msg_textf(m, "; ⚠️ %s", cJSON_IsString(it) ?
			    it->valuestring : "?");
		break;
	}
}

static void
health(struct bot *bot, const char *only, const cJSON *probe, int running,
    struct msg *m)
{
	const struct config *cfg = bot->cfg;
	const cJSON *it, *disk;
	char fr[16], tot[16];

	msg_nl(m);
	msg_nl(m);
	msg_bold(m, "Health");
	if (cfg->ntargets == 0) {
		msg_text(m, ": nothing to check");
		return;
	}
	if (probe == NULL) {
		msg_text(m, running ? ": checking…" : ": the check could not "
		    "run");
		return;
	}
	if (strcmp(json_text(probe, "status"), "ok") != 0) {
		msg_textf(m, ": the check failed: %s", json_text(probe,
		    "error"));
		return;
	}
	for (size_t i = 0; i < cfg->ntargets; i++)
		if (only == NULL || !strcmp(only, cfg->targets[i].name))
			facts_line(&cfg->targets[i], cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetObjectItemCaseSensitive(probe, "targets"),
			    cfg->targets[i].name), m);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(probe,
	    "remotes")) {
		msg_nl(m);
		msg_textf(m, "• remote %s: ", it->string);
		if (cJSON_IsTrue(cJSON_GetObjectItem(it, "reachable")))
			msg_textf(m, "✓ reachable, %.0f file(s) of %s",
			    json_num(it, "files"), json_text(it,
			    "checked_with"));
		else
			msg_textf(m, "✗ %s", json_text(it, "error"));
	}
	disk = cJSON_GetObjectItemCaseSensitive(probe, "disk");
	msg_nl(m);
	if (json_num(disk, "total") > 0) {
		human_size(fr, sizeof(fr), json_num(disk, "free"));
		human_size(tot, sizeof(tot), json_num(disk, "total"));
		msg_textf(m, "• backup_dir: %s free of %s", fr, tot);
	} else
		msg_textf(m, "• backup_dir: %s", *json_text(disk, "error") ?
		    json_text(disk, "error") : "unknown");
}

/* The last runs of one target, newest first. */
static void
recent_runs(const struct runs *runs, struct msg *m)
{
	int n = cJSON_GetArraySize(runs->recent);

	msg_nl(m);
	msg_nl(m);
	msg_bold(m, "Last runs");
	if (n == 0)
		msg_text(m, ": none recorded");
	for (int i = n - 1; i >= 0; i--) {
		const cJSON *e = cJSON_GetArrayItem(runs->recent, i);
		char when[32], size[16], dur[32];
		const char *st = json_text(e, "status");

		hhmm(when, sizeof(when), (time_t)json_num(e, "at"));
		human_size(size, sizeof(size), json_num(e, "bytes"));
		human_duration(dur, sizeof(dur), json_num(e, "duration"));
		msg_nl(m);
		msg_textf(m, "%s %s %s %s", !strcmp(st, "ok") ? "✅" :
		    !strcmp(st, "partial") ? "⚠️" : "❌", when,
		    json_text(e, "kind"), st);
		if (*json_text(e, "id"))
			msg_textf(m, " · %s", json_text(e, "id"));
		if (json_num(e, "bytes") > 0)
			msg_textf(m, " · %s", size);
		msg_textf(m, " · %s · by %s", dur, json_text(e, "by"));
		if (*json_text(e, "error"))
			msg_textf(m, " · %s", json_text(e, "error"));
	}
}

static void
build(struct bot *bot, const char *only, const cJSON *probe, int running,
    struct msg *m)
{
	const struct config *cfg = bot->cfg;
	struct runs runs;
	char up[32], *cause = NULL;
	int open = 0;

	runs.target = only;
	runs.last_end = cJSON_CreateObject();
	runs.recent = cJSON_CreateArray();
	if (metrics_ledger_ends(cfg, LEDGER_READ, runs_fn, &runs,
	    &cause) == -1) {
		msg_textf(m, "(the ledger cannot be read: %s)", cause);
		msg_nl(m);
		free(cause);
	}
	msg_bold(m, only ? only : "backupbot " BB_VERSION);
	msg_nl(m);
	problems(bot, &runs, probe, m);
	msg_nl(m);
	msg_nl(m);
	msg_bold(m, only ? "Target" : "Targets");
	if (cfg->ntargets == 0)
		msg_text(m, ": none configured");
	for (size_t i = 0; i < cfg->ntargets; i++)
		if (only == NULL || !strcmp(only, cfg->targets[i].name))
			target_line(bot, &cfg->targets[i], m);
	health(bot, only, probe, running, m);
	if (only != NULL)
		recent_runs(&runs, m);
	cJSON_Delete(runs.last_end);
	cJSON_Delete(runs.recent);
	if (only != NULL)
		return;
	msg_nl(m);
	msg_nl(m);
	msg_bold(m, "Bot");
	human_duration(up, sizeof(up), difftime(time(NULL), bot->started));
	msg_textf(m, ": version %s, uptime %s, %s as %s, outbox: %zu "
	    "waiting; rooms:", BB_VERSION, up, cfg->homeserver, bot->login.user,
	    outbox_depth(bot->outbox));
	for (size_t i = 0; i < bot->nrooms; i++) {
		msg_text(m, " ");
		msg_code(m, bot->rooms[i].configured);
		msg_text(m, bot->rooms[i].joined ? " ✓" : " ✗ not joined");
		if (bot->rooms[i].encrypted)
			msg_text(m, bot->e2ee != NULL ? " 🔒" :
			    " 🔒 (cannot read: no pickle_key_file)");
	}
	if (bot->e2ee != NULL) {
		char *fp = e2ee_fingerprint(e2ee_ed25519(bot->e2ee));

		msg_nl(m);
		msg_textf(m, "end-to-end encryption: device %s, ed25519 "
		    "fingerprint ", e2ee_device_id(bot->e2ee));
		msg_code(m, fp);
		free(fp);
	}
	for (struct request *r = approvals_first(bot->approvals); r != NULL;
	    r = r->next) {
		if (r->state != REQ_PENDING && r->state != REQ_RUNNING)
			continue;
		if (open++ == 0) {
			msg_nl(m);
			msg_text(m, "restore requests:");
		}
		msg_text(m, " ");
		msg_code(m, r->id);
		msg_textf(m, " %s of %s by %s (%d/%d)", approval_state_name(
		    r->state), r->target, r->requester, approval_count(r),
		    r->needed);
	}
}

static void status_probe_done(struct bot *bot, const struct job *j);
/*
 * !status messages waiting for a probe that was already running when
 * they came: one probe at a time (per TARGET or for all), and every
 * message waiting for it is edited with its answer.
 */
struct probe_waiter {
	int			 job;		/* the probe's job number */
	char			*room;
	uint64_t		 seq;		/* the message to edit */
	struct probe_waiter	*next;
};
static struct probe_waiter *probe_waiters;

/* The probe of the same scope still running, or NULL. */
static struct job *
probe_running(struct bot *bot, const char *only)
{
	for (struct job *j = jobs_first(bot->jobs); j != NULL; j = j->next) {
		const char *its = j->args != NULL ? j->args[0] : NULL;

		if (j->kind == JOB_PROBE && j->state != JOB_DONE &&
		    (its == NULL) == (only == NULL) &&
		    (only == NULL || !strcmp(its, only)))
			return j;
	}
	return NULL;
}

static int
status_exec(struct cmd_ctx *ctx)
{
	struct bot *bot = ctx->bot;
	const char *only = ctx->argc > 1 ? ctx->argv[1] : NULL;
	const char *args[] = { only, NULL };
	struct job *j;
	struct msg m;
	uint64_t seq;

	msg_init(&m);
	if (only != NULL && (!config_valid_name(only) ||
	    config_target(bot->cfg, only) == NULL)) {
		msg_textf(&m, "No target \"%s\"; !status alone shows them all.",
		    only);
		bot_reply(ctx, &m);
		msg_release(&m);
		return -1;
	}
	if (bot->cfg->ntargets == 0) {
		/* nothing to probe */
		build(bot, only, NULL, 0, &m);
		bot_reply(ctx, &m);
		msg_release(&m);
		return 0;
	}
	build(bot, only, NULL, 1, &m);
	seq = bot_reply(ctx, &m);
	msg_release(&m);
	if ((j = probe_running(bot, only)) != NULL) {
		struct probe_waiter *w = xcalloc(1, sizeof(*w));

		w->job = j->number;
		w->room = xstrdup(ctx->room_id);
		w->seq = seq;
		w->next = probe_waiters;
		probe_waiters = w;
		return 0;
	}
	j = jobs_submit(bot->jobs, JOB_PROBE, only ? only : "-", only ? args :
	    NULL, ctx->sender, ctx->room_id, ctx->thread_root, ctx->event_id,
	    0);
	if (j != NULL) {
		j->reply_seq = seq;
		j->on_end = status_probe_done;
		return 0;
	}
	/* no probe: say so in the same message */
	msg_init(&m);
	build(bot, only, NULL, 0, &m);
	bot_edit(bot, ctx->room_id, seq, &m);
	msg_release(&m);
	return 0;
}

static void
status_probe_done(struct bot *bot, const struct job *j)
{
	const char *only = j->args != NULL ? j->args[0] : NULL;
	cJSON *failed = NULL;
	const cJSON *probe = j->result;
	struct msg m;

	{
		const struct probe_waiter *w = probe_waiters;

		while (w != NULL && w->job != j->number)
			w = w->next;
		if (j->reply_seq == 0 && w == NULL)
			return;	/* nobody asked */
	}
	if (probe == NULL) {
		failed = cJSON_CreateObject();
		cJSON_AddStringToObject(failed, "status", "failed");
		cJSON_AddStringToObject(failed, "error", j->cancelled_by ?
		    "it took too long and was stopped" : "it ended without an "
		    "answer");
		probe = failed;
	}
	msg_init(&m);
	build(bot, only, probe, 0, &m);
	if (j->reply_seq != 0)
		bot_edit(bot, j->room, j->reply_seq, &m);
	/* the same answer for those who asked while it ran */
	for (struct probe_waiter **wp = &probe_waiters; *wp != NULL; ) {
		struct probe_waiter *w = *wp;

		if (w->job != j->number) {
			wp = &w->next;
			continue;
		}
		bot_edit(bot, w->room, w->seq, &m);
		*wp = w->next;
		free(w->room);
		free(w);
	}
	msg_release(&m);
	cJSON_Delete(failed);
}

const struct cmd_entry cmd_status_entry = {
	.name = "status",
	.usage = "[TARGET]",
	.summary = "everything at a glance: problems first, then each target "
	    "(last good, next run, drill), health probes, the bot; TARGET: "
	    "its last 10 runs",
	.min_args = 0,
	.max_args = 1,
	.exec = status_exec,
	.flags = CMD_READONLY,
};
