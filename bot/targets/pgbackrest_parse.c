/*
 * pgbackrest_parse.c - the pure half of [pgbackrest NAME] targets
 * (pgbackrest.h): the config section's checks, keep, restore times and
 * set labels (all that chat may pass on), pgBackRest's console lines,
 * `pgbackrest info --output=json` read defensively, and the WAL archive's
 * verdict.  Nothing here runs a program: the daemon, config validation,
 * the tests and the fuzzer use it; pgbackrest.c runs pgBackRest.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "json.h"
#include "pgbackrest.h"
#include "util.h"

#define PGBR_INFO_MAX	(16u << 20)
#define PGBR_SETS_MAX	500

static int
pgbr_number(const char *s, long lo, long hi, long *v)
{
	long long ll;

	if (str_to_ll(s, lo, hi, &ll) == -1)
		return -1;
	*v = (long)ll;
	return 0;
}

int
pgbackrest_keep_parse(const char *keep, int *full, int *diff, char **cause)
{
	char *copy = xstrdup(keep), *s = copy, *item;
	int rc = 0;

	*full = *diff = 0;
	while (rc == 0 && (item = strsep(&s, ",")) != NULL) {
		char *eq, *name, *val;
		long v;
		int *slot;

		item = str_trim(item);
		if (*item == '\0')
			continue;
		if ((eq = strchr(item, '=')) == NULL) {
			*cause = xasprintf("keep: '%s' is not full=N or diff=N",
			    item);
			rc = -1;
			break;
		}
		*eq = '\0';
		name = str_trim(item);
		val = str_trim(eq + 1);
		slot = !strcmp(name, "full") ? full : !strcmp(name, "diff") ?
		    diff : NULL;
		if (slot == NULL || *slot != 0 ||
		    pgbr_number(val, 1, 9999999, &v) == -1) {
			*cause = xasprintf("keep: '%s=%s' is not full=N or "
			    "diff=N (each once, N from 1)", name, val);
			rc = -1;
			break;
		}
		*slot = (int)v;
	}
	if (rc == 0 && *full == 0 && *diff == 0) {
		*cause = xstrdup("keep: say full=N and/or diff=N");
		rc = -1;
	}
	free(copy);
	return rc;
}

static int
pgbr_valid_stanza(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
			return 0;
	return 1;
}

/* Absolute, [A-Za-z0-9._/-], no "." or ".." component, no trailing '/'. */
static int
pgbr_valid_dir(const char *s)
{
	const char *p;
	size_t n = strlen(s);

	if (s[0] != '/' || n < 2 || n > 200 || s[n - 1] == '/')
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("._/-", *p) == NULL)
			return 0;
	return strstr(s, "/./") == NULL && strstr(s, "/../") == NULL &&
	    strstr(s, "//") == NULL && strcmp(s + n - 2, "/.") != 0 &&
	    (n < 3 || strcmp(s + n - 3, "/..") != 0);
}

/* 1 if dir is parent or the same as path, as paths. */
static int
pgbr_within(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	return !strncmp(dir, path, n) && (path[n] == '\0' || path[n] == '/');
}

int
pgbackrest_target_check(const struct target *t, char **cause)
{
	int full, diff;
	long v;

	if (t->stanza == NULL || !pgbr_valid_stanza(t->stanza)) {
		*cause = xstrdup(t->stanza == NULL ? "stanza is required" :
		    "stanza: letters, digits, '_', '.' and '-' only");
		return -1;
	}
	if (t->pg_data == NULL || !pgbr_valid_dir(t->pg_data)) {
		*cause = xstrdup("pg_data is required: the absolute path of "
		    "the cluster's data directory ([A-Za-z0-9._/-])");
		return -1;
	}
	if (t->restore_dir == NULL || !pgbr_valid_dir(t->restore_dir)) {
		*cause = xstrdup("restore_dir is required: an absolute "
		    "directory ([A-Za-z0-9._/-]) under which restores and "
		    "drills create their data directories");
		return -1;
	}
	if (pgbr_within(t->pg_data, t->restore_dir) ||
	    pgbr_within(t->restore_dir, t->pg_data)) {
		*cause = xstrdup("restore_dir and pg_data must not contain "
		    "each other");
		return -1;
	}
	if (t->pgbackrest_config != NULL && t->pgbackrest_config[0] != '/') {
		*cause = xstrdup("config must be an absolute path");
		return -1;
	}
	if (t->pg_bindir != NULL && !pgbr_valid_dir(t->pg_bindir)) {
		*cause = xstrdup("pg_bindir must be an absolute directory");
		return -1;
	}
	for (size_t i = 0; i < t->repos.n; i++)
		if (pgbr_number(t->repos.v[i], 1, PGBACKREST_REPO_MAX,
		    &v) == -1) {
			*cause = xasprintf("repo: '%s' is not a repository "
			    "number (1 for repo1 ... %d)", t->repos.v[i],
			    PGBACKREST_REPO_MAX);
			return -1;
		}
	if (t->pgbackrest_keep != NULL &&
	    pgbackrest_keep_parse(t->pgbackrest_keep, &full, &diff,
	    cause) == -1)
		return -1;
	return 0;
}

