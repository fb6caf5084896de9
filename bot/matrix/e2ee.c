/*
 * e2ee.c - Olm device, Olm sessions and Megolm sessions (see e2ee.h).
 *
 * libolm objects live only for the length of one operation: they are
 * unpickled from the store, used, pickled back.  Only the account stays
 * in memory.  This keeps one source of truth (the JSON store) and costs
 * a few microseconds per message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "e2ee.h"
#include "json.h"
#include "log.h"
#include "matrix.h"
#include "sync.h"
#include "util.h"

#include "e2ee_parts.h"

/* ---- small helpers ---------------------------------------------------- */

cJSON *
e2ee_obj(cJSON *j, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	if (!cJSON_IsObject(v)) {
		cJSON_DeleteItemFromObjectCaseSensitive(j, key);
		v = cJSON_AddObjectToObject(j, key);
	}
	return v;
}

cJSON *
e2ee_arr(cJSON *j, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	if (!cJSON_IsArray(v)) {
		cJSON_DeleteItemFromObjectCaseSensitive(j, key);
		v = cJSON_AddArrayToObject(j, key);
	}
	return v;
}

void
e2ee_set_str(cJSON *j, const char *key, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(j, key);
	cJSON_AddStringToObject(j, key, v);
}

void
e2ee_set_num(cJSON *j, const char *key, double v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(j, key);
	cJSON_AddNumberToObject(j, key, v);
}

void *
e2ee_rnd(size_t n)
{
	void *p = xmalloc(n ? n : 1);

	randombytes_buf(p, n);
	return p;
}

int
e2ee_str_in(const cJSON *arr, const char *s)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, arr)
		if (cJSON_IsString(v) && !strcmp(v->valuestring, s))
			return 1;
	return 0;
}

/* ---- pickles ---------------------------------------------------------- */

static char *
pickle_account(struct e2ee *e)
{
	size_t n = olm_pickle_account_length(e->acct);
	char *p = xmalloc(n + 1);

	if (olm_pickle_account(e->acct, e->key, sizeof(e->key), p, n) ==
	    olm_error())
		fatalx("olm: pickle account: %s",
		    olm_account_last_error(e->acct));
	p[n] = '\0';
	return p;
}

OlmSession *
e2ee_olm_new(void)
{
	return olm_session(xmalloc(olm_session_size()));
}

void
e2ee_olm_free(OlmSession *s)
{
	if (s != NULL) {
		olm_clear_session(s);
		free(s);
	}
}

OlmSession *
e2ee_olm_load(struct e2ee *e, const char *pickle)
{
	OlmSession *s = e2ee_olm_new();
	char *p = xstrdup(pickle);

	if (olm_unpickle_session(s, e->key, sizeof(e->key), p, strlen(p)) ==
	    olm_error()) {
		log_warnx("e2ee: unreadable Olm session: %s",
		    olm_session_last_error(s));
		e2ee_olm_free(s);
		s = NULL;
	}
	free(p);
	return s;
}

static char *
session_pickle(struct e2ee *e, OlmSession *s)
{
	size_t n = olm_pickle_session_length(s);
	char *p = xmalloc(n + 1);

	olm_pickle_session(s, e->key, sizeof(e->key), p, n);
	p[n] = '\0';
	return p;
}

static OlmInboundGroupSession *
inbound_new(void)
{
	return olm_inbound_group_session(xmalloc(
	    olm_inbound_group_session_size()));
}

static void
inbound_free(OlmInboundGroupSession *s)
{
	if (s != NULL) {
		olm_clear_inbound_group_session(s);
		free(s);
	}
}

OlmOutboundGroupSession *
e2ee_outbound_new(void)
{
	return olm_outbound_group_session(xmalloc(
	    olm_outbound_group_session_size()));
}

void
e2ee_outbound_free(OlmOutboundGroupSession *s)
{
	if (s != NULL) {
		olm_clear_outbound_group_session(s);
		free(s);
	}
}

char *
e2ee_outbound_pickle(struct e2ee *e, OlmOutboundGroupSession *s)
{
	size_t n = olm_pickle_outbound_group_session_length(s);
	char *p = xmalloc(n + 1);

	olm_pickle_outbound_group_session(s, e->key, sizeof(e->key), p, n);
	p[n] = '\0';
	return p;
}

/* ---- the store -------------------------------------------------------- */

int
e2ee_store_save(struct e2ee *e)
{
	char *p = pickle_account(e), *text;
	int r;

	e2ee_set_str(e->store, "account", p);
	sodium_memzero(p, strlen(p));
	free(p);
	text = cJSON_PrintUnformatted(e->store);
	r = file_write_atomic(e->path, text, strlen(text), 0600);
	if (r == -1)
		log_warn("e2ee: cannot write %s", e->path);
	else
		e->dirty = 0;
	sodium_memzero(text, strlen(text));
	free(text);
	return r;
}

int
e2ee_flush(struct e2ee *e)
{
	return e->dirty ? e2ee_store_save(e) : 0;
}

static char *
store_path(const char *dir)
{
	return xasprintf("%s/e2ee.json", dir);
}

static cJSON *
store_read(const char *path, char **cause)
{
	size_t len;
	char *text = file_read(path, E2EE_STORE_MAX, &len);
	cJSON *j;

	if (text == NULL) {
		if (errno != ENOENT)
			*cause = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	j = cJSON_ParseWithLength(text, len);
	free(text);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		*cause = xasprintf("%s: not a JSON object", path);
		return NULL;
	}
	return j;
}

char *
e2ee_stored_device(const char *dir)
{
	char *path = store_path(dir), *cause = NULL, *d = NULL;
	cJSON *j = store_read(path, &cause);

	if (j != NULL && json_str(j, "device_id") != NULL)
		d = xstrdup(json_str(j, "device_id"));
	cJSON_Delete(j);
	free(cause);
	free(path);
	return d;
}

