"""The Matrix protocol rules: sync position, backlog, gaps, outbox, errors."""
import json
import os
import signal
import subprocess
import time

from harness import (ALICE, BACKUPBOT, BOB, BOT, BOT_PASSWORD, BOT_TOKEN,
                     check, rel, replies, test)


def answered(hs, room):
    """Command event ids the bot answered, in the order of its replies."""
    return [rel(e)['m.in_reply_to']['event_id'] for e in
            replies(hs.events(room, sender=BOT)) if 'm.in_reply_to' in rel(e)]


@test
def first_start_does_not_execute_history(t):
    t.hs.send(t.room_id, ALICE, '!status')
    t.hs.send(t.room_id, ALICE, '!help')
    b = t.bot().start()
    b.wait_log('first start')
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    check(answered(t.hs, t.room_id) == [cmd], 'history was executed: %r'
          % answered(t.hs, t.room_id))


@test
def restart_runs_recent_backlog_lists_old_and_runs_nothing_twice(t):
    b = t.bot()
    # The bot has served this room for an hour: a command 20 minutes old
    # is not history from before its first start (those never run).
    os.makedirs(b.state_dir, exist_ok=True)
    with open(os.path.join(b.state_dir, 'first_start'), 'w') as f:
        f.write('%d\n' % (int(time.time() * 1000) - 3600 * 1000))
    b.start()
    live = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    b.stop()
    now = int(time.time() * 1000)
    old = t.hs.send(t.room_id, ALICE, '!status', origin_server_ts=now - 20 * 60 * 1000)
    fresh1 = t.hs.send(t.room_id, BOB, '!help')
    fresh2 = t.hs.send(t.room_id, ALICE, '!status')
    b.start()
    evs = t.hs.wait(t.room_id, 1 + 3)     # 2 replies + 1 offline list
    got = answered(t.hs, t.room_id)
    check(got == [live, fresh1, fresh2], 'answers after restart: %r' % got)
    offline = [e for e in replies(evs) if 'While I was offline' in e['content']['body']]
    check(len(offline) == 1 and '!status' in offline[0]['content']['body']
          and ALICE in offline[0]['content']['body'], 'no offline list: %r' % replies(evs))
    check(old not in got, 'an old command ran')
    # a second restart replays nothing
    b.stop()
    b.start()
    probe = t.hs.send(t.room_id, BOB, '!status')
    t.hs.wait(t.room_id, 5)
    check(answered(t.hs, t.room_id) == [live, fresh1, fresh2, probe],
          'commands ran twice: %r' % answered(t.hs, t.room_id))


@test
def burst_during_outage_is_filled_from_messages(t):
    t.hs.config(rate_limit=False)     # 140 replies: rc_message would take 10 min
    # timeline limit of the bot's filter is 50: 70 commands make a gap
    b = t.bot().start()
    b.stop()
    sent = [t.hs.send(t.room_id, ALICE, '!status') for _ in range(70)]
    b.start()
    t.hs.wait(t.room_id, 70, timeout=60)
    got = answered(t.hs, t.room_id)
    check(got == sent, 'commands lost or repeated: %d of %d, dupes %d'
          % (len(set(got) & set(sent)), len(sent), len(got) - len(set(got))))
    check('gap in' in b.log_text(), 'no gap was seen; the test proves nothing')


@test
def limited_live_timeline_is_filled(t):
    b = t.bot().start()
    first = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    t.hs.call('POST', '/_test/limit', {'room_id': t.room_id, 'limit': 1})
    cmds = [t.hs.send(t.room_id, BOB, '!help') for _ in range(4)]
    t.hs.wait(t.room_id, 5)
    got = answered(t.hs, t.room_id)
    check(got == [first] + cmds, 'gap not filled: %r' % got)
    check('gap in' in b.log_text(), 'the sync was not limited')


@test
def replayed_events_are_not_handled_twice(t):
    t.bot().start()
    c1 = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    t.hs.call('POST', '/_test/replay', {'count': 5})
    c2 = t.hs.send(t.room_id, ALICE, '!help')
    t.hs.wait(t.room_id, 2)
    c3 = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 3)
    check(answered(t.hs, t.room_id) == [c1, c2, c3], 'replay re-ran a command: %r'
          % answered(t.hs, t.room_id))


