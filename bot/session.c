/*
 * session.c - logging in, rooms and the sync filter (see session.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bot.h"
#include "config.h"
#include "e2ee.h"
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
whoami(struct bot *bot, char **cause)
{
	struct mx_resp r;
	enum step s;

	mx_call(bot->mx, "GET", MX_V3 "/account/whoami", NULL,
	    STARTUP_TIMEOUT_MS, &r);
	if (r.status == 200 && json_str(r.json, "user_id") != NULL) {
		const char *uid = json_str(r.json, "user_id");

		if (strcmp(uid, bot->cfg->user_id) != 0) {
			*cause = xasprintf("the access token belongs to %s, "
			    "not to user_id %s", uid, bot->cfg->user_id);
			mx_resp_release(&r);
			return STEP_FATAL;
		}
		free(bot->user_id);
		bot->user_id = xstrdup(uid);
		if (json_str(r.json, "device_id") != NULL) {
			free(bot->device_id);
			bot->device_id = xstrdup(json_str(r.json, "device_id"));
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
password_login(struct bot *bot, char **cause)
{
	char *password, *device = NULL, *old_token = NULL, *text, *why = NULL;
	cJSON *req, *id;
	struct mx_resp r;
	enum step s;

	/* A kept session first: no new device on every start. */
	if (state_load_session(bot->state, &old_token, &device) == 0) {
		mx_set_token(bot->mx, old_token);
		secure_wipe(old_token, strlen(old_token));
		free(old_token);
		s = whoami(bot, &why);
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
		mx_set_token(bot->mx, NULL);
	}
	/* The E2EE device is kept: a new one would lose its keys. */
	if (device == NULL)
		device = e2ee_stored_device(bot->cfg->state_dir);
	if (device == NULL && bot->cfg->device_id != NULL)
		device = xstrdup(bot->cfg->device_id);
	if ((password = secret_read(bot->cfg->password_file, cause)) == NULL) {
		free(device);
		return STEP_FATAL;
	}
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "type", "m.login.password");
	id = cJSON_AddObjectToObject(req, "identifier");
	cJSON_AddStringToObject(id, "type", "m.id.user");
	cJSON_AddStringToObject(id, "user", bot->cfg->user_id);
	cJSON_AddStringToObject(req, "password", password);
	if (device != NULL)
		cJSON_AddStringToObject(req, "device_id", device);
	cJSON_AddStringToObject(req, "initial_device_display_name",
	    bot->cfg->device_name);
	text = cJSON_PrintUnformatted(req);
	secure_wipe(password, strlen(password));
	free(password);
	{
		cJSON *pw = cJSON_GetObjectItemCaseSensitive(req, "password");

		secure_wipe(pw->valuestring, strlen(pw->valuestring));
	}
	cJSON_Delete(req);
	mx_call(bot->mx, "POST", MX_V3 "/login", text, STARTUP_TIMEOUT_MS, &r);
	secure_wipe(text, strlen(text));
	free(text);
	free(device);
	if (r.status != 200 || json_str(r.json, "access_token") == NULL ||
	    json_str(r.json, "device_id") == NULL) {
		char *d = mx_describe(&r);

		*cause = xasprintf("password login as %s failed: %s",
		    bot->cfg->user_id, d);
		free(d);
		s = r.status == 200 ? STEP_FATAL : session_classify(&r);
		mx_resp_release(&r);
		return s;
	}
	mx_set_token(bot->mx, json_str(r.json, "access_token"));
	state_save_session(bot->state, json_str(r.json, "access_token"),
	    json_str(r.json, "device_id"));
	secure_wipe(r.body, r.len);
	{
		cJSON *t = cJSON_GetObjectItemCaseSensitive(r.json,
		    "access_token");

		secure_wipe(t->valuestring, strlen(t->valuestring));
	}
	mx_resp_release(&r);
	log_info("logged in as %s with a password", bot->cfg->user_id);
	return whoami(bot, cause);
}

enum step
session_login(struct bot *bot, char **cause)
{
	char *token, *why = NULL;
	enum step s;

	*cause = NULL;
	if (bot->cfg->access_token_file == NULL)
		return password_login(bot, cause);
	if ((token = secret_read(bot->cfg->access_token_file, cause)) == NULL)
		return STEP_FATAL;
	mx_set_token(bot->mx, token);
	secure_wipe(token, strlen(token));
	free(token);
	s = whoami(bot, &why);
	if (s == STEP_FATAL)
		*cause = xasprintf("the access token in %s was refused: %s",
		    bot->cfg->access_token_file, why);
	else if (s == STEP_RETRY)
		*cause = xasprintf("cannot reach %s: %s", bot->cfg->homeserver,
		    why);
	free(why);
	return s;
}

