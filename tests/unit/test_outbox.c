/*
 * test_outbox.c - the durable send queue: persistence and order, results
 * of a send (sent, retry, shrink, drop), edits, damaged files, backoff.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "outbox.h"
#include "util.h"
#include "testutil.h"

struct fx {
	char		*tmp;
	char		*dir;	/* tmp/outbox: outbox_open creates it */
	struct outbox	*ob;
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char *cause = NULL;

	f->tmp = tu_mkdtemp();
	f->dir = tu_path(f->tmp, "outbox");
	f->ob = outbox_open(f->dir, &cause);
	assert_null(cause);
	assert_non_null(f->ob);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	outbox_free(f->ob);
	free(f->dir);
	tu_rmtree(f->tmp);
	free(f);
	return 0;
}

static void
reopen(struct fx *f)
{
	char *cause = NULL;

	outbox_free(f->ob);
	f->ob = outbox_open(f->dir, &cause);
	assert_null(cause);
	assert_non_null(f->ob);
}

static cJSON *
text(const char *body)
{
	cJSON *c = cJSON_CreateObject();

	cJSON_AddStringToObject(c, "msgtype", "m.notice");
	cJSON_AddStringToObject(c, "body", body);
	return c;
}

/* An edit as bot_edit() makes it: target event id filled at send time. */
static cJSON *
edit(const char *body)
{
	cJSON *c = text(body), *rel = cJSON_CreateObject();

	cJSON_AddItemToObject(c, "m.new_content", text(body));
	cJSON_AddStringToObject(rel, "rel_type", "m.replace");
	cJSON_AddStringToObject(rel, "event_id", "");
	cJSON_AddItemToObject(c, "m.relates_to", rel);
	return c;
}

static const char *
body_of(const struct outbox_item *it)
{
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(it->content, "body");

	assert_true(cJSON_IsString(b));
	return b->valuestring;
}

static char *
file_of(const struct fx *f, uint64_t seq)
{
	char name[64];

	snprintf(name, sizeof(name), "%020llu.json", (unsigned long long)seq);
	return tu_path(f->dir, name);
}

static int
item_file_exists(const struct fx *f, uint64_t seq)
{
	char *p = file_of(f, seq);
	int r = tu_exists(p);

	free(p);
	return r;
}

static struct outbox_item *
find(struct fx *f, uint64_t seq)
{
	struct outbox_item *it = outbox_head(f->ob, INT64_MAX);

	for (; it != NULL; it = it->next)
		if (it->seq == seq)
			return it;
	return NULL;
}

static void
test_push_persist_order(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	char *txn[3];
	uint64_t s[3];

	s[0] = outbox_push(f->ob, "!r:x", "m.room.message", text("one"), 0,
	    "$c1");
	s[1] = outbox_push(f->ob, "!r:x", "m.reaction", text("two"), 0, NULL);
	s[2] = outbox_push(f->ob, "!q:x", "m.room.message", text("three"), 0,
	    "$c3");
	assert_int_equal(s[0], 1);
	assert_int_equal(s[1], 2);
	assert_int_equal(s[2], 3);
	assert_int_equal(outbox_depth(f->ob), 3);
	assert_int_equal(tu_count_files(f->dir, ".json"), 3);
	for (int i = 0; i < 3; i++) {
		char *p = file_of(f, s[i]);

		assert_int_equal(tu_mode(p), 0600);
		free(p);
	}
	it = outbox_head(f->ob, 0);
	assert_non_null(it);
	for (int i = 0; i < 3; i++, it = it->next) {
		assert_non_null(it);
		assert_int_equal(it->seq, s[i]);
		txn[i] = xstrdup(it->txn_id);
		assert_true(str_startswith(txn[i], "bb"));
	}
	assert_string_not_equal(txn[0], txn[1]);
	assert_string_not_equal(txn[1], txn[2]);

	reopen(f);
	assert_int_equal(outbox_depth(f->ob), 3);
	it = outbox_head(f->ob, 0);
	assert_non_null(it);
	assert_int_equal(it->seq, 1);
	assert_string_equal(it->txn_id, txn[0]);
	assert_string_equal(it->room_id, "!r:x");
	assert_string_equal(it->type, "m.room.message");
	assert_string_equal(body_of(it), "one");
	assert_string_equal(it->source_event, "$c1");
	assert_int_equal(it->edit_of, 0);
	assert_null(it->edit_event);
	it = it->next;
	assert_int_equal(it->seq, 2);
	assert_string_equal(it->txn_id, txn[1]);
	assert_string_equal(it->type, "m.reaction");
	assert_null(it->source_event);
	it = it->next;
	assert_int_equal(it->seq, 3);
	assert_string_equal(it->txn_id, txn[2]);
	assert_string_equal(it->room_id, "!q:x");
	assert_string_equal(body_of(it), "three");
	assert_null(it->next);
	for (int i = 0; i < 3; i++)
		free(txn[i]);

	/* numbering continues after what was loaded */
	assert_int_equal(outbox_push(f->ob, "!r:x", "m.room.message",
	    text("four"), 0, NULL), 4);
}

