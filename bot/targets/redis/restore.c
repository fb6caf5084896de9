/*
 * restore.c - the restore side of the redis backend: the pure helpers
 * (TTLs, RDB versions, redis-server logs), a temporary redis-server in a
 * private directory, and the logical and RDB restores (redis.h).
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "backend.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"
#include "proc.h"
#include "redis.h"
#include "redis_parts.h"
#include "util.h"

/* ---- restore: pure helpers -------------------------------------------- */

int
redis_restore_ttl(int64_t ttl_ms, int64_t taken_ms, int64_t now_ms,
    int64_t *restore_ms)
{
	/* a clock behind the backup's: no more than it had */
	int64_t since = now_ms > taken_ms ? now_ms - taken_ms : 0;

	*restore_ms = 0;
	if (ttl_ms < 0)
		return 0;
	if (since >= ttl_ms)
		return 1;
	*restore_ms = ttl_ms - since;
	return 0;
}

const char *
redis_rdb_writer(int version)
{
	static const struct {
		int		 version;
		const char	*writer;
	} writers[] = {
		{ 6, "Redis 2.6 or 2.8" },
		{ 7, "Redis 3.0 or 3.2" },
		{ 8, "Redis 4.0" },
		{ 9, "Redis 5.0 to 6.2" },
		{ 10, "Redis 7.0" },
		{ 11, "Redis 7.2 or Valkey 7.2 to 8.1" },
		{ 12, "Redis 7.4" },
		{ 80, "Valkey 9" },
	};

	for (size_t i = 0; i < nitems(writers); i++)
		if (writers[i].version == version)
			return writers[i].writer;
	return NULL;
}

/* Warning lines of a redis-server log that say nothing about a failure. */
static int
redis_log_noise(const char *msg)
{
	static const char *const noise[] = { "WARNING", "Server initialized",
	    "Configuration loaded", "oO0OoO0OoO0Oo", "Redis version=",
	    "Valkey version=", "User requested shutdown", "Received SIGTERM",
	    "is now ready to exit", "Warning: no config file",
	    "Terminating server after rdb file reading failure" };

	for (size_t i = 0; i < nitems(noise); i++)
		if (str_startswith(msg, noise[i]) ||
		    strstr(msg, noise[i]) != NULL)
			return 1;
	return 0;
}

char *
redis_log_error(const char *log)
{
	const char *line, *next, *msg, *lines[3];
	size_t n = 0, len;
	struct buf b;

	for (line = log; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		len = next != NULL ? (size_t)(next - line) : strlen(line);
		if (next != NULL)
			next++;
		/* "PID:M 26 Nov 2026 14:25:47.899 # message" */
		msg = memmem(line, len, " # ", 3);
		if (msg == NULL)
			continue;
		msg += 3;
		if (redis_log_noise(msg))
			continue;
		if (n == nitems(lines))
			memmove(lines, lines + 1, sizeof(lines[0]) * --n);
		lines[n++] = msg;
	}
	if (n == 0)
		return NULL;
	buf_init(&b, 4096);
	for (size_t i = 0; i < n; i++) {
		len = strcspn(lines[i], "\r\n");
		if (len > 300)
			len = 300;
		if (i > 0)
			buf_adds(&b, " | ");
		for (size_t k = 0; k < len; k++)
			buf_add(&b, (unsigned char)lines[i][k] < 0x20 ? "?" :
			    &lines[i][k], 1);
	}
	return buf_detach(&b, NULL);
}

int
redis_log_loaded(const char *log, long long *loaded, long long *expired)
{
	static const char mark[] = "Done loading RDB, keys loaded: ";
	const char *p = NULL, *q;

	for (q = log; (q = strstr(q, mark)) != NULL; q++)
		p = q;
	if (p == NULL || sscanf(p + sizeof(mark) - 1,
	    "%lld, keys expired: %lld", loaded, expired) != 2 ||
	    *loaded < 0 || *expired < 0)
		return -1;
	return 0;
}

char *
redis_server_version(const char *text)
{
	const char *p = strstr(text, " v=");
	size_t len;

	if (p == NULL)
		return NULL;
	p += 3;
	len = strspn(p, "0123456789.");
	if (len == 0 || len > 32)
		return NULL;
	return xstrndup(p, len);
}

