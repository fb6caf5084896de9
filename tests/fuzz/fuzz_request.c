/*
 * fuzz_request.c - libFuzzer target for the reading of restore requests
 * (approval.c's request_parse, static): each input is written as the one
 * file of a scratch approvals directory, state_dir/approvals/REQ.json,
 * which approvals_open reads back as it does at start-up.
 *
 * Checks what approval.h promises of a loaded request: a valid id, a
 * known state, the strings the chat flow uses (target, backup,
 * requester, room, thread) present, at least one approval needed, a
 * NULL-terminated list of approvers; that the lookups find it; and that
 * approval_vote's answers agree with the count.  An input that is not a
 * request leaves the list empty (approval.c logs it, into /dev/null
 * here: log.c writes through stdio's stderr, the sanitizers do not).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "approval.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char	*dir;		/* TMPDIR/bbfuzz-request.XXXXXX */
static char	*file;		/* dir/abcdef.json */
static FILE	*devnull;

static void
cleanup(void)
{
	if (dir != NULL)
		dir_remove_tree(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	dir = xasprintf("%s/bbfuzz-request.XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL || (devnull = fopen("/dev/null", "w")) ==
	    NULL)
		abort();
	file = xasprintf("%s/abcdef.json", dir);
	atexit(cleanup);
	return 0;
}

static void
check_request(struct approvals *a, struct request *r)
{
	enum vote v;
	int before, after;

	if (!approval_valid_id(r->id) || r->state < REQ_PENDING ||
	    r->state > REQ_INTERRUPTED ||
	    approval_state_name(r->state) == NULL)
		abort();
	if (r->target == NULL || r->backup == NULL || r->requester == NULL ||
	    r->room == NULL || r->thread == NULL || r->needed < 1 ||
	    r->approvers == NULL)
		abort();
	if (approvals_find(a, r->id) == NULL)
		abort();
	if (r->plan_event != NULL && approvals_by_plan(a, r->plan_event) ==
	    NULL)
		abort();
	if ((r->state == REQ_PENDING || r->state == REQ_RUNNING) &&
	    approvals_open_for(a, r->target) == NULL)
		abort();

	/* The rules, on what came from the file. */
	before = approval_count(r);
	if (before < 0 || before > 64)
		abort();
	v = approval_vote(r, "@fuzz:example.org", r->created);
	after = approval_count(r);
	switch (v) {
	case VOTE_COUNTED:
	case VOTE_READY:
		if (after != before + 1 || r->state != REQ_PENDING ||
		    (v == VOTE_READY) != (after >= r->needed))
			abort();
		break;
	case VOTE_SELF:
	case VOTE_AGAIN:
	case VOTE_EXPIRED:
	case VOTE_CLOSED:
		if (after != before)
			abort();
		break;
	default:
		abort();
	}
	/* the same admin twice never counts */
	v = approval_vote(r, "@fuzz:example.org", r->created);
	if (v == VOTE_COUNTED || v == VOTE_READY || approval_count(r) != after)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct approvals *a;
	struct request *r;
	char *cause = NULL;
	FILE *saved;
	int fd, n = 0;

	if ((fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 || (size > 0 && write(fd, data, size) !=
	    (ssize_t)size) || close(fd) == -1)
		abort();

	saved = stderr;
	stderr = devnull;
	a = approvals_open(dir, &cause);
	stderr = saved;
	if (a == NULL)
		abort();
	for (r = approvals_first(a); r != NULL; r = r->next) {
		check_request(a, r);
		n++;
	}
	if (n > 1)
		abort();
	approvals_free(a);
	return 0;
}
