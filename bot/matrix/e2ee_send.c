/*
 * e2ee_send.c - Megolm: writing (see e2ee.h).  One outbound session per
 * room, shared over Olm with every device of every joined member, rotated
 * as m.room.encryption says and when members or devices go; indexes are
 * reserved on disk ahead of use, so a crash never reuses one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "e2ee.h"
#include "e2ee_parts.h"
#include "json.h"
#include "log.h"
#include "matrix.h"
#include "util.h"

/* ---- Megolm: writing -------------------------------------------------- */

void
e2ee_room_cfg(const cJSON *enc, struct e2ee_room_cfg *c)
{
	double v;

	c->rotation_ms = 604800000LL;
	c->rotation_msgs = 100;
	if (json_get_num(enc, "rotation_period_ms", &v) == 0 && v >= 1)
		c->rotation_ms = (int64_t)v;
	if (json_get_num(enc, "rotation_period_msgs", &v) == 0 && v >= 1)
		c->rotation_msgs = (uint64_t)v;
}

void
e2ee_members_changed(struct e2ee *e, const char *room_id)
{
	cJSON_DeleteItemFromObjectCaseSensitive(e->members, room_id);
}

/* Joined members of room_id, cached until e2ee_members_changed. */
static const cJSON *
members(struct e2ee *e, struct mx *mx, const char *room_id, char **cause)
{
	cJSON *have = cJSON_GetObjectItemCaseSensitive(e->members, room_id);
	const cJSON *j, *u;
	struct mx_resp r;
	char *esc, *path;
	cJSON *list;

	if (have != NULL)
		return have;
	esc = mx_escape(room_id);
	path = xasprintf(MX_V3 "/rooms/%s/joined_members", esc);
	mx_call(mx, "GET", path, NULL, E2EE_CALL_MS, &r);
	free(path);
	free(esc);
	if (r.status != 200 || !cJSON_IsObject(j =
	    cJSON_GetObjectItemCaseSensitive(r.json, "joined"))) {
		*cause = mx_describe(&r);
		mx_resp_release(&r);
		return NULL;
	}
	list = cJSON_AddArrayToObject(e->members, room_id);
	cJSON_ArrayForEach(u, j)
		if (u->string != NULL && u->string[0] == '@' &&
		    cJSON_GetArraySize(list) < 10000)
			cJSON_AddItemToArray(list,
			    cJSON_CreateString(u->string));
	mx_resp_release(&r);
	return list;
}

/* Olm-encrypt payload for a device; content of m.room.encrypted. */
static cJSON *
olm_encrypt_for(struct e2ee *e, OlmSession *s, const char *user,
    const char *device, const cJSON *dev, const char *type,
    const cJSON *content)
{
	cJSON *p = cJSON_CreateObject(), *k, *out, *ct, *one;
	char *text, *msg;
	size_t rl, ml;
	void *rb;
	int mtype;

	cJSON_AddStringToObject(p, "type", type);
	cJSON_AddItemToObject(p, "content", cJSON_Duplicate(content, 1));
	cJSON_AddStringToObject(p, "sender", e->user_id);
	cJSON_AddStringToObject(p, "sender_device", e->device_id);
	k = cJSON_AddObjectToObject(p, "keys");
	cJSON_AddStringToObject(k, "ed25519", e2ee_ed25519(e));
	cJSON_AddStringToObject(p, "recipient", user);
	k = cJSON_AddObjectToObject(p, "recipient_keys");
	cJSON_AddStringToObject(k, "ed25519", json_text(dev, "ed25519"));
	(void)device;
	text = cJSON_PrintUnformatted(p);
	cJSON_Delete(p);
	mtype = (int)olm_encrypt_message_type(s);
	rl = olm_encrypt_random_length(s);
	rb = e2ee_rnd(rl);
	ml = olm_encrypt_message_length(s, strlen(text));
	msg = xmalloc(ml + 1);
	olm_encrypt(s, text, strlen(text), rb, rl, msg, ml);
	msg[ml] = '\0';
	sodium_memzero(text, strlen(text));
	free(text);
	free(rb);
	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "algorithm", E2EE_OLM);
	cJSON_AddStringToObject(out, "sender_key", e2ee_curve25519(e));
	ct = cJSON_AddObjectToObject(out, "ciphertext");
	one = cJSON_AddObjectToObject(ct, json_text(dev, "curve"));
	cJSON_AddNumberToObject(one, "type", mtype);
	cJSON_AddStringToObject(one, "body", msg);
	free(msg);
	return out;
}

