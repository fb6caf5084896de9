"""Restores of Redis, files and media targets from the shell:
`backupbot restore TARGET ID [--into X] [--replace] [--flush] [--from D]
--yes` and `backupbot verify`, which runs a restore drill.

Redis: a logical backup is RESTOREd key by key into the configured
server (TTLs kept, keys whose TTL ran out since the backup left out);
an RDB goes through a temporary redis-server that loads it, and nothing
of that server is left afterwards; --flush empties the databases the
backup restores into, without it other keys stay.  An RDB the local
redis-server cannot load is refused before the target is touched.

Files: the archive is extracted into --into DIR exactly as it was
backed up; over existing files only with --replace, and a refused
restore writes nothing at all.

Media: rclone copy from a destination back to the source: deleted files
come back, a changed file is overwritten only with --replace, nothing is
ever deleted; --from picks the destination, --into another place.

Drills: verify restores into a scratch copy and compares it with the
manifest; a backup whose manifest counts do not match fails, and no
scratch copy is left behind.
"""

import json
import os
import re
import shutil
import subprocess
import time

from harness import Webdav, check, test
from test_files_media import make_config_tree, make_media, tree
from test_redis import (Redis, backup_ok, bb, bdir, compare, load, ls, manifest,
                        snapshot, tmpdir, write_conf)

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False


# ---- helpers ----------------------------------------------------------------

def restore(t, conf, target, bid, *opts, ok=True):
    r = bb(t, conf, 'restore', target, bid, *(list(opts) + ['--yes']), timeout=300)
    shown = r'%s-\d{8}T\d{6}Z' % target if bid == 'latest' else bid
    if ok:
        check(r.rc == 0 and re.search(r'^ok %s: %s: restore' % (target, shown), r.out, re.M),
              'restore %s %s should succeed:\n%s' % (target, ' '.join(opts), r))
    else:
        check(r.rc == 1 and re.search(r'^FAILED %s: ' % target, r.out, re.M),
              'restore %s %s should fail:\n%s' % (target, ' '.join(opts), r))
    return r


def verify(t, conf, target, bid, ok=True):
    r = bb(t, conf, 'verify', target, bid, timeout=300)
    shown = r'%s-\d{8}T\d{6}Z' % target if bid == 'latest' else bid
    if ok:
        check(r.rc == 0 and re.search(r'^ok %s: %s: restore drill' % (target, shown), r.out,
                                      re.M), 'verify (drill) of %s should pass:\n%s' % (bid, r))
    else:
        check(r.rc == 1 and re.search(r'^FAILED %s: %s: restore drill' % (target, shown), r.out,
                                      re.M), 'verify (drill) of %s should fail:\n%s' % (bid, r))
    nothing_left(t)
    return r


def nothing_left(t):
    """No scratch directory, and no process that was started in one."""
    check(not ls(tmpdir(t)), 'temporary files left: %r' % ls(tmpdir(t)))
    mine = tmpdir(t).encode()
    left = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmd = f.read()
        except OSError:
            continue
        if mine in cmd:
            left.append(cmd.replace(b'\0', b' ').decode('utf-8', 'replace'))
    check(not left, 'processes left running: %r' % left)


def edit_manifest(t, target, bid, fn):
    path = os.path.join(bdir(t, target), bid + '.json')
    with open(path) as f:
        m = json.load(f)
    fn(m)
    with open(path, 'w') as f:
        json.dump(m, f)


def keys_line(r):
    """(before, after) from "keys before N, after M (all databases)"."""
    m = re.search(r'keys before (\d+), after (\d+) \(all databases\)', r.out)
    check(m is not None, 'no key counts in the output:\n%s' % r)
    return int(m.group(1)), int(m.group(2))


def only(snap, dbs):
    return {k: v for k, v in snap.items() if k[0] in dbs}


def wait_expired(c, db, key, timeout=10):
    c.call('SELECT', db)
    deadline = time.time() + timeout
    while c.call('PTTL', key) != -2:
        check(time.time() < deadline, '%r never expired' % key)
        time.sleep(0.05)


# ---- 1. Redis, logical ------------------------------------------------------

