/*
 * test_auth.c - who may command the bot: the admins list, and optionally
 * a minimum power level in the room.
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

#include "bot.h"
#include "config.h"
#include "util.h"
#include "testutil.h"

#define CONF \
	"[matrix]\n" \
	"homeserver = https://m.example.org\n" \
	"user_id = @bb:example.org\n" \
	"access_token_file = /nonexistent/token\n" \
	"rooms = !ops:example.org\n" \
	"admins = @alice:example.org, @bob:example.org, @carol:example.org\n"

static struct config *
conf(const char *extra)
{
	struct config_errors errs;
	struct config *c;
	char *text = xasprintf("%s%s", CONF, extra);

	c = config_parse("auth.conf", text, strlen(text), 0, &errs);
	for (size_t i = 0; i < errs.n; i++)
		print_message("%s\n", errs.msg[i]);
	assert_non_null(c);
	config_errors_release(&errs);
	free(text);
	return c;
}

static cJSON *
levels(const char *json)
{
	cJSON *j = cJSON_Parse(json);

	assert_non_null(j);
	return j;
}

static void
test_power_level(void **state)
{
	cJSON *pl = levels("{\"users\":{\"@alice:example.org\":100,"
	    "\"@bob:example.org\":50,\"@neg:example.org\":-10,"
	    "\"@str:example.org\":\"100\"},\"users_default\":5}");
	cJSON *nodef = levels("{\"users\":{\"@alice:example.org\":100}}");
	cJSON *badusers = levels("{\"users\":[100],\"users_default\":7}");

	(void)state;
	assert_int_equal(bot_power_level(pl, "@alice:example.org"), 100);
	assert_int_equal(bot_power_level(pl, "@bob:example.org"), 50);
	assert_int_equal(bot_power_level(pl, "@neg:example.org"), -10);
	/* not a number: the default */
	assert_int_equal(bot_power_level(pl, "@str:example.org"), 5);
	assert_int_equal(bot_power_level(pl, "@dave:example.org"), 5);
	assert_int_equal(bot_power_level(nodef, "@dave:example.org"), 0);
	assert_int_equal(bot_power_level(nodef, "@alice:example.org"), 100);
	assert_int_equal(bot_power_level(badusers, "@alice:example.org"), 7);
	/* no power levels at all */
	assert_int_equal(bot_power_level(NULL, "@alice:example.org"), 0);
	{
		cJSON *arr = cJSON_CreateArray();

		assert_int_equal(bot_power_level(arr, "@alice:example.org"), 0);
		cJSON_Delete(arr);
	}
	cJSON_Delete(pl);
	cJSON_Delete(nodef);
	cJSON_Delete(badusers);
}

/*
 * Bug (bot.c bot_power_level): (long)v->valuedouble is undefined
 * behaviour when the value does not fit a long, and power_levels content
 * comes from the room (any member allowed to send m.room.power_levels, or
 * a hostile server).  On x86-64 1e300 becomes LONG_MIN.  Matrix power
 * levels are integers in [-(2^53-1), 2^53-1]; anything else should be
 * treated as absent (fall back to users_default).
 */
static void
test_power_level_out_of_range(void **state)
{
	cJSON *pl = levels("{\"users\":{\"@huge:example.org\":1e300,"
	    "\"@tiny:example.org\":-1e300,\"@max:example.org\":"
	    "9007199254740991},\"users_default\":3}");
	cJSON *def = levels("{\"users_default\":1e300}");
	long max, huge, tiny, dflt;

	(void)state;
	max = bot_power_level(pl, "@max:example.org");
	huge = bot_power_level(pl, "@huge:example.org");
	tiny = bot_power_level(pl, "@tiny:example.org");
	dflt = bot_power_level(def, "@x:example.org");
	cJSON_Delete(pl);
	cJSON_Delete(def);
	assert_int_equal(max, 9007199254740991L);
	assert_int_equal(huge, 3);
	assert_int_equal(tiny, 3);
	assert_int_equal(dflt, 0);
}

static void
test_authorised(void **state)
{
	struct config *cfg = conf("");
	struct bot bot;
	struct room room;

	(void)state;
	memset(&bot, 0, sizeof(bot));
	memset(&room, 0, sizeof(room));
	bot.cfg = cfg;
	room.id = "!ops:example.org";
	room.power_levels = levels("{\"users\":{\"@alice:example.org\":100}}");
	assert_int_equal(cfg->min_power_level, -1);
	assert_int_equal(bot_authorised(&bot, &room, "@alice:example.org"), 1);
	/* no power level check configured: the level does not matter */
	assert_int_equal(bot_authorised(&bot, &room, "@bob:example.org"), 1);
	assert_int_equal(bot_authorised(&bot, &room, "@mallory:example.org"),
	    0);
	/* ids are compared exactly */
	assert_int_equal(bot_authorised(&bot, &room, "@Alice:example.org"), 0);
	assert_int_equal(bot_authorised(&bot, &room, "@alice:example.org.evil"),
	    0);
	assert_int_equal(bot_authorised(&bot, &room, "alice:example.org"), 0);
	assert_int_equal(bot_authorised(&bot, &room, ""), 0);
	/* not one of our rooms */
	assert_int_equal(bot_authorised(&bot, NULL, "@alice:example.org"), 0);
	/* no power levels known: fine without a minimum */
	cJSON_Delete(room.power_levels);
	room.power_levels = NULL;
	assert_int_equal(bot_authorised(&bot, &room, "@alice:example.org"), 1);
	config_free(cfg);
}

