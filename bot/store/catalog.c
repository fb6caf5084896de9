/*
 * catalog.c - backups as files: data + manifest per backup (catalog.h).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "catalog.h"
#include "config.h"
#include "json.h"
#include "lock.h"
#include "log.h"
#include "retention.h"
#include "util.h"

#define MANIFEST_MAX	(4 * 1024 * 1024)
/* How long cleanup waits, in all, for targets other processes hold. */
#define CATALOG_LOCK_GRACE_MS	3000

char *
catalog_new_id(const char *target, time_t t)
{
	char stamp[32];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	return xasprintf("%s-%s", target, stamp);
}

/* Where the timestamp starts: after the last '-' before "YYYYmmddT". */
static const char *
id_stamp(const char *id)
{
	size_t n = strlen(id);

	/* TARGET-YYYYmmddTHHMMSSZ: the stamp is the last 16 characters */
	if (n < 18 || id[n - 17] != '-')
		return NULL;
	return id + n - 16;
}

time_t
catalog_id_time(const char *id)
{
	const char *s = id_stamp(id);
	struct tm tm;
	char *end;

	if (s == NULL)
		return (time_t)-1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y%m%dT%H%M%SZ", &tm);
	if (end == NULL || *end != '\0')
		return (time_t)-1;
	return timegm(&tm);
}

int
catalog_valid_id(const char *s)
{
	size_t n = strlen(s);
	char target[CONFIG_NAME_MAX + 1];

	if (n < 18 || n > CONFIG_NAME_MAX + 17 || id_stamp(s) == NULL)
		return 0;
	memcpy(target, s, n - 17);
	target[n - 17] = '\0';
	if (!config_valid_name(target))
		return 0;
	for (const char *p = id_stamp(s); *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || *p == 'T' || *p == 'Z'))
			return 0;
	return catalog_id_time(s) != (time_t)-1;
}

char *
catalog_dir(const struct config *cfg, const char *target)
{
	return xasprintf("%s/%s", cfg->backup_dir, target);
}

void
backup_release(struct backup *b)
{
	free(b->id);
	free(b->target);
	free(b->kind);
	free(b->data_file);
	free(b->blake2b);
	free(b->status);
	cJSON_Delete(b->manifest);
	memset(b, 0, sizeof(*b));
}

void
catalog_free(struct backup *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		backup_release(&b[i]);
	free(b);
}

int
catalog_parse_manifest(const char *text, size_t len, struct backup *out,
    char **cause)
{
	double started, ended, bytes;
	const char *id, *target, *kind, *file, *hash, *status;
	cJSON *j;

	memset(out, 0, sizeof(*out));
	*cause = NULL;
	j = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(j)) {
		*cause = xstrdup("not a JSON object");
		cJSON_Delete(j);
		return -1;
	}
	id = json_str(j, "id");
	target = json_str(j, "target");
	kind = json_str(j, "kind");
	file = json_str(j, "file");
	hash = json_str(j, "blake2b");
	status = json_str(j, "status");
	if (id == NULL || !catalog_valid_id(id) || target == NULL ||
	    !config_valid_name(target) || kind == NULL || file == NULL ||
	    hash == NULL || strlen(hash) != 64 || status == NULL ||
	    json_get_num(j, "started", &started) == -1 ||
	    json_get_num(j, "ended", &ended) == -1 || json_get_num(j, "bytes", &bytes) == -1 ||
	    bytes < 0 || bytes > 1e18 || started < 0 || ended < started ||
	    ended > 1e12) {
		*cause = xstrdup("required fields missing or malformed");
		cJSON_Delete(j);
		return -1;
	}
	/* The data file must be a plain name in the same directory. */
	if (strchr(file, '/') != NULL || file[0] == '.' ||
	    strncmp(file, id, strlen(id)) != 0) {
		*cause = xasprintf("data file name '%.80s' is not ID.*", file);
		cJSON_Delete(j);
		return -1;
	}
	out->id = xstrdup(id);
	out->target = xstrdup(target);
	out->kind = xstrdup(kind);
	out->data_file = xstrdup(file);
	out->blake2b = xstrdup(hash);
	out->status = xstrdup(status);
	out->started = (time_t)started;
	out->ended = (time_t)ended;
	out->bytes = (uint64_t)bytes;
	out->manifest = j;
	return 0;
}