/* The newest Olm session with curve (its index in the list), or -1. */
static int
olm_find(struct e2ee *e, const char *curve)
{
	const cJSON *it;
	double best = -1;
	int i = 0, found = -1;

	cJSON_ArrayForEach(it, e2ee_olm_list(e)) {
		if (!strcmp(json_text(it, "curve"), curve) &&
		    json_num(it, "used") > best) {
			best = json_num(it, "used");
			found = i;
		}
		i++;
	}
	return found;
}

/* /keys/claim one-time keys and start Olm sessions with devs (user ->
 * [device]) that have none. */
static int
olm_claim(struct e2ee *e, struct mx *mx, const cJSON *devs, char **cause)
{
	cJSON *req = cJSON_CreateObject(), *otk = cJSON_AddObjectToObject(req,
	    "one_time_keys"), *want;
	const cJSON *u, *d, *ud, *k;
	struct mx_resp r;
	char *text;
	int any = 0;

	cJSON_ArrayForEach(u, devs) {
		want = NULL;
		cJSON_ArrayForEach(d, u) {
			const cJSON *dev = e2ee_device_get(e, u->string,
			    d->valuestring);

			if (dev == NULL || olm_find(e, json_text(dev,
			    "curve")) >= 0)
				continue;
			if (want == NULL)
				want = cJSON_AddObjectToObject(otk, u->string);
			cJSON_AddStringToObject(want, d->valuestring,
			    "signed_curve25519");
			any = 1;
		}
	}
	if (!any) {
		cJSON_Delete(req);
		return 0;
	}
	text = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	mx_call(mx, "POST", MX_V3 "/keys/claim", text, E2EE_CALL_MS, &r);
	free(text);
	if (r.status != 200) {
		*cause = mx_describe(&r);
		mx_resp_release(&r);
		return -1;
	}
	cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(r.json,
	    "one_time_keys")) {
		cJSON_ArrayForEach(ud, u) {
			const cJSON *dev = e2ee_device_get(e, u->string,
			    ud->string);
			char *eid = xasprintf("ed25519:%s", ud->string);

			cJSON_ArrayForEach(k, ud) {
				OlmSession *s;
				const char *key = json_str(k, "key");
				size_t rl;
				void *rb;

				if (dev == NULL || key == NULL ||
				    !str_startswith(k->string,
				    "signed_curve25519:") ||
				    !e2ee_verify_json(k, u->string, eid,
				    json_text(dev, "ed25519"))) {
					log_warnx("e2ee: one-time key of %s %s "
					    "missing or badly signed",
					    u->string, ud->string);
					continue;
				}
				s = e2ee_olm_new();
				rl = olm_create_outbound_session_random_length(
				    s);
				rb = e2ee_rnd(rl);
				if (olm_create_outbound_session(s, e->acct,
				    json_text(dev, "curve"),
				    strlen(json_text(dev, "curve")), key,
				    strlen(key), rb, rl) != olm_error())
					e2ee_olm_keep(e, json_text(dev, "curve"), s,
					    -1);
				free(rb);
				e2ee_olm_free(s);
				break;
			}
			free(eid);
		}
	}
	mx_resp_release(&r);
	return e2ee_store_save(e) == -1 ? (*cause = xstrdup("cannot write the "
	    "E2EE store"), -1) : 0;
}

static OlmOutboundGroupSession *live_load(struct e2ee *e, const char *room_id,
    cJSON *item);

