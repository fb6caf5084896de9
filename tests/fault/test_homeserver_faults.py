"""The homeserver misbehaving: down for 2 minutes, hanging without an
answer, restarting and forgetting transaction ids, storing a message and
losing the answer.

(A 429 storm: tests/integration/test_protocol.py::
storm_of_429_delivers_everything_once_in_order.)
"""
import time

from faultlib import (ALICE, BOB, BOT, bodies, check, edits, ledger, parallel, rel, replies,
                      said, wait_body, wait_for)
from harness import test
from test_backup_chat import setup as chat_setup
from test_restore_chat import plan_of, react, restore_jobs
from test_restore_chat import setup as restore_setup
from test_backup_chat import slow_pg_dump


def bot_events(t):
    """The bot's events as the homeserver stored them, with their txnIds."""
    return [e for e in t.hs.call('GET', '/_test/events?room_id=%s&sender=%s'
                                 % (t.room_id, BOT))['events'] if 'state_key' not in e['event']]


def answers_to(t, cmd):
    return [e for e in replies(t.hs.events(t.room_id, sender=BOT))
            if rel(e).get('m.in_reply_to', {}).get('event_id') == cmd
            and rel(e).get('rel_type') != 'm.replace']


def acks_of(t, cmd):
    return [e for e in t.hs.events(t.room_id, sender=BOT, type='m.reaction')
            if rel(e).get('event_id') == cmd]


def ended(b):
    return [x for x in ledger(b) if x['event'] == 'end']


@test
@parallel
def homeserver_down_for_2_minutes_loses_nothing_and_sends_nothing_twice(t):
    pg, b = chat_setup(t, size_mb=1, pg_extra='pg_dump = %s' % slow_pg_dump(t, 4))
    before = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '⏳ backup of main')
    progress = [e for e in replies(t.hs.events(t.room_id, sender=BOT))
                if e['content']['body'].startswith('⏳ backup of main')][0]['event_id']
    t.hs.fault('outage', duration_ms=120000)
    t0 = time.time()
    during = [t.hs.send(t.room_id, who, '!status') for who in (ALICE, BOB)]
    # the backup ends while nobody can be told
    wait_for('the backup to end during the outage', lambda: ended(b), timeout=60)
    check(ended(b)[0]['status'] == 'ok', 'the backup: %r' % ended(b))
    time.sleep(max(0, 110 - (time.time() - t0)))
    late = t.hs.send(t.room_id, BOB, '!help')
    # sync and sends back off to at most 60 s: all is through by then
    summary = wait_body(t, '✅ backup of main', timeout=120 + 75 - (time.time() - t0))
    back = time.time() - t0
    check(back >= 119, 'the outage did not last: %.0fs' % back)
    for cmd in during + [late]:
        wait_for('an answer to %s' % cmd, lambda: answers_to(t, cmd),
                 timeout=max(1, 120 + 75 - (time.time() - t0)))
    time.sleep(1)
    for cmd in [before] + during + [late]:
        check(len(answers_to(t, cmd)) == 1 and not acks_of(t, cmd),
              '%s: %d answers, %d 👀' % (cmd, len(answers_to(t, cmd)), len(acks_of(t, cmd))))
    check(len(summary) == 1, 'summaries: %r' % summary)
    # the progress message ends as the result, not as a bar from before
    last = [body for ev, body in edits(t) if ev == progress]
    check(last and last[-1].startswith('✅'), 'the progress message ends as %r' % last[-1:])
    txns = [e['txn_id'] for e in bot_events(t)]
    check(len(txns) == len(set(txns)), 'a txnId twice: %r' % txns)
    # it backed off instead of hammering the dead homeserver
    dropped = [r for r in t.hs.call('GET', '/_test/requests')['requests'] if r['fault'] == 'outage']
    check(0 < len(dropped) <= 60, '%d requests during the 2-minute outage' % len(dropped))
    log = b.log_text()
    check('sync:' in log and 'retrying' in log and 'connection to the homeserver is back' in log,
          'the outage and the recovery are not in the log')


