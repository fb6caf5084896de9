/*
 * pg_restore.c - the restore side of the PostgreSQL backend
 * (backend_postgres.restore): into a new database, never over one; the
 * drill, --replace and what is dropped again.  The backup side is pg.c.
 *
 * A restore never writes over a database: it creates a new one (the
 * name asked for, TARGET_restore_YYYYmmddHHMM, or bbdrill_... for a
 * drill), runs pg_restore -j into it, and compares the row count of
 * every table with the manifest.  --replace then swaps names: the live
 * database is kept as NAME_before_restore_YYYYmmddHHMMSS, nothing is
 * dropped.  What we created and did not finish is dropped again.
 *
 * CREATE, DROP and ALTER DATABASE run on the maintenance database
 * (postgres, else template1) with the target's role, which therefore
 * needs CREATEDB, and for a restore with owners (all but drills) the
 * right to own what the backup's owners owned: superuser, or membership
 * in those roles.  A drill restores with --no-owner: it proves the data,
 * and needs CREATEDB only.
 */
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "backend.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "pg.h"
#include "pg_parts.h"
#include "pipeline.h"
#include "proc.h"
#include "restore.h"
#include "util.h"

#define PG_DRILL_PREFIX		"bbdrill_"
#define PG_BEFORE_SUFFIX	"_before_restore_"
#define PG_NAME_MAX		63	/* NAMEDATALEN - 1 */
#define PG_RENAME_TRIES		3	/* each waits 5 s for others to go */

/* A restore from start to cleanup. */
struct pg_restoring {
	struct job_ctx			*ctx;
	const struct target		*t;
	const cJSON			*manifest;
	const struct restore_opts	*opts;
	char		*password;
	PGconn		*maint;		/* the maintenance database */
	const char	*archive;	/* raw, or unpacked */
	char		*unpacked;	/* the directory of a tar, ours */
	char		*into;		/* the database restored into */
	int		 created;	/* we created into: ours to drop */
	int		 keep;		/* restored whole: not dropped */
	int		 dropped;	/* and dropped again */
	char		*live;		/* --replace: the target's database */
	char		*before;	/* --replace: the live one kept as */
	uint64_t	 size;		/* into's size, last measured */
	cJSON		*notes;
};

static void
pg_stamp(time_t now, char *buf, size_t size)
{
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, size, "%Y%m%d%H%M%S", &tm);
}

char *
pg_drill_name(const char *target, time_t now)
{
	char stamp[32], *name, *p;

	pg_stamp(now, stamp, sizeof(stamp));
	name = xasprintf(PG_DRILL_PREFIX "%.32s_%s", target, stamp);
	for (p = name; *p != '\0'; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
		else if (!((*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '_'))
			*p = '_';
	}
	return name;
}

char *
pg_before_name(const char *db, time_t now)
{
	char stamp[32];
	size_t keep = strlen(db), room;

	pg_stamp(now, stamp, sizeof(stamp));
	room = PG_NAME_MAX - strlen(PG_BEFORE_SUFFIX) - strlen(stamp);
	if (keep > room) {
		keep = room;
		/* Not in the middle of a UTF-8 character. */
		while (keep > 0 && ((unsigned char)db[keep] & 0xc0) == 0x80)
			keep--;
	}
	return xasprintf("%.*s" PG_BEFORE_SUFFIX "%s", (int)keep, db, stamp);
}

/* s (freed) with " key='value'" added, quoted as libpq reads it. */
static char *
pg_conninfo_add(char *s, const char *key, const char *val)
{
	char *q = xmalloc(2 * strlen(val) + 1), *out;
	size_t n = 0;

	for (const char *p = val; *p != '\0'; p++) {
		if (*p == '\'' || *p == '\\')
			q[n++] = '\\';
		q[n++] = *p;
	}
	q[n] = '\0';
	out = xasprintf("%s%s%s='%s'", s != NULL ? s : "",
	    s != NULL && *s != '\0' ? " " : "", key, q);
	free(q);
	free(s);
	return out;
}

char *
pg_conninfo_with_db(const char *conninfo, const char *dbname, char **cause)
{
	PQconninfoOption *opts, *o;
	char *err = NULL, *s = NULL, *msg;

	if ((opts = PQconninfoParse(conninfo, &err)) == NULL) {
		msg = pg_oneline(err != NULL ? err : "out of memory");
		*cause = xasprintf("conninfo: %s", msg);
		free(msg);
		PQfreemem(err);
		return NULL;
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || strcmp(o->keyword, "dbname") == 0 ||
		    strcmp(o->keyword, "password") == 0)
			continue;
		s = pg_conninfo_add(s, o->keyword, o->val);
	}
	PQconninfoFree(opts);
	return pg_conninfo_add(s, "dbname", dbname);
}

