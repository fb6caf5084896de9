/*
 * seal.h - what makes a backup trustworthy when it comes back from a disk
 * or a remote that others can write to.  A remote is not trusted: with a
 * key configured, the key (not the disk) is the root of trust.
 *
 * Keys.  The key file's key (the master key) never touches data or
 * manifests itself.  crypto_kdf (context "bbackup_") derives
 *   subkey 1: the secretstream key of the data (pipeline.h, format 2);
 *   subkey 2: the MAC key of manifests.
 *
 * Manifests.  One written with a key carries
 *   "format_version": 2, "encryption": SEAL_ENCRYPTION, "mac": 64 hex
 * where mac = BLAKE2b-256 keyed with subkey 2 over
 *   "backupbot manifest mac v1\n" || canonical content
 * and the canonical content is the manifest printed compactly by cJSON
 * (cJSON_PrintUnformatted), members in stored order, without the members
 * that change after the backup is made: "mac", "status", "remotes" and
 * "drill".  So it covers target, id, kind, file, bytes, bytes_raw,
 * blake2b, compression_info, encryption, started, ended and every fact a
 * backend's restore reads.
 *
 * Data.  Format 2 binds every frame to "TARGET/ID" (additional data), so
 * the data of another backup or target, renamed, does not decrypt.
 *
 * Policy (seal_open).  With a key: only a backup whose manifest's MAC
 * checks and whose data is encrypted and bound is read; anything else is
 * refused in one sentence, unless the CLI's --insecure-unauthenticated
 * (never available from chat) says to read it as its manifest says.
 * Without a key: plain backups are read, and nothing can tell a swapped
 * one (seal_warning says so).
 */
#ifndef BB_SEAL_H
#define BB_SEAL_H

#include "pipeline.h"

struct backup;
struct config;
struct cJSON;

#define SEAL_ENCRYPTION	"secretstream-xchacha20poly1305-bound"
#define SEAL_MACHEX	(2 * 32 + 1)

struct seal_keys {
	int		 have;			/* a key is configured */
	unsigned char	 master[PIPE_KEYBYTES];	/* format 1 data only */
	unsigned char	 stream[PIPE_KEYBYTES];	/* subkey 1 */
	unsigned char	 mac[PIPE_KEYBYTES];	/* subkey 2 */
};

/* Load encryption_key_file, if set, and derive the subkeys (k->have = 0
 * without one).  0, or -1 with *cause.  Wipe with seal_keys_wipe. */
int seal_keys_load(const struct config *cfg, struct seal_keys *k,
    char **cause);
void seal_keys_derive(const unsigned char master[PIPE_KEYBYTES],
    struct seal_keys *k);
void seal_keys_wipe(struct seal_keys *k);

/* The MAC of manifest under key, as hex (SEAL_MACHEX bytes). */
void seal_mac(const struct cJSON *manifest, const unsigned char *key,
    char *hex);
/* Add (or replace) "mac" in a manifest that holds everything else. */
void seal_manifest(struct cJSON *manifest, const struct seal_keys *k);

enum seal_state {
	SEAL_AUTHENTIC,		/* its MAC checks with this key */
	SEAL_UNAUTHENTICATED,	/* no MAC: older, or stripped */
	SEAL_FORGED,		/* a MAC that does not check */
};
/* How a manifest stands against k (which must have a key). */
enum seal_state seal_state(const struct cJSON *manifest,
    const struct seal_keys *k);

/*
 * Before anything reads backup b's data: decide whether it may be read,
 * and how (*seal points into k, and at *bind, which the caller frees).
 * 0: authentic, or plain without a key.  1: unauthenticated but read
 * because insecure is set (the caller says so loudly).  -1 with *cause:
 * refused.
 */
int seal_open(const struct seal_keys *k, const struct backup *b,
    int insecure, struct pipe_seal *seal, char **bind, char **cause);

/* The sentence check and !status show when no key is configured. */
extern const char seal_no_key_warning[];

#endif
