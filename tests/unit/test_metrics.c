/*
 * test_metrics.c - the Prometheus textfile from a fake catalog and
 * ledger, the ledger read incrementally and by its tail.  Expected
 * samples are written out by hand from the fixtures (times checked with
 * `date -u -d ... +%s`), not computed with the code under test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "json.h"
#include "metrics.h"
#include "util.h"
#include "testutil.h"

/* 2026-03-13T00:00:00Z, 2026-03-14T00:00:00Z, 2026-03-15T00:00:00Z */
#define MAR13	1773360000
#define MAR14	1773446400
#define MAR15	1773532800

/* A media destination that needs every escape a label value has. */
#define ODD_DEST	"b2:\"q\"\\\nx"
#define ODD_LABEL	"b2:\\\"q\\\"\\\\\\nx"

struct fixture {
	char		*dir;
	char		*ledger;
	struct config	 cfg;
	struct target	 t[3];
	char		*db_remotes[2];
	char		*media_dests[2];
};

static void
write_file(const char *dir, const char *name, const char *text)
{
	char *path = tu_path(dir, name);

	tu_write_str(path, text, 0600);
	free(path);
}

/* A manifest and its data file; remotes is a JSON object's text. */
static void
manifest(const struct fixture *f, const char *target, const char *id,
    long started, long ended, const char *bytes, const char *status,
    const char *remotes, const char *extra, int with_data)
{
	char *dir = tu_path(f->cfg.backup_dir, target);
	char *name = xasprintf("%s.json", id), *data;
	char *text = xasprintf("{\"format_version\":1,\"id\":\"%s\","
	    "\"target\":\"%s\",\"kind\":\"postgres\",\"file\":\"%s.dump\","
	    "\"blake2b\":\"%064d\",\"started\":%ld,\"ended\":%ld,"
	    "\"bytes\":%s,\"status\":\"%s\",\"remotes\":%s%s}", id, target,
	    id, 0, started, ended, bytes, status, remotes, extra);

	write_file(dir, name, text);
	if (with_data) {
		data = xasprintf("%s.dump", id);
		write_file(dir, data, "data");
		free(data);
	}
	free(text);
	free(name);
	free(dir);
}

/* A media run record; dests: name, status pairs. */
static void
run_record(const struct fixture *f, const char *id, long started,
    long ended, double bytes, const char *status, const char *d1,
    const char *d2)
{
	char *dir = tu_path(f->cfg.backup_dir, "media");
	char *name = xasprintf("%s.run.json", id), *text;
	cJSON *r = cJSON_CreateObject(), *dests, *s;

	cJSON_AddStringToObject(r, "id", id);
	cJSON_AddStringToObject(r, "target", "media");
	cJSON_AddNumberToObject(r, "started", (double)started);
	cJSON_AddNumberToObject(r, "ended", (double)ended);
	cJSON_AddNumberToObject(r, "bytes", bytes);
	cJSON_AddStringToObject(r, "status", status);
	dests = cJSON_AddObjectToObject(r, "destinations");
	s = cJSON_AddObjectToObject(dests, "s3:media");
	cJSON_AddStringToObject(s, "status", d1);
	s = cJSON_AddObjectToObject(dests, ODD_DEST);
	cJSON_AddStringToObject(s, "status", d2);
	text = cJSON_Print(r);
	write_file(dir, name, text);
	free(text);
	cJSON_Delete(r);
	free(name);
	free(dir);
}

