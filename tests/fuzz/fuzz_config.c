/*
 * fuzz_config.c - libFuzzer target for config_parse (check_files=0, so
 * the input alone decides) and config_parse_duration.
 *
 * Checks config.h's contract: a config comes back if and only if there
 * are no errors, and every error names the file ("fuzz.conf:").  A
 * returned config has its required values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs;
	struct config *cfg;

	/* as main() does: the backends' own checks (media flags...) */
	config_set_checks(&backend_config_checks);
	cfg = config_parse("fuzz.conf", (const char *)data, size, 0, &errs);
	if ((cfg == NULL) != (errs.n > 0))
		abort();
	for (size_t i = 0; i < errs.n; i++)
		if (errs.msg[i] == NULL ||
		    strncmp(errs.msg[i], "fuzz.conf:", 10) != 0)
			abort();
	if (cfg != NULL) {
		if (cfg->homeserver == NULL || cfg->user_id == NULL ||
		    cfg->rooms.n == 0 || cfg->admins.n == 0 ||
		    cfg->command_prefix == NULL || cfg->state_dir[0] != '/' ||
		    (cfg->access_token_file == NULL &&
		    cfg->password_file == NULL))
			abort();
		(void)config_is_admin(cfg, cfg->admins.v[0]);
		config_free(cfg);
	}
	config_errors_release(&errs);

	/* short inputs also as a duration */
	if (size < 40) {
		char *s = xstrndup((const char *)data, size);
		long d = config_parse_duration(s);

		if (d < -1)
			abort();
		free(s);
	}
	return 0;
}
