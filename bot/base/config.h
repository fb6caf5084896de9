/*
 * config.h - bot.conf: an INI file of sections and `key = value` lines.
 *
 * The parser reads a whole text and collects *every* error as
 * "FILE:LINE: message", so an operator fixes them all in one go.  A config
 * with any error is never used.  config_free() releases everything.
 */
#ifndef BB_CONFIG_H
#define BB_CONFIG_H

#include <stddef.h>

#include "retention.h"

#define CONFIG_DEFAULT_PATH "/etc/backupbot/bot.conf"
#define CONFIG_NAME_MAX	32

struct strlist {
	char	**v;
	size_t	  n;
};

/* [remote NAME]: a place backups are copied to with rclone. */
struct remote {
	char		*name;
	char		*path;		/* any rclone remote path */
	int		 line;
};

enum target_kind { TARGET_POSTGRES, TARGET_REDIS, TARGET_MEDIA, TARGET_FILES,
	TARGET_SCRIPT, TARGET_PGBACKREST };

/* [postgres NAME] and the other kinds: something to back up. */
struct target {
	char		*name;
	enum target_kind kind;
	int		 line;
	char		*keep_text;
	struct keep_policy keep;
	struct strlist	 remotes;	/* names of [remote] sections */

	/* postgres */
	char		*conninfo;
	char		*password_file;
	char		*format;	/* custom | directory */
	int		 jobs;		/* pg_dump -j, directory format */
	char		*compression;	/* zstd | none | pgdump */
	int		 level;		/* zstd level */
	int		 threads;	/* zstd worker threads */
	char		*pg_dump;
	char		*pg_restore;

	/* redis: url, password_file, mode, TLS */
	char		*url;		/* redis://, rediss://, unix:// */
	char		*mode;		/* rdb | logical | auto */
	char		*tls_ca_file;
	int		 tls_verify;
	char		*redis_cli;	/* for rediss:// RDB streams */

	/* media: rclone sync source -> each destination */
	char		*source;
	struct strlist	 destinations;
	char		*flags;		/* extra rclone flags (allowlisted) */
	int		 keep_deleted_days;

	/* files: a tar of paths, and git repos to check */
	struct strlist	 paths;
	struct strlist	 git_repos;

	/* restore */
	int		 allow_replace;	/* !restore --replace permitted */
	int		 restore_jobs;	/* pg_restore -j */
	/* postgres: a role that may create databases (the backup role
	 * usually may not); NULL: conninfo / password_file */
	char		*restore_conninfo;
	char		*restore_password_file;
	char		*redis_server;	/* loads RDB files for restores */
	char		*verify_schedule; /* cron: restore drills */

	/* schedules and monitoring */
	char		*schedule;	/* cron: backups */
	char		*timezone;	/* of both schedules; NULL: system's */
	int		 catch_up;	/* run a missed schedule once at start */
	int		 retries;	/* of a failed scheduled run */
	long		 retry_delay;	/* seconds */
	long		 stale_after;	/* seconds; 0: from the schedule */
	char		*healthcheck_url; /* pinged on start, success, fail */

	/*
	 * script: the operator's own program (env, workdir and user also
	 * apply to every kind's hooks).  Every argv below comes from
	 * the config file only (split like chat arguments, never given to a
	 * shell), NULL-terminated, NULL when unset.
	 */
	char		**command;
	char		**restore_command; /* output = backup: reads stdin */
	char		**env;		/* NAME=value each */
	char		*workdir;
	char		*user;		/* drop to it when running as root */
	char		*output;	/* log | backup */
	long		 timeout;	/* seconds; 0: job_timeout */

	/* hooks, on every kind of target */
	char		**pre_hook;
	char		**post_hook;
	char		**on_failure_hook;
	char		**pre_restore_hook;
	char		**post_restore_hook;
	long		 hook_timeout;	/* seconds, each hook */

	/*
	 * pgbackrest: pgBackRest makes the backups (physical, WAL archive),
	 * backupbot drives it; see pgbackrest.h
	 */
	char		*stanza;
	char		*pgbackrest_config;	/* key "config": pgbackrest.conf */
	char		*pg_conninfo;	/* pg_stat_archiver, for !status */
	struct strlist	 repos;		/* key "repo": "1", "2": the copies */
	char		*pgbackrest_keep; /* key "keep": "full=2, diff=7" */
	char		*schedule_full;	/* cron, per backup type */
	char		*schedule_diff;
	char		*schedule_incr;
	char		*pg_data;	/* the live cluster's data directory */
	char		*restore_dir;	/* restores and drills go under it */
	char		*pgbackrest;	/* the pgbackrest binary */
	char		*pg_bindir;	/* pg_ctl; NULL: from PG_VERSION */
};