static const char *ledger_text =
    "{\"event\":\"start\",\"job\":1,\"kind\":\"backup\",\"target\":\"db\","
    "\"by\":\"@a:x\",\"room\":\"!r:x\",\"thread\":\"$t\",\"at\":1773360000}\n"
    "{\"event\":\"end\",\"job\":1,\"kind\":\"backup\",\"target\":\"db\","
    "\"by\":\"@a:x\",\"room\":\"!r:x\",\"thread\":\"$t\",\"at\":1773360100,"
    "\"status\":\"failed\",\"error\":\"pg_dump: connection refused\"}\n"
    "{\"event\":\"end\",\"job\":2,\"kind\":\"backup\",\"target\":\"db\","
    "\"status\":\"crashed\",\"at\":1773360200}\n"
    "{\"event\":\"end\",\"job\":3,\"kind\":\"backup\",\"target\":\"db\","
    "\"status\":\"interrupted\",\"at\":1773360300}\n"
    "{\"event\":\"end\",\"job\":13,\"kind\":\"backup\",\"target\":\"db\","
    "\"status\":\"interrupted\",\"at\":1773360350}\n"
    "{\"event\":\"end\",\"job\":4,\"kind\":\"backup\",\"target\":\"db\","
    "\"status\":\"cancelled\",\"at\":1773360400}\n"
    "{\"event\":\"end\",\"job\":5,\"kind\":\"backup\",\"target\":\"db\","
    "\"status\":\"ok\",\"at\":1773360500,\"bytes\":5,\"duration\":1}\n"
    "{\"event\":\"end\",\"job\":6,\"kind\":\"verification\","
    "\"target\":\"db\",\"status\":\"failed\",\"at\":1773360600}\n"
    "{\"event\":\"end\",\"job\":7,\"kind\":\"backup\",\"target\":\"cache\","
    "\"status\":\"crashed\",\"at\":1773360700}\n"
    "{\"event\":\"end\",\"job\":8,\"kind\":\"backup\",\"target\n"
    "{\"event\":\"end\",\"job\":9,\"kind\":\"backup\",\"target\":\"gone\","
    "\"status\":\"failed\",\"at\":1773360900}\n"
    "{\"event\":\"end\",\"job\":10,\"kind\":\"restore\",\"target\":\"media\","
    "\"status\":\"failed\",\"at\":1773361000}\n";

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *p;

	f->dir = tu_mkdtemp();
	f->cfg.backup_dir = tu_path(f->dir, "backups");
	f->cfg.state_dir = tu_path(f->dir, "state");
	p = tu_path(f->dir, "node");
	assert_int_equal(mkdir(p, 0755), 0);
	f->cfg.metrics_file = tu_path(p, "backupbot.prom");
	free(p);
	assert_int_equal(mkdir(f->cfg.backup_dir, 0700), 0);
	assert_int_equal(mkdir(f->cfg.state_dir, 0700), 0);
	f->ledger = tu_path(f->cfg.state_dir, "ledger.jsonl");

	f->db_remotes[0] = "offsite";
	f->db_remotes[1] = "b2";
	f->media_dests[0] = "s3:media";
	f->media_dests[1] = ODD_DEST;
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

	/* b2 has no "at" here: the backup's end counts */
	manifest(f, "db", "db-20260313T030000Z", MAR13 + 10800,
	    MAR13 + 11040, "1000000000", "ok",
	    "{\"offsite\":{\"status\":\"ok\",\"at\":1773371100},"
	    "\"b2\":{\"status\":\"ok\"}}",
	    ",\"drill\":{\"at\":1773482400,\"status\":\"ok\"}", 1);
	manifest(f, "db", "db-20260314T030000Z", MAR14 + 10800,
	    MAR14 + 11045, "1100000000", "ok",
	    "{\"offsite\":{\"status\":\"ok\",\"at\":1773457500},"
	    "\"b2\":{\"status\":\"ok\",\"at\":1773457560}}", "", 1);
	manifest(f, "db", "db-20260315T030000Z", MAR15 + 10800,
	    MAR15 + 11050, "1200000000", "partial",
	    "{\"offsite\":{\"status\":\"ok\",\"at\":1773543900},"
	    "\"b2\":{\"status\":\"failed\",\"error\":\"timeout\"}}", "", 1);

	run_record(f, "media-20260313T040000Z", MAR13 + 14400, MAR13 + 14700,
	    0, "failed", "failed", "failed");
	run_record(f, "media-20260314T040000Z", MAR14 + 14400, MAR14 + 14700,
	    3000, "ok", "ok", "ok");
	run_record(f, "media-20260315T040000Z", MAR15 + 14400, MAR15 + 15000,
	    5000, "partial", "ok", "failed");
	run_record(f, "media-20260315T080000Z", MAR15 + 28800, MAR15 + 28860,
	    0, "failed", "failed", "failed");

	tu_write_str(f->ledger, ledger_text, 0600);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	free(f->cfg.backup_dir);
	free(f->cfg.state_dir);
	free(f->cfg.metrics_file);
	free(f->ledger);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

