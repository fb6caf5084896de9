/*
 * pg.c - the PostgreSQL backend: one database, dumped with pg_dump in a
 * snapshot in which we also count the rows of every table.
 *
 * A backup holds one libpq connection with a REPEATABLE READ transaction
 * open until pg_dump has exited: the transaction exports its snapshot,
 * counts rows in it, and pg_dump --snapshot=ID dumps exactly that data,
 * so the counts in the manifest are the counts a restore must give.
 *
 * The password goes to libpq as a connection parameter and to pg_dump
 * through PGPASSFILE, a one-line file in a private temporary directory
 * that lives only as long as pg_dump; never through argv.
 *
 * The custom format is streamed from pg_dump's stdout.  The directory
 * format (pg_dump -j N) is written to backup_dir/TARGET/.ID.dir, then
 * streamed as a tar and removed.
 *
 * A restore goes into a new database, never over one; pg_restore.c holds
 * it, with --replace and the restore drill.
 */
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
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
#include "log.h"
#include "pg.h"
#include "pg_parts.h"
#include "pipeline.h"
#include "proc.h"
#include "restore.h"
#include "util.h"


/* What prepare and probe learn from the server. */
struct pg_facts {
	int		 server_num;		/* 150020 */
	char		*server_version;	/* "15.20 (Debian ...)" */
	char		*database;
	long long	 size;			/* bytes */
};

static int	pg_count_fd(struct pg_counter *);
static int	pg_count_step(struct pg_counter *);
static const char *pg_count_error(struct pg_counter *);

/* ---- pure helpers (pg.h) -------------------------------------------- */

/*
 * The version word of a `PROG (PostgreSQL) VERSION ...` line: the first
 * word after the parenthesised one.
 */
static const char *
pg_version_word(const char *text, size_t *len)
{
	const char *p = text;

	while (*p == ' ' || *p == '\t')
		p++;
	p += strcspn(p, " \t\n");		/* program name */
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '(')
		return NULL;
	p += strcspn(p, ")\n");
	if (*p != ')')
		return NULL;
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p < '0' || *p > '9')
		return NULL;
	*len = strcspn(p, " \t\r\n");
	return p;
}

static int
pg_version_part(const char **p, long *v)
{
	char *end;

	if (**p < '0' || **p > '9')
		return -1;
	errno = 0;
	*v = strtol(*p, &end, 10);
	if (errno != 0 || *v > 999)
		return -1;
	*p = end;
	return 0;
}

int
pg_parse_version(const char *text, int *num)
{
	const char *p;
	long major, minor = 0, patch = 0;
	size_t len;

	*num = 0;
	if ((p = pg_version_word(text, &len)) == NULL)
		return -1;
	if (pg_version_part(&p, &major) == -1 || major < 6)
		return -1;
	if (*p == '.') {
		p++;
		if (pg_version_part(&p, &minor) == -1 || minor > 99)
			return -1;
		/* Before 10 the major version had two parts: 9.6.24. */
		if (major < 10 && *p == '.') {
			p++;
			if (pg_version_part(&p, &patch) == -1 || patch > 99)
				return -1;
		}
	} else if (major < 10)
		return -1;
	/* What may follow: nothing, or "devel", "beta2", "rc1". */
	while (*p >= 'a' && *p <= 'z')
		p++;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
		return -1;
	if (major >= 10)
		*num = (int)(major * 10000 + minor);
	else
		*num = (int)(major * 10000 + minor * 100 + patch);
	return 0;
}

int
pg_major(int num)
{
	return num >= 100000 ? num / 10000 * 100 : num / 100;
}

void
pg_major_text(int num, char *buf, size_t size)
{
	if (num >= 100000)
		snprintf(buf, size, "%d", num / 10000);
	else
		snprintf(buf, size, "%d.%d", num / 10000, num / 100 % 100);
}

char *
pg_passfile_line(const char *password)
{
	size_t len = strlen(password), n = 0;
	char *line;

	if (len == 0 || strcspn(password, "\r\n") != len)
		return NULL;
	line = xmalloc(8 + 2 * len + 2);
	memcpy(line, "*:*:*:*:", 8);
	n = 8;
	for (const char *p = password; *p != '\0'; p++) {
		if (*p == ':' || *p == '\\')
			line[n++] = '\\';
		line[n++] = *p;
	}
	line[n++] = '\n';
	line[n] = '\0';
	return line;
}

char **
pg_dump_argv(const struct target *t, const char *snapshot, const char *outdir)
{
	char **argv = xcalloc(16, sizeof(*argv));
	size_t n = 0;

	argv[n++] = xstrdup(pg_program(t->pg_dump));
	if (outdir != NULL) {
		argv[n++] = xstrdup("--format=directory");
		argv[n++] = xasprintf("--jobs=%d", t->jobs > 0 ? t->jobs : 1);
		argv[n++] = xasprintf("--file=%s", outdir);
		/* A staging copy: fsync would only slow it down. */
		argv[n++] = xstrdup("--no-sync");
	} else
		argv[n++] = xstrdup("--format=custom");
	/* We compress in the pipeline, with zstd, unless asked not to. */
	if (t->compression == NULL || strcmp(t->compression, "pgdump") != 0)
		argv[n++] = xstrdup("--compress=0");
	if (snapshot != NULL)
		argv[n++] = xasprintf("--snapshot=%s", snapshot);
	argv[n++] = xstrdup("--no-password");
	argv[n++] = xasprintf("--dbname=%s", t->conninfo);
	argv[n] = NULL;
	return argv;
}

void
pg_argv_free(char **argv)
{
	strv_free(argv);
}

