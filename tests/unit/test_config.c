/*
 * test_config.c - bot.conf parsing: values, defaults, comments, lists,
 * durations, every error at once with FILE:LINE, secret file permissions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "util.h"
#include "testutil.h"

#define MALFORMED "malformed section header (expected [name] or [kind name])"

static struct config *
parse(const char *text, struct config_errors *errs)
{
	return config_parse("t.conf", text, strlen(text), 0, errs);
}

/*
 * Config knows no backend: the media flags allowlist is asked of the
 * backend interface that main() hands to config_set_checks(), and its
 * error names the flags line.
 */
static void
test_backend_checks_a_section(void **state)
{
	const char *text = GOOD_MATRIX
	    "[media cdn]\n"
	    "source = /srv/media\n"
	    "destinations = /mnt/copy\n"
	    "flags = --config /tmp/x\n";
	struct config_errors errs;
	struct config *c;

	(void)state;
	config_set_checks(NULL);
	c = parse(text, &errs);
	assert_non_null(c);	/* config alone cannot judge rclone flags */
	config_free(c);
	config_errors_release(&errs);

	config_set_checks(&backend_config_checks);
	c = parse(text, &errs);
	config_set_checks(NULL);
	assert_null(c);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msg[0], "t.conf:10: "));
	assert_non_null(strstr(errs.msg[0], "--config"));
	config_errors_release(&errs);
}

static void
dump_errors(const struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		print_message("  error[%zu]: %s\n", i, errs->msg[i]);
}

static int
has_error(const struct config_errors *errs, const char *msg)
{
	for (size_t i = 0; i < errs->n; i++)
		if (!strcmp(errs->msg[i], msg))
			return 1;
	return 0;
}

static int
has_error_part(const struct config_errors *errs, const char *part)
{
	for (size_t i = 0; i < errs->n; i++)
		if (strstr(errs->msg[i], part) != NULL)
			return 1;
	return 0;
}

/* Exactly these errors, in any order. */
static void
expect_errors(const struct config_errors *errs, const char **want, size_t n)
{
	int ok = errs->n == n;

	for (size_t i = 0; i < n; i++) {
		if (!has_error(errs, want[i])) {
			print_message("missing error: %s\n", want[i]);
			ok = 0;
		}
	}
	if (!ok) {
		print_message("got %zu error(s), wanted %zu:\n", errs->n, n);
		dump_errors(errs);
	}
	assert_true(ok);
}

static void
parse_ok(const char *text, struct config **cfg)
{
	struct config_errors errs;

	*cfg = parse(text, &errs);
	if (*cfg == NULL)
		dump_errors(&errs);
	assert_non_null(*cfg);
	assert_int_equal(errs.n, 0);
	config_errors_release(&errs);
}

static void
test_all_keys(void **state)
{
	const char *text =
	    "; backupbot configuration\n"
	    "# another comment style\n"
	    "\n"
	    "[matrix]\n"
	    "homeserver = https://matrix.example.org\n"
	    "user_id = @backupbot:example.org\n"
	    "access_token_file = /etc/backupbot/token\n"
	    "device_id = BBDEVICE01\n"
	    "device_name = Backup Bot\n"
	    "rooms = !ops:example.org, #backups:example.org\n"
	    "admins = @alice:example.org,@bob:example.org\n"
	    "command_prefix = bb:\n"
	    "min_power_level = 50\n"
	    "backlog_max_age = 10m\n"
	    "sync_timeout = 45s\n"
	    "tls_verify = no\n"
	    "\n"
	    "[storage]\n"
	    "state_dir = /var/lib/bb\n"
	    "backup_dir = /srv/backups\n"
	    "\n"
	    "[log]\n"
	    "debug = yes\n";
	struct config *c;

	(void)state;
	parse_ok(text, &c);
	assert_string_equal(c->path, "t.conf");
	assert_string_equal(c->homeserver, "https://matrix.example.org");
	assert_string_equal(c->user_id, "@backupbot:example.org");
	assert_string_equal(c->access_token_file, "/etc/backupbot/token");
	assert_null(c->password_file);
	assert_string_equal(c->device_id, "BBDEVICE01");
	assert_string_equal(c->device_name, "Backup Bot");
	assert_int_equal(c->rooms.n, 2);
	assert_string_equal(c->rooms.v[0], "!ops:example.org");
	assert_string_equal(c->rooms.v[1], "#backups:example.org");
	assert_int_equal(c->admins.n, 2);
	assert_string_equal(c->admins.v[0], "@alice:example.org");
	assert_string_equal(c->admins.v[1], "@bob:example.org");
	assert_string_equal(c->command_prefix, "bb:");
	assert_int_equal(c->min_power_level, 50);
	assert_int_equal(c->backlog_max_age, 600);
	assert_int_equal(c->sync_timeout, 45);
	assert_int_equal(c->tls_verify, 0);
	assert_string_equal(c->state_dir, "/var/lib/bb");
	assert_string_equal(c->backup_dir, "/srv/backups");
	assert_int_equal(c->log_debug, 1);
	assert_true(config_is_admin(c, "@alice:example.org"));
	assert_true(config_is_admin(c, "@bob:example.org"));
	assert_false(config_is_admin(c, "@mallory:example.org"));
	assert_false(config_is_admin(c, "@alice:example.org "));
	config_free(c);
}

static void
test_defaults(void **state)
{
	struct config *c;

	(void)state;
	parse_ok(GOOD_MATRIX, &c);
	assert_string_equal(c->command_prefix, "!");
	assert_int_equal(c->backlog_max_age, 300);
	assert_int_equal(c->sync_timeout, 30);
	assert_int_equal(c->min_power_level, -1);
	assert_int_equal(c->tls_verify, 1);
	assert_int_equal(c->log_debug, 0);
	assert_string_equal(c->state_dir, "/var/lib/backupbot");
	assert_string_equal(c->backup_dir, "/var/backups/backupbot");
	assert_string_equal(c->device_name, "backupbot");
	assert_null(c->device_id);
	assert_null(c->password_file);
	config_free(c);
}