/*
 * Write the metrics and return the file without its HELP lines, checking
 * on the way that every TYPE line follows the HELP line of its metric.
 */
static char *
write_and_read(struct fixture *f)
{
	char *cause = NULL, *text, *line, *next;
	char prev[256] = "";
	struct buf out;

	assert_int_equal(metrics_write(&f->cfg, &cause), 0);
	assert_null(cause);
	assert_int_equal(tu_mode(f->cfg.metrics_file), 0644);
	text = tu_read(f->cfg.metrics_file);
	assert_non_null(text);
	buf_init(&out, 1024 * 1024);
	buf_add(&out, "", 0);
	for (line = text; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		assert_non_null(next);
		*next++ = '\0';
		if (str_startswith(line, "# HELP ")) {
			snprintf(prev, sizeof(prev), "%s", line + 7);
			continue;
		}
		if (str_startswith(line, "# TYPE ")) {
			size_t n = strcspn(line + 7, " ");

			if (strncmp(prev, line + 7, n) != 0 || prev[n] != ' ')
				fail_msg("%s: no HELP line before it", line);
		}
		buf_addf(&out, "%s\n", line);
	}
	free(text);
	return buf_detach(&out, NULL);
}

static const char *expect_full =
    "# TYPE backupbot_last_success_timestamp_seconds gauge\n"
    "backupbot_last_success_timestamp_seconds{target=\"db\",kind=\"postgres\"} 1773543850\n"
    "backupbot_last_success_timestamp_seconds{target=\"media\",kind=\"media\"} 1773547800\n"
    "# TYPE backupbot_last_duration_seconds gauge\n"
    "backupbot_last_duration_seconds{target=\"db\",kind=\"postgres\"} 250\n"
    "backupbot_last_duration_seconds{target=\"media\",kind=\"media\"} 600\n"
    "# TYPE backupbot_last_size_bytes gauge\n"
    "backupbot_last_size_bytes{target=\"db\",kind=\"postgres\"} 1200000000\n"
    "backupbot_last_size_bytes{target=\"media\",kind=\"media\"} 5000\n"
    "# TYPE backupbot_failures_total counter\n"
    "backupbot_failures_total{target=\"db\",kind=\"postgres\"} 4\n"
    "backupbot_failures_total{target=\"media\",kind=\"media\"} 0\n"
    "backupbot_failures_total{target=\"cache\",kind=\"redis\"} 1\n"
    "# TYPE backupbot_backups_kept gauge\n"
    "backupbot_backups_kept{target=\"db\",kind=\"postgres\"} 3\n"
    "backupbot_backups_kept{target=\"cache\",kind=\"redis\"} 0\n"
    "# TYPE backupbot_remote_last_success_timestamp_seconds gauge\n"
    "backupbot_remote_last_success_timestamp_seconds{target=\"db\",remote=\"offsite\"} 1773543900\n"
    "backupbot_remote_last_success_timestamp_seconds{target=\"db\",remote=\"b2\"} 1773457560\n"
    "backupbot_remote_last_success_timestamp_seconds{target=\"media\",remote=\"s3:media\"} 1773547800\n"
    "backupbot_remote_last_success_timestamp_seconds{target=\"media\",remote=\"" ODD_LABEL "\"} 1773461100\n"
    "# TYPE backupbot_remote_failed_backups gauge\n"
    "backupbot_remote_failed_backups{target=\"db\",remote=\"offsite\"} 0\n"
    "backupbot_remote_failed_backups{target=\"db\",remote=\"b2\"} 1\n"
    "backupbot_remote_failed_backups{target=\"media\",remote=\"s3:media\"} 2\n"
    "backupbot_remote_failed_backups{target=\"media\",remote=\"" ODD_LABEL "\"} 3\n";

