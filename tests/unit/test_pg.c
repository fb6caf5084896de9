/*
 * test_pg.c - the PostgreSQL backend's pure parts: pg_dump version
 * parsing and comparison, .pgpass escaping, pg_dump's argv (never a
 * password, the right compression), and what needs no server: the
 * backend table, check_reader picking the right reader, probe and
 * prepare failing with a clear cause.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "config.h"
#include "pg.h"
#include "pg_parts.h"
#include "proc.h"
#include "util.h"
#include "testutil.h"

static int
version(const char *text)
{
	int num = -1;

	if (pg_parse_version(text, &num) == -1) {
		assert_int_equal(num, 0);
		return -1;
	}
	return num;
}

static void
test_parse_version(void **state)
{
	(void)state;
	assert_int_equal(version("pg_dump (PostgreSQL) 15.18\n"), 150018);
	assert_int_equal(version("pg_dump (PostgreSQL) 15.20 (Debian "
	    "15.20-0+deb12u1)\n"), 150020);
	assert_int_equal(version("pg_restore (PostgreSQL) 16.4"), 160004);
	assert_int_equal(version("pg_dump (PostgreSQL) 10.23\n"), 100023);
	assert_int_equal(version("pg_dump (PostgreSQL) 9.6.24\n"), 90624);
	assert_int_equal(version("pg_dump (PostgreSQL) 9.2.0"), 90200);
	assert_int_equal(version("pg_dump (PostgreSQL) 17devel\n"), 170000);
	assert_int_equal(version("pg_dump (PostgreSQL) 16beta2\n"), 160000);
	assert_int_equal(version("pg_dump (PostgreSQL) 16rc1\n"), 160000);
	assert_int_equal(version("pg_dump (PostgreSQL) 17.0\r\n"), 170000);
	assert_int_equal(version("  /opt/pg/bin/pg_dump (PostgreSQL) 14.1"),
	    140001);
}

static void
test_parse_version_bad(void **state)
{
	(void)state;
	assert_int_equal(version(""), -1);
	assert_int_equal(version("pg_dump"), -1);
	assert_int_equal(version("pg_dump (PostgreSQL)"), -1);
	assert_int_equal(version("pg_dump (PostgreSQL) \n15.1"), -1);
	assert_int_equal(version("pg_dump (PostgreSQL) abc"), -1);
	assert_int_equal(version("pg_dump (PostgreSQL) 9\n"), -1);
	assert_int_equal(version("pg_dump (PostgreSQL) 15.x"), -1);
	assert_int_equal(version("pg_dump (PostgreSQL) 15.1.2.3"), -1);
	assert_int_equal(version("pg_dump (PostgreSQL) 15.100"), -1);
	assert_int_equal(version("pg_dump (PostgreSQL) 99999999999999.1"), -1);
	assert_int_equal(version("pg_dump (PostgreSQL) 5.1"), -1);
	assert_int_equal(version("something else 15.1"), -1);
	assert_int_equal(version("pg_dump: error: 15.2 (x)"), -1);
	assert_int_equal(version("pg_dump (PostgreSQL 15.2"), -1);
}

static void
test_major(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(pg_major(150018), 1500);
	assert_int_equal(pg_major(150000), pg_major(150020));
	assert_true(pg_major(140011) < pg_major(150000));
	assert_true(pg_major(90624) < pg_major(100000));
	assert_true(pg_major(90500) < pg_major(90624));
	assert_int_equal(pg_major(90624), 906);
	assert_true(pg_major(170000) > pg_major(160004));

	pg_major_text(150018, buf, sizeof(buf));
	assert_string_equal(buf, "15");
	pg_major_text(90624, buf, sizeof(buf));
	assert_string_equal(buf, "9.6");
	pg_major_text(100023, buf, sizeof(buf));
	assert_string_equal(buf, "10");
}

static void
check_line(const char *password, const char *want)
{
	char *line = pg_passfile_line(password);

	if (want == NULL) {
		assert_null(line);
		return;
	}
	assert_non_null(line);
	assert_string_equal(line, want);
	secure_wipe(line, strlen(line));
	free(line);
}

static void
test_passfile_line(void **state)
{
	(void)state;
	check_line("secret", "*:*:*:*:secret\n");
	check_line("a:b", "*:*:*:*:a\\:b\n");
	check_line("back\\slash", "*:*:*:*:back\\\\slash\n");
	check_line("::\\\\", "*:*:*:*:\\:\\:\\\\\\\\\n");
	check_line("sp ace#*", "*:*:*:*:sp ace#*\n");
	check_line("\\:", "*:*:*:*:\\\\\\:\n");
	/* One line per entry: a line break cannot be written. */
	check_line("two\nlines", NULL);
	check_line("cr\r", NULL);
	check_line("", NULL);
}

