/*
 * remote.c - copies of backups on rclone remotes (see remote.h).
 *
 * Every operation is one or more `rclone SUBCOMMAND ...` runs with an argv
 * array.  Each run has bounded retries and timeouts, so a dead remote fails
 * a job in seconds (or minutes on a stalled transfer), never hangs it; the
 * supervisor's job_timeout caps the rest.  rclone finds its config file
 * through RCLONE_CONFIG, so credentials never appear in argv.
 *
 * A copy counts only once it has been read back: its size must equal the
 * local file's, and where the remote reports an MD5 or SHA-1 the hash
 * must match too.  Remotes with neither (plain WebDAV, SFTP without shell
 * access) are checked by size only.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "log.h"
#include "proc.h"
#include "remote.h"
#include "util.h"

#define REMOTE_ARGS_MAX		16
#define REMOTE_ERR_LINES	3	/* of rclone's stderr, in a cause */
#define REMOTE_STAT_MAX		(1024 * 1024)
#define REMOTE_LIST_MAX		(64 * 1024 * 1024)
#define REMOTE_HASH_MAX		(64 * 1024)
#define REMOTE_RETRY_DELAY	2	/* seconds before put's one retry */

/* rclone's exit codes (docs: "Exit Code"). */
#define RCLONE_DIR_NOT_FOUND	3
#define RCLONE_FILE_NOT_FOUND	4

/* What one rclone run left behind. */
struct remote_run {
	struct tail	 err;
	int		 status;
	char		*out;		/* stdout when asked for, else NULL */
	char		*what;		/* "copyto db/x.dump", for causes */
};

static void
remote_run_release(struct remote_run *run)
{
	free(run->out);
	free(run->what);
	run->out = NULL;
	run->what = NULL;
}

const char *
remote_exit_text(int code)
{
	switch (code) {
	case 0:
		return "success";
	case 1:
		return "usage or uncategorised error";
	case 2:
		return "error not otherwise categorised";
	case 3:
		return "directory not found";
	case 4:
		return "file not found";
	case 5:
		return "temporary error; a retry may fix it";
	case 6:
		return "less serious error";
	case 7:
		return "fatal error, e.g. quota or authentication; a retry "
		    "will not fix it";
	case 8:
		return "transfer limit exceeded";
	case 9:
		return "no files transferred";
	default:
		return "unknown exit code";
	}
}

/* rclone's exit code, or -1 when it did not exit normally. */
static int
remote_exit_code(const struct remote_run *run)
{
	return WIFEXITED(run->status) ? WEXITSTATUS(run->status) : -1;
}

static int
remote_not_found(const struct remote_run *run)
{
	int code = remote_exit_code(run);

	return code == RCLONE_DIR_NOT_FOUND || code == RCLONE_FILE_NOT_FOUND;
}

/*
 * The last lines of rclone's stderr on one line, " | " between them,
 * without rclone's timestamps, its "config file not found" notice, its
 * "Attempt 1/1 failed" summary, or control characters.  Caller frees.
 */
