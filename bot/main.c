/*
 * main.c - the command line: backupbot [-c FILE] run|check, --help,
 * --version.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "backend.h"
#include "bot.h"
#include "cli.h"
#include "config.h"
#include "job.h"
#include "log.h"

/* Sub-commands that work on the configuration without Matrix. */
static const struct {
	const char	*name;
	int		(*fn)(const struct config *, int, char **);
} offline_cmds[] = {
	{ "backup", cli_backup },
	{ "list", cli_list },
	{ "verify", cli_verify },
	{ "restore", cli_restore },
	{ "cat", cli_cat },
	{ "keygen", cli_keygen },
	{ "catalog", cli_catalog },
	{ "e2ee", cli_e2ee },
	{ "job", job_main },
};

static int
run_offline(const char *config, int (*fn)(const struct config *, int,
    char **), int argc, char **argv)
{
	struct config_errors errs;
	struct config *cfg;
	int r;

	if ((cfg = config_load(config, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		config_errors_release(&errs);
		return 1;
	}
	if (cfg->log_debug)
		log_init(LOG_LVL_DEBUG, NULL);
	r = fn(cfg, argc, argv);
	config_free(cfg);
	return r;
}

static void
usage(FILE *f)
{
	fprintf(f,
"usage: backupbot [-c FILE] [-d] COMMAND\n"
"\n"
"Backups of a Mastodon + Matrix server, operated from a Matrix room.\n"
"\n"
"commands:\n"
"  run                    the daemon, in the foreground (logs to stderr)\n"
"  check                  validate the config, log in, check every room;\n"
"                         exit 0 only when all is well\n"
"  backup TARGET|KIND|all back up now, with a progress bar (Ctrl-C cancels)\n"
"  list [TARGET] [--json] the catalog, newest first, and what each is kept as\n"
"  verify ID | TARGET [ID|latest] [--quick]\n"
"                         check every byte, then a restore drill: restore\n"
"                         into a scratch copy, compare, remove it (--quick:\n"
"                         only check that the restore tool can read it)\n"
"  restore TARGET [ID|latest] [--into NAME] [--replace] [--flush]\n"
"          [--from DEST] [--yes]\n"
"                         restore (postgres: into a new database); asks\n"
"                         first unless --yes\n"
"  cat ID | TARGET ID|latest\n"
"                         write a backup's original bytes to stdout (hash,\n"
"                         decryption checked), e.g. into pg_restore\n"
"  keygen [FILE]          make an encryption key (default: encryption_key_file)\n"
"  catalog --from REMOTE  rebuild the local catalog from a remote's copies\n"
"  e2ee status            the encryption device: id, fingerprint, known\n"
"                         devices, sessions\n"
"  e2ee reset [--yes]     start a new encryption device (asks first; stop\n"
"                         the daemon before)\n"
"  job ...                (internal) a job of the daemon, JSON lines on stdout\n"
"\n"
"backup, verify, restore, cat and catalog also take:\n"
"  --no-wait  refuse a target another backupbot process is working on,\n"
"             instead of waiting for it\n"
"  --insecure-unauthenticated  (not backup) read a backup whose manifest\n"
"             does not authenticate while a key is configured; never\n"
"             available from chat\n"
"  --timings  (only backup) where the time went, per step, in ms\n"
"\n"
"options:\n"
"  -c FILE    configuration file (default " CONFIG_DEFAULT_PATH ")\n"
"  -d         debug logging\n"
"  --help     this text\n"
"  --version  print the version\n"
"\n"
"Signals to `run`: SIGTERM/SIGINT finish the current write and exit 0;\n"
"SIGHUP reloads the configuration if it is valid.\n");
}

/*
 * The process holds secrets (the access token, database passwords, the
 * encryption key): no core file, and no ptrace by other processes of the
 * same user.  Tools exec'd later are dumpable again (execve resets it).
 */
static void
no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };

	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	const char *config = CONFIG_DEFAULT_PATH;
	int ch, r;

	no_core_dumps();
	log_init(LOG_LVL_INFO, "backupbot");
	config_set_checks(&backend_config_checks);
	while ((ch = getopt_long(argc, argv, "+c:dhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'd':
			log_init(LOG_LVL_DEBUG, NULL);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("backupbot %s\n", BB_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	/* A reader that stops early is an error to handle, not a death. */
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("libcurl failed to initialise");
	if (!strcmp(argv[0], "keygen") && argc == 2)
		return cli_keygen(NULL, 1, argv + 1);
	for (size_t i = 0; i < sizeof(offline_cmds) / sizeof(offline_cmds[0]);
	    i++)
		if (!strcmp(argv[0], offline_cmds[i].name)) {
			r = run_offline(config, offline_cmds[i].fn, argc - 1,
			    argv + 1);
			curl_global_cleanup();
			return r;
		}
	if (argc != 1 && (!strcmp(argv[0], "run") ||
	    !strcmp(argv[0], "check"))) {
		usage(stderr);
		r = 2;
	} else if (!strcmp(argv[0], "run"))
		r = bot_run(config);
	else if (!strcmp(argv[0], "check"))
		r = bot_check(config);
	else {
		fprintf(stderr, "backupbot: unknown command '%s'\n", argv[0]);
		usage(stderr);
		r = 2;
	}
	curl_global_cleanup();
	return r;
}