/* A new outbound session for room; its entry in the store. */
static cJSON *
outbound_create(struct e2ee *e, const char *room_id)
{
	OlmOutboundGroupSession *s = e2ee_outbound_new();
	size_t n = olm_init_outbound_group_session_random_length(s);
	void *rb = e2ee_rnd(n);
	cJSON *out = e2ee_obj(e->store, "outbound"), *item;
	char *p, *id;

	olm_init_outbound_group_session(s, rb, n);
	sodium_memzero(rb, n);
	free(rb);
	n = olm_outbound_group_session_id_length(s);
	id = xmalloc(n + 1);
	olm_outbound_group_session_id(s, (uint8_t *)id, n);
	id[n] = '\0';
	p = e2ee_outbound_pickle(e, s);
	e2ee_outbound_free(s);
	cJSON_DeleteItemFromObjectCaseSensitive(out, room_id);
	item = cJSON_AddObjectToObject(out, room_id);
	cJSON_AddStringToObject(item, "pickle", p);
	cJSON_AddStringToObject(item, "session_id", id);
	cJSON_AddNumberToObject(item, "created", (double)now_ms());
	cJSON_AddNumberToObject(item, "count", 0);
	cJSON_AddArrayToObject(item, "shared");
	log_info("e2ee: new Megolm session %.12s… for %s", id, room_id);
	free(p);
	free(id);
	return item;
}

static OlmOutboundGroupSession *
outbound_load(struct e2ee *e, const cJSON *item)
{
	OlmOutboundGroupSession *s = e2ee_outbound_new();
	char *p = xstrdup(json_text(item, "pickle"));

	if (olm_unpickle_outbound_group_session(s, e->key, sizeof(e->key), p,
	    strlen(p)) == olm_error()) {
		e2ee_outbound_free(s);
		s = NULL;
	}
	free(p);
	return s;
}

static int
shared_with(const cJSON *item, const char *user, const char *device,
    const char *curve)
{
	const cJSON *sh;

	cJSON_ArrayForEach(sh, cJSON_GetObjectItemCaseSensitive(item,
	    "shared"))
		if (!strcmp(json_text(sh, "user"), user) &&
		    !strcmp(json_text(sh, "device"), device) &&
		    !strcmp(json_text(sh, "curve"), curve))
			return 1;
	return 0;
}

/*
 * Make sure room's outbound session exists, is fresh, and reached every
 * current device of every member.  Returns its store entry or NULL.
 */
