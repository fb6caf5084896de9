/*
 * sync.c - parsing /sync and /messages responses (see sync.h).
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "sync.h"
#include "util.h"

/* Bounds that no honest server response comes near. */
#define SYNC_MAX_ROOMS	1000
#define SYNC_MAX_EVENTS	10000
#define SYNC_MAX_STR	(256 * 1024)

static const cJSON *
obj(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsObject(v) ? v : NULL;
}

static const char *
str(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	if (!cJSON_IsString(v) || v->valuestring == NULL ||
	    strlen(v->valuestring) > SYNC_MAX_STR)
		return NULL;
	return v->valuestring;
}

static char *
dupstr(const cJSON *j, const char *key)
{
	const char *s = str(j, key);

	return xstrdup(s != NULL ? s : "");
}

void
mx_event_release(struct mx_event *e)
{
	free(e->event_id);
	free(e->sender);
	free(e->type);
	free(e->state_key);
	free(e->msgtype);
	free(e->body);
	free(e->rel_type);
	free(e->rel_event);
	free(e->reply_to);
	free(e->key);
	free(e->membership);
	free(e->redacts);
	cJSON_Delete(e->content);
	memset(e, 0, sizeof(*e));
}

void
mx_events_free(struct mx_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mx_event_release(&ev[i]);
	free(ev);
}

void
sync_stamp(struct mx_event *ev, size_t n, int64_t now_local)
{
	for (size_t i = 0; i < n; i++)
		ev[i].when = ev[i].age >= 0 ? now_local - ev[i].age : ev[i].ts;
}

int
mx_event_from_json(const cJSON *j, struct mx_event *e)
{
	const cJSON *content, *rel, *irt, *ts, *uns, *age;

	memset(e, 0, sizeof(*e));
	e->age = -1;
	if (!cJSON_IsObject(j) || str(j, "type") == NULL ||
	    str(j, "sender") == NULL)
		return -1;
	content = obj(j, "content");
	e->event_id = dupstr(j, "event_id");
	e->sender = dupstr(j, "sender");
	e->type = dupstr(j, "type");
	if (str(j, "state_key") != NULL)
		e->state_key = xstrdup(str(j, "state_key"));
	ts = cJSON_GetObjectItemCaseSensitive(j, "origin_server_ts");
	if (cJSON_IsNumber(ts) && ts->valuedouble > 0 &&
	    ts->valuedouble < 9e15)
		e->ts = (int64_t)ts->valuedouble;
	e->when = e->ts;
	uns = obj(j, "unsigned");
	age = cJSON_GetObjectItemCaseSensitive(uns, "age");
	if (cJSON_IsNumber(age) && age->valuedouble >= 0 &&
	    age->valuedouble < 9e15)
		e->age = (int64_t)age->valuedouble;
	e->redacted = obj(uns, "redacted_because") != NULL;
	e->redacts = str(j, "redacts") != NULL ? dupstr(j, "redacts") :
	    dupstr(content, "redacts");
	e->msgtype = dupstr(content, "msgtype");
	e->body = dupstr(content, "body");
	e->membership = dupstr(content, "membership");
	e->has_new_content = obj(content, "m.new_content") != NULL;
	rel = obj(content, "m.relates_to");
	e->rel_type = dupstr(rel, "rel_type");
	e->rel_event = dupstr(rel, "event_id");
	e->key = dupstr(rel, "key");
	irt = obj(rel, "m.in_reply_to");
	e->reply_to = dupstr(irt, "event_id");
	if ((e->state_key != NULL || !strcmp(e->type, "m.room.encrypted")) &&
	    content != NULL)
		e->content = cJSON_Duplicate(content, 1);
	return 0;
}

/* Events of an array, in array order, skipping what is not an event. */
static void
events_of(const cJSON *arr, struct mx_event **out, size_t *n)
{
	const cJSON *ev;
	size_t count = 0;

	*out = NULL;
	*n = 0;
	if (!cJSON_IsArray(arr))
		return;
	cJSON_ArrayForEach(ev, arr) {
		if (count == SYNC_MAX_EVENTS)
			break;
		*out = xrealloc(*out, (count + 1) * sizeof(**out));
		if (mx_event_from_json(ev, &(*out)[count]) == 0)
			count++;
	}
	*n = count;
}

