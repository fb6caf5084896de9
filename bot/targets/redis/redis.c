/*
 * redis.c - the Redis/Valkey backend: an RDB snapshot taken over the
 * replication protocol, the way `redis-cli --rdb` takes one, or a logical
 * dump (SCAN + DUMP + PTTL) for servers that refuse SYNC.  The formats
 * are described in redis.h.
 *
 * redis:// and unix:// go through hiredis; after SYNC the RDB bytes are
 * read raw from hiredis' socket and never parsed by it.  hiredis 0.14 has
 * no TLS, so rediss:// runs `redis-cli --tls` (INFO, and `--rdb -` for
 * the snapshot) with the password in REDISCLI_AUTH (and VALKEYCLI_AUTH,
 * for valkey-cli); the logical mode needs hiredis and is refused over
 * TLS.
 *
 * Every RDB is checked while it streams: its header, the EOF opcode at
 * its end and its CRC64; any mismatch or short read fails the backup.
 * verify runs redis-check-rdb (the one beside redis_cli) over the whole
 * stream; a logical backup is read back by a forked copy of this process
 * that checks every DUMP payload's CRC64 and the record count.
 *
 * The password is read from password_file just before it is needed and
 * wiped right after: sent to the server from a buffer of our own (not
 * hiredis' output buffer), or put in redis-cli's environment.
 *
 * Restores (redis.h) RESTORE every key into the configured server, over
 * hiredis, or over TLS fed to `redis-cli --tls --pipe`; an RDB is read
 * through a temporary redis-server in a private directory, which is
 * always stopped and removed again.
 *
 * This file is the glue: connections (hiredis, redis-cli), INFO facts,
 * prepare, backup, the forked reader and the probe.  url.c, rdb.c,
 * logical.c, load.c and restore.c hold the rest (README.md).
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

/* ---- redis-cli -------------------------------------------------------- */

static int
redis_is_ip(const char *host)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1;
}

char **
redis_cli_argv(const struct target *t, const struct redis_url *u,
    const char *const *extra)
{
	size_t n = 0, nextra = 0;
	char **argv;

	while (extra != NULL && extra[nextra] != NULL)
		nextra++;
	argv = xcalloc(16 + nextra, sizeof(*argv));
	argv[n++] = xstrdup(t->redis_cli != NULL ? t->redis_cli : "redis-cli");
	if (u->tls) {
		argv[n++] = xstrdup("--tls");
		if (!t->tls_verify)
			argv[n++] = xstrdup("--insecure");
		else if (t->tls_ca_file != NULL) {
			argv[n++] = xstrdup("--cacert");
			argv[n++] = xstrdup(t->tls_ca_file);
		}
		if (u->host != NULL && !redis_is_ip(u->host)) {
			argv[n++] = xstrdup("--sni");
			argv[n++] = xstrdup(u->host);
		}
	}
	if (u->path != NULL) {
		argv[n++] = xstrdup("-s");
		argv[n++] = xstrdup(u->path);
	} else {
		argv[n++] = xstrdup("-h");
		argv[n++] = xstrdup(u->host);
		argv[n++] = xstrdup("-p");
		argv[n++] = xasprintf("%d", u->port);
	}
	if (u->user != NULL) {
		argv[n++] = xstrdup("--user");
		argv[n++] = xstrdup(u->user);
	}
	for (size_t i = 0; i < nextra; i++)
		argv[n++] = xstrdup(extra[i]);
	argv[n] = NULL;
	return argv;
}

void
redis_argv_free(char **argv)
{
	strv_free(argv);
}

/* The number after prefix somewhere in text: 0 or -1. */
static int
redis_number_after(const char *text, const char *prefix, uint64_t *v)
{
	const char *p = strstr(text, prefix);
	unsigned long long n;
	char *end;

	if (p == NULL)
		return -1;
	p += strlen(prefix);
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	n = strtoull(p, &end, 10);
	if (errno != 0 || *end != ' ')
		return -1;
	*v = n;
	return 0;
}

int
redis_cli_rdb_length(const char *err, uint64_t *length, int *diskless)
{
	if (redis_number_after(err, "Transfer finished with success after ",
	    length) == 0) {
		*diskless = 1;
		return 0;
	}
	/* "SYNC sent to master, writing" (redis-cli), "to primary" (valkey). */
	if (redis_number_after(err, ", writing ", length) == 0) {
		*diskless = 0;
		return 0;
	}
	return -1;
}

char *
redis_check_tool(const char *redis_cli)
{
	const char *base, *slash;
	size_t len;

	if (redis_cli == NULL)
		return xstrdup("redis-check-rdb");
	slash = strrchr(redis_cli, '/');
	base = slash != NULL ? slash + 1 : redis_cli;
	len = strlen(base);
	if (len > 4 && strcmp(base + len - 4, "-cli") == 0)
		return xasprintf("%.*s-check-rdb", (int)(base - redis_cli +
		    len - 4), redis_cli);
	if (slash != NULL)
		return xasprintf("%.*sredis-check-rdb",
		    (int)(base - redis_cli), redis_cli);
	return xstrdup("redis-check-rdb");
}

/* ---- small helpers ---------------------------------------------------- */

