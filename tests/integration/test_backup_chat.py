"""Backups from the chat: jobs, progress, summaries, cancel, crashes."""
import glob
import json
import os
import signal
import subprocess
import time

from harness import (ALICE, BOB, BOT, Postgres, check, rel, replies, test)

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False


def bodies(t):
    """What the bot said, without edits (they repeat a message)."""
    return [e['content'].get('body', '') for e in replies(t.hs.events(t.room_id, sender=BOT))
            if rel(e).get('rel_type') != 'm.replace']


def wait_body(t, text, timeout=60, count=1):
    """Wait until the bot has posted `count` messages containing text."""
    deadline = time.time() + timeout
    while True:
        got = [b for b in bodies(t) if text in b]
        if len(got) >= count:
            return got
        if time.time() > deadline:
            raise TestFailure_('no message with %r within %ss; the bot said: %r'
                               % (text, timeout, bodies(t)))
        t.hs.call('POST', '/_test/wait', dict(room_id=t.room_id, sender=BOT, count=10**9,
                  timeout_ms=200), ok=(200, 408))


def TestFailure_(msg):
    from harness import TestFailure
    return TestFailure(msg)


def slow_pg_dump(t, seconds):
    """A pg_dump that waits before dumping (a big database, in effect)."""
    path = os.path.join(t.tmp, 'slow-pg_dump-marker')
    with open(path, 'w') as f:
        f.write('#!/bin/sh\n[ "$1" = --version ] && exec pg_dump "$@"\nsleep %d\nexec pg_dump "$@"\n'
                % seconds)
    os.chmod(path, 0o755)
    return path


def setup(t, extra_target='', pg_extra='', size_mb=3, storage=''):
    pg = Postgres(t, size_mb=size_mb)
    extra = ('\n[storage]\nstate_dir = %s\nbackup_dir = %s\n%s\n%s%s'
             % (os.path.join(t.tmp, 'bot-state'), os.path.join(t.tmp, 'backups'), storage,
                pg.section('main', pg_extra), extra_target))
    b = t.bot()
    with open(b.conf) as f:
        conf = f.read()
    # replace the harness' [storage] with ours (targets need it first)
    conf = conf[:conf.index('[storage]')] + extra
    with open(b.conf, 'w') as f:
        f.write(conf)
    b.start()
    return pg, b


@test
def backup_in_chat_with_progress_and_summary(t):
    pg, b = setup(t)
    cmd = t.hs.send(t.room_id, ALICE, '!backup main')
    done = wait_body(t, '✅ backup of main')[0]
    evs = t.hs.events(t.room_id, sender=BOT)
    acks = [e for e in evs if e['type'] == 'm.reaction' and rel(e).get('event_id') == cmd]
    check(len(acks) == 1, 'no 👀')
    msgs = [e for e in replies(evs) if rel(e).get('rel_type') == 'm.thread']
    check(all(rel(e)['event_id'] == cmd for e in msgs), 'replies outside the thread')
    progress = [e for e in msgs if e['content']['body'].startswith('⏳')]
    check(len(progress) == 1, 'expected one progress message: %r' % [m['content']['body'] for m in msgs])
    edits = [e for e in replies(evs) if rel(e).get('rel_type') == 'm.replace'
             and rel(e).get('event_id') == progress[0]['event_id']]
    check(edits and edits[-1]['content']['m.new_content']['body'].startswith('✅'),
          'progress message not edited to the result: %r' % [e['content'] for e in edits])
    check('blake2b' in done and 'main-' in done, done)
    # the backup is real: it restores to the same data
    man = json.load(open(glob.glob(os.path.join(t.tmp, 'backups', 'main', '*.json'))[0]))
    pg.restore_copy(b.conf, man['id'], 'restored')
    check(pg.fingerprint('restored') == pg.fingerprint(), 'restored data differs')
    t.hs.send(t.room_id, BOB, '!list')
    lst = wait_body(t, 'Catalog')[0]
    check(man['id'] in lst and 'kept as' in lst, lst)


