#!/usr/bin/python3
"""demo.py - backupbot end to end on throwaway local servers.

Starts the test homeserver, creates an admin, a backend room and the bot's
account, runs the real ./backupbot, sends commands as the admin and prints
the room as a transcript.  Everything lives in a temp dir removed at exit.
"""
import calendar
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'integration'))
import harness  # noqa: E402
from harness import ALICE, BOB, BOT, EVE  # noqa: E402


def show(hs, room, seen):
    names = {}
    for e in hs.events(room):
        names[e['event_id']] = e['content'].get('body', '')
        if e['event_id'] in seen:
            continue
        seen.add(e['event_id'])
        when = time.strftime('%H:%M:%S', time.localtime(e['origin_server_ts'] / 1000))
        rel = e['content'].get('m.relates_to', {})
        target = names.get(rel.get('event_id'), '?').split('\n')[0][:40]
        if rel.get('rel_type') == 'm.replace':
            body = e['content'].get('m.new_content', {}).get('body', '')
            print('[%s] %s edited its message to: %s' % (when, e['sender'],
                                                         body.replace('\n', '\n' + ' ' * 13)))
            continue
        if e['type'] == 'm.reaction':
            print('[%s] %s reacted %s to "%s"' % (when, e['sender'], rel.get('key'), target))
            continue
        where = ' (thread "%s")' % target if rel.get('rel_type') == 'm.thread' else ''
        kind = ' [notice]' if e['content'].get('msgtype') == 'm.notice' else ''
        body = e['content'].get('body', '').replace('\n', '\n' + ' ' * 13)
        print('[%s] %s%s%s: %s' % (when, e['sender'], kind, where, body))


def demo_targets(t):
    """Redis with some keys, a media store, a config tree in git."""
    global RUN_AT, SCHEDULE
    rdir = os.path.join(t.tmp, 'redis')
    port = harness.free_port()
    subprocess.run(['bash', os.path.join(harness.ROOT, 'tests', 'redis', 'server.sh'), 'start',
                    rdir, str(port)], check=True, capture_output=True)
    t.cleanups.append(lambda: subprocess.run(
        ['bash', os.path.join(harness.ROOT, 'tests', 'redis', 'server.sh'), 'stop', rdir],
        capture_output=True))
    for i in range(200):
        subprocess.run(['redis-cli', '-p', str(port), 'SET', 'timeline:%d' % i, 'status %d' % i],
                       check=True, capture_output=True)
    subprocess.run(['redis-cli', '-p', str(port), 'LPUSH', 'queue:default', 'job1', 'job2'],
                   check=True, capture_output=True)
    media = os.path.join(t.tmp, 'cdn')
    for i in range(50):
        d = os.path.join(media, 'media_attachments', '%03d' % (i % 7))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'file%d.png' % i), 'wb') as f:
            f.write(os.urandom(2048))
    conf = os.path.join(t.tmp, 'etc-mastodon')
    os.makedirs(conf)
    with open(os.path.join(conf, 'env.production'), 'w') as f:
        f.write('LOCAL_DOMAIN=example.org\n')
    git = ['git', '-C', conf, '-c', 'user.name=demo', '-c', 'user.email=demo@example.org']
    subprocess.run(git[:3] + ['init', '-q'], check=True)
    subprocess.run(git + ['add', '.'], check=True)
    subprocess.run(git + ['commit', '-qm', 'initial'], check=True)
    with open(os.path.join(conf, 'env.production'), 'a') as f:
        f.write('S3_ENABLED=true\n')
    RUN_AT = run_at()
    SCHEDULE = '%d %d * * *' % (time.gmtime(RUN_AT).tm_min, time.gmtime(RUN_AT).tm_hour)
    return ('[redis cache]\nurl = redis://127.0.0.1:%d/0\nkeep = last=3\nremotes = offsite\n'
            'timezone = UTC\nschedule = %s\n\n'
            '[media cdn]\nsource = %s\ndestinations = %s\nflags = --transfers 4\n\n'
            '[files config]\npaths = %s\ngit_repos = %s\nkeep = last=10\nremotes = offsite\n\n'
            % (port, SCHEDULE, media, os.path.join(t.tmp, 'cdn-copy'), conf, conf))


