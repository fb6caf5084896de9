"""The data stores, the remotes and state_dir failing: PostgreSQL down when
the daemon starts, a Redis that refuses SYNC, a remote that fails only on
upload, a state_dir that cannot be written.

(PostgreSQL down mid-dump: tests/integration/test_backup_chat.py::
server_going_down_mid_dump_fails_the_backup; disk full during a backup:
tests/integration/test_backup_cli.py::full_disk_fails_cleanly_and_frees_the_space.)
"""
import json
import os
import re
import subprocess
import time

from faultlib import (ALICE, BOB, BOT, bodies, catalog, check, conf_with, edits, leftovers, mount_tmpfs,
                      rel, replies, shell, verify_quick, wait_body, wait_for)
from harness import BACKUPBOT, CLUSTER, Postgres, Webdav, test

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False


def status_filled_in(t, cmd, timeout=40):
    """The !status answer to cmd once its health probes have reported."""
    def filled():
        answer = [e for e in replies(t.hs.events(t.room_id, sender=BOT))
                  if rel(e).get('m.in_reply_to', {}).get('event_id') == cmd]
        if not answer:
            return None
        for ev, body in reversed(edits(t)):
            if ev == answer[0]['event_id'] and 'Health' in body and 'checking' not in body:
                return body
        return None
    return wait_for('the status to be filled in (the bot said %r)' % bodies(t), filled,
                    timeout=timeout)


@test
def postgres_down_when_the_daemon_starts(t):
    pg = Postgres(t, size_mb=1)
    b = t.bot()
    conf_with(b, pg.section('main'))
    r = shell(b, 'backup', 'main')
    check(r.returncode == 0, 'the first backup: %s%s' % (r.stdout, r.stderr))
    older = re.search(r'(main-\d{8}T\d{6}Z)', r.stdout).group(1)
    pg.stop()
    b.start()          # starts and listens: a database is not the bot's business at start
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    body = status_filled_in(t, cmd)
    check(re.search(r'needs? attention', body.split('\n')[1]), 'problems are not first: %r' % body)
    check('main: cannot connect to PostgreSQL' in body.split('Targets')[0]
          and re.search(r'• main: ✗ cannot connect', body),
          'the status does not say PostgreSQL is down, first and in Health: %r' % body)
    t.hs.send(t.room_id, ALICE, '!backup main')
    msg = wait_body(t, '❌ backup of main failed')[0]
    check('cannot connect to PostgreSQL' in msg and 'refused' in msg, msg)
    check(sorted(os.listdir(os.path.join(t.tmp, 'backups', 'main'))) ==
          sorted([older + '.json', older + '.dump.zst']), 'the backup dir changed: %r'
          % os.listdir(os.path.join(t.tmp, 'backups', 'main')))
    # the server comes back: the next !backup works, without a restart
    r = subprocess.run(['bash', CLUSTER, 'start', pg.dir, str(pg.port)], capture_output=True,
                       text=True, timeout=120)
    check(r.returncode == 0, 'cluster start: %s%s' % (r.stdout, r.stderr))
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '✅ backup of main')
    ids = catalog(b, 'main')
    check(len(ids) == 2 and ids[1] == older, 'catalog: %r' % ids)


@test
def redis_refusing_sync_falls_back_and_says_so_in_the_room(t):
    """Was a bug (fixed; bot/targets/redis/redis.c, redis_backup): with mode = auto, the
    fallback to a logical dump is only a log line of the job (backend_log),
    not a warning in the manifest or the result, so the room's summary is
    a plain ✅ and the operator is not told that the backup is not a
    point-in-time snapshot.  (README: "falling back to logical when the
    server refuses SYNC, and saying so"; a shell gets the line on
    stderr.)"""
    from test_redis import Redis, load
    src = Redis(t, 'src', args=['--rename-command', 'SYNC', ''])
    load(src.client(), 0)
    b = t.bot()
    conf_with(b, src.section('cache') + src.section('strict', 'mode = rdb\n'))
    b.start()
    # mode = rdb: fails, saying why and what to set
    t.hs.send(t.room_id, ALICE, '!backup strict')
    msg = wait_body(t, '❌ backup of strict failed')[0]
    check('refused SYNC' in msg and 'mode = auto or logical' in msg, msg)
    check(os.listdir(os.path.join(t.tmp, 'backups', 'strict')) == [],
          'files: %r' % os.listdir(os.path.join(t.tmp, 'backups', 'strict')))
    # mode = auto: falls back to a logical dump, and says so in the room
    t.hs.send(t.room_id, ALICE, '!backup cache')
    done = wait_body(t, '✅ backup of cache')[0]
    bid = re.search(r'(cache-\d{8}T\d{6}Z)', done).group(1)
    m = json.load(open(os.path.join(t.tmp, 'backups', 'cache', bid + '.json')))
    check(m['mode'] == 'logical' and 'unknown command' in m['fallback_reason'], 'manifest: %r'
          % {k: m.get(k) for k in ('mode', 'fallback_reason')})
    verify_quick(b, bid)
    check('fell back to logical' in b.log_text(), 'the fallback is not in the log')
    check(re.search(r'fell back|logical', done),
          'the room is not told that the backup fell back to a logical dump (not a '
          'point-in-time snapshot); only the daemon log says so. The summary: %r' % done)


