/*
 * testutil.h - small helpers shared by the unit tests: throwaway
 * directories, writing and reading files, counting substrings.
 *
 * Everything is static inline so that a test file can include this header
 * and use only what it needs without -Wunused-function warnings.
 * Include it after <cmocka.h>.
 *
 * tu_run_tests() runs a test array like cmocka_run_group_tests(), leaving
 * out the tests named in $BB_TEST_SKIP (comma separated): handy to check
 * that everything else is clean under ASan while a known bug is open.
 */
#ifndef BB_TESTUTIL_H
#define BB_TESTUTIL_H

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* A valid [matrix] section, 6 lines: config tests add to it. */
#define GOOD_MATRIX \
	"[matrix]\n" \
	"homeserver = https://matrix.example.org\n" \
	"user_id = @backupbot:example.org\n" \
	"access_token_file = /etc/backupbot/token\n" \
	"rooms = !ops:example.org\n" \
	"admins = @alice:example.org\n"

/* A fresh directory under $TMPDIR (or /tmp); the caller frees the path. */
static inline char *
tu_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	path = xasprintf("%s/bbtest.XXXXXX", base);
	assert_non_null(mkdtemp(path));
	return path;
}

static inline int
tu_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* rm -rf path and free it. */
static inline void
tu_rmtree(char *path)
{
	if (path == NULL)
		return;
	nftw(path, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(path);
}

/* "dir/name" (caller frees). */
static inline char *
tu_path(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

/* Write len bytes to path with the given mode (enforced with chmod). */
static inline void
tu_write(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static inline void
tu_write_str(const char *path, const char *s, mode_t mode)
{
	tu_write(path, s, strlen(s), mode);
}

/* The whole file as a NUL-terminated string, or NULL (caller frees). */
static inline char *
tu_read(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t len = 0, alloc = 0, n;
	char chunk[4096];

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + n + 1 > alloc) {
			alloc = (len + n + 1) * 2;
			data = xrealloc(data, alloc);
		}
		memcpy(data + len, chunk, n);
		len += n;
	}
	fclose(f);
	if (data == NULL) {
		data = xmalloc(1);
	}
	data[len] = '\0';
	return data;
}

static inline int
tu_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Permission bits of path, or -1. */
static inline int
tu_mode(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return -1;
	return (int)(st.st_mode & 07777);
}

/* Non-overlapping occurrences of needle in haystack. */
static inline size_t
tu_count(const char *haystack, const char *needle)
{
	size_t n = 0, l = strlen(needle);

	if (l == 0)
		return 0;
	for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p += l)
		n++;
	return n;
}

static inline int
tu_endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Number of entries in dir whose name ends with suffix. */
static inline int
tu_count_files(const char *dir, const char *suffix)
{
	struct dirent **list = NULL;
	int k = scandir(dir, &list, NULL, alphasort), n = 0;

	for (int i = 0; i < k; i++) {
		if (list[i]->d_name[0] != '.' &&
		    tu_endswith(list[i]->d_name, suffix))
			n++;
		free(list[i]);
	}
	free(list);
	return n;
}

static inline int
tu_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p != NULL && *p != '\0'; ) {
		size_t len = strcspn(p, ",");

		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static inline int
tu_run_tests(const char *group, const struct CMUnitTest *tests, size_t n)
{
	const char *skip = getenv("BB_TEST_SKIP");
	struct CMUnitTest *keep = xcalloc(n, sizeof(*keep));
	size_t k = 0;
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (tu_listed(skip, tests[i].name))
			print_message("[ SKIPPED  ] %s (BB_TEST_SKIP)\n",
			    tests[i].name);
		else
			keep[k++] = tests[i];
	}
	rc = _cmocka_run_group_tests(group, keep, k, NULL, NULL);
	free(keep);
	return rc;
}

#define TU_RUN(tests) tu_run_tests(__FILE__, (tests), nitems(tests))

#endif
