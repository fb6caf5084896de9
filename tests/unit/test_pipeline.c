/*
 * test_pipeline.c - the backup byte path: round trips through zstd and
 * secretstream at block-boundary sizes, the stored format checked with
 * libzstd and libsodium directly, hashes, damaged / truncated / wrong-key
 * files, disk full, key files, and bounded memory on a long stream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <zstd.h>

#include "pipeline.h"
#include "util.h"
#include "testutil.h"

#define MiB		(1024 * 1024)
#define SS_ABYTES	crypto_secretstream_xchacha20poly1305_ABYTES
#define SS_HEADERBYTES	crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define ENC_HEAD	(7 + SS_HEADERBYTES)

struct fx {
	char		*dir;
	unsigned char	 key[PIPE_KEYBYTES];
	unsigned char	 key2[PIPE_KEYBYTES];
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	f->dir = tu_mkdtemp();
	randombytes_buf(f->key, sizeof(f->key));
	randombytes_buf(f->key2, sizeof(f->key2));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	tu_rmtree(f->dir);
	free(f);
	return 0;
}

/*
 * Test data: 64 KiB runs that alternate between random bytes (zstd
 * cannot shrink them) and log-like text (it can), from a fixed seed.
 */
static unsigned char *
gen_data(size_t n, unsigned seed)
{
	unsigned char *d = xmalloc(n > 0 ? n : 1);
	unsigned char s[randombytes_SEEDBYTES] = { 0 };
	size_t off = 0, run;
	unsigned line = 0;

	memcpy(s, &seed, sizeof(seed));
	randombytes_buf_deterministic(d, n, s);
	for (int k = 0; off < n; k++) {
		run = n - off < 65536 ? n - off : 65536;
		if (k % 2 == 1) {
			for (size_t i = 0; i < run; ) {
				char l[80];
				int w = snprintf(l, sizeof(l),
				    "2026-01-%02u INFO request %u done\n",
				    line % 28 + 1, line);
				line++;
				for (int j = 0; j < w && i < run; j++)
					d[off + i++] = (unsigned char)l[j];
			}
		}
		off += run;
	}
	return d;
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *d;
	int fd = open(path, O_RDONLY);
	size_t off = 0;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	d = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		ssize_t k = read(fd, d + off, (size_t)st.st_size - off);

		assert_true(k > 0);
		off += (size_t)k;
	}
	close(fd);
	*len = off;
	return d;
}

static off_t
file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/*
 * Store data through the pipeline, in pieces of awkward sizes so that
 * the 64 KiB staging block is crossed in every possible way.
 */
static void
store(const char *path, enum pipe_compression comp, int threads,
    const unsigned char *key, const unsigned char *data, size_t n,
    char *hash)
{
	static const size_t pieces[] = { 1, 7, 4096, 65536, 100000, 65535 };
	struct pipe_opts o = { comp, 3, threads, key, NULL };
	struct pipe_out *p;
	uint64_t in = 0, out = 0;
	char *cause = NULL;
	size_t off = 0, k;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	p = pipe_out_new(fd, &o, &cause);
	assert_null(cause);
	assert_non_null(p);
	for (int i = 0; off < n; i++) {
		k = pieces[i % nitems(pieces)];
		if (k > n - off)
			k = n - off;
		assert_int_equal(pipe_out_write(p, data + off, k, &cause), 0);
		off += k;
	}
	assert_int_equal(pipe_out_finish(p, hash, &in, &out, &cause), 0);
	assert_null(cause);
	pipe_out_free(p);
	assert_int_equal(close(fd), 0);
	assert_int_equal(in, n);
	assert_int_equal(out, (uint64_t)file_size(path));
	assert_int_equal(strlen(hash), 2 * PIPE_HASHBYTES);
}