@test
def remote_that_fails_only_on_upload(t):
    # rclone serve webdav --read-only: listing works, every upload fails
    pg = Postgres(t, size_mb=1)
    ro = Webdav(t, 'ro', read_only=True)
    rclone_conf = os.path.join(t.tmp, 'rclone.conf')
    with open(rclone_conf, 'w') as f:
        f.write(ro.rclone_section())
    local = os.path.join(t.tmp, 'remote-local')
    b = t.bot()
    conf_with(b, pg.section('main', 'remotes = local, ro') +
              '[remote local]\npath = %s\n\n[remote ro]\npath = ro:store\n' % local,
              storage='rclone_config = %s' % rclone_conf)
    b.start()
    t.hs.send(t.room_id, ALICE, '!backup main')
    msg = wait_body(t, 'backup of main is only partial', timeout=90)[0]
    check(re.search(r'local ✓', msg) and re.search(r'ro ✗ \(remote ro \(ro:store\): ', msg),
          'the summary does not name the failed remote: %r' % msg)
    bid = re.search(r'(main-\d{8}T\d{6}Z)', msg).group(1)
    m = json.load(open(os.path.join(t.tmp, 'backups', 'main', bid + '.json')))
    check(m['status'] == 'partial' and m['remotes']['ro']['status'] == 'failed'
          and m['remotes']['local']['status'] == 'ok', 'manifest: %r' % m['remotes'])
    check(sorted(os.listdir(os.path.join(local, 'main'))) == sorted([bid + '.json', m['file']]),
          'the good remote: %r' % os.listdir(os.path.join(local, 'main')))
    check(not os.path.exists(os.path.join(ro.dir, 'store')), 'something reached the read-only remote')
    verify_quick(b, bid)
    check(catalog(b, 'main') == [bid], 'catalog: %r' % catalog(b, 'main'))
    check(leftovers(os.path.join(t.tmp, 'backups', 'main')) == [], 'leftovers')
    cmd = t.hs.send(t.room_id, BOB, '!status')
    body = status_filled_in(t, cmd)
    problems, health = body.split('Targets')[0], body.split('Health')[1]
    check('newest backup has no copy on remote ro' in problems,
          'the status does not list the remote without a copy among the problems: %r' % body)
    check(re.search(r'remote ro: ✓ reachable', health),
          'listing the read-only remote should work: %r' % body)


@test
def state_dir_that_cannot_be_written(t):
    b = t.bot()
    # at start: read-only (root ignores file modes, not a read-only mount)
    mount_tmpfs(t, b.state_dir, '4m', ',ro')
    p = subprocess.run([BACKUPBOT, '-c', b.conf, 'run'], capture_output=True, text=True,
                       timeout=30)
    check(p.returncode == 1 and 'state_dir: %s: not writable' % b.state_dir in p.stderr
          and 'refusing to start' in p.stderr, 'run with a read-only state_dir:\n%s' % p.stderr)
    check(bodies(t) == [] and t.hs.events(t.room_id, sender=BOT) == [],
          'the bot said something: %r' % bodies(t))
    # while running: state_dir fills up (no space left), then frees up
    subprocess.run(['umount', b.state_dir], check=True)
    mount_tmpfs(t, b.state_dir, '1m')
    b.start()
    c1 = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    filler = os.path.join(b.state_dir, 'filler')
    with open(filler, 'wb') as f:
        try:
            while True:
                f.write(b'\0' * 65536)
                f.flush()
        except OSError:
            pass
    t.hs.send(t.room_id, ALICE, '!status')
    b.wait_log('cannot write', timeout=20)
    time.sleep(1)
    check(b.proc.poll() is None, 'the daemon died:\n%s' % b.log_text()[-2000:])
    os.unlink(filler)
    c3 = t.hs.send(t.room_id, BOB, '!status')
    wait_for('an answer once state_dir has space again', lambda: [
        e for e in replies(t.hs.events(t.room_id, sender=BOT))
        if rel(e).get('m.in_reply_to', {}).get('event_id') == c3], timeout=30)
    # and a restart after that neither repeats nor loses what was answered
    b.stop()
    b.start()
    c4 = t.hs.send(t.room_id, BOB, '!help')
    wait_for('an answer after the restart', lambda: [
        e for e in replies(t.hs.events(t.room_id, sender=BOT))
        if rel(e).get('m.in_reply_to', {}).get('event_id') == c4], timeout=30)
    answered = [rel(e)['m.in_reply_to']['event_id'] for e in replies(t.hs.events(t.room_id, sender=BOT))
                if 'm.in_reply_to' in rel(e)]
    check(answered.count(c1) == 1 and answered.count(c3) == 1 and answered.count(c4) == 1,
          'answers: %r' % answered)


@test
def refusing_to_start_frees_everything_and_says_why(t):
    """Was a bug (fixed), seen under AddressSanitizer (make test-asan) only
    (bot/daemon/bot.c, bot_run and bot_check): when bot_open fails (here: a
    state_dir that cannot be written), it returns with bot->cfg (and what
    it opened before the failure) still allocated, and neither caller
    calls bot_free.  LeakSanitizer reports the leak at exit, and for
    `check` the leak report's exit loses the buffered stdout, so the
    operator does not even see which state_dir is wrong."""
    b = t.bot()
    mount_tmpfs(t, b.state_dir, '1m', ',ro')
    for cmd in ('run', 'check'):
        p = subprocess.run([BACKUPBOT, '-c', b.conf, cmd], capture_output=True, text=True,
                           timeout=30)
        check(p.returncode != 0 and b.state_dir in p.stdout + p.stderr,
              '%s with a read-only state_dir: exit %s\n%s%s' % (cmd, p.returncode, p.stdout,
                                                               p.stderr[:1500]))
        check('LeakSanitizer' not in p.stderr, '%s leaks when it refuses to start:\n%s'
              % (cmd, p.stderr[:1500]))