char *
session_resolve_room(struct bot *bot, const char *room, char **cause,
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
	mx_call(bot->mx, "GET", path, NULL, STARTUP_TIMEOUT_MS, &r);
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
state_content(struct bot *bot, const char *room_id, const char *type)
{
	char *esc = mx_escape(room_id), *path;
	struct mx_resp r;
	cJSON *c = NULL;

	path = xasprintf(MX_V3 "/rooms/%s/state/%s/", esc, type);
	mx_call(bot->mx, "GET", path, NULL, STARTUP_TIMEOUT_MS, &r);
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
session_room_state(struct bot *bot, struct room *room)
{
	cJSON *enc = state_content(bot, room->id, "m.room.encryption");

	room->encrypted = enc != NULL;
	cJSON_Delete(room->encryption);
	room->encryption = enc;
	cJSON_Delete(room->power_levels);
	room->power_levels = state_content(bot, room->id, "m.room.power_levels");
}

/* The list of joined room ids, or NULL. */
static cJSON *
joined_rooms(struct bot *bot, char **cause, enum step *how)
{
	struct mx_resp r;
	cJSON *list;

	mx_call(bot->mx, "GET", MX_V3 "/joined_rooms", NULL,
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

static int
in_list(const cJSON *list, const char *id)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, list)
		if (cJSON_IsString(v) && !strcmp(v->valuestring, id))
			return 1;
	return 0;
}

/* Try to join a configured room (works when invited or public). */
static int
try_join(struct bot *bot, const char *room)
{
	char *esc = mx_escape(room), *path;
	struct mx_resp r;
	int ok;

	path = xasprintf(MX_V3 "/join/%s", esc);
	mx_call(bot->mx, "POST", path, "{}", STARTUP_TIMEOUT_MS, &r);
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
session_rooms(struct bot *bot, char **cause)
{
	struct config *cfg = bot->cfg;
	enum step how = STEP_OK;
	cJSON *joined;

	*cause = NULL;
	if ((joined = joined_rooms(bot, cause, &how)) == NULL)
		return how;
	for (size_t i = 0; i < bot->nrooms; i++) {
		free(bot->rooms[i].id);
		free(bot->rooms[i].configured);
		cJSON_Delete(bot->rooms[i].power_levels);
		cJSON_Delete(bot->rooms[i].encryption);
	}
	free(bot->rooms);
	bot->rooms = xcalloc(cfg->rooms.n, sizeof(*bot->rooms));
	bot->nrooms = 0;
	for (size_t i = 0; i < cfg->rooms.n; i++) {
		struct room *room = &bot->rooms[bot->nrooms];
		char *why = NULL, *id;

		id = session_resolve_room(bot, cfg->rooms.v[i], &why, &how);
		if (id == NULL) {
			if (how == STEP_RETRY) {
				*cause = why;
				cJSON_Delete(joined);
				return STEP_RETRY;
			}
			log_warnx("room %s: %s", cfg->rooms.v[i], why);
			free(why);
			continue;
		}
		room->id = id;
		room->configured = xstrdup(cfg->rooms.v[i]);
		room->joined = in_list(joined, id);
		if (!room->joined)
			room->joined = try_join(bot, id);
		if (room->joined) {
			session_room_state(bot, room);
			if (room->encrypted && bot->cfg->pickle_key_file ==
			    NULL && bot->cfg->encryption_key_file == NULL)
				log_warnx("room %s is end-to-end encrypted: set "
				    "[matrix] pickle_key_file so that backupbot "
				    "can keep an encrypted device and read it",
				    room->configured);
		}
		bot->nrooms++;
	}
	cJSON_Delete(joined);
	if (bot->nrooms == 0) {
		*cause = xstrdup("none of the configured rooms exists");
		return STEP_FATAL;
	}
	return STEP_OK;
}

enum step
session_filter(struct bot *bot, char **cause)
{
	cJSON *f = cJSON_CreateObject(), *room, *tl, *rooms, *types, *empty;
	char *text, *esc, *path;
	struct mx_resp r;
	enum step s;
	static const char *tl_types[] = { "m.room.message", "m.reaction",
	    "m.room.member", "m.room.encryption", "m.room.power_levels",
	    "m.room.encrypted" };

	room = cJSON_AddObjectToObject(f, "room");
	rooms = cJSON_AddArrayToObject(room, "rooms");
	for (size_t i = 0; i < bot->nrooms; i++)
		cJSON_AddItemToArray(rooms,
		    cJSON_CreateString(bot->rooms[i].id));
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
	esc = mx_escape(bot->user_id);
	path = xasprintf(MX_V3 "/user/%s/filter", esc);
	mx_call(bot->mx, "POST", path, text, STARTUP_TIMEOUT_MS, &r);
	free(path);
	free(esc);
	free(text);
	if (r.status == 200 && json_str(r.json, "filter_id") != NULL) {
		free(bot->filter_id);
		bot->filter_id = xstrdup(json_str(r.json, "filter_id"));
		mx_resp_release(&r);
		return STEP_OK;
	}
	*cause = mx_describe(&r);
	s = r.status == 200 ? STEP_FATAL : session_classify(&r);
	mx_resp_release(&r);
	return s;
}
