/*
 * test_redis.c - the Redis backend's pure parts: urls (and that a
 * password never gets in), Redis' CRC64, the RDB stream check against a
 * real RDB, the SYNC bulk reader fed through a pipe (keepalives, both
 * bulk forms, a mark cut in two, refusal, truncation, cancel, silence),
 * INFO parsing, the BBREDIS1 framing and its streaming check, redis-cli's
 * argv and what it says on stderr, and the forked check_reader.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "config.h"
#include "proc.h"
#include "redis.h"
#include "util.h"
#include "testutil.h"

/*
 * A dump.rdb written by redis-server 7.0.15 (redis-cli --rdb): a string,
 * a list, a hash and a key with a TTL.  Its CRC64 is Redis' own.
 */
static const unsigned char tiny_rdb[] = {
	0x52, 0x45, 0x44, 0x49, 0x53, 0x30, 0x30, 0x31, 0x30, 0xfa, 0x09, 0x72,
	0x65, 0x64, 0x69, 0x73, 0x2d, 0x76, 0x65, 0x72, 0x06, 0x37, 0x2e, 0x30,
	0x2e, 0x31, 0x35, 0xfa, 0x0a, 0x72, 0x65, 0x64, 0x69, 0x73, 0x2d, 0x62,
	0x69, 0x74, 0x73, 0xc0, 0x40, 0xfa, 0x05, 0x63, 0x74, 0x69, 0x6d, 0x65,
	0xc2, 0xd7, 0x27, 0x08, 0x6b, 0xfa, 0x08, 0x75, 0x73, 0x65, 0x64, 0x2d,
	0x6d, 0x65, 0x6d, 0xc2, 0x08, 0xd9, 0x0f, 0x00, 0xfa, 0x0e, 0x72, 0x65,
	0x70, 0x6c, 0x2d, 0x73, 0x74, 0x72, 0x65, 0x61, 0x6d, 0x2d, 0x64, 0x62,
	0xc0, 0x00, 0xfa, 0x07, 0x72, 0x65, 0x70, 0x6c, 0x2d, 0x69, 0x64, 0x28,
	0x64, 0x35, 0x35, 0x61, 0x36, 0x65, 0x36, 0x36, 0x33, 0x37, 0x31, 0x35,
	0x30, 0x38, 0x38, 0x66, 0x36, 0x33, 0x35, 0x63, 0x30, 0x66, 0x66, 0x35,
	0x36, 0x38, 0x37, 0x33, 0x62, 0x37, 0x30, 0x30, 0x64, 0x62, 0x66, 0x32,
	0x38, 0x33, 0x62, 0x36, 0xfa, 0x0b, 0x72, 0x65, 0x70, 0x6c, 0x2d, 0x6f,
	0x66, 0x66, 0x73, 0x65, 0x74, 0xc0, 0x00, 0xfa, 0x08, 0x61, 0x6f, 0x66,
	0x2d, 0x62, 0x61, 0x73, 0x65, 0xc0, 0x00, 0xfe, 0x00, 0xfb, 0x04, 0x01,
	0xfc, 0x40, 0x83, 0xd1, 0x1d, 0xa2, 0x01, 0x00, 0x00, 0x00, 0x01, 0x74,
	0x01, 0x78, 0x12, 0x04, 0x6c, 0x69, 0x73, 0x74, 0x01, 0x02, 0x10, 0x10,
	0x00, 0x00, 0x00, 0x03, 0x00, 0x81, 0x61, 0x02, 0x81, 0x62, 0x02, 0x81,
	0x63, 0x02, 0xff, 0x10, 0x01, 0x68, 0x0d, 0x0d, 0x00, 0x00, 0x00, 0x02,
	0x00, 0x81, 0x66, 0x02, 0x81, 0x76, 0x02, 0xff, 0x00, 0x08, 0x67, 0x72,
	0x65, 0x65, 0x74, 0x69, 0x6e, 0x67, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
	0xff, 0xbc, 0x0a, 0x7b, 0xee, 0x8f, 0xd3, 0x96, 0x58,
};

/* DUMP greeting (SET greeting hello), from the same server. */
static const unsigned char dump_hello[] = {
	0x00, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a, 0x00, 0x63, 0x72, 0xdf,
	0x76, 0x65, 0x34, 0x20, 0x0a
};

#define MARK	"0123456789abcdef0123456789abcdef01234567"

/* ---- url ---------------------------------------------------------------- */

static void
url_ok(const char *url, int tls, const char *host, int port,
    const char *path, const char *user, int db)
{
	struct redis_url u;
	char *cause = NULL;

	if (redis_url_parse(url, &u, &cause) == -1)
		fail_msg("%s: %s", url, cause);
	assert_null(cause);
	assert_int_equal(u.tls, tls);
	if (host == NULL)
		assert_null(u.host);
	else
		assert_string_equal(u.host, host);
	assert_int_equal(u.port, port);
	if (path == NULL)
		assert_null(u.path);
	else
		assert_string_equal(u.path, path);
	if (user == NULL)
		assert_null(u.user);
	else
		assert_string_equal(u.user, user);
	assert_int_equal(u.db, db);
	redis_url_release(&u);
}

static char *
url_bad(const char *url)
{
	struct redis_url u;
	char *cause = NULL;

	if (redis_url_parse(url, &u, &cause) == 0)
		fail_msg("%s was accepted", url);
	assert_non_null(cause);
	assert_null(u.host);
	assert_null(u.user);
	assert_null(u.path);
	return cause;
}

static void
test_url(void **state)
{
	(void)state;
	url_ok("redis://127.0.0.1:6379/0", 0, "127.0.0.1", 6379, NULL, NULL, 0);
	url_ok("redis://cache.example.org", 0, "cache.example.org", 6379, NULL,
	    NULL, 0);
	url_ok("redis://localhost:6380/", 0, "localhost", 6380, NULL, NULL, 0);
	url_ok("redis://backup@10.0.0.5:7000/3", 0, "10.0.0.5", 7000, NULL,
	    "backup", 3);
	/* Mastodon's REDIS_URL style with an empty password part. */
	url_ok("redis://:@redis:6379/1", 0, "redis", 6379, NULL, NULL, 1);
	url_ok("redis://us%40er@h/2", 0, "h", 6379, NULL, "us@er", 2);
	url_ok("rediss://valkey.internal:6390/15", 1, "valkey.internal", 6390,
	    NULL, NULL, 15);
	url_ok("redis://[::1]:6379/0", 0, "::1", 6379, NULL, NULL, 0);
	url_ok("redis://[fe80::1%eth0]/0", 0, "fe80::1%eth0", 6379, NULL, NULL,
	    0);
	url_ok("unix:///run/redis/redis.sock", 0, NULL, 0,
	    "/run/redis/redis.sock", NULL, 0);
	url_ok("unix:///var/run/valkey.sock?db=4", 0, NULL, 0,
	    "/var/run/valkey.sock", NULL, 4);
}

