/*
 * files_restore.c - the restore side of the files backend: the archive's headers read
 * and checked before tar writes anything, where the members go, and tar
 * run to extract them.  The backup side is files.c.
 */
#include <sys/stat.h>
#include <sys/wait.h>

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

#include "backend.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"
#include "proc.h"
#include "util.h"
#include "files_parts.h"

/*
 * A restore reads the archive's headers itself before tar writes
 * anything: every member's name must be safe (relative, no ".."), and
 * without --replace none may land on an existing file.  Then GNU tar
 * extracts it, fed on its stdin (progress, cancel), and every member is
 * looked at on disk afterwards.  The reader knows what `tar --create`
 * writes (GNU format: long names, old GNU sparse files) and POSIX pax
 * headers; anything else is refused rather than guessed at.
 */

#define FILES_TAR_BLOCK		512
#define FILES_NAME_MAX		(64 * 1024)	/* a long name we read */
#define FILES_CONFLICTS_SHOWN	5
#define FILES_DIFFS_MAX		20

struct files_member {
	char		*name;		/* as archived, no trailing '/' */
	char		*link;		/* a hard link's target */
	char		 type;		/* '0' file, '1', '2', '5', ... */
	uint64_t	 size;		/* a regular file's size */
};

struct files_list {
	struct files_member	*v;
	size_t			 n;
	uint64_t		 files;		/* regular, hard links too */
	uint64_t		 bytes;		/* of those */
	uint64_t		 dirs;
	uint64_t		 links;		/* symbolic */
	uint64_t		 other;
};

static void
files_list_free(struct files_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].link);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* An octal or base-256 number field. */
static int
files_tar_number(const unsigned char *p, size_t n, uint64_t *v)
{
	size_t i = 0;

	*v = 0;
	if (p[0] & 0x80) {
		if (p[0] != 0x80)
			return -1;	/* negative, or too large */
		for (i = 1; i < n; i++) {
			if (*v >> 56)
				return -1;
			*v = *v << 8 | p[i];
		}
		return 0;
	}
	while (i < n && p[i] == ' ')
		i++;
	for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
		if (*v >> 61)
			return -1;
		*v = *v << 3 | (uint64_t)(p[i] - '0');
	}
	return i == n || p[i] == ' ' || p[i] == '\0' ? 0 : -1;
}

/* A string field of at most n bytes. */
static char *
files_tar_field(const unsigned char *p, size_t n)
{
	return xstrndup((const char *)p, strnlen((const char *)p, n));
}