@test
def restore_redis_logical_round_trip_keeps_ttls(t):
    src = Redis(t, 'src', password=True)
    c = src.client()
    load(c, 0)
    load(c, 3)
    c.call('SELECT', 0)
    c.call('SET', 'db0:short', 'gone soon', 'PX', 2500)
    conf = write_conf(t, src.section('cache', 'mode = logical\n'))
    want = snapshot(c)
    bid, _ = backup_ok(t, conf, 'cache')
    m = manifest(t, 'cache', bid)
    check(m['mode'] == 'logical' and m['records'] == len(want), 'manifest: %r' % m)
    del want[(0, b'db0:short')]

    # Damage the dataset: changed, deleted and new keys, in a third db too.
    c.call('SELECT', 0)
    c.call('SET', 'db0:str:1', 'changed')
    c.call('DEL', 'db0:counter', 'db0:bighash')
    c.call('SET', 'db0:new', 'not in the backup')
    c.call('SELECT', 3)
    c.call('DEL', 'db3:hash:1')
    c.call('SELECT', 5)
    c.call('SET', 'db5:other', 'a database the backup does not have')
    wait_expired(c, 0, 'db0:short')

    r = restore(t, conf, 'cache', bid)
    check(re.search(r'restore into redis://127\.0\.0\.1:%d/0, /3, good' % src.port, r.out),
          'into is not the server and databases:\n%s' % r)
    check(src.password not in r.text, 'the password shows:\n%s' % r)
    before, after = keys_line(r)
    check(before == len(want) - 3 + 1 + 1 and after == len(want) + 1 + 1,
          'key counts: before %d, after %d, backup %d:\n%s' % (before, after, len(want), r))
    check('1 key had expired since the backup' in r.out, 'no word of the expired key:\n%s' % r)
    got = snapshot(c, dbs=(0, 3, 5))
    check(got.pop((0, b'db0:new'), None) is not None, 'without --flush a new key went away')
    check(got.pop((5, b'db5:other'), None) is not None, 'db5 was touched')
    check((0, b'db0:short') not in got, 'a key whose TTL ran out came back')
    compare(want, got, 'logical restore')
    # the TTLs are the backup's, less the time since: an hour stays about an hour
    c.call('SELECT', 0)
    ttl = c.call('PTTL', 'db0:str:10')
    check(3590000 < ttl <= 3600010, 'db0:str:10 has a TTL of %d ms' % ttl)

    # --flush: what is not in the backup goes, in the databases it restores.
    c.call('SELECT', 0)
    c.call('SET', 'db0:new', 'again')
    r = restore(t, conf, 'cache', bid, '--flush')
    check(re.search(r'--flush: emptied db0, db3 first \(\d+ keys removed\)', r.out),
          'no word of the flush:\n%s' % r)
    before, after = keys_line(r)
    check(before == len(want) + 2 and after == len(want) + 1, 'key counts with --flush: %d, %d'
          % (before, after))
    got = snapshot(c, dbs=(0, 3, 5))
    check(got.pop((5, b'db5:other'), None) is not None, '--flush emptied db5, not in the backup')
    compare(want, got, 'logical restore with --flush')
    nothing_left(t)


# ---- 2. Redis, RDB through a temporary redis-server ---------------------------

@test
def restore_redis_rdb_through_a_temporary_server(t):
    src = Redis(t, 'src', password=True)
    c = src.client()
    load(c, 0)
    load(c, 3)
    want = snapshot(c)
    conf = write_conf(t, src.section('cache', 'mode = rdb\n') +
                      src.section('plain', 'mode = rdb\ncompression = none\n'))
    bid, _ = backup_ok(t, conf, 'cache')
    check(manifest(t, 'cache', bid)['mode'] == 'rdb', 'not an RDB backup')
    c.call('SELECT', 0)
    c.call('FLUSHDB')
    c.call('SET', 'db0:new', 'not in the backup')
    c.call('SELECT', 3)
    c.call('SET', 'db3:str:1', 'changed')

    r = restore(t, conf, 'cache', bid)
    check('the RDB was read through a temporary redis-server' in r.out, 'how?\n%s' % r)
    before, after = keys_line(r)
    check(before == counts_total(want, 3) + 1 and after == len(want) + 1,
          'key counts: %d, %d:\n%s' % (before, after, r))
    got = snapshot(c)
    check(got.pop((0, b'db0:new'), None) is not None, 'without --flush a new key went away')
    compare(want, got, 'rdb restore')
    nothing_left(t)
    r = restore(t, conf, 'cache', bid, '--flush')
    compare(want, snapshot(c), 'rdb restore with --flush')
    nothing_left(t)

    # An RDB this redis-server cannot read: said plainly, the target untouched.
    bid2, _ = backup_ok(t, conf, 'plain')
    m = manifest(t, 'plain', bid2)
    path = os.path.join(bdir(t, 'plain'), m['file'])
    with open(path, 'rb') as f:
        data = f.read()
    check(data[:9] == b'REDIS0010', 'not RDB 10: %r' % data[:9])
    with open(path, 'wb') as f:
        f.write(b'REDIS0099' + data[9:])
    import hashlib
    edit_manifest(t, 'plain', bid2, lambda m: m.update(
        blake2b=hashlib.blake2b(b'REDIS0099' + data[9:], digest_size=32).hexdigest()))
    c.call('SELECT', 0)
    c.call('SET', 'db0:marker', 'untouched')
    r = restore(t, conf, 'plain', bid2, '--flush', ok=False)
    check(re.search(r"redis-server \d+\.\d+\.\d+ cannot load this RDB \(version 10, made by "
                    r"redis [\d.]+\): .*Can't handle RDB format version 99", r.out),
          'the cause does not say what cannot load what:\n%s' % r)
    check(c.call('GET', 'db0:marker') == b'untouched', 'a refused restore touched the target')
    nothing_left(t)


