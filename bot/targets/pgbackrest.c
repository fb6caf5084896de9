/*
 * pgbackrest.c - the backend of [pgbackrest NAME] targets (pgbackrest.h):
 * runs pgBackRest and pg_ctl in a job child.  The pure half (checks and
 * parsers) is pgbackrest_parse.c.
 *
 * Why one pgBackRest run per repository: `pgbackrest backup` writes to one
 * repository per invocation (repo1 when none is named), so each configured
 * repository ("geography") gets its own run, its own outcome and its own
 * line in the summary; one failing leaves the others good (partial).
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "backend.h"
#include "config.h"
#include "json.h"
#include "pg.h"
#include "pgbackrest.h"
#include "proc.h"
#include "util.h"

#define PGBR_POLL_MS	200
#define PGBR_TICK_MS	1000
#define PGBR_TERM_MS	10000
#define PGBR_INFO_MAX	(16u << 20)
#define PGBR_LINES	6
/* the line with pgBackRest's own duration of a backup, in ms */
#define PGBR_END	"backup command end: completed successfully ("

/* ---- running pgBackRest and pg_ctl ------------------------------------ */

/* Who runs the tools: the owner of the data directory. */
struct pgbr_user {
	char	name[64];
	uid_t	uid;
	gid_t	gid;
	int	runuser;	/* we are root: start them through runuser */
};