/* A name for messages: bounded, control characters as '?'. */
static char *
files_shown(const char *name)
{
	char *s = xstrndup(name, strnlen(name, 200));

	for (char *c = s; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return s;
}

struct files_tar {
	FILE		*f;
	uint64_t	 size;		/* of the file */
	uint64_t	 offset;
	char		*longname;	/* for the next member */
	char		*longlink;
};

static int
files_tar_read(struct files_tar *T, void *p, size_t n, char **cause)
{
	if (T->offset + n > T->size || fread(p, 1, n, T->f) != n) {
		*cause = xasprintf("the archive is truncated at byte %llu",
		    (unsigned long long)T->offset);
		return -1;
	}
	T->offset += n;
	return 0;
}

/* Skip a member's data: n bytes, in whole blocks. */
static int
files_tar_skip(struct files_tar *T, uint64_t n, char **cause)
{
	uint64_t len = (n + FILES_TAR_BLOCK - 1) / FILES_TAR_BLOCK *
	    FILES_TAR_BLOCK;

	if (T->offset + len > T->size || fseeko(T->f, (off_t)len,
	    SEEK_CUR) == -1) {
		*cause = xasprintf("the archive is truncated at byte %llu",
		    (unsigned long long)T->offset);
		return -1;
	}
	T->offset += len;
	return 0;
}

/* The data of a long-name or pax header, NUL-terminated. */
static char *
files_tar_data(struct files_tar *T, uint64_t n, char **cause)
{
	uint64_t len = (n + FILES_TAR_BLOCK - 1) / FILES_TAR_BLOCK *
	    FILES_TAR_BLOCK;
	char *data;

	if (n > FILES_NAME_MAX) {
		*cause = xasprintf("a header of %llu bytes at byte %llu is too "
		    "long to be a name", (unsigned long long)n,
		    (unsigned long long)T->offset);
		return NULL;
	}
	data = xmalloc(len + 1);
	if (files_tar_read(T, data, len, cause) == -1) {
		free(data);
		return NULL;
	}
	data[n] = '\0';
	return data;
}

/* Take path, linkpath and size from pax records "LEN key=value\n". */
static int
files_tar_pax(const char *data, size_t n, char **path, char **link,
    uint64_t *size, int *has_size)
{
	const char *p = data, *end = data + n, *eq, *val;
	unsigned long long len;
	char *num;

	while (p < end && *p != '\0') {
		if (sscanf(p, "%llu", &len) != 1 || len < 5 ||
		    len > (unsigned long long)(end - p) || p[len - 1] != '\n')
			return -1;
		val = memchr(p, ' ', len);
		eq = val != NULL ? memchr(val, '=', (size_t)(p + len - val)) :
		    NULL;
		if (val == NULL || eq == NULL)
			return -1;
		val++;
#define PAX_KEY(k) ((size_t)(eq - val) == strlen(k) && \
		    memcmp(val, k, strlen(k)) == 0)
		if (PAX_KEY("path") || PAX_KEY("GNU.sparse.name")) {
			free(*path);
			*path = xstrndup(eq + 1, (size_t)(p + len - 1 - eq - 1));
		} else if (PAX_KEY("linkpath")) {
			free(*link);
			*link = xstrndup(eq + 1, (size_t)(p + len - 1 - eq - 1));
		} else if (PAX_KEY("size") || PAX_KEY("GNU.sparse.realsize") ||
		    PAX_KEY("GNU.sparse.size")) {
			long long v;

			num = xstrndup(eq + 1, (size_t)(p + len - 1 - eq - 1));
			if (str_to_ll(num, 0, INT64_MAX, &v) == -1) {
				free(num);
				return -1;
			}
			free(num);
			if (!PAX_KEY("size") || !*has_size)
				*size = (uint64_t)v;
			*has_size = 1;
		}
#undef PAX_KEY
		p += len;
	}
	return 0;
}

/* 1 if name is one tar may write under a directory: relative, no "..". */
static int
files_safe_name(const char *name)
{
	const char *p = name;
	size_t len;

	if (*name == '\0' || *name == '/')
		return 0;
	while (*p != '\0') {
		len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += len;
		while (*p == '/')
			p++;
	}
	return 1;
}

static uint64_t
files_member_size(const struct files_list *l, const char *name)
{
	for (size_t i = l->n; i-- > 0; )
		if (l->v[i].type != '1' && strcmp(l->v[i].name, name) == 0)
			return l->v[i].size;
	return 0;
}

/*
 * Every member of the archive in path, its names checked: 0, or -1
 * with *cause.
 */
