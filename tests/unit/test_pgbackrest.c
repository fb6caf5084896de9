/*
 * test_pgbackrest.c - the pgbackrest target's pure parts: the config
 * section and its checks, keep, restore times and set labels (what chat
 * may pass on), pgBackRest's console lines, `pgbackrest info
 * --output=json` read defensively, the restore checks and plan, and the
 * WAL archive's verdict from a probe's facts.
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

#include "backend.h"
#include "config.h"
#include "json.h"
#include "pgbackrest.h"
#include "restore.h"
#include "util.h"
#include "testutil.h"

#define HEAD "[matrix]\nhomeserver = https://m.example\nuser_id = @b:example\n" \
	"access_token_file = /x\nrooms = !r:example\nadmins = @a:example\n"

static struct config *
parse(const char *section, struct config_errors *e)
{
	char *text = xasprintf("%s%s", HEAD, section);
	struct config *c;

	/* as main() does: the backend checks its own section */
	config_set_checks(&backend_config_checks);
	c = config_parse("t.conf", text, strlen(text), 0, e);
	config_set_checks(NULL);
	free(text);
	return c;
}

#define GOOD "[pgbackrest pg]\nstanza = main\nconfig = /etc/pgbackrest.conf\n" \
	"pg_conninfo = host=/run/postgresql user=postgres\nrepo = 1, 2\n" \
	"keep = full=2, diff=7\nschedule_full = 0 3 * * 0\n" \
	"schedule_incr = 0 * * * *\npg_data = /var/lib/postgresql/15/main\n" \
	"restore_dir = /var/lib/postgresql/restores\nstale_after = 2h\n"

static void
test_config(void **state)
{
	struct config_errors e;
	struct config *c;
	struct target *t;

	(void)state;
	c = parse(GOOD, &e);
	assert_non_null(c);
	t = config_target(c, "pg");
	assert_int_equal(t->kind, TARGET_PGBACKREST);
	assert_string_equal(t->stanza, "main");
	assert_string_equal(t->pgbackrest_config, "/etc/pgbackrest.conf");
	assert_int_equal(t->repos.n, 2);
	assert_string_equal(t->pgbackrest_keep, "full=2, diff=7");
	assert_int_equal(t->stale_after, 7200);
	assert_true(config_records_runs(t));
	assert_string_equal(config_kind_name(t->kind), "pgbackrest");
	config_free(c);

	/* each mistake is named */
	static const struct { const char *text, *want; } bad[] = {
		{ "[pgbackrest pg]\npg_data = /d\nrestore_dir = /r\n",
		    "stanza is required" },
		{ "[pgbackrest pg]\nstanza = a b\npg_data = /d\nrestore_dir = /r\n",
		    "stanza: letters" },
		{ "[pgbackrest pg]\nstanza = m\nrestore_dir = /r\n",
		    "pg_data is required" },
		{ "[pgbackrest pg]\nstanza = m\npg_data = /d\n",
		    "restore_dir is required" },
		{ "[pgbackrest pg]\nstanza = m\npg_data = /d\nrestore_dir = /d/x\n",
		    "must not contain" },
		{ "[pgbackrest pg]\nstanza = m\npg_data = /d\nrestore_dir = /r/../d\n",
		    "restore_dir is required" },
		{ "[pgbackrest pg]\nstanza = m\npg_data = /d\nrestore_dir = /r\n"
		    "repo = 1, 300\n", "repo: '300'" },
		{ "[pgbackrest pg]\nstanza = m\npg_data = /d\nrestore_dir = /r\n"
		    "keep = weekly=2\n", "keep:" },
		{ "[pgbackrest pg]\nstanza = m\npg_data = /d\nrestore_dir = /r\n"
		    "pg_conninfo = password=x\n", "no password here" },
		{ "[pgbackrest pg]\nstanza = m\npg_data = /d\nrestore_dir = /r\n"
		    "schedule = 0 3 * * *\n", "unknown key 'schedule'" },
		{ "[pgbackrest pg]\nstanza = m\npg_data = /d\nrestore_dir = /r\n"
		    "schedule_diff = 61 * * * *\n", "schedule_diff" },
	};
	for (size_t i = 0; i < nitems(bad); i++) {
		int found = 0;

		c = parse(bad[i].text, &e);
		assert_null(c);
		for (size_t k = 0; k < e.n; k++)
			found |= strstr(e.msg[k], bad[i].want) != NULL;
		if (!found)
			fail_msg("%s: no error with '%s' (first: %s)",
			    bad[i].text, bad[i].want, e.n ? e.msg[0] : "-");
		config_errors_release(&e);
	}
}

