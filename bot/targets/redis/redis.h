/*
 * redis.h - the Redis/Valkey backend (backend_redis, see backend.h) and
 * the pure helpers it is made of, exported for the unit tests: URLs,
 * CRC64, the RDB stream check, the replication bulk reader and the
 * BBREDIS1 framing of logical backups.
 *
 * Two kinds of stream, both stored as TARGET/ID.redis[.zst][.enc]; the
 * manifest's "mode" says which:
 *
 * Both hold every database, whatever /DB the url names.
 *
 * mode "rdb": the RDB snapshot exactly as the server sends it to a new
 * replica (SYNC), the same bytes `redis-cli --rdb FILE` writes: a
 * point-in-time dump.rdb.  Restore: `backupbot restore` (below), or by
 * hand: `backupbot cat ID > dump.rdb`, stop the server, put the file in
 * its dir, start it.  Its header ("REDIS" +
 * 4 digits, or "VALKEY" + 3 digits from Valkey 9 on), final EOF opcode
 * and CRC64 are checked while it streams; verify runs redis-check-rdb
 * (the one beside redis_cli: valkey-cli -> valkey-check-rdb), which
 * reads every object.  A redis-check-rdb older than the server cannot
 * read a newer RDB version, and says so: verify then fails.
 *
 * mode "logical" (a server that refuses SYNC: managed services, SYNC
 * renamed away, an ACL user without it): every key's DUMP payload, read
 * with SCAN + DUMP + PTTL, in this framing (all integers big-endian):
 *
 *   "BBREDIS1\n"                                  9 bytes, once
 *   repeated, one record per key:
 *     db           u32                            database number
 *     key_len      u32   (never 0xFFFFFFFF)
 *     key          key_len bytes
 *     ttl_ms       i64   remaining time to live in milliseconds when
 *                        the key was read (PTTL), -1: no expiry
 *     payload_len  u32
 *     payload      payload_len bytes: the DUMP reply, for RESTORE
 *   end record:
 *     db           u32   0xFFFFFFFF
 *     key_len      u32   0xFFFFFFFF
 *     records      u64   how many records came before
 *   nothing after it.
 *
 * Restore: for each record, SELECT db, then RESTORE key ttl payload
 * REPLACE (ttl 0 for -1).  The ttls are relative to the moment the key
 * was read; the manifest's "started" says when that was.  Unlike RDB a
 * logical backup is not a point-in-time snapshot: keys written during
 * the scan may or may not be in it, and SCAN may return a key twice (the
 * later record wins, REPLACE makes that harmless).  A DUMP payload ends
 * with its RDB version (u16 little-endian) and a CRC64 (little-endian)
 * of everything before it, which both the backup and verify check (a
 * forked copy of backupbot reads the stream back).  The logical mode
 * needs hiredis, which has no TLS here: over rediss:// it is refused,
 * and mode = auto cannot fall back to it.
 */
#ifndef BB_REDIS_H
#define BB_REDIS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cJSON;
struct target;

#define REDIS_DEFAULT_PORT	6379
#define REDIS_EOF_MARK_LEN	40	/* $EOF:<40 bytes> of diskless sync */

/* ---- url ------------------------------------------------------------- */

/*
 * redis://[user@]host[:port][/db]      plain TCP (hiredis)
 * rediss://[user@]host[:port][/db]     TLS (through redis-cli --tls)
 * unix:///path/to/socket[?db=N]        a unix socket
 * host may be [IPv6].  A password in the url is refused: it belongs in
 * password_file, never in a config line that ends up in logs.
 */
struct redis_url {
	int	 tls;
	char	*host;		/* NULL for unix */
	int	 port;
	char	*path;		/* unix socket, else NULL */
	char	*user;		/* ACL user, NULL: default */
	int	 db;
};

/* 0, or -1 with *cause (the caller frees).  redis_url_release always. */
int redis_url_parse(const char *url, struct redis_url *u, char **cause);
void redis_url_release(struct redis_url *u);

/* ---- CRC64 ------------------------------------------------------------ */

/*
 * Redis's CRC64: the Jones polynomial 0xad93d23594c935a9, reflected,
 * initial value 0, no final xor.  crc64(0, "123456789") is
 * 0xe9c6d914c4b8d9ca.  Feed a stream in pieces by passing the last value.
 */
uint64_t redis_crc64(uint64_t crc, const void *data, size_t n);

/* ---- RDB stream check ------------------------------------------------- */

/*
 * A whole RDB stream must start with "REDIS" + 4 digits (Redis, Valkey up
 * to 8) or "VALKEY" + 3 digits (Valkey 9 and later), and end with the
 * EOF opcode 0xFF and the CRC64 (little-endian) of every byte before the
 * CRC.  A CRC of 0 means the server has rdbchecksum off.
 */
