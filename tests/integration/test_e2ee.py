"""End-to-end encrypted rooms, driven by an independent client.

The people in the room are matrix-nio clients (python3-matrix-nio with
python3-olm): they do Olm and Megolm themselves, so the bot's crypto is
checked against another implementation, never against itself.
"""
import asyncio
import json
import os
import subprocess
import tempfile
import time

from harness import ALICE, BOB, BOT, BOT_TOKEN, check, rel, test

import nio
import olm

BOT_TOKEN_HINT = BOT_TOKEN
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

    def wait_count(self, pred, count, what, timeout=20):
        """Sync until count decrypted messages of the bot satisfy pred."""
        deadline = time.time() + timeout
        while len([e for e in self.bot_messages() if pred(e)]) < count:
            check(time.time() < deadline, '%s never saw %s' % (self.user, what))
            self.sync(300)

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


def key_file(t, name='pickle.key'):
    """A key file as `backupbot keygen` makes them (64 hex, 0600)."""
    key = os.path.join(t.tmp, name)
    if not os.path.exists(key):
        with open(key, 'w') as f:
            f.write(os.urandom(32).hex() + '\n')
        os.chmod(key, 0o600)
    return key


def encrypted_bot(t, room, auth='token', extra=''):
    key = key_file(t)
    return t.bot(rooms=[room], auth=auth, extra='pickle_key_file = %s\n%s' % (key, extra))


def encrypted_room(t):
    return t.hs.room(creator=ALICE, members=[ALICE, BOB, BOT], encrypted=True,
                     power_levels={'users': {ALICE: 100, BOB: 50}})


def started(t, auth='token', extra=''):
    """An encrypted room, the bot in it, and alice's phone after a first
    !help and its reply (both sides have sessions): (room, bot, alice, cmd)."""
    room = encrypted_room(t)
    bot = encrypted_bot(t, room, auth=auth, extra=extra).start()
    alice = Person(t, ALICE, 'ALICEPHONE')
    cmd = alice.send(room, '!help')
    alice.wait_bot(lambda e: '!status' in e.body, 'the !help reply')
    return room, bot, alice, cmd


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
    # in an encrypted room, a command in the clear is not one (a homeserver
    # could write it), and neither is alice's ciphertext under bob's name
    t.hs.send(room, ALICE, '!help')
    mtype, forged = alice.client.encrypt(room, 'm.room.message', {'msgtype': 'm.text', 'body': '!help'})
    as_bob = t.hs.send(room, BOB, type=mtype, content=forged)
    bot.wait_log('the room key came from %s, not from the sender %s' % (ALICE, BOB))
    bot.wait_log('ignoring an unencrypted m.room.message from %s' % ALICE)
    # a command after them: once answered, anything before it would be too
    alice.send(room, '!status')
    alice.wait_count(lambda e: 'fingerprint' in e.body, 2, 'no reply to the last !status')
    # nothing the bot said went out in the clear
    types = {e['type'] for e in bot_events(t, room)}
    check(types == {'m.room.encrypted'}, 'the bot sent unencrypted events: %r' % types)
    answered = {rel(e).get('event_id') for e in bot_events(t, room)}
    check(as_bob not in answered, 'the bot answered a forged sender')
    check(len([e for e in bot_events(t, room) if rel(e).get('rel_type') == 'm.thread']) == 3,
          'the bot answered more than the three commands')
    # the 👀 of a command that starts a job is encrypted with its relation
    # in the clear (answers ready at once get none)
    slow = alice.send(room, '!backup all')
    deadline = time.time() + 20
    while True:
        acks = [e for e in bot_events(t, room) if rel(e).get('rel_type') == 'm.annotation']
        if acks or time.time() > deadline:
            break
        time.sleep(0.1)
    check(acks and rel(acks[0]).get('event_id') == slow and acks[0]['type'] == 'm.room.encrypted',
          'no encrypted 👀 with a clear relation')
    # `check` passes for the encrypted room and names the device
    r = subprocess.run([os.environ.get('BACKUPBOT', './backupbot'), '-c', bot.conf, 'check'],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and 'end-to-end encrypted; my device is TESTDEVICE' in r.stdout
          and grouped in r.stdout, 'check: %s%s' % (r.stdout, r.stderr))


