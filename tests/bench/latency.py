#!/usr/bin/python3
"""latency.py - command-to-reply latency and RSS of the daemon, against a
minimal Python bot (the kind of script operators run today) in the same
run on the same test homeserver.

Latency is measured by the homeserver's own clock: from the moment it
stored the command to the moment it stored the reply (so the test client
is not in the figure).  The two run in turn, four rounds each (ABAB),
so that the load of a shared machine hits both alike.  RSS is VmHWM (peak) from /proc.  For the idle
daemon and the script, also what the resident pages are: file pages
(mostly shared libraries' code, shared with every process that maps
them), anonymous memory, and the private (USS) and proportional (PSS)
sizes from smaps_rollup.

    latency.py [N]    (N commands, default 200)
"""
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))
import harness  # noqa: E402
from harness import ALICE, BOT, BOT_TOKEN  # noqa: E402


def rss_kb(pid, field):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return -1


def breakdown(pid):
    """'RSS a MB = files b + anon c; USS d, PSS e' of a process now."""
    st = {k: rss_kb(pid, k) for k in ('VmRSS', 'RssFile', 'RssAnon')}
    roll = {}
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == 'kB':
                roll[parts[0].rstrip(':')] = int(parts[1])
    uss = roll.get('Private_Clean', 0) + roll.get('Private_Dirty', 0)
    return ('RSS %.1f MB = file pages %.1f + anon %.1f; USS %.1f MB, PSS %.1f MB'
            % (st['VmRSS'] / 1024, st['RssFile'] / 1024, st['RssAnon'] / 1024,
               uss / 1024, roll.get('Pss', 0) / 1024))


def measure(t, n):
    """n `!status` round trips; the latencies in ms."""
    lat = []
    for _ in range(n):
        cmd = t.hs.send(t.room_id, ALICE, '!status')
        ev = [e for e in t.hs.events(t.room_id) if e['event_id'] == cmd][0]
        while True:
            replies = [e for e in t.hs.events(t.room_id, sender=BOT, type='m.room.message')
                       if e['content'].get('m.relates_to', {}).get('event_id') == cmd]
            if replies:
                break
            t.hs.call('POST', '/_test/wait', dict(room_id=t.room_id, sender=BOT, count=10**9,
                      timeout_ms=20), ok=(200, 408))
        lat.append(replies[0]['origin_server_ts'] - ev['origin_server_ts'])
    return lat


def settle(t):
    """Wait until the bot has sent nothing for a second."""
    seen = -1
    while True:
        n = len(t.hs.events(t.room_id, sender=BOT))
        if n == seen:
            return
        seen = n
        time.sleep(1)


def summary(label, lat):
    lat = sorted(lat)
    med = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print('%-26s median %5.1f ms   p99 %5.1f ms   (n=%d)' % (label, med, p99, len(lat)))
    return med, p99


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = 4
    t = harness.Test('bench')
    try:
        # Latency, not Synapse's rc_message (0.2/s) which would pace both
        # bots, nor the test homeserver validating its own answers (a real
        # server does not), which slows each of its answers.  The rest of
        # what real servers do (the /sync cache, txn ids, redactions) is on.
        t.hs.config(rate_limit=False, self_check=False)
        # The machine is shared: ROUNDS rounds, backupbot and the peer in
        # turn (ABAB), so that load hits both alike.
        bot = t.bot()
        tok = os.path.join(t.tmp, 'token')
        lat, plat = [], []
        idle = idle_parts = peak = ppeak = peer_parts = None
        for r in range(rounds):
            bot.start()
            settle(t)               # it answers the peer's round from the backlog
            if r == 0:
                time.sleep(3)       # idle: measure what the daemon holds at rest
                idle = rss_kb(bot.proc.pid, 'VmHWM')
                idle_parts = breakdown(bot.proc.pid)
            lat += measure(t, n // rounds)
            peak = max(peak or 0, rss_kb(bot.proc.pid, 'VmHWM'))
            bot.stop()
            peer = subprocess.Popen([harness.PYTHON, os.path.join(HERE, 'peer_bot.py'), t.hs.url,
                                     tok, t.room_id], stdout=subprocess.PIPE, text=True)
            peer.stdout.readline()
            time.sleep(1)
            if r == 0:
                peer_parts = breakdown(peer.pid)
            plat += measure(t, n // rounds)
            ppeak = max(ppeak or 0, rss_kb(peer.pid, 'VmHWM'))
            peer.kill()
            peer.wait()
        med, p99 = summary('backupbot', lat)
        pmed, pp99 = summary('peer (python script)', plat)
        print('%-26s idle peak RSS %.1f MB, after %d commands %.1f MB' % ('backupbot', idle / 1024, n, peak / 1024))
        print('%-26s peak RSS %.1f MB' % ('peer (python script)', ppeak / 1024))
        print('%-26s %s' % ('backupbot idle', idle_parts))
        print('%-26s %s' % ('peer idle', peer_parts))
        print('latency ratio backupbot/peer: median %.2f, p99 %.2f (%d interleaved rounds)'
              % (med / max(pmed, 0.1), p99 / max(pp99, 0.1), rounds))
        assert BOT_TOKEN
    finally:
        t.finish(False)


if __name__ == '__main__':
    main()
