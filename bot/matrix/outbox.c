/*
 * outbox.c - the durable send queue (see outbox.h for the contract).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "json.h"
#include "log.h"
#include "msg.h"
#include "outbox.h"
#include "util.h"

#define OUTBOX_ITEM_MAX	(1024 * 1024)
#define SENT_KEEP	256

struct sent {
	uint64_t	 seq;
	char		*event_id;
};

struct outbox {
	char			*dir;
	struct outbox_item	*head;
	size_t			 depth;
	uint64_t		 next_seq;
	struct sent		 sent[SENT_KEEP];
	size_t			 sent_next;
	outbox_seal_fn		 seal;
	void			*seal_arg;
	char			*command;	/* being handled, or NULL */
	unsigned		 ordinal;	/* its replies so far */
};

static char *
item_path(const struct outbox *ob, uint64_t seq)
{
	return xasprintf("%s/%020llu.json", ob->dir, (unsigned long long)seq);
}

static void
item_free(struct outbox_item *it)
{
	if (it == NULL)
		return;
	free(it->txn_id);
	free(it->room_id);
	free(it->type);
	cJSON_Delete(it->content);
	free(it->edit_event);
	free(it->source_event);
	free(it->session_id);
	free(it);
}

static int
item_store(struct outbox *ob, const struct outbox_item *it)
{
	cJSON *j = cJSON_CreateObject();
	char *path, *text;
	int r;

	cJSON_AddNumberToObject(j, "seq", (double)it->seq);
	cJSON_AddStringToObject(j, "txn_id", it->txn_id);
	cJSON_AddStringToObject(j, "room_id", it->room_id);
	cJSON_AddStringToObject(j, "type", it->type);
	cJSON_AddItemToObject(j, "content", cJSON_Duplicate(it->content, 1));
	if (it->edit_of != 0)
		cJSON_AddNumberToObject(j, "edit_of", (double)it->edit_of);
	if (it->edit_event != NULL)
		cJSON_AddStringToObject(j, "edit_event", it->edit_event);
	if (it->source_event != NULL)
		cJSON_AddStringToObject(j, "source_event", it->source_event);
	if (it->thread_of != 0)
		cJSON_AddNumberToObject(j, "thread_of", (double)it->thread_of);
	if (it->session_id != NULL)
		cJSON_AddStringToObject(j, "session_id", it->session_id);
	text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	path = item_path(ob, it->seq);
	r = file_write_atomic(path, text, strlen(text), 0600);
	if (r == -1)
		log_warn("outbox: cannot write %s", path);
	free(path);
	free(text);
	return r;
}

/*
 * Rewrite an item that is on disk; one still only in memory (a reply not
 * yet committed) is stored as it then is by outbox_commit().
 */
static int
item_update(struct outbox *ob, struct outbox_item *it)
{
	return it->stored ? item_store(ob, it) : 0;
}

/* A whole JSON number in [min, 2^53] into *out: 0, or -1. */
static int
json_count(const cJSON *v, double min, uint64_t *out)
{
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= min &&
	    v->valuedouble <= 9007199254740992.0) ||
	    v->valuedouble != (double)(uint64_t)v->valuedouble)
		return -1;
	*out = (uint64_t)v->valuedouble;
	return 0;
}