def run_at():
    """A whole minute at least 40 s away: the cache's daily schedule
    comes during the demo."""
    return (int(time.time()) + 40) // 60 * 60 + 60


RUN_AT = 0
SCHEDULE = ''


def wait_for(t, text, timeout=120, count=1):
    deadline = time.time() + timeout
    while True:
        got = [e for e in t.hs.events(t.room_id, sender=BOT)
               if text in e['content'].get('m.new_content', e['content']).get('body', '')]
        if len(got) >= count:
            return got[count - 1]
        if time.time() > deadline:
            raise SystemExit('demo: no message with %r' % text)
        time.sleep(0.05)


def main():
    t = harness.Test('demo')
    failed = True
    try:
        print('test homeserver on %s, state in %s' % (t.hs.url, t.tmp))
        print('starting a throwaway PostgreSQL cluster with a Mastodon-like database ...')
        pg = harness.Postgres(t, size_mb=30)
        remote = os.path.join(t.tmp, 'offsite')
        extra = demo_targets(t)
        bot = t.bot()
        with open(bot.conf) as f:
            conf = f.read()
        conf = conf[:conf.index('[storage]')] + (
            '[storage]\nstate_dir = %s\nbackup_dir = %s\n\n%s\n[remote offsite]\npath = %s\n'
            % (os.path.join(t.tmp, 'state'), os.path.join(t.tmp, 'backups'),
               pg.section('mastodon', 'keep = last=3 daily=7\nremotes = offsite\n'
                          'restore_conninfo = host=%s port=%d dbname=%s user=postgres\n'
                          % (pg.dir, pg.port, pg.db)) + extra, remote))
        with open(bot.conf, 'w') as f:
            f.write(conf)
        bot.start()
        seen = set(e['event_id'] for e in t.hs.events(t.room_id))
        print('--- transcript of the backend room %s ---' % t.room_id)
        for sender, text, until in ((ALICE, '!help', 'backupbot commands'),
                                    (ALICE, '!stauts', 'did you mean'),
                                    (EVE, '!status', 'only the configured admins'),
                                    (ALICE, '!backup mastodon', '✅ backup of mastodon'),
                                    (ALICE, '!backup all', 'Summary'),
                                    (BOB, '!list', 'Catalog'),
                                    (ALICE, '!restore mastodon latest', '🔐 Restore request')):
            t.hs.send(t.room_id, sender, text)
            wait_for(t, until)
            show(t.hs, t.room_id, seen)
        # a second admin approves the plan with a ✅ reaction
        plan = wait_for(t, '🔐 Restore request')
        t.hs.send(t.room_id, BOB, type='m.reaction', content={'m.relates_to': {
            'rel_type': 'm.annotation', 'event_id': plan['event_id'], 'key': '✅'}})
        done = wait_for(t, 'restored into mastodon_restore_')
        show(t.hs, t.room_id, seen)
        into = re.search(r'mastodon_restore_\d+', done['content']['body']).group(0)
        print('--- the restored database %s has the same rows as mastodon: %s'
              % (into, pg.fingerprint(into) == pg.fingerprint()))
        for sender, text, until in ((BOB, '!verify mastodon', 'restore drill of mastodon'),):
            t.hs.send(t.room_id, sender, text)
            wait_for(t, until)
            show(t.hs, t.room_id, seen)
        print('--- waiting for the scheduled backup of cache (schedule = %s, timezone = UTC) ...'
              % SCHEDULE)
        wait_for(t, '🗓 Backups', timeout=150)
        wait_for(t, '✅ backup of cache\n', timeout=60, count=2)
        show(t.hs, t.room_id, seen)
        t.hs.send(t.room_id, BOB, '!status')
        wait_for(t, 'backup_dir:')
        show(t.hs, t.room_id, seen)
        bot.stop()
        print('--- backupbot stopped cleanly on SIGTERM (exit 0)')
        failed = False
    finally:
        v = t.finish(failed)
        if v:
            print('spec violations: %r' % v)
            failed = True
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
