/*
 * remote_driver.c - bot/store/remote.c from the command line, for
 * tests/remote/test_remote.sh:
 *
 *	remote_driver CONF put    REMOTE TARGET FILE...
 *	remote_driver CONF verify REMOTE TARGET FILE...
 *	remote_driver CONF list   REMOTE TARGET
 *	remote_driver CONF delete REMOTE TARGET NAME...
 *	remote_driver CONF get    REMOTE TARGET NAME DEST
 *
 * CONF is a bot.conf; REMOTE names a [remote] section.  Prints "ok" (or
 * the names, one a line, for list) and exits 0, or prints "error: CAUSE"
 * and exits 1; 2 on usage or config errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "remote.h"
#include "util.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: remote_driver CONF put|verify REMOTE TARGET "
	    "FILE...\n"
	    "       remote_driver CONF list REMOTE TARGET\n"
	    "       remote_driver CONF delete REMOTE TARGET NAME...\n"
	    "       remote_driver CONF get REMOTE TARGET NAME DEST\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct config_errors errs;
	struct config *cfg;
	struct remote *r;
	const char *op, *target;
	const char *const *args;
	char *text, *cause = NULL, **names;
	size_t len, nargs;
	long n;
	int rv = -1;

	log_init(getenv("REMOTE_DEBUG") != NULL ? LOG_LVL_DEBUG :
	    LOG_LVL_INFO, "remote_driver");
	if (argc < 5)
		usage();
	op = argv[2];
	target = argv[4];
	args = (const char *const *)argv + 5;
	nargs = (size_t)(argc - 5);

	if ((text = file_read(argv[1], 1024 * 1024, &len)) == NULL) {
		perror(argv[1]);
		return 2;
	}
	/* check_files 0: the test config names no real token file. */
	cfg = config_parse(argv[1], text, len, 0, &errs);
	free(text);
	if (cfg == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		config_errors_release(&errs);
		return 2;
	}
	if ((r = config_remote(cfg, argv[3])) == NULL) {
		fprintf(stderr, "no [remote %s] in %s\n", argv[3], argv[1]);
		config_free(cfg);
		return 2;
	}

	if (!strcmp(op, "put") && nargs > 0)
		rv = remote_put(cfg, r, target, args, nargs, &cause);
	else if (!strcmp(op, "verify") && nargs > 0) {
		rv = 0;
		for (size_t i = 0; i < nargs && rv == 0; i++)
			rv = remote_verify(cfg, r, target, args[i], &cause);
	} else if (!strcmp(op, "delete"))
		rv = remote_delete(cfg, r, target, args, nargs, &cause);
	else if (!strcmp(op, "get") && nargs == 2)
		rv = remote_get(cfg, r, target, args[0], args[1], &cause);
	else if (!strcmp(op, "list") && nargs == 0) {
		if ((n = remote_list(cfg, r, target, &names, &cause)) >= 0) {
			for (long i = 0; i < n; i++) {
				printf("%s\n", names[i]);
				free(names[i]);
			}
			free(names);
			rv = 0;
		}
	} else {
		config_free(cfg);
		usage();
	}

	if (rv == 0 && strcmp(op, "list") != 0)
		printf("ok\n");
	else if (rv == -1)
		printf("error: %s\n", cause != NULL ? cause : "(no cause)");
	free(cause);
	config_free(cfg);
	return rv == 0 ? 0 : 1;
}