static int
files_tar_list(struct job_ctx *ctx, const char *path, struct files_list *l,
    char **cause)
{
	struct files_tar T;
	unsigned char h[FILES_TAR_BLOCK];
	char *pax_path = NULL, *pax_link = NULL, *data, *shown;
	uint64_t size, chk, pax_size = 0, sum;
	int has_pax_size = 0, rc = -1, ended = 0;
	struct stat st;

	memset(l, 0, sizeof(*l));
	memset(&T, 0, sizeof(T));
	if ((T.f = fopen(path, "rb")) == NULL) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	T.size = fstat(fileno(T.f), &st) == 0 ? (uint64_t)st.st_size : 0;
	while (!ended) {
		struct files_member m;
		size_t i;

		if (files_is_cancelled(ctx)) {
			*cause = xstrdup("cancelled");
			goto done;
		}
		if (T.offset == T.size && T.offset > 0)
			break;		/* no end blocks: tar accepts that */
		if (files_tar_read(&T, h, sizeof(h), cause) == -1)
			goto done;
		for (i = 0; i < sizeof(h) && h[i] == 0; i++)
			;
		if (i == sizeof(h)) {
			ended = 1;	/* the end: a zero block */
			break;
		}
		sum = 0;
		for (i = 0; i < sizeof(h); i++)
			sum += i >= 148 && i < 156 ? ' ' : h[i];
		if (files_tar_number(h + 148, 8, &chk) == -1 || chk != sum) {
			*cause = xasprintf("not a tar archive, or a damaged one: "
			    "bad header checksum at byte %llu",
			    (unsigned long long)T.offset - FILES_TAR_BLOCK);
			goto done;
		}
		if (files_tar_number(h + 124, 12, &size) == -1) {
			*cause = xasprintf("bad size field at byte %llu",
			    (unsigned long long)T.offset - FILES_TAR_BLOCK);
			goto done;
		}
		switch (h[156]) {
		case 'L':
		case 'K':
			if ((data = files_tar_data(&T, size, cause)) == NULL)
				goto done;
			if (h[156] == 'L') {
				free(T.longname);
				T.longname = data;
			} else {
				free(T.longlink);
				T.longlink = data;
			}
			continue;
		case 'x':
			if ((data = files_tar_data(&T, size, cause)) == NULL)
				goto done;
			if (files_tar_pax(data, size, &pax_path, &pax_link,
			    &pax_size, &has_pax_size) == -1) {
				free(data);
				*cause = xasprintf("bad pax header at byte %llu",
				    (unsigned long long)T.offset);
				goto done;
			}
			free(data);
			continue;
		case 'g': {
			/*
			 * GNU tar applies a global header's path, linkpath or
			 * size to the members that follow: a name this reader
			 * would not see.  backupbot never writes one.
			 */
			char *gpath = NULL, *glink = NULL;
			uint64_t gsize = 0;
			int gsized = 0, bad;

			if ((data = files_tar_data(&T, size, cause)) == NULL)
				goto done;
			bad = files_tar_pax(data, size, &gpath, &glink, &gsize,
			    &gsized) == -1 || gpath != NULL || glink != NULL ||
			    gsized;
			free(data);
			free(gpath);
			free(glink);
			if (bad) {
				*cause = xasprintf("a pax global header at byte "
				    "%llu sets names or sizes for the members "
				    "after it: not an archive backupbot writes; "
				    "not restoring anything from it",
				    (unsigned long long)T.offset);
				goto done;
			}
			continue;
		}
		case 'V':
			if (files_tar_skip(&T, size, cause) == -1)
				goto done;
			continue;
		case 'M':
			*cause = xstrdup("a multi-volume archive: not one "
			    "backupbot writes");
			goto done;
		}

		memset(&m, 0, sizeof(m));
		m.type = h[156] == '\0' || h[156] == '7' ? '0' : (char)h[156];
		if (pax_path != NULL) {
			m.name = pax_path;
			pax_path = NULL;
		} else if (T.longname != NULL) {
			m.name = T.longname;
			T.longname = NULL;
		} else if (memcmp(h + 257, "ustar\0", 6) == 0 && h[345] != 0) {
			char *prefix = files_tar_field(h + 345, 155);
			char *name = files_tar_field(h, 100);

			m.name = xasprintf("%s/%s", prefix, name);
			free(prefix);
			free(name);
		} else
			m.name = files_tar_field(h, 100);
		if (m.type == '1') {
			if (pax_link != NULL) {
				m.link = pax_link;
				pax_link = NULL;
			} else if (T.longlink != NULL) {
				m.link = T.longlink;
				T.longlink = NULL;
			} else
				m.link = files_tar_field(h + 157, 100);
		}
		free(pax_link);
		free(T.longlink);
		pax_link = T.longlink = NULL;
		for (size_t len = strlen(m.name); len > 1 &&
		    m.name[len - 1] == '/'; len--)
			m.name[len - 1] = '\0';
		l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
		l->v[l->n++] = m;	/* freed with the list from here on */
		if (!files_safe_name(m.name) || (m.link != NULL &&
		    !files_safe_name(m.link))) {
			shown = files_shown(m.link != NULL &&
			    files_safe_name(m.name) ? m.link : m.name);
			*cause = xasprintf("the archive holds an unsafe name, "
			    "\"%s\" (absolute, or with \"..\"): not restoring "
			    "anything from it", shown);
			free(shown);
			goto done;
		}

		if (m.type == 'S') {
			uint64_t real;

			/* old GNU sparse: the real size, extension blocks */
			if (files_tar_number(h + 483, 12, &real) == -1) {
				*cause = xstrdup("bad sparse header");
				goto done;
			}
			l->v[l->n - 1].size = has_pax_size ? pax_size : real;
			for (int ext = h[482]; ext; ) {
				unsigned char x[FILES_TAR_BLOCK];

				if (files_tar_read(&T, x, sizeof(x),
				    cause) == -1)
					goto done;
				ext = x[504];
			}
			l->v[l->n - 1].type = '0';
		} else
			l->v[l->n - 1].size = has_pax_size && m.type == '0' ?
			    pax_size : size;
		has_pax_size = 0;
		switch (l->v[l->n - 1].type) {
		case '0':
		case 'D':
			break;
		case '1':
		case '2':
		case '5':
			size = 0;	/* no data follows */
			break;
		case '3':
		case '4':
		case '6':
			/* tar would make a device node or a FIFO (as root,
			 * owned as archived): never from a config backup */
			shown = files_shown(m.name);
			*cause = xasprintf("%s: the archive holds a %s: not "
			    "restoring anything from it", shown,
			    h[156] == '6' ? "FIFO" : "device node");
			free(shown);
			goto done;
		default:
			shown = files_shown(m.name);
			*cause = xasprintf("%s: a member of type '%c' is not "
			    "one backupbot writes", shown, h[156]);
			free(shown);
			goto done;
		}
		if (files_tar_skip(&T, size, cause) == -1)
			goto done;
	}
	for (size_t i = 0; i < l->n; i++) {
		struct files_member *m = &l->v[i];

		switch (m->type) {
		case '0':
			l->files++;
			l->bytes += m->size;
			break;
		case '1':
			/* nftw counted it as a file of its own */
			l->files++;
			l->bytes += files_member_size(l, m->link);
			break;
		case '2':
			l->links++;
			break;
		case '5':
		case 'D':
			l->dirs++;
			break;
		default:
			l->other++;
			break;
		}
	}
	if (l->n == 0) {
		*cause = xstrdup("the archive is empty");
		goto done;
	}
	rc = 0;
done:
	free(pax_path);
	free(pax_link);
	free(T.longname);
	free(T.longlink);
	fclose(T.f);
	if (rc == -1)
		files_list_free(l);
	return rc;
}