/*
 * An RDB drill compares what the snapshot holds with the key counts INFO
 * gave when the backup was prepared, moments before the snapshot was
 * taken: not the same instant, so not an exact match.  What counts as a
 * difference, per database:
 *   - more keys loaded than the manifest counted, beyond the slack;
 *   - fewer, beyond the slack, even if every key that redis-server
 *     dropped as expired while loading had been in this database.
 * The slack is 10% of the manifest's count plus 10 keys: far more than
 * a server changes in the second between INFO and the snapshot, far
 * less than a snapshot of some other dataset, or of a lost database,
 * would be off by.  A database the manifest never counted must come
 * within the slack of 0.
 */
int
redis_rdb_count_differs(long long want, long long got, long long expired)
{
	long long slack = want / 10 + 10;

	if (got > want + slack)
		return 1;
	return got + expired + slack < want;
}

/* ---- restore: a temporary redis-server -------------------------------- */

struct redis_temp {
	char		*dir;		/* private, 0700 */
	char		*sock;
	char		*log;
	char		*version;	/* of redis-server */
	struct proc	 p;
	struct tail	 out;		/* its stdout and stderr */
	redisContext	*c;
};

/* Stop it (its whole process group) and remove its directory. */
static void
redis_temp_stop(struct redis_temp *T)
{
	int status;

	if (T->c != NULL)
		redisFree(T->c);
	T->c = NULL;
	if (T->p.pid > 0) {
		kill(-T->p.pid, SIGTERM);
		proc_reap(&T->p, REDIS_TERM_GRACE_MS, &status);
	}
	T->p.pid = -1;
	if (T->dir != NULL)
		dir_remove_tree(T->dir);
	free(T->dir);
	free(T->sock);
	free(T->log);
	free(T->version);
	T->dir = T->sock = T->log = T->version = NULL;
}

/* Read what it wrote on stdout and stderr, without waiting. */
static void
redis_temp_drain(struct redis_temp *T, int wait_ms)
{
	struct pollfd pf[2] = { { T->p.out_fd, POLLIN, 0 },
	    { T->p.err_fd, POLLIN, 0 } };
	char chunk[4096];
	ssize_t n;

	if (T->p.out_fd == -1 && T->p.err_fd == -1) {
		if (wait_ms > 0)
			poll(NULL, 0, wait_ms);
		return;
	}
	if (poll(pf, 2, wait_ms) <= 0)
		return;
	for (int i = 0; i < 2; i++) {
		int *fd = i == 0 ? &T->p.out_fd : &T->p.err_fd;

		if (*fd == -1 || !(pf[i].revents & (POLLIN | POLLHUP |
		    POLLERR)))
			continue;
		n = read(*fd, chunk, sizeof(chunk));
		if (n > 0)
			tail_add(&T->out, chunk, (size_t)n);
		else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(*fd);
			*fd = -1;
		}
	}
}

/* Why the temporary server stopped, from its log and output. */
static char *
redis_temp_why(struct redis_temp *T, int status)
{
	char *log = file_read(T->log, REDIS_LOG_MAX, NULL), *why;
	const char *out;

	why = log != NULL ? redis_log_error(log) : NULL;
	free(log);
	if (why != NULL)
		return why;
	out = tail_text(&T->out, 3);
	if (*out != '\0')
		return redis_printable(out, strlen(out), 400);
	return proc_status_text(status);
}

static int
redis_version_at_least(const char *v, int major, int minor)
{
	int a = 0, b = 0;

	if (v == NULL || sscanf(v, "%d.%d", &a, &b) < 1)
		return 0;
	return a > major || (a == major && b >= minor);
}

/*
 * Start t->redis_server on a unix socket in a private directory, loading
 * rdb (NULL: empty), and wait until it answers PING (not LOADING).  On
 * failure everything is removed again.  What it cannot load is said
 * with the versions: "redis-server 7.0.15 cannot load this RDB (version
 * 11, made by redis 7.2.4): Can't handle RDB format version 11".
 */
