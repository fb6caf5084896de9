"""Redis/Valkey backups from the shell: `backupbot backup|verify|cat` against
throwaway redis-servers (tests/redis/server.sh) on loopback ports.

Every kind of value (strings, binary keys, hashes, lists, sets, sorted
sets, streams with a consumer group) and TTLs are loaded into db 0 and
db 3.  A backup is good only if what comes back is the same dataset: an
RDB is put in a fresh server's dir and loaded at start, a logical backup
is RESTOREd key by key into a fresh empty server, and every key's type,
value and TTL are compared.  Then what must fail fails, clearly: a
refused SYNC (with and without the fallback), a wrong or missing
password, a server that is down, a TLS certificate from another CA, a
damaged backup under verify, and Ctrl-C while the master makes us wait.

No Matrix is involved (others test the chat side); the test homeserver
only exists because every Test has one.  A tiny RESP client is written
here: redis-py is not installed.
"""

import json
import os
import re
import signal
import socket
import struct
import subprocess
import time

from harness import (BACKUPBOT, BOT_TOKEN, ROOT, TestFailure, check,
                     free_port, test)

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False

SERVER = os.path.join(ROOT, 'tests', 'redis', 'server.sh')
DBS = (0, 3)


# ---- a tiny RESP client ---------------------------------------------------

class RespError(Exception):
    pass


class Resp:
    """RESP2 over the server's unix socket (never TLS: tests load data)."""

    def __init__(self, sock_path, password=None, user=None):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(60)
        self.s.connect(sock_path)
        self.f = self.s.makefile('rb')
        if password is not None:
            self.call(*(['AUTH'] + ([user] if user else []) + [password]))

    @staticmethod
    def encode(cmd):
        out = [b'*%d\r\n' % len(cmd)]
        for a in cmd:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(a), a))
        return b''.join(out)

    def read(self):
        line = self.f.readline()
        if not line.endswith(b'\r\n'):
            raise TestFailure('redis: connection closed (%r)' % line)
        kind, rest = line[:1], line[1:-2]
        if kind == b'+':
            return rest.decode()
        if kind == b'-':
            return RespError(rest.decode())
        if kind == b':':
            return int(rest)
        if kind == b'$':
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b'*':
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise TestFailure('redis: bad reply %r' % line)

    def call(self, *cmd):
        self.s.sendall(self.encode(cmd))
        r = self.read()
        if isinstance(r, RespError):
            raise TestFailure('redis %r: %s' % (cmd[:3], r))
        return r

    def pipeline(self, cmds, errors_ok=False):
        out = []
        for i in range(0, len(cmds), 500):
            chunk = cmds[i:i + 500]
            self.s.sendall(b''.join(self.encode(c) for c in chunk))
            out.extend(self.read() for _ in chunk)
        bad = [(c[:2], r) for c, r in zip(cmds, out) if isinstance(r, RespError)]
        if bad and not errors_ok:
            raise TestFailure('redis pipeline errors: %r' % bad[:5])
        return out

    def close(self):
        self.f.close()
        self.s.close()


class Redis:
    """A throwaway redis-server (tests/redis/server.sh) for one test."""

    def __init__(self, t, name, tls=False, password=False, args=(), port=None):
        self.dir = os.path.join(t.tmp, 'redis-' + name)
        self.port = port or free_port()
        self.tls = tls
        argv = ['bash', SERVER, 'tls' if tls else 'start', self.dir, str(self.port)]
        if password:
            argv.append('--password')
        r = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError('server.sh %s failed: %s%s' % (name, r.stdout, r.stderr))
        t.cleanups.append(self.stop)
        self.password_file = os.path.join(self.dir, 'redis.pass') if password else None
        self.password = open(self.password_file).read().strip() if password else None
        self.sock = os.path.join(self.dir, 'redis.sock')

    def client(self):
        return Resp(self.sock, self.password)

    def stop(self):
        subprocess.run(['bash', SERVER, 'stop', self.dir], capture_output=True, timeout=30)

    def url(self, scheme=None, db=0, user=None):
        return '%s://%s127.0.0.1:%d/%d' % (scheme or ('rediss' if self.tls else 'redis'),
                                          user + '@' if user else '', self.port, db)

    def section(self, name, extra='', url=None, password_file=None):
        pw = password_file or self.password_file
        return ('[redis %s]\nurl = %s\n%s%s\n\n'
                % (name, url or self.url(), 'password_file = %s\n' % pw if pw else '', extra))


