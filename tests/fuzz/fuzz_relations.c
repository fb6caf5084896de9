/*
 * fuzz_relations.c - libFuzzer target for sync_parse_relations on the raw
 * bytes (not NUL-terminated: the parser gets a length): the homeserver's
 * answer to GET .../relations/PLAN/m.annotation/m.reaction, from which
 * approval.c counts the ✅ and ❌ reactions to a restore plan at start-up.
 *
 * Checks the promises of sync.h: on success every string of an event is
 * non-NULL (approval.c compares type and sender at once), state events
 * have a state_key, next_batch is NULL or not empty; on failure there is
 * a cause and nothing is allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_event(const struct mx_event *e)
{
	if (e->event_id == NULL || e->sender == NULL || e->type == NULL ||
	    e->msgtype == NULL || e->body == NULL || e->rel_type == NULL ||
	    e->rel_event == NULL || e->reply_to == NULL || e->key == NULL ||
	    e->membership == NULL || e->ts < 0)
		abort();
	if (e->content != NULL && e->state_key == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mx_event *ev = (struct mx_event *)&ev;
	char *cause = (char *)"unset", *next = (char *)"unset";
	size_t n = 1;

	if (sync_parse_relations((const char *)data, size, &ev, &n, &next,
	    &cause) == 0) {
		if (cause != NULL || (n > 0 && ev == NULL))
			abort();
		for (size_t i = 0; i < n; i++)
			check_event(&ev[i]);
		if (next != NULL && next[0] == '\0')
			abort();
		mx_events_free(ev, n);
		free(next);
	} else {
		if (cause == NULL || ev != NULL || next != NULL || n != 0)
			abort();
		free(cause);
	}
	return 0;
}
