#!/usr/bin/python3
"""pg_restore.py - backupbot's PostgreSQL restore against plain pg_restore,
in the same run on the same database:

  pg_restore -j 2 -d NEW FILE.dump      a pg_dump -Fc file, into a new database
  backupbot restore main latest --into NEW --yes
        hash check + zstd unpack to a file, CREATE DATABASE, pg_restore -j 2
        --exit-on-error, then an exact row count of every table compared
        with the manifest

Reports wall time, the ratio to pg_restore, and backupbot's own peak RSS.

    pg_restore.py [SIZE_MB]     (default 1000: a ~1 GB Mastodon-like db)
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pg_backup import BACKUPBOT, harness, timed  # noqa: E402


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1000

    class T:
        pass
    t = T()
    t.tmp = tempfile.mkdtemp(prefix='bbbench-')
    os.chmod(t.tmp, 0o711)
    t.cleanups = []
    try:
        print('loading a ~%d MB Mastodon-like database ...' % size_mb, flush=True)
        pg = harness.Postgres(t, size_mb=size_mb)
        dbsize = int(pg.psql("SELECT pg_database_size('mastodon')"))
        su = ['-h', pg.dir, '-p', str(pg.port), '-U', 'postgres']
        dump = os.path.join(t.tmp, 'plain.dump')
        subprocess.run(['pg_dump', '-Fc', '-f', dump] + su + ['-d', 'mastodon'], check=True)
        bdir = os.path.join(t.tmp, 'backups')
        conf = os.path.join(t.tmp, 'bench.conf')
        tok = os.path.join(t.tmp, 'tok')
        with open(tok, 'w') as f:
            f.write('x\n')
        os.chmod(tok, 0o600)
        with open(conf, 'w') as f:
            f.write('[matrix]\nhomeserver = http://127.0.0.1:1\nuser_id = @b:x\n'
                    'access_token_file = %s\nrooms = !r:x\nadmins = @a:x\n'
                    '[storage]\nstate_dir = %s/state\nbackup_dir = %s\n%s'
                    'restore_conninfo = host=%s port=%d dbname=mastodon user=postgres\n'
                    % (tok, t.tmp, bdir, pg.section('main'), pg.dir, pg.port))
        subprocess.run([BACKUPBOT, '-c', conf, 'backup', 'main'], check=True,
                       stdout=subprocess.DEVNULL)
        rows = []
        for i in range(2):
            db = 'peer%d' % i
            subprocess.run(['createdb'] + su + ['-T', 'template0', db], check=True)
            secs, _ = timed(['pg_restore', '-j', '2', '--exit-on-error'] + su + ['-d', db, dump])
            rows.append(('pg_restore -j 2 (-Fc file)', secs, None))
            secs, peak = timed([BACKUPBOT, '-c', conf, 'restore', 'main', 'latest', '--into',
                                'bb%d' % i, '--yes'])
            rows.append(('backupbot restore', secs, peak))
        print('\n%-30s %8s %9s %9s' % ('tool', 'wall', 'ratio', 'RSS'))
        best_peer = min(r[1] for r in rows if r[2] is None)
        best_bb = min(r[1] for r in rows if r[2] is not None)
        for label, secs, peak in rows:
            print('%-30s %7.2fs %9.2f %9s' % (label, secs, secs / best_peer,
                                            '%.1f MB' % (peak / 1024) if peak else '-'))
        print('\ndatabase %.0f MB; best of two: backupbot %.2fs, pg_restore %.2fs, ratio %.2f'
              % (dbsize / 1e6, best_bb, best_peer, best_bb / best_peer))
    finally:
        for fn in reversed(t.cleanups):
            fn()
        subprocess.run(['rm', '-rf', t.tmp])


if __name__ == '__main__':
    main()