char **
pg_restore_argv(const struct target *t, const char *conninfo,
    const char *archive, int no_owner)
{
	char **argv = xcalloc(10, sizeof(*argv));
	size_t n = 0;

	argv[n++] = xstrdup(pg_program(t->pg_restore));
	argv[n++] = xstrdup("--exit-on-error");
	argv[n++] = xasprintf("--jobs=%d", t->restore_jobs > 0 ?
	    t->restore_jobs : 1);
	argv[n++] = xstrdup("--no-password");
	if (no_owner)
		argv[n++] = xstrdup("--no-owner");
	argv[n++] = xasprintf("--dbname=%s", conninfo);
	argv[n++] = xstrdup("--");
	argv[n++] = xstrdup(archive);
	argv[n] = NULL;
	return argv;
}

int
pg_compare_counts(const cJSON *backup, const cJSON *restored,
    cJSON *differences)
{
	const cJSON *b, *r;
	int differ = 0;

	cJSON_ArrayForEach(b, backup) {
		if (b->string == NULL || !cJSON_IsNumber(b))
			continue;
		r = cJSON_GetObjectItemCaseSensitive(restored, b->string);
		if (!cJSON_IsNumber(r)) {
			json_addf(differences, "table %s: %.0f rows in the "
			    "backup, not restored", b->string, b->valuedouble);
			differ++;
		} else if (r->valuedouble != b->valuedouble) {
			json_addf(differences, "table %s: %.0f rows in the "
			    "backup, %.0f restored", b->string, b->valuedouble,
			    r->valuedouble);
			differ++;
		}
	}
	cJSON_ArrayForEach(r, restored) {
		if (r->string == NULL ||
		    cJSON_GetObjectItemCaseSensitive(backup, r->string) != NULL)
			continue;
		json_addf(differences, "table %s: not in the backup, %.0f "
		    "rows restored", r->string, r->valuedouble);
		differ++;
	}
	return differ;
}

/* The number of a version word ("16.4"), or 0. */
static int
pg_version_num(const char *version)
{
	char *line;
	int num;

	if (version == NULL)
		return 0;
	line = xasprintf("pg_dump (PostgreSQL) %s", version);
	if (pg_parse_version(line, &num) == -1)
		num = 0;
	free(line);
	return num;
}

char *
pg_unreadable_cause(const struct target *t, const char *err,
    const char *restore_text, int restore_num, const char *dump_version)
{
	static const char marker[] = "unsupported version (";
	char dump_major[16];
	const char *p;
	size_t len;
	int dump_num = pg_version_num(dump_version);

	if ((p = strstr(err, marker)) == NULL)
		return NULL;
	p += strlen(marker);
	len = strspn(p, "0123456789.");
	if (len == 0 || len > 15 || p[len] != ')')
		return NULL;
	if (dump_num != 0 && pg_major(dump_num) > pg_major(restore_num)) {
		pg_major_text(dump_num, dump_major, sizeof(dump_major));
		return xasprintf("pg_restore %s cannot read this archive (made "
		    "by pg_dump %s); install postgresql-client-%s or set "
		    "pg_restore = /usr/lib/postgresql/%s/bin/pg_restore in "
		    "[postgres %s]", restore_text, dump_version, dump_major,
		    dump_major, t->name);
	}
	return xasprintf("pg_restore %s cannot read this archive (archive "
	    "version %.*s%s%s); install a newer pg_restore and set "
	    "pg_restore = /path/to/pg_restore in [postgres %s]",
	    restore_text, (int)len, p,
	    dump_version != NULL ? ", made by pg_dump " : "",
	    dump_version != NULL ? dump_version : "", t->name);
}

static int
pg_rs_cancelled(struct pg_restoring *r, char **cause)
{
	if (!pg_is_cancelled(r->ctx))
		return 0;
	if (*cause == NULL)
		*cause = xstrdup("cancelled");
	return 1;
}

/* Run a query with text parameters that gives rows (caller PQclear()s). */
static PGresult *
pg_query_params(PGconn *conn, const char *sql, int n,
    const char *const *params, char **cause)
{
	PGresult *res;
	char *msg;

	res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	msg = pg_oneline(res != NULL ? PQresultErrorMessage(res) :
	    PQerrorMessage(conn));
	*cause = xstrdup(msg);
	free(msg);
	PQclear(res);
	return NULL;
}