static void
test_keep(void **state)
{
	char *cause = NULL;
	int full, diff;

	(void)state;
	assert_int_equal(pgbackrest_keep_parse("full=2", &full, &diff,
	    &cause), 0);
	assert_int_equal(full, 2);
	assert_int_equal(diff, 0);
	assert_int_equal(pgbackrest_keep_parse(" diff = 7 , full=1", &full,
	    &diff, &cause), 0);
	assert_int_equal(full, 1);
	assert_int_equal(diff, 7);
	static const char *const bad[] = { "", "full", "full=0", "full=x",
	    "full=2, full=3", "incr=2", "full=2;rm" };
	for (size_t i = 0; i < nitems(bad); i++) {
		cause = NULL;
		assert_int_equal(pgbackrest_keep_parse(bad[i], &full, &diff,
		    &cause), -1);
		assert_non_null(cause);
		free(cause);
	}
}

static void
test_time_and_set(void **state)
{
	(void)state;
	assert_true(pgbackrest_valid_time("2026-12-06 14:32:00+00"));
	assert_true(pgbackrest_valid_time("2026-12-06T14:32+01:30"));
	assert_true(pgbackrest_valid_time("2026-02-28 00:00:59-05"));
	assert_true(pgbackrest_valid_time("2026-12-06 14:32:00Z"));
	static const char *const bad[] = { "", "latest", "2026-12-06",
	    "2026-12-06 14:32:00", "2026-13-06 14:32:00+00",
	    "2026-02-30 14:32:00+00", "2026-12-06 24:00:00+00",
	    "2026-12-06 14:60:00+00", "2026-12-06 14:32:00+00; rm -rf /",
	    "2026-12-06 14:32:00+00:00:00", "2026-12-06 14:32:00 +00",
	    "-2026-12-06 14:32:00+00", "2026-12-06 14:32:00+15",
	    "2026-12-06\n14:32:00+00", "2026-12-06 14:32:00+0a" };
	for (size_t i = 0; i < nitems(bad); i++)
		if (pgbackrest_valid_time(bad[i]))
			fail_msg("'%s' taken for a time", bad[i]);
	assert_true(pgbackrest_time_value("1970-01-01 01:00:00+01") == 0);
	assert_true(pgbackrest_time_value("2026-12-06 14:32:00Z") ==
	    pgbackrest_time_value("2026-12-06 15:32:00+01:00"));

	assert_true(pgbackrest_valid_set("20261207-002654F"));
	assert_true(pgbackrest_valid_set("20261207-002654F_20261207-010000I"));
	assert_true(pgbackrest_valid_set("20261207-002654F_20261207-010000D"));
	assert_false(pgbackrest_valid_set("20261207-002654I"));
	assert_false(pgbackrest_valid_set("20261207-002654F_20261207-010000F"));
	assert_false(pgbackrest_valid_set("../../20261207-002654F"));
	assert_false(pgbackrest_valid_set("20261307-002654F"));
	assert_false(pgbackrest_valid_set("latest"));
	assert_true(pgbackrest_valid_type("diff"));
	assert_false(pgbackrest_valid_type("weekly"));
}

static void
test_console_lines(void **state)
{
	double pct = -1;
	char *label;

	(void)state;
	assert_int_equal(pgbackrest_progress_line("2026-12-07 00:27:06.259 "
	    "P01 DETAIL: backup file /d/base/5/1255 (768KB, 3.42%) checksum "
	    "e377", &pct), 0);
	assert_true(pct > 3.41 && pct < 3.43);
	assert_int_equal(pgbackrest_progress_line("P01 DETAIL: backup file "
	    "/x (0B, 100.00%)", &pct), 0);
	assert_true(pct == 100);
	assert_int_equal(pgbackrest_progress_line("INFO: backup start "
	    "archive = 0001", &pct), -1);
	assert_int_equal(pgbackrest_progress_line("backup file /x (1B, %)",
	    &pct), -1);
	assert_int_equal(pgbackrest_progress_line("backup file /x (1B, "
	    "250%)", &pct), -1);
	label = pgbackrest_label_line("2026-12-07 00:27:02.024 P00   INFO: "
	    "new backup label = 20261207-002654F_20261207-003214I");
	assert_string_equal(label, "20261207-002654F_20261207-003214I");
	free(label);
	assert_null(pgbackrest_label_line("new backup label = ../../etc"));
	assert_null(pgbackrest_label_line("INFO: full backup size = 21MB"));
}

