/*
 * cli.c - backupbot backup/list/verify/keygen/catalog (see cli.h).
 */
#include <sys/stat.h>

#include <errno.h>
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
#include "cli.h"
#include "config.h"
#include "human.h"
#include "json.h"
#include "lock.h"
#include "job.h"
#include "pgbackrest.h"
#include "pipeline.h"
#include "remote.h"
#include "restore.h"
#include "retention.h"
#include "seal.h"
#include "util.h"

/*
 * Take the options every command that touches backups shares out of argv:
 * --insecure-unauthenticated (job_insecure) and --no-wait (job_no_wait).
 * Only here, on the command line: `backupbot job` (the daemon's child,
 * so chat) never parses them.
 */
static void
shared_opts(int *argc, char **argv)
{
	int k = 0;

	for (int i = 0; i < *argc; i++) {
		if (!strcmp(argv[i], "--insecure-unauthenticated"))
			job_insecure = 1;
		else if (!strcmp(argv[i], "--no-wait"))
			job_no_wait = 1;
		else
			argv[k++] = argv[i];
	}
	*argc = k;
}

/* ---- terminal reporting ---------------------------------------------- */

struct term {
	int	 tty;
	int64_t	 start;
	int64_t	 last;
	int	 drawn;
};

static void
term_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	struct term *t = arg;
	int64_t now = mono_ms();
	double secs = (now - t->start) / 1000.0, rate;
	char d[32], r[32];
	int width = 30, fill;

	if (!t->tty || now - t->last < 200)
		return;
	t->last = now;
	rate = secs > 0 ? done / secs : 0;
	human_size(d, sizeof(d), (double)done);
	human_size(r, sizeof(r), rate);
	if (total > 0) {
		double f = (double)done / (double)total;

		if (f > 1)
			f = 1;
		fill = (int)(f * width);
		fprintf(stderr, "\r%-8.8s [%.*s%*s] %3.0f%% %s %s/s ", phase,
		    fill, "##############################", width - fill, "",
		    f * 100, d, r);
	} else
		fprintf(stderr, "\r%-8.8s %s %s/s            ", phase, d, r);
	t->drawn = 1;
}

static void
term_log(void *arg, const char *level, const char *msg)
{
	struct term *t = arg;

	if (t->drawn) {
		fputc('\n', stderr);
		t->drawn = 0;
	}
	fprintf(stderr, "%s%s\n", strcmp(level, "info") ? "warning: " : "",
	    msg);
}

static void
on_sigint(int sig)
{
	(void)sig;
	job_cancelled = 1;
}

