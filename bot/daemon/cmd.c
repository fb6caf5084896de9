/*
 * cmd.c - tokenizing chat commands and finding them in the table.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

int
cmd_valid_text(const char *s, size_t len)
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
cmd_argv_free(int argc, char **argv)
{
	if (argv == NULL)
		return;
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

int
cmd_tokenize(const char *line, char ***argvp, char **cause)
{
	size_t len = strlen(line);
	char **argv = NULL, *word = NULL;
	int argc = 0;
	size_t wl = 0;
	int in_word = 0;
	const char *p;

	*argvp = NULL;
	*cause = NULL;
	if (len > CMD_MAX_LEN) {
		*cause = xasprintf("command too long (%zu bytes, at most %d)",
		    len, CMD_MAX_LEN);
		return -1;
	}
	if (!cmd_valid_text(line, len)) {
		*cause = xstrdup("command contains invalid UTF-8 or control "
		    "characters");
		return -1;
	}
	word = xmalloc(len + 1);
	argv = xcalloc(CMD_MAX_ARGS + 1, sizeof(*argv));
	for (p = line; ; p++) {
		char c = *p;

		if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
			if (in_word) {
				if (argc == CMD_MAX_ARGS) {
					*cause = xasprintf("too many arguments"
					    " (at most %d)", CMD_MAX_ARGS - 1);
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
	cmd_argv_free(argc, argv);
	return -1;
}

const char *
cmd_extract(const char *body, const char *prefix)
{
	const char *p = body;
	size_t plen = strlen(prefix);

	/* Reply fallback: "> <@user:server> text" lines, then a blank line. */
	if (p[0] == '>' && (p[1] == ' ' || p[1] == '\n' || p[1] == '\0')) {
		while (p[0] == '>') {
			const char *nl = strchr(p, '\n');

			if (nl == NULL)
				return NULL;	/* nothing but the quote */
			p = nl + 1;
		}
		if (*p == '\n')
			p++;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (plen == 0 || strncmp(p, prefix, plen) != 0)
		return NULL;
	p += plen;
	/* "!" alone or "! help" is not a command */
	if (*p == '\0' || *p == ' ' || *p == '\t' || *p == '\n')
		return NULL;
	return p;
}

int
cmd_distance(const char *a, const char *b, int max)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[64], best;

	if (la >= nitems(row) || lb >= nitems(row))
		return max + 1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int prev = row[0], tmp;

		row[0] = (int)i;
		best = row[0];
		for (size_t j = 1; j <= lb; j++) {
			int cost = a[i - 1] != b[j - 1];
			int v = prev + cost;

			if (row[j] + 1 < v)
				v = row[j] + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			tmp = row[j];
			row[j] = v;
			prev = tmp;
			if (v < best)
				best = v;
		}
		if (best > max)
			return max + 1;
	}
	return row[lb] > max ? max + 1 : row[lb];
}

const struct cmd_entry *
cmd_find(const char *name, char **suggest)
{
	const struct cmd_entry *found = NULL, *near = NULL;
	int matches = 0, best = 3;
	size_t n = strlen(name);

	if (suggest != NULL)
		*suggest = NULL;
	for (size_t i = 0; cmd_table[i] != NULL; i++) {
		const struct cmd_entry *c = cmd_table[i];

		if (!strcmp(c->name, name) ||
		    (c->alias != NULL && !strcmp(c->alias, name)))
			return c;
		if (n > 0 && !strncmp(c->name, name, n)) {
			found = c;
			matches++;
		}
	}
	if (matches == 1)
		return found;
	if (suggest == NULL)
		return NULL;
	if (matches > 1) {
		struct buf b;

		buf_init(&b, 1024);
		for (size_t i = 0; cmd_table[i] != NULL; i++)
			if (!strncmp(cmd_table[i]->name, name, n))
				buf_addf(&b, "%s%s", b.len ? ", " : "",
				    cmd_table[i]->name);
		*suggest = buf_detach(&b, NULL);
		return NULL;
	}
	for (size_t i = 0; cmd_table[i] != NULL; i++) {
		int d = cmd_distance(name, cmd_table[i]->name, 2);

		if (d < best) {
			best = d;
			near = cmd_table[i];
		}
	}
	if (near != NULL)
		*suggest = xstrdup(near->name);
	return NULL;
}

char *
cmd_usage(const struct cmd_entry *c, const char *prefix)
{
	if (c->usage != NULL && c->usage[0] != '\0')
		return xasprintf("%s%s %s", prefix, c->name, c->usage);
	return xasprintf("%s%s", prefix, c->name);
}
