/*
 * test_media.c - the media backend without a real store: the flag
 * allowlist (allowed and refused, values checked), where deleted files
 * are kept, the target check, rclone's JSON log lines, and whole sync
 * runs against a fake rclone (a shell script) for the exit codes,
 * partial and total failure, an empty or missing source, progress and
 * cancel.  Also the files backend's choice of paths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "config.h"
#include "json.h"
#include "media.h"
#include "proc.h"
#include "util.h"
#include "testutil.h"

/* ---- flags ---------------------------------------------------------- */

static char **
flags_ok(const char *flags, int want_argc)
{
	char **argv = NULL, *cause = NULL;
	int argc = -1;

	if (media_flags_parse(flags, &argv, &argc, &cause) != 0)
		fail_msg("'%s' refused: %s", flags, cause);
	assert_null(cause);
	assert_non_null(argv);
	assert_int_equal(argc, want_argc);
	assert_null(argv[argc]);
	return argv;
}

/* Refused, and the cause contains want. */
static void
flags_bad(const char *flags, const char *want)
{
	char **argv = (char **)1, *cause = NULL;
	int argc = -1;

	if (media_flags_parse(flags, &argv, &argc, &cause) != -1)
		fail_msg("'%s' was accepted", flags);
	assert_null(argv);
	assert_int_equal(argc, 0);
	assert_non_null(cause);
	if (strstr(cause, want) == NULL)
		fail_msg("'%s': cause '%s' does not say '%s'", flags, cause,
		    want);
	free(cause);
}

static void
test_flags_allowed(void **state)
{
	char **argv;

	(void)state;
	argv = flags_ok("--transfers 8 --checkers 16 --fast-list", 3);
	assert_string_equal(argv[0], "--transfers=8");
	assert_string_equal(argv[1], "--checkers=16");
	assert_string_equal(argv[2], "--fast-list");
	media_argv_free(argv);

	/* = form, any white space, patterns kept whole */
	argv = flags_ok("  --bwlimit=10M\t--exclude  *.tmp\n--include=/a/**"
	    " --max-delete 100 --timeout 5m --contimeout=15s ", 6);
	assert_string_equal(argv[0], "--bwlimit=10M");
	assert_string_equal(argv[1], "--exclude=*.tmp");
	assert_string_equal(argv[2], "--include=/a/**");
	assert_string_equal(argv[3], "--max-delete=100");
	assert_string_equal(argv[4], "--timeout=5m");
	assert_string_equal(argv[5], "--contimeout=15s");
	media_argv_free(argv);

	/* a pattern that starts with '-' stays the value of its flag */
	argv = flags_ok("--exclude -draft-*", 1);
	assert_string_equal(argv[0], "--exclude=-draft-*");
	media_argv_free(argv);

	argv = flags_ok("--tpslimit 10 --tpslimit-burst 20 --checksum "
	    "--size-only --update --use-server-modtime --no-update-modtime "
	    "--s3-chunk-size 64M --s3-upload-concurrency 4 --max-backlog "
	    "10000 --buffer-size 16M --retries 3 --low-level-retries 10 "
	    "--bwlimit off --bwlimit 1.5M --buffer-size=0", 16);
	media_argv_free(argv);

	argv = flags_ok(NULL, 0);
	media_argv_free(argv);
	argv = flags_ok("", 0);
	media_argv_free(argv);
	argv = flags_ok(" \t\n ", 0);
	media_argv_free(argv);
}

