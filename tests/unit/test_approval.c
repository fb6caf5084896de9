/*
 * test_approval.c - the rules of restore approval, and the request store:
 * self-approval, counting once, expiry, closed requests, ids, and that a
 * request and its votes come back after a "restart" (a fresh open of the
 * same directory).  Also the argument checks of a restore (restore.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "approval.h"
#include "backend.h"
#include "config.h"
#include "restore.h"
#include "util.h"
#include "testutil.h"

#define T0	1795000000	/* a fixed "now" */

static struct request *
pending(struct request *r, int needed, int self_ok)
{
	memset(r, 0, sizeof(*r));
	r->state = REQ_PENDING;
	r->requester = "@alice:x";
	r->expires = T0 + 900;
	r->needed = needed;
	r->self_ok = self_ok;
	r->approvers = xcalloc(1, sizeof(char *));
	return r;
}

static void
release(struct request *r)
{
	strv_free(r->approvers);
}

static void
test_self_approval_does_not_count(void **state)
{
	struct request r;

	(void)state;
	pending(&r, 1, 0);
	assert_int_equal(approval_vote(&r, "@alice:x", T0), VOTE_SELF);
	assert_int_equal(approval_count(&r), 0);
	assert_int_equal(approval_vote(&r, "@bob:x", T0), VOTE_READY);
	assert_int_equal(approval_count(&r), 1);
	release(&r);
}

static void
test_an_admin_counts_once(void **state)
{
	struct request r;

	(void)state;
	pending(&r, 2, 0);
	assert_int_equal(approval_vote(&r, "@bob:x", T0), VOTE_COUNTED);
	assert_int_equal(approval_vote(&r, "@bob:x", T0 + 1), VOTE_AGAIN);
	assert_int_equal(approval_count(&r), 1);
	assert_int_equal(approval_vote(&r, "@carol:x", T0 + 2), VOTE_READY);
	assert_int_equal(approval_count(&r), 2);
	release(&r);
}

static void
test_expired_and_closed(void **state)
{
	struct request r;

	(void)state;
	pending(&r, 1, 0);
	/* the last second before expiry still counts; expiry itself not */
	assert_int_equal(approval_vote(&r, "@bob:x", T0 + 900), VOTE_EXPIRED);
	assert_int_equal(approval_count(&r), 0);
	assert_int_equal(approval_vote(&r, "@bob:x", T0 + 899), VOTE_READY);
	release(&r);
	for (int s = REQ_RUNNING; s <= REQ_INTERRUPTED; s++) {
		pending(&r, 1, 0);
		r.state = (enum req_state)s;
		assert_int_equal(approval_vote(&r, "@bob:x", T0), VOTE_CLOSED);
		assert_int_equal(approval_count(&r), 0);
		release(&r);
	}
}

static void
test_one_admin_server_confirms_itself(void **state)
{
	struct request r;

	(void)state;
	pending(&r, 1, 1);
	assert_int_equal(approval_vote(&r, "@alice:x", T0), VOTE_READY);
	release(&r);
}

static void
test_ids(void **state)
{
	(void)state;
	assert_true(approval_valid_id("k3x9qa"));
	assert_false(approval_valid_id("k3x9q"));	/* short */
	assert_false(approval_valid_id("k3x9qab"));	/* long */
	assert_false(approval_valid_id("K3X9QA"));	/* upper case */
	assert_false(approval_valid_id("k3x9q0"));	/* 0 is not used */
	assert_false(approval_valid_id("k3x9q;"));
	assert_false(approval_valid_id("../../"));
	assert_false(approval_valid_id(""));
}

