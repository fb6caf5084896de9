/*
 * load.c - RESTORE, pipelined: keys into a server over hiredis, or
 * over TLS through `redis-cli --tls --pipe`, with per-database counts.
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

/* ---- restore: RESTORE, pipelined -------------------------------------- */

#define REDIS_PUT_BATCH		1000	/* commands, then the replies */
#define REDIS_PUT_BYTES		(16 * 1024 * 1024)
#define REDIS_PIPE_TIMEOUT	"120"	/* redis-cli --pipe: the last reply */

struct redis_dbcount *
redis_dbs_get(struct redis_dbs *d, uint32_t db)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->v[i].db == db)
			return &d->v[i];
	/* kept in order: notes list the databases as INFO does */
	d->v = xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
	for (i = d->n; i > 0 && d->v[i - 1].db > db; i--)
		d->v[i] = d->v[i - 1];
	memset(&d->v[i], 0, sizeof(d->v[i]));
	d->v[i].db = db;
	d->v[i].before = d->v[i].after = -1;
	d->n++;
	return &d->v[i];
}

void
redis_target_close(struct redis_target *T)
{
	if (T->c != NULL && !T->scratch)
		redisFree(T->c);
	T->c = NULL;
	free(T->where);
	T->where = NULL;
	redis_url_release(&T->u);
}

/* INFO keyspace: {"db0": N, ...}, or NULL with *cause. */
cJSON *
redis_target_keyspace(struct redis_target *T, char **cause)
{
	redisReply *r;
	cJSON *keys;
	char *why = NULL, *info;

	if (T->c == NULL) {
		if ((info = redis_cli_info(T->ctx, &T->u, cause)) == NULL)
			return NULL;
		keys = redis_info_keyspace(info);
		free(info);
		return keys;
	}
	if ((r = redis_cmd1(T->c, T->ctx->target, 0, &why, "INFO", "keyspace",
	    NULL)) == NULL) {
		*cause = xasprintf("%s: %s", T->where, why);
		free(why);
		return NULL;
	}
	if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
		*cause = xasprintf("%s: INFO: unexpected reply", T->where);
		freeReplyObject(r);
		return NULL;
	}
	keys = redis_info_keyspace(r->str);
	freeReplyObject(r);
	return keys;
}

/* The target, reachable and the password taken (INFO answered). */
int
redis_target_open(struct job_ctx *ctx, struct redis_target *T, char **cause)
{
	cJSON *keys;

	memset(T, 0, sizeof(*T));
	T->ctx = ctx;
	if (redis_parse_target(ctx->target, &T->u, cause) == -1)
		return -1;
	T->where = redis_where(&T->u);
	if (!T->u.tls) {
		if ((T->c = redis_connect(ctx->target, &T->u, cause)) == NULL) {
			redis_target_close(T);
			return -1;
		}
		return 0;
	}
	if ((keys = redis_target_keyspace(T, cause)) == NULL) {
		redis_target_close(T);
		return -1;
	}
	cJSON_Delete(keys);
	return 0;
}

/* SELECT db through redis-cli (TLS): 0, or -1 with what it said. */
static int
redis_cli_select(struct redis_target *T, uint32_t db, char **cause)
{
	const struct target *t = T->ctx->target;
	const char *extra[] = { "-e", "SELECT", NULL, NULL };
	struct redis_clirun r;
	struct buf out;
	char dbtext[16], **argv, *password = NULL;
	int rc = -1;

	snprintf(dbtext, sizeof(dbtext), "%u", db);
	extra[2] = dbtext;
	if (backend_password(t, &password, cause) == -1)
		return -1;
	memset(&r, 0, sizeof(r));
	buf_init(&out, 4096);
	r.capture = &out;
	r.deadline = mono_ms() + REDIS_CLI_INFO_MS;
	argv = redis_cli_argv(t, &T->u, extra);
	if (redis_clirun(T->ctx, argv, password, &r, cause) == 0 &&
	    (*cause = redis_clirun_failure(&r, "SELECT")) == NULL)
		rc = 0;
	free(r.error);
	secret_free(password);
	redis_argv_free(argv);
	buf_release(&out);
	return rc;
}

