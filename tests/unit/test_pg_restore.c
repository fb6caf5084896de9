/*
 * test_pg_restore.c - the PostgreSQL restore's parts that need no server:
 * pg_restore's connection string (never a password) and argv, the names
 * of drill and kept databases, comparing row counts, the plain words for
 * an archive too new for this pg_restore, and the restore refusing
 * before it connects anywhere (unreadable archive, bad tar, cancel).
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
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "backend.h"
#include "config.h"
#include "pg.h"
#include "proc.h"
#include "restore.h"
#include "util.h"
#include "testutil.h"

static void
target_init(struct target *t)
{
	memset(t, 0, sizeof(*t));
	t->name = "mastodon";
	t->kind = TARGET_POSTGRES;
	/* Port 1 on loopback: any connection attempt is refused at once. */
	t->conninfo = "host=127.0.0.1 port=1 user=backup dbname=mastodon";
	t->format = "custom";
	t->jobs = 1;
	t->restore_jobs = 2;
	t->compression = "zstd";
	t->pg_dump = "pg_dump";
	t->pg_restore = "pg_restore";
}

/* The value of key in a connection string, as libpq reads it. */
static char *
conn_value(const char *conninfo, const char *key)
{
	PQconninfoOption *opts, *o;
	char *err = NULL, *v = NULL;

	opts = PQconninfoParse(conninfo, &err);
	assert_non_null(opts);
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0 && o->val != NULL)
			v = xstrdup(o->val);
	PQconninfoFree(opts);
	return v;
}

static void
check_value(const char *conninfo, const char *key, const char *want)
{
	char *v = conn_value(conninfo, key);

	if (want == NULL)
		assert_null(v);
	else {
		assert_non_null(v);
		assert_string_equal(v, want);
	}
	free(v);
}

static void
test_conninfo_with_db(void **state)
{
	char *s, *cause = NULL;

	(void)state;
	s = pg_conninfo_with_db("host=db.example.org user=backup "
	    "dbname=mastodon", "mastodon_restore_202401020304", &cause);
	assert_non_null(s);
	assert_null(cause);
	check_value(s, "host", "db.example.org");
	check_value(s, "user", "backup");
	check_value(s, "dbname", "mastodon_restore_202401020304");
	assert_int_equal(tu_count(s, "dbname="), 1);
	free(s);

	/* A URI becomes key=value, its parameters kept. */
	s = pg_conninfo_with_db("postgresql://backup@localhost:5433/mastodon"
	    "?sslmode=require&application_name=x", "other", &cause);
	assert_non_null(s);
	assert_null(strstr(s, "postgresql://"));
	check_value(s, "host", "localhost");
	check_value(s, "port", "5433");
	check_value(s, "sslmode", "require");
	check_value(s, "application_name", "x");
	check_value(s, "dbname", "other");
	free(s);

	/* Quotes, backslashes and spaces survive the round trip. */
	s = pg_conninfo_with_db("host='/run/my pg' user='o\\'brien' "
	    "application_name='back\\\\slash'", "d", &cause);
	assert_non_null(s);
	check_value(s, "host", "/run/my pg");
	check_value(s, "user", "o'brien");
	check_value(s, "application_name", "back\\slash");
	check_value(s, "dbname", "d");
	free(s);

	/* Never a password, even one the config should have refused. */
	s = pg_conninfo_with_db("host=h password=Hunter2 dbname=x", "y",
	    &cause);
	assert_non_null(s);
	assert_null(strstr(s, "Hunter2"));
	assert_null(strstr(s, "password"));
	check_value(s, "dbname", "y");
	free(s);

	/* No dbname at all: one is added. */
	s = pg_conninfo_with_db("", "z", &cause);
	assert_non_null(s);
	check_value(s, "dbname", "z");
	free(s);

	assert_null(pg_conninfo_with_db("host=h nosuchkey=1", "y", &cause));
	assert_non_null(cause);
	assert_non_null(strstr(cause, "conninfo"));
	assert_null(strchr(cause, '\n'));
	free(cause);
}

static char *
joined(char **argv)
{
	struct buf b;

	buf_init(&b, 4096);
	for (size_t i = 0; argv[i] != NULL; i++)
		buf_addf(&b, "%s%s", i > 0 ? "|" : "", argv[i]);
	return buf_detach(&b, NULL);
}

