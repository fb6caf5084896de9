/*
 * media_restore.c - the restore side of the media backend: `rclone copy`
 * back from a destination (never sync, nothing is deleted), and the
 * drill, `rclone check --one-way`.  The backup side is media.c.
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

#define MEDIA_DIFFS_MAX		20	/* names of differing files listed */

/*
 * A restore copies a destination back with `rclone copy`, never sync:
 * nothing is ever deleted.  Without --replace, --ignore-existing: only
 * what is missing comes back, no file that exists is touched.  With
 * --replace, files that differ are overwritten.  A drill copies
 * nothing: `rclone check --one-way` of the source against the
 * destination, for the files the source had when the run began.
 */

/* 1 if from names dest: the destination itself, or its remote's name. */
static int
media_from_matches(const char *dest, const char *from)
{
	size_t n = strlen(from);

	return strcmp(dest, from) == 0 || (n > 0 && strncmp(dest, from,
	    n) == 0 && dest[n] == ':');
}

/*
 * The destination to copy from: opts->from, or the first destination
 * that the run record says was synced.  A destination that failed in
 * that run holds an older or partial copy: refused.
 */
static const char *
media_restore_from(struct job_ctx *ctx, const cJSON *record,
    const char *from, char **cause)
{
	const struct target *t = ctx->target;
	const cJSON *dests = cJSON_GetObjectItemCaseSensitive(record,
	    "destinations"), *s;
	struct buf good;
	const char *found = NULL;

	buf_init(&good, 16 * 1024);
	buf_adds(&good, "");
	for (size_t i = 0; i < t->destinations.n; i++) {
		const char *d = t->destinations.v[i];
		int ok;

		s = cJSON_GetObjectItemCaseSensitive(dests, d);
		ok = s != NULL && strcmp(json_text(s, "status"), "ok") == 0;
		if (ok)
			buf_addf(&good, "%s%s", good.len > 0 ? ", " : "", d);
		if (found != NULL || (from != NULL &&
		    !media_from_matches(d, from)))
			continue;
		if (ok)
			found = d;
		else if (from != NULL) {
			*cause = xasprintf("%s was not synced in run %s (%s): its "
			    "copy may be old or incomplete", d, json_text(record,
			    "id"), s != NULL ? json_text(s, "error") :
			    "not in the run record");
			buf_release(&good);
			return NULL;
		}
	}
	if (found == NULL) {
		if (from != NULL)
			*cause = xasprintf("%s is not one of %s's destinations",
			    from, t->name);
		else
			*cause = xasprintf("no destination was synced in run %s",
			    json_text(record, "id"));
	}
	buf_release(&good);
	return found;
}

/* A file rclone check found missing or different at a destination. */
struct media_diff {
	char	*name;
	char	 kind;		/* '+' missing, '*' different, '!' unreadable */
	int	 excused;	/* changed at the source since the run began */
};

/* What rclone check --combined says, counted. */
struct media_check {
	uint64_t	   matched;
	uint64_t	   errors;
	struct media_diff *v;
	size_t		   n;
	uint64_t	   unlisted;	/* past MEDIA_CHECK_NAMES */
	int64_t		   since;	/* the run's start, or -1 */
};

#define MEDIA_CHECK_NAMES	100000	/* differences looked at one by one */

static void
media_check_line(void *arg, const char *line, size_t len)
{
	struct media_check *c = arg;

	if (len < 3 || line[1] != ' ')
		return;
	switch (line[0]) {
	case '=':
		c->matched++;
		return;
	case '+':
	case '*':
	case '!':
		break;
	default:
		return;		/* '-': only at the destination: deleted since */
	}
	if (c->n == MEDIA_CHECK_NAMES) {
		c->unlisted++;
		return;
	}
	c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
	c->v[c->n].name = xstrndup(line + 2, len - 2);
	c->v[c->n].kind = line[0];
	c->v[c->n].excused = 0;
	c->n++;
}

