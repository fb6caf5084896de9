"""Schedules, the day's thread, alerts, stale backups, pauses (a faked clock).

The daemon runs under libfaketime with a fixed offset from the real clock
(FAKETIME="+Ns", the same in every process it starts), so "03:00" comes a
few seconds after the bot starts; nothing in backupbot knows about it.
"""
import calendar
import glob
import json
import os
import re
import subprocess
import time

from harness import (ALICE, BOB, BOT, Postgres, TestFailure, check, rel, replies, test)
from test_backup_chat import bodies, wait_body

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False

FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'


def fake_clock(at):
    """An environment whose clock reads `at` (epoch seconds) now."""
    env = dict(os.environ)
    env['LD_PRELOAD'] = FAKETIME_LIB + (':' + env['LD_PRELOAD'] if env.get('LD_PRELOAD') else '')
    env['FAKETIME'] = '%+ds' % round(at - time.time())
    env['FAKETIME_DONT_FAKE_MONOTONIC'] = '1'
    # an ASan build wants to be first; libfaketime only wraps time calls
    env['ASAN_OPTIONS'] = ((env['ASAN_OPTIONS'] + ':') if env.get('ASAN_OPTIONS') else '') + \
        'verify_asan_link_order=0'
    return env


def next_utc(hour, minute, second, days=0):
    """The next time of day (UTC) after now, plus days."""
    now = time.time()
    t = time.gmtime(now)
    at = calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, hour, minute, second, 0, 0, 0))
    while at <= now:
        at += 86400
    return at + days * 86400


def setup(t, target_extra='', report='', pg_up=True, backup_first=False, clock=None):
    pg = Postgres(t, size_mb=1)
    b = t.bot()
    with open(b.conf) as f:
        conf = f.read()
    conf = conf[:conf.index('[storage]')]
    section = pg.section('main', target_extra)
    if not pg_up:
        section = section.replace('port=%d' % pg.port, 'port=1')
    conf += ('[storage]\nstate_dir = %s\nbackup_dir = %s\n\n[report]\n%s\n\n%s'
             % (b.state_dir, os.path.join(t.tmp, 'backups'), report, section))
    with open(b.conf, 'w') as f:
        f.write(conf)
    if backup_first:
        r = subprocess.run([os.environ.get('BACKUPBOT', './backupbot'), '-c', b.conf, 'backup',
                            'main'], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, r.stdout + r.stderr)
    if clock is not None:
        b.env = fake_clock(clock)
    b.start()
    return pg, b