static void
collect(const char *event_id, void *arg)
{
	struct buf *b = arg;

	buf_addf(b, "%s;", event_id);
}

static void
test_foreach_source(void **state)
{
	struct fx *f = *state;
	struct buf b;

	outbox_push(f->ob, "!r:x", "m.room.message", text("a"), 0, "$c1");
	outbox_push(f->ob, "!r:x", "m.room.message", text("b"), 0, NULL);
	outbox_push(f->ob, "!r:x", "m.reaction", text("c"), 0, "$c2");
	buf_init(&b, 1024);
	buf_add(&b, "", 0);
	outbox_foreach_source(f->ob, collect, &b);
	assert_string_equal(b.data, "$c1;$c2;");
	buf_release(&b);
}

static void
test_sent(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	uint64_t a, b;

	assert_int_equal(outbox_wait(f->ob, 0), -1);
	assert_null(outbox_head(f->ob, 0));
	a = outbox_push(f->ob, "!r:x", "m.room.message", text("a"), 0, NULL);
	b = outbox_push(f->ob, "!r:x", "m.room.message", text("b"), 0, NULL);
	assert_int_equal(outbox_wait(f->ob, 1000), 0);
	it = outbox_head(f->ob, 1000);
	assert_int_equal(it->seq, a);
	assert_int_equal(outbox_result(f->ob, it, 200, "$ev_a:x", -1, 1000),
	    OUTBOX_SENT);
	assert_int_equal(outbox_depth(f->ob), 1);
	assert_false(item_file_exists(f, a));
	assert_true(item_file_exists(f, b));
	assert_string_equal(outbox_event_id(f->ob, a), "$ev_a:x");
	assert_null(outbox_event_id(f->ob, b));
	assert_null(outbox_event_id(f->ob, 999));
	it = outbox_head(f->ob, 1000);
	assert_int_equal(it->seq, b);

	/* accepted but no event id: kept for a retry */
	assert_int_equal(outbox_result(f->ob, it, 200, NULL, -1, 1000),
	    OUTBOX_RETRY);
	assert_int_equal(outbox_depth(f->ob), 1);
	assert_true(item_file_exists(f, b));
}

static void
test_rate_limited(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	uint64_t a;

	a = outbox_push(f->ob, "!r:x", "m.room.message", text("a"), 0, NULL);
	it = outbox_head(f->ob, 10000);
	it->inflight = 1;
	assert_int_equal(outbox_result(f->ob, it, 429, NULL, 1500, 10000),
	    OUTBOX_RETRY);
	assert_int_equal(it->inflight, 0);
	assert_int_equal(it->not_before, 11500);
	assert_int_equal(it->attempts, 1);
	assert_int_equal(outbox_depth(f->ob), 1);
	assert_true(item_file_exists(f, a));
	assert_null(outbox_head(f->ob, 10000));
	assert_null(outbox_head(f->ob, 11499));
	assert_int_equal(outbox_wait(f->ob, 10000), 1500);
	assert_int_equal(outbox_wait(f->ob, 11000), 500);
	assert_ptr_equal(outbox_head(f->ob, 11500), it);
	assert_int_equal(outbox_wait(f->ob, 11500), 0);

	/* an absurd hint is capped at an hour */
	assert_int_equal(outbox_result(f->ob, it, 429, NULL, 86400000L, 20000),
	    OUTBOX_RETRY);
	assert_int_equal(it->not_before, 20000 + 3600000);

	/* 429 without a hint: exponential backoff (attempts is 2 now) */
	assert_int_equal(outbox_result(f->ob, it, 429, NULL, -1, 0),
	    OUTBOX_RETRY);
	assert_in_range(it->not_before, 1000, 2000);
}