/* Load PATH, which must hold item number want (from its name). */
static struct outbox_item *
item_load(const char *path, uint64_t want)
{
	struct outbox_item *it;
	const cJSON *seq, *content, *edit_of, *thread_of;
	uint64_t seqno = 0, edit_seq = 0, thread_seq = 0;
	size_t len;
	char *text;
	cJSON *j;

	if ((text = file_read(path, OUTBOX_ITEM_MAX, &len)) == NULL)
		return NULL;
	j = cJSON_ParseWithLength(text, len);
	free(text);
	if (j == NULL)
		return NULL;
	seq = cJSON_GetObjectItemCaseSensitive(j, "seq");
	content = cJSON_GetObjectItemCaseSensitive(j, "content");
	edit_of = cJSON_GetObjectItemCaseSensitive(j, "edit_of");
	thread_of = cJSON_GetObjectItemCaseSensitive(j, "thread_of");
	if (json_count(seq, 1, &seqno) == -1 || seqno != want ||
	    (edit_of != NULL && json_count(edit_of, 0, &edit_seq) == -1) ||
	    (thread_of != NULL && json_count(thread_of, 0, &thread_seq) == -1) ||
	    json_str(j, "txn_id") == NULL || json_str(j, "room_id") == NULL ||
	    json_str(j, "type") == NULL || !cJSON_IsObject(content)) {
		cJSON_Delete(j);
		return NULL;
	}
	it = xcalloc(1, sizeof(*it));
	it->seq = seqno;
	it->txn_id = xstrdup(json_str(j, "txn_id"));
	it->room_id = xstrdup(json_str(j, "room_id"));
	it->type = xstrdup(json_str(j, "type"));
	it->content = cJSON_Duplicate(content, 1);
	it->edit_of = edit_seq;
	it->thread_of = thread_seq;
	if (json_str(j, "edit_event") != NULL)
		it->edit_event = xstrdup(json_str(j, "edit_event"));
	if (json_str(j, "source_event") != NULL)
		it->source_event = xstrdup(json_str(j, "source_event"));
	if (json_str(j, "session_id") != NULL)
		it->session_id = xstrdup(json_str(j, "session_id"));
	it->stored = 1;
	cJSON_Delete(j);
	return it;
}

/* Insert keeping the list sorted by seq. */
static void
insert_sorted(struct outbox *ob, struct outbox_item *it)
{
	struct outbox_item **pp = &ob->head;

	while (*pp != NULL && (*pp)->seq < it->seq)
		pp = &(*pp)->next;
	it->next = *pp;
	*pp = it;
	ob->depth++;
}

struct outbox *
outbox_open(const char *dir, char **cause)
{
	struct outbox *ob;
	struct dirent *de;
	DIR *d;

	*cause = NULL;
	if (dir_make(dir, 0700) == -1) {
		*cause = xasprintf("%s: %s", dir, strerror(errno));
		return NULL;
	}
	if ((d = opendir(dir)) == NULL) {
		*cause = xasprintf("%s: %s", dir, strerror(errno));
		return NULL;
	}
	ob = xcalloc(1, sizeof(*ob));
	ob->dir = xstrdup(dir);
	ob->next_seq = 1;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		struct outbox_item *it;
		char *path;

		if (de->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (n > 4 && !strcmp(de->d_name + n - 4, ".tmp")) {
			unlink(path);	/* an interrupted write */
			free(path);
			continue;
		}
		if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0) {
			free(path);
			continue;
		}
		if ((it = item_load(path, strtoull(de->d_name, NULL, 10))) ==
		    NULL) {
			char *bad = xasprintf("%s.corrupt", path);

			log_warnx("outbox: %s is unreadable, moved to %s",
			    path, bad);
			rename(path, bad);
			free(bad);
		} else {
			if (it->seq >= ob->next_seq)
				ob->next_seq = it->seq + 1;
			insert_sorted(ob, it);
		}
		free(path);
	}
	closedir(d);
	if (ob->depth > 0)
		log_info("outbox: %zu message(s) waiting from before", ob->depth);
	return ob;
}

void
outbox_free(struct outbox *ob)
{
	struct outbox_item *it, *next;

	if (ob == NULL)
		return;
	for (it = ob->head; it != NULL; it = next) {
		next = it->next;
		item_free(it);
	}
	for (size_t i = 0; i < SENT_KEEP; i++)
		free(ob->sent[i].event_id);
	free(ob->command);
	free(ob->dir);
	free(ob);
}

static char *
new_txn_id(uint64_t seq)
{
	unsigned char r[8];
	char hex[17];

	randombytes_buf(r, sizeof(r));
	sodium_bin2hex(hex, sizeof(hex), r, sizeof(r));
	return xasprintf("bb%llx.%s", (unsigned long long)seq, hex);
}