/* pipe_in_run on path; the output goes to out (or nowhere). */
static int
restore(const char *path, const char *out, enum pipe_compression comp,
    const unsigned char *key, const char *expect, uint64_t *bytes,
    char **cause)
{
	struct pipe_seal seal = { key, NULL };
	int in_fd, out_fd = -1, rc;

	in_fd = open(path, O_RDONLY);
	assert_true(in_fd >= 0);
	if (out != NULL) {
		out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(out_fd >= 0);
	}
	*cause = NULL;
	rc = pipe_in_run(in_fd, out_fd, comp, key != NULL ? &seal : NULL,
	    expect, bytes, cause);
	close(in_fd);
	if (out_fd != -1)
		close(out_fd);
	if (rc == 0)
		assert_null(*cause);
	else
		assert_non_null(*cause);
	return rc;
}

static void
hash_path(const char *path, char *hash, uint64_t *bytes)
{
	char *cause = NULL;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pipe_hash_fd(fd, hash, bytes, &cause), 0);
	assert_null(cause);
	close(fd);
}

/*
 * Undo the stored format with libsodium directly: magic, header, frames
 * of at most PIPE_BLOCK plaintext, the last one and only it FINAL.
 */
static unsigned char *
decrypt_by_hand(const unsigned char *file, size_t len,
    const unsigned char *key, size_t *plain_len)
{
	crypto_secretstream_xchacha20poly1305_state ss;
	unsigned char *plain = xmalloc(len + 1), tag = 0;
	unsigned long long mlen;
	size_t off = ENC_HEAD, out = 0;

	assert_true(len >= ENC_HEAD);
	assert_memory_equal(file, "BBENC1\n", 7);
	assert_int_equal(crypto_secretstream_xchacha20poly1305_init_pull(&ss,
	    file + 7, key), 0);
	while (off < len) {
		uint32_t clen;

		assert_int_equal(tag, 0);	/* nothing after FINAL */
		assert_true(off + 4 <= len);
		clen = (uint32_t)file[off] << 24 | (uint32_t)file[off + 1] << 16 |
		    (uint32_t)file[off + 2] << 8 | file[off + 3];
		off += 4;
		assert_true(clen >= SS_ABYTES);
		assert_true(clen <= PIPE_BLOCK + SS_ABYTES);
		assert_true(off + clen <= len);
		assert_int_equal(crypto_secretstream_xchacha20poly1305_pull(&ss,
		    plain + out, &mlen, &tag, file + off, clen, NULL, 0), 0);
		assert_true(tag == 0 ||
		    tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL);
		out += mlen;
		off += clen;
	}
	assert_int_equal(tag, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
	*plain_len = out;
	return plain;
}

/* One-shot libzstd: an independent reader of what the pipeline wrote. */
static void
assert_zstd_frame_of(const unsigned char *z, size_t zlen,
    const unsigned char *data, size_t n)
{
	unsigned char *d = xmalloc(n + 1);
	size_t r;

	assert_true(zlen >= 4);
	assert_int_equal(z[0], 0x28);
	assert_int_equal(z[1], 0xB5);
	assert_int_equal(z[2], 0x2F);
	assert_int_equal(z[3], 0xFD);
	r = ZSTD_decompress(d, n + 1, z, zlen);
	assert_false(ZSTD_isError(r));
	assert_int_equal(r, n);
	if (n > 0)
		assert_memory_equal(d, data, n);
	free(d);
}

static void
round_trip(struct fx *f, enum pipe_compression comp, int threads,
    const unsigned char *key, size_t n)
{
	char *path = tu_path(f->dir, "b.dump");
	char *out = tu_path(f->dir, "b.out");
	char hash[2 * PIPE_HASHBYTES + 1], hash2[2 * PIPE_HASHBYTES + 1];
	unsigned char *data = gen_data(n, (unsigned)n), *file, *got, *plain;
	uint64_t bytes = 0, hbytes = 0;
	size_t flen, glen, plen;
	char *cause = NULL;

	store(path, comp, threads, key, data, n, hash);

	/* The hash is of the bytes as stored. */
	hash_path(path, hash2, &hbytes);
	assert_string_equal(hash, hash2);
	assert_int_equal(hbytes, (uint64_t)file_size(path));

	/* The format, read without the pipeline. */
	file = slurp(path, &flen);
	if (key != NULL)
		plain = decrypt_by_hand(file, flen, key, &plen);
	else {
		plain = xmalloc(flen + 1);
		memcpy(plain, file, flen);
		plen = flen;
	}
	if (comp == PIPE_ZSTD)
		assert_zstd_frame_of(plain, plen, data, n);
	else {
		assert_int_equal(plen, n);
		if (n > 0)
			assert_memory_equal(plain, data, n);
	}

	/* And back through the pipeline, hash checked. */
	assert_int_equal(restore(path, out, comp, key, hash, &bytes, &cause),
	    0);
	assert_int_equal(bytes, n);
	got = slurp(out, &glen);
	assert_int_equal(glen, n);
	if (n > 0)
		assert_memory_equal(got, data, n);

	/* Verify only: nothing written, same answer. */
	bytes = 0;
	assert_int_equal(restore(path, NULL, comp, key, hash, &bytes, &cause),
	    0);
	assert_int_equal(bytes, n);

	free(got);
	free(plain);
	free(file);
	free(data);
	free(out);
	free(path);
}

static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 5 * MiB };