def withhold_room_keys_from_bot(person, room):
    """The person's client gives the bot's device no room keys (as if
    the bot's device had been blocked), so the bot cannot read it."""
    person.run(person.client.joined_members(room))
    person.keys()
    dev = person.client.device_store[BOT]['TESTDEVICE']
    person.client.blacklist_device(dev)


@test
def undecryptable_message_gets_one_notice_in_its_thread(t):
    room = encrypted_room(t)
    bot = encrypted_bot(t, room).start()
    alice = Person(t, ALICE, 'ALICEPHONE')
    withhold_room_keys_from_bot(alice, room)
    cmd = alice.send(room, '!status')
    cmd2 = alice.send(room, '!help')       # same sender, same session
    notice = alice.wait_bot(lambda e: e.body == NOTICE, 'the cannot-decrypt notice')
    check(in_thread_of(t, room, notice.event_id, cmd), 'notice not in the thread of %s' % cmd)
    bot.wait_log('cannot decrypt %s' % cmd2)
    alice.sync(500)
    said = [e.body for e in alice.bot_messages()]
    check(said.count(NOTICE) == 1, 'notices: %r' % said)
    check(not any('fingerprint' in b or '!status' in b for b in said), 'a command ran: %r' % said)
    # a new session from the same sender is noticed again
    alice.client.olm.outbound_group_sessions.pop(room, None)
    cmd3 = alice.send(room, '!help')
    alice.wait_bot(lambda e: e.body == NOTICE and in_thread_of(t, room, e.event_id, cmd3),
                   'a notice for the new session')


@test
def restart_keeps_the_device_and_reads_older_sessions(t):
    room, bot, alice, _ = started(t, auth='password')
    first = store(bot)
    bot.stop()
    # sent while the bot is down, in the Megolm session it already has
    alice.send(room, '!status')
    bot.start()
    alice.wait_bot(lambda e: 'fingerprint' in e.body, 'the !status reply after the restart')
    again = store(bot)
    check((again['device_id'], again['ed25519']) == (first['device_id'], first['ed25519']),
          'the device changed across the restart')
    devices = t.hs.call('GET', '/_test/e2ee?user_id=' + BOT)['devices']
    check(list(devices) == [first['device_id']], 'bot devices on the server: %r' % list(devices))
    uploads = [json.loads(line) for line in open(t.hs.log)]
    dk = [u for u in uploads if u['path'].endswith('/keys/upload') and 'device_keys' in u['body']
          and BOT.split(':')[0][1:] in json.dumps(u['headers'])]
    check(len(dk) <= 1, 'device keys uploaded %d times' % len(dk))
    check(oct(os.stat(os.path.join(bot.state_dir, 'e2ee.json')).st_mode & 0o777) == '0o600',
          'the store is not 0600')


def megolm_session_of(t, room, ev):
    return ev['content']['session_id']


@test
def a_member_who_left_cannot_read_the_next_message(t):
    room = encrypted_room(t)
    encrypted_bot(t, room).start()
    alice = Person(t, ALICE, 'ALICEPHONE')
    bob = Person(t, BOB, 'BOBLAPTOP')
    cmd = alice.send(room, '!help')
    alice.wait_bot(lambda e: '!status' in e.body, 'the !help reply')
    seen_by_bob = bob.wait_bot(lambda e: '!status' in e.body, 'the !help reply (bob)')
    first = [e for e in bot_events(t, room) if e['event_id'] == seen_by_bob.event_id][0]
    r = bob.run(bob.client.room_leave(room))
    check(isinstance(r, nio.RoomLeaveResponse), 'leave: %r' % r)
    alice.send(room, '!status')
    st = alice.wait_bot(lambda e: 'fingerprint' in e.body, 'the !status reply')
    after = [e for e in bot_events(t, room) if e['event_id'] == st.event_id][0]
    check(after['content']['session_id'] != first['content']['session_id'],
          'no new Megolm session after a member left')
    for _ in range(3):
        bob.sync(200)
    key = after['content']['sender_key']
    check(bob.client.olm.inbound_group_store.get(room, key, after['content']['session_id']) is None,
          'the departed member got the new room key')
    try:
        bob.client.decrypt_event(nio.MegolmEvent.from_dict(dict(after, room_id=room)))
        decrypted = True
    except Exception:  # noqa: BLE001 - nio raises EncryptionError
        decrypted = False
    check(not decrypted, 'the departed member decrypted the next message')
    check(cmd, cmd)


