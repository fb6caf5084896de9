"""Approvals are checked again, against the configuration in force, when
the restore starts: a removed admin's vote no longer counts, a raised
approvals_required is met or the request is cancelled, in its thread."""

import json
import os
import signal

from harness import ALICE, BOB, check, test
from seclib import chat_bot, plan_of, react, set_chat_conf, tree, wait_body

CAROL = '@carol:localhost'


def setup(t, required):
    t.hs.user(CAROL, password='pw-carol')
    t.room_id = t.hs.room(creator=ALICE, members=[ALICE, BOB, CAROL,
                                                  '@backupbot:localhost'])
    src = os.path.join(t.tmp, 'src')
    tree(src, {'a.conf': b'a\n'})
    targets = {'etc': [src]}
    b, ids = chat_bot(t, targets, (ALICE, BOB, CAROL),
                      restore='approvals_required = %d' % required)
    into = os.path.join(t.tmp, 'into')
    os.makedirs(into)
    t.hs.send(t.room_id, ALICE, '!restore etc latest --into %s' % into)
    plan, req = plan_of(t)
    return b, targets, into, plan, req


def reload(b, targets, required, admins):
    n = b.log_text().count('configuration reloaded')
    set_chat_conf(b.t, b, targets, 'approvals_required = %d' % required, admins=admins)
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log('configuration reloaded', count=n + 1)


def check_cancelled(t, b, req, into, reason):
    said = wait_body(t, 'is cancelled')
    check(reason in said[0], 'cancellation: %r' % said)
    state = json.load(open(os.path.join(b.state_dir, 'approvals', req + '.json')))
    check(state['state'] == 'cancelled', 'state: %r' % state)
    check(os.listdir(into) == [], 'something was restored: %r' % os.listdir(into))


@test
def approval_by_a_since_removed_admin_does_not_count(t):
    b, targets, into, plan, req = setup(t, 2)
    react(t, BOB, plan['event_id'])
    wait_body(t, '1 of 2 approval(s)')
    reload(b, targets, 2, (ALICE, CAROL))
    react(t, CAROL, plan['event_id'])
    check_cancelled(t, b, req, into, 'approvals_required now asks for 2')


@test
def approvals_required_raised_while_a_request_waits(t):
    b, targets, into, plan, req = setup(t, 1)
    reload(b, targets, 2, (ALICE, BOB, CAROL))
    react(t, BOB, plan['event_id'])
    check_cancelled(t, b, req, into, '1 approval(s) from current admins')


@test
def requester_removed_while_the_request_waits(t):
    b, targets, into, plan, req = setup(t, 1)
    reload(b, targets, 1, (BOB, CAROL))
    react(t, BOB, plan['event_id'])
    check_cancelled(t, b, req, into, 'who asked for it, is no longer an admin')
