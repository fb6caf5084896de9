/*
 * pgbackrest.h - [pgbackrest NAME] targets: physical backups, the WAL
 * archive and point-in-time restores of a PostgreSQL cluster, made by
 * pgBackRest and driven by backupbot.  backupbot adds chat, approvals,
 * drills, alerts and one status; it never copies a data file itself.
 *
 * The backend (backend_pgbackrest) runs in job children only:
 *   sync     `pgbackrest backup --repo=N --type=T` once per configured
 *            repository (each one a "geography"), progress from its
 *            console log, then `pgbackrest info --output=json`; the run
 *            record (ID.run.json) keeps per repo: label, type, size,
 *            delta, duration, and the info summary that !list shows;
 *   probe    pg_stat_archiver over pg_conninfo (last archived WAL, its
 *            age, failures) and `pgbackrest check`;
 *   restore  `pgbackrest restore` into restore_dir/NAME and a scratch
 *            cluster on a free port (left running), or with --replace
 *            in place (--delta) after stopping the live cluster; the
 *            drill restores into a scratch cluster, counts the rows of
 *            every table, stops and removes it.
 * Every program runs from an argv, as the owner of pg_data (through
 * runuser when backupbot runs as root).  No secret is ever in argv:
 * pgBackRest reads its own from pgbackrest.conf or its environment.
 *
 * The pure helpers below (pgbackrest_parse.c) are what config validation,
 * the chat handlers, the unit tests and the fuzzer use; they never run
 * anything.
 */
#ifndef BB_PGBACKREST_H
#define BB_PGBACKREST_H

#include <stddef.h>

struct cJSON;
struct target;

/* The most repositories pgBackRest has (repo1 ... repo256). */
#define PGBACKREST_REPO_MAX	256

/*
 * Everything about a [pgbackrest] target that can be checked without
 * running anything: stanza, absolute pg_data and restore_dir that do not
 * contain each other, repo numbers, keep.  0, or -1 with *cause.
 */
int pgbackrest_target_check(const struct target *t, char **cause);

/*
 * keep = "full=2, diff=7" (either may be missing): pgBackRest's own
 * retention, passed as --repoN-retention-full/-diff.  0 means unset.
 * 0, or -1 with *cause.
 */
int pgbackrest_keep_parse(const char *keep, int *full, int *diff,
    char **cause);

/*
 * 1 if s is a restore time we pass on: "YYYY-MM-DD HH:MM[:SS]" (or with
 * 'T') followed by a UTC offset "+HH", "+HH:MM", "-HH[:MM]" or "Z", every
 * field in range.  Nothing else reaches pgBackRest's argv.
 */
int pgbackrest_valid_time(const char *s);

/*
 * 1 if s is a backup set label: 20261207-002654F, or a diff/incr
 * 20261207-002654F_20261207-010000D (or I).
 */
int pgbackrest_valid_set(const char *s);

/* 1 if s is "full", "diff" or "incr". */
int pgbackrest_valid_type(const char *s);

/*
 * The percentage in one line of pgBackRest's detail console log
 * ("... backup file /x (768KB, 3.42%) checksum ..."): 0 with *pct, or
 * -1 when the line has none.
 */
int pgbackrest_progress_line(const char *line, double *pct);

/*
 * The label in "... new backup label = 20261207-002654F": a copy, or
 * NULL.
 */
char *pgbackrest_label_line(const char *line);

/*
 * Read `pgbackrest info --output=json` (untrusted: anything may be
 * missing, of the wrong type, or huge) for stanza.  Returns an object
 *   {"status": text, "sets": [{"label", "type", "repo", "start", "stop",
 *     "size", "delta", "repo_size", "wal_start", "wal_stop", "prior"}],
 *    "wal": [{"repo", "min", "max"}], "earliest": t, "latest": t}
 * where earliest is the stop time of the oldest set (the first point a
 * restore can reach) and latest the stop time of the newest set (WAL
 * archived after it reaches further).  At most 500 sets are kept.  NULL
 * with *cause when the text is not that JSON or has no such stanza.
 */
struct cJSON *pgbackrest_info_summary(const char *text, size_t len,
    const char *stanza, char **cause);

/*
 * The newest set of the summary whose stop time is at or before when
 * (a Unix time; 0: the newest set), or NULL.  A pointer into summary.
 */
const struct cJSON *pgbackrest_set_before(const struct cJSON *summary,
    double when);

/* The set labelled label in the summary, or NULL. */
const struct cJSON *pgbackrest_set_find(const struct cJSON *summary,
    const char *label);

/*
 * Unix time of a restore time that passed pgbackrest_valid_time, or -1.
 */
double pgbackrest_time_value(const char *s);

/*
 * What is wrong with the WAL archive, from a probe's facts of t (its
 * "check" and "archiver"), or NULL when nothing is: the check failed,
 * archiving fails since the last success, or the last WAL was archived
 * longer ago than stale_after.  Caller frees.
 */
char *pgbackrest_archive_problem(const struct target *t,
    const struct cJSON *facts);

/*
 * In a job child: the set a restore of id ("latest" or a set label)
 * starts from, from `pgbackrest info`, for the plan.  Adds "id", "set",
 * "started", "bytes", "location" (repoN), "earliest", "latest" to
 * result.  0, or -1 with *cause.
 */
struct job_ctx;
int pgbackrest_job_check(struct job_ctx *ctx, const char *id,
    struct cJSON *result, char **cause);

#endif
