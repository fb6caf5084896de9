#!/usr/bin/python3
"""pgbackrest_bench.py - backupbot driving pgBackRest, against its peers,
in the same run on the same cluster, which holds both fixtures
(fixtures.py: `words` and `posts`, which compresses like real posts):

  backup   `pgbackrest backup --type=full|incr` by hand, against
           `backupbot backup bench full|incr` (the same pgbackrest run, plus
           backupbot's progress parsing and its `pgbackrest info` after);
           and backupbot's pg_dump backup of each database
  restore  `backupbot restore bench latest --time T` (pgbackrest restore
           into a new data directory, a scratch cluster started, recovery
           to T, promoted, every table counted), against `pg_restore -j 2`
           of a pg_dump -Fc file into a new database, and backupbot's own
           pg_dump restore, for each database

ROUNDS rounds, the order of hand and bot alternating; between a full and
its incr the same 1% of statuses is updated.  The machine is shared:
best and median of each, and the ratio of the bests.

    pgbackrest_bench.py [SIZE_MB] [ROUNDS]     (default 1000 MB, 3 rounds)
"""
import glob
import json
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pg_backup import BACKUPBOT, harness, timed  # noqa: E402
import fixtures  # noqa: E402

# a copy of the binary may be benchmarked while the tree is rebuilt
BACKUPBOT = os.environ.get('BACKUPBOT', BACKUPBOT)


def owner(pg):
    return pwd.getpwuid(os.stat(os.path.join(pg.dir, 'data')).st_uid)


def as_server(pg, argv):
    return (['runuser', '-u', owner(pg).pw_name, '--'] + argv) if os.getuid() == 0 else argv


def timed_out(argv):
    """Run argv; wall seconds and its stdout."""
    t0 = time.time()
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit('%s failed: %s' % (argv[0], (r.stdout + r.stderr)[-2000:]))
    return time.time() - t0, r.stdout


def tool_seconds(text):
    """pgBackRest's own duration of a backup, from its console log."""
    m = re.search(r'backup command end: completed successfully \((\d+)ms\)', text)
    return int(m.group(1)) / 1000.0 if m else float('nan')


