#!/usr/bin/python3
"""peer_bot.py - the hand-written script backupbot replaces, as a peer for
the latency benchmark: a minimal Matrix bot in Python (urllib, blocking
/sync long-poll, one PUT per reply).  It answers "!status" in a thread.

    peer_bot.py HOMESERVER_URL TOKEN_FILE ROOM_ID
"""
import json
import sys
import urllib.parse
import urllib.request
import uuid

hs, token_file, room = sys.argv[1:4]
token = open(token_file).read().strip()


def call(method, path, body=None):
    req = urllib.request.Request(hs + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={'Authorization': 'Bearer ' + token,
                                          'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


since = call('GET', '/_matrix/client/v3/sync?timeout=0')['next_batch']
print('READY', flush=True)
while True:
    s = call('GET', '/_matrix/client/v3/sync?timeout=30000&since=' + urllib.parse.quote(since))
    since = s['next_batch']
    for ev in s.get('rooms', {}).get('join', {}).get(room, {}).get('timeline', {}).get('events', []):
        if ev.get('type') == 'm.room.message' and ev['content'].get('body') == '!status':
            call('PUT', '/_matrix/client/v3/rooms/%s/send/m.room.message/%s'
                 % (urllib.parse.quote(room, safe=''), uuid.uuid4().hex),
                 {'msgtype': 'm.notice', 'body': 'ok',
                  'm.relates_to': {'rel_type': 'm.thread', 'event_id': ev['event_id'],
                                   'is_falling_back': True,
                                   'm.in_reply_to': {'event_id': ev['event_id']}}})