static int
redis_temp_start(struct job_ctx *ctx, const cJSON *manifest,
    const char *rdb, long long databases, struct redis_temp *T,
    char **cause)
{
	const struct target *t = ctx->target;
	const char *server = t->redis_server != NULL ? t->redis_server :
	    "redis-server";
	const char *vargv[] = { server, "--version", NULL };
	const char *base = getenv("TMPDIR"), *argv[40];
	char *out = NULL, *why = NULL, *target = NULL, *link = NULL;
	char dbs[32], made[128];
	struct tail err;
	redisContext *c;
	redisReply *r;
	size_t n = 0;
	int status, ver;
	pid_t w;

	memset(T, 0, sizeof(*T));
	T->p.pid = -1;
	T->p.in_fd = T->p.out_fd = T->p.err_fd = -1;
	memset(&err, 0, sizeof(err));
	if (proc_run(vargv, NULL, &out, 4096, &err, &status, &why) == -1 ||
	    !proc_ok(status) || (T->version = redis_server_version(out)) ==
	    NULL) {
		*cause = xasprintf("%s: %s (install redis-server, or set "
		    "redis_server = /path/to/redis-server in [redis %s])",
		    server, why != NULL ? why : *tail_text(&err, 2) != '\0' ?
		    tail_text(&err, 2) : "did not say its version", t->name);
		free(why);
		free(out);
		return -1;
	}
	free(out);

	/* sun_path holds 108 bytes: a long TMPDIR falls back to /tmp. */
	if (base == NULL || *base != '/' || strlen(base) > 60)
		base = "/tmp";
	T->dir = xasprintf("%s/bbrestore-redis.XXXXXX", base);
	if (mkdtemp(T->dir) == NULL) {
		*cause = xasprintf("cannot make a directory for the temporary "
		    "redis-server (%s): %s", T->dir, strerror(errno));
		free(T->dir);
		T->dir = NULL;
		return -1;
	}
	T->sock = xasprintf("%s/redis.sock", T->dir);
	T->log = xasprintf("%s/redis.log", T->dir);
	if (rdb != NULL) {
		/* A link: redis-server only reads it, and may not move it. */
		if ((target = realpath(rdb, NULL)) == NULL) {
			*cause = xasprintf("%s: %s", rdb, strerror(errno));
			goto fail;
		}
		link = xasprintf("%s/dump.rdb", T->dir);
		if (symlink(target, link) == -1) {
			*cause = xasprintf("symlink %s: %s", link,
			    strerror(errno));
			goto fail;
		}
	}
	snprintf(dbs, sizeof(dbs), "%lld", databases < 16 ? 16 : databases);
	argv[n++] = server;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--unixsocket";
	argv[n++] = T->sock;
	argv[n++] = "--unixsocketperm";
	argv[n++] = "700";
	argv[n++] = "--dir";
	argv[n++] = T->dir;
	argv[n++] = "--dbfilename";
	argv[n++] = "dump.rdb";
	argv[n++] = "--logfile";
	argv[n++] = T->log;
	argv[n++] = "--daemonize";
	argv[n++] = "no";
	argv[n++] = "--save";
	argv[n++] = "";
	argv[n++] = "--appendonly";
	argv[n++] = "no";
	argv[n++] = "--databases";
	argv[n++] = dbs;
	argv[n++] = "--maxmemory";
	argv[n++] = "0";
	/* Check every payload deeply: a drill's whole point. */
	if (redis_version_at_least(T->version, 6, 2)) {
		argv[n++] = "--sanitize-dump-payload";
		argv[n++] = "yes";
	}
	argv[n] = NULL;
	if (proc_spawn(&T->p, argv, NULL, PROC_STDOUT | PROC_STDERR |
	    PROC_NEWGROUP, cause) == -1)
		goto fail;
	backend_log(ctx, "info", "%s %s %s in %s", server, T->version,
	    rdb != NULL ? "loads the RDB" : "started (empty)", T->dir);

	for (;;) {
		if (redis_is_cancelled(ctx)) {
			*cause = xstrdup("cancelled");
			goto fail;
		}
		redis_temp_drain(T, REDIS_LOAD_POLL_MS);
		if ((w = waitpid(T->p.pid, &status, WNOHANG)) == T->p.pid) {
			T->p.pid = -1;
			while (T->p.out_fd != -1 || T->p.err_fd != -1)
				redis_temp_drain(T, 100);
			why = redis_temp_why(T, status);
			if (rdb == NULL) {
				*cause = xasprintf("the temporary %s %s did not "
				    "start: %s", server, T->version, why);
				free(why);
				goto fail;
			}
			ver = json_int(manifest, "rdb_version", 0, 1000);
			if (json_str(manifest, "server") != NULL &&
			    json_str(manifest, "server_version") != NULL)
				snprintf(made, sizeof(made), ", made by %s %s",
				    json_str(manifest, "server"),
				    json_str(manifest, "server_version"));
			else if (redis_rdb_writer(ver) != NULL)
				snprintf(made, sizeof(made), ", made by %s",
				    redis_rdb_writer(ver));
			else
				made[0] = '\0';
			if (ver > 0)
				*cause = xasprintf("%s %s cannot load this RDB "
				    "(version %d%s): %s", server, T->version,
				    ver, made, why);
			else
				*cause = xasprintf("%s %s cannot load this RDB"
				    "%s: %s", server, T->version, made, why);
			free(why);
			goto fail;
		}
		if (access(T->sock, F_OK) == -1)
			continue;
		c = redisConnectUnix(T->sock);
		if (c == NULL || c->err) {
			if (c != NULL)
				redisFree(c);
			continue;
		}
		r = redisCommand(c, "PING");
		if (r != NULL && r->type == REDIS_REPLY_STATUS) {
			freeReplyObject(r);
			T->c = c;
			break;
		}
		if (r != NULL)
			freeReplyObject(r);
		/* LOADING: not yet; INFO says how far (it answers then) */
		if ((r = redisCommand(c, "INFO persistence")) != NULL &&
		    r->type == REDIS_REPLY_STRING) {
			long long done = redis_info_ll(r->str,
			    "loading_loaded_bytes");
			long long total = redis_info_ll(r->str,
			    "loading_total_bytes");

			if (done >= 0 && total > 0)
				backend_progress(ctx, "load", (uint64_t)done,
				    (uint64_t)total);
		}
		if (r != NULL)
			freeReplyObject(r);
		redisFree(c);
	}
	/* Its output is in the log from now on. */
	if (T->p.out_fd != -1)
		close(T->p.out_fd);
	if (T->p.err_fd != -1)
		close(T->p.err_fd);
	T->p.out_fd = T->p.err_fd = -1;
	{
		struct timeval tv = { REDIS_COMMAND_TIMEOUT_S, 0 };

		redisSetTimeout(T->c, tv);
	}
	free(target);
	free(link);
	return 0;

fail:
	free(target);
	free(link);
	redis_temp_stop(T);
	return -1;
}