static void
test_flags_refused(void **state)
{
	(void)state;
	/* not on the list: the cause names the flag */
	flags_bad("--config /x", "--config");
	flags_bad("--transfers 8 --config=/x", "--config");
	flags_bad("--delete-excluded", "--delete-excluded");
	flags_bad("--backup-dir x:y", "--backup-dir");
	flags_bad("--fast-list --password-command=sh", "--password-command");
	flags_bad("--log-file /etc/passwd", "--log-file");
	flags_bad("--dry-run", "not allowed");
	flags_bad("--transfers 8 --bogus", "allowed are: --transfers");
	/* not a flag at all */
	flags_bad("-v", "'-v' is not an rclone flag");
	flags_bad("--transfers 8 /etc", "'/etc' is not an rclone flag");
	flags_bad("transfers=8", "not an rclone flag");
	flags_bad("--", "not an rclone flag");
	/* values */
	flags_bad("--transfers", "--transfers needs a number");
	flags_bad("--transfers abc", "--transfers 'abc': not a number");
	flags_bad("--transfers -1", "not a number");
	flags_bad("--transfers=", "not a number");
	flags_bad("--max-delete 1e9", "not a number");
	flags_bad("--checkers 99999999999999999999", "not a number");
	flags_bad("--bwlimit 10M,20M", "--bwlimit '10M,20M'");
	flags_bad("--bwlimit 1M/s", "not a value");
	flags_bad("--s3-chunk-size $(id)", "not a value");
	flags_bad("--timeout 5m;rm", "not a value");
	flags_bad("--exclude a\001b", "not a pattern");
	flags_bad("--include=a\177", "not a pattern");
	flags_bad("--exclude", "needs a pattern");
	/* switches take no value */
	flags_bad("--fast-list=true", "--fast-list takes no value");
	flags_bad("--checksum=1", "takes no value");
}

/* ---- paths ---------------------------------------------------------- */

static void
root_is(const char *dest, const char *want)
{
	char *cause = NULL, *root = media_deleted_root(dest, &cause);

	if (want == NULL) {
		assert_null(root);
		assert_non_null(cause);
		assert_non_null(strstr(cause, "keep_deleted_days"));
		free(cause);
		return;
	}
	assert_null(cause);
	assert_non_null(root);
	assert_string_equal(root, want);
	free(root);
}

static void
test_deleted_root(void **state)
{
	(void)state;
	root_is("remote:bucket/vmst-media", "remote:bucket/vmst-media-deleted");
	root_is("do-backup-nyc:vmst-media", "do-backup-nyc:vmst-media-deleted");
	root_is("remote:bucket/a/b/", "remote:bucket/a/b-deleted");
	root_is("/srv/media", "/srv/media-deleted");
	root_is("/srv/media//", "/srv/media-deleted");
	root_is("relative", "relative-deleted");
	root_is("s3,provider=Minio:bucket", "s3,provider=Minio:bucket-deleted");
	root_is("remote:", NULL);
	root_is("/", NULL);
	root_is("remote:a/..", NULL);
	root_is("remote:.", NULL);
	root_is("", NULL);
}

static void
target_init(struct target *t, const char *source, char **dests, size_t n)
{
	memset(t, 0, sizeof(*t));
	t->name = "cdn";
	t->kind = TARGET_MEDIA;
	t->source = (char *)source;
	t->destinations.v = dests;
	t->destinations.n = n;
}

static void
check_bad(const struct target *t, const char *want)
{
	char *cause = NULL;

	assert_int_equal(media_target_check(t, &cause), -1);
	assert_non_null(cause);
	if (strstr(cause, want) == NULL)
		fail_msg("cause '%s' does not say '%s'", cause, want);
	free(cause);
}

static void
test_target_check(void **state)
{
	char *two[] = { "nyc:vmst-media", "ams:vmst-media" };
	char *same[] = { "nyc:vmst-media", "nyc:vmst-media/" };
	char *dash[] = { "--config=/x" };
	char *root[] = { "nyc:" };
	char *src[] = { "cdn:vmst-media/" };
	char *ctl[] = { "nyc:a\nb" };
	struct target t;
	char *cause = NULL;

	(void)state;
	target_init(&t, "cdn:vmst-media", two, 2);
	t.flags = "--transfers 8 --checkers 16 --fast-list";
	t.keep_deleted_days = 7;
	assert_int_equal(media_target_check(&t, &cause), 0);
	assert_null(cause);

	t.flags = "--transfers 8 --delete-excluded";
	check_bad(&t, "--delete-excluded");
	t.flags = NULL;

	target_init(&t, "cdn:vmst-media", same, 2);
	check_bad(&t, "listed twice");
	target_init(&t, "cdn:vmst-media", dash, 1);
	check_bad(&t, "starts with '-'");
	target_init(&t, "-cdn", two, 2);
	check_bad(&t, "source '-cdn' starts with '-'");
	target_init(&t, NULL, two, 2);
	check_bad(&t, "source is empty");
	target_init(&t, "cdn:vmst-media", src, 1);
	check_bad(&t, "is the source");
	target_init(&t, "cdn:vmst-media", ctl, 1);
	check_bad(&t, "control character");
	target_init(&t, "cdn:vmst-media", two, 0);
	check_bad(&t, "destinations is required");
	/* a remote's root: fine, unless deleted files are to be kept */
	target_init(&t, "cdn:vmst-media", root, 1);
	assert_int_equal(media_target_check(&t, &cause), 0);
	t.keep_deleted_days = 1;
	check_bad(&t, "root of a remote");
}

