/*
 * test_redis_restore.c - the pure parts of a Redis restore: reading a
 * BBREDIS1 file record by record (and refusing every kind of damage
 * before a key is sent anywhere), the TTL a key is restored with, what
 * a temporary redis-server's log says when it cannot load an RDB, and
 * what an RDB drill counts as a difference.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"
#include "util.h"
#include "testutil.h"

/* A DUMP payload of a string: type 0, length, bytes, RDB 10, CRC64. */
static size_t
payload(unsigned char *out, const char *value)
{
	size_t n = strlen(value), k = 0;
	uint64_t crc;

	out[k++] = 0;
	out[k++] = (unsigned char)n;
	memcpy(out + k, value, n);
	k += n;
	out[k++] = 10;
	out[k++] = 0;
	crc = redis_crc64(0, out, k);
	for (int i = 0; i < 8; i++)
		out[k++] = (unsigned char)(crc >> (8 * i));
	return k;
}

struct stream {
	unsigned char	data[4096];
	size_t		len;
};

static void
put(struct stream *s, const void *p, size_t n)
{
	assert_true(s->len + n <= sizeof(s->data));
	memcpy(s->data + s->len, p, n);
	s->len += n;
}

static void
record(struct stream *s, uint32_t db, const char *key, int64_t ttl,
    const char *value)
{
	unsigned char head[8], mid[12], p[300];
	size_t n = payload(p, value);

	redis_frame_head(head, db, (uint32_t)strlen(key));
	redis_frame_mid(mid, ttl, (uint32_t)n);
	put(s, head, sizeof(head));
	put(s, key, strlen(key));
	put(s, mid, sizeof(mid));
	put(s, p, n);
}

static void
end(struct stream *s, uint64_t records)
{
	unsigned char e[REDIS_FRAME_END_LEN];

	redis_frame_end(e, records);
	put(s, e, sizeof(e));
}

/* Three records in db 0 and db 3, one with a TTL, one with an empty key. */
static void
good(struct stream *s)
{
	memset(s, 0, sizeof(*s));
	put(s, REDIS_FRAME_MAGIC, REDIS_FRAME_MAGIC_LEN);
	record(s, 0, "greeting", -1, "hello");
	record(s, 0, "", 5000, "the empty key");
	record(s, 3, "counter", -1, "42");
	end(s, 3);
}

/* Read a whole stream: records read, or -1 with the cause in *cause. */
static int
read_all(const struct stream *s, char **cause)
{
	struct redis_frame_reader rd;
	struct redis_record rec;
	FILE *f = tmpfile();
	int n = 0, rv;

	assert_non_null(f);
	assert_int_equal(fwrite(s->data, 1, s->len, f), s->len);
	rewind(f);
	redis_frame_reader_init(&rd, f);
	*cause = NULL;
	while ((rv = redis_frame_read(&rd, &rec, cause)) == 1)
		n++;
	redis_frame_reader_release(&rd);
	fclose(f);
	return rv == 0 ? n : -1;
}

static void
expect_error(const struct stream *s, const char *words)
{
	char *cause = NULL;

	assert_int_equal(read_all(s, &cause), -1);
	assert_non_null(cause);
	if (strstr(cause, words) == NULL)
		fail_msg("'%s' not in '%s'", words, cause);
	free(cause);
}

static void
test_frame_read_good(void **state)
{
	struct redis_frame_reader rd;
	struct redis_record rec;
	struct stream s;
	char *cause = NULL;
	FILE *f = tmpfile();

	(void)state;
	good(&s);
	fwrite(s.data, 1, s.len, f);
	rewind(f);
	redis_frame_reader_init(&rd, f);
	assert_int_equal(redis_frame_read(&rd, &rec, &cause), 1);
	assert_int_equal(rec.db, 0);
	assert_int_equal(rec.key_len, 8);
	assert_memory_equal(rec.key, "greeting", 8);
	assert_int_equal(rec.ttl_ms, -1);
	assert_int_equal(rec.payload_len, 2 + 5 + 10);
	assert_int_equal(redis_frame_read(&rd, &rec, &cause), 1);
	assert_int_equal(rec.key_len, 0);
	assert_int_equal(rec.ttl_ms, 5000);
	assert_int_equal(redis_frame_read(&rd, &rec, &cause), 1);
	assert_int_equal(rec.db, 3);
	assert_memory_equal(rec.key, "counter", 7);
	assert_int_equal(redis_frame_read(&rd, &rec, &cause), 0);
	assert_null(cause);
	assert_int_equal(rd.records, 3);
	/* and it stays at the end */
	assert_int_equal(redis_frame_read(&rd, &rec, &cause), 0);
	redis_frame_reader_release(&rd);
	fclose(f);
}