static void
media_check_release(struct media_check *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

static int
media_diff_cmp(const void *a, const void *b)
{
	return strcmp(((const struct media_diff *)a)->name,
	    ((const struct media_diff *)b)->name);
}

/* "2026-11-26T14:35:55.76+01:00" as seconds since the epoch, or -1. */
static int64_t
media_rfc3339(const char *s)
{
	struct tm tm;
	const char *p;
	int off = 0, hh, mm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || (p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	while (*p == '.' || (*p >= '0' && *p <= '9'))
		p++;
	if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &hh,
	    &mm) == 2)
		off = (*p == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
	else if (*p != 'Z')
		return -1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	return (int64_t)t - off;
}

/* One line of rclone lsjson: excuse the file if it changed since. */
static void
media_lsjson_line(void *arg, const char *line, size_t len)
{
	struct media_check *c = arg;
	struct media_diff key, *d;
	const char *path;
	int64_t mtime;
	cJSON *j;

	while (len > 0 && (line[len - 1] == ',' || line[len - 1] == '\r'))
		len--;
	if (len == 0 || line[0] != '{' ||
	    (j = cJSON_ParseWithLength(line, len)) == NULL)
		return;
	path = json_str(j, "Path");
	mtime = media_rfc3339(json_str(j, "ModTime"));
	key.name = (char *)path;
	if (path != NULL && (d = bsearch(&key, c->v, c->n, sizeof(*c->v),
	    media_diff_cmp)) != NULL && d->kind != '!')
		d->excused = mtime != -1 && mtime >= c->since;
	cJSON_Delete(j);
}

/*
 * Of the files that differ, which changed at the source since the run
 * began: their modification times, by `rclone lsjson --files-from-raw`
 * on the source.  One it does not list stays a difference.  -1 with
 * *cause when that cannot be found out.
 */
static int
media_check_excuse(struct job_ctx *ctx, char *const *flags,
    struct media_check *c, char **cause)
{
	const char *base = getenv("TMPDIR");
	struct media_argv a = { NULL, 0 };
	struct media_run r;
	char *list, *arg = NULL, *why;
	size_t asked = 0;
	FILE *f;
	int fd, rc = -1;

	qsort(c->v, c->n, sizeof(*c->v), media_diff_cmp);
	if (base == NULL || *base != '/')
		base = "/tmp";
	list = xasprintf("%s/bbrestore-media.XXXXXX", base);
	if ((fd = mkstemp(list)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		*cause = xasprintf("%s: %s", list, strerror(errno));
		if (fd != -1) {
			close(fd);
			unlink(list);
		}
		free(list);
		return -1;
	}
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].kind != '!' && strchr(c->v[i].name, '\n') == NULL) {
			fprintf(f, "%s\n", c->v[i].name);
			asked++;
		}
	if (fclose(f) == EOF) {
		*cause = xasprintf("%s: %s", list, strerror(errno));
		goto done;
	}
	if (asked == 0) {
		rc = 0;
		goto done;
	}
	media_run_init(&r, NULL, 0);
	r.out_line = media_lsjson_line;
	r.out_arg = c;
	arg = xasprintf("--files-from-raw=%s", list);
	media_argv_add(&a, ctx->cfg->rclone);
	media_argv_add(&a, "lsjson");
	for (size_t i = 0; flags[i] != NULL; i++)
		if (str_startswith(flags[i], "--checkers") ||
		    str_startswith(flags[i], "--tpslimit") ||
		    str_startswith(flags[i], "--timeout") ||
		    str_startswith(flags[i], "--contimeout") ||
		    str_startswith(flags[i], "--low-level-retries") ||
		    str_startswith(flags[i], "--fast-list"))
			media_argv_add(&a, flags[i]);
	media_argv_add(&a, "--recursive");
	media_argv_add(&a, "--files-only");
	media_argv_add(&a, "--no-mimetype");
	media_argv_add(&a, arg);
	media_argv_add(&a, "--use-json-log");
	media_argv_add(&a, "--");
	media_argv_add(&a, ctx->target->source);
	if (media_rclone(ctx, a.v, &r, cause) == 0) {
		if ((why = media_run_failure(&r)) != NULL) {
			*cause = xasprintf("rclone lsjson of the differing files "
			    "at %s: %s", ctx->target->source, why);
			free(why);
		} else
			rc = 0;
	}
	media_run_release(&r);
	free(a.v);
	free(arg);
done:
	unlink(list);
	free(list);
	return rc;
}

/* Add flags, then ours: ours come last and win. */
static void
media_argv_flags(struct media_argv *a, char *const *flags)
{
	for (size_t i = 0; flags[i] != NULL; i++)
		media_argv_add(a, flags[i]);
	media_argv_add(a, "--use-json-log");
	media_argv_add(a, "--stats=" MEDIA_STATS_EVERY);
	media_argv_add(a, "--stats-log-level=NOTICE");
}

