/*
 * job.c - backup and verify jobs, run in a child or from the CLI (job.h).
 *
 * The order of a backup is what makes it trustworthy:
 *   1. the backend checks the source (reachable, versions);
 *   2. the stream goes through the pipeline into ID.partial;
 *   3. only if every process succeeded and bytes were written: fsync,
 *      rename to the final name, fsync the directory;
 *   4. the manifest is written last: from then on the backup exists;
 *   5. copies to every remote, each verified there; the manifest records
 *      them and travels along;
 *   6. retention, which never removes the newest good backup.
 * Any failure before 4 removes the partial file and leaves older backups
 * untouched.
 */
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "catalog.h"
#include "config.h"
#include "human.h"
#include "json.h"
#include "job.h"
#include "job_parts.h"
#include "lock.h"
#include "log.h"
#include "pgbackrest.h"
#include "pipeline.h"
#include "proc.h"
#include "remote.h"
#include "restore.h"
#include "retention.h"
#include "script.h"
#include "seal.h"
#include "util.h"
#include "version.h"

volatile sig_atomic_t job_cancelled;
int job_insecure;
int job_no_wait;


static void
ctx_progress(struct job_ctx *c, const char *phase, uint64_t done,
    uint64_t total)
{
	const struct job_out *o = ((struct run *)c->arg)->out;

	if (o->progress != NULL)
		o->progress(o->arg, phase, done, total);
}

static void
ctx_log(struct job_ctx *c, const char *level, const char *msg)
{
	const struct job_out *o = ((struct run *)c->arg)->out;

	if (o->log != NULL)
		o->log(o->arg, level, msg);
}

void
say(const struct job_out *o, const char *level, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	if (o->log != NULL)
		o->log(o->arg, level, s);
	free(s);
}

cJSON *
result_new(const char *target, const char *kind)
{
	cJSON *r = cJSON_CreateObject();

	cJSON_AddStringToObject(r, "status", "failed");
	cJSON_AddStringToObject(r, "target", target);
	if (kind != NULL)
		cJSON_AddStringToObject(r, "kind", kind);
	return r;
}

cJSON *
result_fail(cJSON *r, const char *cause)
{
	cJSON_ReplaceItemInObjectCaseSensitive(r, "status",
	    cJSON_CreateString(job_cancelled ? "cancelled" : "failed"));
	cJSON_DeleteItemFromObjectCaseSensitive(r, "error");
	cJSON_AddStringToObject(r, "error", job_cancelled ?
	    "cancelled" : cause);
	return r;
}

/* A script's run, for the report: how it ended, its last lines, log. */
static void
result_script_facts(cJSON *result, const cJSON *manifest)
{
	static const char *const keys[] = { "exit", "output", "log" };

	for (size_t i = 0; i < nitems(keys); i++) {
		const char *v = json_str(manifest, keys[i]);

		if (v != NULL && cJSON_GetObjectItemCaseSensitive(result,
		    keys[i]) == NULL)
			cJSON_AddStringToObject(result, keys[i], v);
	}
}

/*
 * May b be read, and how (seal_open): the reason to refuse goes to
 * *cause; reading an unauthenticated backup under the CLI's override is
 * said as a warning.  0 or -1.
 */
static int
seal_check(const struct seal_keys *k, const struct backup *b,
    struct pipe_seal *seal, char **bind, const struct job_out *o,
    char **cause)
{
	int r = seal_open(k, b, job_insecure, seal, bind, cause);

	if (r == 1)
		say(o, "warning", "%s is NOT authenticated: read anyway because "
		    "of --insecure-unauthenticated", b->id);
	return r == -1 ? -1 : 0;
}

static void
lock_waiting(void *arg, const char *msg)
{
	say(arg, "info", "%s", msg);
}

int
job_lock(const struct config *cfg, const char *target,
    const struct job_out *o, char **cause)
{
	return lock_target(cfg, target, !job_no_wait, lock_waiting,
	    (void *)o, &job_cancelled, cause);
}

/*
 * Run fn (a job of one target) while holding the target's lock; a target
 * that is not configured is fn's to report.
 */
static cJSON *
locked(const struct config *cfg, const char *target, const struct job_out *o,
    cJSON *(*fn)(const struct config *, const char *, const void *,
    const struct job_out *), const void *arg)
{
	char *cause = NULL;
	cJSON *r;
	int fd;

	if (config_target(cfg, target) == NULL)
		return fn(cfg, target, arg, o);
	if ((fd = job_lock(cfg, target, o, &cause)) == -1) {
		r = result_fail(result_new(target, config_kind_name(
		    config_target(cfg, target)->kind)), cause);
		free(cause);
		return r;
	}
	r = fn(cfg, target, arg, o);
	lock_release(fd);
	return r;
}

/* Copy data + manifest to every remote; record each in the manifest. */
static int
copy_to_remotes(const struct config *cfg, const struct target *t,
    const char *id, const char *data_path, cJSON *manifest, cJSON *result,
    const struct job_out *o)
{
	cJSON *rem = cJSON_GetObjectItemCaseSensitive(manifest, "remotes");
	char *mpath = xasprintf("%s/%s/%s.json", cfg->backup_dir, t->name, id);
	int failures = 0;

	for (size_t i = 0; i < t->remotes.n && !job_cancelled; i++) {
		const struct remote *r = config_remote(cfg, t->remotes.v[i]);
		const char *files[] = { data_path };
		cJSON *st = cJSON_CreateObject();
		char *cause = NULL;

		say(o, "info", "copying to remote %s", r->name);
		if (o->progress != NULL)
			o->progress(o->arg, r->name, 0, 0);
		if (remote_put(cfg, r, t->name, files, 1, &cause) == 0) {
			cJSON_AddStringToObject(st, "status", "ok");
			cJSON_AddNumberToObject(st, "at", (double)time(NULL));
		} else {
			cJSON_AddStringToObject(st, "status", "failed");
			cJSON_AddStringToObject(st, "error", cause);
			say(o, "warning", "remote %s: %s", r->name, cause);
			failures++;
		}
		free(cause);
		cJSON_AddItemToObject(rem, r->name, st);
	}
	/* The manifest now says where the copies are; it travels too. */
	{
		char *cause = NULL;

		if (catalog_write_manifest(cfg, t->name, id, manifest,
		    &cause) == -1) {
			say(o, "warning", "%s", cause);
			free(cause);
		}
	}
	for (size_t i = 0; i < t->remotes.n && !job_cancelled; i++) {
		const struct remote *r = config_remote(cfg, t->remotes.v[i]);
		cJSON *st = cJSON_GetObjectItemCaseSensitive(rem, r->name);
		const char *files[] = { mpath };
		char *cause = NULL;

		if (st == NULL || strcmp(json_text(st, "status"), "ok") != 0)
			continue;
		if (remote_put(cfg, r, t->name, files, 1, &cause) == -1) {
			cJSON_ReplaceItemInObjectCaseSensitive(st, "status",
			    cJSON_CreateString("failed"));
			cJSON_AddStringToObject(st, "error", cause);
			say(o, "warning", "remote %s: manifest: %s", r->name,
			    cause);
			failures++;
		}
		free(cause);
	}
	free(mpath);
	cJSON_AddItemToObject(result, "remotes", cJSON_Duplicate(rem, 1));
	return failures;
}

