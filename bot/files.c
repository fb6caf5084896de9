/*
 * files.c - the files backend: configuration files (/etc/mastodon,
 * /etc/nginx, .env.production) as one tar stream, and a check that the
 * git repositories they live in have nothing uncommitted or unpushed.
 *
 * What is missing is said, never skipped in silence: a configured path
 * that does not exist is listed in the manifest ("missing") and in its
 * "warnings", which the operator reads in the summary; only when no
 * path exists at all is there nothing worth calling a backup.  git is
 * the same: a repository with changes, unpushed commits, no upstream or
 * that is no repository at all is a warning, the tar is still good.
 *
 * tar runs as `tar --create -C / REL...` with the paths as given (made
 * relative to /), so a restore is `tar -x -C /` (or into any directory
 * to look first): `backupbot restore` checks the archive's names and
 * what they would overwrite before tar writes anything (files_restore).  GNU tar exits 1 when a file changed while it was
 * read: the archive is usable, so that is a warning; 2 is a failure.
 * tar and git run with an argv array; tar in its own process group, so
 * a cancel stops it.
 *
 * git runs with GIT_CONFIG_NOSYSTEM=1 and -c safe.directory=*: the bot
 * may run as another user than the repository's owner, and must not
 * pick up a system config.  GIT_OPTIONAL_LOCKS=0 keeps `git status`
 * from rewriting the index, which would leave root-owned files in the
 * repository.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"
#include "proc.h"
#include "util.h"

#define FILES_POLL_MS		200	/* how soon a cancel is noticed */
#define FILES_PROGRESS_MS	500
#define FILES_TERM_GRACE_MS	10000	/* after SIGTERM, then SIGKILL */
#define FILES_STDERR_LINES	5
#define FILES_GIT_OUT_MAX	(1024 * 1024)
#define FILES_WALK_MAX		1000000	/* entries counted for an estimate */

static const char *const files_git_env[] = { "GIT_CONFIG_NOSYSTEM=1",
    "GIT_OPTIONAL_LOCKS=0", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C", NULL };
static const char *const files_tar_env[] = { "LC_ALL=C", NULL };

/* ---- small helpers -------------------------------------------------- */

static int
files_is_cancelled(struct job_ctx *ctx)
{
	return ctx->cancelled != NULL && *ctx->cancelled;
}

/* The manifest's "warnings" array, created when missing. */
static cJSON *
files_warnings(cJSON *m)
{
	cJSON *w = cJSON_GetObjectItemCaseSensitive(m, "warnings");

	if (!cJSON_IsArray(w)) {
		w = cJSON_CreateArray();
		backend_fact(m, "warnings", w);
	}
	return w;
}

/* A tool's stderr lines on one line, " | " between them.  Caller frees. */
static char *
files_err_text(struct tail *err, int lines)
{
	const char *text = tail_text(err, lines);
	struct buf b;

	buf_init(&b, 2 * sizeof(err->buf));
	buf_adds(&b, "");
	for (const char *c = text; *c != '\0'; c++) {
		if (*c == '\n')
			buf_adds(&b, " | ");
		else if ((unsigned char)*c < 0x20 || *c == 0x7f)
			buf_adds(&b, "?");
		else
			buf_add(&b, c, 1);
	}
	return buf_detach(&b, NULL);
}

/* "etc/nginx" for "/etc/nginx"; "." for "/". */
static const char *
files_rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path != '\0' ? path : ".";
}

/* ---- paths ---------------------------------------------------------- */

/* Size and count of what tar will read; nftw has no user argument. */
static struct {
	uint64_t	bytes;
	uint64_t	files;
	uint64_t	entries;
	volatile sig_atomic_t *cancelled;
} files_walk;

static int
files_walk_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (++files_walk.entries > FILES_WALK_MAX ||
	    (files_walk.cancelled != NULL && *files_walk.cancelled))
		return 1;
	if (flag == FTW_F && S_ISREG(st->st_mode)) {
		files_walk.files++;
		/* sparse files: tar --sparse stores the data only */
		files_walk.bytes += (uint64_t)st->st_blocks * 512 <
		    (uint64_t)st->st_size ? (uint64_t)st->st_blocks * 512 :
		    (uint64_t)st->st_size;
	}
	return 0;
}

/* 1 if path is dir or inside it (string-wise, trailing slashes aside). */
static int
files_inside(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len == 1 && dir[0] == '/')
		return 1;
	return strncmp(path, dir, len) == 0 &&
	    (path[len] == '\0' || path[len] == '/');
}

/* 1 if paths[i] is inside another path, or a repeat of an earlier one. */
static int
files_covered(const struct target *t, size_t i)
{
	struct stat st;

	for (size_t k = 0; k < t->paths.n; k++) {
		const char *o = t->paths.v[k];

		/* tar does not descend into a symbolic link */
		if (k == i || *o != '/' || lstat(o, &st) == -1 ||
		    S_ISLNK(st.st_mode) || !files_inside(t->paths.v[i], o))
			continue;
		if (!files_inside(o, t->paths.v[i]) || k < i)
			return 1;
	}
	return 0;
}

/*
 * Which paths exist.  Missing ones go to missing[] with a warning each;
 * a symbolic link is kept (tar stores the link) with a warning that what
 * it points to is not in the backup.  -1 when none exists.
 */
static int
files_check_paths(const struct target *t, cJSON *paths, cJSON *missing,
    cJSON *warnings, char **cause)
{
	struct stat st;
	char link[PATH_MAX];
	struct buf why;
	ssize_t n;

	buf_init(&why, 8192);
	buf_adds(&why, "");
	for (size_t i = 0; i < t->paths.n; i++) {
		const char *p = t->paths.v[i];
		const char *reason = NULL;

		if (*p != '/')
			reason = "not an absolute path";
		else if (lstat(p, &st) == -1)
			reason = strerror(errno);
		else if (!S_ISLNK(st.st_mode) && access(p, R_OK) == -1)
			reason = strerror(errno);
		else if (files_covered(t, i))
			continue;	/* in another path: tar it once */
		if (reason != NULL) {
			cJSON_AddItemToArray(missing, cJSON_CreateString(p));
			json_addf(warnings, "path %s is not in this backup: %s",
			    p, reason);
			buf_addf(&why, "%s%s (%s)", why.len > 0 ? ", " : "", p,
			    reason);
			continue;
		}
		if (S_ISLNK(st.st_mode)) {
			n = readlink(p, link, sizeof(link) - 1);
			link[n > 0 ? n : 0] = '\0';
			json_addf(warnings, "path %s is a symbolic link to %s: "
			    "only the link is in this backup, not what it "
			    "points to", p, link);
		}
		cJSON_AddItemToArray(paths, cJSON_CreateString(p));
	}
	if (cJSON_GetArraySize(paths) == 0) {
		*cause = xasprintf("none of the paths can be backed up: %s",
		    why.data);
		buf_release(&why);
		return -1;
	}
	buf_release(&why);
	return 0;
}