/*
 * Every database the backup restores into must exist before the first
 * key is sent: in a pipeline, the keys after a SELECT that failed would
 * go into the database selected before it.
 */
int
redis_target_check_dbs(struct redis_target *T, const struct redis_dbs *dbs,
    char **cause)
{
	redisReply *r = NULL;
	char dbtext[16], *why = NULL;

	for (size_t i = 0; i < dbs->n; i++) {
		snprintf(dbtext, sizeof(dbtext), "%u", dbs->v[i].db);
		if (T->c != NULL ? (r = redis_cmd1(T->c, T->ctx->target, 0, &why,
		    "SELECT", dbtext, NULL)) == NULL :
		    redis_cli_select(T, dbs->v[i].db, &why) == -1) {
			*cause = xasprintf("%s: db%u: %s%s; nothing was restored",
			    T->where, dbs->v[i].db, why, strstr(why,
			    "out of range") != NULL ? " (the backup has more "
			    "databases than the server: raise `databases` in its "
			    "config)" : "");
			free(why);
			return -1;
		}
		if (r != NULL)
			freeReplyObject(r);
		r = NULL;
	}
	return 0;
}

/* A command sent whose reply is still to be read. */
struct redis_pending {
	int		 kind;		/* RESTORE, SELECT or FLUSHDB */
	uint32_t	 db;
	char		*key;		/* shown, for messages */
	int		 rdb_version;	/* of the payload */
};

enum { REDIS_P_RESTORE, REDIS_P_SELECT, REDIS_P_FLUSHDB };

static void
redis_put_clear(struct redis_put *P)
{
	for (size_t i = 0; i < P->nq; i++)
		free(P->q[i].key);
	P->nq = 0;
	P->qbytes = 0;
}

/* Everything a put holds; a redis-cli still running is stopped. */
void
redis_put_release(struct redis_put *P)
{
	int status;

	redis_put_clear(P);
	free(P->q);
	P->q = NULL;
	if (P->cli.pid > 0) {
		kill(-P->cli.pid, SIGTERM);
		proc_reap(&P->cli, REDIS_TERM_GRACE_MS, &status);
	}
	P->cli.pid = -1;
	buf_release(&P->resp);
}

/* Into T; over TLS this starts redis-cli --pipe. */
int
redis_put_init(struct redis_put *P, struct redis_target *T, int scratch,
    struct redis_dbs *dbs, char **cause)
{
	const char *extra[] = { "--pipe", "--pipe-timeout",
	    REDIS_PIPE_TIMEOUT, NULL };
	const char *env[3] = { NULL, NULL, NULL };
	char **argv, *password = NULL, *auth = NULL, *vauth = NULL;
	int rc;

