"""One lock per target, shared by the daemon and the CLI: retention never
removes a backup another process is reading, a busy target is waited for
(with a message) or refused (--no-wait), and the daemon's start-up
cleanup leaves alone the partial files of a target someone holds.

A `backupbot cat` whose reader does not read holds its target's lock for
as long as the test wants: a real second process, mid-read."""

import os
import select
import subprocess
import tarfile
import io

from harness import BACKUPBOT, check, test
from seclib import (backup, backup_dir, bb, chat_bot, tree, write_conf)


def stalled_cat(conf, bid):
    """`backupbot cat bid` that has taken the lock and blocks on a full
    pipe; read p.stdout to let it go."""
    p = subprocess.Popen([BACKUPBOT, '-c', conf, 'cat', bid], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    r, _, _ = select.select([p.stdout], [], [], 30)
    check(r, 'cat wrote nothing within 30s')
    return p


def big_tree(t):
    src = os.path.join(t.tmp, 'src')
    tree(src, {'big.bin': os.urandom(1 << 20), 'small.conf': b'small\n'})
    return src


@test
def retention_waits_while_a_restore_reads(t):
    src = big_tree(t)
    conf = write_conf(t, {'etc': [src]}, remote=False)
    with open(conf, 'a') as f:
        f.write('keep = last=1\n')
    old = backup(t, conf, 'etc')
    cat = stalled_cat(conf, old)
    r = bb(t, conf, 'backup', 'etc', '--no-wait')
    check(r.rc != 0 and 'busy' in r.text, '--no-wait on a busy target:\n%s' % r)
    waiter = subprocess.Popen([BACKUPBOT, '-c', conf, 'backup', 'etc'], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = waiter.stderr.readline().decode()
    check('waiting' in line, 'the waiting backup says nothing: %r' % line)
    check(os.path.exists(os.path.join(backup_dir(t), 'etc', old + '.json')),
          'the backup being read was removed')
    data = cat.stdout.read()
    check(cat.wait() == 0, 'cat failed: %s' % cat.stderr.read())
    names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
    check(any(n.endswith('big.bin') for n in names), 'cat output: %r' % names)
    out, err = waiter.communicate(timeout=120)
    check(waiter.returncode == 0 and b'retention: removed ' + old.encode() in out + err,
          'the waiting backup:\n%s\n%s' % (out.decode(), err.decode()))


@test
def daemon_start_leaves_a_held_targets_partial_files(t):
    a, b = big_tree(t), os.path.join(t.tmp, 'b')
    tree(b, {'b.conf': b'b\n'})
    bot, ids = chat_bot(t, {'etc': [a], 'www': [b]}, ('@alice:localhost',))
    bot.stop()
    held = os.path.join(backup_dir(t), 'etc', 'etc-20990101T000000Z.partial')
    free = os.path.join(backup_dir(t), 'www', 'www-20990101T000000Z.partial')
    for p in (held, free):
        with open(p, 'wb') as f:
            f.write(b'work in progress')
    cat = stalled_cat(bot.conf, ids['etc'])
    bot.start()
    bot.wait_log('etc is in use by another backupbot process')
    check(os.path.exists(held), 'the partial file of a held target was removed')
    check(not os.path.exists(free), 'the partial file of a free target was kept')
    cat.stdout.read()
    check(cat.wait() == 0, 'cat: %s' % cat.stderr.read())
