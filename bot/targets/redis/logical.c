/*
 * logical.c - the BBREDIS1 logical format (redis.h): its frames, the
 * streaming check, the writer (SCAN + DUMP + PTTL into frames) and the
 * reader a restore uses.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "backend.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "pipeline.h"
#include "proc.h"
#include "redis.h"
#include "redis_parts.h"
#include "util.h"

/* ---- BBREDIS1 --------------------------------------------------------- */

void
redis_frame_head(unsigned char out[8], uint32_t db, uint32_t key_len)
{
	redis_put_be32(out, db);
	redis_put_be32(out + 4, key_len);
}

void
redis_frame_mid(unsigned char out[12], int64_t ttl_ms, uint32_t payload_len)
{
	redis_put_be64(out, (uint64_t)ttl_ms);
	redis_put_be32(out + 8, payload_len);
}

void
redis_frame_end(unsigned char out[REDIS_FRAME_END_LEN], uint64_t records)
{
	redis_put_be32(out, REDIS_FRAME_END);
	redis_put_be32(out + 4, REDIS_FRAME_END);
	redis_put_be64(out + 8, records);
}

/* The footer of a DUMP payload: RDB version (LE16), CRC64 (LE64). */
static int
redis_dump_footer_check(const unsigned char footer[10], uint64_t crc,
    char **cause)
{
	uint64_t want = redis_le64(footer + 2);

	if (footer[0] == 0 && footer[1] == 0) {
		*cause = xstrdup("DUMP payload with RDB version 0");
		return -1;
	}
	if (crc != want) {
		*cause = xasprintf("DUMP payload damaged: CRC64 %016llx, the "
		    "payload says %016llx", (unsigned long long)crc,
		    (unsigned long long)want);
		return -1;
	}
	return 0;
}

int
redis_dump_payload_check(const unsigned char *p, size_t n, char **cause)
{
	*cause = NULL;
	if (n < 11) {
		*cause = xasprintf("DUMP payload of %zu bytes is too short", n);
		return -1;
	}
	return redis_dump_footer_check(p + n - 10, redis_crc64(0, p, n - 8),
	    cause);
}

enum {
	RF_MAGIC, RF_HEAD, RF_KEY, RF_MID, RF_PAYLOAD, RF_COUNT, RF_DONE
};

void
redis_frame_check_init(struct redis_frame_check *f)
{
	memset(f, 0, sizeof(*f));
	f->state = RF_MAGIC;
	f->need = REDIS_FRAME_MAGIC_LEN;
}

static int
redis_frame_fail(struct redis_frame_check *f, char *why, char **cause)
{
	f->error = xasprintf("at byte %llu: %s", (unsigned long long)f->offset,
	    why);
	free(why);
	*cause = xstrdup(f->error);
	return -1;
}

/* Enter a state that needs n bytes. */
static void
redis_frame_next(struct redis_frame_check *f, int state, size_t n)
{
	f->state = state;
	f->need = n;
	f->have = 0;
}