/* ---- restore: the backend --------------------------------------------- */

/* What a restore tells the operator: "notes" and "differences". */
struct redis_report {
	cJSON	*result;
	cJSON	*notes;
	cJSON	*differences;
};

static void
redis_report_init(struct redis_report *R, cJSON *result)
{
	R->result = result;
	R->notes = cJSON_CreateArray();
	R->differences = cJSON_CreateArray();
	backend_fact(result, "notes", R->notes);
	backend_fact(result, "differences", R->differences);
}

/* A failure for every difference found: their count, the first one. */
static int
redis_report_verdict(struct redis_report *R, char **cause)
{
	int n = cJSON_GetArraySize(R->differences);

	if (n == 0)
		return 0;
	*cause = xasprintf("%d difference%s from the manifest: %s%s", n,
	    n == 1 ? "" : "s", cJSON_GetArrayItem(R->differences,
	    0)->valuestring, n > 1 ? " ..." : "");
	return -1;
}

/* "redis://host:6379/0, /3": where the keys went, without a password. */
static char *
redis_into_text(const struct redis_url *u, const struct redis_dbs *dbs)
{
	struct buf b;

	buf_init(&b, 64 * 1024);
	if (u->path != NULL)
		buf_addf(&b, "unix://%s", u->path);
	else {
		buf_addf(&b, "%s://%s%s", u->tls ? "rediss" : "redis",
		    u->user != NULL ? u->user : "", u->user != NULL ? "@" :
		    "");
		if (strchr(u->host, ':') != NULL)
			buf_addf(&b, "[%s]:%d", u->host, u->port);
		else
			buf_addf(&b, "%s:%d", u->host, u->port);
	}
	for (size_t i = 0; i < dbs->n; i++) {
		if (u->path != NULL)
			buf_addf(&b, "%s%u", i == 0 ? "?db=" : ", db=",
			    dbs->v[i].db);
		else
			buf_addf(&b, "%s%u", i == 0 ? "/" : ", /", dbs->v[i].db);
	}
	return buf_detach(&b, NULL);
}

/* Keys per database before or after, from INFO keyspace. */
static int
redis_count_keys(struct redis_target *T, struct redis_dbs *dbs, int after,
    long long *total, char **cause)
{
	cJSON *keys;

	if ((keys = redis_target_keyspace(T, cause)) == NULL)
		return -1;
	for (size_t i = 0; i < dbs->n; i++) {
		if (after)
			dbs->v[i].after = redis_keys_in(keys, dbs->v[i].db);
		else
			dbs->v[i].before = redis_keys_in(keys, dbs->v[i].db);
	}
	*total = redis_keys_total(keys);
	cJSON_Delete(keys);
	return 0;
}

/* FLUSHDB in every database the backup restores into, first. */
static int
redis_flush_dbs(struct redis_put *P, const struct redis_dbs *dbs,
    struct redis_report *R, char **cause)
{
	long long removed = 0;
	struct buf names;

