/*
 * jobs.c - the daemon's job supervisor (see jobs.h).
 */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bot.h"
#include "catalog.h"
#include "config.h"
#include "human.h"
#include "json.h"
#include "jobs.h"
#include "log.h"
#include "msg.h"
#include "matrix.h"
#include "metrics.h"
#include "proc.h"
#include "util.h"

#define EDIT_INTERVAL_MS	3000
#define KILL_GRACE_MS		10000
#define LEDGER_TAIL		(1024 * 1024)

/* Results of jobs submitted together (!backup all), for one table. */
struct group {
	int		 id;
	cJSON		*rows;
	struct group	*next;
};

struct jobs {
	struct bot	*bot;
	const struct jobs_ops *ops;
	struct group	*groups;
	struct job	*head;
	int		 next_number;
	int		 next_group;
	char		*error;
	char		*ledger;
};

static const char *const kind_words[] = {
	[JOB_BACKUP] = "backup", [JOB_VERIFY] = "verification",
	[JOB_RESTORE] = "restore", [JOB_CHECK] = "check",
	[JOB_PROBE] = "health check"
};
/* What the child is told to do: `backupbot job WORD ...`. */
static const char *const kind_args[] = {
	[JOB_BACKUP] = "backup", [JOB_VERIFY] = "verify",
	[JOB_RESTORE] = "restore", [JOB_CHECK] = "check",
	[JOB_PROBE] = "probe"
};

/* How long a probe may take before it is stopped: !status waits on it. */
#define PROBE_TIMEOUT	60

const char *
jobs_kind_word(enum job_kind k)
{
	return kind_words[k];
}

static const char *
kind_word(enum job_kind k)
{
	return kind_words[k];
}

/* healthchecks.io style: URL/start, URL (success), URL/fail. */
static void
ping(struct jobs *js, enum job_kind kind, const char *target,
    const char *event)
{
	const struct target *t = config_target(js->bot->cfg, target);
	char *url;

	if (kind != JOB_BACKUP || t == NULL || t->healthcheck_url == NULL ||
	    js->bot->mx == NULL)
		return;
	url = mx_ping_url(t->healthcheck_url, event);
	mx_ping(js->bot->mx, url, 10000);
	free(url);
}

/* The metrics file follows the ledger; its failure is only logged. */
static void
metrics_update(struct jobs *js)
{
	char *cause = NULL;

	if (metrics_write(js->bot->cfg, &cause) == -1) {
		log_warnx("metrics: %s", cause);
		free(cause);
	}
}

static enum job_kind
kind_of(const char *arg)
{
	for (size_t k = 0; k < nitems(kind_args); k++)
		if (!strcmp(kind_args[k], arg) || !strcmp(kind_words[k], arg))
			return (enum job_kind)k;
	return JOB_BACKUP;
}

struct jobs *
jobs_new(struct bot *bot, const struct jobs_ops *ops)
{
	struct jobs *js = xcalloc(1, sizeof(*js));

	js->bot = bot;
	js->ops = ops;
	js->next_number = 1;
	js->next_group = 1;
	js->ledger = xasprintf("%s/ledger.jsonl", bot->cfg->state_dir);
	return js;
}

static void
job_free(struct job *j)
{
	free(j->target);
	strv_free(j->args);
	free(j->request);
	free(j->requester);
	free(j->room);
	free(j->thread);
	free(j->command);
	free(j->phase);
	free(j->cancelled_by);
	buf_release(&j->line);
	cJSON_Delete(j->result);
	if (j->fd != -1)
		close(j->fd);
	free(j);
}

void
jobs_free(struct jobs *js)
{
	struct job *j, *next;

	if (js == NULL)
		return;
	for (j = js->head; j != NULL; j = next) {
		next = j->next;
		if (j->state == JOB_RUNNING && j->pid > 0)
			kill(-j->pid, SIGTERM);
		job_free(j);
	}
	while (js->groups != NULL) {
		struct group *g = js->groups;

		js->groups = g->next;
		cJSON_Delete(g->rows);
		free(g);
	}
	free(js->error);
	free(js->ledger);
	free(js);
}

const char *
jobs_last_error(struct jobs *js)
{
	return js->error;
}

int
jobs_new_group(struct jobs *js)
{
	return js->next_group++;
}

struct job *
jobs_first(struct jobs *js)
{
	return js->head;
}

/* Append one line to the ledger, durably. */
static void
ledger_add(struct jobs *js, cJSON *line)
{
	char *s = cJSON_PrintUnformatted(line), *l;
	int fd;

	cJSON_Delete(line);
	l = xasprintf("%s\n", s);
	free(s);
	fd = open(js->ledger, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1 || write(fd, l, strlen(l)) != (ssize_t)strlen(l) ||
	    fsync(fd) == -1)
		log_warn("ledger: cannot append to %s", js->ledger);
	if (fd != -1)
		close(fd);
	free(l);
}

