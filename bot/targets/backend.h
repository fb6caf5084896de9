/*
 * backend.h - one kind of thing to back up (PostgreSQL, ...), as a struct
 * of function pointers, the way smtpd does its backends.  Backends run in
 * job children only: they may block.
 *
 * The job runner (job.c) owns ids, files, the catalog, remotes and
 * retention; a backend only turns its source into a byte stream and back.
 *
 * A backend may add "warnings": [strings] to the manifest: things the
 * operator must read although the backup is good (a missing path, a git
 * repository with unpushed changes).  They are shown in the summary.
 */
#ifndef BB_BACKEND_H
#define BB_BACKEND_H

#include <signal.h>
#include <stdint.h>

#include "config.h"

struct cJSON;
struct config;
struct pipe_out;
struct proc;
struct target;

struct job_ctx {
	const struct config	*cfg;
	const struct target	*target;
	const char		*id;
	/* Report progress: phase ("dump"), bytes done, estimated total. */
	void	(*progress)(struct job_ctx *, const char *phase,
		    uint64_t done, uint64_t total);
	/* A log line for the report ("info", "warning"). */
	void	(*log)(struct job_ctx *, const char *level, const char *msg);
	/* Set by SIGTERM/SIGINT: stop, clean up, fail with "cancelled". */
	volatile sig_atomic_t	*cancelled;
	void			*arg;
	/* pgbackrest: "full", "diff", "incr"; NULL: the tool's default */
	const char		*backup_type;
};

/* What a restore is asked to do (already checked by restore_check). */
struct restore_opts {
	/*
	 * postgres: the new database (with replace: its name until the
	 * swap); files, media: a path; NULL: the kind's default
	 */
	const char	*into;
	const char	*from;		/* media: destination to copy from */
	int		 replace;	/* postgres: swap names; files, media:
					   overwrite existing files */
	int		 flush;		/* redis: empty the database first */
	int		 drill;		/* scratch copy, compare, remove */
	/* pgbackrest: the point in time to recover to (checked by
	   pgbackrest_valid_time); NULL: the end of the set or archive */
	const char	*time;
};

struct backend {
	const char	*kind;		/* "postgres": the section name */
	/* file name suffix of the raw stream, before .zst/.enc: ".dump" */
	const char	*suffix;

	/*
	 * Check the source before anything is written: reachable, versions
	 * compatible.  Adds facts to manifest (server version, size...).
	 * 0, or -1 with *cause (clear, for the operator).
	 */
	int	(*prepare)(struct job_ctx *, struct cJSON *manifest,
		    char **cause);
	/*
	 * Stream the backup into out (pipe_out_write) in bounded blocks.
	 * Every process involved must have succeeded and the stream must
	 * not be empty, else -1 with *cause (with the tool's last stderr
	 * lines).  Adds facts to manifest (row counts, tool version...).
	 */
	int	(*backup)(struct job_ctx *, struct pipe_out *out,
		    struct cJSON *manifest, char **cause);
	/*
	 * Start a process that reads the original stream on its stdin and
	 * fails if it is not a readable backup (pg_restore --file=/dev/null
	 * reads the whole archive; --list would only read its table of
	 * contents).  p gets PROC_STDIN and PROC_STDERR; the caller drains
	 * err_fd for the cause.  0 or -1 with *cause.  NULL: no such check.
	 */
	int	(*check_reader)(struct job_ctx *, const struct cJSON *manifest,
		    struct proc *p, char **cause);
	/*
	 * Health facts for !status (reachable, version, size).  Adds to
	 * out; 0 or -1 with *cause.
	 */
	int	(*probe)(struct job_ctx *, struct cJSON *out, char **cause);
	/*
	 * Instead of prepare/backup: a run that copies the source to its
	 * destinations itself (media).  Fills manifest with what it did,
	 * per destination.  Returns 0 (all good), 1 (some destinations
	 * failed: partial) or -1 with *cause.
	 */
	int	(*sync)(struct job_ctx *, struct cJSON *manifest, char **cause);
	/*
	 * Restore a backup.  raw is the original stream (decrypted,
	 * decompressed, its hash checked) in a private file the caller
	 * removes afterwards; NULL for media, whose copy lives at its
	 * destinations (manifest is then the newest good run record).
	 *
	 * Adds to result what it did, for the operator:
	 *   "into":        what was restored to (database, path...)
	 *   "compared":    how many things were compared with the manifest
	 *   "differences": [strings], one per mismatch ("table x: 10 rows
	 *                  in the backup, 9 restored")
	 *   "notes":       [strings], facts worth a line ("keys before 12,
	 *                  after 1012", "kept the old database as ...")
	 * Returns 0, or -1 with *cause; any difference is a failure.
	 *
	 * With opts->drill the target is never touched: restore into a
	 * scratch copy (database, temporary redis-server, directory),
	 * compare with the manifest, and remove the scratch copy whatever
	 * the outcome.  Honours ctx->cancelled.
	 */
	int	(*restore)(struct job_ctx *, const struct cJSON *manifest,
		    const char *raw, const struct restore_opts *opts,
		    struct cJSON *result, char **cause);
	/*
	 * Config's questions (struct config_checks, config.h), for the keys
	 * only this backend understands: a string key of the section as it
	 * is read, and the whole section once config's own required keys
	 * are there.  0, or -1 with *cause.  NULL: nothing to check.
	 */
	int	(*check_key)(const char *key, const char *value, char **cause);
	int	(*check_target)(const struct target *t, char **cause);
};

extern const struct backend backend_postgres;
extern const struct backend backend_redis;
extern const struct backend backend_files;
/*
 * Media targets are copied store to store with rclone sync, nothing goes
 * through backup_dir: the backend's `sync` does the whole run and fills
 * the manifest, which job.c writes as the record of the run.
 */
extern const struct backend backend_media;
/*
 * pgBackRest keeps the data in its own repositories: like media, its
 * `sync` does the whole run and job.c records it (pgbackrest.h).
 */
extern const struct backend backend_pgbackrest;

/* [script NAME]: output = log, and output = backup (script.h). */
extern const struct backend backend_script;
extern const struct backend backend_script_backup;

const struct backend *backend_for(const struct target *t);
const struct backend *backend_for_kind(enum target_kind kind);

/* What config_set_checks() is given: each asks the target's backend. */
extern const struct config_checks backend_config_checks;

/* Helpers every backend uses. */
/*
 * The target's password from its password_file (NULL when none is set):
 * 0, or -1 with *cause.  Free it with secret_free().
 */
int backend_password(const struct target *t, char **password, char **cause);
void backend_log(struct job_ctx *ctx, const char *level, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
void backend_progress(struct job_ctx *ctx, const char *phase, uint64_t done,
    uint64_t total);
/* Set a manifest fact, replacing an earlier value (takes item). */
void backend_fact(struct cJSON *manifest, const char *key,
    struct cJSON *item);

#endif
