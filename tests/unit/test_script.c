/*
 * test_script.c - [script NAME] targets and hooks in bot.conf: argv
 * splitting, env, output, the keys per kind, what needs what, the owner
 * and permission check of programs; and the text a report shows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "config.h"
#include "script.h"
#include "util.h"
#include "testutil.h"

static struct config *
parse(const char *text, struct config_errors *errs, int check_files)
{
	return config_parse("t.conf", text, strlen(text), check_files, errs);
}

static int
has_error_part(const struct config_errors *errs, const char *part)
{
	for (size_t i = 0; i < errs->n; i++)
		if (strstr(errs->msg[i], part) != NULL)
			return 1;
	for (size_t i = 0; i < errs->n; i++)
		print_message("  error[%zu]: %s\n", i, errs->msg[i]);
	return 0;
}

static void
test_script_target(void **state)
{
	struct config_errors errs;
	struct config *c;
	struct target *t;

	(void)state;
	c = parse(GOOD_MATRIX
	    "[script cdn]\n"
	    "command = /usr/local/bin/check-cdn --url 'https://cdn.example/x y' "
	    "\"a\\\"b\"\n"
	    "env = RAILS_ENV=production 'GREETING=hello, world'\n"
	    "workdir = /home/mastodon/live\n"
	    "timeout = 5m\n"
	    "schedule = */15 * * * *\n"
	    "retries = 0\n"
	    "stale_after = 1h\n"
	    "healthcheck_url = https://hc.example/ping/x\n", &errs, 0);
	assert_non_null(c);
	t = config_target(c, "cdn");
	assert_non_null(t);
	assert_int_equal(t->kind, TARGET_SCRIPT);
	assert_string_equal(config_kind_name(t->kind), "script");
	assert_string_equal(t->command[0], "/usr/local/bin/check-cdn");
	assert_string_equal(t->command[1], "--url");
	assert_string_equal(t->command[2], "https://cdn.example/x y");
	assert_string_equal(t->command[3], "a\"b");
	assert_null(t->command[4]);
	assert_string_equal(t->env[0], "RAILS_ENV=production");
	assert_string_equal(t->env[1], "GREETING=hello, world");
	assert_null(t->env[2]);
	assert_string_equal(t->workdir, "/home/mastodon/live");
	assert_int_equal(t->timeout, 300);
	assert_string_equal(t->output, "log");
	assert_int_equal(t->retries, 0);
	assert_int_equal(t->stale_after, 3600);
	assert_int_equal(config_records_runs(t), 1);
	assert_null(t->pre_hook);
	assert_int_equal(t->hook_timeout, 600);
	config_free(c);
}

static void
test_script_output_backup(void **state)
{
	struct config_errors errs;
	struct config *c;
	struct target *t;

	(void)state;
	c = parse(GOOD_MATRIX
	    "[remote off]\npath = /mnt/off\n"
	    "[script ldap]\n"
	    "command = /usr/sbin/slapcat -n 1\n"
	    "output = backup\n"
	    "restore_command = /usr/sbin/slapadd -n 1\n"
	    "keep = last=7\n"
	    "remotes = off\n"
	    "compression = none\n", &errs, 0);
	assert_non_null(c);
	t = config_target(c, "ldap");
	assert_int_equal(config_records_runs(t), 0);
	assert_string_equal(t->restore_command[0], "/usr/sbin/slapadd");
	assert_string_equal(t->compression, "none");
	assert_true(t->keep.set);
	config_free(c);
}

