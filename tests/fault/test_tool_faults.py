"""Tools killed mid-transfer: rclone copying a backup to a remote, and the
redis-server a snapshot is streamed from.

(kill -9 of pg_dump: tests/integration/test_backup_cli.py::
failed_backups_leave_nothing_and_keep_the_older_one.)
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time

from faultlib import (ALICE, catalog, check, conf_with, leftovers, pgrep, said, script, verify_quick,
                      wait_body, wait_for, wait_gone)
from harness import BACKUPBOT, test
from test_backup_chat import setup as chat_setup

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False

REAL_RCLONE = shutil.which('rclone') or '/usr/bin/rclone'


def rclone_pids(pattern):
    return [int(line.split()[0]) for line in pgrep(pattern).splitlines()]


def kill_copy(t, remote_dir, data_name, nth):
    """Wait for rclone's copy of data_name to be under way (bytes on the
    remote), then kill -9 it.  Returns how many bytes had arrived."""
    dest = os.path.join(remote_dir, 'main', data_name)
    pattern = 'copyto .*%s' % re.escape(os.path.join(t.tmp, 'backups', 'main', data_name))
    before = os.stat(dest).st_mtime_ns if os.path.exists(dest) else None
    pids = wait_for('copy %d of %s to start' % (nth, data_name), lambda: rclone_pids(pattern),
                    timeout=60)

    def writing():
        try:
            st = os.stat(dest)
        except FileNotFoundError:
            return False
        return st.st_size > 0 and st.st_mtime_ns != before
    wait_for('bytes of copy %d on the remote' % nth, writing, timeout=30)
    arrived = os.path.getsize(dest)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_for('the killed rclone to be gone', lambda: not rclone_pids(pattern) or
             rclone_pids(pattern) != pids, timeout=10)
    return arrived


@test
def rclone_killed_mid_copy_is_retried_then_partial_and_names_the_remote(t):
    remote_dir = os.path.join(t.tmp, 'remote-slow')
    slow = os.path.join(t.tmp, 'slow-copies')
    # rclone, slowed down to 64 KiB/s for copies to the remote while the
    # marker file exists; everything else is the real rclone
    w = script(t, 'bin/rclone', 'if [ "$1" = copyto ] && [ -e %s ]; then\n'
               '  exec %s "$@" --bwlimit 64k\nfi\nexec %s "$@"\n' % (slow, REAL_RCLONE, REAL_RCLONE))
    pg, b = chat_setup(t, size_mb=3, storage='rclone = %s' % w, pg_extra='remotes = slow',
                       extra_target='[remote slow]\npath = %s\n' % remote_dir)

    # 1. the first copy is killed, the retry gets through: ok, and the
    # truncated copy was replaced by a whole one
    open(slow, 'w').close()
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '⏳ backup of main')
    bid = wait_for('the backup id', lambda: [n[:-5] for n in os.listdir(os.path.join(
        t.tmp, 'backups', 'main')) if n.endswith('.json')], timeout=60)[0]
    data = json.load(open(os.path.join(t.tmp, 'backups', 'main', bid + '.json')))['file']
    size = os.path.getsize(os.path.join(t.tmp, 'backups', 'main', data))
    arrived = kill_copy(t, remote_dir, data, 1)
    check(0 < arrived < size, 'not killed mid-transfer: %d of %d bytes' % (arrived, size))
    os.unlink(slow)
    done = wait_body(t, '✅ backup of main', timeout=60)[0]
    check('slow ✓' in done, 'the retry did not make a good copy: %r' % done)
    with open(os.path.join(t.tmp, 'backups', 'main', data), 'rb') as f1, \
            open(os.path.join(remote_dir, 'main', data), 'rb') as f2:
        check(f1.read() == f2.read(), 'the copy on the remote differs from the backup')
    check('retrying' in b.log_text(), 'no retry was logged')
    first = bid

    # 2. every copy is killed: partial, the remote named, the local
    # backup good and listed, no manifest on the remote
    open(slow, 'w').close()
    t.hs.send(t.room_id, ALICE, '!backup main')
    second = wait_for('the second backup id', lambda: [n[:-5] for n in os.listdir(os.path.join(
        t.tmp, 'backups', 'main')) if n.endswith('.json') and n[:-5] != first], timeout=60)[0]
    data2 = json.load(open(os.path.join(t.tmp, 'backups', 'main', second + '.json')))['file']
    kill_copy(t, remote_dir, data2, 1)
    kill_copy(t, remote_dir, data2, 2)
    msg = wait_body(t, 'backup of main is only partial', timeout=60)[0]
    check(second in msg and re.search(r'slow ✗ \(.*(killed|signal 9)', msg),
          'the summary does not name the remote and the cause: %r' % msg)
    check(not said(t, '✅ backup of main')[1:], 'a second ✅: %r' % said(t, '✅ backup of main'))
    m = json.load(open(os.path.join(t.tmp, 'backups', 'main', second + '.json')))
    check(m['status'] == 'partial' and m['remotes']['slow']['status'] == 'failed',
          'manifest: %r %r' % (m['status'], m['remotes']))
    check(not os.path.exists(os.path.join(remote_dir, 'main', second + '.json')),
          'a manifest went to the remote for a copy that failed')
    check(leftovers(os.path.join(t.tmp, 'backups', 'main')) == [], 'leftovers: %r'
          % leftovers(os.path.join(t.tmp, 'backups', 'main')))
    wait_gone('%s job backup' % b.conf)
    verify_quick(b, second)
    verify_quick(b, first)
    check(catalog(b, 'main') == [second, first], 'catalog: %r' % catalog(b, 'main'))
    # a catalog rebuilt from the remote takes only what got there whole
    fresh = os.path.join(t.tmp, 'fresh.conf')
    with open(b.conf) as f:
        text = f.read()
    with open(fresh, 'w') as f:
        f.write(text.replace('backup_dir = %s' % os.path.join(t.tmp, 'backups'),
                             'backup_dir = %s' % os.path.join(t.tmp, 'fresh')))
    r = subprocess.run([BACKUPBOT, '-c', fresh, 'catalog',
                        '--from', 'slow'], capture_output=True, text=True, timeout=120)
    check('added ' + first in r.stdout and second not in r.stdout,
          'catalog --from slow:\n%s%s' % (r.stdout, r.stderr))
    t.hs.send(t.room_id, ALICE, '!list main')
    lst = wait_body(t, 'Catalog')[0]
    check(second in lst and first in lst, lst)


@test
def redis_server_killed_mid_transfer_fails_the_backup_and_keeps_the_older_one(t):
    from test_redis import Redis
    # a snapshot that takes seconds to stream: every key is saved slowly
    src = Redis(t, 'src', args=['--rdb-key-save-delay', '400'])
    c = src.client()
    c.pipeline([('SET', 'key:%06d' % i, 'v' * 100) for i in range(20000)])
    b = t.bot()
    conf_with(b, src.section('cache', 'mode = rdb\n'))
    b.start()
    # an older backup, made while the server was quick
    c.call('CONFIG', 'SET', 'rdb-key-save-delay', '0')
    t.hs.send(t.room_id, ALICE, '!backup cache')
    wait_body(t, '✅ backup of cache')
    older = [n[:-5] for n in os.listdir(os.path.join(t.tmp, 'backups', 'cache'))
             if n.endswith('.json')]
    check(len(older) == 1, 'older backup: %r' % older)
    c.call('CONFIG', 'SET', 'rdb-key-save-delay', '400')

    pid = int(open(os.path.join(src.dir, 'redis.pid')).read())
    t.hs.send(t.room_id, ALICE, '!backup cache')
    wait_body(t, '⏳ backup of cache')
    # mid-transfer: the replica (us) is being sent the snapshot
    wait_for('the snapshot to stream', lambda: re.search(
        rb'slave0:.*state=(wait_bgsave|send_bulk)', c.call('INFO', 'replication')), timeout=30)
    time.sleep(1.5)
    os.kill(pid, signal.SIGKILL)
    t0 = time.time()
    msg = wait_body(t, '❌ backup of cache failed', timeout=60)[0]
    check(time.time() - t0 < 30, 'the failure took %.0fs to be noticed' % (time.time() - t0))
    check(re.search(r'closed the connection|incomplete|truncated', msg, re.I),
          'the cause is not clear: %r' % msg)
    tdir = os.path.join(t.tmp, 'backups', 'cache')
    check(sorted(os.listdir(tdir)) == sorted(n for n in os.listdir(tdir)
                                             if n.startswith(older[0])),
          'files after the failed backup: %r' % os.listdir(tdir))
    check(leftovers(tdir) == [], 'leftovers: %r' % leftovers(tdir))
    check(catalog(b, 'cache') == older, 'catalog: %r' % catalog(b, 'cache'))
    verify_quick(b, older[0])