/* ---- restore: where the members go ------------------------------------ */

/* dest/name, without a doubled '/'. */
static char *
files_join(const char *dest, const char *name)
{
	size_t len = strlen(dest);

	while (len > 0 && dest[len - 1] == '/')
		len--;
	return xasprintf("%.*s/%s", (int)len, dest, name);
}

/*
 * What would be overwritten: a member over anything that exists but a
 * directory over a directory.  With check_links, a symbolic link on the
 * way to a member (dest/etc a link to /etc) is a conflict too: tar would
 * write through it, outside dest.  *existing counts what would be
 * replaced; the first few names go into shown.
 */
static void
files_conflicts(const char *dest, const struct files_list *l,
    int check_links, uint64_t *existing, uint64_t *through_links,
    struct buf *shown)
{
	struct stat st;
	char *path, *slash, *name;
	size_t nshown = 0;

	*existing = *through_links = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct files_member *m = &l->v[i];
		int hit = 0;

		path = files_join(dest, m->name);
		if (check_links) {
			/* every directory on the way, from dest down */
			for (slash = path + strlen(dest) + 1; (slash =
			    strchr(slash, '/')) != NULL; slash++) {
				*slash = '\0';
				if (lstat(path, &st) == 0 &&
				    S_ISLNK(st.st_mode)) {
					hit = 2;
					*slash = '/';
					break;
				}
				*slash = '/';
			}
		}
		if (!hit && lstat(path, &st) == 0 && !(S_ISDIR(st.st_mode) &&
		    (m->type == '5' || m->type == 'D')))
			hit = 1;
		if (hit == 2)
			(*through_links)++;
		else if (hit == 1)
			(*existing)++;
		if (hit && nshown++ < FILES_CONFLICTS_SHOWN) {
			name = files_shown(path);
			buf_addf(shown, "%s%s%s", shown->len > 0 ? ", " : "",
			    name, hit == 2 ? " (through a symbolic link)" : "");
			free(name);
		}
		free(path);
	}
	if (nshown > FILES_CONFLICTS_SHOWN)
		buf_addf(shown, " and %zu more", nshown -
		    FILES_CONFLICTS_SHOWN);
}

