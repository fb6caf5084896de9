/*
 * pipeline.h - the streaming path of a backup: bytes in 64 KiB blocks,
 * through zstd compression and, with a key, libsodium secretstream
 * encryption, hashed with BLAKE2b (of the bytes as stored), into a file.
 * And the way back: check the hash, decrypt, decompress.
 *
 * Memory is bounded whatever the size: a few blocks plus zstd's window.
 *
 * Stored format with encryption (the file is named *.enc):
 *   "BBENC1\n" (7 bytes) | secretstream header (24 bytes) |
 *   repeated: 4-byte big-endian ciphertext length | ciphertext
 * Each ciphertext carries up to PIPE_BLOCK bytes of plaintext; the last
 * one is tagged FINAL, so a truncated file is detected.  The compressed
 * stream is a standard zstd frame with a content checksum (`zstd -d`
 * reads and checks an unencrypted one).
 */
#ifndef BB_PIPELINE_H
#define BB_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define PIPE_BLOCK	(64 * 1024)
#define PIPE_KEYBYTES	crypto_secretstream_xchacha20poly1305_KEYBYTES
#define PIPE_HASHBYTES	32

enum pipe_compression { PIPE_ZSTD, PIPE_NONE };

struct pipe_opts {
	enum pipe_compression	 compression;
	int			 level;		/* zstd level, 1..19 */
	int			 threads;	/* zstd workers, 0 = none */
	const unsigned char	*key;		/* PIPE_KEYBYTES or NULL */
};

struct pipe_out;

/*
 * Open a writer to fd (a file opened by the caller, who also closes it).
 * With a key the header is written at once, so a full disk can already
 * fail here.  Returns NULL with *cause on failure.  After any failure the
 * writer refuses further calls; pipe_out_free it in every case.
 */
struct pipe_out *pipe_out_new(int fd, const struct pipe_opts *o, char **cause);
/* Feed n bytes of input.  0, or -1 with *cause (e.g. ENOSPC). */
int pipe_out_write(struct pipe_out *p, const void *data, size_t n,
    char **cause);
/*
 * Flush everything, write the final block, fsync fd.  Fills the BLAKE2b
 * hash (hex, 2*PIPE_HASHBYTES+1) and byte counts.  0 or -1 with *cause.
 */
int pipe_out_finish(struct pipe_out *p, char *hash_hex, uint64_t *bytes_in,
    uint64_t *bytes_out, char **cause);
void pipe_out_free(struct pipe_out *p);

/*
 * Read a stored file back: verify the BLAKE2b hash of its bytes against
 * expect_hex (if not NULL), decrypt (key needed iff encrypted) and
 * decompress, writing the original bytes to out_fd (-1: discard, just
 * verify).  Detects truncation, tampering and a wrong key.  0, or -1 with
 * *cause.
 *
 * One pass: the hash is only known at the end, so bytes already written
 * to out_fd when -1 comes back are not to be trusted.  With PIPE_NONE and
 * no key the bytes pass through unchanged and only the hash can tell
 * damage.  bytes_out (may be NULL) counts the bytes written to out_fd.
 */
int pipe_in_run(int in_fd, int out_fd, enum pipe_compression compression,
    const unsigned char *key, const char *expect_hex, uint64_t *bytes_out,
    char **cause);

/* BLAKE2b of a whole file (from offset 0 if fd is seekable), hex.
 * 0 or -1 with *cause. */
int pipe_hash_fd(int fd, char *hash_hex, uint64_t *bytes, char **cause);

/*
 * Keys: a key file holds the key as 64 hex characters and a newline,
 * mode 0600.  keygen refuses to overwrite an existing file.
 */
int pipe_keygen(const char *path, char **cause);
int pipe_key_load(const char *path, unsigned char key[PIPE_KEYBYTES],
    char **cause);

#endif
