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
#include "util.h"

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

/* Redis' CRC64 polynomial (Jones), bit-reversed for the reflected CRC. */
#define REDIS_CRC64_POLY	0x95ac9329ac4bc9b5ULL

/* ---- url -------------------------------------------------------------- */

void
redis_url_release(struct redis_url *u)
{
	free(u->host);
	free(u->path);
	free(u->user);
	memset(u, 0, sizeof(*u));
}

static int
redis_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n); NULL on a bad escape or a NUL byte. */
static char *
redis_pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t k = 0;
	int hi, lo;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[k++] = s[i];
			continue;
		}
		if (i + 2 >= n) {
			free(out);
			return NULL;
		}
		if ((hi = redis_hexval(s[i + 1])) == -1 ||
		    (lo = redis_hexval(s[i + 2])) == -1 || (hi | lo) == 0) {
			free(out);
			return NULL;
		}
		out[k++] = (char)(hi << 4 | lo);
		i += 2;
	}
	out[k] = '\0';
	return out;
}

static int
redis_url_fail(struct redis_url *u, const char *url, const char *why,
    char **cause)
{
	*cause = xasprintf("url '%s': %s", url, why);
	redis_url_release(u);
	return -1;
}

/* A database number: "" is 0. */
static int
redis_url_db(const char *s, size_t n, int *db)
{
	char *num;
	long long v;
	int rc;

	if (n == 0) {
		*db = 0;
		return 0;
	}
	num = xstrndup(s, n);
	rc = str_to_ll(num, 0, 1000000, &v);
	free(num);
	if (rc == -1)
		return -1;
	*db = (int)v;
	return 0;
}

int
redis_url_parse(const char *url, struct redis_url *u, char **cause)
{
	const char *p, *end, *at, *colon, *hs, *he, *q;
	char *num;
	long long port;
	size_t len;

	memset(u, 0, sizeof(*u));
	*cause = NULL;
	if (str_startswith(url, "unix://")) {
		p = url + 7;
		len = strcspn(p, "?");
		if (len == 0 || *p != '/')
			return redis_url_fail(u, url, "unix:// needs an absolute "
			    "socket path: unix:///run/redis/redis.sock", cause);
		u->path = xstrndup(p, len);
		if (p[len] == '?' && (!str_startswith(p + len + 1, "db=") ||
		    redis_url_db(p + len + 4, strlen(p + len + 4),
		    &u->db) == -1))
			return redis_url_fail(u, url, "only ?db=N may follow "
			    "the socket path", cause);
		return 0;
	}
	if (str_startswith(url, "rediss://")) {
		u->tls = 1;
		p = url + 9;
	} else if (str_startswith(url, "redis://"))
		p = url + 8;
	else
		return redis_url_fail(u, url, "must start with redis://, "
		    "rediss:// or unix://", cause);
	u->port = REDIS_DEFAULT_PORT;
	end = p + strcspn(p, "/?#");

	/* user@ or user:password@: the password never goes in a url. */
	at = NULL;
	for (q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon != NULL && colon + 1 < at) {
			*cause = xstrdup("the url holds a password: it would be "
			    "shown in logs; put the password in password_file "
			    "and leave it out of the url (redis://user@host)");
			redis_url_release(u);
			return -1;
		}
		len = (size_t)((colon != NULL ? colon : at) - p);
		if (len > 0 && (u->user = redis_pct_decode(p, len)) == NULL)
			return redis_url_fail(u, url, "bad %-escape in the user "
			    "name", cause);
		p = at + 1;
	}

	if (*p == '[') {
		hs = p + 1;
		if ((he = memchr(hs, ']', (size_t)(end - hs))) == NULL)
			return redis_url_fail(u, url, "no ']' after an IPv6 "
			    "address", cause);
		q = he + 1;
	} else {
		hs = p;
		he = memchr(p, ':', (size_t)(end - p));
		if (he == NULL)
			he = end;
		q = he;
	}
	if (he == hs)
		return redis_url_fail(u, url, "no host", cause);
	if (*hs == '-')
		return redis_url_fail(u, url, "bad host name", cause);
	for (const char *c = hs; c < he; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' ||
		    *c == '_' || (*p == '[' && (*c == ':' || *c == '%'))))
			return redis_url_fail(u, url, "bad host name", cause);
	u->host = xstrndup(hs, (size_t)(he - hs));
	if (q < end) {
		if (*q != ':')
			return redis_url_fail(u, url, "unexpected text after "
			    "the host", cause);
		num = xstrndup(q + 1, (size_t)(end - q - 1));
		if (str_to_ll(num, 1, 65535, &port) == -1) {
			free(num);
			return redis_url_fail(u, url, "bad port", cause);
		}
		free(num);
		u->port = (int)port;
	}
	if (*end == '/') {
		p = end + 1;
		len = strlen(p);
		if (redis_url_db(p, len, &u->db) == -1)
			return redis_url_fail(u, url, "the path must be a "
			    "database number: redis://host:6379/0", cause);
	} else if (*end != '\0')
		return redis_url_fail(u, url, "unexpected '?' or '#'; the "
		    "form is redis://[user@]host:port/db", cause);
	return 0;
}

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

