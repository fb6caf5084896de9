/*
 * script.c - operators' programs: script targets and hooks (script.h).
 *
 * Why a loop of our own rather than proc_pump: a program may start a
 * child that keeps our pipes open after it has exited (a daemon it
 * forgot to detach, `sleep 1000 &`).  proc_pump waits for the end of
 * both pipes; here the run ends when the program does, and what is left
 * of its process group is killed then.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "catalog.h"
#include "argv.h"
#include "config.h"
#include "pipeline.h"
#include "proc.h"
#include "script.h"
#include "util.h"

const char *script_trigger = "cli";
const char *script_job = "0";

#define SCRIPT_PATH	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:" \
			"/sbin:/bin"
#define SCRIPT_GRACE_MS	5000	/* SIGTERM, then SIGKILL */
#define SCRIPT_DRAIN_MS	2000	/* output read after it ended */
#define SCRIPT_MAX_GROUPS 64

/* One program to run, and where its output goes. */
struct spec {
	const struct config	*cfg;
	const struct target	*t;
	const char		*what;		/* "command", "pre_hook" */
	char *const		*argv;
	const char		*id;		/* BACKUPBOT_ID, or NULL */
	const char		*log_name;	/* the log: NAME.log */
	const char		*status;	/* BACKUPBOT_STATUS or NULL */
	const char		*file;		/* BACKUPBOT_FILE or NULL */
	long			 timeout;	/* seconds */
	int			 stdin_fd;	/* -1: /dev/null */
	/* stdout as data (output = backup); NULL: logged like stderr */
	int			(*out)(void *, const unsigned char *, size_t,
				    char **);
	void			*arg;
	volatile sig_atomic_t	*cancelled;
	struct job_ctx		*ctx;		/* progress, or NULL */
};

void
script_result_release(struct script_result *r)
{
	free(r->how);
	free(r->output);
	free(r->log);
	memset(r, 0, sizeof(*r));
}

char *
script_clean_text(const char *s, size_t len, size_t max)
{
	const char *start = s;
	char *out, *o;

	if (len > max) {
		const char *nl;

		start = s + len - max;
		/* begin at a line: never inside a UTF-8 sequence */
		if ((nl = memchr(start, '\n', len - max)) != NULL &&
		    nl + 1 < s + len)
			start = nl + 1;
		len -= (size_t)(start - s);
	}
	out = o = xmalloc(len + 1);
	for (size_t i = 0; i < len; ) {
		unsigned char c = (unsigned char)start[i];
		size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

		if (c < 0x80) {
			*o++ = (c < 0x20 && c != '\n' && c != '\t') ||
			    c == 0x7f ? '?' : (char)c;
			i++;
		} else if (i + n <= len && argv_valid_text(start + i, n)) {
			memcpy(o, start + i, n);
			o += n;
			i += n;
		} else {
			*o++ = '?';
			i++;
		}
	}
	*o = '\0';
	return out;
}

/* ---- environment, user, log ----------------------------------------- */

