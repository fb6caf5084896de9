/*
 * media.c - the media backend: `rclone sync SOURCE DEST` for every
 * destination of a [media] target, store to store.  Nothing goes through
 * backup_dir; job.c records what this returns in ID.run.json.
 *
 * rclone runs with an argv array in its own process group (a cancel
 * stops it and everything it started) and logs JSON on stderr
 * (--use-json-log): its stats objects, every --stats interval and once
 * at the end, give progress and the per-destination summary; its error
 * lines give the cause.  Its config file comes from RCLONE_CONFIG.
 *
 * A sync deletes at the destination what the source no longer has, so
 * a source that is gone or suddenly empty must never look like success:
 *   - before any sync the source is listed (one level); not found is a
 *     failure of the whole run, and an empty source is synced only to
 *     destinations that are empty as well;
 *   - a destination counts as good only when rclone exited 0 and its
 *     stats report no errors.  rclone itself deletes nothing after an
 *     error while listing or copying (the default --delete-after).
 *
 * The extra flags an operator may pass are an allowlist (media_allowed):
 * a flag such as --config, --backup-dir or --delete-excluded would change
 * what a "backup" means, or read files we do not expect it to.
 *
 * A restore is `rclone copy` from a destination back (never sync: it
 * deletes nothing); a restore drill is `rclone check --one-way`; both
 * live in media_restore.c.
 *
 * keep_deleted_days > 0: --backup-dir ROOT/YYYY-MM-DD keeps what a sync
 * deletes or overwrites, in a sibling of the destination
 * (media_deleted_root); after a good sync, dated directories older than
 * keep_deleted_days are purged.  Other names in ROOT are never touched.
 */
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "media.h"
#include "media_parts.h"
#include "proc.h"
#include "remote.h"
#include "util.h"

#define MEDIA_POLL_MS		200	/* how soon a cancel is noticed */
#define MEDIA_TERM_GRACE_MS	10000	/* after SIGTERM, then SIGKILL */
#define MEDIA_ERR_LINES		3	/* of rclone's errors, in a cause */
#define MEDIA_LINE_MAX		(256 * 1024)	/* one JSON log line */
#define MEDIA_LIST_MAX		(1024 * 1024)	/* lsf output we read */
#define MEDIA_DELETED_SUFFIX	"-deleted"

/* ---- the flag allowlist --------------------------------------------- */

enum media_arg {
	ARG_NONE,	/* a switch */
	ARG_NUM,	/* digits */
	ARG_VALUE,	/* a size, rate or duration: [0-9A-Za-z.:_-]+ */
	ARG_PATTERN,	/* a filter pattern: no control characters */
};

static const struct {
	const char	*name;
	enum media_arg	 arg;
} media_allowed[] = {
	{ "--transfers",		ARG_NUM },
	{ "--checkers",			ARG_NUM },
	{ "--fast-list",		ARG_NONE },
	{ "--bwlimit",			ARG_VALUE },
	{ "--tpslimit",			ARG_NUM },
	{ "--tpslimit-burst",		ARG_NUM },
	{ "--checksum",			ARG_NONE },
	{ "--size-only",		ARG_NONE },
	{ "--update",			ARG_NONE },
	{ "--use-server-modtime",	ARG_NONE },
	{ "--no-update-modtime",	ARG_NONE },
	{ "--s3-chunk-size",		ARG_VALUE },
	{ "--s3-upload-concurrency",	ARG_NUM },
	{ "--max-backlog",		ARG_NUM },
	{ "--buffer-size",		ARG_VALUE },
	{ "--retries",			ARG_NUM },
	{ "--low-level-retries",	ARG_NUM },
	{ "--timeout",			ARG_VALUE },
	{ "--contimeout",		ARG_VALUE },
	{ "--exclude",			ARG_PATTERN },
	{ "--include",			ARG_PATTERN },
	{ "--max-delete",		ARG_NUM },
};

static const char *const media_arg_words[] = {
	[ARG_NONE] = "",
	[ARG_NUM] = "a number",
	[ARG_VALUE] = "a value such as 16M, 30s or off",
	[ARG_PATTERN] = "a pattern",
};