static void
test_round_trip_zstd(void **state)
{
	for (size_t i = 0; i < nitems(sizes); i++)
		round_trip(*state, PIPE_ZSTD, 0, NULL, sizes[i]);
}

static void
test_round_trip_zstd_key(void **state)
{
	struct fx *f = *state;

	for (size_t i = 0; i < nitems(sizes); i++)
		round_trip(f, PIPE_ZSTD, 0, f->key, sizes[i]);
}

static void
test_round_trip_none(void **state)
{
	for (size_t i = 0; i < nitems(sizes); i++)
		round_trip(*state, PIPE_NONE, 0, NULL, sizes[i]);
}

static void
test_round_trip_none_key(void **state)
{
	struct fx *f = *state;

	for (size_t i = 0; i < nitems(sizes); i++)
		round_trip(f, PIPE_NONE, 0, f->key, sizes[i]);
}

/* Exact multiples of the block: the last full block must be FINAL. */
static void
test_round_trip_block_multiples(void **state)
{
	struct fx *f = *state;

	round_trip(f, PIPE_NONE, 0, f->key, 2 * PIPE_BLOCK);
	round_trip(f, PIPE_NONE, 0, f->key, 3 * PIPE_BLOCK + 1);
	round_trip(f, PIPE_NONE, 0, NULL, 2 * PIPE_BLOCK);
}

/* Several zstd jobs (8 MiB each at level 3) spread over two workers. */
static void
test_round_trip_threads(void **state)
{
	struct fx *f = *state;

	round_trip(f, PIPE_ZSTD, 2, NULL, 20 * MiB + 3);
	round_trip(f, PIPE_ZSTD, 2, f->key, 5 * MiB);
	round_trip(f, PIPE_ZSTD, 2, f->key, 0);
}

/* An encrypted file of n bytes; hash in hash. */
static char *
make_file(struct fx *f, enum pipe_compression comp, const unsigned char *key,
    size_t n, char *hash)
{
	char *path = tu_path(f->dir, "x.dump");
	unsigned char *data = gen_data(n, 7);

	store(path, comp, 0, key, data, n, hash);
	free(data);
	return path;
}

static void
write_bytes(const char *path, const unsigned char *d, size_t n)
{
	tu_write(path, d, n, 0600);
}