static void
identity_keys(struct e2ee *e)
{
	size_t n = olm_account_identity_keys_length(e->acct);
	char *buf = xmalloc(n + 1);
	cJSON *j;

	olm_account_identity_keys(e->acct, buf, n);
	buf[n] = '\0';
	j = cJSON_Parse(buf);
	if (json_str(j, "curve25519") == NULL || json_str(j, "ed25519") == NULL)
		fatalx("olm: identity keys unreadable");
	e2ee_set_str(e->store, "curve25519", json_str(j, "curve25519"));
	e2ee_set_str(e->store, "ed25519", json_str(j, "ed25519"));
	cJSON_Delete(j);
	free(buf);
}

struct e2ee *
e2ee_open(const char *dir, const unsigned char *key, const char *user_id,
    const char *device_id, enum e2ee_trust trust, char **cause)
{
	struct e2ee *e = xcalloc(1, sizeof(*e));
	const char *p;

	*cause = NULL;
	if (olm_dl_load(cause) == -1) {
		free(e);
		return NULL;
	}
	e->path = store_path(dir);
	memcpy(e->key, key, sizeof(e->key));
	e->user_id = xstrdup(user_id);
	e->device_id = xstrdup(device_id);
	e->trust = trust;
	e->members = cJSON_CreateObject();
	e->live = cJSON_CreateObject();
	e->warnings = cJSON_CreateArray();
	e->acct = olm_account(xmalloc(olm_account_size()));
	e->store = store_read(e->path, cause);
	if (e->store == NULL && *cause != NULL)
		goto fail;
	if (e->store != NULL) {
		if (json_str(e->store, "user_id") == NULL ||
		    strcmp(json_str(e->store, "user_id"), user_id) != 0 ||
		    json_str(e->store, "device_id") == NULL ||
		    strcmp(json_str(e->store, "device_id"), device_id) != 0) {
			*cause = xasprintf("%s belongs to device %s of %s, but "
			    "the session is device %s; log in with the stored "
			    "device, or start a new one with `backupbot e2ee "
			    "reset`", e->path, json_text(e->store, "device_id"),
			    json_text(e->store, "user_id"), device_id);
			goto fail;
		}
		if ((p = json_str(e->store, "account")) == NULL) {
			*cause = xasprintf("%s has no account", e->path);
			goto fail;
		}
		{
			char *copy = xstrdup(p);
			size_t r = olm_unpickle_account(e->acct, e->key,
			    sizeof(e->key), copy, strlen(copy));

			free(copy);
			if (r == olm_error()) {
				*cause = xasprintf("%s: cannot read the "
				    "account (%s): wrong pickle key?", e->path,
				    olm_account_last_error(e->acct));
				goto fail;
			}
		}
		identity_keys(e);
		return e;
	}
	/* First start: a new device identity. */
	{
		size_t n = olm_create_account_random_length(e->acct);
		void *r = e2ee_rnd(n);

		if (olm_create_account(e->acct, r, n) == olm_error())
			fatalx("olm: create account: %s",
			    olm_account_last_error(e->acct));
		sodium_memzero(r, n);
		free(r);
	}
	e->store = cJSON_CreateObject();
	cJSON_AddNumberToObject(e->store, "version", 1);
	cJSON_AddStringToObject(e->store, "user_id", user_id);
	cJSON_AddStringToObject(e->store, "device_id", device_id);
	cJSON_AddBoolToObject(e->store, "keys_uploaded", 0);
	identity_keys(e);
	if (e2ee_store_save(e) == -1) {
		*cause = xasprintf("cannot write %s", e->path);
		goto fail;
	}
	log_info("e2ee: new Olm device %s, ed25519 %s", device_id,
	    json_str(e->store, "ed25519"));
	return e;
fail:
	e2ee_free(e);
	return NULL;
}

void
e2ee_free(struct e2ee *e)
{
	if (e == NULL)
		return;
	if (e->acct != NULL) {
		olm_clear_account(e->acct);
		free(e->acct);
	}
	sodium_memzero(e->key, sizeof(e->key));
	cJSON_Delete(e->store);
	cJSON_Delete(e->members);
	cJSON_Delete(e->live);
	cJSON_Delete(e->warnings);
	free(e->path);
	free(e->user_id);
	free(e->device_id);
	free(e);
}

void
e2ee_set_warn(struct e2ee *e, e2ee_warn_fn fn, void *arg)
{
	e->warn = fn;
	e->warn_arg = arg;
}

const char *
e2ee_device_id(const struct e2ee *e)
{
	return e->device_id;
}

const char *
e2ee_ed25519(const struct e2ee *e)
{
	return json_text(e->store, "ed25519");
}

const char *
e2ee_curve25519(const struct e2ee *e)
{
	return json_text(e->store, "curve25519");
}

char *
e2ee_fingerprint(const char *ed)
{
	struct buf b;

	buf_init(&b, 256);
	for (size_t i = 0; ed[i] != '\0'; i++) {
		if (i > 0 && i % 4 == 0)
			buf_adds(&b, " ");
		buf_add(&b, &ed[i], 1);
	}
	return buf_detach(&b, NULL);
}