/* ---- git ------------------------------------------------------------ */

static int
files_git(const char *repo, const char *const *args, char **out,
    struct tail *err, int *status, char **cause)
{
	const char *argv[16];
	size_t n = 0;

	argv[n++] = "git";
	argv[n++] = "-c";
	argv[n++] = "safe.directory=*";
	argv[n++] = "-C";
	argv[n++] = repo;
	for (; *args != NULL && n < nitems(argv) - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	memset(err, 0, sizeof(*err));
	return proc_run(argv, files_git_env, out, FILES_GIT_OUT_MAX, err,
	    status, cause);
}

/* git's first error line, without "fatal: ".  Caller frees. */
static char *
files_git_error(struct tail *err, int status)
{
	const char *text = tail_text(err, 4);
	size_t len;

	if (str_startswith(text, "fatal: "))
		text += 7;
	else if (str_startswith(text, "error: "))
		text += 7;
	len = strcspn(text, "\n");
	if (len == 0)
		return proc_status_text(status);
	return xstrndup(text, len);
}

static const char *
files_plural(long long n)
{
	return n == 1 ? "" : "s";
}

/*
 * Check one repository: `git status --porcelain=v2 --branch` gives the
 * changes, the branch, its upstream and how far ahead of it HEAD is
 * (what `git rev-list --count @{u}..HEAD` says, without a fetch: what
 * the repository knows of its upstream).  Adds the facts to git and at
 * most one warning.
 */
static void
files_git_check(const char *repo, cJSON *git, cJSON *warnings)
{
	static const char *const status_args[] = { "status",
	    "--porcelain=v2", "--branch", NULL };
	static const char *const log_args[] = { "log", "-1",
	    "--format=%ct", NULL };
	cJSON *r = cJSON_CreateObject();
	char *out = NULL, *why = NULL, *line, *next, *head = NULL;
	char *branch = NULL, *upstream = NULL, *last = NULL;
	const char *sep;
	size_t base;
	long long changes = 0, untracked = 0, ahead = -1, behind = 0, when;
	struct tail err;
	struct buf msg;
	int status;

	cJSON_AddItemToObject(git, repo, r);
	if (files_git(repo, status_args, &out, &err, &status, &why) == -1) {
		cJSON_AddStringToObject(r, "error", why);
		json_addf(warnings, "git repo %s cannot be checked: %s "
		    "(install git)", repo, why);
		free(why);
		return;
	}
	if (!proc_ok(status)) {
		why = files_git_error(&err, status);
		cJSON_AddStringToObject(r, "error", why);
		json_addf(warnings, "git repo %s cannot be checked: %s", repo,
		    why);
		free(why);
		free(out);
		return;
	}
	for (line = out; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (str_startswith(line, "# branch.oid "))
			head = line + 13;
		else if (str_startswith(line, "# branch.head "))
			branch = line + 14;
		else if (str_startswith(line, "# branch.upstream "))
			upstream = line + 18;
		else if (str_startswith(line, "# branch.ab ")) {
			if (sscanf(line + 12, "+%lld -%lld", &ahead,
			    &behind) != 2)
				ahead = -1;
		} else if (str_startswith(line, "? "))
			untracked++;
		else if (*line != '#' && *line != '!')
			changes++;
	}
	if (head != NULL && strcmp(head, "(initial)") == 0)
		head = NULL;
	if (branch != NULL && strcmp(branch, "(detached)") == 0)
		branch = NULL;

	/* clean: nothing uncommitted; pushed: nothing HEAD lacks upstream */
	cJSON_AddBoolToObject(r, "clean", changes + untracked == 0);
	cJSON_AddBoolToObject(r, "pushed", head != NULL && ahead == 0);
	cJSON_AddNumberToObject(r, "changes", (double)(changes + untracked));
	cJSON_AddNumberToObject(r, "untracked", (double)untracked);
	if (ahead >= 0) {
		cJSON_AddNumberToObject(r, "unpushed", (double)ahead);
		cJSON_AddNumberToObject(r, "behind", (double)behind);
	} else
		cJSON_AddNullToObject(r, "unpushed");
	if (branch != NULL)
		cJSON_AddStringToObject(r, "branch", branch);
	else
		cJSON_AddNullToObject(r, "branch");
	if (upstream != NULL)
		cJSON_AddStringToObject(r, "upstream", upstream);
	else
		cJSON_AddNullToObject(r, "upstream");
	if (head != NULL)
		cJSON_AddStringToObject(r, "head", head);
	else
		cJSON_AddNullToObject(r, "head");
	if (head != NULL && files_git(repo, log_args, &last, &err, &status,
	    &why) == 0) {
		if (proc_ok(status) && str_to_ll(str_trim(last), 0, INT64_MAX,
		    &when) == 0)
			cJSON_AddNumberToObject(r, "committed_at",
			    (double)when);
		free(last);
	}
	free(why);

	/* One warning, as the operator would say it. */
	buf_init(&msg, 4096);
	buf_addf(&msg, "git repo %s", repo);
	base = msg.len;
	if (changes + untracked > 0 || ahead > 0) {
		buf_adds(&msg, " has ");
		if (changes + untracked > 0)
			buf_addf(&msg, "%lld uncommitted change%s", changes +
			    untracked, files_plural(changes + untracked));
		if (untracked > 0)
			buf_addf(&msg, " (%lld untracked file%s)", untracked,
			    files_plural(untracked));
		if (changes + untracked > 0 && ahead > 0)
			buf_adds(&msg, " and ");
		if (ahead > 0)
			buf_addf(&msg, "%lld unpushed commit%s", ahead,
			    files_plural(ahead));
	}
	sep = msg.len > base ? "; " : ": ";
	if (head == NULL)
		buf_addf(&msg, "%sit has no commits yet", sep);
	else if (branch == NULL)
		buf_addf(&msg, "%sits HEAD is detached, so nothing is pushed",
		    sep);
	else if (upstream == NULL)
		buf_addf(&msg, "%sbranch %s has no upstream, so its commits "
		    "are not pushed anywhere", sep, branch);
	else if (ahead < 0)
		buf_addf(&msg, "%sthe upstream %s of branch %s is gone", sep,
		    upstream, branch);
	if (msg.len > base)
		cJSON_AddItemToArray(warnings, cJSON_CreateString(msg.data));
	buf_release(&msg);
	free(out);
}

/* ---- running tar ---------------------------------------------------- */

/* A tar run and what became of it. */
struct files_run {
	uint64_t	 total;		/* progress estimate */
	uint64_t	 bytes;		/* read from its stdout */
	struct tail	 err;
	int		 status;
	int		 cancelled;
	char		*error;		/* why we stopped it */
};

/* What files_stream's pump works with. */
struct files_pump {
	struct job_ctx		*ctx;
	struct pipe_out		*out;
	struct files_run	*r;
};

static int
files_pump_out(void *arg, const unsigned char *data, size_t n)
{
	struct files_pump *a = arg;

	a->r->bytes += n;
	return pipe_out_write(a->out, data, n, &a->r->error);
}

static int
files_pump_stop(void *arg)
{
	struct files_pump *a = arg;

	if (files_is_cancelled(a->ctx))
		a->r->cancelled = 1;
	return a->r->cancelled;
}

static void
files_pump_tick(void *arg)
{
	struct files_pump *a = arg;

	backend_progress(a->ctx, "archive", a->r->bytes, a->r->total);
}

/*
 * Run tar, streaming its stdout into out in blocks of up to PIPE_BLOCK.
 * On cancel or a write error it is stopped with SIGTERM.  0 when it could
 * be started (then see r), -1 with *cause.
 */
static int
files_stream(struct job_ctx *ctx, const char *const *argv,
    struct pipe_out *out, struct files_run *r, char **cause)
{
	struct files_pump a = { ctx, out, r };
	struct pump pm = { files_pump_out, files_pump_stop, files_pump_tick,
	    &a, FILES_PROGRESS_MS, FILES_POLL_MS, &r->err, NULL, NULL };
	struct proc p;
	char *why = NULL;
	int stop;

