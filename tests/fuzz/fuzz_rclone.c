/*
 * fuzz_rclone.c - libFuzzer target for media_log_line: rclone's stderr
 * under --use-json-log (stats objects, error lines, plain-text lines
 * such as its final "Failed to sync: ...").  The input is split into
 * lines as media.c's media_stderr splits a child's stderr, and each line
 * is passed without its newline and without a NUL after it.
 *
 * Checks media.h's contract: the return is 0, 1 (a stats object, then
 * st->seen) or 2 (a message, then msg is not empty, and trimmed as
 * media.c means it to be: no white space at either end); msg is always
 * NUL-terminated inside msgsize and holds no control characters, nor
 * does st->last_error.  Each line is read twice: into the 512-byte
 * buffer media.c uses, and into a small one, whose message must be a
 * cut-down copy of the first.
 *
 * The other readers of rclone's output are static (media.c:
 * media_lsjson_line, media_check_line; remote.c: the lsjson parsing in
 * remote_stat and remote_list, remote_stderr_text) and not reached here.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MSG_SIZE	512	/* as media.c's media_line */

static void
check_text(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n == size)
		abort();	/* not NUL-terminated in its buffer */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

static int
check_line(const char *line, size_t len, struct media_stats *st, char *msg,
    size_t msgsize)
{
	int rc;

	memset(msg, 'X', msgsize);
	rc = media_log_line(line, len, st, msg, msgsize);
	if (rc < 0 || rc > 2)
		abort();
	if (msgsize == 0)
		return rc;
	check_text(msg, msgsize);
	if ((rc == 2) != (msg[0] != '\0'))
		abort();
	/* str_trim'd (util.h): an empty message is no message */
	if (rc == 2 && (isspace((unsigned char)msg[0]) ||
	    isspace((unsigned char)msg[strlen(msg) - 1])))
		abort();
	if (rc == 1 && !st->seen)
		abort();
	check_text(st->last_error, sizeof(st->last_error));
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	struct media_stats st, st_small;
	char *msg = malloc(MSG_SIZE), *small;
	size_t len, small_size;
	int rc, rc_small;

	memset(&st, 0, sizeof(st));
	memset(&st_small, 0, sizeof(st_small));
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl != NULL ? nl : end) - p);

		/* exactly as long as asked: ASan sees any write past it */
		small_size = len % 24;
		small = malloc(small_size > 0 ? small_size : 1);
		rc = check_line(p, len, &st, msg, MSG_SIZE);
		rc_small = check_line(p, len, &st_small, small, small_size);
		if (small_size > 0) {
			if ((rc_small == 1) != (rc == 1))
				abort();
			if (rc_small == 2 && (rc != 2 || strncmp(msg, small,
			    strlen(small)) != 0))
				abort();
		}
		free(small);
		if (nl == NULL)
			break;
	}
	free(msg);
	return 0;
}
