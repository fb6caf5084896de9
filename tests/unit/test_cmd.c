/*
 * test_cmd.c - tokenizing command lines, extracting them from message
 * bodies, finding commands in the table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "util.h"
#include "testutil.h"

/* Tokenize line and compare with the expected words (NULL-terminated). */
static void
expect_words(const char *line, const char **want)
{
	char **argv = NULL, *cause = NULL;
	int argc, n = 0;

	while (want[n] != NULL)
		n++;
	argc = argv_split(line, &argv, &cause);
	if (argc != n)
		print_message("line [%s]: argc %d (%s), wanted %d\n", line,
		    argc, cause ? cause : "no cause", n);
	assert_int_equal(argc, n);
	assert_null(cause);
	assert_non_null(argv);
	for (int i = 0; i < n; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[n]);	/* argv is NULL-terminated */
	argv_free(argc, argv);
}

#define WORDS(...) ((const char *[]){ __VA_ARGS__, NULL })

/* Tokenizing must fail with exactly this cause. */
static void
expect_fail(const char *line, const char *want_cause)
{
	char **argv = (char **)0x1, *cause = NULL;
	int argc;

	argc = argv_split(line, &argv, &cause);
	assert_int_equal(argc, -1);
	assert_null(argv);
	assert_non_null(cause);
	assert_string_equal(cause, want_cause);
	free(cause);
}

#define BAD_TEXT "command contains invalid UTF-8 or control characters"

static void
test_plain_words(void **state)
{
	(void)state;
	expect_words("help", WORDS("help"));
	expect_words("backup now please", WORDS("backup", "now", "please"));
	expect_words("  backup   now\t\tplease  ", WORDS("backup", "now",
	    "please"));
	expect_words("backup\nnow", WORDS("backup", "now"));
	expect_words("a b c d e f", WORDS("a", "b", "c", "d", "e", "f"));
}

static void
test_empty(void **state)
{
	char **argv = NULL, *cause = NULL;

	(void)state;
	assert_int_equal(argv_split("", &argv, &cause), 0);
	assert_null(cause);
	assert_non_null(argv);
	assert_null(argv[0]);
	argv_free(0, argv);

	assert_int_equal(argv_split(" \t \n ", &argv, &cause), 0);
	assert_null(cause);
	argv_free(0, argv);

	argv_free(0, NULL);		/* harmless */
}

static void
test_single_quotes(void **state)
{
	(void)state;
	expect_words("say 'hello world'", WORDS("say", "hello world"));
	/* literal inside: backslashes and double quotes are kept */
	expect_words("say 'a\\b \"c\"'", WORDS("say", "a\\b \"c\""));
	expect_words("say ''", WORDS("say", ""));
	expect_words("'' '' x", WORDS("", "", "x"));
	expect_words("pre'fix mid'post", WORDS("prefix midpost"));
	expect_words("'a\tb'", WORDS("a\tb"));
}

static void
test_double_quotes(void **state)
{
	(void)state;
	expect_words("say \"hello world\"", WORDS("say", "hello world"));
	expect_words("say \"a \\\"quoted\\\" word\"",
	    WORDS("say", "a \"quoted\" word"));
	expect_words("say \"back\\\\slash\"", WORDS("say", "back\\slash"));
	/* other backslashes stay as they are */
	expect_words("say \"a\\nb\"", WORDS("say", "a\\nb"));
	expect_words("say \"it's\"", WORDS("say", "it's"));
	expect_words("\"\"", WORDS(""));
	expect_words("x\"y z\"'w v'", WORDS("xy zw v"));
	expect_words("\"a\\\\\" b", WORDS("a\\", "b"));
}

static void
test_backslash(void **state)
{
	(void)state;
	expect_words("a\\ b c", WORDS("a b", "c"));
	expect_words("\\'x\\'", WORDS("'x'"));
	expect_words("\\\"x", WORDS("\"x"));
	expect_words("a\\\\b", WORDS("a\\b"));
	expect_words("\\ ", WORDS(" "));
}

static void
test_unterminated(void **state)
{
	(void)state;
	expect_fail("say 'oops", "unterminated ' quote");
	expect_fail("'", "unterminated ' quote");
	expect_fail("say \"oops", "unterminated \" quote");
	expect_fail("say \"oops\\\"", "unterminated \" quote");
	expect_fail("\"", "unterminated \" quote");
	expect_fail("a b c\\", "trailing backslash");
	expect_fail("\\", "trailing backslash");
}