static void
catch_interrupts(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* One line per result, as a person reads it. */
static void
print_result(const cJSON *r)
{
	const char *status = json_text(r, "status");
	const cJSON *rem = cJSON_GetObjectItemCaseSensitive(r, "remotes");
	const cJSON *removed = cJSON_GetObjectItemCaseSensitive(r, "removed");
	const cJSON *dests = cJSON_GetObjectItemCaseSensitive(r,
	    "destinations");
	const cJSON *it;
	char size[32], dur[32];

	human_size(size, sizeof(size), json_num(r, "bytes"));
	human_duration(dur, sizeof(dur), json_num(r, "duration"));
	if (cJSON_GetObjectItemCaseSensitive(r, "repos") != NULL &&
	    (!strcmp(status, "ok") || !strcmp(status, "partial")))
		printf("%s %s: %s, %s backup, %s in %s\n", !strcmp(status, "ok") ?
		    "ok" : "PARTIAL", json_text(r, "target"), json_text(r, "id"),
		    json_text(r, "type"), size, dur);
	else if (dests != NULL && (!strcmp(status, "ok") ||
	    !strcmp(status, "partial"))) {
		/* a media sync: no file of ours, counts per destination */
		printf("%s %s: %s, %.0f file%s (%s) copied, %.0f deleted in "
		    "%s\n", !strcmp(status, "ok") ? "ok" : "PARTIAL",
		    json_text(r, "target"), json_text(r, "id"),
		    json_num(r, "transferred"),
		    json_num(r, "transferred") == 1 ? "" : "s", size,
		    json_num(r, "deleted"), dur);
	} else if ((!strcmp(status, "ok") || !strcmp(status, "partial")) &&
	    json_str(r, "exit") != NULL && json_str(r, "file") == NULL) {
		/* a script run (output = log) */
		printf("%s %s: %s, %s in %s\n", !strcmp(status, "ok") ? "ok" :
		    "PARTIAL", json_text(r, "target"), json_text(r, "id"),
		    json_text(r, "exit"), dur);
	} else if (!strcmp(status, "ok") || !strcmp(status, "partial")) {
		printf("%s %s: %s, %s in %s, blake2b %.16s…\n",
		    !strcmp(status, "ok") ? "ok" : "PARTIAL", json_text(r, "target"),
		    json_text(r, "id"), size, dur, json_text(r, "blake2b"));
	} else
		printf("%s %s: %s\n", !strcmp(status, "cancelled") ?
		    "CANCELLED" : "FAILED", json_text(r, "target"),
		    json_text(r, "error"));
	cJSON_ArrayForEach(it, dests)
		printf("  destination %s: %s%s%s\n", it->string,
		    json_text(it, "status"), *json_text(it, "error") ? ": " : "",
		    json_text(it, "error"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "repos"))
		printf("  %s: %s %s%s%s\n", it->string, json_text(it, "status"),
		    json_text(it, "label"), *json_text(it, "error") ? ": " : "",
		    json_text(it, "error"));
	cJSON_ArrayForEach(it, rem)
		printf("  remote %s: %s%s%s\n", it->string, json_text(it, "status"),
		    *json_text(it, "error") ? ": " : "", json_text(it, "error"));
	cJSON_ArrayForEach(it, removed)
		printf("  retention removed %s\n", it->valuestring);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "warnings"))
		printf("  warning: %s\n", cJSON_IsString(it) ?
		    it->valuestring : "?");
	if (*json_text(r, "output"))
		printf("  output (last lines):\n%s\n", json_text(r, "output"));
	if (*json_text(r, "log"))
		printf("  full output in %s\n", json_text(r, "log"));
}

/* "  timings: setup 1 ms, prepare 12 ms, ..." of a backup's result. */
static void
print_timings(const cJSON *r)
{
	const cJSON *it;
	const char *sep = "  timings (ms):";

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "timings")) {
		if (!cJSON_IsNumber(it))
			continue;
		printf("%s %s %.0f", sep, it->string, it->valuedouble);
		sep = ",";
	}
	if (*sep == ',')
		putchar('\n');
}

int
cli_backup(const struct config *cfg, int argc, char **argv)
{
	struct term t = { isatty(2), mono_ms(), 0, 0 };
	struct job_out o = { term_progress, term_log, &t };
	int failed = 0, matched = 0, timings = 0, k = 0;

	shared_opts(&argc, argv);
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--timings"))
			timings = 1;
		else
			argv[k++] = argv[i];
	}
	argc = k;
	if (argc != 1 && (argc != 2 || !pgbackrest_valid_type(argv[1]))) {
		fprintf(stderr, "usage: backupbot backup TARGET|KIND|all "
		    "[full|diff|incr] [--no-wait] [--timings]\n");
		return 2;
	}
	catch_interrupts();
	for (size_t i = 0; i < cfg->ntargets && !job_cancelled; i++) {
		const struct target *tg = &cfg->targets[i];
		const char *status;
		cJSON *r;

		if (strcmp(argv[0], "all") != 0 &&
		    strcmp(argv[0], tg->name) != 0 &&
		    strcmp(argv[0], config_kind_name(tg->kind)) != 0)
			continue;
		matched++;
		t.start = mono_ms();
		r = job_backup_type(cfg, tg->name, argc == 2 ? argv[1] : NULL,
		    &o);
		if (t.drawn) {
			fputc('\n', stderr);
			t.drawn = 0;
		}
		print_result(r);
		if (timings)
			print_timings(r);
		status = json_text(r, "status");
		if (strcmp(status, "ok") != 0)
			failed++;
		cJSON_Delete(r);
	}
	if (matched == 0) {
		fprintf(stderr, "backupbot: no target '%s' in %s\n", argv[0],
		    cfg->path);
		return 2;
	}
	return failed ? 1 : 0;
}

