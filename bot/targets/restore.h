/*
 * restore.h - what a restore will do, decided before anything runs: the
 * checks of its arguments (chat or CLI), the default names, and the plan
 * shown to the admins who approve it.  Pure functions: the daemon calls
 * them to answer !restore, the job calls them again before it starts.
 */
#ifndef BB_RESTORE_H
#define BB_RESTORE_H

#include <time.h>

struct backend;
struct restore_opts;
struct target;
struct cJSON;

/*
 * Check opts against what the target's kind can do and its config
 * (--replace needs allow_replace, --flush is for redis, --into must be a
 * safe database name or path...).  0, or -1 with *cause (caller frees),
 * worded for the chat.
 */
int restore_check(const struct target *t, const struct restore_opts *opts,
    char **cause);

/*
 * The default database for a postgres restore started at time now:
 * TARGET_restore_YYYYmmddHHMM (UTC, '-' in the target name becomes '_').
 * Caller frees.
 */
char *restore_default_into(const struct target *t, time_t now);

/* 1 if s is a database name a restore may create: [a-z_][a-z0-9_]{0,62}. */
int restore_valid_dbname(const char *s);

/*
 * 1 if s is a path a restore may write to: absolute, at most 255 bytes
 * of [A-Za-z0-9._/-], no "." or ".." component; with remote_ok, also an
 * rclone remote path NAME:PATH with the same rules for PATH.
 */
int restore_valid_path(const char *s, int remote_ok);

/*
 * What the restore will do, step by step, in words (for the plan and the
 * CLI's question).  o->into is already the default name for postgres;
 * database is the live database (postgres), mode the backup's mode
 * (redis: "rdb" or "logical"); either may be NULL.  A NULL-terminated
 * list; free with strv_free.
 */
char **restore_steps(const struct target *t, const struct restore_opts *o,
    const char *id, const char *database, const char *mode);

/*
 * Restore options from argv (--into X, --from D, --replace, --flush);
 * ro points into argv.  0, or -1 on an unknown or repeated option.
 * Values are checked later, by restore_check.
 */
int restore_parse_args(int argc, char **argv, struct restore_opts *ro);

#endif