# ---- the dataset ----------------------------------------------------------

def load(r, db, scale=1):
    """Every type, binary-safe names and values, TTLs; in db."""
    p = 'db%d:' % db
    r.call('SELECT', db)
    cmds = []
    for i in range(200 * scale):
        cmds.append(('SET', p + 'str:%d' % i, ('value %d ' % i) * (i % 9 + 1)))
    cmds += [('SET', p.encode() + b'bin:\x00\r\n\xff', b'\x00\x01\xff\r\n\x00'),
             ('SET', p + 'counter', 1234567),
             ('SET', p + 'empty', ''),
             ('SET', p + 'large', 'abcdefgh' * 20000),        # LZF in the RDB
             ('SET', '', 'the empty key')]
    for i in range(30 * scale):
        cmds.append(('HSET', p + 'hash:%d' % i, 'f1', i, 'f2', 'x' * i, b'\x00f3', b'\xff'))
        cmds.append(('RPUSH', p + 'list:%d' % i, *['item%d' % k for k in range(i % 12 + 1)]))
        cmds.append(('SADD', p + 'set:%d' % i, *['m%d' % k for k in range(i % 7 + 1)]))
        cmds.append(('ZADD', p + 'zset:%d' % i, 1.5, 'a', -2.25, 'b', i, 'c', '+inf', 'top'))
        cmds.append(('XADD', p + 'stream:%d' % i, '*', 'n', i, 'text', 'hello'))
    cmds.append(('HSET', p + 'bighash', *sum([['field%d' % k, 'v%d' % k] for k in range(700)], [])))
    cmds.append(('RPUSH', p + 'biglist', *['e%d' % k for k in range(5000)]))
    cmds.append(('SADD', p + 'intset', *range(0, 300, 3)))
    cmds.append(('SADD', p + 'bigset', *['s%d' % k for k in range(1000)]))
    cmds.append(('ZADD', p + 'bigzset', *sum([[k * 0.5, 'z%d' % k] for k in range(600)], [])))
    for k in range(5):
        cmds.append(('XADD', p + 'stream:0', '*', 'more', k))
    cmds.append(('XGROUP', 'CREATE', p + 'stream:0', 'workers', '0'))
    cmds.append(('XREADGROUP', 'GROUP', 'workers', 'w1', 'COUNT', 2, 'STREAMS', p + 'stream:0', '>'))
    # TTLs: an hour and more on every 10th key, ten minutes on a few more.
    for i in range(0, 200 * scale, 10):
        cmds.append(('PEXPIRE', p + 'str:%d' % i, 3600000 + i))
    for i in range(0, 30 * scale, 5):
        cmds.append(('EXPIRE', p + 'hash:%d' % i, 600))
        cmds.append(('EXPIRE', p + 'zset:%d' % i, 7200))
    r.pipeline(cmds)


def scan_keys(r):
    keys, cursor = [], b'0'
    while True:
        cursor, batch = r.call('SCAN', cursor, 'COUNT', 1000)
        keys.extend(batch)
        if cursor == b'0':
            return sorted(set(keys))


def pairs(flat):
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


