/*
 * fuzz_manifest.c - libFuzzer target for catalog_parse_manifest on the
 * raw bytes (not NUL-terminated: the parser gets a length), as read from
 * backup_dir or fetched from a remote by `catalog --from` and restores.
 *
 * Checks catalog.h's contract: 0 with every field set and sane, or -1
 * with a cause and nothing left allocated.  A parsed backup has a valid
 * id (whose time can be read), a valid target name, a 64-character hash,
 * a data file that is a plain "ID*" name in the target's directory, and
 * started <= ended.  Short inputs also go to catalog_valid_id, which
 * checks chat arguments before they reach a path or an argv.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_backup(const struct backup *b)
{
	if (b->id == NULL || b->target == NULL || b->kind == NULL ||
	    b->data_file == NULL || b->blake2b == NULL || b->status == NULL ||
	    b->manifest == NULL)
		abort();
	if (!catalog_valid_id(b->id) || catalog_id_time(b->id) == (time_t)-1)
		abort();
	if (!config_valid_name(b->target) || strlen(b->blake2b) != 64)
		abort();
	if (strchr(b->data_file, '/') != NULL || b->data_file[0] == '.' ||
	    strncmp(b->data_file, b->id, strlen(b->id)) != 0)
		abort();
	if (b->started < 0 || b->ended < b->started)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct backup b;
	char *cause = (char *)"unset";

	if (catalog_parse_manifest((const char *)data, size, &b,
	    &cause) == 0) {
		if (cause != NULL)
			abort();
		check_backup(&b);
		backup_release(&b);
		if (b.id != NULL || b.manifest != NULL)
			abort();
	} else {
		if (cause == NULL || b.id != NULL || b.target != NULL ||
		    b.manifest != NULL)
			abort();
		free(cause);
	}

	/* short inputs also as a chat argument naming a backup */
	if (size < 64) {
		char *s = xstrndup((const char *)data, size);

		if (catalog_valid_id(s) && catalog_id_time(s) == (time_t)-1)
			abort();
		free(s);
	}
	return 0;
}
