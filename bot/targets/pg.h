/*
 * pg.h - the PostgreSQL backend (backend_postgres, see backend.h) and the
 * small pure helpers it is made of, exported for the unit tests.
 */
#ifndef BB_PG_H
#define BB_PG_H

#include <stddef.h>
#include <time.h>

struct cJSON;
struct target;

/*
 * Parse the output of `pg_dump --version` ("pg_dump (PostgreSQL) 15.18",
 * "... 15.20 (Debian 15.20-0+deb12u1)", "... 9.6.24", "... 17devel",
 * "... 16beta2") into a number in the style of server_version_num:
 * 150018, 90624, 170000.  0, or -1 if it is not a version line.
 */
int pg_parse_version(const char *text, int *num);

/*
 * The major version of a version number, comparable between releases:
 * 1500 for 15.x, 906 for 9.6.x.
 */
int pg_major(int num);
/* The major version as an operator writes it: "15", "9.6". */
void pg_major_text(int num, char *buf, size_t size);

/*
 * The one line of a password file that gives password for any host,
 * port, database and user: "*:*:*:*:PASSWORD\n", with ':' and '\'
 * escaped by '\' as libpq expects.  NULL if the password is empty or
 * holds a line break: such a file cannot carry it.  The caller wipes and
 * frees the result.
 */
char *pg_passfile_line(const char *password);

/*
 * The argv of pg_dump for target t: the snapshot to use, and outdir for
 * the directory format (NULL: custom format to stdout).  Never holds a
 * password.  Free with pg_argv_free.
 */
char **pg_dump_argv(const struct target *t, const char *snapshot,
    const char *outdir);
void pg_argv_free(char **argv);

/* ---- restore (backend_postgres.restore) ---- */

/*
 * A key=value connection string for pg_restore: conninfo (key=value or
 * URI) with its database replaced by dbname, and never a password.
 * Caller frees; NULL with *cause if conninfo does not parse.
 */
char *pg_conninfo_with_db(const char *conninfo, const char *dbname,
    char **cause);

/*
 * The argv of pg_restore for target t: --exit-on-error, --jobs from
 * restore_jobs, the connection string and the archive (a custom-format
 * file or a dump directory); no_owner for drills.  Never holds a
 * password.  Free with pg_argv_free.
 */
char **pg_restore_argv(const struct target *t, const char *conninfo,
    const char *archive, int no_owner);

/*
 * The scratch database of a restore drill started at now:
 * bbdrill_TARGET_YYYYmmddHHMMSS (UTC, anything but a-z, 0-9 and _ in
 * TARGET becomes _).  Caller frees.
 */
char *pg_drill_name(const char *target, time_t now);

/*
 * What --replace renames the live database db to:
 * DB_before_restore_YYYYmmddHHMMSS (UTC), DB cut (at a character) so
 * that the whole fits in 63 bytes.  Caller frees.
 */
char *pg_before_name(const char *db, time_t now);

/*
 * Compare per-table row counts ({"public.x": 10, ...}) of the backup
 * with those of the restored database: one string per difference added
 * to the array differences ("table public.x: 10 rows in the backup, 9
 * restored"), tables missing on either side included.  Returns the
 * number of tables that differ.
 */
int pg_compare_counts(const struct cJSON *backup,
    const struct cJSON *restored, struct cJSON *differences);

/*
 * If pg_restore's stderr err says the archive's version is unsupported:
 * a message for the operator saying which pg_restore to use (caller
 * frees); else NULL.  restore_text/restore_num: pg_restore's version;
 * dump_version: the manifest's pg_dump_version, may be NULL.
 */
char *pg_unreadable_cause(const struct target *t, const char *err,
    const char *restore_text, int restore_num, const char *dump_version);

struct job_ctx;
struct pg_conn;
/*
 * Exact row counts of every user table of the database conn is on, into
 * tables ("schema.table": rows), honouring ctx's cancel.  0, or -1 with
 * *cause.  Used by other backends' drills (pgbackrest).
 */
int pg_table_counts(struct job_ctx *ctx, struct pg_conn *conn,
    struct cJSON *tables, char **cause);

#endif