static void
test_unicode_kept(void **state)
{
	(void)state;
	expect_words("bäckup straße", WORDS("bäckup", "straße"));
	expect_words("tag 🚀 ok", WORDS("tag", "🚀", "ok"));
	expect_words("'日本語 テキスト'", WORDS("日本語 テキスト"));
	/* U+10FFFF, the last code point, and U+202F (after the bidi range) */
	expect_words("\xf4\x8f\xbf\xbf \xe2\x80\xaf",
	    WORDS("\xf4\x8f\xbf\xbf", "\xe2\x80\xaf"));
	/* U+00A0 (just after the C1 range) and U+2065 (before the isolates) */
	expect_words("\xc2\xa0 \xe2\x81\xa5", WORDS("\xc2\xa0", "\xe2\x81\xa5"));
}

static void
test_invalid_utf8(void **state)
{
	static const char *bad[] = {
		"\xff",				/* never valid */
		"\xfe",
		"ab\x80",			/* lone continuation */
		"\xc3",				/* truncated 2-byte */
		"\xc3 ",			/* bad continuation */
		"\xe2\x82",			/* truncated 3-byte */
		"\xf0\x9f\x9a",			/* truncated 4-byte */
		"\xc0\xaf",			/* overlong '/' */
		"\xc1\xbf",			/* overlong */
		"\xe0\x80\xaf",			/* overlong 3-byte */
		"\xe0\x9f\xbf",			/* overlong U+07FF */
		"\xf0\x80\x80\xaf",		/* overlong 4-byte */
		"\xf0\x8f\xbf\xbf",		/* overlong U+FFFF */
		"\xed\xa0\x80",			/* surrogate U+D800 */
		"\xed\xbf\xbf",			/* surrogate U+DFFF */
		"\xf4\x90\x80\x80",		/* U+110000 */
		"\xf5\x80\x80\x80",
		"\xf8\x88\x80\x80\x80",		/* 5-byte form */
		"\xc2\x80",			/* C1 U+0080 */
		"\xc2\x85",			/* C1 NEL */
		"\xc2\x9f",			/* C1 U+009F */
		"!\xe2\x80\xaepleh",		/* U+202E RIGHT-TO-LEFT OVERRIDE */
		"\xe2\x80\xaa",			/* U+202A */
		"\xe2\x81\xa6",			/* U+2066 */
		"\xe2\x81\xa9",			/* U+2069 */
		"backup \x01",			/* C0 controls */
		"a\rb",
		"a\x1b[31m",
		"del\x7f",
		"a\vb",
		"a\fb",
	};

	(void)state;
	for (size_t i = 0; i < nitems(bad); i++) {
		assert_int_equal(argv_valid_text(bad[i], strlen(bad[i])), 0);
		expect_fail(bad[i], BAD_TEXT);
	}
}

static void
test_valid_text(void **state)
{
	(void)state;
	assert_int_equal(argv_valid_text("", 0), 1);
	assert_int_equal(argv_valid_text("a\tb\nc", 5), 1);
	assert_int_equal(argv_valid_text("bäckup 🚀", strlen("bäckup 🚀")), 1);
	/* the length is honoured: a multibyte sequence cut by len */
	assert_int_equal(argv_valid_text("ä", 1), 0);
	assert_int_equal(argv_valid_text("🚀", 3), 0);
	assert_int_equal(argv_valid_text("🚀", 4), 1);
	/* an embedded NUL is a control character */
	assert_int_equal(argv_valid_text("a\0b", 3), 0);
}

static void
test_max_len(void **state)
{
	char *line = xmalloc(CMD_MAX_LEN + 2), **argv, *cause;
	char want[128];

	(void)state;
	memset(line, 'a', CMD_MAX_LEN);
	line[CMD_MAX_LEN] = '\0';
	assert_int_equal(argv_split(line, &argv, &cause), 1);
	assert_int_equal(strlen(argv[0]), CMD_MAX_LEN);
	argv_free(1, argv);

	line[CMD_MAX_LEN] = 'a';
	line[CMD_MAX_LEN + 1] = '\0';
	snprintf(want, sizeof(want), "command too long (%d bytes, at most %d)",
	    CMD_MAX_LEN + 1, CMD_MAX_LEN);
	expect_fail(line, want);
	free(line);
}