@test
@parallel
def homeserver_that_hangs_does_not_freeze_the_bot(t):
    pg, b = chat_setup(t, size_mb=1)
    # every request to /send/ hangs for 40 s (longer than the bot's 30 s)
    t.hs.fault('slow', count=1, delay_ms=40000, path_regex='/send/')
    t0 = time.time()
    cmd1 = t.hs.send(t.room_id, ALICE, '!backup main')
    b.wait_log('backup of main started', timeout=20)
    # ... and the next /sync hangs 45 s (the bot waits 2 s + 30 s)
    t.hs.fault('slow', count=1, delay_ms=45000, path_regex='/sync')
    time.sleep(3)
    cmd2 = t.hs.send(t.room_id, BOB, '!status')
    # the job is run and finished by the daemon while the homeserver hangs
    wait_for('the backup to end while the homeserver hangs', lambda: ended(b), timeout=25)
    check(ended(b)[0]['status'] == 'ok', 'the backup: %r' % ended(b))
    check(not answers_to(t, cmd1), 'answered although the homeserver hangs')
    wait_body(t, '✅ backup of main', timeout=45)
    wait_for('the answer to !status', lambda: answers_to(t, cmd2), timeout=20)
    took = time.time() - t0
    check(took < 42, 'answers came only after the homeserver answered (%.0fs): the bot '
          'waited for it instead of timing out' % took)
    # the hung send is processed by the homeserver late: still one copy
    time.sleep(max(0, 47 - (time.time() - t0)))
    check(len(acks_of(t, cmd1)) == 1 and len(acks_of(t, cmd2)) == 0,
          '👀: %d and %d' % (len(acks_of(t, cmd1)), len(acks_of(t, cmd2))))
    check(len(answers_to(t, cmd2)) == 1 and len(said(t, '✅ backup of main')) == 1,
          'answers doubled: %r' % bodies(t))
    check('uptime' in answers_to(t, cmd2)[0]['content']['body'], 'not a status')
    txns = [e['txn_id'] for e in bot_events(t)]
    check(len(txns) == len(set(txns)), 'a txnId twice: %r' % txns)
    # it still stops at once on SIGTERM, with a request hanging
    t.hs.fault('slow', count=1, delay_ms=40000, path_regex='/send/')
    t.hs.send(t.room_id, ALICE, '!help')
    b.wait_log('command from %s' % ALICE, count=2, timeout=20)
    time.sleep(0.5)
    t1 = time.time()
    b.stop()
    check(time.time() - t1 < 15, 'SIGTERM took %.0fs with a hung homeserver' % (time.time() - t1))


@test
def homeserver_that_hangs_at_start_up_does_not_hold_up_a_stop(t):
    # the start-up requests (whoami, joined_rooms, ...) hang for 40 s,
    # longer than their 30 s timeout: SIGTERM must not wait for them
    t.hs.fault('slow', count=5, delay_ms=40000, path_regex='/account/whoami|/login|/joined_rooms')
    b = t.bot().start(wait_ready=False)
    time.sleep(2)               # it asks at once; the answer is 40 s away
    check(b.proc.poll() is None, 'the bot exited while waiting: %s' % b.log_text()[-500:])
    t1 = time.time()
    b.stop()                    # exits 0, or this fails
    took = time.time() - t1
    check(took < 3, 'SIGTERM during a hung start-up request took %.1fs' % took)
    check('ready: listening' not in b.log_text(), 'ready although the homeserver hangs')


@test
def homeserver_restart_that_forgets_txn_ids(t):
    b = t.bot().start()
    c1 = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    # The reply to c2 is stored, then the homeserver goes down before it
    # answers (retries are dropped unread), and comes back having
    # forgotten every transaction id.
    t.hs.fault('drop', count=1, after=True, path_regex='/send/m.room.message/')
    t.hs.fault('drop', count=10000, path_regex='/send/m.room.message/')
    c2 = t.hs.send(t.room_id, ALICE, '!help')
    c3 = t.hs.send(t.room_id, BOB, '!status')
    wait_for('the stored reply', lambda: [r for r in t.hs.call('GET', '/_test/requests')['requests']
                                          if r['fault'] == 'drop-after'])
    wait_for('a retry', lambda: [r for r in t.hs.call('GET', '/_test/requests')['requests']
                                 if r['fault'] == 'drop'])
    t.hs.fault('forget_txns')
    t.hs.call('POST', '/_test/reset_faults', {})
    wait_for('answers to both', lambda: answers_to(t, c2) and answers_to(t, c3), timeout=40)
    # ... and the bot restarts too: nothing is sent again, new txnIds
    b.stop()
    b.start()
    c4 = t.hs.send(t.room_id, BOB, '!status')
    wait_for('the answer after the restart', lambda: answers_to(t, c4), timeout=20)
    time.sleep(1)
    for c in (c1, c3, c4):
        check(len(answers_to(t, c)) == 1 and not acks_of(t, c),
              '%s: %d answers, %d 👀' % (c, len(answers_to(t, c)), len(acks_of(t, c))))
    # The reply whose answer was lost is sent again with the same txnId:
    # a homeserver that keeps txnIds over a restart stores it once; this
    # one forgot them, so it shows twice.  The bot cannot tell; nothing is
    # lost.
    evs = bot_events(t)
    copies = [e for e in evs if rel(e['event']).get('m.in_reply_to', {}).get('event_id') == c2]
    check(len(copies) == 2 and len({e['txn_id'] for e in copies}) == 1,
          'the reply in flight: %r' % [(e['txn_id'], e['event']['content']['body'][:30])
                                       for e in copies])
    others = [e['txn_id'] for e in evs if e not in copies]
    check(len(others) == len(set(others)), 'a txnId twice: %r' % others)


