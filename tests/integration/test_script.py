"""The operators' own scripts: [script NAME] targets and the hooks of every
target, run by the real daemon and the real CLI.

A script runs from the chat and on a schedule, and its last 20 lines come
back in the thread, escaped; a timeout, a !cancel and a child that
outlives its script all end with its process group killed; output =
backup goes through the pipeline into the catalog and back through
restore_command after an approval; hooks run around a real pg_dump (a
failing pre_hook keeps pg_dump from starting) and around a restore; a
world-writable script is refused by `backupbot check`.
"""
import glob
import json
import os
import re
import subprocess
import time

from harness import (ALICE, BACKUPBOT, BOB, BOT, Postgres, check, rel, replies, test)
from test_backup_chat import bodies, wait_body
from test_restore_chat import plan_of
from test_schedule import day_root, fake_clock, in_thread, next_utc


def script(t, name, body):
    """An executable /bin/sh script in the test's dir (mode 0755)."""
    path = os.path.join(t.tmp, name)
    with open(path, 'w') as f:
        f.write('#!/bin/sh\n' + body)
    os.chmod(path, 0o755)
    return path


def configure(t, body, storage='', restore=''):
    """A bot whose targets are `body`; not started."""
    b = t.bot()
    with open(b.conf) as f:
        conf = f.read()
    conf = conf[:conf.index('[storage]')]
    conf += ('[storage]\nstate_dir = %s\nbackup_dir = %s\n%s\n\n[restore]\n%s\n\n%s'
             % (b.state_dir, os.path.join(t.tmp, 'backups'), storage, restore, body))
    with open(b.conf, 'w') as f:
        f.write(conf)
    return b


