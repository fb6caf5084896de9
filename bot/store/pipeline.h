/*
 * pipeline.h - the streaming path of a backup: bytes in 64 KiB blocks,
 * through zstd compression and, with a key, libsodium secretstream
 * encryption, hashed with BLAKE2b (of the bytes as stored), into a file.
 * And the way back: check the hash, decrypt, decompress.
 *
 * Memory is bounded whatever the size: a few blocks plus zstd's window.
 *
 * Stored format with encryption (the file is named *.enc):
 *   "BBENC2\n" (7 bytes) | secretstream header (24 bytes) |
 *   repeated: 4-byte big-endian ciphertext length | ciphertext
 * Each ciphertext carries up to PIPE_BLOCK bytes of plaintext; the last
 * one is tagged FINAL, so a truncated file is detected.  Every frame is
 * pushed with the additional data "TARGET/ID" (the bind string, not
 * stored): the same bytes under another id or target fail to decrypt.
 * The stream key is a subkey (seal.h), never the key file's key itself.
 *
 * Format 1 ("BBENC1\n", before manifests were authenticated) is the same
 * without additional data, under the key file's key; it is still read,
 * as unauthenticated (seal.h decides when).  The compressed stream is a
 * standard zstd frame with a content checksum (`zstd -d` reads and
 * checks an unencrypted one).
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
	const char		*bind;		/* "TARGET/ID": format 2;
						   NULL: format 1 */
};

/* How to open a stored file: no key is plain; a bind asks for format 2. */
struct pipe_seal {
	const unsigned char	*key;		/* PIPE_KEYBYTES or NULL */
	const char		*bind;		/* as in pipe_opts */
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
 * expect_hex (if not NULL), decrypt (seal with a key needed iff
 * encrypted; seal->bind must be the one it was written with) and
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
    const struct pipe_seal *seal, const char *expect_hex, uint64_t *bytes_out,
    char **cause);

/* BLAKE2b of a whole file (from offset 0 if fd is seekable), hex.
 * 0 or -1 with *cause. */
int pipe_hash_fd(int fd, char *hash_hex, uint64_t *bytes, char **cause);

/*
 * Keys: a key file holds the key as 64 hex characters and a newline,
 * mode 0600, owned by the bot's user or root (pipe_key_load refuses any
 * other).  keygen refuses to overwrite an existing file.
 */
int pipe_keygen(const char *path, char **cause);
int pipe_key_load(const char *path, unsigned char key[PIPE_KEYBYTES],
    char **cause);

#endif
