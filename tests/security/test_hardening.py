"""Smaller doors: restore destinations, forged log lines, core dumps."""

import os
import re

from harness import ALICE, ROOT, check, test
from seclib import backup, bb, tree, write_conf


@test
def restore_into_root_is_refused(t):
    src = os.path.join(t.tmp, 'src')
    tree(src, {'a.conf': b'a\n'})
    conf = write_conf(t, {'etc': [src]}, remote=False)
    backup(t, conf, 'etc')
    for into in ('/', '//', '///'):
        r = bb(t, conf, 'restore', 'etc', 'latest', '--into', into, '--yes')
        check(r.rc == 2 and '--into / is refused' in r.err and '--replace' in r.err,
              '--into %s:\n%s' % (into, r))


@test
def media_restore_into_an_unconfigured_remote_is_refused(t):
    conf = write_conf(t, {}, remote=False)
    with open(conf, 'a') as f:
        f.write('[media cdn]\nsource = src:media\ndestinations = nyc:copy, ams:copy\n')
    r = bb(t, conf, 'restore', 'cdn', 'latest', '--into', 'elsewhere:bucket', '--yes')
    check(r.rc == 2 and 'must be cdn\'s source or one of its destinations' in r.err,
          'an rclone remote not of this target:\n%s' % r)
    r = bb(t, conf, 'restore', 'cdn', 'latest', '--into', 'nyc:copyother', '--yes')
    check(r.rc == 2 and 'source or one of its destinations' in r.err, 'a prefix:\n%s' % r)
    r = bb(t, conf, 'restore', 'cdn', 'latest', '--into', 'nyc:copy/restored', '--yes')
    check('source or one of its destinations' not in r.err, 'under a destination:\n%s' % r)


@test
def forged_log_lines_are_escaped(t):
    b = t.bot(admins=(ALICE,))
    b.start()
    forged = '2026-12-07T00:00:00Z backupbot warning: FORGED'
    t.hs.send(t.room_id, ALICE, '!zz\n%s' % forged)
    t.hs.send(t.room_id, ALICE, '!zz\r%s\x1b[2J\x07' % forged)
    b.wait_log('command from %s' % ALICE, count=2)
    log = b.log_text()
    check(not any(line.startswith(forged) or '\x1b' in line or '\x07' in line
                  for line in log.split('\n')),
          'a forged line (or a control character) reached the log:\n%s' % log[-2000:])
    check(re.search(r'command from @alice:localhost in \S+: zz\\n2026-12-07T00:00:00Z', log)
          and '\\x1b[2J\\x07' in log, 'not escaped:\n%s' % log[-2000:])


@test
def no_core_dumps(t):
    b = t.bot(admins=(ALICE,))
    b.start()
    with open('/proc/%d/limits' % b.proc.pid) as f:
        line = [x for x in f if x.startswith('Max core file size')][0]
    check(line.split()[4:6] == ['0', '0'], 'core file size limit: %r' % line)
    with open(os.path.join(ROOT, 'dist', 'backupbot.service')) as f:
        check(re.search(r'^LimitCORE=0$', f.read(), re.M), 'the unit has no LimitCORE=0')