int
redis_frame_check_feed(struct redis_frame_check *f, const void *data,
    size_t n, char **cause)
{
	const unsigned char *p = data;
	size_t k, i, crc_end;
	int64_t ttl;

	*cause = NULL;
	if (f->error != NULL) {
		*cause = xstrdup(f->error);
		return -1;
	}
	while (n > 0) {
		if (f->state == RF_DONE)
			return redis_frame_fail(f, xstrdup("data after the end "
			    "record"), cause);
		k = f->need - f->have;
		if (k > n)
			k = n;
		switch (f->state) {
		case RF_MAGIC:
			if (memcmp(p, &REDIS_FRAME_MAGIC[f->have], k) != 0)
				return redis_frame_fail(f, xstrdup("not a "
				    "logical Redis backup (no BBREDIS1 "
				    "header)"), cause);
			break;
		case RF_KEY:
			break;		/* the key itself is not checked */
		case RF_PAYLOAD:
			/* CRC over all but the last 8; keep the last 10. */
			crc_end = f->payload_len - 8;
			if (f->have < crc_end) {
				i = crc_end - f->have;
				f->crc = redis_crc64(f->crc, p, i < k ? i : k);
			}
			for (i = 0; i < k; i++) {
				size_t pos = f->have + i;

				if (pos >= (size_t)f->payload_len - 10)
					f->footer[pos - (f->payload_len - 10)] =
					    p[i];
			}
			break;
		default:
			memcpy(f->fixed + f->have, p, k);
			break;
		}
		f->have += k;
		f->offset += k;
		p += k;
		n -= k;
		if (f->have < f->need)
			continue;

		switch (f->state) {
		case RF_MAGIC:
			redis_frame_next(f, RF_HEAD, 8);
			break;
		case RF_HEAD:
			f->db = redis_be32(f->fixed);
			f->key_len = redis_be32(f->fixed + 4);
			if (f->key_len == REDIS_FRAME_END) {
				if (f->db != REDIS_FRAME_END)
					return redis_frame_fail(f, xstrdup(
					    "bad end record"), cause);
				redis_frame_next(f, RF_COUNT, 8);
			} else if (f->key_len == 0)
				redis_frame_next(f, RF_MID, 12);
			else
				redis_frame_next(f, RF_KEY, f->key_len);
			break;
		case RF_KEY:
			redis_frame_next(f, RF_MID, 12);
			break;
		case RF_MID:
			ttl = (int64_t)redis_be64(f->fixed);
			f->payload_len = redis_be32(f->fixed + 8);
			if (ttl < -1)
				return redis_frame_fail(f, xasprintf("record "
				    "%llu: bad ttl %lld",
				    (unsigned long long)f->records + 1,
				    (long long)ttl), cause);
			if (f->payload_len < 11)
				return redis_frame_fail(f, xasprintf("record "
				    "%llu: DUMP payload of %u bytes is too "
				    "short", (unsigned long long)f->records +
				    1, f->payload_len), cause);
			f->crc = 0;
			redis_frame_next(f, RF_PAYLOAD, f->payload_len);
			break;
		case RF_PAYLOAD: {
			char *why = NULL;

			if (redis_dump_footer_check(f->footer, f->crc,
			    &why) == -1) {
				char *msg = xasprintf("record %llu (db %u): %s",
				    (unsigned long long)f->records + 1, f->db,
				    why);

				free(why);
				return redis_frame_fail(f, msg, cause);
			}
			f->records++;
			redis_frame_next(f, RF_HEAD, 8);
			break;
		}
		case RF_COUNT:
			if (redis_be64(f->fixed) != f->records)
				return redis_frame_fail(f, xasprintf("the end "
				    "record counts %llu records, the stream "
				    "holds %llu",
				    (unsigned long long)redis_be64(f->fixed),
				    (unsigned long long)f->records), cause);
			redis_frame_next(f, RF_DONE, 0);
			break;
		}
	}
	return 0;
}

int
redis_frame_check_finish(struct redis_frame_check *f, char **cause)
{
	*cause = NULL;
	if (f->error != NULL) {
		*cause = xstrdup(f->error);
		return -1;
	}
	if (f->state != RF_DONE) {
		*cause = xasprintf("the logical backup is truncated after %llu "
		    "bytes (%llu complete records, no end record)",
		    (unsigned long long)f->offset,
		    (unsigned long long)f->records);
		return -1;
	}
	return 0;
}

void
redis_frame_check_release(struct redis_frame_check *f)
{
	free(f->error);
	f->error = NULL;
}

/* ---- the logical dump ------------------------------------------------- */

static int
redis_sink_flush(struct redis_sink *s, char **cause)
{
	if (s->len > 0 && pipe_out_write(s->out, s->buf, s->len, cause) == -1)
		return -1;
	s->len = 0;
	return 0;
}

static int
redis_sink_put(struct redis_sink *s, const void *data, size_t n,
    char **cause)
{
	const unsigned char *p = data;
	size_t k;

	s->bytes += n;
	while (n > 0) {
		k = PIPE_BLOCK - s->len;
		if (k > n)
			k = n;
		memcpy(s->buf + s->len, p, k);
		s->len += k;
		p += k;
		n -= k;
		if (s->len == PIPE_BLOCK && redis_sink_flush(s, cause) == -1)
			return -1;
	}
	return 0;
}

struct redis_logical;

char *
redis_key_shown(const char *key, size_t len)
{
	return redis_printable(key, len, 60);
}

/* A key as a BBREDIS1 record, into the backup's stream. */
static int
redis_logical_frame(struct redis_logical *L, int db, const redisReply *key,
    const redisReply *dump, long long ttl, char **cause)
{
	unsigned char head[8], mid[12];

	redis_frame_head(head, (uint32_t)db, (uint32_t)key->len);
	redis_frame_mid(mid, ttl, (uint32_t)dump->len);
	if (redis_sink_put(&L->sink, head, sizeof(head), cause) == -1 ||
	    redis_sink_put(&L->sink, key->str, key->len, cause) == -1 ||
	    redis_sink_put(&L->sink, mid, sizeof(mid), cause) == -1 ||
	    redis_sink_put(&L->sink, dump->str, dump->len, cause) == -1)
		return -1;
	return 0;
}

