/*
 * test_e2ee.c - the E2EE module without a homeserver: canonical JSON
 * (the spec's examples), the device store (creation, mode, reopening,
 * wrong key, another device), fingerprints, m.room.encryption settings,
 * and hostile to-device and room events.
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
#include <sodium.h>

#include "e2ee.h"
#include "sync.h"
#include "util.h"
#include "testutil.h"

#define ME	"@backupbot:example.org"

static const unsigned char key1[E2EE_KEYBYTES] = { 1, 2, 3 };
static const unsigned char key2[E2EE_KEYBYTES] = { 9, 9, 9 };

static void
canon_is(const char *in, const char *want)
{
	cJSON *j = cJSON_Parse(in);
	char *got;

	assert_non_null(j);
	got = e2ee_canonical(j);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	cJSON_Delete(j);
}

/* The examples of the spec's appendix on canonical JSON. */
static void
test_canonical(void **state)
{
	(void)state;
	canon_is("{}", "{}");
	canon_is("{\"one\": 1, \"two\": \"Two\"}", "{\"one\":1,\"two\":\"Two\"}");
	canon_is("{\"b\": \"2\", \"a\": \"1\"}", "{\"a\":\"1\",\"b\":\"2\"}");
	canon_is("{\"auth\": {\"success\": true, \"mxid\": "
	    "\"@john.doe:example.com\", \"profile\": {\"display_name\": "
	    "\"John Doe\", \"three_pids\": [{\"medium\": \"email\", "
	    "\"address\": \"john.doe@example.org\"}, {\"medium\": \"msisdn\", "
	    "\"address\": \"123456789\"}]}}}",
	    "{\"auth\":{\"mxid\":\"@john.doe:example.com\",\"profile\":"
	    "{\"display_name\":\"John Doe\",\"three_pids\":[{\"address\":"
	    "\"john.doe@example.org\",\"medium\":\"email\"},{\"address\":"
	    "\"123456789\",\"medium\":\"msisdn\"}]},\"success\":true}}");
	canon_is("{\"a\": \"日本語\"}", "{\"a\":\"日本語\"}");
	canon_is("{\"本\": 2, \"日\": 1}", "{\"日\":1,\"本\":2}");
	canon_is("{\"a\": \"\\u65E5\"}", "{\"a\":\"日\"}");
	canon_is("{\"a\": null}", "{\"a\":null}");
	canon_is("{\"a\": -0, \"b\": 1e3}", "{\"a\":0,\"b\":1000}");
	canon_is("{\"a\": \"q\\\"\\\\\\n\\u0001\"}",
	    "{\"a\":\"q\\\"\\\\\\n\\u0001\"}");
	/* what is signed leaves signatures and unsigned out, at the top */
	canon_is("{\"k\": 1, \"signatures\": {\"x\": 1}, \"unsigned\": 2, "
	    "\"in\": {\"signatures\": 3}}", "{\"in\":{\"signatures\":3},\"k\":1}");
	{
		cJSON *j = cJSON_Parse("{\"a\": 1.5}");

		assert_null(e2ee_canonical(j));
		cJSON_Delete(j);
	}
}

static void
test_store(void **state)
{
	char *tmp = tu_mkdtemp(), *path = tu_path(tmp, "e2ee.json");
	char *cause = NULL, *ed, *dev;
	struct e2ee *e;

	(void)state;
	assert_null(e2ee_stored_device(tmp));
	e = e2ee_open(tmp, key1, ME, "DEV1", E2EE_TOFU, &cause);
	assert_null(cause);
	assert_non_null(e);
	assert_int_equal(tu_mode(path), 0600);
	assert_string_equal(e2ee_device_id(e), "DEV1");
	assert_int_equal(strlen(e2ee_ed25519(e)), 43);
	assert_int_equal(strlen(e2ee_curve25519(e)), 43);
	ed = xstrdup(e2ee_ed25519(e));
	e2ee_free(e);
	dev = e2ee_stored_device(tmp);
	assert_string_equal(dev, "DEV1");
	free(dev);
	{
		/* the account is encrypted: the key is not enough to see it */
		char *text = tu_read(path);

		assert_non_null(strstr(text, "\"account\""));
		assert_null(strstr(text, "\"curve25519\":{"));
		free(text);
	}
	/* the same device again */
	e = e2ee_open(tmp, key1, ME, "DEV1", E2EE_TOFU, &cause);
	assert_non_null(e);
	assert_string_equal(e2ee_ed25519(e), ed);
	e2ee_free(e);
	/* another key cannot read it */
	e = e2ee_open(tmp, key2, ME, "DEV1", E2EE_TOFU, &cause);
	assert_null(e);
	assert_non_null(strstr(cause, "wrong pickle key"));
	free(cause);
	cause = NULL;
	/* another device is not silently replaced */
	e = e2ee_open(tmp, key1, ME, "DEV2", E2EE_TOFU, &cause);
	assert_null(e);
	assert_non_null(strstr(cause, "e2ee reset"));
	free(cause);
	cause = NULL;
	e = e2ee_open(tmp, key1, "@other:example.org", "DEV1", E2EE_TOFU,
	    &cause);
	assert_null(e);
	free(cause);
	/* a damaged store is an error, not a new device */
	tu_write_str(path, "{not json", 0600);
	cause = NULL;
	assert_null(e2ee_open(tmp, key1, ME, "DEV1", E2EE_TOFU, &cause));
	assert_non_null(cause);
	free(cause);
	free(ed);
	free(path);
	tu_rmtree(tmp);
}