@test
def homeserver_answering_sync_at_once_without_moving_on_is_not_hammered(t):
    """A server (or a cache in front of it) that answers every /sync at
    once with the position it was asked from would have the bot ask again
    thousands of times a second.  It asks less often until the position
    moves, then answers commands as before.  Was a bug: a replayed answer
    cached under its request's token made the bot spin at 400 syncs/s."""
    b = t.bot().start()
    c1 = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    t.hs.call('POST', '/_test/faults', {'kind': 'stale_sync', 'count': 6})
    deadline = time.time() + 60
    while True:
        stale = [r for r in t.hs.call('GET', '/_test/requests')['requests']
                 if r['fault'] == 'stale_sync']
        if len(stale) == 6 or time.time() > deadline:
            break
        time.sleep(0.2)
    check(len(stale) == 6, 'the stale answers were not all asked for: %d' % len(stale))
    # two are taken as they come, then 0.25-0.5, 0.5-1 and 1-2 s between
    span = stale[-1]['time'] - stale[0]['time']
    check(span >= 1.5, 'six answers that did not move on were asked again within %.2f s' % span)
    check('without moving on' in b.log_text(), 'the stall was not logged')
    c2 = t.hs.send(t.room_id, ALICE, '!help')
    t.hs.wait(t.room_id, 2, timeout=30)
    check(answered(t.hs, t.room_id) == [c1, c2], 'wrong replies: %r' % answered(t.hs, t.room_id))
    b.wait_log('moves on again')


@test
def storm_of_429_delivers_everything_once_in_order(t):
    t.hs.config(rate_limit=False)     # 140 replies: rc_message would take 10 min
    t.bot().start()
    t.hs.fault('429', count=8, mode='header', retry_after_ms=1000, path_regex='/send/')
    t.hs.fault('429', count=8, mode='body', retry_after_ms=150, path_regex='/send/')
    t.hs.fault('429', count=4, mode='both', retry_after_ms=100, path_regex='/send/')
    cmds = [t.hs.send(t.room_id, ALICE, '!status') for _ in range(10)]
    t.hs.wait(t.room_id, 10, timeout=60)
    got = answered(t.hs, t.room_id)
    check(got == cmds, 'replies lost, doubled or out of order: %r' % got)
    reqs = t.hs.call('GET', '/_test/requests')['requests']
    check(sum(1 for r in reqs if r['status'] == 429) == 20, 'the storm did not happen')


@test
def commands_one_after_another_are_each_answered_at_once(t):
    """Was a bug (fixed; bot/matrix/matrix.c, mx_kick): a request that a
    kick of the transfers finished (the next /sync, answered at once with
    the bot's own reply) waited in curl's queue while the loop slept, up
    to a minute, so the next command went unanswered that long.  It took
    a handful of commands in a row to meet it."""
    t.hs.config(rate_limit=False)
    t.bot().start()
    for i in range(40):
        cmd = t.hs.send(t.room_id, ALICE, '!status')
        t0 = time.time()
        t.hs.wait(t.room_id, i + 1, timeout=10)
        check(answered(t.hs, t.room_id)[-1] == cmd, 'command %d: not answered last' % i)
        check(time.time() - t0 < 5, 'command %d answered after %.1f s' % (i, time.time() - t0))


@test
def retried_send_reuses_txn_id(t):
    t.bot().start()
    # the server stores the event, then the connection drops: the retry
    # must carry the same txnId so that the server does not store it again
    t.hs.fault('drop', count=2, after=True, path_regex='/send/')
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1, timeout=30)
    evs = [e for e in t.hs.call('GET', '/_test/events?room_id=%s&sender=%s' % (t.room_id, BOT))['events']
           if 'state_key' not in e['event']]
    txns = [e['txn_id'] for e in evs]
    check(len(evs) == 1 and len(set(txns)) == 1, 'duplicated events: %r' % txns)
    check(answered(t.hs, t.room_id) == [cmd], 'wrong reply')


@test
def homeserver_down_for_30s_recovers_and_delivers(t):
    b = t.bot().start()
    t.hs.fault('outage', duration_ms=30000)
    t0 = time.time()
    cmds = [t.hs.send(t.room_id, ALICE, '!status') for _ in range(3)]
    t.hs.wait(t.room_id, 3, timeout=90)
    check(time.time() - t0 >= 29, 'the outage did not last')
    check(answered(t.hs, t.room_id) == cmds, 'lost in the outage: %r' % answered(t.hs, t.room_id))
    check('sync:' in b.log_text() and 'retrying' in b.log_text(), 'no retry logged')