@test
def second_backup_is_refused_and_status_stays_responsive(t):
    pg, b = setup(t, pg_extra='pg_dump = %s' % slow_pg_dump(t, 6))
    first = t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '⏳ backup of main')
    t0 = time.time()
    t.hs.send(t.room_id, BOB, '!status')
    st = wait_body(t, 'uptime', timeout=10)[0]
    check(time.time() - t0 < 3, 'status took %.1fs during a backup' % (time.time() - t0))
    check('job 1: backup running' in st, st)
    t.hs.send(t.room_id, BOB, '!backup main')
    again = wait_body(t, 'already running')[0]
    check(ALICE in again and first in again, 'no link to the running job: %r' % again)
    wait_body(t, '✅ backup of main', timeout=60)


@test
def cancel_stops_the_whole_process_group(t):
    slow = slow_pg_dump(t, 60)
    pg, b = setup(t, pg_extra='pg_dump = %s' % slow)
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '⏳ backup of main')
    t.hs.send(t.room_id, BOB, '!cancel main')
    msg = wait_body(t, 'cancelled by', timeout=20)[0]
    check(BOB in msg, msg)
    left = subprocess.run(['pgrep', '-f', slow], capture_output=True, text=True).stdout
    check(left == '', 'processes left after cancel: %r' % left)
    check(glob.glob(os.path.join(t.tmp, 'backups', 'main', '*.partial')) == [], 'partial left')
    ledger = [json.loads(x) for x in open(os.path.join(t.tmp, 'bot-state', 'ledger.jsonl'))]
    check(ledger[-1]['event'] == 'end' and ledger[-1].get('cancelled_by') == BOB, ledger[-1])


@test
def failures_are_reported_with_the_cause(t):
    pg, b = setup(t)
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '✅ backup of main')
    good = glob.glob(os.path.join(t.tmp, 'backups', 'main', '*'))
    with open(pg.password_file, 'w') as f:
        f.write('wrong\n')
    t.hs.send(t.room_id, ALICE, '!backup main')
    msg = wait_body(t, '❌ backup of main failed')[0]
    check('password' in msg or 'authentication' in msg, msg)
    check(sorted(glob.glob(os.path.join(t.tmp, 'backups', 'main', '*'))) == sorted(good),
          'files changed after a failed backup')
    t.hs.send(t.room_id, ALICE, '!backup nosuch')
    check('No target "nosuch"' in wait_body(t, 'No target')[0], 'unknown target')
    t.hs.send(t.room_id, ALICE, '!backup ../../etc')
    wait_body(t, 'Not a target name')


@test
def a_crashed_job_is_reported_and_cleaned_up(t):
    pg, b = setup(t, pg_extra='pg_dump = %s' % slow_pg_dump(t, 60))
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '⏳ backup of main')
    # this test's job only: others may run in parallel
    job = subprocess.run(['pgrep', '-f', '%s job backup main' % b.conf], capture_output=True,
                         text=True).stdout.split()
    check(len(job) == 1, 'job child not found: %r' % job)
    os.kill(int(job[0]), signal.SIGKILL)
    msg = wait_body(t, '❌ backup of main failed', timeout=20)[0]
    check('killed by signal 9' in msg, msg)
    t.hs.send(t.room_id, ALICE, '!status')
    check('uptime' in wait_body(t, 'uptime')[0], 'daemon not answering after a job crash')


@test
def daemon_killed_mid_backup_reports_interrupted_job(t):
    slow = slow_pg_dump(t, 60)
    pg, b = setup(t, pg_extra='pg_dump = %s' % slow)
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '⏳ backup of main')
    b.kill9()
    # the job dies with the daemon (it does not outlive its parent)
    deadline = time.time() + 10
    while subprocess.run(['pgrep', '-f', slow], capture_output=True).returncode == 0:
        check(time.time() < deadline, 'the job outlived the daemon')
        time.sleep(0.1)
    partial = os.path.join(t.tmp, 'backups', 'main', 'main-20000101T000000Z.partial')
    with open(partial, 'w') as f:
        f.write('leftover')
    b.start()
    msg = wait_body(t, 'was interrupted')[0]
    check(ALICE in msg, msg)
    check(not os.path.exists(partial), 'leftover partial not removed')


