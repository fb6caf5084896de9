/*
 * test_msg.c - message building: escaping, plain + HTML, the size limit,
 * relations (threads, edits, reactions), shrinking after a 413.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cmd.h"
#include "msg.h"
#include "util.h"
#include "testutil.h"

static const char *
sget(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static const cJSON *
oget(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	assert_true(cJSON_IsObject(v));
	return v;
}

static size_t
serialized_size(const cJSON *c)
{
	char *s = cJSON_PrintUnformatted(c);
	size_t n;

	assert_non_null(s);
	n = strlen(s);
	free(s);
	return n;
}

/* Every '<' is closed by a '>' before the next '<' or the end. */
static int
tags_closed(const char *html)
{
	int open = 0;

	for (; *html != '\0'; html++) {
		if (*html == '<') {
			if (open)
				return 0;
			open = 1;
		} else if (*html == '>')
			open = 0;
	}
	return !open;
}

/* Every "&" starts a complete entity (none cut in half). */
static int
entities_whole(const char *html)
{
	for (const char *p = html; (p = strchr(p, '&')) != NULL; p++) {
		const char *semi = strchr(p, ';');

		if (semi == NULL || semi - p > 6)
			return 0;
	}
	return 1;
}

static int
valid_utf8(const char *s)
{
	return argv_valid_text(s, strlen(s));
}

static void
test_escape(void **state)
{
	char *e;

	(void)state;
	e = msg_html_escape("<a href=\"x\">'&'</a>");
	assert_string_equal(e, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;"
	    "&lt;/a&gt;");
	free(e);
	e = msg_html_escape("");
	assert_string_equal(e, "");
	free(e);
	e = msg_html_escape("plain bäckup 🚀");
	assert_string_equal(e, "plain bäckup 🚀");
	free(e);
	e = msg_html_escape("&amp;");
	assert_string_equal(e, "&amp;amp;");
	free(e);
}

static void
test_pieces(void **state)
{
	struct msg m;
	cJSON *c;

	(void)state;
	msg_init(&m);
	msg_text(&m, "value: ");
	msg_code(&m, "<script>&");
	msg_text(&m, " and ");
	msg_bold(&m, "b&b's \"best\"");
	msg_nl(&m);
	msg_textf(&m, "%d < %s", 3, "4");
	c = msg_content(&m, MSG_MAX_CONTENT);
	assert_non_null(c);
	assert_string_equal(sget(c, "msgtype"), "m.notice");
	assert_string_equal(sget(c, "format"), "org.matrix.custom.html");
	assert_string_equal(sget(c, "body"),
	    "value: <script>& and b&b's \"best\"\n3 < 4");
	assert_string_equal(sget(c, "formatted_body"),
	    "value: <code>&lt;script&gt;&amp;</code> and "
	    "<b>b&amp;b&#39;s &quot;best&quot;</b><br>\n3 &lt; 4");
	assert_int_equal(m.truncated, 0);
	cJSON_Delete(c);
	msg_release(&m);
}

static void
test_pre_and_link(void **state)
{
	struct msg m;
	cJSON *c;

	(void)state;
	msg_init(&m);
	msg_text(&m, "log:");
	msg_pre(&m, "a <b>\nc & d");
	msg_link(&m, "https://x.example/?a=1&b=<2>", "the \"docs\"");
	c = msg_content(&m, MSG_MAX_CONTENT);
	assert_string_equal(sget(c, "body"), "log:\na <b>\nc & d\n"
	    "the \"docs\" (https://x.example/?a=1&b=<2>)");
	assert_string_equal(sget(c, "formatted_body"), "log:"
	    "<pre><code>a &lt;b&gt;\nc &amp; d</code></pre>"
	    "<a href=\"https://x.example/?a=1&amp;b=&lt;2&gt;\">"
	    "the &quot;docs&quot;</a>");
	cJSON_Delete(c);
	msg_release(&m);

	/* a pre block at the start, or after a newline, adds no newline */
	msg_init(&m);
	msg_pre(&m, "x");
	msg_text(&m, "y\n");
	msg_pre(&m, "z");
	c = msg_content(&m, MSG_MAX_CONTENT);
	assert_string_equal(sget(c, "body"), "x\ny\nz\n");
	cJSON_Delete(c);
	msg_release(&m);
}

static void
test_empty_message(void **state)
{
	struct msg m;
	cJSON *c;

	(void)state;
	msg_init(&m);
	c = msg_content(&m, MSG_MAX_CONTENT);
	assert_string_equal(sget(c, "body"), "");
	assert_string_equal(sget(c, "formatted_body"), "");
	cJSON_Delete(c);
	msg_release(&m);
}