def sent_log(t):
    return [json.loads(line) for line in open(t.hs.log)]


@test
def kill_while_sharing_loses_nothing_and_reuses_no_index(t):
    room, bot, alice, cmd = started(t)
    # Bob's new device: the bot's next message shares its session with it,
    # and every to-device request is slow: the bot dies in the middle.
    t.hs.fault('slow', path_regex='sendToDevice', delay_ms=1500, count=20)
    bob = Person(t, BOB, 'BOBLAPTOP')
    before = len([x for x in sent_log(t) if 'sendToDevice' in x['path']
                  and BOT_TOKEN_HINT in json.dumps(x['headers'])])
    alice.send(room, '!status')
    deadline = time.time() + 20
    while len([x for x in sent_log(t) if 'sendToDevice' in x['path']
               and BOT_TOKEN_HINT in json.dumps(x['headers'])]) <= before:
        check(time.time() < deadline, 'the bot never shared its session with the new device')
        time.sleep(0.02)
    bot.kill9()
    t.hs.call('POST', '/_test/reset_faults', {})
    bot.start()
    alice.wait_bot(lambda e: 'fingerprint' in e.body, 'the !status reply after kill -9')
    bob.wait_bot(lambda e: 'fingerprint' in e.body, 'the !status reply on the new device')
    # every message of the bot: a distinct (session, index) pair
    used = {}
    for ev in bot_events(t, room):
        c = ev['content']
        s = alice.client.olm.inbound_group_store.get(room, c['sender_key'], c['session_id'])
        check(s is not None, 'alice has no key for %s' % ev['event_id'])
        _, index = s.decrypt(c['ciphertext'])
        pair = (c['session_id'], index)
        check(pair not in used, 'Megolm index %r used by %s and %s' % (pair, used.get(pair), ev['event_id']))
        used[pair] = ev['event_id']


@test
def restore_in_an_encrypted_room_approved_from_a_second_admins_device(t):
    from test_restore_chat import setup, databases
    room = encrypted_room(t)
    pg, b, bid = setup(t, room=room, extra='pickle_key_file = %s\n' % key_file(t))
    alice = Person(t, ALICE, 'ALICEPHONE')
    bob = Person(t, BOB, 'BOBTABLET')
    alice.send(room, '!backup main')
    alice.wait_bot(lambda e: e.body.startswith('✅') and 'main' in e.body, 'the backup result', 120)
    alice.send(room, '!restore main latest')
    plan = bob.wait_bot(lambda e: e.body.startswith('🔐 Restore request'), 'the plan', 60)
    bob.react(room, plan.event_id, '✅')
    done = alice.wait_bot(lambda e: e.body.startswith('✅ restore of main'), 'the restore', 120)
    check('compared with the manifest, all equal' in done.body, done.body)
    check(any(d.startswith(' main_restore_') or d.strip().startswith('main_restore_')
              for d in databases(pg)), 'no restored database')


@test
def a_room_that_becomes_encrypted_switches_at_once(t):
    room = t.hs.room(creator=ALICE, members=[ALICE, BOB, BOT],
                     power_levels={'users': {ALICE: 100, BOB: 50}})
    # the backup key alone: no device until a room needs one
    key = key_file(t, 'backup.key')
    bot = t.bot(rooms=[room])
    with open(bot.conf, 'a') as f:
        f.write('encryption_key_file = %s\n' % key)
    bot.start()
    check(not os.path.exists(os.path.join(bot.state_dir, 'e2ee.json')),
          'a device was made for an unencrypted room')
    alice = Person(t, ALICE, 'ALICEPHONE')
    alice.run(alice.client.room_send(room, 'm.room.message', {'msgtype': 'm.text', 'body': '!help'}))
    alice.wait_bot(lambda e: '!status' in e.body, 'the clear !help reply')
    t.hs.send(room, ALICE, type='m.room.encryption', state_key='',
              content={'algorithm': 'm.megolm.v1.aes-sha2', 'rotation_period_msgs': 3})
    bot.wait_log('is now end-to-end encrypted')
    alice.sync(200)
    # four answers or more (answers ready at once get no 👀): past the
    # rotation after three messages
    for cmd in ('!status', '!help', '!help', '!help'):
        alice.send(room, cmd)
    alice.wait_bot(lambda e: 'fingerprint' in e.body, 'the encrypted !status reply')
    alice.wait_count(lambda e: '!status' in e.body, 4, 'no encrypted !help replies')
    after = [e for e in bot_events(t, room) if e['type'] == 'm.room.encrypted']
    check(len(after) >= 4, 'the bot did not switch to encryption: %r' % [e['type'] for e in bot_events(t, room)])
    # rotation_period_msgs = 3: the bot's 4 or more messages use 2 sessions or more
    sessions = {e['content']['session_id'] for e in after}
    check(len(sessions) >= 2, 'no rotation after 3 messages: %d message(s), 1 session' % len(after))
    # the key was a subkey of the backup key, stored 0600
    st = os.stat(os.path.join(bot.state_dir, 'e2ee.json'))
    check(st.st_mode & 0o777 == 0o600, 'store mode %o' % (st.st_mode & 0o777))
    check(open(key).read().strip() not in open(os.path.join(bot.state_dir, 'e2ee.json')).read(),
          'the key is in the store')