static cJSON *
ledger_line(const char *event, const struct job *j)
{
	cJSON *l = cJSON_CreateObject();

	cJSON_AddStringToObject(l, "event", event);
	cJSON_AddNumberToObject(l, "job", j->number);
	cJSON_AddStringToObject(l, "kind", kind_word(j->kind));
	cJSON_AddStringToObject(l, "target", j->target);
	cJSON_AddStringToObject(l, "by", j->requester);
	cJSON_AddStringToObject(l, "room", j->room);
	if (j->thread != NULL)
		cJSON_AddStringToObject(l, "thread", j->thread);
	cJSON_AddNumberToObject(l, "at", (double)time(NULL));
	return l;
}

/* ---- messages --------------------------------------------------------- */

/* A reply in the job's thread; returns its outbox seq. */
static uint64_t
reply_in_thread(struct jobs *js, const struct job *j, struct msg *m)
{
	return js->ops->post(js->bot, j, m);
}

static void
progress_text(const struct job *j, struct msg *m, int64_t now)
{
	double secs = (now - j->started_mono) / 1000.0;
	double rate = secs > 0.5 ? (double)j->done / secs : 0;
	char done[32], total[32], speed[32], eta[32];

	human_size(done, sizeof(done), (double)j->done);
	human_size(total, sizeof(total), (double)j->total);
	human_size(speed, sizeof(speed), rate);
	msg_textf(m, "⏳ %s of %s (job %d): %s", kind_word(j->kind), j->target,
	    j->number, j->phase ? j->phase : "starting");
	if (j->total > 0) {
		double f = (double)j->done / (double)j->total;
		char bar[64] = "";
		size_t bl = 0;

		if (f > 1)
			f = 1;
		for (int i = 0; i < 20; i++)
			bl += (size_t)snprintf(bar + bl, sizeof(bar) - bl, "%s",
			    i < (int)(f * 20) ? "█" : "░");
		msg_textf(m, " %s %.0f%% · %s of ~%s", bar, f * 100, done,
		    total);
		if (rate > 0 && f < 1) {
			human_duration(eta, sizeof(eta),
			    ((double)j->total - (double)j->done) / rate);
			msg_textf(m, " · %s/s · ETA %s", speed, eta);
		}
	} else if (j->done > 0)
		msg_textf(m, " · %s · %s/s", done, speed);
}

static void
progress_update(struct jobs *js, struct job *j, int64_t now, int force)
{
	struct msg m;

	if (j->progress_seq == 0 ||
	    (!force && now - j->last_edit < EDIT_INTERVAL_MS))
		return;
	msg_init(&m);
	progress_text(j, &m, now);
	js->ops->edit(js->bot, j->room, j->progress_seq, &m);
	msg_release(&m);
	j->last_edit = now;
}

/* A restore or a restore drill: into what, what was compared, notes. */
static void
restore_summary(const struct config *js_cfg, const struct job *j,
    const cJSON *r, int ok, struct msg *m, struct msg *e)
{
	const char *what = j->kind == JOB_RESTORE ? "restore" : "restore drill";
	const cJSON *it;
	char dur[32];

	human_duration(dur, sizeof(dur), json_num(r, "duration"));
	if (ok) {
		msg_textf(m, "✅ %s of %s: ", what, j->target);
		msg_code(m, json_text(r, "id"));
		if (*json_text(r, "into")) {
			msg_text(m, j->kind == JOB_RESTORE ? " restored into " :
			    " restored into the scratch copy ");
			msg_code(m, json_text(r, "into"));
		}
		msg_textf(m, " in %s", dur);
		if (*json_text(r, "reached")) {
			msg_text(m, "; recovered to ");
			msg_code(m, json_text(r, "reached"));
		}
		if (cJSON_GetObjectItemCaseSensitive(r, "tables") != NULL) {
			/* pgbackrest: no manifest to compare, the counts */
			int shown = 0;

			msg_textf(m, "; %.0f tables queried",
			    json_num(r, "compared"));
			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(
			    r, "tables")) {
				if (shown++ == 30) {
					msg_nl(m);
					msg_text(m, "▸ …");
					break;
				}
				msg_nl(m);
				msg_textf(m, "▸ %s: %.0f rows", it->string,
				    it->valuedouble);
			}
		} else if (json_num(r, "compared") > 0) {
			const struct target *t = config_target(js_cfg, j->target);
			/* what a backend counts when it compares */
			const char *unit = t == NULL ? "items" :
			    t->kind == TARGET_POSTGRES ? "tables" :
			    t->kind == TARGET_REDIS ? "keys" :
			    t->kind == TARGET_FILES ? "files" : "files";

			msg_textf(m, "; %.0f %s compared with the manifest, "
			    "all equal", json_num(r, "compared"), unit);
		}
		msg_textf(e, "✅ %s of %s: done", what, j->target);
	} else {
		msg_textf(m, "❌ %s of %s failed: ", what, j->target);
		msg_pre(m, *json_text(r, "error") ? json_text(r, "error") :
		    "unknown error");
		msg_textf(e, "❌ %s of %s: failed", what, j->target);
	}
	if (*json_text(r, "fetched_from")) {
		msg_nl(m);
		msg_textf(m, "fetched from remote %s, hash checked",
		    json_text(r, "fetched_from"));
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r,
	    "differences")) {
		msg_nl(m);
		msg_textf(m, "≠ %s", cJSON_IsString(it) ? it->valuestring : "?");
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "notes")) {
		msg_nl(m);
		msg_textf(m, "• %s", cJSON_IsString(it) ? it->valuestring : "?");
	}
}