static void
test_retry_backoff(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	static const long statuses[] = { 500, 0, 502, 503, 408, 401, 500,
	    0, 500, 500, 500, 500, 500, 500, 500 };
	int64_t now = 5000;

	outbox_push(f->ob, "!r:x", "m.room.message", text("a"), 0, NULL);
	it = outbox_head(f->ob, now);
	for (size_t i = 0; i < nitems(statuses); i++) {
		int64_t d = 500LL << (i < 7 ? i : 7), wait;

		if (d > 60000)
			d = 60000;
		assert_int_equal(outbox_result(f->ob, it, statuses[i], NULL,
		    -1, now), OUTBOX_RETRY);
		assert_int_equal(it->attempts, (int)i + 1);
		wait = it->not_before - now;
		if (wait < d / 2 || wait > d)
			print_message("attempt %zu: waits %lld, not in "
			    "[%lld, %lld]\n", i, (long long)wait,
			    (long long)(d / 2), (long long)d);
		assert_true(wait >= d / 2 && wait <= d);
		assert_null(outbox_head(f->ob, it->not_before - 1));
		assert_ptr_equal(outbox_head(f->ob, it->not_before), it);
		now = it->not_before;
	}
	assert_int_equal(outbox_depth(f->ob), 1);
}

static void
test_dropped(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	uint64_t a, b;

	a = outbox_push(f->ob, "!r:x", "m.room.message", text("a"), 0, NULL);
	b = outbox_push(f->ob, "!r:x", "m.room.message", text("b"), 0, NULL);
	it = outbox_head(f->ob, 0);
	assert_int_equal(outbox_result(f->ob, it, 403, NULL, -1, 0),
	    OUTBOX_DROPPED);
	assert_int_equal(outbox_depth(f->ob), 1);
	assert_false(item_file_exists(f, a));
	assert_null(outbox_event_id(f->ob, a));
	it = outbox_head(f->ob, 0);
	assert_int_equal(it->seq, b);
	assert_int_equal(outbox_result(f->ob, it, 400, NULL, -1, 0),
	    OUTBOX_DROPPED);
	assert_int_equal(outbox_depth(f->ob), 0);
	assert_int_equal(tu_count_files(f->dir, ".json"), 0);
	assert_int_equal(outbox_wait(f->ob, 0), -1);
}

static void
test_too_large_shrunk(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	char big[3001];
	uint64_t a;

	memset(big, 'x', 3000);
	big[3000] = '\0';
	a = outbox_push(f->ob, "!r:x", "m.room.message", text(big), 0, NULL);
	it = outbox_head(f->ob, 0);
	assert_int_equal(outbox_result(f->ob, it, 413, NULL, -1, 0),
	    OUTBOX_SHRUNK);
	assert_int_equal(outbox_depth(f->ob), 1);
	assert_true(strlen(body_of(it)) < 3000);
	/* retried at once */
	assert_ptr_equal(outbox_head(f->ob, 0), it);
	/* the shrunk content is what is stored */
	reopen(f);
	it = outbox_head(f->ob, 0);
	assert_int_equal(it->seq, a);
	assert_true(strlen(body_of(it)) < 3000);
}

static void
test_too_large_unshrinkable(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	uint64_t a;

	a = outbox_push(f->ob, "!r:x", "m.reaction", cJSON_CreateObject(), 0,
	    NULL);
	it = outbox_head(f->ob, 0);
	assert_int_equal(outbox_result(f->ob, it, 413, NULL, -1, 0),
	    OUTBOX_DROPPED);
	assert_int_equal(outbox_depth(f->ob), 0);
	assert_false(item_file_exists(f, a));
}

