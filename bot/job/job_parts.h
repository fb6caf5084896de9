/*
 * job_parts.h - what job.c and hooks.c share and nothing else includes:
 * the runs without their hooks, and the result and log helpers.  The API
 * is job.h.
 */
#ifndef BB_JOB_PARTS_H
#define BB_JOB_PARTS_H

#include <cjson/cJSON.h>

#include "backend.h"

struct config;
struct job_out;
struct restore_opts;
struct target;

/* A backend's context for one run, reporting to out. */
struct run {
	const struct job_out	*out;
	struct job_ctx		 ctx;
};

void	 run_init(struct run *run, const struct config *cfg,
	    const struct target *t, const char *id, const struct job_out *o);

/* A line in the job's log at level ("info", "warning", ...). */
void	 say(const struct job_out *o, const char *level, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* A new result, "failed" until it is not. */
cJSON	*result_new(const char *target, const char *kind);
/* Mark r failed (or cancelled) with cause; returns r. */
cJSON	*result_fail(cJSON *r, const char *cause);
/* A backup (type: pgbackrest's, or NULL), and a restore, without their
 * hooks, each holding the target's lock. */
cJSON	*backup_run(const struct config *cfg, const char *target,
	    const char *type, const struct job_out *o);
cJSON	*restore_run(const struct config *cfg, const char *target,
	    const char *id, const struct restore_opts *opts,
	    const struct job_out *o);

#endif
