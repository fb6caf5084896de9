/*
 * test_sync.c - reading /sync and /messages responses: a realistic
 * response, and hostile ones that must be survived.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sync.h"
#include "util.h"
#include "testutil.h"

#define ME "@bb:example.org"
#define NOT_OBJECT "sync response is not a JSON object"
#define NO_BATCH "sync response has no usable next_batch"

static const char realistic[] =
"{\n"
"  \"next_batch\": \"s72595_4483_1934\",\n"
"  \"account_data\": {\"events\": []},\n"
"  \"presence\": {\"events\": [{\"type\": \"m.presence\", \"sender\": \"@alice:example.org\", \"content\": {\"presence\": \"online\"}}]},\n"
"  \"rooms\": {\n"
"    \"join\": {\n"
"      \"!ops:example.org\": {\n"
"        \"summary\": {\"m.joined_member_count\": 3},\n"
"        \"state\": {\"events\": [\n"
"          {\"type\": \"m.room.power_levels\", \"state_key\": \"\", \"sender\": \"@alice:example.org\",\n"
"           \"event_id\": \"$pl\", \"origin_server_ts\": 1700000000000,\n"
"           \"content\": {\"users\": {\"@alice:example.org\": 100}, \"users_default\": 0}},\n"
"          {\"type\": \"m.room.member\", \"state_key\": \"" ME "\", \"sender\": \"" ME "\",\n"
"           \"event_id\": \"$me\", \"origin_server_ts\": 1700000000001,\n"
"           \"content\": {\"membership\": \"join\", \"displayname\": \"bb\"}}\n"
"        ]},\n"
"        \"timeline\": {\n"
"          \"limited\": true,\n"
"          \"prev_batch\": \"t34-23535_0_0\",\n"
"          \"events\": [\n"
"            {\"type\": \"m.room.message\", \"sender\": \"@alice:example.org\", \"event_id\": \"$plain\",\n"
"             \"origin_server_ts\": 1700000001000, \"unsigned\": {\"age\": 1234},\n"
"             \"content\": {\"msgtype\": \"m.text\", \"body\": \"!status\"}},\n"
"            {\"type\": \"m.room.message\", \"sender\": \"@bob:example.org\", \"event_id\": \"$threaded\",\n"
"             \"origin_server_ts\": 1700000002000,\n"
"             \"content\": {\"msgtype\": \"m.text\", \"body\": \"!help status\",\n"
"               \"m.relates_to\": {\"rel_type\": \"m.thread\", \"event_id\": \"$root\", \"is_falling_back\": true,\n"
"                 \"m.in_reply_to\": {\"event_id\": \"$plain\"}}}},\n"
"            {\"type\": \"m.room.message\", \"sender\": \"@alice:example.org\", \"event_id\": \"$reply\",\n"
"             \"origin_server_ts\": 1700000003000,\n"
"             \"content\": {\"msgtype\": \"m.text\", \"body\": \"> <@bob:example.org> hi\\n\\n!status\",\n"
"               \"format\": \"org.matrix.custom.html\", \"formatted_body\": \"<mx-reply>...</mx-reply>!status\",\n"
"               \"m.relates_to\": {\"m.in_reply_to\": {\"event_id\": \"$threaded\"}}}},\n"
"            {\"type\": \"m.room.message\", \"sender\": \"@alice:example.org\", \"event_id\": \"$edit\",\n"
"             \"origin_server_ts\": 1700000004000,\n"
"             \"content\": {\"msgtype\": \"m.text\", \"body\": \"* !status\",\n"
"               \"m.new_content\": {\"msgtype\": \"m.text\", \"body\": \"!status\"},\n"
"               \"m.relates_to\": {\"rel_type\": \"m.replace\", \"event_id\": \"$plain\"}}},\n"
"            {\"type\": \"m.reaction\", \"sender\": \"@bob:example.org\", \"event_id\": \"$react\",\n"
"             \"origin_server_ts\": 1700000005000,\n"
"             \"content\": {\"m.relates_to\": {\"rel_type\": \"m.annotation\", \"event_id\": \"$plain\", \"key\": \"\xf0\x9f\x91\x8d\"}}},\n"
"            {\"type\": \"m.room.member\", \"state_key\": \"@carol:example.org\", \"sender\": \"@carol:example.org\",\n"
"             \"event_id\": \"$join\", \"origin_server_ts\": 1700000006000,\n"
"             \"content\": {\"membership\": \"join\"}},\n"
"            {\"type\": \"m.room.encryption\", \"state_key\": \"\", \"sender\": \"@alice:example.org\",\n"
"             \"event_id\": \"$enc\", \"origin_server_ts\": 1700000007000,\n"
"             \"content\": {\"algorithm\": \"m.megolm.v1.aes-sha2\"}}\n"
"          ]\n"
"        },\n"
"        \"ephemeral\": {\"events\": []},\n"
"        \"unread_notifications\": {\"highlight_count\": 0}\n"
"      },\n"
"      \"!quiet:example.org\": {\"timeline\": {\"events\": [], \"limited\": false}}\n"
"    },\n"
"    \"invite\": {\n"
"      \"!new:example.org\": {\"invite_state\": {\"events\": [\n"
"        {\"type\": \"m.room.name\", \"state_key\": \"\", \"sender\": \"@alice:example.org\", \"content\": {\"name\": \"New\"}},\n"
"        {\"type\": \"m.room.member\", \"state_key\": \"@other:example.org\", \"sender\": \"@mallory:example.org\", \"content\": {\"membership\": \"invite\"}},\n"
"        {\"type\": \"m.room.member\", \"state_key\": \"" ME "\", \"sender\": \"@alice:example.org\", \"content\": {\"membership\": \"invite\"}}\n"
"      ]}},\n"
"      \"!bare:example.org\": {}\n"
"    },\n"
"    \"leave\": {\"!old:example.org\": {\"timeline\": {\"events\": []}}}\n"
"  }\n"
"}\n";

static const struct sync_room *
room_by_id(const struct sync_batch *b, const char *id)
{
	for (size_t i = 0; i < b->nrooms; i++)
		if (!strcmp(b->rooms[i].room_id, id))
			return &b->rooms[i];
	return NULL;
}

static void
parse_ok(const char *json, struct sync_batch *b)
{
	char *cause = NULL;
	int r = sync_parse(json, strlen(json), ME, b, &cause);

	if (r != 0)
		print_message("sync_parse: %s\n", cause);
	assert_int_equal(r, 0);
	assert_null(cause);
}

static void
parse_fails(const char *json, size_t len, const char *want)
{
	struct sync_batch b;
	char *cause = NULL;

	assert_int_equal(sync_parse(json, len, ME, &b, &cause), -1);
	assert_non_null(cause);
	assert_string_equal(cause, want);
	free(cause);
	assert_null(b.next_batch);
	assert_int_equal(b.nrooms, 0);
	assert_int_equal(b.ninvites, 0);
	sync_batch_release(&b);		/* harmless after a failure */
}