static int
pgbr_owner(const struct target *t, struct pgbr_user *u, char **cause)
{
	struct passwd *pw;
	struct stat st;

	memset(u, 0, sizeof(*u));
	if (stat(t->pg_data, &st) == -1) {
		*cause = xasprintf("pg_data %s: %s", t->pg_data,
		    strerror(errno));
		return -1;
	}
	if ((pw = getpwuid(st.st_uid)) == NULL ||
	    strlen(pw->pw_name) >= sizeof(u->name) ||
	    strspn(pw->pw_name, "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
	    strlen(pw->pw_name)) {
		*cause = xasprintf("pg_data %s: its owner (uid %u) has no "
		    "usable user name", t->pg_data, (unsigned)st.st_uid);
		return -1;
	}
	memcpy(u->name, pw->pw_name, strlen(pw->pw_name) + 1);
	u->uid = st.st_uid;
	u->gid = st.st_gid;
	u->runuser = geteuid() == 0 && st.st_uid != 0;
	return 0;
}

/* A growing NULL-terminated argv of owned strings. */
struct pgbr_argv {
	char	**v;
	size_t	  n;
};

static void
pgbr_add(struct pgbr_argv *a, char *s)
{
	a->v = xrealloc(a->v, (a->n + 2) * sizeof(*a->v));
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void
pgbr_argv_free(struct pgbr_argv *a)
{
	strv_free(a->v);
	a->v = NULL;
	a->n = 0;
}

/* The start of every command: [runuser -u OWNER --] TOOL */
static void
pgbr_as(struct pgbr_argv *a, const struct pgbr_user *u, const char *tool)
{
	if (u->runuser) {
		pgbr_add(a, xstrdup("runuser"));
		pgbr_add(a, xstrdup("-u"));
		pgbr_add(a, xstrdup(u->name));
		pgbr_add(a, xstrdup("--"));
	}
	pgbr_add(a, xstrdup(tool));
}

/* pgbackrest --config=C --stanza=S */
static void
pgbr_base(struct pgbr_argv *a, const struct target *t,
    const struct pgbr_user *u)
{
	pgbr_as(a, u, t->pgbackrest);
	if (t->pgbackrest_config != NULL)
		pgbr_add(a, xasprintf("--config=%s", t->pgbackrest_config));
	pgbr_add(a, xasprintf("--stanza=%s", t->stanza));
}

/* One run of a tool: its output read line by line. */
struct pgbr_run {
	struct job_ctx	*ctx;
	const char	*phase;		/* progress phase, or NULL */
	char		 line[1024];
	size_t		 len;
	double		 pct;
	char		*label;		/* "new backup label = " */
	double		 tool_ms;	/* its own "completed successfully (Nms)" */
	struct tail	 out;		/* the last lines of stdout */
	struct tail	 err;
	char		*keep;		/* all of stdout when keep_cap > 0 */
	size_t		 kept, keep_cap;
	int		 overflow;
	int		 status;
	int		 stopped;
	int		 runuser;	/* started through runuser */
};

static void
pgbr_line(struct pgbr_run *r)
{
	double pct;
	char *label, *p;

	r->line[r->len] = '\0';
	if (pgbackrest_progress_line(r->line, &pct) == 0 && pct >= r->pct)
		r->pct = pct;
	if ((p = strstr(r->line, PGBR_END)) != NULL)
		r->tool_ms = strtod(p + strlen(PGBR_END), NULL);
	if ((label = pgbackrest_label_line(r->line)) != NULL) {
		free(r->label);
		r->label = label;
	}
	r->len = 0;
}

static int
pgbr_out(void *arg, const unsigned char *data, size_t n)
{
	struct pgbr_run *r = arg;

	tail_add(&r->out, (const char *)data, n);
	if (r->keep_cap > 0) {
		if (r->kept + n > r->keep_cap)
			r->overflow = 1;
		else {
			r->keep = xrealloc(r->keep, r->kept + n + 1);
			memcpy(r->keep + r->kept, data, n);
			r->kept += n;
			r->keep[r->kept] = '\0';
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n' || r->len == sizeof(r->line) - 1)
			pgbr_line(r);
		if (data[i] != '\n')
			r->line[r->len++] = (char)data[i];
	}
	return 0;
}

static int
pgbr_stop(void *arg)
{
	struct pgbr_run *r = arg;

	return *r->ctx->cancelled != 0;
}

static void
pgbr_tick(void *arg)
{
	struct pgbr_run *r = arg;

	if (r->phase != NULL)
		backend_progress(r->ctx, r->phase, (uint64_t)(r->pct * 100),
		    10000);
}

static void
pgbr_run_release(struct pgbr_run *r)
{
	free(r->label);
	free(r->keep);
}

/*
 * Run argv to its end in its own process group; 0 when it ran (see
 * r->status, r->stopped), -1 with *cause when it could not start.
 */
static int
pgbr_exec(struct job_ctx *ctx, const struct pgbr_argv *a, struct pgbr_run *r,
    char **cause)
{
	struct pump pm = { pgbr_out, pgbr_stop, pgbr_tick, r, PGBR_TICK_MS,
	    PGBR_POLL_MS, &r->err, NULL, NULL };
	struct proc p;
	char *why = NULL;

	r->ctx = ctx;
	r->runuser = !strcmp(a->v[0], "runuser");
	if (proc_spawn(&p, (const char *const *)a->v, NULL, PROC_STDOUT |
	    PROC_STDERR | PROC_NEWGROUP, cause) == -1)
		return -1;
	r->stopped = proc_pump(&p, &pm, &why) != 0;
	free(why);
	if (r->len > 0)
		pgbr_line(r);
	if (r->stopped) {
		kill(-p.pid, SIGTERM);
		proc_reap(&p, PGBR_TERM_MS, &r->status);
	} else if (proc_wait(&p, &r->status) == -1) {
		*cause = xasprintf("waiting for %s: %s", a->v[0],
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Why a run failed (what, its exit, its last lines), or NULL if it did not. */
static char *
pgbr_failure(struct pgbr_run *r, const char *what)
{
	char *st, *c;
	const char *err;

	if (r->stopped)
		return xasprintf("%s: cancelled", what);
	if (proc_ok(r->status))
		return NULL;
	/* through runuser, a signal is an exit status of 128 + signal */
	if (r->runuser && WIFEXITED(r->status) && WEXITSTATUS(r->status) > 128 &&
	    WEXITSTATUS(r->status) < 128 + NSIG)
		st = xasprintf("killed by signal %d (%s)",
		    WEXITSTATUS(r->status) - 128,
		    strsignal(WEXITSTATUS(r->status) - 128));
	else
		st = proc_status_text(r->status);
	err = tail_text(&r->err, PGBR_LINES);
	if (*err == '\0')
		err = tail_text(&r->out, PGBR_LINES);
	c = xasprintf("%s %s%s%s", what, st, *err ? ": " : "", err);
	free(st);
	return c;
}

/* Run a whole command; 0, or -1 with *cause (its failure). */
static int
pgbr_simple(struct job_ctx *ctx, struct pgbr_argv *a, const char *what,
    struct pgbr_run *r, char **cause)
{
	int rc = -1;

	if (pgbr_exec(ctx, a, r, cause) == 0 &&
	    (*cause = pgbr_failure(r, what)) == NULL)
		rc = 0;
	pgbr_argv_free(a);
	return rc;
}

/* `pgbackrest info --output=json`, summarised; NULL with *cause. */
static cJSON *
pgbr_info(struct job_ctx *ctx, const struct pgbr_user *u, char **cause)
{
	struct pgbr_argv a = { NULL, 0 };
	struct pgbr_run r;
	cJSON *sum = NULL;

	memset(&r, 0, sizeof(r));
	r.keep_cap = PGBR_INFO_MAX;
	pgbr_base(&a, ctx->target, u);
	pgbr_add(&a, xstrdup("--output=json"));
	pgbr_add(&a, xstrdup("--log-level-console=warn"));
	pgbr_add(&a, xstrdup("info"));
	if (pgbr_simple(ctx, &a, "pgbackrest info", &r, cause) == 0) {
		if (r.overflow)
			*cause = xstrdup("pgbackrest info: more output than "
			    "backupbot reads");
		else
			sum = pgbackrest_info_summary(r.keep ? r.keep : "",
			    r.kept, ctx->target->stanza, cause);
	}
	pgbr_run_release(&r);
	return sum;
}

/* ---- backup ----------------------------------------------------------- */

static int
pgbr_sync(struct job_ctx *ctx, cJSON *manifest, char **cause)
{
	const struct target *t = ctx->target;
	const char *type = ctx->backup_type;
	const char *one[] = { "1" };
	const char *const *repos = t->repos.n > 0 ?
	    (const char *const *)t->repos.v : one;
	size_t nrepos = t->repos.n > 0 ? t->repos.n : 1, good = 0;
	struct pgbr_user u;
	cJSON *out, *sum;
	char *why = NULL;
	int full = 0, diff = 0;

	if (pgbr_owner(t, &u, cause) == -1)
		return -1;
	if (t->pgbackrest_keep != NULL && pgbackrest_keep_parse(
	    t->pgbackrest_keep, &full, &diff, cause) == -1)
		return -1;
	if (type != NULL && !pgbackrest_valid_type(type)) {
		*cause = xasprintf("backup type '%s' is not full, diff or "
		    "incr", type);
		return -1;
	}
	backend_fact(manifest, "type", cJSON_CreateString(type ? type :
	    "incr"));
	out = cJSON_AddObjectToObject(manifest, "repos");
	for (size_t i = 0; i < nrepos && !*ctx->cancelled; i++) {
		struct pgbr_argv a = { NULL, 0 };
		struct pgbr_run r;
		char *name = xasprintf("repo%s", repos[i]);
		cJSON *st = cJSON_AddObjectToObject(out, name);
		int64_t t0 = mono_ms();

		memset(&r, 0, sizeof(r));
		r.phase = name;
		pgbr_base(&a, t, &u);
		pgbr_add(&a, xasprintf("--pg1-path=%s", t->pg_data));
		pgbr_add(&a, xasprintf("--repo=%s", repos[i]));
		if (type != NULL)
			pgbr_add(&a, xasprintf("--type=%s", type));
		if (full > 0)
			pgbr_add(&a, xasprintf("--repo%s-retention-full=%d",
			    repos[i], full));
		if (diff > 0)
			pgbr_add(&a, xasprintf("--repo%s-retention-diff=%d",
			    repos[i], diff));
		pgbr_add(&a, xstrdup("--log-level-console=detail"));
		pgbr_add(&a, xstrdup("backup"));
		backend_log(ctx, "info", "pgbackrest backup to %s", name);
		backend_progress(ctx, name, 0, 10000);
		why = NULL;
		if (pgbr_simple(ctx, &a, "pgbackrest backup", &r, &why) == 0) {
			cJSON_AddStringToObject(st, "status", "ok");
			if (r.label != NULL)
				cJSON_AddStringToObject(st, "label", r.label);
			good++;
		} else {
			cJSON_AddStringToObject(st, "status", "failed");
			cJSON_AddStringToObject(st, "error", why);
			backend_log(ctx, "warning", "%s: %s", name, why);
		}
		free(why);
		cJSON_AddNumberToObject(st, "duration",
		    (double)(mono_ms() - t0) / 1000.0);
		/* what pgBackRest itself says it took: the rest is ours */
		if (r.tool_ms > 0 && r.tool_ms < 1e10)
			cJSON_AddNumberToObject(st, "pgbackrest_duration",
			    r.tool_ms / 1000.0);
		pgbr_run_release(&r);
		free(name);
	}
	/* What pgBackRest now has: the sizes, and what !list shows. */
	why = NULL;
	if ((sum = pgbr_info(ctx, &u, &why)) != NULL) {
		const cJSON *it;
		double bytes = 0, delta = 0;

		cJSON_ArrayForEach(it, out) {
			const cJSON *set = pgbackrest_set_find(sum,
			    json_text(it, "label"));

			if (set == NULL)
				continue;
			cJSON_AddStringToObject((cJSON *)it, "type",
			    json_text(set, "type"));
			cJSON_AddNumberToObject((cJSON *)it, "size",
			    json_num(set, "size"));
			cJSON_AddNumberToObject((cJSON *)it, "delta",
			    json_num(set, "delta"));
			cJSON_AddNumberToObject((cJSON *)it, "repo_size",
			    json_num(set, "repo_size"));
			bytes = json_num(set, "size");
			delta = json_num(set, "delta");
			backend_fact(manifest, "type", cJSON_CreateString(
			    json_text(set, "type")));
		}
		backend_fact(manifest, "bytes", cJSON_CreateNumber(bytes));
		backend_fact(manifest, "delta", cJSON_CreateNumber(delta));
		backend_fact(manifest, "info", sum);
	} else if (good > 0) {
		cJSON *w = cJSON_CreateArray();

		cJSON_AddItemToArray(w, cJSON_CreateString(why));
		backend_fact(manifest, "warnings", w);
	}
	if (good == nrepos && !*ctx->cancelled) {
		free(why);
		return 0;
	}
	if (good > 0 && !*ctx->cancelled) {
		free(why);
		return 1;
	}
	free(why);
	{
		const cJSON *it;

		cJSON_ArrayForEach(it, out)
			if (*json_text(it, "error")) {
				*cause = xasprintf("%s: %s", it->string,
				    json_text(it, "error"));
				break;
			}
	}
	if (*cause == NULL)
		*cause = xstrdup(*ctx->cancelled ? "cancelled" :
		    "no repository was backed up");
	return -1;
}

/* ---- probe: the WAL archive ------------------------------------------- */

static PGconn *
pgbr_connect(const char *conninfo, const char *host, int port,
    const char *user, const char *db, char **cause)
{
	const char *keys[8], *vals[8];
	char portbuf[16];
	PGconn *c;
	int n = 0;

	keys[n] = "connect_timeout";
	vals[n++] = "10";
	keys[n] = "application_name";
	vals[n++] = "backupbot";
	if (conninfo != NULL) {
		keys[n] = "dbname";
		vals[n++] = conninfo;
	}
	if (host != NULL) {
		snprintf(portbuf, sizeof(portbuf), "%d", port);
		keys[n] = "host";
		vals[n++] = host;
		keys[n] = "port";
		vals[n++] = portbuf;
		keys[n] = "user";
		vals[n++] = user;
	}
	if (db != NULL) {
		keys[n] = "dbname";
		vals[n++] = db;
	}
	keys[n] = vals[n] = NULL;
	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		const char *m = c ? PQerrorMessage(c) : "out of memory";

		*cause = xasprintf("cannot connect to PostgreSQL: %.*s",
		    (int)strcspn(m, "\n"), m);
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* One row of text values, or NULL with *cause. */
static PGresult *
pgbr_query(PGconn *c, const char *sql, int nparams, const char *const *p,
    char **cause)
{
	PGresult *res = PQexecParams(c, sql, nparams, NULL, p, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		const char *m = PQresultErrorMessage(res);

		*cause = xasprintf("%.*s", (int)strcspn(m, "\n"), *m ? m :
		    "no row");
		PQclear(res);
		return NULL;
	}
	return res;
}

static void
pgbr_probe_archiver(const struct target *t, cJSON *out)
{
	static const char *const names[] = { "archived_count",
	    "last_archived_wal", "last_archived_age", "failed_count",
	    "last_failed_wal", "last_failed_age", "archive_mode" };
	cJSON *a = cJSON_AddObjectToObject(out, "archiver");
	char *why = NULL;
	PGresult *res;
	PGconn *c;

	if ((c = pgbr_connect(t->pg_conninfo, NULL, 0, NULL, NULL,
	    &why)) == NULL) {
		cJSON_AddStringToObject(a, "error", why);
		free(why);
		return;
	}
	res = pgbr_query(c, "SELECT archived_count, last_archived_wal, "
	    "extract(epoch FROM now() - last_archived_time)::bigint, "
	    "failed_count, last_failed_wal, "
	    "extract(epoch FROM now() - last_failed_time)::bigint, "
	    "current_setting('archive_mode') FROM pg_stat_archiver", 0, NULL,
	    &why);
	if (res == NULL) {
		cJSON_AddStringToObject(a, "error", why);
		free(why);
	} else {
		for (int i = 0; i < 7; i++) {
			const char *v = PQgetvalue(res, 0, i);
			long long ll;

			if (PQgetisnull(res, 0, i))
				continue;
			if (i == 1 || i == 4 || i == 6)
				cJSON_AddStringToObject(a, names[i], v);
			else if (str_to_ll(v, 0, INT64_MAX, &ll) == 0)
				cJSON_AddNumberToObject(a, names[i],
				    (double)ll);
		}
		PQclear(res);
	}
	PQfinish(c);
}

static int
pgbr_probe(struct job_ctx *ctx, cJSON *out, char **cause)
{
	const struct target *t = ctx->target;
	struct pgbr_argv a = { NULL, 0 };
	struct pgbr_run r;
	struct pgbr_user u;
	char *why = NULL;
	cJSON *sum;

	if (pgbr_owner(t, &u, cause) == -1)
		return -1;
	if (t->pg_conninfo != NULL)
		pgbr_probe_archiver(t, out);
	/* check: the archive_command works, the repos are reachable */
	memset(&r, 0, sizeof(r));
	pgbr_base(&a, t, &u);
	pgbr_add(&a, xasprintf("--pg1-path=%s", t->pg_data));
	pgbr_add(&a, xstrdup("--archive-timeout=10"));
	pgbr_add(&a, xstrdup("--log-level-console=warn"));
	pgbr_add(&a, xstrdup("check"));
	if (pgbr_simple(ctx, &a, "pgbackrest check", &r, &why) == 0)
		cJSON_AddStringToObject(out, "check", "ok");
	else {
		cJSON_AddStringToObject(out, "check", why);
		free(why);
		why = NULL;
	}
	pgbr_run_release(&r);
	if ((sum = pgbr_info(ctx, &u, &why)) != NULL) {
		cJSON_AddNumberToObject(out, "sets", cJSON_GetArraySize(
		    cJSON_GetObjectItem(sum, "sets")));
		cJSON_AddNumberToObject(out, "latest", json_num(sum, "latest"));
		cJSON_Delete(sum);
	} else {
		cJSON_AddStringToObject(out, "info_error", why);
		free(why);
	}
	return 0;
}

/* The set a restore of id would use, for the plan (job check). */
int
pgbackrest_job_check(struct job_ctx *ctx, const char *id, cJSON *result,
    char **cause)
{
	const cJSON *set;
	struct pgbr_user u;
	cJSON *sum;

	if (pgbr_owner(ctx->target, &u, cause) == -1)
		return -1;
	if ((sum = pgbr_info(ctx, &u, cause)) == NULL)
		return -1;
	set = strcmp(id, "latest") ? pgbackrest_set_find(sum, id) :
	    pgbackrest_set_before(sum, 0);
	if (set == NULL) {
		*cause = strcmp(id, "latest") ? xasprintf("pgBackRest has no "
		    "backup set %s for stanza %s", id, ctx->target->stanza) :
		    xasprintf("pgBackRest has no backup of stanza %s yet",
		    ctx->target->stanza);
		cJSON_Delete(sum);
		return -1;
	}
	cJSON_AddStringToObject(result, "id", id);
	cJSON_AddStringToObject(result, "set", json_text(set, "label"));
	cJSON_AddNumberToObject(result, "started", json_num(set, "start"));
	cJSON_AddNumberToObject(result, "bytes", json_num(set, "size"));
	cJSON_AddNumberToObject(result, "earliest", json_num(sum, "earliest"));
	cJSON_AddNumberToObject(result, "latest", json_num(sum, "latest"));
	{
		char *loc = xasprintf("repo%.0f", json_num(set, "repo"));

		cJSON_AddStringToObject(result, "location", loc);
		free(loc);
	}
	cJSON_Delete(sum);
	return 0;
}

/* ---- restore ---------------------------------------------------------- */

/* The directory with pg_ctl for the cluster at data. */
static char *
pgbr_bindir(const struct target *t, const char *data)
{
	char *path, *text, *dir;
	size_t len;
	long long major;

	if (t->pg_bindir != NULL)
		return xstrdup(t->pg_bindir);
	path = xasprintf("%s/PG_VERSION", data);
	text = file_read(path, 64, &len);
	free(path);
	if (text != NULL) {
		text[strcspn(text, "\n")] = '\0';
		if (str_to_ll(text, 9, 99, &major) == 0) {
			free(text);
			dir = xasprintf("/usr/lib/postgresql/%lld/bin", major);
			if (access(dir, X_OK) == 0)
				return dir;
			free(dir);
		} else
			free(text);
	}
	return NULL;	/* pg_ctl from PATH */
}

/* [runuser -u OWNER --] pg_ctl -D data ARGS... (NULL-terminated) */
static int
pgbr_pg_ctl(struct job_ctx *ctx, const struct pgbr_user *u, const char *data,
    char **cause, ...)
{
	struct pgbr_argv a = { NULL, 0 };
	struct pgbr_run r;
	char *dir = pgbr_bindir(ctx->target, data), *tool;
	const char *s;
	va_list ap;
	int rc;

	tool = dir ? xasprintf("%s/pg_ctl", dir) : xstrdup("pg_ctl");
	free(dir);
	pgbr_as(&a, u, tool);
	free(tool);
	pgbr_add(&a, xstrdup("-D"));
	pgbr_add(&a, xstrdup(data));
	va_start(ap, cause);
	while ((s = va_arg(ap, const char *)) != NULL)
		pgbr_add(&a, xstrdup(s));
	va_end(ap);
	memset(&r, 0, sizeof(r));
	rc = pgbr_simple(ctx, &a, "pg_ctl", &r, cause);
	pgbr_run_release(&r);
	return rc;
}

/* A free TCP port on loopback (the scratch cluster's socket name). */
static int
pgbr_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Write a file as the data directory's owner would: mode 0600, chowned. */
static int
pgbr_write_owned(const char *path, const char *text, int append,
    const struct pgbr_user *u, char **cause)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    (append ? O_APPEND : O_TRUNC), 0600);
	size_t n = strlen(text);

	if (fd == -1 || write(fd, text, n) != (ssize_t)n || fsync(fd) == -1 ||
	    (geteuid() == 0 && fchown(fd, u->uid, u->gid) == -1)) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return close(fd);
}

/*
 * A scratch cluster is only reachable on its own socket, trusted there
 * (the directory is the owner's, mode 0700), never archives into the
 * repositories, and does not collide with the live cluster's port.
 */
static int
pgbr_scratch_config(const char *dest, int port, const struct pgbr_user *u,
    char **cause)
{
	char *conf = xasprintf("%s/postgresql.conf", dest);
	char *hba = xasprintf("%s/backupbot_hba.conf", dest);
	char *autoconf = xasprintf("%s/postgresql.auto.conf", dest);
	char *over = xasprintf("\n# backupbot: a scratch copy\n"
	    "port = %d\nlisten_addresses = ''\n"
	    "unix_socket_directories = '%s'\nhba_file = '%s'\n"
	    "archive_mode = off\nhot_standby = on\n", port, dest, hba);
	int rc = -1;

	if (access(conf, F_OK) == -1 &&
	    pgbr_write_owned(conf, "", 0, u, cause) == -1)
		goto done;
	if (pgbr_write_owned(hba, "local all all trust\n", 0, u, cause) == -1)
		goto done;
	if (pgbr_write_owned(autoconf, over, 1, u, cause) == -1)
		goto done;
	rc = 0;
done:
	free(conf);
	free(hba);
	free(autoconf);
	free(over);
	return rc;
}

/*
 * Wait until the cluster in data left recovery (promoted); the
 * connection.  A server that stopped (recovery failed, or ended before
 * its target) is not waited for.
 */
static PGconn *
pgbr_wait_promoted(struct job_ctx *ctx, const char *data,
    const char *conninfo, const char *host, int port, const char *user,
    char **cause)
{
	int64_t deadline = mono_ms() + (int64_t)ctx->cfg->job_timeout * 1000;
	char *why = NULL, *pid = xasprintf("%s/postmaster.pid", data);

	for (;;) {
		PGconn *c = pgbr_connect(conninfo, host, port, user, "postgres",
		    &why);
		PGresult *res;

		if (c != NULL) {
			res = PQexec(c, "SELECT pg_is_in_recovery()");
			if (PQresultStatus(res) == PGRES_TUPLES_OK &&
			    PQntuples(res) == 1 &&
			    !strcmp(PQgetvalue(res, 0, 0), "f")) {
				PQclear(res);
				free(why);
				free(pid);
				return c;
			}
			PQclear(res);
			PQfinish(c);
		} else if (access(pid, F_OK) == -1) {
			*cause = xstrdup("the server stopped during recovery");
			free(why);
			free(pid);
			return NULL;
		}
		if (*ctx->cancelled || mono_ms() > deadline) {
			*cause = xasprintf("recovery did not end%s%s",
			    why ? ": " : "", why ? why : "");
			free(why);
			free(pid);
			return NULL;
		}
		free(why);
		why = NULL;
		backend_progress(ctx, "recovery", 0, 0);
		usleep(500 * 1000);
	}
}

/* Every database's tables counted; 0, or -1 with *cause. */
static int
pgbr_count(struct job_ctx *ctx, PGconn *c, const char *conninfo,
    const char *host, int port, const char *user, cJSON *result,
    char **cause)
{
	PGresult *dbs = PQexec(c, "SELECT datname FROM pg_database WHERE "
	    "datallowconn AND NOT datistemplate ORDER BY 1");
	cJSON *tables = cJSON_AddObjectToObject(result, "tables");
	int n = 0;

	if (PQresultStatus(dbs) != PGRES_TUPLES_OK) {
		*cause = xasprintf("listing databases: %s",
		    PQresultErrorMessage(dbs));
		PQclear(dbs);
		return -1;
	}
	for (int i = 0; i < PQntuples(dbs); i++) {
		const char *db = PQgetvalue(dbs, i, 0);
		cJSON *one = cJSON_CreateObject(), *it;
		PGconn *dc = pgbr_connect(conninfo, host, port, user, db,
		    cause);

		if (dc == NULL || pg_table_counts(ctx, dc, one, cause) == -1) {
			PQfinish(dc);
			cJSON_Delete(one);
			PQclear(dbs);
			return -1;
		}
		PQfinish(dc);
		cJSON_ArrayForEach(it, one) {
			char *k = xasprintf("%s.%s", db, it->string);

			cJSON_AddNumberToObject(tables, k, it->valuedouble);
			free(k);
			n++;
		}
		cJSON_Delete(one);
	}
	PQclear(dbs);
	cJSON_AddNumberToObject(result, "compared", n);
	return 0;
}

static void
pgbr_note(cJSON *result, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
pgbr_note(cJSON *result, const char *fmt, ...)
{
	cJSON *notes = cJSON_GetObjectItemCaseSensitive(result, "notes");
	va_list ap;
	char *s;

	if (notes == NULL)
		notes = cJSON_AddArrayToObject(result, "notes");
	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	cJSON_AddItemToArray(notes, cJSON_CreateString(s));
	free(s);
}

/* How far recovery went: the last replayed transaction, and the target. */
static int
pgbr_reached(PGconn *c, const char *target_time, cJSON *result,
    char **cause)
{
	const char *p[1] = { target_time };
	PGresult *res = pgbr_query(c, target_time != NULL ?
	    "SELECT pg_last_xact_replay_timestamp()::text, "
	    "pg_last_xact_replay_timestamp() <= $1::timestamptz" :
	    "SELECT pg_last_xact_replay_timestamp()::text, true",
	    target_time ? 1 : 0, target_time ? p : NULL, cause);

	if (res == NULL)
		return -1;
	if (!PQgetisnull(res, 0, 0))
		cJSON_AddStringToObject(result, "reached",
		    PQgetvalue(res, 0, 0));
	if (!PQgetisnull(res, 0, 1) && strcmp(PQgetvalue(res, 0, 1), "t")) {
		*cause = xasprintf("recovery replayed a transaction of %s, "
		    "after the target %s", PQgetvalue(res, 0, 0), target_time);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/*
 * What the server log says went wrong: its last FATAL or PANIC line, else
 * its last lines.
 */
static char *
pgbr_log_tail(const char *path)
{
	size_t len;
	char *text = file_read(path, 1 << 20, &len), *out, *p, *last = NULL;
	struct tail t;

	if (text == NULL)
		return xstrdup("");
	for (p = text; (p = strstr(p, "FATAL:  ")) != NULL; p++)
		last = p;
	if (last == NULL)
		last = strstr(text, "PANIC:  ");
	if (last != NULL) {
		out = xstrndup(last, strcspn(last, "\n"));
		free(text);
		return out;
	}
	memset(&t, 0, sizeof(t));
	tail_add(&t, text, len);
	out = xstrdup(tail_text(&t, 4));
	free(text);
	return out;
}

static int
pgbr_restore(struct job_ctx *ctx, const cJSON *record, const char *raw,
    const struct restore_opts *o, cJSON *result, char **cause)
{
	const struct target *t = ctx->target;
	/* a drill restores the newest set, whatever run record it is for */
	const char *set = o->drill ? NULL : ctx->id;
	struct pgbr_argv a = { NULL, 0 };
	struct pgbr_run r;
	struct pgbr_user u;
	char *dest = NULL, *log = NULL, *why = NULL, stamp[32];
	/* made: dest is ours to remove (never pg_data) */
	int port = -1, started = 0, made = 0, fresh, rc = -1;
	PGconn *c = NULL;
	struct tm tm;
	time_t now = time(NULL);

	(void)record;
	(void)raw;
	memset(&r, 0, sizeof(r));
	if (pgbr_owner(t, &u, cause) == -1)
		return -1;
	if (o->time != NULL && !pgbackrest_valid_time(o->time)) {
		*cause = xstrdup("--time is not a time like '2026-12-06 "
		    "14:32:00+00'");
		return -1;
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	/* made here: the owner's; found: left as the operator made it */
	fresh = access(t->restore_dir, F_OK) == -1;
	if (dir_make(t->restore_dir, 0700) == -1 || (fresh && geteuid() == 0 &&
	    chown(t->restore_dir, u.uid, u.gid) == -1)) {
		*cause = xasprintf("restore_dir %s: %s", t->restore_dir,
		    strerror(errno));
		return -1;
	}
	if (o->replace && !o->drill) {
		dest = xstrdup(t->pg_data);
		log = xasprintf("%s/%s-replace-%s.log", t->restore_dir, t->name,
		    stamp);
	} else {
		/* only a name from chat, and only under restore_dir */
		if (o->into != NULL && !config_valid_name(o->into)) {
			*cause = xstrdup("--into is a name (a-z, 0-9, _, -) "
			    "for a directory under restore_dir");
			return -1;
		}
		if (o->drill)
			dest = xasprintf("%s/.drill-%s-%ld", t->restore_dir,
			    stamp, (long)getpid());
		else if (o->into != NULL)
			dest = xasprintf("%s/%s", t->restore_dir, o->into);
		else
			dest = xasprintf("%s/%s-restore-%s", t->restore_dir,
			    t->name, stamp);
		log = xasprintf("%s/backupbot-server.log", dest);
		if (mkdir(dest, 0700) == -1) {
			*cause = xasprintf("%s: %s%s", dest, strerror(errno),
			    errno == EEXIST ? " (name another with --into)" :
			    "");
			goto done;
		}
		made = 1;
		if (geteuid() == 0 && chown(dest, u.uid, u.gid) == -1) {
			*cause = xasprintf("%s: %s", dest, strerror(errno));
			goto done;
		}
	}
	cJSON_AddStringToObject(result, "into", dest);

	if (o->replace && !o->drill) {
		char *pid = xasprintf("%s/postmaster.pid", dest);
		int running = access(pid, F_OK) == 0;

		free(pid);
		if (running) {
			backend_log(ctx, "info", "stopping the cluster in %s",
			    dest);
			if (pgbr_pg_ctl(ctx, &u, dest, cause, "-m", "fast",
			    "-w", "-t", "300", "stop", (char *)NULL) == -1)
				goto done;
		}
	}

	/* pgbackrest restore */
	pgbr_base(&a, t, &u);
	pgbr_add(&a, xasprintf("--pg1-path=%s", dest));
	if (set != NULL && strcmp(set, "latest") != 0)
		pgbr_add(&a, xasprintf("--set=%s", set));
	if (o->time != NULL) {
		pgbr_add(&a, xstrdup("--type=time"));
		pgbr_add(&a, xasprintf("--target=%s", o->time));
		pgbr_add(&a, xstrdup("--target-action=promote"));
	} else if (o->drill || (set != NULL && strcmp(set, "latest"))) {
		/* the set itself: consistent, then promoted */
		pgbr_add(&a, xstrdup("--type=immediate"));
		pgbr_add(&a, xstrdup("--target-action=promote"));
	}
	if (o->replace && !o->drill)
		pgbr_add(&a, xstrdup("--delta"));
	else {
		pgbr_add(&a, xstrdup("--archive-mode=off"));
		pgbr_add(&a, xasprintf("--tablespace-map-all=%s/"
		    "backupbot_tablespaces", dest));
	}
	pgbr_add(&a, xstrdup("--log-level-console=info"));
	pgbr_add(&a, xstrdup("restore"));
	backend_log(ctx, "info", "pgbackrest restore into %s", dest);
	backend_progress(ctx, "restore", 0, 0);
	if (pgbr_simple(ctx, &a, "pgbackrest restore", &r, cause) == -1)
		goto done;

	/* start it and let recovery run to its target */
	if (!(o->replace && !o->drill)) {
		if ((port = pgbr_free_port()) == -1) {
			*cause = xasprintf("no free port: %s", strerror(errno));
			goto done;
		}
		if (pgbr_scratch_config(dest, port, &u, cause) == -1)
			goto done;
	}
	backend_log(ctx, "info", "starting the cluster in %s", dest);
	if (pgbr_write_owned(log, "", 1, &u, cause) == -1)
		goto done;
	if (pgbr_pg_ctl(ctx, &u, dest, &why, "-l", log, "-w", "-t", "600",
	    "start", (char *)NULL) == -1) {
		char *tail = pgbr_log_tail(log);

		*cause = xasprintf("%s; server log: %s", why, tail);
		free(tail);
		free(why);
		why = NULL;
		goto done;
	}
	started = 1;
	if (port != -1)
		c = pgbr_wait_promoted(ctx, dest, NULL, dest, port, u.name,
		    cause);
	else
		c = pgbr_wait_promoted(ctx, dest, t->pg_conninfo, NULL, 0,
		    NULL, cause);
	if (c == NULL) {
		char *tail = pgbr_log_tail(log), *w = *cause;

		*cause = xasprintf("%s; server log: %s", w, tail);
		free(w);
		free(tail);
		goto done;
	}
	if (pgbr_reached(c, o->time, result, cause) == -1)
		goto done;
	if (pgbr_count(ctx, c, port != -1 ? NULL : t->pg_conninfo,
	    port != -1 ? dest : NULL, port, u.name, result, cause) == -1)
		goto done;
	if (!*json_text(result, "reached")) {
		if (!o->drill)
			pgbr_note(result, "no transaction was replayed after "
			    "the set: the point reached is the end of the set");
	} else
		pgbr_note(result, "recovered up to the transaction of %s%s%s%s",
		    json_text(result, "reached"), o->time ? " (target " : "",
		    o->time ? o->time : "", o->time ? ")" : "");
	if (port != -1 && !o->drill) {
		cJSON_AddNumberToObject(result, "port", port);
		pgbr_note(result, "left running for you: psql -h %s -p %d -U "
		    "%s postgres", dest, port, u.name);
		char *bindir = pgbr_bindir(t, dest);

		pgbr_note(result, "drop it: runuser -u %s -- %s%spg_ctl -D %s "
		    "-m fast stop && rm -rf %s", u.name, bindir ? bindir : "",
		    bindir ? "/" : "", dest, dest);
		free(bindir);
		pgbr_note(result, "promote it: stop the live cluster and "
		    "start this data directory in its place, or run the same "
		    "restore with --replace");
	}
	rc = 0;
done:
	PQfinish(c);
	pgbr_run_release(&r);
	/* a drill, or a scratch restore that failed: nothing is left */
	if (dest != NULL && made && (o->drill || rc == -1)) {
		if (started)
			pgbr_pg_ctl(ctx, &u, dest, &why, "-m", "immediate",
			    "-w", "stop", (char *)NULL);
		free(why);
		why = NULL;
		dir_remove_tree(dest);
		if (o->drill)
			pgbr_note(result, "the scratch cluster was stopped and "
			    "removed");
	}
	free(dest);
	free(log);
	return rc;
}

const struct backend backend_pgbackrest = {
	.kind = "pgbackrest",
	.suffix = "",
	.sync = pgbr_sync,
	.probe = pgbr_probe,
	.restore = pgbr_restore,
	.check_target = pgbackrest_target_check,
};
