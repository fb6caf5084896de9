/*
 * session.c - logging in, rooms and the sync filter (see session.h).
 * Plain values in and out: the daemon decides what they are for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "json.h"
#include "log.h"
#include "matrix.h"
#include "session.h"
#include "state.h"
#include "util.h"

#define STARTUP_TIMEOUT_MS	30000L

static long retry_after_ms = -1;

long
session_retry_after(void)
{
	long ms = retry_after_ms;

	retry_after_ms = -1;
	return ms;
}

enum step
session_classify(const struct mx_resp *r)
{
	if (r->status == 429)
		retry_after_ms = r->retry_after_ms;
	if (r->status == 0 || r->status == 429 || r->status >= 500 ||
	    r->status == 408)
		return STEP_RETRY;
	return STEP_FATAL;
}

/* Use token from now on (remembering only its hash, to spot a change). */
static void
use_token(struct session_login *l, const char *token)
{
	mx_set_token(l->mx, token);
	crypto_generichash(l->token_hash, sizeof(l->token_hash),
	    (const unsigned char *)token, strlen(token), NULL, 0);
}

/* The refresh token and lifetime a login or /refresh answered with. */
static void
keep_refresh(struct session_login *l, const cJSON *resp)
{
	const char *rt = json_str(resp, "refresh_token");
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(resp,
	    "expires_in_ms");

	if (rt != NULL) {
		if (l->refresh_token != NULL)
			secure_wipe(l->refresh_token,
			    strlen(l->refresh_token));
		free(l->refresh_token);
		l->refresh_token = xstrdup(rt);
		state_save_refresh(l->state, rt);
	}
	/* refresh at 80% of the lifetime, not at the last moment */
	l->refresh_at = cJSON_IsNumber(exp) && exp->valuedouble > 0 &&
	    exp->valuedouble < 1e12 ? mono_ms() +
	    (int64_t)(exp->valuedouble * 0.8) : 0;
}

/* whoami with the current token: STEP_OK and the ids, or why not. */
static enum step
whoami(struct session_login *l, char **cause)
{
	struct mx_resp r;
	enum step s;

	mx_call(l->mx, "GET", MX_V3 "/account/whoami", NULL,
	    STARTUP_TIMEOUT_MS, &r);
	if (r.status == 200 && json_str(r.json, "user_id") != NULL) {
		const char *uid = json_str(r.json, "user_id");

		if (strcmp(uid, l->user_id) != 0) {
			*cause = xasprintf("the access token belongs to %s, "
			    "not to user_id %s", uid, l->user_id);
			mx_resp_release(&r);
			return STEP_FATAL;
		}
		free(l->user);
		l->user = xstrdup(uid);
		if (json_str(r.json, "device_id") != NULL) {
			free(l->device);
			l->device = xstrdup(json_str(r.json, "device_id"));
		}
		mx_resp_release(&r);
		return STEP_OK;
	}
	*cause = mx_describe(&r);
	s = session_classify(&r);
	mx_resp_release(&r);
	return s;
}

/* 1 unless GET /login answers flows without m.login.password. */
static int
password_offered(struct mx *mx)
{
	struct mx_resp r;
	const cJSON *flows, *f;
	int offered = 1;

	mx_call(mx, "GET", MX_V3 "/login", NULL, STARTUP_TIMEOUT_MS, &r);
	flows = cJSON_GetObjectItemCaseSensitive(r.json, "flows");
	if (r.status == 200 && cJSON_IsArray(flows)) {
		offered = 0;
		cJSON_ArrayForEach(f, flows) {
			const char *t = json_str(f, "type");

			if (t != NULL && !strcmp(t, "m.login.password"))
				offered = 1;
		}
	}
	mx_resp_release(&r);
	return offered;
}

