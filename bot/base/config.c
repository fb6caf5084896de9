/*
 * config.c - the bot.conf parser and validator.
 *
 * Why not inih: an operator should see every mistake at once with its line
 * number, and inih (as packaged) stops reporting at the first bad line and
 * does not tell the handler which line it is on.  The format is small, so a
 * line-at-a-time parser that a fuzzer can drive is the clearer choice.
 *
 * Syntax: `[section]` or `[kind name]` headers, `key = value` lines, and
 * comments: whole lines starting with `;` or `#`, and `;` after a value
 * when preceded by whitespace.  Lists are comma separated.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <libgen.h>
#include <pwd.h>
#include <unistd.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "config.h"
#include "cron.h"
#include "util.h"

enum key_type {
	K_STRING, K_LIST, K_DURATION, K_INT, K_BOOL, K_SECRET, K_ENUM, K_KEEP,
	K_CONNINFO, K_CRON, K_TZ, K_ARGV
};

/* Which struct a key's offset is into. */
enum owner { OWN_CFG, OWN_TARGET, OWN_REMOTE };

struct key_def {
	const char	*section;	/* "matrix", or a kind: "postgres" */
	enum owner	 owner;
	const char	*key;
	size_t		 offset;	/* into the owner's struct */
	enum key_type	 type;
	long		 min, max;		/* K_INT, K_DURATION */
	const char	*choices;		/* K_ENUM: "a|b|c" */
};