/* Run a command; on error *cause is the server's message alone. */
static int
pg_command(PGconn *conn, const char *sql, char **cause)
{
	PGresult *res = PQexec(conn, sql);
	const char *msg = NULL;

	if (PQresultStatus(res) == PGRES_COMMAND_OK) {
		PQclear(res);
		return 0;
	}
	if (res != NULL)
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	if (msg == NULL)
		msg = res != NULL ? PQresultErrorMessage(res) :
		    PQerrorMessage(conn);
	*cause = pg_oneline(msg);
	PQclear(res);
	return -1;
}

/* A quoted identifier (caller frees), or NULL with *cause. */
static char *
pg_ident(PGconn *conn, const char *name, char **cause)
{
	char *q, *s, *msg;

	if ((q = PQescapeIdentifier(conn, name, strlen(name))) == NULL) {
		msg = pg_oneline(PQerrorMessage(conn));
		*cause = xasprintf("quoting %s: %s", name, msg);
		free(msg);
		return NULL;
	}
	s = xstrdup(q);
	PQfreemem(q);
	return s;
}

/* A quoted literal (caller frees), or NULL with *cause. */
static char *
pg_literal(PGconn *conn, const char *value, char **cause)
{
	char *q, *s, *msg;

	if ((q = PQescapeLiteral(conn, value, strlen(value))) == NULL) {
		msg = pg_oneline(PQerrorMessage(conn));
		*cause = xasprintf("quoting %s: %s", value, msg);
		free(msg);
		return NULL;
	}
	s = xstrdup(q);
	PQfreemem(q);
	return s;
}

/* 1 if database name exists, 0 if not, -1 with *cause. */
static int
pg_db_exists(PGconn *conn, const char *name, char **cause)
{
	const char *params[] = { name };
	PGresult *res;
	int n;

	if ((res = pg_query_params(conn, "SELECT 1 FROM pg_catalog.pg_database "
	    "WHERE datname = $1", 1, params, cause)) == NULL)
		return -1;
	n = PQntuples(res);
	PQclear(res);
	return n > 0;
}

/*
 * The maintenance database, as createdb finds it: postgres, or
 * template1 where there is no postgres.
 */
static int
pg_rs_connect_maint(struct pg_restoring *r, char **cause)
{
	char *why = NULL;

	r->maint = pg_connect_db(r->t, r->password, "postgres", &why);
	if (r->maint == NULL && strstr(why, "\"postgres\" does not exist")) {
		free(why);
		why = NULL;
		r->maint = pg_connect_db(r->t, r->password, "template1", &why);
	}
	if (r->maint == NULL) {
		*cause = why;
		return -1;
	}
	/* CREATE DATABASE and a big DROP may take their time. */
	if (pg_exec(r->maint, "SET statement_timeout = 0", cause) == -1)
		return -1;
	return 0;
}

/*
 * Unpack the tar of a directory-format dump next to raw, in a private
 * directory, for pg_restore -j.
 */
