/*
 * child.c - `backupbot job KIND ...`, the daemon's child (job.h): runs one
 * job and writes its progress, log lines and result to stdout as JSON
 * lines for the supervisor; SIGTERM cancels it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend.h"
#include "config.h"
#include "job.h"
#include "job_parts.h"
#include "json.h"
#include "restore.h"
#include "script.h"
#include "util.h"

/* ---- the daemon's child: JSON lines on stdout ------------------------- */

static void
emit(cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);

	fprintf(stdout, "%s\n", s);
	fflush(stdout);
	free(s);
	cJSON_Delete(j);
}

static void
json_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	static int64_t last;
	int64_t now = mono_ms();
	cJSON *j;

	(void)arg;
	if (now - last < 500 && done != 0 && done != total)
		return;
	last = now;
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "event", "progress");
	cJSON_AddStringToObject(j, "phase", phase);
	cJSON_AddNumberToObject(j, "done", (double)done);
	cJSON_AddNumberToObject(j, "total", (double)total);
	emit(j);
}

static void
json_log(void *arg, const char *level, const char *msg)
{
	cJSON *j = cJSON_CreateObject();

	(void)arg;
	cJSON_AddStringToObject(j, "event", "log");
	cJSON_AddStringToObject(j, "level", level);
	cJSON_AddStringToObject(j, "msg", msg);
	emit(j);
}

/*
 * The lists of a result the daemon posts (a drill's differing tables, a
 * retention's removed ids, warnings): the first LIST_SHOWN, then "… and N
 * more", so the report stays readable and one line stays small.
 */
#define LIST_SHOWN	100

static void
cap_lists(cJSON *result)
{
	static const char *const lists[] = {
		"differences", "notes", "warnings", "removed", NULL
	};

	for (size_t i = 0; lists[i] != NULL; i++) {
		cJSON *a = cJSON_GetObjectItemCaseSensitive(result, lists[i]);
		int n = cJSON_GetArraySize(a);

		if (!cJSON_IsArray(a) || n <= LIST_SHOWN + 1)
			continue;
		while (cJSON_GetArraySize(a) > LIST_SHOWN)
			cJSON_DeleteItemFromArray(a, LIST_SHOWN);
		json_addf(a, "… and %d more", n - LIST_SHOWN);
	}
}

static void
on_cancel(int sig)
{
	(void)sig;
	job_cancelled = 1;
}

int
job_main(const struct config *cfg, int argc, char **argv)
{
	struct job_out o = { json_progress, json_log, NULL };
	struct sigaction sa;
	cJSON *result, *line;
	const char *status;
	int ok;

	/* who started this job, for the operators' scripts (script.h) */
	if (getenv("BACKUPBOT_TRIGGER") != NULL &&
	    (!strcmp(getenv("BACKUPBOT_TRIGGER"), "schedule") ||
	    !strcmp(getenv("BACKUPBOT_TRIGGER"), "chat")))
		script_trigger = getenv("BACKUPBOT_TRIGGER");
	if (getenv("BACKUPBOT_JOB") != NULL &&
	    strspn(getenv("BACKUPBOT_JOB"), "0123456789") ==
	    strlen(getenv("BACKUPBOT_JOB")) && *getenv("BACKUPBOT_JOB"))
		script_job = getenv("BACKUPBOT_JOB");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_cancel;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((argc == 2 || argc == 3) && !strcmp(argv[0], "backup"))
		result = job_backup_type(cfg, argv[1], argc == 3 ? argv[2] :
		    NULL, &o);
	else if ((argc == 3 || argc == 4) && !strcmp(argv[0], "verify") &&
	    (argc == 3 || !strcmp(argv[3], "--quick")))
		result = job_verify(cfg, argv[1], argv[2], argc == 4, &o);
	else if ((argc == 1 || argc == 2) && !strcmp(argv[0], "probe"))
		result = job_probe(cfg, argc == 2 ? argv[1] : NULL, &o);
	else if (argc == 3 && !strcmp(argv[0], "check"))
		result = job_check(cfg, argv[1], argv[2], &o);
	else if (argc >= 3 && !strcmp(argv[0], "restore")) {
		struct restore_opts ro;

		if (restore_parse_args(argc - 3, argv + 3, &ro) == -1) {
			fprintf(stderr, "backupbot job restore: bad options\n");
			return 2;
		}
		result = job_restore(cfg, argv[1], argv[2], &ro, &o);
	} else {
		fprintf(stderr, "usage: backupbot job backup TARGET | "
		    "verify TARGET ID [--quick] | restore TARGET ID "
		    "[OPTIONS]\n");
		return 2;
	}
	status = json_str(result, "status");
	ok = status != NULL && (!strcmp(status, "ok") ||
	    !strcmp(status, "partial"));
	cap_lists(result);
	line = cJSON_CreateObject();
	cJSON_AddStringToObject(line, "event", "result");
	cJSON_AddItemToObject(line, "result", result);
	emit(line);
	return ok ? 0 : 1;
}
