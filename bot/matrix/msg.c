/*
 * msg.c - plain + HTML message building, size limits, relations.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "msg.h"
#include "util.h"

#define MSG_BUF_CAP	(4 * 1024 * 1024)

void
msg_init(struct msg *m)
{
	memset(m, 0, sizeof(*m));
	buf_init(&m->plain, MSG_BUF_CAP);
	buf_init(&m->html, MSG_BUF_CAP);
	buf_add(&m->plain, "", 0);
	buf_add(&m->html, "", 0);
}

void
msg_release(struct msg *m)
{
	buf_release(&m->plain);
	buf_release(&m->html);
	free(m->cut_plain);
	free(m->cut_html);
	memset(m, 0, sizeof(*m));
}

char *
msg_html_escape(const char *s)
{
	struct buf b;

	buf_init(&b, (size_t)-1 / 2);
	buf_add(&b, "", 0);
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': buf_adds(&b, "&amp;"); break;
		case '<': buf_adds(&b, "&lt;"); break;
		case '>': buf_adds(&b, "&gt;"); break;
		case '"': buf_adds(&b, "&quot;"); break;
		case '\'': buf_adds(&b, "&#39;"); break;
		default: buf_add(&b, s, 1); break;
		}
	}
	return buf_detach(&b, NULL);
}

/* Append one piece: plain text and its HTML, then mark the boundary. */
static void
piece(struct msg *m, const char *plain, const char *html)
{
	if (m->plain.overflow || m->html.overflow)
		return;
	if (buf_adds(&m->plain, plain) == -1 ||
	    buf_adds(&m->html, html) == -1) {
		m->truncated = 1;
		return;
	}
	m->cut_plain = xrealloc(m->cut_plain,
	    (m->ncuts + 1) * sizeof(*m->cut_plain));
	m->cut_html = xrealloc(m->cut_html,
	    (m->ncuts + 1) * sizeof(*m->cut_html));
	m->cut_plain[m->ncuts] = m->plain.len;
	m->cut_html[m->ncuts] = m->html.len;
	m->ncuts++;
}

void
msg_append(struct msg *m, const struct msg *src)
{
	size_t p0 = 0, h0 = 0;

	/* piece by piece, so the boundaries stay where they were */
	for (size_t i = 0; i < src->ncuts; i++) {
		char *pl = xstrndup(src->plain.data + p0, src->cut_plain[i] - p0);
		char *ht = xstrndup(src->html.data + h0, src->cut_html[i] - h0);

		piece(m, pl, ht);
		free(pl);
		free(ht);
		p0 = src->cut_plain[i];
		h0 = src->cut_html[i];
	}
	if (src->truncated)
		m->truncated = 1;
}

static void
wrapped(struct msg *m, const char *open, const char *s, const char *close)
{
	char *e = msg_html_escape(s);
	char *h = xasprintf("%s%s%s", open, e, close);

	piece(m, s, h);
	free(h);
	free(e);
}

void
msg_text(struct msg *m, const char *s)
{
	wrapped(m, "", s, "");
}

void
msg_textf(struct msg *m, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	msg_text(m, s);
	free(s);
}

void
msg_bold(struct msg *m, const char *s)
{
	wrapped(m, "<b>", s, "</b>");
}

void
msg_code(struct msg *m, const char *s)
{
	wrapped(m, "<code>", s, "</code>");
}

void
msg_pre(struct msg *m, const char *s)
{
	char *e = msg_html_escape(s);
	char *h = xasprintf("<pre><code>%s</code></pre>", e);
	char *p = xasprintf("%s%s\n", m->plain.len &&
	    m->plain.data[m->plain.len - 1] != '\n' ? "\n" : "", s);

	piece(m, p, h);
	free(p);
	free(h);
	free(e);
}

void
msg_nl(struct msg *m)
{
	piece(m, "\n", "<br>\n");
}

void
msg_link(struct msg *m, const char *url, const char *label)
{
	char *eu = msg_html_escape(url), *el = msg_html_escape(label);
	char *h = xasprintf("<a href=\"%s\">%s</a>", eu, el);
	char *p = xasprintf("%s (%s)", label, url);

	piece(m, p, h);
	free(p);
	free(h);
	free(el);
	free(eu);
}

static cJSON *
content_at(struct msg *m, size_t cut, int truncated)
{
	cJSON *c = cJSON_CreateObject();
	size_t pl = cut ? m->cut_plain[cut - 1] : 0;
	size_t hl = cut ? m->cut_html[cut - 1] : 0;
	char *plain = xstrndup(m->plain.data, pl);
	char *html = xstrndup(m->html.data, hl);

	if (truncated) {
		char *p2 = xasprintf("%s\n… (message truncated: %zu of %zu "
		    "bytes shown)", plain, pl, m->plain.len);
		char *h2 = xasprintf("%s<br>\n<i>… (message truncated: %zu of "
		    "%zu bytes shown)</i>", html, pl, m->plain.len);

		free(plain);
		free(html);
		plain = p2;
		html = h2;
	}
	cJSON_AddStringToObject(c, "msgtype", "m.notice");
	cJSON_AddStringToObject(c, "body", plain);
	cJSON_AddStringToObject(c, "format", "org.matrix.custom.html");
	cJSON_AddStringToObject(c, "formatted_body", html);
	/* Empty unless a caller pings on purpose: a user named in the text
	 * is then not pinged through the legacy push rules. */
	cJSON_AddObjectToObject(c, "m.mentions");
	free(plain);
	free(html);
	return c;
}