/* ---- small helpers -------------------------------------------------- */

int
pg_is_cancelled(struct job_ctx *ctx)
{
	return ctx->cancelled != NULL && *ctx->cancelled;
}

/*
 * libpq messages on one line, each run of white space one space:
 * "...failed: Connection refused Is the server running...".
 */
char *
pg_oneline(const char *msg)
{
	char *s = xstrdup(msg != NULL ? msg : ""), *w = s;
	int space = 0;

	for (const char *r = s; *r != '\0'; r++) {
		if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ') {
			space = 1;
			continue;
		}
		if (space && w != s)
			*w++ = ' ';
		space = 0;
		*w++ = *r;
	}
	*w = '\0';
	return s;
}

/* ---- libpq ---------------------------------------------------------- */

/*
 * Connect.  Our connect_timeout and application_name come first, so
 * that the operator's conninfo may override them; dbname, when not NULL,
 * overrides the conninfo's database (libpq keeps the last value given).
 */
PGconn *
pg_connect_db(const struct target *t, const char *password,
    const char *dbname, char **cause)
{
	const char *keys[6], *vals[6];
	PGconn *conn;
	char *msg;
	int n = 0;

	keys[n] = "connect_timeout";
	vals[n++] = PG_CONNECT_TIMEOUT;
	keys[n] = "application_name";
	vals[n++] = PG_APPNAME;
	keys[n] = "dbname";
	vals[n++] = t->conninfo;
	if (dbname != NULL) {
		keys[n] = "dbname";
		vals[n++] = dbname;
	}
	if (password != NULL) {
		keys[n] = "password";
		vals[n++] = password;
	}
	keys[n] = vals[n] = NULL;

	if ((conn = PQconnectdbParams(keys, vals, 1)) == NULL) {
		*cause = xstrdup("cannot connect to PostgreSQL: out of memory");
		return NULL;
	}
	if (PQstatus(conn) == CONNECTION_OK)
		return conn;

	msg = pg_oneline(PQerrorMessage(conn));
	if (strstr(msg, "no password supplied") != NULL &&
	    t->password_file == NULL)
		*cause = xasprintf("cannot connect to PostgreSQL: %s (set "
		    "password_file in [postgres %s])", msg, t->name);
	else if (strstr(msg, "password authentication failed") != NULL &&
	    t->password_file != NULL)
		*cause = xasprintf("cannot connect to PostgreSQL: %s (check "
		    "the password in %s)", msg, t->password_file);
	else
		*cause = xasprintf("cannot connect to PostgreSQL: %s", msg);
	free(msg);
	PQfinish(conn);
	return NULL;
}

PGconn *
pg_connect(const struct target *t, const char *password, char **cause)
{
	return pg_connect_db(t, password, NULL, cause);
}

/* Read the password and connect; the password is wiped at once. */
static PGconn *
pg_open(const struct target *t, char **cause)
{
	char *password;
	PGconn *conn;

	if (backend_password(t, &password, cause) == -1)
		return NULL;
	conn = pg_connect(t, password, cause);
	secret_free(password);
	return conn;
}

/* Run a command that returns no rows. */
int
pg_exec(PGconn *conn, const char *sql, char **cause)
{
	PGresult *res = PQexec(conn, sql);
	char *msg;

	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK) {
		PQclear(res);
		return 0;
	}
	msg = pg_oneline(res != NULL ? PQresultErrorMessage(res) :
	    PQerrorMessage(conn));
	*cause = xasprintf("%s: %s", sql, msg);
	free(msg);
	PQclear(res);
	return -1;
}

/* Run a query that returns one row: its values (caller PQclear()s). */
static PGresult *
pg_query_row(PGconn *conn, const char *sql, int ncols, char **cause)
{
	PGresult *res = PQexec(conn, sql);
	char *msg;

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		msg = pg_oneline(res != NULL ? PQresultErrorMessage(res) :
		    PQerrorMessage(conn));
		*cause = xasprintf("%s: %s", sql, msg);
		free(msg);
		PQclear(res);
		return NULL;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != ncols) {
		*cause = xasprintf("%s: unexpected result (%d rows)", sql,
		    PQntuples(res));
		PQclear(res);
		return NULL;
	}
	for (int i = 0; i < ncols; i++) {
		if (PQgetisnull(res, 0, i)) {
			*cause = xasprintf("%s: NULL result", sql);
			PQclear(res);
			return NULL;
		}
	}
	return res;
}

int
pg_ll(const char *s, long long *v)
{
	return str_to_ll(s, 0, INT64_MAX, v);
}

static void
pg_facts_release(struct pg_facts *f)
{
	free(f->server_version);
	free(f->database);
	memset(f, 0, sizeof(*f));
}

static int
pg_facts_read(PGconn *conn, struct pg_facts *f, char **cause)
{
	const char *v;
	PGresult *res;

	memset(f, 0, sizeof(*f));
	f->server_num = PQserverVersion(conn);
	v = PQparameterStatus(conn, "server_version");
	f->server_version = xstrdup(v != NULL ? v : "unknown");
	res = pg_query_row(conn, "SELECT current_database(), "
	    "pg_database_size(current_database())", 2, cause);
	if (res == NULL)
		return -1;
	f->database = xstrdup(PQgetvalue(res, 0, 0));
	if (pg_ll(PQgetvalue(res, 0, 1), &f->size) == -1)
		f->size = 0;
	PQclear(res);
	return 0;
}

/* ---- tool versions -------------------------------------------------- */