/* Read path with a seal; 0 or -1 with *cause. */
static int
read_sealed(const char *path, const unsigned char *key, const char *bind,
    char **cause)
{
	struct pipe_seal seal = { key, bind };
	int fd = open(path, O_RDONLY), rc;

	assert_true(fd >= 0);
	*cause = NULL;
	rc = pipe_in_run(fd, -1, PIPE_ZSTD, &seal, NULL, NULL, cause);
	close(fd);
	return rc;
}

/* Format 2: the data is bound to TARGET/ID; nothing else opens it. */
static void
test_bound_stream(void **state)
{
	struct fx *f = *state;
	struct pipe_opts o = { PIPE_ZSTD, 3, 0, f->key, "etc/etc-20261207T000000Z" };
	char hash[2 * PIPE_HASHBYTES + 1], *cause = NULL;
	char *path = tu_path(f->dir, "bound"), *old;
	unsigned char data[200000], head[7];
	struct pipe_out *p;
	int fd;

	randombytes_buf(data, sizeof(data));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	p = pipe_out_new(fd, &o, &cause);
	assert_non_null(p);
	assert_int_equal(pipe_out_write(p, data, sizeof(data), &cause), 0);
	assert_int_equal(pipe_out_finish(p, hash, NULL, NULL, &cause), 0);
	pipe_out_free(p);
	close(fd);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, head, 7), 7);
	close(fd);
	assert_memory_equal(head, "BBENC2\n", 7);

	assert_int_equal(read_sealed(path, f->key, "etc/etc-20261207T000000Z",
	    &cause), 0);
	/* another id, another target: the same key does not open it */
	assert_int_equal(read_sealed(path, f->key, "etc/etc-20261207T010000Z",
	    &cause), -1);
	assert_non_null(strstr(cause, "another"));
	free(cause);
	assert_int_equal(read_sealed(path, f->key, "www/etc-20261207T000000Z",
	    &cause), -1);
	free(cause);
	/* nor as the old, unbound format */
	assert_int_equal(read_sealed(path, f->key, NULL, &cause), -1);
	free(cause);
	/* and an old file is not taken for a bound one */
	old = make_file(f, PIPE_ZSTD, f->key, 1000, hash);
	assert_int_equal(read_sealed(old, f->key, "etc/etc-20261207T000000Z",
	    &cause), -1);
	assert_non_null(strstr(cause, "not bound"));
	free(cause);
	assert_int_equal(read_sealed(old, f->key, NULL, &cause), 0);
	free(old);
	free(path);
}

static void
test_wrong_key(void **state)
{
	struct fx *f = *state;
	char hash[2 * PIPE_HASHBYTES + 1], *cause = NULL;
	char *path = make_file(f, PIPE_ZSTD, f->key, 300000, hash);
	char *out = tu_path(f->dir, "out");

	assert_int_equal(restore(path, out, PIPE_ZSTD, f->key2, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "wrong key or corrupted data"));
	free(cause);
	/* The hash proves the file intact, so it is the key. */
	assert_int_equal(restore(path, out, PIPE_ZSTD, f->key2, hash, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "wrong key"));
	assert_non_null(strstr(cause, "intact"));
	assert_null(strstr(cause, "hash mismatch"));
	free(cause);
	/* Plaintext of the wrong key never reaches the output. */
	assert_int_equal(file_size(out), 0);

	/* No key for an encrypted file; a key for a plain one. */
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, NULL, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "key is needed"));
	free(cause);
	free(path);
	path = make_file(f, PIPE_ZSTD, NULL, 1000, hash);
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "bad magic"));
	free(cause);
	free(out);
	free(path);
}

/* Flip one byte in the middle of a stored file. */
static void
flip_middle(const char *path)
{
	size_t len;
	unsigned char *d = slurp(path, &len);

	d[len / 2] ^= 0x40;
	write_bytes(path, d, len);
	free(d);
}

