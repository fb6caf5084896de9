/*
 * session.c - logging in, rooms and the sync filter (see session.h).
 * Plain values in and out: the daemon decides what they are for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "log.h"
#include "matrix.h"
#include "session.h"
#include "state.h"
#include "util.h"

#define STARTUP_TIMEOUT_MS	30000L

enum step
session_classify(const struct mx_resp *r)
{
	if (r->status == 0 || r->status == 429 || r->status >= 500 ||
	    r->status == 408)
		return STEP_RETRY;
	return STEP_FATAL;
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

static enum step
password_login(struct session_login *l, char **cause)
{
	char *password, *device = NULL, *old_token = NULL, *text, *why = NULL;
	cJSON *req, *id;
	struct mx_resp r;
	enum step s;

	/* A kept session first: no new device on every start. */
	if (state_load_session(l->state, &old_token, &device) == 0) {
		mx_set_token(l->mx, old_token);
		secure_wipe(old_token, strlen(old_token));
		free(old_token);
		s = whoami(l, &why);
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

		*cause = xasprintf("password login as %s failed: %s",
		    l->user_id, d);
		free(d);
		s = r.status == 200 ? STEP_FATAL : session_classify(&r);
		mx_resp_release(&r);
		return s;
	}
	mx_set_token(l->mx, json_str(r.json, "access_token"));
	state_save_session(l->state, json_str(r.json, "access_token"),
	    json_str(r.json, "device_id"));
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
	mx_set_token(l->mx, token);
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

/* GET a state event's content, or NULL (404 and errors alike). */
static cJSON *
state_content(struct mx *mx, const char *room_id, const char *type)
{
	char *esc = mx_escape(room_id), *path;
	struct mx_resp r;
	cJSON *c = NULL;

	path = xasprintf(MX_V3 "/rooms/%s/state/%s/", esc, type);
	mx_call(mx, "GET", path, NULL, STARTUP_TIMEOUT_MS, &r);
	if (r.status == 200 && cJSON_IsObject(r.json)) {
		c = r.json;
		r.json = NULL;
	}
	free(path);
	free(esc);
	mx_resp_release(&r);
	return c;
}

void
session_room_state(struct mx *mx, const char *room_id, int *encrypted,
    cJSON **power_levels)
{
	cJSON *enc = state_content(mx, room_id, "m.room.encryption");

	*encrypted = enc != NULL;
	cJSON_Delete(enc);
	cJSON_Delete(*power_levels);
	*power_levels = state_content(mx, room_id, "m.room.power_levels");
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
	    "m.room.member", "m.room.encryption", "m.room.power_levels" };

	room = cJSON_AddObjectToObject(f, "room");
	rooms = cJSON_AddArrayToObject(room, "rooms");
	for (size_t i = 0; i < nrooms; i++)
		cJSON_AddItemToArray(rooms, cJSON_CreateString(room_ids[i]));
	tl = cJSON_AddObjectToObject(room, "timeline");
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