#define O(f) OWN_CFG, #f, offsetof(struct config, f)
#define T(f) OWN_TARGET, #f, offsetof(struct target, f)
#define R(f) OWN_REMOTE, #f, offsetof(struct remote, f)
static const struct key_def keys[] = {
	{ "matrix", O(homeserver),	  K_STRING, 0, 0, NULL },
	{ "matrix", O(user_id),		  K_STRING, 0, 0, NULL },
	{ "matrix", O(access_token_file), K_SECRET, 0, 0, NULL },
	{ "matrix", O(password_file),	  K_SECRET, 0, 0, NULL },
	{ "matrix", O(device_id),	  K_STRING, 0, 0, NULL },
	{ "matrix", O(device_name),	  K_STRING, 0, 0, NULL },
	{ "matrix", O(rooms),		  K_LIST, 0, 0, NULL },
	{ "matrix", O(admins),		  K_LIST, 0, 0, NULL },
	{ "matrix", O(command_prefix),	  K_STRING, 0, 0, NULL },
	{ "matrix", O(min_power_level),	  K_INT, 0, 1000000, NULL },
	{ "matrix", O(backlog_max_age),	  K_DURATION, 0, 7 * 86400, NULL },
	{ "matrix", O(sync_timeout),	  K_DURATION, 1, 300, NULL },
	{ "matrix", O(tls_verify),	  K_BOOL, 0, 0, NULL },
	{ "matrix", O(pickle_key_file),	  K_SECRET, 0, 0, NULL },
	{ "matrix", O(e2ee_trust),	  K_ENUM, 0, 0, "tofu|verified" },
	{ "storage", O(state_dir),	  K_STRING, 0, 0, NULL },
	{ "storage", O(backup_dir),	  K_STRING, 0, 0, NULL },
	{ "storage", O(encryption_key_file), K_SECRET, 0, 0, NULL },
	{ "storage", O(rclone_config),	  K_STRING, 0, 0, NULL },
	{ "storage", O(rclone),		  K_STRING, 0, 0, NULL },
	{ "storage", O(max_parallel_jobs), K_INT, 1, 64, NULL },
	{ "storage", O(job_timeout),	  K_DURATION, 60, 7 * 86400, NULL },
	{ "report", O(report_room),	  K_STRING, 0, 0, NULL },
	{ "report", O(summary_schedule),  K_CRON, 0, 0, NULL },
	{ "report", O(alert_repeat),	  K_DURATION, 10, 30 * 86400, NULL },
	{ "report", O(metrics_file),	  K_STRING, 0, 0, NULL },
	{ "restore", O(approvals_required), K_INT, 0, 10, NULL },
	{ "restore", O(approval_timeout), K_DURATION, 5, 7 * 86400, NULL },
	{ "log", OWN_CFG, "debug", offsetof(struct config, log_debug), K_BOOL,
	    0, 0, NULL },
	{ "postgres", T(conninfo),	  K_CONNINFO, 0, 0, NULL },
	{ "postgres", T(password_file),	  K_SECRET, 0, 0, NULL },
	{ "postgres", T(format),	  K_ENUM, 0, 0, "custom|directory" },
	{ "postgres", T(jobs),		  K_INT, 1, 64, NULL },
	{ "postgres", T(compression),	  K_ENUM, 0, 0, "zstd|none|pgdump" },
	{ "postgres", T(level),		  K_INT, 1, 19, NULL },
	{ "postgres", T(threads),	  K_INT, 0, 64, NULL },
	{ "postgres", T(pg_dump),	  K_STRING, 0, 0, NULL },
	{ "postgres", T(pg_restore),	  K_STRING, 0, 0, NULL },
	{ "postgres", OWN_TARGET, "keep", offsetof(struct target, keep_text),
	    K_KEEP, 0, 0, NULL },
	{ "postgres", T(remotes),	  K_LIST, 0, 0, NULL },
	{ "postgres", T(allow_replace), K_BOOL, 0, 0, NULL },
	{ "postgres", T(verify_schedule), K_CRON, 0, 0, NULL },
	{ "postgres", T(schedule), K_CRON, 0, 0, NULL },
	{ "postgres", T(timezone), K_TZ, 0, 0, NULL },
	{ "postgres", T(catch_up), K_BOOL, 0, 0, NULL },
	{ "postgres", T(retries), K_INT, 0, 20, NULL },
	{ "postgres", T(retry_delay), K_DURATION, 10, 86400, NULL },
	{ "postgres", T(stale_after), K_DURATION, 60, 90 * 86400, NULL },
	{ "postgres", T(healthcheck_url), K_STRING, 0, 0, NULL },
	{ "postgres", T(restore_jobs), K_INT, 1, 64, NULL },
	{ "postgres", T(restore_conninfo), K_CONNINFO, 0, 0, NULL },
	{ "postgres", T(restore_password_file), K_SECRET, 0, 0, NULL },
	{ "redis", T(url),		  K_STRING, 0, 0, NULL },
	{ "redis", T(password_file),	  K_SECRET, 0, 0, NULL },
	{ "redis", T(mode),		  K_ENUM, 0, 0, "rdb|logical|auto" },
	{ "redis", T(tls_ca_file),	  K_STRING, 0, 0, NULL },
	{ "redis", T(tls_verify),	  K_BOOL, 0, 0, NULL },
	{ "redis", T(redis_cli),	  K_STRING, 0, 0, NULL },
	{ "redis", T(compression),	  K_ENUM, 0, 0, "zstd|none" },
	{ "redis", T(level),		  K_INT, 1, 19, NULL },
	{ "redis", OWN_TARGET, "keep", offsetof(struct target, keep_text),
	    K_KEEP, 0, 0, NULL },
	{ "redis", T(remotes),		  K_LIST, 0, 0, NULL },
	{ "redis", T(verify_schedule), K_CRON, 0, 0, NULL },
	{ "redis", T(schedule), K_CRON, 0, 0, NULL },
	{ "redis", T(timezone), K_TZ, 0, 0, NULL },
	{ "redis", T(catch_up), K_BOOL, 0, 0, NULL },
	{ "redis", T(retries), K_INT, 0, 20, NULL },
	{ "redis", T(retry_delay), K_DURATION, 10, 86400, NULL },
	{ "redis", T(stale_after), K_DURATION, 60, 90 * 86400, NULL },
	{ "redis", T(healthcheck_url), K_STRING, 0, 0, NULL },
	{ "redis", T(redis_server), K_STRING, 0, 0, NULL },
	{ "media", T(source),		  K_STRING, 0, 0, NULL },
	{ "media", T(destinations),	  K_LIST, 0, 0, NULL },
	{ "media", T(flags),		  K_STRING, 0, 0, NULL },
	{ "media", T(keep_deleted_days),  K_INT, 0, 3650, NULL },
	{ "media", T(allow_replace), K_BOOL, 0, 0, NULL },
	{ "media", T(verify_schedule), K_CRON, 0, 0, NULL },
	{ "media", T(schedule), K_CRON, 0, 0, NULL },
	{ "media", T(timezone), K_TZ, 0, 0, NULL },
	{ "media", T(catch_up), K_BOOL, 0, 0, NULL },
	{ "media", T(retries), K_INT, 0, 20, NULL },
	{ "media", T(retry_delay), K_DURATION, 10, 86400, NULL },
	{ "media", T(stale_after), K_DURATION, 60, 90 * 86400, NULL },
	{ "media", T(healthcheck_url), K_STRING, 0, 0, NULL },
	{ "files", T(paths),		  K_LIST, 0, 0, NULL },
	{ "files", T(git_repos),	  K_LIST, 0, 0, NULL },
	{ "files", T(compression),	  K_ENUM, 0, 0, "zstd|none" },
	{ "files", T(level),		  K_INT, 1, 19, NULL },
	{ "files", OWN_TARGET, "keep", offsetof(struct target, keep_text),
	    K_KEEP, 0, 0, NULL },
	{ "files", T(remotes),		  K_LIST, 0, 0, NULL },
	{ "files", T(allow_replace), K_BOOL, 0, 0, NULL },
	{ "files", T(verify_schedule), K_CRON, 0, 0, NULL },
	{ "files", T(schedule), K_CRON, 0, 0, NULL },
	{ "files", T(timezone), K_TZ, 0, 0, NULL },
	{ "files", T(catch_up), K_BOOL, 0, 0, NULL },
	{ "files", T(retries), K_INT, 0, 20, NULL },
	{ "files", T(retry_delay), K_DURATION, 10, 86400, NULL },
	{ "files", T(stale_after), K_DURATION, 60, 90 * 86400, NULL },
	{ "files", T(healthcheck_url), K_STRING, 0, 0, NULL },
	{ "script", T(command),		  K_ARGV, 0, 0, NULL },
	{ "script", T(restore_command),	  K_ARGV, 0, 0, NULL },
	{ "script", T(env),		  K_ARGV, 0, 0, NULL },
	{ "script", T(workdir),		  K_STRING, 0, 0, NULL },
	{ "script", T(user),		  K_STRING, 0, 0, NULL },
	{ "script", T(output),		  K_ENUM, 0, 0, "log|backup" },
	{ "script", T(timeout),		  K_DURATION, 1, 7 * 86400, NULL },
	{ "script", T(compression),	  K_ENUM, 0, 0, "zstd|none" },
	{ "script", T(level),		  K_INT, 1, 19, NULL },
	{ "script", OWN_TARGET, "keep", offsetof(struct target, keep_text),
	    K_KEEP, 0, 0, NULL },
	{ "script", T(remotes),		  K_LIST, 0, 0, NULL },
	{ "script", T(schedule), K_CRON, 0, 0, NULL },
	{ "script", T(timezone), K_TZ, 0, 0, NULL },
	{ "script", T(catch_up), K_BOOL, 0, 0, NULL },
	{ "script", T(retries), K_INT, 0, 20, NULL },
	{ "script", T(retry_delay), K_DURATION, 10, 86400, NULL },
	{ "script", T(stale_after), K_DURATION, 60, 90 * 86400, NULL },
	{ "script", T(healthcheck_url), K_STRING, 0, 0, NULL },
	{ "postgres", T(env), K_ARGV, 0, 0, NULL },
	{ "postgres", T(workdir), K_STRING, 0, 0, NULL },
	{ "postgres", T(user), K_STRING, 0, 0, NULL },
	{ "postgres", T(pre_hook), K_ARGV, 0, 0, NULL },
	{ "postgres", T(post_hook), K_ARGV, 0, 0, NULL },
	{ "postgres", T(on_failure_hook), K_ARGV, 0, 0, NULL },
	{ "postgres", T(pre_restore_hook), K_ARGV, 0, 0, NULL },
	{ "postgres", T(post_restore_hook), K_ARGV, 0, 0, NULL },
	{ "postgres", T(hook_timeout), K_DURATION, 1, 86400, NULL },
	{ "redis", T(env), K_ARGV, 0, 0, NULL },
	{ "redis", T(workdir), K_STRING, 0, 0, NULL },
	{ "redis", T(user), K_STRING, 0, 0, NULL },
	{ "redis", T(pre_hook), K_ARGV, 0, 0, NULL },
	{ "redis", T(post_hook), K_ARGV, 0, 0, NULL },
	{ "redis", T(on_failure_hook), K_ARGV, 0, 0, NULL },
	{ "redis", T(pre_restore_hook), K_ARGV, 0, 0, NULL },
	{ "redis", T(post_restore_hook), K_ARGV, 0, 0, NULL },
	{ "redis", T(hook_timeout), K_DURATION, 1, 86400, NULL },
	{ "media", T(env), K_ARGV, 0, 0, NULL },
	{ "media", T(workdir), K_STRING, 0, 0, NULL },
	{ "media", T(user), K_STRING, 0, 0, NULL },
	{ "media", T(pre_hook), K_ARGV, 0, 0, NULL },
	{ "media", T(post_hook), K_ARGV, 0, 0, NULL },
	{ "media", T(on_failure_hook), K_ARGV, 0, 0, NULL },
	{ "media", T(pre_restore_hook), K_ARGV, 0, 0, NULL },
	{ "media", T(post_restore_hook), K_ARGV, 0, 0, NULL },
	{ "media", T(hook_timeout), K_DURATION, 1, 86400, NULL },
	{ "files", T(env), K_ARGV, 0, 0, NULL },
	{ "files", T(workdir), K_STRING, 0, 0, NULL },
	{ "files", T(user), K_STRING, 0, 0, NULL },
	{ "files", T(pre_hook), K_ARGV, 0, 0, NULL },
	{ "files", T(post_hook), K_ARGV, 0, 0, NULL },
	{ "files", T(on_failure_hook), K_ARGV, 0, 0, NULL },
	{ "files", T(pre_restore_hook), K_ARGV, 0, 0, NULL },
	{ "files", T(post_restore_hook), K_ARGV, 0, 0, NULL },
	{ "files", T(hook_timeout), K_DURATION, 1, 86400, NULL },
	{ "script", T(pre_hook), K_ARGV, 0, 0, NULL },
	{ "script", T(post_hook), K_ARGV, 0, 0, NULL },
	{ "script", T(on_failure_hook), K_ARGV, 0, 0, NULL },
	{ "script", T(pre_restore_hook), K_ARGV, 0, 0, NULL },
	{ "script", T(post_restore_hook), K_ARGV, 0, 0, NULL },
	{ "script", T(hook_timeout), K_DURATION, 1, 86400, NULL },
	{ "pgbackrest", T(stanza),	  K_STRING, 0, 0, NULL },
	{ "pgbackrest", OWN_TARGET, "config",
	    offsetof(struct target, pgbackrest_config), K_STRING, 0, 0, NULL },
	{ "pgbackrest", T(pg_conninfo),	  K_CONNINFO, 0, 0, NULL },
	{ "pgbackrest", OWN_TARGET, "repo", offsetof(struct target, repos),
	    K_LIST, 0, 0, NULL },
	{ "pgbackrest", OWN_TARGET, "keep",
	    offsetof(struct target, pgbackrest_keep), K_STRING, 0, 0, NULL },
	{ "pgbackrest", T(schedule_full), K_CRON, 0, 0, NULL },
	{ "pgbackrest", T(schedule_diff), K_CRON, 0, 0, NULL },
	{ "pgbackrest", T(schedule_incr), K_CRON, 0, 0, NULL },
	{ "pgbackrest", T(pg_data),	  K_STRING, 0, 0, NULL },
	{ "pgbackrest", T(restore_dir),	  K_STRING, 0, 0, NULL },
	{ "pgbackrest", T(pgbackrest),	  K_STRING, 0, 0, NULL },
	{ "pgbackrest", T(pg_bindir),	  K_STRING, 0, 0, NULL },
	{ "pgbackrest", T(allow_replace), K_BOOL, 0, 0, NULL },
	{ "pgbackrest", T(verify_schedule), K_CRON, 0, 0, NULL },
	{ "pgbackrest", T(timezone), K_TZ, 0, 0, NULL },
	{ "pgbackrest", T(catch_up), K_BOOL, 0, 0, NULL },
	{ "pgbackrest", T(retries), K_INT, 0, 20, NULL },
	{ "pgbackrest", T(retry_delay), K_DURATION, 10, 86400, NULL },
	{ "pgbackrest", T(stale_after), K_DURATION, 60, 90 * 86400, NULL },
	{ "pgbackrest", T(healthcheck_url), K_STRING, 0, 0, NULL },
	{ "remote", R(path),		  K_STRING, 0, 0, NULL },
};
#undef O
#undef T
#undef R

