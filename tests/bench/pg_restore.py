#!/usr/bin/python3
"""pg_restore.py - backupbot's PostgreSQL restore against plain pg_restore,
in the same run, on both fixtures (fixtures.py: `words` and `posts`):

  createdb NEW; pg_restore -j 2 -d NEW FILE.dump
                                        a pg_dump -Fc file, into a new database
                                        (both timed: backupbot creates its
                                        database too)
  backupbot restore main latest --into NEW --yes
        hash check + zstd unpack to a file (format = custom, the default)
        or unpacked into a directory (format = directory), CREATE DATABASE,
        pg_restore -j 2 --exit-on-error, then an exact row count of every
        table compared with the manifest

ROUNDS rounds, the order alternating, each restore into a new database.
Reports the median and best wall time of each, the ratios to pg_restore,
backupbot's own peak RSS, and where backupbot's time goes (from its own
progress lines): checking and unpacking the backup (with pg_restore
--version and --list), CREATE DATABASE, pg_restore -j, counting rows;
and, as the floor of the check, `zstd -d | b2sum` of the backup file
(what checking and unpacking cost at the least).

BACKUPBOT_BASE=/path/to/backupbot adds that binary's two restores as
rows of their own (the same backups, restored by another build: a
before/after in one run).  Wall times on a shared VM vary by 20% from run to run; the median
of the ratios is the figure to read.

    pg_restore.py [SIZE_MB] [ROUNDS]     (default 100 MB each; 3 rounds)
"""
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pg_backup import BACKUPBOT, harness, hwm, timed  # noqa: E402
import fixtures  # noqa: E402

# backupbot's progress lines that start each phase, in order; a phase a
# binary does not print counts 0.
PHASES = (('check', ('checking ',)), ('create', ('creating database',)),
          ('restore', ('pg_restore --jobs',)), ('count', ('comparing the row counts',)))
BASE = os.environ.get('BACKUPBOT_BASE')


def timed_phases(argv):
    """Run backupbot; (wall, peak RSS KB, {phase: seconds})."""
    t0 = time.time()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    starts, lines = {}, []

    def read():
        for line in p.stdout:
            lines.append(line)
            for name, prefixes in PHASES:
                if line.startswith(prefixes) and name not in starts:
                    starts[name] = time.time() - t0
    th = threading.Thread(target=read)
    th.start()
    peak = 0
    while p.poll() is None:
        peak = max(peak, hwm(p.pid))
        time.sleep(0.02)
    th.join()
    wall = time.time() - t0
    if p.returncode != 0:
        raise SystemExit('%s failed: %s' % (argv[0], ''.join(lines)[-2000:]))
    # a phase lasts until the next one that happened
    found = sorted((starts[n], n) for n, _ in PHASES if n in starts) + [(wall, None)]
    ph = {n: 0.0 for n, _ in PHASES}
    for (at, n), (nxt, _) in zip(found, found[1:]):
        ph[n] = nxt - at
    return wall, peak, ph