def shell(b, *args, timeout=120):
    return subprocess.run([BACKUPBOT, '-c', b.conf] + list(args), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def pgrep(pattern):
    return subprocess.run(['pgrep', '-af', pattern], capture_output=True,
                          text=True).stdout.strip()


def wait_gone(pattern, timeout=15):
    deadline = time.time() + timeout
    while pgrep(pattern):
        check(time.time() < deadline, 'still running after %ss: %s' % (timeout, pgrep(pattern)))
        time.sleep(0.05)


def reply_event(t, text):
    """The bot's message (not an edit) whose body contains text."""
    for e in replies(t.hs.events(t.room_id, sender=BOT)):
        if rel(e).get('rel_type') != 'm.replace' and text in e['content'].get('body', ''):
            return e
    return None


def env_of(path):
    with open(path) as f:
        return dict(line.rstrip('\n').split('=', 1) for line in f if '=' in line)


@test
def script_from_chat_posts_its_last_lines_in_the_thread(t):
    hello = script(t, 'hello.sh',
                   'i=1\nwhile [ $i -le 30 ]; do echo "line $i <b>&amp;</b>"; i=$((i+1)); done\n'
                   'echo "who: $BACKUPBOT_TARGET $BACKUPBOT_TRIGGER $BACKUPBOT_JOB $GREETING" >&2\n'
                   'env > "%s/env.txt"\npwd >> "%s/env.txt"\n' % (t.tmp, t.tmp))
    b = configure(t, '[script hello]\ncommand = %s --flag\nenv = GREETING=hi \'SPACED=a b\'\n'
                  'workdir = /tmp\n' % hello)
    b.start()
    cmd = t.hs.send(t.room_id, ALICE, '!backup hello')
    done = wait_body(t, '✅ script hello')[0]
    ev = reply_event(t, '✅ script hello')
    check(rel(ev).get('rel_type') == 'm.thread' and rel(ev)['event_id'] == cmd, 'not in the thread')
    check('exited with status 0' in done, done)
    # the last 20 lines only, escaped in a code block
    check('line 30 ' in done and 'line 12 ' in done and 'line 10 ' not in done, done)
    check('who: hello chat 1 hi' in done, done)
    html = ev['content']['formatted_body']
    check('<pre>' in html and '&lt;b&gt;&amp;amp;&lt;/b&gt;' in html and '<b>&amp;' not in html,
          html)
    # the full output is in the log, named after the run
    bid = re.search(r'(hello-\d{8}T\d{6}Z)', done).group(1)
    log = os.path.join(b.state_dir, 'logs', 'hello', bid + '.log')
    check(log in done, 'the log is not named: %s' % done)
    text = open(log).read()
    check('line 1 <b>' in text and 'line 30 <b>' in text, text)
    # a clean environment: ours is not passed on
    env = env_of(os.path.join(t.tmp, 'env.txt'))
    check(env.get('SPACED') == 'a b' and env.get('BACKUPBOT_ID') == bid, env)
    check(not any(k.startswith(('LD_', 'ASAN', 'BB_')) for k in env) and 'HOME' in env
          and set(env) - {'PWD', 'SHLVL', '_', 'OLDPWD'} ==
          {'PATH', 'HOME', 'GREETING', 'SPACED', 'BACKUPBOT_TARGET', 'BACKUPBOT_JOB',
           'BACKUPBOT_TRIGGER', 'BACKUPBOT_ID'}, env)
    check(open(os.path.join(t.tmp, 'env.txt')).read().rstrip().endswith('/tmp'), 'workdir')
    # !status and !list know it
    t.hs.send(t.room_id, BOB, '!status hello')
    st = wait_body(t, 'hello (script): ')[0]
    check('hello (script): last good run' in st, st)
    t.hs.send(t.room_id, BOB, '!list hello')
    lst = wait_body(t, 'its output kept as logs')[0]
    check('last run' in lst and 'ok' in lst, lst)


@test
def script_runs_on_its_schedule_and_with_backup_all(t):
    tick = script(t, 'tick.sh', 'echo "tick by $BACKUPBOT_TRIGGER"\n')
    pg = Postgres(t, size_mb=1)
    b = configure(t, '[script tick]\ncommand = %s\nschedule = 0 3 * * *\n\n%s'
                  % (tick, pg.section('main')))
    b.env = fake_clock(next_utc(2, 59, 57))
    b.start()
    roots = day_root(t)
    done = in_thread(t, roots[0]['event_id'], '✅ script tick')
    check('tick by schedule' in done['content']['body'], done['content']['body'])
    # !backup all includes scripts
    t.hs.send(t.room_id, ALICE, '!backup all')
    summary = wait_body(t, 'Summary', timeout=120)[0]
    check('tick ok' in summary and 'main ok' in summary, summary)
    check(len(wait_body(t, 'tick by chat')) == 1, bodies(t))


@test
def timeout_cancel_and_a_child_that_outlives_its_script(t):
    slow = script(t, 'slow.sh', 'echo started\nexec sleep 3601\n')
    stuck = script(t, 'stuck.sh', 'echo started\nsleep 3602\n')
    # a child in the background that keeps our pipes open: the run ends
    # when the script does, and its group is killed
    forks = script(t, 'forks.sh', 'sleep 3603 &\necho "left a child"\nexit 0\n')
    b = configure(t, '[script slow]\ncommand = %s\ntimeout = 2s\n\n'
                  '[script stuck]\ncommand = %s\n\n[script forks]\ncommand = %s\n'
                  % (slow, stuck, forks))
    b.start()
    t.hs.send(t.room_id, ALICE, '!backup slow')
    failed = wait_body(t, '❌ backup of slow failed', timeout=30)[0]
    check('timed out after 2s' in failed and 'signal 15' in failed, failed)
    check('started' in failed, 'its output is not shown: %s' % failed)
    wait_gone('sleep 3601')

    t.hs.send(t.room_id, ALICE, '!backup stuck')
    wait_body(t, '⏳ backup of stuck')
    deadline = time.time() + 10
    while not pgrep('sleep 3602'):
        check(time.time() < deadline, 'stuck.sh never started its sleep')
        time.sleep(0.05)
    t.hs.send(t.room_id, BOB, '!cancel stuck')
    msg = wait_body(t, 'cancelled by', timeout=20)[0]
    check(BOB in msg, msg)
    wait_gone('sleep 3602', 5)

    t0 = time.time()
    t.hs.send(t.room_id, ALICE, '!backup forks')
    part = wait_body(t, '⚠️ script forks', timeout=30)[0]
    check(time.time() - t0 < 20, 'the run waited for the child')
    check('process group was killed' in part and 'left a child' in part, part)
    wait_gone('sleep 3603', 5)


@test
def output_backup_round_trips_through_restore_command(t):
    data = os.path.join(t.tmp, 'service.db')
    with open(data, 'wb') as f:
        f.write(os.urandom(300000) + b'\n'.join(b'row %d' % i for i in range(20000)))
    restored = os.path.join(t.tmp, 'restored.db')
    hooks = os.path.join(t.tmp, 'hooks.txt')
    dump = script(t, 'dump.sh', 'cat "%s"\necho "dumped" >&2\n' % data)
    load = script(t, 'load.sh', 'cat > "%s"\necho "loaded $BACKUPBOT_ID"\n' % restored)
    mark = script(t, 'mark.sh', 'echo "$1 $BACKUPBOT_STATUS $BACKUPBOT_ID" >> "%s"\n' % hooks)
    b = configure(t, '[script svc]\ncommand = %s\noutput = backup\nrestore_command = %s\n'
                  'keep = last=3\npre_restore_hook = %s maintenance-on\n'
                  'post_restore_hook = %s maintenance-off\n' % (dump, load, mark, mark))
    b.start()
    t.hs.send(t.room_id, ALICE, '!backup svc')
    done = wait_body(t, '✅ backup of svc', timeout=60)[0]
    check('blake2b' in done, done)
    bid = re.search(r'(svc-\d{8}T\d{6}Z)', done).group(1)
    man = json.load(open(os.path.join(t.tmp, 'backups', 'svc', bid + '.json')))
    check(man['kind'] == 'script' and man['bytes_raw'] == os.path.getsize(data), man)
    check(man['file'].endswith('.out.zst'), man)
    # a restore needs another admin's approval and names its hooks
    t.hs.send(t.room_id, ALICE, '!restore svc latest')
    plan, req = plan_of(t)
    body = plan['content']['body']
    for part in ('load.sh with the backup on its stdin', 'pre_restore_hook',
                 'post_restore_hook'):
        check(part in body, 'plan lacks %r:\n%s' % (part, body))
    check(not os.path.exists(restored) and not os.path.exists(hooks), 'ran before approval')
    t.hs.send(t.room_id, BOB, '!approve %s' % req)
    ok = wait_body(t, '✅ restore of svc', timeout=60)[0]
    check('loaded ' + bid in ok, ok)
    check(open(restored, 'rb').read() == open(data, 'rb').read(), 'restored bytes differ')
    check(open(hooks).read() == 'maintenance-on started %s\nmaintenance-off ok %s\n'
          % (bid, bid), open(hooks).read())


@test
def hooks_around_a_postgres_backup_and_a_failing_pre_hook(t):
    pg = Postgres(t, size_mb=1)
    record = os.path.join(t.tmp, 'hooks.txt')
    ran = os.path.join(t.tmp, 'pg_dump-ran')
    pg_dump = script(t, 'pg_dump', 'touch "%s"\nexec pg_dump "$@"\n' % ran)
    mark = script(t, 'mark.sh', 'echo "$1|$BACKUPBOT_TARGET|$BACKUPBOT_STATUS|$BACKUPBOT_ID|'
                  '$BACKUPBOT_FILE" >> "%s"\n' % record)
    fail = script(t, 'fail.sh', 'echo "the CDN answers 503" >&2\nexit 3\n')
    b = configure(t, pg.section('main', 'pg_dump = %s\npre_hook = %s pre\npost_hook = %s post\n'
                                'on_failure_hook = %s failure\n' % (pg_dump, mark, mark, mark)))
    r = shell(b, 'backup', 'main')
    check(r.returncode == 0, r.stdout + r.stderr)
    bid = re.search(r'(main-\d{8}T\d{6}Z)', r.stdout).group(1)
    lines = open(record).read().splitlines()
    check(len(lines) == 2 and lines[0].startswith('pre|main|started||'), lines)
    post = lines[1].split('|')
    check(post[:4] == ['post', 'main', 'ok', bid] and os.path.isfile(post[4]) and bid in post[4],
          lines)

    # a failing post_hook: the backup is good, the result partial
    b2 = configure(t, pg.section('main', 'pg_dump = %s\npost_hook = %s\n' % (pg_dump, fail)))
    r = shell(b2, 'backup', 'main')
    check(r.returncode == 1 and 'PARTIAL main' in r.stdout and
          'post_hook %s exited with status 3' % fail in r.stdout and '503' in r.stdout,
          r.stdout + r.stderr)

    # a failing pre_hook: pg_dump never starts; the thread says which hook and why
    os.unlink(ran)
    os.unlink(record)
    b3 = configure(t, pg.section('main', 'pg_dump = %s\npre_hook = %s\n'
                                 'on_failure_hook = %s failure\n' % (pg_dump, fail, mark)))
    b3.start()
    t.hs.send(t.room_id, ALICE, '!backup main')
    failed = wait_body(t, '❌ backup of main failed')[0]
    check('pre_hook %s exited with status 3' % fail in failed and 'the CDN answers 503' in failed,
          failed)
    check(not os.path.exists(ran), 'pg_dump ran after a failing pre_hook')
    check(glob.glob(os.path.join(t.tmp, 'backups', 'main', '*.partial')) == [], 'partial left')
    lines = open(record).read().splitlines()
    check(len(lines) == 1 and lines[0].startswith('failure|main|failed|'), lines)


@test
def check_refuses_a_world_writable_script(t):
    bad = script(t, 'bad.sh', 'echo hi\n')
    good = script(t, 'good.sh', 'echo hi\n')
    b = configure(t, '[script good]\ncommand = %s\n\n[files etc]\npaths = %s\n'
                  'pre_hook = /bin/sh %s\n' % (good, t.tmp, good))
    r = shell(b, 'check')
    check('is valid' in r.stdout + r.stderr, r.stdout + r.stderr)
    os.chmod(bad, 0o777)
    b = configure(t, '[script good]\ncommand = %s\n\n[files etc]\npaths = %s\n'
                  'pre_hook = /bin/sh %s\n' % (bad, t.tmp, bad))
    r = shell(b, 'check')
    out = r.stdout + r.stderr
    check(r.returncode != 0 and 'command: the program %s is writable by everyone' % bad in out
          and 'pre_hook: the program %s is writable by everyone' % bad in out, out)
    # the daemon will not start with it either
    p = subprocess.run([BACKUPBOT, '-c', b.conf, 'run'], capture_output=True, text=True,
                       timeout=30)
    check(p.returncode != 0 and 'writable by everyone' in p.stderr, p.stderr)


@test
def script_runs_as_its_user_when_the_bot_is_root(t):
    if os.geteuid() != 0:
        print('    (skipped: needs root to drop to another user)')
        return
    import pwd
    nobody = pwd.getpwnam('nobody')
    who = script(t, 'who.sh', 'echo "uid=$(id -u) gid=$(id -g) home=$HOME"\n')
    b = configure(t, '[script who]\ncommand = %s\nuser = nobody\n' % who)
    r = shell(b, 'backup', 'who')
    check(r.returncode == 0 and 'uid=%d gid=%d home=%s' % (nobody.pw_uid, nobody.pw_gid,
                                                       nobody.pw_dir) in r.stdout,
          r.stdout + r.stderr)
    # a file of that user's is accepted: it runs as them anyway
    os.chown(who, nobody.pw_uid, nobody.pw_gid)
    r = shell(b, 'check')
    check('is valid' in r.stdout + r.stderr and 'belongs to uid' not in r.stdout + r.stderr,
          r.stdout + r.stderr)
    b = configure(t, '[script who]\ncommand = %s\n' % who)
    r = shell(b, 'check')
    check(r.returncode != 0 and 'belongs to uid %d' % nobody.pw_uid in r.stdout + r.stderr,
          r.stdout + r.stderr)

    # the job killed with -9: the script, another user's now, still dies
    # with it (a change of user clears the death signal; it is set again)
    hang = script(t, 'hang.sh', 'exec sleep 3606\n')
    b = configure(t, '[script hang]\ncommand = %s\nuser = nobody\n' % hang)
    p = subprocess.Popen([BACKUPBOT, '-c', b.conf, 'backup', 'hang'], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.time() + 15
    while not pgrep('sleep 3606'):
        check(time.time() < deadline and p.poll() is None, 'the script never started')
        time.sleep(0.05)
    p.kill()
    p.wait()
    wait_gone('sleep 3606', 5)


@test
def output_backup_is_not_kept_when_the_script_leaves_a_writer_behind(t):
    # the script exits while a child of its still writes the stream
    dump = script(t, 'dump.sh', '(echo first; sleep 3605; echo second) &\necho header\nexit 0\n')
    b = configure(t, '[script half]\ncommand = %s\noutput = backup\n' % dump)
    r = shell(b, 'backup', 'half')
    check(r.returncode == 1 and 'FAILED half' in r.stdout and
          'stream may be incomplete' in r.stdout, r.stdout + r.stderr)
    d = os.path.join(t.tmp, 'backups', 'half')
    check(not os.path.isdir(d) or os.listdir(d) == [], 'kept: %r' % os.listdir(d))
    wait_gone('sleep 3605', 5)
