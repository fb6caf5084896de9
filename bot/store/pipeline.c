/*
 * pipeline.c - the streaming path of a backup (see pipeline.h for the
 * contract and the stored format).
 *
 * Writing: input -> zstd (or nothing) -> a staging block of PIPE_BLOCK
 * bytes -> either written as is, or sealed as one secretstream frame.
 * Every byte that reaches the file also goes through BLAKE2b.  A full
 * block is only sealed once more data arrives, so the last frame can be
 * tagged FINAL without writing an empty trailer.
 *
 * Reading is the same in reverse, in one pass: the hash is computed
 * while frames are decrypted and decompressed, and compared at the end.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>
#include <zstd.h>

#include "pipeline.h"
#include "util.h"

#define MAGIC		"BBENC1\n"	/* format 1: not bound */
#define MAGIC2		"BBENC2\n"	/* format 2: bound to TARGET/ID */
#define MAGICLEN	7
#define SS_HEADERBYTES	crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SS_ABYTES	crypto_secretstream_xchacha20poly1305_ABYTES
#define TAG_MESSAGE	crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_FINAL	crypto_secretstream_xchacha20poly1305_TAG_FINAL
#define FRAME_MAX	(PIPE_BLOCK + SS_ABYTES)
#define HEXLEN		(2 * PIPE_HASHBYTES)

struct pipe_out {
	int			 fd;
	enum pipe_compression	 compression;
	ZSTD_CCtx		*zc;
	int			 encrypt;
	crypto_secretstream_xchacha20poly1305_state ss;
	char			*bind;		/* additional data, or NULL */
	crypto_generichash_state hash;
	unsigned char		*stage;		/* PIPE_BLOCK bytes */
	size_t			 staged;
	unsigned char		*frame;		/* length + ciphertext */
	uint64_t		 bytes_in;
	uint64_t		 bytes_out;
	int			 broken;	/* a step failed: no more */
	int			 finished;
};

struct pipe_in {
	int			 fd;
	int			 out_fd;
	crypto_generichash_state hash;
	ZSTD_DCtx		*zd;		/* NULL: pass through */
	unsigned char		*zbuf;
	size_t			 zbuf_size;
	size_t			 zlast;		/* 0 only at a frame's end */
	uint64_t		 bytes_out;
	int			 auth_failed;
};