/*
 * Bug (msg_shrink): a server that keeps answering 413 must end in
 * OUTBOX_DROPPED.  Today the body converges to ~102 bytes and every 413
 * returns OUTBOX_SHRUNK ("retry now") forever: a hot send loop.
 */
static void
test_too_large_eventually_dropped(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	char big[5001];
	enum outbox_action a = OUTBOX_SHRUNK;
	int rounds = 0;

	memset(big, 'x', 5000);
	big[5000] = '\0';
	outbox_push(f->ob, "!r:x", "m.room.message", text(big), 0, NULL);
	while (a == OUTBOX_SHRUNK && rounds < 40) {
		it = outbox_head(f->ob, 0);
		assert_non_null(it);
		a = outbox_result(f->ob, it, 413, NULL, -1, 0);
		rounds++;
	}
	if (a != OUTBOX_DROPPED)
		print_message("still %d after %d rounds of 413\n", a, rounds);
	assert_int_equal(a, OUTBOX_DROPPED);
	assert_int_equal(outbox_depth(f->ob), 0);
}

/* A sealed (encrypted) item keeps its ciphertext and session across a
 * restart, and a newer edit never replaces it. */
static void
test_seal(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	uint64_t target, e1, e2;
	char *txn;

	target = outbox_push(f->ob, "!r:x", "m.room.message", text("start"),
	    0, "$cmd");
	e1 = outbox_push(f->ob, "!r:x", "m.room.message", edit("10%"), target,
	    NULL);
	it = find(f, e1);
	txn = xstrdup(it->txn_id);
	assert_int_equal(outbox_seal(f->ob, it, "m.room.encrypted",
	    cJSON_Parse("{\"algorithm\":\"m.megolm.v1.aes-sha2\","
	    "\"ciphertext\":\"AwgA\",\"session_id\":\"S1\"}"), "S1"), 0);
	reopen(f);
	it = find(f, e1);
	assert_non_null(it);
	assert_string_equal(it->type, "m.room.encrypted");
	assert_string_equal(it->session_id, "S1");
	assert_string_equal(it->txn_id, txn);
	assert_string_equal(cJSON_GetObjectItem(it->content,
	    "ciphertext")->valuestring, "AwgA");
	/* the sealed edit stays as it is; the newer one is queued */
	e2 = outbox_push(f->ob, "!r:x", "m.room.message", edit("20%"), target,
	    NULL);
	assert_int_not_equal(e2, e1);
	assert_string_equal(find(f, e1)->type, "m.room.encrypted");
	assert_string_equal(body_of(find(f, e2)), "20%");
	free(txn);
}

static void
test_edit_coalescing(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	uint64_t target, e1, e2, e3;

	target = outbox_push(f->ob, "!r:x", "m.room.message", text("start"),
	    0, "$cmd");
	e1 = outbox_push(f->ob, "!r:x", "m.room.message", edit("10%"), target,
	    NULL);
	e2 = outbox_push(f->ob, "!r:x", "m.room.message", edit("20%"), target,
	    NULL);
	assert_int_equal(e1, target + 1);
	assert_int_equal(e2, e1);
	assert_int_equal(outbox_depth(f->ob), 2);
	it = find(f, e1);
	assert_non_null(it);
	assert_string_equal(body_of(it), "20%");
	assert_int_equal(it->edit_of, target);
	assert_null(it->edit_event);	/* target not sent yet */

	/* the newer content is the durable one */
	reopen(f);
	assert_int_equal(outbox_depth(f->ob), 2);
	it = find(f, e1);
	assert_non_null(it);
	assert_string_equal(body_of(it), "20%");
	assert_int_equal(it->edit_of, target);

	/* an edit being sent is not touched: a new one is queued */
	it->inflight = 1;
	e3 = outbox_push(f->ob, "!r:x", "m.room.message", edit("30%"), target,
	    NULL);
	assert_int_not_equal(e3, e1);
	assert_int_equal(outbox_depth(f->ob), 3);
	assert_string_equal(body_of(it), "20%");
	assert_string_equal(body_of(find(f, e3)), "30%");

	/* edits of another target are separate */
	assert_int_not_equal(outbox_push(f->ob, "!r:x", "m.room.message",
	    edit("x"), 99, NULL), e3);
}