/* Does what is at dest/name look like the member? NULL, or why not. */
static char *
files_member_check(const char *dest, const struct files_list *l,
    const struct files_member *m)
{
	struct stat st;
	char *path = files_join(dest, m->name), *shown = files_shown(m->name);
	char *why = NULL;
	uint64_t want;
	int ok;

	if (lstat(path, &st) == -1) {
		why = xasprintf("%s: in the backup, not on disk after the "
		    "restore (%s)", shown, strerror(errno));
		goto done;
	}
	switch (m->type) {
	case '0':
	case '1':
		ok = S_ISREG(st.st_mode);
		break;
	case '2':
		ok = S_ISLNK(st.st_mode);
		break;
	case '5':
	case 'D':
		ok = S_ISDIR(st.st_mode);
		break;
	case '3':
		ok = S_ISCHR(st.st_mode);
		break;
	case '4':
		ok = S_ISBLK(st.st_mode);
		break;
	case '6':
		ok = S_ISFIFO(st.st_mode);
		break;
	default:
		ok = 1;
		break;
	}
	if (!ok) {
		why = xasprintf("%s: not of the type it has in the backup",
		    shown);
		goto done;
	}
	want = m->type == '1' ? files_member_size(l, m->link) : m->size;
	if ((m->type == '0' || m->type == '1') &&
	    (uint64_t)st.st_size != want)
		why = xasprintf("%s: %llu bytes in the backup, %llu on disk",
		    shown, (unsigned long long)want,
		    (unsigned long long)st.st_size);
done:
	free(path);
	free(shown);
	return why;
}

/* ---- restore: running tar --------------------------------------------- */

/*
 * Run tar with the archive at raw on its stdin, its stderr kept: the
 * bytes fed are the progress.  0 when it could be started (then see r),
 * -1 with *cause.
 */
static int
files_feed(struct job_ctx *ctx, const char *const *argv, const char *raw,
    struct files_run *r, char **cause)
{
	unsigned char *block = xmalloc(PIPE_BLOCK);
	size_t have = 0, off = 0;
	int64_t last = 0;
	struct stat st;
	struct proc p;
	ssize_t n;
	int fd, stop = 0;