static void
env_push(char ***v, size_t *n, char *s)
{
	*v = xrealloc(*v, (*n + 2) * sizeof(**v));
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

static int
env_has(char *const *env, const char *name)
{
	size_t n = strlen(name);

	for (; env != NULL && *env != NULL; env++)
		if (!strncmp(*env, name, n) && (*env)[n] == '=')
			return 1;
	return 0;
}

/* The clean environment of a program (strv_free). */
static char **
spec_env(const struct spec *s, const char *home)
{
	char **v = NULL;
	size_t n = 0;

	env_push(&v, &n, NULL);		/* v is never NULL */
	n = 0;
	if (!env_has(s->t->env, "PATH"))
		env_push(&v, &n, xstrdup("PATH=" SCRIPT_PATH));
	if (home != NULL && !env_has(s->t->env, "HOME"))
		env_push(&v, &n, xasprintf("HOME=%s", home));
	for (size_t i = 0; s->t->env != NULL && s->t->env[i] != NULL; i++)
		env_push(&v, &n, xstrdup(s->t->env[i]));
	env_push(&v, &n, xasprintf("BACKUPBOT_TARGET=%s", s->t->name));
	env_push(&v, &n, xasprintf("BACKUPBOT_JOB=%s", script_job));
	env_push(&v, &n, xasprintf("BACKUPBOT_TRIGGER=%s", script_trigger));
	if (s->id != NULL)
		env_push(&v, &n, xasprintf("BACKUPBOT_ID=%s", s->id));
	if (s->status != NULL)
		env_push(&v, &n, xasprintf("BACKUPBOT_STATUS=%s", s->status));
	if (s->file != NULL)
		env_push(&v, &n, xasprintf("BACKUPBOT_FILE=%s", s->file));
	return v;
}

/*
 * Who runs it: the target's user when we are root (its groups resolved
 * here, the child may not), else ourselves.  0, or -1 with *cause.
 */
static int
spec_user(const struct target *t, struct proc_as *as, gid_t *groups,
    char **home, char **cause)
{
	struct passwd *pw;
	int ng = SCRIPT_MAX_GROUPS;

	as->uid = (uid_t)-1;
	as->gid = (gid_t)-1;
	as->groups = NULL;
	as->ngroups = -1;
	pw = getpwuid(geteuid());
	*home = pw != NULL ? xstrdup(pw->pw_dir) : NULL;
	if (t->user == NULL)
		return 0;
	if ((pw = getpwnam(t->user)) == NULL) {
		*cause = xasprintf("user %s does not exist", t->user);
		return -1;
	}
	if (pw->pw_uid == geteuid())
		return 0;
	if (geteuid() != 0) {
		*cause = xasprintf("user = %s needs backupbot to run as root "
		    "(it runs as uid %u)", t->user, (unsigned)geteuid());
		return -1;
	}
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) == -1)
		ng = 1, groups[0] = pw->pw_gid;
	as->uid = pw->pw_uid;
	as->gid = pw->pw_gid;
	as->groups = groups;
	as->ngroups = ng;
	free(*home);
	*home = xstrdup(pw->pw_dir);
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keep the newest SCRIPT_LOGS_KEPT logs of dir (names sort by time). */
static void
logs_rotate(const char *dir)
{
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len < 5 ||
		    strcmp(de->d_name + len - 4, ".log") != 0)
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i + SCRIPT_LOGS_KEPT < n) {
			char *p = xasprintf("%s/%s", dir, names[i]);

			unlink(p);
			free(p);
		}
		free(names[i]);
	}
	free(names);
}

/* state_dir/logs/TARGET/ID[.WHAT].log, opened for writing; -1 if not. */
static int
log_open(const struct spec *s, char **path)
{
	char *dir = xasprintf("%s/logs/%s", s->cfg->state_dir, s->t->name);
	int fd = -1;

	*path = NULL;
	if (dir_make(dir, 0700) == 0) {
		logs_rotate(dir);
		*path = strcmp(s->what, "command") == 0 ?
		    xasprintf("%s/%s.log", dir, s->log_name) :
		    xasprintf("%s/%s.%s.log", dir, s->log_name, s->what);
		fd = open(*path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		if (fd == -1) {
			free(*path);
			*path = NULL;
		}
	}
	free(dir);
	return fd;
}

/* ---- running ------------------------------------------------------------ */

struct sink {
	struct tail	 tail;
	int		 log_fd;
	uint64_t	 logged, dropped;
};

static void
sink_add(struct sink *k, const unsigned char *data, size_t n)
{
	tail_add(&k->tail, (const char *)data, n);
	if (k->log_fd == -1)
		return;
	if (k->logged + n > SCRIPT_LOG_MAX) {
		size_t room = (size_t)(SCRIPT_LOG_MAX - k->logged);

		k->dropped += n - room;
		n = room;
	}
	if (n > 0 && write(k->log_fd, data, n) == (ssize_t)n)
		k->logged += n;
}

/*
 * Read what fd has into the sink (or, data: the data callback).  The
 * byte count, 0 when nothing was there, -1 at its end.
 */
static ssize_t
drain(int *fd, unsigned char *buf, size_t size, const struct spec *s,
    struct sink *k, int data, char **cause, int *failed)
{
	ssize_t n = read(*fd, buf, size);

	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return -1;
	}
	if (!data)
		sink_add(k, buf, (size_t)n);
	else if (!*failed && s->out(s->arg, buf, (size_t)n, cause) == -1)
		*failed = 1;
	return n;
}

static char *
how_text(const struct spec *s, const struct script_result *r)
{
	char *st = proc_status_text(r->status), *how;

	if (r->cancelled)
		how = xasprintf("was cancelled and stopped (%s)", st);
	else if (r->timed_out)
		how = xasprintf("timed out after %lds and was stopped (%s)",
		    s->timeout, st);
	else
		how = xstrdup(st);
	free(st);
	return how;
}

/*
 * Run s to its end.  0 when it ran (r says how it ended), -1 with
 * *cause when it could not start or its output could not be stored.
 */