static void
bad_sync(const char *json, const char *want)
{
	parse_fails(json, strlen(json), want);
}

static void
test_realistic(void **state)
{
	struct sync_batch b;
	const struct sync_room *r;
	const struct mx_event *e;

	(void)state;
	parse_ok(realistic, &b);
	assert_string_equal(b.next_batch, "s72595_4483_1934");
	assert_int_equal(b.nrooms, 2);
	r = room_by_id(&b, "!ops:example.org");
	assert_non_null(r);
	assert_int_equal(r->limited, 1);
	assert_string_equal(r->prev_batch, "t34-23535_0_0");

	/* state section */
	assert_int_equal(r->nstate, 2);
	e = &r->state[0];
	assert_string_equal(e->type, "m.room.power_levels");
	assert_string_equal(e->state_key, "");
	assert_non_null(e->content);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem
	    (e->content, "users"), "@alice:example.org")->valueint, 100);
	e = &r->state[1];
	assert_string_equal(e->type, "m.room.member");
	assert_string_equal(e->state_key, ME);
	assert_string_equal(e->membership, "join");

	/* timeline, in order */
	assert_int_equal(r->nevents, 7);
	e = &r->events[0];
	assert_string_equal(e->event_id, "$plain");
	assert_string_equal(e->sender, "@alice:example.org");
	assert_string_equal(e->type, "m.room.message");
	assert_null(e->state_key);
	assert_null(e->content);	/* kept for state events only */
	assert_int_equal(e->ts, 1700000001000LL);
	assert_string_equal(e->msgtype, "m.text");
	assert_string_equal(e->body, "!status");
	assert_string_equal(e->rel_type, "");
	assert_string_equal(e->rel_event, "");
	assert_string_equal(e->reply_to, "");
	assert_string_equal(e->key, "");
	assert_string_equal(e->membership, "");
	assert_int_equal(e->has_new_content, 0);

	e = &r->events[1];
	assert_string_equal(e->event_id, "$threaded");
	assert_string_equal(e->rel_type, "m.thread");
	assert_string_equal(e->rel_event, "$root");
	assert_string_equal(e->reply_to, "$plain");
	assert_string_equal(e->body, "!help status");

	e = &r->events[2];
	assert_string_equal(e->event_id, "$reply");
	assert_string_equal(e->rel_type, "");
	assert_string_equal(e->reply_to, "$threaded");
	assert_string_equal(e->body, "> <@bob:example.org> hi\n\n!status");

	e = &r->events[3];
	assert_string_equal(e->event_id, "$edit");
	assert_int_equal(e->has_new_content, 1);
	assert_string_equal(e->rel_type, "m.replace");
	assert_string_equal(e->rel_event, "$plain");
	assert_string_equal(e->body, "* !status");

	e = &r->events[4];
	assert_string_equal(e->type, "m.reaction");
	assert_string_equal(e->rel_type, "m.annotation");
	assert_string_equal(e->rel_event, "$plain");
	assert_string_equal(e->key, "\xf0\x9f\x91\x8d");
	assert_string_equal(e->msgtype, "");
	assert_string_equal(e->body, "");

	e = &r->events[5];
	assert_string_equal(e->type, "m.room.member");
	assert_string_equal(e->state_key, "@carol:example.org");
	assert_string_equal(e->membership, "join");
	assert_non_null(e->content);

	e = &r->events[6];
	assert_string_equal(e->type, "m.room.encryption");
	assert_string_equal(e->state_key, "");

	r = room_by_id(&b, "!quiet:example.org");
	assert_non_null(r);
	assert_int_equal(r->limited, 0);
	assert_null(r->prev_batch);
	assert_int_equal(r->nevents, 0);
	assert_int_equal(r->nstate, 0);
	/* rooms we left are not rooms we act in */
	assert_null(room_by_id(&b, "!old:example.org"));

	/* invites */
	assert_int_equal(b.ninvites, 2);
	assert_string_equal(b.invites[0].room_id, "!new:example.org");
	assert_string_equal(b.invites[0].inviter, "@alice:example.org");
	assert_string_equal(b.invites[1].room_id, "!bare:example.org");
	assert_string_equal(b.invites[1].inviter, "");
	sync_batch_release(&b);
	assert_null(b.rooms);
	assert_int_equal(b.nrooms, 0);
}