	if ((fd = open(raw, O_RDONLY | O_CLOEXEC)) == -1) {
		*cause = xasprintf("%s: %s", raw, strerror(errno));
		free(block);
		return -1;
	}
	r->total = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	if (proc_spawn(&p, argv, files_tar_env, PROC_STDIN | PROC_STDOUT_NULL |
	    PROC_STDERR | PROC_NEWGROUP, cause) == -1) {
		close(fd);
		free(block);
		return -1;
	}
	fcntl(p.in_fd, F_SETFL, fcntl(p.in_fd, F_GETFL) | O_NONBLOCK);
	backend_progress(ctx, "restore", 0, r->total);
	while (p.in_fd != -1 || p.err_fd != -1) {
		struct pollfd pf[2] = { { p.in_fd, POLLOUT, 0 },
		    { p.err_fd, POLLIN, 0 } };

		if (files_is_cancelled(ctx)) {
			r->cancelled = stop = 1;
			break;
		}
		if (poll(pf, 2, FILES_POLL_MS) == -1 && errno != EINTR) {
			r->error = xasprintf("poll: %s", strerror(errno));
			stop = 1;
			break;
		}
		if (p.in_fd != -1 && (pf[0].revents & (POLLOUT | POLLERR |
		    POLLHUP))) {
			if (off == have) {
				if ((n = read(fd, block, PIPE_BLOCK)) == -1 &&
				    errno != EINTR) {
					r->error = xasprintf("reading %s: %s",
					    raw, strerror(errno));
					stop = 1;
					break;
				}
				have = n > 0 ? (size_t)n : 0;
				off = 0;
				if (n == 0) {
					close(p.in_fd);
					p.in_fd = -1;
				}
			}
			if (p.in_fd != -1 && off < have) {
				n = write(p.in_fd, block + off, have - off);
				if (n > 0) {
					off += (size_t)n;
					r->bytes += (uint64_t)n;
				} else if (n == -1 && errno != EAGAIN &&
				    errno != EINTR) {
					/* tar stopped reading: its status says */
					close(p.in_fd);
					p.in_fd = -1;
				}
			}
		}
		if (p.err_fd != -1 && (pf[1].revents & (POLLIN | POLLHUP |
		    POLLERR))) {
			char chunk[4096];

			n = read(p.err_fd, chunk, sizeof(chunk));
			if (n > 0)
				tail_add(&r->err, chunk, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(p.err_fd);
				p.err_fd = -1;
			}
		}
		if (mono_ms() - last >= FILES_PROGRESS_MS) {
			last = mono_ms();
			backend_progress(ctx, "restore", r->bytes, r->total);
		}
	}
	close(fd);
	free(block);
	if (stop) {
		kill(-p.pid, SIGTERM);
		proc_reap(&p, FILES_TERM_GRACE_MS, &r->status);
		return 0;
	}
	if (proc_wait(&p, &r->status) == -1) {
		*cause = xasprintf("waiting for tar: %s", strerror(errno));
		return -1;
	}
	backend_progress(ctx, "restore", r->bytes, r->total);
	return 0;
}

/* ---- restore: the backend --------------------------------------------- */

/*
 * Extract the archive into opts->into, into "/" (opts->replace without
 * into: where the files were), or (drill) into a scratch directory; then
 * look at every member on disk, and compare the archive with what the
 * manifest counted when the backup was prepared.
 *
 * Owners: as root, tar restores owners and modes as archived (numeric
 * ids: the backup was made with --numeric-owner); as anyone else, the
 * files are the restoring user's, with the archived modes.
 */
