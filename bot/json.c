/*
 * json.c - tolerant field access on cJSON objects (see json.h).
 */
#include <stddef.h>

#include <cjson/cJSON.h>

#include "json.h"

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

	if (!cJSON_IsNumber(v))
		return -1;
	*out = v->valuedouble;
	return 0;
}

double
json_num(const cJSON *j, const char *key)
{
	double v = 0;

	json_get_num(j, key, &v);
	return v;
}