static const char INFO[] =
	"[{\"name\":\"other\",\"backup\":[]},"
	"{\"name\":\"main\",\"status\":{\"code\":0,\"message\":\"ok\"},"
	"\"archive\":[{\"database\":{\"id\":1,\"repo-key\":1},\"id\":\"15-1\","
	"\"min\":\"000000010000000000000001\",\"max\":\"000000010000000000000009\"},"
	"{\"min\":7}],"
	"\"backup\":["
	"{\"label\":\"20261207-002654F\",\"type\":\"full\",\"error\":false,"
	"\"database\":{\"repo-key\":1},\"timestamp\":{\"start\":100,\"stop\":110},"
	"\"info\":{\"size\":2000,\"delta\":2000,\"repository\":{\"delta\":300}},"
	"\"archive\":{\"start\":\"000000010000000000000002\","
	"\"stop\":\"000000010000000000000003\"},\"prior\":null},"
	"{\"label\":\"20261207-003000F_20261207-003214I\",\"type\":\"incr\","
	"\"database\":{\"repo-key\":2},\"timestamp\":{\"start\":200,\"stop\":210},"
	"\"info\":{\"size\":\"big\",\"delta\":-5},"
	"\"prior\":\"20261207-003000F\"},"
	"{\"label\":\"../../evil\",\"type\":\"full\",\"timestamp\":{}},"
	"{\"label\":\"20261207-004000F\",\"type\":\"full\",\"error\":true,"
	"\"timestamp\":{\"start\":300,\"stop\":310}},"
	"{\"label\":\"20261207-005000F\",\"type\":\"weekly\","
	"\"timestamp\":{}},"
	"7, null, \"x\"]}]";

static void
test_info(void **state)
{
	char *cause = NULL;
	cJSON *s;
	const cJSON *set;

	(void)state;
	s = pgbackrest_info_summary(INFO, strlen(INFO), "main", &cause);
	assert_non_null(s);
	assert_string_equal(json_text(s, "status"), "ok");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s, "sets")), 2);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s, "wal")), 1);
	assert_true(json_num(s, "earliest") == 110);
	assert_true(json_num(s, "latest") == 210);
	set = pgbackrest_set_find(s, "20261207-003000F_20261207-003214I");
	assert_non_null(set);
	assert_true(json_num(set, "size") == 0);	/* "big": not a number */
	assert_true(json_num(set, "delta") == 0);	/* negative */
	assert_true(json_num(set, "repo") == 2);
	assert_string_equal(json_text(set, "prior"), "20261207-003000F");
	assert_null(pgbackrest_set_find(s, "../../evil"));
	assert_null(pgbackrest_set_find(s, "20261207-004000F"));
	set = pgbackrest_set_before(s, 0);
	assert_string_equal(json_text(set, "label"),
	    "20261207-003000F_20261207-003214I");
	set = pgbackrest_set_before(s, 150);
	assert_string_equal(json_text(set, "label"), "20261207-002654F");
	assert_null(pgbackrest_set_before(s, 50));
	set = pgbackrest_set_find(s, "20261207-002654F");
	assert_string_equal(json_text(set, "wal_start"),
	    "000000010000000000000002");
	assert_true(json_num(set, "repo_size") == 300);
	cJSON_Delete(s);

	static const char *const bad[] = { "", "{}", "[", "[{\"name\":1}]",
	    "{\"name\":\"main\"}", "[{\"name\":\"other\"}]", "null" };
	for (size_t i = 0; i < nitems(bad); i++) {
		cause = NULL;
		assert_null(pgbackrest_info_summary(bad[i], strlen(bad[i]),
		    "main", &cause));
		assert_non_null(cause);
		free(cause);
	}
	/* a stanza without backups: a summary with nothing to restore */
	s = pgbackrest_info_summary("[{\"name\":\"main\"}]", 18, "main",
	    &cause);
	assert_non_null(s);
	assert_null(pgbackrest_set_before(s, 0));
	cJSON_Delete(s);
}