static void
target_init(struct target *t)
{
	memset(t, 0, sizeof(*t));
	t->name = "mastodon";
	t->kind = TARGET_POSTGRES;
	t->conninfo = "host=db.example.org user=backup dbname=mastodon";
	t->password_file = "/etc/backupbot/pg.pass";
	t->format = "custom";
	t->jobs = 1;
	t->compression = "zstd";
	t->pg_dump = "/usr/lib/postgresql/15/bin/pg_dump";
	t->pg_restore = "pg_restore";
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
check_argv(const struct target *t, const char *snapshot, const char *dir,
    const char *want)
{
	char **argv = pg_dump_argv(t, snapshot, dir);
	char *s = joined(argv), *w;

	/* The default name is run as pg_program finds it (no wrapper). */
	if (strncmp(want, "pg_dump|", 8) == 0)
		w = xasprintf("%s%s", pg_program("pg_dump"), want + 7);
	else
		w = xstrdup(want);
	assert_string_equal(s, w);
	free(w);
	free(s);
	pg_argv_free(argv);
}

static void
test_dump_argv(void **state)
{
	struct target t;

	(void)state;
	target_init(&t);
	check_argv(&t, "00000003-0000001B-1",  NULL,
	    "/usr/lib/postgresql/15/bin/pg_dump|--format=custom|--compress=0|"
	    "--snapshot=00000003-0000001B-1|--no-password|"
	    "--dbname=host=db.example.org user=backup dbname=mastodon");

	t.compression = "none";
	check_argv(&t, "S", NULL, "/usr/lib/postgresql/15/bin/pg_dump|"
	    "--format=custom|--compress=0|--snapshot=S|--no-password|"
	    "--dbname=host=db.example.org user=backup dbname=mastodon");

	/* pg_dump's own compression: no --compress at all. */
	t.compression = "pgdump";
	check_argv(&t, "S", NULL, "/usr/lib/postgresql/15/bin/pg_dump|"
	    "--format=custom|--snapshot=S|--no-password|"
	    "--dbname=host=db.example.org user=backup dbname=mastodon");

	t.compression = "zstd";
	t.format = "directory";
	t.jobs = 4;
	t.pg_dump = "pg_dump";
	t.conninfo = "postgresql://backup@localhost/mastodon";
	check_argv(&t, "S", "/var/backups/mastodon/.mastodon-x.dir",
	    "pg_dump|--format=directory|--jobs=4|"
	    "--file=/var/backups/mastodon/.mastodon-x.dir|--no-sync|"
	    "--compress=0|--snapshot=S|--no-password|"
	    "--dbname=postgresql://backup@localhost/mastodon");

	/* No snapshot: none asked for. */
	t.format = "custom";
	check_argv(&t, NULL, NULL, "pg_dump|--format=custom|--compress=0|"
	    "--no-password|--dbname=postgresql://backup@localhost/mastodon");
}

static void
test_backend_table(void **state)
{
	struct target t;

	(void)state;
	target_init(&t);
	assert_ptr_equal(backend_for(&t), &backend_postgres);
	assert_string_equal(backend_postgres.kind, "postgres");
	assert_string_equal(backend_postgres.suffix, ".dump");
	assert_non_null(backend_postgres.prepare);
	assert_non_null(backend_postgres.backup);
	assert_non_null(backend_postgres.check_reader);
	assert_non_null(backend_postgres.probe);
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

/* Feed data to the reader check_reader starts; its wait status. */
static int
run_reader(const cJSON *manifest, const void *data, size_t len)
{
	struct target t;
	struct job_ctx ctx;
	struct proc p;
	struct tail err = { .len = 0 };
	char *cause = NULL, chunk[512];
	void (*old)(int);
	ssize_t n;
	int status;

	target_init(&t);
	memset(&ctx, 0, sizeof(ctx));
	ctx.target = &t;
	assert_int_equal(backend_postgres.check_reader(&ctx, manifest, &p,
	    &cause), 0);
	assert_null(cause);
	assert_true(p.in_fd != -1);
	assert_true(p.err_fd != -1);
	assert_int_equal(p.out_fd, -1);
	old = signal(SIGPIPE, SIG_IGN);
	if (len > 0)
		(void)!write(p.in_fd, data, len);	/* it may stop early */
	close(p.in_fd);
	p.in_fd = -1;
	while ((n = read(p.err_fd, chunk, sizeof(chunk))) > 0)
		tail_add(&err, chunk, (size_t)n);
	assert_int_equal(proc_wait(&p, &status), 0);
	signal(SIGPIPE, old);
	return status;
}

static void
test_check_reader(void **state)
{
	static const char junk[] = "this is not an archive of any kind, "
	    "neither custom nor tar; it is long enough to be read whole";
	char *empty_tar = xcalloc(1, 10240);
	cJSON *custom = cJSON_CreateObject();
	cJSON *tar = cJSON_CreateObject();

	(void)state;
	cJSON_AddStringToObject(custom, "format", "custom");
	cJSON_AddStringToObject(tar, "format", "directory");
	cJSON_AddStringToObject(tar, "container", "tar");

	if (have_tool("tar")) {
		/* Two zero blocks: an empty, well-formed tar. */
		assert_true(proc_ok(run_reader(tar, empty_tar, 10240)));
		assert_false(proc_ok(run_reader(tar, junk, sizeof(junk))));
		assert_false(proc_ok(run_reader(tar, "", 0)));
	}
	if (have_tool("pg_restore")) {
		assert_false(proc_ok(run_reader(custom, junk, sizeof(junk))));
		/* The empty stream of a failed dump. */
		assert_false(proc_ok(run_reader(custom, "", 0)));
		/* A tar is no custom archive. */
		assert_false(proc_ok(run_reader(custom, empty_tar, 10240)));
	} else
		print_message("pg_restore not installed: skipped\n");
	free(empty_tar);
	cJSON_Delete(custom);
	cJSON_Delete(tar);
}

static void
test_probe_unreachable(void **state)
{
	struct target t;
	struct job_ctx ctx;
	cJSON *out = cJSON_CreateObject();
	char *cause = NULL;

	(void)state;
	target_init(&t);
	/* Port 1 on loopback: refused at once. */
	t.conninfo = "host=127.0.0.1 port=1 user=backup dbname=x";
	t.password_file = NULL;
	memset(&ctx, 0, sizeof(ctx));
	ctx.target = &t;
	assert_int_equal(backend_postgres.probe(&ctx, out, &cause), -1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "cannot connect to PostgreSQL"));
	assert_non_null(strstr(cause, "127.0.0.1"));
	assert_null(strchr(cause, '\n'));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(out,
	    "reachable")));
	free(cause);
	cJSON_Delete(out);
}