static void
test_fingerprint(void **state)
{
	char *fp;

	(void)state;
	fp = e2ee_fingerprint("abcdefghij");
	assert_string_equal(fp, "abcd efgh ij");
	free(fp);
	fp = e2ee_fingerprint("");
	assert_string_equal(fp, "");
	free(fp);
}

static void
test_room_cfg(void **state)
{
	struct e2ee_room_cfg c;
	cJSON *j;

	(void)state;
	e2ee_room_cfg(NULL, &c);
	assert_int_equal(c.rotation_ms, 604800000LL);
	assert_int_equal(c.rotation_msgs, 100);
	j = cJSON_Parse("{\"algorithm\":\"m.megolm.v1.aes-sha2\","
	    "\"rotation_period_ms\":3600000,\"rotation_period_msgs\":5}");
	e2ee_room_cfg(j, &c);
	assert_int_equal(c.rotation_ms, 3600000);
	assert_int_equal(c.rotation_msgs, 5);
	cJSON_Delete(j);
	j = cJSON_Parse("{\"rotation_period_ms\":-1,"
	    "\"rotation_period_msgs\":\"x\"}");
	e2ee_room_cfg(j, &c);
	assert_int_equal(c.rotation_ms, 604800000LL);
	assert_int_equal(c.rotation_msgs, 100);
	cJSON_Delete(j);
}

static int
to_device(struct e2ee *e, const char *json)
{
	cJSON *j = cJSON_Parse(json);
	int r = e2ee_to_device(e, j);

	cJSON_Delete(j);
	return r;
}

/* Nothing from outside crashes it, nothing is taken without Olm. */
static void
test_hostile_to_device(void **state)
{
	char *tmp = tu_mkdtemp(), *cause = NULL, *msg;
	struct e2ee *e = e2ee_open(tmp, key1, ME, "DEV1", E2EE_TOFU, &cause);

	(void)state;
	assert_non_null(e);
	/* other types are not acted on */
	assert_int_equal(to_device(e, "{\"type\":\"m.room_key\",\"sender\":"
	    "\"@a:x\",\"content\":{\"room_id\":\"!r:x\",\"session_id\":\"s\","
	    "\"session_key\":\"k\"}}"), 0);
	assert_int_equal(to_device(e, "{\"type\":\"m.room.encrypted\","
	    "\"sender\":\"@a:x\",\"content\":{\"algorithm\":\"m.megolm.v1."
	    "aes-sha2\"}}"), -1);
	assert_int_equal(to_device(e, "{\"type\":\"m.room.encrypted\","
	    "\"sender\":\"@a:x\",\"content\":{\"algorithm\":\"m.olm.v1."
	    "curve25519-aes-sha2\",\"sender_key\":\"K\",\"ciphertext\":"
	    "{\"other\":{\"type\":0,\"body\":\"x\"}}}}"), -1);
	/* for this device, but not Olm that decrypts */
	for (int type = 0; type <= 1; type++) {
		msg = xasprintf("{\"type\":\"m.room.encrypted\",\"sender\":"
		    "\"@a:x\",\"content\":{\"algorithm\":\"m.olm.v1.curve25519-"
		    "aes-sha2\",\"sender_key\":\"K\",\"ciphertext\":{\"%s\":"
		    "{\"type\":%d,\"body\":\"%s\"}}}}", e2ee_curve25519(e), type,
		    type == 0 ? "AwogAAAA" : "%%%");
		assert_int_equal(to_device(e, msg), -1);
		free(msg);
	}
	e2ee_free(e);
	/* and the store is still good */
	e = e2ee_open(tmp, key1, ME, "DEV1", E2EE_TOFU, &cause);
	assert_non_null(e);
	e2ee_free(e);
	tu_rmtree(tmp);
}