static cJSON *
outbound_ready(struct e2ee *e, struct mx *mx, const char *room_id,
    const struct e2ee_room_cfg *cfg, char **cause)
{
	cJSON *item = cJSON_GetObjectItemCaseSensitive(
	    e2ee_obj(e->store, "outbound"), room_id);
	cJSON *devs = cJSON_CreateObject(), *query = cJSON_CreateArray();
	cJSON *msgs = NULL, *sh, *stale = e2ee_arr(e->store, "stale");
	const cJSON *mem, *u, *d;
	OlmOutboundGroupSession *s = NULL;
	char *text = NULL;
	int rotate = 0;

	if ((mem = members(e, mx, room_id, cause)) == NULL)
		goto fail;
	/* Devices of every member: the kept list, or a query. */
	cJSON_ArrayForEach(u, mem) {
		const cJSON *known = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(e->store, "devices"),
		    u->valuestring);

		if (known == NULL || e2ee_str_in(stale, u->valuestring))
			cJSON_AddItemToArray(query,
			    cJSON_CreateString(u->valuestring));
	}
	if (cJSON_GetArraySize(query) > 0 && e2ee_devices_query(e, mx, query, devs,
	    cause) == -1)
		goto fail;
	cJSON_ArrayForEach(u, query) {
		int i = 0;

		cJSON_ArrayForEach(d, stale) {
			if (!strcmp(d->valuestring, u->valuestring)) {
				cJSON_DeleteItemFromArray(stale, i);
				break;
			}
			i++;
		}
	}
	cJSON_ArrayForEach(u, mem) {
		const cJSON *known;

		if (cJSON_GetObjectItemCaseSensitive(devs, u->valuestring))
			continue;
		known = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(e->store, "devices"),
		    u->valuestring);
		{
			cJSON *list = cJSON_AddArrayToObject(devs,
			    u->valuestring);

			cJSON_ArrayForEach(d, known)
				if ((strcmp(u->valuestring, e->user_id) ||
				    strcmp(d->string, e->device_id)) &&
				    !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
				    d, "refused")))
					cJSON_AddItemToArray(list,
					    cJSON_CreateString(d->string));
		}
	}
	/* Rotate: too old, too used, or shared with a device that is no
	 * longer a current device of a member (left, or removed). */
	if (item != NULL) {
		if (now_ms() - (int64_t)json_num(item, "created") >=
		    cfg->rotation_ms ||
		    json_u64(item, "count") >= cfg->rotation_msgs)
			rotate = 1;
		cJSON_ArrayForEach(sh, cJSON_GetObjectItemCaseSensitive(item,
		    "shared")) {
			const cJSON *list = cJSON_GetObjectItemCaseSensitive(
			    devs, json_text(sh, "user"));
			const cJSON *dev = e2ee_device_get(e, json_text(sh, "user"),
			    json_text(sh, "device"));

			if (!e2ee_str_in(list, json_text(sh, "device")) ||
			    dev == NULL || strcmp(json_text(dev, "curve"),
			    json_text(sh, "curve")) != 0)
				rotate = 1;
		}
	}
	if (item == NULL || rotate) {
		item = outbound_create(e, room_id);
		if (e2ee_store_save(e) == -1) {
			*cause = xstrdup("cannot write the E2EE store");
			goto fail;
		}
	}
	if (olm_claim(e, mx, devs, cause) == -1)
		goto fail;
	/* the key from the live session: its next index on */
	if ((s = live_load(e, room_id, item)) == NULL) {
		*cause = xstrdup("unreadable outbound session");
		goto fail;
	}
	/* m.room_key to every device not yet given this session. */
	{
		cJSON *req = cJSON_CreateObject(), *content, *pending =
		    cJSON_CreateArray();
		size_t n = olm_outbound_group_session_key_length(s);
		char *skey = xmalloc(n + 1), *txn, *path;
		unsigned char tr[8];
		char hex[17];
		struct mx_resp r;
		int any = 0;

		olm_outbound_group_session_key(s, (uint8_t *)skey, n);
		skey[n] = '\0';
		content = cJSON_CreateObject();
		cJSON_AddStringToObject(content, "algorithm", E2EE_MEGOLM);
		cJSON_AddStringToObject(content, "room_id", room_id);
		cJSON_AddStringToObject(content, "session_id",
		    json_text(item, "session_id"));
		cJSON_AddStringToObject(content, "session_key", skey);
		sodium_memzero(skey, n);
		free(skey);
		msgs = cJSON_AddObjectToObject(req, "messages");
		cJSON_ArrayForEach(u, devs) {
			cJSON *um = NULL;

			cJSON_ArrayForEach(d, u) {
				const cJSON *dev = e2ee_device_get(e, u->string,
				    d->valuestring);
				OlmSession *os;
				int idx;

				if (dev == NULL || shared_with(item, u->string,
				    d->valuestring, json_text(dev, "curve")))
					continue;
				if ((idx = olm_find(e, json_text(dev,
				    "curve"))) < 0 || (os = e2ee_olm_load(e,
				    json_text(cJSON_GetArrayItem(e2ee_olm_list(e),
				    idx), "pickle"))) == NULL) {
					log_warnx("e2ee: no Olm session with "
					    "device %s of %s (no one-time key)",
					    d->valuestring, u->string);
					continue;
				}
				if (um == NULL)
					um = cJSON_AddObjectToObject(msgs,
					    u->string);
				cJSON_AddItemToObject(um, d->valuestring,
				    olm_encrypt_for(e, os, u->string,
				    d->valuestring, dev, "m.room_key",
				    content));
				e2ee_olm_keep(e, json_text(dev, "curve"), os, idx);
				e2ee_olm_free(os);
				sh = cJSON_CreateObject();
				cJSON_AddStringToObject(sh, "user", u->string);
				cJSON_AddStringToObject(sh, "device",
				    d->valuestring);
				cJSON_AddStringToObject(sh, "curve",
				    json_text(dev, "curve"));
				cJSON_AddItemToArray(pending, sh);
				any = 1;
			}
		}
		cJSON_Delete(content);
		if (any) {
			/* Olm ratchets on disk before the messages leave. */
			if (e2ee_store_save(e) == -1) {
				*cause = xstrdup("cannot write the E2EE store");
				cJSON_Delete(req);
				cJSON_Delete(pending);
				goto fail;
			}
			text = cJSON_PrintUnformatted(req);
			randombytes_buf(tr, sizeof(tr));
			sodium_bin2hex(hex, sizeof(hex), tr, sizeof(tr));
			txn = xasprintf("bbk.%s", hex);
			path = xasprintf(MX_V3
			    "/sendToDevice/m.room.encrypted/%s", txn);
			mx_call(mx, "PUT", path, text, E2EE_CALL_MS, &r);
			free(path);
			free(txn);
			if (r.status != 200) {
				*cause = mx_describe(&r);
				mx_resp_release(&r);
				cJSON_Delete(req);
				cJSON_Delete(pending);
				goto fail;
			}
			mx_resp_release(&r);
			{
				cJSON *shared = e2ee_arr(item, "shared");

				while (cJSON_GetArraySize(pending) > 0)
					cJSON_AddItemToArray(shared,
					    cJSON_DetachItemFromArray(pending,
					    0));
			}
			e2ee_store_save(e);
		}
		cJSON_Delete(pending);
		cJSON_Delete(req);
	}
	e2ee_outbound_free(s);
	free(text);
	cJSON_Delete(devs);
	cJSON_Delete(query);
	return item;