static void
test_restore_argv(void **state)
{
	struct target t;
	char **argv, *s;

	(void)state;
	target_init(&t);
	t.pg_restore = "/usr/lib/postgresql/16/bin/pg_restore";
	argv = pg_restore_argv(&t, "host='h' dbname='n'", "/b/.x/raw", 0);
	s = joined(argv);
	assert_string_equal(s, "/usr/lib/postgresql/16/bin/pg_restore|"
	    "--exit-on-error|--jobs=2|--no-password|"
	    "--dbname=host='h' dbname='n'|--|/b/.x/raw");
	free(s);
	pg_argv_free(argv);

	t.restore_jobs = 8;
	argv = pg_restore_argv(&t, "dbname='n'", "-odd", 1);
	s = joined(argv);
	assert_string_equal(s, "/usr/lib/postgresql/16/bin/pg_restore|"
	    "--exit-on-error|--jobs=8|--no-password|--no-owner|"
	    "--dbname=dbname='n'|--|-odd");
	free(s);
	pg_argv_free(argv);

	t.restore_jobs = 0;
	argv = pg_restore_argv(&t, "dbname='n'", "/a", 0);
	assert_string_equal(argv[2], "--jobs=1");
	pg_argv_free(argv);
}

static void
test_names(void **state)
{
	/* 2024-01-02 03:04:05 UTC */
	time_t when = 1704164645;
	char *s, long_name[80], *utf8;

	(void)state;
	s = pg_drill_name("mastodon", when);
	assert_string_equal(s, "bbdrill_mastodon_20240102030405");
	assert_true(restore_valid_dbname(s));
	free(s);
	s = pg_drill_name("main-db", 0);
	assert_string_equal(s, "bbdrill_main_db_19700101000000");
	assert_true(restore_valid_dbname(s));
	free(s);
	/* the longest target name still makes a valid name */
	s = pg_drill_name("abcdefghijklmnopqrstuvwxyz-01234", when);
	assert_true(restore_valid_dbname(s));
	free(s);

	s = pg_before_name("mastodon", when);
	assert_string_equal(s, "mastodon_before_restore_20240102030405");
	free(s);
	memset(long_name, 'a', 63);
	long_name[63] = '\0';
	s = pg_before_name(long_name, when);
	assert_int_equal(strlen(s), 63);
	assert_true(tu_endswith(s, "_before_restore_20240102030405"));
	assert_int_equal(strncmp(s, long_name, 33), 0);
	free(s);
	/* "é" is two bytes: never cut in the middle */
	memset(long_name, 'a', 32);
	memcpy(long_name + 32, "\xc3\xa9xyz", 6);
	s = pg_before_name(long_name, when);
	assert_true(strlen(s) <= 63);
	utf8 = xasprintf("%.32s_before_restore_20240102030405", long_name);
	assert_string_equal(s, utf8);
	free(utf8);
	free(s);
}

static void
test_compare_counts(void **state)
{
	cJSON *backup = cJSON_Parse("{\"public.accounts\": 100, "
	    "\"public.statuses\": 5000, \"public.follows\": 0, "
	    "\"public.gone\": 7}");
	cJSON *same = cJSON_Parse("{\"public.statuses\": 5000, "
	    "\"public.accounts\": 100, \"public.follows\": 0, "
	    "\"public.gone\": 7}");
	cJSON *other = cJSON_Parse("{\"public.accounts\": 99, "
	    "\"public.statuses\": 5000, \"public.follows\": 0, "
	    "\"public.extra\": 3}");
	cJSON *d = cJSON_CreateArray();
	char *text;

	(void)state;
	assert_int_equal(pg_compare_counts(backup, same, d), 0);
	assert_int_equal(cJSON_GetArraySize(d), 0);

	assert_int_equal(pg_compare_counts(backup, other, d), 3);
	assert_int_equal(cJSON_GetArraySize(d), 3);
	text = cJSON_PrintUnformatted(d);
	assert_non_null(strstr(text, "\"table public.accounts: 100 rows in "
	    "the backup, 99 restored\""));
	assert_non_null(strstr(text, "\"table public.gone: 7 rows in the "
	    "backup, not restored\""));
	assert_non_null(strstr(text, "\"table public.extra: not in the "
	    "backup, 3 rows restored\""));
	assert_null(strstr(text, "statuses"));
	free(text);

	/* Big counts are exact, not rounded away. */
	cJSON_Delete(d);
	d = cJSON_CreateArray();
	cJSON_Delete(backup);
	cJSON_Delete(other);
	backup = cJSON_Parse("{\"public.t\": 123456789012}");
	other = cJSON_Parse("{\"public.t\": 123456789013}");
	assert_int_equal(pg_compare_counts(backup, other, d), 1);
	text = cJSON_PrintUnformatted(d);
	assert_non_null(strstr(text, "123456789012 rows in the backup, "
	    "123456789013 restored"));
	free(text);

	cJSON_Delete(backup);
	cJSON_Delete(same);
	cJSON_Delete(other);
	cJSON_Delete(d);
}