	buf_init(&names, 64 * 1024);
	buf_adds(&names, "");
	for (size_t i = 0; i < dbs->n; i++) {
		if (redis_put_flushdb(P, dbs->v[i].db, cause) == -1) {
			buf_release(&names);
			return -1;
		}
		removed += dbs->v[i].before > 0 ? dbs->v[i].before : 0;
		buf_addf(&names, "%sdb%u", i > 0 ? ", " : "", dbs->v[i].db);
	}
	if (redis_put_flush(P, cause) == -1) {
		buf_release(&names);
		return -1;
	}
	if (dbs->n > 0)
		json_addf(R->notes, "--flush: emptied %s first (%lld key%s removed)",
		    names.data, removed, removed == 1 ? "" : "s");
	buf_release(&names);
	return 0;
}

/* The notes every restore into the target ends with. */
static void
redis_report_target(struct redis_report *R, const struct redis_put *P,
    const struct redis_dbs *dbs, long long before, long long after,
    int flush)
{
	for (size_t i = 0; i < dbs->n; i++) {
		const struct redis_dbcount *d = &dbs->v[i];

		json_addf(R->notes, "db%u: %llu key%s restored, keys before %lld, "
		    "after %lld", d->db, (unsigned long long)d->restored,
		    d->restored == 1 ? "" : "s", d->before, d->after);
	}
	json_addf(R->notes, "keys before %lld, after %lld (all databases)", before,
	    after);
	if (P->expired > 0)
		json_addf(R->notes, "%llu key%s had expired since the backup (their "
		    "TTL ran out) and %s not restored",
		    (unsigned long long)P->expired, P->expired == 1 ? "" : "s",
		    P->expired == 1 ? "was" : "were");
	if (!flush)
		json_addf(R->notes, "keys that are not in the backup were left as "
		    "they are (--flush empties the databases first)");
	cJSON_AddNumberToObject(R->result, "keys_before", (double)before);
	cJSON_AddNumberToObject(R->result, "keys_after", (double)after);
	cJSON_AddNumberToObject(R->result, "restored", (double)P->restored);
	cJSON_AddNumberToObject(R->result, "expired", (double)P->expired);
}

/*
 * Read a logical backup through once before anything is touched: every
 * record's framing and payload CRC, the end record, and how many
 * records each database has.
 */
static int
redis_logical_scan(struct job_ctx *ctx, FILE *f, struct redis_dbs *dbs,
    uint64_t *records, char **cause)
{
	struct redis_frame_reader rd;
	struct redis_record rec;
	int64_t last = 0;
	int rv;

	redis_frame_reader_init(&rd, f);
	backend_progress(ctx, "check", 0, rd.size);
	while ((rv = redis_frame_read(&rd, &rec, cause)) == 1) {
		redis_dbs_get(dbs, rec.db)->records++;
		if (mono_ms() - last >= REDIS_PROGRESS_MS) {
			last = mono_ms();
			if (redis_is_cancelled(ctx)) {
				*cause = xstrdup("cancelled");
				rv = -1;
				break;
			}
			backend_progress(ctx, "check", rd.offset, rd.size);
		}
	}
	*records = rd.records;
	redis_frame_reader_release(&rd);
	if (rv == -1)
		return -1;
	backend_progress(ctx, "check", rd.offset, rd.size);
	return 0;
}

/*
 * A logical backup, into the target or (drill) into an empty temporary
 * server.  The TTLs in the file are as of the backup's start: a key
 * keeps what it had left then, minus the time since; a key whose TTL
 * has run out since is not restored (it would be gone by now), and a
 * key of the same name in the target is left as it is.  A drill
 * restores every key without its TTL, so that none can expire while
 * the keys are counted, and without REPLACE, so that a key the backup
 * holds twice (SCAN may return one twice) is counted, not hidden.
 */
