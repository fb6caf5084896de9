"""The shell side of backups: `backupbot backup|list|verify|cat|keygen|catalog`
against a real PostgreSQL cluster (tests/pg/cluster.sh), a local-directory
remote and a WebDAV remote (rclone serve webdav), a full disk, broken and
hostile pg_dumps, damaged files and Ctrl-C.

No Matrix is involved: the test homeserver only exists because every Test
has one.  Each test writes its own bot.conf.  A failure must never lose a
good backup and must never leave half a file behind, so most tests end by
checking exactly which files exist and that the older backups still verify.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
import uuid

from harness import (BACKUPBOT, BOT_TOKEN, ROOT, Postgres, TestFailure,
                     Webdav, check, free_port, test)

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False

REAL_PG_DUMP = shutil.which('pg_dump') or '/usr/bin/pg_dump'
LEFTOVER = re.compile(r'(\.partial|\.tmp|\.fetch)$|^\.')


# ---- helpers ----------------------------------------------------------

class Run:
    """What one backupbot run did."""

    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    @property
    def text(self):
        return '%s\n%s' % (self.out, self.err)

    def __str__(self):
        return 'backupbot %s -> exit %s\n--- stdout:\n%s\n--- stderr:\n%s' % (
            ' '.join(self.args), self.rc, self.out, self.err)


def tmpdir(t):
    """TMPDIR of every backupbot run: where pg_dump's password file goes."""
    d = os.path.join(t.tmp, 'tmpdir')
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def bb(t, conf, *args, timeout=180, binary=False, stdout=subprocess.PIPE, env_extra=None):
    """Run backupbot [-c conf] args...; never through a shell."""
    argv = [BACKUPBOT] + (['-c', conf] if conf else []) + list(args)
    env = dict(os.environ, TMPDIR=tmpdir(t), **(env_extra or {}))
    env.pop('PGPASSWORD', None)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=stdout,
                       stderr=subprocess.PIPE, timeout=timeout, env=env)
    out = p.stdout if binary or p.stdout is None else p.stdout.decode('utf-8', 'replace')
    return Run(list(args), p.returncode, out, p.stderr.decode('utf-8', 'replace'))


def start_pg(t, size_mb=5):
    # The server runs as postgres (or bbtest) and must reach t.tmp/pg
    # (the harness does this too, since 3d92a96).
    os.chmod(t.tmp, 0o711)
    return Postgres(t, size_mb)


def pg_section(pg, name, db=None, password_file=None, extra=''):
    return ('[postgres %s]\nconninfo = host=127.0.0.1 port=%d dbname=%s user=backup\n'
            'password_file = %s\n%s\n' % (name, pg.port, db or pg.db,
                                          password_file or pg.password_file, extra))