static void
test_unreadable_cause(void **state)
{
	struct target t;
	char *c;

	(void)state;
	target_init(&t);
	c = pg_unreadable_cause(&t, "pg_restore: error: unsupported version "
	    "(1.15) in file header", "15.20", 150020, "16.4");
	assert_non_null(c);
	assert_string_equal(c, "pg_restore 15.20 cannot read this archive "
	    "(made by pg_dump 16.4); install postgresql-client-16 or set "
	    "pg_restore = /usr/lib/postgresql/16/bin/pg_restore in "
	    "[postgres mastodon]");
	free(c);

	/* Not older by its major version: still plain, no wrong advice. */
	c = pg_unreadable_cause(&t, "pg_restore: error: unsupported version "
	    "(1.99) in file header", "16.4", 160004, "16.4");
	assert_non_null(c);
	assert_non_null(strstr(c, "pg_restore 16.4 cannot read this archive "
	    "(archive version 1.99, made by pg_dump 16.4)"));
	assert_null(strstr(c, "postgresql-client-"));
	free(c);
	c = pg_unreadable_cause(&t, "unsupported version (1.16) in file "
	    "header", "15.2", 150002, NULL);
	assert_non_null(c);
	assert_non_null(strstr(c, "(archive version 1.16)"));
	free(c);

	/* Any other failure is not this one. */
	assert_null(pg_unreadable_cause(&t, "pg_restore: error: input file "
	    "does not appear to be a valid archive", "15.2", 150002, "16.1"));
	assert_null(pg_unreadable_cause(&t, "unsupported version (x) in file "
	    "header", "15.2", 150002, "16.1"));
}

/* 1 if prog --version runs. */
static int
have_tool(const char *prog)
{
	const char *argv[] = { prog, "--version", NULL };
	char *cause = NULL;
	int status;

	if (proc_run(argv, NULL, NULL, 0, NULL, &status, &cause) == -1) {
		free(cause);
		return 0;
	}
	return proc_ok(status);
}

/*
 * Restore raw (bytes of len) with manifest; returns the backend's answer,
 * its cause and result.
 */
static int
restore(struct target *t, const char *manifest_text, const void *raw_data,
    size_t len, const struct restore_opts *opts, int cancel, char **cause,
    cJSON **result, char **tmp_out)
{
	struct job_ctx ctx;
	volatile sig_atomic_t cancelled = cancel;
	cJSON *manifest = cJSON_Parse(manifest_text);
	char *tmp = tu_mkdtemp(), *raw = tu_path(tmp, "raw");
	int rc;

	assert_non_null(manifest);
	tu_write(raw, raw_data, len, 0600);
	memset(&ctx, 0, sizeof(ctx));
	ctx.target = t;
	ctx.id = "mastodon-20240102T030405Z";
	ctx.cancelled = &cancelled;
	*result = cJSON_CreateObject();
	*cause = NULL;
	rc = backend_postgres.restore(&ctx, manifest, raw, opts, *result,
	    cause);
	cJSON_Delete(manifest);
	free(raw);
	*tmp_out = tmp;
	return rc;
}

static void
check_nothing_connected(const char *cause)
{
	assert_null(strstr(cause, "cannot connect"));
	assert_null(strstr(cause, "dropped"));
}

