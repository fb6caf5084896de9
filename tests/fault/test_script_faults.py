"""Operators' scripts that misbehave: one floods stdout at 100 MB/s, a hook
never exits (and ignores SIGTERM).  The bot stays bounded and answers.

The flood: a script writes 1 MiB blocks paced to 100 MB/s for 5 s (500
MB).  The job child's peak RSS (VmHWM) and the daemon's are read from
/proc while it runs; the log keeps the first SCRIPT_LOG_MAX bytes and
says how much it dropped; the thread gets the last lines only.
"""
import os
import re
import time

from faultlib import ALICE, BOB, check, conf_with, pgrep, wait_body, wait_for, wait_gone
from harness import test

LOG_MAX = 16 * 1024 * 1024


def vm(pid, key):
    """VmHWM / VmRSS of pid in KiB, or None when it is gone."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


@test
def a_script_flooding_stdout_keeps_the_bot_bounded(t):
    flood = os.path.join(t.tmp, 'flood.py')
    with open(flood, 'w') as f:
        f.write('#!/usr/bin/python3\nimport os, sys, time\n'
                'block = (b"x" * 1023 + b"\\n") * 1024\n'
                't0 = time.monotonic()\n'
                'for i in range(500):\n'
                '    os.write(1, block)\n'
                '    ahead = (i + 1) / 100.0 - (time.monotonic() - t0)\n'
                '    if ahead > 0:\n'
                '        time.sleep(ahead)\n'
                'print("flood done after %.1fs" % (time.monotonic() - t0), flush=True)\n')
    os.chmod(flood, 0o755)
    b = t.bot()
    conf_with(b, '[script flood]\ncommand = %s\ntimeout = 5m\n' % flood)
    b.start()
    daemon_before = vm(b.proc.pid, 'VmRSS')
    t.hs.send(t.room_id, ALICE, '!backup flood')
    pid = int(wait_for('the job child', lambda: pgrep('job backup flood').split()[:1] or None,
                       timeout=20)[0])
    job_peak = daemon_peak = 0
    while True:
        v = vm(pid, 'VmHWM')
        if v is None:
            break
        job_peak = max(job_peak, v)
        daemon_peak = max(daemon_peak, vm(b.proc.pid, 'VmHWM') or 0)
        time.sleep(0.05)
    done = wait_body(t, 'script flood', timeout=60)[0]
    m = re.search(r'flood done after ([\d.]+)s', done)
    check(m and '✅ script flood exited with status 0' in done, done)
    rate = 500 * 1024 * 1024 / float(m.group(1)) / 1e6
    print('    flood: %.0f MB/s for 500 MiB; job child peak RSS %d KiB, daemon peak RSS %d KiB '
          '(%d KiB before)' % (rate, job_peak, daemon_peak, daemon_before))
    check(job_peak < 48 * 1024, 'job child peak RSS %d KiB' % job_peak)
    check(daemon_peak < daemon_before + 16 * 1024, 'daemon grew from %d to %d KiB'
          % (daemon_before, daemon_peak))
    log = re.search(r'(/\S+/flood-\d{8}T\d{6}Z\.log)', done).group(1)
    size = os.path.getsize(log)
    check(LOG_MAX <= size < LOG_MAX + 200, 'log of %d bytes' % size)
    with open(log, 'rb') as f:
        f.seek(LOG_MAX)
        tail = f.read().decode()
    check('log cut at 16 MiB' in tail and 'more bytes not kept' in tail, tail)
    # the thread got the last lines, not 500 MB
    check(len(done.encode()) < 4096, 'the message is %d bytes' % len(done.encode()))
    t.hs.send(t.room_id, BOB, '!status')
    wait_body(t, 'uptime', timeout=10)


@test
def a_hook_that_never_exits_is_killed_at_its_timeout(t):
    hang = os.path.join(t.tmp, 'hang.sh')
    with open(hang, 'w') as f:
        f.write("#!/bin/sh\necho 'entering maintenance'\ntrap '' TERM\nsleep 3604\n")
    os.chmod(hang, 0o755)
    b = t.bot()
    conf_with(b, '[files etc]\npaths = %s\npre_hook = %s\nhook_timeout = 2s\n' % (hang, hang))
    b.start()
    t0 = time.time()
    t.hs.send(t.room_id, ALICE, '!backup etc')
    failed = wait_body(t, '❌ backup of etc failed', timeout=30)[0]
    took = time.time() - t0
    check('pre_hook %s timed out after 2s and was stopped' % hang in failed and
          'entering maintenance' in failed, failed)
    # it ignored SIGTERM: SIGKILL after the grace, nothing left
    wait_gone('sleep 3604', 5)
    check(took < 20, 'took %.1fs' % took)
    t.hs.send(t.room_id, BOB, '!status')
    wait_body(t, 'uptime', timeout=10)