static void
test_url_bad(void **state)
{
	static const char *bad[] = {
		"", "http://h:6379", "redis://", "redis://:6379/0",
		"redis://h:0", "redis://h:65536", "redis://h:port",
		"redis://h:6379/x", "redis://h:6379/-1", "redis://h/0?x=1",
		"redis://h#frag", "redis://[::1", "redis://-h/0",
		"redis://h;rm -rf/0", "redis://h h/0", "unix://",
		"unix://relative.sock", "unix:///s.sock?db=x",
		"unix:///s.sock?timeout=1", "redis://u%zz@h/0",
		"redis://u%00@h/0", "redis://u%4@h/0",
	};

	(void)state;
	for (size_t i = 0; i < nitems(bad); i++)
		free(url_bad(bad[i]));
}

/* A password in the url is refused, and never repeated in the cause. */
static void
test_url_password(void **state)
{
	char *cause;

	(void)state;
	cause = url_bad("redis://:s3cr3t-PW@127.0.0.1:6379/0");
	assert_null(strstr(cause, "s3cr3t"));
	assert_non_null(strstr(cause, "password_file"));
	free(cause);
	cause = url_bad("rediss://backup:s3cr3t-PW@h/0");
	assert_null(strstr(cause, "s3cr3t"));
	free(cause);
	cause = url_bad("redis://backup:s3cr3t@PW@h/0");
	assert_null(strstr(cause, "s3cr3t"));
	free(cause);
}

/* ---- CRC64 -------------------------------------------------------------- */

/* Bit by bit, straight from the definition: the reference. */
static uint64_t
crc64_slow(uint64_t crc, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x95ac9329ac4bc9b5ULL :
			    crc >> 1;
	}
	return crc;
}

static void
test_crc64(void **state)
{
	unsigned char data[4099];
	uint64_t crc;

	(void)state;
	assert_true(redis_crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9caULL);
	assert_true(redis_crc64(0, "", 0) == 0);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 131 + (i >> 3));
	crc = redis_crc64(0, data, sizeof(data));
	assert_true(crc == crc64_slow(0, data, sizeof(data)));
	/* In pieces of every length, at every alignment: the same. */
	for (size_t piece = 1; piece < 20; piece++) {
		uint64_t c = 0;

		for (size_t off = 0; off < sizeof(data); off += piece)
			c = redis_crc64(c, data + off, off + piece <=
			    sizeof(data) ? piece : sizeof(data) - off);
		assert_true(c == crc);
	}
	/* A real RDB: everything but the last 8 bytes gives those 8. */
	crc = redis_crc64(0, tiny_rdb, sizeof(tiny_rdb) - 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal((unsigned)(crc >> (8 * i)) & 0xff,
		    tiny_rdb[sizeof(tiny_rdb) - 8 + i]);
}

/* ---- RDB check ---------------------------------------------------------- */

static void
test_rdb_header(void **state)
{
	(void)state;
	assert_int_equal(redis_rdb_header((const unsigned char *)"REDIS0010",
	    9), 10);
	assert_int_equal(redis_rdb_header((const unsigned char *)"REDIS0011x",
	    10), 11);
	assert_int_equal(redis_rdb_header((const unsigned char *)"REDIS0006",
	    9), 6);
	assert_int_equal(redis_rdb_header((const unsigned char *)"VALKEY080",
	    9), 80);
	assert_int_equal(redis_rdb_header((const unsigned char *)"REDIS001",
	    8), -1);
	assert_int_equal(redis_rdb_header((const unsigned char *)"REDIS00a0",
	    9), -1);
	assert_int_equal(redis_rdb_header((const unsigned char *)"REDIS0000",
	    9), -1);
	assert_int_equal(redis_rdb_header((const unsigned char *)"redis0010",
	    9), -1);
	assert_int_equal(redis_rdb_header((const unsigned char *)"BBREDIS1\n",
	    9), -1);
	assert_int_equal(redis_rdb_header((const unsigned char *)"VALKEY8x0",
	    9), -1);
}

/* Check data fed in pieces of `piece` bytes: 0 or -1 with *cause. */
static int
rdb_check(const unsigned char *data, size_t n, size_t piece,
    struct redis_rdb_check *c, char **cause)
{
	redis_rdb_check_init(c);
	for (size_t off = 0; off < n; off += piece)
		redis_rdb_check_feed(c, data + off, off + piece <= n ? piece :
		    n - off);
	return redis_rdb_check_finish(c, cause);
}