/* ---- the JSON log --------------------------------------------------- */

static int
logline(const char *line, struct media_stats *st, char *msg, size_t n)
{
	return media_log_line(line, strlen(line), st, msg, n);
}

static void
test_log_lines(void **state)
{
	struct media_stats st;
	char msg[128];

	(void)state;
	memset(&st, 0, sizeof(st));
	/* rclone 1.60.1, --use-json-log --stats-log-level NOTICE */
	assert_int_equal(logline("{\"level\":\"warning\",\"msg\":\"\\n"
	    "Transferred: 1 / 1\\n\",\"source\":\"accounting/stats.go:482\","
	    "\"stats\":{\"bytes\":465003,\"checks\":33,\"deletedDirs\":0,"
	    "\"deletes\":1,\"elapsedTime\":0.0683,\"errors\":0,\"eta\":null,"
	    "\"fatalError\":false,\"renames\":2,\"retryError\":false,"
	    "\"speed\":1024.5,\"totalBytes\":500000,\"totalChecks\":33,"
	    "\"totalTransfers\":31,\"transferTime\":0,\"transfers\":30},"
	    "\"time\":\"2026-11-26T12:25:51.664787+00:00\"}\n", &st, msg,
	    sizeof(msg)), 1);
	assert_int_equal(st.seen, 1);
	assert_int_equal(st.bytes, 465003);
	assert_int_equal(st.total_bytes, 500000);
	assert_int_equal(st.transfers, 30);
	assert_int_equal(st.total_transfers, 31);
	assert_int_equal(st.checks, 33);
	assert_int_equal(st.deletes, 1);
	assert_int_equal(st.renames, 2);
	assert_int_equal(st.errors, 0);
	assert_true(st.eta < 0);
	assert_true(st.speed > 1024 && st.speed < 1025);
	assert_int_equal(st.fatal, 0);
	assert_string_equal(msg, "");

	assert_int_equal(logline("{\"level\":\"warning\",\"msg\":\"x\","
	    "\"stats\":{\"bytes\":-5,\"errors\":1,\"eta\":12,\"fatalError\":"
	    "true,\"lastError\":\"directory\\nnot found\"}}", &st, msg,
	    sizeof(msg)), 1);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.errors, 1);
	assert_true(st.eta > 11.9 && st.eta < 12.1);
	assert_int_equal(st.fatal, 1);
	assert_string_equal(st.last_error, "directory not found");

	assert_int_equal(logline("{\"level\":\"error\",\"msg\":\"Failed to "
	    "copy: permission denied\",\"object\":\"a/b.png\",\"objectType\":"
	    "\"*local.Object\"}", &st, msg, sizeof(msg)), 2);
	assert_string_equal(msg, "a/b.png: Failed to copy: permission denied");
	assert_int_equal(logline("{\"level\":\"error\",\"msg\":\"not deleting "
	    "files as there were IO errors\"}", &st, msg, sizeof(msg)), 2);
	assert_int_equal(logline("{\"level\":\"info\",\"msg\":\"Copied (new)\","
	    "\"object\":\"a\"}", &st, msg, sizeof(msg)), 0);
	assert_int_equal(logline("{\"level\":\"warning\",\"msg\":\"Config file "
	    "not found\"}", &st, msg, sizeof(msg)), 0);
	/* rclone's last words are plain text, even with --use-json-log */
	assert_int_equal(logline("2026/11/26 12:25:56 Failed to sync: "
	    "directory not found\n", &st, msg, sizeof(msg)), 2);
	assert_string_equal(msg, "Failed to sync: directory not found");
	assert_int_equal(logline("panic: runtime error\r\n", &st, msg,
	    sizeof(msg)), 2);
	assert_string_equal(msg, "panic: runtime error");
	assert_int_equal(logline("{not json", &st, msg, sizeof(msg)), 2);
	assert_int_equal(logline("\n", &st, msg, sizeof(msg)), 0);
	assert_int_equal(logline("", &st, msg, sizeof(msg)), 0);
	/* bounded, control characters gone */
	assert_int_equal(logline("{\"level\":\"error\",\"msg\":\"a\\u0007b"
	    "cdefghijklmnopqrstuvwxyz\"}", &st, msg, 8), 2);
	assert_string_equal(msg, "a bcdef");
	assert_string_equal(media_exit_text(3), "directory not found");
	assert_string_equal(media_exit_text(99), "unknown exit code");
}