void
sync_batch_release(struct sync_batch *b)
{
	for (size_t i = 0; i < b->nrooms; i++) {
		struct sync_room *r = &b->rooms[i];

		free(r->room_id);
		free(r->prev_batch);
		mx_events_free(r->events, r->nevents);
		mx_events_free(r->state, r->nstate);
	}
	free(b->rooms);
	for (size_t i = 0; i < b->ninvites; i++) {
		free(b->invites[i].room_id);
		free(b->invites[i].inviter);
	}
	free(b->invites);
	for (size_t i = 0; i < b->nleaves; i++) {
		free(b->leaves[i].room_id);
		free(b->leaves[i].sender);
		free(b->leaves[i].membership);
		free(b->leaves[i].reason);
	}
	free(b->leaves);
	free(b->next_batch);
	cJSON_Delete(b->e2ee);
	memset(b, 0, sizeof(*b));
}

static void
parse_invites(const cJSON *invite, const char *user_id, struct sync_batch *out)
{
	const cJSON *room;

	cJSON_ArrayForEach(room, invite) {
		const cJSON *st = obj(room, "invite_state"), *ev;
		const char *inviter = NULL;

		if (out->ninvites == SYNC_MAX_ROOMS || room->string == NULL)
			break;
		ev = st ? cJSON_GetObjectItemCaseSensitive(st, "events") : NULL;
		if (cJSON_IsArray(ev)) {
			const cJSON *e;

			cJSON_ArrayForEach(e, ev) {
				const cJSON *c = obj(e, "content");
				const char *t = str(e, "type");
				const char *sk = str(e, "state_key");
				const char *m = str(c, "membership");

				if (t != NULL && !strcmp(t, "m.room.member") &&
				    sk != NULL && !strcmp(sk, user_id) &&
				    m != NULL && !strcmp(m, "invite"))
					inviter = str(e, "sender");
			}
		}
		out->invites = xrealloc(out->invites,
		    (out->ninvites + 1) * sizeof(*out->invites));
		out->invites[out->ninvites].room_id = xstrdup(room->string);
		out->invites[out->ninvites].inviter = xstrdup(inviter ?
		    inviter : "");
		out->ninvites++;
	}
}

/* rooms.leave: our own last membership event in each left room. */
static void
parse_leaves(const cJSON *leave, const char *user_id, struct sync_batch *out)
{
	const cJSON *room;

	cJSON_ArrayForEach(room, leave) {
		const cJSON *tl = obj(room, "timeline"), *e, *mine = NULL;
		const cJSON *evs = tl ? cJSON_GetObjectItemCaseSensitive(tl,
		    "events") : NULL;
		struct sync_leave *l;

		if (out->nleaves == SYNC_MAX_ROOMS || room->string == NULL)
			break;
		if (cJSON_IsArray(evs)) {
			cJSON_ArrayForEach(e, evs) {
				const char *t = str(e, "type");
				const char *sk = str(e, "state_key");

				if (t != NULL && !strcmp(t, "m.room.member") &&
				    sk != NULL && !strcmp(sk, user_id))
					mine = e;
			}
		}
		out->leaves = xrealloc(out->leaves,
		    (out->nleaves + 1) * sizeof(*out->leaves));
		l = &out->leaves[out->nleaves++];
		l->room_id = xstrdup(room->string);
		l->sender = dupstr(mine, "sender");
		l->membership = dupstr(obj(mine, "content"), "membership");
		if (l->membership[0] == '\0') {
			free(l->membership);
			l->membership = xstrdup("leave");
		}
		l->reason = dupstr(obj(mine, "content"), "reason");
	}
}

int
sync_parse(const char *json, size_t len, const char *user_id,
    struct sync_batch *out, char **cause)
{
	const cJSON *rooms, *join, *room;
	cJSON *j;