static void
test_prepare_password_file(void **state)
{
	struct target t;
	struct job_ctx ctx;
	cJSON *m = cJSON_CreateObject();
	char *tmp = tu_mkdtemp(), *path = tu_path(tmp, "pg.pass");
	char *cause = NULL;

	(void)state;
	target_init(&t);
	t.conninfo = "host=127.0.0.1 port=1 user=backup dbname=x";
	t.password_file = path;
	memset(&ctx, 0, sizeof(ctx));
	ctx.target = &t;

	/* Readable by others: refused before any connection. */
	tu_write_str(path, "hunter2\n", 0644);
	assert_int_equal(backend_postgres.prepare(&ctx, m, &cause), -1);
	assert_non_null(strstr(cause, "[postgres mastodon] password_file"));
	assert_non_null(strstr(cause, "too open"));
	assert_null(strstr(cause, "hunter2"));
	free(cause);
	cause = NULL;

	/* Missing. */
	unlink(path);
	assert_int_equal(backend_postgres.prepare(&ctx, m, &cause), -1);
	assert_non_null(strstr(cause, "pg.pass"));
	free(cause);
	cause = NULL;

	/* Fine, but nobody listens: a connection error, no secret in it. */
	tu_write_str(path, "hunter2\n", 0600);
	assert_int_equal(backend_postgres.prepare(&ctx, m, &cause), -1);
	assert_non_null(strstr(cause, "cannot connect"));
	assert_null(strstr(cause, "hunter2"));
	free(cause);
	/* Nothing learnt, nothing added. */
	assert_null(m->child);

	cJSON_Delete(m);
	free(path);
	tu_rmtree(tmp);
}