def bench(t, pg, label, db, rounds):
    su = ['-h', pg.dir, '-p', str(pg.port), '-U', 'postgres']
    dump = os.path.join(t.tmp, 'plain.dump')
    subprocess.run(['pg_dump', '-Fc', '-f', dump] + su + ['-d', db], check=True)
    bdir = os.path.join(t.tmp, 'backups')
    subprocess.run(['rm', '-rf', bdir])
    conf = os.path.join(t.tmp, 'bench.conf')
    tok = os.path.join(t.tmp, 'tok')
    with open(tok, 'w') as f:
        f.write('x\n')
    os.chmod(tok, 0o600)
    restorer = 'restore_conninfo = host=%s port=%d dbname=%s user=postgres\n' % (
        pg.dir, pg.port, db)
    main_sec = fixtures.section(pg, 'main', db, restorer)
    dir_sec = main_sec.replace('[postgres main]', '[postgres maindir]')
    with open(conf, 'w') as f:
        f.write('[matrix]\nhomeserver = http://127.0.0.1:1\nuser_id = @b:x\n'
                'access_token_file = %s\nrooms = !r:x\nadmins = @a:x\n'
                '[storage]\nstate_dir = %s/state\nbackup_dir = %s\n%s\n%s'
                'format = directory\njobs = 2\n'
                % (tok, t.tmp, bdir, main_sec, dir_sec))
    for target in ('main', 'maindir'):
        subprocess.run([BACKUPBOT, '-c', conf, 'backup', target], check=True,
                       stdout=subprocess.DEVNULL)
    zst = [os.path.join(bdir, 'main', x) for x in os.listdir(os.path.join(bdir, 'main'))
           if x.endswith('.zst')][0]
    runs = {'peer': [], 'main': [], 'maindir': [], 'floor': [], 'createdb': []}
    peaks, phases = [], {'main': [], 'maindir': []}
    order = ['peer', 'main', 'maindir', 'floor']
    if BASE:
        runs.update({'base': [], 'basedir': []})
        phases.update({'base': [], 'basedir': []})
        order[2:2] = ['base', 'basedir']
    n = 0
    for i in range(rounds):
        for what in (order if i % 2 == 0 else order[::-1]):
            n += 1
            db_new = 'r%d' % n
            if what == 'floor':
                runs[what].append(fixtures.run_pipeline([['zstd', '-d', '-q', '-c', zst],
                                                         ['b2sum']]))
                continue
            if what == 'peer':
                # backupbot creates its database: so does the peer, timed
                made, _ = timed(['createdb'] + su + ['-T', 'template0', db_new])
                secs, _ = timed(['pg_restore', '-j', '2', '--exit-on-error'] + su
                                + ['-d', db_new, dump])
                runs['createdb'].append(made)
                secs += made
            else:
                binary, target = BACKUPBOT, what
                if what in ('base', 'basedir'):
                    binary, target = BASE, 'main' + what[4:]
                secs, peak, ph = timed_phases([binary, '-c', conf, 'restore', target,
                                               'latest', '--into', db_new, '--yes'])
                peaks.append(peak)
                phases[what].append(ph)
            runs[what].append(secs)
            subprocess.run(['dropdb'] + su + [db_new], check=True)
        print('round %d: %s' % (i + 1, ', '.join('%s %.2fs' % (k, v[-1])
                                                 for k, v in runs.items())), flush=True)

    peer_med = statistics.median(runs["peer"])
    print('\n%s (%.0f MB, -Fc %.0f MB)' % (label, fixtures.db_size(pg, db) / 1e6,
                                         os.path.getsize(dump) / 1e6))
    print('%-44s %8s %8s %8s %8s' % ('tool', 'median', 'best', 'ratio', 'RSS'))
    rows = [('peer', 'createdb NEW + pg_restore -j 2 -d NEW FILE'),
            ('main', 'backupbot restore (format = custom)'),
            ('maindir', 'backupbot restore (format = directory)')]
    if BASE:
        rows[1:1] = [('base', 'base backupbot (format = custom)'),
                     ('basedir', 'base backupbot (format = directory)')]
    for what, name in rows:
        med = statistics.median(runs[what])
        print('%-44s %7.2fs %7.2fs %8.2f %8s' % (
            name, med, min(runs[what]), med / peer_med,
            '-' if what == 'peer' else '%.1f MB' % (max(peaks) / 1024)))
    for what in phases:
        ph = {k: statistics.median(p[k] for p in phases[what]) for k, _ in PHASES}
        print('%-8s phases (median): check %.2fs, create %.2fs, pg_restore -j %.2fs, '
              'row counts %.2fs' % (what, ph['check'], ph['create'], ph['restore'], ph['count']))
    print('floor of check+unpack: zstd -d | b2sum of the backup: median %.2fs; the '
          "peer's createdb: median %.2fs" % (statistics.median(runs['floor']),
                                             statistics.median(runs['createdb'])))
    print('%s, %d rounds; median ratio: custom %.2f, directory %.2f%s' % (
        label, rounds, statistics.median(runs['main']) / peer_med,
        statistics.median(runs['maindir']) / peer_med,
        '; base: custom %.2f, directory %.2f' % (
            statistics.median(runs['base']) / peer_med,
            statistics.median(runs['basedir']) / peer_med) if BASE else ''), flush=True)


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3

    t = fixtures.scratch()
    try:
        pg = fixtures.load(t, harness, size_mb)
        for label, db in fixtures.FIXTURES:
            bench(t, pg, label, db, rounds)
    finally:
        for fn in reversed(t.cleanups):
            fn()
        subprocess.run(['rm', '-rf', t.tmp])


if __name__ == '__main__':
    main()
