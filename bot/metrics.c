/*
 * metrics.c - the Prometheus textfile for node_exporter, and reading the
 * job ledger line by line from any offset (metrics.h).
 *
 * The text exposition format: per metric a "# HELP" and a "# TYPE" line,
 * then all its samples together; label values escape backslash, double
 * quote and newline.  Samples carry no timestamps (the textfile collector
 * refuses them).
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "catalog.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define LEDGER_CHUNK	(256 * 1024)
#define LEDGER_LINE_MAX	(64 * 1024)
#define RUN_MAX		(4 * 1024 * 1024)
#define METRICS_MAX	(64 * 1024 * 1024)

/* One remote of a target (a destination, for media). */
struct remote_stat {
	const char	*name;
	time_t		 last_ok;	/* 0: never */
	unsigned long	 failed;
};

struct target_stat {
	const struct target	*t;
	int			 have_good;
	time_t			 ended;		/* newest good one */
	double			 duration;
	double			 bytes;
	size_t			 kept;
	struct remote_stat	*remotes;
	size_t			 nremotes;
	double			 failures;	/* -1: no ledger */
};

/*
 * Failed backups per target counted in the ledger up to `offset`, kept
 * from call to call so that each call reads only the lines appended
 * since.  path NULL: count again from the start.
 */
static struct {
	char	*path;
	dev_t	 dev;
	ino_t	 ino;
	off_t	 offset;
	cJSON	*counts;	/* { TARGET: N } */
} seen;

/* ---- the ledger ------------------------------------------------------- */

static char *
ledger_path(const struct config *cfg)
{
	return xasprintf("%s/ledger.jsonl", cfg->state_dir);
}

int
metrics_is_failed_backup(const cJSON *end)
{
	const char *st = json_text(end, "status");

	return !strcmp(json_text(end, "kind"), "backup") &&
	    (!strcmp(st, "failed") || !strcmp(st, "crashed") ||
	    !strcmp(st, "interrupted"));
}

/* One whole line: an end line goes to fn. */
static void
ledger_line(const char *s, size_t len, metrics_ledger_fn fn, void *arg)
{
	cJSON *l;

	/* Half the lines are start lines: no need to parse those. */
	if (len == 0 || strstr(s, "\"end\"") == NULL)
		return;
	if ((l = cJSON_ParseWithLength(s, len)) == NULL)
		return;
	if (cJSON_IsObject(l) && !strcmp(json_text(l, "event"), "end"))
		fn(l, arg);
	cJSON_Delete(l);
}

/*
 * Read fd from offset `from` to its end, in chunks, passing each whole
 * line on.  skip: `from` may be inside a line, so drop everything up to
 * the first newline.  Returns the offset just after the last newline
 * read (a line still being written is left for next time), or -1 with
 * errno.
 */
static off_t
ledger_scan(int fd, off_t from, int skip, metrics_ledger_fn fn, void *arg)
{
	char *chunk = xmalloc(LEDGER_CHUNK);
	struct buf line;
	off_t pos = from, done = from;
	ssize_t n;
	int saved;

	buf_init(&line, LEDGER_LINE_MAX);
	for (;;) {
		const char *p, *end, *nl;

		n = pread(fd, chunk, LEDGER_CHUNK, pos);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		end = chunk + n;
		for (p = chunk; p < end; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(end - p));
			if (!skip)
				buf_add(&line, p, (size_t)((nl != NULL ? nl :
				    end) - p));
			if (nl == NULL)
				break;
			/* over LEDGER_LINE_MAX: not one of ours, skipped */
			if (!skip && !line.overflow)
				ledger_line(line.data, line.len, fn, arg);
			buf_reset(&line);
			skip = 0;
			done = pos + (nl + 1 - chunk);
		}
		pos += n;
	}
	saved = errno;
	buf_release(&line);
	free(chunk);
	errno = saved;
	return n == -1 ? -1 : done;
}

