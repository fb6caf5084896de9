/*
 * redis_parts.h - what the files of targets/redis/ share with each other
 * and nothing else includes: the knobs, the internal types and the
 * helpers one file defines and another calls.  The API is redis.h.
 */
#ifndef BB_REDIS_PARTS_H
#define BB_REDIS_PARTS_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "pipeline.h"
#include "proc.h"
#include "redis.h"
#include "util.h"

struct cJSON;
struct job_ctx;
struct redis_logical;
struct pipe_out;
struct target;

#define REDIS_CONNECT_TIMEOUT_S	10
#define REDIS_COMMAND_TIMEOUT_S	120	/* one reply: a DUMP of a big key */
#define REDIS_IDLE_MS		120000	/* SYNC: not even a keepalive */
#define REDIS_CLI_INFO_MS	30000
#define REDIS_PROGRESS_MS	500
#define REDIS_POLL_MS		200	/* how soon a cancel is noticed */
#define REDIS_TERM_GRACE_MS	10000	/* after SIGTERM, then SIGKILL */
#define REDIS_SCAN_COUNT	"1000"
#define REDIS_STDERR_LINES	5
#define REDIS_INFO_MAX		(1024 * 1024)
#define REDIS_LINE_MAX		128	/* the bulk header after SYNC */

/* a temporary redis-server: how often its load is polled, its log cap */
#define REDIS_LOAD_POLL_MS	50
#define REDIS_LOG_MAX		(1024 * 1024)

/* Redis' CRC64 polynomial (Jones), bit-reversed for the reflected CRC. */
#define REDIS_CRC64_POLY	0x95ac9329ac4bc9b5ULL

/* ---- rdb.c ------------------------------------------------------------- */

uint64_t redis_le64(const unsigned char *p);
uint64_t redis_be64(const unsigned char *p);
uint32_t redis_be32(const unsigned char *p);
void redis_put_be32(unsigned char *p, uint32_t v);
void redis_put_be64(unsigned char *p, uint64_t v);
int redis_cancelled(volatile sig_atomic_t *flag);
char *redis_printable(const char *s, size_t n, size_t max);
int redis_rdb_sync(struct job_ctx *ctx, redisContext *c, struct pipe_out *out,
    uint64_t estimate, struct redis_recv *rv, int *refused, char **cause);
int redis_rdb_cli(struct job_ctx *ctx, const struct redis_url *u,
    struct pipe_out *out, uint64_t estimate, struct redis_rdb_check *check,
    int *refused, int *diskless, char **cause);

/* ---- logical.c --------------------------------------------------------- */

/* Bytes into the pipeline in PIPE_BLOCK pieces. */
struct redis_sink {
	struct pipe_out	*out;
	unsigned char	*buf;
	size_t		 len;
	uint64_t	 bytes;
};

/*
 * Where a key read with DUMP + PTTL goes: a BBREDIS1 record (a backup),
 * or a RESTORE into another server (a restore from an RDB, through a
 * temporary redis-server).  ttl is PTTL's answer: -1 or >= 0.
 */
typedef int (*redis_emit_fn)(struct redis_logical *L, int db,
    const redisReply *key, const redisReply *dump, long long ttl,
    char **cause);

struct redis_logical {
	struct job_ctx		*ctx;
	redisContext		*c;
	redis_emit_fn		 emit;
	void			*arg;		/* for emit */
	struct redis_sink	 sink;
	uint64_t		 records;
	uint64_t		 vanished;
	uint64_t		 keys_total;
	uint64_t		 keys_done;
	uint64_t		 estimate;
	int64_t			 last;
};

int redis_logical(struct job_ctx *ctx, redisContext *c, struct pipe_out *out,
    uint64_t estimate, cJSON *manifest, char **cause);
char *redis_key_shown(const char *key, size_t len);
int redis_logical_db(struct redis_logical *L, int db, char **cause);

/* ---- redis.c ----------------------------------------------------------- */

/* One run of redis-cli, and what became of it. */
struct redis_clirun {
	int64_t			 deadline;	/* 0: none */
	struct buf		*capture;	/* stdout, or: */
	struct pipe_out		*out;		/* stdout, minus 40 bytes */
	struct redis_rdb_check	*check;
	unsigned char		 held[REDIS_EOF_MARK_LEN];
	size_t			 held_len;
	uint64_t		 bytes;		/* from stdout */
	uint64_t		 emitted;
	uint64_t		 total;		/* progress estimate */
	struct tail		 err;
	int			 status;
	int			 cancelled;
	int			 timed_out;
	char			*error;
};

