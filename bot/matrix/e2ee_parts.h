/*
 * e2ee_parts.h - what e2ee.c and e2ee_send.c share and nothing else
 * includes: the device's state and the store helpers.  The API is e2ee.h.
 */
#ifndef BB_E2EE_PARTS_H
#define BB_E2EE_PARTS_H

#include <cjson/cJSON.h>
#include "olm_dl.h"

#include "e2ee.h"

struct mx;

#define E2EE_STORE_MAX		(64 * 1024 * 1024)
#define E2EE_CALL_MS		20000L
#define E2EE_SEEN_KEEP		2000	/* message indexes kept per session */
#define E2EE_INBOUND_MAX	5000	/* inbound sessions kept */
#define E2EE_MAX_DEVICES	1000	/* devices shared with per room */
/*
 * Megolm indexes reserved on disk ahead of the one in use: the stored
 * outbound session is this far ahead of the live one, so a message needs
 * no write of the store, and a restart (from the stored session) starts
 * past every index used before it.
 */
#define E2EE_RESERVE		32

struct e2ee {
	char		*path;
	unsigned char	 key[E2EE_KEYBYTES];
	char		*user_id;
	char		*device_id;
	enum e2ee_trust	 trust;
	OlmAccount	*acct;
	cJSON		*store;
	cJSON		*members;	/* room -> [users], cache */
	cJSON		*live;		/* room -> outbound pickle in use */
	int		 dirty;		/* store changed, not yet written */
	cJSON		*warnings;	/* [[user, text]] not yet said */
	e2ee_warn_fn	 warn;
	void		*warn_arg;
};


/* e2ee.c's helpers that e2ee_send.c uses too. */
cJSON *e2ee_obj(cJSON *j, const char *key);
cJSON *e2ee_arr(cJSON *j, const char *key);
void e2ee_set_str(cJSON *j, const char *key, const char *v);
void e2ee_set_num(cJSON *j, const char *key, double v);
void *e2ee_rnd(size_t n);
int e2ee_str_in(const cJSON *arr, const char *s);
OlmSession *e2ee_olm_new(void);
void e2ee_olm_free(OlmSession *s);
OlmSession *e2ee_olm_load(struct e2ee *e, const char *pickle);
OlmOutboundGroupSession *e2ee_outbound_new(void);
void e2ee_outbound_free(OlmOutboundGroupSession *s);
char *e2ee_outbound_pickle(struct e2ee *e, OlmOutboundGroupSession *s);
int e2ee_store_save(struct e2ee *e);
int e2ee_verify_json(const cJSON *j, const char *user, const char *key_id,
    const char *ed);
const cJSON *e2ee_device_get(struct e2ee *e, const char *user,
    const char *device);
int e2ee_devices_query(struct e2ee *e, struct mx *mx, const cJSON *users,
    cJSON *accepted, char **cause);
cJSON *e2ee_olm_list(struct e2ee *e);
void e2ee_olm_keep(struct e2ee *e, const char *curve, OlmSession *s,
    int replace_idx);
void e2ee_warnings_say(struct e2ee *e);

#endif
