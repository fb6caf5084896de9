"""The daemon itself killed: kill -9 during a restore, and between sending
a message and recording that it was sent.

(kill -9 during a backup: tests/integration/test_backup_chat.py::
daemon_killed_mid_backup_reports_interrupted_job.)
"""
import json
import os
import shutil
import time
import uuid

from faultlib import (ALICE, BOB, BOT, approve, bodies, check, pgrep, rel, said,
                      wait_body, wait_for, wait_gone)
from harness import test
from test_restore_chat import databases, plan_of, restore_jobs
from test_restore_chat import setup as restore_setup
from test_restore_pg import restore_wrapper

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False


@test
def daemon_killed_during_a_restore_reports_it_and_never_runs_it_again(t):
    # pg_restore fills the new database, then takes its time
    marker = 'bbfaultrestore' + uuid.uuid4().hex[:8]
    mdir = os.path.join(t.tmp, marker)
    os.makedirs(mdir)
    os.symlink(shutil.which('sleep'), os.path.join(mdir, 'sleep'))
    w = restore_wrapper(t, marker + '/pg_restore', '"$REAL" "$@" || exit\n"%s/sleep" 60\n' % mdir)
    pg, b, bid = restore_setup(t, pg_extra='pg_restore = %s' % w)
    before = databases(pg)
    live = pg.fingerprint()
    t.hs.send(t.room_id, ALICE, '!restore main latest')
    plan, req = plan_of(t)
    approve(t, b, plan, req)
    wait_body(t, 'approved by %s' % BOB)
    wait_for('pg_restore to have filled the new database',
             lambda: '/sleep 60' in pgrep(marker + '/sleep'), timeout=60)
    made = sorted(databases(pg) - before)
    check(len(made) == 1 and made[0].startswith('main_restore_'), 'databases: %r' % made)
    path = os.path.join(b.state_dir, 'approvals', req + '.json')
    check(json.load(open(path))['state'] == 'running', 'not stored as running before the job')

    b.kill9()
    # the job dies with the daemon and takes its half-made database along
    wait_gone(marker, timeout=20)
    wait_gone('%s job restore' % b.conf, timeout=20)
    check(databases(pg) == before, 'the half-made database is left: %r' % (databases(pg) - before))
    check(pg.fingerprint() == live, 'the live database changed')

    b.start()
    msg = wait_body(t, 'restore %s of main was interrupted' % req)[0]
    check('not started again' in msg, msg)
    job_msg = wait_body(t, 'the restore of main started by %s was interrupted' % ALICE)[0]
    check('Nothing it wrote was kept' in job_msg, job_msg)
    state = json.load(open(path))
    check(state['state'] == 'interrupted', 'request state after the restart: %r' % state)
    # never run again: not by a late approval, not by another restart
    t.hs.send(t.room_id, BOB, '!approve %s' % req)
    wait_body(t, 'approvals no longer apply')
    b.stop()
    n = len(bodies(t))
    b.start()
    t.hs.send(t.room_id, ALICE, '!status')
    wait_body(t, 'uptime')
    time.sleep(1)
    check(len(restore_jobs(b)) == 1, 'restore jobs: %r' % restore_jobs(b))
    check(len(said(t, 'was interrupted')) == 2,
          'interrupted reported again after a second restart: %r' % bodies(t)[n:])
    check(databases(pg) == before, 'databases at the end: %r' % (databases(pg) - before))


@test
def daemon_killed_after_the_homeserver_stored_a_message_sends_it_once(t):
    b = t.bot().start()
    # The homeserver stores the reply, then the connection drops: the bot
    # never learns that it was sent.  (A reply, not the 👀: a second 👀
    # would be refused as a duplicate annotation whatever its txnId.)
    t.hs.fault('drop', count=1000, after=True, path_regex='/send/m.room.message/')
    cmd = t.hs.send(t.room_id, ALICE, '!status')

    def stored_replies():
        return [e for e in t.hs.call('GET', '/_test/events?room_id=%s&sender=%s'
                                     % (t.room_id, BOT))['events']
                if e['event']['type'] == 'm.room.message']
    stored = wait_for('the reply to be stored', stored_replies)
    wait_for('a retry of the stored reply', lambda: b.log_text().count('send:') >= 2, timeout=20)
    outbox = os.path.join(b.state_dir, 'outbox')
    queued = [json.load(open(os.path.join(outbox, n)))['txn_id'] for n in os.listdir(outbox)
              if n.endswith('.json')]
    check(stored[0]['txn_id'] in queued, 'the stored reply is not in the outbox: %r stored, '
          '%r queued' % (stored[0]['txn_id'], queued))
    b.kill9()
    t.hs.call('POST', '/_test/reset_faults', {})
    b.start()
    probe = t.hs.send(t.room_id, BOB, '!help')
    wait_for('the answer to a new command', lambda: [
        e for e in stored_replies()
        if rel(e['event']).get('m.in_reply_to', {}).get('event_id') == probe], timeout=30)
    wait_for('the outbox to empty', lambda: not [n for n in os.listdir(outbox)
                                                 if n.endswith('.json')], timeout=20)
    evs = [e for e in t.hs.call('GET', '/_test/events?room_id=%s&sender=%s' % (t.room_id, BOT))['events']
           if 'state_key' not in e['event']]
    answers = [e for e in evs if e['event']['type'] == 'm.room.message'
               and rel(e['event']).get('m.in_reply_to', {}).get('event_id') == cmd]
    check(len(answers) == 1 and answers[0]['txn_id'] == stored[0]['txn_id'],
          'answers to the command after kill -9 (want one, txnId %s): %r'
          % (stored[0]['txn_id'], [(e['txn_id'], e['event']['content']['body'][:30]) for e in answers]))
    acks = [e for e in evs if e['event']['type'] == 'm.reaction'
            and rel(e['event']).get('event_id') == cmd]
    check(len(acks) == 0, '👀 on a command answered at once: %d' % len(acks))
    txns = [e['txn_id'] for e in evs]
    check(len(txns) == len(set(txns)) == 2, 'events from the bot: %r' % txns)


