#!/usr/bin/python3
"""pg_backup.py - backupbot's PostgreSQL backup against the tools operators
use today, in the same run, on both fixtures (fixtures.py: `words`, whose
text compresses very well, and `posts`, which compresses like real posts):

  pg_dump -Fc -f FILE                 what most cron scripts do (zlib, one core)
  pg_dump -Fc -Z0 | zstd -3 | b2sum   the floor: what backupbot does, in
                                      shell tools
  the same, with /usr/lib/postgresql/N/bin/pg_dump
                                      the floor without Debian's pg_wrapper
                                      (a Perl script), which backupbot
                                      does not go through either
  backupbot backup                    pg_dump -Z0 | zstd | BLAKE2b,
                                      with threads = 0, 1 (zstd workers)

The machine is shared, so the runs are interleaved: every round runs each
tool once, in an order that alternates from round to round, and the best
of the rounds is reported (load hits every tool alike).  Reports wall
time, output size, their ratios, and backupbot's own peak RSS (VmHWM of
the backupbot process; pg_dump's is the same in every row), and
backupbot's fixed cost: a backup of an empty database against pg_dump of
it; and, from `backupbot backup --timings`, where backupbot's time goes
beside pg_dump and zstd (median of the rounds).

    pg_backup.py [SIZE_MB] [ROUNDS]    (default 100 MB each, 3 rounds)
"""
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
import harness  # noqa: E402
sys.path.insert(0, HERE)
import fixtures  # noqa: E402

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


def timed(argv, env=None, output=False):
    """Run argv; wall seconds and the peak RSS (KB) of that process (and
    its standard output, if asked).  The wall time is taken at the exit
    itself (wait); a thread samples VmHWM meanwhile."""
    t0 = time.time()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE if output else subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    peak = [0]

    def sample():
        while p.returncode is None:
            peak[0] = max(peak[0], hwm(p.pid))
            time.sleep(0.005)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = p.communicate()
    secs = time.time() - t0
    th.join()
    if p.returncode != 0:
        raise SystemExit('%s failed: %s' % (argv[0], err.decode(errors='replace')[-2000:]))
    return (secs, peak[0], out.decode(errors='replace')) if output else (secs, peak[0])


