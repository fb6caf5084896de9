/*
 * cmd.c - tokenizing chat commands and finding them in the table.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

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