static int
redis_restore_logical(struct job_ctx *ctx, const cJSON *manifest,
    const char *raw, const struct restore_opts *opts, cJSON *result,
    char **cause)
{
	struct redis_report R;
	struct redis_dbs dbs = { NULL, 0 };
	struct redis_frame_reader rd;
	struct redis_record rec;
	struct redis_put P;
	struct redis_temp tmp;
	struct redis_target dst;
	char *into = NULL;
	long long before = 0, after = 0, maxdb = 0;
	uint64_t records = 0;
	double want, started;
	FILE *f;
	int rv, rc = -1;

	memset(&tmp, 0, sizeof(tmp));
	tmp.p.pid = -1;
	memset(&dst, 0, sizeof(dst));
	memset(&P, 0, sizeof(P));
	P.cli.pid = -1;
	redis_report_init(&R, result);
	if ((f = fopen(raw, "rb")) == NULL) {
		*cause = xasprintf("%s: %s", raw, strerror(errno));
		return -1;
	}
	if (redis_logical_scan(ctx, f, &dbs, &records, cause) == -1) {
		char *why = *cause;

		*cause = xasprintf("the backup cannot be read: %s%s", why,
		    opts->drill ? "" : "; nothing was restored");
		free(why);
		goto done;
	}
	for (size_t i = 0; i < dbs.n; i++) {
		if (dbs.v[i].db > maxdb)
			maxdb = dbs.v[i].db;
		dbs.v[i].records = 0;		/* counted again */
	}
	if (json_get_num(manifest, "records", &want) == 0 && (want < 0 ||
	    (uint64_t)want != records)) {
		if (!opts->drill) {
			*cause = xasprintf("the backup holds %llu records, its "
			    "manifest says %.0f: not restoring it (run "
			    "`backupbot verify` on it)",
			    (unsigned long long)records, want);
			goto done;
		}
		json_addf(R.differences, "%.0f records in the manifest, %llu in "
		    "the backup", want, (unsigned long long)records);
	}

	if (opts->drill) {
		if (redis_temp_start(ctx, manifest, NULL, maxdb + 1, &tmp,
		    cause) == -1)
			goto done;
		dst.ctx = ctx;
		dst.c = tmp.c;
		dst.scratch = 1;
		dst.where = xstrdup("the temporary redis-server");
		cJSON_AddStringToObject(result, "into", "a temporary "
		    "redis-server (removed afterwards)");
	} else {
		if (redis_target_open(ctx, &dst, cause) == -1)
			goto done;
		into = redis_into_text(&dst.u, &dbs);
		cJSON_AddStringToObject(result, "into", into);
	}
	if (redis_count_keys(&dst, &dbs, 0, &before, cause) == -1 ||
	    redis_target_check_dbs(&dst, &dbs, cause) == -1 ||
	    redis_put_init(&P, &dst, opts->drill, &dbs, cause) == -1)
		goto done;
	if (!opts->drill && opts->flush && redis_flush_dbs(&P, &dbs, &R,
	    cause) == -1)
		goto done;
	P.total = records;
	if (json_get_num(manifest, "started", &started) == 0 && started > 0)
		P.taken_ms = (int64_t)started * 1000;
	rewind(f);
	redis_frame_reader_init(&rd, f);
	backend_log(ctx, "info", "restoring %llu keys into %s",
	    (unsigned long long)records, opts->drill ? dst.where : into);
	while ((rv = redis_frame_read(&rd, &rec, cause)) == 1)
		if (redis_put_key(&P, rec.db, rec.key, rec.key_len, rec.ttl_ms,
		    rec.payload, rec.payload_len, cause) == -1) {
			rv = -1;
			break;
		}
	redis_frame_reader_release(&rd);
	if (rv == -1 || redis_put_finish(&P, cause) == -1)
		goto done;
	backend_progress(ctx, "restore", P.records, P.records);
	if (redis_count_keys(&dst, &dbs, 1, &after, cause) == -1)
		goto done;

	cJSON_AddNumberToObject(result, "compared", (double)records);
	if (opts->drill) {
		const cJSON *listed = cJSON_GetObjectItemCaseSensitive(manifest,
		    "databases"), *it;

		/* Every record is a key, unless it came twice. */
		for (size_t i = 0; i < dbs.n; i++) {
			const struct redis_dbcount *d = &dbs.v[i];
			int found = !cJSON_IsArray(listed);

			cJSON_ArrayForEach(it, listed)
				if (cJSON_IsNumber(it) &&
				    it->valuedouble >= 0 &&
				    it->valuedouble <= 1000000 &&
				    (uint32_t)it->valuedouble == d->db)
					found = 1;
			if (!found)
				json_addf(R.differences, "db%u: in the backup, but "
				    "not among the manifest's databases", d->db);
			if ((uint64_t)d->after != d->records - d->duplicates)
				json_addf(R.differences, "db%u: %llu records in the "
				    "backup (%llu of them repeats), %lld keys "
				    "restored", d->db,
				    (unsigned long long)d->records,
				    (unsigned long long)d->duplicates, d->after);
			json_addf(R.notes, "db%u: %llu key%s%s", d->db,
			    (unsigned long long)(d->records - d->duplicates),
			    d->records - d->duplicates == 1 ? "" : "s",
			    d->duplicates > 0 ? " (and repeats of some: SCAN "
			    "returned them twice)" : "");
		}
		json_addf(R.notes, "%llu records restored into a temporary "
		    "redis-server %s and counted", (unsigned long long)records,
		    tmp.version);
		cJSON_AddNumberToObject(result, "keys_after", (double)after);
	} else {
		redis_report_target(&R, &P, &dbs, before, after, opts->flush);
		if (P.taken_ms != 0)
			json_addf(R.notes, "TTLs count from the backup's start: a "
			    "key keeps what it had left then, less the time "
			    "since");
		if (P.restored + P.expired != records)
			json_addf(R.differences, "%llu records in the backup, %llu "
			    "restored and %llu expired",
			    (unsigned long long)records,
			    (unsigned long long)P.restored,
			    (unsigned long long)P.expired);
	}
	rc = redis_report_verdict(&R, cause);
done:
	redis_put_release(&P);
	redis_target_close(&dst);
	redis_temp_stop(&tmp);
	fclose(f);
	free(dbs.v);
	free(into);
	return rc;
}