static void
test_max_args(void **state)
{
	char line[CMD_MAX_ARGS * 4 + 8], **argv, *cause;
	char want[64];
	size_t off = 0;
	int i;

	(void)state;
	for (i = 0; i < CMD_MAX_ARGS; i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "w%d ",
		    i % 10);
	assert_int_equal(argv_split(line, &argv, &cause), CMD_MAX_ARGS);
	assert_string_equal(argv[CMD_MAX_ARGS - 1], "w1");
	assert_null(argv[CMD_MAX_ARGS]);
	argv_free(CMD_MAX_ARGS, argv);

	/* one word more, even as the very last one */
	snprintf(line + off, sizeof(line) - off, "x");
	snprintf(want, sizeof(want), "too many arguments (at most %d)",
	    CMD_MAX_ARGS - 1);
	expect_fail(line, want);
	/* trailing whitespace after the maximum is fine */
	line[off] = '\0';
	snprintf(line + off, sizeof(line) - off, "   ");
	assert_int_equal(argv_split(line, &argv, &cause), CMD_MAX_ARGS);
	argv_free(CMD_MAX_ARGS, argv);
}

/* ---- cmd_extract ------------------------------------------------------ */

static void
test_extract(void **state)
{
	(void)state;
	assert_string_equal(cmd_extract("!help", "!"), "help");
	assert_string_equal(cmd_extract("!help me now", "!"), "help me now");
	assert_string_equal(cmd_extract("   !status", "!"), "status");
	assert_string_equal(cmd_extract("\t!status", "!"), "status");
	assert_string_equal(cmd_extract("bb:status", "bb:"), "status");
	assert_string_equal(cmd_extract("  bb:help x", "bb:"), "help x");
	assert_null(cmd_extract("!help", "bb:"));
	assert_null(cmd_extract("bb status", "bb:"));
	assert_null(cmd_extract("help", "!"));
	assert_null(cmd_extract("hello !help", "!"));
	assert_null(cmd_extract("", "!"));
	assert_null(cmd_extract("!", "!"));
	assert_null(cmd_extract("! help", "!"));
	assert_null(cmd_extract("!\thelp", "!"));
	assert_null(cmd_extract("!\nhelp", "!"));
	assert_null(cmd_extract("bb:", "bb:"));
	assert_null(cmd_extract("!help", ""));
}

static void
test_extract_reply_fallback(void **state)
{
	(void)state;
	assert_string_equal(cmd_extract("> <@a:b> old\n> more\n\n!help", "!"),
	    "help");
	assert_string_equal(cmd_extract("> <@a:b> !status\n\n!help", "!"),
	    "help");
	assert_string_equal(cmd_extract(">\n\n!help", "!"), "help");
	/* the quoted text is never the command */
	assert_null(cmd_extract("> <@a:b> !status\n\nthanks", "!"));
	/* only a quote */
	assert_null(cmd_extract("> <@a:b> !help", "!"));
	assert_null(cmd_extract("> <@a:b> !help\n> more", "!"));
	assert_null(cmd_extract("> <@a:b> !help\n", "!"));
	assert_null(cmd_extract(">", "!"));
	/* not a fallback: '>' followed by text */
	assert_null(cmd_extract(">!help", "!"));
	assert_string_equal(cmd_extract(">help", ">"), "help");
}

/* ---- cmd_find, cmd_distance, cmd_usage -------------------------------- */

static void
test_find(void **state)
{
	const struct cmd_entry *c;
	char *suggest = (char *)0x1;

	(void)state;
	c = cmd_find("help", &suggest);
	assert_non_null(c);
	assert_string_equal(c->name, "help");
	assert_null(suggest);

	c = cmd_find("?", &suggest);
	assert_non_null(c);
	assert_string_equal(c->name, "help");

	c = cmd_find("status", NULL);
	assert_non_null(c);
	assert_string_equal(c->name, "status");

	c = cmd_find("sta", &suggest);
	assert_non_null(c);
	assert_string_equal(c->name, "status");
	assert_null(suggest);

	c = cmd_find("h", &suggest);
	assert_non_null(c);
	assert_string_equal(c->name, "help");

	/* longer than the name is not a prefix */
	assert_null(cmd_find("helpme", &suggest));
	assert_non_null(suggest);
	assert_string_equal(suggest, "help");
	free(suggest);

	/* case matters */
	assert_null(cmd_find("HELP", &suggest));
	assert_null(suggest);
}