/* Section kinds: singletons, and named ones ([postgres NAME]). */
static const struct {
	const char	*name;
	int		 named;
	enum owner	 owner;
	enum target_kind kind;
} sections[] = {
	{ "matrix",	0, OWN_CFG, 0 },
	{ "storage",	0, OWN_CFG, 0 },
	{ "report",	0, OWN_CFG, 0 },
	{ "restore",	0, OWN_CFG, 0 },
	{ "log",	0, OWN_CFG, 0 },
	{ "postgres",	1, OWN_TARGET, TARGET_POSTGRES },
	{ "redis",	1, OWN_TARGET, TARGET_REDIS },
	{ "media",	1, OWN_TARGET, TARGET_MEDIA },
	{ "files",	1, OWN_TARGET, TARGET_FILES },
	{ "script",	1, OWN_TARGET, TARGET_SCRIPT },
	{ "pgbackrest",	1, OWN_TARGET, TARGET_PGBACKREST },
	{ "remote",	1, OWN_REMOTE, 0 },
};

/* The backend's checks of a target section (config_set_checks). */
static const struct config_checks *checks;

void
config_set_checks(const struct config_checks *c)
{
	checks = c;
}

struct parser {
	const char		*name;
	struct config		*cfg;
	struct config_errors	*errs;
	int			 check_files;
	char			 section[64];	/* kind of the current section */
	int			 section_ok;
	int			 section_line;
	enum owner		 owner;
	size_t			 index;		/* of the target or remote */
	int			 seen_line[nitems(keys)]; /* in this section */
	int			 cfg_line[nitems(keys)];  /* singletons, for messages */
	int			 seen_section[nitems(sections)];
};