@test
def restore_redis_into_a_tls_server_through_redis_cli(t):
    """hiredis has no TLS here: keys go through `redis-cli --tls --pipe`."""
    src = Redis(t, 'tls', tls=True, password=True)
    c = src.client()
    load(c, 0)
    load(c, 3)
    want = snapshot(c)
    ca = 'tls_ca_file = %s/tls/ca.crt\n' % src.dir
    conf = write_conf(t, src.section('tls', ca))
    bid, _ = backup_ok(t, conf, 'tls')
    check(manifest(t, 'tls', bid)['transport'] == 'redis-cli --tls', 'not over TLS')
    c.call('SELECT', 3)
    c.call('FLUSHDB')
    c.call('SELECT', 0)
    c.call('SET', 'db0:new', 'not in the backup')
    r = restore(t, conf, 'tls', bid, '--flush')
    check(re.search(r'restore into rediss://127\.0\.0\.1:%d/0, /3, good' % src.port, r.out),
          'into:\n%s' % r)
    check(src.password not in r.text, 'the password shows:\n%s' % r)
    before, after = keys_line(r)
    check(before == counts_total(want, 0) + 1 and after == len(want), 'key counts %d, %d:\n%s'
          % (before, after, r))
    compare(want, snapshot(c), 'rdb restore over TLS')
    nothing_left(t)

    # A logical backup of a plain server, restored into a TLS server that
    # has too few databases: found before a key is sent, said plainly.
    plain = Redis(t, 'plain')
    load(plain.client(), 0)
    load(plain.client(), 3)
    conf = write_conf(t, plain.section('cache', 'mode = logical\n'), name='plain.conf')
    bid, _ = backup_ok(t, conf, 'cache')
    small = Redis(t, 'small', tls=True, password=True, args=['--databases', '2'])
    conf = write_conf(t, small.section('cache', 'tls_ca_file = %s/tls/ca.crt\n' % small.dir),
                      name='tls.conf')
    sc = small.client()
    sc.call('SET', 'mine', 'untouched')
    r = restore(t, conf, 'cache', bid, ok=False)
    check(re.search(r'db3: .*DB index is out of range.*raise `databases`.*nothing was restored',
                    r.out), 'the server\'s error is not said:\n%s' % r)
    check(small.password not in r.text, 'the password shows:\n%s' % r)
    check(sc.call('DBSIZE') == 1 and sc.call('GET', 'mine') == b'untouched',
          'a refused restore wrote keys')
    nothing_left(t)

    # With enough databases the same backup goes through redis-cli --pipe.
    small.stop()
    big = Redis(t, 'big', tls=True, password=True)
    conf = write_conf(t, big.section('cache', 'tls_ca_file = %s/tls/ca.crt\n' % big.dir),
                      name='tls.conf')
    r = restore(t, conf, 'cache', bid)
    compare(snapshot(plain.client()), snapshot(big.client()), 'logical restore over TLS')
    nothing_left(t)


def counts_total(snap, db):
    """Keys now: the backup's, minus db0 (flushed), db3 the same."""
    return sum(1 for k in snap if k[0] == db)


# ---- 3. files ---------------------------------------------------------------