struct config {
	char		*path;

	/* [matrix] */
	char		*homeserver;		/* https://matrix.example.org */
	char		*user_id;
	char		*access_token_file;
	char		*password_file;
	char		*device_id;
	char		*device_name;
	struct strlist	 rooms;			/* ids (!x) or aliases (#x) */
	struct strlist	 admins;
	char		*command_prefix;
	int		 min_power_level;	/* -1: not checked */
	long		 backlog_max_age;	/* seconds */
	long		 sync_timeout;		/* seconds */
	int		 tls_verify;
	char		*pickle_key_file;	/* E2EE store key, or NULL */
	char		*e2ee_trust;		/* tofu | verified */

	/* [storage] */
	char		*state_dir;
	char		*backup_dir;
	char		*encryption_key_file;
	char		*rclone_config;
	char		*rclone;		/* the rclone binary */
	int		 max_parallel_jobs;
	long		 job_timeout;		/* seconds */

	/* [report] */
	char		*report_room;		/* NULL: the first room */
	char		*summary_schedule;	/* cron: the summary post */
	long		 alert_repeat;		/* seconds */
	char		*metrics_file;		/* Prometheus textfile */

	/* [restore] */
	int		 approvals_required;	/* other admins; 0: self-confirm */
	long		 approval_timeout;	/* seconds */

	struct target	*targets;
	size_t		 ntargets;
	struct remote	*remotes;
	size_t		 nremotes;

	/* [log] */
	int		 log_debug;
};

/* Collected error messages. */
struct config_errors {
	char	**msg;
	size_t	  n;
};

/*
 * Parse text (name is used in messages).  Returns a config, or NULL with
 * the errors in errs (caller calls config_errors_release).  check_files:
 * also stat secret files and refuse those readable by group or others.
 */
struct config *config_parse(const char *name, const char *text, size_t len,
    int check_files, struct config_errors *errs);
struct config *config_load(const char *path, struct config_errors *errs);

/*
 * The checks of a target's section that belong to its backend (the media
 * flags allowlist, the shape of its destinations), which config cannot
 * know: config_parse asks check_key of every key of a target section as it
 * reads it (every string key, so the error names its line), and check_target of every target
 * once its own required keys are there.  Each returns 0, or -1 with *cause
 * (caller frees).  The backend interface provides them
 * (backend_config_checks, backend.h) and main() hands them over once;
 * until then only config's own checks run.
 */
struct config_checks {
	int	(*check_key)(enum target_kind kind, const char *key,
		    const char *value, char **cause);
	int	(*check_target)(const struct target *t, char **cause);
};
void config_set_checks(const struct config_checks *checks);
void config_free(struct config *cfg);
void config_errors_release(struct config_errors *errs);

/* 1 if mxid is listed in admins. */
int config_is_admin(const struct config *cfg, const char *mxid);

struct target *config_target(const struct config *cfg, const char *name);
struct remote *config_remote(const struct config *cfg, const char *name);
const char *config_kind_name(enum target_kind kind);
/* 1 if s is a valid target or remote name: [a-z0-9_-], 1..32 chars. */
int config_valid_name(const char *s);

/*
 * 1 if the target's runs are recorded as ID.run.json rather than as
 * backups in the catalog: media, scripts whose output is a log, and
 * pgbackrest (the tool keeps the data).
 */
int config_records_runs(const struct target *t);

/*
 * Check an operator's program before it may run: argv[0] an absolute
 * path to an executable regular file, owned by root, by us or by user
 * (the target's `user`, who runs it; NULL: none), not
 * writable by group or others, in a directory with the same rules (or
 * sticky); the same for later arguments that are absolute paths to
 * executable files (a script handed to an interpreter).  0, or -1 with
 * *cause.
 */
int config_check_program(char *const *argv, const char *user,
    char **cause);

/* Parse "90", "90s", "5m", "2h", "1d" into seconds; -1 on error. */
long config_parse_duration(const char *s);

#endif
