"""Config files (tar + git checks) and the media store (rclone sync), from
the shell: `backupbot backup NAME`, `cat`, `verify`, and the run records
backup_dir/TARGET/ID.run.json that media runs leave.

Files: a temp tree goes through tar, zstd and `backupbot cat | tar -x`
and must come back equal (modes, symlinks, empty dirs, odd names);
missing paths and git repositories with uncommitted or unpushed work are
reported as warnings, and nothing at all to back up is a failure.

Media: a source of ~500 small files is synced to a local directory and
to a WebDAV remote (`rclone serve webdav`); a change of 5 files, one new
and one deleted must transfer exactly those; keep_deleted_days keeps what
a sync deletes in a dated sibling directory and expires old ones; a
source that is gone before or during a run is a failure, never an ok
that wipes the destinations; flags outside the allowlist are refused.
"""

import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import time

from harness import (BACKUPBOT, BOT_TOKEN, TestFailure, Webdav, check, test)

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False


# ---- helpers ------------------------------------------------------------

class Run:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    @property
    def text(self):
        return '%s\n%s' % (self.out, self.err)

    def __str__(self):
        return 'backupbot %s -> exit %s\n--- stdout:\n%s\n--- stderr:\n%s' % (
            ' '.join(self.args), self.rc, self.out, self.err)