char *
outbox_reply_txn(const char *event_id, unsigned ordinal)
{
	unsigned char h[16], ord[4];
	char hex[33];
	crypto_generichash_state st;

	/* the id, a NUL (ids hold none), then the ordinal: unambiguous */
	ord[0] = (unsigned char)(ordinal >> 24);
	ord[1] = (unsigned char)(ordinal >> 16);
	ord[2] = (unsigned char)(ordinal >> 8);
	ord[3] = (unsigned char)ordinal;
	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)event_id,
	    strlen(event_id) + 1);
	crypto_generichash_update(&st, ord, sizeof(ord));
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	return xasprintf("bbr%s", hex);
}

void
outbox_command(struct outbox *ob, const char *event_id)
{
	free(ob->command);
	ob->command = event_id != NULL ? xstrdup(event_id) : NULL;
	ob->ordinal = 0;
}

int
outbox_commit(struct outbox *ob)
{
	int r = 0;

	for (struct outbox_item *it = ob->head; it != NULL; it = it->next) {
		if (it->stored)
			continue;
		if (item_store(ob, it) == 0)
			it->stored = 1;
		else
			r = -1;		/* logged; it stays queued in memory */
	}
	return r;
}

void
outbox_set_sealer(struct outbox *ob, outbox_seal_fn fn, void *arg)
{
	ob->seal = fn;
	ob->seal_arg = arg;
}

/* Seal a new item whose relations are all known already. */
static void
seal_new(struct outbox *ob, struct outbox_item *it)
{
	cJSON *enc = NULL;
	char *sid = NULL;

	if (ob->seal == NULL || ob->seal(ob->seal_arg, it->room_id, it->type,
	    it->content, &enc, &sid) != 1)
		return;		/* not needed, or left to the send */
	free(it->type);
	it->type = xstrdup("m.room.encrypted");
	cJSON_Delete(it->content);
	it->content = enc;
	it->session_id = sid;
}

static uint64_t
push(struct outbox *ob, const char *room_id, const char *type,
    cJSON *content, uint64_t edit_of, const char *source_event, int sealable)
{
	struct outbox_item *it;
	int reply;

	if (edit_of != 0) {
		/* A newer edit replaces one still waiting to be sent. */
		for (it = ob->head; it != NULL; it = it->next) {
			/*
			 * Only into one never sent: an attempt may have been
			 * stored with only its answer lost, and its txnId
			 * must then keep meaning that content.
			 */
			if (it->edit_of == edit_of && !it->inflight &&
			    it->attempts == 0 && it->session_id == NULL) {
				cJSON_Delete(it->content);
				it->content = content;
				item_update(ob, it);
				return it->seq;
			}
		}
	}
	it = xcalloc(1, sizeof(*it));
	it->seq = ob->next_seq++;
	/* a reply to the command being handled: kept in memory, named by
	 * the command so that handling it again names it the same */
	reply = edit_of == 0 && source_event != NULL && ob->command != NULL &&
	    !strcmp(source_event, ob->command);
	it->txn_id = reply ? outbox_reply_txn(ob->command, ob->ordinal++) :
	    new_txn_id(it->seq);
	it->room_id = xstrdup(room_id);
	it->type = xstrdup(type);
	it->content = content;
	it->edit_of = edit_of;
	if (edit_of != 0 && outbox_event_id(ob, edit_of) != NULL)
		it->edit_event = xstrdup(outbox_event_id(ob, edit_of));
	if (source_event != NULL)
		it->source_event = xstrdup(source_event);
	if (sealable && edit_of == 0)
		seal_new(ob, it);
	if (!reply && item_store(ob, it) == -1) {
		/* Cannot make it durable: do not pretend it is queued. */
		item_free(it);
		return 0;
	}
	it->stored = !reply;
	insert_sorted(ob, it);
	return it->seq;
}

uint64_t
outbox_push(struct outbox *ob, const char *room_id, const char *type,
    cJSON *content, uint64_t edit_of, const char *source_event)
{
	return push(ob, room_id, type, content, edit_of, source_event, 1);
}