/* A script's run (output = log): how it ended; its lines follow. */
static void
script_summary(const struct job *j, const cJSON *r, int ok, struct msg *m,
    struct msg *e)
{
	const cJSON *it;
	char dur[32];

	human_duration(dur, sizeof(dur), json_num(r, "duration"));
	msg_textf(m, "%s script %s %s in %s", ok ? "✅" : "⚠️", j->target,
	    json_text(r, "exit"), dur);
	msg_nl(m);
	msg_code(m, json_text(r, "id"));
	if (*json_text(r, "log")) {
		msg_text(m, " · full output in ");
		msg_code(m, json_text(r, "log"));
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r,
	    "warnings")) {
		msg_nl(m);
		msg_textf(m, "⚠️ %s", cJSON_IsString(it) ? it->valuestring : "?");
	}
	msg_textf(e, "%s script %s: %s", ok ? "✅" : "⚠️", j->target,
	    ok ? "done" : "partial");
}

static void
summary(struct jobs *js, struct job *j, const char *crash)
{
	const cJSON *r = j->result, *rem, *removed, *it;
	const char *status = r ? json_text(r, "status") : "failed";
	char size[32], raw[32], dur[32], speed[32];
	double secs = r ? json_num(r, "duration") : 0;
	struct msg m, e;
	int ok = !strcmp(status, "ok"), partial = !strcmp(status, "partial");

	msg_init(&m);
	msg_init(&e);
	if (j->cancelled_by != NULL && !ok && !partial) {
		msg_textf(&m, "⏹ %s of %s cancelled by %s", kind_word(j->kind),
		    j->target, j->cancelled_by);
		msg_textf(&e, "⏹ %s of %s: cancelled", kind_word(j->kind),
		    j->target);
	} else if (r != NULL && (j->kind == JOB_RESTORE ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "drill")))) {
		restore_summary(js->bot->cfg, j, r, ok, &m, &e);
	} else if ((ok || partial) && json_str(r, "exit") != NULL &&
	    json_str(r, "file") == NULL) {
		script_summary(j, r, ok, &m, &e);
	} else if ((ok || partial) &&
	    cJSON_GetObjectItemCaseSensitive(r, "repos") != NULL) {
		/* pgbackrest: what each repository got */
		msg_textf(&m, "%s %s backup of %s%s", ok ? "✅" : "⚠️",
		    json_text(r, "type"), j->target, ok ? "" :
		    " is only partial: a repository failed");
		msg_nl(&m);
		msg_code(&m, json_text(r, "id"));
		human_duration(dur, sizeof(dur), secs);
		human_size(size, sizeof(size), json_num(r, "bytes"));
		human_size(raw, sizeof(raw), json_num(r, "delta"));
		msg_textf(&m, " · %s, %s changed, in %s", size, raw, dur);
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r,
		    "repos")) {
			int rok = !strcmp(json_text(it, "status"), "ok");

			human_size(size, sizeof(size), json_num(it, "repo_size"));
			human_duration(dur, sizeof(dur), json_num(it,
			    "duration"));
			msg_nl(&m);
			msg_textf(&m, "%s %s: ", rok ? "✓" : "✗", it->string);
			if (rok) {
				msg_code(&m, json_text(it, "label"));
				msg_textf(&m, " %s, %s stored, %s",
				    json_text(it, "type"), size, dur);
			} else
				msg_textf(&m, "%s", json_text(it, "error"));
		}
		msg_textf(&e, "%s backup of %s: %s", ok ? "✅" : "⚠️",
		    j->target, ok ? "done" : "partial");
	} else if ((ok || partial) &&
	    cJSON_GetObjectItemCaseSensitive(r, "destinations") != NULL) {
		/* a media sync: what it copied where */
		msg_textf(&m, "%s sync of %s%s", ok ? "✅" : "⚠️", j->target,
		    ok ? "" : " is only partial: a destination failed");
		msg_nl(&m);
		msg_code(&m, json_text(r, "id"));
		human_duration(dur, sizeof(dur), secs);
		msg_textf(&m, " in %s", dur);
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r,
		    "destinations")) {
			int dok = !strcmp(json_text(it, "status"), "ok");

			human_size(size, sizeof(size), json_num(it, "bytes"));
			msg_nl(&m);
			msg_textf(&m, "%s ", dok ? "✓" : "✗");
			msg_code(&m, it->string);
			msg_textf(&m, ": %.0f copied (%s), %.0f deleted, %.0f "
			    "errors", json_num(it, "transferred"), size,
			    json_num(it, "deleted"), json_num(it, "errors"));
			if (!dok)
				msg_textf(&m, " (%s)", json_text(it, "error"));
		}
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r,
		    "warnings")) {
			msg_nl(&m);
			msg_textf(&m, "⚠️ %s", cJSON_IsString(it) ?
			    it->valuestring : "?");
		}
		msg_textf(&e, "%s sync of %s: %s", ok ? "✅" : "⚠️", j->target,
		    ok ? "done" : "partial");
	} else if (ok || partial) {
		msg_textf(&m, "%s %s of %s", ok ? "✅" : "⚠️",
		    kind_word(j->kind), j->target);
		if (partial)
			msg_text(&m, " is only partial: a remote copy failed");
		msg_nl(&m);
		msg_code(&m, json_text(r, "id"));
		if (j->kind == JOB_BACKUP) {
			human_size(size, sizeof(size), json_num(r, "bytes"));
			human_size(raw, sizeof(raw), json_num(r, "bytes_raw"));
			human_duration(dur, sizeof(dur), secs);
			human_size(speed, sizeof(speed), secs > 0 ?
			    json_num(r, "bytes_raw") / secs : 0);
			msg_textf(&m, " · %s (%s before compression) in %s, "
			    "%s/s · blake2b ", size, raw, dur, speed);
		} else
			msg_text(&m, " · hash, decryption and restore tool "
			    "read all good · blake2b ");
		{
			char h[17];

			snprintf(h, sizeof(h), "%s", json_text(r, "blake2b"));
			msg_code(&m, h);
		}
		rem = cJSON_GetObjectItemCaseSensitive(r, "remotes");
		if (cJSON_GetArraySize(rem) > 0) {
			msg_nl(&m);
			msg_text(&m, "remotes:");
			cJSON_ArrayForEach(it, rem) {
				int rok = !strcmp(json_text(it, "status"), "ok");

				msg_textf(&m, " %s %s", it->string,
				    rok ? "✓" : "✗");
				if (!rok)
					msg_textf(&m, " (%s)",
					    json_text(it, "error"));
			}
		}
		rem = cJSON_GetObjectItemCaseSensitive(r, "warnings");
		cJSON_ArrayForEach(it, rem) {
			msg_nl(&m);
			msg_textf(&m, "⚠️ %s", cJSON_IsString(it) ?
			    it->valuestring : "?");
		}
		removed = cJSON_GetObjectItemCaseSensitive(r, "removed");
		if (cJSON_GetArraySize(removed) > 0) {
			msg_nl(&m);
			msg_text(&m, "retention removed:");
			cJSON_ArrayForEach(it, removed)
				msg_textf(&m, " %s", cJSON_IsString(it) ?
				    it->valuestring : "?");
		}
		msg_textf(&e, "%s %s of %s: %s", ok ? "✅" : "⚠️",
		    kind_word(j->kind), j->target, ok ? "done" : "partial");
	} else {
		const char *cause = crash ? crash : r ? json_text(r, "error") :
		    "no result";

		msg_textf(&m, "❌ %s of %s failed: ", kind_word(j->kind),
		    j->target);
		msg_pre(&m, cause);
		msg_textf(&e, "❌ %s of %s: failed", kind_word(j->kind),
		    j->target);
	}
	/* an operator's program: its last lines (script.h bounds them) */
	if (r != NULL && *json_text(r, "output")) {
		msg_nl(&m);
		msg_pre(&m, json_text(r, "output"));
	}
	if (j->progress_seq != 0)
		js->ops->edit(js->bot, j->room, j->progress_seq, &e);
	reply_in_thread(js, j, &m);
	msg_release(&m);
	msg_release(&e);
}