static void
test_password_file_alone(void **state)
{
	struct config *c;

	(void)state;
	parse_ok("[matrix]\n"
	    "homeserver = http://localhost:8008\n"
	    "user_id = @bb:localhost\n"
	    "password_file = /run/secrets/pw\n"
	    "rooms = #ops:localhost\n"
	    "admins = @root:localhost\n", &c);
	assert_null(c->access_token_file);
	assert_string_equal(c->password_file, "/run/secrets/pw");
	assert_string_equal(c->homeserver, "http://localhost:8008");
	config_free(c);
}

/*
 * Comments: whole lines starting with ';' or '#' (also indented), and
 * " ;" after a value.  '#' after a value is *not* a comment, because room
 * aliases start with it (bot.conf.example says so).
 */
static void
test_inline_comments(void **state)
{
	struct config *c;

	(void)state;
	parse_ok("; comment\n"
	    "# comment\n"
	    "[matrix] ; the Matrix side\n"
	    "homeserver = https://m.example.org ; our server\n"
	    "user_id = @bb:example.org\t; the bot\n"
	    "access_token_file = /etc/bb/token;not-a-comment\n"
	    "device_name = bot #1\n"
	    "rooms = !a:example.org, #ops:example.org ; main rooms\n"
	    "admins = @a:example.org ;boss\n"
	    "  ; indented comment\n"
	    "\t# indented comment\n"
	    "  # indented = comment\n"
	    "[storage]   ; where things go\n"
	    "state_dir = /var/lib/bb  ; trailing\n", &c);
	assert_string_equal(c->homeserver, "https://m.example.org");
	assert_string_equal(c->user_id, "@bb:example.org");
	/* ';' not preceded by whitespace is part of the value */
	assert_string_equal(c->access_token_file, "/etc/bb/token;not-a-comment");
	assert_string_equal(c->device_name, "bot #1");
	assert_int_equal(c->rooms.n, 2);
	assert_string_equal(c->rooms.v[0], "!a:example.org");
	assert_string_equal(c->rooms.v[1], "#ops:example.org");
	assert_int_equal(c->admins.n, 1);
	assert_string_equal(c->admins.v[0], "@a:example.org");
	assert_string_equal(c->state_dir, "/var/lib/bb");
	config_free(c);
}

static void
test_room_alias_not_a_comment(void **state)
{
	struct config *c;

	(void)state;
	parse_ok("[matrix]\n"
	    "homeserver = https://m.example.org\n"
	    "user_id = @bb:example.org\n"
	    "access_token_file = /t\n"
	    "rooms = #ops:example.org, #backups:example.org\n"
	    "admins = @a:example.org\n", &c);
	assert_int_equal(c->rooms.n, 2);
	assert_string_equal(c->rooms.v[0], "#ops:example.org");
	assert_string_equal(c->rooms.v[1], "#backups:example.org");
	config_free(c);
}