static int
run_spec(const struct spec *s, struct script_result *r, char **cause)
{
	unsigned char *buf = xmalloc(64 * 1024);
	gid_t groups[SCRIPT_MAX_GROUPS];
	struct proc_as as;
	struct proc p;
	struct sink k;
	char **env = NULL, *home = NULL, *out_cause = NULL;
	int64_t now, deadline, kill_at = 0, drain_until = 0, tick = 0;
	int exited = 0, stopping = 0, failed = 0, null_fd = -1, rc = -1;
	uint64_t bytes = 0;

	memset(r, 0, sizeof(*r));
	memset(&k, 0, sizeof(k));
	k.log_fd = -1;
	*cause = NULL;
	if (spec_user(s->t, &as, groups, &home, cause) == -1)
		goto done;
	as.dir = s->t->workdir;
	as.stdin_fd = s->stdin_fd;
	if (as.stdin_fd == -1) {
		if ((null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1) {
			*cause = xasprintf("/dev/null: %s", strerror(errno));
			goto done;
		}
		as.stdin_fd = null_fd;
	}
	env = spec_env(s, home);
	k.log_fd = log_open(s, &r->log);
	if (proc_spawn_as(&p, (const char *const *)s->argv,
	    (const char *const *)env, &as, PROC_STDOUT | PROC_STDERR |
	    PROC_NEWGROUP, cause) == -1) {
		char *c = *cause;

		*cause = xasprintf("%s: %s", s->what, c);
		free(c);
		goto done;
	}
	fcntl(p.out_fd, F_SETFL, fcntl(p.out_fd, F_GETFL) | O_NONBLOCK);
	fcntl(p.err_fd, F_SETFL, fcntl(p.err_fd, F_GETFL) | O_NONBLOCK);
	deadline = s->timeout > 0 ? mono_ms() + s->timeout * 1000 : 0;
	for (;;) {
		struct pollfd pf[2] = { { p.out_fd, POLLIN, 0 },
		    { p.err_fd, POLLIN, 0 } };

		now = mono_ms();
		if (!exited && waitpid(p.pid, &r->status, WNOHANG) == p.pid) {
			exited = 1;
			/* anything left in its group is killed now */
			if (kill(-p.pid, 0) == 0) {
				r->leftovers = !stopping;
				kill(-p.pid, SIGTERM);
				kill_at = now + SCRIPT_GRACE_MS / 5;
			}
			drain_until = now + SCRIPT_DRAIN_MS;
		}
		if (!stopping && !exited && ((s->cancelled != NULL &&
		    *s->cancelled) || (deadline > 0 && now >= deadline) ||
		    failed)) {
			stopping = 1;
			r->cancelled = s->cancelled != NULL && *s->cancelled;
			r->timed_out = !r->cancelled && !failed;
			kill(-p.pid, SIGTERM);
			kill_at = now + SCRIPT_GRACE_MS;
		}
		if (kill_at > 0 && now >= kill_at) {
			kill(-p.pid, SIGKILL);
			kill_at = 0;
		}
		if ((exited && (now >= drain_until ||
		    (p.out_fd == -1 && p.err_fd == -1))))
			break;
		if (s->ctx != NULL && now - tick >= 1000) {
			tick = now;
			backend_progress(s->ctx, s->what, bytes, 0);
		}
		if (p.out_fd == -1 && p.err_fd == -1) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			continue;
		}
		if (poll(pf, 2, 200) == -1 && errno != EINTR)
			break;
		if (p.out_fd != -1 && (pf[0].revents & (POLLIN | POLLHUP |
		    POLLERR))) {
			/* bound each turn: the timers above must run */
			for (int i = 0; i < 16 && p.out_fd != -1; i++) {
				ssize_t n = drain(&p.out_fd, buf, 64 * 1024, s,
				    &k, s->out != NULL, &out_cause, &failed);

				if (n <= 0)
					break;
				bytes += (uint64_t)n;
			}
		}
		if (p.err_fd != -1 && (pf[1].revents & (POLLIN | POLLHUP |
		    POLLERR)))
			drain(&p.err_fd, buf, 64 * 1024, s, &k, 0, NULL,
			    &failed);
	}
	r->unread = p.out_fd != -1;
	if (p.out_fd != -1)
		close(p.out_fd);
	if (p.err_fd != -1)
		close(p.err_fd);
	if (!exited) {
		kill(-p.pid, SIGKILL);
		while (waitpid(p.pid, &r->status, 0) == -1 && errno == EINTR)
			;
	}
	/* whatever ignored SIGTERM */
	kill(-p.pid, SIGKILL);
	if (k.dropped > 0 && k.log_fd != -1) {
		char note[128];
		int len = snprintf(note, sizeof(note), "\n[backupbot: log cut "
		    "at %d MiB; %llu more bytes not kept]\n",
		    SCRIPT_LOG_MAX / (1024 * 1024),
		    (unsigned long long)k.dropped);

		if (write(k.log_fd, note, (size_t)len) < 0)
			k.dropped = 0;
	}
	r->output = script_clean_text(k.tail.buf, k.tail.len,
	    SCRIPT_TAIL_BYTES);
	{
		/* the last SCRIPT_TAIL_LINES lines */
		struct tail t;

		memset(&t, 0, sizeof(t));
		tail_add(&t, r->output, strlen(r->output));
		free(r->output);
		r->output = xstrdup(tail_text(&t, SCRIPT_TAIL_LINES));
	}
	r->ok = exited && !stopping && !failed && proc_ok(r->status);
	r->how = how_text(s, r);
	if (failed) {
		*cause = out_cause != NULL ? out_cause :
		    xstrdup("cannot store its output");
		out_cause = NULL;
		goto done;
	}
	rc = 0;
done:
	if (k.log_fd != -1)
		close(k.log_fd);
	if (null_fd != -1)
		close(null_fd);
	free(out_cause);
	free(home);
	strv_free(env);
	free(buf);
	return rc;
}