static uint64_t
redis_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t
redis_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t
redis_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
redis_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void
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

static int
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
static char *
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

/* ---- BBREDIS1 --------------------------------------------------------- */

void
redis_frame_head(unsigned char out[8], uint32_t db, uint32_t key_len)
{
	redis_put_be32(out, db);
	redis_put_be32(out + 4, key_len);
}

void
redis_frame_mid(unsigned char out[12], int64_t ttl_ms, uint32_t payload_len)
{
	redis_put_be64(out, (uint64_t)ttl_ms);
	redis_put_be32(out + 8, payload_len);
}

void
redis_frame_end(unsigned char out[REDIS_FRAME_END_LEN], uint64_t records)
{
	redis_put_be32(out, REDIS_FRAME_END);
	redis_put_be32(out + 4, REDIS_FRAME_END);
	redis_put_be64(out + 8, records);
}

/* The footer of a DUMP payload: RDB version (LE16), CRC64 (LE64). */
static int
redis_dump_footer_check(const unsigned char footer[10], uint64_t crc,
    char **cause)
{
	uint64_t want = redis_le64(footer + 2);

	if (footer[0] == 0 && footer[1] == 0) {
		*cause = xstrdup("DUMP payload with RDB version 0");
		return -1;
	}
	if (crc != want) {
		*cause = xasprintf("DUMP payload damaged: CRC64 %016llx, the "
		    "payload says %016llx", (unsigned long long)crc,
		    (unsigned long long)want);
		return -1;
	}
	return 0;
}

int
redis_dump_payload_check(const unsigned char *p, size_t n, char **cause)
{
	*cause = NULL;
	if (n < 11) {
		*cause = xasprintf("DUMP payload of %zu bytes is too short", n);
		return -1;
	}
	return redis_dump_footer_check(p + n - 10, redis_crc64(0, p, n - 8),
	    cause);
}

enum {
	RF_MAGIC, RF_HEAD, RF_KEY, RF_MID, RF_PAYLOAD, RF_COUNT, RF_DONE
};

void
redis_frame_check_init(struct redis_frame_check *f)
{
	memset(f, 0, sizeof(*f));
	f->state = RF_MAGIC;
	f->need = REDIS_FRAME_MAGIC_LEN;
}

static int
redis_frame_fail(struct redis_frame_check *f, char *why, char **cause)
{
	f->error = xasprintf("at byte %llu: %s", (unsigned long long)f->offset,
	    why);
	free(why);
	*cause = xstrdup(f->error);
	return -1;
}

/* Enter a state that needs n bytes. */
static void
redis_frame_next(struct redis_frame_check *f, int state, size_t n)
{
	f->state = state;
	f->need = n;
	f->have = 0;
}