/*
 * A media run: the backend copies source to destinations itself; the
 * manifest backup_dir/TARGET/ID.run.json records what it did.
 */
static cJSON *
job_sync(const struct config *cfg, const struct target *t,
    const struct backend *be, struct run *run, cJSON *result,
    const struct job_out *o)
{
	time_t started = time(NULL);
	int64_t t0 = mono_ms();
	char *id, *dir = catalog_dir(cfg, t->name), *path, *text;
	char *cause = NULL;
	cJSON *manifest = cJSON_CreateObject();
	int r;

	/* Ids have a one-second resolution: never overwrite a record. */
	for (;;) {
		int taken;

		id = catalog_new_id(t->name, started);
		path = xasprintf("%s/%s.run.json", dir, id);
		taken = access(path, F_OK) == 0;
		free(path);
		if (!taken)
			break;
		free(id);
		started = sleep_next_second();
	}
	run->ctx.id = id;
	cJSON_AddStringToObject(result, "id", id);
	cJSON_AddNumberToObject(manifest, "format_version", 1);
	cJSON_AddStringToObject(manifest, "id", id);
	cJSON_AddStringToObject(manifest, "target", t->name);
	cJSON_AddStringToObject(manifest, "kind", be->kind);
	cJSON_AddNumberToObject(manifest, "started", (double)started);
	say(o, "info", "sync %s of %s started", id, t->name);
	r = be->sync(&run->ctx, manifest, &cause);
	cJSON_AddNumberToObject(manifest, "ended", (double)time(NULL));
	cJSON_AddStringToObject(manifest, "status", r == 0 ? "ok" :
	    r == 1 ? "partial" : job_cancelled ? "cancelled" : "failed");
	if (cause != NULL)
		cJSON_AddStringToObject(manifest, "error", cause);
	path = xasprintf("%s/%s.run.json", dir, id);
	text = cJSON_Print(manifest);
	if (dir_make(dir, 0700) == -1 ||
	    file_write_atomic(path, text, strlen(text), 0600) == -1)
		say(o, "warning", "cannot record the run in %s: %s", path,
		    strerror(errno));
	free(text);
	free(path);
	free(dir);
	{
		cJSON *d = cJSON_GetObjectItemCaseSensitive(manifest,
		    "destinations");

		if (d != NULL)
			cJSON_AddItemToObject(result, "destinations",
			    cJSON_Duplicate(d, 1));
		/* pgbackrest: each repository, the type and the delta */
		d = cJSON_GetObjectItemCaseSensitive(manifest, "repos");
		if (d != NULL) {
			cJSON_AddItemToObject(result, "repos",
			    cJSON_Duplicate(d, 1));
			cJSON_AddStringToObject(result, "type",
			    json_text(manifest, "type"));
			cJSON_AddNumberToObject(result, "delta",
			    json_num(manifest, "delta"));
		}
		/* What the operator must read (expiry failures...). */
		d = cJSON_GetObjectItemCaseSensitive(manifest, "warnings");
		if (cJSON_IsArray(d) && cJSON_GetArraySize(d) > 0)
			cJSON_AddItemToObject(result, "warnings",
			    cJSON_Duplicate(d, 1));
		result_script_facts(result, manifest);
		cJSON_AddNumberToObject(result, "transferred",
		    json_num(manifest, "transferred"));
		cJSON_AddNumberToObject(result, "bytes",
		    json_num(manifest, "bytes"));
		cJSON_AddNumberToObject(result, "deleted",
		    json_num(manifest, "deleted"));
	}
	if (r == -1)
		result_fail(result, cause ? cause : "unknown error");
	else
		cJSON_ReplaceItemInObjectCaseSensitive(result, "status",
		    cJSON_CreateString(r == 0 ? "ok" : "partial"));
	cJSON_AddNumberToObject(result, "duration",
	    (double)(mono_ms() - t0) / 1000.0);
	free(cause);
	free(id);
	cJSON_Delete(manifest);
	return result;
}


/*
 * Where a backup's time went, for `backupbot backup --timings` and the
 * benchmarks: milliseconds per step, into result.timings.
 */
static void
timing_mark(cJSON *result, const char *step, int64_t *mark)
{
	cJSON *t = cJSON_GetObjectItemCaseSensitive(result, "timings");
	int64_t now = mono_ms();

	if (t == NULL)
		t = cJSON_AddObjectToObject(result, "timings");
	cJSON_AddNumberToObject(t, step, (double)(now - *mark));
	*mark = now;
}