static void
test_edit_target_sent_before(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	uint64_t target, e;

	target = outbox_push(f->ob, "!r:x", "m.room.message", text("start"),
	    0, NULL);
	it = outbox_head(f->ob, 0);
	assert_int_equal(outbox_result(f->ob, it, 200, "$target:x", -1, 0),
	    OUTBOX_SENT);
	e = outbox_push(f->ob, "!r:x", "m.room.message", edit("50%"), target,
	    NULL);
	it = outbox_head(f->ob, 0);
	assert_non_null(it);
	assert_int_equal(it->seq, e);
	assert_string_equal(it->edit_event, "$target:x");
	reopen(f);
	it = outbox_head(f->ob, 0);
	assert_non_null(it);
	assert_string_equal(it->edit_event, "$target:x");
}

static void
test_edit_filled_when_target_sent(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	uint64_t target, e;

	target = outbox_push(f->ob, "!r:x", "m.room.message", text("start"),
	    0, NULL);
	e = outbox_push(f->ob, "!r:x", "m.room.message", edit("50%"), target,
	    NULL);
	assert_null(find(f, e)->edit_event);
	it = outbox_head(f->ob, 0);
	assert_int_equal(it->seq, target);
	assert_int_equal(outbox_result(f->ob, it, 200, "$target:x", -1, 0),
	    OUTBOX_SENT);
	it = outbox_head(f->ob, 0);
	assert_int_equal(it->seq, e);
	assert_string_equal(it->edit_event, "$target:x");
	/* stored too: a restart before sending the edit keeps it */
	reopen(f);
	it = outbox_head(f->ob, 0);
	assert_non_null(it);
	assert_int_equal(it->seq, e);
	assert_string_equal(it->edit_event, "$target:x");
}

static void
test_edit_of_dropped_target(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	uint64_t target, e, after;

	target = outbox_push(f->ob, "!r:x", "m.room.message", text("start"),
	    0, NULL);
	e = outbox_push(f->ob, "!r:x", "m.room.message", edit("50%"), target,
	    NULL);
	after = outbox_push(f->ob, "!r:x", "m.room.message", text("later"), 0,
	    NULL);
	it = outbox_head(f->ob, 0);
	assert_int_equal(outbox_result(f->ob, it, 403, NULL, -1, 0),
	    OUTBOX_DROPPED);
	/* the edit cannot be sent: dropped, the next message comes */
	it = outbox_head(f->ob, 0);
	assert_non_null(it);
	assert_int_equal(it->seq, after);
	assert_false(item_file_exists(f, e));
	assert_int_equal(outbox_depth(f->ob), 1);
}

static void
test_corrupt_and_tmp(void **state)
{
	struct fx *f = *state;
	char *bad = tu_path(f->dir, "00000000000000000007.json");
	char *half = tu_path(f->dir, "00000000000000000008.json");
	char *tmp = tu_path(f->dir, "00000000000000000009.json.tmp");
	char *other = tu_path(f->dir, "README");
	char *moved;
	struct outbox_item *it;

	outbox_push(f->ob, "!r:x", "m.room.message", text("good"), 0, NULL);
	tu_write_str(bad, "{not json", 0600);
	/* valid JSON but not an item */
	tu_write_str(half, "{\"seq\":8,\"room_id\":\"!r:x\"}", 0600);
	tu_write_str(tmp, "{\"seq\":9", 0600);
	tu_write_str(other, "left alone", 0644);
	reopen(f);
	assert_int_equal(outbox_depth(f->ob), 1);
	it = outbox_head(f->ob, 0);
	assert_string_equal(body_of(it), "good");
	assert_false(tu_exists(bad));
	assert_false(tu_exists(half));
	assert_false(tu_exists(tmp));
	assert_true(tu_exists(other));
	moved = xasprintf("%s.corrupt", bad);
	assert_true(tu_exists(moved));
	free(moved);
	moved = xasprintf("%s.corrupt", half);
	assert_true(tu_exists(moved));
	free(moved);
	assert_int_equal(tu_count_files(f->dir, ".corrupt"), 2);
	/* and nothing happens to them on the next start */
	reopen(f);
	assert_int_equal(outbox_depth(f->ob), 1);
	assert_int_equal(tu_count_files(f->dir, ".corrupt"), 2);
	free(bad);
	free(half);
	free(tmp);
	free(other);
}