static void
test_rdb_check(void **state)
{
	static const size_t pieces[] = { 1, 2, 3, 8, 9, 10, 17, 64, 100000 };
	struct redis_rdb_check c;
	unsigned char *copy = xmalloc(sizeof(tiny_rdb));
	char *cause = NULL;

	(void)state;
	for (size_t i = 0; i < nitems(pieces); i++) {
		if (rdb_check(tiny_rdb, sizeof(tiny_rdb), pieces[i], &c,
		    &cause) == -1)
			fail_msg("piece %zu: %s", pieces[i], cause);
		assert_int_equal(c.version, 10);
		assert_int_equal(c.checksum_disabled, 0);
		assert_true(c.bytes == sizeof(tiny_rdb));
		assert_true(c.checksum == 0x5896d38fee7b0abcULL);
	}
	/* Any one byte changed: the CRC (or the header, or the opcode). */
	for (size_t off = 0; off < sizeof(tiny_rdb); off += 7) {
		memcpy(copy, tiny_rdb, sizeof(tiny_rdb));
		copy[off] ^= 0x01;
		assert_int_equal(rdb_check(copy, sizeof(tiny_rdb), 13, &c,
		    &cause), -1);
		assert_non_null(cause);
		free(cause);
		cause = NULL;
	}
	memcpy(copy, tiny_rdb, sizeof(tiny_rdb));
	copy[100] ^= 0x40;
	assert_int_equal(rdb_check(copy, sizeof(tiny_rdb), 64, &c, &cause), -1);
	assert_non_null(strstr(cause, "CRC64"));
	free(cause);
	/* Truncated anywhere. */
	for (size_t n = 0; n < sizeof(tiny_rdb); n += 5) {
		assert_int_equal(rdb_check(tiny_rdb, n, 4, &c, &cause), -1);
		assert_non_null(cause);
		free(cause);
		cause = NULL;
	}
	/* Something after the end is no RDB either. */
	memcpy(copy, tiny_rdb, sizeof(tiny_rdb));
	{
		unsigned char *longer = xmalloc(sizeof(tiny_rdb) + 1);

		memcpy(longer, tiny_rdb, sizeof(tiny_rdb));
		longer[sizeof(tiny_rdb)] = '\n';
		assert_int_equal(rdb_check(longer, sizeof(tiny_rdb) + 1, 50, &c,
		    &cause), -1);
		free(cause);
		free(longer);
	}
	/* Not an RDB at all. */
	assert_int_equal(rdb_check((const unsigned char *)"BBREDIS1\n\0\0\0\0"
	    "\0\0\0\0\0\0\0\0\0\0", 24, 5, &c, &cause), -1);
	assert_non_null(strstr(cause, "not an RDB"));
	free(cause);
	assert_int_equal(rdb_check(tiny_rdb, 0, 1, &c, &cause), -1);
	assert_non_null(strstr(cause, "empty"));
	free(cause);
	/* rdbchecksum no: a CRC of 0 is accepted, and said. */
	memcpy(copy, tiny_rdb, sizeof(tiny_rdb));
	memset(copy + sizeof(tiny_rdb) - 8, 0, 8);
	assert_int_equal(rdb_check(copy, sizeof(tiny_rdb), 32, &c, &cause), 0);
	assert_int_equal(c.checksum_disabled, 1);
	/* ... but the EOF opcode must still be there. */
	copy[sizeof(tiny_rdb) - 9] = 0xfe;
	assert_int_equal(rdb_check(copy, sizeof(tiny_rdb), 32, &c, &cause), -1);
	free(cause);
	free(copy);
}

/* ---- the SYNC reader ---------------------------------------------------- */

struct collect {
	struct buf	b;
	int		fail_at;	/* refuse the n-th write (1-based) */
	int		writes;
	uint64_t	last_done;
	int		progress_calls;
};

static int
collect_write(void *arg, const void *data, size_t n, char **cause)
{
	struct collect *c = arg;

	assert_true(n > 0);
	assert_true(n <= 64 * 1024 + REDIS_EOF_MARK_LEN);
	if (++c->writes == c->fail_at) {
		*cause = xstrdup("disk full");
		return -1;
	}
	assert_int_equal(buf_add(&c->b, data, n), 0);
	return 0;
}

static void
collect_progress(void *arg, uint64_t done, uint64_t total)
{
	struct collect *c = arg;

	assert_true(done >= c->last_done);
	c->last_done = done;
	(void)total;
	c->progress_calls++;
}

/* A child writes data into a pipe in pieces; the read end. */
static int
feeder(const void *data, size_t n, size_t piece, pid_t *pid)
{
	int fd[2];

	assert_int_equal(pipe(fd), 0);
	*pid = fork();
	assert_true(*pid != -1);
	if (*pid == 0) {
		const char *p = data;

		close(fd[0]);
		signal(SIGPIPE, SIG_IGN);
		for (size_t off = 0; off < n; off += piece)
			if (write(fd[1], p + off, off + piece <= n ? piece :
			    n - off) < 0)
				_exit(1);
		_exit(0);
	}
	close(fd[1]);
	return fd[0];
}

/* Run redis_rdb_receive over stream; 0/-1, c filled. */
static int
receive(const void *stream, size_t n, size_t piece, struct collect *c,
    struct redis_recv *r, char **cause)
{
	pid_t pid;
	int fd = feeder(stream, n, piece, &pid), rc, status;

	memset(r, 0, sizeof(*r));
	r->write = collect_write;
	r->progress = collect_progress;
	r->arg = c;
	r->idle_ms = 5000;
	r->estimate = 1000;
	rc = redis_rdb_receive(fd, r, cause);
	close(fd);
	waitpid(pid, &status, 0);
	return rc;
}

static void
collect_init(struct collect *c)
{
	memset(c, 0, sizeof(*c));
	buf_init(&c->b, 16 * 1024 * 1024);
}

/* prefix + rdb + suffix in one buffer (caller frees). */
static unsigned char *
stream_of(const char *prefix, const void *rdb, size_t n, const char *suffix,
    size_t *len)
{
	size_t a = strlen(prefix), b = strlen(suffix);
	unsigned char *s = xmalloc(a + n + b);

	memcpy(s, prefix, a);
	memcpy(s + a, rdb, n);
	memcpy(s + a + n, suffix, b);
	*len = a + n + b;
	return s;
}

/*
 * A big RDB of our own making (the tiny one's header, filler in an AUX
 * field's place, EOF, CRC): big enough to take many reads.
 */
static unsigned char *
big_rdb(size_t n)
{
	unsigned char *p = xmalloc(n);
	uint64_t crc;

	memcpy(p, "REDIS0010", 9);
	for (size_t i = 9; i < n - 9; i++)
		p[i] = (unsigned char)("QRSTUVWXYZ"[i % 10] ^ (i >> 12));
	p[n - 9] = 0xff;
	crc = redis_crc64(0, p, n - 8);
	for (int i = 0; i < 8; i++)
		p[n - 8 + i] = (unsigned char)(crc >> (8 * i));
	return p;
}

