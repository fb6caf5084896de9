"""Restores that meet a fault after the plan was posted: a full disk while
unpacking, a backup truncated or a manifest corrupted after its check, a
wrong encryption key.  The restore must stop before it touches the
PostgreSQL server, say why in its thread, and leave nothing behind.

(A damaged backup at !restore time is refused before a plan:
tests/integration/test_restore_chat.py::damaged_backup_is_refused_before_a_plan.)
"""
import json
import os
import re
import shutil
import subprocess

from faultlib import (ALICE, approve, catalog, check, leftovers, mount_tmpfs, said, verify_quick,
                      wait_body)
from harness import BACKUPBOT, Postgres, test
from test_restore_chat import databases, plan_of

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False


def restore_bot(t, storage='', size_mb=2, extra=''):
    """A bot with a PostgreSQL target, restores as the superuser, and one
    good backup made in a shell.  (pg, bot, backup id)"""
    pg = Postgres(t, size_mb=size_mb)
    b = t.bot()
    restorer = 'restore_conninfo = host=%s port=%d dbname=%s user=postgres\n%s' % (
        pg.dir, pg.port, pg.db, extra)
    with open(b.conf) as f:
        conf = f.read()
    conf = conf[:conf.index('[storage]')]
    conf += ('[storage]\nstate_dir = %s\nbackup_dir = %s\n%s\n\n%s'
             % (b.state_dir, os.path.join(t.tmp, 'backups'), storage,
                pg.section('main', restorer)))
    with open(b.conf, 'w') as f:
        f.write(conf)
    r = subprocess.run([BACKUPBOT, '-c', b.conf, 'backup', 'main'], capture_output=True,
                       text=True, timeout=120)
    check(r.returncode == 0, 'backup failed: %s%s' % (r.stdout, r.stderr))
    bid = re.search(r'(main-\d{8}T\d{6}Z)', r.stdout).group(1)
    b.start()
    return pg, b, bid


def approved_restore_fails(t, pg, b, nth, damage=None):
    """!restore main latest, damage() once the plan is posted, approve;
    the restore must fail before anything is created.  Its message."""
    before, live = databases(pg), pg.fingerprint()
    t.hs.send(t.room_id, ALICE, '!restore main latest')
    plan, req = plan_of(t, count=nth)
    if damage:
        damage()
    approve(t, b, plan, req)
    msg = wait_body(t, '❌ restore of main failed', count=nth, timeout=60)[nth - 1]
    check(databases(pg) == before, 'databases after a failed restore: %r'
          % (databases(pg) ^ before))
    check(pg.fingerprint() == live, 'the live database changed')
    check(not said(t, '✅ restore of main'), 'a restore said ✅')
    check(leftovers(os.path.join(t.tmp, 'backups', 'main')) == [],
          'left behind: %r' % leftovers(os.path.join(t.tmp, 'backups', 'main')))
    return msg