/* ---- canonical JSON and signatures ----------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
canon(struct buf *b, const cJSON *j, int top)
{
	if (cJSON_IsObject(j)) {
		const cJSON *c;
		const char **keys;
		size_t n = 0, k = 0;
		int r = 0;

		cJSON_ArrayForEach(c, j)
			n++;
		keys = xcalloc(n + 1, sizeof(*keys));
		cJSON_ArrayForEach(c, j) {
			if (c->string == NULL || (top &&
			    (!strcmp(c->string, "signatures") ||
			    !strcmp(c->string, "unsigned"))))
				continue;
			keys[k++] = c->string;
		}
		qsort(keys, k, sizeof(*keys), cmp_str);
		buf_adds(b, "{");
		for (size_t i = 0; i < k && r == 0; i++) {
			cJSON s = { .type = cJSON_String,
			    .valuestring = (char *)keys[i] };

			if (i > 0)
				buf_adds(b, ",");
			canon(b, &s, 0);
			buf_adds(b, ":");
			r = canon(b, cJSON_GetObjectItemCaseSensitive(j,
			    keys[i]), 0);
		}
		buf_adds(b, "}");
		free(keys);
		return r;
	}
	if (cJSON_IsArray(j)) {
		const cJSON *c;
		int first = 1;

		buf_adds(b, "[");
		cJSON_ArrayForEach(c, j) {
			if (!first)
				buf_adds(b, ",");
			first = 0;
			if (canon(b, c, 0) == -1)
				return -1;
		}
		buf_adds(b, "]");
		return 0;
	}
	if (cJSON_IsString(j)) {
		buf_adds(b, "\"");
		for (const unsigned char *s = (const unsigned char *)
		    j->valuestring; *s != '\0'; s++) {
			switch (*s) {
			case '"':  buf_adds(b, "\\\""); break;
			case '\\': buf_adds(b, "\\\\"); break;
			case '\b': buf_adds(b, "\\b"); break;
			case '\f': buf_adds(b, "\\f"); break;
			case '\n': buf_adds(b, "\\n"); break;
			case '\r': buf_adds(b, "\\r"); break;
			case '\t': buf_adds(b, "\\t"); break;
			default:
				if (*s < 0x20)
					buf_addf(b, "\\u%04x", *s);
				else
					buf_add(b, s, 1);
			}
		}
		buf_adds(b, "\"");
		return 0;
	}
	if (cJSON_IsNumber(j)) {
		double v = j->valuedouble;

		if (!(v >= -JSON_NUM_MAX && v <= JSON_NUM_MAX) ||
		    v != (double)(long long)v)
			return -1;
		buf_addf(b, "%lld", (long long)v);
		return 0;
	}
	if (cJSON_IsTrue(j))
		buf_adds(b, "true");
	else if (cJSON_IsFalse(j))
		buf_adds(b, "false");
	else
		buf_adds(b, "null");
	return 0;
}

char *
e2ee_canonical(const cJSON *j)
{
	struct buf b;

	buf_init(&b, MX_BODY_CAP);
	if (canon(&b, j, 1) == -1) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

/* Sign j with the device key: adds signatures.USER."ed25519:DEVICE". */
static void
sign_json(struct e2ee *e, cJSON *j)
{
	char *text = e2ee_canonical(j), *sig, *kid;
	size_t n = olm_account_signature_length(e->acct);
	cJSON *sigs, *mine;

	sig = xmalloc(n + 1);
	olm_account_sign(e->acct, text, strlen(text), sig, n);
	sig[n] = '\0';
	sigs = e2ee_obj(j, "signatures");
	mine = e2ee_obj(sigs, e->user_id);
	kid = xasprintf("ed25519:%s", e->device_id);
	e2ee_set_str(mine, kid, sig);
	free(kid);
	free(sig);
	free(text);
}

/* 1 if j carries a good signature by user's key key_id (ed25519 ed). */
int
e2ee_verify_json(const cJSON *j, const char *user, const char *key_id,
    const char *ed)
{
	const cJSON *sigs = cJSON_GetObjectItemCaseSensitive(j, "signatures");
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(sigs, user);
	const char *sig = json_str(u, key_id);
	OlmUtility *ut;
	char *text, *sigcopy;
	size_t r;

	if (sig == NULL || ed == NULL || olm_dl_load(NULL) == -1 ||
	    (text = e2ee_canonical(j)) == NULL)
		return 0;
	ut = olm_utility(xmalloc(olm_utility_size()));
	sigcopy = xstrdup(sig);
	r = olm_ed25519_verify(ut, ed, strlen(ed), text, strlen(text),
	    sigcopy, strlen(sigcopy));
	olm_clear_utility(ut);
	free(ut);
	free(sigcopy);
	free(text);
	return r != olm_error();
}

/* ---- key upload ------------------------------------------------------- */

/* {"curve25519": {id: key}} from libolm into signed_curve25519 objects. */
static void
add_signed_keys(struct e2ee *e, const char *olm_json, cJSON *into,
    int fallback)
{
	cJSON *j = cJSON_Parse(olm_json), *c, *k;

	c = cJSON_GetObjectItemCaseSensitive(j, "curve25519");
	cJSON_ArrayForEach(k, c) {
		cJSON *one;
		char *kid;

		if (!cJSON_IsString(k))
			continue;
		one = cJSON_CreateObject();
		cJSON_AddStringToObject(one, "key", k->valuestring);
		if (fallback)
			cJSON_AddTrueToObject(one, "fallback");
		sign_json(e, one);
		kid = xasprintf("signed_curve25519:%s", k->string);
		cJSON_AddItemToObject(into, kid, one);
		free(kid);
	}
	cJSON_Delete(j);
}

static cJSON *
device_keys(struct e2ee *e)
{
	cJSON *dk = cJSON_CreateObject(), *alg, *keys;
	char *kid;

	cJSON_AddStringToObject(dk, "user_id", e->user_id);
	cJSON_AddStringToObject(dk, "device_id", e->device_id);
	alg = cJSON_AddArrayToObject(dk, "algorithms");
	cJSON_AddItemToArray(alg, cJSON_CreateString(E2EE_OLM));
	cJSON_AddItemToArray(alg, cJSON_CreateString(E2EE_MEGOLM));
	keys = cJSON_AddObjectToObject(dk, "keys");
	kid = xasprintf("curve25519:%s", e->device_id);
	cJSON_AddStringToObject(keys, kid, e2ee_curve25519(e));
	free(kid);
	kid = xasprintf("ed25519:%s", e->device_id);
	cJSON_AddStringToObject(keys, kid, e2ee_ed25519(e));
	free(kid);
	sign_json(e, dk);
	return dk;
}

static char *
olm_keys_json(OlmAccount *a, int fallback)
{
	size_t n = fallback ? olm_account_unpublished_fallback_key_length(a) :
	    olm_account_one_time_keys_length(a);
	char *s = xmalloc(n + 1);

	if (fallback)
		olm_account_unpublished_fallback_key(a, s, n);
	else
		olm_account_one_time_keys(a, s, n);
	s[n] = '\0';
	return s;
}