static size_t
content_size(cJSON *c)
{
	char *s = cJSON_PrintUnformatted(c);
	size_t n = strlen(s);

	free(s);
	return n;
}

cJSON *
msg_content(struct msg *m, size_t max)
{
	cJSON *c = content_at(m, m->ncuts, m->truncated);
	size_t lo = 0, hi;

	if (content_size(c) <= max)
		return c;
	cJSON_Delete(c);
	/* Largest number of pieces that fits, by bisection. */
	hi = m->ncuts;
	while (lo < hi) {
		size_t mid = (lo + hi + 1) / 2;

		c = content_at(m, mid, 1);
		if (content_size(c) <= max)
			lo = mid;
		else
			hi = mid - 1;
		cJSON_Delete(c);
	}
	c = content_at(m, lo, 1);
	if (content_size(c) > max) {
		/* Even one piece is too big: say so rather than send it. */
		cJSON_Delete(c);
		c = content_at(m, 0, 1);
	}
	return c;
}

void
msg_set_thread(cJSON *content, const char *root, const char *reply_to)
{
	cJSON *rel = cJSON_CreateObject(), *irt = cJSON_CreateObject();

	cJSON_AddStringToObject(rel, "rel_type", "m.thread");
	cJSON_AddStringToObject(rel, "event_id", root);
	cJSON_AddBoolToObject(rel, "is_falling_back", 1);
	cJSON_AddStringToObject(irt, "event_id", reply_to);
	cJSON_AddItemToObject(rel, "m.in_reply_to", irt);
	cJSON_DeleteItemFromObject(content, "m.relates_to");
	cJSON_AddItemToObject(content, "m.relates_to", rel);
}

cJSON *
msg_make_edit(cJSON *new_content, const char *event_id)
{
	cJSON *c = cJSON_CreateObject(), *rel = cJSON_CreateObject();
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(new_content, "body");
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(new_content,
	    "formatted_body");
	char *s;

	cJSON_DeleteItemFromObject(new_content, "m.relates_to");
	cJSON_AddStringToObject(c, "msgtype", "m.notice");
	s = xasprintf("* %s", cJSON_IsString(b) ? b->valuestring : "");
	cJSON_AddStringToObject(c, "body", s);
	free(s);
	if (cJSON_IsString(f)) {
		cJSON_AddStringToObject(c, "format", "org.matrix.custom.html");
		s = xasprintf("* %s", f->valuestring);
		cJSON_AddStringToObject(c, "formatted_body", s);
		free(s);
	}
	cJSON_AddItemToObject(c, "m.new_content", new_content);
	cJSON_AddObjectToObject(c, "m.mentions");	/* no new pings */
	cJSON_AddStringToObject(rel, "rel_type", "m.replace");
	cJSON_AddStringToObject(rel, "event_id", event_id);
	cJSON_AddItemToObject(c, "m.relates_to", rel);
	return c;
}

cJSON *
msg_reaction(const char *event_id, const char *key)
{
	cJSON *c = cJSON_CreateObject(), *rel = cJSON_CreateObject();

	cJSON_AddStringToObject(rel, "rel_type", "m.annotation");
	cJSON_AddStringToObject(rel, "event_id", event_id);
	cJSON_AddStringToObject(rel, "key", key);
	cJSON_AddItemToObject(c, "m.relates_to", rel);
	return c;
}

/* Cut a string to at most n bytes at a UTF-8 boundary. */
static char *
utf8_cut(const char *s, size_t n)
{
	size_t len = strlen(s);

	if (len <= n)
		return xstrdup(s);
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return xstrndup(s, n);
}

int
msg_shrink(cJSON *content)
{
	cJSON *target = cJSON_GetObjectItemCaseSensitive(content,
	    "m.new_content");
	cJSON *body;
	char *cut, *s;
	size_t len;

	if (!cJSON_IsObject(target))
		target = content;
	body = cJSON_GetObjectItemCaseSensitive(target, "body");
	if (!cJSON_IsString(body) || (len = strlen(body->valuestring)) < 64)
		return -1;
	cut = utf8_cut(body->valuestring, len / 2);
	s = xasprintf("%s\n… (message truncated by the server's size limit)",
	    cut);
	free(cut);
	if (strlen(s) >= len) {
		/* Too short for half of it plus the note to be any smaller. */
		free(s);
		return -1;
	}
	/* The HTML cannot be cut safely; the plain body carries the text. */
	cJSON_DeleteItemFromObject(target, "format");
	cJSON_DeleteItemFromObject(target, "formatted_body");
	if (target != content) {
		cJSON_DeleteItemFromObject(content, "format");
		cJSON_DeleteItemFromObject(content, "formatted_body");
	}
	cJSON_ReplaceItemInObjectCaseSensitive(target, "body",
	    cJSON_CreateString(s));
	free(s);
	if (target != content) {
		body = cJSON_GetObjectItemCaseSensitive(content, "body");
		if (cJSON_IsString(body)) {
			cut = utf8_cut(body->valuestring, len / 2);
			cJSON_ReplaceItemInObjectCaseSensitive(content, "body",
			    cJSON_CreateString(cut));
			free(cut);
		}
	}
	return 0;
}