@test
def server_errors_are_retried(t):
    t.bot().start()
    t.hs.fault('502', count=3, path_regex='/send/')
    t.hs.fault('500', count=2, path_regex='/sync')
    t.hs.fault('slow', count=1, delay_ms=1500, path_regex='/send/')
    cmds = [t.hs.send(t.room_id, ALICE, '!help'), t.hs.send(t.room_id, BOB, '!status')]
    t.hs.wait(t.room_id, 2, timeout=60)
    check(answered(t.hs, t.room_id) == cmds, 'not delivered: %r' % answered(t.hs, t.room_id))


@test
def outbox_survives_kill_and_delivers_after_restart(t):
    b = t.bot().start()
    t.hs.fault('503', count=1000, path_regex='/send/')
    cmds = [t.hs.send(t.room_id, ALICE, '!status') for _ in range(3)]
    b.wait_log('send: HTTP 503', timeout=20)
    deadline = time.time() + 20
    while len(os.listdir(os.path.join(b.state_dir, 'outbox'))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    b.kill9()
    queued = len(os.listdir(os.path.join(b.state_dir, 'outbox')))
    check(queued == 3, 'outbox holds %d items, expected 3' % queued)
    t.hs.call('POST', '/_test/reset_faults', {})
    b.start()
    t.hs.wait(t.room_id, 3, timeout=30)
    got = answered(t.hs, t.room_id)
    check(got == cmds, 'after kill -9: %r' % got)


@test
def hostile_sync_responses_do_not_crash(t):
    b = t.bot().start()
    bodies = [
        '', 'null', '[]', '{', '{"next_batch": 5}', '{"next_batch": ""}',
        '{"next_batch": "x", "rooms": []}',
        '{"next_batch": "x", "rooms": {"join": {"%s": {"timeline": {"events": {"a": 1}}}}}}' % t.room_id,
        '{"next_batch": "x", "rooms": {"join": {"%s": {"timeline": {"events": [1, "a", null, {"type": 5}, '
        '{"type": "m.room.message", "sender": "%s", "content": "nope"}, '
        '{"type": "m.room.message", "sender": "%s", "event_id": "$z", "content": {"msgtype": "m.text", "body": 7}}]}}}}}'
        % (t.room_id, ALICE, ALICE),
        '{"next_batch": "x", "rooms": {"invite": {"!q:localhost": {"invite_state": 3}}}}',
        '[' * 100000, '"' + 'a' * 3000000 + '"', '{"next_batch": "\\ud800"}',
    ]
    for body in bodies:
        t.hs.call('POST', '/_test/raw_sync', {'body': body})
        b.wait_log('sync', timeout=10)
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1, timeout=60)
    check(b.proc.poll() is None, 'backupbot died')
    check(cmd in answered(t.hs, t.room_id), 'no answer after hostile syncs')


@test
def sigterm_exits_zero_and_sighup_reloads(t):
    b = t.bot().start()
    b.write_config(prefix='bb!')
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log('configuration reloaded')
    cmd = t.hs.send(t.room_id, ALICE, 'bb!status')
    t.hs.wait(t.room_id, 1)
    check(answered(t.hs, t.room_id) == [cmd], 'new prefix not in use')
    with open(b.conf, 'a') as f:
        f.write('bogus line\n')
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log('keeping the running configuration')
    cmd2 = t.hs.send(t.room_id, ALICE, 'bb!help')
    t.hs.wait(t.room_id, 2)
    check(answered(t.hs, t.room_id) == [cmd, cmd2], 'bad reload changed something')
    b.stop(signal.SIGTERM, expect=0)
    check('stopped' in b.log_text(), 'no clean stop')


@test
def bad_token_at_startup_exits_nonzero(t):
    b = t.bot()
    with open(os.path.join(t.tmp, 'token'), 'w') as f:
        f.write('wrong-token\n')
    b.start(wait_ready=False)
    rc = b.proc.wait(20)
    check(rc != 0, 'started with a bad token')
    check('was refused' in b.log_text() and 'M_UNKNOWN_TOKEN' in b.log_text(), b.log_text())


