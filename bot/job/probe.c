/*
 * probe.c - the health probe behind !status (job.h): each target's
 * backend probe, each remote listed once, and the free space in
 * backup_dir.  Facts only; the daemon decides what they mean.
 */
#include <sys/statvfs.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "config.h"
#include "job.h"
#include "job_parts.h"
#include "catalog.h"
#include "remote.h"
#include "seal.h"

/*
 * How many of t's backups do not authenticate with the key (facts
 * "unauthenticated"); nothing without a key, which !status says itself.
 */
static void
probe_auth(const struct config *cfg, const struct target *t, cJSON *facts)
{
	struct seal_keys keys;
	struct backup *list;
	char *cause = NULL;
	size_t n, bad = 0;

	if (t->kind == TARGET_MEDIA)
		return;
	if (seal_keys_load(cfg, &keys, &cause) == -1) {
		cJSON_AddStringToObject(facts, "key_error", cause);
		free(cause);
		return;
	}
	if (!keys.have)
		return;
	n = catalog_list(cfg, t->name, &list);
	for (size_t i = 0; i < n; i++)
		if (seal_state(list[i].manifest, &keys) != SEAL_AUTHENTIC)
			bad++;
	catalog_free(list, n);
	seal_keys_wipe(&keys);
	cJSON_AddNumberToObject(facts, "unauthenticated", (double)bad);
}

cJSON *
job_probe(const struct config *cfg, const char *only, const struct job_out *o)
{
	cJSON *result = cJSON_CreateObject(), *targets, *remotes, *disk;
	struct statvfs sv;

	cJSON_AddStringToObject(result, "status", "ok");
	targets = cJSON_AddObjectToObject(result, "targets");
	remotes = cJSON_AddObjectToObject(result, "remotes");
	for (size_t i = 0; i < cfg->ntargets && !job_cancelled; i++) {
		const struct target *t = &cfg->targets[i];
		const struct backend *be = backend_for(t);
		cJSON *facts = cJSON_CreateObject();
		char *cause = NULL;
		struct run run;

		if (only != NULL && strcmp(only, t->name) != 0) {
			cJSON_Delete(facts);
			continue;
		}
		run_init(&run, cfg, t, NULL, o);
		if (be->probe != NULL && be->probe(&run.ctx, facts,
		    &cause) == -1) {
			cJSON_DeleteItemFromObjectCaseSensitive(facts, "error");
			cJSON_AddStringToObject(facts, "error", cause ? cause :
			    "unknown error");
		}
		free(cause);
		cause = NULL;
		probe_auth(cfg, t, facts);
		cJSON_AddItemToObject(targets, t->name, facts);
		/* each remote once, checked with the first target using it */
		for (size_t k = 0; k < t->remotes.n; k++) {
			const struct remote *r = config_remote(cfg,
			    t->remotes.v[k]);
			cJSON *st;
			char **names = NULL;
			long n;

			if (r == NULL || cJSON_GetObjectItemCaseSensitive(
			    remotes, r->name) != NULL)
				continue;
			st = cJSON_AddObjectToObject(remotes, r->name);
			n = remote_list(cfg, r, t->name, &names, &cause);
			if (n == -1) {
				cJSON_AddFalseToObject(st, "reachable");
				cJSON_AddStringToObject(st, "error", cause);
				free(cause);
				cause = NULL;
				continue;
			}
			cJSON_AddTrueToObject(st, "reachable");
			cJSON_AddNumberToObject(st, "files", (double)n);
			cJSON_AddStringToObject(st, "checked_with", t->name);
			for (long x = 0; x < n; x++)
				free(names[x]);
			free(names);
		}
	}
	disk = cJSON_AddObjectToObject(result, "disk");
	cJSON_AddStringToObject(disk, "path", cfg->backup_dir);
	if (statvfs(cfg->backup_dir, &sv) == 0) {
		cJSON_AddNumberToObject(disk, "free",
		    (double)sv.f_bavail * (double)sv.f_frsize);
		cJSON_AddNumberToObject(disk, "total",
		    (double)sv.f_blocks * (double)sv.f_frsize);
	} else
		cJSON_AddStringToObject(disk, "error", strerror(errno));
	return result;
}
