/*
 * main.c - the command line: backupbot [-c FILE] run|check, --help,
 * --version.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "bot.h"
#include "config.h"
#include "log.h"

static void
usage(FILE *f)
{
	fprintf(f,
"usage: backupbot [-c FILE] [-d] COMMAND\n"
"\n"
"Backups of a Mastodon + Matrix server, operated from a Matrix room.\n"
"\n"
"commands:\n"
"  run        run the daemon in the foreground (logs to stderr)\n"
"  check      validate the config, log in, check every room; exit 0 only\n"
"             when all is well\n"
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

	log_init(LOG_LVL_INFO, "backupbot");
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
	if (argc != 1) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("libcurl failed to initialise");
	if (!strcmp(argv[0], "run"))
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