@test
def restore_files_into_a_directory_and_over_existing_only_with_replace(t):
    src = os.path.join(t.tmp, 'etc')
    make_config_tree(src)
    conf = write_conf(t, '[files etc]\npaths = %s/nginx, %s/mastodon\nallow_replace = yes\n\n'
                      '[files strict]\npaths = %s/nginx\n\n' % (src, src, src))
    bid, _ = backup_ok(t, conf, 'etc')
    want = tree(src)
    into = os.path.join(t.tmp, 'restored')
    r = restore(t, conf, 'etc', bid, '--into', into)
    check('restore into %s, good' % into in r.out, 'into:\n%s' % r)
    check(re.search(r'\(\d+ compared with the manifest\)', r.out), 'nothing compared:\n%s' % r)
    back = os.path.join(into, src.lstrip('/'))
    got = tree(back)
    check(got == want, 'restored tree differs: only in source %r, only restored %r, differ %r'
          % (sorted(set(want) - set(got)), sorted(set(got) - set(want)),
             sorted(k for k in want if k in got and want[k] != got[k])))
    check(os.stat(os.path.join(back, 'mastodon', '.env.production')).st_mode & 0o777 == 0o600,
          'modes lost')

    # Over existing files: refused, and nothing at all is written.
    conf_path = os.path.join(back, 'nginx', 'nginx.conf')
    with open(conf_path, 'w') as f:
        f.write('edited after the restore\n')
    gone = os.path.join(back, 'mastodon', 'big.bin')
    os.unlink(gone)
    r = restore(t, conf, 'etc', bid, '--into', into, ok=False)
    check(re.search(r'\d+ files would be overwritten in %s: .*nothing was restored' % into,
                    r.out) and 'nginx.conf' in r.out, 'refusal does not say why:\n%s' % r)
    with open(conf_path) as f:
        check(f.read() == 'edited after the restore\n', 'an existing file was overwritten')
    check(not os.path.exists(gone), 'a refused restore wrote a file')

    # --replace needs allow_replace.
    r = bb(t, conf, 'restore', 'strict', 'latest', '--into', into, '--replace', '--yes')
    check(r.rc != 0 and 'allow_replace' in r.text, '--replace without allow_replace:\n%s' % r)
    r = restore(t, conf, 'etc', bid, '--into', into, '--replace')
    check(re.search(r'--replace: \d+ existing files were overwritten', r.out), 'how many?\n%s' % r)
    check(tree(back) == want, 'with --replace the tree is not the backup')
    nothing_left(t)


# ---- 4. media ----------------------------------------------------------------

@test
def restore_media_brings_back_deleted_files_and_overwrites_only_with_replace(t):
    src = os.path.join(t.tmp, 'media')
    names = make_media(src, n=60)
    local = os.path.join(t.tmp, 'copy')
    dav = Webdav(t)
    rc = os.path.join(t.tmp, 'rclone.conf')
    with open(rc, 'w') as f:
        f.write(dav.rclone_section())
    conf = write_conf(t, '[media cdn]\nsource = %s\ndestinations = %s, dav:cdn\n'
                      'allow_replace = yes\n\n' % (src, local))
    with open(conf) as f:
        text = f.read()
    with open(conf, 'w') as f:
        f.write(text.replace('[storage]\n', '[storage]\nrclone_config = %s\n' % rc))
    r = bb(t, conf, 'backup', 'cdn')
    check(r.rc == 0 and re.search(r'^ok cdn: ', r.out, re.M), 'sync:\n%s' % r)
    original = {n: open(os.path.join(src, n), 'rb').read() for n in names}

    deleted = names[:3]
    for n in deleted:
        os.unlink(os.path.join(src, n))
    changed = names[10]
    with open(os.path.join(src, changed), 'wb') as f:
        f.write(b'changed at the source')
    extra = os.path.join(src, 'new-since-the-sync.png')
    with open(extra, 'wb') as f:
        f.write(b'new')

    r = restore(t, conf, 'cdn', 'latest')
    check(re.search(r'^  3 files \(.*\) copied from %s to %s$' % (re.escape(local), re.escape(src)),
                    r.out, re.M), 'not 3 files copied:\n%s' % r)
    for n in deleted:
        with open(os.path.join(src, n), 'rb') as f:
            check(f.read() == original[n], '%s did not come back' % n)
    with open(os.path.join(src, changed), 'rb') as f:
        check(f.read() == b'changed at the source', 'a changed file was overwritten without '
              '--replace')
    check(os.path.exists(extra), 'a file not in the copy was deleted')

    r = restore(t, conf, 'cdn', 'latest', '--replace')
    check(re.search(r'^  1 file \(.*\) copied', r.out, re.M), 'not 1 file copied:\n%s' % r)
    with open(os.path.join(src, changed), 'rb') as f:
        check(f.read() == original[changed], '--replace did not overwrite the changed file')
    check(os.path.exists(extra), '--replace deleted a file not in the copy')

    # Somewhere else, whole, from the other destination.
    into = os.path.join(t.tmp, 'elsewhere')
    r = restore(t, conf, 'cdn', 'latest', '--into', into, '--from', 'dav')
    check('copied from dav:cdn to %s' % into in r.out, '--from dav:\n%s' % r)
    for n in names:
        with open(os.path.join(into, n), 'rb') as f:
            check(f.read() == original[n], '%s not restored --into' % n)

    # The drill checks every copy against the source, copying nothing;
    # what changed at the source since the run is not the copies' fault.
    r = verify(t, conf, 'cdn', 'latest')
    check(re.search(r'^  %s: %d files compared with %s$' % (re.escape(local), len(names),
                                                          re.escape(src)), r.out, re.M)
          and re.search(r'^  dav:cdn: %d files compared' % len(names), r.out, re.M),
          'drill compared what?\n%s' % r)
    check(re.search(r'^  %s: 1 file changed or added at the source since the run began'
                    % re.escape(local), r.out, re.M), 'the new file was not excused:\n%s' % r)
    with open(os.path.join(src, names[30]), 'ab') as f:
        f.write(b'grown since the sync')
    r = verify(t, conf, 'cdn', 'latest')
    check(re.search(r'%s: 2 files changed or added' % re.escape(local), r.out),
          'the changed file was not excused:\n%s' % r)
    with open(os.path.join(local, names[20]), 'r+b') as f:
        b = f.read(1)
        f.seek(0)
        f.write(bytes([b[0] ^ 1]))
    os.utime(os.path.join(src, names[20]), (0, 0))
    os.utime(os.path.join(local, names[20]), (0, 0))
    r = verify(t, conf, 'cdn', 'latest', ok=False)
    check(re.search(r'1 file differs from the source: %s: differs between the source and %s'
                    % (re.escape(names[20]), re.escape(local)), r.out),
          'the damaged copy:\n%s' % r)


