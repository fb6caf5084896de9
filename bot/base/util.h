/*
 * util.h - allocation wrappers, a capped growable buffer, small string and
 * file helpers shared by every module.
 *
 * Ownership: every x*() allocator aborts on out-of-memory, so callers never
 * check for NULL.  Whoever gets a pointer from an x*() function frees it.
 */
#ifndef BB_UTIL_H
#define BB_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0), nonnull(1)));

/*
 * A growable byte buffer with a hard cap.  Appending past the cap fails
 * (returns -1) and sets `overflow`, so a hostile peer cannot make us
 * allocate without bound.  `data` is always NUL-terminated.
 */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 alloc;
	size_t	 cap;
	int	 overflow;
};

void buf_init(struct buf *b, size_t cap);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
int  buf_add(struct buf *b, const void *p, size_t n);
int  buf_adds(struct buf *b, const char *s);
int  buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the data to the caller (who frees it) and reset the buffer. */
char *buf_detach(struct buf *b, size_t *len);

/* Trim leading and trailing ASCII whitespace in place; returns s. */
char *str_trim(char *s);
int   str_startswith(const char *s, const char *prefix);
/* Strictly parse a non-negative decimal integer that fits in long long. */
int   str_to_ll(const char *s, long long min, long long max, long long *out);
/* Wipe memory so secrets do not linger. */
void  secure_wipe(void *p, size_t n);
/* Free a NULL-terminated array of strings and the array (NULL is fine). */
void  strv_free(char **v);
/* Wipe a secret string and free it (NULL is fine). */
void  secret_free(char *s);

/* Wall-clock milliseconds and monotonic milliseconds. */
int64_t now_ms(void);
int64_t mono_ms(void);
time_t sleep_next_second(void);

/*
 * Read a whole file (at most max bytes).  Returns a NUL-terminated buffer
 * the caller frees, or NULL with errno set (EFBIG when over max).
 */
char *file_read(const char *path, size_t max, size_t *len);

/*
 * Write a file atomically: PATH.tmp, fsync, rename, fsync the directory.
 * mode is the file's permission bits.  Returns 0 or -1 with errno set.
 */
int file_write_atomic(const char *path, const void *data, size_t len, int mode);
/*
 * The same without the directory's fsync: after a power cut the file holds
 * the new content or, the rename lost, the old one, never a mix.  For a
 * file whose older version is still correct, only less recent (next_batch).
 */
int file_replace(const char *path, const void *data, size_t len, int mode);
/* fsync the directory that holds path. */
int dir_sync_of(const char *path);
/* mkdir -p with mode for every created component. */
int dir_make(const char *path, int mode);
/* Remove path and everything under it (links are not followed); a
 * missing path is fine.  0 or -1 with errno. */
int dir_remove_tree(const char *path);

/*
 * Read a secret from a file, refusing files that group or others can read
 * (as ssh does).  Trailing newlines are removed.  On failure returns NULL
 * and sets *cause (caller frees).  The caller wipes and frees the secret.
 */
char *secret_read(const char *path, char **cause);

#endif