@test
def bad_config_lists_every_error_with_lines(t):
    conf = os.path.join(t.tmp, 'bad.conf')
    with open(conf, 'w') as f:
        f.write('[matrix]\nhomeserver = ftp://x\nuser_id = bot\nfoo = 1\n'
                'rooms = !a:b,\nnot a key line\n[weird]\n[storage]\n'
                'state_dir = relative\n')
    for sub in ('run', 'check'):
        p = subprocess.run([BACKUPBOT, '-c', conf, sub], capture_output=True, text=True, timeout=20)
        out = p.stdout + p.stderr
        check(p.returncode != 0, '%s accepted a bad config' % sub)
        for want in ('bad.conf:2: homeserver', 'bad.conf:3: user_id', "bad.conf:4: unknown key 'foo'",
                     'bad.conf:5: rooms: empty list item', 'bad.conf:6: expected', 'bad.conf:7: unknown section',
                     'bad.conf:9: state_dir', 'admins is required', 'access_token_file or password_file'):
            check(want in out, '%s: %r missing from:\n%s' % (sub, want, out))


@test
def secret_files_readable_by_others_are_refused(t):
    b = t.bot()
    os.chmod(os.path.join(t.tmp, 'token'), 0o644)
    p = subprocess.run([BACKUPBOT, '-c', b.conf, 'check'], capture_output=True, text=True, timeout=20)
    check(p.returncode != 0 and 'too open' in p.stdout + p.stderr and 'bot.conf:4' in p.stdout + p.stderr,
          p.stdout + p.stderr)


@test
def check_reports_rooms(t):
    enc = t.hs.room(creator=ALICE, members=[ALICE, BOT], encrypted=True)
    absent = t.hs.room(creator=ALICE, members=[ALICE])
    b = t.bot()
    p = subprocess.run([BACKUPBOT, '-c', b.conf, 'check'], capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, 'check failed on a good setup:\n' + p.stdout + p.stderr)
    check('ok: logged in' in p.stdout and 'not encrypted' in p.stdout and 'power level' in p.stdout, p.stdout)
    b.write_config(rooms=[t.room_id, enc, absent])
    p = subprocess.run([BACKUPBOT, '-c', b.conf, 'check'], capture_output=True, text=True, timeout=30)
    check(p.returncode == 1, 'check passed with an encrypted and an unjoined room')
    check('error: room %s: end-to-end encrypted' % enc in p.stdout, p.stdout)
    check('error: room %s (%s): not joined' % (absent, absent) in p.stdout, p.stdout)


@test
def password_login_keeps_its_device(t):
    b = t.bot(auth='password').start()
    first = json.load(open(os.path.join(b.state_dir, 'session')))['device_id']
    b.stop()
    b.start()
    cmd = t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 1)
    check(answered(t.hs, t.room_id) == [cmd], 'no answer with a password login')
    reqs = t.hs.call('GET', '/_test/requests')['requests']
    logins = [r for r in reqs if r['method'] == 'POST' and r['path'].endswith('/login')]
    check(len(logins) == 1, 'logged in %d times; the session was not kept' % len(logins))
    check(oct(os.stat(os.path.join(b.state_dir, 'session')).st_mode & 0o777) == '0o600', 'session not 0600')
    # a revoked session: log in again with the same device id
    t.hs.fault('unknown_token', count=1, path_regex='/whoami')
    b.stop()
    b.start()
    second = json.load(open(os.path.join(b.state_dir, 'session')))['device_id']
    check(first == second, 'device id changed: %s -> %s' % (first, second))


@test
def secrets_never_reach_logs_urls_or_chat(t):
    b = t.bot().start()
    t.hs.send(t.room_id, ALICE, '!status')
    t.hs.send(t.room_id, ALICE, '!help')
    t.hs.wait(t.room_id, 2)
    b.stop()
    b2 = t.bot(name='bot2', auth='password').start()
    t.hs.send(t.room_id, ALICE, '!status')
    t.hs.wait(t.room_id, 3)
    b2.stop()
    for secret in (BOT_TOKEN, BOT_PASSWORD):
        check(secret not in b.log_text() + b2.log_text(), 'a secret is in the bot log')
        for e in t.hs.events(t.room_id):
            check(secret not in json.dumps(e), 'a secret reached the room')
    with open(t.hs.log) as f:
        for line in f:
            req = json.loads(line)
            check(BOT_TOKEN not in req.get('path', ''), 'token in a URL: %s' % req['path'])
            body = req.get('body') or ''
            if BOT_PASSWORD in body:
                check(req['path'].endswith('/login'), 'password sent to %s' % req['path'])
    # and never in argv: /proc/PID/cmdline of a running bot
    b.start()
    with open('/proc/%d/cmdline' % b.proc.pid, 'rb') as f:
        check(BOT_TOKEN.encode() not in f.read(), 'token in argv')