	if (proc_spawn(&p, argv, files_tar_env, PROC_STDOUT | PROC_STDERR |
	    PROC_NEWGROUP, cause) == -1)
		return -1;
	backend_progress(ctx, "archive", 0, r->total);
	stop = proc_pump(&p, &pm, &why) != 0;
	if (why != NULL) {
		free(r->error);
		r->error = why;
	}
	if (stop) {
		kill(-p.pid, SIGTERM);
		proc_reap(&p, FILES_TERM_GRACE_MS, &r->status);
		return 0;
	}
	if (proc_wait(&p, &r->status) == -1) {
		*cause = xasprintf("waiting for tar: %s", strerror(errno));
		return -1;
	}
	backend_progress(ctx, "archive", r->bytes, r->total);
	return 0;
}

/* ---- the backend ---------------------------------------------------- */

static int
files_prepare(struct job_ctx *ctx, cJSON *manifest, char **cause)
{
	const struct target *t = ctx->target;
	cJSON *paths = cJSON_CreateArray(), *missing = cJSON_CreateArray();
	cJSON *warnings = files_warnings(manifest), *git, *it;

	*cause = NULL;
	if (files_check_paths(t, paths, missing, warnings, cause) == -1) {
		cJSON_Delete(paths);
		cJSON_Delete(missing);
		return -1;
	}
	backend_fact(manifest, "paths", paths);
	backend_fact(manifest, "missing", missing);

	memset(&files_walk, 0, sizeof(files_walk));
	files_walk.cancelled = ctx->cancelled;
	cJSON_ArrayForEach(it, paths)
		if (nftw(it->valuestring, files_walk_one, 32, FTW_PHYS) != 0)
			break;
	if (files_is_cancelled(ctx)) {
		*cause = xstrdup("cancelled");
		return -1;
	}
	if (files_walk.entries <= FILES_WALK_MAX) {
		backend_fact(manifest, "files", cJSON_CreateNumber(
		    (double)files_walk.files));
		backend_fact(manifest, "size", cJSON_CreateNumber(
		    (double)files_walk.bytes));
	}

	git = cJSON_CreateObject();
	for (size_t i = 0; i < t->git_repos.n && !files_is_cancelled(ctx);
	    i++)
		files_git_check(t->git_repos.v[i], git, warnings);
	backend_fact(manifest, "git", git);
	backend_fact(manifest, "format", cJSON_CreateString("tar"));
	backend_fact(manifest, "compression", cJSON_CreateString(
	    t->compression));
	if (files_is_cancelled(ctx)) {
		*cause = xstrdup("cancelled");
		return -1;
	}
	return 0;
}

static int
files_backup(struct job_ctx *ctx, struct pipe_out *out, cJSON *manifest,
    char **cause)
{
	const cJSON *paths = cJSON_GetObjectItemCaseSensitive(manifest,
	    "paths"), *it;
	struct files_run r;
	const char **argv;
	char *st, *err;
	size_t n = 0;
	int code;

	*cause = NULL;
	if (!cJSON_IsArray(paths) || cJSON_GetArraySize(paths) == 0) {
		*cause = xstrdup("no paths to back up");
		return -1;
	}
	argv = xcalloc((size_t)cJSON_GetArraySize(paths) + 12, sizeof(*argv));
	argv[n++] = "tar";
	argv[n++] = "--create";
	argv[n++] = "--file=-";
	argv[n++] = "--numeric-owner";
	argv[n++] = "--sparse";
	argv[n++] = "-C";
	argv[n++] = "/";
	argv[n++] = "--";
	cJSON_ArrayForEach(it, paths)
		if (cJSON_IsString(it))
			argv[n++] = files_rel(it->valuestring);
	argv[n] = NULL;

	memset(&r, 0, sizeof(r));
	r.total = json_u64(manifest, "size");
	if (files_stream(ctx, argv, out, &r, cause) == -1) {
		free(argv);
		return -1;
	}
	free(argv);
	if (r.cancelled) {
		free(r.error);
		*cause = xstrdup("cancelled");
		return -1;
	}
	if (r.error != NULL) {
		*cause = r.error;
		return -1;
	}
	err = files_err_text(&r.err, FILES_STDERR_LINES);
	code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
	if (code == 1)
		json_addf(files_warnings(manifest), "tar: some files changed "
		    "while they were read; they may be inconsistent in this "
		    "backup%s%s", *err != '\0' ? ": " : "", err);
	else if (code != 0) {
		st = proc_status_text(r.status);
		*cause = xasprintf("tar %s%s%s%s", WIFSIGNALED(r.status) ?
		    "was " : "", st, *err != '\0' ? ": " : "", err);
		free(st);
		free(err);
		return -1;
	} else if (*err != '\0')
		/* "socket ignored" and the like: worth reading */
		json_addf(files_warnings(manifest), "tar: %s", err);
	if (r.bytes == 0) {
		*cause = xasprintf("tar produced no output%s%s",
		    *err != '\0' ? ": " : "", err);
		free(err);
		return -1;
	}
	free(err);
	return 0;
}

/* tar reads the whole archive: a truncated or damaged one fails. */
static int
files_check_reader(struct job_ctx *ctx, const cJSON *manifest,
    struct proc *p, char **cause)
{
	static const char *const argv[] = { "tar", "--list", "--file=-",
	    NULL };