fail:
	e2ee_outbound_free(s);
	free(text);
	cJSON_Delete(devs);
	cJSON_Delete(query);
	return NULL;
}

/*
 * The live outbound session of room's store entry item, loaded (caller
 * frees).  After a restart the live session starts from the stored one,
 * which is past every index used before.
 */
static OlmOutboundGroupSession *
live_load(struct e2ee *e, const char *room_id, cJSON *item)
{
	cJSON *live = cJSON_GetObjectItemCaseSensitive(e->live, room_id);
	OlmOutboundGroupSession *s;

	if (live == NULL || strcmp(json_text(live, "session_id"),
	    json_text(item, "session_id")) != 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(e->live, room_id);
		live = cJSON_AddObjectToObject(e->live, room_id);
		cJSON_AddStringToObject(live, "session_id",
		    json_text(item, "session_id"));
		cJSON_AddStringToObject(live, "pickle", json_text(item,
		    "pickle"));
	}
	if ((s = outbound_load(e, live)) != NULL && json_u64(item, "count") <
	    olm_outbound_group_session_message_index(s))
		e2ee_set_num(item, "count",
		    olm_outbound_group_session_message_index(s));
	return s;
}

/* Keep the stored session E2EE_RESERVE indexes ahead of live (at index). */
static int
reserve(struct e2ee *e, cJSON *item, OlmOutboundGroupSession *live)
{
	uint32_t index = olm_outbound_group_session_message_index(live);
	OlmOutboundGroupSession *ahead;
	uint8_t buf[512];
	char *p;

	if (json_u64(item, "reserved") > index)
		return 0;
	/* a copy of live, moved on by E2EE_RESERVE throwaway messages */
	p = e2ee_outbound_pickle(e, live);
	ahead = e2ee_outbound_new();
	if (olm_unpickle_outbound_group_session(ahead, e->key, sizeof(e->key),
	    p, strlen(p)) == olm_error()) {
		free(p);
		e2ee_outbound_free(ahead);
		return -1;
	}
	free(p);
	for (int i = 0; i < E2EE_RESERVE; i++) {
		size_t n = olm_group_encrypt_message_length(ahead, 1);

		if (n > sizeof(buf) || olm_group_encrypt(ahead,
		    (const uint8_t *)"-", 1, buf, n) == olm_error()) {
			e2ee_outbound_free(ahead);
			return -1;
		}
	}
	p = e2ee_outbound_pickle(e, ahead);
	e2ee_outbound_free(ahead);
	e2ee_set_str(item, "pickle", p);
	free(p);
	e2ee_set_num(item, "reserved", (double)index + E2EE_RESERVE);
	return e2ee_store_save(e);
}