static void
unlink_item(struct outbox *ob, struct outbox_item *it)
{
	struct outbox_item **pp;
	char *path = item_path(ob, it->seq);

	if (!it->stored)
		;	/* only ever in memory: nothing to remove */
	else if (unlink(path) == -1 && errno != ENOENT)
		log_warn("outbox: cannot remove %s", path);
	else
		dir_sync_of(path);
	free(path);
	for (pp = &ob->head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == it) {
			*pp = it->next;
			ob->depth--;
			break;
		}
	}
	item_free(it);
}

static void
remember_sent(struct outbox *ob, uint64_t seq, const char *event_id)
{
	struct sent *s = &ob->sent[ob->sent_next];

	free(s->event_id);
	s->seq = seq;
	s->event_id = xstrdup(event_id);
	ob->sent_next = (ob->sent_next + 1) % SENT_KEEP;
}

const char *
outbox_event_id(const struct outbox *ob, uint64_t seq)
{
	for (size_t i = 0; i < SENT_KEEP; i++)
		if (ob->sent[i].event_id != NULL && ob->sent[i].seq == seq)
			return ob->sent[i].event_id;
	return NULL;
}

uint64_t
outbox_push_thread(struct outbox *ob, const char *room_id, cJSON *content,
    uint64_t thread_of)
{
	/* its thread relation comes at send time: sealed then */
	uint64_t seq = push(ob, room_id, "m.room.message", content, 0, NULL, 0);
	struct outbox_item *it;

	for (it = ob->head; it != NULL && it->seq != seq; it = it->next)
		;
	if (it != NULL && thread_of != 0) {
		it->thread_of = thread_of;
		item_update(ob, it);
	}
	return seq;
}

struct outbox_item *
outbox_head(struct outbox *ob, int64_t now)
{
	struct outbox_item *it;

	while ((it = ob->head) != NULL) {
		if (it->edit_of != 0 && it->edit_event == NULL) {
			const char *ev = outbox_event_id(ob, it->edit_of);

			if (ev == NULL) {
				/* Its target was dropped or is from a
				 * previous run that did not record it. */
				log_warnx("outbox: edit %llu of an unknown "
				    "message dropped",
				    (unsigned long long)it->seq);
				unlink_item(ob, it);
				continue;
			}
			it->edit_event = xstrdup(ev);
		}
		if (it->thread_of != 0) {
			const char *ev = outbox_event_id(ob, it->thread_of);

			if (ev != NULL)
				msg_set_thread(it->content, ev, ev);
			else
				log_warnx("outbox: the thread root of %llu was "
				    "never sent; it goes out on its own",
				    (unsigned long long)it->seq);
			it->thread_of = 0;
			item_update(ob, it);
		}
		break;
	}
	if (it == NULL || it->not_before > now)
		return NULL;
	return it;
}

int
outbox_seal(struct outbox *ob, struct outbox_item *it, const char *type,
    cJSON *content, const char *session_id)
{
	char *old_type = it->type, *old_sid = it->session_id;
	cJSON *old = it->content;

	it->type = xstrdup(type);
	it->content = content;
	it->session_id = xstrdup(session_id);
	if (item_update(ob, it) == -1) {
		free(it->type);
		cJSON_Delete(it->content);
		free(it->session_id);
		it->type = old_type;
		it->content = old;
		it->session_id = old_sid;
		return -1;
	}
	free(old_type);
	cJSON_Delete(old);
	free(old_sid);
	return 0;
}

int64_t
outbox_wait(struct outbox *ob, int64_t now)
{
	if (ob->head == NULL)
		return -1;
	return ob->head->not_before > now ? ob->head->not_before - now : 0;
}

size_t
outbox_uncommitted(const struct outbox *ob)
{
	size_t n = 0;

	for (const struct outbox_item *it = ob->head; it != NULL; it = it->next)
		n += !it->stored;
	return n;
}

size_t
outbox_depth(const struct outbox *ob)
{
	return ob->depth;
}