	(void)ctx;
	(void)manifest;
	*cause = NULL;
	return proc_spawn(p, argv, files_tar_env, PROC_STDIN |
	    PROC_STDOUT_NULL | PROC_STDERR, cause);
}

/* Every path there and readable; the git repositories' state. */
static int
files_probe(struct job_ctx *ctx, cJSON *out, char **cause)
{
	const struct target *t = ctx->target;
	cJSON *paths = cJSON_CreateObject(), *git, *warnings;
	struct buf bad;
	struct stat st;

	*cause = NULL;
	buf_init(&bad, 8192);
	buf_adds(&bad, "");
	for (size_t i = 0; i < t->paths.n; i++) {
		const char *p = t->paths.v[i];
		const char *why = NULL;

		if (*p != '/')
			why = "not an absolute path";
		else if (lstat(p, &st) == -1 || (!S_ISLNK(st.st_mode) &&
		    access(p, R_OK) == -1))
			why = strerror(errno);
		cJSON_AddStringToObject(paths, p, why != NULL ? why : "ok");
		if (why != NULL)
			buf_addf(&bad, "%s%s (%s)", bad.len > 0 ? ", " : "", p,
			    why);
	}
	backend_fact(out, "paths", paths);
	git = cJSON_CreateObject();
	warnings = cJSON_CreateArray();
	for (size_t i = 0; i < t->git_repos.n; i++)
		files_git_check(t->git_repos.v[i], git, warnings);
	backend_fact(out, "git", git);
	backend_fact(out, "warnings", warnings);
	if (bad.len > 0) {
		*cause = xasprintf("cannot read %s", bad.data);
		buf_release(&bad);
		return -1;
	}
	buf_release(&bad);
	return 0;
}

/* ---- restore: reading the archive ------------------------------------- */

/*
 * A restore reads the archive's headers itself before tar writes
 * anything: every member's name must be safe (relative, no ".."), and
 * without --replace none may land on an existing file.  Then GNU tar
 * extracts it, fed on its stdin (progress, cancel), and every member is
 * looked at on disk afterwards.  The reader knows what `tar --create`
 * writes (GNU format: long names, old GNU sparse files) and POSIX pax
 * headers; anything else is refused rather than guessed at.
 */

#define FILES_TAR_BLOCK		512
#define FILES_NAME_MAX		(64 * 1024)	/* a long name we read */
#define FILES_CONFLICTS_SHOWN	5
#define FILES_DIFFS_MAX		20

struct files_member {
	char		*name;		/* as archived, no trailing '/' */
	char		*link;		/* a hard link's target */
	char		 type;		/* '0' file, '1', '2', '5', ... */
	uint64_t	 size;		/* a regular file's size */
};

struct files_list {
	struct files_member	*v;
	size_t			 n;
	uint64_t		 files;		/* regular, hard links too */
	uint64_t		 bytes;		/* of those */
	uint64_t		 dirs;
	uint64_t		 links;		/* symbolic */
	uint64_t		 other;
};

static void
files_list_free(struct files_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].link);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* An octal or base-256 number field. */
static int
files_tar_number(const unsigned char *p, size_t n, uint64_t *v)
{
	size_t i = 0;

	*v = 0;
	if (p[0] & 0x80) {
		if (p[0] != 0x80)
			return -1;	/* negative, or too large */
		for (i = 1; i < n; i++) {
			if (*v >> 56)
				return -1;
			*v = *v << 8 | p[i];
		}
		return 0;
	}
	while (i < n && p[i] == ' ')
		i++;
	for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
		if (*v >> 61)
			return -1;
		*v = *v << 3 | (uint64_t)(p[i] - '0');
	}
	return i == n || p[i] == ' ' || p[i] == '\0' ? 0 : -1;
}

/* A string field of at most n bytes. */
static char *
files_tar_field(const unsigned char *p, size_t n)
{
	return xstrndup((const char *)p, strnlen((const char *)p, n));
}