int
redis_frame_check_feed(struct redis_frame_check *f, const void *data,
    size_t n, char **cause)
{
	const unsigned char *p = data;
	size_t k, i, crc_end;
	int64_t ttl;

	*cause = NULL;
	if (f->error != NULL) {
		*cause = xstrdup(f->error);
		return -1;
	}
	while (n > 0) {
		if (f->state == RF_DONE)
			return redis_frame_fail(f, xstrdup("data after the end "
			    "record"), cause);
		k = f->need - f->have;
		if (k > n)
			k = n;
		switch (f->state) {
		case RF_MAGIC:
			if (memcmp(p, &REDIS_FRAME_MAGIC[f->have], k) != 0)
				return redis_frame_fail(f, xstrdup("not a "
				    "logical Redis backup (no BBREDIS1 "
				    "header)"), cause);
			break;
		case RF_KEY:
			break;		/* the key itself is not checked */
		case RF_PAYLOAD:
			/* CRC over all but the last 8; keep the last 10. */
			crc_end = f->payload_len - 8;
			if (f->have < crc_end) {
				i = crc_end - f->have;
				f->crc = redis_crc64(f->crc, p, i < k ? i : k);
			}
			for (i = 0; i < k; i++) {
				size_t pos = f->have + i;

				if (pos >= (size_t)f->payload_len - 10)
					f->footer[pos - (f->payload_len - 10)] =
					    p[i];
			}
			break;
		default:
			memcpy(f->fixed + f->have, p, k);
			break;
		}
		f->have += k;
		f->offset += k;
		p += k;
		n -= k;
		if (f->have < f->need)
			continue;

		switch (f->state) {
		case RF_MAGIC:
			redis_frame_next(f, RF_HEAD, 8);
			break;
		case RF_HEAD:
			f->db = redis_be32(f->fixed);
			f->key_len = redis_be32(f->fixed + 4);
			if (f->key_len == REDIS_FRAME_END) {
				if (f->db != REDIS_FRAME_END)
					return redis_frame_fail(f, xstrdup(
					    "bad end record"), cause);
				redis_frame_next(f, RF_COUNT, 8);
			} else if (f->key_len == 0)
				redis_frame_next(f, RF_MID, 12);
			else
				redis_frame_next(f, RF_KEY, f->key_len);
			break;
		case RF_KEY:
			redis_frame_next(f, RF_MID, 12);
			break;
		case RF_MID:
			ttl = (int64_t)redis_be64(f->fixed);
			f->payload_len = redis_be32(f->fixed + 8);
			if (ttl < -1)
				return redis_frame_fail(f, xasprintf("record "
				    "%llu: bad ttl %lld",
				    (unsigned long long)f->records + 1,
				    (long long)ttl), cause);
			if (f->payload_len < 11)
				return redis_frame_fail(f, xasprintf("record "
				    "%llu: DUMP payload of %u bytes is too "
				    "short", (unsigned long long)f->records +
				    1, f->payload_len), cause);
			f->crc = 0;
			redis_frame_next(f, RF_PAYLOAD, f->payload_len);
			break;
		case RF_PAYLOAD: {
			char *why = NULL;

			if (redis_dump_footer_check(f->footer, f->crc,
			    &why) == -1) {
				char *msg = xasprintf("record %llu (db %u): %s",
				    (unsigned long long)f->records + 1, f->db,
				    why);

				free(why);
				return redis_frame_fail(f, msg, cause);
			}
			f->records++;
			redis_frame_next(f, RF_HEAD, 8);
			break;
		}
		case RF_COUNT:
			if (redis_be64(f->fixed) != f->records)
				return redis_frame_fail(f, xasprintf("the end "
				    "record counts %llu records, the stream "
				    "holds %llu",
				    (unsigned long long)redis_be64(f->fixed),
				    (unsigned long long)f->records), cause);
			redis_frame_next(f, RF_DONE, 0);
			break;
		}
	}
	return 0;
}

