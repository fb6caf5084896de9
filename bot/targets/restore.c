/*
 * restore.c - the checks and names of a restore, decided before anything
 * runs (restore.h).  Chat arguments reach this file as plain strings;
 * nothing leaves it for an argv or a path unless it passed a strict
 * allowlist here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "config.h"
#include "pgbackrest.h"
#include "restore.h"
#include "util.h"

int
restore_valid_dbname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* Absolute path of safe bytes without "." or ".." components. */
static int
valid_local_path(const char *s)
{
	const char *p;

	if (s[0] != '/' || strlen(s) > 255)
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._/-", *p) != NULL))
			return 0;
	for (p = s; *p != '\0'; ) {
		size_t len;

		while (*p == '/')
			p++;
		len = strcspn(p, "/");
		if ((len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += len;
	}
	return 1;
}

int
restore_valid_path(const char *s, int remote_ok)
{
	const char *colon = strchr(s, ':');
	char *name;
	int ok;

	if (colon == NULL || !remote_ok)
		return valid_local_path(s);
	if (colon == s || colon - s > CONFIG_NAME_MAX)
		return 0;
	name = xstrndup(s, (size_t)(colon - s));
	ok = config_valid_name(name);
	free(name);
	if (!ok)
		return 0;
	/* remote:path, where path is relative to the remote's root */
	if (colon[1] == '\0')
		return 1;
	{
		char *abs = xasprintf("/%s", colon[1] == '/' ? colon + 2 :
		    colon + 1);

		ok = strlen(colon + 1) <= 255 && valid_local_path(abs);
		free(abs);
	}
	return ok;
}

char *
restore_default_into(const struct target *t, time_t now)
{
	char stamp[32], *name, *p;
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M", &tm);
	name = xasprintf("%s_restore_%s", t->name, stamp);
	for (p = name; *p != '\0'; p++)
		if (*p == '-')
			*p = '_';
	return name;
}

/* Chat reaches no path here: --into is a name under restore_dir. */
static int
restore_check_pgbackrest(const struct target *t, const struct restore_opts *o,
    char **cause)
{
	if (t->restore_dir == NULL) {
		*cause = xstrdup("restore_dir is not set");
		return -1;
	}
	if (o->into != NULL && (o->replace || !config_valid_name(o->into))) {
		*cause = xstrdup(o->replace ? "--into and --replace exclude "
		    "each other (--replace restores into pg_data)" : "--into "
		    "needs a name (a-z, 0-9, _ and -, at most 32): the new "
		    "data directory is created under restore_dir");
		return -1;
	}
	if (o->replace && t->pg_conninfo == NULL) {
		*cause = xstrdup("--replace needs pg_conninfo: it is how the "
		    "restored cluster is checked once it is started again");
		return -1;
	}
	if (o->time != NULL && !pgbackrest_valid_time(o->time)) {
		*cause = xstrdup("--time needs a time with its UTC offset, "
		    "like '2026-12-06 14:32:00+00'");
		return -1;
	}
	return 0;
}

/* 1 if path is t's source or a destination, or a path under one. */
static int
media_known_place(const struct target *t, const char *path)
{
	size_t n;

	for (size_t i = 0; i <= t->destinations.n; i++) {
		const char *d = i < t->destinations.n ? t->destinations.v[i] :
		    t->source;

		if (d == NULL)
			continue;
		n = strlen(d);
		while (n > 0 && d[n - 1] == '/')
			n--;
		if (!strncmp(path, d, n) && (path[n] == '\0' ||
		    path[n] == '/' || (n > 0 && d[n - 1] == ':')))
			return 1;
	}
	return 0;
}

int
restore_check(const struct target *t, const struct restore_opts *o,
    char **cause)
{
	const char *kind = config_kind_name(t->kind);

	*cause = NULL;
	if (o->flush && t->kind != TARGET_REDIS) {
		*cause = xasprintf("--flush is for Redis targets; %s is a %s "
		    "target", t->name, kind);
		return -1;
	}
	if (o->from != NULL && t->kind != TARGET_MEDIA) {
		*cause = xasprintf("--from is for media targets; %s is a %s "
		    "target", t->name, kind);
		return -1;
	}
	if (o->time != NULL && t->kind != TARGET_PGBACKREST) {
		*cause = xasprintf("--time is for pgbackrest targets; %s is a "
		    "%s target", t->name, kind);
		return -1;
	}
	if (o->replace && t->kind == TARGET_REDIS) {
		*cause = xstrdup("--replace does not apply to Redis (keys are "
		    "always replaced); use --flush to empty the database "
		    "first");
		return -1;
	}
	if (o->replace && !t->allow_replace) {
		*cause = xasprintf("--replace is not allowed for %s: set "
		    "allow_replace = yes in its [%s %s] section first",
		    t->name, kind, t->name);
		return -1;
	}
	switch (t->kind) {
	case TARGET_POSTGRES:
		if (o->into != NULL && !restore_valid_dbname(o->into)) {
			*cause = xstrdup("--into needs a database name of "
			    "lower-case letters, digits and _ (at most 63, "
			    "not starting with a digit)");
			return -1;
		}
		break;
	case TARGET_REDIS:
		if (o->into != NULL) {
			*cause = xstrdup("Redis backups are restored into the "
			    "configured server and database; --into does not "
			    "apply");
			return -1;
		}
		break;
	case TARGET_FILES:
		if (o->into != NULL && !restore_valid_path(o->into, 0)) {
			*cause = xstrdup("--into needs an absolute directory "
			    "path of letters, digits and ._/- without . or .. "
			    "components");
			return -1;
		}
		/* "/" is everything in place: that is --replace's job, under
		 * allow_replace, with its own checks. */
		if (o->into != NULL && o->into[strspn(o->into, "/")] == '\0') {
			*cause = xstrdup("--into / is refused: to put the files "
			    "back where they were, use --replace (allowed by "
			    "allow_replace = yes); --into is for a directory to "
			    "look at first");
			return -1;
		}
		if (o->into == NULL && !o->replace) {
			*cause = xstrdup("say where the files go: --into DIR "
			    "(a directory to look at first), or --replace to "
			    "put them back where they were");
			return -1;
		}
		break;
	case TARGET_MEDIA:
		if (o->into != NULL && !restore_valid_path(o->into, 1)) {
			*cause = xstrdup("--into needs an absolute path or an "
			    "rclone remote path (name:path) of letters, digits "
			    "and ._/- without . or .. components");
			return -1;
		}
		/* A remote path: only one this target already writes to or
		 * reads from, never any remote of rclone.conf. */
		if (o->into != NULL && strchr(o->into, ':') != NULL &&
		    !media_known_place(t, o->into)) {
			*cause = xasprintf("--into %s: a remote path must be "
			    "%s's source or one of its destinations (or a path "
			    "under one)", o->into, t->name);
			return -1;
		}
		if (o->from != NULL) {
			size_t i;

			/* the whole destination, or its remote's name */
			for (i = 0; i < t->destinations.n; i++) {
				const char *d = t->destinations.v[i];
				size_t n = strlen(o->from);

				if (!strcmp(d, o->from) || (n > 0 &&
				    !strncmp(d, o->from, n) && d[n] == ':'))
					break;
			}
			if (i == t->destinations.n) {
				*cause = xasprintf("--from must be one of %s's "
				    "destinations (or its remote's name)",
				    t->name);
				return -1;
			}
		}
		break;
	case TARGET_SCRIPT:
		if (o->into != NULL || o->replace) {
			*cause = xasprintf("%s's backup goes to its "
			    "restore_command on stdin; --into and --replace "
			    "do not apply", t->name);
			return -1;
		}
		if (t->restore_command == NULL) {
			*cause = xasprintf("%s has no restore_command: set one "
			    "in its [script %s] section (with output = "
			    "backup) to restore it", t->name, t->name);
			return -1;
		}
		break;
	case TARGET_PGBACKREST:
		return restore_check_pgbackrest(t, o, cause);
	}
	return 0;
}

/* strv helpers: a NULL-terminated list that grows. */
static void
step(char ***v, size_t *n, char *s)
{
	*v = xrealloc(*v, (*n + 2) * sizeof(**v));
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

static char **
restore_steps_pgbackrest(const struct target *t, const struct restore_opts *o,
    const char *id, char **v, size_t n)
{
	const char *from = strcmp(id, "latest") ? id : "the newest set";

	if (o->replace) {
		step(&v, &n, xasprintf("stop the cluster in %s (pg_ctl stop "
		    "-m fast)", t->pg_data));
		step(&v, &n, xasprintf("pgbackrest restore --delta into %s "
		    "from %s%s%s: files that differ are replaced", t->pg_data,
		    o->time ? "the set pgBackRest picks for " : from,
		    o->time ? o->time : "", o->time ? "" : " and the WAL "
		    "archive"));
		step(&v, &n, xstrdup("start it; recovery replays WAL to the "
		    "target and promotes"));
	} else {
		if (o->into != NULL)
			step(&v, &n, xasprintf("pgbackrest restore into a new "
			    "data directory %s/%s (archiving off, tablespaces "
			    "inside it)", t->restore_dir, o->into));
		else
			step(&v, &n, xasprintf("pgbackrest restore into a new "
			    "data directory %s/%s-restore-YYYYmmdd-HHMMSS "
			    "(archiving off, tablespaces inside it)",
			    t->restore_dir, t->name));
		step(&v, &n, xasprintf("recover %s, then promote",
		    o->time ? o->time : strcmp(id, "latest") ? "to the end of "
		    "that set" : "to the end of the WAL archive"));
		step(&v, &n, xstrdup("start it as a scratch cluster on a free "
		    "port, on its own socket only; the live cluster is not "
		    "touched"));
	}
	step(&v, &n, xstrdup("report the time reached and the row count of "
	    "every table"));
	if (!o->replace)
		step(&v, &n, xstrdup("leave it running, with the commands to "
		    "drop it or put it in place"));
	return v;
}

char **
restore_steps(const struct target *t, const struct restore_opts *o,
    const char *id, const char *database, const char *mode)
{
	char **v = NULL;
	size_t n = 0;

	if (t->kind == TARGET_PGBACKREST)
		return restore_steps_pgbackrest(t, o, id, v, n);
	if (t->kind != TARGET_MEDIA)
		step(&v, &n, xasprintf("check every byte of %s (hash, "
		    "decryption, decompression), fetching it from a remote "
		    "if it is not in backup_dir; stop if anything is wrong",
		    id));
	switch (t->kind) {
	case TARGET_POSTGRES:
		step(&v, &n, xasprintf("create the new database %s from "
		    "template0", o->into));
		step(&v, &n, xasprintf("pg_restore -j %d into it; any error "
		    "fails the restore and drops %s again", t->restore_jobs,
		    o->into));
		step(&v, &n, xstrdup("compare the row count of every table "
		    "with the backup's manifest"));
		if (o->replace)
			step(&v, &n, xasprintf("only if all is equal: "
			    "disconnect the sessions of %s, rename it to "
			    "%s_before_restore_TIMESTAMP (kept, never dropped) "
			    "and rename %s to %s", database, database,
			    o->into, database));
		break;
	case TARGET_REDIS:
		if (mode != NULL && !strcmp(mode, "rdb"))
			step(&v, &n, xstrdup("load the RDB file into a "
			    "temporary redis-server"));
		if (o->flush)
			step(&v, &n, xstrdup("empty every database the backup "
			    "restores into first (--flush)"));
		step(&v, &n, xstrdup("copy every key into the configured "
		    "server with RESTORE … REPLACE, into the database numbers "
		    "it had, keeping TTLs (keys expired since the backup are "
		    "skipped); keys not in the backup stay unless --flush"));
		step(&v, &n, xstrdup("report key counts before and after"));
		break;
	case TARGET_FILES:
		step(&v, &n, o->into != NULL ? xasprintf("extract into %s",
		    o->into) : xstrdup("extract back to the original paths"));
		step(&v, &n, xstrdup(o->replace ? "existing files are "
		    "overwritten (--replace)" : "stop before writing anything "
		    "if a file already exists there"));
		break;
	case TARGET_PGBACKREST:
		break;
	case TARGET_MEDIA:
		if (o->from != NULL)
			step(&v, &n, xasprintf("rclone copy from %s to %s",
			    o->from, o->into ? o->into : t->source));
		else
			step(&v, &n, xasprintf("rclone copy to %s from the "
			    "first destination the newest good sync reached",
			    o->into ? o->into : t->source));
		step(&v, &n, xstrdup(o->replace ? "files that differ are "
		    "overwritten (--replace); nothing is deleted" : "only "
		    "missing files are copied; nothing is overwritten or "
		    "deleted"));
		break;
	case TARGET_SCRIPT:
		step(&v, &n, xasprintf("run %s with the backup on its stdin; "
		    "any exit status but 0 fails the restore",
		    t->restore_command != NULL ? t->restore_command[0] : "?"));
		break;
	}
	if (t->pre_restore_hook != NULL)
		step(&v, &n, xasprintf("before anything else: run "
		    "pre_restore_hook %s; if it fails, nothing is restored",
		    t->pre_restore_hook[0]));
	if (t->post_restore_hook != NULL)
		step(&v, &n, xasprintf("at the end, whatever the outcome: run "
		    "post_restore_hook %s", t->post_restore_hook[0]));
	return v;
}

int
restore_parse_args(int argc, char **argv, struct restore_opts *ro)
{
	memset(ro, 0, sizeof(*ro));
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--replace"))
			ro->replace = 1;
		else if (!strcmp(argv[i], "--flush"))
			ro->flush = 1;
		else if (!strcmp(argv[i], "--into") && i + 1 < argc &&
		    ro->into == NULL)
			ro->into = argv[++i];
		else if (!strcmp(argv[i], "--from") && i + 1 < argc &&
		    ro->from == NULL)
			ro->from = argv[++i];
		else if (!strcmp(argv[i], "--time") && i + 1 < argc &&
		    ro->time == NULL)
			ro->time = argv[++i];
		else
			return -1;
	}
	return 0;
}
