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
 * what they would overwrite before tar writes anything (files_restore.c).
 * GNU tar exits 1 when a file changed while it was read: the archive is
 * usable, so that is a warning; 2 is a failure.
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
#include "files_parts.h"

#define FILES_GIT_OUT_MAX	(1024 * 1024)
#define FILES_WALK_MAX		1000000	/* entries counted for an estimate */

static const char *const files_git_env[] = { "GIT_CONFIG_NOSYSTEM=1",
    "GIT_OPTIONAL_LOCKS=0", "GIT_TERMINAL_PROMPT=0", "LC_ALL=C", NULL };
const char *const files_tar_env[] = { "LC_ALL=C", NULL };

/* ---- small helpers -------------------------------------------------- */

int
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
char *
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

const struct backend backend_files = {
	.kind = "files",
	.suffix = ".tar",
	.prepare = files_prepare,
	.backup = files_backup,
	.check_reader = files_check_reader,
	.probe = files_probe,
	.restore = files_restore,
};