static void
test_store_survives_reopen(void **state)
{
	char *dir = tu_mkdtemp(), *cause = NULL;
	struct approvals *a;
	struct request tmpl, *r, *again;
	char id[REQ_ID_LEN + 1];

	(void)state;
	a = approvals_open(dir, &cause);
	assert_non_null(a);
	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.target = "mastodon";
	tmpl.backup = "mastodon-20261126T030000Z";
	tmpl.into = "mastodon_restore_202611261200";
	tmpl.requester = "@alice:x";
	tmpl.room = "!r:x";
	tmpl.thread = "$cmd";
	tmpl.expires = T0 + 900;
	tmpl.needed = 2;
	r = approvals_add(a, &tmpl, T0, &cause);
	assert_non_null(r);
	assert_true(approval_valid_id(r->id));
	memcpy(id, r->id, sizeof(id));
	assert_int_equal(approval_vote(r, "@bob:x", T0), VOTE_COUNTED);
	r->plan_event = xstrdup("$plan");
	assert_int_equal(approvals_save(a, r), 0);
	approvals_free(a);

	/* a restart: the request, its vote and its plan are back */
	a = approvals_open(dir, &cause);
	assert_non_null(a);
	again = approvals_find(a, id);
	assert_non_null(again);
	assert_string_equal(again->backup, "mastodon-20261126T030000Z");
	assert_string_equal(again->into, "mastodon_restore_202611261200");
	assert_null(again->from);
	assert_int_equal(again->state, REQ_PENDING);
	assert_int_equal(approval_count(again), 1);
	assert_ptr_equal(approvals_by_plan(a, "$plan"), again);
	assert_ptr_equal(approvals_open_for(a, "mastodon"), again);
	assert_null(approvals_open_for(a, "matrix"));
	/* the vote still counts once after the restart */
	assert_int_equal(approval_vote(again, "@bob:x", T0 + 5), VOTE_AGAIN);
	assert_int_equal(approval_vote(again, "@carol:x", T0 + 5), VOTE_READY);
	approvals_free(a);

	/* damaged files are skipped, not fatal */
	{
		char *bad = tu_path(dir, "zzzzzz.json");

		tu_write_str(bad, "{\"id\": \"zzzzzz\", \"state\": 7}",
		    0600);
		free(bad);
	}
	a = approvals_open(dir, &cause);
	assert_non_null(a);
	assert_null(approvals_find(a, "zzzzzz"));
	assert_non_null(approvals_find(a, id));
	approvals_free(a);
	tu_rmtree(dir);
}

static struct target *
target_of(enum target_kind kind, int allow_replace)
{
	static struct target t;
	static char *dests[] = { "s3:media-copy", NULL };

	memset(&t, 0, sizeof(t));
	t.name = "main";
	t.kind = kind;
	t.allow_replace = allow_replace;
	t.destinations.v = dests;
	t.destinations.n = 1;
	return &t;
}

static int
checks(enum target_kind kind, int allow, const char *into, const char *from,
    int replace, int flush)
{
	struct restore_opts o = { into, from, replace, flush, 0, NULL };
	char *cause = NULL;
	int r = restore_check(target_of(kind, allow), &o, &cause);

	if (r == -1) {
		assert_non_null(cause);
		free(cause);
	} else
		assert_null(cause);
	return r;
}

static void
test_restore_checks(void **state)
{
	(void)state;
	assert_int_equal(checks(TARGET_POSTGRES, 0, NULL, NULL, 0, 0), 0);
	assert_int_equal(checks(TARGET_POSTGRES, 0, "main_copy", NULL, 0, 0), 0);
	assert_int_equal(checks(TARGET_POSTGRES, 0, "Main", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_POSTGRES, 0, "x; drop", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_POSTGRES, 0, "1abc", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_POSTGRES, 0, NULL, NULL, 1, 0), -1);
	assert_int_equal(checks(TARGET_POSTGRES, 1, NULL, NULL, 1, 0), 0);
	assert_int_equal(checks(TARGET_POSTGRES, 1, NULL, NULL, 0, 1), -1);
	assert_int_equal(checks(TARGET_POSTGRES, 1, NULL, "s3", 0, 0), -1);
	assert_int_equal(checks(TARGET_REDIS, 0, NULL, NULL, 0, 1), 0);
	assert_int_equal(checks(TARGET_REDIS, 1, NULL, NULL, 1, 0), -1);
	assert_int_equal(checks(TARGET_REDIS, 0, "/tmp/x", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_FILES, 0, NULL, NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_FILES, 0, "/srv/restore", NULL, 0, 0), 0);
	assert_int_equal(checks(TARGET_FILES, 0, "/srv/../etc", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_FILES, 0, "relative", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_FILES, 0, "/srv/a b", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_FILES, 0, NULL, NULL, 1, 0), -1);
	assert_int_equal(checks(TARGET_FILES, 1, NULL, NULL, 1, 0), 0);
	assert_int_equal(checks(TARGET_MEDIA, 0, NULL, NULL, 0, 0), 0);
	assert_int_equal(checks(TARGET_MEDIA, 0, NULL, "s3", 0, 0), 0);
	assert_int_equal(checks(TARGET_MEDIA, 0, NULL, "s3:media-copy", 0, 0), 0);
	assert_int_equal(checks(TARGET_MEDIA, 0, NULL, "s", 0, 0), -1);
	assert_int_equal(checks(TARGET_MEDIA, 0, NULL, "other", 0, 0), -1);
	/* a remote path only under the target's own places */
	assert_int_equal(checks(TARGET_MEDIA, 0, "s3:back/x", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_MEDIA, 0, "s3:media-copy/x", NULL, 0, 0),
	    0);
	assert_int_equal(checks(TARGET_MEDIA, 0, "s3:media-copyx", NULL, 0, 0),
	    -1);
	assert_int_equal(checks(TARGET_FILES, 0, "/", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_FILES, 0, "//", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_MEDIA, 0, "s3:../x", NULL, 0, 0), -1);
	assert_int_equal(checks(TARGET_MEDIA, 0, "/srv/x", NULL, 0, 0), 0);
}