static int
media_value_ok(enum media_arg arg, const char *v)
{
	const char *p;

	if (*v == '\0')
		return 0;
	switch (arg) {
	case ARG_NONE:
		return 0;
	case ARG_NUM:
		if (strspn(v, "0123456789") != strlen(v))
			return 0;
		return strlen(v) <= 18;
	case ARG_VALUE:
		for (p = v; *p != '\0'; p++)
			if (!((*p >= '0' && *p <= '9') ||
			    (*p >= 'a' && *p <= 'z') ||
			    (*p >= 'A' && *p <= 'Z') ||
			    *p == '.' || *p == ':' || *p == '_' || *p == '-'))
				return 0;
		return 1;
	case ARG_PATTERN:
		for (p = v; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return 0;
		return 1;
	}
	return 0;
}

static char *
media_allowed_list(void)
{
	struct buf b;

	buf_init(&b, 4096);
	buf_adds(&b, "");
	for (size_t i = 0; i < nitems(media_allowed); i++)
		buf_addf(&b, "%s%s", i > 0 ? " " : "", media_allowed[i].name);
	return buf_detach(&b, NULL);
}

/* A word for a message: bounded, without control characters. */
char *
media_word(const char *s, size_t len)
{
	char *w = xstrndup(s, len > 64 ? 64 : len);

	for (char *c = w; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return w;
}

int
media_flags_parse(const char *flags, char ***argv, int *argc, char **cause)
{
	static const char space[] = " \t\r\n\v\f";
	char **tok = NULL, **out, *name, *value, *list, *w;
	size_t ntok = 0, nout = 0, i, k, len;
	const char *p;
	int rc = -1;

	*argv = NULL;
	*argc = 0;
	*cause = NULL;
	for (p = flags != NULL ? flags : ""; *p != '\0'; p += len) {
		p += strspn(p, space);
		if ((len = strcspn(p, space)) == 0)
			break;
		tok = xrealloc(tok, (ntok + 1) * sizeof(*tok));
		tok[ntok++] = xstrndup(p, len);
	}
	out = xcalloc(ntok + 1, sizeof(*out));
	for (i = 0; i < ntok; i++) {
		if (!str_startswith(tok[i], "--") || tok[i][2] == '\0') {
			w = media_word(tok[i], strlen(tok[i]));
			*cause = xasprintf("flags: '%s' is not an rclone flag "
			    "(flags are --name or --name value)", w);
			free(w);
			goto done;
		}
		len = strcspn(tok[i], "=");
		name = xstrndup(tok[i], len);
		value = tok[i][len] == '=' ? tok[i] + len + 1 : NULL;
		for (k = 0; k < nitems(media_allowed); k++)
			if (strcmp(media_allowed[k].name, name) == 0)
				break;
		if (k == nitems(media_allowed)) {
			list = media_allowed_list();
			w = media_word(name, strlen(name));
			*cause = xasprintf("flags: rclone flag %s is not "
			    "allowed here; allowed are: %s", w, list);
			free(w);
			free(list);
			free(name);
			goto done;
		}
		if (media_allowed[k].arg == ARG_NONE) {
			if (value != NULL) {
				*cause = xasprintf("flags: %s takes no value",
				    name);
				free(name);
				goto done;
			}
			out[nout++] = name;
			continue;
		}
		if (value == NULL) {
			if (i + 1 == ntok) {
				*cause = xasprintf("flags: %s needs %s", name,
				    media_arg_words[media_allowed[k].arg]);
				free(name);
				goto done;
			}
			value = tok[++i];
		}
		if (!media_value_ok(media_allowed[k].arg, value)) {
			w = media_word(value, strlen(value));
			*cause = xasprintf("flags: %s '%s': not %s", name, w,
			    media_arg_words[media_allowed[k].arg]);
			free(w);
			free(name);
			goto done;
		}
		out[nout++] = xasprintf("%s=%s", name, value);
		free(name);
	}
	out[nout] = NULL;
	*argv = out;
	*argc = (int)nout;
	out = NULL;
	rc = 0;

done:
	if (out != NULL)
		media_argv_free(out);
	for (i = 0; i < ntok; i++)
		free(tok[i]);
	free(tok);
	return rc;
}

void
media_argv_free(char **argv)
{
	strv_free(argv);
}

/* ---- paths ---------------------------------------------------------- */

char *
media_deleted_root(const char *dest, char **cause)
{
	size_t len = strlen(dest), start;

	while (len > 1 && dest[len - 1] == '/')
		len--;
	/* the last component: after the last '/' or the remote's ':' */
	for (start = len; start > 0; start--)
		if (dest[start - 1] == '/' || dest[start - 1] == ':')
			break;
	if (len == start || (len - start == 1 && dest[start] == '.') ||
	    (len - start == 2 && dest[start] == '.' && dest[start + 1] == '.')) {
		*cause = xasprintf("destination %s is the root of a remote or "
		    "a directory: keep_deleted_days needs a path with a last "
		    "component (remote:bucket or remote:bucket/dir), to keep "
		    "deleted files next to it", dest);
		return NULL;
	}
	return xasprintf("%.*s" MEDIA_DELETED_SUFFIX, (int)len, dest);
}

static int
media_path_ok(const char *what, const char *path, char **cause)
{
	if (path == NULL || *path == '\0') {
		*cause = xasprintf("%s is empty", what);
		return -1;
	}
	if (*path == '-') {
		*cause = xasprintf("%s '%s' starts with '-'", what, path);
		return -1;
	}
	for (const char *p = path; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*cause = xasprintf("%s has a control character", what);
			return -1;
		}
	return 0;
}

/* The same rclone path, ignoring trailing slashes. */
static int
media_same_path(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

int
media_target_check(const struct target *t, char **cause)
{
	char **argv, *root;
	int argc;

	*cause = NULL;
	if (media_path_ok("source", t->source, cause) == -1)
		return -1;
	if (t->destinations.n == 0) {
		*cause = xstrdup("destinations is required");
		return -1;
	}
	for (size_t i = 0; i < t->destinations.n; i++) {
		const char *d = t->destinations.v[i];

		if (media_path_ok("destination", d, cause) == -1)
			return -1;
		if (media_same_path(d, t->source)) {
			*cause = xasprintf("destination %s is the source", d);
			return -1;
		}
		for (size_t k = 0; k < i; k++)
			if (media_same_path(d, t->destinations.v[k])) {
				*cause = xasprintf("destination %s is listed "
				    "twice", d);
				return -1;
			}
		if (t->keep_deleted_days > 0) {
			if ((root = media_deleted_root(d, cause)) == NULL)
				return -1;
			free(root);
		}
	}
	if (media_flags_parse(t->flags, &argv, &argc, cause) == -1)
		return -1;
	media_argv_free(argv);
	return 0;
}

/* ---- rclone's exit codes and log ------------------------------------ */

/* rclone's exit codes in words, as remote.c says them. */
const char *
media_exit_text(int code)
{
	return remote_exit_text(code);
}

static uint64_t
media_u64(const cJSON *j, const char *key)
{
	double v = json_num(j, key);

	return v > 0 && v < 1.8e19 ? (uint64_t)v : 0;
}

/* Copy text into msg, control characters as spaces. */
static void
media_msg_add(char *msg, size_t msgsize, const char *text, size_t len)
{
	size_t used = strlen(msg);

	for (size_t i = 0; i < len && used + 1 < msgsize; i++) {
		unsigned char c = (unsigned char)text[i];

		msg[used++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	msg[used] = '\0';
}

int
media_log_line(const char *line, size_t len, struct media_stats *st,
    char *msg, size_t msgsize)
{
	const cJSON *stats;
	const char *level, *text, *object, *le;
	cJSON *j;
	double eta;
	int rc = 0;

	if (msgsize > 0)
		msg[0] = '\0';
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
	    line[len - 1] == ' '))
		len--;
	if (len == 0 || msgsize == 0)
		return 0;
	if (line[0] == '{' && (j = cJSON_ParseWithLength(line, len)) != NULL) {
		stats = cJSON_GetObjectItemCaseSensitive(j, "stats");
		level = json_text(j, "level");
		if (cJSON_IsObject(stats)) {
			st->seen = 1;
			st->bytes = media_u64(stats, "bytes");
			st->total_bytes = media_u64(stats, "totalBytes");
			st->transfers = media_u64(stats, "transfers");
			st->total_transfers = media_u64(stats,
			    "totalTransfers");
			st->checks = media_u64(stats, "checks");
			st->deletes = media_u64(stats, "deletes");
			st->renames = media_u64(stats, "renames");
			st->errors = media_u64(stats, "errors");
			st->speed = json_num(stats, "speed");
			st->eta = json_get_num(stats, "eta", &eta) == 0 ?
			    eta : -1;
			st->elapsed = json_num(stats, "elapsedTime");
			st->fatal = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
			    stats, "fatalError"));
			if ((le = json_str(stats, "lastError")) != NULL) {
				st->last_error[0] = '\0';
				media_msg_add(st->last_error,
				    sizeof(st->last_error), le, strlen(le));
			}
			rc = 1;
		} else if (!strcmp(level, "error") ||
		    !strcmp(level, "critical") || !strcmp(level, "fatal")) {
			text = json_text(j, "msg");
			object = json_text(j, "object");
			if (*object != '\0') {
				media_msg_add(msg, msgsize, object,
				    strlen(object));
				media_msg_add(msg, msgsize, ": ", 2);
			}
			media_msg_add(msg, msgsize, text, strlen(text));
			str_trim(msg);
			rc = *msg != '\0' ? 2 : 0;
		}
		cJSON_Delete(j);
		return rc;
	}
	/* "2026/11/26 12:25:56 Failed to sync: directory not found" */
	if (len > 20 && line[4] == '/' && line[7] == '/' && line[10] == ' ' &&
	    line[13] == ':' && line[19] == ' ') {
		line += 20;
		len -= 20;
	}
	media_msg_add(msg, msgsize, line, len);
	str_trim(msg);
	return *msg != '\0' ? 2 : 0;
}

/* ---- running rclone ------------------------------------------------- */

void
media_run_init(struct media_run *r, const char *phase, int capture)
{
	memset(r, 0, sizeof(*r));
	r->phase = phase;
	r->capture = capture;
	r->stats.eta = -1;
	buf_init(&r->out, MEDIA_LIST_MAX);
	buf_adds(&r->out, "");
	buf_init(&r->line, MEDIA_LINE_MAX);
}

void
media_run_release(struct media_run *r)
{
	buf_release(&r->out);
	buf_release(&r->line);
}

static int
media_is_cancelled(struct job_ctx *ctx)
{
	return ctx->cancelled != NULL && *ctx->cancelled;
}

/*
 * One complete stderr line.  Error lines are kept once each: rclone
 * repeats them on every retry, and the first ones carry the cause.  Its
 * notes about what it did not do because of them are left out.
 */
static void
media_line(struct job_ctx *ctx, struct media_run *r, const char *line,
    size_t len)
{
	char msg[512];

	if (memmem(line, len, "No common hash found", 20) != NULL)
		r->no_common_hash = 1;
	switch (media_log_line(line, len, &r->stats, msg, sizeof(msg))) {
	case 1:
		backend_progress(ctx, r->phase, r->stats.bytes,
		    r->stats.total_bytes);
		break;
	case 2:
		if (str_startswith(msg, "Attempt ") ||
		    strstr(msg, "not deleting files as there were") != NULL ||
		    strstr(msg, "not deleting directories as there were") !=
		    NULL || strstr(r->err.buf, msg) != NULL)
			break;
		tail_add(&r->err, msg, strlen(msg));
		tail_add(&r->err, "\n", 1);
		break;
	}
}

static void
media_stderr(struct job_ctx *ctx, struct media_run *r, const char *data,
    size_t n)
{
	const char *nl;
	size_t len;

	while (n > 0) {
		nl = memchr(data, '\n', n);
		len = nl != NULL ? (size_t)(nl - data) : n;
		if (!r->skipping && buf_add(&r->line, data, len) == -1) {
			/* Too long to be a log line we need: drop it. */
			r->skipping = 1;
			buf_reset(&r->line);
		}
		if (nl == NULL)
			return;
		if (!r->skipping)
			media_line(ctx, r, r->line.data, r->line.len);
		r->skipping = 0;
		buf_reset(&r->line);
		data += len + 1;
		n -= len + 1;
	}
}

/* Stdout in lines, to r->out_line (r->out holds a partial line). */
static void
media_stdout(struct media_run *r, const char *data, size_t n)
{
	const char *nl;
	size_t len;

	while (n > 0) {
		nl = memchr(data, '\n', n);
		len = nl != NULL ? (size_t)(nl - data) : n;
		if (buf_add(&r->out, data, len) == -1)
			buf_reset(&r->out);	/* a line over 1 MiB: dropped */
		if (nl == NULL)
			return;
		r->out_line(r->out_arg, r->out.data, r->out.len);
		buf_reset(&r->out);
		data += len + 1;
		n -= len + 1;
	}
}

/*
 * Run rclone (argv[0] is cfg->rclone) to its end or to a cancel, in its
 * own process group, reading its JSON log.  0 when it could be started
 * (then see r), -1 with *cause.
 */
int
media_rclone(struct job_ctx *ctx, const char *const *argv,
    struct media_run *r, char **cause)
{
	const char *env[2] = { NULL, NULL };
	char *env_config = NULL, chunk[8192];
	struct proc p;
	int stop = 0, rv;

	if (ctx->cfg->rclone_config != NULL) {
		env_config = xasprintf("RCLONE_CONFIG=%s",
		    ctx->cfg->rclone_config);
		env[0] = env_config;
	}
	r->started = mono_ms();
	rv = proc_spawn(&p, argv, env, PROC_STDERR | PROC_NEWGROUP |
	    (r->capture || r->out_line != NULL ? PROC_STDOUT :
	    PROC_STDOUT_NULL), cause);
	free(env_config);
	if (rv == -1)
		return -1;
	backend_progress(ctx, r->phase, 0, 0);

	while (p.out_fd != -1 || p.err_fd != -1) {
		struct pollfd pf[2] = { { p.out_fd, POLLIN, 0 },
		    { p.err_fd, POLLIN, 0 } };
		ssize_t n;

		if (media_is_cancelled(ctx)) {
			r->cancelled = stop = 1;
			break;
		}
		if (poll(pf, 2, MEDIA_POLL_MS) == -1) {
			if (errno == EINTR)
				continue;
			stop = 1;
			break;
		}
		for (int i = 0; i < 2; i++) {
			int *fd = i == 0 ? &p.out_fd : &p.err_fd;

			if (*fd == -1 || !(pf[i].revents & (POLLIN | POLLHUP |
			    POLLERR)))
				continue;
			n = read(*fd, chunk, sizeof(chunk));
			if (n == -1 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				close(*fd);
				*fd = -1;
			} else if (i == 0 && r->out_line != NULL)
				media_stdout(r, chunk, (size_t)n);
			else if (i == 0)
				buf_add(&r->out, chunk, (size_t)n);
			else
				media_stderr(ctx, r, chunk, (size_t)n);
		}
	}
	if (r->line.len > 0 && !r->skipping)
		media_line(ctx, r, r->line.data, r->line.len);
	buf_reset(&r->line);
	if (r->out_line != NULL && r->out.len > 0)
		r->out_line(r->out_arg, r->out.data, r->out.len);
	if (r->out_line != NULL)
		buf_reset(&r->out);
	if (stop) {
		kill(-p.pid, SIGTERM);
		proc_reap(&p, MEDIA_TERM_GRACE_MS, &r->status);
	} else if (proc_wait(&p, &r->status) == -1) {
		*cause = xasprintf("waiting for rclone: %s", strerror(errno));
		return -1;
	}
	r->ended = mono_ms();
	return 0;
}

int
media_exit_code(const struct media_run *r)
{
	return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1;
}

/* rclone's kept error lines, " | " between them.  Caller frees. */
static char *
media_err_text(struct media_run *r)
{
	const char *text = tail_text(&r->err, MEDIA_ERR_LINES);
	struct buf b;

	buf_init(&b, 2 * sizeof(r->err.buf));
	buf_adds(&b, "");
	for (const char *c = text; *c != '\0'; c++) {
		if (*c == '\n')
			buf_adds(&b, " | ");
		else
			buf_add(&b, c, 1);
	}
	return buf_detach(&b, NULL);
}

/*
 * Why a run is not a good one, or NULL.  rclone exits 9 only when asked
 * to with --error-on-no-transfer, which is not allowed: still success.
 */
char *
media_run_failure(struct media_run *r)
{
	int code = media_exit_code(r);
	char *lines, *st, *cause;

	if (r->cancelled)
		return xstrdup("cancelled");
	lines = media_err_text(r);
	if (code == 0 || code == 9) {
		if (r->stats.errors == 0 && !r->stats.fatal) {
			free(lines);
			return NULL;
		}
		cause = xasprintf("rclone reported %llu error%s: %s",
		    (unsigned long long)r->stats.errors,
		    r->stats.errors == 1 ? "" : "s", *lines != '\0' ? lines :
		    r->stats.last_error);
	} else if (code > 0)
		cause = xasprintf("rclone exited with status %d (%s)%s%s",
		    code, media_exit_text(code), *lines != '\0' ? ": " : "",
		    *lines != '\0' ? lines : r->stats.last_error);
	else {
		st = proc_status_text(r->status);
		cause = xasprintf("rclone was %s%s%s", st,
		    *lines != '\0' ? ": " : "", lines);
		free(st);
	}
	free(lines);
	return cause;
}

void
media_argv_add(struct media_argv *a, const char *s)
{
	a->v = xrealloc(a->v, (a->n + 2) * sizeof(*a->v));
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/*
 * `rclone lsf --max-depth 1 [--dirs-only] PATH`.  0 with the names in
 * r->out (which the caller releases), or -1 with *cause: not_found is
 * set when rclone says the path does not exist.
 */
static int
media_list(struct job_ctx *ctx, const char *path, int dirs_only,
    struct media_run *r, int *not_found, char **cause)
{
	struct media_argv a = { NULL, 0 };
	char *why;
	int rv;

	*not_found = 0;
	media_run_init(r, NULL, 1);
	media_argv_add(&a, ctx->cfg->rclone);
	media_argv_add(&a, "lsf");
	media_argv_add(&a, "--max-depth=1");
	if (dirs_only)
		media_argv_add(&a, "--dirs-only");
	media_argv_add(&a, "--use-json-log");
	media_argv_add(&a, "--");
	media_argv_add(&a, path);
	rv = media_rclone(ctx, a.v, r, cause);
	free(a.v);
	if (rv == -1)
		return -1;
	if (media_exit_code(r) == 3) {
		*not_found = 1;
		*cause = xasprintf("%s does not exist (rclone: directory not "
		    "found)", path);
		return -1;
	}
	if ((why = media_run_failure(r)) != NULL) {
		*cause = xasprintf("cannot list %s: %s", path, why);
		free(why);
		return -1;
	}
	return 0;
}

/* ---- old deleted files ---------------------------------------------- */

/* Days since 1970-01-01 of a strict YYYY-MM-DD (or YYYY-MM-DD/), or -1. */
static long
media_day_number(const char *s)
{
	struct tm tm;
	time_t t;
	int y, m, d;

	if (strlen(s) != 10 && !(strlen(s) == 11 && s[10] == '/'))
		return -1;
	for (int i = 0; i < 10; i++)
		if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' ||
		    s[i] > '9'))
			return -1;
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = 12;
	if ((t = timegm(&tm)) == (time_t)-1 || tm.tm_mday != d)
		return -1;	/* 2026-02-31 */
	return (long)(t / 86400);
}