int
files_restore(struct job_ctx *ctx, const cJSON *manifest, const char *raw,
    const struct restore_opts *opts, cJSON *result, char **cause)
{
	const char *argv[16], *dest;
	const char *base = getenv("TMPDIR");
	cJSON *notes = cJSON_CreateArray(), *diffs = cJSON_CreateArray();
	const cJSON *missing;
	struct files_list l;
	struct files_run r;
	struct buf shown;
	struct stat st;
	uint64_t existing = 0, through = 0, ndiffs = 0;
	char *scratch = NULL, *err, *why, *st_text;
	double want;
	int root = geteuid() == 0, rc = -1, code;
	size_t n = 0;

	*cause = NULL;
	memset(&r, 0, sizeof(r));
	memset(&l, 0, sizeof(l));
	buf_init(&shown, 64 * 1024);
	buf_adds(&shown, "");
	backend_fact(result, "notes", notes);
	backend_fact(result, "differences", diffs);
	if (raw == NULL) {
		*cause = xstrdup("no archive to restore");
		goto done;
	}
	if (files_tar_list(ctx, raw, &l, cause) == -1) {
		why = *cause;
		*cause = xasprintf("%s%s", why, opts->drill ? "" :
		    "; nothing was restored");
		free(why);
		goto done;
	}

	if (opts->drill) {
		if (base == NULL || *base != '/')
			base = "/tmp";
		scratch = xasprintf("%s/bbrestore-files.XXXXXX", base);
		if (mkdtemp(scratch) == NULL) {
			*cause = xasprintf("cannot make a scratch directory %s: "
			    "%s", scratch, strerror(errno));
			free(scratch);
			scratch = NULL;
			goto done;
		}
		dest = scratch;
		cJSON_AddStringToObject(result, "into", "a scratch directory "
		    "(removed afterwards)");
	} else {
		if (opts->into == NULL && !opts->replace) {
			*cause = xstrdup("say where the files go: --into DIR, "
			    "or --replace to put them back where they were");
			goto done;
		}
		dest = opts->into != NULL ? opts->into : "/";
		cJSON_AddStringToObject(result, "into", dest);
		if (lstat(dest, &st) == -1 && errno == ENOENT) {
			if (dir_make(dest, 0700) == -1) {
				*cause = xasprintf("cannot create %s: %s", dest,
				    strerror(errno));
				goto done;
			}
			json_addf(notes, "created %s (mode 0700)", dest);
		} else if (stat(dest, &st) == -1 || !S_ISDIR(st.st_mode)) {
			*cause = xasprintf("%s is not a directory", dest);
			goto done;
		}
		/* Nothing is written before we know nothing is in the way. */
		files_conflicts(dest, &l, strcmp(dest, "/") != 0, &existing,
		    &through, &shown);
		if (through > 0) {
			*cause = xasprintf("%llu member%s of the backup would be "
			    "written through a symbolic link, outside %s: %s; "
			    "nothing was restored (restore --into an empty "
			    "directory)", (unsigned long long)through,
			    through == 1 ? "" : "s", dest, shown.data);
			goto done;
		}
		if (existing > 0 && !opts->replace) {
			*cause = xasprintf("%llu file%s would be overwritten in "
			    "%s: %s; nothing was restored (restore --into an "
			    "empty directory, or with --replace to overwrite "
			    "them)", (unsigned long long)existing,
			    existing == 1 ? "" : "s", dest, shown.data);
			goto done;
		}
	}

	argv[n++] = "tar";
	argv[n++] = "--extract";
	argv[n++] = "--file=-";
	argv[n++] = "--numeric-owner";
	argv[n++] = "--same-permissions";
	argv[n++] = root ? "--same-owner" : "--no-same-owner";
	if (!opts->replace)
		argv[n++] = "--keep-old-files";	/* a second guard */
	argv[n++] = "-C";
	argv[n++] = dest;
	argv[n] = NULL;
	backend_log(ctx, "info", "extracting %zu member%s into %s", l.n,
	    l.n == 1 ? "" : "s", opts->drill ? "a scratch directory" : dest);
	if (files_feed(ctx, argv, raw, &r, cause) == -1)
		goto done;
	if (r.cancelled) {
		*cause = xstrdup("cancelled");
		goto done;
	}
	if (r.error != NULL) {
		*cause = r.error;
		r.error = NULL;
		goto done;
	}
	code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
	if (code != 0) {
		err = files_err_text(&r.err, FILES_STDERR_LINES);
		st_text = proc_status_text(r.status);
		*cause = xasprintf("tar %s%s%s%s%s", WIFSIGNALED(r.status) ?
		    "was " : "", st_text, *err != '\0' ? ": " : "", err,
		    opts->drill ? "" : " (some files may have been written)");
		free(st_text);
		free(err);
		goto done;
	}

	/* Every member, on disk. */
	for (size_t i = 0; i < l.n; i++) {
		if ((why = files_member_check(dest, &l, &l.v[i])) == NULL)
			continue;
		if (ndiffs++ < FILES_DIFFS_MAX)
			cJSON_AddItemToArray(diffs, cJSON_CreateString(why));
		free(why);
	}
	if (ndiffs > FILES_DIFFS_MAX)
		json_addf(notes, "and %llu more differences",
		    (unsigned long long)(ndiffs - FILES_DIFFS_MAX));
	/*
	 * The manifest counted the files when the backup was prepared,
	 * just before tar read them (sizes as the disk holds them: a sparse
	 * file counts what it stores).  A different count, or fewer bytes
	 * than it counted, means files went missing on the way.
	 */
	if (json_get_num(manifest, "files", &want) == 0 && (want < 0 ||
	    (uint64_t)want != l.files)) {
		why = xasprintf("%.0f files when the backup was prepared, %llu "
		    "in the archive", want, (unsigned long long)l.files);
		cJSON_AddItemToArray(diffs, cJSON_CreateString(why));
		free(why);
	}
	if (json_get_num(manifest, "size", &want) == 0 && want > 0 &&
	    (uint64_t)want > l.bytes) {
		why = xasprintf("%.0f bytes of files when the backup was "
		    "prepared, %llu in the archive", want,
		    (unsigned long long)l.bytes);
		cJSON_AddItemToArray(diffs, cJSON_CreateString(why));
		free(why);
	}
	cJSON_AddNumberToObject(result, "compared", (double)l.n);
	cJSON_AddNumberToObject(result, "files", (double)l.files);
	cJSON_AddNumberToObject(result, "bytes", (double)l.bytes);

	json_addf(notes, "%llu file%s (%llu bytes), %llu director%s, %llu "
	    "symbolic link%s%s", (unsigned long long)l.files,
	    l.files == 1 ? "" : "s", (unsigned long long)l.bytes,
	    (unsigned long long)l.dirs, l.dirs == 1 ? "y" : "ies",
	    (unsigned long long)l.links, l.links == 1 ? "" : "s",
	    opts->drill ? " extracted and compared" : " restored");
	if (!opts->drill) {
		if (existing > 0)
			json_addf(notes, "--replace: %llu existing file%s "
			    "overwritten", (unsigned long long)existing,
			    existing == 1 ? " was" : "s were");
		json_addf(notes, root ? "owners and modes as in the backup" :
		    "modes as in the backup; owned by the restoring user (only "
		    "root can restore owners)");
		if (opts->into != NULL)
			json_addf(notes, "the paths are as backed up, under "
			    "%s (/etc/nginx is %s/etc/nginx)", dest, dest);
	}
	missing = cJSON_GetObjectItemCaseSensitive(manifest, "missing");
	if (cJSON_GetArraySize(missing) > 0) {
		const cJSON *it;

		buf_reset(&shown);
		buf_adds(&shown, "");
		cJSON_ArrayForEach(it, missing)
			if (cJSON_IsString(it))
				buf_addf(&shown, "%s%s", shown.len > 0 ? ", " :
				    "", it->valuestring);
		json_addf(notes, "not in this backup (missing when it was "
		    "made): %s", shown.data);
	}
	if (cJSON_GetArraySize(diffs) > 0) {
		int nd = cJSON_GetArraySize(diffs);

		*cause = xasprintf("%d difference%s: %s%s", nd, nd == 1 ? "" :
		    "s", cJSON_GetArrayItem(diffs, 0)->valuestring, nd > 1 ?
		    " ..." : "");
		goto done;
	}
	rc = 0;
done:
	if (scratch != NULL) {
		dir_remove_tree(scratch);
		free(scratch);
	}
	free(r.error);
	buf_release(&shown);
	files_list_free(&l);
	return rc;
}