static void
test_flipped_byte(void **state)
{
	struct fx *f = *state;
	char hash[2 * PIPE_HASHBYTES + 1], *cause = NULL, *path;

	/* Encrypted: the hash says so first; without it, the MAC does. */
	path = make_file(f, PIPE_ZSTD, f->key, 300000, hash);
	flip_middle(path);
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, f->key, hash, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "hash mismatch"));
	free(cause);
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "wrong key or corrupted data"));
	free(cause);
	free(path);

	path = make_file(f, PIPE_NONE, f->key, 300000, hash);
	flip_middle(path);
	assert_int_equal(restore(path, NULL, PIPE_NONE, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "wrong key or corrupted data"));
	free(cause);
	free(path);

	/* zstd alone: its content checksum or block decoding catches it. */
	path = make_file(f, PIPE_ZSTD, NULL, 300000, hash);
	flip_middle(path);
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, NULL, hash, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "hash mismatch"));
	free(cause);
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, NULL, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "zstd"));
	free(cause);
	free(path);

	/* Plain bytes: only the hash can tell. */
	path = make_file(f, PIPE_NONE, NULL, 300000, hash);
	flip_middle(path);
	assert_int_equal(restore(path, NULL, PIPE_NONE, NULL, hash, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "hash mismatch"));
	free(cause);
	free(path);
}

static void
cut_to(const char *path, off_t len)
{
	assert_int_equal(truncate(path, len), 0);
}

static void
test_truncated(void **state)
{
	struct fx *f = *state;
	char hash[2 * PIPE_HASHBYTES + 1], *cause = NULL, *path;
	unsigned char *d;
	size_t len, off, last = 0;

	/* Encrypted, cut inside the last frame. */
	path = make_file(f, PIPE_ZSTD, f->key, 300000, hash);
	cut_to(path, file_size(path) - 10);
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "truncated"));
	free(cause);
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, f->key, hash, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "hash mismatch"));
	free(cause);
	free(path);

	/* Encrypted, cut exactly before the final frame: every frame left
	 * authenticates, only the missing FINAL tag tells. */
	path = make_file(f, PIPE_NONE, f->key, 5 * PIPE_BLOCK / 2, hash);
	d = slurp(path, &len);
	for (off = ENC_HEAD; off < len; ) {
		last = off;
		off += 4 + ((size_t)d[off] << 24 | (size_t)d[off + 1] << 16 |
		    (size_t)d[off + 2] << 8 | d[off + 3]);
	}
	assert_int_equal(off, len);
	assert_true(last > ENC_HEAD);
	free(d);
	cut_to(path, (off_t)last);
	assert_int_equal(restore(path, NULL, PIPE_NONE, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "truncated"));
	assert_non_null(strstr(cause, "final"));
	free(cause);
	/* Cut inside a length prefix, inside the header, to nothing. */
	cut_to(path, (off_t)last - 2);
	assert_int_equal(restore(path, NULL, PIPE_NONE, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "truncated"));
	free(cause);
	cut_to(path, ENC_HEAD + 2);
	assert_int_equal(restore(path, NULL, PIPE_NONE, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "truncated"));
	free(cause);
	cut_to(path, 20);
	assert_int_equal(restore(path, NULL, PIPE_NONE, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "truncated"));
	free(cause);
	cut_to(path, 0);
	assert_int_equal(restore(path, NULL, PIPE_NONE, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "truncated"));
	free(cause);
	free(path);

	/* zstd without a key: an incomplete frame. */
	path = make_file(f, PIPE_ZSTD, NULL, 300000, hash);
	cut_to(path, file_size(path) - 10);
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, NULL, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "truncated"));
	free(cause);
	cut_to(path, 0);
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, NULL, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "truncated"));
	free(cause);
	free(path);
}