/* n digits at s, as a number in [lo, hi]; -1 if not. */
static long
pgbr_digits(const char *s, int n, long lo, long hi)
{
	long v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v < lo || v > hi ? -1 : v;
}

/* The fields of a restore time; 0, or -1 if it is not one. */
static int
pgbr_time_parse(const char *s, struct tm *tm, long *offset)
{
	long f[6] = { 0, 0, 0, 0, 0, 0 }, oh, om = 0;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	const char *p;

	if (strlen(s) > 32)
		return -1;
	if ((f[0] = pgbr_digits(s, 4, 1970, 9999)) == -1 || s[4] != '-' ||
	    (f[1] = pgbr_digits(s + 5, 2, 1, 12)) == -1 || s[7] != '-' ||
	    (f[2] = pgbr_digits(s + 8, 2, 1, 31)) == -1 ||
	    (s[10] != ' ' && s[10] != 'T') ||
	    (f[3] = pgbr_digits(s + 11, 2, 0, 23)) == -1 || s[13] != ':' ||
	    (f[4] = pgbr_digits(s + 14, 2, 0, 59)) == -1)
		return -1;
	p = s + 16;
	if (*p == ':') {
		if ((f[5] = pgbr_digits(p + 1, 2, 0, 59)) == -1)
			return -1;
		p += 3;
	}
	if (f[2] > mdays[f[1] - 1])
		return -1;
	if (!strcmp(p, "Z")) {
		*offset = 0;
	} else {
		if ((*p != '+' && *p != '-') ||
		    (oh = pgbr_digits(p + 1, 2, 0, 14)) == -1)
			return -1;
		if (p[3] == ':') {
			if ((om = pgbr_digits(p + 4, 2, 0, 59)) == -1 ||
			    p[6] != '\0')
				return -1;
		} else if (p[3] != '\0')
			return -1;
		*offset = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
	}
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = (int)f[0] - 1900;
	tm->tm_mon = (int)f[1] - 1;
	tm->tm_mday = (int)f[2];
	tm->tm_hour = (int)f[3];
	tm->tm_min = (int)f[4];
	tm->tm_sec = (int)f[5];
	return 0;
}

int
pgbackrest_valid_time(const char *s)
{
	struct tm tm;
	long off;

	return pgbr_time_parse(s, &tm, &off) == 0;
}

double
pgbackrest_time_value(const char *s)
{
	struct tm tm;
	long off;

	if (pgbr_time_parse(s, &tm, &off) == -1)
		return -1;
	return (double)timegm(&tm) - (double)off;
}

/* "20261207-002654" */
static int
pgbr_stamp(const char *s)
{
	return pgbr_digits(s, 4, 1970, 9999) != -1 &&
	    pgbr_digits(s + 4, 2, 1, 12) != -1 &&
	    pgbr_digits(s + 6, 2, 1, 31) != -1 && s[8] == '-' &&
	    pgbr_digits(s + 9, 2, 0, 23) != -1 &&
	    pgbr_digits(s + 11, 2, 0, 59) != -1 &&
	    pgbr_digits(s + 13, 2, 0, 59) != -1;
}