static void
test_minimal(void **state)
{
	struct sync_batch b;

	(void)state;
	parse_ok("{\"next_batch\":\"x\"}", &b);
	assert_string_equal(b.next_batch, "x");
	assert_int_equal(b.nrooms, 0);
	assert_int_equal(b.ninvites, 0);
	sync_batch_release(&b);
}

static void
test_not_usable(void **state)
{
	static const char nested[] = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]"
	    "]]]]]]]]]]]]]]]]]]]]]]]]]]]]";
	char *deep;
	size_t n = 100000;

	(void)state;
	bad_sync("", NOT_OBJECT);
	bad_sync("[]", NOT_OBJECT);
	bad_sync("\"next_batch\"", NOT_OBJECT);
	bad_sync("null", NOT_OBJECT);
	bad_sync("{\"next_batch\":\"x\"", NOT_OBJECT);
	bad_sync("<html>502 Bad Gateway</html>", NOT_OBJECT);
	parse_fails(nested, sizeof(nested) - 1, NOT_OBJECT);
	bad_sync("{}", NO_BATCH);
	bad_sync("{\"next_batch\":5}", NO_BATCH);
	bad_sync("{\"next_batch\":null}", NO_BATCH);
	bad_sync("{\"next_batch\":\"\"}", NO_BATCH);
	bad_sync("{\"next_batch\":[\"x\"]}", NO_BATCH);
	/* the length is honoured: what follows is not read */
	parse_fails("{\"next_batch\":\"x\"}", 10, NOT_OBJECT);

	/* a next_batch too long to be honest */
	deep = xmalloc(2100);
	memcpy(deep, "{\"next_batch\":\"", 15);
	memset(deep + 15, 'a', 2000);
	memcpy(deep + 2015, "\"}", 3);
	parse_fails(deep, strlen(deep), NO_BATCH);
	free(deep);

	/* nesting deeper than cJSON allows: refused, not a crash */
	deep = xmalloc(2 * n + 64);
	memcpy(deep, "{\"next_batch\":\"x\",\"rooms\":", 26);
	memset(deep + 26, '[', n);
	memset(deep + 26 + n, ']', n);
	memcpy(deep + 26 + 2 * n, "}", 2);
	parse_fails(deep, strlen(deep), NOT_OBJECT);
	free(deep);
}