/*
 * Purge ROOT/YYYY-MM-DD directories more than keep days old.  Failures
 * are warnings: the sync itself was good.
 */
static void
media_expire(struct job_ctx *ctx, const char *root, int keep, cJSON *summary,
    cJSON *warnings)
{
	struct media_run r;
	cJSON *expired = cJSON_AddArrayToObject(summary, "expired");
	long today = (long)(time(NULL) / 86400), day;
	char *cause = NULL, *line, *next, *list;
	int not_found;

	if (media_list(ctx, root, 1, &r, &not_found, &cause) == -1) {
		if (!not_found) {
			backend_log(ctx, "warning", "cannot expire old deleted "
			    "files: %s", cause);
			cJSON_AddItemToArray(warnings, cJSON_CreateString(
			    cause));
		}
		free(cause);
		media_run_release(&r);
		return;
	}
	list = xstrdup(r.out.data);
	media_run_release(&r);
	for (line = list; line != NULL && *line != '\0'; line = next) {
		struct media_argv a = { NULL, 0 };
		char *path, *why;

		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((day = media_day_number(line)) == -1 || today - day <= keep)
			continue;
		if (media_is_cancelled(ctx))
			break;
		line[10] = '\0';
		path = xasprintf("%s/%s", root, line);
		media_run_init(&r, NULL, 0);
		media_argv_add(&a, ctx->cfg->rclone);
		media_argv_add(&a, "purge");
		media_argv_add(&a, "--use-json-log");
		media_argv_add(&a, "--");
		media_argv_add(&a, path);
		why = NULL;
		if (media_rclone(ctx, a.v, &r, &cause) == -1 ||
		    (why = media_run_failure(&r)) != NULL) {
			char *w = xasprintf("cannot remove %s: %s", path,
			    why != NULL ? why : cause);

			backend_log(ctx, "warning", "%s", w);
			cJSON_AddItemToArray(warnings, cJSON_CreateString(w));
			free(w);
		} else {
			backend_log(ctx, "info", "removed %s (deleted files "
			    "older than %d days)", path, keep);
			cJSON_AddItemToArray(expired, cJSON_CreateString(line));
		}
		free(why);
		free(cause);
		cause = NULL;
		free(a.v);
		free(path);
		media_run_release(&r);
	}
	free(list);
}