static void
test_receive_forms(void **state)
{
	static const size_t pieces[] = { 1, 3, 39, 40, 41, 4096, 65536, 70000 };
	struct redis_recv r;
	struct collect c;
	unsigned char *s, *big = big_rdb(300001);
	char *cause = NULL, hdr[64];
	size_t len;

	(void)state;
	/* Keepalives, then the diskless form, in pieces of every size. */
	s = stream_of("\n\n\n$EOF:" MARK "\r\n", tiny_rdb, sizeof(tiny_rdb),
	    MARK, &len);
	for (size_t i = 0; i < nitems(pieces); i++) {
		collect_init(&c);
		if (receive(s, len, pieces[i], &c, &r, &cause) == -1)
			fail_msg("piece %zu: %s", pieces[i], cause);
		assert_int_equal(r.diskless, 1);
		assert_int_equal(r.refused, 0);
		assert_true(c.b.len == sizeof(tiny_rdb));
		assert_memory_equal(c.b.data, tiny_rdb, sizeof(tiny_rdb));
		assert_true(r.bytes == sizeof(tiny_rdb));
		assert_int_equal(r.check.version, 10);
		buf_release(&c.b);
	}
	free(s);

	/* The sized form; what follows the length is not the RDB's. */
	snprintf(hdr, sizeof(hdr), "\n$%zu\r\n", sizeof(tiny_rdb));
	s = stream_of(hdr, tiny_rdb, sizeof(tiny_rdb), "*1\r\n$4\r\nPING\r\n",
	    &len);
	for (size_t i = 0; i < nitems(pieces); i++) {
		collect_init(&c);
		if (receive(s, len, pieces[i], &c, &r, &cause) == -1)
			fail_msg("piece %zu: %s", pieces[i], cause);
		assert_int_equal(r.diskless, 0);
		assert_true(r.length == sizeof(tiny_rdb));
		assert_true(c.b.len == sizeof(tiny_rdb));
		assert_memory_equal(c.b.data, tiny_rdb, sizeof(tiny_rdb));
		buf_release(&c.b);
	}
	free(s);

	/* Many reads: the mark lands anywhere, maybe cut in two. */
	for (size_t cut = 0; cut < 3; cut++) {
		size_t piece = 65536 - 20 + cut * 13;

		s = stream_of("$EOF:" MARK "\r\n", big, 300001, MARK, &len);
		collect_init(&c);
		if (receive(s, len, piece, &c, &r, &cause) == -1)
			fail_msg("big, piece %zu: %s", piece, cause);
		assert_true(c.b.len == 300001);
		assert_memory_equal(c.b.data, big, 300001);
		assert_true(c.progress_calls >= 2);
		assert_true(c.last_done == 300001);
		buf_release(&c.b);
		free(s);
	}
	snprintf(hdr, sizeof(hdr), "$%d\r\n", 300001);
	s = stream_of(hdr, big, 300001, "", &len);
	collect_init(&c);
	if (receive(s, len, 9999, &c, &r, &cause) == -1)
		fail_msg("big sized: %s", cause);
	assert_true(c.b.len == 300001);
	buf_release(&c.b);
	free(s);
	free(big);
}

static void
expect_receive_error(const void *stream, size_t n, const char *want,
    int refused)
{
	struct redis_recv r;
	struct collect c;
	char *cause = NULL;

	collect_init(&c);
	assert_int_equal(receive(stream, n, 7, &c, &r, &cause), -1);
	assert_non_null(cause);
	if (strstr(cause, want) == NULL)
		fail_msg("\"%s\" not in \"%s\"", want, cause);
	assert_int_equal(r.refused, refused);
	if (refused)
		assert_int_equal(c.b.len, 0);
	free(cause);
	buf_release(&c.b);
}

static void
expect_receive_error_str(const char *stream, const char *want, int refused)
{
	expect_receive_error(stream, strlen(stream), want, refused);
}

static void
test_receive_errors(void **state)
{
	unsigned char *s, *bad;
	char hdr[64];
	size_t len;

	(void)state;
	/* The master refuses: its words, nothing written. */
	expect_receive_error_str("-ERR unknown command 'SYNC', with args "
	    "beginning with: \r\n", "ERR unknown command 'SYNC'", 1);
	expect_receive_error_str("\n\n-NOPERM this user has no permissions to "
	    "run the 'sync' command\r\n", "NOPERM", 1);
	/* Nothing at all, or garbage. */
	expect_receive_error_str("", "without sending an RDB", 0);
	expect_receive_error_str("\n\n\n", "without sending an RDB", 0);
	expect_receive_error_str("+FULLRESYNC x 0\r\n", "unexpected reply", 0);
	expect_receive_error_str("$-1\r\n", "unexpected reply", 0);
	expect_receive_error_str("$0\r\n", "unexpected reply", 0);
	expect_receive_error_str("$EOF:short\r\n", "unexpected reply", 0);
	s = xmalloc(400);
	memset(s, 'x', 400);
	s[0] = '$';
	expect_receive_error(s, 400, "unexpected reply", 0);
	free(s);

	/* Cut short: in the sized form, and before the mark. */
	snprintf(hdr, sizeof(hdr), "$%zu\r\n", sizeof(tiny_rdb));
	s = stream_of(hdr, tiny_rdb, sizeof(tiny_rdb) - 1, "", &len);
	expect_receive_error(s, len, "incomplete", 0);
	free(s);
	s = stream_of("$EOF:" MARK "\r\n", tiny_rdb, sizeof(tiny_rdb),
	    "0123456789", &len);
	expect_receive_error(s, len, "incomplete", 0);
	free(s);
	/* Whole, but damaged: the CRC tells. */
	bad = xmalloc(sizeof(tiny_rdb));
	memcpy(bad, tiny_rdb, sizeof(tiny_rdb));
	bad[120] ^= 0x10;
	s = stream_of("$EOF:" MARK "\r\n", bad, sizeof(tiny_rdb), MARK, &len);
	expect_receive_error(s, len, "CRC64", 0);
	free(s);
	/* A sized stream that is no RDB. */
	s = stream_of("$12\r\n", "hello, world", 12, "", &len);
	expect_receive_error(s, len, "not an RDB", 0);
	free(s);
	free(bad);
}

static void
test_receive_write_fails(void **state)
{
	struct redis_recv r;
	struct collect c;
	unsigned char *s, *big = big_rdb(200000);
	char *cause = NULL;
	size_t len;

	(void)state;
	s = stream_of("$EOF:" MARK "\r\n", big, 200000, MARK, &len);
	collect_init(&c);
	c.fail_at = 2;
	assert_int_equal(receive(s, len, 65536, &c, &r, &cause), -1);
	assert_string_equal(cause, "disk full");
	assert_int_equal(r.refused, 0);
	free(cause);
	buf_release(&c.b);
	free(s);
	free(big);
}