static void
test_metrics_file(void **state)
{
	struct fixture *f = *state;
	char *got, *text;

	/* no data file: not in the catalog, its failure not counted */
	manifest(f, "db", "db-20260312T030000Z", MAR13 - 75600,
	    MAR13 - 75000, "900000000", "ok",
	    "{\"b2\":{\"status\":\"failed\"}}", "", 0);
	got = write_and_read(f);
	assert_string_equal(got, expect_full);
	free(got);
	/* HELP says where a count comes from; nothing but the file is left */
	text = tu_read(f->cfg.metrics_file);
	assert_non_null(strstr(text, "# HELP backupbot_remote_failed_backups "
	    "Backups (media: runs) still in the catalog"));
	assert_non_null(strstr(text, "# HELP backupbot_failures_total "));
	free(text);
	{
		char *node = tu_path(f->dir, "node");

		assert_int_equal(tu_count_files(node, ""), 1);
		free(node);
	}
}

/* Unset: nothing to do.  Unwritable: -1 and why. */
static void
test_metrics_unset_and_unwritable(void **state)
{
	struct fixture *f = *state;
	char *path = f->cfg.metrics_file, *cause = NULL;

	f->cfg.metrics_file = NULL;
	assert_int_equal(metrics_write(&f->cfg, &cause), 0);
	assert_null(cause);
	assert_false(tu_exists(path));

	f->cfg.metrics_file = tu_path(f->dir, "missing/backupbot.prom");
	assert_int_equal(metrics_write(&f->cfg, &cause), -1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "missing/backupbot.prom"));
	free(cause);
	free(f->cfg.metrics_file);
	f->cfg.metrics_file = path;
}