/*
 * "pre_hook /usr/bin/x exited with status 1:\nlast lines", its lines cut
 * to half the tail: with a script's own lines, the job's result line
 * stays within what the daemon reads (jobs.c).
 */
static char *
failure_text(const struct spec *s, const struct script_result *r)
{
	char *lines, *text;

	if (*r->output == '\0')
		return xasprintf("%s %s %s", s->what, s->argv[0], r->how);
	lines = script_clean_text(r->output, strlen(r->output),
	    SCRIPT_TAIL_BYTES / 2);
	text = xasprintf("%s %s %s:\n%s", s->what, s->argv[0], r->how, lines);
	free(lines);
	return text;
}

int
script_hook(const struct config *cfg, const struct target *t,
    const char *which, char *const *argv, const char *id, const char *status,
    const char *file, volatile sig_atomic_t *cancelled, char **output,
    char **cause)
{
	struct script_result r;
	struct spec s;
	char *log_id = NULL;
	int rc;

	*cause = NULL;
	if (output != NULL)
		*output = NULL;
	if (argv == NULL)
		return 0;
	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.t = t;
	s.what = which;
	s.argv = argv;
	s.id = id;
	s.log_name = id != NULL ? id : (log_id = catalog_new_id(t->name,
	    time(NULL)));
	s.status = status;
	s.file = file;
	s.timeout = t->hook_timeout;
	s.stdin_fd = -1;
	s.cancelled = cancelled;
	if (run_spec(&s, &r, cause) == -1) {
		rc = -1;
	} else if (!r.ok) {
		*cause = failure_text(&s, &r);
		rc = -1;
	} else
		rc = 0;
	if (output != NULL && r.output != NULL)
		*output = xstrdup(r.output);
	script_result_release(&r);
	free(log_id);
	return rc;
}

/* ---- the backends ----------------------------------------------------- */

static void
spec_for(struct spec *s, struct job_ctx *ctx, const char *what,
    char *const *argv)
{
	memset(s, 0, sizeof(*s));
	s->cfg = ctx->cfg;
	s->t = ctx->target;
	s->what = what;
	s->argv = argv;
	s->id = ctx->id;
	s->log_name = ctx->id;
	s->timeout = ctx->target->timeout > 0 ? ctx->target->timeout :
	    ctx->cfg->job_timeout;
	s->stdin_fd = -1;
	s->cancelled = ctx->cancelled;
	s->ctx = ctx;
}

/* What a run tells the operator, in the manifest (and so the result). */
static void
record(cJSON *manifest, const struct script_result *r)
{
	backend_fact(manifest, "exit", cJSON_CreateString(r->how));
	backend_fact(manifest, "output", cJSON_CreateString(r->output));
	backend_fact(manifest, "trigger", cJSON_CreateString(script_trigger));
	if (r->log != NULL)
		backend_fact(manifest, "log", cJSON_CreateString(r->log));
	if (r->leftovers) {
		cJSON *w = cJSON_GetObjectItemCaseSensitive(manifest,
		    "warnings");

		if (w == NULL)
			w = cJSON_AddArrayToObject(manifest, "warnings");
		cJSON_AddItemToArray(w, cJSON_CreateString("a process it "
		    "started was still running when it ended: its process "
		    "group was killed"));
	}
}