def day_root(t, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        roots = [e for e in replies(t.hs.events(t.room_id, sender=BOT))
                 if e['content']['body'].startswith('🗓 Backups · ')]
        if roots:
            return roots
        time.sleep(0.1)
    raise TestFailure('no day thread; the bot said %r' % bodies(t))


def in_thread(t, root, text, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in replies(t.hs.events(t.room_id, sender=BOT)):
            if text in e['content'].get('body', '') and rel(e).get('rel_type') == 'm.thread' \
                    and rel(e)['event_id'] == root:
                return e
        time.sleep(0.1)
    raise TestFailure('no %r in the day thread; the bot said %r' % (text, bodies(t)))


def alerts(t, text=''):
    return [e for e in replies(t.hs.events(t.room_id, sender=BOT))
            if e['content'].get('m.mentions', {}).get('user_ids') and text in e['content']['body']]


def wait_alert(t, text, count=1, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = alerts(t, text)
        if len(got) >= count:
            return got
        time.sleep(0.1)
    raise TestFailure('no %d alert(s) with %r; the bot said %r' % (count, text, bodies(t)))


def jobs_started(b, kind='backup'):
    path = os.path.join(b.state_dir, 'ledger.jsonl')
    if not os.path.exists(path):
        return []
    return [json.loads(x) for x in open(path)
            if json.loads(x)['event'] == 'start' and json.loads(x)['kind'] == kind]


@test
def scheduled_backup_posts_in_the_days_thread(t):
    pg, b = setup(t, 'schedule = 0 3 * * *', clock=next_utc(2, 59, 57))
    roots = day_root(t)
    check(len(roots) == 1 and 'thread' not in json.dumps(rel(roots[0])), roots)
    done = in_thread(t, roots[0]['event_id'], '✅ backup of main')
    check('main-' in done['content']['body'], done)
    # the room's main timeline stays quiet: root only, no alert
    top = [e for e in replies(t.hs.events(t.room_id, sender=BOT))
           if rel(e).get('rel_type') not in ('m.thread', 'm.replace')]
    check(len(top) == 1, 'top-level messages: %r' % [e['content']['body'] for e in top])
    check(len(jobs_started(b)) == 1 and jobs_started(b)[0]['by'] == 'schedule', jobs_started(b))


@test
def failing_scheduled_backup_alerts_the_admins_and_retries(t):
    pg, b = setup(t, 'schedule = 0 3 * * *\nretries = 1\nretry_delay = 10s', pg_up=False,
                  clock=next_utc(2, 59, 57))
    root = day_root(t)[0]['event_id']
    in_thread(t, root, '❌ backup of main failed')
    in_thread(t, root, 'retry 1 of 1')
    first = wait_alert(t, 'scheduled backup of main failed')[0]
    c = first['content']
    check(sorted(c['m.mentions']['user_ids']) == sorted([ALICE, BOB]), c)
    check(ALICE in c['body'] and BOB in c['body'], c['body'])
    check('retry 1 of 1' in c['body'], c['body'])
    wait_alert(t, 'no retries are left', timeout=40)
    check(len(jobs_started(b)) == 2, 'expected the run and one retry: %r' % jobs_started(b))


@test
def stale_target_alerts_once_repeats_and_resolves(t):
    # the newest backup is made now; the bot's clock is 27h ahead
    pg, b = setup(t, 'schedule = 0 3 * * *', report='alert_repeat = 10s', backup_first=True,
                  clock=time.time() + 27 * 3600)
    first = wait_alert(t, 'main: the newest good backup is')[0]
    check('stale after 1d' in first['content']['body'] or 'stale after 26h' in first['content']['body'],
          first['content']['body'])
    time.sleep(3)
    check(len(alerts(t, 'newest good backup')) == 1, 'repeated too soon')
    wait_alert(t, 'newest good backup', count=2, timeout=30)
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '✅ backup of main')
    wait_alert(t, 'resolved: main has a good backup again', timeout=30)
    n = len(alerts(t, 'newest good backup'))
    time.sleep(12)
    check(len(alerts(t, 'newest good backup')) == n, 'alerted after it was resolved')


@test
def missed_runs_are_caught_up_once(t):
    pg, b = setup(t, 'schedule = 0 * * * *')   # hourly
    b.stop()
    # three days of hourly slots pass while the bot is down
    state = json.load(open(os.path.join(b.state_dir, 'schedule.json')))
    state['schedules']['main/backup']['handled'] = time.time() - 3 * 86400
    with open(os.path.join(b.state_dir, 'schedule.json'), 'w') as f:
        json.dump(state, f)
    b.start()
    wait_body(t, '✅ backup of main')
    time.sleep(3)
    check(len(jobs_started(b)) == 1, 'caught up %d times' % len(jobs_started(b)))
    b.stop()
    b.start()
    time.sleep(3)
    check(len(jobs_started(b)) == 1, 'caught up again after a restart')


@test
def no_catch_up_when_disabled(t):
    pg, b = setup(t, 'schedule = 0 * * * *\ncatch_up = no')
    b.stop()
    state = json.load(open(os.path.join(b.state_dir, 'schedule.json')))
    state['schedules']['main/backup']['handled'] = time.time() - 7200
    with open(os.path.join(b.state_dir, 'schedule.json'), 'w') as f:
        json.dump(state, f)
    b.start()
    time.sleep(3)
    check(jobs_started(b) == [], 'ran although catch_up = no')


@test
def paused_target_skips_its_schedule_until_resumed(t):
    pg, b = setup(t, 'schedule = 0 3 * * *', clock=next_utc(2, 59, 50))
    t.hs.send(t.room_id, ALICE, '!pause main 2h')
    wait_body(t, 'main paused until')
    time.sleep(14)      # 03:00 passes
    check(jobs_started(b) == [], 'a paused target ran')
    check('skipped (paused)' in b.log_text(), 'no log of the skipped run')
    t.hs.send(t.room_id, BOB, '!resume main')
    wait_body(t, 'main resumed by %s' % BOB)
    t.hs.send(t.room_id, BOB, '!resume main')
    wait_body(t, 'main was not paused')
    t.hs.send(t.room_id, BOB, '!pause nosuch')
    wait_body(t, 'No target "nosuch"')


@test
def manual_backup_does_not_shift_the_schedule(t):
    pg, b = setup(t, 'schedule = 0 3 * * *', clock=next_utc(2, 59, 50))
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '✅ backup of main')
    root = day_root(t, timeout=30)[0]['event_id']
    in_thread(t, root, '✅ backup of main')
    check(len(jobs_started(b)) == 2, jobs_started(b))


class Healthchecks:
    """A healthchecks.io stand-in on loopback: records every request path."""

    def __init__(self, t):
        import http.server
        import threading
        self.paths = []
        self.headers = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.paths.append(self.path)
                outer.headers.append(dict(self.headers))
                self.send_response(200)
                self.send_header('Content-Length', '2')
                self.end_headers()
                self.wfile.write(b'OK')
            do_POST = do_GET

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
        self.url = 'http://127.0.0.1:%d/ping/1f3a6c0e-secret-uuid' % self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        t.cleanups.append(self.server.shutdown)

    def wait(self, n, timeout=30):
        deadline = time.time() + timeout
        while len(self.paths) < n and time.time() < deadline:
            time.sleep(0.05)
        return list(self.paths)


@test
def healthcheck_pings_and_the_metrics_file(t):
    from prometheus_client.parser import text_string_to_metric_families
    hc = Healthchecks(t)
    metrics = os.path.join(t.tmp, 'metrics', 'backupbot.prom')
    os.makedirs(os.path.dirname(metrics))
    pg, b = setup(t, 'healthcheck_url = %s' % hc.url, report='metrics_file = %s' % metrics)
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '✅ backup of main')
    paths = hc.wait(2)
    check(paths == ['/ping/1f3a6c0e-secret-uuid/start', '/ping/1f3a6c0e-secret-uuid'], paths)
    check(not any('Authorization' in h or 'authorization' in h for h in hc.headers),
          'a header of ours went to the healthcheck: %r' % hc.headers)
    check('secret-uuid' not in b.log_text(), 'the check URL (its secret) is in the log')
    # a failing backup pings /fail
    pg.stop()
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '❌ backup of main failed')
    paths = hc.wait(4)
    check(paths[2:] == ['/ping/1f3a6c0e-secret-uuid/start', '/ping/1f3a6c0e-secret-uuid/fail'],
          paths)
    # the metrics file parses as Prometheus text and says what happened
    check(oct(os.stat(metrics).st_mode & 0o777) == '0o644', oct(os.stat(metrics).st_mode))
    samples = {}
    for fam in text_string_to_metric_families(open(metrics).read()):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    key = (('kind', 'postgres'), ('target', 'main'))
    check(samples.get(('backupbot_failures_total', key)) == 1, samples)
    check(samples.get(('backupbot_backups_kept', key)) == 1, samples)
    check(abs(samples[('backupbot_last_success_timestamp_seconds', key)] - time.time()) < 120,
          samples)
    check(samples.get(('backupbot_last_size_bytes', key), 0) > 0, samples)