/* Frame lengths the writer never produces, and bytes after FINAL. */
static void
test_bad_frames(void **state)
{
	struct fx *f = *state;
	char hash[2 * PIPE_HASHBYTES + 1], *cause = NULL, *path;
	unsigned char *d;
	uint32_t bad[] = { PIPE_BLOCK + SS_ABYTES + 1, 0xffffffffu, 3 };
	size_t len;

	path = make_file(f, PIPE_NONE, f->key, 100000, hash);
	d = slurp(path, &len);
	for (size_t i = 0; i < nitems(bad); i++) {
		unsigned char *c = xmalloc(len);

		memcpy(c, d, len);
		c[ENC_HEAD] = (unsigned char)(bad[i] >> 24);
		c[ENC_HEAD + 1] = (unsigned char)(bad[i] >> 16);
		c[ENC_HEAD + 2] = (unsigned char)(bad[i] >> 8);
		c[ENC_HEAD + 3] = (unsigned char)bad[i];
		write_bytes(path, c, len);
		assert_int_equal(restore(path, NULL, PIPE_NONE, f->key, NULL,
		    NULL, &cause), -1);
		assert_non_null(strstr(cause, "frame length"));
		free(cause);
		free(c);
	}

	/* A copy with one more byte at the end. */
	d = xrealloc(d, len + 1);
	d[len] = 'x';
	write_bytes(path, d, len + 1);
	assert_int_equal(restore(path, NULL, PIPE_NONE, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "after the final block"));
	free(cause);

	/* Not our file at all. */
	memcpy(d, "PK\003\004 zip file", 14);
	write_bytes(path, d, len);
	assert_int_equal(restore(path, NULL, PIPE_NONE, f->key, NULL, NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "bad magic"));
	free(cause);
	assert_int_equal(restore(path, NULL, PIPE_ZSTD, NULL, NULL, NULL,
	    &cause), -1);
	free(cause);

	/* A malformed expected hash is refused before anything is read. */
	assert_int_equal(restore(path, NULL, PIPE_NONE, f->key, "abc", NULL,
	    &cause), -1);
	assert_non_null(strstr(cause, "hex"));
	free(cause);
	free(d);
	free(path);
}

static void
test_hash_fd(void **state)
{
	struct fx *f = *state;
	char *path = tu_path(f->dir, "h"), hash[2 * PIPE_HASHBYTES + 1];
	uint64_t n = 1;
	int fd;

	/* BLAKE2b-256 of the empty string (RFC 7693 parameters). */
	tu_write(path, "", 0, 0600);
	hash_path(path, hash, &n);
	assert_int_equal(n, 0);
	assert_string_equal(hash, "0e5751c026e543b2e8ab2eb06099daa1"
	    "d1e5df47778f7787faab45cdf12fe3a8");

	/* The whole file, whatever the offset. */
	tu_write_str(path, "abc", 0600);
	fd = open(path, O_RDONLY);
	assert_int_equal(lseek(fd, 2, SEEK_SET), 2);
	{
		char *cause = NULL, h2[2 * PIPE_HASHBYTES + 1];

		assert_int_equal(pipe_hash_fd(fd, h2, &n, &cause), 0);
		assert_int_equal(n, 3);
		assert_string_equal(h2, "bddd813c634239723171ef3fee98579b"
		    "94964e3bb1cb3e427262c8c068d52319");
	}
	close(fd);
	free(path);
}