/* ---- the backend ---------------------------------------------------- */

void
media_size(char *out, size_t n, double b)
{
	const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	size_t u = 0;

	while (b >= 1024 && u + 1 < nitems(unit)) {
		b /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, n, "%.0f %s", b, unit[u]);
	else
		snprintf(out, n, "%.1f %s", b, unit[u]);
}

static cJSON *
media_summary_failed(const char *status, const char *error)
{
	cJSON *s = cJSON_CreateObject();

	cJSON_AddStringToObject(s, "status", status);
	cJSON_AddStringToObject(s, "error", error);
	return s;
}

/*
 * One `rclone sync` to dest.  Returns its summary; *ok says whether it
 * was a good one.
 */
static cJSON *
media_sync_one(struct job_ctx *ctx, const char *dest, char *const *flags,
    const char *backup_dir, int *ok)
{
	const struct target *t = ctx->target;
	struct media_argv a = { NULL, 0 };
	struct media_run r;
	cJSON *s;
	char *cause = NULL, *bdir = NULL, size[32];

	*ok = 0;
	media_run_init(&r, dest, 0);
	media_argv_add(&a, ctx->cfg->rclone);
	media_argv_add(&a, "sync");
	for (size_t i = 0; flags[i] != NULL; i++)
		media_argv_add(&a, flags[i]);
	/* Ours last: they win over anything. */
	media_argv_add(&a, "--use-json-log");
	media_argv_add(&a, "--stats=" MEDIA_STATS_EVERY);
	media_argv_add(&a, "--stats-log-level=NOTICE");
	if (backup_dir != NULL) {
		bdir = xasprintf("--backup-dir=%s", backup_dir);
		media_argv_add(&a, bdir);
	}
	media_argv_add(&a, "--");
	media_argv_add(&a, t->source);
	media_argv_add(&a, dest);

	backend_log(ctx, "info", "syncing %s to %s", t->source, dest);
	if (media_rclone(ctx, a.v, &r, &cause) == -1) {
		s = media_summary_failed("failed", cause);
		backend_log(ctx, "warning", "%s: %s", dest, cause);
		goto done;
	}
	cause = media_run_failure(&r);
	s = cJSON_CreateObject();
	cJSON_AddStringToObject(s, "status", cause == NULL ? "ok" :
	    r.cancelled ? "cancelled" : "failed");
	cJSON_AddNumberToObject(s, "transferred", (double)r.stats.transfers);
	cJSON_AddNumberToObject(s, "bytes", (double)r.stats.bytes);
	cJSON_AddNumberToObject(s, "deleted", (double)r.stats.deletes);
	if (backup_dir != NULL) {
		cJSON_AddStringToObject(s, "backup_dir", backup_dir);
		/* moved into backup_dir: deleted or overwritten files */
		cJSON_AddNumberToObject(s, "moved_to_backup_dir",
		    (double)r.stats.renames);
	}
	cJSON_AddNumberToObject(s, "checks", (double)r.stats.checks);
	cJSON_AddNumberToObject(s, "errors", (double)r.stats.errors);
	cJSON_AddNumberToObject(s, "duration",
	    (double)(r.ended - r.started) / 1000.0);
	cJSON_AddNumberToObject(s, "exit_code", media_exit_code(&r));
	if (cause != NULL) {
		cJSON_AddStringToObject(s, "error", cause);
		backend_log(ctx, "warning", "%s: %s", dest, cause);
	} else {
		*ok = 1;
		media_size(size, sizeof(size), (double)r.stats.bytes);
		backend_log(ctx, "info", "%s: ok: %llu file%s (%s) copied, %llu "
		    "deleted, %llu checked in %.1fs", dest,
		    (unsigned long long)r.stats.transfers,
		    r.stats.transfers == 1 ? "" : "s", size,
		    (unsigned long long)r.stats.deletes,
		    (unsigned long long)r.stats.checks,
		    (double)(r.ended - r.started) / 1000.0);
	}

done:
	free(cause);
	free(bdir);
	free(a.v);
	media_run_release(&r);
	return s;
}