static enum step
password_login(struct session_login *l, char **cause)
{
	char *password, *device = NULL, *old_token = NULL, *text, *why = NULL;
	cJSON *req, *id;
	struct mx_resp r;
	enum step s;

	/* A kept session first: no new device on every start. */
	if (state_load_session(l->state, &old_token, &device) == 0) {
		use_token(l, old_token);
		secure_wipe(old_token, strlen(old_token));
		free(old_token);
		s = whoami(l, &why);
		if (s == STEP_FATAL && l->refresh_token == NULL)
			state_load_refresh(l->state, &l->refresh_token);
		if (s == STEP_FATAL && l->refresh_token != NULL) {
			char *rwhy = NULL;

			/* an expired token: refreshed, not a new login */
			if (session_refresh(l, &rwhy) == STEP_OK) {
				free(why);
				why = NULL;
				s = whoami(l, &why);
			}
			free(rwhy);
		}
		if (s == STEP_OK) {
			free(device);
			return STEP_OK;
		}
		if (s == STEP_RETRY) {
			*cause = why;
			free(device);
			return s;
		}
		log_info("kept session refused (%s); logging in again", why);
		free(why);
		mx_set_token(l->mx, NULL);
	}
	if (device == NULL && l->device_id != NULL)
		device = xstrdup(l->device_id);
	if ((password = secret_read(l->password_file, cause)) == NULL) {
		free(device);
		return STEP_FATAL;
	}
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "type", "m.login.password");
	id = cJSON_AddObjectToObject(req, "identifier");
	cJSON_AddStringToObject(id, "type", "m.id.user");
	cJSON_AddStringToObject(id, "user", l->user_id);
	cJSON_AddStringToObject(req, "password", password);
	if (device != NULL)
		cJSON_AddStringToObject(req, "device_id", device);
	cJSON_AddStringToObject(req, "initial_device_display_name",
	    l->device_name);
	cJSON_AddBoolToObject(req, "refresh_token", 1);
	text = cJSON_PrintUnformatted(req);
	secure_wipe(password, strlen(password));
	free(password);
	{
		cJSON *pw = cJSON_GetObjectItemCaseSensitive(req, "password");

		secure_wipe(pw->valuestring, strlen(pw->valuestring));
	}
	cJSON_Delete(req);
	mx_call(l->mx, "POST", MX_V3 "/login", text, STARTUP_TIMEOUT_MS, &r);
	secure_wipe(text, strlen(text));
	free(text);
	free(device);
	if (r.status != 200 || json_str(r.json, "access_token") == NULL ||
	    json_str(r.json, "device_id") == NULL) {
		char *d = mx_describe(&r);

		s = r.status == 200 ? STEP_FATAL : session_classify(&r);
		if (s == STEP_FATAL && !password_offered(l->mx))
			*cause = xasprintf("password login as %s failed: %s; "
			    "this homeserver offers no password login (only "
			    "SSO/OAuth): create an access token for %s (e.g. "
			    "by logging in with a client) and set "
			    "access_token_file instead of password_file",
			    l->user_id, d, l->user_id);
		else
			*cause = xasprintf("password login as %s failed: %s",
			    l->user_id, d);
		free(d);
		mx_resp_release(&r);
		return s;
	}
	use_token(l, json_str(r.json, "access_token"));
	state_save_session(l->state, json_str(r.json, "access_token"),
	    json_str(r.json, "device_id"));
	keep_refresh(l, r.json);
	secure_wipe(r.body, r.len);
	{
		cJSON *t = cJSON_GetObjectItemCaseSensitive(r.json,
		    "access_token");

		secure_wipe(t->valuestring, strlen(t->valuestring));
	}
	mx_resp_release(&r);
	log_info("logged in as %s with a password", l->user_id);
	return whoami(l, cause);
}

enum step
session_login(struct session_login *l, char **cause)
{
	char *token, *why = NULL;
	enum step s;

	*cause = NULL;
	if (l->access_token_file == NULL)
		return password_login(l, cause);
	if ((token = secret_read(l->access_token_file, cause)) == NULL)
		return STEP_FATAL;
	use_token(l, token);
	secure_wipe(token, strlen(token));
	free(token);
	s = whoami(l, &why);
	if (s == STEP_FATAL)
		*cause = xasprintf("the access token in %s was refused: %s",
		    l->access_token_file, why);
	else if (s == STEP_RETRY)
		*cause = xasprintf("cannot reach %s: %s", l->homeserver,
		    why);
	free(why);
	return s;
}

enum step
session_refresh(struct session_login *l, char **cause)
{
	struct mx_resp r;
	cJSON *req;
	char *text;
	enum step s;

	*cause = NULL;
	if (l->refresh_token == NULL) {
		*cause = xstrdup("no refresh token");
		return STEP_FATAL;
	}
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "refresh_token", l->refresh_token);
	text = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	mx_call(l->mx, "POST", MX_V3 "/refresh", text, STARTUP_TIMEOUT_MS,
	    &r);
	secure_wipe(text, strlen(text));
	free(text);
	if (r.status == 200 && json_str(r.json, "access_token") != NULL) {
		use_token(l, json_str(r.json, "access_token"));
		if (l->device != NULL)
			state_save_session(l->state,
			    json_str(r.json, "access_token"), l->device);
		keep_refresh(l, r.json);
		secure_wipe(r.body, r.len);
		mx_resp_release(&r);
		log_info("access token refreshed");
		return STEP_OK;
	}
	*cause = mx_describe(&r);
	s = session_classify(&r);
	if (s == STEP_FATAL) {
		/* the refresh token is spent: forget it */
		secure_wipe(l->refresh_token, strlen(l->refresh_token));
		free(l->refresh_token);
		l->refresh_token = NULL;
		l->refresh_at = 0;
	}
	mx_resp_release(&r);
	return s;
}