int
pgbackrest_valid_set(const char *s)
{
	size_t n = strlen(s);

	if (n == 16)
		return pgbr_stamp(s) && s[15] == 'F';
	if (n == 33)
		return pgbr_stamp(s) && s[15] == 'F' && s[16] == '_' &&
		    pgbr_stamp(s + 17) && (s[32] == 'D' || s[32] == 'I');
	return 0;
}

int
pgbackrest_valid_type(const char *s)
{
	return !strcmp(s, "full") || !strcmp(s, "diff") || !strcmp(s, "incr");
}

int
pgbackrest_progress_line(const char *line, double *pct)
{
	const char *p = strstr(line, "backup file "), *end, *q;

	if (p == NULL || (end = strstr(p, "%)")) == NULL)
		return -1;
	for (q = end; q > p && (isdigit((unsigned char)q[-1]) ||
	    q[-1] == '.'); q--)
		;
	if (q == end || q[-1] != ' ')
		return -1;
	*pct = strtod(q, NULL);
	if (*pct < 0 || *pct > 100)
		return -1;
	return 0;
}

char *
pgbackrest_label_line(const char *line)
{
	const char *p = strstr(line, "new backup label = ");
	char buf[40];
	size_t n;

	if (p == NULL)
		return NULL;
	p += strlen("new backup label = ");
	n = strspn(p, "0123456789-_FDI");
	if (n >= sizeof(buf))
		return NULL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return pgbackrest_valid_set(buf) ? xstrdup(buf) : NULL;
}

/* A string of at most max bytes of printable ASCII from j, or NULL. */
static const char *
pgbr_str(const cJSON *j, const char *key, size_t max)
{
	const char *s = json_str(j, key);

	if (s == NULL || strlen(s) > max)
		return NULL;
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return NULL;
	return s;
}

/*
 * A count or time from pgBackRest's JSON: a finite number within +-2^53
 * (json_num) and not negative, else 0.  A stop time of 1e77 must not pass
 * into the window a restore is checked against.
 */
static double
pgbr_num(const cJSON *j, const char *key)
{
	double v = json_num(j, key);

	return v >= 0 ? v : 0;
}

static const cJSON *
pgbr_obj(const cJSON *j, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsObject(it) ? it : NULL;
}