static void
be32_put(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
be32_get(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* An errno as an operator reads it: ENOSPC is "disk full". */
static char *
errno_cause(const char *what, int err)
{
	if (err == ENOSPC || err == EDQUOT)
		return xasprintf("%s: disk full (%s)", what, strerror(err));
	return xasprintf("%s: %s", what, strerror(err));
}

/* write(2) until everything is out: EINTR and short writes retried. */
static int
write_all(int fd, const void *data, size_t n, char **cause)
{
	const unsigned char *p = data;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1) {
			*cause = errno_cause("write", errno);
			return -1;
		}
		if (w == 0) {
			/* Should not happen for a file; never spin on it. */
			*cause = errno_cause("write", ENOSPC);
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
hex_valid(const char *s, size_t len)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	}
	return i == len;
}

static void
hash_final_hex(crypto_generichash_state *h, char *hex)
{
	unsigned char bin[PIPE_HASHBYTES];

	crypto_generichash_final(h, bin, sizeof(bin));
	sodium_bin2hex(hex, HEXLEN + 1, bin, sizeof(bin));
}

/* ---- writing ---------------------------------------------------------- */

/* Bytes as stored: to the file and into the hash. */
static int
out_store(struct pipe_out *p, const unsigned char *data, size_t n,
    char **cause)
{
	if (write_all(p->fd, data, n, cause) == -1)
		return -1;
	crypto_generichash_update(&p->hash, data, n);
	p->bytes_out += n;
	return 0;
}

/* Write the staged block: as is, or sealed as one frame tagged tag. */
static int
out_emit(struct pipe_out *p, unsigned char tag, char **cause)
{
	unsigned long long clen;

	if (!p->encrypt) {
		if (out_store(p, p->stage, p->staged, cause) == -1)
			return -1;
		p->staged = 0;
		return 0;
	}
	if (crypto_secretstream_xchacha20poly1305_push(&p->ss, p->frame + 4,
	    &clen, p->stage, p->staged, (const unsigned char *)p->bind,
	    p->bind != NULL ? strlen(p->bind) : 0, tag) != 0) {
		*cause = xstrdup("encryption failed");
		return -1;
	}
	be32_put(p->frame, (uint32_t)clen);
	if (out_store(p, p->frame, 4 + (size_t)clen, cause) == -1)
		return -1;
	p->staged = 0;
	return 0;
}

/* One zstd call with the free part of the staging block as output. */
static int
out_zstd(struct pipe_out *p, ZSTD_inBuffer *in, ZSTD_EndDirective mode,
    size_t *left, char **cause)
{
	ZSTD_outBuffer out;
	size_t r;

	/* Only now do we know the full block is not the last one. */
	if (p->staged == PIPE_BLOCK && out_emit(p, TAG_MESSAGE, cause) == -1)
		return -1;
	out.dst = p->stage;
	out.size = PIPE_BLOCK;
	out.pos = p->staged;
	r = ZSTD_compressStream2(p->zc, &out, in, mode);
	p->staged = out.pos;
	if (ZSTD_isError(r)) {
		*cause = xasprintf("zstd: %s", ZSTD_getErrorName(r));
		return -1;
	}
	*left = r;
	return 0;
}

static int
zstd_set(ZSTD_CCtx *zc, ZSTD_cParameter param, int value, const char *what,
    char **cause)
{
	size_t r = ZSTD_CCtx_setParameter(zc, param, value);

	if (ZSTD_isError(r)) {
		*cause = xasprintf("zstd: %s %d: %s", what, value,
		    ZSTD_getErrorName(r));
		return -1;
	}
	return 0;
}

struct pipe_out *
pipe_out_new(int fd, const struct pipe_opts *o, char **cause)
{
	struct pipe_out *p;
	unsigned char head[MAGICLEN + SS_HEADERBYTES];

	*cause = NULL;
	if (o->compression != PIPE_ZSTD && o->compression != PIPE_NONE) {
		*cause = xasprintf("unknown compression %d", (int)o->compression);
		return NULL;
	}
	/* Levels above 19 need windows of 64 MiB and more: not bounded. */
	if (o->compression == PIPE_ZSTD && (o->level < 1 || o->level > 19)) {
		*cause = xasprintf("zstd level %d out of range 1..19", o->level);
		return NULL;
	}
	if (o->threads < 0) {
		*cause = xasprintf("zstd threads %d: must not be negative",
		    o->threads);
		return NULL;
	}
	if (sodium_init() < 0) {
		*cause = xstrdup("libsodium failed to initialise");
		return NULL;
	}

	p = xcalloc(1, sizeof(*p));
	p->fd = fd;
	p->compression = o->compression;
	p->stage = xmalloc(PIPE_BLOCK);
	crypto_generichash_init(&p->hash, NULL, 0, PIPE_HASHBYTES);

	if (o->compression == PIPE_ZSTD) {
		if ((p->zc = ZSTD_createCCtx()) == NULL) {
			*cause = xstrdup("zstd: cannot create a context");
			goto fail;
		}
		if (zstd_set(p->zc, ZSTD_c_compressionLevel, o->level,
		    "level", cause) == -1)
			goto fail;
		/* zstd -d then checks the content too, key or not. */
		if (zstd_set(p->zc, ZSTD_c_checksumFlag, 1, "checksum",
		    cause) == -1)
			goto fail;
		if (o->threads > 0 && zstd_set(p->zc, ZSTD_c_nbWorkers,
		    o->threads, "threads", cause) == -1)
			goto fail;
	}

	if (o->key != NULL) {
		p->encrypt = 1;
		p->frame = xmalloc(4 + FRAME_MAX);
		p->bind = o->bind != NULL ? xstrdup(o->bind) : NULL;
		memcpy(head, o->bind != NULL ? MAGIC2 : MAGIC, MAGICLEN);
		if (crypto_secretstream_xchacha20poly1305_init_push(&p->ss,
		    head + MAGICLEN, o->key) != 0) {
			*cause = xstrdup("encryption: cannot initialise");
			goto fail;
		}
		if (out_store(p, head, sizeof(head), cause) == -1)
			goto fail;
	}
	return p;

fail:
	pipe_out_free(p);
	return NULL;
}

int
pipe_out_write(struct pipe_out *p, const void *data, size_t n, char **cause)
{
	const unsigned char *src = data;
	ZSTD_inBuffer in;
	size_t left, k;

	*cause = NULL;
	if (p->broken || p->finished) {
		*cause = xstrdup(p->broken ? "pipeline failed earlier" :
		    "pipeline already finished");
		return -1;
	}
	p->bytes_in += n;

	if (p->compression == PIPE_NONE) {
		while (n > 0) {
			if (p->staged == PIPE_BLOCK &&
			    out_emit(p, TAG_MESSAGE, cause) == -1)
				goto broken;
			k = PIPE_BLOCK - p->staged;
			if (k > n)
				k = n;
			memcpy(p->stage + p->staged, src, k);
			p->staged += k;
			src += k;
			n -= k;
		}
		return 0;
	}

	in.src = data;
	in.size = n;
	in.pos = 0;
	while (in.pos < in.size) {
		if (out_zstd(p, &in, ZSTD_e_continue, &left, cause) == -1)
			goto broken;
	}
	return 0;

broken:
	p->broken = 1;
	return -1;
}

int
pipe_out_finish(struct pipe_out *p, char *hash_hex, uint64_t *bytes_in,
    uint64_t *bytes_out, char **cause)
{
	ZSTD_inBuffer in = { NULL, 0, 0 };
	size_t left;

	*cause = NULL;
	if (p->broken || p->finished) {
		*cause = xstrdup(p->broken ? "pipeline failed earlier" :
		    "pipeline already finished");
		return -1;
	}
	if (p->compression == PIPE_ZSTD) {
		do {
			if (out_zstd(p, &in, ZSTD_e_end, &left, cause) == -1)
				goto broken;
		} while (left != 0);
	}
	if ((p->encrypt || p->staged > 0) &&
	    out_emit(p, TAG_FINAL, cause) == -1)
		goto broken;
	/* Pipes and character devices cannot be synced: EINVAL is fine. */
	if (fsync(p->fd) == -1 && errno != EINVAL) {
		*cause = errno_cause("fsync", errno);
		goto broken;
	}
	hash_final_hex(&p->hash, hash_hex);
	if (bytes_in != NULL)
		*bytes_in = p->bytes_in;
	if (bytes_out != NULL)
		*bytes_out = p->bytes_out;
	p->finished = 1;
	return 0;

broken:
	p->broken = 1;
	return -1;
}

void
pipe_out_free(struct pipe_out *p)
{
	if (p == NULL)
		return;
	ZSTD_freeCCtx(p->zc);
	sodium_memzero(&p->ss, sizeof(p->ss));
	if (p->stage != NULL)
		sodium_memzero(p->stage, PIPE_BLOCK);
	free(p->stage);
	free(p->frame);
	free(p->bind);
	free(p);
}

/* ---- reading ---------------------------------------------------------- */

/* Read n bytes, fewer only at end of file; everything read is hashed. */
static int
in_read(struct pipe_in *r, unsigned char *buf, size_t n, size_t *got,
    char **cause)
{
	size_t off = 0;

	while (off < n) {
		ssize_t k = read(r->fd, buf + off, n - off);

		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1) {
			*cause = errno_cause("read", errno);
			return -1;
		}
		if (k == 0)
			break;
		off += (size_t)k;
	}
	crypto_generichash_update(&r->hash, buf, off);
	*got = off;
	return 0;
}