/* A backup of one target, type for pgbackrest (NULL: its default). */
static cJSON *
backup_body(const struct config *cfg, const char *target, const char *type,
    const struct job_out *o)
{
	const struct target *t = config_target(cfg, target);
	const struct backend *be;
	struct seal_keys keys;
	char hash[2 * PIPE_HASHBYTES + 1];
	char *id = NULL, *dir = NULL, *partial = NULL, *final = NULL;
	char *cause = NULL, *name = NULL, *bind = NULL;
	struct pipe_opts opts;
	struct pipe_out *po = NULL;
	uint64_t in_bytes = 0, out_bytes = 0;
	cJSON *manifest = NULL, *result;
	struct run run;
	int fd = -1, have_key, remote_failures;
	time_t started = time(NULL);
	int64_t t0 = mono_ms(), mark = t0;

	if (t == NULL)
		return result_fail(result_new(target, NULL),
		    "no such target in the configuration");
	be = backend_for(t);
	result = result_new(t->name, be->kind);
	memset(&keys, 0, sizeof(keys));
	memset(&run, 0, sizeof(run));
	run.out = o;
	run.ctx.cfg = cfg;
	run.ctx.target = t;
	run.ctx.progress = ctx_progress;
	run.ctx.log = ctx_log;
	run.ctx.cancelled = &job_cancelled;
	run.ctx.arg = &run;
	run.ctx.backup_type = type;
	if (type != NULL && t->kind != TARGET_PGBACKREST)
		return result_fail(result, "a backup type (full, diff, incr) "
		    "is for pgbackrest targets");
	if (be->sync != NULL)
		return job_sync(cfg, t, be, &run, result, o);
	if (be->prepare == NULL || be->backup == NULL)
		return result_fail(result, "this kind of target cannot be "
		    "backed up by this version of backupbot");

	dir = catalog_dir(cfg, t->name);
	if (dir_make(dir, 0700) == -1) {
		cause = xasprintf("cannot create %s: %s", dir,
		    strerror(errno));
		goto fail;
	}
	/* Ids have a one-second resolution: never reuse one. */
	for (;;) {
		char *m, *pt;
		int taken;

		id = catalog_new_id(t->name, started);
		m = xasprintf("%s/%s.json", dir, id);
		pt = xasprintf("%s/%s.partial", dir, id);
		taken = access(m, F_OK) == 0 || access(pt, F_OK) == 0;
		free(m);
		free(pt);
		if (!taken)
			break;
		free(id);
		started = sleep_next_second();
	}
	run.ctx.id = id;
	cJSON_AddStringToObject(result, "id", id);
	if (seal_keys_load(cfg, &keys, &cause) == -1)
		goto fail;
	have_key = keys.have;

	manifest = cJSON_CreateObject();
	cJSON_AddNumberToObject(manifest, "format_version", have_key ? 2 : 1);
	cJSON_AddStringToObject(manifest, "id", id);
	cJSON_AddStringToObject(manifest, "target", t->name);
	cJSON_AddStringToObject(manifest, "kind", be->kind);
	cJSON_AddStringToObject(manifest, "backupbot", BB_VERSION);
	cJSON_AddNumberToObject(manifest, "started", (double)started);
	say(o, "info", "backup %s of %s started", id, t->name);
	timing_mark(result, "setup", &mark);
	if (be->prepare(&run.ctx, manifest, &cause) == -1)
		goto fail;
	timing_mark(result, "prepare", &mark);

	memset(&opts, 0, sizeof(opts));
	opts.compression = !strcmp(t->compression, "zstd") ? PIPE_ZSTD :
	    PIPE_NONE;
	opts.level = t->level;
	opts.threads = t->threads;
	if (have_key) {
		bind = xasprintf("%s/%s", t->name, id);
		opts.key = keys.stream;
		opts.bind = bind;
	}
	partial = xasprintf("%s/%s.partial", dir, id);
	fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1) {
		cause = xasprintf("cannot create %s: %s", partial,
		    strerror(errno));
		goto fail;
	}
	if ((po = pipe_out_new(fd, &opts, &cause)) == NULL)
		goto fail;
	if (be->backup(&run.ctx, po, manifest, &cause) == -1)
		goto fail;
	if (job_cancelled) {
		cause = xstrdup("cancelled");
		goto fail;
	}
	if (pipe_out_finish(po, hash, &in_bytes, &out_bytes, &cause) == -1)
		goto fail;
	pipe_out_free(po);
	po = NULL;
	if (in_bytes == 0 || out_bytes == 0) {
		cause = xstrdup("the backup is empty");
		goto fail;
	}
	timing_mark(result, "dump", &mark);
	if (close(fd) == -1) {
		fd = -1;
		cause = xasprintf("closing %s: %s", partial, strerror(errno));
		goto fail;
	}
	fd = -1;
	name = xasprintf("%s%s%s%s", id, be->suffix,
	    opts.compression == PIPE_ZSTD ? ".zst" : "", have_key ? ".enc" : "");
	final = xasprintf("%s/%s", dir, name);
	if (rename(partial, final) == -1 || dir_sync_of(final) == -1) {
		cause = xasprintf("cannot rename %s: %s", partial,
		    strerror(errno));
		goto fail;
	}
	free(partial);
	partial = NULL;

	cJSON_AddStringToObject(manifest, "file", name);
	cJSON_AddNumberToObject(manifest, "bytes", (double)out_bytes);
	cJSON_DeleteItemFromObjectCaseSensitive(manifest, "bytes_raw");
	cJSON_AddNumberToObject(manifest, "bytes_raw", (double)in_bytes);
	cJSON_AddStringToObject(manifest, "blake2b", hash);
	{
		cJSON *c = cJSON_AddObjectToObject(manifest, "compression_info");

		cJSON_AddStringToObject(c, "algorithm", t->compression);
		if (opts.compression == PIPE_ZSTD)
			cJSON_AddNumberToObject(c, "level", opts.level);
	}
	cJSON_AddStringToObject(manifest, "encryption", have_key ?
	    SEAL_ENCRYPTION : "none");
	cJSON_AddNumberToObject(manifest, "ended", (double)time(NULL));
	cJSON_AddStringToObject(manifest, "status", "ok");
	cJSON_AddObjectToObject(manifest, "remotes");
	if (have_key)
		seal_manifest(manifest, &keys);
	if (catalog_write_manifest(cfg, t->name, id, manifest, &cause) == -1) {
		unlink(final);
		goto fail;
	}
	say(o, "info", "backup %s written: %llu bytes", id,
	    (unsigned long long)out_bytes);
	timing_mark(result, "commit", &mark);

	result_script_facts(result, manifest);
	cJSON_AddStringToObject(result, "file", name);
	cJSON_AddNumberToObject(result, "bytes", (double)out_bytes);
	cJSON_AddNumberToObject(result, "bytes_raw", (double)in_bytes);
	cJSON_AddStringToObject(result, "blake2b", hash);
	cJSON_AddStringToObject(result, "encryption", have_key ?
	    SEAL_ENCRYPTION : "none");
	/* What the backend wants the operator to read (missing paths...). */
	{
		cJSON *w = cJSON_GetObjectItemCaseSensitive(manifest,
		    "warnings");

		if (cJSON_IsArray(w) && cJSON_GetArraySize(w) > 0)
			cJSON_AddItemToObject(result, "warnings",
			    cJSON_Duplicate(w, 1));
	}

	remote_failures = copy_to_remotes(cfg, t, id, final, manifest, result,
	    o);
	if (remote_failures > 0) {
		cJSON_ReplaceItemInObjectCaseSensitive(manifest, "status",
		    cJSON_CreateString("partial"));
		if (catalog_write_manifest(cfg, t->name, id, manifest,
		    &cause) == -1) {
			say(o, "warning", "%s", cause);
			free(cause);
			cause = NULL;
		}
	}
	cJSON_ReplaceItemInObjectCaseSensitive(result, "status",
	    cJSON_CreateString(remote_failures ? "partial" : "ok"));
	timing_mark(result, "remotes", &mark);
	if (!job_cancelled)
		job_retention(cfg, t->name, result, o);
	timing_mark(result, "retention", &mark);
	cJSON_AddNumberToObject(result, "duration",
	    (double)(mono_ms() - t0) / 1000.0);
	seal_keys_wipe(&keys);
	cJSON_Delete(manifest);
	free(final);
	free(name);
	free(bind);
	free(dir);
	free(id);
	return result;

