/*
 * pg.h - the PostgreSQL backend (backend_postgres, see backend.h) and the
 * small pure helpers it is made of, exported for the unit tests.
 */
#ifndef BB_PG_H
#define BB_PG_H

#include <stddef.h>

struct target;

/*
 * Parse the output of `pg_dump --version` ("pg_dump (PostgreSQL) 15.18",
 * "... 15.20 (Debian 15.20-0+deb12u1)", "... 9.6.24", "... 17devel",
 * "... 16beta2") into a number in the style of server_version_num:
 * 150018, 90624, 170000.  0, or -1 if it is not a version line.
 */
int pg_parse_version(const char *text, int *num);

/*
 * The major version of a version number, comparable between releases:
 * 1500 for 15.x, 906 for 9.6.x.
 */
int pg_major(int num);
/* The major version as an operator writes it: "15", "9.6". */
void pg_major_text(int num, char *buf, size_t size);

/*
 * The one line of a password file that gives password for any host,
 * port, database and user: "*:*:*:*:PASSWORD\n", with ':' and '\'
 * escaped by '\' as libpq expects.  NULL if the password is empty or
 * holds a line break: such a file cannot carry it.  The caller wipes and
 * frees the result.
 */
char *pg_passfile_line(const char *password);

/*
 * The argv of pg_dump for target t: the snapshot to use, and outdir for
 * the directory format (NULL: custom format to stdout).  Never holds a
 * password.  Free with pg_argv_free.
 */
char **pg_dump_argv(const struct target *t, const char *snapshot,
    const char *outdir);
void pg_argv_free(char **argv);

#endif