static void perr(struct parser *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
perr(struct parser *p, int line, const char *fmt, ...)
{
	struct config_errors *e = p->errs;
	va_list ap;
	char *m;

	va_start(ap, fmt);
	m = xvasprintf(fmt, ap);
	va_end(ap);
	e->msg = xrealloc(e->msg, (e->n + 1) * sizeof(*e->msg));
	if (line > 0)
		e->msg[e->n++] = xasprintf("%s:%d: %s", p->name, line, m);
	else
		e->msg[e->n++] = xasprintf("%s: %s", p->name, m);
	free(m);
}

long
config_parse_duration(const char *s)
{
	long long v;
	char num[32];
	size_t n = strlen(s);
	long mult = 1;

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 's': mult = 1; num[--n] = '\0'; break;
	case 'm': mult = 60; num[--n] = '\0'; break;
	case 'h': mult = 3600; num[--n] = '\0'; break;
	case 'd': mult = 86400; num[--n] = '\0'; break;
	default: break;
	}
	if (str_to_ll(num, 0, 100L * 365 * 86400, &v) == -1)
		return -1;
	return (long)v * mult;
}

static void
strlist_add(struct strlist *l, const char *s)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

static void
strlist_release(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Printable: no control characters (values end up in argv and messages). */
static int
value_printable(const char *v)
{
	for (; *v != '\0'; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return 0;
	return 1;
}

/* The struct the current section's keys go into. */
static char *
section_base(struct parser *p)
{
	switch (p->owner) {
	case OWN_TARGET:
		return (char *)&p->cfg->targets[p->index];
	case OWN_REMOTE:
		return (char *)&p->cfg->remotes[p->index];
	default:
		return (char *)p->cfg;
	}
}

static int
choice_ok(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *c = choices; *c != '\0'; ) {
		size_t len = strcspn(c, "|");

		if (len == n && !strncmp(c, v, n))
			return 1;
		c += len + (c[len] == '|');
	}
	return 0;
}

/*
 * A password in conninfo: the "password" keyword (key=value form or a URI
 * parameter), or user:secret@ in the user info of a postgres(ql):// URI.
 */
static int
conninfo_has_password(const char *v)
{
	const char *auth, *end, *at;

	if (strstr(v, "password") != NULL)
		return 1;
	if (!str_startswith(v, "postgresql://") &&
	    !str_startswith(v, "postgres://"))
		return 0;
	auth = strstr(v, "://") + 3;
	end = auth + strcspn(auth, "/?");
	at = memrchr(auth, '@', (size_t)(end - auth));
	return at != NULL && memchr(auth, ':', (size_t)(at - auth)) != NULL;
}

/*
 * An operator's command line: split like chat arguments (quotes,
 * backslashes), never given to a shell.  env holds NAME=value words; a
 * program's files are checked when check_files is set.
 */
static void
set_argv(struct parser *p, const struct key_def *k, char ***field,
    const char *v, int line)
{
	char **argv, *cause = NULL;
	int argc;

	if ((argc = argv_split(v, &argv, &cause)) == -1) {
		perr(p, line, "%s: %s", k->key, cause);
		free(cause);
		return;
	}
	if (argc == 0) {
		perr(p, line, "%s: empty value", k->key);
		free(argv);
		return;
	}
	strv_free(*field);
	*field = argv;
	if (!strcmp(k->key, "env")) {
		for (int i = 0; i < argc; i++) {
			size_t n = strcspn(argv[i], "=");

			if (argv[i][n] != '=' || n == 0 ||
			    strspn(argv[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz0123456789_") != n ||
			    (argv[i][0] >= '0' && argv[i][0] <= '9'))
				perr(p, line, "env: '%.40s' is not NAME=value",
				    argv[i]);
			else if (!strncmp(argv[i], "BACKUPBOT_", 10))
				perr(p, line, "env: %.*s is set by backupbot",
				    (int)n, argv[i]);
		}
		return;
	}
	/* owner and permissions: in validate_programs, once user is known */
	if (argv[0][0] != '/')
		perr(p, line, "%s: '%.60s' must be an absolute path (the "
		    "program that runs is checked: owner and permissions)",
		    k->key, argv[0]);
}

static void
set_value(struct parser *p, const struct key_def *k, const char *v, int line)
{
	char *field = section_base(p) + k->offset;
	long long ll;
	long d;

	switch (k->type) {
	case K_ENUM:
		if (!choice_ok(k->choices, v)) {
			perr(p, line, "%s: '%s' is not one of %s", k->key, v,
			    k->choices);
			return;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		break;
	case K_KEEP: {
		struct target *t = &p->cfg->targets[p->index];
		char *cause = NULL;

		if (keep_parse(v, &t->keep, &cause) == -1) {
			perr(p, line, "keep: %s", cause);
			free(cause);
			return;
		}
		free(t->keep_text);
		t->keep_text = xstrdup(v);
		break;
	}
	case K_CONNINFO:
		/* A password here would end up in pg_dump's argv. */
		if (conninfo_has_password(v)) {
			perr(p, line, "%s: no password here; put it in "
			    "password_file (mode 0600) or ~/.pgpass", k->key);
			return;
		}
		if (*v == '\0') {
			perr(p, line, "%s: empty value", k->key);
			return;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		break;
	case K_TZ: {
		char *cause = NULL;

		if (cron_tz_check(v, &cause) == -1) {
			perr(p, line, "%s: %s", k->key, cause);
			free(cause);
			return;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		break;
	}
	case K_CRON: {
		struct cron c;
		char *cause = NULL;

		if (cron_parse(v, &c, &cause) == -1) {
			perr(p, line, "%s: %s", k->key, cause);
			free(cause);
			return;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		break;
	}
	case K_STRING:
	case K_SECRET:
		if (*v == '\0') {
			perr(p, line, "%s: empty value", k->key);
			return;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		/* The backend's own checks, here where the line is known. */
		if (k->owner == OWN_TARGET && checks != NULL &&
		    checks->check_key != NULL) {
			char *cause = NULL;

			if (checks->check_key(p->cfg->targets[p->index].kind,
			    k->key, v, &cause) == -1) {
				perr(p, line, "%s", cause);
				free(cause);
			}
		}
		if (k->type == K_SECRET && p->check_files) {
			struct stat st;

			if (stat(v, &st) == -1)
				perr(p, line, "%s: %s: %s", k->key, v,
				    strerror(errno));
			else if (!S_ISREG(st.st_mode))
				perr(p, line, "%s: %s: not a regular file",
				    k->key, v);
			else if (st.st_mode & (S_IRWXG | S_IRWXO))
				perr(p, line, "%s: %s: permissions %04o are "
				    "too open for a secret (chmod 600 %s)",
				    k->key, v, (unsigned)(st.st_mode & 07777),
				    v);
		}
		break;
	case K_LIST: {
		struct strlist *l = (struct strlist *)field;
		char *copy = xstrdup(v), *s = copy, *comma;

		strlist_release(l);
		for (;;) {
			comma = strchr(s, ',');
			if (comma != NULL)
				*comma = '\0';
			s = str_trim(s);
			if (*s == '\0')
				perr(p, line, "%s: empty list item", k->key);
			else
				strlist_add(l, s);
			if (comma == NULL)
				break;
			s = comma + 1;
		}
		free(copy);
		break;
	}
	case K_ARGV:
		set_argv(p, k, (char ***)field, v, line);
		break;
	case K_DURATION:
		d = config_parse_duration(v);
		if (d < 0 || d < k->min || d > k->max)
			perr(p, line, "%s: '%s' is not a duration between "
			    "%lds and %lds (use 30s, 5m, 2h, 1d)", k->key, v,
			    k->min, k->max);
		else
			*(long *)field = d;
		break;
	case K_INT:
		if (str_to_ll(v, k->min, k->max, &ll) == -1)
			perr(p, line, "%s: '%s' is not a number between %ld "
			    "and %ld", k->key, v, k->min, k->max);
		else
			*(int *)field = (int)ll;
		break;
	case K_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on")
		    || !strcmp(v, "1"))
			*(int *)field = 1;
		else if (!strcmp(v, "no") || !strcmp(v, "false") ||
		    !strcmp(v, "off") || !strcmp(v, "0"))
			*(int *)field = 0;
		else
			perr(p, line, "%s: '%s' is not yes or no", k->key, v);
		break;
	}
}

int
config_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_NAME_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '_' || *s == '-'))
			return 0;
	return 1;
}

const char *
config_kind_name(enum target_kind kind)
{
	for (size_t i = 0; i < nitems(sections); i++)
		if (sections[i].owner == OWN_TARGET && sections[i].kind == kind)
			return sections[i].name;
	return "?";
}

static void target_defaults(struct target *t, enum target_kind kind);

/* Names that chat commands use for groups of targets. */
static int
name_reserved(const char *name)
{
	for (size_t i = 0; i < nitems(sections); i++)
		if (sections[i].owner == OWN_TARGET &&
		    !strcmp(sections[i].name, name))
			return 1;
	return !strcmp(name, "all") || !strcmp(name, "latest");
}

static void
parse_section(struct parser *p, char *s, int line)
{
	char *end = strchr(s, ']'), *name;
	struct config *c = p->cfg;
	size_t i;

	p->section_ok = 0;
	p->section[0] = '-';	/* keys until the next good header: skipped */
	p->section[1] = '\0';
	memset(p->seen_line, 0, sizeof(p->seen_line));
	if (end == NULL || *str_trim(end + 1) != '\0') {
		perr(p, line, "malformed section header (expected [name] or "
		    "[kind name])");
		return;
	}
	*end = '\0';
	s = str_trim(s + 1);
	name = s + strcspn(s, " \t");
	if (*name != '\0') {
		*name++ = '\0';
		name = str_trim(name);
	}
	for (i = 0; i < nitems(sections); i++)
		if (!strcmp(s, sections[i].name))
			break;
	if (i == nitems(sections)) {
		perr(p, line, "unknown section [%.40s]", s);
		return;
	}
	if (!sections[i].named) {
		if (*name != '\0') {
			perr(p, line, "[%s] takes no name", s);
			return;
		}
		if (p->seen_section[i])
			perr(p, line, "section [%s] repeated (first at line "
			    "%d)", s, p->seen_section[i]);
		p->seen_section[i] = line;
		p->owner = OWN_CFG;
	} else {
		if (*name == '\0') {
			perr(p, line, "[%s] needs a name: [%s NAME]", s, s);
			return;
		}
		if (!config_valid_name(name)) {
			perr(p, line, "[%s %.40s]: names are 1-%d characters "
			    "of a-z, 0-9, _ and -", s, name, CONFIG_NAME_MAX);
			return;
		}
		if (sections[i].owner == OWN_TARGET) {
			struct target *t;

			if (name_reserved(name)) {
				perr(p, line, "[%s %s]: '%s' is a reserved "
				    "word in commands; pick another name", s,
				    name, name);
				return;
			}
			if ((t = config_target(c, name)) != NULL) {
				perr(p, line, "target '%s' defined twice "
				    "(first at line %d)", name, t->line);
				return;
			}
			c->targets = xrealloc(c->targets,
			    (c->ntargets + 1) * sizeof(*c->targets));
			t = &c->targets[c->ntargets];
			target_defaults(t, sections[i].kind);
			t->name = xstrdup(name);
			t->line = line;
			p->index = c->ntargets++;
		} else {
			struct remote *r;

			if ((r = config_remote(c, name)) != NULL) {
				perr(p, line, "remote '%s' defined twice "
				    "(first at line %d)", name, r->line);
				return;
			}
			c->remotes = xrealloc(c->remotes,
			    (c->nremotes + 1) * sizeof(*c->remotes));
			r = &c->remotes[c->nremotes];
			memset(r, 0, sizeof(*r));
			r->name = xstrdup(name);
			r->line = line;
			p->index = c->nremotes++;
		}
		p->owner = sections[i].owner;
	}
	memcpy(p->section, s, strlen(s) + 1);
	p->section_ok = 1;
	p->section_line = line;
}

/*
 * Cut a trailing comment: `;` at the start or after whitespace.  Not `#`:
 * room aliases start with it (`rooms = #ops:example.org`).
 */
static void
cut_comment(char *s)
{
	for (char *c = s; *c != '\0'; c++) {
		if (*c == ';' &&
		    (c == s || isspace((unsigned char)c[-1]))) {
			*c = '\0';
			return;
		}
	}
}

static void
parse_line(struct parser *p, char *s, int line)
{
	char *eq, *key, *value;
	size_t i;

	s = str_trim(s);
	if (*s == '\0' || *s == ';' || *s == '#')
		return;
	if (*s == '[') {
		cut_comment(s);
		parse_section(p, str_trim(s), line);
		return;
	}
	if ((eq = strchr(s, '=')) == NULL) {
		perr(p, line, "expected 'key = value', got '%.40s'", s);
		return;
	}
	*eq = '\0';
	key = str_trim(s);
	value = eq + 1;
	cut_comment(value);
	value = str_trim(value);
	if (p->section[0] == '\0') {
		perr(p, line, "'%.40s' is outside any section", key);
		return;
	}
	if (*key == '\0') {
		perr(p, line, "missing key before '='");
		return;
	}
	if (!p->section_ok)
		return;		/* the bad section was already reported */
	if (!value_printable(value)) {
		perr(p, line, "%.40s: control characters in value", key);
		return;
	}
	for (i = 0; i < nitems(keys); i++)
		if (!strcmp(keys[i].section, p->section) &&
		    !strcmp(keys[i].key, key))
			break;
	if (i == nitems(keys)) {
		perr(p, line, "unknown key '%.40s' in [%s]", key, p->section);
		return;
	}
	if (p->seen_line[i]) {
		perr(p, line, "%s repeated (first at line %d)", key,
		    p->seen_line[i]);
		return;
	}
	p->seen_line[i] = line;
	if (keys[i].owner == OWN_CFG)
		p->cfg_line[i] = line;
	set_value(p, &keys[i], value, line);
}

static int
key_line(struct parser *p, const char *key)
{
	for (size_t i = 0; i < nitems(keys); i++)
		if (keys[i].owner == OWN_CFG && !strcmp(keys[i].key, key))
			return p->cfg_line[i];
	return 0;
}

/* The programs of t (command, hooks): see config_check_program. */
static void
validate_programs(struct parser *p, const struct target *t)
{
	const struct {
		const char	*key;
		char *const	*argv;
	} progs[] = {
		{ "command", t->command },
		{ "restore_command", t->restore_command },
		{ "pre_hook", t->pre_hook },
		{ "post_hook", t->post_hook },
		{ "on_failure_hook", t->on_failure_hook },
		{ "pre_restore_hook", t->pre_restore_hook },
		{ "post_restore_hook", t->post_restore_hook },
	};
	char *cause = NULL;

	if (t->user != NULL && getpwnam(t->user) == NULL) {
		perr(p, t->line, "[%s %s]: user '%s' does not exist",
		    config_kind_name(t->kind), t->name, t->user);
		return;
	}
	for (size_t i = 0; i < nitems(progs); i++) {
		if (progs[i].argv == NULL || progs[i].argv[0][0] != '/' ||
		    config_check_program(progs[i].argv, t->user, &cause) == 0)
			continue;
		perr(p, t->line, "[%s %s] %s: %s", config_kind_name(t->kind),
		    t->name, progs[i].key, cause);
		free(cause);
	}
}

static void
validate_script(struct parser *p, struct target *t)
{
	int backup = !strcmp(t->output, "backup");

	if (t->command == NULL)
		perr(p, t->line, "[script %s]: command is required", t->name);
	if (!backup && (t->restore_command != NULL || t->keep.set ||
	    t->remotes.n > 0))
		perr(p, t->line, "[script %s]: restore_command, keep and "
		    "remotes need output = backup (with output = log the "
		    "script's output is a log, not a backup)", t->name);
}

static void
validate_targets(struct parser *p)
{
	struct config *c = p->cfg;

	for (size_t i = 0; i < c->nremotes; i++)
		if (c->remotes[i].path == NULL)
			perr(p, c->remotes[i].line, "[remote %s]: path is "
			    "required", c->remotes[i].name);
	for (size_t i = 0; i < c->ntargets; i++) {
		struct target *t = &c->targets[i];

		for (size_t k = 0; k < t->remotes.n; k++)
			if (config_remote(c, t->remotes.v[k]) == NULL)
				perr(p, t->line, "[%s %s]: remote '%s' is not "
				    "defined (add a [remote %s] section)",
				    config_kind_name(t->kind), t->name,
				    t->remotes.v[k], t->remotes.v[k]);
		if (t->kind == TARGET_REDIS && t->url == NULL)
			perr(p, t->line, "[redis %s]: url is required",
			    t->name);
		if (t->kind == TARGET_REDIS && t->url != NULL &&
		    !str_startswith(t->url, "redis://") &&
		    !str_startswith(t->url, "rediss://") &&
		    !str_startswith(t->url, "unix://"))
			perr(p, t->line, "[redis %s]: url '%s' must start with "
			    "redis://, rediss:// or unix://", t->name, t->url);
		if (t->kind == TARGET_MEDIA) {
			if (t->source == NULL)
				perr(p, t->line, "[media %s]: source is "
				    "required", t->name);
			if (t->destinations.n == 0)
				perr(p, t->line, "[media %s]: destinations is "
				    "required", t->name);
			if (t->remotes.n > 0 || t->keep.set)
				perr(p, t->line, "[media %s]: keep and remotes "
				    "do not apply (only the latest copy is kept "
				    "at each destination)", t->name);
		}
		if (checks != NULL && checks->check_target != NULL) {
			char *cause = NULL;

			if (checks->check_target(t, &cause) == -1)
				perr(p, t->line, "[%s %s]: %s",
				    config_kind_name(t->kind), t->name, cause);
			free(cause);
		}
		if (t->kind == TARGET_SCRIPT)
			validate_script(p, t);
		if (t->workdir != NULL && t->workdir[0] != '/')
			perr(p, t->line, "[%s %s]: workdir '%s' must be an "
			    "absolute path", config_kind_name(t->kind), t->name,
			    t->workdir);
		if (p->check_files)
			validate_programs(p, t);
		if (t->kind == TARGET_FILES && t->paths.n == 0)
			perr(p, t->line, "[files %s]: paths is required",
			    t->name);
		if (t->kind == TARGET_POSTGRES) {
			if (t->conninfo == NULL)
				perr(p, t->line, "[postgres %s]: conninfo is "
				    "required", t->name);
			if (t->jobs > 1 && strcmp(t->format, "directory") != 0)
				perr(p, t->line, "[postgres %s]: jobs needs "
				    "format = directory", t->name);
		}
	}
	for (size_t i = 0; i < c->ntargets; i++) {
		struct target *t = &c->targets[i];

		if (t->healthcheck_url != NULL &&
		    !str_startswith(t->healthcheck_url, "https://") &&
		    !str_startswith(t->healthcheck_url, "http://"))
			perr(p, t->line, "[%s %s]: healthcheck_url must start "
			    "with https:// or http://", config_kind_name(t->kind),
			    t->name);
	}
	if (c->report_room != NULL) {
		size_t k;

		for (k = 0; k < c->rooms.n; k++)
			if (!strcmp(c->rooms.v[k], c->report_room))
				break;
		if (k == c->rooms.n)
			perr(p, key_line(p, "report_room"), "report_room: '%s' "
			    "is not one of [matrix] rooms", c->report_room);
	}
	if (c->metrics_file != NULL && c->metrics_file[0] != '/')
		perr(p, key_line(p, "metrics_file"), "metrics_file: '%s' must "
		    "be an absolute path", c->metrics_file);
	if (c->rclone_config != NULL && c->rclone_config[0] != '/')
		perr(p, key_line(p, "rclone_config"), "rclone_config: '%s' "
		    "must be an absolute path", c->rclone_config);
}


static void
validate(struct parser *p)
{
	struct config *c = p->cfg;
	size_t i;

	if (c->homeserver == NULL)
		perr(p, 0, "[matrix] homeserver is required");
	else if (!str_startswith(c->homeserver, "https://") &&
	    !str_startswith(c->homeserver, "http://"))
		perr(p, key_line(p, "homeserver"), "homeserver: '%s' must "
		    "start with https:// (or http:// for a local server)",
		    c->homeserver);
	if (c->user_id == NULL)
		perr(p, 0, "[matrix] user_id is required");
	else if (c->user_id[0] != '@' || strchr(c->user_id, ':') == NULL)
		perr(p, key_line(p, "user_id"), "user_id: '%s' is not a "
		    "Matrix user id (@name:server)", c->user_id);
	if (c->access_token_file == NULL && c->password_file == NULL)
		perr(p, 0, "[matrix] access_token_file or password_file is "
		    "required");
	if (c->access_token_file != NULL && c->password_file != NULL)
		perr(p, key_line(p, "password_file"), "password_file: set "
		    "either access_token_file or password_file, not both");
	if (c->rooms.n == 0)
		perr(p, 0, "[matrix] rooms is required");
	/* room version 12 ids have no server part: !opaque */
	for (i = 0; i < c->rooms.n; i++)
		if (!(c->rooms.v[i][0] == '!' && c->rooms.v[i][1] != '\0') &&
		    !(c->rooms.v[i][0] == '#' && strchr(c->rooms.v[i], ':')))
			perr(p, key_line(p, "rooms"), "rooms: '%s' is neither "
			    "a room id (!id:server, or !id from room version "
			    "12) nor an alias (#name:server)", c->rooms.v[i]);
	if (c->admins.n == 0)
		perr(p, 0, "[matrix] admins is required (nobody could "
		    "command the bot)");
	for (i = 0; i < c->admins.n; i++)
		if (c->admins.v[i][0] != '@' ||
		    strchr(c->admins.v[i], ':') == NULL)
			perr(p, key_line(p, "admins"), "admins: '%s' is not a "
			    "Matrix user id (@name:server)", c->admins.v[i]);
	if (strlen(c->command_prefix) > 16 ||
	    strpbrk(c->command_prefix, " \t") != NULL)
		perr(p, key_line(p, "command_prefix"), "command_prefix: at "
		    "most 16 characters without spaces");
	if (c->state_dir[0] != '/')
		perr(p, key_line(p, "state_dir"), "state_dir: '%s' must be "
		    "an absolute path", c->state_dir);
	if (c->backup_dir[0] != '/')
		perr(p, key_line(p, "backup_dir"), "backup_dir: '%s' must be "
		    "an absolute path", c->backup_dir);
	validate_targets(p);
}

static void
set_defaults(struct config *c)
{
	c->command_prefix = xstrdup("!");
	c->min_power_level = -1;
	c->backlog_max_age = 300;
	c->sync_timeout = 30;
	c->tls_verify = 1;
	c->state_dir = xstrdup("/var/lib/backupbot");
	c->backup_dir = xstrdup("/var/backups/backupbot");
	c->device_name = xstrdup("backupbot");
	c->e2ee_trust = xstrdup("tofu");
	c->rclone = xstrdup("rclone");
	c->max_parallel_jobs = 2;
	c->job_timeout = 12 * 3600;
	c->approvals_required = 1;
	c->summary_schedule = xstrdup("0 9 * * 1");
	c->alert_repeat = 6 * 3600;
	c->approval_timeout = 15 * 60;
}

static void
target_defaults(struct target *t, enum target_kind kind)
{
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->format = xstrdup("custom");
	t->jobs = 1;
	t->compression = xstrdup("zstd");
	t->level = 3;
	t->threads = 0;
	t->pg_dump = xstrdup("pg_dump");
	t->pg_restore = xstrdup("pg_restore");
	t->mode = xstrdup("auto");
	t->tls_verify = 1;
	t->redis_cli = xstrdup("redis-cli");
	t->restore_jobs = 2;
	t->catch_up = 1;
	t->retries = 2;
	t->retry_delay = 30 * 60;
	t->redis_server = xstrdup("redis-server");
	t->output = xstrdup("log");
	t->hook_timeout = 10 * 60;
	t->pgbackrest = xstrdup("pgbackrest");
}

static void
free_fields(char *base, enum owner owner)
{
	for (size_t i = 0; i < nitems(keys); i++) {
		char *field = base + keys[i].offset;
		size_t k;

		if (keys[i].owner != owner)
			continue;
		/* Kinds share fields (keep, remotes...): free each once. */
		for (k = 0; k < i; k++)
			if (keys[k].owner == owner &&
			    keys[k].offset == keys[i].offset)
				break;
		if (k < i)
			continue;
		switch (keys[i].type) {
		case K_STRING: case K_SECRET: case K_ENUM: case K_KEEP:
		case K_CONNINFO: case K_CRON: case K_TZ:
			free(*(char **)field);
			break;
		case K_LIST:
			strlist_release((struct strlist *)field);
			break;
		case K_ARGV:
			strv_free(*(char ***)field);
			break;
		default:
			break;
		}
	}
}

struct target *
config_target(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ntargets; i++)
		if (!strcmp(cfg->targets[i].name, name))
			return &cfg->targets[i];
	return NULL;
}

struct remote *
config_remote(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nremotes; i++)
		if (!strcmp(cfg->remotes[i].name, name))
			return &cfg->remotes[i];
	return NULL;
}


struct config *
config_parse(const char *name, const char *text, size_t len, int check_files,
    struct config_errors *errs)
{
	struct parser p;
	const char *s = text, *end = text + len;
	int line = 0;

	memset(&p, 0, sizeof(p));
	memset(errs, 0, sizeof(*errs));
	p.name = name;
	p.errs = errs;
	p.check_files = check_files;
	p.cfg = xcalloc(1, sizeof(*p.cfg));
	p.cfg->path = xstrdup(name);
	set_defaults(p.cfg);

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		char *l;

		line++;
		if (memchr(s, '\0', n) != NULL) {
			perr(&p, line, "NUL byte in line");
		} else if (n > 4096) {
			perr(&p, line, "line longer than 4096 bytes");
		} else {
			l = xstrndup(s, n);
			parse_line(&p, l, line);
			free(l);
		}
		s += n + (nl != NULL);
	}
	validate(&p);
	if (errs->n > 0) {
		config_free(p.cfg);
		return NULL;
	}
	return p.cfg;
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
	struct config *cfg;
	size_t len;
	char *text;

	memset(errs, 0, sizeof(*errs));
	if ((text = file_read(path, 1024 * 1024, &len)) == NULL) {
		errs->msg = xmalloc(sizeof(*errs->msg));
		errs->msg[0] = xasprintf("%s: %s", path, strerror(errno));
		errs->n = 1;
		return NULL;
	}
	cfg = config_parse(path, text, len, 1, errs);
	free(text);
	return cfg;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free_fields((char *)c, OWN_CFG);
	for (size_t i = 0; i < c->ntargets; i++) {
		free_fields((char *)&c->targets[i], OWN_TARGET);
		free(c->targets[i].name);
	}
	free(c->targets);
	for (size_t i = 0; i < c->nremotes; i++) {
		free_fields((char *)&c->remotes[i], OWN_REMOTE);
		free(c->remotes[i].name);
	}
	free(c->remotes);
	free(c->path);
	free(c);
}

void
config_errors_release(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	memset(errs, 0, sizeof(*errs));
}

int
config_is_admin(const struct config *cfg, const char *mxid)
{
	for (size_t i = 0; i < cfg->admins.n; i++)
		if (!strcmp(cfg->admins.v[i], mxid))
			return 1;
	return 0;
}

int
config_records_runs(const struct target *t)
{
	return t->kind == TARGET_MEDIA || t->kind == TARGET_PGBACKREST ||
	    (t->kind == TARGET_SCRIPT && strcmp(t->output, "backup") != 0);
}

/*
 * Owned by root, us, or the user it runs as (uid; -1: none), and not
 * writable by group or others (0 / -1).
 */
static int
check_owner(const char *what, const char *path, const struct stat *st,
    int sticky_ok, uid_t uid, char **cause)
{
	if (st->st_uid != 0 && st->st_uid != geteuid() && st->st_uid != uid) {
		*cause = xasprintf("%s %s belongs to uid %u: it must belong to "
		    "root or to the user backupbot runs as (uid %u)%s", what,
		    path, (unsigned)st->st_uid, (unsigned)geteuid(),
		    uid != (uid_t)-1 ? " or to the target's user" : "");
		return -1;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) &&
	    !(sticky_ok && (st->st_mode & S_ISVTX))) {
		*cause = xasprintf("%s %s is writable by %s (mode %04o): "
		    "anyone who can change it runs code as backupbot (chmod "
		    "go-w %s)", what, path, (st->st_mode & S_IWOTH) ?
		    "everyone" : "its group", (unsigned)(st->st_mode & 07777),
		    path);
		return -1;
	}
	return 0;
}