	memset(P, 0, sizeof(*P));
	P->ctx = T->ctx;
	P->c = T->c;
	P->where = T->where;
	P->scratch = scratch;
	P->selected = -1;
	P->dbs = dbs;
	P->cli.pid = -1;
	P->cli.in_fd = P->cli.out_fd = P->cli.err_fd = -1;
	buf_init(&P->resp, SIZE_MAX / 2);
	if (T->c != NULL)
		return 0;
	if (backend_password(T->ctx->target, &password, cause) == -1)
		return -1;
	if (password != NULL) {
		auth = xasprintf("REDISCLI_AUTH=%s", password);
		vauth = xasprintf("VALKEYCLI_AUTH=%s", password);
		env[0] = auth;
		env[1] = vauth;
	}
	argv = redis_cli_argv(T->ctx->target, &T->u, extra);
	rc = proc_spawn(&P->cli, (const char *const *)argv, env, PROC_STDIN |
	    PROC_STDOUT | PROC_STDERR | PROC_NEWGROUP, cause);
	secret_free(password);
	secret_free(auth);
	secret_free(vauth);
	redis_argv_free(argv);
	if (rc == -1)
		return -1;
	fcntl(P->cli.in_fd, F_SETFL, fcntl(P->cli.in_fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

/*
 * Write what is buffered to redis-cli, reading its output meanwhile (it
 * must never block on a full pipe while we do).  With finish, then
 * close its stdin and wait for it.
 */
static int
redis_pipe_write(struct redis_put *P, int finish, char **cause)
{
	size_t off = 0;
	char chunk[4096];
	ssize_t n;
	int status;

	while (P->cli.out_fd != -1 || P->cli.err_fd != -1 ||
	    P->cli.in_fd != -1) {
		struct pollfd pf[3] = { { P->cli.in_fd, POLLOUT, 0 },
		    { P->cli.out_fd, POLLIN, 0 }, { P->cli.err_fd, POLLIN, 0 } };

		if (P->cli.in_fd != -1 && off == P->resp.len) {
			if (!finish)
				break;
			close(P->cli.in_fd);
			P->cli.in_fd = pf[0].fd = -1;
		}
		if (redis_is_cancelled(P->ctx)) {
			*cause = xstrdup("cancelled");
			return -1;
		}
		if (poll(pf, 3, REDIS_POLL_MS) == -1 && errno != EINTR) {
			*cause = xasprintf("poll: %s", strerror(errno));
			return -1;
		}
		if (P->cli.in_fd != -1 && (pf[0].revents & (POLLOUT |
		    POLLERR | POLLHUP))) {
			n = write(P->cli.in_fd, P->resp.data + off,
			    P->resp.len - off);
			if (n > 0)
				off += (size_t)n;
			else if (n == -1 && errno != EAGAIN && errno != EINTR) {
				/* it stopped reading: its exit says why */
				close(P->cli.in_fd);
				P->cli.in_fd = -1;
				off = P->resp.len;
			}
		}
		for (int i = 1; i < 3; i++) {
			int *fd = i == 1 ? &P->cli.out_fd : &P->cli.err_fd;

			if (*fd == -1 || !(pf[i].revents & (POLLIN | POLLHUP |
			    POLLERR)))
				continue;
			n = read(*fd, chunk, sizeof(chunk));
			if (n > 0)
				tail_add(i == 1 ? &P->cli_out : &P->cli_err,
				    chunk, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(*fd);
				*fd = -1;
			}
		}
	}
	buf_reset(&P->resp);
	if (!finish)
		return 0;
	if (proc_wait(&P->cli, &status) == -1) {
		*cause = xasprintf("waiting for redis-cli: %s", strerror(errno));
		return -1;
	}
	P->cli.pid = -1;
	if (!proc_ok(status)) {
		const char *err = tail_text(&P->cli_err, REDIS_STDERR_LINES);
		const char *out = tail_text(&P->cli_out, 1);
		char *st = proc_status_text(status);

		*cause = xasprintf("%s: redis-cli --pipe %s%s%s%s%s%s", P->where,
		    WIFSIGNALED(status) ? "was " : "", st, *out != '\0' ?
		    " (" : "", out, *out != '\0' ? ")" : "", *err != '\0' ?
		    ": " : "");
		free(st);
		if (*err != '\0') {
			char *why = *cause;

			*cause = redis_cli_hint(P->ctx->target, xasprintf("%s%s%s",
			    why, err, strstr(err, "payload version") != NULL ?
			    " (the backup's DUMP payloads are of an RDB version "
			    "this server cannot read: restore into a server as "
			    "new as the one that made the backup)" : ""));
			free(why);
		}
		return -1;
	}
	return 0;
}

/* Send one command: appended to hiredis' buffer, or as RESP for redis-cli. */
static int
redis_put_send(struct redis_put *P, int argc, const char **argv,
    const size_t *lens, char **cause)
{
	if (P->c != NULL) {
		if (redisAppendCommandArgv(P->c, argc, argv, lens) != REDIS_OK) {
			*cause = xasprintf("%s: %s: %s", P->where, argv[0],
			    P->c->errstr);
			return -1;
		}
		return 0;
	}
	buf_addf(&P->resp, "*%d\r\n", argc);
	for (int i = 0; i < argc; i++) {
		buf_addf(&P->resp, "$%zu\r\n", lens[i]);
		buf_add(&P->resp, argv[i], lens[i]);
		buf_add(&P->resp, "\r\n", 2);
	}
	return 0;
}

static void
redis_put_queue(struct redis_put *P, int kind, uint32_t db, char *key,
    int rdb_version)
{
	if (P->c == NULL) {
		free(key);	/* redis-cli: no replies to match */
		return;
	}
	P->q = xrealloc(P->q, (P->nq + 1) * sizeof(*P->q));
	P->q[P->nq].kind = kind;
	P->q[P->nq].db = db;
	P->q[P->nq].key = key;
	P->q[P->nq].rdb_version = rdb_version;
	P->nq++;
}

static int
redis_put_reply(struct redis_put *P, const struct redis_pending *e,
    const redisReply *r, char **cause)
{
	struct redis_dbcount *d = redis_dbs_get(P->dbs, e->db);
	char *shown;

	if (r->type != REDIS_REPLY_ERROR) {
		if (e->kind == REDIS_P_RESTORE) {
			P->restored++;
			d->restored++;
		}
		return 0;
	}
	shown = redis_printable(r->str, r->len, 200);
	if (e->kind == REDIS_P_SELECT)
		*cause = xasprintf("%s: SELECT %u: %s%s", P->where, e->db, shown,
		    strstr(shown, "out of range") != NULL ? " (the backup has "
		    "more databases than the server: raise `databases` in its "
		    "config)" : "");
	else if (e->kind == REDIS_P_FLUSHDB)
		*cause = xasprintf("%s: FLUSHDB in db%u: %s", P->where, e->db,
		    shown);
	else if (P->scratch && str_startswith(shown, "BUSYKEY")) {
		/* SCAN returned it twice: the backup holds it twice. */
		d->duplicates++;
		free(shown);
		return 0;
	} else if (strstr(shown, "payload version") != NULL)
		*cause = xasprintf("%s refused key '%s' in db%u: %s (its DUMP "
		    "payload is RDB version %d, which this server cannot "
		    "read: restore into a server as new as the one that made "
		    "the backup)", P->where, e->key, e->db, shown,
		    e->rdb_version);
	else
		*cause = xasprintf("%s: RESTORE of key '%s' in db%u: %s",
		    P->where, e->key, e->db, shown);
	free(shown);
	return -1;
}

/* Read the replies of everything sent (or write it to redis-cli). */
int
redis_put_flush(struct redis_put *P, char **cause)
{
	redisReply *r;
	char *why;
	int rc = 0;

	if (P->c == NULL)
		rc = redis_pipe_write(P, 0, cause);
	for (size_t i = 0; P->c != NULL && i < P->nq; i++) {
		if (redisGetReply(P->c, (void **)&r) != REDIS_OK) {
			if (rc == 0) {
				why = redis_conn_error(P->c);
				*cause = xasprintf("%s: RESTORE: %s", P->where,
				    why);
				free(why);
			}
			rc = -1;
			break;
		}
		if (rc == 0 && redis_put_reply(P, &P->q[i], r, cause) == -1)
			rc = -1;
		freeReplyObject(r);
	}
	redis_put_clear(P);
	if (rc == 0 && mono_ms() - P->last >= REDIS_PROGRESS_MS) {
		P->last = mono_ms();
		backend_progress(P->ctx, "restore", P->records, P->total >
		    P->records ? P->total : P->records);
	}
	if (rc == 0 && redis_is_cancelled(P->ctx)) {
		*cause = xstrdup("cancelled");
		rc = -1;
	}
	return rc;
}

/* Everything sent and answered; redis-cli, if any, has ended well. */
int
redis_put_finish(struct redis_put *P, char **cause)
{
	if (redis_put_flush(P, cause) == -1)
		return -1;
	if (P->c == NULL)
		return redis_pipe_write(P, 1, cause);
	return 0;
}

static int
redis_put_select(struct redis_put *P, uint32_t db, char **cause)
{
	const char *argv[2] = { "SELECT", NULL };
	size_t lens[2] = { 6, 0 };
	char dbtext[16];

	if (P->selected == (int64_t)db)
		return 0;
	snprintf(dbtext, sizeof(dbtext), "%u", db);
	argv[1] = dbtext;
	lens[1] = strlen(dbtext);
	if (redis_put_send(P, 2, argv, lens, cause) == -1)
		return -1;
	redis_put_queue(P, REDIS_P_SELECT, db, NULL, 0);
	P->selected = db;
	return 0;
}

/* FLUSHDB in db, before any key is restored. */
int
redis_put_flushdb(struct redis_put *P, uint32_t db, char **cause)
{
	const char *argv[1] = { "FLUSHDB" };
	size_t lens[1] = { 7 };

	if (redis_put_select(P, db, cause) == -1 ||
	    redis_put_send(P, 1, argv, lens, cause) == -1)
		return -1;
	redis_put_queue(P, REDIS_P_FLUSHDB, db, NULL, 0);
	return 0;
}

/* One key: RESTORE it (or count it as expired); replies come later. */
int
redis_put_key(struct redis_put *P, uint32_t db, const void *key,
    size_t key_len, int64_t ttl, const void *payload, size_t payload_len,
    char **cause)
{
	struct redis_dbcount *d = redis_dbs_get(P->dbs, db);
	const unsigned char *foot = (const unsigned char *)payload +
	    payload_len - 10;
	const char *argv[5];
	size_t lens[5];
	char ttltext[32];
	int64_t now = now_ms(), ms;

	P->records++;
	d->records++;
	if (P->scratch)
		ms = 0;		/* a drill: nothing may expire while counting */
	else if (redis_restore_ttl(ttl, P->taken_ms != 0 ? P->taken_ms : now,
	    now, &ms) == 1) {
		P->expired++;
		d->expired++;
		return 0;
	}
	if (redis_put_select(P, db, cause) == -1)
		return -1;
	snprintf(ttltext, sizeof(ttltext), "%lld", (long long)ms);
	argv[0] = "RESTORE";
	lens[0] = 7;
	argv[1] = key;
	lens[1] = key_len;
	argv[2] = ttltext;
	lens[2] = strlen(ttltext);
	argv[3] = payload;
	lens[3] = payload_len;
	argv[4] = "REPLACE";
	lens[4] = 7;
	if (redis_put_send(P, P->scratch ? 4 : 5, argv, lens, cause) == -1)
		return -1;
	if (P->c == NULL) {
		/* redis-cli counts the errors; any fails the restore */
		P->restored++;
		d->restored++;
	}
	redis_put_queue(P, REDIS_P_RESTORE, db, redis_key_shown(key, key_len),
	    foot[0] | foot[1] << 8);
	P->qbytes += key_len + payload_len;
	if (P->nq >= REDIS_PUT_BATCH || P->qbytes >= REDIS_PUT_BYTES)
		return redis_put_flush(P, cause);
	return 0;
}

/* A key read from a temporary server goes into the target. */
int
redis_emit_put(struct redis_logical *L, int db, const redisReply *key,
    const redisReply *dump, long long ttl, char **cause)
{
	return redis_put_key(L->arg, (uint32_t)db, key->str, key->len, ttl,
	    dump->str, dump->len, cause);
}

long long
redis_keys_in(const cJSON *keys, uint32_t db)
{
	char name[32];

	snprintf(name, sizeof(name), "db%u", db);
	return (long long)json_num(keys, name);
}

long long
redis_keys_total(const cJSON *keys)
{
	const cJSON *it;
	long long n = 0;

	cJSON_ArrayForEach(it, keys)
		if (cJSON_IsNumber(it))
			n += (long long)it->valuedouble;
	return n;
}