def disk_full_while_unpacking(t, extra=''):
    bdir = os.path.join(t.tmp, 'backups')
    if not extra:
        mount_tmpfs(t, bdir, '1m')     # the backup fits; unpacked, it does not
    pg, b, bid = restore_bot(t, extra=extra)
    if extra:
        # pg_dump -Fd needs the unpacked size to make the backup: made
        # on the big disk, then moved onto the small one
        shutil.move(bdir, bdir + '.made')
        mount_tmpfs(t, bdir, '1m')
        shutil.copytree(bdir + '.made', bdir, dirs_exist_ok=True)
    mpath = os.path.join(bdir, 'main', bid + '.json')
    m = json.load(open(mpath))
    free = os.statvfs(bdir).f_bavail * os.statvfs(bdir).f_frsize
    check(m['bytes_raw'] > free > m['bytes'], 'sizes: raw %d, free %d, stored %d'
          % (m['bytes_raw'], free, m['bytes']))
    # 1. the space is checked before anything is unpacked
    msg = approved_restore_fails(t, pg, b, 1)
    check('not enough space to unpack' in msg and 'are free' in msg, msg)
    # 2. the check passes (the manifest has no size), and the disk fills
    # up while unpacking
    raw = m.pop('bytes_raw')
    with open(mpath, 'w') as f:
        json.dump(m, f)
    msg = approved_restore_fails(t, pg, b, 2)
    check('No space left on device' in msg and 'nothing was restored' in msg, msg)
    st = os.statvfs(bdir)
    check(st.f_bavail * st.f_frsize >= free - 64 * 1024,
          'the failed unpack still takes space: %d free, %d before' % (st.f_bavail * st.f_frsize, free))
    # the backup itself is intact (read back through its hash, not onto the full disk)
    r = subprocess.run([BACKUPBOT, '-c', b.conf, 'cat', bid], capture_output=True, timeout=60)
    check(r.returncode == 0 and len(r.stdout) == raw, 'cat %s: %d bytes of %d: %s'
          % (bid, len(r.stdout), raw, r.stderr))
    return r.stdout


@test
def disk_full_while_unpacking_a_restore(t):
    data = disk_full_while_unpacking(t)
    check(data[:5] == b'PGDMP', 'not a pg_dump archive: %r' % data[:16])


@test
def disk_full_while_unpacking_a_directory_dump(t):
    # the tar of a directory-format dump is unpacked as it is decoded:
    # here tar, not the decoder, meets the full disk
    data = disk_full_while_unpacking(t, 'format = directory\njobs = 2\n')
    check(data[257:262] == b'ustar', 'not a tar: %r' % data[:16])


@test
def backup_damaged_after_its_plan_and_wrong_key(t):
    keys = os.path.join(t.tmp, 'keys')
    os.makedirs(keys, mode=0o700)
    key = os.path.join(keys, 'backup.key')
    check(subprocess.run([BACKUPBOT, 'keygen', key], capture_output=True).returncode == 0, 'keygen')
    pg, b, bid = restore_bot(t, storage='encryption_key_file = %s' % key)
    tdir = os.path.join(t.tmp, 'backups', 'main')
    data = os.path.join(tdir, json.load(open(os.path.join(tdir, bid + '.json')))['file'])
    good = open(data, 'rb').read()
    good_manifest = open(os.path.join(tdir, bid + '.json'), 'rb').read()
    good_key = open(key, 'rb').read()

    # 1. truncated between the check and the approval
    def truncate():
        with open(data, 'wb') as f:
            f.write(good[:len(good) // 2])
    msg = approved_restore_fails(t, pg, b, 1, truncate)
    check(re.search(r'hash mismatch|truncated|damaged', msg) and 'nothing was restored' in msg, msg)
    with open(data, 'wb') as f:
        f.write(good)

    # 2. the manifest corrupted between the check and the approval
    def corrupt():
        with open(os.path.join(tdir, bid + '.json'), 'wb') as f:
            f.write(good_manifest[:40] + b'\x00garbage')
    msg = approved_restore_fails(t, pg, b, 2, corrupt)
    check('no backup' in msg and bid in msg, msg)
    with open(os.path.join(tdir, bid + '.json'), 'wb') as f:
        f.write(good_manifest)

    # 3. the key was replaced by another one between the plan and the
    # approval: the manifest no longer authenticates
    def new_key():
        os.unlink(key)
        check(subprocess.run([BACKUPBOT, 'keygen', key], capture_output=True).returncode == 0,
              'keygen')
    msg = approved_restore_fails(t, pg, b, 3, new_key)
    check('wrong key' in msg and 'nothing was restored' in msg, msg)

    # with the right key back, the same backup restores: nothing was lost
    with open(key, 'wb') as f:
        f.write(good_key)
    verify_quick(b, bid)
    check(catalog(b, 'main') == [bid], 'catalog: %r' % catalog(b, 'main'))