fail:
	if (po != NULL)
		pipe_out_free(po);
	if (fd != -1)
		close(fd);
	if (partial != NULL)
		unlink(partial);
	seal_keys_wipe(&keys);
	free(bind);
	say(o, "warning", "backup of %s failed: %s", t->name,
	    job_cancelled ? "cancelled" : cause ? cause : "?");
	result_fail(result, cause ? cause : "unknown error");
	cJSON_AddNumberToObject(result, "duration",
	    (double)(mono_ms() - t0) / 1000.0);
	free(cause);
	cJSON_Delete(manifest);
	free(final);
	free(name);
	free(partial);
	free(dir);
	free(id);
	return result;
}

static cJSON *
backup_locked(const struct config *cfg, const char *target, const void *type,
    const struct job_out *o)
{
	return backup_body(cfg, target, type, o);
}

cJSON *
backup_run(const struct config *cfg, const char *target, const char *type,
    const struct job_out *o)
{
	return locked(cfg, target, o, backup_locked, type);
}

void
job_retention(const struct config *cfg, const char *target, cJSON *result,
    const struct job_out *o)
{
	const struct target *t = config_target(cfg, target);
	struct backup *list;
	struct keep_item *items;
	cJSON *removed = cJSON_AddArrayToObject(result, "removed");
	size_t n;

	if (t == NULL || !t->keep.set)
		return;
	n = catalog_list(cfg, target, &list);
	if (n == 0)
		return;
	items = catalog_keep(t, list, n);
	for (size_t i = 0; i < n; i++) {
		char *m, *d;

		/* list is newest first: index 0 is the newest good backup */
		if (items[i].keep || i == 0)
			continue;
		m = xasprintf("%s/%s/%s.json", cfg->backup_dir, target,
		    list[i].id);
		d = xasprintf("%s/%s/%s", cfg->backup_dir, target,
		    list[i].data_file);
		/* Manifest first: a backup without one does not exist. */
		if (unlink(m) == -1 && errno != ENOENT)
			say(o, "warning", "retention: cannot remove %s: %s",
			    m, strerror(errno));
		else {
			dir_sync_of(m);
			unlink(d);
			cJSON_AddItemToArray(removed,
			    cJSON_CreateString(list[i].id));
			say(o, "info", "retention: removed %s", list[i].id);
		}
		for (size_t k = 0; k < t->remotes.n; k++) {
			const struct remote *r = config_remote(cfg,
			    t->remotes.v[k]);
			char *mname = xasprintf("%s.json", list[i].id);
			const char *names[] = { mname, list[i].data_file };
			char *cause = NULL;

			if (remote_delete(cfg, r, target, names, 2,
			    &cause) == -1) {
				say(o, "warning", "retention on %s: %s",
				    r->name, cause);
				free(cause);
			}
			free(mname);
		}
		free(m);
		free(d);
	}
	free(items);
	catalog_free(list, n);
}

/* ---- restores and drills -------------------------------------------- */

/*
 * A backup made ready for a restore: found in the catalog or fetched from
 * the first remote that has it, then decoded into a private staging
 * directory, its hash checked on the way.  Nothing outside backup_dir has
 * been touched when this fails.
 */
struct source {
	struct backup	 b;
	char		*stage;		/* backup_dir/TARGET/.ID-restore.dir */
	char		*data;		/* the stored file (local or fetched) */
	char		*raw;		/* stage/raw: the original stream, or
					   stage/raw.dir: its tar unpacked */
	char		*remote;	/* fetched from, or NULL */
	uint64_t	 raw_bytes;
};

static void
source_release(struct source *s)
{
	if (s->stage != NULL)
		dir_remove_tree(s->stage);
	backup_release(&s->b);
	free(s->stage);
	free(s->data);
	free(s->raw);
	free(s->remote);
	memset(s, 0, sizeof(*s));
}

/* The newest backup id listed on a remote, or NULL. */
static char *
remote_newest(const struct config *cfg, const struct remote *r,
    const char *target)
{
	char **names = NULL, *best = NULL, *cause = NULL;
	long n = remote_list(cfg, r, target, &names, &cause);

	free(cause);
	for (long i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		char *id;

		if (len > 5 && !strcmp(names[i] + len - 5, ".json")) {
			id = xstrndup(names[i], len - 5);
			if (catalog_valid_id(id) && !strncmp(id, target,
			    strlen(target)) && id[strlen(target)] == '-' &&
			    (best == NULL || strcmp(id, best) > 0)) {
				free(best);
				best = id;
			} else
				free(id);
		}
		free(names[i]);
	}
	free(names);
	return best;
}

/* Fetch manifest and data of id from remote r into s->stage. */
static int
source_fetch(const struct config *cfg, const struct target *t,
    const struct remote *r, const char *id, const struct seal_keys *k,
    struct source *s, const struct job_out *o, char **cause)
{
	struct pipe_seal seal;
	char *bind = NULL;
	char *mname = xasprintf("%s.json", id);
	char *mpath = xasprintf("%s/%s", s->stage, mname);
	char *text = NULL;
	size_t len;
	int rc = -1;

	if (remote_get(cfg, r, t->name, mname, mpath, cause) == -1)
		goto done;
	if ((text = file_read(mpath, 4 * 1024 * 1024, &len)) == NULL) {
		*cause = xasprintf("%s: %s", mpath, strerror(errno));
		goto done;
	}
	if (catalog_parse_manifest(text, len, &s->b, cause) == -1)
		goto done;
	/* The manifest must be the one asked for, not any other. */
	if (strcmp(s->b.id, id) != 0 || strcmp(s->b.target, t->name) != 0) {
		*cause = xasprintf("the manifest on %s is for %s of %s",
		    r->name, s->b.id, s->b.target);
		backup_release(&s->b);
		goto done;
	}
	/* Its MAC first: nothing unauthenticated is even fetched. */
	if (seal_check(k, &s->b, &seal, &bind, o, cause) == -1) {
		backup_release(&s->b);
		goto done;
	}
	s->data = xasprintf("%s/%s", s->stage, s->b.data_file);
	if (remote_get(cfg, r, t->name, s->b.data_file, s->data,
	    cause) == -1) {
		backup_release(&s->b);
		goto done;
	}
	s->remote = xstrdup(r->name);
	rc = 0;
done:
	free(bind);
	free(text);
	free(mname);
	free(mpath);
	return rc;
}