def backupbot_conf(t, pg, bdir):
    """A bench.conf with a target per fixture and per setting."""
    tok = os.path.join(t.tmp, 'tok')
    with open(tok, 'w') as f:
        f.write('x\n')
    os.chmod(tok, 0o600)
    body = ''
    for label, db in fixtures.FIXTURES + (('empty', 'empty'),):
        body += fixtures.section(pg, '%s_t0' % label, db, 'threads = 0\n')
        body += fixtures.section(pg, '%s_t1' % label, db, 'threads = 1\n')
    conf = os.path.join(t.tmp, 'bench.conf')
    with open(conf, 'w') as f:
        f.write('[matrix]\nhomeserver = http://127.0.0.1:1\nuser_id = @b:x\n'
                'access_token_file = %s\nrooms = !r:x\nadmins = @a:x\n'
                '[storage]\nstate_dir = %s/state\nbackup_dir = %s\n%s'
                % (tok, t.tmp, bdir, body))
    return conf


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3

    t = fixtures.scratch()
    try:
        pg = fixtures.load(t, harness, size_mb)
        pg.psql('CREATE DATABASE empty', db='postgres')
        env = dict(os.environ, PGPASSFILE=os.path.join(t.tmp, 'pgpass'))
        pw = open(pg.password_file).read().strip().replace('\\', '\\\\').replace(':', '\\:')
        with open(env['PGPASSFILE'], 'w') as f:
            f.write('*:*:*:*:%s\n' % pw)
        os.chmod(env['PGPASSFILE'], 0o600)
        bdir = os.path.join(t.tmp, 'backups')
        conf = backupbot_conf(t, pg, bdir)
        out = os.path.join(t.tmp, 'plain.dump')

        def conn(db):
            return ['-h', '127.0.0.1', '-p', str(pg.port), '-U', 'backup', '-d', db]

        def pg_dump_fc(db):
            secs, _ = timed(['pg_dump', '-Fc', '-f', out] + conn(db), env=env)
            size = os.path.getsize(out)
            os.unlink(out)
            return secs, size, 0

        def floor(db):
            return fixtures.dump_floor(conn(db), env), 0, 0

        real = fixtures.real_pg_dump()

        def floor_real(db):
            return fixtures.dump_floor(conn(db), env, real), 0, 0

        steps = {}

        def backupbot(target):
            secs, peak, out = timed([BACKUPBOT, '-c', conf, 'backup', target, '--timings'],
                                    output=True)
            for line in out.splitlines():
                if line.strip().startswith('timings (ms):'):
                    st = dict((k, float(v)) for k, v in (
                        x.split() for x in line.split(':', 1)[1].split(',')))
                    st['process start and exit'] = secs * 1000 - sum(st.values())
                    steps.setdefault(target, []).append(st)
            tdir = os.path.join(bdir, target)
            data = max((x for x in os.listdir(tdir) if not x.endswith('.json')),
                       key=lambda x: os.path.getmtime(os.path.join(tdir, x)))
            return secs, os.path.getsize(os.path.join(tdir, data)), peak

        tools = (('pg_dump -Fc', pg_dump_fc, '%s'),
                 ('pg_dump -Fc -Z0 | zstd -3 | b2sum', floor, '%s'),
                 ('the same, no pg_wrapper', floor_real, '%s'),
                 ('backupbot (zstd, threads = 0)', backupbot, '%s_t0'),
                 ('backupbot (zstd, threads = 1)', backupbot, '%s_t1'))
        for label, db in fixtures.FIXTURES + (('empty', 'empty'),):
            best = {}
            for i in range(rounds):
                order = tools if i % 2 == 0 else tools[::-1]
                for name, fn, arg in order:
                    r = fn(arg % (db if fn is not backupbot else label))
                    if name not in best or r[0] < best[name][0]:
                        best[name] = r
            base_t, base_s = best['pg_dump -Fc'][:2]
            floor_t = best['pg_dump -Fc -Z0 | zstd -3 | b2sum'][0]
            real_t = best['the same, no pg_wrapper'][0]
            print('\n%s (%.0f MB), best of %d interleaved rounds' % (
                label, fixtures.db_size(pg, db) / 1e6, rounds))
            print('%-36s %8s %10s %9s %9s %10s %10s %9s' % (
                'tool', 'wall', 'size', 'time/-Fc', 'size/-Fc', 'time/floor', '/floor(nw)', 'RSS'))
            for name, _, _ in tools:
                secs, size, peak = best[name]
                print('%-36s %7.2fs %8s %9.2f %9s %10.2f %10.2f %9s' % (
                    name, secs, '%.1f MB' % (size / 1e6) if size else '-', secs / base_t,
                    '%.2f' % (size / base_s) if size else '-', secs / floor_t, secs / real_t,
                    '%.1f MB' % (peak / 1024) if peak else '-'), flush=True)
            got = steps.get('%s_t0' % label, [])
            if got:
                print('backupbot (threads = 0), where the time goes (median ms of %d): %s' % (
                    len(got), ', '.join('%s %.0f' % (k, statistics.median(g[k] for g in got))
                                        for k in got[0])), flush=True)
        print('\naims: time/-Fc <= 0.2 at 1 GB, time/floor <= 1.1, size/-Fc <= 1.1, RSS < 16 MB;'
              '\n/floor(nw): against the pipeline run without Debian\'s pg_wrapper')
    finally:
        for fn in reversed(t.cleanups):
            fn()
        subprocess.run(['rm', '-rf', t.tmp])


if __name__ == '__main__':
    main()
