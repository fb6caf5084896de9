/*
 * fuzz_sync.c - libFuzzer target for sync_parse and sync_parse_messages
 * on the raw bytes (not NUL-terminated: the parsers get a length).
 *
 * Checks the promises of sync.h: on success every string of an event is
 * non-NULL, rooms have ids, next_batch is set; on failure there is a
 * cause and nothing is left allocated in the batch.
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
	    e->membership == NULL || e->redacts == NULL || e->ts < 0 ||
	    e->age < -1)
		abort();
	if (e->content != NULL && e->state_key == NULL &&
	    strcmp(e->type, "m.room.encrypted") != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = (const char *)data;
	struct sync_batch b;
	struct mx_event *ev;
	size_t n;
	char *cause, *end;

	if (sync_parse(json, size, "@bb:example.org", &b, &cause) == 0) {
		if (cause != NULL || b.next_batch == NULL ||
		    b.next_batch[0] == '\0')
			abort();
		for (size_t i = 0; i < b.nrooms; i++) {
			const struct sync_room *r = &b.rooms[i];

			if (r->room_id == NULL)
				abort();
			for (size_t k = 0; k < r->nevents; k++)
				check_event(&r->events[k]);
			for (size_t k = 0; k < r->nstate; k++)
				check_event(&r->state[k]);
		}
		for (size_t i = 0; i < b.ninvites; i++)
			if (b.invites[i].room_id == NULL ||
			    b.invites[i].inviter == NULL)
				abort();
		for (size_t i = 0; i < b.nleaves; i++)
			if (b.leaves[i].room_id == NULL ||
			    b.leaves[i].sender == NULL ||
			    b.leaves[i].membership[0] == '\0' ||
			    b.leaves[i].reason == NULL)
				abort();
		sync_batch_release(&b);
	} else {
		if (cause == NULL || b.next_batch != NULL || b.nrooms != 0)
			abort();
		free(cause);
	}

	if (sync_parse_messages(json, size, &ev, &n, &end, &cause) == 0) {
		if (cause != NULL)
			abort();
		for (size_t i = 0; i < n; i++)
			check_event(&ev[i]);
		if (end != NULL && end[0] == '\0')
			abort();
		mx_events_free(ev, n);
		free(end);
	} else {
		if (cause == NULL || ev != NULL || end != NULL || n != 0)
			abort();
		free(cause);
	}
	return 0;
}