static void
test_restore_refused_before_the_server(void **state)
{
	static const char junk[] = "this is not an archive of any kind, "
	    "neither custom nor tar; it is long enough to be read whole";
	/* A custom archive header from a pg_dump far in the future. */
	static const char future[] = "PGDMP\x01\x63\x00\x04\x08\x01"
	    "rest of an archive that is never read";
	struct restore_opts opts;
	struct target t;
	cJSON *result;
	char *cause, *tmp, *text;

	(void)state;
	if (!have_tool("pg_restore") || !have_tool("tar")) {
		print_message("pg_restore or tar not installed: skipped\n");
		return;
	}
	target_init(&t);
	memset(&opts, 0, sizeof(opts));

	assert_int_equal(backend_postgres.restore != NULL, 1);

	/* Not an archive: said so, nothing created. */
	opts.into = "restored";
	assert_int_equal(restore(&t, "{\"format\": \"custom\", "
	    "\"pg_dump_version\": \"15.2\"}", junk, sizeof(junk), &opts, 0,
	    &cause, &result, &tmp), -1);
	assert_non_null(strstr(cause, "cannot read the archive"));
	assert_non_null(strstr(cause, "valid archive"));
	check_nothing_connected(cause);
	assert_string_equal(cJSON_GetObjectItem(result, "into")->valuestring,
	    "restored");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(result,
	    "differences")), 0);
	free(cause);
	cJSON_Delete(result);
	tu_rmtree(tmp);

	/* Too new for this pg_restore: which one to install. */
	assert_int_equal(restore(&t, "{\"format\": \"custom\", "
	    "\"pg_dump_version\": \"99.1\"}", future, sizeof(future) - 1,
	    &opts, 0, &cause, &result, &tmp), -1);
	assert_non_null(strstr(cause, "cannot read this archive (made by "
	    "pg_dump 99.1); install postgresql-client-99 or set pg_restore = "
	    "/usr/lib/postgresql/99/bin/pg_restore in [postgres mastodon]"));
	assert_true(str_startswith(cause, "pg_restore "));
	check_nothing_connected(cause);
	free(cause);
	cJSON_Delete(result);
	tu_rmtree(tmp);

	/* A directory dump whose tar is broken: tar says so, no leftovers. */
	assert_int_equal(restore(&t, "{\"format\": \"directory\", "
	    "\"container\": \"tar\"}", junk, sizeof(junk), &opts, 0, &cause,
	    &result, &tmp), -1);
	assert_true(str_startswith(cause, "tar "));
	check_nothing_connected(cause);
	text = tu_path(tmp, "raw.dir");
	assert_false(tu_exists(text));
	free(text);
	free(cause);
	cJSON_Delete(result);
	tu_rmtree(tmp);

	/* Cancelled: stops before pg_restore is asked anything. */
	opts.into = NULL;
	opts.drill = 1;
	assert_int_equal(restore(&t, "{\"format\": \"custom\"}", junk,
	    sizeof(junk), &opts, 1, &cause, &result, &tmp), -1);
	assert_string_equal(cause, "cancelled");
	text = cJSON_PrintUnformatted(result);
	assert_non_null(strstr(text, "\"into\":\"bbdrill_mastodon_"));
	assert_null(strstr(text, "dropped"));
	free(text);
	free(cause);
	cJSON_Delete(result);
	tu_rmtree(tmp);

	/* A target whose default name cannot be a database name. */
	opts.drill = 0;
	t.name = "9lives";
	assert_int_equal(restore(&t, "{\"format\": \"custom\"}", junk,
	    sizeof(junk), &opts, 0, &cause, &result, &tmp), -1);
	assert_non_null(strstr(cause, "is not a database name"));
	assert_non_null(strstr(cause, "--into"));
	free(cause);
	cJSON_Delete(result);
	tu_rmtree(tmp);
}

static void
test_restore_without_raw(void **state)
{
	struct restore_opts opts;
	struct target t;
	struct job_ctx ctx;
	cJSON *manifest = cJSON_CreateObject(), *result = cJSON_CreateObject();
	char *cause = NULL;

	(void)state;
	target_init(&t);
	memset(&opts, 0, sizeof(opts));
	memset(&ctx, 0, sizeof(ctx));
	ctx.target = &t;
	assert_int_equal(backend_postgres.restore(&ctx, manifest, NULL, &opts,
	    result, &cause), -1);
	assert_non_null(cause);
	free(cause);
	cJSON_Delete(manifest);
	cJSON_Delete(result);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conninfo_with_db),
		cmocka_unit_test(test_restore_argv),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_compare_counts),
		cmocka_unit_test(test_unreadable_cause),
		cmocka_unit_test(test_restore_refused_before_the_server),
		cmocka_unit_test(test_restore_without_raw),
	};

	return TU_RUN(tests);
}