/* ---- whole runs against a fake rclone ------------------------------- */

/*
 * lsf: prints a name, nothing for paths with "empty", exit 3 for paths
 * with "missing".  sync: records its argv, reports two stats objects
 * (errors=$FAKE_ERRORS in the last) and fails with exit 7 when its
 * destination contains $FAKE_FAIL; with $FAKE_SLEEP it sleeps first.
 */
static const char fake_rclone[] =
    "#!/bin/sh\n"
    "cmd=$1\n"
    "for last; do :; done\n"
    "case $cmd in\n"
    "lsf)\n"
    "  case $last in\n"
    "  *missing*) echo '{\"level\":\"error\",\"msg\":\"error listing: "
    "directory not found\"}' >&2; exit 3;;\n"
    "  *empty*) exit 0;;\n"
    "  esac\n"
    "  echo 'a/'; exit 0;;\n"
    "sync)\n"
    "  echo \"$@\" >> \"$FAKE_ARGS\"\n"
    "  [ -n \"$FAKE_SLEEP\" ] && sleep \"$FAKE_SLEEP\"\n"
    "  echo '{\"level\":\"warning\",\"msg\":\"x\",\"stats\":{\"bytes\":100,"
    "\"totalBytes\":300,\"transfers\":1,\"totalTransfers\":3,"
    "\"checks\":5,\"deletes\":0,\"errors\":0,\"eta\":3}}' >&2\n"
    "  case $last in *\"${FAKE_FAIL:-/nothing/}\"*)\n"
    "    echo '{\"level\":\"error\",\"msg\":\"Failed to copy: quota "
    "exceeded\",\"object\":\"a/b\"}' >&2\n"
    "    echo '{\"level\":\"error\",\"msg\":\"Attempt 3/3 failed with 1 "
    "errors\"}' >&2\n"
    "    echo '2026/11/26 12:00:00 Failed to sync: quota exceeded' >&2\n"
    "    exit 7;;\n"
    "  esac\n"
    "  printf '{\"level\":\"warning\",\"msg\":\"x\",\"stats\":{\"bytes\":300,"
    "\"totalBytes\":300,\"transfers\":3,\"totalTransfers\":3,"
    "\"checks\":9,\"deletes\":2,\"errors\":%s,\"lastError\":\"vanished\","
    "\"eta\":null}}\\n' \"${FAKE_ERRORS:-0}\" >&2\n"
    "  exit 0;;\n"
    "purge) echo \"purge $last\" >> \"$FAKE_ARGS\"; exit 0;;\n"
    "esac\n"
    "exit 1\n";

struct fake {
	char			*dir;
	char			*args;
	struct config		 cfg;
	struct target		 t;
	struct job_ctx		 ctx;
	volatile sig_atomic_t	 cancelled;
	int			 progress_calls;
	uint64_t		 last_done;
	uint64_t		 last_total;
	int			 cancel_on_progress;
};

static void
fake_progress(struct job_ctx *ctx, const char *phase, uint64_t done,
    uint64_t total)
{
	struct fake *f = ctx->arg;

	assert_non_null(phase);
	f->progress_calls++;
	f->last_done = done;
	f->last_total = total;
	if (f->cancel_on_progress)
		f->cancelled = 1;
}