/* One DUMP + PTTL pair of replies into a record (or skipped). */
static int
redis_logical_record(struct redis_logical *L, int db, const redisReply *key,
    const redisReply *dump, const redisReply *ttl, char **cause)
{
	char *shown, *why = NULL;

	if (dump->type == REDIS_REPLY_NIL || (ttl->type ==
	    REDIS_REPLY_INTEGER && ttl->integer == -2)) {
		L->vanished++;		/* gone between SCAN and DUMP */
		return 0;
	}
	shown = redis_key_shown(key->str, key->len);
	if (dump->type != REDIS_REPLY_STRING) {
		*cause = xasprintf("DUMP of key '%s' in db%d: %s", shown, db,
		    dump->type == REDIS_REPLY_ERROR ? dump->str :
		    "unexpected reply");
		free(shown);
		return -1;
	}
	if (ttl->type != REDIS_REPLY_INTEGER || ttl->integer < -1) {
		*cause = xasprintf("PTTL of key '%s' in db%d: %s", shown, db,
		    ttl->type == REDIS_REPLY_ERROR ? ttl->str :
		    "unexpected reply");
		free(shown);
		return -1;
	}
	if (key->len >= REDIS_FRAME_END || dump->len >= UINT32_MAX ||
	    redis_dump_payload_check((const unsigned char *)dump->str,
	    dump->len, &why) == -1) {
		*cause = xasprintf("DUMP of key '%s' in db%d: %s", shown, db,
		    why != NULL ? why : "too large for the format");
		free(why);
		free(shown);
		return -1;
	}
	free(shown);
	if (L->emit(L, db, key, dump, ttl->integer, cause) == -1)
		return -1;
	L->records++;
	return 0;
}

