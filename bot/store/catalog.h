/*
 * catalog.h - the catalog of backups is files, no database:
 *
 *   backup_dir/TARGET/ID.dump[.zst][.enc]   the data
 *   backup_dir/TARGET/ID.json               the manifest
 *
 * The manifest is written last (tmp + fsync + rename + fsync dir) and is
 * the mark of a good backup: data without a manifest does not exist for
 * the catalog.  IDs are TARGET-YYYYmmddTHHMMSSZ, so they sort by time.
 */
#ifndef BB_CATALOG_H
#define BB_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct cJSON;
struct config;

struct backup {
	char		*id;
	char		*target;
	char		*kind;		/* postgres */
	char		*data_file;	/* file name inside the target dir */
	time_t		 started;
	time_t		 ended;
	uint64_t	 bytes;		/* as stored */
	char		*blake2b;
	char		*status;	/* ok | partial */
	struct cJSON	*manifest;	/* the whole manifest */
};

/* A new id for target at time t (UTC). Caller frees. */
char *catalog_new_id(const char *target, time_t t);
/*
 * 1 if s is a well-formed backup id (TARGET-YYYYmmddTHHMMSSZ, optionally
 * with a -N suffix); used to check chat arguments before they reach a
 * path or an argv.
 */
int catalog_valid_id(const char *s);
/* Time encoded in an id, or (time_t)-1. */
time_t catalog_id_time(const char *id);

/* backup_dir/TARGET (caller frees). */
char *catalog_dir(const struct config *cfg, const char *target);

/*
 * The good backups of target, newest first (manifests that parse and
 * whose data file exists).  Returns the count; *out is allocated (free
 * with catalog_free).  Unreadable manifests are skipped with a warning.
 */
size_t catalog_list(const struct config *cfg, const char *target,
    struct backup **out);
void catalog_free(struct backup *b, size_t n);
/* Load one backup by id ("latest" allowed).  0 or -1 with *cause. */
int catalog_get(const struct config *cfg, const char *target, const char *id,
    struct backup *out, char **cause);
void backup_release(struct backup *b);

struct keep_item;
struct target;
/*
 * What retention decides for a catalog list (as from catalog_list): one
 * keep_item per backup, same order, ids pointing into list.  Caller frees
 * the array (not the ids).
 */
struct keep_item *catalog_keep(const struct target *t,
    const struct backup *list, size_t n);

/*
 * The newest run record (ID.run.json, media targets) of target and its
 * newest good one, or NULL.  Caller frees both with cJSON_Delete.
 */
void catalog_last_runs(const struct config *cfg, const char *target,
    struct cJSON **last, struct cJSON **last_good);

/*
 * The newest restore drill recorded for target (in any backup's manifest,
 * or the newest good run record of a media target): 0 with *at, *ok and
 * the backup's *id (caller frees), or -1 when there was none.
 */
int catalog_last_drill(const struct config *cfg, const struct target *t,
    time_t *at, int *ok, char **id);

/* Write a manifest atomically to backup_dir/TARGET/ID.json. 0 or -1. */
int catalog_write_manifest(const struct config *cfg, const char *target,
    const char *id, const struct cJSON *manifest, char **cause);

/* Parse a manifest's text (fuzzable).  0 or -1 with *cause. */
int catalog_parse_manifest(const char *text, size_t len, struct backup *out,
    char **cause);

/*
 * Remove *.partial and *.tmp files and .ID.dir staging directories left by
 * an interrupted job, in one target's directory (or every target's when
 * target is NULL).  A target whose lock (lock.h) another process still
 * holds after a grace of a few seconds (a dying job of a killed daemon
 * lets go by then; a command running for long does not) is left alone.
 * Returns how many were removed.
 */
int catalog_clean_partials(const struct config *cfg, const char *target);

#endif
