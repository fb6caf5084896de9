#!/usr/bin/python3
"""pg_backup.py - backupbot's PostgreSQL backup against the tools operators
use today, in the same run on the same database:

  pg_dump -Fc -f FILE          what most cron scripts do (zlib, one core)
  pg_dump -Fc -Z0 -f FILE      the floor: dumping with no compression
  backupbot backup             pg_dump -Z0 | zstd | BLAKE2b [| encrypt]

Reports wall time, output size, their ratios, and backupbot's own peak RSS
(VmHWM of the backupbot process; pg_dump's is the same in every row).

    pg_backup.py [SIZE_MB]     (default 1000: a ~1 GB Mastodon-like db)
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
import harness  # noqa: E402

BACKUPBOT = os.path.join(ROOT, 'backupbot')


def hwm(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(argv, env=None):
    """Run argv; wall seconds and the peak RSS (KB) of that process."""
    t0 = time.time()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while p.poll() is None:
        peak = max(peak, hwm(p.pid))
        time.sleep(0.02)
    err = p.stderr.read().decode(errors='replace')
    if p.returncode != 0:
        raise SystemExit('%s failed: %s' % (argv[0], err[-2000:]))
    return time.time() - t0, peak


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
        t0 = time.time()
        pg = harness.Postgres(t, size_mb=size_mb)
        dbsize = int(pg.psql("SELECT pg_database_size('mastodon')"))
        print('loaded %.0f MB in %.0fs' % (dbsize / 1e6, time.time() - t0))
        env = dict(os.environ, PGPASSFILE=os.path.join(t.tmp, 'pgpass'))
        pw = open(pg.password_file).read().strip().replace('\\', '\\\\').replace(':', '\\:')
        with open(env['PGPASSFILE'], 'w') as f:
            f.write('*:*:*:*:%s\n' % pw)
        os.chmod(env['PGPASSFILE'], 0o600)
        conn = ['-h', '127.0.0.1', '-p', str(pg.port), '-U', 'backup', '-d', 'mastodon']
        key = os.path.join(t.tmp, 'key')
        subprocess.run([BACKUPBOT, 'keygen', key], check=True, stdout=subprocess.DEVNULL)
        rows = []

        def file_size(path):
            return os.path.getsize(path)

        for label, extra in (('pg_dump -Fc', []), ('pg_dump -Fc -Z0 (floor)', ['-Z0'])):
            out = os.path.join(t.tmp, 'plain.dump')
            secs, _ = timed(['pg_dump', '-Fc'] + extra + ['-f', out] + conn, env=env)
            rows.append((label, secs, file_size(out), None))
            os.unlink(out)
        for label, keyline in (('backupbot (zstd)', ''),
                               ('backupbot (zstd + encryption)', 'encryption_key_file = %s\n' % key)):
            bdir = os.path.join(t.tmp, 'backups')
            subprocess.run(['rm', '-rf', bdir])
            conf = os.path.join(t.tmp, 'bench.conf')
            tok = os.path.join(t.tmp, 'tok')
            with open(tok, 'w') as f:
                f.write('x\n')
            os.chmod(tok, 0o600)
            with open(conf, 'w') as f:
                f.write('[matrix]\nhomeserver = http://127.0.0.1:1\nuser_id = @b:x\n'
                        'access_token_file = %s\nrooms = !r:x\nadmins = @a:x\n'
                        '[storage]\nstate_dir = %s/state\nbackup_dir = %s\n%s%s'
                        % (tok, t.tmp, bdir, keyline, pg.section('main')))
            secs, peak = timed([BACKUPBOT, '-c', conf, 'backup', 'main'])
            data = [x for x in os.listdir(os.path.join(bdir, 'main')) if not x.endswith('.json')][0]
            rows.append((label, secs, file_size(os.path.join(bdir, 'main', data)), peak))
        base_t, base_s = rows[0][1], rows[0][2]
        floor_t = rows[1][1]
        print('\n%-32s %8s %10s %9s %9s %9s %9s' % ('tool', 'wall', 'size', 'time/-Fc', 'size/-Fc',
                                                   'time/-Z0', 'RSS'))
        for label, secs, size, peak in rows:
            print('%-32s %7.2fs %8.1f MB %9.2f %9.2f %9.2f %9s' % (
                label, secs, size / 1e6, secs / base_t, size / base_s, secs / floor_t,
                '%.1f MB' % (peak / 1024) if peak else '-'))
        print('\ndatabase %.0f MB; aims: time/-Fc <= 0.25, size/-Fc <= 1.1, time/-Z0 <= 1.6, '
              'RSS < 16 MB' % (dbsize / 1e6))
    finally:
        for fn in reversed(t.cleanups):
            fn()
        subprocess.run(['rm', '-rf', t.tmp])


if __name__ == '__main__':
    main()
