#!/usr/bin/python3
"""Self-test for hs.py: starts it on a free port and exercises the client API,
the spec checks and the control API.  Run: /usr/bin/python3 selftest.py"""

import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
V3 = '/_matrix/client/v3'


def q(value):
    return urllib.parse.quote(value, safe='')


class HSTest(unittest.TestCase):
    proc = None

    @classmethod
    def setUpClass(cls):
        cls.logdir = tempfile.TemporaryDirectory()
        cls.logpath = os.path.join(cls.logdir.name, 'hs.log')
        cls.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'hs.py'), '--port', '0', '--log', cls.logpath, '--self-check'],
            stdout=subprocess.PIPE, text=True)
        line = cls.proc.stdout.readline()
        assert line.startswith('READY '), line
        cls.port = int(line.split()[1])
        cls.ctl('POST', '/_test/users', {'user_id': 'bot', 'password': 'hunter2-secret', 'device_id': 'BOTDEV'})
        cls.alice = cls.ctl('POST', '/_test/users', {'user_id': 'alice'})[1]['access_token']

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.proc.stdout.close()
        cls.logdir.cleanup()

    # ----- helpers -----------------------------------------------------------

    @classmethod
    def request(cls, method, path, body=None, token=None, conn=None, raw=None, timeout=30):
        """(status, parsed JSON or raw bytes, response); a new connection unless conn is given."""
        own = conn is None
        conn = conn or http.client.HTTPConnection('127.0.0.1', cls.port, timeout=timeout)
        headers = {'Content-Type': 'application/json'}
        if token:
            headers['Authorization'] = 'Bearer ' + token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read()
        finally:
            if own:
                conn.close()
        try:
            doc = json.loads(text)
        except ValueError:
            doc = text
        return resp.status, doc, resp

    @classmethod
    def ctl(cls, method, path, body=None):
        status, doc, _ = cls.request(method, path, body)
        return status, doc

    def setUp(self):
        self.ctl('POST', '/_test/reset_faults', {})
        self.ctl('POST', '/_test/reset_violations', {})

    def violations(self):
        return self.ctl('GET', '/_test/violations')[1]['violations']

    def assertNoViolations(self):
        self.assertEqual(self.violations(), [])

    def login(self, device='BOTDEV'):
        status, doc, _ = self.request('POST', V3 + '/login', {
            'type': 'm.login.password', 'identifier': {'type': 'm.id.user', 'user': 'bot'},
            'password': 'hunter2-secret', 'device_id': device})
        self.assertEqual(status, 200, doc)
        return doc['access_token']

    def new_room(self, **kw):
        body = {'creator': 'alice', 'members': ['alice', 'bot']}
        body.update(kw)
        status, doc = self.ctl('POST', '/_test/rooms', body)
        self.assertEqual(status, 200, doc)
        return doc['room_id']

    def say(self, room, text, sender='alice'):
        return self.ctl('POST', '/_test/rooms/%s/send' % q(room),
                        {'sender': sender, 'content': {'msgtype': 'm.text', 'body': text}})[1]['event_id']

    def sync(self, token, **params):
        status, doc, _ = self.request('GET', V3 + '/sync?' + urllib.parse.urlencode(params), token=token)
        self.assertEqual(status, 200, doc)
        return doc

    # ----- tests ---------------------------------------------------------------

    def test_versions_login_whoami(self):
        status, doc, _ = self.request('GET', '/_matrix/client/versions')
        self.assertEqual(status, 200)
        self.assertIn('v1.1', doc['versions'])
        token = self.login()
        status, doc, _ = self.request('GET', V3 + '/account/whoami', token=token)
        self.assertEqual((status, doc['user_id'], doc['device_id']), (200, '@bot:localhost', 'BOTDEV'))
        status, doc, _ = self.request('GET', V3 + '/account/whoami')
        self.assertEqual((status, doc['errcode']), (401, 'M_MISSING_TOKEN'))
        status, doc, _ = self.request('GET', V3 + '/account/whoami', token='nope')
        self.assertEqual((status, doc['errcode']), (401, 'M_UNKNOWN_TOKEN'))
        status, doc, _ = self.request('POST', V3 + '/login', {
            'type': 'm.login.password', 'identifier': {'type': 'm.id.user', 'user': 'bot'}, 'password': 'x'})
        self.assertEqual((status, doc['errcode']), (403, 'M_FORBIDDEN'))
        self.assertNoViolations()
        with open(self.logpath) as f:          # the log has the raw request, secrets included
            log = f.read()
        self.assertIn('hunter2-secret', log)
        self.assertIn('Bearer ' + token, log)

    def test_filter_and_long_poll_sync(self):
        token = self.login()
        room = self.new_room()
        status, doc, _ = self.request('POST', V3 + '/user/%s/filter' % q('@bot:localhost'),
                                      {'room': {'rooms': [room], 'timeline': {'limit': 5}}}, token=token)
        self.assertEqual(status, 200, doc)
        fid = doc['filter_id']
        status, doc, _ = self.request('GET', V3 + '/user/%s/filter/%s' % (q('@bot:localhost'), fid), token=token)
        self.assertEqual(doc['room']['timeline']['limit'], 5)
        first = self.sync(token, filter=fid)
        self.assertEqual(list(first['rooms']['join']), [room])
        self.assertIn('m.room.create', [e['type'] for e in first['rooms']['join'][room]['state']['events']])
        result = {}
        poller = threading.Thread(target=lambda: result.update(
            self.sync(token, filter=fid, since=first['next_batch'], timeout=10000)))
        started = time.monotonic()
        poller.start()
        time.sleep(0.5)
        self.assertTrue(poller.is_alive(), 'sync should block while nothing happens')
        event_id = self.say(room, 'hello bot')
        poller.join(10)
        self.assertLess(time.monotonic() - started, 5)
        events = result['rooms']['join'][room]['timeline']['events']
        self.assertEqual([e['event_id'] for e in events], [event_id])
        self.assertNotIn('room_id', events[0])
        # Empty long-poll times out with an empty answer.
        doc = self.sync(token, filter=fid, since=result['next_batch'], timeout=300)
        self.assertEqual(doc['rooms']['join'], {})
        self.assertNoViolations()

    def test_invite_and_join(self):
        token = self.login()
        status, doc = self.ctl('POST', '/_test/rooms', {'creator': 'alice', 'members': [], 'alias': 'inv'})
        room = doc['room_id']
        since = self.sync(token)['next_batch']
        self.ctl('POST', '/_test/rooms/%s/invite' % q(room), {'sender': 'alice', 'user_id': 'bot'})
        doc = self.sync(token, since=since, timeout=5000)
        state = doc['rooms']['invite'][room]['invite_state']['events']
        self.assertIn(('m.room.member', '@bot:localhost', 'invite'),
                      [(e['type'], e['state_key'], e['content'].get('membership')) for e in state])
        status, doc, _ = self.request('GET', V3 + '/directory/room/' + q('#inv:localhost'))
        self.assertEqual(doc['room_id'], room)
        status, doc, _ = self.request('POST', V3 + '/join/' + q('#inv:localhost'), {}, token=token)
        self.assertEqual((status, doc), (200, {'room_id': room}))
        status, doc, _ = self.request('GET', V3 + '/joined_rooms', token=token)
        self.assertIn(room, doc['joined_rooms'])
        status, doc, _ = self.request('GET', V3 + '/rooms/%s/state/m.room.encryption/' % q(room), token=token)
        self.assertEqual((status, doc['errcode']), (404, 'M_NOT_FOUND'))
        status, doc, _ = self.request('GET', V3 + '/rooms/%s/state/m.room.power_levels/' % q(room), token=token)
        self.assertEqual(doc['users'], {'@alice:localhost': 100})
        status, doc, _ = self.request('GET', V3 + '/rooms/%s/joined_members' % q(room), token=token)
        self.assertEqual(sorted(doc['joined']), ['@alice:localhost', '@bot:localhost'])
        self.assertNoViolations()

    def test_txn_idempotency(self):
        token = self.login()
        room = self.new_room()
        path = V3 + '/rooms/%s/send/m.room.message/txn-1' % q(room)
        content = {'msgtype': 'm.notice', 'body': 'backup done'}
        s1, d1, _ = self.request('PUT', path, content, token=token)
        s2, d2, _ = self.request('PUT', path, content, token=token)
        self.assertEqual((s1, s2), (200, 200))
        self.assertEqual(d1['event_id'], d2['event_id'])
        events = self.ctl('GET', '/_test/events?room_id=%s&sender=bot&type=m.room.message' % q(room))[1]['events']
        self.assertEqual(len(events), 1)
        self.assertEqual((events[0]['txn_id'], json.loads(events[0]['raw_body'])), ('txn-1', content))
        # The sending device sees its transaction_id in /sync.  (A filter
        # of this room: an unfiltered initial sync of this device was
        # asked before, and the server answers it from its 2-minute cache.)
        doc = self.sync(token, filter=json.dumps({'room': {'rooms': [room]}}))
        mine = [e for e in doc['rooms']['join'][room]['timeline']['events'] if e['event_id'] == d1['event_id']]
        self.assertEqual(mine[0]['unsigned']['transaction_id'], 'txn-1')
        # forget_txns: the same txnId now creates a second event.
        self.ctl('POST', '/_test/faults', {'kind': 'forget_txns'})
        # (the tests before used up this user's message burst: wait as told)
        s3, d3, _ = self.request('PUT', path, content, token=token)
        if s3 == 429:
            time.sleep(d3['retry_after_ms'] / 1000.0)
            s3, d3, _ = self.request('PUT', path, content, token=token)
        self.assertEqual(s3, 200, d3)
        self.assertNotEqual(d3['event_id'], d1['event_id'])
        self.assertNoViolations()

    def test_413_over_64k(self):
        token = self.login()
        room = self.new_room()
        big = {'msgtype': 'm.notice', 'body': 'x' * 66000}
        status, doc, _ = self.request('PUT', V3 + '/rooms/%s/send/m.room.message/big1' % q(room), big, token=token)
        self.assertEqual((status, doc['errcode']), (413, 'M_TOO_LARGE'))
        near = {'msgtype': 'm.notice', 'body': 'x' * 65000}   # content fits, full PDU does not
        status, doc, _ = self.request('PUT', V3 + '/rooms/%s/send/m.room.message/big2' % q(room), near, token=token)
        self.assertEqual(status, 413)
        ok = {'msgtype': 'm.notice', 'body': 'x' * 60000}
        status, doc, _ = self.request('PUT', V3 + '/rooms/%s/send/m.room.message/big3' % q(room), ok, token=token)
        self.assertEqual(status, 200)
        self.assertNoViolations()

    def test_429_header_and_body(self):
        token = self.login()
        self.ctl('POST', '/_test/faults', {'kind': '429', 'mode': 'header', 'retry_after_ms': 2500,
                                           'path_regex': '/account/whoami'})
        status, doc, resp = self.request('GET', V3 + '/account/whoami', token=token)
        self.assertEqual((status, doc['errcode'], resp.getheader('Retry-After')), (429, 'M_LIMIT_EXCEEDED', '3'))
        self.assertNotIn('retry_after_ms', doc)
        self.ctl('POST', '/_test/faults', {'kind': '429', 'mode': 'body', 'retry_after_ms': 1500})
        status, doc, resp = self.request('GET', V3 + '/account/whoami', token=token)
        self.assertEqual((status, doc['retry_after_ms'], resp.getheader('Retry-After')), (429, 1500, None))
        status, doc, _ = self.request('GET', V3 + '/account/whoami', token=token)
        self.assertEqual(status, 200)
        self.ctl('POST', '/_test/faults', {'kind': '503', 'count': 2})
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)   # keep-alive reuse
        try:
            self.assertEqual(self.request('GET', V3 + '/account/whoami', token=token, conn=conn)[0], 503)
            self.assertEqual(self.request('GET', V3 + '/account/whoami', token=token, conn=conn)[0], 503)
            self.assertEqual(self.request('GET', V3 + '/account/whoami', token=token, conn=conn)[0], 200)
        finally:
            conn.close()
        self.assertNoViolations()

    def test_limited_timeline_and_backfill(self):
        token = self.login()
        room = self.new_room()
        fid = self.request('POST', V3 + '/user/%s/filter' % q('@bot:localhost'),
                           {'room': {'timeline': {'limit': 3}}}, token=token)[1]['filter_id']
        since = self.sync(token, filter=fid)['next_batch']
        sent = [self.say(room, 'm%d' % i) for i in range(12)]
        doc = self.sync(token, filter=fid, since=since)
        tl = doc['rooms']['join'][room]['timeline']
        self.assertTrue(tl['limited'])
        self.assertEqual([e['event_id'] for e in tl['events']], sent[-3:])
        # Backfill from prev_batch until we are back at `since`.
        got, token_from = [], tl['prev_batch']
        while True:
            status, page, _ = self.request('GET', V3 + '/rooms/%s/messages?%s' % (q(room), urllib.parse.urlencode(
                {'dir': 'b', 'from': token_from, 'to': since, 'limit': 4})), token=token)
            self.assertEqual(status, 200, page)
            got += [e['event_id'] for e in page['chunk']]
            if 'end' not in page:
                break
            token_from = page['end']
        self.assertEqual(list(reversed(got)), sent[:-3])
        # Forced gap via the control API even though the filter limit would fit.
        self.ctl('POST', '/_test/limit', {'room_id': room, 'limit': 1})
        more = [self.say(room, 'n%d' % i) for i in range(2)]
        tl = self.sync(token, filter=fid, since=doc['next_batch'])['rooms']['join'][room]['timeline']
        self.assertEqual(([e['event_id'] for e in tl['events']], tl['limited']), (more[-1:], True))
        self.assertNoViolations()

    def test_relations_and_event(self):
        token = self.login()
        room = self.new_room()
        root = self.say(room, 'root')
        path = V3 + '/rooms/%s/send/%s/%s'
        s, d, _ = self.request('PUT', path % (q(room), 'm.reaction', 'r1'), {'m.relates_to': {
            'rel_type': 'm.annotation', 'event_id': root, 'key': '👍'}}, token=token)
        self.assertEqual(s, 200, d)
        s, d, _ = self.request('PUT', path % (q(room), 'm.reaction', 'r2'), {'m.relates_to': {
            'rel_type': 'm.annotation', 'event_id': root, 'key': '👍'}}, token=token)
        self.assertEqual((s, d['errcode']), (400, 'M_DUPLICATE_ANNOTATION'))
        s, d, _ = self.request('PUT', path % (q(room), 'm.room.message', 't1'), {
            'msgtype': 'm.notice', 'body': 'in thread',
            'm.relates_to': {'rel_type': 'm.thread', 'event_id': root, 'is_falling_back': True,
                             'm.in_reply_to': {'event_id': root}}}, token=token)
        self.assertEqual(s, 200, d)
        s, doc, _ = self.request('GET', '/_matrix/client/v1/rooms/%s/relations/%s/m.thread' % (q(room), q(root)),
                                 token=token)
        self.assertEqual([e['event_id'] for e in doc['chunk']], [d['event_id']])
        s, doc, _ = self.request('GET', V3 + '/rooms/%s/event/%s' % (q(room), q(root)), token=token)
        self.assertEqual((s, doc['content']['body']), (200, 'root'))
        self.assertNoViolations()

    def test_invalid_body_is_a_violation(self):
        token = self.login()
        room = self.new_room()
        # m.notice without body violates m.room.message$m.notice.yaml
        s, d, _ = self.request('PUT', V3 + '/rooms/%s/send/m.room.message/bad1' % q(room),
                               {'msgtype': 'm.notice'}, token=token)
        self.assertEqual((s, d['errcode']), (400, 'M_BAD_JSON'))
        # Login without the required "type"
        s, d, _ = self.request('POST', V3 + '/login', {'identifier': {'type': 'm.id.user', 'user': 'bot'}})
        self.assertEqual((s, d['errcode']), (400, 'M_BAD_JSON'))
        s, d, _ = self.request('POST', V3 + '/login', raw=b'{not json')
        self.assertEqual((s, d['errcode']), (400, 'M_NOT_JSON'))
        s, d, _ = self.request('GET', V3 + '/rooms/%s/messages' % q(room), token=token)   # dir missing
        self.assertEqual((s, d['errcode']), (400, 'M_MISSING_PARAM'))
        kinds = [v['kind'] for v in self.violations()]
        self.assertEqual(kinds, ['invalid-event', 'bad-json', 'not-json', 'missing-param'])

    def test_unknown_endpoint(self):
        token = self.login()
        s, d, _ = self.request('GET', V3 + '/no/such/thing', token=token)
        self.assertEqual((s, d['errcode']), (404, 'M_UNRECOGNIZED'))
        s, d, _ = self.request('DELETE', V3 + '/account/whoami', token=token)
        self.assertEqual((s, d['errcode']), (405, 'M_UNRECOGNIZED'))
        kinds = [v['kind'] for v in self.violations()]
        self.assertEqual(kinds, ['unknown-endpoint', 'method-not-allowed'])

    def test_outage_and_drop(self):
        token = self.login()
        self.ctl('POST', '/_test/faults', {'kind': 'outage', 'duration_ms': 700})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.request('GET', V3 + '/account/whoami', token=token)
        time.sleep(0.8)
        self.assertEqual(self.request('GET', V3 + '/account/whoami', token=token)[0], 200)
        # drop after processing: the event exists but the client got no answer
        room = self.new_room()
        self.ctl('POST', '/_test/faults', {'kind': 'drop', 'after': True, 'path_regex': '/send/'})
        path = V3 + '/rooms/%s/send/m.room.message/d1' % q(room)
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.request('PUT', path, {'msgtype': 'm.notice', 'body': 'once'}, token=token)
        s, d, _ = self.request('PUT', path, {'msgtype': 'm.notice', 'body': 'once'}, token=token)
        self.assertEqual(s, 200)
        events = self.ctl('GET', '/_test/events?room_id=%s&sender=bot&type=m.room.message' % q(room))[1]['events']
        self.assertEqual(len(events), 1)
        statuses = [r['fault'] for r in self.ctl('GET', '/_test/requests')[1]['requests'][-4:]]
        self.assertIn('drop-after', statuses)
        self.assertNoViolations()

    def test_raw_sync_replay_and_wait(self):
        token = self.login()
        room = self.new_room()
        since = self.sync(token)['next_batch']
        self.ctl('POST', '/_test/raw_sync', {'body': '{"next_batch": 12', 'status': 200})
        s, d, resp = self.request('GET', V3 + '/sync', token=token)
        self.assertEqual(d, b'{"next_batch": 12')
        ids = [self.say(room, 'r%d' % i) for i in range(3)]
        doc = self.sync(token, since=since)
        self.ctl('POST', '/_test/replay', {'count': 2})
        again = self.sync(token, since=doc['next_batch'])
        self.assertEqual([e['event_id'] for e in again['rooms']['join'][room]['timeline']['events']], ids[1:])
        # wait: blocks until the bot has sent 1 event
        timer = threading.Timer(0.3, lambda: self.request(
            'PUT', V3 + '/rooms/%s/send/m.room.message/w1' % q(room), {'msgtype': 'm.notice', 'body': 'hi'},
            token=token))
        timer.start()
        wait = {'room_id': room, 'sender': 'bot', 'type': 'm.room.message', 'count': 1, 'timeout_ms': 5000}
        started = time.monotonic()
        s, d = self.ctl('POST', '/_test/wait', wait)
        timer.join()
        self.assertEqual((s, d['timeout'], len(d['events'])), (200, False, 1))
        self.assertGreater(time.monotonic() - started, 0.2)
        s, d = self.ctl('POST', '/_test/wait', dict(wait, count=2, timeout_ms=200))
        self.assertEqual((s, d['timeout'], len(d['events'])), (408, True, 1))
        self.assertNoViolations()


if __name__ == '__main__':
    result = unittest.main(verbosity=2, exit=False).result
    failed = len(result.failures) + len(result.errors)
    print('%d passed, %d failed' % (result.testsRun - failed - len(result.skipped), failed))
    sys.exit(1 if failed or not result.testsRun else 0)