int
cli_list(const struct config *cfg, int argc, char **argv)
{
	const char *only = NULL;
	int json = 0;
	cJSON *all = cJSON_CreateArray();
	time_t now = time(NULL);
	struct seal_keys keys;
	char *kcause = NULL;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (only == NULL && argv[i][0] != '-')
			only = argv[i];
		else {
			fprintf(stderr, "usage: backupbot list [TARGET] "
			    "[--json]\n");
			cJSON_Delete(all);
			return 2;
		}
	}
	if (only != NULL && config_target(cfg, only) == NULL) {
		fprintf(stderr, "backupbot: no target '%s' in %s\n", only,
		    cfg->path);
		cJSON_Delete(all);
		return 2;
	}
	/* Without a readable key, nothing can be said authenticated. */
	if (seal_keys_load(cfg, &keys, &kcause) == -1) {
		fprintf(stderr, "backupbot: warning: %s\n", kcause);
		free(kcause);
	}
	if (!json)
		printf("%-36s %6s %10s  %-14s %s\n", "ID", "AGE", "SIZE",
		    "REMOTES", "KEPT AS");
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct target *t = &cfg->targets[i];
		struct backup *list;
		struct keep_item *items;
		size_t n;

		if (only != NULL && strcmp(only, t->name) != 0)
			continue;
		n = catalog_list(cfg, t->name, &list);
		items = catalog_keep(t, list, n);
		for (size_t k = 0; k < n; k++) {
			const cJSON *rem = cJSON_GetObjectItemCaseSensitive(
			    list[k].manifest, "remotes"), *it;
			char age[16], size[16], remotes[128] = "";
			size_t rl = 0;
			int authentic = keys.have && seal_state(
			    list[k].manifest, &keys) == SEAL_AUTHENTIC;

			cJSON_ArrayForEach(it, rem) {
				int ok = !strcmp(json_text(it, "status"), "ok");

				rl += (size_t)snprintf(remotes + rl,
				    rl < sizeof(remotes) ? sizeof(remotes) - rl
				    : 0, "%s%s%s", rl ? "," : "", it->string,
				    ok ? "✓" : "✗");
				if (rl >= sizeof(remotes))
					rl = sizeof(remotes) - 1;
			}
			if (json) {
				cJSON *e = cJSON_Duplicate(list[k].manifest, 1);

				cJSON_AddStringToObject(e, "kept_as",
				    t->keep.set ? items[k].reasons : "all");
				cJSON_AddBoolToObject(e, "authenticated",
				    authentic);
				cJSON_AddItemToArray(all, e);
				continue;
			}
			human_age(age, sizeof(age), difftime(now,
			    list[k].started));
			human_size(size, sizeof(size), (double)list[k].bytes);
			printf("%-36s %6s %10s  %-14s %s%s\n", list[k].id, age,
			    size, remotes[0] ? remotes : "-", t->keep.set ?
			    items[k].reasons : "all (no keep policy)",
			    keys.have && !authentic ? "  UNAUTHENTICATED" : "");
		}
		free(items);
		catalog_free(list, n);
	}
	if (json) {
		char *s = cJSON_Print(all);

		printf("%s\n", s);
		free(s);
	}
	seal_keys_wipe(&keys);
	cJSON_Delete(all);
	return 0;
}