static struct fake *
fake_new(char **dests, size_t n)
{
	struct fake *f = xcalloc(1, sizeof(*f));
	char *script;

	f->dir = tu_mkdtemp();
	script = tu_path(f->dir, "rclone");
	tu_write_str(script, fake_rclone, 0700);
	f->args = tu_path(f->dir, "args");
	setenv("FAKE_ARGS", f->args, 1);
	unsetenv("FAKE_FAIL");
	unsetenv("FAKE_ERRORS");
	unsetenv("FAKE_SLEEP");
	f->cfg.rclone = script;
	target_init(&f->t, "cdn:vmst-media", dests, n);
	f->ctx.cfg = &f->cfg;
	f->ctx.target = &f->t;
	f->ctx.id = "cdn-20261126T030000Z";
	f->ctx.progress = fake_progress;
	f->ctx.cancelled = &f->cancelled;
	f->ctx.arg = f;
	return f;
}

static void
fake_free(struct fake *f)
{
	free(f->cfg.rclone);
	free(f->args);
	tu_rmtree(f->dir);
	free(f);
}

/* Run the backend's sync: its return value, manifest and cause. */
static int
fake_sync(struct fake *f, cJSON **manifest, char **cause)
{
	*manifest = cJSON_CreateObject();
	*cause = NULL;
	return backend_media.sync(&f->ctx, *manifest, cause);
}

static const cJSON *
dest_of(const cJSON *m, const char *name)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(m, "destinations"), name);

	assert_non_null(d);
	return d;
}

static void
test_sync_ok(void **state)
{
	char *dests[] = { "nyc:vmst-media", "ams:vmst-media" };
	struct fake *f = fake_new(dests, 2);
	const cJSON *d;
	cJSON *m;
	char *cause, *args;

	(void)state;
	f->t.flags = "--transfers 8 --fast-list";
	assert_int_equal(fake_sync(f, &m, &cause), 0);
	assert_null(cause);
	assert_string_equal(json_text(m, "source"), "cdn:vmst-media");
	d = dest_of(m, "nyc:vmst-media");
	assert_string_equal(json_text(d, "status"), "ok");
	assert_int_equal((int)json_num(d, "transferred"), 3);
	assert_int_equal((int)json_num(d, "bytes"), 300);
	assert_int_equal((int)json_num(d, "deleted"), 2);
	assert_int_equal((int)json_num(d, "checks"), 9);
	assert_int_equal((int)json_num(d, "errors"), 0);
	assert_int_equal((int)json_num(d, "exit_code"), 0);
	assert_null(json_str(d, "error"));
	assert_string_equal(json_text(dest_of(m, "ams:vmst-media"), "status"),
	    "ok");
	assert_int_equal((int)json_num(m, "transferred"), 6);
	/* progress of the current destination, up to the end */
	assert_true(f->progress_calls >= 4);
	assert_int_equal(f->last_done, 300);
	assert_int_equal(f->last_total, 300);

	/* argv: allowed flags first, ours after, the paths after "--" */
	args = tu_read(f->args);
	assert_non_null(strstr(args, "sync --transfers=8 --fast-list "
	    "--use-json-log --stats=2s --stats-log-level=NOTICE -- "
	    "cdn:vmst-media nyc:vmst-media\n"));
	assert_non_null(strstr(args, "-- cdn:vmst-media ams:vmst-media\n"));
	assert_null(strstr(args, "--backup-dir"));
	free(args);
	cJSON_Delete(m);
	fake_free(f);
}

static void
test_sync_keep_deleted(void **state)
{
	char *dests[] = { "nyc:bucket/vmst-media" };
	struct fake *f = fake_new(dests, 1);
	char *cause, *args, date[16], *want;
	struct tm tm;
	time_t now = time(NULL);
	cJSON *m;

	(void)state;
	f->t.keep_deleted_days = 7;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	assert_int_equal(fake_sync(f, &m, &cause), 0);
	args = tu_read(f->args);
	want = xasprintf("--backup-dir=nyc:bucket/vmst-media-deleted/%s -- "
	    "cdn:vmst-media nyc:bucket/vmst-media\n", date);
	if (strstr(args, want) == NULL)
		fail_msg("no '%s' in '%s'", want, args);
	/* the fake lists one name, "a/": not a date, never purged */
	assert_null(strstr(args, "purge"));
	free(want);
	free(args);
	cJSON_Delete(m);
	fake_free(f);
}

