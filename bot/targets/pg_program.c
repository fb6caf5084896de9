/*
 * pg_program.c - which pg_dump or pg_restore to run.
 *
 * On Debian, /usr/bin/pg_dump and /usr/bin/pg_restore are links to
 * pg_wrapper, a Perl script of postgresql-common that picks a version
 * and then runs /usr/lib/postgresql/N/bin/PROGRAM.  Starting Perl costs
 * 0.1-0.25 s each time, and a backup runs the program twice (--version,
 * then the dump): on a small database that is a third of the backup.
 *
 * When the operator left the name as it is (no `pg_dump =` path in the
 * section) and PATH leads to that wrapper, we run the newest installed
 * /usr/lib/postgresql/N/bin/PROGRAM ourselves.  That is the version the
 * wrapper itself runs for a server it does not know as a local cluster,
 * and the right one in every case: pg_dump dumps servers of its own and
 * older versions, pg_restore reads archives of its own and older
 * versions.  (The wrapper may pick an older local cluster's version,
 * which then refuses a newer server.)  A path the operator set, or a PATH
 * that leads elsewhere, is run as it is.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg_parts.h"
#include "util.h"

#define PG_LIB_DIR	"/usr/lib/postgresql"
#define PG_WRAPPER	"pg_wrapper"

/* Where PATH leads name to, resolved through links; NULL if nowhere. */
static char *
pg_path_lookup(const char *name)
{
	const char *path = getenv("PATH"), *p, *end;
	char resolved[PATH_MAX];

	if (path == NULL || *path == '\0')
		return NULL;
	for (p = path; ; p = end + 1) {
		char *cand;
		size_t len;

		end = strchr(p, ':');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		cand = xasprintf("%.*s/%s", (int)len, len > 0 ? p : ".", name);
		if (access(cand, X_OK) == 0 &&
		    realpath(cand, resolved) != NULL) {
			free(cand);
			return xstrdup(resolved);
		}
		free(cand);
		if (end == NULL)
			return NULL;
	}
}

/* "15" → 150000, "9.6" → 90600: sortable; -1 for anything else. */
static long
pg_dir_version(const char *name)
{
	char *end;
	long major, minor = 0;

	if (*name < '1' || *name > '9')
		return -1;
	major = strtol(name, &end, 10);
	if (major > 999)
		return -1;
	if (*end == '.') {
		if (end[1] < '0' || end[1] > '9')
			return -1;
		minor = strtol(end + 1, &end, 10);
		if (minor > 99)
			return -1;
	}
	return *end == '\0' ? major * 10000 + minor * 100 : -1;
}

/* The newest PG_LIB_DIR/N/bin/name that can be run, or NULL. */
static char *
pg_newest_installed(const char *name)
{
	DIR *d = opendir(PG_LIB_DIR);
	struct dirent *de;
	char *best = NULL;
	long best_v = -1;

	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		long v = pg_dir_version(de->d_name);
		char *cand;

		if (v <= best_v)
			continue;
		cand = xasprintf("%s/%s/bin/%s", PG_LIB_DIR, de->d_name, name);
		if (access(cand, X_OK) == 0) {
			free(best);
			best = cand;
			best_v = v;
		} else
			free(cand);
	}
	closedir(d);
	return best;
}

const char *
pg_program(const char *configured)
{
	/* Every answer given, kept for the process: callers hold them. */
	static char *given[8];
	const char *base;
	char *found, *run = NULL;
	size_t i;

	if (strchr(configured, '/') != NULL)
		return configured;
	/* Looked up each time (a few access() calls): PATH may change. */
	if ((found = pg_path_lookup(configured)) != NULL) {
		base = strrchr(found, '/');
		if (base != NULL && strcmp(base + 1, PG_WRAPPER) == 0)
			run = pg_newest_installed(configured);
		free(found);
	}
	if (run == NULL)
		return configured;
	for (i = 0; i < nitems(given) && given[i] != NULL; i++)
		if (strcmp(given[i], run) == 0)
			break;
	if (i == nitems(given)) {
		free(run);
		return configured;	/* never: two programs, one version */
	}
	if (given[i] == NULL)
		given[i] = run;
	else
		free(run);
	return given[i];
}