enum step
session_recover(struct session_login *l, const struct mx_resp *r, char **cause)
{
	const cJSON *soft = cJSON_GetObjectItemCaseSensitive(r->json,
	    "soft_logout");
	unsigned char before[sizeof(l->token_hash)];
	char *why = NULL;
	enum step s;

	*cause = NULL;
	if (cJSON_IsTrue(soft) && l->refresh_token != NULL) {
		if ((s = session_refresh(l, &why)) == STEP_OK)
			return STEP_OK;
		log_warnx("token refresh failed: %s", why);
		free(why);
		why = NULL;
		if (s == STEP_RETRY) {
			*cause = xstrdup("the homeserver did not answer the "
			    "token refresh");
			return STEP_RETRY;
		}
	}
	if (l->access_token_file == NULL) {
		/* password_file: a hard logout means a new login (the
		 * kept session is refused first, its device is kept) */
		s = password_login(l, &why);
		if (s == STEP_OK)
			log_info("logged in again after the homeserver ended "
			    "the session");
		*cause = why;
		return s == STEP_FATAL ? STEP_RETRY : s;
	}
	memcpy(before, l->token_hash, sizeof(before));
	s = session_login(l, &why);
	if (s == STEP_OK) {
		if (sodium_memcmp(before, l->token_hash,
		    sizeof(before)) != 0)
			log_info("using the new access token from %s",
			    l->access_token_file);
		free(why);
		return STEP_OK;
	}
	free(why);
	*cause = xasprintf("the homeserver refused the access token "
	    "(HTTP 401 %s): put a valid token for %s into %s; it is read "
	    "again on each retry", r->errcode != NULL ? r->errcode : "",
	    l->user_id, l->access_token_file);
	return STEP_RETRY;
}

void
session_login_release(struct session_login *l)
{
	free(l->user);
	free(l->device);
	if (l->refresh_token != NULL)
		secure_wipe(l->refresh_token, strlen(l->refresh_token));
	free(l->refresh_token);
	l->user = l->device = l->refresh_token = NULL;
}

char *
session_resolve_room(struct mx *mx, const char *room, char **cause,
    enum step *how)
{
	struct mx_resp r;
	char *esc, *path, *id;

	*cause = NULL;
	*how = STEP_OK;
	if (room[0] == '!')
		return xstrdup(room);
	esc = mx_escape(room);
	path = xasprintf(MX_V3 "/directory/room/%s", esc);
	mx_call(mx, "GET", path, NULL, STARTUP_TIMEOUT_MS, &r);
	free(path);
	free(esc);
	if (r.status == 200 && json_str(r.json, "room_id") != NULL) {
		id = xstrdup(json_str(r.json, "room_id"));
		mx_resp_release(&r);
		return id;
	}
	{
		char *d = mx_describe(&r);

		*cause = xasprintf("cannot resolve %s: %s", room, d);
		free(d);
	}
	*how = session_classify(&r);
	mx_resp_release(&r);
	return NULL;
}

/*
 * GET a state event's content: STEP_OK with *out (NULL when the room has
 * no such state: 404), or the failure's step with *cause.
 */
static enum step
state_content(struct mx *mx, const char *room_id, const char *type,
    const char *query, cJSON **out, char **cause)
{
	char *esc = mx_escape(room_id), *path;
	struct mx_resp r;
	enum step s = STEP_OK;

	*out = NULL;
	path = xasprintf(MX_V3 "/rooms/%s/state/%s/%s", esc, type, query);
	mx_call(mx, "GET", path, NULL, STARTUP_TIMEOUT_MS, &r);
	if (r.status == 200 && cJSON_IsObject(r.json)) {
		*out = r.json;
		r.json = NULL;
	} else if (r.status != 404) {
		char *d = mx_describe(&r);

		*cause = xasprintf("reading %s: %s", type, d);
		free(d);
		s = r.status == 200 ? STEP_RETRY : session_classify(&r);
		if (s == STEP_FATAL && r.status == 403)
			s = STEP_RETRY;	/* joined a moment ago */
	}
	free(path);
	free(esc);
	mx_resp_release(&r);
	return s;
}