static void
test_hooks_on_every_kind(void **state)
{
	static const char *const kinds[] = { "postgres", "redis", "media",
	    "files", "script" };
	static const char *const needs[] = {
	    "conninfo = dbname=x\n", "url = redis://127.0.0.1\n",
	    "source = /srv/media\ndestinations = /mnt/m\n",
	    "paths = /etc\n", "command = /bin/true\n" };

	(void)state;
	for (size_t i = 0; i < nitems(kinds); i++) {
		struct config_errors errs;
		struct config *c;
		struct target *t;
		char *text = xasprintf(GOOD_MATRIX "[%s t1]\n%s"
		    "pre_hook = /usr/bin/tootctl media remove --days 7\n"
		    "post_hook = /bin/echo done\n"
		    "on_failure_hook = /bin/echo failed\n"
		    "pre_restore_hook = /usr/bin/tootctl maintenance on\n"
		    "post_restore_hook = /usr/bin/tootctl maintenance off\n"
		    "hook_timeout = 90s\n", kinds[i], needs[i]);

		c = parse(text, &errs, 0);
		free(text);
		if (c == NULL)
			(void)has_error_part(&errs, "-");
		assert_non_null(c);
		t = config_target(c, "t1");
		assert_string_equal(t->pre_hook[0], "/usr/bin/tootctl");
		assert_string_equal(t->pre_hook[4], "7");
		assert_null(t->pre_hook[5]);
		assert_string_equal(t->post_hook[1], "done");
		assert_string_equal(t->on_failure_hook[1], "failed");
		assert_string_equal(t->pre_restore_hook[2], "on");
		assert_string_equal(t->post_restore_hook[2], "off");
		assert_int_equal(t->hook_timeout, 90);
		config_free(c);
	}
}

static void
test_script_errors(void **state)
{
	struct config_errors errs;
	struct config *c;

	(void)state;
	/* no command; restore_command without output = backup */
	c = parse(GOOD_MATRIX "[script a]\nrestore_command = /bin/cat\n",
	    &errs, 0);
	assert_null(c);
	assert_true(has_error_part(&errs, "[script a]: command is required"));
	assert_true(has_error_part(&errs, "need output = backup"));
	config_errors_release(&errs);

	/* not a shell: a relative program, a bad quote, a bad env */
	c = parse(GOOD_MATRIX "[script b]\ncommand = tootctl media remove\n"
	    "pre_hook = /bin/echo 'open\n"
	    "env = 1X=2 NOEQUALS BACKUPBOT_TARGET=x\n"
	    "output = stdout\n"
	    "workdir = relative/dir\n", &errs, 0);
	assert_null(c);
	assert_true(has_error_part(&errs, "t.conf:8: command: 'tootctl' must "
	    "be an absolute path"));
	assert_true(has_error_part(&errs, "t.conf:9: pre_hook: unterminated "
	    "' quote"));
	assert_true(has_error_part(&errs, "env: '1X=2' is not NAME=value"));
	assert_true(has_error_part(&errs, "env: 'NOEQUALS' is not NAME=value"));
	assert_true(has_error_part(&errs, "env: BACKUPBOT_TARGET is set by "
	    "backupbot"));
	assert_true(has_error_part(&errs, "output: 'stdout' is not one of "
	    "log|backup"));
	assert_true(has_error_part(&errs, "workdir 'relative/dir' must be "
	    "an absolute path"));
	config_errors_release(&errs);

	/* hooks are not [script]-only keys elsewhere: command is */
	c = parse(GOOD_MATRIX "[files f]\npaths = /etc\ncommand = /bin/true\n",
	    &errs, 0);
	assert_null(c);
	assert_true(has_error_part(&errs, "unknown key 'command' in [files]"));
	config_errors_release(&errs);

	/* empty argv */
	c = parse(GOOD_MATRIX "[files f]\npaths = /etc\npost_hook = ''\n",
	    &errs, 0);
	assert_null(c);
	config_errors_release(&errs);
	c = parse(GOOD_MATRIX "[script all]\ncommand = /bin/true\n", &errs, 0);
	assert_null(c);
	assert_true(has_error_part(&errs, "reserved word"));
	config_errors_release(&errs);
}