static int
load_manifest(const char *path, struct backup *b, char **cause)
{
	size_t len;
	char *text, *why = NULL;
	int r;

	if ((text = file_read(path, MANIFEST_MAX, &len)) == NULL) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	r = catalog_parse_manifest(text, len, b, &why);
	free(text);
	if (r == -1) {
		*cause = xasprintf("%s: %s", path, why);
		free(why);
	}
	return r;
}

static int
by_id_desc(const void *a, const void *b)
{
	return strcmp(((const struct backup *)b)->id,
	    ((const struct backup *)a)->id);
}

size_t
catalog_list(const struct config *cfg, const char *target,
    struct backup **out)
{
	char *dir = catalog_dir(cfg, target);
	struct backup *list = NULL;
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	*out = NULL;
	if ((d = opendir(dir)) == NULL) {
		free(dir);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char *path, *cause = NULL, *data;
		struct backup b;
		struct stat st;

		/* *.run.json: records of media runs, not backups */
		if (de->d_name[0] == '.' || len < 6 ||
		    strcmp(de->d_name + len - 5, ".json") != 0 ||
		    (len > 9 && !strcmp(de->d_name + len - 9, ".run.json")))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (load_manifest(path, &b, &cause) == -1) {
			log_warnx("catalog: %s (skipped)", cause);
			free(cause);
			free(path);
			continue;
		}
		free(path);
		data = xasprintf("%s/%s", dir, b.data_file);
		if (strcmp(b.target, target) != 0 || strncmp(de->d_name, b.id,
		    strlen(b.id)) != 0 || stat(data, &st) == -1) {
			log_warnx("catalog: %s/%s: %s (skipped)", dir,
			    de->d_name, strcmp(b.target, target) != 0 ?
			    "manifest of another target" : "data file missing");
			backup_release(&b);
			free(data);
			continue;
		}
		free(data);
		list = xrealloc(list, (n + 1) * sizeof(*list));
		list[n++] = b;
	}
	closedir(d);
	free(dir);
	if (n > 1)
		qsort(list, n, sizeof(*list), by_id_desc);
	*out = list;
	return n;
}

int
catalog_get(const struct config *cfg, const char *target, const char *id,
    struct backup *out, char **cause)
{
	struct backup *list;
	size_t n = catalog_list(cfg, target, &list);

	*cause = NULL;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(id, "latest") ? i == 0 : !strcmp(list[i].id, id)) {
			*out = list[i];
			memset(&list[i], 0, sizeof(list[i]));
			catalog_free(list, n);
			return 0;
		}
	}
	catalog_free(list, n);
	if (!strcmp(id, "latest"))
		*cause = xasprintf("no good backup of %s yet", target);
	else
		*cause = xasprintf("no backup %s of %s in the catalog", id,
		    target);
	return -1;
}

