/*
 * seal.c - subkeys, manifest MACs and the read policy (see seal.h).
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "catalog.h"
#include "config.h"
#include "json.h"
#include "seal.h"
#include "util.h"

#define KDF_CONTEXT	"bbackup_"	/* crypto_kdf_CONTEXTBYTES = 8 */
#define SUBKEY_STREAM	1
#define SUBKEY_MAC	2
#define MAC_DOMAIN	"backupbot manifest mac v1\n"
#define FORMAT1_ENC	"secretstream-xchacha20poly1305"

/* Members that change after a backup is made: outside the MAC. */
static const char *const seal_mutable[] = {
	"mac", "status", "remotes", "drill", NULL
};

const char seal_no_key_warning[] = "no encryption_key_file: anyone who "
    "can write to a remote can replace a backup there undetected "
    "(backupbot keygen makes a key)";

void
seal_keys_derive(const unsigned char master[PIPE_KEYBYTES],
    struct seal_keys *k)
{
	memcpy(k->master, master, PIPE_KEYBYTES);
	crypto_kdf_derive_from_key(k->stream, sizeof(k->stream),
	    SUBKEY_STREAM, KDF_CONTEXT, master);
	crypto_kdf_derive_from_key(k->mac, sizeof(k->mac), SUBKEY_MAC,
	    KDF_CONTEXT, master);
	k->have = 1;
}

int
seal_keys_load(const struct config *cfg, struct seal_keys *k, char **cause)
{
	unsigned char master[PIPE_KEYBYTES];

	*cause = NULL;
	memset(k, 0, sizeof(*k));
	if (cfg->encryption_key_file == NULL)
		return 0;
	if (sodium_init() < 0) {
		*cause = xstrdup("libsodium failed to initialise");
		return -1;
	}
	if (pipe_key_load(cfg->encryption_key_file, master, cause) == -1)
		return -1;
	seal_keys_derive(master, k);
	sodium_memzero(master, sizeof(master));
	return 0;
}

void
seal_keys_wipe(struct seal_keys *k)
{
	sodium_memzero(k, sizeof(*k));
}

void
seal_mac(const cJSON *manifest, const unsigned char *key, char *hex)
{
	crypto_generichash_state h;
	unsigned char bin[32];
	cJSON *copy = cJSON_Duplicate(manifest, 1);
	char *text;

	for (size_t i = 0; seal_mutable[i] != NULL; i++)
		cJSON_DeleteItemFromObjectCaseSensitive(copy, seal_mutable[i]);
	text = cJSON_PrintUnformatted(copy);
	crypto_generichash_init(&h, key, PIPE_KEYBYTES, sizeof(bin));
	crypto_generichash_update(&h, (const unsigned char *)MAC_DOMAIN,
	    strlen(MAC_DOMAIN));
	crypto_generichash_update(&h, (const unsigned char *)text,
	    strlen(text));
	crypto_generichash_final(&h, bin, sizeof(bin));
	sodium_bin2hex(hex, SEAL_MACHEX, bin, sizeof(bin));
	free(text);
	cJSON_Delete(copy);
}

void
seal_manifest(cJSON *manifest, const struct seal_keys *k)
{
	char hex[SEAL_MACHEX];

	seal_mac(manifest, k->mac, hex);
	cJSON_DeleteItemFromObjectCaseSensitive(manifest, "mac");
	cJSON_AddStringToObject(manifest, "mac", hex);
}

enum seal_state
seal_state(const cJSON *manifest, const struct seal_keys *k)
{
	const char *have = json_str(manifest, "mac");
	char want[SEAL_MACHEX];

	if (have == NULL)
		return SEAL_UNAUTHENTICATED;
	seal_mac(manifest, k->mac, want);
	/* constant time: the MAC is a secret-keyed value */
	if (strlen(have) != SEAL_MACHEX - 1 ||
	    sodium_memcmp(have, want, SEAL_MACHEX - 1) != 0)
		return SEAL_FORGED;
	return SEAL_AUTHENTIC;
}

/* How the manifest says its data is stored, read as it says. */
static int
seal_as_stated(const struct seal_keys *k, const struct backup *b,
    struct pipe_seal *seal, char **bind, char **cause)
{
	const char *enc = json_str(b->manifest, "encryption");

	if (enc == NULL || !strcmp(enc, "none"))
		return 0;
	if (!k->have) {
		*cause = xstrdup("the backup is encrypted and no "
		    "encryption_key_file is configured");
		return -1;
	}
	if (!strcmp(enc, FORMAT1_ENC)) {
		seal->key = k->master;
		return 0;
	}
	if (!strcmp(enc, SEAL_ENCRYPTION)) {
		*bind = xasprintf("%s/%s", b->target, b->id);
		seal->key = k->stream;
		seal->bind = *bind;
		return 0;
	}
	*cause = xasprintf("unknown encryption '%.40s' in the manifest", enc);
	return -1;
}

int
seal_open(const struct seal_keys *k, const struct backup *b, int insecure,
    struct pipe_seal *seal, char **bind, char **cause)
{
	enum seal_state st;
	const char *enc;

	*cause = NULL;
	*bind = NULL;
	memset(seal, 0, sizeof(*seal));
	if (!k->have)
		return seal_as_stated(k, b, seal, bind, cause);
	st = seal_state(b->manifest, k);
	enc = json_text(b->manifest, "encryption");
	if (st == SEAL_AUTHENTIC && !strcmp(enc, SEAL_ENCRYPTION))
		return seal_as_stated(k, b, seal, bind, cause);
	if (!insecure) {
		if (st == SEAL_FORGED)
			*cause = xasprintf("%s is refused: its manifest does "
			    "not authenticate with this key (a wrong key, or "
			    "the manifest was changed after it was made)",
			    b->id);
		else if (st == SEAL_AUTHENTIC)
			*cause = xasprintf("%s is refused: it is not "
			    "encrypted and bound, and a key is configured",
			    b->id);
		else
			*cause = xasprintf("%s is refused: it is %s and not "
			    "authenticated, and a key is configured (it was made "
			    "before backups were authenticated, or was put there "
			    "by someone without the key); only the command "
			    "line's --insecure-unauthenticated reads it", b->id,
			    !strcmp(enc, "none") || *enc == '\0' ?
			    "unencrypted" : "encrypted");
		return -1;
	}
	if (seal_as_stated(k, b, seal, bind, cause) == -1)
		return -1;
	return 1;
}
