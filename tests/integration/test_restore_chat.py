"""Restores from the chat: the plan, two-person approval, and its rules."""
import glob
import json
import os
import re
import subprocess
import time

from harness import (ALICE, BOB, BOT, EVE, Postgres, TestFailure, check, rel, replies, test)
from test_backup_chat import bodies, wait_body

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False

CAROL = '@carol:localhost'


def setup(t, restore='', admins=(ALICE, BOB), pg_extra='', room=None, extra=''):
    """A bot with a PostgreSQL target and one good backup of it."""
    pg = Postgres(t, size_mb=2)
    b = t.bot(admins=admins, rooms=[room] if room else None, extra=extra)
    # the backup role only reads; restores run as a role that may own
    restorer = 'restore_conninfo = host=%s port=%d dbname=%s user=postgres\n' % (
        pg.dir, pg.port, pg.db)
    with open(b.conf) as f:
        conf = f.read()
    conf = conf[:conf.index('[storage]')]
    conf += ('[storage]\nstate_dir = %s\nbackup_dir = %s\n\n[restore]\n%s\n\n%s'
             % (b.state_dir, os.path.join(t.tmp, 'backups'), restore,
                pg.section('main', 'allow_replace = yes\n' + restorer + pg_extra)))
    with open(b.conf, 'w') as f:
        f.write(conf)
    r = subprocess.run([os.environ.get('BACKUPBOT', './backupbot'), '-c', b.conf, 'backup', 'main'],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, 'backup failed: %s%s' % (r.stdout, r.stderr))
    bid = re.search(r'(main-\d{8}T\d{6}Z)', r.stdout).group(1)
    b.start()
    return pg, b, bid


def plan_of(t, room=None, count=1):
    """The newest plan: (its event, the request id)."""
    room = room or t.room_id
    deadline = time.time() + 60
    while True:
        plans = [e for e in replies(t.hs.events(room, sender=BOT))
                 if e['content']['body'].startswith('🔐 Restore request')]
        if len(plans) >= count:
            ev = plans[count - 1]
            return ev, re.search(r'Restore request (\w{6})', ev['content']['body']).group(1)
        if time.time() > deadline:
            raise TestFailure('no plan; the bot said: %r' % bodies(t))
        time.sleep(0.1)


def react(t, sender, event_id, key='✅', room=None):
    return t.hs.send(room or t.room_id, sender, type='m.reaction',
                     content={'m.relates_to': {'rel_type': 'm.annotation',
                                               'event_id': event_id, 'key': key}})


def databases(pg):
    return set(pg.psql('SELECT datname FROM pg_database', db='postgres').split('\n'))


def restore_jobs(b):
    path = os.path.join(b.state_dir, 'ledger.jsonl')
    if not os.path.exists(path):
        return []
    return [json.loads(x) for x in open(path)
            if json.loads(x).get('kind') == 'restore' and json.loads(x)['event'] == 'start']


def said_nothing_new(t, before, seconds=1.5):
    time.sleep(seconds)
    return bodies(t)[len(before):]


@test
def restore_runs_after_another_admins_approval(t):
    pg, b, bid = setup(t)
    want = pg.fingerprint()
    cmd = t.hs.send(t.room_id, ALICE, '!restore main latest')
    plan, req = plan_of(t)
    body = plan['content']['body']
    check(rel(plan).get('rel_type') == 'm.thread' and rel(plan)['event_id'] == cmd,
          'plan not in the thread')
    for part in (bid, 'hash verified just now', 'create the new database main_restore_',
                 'pg_restore -j', 'compare the row count', 'Expires at', '!approve', req):
        check(part in body, 'plan lacks %r:\n%s' % (part, body))
    check('main_restore_' not in ' '.join(databases(pg)), 'something ran before approval')
    # a stranger's ✅ is ignored; the requester's own does not count
    before = bodies(t)
    react(t, EVE, plan['event_id'])
    react(t, ALICE, plan['event_id'])
    wait_body(t, 'your own approval does not count')
    check(not any('approved' in x for x in bodies(t)[len(before):]), bodies(t)[len(before):])
    check(restore_jobs(b) == [], 'a restore started without approval')
    react(t, BOB, plan['event_id'])
    wait_body(t, 'approved by %s' % BOB)
    done = wait_body(t, '✅ restore of main', timeout=120)[0]
    into = re.search(r'(main_restore_\d{12})', done).group(1)
    check('compared with the manifest, all equal' in done, done)
    check(pg.fingerprint(into) == want, 'restored data differs')
    check(pg.fingerprint() == want, 'the live database changed')
    # it runs once: a late approval does nothing
    t.hs.send(t.room_id, BOB, '!approve %s' % req)
    wait_body(t, 'approvals no longer apply')
    check(len(restore_jobs(b)) == 1, 'restore jobs: %r' % restore_jobs(b))
    state = json.load(open(os.path.join(b.state_dir, 'approvals', req + '.json')))
    check(state['state'] == 'done' and state['approvers'] == [BOB], state)