static void
test_disk_full(void **state)
{
	struct fx *f = *state;
	struct pipe_opts o = { PIPE_ZSTD, 3, 0, NULL, NULL };
	struct pipe_out *p;
	unsigned char *data = gen_data(MiB, 1);
	char hash[2 * PIPE_HASHBYTES + 1], *cause = NULL, *path;
	int fd, rc = 0;

	fd = open("/dev/full", O_WRONLY);
	if (fd == -1) {
		free(data);
		skip();
	}

	/* Big enough to overflow the staging block during the writes. */
	p = pipe_out_new(fd, &o, &cause);
	assert_non_null(p);
	for (size_t off = 0; off < MiB && rc == 0; off += 65536)
		rc = pipe_out_write(p, data + off, 65536, &cause);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(cause, "disk full"));
	free(cause);
	/* Once broken, always broken. */
	assert_int_equal(pipe_out_write(p, data, 10, &cause), -1);
	free(cause);
	assert_int_equal(pipe_out_finish(p, hash, NULL, NULL, &cause), -1);
	free(cause);
	pipe_out_free(p);

	/* Small: the failure comes at finish. */
	p = pipe_out_new(fd, &o, &cause);
	assert_non_null(p);
	assert_int_equal(pipe_out_write(p, "hello", 5, &cause), 0);
	assert_int_equal(pipe_out_finish(p, hash, NULL, NULL, &cause), -1);
	assert_non_null(strstr(cause, "disk full"));
	free(cause);
	pipe_out_free(p);

	/* With a key the header is written at once. */
	o.key = f->key;
	assert_null(pipe_out_new(fd, &o, &cause));
	assert_non_null(strstr(cause, "disk full"));
	free(cause);

	/* Restoring onto a full disk. */
	path = make_file(f, PIPE_ZSTD, NULL, 100000, hash);
	{
		int in_fd = open(path, O_RDONLY);

		assert_int_equal(pipe_in_run(in_fd, fd, PIPE_ZSTD, NULL, hash,
		    NULL, &cause), -1);
		assert_non_null(strstr(cause, "disk full"));
		free(cause);
		close(in_fd);
	}
	close(fd);
	free(path);
	free(data);
}

static void
test_bad_opts(void **state)
{
	struct pipe_opts o = { PIPE_ZSTD, 0, 0, NULL, NULL };
	char *cause = NULL;

	(void)state;
	assert_null(pipe_out_new(1, &o, &cause));
	assert_non_null(strstr(cause, "level"));
	free(cause);
	o.level = 22;
	assert_null(pipe_out_new(1, &o, &cause));
	free(cause);
	o.level = 3;
	o.threads = -1;
	assert_null(pipe_out_new(1, &o, &cause));
	free(cause);
}