static int
in_output(struct pipe_in *r, const unsigned char *data, size_t n,
    char **cause)
{
	if (r->out_fd != -1 && write_all(r->out_fd, data, n, cause) == -1)
		return -1;
	r->bytes_out += n;
	return 0;
}

/* Decoded bytes onward: through the decompressor, or as they are. */
static int
in_deliver(struct pipe_in *r, const unsigned char *data, size_t n,
    char **cause)
{
	ZSTD_inBuffer in = { data, n, 0 };
	ZSTD_outBuffer out;
	size_t ret;

	if (r->zd == NULL)
		return in_output(r, data, n, cause);
	/* An empty call would turn a finished frame's 0 into a hint. */
	if (n == 0)
		return 0;
	do {
		out.dst = r->zbuf;
		out.size = r->zbuf_size;
		out.pos = 0;
		ret = ZSTD_decompressStream(r->zd, &out, &in);
		if (ZSTD_isError(ret)) {
			*cause = xasprintf("zstd: %s", ZSTD_getErrorName(ret));
			return -1;
		}
		r->zlast = ret;
		if (in_output(r, r->zbuf, out.pos, cause) == -1)
			return -1;
		/* A full output buffer may hide more: call again. */
	} while (in.pos < in.size || (out.pos == out.size && ret != 0));
	return 0;
}