static void
test_token_and_password_exclusive(void **state)
{
	struct config_errors errs;

	(void)state;
	assert_null(parse(GOOD_MATRIX "password_file = /pw\n", &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "t.conf:7: password_file: set either "
	    "access_token_file or password_file, not both");
	config_errors_release(&errs);
}

static void
test_crlf_and_spaces(void **state)
{
	struct config *c;

	(void)state;
	parse_ok("[ matrix ]\r\n"
	    "  homeserver=https://m.example.org\r\n"
	    "user_id   =   @bb:example.org   \r\n"
	    "access_token_file = /t\r\n"
	    "rooms = !a:example.org\r\n"
	    "admins = @a:example.org\r\n", &c);
	assert_string_equal(c->homeserver, "https://m.example.org");
	assert_string_equal(c->user_id, "@bb:example.org");
	assert_string_equal(c->rooms.v[0], "!a:example.org");
	config_free(c);
}

static void
test_lists(void **state)
{
	struct config *c;

	(void)state;
	parse_ok("[matrix]\n"
	    "homeserver = https://m.example.org\n"
	    "user_id = @bb:example.org\n"
	    "access_token_file = /t\n"
	    "rooms =   !a:example.org ,#b:example.org,   !c:example.org   \n"
	    "admins = @a:example.org , @b:example.org\n", &c);
	assert_int_equal(c->rooms.n, 3);
	assert_string_equal(c->rooms.v[0], "!a:example.org");
	assert_string_equal(c->rooms.v[1], "#b:example.org");
	assert_string_equal(c->rooms.v[2], "!c:example.org");
	assert_int_equal(c->admins.n, 2);
	assert_string_equal(c->admins.v[1], "@b:example.org");
	config_free(c);
}

static void
test_list_empty_items(void **state)
{
	struct config_errors errs;
	const char *want[] = {
		"t.conf:7: rooms: empty list item",
		"t.conf:8: admins: empty list item",
		"t.conf:8: admins: empty list item",
	};

	(void)state;
	assert_null(parse(GOOD_MATRIX
	    "rooms = !b:example.org,,!c:example.org\n"
	    "admins = ,@b:example.org,\n", &errs));
	/* rooms/admins were already given above: these are repeats */
	assert_true(has_error(&errs,
	    "t.conf:7: rooms repeated (first at line 5)"));
	assert_true(has_error(&errs,
	    "t.conf:8: admins repeated (first at line 6)"));
	assert_int_equal(errs.n, 2);
	config_errors_release(&errs);

	assert_null(parse("[matrix]\n"
	    "homeserver = https://m.example.org\n"
	    "user_id = @bb:example.org\n"
	    "access_token_file = /t\n"
	    "\n"
	    "\n"
	    "rooms = !b:example.org,,!c:example.org\n"
	    "admins = ,@b:example.org,\n", &errs));
	expect_errors(&errs, want, nitems(want));
	config_errors_release(&errs);
}

static void
test_durations(void **state)
{
	(void)state;
	assert_int_equal(config_parse_duration("30s"), 30);
	assert_int_equal(config_parse_duration("5m"), 300);
	assert_int_equal(config_parse_duration("2h"), 7200);
	assert_int_equal(config_parse_duration("1d"), 86400);
	assert_int_equal(config_parse_duration("90"), 90);
	assert_int_equal(config_parse_duration("0"), 0);
	assert_int_equal(config_parse_duration("0s"), 0);
	assert_int_equal(config_parse_duration(""), -1);
	assert_int_equal(config_parse_duration("s"), -1);
	assert_int_equal(config_parse_duration("m"), -1);
	assert_int_equal(config_parse_duration("5x"), -1);
	assert_int_equal(config_parse_duration("5M"), -1);
	assert_int_equal(config_parse_duration("-5"), -1);
	assert_int_equal(config_parse_duration("-5s"), -1);
	assert_int_equal(config_parse_duration("+5s"), -1);
	assert_int_equal(config_parse_duration("5 m"), -1);
	assert_int_equal(config_parse_duration(" 5m"), -1);
	assert_int_equal(config_parse_duration("1.5h"), -1);
	assert_int_equal(config_parse_duration("m5"), -1);
	assert_int_equal(config_parse_duration("5ms"), -1);
	assert_int_equal(config_parse_duration("1h30m"), -1);
	assert_int_equal(config_parse_duration("0x10"), -1);
	assert_int_equal(config_parse_duration("99999999999999999999"), -1);
	assert_int_equal(config_parse_duration("9999999999999999999d"), -1);
	assert_int_equal(config_parse_duration(
	    "00000000000000000000000000000001"), -1);	/* too long */
}

static void
test_duration_keys(void **state)
{
	struct config_errors errs;
	struct config *c;
	const char *want[] = {
		"t.conf:8: sync_timeout: '0' is not a duration between 1s "
		    "and 300s (use 30s, 5m, 2h, 1d)",
		"t.conf:9: backlog_max_age: '8d' is not a duration between "
		    "0s and 604800s (use 30s, 5m, 2h, 1d)",
	};

	(void)state;
	parse_ok(GOOD_MATRIX "sync_timeout = 5m\nbacklog_max_age = 1d\n", &c);
	assert_int_equal(c->sync_timeout, 300);
	assert_int_equal(c->backlog_max_age, 86400);
	config_free(c);
	parse_ok(GOOD_MATRIX "sync_timeout = 1\nbacklog_max_age = 0\n", &c);
	assert_int_equal(c->sync_timeout, 1);
	assert_int_equal(c->backlog_max_age, 0);
	config_free(c);

	assert_null(parse(GOOD_MATRIX "\n"
	    "sync_timeout = 0\n"
	    "backlog_max_age = 8d\n", &errs));
	expect_errors(&errs, want, nitems(want));
	config_errors_release(&errs);

	assert_null(parse(GOOD_MATRIX "sync_timeout = 5 minutes\n", &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "t.conf:7: sync_timeout: '5 minutes' "
	    "is not a duration between 1s and 300s (use 30s, 5m, 2h, 1d)");
	config_errors_release(&errs);
}

static void
test_int_and_bool(void **state)
{
	struct config_errors errs;
	struct config *c;
	const char *want[] = {
		("t.conf:7: min_power_level: '-1' is not a number between 0 and "
		    "1000000"),
		"t.conf:8: tls_verify: 'maybe' is not yes or no",
		"t.conf:10: debug: 'Yes' is not yes or no",
	};
	const char *yes[] = { "yes", "true", "on", "1" };
	const char *no[] = { "no", "false", "off", "0" };

	(void)state;
	for (size_t i = 0; i < nitems(yes); i++) {
		char text[512];

		snprintf(text, sizeof(text), GOOD_MATRIX "tls_verify = %s\n"
		    "[log]\ndebug = %s\n", no[i], yes[i]);
		parse_ok(text, &c);
		assert_int_equal(c->tls_verify, 0);
		assert_int_equal(c->log_debug, 1);
		config_free(c);
	}
	parse_ok(GOOD_MATRIX "min_power_level = 0\n", &c);
	assert_int_equal(c->min_power_level, 0);
	config_free(c);
	parse_ok(GOOD_MATRIX "min_power_level = 1000000\n", &c);
	assert_int_equal(c->min_power_level, 1000000);
	config_free(c);

	assert_null(parse(GOOD_MATRIX
	    "min_power_level = -1\n"
	    "tls_verify = maybe\n"
	    "[log]\n"
	    "debug = Yes\n", &errs));
	expect_errors(&errs, want, nitems(want));
	config_errors_release(&errs);

	assert_null(parse(GOOD_MATRIX "min_power_level = 1000001\n", &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "t.conf:7: min_power_level: "
	    "'1000001' is not a number between 0 and 1000000");
	config_errors_release(&errs);
}

/* One text with one mistake of every kind: all of them are reported. */
static void
test_all_errors_at_once(void **state)
{
	const char *text =
	    "homeserver = https://early.example.org\n"		/* 1 */
	    "[matrix]\n"					/* 2 */
	    "homeserver = ftp://example.org\n"			/* 3 */
	    "user_id = backupbot\n"				/* 4 */
	    "user_id = @bb:example.org\n"			/* 5 */
	    "rooms = general, !ok:example.org, !v12opaque, #nocolon\n"/* 6 */
	    "admins = alice:example.org, @bob\n"		/* 7 */
	    "colour = blue\n"					/* 8 */
	    "just some words\n"					/* 9 */
	    "command_prefix =\n"				/* 10 */
	    "device_name = a\x01z\n"				/* 11 */
	    "[storage]\n"					/* 12 */
	    "state_dir = var/lib/bb\n"				/* 13 */
	    "backup_dir = backups\n"				/* 14 */
	    "rooms = !x:example.org\n"				/* 15 */
	    "[matrix]\n"					/* 16 */
	    "[storage\n"					/* 17 */
	    "[log] extra\n"					/* 18 */
	    "debug = maybe\n";					/* 19 */
	const char *want[] = {
		"t.conf:1: 'homeserver' is outside any section",
		"t.conf:5: user_id repeated (first at line 4)",
		"t.conf:8: unknown key 'colour' in [matrix]",
		"t.conf:9: expected 'key = value', got 'just some words'",
		"t.conf:10: command_prefix: empty value",
		"t.conf:11: device_name: control characters in value",
		"t.conf:15: unknown key 'rooms' in [storage]",
		"t.conf:16: section [matrix] repeated (first at line 2)",
		"t.conf:17: " MALFORMED,
		"t.conf:18: " MALFORMED,
		/* line 19 is in a bad section: not reported again */
		"t.conf:3: homeserver: 'ftp://example.org' must start with "
		    "https:// (or http:// for a local server)",
		"t.conf:4: user_id: 'backupbot' is not a Matrix user id "
		    "(@name:server)",
		"t.conf: [matrix] access_token_file or password_file is "
		    "required",
		"t.conf:6: rooms: 'general' is neither a room id "
		    "(!id:server, or !id from room version 12) nor an alias "
		    "(#name:server)",
		"t.conf:6: rooms: '#nocolon' is neither a room id "
		    "(!id:server, or !id from room version 12) nor an alias "
		    "(#name:server)",
		"t.conf:7: admins: 'alice:example.org' is not a Matrix user "
		    "id (@name:server)",
		"t.conf:7: admins: '@bob' is not a Matrix user id "
		    "(@name:server)",
		"t.conf:13: state_dir: 'var/lib/bb' must be an absolute path",
		"t.conf:14: backup_dir: 'backups' must be an absolute path",
	};
	struct config_errors errs;

	(void)state;
	assert_null(parse(text, &errs));
	expect_errors(&errs, want, nitems(want));
	/* parse errors come in line order, before the validation ones */
	assert_string_equal(errs.msg[0], want[0]);
	config_errors_release(&errs);
}

static void
test_missing_required(void **state)
{
	const char *want[] = {
		"t.conf: [matrix] homeserver is required",
		"t.conf: [matrix] user_id is required",
		"t.conf: [matrix] access_token_file or password_file is "
		    "required",
		"t.conf: [matrix] rooms is required",
		"t.conf: [matrix] admins is required (nobody could command "
		    "the bot)",
	};
	struct config_errors errs;

	(void)state;
	assert_null(parse("", &errs));
	expect_errors(&errs, want, nitems(want));
	config_errors_release(&errs);

	assert_null(parse("[matrix]\n[storage]\n[log]\n", &errs));
	expect_errors(&errs, want, nitems(want));
	config_errors_release(&errs);
}

static void
test_unknown_section(void **state)
{
	struct config_errors errs;

	(void)state;
	/* keys of a section that was a mistake are not reported again */
	assert_null(parse(GOOD_MATRIX "[storrage]\nstate_dir = /x\n", &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "t.conf:7: unknown section [storrage]");
	config_errors_release(&errs);
}

/*
 * Regression: when the *first* section header was misspelled, every key
 * below it was also reported as "outside any section", although the bad
 * section had already been reported.
 */
static void
test_unknown_first_section(void **state)
{
	struct config_errors errs;
	int reported, outside;

	(void)state;
	assert_null(parse("[matrx]\n"
	    "homeserver = https://m.example.org\n"
	    "user_id = @bb:example.org\n", &errs));
	reported = has_error(&errs, "t.conf:1: unknown section [matrx]");
	outside = has_error_part(&errs, "outside any section");
	if (outside)
		dump_errors(&errs);
	config_errors_release(&errs);
	assert_true(reported);
	assert_false(outside);

	assert_null(parse("[matrix\nhomeserver = https://m.example.org\n",
	    &errs));
	reported = has_error(&errs, "t.conf:1: " MALFORMED);
	outside = has_error_part(&errs, "outside any section");
	config_errors_release(&errs);
	assert_true(reported);
	assert_false(outside);
}

static void
test_section_name_long(void **state)
{
	struct config_errors errs;
	char text[512];

	(void)state;
	/* a long unknown name is shown cut to 40 characters */
	snprintf(text, sizeof(text), GOOD_MATRIX "[%0100d]\nkey = v\n", 0);
	assert_null(parse(text, &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "t.conf:7: unknown section "
	    "[0000000000000000000000000000000000000000]");
	config_errors_release(&errs);
}

static void
test_bad_prefix(void **state)
{
	struct config_errors errs;

	(void)state;
	assert_null(parse(GOOD_MATRIX "command_prefix = 12345678901234567\n",
	    &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "t.conf:7: command_prefix: at most "
	    "16 characters without spaces");
	config_errors_release(&errs);
}

static void
test_nul_and_long_lines(void **state)
{
	static const char head[] = GOOD_MATRIX "device_name = a\0b\n";
	struct config_errors errs;
	struct config *c;
	char *text;
	size_t n;

	(void)state;
	/* a NUL byte in line 7 */
	assert_null(config_parse("t.conf", head, sizeof(head) - 1, 0, &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "t.conf:7: NUL byte in line");
	config_errors_release(&errs);

	/* a line of 5000 bytes, then a good line: both counted */
	n = strlen(GOOD_MATRIX) + 5000 + 64;
	text = xmalloc(n);
	memcpy(text, GOOD_MATRIX, strlen(GOOD_MATRIX));
	memset(text + strlen(GOOD_MATRIX), 'a', 5000);
	snprintf(text + strlen(GOOD_MATRIX) + 5000, 64, "\nbogus = 1\n");
	assert_null(parse(text, &errs));
	expect_errors(&errs, (const char *[]){
	    "t.conf:7: line longer than 4096 bytes",
	    "t.conf:8: unknown key 'bogus' in [matrix]" }, 2);
	config_errors_release(&errs);
	free(text);

	/* exactly 4096 bytes is fine */
	n = strlen(GOOD_MATRIX) + 4096 + 2;
	text = xmalloc(n);
	memcpy(text, GOOD_MATRIX, strlen(GOOD_MATRIX));
	memcpy(text + strlen(GOOD_MATRIX), "device_name = ", 14);
	memset(text + strlen(GOOD_MATRIX) + 14, 'd', 4096 - 14);
	text[strlen(GOOD_MATRIX) + 4096] = '\n';
	text[strlen(GOOD_MATRIX) + 4096 + 1] = '\0';
	parse_ok(text, &c);
	assert_int_equal(strlen(c->device_name), 4096 - 14);
	config_free(c);
	free(text);
}

static void
test_no_trailing_newline(void **state)
{
	struct config *c;

	(void)state;
	parse_ok(GOOD_MATRIX "device_name = last", &c);
	assert_string_equal(c->device_name, "last");
	config_free(c);
}

/* ---- [storage] extras, [postgres NAME] targets, [remote NAME] -------- */

static void
test_storage_keys(void **state)
{
	struct config *c;

	(void)state;
	parse_ok(GOOD_MATRIX, &c);
	assert_null(c->encryption_key_file);
	assert_null(c->rclone_config);
	assert_string_equal(c->rclone, "rclone");
	assert_int_equal(c->max_parallel_jobs, 2);
	assert_int_equal(c->job_timeout, 12 * 3600);
	assert_int_equal(c->ntargets, 0);
	assert_int_equal(c->nremotes, 0);
	assert_null(config_target(c, "x"));
	assert_null(config_remote(c, "x"));
	config_free(c);

	parse_ok(GOOD_MATRIX "[storage]\n"
	    "encryption_key_file = /etc/bb/key\n"
	    "rclone_config = /etc/bb/rclone.conf\n"
	    "rclone = /usr/local/bin/rclone\n"
	    "max_parallel_jobs = 4\n"
	    "job_timeout = 2h\n", &c);
	assert_string_equal(c->encryption_key_file, "/etc/bb/key");
	assert_string_equal(c->rclone_config, "/etc/bb/rclone.conf");
	assert_string_equal(c->rclone, "/usr/local/bin/rclone");
	assert_int_equal(c->max_parallel_jobs, 4);
	assert_int_equal(c->job_timeout, 7200);
	config_free(c);
}

static void
test_targets_and_remotes(void **state)
{
	struct config *c;
	const struct target *t;
	const struct remote *r;

	(void)state;
	parse_ok(GOOD_MATRIX				/* lines 1-6 */
	    "[remote offsite]\n"				/* 7 */
	    "path = b2:bucket/backups\n"
	    "[remote nas]\n"					/* 9 */
	    "path = /mnt/nas/bb\n"
	    "[postgres mastodon]\n"				/* 11 */
	    "conninfo = host=/run/postgresql dbname=mastodon user=backup\n"
	    "password_file = /etc/bb/pg\n"
	    "format = directory\n"
	    "jobs = 4\n"
	    "compression = none\n"
	    "level = 19\n"
	    "threads = 2\n"
	    "pg_dump = /usr/lib/postgresql/15/bin/pg_dump\n"
	    "pg_restore = /usr/lib/postgresql/15/bin/pg_restore\n"
	    "keep = last=3 daily=7\n"
	    "remotes = offsite, nas\n"
	    "[postgres synapse-db_2]\n"			/* 23 */
	    "conninfo = postgresql://backup@localhost/synapse\n"
	    "format = custom\n", &c);
	assert_int_equal(c->nremotes, 2);
	r = config_remote(c, "offsite");
	assert_non_null(r);
	assert_string_equal(r->name, "offsite");
	assert_string_equal(r->path, "b2:bucket/backups");
	assert_int_equal(r->line, 7);
	assert_string_equal(config_remote(c, "nas")->path, "/mnt/nas/bb");
	assert_null(config_remote(c, "mastodon"));

	assert_int_equal(c->ntargets, 2);
	t = config_target(c, "mastodon");
	assert_non_null(t);
	assert_ptr_equal(t, &c->targets[0]);
	assert_int_equal(t->kind, TARGET_POSTGRES);
	assert_string_equal(config_kind_name(t->kind), "postgres");
	assert_int_equal(t->line, 11);
	assert_string_equal(t->conninfo,
	    "host=/run/postgresql dbname=mastodon user=backup");
	assert_string_equal(t->password_file, "/etc/bb/pg");
	assert_string_equal(t->format, "directory");
	assert_int_equal(t->jobs, 4);
	assert_string_equal(t->compression, "none");
	assert_int_equal(t->level, 19);
	assert_int_equal(t->threads, 2);
	assert_string_equal(t->pg_dump, "/usr/lib/postgresql/15/bin/pg_dump");
	assert_string_equal(t->pg_restore,
	    "/usr/lib/postgresql/15/bin/pg_restore");
	assert_string_equal(t->keep_text, "last=3 daily=7");
	assert_int_equal(t->keep.set, 1);
	assert_int_equal(t->keep.last, 3);
	assert_int_equal(t->keep.daily, 7);
	assert_int_equal(t->keep.weekly, 0);
	assert_int_equal(t->remotes.n, 2);
	assert_string_equal(t->remotes.v[0], "offsite");
	assert_string_equal(t->remotes.v[1], "nas");

	/* defaults */
	t = config_target(c, "synapse-db_2");
	assert_non_null(t);
	assert_int_equal(t->line, 23);
	assert_string_equal(t->conninfo,
	    "postgresql://backup@localhost/synapse");
	assert_null(t->password_file);
	assert_string_equal(t->format, "custom");
	assert_int_equal(t->jobs, 1);
	assert_string_equal(t->compression, "zstd");
	assert_int_equal(t->level, 3);
	assert_int_equal(t->threads, 0);
	assert_string_equal(t->pg_dump, "pg_dump");
	assert_string_equal(t->pg_restore, "pg_restore");
	assert_null(t->keep_text);
	assert_int_equal(t->keep.set, 0);
	assert_int_equal(t->remotes.n, 0);
	assert_null(config_target(c, "synapse"));
	config_free(c);
}

static void
test_valid_name(void **state)
{
	(void)state;
	assert_true(config_valid_name("a"));
	assert_true(config_valid_name("db_1-x"));
	assert_true(config_valid_name("0123456789abcdefghijklmnopqrstuv"));
	assert_false(config_valid_name("0123456789abcdefghijklmnopqrstuvw"));
	assert_false(config_valid_name(""));
	assert_false(config_valid_name("Main"));
	assert_false(config_valid_name("a b"));
	assert_false(config_valid_name("a.b"));
	assert_false(config_valid_name("a/b"));
	assert_false(config_valid_name("bäckup"));
}

static void
test_target_errors(void **state)
{
	const char *text = GOOD_MATRIX			/* lines 1-6 */
	    "[matrix extra]\n"				/* 7 */
	    "[postgres]\n"					/* 8 */
	    "conninfo = dbname=x\n"			/* 9: skipped */
	    "[postgres Main]\n"				/* 10 */
	    "[postgres all]\n"				/* 11 */
	    "[postgres latest]\n"				/* 12 */
	    "[postgres postgres]\n"			/* 13 */
	    "[postgres db]\n"				/* 14 */
	    "conninfo = dbname=db password=hunter2\n"	/* 15 */
	    "format = tar\n"					/* 16 */
	    "jobs = 4\n"					/* 17 */
	    "level = 20\n"					/* 18 */
	    "compression = gzip\n"				/* 19 */
	    "keep = forever\n"				/* 20 */
	    "remotes = nowhere\n"				/* 21 */
	    "path = /x\n"					/* 22 */
	    "format = custom\n"				/* 23 */
	    "[postgres db]\n"				/* 24 */
	    "conninfo = dbname=again\n"			/* 25: skipped */
	    "[remote r]\n"					/* 26 */
	    "conninfo = dbname=x\n"			/* 27 */
	    "[remote r]\n"					/* 28 */
	    "[remote]\n"					/* 29 */
	    "[storage]\n"					/* 30 */
	    "rclone_config = rclone.conf\n"			/* 31 */
	    "max_parallel_jobs = 0\n"			/* 32 */
	    "job_timeout = 30s\n"				/* 33 */
	    " = orphan\n";					/* 34 */
	const char *want[] = {
		"t.conf:7: [matrix] takes no name",
		"t.conf:8: [postgres] needs a name: [postgres NAME]",
		"t.conf:10: [postgres Main]: names are 1-32 characters of "
		    "a-z, 0-9, _ and -",
		"t.conf:11: [postgres all]: 'all' is a reserved word in "
		    "commands; pick another name",
		"t.conf:12: [postgres latest]: 'latest' is a reserved word in "
		    "commands; pick another name",
		"t.conf:13: [postgres postgres]: 'postgres' is a reserved word "
		    "in commands; pick another name",
		"t.conf:15: conninfo: no password here; put it in "
		    "password_file (mode 0600) or ~/.pgpass",
		"t.conf:16: format: 'tar' is not one of custom|directory",
		"t.conf:18: level: '20' is not a number between 1 and 19",
		"t.conf:19: compression: 'gzip' is not one of zstd|none|pgdump",
		/* line 20: keep, checked below by prefix */
		"t.conf:22: unknown key 'path' in [postgres]",
		"t.conf:23: format repeated (first at line 16)",
		"t.conf:24: target 'db' defined twice (first at line 14)",
		"t.conf:27: unknown key 'conninfo' in [remote]",
		"t.conf:28: remote 'r' defined twice (first at line 26)",
		"t.conf:29: [remote] needs a name: [remote NAME]",
		"t.conf:32: max_parallel_jobs: '0' is not a number between 1 "
		    "and 64",
		"t.conf:33: job_timeout: '30s' is not a duration between 60s "
		    "and 604800s (use 30s, 5m, 2h, 1d)",
		"t.conf:34: missing key before '='",
		"t.conf:26: [remote r]: path is required",
		"t.conf:14: [postgres db]: remote 'nowhere' is not defined "
		    "(add a [remote nowhere] section)",
		"t.conf:14: [postgres db]: conninfo is required",
		"t.conf:14: [postgres db]: jobs needs format = directory",
		"t.conf:31: rclone_config: 'rclone.conf' must be an absolute "
		    "path",
	};
	struct config_errors errs;
	size_t keep_errors = 0;

	(void)state;
	assert_null(parse(text, &errs));
	for (size_t i = 0; i < errs.n; i++)
		if (str_startswith(errs.msg[i], "t.conf:20: keep: "))
			keep_errors++;
	assert_int_equal(keep_errors, 1);
	if (errs.n != nitems(want) + 1 || !has_error(&errs, want[0]))
		dump_errors(&errs);
	assert_int_equal(errs.n, nitems(want) + 1);
	for (size_t i = 0; i < nitems(want); i++) {
		if (!has_error(&errs, want[i]))
			print_message("missing: %s\n", want[i]);
		assert_true(has_error(&errs, want[i]));
	}
	config_errors_release(&errs);
}

/* The same key in two targets is not a repeat. */
static void
test_target_keys_per_section(void **state)
{
	struct config *c;

	(void)state;
	parse_ok(GOOD_MATRIX
	    "[postgres a]\nconninfo = dbname=a\nlevel = 5\n"
	    "[postgres b]\nconninfo = dbname=b\nlevel = 7\n", &c);
	assert_int_equal(config_target(c, "a")->level, 5);
	assert_int_equal(config_target(c, "b")->level, 7);
	config_free(c);
}

/*
 * Bug (config.c K_CONNINFO): the check for a password in conninfo looks
 * for the word "password" only, so the usual URI form with the password
 * in its user info - postgresql://user:secret@host/db - is accepted and
 * the secret ends up in pg_dump's argv (visible in ps), which is exactly
 * what the check is there to prevent.
 */
static void
test_conninfo_uri_password(void **state)
{
	static const char *bad[] = {
		"postgresql://backup:s3cret@localhost/mastodon",
		"postgres://backup:s3cret@db.example.org:5432/mastodon",
		"postgresql://backup:s3cret@/mastodon?host=/run/postgresql",
		"postgresql://localhost/mastodon?user=b&password=s3cret",
		"host=localhost password=s3cret",
	};
	static const char *good[] = {
		"postgresql://backup@localhost/mastodon",
		"postgresql://localhost:5432/mastodon",
		"postgresql:///mastodon?host=/run/postgresql",
		"host=localhost user=backup dbname=mastodon",
	};

	(void)state;
	for (size_t i = 0; i < nitems(bad); i++) {
		struct config_errors errs;
		char *text = xasprintf(GOOD_MATRIX "[postgres db]\n"
		    "conninfo = %s\n", bad[i]);
		struct config *c = parse(text, &errs);
		int refused = c == NULL && has_error(&errs, "t.conf:8: "
		    "conninfo: no password here; put it in password_file "
		    "(mode 0600) or ~/.pgpass");

		if (!refused)
			print_message("accepted: conninfo = %s\n", bad[i]);
		config_free(c);
		config_errors_release(&errs);
		free(text);
		assert_true(refused);
	}
	for (size_t i = 0; i < nitems(good); i++) {
		char *text = xasprintf(GOOD_MATRIX "[postgres db]\n"
		    "conninfo = %s\n", good[i]);
		struct config *c;

		parse_ok(text, &c);
		assert_string_equal(config_target(c, "db")->conninfo, good[i]);
		config_free(c);
		free(text);
	}
}

static void
test_load_missing_file(void **state)
{
	struct config_errors errs;

	(void)state;
	assert_null(config_load("/nonexistent/backupbot/bot.conf", &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "/nonexistent/backupbot/bot.conf: "
	    "No such file or directory");
	config_errors_release(&errs);
	/* releasing twice is harmless */
	config_errors_release(&errs);
}

/* ---- secret files, through config_load (check_files=1) ---------------- */

struct secret_fixture {
	char	*dir;
	char	*conf;
	char	*token;
	char	*password;
};

static int
secret_setup(void **state)
{
	struct secret_fixture *f = xcalloc(1, sizeof(*f));

	f->dir = tu_mkdtemp();
	f->conf = tu_path(f->dir, "bot.conf");
	f->token = tu_path(f->dir, "token");
	f->password = tu_path(f->dir, "password");
	*state = f;
	return 0;
}

static int
secret_teardown(void **state)
{
	struct secret_fixture *f = *state;

	free(f->conf);
	free(f->token);
	free(f->password);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

/* Write bot.conf naming one secret file (key = path on line 4). */
static void
write_conf(struct secret_fixture *f, const char *key, const char *path)
{
	char text[2048];

	snprintf(text, sizeof(text), "[matrix]\n"
	    "homeserver = https://m.example.org\n"
	    "user_id = @bb:example.org\n"
	    "%s = %s\n"
	    "rooms = !a:example.org\n"
	    "admins = @a:example.org\n"
	    "[storage]\n"
	    "state_dir = %s\n", key, path, f->dir);
	tu_write_str(f->conf, text, 0644);
}

static void
test_secret_0600_ok(void **state)
{
	struct secret_fixture *f = *state;
	struct config_errors errs;
	struct config *c;

	tu_write_str(f->token, "syt_secret\n", 0600);
	tu_write_str(f->password, "hunter2\n", 0400);
	write_conf(f, "access_token_file", f->token);
	c = config_load(f->conf, &errs);
	if (c == NULL)
		dump_errors(&errs);
	assert_non_null(c);
	assert_int_equal(errs.n, 0);
	assert_string_equal(c->path, f->conf);
	assert_string_equal(c->access_token_file, f->token);
	assert_string_equal(c->state_dir, f->dir);
	config_free(c);
	config_errors_release(&errs);

	write_conf(f, "password_file", f->password);
	c = config_load(f->conf, &errs);
	if (c == NULL)
		dump_errors(&errs);
	assert_non_null(c);
	assert_string_equal(c->password_file, f->password);
	config_free(c);
	config_errors_release(&errs);
}

static void
test_secret_too_open(void **state)
{
	struct secret_fixture *f = *state;
	struct config_errors errs;
	char want[1024];

	tu_write_str(f->token, "syt_secret\n", 0644);
	tu_write_str(f->password, "hunter2\n", 0640);
	write_conf(f, "access_token_file", f->token);
	assert_null(config_load(f->conf, &errs));
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s:4: access_token_file: %s: "
	    "permissions 0644 are too open for a secret (chmod 600 %s)",
	    f->conf, f->token, f->token);
	assert_string_equal(errs.msg[0], want);
	assert_non_null(strstr(errs.msg[0], "too open"));
	config_errors_release(&errs);

	write_conf(f, "password_file", f->password);
	assert_null(config_load(f->conf, &errs));
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s:4: password_file: %s: "
	    "permissions 0640 are too open for a secret (chmod 600 %s)",
	    f->conf, f->password, f->password);
	assert_string_equal(errs.msg[0], want);
	config_errors_release(&errs);

	/* group-writable only is refused too */
	tu_write_str(f->token, "syt_secret\n", 0620);
	write_conf(f, "access_token_file", f->token);
	assert_null(config_load(f->conf, &errs));
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msg[0], ":4: access_token_file: "));
	assert_non_null(strstr(errs.msg[0], "permissions 0620 are too open"));
	config_errors_release(&errs);
}

/* Secrets of [storage] and of targets get the same check. */
static void
test_secret_other_files(void **state)
{
	struct secret_fixture *f = *state;
	struct config_errors errs;
	struct config *c;
	char *key = tu_path(f->dir, "backup.key"), *text, want[1024];

	tu_write_str(f->token, "syt_secret\n", 0600);
	tu_write_str(f->password, "pgpass\n", 0644);
	tu_write_str(key, "k\n", 0604);
	text = xasprintf("[matrix]\n"
	    "homeserver = https://m.example.org\n"
	    "user_id = @bb:example.org\n"
	    "access_token_file = %s\n"
	    "rooms = !a:example.org\n"
	    "admins = @a:example.org\n"
	    "[storage]\n"
	    "encryption_key_file = %s\n"		/* 8 */
	    "[postgres db]\n"
	    "conninfo = dbname=db\n"
	    "password_file = %s\n",		/* 11 */
	    f->token, key, f->password);
	tu_write_str(f->conf, text, 0644);
	assert_null(config_load(f->conf, &errs));
	assert_int_equal(errs.n, 2);
	snprintf(want, sizeof(want), "%s:8: encryption_key_file: %s: "
	    "permissions 0604 are too open for a secret (chmod 600 %s)",
	    f->conf, key, key);
	assert_string_equal(errs.msg[0], want);
	snprintf(want, sizeof(want), "%s:11: password_file: %s: "
	    "permissions 0644 are too open for a secret (chmod 600 %s)",
	    f->conf, f->password, f->password);
	assert_string_equal(errs.msg[1], want);
	config_errors_release(&errs);

	assert_int_equal(chmod(f->password, 0600), 0);
	assert_int_equal(chmod(key, 0400), 0);
	c = config_load(f->conf, &errs);
	if (c == NULL)
		dump_errors(&errs);
	assert_non_null(c);
	assert_string_equal(config_target(c, "db")->password_file,
	    f->password);
	config_free(c);
	config_errors_release(&errs);
	free(text);
	free(key);
}

static void
test_secret_missing_or_dir(void **state)
{
	struct secret_fixture *f = *state;
	struct config_errors errs;
	char want[1024];

	/* token file does not exist */
	write_conf(f, "access_token_file", f->token);
	assert_null(config_load(f->conf, &errs));
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s:4: access_token_file: %s: No such "
	    "file or directory", f->conf, f->token);
	assert_string_equal(errs.msg[0], want);
	config_errors_release(&errs);

	assert_int_equal(mkdir(f->token, 0700), 0);
	assert_null(config_load(f->conf, &errs));
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s:4: access_token_file: %s: not a "
	    "regular file", f->conf, f->token);
	assert_string_equal(errs.msg[0], want);
	config_errors_release(&errs);
}

static void
test_parse_does_not_check_files(void **state)
{
	struct config *c;

	(void)state;
	/* check_files=0: nonexistent secret paths are fine */
	parse_ok("[matrix]\n"
	    "homeserver = https://m.example.org\n"
	    "user_id = @bb:example.org\n"
	    "password_file = /nonexistent/pw\n"
	    "rooms = !a:example.org\n"
	    "admins = @a:example.org\n", &c);
	assert_string_equal(c->password_file, "/nonexistent/pw");
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_password_file_alone),
		cmocka_unit_test(test_inline_comments),
		cmocka_unit_test(test_room_alias_not_a_comment),
		cmocka_unit_test(test_token_and_password_exclusive),
		cmocka_unit_test(test_crlf_and_spaces),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_list_empty_items),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_duration_keys),
		cmocka_unit_test(test_int_and_bool),
		cmocka_unit_test(test_all_errors_at_once),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_unknown_first_section),
		cmocka_unit_test(test_section_name_long),
		cmocka_unit_test(test_bad_prefix),
		cmocka_unit_test(test_nul_and_long_lines),
		cmocka_unit_test(test_no_trailing_newline),
		cmocka_unit_test(test_storage_keys),
		cmocka_unit_test(test_targets_and_remotes),
		cmocka_unit_test(test_valid_name),
		cmocka_unit_test(test_target_errors),
		cmocka_unit_test(test_target_keys_per_section),
		cmocka_unit_test(test_conninfo_uri_password),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test_setup_teardown(test_secret_0600_ok,
		    secret_setup, secret_teardown),
		cmocka_unit_test_setup_teardown(test_secret_too_open,
		    secret_setup, secret_teardown),
		cmocka_unit_test_setup_teardown(test_secret_other_files,
		    secret_setup, secret_teardown),
		cmocka_unit_test_setup_teardown(test_secret_missing_or_dir,
		    secret_setup, secret_teardown),
		cmocka_unit_test(test_parse_does_not_check_files),
		cmocka_unit_test(test_backend_checks_a_section),
	};

	return TU_RUN(tests);
}