/* Who the "configuration in force" of the recheck tests has as admins. */
static int
in_list(void *arg, const char *who)
{
	for (const char *const *p = arg; *p != NULL; p++)
		if (!strcmp(*p, who))
			return 1;
	return 0;
}

static int
recheck(struct request *r, int required, int allow_replace,
    const char *const *admins, const char *want)
{
	struct config cfg;
	char *cause = NULL;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	cfg.targets = target_of(TARGET_POSTGRES, allow_replace);
	cfg.ntargets = 1;
	cfg.approvals_required = required;
	rc = approval_recheck(r, &cfg, in_list, (void *)admins, &cause);
	if (want == NULL)
		assert_null(cause);
	else {
		assert_non_null(cause);
		assert_non_null(strstr(cause, want));
	}
	free(cause);
	return rc;
}

static void
test_recheck_at_start(void **state)
{
	static const char *const all[] = { "@a:x", "@b:x", "@c:x", NULL };
	static const char *const no_b[] = { "@a:x", "@c:x", NULL };
	static const char *const no_a[] = { "@b:x", "@c:x", NULL };
	char *approvers[] = { "@b:x", "@c:x", NULL };
	struct request r;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.target = "main";
	r.requester = "@a:x";
	r.approvers = approvers;
	r.needed = 2;
	assert_int_equal(recheck(&r, 2, 0, all, NULL), 0);
	/* a removed approver's vote no longer counts */
	assert_int_equal(recheck(&r, 2, 0, no_b, "now asks for 2"), -1);
	assert_int_equal(recheck(&r, 1, 0, no_b, NULL), 0);
	/* approvals_required raised meanwhile */
	assert_int_equal(recheck(&r, 3, 0, all, "now asks for 3"), -1);
	/* the requester removed */
	assert_int_equal(recheck(&r, 1, 0, no_a, "no longer an admin"), -1);
	/* the target gone, or no longer allowing --replace */
	r.target = "gone";
	assert_int_equal(recheck(&r, 1, 0, all, "no longer in the"), -1);
	r.target = "main";
	r.replace = 1;
	assert_int_equal(recheck(&r, 1, 1, all, NULL), 0);
	assert_int_equal(recheck(&r, 1, 0, all, "allow_replace"), -1);
	/* the requester's own vote counts only under self-confirm */
	r.replace = 0;
	approvers[0] = "@a:x";
	approvers[1] = NULL;
	assert_int_equal(recheck(&r, 1, 0, all, "now asks for 1"), -1);
	assert_int_equal(recheck(&r, 0, 0, all, NULL), 0);
}

static void
test_default_into(void **state)
{
	struct target *t = target_of(TARGET_POSTGRES, 0);
	char *name;

	(void)state;
	t->name = "matrix-synapse";
	/* 2026-11-26 15:30:45 UTC */
	name = restore_default_into(t, 1795707045);
	assert_string_equal(name, "matrix_synapse_restore_202611261530");
	assert_true(restore_valid_dbname(name));
	free(name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self_approval_does_not_count),
		cmocka_unit_test(test_an_admin_counts_once),
		cmocka_unit_test(test_expired_and_closed),
		cmocka_unit_test(test_one_admin_server_confirms_itself),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_store_survives_reopen),
		cmocka_unit_test(test_restore_checks),
		cmocka_unit_test(test_recheck_at_start),
		cmocka_unit_test(test_default_into),
	};

	return TU_RUN(tests);
}