/* Record a finished job of a group; post the table when it is the last. */
static void
group_done(struct jobs *js, struct job *j)
{
	struct group **gp, *g;
	const cJSON *r = j->result, *rem, *it;
	cJSON *row;
	char size[32], dur[32];
	struct msg m;
	int pending = 0;

	if (j->group == 0)
		return;
	for (gp = &js->groups; *gp != NULL && (*gp)->id != j->group;
	    gp = &(*gp)->next)
		;
	if ((g = *gp) == NULL) {
		g = *gp = xcalloc(1, sizeof(*g));
		g->id = j->group;
		g->rows = cJSON_CreateArray();
	}
	row = cJSON_CreateObject();
	cJSON_AddStringToObject(row, "target", j->target);
	cJSON_AddStringToObject(row, "status", r ? json_text(r, "status") :
	    "crashed");
	cJSON_AddNumberToObject(row, "bytes", r ? json_num(r, "bytes") : 0);
	cJSON_AddNumberToObject(row, "duration", r ? json_num(r, "duration") :
	    0);
	rem = r ? cJSON_GetObjectItemCaseSensitive(r, "remotes") : NULL;
	if (rem == NULL && r != NULL)
		rem = cJSON_GetObjectItemCaseSensitive(r, "destinations");
	if (rem == NULL && r != NULL)
		rem = cJSON_GetObjectItemCaseSensitive(r, "repos");
	cJSON_AddItemToObject(row, "remotes", rem ? cJSON_Duplicate(rem, 1) :
	    cJSON_CreateObject());
	cJSON_AddItemToArray(g->rows, row);
	for (struct job *o = js->head; o != NULL; o = o->next)
		if (o != j && o->group == j->group && o->state != JOB_DONE)
			pending++;
	if (pending > 0)
		return;
	*gp = g->next;
	if (cJSON_GetArraySize(g->rows) > 1) {
		msg_init(&m);
		msg_bold(&m, "Summary");
		cJSON_ArrayForEach(row, g->rows) {
			const char *st = json_text(row, "status");

			human_size(size, sizeof(size), json_num(row, "bytes"));
			human_duration(dur, sizeof(dur), json_num(row,
			    "duration"));
			msg_nl(&m);
			msg_textf(&m, "%s ", !strcmp(st, "ok") ? "✅" :
			    !strcmp(st, "partial") ? "⚠️" : "❌");
			msg_code(&m, json_text(row, "target"));
			msg_textf(&m, " %s · %s · %s", st, size, dur);
			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(
			    row, "remotes"))
				msg_textf(&m, " · %s %s", it->string,
				    !strcmp(json_text(it, "status"), "ok") ?
				    "✓" : "✗");
		}
		reply_in_thread(js, j, &m);
		msg_release(&m);
	}
	cJSON_Delete(g->rows);
	free(g);
}