static void
test_nested_within_limit(void **state)
{
	struct sync_batch b;
	struct buf j;

	(void)state;
	/* 900 levels inside a state event's content: kept, no trouble */
	buf_init(&j, 1 << 20);
	buf_adds(&j, "{\"next_batch\":\"x\",\"rooms\":{\"join\":{\"!r:x\":"
	    "{\"state\":{\"events\":[{\"type\":\"m.room.power_levels\","
	    "\"state_key\":\"\",\"sender\":\"@a:x\",\"content\":{\"d\":");
	for (int i = 0; i < 900; i++)
		buf_adds(&j, "[");
	for (int i = 0; i < 900; i++)
		buf_adds(&j, "]");
	buf_adds(&j, "}}]}}}}}");
	parse_ok(j.data, &b);
	assert_int_equal(b.nrooms, 1);
	assert_int_equal(b.rooms[0].nstate, 1);
	assert_non_null(b.rooms[0].state[0].content);
	sync_batch_release(&b);
	buf_release(&j);
}

static void
test_wrong_shapes(void **state)
{
	struct sync_batch b;

	(void)state;
	parse_ok("{\"next_batch\":\"x\",\"rooms\":{\"join\":[1,2,3]}}", &b);
	assert_int_equal(b.nrooms, 0);
	sync_batch_release(&b);

	parse_ok("{\"next_batch\":\"x\",\"rooms\":[]}", &b);
	assert_int_equal(b.nrooms, 0);
	sync_batch_release(&b);

	parse_ok("{\"next_batch\":\"x\",\"rooms\":\"lots\"}", &b);
	sync_batch_release(&b);

	parse_ok("{\"next_batch\":\"x\",\"rooms\":{\"join\":{"
	    "\"!a:x\":5,"
	    "\"!b:x\":\"room\","
	    "\"!c:x\":[],"
	    "\"!d:x\":{\"timeline\":[],\"state\":\"s\"},"
	    "\"!e:x\":{\"timeline\":{\"events\":{},\"limited\":\"yes\","
	    "\"prev_batch\":7}},"
	    "\"!f:x\":null"
	    "},\"invite\":[1],\"leave\":5}}", &b);
	assert_int_equal(b.nrooms, 2);
	assert_string_equal(b.rooms[0].room_id, "!d:x");
	assert_int_equal(b.rooms[0].nevents, 0);
	assert_string_equal(b.rooms[1].room_id, "!e:x");
	assert_int_equal(b.rooms[1].limited, 0);
	assert_null(b.rooms[1].prev_batch);
	assert_int_equal(b.rooms[1].nevents, 0);
	assert_int_equal(b.ninvites, 0);
	sync_batch_release(&b);

	/* invites of odd shapes: no inviter found */
	parse_ok("{\"next_batch\":\"x\",\"rooms\":{\"invite\":{"
	    "\"!a:x\":{\"invite_state\":{\"events\":\"no\"}},"
	    "\"!b:x\":{\"invite_state\":{\"events\":[5,{\"type\":"
	    "\"m.room.member\",\"state_key\":\"" ME "\",\"content\":"
	    "{\"membership\":\"invite\"}}]}},"
	    "\"!c:x\":{\"invite_state\":{\"events\":[{\"type\":"
	    "\"m.room.member\",\"state_key\":\"" ME "\",\"sender\":5,"
	    "\"content\":{\"membership\":\"invite\"}}]}},"
	    "\"!d:x\":{\"invite_state\":{\"events\":[{\"type\":"
	    "\"m.room.member\",\"state_key\":\"" ME "\",\"sender\":\"@z:x\","
	    "\"content\":{\"membership\":\"leave\"}}]}}"
	    "}}}", &b);
	assert_int_equal(b.ninvites, 4);
	for (size_t i = 0; i < b.ninvites; i++)
		assert_string_equal(b.invites[i].inviter, "");
	sync_batch_release(&b);
}