int
e2ee_upload_keys(struct e2ee *e, struct mx *mx, long otk_count,
    int need_fallback, char **cause)
{
	size_t target = olm_account_max_number_of_one_time_keys(e->acct) / 2;
	cJSON *req = cJSON_CreateObject(), *otk, *fb;
	char *otks, *fbs, *text;
	struct mx_resp r;
	int uploaded = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e->store,
	    "keys_uploaded")), rc = -1;

	*cause = NULL;
	if (otk_count < 0) {
		/* An upload with no keys answers the current count. */
		mx_call(mx, "POST", MX_V3 "/keys/upload", "{}", E2EE_CALL_MS,
		    &r);
		if (r.status == 200) {
			const cJSON *c = cJSON_GetObjectItemCaseSensitive(
			    r.json, "one_time_key_counts");

			otk_count = (long)json_u64(c, "signed_curve25519");
		}
		mx_resp_release(&r);
		if (otk_count < 0)
			otk_count = 0;
	}
	if ((size_t)otk_count < target) {
		size_t want = target - (size_t)otk_count;
		size_t n = olm_account_generate_one_time_keys_random_length(
		    e->acct, want);
		void *rb = e2ee_rnd(n);

		olm_account_generate_one_time_keys(e->acct, want, rb, n);
		sodium_memzero(rb, n);
		free(rb);
	}
	if (need_fallback || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
	    e->store, "fallback_made"))) {
		size_t n = olm_account_generate_fallback_key_random_length(
		    e->acct);
		void *rb = e2ee_rnd(n);

		olm_account_generate_fallback_key(e->acct, rb, n);
		sodium_memzero(rb, n);
		free(rb);
		cJSON_DeleteItemFromObjectCaseSensitive(e->store,
		    "fallback_made");
		cJSON_AddTrueToObject(e->store, "fallback_made");
	}
	/* Keys exist on disk before any server sees them. */
	if (e2ee_store_save(e) == -1) {
		*cause = xstrdup("cannot write the E2EE store");
		cJSON_Delete(req);
		return -1;
	}
	if (!uploaded)
		cJSON_AddItemToObject(req, "device_keys", device_keys(e));
	otks = olm_keys_json(e->acct, 0);
	fbs = olm_keys_json(e->acct, 1);
	otk = cJSON_CreateObject();
	add_signed_keys(e, otks, otk, 0);
	fb = cJSON_CreateObject();
	add_signed_keys(e, fbs, fb, 1);
	free(otks);
	free(fbs);
	if (cJSON_GetArraySize(otk) > 0)
		cJSON_AddItemToObject(req, "one_time_keys", otk);
	else
		cJSON_Delete(otk);
	if (cJSON_GetArraySize(fb) > 0)
		cJSON_AddItemToObject(req, "fallback_keys", fb);
	else
		cJSON_Delete(fb);
	if (cJSON_GetArraySize(req) == 0) {
		cJSON_Delete(req);
		return 0;
	}
	text = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	mx_call(mx, "POST", MX_V3 "/keys/upload", text, E2EE_CALL_MS, &r);
	free(text);
	if (r.status != 200) {
		*cause = mx_describe(&r);
		goto done;
	}
	olm_account_mark_keys_as_published(e->acct);
	cJSON_DeleteItemFromObjectCaseSensitive(e->store, "keys_uploaded");
	cJSON_AddTrueToObject(e->store, "keys_uploaded");
	if (e2ee_store_save(e) == -1) {
		*cause = xstrdup("cannot write the E2EE store");
		goto done;
	}
	if (!uploaded)
		log_info("e2ee: device keys of %s uploaded", e->device_id);
	rc = 0;
done:
	mx_resp_release(&r);
	return rc;
}

/* ---- devices ---------------------------------------------------------- */

/* The kept keys of user's device, or NULL. */
const cJSON *
e2ee_device_get(struct e2ee *e, const char *user, const char *device)
{
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(e->store, "devices"), user);

	return cJSON_GetObjectItemCaseSensitive(u, device);
}

static void
warn(struct e2ee *e, const char *user, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
warn(struct e2ee *e, const char *user, const char *fmt, ...)
{
	va_list ap;
	char *s;

	cJSON *w;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	log_warnx("e2ee: %s", s);
	/* Said once the operation is over: saying it may encrypt. */
	if (e->warn != NULL && cJSON_GetArraySize(e->warnings) < 100) {
		w = cJSON_CreateArray();
		cJSON_AddItemToArray(w, cJSON_CreateString(user));
		cJSON_AddItemToArray(w, cJSON_CreateString(s));
		cJSON_AddItemToArray(e->warnings, w);
	}
	free(s);
}

/* Hand the pending warnings to the caller's function. */
void
e2ee_warnings_say(struct e2ee *e)
{
	cJSON *list = e->warnings, *w;

	if (cJSON_GetArraySize(list) == 0)
		return;
	e->warnings = cJSON_CreateArray();
	cJSON_ArrayForEach(w, list)
		e->warn(e->warn_arg, cJSON_GetArrayItem(w, 0)->valuestring,
		    cJSON_GetArrayItem(w, 1)->valuestring);
	cJSON_Delete(list);
}

/*
 * In verified mode: 1 if dk is signed by user's self-signing key, itself
 * signed by the user's master key, from a /keys/query response.  The
 * master key is pinned when first seen (in "masters"): a server that
 * swaps it for its own is refused and announced.
 */
static int
cross_signed(struct e2ee *e, const cJSON *resp, const char *user,
    const cJSON *dk)
{
	const cJSON *mk = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(resp, "master_keys"), user);
	const cJSON *sk = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(resp, "self_signing_keys"), user);
	const cJSON *k;
	const char *mpub = NULL, *spub = NULL;
	char *mid = NULL, *sid = NULL;
	int ok = 0;

	cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(mk, "keys"))
		if (cJSON_IsString(k) && str_startswith(k->string, "ed25519:")) {
			mpub = k->valuestring;
			mid = xstrdup(k->string);
		}
	cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(sk, "keys"))
		if (cJSON_IsString(k) && str_startswith(k->string, "ed25519:")) {
			spub = k->valuestring;
			sid = xstrdup(k->string);
		}
	if (mpub != NULL && spub != NULL &&
	    !strcmp(json_text(mk, "user_id"), user) &&
	    !strcmp(json_text(sk, "user_id"), user) &&
	    e2ee_verify_json(sk, user, mid, mpub) &&
	    e2ee_verify_json(dk, user, sid, spub))
		ok = 1;
	if (ok) {
		cJSON *masters = e2ee_obj(e->store, "masters");
		const char *pinned = json_str(masters, user);

		if (pinned == NULL) {
			cJSON_AddStringToObject(masters, user, mpub);
			e->dirty = 1;
		} else if (strcmp(pinned, mpub) != 0) {
			warn(e, user, "⚠️ the cross-signing identity of %s "
			    "changed; I share no room keys with its devices. "
			    "If this is expected, run `backupbot e2ee reset`.",
			    user);
			ok = 0;
		}
	}
	free(mid);
	free(sid);
	return ok;
}