/*
 * The source must exist; *empty when it holds nothing (at its top
 * level).  -1 with *cause when it cannot be listed.
 */
static int
media_source_check(struct job_ctx *ctx, int *empty, char **cause)
{
	struct media_run r;
	char *why = NULL;
	int not_found, rc = 0;

	*empty = 0;
	if (media_list(ctx, ctx->target->source, 0, &r, &not_found,
	    &why) == -1) {
		*cause = xasprintf("source: %s%s", why, not_found ? "; "
		    "nothing was synced, the destinations are untouched" : "");
		free(why);
		rc = -1;
	} else
		*empty = r.out.len == 0 && !r.out.overflow;
	media_run_release(&r);
	return rc;
}

/* 1 if dest exists and holds something, 0 if not, -1 with *cause. */
static int
media_dest_has_files(struct job_ctx *ctx, const char *dest, char **cause)
{
	struct media_run r;
	char *why = NULL;
	int not_found, rc;

	if (media_list(ctx, dest, 0, &r, &not_found, &why) == -1) {
		if (not_found)
			rc = 0;
		else {
			*cause = why;
			why = NULL;
			rc = -1;
		}
	} else
		rc = r.out.len > 0 || r.out.overflow;
	free(why);
	media_run_release(&r);
	return rc;
}

