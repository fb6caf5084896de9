#!/usr/bin/python3
"""e2ee_bench.py - what end-to-end encryption costs the daemon, each
figure against the same daemon without it in the same run:

- command -> reply latency in an encrypted room against an unencrypted
  room of the same bot (the homeserver's clock: from storing the command
  to storing the threaded reply, so the clients are not in the figure);
  the commands in the encrypted room come from a matrix-nio client;
- the first message to a room of 2 admins x 3 devices (a new Megolm
  session: /keys/query, /keys/claim, 6 Olm sessions, /sendToDevice)
  against the messages after it;
- idle RSS (VmHWM) with an E2EE device against a bot without one.

    e2ee_bench.py [N]    (N commands per room, default 100)
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))
import harness  # noqa: E402
from harness import ALICE, BOB, BOT, rel  # noqa: E402
from test_e2ee import Person, key_file  # noqa: E402
from latency import rss_kb  # noqa: E402


def reply_to(t, room, cmd, timeout=30):
    deadline = time.time() + timeout
    while True:
        for e in t.hs.events(room, sender=BOT):
            if rel(e).get('rel_type') == 'm.thread' and rel(e).get('event_id') == cmd:
                return e
        if time.time() > deadline:
            raise RuntimeError('no reply to %s' % cmd)
        t.hs.call('POST', '/_test/wait', dict(room_id=room, sender=BOT, count=10**9,
                  timeout_ms=20), ok=(200, 408))


def ts_of(t, room, event_id):
    return [e for e in t.hs.events(room) if e['event_id'] == event_id][0]['origin_server_ts']


def latency(t, room, send, n):
    out = []
    for _ in range(n):
        cmd = send()
        out.append(reply_to(t, room, cmd)['origin_server_ts'] - ts_of(t, room, cmd))
    return out


def stats(label, lat):
    lat = sorted(lat)
    med = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print('%-34s median %6.1f ms   p99 %6.1f ms   (n=%d)' % (label, med, p99, len(lat)))
    return med


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    t = harness.Test('e2ee-bench')
    try:
        plain_room = t.room_id
        enc_room = t.hs.room(creator=ALICE, members=[ALICE, BOB, BOT], encrypted=True,
                             power_levels={'users': {ALICE: 100, BOB: 50}})
        # idle RSS without E2EE (unencrypted room only, no key)
        bot = t.bot(name='plain', rooms=[plain_room]).start()
        time.sleep(2)
        idle_plain = rss_kb(bot.proc.pid, 'VmHWM')
        bot.stop()
        bot = t.bot(rooms=[plain_room, enc_room],
                    extra='pickle_key_file = %s\n' % key_file(t)).start()
        time.sleep(2)
        idle_e2ee = rss_kb(bot.proc.pid, 'VmHWM')
        alice = Person(t, ALICE, 'ALICE1')
        # warm-up: Olm sessions both ways, one Megolm session each way
        latency(t, enc_room, lambda: alice.send(enc_room, '!status'), 2)
        latency(t, plain_room, lambda: t.hs.send(plain_room, ALICE, '!status'), 2)
        # interleaved, so that the load of a shared machine hits both alike
        plain, enc = [], []
        for _ in range(n):
            plain += latency(t, plain_room, lambda: t.hs.send(plain_room, ALICE, '!status'), 1)
            enc += latency(t, enc_room, lambda: alice.send(enc_room, '!status'), 1)
        med_plain = stats('unencrypted room', plain)
        med_enc = stats('encrypted room (Megolm)', enc)
        print('encrypted - unencrypted, median: %+.1f ms (aim: < 5 ms)' % (med_enc - med_plain))
        # first message to 2 admins x 3 devices: a new room, six devices
        room6 = t.hs.room(creator=ALICE, members=[ALICE, BOB, BOT], encrypted=True,
                          power_levels={'users': {ALICE: 100, BOB: 50}})
        bot.stop()
        bot = t.bot(name='six', rooms=[room6], extra='pickle_key_file = %s\n'
                    % os.path.join(t.tmp, 'pickle.key')).start()
        people = [Person(t, u, '%s%d' % (u[1:4].upper(), i)) for u in (ALICE, BOB) for i in range(3)]
        sender = people[0]
        sender.run(sender.client.joined_members(room6))
        sender.keys()
        first = latency(t, room6, lambda: sender.send(room6, '!status'), 1)[0]
        after = latency(t, room6, lambda: sender.send(room6, '!status'), 20)
        print('first reply to 2 admins x 3 devices: %.1f ms (a new session shared with 6 devices); '
              'the next ones: median %.1f ms' % (first, statistics.median(after)))
        print('idle peak RSS: without E2EE %.1f MB, with an E2EE device %.1f MB (%+.1f MB)'
              % (idle_plain / 1024, idle_e2ee / 1024, (idle_e2ee - idle_plain) / 1024))
        bot.stop()
    finally:
        t.finish(False)


if __name__ == '__main__':
    main()