int
redis_is_cancelled(struct job_ctx *ctx)
{
	return redis_cancelled(ctx->cancelled);
}

/* "127.0.0.1:6379", "/run/redis.sock": where, for messages. */
char *
redis_where(const struct redis_url *u)
{
	if (u->path != NULL)
		return xstrdup(u->path);
	if (strchr(u->host, ':') != NULL)
		return xasprintf("[%s]:%d", u->host, u->port);
	return xasprintf("%s:%d", u->host, u->port);
}

int
redis_parse_target(const struct target *t, struct redis_url *u,
    char **cause)
{
	char *why = NULL;

	if (t->url == NULL) {
		*cause = xasprintf("[redis %s]: url is required", t->name);
		memset(u, 0, sizeof(*u));
		return -1;
	}
	if (redis_url_parse(t->url, u, &why) == -1) {
		*cause = xasprintf("[redis %s] %s", t->name, why);
		free(why);
		return -1;
	}
	if (u->user != NULL && t->password_file == NULL) {
		*cause = xasprintf("[redis %s]: the url names the user '%s' but "
		    "there is no password_file: AUTH needs both", t->name,
		    u->user);
		redis_url_release(u);
		return -1;
	}
	return 0;
}

/* ---- hiredis ---------------------------------------------------------- */

/* Why the connection failed, for the operator. */
char *
redis_conn_error(const redisContext *c)
{
	if (c->err == REDIS_ERR_IO && (errno == EAGAIN ||
	    errno == EWOULDBLOCK))
		return xasprintf("no reply within %d s",
		    REDIS_COMMAND_TIMEOUT_S);
	if (c->err == REDIS_ERR_EOF)
		return xstrdup("the server closed the connection");
	return xstrdup(c->errstr[0] != '\0' ? c->errstr : "connection error");
}