/* A name for messages: bounded, control characters as '?'. */
static char *
files_shown(const char *name)
{
	char *s = xstrndup(name, strnlen(name, 200));

	for (char *c = s; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return s;
}

struct files_tar {
	FILE		*f;
	uint64_t	 size;		/* of the file */
	uint64_t	 offset;
	char		*longname;	/* for the next member */
	char		*longlink;
};

static int
files_tar_read(struct files_tar *T, void *p, size_t n, char **cause)
{
	if (T->offset + n > T->size || fread(p, 1, n, T->f) != n) {
		*cause = xasprintf("the archive is truncated at byte %llu",
		    (unsigned long long)T->offset);
		return -1;
	}
	T->offset += n;
	return 0;
}

/* Skip a member's data: n bytes, in whole blocks. */
static int
files_tar_skip(struct files_tar *T, uint64_t n, char **cause)
{
	uint64_t len = (n + FILES_TAR_BLOCK - 1) / FILES_TAR_BLOCK *
	    FILES_TAR_BLOCK;

	if (T->offset + len > T->size || fseeko(T->f, (off_t)len,
	    SEEK_CUR) == -1) {
		*cause = xasprintf("the archive is truncated at byte %llu",
		    (unsigned long long)T->offset);
		return -1;
	}
	T->offset += len;
	return 0;
}

/* The data of a long-name or pax header, NUL-terminated. */
static char *
files_tar_data(struct files_tar *T, uint64_t n, char **cause)
{
	uint64_t len = (n + FILES_TAR_BLOCK - 1) / FILES_TAR_BLOCK *
	    FILES_TAR_BLOCK;
	char *data;

	if (n > FILES_NAME_MAX) {
		*cause = xasprintf("a header of %llu bytes at byte %llu is too "
		    "long to be a name", (unsigned long long)n,
		    (unsigned long long)T->offset);
		return NULL;
	}
	data = xmalloc(len + 1);
	if (files_tar_read(T, data, len, cause) == -1) {
		free(data);
		return NULL;
	}
	data[n] = '\0';
	return data;
}

/* Take path, linkpath and size from pax records "LEN key=value\n". */
static int
files_tar_pax(const char *data, size_t n, char **path, char **link,
    uint64_t *size, int *has_size)
{
	const char *p = data, *end = data + n, *eq, *val;
	unsigned long long len;
	char *num;

	while (p < end && *p != '\0') {
		if (sscanf(p, "%llu", &len) != 1 || len < 5 ||
		    len > (unsigned long long)(end - p) || p[len - 1] != '\n')
			return -1;
		val = memchr(p, ' ', len);
		eq = val != NULL ? memchr(val, '=', (size_t)(p + len - val)) :
		    NULL;
		if (val == NULL || eq == NULL)
			return -1;
		val++;
#define PAX_KEY(k) ((size_t)(eq - val) == strlen(k) && \
		    memcmp(val, k, strlen(k)) == 0)
		if (PAX_KEY("path") || PAX_KEY("GNU.sparse.name")) {
			free(*path);
			*path = xstrndup(eq + 1, (size_t)(p + len - 1 - eq - 1));
		} else if (PAX_KEY("linkpath")) {
			free(*link);
			*link = xstrndup(eq + 1, (size_t)(p + len - 1 - eq - 1));
		} else if (PAX_KEY("size") || PAX_KEY("GNU.sparse.realsize") ||
		    PAX_KEY("GNU.sparse.size")) {
			long long v;

			num = xstrndup(eq + 1, (size_t)(p + len - 1 - eq - 1));
			if (str_to_ll(num, 0, INT64_MAX, &v) == -1) {
				free(num);
				return -1;
			}
			free(num);
			if (!PAX_KEY("size") || !*has_size)
				*size = (uint64_t)v;
			*has_size = 1;
		}
#undef PAX_KEY
		p += len;
	}
	return 0;
}

/* 1 if name is one tar may write under a directory: relative, no "..". */
static int
files_safe_name(const char *name)
{
	const char *p = name;
	size_t len;

	if (*name == '\0' || *name == '/')
		return 0;
	while (*p != '\0') {
		len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += len;
		while (*p == '/')
			p++;
	}
	return 1;
}

static uint64_t
files_member_size(const struct files_list *l, const char *name)
{
	for (size_t i = l->n; i-- > 0; )
		if (l->v[i].type != '1' && strcmp(l->v[i].name, name) == 0)
			return l->v[i].size;
	return 0;
}

/*
 * Every member of the archive in path, its names checked: 0, or -1
 * with *cause.
 */
static int
files_tar_list(struct job_ctx *ctx, const char *path, struct files_list *l,
    char **cause)
{
	struct files_tar T;
	unsigned char h[FILES_TAR_BLOCK];
	char *pax_path = NULL, *pax_link = NULL, *data, *shown;
	uint64_t size, chk, pax_size = 0, sum;
	int has_pax_size = 0, rc = -1, ended = 0;
	struct stat st;

	memset(l, 0, sizeof(*l));
	memset(&T, 0, sizeof(T));
	if ((T.f = fopen(path, "rb")) == NULL) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	T.size = fstat(fileno(T.f), &st) == 0 ? (uint64_t)st.st_size : 0;
	while (!ended) {
		struct files_member m;
		size_t i;

		if (files_is_cancelled(ctx)) {
			*cause = xstrdup("cancelled");
			goto done;
		}
		if (T.offset == T.size && T.offset > 0)
			break;		/* no end blocks: tar accepts that */
		if (files_tar_read(&T, h, sizeof(h), cause) == -1)
			goto done;
		for (i = 0; i < sizeof(h) && h[i] == 0; i++)
			;
		if (i == sizeof(h)) {
			ended = 1;	/* the end: a zero block */
			break;
		}
		sum = 0;
		for (i = 0; i < sizeof(h); i++)
			sum += i >= 148 && i < 156 ? ' ' : h[i];
		if (files_tar_number(h + 148, 8, &chk) == -1 || chk != sum) {
			*cause = xasprintf("not a tar archive, or a damaged one: "
			    "bad header checksum at byte %llu",
			    (unsigned long long)T.offset - FILES_TAR_BLOCK);
			goto done;
		}
		if (files_tar_number(h + 124, 12, &size) == -1) {
			*cause = xasprintf("bad size field at byte %llu",
			    (unsigned long long)T.offset - FILES_TAR_BLOCK);
			goto done;
		}
		switch (h[156]) {
		case 'L':
		case 'K':
			if ((data = files_tar_data(&T, size, cause)) == NULL)
				goto done;
			if (h[156] == 'L') {
				free(T.longname);
				T.longname = data;
			} else {
				free(T.longlink);
				T.longlink = data;
			}
			continue;
		case 'x':
			if ((data = files_tar_data(&T, size, cause)) == NULL)
				goto done;
			if (files_tar_pax(data, size, &pax_path, &pax_link,
			    &pax_size, &has_pax_size) == -1) {
				free(data);
				*cause = xasprintf("bad pax header at byte %llu",
				    (unsigned long long)T.offset);
				goto done;
			}
			free(data);
			continue;
		case 'g':
		case 'V':
			if (files_tar_skip(&T, size, cause) == -1)
				goto done;
			continue;
		case 'M':
			*cause = xstrdup("a multi-volume archive: not one "
			    "backupbot writes");
			goto done;
		}

		memset(&m, 0, sizeof(m));
		m.type = h[156] == '\0' || h[156] == '7' ? '0' : (char)h[156];
		if (pax_path != NULL) {
			m.name = pax_path;
			pax_path = NULL;
		} else if (T.longname != NULL) {
			m.name = T.longname;
			T.longname = NULL;
		} else if (memcmp(h + 257, "ustar\0", 6) == 0 && h[345] != 0) {
			char *prefix = files_tar_field(h + 345, 155);
			char *name = files_tar_field(h, 100);

			m.name = xasprintf("%s/%s", prefix, name);
			free(prefix);
			free(name);
		} else
			m.name = files_tar_field(h, 100);
		if (m.type == '1') {
			if (pax_link != NULL) {
				m.link = pax_link;
				pax_link = NULL;
			} else if (T.longlink != NULL) {
				m.link = T.longlink;
				T.longlink = NULL;
			} else
				m.link = files_tar_field(h + 157, 100);
		}
		free(pax_link);
		free(T.longlink);
		pax_link = T.longlink = NULL;
		for (size_t len = strlen(m.name); len > 1 &&
		    m.name[len - 1] == '/'; len--)
			m.name[len - 1] = '\0';
		l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
		l->v[l->n++] = m;	/* freed with the list from here on */
		if (!files_safe_name(m.name) || (m.link != NULL &&
		    !files_safe_name(m.link))) {
			shown = files_shown(m.link != NULL &&
			    files_safe_name(m.name) ? m.link : m.name);
			*cause = xasprintf("the archive holds an unsafe name, "
			    "\"%s\" (absolute, or with \"..\"): not restoring "
			    "anything from it", shown);
			free(shown);
			goto done;
		}

		if (m.type == 'S') {
			uint64_t real;

			/* old GNU sparse: the real size, extension blocks */
			if (files_tar_number(h + 483, 12, &real) == -1) {
				*cause = xstrdup("bad sparse header");
				goto done;
			}
			l->v[l->n - 1].size = has_pax_size ? pax_size : real;
			for (int ext = h[482]; ext; ) {
				unsigned char x[FILES_TAR_BLOCK];

				if (files_tar_read(&T, x, sizeof(x),
				    cause) == -1)
					goto done;
				ext = x[504];
			}
			l->v[l->n - 1].type = '0';
		} else
			l->v[l->n - 1].size = has_pax_size && m.type == '0' ?
			    pax_size : size;
		has_pax_size = 0;
		switch (l->v[l->n - 1].type) {
		case '0':
		case 'D':
			break;
		case '1':
		case '2':
		case '3':
		case '4':
		case '5':
		case '6':
			size = 0;	/* no data follows */
			break;
		default:
			shown = files_shown(m.name);
			*cause = xasprintf("%s: a member of type '%c' is not "
			    "one backupbot writes", shown, h[156]);
			free(shown);
			goto done;
		}
		if (files_tar_skip(&T, size, cause) == -1)
			goto done;
	}
	for (size_t i = 0; i < l->n; i++) {
		struct files_member *m = &l->v[i];

		switch (m->type) {
		case '0':
			l->files++;
			l->bytes += m->size;
			break;
		case '1':
			/* nftw counted it as a file of its own */
			l->files++;
			l->bytes += files_member_size(l, m->link);
			break;
		case '2':
			l->links++;
			break;
		case '5':
		case 'D':
			l->dirs++;
			break;
		default:
			l->other++;
			break;
		}
	}
	if (l->n == 0) {
		*cause = xstrdup("the archive is empty");
		goto done;
	}
	rc = 0;
done:
	free(pax_path);
	free(pax_link);
	free(T.longname);
	free(T.longlink);
	fclose(T.f);
	if (rc == -1)
		files_list_free(l);
	return rc;
}