/* ---- running ---------------------------------------------------------- */

static int
running_count(struct jobs *js)
{
	int n = 0;

	for (struct job *j = js->head; j != NULL; j = j->next)
		n += j->state == JOB_RUNNING && j->kind != JOB_PROBE;
	return n;
}

static void
job_start(struct jobs *js, struct job *j)
{
	const char *argv[8 + JOB_MAX_ARGS], *env[3];
	char *cause = NULL, number[32];
	struct proc p;
	struct msg m;
	int n = 0;

	argv[n++] = "/proc/self/exe";
	argv[n++] = "-c";
	argv[n++] = js->bot->cfg->path;
	argv[n++] = "job";
	argv[n++] = kind_args[j->kind];
	if (j->kind != JOB_PROBE)
		argv[n++] = j->target;
	for (size_t i = 0; j->args != NULL && j->args[i] != NULL &&
	    i < JOB_MAX_ARGS; i++) {
		/* a check is told the backup only; the plan keeps the rest */
		if (j->kind == JOB_CHECK && i > 0)
			break;
		argv[n++] = j->args[i];
	}
	argv[n] = NULL;
	j->started_at = time(NULL);
	j->started_mono = mono_ms();
	/* for the operators' scripts and hooks (script.h) */
	/* (the scheduler marks j->scheduled only after submitting it) */
	env[0] = j->scheduled || !strcmp(j->requester, "schedule") ?
	    "BACKUPBOT_TRIGGER=schedule" :
	    "BACKUPBOT_TRIGGER=chat";
	snprintf(number, sizeof(number), "BACKUPBOT_JOB=%d", j->number);
	env[1] = number;
	env[2] = NULL;
	msg_init(&m);
	if (proc_spawn(&p, argv, env, PROC_STDOUT | PROC_NEWGROUP,
	    &cause) == -1) {
		log_warnx("job %d: %s", j->number, cause);
		msg_textf(&m, "❌ cannot start the %s of %s: %s",
		    kind_word(j->kind), j->target, cause);
		reply_in_thread(js, j, &m);
		msg_release(&m);
		free(cause);
		j->state = JOB_DONE;
		return;
	}
	j->pid = p.pid;
	j->fd = p.out_fd;
	fcntl(j->fd, F_SETFL, fcntl(j->fd, F_GETFL) | O_NONBLOCK);
	j->state = JOB_RUNNING;
	log_info("job %d: %s of %s started by %s (pid %d)", j->number,
	    kind_word(j->kind), j->target, j->requester, (int)j->pid);
	if (j->kind != JOB_PROBE)
		ledger_add(js, ledger_line("start", j));
	ping(js, j->kind, j->target, "start");
	/* checks and probes are quick and answered otherwise */
	if (j->kind != JOB_CHECK && j->kind != JOB_PROBE) {
		progress_text(j, &m, mono_ms());
		j->progress_seq = reply_in_thread(js, j, &m);
		j->last_edit = mono_ms();
	}
	msg_release(&m);
}

static void
start_queued(struct jobs *js)
{
	int running = running_count(js);

	for (struct job *j = js->head; j != NULL &&
	    running < js->bot->cfg->max_parallel_jobs; j = j->next) {
		if (j->state != JOB_QUEUED)
			continue;
		job_start(js, j);
		running += j->state == JOB_RUNNING;
	}
}