/* What a restore or drill did: into, comparison, notes. */
static void
print_restore(const cJSON *r, const char *what)
{
	const cJSON *it;
	char dur[32];
	int ok = !strcmp(json_text(r, "status"), "ok");

	human_duration(dur, sizeof(dur), json_num(r, "duration"));
	if (ok)
		printf("ok %s: %s: %s%s%s, good, in %s", json_text(r, "target"),
		    json_text(r, "id"), what, *json_text(r, "into") ?
		    " into " : "", json_text(r, "into"), dur);
	else
		printf("FAILED %s: %s%s%s: %s", json_text(r, "target"),
		    json_text(r, "id"), *json_text(r, "id") ? ": " : "", what,
		    json_text(r, "error"));
	if (json_num(r, "compared") > 0)
		printf(" (%.0f compared with the manifest)",
		    json_num(r, "compared"));
	printf("\n");
	if (*json_text(r, "fetched_from"))
		printf("  fetched from remote %s\n", json_text(r,
		    "fetched_from"));
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r,
	    "differences"))
		printf("  differs: %s\n", cJSON_IsString(it) ? it->valuestring :
		    "?");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "notes"))
		printf("  %s\n", cJSON_IsString(it) ? it->valuestring : "?");
}

/* TARGET [ID|latest], or a lone ID whose prefix is the target. */
static int
target_and_id(const struct config *cfg, int argc, char **argv,
    const char **target, const char **id, char **owned)
{
	*owned = NULL;
	if (argc >= 1 && catalog_valid_id(argv[0]) &&
	    config_target(cfg, argv[0]) == NULL) {
		*owned = xstrndup(argv[0], strlen(argv[0]) - 17);
		*target = *owned;
		*id = argv[0];
		argc = 0;
	} else if (argc >= 1) {
		*target = argv[0];
		*id = argc >= 2 ? argv[1] : "latest";
	} else
		return -1;
	if (config_target(cfg, *target) == NULL) {
		fprintf(stderr, "backupbot: '%s' is neither a backup id nor a "
		    "target in %s\n", *target, cfg->path);
		return -1;
	}
	if (strcmp(*id, "latest") != 0 && !catalog_valid_id(*id) &&
	    !(config_target(cfg, *target)->kind == TARGET_PGBACKREST &&
	    pgbackrest_valid_set(*id))) {
		fprintf(stderr, "backupbot: '%s' is not a backup id (or "
		    "latest)\n", *id);
		return -1;
	}
	return 0;
}

int
cli_verify(const struct config *cfg, int argc, char **argv)
{
	struct term t = { isatty(2), mono_ms(), 0, 0 };
	struct job_out o = { term_progress, term_log, &t };
	const char *target, *id;
	char *owned = NULL;
	int quick = 0, ok;
	cJSON *r;

	shared_opts(&argc, argv);
	if (argc > 0 && !strcmp(argv[argc - 1], "--quick")) {
		quick = 1;
		argc--;
	}
	if (argc < 1 || argc > 2 ||
	    target_and_id(cfg, argc, argv, &target, &id, &owned) == -1) {
		if (argc < 1 || argc > 2)
			fprintf(stderr, "usage: backupbot verify ID | TARGET "
			    "[ID|latest] [--quick] [--no-wait] "
			    "[--insecure-unauthenticated]\n");
		free(owned);
		return 2;
	}
	catch_interrupts();
	r = job_verify(cfg, target, id, quick, &o);
	if (t.drawn)
		fputc('\n', stderr);
	ok = !strcmp(json_text(r, "status"), "ok");
	if (ok && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "drill")))
		printf("ok %s: %s: hash, decryption, decompression and the "
		    "restore tool's reading all good\n", target,
		    json_text(r, "id"));
	else
		print_restore(r, "restore drill");
	cJSON_Delete(r);
	free(owned);
	return ok ? 0 : 1;
}

/* Ask on the terminal; 1 when the operator typed the target's name. */
static int
confirm(const char *what, const char *target)
{
	char line[256];

	if (!isatty(0)) {
		fprintf(stderr, "backupbot: not asking on a non-terminal; add "
		    "--yes to restore without a question\n");
		return 0;
	}
	fprintf(stderr, "Type the %s (%s) to go on: ", what, target);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 0;
	line[strcspn(line, "\r\n")] = '\0';
	return !strcmp(line, target);
}