/* Silence, and a cancel: both end the read in bounded time. */
static void
test_receive_idle_cancel(void **state)
{
	volatile sig_atomic_t cancelled = 0;
	struct redis_recv r;
	struct collect c;
	char *cause = NULL;
	int fd[2];
	int64_t t0;

	(void)state;
	assert_int_equal(pipe(fd), 0);
	assert_int_equal(write(fd[1], "\n\n", 2), 2);
	collect_init(&c);
	memset(&r, 0, sizeof(r));
	r.write = collect_write;
	r.arg = &c;
	r.idle_ms = 300;
	t0 = mono_ms();
	assert_int_equal(redis_rdb_receive(fd[0], &r, &cause), -1);
	assert_non_null(strstr(cause, "no data from the server"));
	assert_true(mono_ms() - t0 < 3000);
	free(cause);

	cancelled = 1;
	r.cancelled = &cancelled;
	r.idle_ms = 60000;
	t0 = mono_ms();
	assert_int_equal(redis_rdb_receive(fd[0], &r, &cause), -1);
	assert_string_equal(cause, "cancelled");
	assert_true(mono_ms() - t0 < 3000);
	free(cause);
	close(fd[0]);
	close(fd[1]);
	buf_release(&c.b);
}

/* ---- INFO --------------------------------------------------------------- */

static void
test_info(void **state)
{
	static const char info[] = "# Server\r\nredis_version:7.0.15\r\n"
	    "redis_mode:standalone\r\nrole_x:1\r\n\r\n# Memory\r\n"
	    "used_memory:1430848\r\nused_memory_human:1.36M\r\n"
	    "# Persistence\r\nrdb_last_save_time:1795696565\r\n"
	    "# Keyspace\r\ndb0:keys=5000,expires=1,avg_ttl=0\r\n"
	    "db3:keys=12,expires=0,avg_ttl=0\r\ndb15:keys=0,expires=0\n"
	    "dbx:keys=5\r\ndb4:keys=\r\n";
	char *v;
	cJSON *keys;

	(void)state;
	v = redis_info_field(info, "redis_version");
	assert_string_equal(v, "7.0.15");
	free(v);
	v = redis_info_field(info, "used_memory");
	assert_string_equal(v, "1430848");
	free(v);
	v = redis_info_field(info, "rdb_last_save_time");
	assert_string_equal(v, "1795696565");
	free(v);
	assert_null(redis_info_field(info, "valkey_version"));
	assert_null(redis_info_field(info, "role"));
	assert_null(redis_info_field(info, "used_memor"));
	assert_null(redis_info_field("", "x"));
	keys = redis_info_keyspace(info);
	assert_int_equal(cJSON_GetArraySize(keys), 3);
	assert_int_equal(cJSON_GetObjectItem(keys, "db0")->valueint, 5000);
	assert_int_equal(cJSON_GetObjectItem(keys, "db3")->valueint, 12);
	assert_int_equal(cJSON_GetObjectItem(keys, "db15")->valueint, 0);
	cJSON_Delete(keys);
	/* Valkey keeps redis_version for old clients, and says its own. */
	v = redis_info_field("# Server\r\nredis_version:7.2.4\r\n"
	    "server_name:valkey\r\nvalkey_version:8.0.1\r\n",
	    "valkey_version");
	assert_string_equal(v, "8.0.1");
	free(v);
}

/* ---- BBREDIS1 ----------------------------------------------------------- */

static void
frame_record(struct buf *b, uint32_t db, const char *key, size_t klen,
    int64_t ttl, const void *payload, size_t plen)
{
	unsigned char head[8], mid[12];

	redis_frame_head(head, db, (uint32_t)klen);
	redis_frame_mid(mid, ttl, (uint32_t)plen);
	buf_add(b, head, sizeof(head));
	buf_add(b, key, klen);
	buf_add(b, mid, sizeof(mid));
	buf_add(b, payload, plen);
}

/* A stream of n records (two dbs, with and without ttl, empty key). */
static void
frame_stream(struct buf *b, int n, int end_count)
{
	unsigned char end[REDIS_FRAME_END_LEN];

	buf_init(b, 1 << 20);
	buf_add(b, REDIS_FRAME_MAGIC, REDIS_FRAME_MAGIC_LEN);
	for (int i = 0; i < n; i++) {
		char key[32];

		snprintf(key, sizeof(key), "key:%d", i);
		frame_record(b, i % 2 ? 3 : 0, key, i == 5 ? 0 : strlen(key),
		    i % 3 ? -1 : 1000 * i, dump_hello, sizeof(dump_hello));
	}
	redis_frame_end(end, (uint64_t)(end_count >= 0 ? end_count : n));
	buf_add(b, end, sizeof(end));
}

static int
frame_check(const void *data, size_t n, size_t piece, uint64_t *records,
    char **cause)
{
	struct redis_frame_check f;
	int rc = 0;

	redis_frame_check_init(&f);
	for (size_t off = 0; off < n && rc == 0; off += piece)
		rc = redis_frame_check_feed(&f, (const char *)data + off,
		    off + piece <= n ? piece : n - off, cause);
	if (rc == 0)
		rc = redis_frame_check_finish(&f, cause);
	if (records != NULL)
		*records = f.records;
	redis_frame_check_release(&f);
	return rc;
}

static void
test_frame_encoding(void **state)
{
	unsigned char head[8], mid[12], end[REDIS_FRAME_END_LEN];
	static const unsigned char want_head[8] = { 0, 0, 0, 3, 0, 0, 1, 2 };
	static const unsigned char want_mid[12] = { 0, 0, 0, 0, 0, 0, 0x27,
	    0x10, 0, 0, 0, 17 };
	static const unsigned char want_none[8] = { 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff };
	static const unsigned char want_end[16] = { 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40 };

	(void)state;
	redis_frame_head(head, 3, 258);
	assert_memory_equal(head, want_head, 8);
	redis_frame_mid(mid, 10000, 17);
	assert_memory_equal(mid, want_mid, 12);
	/* No expiry: -1, all ones. */
	redis_frame_mid(mid, -1, 17);
	assert_memory_equal(mid, want_none, 8);
	redis_frame_end(end, 1000000);
	assert_memory_equal(end, want_end, 16);
	assert_int_equal(REDIS_FRAME_MAGIC_LEN, strlen(REDIS_FRAME_MAGIC));
}