def newest_run(tmp):
    runs = sorted(glob.glob(os.path.join(tmp, 'backups', 'bench', '*.run.json')))
    with open(runs[-1]) as f:
        return json.load(f)


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3

    t = fixtures.scratch()
    try:
        pg = fixtures.load(t, harness, size_mb)
        dbsize = sum(fixtures.db_size(pg, db) for _, db in fixtures.FIXTURES)
        u = owner(pg)
        br = os.path.join(t.tmp, 'pgbr')
        for d in ('', 'repo1', 'log', 'lock', 'restores'):
            os.makedirs(os.path.join(br, d), exist_ok=True)
            os.chown(os.path.join(br, d), u.pw_uid, u.pw_gid)
        conf = os.path.join(br, 'pgbackrest.conf')
        with open(conf, 'w') as f:
            f.write('[global]\nrepo1-path=%s/repo1\nrepo1-retention-full=%d\n'
                    'log-path=%s/log\nlock-path=%s/lock\nstart-fast=y\n'
                    'compress-type=zst\nprocess-max=2\nlog-level-file=off\n\n'
                    '[bench]\npg1-path=%s/data\npg1-port=%d\npg1-socket-path=%s\n'
                    % (br, rounds * 2 + 2, br, br, pg.dir, pg.port, pg.dir))
        os.chown(conf, u.pw_uid, u.pw_gid)
        with open(os.path.join(pg.dir, 'data', 'postgresql.conf'), 'a') as f:
            f.write("\narchive_mode = on\narchive_command = 'pgbackrest --config=%s "
                    "--stanza=bench archive-push %%p'\n" % conf)
        pg.stop()
        subprocess.run(['bash', harness.CLUSTER, 'start', pg.dir, str(pg.port)], check=True,
                       capture_output=True)
        subprocess.run(as_server(pg, ['pgbackrest', '--config=' + conf, '--stanza=bench',
                                      'stanza-create']), check=True, capture_output=True)
        tok = os.path.join(t.tmp, 'token')
        with open(tok, 'w') as f:
            f.write('x\n')
        os.chmod(tok, 0o600)
        bot = os.path.join(t.tmp, 'bot.conf')
        with open(bot, 'w') as f:
            f.write('[matrix]\nhomeserver = http://127.0.0.1:9\nuser_id = @b:x\n'
                    'access_token_file = %s\nrooms = !r:x\nadmins = @a:x, @c:x\n'
                    '[storage]\nstate_dir = %s/state\nbackup_dir = %s/backups\n'
                    '[pgbackrest bench]\nstanza = bench\nconfig = %s\nrepo = 1\n'
                    'pg_data = %s/data\nrestore_dir = %s/restores\n\n%s'
                    % (tok, t.tmp, t.tmp, conf, pg.dir, br,
                       ''.join(fixtures.section(pg, 'dump_' + label, db,
                                                'restore_conninfo = host=%s port=%d '
                                                'dbname=%s user=postgres\n'
                                                % (pg.dir, pg.port, db))
                               for label, db in fixtures.FIXTURES)))
        hand = as_server(pg, ['pgbackrest', '--config=' + conf, '--stanza=bench',
                              '--pg1-path=%s/data' % pg.dir, '--repo=1'])
        times = {k: [] for k in ('full hand', 'full bot', 'incr hand', 'incr bot')
                 + tuple('pg_dump bot ' + label for label, _ in fixtures.FIXTURES)}
        # wall time minus pgBackRest's own: the cost of whoever started it
        extra = {k: [] for k in ('full hand', 'full bot', 'incr hand', 'incr bot')}

        def change(r):
            pg.psql("UPDATE statuses SET text = text || '.' WHERE id %% 100 = %d" % r)
            pg.psql('CHECKPOINT')

        for r in range(rounds):
            order = ('hand', 'bot') if r % 2 == 0 else ('bot', 'hand')
            for who in order:
                for kind in ('full', 'incr'):
                    if kind == 'incr':
                        change(r)
                    if who == 'hand':
                        wall, out = timed_out(hand + ['--type=' + kind,
                                                      '--log-level-console=info', 'backup'])
                        tool = tool_seconds(out)
                    else:
                        wall, _ = timed([BACKUPBOT, '-c', bot, 'backup', 'bench', kind])
                        tool = newest_run(t.tmp)['repos']['repo1']['pgbackrest_duration']
                    times['%s %s' % (kind, who)].append(wall)
                    extra['%s %s' % (kind, who)].append(wall - tool)
                    print('  round %d %-4s %s: %.1fs (pgBackRest itself %.1fs)'
                          % (r + 1, kind, who, wall, tool), flush=True)
            for label, _ in fixtures.FIXTURES:
                wall, _ = timed([BACKUPBOT, '-c', bot, 'backup', 'dump_' + label])
                times['pg_dump bot ' + label].append(wall)
                print('  round %d pg_dump of %s via backupbot: %.1fs' % (r + 1, label, wall),
                      flush=True)

        # restores: PITR into a scratch cluster against pg_restore of a dump
        # (the cluster holds both fixtures: one PITR against both dumps)
        su = ['-h', pg.dir, '-p', str(pg.port), '-U', 'postgres']
        dumps = {}
        for label, db in fixtures.FIXTURES:
            dumps[label] = os.path.join(t.tmp, '%s.dump' % label)
            subprocess.run(['pg_dump', '-Fc', '-f', dumps[label]] + su + [db], check=True)
        target = pg.psql("SELECT to_char(now() AT TIME ZONE 'UTC', "
                         "'YYYY-MM-DD HH24:MI:SS') || '+00'")
        time.sleep(1.1)
        pg.psql('CREATE TABLE after_target AS SELECT 1 AS one')    # recovery stops here
        pg.psql('SELECT pg_switch_wal()')
        rtimes = {k: [] for k in ('PITR bot', 'pg_restore hand', 'pg_dump restore bot')}
        for r in range(min(rounds, 2)):
            into = 'pitr%d' % r
            wall, _ = timed([BACKUPBOT, '-c', bot, 'restore', 'bench', 'latest', '--time',
                             target, '--into', into, '--yes'])
            rtimes['PITR bot'].append(wall)
            scratch = os.path.join(br, 'restores', into)
            subprocess.run(as_server(pg, [pg_bindir() + '/pg_ctl', '-D', scratch, '-m',
                                          'immediate', 'stop']),
                           capture_output=True)
            shutil.rmtree(scratch, ignore_errors=True)
            hand_s = bot_s = 0.0
            for label, _ in fixtures.FIXTURES:
                db = 'plain%d_%s' % (r, label)
                t0 = time.time()
                pg.psql('CREATE DATABASE %s' % db, db='postgres')
                wall, _ = timed(['pg_restore', '-j', '2', '-d', db] + su + [dumps[label]])
                hand_s += time.time() - t0
                pg.psql('DROP DATABASE %s' % db, db='postgres')
                wall, _ = timed([BACKUPBOT, '-c', bot, 'restore', 'dump_' + label, 'latest',
                                 '--into', 'bot%d_%s' % (r, label), '--yes'])
                bot_s += wall
                pg.psql('DROP DATABASE bot%d_%s' % (r, label), db='postgres')
            rtimes['pg_restore hand'].append(hand_s)
            rtimes['pg_dump restore bot'].append(bot_s)
            print('  restore round %d: PITR %.1fs, pg_restore %.1fs, backupbot pg_dump '
                  'restore %.1fs' % (r + 1, rtimes['PITR bot'][-1],
                                     rtimes['pg_restore hand'][-1],
                                     rtimes['pg_dump restore bot'][-1]), flush=True)

        print('\ndatabases %.0f MB in all, %d rounds, best (median); restores of a dump '
              'are of both databases, one after the other:' % (dbsize / 1e6, rounds))
        for k, v in list(times.items()) + list(rtimes.items()):
            print('  %-22s %6.1fs (%6.1fs)' % (k, min(v), statistics.median(v)))
        for k, v in extra.items():
            print('  %-22s %6.2fs around pgBackRest (median; best %.2fs)'
                  % (k, statistics.median(v), min(v)))
        for kind in ('full', 'incr'):
            print('  %s: backupbot / by hand = %.3f (best), %.3f (median)'
                  % (kind, min(times[kind + ' bot']) / min(times[kind + ' hand']),
                     statistics.median(times[kind + ' bot']) /
                     statistics.median(times[kind + ' hand'])))
        dumped = sum(min(times['pg_dump bot ' + label]) for label, _ in fixtures.FIXTURES)
        print('  pgBackRest full / pg_dump via backupbot (both databases) = %.2f; '
              'incr / pg_dump = %.2f'
              % (min(times['full bot']) / dumped, min(times['incr bot']) / dumped))
        print('  PITR restore / pg_restore of a dump = %.2f'
              % (min(rtimes['PITR bot']) / min(rtimes['pg_restore hand'])))
    finally:
        for fn in reversed(t.cleanups):
            fn()
        shutil.rmtree(t.tmp, ignore_errors=True)


def pg_bindir():
    import glob
    return sorted(glob.glob('/usr/lib/postgresql/*/bin'))[-1]


if __name__ == '__main__':
    main()
