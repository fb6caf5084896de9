/*
 * json.h - reading fields of cJSON objects that may be missing or of the
 * wrong type (everything from outside: servers, children, files).
 */
#ifndef BB_JSON_H
#define BB_JSON_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

/*
 * Parse text from outside (a homeserver's body) within bounds: at most
 * JSON_MAX_NODES values and keys, nested at most JSON_MAX_DEPTH deep.  A
 * scan without allocation checks both before cJSON builds anything, so
 * 32 MiB of [0,0,...] costs nothing but the scan (a tree of it would be
 * over a GiB).  NULL if it has too many values (*cause says so, when
 * cause is not NULL; caller frees), or does not parse, or nests deeper
 * than cJSON's own limit (checked before cJSON recurses) (*cause NULL:
 * the caller says what it expected).
 */
#define JSON_MAX_NODES	200000
#define JSON_MAX_DEPTH	1000
struct cJSON *json_parse_bounded(const char *text, size_t len, char **cause);

/* The string at key, or NULL when absent or not a string. */
const char *json_str(const struct cJSON *j, const char *key);
/* The same, but "" instead of NULL: for messages. */
const char *json_text(const struct cJSON *j, const char *key);
/* Largest magnitude json_num passes on: 2^53. */
#define JSON_NUM_MAX	9007199254740992.0
/*
 * The number at key, or 0 when it is missing, not a number, not finite
 * or beyond +-JSON_NUM_MAX (so any cast of it to an integer type of 64
 * bits is defined).
 */
double json_num(const struct cJSON *j, const char *key);
/* A count: json_num as uint64_t, 0 when negative. */
uint64_t json_u64(const struct cJSON *j, const char *key);
/* json_num as int when within [min, max], else min. */
int json_int(const struct cJSON *j, const char *key, int min, int max);
/* The number at key into *out: 0, or -1 when absent or not a number. */
int json_get_num(const struct cJSON *j, const char *key, double *out);

/* Append a formatted string to a JSON array (notes, warnings...). */
void json_addf(struct cJSON *array, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