void
catalog_last_runs(const struct config *cfg, const char *target, cJSON **last,
    cJSON **last_good)
{
	char *dir = catalog_dir(cfg, target), *best = NULL, *best_good = NULL;
	struct dirent *de;
	DIR *d;

	*last = *last_good = NULL;
	if ((d = opendir(dir)) == NULL) {
		free(dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char *path, *text;
		cJSON *j;
		const char *st;

		if (de->d_name[0] == '.' || len < 10 ||
		    strcmp(de->d_name + len - 9, ".run.json") != 0)
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		text = file_read(path, MANIFEST_MAX, NULL);
		free(path);
		if (text == NULL || (j = cJSON_Parse(text)) == NULL) {
			free(text);
			continue;
		}
		free(text);
		st = json_text(j, "status");
		/* ids sort by time: keep the greatest name */
		if (best == NULL || strcmp(de->d_name, best) > 0) {
			free(best);
			best = xstrdup(de->d_name);
			cJSON_Delete(*last);
			*last = cJSON_Duplicate(j, 1);
		}
		if ((!strcmp(st, "ok") || !strcmp(st, "partial")) &&
		    (best_good == NULL || strcmp(de->d_name, best_good) > 0)) {
			free(best_good);
			best_good = xstrdup(de->d_name);
			cJSON_Delete(*last_good);
			*last_good = cJSON_Duplicate(j, 1);
		}
		cJSON_Delete(j);
	}
	closedir(d);
	free(best);
	free(best_good);
	free(dir);
}

struct keep_item *
catalog_keep(const struct target *t, const struct backup *list, size_t n)
{
	struct keep_item *items = xcalloc(n + 1, sizeof(*items));

	for (size_t i = 0; i < n; i++) {
		items[i].id = list[i].id;
		items[i].when = list[i].started;
		items[i].good = 1;
	}
	keep_apply(&t->keep, items, n);
	return items;
}

int
catalog_write_manifest(const struct config *cfg, const char *target,
    const char *id, const cJSON *manifest, char **cause)
{
	char *dir = catalog_dir(cfg, target);
	char *path = xasprintf("%s/%s.json", dir, id);
	char *text = cJSON_Print(manifest);
	int r;

	*cause = NULL;
	r = file_write_atomic(path, text, strlen(text), 0600);
	if (r == -1)
		*cause = xasprintf("cannot write the manifest %s: %s", path,
		    strerror(errno));
	free(text);
	free(path);
	free(dir);
	return r;
}

int
catalog_clean_partials(const struct config *cfg, const char *only)
{
	DIR *top, *d;
	struct dirent *te, *de;
	int removed = 0, lock;
	int64_t grace_end = mono_ms() + CATALOG_LOCK_GRACE_MS;

	if ((top = opendir(cfg->backup_dir)) == NULL)
		return 0;
	while ((te = readdir(top)) != NULL) {
		char *dir;

		if (te->d_name[0] == '.' || !config_valid_name(te->d_name) ||
		    (only != NULL && strcmp(only, te->d_name) != 0))
			continue;
		/* Someone holds it: its partial files are work in progress
		 * (a job of a daemon killed a moment ago may still be
		 * finishing: it gets until the grace period ends). */
		while ((lock = lock_try(cfg, te->d_name)) == -1 &&
		    mono_ms() < grace_end)
			usleep(50 * 1000);
		if (lock == -1) {
			log_info("%s is in use by another backupbot process: "
			    "its partial files are left alone", te->d_name);
			continue;
		}
		dir = xasprintf("%s/%s", cfg->backup_dir, te->d_name);
		if ((d = opendir(dir)) == NULL) {
			lock_release(lock);
			free(dir);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			size_t n = strlen(de->d_name);
			char *path;

			/* staging directory of a directory-format dump */
			if (de->d_name[0] == '.' && n > 5 &&
			    !strcmp(de->d_name + n - 4, ".dir")) {
				path = xasprintf("%s/%s", dir, de->d_name);
				if (dir_remove_tree(path) == 0) {
					log_info("removed %s, left by an "
					    "interrupted job", path);
					removed++;
				}
				free(path);
				continue;
			}
			if (!(n > 8 && !strcmp(de->d_name + n - 8,
			    ".partial")) && !(n > 4 &&
			    !strcmp(de->d_name + n - 4, ".tmp")))
				continue;
			path = xasprintf("%s/%s", dir, de->d_name);
			if (unlink(path) == 0) {
				log_info("removed %s, left by an interrupted "
				    "job", path);
				removed++;
			}
			free(path);
		}
		closedir(d);
		lock_release(lock);
		free(dir);
	}
	closedir(top);
	return removed;
}

int
catalog_last_drill(const struct config *cfg, const struct target *t,
    time_t *at, int *ok, char **id)
{
	struct backup *list;
	size_t n;
	const cJSON *best = NULL, *best_m = NULL;
	cJSON *last = NULL, *good = NULL;

	*id = NULL;
	if (config_records_runs(t)) {
		const cJSON *d;

		catalog_last_runs(cfg, t->name, &last, &good);
		d = good != NULL ? cJSON_GetObjectItemCaseSensitive(good,
		    "drill") : NULL;
		if (d != NULL) {
			*at = (time_t)json_num(d, "at");
			*ok = !strcmp(json_text(d, "status"), "ok");
			*id = xstrdup(json_text(good, "id"));
		}
		cJSON_Delete(last);
		cJSON_Delete(good);
		return *id != NULL ? 0 : -1;
	}
	n = catalog_list(cfg, t->name, &list);
	for (size_t i = 0; i < n; i++) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(
		    list[i].manifest, "drill");

		if (d != NULL && (best == NULL ||
		    json_num(d, "at") > json_num(best, "at"))) {
			best = d;
			best_m = list[i].manifest;
		}
	}
	if (best != NULL) {
		*at = (time_t)json_num(best, "at");
		*ok = !strcmp(json_text(best, "status"), "ok");
		*id = xstrdup(json_text(best_m, "id"));
	}
	catalog_free(list, n);
	return *id != NULL ? 0 : -1;
}