int
redis_frame_check_finish(struct redis_frame_check *f, char **cause)
{
	*cause = NULL;
	if (f->error != NULL) {
		*cause = xstrdup(f->error);
		return -1;
	}
	if (f->state != RF_DONE) {
		*cause = xasprintf("the logical backup is truncated after %llu "
		    "bytes (%llu complete records, no end record)",
		    (unsigned long long)f->offset,
		    (unsigned long long)f->records);
		return -1;
	}
	return 0;
}

void
redis_frame_check_release(struct redis_frame_check *f)
{
	free(f->error);
	f->error = NULL;
}

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

static int
redis_is_cancelled(struct job_ctx *ctx)
{
	return redis_cancelled(ctx->cancelled);
}

/* "127.0.0.1:6379", "/run/redis.sock": where, for messages. */
static char *
redis_where(const struct redis_url *u)
{
	if (u->path != NULL)
		return xstrdup(u->path);
	if (strchr(u->host, ':') != NULL)
		return xasprintf("[%s]:%d", u->host, u->port);
	return xasprintf("%s:%d", u->host, u->port);
}

static int
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
static char *
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

static int
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
static redisContext *
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
static redisReply *
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

static redisReply *
redis_cmd1(redisContext *c, const struct target *t, int errors_ok,
    char **cause, const char *a0, const char *a1, const char *a2)
{
	const char *argv[3] = { a0, a1, a2 };
	size_t lens[3] = { strlen(a0), a1 ? strlen(a1) : 0,
	    a2 ? strlen(a2) : 0 };

	return redis_cmd(c, t, errors_ok, cause, a2 ? 3 : a1 ? 2 : 1, argv,
	    lens);
}

static char *
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

static long long
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

static int
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
static int
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
static char *
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
static char *
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
static char *
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
static int
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

static int
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

/* ---- the logical dump ------------------------------------------------- */

/* Bytes into the pipeline in PIPE_BLOCK pieces. */
struct redis_sink {
	struct pipe_out	*out;
	unsigned char	*buf;
	size_t		 len;
	uint64_t	 bytes;
};

static int
redis_sink_flush(struct redis_sink *s, char **cause)
{
	if (s->len > 0 && pipe_out_write(s->out, s->buf, s->len, cause) == -1)
		return -1;
	s->len = 0;
	return 0;
}

static int
redis_sink_put(struct redis_sink *s, const void *data, size_t n,
    char **cause)
{
	const unsigned char *p = data;
	size_t k;

	s->bytes += n;
	while (n > 0) {
		k = PIPE_BLOCK - s->len;
		if (k > n)
			k = n;
		memcpy(s->buf + s->len, p, k);
		s->len += k;
		p += k;
		n -= k;
		if (s->len == PIPE_BLOCK && redis_sink_flush(s, cause) == -1)
			return -1;
	}
	return 0;
}

struct redis_logical;

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

static char *
redis_key_shown(const char *key, size_t len)
{
	return redis_printable(key, len, 60);
}

/* A key as a BBREDIS1 record, into the backup's stream. */
static int
redis_logical_frame(struct redis_logical *L, int db, const redisReply *key,
    const redisReply *dump, long long ttl, char **cause)
{
	unsigned char head[8], mid[12];

	redis_frame_head(head, (uint32_t)db, (uint32_t)key->len);
	redis_frame_mid(mid, ttl, (uint32_t)dump->len);
	if (redis_sink_put(&L->sink, head, sizeof(head), cause) == -1 ||
	    redis_sink_put(&L->sink, key->str, key->len, cause) == -1 ||
	    redis_sink_put(&L->sink, mid, sizeof(mid), cause) == -1 ||
	    redis_sink_put(&L->sink, dump->str, dump->len, cause) == -1)
		return -1;
	return 0;
}