static int
pg_rs_unpack(struct pg_restoring *r, const char *raw, char **cause)
{
	struct pg_run tar = { .name = "tar", .phase = "unpack" };
	const char *argv[] = { "tar", "--no-same-owner", "-C", NULL, "-xf",
	    raw, NULL };
	struct statvfs sv;
	struct stat st;
	int rc = -1;

	r->unpacked = xasprintf("%s.dir", raw);
	pg_rmtree(r->unpacked);		/* left by a killed job */
	if (mkdir(r->unpacked, 0700) == -1) {
		*cause = xasprintf("%s: %s", r->unpacked, strerror(errno));
		free(r->unpacked);
		r->unpacked = NULL;
		return -1;
	}
	if (stat(raw, &st) == -1) {
		*cause = xasprintf("%s: %s", raw, strerror(errno));
		return -1;
	}
	if (statvfs(r->unpacked, &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < (uint64_t)st.st_size) {
		*cause = xasprintf("not enough space to unpack the dump "
		    "directory: it needs %lld bytes in %s, %llu are free",
		    (long long)st.st_size, r->unpacked,
		    (unsigned long long)sv.f_bavail * sv.f_frsize);
		return -1;
	}
	argv[3] = r->unpacked;
	tar.watch_dir = r->unpacked;
	tar.total = (uint64_t)st.st_size;
	backend_log(r->ctx, "info", "unpacking the dump directory");
	if (pg_stream(r->ctx, argv, NULL, NULL, &tar, cause) == -1)
		goto done;
	if ((*cause = pg_run_failure(&tar, 0)) != NULL)
		goto done;
	r->archive = r->unpacked;
	rc = 0;
done:
	free(tar.error);
	return rc;
}

/*
 * Can this pg_restore read the archive?  pg_restore --list reads its
 * header and table of contents: an archive from a newer pg_dump fails
 * there, before anything is created.
 */
static int
pg_rs_readable(struct pg_restoring *r, char **cause)
{
	const struct target *t = r->t;
	const char *argv[] = { pg_program(t->pg_restore), "--list", "--",
	    r->archive, NULL };
	struct pg_run list = { .name = "pg_restore --list" };
	char *restore_text = NULL, dump_major[16];
	const char *dump_version, *err;
	int restore_num, dump_num, rc = -1;

	if (pg_tool_version(t, "pg_restore", pg_program(t->pg_restore),
	    &restore_num, &restore_text, cause) == -1)
		return -1;
	if (pg_stream(r->ctx, argv, NULL, NULL, &list, cause) == -1)
		goto done;
	if (list.cancelled) {
		*cause = xstrdup("cancelled");
		goto done;
	}
	if (proc_ok(list.status)) {
		rc = 0;
		goto done;
	}
	err = tail_text(&list.err, PG_STDERR_LINES);
	dump_version = json_str(r->manifest, "pg_dump_version");
	dump_num = pg_version_num(dump_version);
	if ((*cause = pg_unreadable_cause(t, err, restore_text, restore_num,
	    dump_version)) != NULL)
		goto done;
	if (dump_num != 0 && pg_major(dump_num) > pg_major(restore_num)) {
		pg_major_text(dump_num, dump_major, sizeof(dump_major));
		*cause = xasprintf("pg_restore %s cannot read this archive "
		    "(made by pg_dump %s): %s; install postgresql-client-%s "
		    "or set pg_restore = /usr/lib/postgresql/%s/bin/pg_restore "
		    "in [postgres %s]", restore_text, dump_version, err,
		    dump_major, dump_major, t->name);
	} else
		*cause = xasprintf("pg_restore %s cannot read the archive: %s",
		    restore_text, *err != '\0' ? err : "no reason given");
done:
	free(list.error);
	free(restore_text);
	return rc;
}

/*
 * CREATE DATABASE clauses that make the new database like the one the
 * backup was made of, when that one is on this server: its encoding and
 * locale, and (with owners) its owner.  "" when it is not here.
 */
static char *
pg_rs_like(struct pg_restoring *r, const char *source, int with_owner,
    char **cause)
{
	const char *params[] = { source };
	const char *sql;
	char *enc = NULL, *coll = NULL, *ctype = NULL, *owner = NULL;
	char *loc = NULL, *s = NULL;
	const char *provider;
	PGresult *res;
	int num = PQserverVersion(r->maint);

	if (num >= 170000)
		sql = "SELECT pg_encoding_to_char(encoding), datcollate, "
		    "datctype, pg_get_userbyid(datdba), datlocprovider, "
		    "datlocale FROM pg_catalog.pg_database WHERE datname = $1";
	else if (num >= 150000)
		sql = "SELECT pg_encoding_to_char(encoding), datcollate, "
		    "datctype, pg_get_userbyid(datdba), datlocprovider, "
		    "daticulocale FROM pg_catalog.pg_database "
		    "WHERE datname = $1";
	else
		sql = "SELECT pg_encoding_to_char(encoding), datcollate, "
		    "datctype, pg_get_userbyid(datdba), NULL, NULL "
		    "FROM pg_catalog.pg_database WHERE datname = $1";
	if ((res = pg_query_params(r->maint, sql, 1, params, cause)) == NULL)
		return NULL;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return xstrdup("");
	}
	if ((enc = pg_literal(r->maint, PQgetvalue(res, 0, 0), cause)) ==
	    NULL || (coll = pg_literal(r->maint, PQgetvalue(res, 0, 1),
	    cause)) == NULL || (ctype = pg_literal(r->maint,
	    PQgetvalue(res, 0, 2), cause)) == NULL || (owner = pg_ident(
	    r->maint, PQgetvalue(res, 0, 3), cause)) == NULL)
		goto done;
	if (!PQgetisnull(res, 0, 5) && (loc = pg_literal(r->maint,
	    PQgetvalue(res, 0, 5), cause)) == NULL)
		goto done;
	provider = PQgetisnull(res, 0, 4) ? "" : PQgetvalue(res, 0, 4);
	s = xasprintf(" ENCODING %s LC_COLLATE %s LC_CTYPE %s%s%s%s%s%s",
	    enc, coll, ctype,
	    strcmp(provider, "i") == 0 ? " LOCALE_PROVIDER icu" :
	    strcmp(provider, "b") == 0 ? " LOCALE_PROVIDER builtin" :
	    strcmp(provider, "c") == 0 ? " LOCALE_PROVIDER libc" : "",
	    loc == NULL ? "" : strcmp(provider, "i") == 0 ? " ICU_LOCALE " :
	    strcmp(provider, "b") == 0 ? " BUILTIN_LOCALE " : "",
	    loc == NULL || (strcmp(provider, "i") != 0 &&
	    strcmp(provider, "b") != 0) ? "" : loc,
	    with_owner ? " OWNER " : "", with_owner ? owner : "");
done:
	PQclear(res);
	free(enc);
	free(coll);
	free(ctype);
	free(owner);
	free(loc);
	return s;
}