int
cli_restore(const struct config *cfg, int argc, char **argv)
{
	struct term t = { isatty(2), mono_ms(), 0, 0 };
	struct job_out o = { term_progress, term_log, &t };
	struct restore_opts ro;
	const struct target *tg;
	const char *target, *id;
	char *owned = NULL, *into = NULL, *cause = NULL, **steps;
	char *opt[16];
	int nopt = 0, npos = 0, yes = 0, ok;
	char *pos[2];
	cJSON *r;

	/* positional TARGET [ID], then options (the job's own parser) */
	shared_opts(&argc, argv);
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--yes"))
			yes = 1;
		else if (argv[i][0] == '-' && nopt < 14) {
			opt[nopt++] = argv[i];
			if ((!strcmp(argv[i], "--into") ||
			    !strcmp(argv[i], "--from") ||
			    !strcmp(argv[i], "--time")) && i + 1 < argc)
				opt[nopt++] = argv[++i];
		} else if (argv[i][0] != '-' && npos < 2)
			pos[npos++] = argv[i];
		else
			goto usage;
	}
	if (npos == 0 || restore_parse_args(nopt, opt, &ro) == -1)
		goto usage;
	if (target_and_id(cfg, npos, pos, &target, &id, &owned) == -1) {
		free(owned);
		return 2;
	}
	tg = config_target(cfg, target);
	if (tg->kind == TARGET_POSTGRES && ro.into == NULL)
		ro.into = into = restore_default_into(tg, time(NULL));
	if (restore_check(tg, &ro, &cause) == -1) {
		fprintf(stderr, "backupbot: %s\n", cause);
		free(cause);
		free(into);
		free(owned);
		return 2;
	}
	{
		struct backup b;
		char *why = NULL;
		int have = catalog_get(cfg, target, id, &b, &why) == 0;

		steps = restore_steps(tg, &ro, have ? b.id : id,
		    have && json_str(b.manifest, "database") ?
		    json_str(b.manifest, "database") : "the live database",
		    have ? json_str(b.manifest, "mode") : NULL);
		if (have)
			backup_release(&b);
		free(why);
	}
	fprintf(stderr, "Restore of %s (%s):\n", target, id);
	for (size_t i = 0; steps[i] != NULL; i++)
		fprintf(stderr, "  %zu. %s\n", i + 1, steps[i]);
	strv_free(steps);
	/* in place over a live cluster: the stanza, a name said on purpose */
	if (!yes && (tg->kind == TARGET_PGBACKREST && ro.replace ?
	    !confirm("stanza name", tg->stanza) :
	    !confirm("target's name", target))) {
		fprintf(stderr, "backupbot: nothing done\n");
		free(into);
		free(owned);
		return 1;
	}
	catch_interrupts();
	r = job_restore(cfg, target, id, &ro, &o);
	if (t.drawn)
		fputc('\n', stderr);
	print_restore(r, "restore");
	ok = !strcmp(json_text(r, "status"), "ok");
	cJSON_Delete(r);
	free(into);
	free(owned);
	return ok ? 0 : 1;

usage:
	fprintf(stderr, "usage: backupbot restore TARGET [ID|latest] "
	    "[--into NAME] [--replace] [--flush] [--from DEST] "
	    "[--time TIME] [--yes] [--no-wait] [--insecure-unauthenticated]\n");
	return 2;
}