void
outbox_foreach_source(const struct outbox *ob,
    void (*fn)(const char *, void *), void *arg)
{
	for (const struct outbox_item *it = ob->head; it != NULL; it = it->next)
		if (it->source_event != NULL)
			fn(it->source_event, arg);
}

int64_t
backoff_delay(int attempt, int64_t base, int64_t max, uint32_t rnd)
{
	int64_t d = base;

	if (attempt < 0)
		attempt = 0;
	for (int i = 0; i < attempt && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	if (d < 0)
		d = 0;
	/* jitter: uniform in [d/2, d] (in 64 bits: d/2 + 1 may be 2^32) */
	return d / 2 + (int64_t)((uint64_t)rnd % ((uint64_t)d / 2 + 1));
}

int
outbox_unthread(cJSON *content)
{
	cJSON *rel = cJSON_GetObjectItemCaseSensitive(content, "m.relates_to");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(rel, "rel_type");
	cJSON *irt, *plain;

	if (!cJSON_IsString(type) || strcmp(type->valuestring, "m.thread"))
		return 0;
	irt = cJSON_DetachItemFromObjectCaseSensitive(rel, "m.in_reply_to");
	if (!cJSON_IsObject(irt)) {
		cJSON_Delete(irt);
		irt = cJSON_CreateObject();
		cJSON_AddItemToObject(irt, "event_id", cJSON_Duplicate(
		    cJSON_GetObjectItemCaseSensitive(rel, "event_id"), 1));
	}
	plain = cJSON_CreateObject();
	cJSON_AddItemToObject(plain, "m.in_reply_to", irt);
	cJSON_ReplaceItemInObjectCaseSensitive(content, "m.relates_to", plain);
	return 1;
}

enum outbox_action
outbox_result(struct outbox *ob, struct outbox_item *it, long status,
    const char *event_id, long retry_after_ms, int64_t now)
{
	it->inflight = 0;
	if (status >= 200 && status < 300 && event_id != NULL) {
		uint64_t seq = it->seq;

		remember_sent(ob, seq, event_id);
		/* Edits waiting for this message now know its event id. */
		for (struct outbox_item *e = ob->head; e != NULL; e = e->next) {
			if (e->edit_of == seq && e->edit_event == NULL) {
				e->edit_event = xstrdup(event_id);
				item_update(ob, e);
			}
		}
		unlink_item(ob, it);
		return OUTBOX_SENT;
	}
	if (status == 413) {
		if (msg_shrink(it->content) == 0) {
			item_update(ob, it);
			log_warnx("outbox: message %llu too large, shrunk",
			    (unsigned long long)it->seq);
			return OUTBOX_SHRUNK;
		}
		log_warnx("outbox: message %llu too large and cannot be "
		    "shrunk; dropped", (unsigned long long)it->seq);
		unlink_item(ob, it);
		return OUTBOX_DROPPED;
	}
	if (status == 0 || status == 429 || status == 408 || status >= 500 ||
	    status == 401 || (status >= 200 && status < 300)) {
		int64_t d;

		if (status == 429 && retry_after_ms >= 0)
			d = retry_after_ms > 3600000 ? 3600000 : retry_after_ms;
		else
			d = backoff_delay(it->attempts, 500, 60000,
			    randombytes_random());
		it->attempts++;
		it->not_before = now + d;
		return OUTBOX_RETRY;
	}
	if (status == 400 && outbox_unthread(it->content)) {
		/* The command had a relation itself and cannot root a thread
		 * (Synapse: "Cannot start threads from an event with a
		 * relation"): answered as a plain reply, never dropped. */
		item_update(ob, it);
		log_warnx("outbox: message %llu cannot go in a thread; sent as "
		    "a reply", (unsigned long long)it->seq);
		it->not_before = now;
		return OUTBOX_RETRY;
	}
	log_warnx("outbox: message %llu to %s refused with HTTP %ld; dropped",
	    (unsigned long long)it->seq, it->room_id, status);
	unlink_item(ob, it);
	return OUTBOX_DROPPED;
}