/* DUMP + PTTL of one SCAN batch, pipelined. */
static int
redis_logical_batch(struct redis_logical *L, int db, const redisReply *keys,
    char **cause)
{
	redisReply **replies;
	const char *argv[2];
	size_t lens[2], n = keys->elements, got = 0;
	char *why;
	int rc = -1;

	for (size_t i = 0; i < n; i++) {
		const redisReply *k = keys->element[i];

		if (k->type != REDIS_REPLY_STRING) {
			*cause = xstrdup("SCAN: a key that is not a string");
			return -1;
		}
		argv[1] = k->str;
		lens[1] = k->len;
		argv[0] = "DUMP";
		lens[0] = 4;
		redisAppendCommandArgv(L->c, 2, argv, lens);
		argv[0] = "PTTL";
		redisAppendCommandArgv(L->c, 2, argv, lens);
	}
	replies = xcalloc(2 * n + 1, sizeof(*replies));
	for (got = 0; got < 2 * n; got++) {
		if (redisGetReply(L->c, (void **)&replies[got]) != REDIS_OK) {
			why = redis_conn_error(L->c);
			*cause = xasprintf("DUMP: %s", why);
			free(why);
			goto done;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (redis_logical_record(L, db, keys->element[i],
		    replies[2 * i], replies[2 * i + 1], cause) == -1)
			goto done;
	rc = 0;
done:
	for (size_t i = 0; i < got; i++)
		freeReplyObject(replies[i]);
	free(replies);
	return rc;
}

int
redis_logical_db(struct redis_logical *L, int db, char **cause)
{
	const struct target *t = L->ctx->target;
	char dbtext[16], cursor[32] = "0";
	const redisReply *keys, *cur;
	redisReply *r;
	uint64_t total;

	snprintf(dbtext, sizeof(dbtext), "%d", db);
	if ((r = redis_cmd1(L->c, t, 0, cause, "SELECT", dbtext,
	    NULL)) == NULL)
		return -1;
	freeReplyObject(r);
	do {
		const char *argv[4] = { "SCAN", cursor, "COUNT",
		    REDIS_SCAN_COUNT };
		size_t lens[4] = { 4, strlen(cursor), 5,
		    strlen(REDIS_SCAN_COUNT) };

		if (redis_is_cancelled(L->ctx)) {
			*cause = xstrdup("cancelled");
			return -1;
		}
		if ((r = redis_cmd(L->c, t, 0, cause, 4, argv, lens)) == NULL)
			return -1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    (cur = r->element[0])->type != REDIS_REPLY_STRING ||
		    cur->len == 0 || cur->len >= sizeof(cursor) ||
		    strspn(cur->str, "0123456789") != cur->len ||
		    (keys = r->element[1])->type != REDIS_REPLY_ARRAY) {
			*cause = xstrdup("SCAN: unexpected reply");
			freeReplyObject(r);
			return -1;
		}
		memcpy(cursor, cur->str, cur->len + 1);
		if (redis_logical_batch(L, db, keys, cause) == -1) {
			freeReplyObject(r);
			return -1;
		}
		L->keys_done += keys->elements;
		freeReplyObject(r);
		if (L->sink.out == NULL) {
			/* A restore: keys, not bytes. */
			if (mono_ms() - L->last >= REDIS_PROGRESS_MS) {
				L->last = mono_ms();
				backend_progress(L->ctx, "restore", L->keys_done,
				    L->keys_total > L->keys_done ?
				    L->keys_total : L->keys_done);
			}
		} else if (mono_ms() - L->last >= REDIS_PROGRESS_MS) {
			L->last = mono_ms();
			/* The size so far, scaled to every key. */
			total = L->keys_done > 0 && L->keys_total > 0 ?
			    (uint64_t)((double)L->sink.bytes *
			    (double)L->keys_total / (double)L->keys_done) :
			    L->estimate;
			backend_progress(L->ctx, "dump", L->sink.bytes,
			    total > L->sink.bytes ? total : L->sink.bytes);
		}
	} while (strcmp(cursor, "0") != 0);
	return 0;
}

int
redis_logical(struct job_ctx *ctx, redisContext *c, struct pipe_out *out,
    uint64_t estimate, cJSON *manifest, char **cause)
{
	struct redis_logical L;
	unsigned char end[REDIS_FRAME_END_LEN];
	cJSON *keys = NULL, *dbs = cJSON_CreateArray();
	const cJSON *it;
	char *info, *why = NULL;
	int rc = -1;

	memset(&L, 0, sizeof(L));
	L.ctx = ctx;
	L.c = c;
	L.emit = redis_logical_frame;
	L.estimate = estimate;
	L.sink.out = out;
	L.sink.buf = xmalloc(PIPE_BLOCK);
	/* Which databases hold keys now, not when prepare looked. */
	if ((info = redis_info_text(c, ctx->target, &why)) == NULL) {
		*cause = why;
		goto done;
	}
	keys = redis_info_keyspace(info);
	free(info);
	cJSON_ArrayForEach(it, keys)
		L.keys_total += (uint64_t)it->valuedouble;
	backend_progress(ctx, "dump", 0, estimate);
	if (redis_sink_put(&L.sink, REDIS_FRAME_MAGIC, REDIS_FRAME_MAGIC_LEN,
	    cause) == -1)
		goto done;
	cJSON_ArrayForEach(it, keys) {
		long long db;

		if (it->string == NULL || !str_startswith(it->string, "db") ||
		    str_to_ll(it->string + 2, 0, 1000000, &db) == -1)
			continue;
		if (redis_logical_db(&L, (int)db, cause) == -1)
			goto done;
		cJSON_AddItemToArray(dbs, cJSON_CreateNumber((double)db));
	}
	redis_frame_end(end, L.records);
	if (redis_sink_put(&L.sink, end, sizeof(end), cause) == -1 ||
	    redis_sink_flush(&L.sink, cause) == -1)
		goto done;
	backend_progress(ctx, "dump", L.sink.bytes, L.sink.bytes);
	backend_fact(manifest, "format", cJSON_CreateString("BBREDIS1"));
	backend_fact(manifest, "records", cJSON_CreateNumber(
	    (double)L.records));
	backend_fact(manifest, "keys_vanished", cJSON_CreateNumber(
	    (double)L.vanished));
	backend_fact(manifest, "databases", dbs);
	dbs = NULL;
	rc = 0;
done:
	cJSON_Delete(keys);
	cJSON_Delete(dbs);
	free(L.sink.buf);
	return rc;
}

/* ---- restore: BBREDIS1 from a file ------------------------------------ */

/* Caps on what one record may ask us to allocate (Redis' own limits). */
#define REDIS_KEY_MAX		(512ULL * 1024 * 1024)

void
redis_frame_reader_init(struct redis_frame_reader *r, FILE *f)
{
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->f = f;
	r->size = fstat(fileno(f), &st) == 0 ? (uint64_t)st.st_size :
	    UINT64_MAX;
}

void
redis_frame_reader_release(struct redis_frame_reader *r)
{
	free(r->key);
	free(r->payload);
	r->key = r->payload = NULL;
	r->key_alloc = r->payload_alloc = 0;
}

/* Exactly n bytes of what, or -1 with *cause. */
static int
redis_fread(struct redis_frame_reader *r, void *p, size_t n,
    const char *what, char **cause)
{
	size_t got = 0;

	if (n > 0 && r->offset + n <= r->size)
		got = fread(p, 1, n, r->f);
	if (got == n) {
		r->offset += n;
		return 0;
	}
	if (ferror(r->f))
		*cause = xasprintf("reading the backup: %s", strerror(errno));
	else
		*cause = xasprintf("the logical backup is truncated at byte "
		    "%llu (%s of record %llu; %llu complete records, no end "
		    "record)", (unsigned long long)(r->offset + got), what,
		    (unsigned long long)r->records + 1,
		    (unsigned long long)r->records);
	return -1;
}

static void
redis_grow(unsigned char **p, size_t *alloc, size_t n)
{
	if (n > *alloc) {
		*p = xrealloc(*p, n);
		*alloc = n;
	}
}

int
redis_frame_read(struct redis_frame_reader *r, struct redis_record *rec,
    char **cause)
{
	unsigned char magic[REDIS_FRAME_MAGIC_LEN], head[8], mid[12], end[8];
	uint32_t db, klen, plen;
	char *why = NULL, *shown;
	int64_t ttl;

	*cause = NULL;
	memset(rec, 0, sizeof(*rec));
	if (r->done)
		return 0;
	if (!r->started) {
		if (redis_fread(r, magic, sizeof(magic), "the header",
		    cause) == -1)
			return -1;
		if (memcmp(magic, REDIS_FRAME_MAGIC, sizeof(magic)) != 0) {
			*cause = xstrdup("not a logical Redis backup (no "
			    "BBREDIS1 header)");
			return -1;
		}
		r->started = 1;
	}
	if (redis_fread(r, head, sizeof(head), "the head", cause) == -1)
		return -1;
	db = redis_be32(head);
	klen = redis_be32(head + 4);
	if (klen == REDIS_FRAME_END) {
		if (db != REDIS_FRAME_END) {
			*cause = xasprintf("bad end record at byte %llu",
			    (unsigned long long)r->offset - 8);
			return -1;
		}
		if (redis_fread(r, end, sizeof(end), "the end record",
		    cause) == -1)
			return -1;
		if (redis_be64(end) != r->records) {
			*cause = xasprintf("the end record counts %llu records, "
			    "the stream holds %llu",
			    (unsigned long long)redis_be64(end),
			    (unsigned long long)r->records);
			return -1;
		}
		if (getc(r->f) != EOF || ferror(r->f)) {
			*cause = xstrdup("data after the end record");
			return -1;
		}
		r->done = 1;
		return 0;
	}
	if (klen > REDIS_KEY_MAX || r->offset + klen > r->size) {
		*cause = xasprintf("%srecord %llu has a key of %u bytes, %s",
		    klen > REDIS_KEY_MAX ? "" : "the logical backup is "
		    "truncated: ", (unsigned long long)r->records + 1, klen,
		    klen > REDIS_KEY_MAX ? "longer than Redis allows" :
		    "past the end of the file");
		return -1;
	}
	redis_grow(&r->key, &r->key_alloc, klen > 0 ? klen : 1);
	if (redis_fread(r, r->key, klen, "the key", cause) == -1 ||
	    redis_fread(r, mid, sizeof(mid), "the ttl", cause) == -1)
		return -1;
	ttl = (int64_t)redis_be64(mid);
	plen = redis_be32(mid + 8);
	if (ttl < -1) {
		*cause = xasprintf("record %llu: bad ttl %lld",
		    (unsigned long long)r->records + 1, (long long)ttl);
		return -1;
	}
	if (plen < 11 || r->offset + plen > r->size) {
		*cause = xasprintf("%srecord %llu has a DUMP payload of %u "
		    "bytes, %s", plen < 11 ? "" : "the logical backup is "
		    "truncated: ", (unsigned long long)r->records + 1, plen,
		    plen < 11 ? "too short" : "past the end of the file");
		return -1;
	}
	redis_grow(&r->payload, &r->payload_alloc, plen);
	if (redis_fread(r, r->payload, plen, "the payload", cause) == -1)
		return -1;
	if (redis_dump_payload_check(r->payload, plen, &why) == -1) {
		shown = redis_key_shown((const char *)r->key, klen);
		*cause = xasprintf("record %llu (key '%s' in db%u): %s",
		    (unsigned long long)r->records + 1, shown, db, why);
		free(shown);
		free(why);
		return -1;
	}
	r->records++;
	rec->db = db;
	rec->key = r->key;
	rec->key_len = klen;
	rec->ttl_ms = ttl;
	rec->payload = r->payload;
	rec->payload_len = plen;
	return 1;
}