/*
 * Check one device of a /keys/query answer and keep it: 0, or -1 when
 * refused (bad signature, keys changed, not verified).
 */
static int
device_accept(struct e2ee *e, const cJSON *resp, const char *user,
    const char *device, const cJSON *dk)
{
	const cJSON *keys = cJSON_GetObjectItemCaseSensitive(dk, "keys");
	const cJSON *old;
	char *cid = xasprintf("curve25519:%s", device);
	char *eid = xasprintf("ed25519:%s", device);
	const char *curve = json_str(keys, cid), *ed = json_str(keys, eid);
	cJSON *u, *d;
	int rc = -1, refuse = 0;

	if (strcmp(json_text(dk, "user_id"), user) != 0 ||
	    strcmp(json_text(dk, "device_id"), device) != 0 ||
	    curve == NULL || ed == NULL || !e2ee_verify_json(dk, user, eid, ed)) {
		log_warnx("e2ee: device %s of %s: keys badly signed; ignored",
		    device, user);
		goto done;
	}
	if (e->trust == E2EE_VERIFIED && !cross_signed(e, resp, user, dk)) {
		log_info("e2ee: device %s of %s is not cross-signed; no keys "
		    "shared with it (e2ee_trust = verified)", device, user);
		refuse = 1;
		goto done;
	}
	if ((old = e2ee_device_get(e, user, device)) != NULL) {
		if (strcmp(json_text(old, "curve"), curve) != 0 ||
		    strcmp(json_text(old, "ed25519"), ed) != 0) {
			warn(e, user, "⚠️ the keys of device %s of %s "
			    "changed; I no longer share room keys with it. "
			    "If this is expected, run `backupbot e2ee reset` "
			    "or remove the device.", device, user);
			goto done;
		}
		rc = 0;
		goto done;
	}
	u = e2ee_obj(e2ee_obj(e->store, "devices"), user);
	if (cJSON_GetArraySize(u) > 0)
		warn(e, user, "🔑 %s has a new device %s (ed25519 %s); room "
		    "keys are shared with it.", user, device, ed);
	d = cJSON_AddObjectToObject(u, device);
	cJSON_AddStringToObject(d, "curve", curve);
	cJSON_AddStringToObject(d, "ed25519", ed);
	rc = 0;
done:
	/*
	 * A kept device no longer cross-signed is not used from the kept
	 * list either, until a query accepts it again.  (A device whose keys
	 * changed keeps its first keys: only their holder can read.)
	 */
	if ((d = (cJSON *)e2ee_device_get(e, user, device)) != NULL &&
	    (refuse || rc == 0)) {
		cJSON_DeleteItemFromObjectCaseSensitive(d, "refused");
		if (refuse)
			cJSON_AddTrueToObject(d, "refused");
		e->dirty = 1;
	}
	free(cid);
	free(eid);
	return rc;
}

/*
 * /keys/query for users whose device list is unknown or stale.  Leaves
 * in *accepted (an object user -> [device]) what may be shared with.
 */
int
e2ee_devices_query(struct e2ee *e, struct mx *mx, const cJSON *users,
    cJSON *accepted, char **cause)
{
	cJSON *req = cJSON_CreateObject(), *dk = cJSON_AddObjectToObject(req,
	    "device_keys");
	const cJSON *u, *resp_dk, *ud, *d;
	struct mx_resp r;
	char *text;

	cJSON_ArrayForEach(u, users)
		cJSON_AddArrayToObject(dk, u->valuestring);
	text = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	mx_call(mx, "POST", MX_V3 "/keys/query", text, E2EE_CALL_MS, &r);
	free(text);
	if (r.status != 200 || !cJSON_IsObject(resp_dk =
	    cJSON_GetObjectItemCaseSensitive(r.json, "device_keys"))) {
		*cause = mx_describe(&r);
		mx_resp_release(&r);
		return -1;
	}
	cJSON_ArrayForEach(u, users) {
		cJSON *list = cJSON_AddArrayToObject(accepted, u->valuestring);

		ud = cJSON_GetObjectItemCaseSensitive(resp_dk, u->valuestring);
		cJSON_ArrayForEach(d, ud) {
			if (cJSON_GetArraySize(list) >= E2EE_MAX_DEVICES)
				break;
			if (d->string == NULL || !cJSON_IsObject(d))
				continue;
			if (!strcmp(u->valuestring, e->user_id) &&
			    !strcmp(d->string, e->device_id))
				continue;	/* ourselves */
			if (device_accept(e, r.json, u->valuestring, d->string,
			    d) == 0)
				cJSON_AddItemToArray(list,
				    cJSON_CreateString(d->string));
		}
	}
	mx_resp_release(&r);
	return 0;
}

/* ---- Olm -------------------------------------------------------------- */

/* Olm sessions with the device of curve key curve. */
cJSON *
e2ee_olm_list(struct e2ee *e)
{
	return e2ee_arr(e->store, "olm");
}

void
e2ee_olm_keep(struct e2ee *e, const char *curve, OlmSession *s, int replace_idx)
{
	cJSON *list = e2ee_olm_list(e), *item = cJSON_CreateObject();
	char *p = session_pickle(e, s);

	cJSON_AddStringToObject(item, "curve", curve);
	cJSON_AddStringToObject(item, "pickle", p);
	cJSON_AddNumberToObject(item, "used", (double)now_ms());
	free(p);
	if (replace_idx >= 0)
		cJSON_ReplaceItemInArray(list, replace_idx, item);
	else
		cJSON_AddItemToArray(list, item);
}

/*
 * Decrypt with one session (libolm destroys its input: it gets copies).
 * The plaintext (caller frees), or NULL.
 */