@test
def backup_all_queues_beyond_max_parallel_jobs(t):
    slow = slow_pg_dump(t, 2)
    pg = Postgres(t, size_mb=2)
    b = t.bot()
    with open(b.conf) as f:
        conf = f.read()
    conf = conf[:conf.index('[storage]')] + (
        '[storage]\nstate_dir = %s\nbackup_dir = %s\nmax_parallel_jobs = 1\n%s%s'
        % (os.path.join(t.tmp, 'bot-state'), os.path.join(t.tmp, 'backups'),
           pg.section('one', 'pg_dump = %s' % slow), pg.section('two')))
    with open(b.conf, 'w') as f:
        f.write(conf)
    b.start()
    t.hs.send(t.room_id, ALICE, '!backup all')
    q = wait_body(t, 'queued')[0]
    check('max_parallel_jobs = 1' in q, q)
    wait_body(t, '✅ backup of one', timeout=60)
    wait_body(t, '✅ backup of two', timeout=60)
    table = wait_body(t, 'Summary', timeout=20)[0]
    check('✅ one ok' in table and '✅ two ok' in table, table)


@test
def server_going_down_mid_dump_fails_the_backup(t):
    # pg_dump streams for real, but a slow reader holds it mid-dump
    wrapper = os.path.join(t.tmp, 'midway-pg_dump')
    with open(wrapper, 'w') as f:
        f.write('#!/bin/bash\nset -o pipefail\n[ "$1" = --version ] && exec pg_dump "$@"\n'
                'pg_dump "$@" | { head -c 300000; touch %s/midway; sleep 4; cat; }\n' % t.tmp)
    os.chmod(wrapper, 0o755)
    pg, b = setup(t, size_mb=20, pg_extra='pg_dump = %s\ncompression = none' % wrapper)
    t.hs.send(t.room_id, ALICE, '!backup main')
    deadline = time.time() + 30
    while not os.path.exists(os.path.join(t.tmp, 'midway')):
        check(time.time() < deadline, 'the dump never started')
        time.sleep(0.05)
    subprocess.run(['bash', os.path.join(os.path.dirname(__file__), '..', 'pg', 'cluster.sh'),
                    'stop', pg.dir], capture_output=True, timeout=60)
    msg = wait_body(t, '❌ backup of main failed', timeout=60)[0]
    check('pg_dump' in msg and 'status' in msg, msg)
    check(glob.glob(os.path.join(t.tmp, 'backups', 'main', '*')) == [],
          'files left after a failed dump: %r' % os.listdir(os.path.join(t.tmp, 'backups', 'main')))


@test
def verify_in_chat_proves_a_backup_or_finds_the_damage(t):
    pg, b = setup(t, pg_extra='compression = none')
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '✅ backup of main')
    t.hs.send(t.room_id, BOB, '!verify main')
    ok = wait_body(t, '✅ restore drill of main')[0]
    check('scratch copy bbdrill_main_' in ok and 'tables compared with the manifest, all equal' in ok
          and 'dropped' in ok, ok)
    for bad in ('main ../../etc/passwd', 'main "latest; rm -rf /"', 'nosuch', 'main ' + 'x' * 300,
                'main other-20261126T030000Z'):
        t.hs.send(t.room_id, ALICE, '!verify ' + bad)
    wait_body(t, 'is not a backup id of main', count=3)
    wait_body(t, 'No target "nosuch"')
    data = [f for f in glob.glob(os.path.join(t.tmp, 'backups', 'main', '*')) if not f.endswith('.json')][0]
    with open(data, 'r+b') as f:
        f.seek(os.path.getsize(data) // 2)
        c = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([c[0] ^ 0xff]))
    t.hs.send(t.room_id, BOB, '!verify main latest')
    bad = wait_body(t, '❌ verification of main failed')[0]
    check('hash' in bad, bad)
    check(subprocess.run(['pgrep', '-f', '%s job verify' % b.conf],
                         capture_output=True).returncode != 0,
          'a verify job is still running')