cJSON *
pgbackrest_info_summary(const char *text, size_t len, const char *stanza,
    char **cause)
{
	cJSON *root, *out, *sets, *wal;
	const cJSON *st = NULL, *it;
	double earliest = 0, latest = 0;
	int n = 0;

	if (len > PGBR_INFO_MAX ||
	    (root = cJSON_ParseWithLength(text, len)) == NULL) {
		*cause = xstrdup("pgbackrest info: not JSON");
		return NULL;
	}
	if (!cJSON_IsArray(root)) {
		*cause = xstrdup("pgbackrest info: not a list of stanzas");
		cJSON_Delete(root);
		return NULL;
	}
	cJSON_ArrayForEach(it, root) {
		const char *name = pgbr_str(it, "name", 64);

		if (cJSON_IsObject(it) && name != NULL && !strcmp(name, stanza))
			st = it;
	}
	if (st == NULL) {
		*cause = xasprintf("pgbackrest info: no stanza %s", stanza);
		cJSON_Delete(root);
		return NULL;
	}
	out = cJSON_CreateObject();
	{
		const char *msg = pgbr_str(pgbr_obj(st, "status"), "message",
		    200);

		cJSON_AddStringToObject(out, "status", msg ? msg : "unknown");
	}
	sets = cJSON_AddArrayToObject(out, "sets");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(st, "backup")) {
		const cJSON *ts = pgbr_obj(it, "timestamp");
		const cJSON *info = pgbr_obj(it, "info");
		const cJSON *arch = pgbr_obj(it, "archive");
		const char *label = pgbr_str(it, "label", 40);
		const char *type = pgbr_str(it, "type", 8);
		const char *prior = pgbr_str(it, "prior", 40);
		cJSON *s;
		double stop;

		if (!cJSON_IsObject(it) || label == NULL ||
		    !pgbackrest_valid_set(label) || type == NULL ||
		    !pgbackrest_valid_type(type) || ts == NULL)
			continue;
		if (cJSON_IsTrue(cJSON_GetObjectItem(it, "error")))
			continue;	/* a set with a page error: not offered */
		if (n++ >= PGBR_SETS_MAX)
			break;
		s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "label", label);
		cJSON_AddStringToObject(s, "type", type);
		cJSON_AddNumberToObject(s, "repo", pgbr_num(pgbr_obj(it,
		    "database"), "repo-key"));
		cJSON_AddNumberToObject(s, "start", pgbr_num(ts, "start"));
		stop = pgbr_num(ts, "stop");
		cJSON_AddNumberToObject(s, "stop", stop);
		cJSON_AddNumberToObject(s, "size", pgbr_num(info, "size"));
		cJSON_AddNumberToObject(s, "delta", pgbr_num(info, "delta"));
		cJSON_AddNumberToObject(s, "repo_size", pgbr_num(pgbr_obj(info,
		    "repository"), "delta"));
		if (pgbr_str(arch, "start", 24) != NULL)
			cJSON_AddStringToObject(s, "wal_start",
			    pgbr_str(arch, "start", 24));
		if (pgbr_str(arch, "stop", 24) != NULL)
			cJSON_AddStringToObject(s, "wal_stop",
			    pgbr_str(arch, "stop", 24));
		if (prior != NULL && pgbackrest_valid_set(prior))
			cJSON_AddStringToObject(s, "prior", prior);
		cJSON_AddItemToArray(sets, s);
		if (stop > 0 && (earliest == 0 || stop < earliest))
			earliest = stop;
		if (stop > latest)
			latest = stop;
	}
	wal = cJSON_AddArrayToObject(out, "wal");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(st,
	    "archive")) {
		const char *min = pgbr_str(it, "min", 24);
		const char *max = pgbr_str(it, "max", 24);
		cJSON *w;

		if (!cJSON_IsObject(it) || min == NULL || max == NULL ||
		    cJSON_GetArraySize(wal) >= 64)
			continue;
		w = cJSON_CreateObject();
		cJSON_AddNumberToObject(w, "repo", pgbr_num(pgbr_obj(it,
		    "database"), "repo-key"));
		cJSON_AddStringToObject(w, "min", min);
		cJSON_AddStringToObject(w, "max", max);
		cJSON_AddItemToArray(wal, w);
	}
	cJSON_AddNumberToObject(out, "earliest", earliest);
	cJSON_AddNumberToObject(out, "latest", latest);
	cJSON_Delete(root);
	return out;
}

const cJSON *
pgbackrest_set_before(const cJSON *summary, double when)
{
	const cJSON *it, *best = NULL;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(summary,
	    "sets")) {
		double stop = json_num(it, "stop");

		if (when > 0 && stop > when)
			continue;
		if (best == NULL || stop > json_num(best, "stop"))
			best = it;
	}
	return best;
}

const cJSON *
pgbackrest_set_find(const cJSON *summary, const char *label)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(summary,
	    "sets"))
		if (!strcmp(json_text(it, "label"), label))
			return it;
	return NULL;
}

char *
pgbackrest_archive_problem(const struct target *t, const cJSON *facts)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(facts, "archiver");
	const char *check = json_str(facts, "check");
	double archived = json_num(a, "last_archived_age");
	int never = json_str(a, "last_archived_wal") == NULL;

	if (check != NULL && strcmp(check, "ok") != 0)
		return xasprintf("WAL archive: %s", check);
	if (a == NULL)
		return NULL;
	if (*json_text(a, "error"))
		return xasprintf("WAL archive: pg_stat_archiver: %s",
		    json_text(a, "error"));
	if (json_num(a, "failed_count") > 0 &&
	    json_str(a, "last_failed_wal") != NULL &&
	    (never || json_num(a, "last_failed_age") < archived))
		return xasprintf("WAL archive: archive_command fails (WAL %s, "
		    "%.0f s ago; %.0f failures); the last WAL archived %s",
		    json_text(a, "last_failed_wal"),
		    json_num(a, "last_failed_age"), json_num(a,
		    "failed_count"), never ? "never" : json_text(a,
		    "last_archived_wal"));
	if (t->stale_after > 0 && !never && archived > (double)t->stale_after)
		return xasprintf("WAL archive: the last WAL (%s) was archived "
		    "%.0f s ago (stale after %ld s)", json_text(a,
		    "last_archived_wal"), archived, t->stale_after);
	return NULL;
}