static char *
remote_stderr_text(struct tail *err, int max_lines)
{
	const char *text = tail_text(err, 4 * max_lines);
	char *copy = xstrdup(text), *line, *next;
	const char *kept[4 * REMOTE_ERR_LINES];
	size_t nkept = 0, first;
	struct buf b;

	for (line = copy; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		/* "2026/11/26 11:48:02 ERROR : ..." */
		if (strlen(line) > 20 && line[4] == '/' && line[7] == '/' &&
		    line[10] == ' ' && line[13] == ':' && line[19] == ' ')
			line += 20;
		str_trim(line);
		/* rclone's own retry summary repeats its last line */
		if (*line == '\0' ||
		    str_startswith(line, "NOTICE: Config file") ||
		    str_startswith(line, "ERROR : Attempt "))
			continue;
		for (char *c = line; *c != '\0'; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		if (nkept == nitems(kept)) {
			memmove(kept, kept + 1, (nkept - 1) * sizeof(*kept));
			nkept--;
		}
		kept[nkept++] = line;
	}
	first = nkept > (size_t)max_lines ? nkept - (size_t)max_lines : 0;
	buf_init(&b, sizeof(err->buf) + 64);
	buf_adds(&b, "");
	for (size_t i = first; i < nkept; i++) {
		if (i > first)
			buf_adds(&b, " | ");
		buf_adds(&b, kept[i]);
	}
	free(copy);
	return buf_detach(&b, NULL);
}

/* "remote NAME (PATH): WHAT: rclone exited with status N (words): LINES" */
static char *
remote_failure(const struct remote *r, struct remote_run *run)
{
	char *lines, *status, *cause;
	int code = remote_exit_code(run);

	lines = remote_stderr_text(&run->err, REMOTE_ERR_LINES);
	if (code >= 0)
		status = xasprintf("rclone exited with status %d (%s)", code,
		    remote_exit_text(code));
	else
		status = proc_status_text(run->status);
	cause = xasprintf("remote %s (%s): %s: %s%s%s", r->name, r->path,
	    run->what, status, *lines != '\0' ? ": " : "", lines);
	free(status);
	free(lines);
	return cause;
}

/*
 * Run `rclone SUBCOMMAND ARGS...` plus the common flags; the variadic
 * arguments end with NULL.  label names the object in causes ("db/x.dump").
 * out_cap > 0 captures stdout into run->out.  0 when rclone ran (look at
 * run->status), -1 with *cause when it could not be started.
 */
static int
remote_rclone(const struct config *cfg, struct remote_run *run,
    const char *label, size_t out_cap, char **cause, const char *subcommand,
    ...)
{
	static const char *const common[] = { "--retries", "1",
	    "--low-level-retries", "3", "--contimeout", "15s", "--timeout",
	    "5m" };
	const char *argv[2 + REMOTE_ARGS_MAX + nitems(common) + 1];
	const char *env[2] = { NULL, NULL };
	char *env_config = NULL;
	const char *arg;
	struct buf line;
	size_t argc = 0;
	va_list ap;
	int rv;

	memset(run, 0, sizeof(*run));
	argv[argc++] = cfg->rclone;
	argv[argc++] = subcommand;
	buf_init(&line, 8192);
	buf_adds(&line, subcommand);
	va_start(ap, subcommand);
	while ((arg = va_arg(ap, const char *)) != NULL) {
		if (argc == 2 + REMOTE_ARGS_MAX)
			fatalx("remote_rclone: too many arguments");
		argv[argc++] = arg;
		buf_addf(&line, " %s", arg);
	}
	va_end(ap);
	for (size_t i = 0; i < nitems(common); i++)
		argv[argc++] = common[i];
	argv[argc] = NULL;
	run->what = xasprintf("%s %s", subcommand, label);

	if (cfg->rclone_config != NULL) {
		env_config = xasprintf("RCLONE_CONFIG=%s", cfg->rclone_config);
		env[0] = env_config;
	}
	log_debug("rclone %s", line.data);
	buf_release(&line);
	rv = proc_run(argv, env, out_cap > 0 ? &run->out : NULL, out_cap,
	    &run->err, &run->status, cause);
	free(env_config);
	if (rv == -1)
		remote_run_release(run);
	return rv;
}

/*
 * Names that are safe as one path component: not empty, no '/', no
 * leading '.' (no "..", no hidden files) or '-' (never an option), no
 * control characters.  The catalog validated them already; this is the
 * last line of defence before an argv.
 */
static int
remote_name_ok(const char *s)
{
	if (s == NULL || *s == '\0' || *s == '.' || *s == '-')
		return 0;
	for (; *s != '\0'; s++)
		if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/*
 * The remote's path must not carry connection-string parameters
 * ("remote,key=value:" or ":backend,key=value:"): those are often
 * credentials, and they would end up in argv.  They belong in
 * rclone_config.
 */
static int
remote_check(const struct remote *r, const char *target, char **cause)
{
	const char *spec, *colon, *slash;

	if (r->path == NULL || *r->path == '\0' || *r->path == '-') {
		*cause = xasprintf("remote %s: path '%s' is not usable",
		    r->name, r->path != NULL ? r->path : "");
		return -1;
	}
	/* "name:path", or ":backend:path" for a remote made on the fly */
	spec = r->path[0] == ':' ? r->path + 1 : r->path;
	colon = strchr(spec, ':');
	slash = strchr(spec, '/');
	if (colon != NULL && (slash == NULL || colon < slash) &&
	    strcspn(spec, ",") < (size_t)(colon - spec)) {
		*cause = xasprintf("remote %s: the path has connection "
		    "parameters (key=value); put them in the rclone config "
		    "file (rclone_config), never in the path", r->name);
		return -1;
	}
	if (!remote_name_ok(target)) {
		*cause = xasprintf("remote %s: refusing target name '%s'",
		    r->name, target);
		return -1;
	}
	return 0;
}

/* PATH/TARGET/NAME, or PATH/TARGET/ when name is NULL.  Caller frees. */
static char *
remote_join(const struct remote *r, const char *target, const char *name)
{
	size_t len = strlen(r->path);
	const char *sep = "/";

	/* "remote:" is the remote's root: "remote:/x" may mean /x (sftp). */
	if (len > 0 && (r->path[len - 1] == '/' || r->path[len - 1] == ':'))
		sep = "";
	return xasprintf("%s%s%s/%s", r->path, sep, target,
	    name != NULL ? name : "");
}

/*
 * A local path as rclone must see it: "a:b" would name a remote, "-x" an
 * option; "./" in front makes both plain paths.  Caller frees.
 */
static char *
remote_local_arg(const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	return xasprintf("./%s", path);
}

static const char *
remote_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* stat a local file that is to be copied or checked: a regular file. */
static int
remote_local_file(const char *file, struct stat *st, char **cause)
{
	if (stat(file, st) == -1) {
		*cause = xasprintf("%s: %s", file, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		*cause = xasprintf("%s: not a regular file", file);
		return -1;
	}
	return 0;
}

/* The hex hash of a local file, from `rclone hashsum TYPE FILE`. */
static char *
remote_local_hash(const struct config *cfg, const struct remote *r,
    const char *type, const char *file, char **cause)
{
	struct remote_run run;
	char *arg = remote_local_arg(file), *hash;
	size_t n;

	if (remote_rclone(cfg, &run, file, REMOTE_HASH_MAX, cause, "hashsum",
	    type, arg, (const char *)NULL) == -1) {
		free(arg);
		return NULL;
	}
	free(arg);
	if (!proc_ok(run.status)) {
		*cause = remote_failure(r, &run);
		remote_run_release(&run);
		return NULL;
	}
	n = strcspn(run.out, " \t\n");
	if (n == 0) {
		*cause = xasprintf("remote %s: rclone hashsum %s %s printed "
		    "no hash", r->name, type, file);
		remote_run_release(&run);
		return NULL;
	}
	hash = xstrndup(run.out, n);
	remote_run_release(&run);
	return hash;
}

/*
 * Size of PATH on the remote and its hash of one type (*hash NULL when
 * the remote has none of that type, or an empty one, as S3 for some
 * multipart uploads).  0, or -1 with *cause.
 */
static int
remote_stat(const struct config *cfg, const struct remote *r,
    const char *path, const char *label, const char *type, long long *size,
    char **hash, char **cause)
{
	const cJSON *jsize, *jisdir, *jhash;
	struct remote_run run;
	cJSON *json = NULL;
	int rv = -1;

	*hash = NULL;
	if (remote_rclone(cfg, &run, label, REMOTE_STAT_MAX, cause, "lsjson",
	    "--stat", "--hash-type", type, path, (const char *)NULL) == -1)
		return -1;
	if (!proc_ok(run.status)) {
		if (remote_not_found(&run))
			*cause = xasprintf("remote %s (%s): %s is missing on "
			    "the remote", r->name, r->path, label);
		else
			*cause = remote_failure(r, &run);
		goto done;
	}
	json = cJSON_Parse(run.out);
	jsize = cJSON_GetObjectItemCaseSensitive(json, "Size");
	jisdir = cJSON_GetObjectItemCaseSensitive(json, "IsDir");
	if (!cJSON_IsObject(json) || !cJSON_IsNumber(jsize) ||
	    jsize->valuedouble < 0 || jsize->valuedouble > 9e15) {
		*cause = xasprintf("remote %s (%s): %s: rclone lsjson gave "
		    "no size", r->name, r->path, label);
		goto done;
	}
	if (cJSON_IsTrue(jisdir)) {
		*cause = xasprintf("remote %s (%s): %s is a directory on the "
		    "remote", r->name, r->path, label);
		goto done;
	}
	*size = (long long)jsize->valuedouble;
	jhash = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(json, "Hashes"), type);
	if (cJSON_IsString(jhash) && jhash->valuestring[0] != '\0')
		*hash = xstrdup(jhash->valuestring);
	rv = 0;

done:
	cJSON_Delete(json);
	remote_run_release(&run);
	return rv;
}

int
remote_verify(const struct config *cfg, const struct remote *r,
    const char *target, const char *file, char **cause)
{
	/*
	 * One hash is enough, and asked for one type at a time: local and
	 * sftp remotes compute each type they are asked for by reading the
	 * whole file.
	 */
	static const char *const types[] = { "md5", "sha1" };
	const char *name = remote_basename(file), *type = NULL;
	char *path, *label, *remote_hash = NULL, *local_hash = NULL;
	long long size;
	struct stat st;
	int rv = -1;

	*cause = NULL;
	if (remote_check(r, target, cause) == -1)
		return -1;
	if (!remote_name_ok(name)) {
		*cause = xasprintf("remote %s: refusing file name '%s'",
		    r->name, name);
		return -1;
	}
	if (remote_local_file(file, &st, cause) == -1)
		return -1;
	path = remote_join(r, target, name);
	label = xasprintf("%s/%s", target, name);
	for (size_t i = 0; i < nitems(types) && type == NULL; i++) {
		if (remote_stat(cfg, r, path, label, types[i], &size,
		    &remote_hash, cause) == -1)
			goto done;
		if (size != (long long)st.st_size) {
			*cause = xasprintf("remote %s (%s): %s: size mismatch: "
			    "local %lld bytes, remote %lld bytes", r->name,
			    r->path, label, (long long)st.st_size, size);
			goto done;
		}
		if (remote_hash != NULL)
			type = types[i];
	}
	if (type == NULL) {
		log_debug("remote %s: %s: no hash on the remote, size only",
		    r->name, label);
		rv = 0;
		goto done;
	}
	if ((local_hash = remote_local_hash(cfg, r, type, file, cause)) ==
	    NULL)
		goto done;
	if (strcasecmp(local_hash, remote_hash) != 0) {
		*cause = xasprintf("remote %s (%s): %s: %s mismatch: local %s, "
		    "remote %s", r->name, r->path, label, type, local_hash,
		    remote_hash);
		goto done;
	}
	rv = 0;

done:
	free(remote_hash);
	free(local_hash);
	free(label);
	free(path);
	return rv;
}

/*
 * Copy every file, verifying each right after its copy.  again: the
 * retry, which copies even files that look current (same size and time),
 * since a copy can be damaged without either changing.  0, -1 with
 * *cause, or -2 with *cause when rclone could not be started at all.
 */
static int
remote_put_once(const struct config *cfg, const struct remote *r,
    const char *target, const char *const *files, size_t nfiles, int again,
    char **cause)
{
	for (size_t i = 0; i < nfiles; i++) {
		const char *name = remote_basename(files[i]);
		struct remote_run run;
		char *src, *dst, *label;
		int rv;

		src = remote_local_arg(files[i]);
		dst = remote_join(r, target, name);
		label = xasprintf("%s/%s", target, name);
		if (again)
			rv = remote_rclone(cfg, &run, label, 0, cause, "copyto",
			    "--ignore-times", src, dst, (const char *)NULL);
		else
			rv = remote_rclone(cfg, &run, label, 0, cause, "copyto",
			    src, dst, (const char *)NULL);
		free(label);
		free(src);
		free(dst);
		if (rv == -1)
			return -2;	/* rclone not started: no retry */
		if (!proc_ok(run.status)) {
			*cause = remote_failure(r, &run);
			remote_run_release(&run);
			return -1;
		}
		remote_run_release(&run);
		if (remote_verify(cfg, r, target, files[i], cause) == -1)
			return -1;
	}
	return 0;
}

int
remote_put(const struct config *cfg, const struct remote *r,
    const char *target, const char *const *files, size_t nfiles,
    char **cause)
{
	struct stat st;
	char *first, *last;
	int rv;

	*cause = NULL;
	if (remote_check(r, target, cause) == -1)
		return -1;
	for (size_t i = 0; i < nfiles; i++) {
		if (!remote_name_ok(remote_basename(files[i]))) {
			*cause = xasprintf("remote %s: refusing file name '%s'",
			    r->name, remote_basename(files[i]));
			return -1;
		}
		if (remote_local_file(files[i], &st, cause) == -1)
			return -1;
	}
	rv = remote_put_once(cfg, r, target, files, nfiles, 0, cause);
	if (rv == 0)
		return 0;
	if (rv == -2)
		return -1;
	log_warnx("%s; retrying in %ds", *cause, REMOTE_RETRY_DELAY);
	first = *cause;
	*cause = NULL;
	sleep(REMOTE_RETRY_DELAY);
	if (remote_put_once(cfg, r, target, files, nfiles, 1, cause) == 0) {
		log_info("remote %s: copy succeeded on the retry", r->name);
		free(first);
		return 0;
	}
	free(first);
	last = *cause;
	*cause = xasprintf("%s (after a retry)", last);
	free(last);
	return -1;
}

int
remote_delete(const struct config *cfg, const struct remote *r,
    const char *target, const char *const *names, size_t n, char **cause)
{
	*cause = NULL;
	if (remote_check(r, target, cause) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!remote_name_ok(names[i])) {
			*cause = xasprintf("remote %s: refusing file name '%s'",
			    r->name, names[i]);
			return -1;
		}
	for (size_t i = 0; i < n; i++) {
		struct remote_run run, stat_run;
		char *path = remote_join(r, target, names[i]);
		char *label = xasprintf("%s/%s", target, names[i]);
		int gone;

		if (remote_rclone(cfg, &run, label, 0, cause, "deletefile",
		    path, (const char *)NULL) == -1) {
			free(label);
			free(path);
			return -1;
		}
		if (proc_ok(run.status)) {
			remote_run_release(&run);
			free(label);
			free(path);
			continue;
		}
		/*
		 * deletefile says "is a directory or doesn't exist" with the
		 * catch-all status 1: ask whether the file is there at all.
		 */
		gone = remote_rclone(cfg, &stat_run, label, REMOTE_STAT_MAX,
		    cause, "lsjson", "--stat", path, (const char *)NULL) == 0 &&
		    !proc_ok(stat_run.status) && remote_not_found(&stat_run);
		free(label);
		free(path);
		remote_run_release(&stat_run);
		free(*cause);
		*cause = NULL;
		if (gone) {
			log_debug("remote %s: %s/%s was already gone",
			    r->name, target, names[i]);
			remote_run_release(&run);
			continue;
		}
		*cause = remote_failure(r, &run);
		remote_run_release(&run);
		return -1;
	}
	return 0;
}

long
remote_list(const struct config *cfg, const struct remote *r,
    const char *target, char ***names, char **cause)
{
	struct remote_run run;
	const cJSON *item, *name;
	cJSON *json;
	char *path, *label, **v = NULL;
	long n = 0;
	int rv;

	*cause = NULL;
	*names = NULL;
	if (remote_check(r, target, cause) == -1)
		return -1;
	path = remote_join(r, target, NULL);
	label = xasprintf("%s/", target);
	rv = remote_rclone(cfg, &run, label, REMOTE_LIST_MAX, cause, "lsjson",
	    "--files-only", path, (const char *)NULL);
	free(label);
	free(path);
	if (rv == -1)
		return -1;
	if (!proc_ok(run.status)) {
		if (remote_exit_code(&run) == RCLONE_DIR_NOT_FOUND) {
			remote_run_release(&run);
			*names = xcalloc(1, sizeof(**names));
			return 0;	/* nothing copied there yet */
		}
		*cause = remote_failure(r, &run);
		remote_run_release(&run);
		return -1;
	}
	json = cJSON_Parse(run.out);
	if (!cJSON_IsArray(json)) {
		*cause = xasprintf("remote %s (%s): rclone lsjson printed no "
		    "list (over %d MiB?)", r->name, r->path,
		    REMOTE_LIST_MAX / (1024 * 1024));
		cJSON_Delete(json);
		remote_run_release(&run);
		return -1;
	}
	v = xcalloc((size_t)cJSON_GetArraySize(json) + 1, sizeof(*v));
	cJSON_ArrayForEach(item, json) {
		name = cJSON_GetObjectItemCaseSensitive(item, "Name");
		if (cJSON_IsString(name) && name->valuestring[0] != '\0')
			v[n++] = xstrdup(name->valuestring);
	}
	cJSON_Delete(json);
	remote_run_release(&run);
	*names = v;
	return n;
}

int
remote_get(const struct config *cfg, const struct remote *r,
    const char *target, const char *name, const char *dest, char **cause)
{
	struct remote_run run;
	char *src, *dst, *label;
	int rv;

	*cause = NULL;
	if (remote_check(r, target, cause) == -1)
		return -1;
	if (!remote_name_ok(name)) {
		*cause = xasprintf("remote %s: refusing file name '%s'",
		    r->name, name);
		return -1;
	}
	src = remote_join(r, target, name);
	dst = remote_local_arg(dest);
	label = xasprintf("%s/%s", target, name);
	rv = remote_rclone(cfg, &run, label, 0, cause, "copyto", src, dst,
	    (const char *)NULL);
	free(label);
	free(src);
	free(dst);
	if (rv == -1) {
		remote_run_release(&run);
		return -1;
	}
	if (!proc_ok(run.status)) {
		*cause = remote_failure(r, &run);
		remote_run_release(&run);
		return -1;
	}
	remote_run_release(&run);
	return 0;
}
