/*
 * fuzz_pgbackrest.c - libFuzzer target for what pgbackrest.c reads from
 * pgBackRest and from chat: `pgbackrest info --output=json` (the whole
 * input), its console log lines (each line of the input) and the restore
 * time and set label checks (each line again).
 *
 * Checks pgbackrest.h's contract: a summary is an object whose every set
 * has a label that pgbackrest_valid_set accepts, a valid type, numbers
 * that are not negative, and earliest <= latest; every set found by
 * pgbackrest_set_before and pgbackrest_set_find is one of them; a label
 * read from a line is a valid one; a percentage is within 0..100; a time
 * accepted by pgbackrest_valid_time is short, has no quoting character
 * and a value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "pgbackrest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_summary(cJSON *s)
{
	const cJSON *it, *sets = cJSON_GetObjectItem(s, "sets");

	if (!cJSON_IsObject(s) || !cJSON_IsArray(sets))
		abort();
	if (json_num(s, "earliest") > json_num(s, "latest"))
		abort();
	cJSON_ArrayForEach(it, sets) {
		if (!pgbackrest_valid_set(json_text(it, "label")) ||
		    !pgbackrest_valid_type(json_text(it, "type")))
			abort();
		if (json_num(it, "size") < 0 || json_num(it, "stop") < 0)
			abort();
		if (pgbackrest_set_find(s, json_text(it, "label")) == NULL)
			abort();
	}
	it = pgbackrest_set_before(s, 0);
	if ((it == NULL) != (cJSON_GetArraySize(sets) == 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *line, *next, *cause = NULL;
	cJSON *s;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if ((s = pgbackrest_info_summary(text, size, "main", &cause)) != NULL) {
		check_summary(s);
		cJSON_Delete(s);
	} else if (cause == NULL)
		abort();
	free(cause);
	for (line = text; line != NULL; line = next) {
		double pct;
		char *label;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (pgbackrest_progress_line(line, &pct) == 0 &&
		    (pct < 0 || pct > 100))
			abort();
		if ((label = pgbackrest_label_line(line)) != NULL) {
			if (!pgbackrest_valid_set(label))
				abort();
			free(label);
		}
		/* an accepted time goes into an argv: short, no quotes */
		if (pgbackrest_valid_time(line) && (strlen(line) > 32 ||
		    strpbrk(line, "'\"\\;$`") != NULL ||
		    pgbackrest_time_value(line) < -15 * 3600))
			abort();
	}
	free(text);
	return 0;
}