def two_approvals_needed(t):
    """Three admins, two approvals needed; ALICE asked for a restore:
    (pg, bot, room, the plan event, the request id)."""
    t.hs.user(CAROL, password='pw-carol')
    room = t.hs.room(creator=ALICE, members=[ALICE, BOB, CAROL, EVE, BOT])
    t.room_id = room
    pg, b, bid = setup(t, restore='approvals_required = 2', admins=(ALICE, BOB, CAROL))
    t.hs.send(room, ALICE, '!restore main %s' % bid)
    plan, req = plan_of(t)
    return pg, b, room, plan, req


@test
def approvals_count_once_and_a_denial_stops_it(t):
    pg, b, room, plan, req = two_approvals_needed(t)
    check('2 other admins approve' in plan['content']['body'], plan['content']['body'])
    react(t, BOB, plan['event_id'])
    wait_body(t, '1 of 2 approval(s)')
    t.hs.send(room, BOB, '!approve %s' % req)
    wait_body(t, 'already approved')
    react(t, BOB, plan['event_id'])     # the same admin again, by reaction
    time.sleep(1)
    check(restore_jobs(b) == [], 'one admin twice started a restore')
    t.hs.send(room, ALICE, '!deny %s' % req)
    wait_body(t, 'denied by %s' % ALICE)
    react(t, CAROL, plan['event_id'])
    wait_body(t, 'is denied by %s' % ALICE)
    time.sleep(1)
    check(restore_jobs(b) == [], 'a denied request ran')
    check(not any(d.startswith('main_restore') for d in databases(pg)), databases(pg))


@test
def expired_request_does_not_run(t):
    pg, b, bid = setup(t, restore='approval_timeout = 5s')
    t.hs.send(t.room_id, ALICE, '!restore main')
    plan, req = plan_of(t)
    wait_body(t, '%s expired at' % req, timeout=20)
    react(t, BOB, plan['event_id'])
    t.hs.send(t.room_id, BOB, '!approve %s' % req)
    wait_body(t, 'is expired; approvals no longer apply', count=2)
    check(restore_jobs(b) == [], 'an expired request ran')


@test
def pending_request_survives_a_restart_and_counts_reactions_given_meanwhile(t):
    pg, b, bid = setup(t)
    t.hs.send(t.room_id, ALICE, '!restore main latest')
    plan, req = plan_of(t)
    # let the bot learn the plan's event id and store it
    deadline = time.time() + 10
    path = os.path.join(b.state_dir, 'approvals', req + '.json')
    while 'plan_event' not in json.load(open(path)) and time.time() < deadline:
        time.sleep(0.05)
    b.stop()
    react(t, BOB, plan['event_id'])
    before = len(t.hs.call('GET', '/_test/requests')['requests'])
    b.start()
    done = wait_body(t, '✅ restore of main', timeout=120)[0]
    check('main_restore_' in done, done)
    reqs = t.hs.call('GET', '/_test/requests')['requests'][before:]
    check(any('/relations/' in (r.get('path') or '') for r in reqs),
          'the relations API was not asked: %r' % [r.get('path') for r in reqs][:20])
    check(len(restore_jobs(b)) == 1, restore_jobs(b))


@test
def restore_and_approve_from_the_backlog_are_not_run(t):
    pg, b, bid = setup(t)
    t.hs.send(t.room_id, ALICE, '!restore main latest')
    plan, req = plan_of(t)
    b.stop()
    t.hs.send(t.room_id, BOB, '!approve %s' % req)
    t.hs.send(t.room_id, BOB, '!restore main latest')
    b.start()
    wait_body(t, 'sent while I was offline', count=2)
    time.sleep(1)
    check(restore_jobs(b) == [], 'ran from the backlog: %r' % restore_jobs(b))
    state = json.load(open(os.path.join(b.state_dir, 'approvals', req + '.json')))
    check(state['state'] == 'pending' and state['approvers'] == [], state)
    # asked again live, it works
    t.hs.send(t.room_id, BOB, '!approve %s' % req)
    wait_body(t, '✅ restore of main', timeout=120)


