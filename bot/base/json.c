/*
 * json.c - tolerant field access on cJSON objects (see json.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "util.h"

/* Count values and keys, and the nesting, of JSON text without
 * building it; -1 with *cause past a bound.  Shape errors are cJSON's. */
static int
json_scan(const char *s, size_t len, char **cause)
{
	size_t nodes = 0;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '"':
			nodes++;
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			break;
		case '{':
		case '[':
			nodes++;
			/* beyond cJSON's own nesting limit: it would not
			 * parse either, so no cause of our own */
			if (++depth > JSON_MAX_DEPTH)
				return -1;
			break;
		case '}':
		case ']':
			depth--;
			break;
		case '-': case '0': case '1': case '2': case '3': case '4':
		case '5': case '6': case '7': case '8': case '9':
		case 't': case 'f': case 'n':
			nodes++;
			while (i + 1 < len && s[i + 1] != ',' && s[i + 1] != ']' &&
			    s[i + 1] != '}' && s[i + 1] != ' ' &&
			    s[i + 1] != '\n' && s[i + 1] != '"')
				i++;
			break;
		default:
			break;
		}
		if (nodes > JSON_MAX_NODES) {
			if (cause != NULL)
				*cause = xasprintf("JSON with more than %d "
				    "values", JSON_MAX_NODES);
			return -1;
		}
	}
	return 0;
}

cJSON *
json_parse_bounded(const char *text, size_t len, char **cause)
{
	if (cause != NULL)
		*cause = NULL;
	if (text == NULL || json_scan(text, len, cause) == -1)
		return NULL;
	return cJSON_ParseWithLength(text, len);
}

const char *
json_str(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *
json_text(const cJSON *j, const char *key)
{
	const char *s = json_str(j, key);

	return s != NULL ? s : "";
}

int
json_get_num(const cJSON *j, const char *key, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	/* not finite or beyond 2^53: no integer cast of it is safe */
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
	    v->valuedouble > JSON_NUM_MAX || v->valuedouble < -JSON_NUM_MAX)
		return -1;
	*out = v->valuedouble;
	return 0;
}

double
json_num(const cJSON *j, const char *key)
{
	double v = 0;

	/*
	 * Callers turn this into time_t, int, uint64_t: a value out of
	 * their range would be undefined behaviour, so anything that is not
	 * a finite number within +-2^53 (exact in a double; 285 million
	 * years in seconds, 9 PB in bytes) reads as 0 (json_get_num).
	 */
	if (json_get_num(j, key, &v) == -1)
		return 0;
	return v;
}

uint64_t
json_u64(const cJSON *j, const char *key)
{
	double v = json_num(j, key);

	return v > 0 ? (uint64_t)v : 0;
}

int
json_int(const cJSON *j, const char *key, int min, int max)
{
	double v = json_num(j, key);

	return v >= min && v <= max ? (int)v : min;
}

void
json_addf(cJSON *array, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	cJSON_AddItemToArray(array, cJSON_CreateString(s));
	free(s);
}