/*
 * Words for an operator when the role lacks a privilege to give objects
 * their owners back ("" when err is about something else).
 */
static const char *
pg_rs_hint(const char *err)
{
	if (strstr(err, "must be owner") == NULL &&
	    strstr(err, "must be member") == NULL &&
	    strstr(err, "must be able to SET ROLE") == NULL &&
	    strstr(err, "permission denied") == NULL)
		return "";
	return " (to restore the backup's owners, the restoring role must be "
	    "a superuser or a member of the owning roles: set "
	    "restore_conninfo to such a role; the backup role need not be)";
}

/* Create r->into, empty, from template0. */
static int
pg_rs_create(struct pg_restoring *r, char **cause)
{
	const char *source;
	char *qname = NULL, *like = NULL, *sql = NULL;
	int rc = -1, exists;

	if ((exists = pg_db_exists(r->maint, r->into, cause)) == -1)
		return -1;
	if (exists) {
		*cause = xasprintf("database %s already exists; a restore "
		    "never writes over a database: choose another name with "
		    "--into, or drop %s first", r->into, r->into);
		return -1;
	}
	/* Like the database the backup was made of, if it is here. */
	source = r->live != NULL ? r->live : json_str(r->manifest, "database");
	if (source != NULL) {
		if ((like = pg_rs_like(r, source, !r->opts->drill,
		    cause)) == NULL)
			return -1;
	} else
		like = xstrdup("");
	if ((qname = pg_ident(r->maint, r->into, cause)) == NULL)
		goto done;
	sql = xasprintf("CREATE DATABASE %s TEMPLATE template0%s", qname,
	    like);
	backend_log(r->ctx, "info", "creating database %s", r->into);
	if (pg_command(r->maint, sql, cause) == -1) {
		const char *role = PQuser(r->maint);
		char *c;

		if (strstr(*cause, "permission denied to create") != NULL)
			c = xasprintf("cannot create database %s: %s (%s needs "
			    "CREATEDB: ALTER ROLE %s CREATEDB)", r->into,
			    *cause, role, role);
		else
			c = xasprintf("cannot create database %s: %s%s",
			    r->into, *cause, pg_rs_hint(*cause));
		free(*cause);
		*cause = c;
		goto done;
	}
	r->created = 1;
	rc = 0;
done:
	free(qname);
	free(like);
	free(sql);
	return rc;
}

/*
 * Drop r->into, which we created: its sessions (pg_restore workers that
 * have not noticed yet) are ended first.
 */
static int
pg_rs_drop(struct pg_restoring *r, char **cause)
{
	const char *params[] = { r->into };
	char *qname, *sql, *why = NULL;
	PGresult *res;
	int rc;

	if ((qname = pg_ident(r->maint, r->into, cause)) == NULL)
		return -1;
	if (PQserverVersion(r->maint) >= 130000)
		sql = xasprintf("DROP DATABASE %s WITH (FORCE)", qname);
	else {
		res = pg_query_params(r->maint, "SELECT pg_terminate_backend"
		    "(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 "
		    "AND pid <> pg_backend_pid()", 1, params, &why);
		PQclear(res);
		free(why);
		sql = xasprintf("DROP DATABASE %s", qname);
	}
	rc = pg_command(r->maint, sql, cause);
	if (rc == 0) {
		r->created = 0;
		r->dropped = 1;
		backend_log(r->ctx, "info", "dropped database %s", r->into);
	}
	free(sql);
	free(qname);
	return rc;
}

/* Progress of pg_restore: the size of the new database. */
static uint64_t
pg_rs_measure(void *arg)
{
	struct pg_restoring *r = arg;
	const char *params[] = { r->into };
	PGresult *res;
	char *why = NULL;
	long long size;

	res = pg_query_params(r->maint, "SELECT pg_database_size($1::name)",
	    1, params, &why);
	if (res != NULL && PQntuples(res) == 1 &&
	    pg_ll(PQgetvalue(res, 0, 0), &size) == 0)
		r->size = (uint64_t)size;
	PQclear(res);
	free(why);
	return r->size;
}