int
metrics_ledger_ends(const struct config *cfg, size_t tail,
    metrics_ledger_fn fn, void *arg, char **cause)
{
	char *path = ledger_path(cfg);
	struct stat st;
	off_t from = 0;
	int fd, r = 0;

	*cause = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		/* no ledger: no job ever ran */
		if (errno != ENOENT) {
			*cause = xasprintf("cannot open the ledger %s: %s",
			    path, strerror(errno));
			r = -1;
		}
		free(path);
		return r;
	}
	/*
	 * One byte early: when that byte ends the line before, skipping up
	 * to the first newline loses nothing of the tail.
	 */
	if (fstat(fd, &st) == 0 && tail > 0 && st.st_size > (off_t)tail)
		from = st.st_size - (off_t)tail - 1;
	if (ledger_scan(fd, from, from > 0, fn, arg) == -1) {
		*cause = xasprintf("cannot read the ledger %s: %s", path,
		    strerror(errno));
		r = -1;
	}
	close(fd);
	free(path);
	return r;
}

static void
count_failure(const cJSON *end, void *arg)
{
	cJSON *counts = arg, *c;
	const char *target = json_str(end, "target");

	if (target == NULL || !metrics_is_failed_backup(end))
		return;
	if ((c = cJSON_GetObjectItemCaseSensitive(counts, target)) != NULL)
		cJSON_SetNumberValue(c, c->valuedouble + 1);
	else
		cJSON_AddNumberToObject(counts, target, 1);
}

static void
seen_reset(const char *path, const struct stat *st)
{
	free(seen.path);
	cJSON_Delete(seen.counts);
	seen.path = path != NULL ? xstrdup(path) : NULL;
	seen.dev = st != NULL ? st->st_dev : 0;
	seen.ino = st != NULL ? st->st_ino : 0;
	seen.offset = 0;
	seen.counts = cJSON_CreateObject();
}

/*
 * Bring the failure counts up to date and return them, or NULL with
 * *cause.  The ledger is append-only: if it is the same file, no shorter,
 * and still has a newline where we stopped, we go on from there;
 * otherwise it was replaced and we count again.
 */
static const cJSON *
ledger_failures(const struct config *cfg, char **cause)
{
	char *path = ledger_path(cfg), last;
	struct stat st;
	off_t done;
	int fd;

	*cause = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			seen_reset(path, NULL);
		else {
			*cause = xasprintf("cannot open the ledger %s: %s",
			    path, strerror(errno));
			seen_reset(NULL, NULL);
		}
		free(path);
		return *cause == NULL ? seen.counts : NULL;
	}
	if (fstat(fd, &st) == -1) {
		*cause = xasprintf("cannot stat the ledger %s: %s", path,
		    strerror(errno));
		seen_reset(NULL, NULL);
		goto done;
	}
	if (seen.path == NULL || strcmp(seen.path, path) != 0 ||
	    seen.dev != st.st_dev || seen.ino != st.st_ino ||
	    st.st_size < seen.offset || (seen.offset > 0 &&
	    (pread(fd, &last, 1, seen.offset - 1) != 1 || last != '\n')))
		seen_reset(path, &st);
	if ((done = ledger_scan(fd, seen.offset, 0, count_failure,
	    seen.counts)) == -1) {
		*cause = xasprintf("cannot read the ledger %s: %s", path,
		    strerror(errno));
		/* counted in part: start over next time */
		seen_reset(NULL, NULL);
		goto done;
	}
	seen.offset = done;
done:
	close(fd);
	free(path);
	return *cause == NULL ? seen.counts : NULL;
}

/* ---- the catalog ------------------------------------------------------ */

static void
stat_backups(const struct config *cfg, struct target_stat *ts)
{
	struct backup *list;
	size_t n = catalog_list(cfg, ts->t->name, &list);

	ts->kept = n;
	if (n > 0) {
		/* newest first */
		ts->have_good = 1;
		ts->ended = list[0].ended;
		ts->duration = difftime(list[0].ended, list[0].started);
		ts->bytes = (double)list[0].bytes;
	}
	for (size_t r = 0; r < ts->nremotes; r++) {
		struct remote_stat *rs = &ts->remotes[r];

		for (size_t i = 0; i < n; i++) {
			const cJSON *st = cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetObjectItemCaseSensitive(list[i].manifest,
			    "remotes"), rs->name);
			const char *s = json_text(st, "status");
			double at;

			if (!strcmp(s, "failed"))
				rs->failed++;
			else if (!strcmp(s, "ok") && rs->last_ok == 0)
				rs->last_ok = json_get_num(st, "at", &at) ==
				    0 && at > 0 ? (time_t)at : list[i].ended;
		}
	}
	catalog_free(list, n);
}