static void
test_keygen(void **state)
{
	struct fx *f = *state;
	char *path = tu_path(f->dir, "backup.key"), *text, *cause = NULL;
	char hex[2 * PIPE_KEYBYTES + 1];
	unsigned char key[PIPE_KEYBYTES], zero[PIPE_KEYBYTES] = { 0 };

	assert_int_equal(pipe_keygen(path, &cause), 0);
	assert_null(cause);
	assert_int_equal(tu_mode(path), 0600);
	text = tu_read(path);
	assert_int_equal(strlen(text), 65);
	assert_int_equal(text[64], '\n');

	/* Never overwrites: the old key may be all that opens old backups. */
	assert_int_equal(pipe_keygen(path, &cause), -1);
	assert_non_null(strstr(cause, "exists"));
	free(cause);
	{
		char *again = tu_read(path);

		assert_string_equal(again, text);
		free(again);
	}

	assert_int_equal(pipe_key_load(path, key, &cause), 0);
	assert_null(cause);
	assert_memory_not_equal(key, zero, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	assert_memory_equal(hex, text, 64);

	/* Two keys are different. */
	{
		char *p2 = tu_path(f->dir, "other.key"), *t2;

		assert_int_equal(pipe_keygen(p2, &cause), 0);
		t2 = tu_read(p2);
		assert_string_not_equal(t2, text);
		free(t2);
		free(p2);
	}
	free(text);
	free(path);
}

static void
test_key_load_refuses(void **state)
{
	struct fx *f = *state;
	char *path = tu_path(f->dir, "k"), *cause = NULL;
	unsigned char key[PIPE_KEYBYTES];
	const char *good = "00112233445566778899aabbccddeeff"
	    "00112233445566778899AABBCCDDEEFF\n";
	const char *bad[] = {
		"00112233445566778899aabbccddeeff"
		    "00112233445566778899aabbccddeef\n",	/* 63 */
		"00112233445566778899aabbccddeeff"
		    "00112233445566778899aabbccddeeff0\n",	/* 65 */
		"00112233445566778899aabbccddeeff"
		    "00112233445566778899aabbccddeegg\n",	/* not hex */
		" 0112233445566778899aabbccddeeff"
		    "00112233445566778899aabbccddeeff\n",
		"\n",
	};

	tu_write_str(path, good, 0644);
	assert_int_equal(pipe_key_load(path, key, &cause), -1);
	assert_non_null(strstr(cause, "permissions"));
	free(cause);

	tu_write_str(path, good, 0600);
	assert_int_equal(pipe_key_load(path, key, &cause), 0);
	assert_int_equal(key[0], 0x00);
	assert_int_equal(key[5], 0x55);
	assert_int_equal(key[31], 0xff);

	for (size_t i = 0; i < nitems(bad); i++) {
		tu_write_str(path, bad[i], 0600);
		assert_int_equal(pipe_key_load(path, key, &cause), -1);
		/* The file's content never appears in a message. */
		assert_null(strstr(cause, "00112233"));
		free(cause);
	}

	free(path);
	path = tu_path(f->dir, "missing");
	assert_int_equal(pipe_key_load(path, key, &cause), -1);
	free(cause);
	free(path);
}

static long
maxrss_kib(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss;
}

/*
 * 200 MiB through zstd level 3 and encryption, in 64 KiB writes: the
 * peak RSS may grow by zstd's window and buffers, not by the stream.
 * The data is 4 bits of entropy a byte, so even the compressed stream
 * (about 100 MiB) would blow the bound if it were buffered.  Runs first,
 * before other tests raise the high-water mark.
 */
static void
test_memory_bound(void **state)
{
	struct fx *f = *state;
	struct pipe_opts o = { PIPE_ZSTD, 3, 0, f->key, NULL };
	char *path = tu_path(f->dir, "big.dump"), *cause = NULL;
	char hash[2 * PIPE_HASHBYTES + 1];
	uint64_t *block = xmalloc(65536), x = 0x9e3779b97f4a7c15ull;
	uint64_t in = 0, out = 0;
	struct pipe_out *p;
	long before, after;
	struct timespec t0, t1;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	before = maxrss_kib();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	p = pipe_out_new(fd, &o, &cause);
	assert_non_null(p);
	for (size_t i = 0; i < 200 * 16; i++) {
		for (size_t j = 0; j < 65536 / 8; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			block[j] = x & 0x0f0f0f0f0f0f0f0full;
		}
		assert_int_equal(pipe_out_write(p, block, 65536, &cause), 0);
	}
	assert_int_equal(pipe_out_finish(p, hash, &in, &out, &cause), 0);
	pipe_out_free(p);
	close(fd);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	after = maxrss_kib();
	print_message("    200 MiB -> %llu MiB in %.2f s, max RSS +%ld KiB\n",
	    (unsigned long long)(out / MiB), (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, after - before);
	assert_int_equal(in, 200ull * MiB);
	assert_true(out > 64ull * MiB);		/* the test means something */
	assert_true(after - before < 64 * 1024);

	/* Reading it back is bounded too. */
	before = after;
	{
		uint64_t bytes = 0;

		assert_int_equal(restore(path, NULL, PIPE_ZSTD, f->key, hash,
		    &bytes, &cause), 0);
		assert_int_equal(bytes, 200ull * MiB);
	}
	after = maxrss_kib();
	assert_true(after - before < 64 * 1024);
	free(block);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bound_stream, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_memory_bound, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_zstd, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_zstd_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_none, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_none_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_block_multiples,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_threads, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_frames, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hash_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup,
		    teardown),
		cmocka_unit_test(test_bad_opts),
		cmocka_unit_test_setup_teardown(test_keygen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_load_refuses, setup,
		    teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return TU_RUN(tests);
}
