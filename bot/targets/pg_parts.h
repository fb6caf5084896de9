/*
 * pg_parts.h - what pg.c and pg_restore.c share and nothing else
 * includes: the knobs, the run of one tool, and the libpq and process
 * helpers pg.c defines.  The API is pg.h.
 */
#ifndef BB_PG_PARTS_H
#define BB_PG_PARTS_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "proc.h"
#include "util.h"

struct job_ctx;
struct pg_counter;
struct pipe_out;
struct restore_opts;
struct target;

#define PG_CONNECT_TIMEOUT	"10"
#define PG_APPNAME		"backupbot"
#define PG_PROGRESS_MS		500	/* at most two updates a second */
#define PG_POLL_MS		200	/* how soon a cancel is noticed */
#define PG_TERM_GRACE_MS	10000	/* after SIGTERM, then SIGKILL */
#define PG_STDERR_LINES		5
#define PG_VERSION_OUT_MAX	4096

/* One program run by pg_stream, and what became of it. */
struct pg_run {
	const char	*name;		/* "pg_dump", "tar": for messages */
	const char	*phase;		/* progress phase */
	uint64_t	 total;		/* progress estimate, 0: unknown */
	const char	*watch_dir;	/* no stdout: progress = its size */
	/* or progress = what this says (a database's size) */
	uint64_t	(*measure)(void *);
	void		*measure_arg;
	uint64_t	 bytes;		/* bytes read from its stdout */
	struct tail	 err;
	int		 status;
	int		 cancelled;
	char		*error;		/* why we stopped it: write, poll */
	struct pg_counter *counts;	/* row counts to read meanwhile */
};

int pg_is_cancelled(struct job_ctx *ctx);
char *pg_oneline(const char *msg);
PGconn *pg_connect_db(const struct target *t, const char *password,
    const char *dbname, char **cause);
PGconn *pg_connect(const struct target *t, const char *password, char **cause);
int pg_exec(PGconn *conn, const char *sql, char **cause);
int pg_ll(const char *s, long long *v);
/* pg_program.c: the program to run for a configured pg_dump/pg_restore. */
const char *pg_program(const char *configured);
int pg_tool_version(const struct target *t, const char *key, const char *tool,
    int *num, char **text, char **cause);
void pg_rmtree(const char *path);
int pg_stream(struct job_ctx *ctx, const char *const *argv,
    const char *const *env, struct pipe_out *out, struct pg_run *r,
    char **cause);
char *pg_run_failure(struct pg_run *r, int need_output);
void pg_passfile_remove(char **dir, char **file);
int pg_passfile_create(const char *password, char **dir, char **file,
    char **cause);
/* Exact row counts of every user table, one after another: "schema.
 * table": rows (caller frees), or NULL with *cause. */
cJSON *pg_count_rows(struct job_ctx *ctx, PGconn *conn, char **cause);

/* pg_restore.c: backend_postgres.restore (backend.h). */
int pg_restore_backup(struct job_ctx *ctx, const cJSON *manifest,
    const char *raw, const struct restore_opts *opts, cJSON *result,
    char **cause);

#endif
