/*
 * files_parts.h - what files.c and files_restore.c share, and nothing else
 * includes.
 */
#ifndef BB_FILES_PARTS_H
#define BB_FILES_PARTS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "proc.h"
#include "util.h"

struct job_ctx;
struct pipe_out;
struct restore_opts;
struct target;

#define FILES_POLL_MS		200	/* how soon a cancel is noticed */
#define FILES_PROGRESS_MS	500
#define FILES_TERM_GRACE_MS	10000	/* after SIGTERM, then SIGKILL */
#define FILES_STDERR_LINES	5

/* A tar run and what became of it. */
struct files_run {
	uint64_t	 total;		/* progress estimate */
	uint64_t	 bytes;		/* read from its stdout */
	struct tail	 err;
	int		 status;
	int		 cancelled;
	char		*error;		/* why we stopped it */
};

/* files.c */
/* tar runs in the C locale: its messages are parsed */
extern const char *const files_tar_env[];
int files_is_cancelled(struct job_ctx *ctx);
char *files_err_text(struct tail *err, int lines);

/* files_restore.c */
int files_restore(struct job_ctx *ctx, const cJSON *manifest, const char *raw,
    const struct restore_opts *opts, cJSON *result, char **cause);

#endif
