/*
 * fuzz_redis_logical.c - libFuzzer target for the two readers of
 * backupbot's logical Redis backups (BBREDIS1, see redis.h): the file
 * reader that restores and drills use (redis_frame_read, on a memfd so
 * that it knows the file's size as it does on disk), and the streaming
 * check that verify uses (redis_frame_check_feed, fed in pieces).
 *
 * The first byte of an input is not part of the file: bit 0 set means
 * "fix every DUMP payload's CRC64 before reading", so that the fuzzer
 * gets past the checksums and into the records after them (inputs with
 * it clear reach the checksum errors); the other bits choose the size
 * of the pieces the check is fed.
 *
 * Checks: every record the reader returns has a ttl of -1 or more and an
 * intact DUMP payload; after the end record it keeps returning 0; a -1
 * comes with a cause.  The two readers agree: both accept a file or both
 * refuse it, after the same number of good records.
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int	memfd = -1;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if ((memfd = memfd_create("bbredis", MFD_CLOEXEC)) == -1)
		abort();
	return 0;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Write the right CRC64 into the footer of every whole payload. */
static void
fix_crcs(unsigned char *p, size_t n)
{
	size_t off = REDIS_FRAME_MAGIC_LEN;

	while (n >= off && n - off >= 8) {
		uint32_t klen = be32(p + off + 4), plen;
		uint64_t crc;

		off += 8;
		if (klen == REDIS_FRAME_END || klen > n - off)
			return;
		off += klen;
		if (n - off < 12)
			return;
		plen = be32(p + off + 8);
		off += 12;
		if (plen < 11 || plen > n - off)
			return;
		crc = redis_crc64(0, p + off, plen - 8);
		for (int i = 0; i < 8; i++)
			p[off + plen - 8 + i] = (unsigned char)(crc >> (8 * i));
		off += plen;
	}
}

/* The file reader: 0 if it accepted the file; *records read. */
static int
read_file(const unsigned char *p, size_t n, uint64_t *records)
{
	struct redis_frame_reader rd;
	struct redis_record rec;
	char *cause = (char *)"unset", *why;
	int64_t ms;
	FILE *f;
	int rv, fd;

	if (ftruncate(memfd, 0) == -1 || (n > 0 && pwrite(memfd, p, n, 0) !=
	    (ssize_t)n) || lseek(memfd, 0, SEEK_SET) != 0 ||
	    (fd = dup(memfd)) == -1 || (f = fdopen(fd, "rb")) == NULL)
		abort();
	redis_frame_reader_init(&rd, f);
	if (rd.size != n)
		abort();
	while ((rv = redis_frame_read(&rd, &rec, &cause)) == 1) {
		if (cause != NULL || rec.key == NULL || rec.payload == NULL ||
		    rec.ttl_ms < -1 || rec.key_len > n || rec.payload_len > n)
			abort();
		if (redis_dump_payload_check(rec.payload, rec.payload_len,
		    &why) != 0)
			abort();
		/* read at 1795706121 s, restored 5 s later */
		switch (redis_restore_ttl(rec.ttl_ms, 1795706121000LL,
		    1795706126000LL, &ms)) {
		case 0:
			if (ms < 0 || (rec.ttl_ms == -1 ? ms != 0 :
			    ms > rec.ttl_ms || ms == 0))
				abort();
			break;
		case 1:
			if (rec.ttl_ms < 0 || rec.ttl_ms > 5000)
				abort();
			break;
		default:
			abort();
		}
	}
	if (rv == 0) {
		if (cause != NULL || redis_frame_read(&rd, &rec, &cause) != 0)
			abort();
	} else {
		if (rv != -1 || cause == NULL)
			abort();
		free(cause);
	}
	*records = rd.records;
	redis_frame_reader_release(&rd);
	fclose(f);
	return rv == 0 ? 0 : -1;
}

/* The streaming check, fed pieces of step bytes (0: all at once). */
static int
check_stream(const unsigned char *p, size_t n, size_t step,
    uint64_t *records)
{
	struct redis_frame_check fc;
	char *cause = (char *)"unset";
	size_t off = 0, k;
	int rv = 0;

	redis_frame_check_init(&fc);
	while (off < n) {
		k = step == 0 || n - off < step ? n - off : step;
		if (redis_frame_check_feed(&fc, p + off, k, &cause) == -1) {
			if (cause == NULL)
				abort();
			free(cause);
			rv = -1;
			break;
		}
		if (cause != NULL)
			abort();
		off += k;
	}
	if (redis_frame_check_finish(&fc, &cause) == -1) {
		if (cause == NULL)
			abort();
		free(cause);
		rv = -1;
	} else if (rv == -1 || cause != NULL)
		abort();	/* finish forgot an error */
	*records = fc.records;
	redis_frame_check_release(&fc);
	return rv;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t steps[] = { 0, 1, 3, 7, 8, 9, 20, 64 };
	uint64_t r_read, r_check;
	unsigned char *p;
	int a_read, a_check;
	size_t n;

	if (size == 0)
		return 0;
	n = size - 1;
	p = xmalloc(n > 0 ? n : 1);
	memcpy(p, data + 1, n);
	if (data[0] & 1)
		fix_crcs(p, n);
	a_read = read_file(p, n, &r_read);
	a_check = check_stream(p, n, steps[(data[0] >> 1) % 8], &r_check);
	if (a_read != a_check || r_read != r_check)
		abort();
	free(p);
	return 0;
}
