#!/usr/bin/python3
"""media_bench.py - backupbot's media sync against plain rclone, in the
same run, on the same tree of many small files (Mastodon's media store is
mostly thumbnails and avatars):

  rclone sync SRC DST FLAGS           what a cron script does
  backupbot backup cdn                lsf SRC (the vanished-source guard)
                                      + rclone sync SRC DST FLAGS with JSON
                                      stats on stderr, parsed for progress

Both from an empty destination and for a re-sync with no change (the
nightly case: everything is checked, nothing is copied), on local
directories and then with source and destination served over HTTP by
`rclone serve webdav` on loopback, where listing costs requests as it
does on an object store.  Reports the median wall time of ROUNDS runs
each, the ratios, and backupbot's peak RSS.

    media_bench.py [FILES] [ROUNDS]     (default 20000 files, 3 rounds)
"""
import os
import random
import socket
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BACKUPBOT = os.path.abspath(os.path.join(ROOT, os.environ.get('BACKUPBOT', 'backupbot')))
FLAGS = '--transfers 8 --checkers 16'


def hwm(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(argv):
    """Run argv; wall seconds and the peak RSS (KB) of that process."""
    t0 = time.time()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    peak = 0
    while p.poll() is None:
        peak = max(peak, hwm(p.pid))
        time.sleep(0.01)
    wall = time.time() - t0
    out, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit('%s failed (exit %d): %s%s' % (' '.join(argv[:3]), p.returncode,
                                                       out.decode()[-1000:], err.decode()[-2000:]))
    return wall, peak


def make_tree(root, n):
    rnd = random.Random(7)
    for i in range(n):
        p = os.path.join(root, 'media_attachments', 'files', '%03d' % (i % 97),
                         '%03d' % (i // 97 % 31), 'f%06d.webp' % i)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(rnd.randbytes(rnd.randint(200, 4000)))


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def serve_webdav(root, tmp, name):
    """rclone serve webdav root on a loopback port: (process, remote),
    the remote defined in the environment (rclone's RCLONE_CONFIG_NAME_*),
    which both rclone and backupbot's rclone inherit."""
    port = free_port()
    empty = os.path.join(tmp, 'empty-rclone.conf')
    open(empty, 'a').close()
    p = subprocess.Popen(['rclone', 'serve', 'webdav', root, '--addr', '127.0.0.1:%d' % port],
                         env=dict(os.environ, RCLONE_CONFIG=empty),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            os.environ['RCLONE_CONFIG_%s_TYPE' % name.upper()] = 'webdav'
            os.environ['RCLONE_CONFIG_%s_URL' % name.upper()] = 'http://127.0.0.1:%d' % port
            return p, name + ':'
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit('rclone serve webdav did not start')


def count_files(root):
    return sum(len(files) for _, _, files in os.walk(root))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    tmp = tempfile.mkdtemp(prefix='bbbench-media-')
    try:
        src = os.path.join(tmp, 'cdn')
        t0 = time.time()
        make_tree(src, n)
        print('source: %d files in %s (made in %.1fs), flags: %s, rounds: %d'
              % (n, src, time.time() - t0, FLAGS, rounds))
        token = os.path.join(tmp, 'token')
        with open(token, 'w') as f:
            f.write('bench\n')
        os.chmod(token, 0o600)
        dst_bb = os.path.join(tmp, 'dst-backupbot')
        dst_rc = os.path.join(tmp, 'dst-rclone')
        conf = os.path.join(tmp, 'bb.conf')
        with open(conf, 'w') as f:
            f.write('[matrix]\nhomeserver = http://127.0.0.1:9\nuser_id = @bench:localhost\n'
                    'access_token_file = %s\nrooms = !bench:localhost\nadmins = @a:localhost\n\n'
                    '[storage]\nstate_dir = %s/state\nbackup_dir = %s/backups\n\n'
                    '[media cdn]\nsource = %s\ndestinations = %s\nflags = %s\n'
                    % (token, tmp, tmp, src, dst_bb, FLAGS))
        bb = [BACKUPBOT, '-c', conf, 'backup', 'cdn']
        rc = ['rclone', 'sync', src, dst_rc] + FLAGS.split()

        res = {k: [] for k in ('rc_fresh', 'bb_fresh', 'rc_nochange', 'bb_nochange')}
        peaks = []
        for i in range(rounds):
            # alternate who goes first, so the page cache favours no one
            order = [('rc', rc, dst_rc), ('bb', bb, dst_bb)]
            if i % 2:
                order.reverse()
            for name, argv, dst in order:
                shutil.rmtree(dst, ignore_errors=True)
                wall, peak = timed(argv)
                res[name + '_fresh'].append(wall)
                if name == 'bb':
                    peaks.append(peak)
                if count_files(dst) != n:
                    raise SystemExit('%s: %d files at the destination, expected %d'
                                     % (name, count_files(dst), n))
            for name, argv, dst in order:
                wall, peak = timed(argv)
                res[name + '_nochange'].append(wall)
                if name == 'bb':
                    peaks.append(peak)

        # Served remotes: the destinations already hold the same files
        # (webdav keeps no modification times, so rclone compares sizes).
        servers = []
        try:
            p, src_dav = serve_webdav(src, tmp, 'benchsrc')
            servers.append(p)
            dav_root = os.path.join(tmp, 'dav')
            for d in ('dst-rclone', 'dst-backupbot'):
                shutil.copytree(src, os.path.join(dav_root, d))
            p, dst_dav = serve_webdav(dav_root, tmp, 'benchdst')
            servers.append(p)
            with open(conf, 'a') as f:
                f.write('\n[media cdndav]\nsource = %s\ndestinations = %sdst-backupbot\n'
                        'flags = %s\n' % (src_dav, dst_dav, FLAGS))
            order = [('rc', ['rclone', 'sync', src_dav, dst_dav + 'dst-rclone'] + FLAGS.split()),
                     ('bb', [BACKUPBOT, '-c', conf, 'backup', 'cdndav'])]
            res['rc_dav'], res['bb_dav'] = [], []
            for i in range(rounds):
                for name, argv in (order if i % 2 == 0 else order[::-1]):
                    wall, peak = timed(argv)
                    res[name + '_dav'].append(wall)
                    if name == 'bb':
                        peaks.append(peak)
            for d in ('dst-rclone', 'dst-backupbot'):
                if count_files(os.path.join(dav_root, d)) != n:
                    raise SystemExit('%s: %d files, expected %d'
                                     % (d, count_files(os.path.join(dav_root, d)), n))
        finally:
            for p in servers:
                p.terminate()
                p.wait()

        med = {k: statistics.median(v) for k, v in res.items()}
        print('%-34s %10s %10s %8s' % ('', 'rclone', 'backupbot', 'ratio'))
        for case, label in (('fresh', 'fresh destination (copy all)'),
                            ('nochange', 're-sync, no change (check all)'),
                            ('dav', 're-sync, no change, webdav')):
            r, b = med['rc_' + case], med['bb_' + case]
            print('%-34s %9.2fs %9.2fs %7.2fx' % (label, r, b, b / r))
        print('runs (s): %s' % ', '.join('%s=[%s]' % (k, ' '.join('%.2f' % x for x in v))
                                         for k, v in res.items()))
        print('backupbot peak RSS: %d KB (rclone runs in its own process)' % max(peaks))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