static void
test_dump_payload(void **state)
{
	unsigned char copy[sizeof(dump_hello)];
	char *cause = NULL;

	(void)state;
	assert_int_equal(redis_dump_payload_check(dump_hello,
	    sizeof(dump_hello), &cause), 0);
	assert_null(cause);
	for (size_t i = 0; i < sizeof(copy); i++) {
		memcpy(copy, dump_hello, sizeof(copy));
		copy[i] ^= 0x04;
		assert_int_equal(redis_dump_payload_check(copy, sizeof(copy),
		    &cause), -1);
		free(cause);
		cause = NULL;
	}
	assert_int_equal(redis_dump_payload_check(dump_hello, 10, &cause), -1);
	assert_non_null(strstr(cause, "too short"));
	free(cause);
}

static void
test_frame_check(void **state)
{
	static const size_t pieces[] = { 1, 2, 7, 20, 21, 1000, 1 << 20 };
	struct buf b;
	uint64_t records;
	char *cause = NULL;

	(void)state;
	frame_stream(&b, 40, -1);
	for (size_t i = 0; i < nitems(pieces); i++) {
		if (frame_check(b.data, b.len, pieces[i], &records,
		    &cause) == -1)
			fail_msg("piece %zu: %s", pieces[i], cause);
		assert_true(records == 40);
	}
	/* Truncated anywhere. */
	for (size_t n = 0; n < b.len; n += 11) {
		assert_int_equal(frame_check(b.data, n, 5, NULL, &cause), -1);
		assert_non_null(cause);
		free(cause);
		cause = NULL;
	}
	/* One bit flipped in a payload: its CRC. */
	b.data[REDIS_FRAME_MAGIC_LEN + 8 + 5 + 12 + 3] ^= 0x01;
	assert_int_equal(frame_check(b.data, b.len, 100, NULL, &cause), -1);
	assert_non_null(strstr(cause, "record 1"));
	assert_non_null(strstr(cause, "CRC64"));
	free(cause);
	buf_release(&b);

	/* Anything after the end record. */
	frame_stream(&b, 3, -1);
	buf_add(&b, "x", 1);
	assert_int_equal(frame_check(b.data, b.len, 4, NULL, &cause), -1);
	assert_non_null(strstr(cause, "after the end"));
	free(cause);
	buf_release(&b);
	/* A count that does not match. */
	frame_stream(&b, 3, 4);
	assert_int_equal(frame_check(b.data, b.len, 4, NULL, &cause), -1);
	assert_non_null(strstr(cause, "counts 4 records"));
	free(cause);
	buf_release(&b);
	/* No magic: an RDB is no logical backup. */
	assert_int_equal(frame_check(tiny_rdb, sizeof(tiny_rdb), 64, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "BBREDIS1"));
	free(cause);
	/* Empty is truncated; zero records is fine. */
	assert_int_equal(frame_check("", 0, 1, NULL, &cause), -1);
	free(cause);
	frame_stream(&b, 0, -1);
	assert_int_equal(frame_check(b.data, b.len, 3, &records, &cause), 0);
	assert_true(records == 0);
	buf_release(&b);
	/* A bad ttl and a short payload. */
	buf_init(&b, 4096);
	buf_add(&b, REDIS_FRAME_MAGIC, REDIS_FRAME_MAGIC_LEN);
	frame_record(&b, 0, "k", 1, -5, dump_hello, sizeof(dump_hello));
	assert_int_equal(frame_check(b.data, b.len, 3, NULL, &cause), -1);
	assert_non_null(strstr(cause, "bad ttl"));
	free(cause);
	buf_reset(&b);
	buf_add(&b, REDIS_FRAME_MAGIC, REDIS_FRAME_MAGIC_LEN);
	frame_record(&b, 0, "k", 1, -1, dump_hello, 10);
	assert_int_equal(frame_check(b.data, b.len, 3, NULL, &cause), -1);
	assert_non_null(strstr(cause, "too short"));
	free(cause);
	buf_release(&b);
}

/* ---- redis-cli ---------------------------------------------------------- */

static void
target_init(struct target *t)
{
	memset(t, 0, sizeof(*t));
	t->name = "cache";
	t->kind = TARGET_REDIS;
	t->url = "redis://127.0.0.1:6379/0";
	t->mode = "auto";
	t->tls_verify = 1;
	t->redis_cli = "redis-cli";
	t->compression = "zstd";
	t->level = 3;
}

static char *
joined(char **argv)
{
	struct buf b;

	buf_init(&b, 4096);
	for (size_t i = 0; argv[i] != NULL; i++)
		buf_addf(&b, "%s%s", i > 0 ? "|" : "", argv[i]);
	return buf_detach(&b, NULL);
}

static void
check_cli_argv(const struct target *t, const char *url, const char *want)
{
	const char *extra[] = { "--rdb", "-", NULL };
	struct redis_url u;
	char *cause = NULL, **argv, *s;

	assert_int_equal(redis_url_parse(url, &u, &cause), 0);
	argv = redis_cli_argv(t, &u, extra);
	s = joined(argv);
	assert_string_equal(s, want);
	free(s);
	redis_argv_free(argv);
	redis_url_release(&u);
}

static void
test_cli_argv(void **state)
{
	struct target t;

	(void)state;
	target_init(&t);
	t.password_file = "/etc/backupbot/redis.pass";
	check_cli_argv(&t, "redis://127.0.0.1:6390/2",
	    "redis-cli|-h|127.0.0.1|-p|6390|--rdb|-");
	/* TLS: the server's certificate is checked against the CA file. */
	t.tls_ca_file = "/etc/ssl/redis-ca.pem";
	check_cli_argv(&t, "rediss://backup@127.0.0.1:6390/0",
	    "redis-cli|--tls|--cacert|/etc/ssl/redis-ca.pem|-h|127.0.0.1|-p|"
	    "6390|--user|backup|--rdb|-");
	/* A name: SNI. */
	check_cli_argv(&t, "rediss://cache.example.org",
	    "redis-cli|--tls|--cacert|/etc/ssl/redis-ca.pem|--sni|"
	    "cache.example.org|-h|cache.example.org|-p|6379|--rdb|-");
	/* No CA file: the system's; tls_verify = no: none at all. */
	t.tls_ca_file = NULL;
	check_cli_argv(&t, "rediss://[::1]:7000",
	    "redis-cli|--tls|-h|::1|-p|7000|--rdb|-");
	t.tls_verify = 0;
	t.tls_ca_file = "/etc/ssl/redis-ca.pem";
	t.redis_cli = "/opt/valkey/bin/valkey-cli";
	check_cli_argv(&t, "rediss://10.1.2.3:6380",
	    "/opt/valkey/bin/valkey-cli|--tls|--insecure|-h|10.1.2.3|-p|6380|"
	    "--rdb|-");
	check_cli_argv(&t, "unix:///run/redis.sock?db=2",
	    "/opt/valkey/bin/valkey-cli|-s|/run/redis.sock|--rdb|-");
}

