"""harness.py - what every integration test stands on.

A test gets a fresh test homeserver (tests/homeserver/hs.py) and a temp
dir, creates users and rooms through the homeserver's control API, writes
a bot.conf, starts the real ./backupbot and talks to it as people would:
by posting messages and waiting for what the bot sends.  Nothing sleeps
where a condition can be waited for.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKUPBOT = os.path.abspath(os.path.join(ROOT, os.environ.get('BACKUPBOT', 'backupbot')))
HS = os.path.join(ROOT, 'tests', 'homeserver', 'hs.py')
PYTHON = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable

BOT = '@backupbot:localhost'
ALICE = '@alice:localhost'
BOB = '@bob:localhost'
EVE = '@eve:localhost'
BOT_TOKEN = 'syt_botsecret_Xq7RkP2mZ9'
BOT_PASSWORD = 'pw-Correct-Horse-4711'


class TestFailure(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


class Homeserver:
    def __init__(self, tmp):
        self.log = os.path.join(tmp, 'hs-requests.log')
        self.proc = subprocess.Popen(
            [PYTHON, HS, '--port', '0', '--log', self.log, '--self-check'],
            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, 'hs.err'), 'w'),
            text=True)
        line = self.proc.stdout.readline()
        if not line.startswith('READY'):
            raise RuntimeError('homeserver did not start: %r (see %s/hs.err)' % (line, tmp))
        self.port = int(line.split()[1])
        self.url = 'http://127.0.0.1:%d' % self.port

    def call(self, method, path, body=None, ok=(200,)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        if status not in ok:
            raise TestFailure('%s %s -> %d %s' % (method, path, status, text[:300]))
        return json.loads(text) if text else {}

    # control API shortcuts
    def user(self, user_id, **kw):
        return self.call('POST', '/_test/users', dict(user_id=user_id, **kw))

    def room(self, **kw):
        return self.call('POST', '/_test/rooms', kw)['room_id']

    def send(self, room, sender, body=None, content=None, type='m.room.message', **kw):
        if content is None:
            content = {'msgtype': 'm.text', 'body': body}
        return self.call('POST', '/_test/rooms/%s/send' % urllib.parse.quote(room, safe=""),
                         dict(sender=sender, type=type, content=content, **kw))['event_id']

    def events(self, room, sender=None, type=None, state=False):
        """Events of a room in order; without state events unless asked."""
        q = 'room_id=' + urllib.parse.quote(room, safe="")
        if sender:
            q += '&sender=' + urllib.parse.quote(sender, safe="")
        if type:
            q += '&type=' + urllib.parse.quote(type, safe="")
        evs = [e['event'] for e in self.call('GET', '/_test/events?' + q)['events']]
        return [e for e in evs if state or 'state_key' not in e]

    def wait(self, room, count, sender=BOT, type=None, timeout=20):
        """Wait until `sender` has sent `count` non-state events to room."""
        deadline = time.time() + timeout
        while True:
            evs = self.events(room, sender=sender, type=type)
            if len(evs) >= count:
                return evs
            if time.time() > deadline:
                got = [(e['type'], e['content'].get('body', e['content'])) for e in evs]
                raise TestFailure('waited %ss for %d %s event(s) from %s in %s, got %d: %s'
                                  % (timeout, count, type or 'any', sender, room, len(got), got))
            # the homeserver's long-poll wakes us on the next event
            self.call('POST', '/_test/wait', dict(room_id=room, sender=sender, count=len(evs) + 1,
                      timeout_ms=200), ok=(200, 408))

    def fault(self, kind, **kw):
        self.call('POST', '/_test/faults', dict(kind=kind, **kw))

    def violations(self):
        return self.call('GET', '/_test/violations')['violations']

    def config(self, **kw):
        """Switch a real server's behaviour (sync cache, rate limit, ...)
        off or on for this test; see hs.py /_test/config."""
        return self.call('POST', '/_test/config', kw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Bot:
    """The real backupbot daemon with a config written for the test."""

    def __init__(self, t, name='bot', **cfg):
        self.t = t
        self.conf = os.path.join(t.tmp, name + '.conf')
        self.state_dir = os.path.join(t.tmp, name + '-state')
        self.log = os.path.join(t.tmp, name + '.log')
        self.proc = None
        self.env = None         # the environment, e.g. a faked clock
        self.write_config(**cfg)

    def write_config(self, rooms=None, admins=(ALICE, BOB), prefix='!', extra='',
                     auth='token', backlog='5m', sync_timeout='2s'):
        rooms = rooms if rooms is not None else [self.t.room_id]
        if auth == 'token':
            secret = os.path.join(self.t.tmp, 'token')
            with open(secret, 'w') as f:
                f.write(BOT_TOKEN + '\n')
            os.chmod(secret, 0o600)
            auth_line = 'access_token_file = %s' % secret
        else:
            secret = os.path.join(self.t.tmp, 'password')
            with open(secret, 'w') as f:
                f.write(BOT_PASSWORD + '\n')
            os.chmod(secret, 0o600)
            auth_line = 'password_file = %s' % secret
        with open(self.conf, 'w') as f:
            f.write('[matrix]\nhomeserver = %s\nuser_id = %s\n%s\nrooms = %s\n'
                    'admins = %s\ncommand_prefix = %s\nbacklog_max_age = %s\n'
                    'sync_timeout = %s\n%s\n[storage]\nstate_dir = %s\n'
                    'backup_dir = %s\n'
                    % (self.t.hs.url, BOT, auth_line, ', '.join(rooms),
                       ', '.join(admins), prefix, backlog, sync_timeout, extra,
                       self.state_dir, os.path.join(self.t.tmp, 'backups')))

    def start(self, wait_ready=True):
        if not os.path.exists(self.log):
            open(self.log, 'w').close()
        self.logf = open(self.log, 'a')
        ready_before = self.log_text().count('ready: listening')
        self.proc = subprocess.Popen([BACKUPBOT, '-c', self.conf, '-d', 'run'],
                                     stdout=self.logf, stderr=self.logf, env=self.env)
        if wait_ready:
            # after the first sync: what is sent from now on is live
            self.wait_log('ready: listening', 15, count=ready_before + 1)
        return self

    def wait_log(self, text, timeout=15, count=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.log_text().count(text) >= count:
                return
            if self.proc.poll() is not None:
                raise TestFailure('backupbot exited (%s) before logging %r:\n%s'
                                  % (self.proc.returncode, text, self.log_text()[-3000:]))
            time.sleep(0.02)
        raise TestFailure('backupbot did not log %r within %ss:\n%s'
                          % (text, timeout, self.log_text()[-3000:]))

    def log_text(self):
        with open(self.log, errors='replace') as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, expect=0):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise TestFailure('backupbot did not stop on %s' % sig)
        if expect is not None and rc != expect:
            raise TestFailure('backupbot exited %s on %s, expected %s:\n%s'
                              % (rc, sig, expect, self.log_text()[-2000:]))
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()


class Test:
    """Per-test context: temp dir, homeserver, the usual users and room."""

    def __init__(self, name):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix='bbtest-')
        os.chmod(self.tmp, 0o711)     # a PostgreSQL server user must reach pg/
        self.cleanups = []
        self.hs = Homeserver(self.tmp)
        self.bots = []
        for u in (ALICE, BOB, EVE):
            self.hs.user(u, password='pw-' + u)
        self.hs.user(BOT, password=BOT_PASSWORD, access_token=BOT_TOKEN)
        self.room_id = self.hs.room(creator=ALICE, members=[ALICE, BOB, EVE, BOT],
                                    power_levels={'users': {ALICE: 100, BOB: 50}})

    def bot(self, **cfg):
        b = Bot(self, **cfg)
        self.bots.append(b)
        return b

    def finish(self, failed):
        for b in self.bots:
            if b.proc is not None and b.proc.poll() is None:
                b.proc.kill()
                b.proc.wait()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001 - cleanup goes on
                traceback.print_exc()
        violations = self.hs.violations()
        self.hs.stop()
        if failed or os.environ.get('KEEP_TMP'):
            print('    (kept %s)' % self.tmp)
        else:
            subprocess.run(['umount', '-l', os.path.join(self.tmp, 'backups')],
                           capture_output=True)
            shutil.rmtree(self.tmp, ignore_errors=True)
        return violations


# ---- assertions about what the bot sent ---------------------------------

def rel(ev):
    return ev['content'].get('m.relates_to', {})


def replies(events):
    return [e for e in events if e['type'] == 'm.room.message']


def check_thread_reply(ev, root, reply_to):
    c = ev['content']
    check(c.get('msgtype') == 'm.notice', 'reply is not an m.notice: %r' % c)
    check(c.get('format') == 'org.matrix.custom.html' and 'formatted_body' in c,
          'reply has no HTML formatted_body: %r' % c)
    r = rel(ev)
    check(r.get('rel_type') == 'm.thread' and r.get('event_id') == root,
          'reply not in the thread of %s: %r' % (root, r))
    check(r.get('is_falling_back') is True, 'no is_falling_back: %r' % r)
    check(r.get('m.in_reply_to', {}).get('event_id') == reply_to,
          'in_reply_to is not the command %s: %r' % (reply_to, r))


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def run_one(fn):
    """Run one test; (passed, the line(s) to print)."""
    name = fn.__module__ + '.' + fn.__name__
    t0 = time.time()
    t = None
    err = None
    try:
        t = Test(name)
        if getattr(sys.modules.get(fn.__module__), 'HS_RATE_LIMIT', True) is False:
            t.hs.config(rate_limit=False)
        fn(t)
    except Exception as e:  # noqa: BLE001 - a test fails on anything
        err = e if isinstance(e, TestFailure) else traceback.format_exc()
    violations = []
    if t is not None:
        try:
            violations = t.finish(err is not None)
        except Exception:  # noqa: BLE001
            violations = ['homeserver control API failed: ' + traceback.format_exc()]
    if err is None and violations:
        err = 'spec violations: %s' % json.dumps(violations, indent=1)[:3000]
    if err is None:
        return True, 'ok   %-55s %5.1fs' % (name, time.time() - t0)
    return False, 'FAIL %-55s %5.1fs\n    %s' % (name, time.time() - t0,
                                              str(err).replace('\n', '\n    '))


def main(argv):
    """run.py [NAME-SUBSTRING ...]; BB_TEST_JOBS=N runs N tests at a time
    (each in its own process: its own homeserver, servers and temp dir)."""
    if len(argv) == 3 and argv[1] == '--one':
        fn = [f for f in TESTS if f.__module__ + '.' + f.__name__ == argv[2]]
        ok, line = run_one(fn[0])
        print(line, flush=True)
        return 0 if ok else 1
    only = argv[1:]
    chosen = [fn for fn in TESTS
              if not only or any(o in fn.__module__ + '.' + fn.__name__ for o in only)]
    jobs = int(os.environ.get('BB_TEST_JOBS', '1'))
    passed = failed = 0
    if jobs <= 1:
        for fn in chosen:
            ok, line = run_one(fn)
            print(line, flush=True)
            passed += ok
            failed += not ok
    else:
        import concurrent.futures

        def worker(fn):
            name = fn.__module__ + '.' + fn.__name__
            r = subprocess.run([sys.executable, argv[0], '--one', name],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            out = r.stdout.rstrip()
            if not out.startswith(('ok ', 'FAIL ')):
                out = 'FAIL %s\n    worker exited %d: %s' % (name, r.returncode, out[-3000:])
            return r.returncode == 0 and out.startswith('ok '), out

        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
            for ok, out in ex.map(worker, chosen):
                print(out, flush=True)
                passed += ok
                failed += not ok
    print('integration: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


# ---- real servers for backup tests ---------------------------------------

def free_port():
    import socket
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


CLUSTER = os.path.join(ROOT, 'tests', 'pg', 'cluster.sh')


class Postgres:
    """A throwaway PostgreSQL cluster (tests/pg/cluster.sh) for one test."""

    def __init__(self, t, size_mb=5, db='mastodon'):
        self.dir = os.path.join(t.tmp, 'pg')
        self.db = db
        # free_port() closes its socket before the server binds: another
        # test running beside this one may take the port meanwhile.  The
        # cluster is kept between tries; only the port changes.
        for attempt in range(3):
            self.port = free_port()
            r = subprocess.run(['bash', CLUSTER, 'start', self.dir, str(self.port)],
                               capture_output=True, text=True, timeout=120)
            if r.returncode == 0 or 'in use' not in r.stdout + r.stderr:
                break
        if r.returncode != 0:
            raise RuntimeError('cluster.sh start failed: %s%s' % (r.stdout, r.stderr))
        t.cleanups.append(self.stop)
        if size_mb:
            self.load(db, size_mb)
        self.password_file = os.path.join(self.dir, 'pg.pass')

    def load(self, db, size_mb):
        r = subprocess.run(['bash', CLUSTER, 'load', self.dir, str(self.port), db, str(size_mb)],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError('cluster.sh load failed: %s%s' % (r.stdout, r.stderr))

    def psql(self, sql, db=None, check=True):
        r = subprocess.run(['psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', self.dir,
                            '-p', str(self.port), '-U', 'postgres', '-d', db or self.db, '-c', sql],
                           capture_output=True, text=True, timeout=300)
        if check and r.returncode != 0:
            raise TestFailure('psql %r: %s' % (sql, r.stderr))
        return r.stdout.strip()

    def section(self, name='main', extra=''):
        return ('[postgres %s]\nconninfo = host=127.0.0.1 port=%d dbname=%s user=backup\n'
                'password_file = %s\n%s\n' % (name, self.port, self.db, self.password_file, extra))

    def fingerprint(self, db=None):
        """Row count and content checksum of every user table."""
        tables = self.psql("SELECT quote_ident(schemaname)||'.'||quote_ident(tablename) FROM pg_tables "
                           "WHERE schemaname NOT IN ('pg_catalog','information_schema') ORDER BY 1",
                           db=db).split('\n')
        out = {}
        for tb in tables:
            if tb:
                out[tb] = self.psql("SELECT count(*) || ' ' || coalesce(md5(string_agg(md5(t::text), '' "
                                    "ORDER BY md5(t::text))), '') FROM %s t" % tb, db=db)
        return out

    def restore_copy(self, conf, backup_id, newdb):
        """`backupbot cat` a backup into pg_restore, in a new database."""
        self.psql('CREATE DATABASE %s' % newdb, db='postgres')
        dec = subprocess.Popen([BACKUPBOT, '-c', conf, 'cat', backup_id], stdout=subprocess.PIPE)
        r = subprocess.run(['pg_restore', '-h', self.dir, '-p', str(self.port), '-U', 'postgres',
                            '-d', newdb, '--no-owner'], stdin=dec.stdout, capture_output=True,
                           text=True, timeout=600)
        dec.stdout.close()
        check(dec.wait() == 0 and r.returncode == 0, 'restore failed: %s' % r.stderr)

    def stop(self):
        subprocess.run(['bash', CLUSTER, 'stop', self.dir], capture_output=True, timeout=60)


class Webdav:
    """rclone serve webdav on loopback, as a remote for backups."""

    def __init__(self, t, name='dav', read_only=False):
        self.dir = os.path.join(t.tmp, 'dav-' + name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        args = ['rclone', 'serve', 'webdav', self.dir, '--addr', '127.0.0.1:%d' % self.port,
                '--dir-cache-time', '0s']
        if read_only:
            args.append('--read-only')
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t.cleanups.append(self.stop)
        import socket
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        self.name = name

    def rclone_section(self):
        return '[%s]\ntype = webdav\nurl = http://127.0.0.1:%d\nvendor = other\n' % (self.name, self.port)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