/* ---- restore: where the members go ------------------------------------ */

/* dest/name, without a doubled '/'. */
static char *
files_join(const char *dest, const char *name)
{
	size_t len = strlen(dest);

	while (len > 0 && dest[len - 1] == '/')
		len--;
	return xasprintf("%.*s/%s", (int)len, dest, name);
}

/*
 * What would be overwritten: a member over anything that exists but a
 * directory over a directory.  With check_links, a symbolic link on the
 * way to a member (dest/etc a link to /etc) is a conflict too: tar would
 * write through it, outside dest.  *existing counts what would be
 * replaced; the first few names go into shown.
 */
static void
files_conflicts(const char *dest, const struct files_list *l,
    int check_links, uint64_t *existing, uint64_t *through_links,
    struct buf *shown)
{
	struct stat st;
	char *path, *slash, *name;
	size_t nshown = 0;

	*existing = *through_links = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct files_member *m = &l->v[i];
		int hit = 0;

		path = files_join(dest, m->name);
		if (check_links) {
			/* every directory on the way, from dest down */
			for (slash = path + strlen(dest) + 1; (slash =
			    strchr(slash, '/')) != NULL; slash++) {
				*slash = '\0';
				if (lstat(path, &st) == 0 &&
				    S_ISLNK(st.st_mode)) {
					hit = 2;
					*slash = '/';
					break;
				}
				*slash = '/';
			}
		}
		if (!hit && lstat(path, &st) == 0 && !(S_ISDIR(st.st_mode) &&
		    (m->type == '5' || m->type == 'D')))
			hit = 1;
		if (hit == 2)
			(*through_links)++;
		else if (hit == 1)
			(*existing)++;
		if (hit && nshown++ < FILES_CONFLICTS_SHOWN) {
			name = files_shown(path);
			buf_addf(shown, "%s%s%s", shown->len > 0 ? ", " : "",
			    name, hit == 2 ? " (through a symbolic link)" : "");
			free(name);
		}
		free(path);
	}
	if (nshown > FILES_CONFLICTS_SHOWN)
		buf_addf(shown, " and %zu more", nshown -
		    FILES_CONFLICTS_SHOWN);
}

/* Does what is at dest/name look like the member? NULL, or why not. */
static char *
files_member_check(const char *dest, const struct files_list *l,
    const struct files_member *m)
{
	struct stat st;
	char *path = files_join(dest, m->name), *shown = files_shown(m->name);
	char *why = NULL;
	uint64_t want;
	int ok;

	if (lstat(path, &st) == -1) {
		why = xasprintf("%s: in the backup, not on disk after the "
		    "restore (%s)", shown, strerror(errno));
		goto done;
	}
	switch (m->type) {
	case '0':
	case '1':
		ok = S_ISREG(st.st_mode);
		break;
	case '2':
		ok = S_ISLNK(st.st_mode);
		break;
	case '5':
	case 'D':
		ok = S_ISDIR(st.st_mode);
		break;
	case '3':
		ok = S_ISCHR(st.st_mode);
		break;
	case '4':
		ok = S_ISBLK(st.st_mode);
		break;
	case '6':
		ok = S_ISFIFO(st.st_mode);
		break;
	default:
		ok = 1;
		break;
	}
	if (!ok) {
		why = xasprintf("%s: not of the type it has in the backup",
		    shown);
		goto done;
	}
	want = m->type == '1' ? files_member_size(l, m->link) : m->size;
	if ((m->type == '0' || m->type == '1') &&
	    (uint64_t)st.st_size != want)
		why = xasprintf("%s: %llu bytes in the backup, %llu on disk",
		    shown, (unsigned long long)want,
		    (unsigned long long)st.st_size);
done:
	free(path);
	free(shown);
	return why;
}

