#!/usr/bin/python3
"""demo.py - backupbot end to end on throwaway local servers.

Starts the test homeserver, creates an admin, a backend room and the bot's
account, runs the real ./backupbot, sends commands as the admin and prints
the room as a transcript.  Everything lives in a temp dir removed at exit.
"""
import os
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
            print('[%s] %s edited its message to: %s' % (when, e['sender'], body))
            continue
        if e['type'] == 'm.reaction':
            print('[%s] %s reacted %s to "%s"' % (when, e['sender'], rel.get('key'), target))
            continue
        where = ' (thread "%s")' % target if rel.get('rel_type') == 'm.thread' else ''
        kind = ' [notice]' if e['content'].get('msgtype') == 'm.notice' else ''
        body = e['content'].get('body', '').replace('\n', '\n' + ' ' * 13)
        print('[%s] %s%s%s: %s' % (when, e['sender'], kind, where, body))


def main():
    t = harness.Test('demo')
    failed = True
    try:
        print('test homeserver on %s, state in %s' % (t.hs.url, t.tmp))
        print('starting a throwaway PostgreSQL cluster with a Mastodon-like database ...')
        pg = harness.Postgres(t, size_mb=30)
        remote = os.path.join(t.tmp, 'offsite')
        bot = t.bot()
        with open(bot.conf) as f:
            conf = f.read()
        conf = conf[:conf.index('[storage]')] + (
            '[storage]\nstate_dir = %s\nbackup_dir = %s\n\n%s\n[remote offsite]\npath = %s\n'
            % (os.path.join(t.tmp, 'state'), os.path.join(t.tmp, 'backups'),
               pg.section('mastodon', 'keep = last=3 daily=7\nremotes = offsite'), remote))
        with open(bot.conf, 'w') as f:
            f.write(conf)
        bot.start()
        seen = set(e['event_id'] for e in t.hs.events(t.room_id))
        print('--- transcript of the backend room %s ---' % t.room_id)
        for sender, text, until in ((ALICE, '!help', 'backupbot commands'),
                                    (ALICE, '!stauts', 'did you mean'),
                                    (EVE, '!status', 'only the configured admins'),
                                    (ALICE, '!backup mastodon', '✅ backup of mastodon'),
                                    (BOB, '!list', 'Catalog'),
                                    (BOB, '!status', 'uptime')):
            t.hs.send(t.room_id, sender, text)
            deadline = time.time() + 120
            while not any(until in e['content'].get('body', '')
                          for e in t.hs.events(t.room_id, sender=BOT)):
                if time.time() > deadline:
                    raise SystemExit('demo: no answer to %s' % text)
                time.sleep(0.05)
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