@test
def hostile_restore_arguments_are_refused_before_any_process(t):
    pg, b, bid = setup(t)
    cases = [
        ('!restore main "latest; rm -rf /"', 'Not a backup id'),
        ('!restore main ../../etc/passwd', 'Not a backup id'),
        ('!restore main ' + 'x' * 3000, 'Not a backup id'),
        ('!restore m\u0430in latest', 'No target'),          # Cyrillic a
        ('!restore main latest --into ../../x', '--into needs a database name'),
        ('!restore main latest --into "x; DROP DATABASE main"', '--into needs a database name'),
        ('!restore main latest --bogus', 'I cannot use'),
        ('!restore main latest --flush', '--flush is for Redis'),
        ('!restore main latest --into a --into b', 'I cannot use'),
        ('!restore main ' + 'y' * 10000, 'Cannot read that command'),
    ]
    for text, answer in cases:
        t.hs.send(t.room_id, ALICE, text)
        wait_body(t, answer)
    time.sleep(1)
    check(not glob.glob(os.path.join(b.state_dir, 'approvals', '*.json')), 'a request was made')
    ledger = os.path.join(b.state_dir, 'ledger.jsonl')
    check(not os.path.exists(ledger) or open(ledger).read() == '', 'a job started')
    check(not any('🔐' in x for x in bodies(t)), 'a plan was posted')


@test
def damaged_backup_is_refused_before_a_plan(t):
    pg, b, bid = setup(t)
    data = [p for p in glob.glob(os.path.join(t.tmp, 'backups', 'main', bid + '.*'))
            if not p.endswith('.json')][0]
    with open(data, 'r+b') as f:
        f.seek(100)
        c = f.read(1)
        f.seek(100)
        f.write(bytes([c[0] ^ 0xff]))
    t.hs.send(t.room_id, ALICE, '!restore main latest')
    msg = wait_body(t, 'cannot restore main')[0]
    check('damaged' in msg and 'Nothing was touched' in msg, msg)
    check(not any('🔐' in x for x in bodies(t)), 'a plan was posted for a damaged backup')


@test
def one_admin_server_confirms_its_own_restore(t):
    pg, b, bid = setup(t, restore='approvals_required = 0', admins=(ALICE,))
    t.hs.send(t.room_id, ALICE, '!restore main latest --replace')
    plan, req = plan_of(t)
    check('approvals_required = 0' in plan['content']['body'], plan['content']['body'])
    check('rename it to mastodon_before_restore_' in plan['content']['body'], plan['content']['body'])
    t.hs.send(t.room_id, ALICE, '!approve %s' % req)
    wait_body(t, '✅ restore of main', timeout=120)
    dbs = databases(pg)
    check(any(d.startswith('mastodon_before_restore_') for d in dbs), dbs)


@test
def without_other_admins_a_restore_is_refused_plainly(t):
    pg, b, bid = setup(t, admins=(ALICE,))
    t.hs.send(t.room_id, ALICE, '!restore main latest')
    msg = wait_body(t, 'No restore is possible')[0]
    check('approvals_required = 0' in msg, msg)


def redact(t, sender, event_id, room=None):
    return t.hs.call('POST', '/_test/rooms/%s/redact' % (room or t.room_id),
                     {'sender': sender, 'event_id': event_id})['event_id']


@test
def a_redacted_approval_is_withdrawn_live_and_across_a_restart(t):
    pg, b, room, plan, req = two_approvals_needed(t)
    yes = react(t, BOB, plan['event_id'])
    wait_body(t, '1 of 2 approval(s)')
    redact(t, BOB, yes)
    said = wait_body(t, '%s withdrew the approval of %s' % (BOB, req))[0]
    check('0 of 2 approval(s)' in said, said)
    yes2 = react(t, CAROL, plan['event_id'])
    wait_body(t, '1 of 2 approval(s)', count=2)
    check(restore_jobs(b) == [], 'a withdrawn approval still counted')
    # withdrawn while the bot is down: after the restart, /relations and
    # the live view agree
    b.stop()
    redact(t, CAROL, yes2)
    b.start()
    wait_body(t, '%s withdrew the approval of %s' % (CAROL, req))
    react(t, BOB, plan['event_id'])
    wait_body(t, '1 of 2 approval(s)', count=3)
    time.sleep(1)
    check(restore_jobs(b) == [], 'a restore started on a withdrawn approval')


@test
def a_command_redacted_before_it_is_handled_is_not_run(t):
    b = t.bot().start()
    b.stop()
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    redact(t, ALICE, cmd)
    probe = t.hs.send(t.room_id, BOB, '!help')
    b.start()
    t.hs.wait(t.room_id, 1)     # !help's answer (answers ready at once get no 👀)
    time.sleep(1.5)             # time for a !status answer, were it run
    got = [rel(e).get('m.in_reply_to', {}).get('event_id') for e in replies(t.hs.events(t.room_id, sender=BOT))]
    check(got == [probe], 'a redacted command ran: %r' % got)