static void
test_cli_rdb_length(void **state)
{
	uint64_t len = 0;
	int diskless = -1;

	(void)state;
	assert_int_equal(redis_cli_rdb_length("sending REPLCONF capa eof\n"
	    "sending REPLCONF rdb-only 1\nSYNC sent to master, writing bytes "
	    "of bulk transfer until EOF marker to '-'\nTransfer finished with "
	    "success after 4777961 bytes\n", &len, &diskless), 0);
	assert_true(len == 4777961);
	assert_int_equal(diskless, 1);
	assert_int_equal(redis_cli_rdb_length("SYNC sent to master, writing "
	    "172 bytes to '-'\nTransfer finished with success.\n", &len,
	    &diskless), 0);
	assert_true(len == 172);
	assert_int_equal(diskless, 0);
	/* valkey-cli says primary. */
	assert_int_equal(redis_cli_rdb_length("SYNC sent to primary, writing "
	    "4096 bytes to '-'\nTransfer finished with success.\n", &len,
	    &diskless), 0);
	assert_true(len == 4096);
	assert_int_equal(diskless, 0);
	assert_int_equal(redis_cli_rdb_length("SYNC sent to primary, writing "
	    "bytes of bulk transfer until EOF marker to '-'\nTransfer "
	    "finished with success after 99 bytes\n", &len, &diskless), 0);
	assert_true(len == 99);
	assert_int_equal(diskless, 1);
	assert_int_equal(redis_cli_rdb_length("SYNC with master failed: -ERR "
	    "unknown command 'SYNC'\n", &len, &diskless), -1);
	assert_int_equal(redis_cli_rdb_length("", &len, &diskless), -1);
	assert_int_equal(redis_cli_rdb_length("Transfer finished with success "
	    "after x bytes", &len, &diskless), -1);
}

static void
test_check_tool(void **state)
{
	struct { const char *cli, *want; } cases[] = {
		{ "redis-cli", "redis-check-rdb" },
		{ "valkey-cli", "valkey-check-rdb" },
		{ "/opt/redis-7.2/bin/redis-cli", "/opt/redis-7.2/bin/"
		    "redis-check-rdb" },
		{ "/usr/local/bin/valkey-cli", "/usr/local/bin/"
		    "valkey-check-rdb" },
		{ "/usr/bin/rcli", "/usr/bin/redis-check-rdb" },
		{ "mycli", "redis-check-rdb" },
		{ NULL, "redis-check-rdb" },
	};

	(void)state;
	for (size_t i = 0; i < nitems(cases); i++) {
		char *s = redis_check_tool(cases[i].cli);

		assert_string_equal(s, cases[i].want);
		free(s);
	}
}

/* ---- the backend -------------------------------------------------------- */

static void
test_backend_table(void **state)
{
	struct target t;

	(void)state;
	target_init(&t);
	assert_ptr_equal(backend_for(&t), &backend_redis);
	assert_string_equal(backend_redis.kind, "redis");
	assert_string_equal(backend_redis.suffix, ".redis");
	assert_non_null(backend_redis.prepare);
	assert_non_null(backend_redis.backup);
	assert_non_null(backend_redis.check_reader);
	assert_non_null(backend_redis.probe);
	assert_null(backend_redis.sync);
}

/* Feed data to the reader check_reader starts; its wait status. */
static int
run_reader(const struct target *t, const cJSON *manifest, const void *data,
    size_t len, struct tail *err)
{
	struct job_ctx ctx;
	struct proc p;
	char *cause = NULL, chunk[512];
	void (*old)(int);
	ssize_t n;
	int status;

	memset(&ctx, 0, sizeof(ctx));
	ctx.target = t;
	memset(err, 0, sizeof(*err));
	assert_int_equal(backend_redis.check_reader(&ctx, manifest, &p,
	    &cause), 0);
	assert_null(cause);
	assert_true(p.in_fd != -1);
	assert_true(p.err_fd != -1);
	assert_int_equal(p.out_fd, -1);
	old = signal(SIGPIPE, SIG_IGN);
	if (len > 0)
		(void)!write(p.in_fd, data, len);	/* it may stop early */
	close(p.in_fd);
	p.in_fd = -1;
	while ((n = read(p.err_fd, chunk, sizeof(chunk))) > 0)
		tail_add(err, chunk, (size_t)n);
	assert_int_equal(proc_wait(&p, &status), 0);
	signal(SIGPIPE, old);
	return status;
}

static int
have_tool(const char *prog)
{
	const char *argv[] = { prog, "--version", NULL };
	char *cause = NULL;
	int status;

	if (proc_run(argv, NULL, NULL, 0, NULL, &status, &cause) == -1) {
		free(cause);
		return 0;
	}
	return proc_ok(status);
}

static void
test_check_reader_logical(void **state)
{
	struct target t;
	struct tail err;
	struct buf b;
	cJSON *m = cJSON_CreateObject();

	(void)state;
	target_init(&t);
	cJSON_AddStringToObject(m, "mode", "logical");
	cJSON_AddNumberToObject(m, "records", 25);
	frame_stream(&b, 25, -1);
	assert_true(proc_ok(run_reader(&t, m, b.data, b.len, &err)));
	/* Truncated: told, with where. */
	assert_false(proc_ok(run_reader(&t, m, b.data, b.len - 3, &err)));
	assert_non_null(strstr(tail_text(&err, 5), "truncated"));
	/* The manifest's count must match too. */
	cJSON_ReplaceItemInObject(m, "records", cJSON_CreateNumber(26));
	assert_false(proc_ok(run_reader(&t, m, b.data, b.len, &err)));
	assert_non_null(strstr(tail_text(&err, 5), "26 records"));
	/* An RDB is not a logical backup; nothing is nothing. */
	assert_false(proc_ok(run_reader(&t, m, tiny_rdb, sizeof(tiny_rdb),
	    &err)));
	assert_false(proc_ok(run_reader(&t, m, "", 0, &err)));
	buf_release(&b);
	cJSON_Delete(m);
}

