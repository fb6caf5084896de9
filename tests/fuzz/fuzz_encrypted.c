/*
 * fuzz_encrypted.c - libFuzzer target for m.room.encrypted timeline
 * events: mx_event_from_json then e2ee_decrypt, as the bot reads them.
 *
 * Checks e2ee.h's promises: only E2EE_OK fills the event (with the
 * outer event's id and sender), every failure has a cause, and nothing
 * without a room key that came over Olm is ever decrypted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "e2ee.h"
#include "sync.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[E2EE_KEYBYTES] = { 7 };
static struct e2ee *dev;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mx_event ev, out;
	enum e2ee_fail f;
	char *cause = NULL, *sid = NULL;
	cJSON *j;

	if (dev == NULL) {
		const char *base = getenv("TMPDIR");
		char *dir = xasprintf("%s/fuzz-encrypted.XXXXXX",
		    base ? base : "/tmp");

		if (sodium_init() < 0 || mkdtemp(dir) == NULL ||
		    (dev = e2ee_open(dir, key, "@bb:example.org", "FUZZDEV",
		    E2EE_TOFU, &cause)) == NULL)
			abort();
		free(dir);
	}
	j = cJSON_ParseWithLength((const char *)data, size);
	if (j == NULL || mx_event_from_json(j, &ev) == -1) {
		cJSON_Delete(j);
		return 0;
	}
	cJSON_Delete(j);
	if (ev.content == NULL) {
		mx_event_release(&ev);
		return 0;
	}
	f = e2ee_decrypt(dev, "!r:example.org", &ev, &out, &sid, NULL, &cause);
	/* no room key was ever given to this device */
	if (f == E2EE_OK || cause == NULL || out.event_id != NULL)
		abort();
	free(cause);
	free(sid);
	mx_event_release(&ev);
	return 0;
}