/* pg_restore -j N --exit-on-error into r->into. */
static int
pg_rs_pg_restore(struct pg_restoring *r, char **cause)
{
	struct pg_run run = { .name = "pg_restore", .phase = "restore" };
	const char *env[3] = { NULL, NULL, NULL };
	char *conninfo = NULL, *passdir = NULL, *passfile = NULL;
	char *passenv = NULL, *why;
	char **argv = NULL;
	double size;
	int rc = -1;

	if ((conninfo = pg_conninfo_with_db(r->t->conninfo, r->into,
	    cause)) == NULL)
		return -1;
	if (r->password != NULL) {
		if (pg_passfile_create(r->password, &passdir, &passfile,
		    cause) == -1)
			goto done;
		passenv = xasprintf("PGPASSFILE=%s", passfile);
		env[0] = passenv;
		env[1] = "PGPASSWORD=";
	}
	argv = pg_restore_argv(r->t, conninfo, r->archive, r->opts->drill);
	size = json_num(r->manifest, "database_size");
	run.total = size > 0 ? (uint64_t)size : 0;
	run.measure = pg_rs_measure;
	run.measure_arg = r;
	backend_log(r->ctx, "info", "pg_restore --jobs=%d into %s",
	    r->t->restore_jobs > 0 ? r->t->restore_jobs : 1, r->into);
	if (pg_stream(r->ctx, (const char *const *)argv, env, NULL, &run,
	    cause) == -1)
		goto done;
	if ((why = pg_run_failure(&run, 0)) != NULL) {
		if (run.cancelled)
			*cause = why;
		else {
			*cause = xasprintf("%s%s", why, pg_rs_hint(why));
			free(why);
		}
		goto done;
	}
	if (*run.err.buf != '\0')
		backend_log(r->ctx, "warning", "pg_restore: %s",
		    tail_text(&run.err, PG_STDERR_LINES));
	rc = 0;
done:
	pg_passfile_remove(&passdir, &passfile);
	free(run.error);
	free(passenv);
	free(conninfo);
	pg_argv_free(argv);
	return rc;
}

/*
 * Count the rows of every table of r->into and compare them with the
 * manifest: "compared" and "differences" in result.
 */
static int
pg_rs_compare(struct pg_restoring *r, cJSON *result, char **cause)
{
	const cJSON *want = cJSON_GetObjectItemCaseSensitive(r->manifest,
	    "tables");
	cJSON *got = NULL, *differences;
	PGconn *conn;
	int compared, differ, rc = -1;

	differences = cJSON_GetObjectItemCaseSensitive(result, "differences");
	if (!cJSON_IsObject(want)) {
		cJSON_AddItemToArray(r->notes, cJSON_CreateString("the backup "
		    "has no row counts to compare with"));
		return 0;
	}
	compared = cJSON_GetArraySize(want);
	backend_log(r->ctx, "info", "comparing the row counts of %d tables",
	    compared);
	if ((conn = pg_connect_db(r->t, r->password, r->into, cause)) == NULL)
		return -1;
	if (pg_exec(conn, "SET statement_timeout = 0", cause) == -1)
		goto done;
	if ((got = pg_count_rows(r->ctx, conn, cause)) == NULL)
		goto done;
	differ = pg_compare_counts(want, got, differences);
	backend_fact(result, "compared", cJSON_CreateNumber(compared));
	if (differ > 0) {
		*cause = xasprintf("row counts differ in %d of %d tables",
		    differ, compared);
		goto done;
	}
	rc = 0;
done:
	PQfinish(conn);
	cJSON_Delete(got);
	return rc;
}

/*
 * The target's database: the one its conninfo connects to.  Connecting
 * also proves it is there to be replaced.
 */
static int
pg_rs_live(struct pg_restoring *r, char **cause)
{
	PGconn *conn;
	char *why = NULL;

	if ((conn = pg_connect(r->t, r->password, &why)) == NULL) {
		*cause = xasprintf("--replace: %s", why);
		free(why);
		return -1;
	}
	r->live = xstrdup(PQdb(conn));
	PQfinish(conn);
	return 0;
}

/* Run a statement on the maintenance database; errors are logged. */
static int
pg_rs_try(struct pg_restoring *r, const char *sql)
{
	char *why = NULL;

	if (pg_command(r->maint, sql, &why) == 0)
		return 0;
	backend_log(r->ctx, "warning", "%s: %s", sql, why);
	free(why);
	return -1;
}