static int
in_plain(struct pipe_in *r, unsigned char *buf, char **cause)
{
	size_t got;
	int first = 1;

	for (;;) {
		if (in_read(r, buf, PIPE_BLOCK, &got, cause) == -1)
			return -1;
		if (got == 0)
			return 0;
		if (first && r->zd != NULL && got >= MAGICLEN &&
		    (memcmp(buf, MAGIC, MAGICLEN) == 0 ||
		    memcmp(buf, MAGIC2, MAGICLEN) == 0)) {
			*cause = xstrdup("the file is encrypted: a key is "
			    "needed");
			return -1;
		}
		first = 0;
		if (in_deliver(r, buf, got, cause) == -1)
			return -1;
	}
}

static int
in_decrypt(struct pipe_in *r, const struct pipe_seal *seal,
    unsigned char *cbuf, char **cause)
{
	const char *magic = seal->bind != NULL ? MAGIC2 : MAGIC;
	const unsigned char *ad = (const unsigned char *)seal->bind;
	size_t adlen = seal->bind != NULL ? strlen(seal->bind) : 0;
	crypto_secretstream_xchacha20poly1305_state ss;
	unsigned char head[MAGICLEN + SS_HEADERBYTES], tag, *plain;
	unsigned long long mlen;
	size_t got;
	uint32_t len;
	int rc = -1, final = 0;

	plain = xmalloc(PIPE_BLOCK);
	if (in_read(r, head, sizeof(head), &got, cause) == -1)
		goto done;
	if (got < MAGICLEN || memcmp(head, magic, MAGICLEN) != 0) {
		if (got < MAGICLEN && memcmp(head, magic, got) == 0)
			*cause = xstrdup("truncated: the file ends inside its "
			    "header");
		else if (got >= MAGICLEN && seal->bind != NULL &&
		    memcmp(head, MAGIC, MAGICLEN) == 0)
			*cause = xstrdup("the data is in the old format, not "
			    "bound to its target and id");
		else
			*cause = xstrdup("not an encrypted backup (bad magic)");
		goto done;
	}
	if (got < sizeof(head)) {
		*cause = xstrdup("truncated: the file ends inside its header");
		goto done;
	}
	if (crypto_secretstream_xchacha20poly1305_init_pull(&ss,
	    head + MAGICLEN, seal->key) != 0) {
		r->auth_failed = 1;
		*cause = xstrdup("wrong key or corrupted data");
		goto done;
	}
	for (;;) {
		if (in_read(r, cbuf, 4, &got, cause) == -1)
			goto done;
		if (final) {
			if (got != 0) {
				*cause = xstrdup("corrupted: data after the "
				    "final block");
				goto done;
			}
			break;
		}
		if (got == 0) {
			*cause = xstrdup("truncated: the final block is "
			    "missing");
			goto done;
		}
		if (got < 4) {
			*cause = xstrdup("truncated: the file ends inside a "
			    "frame");
			goto done;
		}
		len = be32_get(cbuf);
		if (len < SS_ABYTES || len > FRAME_MAX) {
			*cause = xasprintf("corrupted: frame length %u out of "
			    "range", len);
			goto done;
		}
		if (in_read(r, cbuf, len, &got, cause) == -1)
			goto done;
		if (got < len) {
			*cause = xstrdup("truncated: the file ends inside a "
			    "frame");
			goto done;
		}
		if (crypto_secretstream_xchacha20poly1305_pull(&ss, plain,
		    &mlen, &tag, cbuf, len, ad, adlen) != 0) {
			r->auth_failed = 1;
			*cause = xstrdup(seal->bind != NULL ? "wrong key, "
			    "corrupted data, or the data of another backup "
			    "(it is bound to another target or id)" :
			    "wrong key or corrupted data");
			goto done;
		}
		if (tag == TAG_FINAL)
			final = 1;
		else if (tag != TAG_MESSAGE) {
			*cause = xasprintf("corrupted: unexpected tag %u",
			    (unsigned)tag);
			goto done;
		}
		if (in_deliver(r, plain, (size_t)mlen, cause) == -1)
			goto done;
	}
	rc = 0;
done:
	sodium_memzero(&ss, sizeof(ss));
	sodium_memzero(plain, PIPE_BLOCK);
	free(plain);
	return rc;
}