static void
test_check_reader_rdb(void **state)
{
	struct target t;
	struct tail err;
	unsigned char *bad = xmalloc(sizeof(tiny_rdb));
	cJSON *m = cJSON_CreateObject();

	(void)state;
	target_init(&t);
	cJSON_AddStringToObject(m, "mode", "rdb");
	if (!have_tool("redis-check-rdb")) {
		print_message("redis-check-rdb not installed: skipped\n");
		cJSON_Delete(m);
		free(bad);
		return;
	}
	assert_true(proc_ok(run_reader(&t, m, tiny_rdb, sizeof(tiny_rdb),
	    &err)));
	/* Cut short: the tool's words, without its progress lines. */
	assert_false(proc_ok(run_reader(&t, m, tiny_rdb, 150, &err)));
	assert_non_null(strstr(tail_text(&err, 5), "RDB ERROR DETECTED"));
	assert_null(strstr(err.buf, "AUX FIELD"));
	assert_null(strstr(err.buf, "[info]"));
	memcpy(bad, tiny_rdb, sizeof(tiny_rdb));
	bad[sizeof(tiny_rdb) - 3] ^= 0x01;
	assert_false(proc_ok(run_reader(&t, m, bad, sizeof(tiny_rdb), &err)));
	assert_non_null(strstr(tail_text(&err, 5), "CRC"));
	/* A version it does not know: said, with what to do. */
	memcpy(bad, tiny_rdb, sizeof(tiny_rdb));
	memcpy(bad, "REDIS0099", 9);
	assert_false(proc_ok(run_reader(&t, m, bad, sizeof(tiny_rdb), &err)));
	assert_non_null(strstr(tail_text(&err, 5), "older than the server"));
	/* A missing tool is a failure, said clearly. */
	t.redis_cli = "/nonexistent/valkey-cli";
	assert_false(proc_ok(run_reader(&t, m, tiny_rdb, sizeof(tiny_rdb),
	    &err)));
	assert_non_null(strstr(tail_text(&err, 5),
	    "/nonexistent/valkey-check-rdb"));
	cJSON_Delete(m);
	free(bad);
}

static void
test_probe_unreachable(void **state)
{
	struct target t;
	struct job_ctx ctx;
	cJSON *out = cJSON_CreateObject();
	char *cause = NULL;

	(void)state;
	target_init(&t);
	/* Port 1 on loopback: refused at once. */
	t.url = "redis://127.0.0.1:1/0";
	memset(&ctx, 0, sizeof(ctx));
	ctx.target = &t;
	assert_int_equal(backend_redis.probe(&ctx, out, &cause), -1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "cannot connect to Redis at "
	    "127.0.0.1:1"));
	assert_null(strchr(cause, '\n'));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(out,
	    "reachable")));
	free(cause);
	cJSON_Delete(out);
}

static void
test_prepare_refusals(void **state)
{
	struct target t;
	struct job_ctx ctx;
	cJSON *m = cJSON_CreateObject();
	char *cause = NULL, *dir, *pw;

	(void)state;
	target_init(&t);
	memset(&ctx, 0, sizeof(ctx));
	ctx.target = &t;
	/* A password in the url: refused before anything is tried. */
	t.url = "redis://:hunter2@127.0.0.1:1/0";
	assert_int_equal(backend_redis.prepare(&ctx, m, &cause), -1);
	assert_null(strstr(cause, "hunter2"));
	assert_non_null(strstr(cause, "[redis cache]"));
	free(cause);
	/* A user in the url needs a password to go with it. */
	t.url = "redis://backup@127.0.0.1:1/0";
	assert_int_equal(backend_redis.prepare(&ctx, m, &cause), -1);
	assert_non_null(strstr(cause, "no password_file"));
	free(cause);
	/* logical over TLS: said, before connecting. */
	t.url = "rediss://127.0.0.1:1/0";
	t.mode = "logical";
	assert_int_equal(backend_redis.prepare(&ctx, m, &cause), -1);
	assert_non_null(strstr(cause, "not supported over rediss://"));
	free(cause);
	/* A password file others may read. */
	dir = tu_mkdtemp();
	pw = tu_path(dir, "redis.pass");
	tu_write_str(pw, "secret\n", 0644);
	t.url = "redis://127.0.0.1:1/0";
	t.mode = "auto";
	t.password_file = pw;
	assert_int_equal(backend_redis.prepare(&ctx, m, &cause), -1);
	assert_non_null(strstr(cause, "password_file"));
	assert_non_null(strstr(cause, "chmod 600"));
	free(cause);
	assert_int_equal(cJSON_GetArraySize(m), 0);
	free(pw);
	tu_rmtree(dir);
	cJSON_Delete(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_url_bad),
		cmocka_unit_test(test_url_password),
		cmocka_unit_test(test_crc64),
		cmocka_unit_test(test_rdb_header),
		cmocka_unit_test(test_rdb_check),
		cmocka_unit_test(test_receive_forms),
		cmocka_unit_test(test_receive_errors),
		cmocka_unit_test(test_receive_write_fails),
		cmocka_unit_test(test_receive_idle_cancel),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_frame_encoding),
		cmocka_unit_test(test_dump_payload),
		cmocka_unit_test(test_frame_check),
		cmocka_unit_test(test_cli_argv),
		cmocka_unit_test(test_cli_rdb_length),
		cmocka_unit_test(test_check_tool),
		cmocka_unit_test(test_backend_table),
		cmocka_unit_test(test_check_reader_logical),
		cmocka_unit_test(test_check_reader_rdb),
		cmocka_unit_test(test_probe_unreachable),
		cmocka_unit_test(test_prepare_refusals),
	};

	return TU_RUN(tests);
}