/* ---- restore: running tar --------------------------------------------- */

/*
 * Run tar with the archive at raw on its stdin, its stderr kept: the
 * bytes fed are the progress.  0 when it could be started (then see r),
 * -1 with *cause.
 */
static int
files_feed(struct job_ctx *ctx, const char *const *argv, const char *raw,
    struct files_run *r, char **cause)
{
	unsigned char *block = xmalloc(PIPE_BLOCK);
	size_t have = 0, off = 0;
	int64_t last = 0;
	struct stat st;
	struct proc p;
	ssize_t n;
	int fd, stop = 0;

	if ((fd = open(raw, O_RDONLY | O_CLOEXEC)) == -1) {
		*cause = xasprintf("%s: %s", raw, strerror(errno));
		free(block);
		return -1;
	}
	r->total = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	if (proc_spawn(&p, argv, files_tar_env, PROC_STDIN | PROC_STDOUT_NULL |
	    PROC_STDERR | PROC_NEWGROUP, cause) == -1) {
		close(fd);
		free(block);
		return -1;
	}
	fcntl(p.in_fd, F_SETFL, fcntl(p.in_fd, F_GETFL) | O_NONBLOCK);
	backend_progress(ctx, "restore", 0, r->total);
	while (p.in_fd != -1 || p.err_fd != -1) {
		struct pollfd pf[2] = { { p.in_fd, POLLOUT, 0 },
		    { p.err_fd, POLLIN, 0 } };

		if (files_is_cancelled(ctx)) {
			r->cancelled = stop = 1;
			break;
		}
		if (poll(pf, 2, FILES_POLL_MS) == -1 && errno != EINTR) {
			r->error = xasprintf("poll: %s", strerror(errno));
			stop = 1;
			break;
		}
		if (p.in_fd != -1 && (pf[0].revents & (POLLOUT | POLLERR |
		    POLLHUP))) {
			if (off == have) {
				if ((n = read(fd, block, PIPE_BLOCK)) == -1 &&
				    errno != EINTR) {
					r->error = xasprintf("reading %s: %s",
					    raw, strerror(errno));
					stop = 1;
					break;
				}
				have = n > 0 ? (size_t)n : 0;
				off = 0;
				if (n == 0) {
					close(p.in_fd);
					p.in_fd = -1;
				}
			}
			if (p.in_fd != -1 && off < have) {
				n = write(p.in_fd, block + off, have - off);
				if (n > 0) {
					off += (size_t)n;
					r->bytes += (uint64_t)n;
				} else if (n == -1 && errno != EAGAIN &&
				    errno != EINTR) {
					/* tar stopped reading: its status says */
					close(p.in_fd);
					p.in_fd = -1;
				}
			}
		}
		if (p.err_fd != -1 && (pf[1].revents & (POLLIN | POLLHUP |
		    POLLERR))) {
			char chunk[4096];

			n = read(p.err_fd, chunk, sizeof(chunk));
			if (n > 0)
				tail_add(&r->err, chunk, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(p.err_fd);
				p.err_fd = -1;
			}
		}
		if (mono_ms() - last >= FILES_PROGRESS_MS) {
			last = mono_ms();
			backend_progress(ctx, "restore", r->bytes, r->total);
		}
	}
	close(fd);
	free(block);
	if (stop) {
		kill(-p.pid, SIGTERM);
		proc_reap(&p, FILES_TERM_GRACE_MS, &r->status);
		return 0;
	}
	if (proc_wait(&p, &r->status) == -1) {
		*cause = xasprintf("waiting for tar: %s", strerror(errno));
		return -1;
	}
	backend_progress(ctx, "restore", r->bytes, r->total);
	return 0;
}

/* ---- restore: the backend --------------------------------------------- */

/*
 * Extract the archive into opts->into, into "/" (opts->replace without
 * into: where the files were), or (drill) into a scratch directory; then
 * look at every member on disk, and compare the archive with what the
 * manifest counted when the backup was prepared.
 *
 * Owners: as root, tar restores owners and modes as archived (numeric
 * ids: the backup was made with --numeric-owner); as anyone else, the
 * files are the restoring user's, with the archived modes.
 */