/* Hash the rest of the file, so a damaged file is reported as such. */
static int
in_drain(struct pipe_in *r, unsigned char *buf)
{
	char *cause = NULL;
	size_t got;

	do {
		if (in_read(r, buf, PIPE_BLOCK, &got, &cause) == -1) {
			free(cause);
			return -1;
		}
	} while (got > 0);
	return 0;
}

int
pipe_in_run(int in_fd, int out_fd, enum pipe_compression compression,
    const struct pipe_seal *seal, const char *expect_hex, uint64_t *bytes_out,
    char **cause)
{
	struct pipe_in r;
	unsigned char *buf;
	char hex[HEXLEN + 1], *err = NULL;
	int rc;

	*cause = NULL;
	if (compression != PIPE_ZSTD && compression != PIPE_NONE) {
		*cause = xasprintf("unknown compression %d", (int)compression);
		return -1;
	}
	if (expect_hex != NULL && !hex_valid(expect_hex, HEXLEN)) {
		*cause = xasprintf("expected hash is not %d hex characters",
		    HEXLEN);
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.fd = in_fd;
	r.out_fd = out_fd;
	crypto_generichash_init(&r.hash, NULL, 0, PIPE_HASHBYTES);
	if (compression == PIPE_ZSTD) {
		if ((r.zd = ZSTD_createDCtx()) == NULL) {
			*cause = xstrdup("zstd: cannot create a context");
			return -1;
		}
		r.zbuf_size = ZSTD_DStreamOutSize();
		r.zbuf = xmalloc(r.zbuf_size);
		r.zlast = 1;	/* no frame seen yet: not complete */
	}
	buf = xmalloc(4 + FRAME_MAX);

	if (seal != NULL && seal->key != NULL)
		rc = in_decrypt(&r, seal, buf, &err);
	else
		rc = in_plain(&r, buf, &err);
	if (rc == 0 && r.zd != NULL && r.zlast != 0) {
		err = xstrdup("truncated: the zstd frame is incomplete");
		rc = -1;
	}

	/*
	 * One pass: the hash is known only now.  On an early failure read
	 * the rest, so that a damaged file says "hash mismatch" and an
	 * intact file with a failure says which key is wrong.
	 */
	if (expect_hex != NULL && (rc == 0 || in_drain(&r, buf) == 0)) {
		hash_final_hex(&r.hash, hex);
		if (strcasecmp(hex, expect_hex) != 0) {
			*cause = xasprintf("hash mismatch: the file is damaged "
			    "or was changed (expected %s, got %s)%s%s",
			    expect_hex, hex, err != NULL ? "; " : "",
			    err != NULL ? err : "");
			free(err);
			err = NULL;
			rc = -1;
		} else if (r.auth_failed) {
			free(err);
			err = xstrdup(seal->bind != NULL ? "the file is intact "
			    "(its hash matches) but does not decrypt with this "
			    "key as the data of this target and id: a wrong "
			    "key, or a copy of another backup" : "wrong key: "
			    "the file is intact (its hash matches) but does not "
			    "decrypt with this key");
		}
	}
	if (rc == -1 && *cause == NULL) {
		*cause = err;
		err = NULL;
	}
	free(err);
	if (bytes_out != NULL)
		*bytes_out = r.bytes_out;
	ZSTD_freeDCtx(r.zd);
	free(r.zbuf);
	free(buf);
	return rc;
}

int
pipe_hash_fd(int fd, char *hash_hex, uint64_t *bytes, char **cause)
{
	crypto_generichash_state h;
	unsigned char *buf;
	uint64_t total = 0;
	ssize_t k;

	*cause = NULL;
	/* The whole file, wherever the offset is; a pipe is read as is. */
	if (lseek(fd, 0, SEEK_SET) == -1 && errno != ESPIPE) {
		*cause = errno_cause("lseek", errno);
		return -1;
	}
	buf = xmalloc(PIPE_BLOCK);
	crypto_generichash_init(&h, NULL, 0, PIPE_HASHBYTES);
	for (;;) {
		k = read(fd, buf, PIPE_BLOCK);
		if (k == -1 && errno == EINTR)
			continue;
		if (k == -1) {
			*cause = errno_cause("read", errno);
			free(buf);
			return -1;
		}
		if (k == 0)
			break;
		crypto_generichash_update(&h, buf, (size_t)k);
		total += (uint64_t)k;
	}
	free(buf);
	hash_final_hex(&h, hash_hex);
	if (bytes != NULL)
		*bytes = total;
	return 0;
}

/* ---- keys ------------------------------------------------------------- */

int
pipe_keygen(const char *path, char **cause)
{
	unsigned char key[PIPE_KEYBYTES];
	char text[2 * PIPE_KEYBYTES + 2];
	int fd;

	*cause = NULL;
	if (sodium_init() < 0) {
		*cause = xstrdup("libsodium failed to initialise");
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		if (errno == EEXIST)
			*cause = xasprintf("%s: already exists; refusing to "
			    "overwrite a key", path);
		else
			*cause = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(text, sizeof(text), key, sizeof(key));
	text[2 * PIPE_KEYBYTES] = '\n';
	sodium_memzero(key, sizeof(key));
	if (write_all(fd, text, 2 * PIPE_KEYBYTES + 1, cause) == -1)
		goto fail;
	if (fsync(fd) == -1) {
		*cause = errno_cause("fsync", errno);
		goto fail;
	}
	sodium_memzero(text, sizeof(text));
	if (close(fd) == -1) {
		*cause = errno_cause("close", errno);
		unlink(path);
		return -1;
	}
	if (dir_sync_of(path) == -1) {
		*cause = errno_cause("fsync of the directory", errno);
		return -1;
	}
	return 0;

fail:
	sodium_memzero(text, sizeof(text));
	close(fd);
	unlink(path);	/* half a key is worse than none */
	return -1;
}

int
pipe_key_load(const char *path, unsigned char key[PIPE_KEYBYTES],
    char **cause)
{
	struct stat st;
	char *text;
	size_t len, binlen = 0;
	int rc = -1;

	*cause = NULL;
	/* Whoever owns the file can swap the key: the bot's user or root. */
	if (lstat(path, &st) == 0 && st.st_uid != geteuid() && st.st_uid != 0) {
		*cause = xasprintf("%s: owned by uid %u; a key file must belong "
		    "to the bot's user (uid %u) or root (chown)", path,
		    (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if ((text = secret_read(path, cause)) == NULL)
		return -1;
	len = strlen(text);
	/* Never quote the file: it is a secret, even when malformed. */
	if (!hex_valid(text, 2 * PIPE_KEYBYTES)) {
		*cause = xasprintf("%s: not a key (expected %d hex characters "
		    "and a newline)", path, 2 * PIPE_KEYBYTES);
		goto done;
	}
	if (sodium_hex2bin(key, PIPE_KEYBYTES, text, len, NULL, &binlen,
	    NULL) != 0 || binlen != PIPE_KEYBYTES) {
		sodium_memzero(key, PIPE_KEYBYTES);
		*cause = xasprintf("%s: not a key", path);
		goto done;
	}
	rc = 0;
done:
	sodium_memzero(text, len);
	free(text);
	return rc;
}
