/*
 * argv.c - a line of words into argv, the way chat commands and the argvs
 * of bot.conf (script commands, hooks) are split; never by a shell.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "util.h"

int
argv_valid_text(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;

	while (p < end) {
		unsigned char c = *p;
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
				return 0;
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else
			return 0;
		if ((size_t)(end - p) <= n)
			return 0;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		/* C1 controls and bidi overrides could hide what runs */
		if ((cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a &&
		    cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
			return 0;
		p += n + 1;
	}
	return 1;
}

void
argv_free(int argc, char **argv)
{
	if (argv == NULL)
		return;
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

int
argv_split(const char *line, char ***argvp, char **cause)
{
	size_t len = strlen(line);
	char **argv = NULL, *word = NULL;
	int argc = 0;
	size_t wl = 0;
	int in_word = 0;
	const char *p;

	*argvp = NULL;
	*cause = NULL;
	if (len > ARGV_MAX_LEN) {
		*cause = xasprintf("command too long (%zu bytes, at most %d)",
		    len, ARGV_MAX_LEN);
		return -1;
	}
	if (!argv_valid_text(line, len)) {
		*cause = xstrdup("command contains invalid UTF-8 or control "
		    "characters");
		return -1;
	}
	word = xmalloc(len + 1);
	argv = xcalloc(ARGV_MAX_ARGS + 1, sizeof(*argv));
	for (p = line; ; p++) {
		char c = *p;

		if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
			if (in_word) {
				if (argc == ARGV_MAX_ARGS) {
					*cause = xasprintf("too many arguments"
					    " (at most %d)", ARGV_MAX_ARGS - 1);
					goto fail;
				}
				argv[argc++] = xstrndup(word, wl);
				wl = 0;
				in_word = 0;
			}
			if (c == '\0')
				break;
			continue;
		}
		in_word = 1;
		if (c == '\'') {
			for (p++; *p != '\'' && *p != '\0'; p++)
				word[wl++] = *p;
			if (*p == '\0') {
				*cause = xstrdup("unterminated ' quote");
				goto fail;
			}
		} else if (c == '"') {
			for (p++; *p != '"' && *p != '\0'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				word[wl++] = *p;
			}
			if (*p == '\0') {
				*cause = xstrdup("unterminated \" quote");
				goto fail;
			}
		} else if (c == '\\') {
			if (p[1] == '\0') {
				*cause = xstrdup("trailing backslash");
				goto fail;
			}
			word[wl++] = *++p;
		} else
			word[wl++] = c;
	}
	free(word);
	*argvp = argv;
	return argc;

fail:
	free(word);
	argv_free(argc, argv);
	return -1;
}