int
cli_cat(const struct config *cfg, int argc, char **argv)
{
	struct seal_keys keys;
	struct pipe_seal seal;
	const char *target, *id, *algo;
	char *owned = NULL, *path = NULL, *cause = NULL, *bind = NULL;
	struct backup b;
	uint64_t raw;
	int fd = -1, r = 1, how, lock = -1;
	struct term term = { isatty(2), mono_ms(), 0, 0 };
	struct job_out o = { NULL, term_log, &term };

	memset(&b, 0, sizeof(b));
	memset(&keys, 0, sizeof(keys));
	shared_opts(&argc, argv);
	if (argc == 1 && catalog_valid_id(argv[0])) {
		owned = xstrndup(argv[0], strlen(argv[0]) - 17);
		target = owned;
		id = argv[0];
	} else if (argc == 2) {
		target = argv[0];
		id = argv[1];
	} else {
		fprintf(stderr, "usage: backupbot cat ID | TARGET ID|latest "
		    "[--insecure-unauthenticated] [--no-wait]\n");
		return 2;
	}
	if (config_target(cfg, target) == NULL || (strcmp(id, "latest") != 0 &&
	    !catalog_valid_id(id))) {
		fprintf(stderr, "backupbot: no target '%s' or bad id '%s'\n",
		    target, id);
		free(owned);
		return 2;
	}
	if (isatty(1)) {
		fprintf(stderr, "backupbot: cat writes the backup to standard "
		    "output; pipe it into pg_restore or a file\n");
		free(owned);
		return 2;
	}
	if ((lock = job_lock(cfg, target, &o, &cause)) == -1 ||
	    catalog_get(cfg, target, id, &b, &cause) == -1 ||
	    seal_keys_load(cfg, &keys, &cause) == -1 ||
	    (how = seal_open(&keys, &b, job_insecure, &seal, &bind,
	    &cause)) == -1)
		goto done;
	if (how == 1)
		fprintf(stderr, "backupbot: warning: %s is NOT authenticated: "
		    "read anyway because of --insecure-unauthenticated\n",
		    b.id);
	algo = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(
	    b.manifest, "compression_info"), "algorithm"));
	path = xasprintf("%s/%s/%s", cfg->backup_dir, target, b.data_file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		cause = xasprintf("%s: %s", path, strerror(errno));
		goto done;
	}
	if (pipe_in_run(fd, 1, algo && !strcmp(algo, "zstd") ? PIPE_ZSTD :
	    PIPE_NONE, &seal, b.blake2b, &raw, &cause) == 0)
		r = 0;
done:
	if (r != 0)
		fprintf(stderr, "backupbot: cat: %s%s\n", cause ? cause : "?",
		    fd != -1 ? " (what was written is not a valid backup)" :
		    "");
	if (fd != -1)
		close(fd);
	lock_release(lock);
	seal_keys_wipe(&keys);
	free(bind);
	free(cause);
	free(path);
	free(owned);
	backup_release(&b);
	return r;
}

int
cli_keygen(const struct config *cfg, int argc, char **argv)
{
	const char *path = argc == 1 ? argv[0] :
	    cfg != NULL ? cfg->encryption_key_file : NULL;
	char *cause = NULL;

	if (argc > 1 || path == NULL) {
		fprintf(stderr, "usage: backupbot keygen [FILE] (default: "
		    "encryption_key_file from the config)\n");
		return 2;
	}
	if (pipe_keygen(path, &cause) == -1) {
		fprintf(stderr, "backupbot: keygen: %s\n", cause);
		free(cause);
		return 1;
	}
	printf("wrote a new key to %s (mode 0600). Keep a copy somewhere "
	    "safe and away from the backups: without it, encrypted backups "
	    "cannot be restored.\n", path);
	return 0;
}

