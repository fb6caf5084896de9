"""The wall clock jumping around a scheduled time.

The daemon runs under libfaketime reading its offset from a file
(FAKETIME_TIMESTAMP_FILE, re-read on every call), so the clock of the
running daemon, and of every process it starts, jumps when the test
rewrites the file.  The monotonic clock is left alone, as a real clock
jump (NTP step, a VM resumed) leaves it.
"""
import calendar
import json
import os
import time

from faultlib import check, parallel, said, started, wait_for
from harness import Postgres, test
from test_schedule import FAKETIME_LIB, day_root, in_thread

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False


class Clock:
    """A faked wall clock whose offset the test moves."""

    def __init__(self, t):
        self.path = os.path.join(t.tmp, 'faketime')

    def set(self, at):
        """From now on the clock reads `at` (epoch seconds)."""
        with open(self.path + '.new', 'w') as f:
            f.write('%+ds\n' % round(at - time.time()))
        os.rename(self.path + '.new', self.path)

    def env(self):
        env = dict(os.environ)
        env['LD_PRELOAD'] = FAKETIME_LIB + (':' + env['LD_PRELOAD'] if env.get('LD_PRELOAD') else '')
        env['FAKETIME_TIMESTAMP_FILE'] = self.path
        env['FAKETIME_NO_CACHE'] = '1'
        env['FAKETIME_DONT_FAKE_MONOTONIC'] = '1'
        env['ASAN_OPTIONS'] = ((env['ASAN_OPTIONS'] + ':') if env.get('ASAN_OPTIONS') else '') + \
            'verify_asan_link_order=0'
        return env


def day_at(day, hms):
    return calendar.timegm(time.strptime('%s %s' % (day, hms), '%Y-%m-%d %H:%M:%S'))


@test
@parallel
def clock_jumping_forward_and_back_around_a_scheduled_time(t):
    pg = Postgres(t, size_mb=1)
    b = t.bot()
    with open(b.conf) as f:
        conf = f.read()
    conf = conf[:conf.index('[storage]')]
    # alert_repeat = 10s: the scheduler looks at the clock every 5 s
    conf += ('[storage]\nstate_dir = %s\nbackup_dir = %s\n\n[report]\nalert_repeat = 10s\n\n%s'
             % (b.state_dir, os.path.join(t.tmp, 'backups'),
                pg.section('main', 'schedule = 0 3 * * *\ntimezone = UTC')))
    with open(b.conf, 'w') as f:
        f.write(conf)
    day = '2026-11-26'
    clock = Clock(t)
    clock.set(day_at(day, '02:50:00'))
    b.env = clock.env()
    b.start()
    state = os.path.join(b.state_dir, 'schedule.json')

    def handled():
        return json.load(open(state))['schedules']['main/backup']['handled']

    check(handled() < day_at(day, '03:00:00'), 'handled at start: %r' % handled())

    # 1. forward, past 03:00, while running: the slot runs, once
    clock.set(day_at(day, '03:10:00'))
    root = day_root(t, timeout=30)[0]['event_id']
    in_thread(t, root, '✅ backup of main', timeout=60)
    check(len(started(b, 'backup')) == 1 and started(b, 'backup')[0]['by'] == 'schedule',
          'jobs after the jump forward: %r' % started(b))
    ran_at = handled()
    check(day_at(day, '03:10:00') <= ran_at < day_at(day, '03:15:00'), 'handled %r' % ran_at)

    # 2. back, before 03:00, after it ran: 03:00 passes again, nothing runs
    clock.set(day_at(day, '02:59:52'))
    time.sleep(16)
    check(len(started(b, 'backup')) == 1, 'ran again after the clock went back: %r' % started(b))
    check(handled() == ran_at, 'handled moved: %r -> %r' % (ran_at, handled()))

    # 3. a restart in that repeated hour: the state file remembers the run
    b.stop()
    clock.set(day_at(day, '02:59:55'))
    b.start()
    time.sleep(12)
    check(len(started(b, 'backup')) == 1, 'ran again after a restart: %r' % started(b))
    check(len(said(t, '✅ backup of main')) == 1, 'backups said: %r' % said(t, '✅ backup of main'))

    # 4. the schedule still works: the next day's 03:00 runs, once
    clock.set(day_at('2026-11-27', '02:59:57'))
    wait_for('the next day\'s run', lambda: len(started(b, 'backup')) == 2, timeout=40)
    wait_for('its summary', lambda: len(said(t, '✅ backup of main')) == 2, timeout=60)
    time.sleep(6)
    check(len(started(b, 'backup')) == 2, 'runs: %r' % started(b))
    check(all(j['by'] == 'schedule' for j in started(b)), 'runs: %r' % started(b))