static void
test_frame_read_damage(void **state)
{
	struct stream s, e;
	unsigned char junk = 'x';

	(void)state;
	good(&s);
	/* not BBREDIS1 */
	e = s;
	e.data[0] = 'X';
	expect_error(&e, "no BBREDIS1 header");
	/* cut anywhere: in a key, a payload, the end record */
	for (size_t cut = 10; cut < s.len; cut += 7) {
		e = s;
		e.len = cut;
		expect_error(&e, "truncated");
	}
	/* a byte of a payload flipped: its CRC */
	e = s;
	e.data[REDIS_FRAME_MAGIC_LEN + 8 + 8 + 12 + 3] ^= 0x20;
	expect_error(&e, "record 1 (key 'greeting' in db0)");
	/* the end record's count */
	e = s;
	e.len -= REDIS_FRAME_END_LEN;
	end(&e, 4);
	expect_error(&e, "counts 4 records, the stream holds 3");
	/* something after the end */
	e = s;
	put(&e, &junk, 1);
	expect_error(&e, "data after the end record");
	/* a key length past the end of the file: no allocation of it */
	e = s;
	e.data[REDIS_FRAME_MAGIC_LEN + 5] = 0x7f;
	expect_error(&e, "truncated: record 1 has a key of 8323080 bytes, "
	    "past the end");
	e.data[REDIS_FRAME_MAGIC_LEN + 4] = 0x7f;
	expect_error(&e, "longer than Redis allows");
	/* a ttl below -1 */
	e = s;
	memset(e.data + REDIS_FRAME_MAGIC_LEN + 8 + 8, 0xff, 7);
	e.data[REDIS_FRAME_MAGIC_LEN + 8 + 8 + 7] = 0xfe;
	expect_error(&e, "bad ttl -2");
	/* the empty stream */
	e.len = 0;
	expect_error(&e, "truncated");
}

static void
test_restore_ttl(void **state)
{
	int64_t ms;

	(void)state;
	/* no expiry */
	assert_int_equal(redis_restore_ttl(-1, 1000, 999999, &ms), 0);
	assert_int_equal(ms, 0);
	/* 5 s left at 1000, one second later: 4 s */
	assert_int_equal(redis_restore_ttl(5000, 1000, 2000, &ms), 0);
	assert_int_equal(ms, 4000);
	/* run out since */
	assert_int_equal(redis_restore_ttl(5000, 1000, 6000, &ms), 1);
	assert_int_equal(redis_restore_ttl(5000, 1000, 600000, &ms), 1);
	/* PTTL 0: expiring as it was read, never "no expiry" */
	assert_int_equal(redis_restore_ttl(0, 1000, 1000, &ms), 1);
	/* a clock behind the backup's: no more than it had */
	assert_int_equal(redis_restore_ttl(5000, 9000, 1000, &ms), 0);
	assert_int_equal(ms, 5000);
	/* a key read now (from a temporary server) */
	assert_int_equal(redis_restore_ttl(1, 7, 7, &ms), 0);
	assert_int_equal(ms, 1);
}

/* What redis-server 7.0.15 logged, given RDBs it could not load. */
static const char log_v11[] =
    "9896:C 26 Nov 2026 14:25:47.897 # oO0OoO0OoO0Oo Redis is starting "
    "oO0OoO0OoO0Oo\n"
    "9896:C 26 Nov 2026 14:25:47.897 # Configuration loaded\n"
    "9896:M 26 Nov 2026 14:25:47.898 * monotonic clock: POSIX clock_gettime\n"
    "9896:M 26 Nov 2026 14:25:47.898 # Server initialized\n"
    "9896:M 26 Nov 2026 14:25:47.898 # WARNING Memory overcommit must be "
    "enabled!\n"
    "9896:M 26 Nov 2026 14:25:47.899 # Can't handle RDB format version 11\n"
    "9896:M 26 Nov 2026 14:25:47.899 # Fatal error loading the DB: Invalid "
    "argument. Exiting.\n";