/* One run record of a media target. */
static void
stat_run(struct target_stat *ts, const cJSON *run, const char *name,
    char **newest_good)
{
	const char *status = json_text(run, "status");
	const cJSON *dests = cJSON_GetObjectItemCaseSensitive(run,
	    "destinations");
	time_t ended = (time_t)json_num(run, "ended");

	/* ids, and so names, sort by time */
	if ((!strcmp(status, "ok") || !strcmp(status, "partial")) &&
	    (*newest_good == NULL || strcmp(name, *newest_good) > 0)) {
		free(*newest_good);
		*newest_good = xstrdup(name);
		ts->have_good = 1;
		ts->ended = ended;
		ts->duration = json_num(run, "ended") - json_num(run,
		    "started");
		ts->bytes = json_num(run, "bytes");
	}
	for (size_t r = 0; r < ts->nremotes; r++) {
		struct remote_stat *rs = &ts->remotes[r];
		const char *s = json_text(
		    cJSON_GetObjectItemCaseSensitive(dests, rs->name),
		    "status");

		if (!strcmp(s, "failed"))
			rs->failed++;
		else if (!strcmp(s, "ok") && ended > rs->last_ok)
			rs->last_ok = ended;
	}
}

/* Every run record (ID.run.json) of a media target. */
static void
stat_runs(const struct config *cfg, struct target_stat *ts)
{
	char *dir = catalog_dir(cfg, ts->t->name), *newest_good = NULL;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		free(dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char *path, *text;
		cJSON *run;

		if (de->d_name[0] == '.' || len < 10 ||
		    strcmp(de->d_name + len - 9, ".run.json") != 0)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		text = file_read(path, RUN_MAX, &len);
		free(path);
		if (text == NULL)
			continue;
		run = cJSON_ParseWithLength(text, len);
		free(text);
		if (cJSON_IsObject(run))
			stat_run(ts, run, de->d_name, &newest_good);
		cJSON_Delete(run);
	}
	closedir(d);
	free(newest_good);
	free(dir);
}

/* ---- the text --------------------------------------------------------- */

static void
family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
label_value(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			buf_adds(b, "\\\\");
		else if (*s == '"')
			buf_adds(b, "\\\"");
		else if (*s == '\n')
			buf_adds(b, "\\n");
		else
			buf_add(b, s, 1);
	}
}

static void
sample(struct buf *b, const char *name, const char *k1, const char *v1,
    const char *k2, const char *v2, double value)
{
	buf_addf(b, "%s{%s=\"", name, k1);
	label_value(b, v1);
	buf_addf(b, "\",%s=\"", k2);
	label_value(b, v2);
	/* integers as integers, up to where doubles hold them exactly */
	if (value > -9e15 && value < 9e15 &&
	    value == (double)(long long)value)
		buf_addf(b, "\"} %lld\n", (long long)value);
	else
		buf_addf(b, "\"} %.9g\n", value);
}

/* A per-target metric: fields of every target that has one. */
enum per_target { LAST_SUCCESS, LAST_DURATION, LAST_SIZE, FAILURES, KEPT };

static void
target_samples(struct buf *b, const char *name, const struct target_stat *ts,
    size_t n, enum per_target what)
{
	for (size_t i = 0; i < n; i++) {
		const char *kind = config_kind_name(ts[i].t->kind);
		double v;

		switch (what) {
		case LAST_SUCCESS:
		case LAST_DURATION:
		case LAST_SIZE:
			if (!ts[i].have_good)
				continue;
			v = what == LAST_SUCCESS ? (double)ts[i].ended :
			    what == LAST_DURATION ? ts[i].duration :
			    ts[i].bytes;
			break;
		case FAILURES:
			if (ts[i].failures < 0)
				continue;
			v = ts[i].failures;
			break;
		case KEPT:
		default:
			if (config_records_runs(ts[i].t))
				continue;
			v = (double)ts[i].kept;
			break;
		}
		sample(b, name, "target", ts[i].t->name, "kind", kind, v);
	}
}