static struct job *
running_for(struct jobs *js, const char *target)
{
	for (struct job *j = js->head; j != NULL; j = j->next)
		if (j->state != JOB_DONE && !strcmp(j->target, target))
			return j;
	return NULL;
}

struct job *
jobs_submit(struct jobs *js, enum job_kind kind, const char *target,
    const char *const *args, const char *requester, const char *room,
    const char *thread, const char *command, int group)
{
	return jobs_submit_in(js, kind, target, args, requester, room, thread,
	    0, command, group);
}

struct job *
jobs_submit_in(struct jobs *js, enum job_kind kind, const char *target,
    const char *const *args, const char *requester, const char *room,
    const char *thread, uint64_t thread_seq, const char *command, int group)
{
	struct job *j, **tail;

	free(js->error);
	js->error = NULL;
	if (kind == JOB_PROBE)
		goto make;
	if (config_target(js->bot->cfg, target) == NULL) {
		js->error = xasprintf("no target '%s'", target);
		return NULL;
	}
	if ((j = running_for(js, target)) != NULL) {
		char when[16];
		struct tm tm;
		time_t at = j->state == JOB_RUNNING ? j->started_at :
		    j->queued_at;

		gmtime_r(&at, &tm);
		strftime(when, sizeof(when), "%H:%M UTC", &tm);
		if (j->thread != NULL)
			js->error = xasprintf("%s of %s is already %s (job %d, "
			    "started by %s at %s, see https://matrix.to/#/%s/%s)",
			    kind_word(j->kind), target, j->state == JOB_RUNNING ?
			    "running" : "queued", j->number, j->requester, when,
			    j->room, j->thread);
		else
			js->error = xasprintf("%s of %s is already %s (job %d, "
			    "started by %s at %s)", kind_word(j->kind), target,
			    j->state == JOB_RUNNING ? "running" : "queued",
			    j->number, j->requester, when);
		return NULL;
	}
make:
	j = xcalloc(1, sizeof(*j));
	buf_init(&j->line, JOBS_LINE_MAX);
	j->number = js->next_number++;
	j->kind = kind;
	j->state = JOB_QUEUED;
	j->target = xstrdup(target);
	if (args != NULL) {
		size_t n = 0;

		while (args[n] != NULL && n < JOB_MAX_ARGS)
			n++;
		j->args = xcalloc(n + 1, sizeof(*j->args));
		for (size_t i = 0; i < n; i++)
			j->args[i] = xstrdup(args[i]);
	}
	j->requester = xstrdup(requester);
	j->room = xstrdup(room);
	j->thread = thread != NULL ? xstrdup(thread) : NULL;
	j->thread_seq = thread_seq;
	j->command = command != NULL ? xstrdup(command) : NULL;
	j->group = group;
	j->queued_at = time(NULL);
	j->fd = -1;
	j->pid = -1;
	for (tail = &js->head; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = j;
	if (kind == JOB_PROBE) {
		/* read-only and short: never waits behind backups */
		job_start(js, j);
		return j;
	}
	start_queued(js);
	if (j->state == JOB_QUEUED) {
		struct msg m;

		msg_init(&m);
		msg_textf(&m, "🕒 %s of %s queued (job %d): %d job(s) running,"
		    " max_parallel_jobs = %d", kind_word(kind), target,
		    j->number, running_count(js),
		    js->bot->cfg->max_parallel_jobs);
		reply_in_thread(js, j, &m);
		msg_release(&m);
	}
	return j;
}

int
jobs_fds(struct jobs *js, int *fds, int max)
{
	int n = 0;

	for (struct job *j = js->head; j != NULL && n < max; j = j->next)
		if (j->state == JOB_RUNNING && j->fd != -1)
			fds[n++] = j->fd;
	return n;
}

static void
handle_line(struct jobs *js, struct job *j, const char *line)
{
	cJSON *l = cJSON_Parse(line);
	const char *ev = json_text(l, "event");

	if (!cJSON_IsObject(l)) {
		log_warnx("job %d: unreadable line from the child", j->number);
	} else if (!strcmp(ev, "progress")) {
		const char *phase = json_text(l, "phase");

		if (j->phase == NULL || strcmp(j->phase, phase) != 0) {
			free(j->phase);
			j->phase = xstrdup(phase);
			/* a new phase restarts the rate */
			j->started_mono = mono_ms();
		}
		j->done = json_u64(l, "done");
		j->total = json_u64(l, "total");
		progress_update(js, j, mono_ms(), 0);
	} else if (!strcmp(ev, "log")) {
		log_info("job %d: %s", j->number, json_text(l, "msg"));
	} else if (!strcmp(ev, "result")) {
		cJSON_Delete(j->result);
		j->result = cJSON_DetachItemFromObjectCaseSensitive(l,
		    "result");
	}
	cJSON_Delete(l);
}

/* Read what a child wrote; returns 1 at EOF. */
static int
read_child(struct jobs *js, struct job *j)
{
	char buf[8192];
	ssize_t n;

	for (;;) {
		n = read(j->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno == EAGAIN ? 0 : 1;
		if (n == 0)
			return 1;
		for (ssize_t i = 0, start = 0; i <= n; i++) {
			if (i < n && buf[i] != '\n')
				continue;
			/* a line too long is never half-read: it is lost,
			 * and finish() says so */
			if (buf_add(&j->line, buf + start,
			    (size_t)(i - start)) == -1)
				j->line_lost = 1;
			if (i < n) {
				if (!j->line.overflow)
					handle_line(js, j, j->line.data ?
					    j->line.data : "");
				buf_release(&j->line);
				buf_init(&j->line, JOBS_LINE_MAX);
			}
			start = i + 1;
		}
	}
}

static void
finish(struct jobs *js, struct job *j, int status)
{
	char *crash = NULL;
	cJSON *l;

	if (j->fd != -1) {
		read_child(js, j);
		close(j->fd);
		j->fd = -1;
	}
	j->state = JOB_DONE;
	if (j->result == NULL) {
		char *st = proc_status_text(status);

		crash = j->line_lost ? xasprintf("the job's report was larger "
		    "than %d MiB and could not be read (%s)",
		    JOBS_LINE_MAX >> 20, st) :
		    xasprintf("the job ended without a result (%s)", st);
		free(st);
		/* A crashed job cannot clean up after itself. */
		catalog_clean_partials(js->bot->cfg, j->target);
	}
	if (j->kind == JOB_PROBE) {
		js->ops->ended(js->bot, j);
		free(crash);
		return;
	}
	if (j->kind != JOB_CHECK)
		summary(js, j, crash);
	js->ops->ended(js->bot, j);
	l = ledger_line("end", j);
	cJSON_AddStringToObject(l, "status", crash ? "crashed" :
	    json_text(j->result, "status"));
	if (j->result != NULL) {
		cJSON_AddStringToObject(l, "id", json_text(j->result, "id"));
		cJSON_AddNumberToObject(l, "bytes", json_num(j->result, "bytes"));
		cJSON_AddNumberToObject(l, "duration",
		    json_num(j->result, "duration"));
		if (*json_text(j->result, "error"))
			cJSON_AddStringToObject(l, "error",
			    json_text(j->result, "error"));
	} else
		cJSON_AddStringToObject(l, "error", crash);
	if (j->cancelled_by != NULL)
		cJSON_AddStringToObject(l, "cancelled_by", j->cancelled_by);
	ledger_add(js, l);
	metrics_update(js);
	/* partial is a failure to the monitor: an offsite copy is missing */
	ping(js, j->kind, j->target, !crash && !strcmp(json_text(j->result,
	    "status"), "ok") ? "success" : "fail");
	log_info("job %d: %s of %s ended: %s", j->number, kind_word(j->kind),
	    j->target, crash ? crash : json_text(j->result, "status"));
	free(crash);
	group_done(js, j);
}

void
jobs_poll(struct jobs *js, int64_t now)
{
	struct job **pp, *j;
	pid_t pid;
	int status;

	for (j = js->head; j != NULL; j = j->next)
		if (j->state == JOB_RUNNING && j->fd != -1 &&
		    read_child(js, j)) {
			close(j->fd);
			j->fd = -1;
		}
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (j = js->head; j != NULL; j = j->next)
			if (j->state == JOB_RUNNING && j->pid == pid) {
				j->pid = -1;
				finish(js, j, status);
			}
	}
	for (j = js->head; j != NULL; j = j->next) {
		if (j->state != JOB_RUNNING)
			continue;
		if (j->kill_at != 0 && now >= j->kill_at && j->pid > 0) {
			log_warnx("job %d: still running %d s after SIGTERM; "
			    "SIGKILL", j->number, KILL_GRACE_MS / 1000);
			kill(-j->pid, SIGKILL);
			j->kill_at = 0;
		}
		if (j->kill_at == 0 && j->cancelled_by == NULL && j->pid > 0 &&
		    time(NULL) - j->started_at > (j->kind == JOB_PROBE ?
		    PROBE_TIMEOUT : js->bot->cfg->job_timeout)) {
			j->cancelled_by = xasprintf("the %s (%lds)",
			    j->kind == JOB_PROBE ? "probe time limit" :
			    "job_timeout", j->kind == JOB_PROBE ?
			    (long)PROBE_TIMEOUT : js->bot->cfg->job_timeout);
			kill(-j->pid, SIGTERM);
			j->kill_at = now + KILL_GRACE_MS;
		}
		progress_update(js, j, now, 0);
	}
	/* Forget finished jobs; start queued ones in their place. */
	for (pp = &js->head; (j = *pp) != NULL; ) {
		if (j->state == JOB_DONE) {
			*pp = j->next;
			job_free(j);
		} else
			pp = &j->next;
	}
	start_queued(js);
}

int64_t
jobs_timeout(struct jobs *js, int64_t now)
{
	int64_t t = -1;

	for (struct job *j = js->head; j != NULL; j = j->next) {
		int64_t w;

		if (j->state != JOB_RUNNING)
			continue;
		w = j->kill_at != 0 ? j->kill_at - now : 1000;
		if (j->progress_seq != 0 && j->done > 0) {
			int64_t e = j->last_edit + EDIT_INTERVAL_MS - now;

			if (e < w)
				w = e;
		}
		if (w < 0)
			w = 0;
		if (t < 0 || w < t)
			t = w;
	}
	return t;
}

int
jobs_cancel(struct jobs *js, const char *what, const char *by, char **msg)
{
	long long number = -1;
	struct job *j;

	if (what[0] == '#')
		what++;
	str_to_ll(what, 1, 1000000000, &number);
	for (j = js->head; j != NULL; j = j->next)
		if (j->state != JOB_DONE && (j->number == number ||
		    !strcmp(j->target, what)))
			break;
	if (j == NULL) {
		*msg = xasprintf("no running or queued job '%s' (see !status)",
		    what);
		return -1;
	}
	free(j->cancelled_by);
	j->cancelled_by = xstrdup(by);
	if (j->state == JOB_QUEUED) {
		j->state = JOB_DONE;
		summary(js, j, NULL);
		group_done(js, j);
		*msg = xasprintf("job %d (%s of %s) removed from the queue",
		    j->number, kind_word(j->kind), j->target);
		return 0;
	}
	/* The whole process group: pg_dump, rclone and all. */
	if (j->pid > 0)
		kill(-j->pid, SIGTERM);
	j->kill_at = mono_ms() + KILL_GRACE_MS;
	*msg = xasprintf("cancelling job %d (%s of %s)", j->number,
	    kind_word(j->kind), j->target);
	return 0;
}

void
jobs_startup(struct jobs *js)
{
	size_t len;
	char *text = file_read(js->ledger, 64 * 1024 * 1024, &len), *line;
	cJSON *open_jobs = cJSON_CreateObject(), *it;
	int removed;

	removed = catalog_clean_partials(js->bot->cfg, NULL);
	if (removed > 0)
		log_info("removed %d partial file(s) of interrupted jobs",
		    removed);
	if (text == NULL) {
		cJSON_Delete(open_jobs);
		metrics_update(js);
		return;
	}
	/* Only the tail matters: interrupted jobs are the last ones. */
	line = len > LEDGER_TAIL ? strchr(text + len - LEDGER_TAIL, '\n') :
	    text;
	while (line != NULL && *line != '\0') {
		char *nl = strchr(line, '\n'), key[32];
		cJSON *l;

		if (nl == NULL)
			break;
		*nl = '\0';
		if ((l = cJSON_Parse(line)) != NULL) {
			/* job numbers go on from where they were */
			if (json_num(l, "job") >= js->next_number &&
			    json_num(l, "job") < 1e9)
				js->next_number = (int)json_num(l, "job") + 1;
			snprintf(key, sizeof(key), "%.0f", json_num(l, "job"));
			if (!strcmp(json_text(l, "event"), "start")) {
				cJSON_DeleteItemFromObject(open_jobs, key);
				cJSON_AddItemToObject(open_jobs, key, l);
				l = NULL;
			} else
				cJSON_DeleteItemFromObject(open_jobs, key);
			cJSON_Delete(l);
		}
		line = nl + 1;
	}
	free(text);
	cJSON_ArrayForEach(it, open_jobs) {
		struct job j;
		struct msg m;
		cJSON *end;

		memset(&j, 0, sizeof(j));
		j.number = json_int(it, "job", 0, 1000000000);
		j.kind = kind_of(json_text(it, "kind"));
		j.target = (char *)json_text(it, "target");
		j.requester = (char *)json_text(it, "by");
		j.room = (char *)json_text(it, "room");
		j.thread = (char *)json_str(it, "thread");	/* NULL: scheduled */
		j.command = j.thread;
		if (bot_room(js->bot, j.room) != NULL) {
			msg_init(&m);
			msg_textf(&m, "⚠️ the %s of %s started by %s was "
			    "interrupted: backupbot stopped while it ran. "
			    "Nothing it wrote was kept; run it again.",
			    kind_word(j.kind), j.target, j.requester);
			reply_in_thread(js, &j, &m);
			msg_release(&m);
		}
		log_warnx("job %d (%s of %s) was interrupted by a stop",
		    j.number, kind_word(j.kind), j.target);
		end = ledger_line("end", &j);
		cJSON_AddStringToObject(end, "status", "interrupted");
		ledger_add(js, end);
		ping(js, j.kind, j.target, "fail");
		if (j.number >= js->next_number)
			js->next_number = j.number + 1;
	}
	cJSON_Delete(open_jobs);
	metrics_update(js);
}