VALUE = {
    b'string': lambda k: ('GET', k),
    b'hash': lambda k: ('HGETALL', k),
    b'list': lambda k: ('LRANGE', k, 0, -1),
    b'set': lambda k: ('SMEMBERS', k),
    b'zset': lambda k: ('ZRANGE', k, 0, -1, 'WITHSCORES'),
    b'stream': lambda k: ('XRANGE', k, '-', '+'),
}


def normal(kind, v):
    if kind in (b'hash',):
        return sorted(pairs(v))
    if kind == b'set':
        return sorted(v)
    if kind == b'stream':
        return [(e[0], e[1]) for e in v]
    return v


def snapshot(r, dbs=DBS):
    """{(db, key): (type, value, pttl)} of every key, plus stream groups."""
    out = {}
    for db in dbs:
        r.call('SELECT', db)
        keys = scan_keys(r)
        types = [x.encode() if isinstance(x, str) else x
                 for x in r.pipeline([('TYPE', k) for k in keys])]
        values = r.pipeline([VALUE[tp](k) for k, tp in zip(keys, types)])
        ttls = r.pipeline([('PTTL', k) for k in keys])
        groups = r.pipeline([('XINFO', 'GROUPS', k) if tp == b'stream' else ('PING',)
                             for k, tp in zip(keys, types)])
        for k, tp, v, ttl, g in zip(keys, types, values, ttls, groups):
            v = normal(tp, v)
            if tp == b'stream':
                v = (v, [(dict(pairs(x))[b'name'], dict(pairs(x))[b'pending'],
                          dict(pairs(x))[b'last-delivered-id']) for x in g])
            out[(db, k)] = (tp, v, ttl)
    return out


def compare(want, got, what, tol_ms=60000):
    missing = sorted(set(want) - set(got))[:5]
    extra = sorted(set(got) - set(want))[:5]
    check(not missing and not extra, '%s: keys missing %r, extra %r (of %d)'
          % (what, missing, extra, len(want)))
    for k in want:
        tw, vw, xw = want[k]
        tg, vg, xg = got[k]
        check(tw == tg, '%s: %r is a %s, was a %s' % (what, k, tg, tw))
        check(vw == vg, '%s: %r differs: %r... != %r...' % (what, k, repr(vg)[:200],
                                                             repr(vw)[:200]))
        if xw == -1:
            check(xg == -1, '%s: %r has a TTL %r, had none' % (what, k, xg))
        else:
            check(xg > 0 and abs(xw - xg) < tol_ms,
                  '%s: %r TTL %r, was %r' % (what, k, xg, xw))


def counts(snap):
    out = {}
    for (db, _k) in snap:
        out['db%d' % db] = out.get('db%d' % db, 0) + 1
    return out


# ---- running backupbot ----------------------------------------------------

class Run:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    @property
    def text(self):
        return '%s\n%s' % (self.out, self.err)

    def __str__(self):
        return 'backupbot %s -> exit %s\n--- stdout:\n%s\n--- stderr:\n%s' % (
            ' '.join(self.args), self.rc, self.out, self.err)


def tmpdir(t):
    d = os.path.join(t.tmp, 'tmpdir')
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def bb_env(t):
    env = dict(os.environ, TMPDIR=tmpdir(t))
    env.pop('REDISCLI_AUTH', None)
    return env


def bb(t, conf, *args, binary=False, timeout=120):
    p = subprocess.run([BACKUPBOT, '-c', conf] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout, env=bb_env(t))
    out = p.stdout if binary else p.stdout.decode('utf-8', 'replace')
    return Run(list(args), p.returncode, out, p.stderr.decode('utf-8', 'replace'))


def write_conf(t, body, name='bb.conf'):
    token = os.path.join(t.tmp, 'token')
    if not os.path.exists(token):
        with open(token, 'w') as f:
            f.write(BOT_TOKEN + '\n')
        os.chmod(token, 0o600)
    path = os.path.join(t.tmp, name)
    with open(path, 'w') as f:
        f.write('[matrix]\nhomeserver = %s\nuser_id = @backupbot:localhost\n'
                'access_token_file = %s\nrooms = %s\nadmins = @alice:localhost\n\n'
                '[storage]\nstate_dir = %s\nbackup_dir = %s\n\n%s'
                % (t.hs.url, token, t.room_id, os.path.join(t.tmp, 'state'),
                   os.path.join(t.tmp, 'backups'), body))
    return path