static void
remote_samples(struct buf *b, const char *name, const struct target_stat *ts,
    size_t n, int last_ok)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t r = 0; r < ts[i].nremotes; r++) {
			const struct remote_stat *rs = &ts[i].remotes[r];

			if (last_ok && rs->last_ok == 0)
				continue;
			sample(b, name, "target", ts[i].t->name, "remote",
			    rs->name, last_ok ? (double)rs->last_ok :
			    (double)rs->failed);
		}
	}
}

static void
metrics_text(struct buf *b, const struct target_stat *ts, size_t n)
{
	family(b, "backupbot_last_success_timestamp_seconds", "gauge",
	    "When the newest good backup (ok or partial; media: sync run) "
	    "of a target ended, in Unix time.");
	target_samples(b, "backupbot_last_success_timestamp_seconds", ts, n,
	    LAST_SUCCESS);
	family(b, "backupbot_last_duration_seconds", "gauge",
	    "How long the newest good backup of a target took.");
	target_samples(b, "backupbot_last_duration_seconds", ts, n,
	    LAST_DURATION);
	family(b, "backupbot_last_size_bytes", "gauge",
	    "Size of the newest good backup of a target as stored (media: "
	    "bytes copied by the run).");
	target_samples(b, "backupbot_last_size_bytes", ts, n, LAST_SIZE);
	family(b, "backupbot_failures_total", "counter",
	    "Backups of a target that failed, crashed or were interrupted, "
	    "from the job ledger.");
	target_samples(b, "backupbot_failures_total", ts, n, FAILURES);
	family(b, "backupbot_backups_kept", "gauge",
	    "Good backups of a target in the catalog (not for media "
	    "targets, whose destinations hold one copy).");
	target_samples(b, "backupbot_backups_kept", ts, n, KEPT);
	family(b, "backupbot_remote_last_success_timestamp_seconds", "gauge",
	    "When the newest copy to reach a remote (media: destination) "
	    "got there, in Unix time.");
	remote_samples(b, "backupbot_remote_last_success_timestamp_seconds",
	    ts, n, 1);
	family(b, "backupbot_remote_failed_backups", "gauge",
	    "Backups (media: runs) still in the catalog whose copy to a "
	    "remote (media: destination) failed; counted over the catalog, "
	    "so it goes down when retention removes old backups.");
	remote_samples(b, "backupbot_remote_failed_backups", ts, n, 0);
}

int
metrics_write(const struct config *cfg, char **cause)
{
	struct target_stat *ts;
	const cJSON *counts;
	char *why = NULL;
	struct buf b;
	mode_t old;
	int r = 0;

	*cause = NULL;
	if (cfg->metrics_file == NULL)
		return 0;
	if ((counts = ledger_failures(cfg, &why)) == NULL) {
		log_warnx("metrics: %s; backupbot_failures_total left out",
		    why);
		free(why);
	}
	ts = xcalloc(cfg->ntargets + 1, sizeof(*ts));
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct target *t = &cfg->targets[i];
		const struct strlist *names = t->kind == TARGET_MEDIA ?
		    &t->destinations : &t->remotes;

		ts[i].t = t;
		ts[i].nremotes = names->n;
		ts[i].remotes = xcalloc(names->n + 1,
		    sizeof(*ts[i].remotes));
		for (size_t k = 0; k < names->n; k++)
			ts[i].remotes[k].name = names->v[k];
		if (config_records_runs(t))
			stat_runs(cfg, &ts[i]);
		else
			stat_backups(cfg, &ts[i]);
		ts[i].failures = counts == NULL ? -1 :
		    json_num(counts, t->name);
	}
	buf_init(&b, METRICS_MAX);
	buf_add(&b, "", 0);
	metrics_text(&b, ts, cfg->ntargets);
	/* node_exporter runs as another user: 0644 whatever our umask */
	old = umask(022);
	if (b.overflow)
		*cause = xasprintf("metrics for %s larger than %d bytes",
		    cfg->metrics_file, METRICS_MAX);
	else if (file_write_atomic(cfg->metrics_file, b.data, b.len,
	    0644) == -1)
		*cause = xasprintf("cannot write the metrics file %s: %s",
		    cfg->metrics_file, strerror(errno));
	umask(old);
	if (*cause != NULL)
		r = -1;
	buf_release(&b);
	for (size_t i = 0; i < cfg->ntargets; i++)
		free(ts[i].remotes);
	free(ts);
	return r;
}