static const char log_crc[] =
    "9905:M 26 Nov 2026 14:25:47.911 * Loading RDB produced by version "
    "7.0.15\n"
    "9905:M 26 Nov 2026 14:25:47.911 # Wrong RDB checksum expected: "
    "(b474e2dbca430f2c) but got (b846c0ea4a6d41ae). Aborting now.\n"
    "9905:M 26 Nov 2026 14:25:47.911 # Internal error in RDB reading offset "
    "0, function at rdb.c:3225 -> RDB CRC error\n";
static const char log_ok[] =
    "9828:M 26 Nov 2026 14:25:44.295 * Loading RDB produced by version "
    "7.0.15\n"
    "9828:M 26 Nov 2026 14:25:44.296 * Done loading RDB, keys loaded: 2, "
    "keys expired: 1.\n"
    "9828:M 26 Nov 2026 14:25:44.296 * DB loaded from disk: 0.000 seconds\n"
    "9828:M 26 Nov 2026 14:25:44.296 * Ready to accept connections\n";

static void
test_log(void **state)
{
	long long loaded = -1, expired = -1;
	char *why;

	(void)state;
	why = redis_log_error(log_v11);
	assert_string_equal(why, "Can't handle RDB format version 11 | Fatal "
	    "error loading the DB: Invalid argument. Exiting.");
	free(why);
	why = redis_log_error(log_crc);
	assert_non_null(strstr(why, "Wrong RDB checksum"));
	assert_non_null(strstr(why, "| Internal error"));
	free(why);
	assert_null(redis_log_error(log_ok));
	assert_null(redis_log_error(""));

	assert_int_equal(redis_log_loaded(log_ok, &loaded, &expired), 0);
	assert_int_equal(loaded, 2);
	assert_int_equal(expired, 1);
	assert_int_equal(redis_log_loaded(log_v11, &loaded, &expired), -1);

	assert_string_equal(redis_rdb_writer(10), "Redis 7.0");
	assert_non_null(strstr(redis_rdb_writer(11), "Redis 7.2"));
	assert_null(redis_rdb_writer(99));

	why = redis_server_version("Redis server v=7.0.15 sha=00000000:0 "
	    "malloc=jemalloc-5.3.0 bits=64 build=ae4d7c971a948f0\n");
	assert_string_equal(why, "7.0.15");
	free(why);
	why = redis_server_version("Valkey server v=8.1.1 sha=0\n");
	assert_string_equal(why, "8.1.1");
	free(why);
	assert_null(redis_server_version("redis-server: not found"));
}

static void
test_rdb_count_differs(void **state)
{
	(void)state;
	/* the same, or a little off: a snapshot moments after INFO */
	assert_false(redis_rdb_count_differs(100, 100, 0));
	assert_false(redis_rdb_count_differs(100, 85, 0));
	assert_false(redis_rdb_count_differs(100, 115, 0));
	assert_false(redis_rdb_count_differs(0, 0, 0));
	assert_false(redis_rdb_count_differs(3, 0, 0));
	/* half gone */
	assert_true(redis_rdb_count_differs(100, 50, 0));
	/* ... unless they expired since and were dropped while loading */
	assert_false(redis_rdb_count_differs(100, 50, 40));
	/* far more than the manifest counted */
	assert_true(redis_rdb_count_differs(100, 200, 0));
	assert_true(redis_rdb_count_differs(0, 11, 0));
	/* a lost database */
	assert_true(redis_rdb_count_differs(10000, 0, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_read_good),
		cmocka_unit_test(test_frame_read_damage),
		cmocka_unit_test(test_restore_ttl),
		cmocka_unit_test(test_log),
		cmocka_unit_test(test_rdb_count_differs),
	};

	return TU_RUN(tests);
}