static void
append(const char *path, const char *text)
{
	FILE *fp = fopen(path, "a");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* The failures line of target in the metrics, e.g. "... 3". */
static void
assert_failures(struct fixture *f, const char *db, const char *cache)
{
	char *got = write_and_read(f);
	char *l1 = xasprintf("backupbot_failures_total{target=\"db\","
	    "kind=\"postgres\"} %s\n", db);
	char *l2 = xasprintf("backupbot_failures_total{target=\"cache\","
	    "kind=\"redis\"} %s\n", cache);

	if (strstr(got, l1) == NULL || strstr(got, l2) == NULL)
		fail_msg("want db %s, cache %s in:\n%s", db, cache, got);
	free(l1);
	free(l2);
	free(got);
}

/* Only what was appended is read, a half-written line waits, and a
 * replaced ledger is counted again. */
static void
test_metrics_ledger_incremental(void **state)
{
	struct fixture *f = *state;
	char *big;

	assert_failures(f, "4", "1");
	append(f->ledger, "{\"event\":\"end\",\"job\":11,\"kind\":\"backup\","
	    "\"target\":\"db\",\"status\":\"failed\",\"at\":1773400000}\n");
	assert_failures(f, "5", "1");
	/* being written: not counted yet, and not lost */
	append(f->ledger, "{\"event\":\"end\",\"job\":12,\"kind\":\"backup\","
	    "\"target\":\"cache\",\"status\":\"failed\"");
	assert_failures(f, "5", "1");
	append(f->ledger, ",\"at\":1773400100}\n");
	assert_failures(f, "5", "2");
	assert_failures(f, "5", "2");

	/* rewritten in place, shorter */
	tu_write_str(f->ledger, "{\"event\":\"end\",\"job\":1,\"kind\":"
	    "\"backup\",\"target\":\"db\",\"status\":\"crashed\"}\n", 0600);
	assert_failures(f, "1", "0");
	/* rewritten in place, longer, no newline where we stopped */
	big = xasprintf("{\"event\":\"end\",\"job\":1,\"kind\":\"backup\","
	    "\"target\":\"cache\",\"status\":\"failed\",\"error\":\"%0200d\"}\n"
	    "{\"event\":\"end\",\"job\":2,\"kind\":\"backup\",\"target\":\"db\","
	    "\"status\":\"failed\"}\n", 0);
	tu_write_str(f->ledger, big, 0600);
	free(big);
	assert_failures(f, "1", "1");
	/* gone: no jobs, no failures */
	assert_int_equal(unlink(f->ledger), 0);
	assert_failures(f, "0", "0");
	tu_write_str(f->ledger, ledger_text, 0600);
	assert_failures(f, "4", "1");
}

/* Lines across read chunks; an overlong line is skipped. */
static void
test_metrics_ledger_large(void **state)
{
	struct fixture *f = *state;
	struct buf b;
	char *pad = xmalloc(70 * 1024 + 1);

	buf_init(&b, 64 * 1024 * 1024);
	buf_add(&b, "", 0);
	/* 5000 jobs of db, every tenth failed: 500 */
	for (int i = 0; i < 5000; i++) {
		buf_addf(&b, "{\"event\":\"start\",\"job\":%d,\"kind\":\"backup\","
		    "\"target\":\"db\",\"by\":\"schedule\",\"room\":\"!r:x\","
		    "\"thread\":\"$t\",\"at\":%d}\n", i, 1773000000 + i);
		buf_addf(&b, "{\"event\":\"end\",\"job\":%d,\"kind\":\"backup\","
		    "\"target\":\"db\",\"by\":\"schedule\",\"room\":\"!r:x\","
		    "\"thread\":\"$t\",\"at\":%d,\"status\":\"%s\"}\n", i,
		    1773000000 + i, i % 10 == 0 ? "failed" : "ok");
		if (i == 2500) {
			memset(pad, 'x', 70 * 1024);
			pad[70 * 1024] = '\0';
			buf_addf(&b, "{\"event\":\"end\",\"job\":99999,"
			    "\"kind\":\"backup\",\"target\":\"cache\","
			    "\"status\":\"failed\",\"error\":\"%s\"}\n", pad);
		}
	}
	assert_true(b.len > 3 * 256 * 1024);
	tu_write(f->ledger, b.data, b.len, 0600);
	buf_release(&b);
	free(pad);
	assert_failures(f, "500", "0");
}

struct seen {
	char	jobs[256];
};

static void
collect(const cJSON *end, void *arg)
{
	struct seen *s = arg;
	size_t n = strlen(s->jobs);

	snprintf(s->jobs + n, sizeof(s->jobs) - n, "%s%.0f", n ? "," : "",
	    json_num(end, "job"));
}

static const char *
ends(struct fixture *f, size_t tail, struct seen *s)
{
	char *cause = NULL;

	s->jobs[0] = '\0';
	assert_int_equal(metrics_ledger_ends(&f->cfg, tail, collect, s,
	    &cause), 0);
	assert_null(cause);
	return s->jobs;
}

/* The tail starts at the first whole line in it. */
static void
test_metrics_ledger_tail(void **state)
{
	struct fixture *f = *state;
	static const char l1[] =
	    "{\"event\":\"end\",\"job\":1,\"status\":\"ok\"}\n";
	static const char l2[] =
	    "{\"event\":\"start\",\"job\":2}\n";
	static const char l3[] =
	    "{\"event\":\"end\",\"job\":3,\"status\":\"ok\"}\n";
	static const char l4[] =
	    "{\"event\":\"end\",\"job\":4,\"status\":\"ok\"}\n";
	static const char l5[] =	/* still being written */
	    "{\"event\":\"end\",\"job\":5,\"status\":\"ok\"}";
	char *text = xasprintf("%s%s%s%s%s", l1, l2, l3, l4, l5);
	size_t n4 = sizeof(l4) - 1, n5 = sizeof(l5) - 1;
	size_t n3 = sizeof(l3) - 1;
	struct seen s;

	tu_write_str(f->ledger, text, 0600);
	free(text);
	assert_string_equal(ends(f, 0, &s), "1,3,4");
	assert_string_equal(ends(f, 1 << 20, &s), "1,3,4");
	/* exactly lines 4 and 5 */
	assert_string_equal(ends(f, n4 + n5, &s), "4");
	/* line 3's newline and more: line 3 is cut */
	assert_string_equal(ends(f, n4 + n5 + 1, &s), "4");
	assert_string_equal(ends(f, n3 + n4 + n5 - 1, &s), "4");
	assert_string_equal(ends(f, n3 + n4 + n5, &s), "3,4");
	/* inside line 4 */
	assert_string_equal(ends(f, n4 + n5 - 1, &s), "");

	/* no ledger: no lines, no error */
	assert_int_equal(unlink(f->ledger), 0);
	assert_string_equal(ends(f, 0, &s), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metrics_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_metrics_unset_and_unwritable, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_metrics_ledger_incremental, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_ledger_large,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_ledger_tail,
		    setup, teardown),
	};

	return TU_RUN(tests);
}