int
redis_write_all(int fd, const void *data, size_t n, char **cause)
{
	const char *p = data;
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			*cause = xasprintf("sending to the server: %s",
			    errno == EAGAIN ? "timed out" : strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * AUTH [user] password, written from a buffer we wipe: hiredis would
 * keep a copy in its output buffer.
 */
static int
redis_auth(redisContext *c, const struct target *t, const char *user,
    const char *password, char **cause)
{
	struct buf b;
	redisReply *reply = NULL;
	char *shown;
	int rc = -1;

	buf_init(&b, 64 * 1024 + 256);
	if (user != NULL)
		buf_addf(&b, "*3\r\n$4\r\nAUTH\r\n$%zu\r\n%s\r\n", strlen(user),
		    user);
	else
		buf_adds(&b, "*2\r\n$4\r\nAUTH\r\n");
	buf_addf(&b, "$%zu\r\n", strlen(password));
	buf_add(&b, password, strlen(password));
	buf_adds(&b, "\r\n");
	if (redis_write_all(c->fd, b.data, b.len, cause) == -1)
		goto done;
	if (redisGetReply(c, (void **)&reply) != REDIS_OK) {
		shown = redis_conn_error(c);
		*cause = xasprintf("AUTH: %s", shown);
		free(shown);
		goto done;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		shown = redis_printable(reply->str, reply->len, 200);
		*cause = xasprintf("the server refused the password: %s (check "
		    "the password in %s%s%s)", shown, t->password_file,
		    user != NULL ? " and the user in the url" : "",
		    strstr(shown, "without any password") != NULL ?
		    ", or remove password_file: the server has none" : "");
		free(shown);
		goto done;
	}
	rc = 0;
done:
	if (reply != NULL)
		freeReplyObject(reply);
	secure_wipe(b.data, b.alloc);
	buf_release(&b);
	return rc;
}

/* Connect and authenticate; the password is wiped before returning. */
redisContext *
redis_connect(const struct target *t, const struct redis_url *u,
    char **cause)
{
	struct timeval tv = { REDIS_CONNECT_TIMEOUT_S, 0 };
	char *password = NULL, *where, *why;
	redisContext *c;

	if (backend_password(t, &password, cause) == -1)
		return NULL;
	where = redis_where(u);
	if (u->path != NULL)
		c = redisConnectUnixWithTimeout(u->path, tv);
	else
		c = redisConnectWithTimeout(u->host, u->port, tv);
	if (c == NULL || c->err) {
		why = c != NULL ? redis_conn_error(c) : xstrdup("out of memory");
		*cause = xasprintf("cannot connect to Redis at %s: %s", where,
		    why);
		free(why);
		goto fail;
	}
	tv.tv_sec = REDIS_COMMAND_TIMEOUT_S;
	redisSetTimeout(c, tv);
	if (password != NULL &&
	    redis_auth(c, t, u->user, password, &why) == -1) {
		*cause = xasprintf("Redis at %s: %s", where, why);
		free(why);
		goto fail;
	}
	secret_free(password);
	free(where);
	return c;

fail:
	secret_free(password);
	free(where);
	if (c != NULL)
		redisFree(c);
	return NULL;
}

/*
 * A command's reply, or NULL with *cause: a lost connection, or an error
 * reply (unless errors_ok).
 */
redisReply *
redis_cmd(redisContext *c, const struct target *t, int errors_ok,
    char **cause, int argc, const char **argv, const size_t *lens)
{
	redisReply *r;
	char *why, *shown;

	r = redisCommandArgv(c, argc, argv, lens);
	if (r == NULL) {
		why = redis_conn_error(c);
		*cause = xasprintf("%s: %s", argv[0], why);
		free(why);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR && !errors_ok) {
		shown = redis_printable(r->str, r->len, 200);
		if (str_startswith(shown, "NOAUTH") && t->password_file == NULL)
			*cause = xasprintf("%s: %s (set password_file in "
			    "[redis %s])", argv[0], shown, t->name);
		else
			*cause = xasprintf("%s: %s", argv[0], shown);
		free(shown);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

redisReply *
redis_cmd1(redisContext *c, const struct target *t, int errors_ok,
    char **cause, const char *a0, const char *a1, const char *a2)
{
	const char *argv[3] = { a0, a1, a2 };
	size_t lens[3] = { strlen(a0), a1 ? strlen(a1) : 0,
	    a2 ? strlen(a2) : 0 };

	return redis_cmd(c, t, errors_ok, cause, a2 ? 3 : a1 ? 2 : 1, argv,
	    lens);
}

char *
redis_info_text(redisContext *c, const struct target *t, char **cause)
{
	redisReply *r;
	char *text;

	if ((r = redis_cmd1(c, t, 0, cause, "INFO", NULL, NULL)) == NULL)
		return NULL;
	if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
		*cause = xstrdup("INFO: unexpected reply");
		freeReplyObject(r);
		return NULL;
	}
	text = xstrndup(r->str, r->len);
	freeReplyObject(r);
	return text;
}

/* ---- facts from INFO -------------------------------------------------- */

struct redis_facts {
	char		*server;	/* "redis", "valkey" */
	char		*version;
	long long	 used_memory;
	long long	 last_save;	/* rdb_last_save_time */
	long long	 keys_total;
	cJSON		*keys;		/* {"db0": N} */
	char		*role;
	int		 cluster;	/* one node of a Redis Cluster */
};

static void
redis_facts_release(struct redis_facts *f)
{
	free(f->server);
	free(f->version);
	free(f->role);
	cJSON_Delete(f->keys);
	memset(f, 0, sizeof(*f));
}

long long
redis_info_ll(const char *info, const char *field)
{
	char *v = redis_info_field(info, field);
	long long n = -1;

	if (v != NULL && str_to_ll(v, 0, INT64_MAX, &n) == -1)
		n = -1;
	free(v);
	return n;
}

/*
 * Only fields both servers have, plus valkey_version: Valkey answers
 * redis_version:7.2.4 for the clients that look at it.
 */
static int
redis_facts_parse(const char *info, struct redis_facts *f, char **cause)
{
	const cJSON *it;
	char *v, *shown;

	memset(f, 0, sizeof(*f));
	if ((v = redis_info_field(info, "valkey_version")) != NULL) {
		f->server = xstrdup("valkey");
		f->version = v;
	} else if ((v = redis_info_field(info, "redis_version")) != NULL) {
		f->server = redis_info_field(info, "server_name");
		if (f->server == NULL || *f->server == '\0') {
			free(f->server);
			f->server = xstrdup("redis");
		}
		f->version = v;
	} else {
		shown = redis_printable(info, strcspn(info, "\r\n"), 120);
		*cause = xasprintf("INFO did not come from a Redis or Valkey "
		    "server: \"%s\"", shown);
		free(shown);
		return -1;
	}
	f->used_memory = redis_info_ll(info, "used_memory");
	f->last_save = redis_info_ll(info, "rdb_last_save_time");
	f->role = redis_info_field(info, "role");
	f->cluster = redis_info_ll(info, "cluster_enabled") == 1;
	f->keys = redis_info_keyspace(info);
	cJSON_ArrayForEach(it, f->keys)
		f->keys_total += (long long)it->valuedouble;
	return 0;
}

/* ---- running redis-cli ------------------------------------------------ */

int
redis_emit(struct redis_clirun *r, const unsigned char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (pipe_out_write(r->out, p, n, &r->error) == -1)
		return -1;
	redis_rdb_check_feed(r->check, p, n);
	r->emitted += n;
	return 0;
}

/*
 * redis-cli 7.0 writes the 40-byte end mark of a diskless transfer to
 * a pipe too (it truncates a file afterwards, which a pipe cannot be):
 * what it writes goes on with the last 40 bytes held back, and its
 * stderr says at the end whether they belong to the RDB.
 */
static int
redis_clirun_stdout(struct redis_clirun *r, const unsigned char *p, size_t n)
{
	size_t total, out, from_held, from_data, k;
	unsigned char nh[REDIS_EOF_MARK_LEN];

	r->bytes += n;
	if (r->capture != NULL) {
		if (buf_add(r->capture, p, n) == -1) {
			r->error = xstrdup("redis-cli wrote too much");
			return -1;
		}
		return 0;
	}
	total = r->held_len + n;
	if (total <= sizeof(r->held)) {
		memcpy(r->held + r->held_len, p, n);
		r->held_len = total;
		return 0;
	}
	out = total - sizeof(r->held);
	from_held = out < r->held_len ? out : r->held_len;
	if (redis_emit(r, r->held, from_held) == -1)
		return -1;
	from_data = out - from_held;
	if (redis_emit(r, p, from_data) == -1)
		return -1;
	k = r->held_len - from_held;
	memcpy(nh, r->held + from_held, k);
	memcpy(nh + k, p + from_data, n - from_data);
	memcpy(r->held, nh, sizeof(nh));
	r->held_len = sizeof(r->held);
	return 0;
}

/* What redis_clirun's pump works with. */
struct redis_pump {
	struct job_ctx		*ctx;
	struct redis_clirun	*r;
};

static int
redis_pump_out(void *arg, const unsigned char *data, size_t n)
{
	return redis_clirun_stdout(((struct redis_pump *)arg)->r, data, n);
}

static int
redis_pump_stop(void *arg)
{
	struct redis_pump *a = arg;

	if (redis_is_cancelled(a->ctx))
		a->r->cancelled = 1;
	else if (a->r->deadline != 0 && mono_ms() >= a->r->deadline)
		a->r->timed_out = 1;
	return a->r->cancelled || a->r->timed_out;
}

static void
redis_pump_tick(void *arg)
{
	struct redis_pump *a = arg;
	struct redis_clirun *r = a->r;

	if (r->out != NULL)
		backend_progress(a->ctx, "dump", r->bytes, r->total > r->bytes ?
		    r->total : r->bytes);
}

/*
 * Run redis-cli to its end (see struct redis_clirun).  Returns 0 when it
 * could be started (then see r), -1 with *cause.
 */
int
redis_clirun(struct job_ctx *ctx, char *const *argv, const char *password,
    struct redis_clirun *r, char **cause)
{
	const char *env[3] = { NULL, NULL, NULL };
	struct redis_pump a = { ctx, r };
	struct pump pm = { redis_pump_out, redis_pump_stop, redis_pump_tick,
	    &a, REDIS_PROGRESS_MS, REDIS_POLL_MS, &r->err, NULL, NULL };
	char *auth = NULL, *vauth = NULL, *why = NULL;
	struct proc p;
	int stop, rc;

	/*
	 * valkey-cli reads VALKEYCLI_AUTH first, then REDISCLI_AUTH: both,
	 * so that one inherited from our environment cannot win.
	 */
	if (password != NULL) {
		auth = xasprintf("REDISCLI_AUTH=%s", password);
		vauth = xasprintf("VALKEYCLI_AUTH=%s", password);
		env[0] = auth;
		env[1] = vauth;
	}
	rc = proc_spawn(&p, (const char *const *)argv, env, PROC_STDOUT |
	    PROC_STDERR | PROC_NEWGROUP, cause);
	secret_free(auth);
	secret_free(vauth);
	if (rc == -1)
		return -1;
	stop = proc_pump(&p, &pm, &why) != 0;
	if (why != NULL) {
		free(r->error);
		r->error = why;
	}
	if (stop) {
		kill(-p.pid, SIGTERM);
		proc_reap(&p, REDIS_TERM_GRACE_MS, &r->status);
	} else if (proc_wait(&p, &r->status) == -1) {
		*cause = xasprintf("waiting for redis-cli: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Why a redis-cli run is not a good one, or NULL. */
char *
redis_clirun_failure(struct redis_clirun *r, const char *what)
{
	const char *err = tail_text(&r->err, REDIS_STDERR_LINES);
	char *st, *cause;

	if (r->cancelled)
		return xstrdup("cancelled");
	if (r->error != NULL) {
		cause = r->error;
		r->error = NULL;
		return cause;
	}
	if (r->timed_out)
		return xasprintf("redis-cli %s: no answer within %d s%s%s",
		    what, REDIS_CLI_INFO_MS / 1000, *err != '\0' ? ": " : "",
		    err);
	if (!proc_ok(r->status)) {
		st = proc_status_text(r->status);
		cause = xasprintf("redis-cli %s %s%s%s%s", what,
		    WIFSIGNALED(r->status) ? "was " : "", st,
		    *err != '\0' ? ": " : "", err);
		free(st);
		return cause;
	}
	return NULL;
}

/*
 * What to do about what redis-cli said: a certificate it would not take,
 * a password the server would not.  Takes cause, returns the new one.
 */
char *
redis_cli_hint(const struct target *t, char *cause)
{
	char *out;

	if (strstr(cause, "certificate") != NULL)
		out = xasprintf("%s (the server's certificate is not signed by "
		    "%s; set tls_ca_file in [redis %s] to the CA that signed "
		    "it)", cause, t->tls_ca_file != NULL ? t->tls_ca_file :
		    "a CA this system trusts", t->name);
	else if (strstr(cause, "AUTH failed") != NULL)
		out = xasprintf("%s (check password_file in [redis %s])",
		    cause, t->name);
	else
		return cause;
	free(cause);
	return out;
}

/* INFO through redis-cli (TLS). */
char *
redis_cli_info(struct job_ctx *ctx, const struct redis_url *u, char **cause)
{
	const char *extra[] = { "-e", "INFO", NULL };
	const struct target *t = ctx->target;
	struct redis_clirun r;
	struct buf out;
	char **argv, *password = NULL, *shown, *line;

	if (backend_password(t, &password, cause) == -1)
		return NULL;
	memset(&r, 0, sizeof(r));
	buf_init(&out, REDIS_INFO_MAX);
	r.capture = &out;
	r.deadline = mono_ms() + REDIS_CLI_INFO_MS;
	argv = redis_cli_argv(t, u, extra);
	if (redis_clirun(ctx, argv, password, &r, cause) == -1) {
		char *why = *cause;

		*cause = xasprintf("%s (install redis-tools, or set redis_cli = "
		    "/path/to/redis-cli in [redis %s])", why, t->name);
		free(why);
		goto fail;
	}
	if ((*cause = redis_clirun_failure(&r, "INFO")) != NULL) {
		*cause = redis_cli_hint(t, *cause);
		goto fail;
	}
	/* redis-cli goes on after a refused AUTH; we do not. */
	if ((line = strstr(r.err.buf, "AUTH failed:")) != NULL) {
		shown = redis_printable(line, strcspn(line, "\r\n"), 200);
		*cause = xasprintf("redis-cli: %s (check the password in %s)",
		    shown, t->password_file != NULL ? t->password_file :
		    "password_file");
		free(shown);
		goto fail;
	}
	if (strstr(out.data, "redis_version:") == NULL &&
	    strstr(out.data, "valkey_version:") == NULL) {
		shown = redis_printable(out.data, strcspn(out.data, "\r\n"), 120);
		*cause = xasprintf("redis-cli INFO: \"%s\"%s%s", shown,
		    r.err.len ? " " : "", tail_text(&r.err, REDIS_STDERR_LINES));
		free(shown);
		goto fail;
	}
	secret_free(password);
	redis_argv_free(argv);
	return buf_detach(&out, NULL);

fail:
	free(r.error);
	secret_free(password);
	redis_argv_free(argv);
	buf_release(&out);
	return NULL;
}

/* ---- facts, by either road -------------------------------------------- */

static int
redis_facts_read(struct job_ctx *ctx, const struct redis_url *u,
    struct redis_facts *f, char **cause)
{
	redisContext *c;
	char *info, *why;
	int rc;

	memset(f, 0, sizeof(*f));
	if (u->tls)
		info = redis_cli_info(ctx, u, cause);
	else {
		if ((c = redis_connect(ctx->target, u, cause)) == NULL)
			return -1;
		info = redis_info_text(c, ctx->target, &why);
		if (info == NULL) {
			char *where = redis_where(u);

			*cause = xasprintf("Redis at %s: %s", where, why);
			free(where);
			free(why);
		}
		redisFree(c);
	}
	if (info == NULL)
		return -1;
	rc = redis_facts_parse(info, f, cause);
	free(info);
	return rc;
}

/* ---- INFO ------------------------------------------------------------- */

char *
redis_info_field(const char *info, const char *field)
{
	size_t flen = strlen(field);
	const char *p = info;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, field, flen) == 0 && p[flen] == ':')
			return xstrndup(p + flen + 1, strcspn(p + flen + 1,
			    "\r\n"));
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return NULL;
}

cJSON *
redis_info_keyspace(const char *info)
{
	cJSON *keys = cJSON_CreateObject();
	const char *p = info, *k;
	long long db, n;
	char *end;

	while (p != NULL && *p != '\0') {
		if (p[0] == 'd' && p[1] == 'b' && p[2] >= '0' && p[2] <= '9') {
			errno = 0;
			db = strtoll(p + 2, &end, 10);
			k = end;
			if (errno == 0 && db >= 0 && db <= 1000000 &&
			    strncmp(k, ":keys=", 6) == 0) {
				errno = 0;
				n = strtoll(k + 6, &end, 10);
				if (errno == 0 && n >= 0 && end != k + 6) {
					char name[32];

					snprintf(name, sizeof(name), "db%lld", db);
					cJSON_AddItemToObject(keys, name,
					    cJSON_CreateNumber((double)n));
				}
			}
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	return keys;
}

/* ---- the backend ------------------------------------------------------ */

/* The mode to start with: "rdb" or "logical" ("auto" starts with rdb). */
static const char *
redis_first_mode(const struct target *t)
{
	return t->mode != NULL && strcmp(t->mode, "logical") == 0 ?
	    "logical" : "rdb";
}

static int
redis_prepare(struct job_ctx *ctx, cJSON *manifest, char **cause)
{
	const struct target *t = ctx->target;
	const char *argv[3] = { NULL, "--version", NULL };
	struct tail err = { .len = 0 };
	struct redis_facts f;
	struct redis_url u;
	char *tool, *out = NULL, *why = NULL;
	int status;

	*cause = NULL;
	if (redis_parse_target(t, &u, cause) == -1)
		return -1;
	if (u.tls && strcmp(redis_first_mode(t), "logical") == 0) {
		*cause = xasprintf("[redis %s]: mode = logical is not supported "
		    "over rediss:// (TLS): it needs hiredis, which is built "
		    "without TLS here; use mode = rdb or auto (through "
		    "redis-cli --tls), or a redis:// url", t->name);
		redis_url_release(&u);
		return -1;
	}
	if (redis_facts_read(ctx, &u, &f, cause) == -1) {
		redis_url_release(&u);
		return -1;
	}
	backend_fact(manifest, "server", cJSON_CreateString(f.server));
	backend_fact(manifest, "server_version", cJSON_CreateString(f.version));
	if (f.used_memory >= 0)
		backend_fact(manifest, "used_memory", cJSON_CreateNumber(
		    (double)f.used_memory));
	if (f.role != NULL)
		backend_fact(manifest, "role", cJSON_CreateString(f.role));
	backend_fact(manifest, "keys", f.keys);
	f.keys = NULL;
	backend_fact(manifest, "keys_total", cJSON_CreateNumber(
	    (double)f.keys_total));
	backend_fact(manifest, "mode", cJSON_CreateString(redis_first_mode(t)));
	backend_fact(manifest, "mode_configured", cJSON_CreateString(
	    t->mode != NULL ? t->mode : "auto"));
	backend_fact(manifest, "transport", cJSON_CreateString(u.tls ?
	    "redis-cli --tls" : "hiredis"));
	backend_fact(manifest, "compression", cJSON_CreateString(
	    t->compression));
	if (f.cluster) {
		backend_fact(manifest, "cluster_node", cJSON_CreateTrue());
		backend_log(ctx, "warning", "%s is one node of a Redis Cluster: "
		    "the backup holds only the slots this node serves; back up "
		    "every primary node as its own target", t->url);
	}

	/* Only a warning: the backup is good, but it cannot be checked. */
	if (strcmp(redis_first_mode(t), "rdb") == 0) {
		tool = redis_check_tool(t->redis_cli);
		argv[0] = tool;
		if (proc_run(argv, NULL, &out, 4096, &err, &status,
		    &why) == -1 || !proc_ok(status)) {
			backend_log(ctx, "warning", "%s: %s; RDB backups cannot be "
			    "checked (install redis-tools)", tool, why != NULL ?
			    why : tail_text(&err, REDIS_STDERR_LINES));
		} else {
			out[strcspn(out, "\r\n")] = '\0';
			backend_fact(manifest, "check_tool", cJSON_CreateString(
			    out));
		}
		free(why);
		free(out);
		free(tool);
	}
	redis_facts_release(&f);
	redis_url_release(&u);
	return 0;
}

static void
redis_rdb_facts(cJSON *manifest, const struct redis_rdb_check *check,
    int diskless, struct job_ctx *ctx)
{
	char crc[17];

	backend_fact(manifest, "rdb_version", cJSON_CreateNumber(
	    check->version));
	if (check->checksum_disabled) {
		backend_fact(manifest, "rdb_checksum", cJSON_CreateString(
		    "disabled"));
		backend_log(ctx, "warning", "the server writes RDB without a "
		    "checksum (rdbchecksum no): damage to this backup cannot "
		    "be told by redis-check-rdb");
	} else {
		snprintf(crc, sizeof(crc), "%016llx",
		    (unsigned long long)check->checksum);
		backend_fact(manifest, "rdb_checksum", cJSON_CreateString(crc));
	}
	backend_fact(manifest, "transfer", cJSON_CreateString(diskless ?
	    "diskless" : "disk"));
}

static int
redis_backup(struct job_ctx *ctx, struct pipe_out *out, cJSON *manifest,
    char **cause)
{
	const struct target *t = ctx->target;
	const char *mode = json_str(manifest, "mode");
	struct redis_recv rv;
	struct redis_rdb_check check;
	struct redis_url u;
	redisContext *c = NULL;
	uint64_t estimate = 0;
	int refused = 0, diskless = 0, rc = -1;
	int autom = t->mode == NULL || strcmp(t->mode, "auto") == 0;
	char *why = NULL, *where = NULL;
	double used;

	*cause = NULL;
	if (redis_parse_target(t, &u, cause) == -1)
		return -1;
	where = redis_where(&u);
	if (json_get_num(manifest, "used_memory", &used) == 0 && used > 0)
		estimate = (uint64_t)used;
	if (mode == NULL)
		mode = redis_first_mode(t);

	if (strcmp(mode, "rdb") == 0 && u.tls) {
		if (redis_rdb_cli(ctx, &u, out, estimate, &check, &refused,
		    &diskless, &why) == 0) {
			redis_rdb_facts(manifest, &check, diskless, ctx);
			rc = 0;
		} else if (refused)
			*cause = xasprintf("%s refused SYNC: %s; a snapshot needs "
			    "SYNC, and mode = logical is not supported over "
			    "rediss:// (TLS)", where, why);
		else {
			*cause = why;
			why = NULL;
		}
		goto done;
	}

	if ((c = redis_connect(t, &u, cause)) == NULL)
		goto done;
	if (strcmp(mode, "rdb") == 0) {
		if (redis_rdb_sync(ctx, c, out, estimate, &rv, &refused,
		    &why) == 0) {
			redis_rdb_facts(manifest, &rv.check, rv.diskless, ctx);
			rc = 0;
			goto done;
		}
		if (!refused || !autom) {
			if (refused)
				*cause = xasprintf("%s refused SYNC: %s (set "
				    "mode = auto or logical in [redis %s] to "
				    "back it up key by key)", where, why,
				    t->name);
			else {
				*cause = why;
				why = NULL;
			}
			goto done;
		}
		backend_log(ctx, "warning", "%s refused SYNC (%s): fell back to "
		    "logical mode (SCAN + DUMP), which is not a point-in-time "
		    "snapshot", where, why);
		backend_fact(manifest, "mode", cJSON_CreateString("logical"));
		backend_fact(manifest, "fallback_reason", cJSON_CreateString(why));
		/* the operator reads it in the summary, not only in the log */
		{
			cJSON *w = cJSON_GetObjectItemCaseSensitive(manifest,
			    "warnings");
			char *text = xasprintf("%s refused SYNC (%s): this backup "
			    "is a logical dump (SCAN + DUMP), not a point-in-"
			    "time snapshot", where, why);

			if (!cJSON_IsArray(w))
				w = cJSON_AddArrayToObject(manifest, "warnings");
			cJSON_AddItemToArray(w, cJSON_CreateString(text));
			free(text);
		}
		cJSON_DeleteItemFromObjectCaseSensitive(manifest, "check_tool");
		/* A fresh connection: this one has been told SYNC. */
		redisFree(c);
		if ((c = redis_connect(t, &u, cause)) == NULL)
			goto done;
	}
	if (redis_logical(ctx, c, out, estimate, manifest, cause) == -1)
		goto done;
	rc = 0;
done:
	if (c != NULL)
		redisFree(c);
	free(why);
	free(where);
	redis_url_release(&u);
	return rc;
}

/* ---- check_reader: a forked reader ------------------------------------ */

static void
redis_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A line on stderr, from a forked reader (no stdio buffers). */
static void
redis_say(const char *fmt, ...)
{
	va_list ap;
	char *s, *line;
	ssize_t w;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	line = xasprintf("%s\n", s);
	w = write(2, line, strlen(line));
	(void)w;		/* nobody to tell if stderr is gone */
	free(line);
	free(s);
}

/* Read BBREDIS1 on stdin; exit status 0 if it is whole and intact. */
static int
redis_reader_logical(const char *expect)
{
	struct redis_frame_check f;
	unsigned char *b = xmalloc(PIPE_BLOCK);
	char *why = NULL;
	long long want;
	ssize_t n;
	int rc = 1;

	redis_frame_check_init(&f);
	for (;;) {
		n = read(0, b, PIPE_BLOCK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			redis_say("reading the backup: %s", strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		if (redis_frame_check_feed(&f, b, (size_t)n, &why) == -1)
			goto bad;
	}
	if (redis_frame_check_finish(&f, &why) == -1)
		goto bad;
	if (expect != NULL && str_to_ll(expect, 0, INT64_MAX, &want) == 0 &&
	    (uint64_t)want != f.records) {
		redis_say("the manifest says %lld records, the backup holds "
		    "%llu", want, (unsigned long long)f.records);
		goto done;
	}
	rc = 0;
	goto done;
bad:
	redis_say("not a readable logical backup: %s", why);
done:
	free(why);
	free(b);
	redis_frame_check_release(&f);
	return rc;
}

/*
 * redis-check-rdb's output, cut to what an operator needs: from
 * "--- RDB ERROR DETECTED ---" on, without the "[info]" counts, and any
 * line that is not its usual "[offset N] ..." progress.
 */
struct redis_lines {
	char	buf[1024];
	size_t	len;
	int	*errmode;
};

static void
redis_lines_line(struct redis_lines *L, char *line)
{
	if (str_startswith(line, "--- RDB ERROR"))
		*L->errmode = 1;
	if (str_startswith(line, "[info]") || *line == '\0')
		return;
	if (!*L->errmode && *line == '[')
		return;
	/* redis-server's log line when the tool gives up: nothing new. */
	if (strstr(line, "Terminating server after rdb file reading") != NULL)
		return;
	if (strstr(line, "Can't handle RDB format version") != NULL)
		redis_say("%s (this redis-check-rdb is older than the server "
		    "that wrote the backup: install its version of "
		    "redis-tools or valkey-tools, or point redis_cli at a "
		    "newer redis-cli)", line);
	else
		redis_say("%s", line);
}

static void
redis_lines_feed(struct redis_lines *L, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' || L->len == sizeof(L->buf) - 1) {
			L->buf[L->len] = '\0';
			redis_lines_line(L, L->buf);
			L->len = 0;
			if (p[i] == '\n')
				continue;
		}
		L->buf[L->len++] = p[i];
	}
}

/* Run redis-check-rdb on our stdin; its exit status is ours. */
static int
redis_reader_rdb(const char *tool)
{
	const char *argv[] = { tool, "/dev/stdin", NULL };
	int errmode = 0, status;
	struct redis_lines out = { .len = 0, .errmode = &errmode };
	struct redis_lines err = { .len = 0, .errmode = &errmode };
	char chunk[4096], *why = NULL;
	struct proc p;
	ssize_t n;

	if (proc_spawn(&p, argv, NULL, PROC_STDOUT | PROC_STDERR, &why) ==
	    -1) {
		redis_say("%s (install redis-tools, or set redis_cli to a "
		    "redis-cli that has %s beside it)", why, tool);
		free(why);
		return 127;
	}
	/* Only the tool reads the stream: when it stops, the writer sees. */
	close(0);
	while (p.out_fd != -1 || p.err_fd != -1) {
		struct pollfd pf[2] = { { p.out_fd, POLLIN, 0 },
		    { p.err_fd, POLLIN, 0 } };

		if (poll(pf, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			int *fd = i == 0 ? &p.out_fd : &p.err_fd;

			if (*fd == -1 || !(pf[i].revents & (POLLIN | POLLHUP |
			    POLLERR)))
				continue;
			n = read(*fd, chunk, sizeof(chunk));
			if (n > 0)
				redis_lines_feed(i == 0 ? &out : &err, chunk,
				    (size_t)n);
			else if (n == 0 || (errno != EINTR &&
			    errno != EAGAIN)) {
				close(*fd);
				*fd = -1;
			}
		}
	}
	redis_lines_feed(&out, "\n", 1);
	redis_lines_feed(&err, "\n", 1);
	if (proc_wait(&p, &status) == -1)
		return 1;
	if (WIFSIGNALED(status)) {
		redis_say("%s was killed by signal %d", tool, WTERMSIG(status));
		return 1;
	}
	return WEXITSTATUS(status);
}

/*
 * A copy of this process that reads the stream on stdin: p gets its
 * stdin and stderr, as from proc_spawn.  It runs fn(arg) and exits with
 * its value, touching nothing of ours (no atexit, no stdio flush).
 */
static int
redis_fork_reader(struct proc *p, int (*fn)(const char *), const char *arg,
    char **cause)
{
	int in[2] = { -1, -1 }, err[2] = { -1, -1 }, fd;
	pid_t parent = getpid();

	p->pid = -1;
	p->in_fd = p->out_fd = p->err_fd = -1;
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1) {
		*cause = xasprintf("pipe: %s", strerror(errno));
		goto fail;
	}
	if ((p->pid = fork()) == -1) {
		*cause = xasprintf("fork: %s", strerror(errno));
		goto fail;
	}
	if (p->pid == 0) {
		sigset_t none;

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(in[0], 0);
		dup2(err[1], 2);
		if ((fd = open("/dev/null", O_WRONLY)) != -1)
			dup2(fd, 1);
		/* Above all the write end of our own stdin. */
		if (close_range(3, ~0U, 0) == -1)
			for (fd = 3; fd < 1024; fd++)
				close(fd);
		_exit(fn(arg));
	}
	close(in[0]);
	close(err[1]);
	p->in_fd = in[1];
	p->err_fd = err[0];
	return 0;

fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] != -1)
			close(in[i]);
		if (err[i] != -1)
			close(err[i]);
	}
	return -1;
}

/*
 * An RDB is read by redis-check-rdb, every object of it (the tool beside
 * redis_cli: valkey-cli -> valkey-check-rdb).  A logical backup by a
 * forked reader that checks every payload's CRC64 and the count.
 */
static int
redis_check_reader(struct job_ctx *ctx, const cJSON *manifest,
    struct proc *p, char **cause)
{
	const char *mode = json_str(manifest, "mode");
	char count[32], *tool;
	double records;
	int rc;

	*cause = NULL;
	if (mode != NULL && strcmp(mode, "logical") == 0) {
		if (json_get_num(manifest, "records", &records) == 0 &&
		    records >= 0)
			snprintf(count, sizeof(count), "%.0f", records);
		else
			count[0] = '\0';
		return redis_fork_reader(p, redis_reader_logical,
		    count[0] != '\0' ? count : NULL, cause);
	}
	tool = redis_check_tool(ctx->target->redis_cli);
	rc = redis_fork_reader(p, redis_reader_rdb, tool, cause);
	free(tool);
	return rc;
}

static int
redis_probe(struct job_ctx *ctx, cJSON *out, char **cause)
{
	struct redis_facts f;
	struct redis_url u;

	*cause = NULL;
	if (redis_parse_target(ctx->target, &u, cause) == -1) {
		backend_fact(out, "reachable", cJSON_CreateFalse());
		return -1;
	}
	if (redis_facts_read(ctx, &u, &f, cause) == -1) {
		backend_fact(out, "reachable", cJSON_CreateFalse());
		redis_url_release(&u);
		return -1;
	}
	backend_fact(out, "reachable", cJSON_CreateTrue());
	backend_fact(out, "server", cJSON_CreateString(f.server));
	backend_fact(out, "server_version", cJSON_CreateString(f.version));
	if (f.used_memory >= 0)
		backend_fact(out, "used_memory", cJSON_CreateNumber(
		    (double)f.used_memory));
	if (f.last_save >= 0)
		backend_fact(out, "rdb_last_save_time", cJSON_CreateNumber(
		    (double)f.last_save));
	if (f.role != NULL)
		backend_fact(out, "role", cJSON_CreateString(f.role));
	backend_fact(out, "keys_total", cJSON_CreateNumber(
	    (double)f.keys_total));
	redis_facts_release(&f);
	redis_url_release(&u);
	return 0;
}

const struct backend backend_redis = {
	.kind = "redis",
	.suffix = ".redis",
	.prepare = redis_prepare,
	.backup = redis_backup,
	.check_reader = redis_check_reader,
	.probe = redis_probe,
	.restore = redis_restore,
};