/*
 * pg_program: a path is run as set; a name PATH leads to Debian's
 * pg_wrapper becomes the newest /usr/lib/postgresql/N/bin/NAME; any
 * other name stays as it is.  The newest installed pg_dump is whatever
 * this machine has; the test reads it itself to compare.
 */
static void
test_program(void **state)
{
	char *tmp = tu_mkdtemp(), *bin = tu_path(tmp, "bin");
	char *wrapper = tu_path(tmp, "pg_wrapper");
	char *link = tu_path(bin, "pg_dump"), *plain = tu_path(bin, "pg_restore");
	char *old_path = xstrdup(getenv("PATH")), *want = NULL;
	const char *got;
	long best = -1;
	DIR *d;
	struct dirent *de;

	(void)state;
	assert_string_equal(pg_program("/opt/pg/bin/pg_dump"),
	    "/opt/pg/bin/pg_dump");
	assert_int_equal(mkdir(bin, 0700), 0);
	tu_write_str(wrapper, "#!/bin/sh\n", 0755);
	assert_int_equal(symlink(wrapper, link), 0);
	tu_write_str(plain, "#!/bin/sh\n", 0755);
	setenv("PATH", bin, 1);

	/* What the wrapper would run: the newest installed pg_dump. */
	if ((d = opendir("/usr/lib/postgresql")) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char *cand = xasprintf("/usr/lib/postgresql/%s/bin/"
			    "pg_dump", de->d_name);
			long v = atol(de->d_name);

			if (v > best && access(cand, X_OK) == 0) {
				free(want);
				want = cand;
				best = v;
			} else
				free(cand);
		}
		closedir(d);
	}
	got = pg_program("pg_dump");
	assert_string_equal(got, want != NULL ? want : "pg_dump");
	/* Not the wrapper: the name as it is, for exec to find in PATH. */
	assert_string_equal(pg_program("pg_restore"), "pg_restore");
	/* Asked again: the same answer. */
	assert_string_equal(pg_program("pg_dump"), got);

	setenv("PATH", old_path, 1);
	free(old_path);
	free(want);
	free(link);
	free(plain);
	free(wrapper);
	free(bin);
	tu_rmtree(tmp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_version),
		cmocka_unit_test(test_parse_version_bad),
		cmocka_unit_test(test_major),
		cmocka_unit_test(test_passfile_line),
		cmocka_unit_test(test_dump_argv),
		cmocka_unit_test(test_backend_table),
		cmocka_unit_test(test_check_reader),
		cmocka_unit_test(test_probe_unreachable),
		cmocka_unit_test(test_prepare_password_file),
		cmocka_unit_test(test_program),
	};

	return TU_RUN(tests);
}