/* 200 KB of lines, cut to fit MSG_MAX_CONTENT. */
static void
test_content_limit(void **state)
{
	struct msg m;
	const char *body, *html;
	size_t total = 0;
	cJSON *c;
	int i;

	(void)state;
	msg_init(&m);
	for (i = 0; total < 200 * 1024; i++) {
		char line[128];

		snprintf(line, sizeof(line), "line %05d: <%s> & \"stuff\" "
		    "that needs escaping", i, i % 2 ? "odd" : "even");
		msg_code(&m, line);
		msg_nl(&m);
		total += strlen(line) + 1;
	}
	c = msg_content(&m, MSG_MAX_CONTENT);
	assert_true(serialized_size(c) <= MSG_MAX_CONTENT);
	/* and not absurdly less: the bisection keeps as much as fits */
	assert_true(serialized_size(c) > MSG_MAX_CONTENT - 400);
	body = sget(c, "body");
	html = sget(c, "formatted_body");
	assert_non_null(strstr(body, "\n… (message truncated: "));
	assert_true(tu_endswith(body, " bytes shown)"));
	assert_true(tu_endswith(html, " bytes shown)</i>"));
	assert_true(str_startswith(body, "line 00000: <even> & \"stuff\""));
	assert_true(tags_closed(html));
	assert_true(entities_whole(html));
	/* the kept part ends at a piece boundary */
	{
		const char *note = strstr(html, "<br>\n<i>… (message truncated");
		char *kept;

		assert_non_null(note);
		kept = xstrndup(html, (size_t)(note - html));
		assert_true(tu_endswith(kept, "</code>") ||
		    tu_endswith(kept, "<br>\n"));
		free(kept);
	}
	/* the note reports the real total */
	{
		char want[64];

		snprintf(want, sizeof(want), "of %zu bytes shown)", total);
		assert_true(tu_endswith(body, want));
	}
	cJSON_Delete(c);

	/* a smaller limit */
	c = msg_content(&m, 1000);
	assert_true(serialized_size(c) <= 1000);
	assert_true(tags_closed(sget(c, "formatted_body")));
	cJSON_Delete(c);
	msg_release(&m);
}

static void
test_content_limit_utf8(void **state)
{
	struct msg m;
	cJSON *c;

	(void)state;
	msg_init(&m);
	for (int i = 0; i < 4000; i++) {
		msg_text(&m, "äöü€🚀");
		msg_bold(&m, "日本");
		if (i % 7 == 0)
			msg_nl(&m);
	}
	for (size_t max = 300; max <= 30000; max = max * 3 + 17) {
		c = msg_content(&m, max);
		assert_true(serialized_size(c) <= max);
		assert_true(valid_utf8(sget(c, "body")));
		assert_true(valid_utf8(sget(c, "formatted_body")));
		assert_true(tags_closed(sget(c, "formatted_body")));
		assert_non_null(strstr(sget(c, "body"), "truncated"));
		cJSON_Delete(c);
	}
	msg_release(&m);
}

static void
test_content_one_huge_piece(void **state)
{
	struct msg m;
	char *big = xmalloc(100001);
	cJSON *c;

	(void)state;
	memset(big, 'x', 100000);
	big[100000] = '\0';
	msg_init(&m);
	msg_text(&m, big);
	c = msg_content(&m, MSG_MAX_CONTENT);
	assert_true(serialized_size(c) <= MSG_MAX_CONTENT);
	assert_string_equal(sget(c, "body"),
	    "\n… (message truncated: 0 of 100000 bytes shown)");
	cJSON_Delete(c);
	msg_release(&m);
	free(big);
}

static void
test_content_fits_exactly(void **state)
{
	struct msg m;
	cJSON *c;
	size_t full;

	(void)state;
	msg_init(&m);
	msg_text(&m, "hello ");
	msg_bold(&m, "world");
	c = msg_content(&m, MSG_MAX_CONTENT);
	full = serialized_size(c);
	cJSON_Delete(c);
	c = msg_content(&m, full);
	assert_string_equal(sget(c, "body"), "hello world");
	cJSON_Delete(c);
	c = msg_content(&m, full - 1);
	assert_true(serialized_size(c) <= full - 1 ||
	    strstr(sget(c, "body"), "truncated") != NULL);
	assert_null(strstr(sget(c, "body"), "world"));
	cJSON_Delete(c);
	msg_release(&m);
}