static void
test_authorised_min_power(void **state)
{
	struct config *cfg = conf("min_power_level = 50\n");
	struct bot bot;
	struct room room;

	(void)state;
	memset(&bot, 0, sizeof(bot));
	memset(&room, 0, sizeof(room));
	bot.cfg = cfg;
	room.id = "!ops:example.org";
	room.power_levels = levels("{\"users\":{\"@alice:example.org\":100,"
	    "\"@bob:example.org\":50,\"@carol:example.org\":49,"
	    "\"@mallory:example.org\":100},\"users_default\":0}");
	assert_int_equal(bot_authorised(&bot, &room, "@alice:example.org"), 1);
	assert_int_equal(bot_authorised(&bot, &room, "@bob:example.org"), 1);
	/* an admin below the minimum */
	assert_int_equal(bot_authorised(&bot, &room, "@carol:example.org"), 0);
	/* a powerful non-admin */
	assert_int_equal(bot_authorised(&bot, &room, "@mallory:example.org"),
	    0);
	assert_int_equal(bot_authorised(&bot, NULL, "@alice:example.org"), 0);

	/* users_default counts */
	cJSON_Delete(room.power_levels);
	room.power_levels = levels("{\"users_default\":50}");
	assert_int_equal(bot_authorised(&bot, &room, "@carol:example.org"), 1);

	/* power levels unknown: level 0, below the minimum */
	cJSON_Delete(room.power_levels);
	room.power_levels = NULL;
	assert_int_equal(bot_authorised(&bot, &room, "@alice:example.org"), 0);
	config_free(cfg);
}

static void
test_authorised_min_power_zero(void **state)
{
	struct config *cfg = conf("min_power_level = 0\n");
	struct bot bot;
	struct room room;

	(void)state;
	memset(&bot, 0, sizeof(bot));
	memset(&room, 0, sizeof(room));
	bot.cfg = cfg;
	room.id = "!ops:example.org";
	room.power_levels = levels("{\"users\":{\"@carol:example.org\":-1}}");
	assert_int_equal(bot_authorised(&bot, &room, "@alice:example.org"), 1);
	assert_int_equal(bot_authorised(&bot, &room, "@carol:example.org"), 0);
	cJSON_Delete(room.power_levels);
	config_free(cfg);
}

/* The spec's rules: v12 creators infinite, no power_levels: creator 100. */
static void
test_room_power(void **state)
{
	cJSON *v12 = levels("{\"sender\":\"@alice:example.org\","
	    "\"type\":\"m.room.create\",\"content\":{\"room_version\":"
	    "\"12\",\"additional_creators\":[\"@dan:example.org\"]}}");
	cJSON *v10 = levels("{\"creator\":\"@alice:example.org\","
	    "\"room_version\":\"10\"}");	/* content only (old server) */
	cJSON *v11 = levels("{\"sender\":\"@alice:example.org\","
	    "\"content\":{\"room_version\":\"11\"}}");
	cJSON *pl = levels("{\"users\":{\"@bob:example.org\":50,"
	    "\"@alice:example.org\":10}}");

	(void)state;
	assert_true(bot_room_power(v12, pl, "@alice:example.org") ==
	    BOT_POWER_INFINITE);
	assert_true(bot_room_power(v12, pl, "@dan:example.org") ==
	    BOT_POWER_INFINITE);
	assert_int_equal(bot_room_power(v12, pl, "@bob:example.org"), 50);
	assert_int_equal(bot_room_power(v11, pl, "@alice:example.org"), 10);
	assert_int_equal(bot_room_power(v10, NULL, "@alice:example.org"), 100);
	assert_int_equal(bot_room_power(v10, NULL, "@bob:example.org"), 0);
	assert_int_equal(bot_room_power(v11, NULL, "@alice:example.org"), 100);
	assert_int_equal(bot_room_power(NULL, NULL, "@alice:example.org"), 0);
	assert_int_equal(bot_room_power(NULL, pl, "@bob:example.org"), 50);
	cJSON_Delete(v12);
	cJSON_Delete(v10);
	cJSON_Delete(v11);
	cJSON_Delete(pl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_power_level),
		cmocka_unit_test(test_room_power),
		cmocka_unit_test(test_power_level_out_of_range),
		cmocka_unit_test(test_authorised),
		cmocka_unit_test(test_authorised_min_power),
		cmocka_unit_test(test_authorised_min_power_zero),
	};

	return TU_RUN(tests);
}