/*
 * The drill of one destination: every file the source has must be
 * there, the same (hash, or size when the two have no hash in common):
 * `rclone check --one-way SOURCE DEST`, which copies nothing.  What the
 * source gained or changed since the run began is not the copy's
 * fault: those differences are excused (their source file is newer than
 * the run's start), as are files deleted at the source since
 * (--one-way).  Adds to *compared and *differences.
 */
static int
media_drill_one(struct job_ctx *ctx, const cJSON *record, const char *dest,
    char *const *flags, cJSON *notes, cJSON *diffs, uint64_t *compared,
    uint64_t *ndiffs, char **cause)
{
	const struct target *t = ctx->target;
	struct media_argv a = { NULL, 0 };
	struct media_check c;
	struct media_run r;
	char *why, when[32], *s, *name;
	uint64_t n = 0, excused = 0;
	double started;
	int code, rc = -1;

	memset(&c, 0, sizeof(c));
	c.since = -1;
	when[0] = '\0';
	if (json_get_num(record, "started", &started) == 0 && started > 0) {
		time_t at = (time_t)started;
		struct tm tm;

		c.since = (int64_t)started;
		gmtime_r(&at, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	}
	media_run_init(&r, "drill", 0);
	r.out_line = media_check_line;
	r.out_arg = &c;
	media_argv_add(&a, ctx->cfg->rclone);
	media_argv_add(&a, "check");
	media_argv_flags(&a, flags);
	media_argv_add(&a, "--one-way");
	media_argv_add(&a, "--combined=-");
	media_argv_add(&a, "--");
	media_argv_add(&a, t->source);
	media_argv_add(&a, dest);
	backend_log(ctx, "info", "checking %s against %s", dest, t->source);
	if (media_rclone(ctx, a.v, &r, cause) == -1)
		goto done;
	code = media_exit_code(&r);
	/* 1: differences found, which are ours to tell */
	if (r.cancelled || !(code == 0 || (code == 1 && (c.n > 0 ||
	    c.unlisted > 0)))) {
		why = media_run_failure(&r);
		*cause = xasprintf("rclone check %s against %s: %s", dest,
		    t->source, why != NULL ? why : "failed");
		free(why);
		goto done;
	}
	if (c.n > 0 && c.since != -1 && media_check_excuse(ctx, flags, &c,
	    cause) == -1)
		goto done;
	for (size_t i = 0; i < c.n; i++) {
		if (c.v[i].excused) {
			excused++;
			continue;
		}
		if (n++ >= MEDIA_DIFFS_MAX)
			continue;
		name = media_word(c.v[i].name, strlen(c.v[i].name));
		s = xasprintf("%s: %s", name, c.v[i].kind == '+' ?
		    "at the source, missing at " : c.v[i].kind == '*' ?
		    "differs between the source and " :
		    "could not be read or hashed at the source or ");
		free(name);
		name = xasprintf("%s%s", s, dest);
		cJSON_AddItemToArray(diffs, cJSON_CreateString(name));
		free(name);
		free(s);
	}
	n += c.unlisted;
	*compared += c.matched + c.n + c.unlisted - excused;
	*ndiffs += n;
	json_addf(notes, "%s: %llu file%s compared with %s%s", dest,
	    (unsigned long long)(c.matched + c.n + c.unlisted - excused),
	    c.matched + c.n + c.unlisted - excused == 1 ? "" : "s",
	    t->source, r.no_common_hash ? ", by size only (no hash in "
	    "common)" : "");
	if (excused > 0)
		json_addf(notes, "%s: %llu file%s changed or added at the "
		    "source since the run began (%s): not counted", dest,
		    (unsigned long long)excused, excused == 1 ? "" : "s", when);
	if (n > MEDIA_DIFFS_MAX)
		json_addf(notes, "%s: and %llu more differences", dest,
		    (unsigned long long)(n - MEDIA_DIFFS_MAX));
	rc = 0;
done:
	free(a.v);
	media_run_release(&r);
	media_check_release(&c);
	return rc;
}

/* The drill: every destination the run record says was synced. */
static int
media_drill(struct job_ctx *ctx, const cJSON *record, const char *from,
    char *const *flags, cJSON *result, cJSON *notes, cJSON *diffs,
    char **cause)
{
	const struct target *t = ctx->target;
	const cJSON *dests = cJSON_GetObjectItemCaseSensitive(record,
	    "destinations");
	uint64_t compared = 0, n = 0;

	for (size_t i = 0; i < t->destinations.n; i++) {
		const char *d = t->destinations.v[i];
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(dests, d);

		if (from != NULL && strcmp(d, from) != 0)
			continue;
		if (s == NULL || strcmp(json_text(s, "status"), "ok") != 0)
			continue;
		if (media_drill_one(ctx, record, d, flags, notes, diffs,
		    &compared, &n, cause) == -1)
			return -1;
	}
	cJSON_AddNumberToObject(result, "compared", (double)compared);
	if (n > 0) {
		*cause = xasprintf("%llu file%s differ%s from the source: %s%s",
		    (unsigned long long)n, n == 1 ? "" : "s", n == 1 ? "s" : "",
		    cJSON_GetArrayItem(diffs, 0)->valuestring, n > 1 ? " ..." :
		    "");
		return -1;
	}
	if (compared == 0) {
		*cause = xasprintf("nothing to compare: %s holds no file that "
		    "was there when run %s began", t->source, json_text(record,
		    "id"));
		return -1;
	}
	return 0;
}

int
media_restore(struct job_ctx *ctx, const cJSON *record, const char *raw,
    const struct restore_opts *opts, cJSON *result, char **cause)
{
	const struct target *t = ctx->target;
	cJSON *notes = cJSON_CreateArray(), *diffs = cJSON_CreateArray();
	struct media_argv a = { NULL, 0 };
	struct media_run r;
	const char *from, *to;
	char **flags = NULL, *why, size[32];
	int nflags, rc = -1;

	(void)raw;
	*cause = NULL;
	backend_fact(result, "notes", notes);
	backend_fact(result, "differences", diffs);
	if (media_target_check(t, cause) == -1 ||
	    media_flags_parse(t->flags, &flags, &nflags, cause) == -1)
		return -1;
	if ((from = media_restore_from(ctx, record, opts->from,
	    cause)) == NULL) {
		media_argv_free(flags);
		return -1;
	}
	if (opts->drill) {
		rc = media_drill(ctx, record, opts->from != NULL ? from : NULL,
		    flags, result, notes, diffs, cause);
		media_argv_free(flags);
		return rc;
	}

	to = opts->into != NULL ? opts->into : t->source;
	media_run_init(&r, "restore", 0);
	media_argv_add(&a, ctx->cfg->rclone);
	media_argv_add(&a, "copy");
	media_argv_flags(&a, flags);
	if (!opts->replace)
		media_argv_add(&a, "--ignore-existing");
	media_argv_add(&a, "--");
	media_argv_add(&a, from);
	media_argv_add(&a, to);
	cJSON_AddStringToObject(result, "into", to);
	cJSON_AddStringToObject(result, "from", from);
	backend_log(ctx, "info", "copying %s back to %s%s", from, to,
	    opts->replace ? "" : " (only files that are missing there)");
	if (media_rclone(ctx, a.v, &r, cause) == -1)
		goto done;
	if ((why = media_run_failure(&r)) != NULL) {
		*cause = xasprintf("rclone copy %s to %s: %s (files copied "
		    "before the failure stay; nothing was deleted)", from, to,
		    why);
		free(why);
		goto done;
	}
	media_size(size, sizeof(size), (double)r.stats.bytes);
	cJSON_AddNumberToObject(result, "files", (double)r.stats.transfers);
	cJSON_AddNumberToObject(result, "bytes", (double)r.stats.bytes);
	json_addf(notes, "%llu file%s (%s) copied from %s to %s",
	    (unsigned long long)r.stats.transfers,
	    r.stats.transfers == 1 ? "" : "s", size, from, to);
	if (opts->replace)
		json_addf(notes, "--replace: files at %s that differed from "
		    "the copy were overwritten; %llu were already the same",
		    to, (unsigned long long)r.stats.checks);
	else if (r.stats.checks > 0)
		json_addf(notes, "%llu file%s already at %s %s left as %s "
		    "(--replace overwrites those that differ)",
		    (unsigned long long)r.stats.checks,
		    r.stats.checks == 1 ? "" : "s", to,
		    r.stats.checks == 1 ? "was" : "were",
		    r.stats.checks == 1 ? "it was" : "they were");
	json_addf(notes, "nothing was deleted (rclone copy, never sync)");
	rc = 0;
done:
	free(a.v);
	media_run_release(&r);
	media_argv_free(flags);
	return rc;
}