static void
test_sync_partial_and_failed(void **state)
{
	char *dests[] = { "nyc:vmst-media", "ams:vmst-media" };
	struct fake *f = fake_new(dests, 2);
	const cJSON *d;
	cJSON *m;
	char *cause;

	(void)state;
	/* one destination fails: partial, the other is still synced */
	setenv("FAKE_FAIL", "nyc:", 1);
	assert_int_equal(fake_sync(f, &m, &cause), 1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "1 of 2 destinations failed"));
	d = dest_of(m, "nyc:vmst-media");
	assert_string_equal(json_text(d, "status"), "failed");
	assert_int_equal((int)json_num(d, "exit_code"), 7);
	assert_non_null(strstr(json_text(d, "error"), "rclone exited with "
	    "status 7 (fatal error, e.g. quota or authentication"));
	assert_non_null(strstr(json_text(d, "error"),
	    "a/b: Failed to copy: quota exceeded | Failed to sync: quota "
	    "exceeded"));
	assert_null(strstr(json_text(d, "error"), "Attempt"));
	assert_string_equal(json_text(dest_of(m, "ams:vmst-media"), "status"),
	    "ok");
	free(cause);
	cJSON_Delete(m);

	/* all fail: -1 */
	setenv("FAKE_FAIL", "vmst-media", 1);
	assert_int_equal(fake_sync(f, &m, &cause), -1);
	assert_non_null(strstr(cause, "all 2 destinations failed"));
	free(cause);
	cJSON_Delete(m);

	/* exit 0 but errors in the stats: never success */
	unsetenv("FAKE_FAIL");
	setenv("FAKE_ERRORS", "2", 1);
	assert_int_equal(fake_sync(f, &m, &cause), -1);
	d = dest_of(m, "ams:vmst-media");
	assert_string_equal(json_text(d, "status"), "failed");
	assert_non_null(strstr(json_text(d, "error"),
	    "rclone reported 2 errors: vanished"));
	free(cause);
	cJSON_Delete(m);
	fake_free(f);
}

static void
test_sync_source(void **state)
{
	char *dests[] = { "nyc:vmst-media", "ams:empty-dest" };
	struct fake *f = fake_new(dests, 2);
	const cJSON *d;
	cJSON *m;
	char *cause, *args;

	(void)state;
	/* gone: nothing runs */
	f->t.source = "cdn:missing";
	assert_int_equal(fake_sync(f, &m, &cause), -1);
	assert_non_null(strstr(cause, "source: cdn:missing does not exist"));
	d = dest_of(m, "nyc:vmst-media");
	assert_string_equal(json_text(d, "status"), "failed");
	assert_non_null(strstr(json_text(d, "error"), "not run"));
	assert_false(tu_exists(f->args));
	free(cause);
	cJSON_Delete(m);

	/* empty: synced only where that deletes nothing */
	f->t.source = "cdn:empty-src";
	assert_int_equal(fake_sync(f, &m, &cause), 1);
	d = dest_of(m, "nyc:vmst-media");
	assert_string_equal(json_text(d, "status"), "failed");
	assert_non_null(strstr(json_text(d, "error"), "is empty and "
	    "nyc:vmst-media is not"));
	assert_string_equal(json_text(dest_of(m, "ams:empty-dest"), "status"),
	    "ok");
	args = tu_read(f->args);
	assert_null(strstr(args, " nyc:vmst-media\n"));
	free(args);
	free(cause);
	cJSON_Delete(m);
	fake_free(f);
}