enum step
session_room_state(struct mx *mx, const char *room_id, int *encrypted,
    cJSON **encryption, cJSON **power_levels, cJSON **create, char **cause)
{
	cJSON *enc = NULL, *pl = NULL, *cr = NULL;
	enum step s;

	*cause = NULL;
	/* the create event whole (v1.16 format=event): its sender is the
	 * creator in room versions 11 and later */
	if ((s = state_content(mx, room_id, "m.room.encryption", "", &enc,
	    cause)) != STEP_OK ||
	    (s = state_content(mx, room_id, "m.room.power_levels", "", &pl,
	    cause)) != STEP_OK ||
	    (s = state_content(mx, room_id, "m.room.create", "?format=event",
	    &cr, cause)) != STEP_OK) {
		cJSON_Delete(enc);
		cJSON_Delete(pl);
		cJSON_Delete(cr);
		return s;
	}
	*encrypted = enc != NULL;
	cJSON_Delete(*encryption);
	*encryption = enc;
	cJSON_Delete(*power_levels);
	*power_levels = pl;
	cJSON_Delete(*create);
	*create = cr;
	return STEP_OK;
}

cJSON *
session_joined_rooms(struct mx *mx, char **cause, enum step *how)
{
	struct mx_resp r;
	cJSON *list;

	mx_call(mx, "GET", MX_V3 "/joined_rooms", NULL,
	    STARTUP_TIMEOUT_MS, &r);
	if (r.status != 200 || !cJSON_IsArray(
	    cJSON_GetObjectItemCaseSensitive(r.json, "joined_rooms"))) {
		*cause = mx_describe(&r);
		*how = r.status == 200 ? STEP_FATAL : session_classify(&r);
		mx_resp_release(&r);
		return NULL;
	}
	list = cJSON_DetachItemFromObjectCaseSensitive(r.json, "joined_rooms");
	mx_resp_release(&r);
	return list;
}

int
session_join(struct mx *mx, const char *room)
{
	char *esc = mx_escape(room), *path;
	struct mx_resp r;
	int ok;

	path = xasprintf(MX_V3 "/join/%s", esc);
	mx_call(mx, "POST", path, "{}", STARTUP_TIMEOUT_MS, &r);
	ok = r.status == 200;
	if (!ok) {
		char *d = mx_describe(&r);

		log_warnx("cannot join %s: %s (invite the bot, then it joins "
		    "by itself)", room, d);
		free(d);
	}
	free(path);
	free(esc);
	mx_resp_release(&r);
	return ok;
}

enum step
session_filter(struct mx *mx, const char *user_id,
    const char *const *room_ids, size_t nrooms, char **filter_id,
    char **cause)
{
	cJSON *f = cJSON_CreateObject(), *room, *tl, *rooms, *types, *empty;
	char *text, *esc, *path;
	struct mx_resp r;
	enum step s;
	static const char *tl_types[] = { "m.room.message", "m.reaction",
	    "m.room.member", "m.room.encryption", "m.room.power_levels",
	    "m.room.redaction", "m.room.tombstone", "m.room.encrypted" };

	/* Timelines and state of the configured rooms only; invites and
	 * leaves of every room (invites elsewhere are rejected). */
	room = cJSON_AddObjectToObject(f, "room");
	tl = cJSON_AddObjectToObject(room, "timeline");
	rooms = cJSON_AddArrayToObject(tl, "rooms");
	for (size_t i = 0; i < nrooms; i++)
		cJSON_AddItemToArray(rooms, cJSON_CreateString(room_ids[i]));
	empty = cJSON_AddObjectToObject(room, "state");
	cJSON_AddItemToObject(empty, "rooms", cJSON_Duplicate(rooms, 1));
	cJSON_AddNumberToObject(tl, "limit", 50);
	types = cJSON_AddArrayToObject(tl, "types");
	for (size_t i = 0; i < nitems(tl_types); i++)
		cJSON_AddItemToArray(types, cJSON_CreateString(tl_types[i]));
	empty = cJSON_AddObjectToObject(room, "ephemeral");
	cJSON_AddArrayToObject(empty, "types");
	empty = cJSON_AddObjectToObject(room, "account_data");
	cJSON_AddArrayToObject(empty, "types");
	empty = cJSON_AddObjectToObject(f, "presence");
	cJSON_AddArrayToObject(empty, "types");
	empty = cJSON_AddObjectToObject(f, "account_data");
	cJSON_AddArrayToObject(empty, "types");
	text = cJSON_PrintUnformatted(f);
	cJSON_Delete(f);
	esc = mx_escape(user_id);
	path = xasprintf(MX_V3 "/user/%s/filter", esc);
	mx_call(mx, "POST", path, text, STARTUP_TIMEOUT_MS, &r);
	free(path);
	free(esc);
	free(text);
	if (r.status == 200 && json_str(r.json, "filter_id") != NULL) {
		free(*filter_id);
		*filter_id = xstrdup(json_str(r.json, "filter_id"));
		mx_resp_release(&r);
		return STEP_OK;
	}
	*cause = mx_describe(&r);
	s = r.status == 200 ? STEP_FATAL : session_classify(&r);
	mx_resp_release(&r);
	return s;
}
