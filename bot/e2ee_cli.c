/*
 * e2ee_cli.c - `backupbot e2ee status|reset`: the E2EE device from the
 * shell (the device is the daemon's: daemon/crypto.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "crypto.h"
#include "state.h"
#include "util.h"

/* 1 when the operator typed "reset". */
static int
confirm_reset(void)
{
	char line[64];

	if (!isatty(0)) {
		fprintf(stderr, "backupbot: not asking on a non-terminal; add "
		    "--yes to reset without a question\n");
		return 0;
	}
	fprintf(stderr, "This makes a new device: rooms must share their keys "
	    "with it again, and admins verify it again.\nType reset to go "
	    "on: ");
	if (fgets(line, sizeof(line), stdin) == NULL)
		return 0;
	line[strcspn(line, "\r\n")] = '\0';
	return !strcmp(line, "reset");
}

static int
e2ee_reset(const struct config *cfg, int yes)
{
	char *path = xasprintf("%s/e2ee.json", cfg->state_dir), *old, *cause;
	struct state *st;

	if (access(path, F_OK) == -1) {
		printf("no E2EE device to reset (%s)\n", path);
		free(path);
		return 0;
	}
	if (!yes && !confirm_reset()) {
		fprintf(stderr, "backupbot: nothing done\n");
		free(path);
		return 1;
	}
	old = xasprintf("%s.old-%lld", path, (long long)time(NULL));
	if (rename(path, old) == -1) {
		fprintf(stderr, "backupbot: %s: %s\n", path, strerror(errno));
		free(old);
		free(path);
		return 1;
	}
	dir_sync_of(path);
	/* A password login then asks the homeserver for a new device. */
	if ((st = state_open(cfg->state_dir, &cause)) != NULL) {
		state_clear_session(st);
		state_free(st);
	} else
		free(cause);
	printf("the old device is kept in %s; the next start makes a new "
	    "device%s\n", old, cfg->access_token_file != NULL ? " (with "
	    "access_token_file, make a new access token: the token names "
	    "the device)" : "");
	free(old);
	free(path);
	return 0;
}

int
cli_e2ee(const struct config *cfg, int argc, char **argv)
{
	if (argc == 1 && !strcmp(argv[0], "status"))
		return crypto_print_status(cfg) == 0 ? 0 : 1;
	if ((argc == 1 || argc == 2) && !strcmp(argv[0], "reset") &&
	    (argc == 1 || !strcmp(argv[1], "--yes")))
		return e2ee_reset(cfg, argc == 2);
	fprintf(stderr, "usage: backupbot e2ee status | reset [--yes]\n");
	return 2;
}