static char *
olm_try(OlmSession *s, int type, const char *body)
{
	char *m = xstrdup(body), *plain;
	size_t max, n;

	max = olm_decrypt_max_plaintext_length(s, (size_t)type, m, strlen(m));
	free(m);
	if (max == olm_error())
		return NULL;
	plain = xmalloc(max + 1);
	m = xstrdup(body);
	n = olm_decrypt(s, (size_t)type, m, strlen(m), plain, max);
	free(m);
	if (n == olm_error()) {
		free(plain);
		return NULL;
	}
	plain[n] = '\0';
	return plain;
}

/* 1 if a pre-key message belongs to session s. */
static int
olm_matches(OlmSession *s, const char *sender_key, const char *body)
{
	char *m = xstrdup(body);
	size_t n = olm_matches_inbound_session_from(s, sender_key,
	    strlen(sender_key), m, strlen(m));

	free(m);
	return n == 1;
}

/* Decrypt an Olm message; plaintext (caller frees) or NULL. */
static char *
olm_decrypt_msg(struct e2ee *e, const char *sender_key, int type,
    const char *body)
{
	cJSON *it;
	char *plain = NULL, *m;
	OlmSession *s;
	int idx = -1;

	cJSON_ArrayForEach(it, e2ee_olm_list(e)) {
		idx++;
		if (strcmp(json_text(it, "curve"), sender_key) != 0 ||
		    (s = e2ee_olm_load(e, json_text(it, "pickle"))) == NULL)
			continue;
		if (type == 0 && !olm_matches(s, sender_key, body)) {
			e2ee_olm_free(s);
			continue;
		}
		if ((plain = olm_try(s, type, body)) != NULL)
			e2ee_olm_keep(e, sender_key, s, idx);
		e2ee_olm_free(s);
		if (plain != NULL || type == 0)
			return plain;	/* a pre-key match that fails is final */
	}
	if (type != 0)
		return NULL;
	/* A pre-key message starting a new session. */
	s = e2ee_olm_new();
	m = xstrdup(body);
	if (olm_create_inbound_session_from(s, e->acct, sender_key,
	    strlen(sender_key), m, strlen(m)) == olm_error()) {
		log_warnx("e2ee: cannot start an Olm session with %s: %s",
		    sender_key, olm_session_last_error(s));
		free(m);
		e2ee_olm_free(s);
		return NULL;
	}
	free(m);
	if ((plain = olm_try(s, 0, body)) != NULL) {
		olm_remove_one_time_keys(e->acct, s);
		e2ee_olm_keep(e, sender_key, s, -1);
	}
	e2ee_olm_free(s);
	return plain;
}

/* Store an m.room_key that came over Olm from (sender, sender_key). */
static int
room_key(struct e2ee *e, const char *sender, const char *sender_key,
    const char *sender_ed, const cJSON *content)
{
	const char *room = json_str(content, "room_id");
	const char *sid = json_str(content, "session_id");
	const char *skey = json_str(content, "session_key");
	OlmInboundGroupSession *s;
	cJSON *list, *it, *item;
	char *copy, *id, *p;
	size_t n;

	if (strcmp(json_text(content, "algorithm"), E2EE_MEGOLM) != 0 ||
	    room == NULL || sid == NULL || skey == NULL) {
		log_warnx("e2ee: m.room_key from %s: not a Megolm key",
		    sender);
		return -1;
	}
	list = e2ee_arr(e->store, "inbound");
	cJSON_ArrayForEach(it, list)
		if (!strcmp(json_text(it, "session_id"), sid) &&
		    !strcmp(json_text(it, "room_id"), room) &&
		    !strcmp(json_text(it, "sender_key"), sender_key))
			return 0;	/* have it */
	s = inbound_new();
	copy = xstrdup(skey);
	if (olm_init_inbound_group_session(s, (const uint8_t *)copy,
	    strlen(copy)) == olm_error()) {
		log_warnx("e2ee: bad room key from %s: %s", sender,
		    olm_inbound_group_session_last_error(s));
		sodium_memzero(copy, strlen(copy));
		free(copy);
		inbound_free(s);
		return -1;
	}
	sodium_memzero(copy, strlen(copy));
	free(copy);
	n = olm_inbound_group_session_id_length(s);
	id = xmalloc(n + 1);
	olm_inbound_group_session_id(s, (uint8_t *)id, n);
	id[n] = '\0';
	if (strcmp(id, sid) != 0) {
		log_warnx("e2ee: room key from %s: session id does not match "
		    "its key", sender);
		free(id);
		inbound_free(s);
		return -1;
	}
	free(id);
	n = olm_pickle_inbound_group_session_length(s);
	p = xmalloc(n + 1);
	olm_pickle_inbound_group_session(s, e->key, sizeof(e->key), p, n);
	p[n] = '\0';
	inbound_free(s);
	while (cJSON_GetArraySize(list) >= E2EE_INBOUND_MAX)
		cJSON_DeleteItemFromArray(list, 0);
	item = cJSON_CreateObject();
	cJSON_AddStringToObject(item, "room_id", room);
	cJSON_AddStringToObject(item, "session_id", sid);
	cJSON_AddStringToObject(item, "sender_key", sender_key);
	cJSON_AddStringToObject(item, "sender", sender);
	cJSON_AddStringToObject(item, "ed25519", sender_ed);
	cJSON_AddStringToObject(item, "pickle", p);
	cJSON_AddObjectToObject(item, "seen");
	cJSON_AddItemToArray(list, item);
	free(p);
	log_info("e2ee: room key for %s from %s (session %.12s…)", room,
	    sender, sid);
	return 0;
}

