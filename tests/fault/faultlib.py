"""faultlib.py - what the fault tests share.

Built on tests/integration/harness.py and the integration tests' helpers
(run.py puts tests/integration on sys.path and runs only the tests of
tests/fault).  Every fault test looks at two things: what the bot said in
the room, and what is on disk or in the database afterwards.
"""
import json
import os
import subprocess
import time

from harness import ALICE, BACKUPBOT, BOB, BOT, TestFailure, check, rel, replies

# the tests take these from here too
REEXPORTED = (ALICE, BOB, BOT, check, rel, replies)


def parallel(fn):
    """Run this test in a thread of its own, beside the others: for tests
    that mostly wait out a fault (a 2-minute outage)."""
    fn.parallel = True
    return fn


def bodies(t, room=None):
    """What the bot said, without edits (they repeat a message)."""
    return [e['content'].get('body', '')
            for e in replies(t.hs.events(room or t.room_id, sender=BOT))
            if rel(e).get('rel_type') != 'm.replace']


def edits(t, room=None):
    """The bot's edits, oldest first: (id of the edited event, new body)."""
    return [(rel(e).get('event_id'), e['content'].get('m.new_content', {}).get('body', ''))
            for e in replies(t.hs.events(room or t.room_id, sender=BOT))
            if rel(e).get('rel_type') == 'm.replace']


def wait_body(t, text, timeout=60, count=1, room=None):
    """Wait until the bot has posted `count` messages containing text."""
    deadline = time.time() + timeout
    while True:
        got = [b for b in bodies(t, room) if text in b]
        if len(got) >= count:
            return got
        if time.time() > deadline:
            raise TestFailure('no %d message(s) with %r within %ss; the bot said: %r'
                              % (count, text, timeout, bodies(t, room)))
        t.hs.call('POST', '/_test/wait', dict(room_id=room or t.room_id, sender=BOT,
                                              count=10**9, timeout_ms=200), ok=(200, 408))


def said(t, text, room=None):
    return [b for b in bodies(t, room) if text in b]


def wait_for(what, cond, timeout=30, step=0.05):
    """Poll cond() until it is true; fail naming `what`."""
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise TestFailure('waited %ss for %s' % (timeout, what))
        time.sleep(step)


def approve(t, b, plan, req, who=BOB):
    """✅ on a restore plan once the bot knows the plan's event id (a ✅
    it sees before the answer to its own send is not counted: see
    test_homeserver_faults.a_reaction_before_the_bot_knows_its_plan_still_counts)."""
    path = os.path.join(b.state_dir, 'approvals', req + '.json')
    wait_for('the bot to learn the event id of plan %s' % req,
             lambda: json.load(open(path)).get('plan_event') == plan['event_id'], timeout=30)
    return t.hs.send(t.room_id, who, type='m.reaction', content={'m.relates_to': {
        'rel_type': 'm.annotation', 'event_id': plan['event_id'], 'key': '✅'}})


def conf_with(b, body, storage='', restore=''):
    """Rewrite the bot's config: the harness' [matrix], our [storage],
    [restore] and target sections."""
    with open(b.conf) as f:
        conf = f.read()
    conf = conf[:conf.index('[storage]')]
    conf += ('[storage]\nstate_dir = %s\nbackup_dir = %s\n%s\n\n[restore]\n%s\n\n%s'
             % (b.state_dir, os.path.join(b.t.tmp, 'backups'), storage, restore, body))
    with open(b.conf, 'w') as f:
        f.write(conf)


def shell(b, *args, timeout=180):
    """`backupbot -c BOT.conf ARGS` in a shell, as an operator would."""
    return subprocess.run([BACKUPBOT, '-c', b.conf] + list(args), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def catalog(b, target):
    """Ids in `backupbot list TARGET --json`, newest first."""
    r = shell(b, 'list', target, '--json')
    check(r.returncode == 0, 'list %s: %s%s' % (target, r.stdout, r.stderr))
    return [e['id'] for e in json.loads(r.stdout)]


def verify_quick(b, bid):
    r = shell(b, 'verify', bid, '--quick')
    check(r.returncode == 0, 'verify --quick %s: %s%s' % (bid, r.stdout, r.stderr))


def ledger(b):
    path = os.path.join(b.state_dir, 'ledger.jsonl')
    if not os.path.exists(path):
        return []
    return [json.loads(x) for x in open(path) if x.strip()]


def started(b, kind=None):
    return [x for x in ledger(b) if x['event'] == 'start' and (kind is None or x['kind'] == kind)]


def pgrep(pattern):
    r = subprocess.run(['pgrep', '-af', pattern], capture_output=True, text=True)
    return r.stdout.strip()


def wait_gone(pattern, timeout=15):
    deadline = time.time() + timeout
    while pgrep(pattern):
        if time.time() > deadline:
            raise TestFailure('still running after %ss: %s' % (timeout, pgrep(pattern)))
        time.sleep(0.05)


def leftovers(d):
    """Partial and temporary files in a target's backup dir."""
    return [n for n in (sorted(os.listdir(d)) if os.path.isdir(d) else [])
            if n.endswith(('.partial', '.tmp', '.fetch')) or n.startswith('.')]


def mount_tmpfs(t, path, size, opts=''):
    """A small tmpfs at path (made), unmounted at the end of the test."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0700%s' % (size, opts),
                        'tmpfs', path], capture_output=True, text=True)
    check(r.returncode == 0, 'mount tmpfs at %s: %s' % (path, r.stderr))
    t.cleanups.append(lambda: subprocess.run(['umount', '-l', path], capture_output=True))


def script(t, name, body):
    """An executable /bin/sh script in the test's dir."""
    path = os.path.join(t.tmp, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('#!/bin/sh\n' + body)
    os.chmod(path, 0o755)
    return path

