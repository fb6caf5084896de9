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

#define CONFIG_DEFAULT_PATH "/etc/backupbot/bot.conf"

struct strlist {
	char	**v;
	size_t	  n;
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

	/* [storage] */
	char		*state_dir;
	char		*backup_dir;

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
void config_free(struct config *cfg);
void config_errors_release(struct config_errors *errs);

/* 1 if mxid is listed in admins. */
int config_is_admin(const struct config *cfg, const char *mxid);

/* Parse "90", "90s", "5m", "2h", "1d" into seconds; -1 on error. */
long config_parse_duration(const char *s);

#endif