@test
def daemon_killed_after_a_reply_was_accepted_before_anything_was_stored_answers_once(t):
    # The reply goes out before it, the seen journal or next_batch is
    # written.  The daemon dies right after the homeserver accepted it:
    # nothing on disk says the command was handled, so it is handled
    # again, and its reply, named by the command, is the same transaction.
    b = t.bot()
    b.env = dict(os.environ, BACKUPBOT_TEST_FAULT='die-after-reply')
    b.start()
    cmd = t.hs.send(t.room_id, ALICE, '!help')

    def answers():
        return [e for e in t.hs.call('GET', '/_test/events?room_id=%s&sender=%s'
                                     % (t.room_id, BOT))['events']
                if e['event']['type'] == 'm.room.message'
                and rel(e['event']).get('m.in_reply_to', {}).get('event_id') == cmd]
    wait_for('the daemon to die', lambda: b.proc.poll() is not None, timeout=30)
    check(b.proc.returncode == -9, 'exited %r, not by SIGKILL' % b.proc.returncode)
    first = answers()
    check(len(first) == 1, 'answers before the restart: %d' % len(first))
    outbox = os.path.join(b.state_dir, 'outbox')
    check(not [n for n in os.listdir(outbox) if n.endswith('.json')], 'the reply was stored')

    b.env = None
    b.start()
    # handled again after the restart (nothing recorded it) ...
    b.wait_log('command from %s' % ALICE, count=2, timeout=30)
    probe = t.hs.send(t.room_id, BOB, '!help')
    wait_for('the answer to a new command', lambda: [
        e for e in t.hs.events(t.room_id, sender=BOT)
        if rel(e).get('m.in_reply_to', {}).get('event_id') == probe], timeout=30)
    wait_for('the outbox to empty', lambda: not [n for n in os.listdir(outbox)
                                                 if n.endswith('.json')], timeout=20)
    # ... and answered once: the second reply was the same transaction
    got = answers()
    check(len(got) == 1 and got[0]['txn_id'] == first[0]['txn_id'],
          'answers to the command across the crash (want one, txnId %s): %r'
          % (first[0]['txn_id'], [(e['txn_id'], e['event']['content']['body'][:30]) for e in got]))


@test
def daemon_killed_after_the_reply_to_a_command_that_acts_does_not_run_it_again(t):
    # !pause acts (it changes what the schedules do; !backup, !restore and
    # the votes are the same kind): its batch is made durable right after
    # its reply goes out, not when the reply is answered.  The daemon dies
    # as the answer arrives: after the restart the command is not handled
    # a second time.  (The reply to a command that only reads is, above.)
    b = t.bot()
    b.env = dict(os.environ, BACKUPBOT_TEST_FAULT='die-after-reply')
    b.start()
    cmd = t.hs.send(t.room_id, ALICE, '!pause all 2h')
    wait_for('the daemon to die', lambda: b.proc.poll() is not None, timeout=30)
    check(b.proc.returncode == -9, 'exited %r, not by SIGKILL' % b.proc.returncode)
    handled = b.log_text().count('command from %s' % ALICE)
    check(handled == 1, 'handled %d times before the crash' % handled)

    b.env = None
    b.start()
    probe = t.hs.send(t.room_id, BOB, '!help')
    wait_for('the answer to a new command', lambda: [
        e for e in t.hs.events(t.room_id, sender=BOT)
        if rel(e).get('m.in_reply_to', {}).get('event_id') == probe], timeout=30)
    again = b.log_text().count('command from %s' % ALICE)
    check(again == 1, 'the !pause was handled again after the restart (%d times)' % again)
    answers = [e for e in t.hs.events(t.room_id, sender=BOT)
               if rel(e).get('m.in_reply_to', {}).get('event_id') == cmd]
    check(len(answers) == 1, 'answers to !pause: %d' % len(answers))