/* Run TOOL --version; its number and version word ("15.20"). */
static int
pg_tool_start(const struct target *t, const char *key, const char *tool,
    struct proc *p, char **cause)
{
	const char *argv[] = { tool, "--version", NULL };
	char *why = NULL;

	if (proc_spawn(p, argv, NULL, PROC_STDOUT | PROC_STDERR, &why) == 0)
		return 0;
	*cause = xasprintf("%s (install postgresql-client, or set %s = "
	    "/path/to/%s in [postgres %s])", why, key, key, t->name);
	free(why);
	return -1;
}

/* The version pg_tool_start's child printed. */
static int
pg_tool_finish(const char *tool, struct proc *p, int *num, char **text,
    char **cause)
{
	struct tail err = { .len = 0 };
	char *out = NULL, *st;
	const char *word;
	size_t len;
	int status;

	*text = NULL;
	proc_collect(p, &out, PG_VERSION_OUT_MAX, &err, &status);
	if (!proc_ok(status)) {
		st = proc_status_text(status);
		*cause = xasprintf("%s --version %s: %s", tool, st,
		    tail_text(&err, PG_STDERR_LINES));
		free(st);
		free(out);
		return -1;
	}
	if (pg_parse_version(out, num) == -1 ||
	    (word = pg_version_word(out, &len)) == NULL) {
		out[strcspn(out, "\n")] = '\0';
		*cause = xasprintf("%s --version: cannot read a version in "
		    "\"%.80s\"", tool, out);
		free(out);
		return -1;
	}
	*text = xstrndup(word, len);
	free(out);
	return 0;
}

int
pg_tool_version(const struct target *t, const char *key, const char *tool,
    int *num, char **text, char **cause)
{
	struct proc p;

	*text = NULL;
	if (pg_tool_start(t, key, tool, &p, cause) == -1)
		return -1;
	return pg_tool_finish(tool, &p, num, text, cause);
}

/*
 * pg_dump can dump servers of its own major version and older ones,
 * never newer ones.
 */
static int
pg_check_dump_version(const struct target *t, int dump_num, int server_num,
    char **cause)
{
	char dump_major[16], server_major[16];

	if (pg_major(dump_num) >= pg_major(server_num))
		return 0;
	pg_major_text(dump_num, dump_major, sizeof(dump_major));
	pg_major_text(server_num, server_major, sizeof(server_major));
	*cause = xasprintf("pg_dump %s cannot dump a PostgreSQL %s server; "
	    "install postgresql-client-%s or set pg_dump = "
	    "/usr/lib/postgresql/%s/bin/pg_dump in [postgres %s]",
	    dump_major, server_major, server_major, server_major, t->name);
	return -1;
}

/* ---- running a tool ------------------------------------------------- */

