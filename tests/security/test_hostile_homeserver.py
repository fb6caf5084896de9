"""A hostile homeserver answers /sync with 32 MiB of [0,0,...]: a cJSON
tree of it would cost over a GiB.  The daemon refuses the body by its
number of values before building anything, says so, keeps running, and
its peak RSS stays under 64 MB."""

import os

from harness import ALICE, BACKUPBOT, check, test

LIMIT_KB = 64 * 1000


def peak_rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    raise AssertionError('no VmHWM in /proc/%d/status' % pid)


@test
def hostile_sync_body_keeps_memory_bounded(t):
    b = t.bot(admins=(ALICE,))
    b.start()
    before = peak_rss_kb(b.proc.pid)
    head = '{"next_batch":"s_hostile","rooms":{"join":{"%s":{"timeline":{"events":[' % t.room_id
    tail = ']}}}}}'
    room = 32 * 1024 * 1024 - len(head) - len(tail) - 1024
    body = head + ('0,' * (room // 2)) + '0' + tail
    check(len(body) > 32 * 1024 * 1024 - 2048, 'body of %d bytes' % len(body))
    t.hs.call('POST', '/_test/raw_sync', {'body': body})
    b.wait_log('sync response refused: JSON with more than', timeout=60)
    peak = peak_rss_kb(b.proc.pid)
    # AddressSanitizer's shadow memory and quarantine are not the bot's
    sanitized = 'asan' in os.path.basename(BACKUPBOT)
    check(sanitized or peak < LIMIT_KB, 'peak RSS %d kB (before the hostile sync: %d kB), limit %d kB'
          % (peak, before, LIMIT_KB))
    # still alive and answering
    t.hs.send(t.room_id, ALICE, '!help')
    b.wait_log('command from %s' % ALICE)