@test
def verify_schedule_runs_a_restore_drill_in_the_days_thread(t):
    pg, b = setup(t, 'verify_schedule = 0 4 * * *', backup_first=True,
                  clock=next_utc(3, 59, 57))
    root = day_root(t)[0]['event_id']
    done = in_thread(t, root, '✅ restore drill of main')
    check('scratch copy bbdrill_main_' in done['content']['body'], done['content']['body'])
    t.hs.send(t.room_id, ALICE, '!list main')
    lst = wait_body(t, 'Catalog')[0]
    check('restore drill ✓' in lst, lst)


@test
def status_puts_problems_first_and_fills_in_health(t):
    pg, b = setup(t, 'schedule = 0 3 * * *')
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '✅ backup of main')
    pg.stop()
    t.hs.send(t.room_id, ALICE, '!backup main')
    wait_body(t, '❌ backup of main failed')
    cmd = t.hs.send(t.room_id, BOB, '!status')
    deadline = time.time() + 30
    while True:
        edits = [e for e in t.hs.events(t.room_id, sender=BOT)
                 if rel(e).get('rel_type') == 'm.replace'
                 and 'Health' in e['content']['m.new_content']['body']
                 and 'checking' not in e['content']['m.new_content']['body']]
        if edits:
            break
        check(time.time() < deadline, 'the status was never filled in: %r' % bodies(t))
        time.sleep(0.1)
    body = edits[-1]['content']['m.new_content']['body']
    first = body.split('\n')[1]
    check('attention:' in first, 'problems are not first: %r' % body)
    check('main: the last backup failed' in body, body)
    check('cannot connect' in body or 'refused' in body, body)
    check('next ' in body and 'main (postgres): last good' in body, body)
    # one target in detail: its last runs, newest first
    t.hs.send(t.room_id, BOB, '!status main')
    st = wait_body(t, 'Last runs')[0]
    runs = st[st.index('Last runs'):].split('\n')[1:]
    check(runs[0].startswith('❌') and 'backup failed' in runs[0], runs)
    check(runs[1].startswith('✅') and 'backup ok' in runs[1], runs)


@test
def weekly_summary_is_posted_on_its_schedule(t):
    pg, b = setup(t, '', report='summary_schedule = 0 9 * * 1', backup_first=True,
                  clock=calendar.timegm(time.strptime('2026-11-30 08:59:57', '%Y-%m-%d %H:%M:%S')))
    msg = wait_body(t, 'Weekly summary', timeout=30)[0]
    check('main' in msg and 'free' in msg, msg)
