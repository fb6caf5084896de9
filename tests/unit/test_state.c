/*
 * test_state.c - what the bot remembers across restarts: next_batch, the
 * seen journal (durability, compaction, torn lines), the session file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state.h"
#include "util.h"
#include "testutil.h"

struct fx {
	char		*dir;
	struct state	*st;
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char *cause = NULL;

	f->dir = tu_mkdtemp();
	f->st = state_open(f->dir, &cause);
	assert_null(cause);
	assert_non_null(f->st);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	state_free(f->st);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

static void
reopen(struct fx *f)
{
	char *cause = NULL;

	state_free(f->st);
	f->st = state_open(f->dir, &cause);
	if (cause != NULL)
		print_message("state_open: %s\n", cause);
	assert_null(cause);
	assert_non_null(f->st);
}

static void
write_in(struct fx *f, const char *name, const char *text, mode_t mode)
{
	char *p = tu_path(f->dir, name);

	tu_write_str(p, text, mode);
	free(p);
}

static char *
read_in(struct fx *f, const char *name)
{
	char *p = tu_path(f->dir, name), *text = tu_read(p);

	free(p);
	return text;
}

static int
mode_in(struct fx *f, const char *name)
{
	char *p = tu_path(f->dir, name);
	int m = tu_mode(p);

	free(p);
	return m;
}

static void
test_next_batch(void **state)
{
	struct fx *f = *state;
	char *text;

	assert_null(state_next_batch(f->st));
	assert_string_equal(state_dir(f->st), f->dir);
	assert_int_equal(state_set_next_batch(f->st, "s72594_4483_1934"), 0);
	assert_string_equal(state_next_batch(f->st), "s72594_4483_1934");
	assert_int_equal(mode_in(f, "next_batch"), 0600);
	text = read_in(f, "next_batch");
	assert_string_equal(text, "s72594_4483_1934");
	free(text);
	reopen(f);
	assert_string_equal(state_next_batch(f->st), "s72594_4483_1934");
	assert_int_equal(state_set_next_batch(f->st, "s72595_1"), 0);
	reopen(f);
	assert_string_equal(state_next_batch(f->st), "s72595_1");
	/* no .tmp left behind */
	assert_int_equal(tu_count_files(f->dir, ".tmp"), 0);
}

static void
test_next_batch_file_forms(void **state)
{
	struct fx *f = *state;

	write_in(f, "next_batch", "  tok_1\n", 0600);
	reopen(f);
	assert_string_equal(state_next_batch(f->st), "tok_1");
	write_in(f, "next_batch", "\n", 0600);
	reopen(f);
	assert_null(state_next_batch(f->st));
	write_in(f, "next_batch", "", 0600);
	reopen(f);
	assert_null(state_next_batch(f->st));
}

static void
test_seen_durable(void **state)
{
	struct fx *f = *state;

	assert_false(state_seen(f->st, "$a:x"));
	state_mark_seen(f->st, "$a:x");
	state_mark_seen(f->st, "$b:x");
	state_mark_seen(f->st, "$a:x");		/* twice: recorded once */
	assert_true(state_seen(f->st, "$a:x"));
	assert_true(state_seen(f->st, "$b:x"));
	assert_int_equal(state_flush_seen(f->st), 0);
	assert_int_equal(state_flush_seen(f->st), 0);	/* nothing new */
	{
		char *text = read_in(f, "seen");

		assert_string_equal(text, "$a:x\n$b:x\n");
		free(text);
	}
	assert_int_equal(mode_in(f, "seen"), 0600);
	reopen(f);
	assert_true(state_seen(f->st, "$a:x"));
	assert_true(state_seen(f->st, "$b:x"));
	assert_false(state_seen(f->st, "$c:x"));
	assert_false(state_seen(f->st, "$a:"));
	assert_false(state_seen(f->st, "$a:xx"));
}

static void
test_seen_unflushed_not_durable(void **state)
{
	struct fx *f = *state;

	state_mark_seen(f->st, "$flushed:x");
	assert_int_equal(state_flush_seen(f->st), 0);
	state_mark_seen(f->st, "$pending:x");
	assert_true(state_seen(f->st, "$pending:x"));
	reopen(f);		/* a crash before the flush */
	assert_true(state_seen(f->st, "$flushed:x"));
	assert_false(state_seen(f->st, "$pending:x"));
}

