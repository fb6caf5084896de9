/*
 * json.h - reading fields of cJSON objects that may be missing or of the
 * wrong type (everything from outside: servers, children, files).
 */
#ifndef BB_JSON_H
#define BB_JSON_H

struct cJSON;

/* The string at key, or NULL when absent or not a string. */
const char *json_str(const struct cJSON *j, const char *key);
/* The same, but "" instead of NULL: for messages. */
const char *json_text(const struct cJSON *j, const char *key);
/* The number at key, or 0. */
double json_num(const struct cJSON *j, const char *key);
/* The number at key into *out: 0, or -1 when absent or not a number. */
int json_get_num(const struct cJSON *j, const char *key, double *out);

#endif