int
cli_catalog(const struct config *cfg, int argc, char **argv)
{
	const struct remote *r;
	struct seal_keys keys;
	struct term term = { isatty(2), mono_ms(), 0, 0 };
	struct job_out o = { NULL, term_log, &term };
	int fetched = 0, failed = 0;
	char *kcause = NULL;

	shared_opts(&argc, argv);
	if (argc != 2 || strcmp(argv[0], "--from") != 0) {
		fprintf(stderr, "usage: backupbot catalog --from REMOTE "
		    "[--no-wait] [--insecure-unauthenticated]\n");
		return 2;
	}
	if ((r = config_remote(cfg, argv[1])) == NULL) {
		fprintf(stderr, "backupbot: no [remote %s] in %s\n", argv[1],
		    cfg->path);
		return 2;
	}
	if (seal_keys_load(cfg, &keys, &kcause) == -1) {
		fprintf(stderr, "backupbot: %s\n", kcause);
		free(kcause);
		return 1;
	}
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const char *target = cfg->targets[i].name;
		char **names = NULL, *cause = NULL, *dir;
		long n;
		int lock;

		if ((lock = job_lock(cfg, target, &o, &cause)) == -1) {
			fprintf(stderr, "%s: %s\n", target, cause);
			free(cause);
			failed++;
			continue;
		}
		n = remote_list(cfg, r, target, &names, &cause);
		if (n < 0) {
			lock_release(lock);
			fprintf(stderr, "%s: %s\n", target, cause);
			free(cause);
			failed++;
			continue;
		}
		dir = catalog_dir(cfg, target);
		dir_make(dir, 0700);
		for (long k = 0; k < n; k++) {
			size_t len = strlen(names[k]);
			char *mpath, *dpath, *text, *why = NULL, *bind = NULL;
			char *refused = NULL;
			struct pipe_seal seal;
			struct backup b;
			struct stat st;
			size_t tl;
			char hash[2 * PIPE_HASHBYTES + 1];
			uint64_t bytes;
			int fd = -1, local, how = 0;

			if (len < 6 || strcmp(names[k] + len - 5, ".json"))
				continue;
			mpath = xasprintf("%s/%s.fetch", dir, names[k]);
			if (remote_get(cfg, r, target, names[k], mpath,
			    &why) == -1 || (text = file_read(mpath,
			    4 << 20, &tl)) == NULL) {
				fprintf(stderr, "%s: %s\n", names[k],
				    why ? why : strerror(errno));
				free(why);
				unlink(mpath);
				free(mpath);
				failed++;
				continue;
			}
			/* A manifest of this target, and its MAC checked before
			 * its data is even fetched. */
			if (catalog_parse_manifest(text, tl, &b, &why) == -1 ||
			    strcmp(b.target, target) != 0)
				refused = xasprintf("not a manifest of %s: %s",
				    target, why ? why : "target");
			else if ((how = seal_open(&keys, &b, job_insecure,
			    &seal, &bind, &why)) == -1)
				refused = xasprintf("not added: %s", why);
			free(bind);
			bind = NULL;
			free(why);
			why = NULL;
			if (refused != NULL) {
				fprintf(stderr, "%s: %s\n", names[k], refused);
				free(refused);
				refused = NULL;
				free(text);
				unlink(mpath);
				free(mpath);
				backup_release(&b);
				failed++;
				continue;
			}
			if (how == 1)
				fprintf(stderr, "%s: warning: NOT authenticated, "
				    "added because of --insecure-unauthenticated\n",
				    names[k]);
			{
				/* Already in the local catalog: keep ours. */
				char *mine = xasprintf("%s/%s.json", dir, b.id);
				int known = access(mine, F_OK) == 0;

				free(mine);
				if (known) {
					printf("%s is already in the catalog\n",
					    b.id);
					free(text);
					unlink(mpath);
					free(mpath);
					backup_release(&b);
					continue;
				}
			}
			dpath = xasprintf("%s/%s", dir, b.data_file);
			/* A file already here is not ours to remove. */
			local = stat(dpath, &st) == 0;
			if (!local && remote_get(cfg, r, target, b.data_file,
			    dpath, &why) == -1) {
				fprintf(stderr, "%s: %s\n", b.data_file, why);
				free(why);
				failed++;
			} else if ((fd = open(dpath, O_RDONLY)) == -1 ||
			    pipe_hash_fd(fd, hash, &bytes, &why) == -1 ||
			    strcmp(hash, b.blake2b) != 0) {
				fprintf(stderr, "%s: hash does not match its "
				    "manifest; not added%s\n", b.data_file,
				    local ? " (the local file is left as it is)" :
				    "");
				free(why);
				if (!local)
					unlink(dpath);
				failed++;
			} else {
				char *final = xasprintf("%s/%s.json", dir,
				    b.id);

				file_write_atomic(final, text, tl, 0600);
				printf("added %s (%s)\n", b.id, b.data_file);
				free(final);
				fetched++;
			}
			if (fd != -1)
				close(fd);
			unlink(mpath);
			free(dpath);
			free(text);
			free(mpath);
			backup_release(&b);
		}
		for (long k = 0; k < n; k++)
			free(names[k]);
		free(names);
		free(dir);
		lock_release(lock);
	}
	seal_keys_wipe(&keys);
	printf("%d backup(s) added to the catalog from %s, %d problem(s)\n",
	    fetched, r->name, failed);
	return failed ? 1 : 0;
}
