/*
 * hooks.c - a target's backup and restore between its hooks (job.h):
 * pre_hook, post_hook, on_failure_hook, pre_restore_hook and
 * post_restore_hook, the operator's own programs from bot.conf.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "config.h"
#include "job.h"
#include "job_parts.h"
#include "json.h"
#include "script.h"
#include "util.h"

/* ---- hooks ------------------------------------------------------------ */

static void
result_warn(cJSON *result, const char *text)
{
	cJSON *w = cJSON_GetObjectItemCaseSensitive(result, "warnings");

	if (w == NULL)
		w = cJSON_AddArrayToObject(result, "warnings");
	cJSON_AddItemToArray(w, cJSON_CreateString(text));
}

/* The backup's data file, for BACKUPBOT_FILE (NULL when none). */
static char *
result_file(const struct config *cfg, const struct target *t,
    const cJSON *result)
{
	const char *f = json_str(result, "file");

	return f == NULL ? NULL : xasprintf("%s/%s/%s", cfg->backup_dir,
	    t->name, f);
}

/*
 * Run a hook; on failure say so in the job's log.  0 or -1 with *cause
 * (which hook, how it ended, its last lines).
 */
static int
hook(const struct config *cfg, const struct target *t, const char *which,
    char *const *argv, const char *id, const char *status, const char *file,
    const struct job_out *o, char **cause)
{
	/* what runs after the job (maintenance mode off) runs even after
	   a cancel, within its hook_timeout */
	static volatile sig_atomic_t never;

	if (argv == NULL)
		return 0;
	say(o, "info", "running %s %s", which, argv[0]);
	if (script_hook(cfg, t, which, argv, id, status, file,
	    str_startswith(which, "pre_") ? &job_cancelled : &never, NULL,
	    cause) == 0)
		return 0;
	say(o, "warning", "%s", *cause);
	return -1;
}

/*
 * A backup between its hooks: a failing pre_hook fails the job before
 * anything runs; a failing post_hook makes it partial; on_failure_hook
 * runs after any failure (a failed pre_hook included).
 */
cJSON *
job_backup(const struct config *cfg, const char *target,
    const struct job_out *o)
{
	return job_backup_type(cfg, target, NULL, o);
}

cJSON *
job_backup_type(const struct config *cfg, const char *target,
    const char *type, const struct job_out *o)
{
	const struct target *t = config_target(cfg, target);
	cJSON *result;
	char *cause = NULL, *file;
	const char *status;

	if (t == NULL)
		return backup_run(cfg, target, type, o);
	if (hook(cfg, t, "pre_hook", t->pre_hook, NULL, "started", NULL, o,
	    &cause) == -1) {
		result = result_new(t->name, backend_for(t)->kind);
		result_fail(result, job_cancelled ? "cancelled" : cause);
		cJSON_AddNumberToObject(result, "duration", 0);
		free(cause);
		cause = NULL;
	} else
		result = backup_run(cfg, target, type, o);
	status = json_text(result, "status");
	file = result_file(cfg, t, result);
	if (!strcmp(status, "ok") || !strcmp(status, "partial")) {
		if (hook(cfg, t, "post_hook", t->post_hook, json_str(result,
		    "id"), status, file, o, &cause) == -1) {
			char *w = xasprintf("the backup is good, but %s",
			    cause);

			result_warn(result, w);
			free(w);
			cJSON_ReplaceItemInObjectCaseSensitive(result,
			    "status", cJSON_CreateString("partial"));
		}
	} else if (hook(cfg, t, "on_failure_hook", t->on_failure_hook,
	    json_str(result, "id"), status, file, o, &cause) == -1)
		result_warn(result, cause);
	free(cause);
	free(file);
	return result;
}

/*
 * A restore between its hooks (maintenance mode on, off): a failing
 * pre_restore_hook stops it before anything is touched;
 * post_restore_hook runs whatever the outcome, and its failure is noted.
 */
cJSON *
job_restore(const struct config *cfg, const char *target, const char *id,
    const struct restore_opts *opts, const struct job_out *o)
{
	const struct target *t = config_target(cfg, target);
	cJSON *result, *notes;
	char *cause = NULL, *msg;

	if (t == NULL || opts->drill)
		return restore_run(cfg, target, id, opts, o);
	if (hook(cfg, t, "pre_restore_hook", t->pre_restore_hook, id,
	    "started", NULL, o, &cause) == -1) {
		result = result_new(t->name, backend_for(t)->kind);
		msg = xasprintf("%s; nothing was restored", cause);
		result_fail(result, msg);
		cJSON_AddNumberToObject(result, "duration", 0);
		free(msg);
		free(cause);
		cause = NULL;
	} else
		result = restore_run(cfg, target, id, opts, o);
	if (hook(cfg, t, "post_restore_hook", t->post_restore_hook,
	    json_str(result, "id") ? json_str(result, "id") : id,
	    json_text(result, "status"), NULL, o, &cause) == -1) {
		if ((notes = cJSON_GetObjectItemCaseSensitive(result,
		    "notes")) == NULL)
			notes = cJSON_AddArrayToObject(result, "notes");
		msg = xasprintf("⚠️ %s", cause);
		cJSON_AddItemToArray(notes, cJSON_CreateString(msg));
		free(msg);
	}
	free(cause);
	return result;
}