def secret_file(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def write_conf(t, name, backup_dir, storage='', body=''):
    """A complete bot.conf: [matrix] (required by the parser), [storage], body."""
    token = os.path.join(t.tmp, 'token')
    if not os.path.exists(token):
        secret_file(token, BOT_TOKEN + '\n')
    path = os.path.join(t.tmp, name)
    with open(path, 'w') as f:
        f.write('[matrix]\nhomeserver = %s\nuser_id = @backupbot:localhost\n'
                'access_token_file = %s\nrooms = %s\nadmins = @alice:localhost\n\n'
                '[storage]\nstate_dir = %s\nbackup_dir = %s\n%s\n\n%s'
                % (t.hs.url, token, t.room_id, os.path.join(t.tmp, 'state'),
                   backup_dir, storage, body))
    return path


def backup_ok(t, conf, target):
    """Run `backup TARGET`, expect success; return the new backup's id."""
    r = bb(t, conf, 'backup', target)
    ids = re.findall(r'^ok %s: (%s-\d{8}T\d{6}Z), ' % (re.escape(target), re.escape(target)),
                     r.out, re.M)
    check(r.rc == 0 and len(ids) == 1,
          'backup %s: expected exit 0 and one "ok %s: ID" line:\n%s' % (target, target, r))
    return ids[0]


def backup_fails(t, conf, target, *causes):
    """Run `backup TARGET`, expect exit 1 and FAILED with each cause in its output."""
    r = bb(t, conf, 'backup', target)
    check(r.rc == 1, 'backup %s should have failed with exit 1:\n%s' % (target, r))
    check(re.search(r'^FAILED %s: ' % re.escape(target), r.out, re.M),
          'no "FAILED %s:" line:\n%s' % (target, r))
    for c in causes:
        check(re.search(c, r.text, re.I), 'cause %r not in the output:\n%s' % (c, r))
    check(not re.search(r'^ok ', r.out, re.M), 'a failed backup printed ok:\n%s' % r)
    return r


def ls(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def check_no_leftovers(d, what=''):
    bad = [n for n in ls(d) if LEFTOVER.search(n)]
    check(not bad, '%s: left behind in %s: %s' % (what, d, bad))


def check_tmpdir_clean(t, what=''):
    left = ls(tmpdir(t))
    check(not left, '%s: temporary files left in TMPDIR: %s' % (what, left))


def manifest(bdir, target, bid):
    with open(os.path.join(bdir, target, bid + '.json')) as f:
        return json.load(f)


def blake2b(path):
    h = hashlib.blake2b(digest_size=32)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def write(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def listed(t, conf, target=None):
    """Ids from `list [TARGET] --json`, newest first (checks it parses)."""
    r = bb(t, conf, 'list', *([target] if target else []), '--json')
    check(r.rc == 0, 'list --json failed:\n%s' % r)
    try:
        entries = json.loads(r.out)
    except ValueError as e:
        raise TestFailure('list --json is not JSON (%s):\n%s' % (e, r))
    check(isinstance(entries, list), 'list --json is not an array:\n%s' % r)
    return [e['id'] for e in entries], entries, r


def verify_ok(t, conf, bid, target='main'):
    r = bb(t, conf, 'verify', bid)
    check(r.rc == 0 and re.search(r'^ok %s: %s: ' % (target, bid), r.out, re.M),
          'verify %s should pass:\n%s' % (bid, r))


def verify_fails(t, conf, *args, cause):
    r = bb(t, conf, 'verify', *args)
    check(r.rc == 1 and re.search(r'^FAILED ', r.out, re.M),
          'verify %s should fail with exit 1:\n%s' % (' '.join(args), r))
    check(re.search(cause, r.text, re.I), 'verify %s: %r not in the output:\n%s'
          % (' '.join(args), cause, r))
    return r


def live_counts(pg, db=None):
    out = {}
    for tb in pg.psql("SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname "
                      "NOT IN ('pg_catalog','information_schema') ORDER BY 1", db=db).split('\n'):
        if tb:
            out[tb] = int(pg.psql('SELECT count(*) FROM %s' % tb, db=db))
    return out


def wrapper(t, name, body):
    """An executable /bin/sh script standing in for pg_dump."""
    path = os.path.join(t.tmp, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('#!/bin/sh\n' + body)
    os.chmod(path, 0o755)
    return path


VERSION_PASSTHROUGH = ('for a in "$@"; do [ "$a" = --version ] && exec %s --version; done\n'
                       % REAL_PG_DUMP)


def pgrep(pattern):
    r = subprocess.run(['pgrep', '-af', pattern], capture_output=True, text=True)
    return r.stdout.strip()


def wait_no_process(pattern, timeout=3.0):
    deadline = time.time() + timeout
    while True:
        left = pgrep(pattern)
        if not left or time.time() > deadline:
            return left
        time.sleep(0.05)


def server_major(pg):
    return int(pg.psql('SHOW server_version_num')) // 10000


# ---- 0. the tools themselves, and where the time goes ----------------

@test
def debian_pg_wrapper_is_not_run_and_timings_add_up(t):
    # PATH leads pg_dump and pg_restore to a script named pg_wrapper (as
    # on Debian, where it is Perl and costs 0.1-0.25 s a run): backupbot
    # runs the newest /usr/lib/postgresql/N/bin/ program instead, so the
    # script never runs; the backup is as good.
    if not [d for d in os.listdir('/usr/lib/postgresql')
            if os.access('/usr/lib/postgresql/%s/bin/pg_dump' % d, os.X_OK)]:
        raise TestFailure('no /usr/lib/postgresql/N/bin/pg_dump on this machine')
    pg = start_pg(t)
    marker = os.path.join(t.tmp, 'wrapper-ran')
    share = wrapper(t, 'share/pg_wrapper', 'echo "$0 $*" >> %s\n'
                    'exec /usr/lib/postgresql/*/bin/"$(basename "$0")" "$@"\n' % marker)
    bindir = os.path.join(t.tmp, 'bin')
    os.makedirs(bindir)
    for prog in ('pg_dump', 'pg_restore'):
        os.symlink(share, os.path.join(bindir, prog))
    path = {'PATH': bindir + ':' + os.environ['PATH']}
    bdir = os.path.join(t.tmp, 'backups')
    conf = write_conf(t, 'bot.conf', bdir, body=pg_section(pg, 'main'))
    t0 = time.time()
    r = bb(t, conf, 'backup', 'main', '--timings', env_extra=path)
    wall_ms = (time.time() - t0) * 1000
    check(r.rc == 0 and re.search(r'^ok main: ', r.out, re.M), 'backup:\n%s' % r)
    check(not os.path.exists(marker), 'the wrapper ran: %s' % (
        read(marker) if os.path.exists(marker) else ''))
    m = re.search(r'^  timings \(ms\): (.*)$', r.out, re.M)
    check(m, 'no timings line:\n%s' % r)
    steps = [x.split() for x in m.group(1).split(', ')]
    check([s[0] for s in steps] == ['setup', 'prepare', 'dump', 'commit', 'remotes',
                                    'retention'], 'steps: %r' % steps)
    total = sum(int(s[1]) for s in steps)
    check(all(int(s[1]) >= 0 for s in steps) and 0 < total <= wall_ms,
          'timings %r do not add up within the %.0f ms the run took' % (steps, wall_ms))
    # and the restore side too: verify runs pg_restore, not the wrapper
    r = bb(t, conf, 'verify', 'main', 'latest', env_extra=path)
    check(r.rc == 0, 'verify:\n%s' % r)
    check(not os.path.exists(marker), 'the wrapper ran for verify: %s' % (
        read(marker) if os.path.exists(marker) else ''))
    # Without the option, no timings line.
    r = bb(t, conf, 'backup', 'main')
    check(r.rc == 0 and 'timings' not in r.out, 'timings unasked:\n%s' % r)


# ---- 1. backup and restore, for each compression ---------------------

@test
def backup_restores_equal_with_each_compression(t):
    pg = start_pg(t, 5)
    bdir = os.path.join(t.tmp, 'backups')
    conf = write_conf(t, 'bb.conf', bdir, body=(
        pg_section(pg, 'main') +
        pg_section(pg, 'plain', extra='compression = none') +
        pg_section(pg, 'pgz', extra='compression = pgdump')))
    counts = live_counts(pg)
    check(len(counts) == 5 and all(n > 0 for n in counts.values()), 'test data: %r' % counts)
    source = pg.fingerprint()
    server_version = pg.psql('SHOW server_version')
    dump_version = re.search(r'\(PostgreSQL\) (\S+)', subprocess.run(
        [REAL_PG_DUMP, '--version'], capture_output=True, text=True).stdout).group(1)
    sizes = {}
    for target, comp, suffix, magic in (('main', 'zstd', '.dump.zst', b'\x28\xb5\x2f\xfd'),
                                        ('plain', 'none', '.dump', b'PGDMP'),
                                        ('pgz', 'pgdump', '.dump', b'PGDMP')):
        t0 = time.time()
        bid = backup_ok(t, conf, target)
        check(re.fullmatch(r'%s-\d{8}T\d{6}Z' % target, bid), 'bad id %r' % bid)
        m = manifest(bdir, target, bid)
        data = os.path.join(bdir, target, bid + suffix)
        check(ls(os.path.join(bdir, target)) == sorted([bid + '.json', bid + suffix]),
              '%s: files in the target dir: %r' % (target, ls(os.path.join(bdir, target))))
        check(m['id'] == bid and m['target'] == target and m['kind'] == 'postgres'
              and m['status'] == 'ok' and m['file'] == bid + suffix, '%s manifest: %r' % (target, m))
        check(isinstance(m['bytes'], (int, float)) and m['bytes'] > 0
              and m['bytes'] == os.path.getsize(data),
              '%s: manifest bytes %r, file has %d' % (target, m['bytes'], os.path.getsize(data)))
        check(re.fullmatch(r'[0-9a-f]{64}', m['blake2b']) and m['blake2b'] == blake2b(data),
              '%s: blake2b %r is not the file\'s %s' % (target, m['blake2b'], blake2b(data)))
        check(m['tables'] == counts, '%s: row counts %r, live %r' % (target, m.get('tables'), counts))
        check(m['server_version'] == server_version,
              '%s: server_version %r, server says %r' % (target, m['server_version'], server_version))
        check(m['pg_dump_version'] == dump_version,
              '%s: pg_dump_version %r, pg_dump says %r' % (target, m['pg_dump_version'], dump_version))
        check(m['compression'] == comp and m['compression_info']['algorithm'] == comp,
              '%s: compression %r / %r' % (target, m['compression'], m['compression_info']))
        check(m['encryption'] == 'none' and m['database'] == pg.db and m['format'] == 'custom',
              '%s manifest: %r' % (target, m))
        check(t0 - 1 <= m['started'] <= m['ended'] <= time.time() + 1,
              '%s: started/ended %r %r' % (target, m['started'], m['ended']))
        check(read(data)[:len(magic)] == magic, '%s: %s does not start with %r'
              % (target, data, magic))
        if comp == 'none':
            check(m['bytes_raw'] == m['bytes'], 'plain: bytes_raw %r != bytes %r'
                  % (m['bytes_raw'], m['bytes']))
            r = bb(t, conf, 'cat', bid, binary=True)
            check(r.rc == 0 and r.out == read(data), 'cat of an uncompressed backup is not '
                  'the file itself:\n%s' % r.err)
        sizes[comp] = m['bytes']
        verify_ok(t, conf, bid, target)
        pg.restore_copy(conf, bid, 'restored_' + target)
        got = pg.fingerprint('restored_' + target)
        check(got == source, '%s: restored database differs:\n%r\n%r' % (target, got, source))
    # compression = pgdump really is pg_dump's: far smaller than none
    check(sizes['pgdump'] < sizes['none'] / 2 and sizes['zstd'] < sizes['none'] / 2,
          'sizes by compression: %r' % sizes)
    ids, _, _ = listed(t, conf)
    check(len(ids) == 3, 'list --json: %r' % ids)


# ---- 2. encryption ----------------------------------------------------

@test
def encryption_round_trip_and_wrong_or_missing_key(t):
    keys = os.path.join(t.tmp, 'keys')
    os.makedirs(keys, mode=0o700)
    key = os.path.join(keys, 'backup.key')
    r = bb(t, None, 'keygen', key)
    check(r.rc == 0 and 'wrote a new key to %s' % key in r.out, 'keygen:\n%s' % r)
    check(stat.S_IMODE(os.stat(key).st_mode) == 0o600, 'key mode %o'
          % stat.S_IMODE(os.stat(key).st_mode))
    key_text = read(key).decode()
    check(re.fullmatch(r'[0-9a-f]{64}\n', key_text), 'key file content is not 64 hex + newline')
    r = bb(t, None, 'keygen', key)
    check(r.rc == 1 and 'already exists' in r.err and 'refusing' in r.err,
          'keygen over an existing key:\n%s' % r)
    check(read(key).decode() == key_text, 'keygen changed an existing key')

    pg = start_pg(t, 5)
    bdir = os.path.join(t.tmp, 'backups')
    conf = write_conf(t, 'bb.conf', bdir, storage='encryption_key_file = %s\n' % key,
                      body=pg_section(pg, 'main'))
    bid = backup_ok(t, conf, 'main')
    m = manifest(bdir, 'main', bid)
    data = os.path.join(bdir, 'main', bid + '.dump.zst.enc')
    check(m['file'] == bid + '.dump.zst.enc' and os.path.exists(data),
          'encrypted file name: %r, dir %r' % (m['file'], ls(os.path.join(bdir, 'main'))))
    check(m['encryption'].startswith('secretstream') and m['encryption'] ==
          'secretstream-xchacha20poly1305-bound', 'manifest encryption %r' % m['encryption'])
    check(read(data)[:7] == b'BBENC2\n', 'no BBENC2 header')
    check(m['blake2b'] == blake2b(data), 'hash of the stored (encrypted) bytes')
    verify_ok(t, conf, bid)
    pg.restore_copy(conf, bid, 'restored')
    check(pg.fingerprint('restored') == pg.fingerprint(), 'restore of the encrypted backup differs')

    other = os.path.join(keys, 'other.key')
    check(bb(t, None, 'keygen', other).rc == 0, 'second keygen')
    conf_other = write_conf(t, 'other.conf', bdir, storage='encryption_key_file = %s\n' % other,
                            body=pg_section(pg, 'main'))
    r = verify_fails(t, conf_other, bid, cause=r'wrong key')
    check('hash mismatch' not in r.text, 'an intact file with the wrong key is not damaged:\n%s' % r)
    r = bb(t, conf_other, 'cat', bid, binary=True)
    check(r.rc != 0 and 'wrong key' in r.err, 'cat with the wrong key:\n%s' % r.err)
    check(r.out == b'', 'cat with the wrong key wrote %d bytes' % len(r.out))

    conf_none = write_conf(t, 'nokey.conf', bdir, body=pg_section(pg, 'main'))
    verify_fails(t, conf_none, bid, cause=r'encrypted and no encryption_key_file')
    r = bb(t, conf_none, 'cat', 'main', 'latest', binary=True)
    check(r.rc != 0 and 'encrypted and no encryption_key_file' in r.err and r.out == b'',
          'cat without a key:\n%s' % r.err)

    # nothing of that touched the backup, and no output ever shows a key
    verify_ok(t, conf, bid)
    for k in (key_text.strip(), read(other).decode().strip()):
        for path in (conf, conf_other):
            check(k not in read(path).decode(), 'a key in a config file')
    check(listed(t, conf)[0] == [bid], 'list after the key tests')


# ---- 3. damaged backups ----------------------------------------------

@test
def quick_verify_has_the_restore_tool_read_every_byte(t):
    # A dump cut in half whose manifest was rewritten to match passes the
    # hash: only the tool that would restore it (pg_restore, or tar for a
    # directory dump) can tell, and verify --quick must say so.
    pg = start_pg(t, 2)
    bdir = os.path.join(t.tmp, 'backups')
    body = (pg_section(pg, 'custom', extra='compression = none')
            + pg_section(pg, 'dir', extra='compression = none\nformat = directory\njobs = 2'))
    conf = write_conf(t, 'bb.conf', bdir, body=body)
    for target, tool in (('custom', r'pg_restore'), ('dir', r'tar|Unexpected EOF')):
        bid = backup_ok(t, conf, target)
        r = bb(t, conf, 'verify', bid, '--quick')
        check(r.rc == 0, 'verify --quick of an intact %s backup:\n%s' % (target, r))
        m = manifest(bdir, target, bid)
        data = os.path.join(bdir, target, m['file'])
        write(data, read(data)[:m['bytes'] // 2])
        m['blake2b'] = blake2b(data)
        m['bytes'] = m['bytes_raw'] = os.path.getsize(data)
        write(os.path.join(bdir, target, bid + '.json'), json.dumps(m).encode())
        r = verify_fails(t, conf, bid, '--quick', cause=r'the restore tool cannot read the backup')
        check(re.search(tool, r.text), '%s: the tool\'s own words are missing:\n%s' % (target, r))
        check_no_leftovers(os.path.join(bdir, target), 'verify --quick of %s' % target)


@test
def damaged_data_and_manifests_are_detected(t):
    pg = start_pg(t, 1)
    bdir = os.path.join(t.tmp, 'backups')
    # No compression, no key: only the hash can tell a flipped byte.
    conf = write_conf(t, 'bb.conf', bdir, body=pg_section(pg, 'main', extra='compression = none'))
    old = backup_ok(t, conf, 'main')
    new = backup_ok(t, conf, 'main')
    check(new > old, 'ids %s then %s' % (old, new))
    data = os.path.join(bdir, 'main', new + '.dump')
    good = read(data)
    check(len(good) > 100000, 'dump is only %d bytes' % len(good))

    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xff
    write(data, bytes(bad))
    verify_fails(t, conf, new, cause=r'hash mismatch')
    verify_fails(t, conf, 'main', 'latest', cause=r'hash mismatch')
    r = bb(t, conf, 'cat', new, binary=True)
    check(r.rc != 0 and 'hash mismatch' in r.err and 'not a valid backup' in r.err,
          'cat of a damaged backup must fail and say so:\n%s' % r.err)
    verify_ok(t, conf, old)

    write(data, good)
    verify_ok(t, conf, new)            # the failure was the flipped byte

    write(data, good[:len(good) // 2])
    verify_fails(t, conf, new, cause=r'hash mismatch|truncated')
    write(data, b'')
    verify_fails(t, conf, new, cause=r'hash mismatch|truncated|empty')
    write(data, good)
    verify_ok(t, conf, new)

    # A manifest that is not JSON: the backup is not listed, with a warning.
    mpath = os.path.join(bdir, 'main', new + '.json')
    new_manifest = manifest(bdir, 'main', new)
    write(mpath, b'{"id": "' + new.encode() + b'", "target": "main", \x00garbage')
    ids, _, r = listed(t, conf)
    check(ids == [old], 'list --json with a garbage manifest: %r' % ids)
    r = bb(t, conf, 'list')
    check(r.rc == 0 and old in r.out and new not in r.out,
          'list with a garbage manifest:\n%s' % r)
    check(re.search(r'warning|catalog', r.err, re.I) and new + '.json' in r.err
          and 'skipped' in r.err, 'no warning naming the skipped manifest:\n%s' % r)
    verify_fails(t, conf, new, cause=r'no backup %s of main' % new)
    r = bb(t, conf, 'verify', 'main', 'latest')
    check(r.rc == 0 and re.search(r'^ok main: %s: ' % old, r.out, re.M),
          'latest must fall back to the older good backup:\n%s' % r)

    # A manifest that parses but lies about its file's hash.
    m = dict(new_manifest, blake2b='0' * 64)
    write(mpath, json.dumps(m).encode())
    check(listed(t, conf)[0] == [new, old], 'a well-formed manifest is listed')
    verify_fails(t, conf, new, cause=r'hash mismatch')
    r = bb(t, conf, 'cat', new, binary=True)
    check(r.rc != 0 and 'hash mismatch' in r.err, 'cat with a lying manifest:\n%s' % r.err)


# ---- 4. failures keep what was there ----------------------------------

@test
def failed_backups_leave_nothing_and_keep_the_older_one(t):
    pg = start_pg(t, 5)
    bdir = os.path.join(t.tmp, 'backups')
    tdir = os.path.join(bdir, 'main')
    conf = write_conf(t, 'bb.conf', bdir, body=pg_section(pg, 'main'))
    good = backup_ok(t, conf, 'main')
    before = {n: read(os.path.join(tdir, n)) for n in ls(tdir)}
    check(sorted(before) == sorted([good + '.json', good + '.dump.zst']), 'files %r' % before)

    def unrecorded(name, data):
        # a restore drill records its outcome in the manifest; the rest
        # must stay as it was
        if not name.endswith('.json'):
            return data
        m = json.loads(data)
        m.pop('drill', None)
        return m

    def intact(what):
        check(ls(tdir) == sorted(before), '%s: files now %r, before %r'
              % (what, ls(tdir), sorted(before)))
        for n, b in before.items():
            check(unrecorded(n, read(os.path.join(tdir, n))) == unrecorded(n, b),
                  '%s: %s changed' % (what, n))
        check_tmpdir_clean(t, what)
        ids, _, _ = listed(t, conf)
        check(ids == [good], '%s: list --json %r' % (what, ids))
        # quick: the drill needs the server, which one case stops
        r = bb(t, conf, 'verify', good, '--quick')
        check(r.rc == 0 and r.out.startswith('ok main: %s: ' % good), '%s: %s' % (what, r))

    # wrong password
    bad_pass = secret_file(os.path.join(t.tmp, 'bad', 'pg.pass'), 'not-the-password\n')
    c = write_conf(t, 'badpass.conf', bdir, body=pg_section(pg, 'main', password_file=bad_pass))
    r = backup_fails(t, c, 'main', r'password authentication failed', r'authentication',
                     re.escape(bad_pass))
    check('not-the-password' not in r.text, 'the password is in the output:\n%s' % r)
    intact('wrong password')

    # pg_dump killed by a signal in the middle of the dump
    marker = 'bbkill' + uuid.uuid4().hex[:10]
    w = wrapper(t, marker + '/pg_dump', VERSION_PASSTHROUGH +
                'touch %s/started\n"%s" "$@" | head -c 200000\nkill -9 $$\n'
                % (os.path.join(t.tmp, marker), REAL_PG_DUMP))
    c = write_conf(t, 'killed.conf', bdir, body=pg_section(pg, 'main', extra='pg_dump = %s' % w))
    backup_fails(t, c, 'main', r'pg_dump', r'killed by signal 9')
    check(os.path.exists(os.path.join(t.tmp, marker, 'started')), 'the wrapper never dumped')
    check(not wait_no_process(marker), 'pg_dump left running: %s' % pgrep(marker))
    intact('pg_dump killed')

    # pg_dump exits 0 having printed nothing
    w = wrapper(t, 'empty/pg_dump', VERSION_PASSTHROUGH + 'exit 0\n')
    c = write_conf(t, 'empty.conf', bdir, body=pg_section(pg, 'main', extra='pg_dump = %s' % w))
    backup_fails(t, c, 'main', r'no output|empty')
    intact('empty output')

    # pg_dump older than the server: refused before anything is dumped
    ran = os.path.join(t.tmp, 'old', 'dumped')
    w = wrapper(t, 'old/pg_dump', 'for a in "$@"; do [ "$a" = --version ] && '
                '{ echo "pg_dump (PostgreSQL) 11.0"; exit 0; }; done\ntouch %s\nexec %s "$@"\n'
                % (ran, REAL_PG_DUMP))
    c = write_conf(t, 'old.conf', bdir, body=pg_section(pg, 'main', extra='pg_dump = %s' % w))
    major = server_major(pg)
    backup_fails(t, c, 'main', r'pg_dump 11\b', r'PostgreSQL %d\b' % major)
    check(not os.path.exists(ran), 'an old pg_dump was run to dump')
    intact('old pg_dump')

    # the server is down
    pg.stop()
    backup_fails(t, conf, 'main', r'cannot connect to PostgreSQL', r'refused|connect')
    intact('server down')


# ---- 5. full disk -----------------------------------------------------

@test
def full_disk_fails_cleanly_and_frees_the_space(t):
    pg = start_pg(t, 1)
    pg.load('big', 40)
    full = os.path.join(t.tmp, 'full')
    os.makedirs(full)
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=3m,mode=0700', 'tmpfs', full],
                       capture_output=True, text=True)
    check(r.returncode == 0, 'mount tmpfs: %s' % r.stderr)
    t.cleanups.append(lambda: subprocess.run(['umount', '-l', full], capture_output=True))
    conf = write_conf(t, 'bb.conf', full, body=(
        pg_section(pg, 'small') +
        pg_section(pg, 'big', db='big', extra='compression = none')))
    small = backup_ok(t, conf, 'small')

    r = backup_fails(t, conf, 'big', r'disk full', r'No space left on device')
    check(ls(os.path.join(full, 'big')) == [], 'left on the full disk: %r'
          % ls(os.path.join(full, 'big')))
    check_no_leftovers(os.path.join(full, 'small'), 'disk full')
    check_tmpdir_clean(t, 'disk full')
    ours = 'port=%d dbname=big ' % pg.port
    check(not wait_no_process(ours), 'pg_dump still running: %s' % pgrep(ours))
    st = os.statvfs(full)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    check(used < 1024 * 1024, 'the failed backup still takes %d bytes' % used)
    check(listed(t, conf, 'big')[0] == [], 'a failed backup is listed')
    check(listed(t, conf, 'small')[0] == [small], 'the small backup is gone')
    verify_ok(t, conf, small, 'small')
    again = backup_ok(t, conf, 'small')        # the space really came back
    check(listed(t, conf, 'small')[0] == [again, small], 'after the second small backup')


# ---- 6. remotes -------------------------------------------------------

@test
def remotes_get_verified_copies_and_rebuild_the_catalog(t):
    pg = start_pg(t, 1)
    bdir = os.path.join(t.tmp, 'backups')
    local = os.path.join(t.tmp, 'remote-local')
    dav = Webdav(t, 'dav')
    rclone_conf = os.path.join(t.tmp, 'rclone.conf')
    dead_port = free_port()
    with open(rclone_conf, 'w') as f:
        f.write(dav.rclone_section() + '\n[deaddav]\ntype = webdav\nurl = http://127.0.0.1:%d\n'
                'vendor = other\n' % dead_port)
    remotes = ('[remote local]\npath = %s\n\n[remote dav]\npath = dav:store\n\n'
               '[remote dead]\npath = deaddav:store\n' % local)
    storage = 'rclone_config = %s\n' % rclone_conf

    def conf_with(name, backup_dir, remote_list):
        return write_conf(t, name, backup_dir, storage=storage, body=pg_section(
            pg, 'main', extra='remotes = %s' % remote_list) + remotes)

    conf = conf_with('bb.conf', bdir, 'local, dav')
    r = bb(t, conf, 'backup', 'main')
    check(r.rc == 0 and re.search(r'^  remote local: ok$', r.out, re.M)
          and re.search(r'^  remote dav: ok$', r.out, re.M), 'backup to two remotes:\n%s' % r)
    first = re.search(r'^ok main: (main-\S+), ', r.out, re.M).group(1)
    m = manifest(bdir, 'main', first)
    for name in ('local', 'dav'):
        check(m['remotes'][name]['status'] == 'ok', 'manifest remotes: %r' % m['remotes'])
    data_name = m['file']
    for where in (os.path.join(local, 'main'), os.path.join(dav.dir, 'store', 'main')):
        check(ls(where) == sorted([first + '.json', data_name]), '%s holds %r' % (where, ls(where)))
        check(read(os.path.join(where, data_name)) == read(os.path.join(bdir, 'main', data_name)),
              'the copy in %s differs' % where)
        check(json.loads(read(os.path.join(where, first + '.json'))) == m,
              'the manifest in %s is not the local one' % where)

    # an unreachable remote: partial, named, the local backup still good
    conf_dead = conf_with('dead.conf', bdir, 'local, dead')
    t0 = time.time()
    r = bb(t, conf_dead, 'backup', 'main')
    check(r.rc != 0 and re.search(r'^PARTIAL main: main-\S+, ', r.out, re.M),
          'backup with a dead remote must be PARTIAL, exit != 0:\n%s' % r)
    check(time.time() - t0 < 60, 'a dead remote took %.0fs' % (time.time() - t0))
    second = re.search(r'^PARTIAL main: (main-\S+), ', r.out, re.M).group(1)
    check(re.search(r'^  remote dead: failed: .*dead', r.out, re.M)
          and re.search(r'^  remote local: ok$', r.out, re.M), 'remote lines:\n%s' % r)
    m2 = manifest(bdir, 'main', second)
    check(m2['status'] == 'partial' and m2['remotes']['dead']['status'] == 'failed'
          and m2['remotes']['local']['status'] == 'ok', 'partial manifest: %r' % m2)
    verify_ok(t, conf, second)
    check(listed(t, conf)[0] == [second, first], 'list after the partial backup')
    check(not os.path.exists(os.path.join(dav.dir, 'store', 'main', second + '.json')),
          'dav was not in this backup\'s remotes')

    # rebuild a lost catalog from the local remote
    fresh = os.path.join(t.tmp, 'fresh')
    conf_fresh = conf_with('fresh.conf', fresh, 'local')
    r = bb(t, conf_fresh, 'catalog', '--from', 'local')
    check(r.rc == 0 and '2 backup(s) added to the catalog from local, 0 problem(s)' in r.out,
          'catalog --from local:\n%s' % r)
    check(listed(t, conf_fresh)[0] == listed(t, conf)[0], 'rebuilt catalog lists %r, original %r'
          % (listed(t, conf_fresh)[0], listed(t, conf)[0]))
    for bid in (first, second):
        verify_ok(t, conf_fresh, bid)
    check_no_leftovers(os.path.join(fresh, 'main'), 'catalog')

    # ... and from the WebDAV one, which has only the first
    fresh_dav = os.path.join(t.tmp, 'fresh-dav')
    r = bb(t, conf_with('fresh-dav.conf', fresh_dav, 'dav'), 'catalog', '--from', 'dav')
    check(r.rc == 0 and '1 backup(s) added' in r.out, 'catalog --from dav:\n%s' % r)
    check(ls(os.path.join(fresh_dav, 'main')) == sorted([first + '.json', data_name]),
          'catalog --from dav made %r' % ls(os.path.join(fresh_dav, 'main')))

    # a tampered copy on the remote is refused, the other one is added
    remote_data = os.path.join(local, 'main', data_name)
    b = bytearray(read(remote_data))
    b[len(b) // 2] ^= 0x01
    write(remote_data, bytes(b))
    fresh2 = os.path.join(t.tmp, 'fresh2')
    conf_fresh2 = conf_with('fresh2.conf', fresh2, 'local')
    r = bb(t, conf_fresh2, 'catalog', '--from', 'local')
    check(r.rc == 1 and re.search(r'%s.*hash does not match.*not added' % re.escape(data_name), r.err)
          and '1 backup(s) added to the catalog from local, 1 problem(s)' in r.out
          and 'added ' + second in r.out and 'added ' + first not in r.out,
          'catalog from a tampered remote:\n%s' % r)
    check(listed(t, conf_fresh2)[0] == [second], 'tampered backup listed')
    check(ls(os.path.join(fresh2, 'main')) == sorted([second + '.json', m2['file']]),
          'tampered files kept: %r' % ls(os.path.join(fresh2, 'main')))
    verify_ok(t, conf, first)          # the local original is untouched

    # catalog --from into the live backup_dir, with a remote manifest that
    # disagrees with the local data: the remote is refused, the local
    # backup is kept as it is.
    remote_manifest = os.path.join(local, 'main', second + '.json')
    lie = json.loads(read(remote_manifest))
    lie['blake2b'] = 'f' * 64
    write(remote_manifest, json.dumps(lie).encode())
    before = {n: read(os.path.join(bdir, 'main', n)) for n in ls(os.path.join(bdir, 'main'))}
    r = bb(t, conf, 'catalog', '--from', 'local')
    check(r.rc in (0, 1) and 'added ' + second not in r.out,
          'catalog with a lying remote manifest:\n%s' % r)
    after = {n: read(os.path.join(bdir, 'main', n)) for n in ls(os.path.join(bdir, 'main'))}
    check(sorted(after) == sorted(before), 'catalog --from changed the local backups: %r -> %r'
          % (sorted(before), sorted(after)))
    check(after[m2['file']] == before[m2['file']], 'local data of %s changed' % second)
    check(listed(t, conf)[0] == [second, first], 'local backups after catalog --from')
    verify_ok(t, conf, second)


# ---- 7. retention -----------------------------------------------------

@test
def retention_keeps_the_newest_locally_and_on_the_remote(t):
    pg = start_pg(t, 1)
    bdir = os.path.join(t.tmp, 'backups')
    local = os.path.join(t.tmp, 'remote-local')
    conf = write_conf(t, 'bb.conf', bdir, body=pg_section(
        pg, 'main', extra='keep = last=2\nremotes = local') +
        '[remote local]\npath = %s\n' % local)
    ids, outs = [], []
    for _ in range(3):
        r = bb(t, conf, 'backup', 'main')
        check(r.rc == 0, 'backup:\n%s' % r)
        ids.append(re.search(r'^ok main: (main-\S+), ', r.out, re.M).group(1))
        outs.append(r.out)
    check(ids == sorted(set(ids)), 'ids not distinct and increasing: %r' % ids)
    check('retention removed' not in outs[0] + outs[1], 'removed too early:\n%s' % outs[1])
    check(re.search(r'^  retention removed %s$' % ids[0], outs[2], re.M)
          and outs[2].count('retention removed') == 1, 'third backup output:\n%s' % outs[2])
    want = sorted(n for i in ids[1:] for n in (i + '.json', i + '.dump.zst'))
    check(ls(os.path.join(bdir, 'main')) == want, 'local: %r' % ls(os.path.join(bdir, 'main')))
    check(ls(os.path.join(local, 'main')) == want, 'remote: %r' % ls(os.path.join(local, 'main')))

    r = bb(t, conf, 'list')
    lines = [ln for ln in r.out.splitlines() if ln.startswith('main-')]
    check(r.rc == 0 and [ln.split()[0] for ln in lines] == [ids[2], ids[1]],
          'list:\n%s' % r)
    check(all(ln.rstrip().endswith(' last') for ln in lines), 'KEPT AS column:\n%s' % r.out)
    check(all('local✓' in ln for ln in lines), 'REMOTES column:\n%s' % r.out)
    got, entries, _ = listed(t, conf)
    check(got == [ids[2], ids[1]] and all(e.get('kept_as') == 'last' for e in entries),
          'list --json: %r' % [(e['id'], e.get('kept_as')) for e in entries])
    for i in ids[1:]:
        verify_ok(t, conf, i)


# ---- 8. Ctrl-C ----------------------------------------------------------

def interrupt_a_slow_dump(t, how):
    """Start `backup main` with a pg_dump that sleeps 20 s first, in its own
    session; once the sleep runs, signal it (how: 'group' as a terminal's
    Ctrl-C does, or 'pid' as `kill -INT PID` does); check what is left."""
    pg = start_pg(t, 1)
    bdir = os.path.join(t.tmp, 'backups')
    marker = 'bbslow' + uuid.uuid4().hex[:10]
    mdir = os.path.join(t.tmp, marker)
    os.makedirs(mdir)
    os.symlink(shutil.which('sleep'), os.path.join(mdir, 'sleep'))   # pgrep -f finds it
    w = wrapper(t, marker + '/pg_dump', VERSION_PASSTHROUGH +
                '"%s/sleep" 20\nexec "%s" "$@"\n' % (mdir, REAL_PG_DUMP))
    conf = write_conf(t, 'bb.conf', bdir, body=pg_section(pg, 'main', extra='pg_dump = %s' % w))
    t.cleanups.append(lambda: subprocess.run(['pkill', '-9', '-f', marker]))

    p = subprocess.Popen([BACKUPBOT, '-c', conf, 'backup', 'main'], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, env=dict(os.environ, TMPDIR=tmpdir(t)))
    deadline = time.time() + 20
    while '/sleep 20' not in pgrep(marker + '/sleep') and time.time() < deadline:
        if p.poll() is not None:
            raise TestFailure('backupbot ended before the dump: %r' % (p.communicate(),))
        time.sleep(0.05)
    check('/sleep 20' in pgrep(marker + '/sleep'), 'the dump never started')
    t0 = time.time()
    if how == 'group':
        os.killpg(p.pid, signal.SIGINT)
    else:
        os.kill(p.pid, signal.SIGINT)
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise TestFailure('backupbot did not stop within 15s of SIGINT')
    took = time.time() - t0
    out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    check(p.returncode not in (0, None), 'exit %s after SIGINT' % p.returncode)
    check(took < 5, 'took %.1fs to stop after SIGINT' % took)
    check(re.search(r'^CANCELLED main: cancelled', out, re.M) and 'cancelled' in err,
          'the output does not say cancelled:\n%s\n%s' % (out, err))
    left = wait_no_process(marker)
    check(not left, 'processes left behind by the cancelled backup:\n%s' % left)
    check(ls(os.path.join(bdir, 'main')) == [], 'files left: %r' % ls(os.path.join(bdir, 'main')))
    check_tmpdir_clean(t, 'cancelled')
    check(listed(t, conf)[0] == [], 'a cancelled backup is listed')


@test
def ctrl_c_cancels_and_leaves_nothing(t):
    interrupt_a_slow_dump(t, 'group')


@test
def sigint_to_backupbot_alone_stops_the_whole_dump(t):
    # `kill -INT PID` (or SIGTERM) reaches backupbot only: it must stop
    # everything it started, a wrapper script's children included.
    interrupt_a_slow_dump(t, 'pid')


def wait_for_sql(pg, sql, timeout, p=None, what=''):
    """Poll a query until it returns a non-empty value; p: a backupbot run
    that must not have ended meanwhile."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pg.psql(sql, db='postgres')
        if v:
            return v
        if p is not None and p.poll() is not None:
            raise TestFailure('backupbot ended while waiting for %s: %r'
                              % (what, p.communicate()))
        time.sleep(0.05)
    raise TestFailure('%s: not seen within %ds' % (what, timeout))


@test
def a_failed_row_count_during_the_dump_fails_the_backup_and_stops_pg_dump(t):
    # The counts run while pg_dump runs, in the same snapshot.  A lock
    # held by another session stops both pg_dump (it locks every table
    # before dumping) and the count of that table; once both wait, the
    # count is cancelled on the server.  The backup must fail with the
    # count's cause and stop pg_dump, which would otherwise wait forever.
    pg = start_pg(t, 1)
    bdir = os.path.join(t.tmp, 'backups')
    conf = write_conf(t, 'bb.conf', bdir, body=pg_section(pg, 'main'))
    good = backup_ok(t, conf, 'main')
    check(manifest(bdir, 'main', good)['tables'] == live_counts(pg),
          'the counts counted beside pg_dump are not the live ones: %r'
          % manifest(bdir, 'main', good)['tables'])

    locker = subprocess.Popen(
        ['psql', '-X', '-q', '-h', pg.dir, '-p', str(pg.port), '-U', 'postgres', '-d', pg.db,
         '-c', 'BEGIN; LOCK TABLE statuses IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(300)'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t.cleanups.append(lambda: (locker.kill(), locker.wait()))
    wait_for_sql(pg, "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%LOCK TABLE statuses%' "
                 "AND wait_event = 'PgSleep'", 20, what='the lock')

    p = subprocess.Popen([BACKUPBOT, '-c', conf, 'backup', 'main'], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, TMPDIR=tmpdir(t)))
    t.cleanups.append(lambda: p.poll() is None and (p.kill(), p.wait()))
    wait_for_sql(pg, "SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                 "AND wait_event_type = 'Lock'", 30, p, 'pg_dump waiting for the lock')
    counter = wait_for_sql(pg, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                           "'backupbot' AND query LIKE 'SELECT count(*) FROM %statuses%' "
                           "AND wait_event_type = 'Lock'", 30, p,
                           'the count of statuses waiting for the lock')
    pg.psql('SELECT pg_cancel_backend(%s)' % counter, db='postgres')
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        raise TestFailure('a failed count did not stop the backup: pg_dump still waits')
    out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    check(p.returncode == 1 and re.search(r'^FAILED main: .*counting the rows of '
                                          r'public\.statuses: .*cancel', out, re.M),
          'the backup should fail with the count\'s cause:\n%s\n%s' % (out, err))
    left = wait_no_process('--snapshot=.*port=%d' % pg.port)
    check(not left, 'pg_dump left running:\n%s' % left)
    check(wait_for_sql(pg, "SELECT 'gone' WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity "
                       "WHERE application_name IN ('pg_dump', 'backupbot'))", 10,
                       what='pg_dump and the counts leaving the server') == 'gone', 'unreachable')
    locker.kill()
    locker.wait()
    check(listed(t, conf)[0] == [good], 'the failed backup is listed: %r' % listed(t, conf)[0])
    check_no_leftovers(os.path.join(bdir, 'main'), 'failed count')
    check_tmpdir_clean(t, 'failed count')


# ---- 9. bad input -------------------------------------------------------

@test
def unknown_targets_are_refused_by_every_command(t):
    bdir = os.path.join(t.tmp, 'backups')
    os.makedirs(os.path.join(bdir, 'main'))
    conf = write_conf(t, 'bb.conf', bdir, body=(
        '[postgres main]\nconninfo = host=127.0.0.1 port=%d dbname=x user=backup\n' % free_port()))
    # A manifest outside backup_dir: no target name may lead there.
    planted = os.path.join(t.tmp, 'planted.json')
    write(planted, b'not json')
    for args in (('verify', '../../etc/passwd'), ('verify', 'main; rm -rf /'),
                 ('verify', 'nosuch', 'latest'), ('verify', '..', 'latest'),
                 ('cat', 'nosuch', 'latest'), ('cat', '..', 'latest'),
                 ('backup', 'nosuch'), ('backup', '../main'), ('list', 'nosuch'),
                 ('list', '..')):
        r = bb(t, conf, *args)
        check(r.rc == 2, '%r: expected exit 2, as `backup nosuch` and `list nosuch` give:\n%s'
              % (args, r))
        check(re.search(r"\btarget\b", r.text) and args[1] in r.text,
              '%r: the message does not name the unknown target:\n%s' % (args, r))
        check('planted' not in r.text, '%r read a manifest outside backup_dir:\n%s' % (args, r))
    check(ls(bdir) == ['main'] and ls(os.path.join(bdir, 'main')) == []
          and not os.path.exists(os.path.join(t.tmp, 'main')),
          'something was created: %r %r' % (ls(bdir), ls(t.tmp)))


@test
def bad_arguments_are_refused_clearly(t):
    pg = start_pg(t, 1)
    bdir = os.path.join(t.tmp, 'backups')
    conf = write_conf(t, 'bb.conf', bdir, body=pg_section(pg, 'main'))
    bid = backup_ok(t, conf, 'main')
    canary = os.path.join(t.tmp, 'canary')
    write(canary, b'still here')

    for args in (('verify', 'main', '../../etc/passwd'), ('verify', 'main', 'main; rm -rf /'),
                 ('verify', 'main', bid + '/../x'), ('backup', 'nosuch'),
                 ('catalog', '--from', 'x'), ('backup',), ('verify',), ('cat', bid, 'x', 'y'),
                 ('list', 'main', 'extra')):
        r = bb(t, conf, *args)
        check(r.rc == 2, '%r: expected exit 2 (bad usage):\n%s' % (args, r))
        check(re.search(r"no target|not a backup id|no \[remote|usage", r.text)
              and not re.search(r'^ok ', r.out, re.M), '%r: unclear message:\n%s' % (args, r))
    r = bb(t, conf, 'backup', 'nosuch')
    check("no target 'nosuch' in %s" % conf in r.err, 'backup nosuch:\n%s' % r)
    check(not os.path.exists(os.path.join(bdir, 'nosuch')), 'backup nosuch made a directory')
    r = bb(t, conf, 'cat', 'main', '../../etc/passwd', binary=True)
    check(r.rc != 0 and r.out == b'', 'cat main ../../etc/passwd: exit %s, %d bytes out'
          % (r.rc, len(r.out)))
    check(read(canary) == b'still here', 'the canary was touched')
    check(ls(os.path.join(bdir, 'main')) == sorted([bid + '.json', bid + '.dump.zst']),
          'backup_dir changed: %r' % ls(os.path.join(bdir, 'main')))

    # cat to a pipe gives the original dump; to a terminal it refuses
    r = bb(t, conf, 'cat', 'main', 'latest', binary=True)
    data = os.path.join(bdir, 'main', bid + '.dump.zst')
    plain = subprocess.run(['zstd', '-dc', data], capture_output=True).stdout
    check(r.rc == 0 and r.out[:5] == b'PGDMP' and r.out == plain,
          'cat main latest into a pipe: exit %s, %d bytes (want %d):\n%s'
          % (r.rc, len(r.out), len(plain), r.err))
    master, slave = os.openpty()
    try:
        r = bb(t, conf, 'cat', 'main', 'latest', stdout=slave)
        os.set_blocking(master, False)
        try:
            leaked = os.read(master, 65536)
        except OSError:
            leaked = b''
    finally:
        os.close(slave)
        os.close(master)
    check(r.rc == 2 and 'standard output' in r.err and leaked == b'',
          'cat to a terminal must refuse:\n%s\n%d bytes on the tty' % (r, len(leaked)))

    # a password in conninfo is refused with FILE:LINE, and not repeated
    text = open(conf).read()
    lines = text.split('\n')
    n = next(i for i, ln in enumerate(lines) if ln.startswith('conninfo')) + 1
    lines[n - 1] += ' password=Hunter2-Secret'
    bad = os.path.join(t.tmp, 'pw.conf')
    with open(bad, 'w') as f:
        f.write('\n'.join(lines))
    for cmd in (('list',), ('backup', 'main')):
        r = bb(t, bad, *cmd)
        check(r.rc == 1 and '%s:%d: conninfo:' % (bad, n) in r.err and 'password_file' in r.err,
              '%r with a password in conninfo:\n%s' % (cmd, r))
        check('Hunter2' not in r.text, 'the password is repeated:\n%s' % r)
    check(listed(t, conf)[0] == [bid], 'the backup after the bad input')


# ---- 10. the example configuration ---------------------------------------

@test
def example_config_is_valid(t):
    with open(os.path.join(ROOT, 'bot.conf.example')) as f:
        text = f.read()
    root = os.path.join(t.tmp, 'root')
    for d in ('/etc/backupbot/', '/var/lib/backupbot', '/var/backups/backupbot'):
        check(d in text, 'the example no longer mentions %s' % d)
        text = text.replace(d, root + d)
    # paths to back up ([files] paths, git_repos) are data, not files the
    # config reads; every other /etc/ path must have been rewritten
    read = [ln for ln in text.replace(root + '/etc/', '').split('\n')
            if not ln.lstrip().startswith((';', 'paths', 'git_repos'))]
    check(not any('/etc/' in ln for ln in read), 'unrewritten path in the example')

    def secrets(conf_text):
        """Paths of the secret files the config references (uncommented)."""
        return re.findall(r'^\s*(?:access_token_file|password_file|encryption_key_file)\s*=\s*(\S+)',
                          conf_text, re.M)

    def run_list(name, conf_text):
        path = os.path.join(t.tmp, name)
        with open(path, 'w') as f:
            f.write(conf_text)
        for s in secrets(conf_text):
            if s.endswith('.key'):
                os.makedirs(os.path.dirname(s), exist_ok=True)
                if not os.path.exists(s):
                    check(bb(t, None, 'keygen', s).rc == 0, 'keygen %s' % s)
            elif not os.path.exists(s):
                secret_file(s, 'secret\n')
        r = bb(t, path, 'list')
        check(r.rc == 0 and r.out.split() == ['ID', 'AGE', 'SIZE', 'REMOTES', 'KEPT', 'AS']
              and r.err == '', '%s does not parse:\n%s' % (name, r))
        r = bb(t, path, 'list', 'mastodon', '--json')
        check(r.rc == 0 and json.loads(r.out) == [], '%s: list mastodon --json:\n%s' % (name, r))
        return r

    check(secrets(text) == [root + '/etc/backupbot/token'], 'secrets %r' % secrets(text))
    run_list('example.conf', text)

    # every optional key shown commented out is a real key too
    opt = text
    for key in ('device_id', 'device_name', 'min_power_level', 'encryption_key_file',
                'rclone_config', 'rclone', 'pg_dump', 'pg_restore'):
        opt, n = re.subn(r'^;(%s = )' % key, r'\1', opt, flags=re.M)
        check(n == 1, 'the example has %d commented %s lines' % (n, key))
    opt, n = re.subn(r'^;(password_file = \S+pg\.pass)$', r'\1', opt, flags=re.M)
    check(n == 1, 'commented postgres password_file')
    opt, n = re.subn(r'^;(\[postgres synapse\]\n);(conninfo = .*\n);(keep = .*\n)',
                     r'\1\2\3', opt, flags=re.M)
    check(n == 1, 'commented [postgres synapse]')
    run_list('example-all.conf', opt)
    r = bb(t, os.path.join(t.tmp, 'example-all.conf'), 'list', 'synapse', '--json')
    check(r.rc == 0 and json.loads(r.out) == [], 'list synapse:\n%s' % r)