static int
encrypt_now(struct e2ee *e, struct mx *mx, const char *room_id,
    const struct e2ee_room_cfg *cfg, const char *type, const cJSON *content,
    cJSON **out, char **session_id, char **cause)
{
	cJSON *item, *p, *inner, *live;
	const cJSON *rel;
	OlmOutboundGroupSession *s;
	char *text, *msg = NULL, *pk;
	size_t ml;

	*out = NULL;
	*session_id = NULL;
	*cause = NULL;
	if ((item = outbound_ready(e, mx, room_id, cfg, cause)) == NULL)
		return -1;
	if ((s = live_load(e, room_id, item)) == NULL) {
		*cause = xstrdup("unreadable outbound session");
		return -1;
	}
	/* The index about to be used is on disk as used, before use. */
	if (reserve(e, item, s) == -1) {
		*cause = xstrdup("cannot write the E2EE store");
		e2ee_outbound_free(s);
		return -1;
	}
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "type", type);
	inner = cJSON_Duplicate(content, 1);
	/* Relations go in the clear only (the server aggregates them). */
	cJSON_DeleteItemFromObjectCaseSensitive(inner, "m.relates_to");
	cJSON_AddItemToObject(p, "content", inner);
	cJSON_AddStringToObject(p, "room_id", room_id);
	text = cJSON_PrintUnformatted(p);
	cJSON_Delete(p);
	ml = olm_group_encrypt_message_length(s, strlen(text));
	msg = xmalloc(ml + 1);
	if (olm_group_encrypt(s, (uint8_t *)text, strlen(text), (uint8_t *)msg,
	    ml) == olm_error()) {
		*cause = xasprintf("Megolm: %s",
		    olm_outbound_group_session_last_error(s));
		goto fail;
	}
	msg[ml] = '\0';
	pk = e2ee_outbound_pickle(e, s);
	live = cJSON_GetObjectItemCaseSensitive(e->live, room_id);
	e2ee_set_str(live, "pickle", pk);
	sodium_memzero(pk, strlen(pk));
	free(pk);
	/* in memory: after a restart, count starts from the stored index */
	e2ee_set_num(item, "count", (double)(json_u64(item, "count") + 1));
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "algorithm", E2EE_MEGOLM);
	cJSON_AddStringToObject(*out, "sender_key", e2ee_curve25519(e));
	cJSON_AddStringToObject(*out, "ciphertext", msg);
	cJSON_AddStringToObject(*out, "session_id",
	    json_text(item, "session_id"));
	cJSON_AddStringToObject(*out, "device_id", e->device_id);
	rel = cJSON_GetObjectItemCaseSensitive(content, "m.relates_to");
	if (rel != NULL)
		cJSON_AddItemToObject(*out, "m.relates_to",
		    cJSON_Duplicate(rel, 1));
	*session_id = xstrdup(json_text(item, "session_id"));
	sodium_memzero(text, strlen(text));
	free(text);
	free(msg);
	e2ee_outbound_free(s);
	return 0;
fail:
	sodium_memzero(text, strlen(text));
	free(text);
	free(msg);
	e2ee_outbound_free(s);
	return -1;
}

int
e2ee_encrypt(struct e2ee *e, struct mx *mx, const char *room_id,
    const struct e2ee_room_cfg *cfg, const char *type, const cJSON *content,
    cJSON **out, char **session_id, char **cause)
{
	int r = encrypt_now(e, mx, room_id, cfg, type, content, out,
	    session_id, cause);

	/* Only now: saying a warning encrypts, and may rotate sessions. */
	e2ee_warnings_say(e);
	return r;
}