/* check_files: the program's owner and mode, and its directory's. */
static void
test_program_permissions(void **state)
{
	char *dir = tu_mkdtemp(), *prog = tu_path(dir, "job.sh");
	char *conf, *cause = NULL;
	char *argv[] = { prog, NULL, NULL };
	struct config_errors errs;
	struct config *c;

	(void)state;
	assert_int_equal(chmod(dir, 0755), 0);
	tu_write_str(prog, "#!/bin/sh\necho hi\n", 0755);
	assert_int_equal(config_check_program(argv, NULL, &cause), 0);
	conf = xasprintf(GOOD_MATRIX "[script s]\ncommand = %s --flag\n"
	    "[files f]\npaths = /etc\npre_hook = /bin/sh %s\n", prog, prog);
	c = parse(conf, &errs, 1);
	/* the token file of GOOD_MATRIX does not exist: only that error */
	assert_null(c);
	assert_int_equal(errs.n, 1);
	assert_true(has_error_part(&errs, "access_token_file"));
	config_errors_release(&errs);

	/* world-writable: refused, with the fix */
	assert_int_equal(chmod(prog, 0757), 0);
	assert_int_equal(config_check_program(argv, NULL, &cause), -1);
	assert_non_null(strstr(cause, "writable by everyone"));
	assert_non_null(strstr(cause, "chmod go-w"));
	free(cause);
	c = parse(conf, &errs, 1);
	assert_null(c);
	assert_true(has_error_part(&errs, "t.conf:7: [script s] command: the "
	    "program "));
	/* a script handed to an interpreter is checked too */
	assert_true(has_error_part(&errs, "t.conf:9: [files f] pre_hook: the "
	    "program "));
	config_errors_release(&errs);

	/* group-writable */
	assert_int_equal(chmod(prog, 0775), 0);
	assert_int_equal(config_check_program(argv, NULL, &cause), -1);
	assert_non_null(strstr(cause, "writable by its group"));
	free(cause);

	/* a directory anyone can write to (not sticky): replaceable */
	assert_int_equal(chmod(prog, 0755), 0);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(config_check_program(argv, NULL, &cause), -1);
	assert_non_null(strstr(cause, "the directory"));
	free(cause);
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(config_check_program(argv, NULL, &cause), 0);
	assert_int_equal(chmod(dir, 0755), 0);

	/* not executable, missing, relative */
	assert_int_equal(chmod(prog, 0644), 0);
	assert_int_equal(config_check_program(argv, NULL, &cause), -1);
	assert_non_null(strstr(cause, "not an executable file"));
	free(cause);
	argv[0] = "/nonexistent/x";
	assert_int_equal(config_check_program(argv, NULL, &cause), -1);
	free(cause);
	argv[0] = "x";
	assert_int_equal(config_check_program(argv, NULL, &cause), -1);
	free(cause);

	/* owned by someone else: refused, unless it runs as them */
	assert_int_equal(chmod(prog, 0755), 0);
	argv[0] = prog;
	if (geteuid() == 0 && getpwnam("nobody") != NULL) {
		struct passwd *pw = getpwnam("nobody");

		assert_int_equal(chown(prog, pw->pw_uid, pw->pw_gid), 0);
		assert_int_equal(config_check_program(argv, NULL, &cause), -1);
		assert_non_null(strstr(cause, "must belong to root"));
		free(cause);
		assert_int_equal(config_check_program(argv, "nobody", &cause),
		    0);
		assert_int_equal(config_check_program(argv, "no-such-user-x",
		    &cause), -1);
		free(cause);
	}

	free(conf);
	free(prog);
	tu_rmtree(dir);
}

static void
test_clean_text(void **state)
{
	char *s;
	char big[5000];

	(void)state;
	s = script_clean_text("ok \xc3\xa9\n\x1b[31mred\x7f\xff\xc3\n", 18, 100);
	assert_string_equal(s, "ok \xc3\xa9\n?[31mred???\n");
	free(s);
	/* cut at a line start, from the end */
	memset(big, 'x', sizeof(big));
	big[100] = '\n';
	big[4000] = '\n';
	s = script_clean_text(big, sizeof(big), 2048);
	assert_int_equal(strlen(s), sizeof(big) - 4001);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_script_target),
		cmocka_unit_test(test_script_output_backup),
		cmocka_unit_test(test_hooks_on_every_kind),
		cmocka_unit_test(test_script_errors),
		cmocka_unit_test(test_program_permissions),
		cmocka_unit_test(test_clean_text),
	};

	return TU_RUN(tests);
}