static int
media_sync(struct job_ctx *ctx, cJSON *manifest, char **cause)
{
	const struct target *t = ctx->target;
	cJSON *dests, *warnings, *flist, *s;
	char **flags = NULL, *why = NULL, *root, *bdir, date[16];
	uint64_t bytes = 0, files = 0, deleted = 0;
	size_t ok = 0, failed = 0;
	struct buf failures;
	struct tm tm;
	time_t now = time(NULL);
	int nflags, empty, good, has;

	*cause = NULL;
	if (media_target_check(t, cause) == -1 ||
	    media_flags_parse(t->flags, &flags, &nflags, cause) == -1)
		return -1;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);

	backend_fact(manifest, "source", cJSON_CreateString(t->source));
	flist = cJSON_CreateArray();
	for (int i = 0; i < nflags; i++)
		cJSON_AddItemToArray(flist, cJSON_CreateString(flags[i]));
	backend_fact(manifest, "flags", flist);
	backend_fact(manifest, "keep_deleted_days",
	    cJSON_CreateNumber(t->keep_deleted_days));
	dests = cJSON_CreateObject();
	backend_fact(manifest, "destinations", dests);
	warnings = cJSON_CreateArray();
	backend_fact(manifest, "warnings", warnings);
	buf_init(&failures, 16 * 1024);
	buf_adds(&failures, "");

	if (media_source_check(ctx, &empty, &why) == -1) {
		for (size_t i = 0; i < t->destinations.n; i++) {
			char *e = xasprintf("not run: %s", why);

			cJSON_AddItemToObject(dests, t->destinations.v[i],
			    media_summary_failed("failed", e));
			free(e);
		}
		*cause = why;
		media_argv_free(flags);
		buf_release(&failures);
		return -1;
	}

	for (size_t i = 0; i < t->destinations.n; i++) {
		const char *d = t->destinations.v[i];

		if (media_is_cancelled(ctx)) {
			s = media_summary_failed("cancelled",
			    "not run: cancelled");
			good = 0;
		} else if (empty && (has = media_dest_has_files(ctx, d,
		    &why)) != 0) {
			char *e = has == -1 ? xasprintf("not run: %s", why) :
			    xasprintf("not run: the source %s is empty and %s "
			    "is not; a sync would delete every file there "
			    "(check the source; to empty the destination, "
			    "do it by hand)", t->source, d);

			backend_log(ctx, "warning", "%s: %s", d, e);
			s = media_summary_failed("failed", e);
			free(e);
			free(why);
			why = NULL;
			good = 0;
		} else {
			root = bdir = NULL;
			if (t->keep_deleted_days > 0) {
				root = media_deleted_root(d, &why);
				bdir = xasprintf("%s/%s", root, date);
			}
			s = media_sync_one(ctx, d, flags, bdir, &good);
			if (good && root != NULL)
				media_expire(ctx, root, t->keep_deleted_days,
				    s, warnings);
			free(root);
			free(bdir);
		}
		cJSON_AddItemToObject(dests, d, s);
		if (good) {
			ok++;
			bytes += json_u64(s, "bytes");
			files += json_u64(s, "transferred");
			deleted += json_u64(s, "deleted");
		} else {
			failed++;
			buf_addf(&failures, "%s%s: %s", failed > 1 ? "; " : "",
			    d, json_text(s, "error"));
		}
	}
	backend_fact(manifest, "transferred", cJSON_CreateNumber((double)files));
	backend_fact(manifest, "bytes", cJSON_CreateNumber((double)bytes));
	backend_fact(manifest, "deleted", cJSON_CreateNumber((double)deleted));
	media_argv_free(flags);

	if (failed == 0) {
		buf_release(&failures);
		return 0;
	}
	if (media_is_cancelled(ctx))
		*cause = xstrdup("cancelled");
	else if (ok == 0 && failed == 1)
		*cause = xstrdup(failures.data);
	else if (ok == 0)
		*cause = xasprintf("all %zu destinations failed: %s", failed,
		    failures.data);
	else
		*cause = xasprintf("%zu of %zu destinations failed: %s",
		    failed, failed + ok, failures.data);
	buf_release(&failures);
	return ok == 0 || media_is_cancelled(ctx) ? -1 : 1;
}