/* The number of databases a temporary server needs for these keys. */
static long long
redis_databases_for(const cJSON *keys)
{
	const cJSON *it;
	long long db, most = 15;

	cJSON_ArrayForEach(it, keys)
		if (it->string != NULL && str_startswith(it->string, "db") &&
		    str_to_ll(it->string + 2, 0, 1000000, &db) == 0 &&
		    db > most)
			most = db;
	return most + 1;
}

/*
 * An RDB: a temporary redis-server loads it (a drill stops there and
 * compares), then every key is read from it with SCAN + DUMP + PTTL, as
 * a logical backup reads a server, and RESTOREd into the target.  TTLs
 * are redis-server's: it drops keys that expired since the snapshot
 * while it loads them, and PTTL says what is left of the others.
 */
static int
redis_restore_rdb(struct job_ctx *ctx, const cJSON *manifest,
    const char *raw, const struct restore_opts *opts, cJSON *result,
    char **cause)
{
	const cJSON *mkeys = cJSON_GetObjectItemCaseSensitive(manifest, "keys");
	struct redis_report R;
	struct redis_dbs dbs = { NULL, 0 }, want = { NULL, 0 };
	struct redis_logical L;
	struct redis_put P;
	struct redis_temp tmp;
	struct redis_target dst, scratch;
	cJSON *loaded = NULL;
	const cJSON *it;
	char *into = NULL, *log;
	long long nloaded = -1, nexpired = -1, total, before = 0, after = 0;
	long long db;
	int rc = -1;

	memset(&dst, 0, sizeof(dst));
	memset(&P, 0, sizeof(P));
	P.cli.pid = -1;
	memset(&L, 0, sizeof(L));
	memset(&tmp, 0, sizeof(tmp));
	tmp.p.pid = -1;
	redis_report_init(&R, result);
	/*
	 * The target first: nothing to load if it cannot be reached.  It
	 * is connected to again after the load, which may take long enough
	 * for an idle connection to be closed.
	 */
	if (!opts->drill) {
		if (redis_target_open(ctx, &dst, cause) == -1)
			return -1;
		redis_target_close(&dst);
	}
	if (redis_temp_start(ctx, manifest, raw, redis_databases_for(mkeys),
	    &tmp, cause) == -1)
		goto done;
	memset(&scratch, 0, sizeof(scratch));
	scratch.ctx = ctx;
	scratch.c = tmp.c;
	scratch.scratch = 1;
	scratch.where = (char *)"the temporary redis-server";
	loaded = redis_target_keyspace(&scratch, cause);
	if (loaded == NULL)
		goto done;
	total = redis_keys_total(loaded);
	if ((log = file_read(tmp.log, REDIS_LOG_MAX, NULL)) != NULL) {
		if (redis_log_loaded(log, &nloaded, &nexpired) == -1)
			nloaded = nexpired = -1;
		free(log);
	}
	cJSON_ArrayForEach(it, loaded)
		if (it->string != NULL && str_startswith(it->string, "db") &&
		    str_to_ll(it->string + 2, 0, 1000000, &db) == 0)
			redis_dbs_get(&dbs, (uint32_t)db)->loaded =
			    (long long)it->valuedouble;

	if (opts->drill) {
		cJSON_AddStringToObject(result, "into", "a temporary "
		    "redis-server (removed afterwards)");
		cJSON_ArrayForEach(it, mkeys)
			if (it->string != NULL &&
			    !strncmp(it->string, "db", 2) &&
			    str_to_ll(it->string + 2, 0,
			    1000000, &db) == 0 && cJSON_IsNumber(it) &&
			    it->valuedouble >= 0 &&
			    it->valuedouble <= JSON_NUM_MAX)
				redis_dbs_get(&want, (uint32_t)db)->records =
				    (uint64_t)it->valuedouble;
		for (size_t i = 0; i < dbs.n; i++)
			redis_dbs_get(&want, dbs.v[i].db);
		for (size_t i = 0; i < want.n; i++) {
			uint32_t n = want.v[i].db;
			long long got = redis_keys_in(loaded, n);

			if (redis_rdb_count_differs((long long)want.v[i].records,
			    got, nexpired > 0 ? nexpired : 0))
				json_addf(R.differences, "db%u: %llu keys when the "
				    "backup was prepared, %lld in the snapshot",
				    n, (unsigned long long)want.v[i].records, got);
			json_addf(R.notes, "db%u: %lld key%s loaded (%llu when the "
			    "backup was prepared)", n, got, got == 1 ? "" : "s",
			    (unsigned long long)want.v[i].records);
		}
		if (nexpired > 0)
			json_addf(R.notes, "%lld keys had expired since the "
			    "snapshot; redis-server dropped them while loading",
			    nexpired);
		json_addf(R.notes, "the RDB loaded into a temporary redis-server "
		    "%s: %lld keys", tmp.version, total);
		cJSON_AddNumberToObject(result, "compared", (double)(total +
		    (nexpired > 0 ? nexpired : 0)));
		cJSON_AddNumberToObject(result, "keys_after", (double)total);
		rc = redis_report_verdict(&R, cause);
		goto done;
	}

	if (redis_target_open(ctx, &dst, cause) == -1)
		goto done;
	into = redis_into_text(&dst.u, &dbs);
	cJSON_AddStringToObject(result, "into", into);
	if (redis_count_keys(&dst, &dbs, 0, &before, cause) == -1 ||
	    redis_target_check_dbs(&dst, &dbs, cause) == -1 ||
	    redis_put_init(&P, &dst, 0, &dbs, cause) == -1)
		goto done;
	if (opts->flush && redis_flush_dbs(&P, &dbs, &R, cause) == -1)
		goto done;
	P.total = (uint64_t)total;
	L.ctx = ctx;
	L.c = tmp.c;
	L.emit = redis_emit_put;
	L.arg = &P;
	L.keys_total = (uint64_t)total;
	backend_log(ctx, "info", "restoring %lld keys into %s", total, into);
	for (size_t i = 0; i < dbs.n; i++) {
		uint64_t vanished = L.vanished;

		if (redis_logical_db(&L, (int)dbs.v[i].db, cause) == -1)
			goto done;
		/* expired in the temporary server while it was read */
		dbs.v[i].expired += L.vanished - vanished;
		P.expired += L.vanished - vanished;
	}
	if (redis_put_finish(&P, cause) == -1)
		goto done;
	backend_progress(ctx, "restore", P.records, P.records);
	if (redis_count_keys(&dst, &dbs, 1, &after, cause) == -1)
		goto done;

	/* SCAN returns every key at least once: none may be missing. */
	for (size_t i = 0; i < dbs.n; i++) {
		const struct redis_dbcount *d = &dbs.v[i];

		if (d->restored + d->expired < (uint64_t)d->loaded)
			json_addf(R.differences, "db%u: %lld keys in the backup, "
			    "%llu restored", d->db, d->loaded,
			    (unsigned long long)d->restored);
	}
	cJSON_AddNumberToObject(result, "compared", (double)total);
	redis_report_target(&R, &P, &dbs, before, after, opts->flush);
	json_addf(R.notes, "the RDB was read through a temporary redis-server %s",
	    tmp.version);
	rc = redis_report_verdict(&R, cause);
done:
	redis_put_release(&P);
	redis_target_close(&dst);
	redis_temp_stop(&tmp);
	cJSON_Delete(loaded);
	free(dbs.v);
	free(want.v);
	free(into);
	return rc;
}

int
redis_restore(struct job_ctx *ctx, const cJSON *manifest, const char *raw,
    const struct restore_opts *opts, cJSON *result, char **cause)
{
	const char *mode = json_str(manifest, "mode");
	const char *format = json_str(manifest, "format");

	*cause = NULL;
	if (raw == NULL) {
		*cause = xstrdup("no backup stream to restore");
		return -1;
	}
	if ((mode != NULL && strcmp(mode, "logical") == 0) ||
	    (format != NULL && strcmp(format, "BBREDIS1") == 0))
		return redis_restore_logical(ctx, manifest, raw, opts, result,
		    cause);
	return redis_restore_rdb(ctx, manifest, raw, opts, result, cause);
}
