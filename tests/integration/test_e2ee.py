"""End-to-end encrypted rooms, driven by an independent client.

The people in the room are matrix-nio clients (python3-matrix-nio with
python3-olm): they do Olm and Megolm themselves, so the bot's crypto is
checked against another implementation, never against itself.
"""
import asyncio
import json
import os
import re
import signal
import tempfile
import time

from harness import ALICE, BOB, BOT, check, rel, test

import nio
import olm

NOTICE = ('I could not decrypt this (no room key from that device); '
          'please send it again.')


class Person:
    """One device of a user, as an Element-like client would be."""

    def __init__(self, t, user, device):
        self.t, self.user, self.device = t, user, device
        self.store = tempfile.mkdtemp(prefix='nio-', dir=t.tmp)
        self.loop = asyncio.new_event_loop()
        cfg = nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False)
        self.client = nio.AsyncClient(t.hs.url, user, device_id=device,
                                      store_path=self.store, config=cfg)
        self.seen = []          # decrypted room events, in order
        self.undecrypted = []   # MegolmEvents it could not decrypt
        t.cleanups.append(self.close)
        r = self.run(self.client.login('pw-' + user, device_name=device))
        check(isinstance(r, nio.LoginResponse), 'login of %s: %r' % (user, r))
        self.sync(0)
        self.keys()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self):
        self.run(self.client.close())
        self.loop.close()

    def keys(self):
        if self.client.should_upload_keys:
            r = self.run(self.client.keys_upload())
            check(isinstance(r, nio.KeysUploadResponse), 'keys upload: %r' % r)
        if self.client.should_query_keys:
            r = self.run(self.client.keys_query())
            check(isinstance(r, nio.KeysQueryResponse), 'keys query: %r' % r)

    def sync(self, timeout_ms=1000):
        r = self.run(self.client.sync(timeout=timeout_ms))
        check(isinstance(r, nio.SyncResponse), 'sync of %s: %r' % (self.user, r))
        for room in r.rooms.join.values():
            for ev in room.timeline.events:
                if isinstance(ev, nio.MegolmEvent):
                    self.undecrypted.append(ev)
                else:
                    self.seen.append(ev)
        return r

    def send(self, room_id, body, content=None):
        self.keys()
        content = content or {'msgtype': 'm.text', 'body': body}
        r = self.run(self.client.room_send(room_id, 'm.room.message', content,
                                           ignore_unverified_devices=True))
        check(isinstance(r, nio.RoomSendResponse), 'send: %r' % r)
        return r.event_id

    def react(self, room_id, event_id, key):
        self.keys()
        r = self.run(self.client.room_send(room_id, 'm.reaction', {'m.relates_to': {
            'rel_type': 'm.annotation', 'event_id': event_id, 'key': key}},
            ignore_unverified_devices=True))
        check(isinstance(r, nio.RoomSendResponse), 'react: %r' % r)
        return r.event_id

    def bot_messages(self):
        return [e for e in self.seen if e.sender == BOT and hasattr(e, 'body')]

    def wait_bot(self, pred, what, timeout=20):
        """Sync until a decrypted message of the bot satisfies pred."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [e for e in self.bot_messages() if pred(e)]
            if found:
                return found[0]
            self.sync(300)
        raise AssertionError('%s never saw %s; decrypted: %r; undecryptable: %d' % (
            self.user, what, [e.body[:80] for e in self.bot_messages()], len(self.undecrypted)))


def encrypted_bot(t, room, auth='token', extra=''):
    key = os.path.join(t.tmp, 'pickle.key')
    if not os.path.exists(key):
        with open(key, 'w') as f:
            f.write(os.urandom(32).hex() + '\n')
        os.chmod(key, 0o600)
    return t.bot(rooms=[room], auth=auth, extra='pickle_key_file = %s\n%s' % (key, extra))


def encrypted_room(t):
    return t.hs.room(creator=ALICE, members=[ALICE, BOB, BOT], encrypted=True,
                     power_levels={'users': {ALICE: 100, BOB: 50}})


def store(bot):
    with open(os.path.join(bot.state_dir, 'e2ee.json')) as f:
        return json.load(f)


def bot_events(t, room):
    return t.hs.events(room, sender=BOT)


def in_thread_of(t, room, bot_event_id, root):
    ev = [e for e in t.hs.events(room, sender=BOT) if e['event_id'] == bot_event_id][0]
    return rel(ev).get('rel_type') == 'm.thread' and rel(ev).get('event_id') == root


@test
def encrypted_room_help_and_status(t):
    room = encrypted_room(t)
    bot = encrypted_bot(t, room).start()
    alice = Person(t, ALICE, 'ALICEPHONE')
    cmd = alice.send(room, '!help')
    reply = alice.wait_bot(lambda e: '!status' in e.body, 'the !help reply')
    check(in_thread_of(t, room, reply.event_id, cmd), 'help reply not in the thread')
    fp = store(bot)['ed25519']
    cmd2 = alice.send(room, '!status')
    st = alice.wait_bot(lambda e: 'fingerprint' in e.body, 'the !status reply')
    check('device TESTDEVICE' in st.body, 'device id missing from status: %r' % st.body)
    grouped = ' '.join(fp[i:i + 4] for i in range(0, len(fp), 4))
    check(grouped in st.body, 'fingerprint %s missing from status: %r' % (grouped, st.body))
    check(in_thread_of(t, room, st.event_id, cmd2), 'status reply not in the thread')
    # nothing the bot said went out in the clear
    types = {e['type'] for e in bot_events(t, room)}
    check(types == {'m.room.encrypted'}, 'the bot sent unencrypted events: %r' % types)
    # the 👀 reaction is encrypted with its relation in the clear
    acks = [e for e in bot_events(t, room) if rel(e).get('rel_type') == 'm.annotation']
    check(acks and rel(acks[0]).get('event_id') == cmd, 'no 👀 with a clear relation')