static void
test_sync_cancel(void **state)
{
	char *dests[] = { "nyc:vmst-media", "ams:vmst-media" };
	struct fake *f = fake_new(dests, 2);
	int64_t t0;
	cJSON *m;
	char *cause;

	(void)state;
	setenv("FAKE_SLEEP", "30", 1);
	f->cancel_on_progress = 1;
	t0 = mono_ms();
	assert_int_equal(fake_sync(f, &m, &cause), -1);
	/* the sleeping fake and its sleep were stopped at once */
	assert_true(mono_ms() - t0 < 5000);
	assert_string_equal(cause, "cancelled");
	assert_string_equal(json_text(dest_of(m, "nyc:vmst-media"), "status"),
	    "cancelled");
	assert_string_equal(json_text(dest_of(m, "ams:vmst-media"), "status"),
	    "cancelled");
	unsetenv("FAKE_SLEEP");
	free(cause);
	cJSON_Delete(m);
	fake_free(f);
}

static void
test_backend_tables(void **state)
{
	(void)state;
	assert_string_equal(backend_media.kind, "media");
	assert_non_null(backend_media.sync);
	assert_null(backend_media.prepare);
	assert_null(backend_media.backup);
	assert_string_equal(backend_files.kind, "files");
	assert_non_null(backend_files.prepare);
	assert_non_null(backend_files.backup);
	assert_non_null(backend_files.check_reader);
	assert_non_null(backend_files.probe);
	assert_null(backend_files.sync);
}

/* ---- files: which paths ------------------------------------------- */

static void
test_files_paths(void **state)
{
	char *dir = tu_mkdtemp(), *a = tu_path(dir, "a"), *b, *gone;
	char *paths[4];
	struct config cfg;
	struct target t;
	struct job_ctx ctx;
	cJSON *m = cJSON_CreateObject(), *w;
	char *cause = NULL, *text;

	(void)state;
	assert_int_equal(mkdir(a, 0700), 0);
	b = tu_path(a, "b");
	tu_write_str(b, "x", 0600);
	gone = tu_path(dir, "gone");
	paths[0] = a;
	paths[1] = gone;
	paths[2] = b;		/* inside a: archived once */
	paths[3] = "relative/path";
	memset(&cfg, 0, sizeof(cfg));
	memset(&t, 0, sizeof(t));
	t.name = "etc";
	t.kind = TARGET_FILES;
	t.compression = "zstd";
	t.paths.v = paths;
	t.paths.n = 4;
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &cfg;
	ctx.target = &t;
	assert_int_equal(backend_files.prepare(&ctx, m, &cause), 0);
	assert_null(cause);
	text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(m,
	    "paths"));
	assert_non_null(strstr(text, a));
	assert_int_equal(cJSON_GetArraySize(
	    cJSON_GetObjectItemCaseSensitive(m, "paths")), 1);
	free(text);
	assert_int_equal(cJSON_GetArraySize(
	    cJSON_GetObjectItemCaseSensitive(m, "missing")), 2);
	w = cJSON_GetObjectItemCaseSensitive(m, "warnings");
	assert_int_equal(cJSON_GetArraySize(w), 2);
	text = cJSON_PrintUnformatted(w);
	assert_non_null(strstr(text, "No such file or directory"));
	assert_non_null(strstr(text, "not an absolute path"));
	free(text);
	cJSON_Delete(m);

	/* nothing there: no backup */
	paths[0] = gone;
	t.paths.n = 1;
	m = cJSON_CreateObject();
	assert_int_equal(backend_files.prepare(&ctx, m, &cause), -1);
	assert_non_null(strstr(cause, "none of the paths"));
	assert_non_null(strstr(cause, gone));
	free(cause);
	cJSON_Delete(m);
	free(gone);
	free(b);
	free(a);
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags_allowed),
		cmocka_unit_test(test_flags_refused),
		cmocka_unit_test(test_deleted_root),
		cmocka_unit_test(test_target_check),
		cmocka_unit_test(test_log_lines),
		cmocka_unit_test(test_sync_ok),
		cmocka_unit_test(test_sync_keep_deleted),
		cmocka_unit_test(test_sync_partial_and_failed),
		cmocka_unit_test(test_sync_source),
		cmocka_unit_test(test_sync_cancel),
		cmocka_unit_test(test_backend_tables),
		cmocka_unit_test(test_files_paths),
	};

	return TU_RUN(tests);
}
