/*
 * test_report.c - the weekly summary from a fake catalog and ledger at a
 * fixed `now`, and sparklines on exact inputs.  Expected text is written
 * out by hand from the fixtures, not computed with the code under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "msg.h"
#include "report.h"
#include "util.h"
#include "testutil.h"

/* Midnight UTC of March D, 2026 (Mar 1 is 1772323200). */
#define MAR(d)	(1772323200L + ((long)(d) - 1) * 86400L)
/* 2026-03-15T12:00:00Z */
#define NOW	1773576000L

/* ---- sparklines ------------------------------------------------------- */

static void
assert_spark(const double *v, size_t n, const int *present, const char *want)
{
	char *got = report_sparkline(v, n, present);

	assert_string_equal(got, want);
	free(got);
}

static void
test_sparkline(void **state)
{
	static const double up[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const double down[] = { 8, 7, 6, 5, 4, 3, 2, 1 };
	static const double flat[] = { 5, 5, 5 };
	static const double zeros[] = { 0, 0, 100 };
	static const double half[] = { 0, 7, 3.5 };
	static const double big[] = { 1e12, 1.5e12, 2e12 };
	static const double some[] = { 1, 999, 3, 0 };
	static const int some_present[] = { 1, 0, 1, 0 };
	static const int none_present[] = { 0, 0, 0, 0 };
	static const double negative[] = { -4, 0, 3 };
	double odd[] = { 2, 0, 4, 0 };

	(void)state;
	assert_spark(up, 8, NULL, "▁▂▃▄▅▆▇█");
	assert_spark(down, 8, NULL, "█▇▆▅▄▃▂▁");
	/* equal: the middle bar, not empty nor full */
	assert_spark(flat, 3, NULL, "▄▄▄");
	assert_spark(flat, 1, NULL, "▄");
	assert_spark(zeros, 3, NULL, "▁▁█");
	/* halfway rounds to the upper of two bars: 3.5 of 7 -> level 4 */
	assert_spark(half, 3, NULL, "▁█▅");
	assert_spark(big, 3, NULL, "▁▅█");
	assert_spark(negative, 3, NULL, "▁▅█");
	/* missing days: a dot, and their values do not count */
	assert_spark(some, 4, some_present, "▁·█·");
	assert_spark(some, 4, none_present, "····");
	assert_spark(some, 0, NULL, "");
	/* not finite: missing */
	odd[1] = NAN;
	odd[3] = INFINITY;
	assert_spark(odd, 4, NULL, "▁·█·");
}

/* ---- the summary ------------------------------------------------------ */

struct fixture {
	char		*dir;
	struct config	 cfg;
	struct target	 t[3];
	char		*db_remotes[2];
	char		*media_dests[2];
	struct buf	 ledger;
};

static void
write_file(const char *dir, const char *name, const char *text)
{
	char *path = tu_path(dir, name);

	tu_write_str(path, text, 0600);
	free(path);
}

static void
manifest(const struct fixture *f, const char *id, long started, long ended,
    const char *bytes, const char *status, const char *remotes,
    const char *extra)
{
	char *dir = tu_path(f->cfg.backup_dir, "db");
	char *name = xasprintf("%s.json", id);
	char *data = xasprintf("%s.dump", id);
	char *text = xasprintf("{\"format_version\":1,\"id\":\"%s\","
	    "\"target\":\"db\",\"kind\":\"postgres\",\"file\":\"%s.dump\","
	    "\"blake2b\":\"%064d\",\"started\":%ld,\"ended\":%ld,"
	    "\"bytes\":%s,\"status\":\"%s\",\"remotes\":%s%s}", id, id, 0,
	    started, ended, bytes, status, remotes, extra);

	write_file(dir, name, text);
	write_file(dir, data, "data");
	free(text);
	free(data);
	free(name);
	free(dir);
}

static void
run_record(const struct fixture *f, const char *id, long started,
    long ended, const char *bytes, const char *status, const char *s3,
    const char *b2, const char *error)
{
	char *dir = tu_path(f->cfg.backup_dir, "media");
	char *name = xasprintf("%s.run.json", id);
	char *text = xasprintf("{\"id\":\"%s\",\"target\":\"media\","
	    "\"kind\":\"media\",\"started\":%ld,\"ended\":%ld,\"bytes\":%s,"
	    "\"status\":\"%s\",\"error\":\"%s\",\"destinations\":{"
	    "\"s3:media\":{\"status\":\"%s\"},\"b2:media\":{\"status\":"
	    "\"%s\"}}}", id, started, ended, bytes, status, error, s3, b2);

	write_file(dir, name, text);
	free(text);
	free(name);
	free(dir);
}

/* An end line; bytes or duration < 0: left out. */
static void
end_line(struct fixture *f, const char *kind, const char *target,
    const char *status, long at, long long bytes, long duration)
{
	buf_addf(&f->ledger, "{\"event\":\"end\",\"job\":1,\"kind\":\"%s\","
	    "\"target\":\"%s\",\"by\":\"schedule\",\"room\":\"!r:x\","
	    "\"thread\":\"$t\",\"at\":%ld,\"status\":\"%s\"", kind, target, at,
	    status);
	if (bytes >= 0)
		buf_addf(&f->ledger, ",\"bytes\":%lld", bytes);
	if (duration >= 0)
		buf_addf(&f->ledger, ",\"duration\":%ld", duration);
	buf_adds(&f->ledger, "}\n");
}

/* A good db backup of size level k (1 GB + k * 10 MB): bars go by k. */
static void
db_ok(struct fixture *f, long at, int k, const char *status)
{
	end_line(f, "backup", "db", status, at, 1000000000LL + k * 10000000LL,
	    250);
}

static void
ledger_fill(struct fixture *f)
{
	char *path;

	/* outside the window: exactly 14 days before now, and older */
	db_ok(f, NOW - 14 * 86400, 100, "ok");
	end_line(f, "backup", "db", "failed", MAR(1) - 86400, -1, -1);
	db_ok(f, MAR(2) + 11050, 0, "ok");
	db_ok(f, MAR(3) + 11050, 1, "ok");
	db_ok(f, MAR(4) + 11050, 2, "ok");
	/* Mar 5: no duration, so not a point of the trend */
	end_line(f, "backup", "db", "ok", MAR(5) + 11050, 1000000000LL, -1);
	db_ok(f, MAR(6) + 11050, 3, "ok");
	end_line(f, "backup", "db", "cancelled", MAR(6) + 20000, -1, -1);
	end_line(f, "backup", "db", "failed", MAR(7) + 11050, -1, -1);
	db_ok(f, MAR(8) + 11050, 3, "ok");
	end_line(f, "verification", "db", "failed", MAR(8) + 20000, -1, -1);
	end_line(f, "backup", "db", "crashed", MAR(9) + 11050, -1, -1);
	buf_adds(&f->ledger, "{\"event\":\"start\",\"job\":2,\"kind\":"
	    "\"backup\",\"target\":\"db\",\"at\":1773100800}\n");
	db_ok(f, MAR(10) + 11050, 4, "ok");
	/* not a backup: does not replace the day's */
	end_line(f, "verification", "db", "ok", MAR(10) + 20000, 5, 5);
	db_ok(f, MAR(11) + 11050, 5, "partial");
	db_ok(f, MAR(12) + 11050, 6, "ok");
	end_line(f, "backup", "gone", "ok", MAR(12) + 20000, 1, 99999);
	buf_adds(&f->ledger, "{\"event\":\"end\",\"broken\n");
	db_ok(f, MAR(13) + 11050, 6, "ok");
	db_ok(f, MAR(14) + 11050, 7, "ok");
	/* written late, but older: the newest of the day wins */
	db_ok(f, MAR(14) + 3600, 0, "ok");
	db_ok(f, MAR(15) + 11050, 5, "ok");
	/* the window's last second is in; the next one not */
	db_ok(f, NOW, 7, "ok");
	db_ok(f, NOW + 1, 0, "ok");

	end_line(f, "backup", "media", "ok", MAR(14) + 14700, 3000, 300);
	end_line(f, "backup", "media", "partial", MAR(15) + 15000, 5000, 600);
	end_line(f, "backup", "media", "failed", MAR(15) + 28860, -1, -1);

	path = tu_path(f->cfg.state_dir, "ledger.jsonl");
	tu_write_str(path, f->ledger.data, 0600);
	free(path);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *p;

	f->dir = tu_mkdtemp();
	f->cfg.backup_dir = tu_path(f->dir, "backups");
	f->cfg.state_dir = tu_path(f->dir, "state");
	assert_int_equal(mkdir(f->cfg.backup_dir, 0700), 0);
	assert_int_equal(mkdir(f->cfg.state_dir, 0700), 0);
	f->db_remotes[0] = "offsite";
	f->db_remotes[1] = "b2";
	f->media_dests[0] = "s3:media";
	f->media_dests[1] = "b2:media";
	f->t[0].name = "db";
	f->t[0].kind = TARGET_POSTGRES;
	f->t[0].remotes.v = f->db_remotes;
	f->t[0].remotes.n = 2;
	f->t[1].name = "media";
	f->t[1].kind = TARGET_MEDIA;
	f->t[1].destinations.v = f->media_dests;
	f->t[1].destinations.n = 2;
	f->t[2].name = "cache";
	f->t[2].kind = TARGET_REDIS;
	f->cfg.targets = f->t;
	f->cfg.ntargets = 3;
	p = tu_path(f->cfg.backup_dir, "db");
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = tu_path(f->cfg.backup_dir, "media");
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);

	manifest(f, "db-20260313T030000Z", MAR(13) + 10800, MAR(13) + 11040,
	    "1000000000", "ok", "{\"offsite\":{\"status\":\"ok\"},"
	    "\"b2\":{\"status\":\"ok\"}}",
	    ",\"drill\":{\"at\":1773482400,\"status\":\"ok\"}");
	manifest(f, "db-20260314T030000Z", MAR(14) + 10800, MAR(14) + 11045,
	    "1100000000", "ok", "{\"offsite\":{\"status\":\"ok\"},"
	    "\"b2\":{\"status\":\"ok\"}}", "");
	manifest(f, "db-20260315T030000Z", MAR(15) + 10800, MAR(15) + 11050,
	    "1200000000", "partial", "{\"offsite\":{\"status\":\"ok\"},"
	    "\"b2\":{\"status\":\"failed\",\"error\":\"timeout\"}}", "");

	run_record(f, "media-20260314T040000Z", MAR(14) + 14400,
	    MAR(14) + 14700, "3000", "ok", "ok", "ok", "");
	run_record(f, "media-20260315T040000Z", MAR(15) + 14400,
	    MAR(15) + 15000, "5000", "partial", "ok", "failed",
	    "1 of 2 destinations failed");
	run_record(f, "media-20260315T080000Z", MAR(15) + 28800,
	    MAR(15) + 28860, "0", "failed", "failed", "failed",
	    "source unreachable");

	buf_init(&f->ledger, 1024 * 1024);
	buf_add(&f->ledger, "", 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	free(f->cfg.backup_dir);
	free(f->cfg.state_dir);
	buf_release(&f->ledger);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

static const char *expect_targets =
    "Weekly summary\n"
    "Trends: one character a day for the last 14 days, newest last; "
    "·: no good backup that day.\n"
    "• db (postgres): last good backup 9h ago, 1.2 GB; 3 kept, 3.3 GB in "
    "all\n"
    "   remotes: ✓ offsite, ✗ b2\n"
    "   restore drill: ✓ 26h ago (db-20260313T030000Z)\n"
    "   size trend: ▁▂▃·▄·▄·▅▆▇▇██ 1.0 GB – 1.1 GB\n"
    "   duration trend: ▄▄▄·▄·▄·▄▄▄▄▄▄ 4m 10s\n"
    "   ⚠️ 2 failed backups in the last 14 days\n"
    "• media (media): last good sync 8h ago, 5.0 KB copied; the "
    "destinations hold the latest copy\n"
    "   ⚠️ the last run failed: source unreachable\n"
    "   destinations: ✗ s3:media, ✗ b2:media\n"
    "   restore drill: never\n"
    "   copied trend: ············▁█ 3.0 KB – 5.0 KB\n"
    "   duration trend: ············▁█ 5m 00s – 10m 00s\n"
    "   ⚠️ 1 failed sync in the last 14 days\n"
    "• cache (redis): no good backup yet\n"
    "   remotes: none configured\n"
    "   restore drill: never\n"
    "   no good backup in the last 14 days\n";

/* The free space line: "free space in DIR: A of T (P%)". */
static void
assert_space_line(const char *line, const char *dir)
{
	char *head = xasprintf("free space in %s: ", dir);

	if (!str_startswith(line, head) || strstr(line, " of ") == NULL ||
	    !tu_endswith(line, "%)"))
		fail_msg("free space line: \"%s\"", line);
	free(head);
}

static void
test_summary(void **state)
{
	struct fixture *f = *state;
	size_t n = strlen(expect_targets);
	struct msg m;

	ledger_fill(f);
	msg_init(&m);
	report_summary(&f->cfg, NOW, &m);
	if (strncmp(m.plain.data, expect_targets, n) != 0)
		fail_msg("got:\n%s\nwant:\n%s", m.plain.data, expect_targets);
	assert_space_line(m.plain.data + n, f->cfg.backup_dir);
	assert_null(strchr(m.plain.data + n, '\n'));
	/* HTML: the title bold, names and sparklines as code */
	assert_true(str_startswith(m.html.data, "<b>Weekly summary</b>"));
	assert_non_null(strstr(m.html.data, "• <code>db</code> (postgres)"));
	assert_non_null(strstr(m.html.data,
	    "size trend: <code>▁▂▃·▄·▄·▅▆▇▇██</code> 1.0 GB – 1.1 GB"));
	assert_non_null(strstr(m.html.data, "✗ <code>b2</code>"));
	msg_release(&m);
}

/* No ledger, no catalog: every target says so, nothing fails. */
static void
test_summary_empty(void **state)
{
	struct fixture *f = *state;
	static const char *want =
	    "Weekly summary\n"
	    "Trends: one character a day for the last 14 days, newest last; "
	    "·: no good backup that day.\n"
	    "• cache (redis): no good backup yet\n"
	    "   remotes: none configured\n"
	    "   restore drill: never\n"
	    "   no good backup in the last 14 days\n";
	struct msg m;

	f->cfg.targets = &f->t[2];
	f->cfg.ntargets = 1;
	msg_init(&m);
	report_summary(&f->cfg, NOW, &m);
	if (strncmp(m.plain.data, want, strlen(want)) != 0)
		fail_msg("got:\n%s", m.plain.data);
	assert_space_line(m.plain.data + strlen(want), f->cfg.backup_dir);
	msg_release(&m);

	/* backup_dir gone: the space is unknown, and said so */
	f->cfg.backup_dir[strlen(f->cfg.backup_dir) - 1] = 'X';
	msg_init(&m);
	report_summary(&f->cfg, NOW, &m);
	assert_true(tu_endswith(m.plain.data,
	    "X: unknown (No such file or directory)"));
	msg_release(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sparkline),
		cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_empty, setup,
		    teardown),
	};

	return TU_RUN(tests);
}