static void
test_bad_events_skipped(void **state)
{
	static const char json[] =
	    "{\"next_batch\":\"x\",\"rooms\":{\"join\":{\"!r:x\":{\"timeline\":"
	    "{\"events\":["
	    "5,"
	    "\"event\","
	    "null,"
	    "[],"
	    "{},"
	    "{\"type\":\"m.room.message\",\"content\":{\"body\":\"no sender\"}},"
	    "{\"sender\":\"@a:x\",\"content\":{\"body\":\"no type\"}},"
	    "{\"type\":5,\"sender\":\"@a:x\"},"
	    "{\"type\":\"m.room.message\",\"sender\":[\"@a:x\"]},"
	    "{\"type\":\"m.room.message\",\"sender\":\"@a:x\",\"event_id\":"
	    "\"$str\",\"content\":\"a string\"},"
	    "{\"type\":\"m.room.message\",\"sender\":\"@a:x\",\"event_id\":"
	    "\"$neg\",\"origin_server_ts\":-5,\"content\":{\"body\":7,"
	    "\"msgtype\":null}},"
	    "{\"type\":\"m.room.message\",\"sender\":\"@a:x\",\"event_id\":"
	    "\"$huge\",\"origin_server_ts\":1e300,\"content\":{\"m.relates_to\":"
	    "\"thread\",\"m.new_content\":\"x\"}},"
	    "{\"type\":\"m.room.message\",\"sender\":\"@a:x\",\"event_id\":"
	    "\"$tsstr\",\"origin_server_ts\":\"1700000000000\",\"content\":"
	    "{\"m.relates_to\":{\"rel_type\":5,\"event_id\":{},"
	    "\"m.in_reply_to\":\"$x\"}}},"
	    "{\"type\":\"m.room.message\",\"sender\":\"@a:x\",\"event_id\":5,"
	    "\"state_key\":6},"
	    "{\"type\":\"m.room.message\",\"sender\":\"@a:x\",\"event_id\":"
	    "\"$ok\",\"origin_server_ts\":1700000000000,\"content\":"
	    "{\"msgtype\":\"m.text\",\"body\":\"!help\"}}"
	    "]}}}}}";
	struct sync_batch b;
	const struct mx_event *e;

	(void)state;
	parse_ok(json, &b);
	assert_int_equal(b.nrooms, 1);
	assert_int_equal(b.rooms[0].nevents, 6);
	e = b.rooms[0].events;
	assert_string_equal(e[0].event_id, "$str");
	assert_string_equal(e[0].body, "");
	assert_string_equal(e[0].msgtype, "");
	assert_int_equal(e[0].ts, 0);
	assert_string_equal(e[1].event_id, "$neg");
	assert_int_equal(e[1].ts, 0);
	assert_string_equal(e[1].body, "");
	assert_string_equal(e[1].msgtype, "");
	assert_string_equal(e[2].event_id, "$huge");
	assert_int_equal(e[2].ts, 0);
	assert_string_equal(e[2].rel_type, "");
	assert_int_equal(e[2].has_new_content, 0);
	assert_string_equal(e[3].event_id, "$tsstr");
	assert_int_equal(e[3].ts, 0);
	assert_string_equal(e[3].rel_type, "");
	assert_string_equal(e[3].rel_event, "");
	assert_string_equal(e[3].reply_to, "");
	/* event id not a string: "" (the bot skips those), no state key */
	assert_string_equal(e[4].event_id, "");
	assert_null(e[4].state_key);
	assert_string_equal(e[5].event_id, "$ok");
	assert_int_equal(e[5].ts, 1700000000000LL);
	assert_string_equal(e[5].body, "!help");
	sync_batch_release(&b);
}

static void
test_event_from_json(void **state)
{
	struct mx_event e;
	cJSON *j;

	(void)state;
	assert_int_equal(mx_event_from_json(NULL, &e), -1);
	j = cJSON_Parse("{\"type\":\"m.room.message\",\"sender\":\"@a:x\"}");
	assert_int_equal(mx_event_from_json(j, &e), 0);
	/* never NULL strings */
	assert_string_equal(e.event_id, "");
	assert_string_equal(e.body, "");
	assert_string_equal(e.rel_type, "");
	assert_string_equal(e.key, "");
	mx_event_release(&e);
	mx_event_release(&e);		/* released twice: harmless */
	cJSON_Delete(j);
}