/*
 * Swap names: live -> live_before_restore_TS, into -> live.  The live
 * database takes no new connections while its sessions are ended and it
 * is renamed; if into cannot take its name, it gets it back.
 */
static int
pg_rs_swap(struct pg_restoring *r, char **cause)
{
	const char *params[] = { r->live };
	char *qlive = NULL, *qinto = NULL, *qbefore = NULL, *sql;
	char *why = NULL;
	PGresult *res;
	int rc = -1, tries, back;

	/* Two replaces in one second must not collide: take a later stamp. */
	for (int k = 0; k < 60; k++) {
		int exists;

		free(r->before);
		r->before = pg_before_name(r->live, time(NULL) + k);
		if ((exists = pg_db_exists(r->maint, r->before, cause)) == -1)
			goto done;
		if (!exists)
			break;
	}
	if ((qlive = pg_ident(r->maint, r->live, cause)) == NULL ||
	    (qinto = pg_ident(r->maint, r->into, cause)) == NULL ||
	    (qbefore = pg_ident(r->maint, r->before, cause)) == NULL)
		goto done;
	backend_log(r->ctx, "info", "replacing %s: keeping it as %s, %s "
	    "becomes %s", r->live, r->before, r->into, r->live);

	sql = xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS false", qlive);
	rc = pg_command(r->maint, sql, &why);
	free(sql);
	if (rc == -1) {
		*cause = xasprintf("cannot close %s to new connections: %s",
		    r->live, why);
		free(why);
		goto done;
	}
	rc = -1;
	for (tries = 0; ; tries++) {
		res = pg_query_params(r->maint, "SELECT pg_terminate_backend"
		    "(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 "
		    "AND pid <> pg_backend_pid()", 1, params, &why);
		PQclear(res);
		free(why);
		why = NULL;
		sql = xasprintf("ALTER DATABASE %s RENAME TO %s", qlive,
		    qbefore);
		if (pg_command(r->maint, sql, &why) == 0) {
			free(sql);
			break;
		}
		free(sql);
		if (tries + 1 >= PG_RENAME_TRIES ||
		    strstr(why, "being accessed by other users") == NULL) {
			*cause = xasprintf("cannot rename %s to %s: %s%s",
			    r->live, r->before, why, strstr(why, "other "
			    "users") != NULL ? " (sessions the restoring role "
			    "may not end: close them, or grant it "
			    "pg_signal_backend)" : "");
			free(why);
			sql = xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS "
			    "true", qlive);
			pg_rs_try(r, sql);
			free(sql);
			goto done;
		}
		free(why);
		why = NULL;
		poll(NULL, 0, 100);
	}
	sql = xasprintf("ALTER DATABASE %s RENAME TO %s", qinto, qlive);
	if (pg_command(r->maint, sql, &why) == -1) {
		free(sql);
		sql = xasprintf("ALTER DATABASE %s RENAME TO %s", qbefore,
		    qlive);
		back = pg_rs_try(r, sql) == 0;
		free(sql);
		sql = xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS true",
		    back ? qlive : qbefore);
		pg_rs_try(r, sql);
		free(sql);
		if (back)
			*cause = xasprintf("cannot rename %s to %s: %s; %s is "
			    "back under its name", r->into, r->live, why,
			    r->live);
		else
			*cause = xasprintf("cannot rename %s to %s: %s; nor "
			    "%s back to %s: the live database is now %s, "
			    "rename it by hand", r->into, r->live, why,
			    r->before, r->live, r->before);
		free(why);
		goto done;
	}
	free(sql);
	/* The old one stays open to look at; nothing is dropped. */
	sql = xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS true", qbefore);
	pg_rs_try(r, sql);
	free(sql);
	rc = 0;
done:
	free(qlive);
	free(qinto);
	free(qbefore);
	return rc;
}

static void
pg_rs_release(struct pg_restoring *r)
{
	if (r->maint != NULL)
		PQfinish(r->maint);
	if (r->unpacked != NULL) {
		pg_rmtree(r->unpacked);
		free(r->unpacked);
	}
	secret_free(r->password);
	free(r->into);
	free(r->live);
	free(r->before);
	cJSON_Delete(r->notes);
	memset(r, 0, sizeof(*r));
}

/*
 * What became of the new database after a failure: dropped when it is
 * not a whole restore (or a drill's), else kept for a look.  Added to
 * *cause.
 */