def bb(t, conf, *args, timeout=120):
    argv = [BACKUPBOT, '-c', conf] + list(args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return Run(list(args), p.returncode, p.stdout.decode('utf-8', 'replace'),
               p.stderr.decode('utf-8', 'replace'))


def write_conf(t, body, storage=''):
    """A complete bot.conf; returns (path, backup_dir)."""
    token = os.path.join(t.tmp, 'token')
    with open(token, 'w') as f:
        f.write(BOT_TOKEN + '\n')
    os.chmod(token, 0o600)
    bdir = os.path.join(t.tmp, 'backups')
    path = os.path.join(t.tmp, 'bb.conf')
    with open(path, 'w') as f:
        f.write('[matrix]\nhomeserver = %s\nuser_id = @backupbot:localhost\n'
                'access_token_file = %s\nrooms = %s\nadmins = @alice:localhost\n\n'
                '[storage]\nstate_dir = %s\nbackup_dir = %s\n%s\n\n%s'
                % (t.hs.url, token, t.room_id, os.path.join(t.tmp, 'state'), bdir,
                   storage, body))
    return path, bdir


def backup_ok(t, conf, target, status='ok'):
    r = bb(t, conf, 'backup', target)
    word = {'ok': 'ok', 'partial': 'PARTIAL'}[status]
    ids = re.findall(r'^%s %s: (%s-\d{8}T\d{6}Z), ' % (word, target, target), r.out, re.M)
    check(r.rc == (0 if status == 'ok' else 1) and len(ids) == 1,
          'backup %s: expected "%s %s: ID":\n%s' % (target, word, target, r))
    return ids[0], r


def backup_fails(t, conf, target, *causes):
    r = bb(t, conf, 'backup', target)
    check(r.rc == 1 and re.search(r'^FAILED %s: ' % target, r.out, re.M),
          'backup %s should have failed:\n%s' % (target, r))
    check(not re.search(r'^(ok|PARTIAL) ', r.out, re.M), 'a failed run printed ok:\n%s' % r)
    for c in causes:
        check(re.search(c, r.text, re.I), 'cause %r not in the output:\n%s' % (c, r))
    return r


def manifest(bdir, target, bid):
    with open(os.path.join(bdir, target, bid + '.json')) as f:
        return json.load(f)


def run_record(bdir, target, bid=None):
    """The media run record ID.run.json (the newest one without an id)."""
    d = os.path.join(bdir, target)
    if bid is None:
        runs = sorted(n for n in os.listdir(d) if n.endswith('.run.json'))
        check(runs, 'no run record in %s' % d)
        name = runs[-1]
    else:
        name = bid + '.run.json'
    with open(os.path.join(d, name)) as f:
        return json.load(f)


def tree(root):
    """{relpath: (kind, mode, content-or-target)} of everything under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ('link', None, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ('dir', stat.S_IMODE(st.st_mode), None)
            else:
                with open(p, 'rb') as f:
                    out[rel] = ('file', stat.S_IMODE(st.st_mode),
                                hashlib.sha256(f.read()).hexdigest(), int(st.st_mtime))
    return out


def files_of(root):
    """{relpath: sha256} of the regular files under root (no modes)."""
    return {k: v[2] for k, v in tree(root).items() if v[0] == 'file'} if os.path.isdir(root) else {}


def git(cwd, *args):
    r = subprocess.run(['git', '-c', 'user.name=Test', '-c', 'user.email=test@example.org',
                        '-c', 'init.defaultBranch=main', '-c', 'advice.detachedHead=false']
                       + list(args), cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise TestFailure('git %s in %s: %s' % (' '.join(args), cwd, r.stderr))
    return r.stdout


# ---- files ------------------------------------------------------------

def make_config_tree(root):
    """Something like /etc/mastodon + /etc/nginx: dirs, modes, links."""
    os.makedirs(os.path.join(root, 'nginx', 'sites-available'))
    os.makedirs(os.path.join(root, 'nginx', 'sites-enabled'))
    os.makedirs(os.path.join(root, 'mastodon', 'empty.d'))
    files = {
        'nginx/nginx.conf': (b'worker_processes auto;\n' * 40, 0o644),
        'nginx/sites-available/vmst.io': (b'server { listen 443 ssl; }\n', 0o640),
        'mastodon/.env.production': (b'SECRET_KEY_BASE=' + b'x' * 128 + b'\n', 0o600),
        'mastodon/bin/tootctl-wrapper': (b'#!/bin/sh\nexec tootctl "$@"\n', 0o755),
        'mastodon/name with spaces & ü.txt': (b'odd name\n', 0o644),
        'mastodon/big.bin': (os.urandom(300 * 1024), 0o644),
    }
    for rel, (data, mode) in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data)
        os.chmod(p, mode)
    os.symlink('../sites-available/vmst.io', os.path.join(root, 'nginx', 'sites-enabled', 'vmst.io'))
    os.symlink('/nonexistent/target', os.path.join(root, 'mastodon', 'dangling'))
    os.chmod(os.path.join(root, 'mastodon', 'empty.d'), 0o750)
    os.chmod(os.path.join(root, 'mastodon', 'bin'), 0o700)


@test
def files_tar_round_trip(t):
    src = os.path.join(t.tmp, 'etc')
    make_config_tree(src)
    conf, bdir = write_conf(t, '[files etc]\npaths = %s/nginx, %s/mastodon\n' % (src, src))
    bid, r = backup_ok(t, conf, 'etc')
    check('warning' not in r.out, 'a clean tree gave warnings:\n%s' % r)
    m = manifest(bdir, 'etc', bid)
    check(m['kind'] == 'files' and m['paths'] == [src + '/nginx', src + '/mastodon']
          and m['missing'] == [] and m['files'] == 6, 'manifest: %r' % m)
    check(m['file'] == bid + '.tar.zst', 'data file: %r' % m['file'])
    r = bb(t, conf, 'verify', bid)
    check(r.rc == 0 and re.search(r'^ok etc: ', r.out, re.M), 'verify:\n%s' % r)

    out = os.path.join(t.tmp, 'restored')
    os.makedirs(out)
    cat = subprocess.Popen([BACKUPBOT, '-c', conf, 'cat', bid], stdout=subprocess.PIPE)
    x = subprocess.run(['tar', '-x', '--numeric-owner', '-p', '-C', out], stdin=cat.stdout,
                       capture_output=True, text=True)
    cat.stdout.close()
    check(cat.wait() == 0 and x.returncode == 0, 'cat | tar -x failed: %s' % x.stderr)
    # the paths as given, relative to /
    back = os.path.join(out, src.lstrip('/'))
    want, got = tree(src), tree(back)
    check(want == got, 'restored tree differs:\nonly in source: %r\nonly in restore: %r\n'
          'different: %r' % (sorted(set(want) - set(got)), sorted(set(got) - set(want)),
                              sorted(k for k in want if k in got and want[k] != got[k])))
    check(got['nginx/sites-enabled/vmst.io'] == ('link', None, '../sites-available/vmst.io')
          and got['mastodon/.env.production'][1] == 0o600, 'links or modes lost: %r' % got)


@test
def files_missing_path_is_reported_and_the_rest_backed_up(t):
    src = os.path.join(t.tmp, 'etc')
    make_config_tree(src)
    gone = os.path.join(t.tmp, 'home', 'mastodon', 'live', '.env.production')
    conf, bdir = write_conf(t, '[files etc]\npaths = %s/nginx, %s, %s/mastodon\n'
                            % (src, gone, src))
    bid, r = backup_ok(t, conf, 'etc')
    check(re.search(r'^  warning: path %s is not in this backup: No such file or directory$'
                    % re.escape(gone), r.out, re.M), 'no warning for the missing path:\n%s' % r)
    m = manifest(bdir, 'etc', bid)
    check(m['missing'] == [gone] and m['paths'] == [src + '/nginx', src + '/mastodon'],
          'manifest paths/missing: %r' % m)
    check(any(gone in w for w in m['warnings']), 'manifest warnings: %r' % m['warnings'])
    cat = subprocess.Popen([BACKUPBOT, '-c', conf, 'cat', bid], stdout=subprocess.PIPE)
    listing = subprocess.run(['tar', '-t'], stdin=cat.stdout, capture_output=True,
                             text=True).stdout.split('\n')
    cat.stdout.close()
    cat.wait()
    rel = src.lstrip('/')
    for name in ('nginx/nginx.conf', 'mastodon/.env.production', 'mastodon/big.bin'):
        check(rel + '/' + name in listing, '%s not in the tar: %r' % (name, listing[:20]))


@test
def files_nothing_to_back_up_fails(t):
    conf, bdir = write_conf(t, '[files etc]\npaths = %s/a, %s/b\n' % (t.tmp, t.tmp))
    backup_fails(t, conf, 'etc', r'none of the paths can be backed up: %s/a \(No such file'
                 % re.escape(t.tmp))
    left = os.listdir(os.path.join(bdir, 'etc')) if os.path.isdir(os.path.join(bdir, 'etc')) else []
    check(left == [], 'a failed backup left files: %r' % left)


@test
def files_git_repos_dirty_unpushed_and_clean(t):
    origin = os.path.join(t.tmp, 'origin.git')
    git(t.tmp, 'init', '-q', '--bare', origin)
    seed = os.path.join(t.tmp, 'seed')
    git(t.tmp, 'clone', '-q', origin, seed)
    with open(os.path.join(seed, 'mastodon.conf'), 'w') as f:
        f.write('a = 1\n')
    git(seed, 'add', '.')
    git(seed, 'commit', '-q', '-m', 'first')
    git(seed, 'push', '-q', 'origin', 'HEAD:main')

    repos = {}
    for name in ('clean', 'dirty', 'unpushed', 'both'):
        repos[name] = os.path.join(t.tmp, name)
        git(t.tmp, 'clone', '-q', origin, repos[name])
    with open(os.path.join(repos['dirty'], 'mastodon.conf'), 'a') as f:
        f.write('b = 2\n')
    with open(os.path.join(repos['dirty'], 'new.conf'), 'w') as f:
        f.write('untracked\n')
    git(repos['unpushed'], 'commit', '-q', '--allow-empty', '-m', 'local only')
    with open(os.path.join(repos['both'], 'mastodon.conf'), 'a') as f:
        f.write('c = 3\n')
    git(repos['both'], 'commit', '-q', '-am', 'one')
    git(repos['both'], 'commit', '-q', '--allow-empty', '-m', 'two')
    with open(os.path.join(repos['both'], 'mastodon.conf'), 'a') as f:
        f.write('d = 4\n')
    repos['local'] = os.path.join(t.tmp, 'local')
    git(t.tmp, 'init', '-q', repos['local'])
    git(repos['local'], 'commit', '-q', '--allow-empty', '-m', 'never pushed')
    repos['plain'] = os.path.join(t.tmp, 'plain')
    os.makedirs(repos['plain'])

    order = ('clean', 'dirty', 'unpushed', 'both', 'local', 'plain')
    conf, bdir = write_conf(t, '[files etc]\npaths = %s\ngit_repos = %s\n'
                            % (repos['clean'], ', '.join(repos[n] for n in order)))
    bid, r = backup_ok(t, conf, 'etc')
    m = manifest(bdir, 'etc', bid)
    g, w = m['git'], '\n'.join(m['warnings'])
    check(g[repos['clean']]['clean'] is True and g[repos['clean']]['unpushed'] == 0
          and g[repos['clean']]['branch'] == 'main' and g[repos['clean']]['upstream'] == 'origin/main'
          and re.fullmatch(r'[0-9a-f]{40}', g[repos['clean']]['head'] or ''),
          'clean repo: %r' % g[repos['clean']])
    check(repos['clean'] not in w, 'a clean, pushed repo has a warning:\n%s' % w)
    expect = {
        'dirty': 'git repo %s has 2 uncommitted changes (1 untracked file)' % repos['dirty'],
        'unpushed': 'git repo %s has 1 unpushed commit' % repos['unpushed'],
        'both': 'git repo %s has 1 uncommitted change and 2 unpushed commits' % repos['both'],
        'local': 'git repo %s: branch main has no upstream, so its commits are not pushed '
                 'anywhere' % repos['local'],
        'plain': 'git repo %s cannot be checked: not a git repository' % repos['plain'],
    }
    for name, text in expect.items():
        check(text in w, 'no warning %r in:\n%s' % (text, w))
        check(text in r.out, 'warning %r not shown to the operator:\n%s' % (text, r))
    check(g[repos['dirty']]['clean'] is False and g[repos['dirty']]['unpushed'] == 0
          and g[repos['unpushed']]['clean'] is True and g[repos['unpushed']]['unpushed'] == 1
          and g[repos['both']]['unpushed'] == 2 and g[repos['local']]['unpushed'] is None
          and 'error' in g[repos['plain']], 'git facts: %s' % json.dumps(g, indent=1))
    # The check must not touch the repositories (no index rewrite, no lock).
    check(not os.path.exists(os.path.join(repos['dirty'], '.git', 'index.lock')),
          'index.lock left in the repo')


# ---- media -------------------------------------------------------------

def make_media(root, n=500, seed=1):
    """n small files in nested directories, like Mastodon's media store."""
    rnd = random.Random(seed)
    names = []
    for i in range(n):
        rel = 'media_attachments/files/%03d/%03d/f%04d.%s' % (
            i % 7, i % 13, i, ('png', 'jpg', 'mp4', 'webp')[i % 4])
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(rnd.randbytes(rnd.randint(100, 2000)))
        names.append(rel)
    return names


def media_conf(t, source, dests, flags='--transfers 8 --checkers 16', keep_days=0, dav=None):
    storage = ''
    if dav is not None:
        rc = os.path.join(t.tmp, 'rclone.conf')
        with open(rc, 'w') as f:
            f.write(dav.rclone_section())
        storage = 'rclone_config = %s\n' % rc
    return write_conf(t, '[media cdn]\nsource = %s\ndestinations = %s\nflags = %s\n'
                      'keep_deleted_days = %d\n' % (source, ', '.join(dests), flags, keep_days),
                      storage=storage)


def dest_summary(rec, dest):
    d = rec.get('destinations', {}).get(dest)
    check(d is not None, 'no summary for %s in the run record: %s' % (dest, json.dumps(rec, indent=1)))
    return d


@test
def media_sync_local_and_webdav_then_only_changes(t):
    src = os.path.join(t.tmp, 'cdn')
    names = make_media(src)
    local = os.path.join(t.tmp, 'nyc', 'vmst-media')
    dav = Webdav(t, 'ams')
    davdir = os.path.join(dav.dir, 'vmst-media')
    dests = [local, 'ams:vmst-media']
    conf, bdir = media_conf(t, src, dests, dav=dav)

    t0 = time.time()
    bid, r = backup_ok(t, conf, 'cdn')
    rec = run_record(bdir, 'cdn', bid)
    check(rec['status'] == 'ok' and rec['source'] == src and rec['kind'] == 'media',
          'run record: %s' % json.dumps(rec, indent=1))
    want = files_of(src)
    for d, where in ((local, local), ('ams:vmst-media', davdir)):
        s = dest_summary(rec, d)
        check(s['status'] == 'ok' and s['transferred'] == 500 and s['errors'] == 0
              and s['exit_code'] == 0 and s['bytes'] == sum(os.path.getsize(os.path.join(src, n))
                                                             for n in names),
              '%s first sync: %r' % (d, s))
        check(files_of(where) == want, '%s differs from the source after the sync' % d)
    check('ok: 500 files' in r.err, 'no per-destination summary on stderr:\n%s' % r)

    # 5 changed (size changes too: WebDAV compares by size), 1 new, 1 deleted
    for n in names[10:15]:
        with open(os.path.join(src, n), 'ab') as f:
            f.write(b'edited')
    with open(os.path.join(src, 'media_attachments/files/new.png'), 'wb') as f:
        f.write(b'new file')
    os.unlink(os.path.join(src, names[100]))
    wait_new_second(t0)
    bid2, r = backup_ok(t, conf, 'cdn')
    check(bid2 != bid, 'second run reused the id %s' % bid)
    rec = run_record(bdir, 'cdn', bid2)
    want = files_of(src)
    for d, where in ((local, local), ('ams:vmst-media', davdir)):
        s = dest_summary(rec, d)
        check(s['status'] == 'ok' and s['transferred'] == 6 and s['deleted'] == 1,
              '%s: expected 6 transferred and 1 deleted: %r' % (d, s))
        check(files_of(where) == want, '%s differs from the source after the change' % d)
    check(rec['transferred'] == 12 and rec['deleted'] == 2, 'totals: %r' % rec)


def wait_new_second(since):
    """Run ids have a one-second resolution: start the next run in a new second."""
    while int(time.time()) == int(since):
        time.sleep(0.05)


@test
def media_keep_deleted_days_keeps_deleted_files_by_date(t):
    src = os.path.join(t.tmp, 'cdn')
    names = make_media(src, 40)
    dst = os.path.join(t.tmp, 'nyc', 'vmst-media')
    deleted_root = dst + '-deleted'
    conf, bdir = media_conf(t, src, [dst], keep_days=7)
    t0 = time.time()
    backup_ok(t, conf, 'cdn')
    check(files_of(dst) == files_of(src), 'first sync differs')

    victim, changed = names[3], names[4]
    with open(os.path.join(src, victim), 'rb') as f:
        victim_data = f.read()
    with open(os.path.join(src, changed), 'rb') as f:
        changed_old = f.read()
    os.unlink(os.path.join(src, victim))
    with open(os.path.join(src, changed), 'ab') as f:
        f.write(b'v2')
    # an expired day, one still kept, and a directory that is not ours
    for name in ('2000-01-01', time.strftime('%Y-%m-%d', time.gmtime(time.time() - 3 * 86400)),
                 'notes'):
        os.makedirs(os.path.join(deleted_root, name))
        with open(os.path.join(deleted_root, name, 'x'), 'w') as f:
            f.write('x')
    wait_new_second(t0)
    bid, r = backup_ok(t, conf, 'cdn')
    today = time.strftime('%Y-%m-%d', time.gmtime())
    kept = os.path.join(deleted_root, today)
    check(not os.path.exists(os.path.join(dst, victim)), 'deleted file still at the destination')
    with open(os.path.join(kept, victim), 'rb') as f:
        check(f.read() == victim_data, 'the deleted file kept under %s differs' % kept)
    with open(os.path.join(kept, changed), 'rb') as f:
        check(f.read() == changed_old, 'the old version of a changed file was not kept')
    left = sorted(os.listdir(deleted_root))
    check('2000-01-01' not in left and 'notes' in left and len(left) == 3,
          'expiry: %r left in %s' % (left, deleted_root))
    s = dest_summary(run_record(bdir, 'cdn', bid), dst)
    check(s['backup_dir'] == kept and s['expired'] == ['2000-01-01'] and s['deleted'] == 1,
          'summary: %r' % s)


@test
def media_source_gone_before_the_run_fails_and_touches_nothing(t):
    src = os.path.join(t.tmp, 'cdn')
    make_media(src, 30)
    dst = os.path.join(t.tmp, 'nyc')
    conf, bdir = media_conf(t, src, [dst])
    t0 = time.time()
    backup_ok(t, conf, 'cdn')
    before = files_of(dst)
    check(len(before) == 30, 'first sync: %d files' % len(before))

    os.rename(src, src + '.moved')
    wait_new_second(t0)
    backup_fails(t, conf, 'cdn', r'source: %s does not exist' % re.escape(src))
    check(files_of(dst) == before, 'the destination changed although the source is gone')
    rec = run_record(bdir, 'cdn')
    check(rec['status'] == 'failed' and dest_summary(rec, dst)['status'] == 'failed',
          'run record: %s' % json.dumps(rec, indent=1))

    # an empty source is not a reason to empty the destinations either
    os.makedirs(src)
    wait_new_second(time.time())
    backup_fails(t, conf, 'cdn', r'is empty and %s is not' % re.escape(dst))
    check(files_of(dst) == before, 'an empty source emptied the destination')


@test
def media_source_vanishing_mid_run_is_a_failure(t):
    src = os.path.join(t.tmp, 'cdn')
    os.makedirs(src)
    for i in range(3):
        with open(os.path.join(src, 'big%d.mp4' % i), 'wb') as f:
            f.write(os.urandom(1536 * 1024))
    dst = os.path.join(t.tmp, 'nyc')
    conf, bdir = media_conf(t, src, [dst], flags='--transfers 1 --bwlimit 1M --retries 2')
    p = subprocess.Popen([BACKUPBOT, '-c', conf, 'backup', 'cdn'], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while not (os.path.isdir(dst) and os.listdir(dst)):   # the first copy has begun
        check(time.time() < deadline and p.poll() is None, 'the sync never started')
        time.sleep(0.02)
    os.rename(src, src + '.gone')
    out, err = p.communicate(timeout=60)
    r = Run(['backup', 'cdn'], p.returncode, out.decode(), err.decode())
    check(r.rc == 1 and re.search(r'^FAILED cdn: ', r.out, re.M), 'should have failed:\n%s' % r)
    check(re.search(r'rclone (exited with status \d|reported \d+ error)', r.out),
          'the cause does not say what rclone said:\n%s' % r)
    s = dest_summary(run_record(bdir, 'cdn'), dst)
    check(s['status'] == 'failed' and (s['errors'] > 0 or s['exit_code'] != 0),
          'summary: %r' % s)


@test
def media_one_destination_failing_is_partial(t):
    src = os.path.join(t.tmp, 'cdn')
    make_media(src, 20)
    dst = os.path.join(t.tmp, 'nyc')
    conf, bdir = media_conf(t, src, ['nosuchremote:vmst-media', dst])
    bid, r = backup_ok(t, conf, 'cdn', status='partial')
    rec = run_record(bdir, 'cdn', bid)
    bad = dest_summary(rec, 'nosuchremote:vmst-media')
    check(rec['status'] == 'partial' and bad['status'] == 'failed' and bad['exit_code'] == 1
          and "didn't find section in config file" in bad['error'],
          'run record: %s' % json.dumps(rec, indent=1))
    check(dest_summary(rec, dst)['status'] == 'ok' and files_of(dst) == files_of(src),
          'the good destination was not synced')


@test
def media_flags_outside_the_allowlist_are_refused(t):
    src = os.path.join(t.tmp, 'cdn')
    make_media(src, 5)
    dst = os.path.join(t.tmp, 'nyc')
    for flags, name in (('--transfers 4 --config /x', '--config'),
                        ('--delete-excluded', '--delete-excluded'),
                        ('--transfers many', '--transfers')):
        conf, bdir = media_conf(t, src, [dst], flags=flags)
        with open(conf) as f:
            line = [i + 1 for i, l in enumerate(f) if l.startswith('flags =')][0]
        r = bb(t, conf, 'backup', 'cdn')
        check(r.rc != 0 and name in r.text, '%r accepted:\n%s' % (flags, r))
        # Refused by config validation (FILE:LINE) once it is wired in,
        # until then by the run itself, before rclone starts.
        at = re.search(r'%s:(\d+):' % re.escape(conf), r.text)
        check(at is None or int(at.group(1)) == line,
              'the error names line %s, flags is on line %d:\n%s' % (at and at.group(1), line, r))
        check(at is not None or re.search(r'^FAILED cdn: flags: ', r.out, re.M),
              'neither a config error nor a failed run:\n%s' % r)
        check(not os.path.exists(dst), 'rclone ran with %r' % flags)