static void
test_restore_checks(void **state)
{
	struct config_errors e;
	struct config *c = parse(GOOD, &e);
	struct target *t = config_target(c, "pg");
	struct restore_opts o;
	char *cause = NULL, **steps;

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_int_equal(restore_check(t, &o, &cause), 0);
	o.into = "../etc";
	assert_int_equal(restore_check(t, &o, &cause), -1);
	assert_non_null(strstr(cause, "needs a name"));
	free(cause);
	o.into = "/tmp/x";
	assert_int_equal(restore_check(t, &o, &cause), -1);
	free(cause);
	o.into = "inspect-1";
	assert_int_equal(restore_check(t, &o, &cause), 0);
	o.time = "2026-12-06 14:32:00";
	assert_int_equal(restore_check(t, &o, &cause), -1);
	assert_non_null(strstr(cause, "UTC offset"));
	free(cause);
	o.time = "2026-12-06 14:32:00+00";
	assert_int_equal(restore_check(t, &o, &cause), 0);
	steps = restore_steps(t, &o, "latest", NULL, NULL);
	assert_non_null(strstr(steps[0], "/var/lib/postgresql/restores/"
	    "inspect-1"));
	assert_non_null(strstr(steps[1], "2026-12-06 14:32:00+00"));
	strv_free(steps);
	o.replace = 1;
	assert_int_equal(restore_check(t, &o, &cause), -1);
	assert_non_null(strstr(cause, "allow_replace"));
	free(cause);
	t->allow_replace = 1;
	assert_int_equal(restore_check(t, &o, &cause), -1);	/* --into */
	free(cause);
	o.into = NULL;
	assert_int_equal(restore_check(t, &o, &cause), 0);
	steps = restore_steps(t, &o, "latest", NULL, NULL);
	assert_non_null(strstr(steps[0], "stop the cluster"));
	assert_non_null(strstr(steps[1], "--delta"));
	strv_free(steps);
	o.flush = 1;
	assert_int_equal(restore_check(t, &o, &cause), -1);
	free(cause);
	config_free(c);

	/* --time is for pgbackrest targets only */
	c = parse("[files f]\npaths = /etc\n", &e);
	memset(&o, 0, sizeof(o));
	o.into = "/tmp/x";
	o.time = "2026-12-06 14:32:00+00";
	assert_int_equal(restore_check(config_target(c, "f"), &o, &cause), -1);
	assert_non_null(strstr(cause, "--time is for pgbackrest"));
	free(cause);
	config_free(c);
}

static void
test_archive_problem(void **state)
{
	struct config_errors e;
	struct config *c = parse(GOOD, &e);
	struct target *t = config_target(c, "pg");
	cJSON *f;
	char *why;

	(void)state;
	f = cJSON_Parse("{\"check\":\"ok\",\"archiver\":{\"archived_count\":3,"
	    "\"last_archived_wal\":\"0001\",\"last_archived_age\":60,"
	    "\"failed_count\":2,\"last_failed_wal\":\"0000\","
	    "\"last_failed_age\":600}}");
	assert_null(pgbackrest_archive_problem(t, f));	/* failed, then ok */
	cJSON_Delete(f);
	f = cJSON_Parse("{\"check\":\"ok\",\"archiver\":{\"last_archived_wal\":"
	    "\"0001\",\"last_archived_age\":600,\"failed_count\":9,"
	    "\"last_failed_wal\":\"0002\",\"last_failed_age\":5}}");
	why = pgbackrest_archive_problem(t, f);
	assert_non_null(why);
	assert_non_null(strstr(why, "archive_command fails"));
	free(why);
	cJSON_Delete(f);
	f = cJSON_Parse("{\"check\":\"ok\",\"archiver\":{\"last_archived_wal\":"
	    "\"0001\",\"last_archived_age\":7201}}");
	why = pgbackrest_archive_problem(t, f);
	assert_non_null(strstr(why, "stale after 7200"));
	free(why);
	cJSON_Delete(f);
	f = cJSON_Parse("{\"check\":\"pgbackrest check exited with status "
	    "82: ERROR: [082]: WAL segment was not archived\"}");
	why = pgbackrest_archive_problem(t, f);
	assert_non_null(strstr(why, "WAL segment was not archived"));
	free(why);
	cJSON_Delete(f);
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_time_and_set),
		cmocka_unit_test(test_console_lines),
		cmocka_unit_test(test_info),
		cmocka_unit_test(test_restore_checks),
		cmocka_unit_test(test_archive_problem),
	};

	return TU_RUN(tests);
}
