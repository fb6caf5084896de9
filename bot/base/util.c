/*
 * util.c - allocation wrappers, capped buffers, string and file helpers.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatalx("out of memory (%zu bytes)", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (p == NULL)
		fatalx("out of memory");
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		fatalx("out of memory (%zu bytes)", n);
	return q;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	va_list ap2;
	char *p;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		fatalx("vsnprintf failed");
	p = xmalloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

void
buf_init(struct buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

void
buf_release(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	b->overflow = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->overflow || n > b->cap || b->len > b->cap - n) {
		b->overflow = 1;
		return -1;
	}
	if (b->len + n + 1 > b->alloc) {
		size_t want = b->alloc ? b->alloc : 256;

		while (want < b->len + n + 1)
			want *= 2;
		b->data = xrealloc(b->data, want);
		b->alloc = want;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	r = buf_adds(b, s);
	free(s);
	return r;
}

char *
buf_detach(struct buf *b, size_t *len)
{
	char *p = b->data ? b->data : xstrdup("");

	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = b->alloc = 0;
	b->overflow = 0;
	return p;
}

char *
str_trim(char *s)
{
	char *b = s, *e;

	while (*b != '\0' && isspace((unsigned char)*b))
		b++;
	e = b + strlen(b);
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	/* in place: callers may ignore the return value */
	memmove(s, b, (size_t)(e - b));
	s[e - b] = '\0';
	return s;
}

int
str_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int
str_to_ll(const char *s, long long min, long long max, long long *out)
{
	long long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (LLONG_MAX - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void
secure_wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (n-- > 0)
		*v++ = 0;
}

void
strv_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

void
secret_free(char *s)
{
	if (s == NULL)
		return;
	secure_wipe(s, strlen(s));
	free(s);
}

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Sleep until the wall clock's second changes, and return the new
 * time(NULL): for names with a one-second resolution, without waiting a
 * whole second when most of it has passed.
 */
time_t
sleep_next_second(void)
{
	struct timespec ts, rest;
	time_t was;

	clock_gettime(CLOCK_REALTIME, &ts);
	was = ts.tv_sec;
	rest.tv_sec = 0;
	rest.tv_nsec = 1000000000L - ts.tv_nsec + 1000000L;	/* +1 ms */
	if (rest.tv_nsec >= 1000000000L) {
		rest.tv_sec = 1;
		rest.tv_nsec -= 1000000000L;
	}
	while (nanosleep(&rest, &rest) == -1 && errno == EINTR)
		;
	while (time(NULL) <= was)
		usleep(1000);
	return time(NULL);
}

static char *
read_fd(int fd, size_t max, size_t *len)
{
	struct buf b;
	char chunk[8192];
	ssize_t n;

	buf_init(&b, max);
	buf_add(&b, "", 0);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			buf_release(&b);
			return NULL;
		}
		if (n == 0)
			break;
		if (buf_add(&b, chunk, (size_t)n) == -1) {
			buf_release(&b);
			errno = EFBIG;
			return NULL;
		}
	}
	return buf_detach(&b, len);
}

char *
file_read(const char *path, size_t max, size_t *len)
{
	char *p;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	p = read_fd(fd, max, len);
	saved = errno;
	close(fd);
	errno = saved;
	return p;
}

int
dir_sync_of(const char *path)
{
	char *dir = xstrdup(path), *slash;
	int fd, r;

	slash = strrchr(dir, '/');
	if (slash == NULL) {
		free(dir);
		dir = xstrdup(".");
	} else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

static int write_atomic(const char *, const void *, size_t, int, int);

int
file_write_atomic(const char *path, const void *data, size_t len, int mode)
{
	return write_atomic(path, data, len, mode, 1);
}

int
file_replace(const char *path, const void *data, size_t len, int mode)
{
	return write_atomic(path, data, len, mode, 0);
}

static int
write_atomic(const char *path, const void *data, size_t len, int mode,
    int sync_dir)
{
	char *tmp = xasprintf("%s.tmp", path);
	const char *p = data;
	int fd, saved;

	/* A leftover PATH.tmp keeps its mode (or is a symlink): start anew. */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd == -1)
		goto fail;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail_close;
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) == -1)
		goto fail_close;
	if (close(fd) == -1) {
		fd = -1;
		goto fail_unlink;
	}
	if (rename(tmp, path) == -1)
		goto fail_unlink;
	free(tmp);
	return sync_dir ? dir_sync_of(path) : 0;

fail_close:
	saved = errno;
	close(fd);
	errno = saved;
fail_unlink:
	saved = errno;
	unlink(tmp);
	errno = saved;
fail:
	saved = errno;
	free(tmp);
	errno = saved;
	return -1;
}

/* nftw has no user argument: what the walk found. */
static int remove_failed;

static int
remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP || flag == FTW_DNR ? rmdir(path) :
	    unlink(path)) == -1 &&
	    errno != ENOENT)
		remove_failed = errno;
	return 0;		/* remove what can be removed */
}

/* Directories the owner cannot write (extracted archives): make them so. */
static int
open_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_D && (st->st_mode & 0700) != 0700)
		chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

int
dir_remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : -1;
	remove_failed = 0;
	/* FTW_PHYS: a symbolic link is removed, never followed */
	if (S_ISDIR(st.st_mode))
		nftw(path, open_entry, 16, FTW_PHYS);
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (remove_failed != 0) {
		errno = remove_failed;
		return -1;
	}
	return 0;
}

int
dir_make(const char *path, int mode)
{
	char *p = xstrdup(path), *s;
	int r = 0;

	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, (mode_t)mode) == -1 && errno != EEXIST) {
				r = -1;
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return r;
}

char *
secret_read(const char *path, char **cause)
{
	struct stat st;
	size_t len;
	char *s;
	int fd;

	*cause = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		*cause = xasprintf("%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		*cause = xasprintf("%s: permissions %04o are too open; the file "
		    "holds a secret and must not be accessible by group or "
		    "others (chmod 600 %s)", path,
		    (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return NULL;
	}
	s = read_fd(fd, 64 * 1024, &len);
	close(fd);
	if (s == NULL) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	if (len == 0) {
		*cause = xasprintf("%s: file is empty", path);
		free(s);
		return NULL;
	}
	return s;
}
