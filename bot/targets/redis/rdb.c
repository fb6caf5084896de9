/*
 * rdb.c - the RDB stream: CRC64, the header and EOF/CRC check while it
 * streams, the replication bulk after SYNC, and taking the snapshot over
 * hiredis (SYNC) or `redis-cli --tls --rdb -` (redis.h).
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

/* ---- CRC64 ------------------------------------------------------------ */

static uint64_t	redis_crc_table[8][256];
static int	redis_crc_ready;

static void
redis_crc_init(void)
{
	uint64_t c;

	for (unsigned i = 0; i < 256; i++) {
		c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ REDIS_CRC64_POLY : c >> 1;
		redis_crc_table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			redis_crc_table[k][i] = redis_crc_table[0][
			    redis_crc_table[k - 1][i] & 0xff] ^
			    (redis_crc_table[k - 1][i] >> 8);
	redis_crc_ready = 1;
}

/*
 * Slicing by eight (eight table look-ups per 8 bytes): about 2 GB/s,
 * fast enough not to show next to the network and zstd.
 */
uint64_t
redis_crc64(uint64_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t (*t)[256] = redis_crc_table;

	if (!redis_crc_ready)
		redis_crc_init();
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (n >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		crc ^= v;
		crc = t[7][crc & 0xff] ^ t[6][(crc >> 8) & 0xff] ^
		    t[5][(crc >> 16) & 0xff] ^ t[4][(crc >> 24) & 0xff] ^
		    t[3][(crc >> 32) & 0xff] ^ t[2][(crc >> 40) & 0xff] ^
		    t[1][(crc >> 48) & 0xff] ^ t[0][crc >> 56];
		p += 8;
		n -= 8;
	}
#endif
	while (n-- > 0)
		crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

uint64_t
redis_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t
redis_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

uint32_t
redis_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

void
redis_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

void
redis_put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

/* ---- RDB stream check ------------------------------------------------- */

int
redis_rdb_header(const unsigned char *p, size_t n)
{
	size_t magic, digits;
	int v = 0;

	if (n >= 9 && memcmp(p, "REDIS", 5) == 0)
		magic = 5;
	else if (n >= 9 && memcmp(p, "VALKEY", 6) == 0)
		magic = 6;
	else
		return -1;
	digits = 9 - magic;
	for (size_t i = magic; i < magic + digits; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v > 0 ? v : -1;
}

void
redis_rdb_check_init(struct redis_rdb_check *c)
{
	memset(c, 0, sizeof(*c));
	c->version = -1;
}

/*
 * The CRC covers every byte but the last 8, which we only know at the
 * end: keep the last 9 (the EOF opcode and the CRC) aside and add to
 * the CRC what falls out of them.
 */
void
redis_rdb_check_feed(struct redis_rdb_check *c, const void *data, size_t n)
{
	const unsigned char *p = data;
	unsigned char nt[9];
	size_t total, out, from_tail, from_data, k;

	if (c->head_len < sizeof(c->head)) {
		k = sizeof(c->head) - c->head_len;
		if (k > n)
			k = n;
		memcpy(c->head + c->head_len, p, k);
		c->head_len += k;
	}
	c->bytes += n;
	total = c->tail_len + n;
	if (total <= sizeof(c->tail)) {
		memcpy(c->tail + c->tail_len, p, n);
		c->tail_len = total;
		return;
	}
	out = total - sizeof(c->tail);
	from_tail = out < c->tail_len ? out : c->tail_len;
	c->crc = redis_crc64(c->crc, c->tail, from_tail);
	from_data = out - from_tail;
	c->crc = redis_crc64(c->crc, p, from_data);
	k = c->tail_len - from_tail;
	memcpy(nt, c->tail + from_tail, k);
	memcpy(nt + k, p + from_data, n - from_data);
	memcpy(c->tail, nt, sizeof(nt));
	c->tail_len = sizeof(c->tail);
}

int
redis_rdb_check_finish(struct redis_rdb_check *c, char **cause)
{
	uint64_t crc;

	*cause = NULL;
	if (c->bytes == 0) {
		*cause = xstrdup("the RDB stream is empty");
		return -1;
	}
	if ((c->version = redis_rdb_header(c->head, c->head_len)) == -1) {
		*cause = xasprintf("not an RDB stream: it starts with "
		    "\"%.*s\" instead of REDIS or VALKEY and a version",
		    (int)c->head_len, c->head);
		for (char *s = *cause; *s != '\0'; s++)
			if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
				*s = '?';
		return -1;
	}
	if (c->version < 5) {
		/* No checksum before RDB 5 (Redis 2.6): just the opcode. */
		if (c->tail[c->tail_len - 1] != 0xff) {
			*cause = xstrdup("the RDB stream is truncated: it does "
			    "not end with the EOF opcode");
			return -1;
		}
		c->checksum_disabled = 1;
		return 0;
	}
	if (c->bytes < 9 + 9 || c->tail[0] != 0xff) {
		*cause = xasprintf("the RDB stream is truncated or damaged: "
		    "no EOF opcode before the checksum (%llu bytes)",
		    (unsigned long long)c->bytes);
		return -1;
	}
	c->checksum = redis_le64(c->tail + 1);
	if (c->checksum == 0) {
		c->checksum_disabled = 1;
		return 0;
	}
	crc = redis_crc64(c->crc, c->tail, 1);
	if (crc != c->checksum) {
		*cause = xasprintf("the RDB stream is damaged: its CRC64 is "
		    "%016llx, the stream says %016llx",
		    (unsigned long long)crc, (unsigned long long)c->checksum);
		return -1;
	}
	return 0;
}

/* ---- the replication bulk of SYNC ------------------------------------- */

int
redis_cancelled(volatile sig_atomic_t *flag)
{
	return flag != NULL && *flag;
}

/* One read of at most n bytes, waiting for it in short polls. */
static ssize_t
redis_read_some(int fd, struct redis_recv *r, unsigned char *buf, size_t n,
    char **cause)
{
	int64_t deadline = mono_ms() + (r->idle_ms > 0 ? r->idle_ms :
	    REDIS_IDLE_MS);
	struct pollfd pf;
	ssize_t got;

	for (;;) {
		if (redis_cancelled(r->cancelled)) {
			*cause = xstrdup("cancelled");
			return -1;
		}
		if (mono_ms() >= deadline) {
			*cause = xasprintf("no data from the server for %d s "
			    "after SYNC", (r->idle_ms > 0 ? r->idle_ms :
			    REDIS_IDLE_MS) / 1000);
			return -1;
		}
		pf.fd = fd;
		pf.events = POLLIN;
		pf.revents = 0;
		if (poll(&pf, 1, REDIS_POLL_MS) == -1) {
			if (errno == EINTR)
				continue;
			*cause = xasprintf("poll: %s", strerror(errno));
			return -1;
		}
		if (pf.revents == 0)
			continue;
		got = read(fd, buf, n);
		if (got >= 0)
			return got;
		if (errno == EINTR || errno == EAGAIN)
			continue;
		*cause = xasprintf("reading the RDB from the server: %s",
		    strerror(errno));
		return -1;
	}
}

/*
 * A line from the server, safe to show: printable ASCII, bounded, without
 * the ": " Redis ends "unknown command ... beginning with: " with.
 */
char *
redis_printable(const char *s, size_t n, size_t max)
{
	char *out;

	if (n > max)
		n = max;
	out = xstrndup(s, n);
	for (char *c = out; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	n = strlen(out);
	while (n > 0 && strchr(" :,", out[n - 1]) != NULL)
		out[--n] = '\0';
	return out;
}

static int
redis_recv_emit(struct redis_recv *r, const unsigned char *p, size_t n,
    int64_t *last, char **cause)
{
	uint64_t total;

	if (n == 0)
		return 0;
	if (r->write(r->arg, p, n, cause) == -1)
		return -1;
	redis_rdb_check_feed(&r->check, p, n);
	r->bytes += n;
	if (r->progress != NULL && mono_ms() - *last >= REDIS_PROGRESS_MS) {
		*last = mono_ms();
		total = r->diskless ? r->estimate : r->length;
		if (total < r->bytes)
			total = r->bytes;
		r->progress(r->arg, r->bytes, total);
	}
	return 0;
}

/* Parse the bulk header line (without \r\n). */
static int
redis_recv_header(struct redis_recv *r, const char *line, size_t len,
    char *mark, char **cause)
{
	long long v;
	char *num, *shown;

	if (len > 0 && line[0] == '-') {
		r->refused = 1;
		*cause = redis_printable(line + 1, len - 1, 200);
		return -1;
	}
	if (len == 5 + REDIS_EOF_MARK_LEN && memcmp(line, "$EOF:", 5) == 0) {
		r->diskless = 1;
		memcpy(mark, line + 5, REDIS_EOF_MARK_LEN);
		return 0;
	}
	if (len > 1 && line[0] == '$') {
		num = xstrndup(line + 1, len - 1);
		if (str_to_ll(num, 1, INT64_MAX, &v) == 0) {
			free(num);
			r->length = (uint64_t)v;
			return 0;
		}
		free(num);
	}
	shown = redis_printable(line, len, 80);
	*cause = xasprintf("unexpected reply to SYNC: \"%s\"", shown);
	free(shown);
	return -1;
}

int
redis_rdb_receive(int fd, struct redis_recv *r, char **cause)
{
	unsigned char *in = xmalloc(PIPE_BLOCK);
	unsigned char *win = xmalloc(PIPE_BLOCK + REDIS_EOF_MARK_LEN);
	char line[REDIS_LINE_MAX], mark[REDIS_EOF_MARK_LEN];
	size_t line_len = 0, held = 0, i, k, total;
	uint64_t left = 0;
	int64_t last = 0;
	int in_header = 1, rc = -1, done = 0;
	ssize_t n;
	unsigned char *found;

	*cause = NULL;
	r->refused = r->diskless = 0;
	r->length = r->bytes = 0;
	redis_rdb_check_init(&r->check);
	if (r->progress != NULL)
		r->progress(r->arg, 0, r->estimate);

	while (!done) {
		if ((n = redis_read_some(fd, r, in, PIPE_BLOCK, cause)) == -1)
			goto out;
		if (n == 0) {
			if (in_header)
				*cause = xstrdup("the server closed the "
				    "connection after SYNC without sending an "
				    "RDB");
			else
				*cause = xasprintf("the server closed the "
				    "connection after %llu bytes of the RDB: "
				    "it is incomplete",
				    (unsigned long long)r->bytes);
			goto out;
		}
		i = 0;
		/* "\n" keepalives, then one "$...\r\n" line. */
		while (in_header && i < (size_t)n) {
			char ch = (char)in[i++];

			if (ch == '\n') {
				if (line_len == 0)
					continue;
				if (line[line_len - 1] == '\r')
					line_len--;
				if (redis_recv_header(r, line, line_len, mark,
				    cause) == -1)
					goto out;
				in_header = 0;
				left = r->length;
				break;
			}
			if (line_len == sizeof(line) - 1) {
				char *shown = redis_printable(line, line_len,
				    80);

				*cause = xasprintf("unexpected reply to SYNC: "
				    "\"%s...\"", shown);
				free(shown);
				goto out;
			}
			line[line_len++] = ch;
		}
		if (in_header || i == (size_t)n)
			continue;

		k = (size_t)n - i;
		if (!r->diskless) {
			/* Exactly the announced length; the rest is not ours. */
			if ((uint64_t)k > left)
				k = (size_t)left;
			if (redis_recv_emit(r, in + i, k, &last, cause) == -1)
				goto out;
			left -= k;
			done = left == 0;
			continue;
		}
		/*
		 * Up to the mark: search the bytes held back from the last
		 * read and this read together, and hold back the last 39
		 * (a mark may be cut in two).
		 */
		memcpy(win + held, in + i, k);
		total = held + k;
		found = memmem(win, total, mark, REDIS_EOF_MARK_LEN);
		if (found != NULL) {
			if (redis_recv_emit(r, win, (size_t)(found - win), &last,
			    cause) == -1)
				goto out;
			done = 1;
			continue;
		}
		if (total > REDIS_EOF_MARK_LEN - 1) {
			k = total - (REDIS_EOF_MARK_LEN - 1);
			if (redis_recv_emit(r, win, k, &last, cause) == -1)
				goto out;
			memmove(win, win + k, REDIS_EOF_MARK_LEN - 1);
			held = REDIS_EOF_MARK_LEN - 1;
		} else
			held = total;
	}
	if (r->progress != NULL)
		r->progress(r->arg, r->bytes, r->bytes);
	rc = redis_rdb_check_finish(&r->check, cause);

out:
	free(in);
	free(win);
	return rc;
}

/* ---- the RDB: SYNC over hiredis --------------------------------------- */

/* What redis_rdb_receive writes into, and where its progress goes. */
struct redis_rdbsink {
	struct job_ctx	*ctx;
	struct pipe_out	*out;
};

static int
redis_rdbsink_write(void *arg, const void *data, size_t n, char **cause)
{
	struct redis_rdbsink *s = arg;

	return pipe_out_write(s->out, data, n, cause);
}

static void
redis_rdbsink_progress(void *arg, uint64_t done, uint64_t total)
{
	struct redis_rdbsink *s = arg;

	backend_progress(s->ctx, "dump", done, total);
}

/*
 * REPLCONF, SYNC, and the RDB read raw from the socket.  *refused: the
 * master answered SYNC with an error (in *cause) and nothing was
 * written.
 */
int
redis_rdb_sync(struct job_ctx *ctx, redisContext *c, struct pipe_out *out,
    uint64_t estimate, struct redis_recv *rv, int *refused, char **cause)
{
	static const char sync[] = "*1\r\n$4\r\nSYNC\r\n";
	struct redis_rdbsink sink = { ctx, out };
	redisReply *r;
	char *why = NULL;

	*refused = 0;
	/*
	 * capa eof: the master may stream a diskless snapshot instead of
	 * writing a file first; rdb-only: it sends the RDB and nothing of
	 * the replication stream after it.  Old servers answer an error.
	 */
	if ((r = redis_cmd1(c, ctx->target, 1, &why, "REPLCONF", "capa",
	    "eof")) == NULL)
		goto lost;
	freeReplyObject(r);
	if ((r = redis_cmd1(c, ctx->target, 1, &why, "REPLCONF", "rdb-only",
	    "1")) == NULL)
		goto lost;
	freeReplyObject(r);
	if (c->reader->len > c->reader->pos) {
		*cause = xstrdup("unexpected data from the server before SYNC");
		return -1;
	}
	if (redis_write_all(c->fd, sync, sizeof(sync) - 1, cause) == -1)
		return -1;

	memset(rv, 0, sizeof(*rv));
	rv->write = redis_rdbsink_write;
	rv->progress = redis_rdbsink_progress;
	rv->arg = &sink;
	rv->cancelled = ctx->cancelled;
	rv->idle_ms = REDIS_IDLE_MS;
	rv->estimate = estimate;
	if (redis_rdb_receive(c->fd, rv, cause) == -1) {
		*refused = rv->refused && rv->bytes == 0;
		return -1;
	}
	return 0;

lost:
	*cause = why;
	return -1;
}

/* ---- the RDB: redis-cli --tls --rdb - --------------------------------- */

int
redis_rdb_cli(struct job_ctx *ctx, const struct redis_url *u,
    struct pipe_out *out, uint64_t estimate, struct redis_rdb_check *check,
    int *refused, int *diskless, char **cause)
{
	const char *extra[] = { "--rdb", "-", NULL };
	const struct target *t = ctx->target;
	struct redis_clirun r;
	char **argv, *password = NULL, *errtext, *line;
	uint64_t length;
	int rc = -1;

	*refused = 0;
	if (backend_password(t, &password, cause) == -1)
		return -1;
	memset(&r, 0, sizeof(r));
	redis_rdb_check_init(check);
	r.out = out;
	r.check = check;
	r.total = estimate;
	argv = redis_cli_argv(t, u, extra);
	backend_progress(ctx, "dump", 0, estimate);
	if (redis_clirun(ctx, argv, password, &r, cause) == -1) {
		char *why = *cause;

		*cause = xasprintf("%s (install redis-tools, or set redis_cli = "
		    "/path/to/redis-cli in [redis %s])", why, t->name);
		free(why);
		goto done;
	}
	errtext = xstrndup(r.err.buf, r.err.len);
	/* "SYNC with master failed: -ERR ..." ("with primary": valkey-cli) */
	if ((line = strstr(errtext, "SYNC with ")) != NULL &&
	    (line = strstr(line, " failed: -")) != NULL && r.bytes == 0) {
		line += strlen(" failed: -");
		*refused = 1;
		*cause = redis_printable(line, strcspn(line, "\r\n"), 200);
		free(errtext);
		goto done;
	}
	if ((*cause = redis_clirun_failure(&r, "--rdb")) != NULL) {
		*cause = redis_cli_hint(t, *cause);
		free(errtext);
		goto done;
	}
	if (redis_cli_rdb_length(errtext, &length, diskless) == -1) {
		*cause = xasprintf("redis-cli --rdb did not say how long the "
		    "RDB is: %s", tail_text(&r.err, REDIS_STDERR_LINES));
		free(errtext);
		goto done;
	}
	free(errtext);
	/* The 40 held-back bytes: the end mark, or the RDB's last bytes. */
	if (r.emitted + r.held_len == length + REDIS_EOF_MARK_LEN && *diskless)
		r.held_len = 0;
	else if (r.emitted + r.held_len == length) {
		if (redis_emit(&r, r.held, r.held_len) == -1) {
			*cause = r.error;
			r.error = NULL;
			goto done;
		}
	} else {
		*cause = xasprintf("redis-cli --rdb wrote %llu bytes, but "
		    "said the RDB has %llu", (unsigned long long)r.bytes,
		    (unsigned long long)length);
		goto done;
	}
	backend_progress(ctx, "dump", r.emitted, r.emitted);
	if (redis_rdb_check_finish(check, cause) == -1)
		goto done;
	rc = 0;
done:
	free(r.error);
	secret_free(password);
	redis_argv_free(argv);
	return rc;
}