def bdir(t, target):
    return os.path.join(t.tmp, 'backups', target)


def backup_ok(t, conf, target):
    r = bb(t, conf, 'backup', target)
    ids = re.findall(r'^ok %s: (%s-\d{8}T\d{6}Z), ' % (target, target), r.out, re.M)
    check(r.rc == 0 and len(ids) == 1, 'backup %s should succeed:\n%s' % (target, r))
    return ids[0], r


def backup_fails(t, conf, target, *causes):
    r = bb(t, conf, 'backup', target)
    check(r.rc == 1 and re.search(r'^FAILED %s: ' % target, r.out, re.M),
          'backup %s should fail:\n%s' % (target, r))
    for c in causes:
        check(re.search(c, r.text, re.I), '%r not in the output:\n%s' % (c, r))
    left = [n for n in ls(bdir(t, target)) if n.endswith('.partial') or n.startswith('.')]
    check(not left, 'a failed backup left files: %r' % left)
    check(not ls(tmpdir(t)), 'temporary files left: %r' % ls(tmpdir(t)))
    return r


def ls(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def manifest(t, target, bid):
    with open(os.path.join(bdir(t, target), bid + '.json')) as f:
        return json.load(f)


def cat(t, conf, bid):
    r = bb(t, conf, 'cat', bid, binary=True)
    check(r.rc == 0 and len(r.out) > 0, 'cat %s failed:\n%s' % (bid, r.err))
    return r.out


def verify_ok(t, conf, bid):
    r = bb(t, conf, 'verify', bid)
    check(r.rc == 0 and re.search(r'^ok \S+: %s: ' % bid, r.out, re.M),
          'verify %s should pass:\n%s' % (bid, r))


def restore_rdb(t, rdb, name):
    """A fresh server that loads rdb at start."""
    d = os.path.join(t.tmp, 'redis-' + name)
    os.makedirs(d)
    with open(os.path.join(d, 'dump.rdb'), 'wb') as f:
        f.write(rdb)
    return Redis(t, name)


def restore_logical(data, r):
    """RESTORE every record of a BBREDIS1 stream; the record count."""
    check(data[:9] == b'BBREDIS1\n', 'no BBREDIS1 header: %r' % data[:20])
    pos, cmds, db_now, records = 9, [], None, 0
    while True:
        db, klen = struct.unpack('>II', data[pos:pos + 8])
        pos += 8
        if klen == 0xFFFFFFFF:
            check(db == 0xFFFFFFFF, 'bad end record')
            (count,) = struct.unpack('>Q', data[pos:pos + 8])
            pos += 8
            break
        key = data[pos:pos + klen]
        pos += klen
        ttl, plen = struct.unpack('>qI', data[pos:pos + 12])
        pos += 12
        payload = data[pos:pos + plen]
        pos += plen
        check(len(payload) == plen and ttl >= -1, 'record %d is cut short' % records)
        if db != db_now:
            cmds.append(('SELECT', db))
            db_now = db
        cmds.append(('RESTORE', key, max(ttl, 0), payload, 'REPLACE'))
        records += 1
    check(pos == len(data), 'bytes after the end record: %d' % (len(data) - pos))
    check(count == records, 'end record says %d, %d records' % (count, records))
    r.pipeline(cmds)
    return records


def no_secret(t, secret, *texts):
    for text in texts:
        check(secret not in text, 'the password shows: %s' % text[:2000])
    for root, _dirs, files in os.walk(os.path.join(t.tmp, 'backups')):
        for n in files:
            if n.endswith('.json'):
                with open(os.path.join(root, n)) as f:
                    check(secret not in f.read(), 'the password is in %s' % n)


# ---- 1. RDB: both transfer forms, and the dataset comes back ----------------

@test
def redis_rdb_backup_restores_the_same_dataset(t):
    src = Redis(t, 'src', password=True)
    disk = Redis(t, 'disk', args=['--repl-diskless-sync', 'no'])
    c = src.client()
    for db in DBS:
        load(c, db)
    want = snapshot(c)
    c2 = disk.client()
    load(c2, 0)
    want_disk = snapshot(c2, dbs=(0,))
    conf = write_conf(t, src.section('cache', 'mode = rdb\n') +
                      disk.section('plain', 'mode = rdb\ncompression = none\n'))

    bid, r = backup_ok(t, conf, 'cache')
    no_secret(t, src.password, r.out, r.err)
    m = manifest(t, 'cache', bid)
    check(m['kind'] == 'redis' and m['mode'] == 'rdb' and m['server'] == 'redis'
          and re.match(r'\d+\.\d+', m['server_version']) and m['used_memory'] > 0
          and m['keys'] == counts(want) and m['keys_total'] == len(want)
          and m['rdb_version'] >= 9 and m['transfer'] == 'diskless'
          and re.fullmatch(r'[0-9a-f]{16}', m['rdb_checksum'])
          and m['file'] == bid + '.redis.zst', 'manifest: %r' % m)
    verify_ok(t, conf, bid)
    rdb = cat(t, conf, bid)
    check(rdb[:5] == b'REDIS' and len(rdb) == m['bytes_raw'], 'cat: %r, %d bytes'
          % (rdb[:9], len(rdb)))
    got = restore_rdb(t, rdb, 'restored')
    compare(want, snapshot(got.client()), 'rdb restore')

    # A master that writes the snapshot to disk first: the $len form.
    bid, r = backup_ok(t, conf, 'plain')
    m = manifest(t, 'plain', bid)
    check(m['transfer'] == 'disk' and m['file'] == bid + '.redis', 'manifest: %r' % m)
    rdb = cat(t, conf, bid)
    with open(os.path.join(bdir(t, 'plain'), bid + '.redis'), 'rb') as f:
        check(f.read() == rdb, 'compression none: the file is not the RDB')
    got = restore_rdb(t, rdb, 'restored-disk')
    compare(want_disk, snapshot(got.client(), dbs=(0,)), 'disk rdb restore')
    check(not ls(tmpdir(t)), 'temporary files left: %r' % ls(tmpdir(t)))


# ---- 2. logical: over a unix socket, RESTOREd key by key -------------------

@test
def redis_logical_backup_restores_the_same_dataset(t):
    src = Redis(t, 'src', password=True)
    c = src.client()
    for db in DBS:
        load(c, db)
    want = snapshot(c)
    conf = write_conf(t, src.section('cache', 'mode = logical\n',
                                     url='unix://%s' % src.sock))
    bid, r = backup_ok(t, conf, 'cache')
    no_secret(t, src.password, r.out, r.err)
    m = manifest(t, 'cache', bid)
    check(m['mode'] == 'logical' and m['format'] == 'BBREDIS1'
          and m['records'] == len(want) and m['keys_vanished'] == 0
          and m['databases'] == list(DBS) and 'fallback_reason' not in m,
          'manifest: %r' % m)
    verify_ok(t, conf, bid)
    data = cat(t, conf, bid)
    dst = Redis(t, 'dst')
    n = restore_logical(data, dst.client())
    check(n == len(want), '%d records for %d keys' % (n, len(want)))
    compare(want, snapshot(dst.client()), 'logical restore')


# ---- 3. auto: a server that refuses SYNC ---------------------------------

@test
def redis_auto_falls_back_to_logical_when_sync_is_refused(t):
    src = Redis(t, 'src', password=True, args=['--rename-command', 'SYNC', ''])
    c = src.client()
    load(c, 0)
    load(c, 3)
    want = snapshot(c)
    conf = write_conf(t, src.section('cache') + src.section('strict', 'mode = rdb\n'))
    bid, r = backup_ok(t, conf, 'cache')
    check(re.search(r'refused SYNC \(ERR unknown command.*fell back to logical', r.err),
          'no word of the fallback:\n%s' % r)
    m = manifest(t, 'cache', bid)
    check(m['mode'] == 'logical' and m['mode_configured'] == 'auto'
          and 'unknown command' in m['fallback_reason'] and m['records'] == len(want),
          'manifest: %r' % m)
    verify_ok(t, conf, bid)
    dst = Redis(t, 'dst')
    restore_logical(cat(t, conf, bid), dst.client())
    compare(want, snapshot(dst.client()), 'fallback restore')

    # mode = rdb does not fall back: it says why and what to do.
    backup_fails(t, conf, 'strict', r'refused SYNC', r'unknown command',
                 r'mode = auto or logical')

    # An ACL user without SYNC: NOPERM, the managed-service way.
    acl = Redis(t, 'acl', password=True)
    ca = acl.client()
    load(ca, 0)
    ca.call('ACL', 'SETUSER', 'backup', 'on', '>' + acl.password, '~*', '&*', '+@all',
            '-sync', '-psync')
    conf2 = write_conf(t, acl.section('acl', url=acl.url(user='backup')), name='acl.conf')
    bid, r = backup_ok(t, conf2, 'acl')
    check('fell back to logical' in r.err and 'NOPERM' in r.err, 'no NOPERM fallback:\n%s' % r)
    check(manifest(t, 'acl', bid)['mode'] == 'logical', 'ACL backup not logical')


# ---- 4. what must fail ------------------------------------------------------

@test
def redis_failures_are_clear(t):
    src = Redis(t, 'src', password=True)
    load(src.client(), 0, scale=1)
    wrong = os.path.join(t.tmp, 'wrong.pass')
    with open(wrong, 'w') as f:
        f.write('not-the-password\n')
    os.chmod(wrong, 0o600)
    loose = os.path.join(t.tmp, 'loose.pass')
    with open(loose, 'w') as f:
        f.write(src.password + '\n')
    os.chmod(loose, 0o644)
    down = free_port()
    conf = write_conf(t, src.section('wrongpw', password_file=wrong) +
                      '[redis nopw]\nurl = %s\n\n' % src.url() +
                      '[redis down]\nurl = redis://127.0.0.1:%d/0\n\n' % down +
                      '[redis inurl]\nurl = redis://:%s@127.0.0.1:%d/0\n\n'
                      % ('pw-in-the-url', src.port))
    r = backup_fails(t, conf, 'wrongpw', r'refused the password', r'WRONGPASS', re.escape(wrong))
    no_secret(t, 'not-the-password', r.text)
    backup_fails(t, conf, 'nopw', r'NOAUTH', r'set password_file in \[redis nopw\]')
    # A password file others can read: the config is refused.
    r = bb(t, write_conf(t, src.section('loose', password_file=loose), name='loose.conf'),
           'backup', 'loose')
    check(r.rc != 0 and re.search(r'chmod 600|0644', r.text), 'a 0644 password file:\n%s' % r)
    backup_fails(t, conf, 'down', r'cannot connect to Redis at 127\.0\.0\.1:%d' % down,
                 r'refused')
    r = backup_fails(t, conf, 'inurl', r'password_file')
    check('pw-in-the-url' not in r.text, 'the password in the url was repeated:\n%s' % r)
    # The server goes away: a backup that was good before still verifies.
    ok = write_conf(t, src.section('good'), name='good.conf')
    bid, _ = backup_ok(t, ok, 'good')
    src.stop()
    backup_fails(t, ok, 'good', r'cannot connect')
    verify_ok(t, ok, bid)


# ---- 5. TLS, through redis-cli ---------------------------------------------

@test
def redis_tls_rdb_checks_the_certificate(t):
    src = Redis(t, 'tls', tls=True, password=True)
    c = src.client()
    load(c, 0)
    load(c, 3)
    want = snapshot(c)
    tls = os.path.join(src.dir, 'tls')
    conf = write_conf(t,
                      src.section('good', 'tls_ca_file = %s/ca.crt\n' % tls) +
                      src.section('otherca', 'tls_ca_file = %s/other-ca.crt\n' % tls) +
                      src.section('noverify', 'tls_ca_file = %s/other-ca.crt\n'
                                  'tls_verify = no\ncompression = none\n' % tls) +
                      src.section('logical', 'tls_ca_file = %s/ca.crt\nmode = logical\n' % tls))
    bid, r = backup_ok(t, conf, 'good')
    no_secret(t, src.password, r.out, r.err)
    m = manifest(t, 'good', bid)
    check(m['mode'] == 'rdb' and m['transport'] == 'redis-cli --tls'
          and m['keys'] == counts(want) and m['transfer'] == 'diskless', 'manifest: %r' % m)
    verify_ok(t, conf, bid)
    got = restore_rdb(t, cat(t, conf, bid), 'restored')
    compare(want, snapshot(got.client()), 'TLS rdb restore')

    backup_fails(t, conf, 'otherca', r'certificate')
    bid, r = backup_ok(t, conf, 'noverify')
    with open(os.path.join(bdir(t, 'noverify'), bid + '.redis'), 'rb') as f:
        rdb = f.read()
    check(rdb[:5] == b'REDIS' and rdb[-9] == 0xff, 'TLS rdb: %r ... %r' % (rdb[:9], rdb[-9:]))
    backup_fails(t, conf, 'logical', r'not supported over rediss://')

    # A wrong password over TLS, and a server that refuses SYNC there.
    wrong = os.path.join(t.tmp, 'wrong.pass')
    with open(wrong, 'w') as f:
        f.write('nope\n')
    os.chmod(wrong, 0o600)
    conf2 = write_conf(t, src.section('wrongpw', 'tls_ca_file = %s/ca.crt\n' % tls,
                                      password_file=wrong), name='wrong.conf')
    backup_fails(t, conf2, 'wrongpw', r'WRONGPASS|AUTH failed')
    c.call('ACL', 'SETUSER', 'nosync', 'on', '>' + src.password, '~*', '&*', '+@all', '-sync')
    conf3 = write_conf(t, src.section('nosync', 'tls_ca_file = %s/ca.crt\n' % tls,
                                      url=src.url(user='nosync')), name='nosync.conf')
    backup_fails(t, conf3, 'nosync', r'refused SYNC', r'NOPERM', r'not supported over rediss')


# ---- 6. verify reads everything back -----------------------------------------

def damage(t, target, bid, offset=None, cut=None):
    """Change the data file and its manifest's hash, so that only the
    restore tool can tell."""
    import hashlib
    m = manifest(t, target, bid)
    path = os.path.join(bdir(t, target), m['file'])
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    if cut is not None:
        data = data[:cut]
    else:
        data[offset] ^= 0x20
    with open(path, 'wb') as f:
        f.write(data)
    m['blake2b'] = hashlib.blake2b(bytes(data), digest_size=32).hexdigest()
    with open(os.path.join(bdir(t, target), bid + '.json'), 'w') as f:
        json.dump(m, f)


@test
def redis_verify_finds_damage_the_hash_cannot(t):
    src = Redis(t, 'src', args=['--rdbchecksum', 'no'])
    load(src.client(), 0, scale=3)
    good = Redis(t, 'good')
    load(good.client(), 0, scale=3)
    conf = write_conf(t, good.section('rdb', 'mode = rdb\ncompression = none\n') +
                      good.section('logical', 'mode = logical\ncompression = none\n') +
                      good.section('notool', 'redis_cli = /nonexistent/bin/redis-cli\n') +
                      src.section('nocrc', 'mode = rdb\n'))
    rdb_id, _ = backup_ok(t, conf, 'rdb')
    log_id, _ = backup_ok(t, conf, 'logical')
    size = manifest(t, 'rdb', rdb_id)['bytes']
    damage(t, 'rdb', rdb_id, offset=size // 2)
    # --quick: redis-check-rdb reads it
    r = bb(t, conf, 'verify', rdb_id, '--quick')
    check(r.rc == 1 and 'restore tool cannot read' in r.out
          and re.search(r'\[offset \d+\] .*(error|CRC|invalid|unexpected)', r.out, re.I)
          and 'AUX FIELD' not in r.out and 'Terminating' not in r.out, 'damaged rdb:\n%s' % r)
    # the drill: a temporary redis-server will not load it
    r = bb(t, conf, 'verify', rdb_id)
    check(r.rc == 1 and 'cannot load this RDB' in r.out, 'damaged rdb, drill:\n%s' % r)
    damage(t, 'logical', log_id, cut=manifest(t, 'logical', log_id)['bytes'] - 20)
    r = bb(t, conf, 'verify', log_id)
    check(r.rc == 1 and 'truncated' in r.out, 'cut logical backup:\n%s' % r)
    # rdbchecksum no: good, with a warning that says what it means.
    bid, r = backup_ok(t, conf, 'nocrc')
    check('without a checksum' in r.err, 'no warning about rdbchecksum no:\n%s' % r)
    check(manifest(t, 'nocrc', bid)['rdb_checksum'] == 'disabled', 'nocrc manifest')
    verify_ok(t, conf, bid)
    # No redis-check-rdb: the backup is good, but cannot be checked.
    bid, r = backup_ok(t, conf, 'notool')
    check('/nonexistent/bin/redis-check-rdb' in r.err and 'cannot be checked' in r.err,
          'no warning about the missing tool:\n%s' % r)
    r = bb(t, conf, 'verify', bid, '--quick')
    check(r.rc == 1 and '/nonexistent/bin/redis-check-rdb' in r.out
          and 'install redis-tools' in r.out, 'verify without the tool:\n%s' % r)
    # the drill needs redis-server, not redis-check-rdb
    verify_ok(t, conf, bid)


# ---- 7. Ctrl-C while the master keeps us waiting -----------------------------

def replicas(r):
    info = r.call('INFO', 'replication').decode()
    return int(re.search(r'connected_slaves:(\d+)', info).group(1))


@test
def redis_cancel_during_sync_leaves_nothing(t):
    src = Redis(t, 'slow', args=['--repl-diskless-sync-delay', '30'])
    c = src.client()
    load(c, 0)
    conf = write_conf(t, src.section('slow', 'mode = rdb\n'))
    p = subprocess.Popen([BACKUPBOT, '-c', conf, 'backup', 'slow'], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=bb_env(t))
    deadline = time.time() + 15
    while replicas(c) == 0:
        check(time.time() < deadline and p.poll() is None, 'backupbot never sent SYNC')
        time.sleep(0.05)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=15)
    check(time.time() - t0 < 3, 'cancel took %.1fs' % (time.time() - t0))
    check(p.returncode == 1 and b'CANCELLED slow' in out, 'cancel: %r %r' % (out, err))
    left = [n for n in ls(bdir(t, 'slow')) if not n.endswith('.json')]
    check(not left and not [n for n in ls(bdir(t, 'slow')) if n.endswith('.json')],
          'a cancelled backup left: %r' % ls(bdir(t, 'slow')))
    deadline = time.time() + 10
    while replicas(c) != 0:
        check(time.time() < deadline, 'the master still counts us as a replica')
        time.sleep(0.05)
