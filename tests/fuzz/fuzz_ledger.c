/*
 * fuzz_ledger.c - libFuzzer target for metrics_ledger_ends, the reader of
 * the job ledger (state_dir/ledger.jsonl) behind the metrics file, the
 * weekly summary and !status.  The ledger is a file: each input is
 * written as one, in a scratch state_dir.
 *
 * The first three bytes of an input are not part of the ledger.  Byte 0
 * puts something before it: nothing, short lines up to just before the
 * reader's 256 KiB chunk boundary (with or without a newline at their
 * end), or a line just under the reader's 64 KiB cap that the first line
 * of the input continues; bytes 1-2 are `tail` (0: the whole ledger).
 *
 * Checks metrics.h's contract against a plain reading of the same bytes:
 * fn gets exactly the "end" lines that are whole (newline-terminated),
 * at most 64 KiB long, parse as JSON objects and start in the last
 * `tail` bytes (plus the one byte the reader starts early), in order.
 * Like the reader, the plain reading passes over lines without the text
 * "end" in quotes without parsing them.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "json.h"
#include "metrics.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHUNK		(256 * 1024)	/* metrics.c: LEDGER_CHUNK */
#define LINE_MAX_LEN	(64 * 1024)	/* metrics.c: LEDGER_LINE_MAX */
#define MAX_ENDS	4096

static char		*dir, *path;
static struct config	 cfg;

struct seen {
	char	*v[MAX_ENDS];
	size_t	 n;
	int	 over;
};

static void
cleanup(void)
{
	if (dir != NULL)
		dir_remove_tree(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	dir = xasprintf("%s/bbfuzz-ledger.XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	path = xasprintf("%s/ledger.jsonl", dir);
	cfg.state_dir = dir;
	atexit(cleanup);
	return 0;
}

static void
seen_add(struct seen *s, const cJSON *end)
{
	if (s->n == MAX_ENDS) {
		s->over = 1;
		return;
	}
	s->v[s->n++] = cJSON_PrintUnformatted(end);
}

static void
seen_release(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
}

static void
on_end(const cJSON *end, void *arg)
{
	if (!cJSON_IsObject(end) || strcmp(json_text(end, "event"), "end"))
		abort();
	(void)metrics_is_failed_backup(end);
	seen_add(arg, end);
}

/* What the reader should find in ledger[0..n) for tail. */
static void
expect(const char *ledger, size_t n, size_t tail, struct seen *want)
{
	size_t from = tail > 0 && n > tail ? n - tail - 1 : 0, s, len, shown;
	const char *nl, *nul;
	cJSON *j;

	for (s = 0; s < n; s += len + 1) {
		if ((nl = memchr(ledger + s, '\n', n - s)) == NULL)
			break;		/* being written */
		len = (size_t)(nl - (ledger + s));
		/* from > 0: skipped up to the first newline at or after it */
		if ((from > 0 && s <= from) || len == 0 || len > LINE_MAX_LEN)
			continue;
		/* the reader's strstr sees the line up to its first NUL */
		if ((nul = memchr(ledger + s, '\0', len)) != NULL)
			shown = (size_t)(nul - (ledger + s));
		else
			shown = len;
		if (memmem(ledger + s, shown, "\"end\"", 5) != NULL &&
		    (j = cJSON_ParseWithLength(ledger + s, len)) != NULL) {
			if (cJSON_IsObject(j) &&
			    !strcmp(json_text(j, "event"), "end"))
				seen_add(want, j);
			cJSON_Delete(j);
		}
	}
}

/* Lines of 'x' filling n bytes, the last newline left out if open. */
static void
filler(char *p, size_t n, int open)
{
	memset(p, 'x', n);
	for (size_t i = 999; i < n; i += 1000)
		p[i] = '\n';
	if (n > 0)
		p[n - 1] = open ? 'x' : '\n';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen got, want;
	size_t pad, n, tail;
	char *ledger, *cause = (char *)"unset";
	int fd, mode;

	if (size < 3)
		return 0;
	mode = data[0] & 3;
	tail = (size_t)data[1] << 8 | data[2];
	switch (mode) {
	case 0:
		pad = 0;
		break;
	case 1:		/* whole lines up to just before the chunk boundary */
	case 2:		/* the same, the last one continued by the input */
		pad = CHUNK - 1 - (size_t)(data[0] >> 2) * 13;
		break;
	default:	/* a line of about LINE_MAX_LEN, continued */
		pad = LINE_MAX_LEN - 64 + (size_t)(data[0] >> 2) * 2;
		break;
	}
	n = pad + size - 3;
	ledger = xmalloc(n > 0 ? n : 1);
	if (mode == 3)
		memset(ledger, 'x', pad);
	else
		filler(ledger, pad, mode == 2);
	memcpy(ledger + pad, data + 3, size - 3);

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 || (n > 0 && write(fd, ledger, n) != (ssize_t)n) ||
	    close(fd) == -1)
		abort();

	memset(&got, 0, sizeof(got));
	memset(&want, 0, sizeof(want));
	if (metrics_ledger_ends(&cfg, tail, on_end, &got, &cause) != 0 ||
	    cause != NULL)
		abort();
	expect(ledger, n, tail, &want);
	if (!got.over && !want.over) {
		if (got.n != want.n)
			abort();
		for (size_t i = 0; i < got.n; i++)
			if (strcmp(got.v[i], want.v[i]) != 0)
				abort();
	}
	seen_release(&got);
	seen_release(&want);
	free(ledger);
	return 0;
}