def cli(bot, *args, stdin=None):
    return subprocess.run([os.environ.get('BACKUPBOT', './backupbot'), '-c', bot.conf, 'e2ee'] + list(args),
                          capture_output=True, text=True, timeout=60, input=stdin)


@test
def e2ee_status_and_reset_from_the_shell(t):
    room, bot, alice, cmd = started(t, auth='password')
    bot.stop()
    st = store(bot)
    r = cli(bot, 'status')
    fp = ' '.join(st['ed25519'][i:i + 4] for i in range(0, len(st['ed25519']), 4))
    for part in ('device: %s of %s' % (st['device_id'], BOT), fp, ALICE + ' ALICEPHONE',
                 'inbound Megolm sessions:\n  ' + room, 'shared with 1 device'):
        check(part in r.stdout, '%r missing from e2ee status:\n%s' % (part, r.stdout))
    r = cli(bot, 'reset', stdin='')
    check(r.returncode == 1 and os.path.exists(os.path.join(bot.state_dir, 'e2ee.json')),
          'reset without asking: %s%s' % (r.stdout, r.stderr))
    r = cli(bot, 'reset', '--yes')
    check(r.returncode == 0 and not os.path.exists(os.path.join(bot.state_dir, 'e2ee.json')),
          'reset --yes: %s%s' % (r.stdout, r.stderr))
    bot.start()
    new = store(bot)
    check(new['device_id'] != st['device_id'] and new['ed25519'] != st['ed25519'],
          'reset kept the device %s' % new['device_id'])
    alice.sync(200)
    alice.send(room, '!status')
    alice.wait_bot(lambda e: new['device_id'] in e.body and 'fingerprint' in e.body,
                   'a reply from the new device')


@test
def tofu_warns_when_a_device_changes_its_keys(t):
    room, _, alice, _ = started(t)
    # a second device of alice: said in the room, and given the room key
    Person(t, ALICE, 'ALICELAPTOP')
    alice.send(room, '!status')
    alice.wait_bot(lambda e: 'new device ALICELAPTOP' in e.body, 'the new-device notice')
    # the same device id with other keys (a new store): refused and said
    impostor = Person(t, ALICE, 'ALICEPHONE')
    impostor.send(room, '!help')
    warned = alice.wait_bot(lambda e: 'keys of device ALICEPHONE of %s changed' % ALICE in e.body,
                            'the changed-keys warning')
    check('no longer share' in warned.body, warned.body)


@test
def a_replayed_message_index_is_refused(t):
    room, bot, alice, cmd = started(t)
    original = [e for e in t.hs.events(room, sender=ALICE) if e['event_id'] == cmd][0]
    # the homeserver (or anyone who can write to the room) replays it
    copy = t.hs.send(room, ALICE, type='m.room.encrypted', content=original['content'])
    bot.wait_log('replay')
    alice.send(room, '!status')
    alice.wait_bot(lambda e: 'fingerprint' in e.body, 'the !status reply')
    helps = [e for e in alice.bot_messages() if '!status' in e.body and 'fingerprint' not in e.body]
    check(len(helps) == 1, 'the replayed !help ran: %d replies' % len(helps))
    check(not any(rel(e).get('event_id') == copy for e in bot_events(t, room)),
          'the bot answered the replay')
    # and after a restart, when only the journals remember it
    bot.stop()
    again = t.hs.send(room, ALICE, type='m.room.encrypted', content=original['content'])
    bot.start()
    alice.send(room, '!status')
    alice.wait_count(lambda e: 'fingerprint' in e.body, 2, 'no second !status reply')
    check(not any(rel(e).get('event_id') == again for e in bot_events(t, room)),
          'the bot answered the replay after a restart')


