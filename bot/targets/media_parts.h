/*
 * media_parts.h - what media.c and media_restore.c share, and nothing else
 * includes.
 */
#ifndef BB_MEDIA_PARTS_H
#define BB_MEDIA_PARTS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "proc.h"
#include "util.h"

struct job_ctx;
struct pipe_out;
struct restore_opts;
struct target;

#define MEDIA_STATS_EVERY	"2s"	/* rclone --stats */

/* One rclone run and what became of it. */
struct media_run {
	const char		*phase;		/* progress phase, or NULL */
	int			 capture;	/* keep stdout in out */
	/* or: every line of stdout, as it comes (rclone check) */
	void			(*out_line)(void *arg, const char *line,
				    size_t len);
	void			*out_arg;
	int			 no_common_hash; /* rclone said so */
	struct media_stats	 stats;
	struct tail		 err;		/* distinct error lines */
	struct buf		 out;
	struct buf		 line;		/* a partial stderr line */
	int			 skipping;	/* in a line over the cap */
	int			 status;
	int			 cancelled;
	int64_t			 started;
	int64_t			 ended;
};

/* A growing argv of borrowed strings. */
struct media_argv {
	const char	**v;
	size_t		  n;
};

/* media.c */
char *media_word(const char *s, size_t len);
void media_run_init(struct media_run *r, const char *phase, int capture);
void media_run_release(struct media_run *r);
int media_rclone(struct job_ctx *ctx, const char *const *argv,
    struct media_run *r, char **cause);
int media_exit_code(const struct media_run *r);
char *media_run_failure(struct media_run *r);
void media_argv_add(struct media_argv *a, const char *s);
void media_size(char *out, size_t n, double b);

/* media_restore.c */
int media_restore(struct job_ctx *ctx, const cJSON *record, const char *raw,
    const struct restore_opts *opts, cJSON *result, char **cause);

#endif