/* Free bytes on the file system of path, or UINT64_MAX when unknown. */
static uint64_t
free_bytes(const char *path)
{
	struct statvfs sv;

	if (statvfs(path, &sv) == -1)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* A thread that keeps the tail of a reader's stderr while we feed its
 * stdin: a full stderr pipe would otherwise block us both. */
struct err_drain {
	int		 fd;
	struct tail	*tail;
};

static void *
err_drain(void *arg)
{
	struct err_drain *d = arg;
	char chunk[4096];
	ssize_t n;

	while ((n = read(d->fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		tail_add(d->tail, chunk, (size_t)n);
	}
	return NULL;
}

/*
 * Feed in_fd through pipe_in_run (decoding and checking it as asked) into
 * p's stdin, keep the tail of p's stderr in *err, and wait for p: *status
 * as from waitpid.  Returns pipe_in_run's result, with *why set on -1
 * (also when p cannot be waited for; *status is then left as it was).
 */
static int
feed_reader(struct proc *p, int in_fd, enum pipe_compression comp,
    const struct pipe_seal *seal, const char *blake2b, uint64_t *bytes,
    struct tail *err, int *status, char **why)
{
	struct err_drain d = { p->err_fd, err };
	pthread_t th;
	int rc, drained;

	*why = NULL;
	memset(err, 0, sizeof(*err));
	if (!(drained = pthread_create(&th, NULL, err_drain, &d) == 0)) {
		close(p->err_fd);	/* its complaints end it, not block it */
		p->err_fd = -1;
	}
	rc = pipe_in_run(in_fd, p->in_fd, comp, seal, blake2b, bytes, why);
	close(p->in_fd);
	p->in_fd = -1;
	if (drained)
		pthread_join(th, NULL);
	if (proc_wait(p, status) == -1) {
		free(*why);
		*why = xasprintf("waitpid: %s", strerror(errno));
		return -1;
	}
	return rc;
}

/*
 * Decode in_fd straight into `tar -x` in dir: a tar container (a pg_dump
 * directory) is unpacked in the same pass that checks it, instead of
 * being written whole and then read back to unpack it.  The hash is known
 * only at the end, so on any failure the caller removes dir; nothing
 * reads it before this returns 0.
 */
static int
decode_untar(int in_fd, const char *dir, enum pipe_compression comp,
    const struct pipe_seal *seal, const char *blake2b, uint64_t *bytes,
    char **cause)
{
	const char *argv[] = { "tar", "--no-same-owner", "-C", dir, "-xf",
	    "-", NULL };
	struct tail err;
	struct proc p;
	char *why, *st;
	int status = 0, rc;

	if (mkdir(dir, 0700) == -1) {
		*cause = xasprintf("%s: %s", dir, strerror(errno));
		return -1;
	}
	if (proc_spawn(&p, argv, NULL, PROC_STDIN | PROC_STDOUT_NULL |
	    PROC_STDERR, cause) == -1)
		return -1;
	rc = feed_reader(&p, in_fd, comp, seal, blake2b, bytes, &err, &status,
	    &why);
	/* The decoder's reason, unless it only saw tar give up. */
	if (rc == -1 && (proc_ok(status) || strncmp(why, "write", 5) != 0)) {
		*cause = why;
		return -1;
	}
	if (!proc_ok(status)) {
		st = proc_status_text(status);
		*cause = xasprintf("tar cannot unpack the dump directory: %s%s%s",
		    st, err.len > 0 ? ": " : "", tail_text(&err, 4));
		free(st);
		free(why);
		return -1;
	}
	return 0;
}

static int
source_open(const struct config *cfg, const struct target *t, const char *id,
    int unpack, const struct job_out *o, struct source *s, char **cause)
{
	struct seal_keys keys;
	struct pipe_seal seal;
	const char *algo, *container;
	const cJSON *ci;
	enum pipe_compression comp;
	char *local_cause = NULL, *dir, *bind = NULL, *refused = NULL;
	int in = -1, out = -1, rc = -1;
	double raw_expect;

	memset(s, 0, sizeof(*s));
	memset(&seal, 0, sizeof(seal));
	if (seal_keys_load(cfg, &keys, cause) == -1)
		return -1;
	dir = catalog_dir(cfg, t->name);
	if (catalog_get(cfg, t->name, id, &s->b, &local_cause) == 0) {
		s->data = xasprintf("%s/%s", dir, s->b.data_file);
		free(local_cause);
		local_cause = NULL;
	}
	s->stage = xasprintf("%s/.%s-restore.dir", dir, s->b.id != NULL ?
	    s->b.id : catalog_valid_id(id) ? id : "latest");
	dir_remove_tree(s->stage);
	if (dir_make(dir, 0700) == -1 || dir_make(s->stage, 0700) == -1) {
		*cause = xasprintf("cannot create %s: %s", s->stage,
		    strerror(errno));
		goto done;
	}
	/* Not here: the first remote that has it. */
	for (size_t i = 0; s->b.id == NULL && i < t->remotes.n; i++) {
		const struct remote *r = config_remote(cfg, t->remotes.v[i]);
		char *want = strcmp(id, "latest") ? xstrdup(id) :
		    remote_newest(cfg, r, t->name), *why = NULL;

		if (want == NULL)
			continue;
		say(o, "info", "%s is not in %s; fetching it from remote %s",
		    want, dir, r->name);
		if (source_fetch(cfg, t, r, want, &keys, s, o, &why) == -1) {
			say(o, "warning", "remote %s: %s", r->name, why);
			free(refused);
			refused = xasprintf("remote %s: %s", r->name, why);
			free(why);
		}
		free(want);
	}
	if (s->b.id == NULL) {
		*cause = refused != NULL ? xstrdup(refused) : t->remotes.n > 0 ?
		    xasprintf("%s, nor on any remote", local_cause) :
		    xstrdup(local_cause);
		goto done;
	}
	/* Before anything reads the data: is it ours, and how to read it. */
	if ((s->remote == NULL ? seal_check(&keys, &s->b, &seal, &bind, o,
	    cause) : seal_open(&keys, &s->b, job_insecure, &seal, &bind,
	    cause)) == -1) {
		char *c = xasprintf("%s; nothing was restored", *cause);

		free(*cause);
		*cause = c;
		goto done;
	}
	ci = cJSON_GetObjectItemCaseSensitive(s->b.manifest, "compression_info");
	algo = json_str(ci, "algorithm");
	comp = algo != NULL && !strcmp(algo, "zstd") ? PIPE_ZSTD : PIPE_NONE;
	raw_expect = json_num(s->b.manifest, "bytes_raw");
	if (raw_expect > 0 && (double)free_bytes(s->stage) < raw_expect) {
		char need[32], have[32];

		human_size(need, sizeof(need), raw_expect);
		human_size(have, sizeof(have), (double)free_bytes(s->stage));
		*cause = xasprintf("not enough space to unpack the backup: it "
		    "needs %s in %s, %s are free", need, dir, have);
		goto done;
	}
	container = json_str(s->b.manifest, "container");
	unpack = unpack && container != NULL && !strcmp(container, "tar");
	s->raw = xasprintf(unpack ? "%s/raw.dir" : "%s/raw", s->stage);
	say(o, "info", "checking %s (hash%s%s%s)", s->b.id,
	    seal.key != NULL ? ", decryption" : "", comp == PIPE_ZSTD ?
	    ", decompression" : "", unpack ? ", unpacking" : "");
	if (o->progress != NULL)
		o->progress(o->arg, "checking the backup", 0, 0);
	if ((in = open(s->data, O_RDONLY | O_CLOEXEC)) == -1) {
		*cause = xasprintf("%s: %s", s->data, strerror(errno));
		goto done;
	}
	if (unpack)
		rc = decode_untar(in, s->raw, comp, &seal,
		    s->b.blake2b, &s->raw_bytes, cause);
	else if ((out = open(s->raw, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0600)) == -1) {
		*cause = xasprintf("%s: %s", s->raw, strerror(errno));
		goto done;
	} else {
		rc = pipe_in_run(in, out, comp, &seal,
		    s->b.blake2b, &s->raw_bytes, cause);
		if (rc == 0 && close(out) == -1) {
			*cause = xasprintf("%s: %s", s->raw, strerror(errno));
			rc = -1;
		}
		out = -1;
	}
	if (rc == -1) {
		char *c = xasprintf("%s: %s; nothing was restored", s->b.id,
		    *cause);

		free(*cause);
		*cause = c;
		goto done;
	}
	rc = -1;
	if (raw_expect > 0 && (double)s->raw_bytes != raw_expect) {
		*cause = xasprintf("%s is truncated or damaged: it unpacks "
		    "to %llu bytes, its manifest says %.0f; nothing was "
		    "restored", s->b.id,
		    (unsigned long long)s->raw_bytes, raw_expect);
		goto done;
	}
	rc = 0;
done:
	if (in != -1)
		close(in);
	if (out != -1)
		close(out);
	seal_keys_wipe(&keys);
	free(bind);
	free(refused);
	free(local_cause);
	free(dir);
	if (rc == -1)
		source_release(s);
	return rc;
}

/*
 * The target as a restore sees it: the backup role usually may not create
 * databases, so restore_conninfo / restore_password_file stand in for
 * conninfo / password_file when set.  A shallow copy; nothing to free.
 */
static const struct target *
as_restorer(const struct target *t, struct target *copy)
{
	*copy = *t;
	if (t->restore_conninfo != NULL) {
		copy->conninfo = t->restore_conninfo;
		copy->password_file = t->restore_password_file;
	} else if (t->restore_password_file != NULL)
		copy->password_file = t->restore_password_file;
	return copy;
}

void
run_init(struct run *run, const struct config *cfg, const struct target *t,
    const char *id, const struct job_out *o)
{
	memset(run, 0, sizeof(*run));
	run->out = o;
	run->ctx.cfg = cfg;
	run->ctx.target = t;
	run->ctx.id = id;
	run->ctx.progress = ctx_progress;
	run->ctx.log = ctx_log;
	run->ctx.cancelled = &job_cancelled;
	run->ctx.arg = run;
}

/* A media target's newest good run record, checked against id. */
static cJSON *
media_record(const struct config *cfg, const struct target *t,
    const char *id, char **cause)
{
	cJSON *last = NULL, *good = NULL;

	catalog_last_runs(cfg, t->name, &last, &good);
	cJSON_Delete(last);
	if (good == NULL) {
		*cause = xasprintf("no good copy of %s yet", t->name);
		return NULL;
	}
	if (strcmp(id, "latest") != 0 && strcmp(id, json_text(good, "id"))) {
		*cause = xasprintf("only the latest copy of %s is kept at its "
		    "destinations (%s); ask for latest", t->name,
		    json_text(good, "id"));
		cJSON_Delete(good);
		return NULL;
	}
	return good;
}

struct restore_args {
	const char			*id;
	const struct restore_opts	*opts;
};

static cJSON *
restore_body(const struct config *cfg, const char *target, const void *arg,
    const struct job_out *o)
{
	const char *id = ((const struct restore_args *)arg)->id;
	const struct restore_opts *opts =
	    ((const struct restore_args *)arg)->opts;
	const struct target *t = config_target(cfg, target);
	const struct backend *be;
	struct target restorer;
	struct source s;
	struct run run;
	char *cause = NULL;
	cJSON *result, *record = NULL;
	int64_t t0 = mono_ms();
	int r;

	memset(&s, 0, sizeof(s));
	if (t == NULL)
		return result_fail(result_new(target, NULL),
		    "no such target in the configuration");
	be = backend_for(t);
	result = result_new(t->name, be->kind);
	if (be->restore == NULL) {
		cause = xstrdup("this kind of target cannot be restored by "
		    "this version of backupbot");
		goto done;
	}
	if (restore_check(t, opts, &cause) == -1)
		goto done;
	if (t->kind == TARGET_PGBACKREST) {
		/* pgBackRest has the data: id is "latest" or its set label */
		cJSON_AddStringToObject(result, "id", id);
		run_init(&run, cfg, t, id, o);
		say(o, "info", "restoring %s of %s", id, t->name);
		r = be->restore(&run.ctx, NULL, NULL, opts, result, &cause);
	} else if (t->kind == TARGET_MEDIA) {
		if ((record = media_record(cfg, t, id, &cause)) == NULL)
			goto done;
		cJSON_AddStringToObject(result, "id", json_text(record, "id"));
		run_init(&run, cfg, t, json_text(record, "id"), o);
		say(o, "info", "restoring %s", json_text(record, "id"));
		r = be->restore(&run.ctx, record, NULL, opts, result, &cause);
	} else {
		if (source_open(cfg, t, id, 1, o, &s, &cause) == -1)
			goto done;
		cJSON_AddStringToObject(result, "id", s.b.id);
		cJSON_AddStringToObject(result, "blake2b", s.b.blake2b);
		cJSON_AddNumberToObject(result, "bytes", (double)s.b.bytes);
		cJSON_AddNumberToObject(result, "bytes_raw",
		    (double)s.raw_bytes);
		if (s.remote != NULL)
			cJSON_AddStringToObject(result, "fetched_from",
			    s.remote);
		run_init(&run, cfg, as_restorer(t, &restorer), s.b.id, o);
		say(o, "info", "restoring %s", s.b.id);
		r = be->restore(&run.ctx, s.b.manifest, s.raw, opts, result,
		    &cause);
	}
	if (r == 0 && job_cancelled)
		r = -1;
	if (r == 0)
		cJSON_ReplaceItemInObjectCaseSensitive(result, "status",
		    cJSON_CreateString("ok"));
done:
	if (json_str(result, "status") != NULL &&
	    strcmp(json_text(result, "status"), "ok") != 0)
		result_fail(result, cause ? cause : "unknown error");
	cJSON_AddNumberToObject(result, "duration",
	    (double)(mono_ms() - t0) / 1000.0);
	free(cause);
	cJSON_Delete(record);
	source_release(&s);
	return result;
}

cJSON *
restore_run(const struct config *cfg, const char *target, const char *id,
    const struct restore_opts *opts, const struct job_out *o)
{
	struct restore_args a = { id, opts };

	return locked(cfg, target, o, restore_body, &a);
}

cJSON *
job_check(const struct config *cfg, const char *target, const char *id,
    const struct job_out *o)
{
	const struct target *t = config_target(cfg, target);
	const struct backend *be;
	char hash[2 * PIPE_HASHBYTES + 1];
	char *cause = NULL, *path = NULL, *stage = NULL;
	struct backup b;
	uint64_t bytes = 0;
	cJSON *result, *record;
	int fd;

	memset(&b, 0, sizeof(b));
	if (t == NULL)
		return result_fail(result_new(target, NULL),
		    "no such target in the configuration");
	be = backend_for(t);
	result = result_new(t->name, be->kind);
	if (t->kind == TARGET_PGBACKREST) {
		struct run run;

		run_init(&run, cfg, t, id, o);
		if (pgbackrest_job_check(&run.ctx, id, result, &cause) == -1)
			goto fail;
		goto ok;
	}
	if (t->kind == TARGET_MEDIA) {
		if ((record = media_record(cfg, t, id, &cause)) == NULL)
			goto fail;
		cJSON_AddStringToObject(result, "id", json_text(record, "id"));
		cJSON_AddNumberToObject(result, "started",
		    json_num(record, "started"));
		cJSON_AddNumberToObject(result, "bytes",
		    json_num(record, "bytes"));
		cJSON_AddStringToObject(result, "location", "destinations");
		cJSON_Delete(record);
		goto ok;
	}
	if (catalog_get(cfg, t->name, id, &b, &cause) == 0) {
		path = xasprintf("%s/%s/%s", cfg->backup_dir, t->name,
		    b.data_file);
		say(o, "info", "checking the hash of %s", b.id);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
			cause = xasprintf("%s: %s", path, strerror(errno));
			goto fail;
		}
		if (pipe_hash_fd(fd, hash, &bytes, &cause) == -1) {
			close(fd);
			goto fail;
		}
		close(fd);
		if (strcmp(hash, b.blake2b) != 0 || bytes != b.bytes) {
			cause = xasprintf("%s is damaged: its hash or size is "
			    "not the one recorded when it was made", b.id);
			goto fail;
		}
		cJSON_AddStringToObject(result, "location", "local");
	} else {
		/* Not here: the manifest of the first remote that has it. */
		stage = xasprintf("%s/%s/.check.dir", cfg->backup_dir, t->name);
		dir_remove_tree(stage);
		for (size_t i = 0; b.id == NULL && i < t->remotes.n; i++) {
			const struct remote *r = config_remote(cfg,
			    t->remotes.v[i]);
			char *want = strcmp(id, "latest") ? xstrdup(id) :
			    remote_newest(cfg, r, t->name);
			char *mname, *mpath, *text, *why = NULL;
			size_t len;

			if (want == NULL)
				continue;
			mname = xasprintf("%s.json", want);
			mpath = xasprintf("%s/%s", stage, mname);
			if (dir_make(stage, 0700) == 0 && remote_get(cfg, r,
			    t->name, mname, mpath, &why) == 0 &&
			    (text = file_read(mpath, 4 << 20, &len)) != NULL) {
				if (catalog_parse_manifest(text, len, &b,
				    &why) == 0 && (strcmp(b.id, want) != 0 ||
				    strcmp(b.target, t->name) != 0))
					backup_release(&b);
				free(text);
			}
			if (b.id != NULL)
				cJSON_AddItemToObject(result, "location",
				    cJSON_CreateString(r->name));
			free(why);
			free(mname);
			free(mpath);
			free(want);
		}
		dir_remove_tree(stage);
		if (b.id == NULL) {
			if (t->remotes.n > 0) {
				char *c = xasprintf("%s, nor on any remote",
				    cause);

				free(cause);
				cause = c;
			}
			goto fail;
		}
		free(cause);
		cause = NULL;
	}
	{
		struct seal_keys keys;
		struct pipe_seal seal;
		char *bind = NULL;
		int r = -1;

		if (seal_keys_load(cfg, &keys, &cause) == 0)
			r = seal_check(&keys, &b, &seal, &bind, o, &cause);
		if (r == 0)
			cJSON_AddBoolToObject(result, "authenticated",
			    keys.have && seal_state(b.manifest, &keys) ==
			    SEAL_AUTHENTIC);
		seal_keys_wipe(&keys);
		free(bind);
		if (r == -1)
			goto fail;
	}
	cJSON_AddStringToObject(result, "id", b.id);
	cJSON_AddNumberToObject(result, "started", (double)b.started);
	cJSON_AddNumberToObject(result, "bytes", (double)b.bytes);
	cJSON_AddNumberToObject(result, "bytes_raw",
	    json_num(b.manifest, "bytes_raw"));
	cJSON_AddStringToObject(result, "blake2b", b.blake2b);
	if (json_str(b.manifest, "database") != NULL)
		cJSON_AddStringToObject(result, "database",
		    json_str(b.manifest, "database"));
	if (json_str(b.manifest, "mode") != NULL)
		cJSON_AddStringToObject(result, "mode",
		    json_str(b.manifest, "mode"));
	cJSON_AddStringToObject(result, "encryption",
	    json_text(b.manifest, "encryption"));
ok:
	cJSON_ReplaceItemInObjectCaseSensitive(result, "status",
	    cJSON_CreateString("ok"));
	free(path);
	free(stage);
	backup_release(&b);
	return result;
fail:
	result_fail(result, cause ? cause : "unknown error");
	free(cause);
	free(path);
	free(stage);
	backup_release(&b);
	return result;
}

/* Record a drill's outcome where !list and !status read it. */
static void
drill_record(const struct config *cfg, const struct target *t,
    cJSON *manifest, const cJSON *result, const struct job_out *o)
{
	cJSON *d = cJSON_CreateObject();
	const char *st = json_text(result, "status");

	cJSON_AddNumberToObject(d, "at", (double)time(NULL));
	cJSON_AddStringToObject(d, "status", st);
	if (*json_text(result, "error"))
		cJSON_AddStringToObject(d, "error", json_text(result, "error"));
	cJSON_AddNumberToObject(d, "compared", json_num(result, "compared"));
	cJSON_DeleteItemFromObjectCaseSensitive(manifest, "drill");
	cJSON_AddItemToObject(manifest, "drill", d);
	if (config_records_runs(t)) {
		char *path = xasprintf("%s/%s/%s.run.json", cfg->backup_dir,
		    t->name, json_text(manifest, "id"));
		char *text = cJSON_Print(manifest);

		if (file_write_atomic(path, text, strlen(text), 0600) == -1)
			say(o, "warning", "cannot record the drill in %s: %s",
			    path, strerror(errno));
		free(text);
		free(path);
	} else {
		char *cause = NULL;

		if (catalog_write_manifest(cfg, t->name, json_text(manifest,
		    "id"), manifest, &cause) == -1) {
			say(o, "warning", "cannot record the drill: %s", cause);
			free(cause);
		}
	}
}

struct verify_args {
	const char	*id;
	int		 quick;
};

static cJSON *
verify_run(const struct config *cfg, const char *target, const void *arg,
    const struct job_out *o)
{
	const char *id = ((const struct verify_args *)arg)->id;
	int quick = ((const struct verify_args *)arg)->quick;
	const struct target *t = config_target(cfg, target);
	const struct backend *be;
	struct target restorer;
	struct restore_opts opts;
	struct source s;
	struct run run;
	char *cause = NULL;
	cJSON *result, *record = NULL;
	int64_t t0 = mono_ms();
	int r = 0;

	memset(&s, 0, sizeof(s));
	memset(&opts, 0, sizeof(opts));
	opts.drill = 1;
	if (t == NULL)
		return result_fail(result_new(target, NULL),
		    "no such target in the configuration");
	be = backend_for(t);
	result = result_new(target, be->kind);
	if (config_records_runs(t)) {
		if (be->restore == NULL) {
			cause = xstrdup("media copies cannot be verified by "
			    "this version of backupbot");
			goto done;
		}
		if ((record = media_record(cfg, t, id, &cause)) == NULL)
			goto done;
		cJSON_AddStringToObject(result, "id", json_text(record, "id"));
		run_init(&run, cfg, t, json_text(record, "id"), o);
		say(o, "info", "restore drill of %s", json_text(record, "id"));
		r = be->restore(&run.ctx, record, NULL, &opts, result, &cause);
		cJSON_AddTrueToObject(result, "drill");
		goto recorded;
	}
	/* Every byte: hash, authentication, decompression. */
	if (source_open(cfg, t, id, !quick && be->restore != NULL, o, &s,
	    &cause) == -1)
		goto done;
	cJSON_AddStringToObject(result, "id", s.b.id);
	cJSON_AddStringToObject(result, "blake2b", s.b.blake2b);
	cJSON_AddNumberToObject(result, "bytes_raw", (double)s.raw_bytes);
	run_init(&run, cfg, t, s.b.id, o);
	if (!quick && be->restore != NULL) {
		/* The proof: restore into a scratch copy and compare. */
		run_init(&run, cfg, as_restorer(t, &restorer), s.b.id, o);
		say(o, "info", "restore drill of %s", s.b.id);
		r = be->restore(&run.ctx, s.b.manifest, s.raw, &opts, result,
		    &cause);
		cJSON_AddTrueToObject(result, "drill");
		record = cJSON_Duplicate(s.b.manifest, 1);
		goto recorded;
	}
	/* Quick: the tool that restores it can read it. */
	if (be->check_reader != NULL) {
		struct proc p;
		struct tail err;
		char *feed = NULL;
		int fd, status = 0;

		if (be->check_reader(&run.ctx, s.b.manifest, &p, &cause) == -1)
			goto done;
		/* the reader may stop early (it has what it needs): its
		 * status is the verdict, not the feed's */
		fd = open(s.raw, O_RDONLY | O_CLOEXEC);
		feed_reader(&p, fd, PIPE_NONE, NULL, NULL, NULL, &err,
		    &status, &feed);
		free(feed);
		if (fd != -1)
			close(fd);
		if (!proc_ok(status)) {
			char *st = proc_status_text(status);

			cause = xasprintf("the restore tool cannot read the "
			    "backup: it %s: %s", st, tail_text(&err, 5));
			free(st);
			goto done;
		}
	}
	cJSON_ReplaceItemInObjectCaseSensitive(result, "status",
	    cJSON_CreateString("ok"));
	goto done;

recorded:
	if (r == 0 && job_cancelled)
		r = -1;
	if (r == 0)
		cJSON_ReplaceItemInObjectCaseSensitive(result, "status",
		    cJSON_CreateString("ok"));
	else
		result_fail(result, cause ? cause : "unknown error");
	if (!job_cancelled)
		drill_record(cfg, t, record, result, o);
done:
	if (strcmp(json_text(result, "status"), "ok") != 0 &&
	    *json_text(result, "error") == '\0')
		result_fail(result, cause ? cause : "unknown error");
	cJSON_AddNumberToObject(result, "duration",
	    (double)(mono_ms() - t0) / 1000.0);
	free(cause);
	cJSON_Delete(record);
	source_release(&s);
	return result;
}

cJSON *
job_verify(const struct config *cfg, const char *target, const char *id,
    int quick, const struct job_out *o)
{
	struct verify_args a = { id, quick };

	return locked(cfg, target, o, verify_run, &a);
}