def canonical(obj):
    obj = {k: v for k, v in obj.items() if k not in ('signatures', 'unsigned')}
    return json.dumps(obj, sort_keys=True, separators=(',', ':'), ensure_ascii=False)


def cross_sign(t, person):
    """Give person's user cross-signing keys and sign its device with them,
    as Element does when a device is verified."""
    user = person.user
    master, ssk = (olm.PkSigning(olm.PkSigning.generate_seed()) for _ in range(2))
    mkey = {'user_id': user, 'usage': ['master'],
            'keys': {'ed25519:' + master.public_key: master.public_key}}
    skey = {'user_id': user, 'usage': ['self_signing'],
            'keys': {'ed25519:' + ssk.public_key: ssk.public_key}}
    skey['signatures'] = {user: {'ed25519:' + master.public_key: master.sign(canonical(skey))}}
    c = person.client
    r = person.run(c.send('POST', nio.Api._build_path(['keys', 'device_signing', 'upload'],
                                                     {'access_token': c.access_token}),
                          json.dumps({'master_key': mkey, 'self_signing_key': skey})))
    check(r.status == 200, 'device_signing upload: %s' % r.status)
    dk = t.hs.call('GET', '/_test/e2ee?user_id=' + user)['devices'][person.device]
    dk['signatures'][user]['ed25519:' + ssk.public_key] = ssk.sign(canonical(dk))
    r = person.run(c.send('POST', nio.Api._build_path(['keys', 'signatures', 'upload'],
                                                     {'access_token': c.access_token}),
                          json.dumps({user: {person.device: dk}})))
    check(r.status == 200, 'signatures upload: %s' % r.status)


@test
def verified_trust_shares_only_with_cross_signed_devices(t):
    room = encrypted_room(t)
    bot = encrypted_bot(t, room, extra='e2ee_trust = verified\n').start()
    alice = Person(t, ALICE, 'ALICEPHONE')
    bob = Person(t, BOB, 'BOBLAPTOP')
    cross_sign(t, alice)
    cmd = alice.send(room, '!help')
    reply = alice.wait_bot(lambda e: '!status' in e.body, 'the !help reply on a cross-signed device')
    bot.wait_log('device BOBLAPTOP of %s is not cross-signed' % BOB)
    for _ in range(3):
        bob.sync(200)
    check(not any(e.event_id == reply.event_id for e in bob.bot_messages()),
          'an unverified device got the room key')
    check(any(e.event_id == reply.event_id for e in bob.undecrypted),
          'bob never saw the encrypted reply')
    check(cmd, cmd)
    # the server swaps alice's cross-signing identity: refused and said
    cross_sign(t, alice)
    alice.send(room, '!status')
    bot.wait_log('the cross-signing identity of %s changed' % ALICE)
    for _ in range(3):
        alice.sync(200)
    check(not any('fingerprint' in e.body for e in alice.bot_messages()),
          'room keys went to a device signed by a new cross-signing identity')


@test
def without_libolm_an_encrypted_room_says_what_to_install(t):
    # libolm is opened only when E2EE is used (bot/matrix/olm_dl.h): a
    # library of that name without its functions must give the install
    # hint and a clean exit, not a crash in the first olm_* call.
    fake = os.path.join(t.tmp, 'fakelib')
    os.mkdir(fake)
    src = os.path.join(fake, 'empty.c')
    with open(src, 'w') as f:
        f.write('int not_olm(void) { return 0; }\n')
    subprocess.run(['cc', '-shared', '-fPIC', '-o', os.path.join(fake, 'libolm.so.3'), src],
                   check=True)
    room = encrypted_room(t)
    bot = encrypted_bot(t, room)
    bot.env = dict(os.environ, LD_LIBRARY_PATH=fake)
    bot.start(wait_ready=False)
    code = bot.proc.wait(timeout=20)
    log = bot.log_text()
    check(code != 0 and code > 0, 'exit status %r (a signal is a crash)' % code)
    check('libolm' in log and 'olm_' in log and 'libolm 3' in log,
          'no clear message about libolm:\n%s' % log[-1500:])
    # and with the real library the same configuration works
    bot.env = None
    bot.start()