struct redis_rdb_check {
	unsigned char	head[9];
	size_t		head_len;
	unsigned char	tail[9];	/* the last 9 bytes seen */
	size_t		tail_len;
	uint64_t	crc;		/* of all bytes but the last 9 */
	uint64_t	bytes;
	/* after redis_rdb_check_finish: */
	int		version;
	int		checksum_disabled;
	uint64_t	checksum;
};

/* The header's RDB version (10 for "REDIS0010"), or -1. */
int redis_rdb_header(const unsigned char *p, size_t n);
void redis_rdb_check_init(struct redis_rdb_check *c);
void redis_rdb_check_feed(struct redis_rdb_check *c, const void *data,
    size_t n);
/* 0 when the stream was a whole, intact RDB; -1 with *cause. */
int redis_rdb_check_finish(struct redis_rdb_check *c, char **cause);

/* ---- the replication bulk of SYNC ------------------------------------- */

/*
 * Read the reply to SYNC from fd: newlines the master sends while it
 * prepares (keepalives), then "$<len>\r\n" and exactly len bytes, or
 * "$EOF:<40-byte mark>\r\n" and bytes up to the same mark.  Every byte
 * of the RDB goes to write() in blocks of at most 64 KiB (+40) and
 * through r->check.  Stops on *cancelled ("cancelled") and after
 * idle_ms without a byte.
 */
struct redis_recv {
	/* set by the caller */
	int	(*write)(void *arg, const void *data, size_t n, char **cause);
	void	(*progress)(void *arg, uint64_t done, uint64_t total);
	void	*arg;
	volatile sig_atomic_t *cancelled;
	int	 idle_ms;
	uint64_t estimate;	/* progress total while the length is unknown */
	/* results */
	int	 refused;	/* the master answered SYNC with an error */
	int	 diskless;	/* the $EOF: form */
	uint64_t length;	/* the announced length ($len form) */
	uint64_t bytes;		/* of RDB, written */
	struct redis_rdb_check check;
};

/*
 * 0 when a complete RDB was read and checked; -1 with *cause.  When the
 * master refused (r->refused), *cause is its error line ("ERR unknown
 * command 'SYNC'...") and nothing was written.
 */
int redis_rdb_receive(int fd, struct redis_recv *r, char **cause);

/* ---- INFO ------------------------------------------------------------- */

/*
 * The value of "field:value" in an INFO reply (lines end in \r\n or \n),
 * malloc'd, or NULL.
 */
char *redis_info_field(const char *info, const char *field);
/* The "keys=" count of every "dbN:keys=..." line, as {"db0": N, ...}. */
struct cJSON *redis_info_keyspace(const char *info);

/* ---- BBREDIS1 --------------------------------------------------------- */

#define REDIS_FRAME_MAGIC	"BBREDIS1\n"
#define REDIS_FRAME_MAGIC_LEN	9
#define REDIS_FRAME_END		0xFFFFFFFFu
/* The fixed part of a record: db, key_len, ttl_ms, payload_len. */
#define REDIS_FRAME_FIXED	20
#define REDIS_FRAME_END_LEN	16

/*
 * The bytes of a record up to the key (db, key_len: 8 bytes) and those
 * between key and payload (ttl_ms, payload_len: 12 bytes).
 */
void redis_frame_head(unsigned char out[8], uint32_t db, uint32_t key_len);
void redis_frame_mid(unsigned char out[12], int64_t ttl_ms,
    uint32_t payload_len);
void redis_frame_end(unsigned char out[REDIS_FRAME_END_LEN],
    uint64_t records);

/*
 * 0 if a DUMP payload's footer (RDB version, CRC64) is intact, -1 with
 * *cause.  (A footer CRC of 0 is accepted only if the server has
 * checksums off, which DUMP never does: it is refused.)
 */
int redis_dump_payload_check(const unsigned char *p, size_t n, char **cause);

/*
 * A streaming reader of BBREDIS1 that checks everything: the magic, every
 * payload's footer CRC, the end record and its count, nothing after it.
 * Memory: the key and at most the payload footer, whatever the size.
 */
struct redis_frame_check {
	int		 state;
	unsigned char	 fixed[16];
	size_t		 have;		/* bytes of the current field */
	size_t		 need;
	uint32_t	 db;
	uint32_t	 key_len;
	uint32_t	 payload_len;
	uint64_t	 crc;
	unsigned char	 footer[10];
	uint64_t	 records;
	uint64_t	 offset;
	char		*error;
};

void redis_frame_check_init(struct redis_frame_check *f);
/* 0, or -1 with *cause: the first error (and every later call fails). */
int redis_frame_check_feed(struct redis_frame_check *f, const void *data,
    size_t n, char **cause);