static void
test_huge_strings(void **state)
{
	struct sync_batch b;
	struct buf j;
	char *big = xmalloc(300 * 1024 + 1);

	(void)state;
	memset(big, 'b', 300 * 1024);
	big[300 * 1024] = '\0';
	buf_init(&j, 1 << 20);
	buf_addf(&j, "{\"next_batch\":\"x\",\"rooms\":{\"join\":{\"!r:x\":"
	    "{\"timeline\":{\"events\":[{\"type\":\"m.room.message\","
	    "\"sender\":\"@a:x\",\"event_id\":\"$e\",\"content\":"
	    "{\"body\":\"%s\"}},{\"type\":\"m.room.message\",\"sender\":"
	    "\"%s\"}]}}}}}", big, big);
	parse_ok(j.data, &b);
	assert_int_equal(b.rooms[0].nevents, 1);
	/* over SYNC_MAX_STR: treated as absent */
	assert_string_equal(b.rooms[0].events[0].body, "");
	sync_batch_release(&b);
	buf_release(&j);
	free(big);
}

static void
test_many_events_capped(void **state)
{
	struct sync_batch b;
	struct buf j;

	(void)state;
	buf_init(&j, 8 << 20);
	buf_adds(&j, "{\"next_batch\":\"x\",\"rooms\":{\"join\":{\"!r:x\":"
	    "{\"timeline\":{\"events\":[");
	for (int i = 0; i < 10005; i++)
		buf_addf(&j, "%s{\"type\":\"t\",\"sender\":\"@a:x\","
		    "\"event_id\":\"$%d\"}", i ? "," : "", i);
	buf_adds(&j, "]}}}}}");
	parse_ok(j.data, &b);
	assert_int_equal(b.rooms[0].nevents, 10000);
	assert_string_equal(b.rooms[0].events[9999].event_id, "$9999");
	sync_batch_release(&b);
	buf_release(&j);
}

static void
test_messages(void **state)
{
	static const char json[] =
	    "{\"start\":\"t47\",\"end\":\"t12\",\"chunk\":["
	    "{\"type\":\"m.room.message\",\"sender\":\"@a:x\",\"event_id\":\"$3\","
	    "\"origin_server_ts\":3,\"content\":{\"body\":\"three\"}},"
	    "{\"type\":\"m.room.message\",\"sender\":\"@a:x\",\"event_id\":\"$2\","
	    "\"origin_server_ts\":2,\"content\":{\"body\":\"two\"}},"
	    "{\"bogus\":true},"
	    "{\"type\":\"m.room.message\",\"sender\":\"@a:x\",\"event_id\":\"$1\","
	    "\"origin_server_ts\":1,\"content\":{\"body\":\"one\"}}"
	    "]}";
	struct mx_event *ev;
	size_t n;
	char *end, *cause;

	(void)state;
	assert_int_equal(sync_parse_messages(json, strlen(json), &ev, &n, &end,
	    &cause), 0);
	assert_null(cause);
	assert_int_equal(n, 3);
	assert_string_equal(ev[0].event_id, "$1");
	assert_string_equal(ev[0].body, "one");
	assert_string_equal(ev[1].event_id, "$2");
	assert_string_equal(ev[2].event_id, "$3");
	assert_int_equal(ev[2].ts, 3);
	assert_string_equal(end, "t12");
	mx_events_free(ev, n);
	free(end);
}

static int
msgs(const char *json, struct mx_event **ev, size_t *n, char **end,
    char **cause)
{
	return sync_parse_messages(json, strlen(json), ev, n, end, cause);
}