/* One DUMP + PTTL pair of replies into a record (or skipped). */
static int
redis_logical_record(struct redis_logical *L, int db, const redisReply *key,
    const redisReply *dump, const redisReply *ttl, char **cause)
{
	char *shown, *why = NULL;

	if (dump->type == REDIS_REPLY_NIL || (ttl->type ==
	    REDIS_REPLY_INTEGER && ttl->integer == -2)) {
		L->vanished++;		/* gone between SCAN and DUMP */
		return 0;
	}
	shown = redis_key_shown(key->str, key->len);
	if (dump->type != REDIS_REPLY_STRING) {
		*cause = xasprintf("DUMP of key '%s' in db%d: %s", shown, db,
		    dump->type == REDIS_REPLY_ERROR ? dump->str :
		    "unexpected reply");
		free(shown);
		return -1;
	}
	if (ttl->type != REDIS_REPLY_INTEGER || ttl->integer < -1) {
		*cause = xasprintf("PTTL of key '%s' in db%d: %s", shown, db,
		    ttl->type == REDIS_REPLY_ERROR ? ttl->str :
		    "unexpected reply");
		free(shown);
		return -1;
	}
	if (key->len >= REDIS_FRAME_END || dump->len >= UINT32_MAX ||
	    redis_dump_payload_check((const unsigned char *)dump->str,
	    dump->len, &why) == -1) {
		*cause = xasprintf("DUMP of key '%s' in db%d: %s", shown, db,
		    why != NULL ? why : "too large for the format");
		free(why);
		free(shown);
		return -1;
	}
	free(shown);
	if (L->emit(L, db, key, dump, ttl->integer, cause) == -1)
		return -1;
	L->records++;
	return 0;
}