static void
test_find_suggest(void **state)
{
	char *suggest = NULL;

	(void)state;
	assert_null(cmd_find("stauts", &suggest));
	assert_non_null(suggest);
	assert_string_equal(suggest, "status");
	free(suggest);

	assert_null(cmd_find("hlep", &suggest));
	assert_non_null(suggest);
	assert_string_equal(suggest, "help");
	free(suggest);

	suggest = (char *)0x1;
	assert_null(cmd_find("xyzzy", &suggest));
	assert_null(suggest);

	suggest = (char *)0x1;
	assert_null(cmd_find("", &suggest));
	assert_null(suggest);

	/* no suggestion wanted */
	assert_null(cmd_find("stauts", NULL));
}

static void
test_distance(void **state)
{
	char long_a[80], long_b[80];

	(void)state;
	assert_int_equal(cmd_distance("status", "status", 2), 0);
	assert_int_equal(cmd_distance("stauts", "status", 2), 2);
	assert_int_equal(cmd_distance("kitten", "sitting", 5), 3);
	assert_int_equal(cmd_distance("kitten", "sitting", 3), 3);
	assert_int_equal(cmd_distance("kitten", "sitting", 2), 3);  /* capped */
	assert_int_equal(cmd_distance("kitten", "sitting", 1), 2);
	assert_int_equal(cmd_distance("", "abc", 5), 3);
	assert_int_equal(cmd_distance("abc", "", 5), 3);
	assert_int_equal(cmd_distance("", "", 0), 0);
	assert_int_equal(cmd_distance("help", "hepl", 2), 2);
	assert_int_equal(cmd_distance("help", "helpx", 2), 1);
	assert_int_equal(cmd_distance("abcdef", "zzzzzz", 2), 3);
	assert_int_equal(cmd_distance("flaw", "lawn", 4), 2);
	memset(long_a, 'a', sizeof(long_a) - 1);
	long_a[sizeof(long_a) - 1] = '\0';
	memcpy(long_b, long_a, sizeof(long_b));
	/* too long to compare: reported as "far" */
	assert_int_equal(cmd_distance(long_a, long_b, 2), 3);
	long_a[63] = '\0';
	long_b[63] = '\0';
	assert_int_equal(cmd_distance(long_a, long_b, 2), 0);
}

static void
test_usage(void **state)
{
	const struct cmd_entry *help = cmd_find("help", NULL);
	const struct cmd_entry *status = cmd_find("status", NULL);
	char *u;

	(void)state;
	assert_non_null(help);
	assert_non_null(status);
	u = cmd_usage(help, "!");
	assert_string_equal(u, "!help [COMMAND]");
	free(u);
	u = cmd_usage(help, "bb:");
	assert_string_equal(u, "bb:help [COMMAND]");
	free(u);
	u = cmd_usage(status, "!");
	assert_string_equal(u, "!status [TARGET]");
	free(u);
}

/* Every entry is complete, and names and aliases are unambiguous. */
static void
test_table(void **state)
{
	(void)state;
	assert_non_null(cmd_table[0]);
	for (size_t i = 0; cmd_table[i] != NULL; i++) {
		const struct cmd_entry *c = cmd_table[i];

		assert_non_null(c->name);
		assert_true(c->name[0] != '\0');
		assert_non_null(c->summary);
		assert_non_null(c->exec);
		assert_true(c->min_args >= 0);
		assert_true(c->max_args == -1 || c->max_args >= c->min_args);
		assert_ptr_equal(cmd_find(c->name, NULL), c);
		if (c->alias != NULL)
			assert_ptr_equal(cmd_find(c->alias, NULL), c);
		for (size_t j = 0; j < i; j++) {
			assert_string_not_equal(cmd_table[j]->name, c->name);
			if (c->alias != NULL)
				assert_string_not_equal(cmd_table[j]->name,
				    c->alias);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_words),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_single_quotes),
		cmocka_unit_test(test_double_quotes),
		cmocka_unit_test(test_backslash),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_unicode_kept),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_valid_text),
		cmocka_unit_test(test_max_len),
		cmocka_unit_test(test_max_args),
		cmocka_unit_test(test_extract),
		cmocka_unit_test(test_extract_reply_fallback),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_find_suggest),
		cmocka_unit_test(test_distance),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_table),
	};

	return TU_RUN(tests);
}