/*
 * Health for !status: the source can be listed and is not empty, each
 * destination can be listed (one that does not exist yet is fine: the
 * first sync creates it).
 */
static int
media_probe(struct job_ctx *ctx, cJSON *out, char **cause)
{
	const struct target *t = ctx->target;
	cJSON *dests = cJSON_CreateObject();
	char *why = NULL;
	int empty, has, rc = 0;

	*cause = NULL;
	if (media_target_check(t, cause) == -1) {
		cJSON_Delete(dests);
		return -1;
	}
	if (media_source_check(ctx, &empty, cause) == -1) {
		backend_fact(out, "reachable", cJSON_CreateFalse());
		cJSON_Delete(dests);
		return -1;
	}
	backend_fact(out, "reachable", cJSON_CreateTrue());
	backend_fact(out, "source_empty", cJSON_CreateBool(empty));
	for (size_t i = 0; i < t->destinations.n; i++) {
		const char *d = t->destinations.v[i];

		if ((has = media_dest_has_files(ctx, d, &why)) == -1) {
			cJSON_AddStringToObject(dests, d, why);
			if (*cause == NULL)
				*cause = xasprintf("destination %s", why);
			free(why);
			why = NULL;
			rc = -1;
		} else
			cJSON_AddStringToObject(dests, d, has ? "ok" :
			    "empty or not created yet");
	}
	backend_fact(out, "destinations", dests);
	if (rc == 0 && empty) {
		*cause = xasprintf("the source %s is empty", t->source);
		rc = -1;
	}
	return rc;
}

/* config's question about a key: the flags allowlist. */
static int
media_check_key(const char *key, const char *value, char **cause)
{
	char **argv;
	int argc;

	if (strcmp(key, "flags") != 0)
		return 0;
	if (media_flags_parse(value, &argv, &argc, cause) == -1)
		return -1;
	media_argv_free(argv);
	return 0;
}

/* config's question about a section whose source and destinations are
 * set (config reports their absence itself). */
static int
media_check_target(const struct target *t, char **cause)
{
	if (t->source == NULL || t->destinations.n == 0)
		return 0;
	if (media_target_check(t, cause) == 0)
		return 0;
	if (str_startswith(*cause, "flags: ")) {	/* reported at its line */
		free(*cause);
		*cause = NULL;
		return 0;
	}
	return -1;
}

const struct backend backend_media = {
	.kind = "media",
	.suffix = ".media",
	.sync = media_sync,
	.probe = media_probe,
	.restore = media_restore,
	.check_key = media_check_key,
	.check_target = media_check_target,
};