/* DUMP + PTTL of one SCAN batch, pipelined. */
static int
redis_logical_batch(struct redis_logical *L, int db, const redisReply *keys,
    char **cause)
{
	redisReply **replies;
	const char *argv[2];
	size_t lens[2], n = keys->elements, got = 0;
	char *why;
	int rc = -1;

	for (size_t i = 0; i < n; i++) {
		const redisReply *k = keys->element[i];

		if (k->type != REDIS_REPLY_STRING) {
			*cause = xstrdup("SCAN: a key that is not a string");
			return -1;
		}
		argv[1] = k->str;
		lens[1] = k->len;
		argv[0] = "DUMP";
		lens[0] = 4;
		redisAppendCommandArgv(L->c, 2, argv, lens);
		argv[0] = "PTTL";
		redisAppendCommandArgv(L->c, 2, argv, lens);
	}
	replies = xcalloc(2 * n + 1, sizeof(*replies));
	for (got = 0; got < 2 * n; got++) {
		if (redisGetReply(L->c, (void **)&replies[got]) != REDIS_OK) {
			why = redis_conn_error(L->c);
			*cause = xasprintf("DUMP: %s", why);
			free(why);
			goto done;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (redis_logical_record(L, db, keys->element[i],
		    replies[2 * i], replies[2 * i + 1], cause) == -1)
			goto done;
	rc = 0;
done:
	for (size_t i = 0; i < got; i++)
		freeReplyObject(replies[i]);
	free(replies);
	return rc;
}

static int
redis_logical_db(struct redis_logical *L, int db, char **cause)
{
	const struct target *t = L->ctx->target;
	char dbtext[16], cursor[32] = "0";
	const redisReply *keys, *cur;
	redisReply *r;
	uint64_t total;

	snprintf(dbtext, sizeof(dbtext), "%d", db);
	if ((r = redis_cmd1(L->c, t, 0, cause, "SELECT", dbtext,
	    NULL)) == NULL)
		return -1;
	freeReplyObject(r);
	do {
		const char *argv[4] = { "SCAN", cursor, "COUNT",
		    REDIS_SCAN_COUNT };
		size_t lens[4] = { 4, strlen(cursor), 5,
		    strlen(REDIS_SCAN_COUNT) };

		if (redis_is_cancelled(L->ctx)) {
			*cause = xstrdup("cancelled");
			return -1;
		}
		if ((r = redis_cmd(L->c, t, 0, cause, 4, argv, lens)) == NULL)
			return -1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    (cur = r->element[0])->type != REDIS_REPLY_STRING ||
		    cur->len == 0 || cur->len >= sizeof(cursor) ||
		    strspn(cur->str, "0123456789") != cur->len ||
		    (keys = r->element[1])->type != REDIS_REPLY_ARRAY) {
			*cause = xstrdup("SCAN: unexpected reply");
			freeReplyObject(r);
			return -1;
		}
		memcpy(cursor, cur->str, cur->len + 1);
		if (redis_logical_batch(L, db, keys, cause) == -1) {
			freeReplyObject(r);
			return -1;
		}
		L->keys_done += keys->elements;
		freeReplyObject(r);
		if (L->sink.out == NULL) {
			/* A restore: keys, not bytes. */
			if (mono_ms() - L->last >= REDIS_PROGRESS_MS) {
				L->last = mono_ms();
				backend_progress(L->ctx, "restore", L->keys_done,
				    L->keys_total > L->keys_done ?
				    L->keys_total : L->keys_done);
			}
		} else if (mono_ms() - L->last >= REDIS_PROGRESS_MS) {
			L->last = mono_ms();
			/* The size so far, scaled to every key. */
			total = L->keys_done > 0 && L->keys_total > 0 ?
			    (uint64_t)((double)L->sink.bytes *
			    (double)L->keys_total / (double)L->keys_done) :
			    L->estimate;
			backend_progress(L->ctx, "dump", L->sink.bytes,
			    total > L->sink.bytes ? total : L->sink.bytes);
		}
	} while (strcmp(cursor, "0") != 0);
	return 0;
}

static int
redis_logical(struct job_ctx *ctx, redisContext *c, struct pipe_out *out,
    uint64_t estimate, cJSON *manifest, char **cause)
{
	struct redis_logical L;
	unsigned char end[REDIS_FRAME_END_LEN];
	cJSON *keys = NULL, *dbs = cJSON_CreateArray();
	const cJSON *it;
	char *info, *why = NULL;
	int rc = -1;

	memset(&L, 0, sizeof(L));
	L.ctx = ctx;
	L.c = c;
	L.emit = redis_logical_frame;
	L.estimate = estimate;
	L.sink.out = out;
	L.sink.buf = xmalloc(PIPE_BLOCK);
	/* Which databases hold keys now, not when prepare looked. */
	if ((info = redis_info_text(c, ctx->target, &why)) == NULL) {
		*cause = why;
		goto done;
	}
	keys = redis_info_keyspace(info);
	free(info);
	cJSON_ArrayForEach(it, keys)
		L.keys_total += (uint64_t)it->valuedouble;
	backend_progress(ctx, "dump", 0, estimate);
	if (redis_sink_put(&L.sink, REDIS_FRAME_MAGIC, REDIS_FRAME_MAGIC_LEN,
	    cause) == -1)
		goto done;
	cJSON_ArrayForEach(it, keys) {
		long long db;

		if (it->string == NULL || !str_startswith(it->string, "db") ||
		    str_to_ll(it->string + 2, 0, 1000000, &db) == -1)
			continue;
		if (redis_logical_db(&L, (int)db, cause) == -1)
			goto done;
		cJSON_AddItemToArray(dbs, cJSON_CreateNumber((double)db));
	}
	redis_frame_end(end, L.records);
	if (redis_sink_put(&L.sink, end, sizeof(end), cause) == -1 ||
	    redis_sink_flush(&L.sink, cause) == -1)
		goto done;
	backend_progress(ctx, "dump", L.sink.bytes, L.sink.bytes);
	backend_fact(manifest, "format", cJSON_CreateString("BBREDIS1"));
	backend_fact(manifest, "records", cJSON_CreateNumber(
	    (double)L.records));
	backend_fact(manifest, "keys_vanished", cJSON_CreateNumber(
	    (double)L.vanished));
	backend_fact(manifest, "databases", dbs);
	dbs = NULL;
	rc = 0;
done:
	cJSON_Delete(keys);
	cJSON_Delete(dbs);
	free(L.sink.buf);
	return rc;
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

/* ---- restore: BBREDIS1 from a file ------------------------------------ */

/* Caps on what one record may ask us to allocate (Redis' own limits). */
#define REDIS_KEY_MAX		(512ULL * 1024 * 1024)

void
redis_frame_reader_init(struct redis_frame_reader *r, FILE *f)
{
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->f = f;
	r->size = fstat(fileno(f), &st) == 0 ? (uint64_t)st.st_size :
	    UINT64_MAX;
}

void
redis_frame_reader_release(struct redis_frame_reader *r)
{
	free(r->key);
	free(r->payload);
	r->key = r->payload = NULL;
	r->key_alloc = r->payload_alloc = 0;
}

/* Exactly n bytes of what, or -1 with *cause. */
static int
redis_fread(struct redis_frame_reader *r, void *p, size_t n,
    const char *what, char **cause)
{
	size_t got = 0;

	if (n > 0 && r->offset + n <= r->size)
		got = fread(p, 1, n, r->f);
	if (got == n) {
		r->offset += n;
		return 0;
	}
	if (ferror(r->f))
		*cause = xasprintf("reading the backup: %s", strerror(errno));
	else
		*cause = xasprintf("the logical backup is truncated at byte "
		    "%llu (%s of record %llu; %llu complete records, no end "
		    "record)", (unsigned long long)(r->offset + got), what,
		    (unsigned long long)r->records + 1,
		    (unsigned long long)r->records);
	return -1;
}

static void
redis_grow(unsigned char **p, size_t *alloc, size_t n)
{
	if (n > *alloc) {
		*p = xrealloc(*p, n);
		*alloc = n;
	}
}

int
redis_frame_read(struct redis_frame_reader *r, struct redis_record *rec,
    char **cause)
{
	unsigned char magic[REDIS_FRAME_MAGIC_LEN], head[8], mid[12], end[8];
	uint32_t db, klen, plen;
	char *why = NULL, *shown;
	int64_t ttl;

	*cause = NULL;
	memset(rec, 0, sizeof(*rec));
	if (r->done)
		return 0;
	if (!r->started) {
		if (redis_fread(r, magic, sizeof(magic), "the header",
		    cause) == -1)
			return -1;
		if (memcmp(magic, REDIS_FRAME_MAGIC, sizeof(magic)) != 0) {
			*cause = xstrdup("not a logical Redis backup (no "
			    "BBREDIS1 header)");
			return -1;
		}
		r->started = 1;
	}
	if (redis_fread(r, head, sizeof(head), "the head", cause) == -1)
		return -1;
	db = redis_be32(head);
	klen = redis_be32(head + 4);
	if (klen == REDIS_FRAME_END) {
		if (db != REDIS_FRAME_END) {
			*cause = xasprintf("bad end record at byte %llu",
			    (unsigned long long)r->offset - 8);
			return -1;
		}
		if (redis_fread(r, end, sizeof(end), "the end record",
		    cause) == -1)
			return -1;
		if (redis_be64(end) != r->records) {
			*cause = xasprintf("the end record counts %llu records, "
			    "the stream holds %llu",
			    (unsigned long long)redis_be64(end),
			    (unsigned long long)r->records);
			return -1;
		}
		if (getc(r->f) != EOF || ferror(r->f)) {
			*cause = xstrdup("data after the end record");
			return -1;
		}
		r->done = 1;
		return 0;
	}
	if (klen > REDIS_KEY_MAX || r->offset + klen > r->size) {
		*cause = xasprintf("%srecord %llu has a key of %u bytes, %s",
		    klen > REDIS_KEY_MAX ? "" : "the logical backup is "
		    "truncated: ", (unsigned long long)r->records + 1, klen,
		    klen > REDIS_KEY_MAX ? "longer than Redis allows" :
		    "past the end of the file");
		return -1;
	}
	redis_grow(&r->key, &r->key_alloc, klen > 0 ? klen : 1);
	if (redis_fread(r, r->key, klen, "the key", cause) == -1 ||
	    redis_fread(r, mid, sizeof(mid), "the ttl", cause) == -1)
		return -1;
	ttl = (int64_t)redis_be64(mid);
	plen = redis_be32(mid + 8);
	if (ttl < -1) {
		*cause = xasprintf("record %llu: bad ttl %lld",
		    (unsigned long long)r->records + 1, (long long)ttl);
		return -1;
	}
	if (plen < 11 || r->offset + plen > r->size) {
		*cause = xasprintf("%srecord %llu has a DUMP payload of %u "
		    "bytes, %s", plen < 11 ? "" : "the logical backup is "
		    "truncated: ", (unsigned long long)r->records + 1, plen,
		    plen < 11 ? "too short" : "past the end of the file");
		return -1;
	}
	redis_grow(&r->payload, &r->payload_alloc, plen);
	if (redis_fread(r, r->payload, plen, "the payload", cause) == -1)
		return -1;
	if (redis_dump_payload_check(r->payload, plen, &why) == -1) {
		shown = redis_key_shown((const char *)r->key, klen);
		*cause = xasprintf("record %llu (key '%s' in db%u): %s",
		    (unsigned long long)r->records + 1, shown, db, why);
		free(shown);
		free(why);
		return -1;
	}
	r->records++;
	rec->db = db;
	rec->key = r->key;
	rec->key_len = klen;
	rec->ttl_ms = ttl;
	rec->payload = r->payload;
	rec->payload_len = plen;
	return 1;
}

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

/* ---- restore: RESTORE, pipelined -------------------------------------- */

#define REDIS_PUT_BATCH		1000	/* commands, then the replies */
#define REDIS_PUT_BYTES		(16 * 1024 * 1024)
#define REDIS_LOAD_POLL_MS	50
#define REDIS_LOG_MAX		(1024 * 1024)
#define REDIS_PIPE_TIMEOUT	"120"	/* redis-cli --pipe: the last reply */

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

static struct redis_dbcount *
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

static void
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
static cJSON *
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
static int
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
static int
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

static void
redis_put_clear(struct redis_put *P)
{
	for (size_t i = 0; i < P->nq; i++)
		free(P->q[i].key);
	P->nq = 0;
	P->qbytes = 0;
}

/* Everything a put holds; a redis-cli still running is stopped. */
static void
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
static int
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
static int
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
static int
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
static int
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
static int
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
static int
redis_emit_put(struct redis_logical *L, int db, const redisReply *key,
    const redisReply *dump, long long ttl, char **cause)
{
	return redis_put_key(L->arg, (uint32_t)db, key->str, key->len, ttl,
	    dump->str, dump->len, cause);
}

static long long
redis_keys_in(const cJSON *keys, uint32_t db)
{
	char name[32];

	snprintf(name, sizeof(name), "db%u", db);
	return (long long)json_num(keys, name);
}

static long long
redis_keys_total(const cJSON *keys)
{
	const cJSON *it;
	long long n = 0;

	cJSON_ArrayForEach(it, keys)
		if (cJSON_IsNumber(it))
			n += (long long)it->valuedouble;
	return n;
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

static int
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

const struct backend backend_redis = {
	.kind = "redis",
	.suffix = ".redis",
	.prepare = redis_prepare,
	.backup = redis_backup,
	.check_reader = redis_check_reader,
	.probe = redis_probe,
	.restore = redis_restore,
};