# ---- 5. drills ---------------------------------------------------------------

@test
def restore_drills_pass_and_find_a_damaged_backup(t):
    srv = Redis(t, 'src')
    c = srv.client()
    load(c, 0)
    load(c, 2)
    etc = os.path.join(t.tmp, 'etc')
    make_config_tree(etc)
    conf = write_conf(t, srv.section('logical', 'mode = logical\n') +
                      srv.section('rdb', 'mode = rdb\n') +
                      '[files etc]\npaths = %s\n\n' % etc)
    ids = {}
    for target in ('logical', 'rdb', 'etc'):
        ids[target], _ = backup_ok(t, conf, target)
    before = snapshot(c, dbs=(0, 2))

    r = verify(t, conf, 'logical', ids['logical'])
    check(re.search(r'\(%d compared with the manifest\)' % len(before), r.out),
          'logical drill compared what?\n%s' % r)
    r = verify(t, conf, 'rdb', ids['rdb'])
    check(re.search(r'db0: \d+ keys loaded', r.out), 'rdb drill:\n%s' % r)
    r = verify(t, conf, 'etc', ids['etc'])
    check(re.search(r'6 files \(\d+ bytes\), 7 directories, 2 symbolic links extracted and '
                    r'compared', r.out), 'files drill:\n%s' % r)
    compare(before, snapshot(c, dbs=(0, 2)), 'after the drills')

    # Manifests that do not match their backups.
    edit_manifest(t, 'logical', ids['logical'], lambda m: m.update(records=m['records'] + 1))
    r = verify(t, conf, 'logical', ids['logical'], ok=False)
    check('records in the manifest' in r.out, 'logical:\n%s' % r)
    edit_manifest(t, 'rdb', ids['rdb'], lambda m: m['keys'].update(db2=m['keys']['db2'] * 3))
    r = verify(t, conf, 'rdb', ids['rdb'], ok=False)
    check(re.search(r'db2: \d+ keys when the backup was prepared, \d+ in the snapshot', r.out),
          'rdb:\n%s' % r)
    edit_manifest(t, 'etc', ids['etc'], lambda m: m.update(files=m['files'] + 2))
    r = verify(t, conf, 'etc', ids['etc'], ok=False)
    check('8 files when the backup was prepared, 6 in the archive' in r.out, 'files:\n%s' % r)
    compare(before, snapshot(c, dbs=(0, 2)), 'after the failed drills')