int
e2ee_to_device(struct e2ee *e, const cJSON *ev)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(ev, "content");
	const cJSON *ct, *mine;
	const char *sender = json_str(ev, "sender");
	const char *sender_key = json_str(content, "sender_key");
	const char *body;
	cJSON *pj = NULL;
	char *plain = NULL;
	int type, rc = -1;

	if (sender == NULL || strcmp(json_text(ev, "type"),
	    "m.room.encrypted") != 0)
		return 0;	/* nothing else is acted on */
	if (strcmp(json_text(content, "algorithm"), E2EE_OLM) != 0 ||
	    sender_key == NULL) {
		log_warnx("e2ee: to-device from %s: not Olm", sender);
		return -1;
	}
	ct = cJSON_GetObjectItemCaseSensitive(content, "ciphertext");
	mine = cJSON_GetObjectItemCaseSensitive(ct, e2ee_curve25519(e));
	body = json_str(mine, "body");
	type = json_int(mine, "type", -1, 1);
	if (body == NULL || type < 0) {
		log_warnx("e2ee: to-device from %s: nothing for this device",
		    sender);
		return -1;
	}
	if ((plain = olm_decrypt_msg(e, sender_key, type, body)) == NULL) {
		log_warnx("e2ee: cannot decrypt a to-device message from %s",
		    sender);
		goto done;
	}
	pj = cJSON_Parse(plain);
	/* The plaintext must name this exchange exactly. */
	if (!cJSON_IsObject(pj) ||
	    strcmp(json_text(pj, "sender"), sender) != 0 ||
	    strcmp(json_text(pj, "recipient"), e->user_id) != 0 ||
	    strcmp(json_text(cJSON_GetObjectItemCaseSensitive(pj,
	    "recipient_keys"), "ed25519"), e2ee_ed25519(e)) != 0) {
		log_warnx("e2ee: to-device from %s: sender or recipient does "
		    "not match; ignored", sender);
		goto done;
	}
	{
		const char *dev = json_text(pj, "sender_device");
		const char *ed = json_text(cJSON_GetObjectItemCaseSensitive(pj,
		    "keys"), "ed25519");
		const cJSON *known = e2ee_device_get(e, sender, dev);

		/* A known device must use the keys it was first seen with. */
		if (known != NULL && (strcmp(json_text(known, "curve"),
		    sender_key) != 0 || strcmp(json_text(known, "ed25519"),
		    ed) != 0)) {
			log_warnx("e2ee: to-device from %s claims device %s "
			    "with other keys; ignored", sender, dev);
			goto done;
		}
		if (!strcmp(json_text(pj, "type"), "m.room_key"))
			rc = room_key(e, sender, sender_key, ed,
			    cJSON_GetObjectItemCaseSensitive(pj, "content"));
		else
			rc = 0;
	}
done:
	if (plain != NULL) {
		sodium_memzero(plain, strlen(plain));
		free(plain);
	}
	cJSON_Delete(pj);
	/* Olm ratchets moved even when the content was refused; written by
	 * e2ee_flush before the sync that brought them is acknowledged. */
	e->dirty = 1;
	return rc;
}

void
e2ee_handle_sync(struct e2ee *e, struct mx *mx, const cJSON *sync)
{
	const cJSON *td = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(sync, "to_device"), "events");
	const cJSON *dl = cJSON_GetObjectItemCaseSensitive(sync,
	    "device_lists");
	const cJSON *counts = cJSON_GetObjectItemCaseSensitive(sync,
	    "device_one_time_keys_count");
	const cJSON *fb = cJSON_GetObjectItemCaseSensitive(sync,
	    "device_unused_fallback_key_types");
	const cJSON *ev, *u;
	int n = 0;

	cJSON_ArrayForEach(ev, td) {
		if (n++ >= 1000)
			break;
		e2ee_to_device(e, ev);
	}
	cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(dl, "changed")) {
		cJSON *stale = e2ee_arr(e->store, "stale");

		if (cJSON_IsString(u) && !e2ee_str_in(stale, u->valuestring) &&
		    cJSON_GetArraySize(stale) < 10000) {
			cJSON_AddItemToArray(stale,
			    cJSON_CreateString(u->valuestring));
			e->dirty = 1;
		}
	}
	if (mx != NULL && (cJSON_IsObject(counts) || cJSON_IsArray(fb))) {
		long have = cJSON_IsObject(counts) ? (long)json_u64(counts,
		    "signed_curve25519") : -2;
		int need_fb = cJSON_IsArray(fb) && !e2ee_str_in(fb,
		    "signed_curve25519");
		char *cause = NULL;

		if ((have >= 0 && (size_t)have <
		    olm_account_max_number_of_one_time_keys(e->acct) / 4) ||
		    need_fb) {
			if (e2ee_upload_keys(e, mx, have < 0 ? -1 : have,
			    need_fb, &cause) == -1) {
				log_warnx("e2ee: key upload: %s", cause);
				free(cause);
			}
		}
	}
}

/* ---- Megolm: reading -------------------------------------------------- */