/* Bytes in the files of a flat directory (pg_dump -Fd's output). */
static uint64_t
pg_dir_bytes(const char *path)
{
	struct dirent *de;
	struct stat st;
	uint64_t total = 0;
	DIR *d;

	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    0 && S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

void
pg_rmtree(const char *path)
{
	if (path != NULL && dir_remove_tree(path) == -1)
		log_warn("remove %s", path);
}

/* What pg_stream's pump works with. */
struct pg_pump {
	struct job_ctx		*ctx;
	struct pipe_out		*out;
	struct pg_run		*r;
};

static int
pg_pump_out(void *arg, const unsigned char *data, size_t n)
{
	struct pg_pump *a = arg;

	a->r->bytes += n;
	return pipe_out_write(a->out, data, n, &a->r->error);
}

static int
pg_pump_stop(void *arg)
{
	struct pg_pump *a = arg;

	if (pg_is_cancelled(a->ctx))
		a->r->cancelled = 1;
	return a->r->cancelled;
}

/* How far a run is: its database, its directory, or its output. */
static uint64_t
pg_run_done(struct pg_run *r)
{
	if (r->measure != NULL)
		return r->measure(r->measure_arg);
	if (r->watch_dir != NULL)
		return pg_dir_bytes(r->watch_dir);
	return r->bytes;
}

/* The row counts' connection, while they run beside pg_dump. */
static int
pg_pump_count_fd(void *arg)
{
	struct pg_pump *a = arg;

	return a->r->counts != NULL ? pg_count_fd(a->r->counts) : -1;
}

/* A failed count stops pg_dump: the backup fails with its cause. */
static int
pg_pump_count(void *arg)
{
	struct pg_pump *a = arg;

	if (pg_count_step(a->r->counts) == 0)
		return 0;
	if (a->r->error == NULL)
		a->r->error = xstrdup(pg_count_error(a->r->counts));
	return -1;
}

static void
pg_pump_tick(void *arg)
{
	struct pg_pump *a = arg;

	if (a->r->phase != NULL)
		backend_progress(a->ctx, a->r->phase, pg_run_done(a->r),
		    a->r->total);
}

/*
 * Run argv to its end.  With out, its stdout is streamed into out in
 * blocks of up to PIPE_BLOCK; without, stdout goes to /dev/null and the
 * progress is the size of r->watch_dir.  Its stderr's tail is kept in
 * r->err.  With r->counts, the row counts advance meanwhile.  On
 * cancel, a write error or a failed count it is stopped with SIGTERM.
 * Returns 0 when it could be started (then see r), -1 with *cause.
 */
int
pg_stream(struct job_ctx *ctx, const char *const *argv,
    const char *const *env, struct pipe_out *out, struct pg_run *r,
    char **cause)
{
	struct pg_pump a = { ctx, out, r };
	struct pump pm = { pg_pump_out, pg_pump_stop, pg_pump_tick, &a,
	    PG_PROGRESS_MS, PG_POLL_MS, &r->err, pg_pump_count_fd,
	    pg_pump_count };
	struct proc p;
	char *why = NULL;
	int stop;

	/*
	 * Its own process group, so that a cancel stops everything it
	 * started (pg_dump -j workers, or a wrapper's children).
	 */
	if (proc_spawn(&p, argv, env, PROC_STDERR | PROC_NEWGROUP |
	    (out != NULL ? PROC_STDOUT : PROC_STDOUT_NULL), cause) == -1)
		return -1;
	backend_progress(ctx, r->phase, 0, r->total);
	stop = proc_pump(&p, &pm, &why) != 0;
	if (why != NULL) {
		free(r->error);
		r->error = why;
	}
	if (stop) {
		kill(-p.pid, SIGTERM);
		proc_reap(&p, PG_TERM_GRACE_MS, &r->status);
	} else if (proc_wait(&p, &r->status) == -1) {
		*cause = xasprintf("waiting for %s: %s", r->name,
		    strerror(errno));
		return -1;
	}
	if (!stop && r->phase != NULL)
		backend_progress(ctx, r->phase, pg_run_done(r), r->total);
	return 0;
}

/*
 * Why a run is not a good one, or NULL when it is.  need_output: it
 * must have written something to stdout.
 */
char *
pg_run_failure(struct pg_run *r, int need_output)
{
	const char *err = tail_text(&r->err, PG_STDERR_LINES);
	char *st, *cause;

	if (r->cancelled) {
		free(r->error);
		r->error = NULL;
		return xstrdup("cancelled");
	}
	if (r->error != NULL) {
		cause = r->error;
		r->error = NULL;
		return cause;
	}
	if (!proc_ok(r->status)) {
		st = proc_status_text(r->status);
		cause = xasprintf("%s %s%s%s%s", r->name,
		    WIFSIGNALED(r->status) ? "was " : "", st,
		    *err != '\0' ? ": " : "", err);
		free(st);
		return cause;
	}
	if (need_output && r->bytes == 0)
		return xasprintf("%s produced no output%s%s", r->name,
		    *err != '\0' ? ": " : "", err);
	return NULL;
}

/* ---- the password file for pg_dump ---------------------------------- */

/*
 * The file lives in $TMPDIR/backupbot-pg.PID.XXXXXX (mode 0700), named
 * after the job's pid so that the next job can remove what a job killed
 * with SIGKILL had no chance to.
 */
#define PG_PASSDIR_PREFIX	"backupbot-pg."

static const char *
pg_tmpdir(void)
{
	const char *tmp = getenv("TMPDIR");

	return tmp != NULL && *tmp != '\0' ? tmp : "/tmp";
}

/* Overwrite, remove and free the password file and its directory. */
void
pg_passfile_remove(char **dir, char **file)
{
	char zero[256];
	struct stat st;
	off_t left;
	ssize_t n;
	int fd;

	if (*file != NULL) {
		fd = open(*file, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd != -1 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			memset(zero, 0, sizeof(zero));
			for (left = st.st_size; left > 0; left -= n) {
				n = write(fd, zero, left > (off_t)sizeof(zero) ?
				    sizeof(zero) : (size_t)left);
				if (n <= 0)
					break;
			}
			fsync(fd);
		}
		if (fd != -1)
			close(fd);
		if (unlink(*file) == -1 && errno != ENOENT)
			log_warn("unlink %s", *file);
		free(*file);
		*file = NULL;
	}
	if (*dir != NULL) {
		if (rmdir(*dir) == -1 && errno != ENOENT)
			log_warn("rmdir %s", *dir);
		free(*dir);
		*dir = NULL;
	}
}

/* Remove the password files of jobs that are gone. */
static void
pg_passfile_sweep(const char *tmp)
{
	struct dirent *de;
	struct stat st;
	long long pid;
	char *dir, *file, *dot, *num;
	DIR *d;

	if ((d = opendir(tmp)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!str_startswith(de->d_name, PG_PASSDIR_PREFIX))
			continue;
		num = xstrdup(de->d_name + strlen(PG_PASSDIR_PREFIX));
		if ((dot = strchr(num, '.')) != NULL)
			*dot = '\0';
		if (dot == NULL || str_to_ll(num, 1, INT32_MAX, &pid) == -1 ||
		    pid == (long long)getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    -1 || !S_ISDIR(st.st_mode) || st.st_uid != getuid()) {
			free(num);
			continue;
		}
		free(num);
		dir = xasprintf("%s/%s", tmp, de->d_name);
		file = xasprintf("%s/pgpass", dir);
		log_info("removing %s, left by a job that was killed", dir);
		pg_passfile_remove(&dir, &file);
	}
	closedir(d);
}

int
pg_passfile_create(const char *password, char **dir, char **file,
    char **cause)
{
	const char *tmp = pg_tmpdir();
	char *line;
	size_t len, off = 0;
	ssize_t n;
	int fd;

	*dir = *file = NULL;
	if ((line = pg_passfile_line(password)) == NULL) {
		*cause = xstrdup("the password in password_file contains a "
		    "line break; pg_dump cannot be given such a password");
		return -1;
	}
	pg_passfile_sweep(tmp);
	*dir = xasprintf("%s/" PG_PASSDIR_PREFIX "%ld.XXXXXX", tmp,
	    (long)getpid());
	if (mkdtemp(*dir) == NULL) {
		*cause = xasprintf("mkdtemp %s: %s", *dir, strerror(errno));
		free(*dir);
		*dir = NULL;
		goto fail;
	}
	*file = xasprintf("%s/pgpass", *dir);
	fd = open(*file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		*cause = xasprintf("%s: %s", *file, strerror(errno));
		goto fail;
	}
	len = strlen(line);
	while (off < len) {
		if ((n = write(fd, line + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			*cause = xasprintf("%s: %s", *file, strerror(errno));
			close(fd);
			goto fail;
		}
		off += (size_t)n;
	}
	if (close(fd) == -1) {
		*cause = xasprintf("%s: %s", *file, strerror(errno));
		goto fail;
	}
	secret_free(line);
	return 0;

fail:
	secret_free(line);
	pg_passfile_remove(dir, file);
	return -1;
}

/* ---- row counts ----------------------------------------------------- */

/*
 * Exact row counts of every user table, in the snapshot that pg_dump
 * dumps, counted while pg_dump runs: the counts are sent one at a time
 * on the connection that exported the snapshot (its transaction *is*
 * the snapshot, so a second connection importing it would count the
 * same rows, at the cost of one more connection), and pg_stream's pump
 * reads their results beside pg_dump's output.  Partitioned parents
 * have no rows of their own: their partitions are counted.  Foreign
 * tables hold nothing pg_dump dumps.
 */
struct pg_counter {
	struct job_ctx	*ctx;
	PGconn		*conn;
	PGresult	*list;		/* schema, name of each table */
	int		 next;		/* the table being counted */
	int		 busy;		/* its count is in flight */
	cJSON		*tables;	/* "schema.name": rows */
	char		*error;		/* why the counts failed */
};

static void
pg_count_fail(struct pg_counter *c, const char *s, const char *r,
    const char *why)
{
	char *msg = pg_oneline(why);

	if (c->error == NULL)
		c->error = xasprintf("counting the rows of %s.%s: %s", s, r,
		    msg);
	free(msg);
}

/* Send the count of table c->next; 0, or -1 with c->error. */
static int
pg_count_send(struct pg_counter *c)
{
	const char *s = PQgetvalue(c->list, c->next, 0);
	const char *r = PQgetvalue(c->list, c->next, 1);
	char *nsp, *rel, *sql;
	int ok;

	nsp = PQescapeIdentifier(c->conn, s, strlen(s));
	rel = PQescapeIdentifier(c->conn, r, strlen(r));
	if (nsp == NULL || rel == NULL) {
		pg_count_fail(c, s, r, PQerrorMessage(c->conn));
		PQfreemem(nsp);
		PQfreemem(rel);
		return -1;
	}
	sql = xasprintf("SELECT count(*) FROM %s.%s", nsp, rel);
	PQfreemem(nsp);
	PQfreemem(rel);
	ok = PQsendQuery(c->conn, sql);
	free(sql);
	if (!ok) {
		pg_count_fail(c, s, r, PQerrorMessage(c->conn));
		return -1;
	}
	c->busy = 1;
	return 0;
}

/*
 * List the tables and send the first count.  0, or -1 with *cause.
 * The caller calls pg_count_release in any case.
 */
static int
pg_count_start(struct job_ctx *ctx, PGconn *conn, struct pg_counter *c,
    char **cause)
{
	char *msg;

	memset(c, 0, sizeof(*c));
	c->ctx = ctx;
	c->conn = conn;
	c->tables = cJSON_CreateObject();
	c->list = PQexec(conn, "SELECT n.nspname, c.relname "
	    "FROM pg_catalog.pg_class c "
	    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
	    "WHERE c.relkind = 'r' AND c.relpersistence <> 't' "
	    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
	    "ORDER BY 1, 2");
	if (PQresultStatus(c->list) != PGRES_TUPLES_OK) {
		msg = pg_oneline(PQresultErrorMessage(c->list));
		*cause = xasprintf("listing tables: %s", msg);
		free(msg);
		return -1;
	}
	if (PQntuples(c->list) > 0 && pg_count_send(c) == -1) {
		*cause = xstrdup(c->error);
		return -1;
	}
	return 0;
}

/* Take the finished count's result, and send the next one. */
static int
pg_count_collect(struct pg_counter *c)
{
	const char *s = PQgetvalue(c->list, c->next, 0);
	const char *r = PQgetvalue(c->list, c->next, 1);
	PGresult *res, *last = NULL;
	long long rows;
	char *name;

	while ((res = PQgetResult(c->conn)) != NULL) {
		PQclear(last);
		last = res;
	}
	c->busy = 0;
	if (PQresultStatus(last) != PGRES_TUPLES_OK) {
		pg_count_fail(c, s, r, last != NULL ?
		    PQresultErrorMessage(last) : PQerrorMessage(c->conn));
		PQclear(last);
		return -1;
	}
	if (PQntuples(last) != 1 || PQnfields(last) != 1 ||
	    pg_ll(PQgetvalue(last, 0, 0), &rows) == -1) {
		pg_count_fail(c, s, r, "not a number");
		PQclear(last);
		return -1;
	}
	PQclear(last);
	name = xasprintf("%s.%s", s, r);
	cJSON_AddItemToObject(c->tables, name, cJSON_CreateNumber(
	    (double)rows));
	free(name);
	if (++c->next < PQntuples(c->list))
		return pg_count_send(c);
	return 0;
}

/* The descriptor to wait on while a count is in flight, or -1. */
static int
pg_count_fd(struct pg_counter *c)
{
	return c->busy && c->error == NULL ? PQsocket(c->conn) : -1;
}

/* Read what the server sent; -1 (c->error) when a count failed. */
static int
pg_count_step(struct pg_counter *c)
{
	if (c->error != NULL)
		return -1;
	if (!PQconsumeInput(c->conn)) {
		pg_count_fail(c, PQgetvalue(c->list, c->next, 0),
		    PQgetvalue(c->list, c->next, 1), PQerrorMessage(c->conn));
		return -1;
	}
	while (c->busy && !PQisBusy(c->conn)) {
		if (pg_count_collect(c) == -1)
			return -1;
	}
	return 0;
}

static const char *
pg_count_error(struct pg_counter *c)
{
	return c->error != NULL ? c->error : "failed";
}

/* Ask the server to stop a count in flight, and drop its result. */
static void
pg_count_abort(struct pg_counter *c)
{
	PGcancel *cancel;
	PGresult *res;
	char err[256];

	if (!c->busy)
		return;
	if ((cancel = PQgetCancel(c->conn)) != NULL) {
		PQcancel(cancel, err, sizeof(err));
		PQfreeCancel(cancel);
	}
	while ((res = PQgetResult(c->conn)) != NULL)
		PQclear(res);
	c->busy = 0;
}

/*
 * Wait for the counts that are left (pg_dump has ended).  0, or -1
 * with *cause ("cancelled", or the count that failed).
 */
static int
pg_count_finish(struct pg_counter *c, char **cause)
{
	int n = PQntuples(c->list);

	while (c->busy && c->error == NULL) {
		struct pollfd pf = { PQsocket(c->conn), POLLIN, 0 };

		if (pg_is_cancelled(c->ctx)) {
			pg_count_abort(c);
			*cause = xstrdup("cancelled");
			return -1;
		}
		backend_progress(c->ctx, "count", (uint64_t)c->next,
		    (uint64_t)n);
		if (poll(&pf, 1, PG_POLL_MS) == -1 && errno != EINTR)
			break;
		if (pf.revents != 0)
			pg_count_step(c);
	}
	if (c->error != NULL) {
		*cause = xstrdup(c->error);
		return -1;
	}
	if (c->busy) {
		pg_count_abort(c);
		*cause = xasprintf("waiting for the row counts: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Stop what is in flight and free; c->tables unless taken (NULL). */
static void
pg_count_release(struct pg_counter *c)
{
	if (c->conn != NULL)
		pg_count_abort(c);
	PQclear(c->list);
	cJSON_Delete(c->tables);
	free(c->error);
	memset(c, 0, sizeof(*c));
}

/* All the counts, one after another (a restore's check); NULL: *cause. */
cJSON *
pg_count_rows(struct job_ctx *ctx, PGconn *conn, char **cause)
{
	struct pg_counter c;
	cJSON *tables = NULL;

	if (pg_count_start(ctx, conn, &c, cause) == 0 &&
	    pg_count_finish(&c, cause) == 0) {
		tables = c.tables;
		c.tables = NULL;
	}
	pg_count_release(&c);
	return tables;
}

/*
 * Exact row counts of every user table of the database conn is on, into
 * tables (pg.h): other backends' drills count this way too.
 */
int
pg_table_counts(struct job_ctx *ctx, PGconn *conn, cJSON *tables,
    char **cause)
{
	cJSON *got = pg_count_rows(ctx, conn, cause), *it;

	if (got == NULL)
		return -1;
	while ((it = got->child) != NULL) {
		cJSON_DetachItemViaPointer(got, it);
		cJSON_AddItemToObject(tables, it->string, it);
	}
	cJSON_Delete(got);
	return 0;
}

/* ---- the backend ---------------------------------------------------- */

static int
pg_prepare(struct job_ctx *ctx, cJSON *manifest, char **cause)
{
	const struct target *t = ctx->target;
	struct pg_facts f;
	struct proc dump_p, restore_p;
	char *dump_text = NULL, *restore_text = NULL, *why = NULL;
	char *vcause = NULL;
	int dump_num, restore_num, facts = -1, dump_v = -1, restore_v = -1;
	int rc = -1;
	PGconn *conn;

	*cause = NULL;
	memset(&f, 0, sizeof(f));
	/*
	 * Both `--version`s run while we ask the server (pg_program: not
	 * through Debian's wrapper script, which takes a quarter of a
	 * second).
	 */
	if (pg_tool_start(t, "pg_dump", pg_program(t->pg_dump), &dump_p,
	    &vcause) == 0)
		dump_v = 0;
	if (pg_tool_start(t, "pg_restore", pg_program(t->pg_restore),
	    &restore_p, &why) == 0)
		restore_v = 0;
	if ((conn = pg_open(t, cause)) != NULL) {
		facts = pg_facts_read(conn, &f, cause);
		PQfinish(conn);
	}
	if (dump_v == 0)
		dump_v = pg_tool_finish(pg_program(t->pg_dump), &dump_p,
		    &dump_num, &dump_text, &vcause);
	if (restore_v == 0)
		restore_v = pg_tool_finish(pg_program(t->pg_restore),
		    &restore_p, &restore_num, &restore_text, &why);
	if (facts == -1)		/* *cause says why */
		goto done;
	if (dump_v == -1) {
		*cause = vcause;
		vcause = NULL;
		goto done;
	}
	if (pg_check_dump_version(t, dump_num, f.server_num, cause) == -1)
		goto done;
	/* Only a warning: the dump is good, but it cannot be checked. */
	if (restore_v == -1)
		backend_log(ctx, "warning", "pg_restore: %s; backups cannot be "
		    "checked", why);
	else if (pg_major(restore_num) < pg_major(dump_num))
		backend_log(ctx, "warning", "pg_restore %s is older than pg_dump "
		    "%s and cannot read its archives; set pg_restore = in "
		    "[postgres %s]", restore_text, dump_text, t->name);

	backend_fact(manifest, "server_version", cJSON_CreateString(
	    f.server_version));
	backend_fact(manifest, "server_version_num", cJSON_CreateNumber(
	    f.server_num));
	backend_fact(manifest, "pg_dump_version", cJSON_CreateString(dump_text));
	backend_fact(manifest, "database", cJSON_CreateString(f.database));
	backend_fact(manifest, "database_size", cJSON_CreateNumber(
	    (double)f.size));
	backend_fact(manifest, "format", cJSON_CreateString(t->format));
	backend_fact(manifest, "compression", cJSON_CreateString(t->compression));
	rc = 0;

done:
	free(dump_text);
	free(restore_text);
	free(vcause);
	free(why);
	pg_facts_release(&f);
	return rc;
}

/*
 * pg_dump has ended well: wait for the counts it left, then let go of
 * the snapshot.  0, or -1 with *cause.
 */
static int
pg_backup_counted(struct job_ctx *ctx, struct pg_counter *counts,
    char **cause)
{
	char *why = NULL;

	if (pg_count_finish(counts, cause) == -1)
		return -1;
	if (pg_exec(counts->conn, "COMMIT", &why) == -1) {
		backend_log(ctx, "warning", "closing the snapshot: %s", why);
		free(why);
	}
	return 0;
}

/* pg_dump -Fd into outdir, then a tar of it into out. */
static int
pg_backup_directory(struct job_ctx *ctx, struct pipe_out *out,
    char *const *argv, const char *const *env, const char *outdir,
    uint64_t total, struct pg_counter *counts, char **passdir,
    char **passfile, uint64_t *raw, char **cause)
{
	const char *tar_argv[] = { "tar", "-C", outdir, "-cf", "-", ".",
	    NULL };
	struct pg_run dump = { .name = "pg_dump", .phase = "dump" };
	struct pg_run tar = { .name = "tar", .phase = "archive" };
	int rc;

	dump.watch_dir = outdir;
	dump.total = total;
	dump.counts = counts;
	rc = pg_stream(ctx, (const char *const *)argv, env, NULL, &dump,
	    cause);
	/* pg_dump and its workers have their snapshots. */
	pg_passfile_remove(passdir, passfile);
	if (rc == -1)
		return -1;
	if ((*cause = pg_run_failure(&dump, 0)) != NULL)
		return -1;
	if (*dump.err.buf != '\0')
		backend_log(ctx, "warning", "pg_dump: %s",
		    tail_text(&dump.err, PG_STDERR_LINES));
	if (pg_backup_counted(ctx, counts, cause) == -1)
		return -1;

	tar.total = pg_dir_bytes(outdir);
	if (pg_stream(ctx, tar_argv, NULL, out, &tar, cause) == -1)
		return -1;
	if ((*cause = pg_run_failure(&tar, 1)) != NULL)
		return -1;
	*raw = tar.bytes;
	return 0;
}

static int
pg_backup(struct job_ctx *ctx, struct pipe_out *out, cJSON *manifest,
    char **cause)
{
	const struct target *t = ctx->target;
	const cJSON *size;
	struct pg_run dump = { .name = "pg_dump", .phase = "dump" };
	char *password = NULL, *snapshot = NULL, *passdir = NULL;
	char *passfile = NULL, *passenv = NULL, *outdir = NULL;
	char *tdir;
	char **argv = NULL;
	const char *env[3] = { NULL, NULL, NULL };
	struct pg_counter counts = { 0 };
	PGresult *res;
	PGconn *conn = NULL;
	uint64_t raw = 0;
	int directory, rc = -1;

	*cause = NULL;
	directory = t->format != NULL && strcmp(t->format, "directory") == 0;
	/*
	 * pg_dump's version was read and checked by pg_prepare: each
	 * `pg_dump --version` costs a quarter of a second where pg_dump is
	 * Debian's wrapper script, a third of a small database's backup.
	 */
	if (backend_password(t, &password, cause) == -1)
		goto done;
	if ((conn = pg_connect(t, password, cause)) == NULL)
		goto done;

	/*
	 * Like pg_dump itself: no server-side timeout may cut a long
	 * backup short, and the snapshot's transaction idles for as long
	 * as pg_dump runs.
	 */
	if (pg_exec(conn, "SET statement_timeout = 0", cause) == -1 ||
	    pg_exec(conn, "SET idle_in_transaction_session_timeout = 0",
	    cause) == -1 ||
	    pg_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
	    cause) == -1)
		goto done;
	if ((res = pg_query_row(conn, "SELECT pg_export_snapshot()", 1,
	    cause)) == NULL)
		goto done;
	snapshot = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);

	/* The counts run while pg_dump does (pg_stream's pump). */
	if (pg_count_start(ctx, conn, &counts, cause) == -1)
		goto done;

	if (password != NULL) {
		if (pg_passfile_create(password, &passdir, &passfile,
		    cause) == -1)
			goto done;
		/*
		 * Our file, not one from the environment; and an empty
		 * PGPASSWORD, which libpq takes for none, so that an
		 * inherited one cannot win over password_file.
		 */
		passenv = xasprintf("PGPASSFILE=%s", passfile);
		env[0] = passenv;
		env[1] = "PGPASSWORD=";
	}
	secret_free(password);
	password = NULL;

	if (directory) {
		tdir = xasprintf("%s/%s", ctx->cfg->backup_dir, t->name);
		outdir = xasprintf("%s/.%s.dir", tdir, ctx->id);
		if (dir_make(tdir, 0700) == -1) {
			*cause = xasprintf("%s: %s", tdir, strerror(errno));
			free(tdir);
			goto done;
		}
		free(tdir);
		pg_rmtree(outdir);	/* left by a killed job */
		if (mkdir(outdir, 0700) == -1) {
			*cause = xasprintf("%s: %s", outdir, strerror(errno));
			free(outdir);
			outdir = NULL;
			goto done;
		}
	}
	argv = pg_dump_argv(t, snapshot, outdir);
	/* The dump is smaller (no index data): a rough but honest bound. */
	size = cJSON_GetObjectItemCaseSensitive(manifest, "database_size");
	if (cJSON_IsNumber(size) && size->valuedouble > 0)
		dump.total = (uint64_t)size->valuedouble;

	if (directory) {
		if (pg_backup_directory(ctx, out, argv, env, outdir,
		    dump.total, &counts, &passdir, &passfile, &raw,
		    cause) == -1)
			goto done;
	} else {
		dump.counts = &counts;
		if (pg_stream(ctx, (const char *const *)argv, env, out, &dump,
		    cause) == -1)
			goto done;
		pg_passfile_remove(&passdir, &passfile);
		if ((*cause = pg_run_failure(&dump, 1)) != NULL)
			goto done;
		if (*dump.err.buf != '\0')
			backend_log(ctx, "warning", "pg_dump: %s",
			    tail_text(&dump.err, PG_STDERR_LINES));
		if (pg_backup_counted(ctx, &counts, cause) == -1)
			goto done;
		raw = dump.bytes;
	}

	backend_fact(manifest, "bytes_raw", cJSON_CreateNumber((double)raw));
	backend_fact(manifest, "tables", counts.tables);
	counts.tables = NULL;
	if (directory)
		backend_fact(manifest, "container", cJSON_CreateString("tar"));
	rc = 0;

done:
	free(dump.error);
	pg_passfile_remove(&passdir, &passfile);
	secret_free(password);
	if (outdir != NULL) {
		pg_rmtree(outdir);
		free(outdir);
	}
	pg_count_release(&counts);	/* stops a count in flight */
	if (conn != NULL)
		PQfinish(conn);		/* rolls back if still open */
	pg_argv_free(argv);
	free(passenv);
	free(snapshot);
	return rc;
}

/*
 * pg_restore reads the whole archive and writes the SQL to /dev/null: it
 * fails on a truncated or damaged stream (`pg_restore --list` reads only
 * the table of contents at the start, and would pass a truncated one).
 */
static int
pg_check_reader(struct job_ctx *ctx, const cJSON *manifest, struct proc *p,
    char **cause)
{
	const char *restore_argv[] = { pg_program(ctx->target->pg_restore),
	    "--file=/dev/null", NULL };
	const char *tar_argv[] = { "tar", "-tf", "-", NULL };
	const cJSON *container;

	*cause = NULL;
	container = cJSON_GetObjectItemCaseSensitive(manifest, "container");
	if (cJSON_IsString(container) &&
	    strcmp(container->valuestring, "tar") == 0)
		return proc_spawn(p, tar_argv, NULL, PROC_STDIN |
		    PROC_STDOUT_NULL | PROC_STDERR, cause);
	return proc_spawn(p, restore_argv, NULL, PROC_STDIN | PROC_STDOUT_NULL |
	    PROC_STDERR, cause);
}

static int
pg_probe(struct job_ctx *ctx, cJSON *out, char **cause)
{
	struct pg_facts f;
	PGresult *res;
	PGconn *conn;
	long long n;

	*cause = NULL;
	if ((conn = pg_open(ctx->target, cause)) == NULL) {
		backend_fact(out, "reachable", cJSON_CreateFalse());
		return -1;
	}
	if (pg_exec(conn, "SET statement_timeout = '10s'", cause) == -1 ||
	    pg_facts_read(conn, &f, cause) == -1) {
		pg_facts_release(&f);
		backend_fact(out, "reachable", cJSON_CreateFalse());
		PQfinish(conn);
		return -1;
	}
	backend_fact(out, "reachable", cJSON_CreateTrue());
	backend_fact(out, "server_version", cJSON_CreateString(f.server_version));
	backend_fact(out, "server_version_num", cJSON_CreateNumber(f.server_num));
	backend_fact(out, "database", cJSON_CreateString(f.database));
	backend_fact(out, "database_size", cJSON_CreateNumber((double)f.size));
	pg_facts_release(&f);

	/* Client connections; background workers are listed since 10. */
	res = pg_query_row(conn, PQserverVersion(conn) >= 100000 ?
	    "SELECT count(*) FROM pg_stat_activity "
	    "WHERE backend_type = 'client backend'" :
	    "SELECT count(*) FROM pg_stat_activity", 1, cause);
	if (res == NULL) {
		PQfinish(conn);
		return -1;
	}
	if (pg_ll(PQgetvalue(res, 0, 0), &n) == 0)
		backend_fact(out, "connections", cJSON_CreateNumber((double)n));
	PQclear(res);
	if ((res = pg_query_row(conn, "SHOW max_connections", 1,
	    cause)) == NULL) {
		PQfinish(conn);
		return -1;
	}
	if (pg_ll(PQgetvalue(res, 0, 0), &n) == 0)
		backend_fact(out, "max_connections", cJSON_CreateNumber((double)n));
	PQclear(res);
	PQfinish(conn);
	return 0;
}

const struct backend backend_postgres = {
	.kind = "postgres",
	.suffix = ".dump",
	.prepare = pg_prepare,
	.backup = pg_backup,
	.check_reader = pg_check_reader,
	.probe = pg_probe,
	.restore = pg_restore_backup,
};