@test
def a_newer_edit_never_reuses_the_txn_id_of_a_stored_one(t):
    """Was a bug (fixed; bot/matrix/outbox.c, outbox_push): an edit still in the outbox
    gets the content of a newer edit of the same message, but keeps its
    txnId, even when it was sent already and only the answer was lost.
    The homeserver then treats the newer content as a retransmission: it
    answers with the old event, the newer content is never stored (the
    progress message stays at its old bar although the backup is done),
    and the txnId is reused with different content, which the Matrix
    spec forbids (the test homeserver reports it as a violation)."""
    pg, b = chat_setup(t, size_mb=1, pg_extra='pg_dump = %s' % slow_pg_dump(t, 5))
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '⏳ backup of main')
    progress = [e for e in replies(t.hs.events(t.room_id, sender=BOT))
                if e['content']['body'].startswith('⏳ backup of main')][0]['event_id']
    # from now on the homeserver stores every message, then drops the
    # connection: the bot keeps retrying the first one
    t.hs.fault('drop', count=10000, after=True, path_regex='/send/')
    wait_for('an edit stored and its answer lost', lambda: [
        r for r in t.hs.call('GET', '/_test/requests')['requests'] if r['fault'] == 'drop-after'],
        timeout=20)
    wait_for('the backup to end', lambda: ended(b), timeout=60)
    time.sleep(1)
    t.hs.call('POST', '/_test/reset_faults', {})
    wait_body(t, '✅ backup of main', timeout=90)
    last = [body for ev, body in edits(t) if ev == progress]
    check(last and last[-1].startswith('✅'),
          'the progress message shows %r although the backup is done: the final edit '
          'was sent with the txnId of an edit the homeserver had stored' % (last[-1:],))


@test
def a_reaction_before_the_bot_knows_its_plan_still_counts(t):
    """Was a bug (fixed; bot/daemon/approval.c, approvals_reaction and approvals_tick): a
    ✅ on a restore plan is matched against the plan's event id, which
    the bot learns only from the homeserver's answer to its own send.  A
    ✅ that arrives before that answer (the homeserver stored the plan and
    the answer was lost, or was slow) matches no request and is dropped
    for good: the event is marked seen, and the relations API is read only
    at start-up.  The admin sees the ✅ on the plan and nothing happens."""
    pg, b, bid = restore_setup(t)
    # the plan is stored, but the bot hears nothing back for a while
    t.hs.fault('drop', count=1, after=True, path_regex='/send/m.room.message/')
    t.hs.fault('drop', count=10000, path_regex='/send/m.room.message/')
    t.hs.send(t.room_id, ALICE, '!restore main latest')
    plan, req = plan_of(t)
    n = len(t.hs.call('GET', '/_test/requests')['requests'])
    react(t, BOB, plan['event_id'])
    wait_for('the bot to sync the ✅', lambda: [
        r for r in t.hs.call('GET', '/_test/requests')['requests'][n:]
        if '/sync' in r['path'] and r['status'] == 200], timeout=20)
    time.sleep(0.5)
    t.hs.call('POST', '/_test/reset_faults', {})
    try:
        wait_body(t, 'approved by %s' % BOB, timeout=15)
    except Exception:
        check(False, 'the ✅ given to the plan before the bot knew its event id was never '
              'counted; restore jobs: %r' % restore_jobs(b))
    wait_body(t, '✅ restore of main', timeout=120)