static void
test_messages_edges(void **state)
{
	struct mx_event *ev;
	size_t n;
	char *end, *cause;
	static const char *bad[] = { "", "[]", "{}", "{\"chunk\":{}}",
	    "{\"chunk\":\"x\"}", "{\"chunk\":[", "nonsense" };

	(void)state;
	/* the last page: no end */
	assert_int_equal(msgs("{\"chunk\":[]}", &ev, &n, &end, &cause), 0);
	assert_int_equal(n, 0);
	assert_null(end);
	mx_events_free(ev, n);
	assert_int_equal(msgs("{\"chunk\":[],\"end\":\"\"}", &ev, &n, &end,
	    &cause), 0);
	assert_null(end);
	mx_events_free(ev, n);
	assert_int_equal(msgs("{\"chunk\":[],\"end\":5}", &ev, &n, &end,
	    &cause), 0);
	assert_null(end);
	mx_events_free(ev, n);

	/* one event, two: the reversal of odd and even counts */
	assert_int_equal(msgs("{\"chunk\":[{\"type\":\"t\","
	    "\"sender\":\"@a:x\",\"event_id\":\"$only\"}]}", &ev, &n, &end,
	    &cause), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ev[0].event_id, "$only");
	mx_events_free(ev, n);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ev = (struct mx_event *)0x1;
		end = (char *)0x1;
		assert_int_equal(sync_parse_messages(bad[i], strlen(bad[i]),
		    &ev, &n, &end, &cause), -1);
		assert_null(ev);
		assert_null(end);
		assert_int_equal(n, 0);
		assert_string_equal(cause,
		    "messages response has no chunk array");
		free(cause);
	}
}

/* unsigned.age dates an event on our clock; redactions; rooms.leave. */
static void
test_age_redaction_leave(void **state)
{
	struct sync_batch b;
	const struct sync_room *r;
	const char *json = "{\"next_batch\":\"s9\",\"rooms\":{"
	    "\"join\":{\"!a:x\":{\"timeline\":{\"events\":["
	    "{\"type\":\"m.room.message\",\"sender\":\"@u:x\","
	    "\"event_id\":\"$1\",\"origin_server_ts\":5000,"
	    "\"unsigned\":{\"age\":300},\"content\":{\"body\":\"!x\"}},"
	    "{\"type\":\"m.room.message\",\"sender\":\"@u:x\","
	    "\"event_id\":\"$2\",\"origin_server_ts\":6000,"
	    "\"unsigned\":{\"age\":-5,\"redacted_because\":{}},"
	    "\"content\":{}},"
	    "{\"type\":\"m.room.redaction\",\"sender\":\"@u:x\","
	    "\"event_id\":\"$3\",\"redacts\":\"$1\",\"content\":{}},"
	    "{\"type\":\"m.room.redaction\",\"sender\":\"@u:x\","
	    "\"event_id\":\"$4\",\"content\":{\"redacts\":\"$2\"}}"
	    "]}}},"
	    "\"leave\":{\"!b:x\":{\"timeline\":{\"events\":["
	    "{\"type\":\"m.room.member\",\"sender\":\"@mod:x\","
	    "\"state_key\":\"" ME "\",\"event_id\":\"$5\","
	    "\"content\":{\"membership\":\"ban\",\"reason\":\"spam\"}}"
	    "]}},\"!c:x\":{}}}}";

	(void)state;
	parse_ok(json, &b);
	r = room_by_id(&b, "!a:x");
	assert_non_null(r);
	assert_int_equal(r->nevents, 4);
	assert_int_equal(r->events[0].age, 300);
	assert_int_equal(r->events[1].age, -1);		/* negative: ignored */
	assert_false(r->events[0].redacted);
	assert_true(r->events[1].redacted);
	assert_string_equal(r->events[2].redacts, "$1");	/* v1-10 */
	assert_string_equal(r->events[3].redacts, "$2");	/* v11+ */
	assert_string_equal(r->events[0].redacts, "");
	sync_stamp(b.rooms[0].events, r->nevents, 100000);
	assert_int_equal(r->events[0].when, 100000 - 300);	/* our clock */
	assert_int_equal(r->events[1].when, 6000);	/* no age: the ts */
	assert_int_equal(b.nleaves, 2);
	assert_string_equal(b.leaves[0].room_id, "!b:x");
	assert_string_equal(b.leaves[0].membership, "ban");
	assert_string_equal(b.leaves[0].sender, "@mod:x");
	assert_string_equal(b.leaves[0].reason, "spam");
	assert_string_equal(b.leaves[1].membership, "leave");	/* unknown */
	assert_string_equal(b.leaves[1].sender, "");
	sync_batch_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_realistic),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_not_usable),
		cmocka_unit_test(test_nested_within_limit),
		cmocka_unit_test(test_wrong_shapes),
		cmocka_unit_test(test_bad_events_skipped),
		cmocka_unit_test(test_event_from_json),
		cmocka_unit_test(test_huge_strings),
		cmocka_unit_test(test_many_events_capped),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_messages_edges),
		cmocka_unit_test(test_age_redaction_leave),
	};

	return TU_RUN(tests);
}