static void
test_thread(void **state)
{
	cJSON *c = cJSON_CreateObject();
	const cJSON *rel, *irt, *fb;
	char *s;

	(void)state;
	cJSON_AddStringToObject(c, "body", "hi");
	msg_set_thread(c, "$root:x", "$cmd:x");
	rel = oget(c, "m.relates_to");
	assert_string_equal(sget(rel, "rel_type"), "m.thread");
	assert_string_equal(sget(rel, "event_id"), "$root:x");
	fb = cJSON_GetObjectItemCaseSensitive(rel, "is_falling_back");
	assert_true(cJSON_IsTrue(fb));
	irt = oget(rel, "m.in_reply_to");
	assert_string_equal(sget(irt, "event_id"), "$cmd:x");
	assert_string_equal(sget(c, "body"), "hi");

	/* again: replaces, never duplicates */
	msg_set_thread(c, "$root2:x", "$cmd2:x");
	s = cJSON_PrintUnformatted(c);
	assert_int_equal(tu_count(s, "\"m.relates_to\""), 1);
	free(s);
	rel = oget(c, "m.relates_to");
	assert_string_equal(sget(rel, "event_id"), "$root2:x");
	cJSON_Delete(c);
}

static void
test_edit(void **state)
{
	struct msg m;
	cJSON *c, *e;
	const cJSON *nc, *rel;

	(void)state;
	msg_init(&m);
	msg_text(&m, "progress: ");
	msg_bold(&m, "50%");
	c = msg_content(&m, MSG_MAX_CONTENT);
	msg_release(&m);
	msg_set_thread(c, "$root", "$cmd");
	e = msg_make_edit(c, "$orig:x");
	assert_string_equal(sget(e, "msgtype"), "m.notice");
	assert_string_equal(sget(e, "body"), "* progress: 50%");
	assert_true(str_startswith(sget(e, "body"), "* "));
	assert_string_equal(sget(e, "format"), "org.matrix.custom.html");
	assert_string_equal(sget(e, "formatted_body"),
	    "* progress: <b>50%</b>");
	nc = oget(e, "m.new_content");
	assert_string_equal(sget(nc, "body"), "progress: 50%");
	assert_string_equal(sget(nc, "formatted_body"),
	    "progress: <b>50%</b>");
	assert_string_equal(sget(nc, "msgtype"), "m.notice");
	/* m.new_content carries no relation */
	assert_null(cJSON_GetObjectItemCaseSensitive(nc, "m.relates_to"));
	rel = oget(e, "m.relates_to");
	assert_string_equal(sget(rel, "rel_type"), "m.replace");
	assert_string_equal(sget(rel, "event_id"), "$orig:x");
	cJSON_Delete(e);	/* owns c */

	/* plain content without HTML */
	c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "body", "x");
	e = msg_make_edit(c, "$o");
	assert_string_equal(sget(e, "body"), "* x");
	assert_null(cJSON_GetObjectItemCaseSensitive(e, "formatted_body"));
	cJSON_Delete(e);
}

static void
test_reaction(void **state)
{
	cJSON *c = msg_reaction("$cmd:x", "👀");
	const cJSON *rel = oget(c, "m.relates_to");
	char *s;

	(void)state;
	assert_string_equal(sget(rel, "rel_type"), "m.annotation");
	assert_string_equal(sget(rel, "event_id"), "$cmd:x");
	assert_string_equal(sget(rel, "key"), "👀");
	s = cJSON_PrintUnformatted(c);
	assert_string_equal(s, "{\"m.relates_to\":{\"rel_type\":"
	    "\"m.annotation\",\"event_id\":\"$cmd:x\",\"key\":\"👀\"}}");
	free(s);
	cJSON_Delete(c);
}

#define SHRINK_NOTE "\n… (message truncated by the server's size limit)"

static void
test_shrink(void **state)
{
	char body[1001];
	cJSON *c = cJSON_CreateObject();
	const char *b;

	(void)state;
	memset(body, 'x', 1000);
	body[1000] = '\0';
	cJSON_AddStringToObject(c, "msgtype", "m.notice");
	cJSON_AddStringToObject(c, "body", body);
	cJSON_AddStringToObject(c, "format", "org.matrix.custom.html");
	cJSON_AddStringToObject(c, "formatted_body", "<b>x</b>");
	assert_int_equal(msg_shrink(c), 0);
	b = sget(c, "body");
	assert_int_equal(strlen(b), 500 + strlen(SHRINK_NOTE));
	assert_int_equal(strspn(b, "x"), 500);
	assert_string_equal(b + 500, SHRINK_NOTE);
	assert_null(cJSON_GetObjectItemCaseSensitive(c, "formatted_body"));
	assert_null(cJSON_GetObjectItemCaseSensitive(c, "format"));
	assert_string_equal(sget(c, "msgtype"), "m.notice");
	cJSON_Delete(c);
}