	memset(out, 0, sizeof(*out));
	*cause = NULL;
	j = json_parse_bounded(json, len, cause);
	if (!cJSON_IsObject(j)) {
		char *why = *cause;

		*cause = why != NULL ? xasprintf("sync response refused: %s",
		    why) : xstrdup("sync response is not a JSON object");
		free(why);
		cJSON_Delete(j);
		return -1;
	}
	if (str(j, "next_batch") == NULL || str(j, "next_batch")[0] == '\0' ||
	    strlen(str(j, "next_batch")) > 1024) {
		*cause = xstrdup("sync response has no usable next_batch");
		cJSON_Delete(j);
		return -1;
	}
	out->next_batch = xstrdup(str(j, "next_batch"));
	rooms = obj(j, "rooms");
	join = rooms ? obj(rooms, "join") : NULL;
	if (join != NULL) {
		cJSON_ArrayForEach(room, join) {
			const cJSON *tl = obj(room, "timeline");
			const cJSON *st = obj(room, "state");
			const cJSON *lim;
			struct sync_room *r;

			if (!cJSON_IsObject(room) || room->string == NULL)
				continue;
			if (out->nrooms == SYNC_MAX_ROOMS)
				break;
			out->rooms = xrealloc(out->rooms,
			    (out->nrooms + 1) * sizeof(*out->rooms));
			r = &out->rooms[out->nrooms++];
			memset(r, 0, sizeof(*r));
			r->room_id = xstrdup(room->string);
			if (tl != NULL) {
				lim = cJSON_GetObjectItemCaseSensitive(tl,
				    "limited");
				r->limited = cJSON_IsTrue(lim);
				if (str(tl, "prev_batch") != NULL)
					r->prev_batch =
					    xstrdup(str(tl, "prev_batch"));
				events_of(cJSON_GetObjectItemCaseSensitive(tl,
				    "events"), &r->events, &r->nevents);
			}
			if (st != NULL)
				events_of(cJSON_GetObjectItemCaseSensitive(st,
				    "events"), &r->state, &r->nstate);
		}
	}
	if (rooms != NULL && obj(rooms, "invite") != NULL)
		parse_invites(obj(rooms, "invite"), user_id, out);
	if (rooms != NULL && obj(rooms, "leave") != NULL)
		parse_leaves(obj(rooms, "leave"), user_id, out);
	{
		static const char *e2ee_keys[] = { "to_device", "device_lists",
		    "device_one_time_keys_count",
		    "device_unused_fallback_key_types" };

		for (size_t i = 0; i < nitems(e2ee_keys); i++) {
			cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(j,
			    e2ee_keys[i]);

			if (v == NULL)
				continue;
			if (out->e2ee == NULL)
				out->e2ee = cJSON_CreateObject();
			cJSON_AddItemToObject(out->e2ee, e2ee_keys[i], v);
		}
	}
	cJSON_Delete(j);
	return 0;
}

int
sync_parse_messages(const char *json, size_t len, struct mx_event **evp,
    size_t *nev, char **end, char **cause)
{
	struct mx_event *ev;
	size_t n;
	cJSON *j;

	*evp = NULL;
	*nev = 0;
	*end = NULL;
	*cause = NULL;
	j = json_parse_bounded(json, len, NULL);
	if (!cJSON_IsObject(j) ||
	    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "chunk"))) {
		*cause = xstrdup("messages response has no chunk array");
		cJSON_Delete(j);
		return -1;
	}
	events_of(cJSON_GetObjectItemCaseSensitive(j, "chunk"), &ev, &n);
	/* dir=b gives newest first; hand them out oldest first. */
	for (size_t i = 0; i < n / 2; i++) {
		struct mx_event t = ev[i];

		ev[i] = ev[n - 1 - i];
		ev[n - 1 - i] = t;
	}
	if (str(j, "end") != NULL && str(j, "end")[0] != '\0')
		*end = xstrdup(str(j, "end"));
	*evp = ev;
	*nev = n;
	cJSON_Delete(j);
	return 0;
}

int
sync_parse_relations(const char *json, size_t len, struct mx_event **evp,
    size_t *nev, char **next, char **cause)
{
	cJSON *j;

	*evp = NULL;
	*nev = 0;
	*next = NULL;
	*cause = NULL;
	j = json_parse_bounded(json, len, NULL);
	if (!cJSON_IsObject(j) ||
	    !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "chunk"))) {
		*cause = xstrdup("relations response has no chunk array");
		cJSON_Delete(j);
		return -1;
	}
	events_of(cJSON_GetObjectItemCaseSensitive(j, "chunk"), evp, nev);
	if (str(j, "next_batch") != NULL && str(j, "next_batch")[0] != '\0')
		*next = xstrdup(str(j, "next_batch"));
	cJSON_Delete(j);
	return 0;
}
