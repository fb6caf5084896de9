"""!status: probes are coalesced (one at a time; who asks meanwhile gets
the same answer), and backups that do not authenticate are counted."""

import os
import socket
import time

from harness import ALICE, BOT, TestFailure, check, rel, replies, test
from seclib import backup, bodies, keyfile, set_chat_conf, tree


def edits(t):
    return [e['content'].get('m.new_content', {}).get('body', '')
            for e in replies(t.hs.events(t.room_id, sender=BOT))
            if rel(e).get('rel_type') == 'm.replace']


@test
def status_probes_are_coalesced_and_count_unauthenticated_backups(t):
    # a PostgreSQL "server" that takes the connection and never answers:
    # each probe waits out connect_timeout
    hang = socket.socket()
    hang.bind(('127.0.0.1', 0))
    hang.listen(16)
    t.cleanups.append(hang.close)
    src = os.path.join(t.tmp, 'src')
    tree(src, {'a.conf': b'a\n'})
    b = t.bot(admins=(ALICE,))
    set_chat_conf(t, b, {'etc': [src]})
    backup(t, b.conf, 'etc')                # before the key: unauthenticated
    set_chat_conf(t, b, {'etc': [src]}, key=keyfile(t))
    backup(t, b.conf, 'etc')
    pw = os.path.join(t.tmp, 'pg.pass')
    with open(pw, 'w') as f:
        f.write('x\n')
    os.chmod(pw, 0o600)
    with open(b.conf, 'a') as f:
        f.write('[postgres slow]\nconninfo = host=127.0.0.1 port=%d dbname=x user=backup '
                'connect_timeout=6\npassword_file = %s\n' % (hang.getsockname()[1], pw))
    b.start()
    for n in range(3):
        t.hs.send(t.room_id, ALICE, '!status')
        deadline = time.time() + 20
        while len([x for x in bodies(t) if 'etc' in x]) < n + 1:
            if time.time() > deadline:
                raise TestFailure('no !status reply %d: %r' % (n + 1, bodies(t)))
            time.sleep(0.05)
    deadline = time.time() + 60
    while len([x for x in edits(t) if 'not authenticated' in x]) < 3:
        if time.time() > deadline:
            raise TestFailure('not every !status got the answer: %r' % edits(t))
        time.sleep(0.1)
    started = b.log_text().count('health check of - started')
    check(started == 1, '%d probes ran for 3 !status asked while one ran' % started)
    answer = [x for x in edits(t) if 'not authenticated' in x][0]
    check('etc: 1 backup(s) not authenticated' in answer, 'answer: %s' % answer)