static void
test_shrink_small_or_odd(void **state)
{
	cJSON *c = cJSON_CreateObject();

	(void)state;
	cJSON_AddStringToObject(c, "body", "too short to shrink");
	cJSON_AddStringToObject(c, "formatted_body", "<b>x</b>");
	assert_int_equal(msg_shrink(c), -1);
	/* untouched */
	assert_string_equal(sget(c, "body"), "too short to shrink");
	assert_string_equal(sget(c, "formatted_body"), "<b>x</b>");
	cJSON_Delete(c);

	c = cJSON_CreateObject();	/* no body at all (a reaction) */
	assert_int_equal(msg_shrink(c), -1);
	cJSON_AddNumberToObject(c, "body", 5);
	assert_int_equal(msg_shrink(c), -1);
	cJSON_Delete(c);
}

static void
test_shrink_utf8_boundary(void **state)
{
	char body[256] = "a";
	cJSON *c = cJSON_CreateObject();

	(void)state;
	for (int i = 0; i < 100; i++)
		memcpy(body + 1 + 2 * i, "é", 3);	/* 201 bytes */
	cJSON_AddStringToObject(c, "body", body);
	assert_int_equal(msg_shrink(c), 0);
	assert_true(valid_utf8(sget(c, "body")));
	/* cut at byte 100 falls inside an 'é': backs up to 99 */
	assert_int_equal(strlen(sget(c, "body")), 99 + strlen(SHRINK_NOTE));
	cJSON_Delete(c);
}

static void
test_shrink_edit(void **state)
{
	char body[2001];
	cJSON *nc = cJSON_CreateObject(), *e;
	const cJSON *n;

	(void)state;
	memset(body, 'y', 2000);
	body[2000] = '\0';
	cJSON_AddStringToObject(nc, "msgtype", "m.notice");
	cJSON_AddStringToObject(nc, "body", body);
	cJSON_AddStringToObject(nc, "format", "org.matrix.custom.html");
	cJSON_AddStringToObject(nc, "formatted_body", "<i>y</i>");
	e = msg_make_edit(nc, "$orig");
	assert_int_equal(msg_shrink(e), 0);
	n = oget(e, "m.new_content");
	assert_int_equal(strspn(sget(n, "body"), "y"), 1000);
	assert_true(tu_endswith(sget(n, "body"), SHRINK_NOTE));
	assert_null(cJSON_GetObjectItemCaseSensitive(n, "formatted_body"));
	assert_null(cJSON_GetObjectItemCaseSensitive(e, "formatted_body"));
	assert_null(cJSON_GetObjectItemCaseSensitive(e, "format"));
	assert_true(strlen(sget(e, "body")) <= 1000);
	assert_true(str_startswith(sget(e, "body"), "* y"));
	/* the relation survives */
	assert_string_equal(sget(oget(e, "m.relates_to"), "rel_type"),
	    "m.replace");
	cJSON_Delete(e);
}

/*
 * Bug: msg_shrink halves the body and then appends a ~51-byte note, so a
 * body shorter than ~102 bytes never gets shorter: repeated 413s shrink
 * forever (the outbox retries at once each time) instead of giving up.
 * Every successful shrink must make the body strictly shorter, so that
 * repeated shrinking ends with -1.
 */
static void
test_shrink_terminates(void **state)
{
	char body[4097];
	cJSON *c = cJSON_CreateObject();
	size_t prev;
	int rounds = 0, shorter = 1;

	(void)state;
	memset(body, 'z', 4096);
	body[4096] = '\0';
	cJSON_AddStringToObject(c, "body", body);
	prev = strlen(body);
	while (shorter && rounds < 64 && msg_shrink(c) == 0) {
		size_t now = strlen(sget(c, "body"));

		if (now >= prev) {
			print_message("shrink %d: %zu -> %zu bytes\n", rounds,
			    prev, now);
			shorter = 0;
		}
		prev = now;
		rounds++;
	}
	cJSON_Delete(c);
	assert_true(shorter);
	assert_true(rounds < 64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_pre_and_link),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_content_limit),
		cmocka_unit_test(test_content_limit_utf8),
		cmocka_unit_test(test_content_one_huge_piece),
		cmocka_unit_test(test_content_fits_exactly),
		cmocka_unit_test(test_thread),
		cmocka_unit_test(test_edit),
		cmocka_unit_test(test_reaction),
		cmocka_unit_test(test_shrink),
		cmocka_unit_test(test_shrink_small_or_odd),
		cmocka_unit_test(test_shrink_utf8_boundary),
		cmocka_unit_test(test_shrink_edit),
		cmocka_unit_test(test_shrink_terminates),
	};

	return TU_RUN(tests);
}