int redis_is_cancelled(struct job_ctx *ctx);
char *redis_where(const struct redis_url *u);
int redis_parse_target(const struct target *t, struct redis_url *u,
    char **cause);
char *redis_conn_error(const redisContext *c);
int redis_write_all(int fd, const void *data, size_t n, char **cause);
redisContext *redis_connect(const struct target *t, const struct redis_url *u,
    char **cause);
redisReply *redis_cmd(redisContext *c, const struct target *t, int errors_ok,
    char **cause, int argc, const char **argv, const size_t *lens);
redisReply *redis_cmd1(redisContext *c, const struct target *t, int errors_ok,
    char **cause, const char *a0, const char *a1, const char *a2);
char *redis_info_text(redisContext *c, const struct target *t, char **cause);
long long redis_info_ll(const char *info, const char *field);
int redis_clirun(struct job_ctx *ctx, char *const *argv, const char *password,
    struct redis_clirun *r, char **cause);
int redis_emit(struct redis_clirun *r, const unsigned char *p, size_t n);
char *redis_clirun_failure(struct redis_clirun *r, const char *what);
char *redis_cli_hint(const struct target *t, char *cause);
char *redis_cli_info(struct job_ctx *ctx, const struct redis_url *u, char **cause);

/* ---- load.c ------------------------------------------------------------ */

/* What happened in one database. */
struct redis_dbcount {
	uint32_t	 db;
	uint64_t	 records;	/* records read (file) or keys scanned */
	uint64_t	 restored;
	uint64_t	 expired;	/* not restored: their TTL ran out */
	uint64_t	 duplicates;	/* a scratch server said BUSYKEY */
	long long	 loaded;	/* RDB: in the temporary server */
	long long	 before;	/* keys in the target, -1: unknown */
	long long	 after;
};

struct redis_dbs {
	struct redis_dbcount	*v;
	size_t			 n;
};

/*
 * The server keys go into: the target (hiredis; over TLS, where hiredis
 * has none here, redis-cli as for a backup), or a temporary server.
 */
struct redis_target {
	struct job_ctx		*ctx;
	struct redis_url	 u;
	redisContext		*c;		/* NULL: TLS, redis-cli */
	char			*where;		/* for messages */
	int			 scratch;	/* a drill's temporary server */
};

/*
 * RESTOREs into one server: pipelined over hiredis, every reply read
 * and checked; over TLS fed to `redis-cli --pipe`, which counts the
 * errors (it cannot say which command had them).
 */
struct redis_put {
	struct job_ctx		*ctx;
	redisContext		*c;
	const char		*where;		/* for messages */
	int			 scratch;	/* empty: no REPLACE, no TTL */
	int64_t			 taken_ms;	/* ttls as of; 0: now */
	int64_t			 selected;	/* -1: none yet */
	struct redis_pending	*q;
	size_t			 nq;
	size_t			 qbytes;
	struct redis_dbs	*dbs;
	uint64_t		 records;
	uint64_t		 restored;
	uint64_t		 expired;
	uint64_t		 total;		/* for progress */
	int64_t			 last;
	/* redis-cli --pipe (cli.pid > 0) */
	struct proc		 cli;
	struct buf		 resp;		/* commands not yet written */
	struct tail		 cli_out;
	struct tail		 cli_err;
};

struct redis_dbcount *redis_dbs_get(struct redis_dbs *d, uint32_t db);
void redis_target_close(struct redis_target *T);
cJSON *redis_target_keyspace(struct redis_target *T, char **cause);
int redis_target_open(struct job_ctx *ctx, struct redis_target *T, char **cause);
int redis_target_check_dbs(struct redis_target *T, const struct redis_dbs *dbs,
    char **cause);
void redis_put_release(struct redis_put *P);
int redis_put_init(struct redis_put *P, struct redis_target *T, int scratch,
    struct redis_dbs *dbs, char **cause);
int redis_put_flush(struct redis_put *P, char **cause);
int redis_put_finish(struct redis_put *P, char **cause);
int redis_put_flushdb(struct redis_put *P, uint32_t db, char **cause);
int redis_put_key(struct redis_put *P, uint32_t db, const void *key,
    size_t key_len, int64_t ttl, const void *payload, size_t payload_len,
    char **cause);
int redis_emit_put(struct redis_logical *L, int db, const redisReply *key,
    const redisReply *dump, long long ttl, char **cause);
long long redis_keys_in(const cJSON *keys, uint32_t db);
long long redis_keys_total(const cJSON *keys);

/* ---- restore.c --------------------------------------------------------- */

int redis_restore(struct job_ctx *ctx, const cJSON *manifest, const char *raw,
    const struct restore_opts *opts, cJSON *result, char **cause);

#endif