/*
 * Bug (outbox.c item_load): seq and edit_of are cast from a double
 * without a range check - (uint64_t)1e300 is undefined behaviour - and
 * seq is not compared with the file name.  An item whose seq does not
 * match its file is sent under another seq and its file is never removed
 * (unlink_item works from the seq), so it is sent again at every start.
 * Such a file should be set aside as .corrupt like any unreadable one.
 */
static void
test_bad_seq_is_corrupt(void **state)
{
	struct fx *f = *state;
	static const char *seqs[] = { "1e300", "5.5", "6", "0", "-1" };
	size_t depth;
	int corrupt;

	for (size_t i = 0; i < nitems(seqs); i++) {
		char *path = file_of(f, 5), *text;

		text = xasprintf("{\"seq\":%s,\"txn_id\":\"t\",\"room_id\":"
		    "\"!r:x\",\"type\":\"m.room.message\",\"content\":{}}",
		    seqs[i]);
		tu_write_str(path, text, 0600);
		free(text);
		reopen(f);
		depth = outbox_depth(f->ob);
		corrupt = tu_count_files(f->dir, ".corrupt");
		tu_rmtree(xasprintf("%s.corrupt", path));
		unlink(path);
		free(path);
		if (depth != 0)
			print_message("seq %s in file 5 was loaded\n", seqs[i]);
		assert_int_equal(depth, 0);
		assert_int_equal(corrupt, 1);
		reopen(f);
	}
}

static void
test_open_fails(void **state)
{
	char *tmp = tu_mkdtemp(), *file = tu_path(tmp, "file");
	char *under = tu_path(file, "outbox"), *cause = NULL;

	(void)state;
	tu_write_str(file, "x", 0600);
	assert_null(outbox_open(under, &cause));
	assert_non_null(cause);
	assert_true(str_startswith(cause, under));
	free(cause);
	free(under);
	free(file);
	tu_rmtree(tmp);
}

/* ---- backoff_delay ---------------------------------------------------- */

static void
test_backoff_growth(void **state)
{
	int64_t d = 500;

	(void)state;
	/* rnd = d/2 picks the top of [d/2, d] */
	for (int attempt = 0; attempt < 12; attempt++) {
		int64_t want = d > 60000 ? 60000 : d;

		assert_int_equal(backoff_delay(attempt, 500, 60000,
		    (uint32_t)(want / 2)), want);
		d *= 2;
	}
	assert_int_equal(backoff_delay(0, 500, 60000, 0), 250);
	assert_int_equal(backoff_delay(1, 500, 60000, 0), 500);
	assert_int_equal(backoff_delay(7, 500, 60000, 0), 30000);
	assert_int_equal(backoff_delay(1000, 500, 60000, 0), 30000);
	assert_int_equal(backoff_delay(1000, 500, 60000, 30000), 60000);
	assert_int_equal(backoff_delay(INT32_MAX, 500, 60000, 0), 30000);
	/* a negative attempt counts as the first */
	assert_int_equal(backoff_delay(-5, 500, 60000, 250), 500);
}

static void
test_backoff_jitter_bounds(void **state)
{
	static const uint32_t rnds[] = { 0, 1, 12345, 0x7fffffff, 0x80000000u,
	    UINT32_MAX - 1, UINT32_MAX };

	(void)state;
	for (int attempt = 0; attempt < 20; attempt++) {
		int64_t d = 1000LL << (attempt < 16 ? attempt : 16);

		if (d > 60000)
			d = 60000;
		for (size_t i = 0; i < nitems(rnds); i++) {
			int64_t v = backoff_delay(attempt, 1000, 60000,
			    rnds[i]);

			assert_true(v >= d / 2);
			assert_true(v <= d);
		}
	}
	assert_int_equal(backoff_delay(0, 1000, 60000, 0), 500);
	assert_int_equal(backoff_delay(0, 1000, 60000, UINT32_MAX),
	    500 + (int64_t)(UINT32_MAX % 501));
	/* degenerate bases do not divide by zero */
	assert_int_equal(backoff_delay(3, 0, 60000, UINT32_MAX), 0);
	assert_int_equal(backoff_delay(0, 1, 60000, UINT32_MAX),
	    (int64_t)(UINT32_MAX % 1));
}