enum e2ee_fail
e2ee_decrypt(struct e2ee *e, const char *room_id, const struct mx_event *ev,
    struct mx_event *out, char **session_id, uint32_t *index_out,
    char **cause)
{
	const cJSON *c = ev->content, *it, *seen_ev;
	const char *sid = json_str(c, "session_id");
	const char *skey = json_str(c, "sender_key");
	const char *ct = json_str(c, "ciphertext");
	cJSON *found = NULL, *pj = NULL, *full = NULL, *seen;
	OlmInboundGroupSession *s = NULL;
	enum e2ee_fail rc = E2EE_BAD;
	uint32_t index = 0;
	char *m = NULL, *plain = NULL, *idx;
	size_t max, n;

	*cause = NULL;
	if (session_id != NULL)
		*session_id = sid != NULL ? xstrdup(sid) : NULL;
	memset(out, 0, sizeof(*out));
	if (strcmp(json_text(c, "algorithm"), E2EE_MEGOLM) != 0 ||
	    sid == NULL || ct == NULL) {
		*cause = xstrdup("not a Megolm message");
		return E2EE_BAD;
	}
	cJSON_ArrayForEach(it, e2ee_arr(e->store, "inbound")) {
		if (strcmp(json_text(it, "session_id"), sid) != 0 ||
		    strcmp(json_text(it, "room_id"), room_id) != 0)
			continue;
		/* v1 messages name their sender key; it must be the one the
		 * room key came from, over Olm. */
		if (skey != NULL && strcmp(json_text(it, "sender_key"),
		    skey) != 0)
			continue;
		found = (cJSON *)it;
	}
	if (found == NULL) {
		*cause = xasprintf("no room key for session %s", sid);
		return E2EE_NO_SESSION;
	}
	if (strcmp(json_text(found, "sender"), ev->sender) != 0) {
		*cause = xasprintf("the room key came from %s, not from the "
		    "sender %s", json_text(found, "sender"), ev->sender);
		return E2EE_BAD;
	}
	s = inbound_new();
	m = xstrdup(json_text(found, "pickle"));
	if (olm_unpickle_inbound_group_session(s, e->key, sizeof(e->key), m,
	    strlen(m)) == olm_error()) {
		*cause = xstrdup("unreadable Megolm session");
		goto done;
	}
	free(m);
	m = xstrdup(ct);
	max = olm_group_decrypt_max_plaintext_length(s, (uint8_t *)m,
	    strlen(m));
	free(m);
	m = NULL;
	if (max == olm_error()) {
		*cause = xasprintf("bad Megolm message: %s",
		    olm_inbound_group_session_last_error(s));
		goto done;
	}
	plain = xmalloc(max + 1);
	m = xstrdup(ct);
	n = olm_group_decrypt(s, (uint8_t *)m, strlen(m), (uint8_t *)plain,
	    max, &index);
	if (n == olm_error()) {
		const char *why = olm_inbound_group_session_last_error(s);

		*cause = xasprintf("cannot decrypt: %s", why);
		if (!strcmp(why, "OLM_UNKNOWN_MESSAGE_INDEX"))
			rc = E2EE_NO_SESSION;
		goto done;
	}
	plain[n] = '\0';
	if (index_out != NULL)
		*index_out = index;
	/* A message index belongs to one event: anything else replays it. */
	seen = e2ee_obj(found, "seen");
	idx = xasprintf("%u", index);
	seen_ev = cJSON_GetObjectItemCaseSensitive(seen, idx);
	if (seen_ev != NULL && strcmp(json_text(seen, idx),
	    ev->event_id) != 0) {
		*cause = xasprintf("message index %u of session %s replayed "
		    "(first used by %s)", index, sid, json_text(seen, idx));
		free(idx);
		goto done;
	}
	if (seen_ev == NULL) {
		while (cJSON_GetArraySize(seen) >= E2EE_SEEN_KEEP)
			cJSON_DeleteItemFromArray(seen, 0);
		/* kept with the next write; the caller journals it now */
		cJSON_AddStringToObject(seen, idx, ev->event_id);
	}
	free(idx);
	pj = cJSON_Parse(plain);
	if (!cJSON_IsObject(pj) ||
	    strcmp(json_text(pj, "room_id"), room_id) != 0 ||
	    json_str(pj, "type") == NULL ||
	    !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(pj, "content"))) {
		*cause = xstrdup("the plaintext is not an event of this room");
		goto done;
	}
	{
		cJSON *inner = cJSON_GetObjectItemCaseSensitive(pj, "content");
		const cJSON *clear = cJSON_GetObjectItemCaseSensitive(c,
		    "m.relates_to");
		cJSON *hidden = cJSON_GetObjectItemCaseSensitive(inner,
		    "m.relates_to");

		/* Relations travel in the clear; a different encrypted one
		 * means someone rewrote the clear one. */
		if (clear != NULL && hidden != NULL &&
		    !cJSON_Compare(clear, hidden, 1)) {
			*cause = xstrdup("m.relates_to differs inside and "
			    "outside the encryption");
			goto done;
		}
		if (clear != NULL && hidden == NULL)
			cJSON_AddItemToObject(inner, "m.relates_to",
			    cJSON_Duplicate(clear, 1));
		full = cJSON_CreateObject();
		cJSON_AddStringToObject(full, "event_id", ev->event_id);
		cJSON_AddStringToObject(full, "sender", ev->sender);
		cJSON_AddStringToObject(full, "type", json_str(pj, "type"));
		cJSON_AddNumberToObject(full, "origin_server_ts",
		    (double)ev->ts);
		cJSON_AddItemReferenceToObject(full, "content", inner);
		if (mx_event_from_json(full, out) == -1) {
			*cause = xstrdup("not an event");
			goto done;
		}
	}
	rc = E2EE_OK;
done:
	if (plain != NULL) {
		sodium_memzero(plain, strlen(plain));
		free(plain);
	}
	free(m);
	inbound_free(s);
	cJSON_Delete(full);
	cJSON_Delete(pj);
	return rc;
}

/* ---- status ----------------------------------------------------------- */

int
e2ee_print_status(const char *dir)
{
	char *path = store_path(dir), *cause = NULL, *fp;
	cJSON *j = store_read(path, &cause);
	const cJSON *u, *d, *it;

	if (j == NULL) {
		printf("no E2EE device yet (%s: %s)\n", path,
		    cause ? cause : "absent");
		free(cause);
		free(path);
		return cause ? -1 : 0;
	}
	fp = e2ee_fingerprint(json_text(j, "ed25519"));
	printf("device: %s of %s\n", json_text(j, "device_id"),
	    json_text(j, "user_id"));
	printf("ed25519 fingerprint: %s\n", fp);
	printf("curve25519: %s\n", json_text(j, "curve25519"));
	printf("device keys uploaded: %s\n", cJSON_IsTrue(
	    cJSON_GetObjectItemCaseSensitive(j, "keys_uploaded")) ? "yes" :
	    "no");
	free(fp);
	printf("known devices:\n");
	cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(j, "devices"))
		cJSON_ArrayForEach(d, u)
			printf("  %s %s ed25519 %s\n", u->string, d->string,
			    json_text(d, "ed25519"));
	printf("Olm sessions: %d\n", cJSON_GetArraySize(
	    cJSON_GetObjectItemCaseSensitive(j, "olm")));
	printf("inbound Megolm sessions:\n");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "inbound"))
		printf("  %s %s from %s\n", json_text(it, "room_id"),
		    json_text(it, "session_id"), json_text(it, "sender"));
	printf("outbound Megolm sessions:\n");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "outbound"))
		printf("  %s %s, %llu message(s), shared with %d device(s)\n",
		    it->string, json_text(it, "session_id"),
		    (unsigned long long)json_u64(it, "count"),
		    cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(it,
		    "shared")));
	cJSON_Delete(j);
	free(path);
	return 0;
}