static int
check_one_program(const char *path, uid_t uid, char **cause)
{
	struct stat st;
	char *copy, *dir;
	int r;

	if (stat(path, &st) == -1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		*cause = xasprintf("%s is not an executable file", path);
		return -1;
	}
	if (check_owner("the program", path, &st, 0, uid, cause) == -1)
		return -1;
	copy = xstrdup(path);
	dir = dirname(copy);
	if (stat(dir, &st) == -1) {
		*cause = xasprintf("%s: %s", dir, strerror(errno));
		r = -1;
	} else
		r = check_owner("the directory", dir, &st, 1, uid, cause);
	free(copy);
	return r;
}

int
config_check_program(char *const *argv, const char *user, char **cause)
{
	struct passwd *pw;
	uid_t uid = (uid_t)-1;

	*cause = NULL;
	if (user != NULL) {
		if ((pw = getpwnam(user)) == NULL) {
			*cause = xasprintf("user %s does not exist", user);
			return -1;
		}
		uid = pw->pw_uid;
	}
	if (argv == NULL || argv[0] == NULL || argv[0][0] != '/') {
		*cause = xstrdup("the program must be an absolute path");
		return -1;
	}
	if (check_one_program(argv[0], uid, cause) == -1)
		return -1;
	for (size_t i = 1; argv[i] != NULL; i++) {
		struct stat st;

		if (argv[i][0] == '/' && stat(argv[i], &st) == 0 &&
		    S_ISREG(st.st_mode) && (st.st_mode & 0111) &&
		    check_one_program(argv[i], uid, cause) == -1)
			return -1;
	}
	return 0;
}