static void
pg_rs_fail_cleanup(struct pg_restoring *r, char **cause)
{
	char *why = NULL, *what, *c;

	if (!r->created)
		return;
	if (r->keep)
		what = xasprintf("the restored database %s is kept for a look "
		    "(drop it when done)", r->into);
	else if (r->maint == NULL || pg_rs_drop(r, &why) == -1) {
		what = xasprintf("could not drop the new database %s: %s",
		    r->into, why != NULL ? why : "not connected");
		free(why);
	} else if (r->opts->drill)
		return;		/* the drill's note says so */
	else
		what = xasprintf("dropped the new database %s", r->into);
	c = xasprintf("%s; %s", *cause, what);
	free(*cause);
	*cause = c;
	/* A cancelled job reports "cancelled" alone: say it here too. */
	if (pg_is_cancelled(r->ctx) && !r->opts->drill)
		json_addf(r->notes, "%s", what);
	free(what);
}

int
pg_restore_backup(struct job_ctx *ctx, const cJSON *manifest,
    const char *raw, const struct restore_opts *opts, cJSON *result,
    char **cause)
{
	struct pg_restoring r;
	struct stat st;
	const char *container;
	char *why = NULL;
	int rc = -1;

	*cause = NULL;
	memset(&r, 0, sizeof(r));
	r.ctx = ctx;
	r.t = ctx->target;
	r.manifest = manifest;
	r.opts = opts;
	r.archive = raw;
	r.notes = cJSON_CreateArray();
	backend_fact(result, "compared", cJSON_CreateNumber(0));
	backend_fact(result, "differences", cJSON_CreateArray());
	if (raw == NULL) {
		*cause = xstrdup("no dump to restore from");
		goto done;
	}

	if (opts->drill)
		r.into = pg_drill_name(r.t->name, time(NULL));
	else if (opts->into != NULL)
		r.into = xstrdup(opts->into);
	else
		r.into = restore_default_into(r.t, time(NULL));
	if (!restore_valid_dbname(r.into)) {
		*cause = xasprintf("%s is not a database name a restore may "
		    "create (a-z, 0-9 and _, not starting with a digit); "
		    "choose one with --into", r.into);
		goto done;
	}
	backend_fact(result, "into", cJSON_CreateString(r.into));

	/* Nothing on the server yet: can we read the archive at all? */
	/* A tar container comes unpacked from the job, or is unpacked here. */
	container = json_str(manifest, "container");
	if (container != NULL && strcmp(container, "tar") == 0 &&
	    (stat(raw, &st) == -1 || !S_ISDIR(st.st_mode)) &&
	    pg_rs_unpack(&r, raw, cause) == -1)
		goto done;
	if (pg_rs_cancelled(&r, cause) || pg_rs_readable(&r, cause) == -1)
		goto done;

	if (backend_password(r.t, &r.password, cause) == -1)
		goto done;
	if (opts->replace && !opts->drill && pg_rs_live(&r, cause) == -1)
		goto done;
	if (pg_rs_connect_maint(&r, cause) == -1)
		goto done;
	if (pg_rs_cancelled(&r, cause) || pg_rs_create(&r, cause) == -1)
		goto done;
	if (pg_rs_pg_restore(&r, cause) == -1)
		goto done;
	r.keep = !opts->drill;
	if (pg_rs_cancelled(&r, cause) || pg_rs_compare(&r, result,
	    cause) == -1) {
		if (pg_is_cancelled(ctx))
			r.keep = 0;
		goto done;
	}
	if (pg_rs_cancelled(&r, cause)) {
		r.keep = 0;
		goto done;
	}

	if (opts->drill) {
		if (pg_rs_drop(&r, &why) == -1) {
			*cause = xasprintf("the restore drill passed, but its "
			    "scratch database %s could not be dropped: %s",
			    r.into, why);
			free(why);
			r.created = 0;		/* no second try */
			goto done;
		}
		json_addf(r.notes, "scratch database %s dropped", r.into);
	} else if (opts->replace) {
		if (pg_rs_swap(&r, cause) == -1)
			goto done;
		r.created = 0;			/* it is the live one now */
		json_addf(r.notes, "restored into %s, then renamed to %s",
		    r.into, r.live);
		json_addf(r.notes, "kept the old database as %s", r.before);
		backend_fact(result, "into", cJSON_CreateString(r.live));
	} else
		r.created = 0;			/* it is the operator's */
	rc = 0;

done:
	if (rc == -1) {
		if (*cause == NULL)
			*cause = xstrdup("unknown error");
		pg_rs_fail_cleanup(&r, cause);
		if (opts->drill && r.dropped)
			json_addf(r.notes, "scratch database %s dropped",
			    r.into);
	}
	backend_fact(result, "notes", r.notes);
	r.notes = NULL;
	pg_rs_release(&r);
	return rc;
}