static void
test_seen_compaction(void **state)
{
	struct fx *f = *state;
	const int extra = 10, total = STATE_SEEN_KEEP + extra;
	char id[32], *text;

	for (int i = 0; i < total; i++) {
		snprintf(id, sizeof(id), "$ev%05d:x", i);
		state_mark_seen(f->st, id);
	}
	assert_int_equal(state_flush_seen(f->st), 0);
	/* everything was appended */
	text = read_in(f, "seen");
	assert_int_equal(tu_count(text, "\n"), total);
	free(text);

	reopen(f);
	for (int i = 0; i < total; i++) {
		snprintf(id, sizeof(id), "$ev%05d:x", i);
		if (state_seen(f->st, id) != (i >= extra))
			print_message("%s: seen %d\n", id,
			    state_seen(f->st, id));
		assert_int_equal(state_seen(f->st, id), i >= extra);
	}
	/* the journal was rewritten with the last STATE_SEEN_KEEP, in order */
	text = read_in(f, "seen");
	assert_int_equal(tu_count(text, "\n"), STATE_SEEN_KEEP);
	snprintf(id, sizeof(id), "$ev%05d:x\n", extra);
	assert_true(str_startswith(text, id));
	snprintf(id, sizeof(id), "$ev%05d:x\n", total - 1);
	assert_true(tu_endswith(text, id));
	free(text);
	assert_int_equal(tu_count_files(f->dir, ".tmp"), 0);
}

/* A daemon that runs for months: the journal is compacted as it goes,
 * never larger than twice what is kept, never losing a recent id. */
static void
test_seen_compacted_while_running(void **state)
{
	struct fx *f = *state;
	const int total = 5 * STATE_SEEN_KEEP + 17;
	char id[32], *text;
	int lines;

	for (int i = 0; i < total; i++) {
		snprintf(id, sizeof(id), "$run%06d:x", i);
		state_mark_seen(f->st, id);
		if (i % 100 == 99)
			assert_int_equal(state_flush_seen(f->st), 0);
		if (i % 1000 == 999) {
			text = read_in(f, "seen");
			lines = tu_count(text, "\n");
			free(text);
			assert_true(lines <= 2 * STATE_SEEN_KEEP);
		}
	}
	assert_int_equal(state_flush_seen(f->st), 0);
	text = read_in(f, "seen");
	assert_true(tu_count(text, "\n") <= 2 * STATE_SEEN_KEEP);
	free(text);
	/* what a restart reads: the last STATE_SEEN_KEEP ids, all of them */
	reopen(f);
	for (int i = total - STATE_SEEN_KEEP; i < total; i++) {
		snprintf(id, sizeof(id), "$run%06d:x", i);
		assert_int_equal(state_seen(f->st, id), 1);
	}
	assert_int_equal(tu_count_files(f->dir, ".tmp"), 0);
}

static void
test_seen_torn_line(void **state)
{
	struct fx *f = *state;
	char *text;

	state_free(f->st);
	f->st = NULL;
	write_in(f, "seen", "$a:x\nnot-an-id\n$b:x\n$torn", 0600);
	reopen(f);
	assert_true(state_seen(f->st, "$a:x"));
	assert_true(state_seen(f->st, "$b:x"));
	assert_false(state_seen(f->st, "$torn"));
	assert_false(state_seen(f->st, "not-an-id"));
	text = read_in(f, "seen");
	assert_string_equal(text, "$a:x\n$b:x\n");
	free(text);
	/* appending after the repair yields whole lines */
	state_mark_seen(f->st, "$c:x");
	assert_int_equal(state_flush_seen(f->st), 0);
	reopen(f);
	assert_true(state_seen(f->st, "$c:x"));
	assert_false(state_seen(f->st, "$torn$c:x"));
	text = read_in(f, "seen");
	assert_string_equal(text, "$a:x\n$b:x\n$c:x\n");
	free(text);
}

