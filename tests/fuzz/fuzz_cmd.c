/*
 * fuzz_cmd.c - libFuzzer target for the command line side: cmd_extract,
 * argv_split, cmd_find, cmd_distance and argv_valid_text on a message
 * body (the input, as a NUL-terminated string).
 *
 * Besides "no crash, no leak, no UB" it checks what the tokenizer
 * promises: argv is NULL-terminated, at most CMD_MAX_ARGS words, and
 * every word is valid text (quotes and escapes never split a UTF-8
 * sequence).  A broken promise aborts, which libFuzzer reports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_line(const char *line)
{
	char **argv = NULL, *cause = NULL, *suggest = NULL;
	int argc = argv_split(line, &argv, &cause);

	if (argc < 0) {
		if (cause == NULL || argv != NULL)
			abort();
		free(cause);
		return;
	}
	if (cause != NULL || argv == NULL || argc > CMD_MAX_ARGS ||
	    argv[argc] != NULL)
		abort();
	for (int i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (n > strlen(line) || !argv_valid_text(argv[i], n))
			abort();
	}
	if (argc > 0) {
		const struct cmd_entry *c = cmd_find(argv[0], &suggest);

		if (c != NULL && suggest != NULL)
			abort();
		if (c != NULL) {
			char *u = cmd_usage(c, "!");

			free(u);
		}
		free(suggest);
		/* the lookup without a suggestion must agree */
		if (cmd_find(argv[0], NULL) != c)
			abort();
		for (int i = 0; i < argc; i++) {
			int d = cmd_distance(argv[i], argv[0], 3);

			if (d < 0 || d > 4 || (i == 0 && d != 0 &&
			    strlen(argv[0]) < 64))
				abort();
		}
	}
	argv_free(argc, argv);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = xmalloc(size + 1);
	const char *line;

	memcpy(body, data, size);
	body[size] = '\0';

	/* the raw bytes, length-delimited (may contain NULs) */
	(void)argv_valid_text((const char *)data, size);

	/* the whole body as a command line */
	check_line(body);

	/* as a message body, with the default and a longer prefix */
	if ((line = cmd_extract(body, "!")) != NULL) {
		if (line < body || line > body + strlen(body))
			abort();
		check_line(line);
	}
	if ((line = cmd_extract(body, "bb:")) != NULL) {
		if (line < body || line > body + strlen(body))
			abort();
		check_line(line);
	}
	free(body);
	return 0;
}