/*
 * Bug (latent): the jitter is rnd % (uint32_t)(d / 2 + 1).  When d / 2 + 1
 * is 2^32 (d = 2^33 - 2) the cast makes it 0: a division by zero
 * (SIGFPE); above 2^32 the window wraps and is far narrower than [d/2, d].
 * No caller passes such values today (max is 60 s), but the function
 * promises [d/2, d] for any base and max.  Run in a child, so a crash
 * fails this test instead of killing the whole suite.
 */
static void
test_backoff_wide_window(void **state)
{
	const int64_t d = (INT64_C(1) << 33) - 2;
	int status = 0;
	pid_t pid;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int64_t v;

		/* cmocka's handler would resume the suite in the child */
		signal(SIGFPE, SIG_DFL);
		v = backoff_delay(0, d, d, UINT32_MAX);

		_exit(v >= d / 2 && v <= d ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		print_message("backoff_delay died of signal %d\n",
		    WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A thread reply the server refuses becomes a plain reply to the same event. */
static void
test_unthread(void **state)
{
	cJSON *c = cJSON_Parse("{\"body\":\"hi\",\"m.relates_to\":{"
	    "\"rel_type\":\"m.thread\",\"event_id\":\"$root\","
	    "\"is_falling_back\":true,\"m.in_reply_to\":{\"event_id\":"
	    "\"$cmd\"}}}");
	cJSON *plain = cJSON_Parse("{\"body\":\"x\",\"m.relates_to\":{"
	    "\"m.in_reply_to\":{\"event_id\":\"$cmd\"}}}");
	char *out;

	(void)state;
	assert_int_equal(outbox_unthread(c), 1);
	out = cJSON_PrintUnformatted(c);
	assert_string_equal(out, "{\"body\":\"hi\",\"m.relates_to\":{"
	    "\"m.in_reply_to\":{\"event_id\":\"$cmd\"}}}");
	free(out);
	assert_int_equal(outbox_unthread(c), 0);	/* no thread any more */
	assert_int_equal(outbox_unthread(plain), 0);
	cJSON_Delete(c);
	cJSON_Delete(plain);
}


/* A reply's txnId is a function of its command and its ordinal alone. */
static void
test_reply_txn_deterministic(void **state)
{
	char *a = outbox_reply_txn("$cmd1:x", 0), *b = outbox_reply_txn(
	    "$cmd1:x", 0), *c = outbox_reply_txn("$cmd1:x", 1),
	    *d = outbox_reply_txn("$cmd2:x", 0),
	    *e = outbox_reply_txn("$cmd1:x1", 0);

	(void)state;
	assert_string_equal(a, b);
	assert_true(str_startswith(a, "bb"));
	assert_int_equal(strlen(a), 3 + 32);
	assert_string_not_equal(a, c);
	assert_string_not_equal(a, d);
	assert_string_not_equal(a, e);
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
}

/*
 * Replies pushed while their command is handled are named by it (the
 * same names when it is handled again after a crash), and wait in memory
 * for outbox_commit(); anything else is on disk at once.
 */
static void
test_reply_committed(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	char *t0 = outbox_reply_txn("$c1", 0), *t1 = outbox_reply_txn("$c1",
	    1);
	uint64_t r0, r1, other, notice;

	outbox_command(f->ob, "$c1");
	r0 = outbox_push(f->ob, "!r:x", "m.reaction", text("eyes"), 0, "$c1");
	r1 = outbox_push(f->ob, "!r:x", "m.room.message", text("a"), 0, "$c1");
	/* a reply to some other event (a job's) and a notice: as before */
	other = outbox_push(f->ob, "!r:x", "m.room.message", text("b"), 0,
	    "$job");
	notice = outbox_push(f->ob, "!r:x", "m.room.message", text("c"), 0,
	    NULL);
	outbox_command(f->ob, NULL);
	assert_int_equal(outbox_depth(f->ob), 4);
	assert_int_equal(outbox_uncommitted(f->ob), 2);
	assert_string_equal(find(f, r0)->txn_id, t0);
	assert_string_equal(find(f, r1)->txn_id, t1);
	assert_string_not_equal(find(f, other)->txn_id, t0);
	assert_false(item_file_exists(f, r0));
	assert_false(item_file_exists(f, r1));
	assert_true(item_file_exists(f, other));
	assert_true(item_file_exists(f, notice));

	/* the first is accepted before the commit: never written */
	it = outbox_head(f->ob, 0);
	assert_int_equal(it->seq, r0);
	it->inflight = 1;
	assert_int_equal(outbox_result(f->ob, it, 200, "$ev0:x", -1, 0),
	    OUTBOX_SENT);
	assert_int_equal(outbox_uncommitted(f->ob), 1);
	assert_int_equal(outbox_commit(f->ob), 0);
	assert_int_equal(outbox_uncommitted(f->ob), 0);
	assert_false(item_file_exists(f, r0));
	assert_true(item_file_exists(f, r1));
	assert_int_equal(tu_count_files(f->dir, ".json"), 3);

	/* what was committed survives, under its name */
	reopen(f);
	assert_int_equal(outbox_depth(f->ob), 3);
	it = outbox_head(f->ob, 0);
	assert_int_equal(it->seq, r1);
	assert_string_equal(it->txn_id, t1);
	assert_string_equal(it->source_event, "$c1");
	assert_string_equal(body_of(it), "a");
	/* a later command starts its own count */
	outbox_command(f->ob, "$c2");
	it = find(f, outbox_push(f->ob, "!r:x", "m.room.message", text("d"),
	    0, "$c2"));
	outbox_command(f->ob, NULL);
	free(t0);
	t0 = outbox_reply_txn("$c2", 0);
	assert_string_equal(it->txn_id, t0);
	assert_false(item_file_exists(f, it->seq));
	free(t0);
	free(t1);
}

/* A reply not yet committed that fails or is shrunk stays in memory,
 * and is stored as it then is. */
static void
test_reply_retry_before_commit(void **state)
{
	struct fx *f = *state;
	struct outbox_item *it;
	char *txn;
	uint64_t r;

	outbox_command(f->ob, "$c1");
	r = outbox_push(f->ob, "!r:x", "m.room.message", text("a"), 0, "$c1");
	outbox_command(f->ob, NULL);
	it = outbox_head(f->ob, 0);
	txn = xstrdup(it->txn_id);
	assert_int_equal(outbox_result(f->ob, it, 429, NULL, 5000, 0),
	    OUTBOX_RETRY);
	assert_false(item_file_exists(f, r));
	assert_int_equal(outbox_commit(f->ob), 0);
	assert_true(item_file_exists(f, r));
	reopen(f);
	it = outbox_head(f->ob, 0);
	assert_string_equal(it->txn_id, txn);	/* a 429 keeps it */
	free(txn);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_push_persist_order,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach_source,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_sent, setup, teardown),
		cmocka_unit_test(test_unthread),
		cmocka_unit_test_setup_teardown(test_rate_limited,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_backoff,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_large_shrunk,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_large_unshrinkable,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_too_large_eventually_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_coalescing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_target_sent_before,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_edit_filled_when_target_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_of_dropped_target,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_and_tmp,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_seq_is_corrupt,
		    setup, teardown),
		cmocka_unit_test(test_open_fails),
		cmocka_unit_test(test_backoff_growth),
		cmocka_unit_test(test_backoff_jitter_bounds),
		cmocka_unit_test(test_backoff_wide_window),
		cmocka_unit_test(test_reply_txn_deterministic),
		cmocka_unit_test_setup_teardown(test_reply_committed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_retry_before_commit,
		    setup, teardown),
	};

	return TU_RUN(tests);
}