static int
files_restore(struct job_ctx *ctx, const cJSON *manifest, const char *raw,
    const struct restore_opts *opts, cJSON *result, char **cause)
{
	const char *argv[16], *dest;
	const char *base = getenv("TMPDIR");
	cJSON *notes = cJSON_CreateArray(), *diffs = cJSON_CreateArray();
	const cJSON *missing;
	struct files_list l;
	struct files_run r;
	struct buf shown;
	struct stat st;
	uint64_t existing = 0, through = 0, ndiffs = 0;
	char *scratch = NULL, *err, *why, *st_text;
	double want;
	int root = geteuid() == 0, rc = -1, code;
	size_t n = 0;

	*cause = NULL;
	memset(&r, 0, sizeof(r));
	memset(&l, 0, sizeof(l));
	buf_init(&shown, 64 * 1024);
	buf_adds(&shown, "");
	backend_fact(result, "notes", notes);
	backend_fact(result, "differences", diffs);
	if (raw == NULL) {
		*cause = xstrdup("no archive to restore");
		goto done;
	}
	if (files_tar_list(ctx, raw, &l, cause) == -1) {
		why = *cause;
		*cause = xasprintf("%s%s", why, opts->drill ? "" :
		    "; nothing was restored");
		free(why);
		goto done;
	}

	if (opts->drill) {
		if (base == NULL || *base != '/')
			base = "/tmp";
		scratch = xasprintf("%s/bbrestore-files.XXXXXX", base);
		if (mkdtemp(scratch) == NULL) {
			*cause = xasprintf("cannot make a scratch directory %s: "
			    "%s", scratch, strerror(errno));
			free(scratch);
			scratch = NULL;
			goto done;
		}
		dest = scratch;
		cJSON_AddStringToObject(result, "into", "a scratch directory "
		    "(removed afterwards)");
	} else {
		if (opts->into == NULL && !opts->replace) {
			*cause = xstrdup("say where the files go: --into DIR, "
			    "or --replace to put them back where they were");
			goto done;
		}
		dest = opts->into != NULL ? opts->into : "/";
		cJSON_AddStringToObject(result, "into", dest);
		if (lstat(dest, &st) == -1 && errno == ENOENT) {
			if (dir_make(dest, 0700) == -1) {
				*cause = xasprintf("cannot create %s: %s", dest,
				    strerror(errno));
				goto done;
			}
			json_addf(notes, "created %s (mode 0700)", dest);
		} else if (stat(dest, &st) == -1 || !S_ISDIR(st.st_mode)) {
			*cause = xasprintf("%s is not a directory", dest);
			goto done;
		}
		/* Nothing is written before we know nothing is in the way. */
		files_conflicts(dest, &l, strcmp(dest, "/") != 0, &existing,
		    &through, &shown);
		if (through > 0) {
			*cause = xasprintf("%llu member%s of the backup would be "
			    "written through a symbolic link, outside %s: %s; "
			    "nothing was restored (restore --into an empty "
			    "directory)", (unsigned long long)through,
			    through == 1 ? "" : "s", dest, shown.data);
			goto done;
		}
		if (existing > 0 && !opts->replace) {
			*cause = xasprintf("%llu file%s would be overwritten in "
			    "%s: %s; nothing was restored (restore --into an "
			    "empty directory, or with --replace to overwrite "
			    "them)", (unsigned long long)existing,
			    existing == 1 ? "" : "s", dest, shown.data);
			goto done;
		}
	}

	argv[n++] = "tar";
	argv[n++] = "--extract";
	argv[n++] = "--file=-";
	argv[n++] = "--numeric-owner";
	argv[n++] = "--same-permissions";
	argv[n++] = root ? "--same-owner" : "--no-same-owner";
	if (!opts->replace)
		argv[n++] = "--keep-old-files";	/* a second guard */
	argv[n++] = "-C";
	argv[n++] = dest;
	argv[n] = NULL;
	backend_log(ctx, "info", "extracting %zu member%s into %s", l.n,
	    l.n == 1 ? "" : "s", opts->drill ? "a scratch directory" : dest);
	if (files_feed(ctx, argv, raw, &r, cause) == -1)
		goto done;
	if (r.cancelled) {
		*cause = xstrdup("cancelled");
		goto done;
	}
	if (r.error != NULL) {
		*cause = r.error;
		r.error = NULL;
		goto done;
	}
	code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
	if (code != 0) {
		err = files_err_text(&r.err, FILES_STDERR_LINES);
		st_text = proc_status_text(r.status);
		*cause = xasprintf("tar %s%s%s%s%s", WIFSIGNALED(r.status) ?
		    "was " : "", st_text, *err != '\0' ? ": " : "", err,
		    opts->drill ? "" : " (some files may have been written)");
		free(st_text);
		free(err);
		goto done;
	}

	/* Every member, on disk. */
	for (size_t i = 0; i < l.n; i++) {
		if ((why = files_member_check(dest, &l, &l.v[i])) == NULL)
			continue;
		if (ndiffs++ < FILES_DIFFS_MAX)
			cJSON_AddItemToArray(diffs, cJSON_CreateString(why));
		free(why);
	}
	if (ndiffs > FILES_DIFFS_MAX)
		json_addf(notes, "and %llu more differences",
		    (unsigned long long)(ndiffs - FILES_DIFFS_MAX));
	/*
	 * The manifest counted the files when the backup was prepared,
	 * just before tar read them (sizes as the disk holds them: a sparse
	 * file counts what it stores).  A different count, or fewer bytes
	 * than it counted, means files went missing on the way.
	 */
	if (json_get_num(manifest, "files", &want) == 0 && (want < 0 ||
	    (uint64_t)want != l.files)) {
		why = xasprintf("%.0f files when the backup was prepared, %llu "
		    "in the archive", want, (unsigned long long)l.files);
		cJSON_AddItemToArray(diffs, cJSON_CreateString(why));
		free(why);
	}
	if (json_get_num(manifest, "size", &want) == 0 && want > 0 &&
	    (uint64_t)want > l.bytes) {
		why = xasprintf("%.0f bytes of files when the backup was "
		    "prepared, %llu in the archive", want,
		    (unsigned long long)l.bytes);
		cJSON_AddItemToArray(diffs, cJSON_CreateString(why));
		free(why);
	}
	cJSON_AddNumberToObject(result, "compared", (double)l.n);
	cJSON_AddNumberToObject(result, "files", (double)l.files);
	cJSON_AddNumberToObject(result, "bytes", (double)l.bytes);

	json_addf(notes, "%llu file%s (%llu bytes), %llu director%s, %llu "
	    "symbolic link%s%s", (unsigned long long)l.files,
	    l.files == 1 ? "" : "s", (unsigned long long)l.bytes,
	    (unsigned long long)l.dirs, l.dirs == 1 ? "y" : "ies",
	    (unsigned long long)l.links, l.links == 1 ? "" : "s",
	    opts->drill ? " extracted and compared" : " restored");
	if (!opts->drill) {
		if (existing > 0)
			json_addf(notes, "--replace: %llu existing file%s "
			    "overwritten", (unsigned long long)existing,
			    existing == 1 ? " was" : "s were");
		json_addf(notes, root ? "owners and modes as in the backup" :
		    "modes as in the backup; owned by the restoring user (only "
		    "root can restore owners)");
		if (opts->into != NULL)
			json_addf(notes, "the paths are as backed up, under "
			    "%s (/etc/nginx is %s/etc/nginx)", dest, dest);
	}
	missing = cJSON_GetObjectItemCaseSensitive(manifest, "missing");
	if (cJSON_GetArraySize(missing) > 0) {
		const cJSON *it;

		buf_reset(&shown);
		buf_adds(&shown, "");
		cJSON_ArrayForEach(it, missing)
			if (cJSON_IsString(it))
				buf_addf(&shown, "%s%s", shown.len > 0 ? ", " :
				    "", it->valuestring);
		json_addf(notes, "not in this backup (missing when it was "
		    "made): %s", shown.data);
	}
	if (cJSON_GetArraySize(diffs) > 0) {
		int nd = cJSON_GetArraySize(diffs);

		*cause = xasprintf("%d difference%s: %s%s", nd, nd == 1 ? "" :
		    "s", cJSON_GetArrayItem(diffs, 0)->valuestring, nd > 1 ?
		    " ..." : "");
		goto done;
	}
	rc = 0;
done:
	if (scratch != NULL) {
		dir_remove_tree(scratch);
		free(scratch);
	}
	free(r.error);
	buf_release(&shown);
	files_list_free(&l);
	return rc;
}

const struct backend backend_files = {
	.kind = "files",
	.suffix = ".tar",
	.prepare = files_prepare,
	.backup = files_backup,
	.check_reader = files_check_reader,
	.probe = files_probe,
	.restore = files_restore,
};