static enum e2ee_fail
decrypt(struct e2ee *e, const char *content, char **sid)
{
	struct mx_event ev, out;
	enum e2ee_fail f;
	char *cause = NULL;

	memset(&ev, 0, sizeof(ev));
	ev.event_id = "$e";
	ev.sender = "@a:x";
	ev.content = cJSON_Parse(content);
	f = e2ee_decrypt(e, "!r:x", &ev, &out, sid, NULL, &cause);
	assert_non_null(cause);
	free(cause);
	cJSON_Delete(ev.content);
	return f;
}

static void
test_decrypt_without_key(void **state)
{
	char *tmp = tu_mkdtemp(), *cause = NULL, *sid = NULL;
	struct e2ee *e = e2ee_open(tmp, key1, ME, "DEV1", E2EE_TOFU, &cause);

	(void)state;
	assert_int_equal(decrypt(e, "{\"algorithm\":\"m.megolm.v1.aes-sha2\","
	    "\"sender_key\":\"K\",\"session_id\":\"S\",\"ciphertext\":\"AwgA\","
	    "\"device_id\":\"D\"}", &sid), E2EE_NO_SESSION);
	assert_string_equal(sid, "S");
	free(sid);
	assert_int_equal(decrypt(e, "{\"algorithm\":\"m.olm.v1.curve25519-"
	    "aes-sha2\"}", &sid), E2EE_BAD);
	free(sid);
	assert_int_equal(decrypt(e, "{\"algorithm\":\"m.megolm.v1.aes-sha2\","
	    "\"session_id\":7}", &sid), E2EE_BAD);
	free(sid);
	e2ee_free(e);
	tu_rmtree(tmp);
}

/* /sync keeps what E2EE needs, and the content of encrypted events. */
static void
test_sync_keeps_e2ee(void **state)
{
	const char *json = "{\"next_batch\":\"s1.2\",\"to_device\":{\"events\":"
	    "[{\"type\":\"m.room.encrypted\",\"sender\":\"@a:x\",\"content\":"
	    "{}}]},\"device_lists\":{\"changed\":[\"@a:x\"]},"
	    "\"device_one_time_keys_count\":{\"signed_curve25519\":3},"
	    "\"rooms\":{\"join\":{\"!r:x\":{\"timeline\":{\"events\":[{"
	    "\"type\":\"m.room.encrypted\",\"sender\":\"@a:x\",\"event_id\":"
	    "\"$1\",\"content\":{\"ciphertext\":\"C\",\"m.relates_to\":{"
	    "\"rel_type\":\"m.thread\",\"event_id\":\"$0\"}}}]}}}}}";
	struct sync_batch b;
	char *cause = NULL;

	(void)state;
	assert_int_equal(sync_parse(json, strlen(json), ME, &b, &cause), 0);
	assert_non_null(b.e2ee);
	assert_non_null(cJSON_GetObjectItem(b.e2ee, "to_device"));
	assert_non_null(cJSON_GetObjectItem(b.e2ee, "device_lists"));
	assert_non_null(cJSON_GetObjectItem(b.e2ee,
	    "device_one_time_keys_count"));
	assert_int_equal(b.rooms[0].nevents, 1);
	assert_string_equal(cJSON_GetObjectItem(b.rooms[0].events[0].content,
	    "ciphertext")->valuestring, "C");
	assert_string_equal(b.rooms[0].events[0].rel_type, "m.thread");
	sync_batch_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_room_cfg),
		cmocka_unit_test(test_hostile_to_device),
		cmocka_unit_test(test_decrypt_without_key),
		cmocka_unit_test(test_sync_keeps_e2ee),
	};

	if (sodium_init() < 0)
		return 1;
	return TU_RUN(tests);
}