/* output = log: one run, recorded like a media sync. */
static int
script_sync(struct job_ctx *ctx, cJSON *manifest, char **cause)
{
	struct script_result r;
	struct spec s;

	spec_for(&s, ctx, "command", ctx->target->command);
	backend_fact(manifest, "command", cJSON_CreateString(s.argv[0]));
	backend_log(ctx, "info", "running %s", s.argv[0]);
	if (run_spec(&s, &r, cause) == -1) {
		script_result_release(&r);
		return -1;
	}
	record(manifest, &r);
	if (!r.ok)
		*cause = xasprintf("%s %s", s.argv[0], r.how);
	script_result_release(&r);
	return *cause != NULL ? -1 : cJSON_GetObjectItemCaseSensitive(manifest,
	    "warnings") != NULL ? 1 : 0;
}

static int
script_prepare(struct job_ctx *ctx, cJSON *manifest, char **cause)
{
	backend_fact(manifest, "command", cJSON_CreateString(
	    ctx->target->command[0]));
	return config_check_program(ctx->target->command,
	    ctx->target->user, cause);
}

static int
feed_pipeline(void *arg, const unsigned char *data, size_t n, char **cause)
{
	return pipe_out_write(arg, data, n, cause);
}

/* output = backup: stdout is the stream. */
static int
script_backup(struct job_ctx *ctx, struct pipe_out *out, cJSON *manifest,
    char **cause)
{
	struct script_result r;
	struct spec s;
	int rc = 0;

	spec_for(&s, ctx, "command", ctx->target->command);
	s.out = feed_pipeline;
	s.arg = out;
	backend_log(ctx, "info", "running %s, its output is the backup",
	    s.argv[0]);
	if (run_spec(&s, &r, cause) == -1)
		rc = -1;
	else {
		record(manifest, &r);
		if (!r.ok) {
			*cause = failure_text(&s, &r);
			rc = -1;
		} else if (r.leftovers || r.unread) {
			/* what it left behind may have been writing the stream */
			*cause = xasprintf("%s exited, but a process it started "
			    "was still running and was killed: the stream may "
			    "be incomplete, so it is not kept", s.argv[0]);
			rc = -1;
		}
	}
	script_result_release(&r);
	return rc;
}

static int
script_restore(struct job_ctx *ctx, const cJSON *manifest, const char *raw,
    const struct restore_opts *opts, cJSON *result, char **cause)
{
	const struct target *t = ctx->target;
	struct script_result r;
	struct spec s;
	int rc = -1;

	(void)manifest;
	if (opts->drill) {
		*cause = xstrdup("a script target has no scratch copy to "
		    "restore into: its check is !verify --quick");
		return -1;
	}
	if (t->restore_command == NULL) {
		*cause = xasprintf("[script %s] has no restore_command",
		    t->name);
		return -1;
	}
	if (config_check_program(t->restore_command, t->user,
	    cause) == -1)
		return -1;
	spec_for(&s, ctx, "restore_command", t->restore_command);
	if ((s.stdin_fd = open(raw, O_RDONLY | O_CLOEXEC)) == -1) {
		*cause = xasprintf("%s: %s", raw, strerror(errno));
		return -1;
	}
	backend_log(ctx, "info", "running %s with the backup on its stdin",
	    s.argv[0]);
	if (run_spec(&s, &r, cause) == 0) {
		cJSON_AddStringToObject(result, "into", "restore_command");
		cJSON_AddStringToObject(result, "output", r.output);
		if (r.ok)
			rc = 0;
		else
			*cause = failure_text(&s, &r);
	}
	close(s.stdin_fd);
	script_result_release(&r);
	return rc;
}

static int
script_probe(struct job_ctx *ctx, cJSON *out, char **cause)
{
	const struct target *t = ctx->target;

	if (config_check_program(t->command, t->user, cause) == -1 ||
	    (t->restore_command != NULL &&
	    config_check_program(t->restore_command, t->user,
	    cause) == -1))
		return -1;
	cJSON_AddStringToObject(out, "command", t->command[0]);
	return 0;
}

const struct backend backend_script = {
	.kind = "script",
	.suffix = ".out",
	.probe = script_probe,
	.sync = script_sync,
};

const struct backend backend_script_backup = {
	.kind = "script",
	.suffix = ".out",
	.prepare = script_prepare,
	.backup = script_backup,
	.probe = script_probe,
	.restore = script_restore,
};