static void
test_session(void **state)
{
	struct fx *f = *state;
	char *token = (char *)0x1, *device = (char *)0x1;

	assert_int_equal(state_load_session(f->st, &token, &device), -1);
	assert_null(token);
	assert_null(device);
	assert_int_equal(state_save_session(f->st, "syt_secret_token",
	    "DEVICE1"), 0);
	assert_int_equal(mode_in(f, "session"), 0600);
	assert_int_equal(state_load_session(f->st, &token, &device), 0);
	assert_string_equal(token, "syt_secret_token");
	assert_string_equal(device, "DEVICE1");
	free(token);
	free(device);
	reopen(f);
	assert_int_equal(state_load_session(f->st, &token, &device), 0);
	assert_string_equal(token, "syt_secret_token");
	free(token);
	free(device);

	assert_int_equal(state_clear_session(f->st), 0);
	assert_int_equal(state_load_session(f->st, &token, &device), -1);
	assert_null(token);
	assert_null(device);
	assert_int_equal(state_clear_session(f->st), 0);	/* again */
}

static void
test_session_refused_when_open(void **state)
{
	struct fx *f = *state;
	char *token, *device;

	write_in(f, "session", "{\"access_token\":\"t\",\"device_id\":\"D\"}",
	    0644);
	assert_int_equal(state_load_session(f->st, &token, &device), -1);
	assert_null(token);
	assert_null(device);
	/* a broken file is no session either */
	write_in(f, "session", "{\"access_token\":", 0600);
	assert_int_equal(state_load_session(f->st, &token, &device), -1);
	assert_null(token);
}

/*
 * Bug (util.c file_write_atomic): PATH.tmp is opened with O_CREAT|O_TRUNC
 * and the mode only applies when the file is created.  A leftover
 * session.tmp with mode 0644 (an interrupted write by another tool, a
 * restore from a backup) makes the session file - which holds the access
 * token - world-readable after the rename.
 */
static void
test_session_mode_despite_stale_tmp(void **state)
{
	struct fx *f = *state;

	write_in(f, "session.tmp", "stale", 0644);
	assert_int_equal(state_save_session(f->st, "syt_secret", "DEV"), 0);
	if (mode_in(f, "session") != 0600)
		print_message("session mode is %04o\n", mode_in(f, "session"));
	assert_int_equal(mode_in(f, "session"), 0600);
}

static void
test_open_fails(void **state)
{
	char *tmp = tu_mkdtemp(), *file = tu_path(tmp, "file");
	char *under = tu_path(file, "state"), *cause = NULL;

	(void)state;
	tu_write_str(file, "x", 0600);
	assert_null(state_open(under, &cause));
	assert_non_null(cause);
	assert_true(str_startswith(cause, under));
	free(cause);
	free(under);
	free(file);
	tu_rmtree(tmp);
}

static void
test_open_creates_dir(void **state)
{
	char *tmp = tu_mkdtemp(), *dir = tu_path(tmp, "a/b/c"), *cause = NULL;
	struct state *st;

	(void)state;
	st = state_open(dir, &cause);
	assert_null(cause);
	assert_non_null(st);
	assert_int_equal(tu_mode(dir), 0700);
	state_free(st);
	free(dir);
	tu_rmtree(tmp);
}

/* The first start's time: recorded once, kept across opens. */
static void
test_first_start(void **state)
{
	struct fx *f = *state;
	int64_t t = -1;
	FILE *fp;
	char *path = xasprintf("%s/first_start", f->dir);

	assert_int_equal(state_first_start(f->st, 1234567, &t), 0);
	assert_int_equal(t, 1234567);
	reopen(f);
	assert_int_equal(state_first_start(f->st, 9999999, &t), 0);
	assert_int_equal(t, 1234567);	/* not moved by a later start */
	/* garbage: started again, with a warning */
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("yesterday\n", fp);
	fclose(fp);
	assert_int_equal(state_first_start(f->st, 42, &t), 0);
	assert_int_equal(t, 42);
	/* recorded in the future (a clock that was ahead): started again */
	assert_int_equal(state_first_start(f->st, 41, &t), 0);
	assert_int_equal(t, 41);
	/* a state_dir from before first_start (next_batch there): 0 */
	unlink(path);
	assert_int_equal(state_set_next_batch(f->st, "s1"), 0);
	assert_int_equal(state_first_start(f->st, 777, &t), 0);
	assert_int_equal(t, 0);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_next_batch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_next_batch_file_forms,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_seen_durable, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_seen_unflushed_not_durable,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_seen_compaction, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_seen_compacted_while_running,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_seen_torn_line, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_refused_when_open,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_session_mode_despite_stale_tmp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_start, setup,
		    teardown),
		cmocka_unit_test(test_open_fails),
		cmocka_unit_test(test_open_creates_dir),
	};

	return TU_RUN(tests);
}
