/*
 * state.c - the bot's memory in state_dir (see state.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "state.h"
#include "util.h"

struct state {
	char	*dir;
	char	*next_batch;
	/* seen event ids: a ring, newest at (seen_next - 1) */
	char	*seen[STATE_SEEN_KEEP];
	size_t	 seen_next;
	char	*unflushed[STATE_SEEN_KEEP];
	size_t	 nunflushed;
	int	 journal;		/* fd of state_dir/seen, append */
	size_t	 journal_lines;		/* ids in the file */
};

static char *
path_of(const struct state *st, const char *name)
{
	return xasprintf("%s/%s", st->dir, name);
}

static void
ring_add(struct state *st, const char *id)
{
	free(st->seen[st->seen_next]);
	st->seen[st->seen_next] = xstrdup(id);
	st->seen_next = (st->seen_next + 1) % STATE_SEEN_KEEP;
}

/*
 * Rewrite the journal as the ring holds it (the last STATE_SEEN_KEEP ids)
 * and reopen it for appending: at start, and whenever it has grown to
 * twice that, so it stays bounded however long the daemon runs.
 */
static int
seen_compact(struct state *st, char **cause)
{
	char *path = path_of(st, "seen");
	struct buf out;
	int fd;

	buf_init(&out, 2 * 1024 * 1024);
	st->journal_lines = 0;
	for (size_t i = 0; i < STATE_SEEN_KEEP; i++) {
		const char *id = st->seen[(st->seen_next + i) % STATE_SEEN_KEEP];

		if (id != NULL) {
			buf_addf(&out, "%s\n", id);
			st->journal_lines++;
		}
	}
	if (file_write_atomic(path, out.data ? out.data : "", out.len,
	    0600) == -1 || (fd = open(path, O_WRONLY | O_APPEND |
	    O_CLOEXEC)) == -1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		buf_release(&out);
		free(path);
		return -1;
	}
	buf_release(&out);
	if (st->journal != -1)
		close(st->journal);
	st->journal = fd;
	free(path);
	return 0;
}

/* Load the journal, keep its last STATE_SEEN_KEEP ids, rewrite it. */
static int
seen_load(struct state *st, char **cause)
{
	char *path = path_of(st, "seen"), *text, *line, *nl;
	size_t len;

	text = file_read(path, 64 * 1024 * 1024, &len);
	if (text == NULL && errno != ENOENT) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	for (line = text; line != NULL && *line != '\0'; line = nl) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			break;		/* a torn last line: not durable */
		*nl++ = '\0';
		if (line[0] == '$' && strlen(line) < 256)
			ring_add(st, line);
	}
	free(text);
	free(path);
	return seen_compact(st, cause);
}

struct state *
state_open(const char *dir, char **cause)
{
	struct state *st;
	char *path;

	*cause = NULL;
	if (dir_make(dir, 0700) == -1) {
		*cause = xasprintf("%s: %s", dir, strerror(errno));
		return NULL;
	}
	if (access(dir, W_OK) == -1) {
		*cause = xasprintf("%s: not writable: %s", dir,
		    strerror(errno));
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->dir = xstrdup(dir);
	st->journal = -1;
	path = path_of(st, "next_batch");
	st->next_batch = file_read(path, 4096, NULL);
	if (st->next_batch == NULL && errno != ENOENT) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		free(path);
		state_free(st);
		return NULL;
	}
	free(path);
	if (st->next_batch != NULL) {
		char *t = str_trim(st->next_batch);

		memmove(st->next_batch, t, strlen(t) + 1);
		if (st->next_batch[0] == '\0') {
			free(st->next_batch);
			st->next_batch = NULL;
		}
	}
	if (seen_load(st, cause) == -1) {
		state_free(st);
		return NULL;
	}
	return st;
}

void
state_free(struct state *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < STATE_SEEN_KEEP; i++)
		free(st->seen[i]);
	for (size_t i = 0; i < st->nunflushed; i++)
		free(st->unflushed[i]);
	if (st->journal != -1)
		close(st->journal);
	free(st->next_batch);
	free(st->dir);
	free(st);
}

const char *
state_next_batch(const struct state *st)
{
	return st->next_batch;
}

/* Write state_dir/name (0600, atomically); -1 logged. */
static int
write_file(const struct state *st, const char *name, const char *text)
{
	char *path = path_of(st, name);
	int r = file_write_atomic(path, text, strlen(text), 0600);

	if (r == -1)
		log_warn("state: cannot write %s", path);
	free(path);
	return r;
}

/*
 * The one write of every sync batch, so the directory is not fsynced: a
 * power cut may lose the rename, and the older position then read again
 * is harmless (its events are in the seen journal, fsynced before).  Not
 * the first one: without any position the next start would take the
 * room's history, commands since included, as history.
 */
int
state_set_next_batch(struct state *st, const char *token)
{
	char *path = path_of(st, "next_batch");
	int r = st->next_batch == NULL ?
	    file_write_atomic(path, token, strlen(token), 0600) :
	    file_replace(path, token, strlen(token), 0600);

	if (r == -1)
		log_warn("state: cannot write %s", path);
	else {
		free(st->next_batch);
		st->next_batch = xstrdup(token);
	}
	free(path);
	return r;
}