/* 0 if the stream ended right after the end record; -1 with *cause. */
int redis_frame_check_finish(struct redis_frame_check *f, char **cause);
void redis_frame_check_release(struct redis_frame_check *f);

/* ---- redis-cli -------------------------------------------------------- */

/*
 * The argv for redis_cli against u (TLS options from the target), then
 * the extra arguments, NULL-terminated.  Never holds a password (that
 * goes in REDISCLI_AUTH).  Free with redis_argv_free.
 */
char **redis_cli_argv(const struct target *t, const struct redis_url *u,
    const char *const *extra);
void redis_argv_free(char **argv);

/*
 * What redis-cli --rdb - said on stderr about the length of the RDB it
 * wrote to stdout: "SYNC sent to master, writing N bytes" (a sized
 * transfer; valkey-cli says "primary") or "Transfer finished with
 * success after N bytes" (diskless: redis-cli 7.0 and valkey-cli also
 * write the 40-byte end mark to stdout after those N bytes; they cut it
 * off a file, which a pipe cannot be).  0 with *length, or -1 when it
 * said neither.
 */
int redis_cli_rdb_length(const char *err, uint64_t *length, int *diskless);

/* The check tool next to redis_cli: "valkey-cli" -> "valkey-check-rdb". */
char *redis_check_tool(const char *redis_cli);

/* ---- restore ---------------------------------------------------------- */

/*
 * A restore puts every key back with RESTORE key ttl payload REPLACE
 * into the configured server, in the database number it came from.  A
 * logical backup is read from its file; an RDB is loaded by a temporary
 * redis-server (t->redis_server) on a private unix socket, and its keys
 * are read back with SCAN + DUMP + PTTL, as a logical backup reads them.
 * Nothing touches the target before the backup has been read whole: a
 * logical file is read through once first, an RDB must have loaded.
 * A drill does the same into an empty temporary redis-server.
 */

/*
 * One record of a BBREDIS1 file, as redis_frame_read returns it: key
 * and payload point into the reader's buffers until the next call.
 */
struct redis_record {
	uint32_t		 db;
	const unsigned char	*key;
	size_t			 key_len;
	int64_t			 ttl_ms;	/* -1: no expiry */
	const unsigned char	*payload;
	size_t			 payload_len;
};

struct redis_frame_reader {
	FILE		*f;
	uint64_t	 size;		/* of the file, to refuse lengths past it */
	uint64_t	 offset;
	uint64_t	 records;
	int		 started;
	int		 done;
	unsigned char	*key;
	size_t		 key_alloc;
	unsigned char	*payload;
	size_t		 payload_alloc;
};

/* f stays the caller's. */
void redis_frame_reader_init(struct redis_frame_reader *r, FILE *f);
/*
 * 1 with the next record in *rec; 0 after the end record (its count
 * matched and nothing followed it); -1 with *cause.  Checks what
 * redis_frame_check checks, every payload's footer CRC included.
 */
int redis_frame_read(struct redis_frame_reader *r, struct redis_record *rec,
    char **cause);
void redis_frame_reader_release(struct redis_frame_reader *r);

/*
 * The TTL to RESTORE a key with, in ms.  ttl_ms is what PTTL said at
 * taken_ms (wall clock): -1 (no expiry) gives 0 (RESTORE's "none").
 * Otherwise what is left of it at now_ms, never more than ttl_ms.
 * Returns 1 when nothing is left: the key would have expired by now,
 * and is not restored.
 */
int redis_restore_ttl(int64_t ttl_ms, int64_t taken_ms, int64_t now_ms,
    int64_t *restore_ms);

/* Which servers write RDB version v ("Redis 7.2"), or NULL. */
const char *redis_rdb_writer(int version);

/*
 * From a redis-server log (Redis or Valkey): why it stopped, from its
 * warning lines ("Can't handle RDB format version 11"), " | " between
 * them.  NULL when it says nothing of the kind.  Caller frees.
 */
char *redis_log_error(const char *log);

/*
 * "Done loading RDB, keys loaded: N, keys expired: M." (Redis 7.0 and
 * later, Valkey): 0 with the counts, or -1 when the log does not say.
 */
int redis_log_loaded(const char *log, long long *loaded,
    long long *expired);

/* "7.0.15" from `redis-server --version` output.  Caller frees; NULL. */
char *redis_server_version(const char *text);

/*
 * An RDB drill: want keys in a database by the manifest (INFO when the
 * backup was prepared), got loaded from the snapshot, expired dropped
 * while loading (of every database).  1 when they differ by more than
 * a snapshot taken moments after INFO can explain (see redis.c).
 */
int redis_rdb_count_differs(long long want, long long got,
    long long expired);

#endif
