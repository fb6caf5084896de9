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
from harness import ALICE, BOT, EVE  # noqa: E402


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
        bot = t.bot().start()
        bot.wait_log('first start')
        seen = set(e['event_id'] for e in t.hs.events(t.room_id))
        print('--- transcript of the backend room %s ---' % t.room_id)
        n = 0
        for sender, text in ((ALICE, '!help'), (ALICE, '!status'), (ALICE, '!stauts'),
                             (EVE, '!status')):
            t.hs.send(t.room_id, sender, text)
            n += 1 if sender == EVE else 2
            t.hs.wait(t.room_id, n)
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