int
state_first_start(struct state *st, int64_t now, int64_t *out)
{
	char *path = path_of(st, "first_start"), *text, *end;
	long long v;
	int r;

	text = file_read(path, 64, NULL);
	if (text != NULL) {
		errno = 0;
		v = strtoll(text, &end, 10);
		if (errno == 0 && end != text && v >= 0 && v <= now &&
		    (*end == '\0' || *end == '\n')) {
			*out = v;
			free(text);
			free(path);
			return 0;
		}
		if (errno == 0 && end != text && v > now)
			log_warnx("state: %s is in the future (the clock was "
			    "ahead at the first start?); starting it again",
			    path);
		else
			log_warnx("state: %s is not a time; starting it "
			    "again", path);
		free(text);
	}
	*out = st->next_batch == NULL ? now : 0;
	text = xasprintf("%lld\n", (long long)*out);
	r = write_file(st, "first_start", text);
	free(text);
	free(path);
	return r;
}

int
state_seen(const struct state *st, const char *event_id)
{
	for (size_t i = 0; i < STATE_SEEN_KEEP; i++)
		if (st->seen[i] != NULL && !strcmp(st->seen[i], event_id))
			return 1;
	return 0;
}

void
state_mark_seen(struct state *st, const char *event_id)
{
	if (state_seen(st, event_id))
		return;
	ring_add(st, event_id);
	if (st->nunflushed == STATE_SEEN_KEEP)
		state_flush_seen(st);
	if (st->nunflushed < STATE_SEEN_KEEP)
		st->unflushed[st->nunflushed++] = xstrdup(event_id);
}

int
state_flush_seen(struct state *st)
{
	struct buf b;
	int r = 0;

	if (st->nunflushed == 0)
		return 0;
	buf_init(&b, 4 * 1024 * 1024);
	for (size_t i = 0; i < st->nunflushed; i++) {
		buf_addf(&b, "%s\n", st->unflushed[i]);
		free(st->unflushed[i]);
	}
	st->journal_lines += st->nunflushed;
	st->nunflushed = 0;
	for (size_t off = 0; off < b.len; ) {
		ssize_t n = write(st->journal, b.data + off, b.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_warn("state: cannot append to the seen journal");
			r = -1;
			break;
		}
		off += (size_t)n;
	}
	if (r == 0 && fsync(st->journal) == -1) {
		log_warn("state: fsync of the seen journal");
		r = -1;
	}
	buf_release(&b);
	/* The ring already holds every id just appended: compacting keeps
	 * them all, durably (tmp + fsync + rename). */
	if (r == 0 && st->journal_lines >= 2 * STATE_SEEN_KEEP) {
		char *cause = NULL;

		if (seen_compact(st, &cause) == -1) {
			log_warnx("state: cannot compact the seen journal: %s",
			    cause);
			free(cause);
		}
	}
	return r;
}

int
state_load_session(struct state *st, char **token, char **device_id)
{
	char *path = path_of(st, "session"), *cause = NULL, *text;
	const cJSON *t, *d;
	cJSON *j;

	*token = *device_id = NULL;
	text = secret_read(path, &cause);
	free(path);
	if (text == NULL) {
		if (cause != NULL && errno != ENOENT)
			log_warnx("state: %s", cause);
		free(cause);
		return -1;
	}
	j = cJSON_Parse(text);
	secure_wipe(text, strlen(text));
	free(text);
	if (j == NULL)
		return -1;
	t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	d = cJSON_GetObjectItemCaseSensitive(j, "device_id");
	if (cJSON_IsString(d))
		*device_id = xstrdup(d->valuestring);
	if (cJSON_IsString(t))
		*token = xstrdup(t->valuestring);
	if (cJSON_IsString(t))
		secure_wipe(t->valuestring, strlen(t->valuestring));
	cJSON_Delete(j);
	return *token != NULL ? 0 : -1;
}

int
state_save_session(struct state *st, const char *token, const char *device_id)
{
	char *path = path_of(st, "session"), *text;
	cJSON *j = cJSON_CreateObject();
	int r;

	if (token != NULL)
		cJSON_AddStringToObject(j, "access_token", token);
	cJSON_AddStringToObject(j, "device_id", device_id);
	text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	r = file_write_atomic(path, text, strlen(text), 0600);
	if (r == -1)
		log_warn("state: cannot write %s", path);
	secure_wipe(text, strlen(text));
	free(text);
	free(path);
	return r;
}

int
state_clear_session(struct state *st)
{
	char *path = path_of(st, "session");
	int r = unlink(path);

	free(path);
	return r == -1 && errno != ENOENT ? -1 : 0;
}

int
state_load_refresh(struct state *st, char **refresh)
{
	char *path = path_of(st, "refresh_token"), *cause = NULL;

	*refresh = secret_read(path, &cause);
	free(cause);
	free(path);
	return *refresh != NULL ? 0 : -1;
}

int
state_save_refresh(struct state *st, const char *refresh)
{
	return write_file(st, "refresh_token", refresh);
}

const char *
state_dir(const struct state *st)
{
	return st->dir;
}
