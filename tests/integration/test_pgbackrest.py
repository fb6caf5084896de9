"""[pgbackrest NAME] targets: a real PostgreSQL 15 cluster archiving its WAL
with `pgbackrest archive-push` into two local repositories (two
"geographies"), backups full/diff/incr from the chat, a point-in-time
restore through the approval flow, the WAL archive's health, drills, and
a pgbackrest killed mid-backup."""
import glob
import json
import os
import pwd
import re
import signal
import subprocess
import time

from harness import (ALICE, BOB, BOT, CLUSTER, Postgres, TestFailure, check, rel, test)
from test_backup_chat import bodies, wait_body
from test_restore_chat import plan_of, react, restore_jobs


def server_user(pg):
    return pwd.getpwuid(os.stat(os.path.join(pg.dir, 'data')).st_uid).pw_name


def as_server(pg, argv, check_rc=True, timeout=300):
    if os.getuid() == 0:
        argv = ['runuser', '-u', server_user(pg), '--'] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise TestFailure('%s: %s%s' % (' '.join(argv), r.stdout, r.stderr))
    return r


def pg_bindir():
    return sorted(glob.glob('/usr/lib/postgresql/*/bin'))[-1]


class Backrest:
    """A cluster with archive_mode = on and two pgBackRest repositories."""

    def __init__(self, t, size_mb=2):
        self.t = t
        self.pg = pg = Postgres(t, size_mb=size_mb)
        self.dir = os.path.join(t.tmp, 'pgbr')
        self.conf = os.path.join(self.dir, 'pgbackrest.conf')
        self.restore_dir = os.path.join(t.tmp, 'restores')
        user = pwd.getpwnam(server_user(pg))
        for d in ('', 'repo1', 'repo2', 'log', 'lock', 'spool'):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
            os.chown(os.path.join(self.dir, d), user.pw_uid, user.pw_gid)
        with open(self.conf, 'w') as f:
            f.write('[global]\nrepo1-path=%s/repo1\nrepo2-path=%s/repo2\n'
                    'repo1-retention-full=4\nrepo2-retention-full=4\n'
                    'log-path=%s/log\nlock-path=%s/lock\nspool-path=%s/spool\n'
                    'start-fast=y\narchive-timeout=20\n\n'
                    '[main]\npg1-path=%s/data\npg1-port=%d\npg1-socket-path=%s\n'
                    % (self.dir, self.dir, self.dir, self.dir, self.dir, pg.dir,
                       pg.port, pg.dir))
        os.chown(self.conf, user.pw_uid, user.pw_gid)
        with open(os.path.join(pg.dir, 'data', 'postgresql.conf'), 'a') as f:
            f.write("\narchive_mode = on\narchive_command = 'pgbackrest --config=%s "
                    "--stanza=main archive-push %%p'\n" % self.conf)
        pg.stop()                       # and start again with archiving on
        r = subprocess.run(['bash', CLUSTER, 'start', pg.dir, str(pg.port)],
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, 'restart: %s%s' % (r.stdout, r.stderr))
        as_server(pg, ['pgbackrest', '--config=' + self.conf, '--stanza=main',
                       '--log-level-console=warn', 'stanza-create'])
        t.cleanups.append(self.stop_scratch)

    def section(self, extra='', name='main'):
        return ('[pgbackrest ' + name + ']\nstanza = main\nconfig = %s\n'
                'pg_conninfo = host=%s port=%d dbname=mastodon user=postgres\n'
                'repo = 1, 2\nkeep = full=3\npg_data = %s/data\nrestore_dir = %s\n%s\n'
                % (self.conf, self.pg.dir, self.pg.port, self.pg.dir, self.restore_dir,
                   extra))

    def bot(self, extra='', start=True):
        b = self.t.bot()
        with open(b.conf, 'a') as f:
            f.write('\n[restore]\napprovals_required = 1\n\n' + self.section(extra))
        if start:
            b.start()
        return b

    def scratch(self):
        if not os.path.isdir(self.restore_dir):
            return []
        return sorted(os.listdir(self.restore_dir))

    def stop_scratch(self):
        for d in self.scratch():
            p = os.path.join(self.restore_dir, d)
            if os.path.exists(os.path.join(p, 'postmaster.pid')):
                as_server(self.pg, [pg_bindir() + '/pg_ctl', '-D', p, '-m', 'immediate',
                                    'stop'], check_rc=False)

    def now(self):
        return self.pg.psql("SELECT to_char(now() AT TIME ZONE 'UTC', "
                            "'YYYY-MM-DD HH24:MI:SS') || '+00'")

    def time_between(self, before, after):
        """Run the SQL of before, note the time, run after, switch WAL: the
        time, a second clear of both (restore times have 1 s resolution)."""
        for sql in before:
            self.pg.psql(sql)
        time.sleep(1.1)
        target = self.now()
        time.sleep(1.1)
        for sql in after:
            self.pg.psql(sql)
        self.pg.psql('SELECT pg_switch_wal()')
        return target


def status_health(t, count):
    """The count-th !status answer once its health probe filled it in."""
    deadline = time.time() + 120
    while True:
        edits = [e['content']['m.new_content']['body'] for e in t.hs.events(t.room_id, sender=BOT)
                 if rel(e).get('rel_type') == 'm.replace'
                 and 'Health' in e['content']['m.new_content']['body']
                 and 'checking' not in e['content']['m.new_content']['body']]
        if len(edits) >= count:
            return edits[count - 1]
        check(time.time() < deadline, 'the status was never filled in: %r' % bodies(t))
        time.sleep(0.2)


def backup(t, kind, count=1):
    t.hs.send(t.room_id, ALICE, '!backup main %s' % kind)
    return wait_body(t, '✅ %s backup of main' % kind, timeout=180, count=count)[-1]


@test
def pgbackrest_full_diff_incr_then_pitr_before_new_rows(t):
    br = Backrest(t)
    b = br.bot()
    full = backup(t, 'full')
    for repo in ('repo1', 'repo2'):
        check(re.search(r'✓ %s: \d{8}-\d{6}F full' % repo, full), full)
    br.pg.psql('CREATE TABLE pitr (id int, phase text)')
    br.pg.psql("INSERT INTO pitr SELECT g, 'before' FROM generate_series(1, 50) g")
    diff = backup(t, 'diff')
    check(re.search(r'✓ repo1: \d{8}-\d{6}F_\d{8}-\d{6}D diff', diff), diff)
    br.pg.psql("INSERT INTO pitr SELECT g, 'before' FROM generate_series(51, 60) g")
    incr = backup(t, 'incr')
    check(re.search(r'✓ repo2: \d{8}-\d{6}F_\d{8}-\d{6}I incr', incr), incr)
    # the catalog: pgBackRest's sets, WAL ranges, the restorable window
    t.hs.send(t.room_id, ALICE, '!list main')
    listing = wait_body(t, 'restorable from')[0]
    for part in ('full in repo1', 'diff in repo2', 'incr in repo1', 'WAL in repo2:',
                 'full=3 retention'):
        check(part in listing, 'list lacks %r:\n%s' % (part, listing))
    # a time, then rows after it: a restore to that time must not have them
    target = br.time_between(
        ["INSERT INTO pitr SELECT g, 'before' FROM generate_series(61, 70) g"],
        ["INSERT INTO pitr SELECT g, 'after' FROM generate_series(71, 90) g"])
    t.hs.send(t.room_id, ALICE, "!restore main --time '%s'" % target)
    plan, req = plan_of(t)
    body = plan['content']['body']
    for part in ('pgBackRest set', target, 'pgbackrest restore into a new data directory',
                 'the live cluster is not touched'):
        check(part in body, 'plan lacks %r:\n%s' % (part, body))
    time.sleep(1)
    check(br.scratch() == [] and restore_jobs(b) == [], 'a restore ran before approval')
    react(t, BOB, plan['event_id'])
    done = wait_body(t, '✅ restore of main', timeout=240)[0]
    into = re.search(r'restored into (\S+)', done).group(1)
    port = int(re.search(r'psql -h \S+ -p (\d+)', done).group(1))
    check(into.startswith(br.restore_dir + '/main-restore-'), done)
    check('mastodon.public.pitr: 70 rows' in done, done)

    def scratch_sql(sql):
        return as_server(br.pg, ['psql', '-X', '-At', '-h', into, '-p', str(port), '-U',
                                 'postgres', '-d', 'mastodon', '-c', sql]).stdout.strip()
    check(scratch_sql("SELECT count(*) FROM pitr WHERE phase = 'after'") == '0',
          'rows written after the target are in the restored cluster')
    check(scratch_sql('SELECT count(*) FROM pitr') == '70', 'rows before the target are missing')
    check(br.pg.psql("SELECT count(*) FROM pitr WHERE phase = 'after'") == '20',
          'the live cluster lost rows')
    check(scratch_sql('SELECT pg_is_in_recovery()') == 'f', 'not promoted')
    b.stop()


@test
def pgbackrest_chat_arguments_stay_inside_restore_dir(t):
    br = Backrest(t)
    b = br.bot()
    backup(t, 'full')
    refusals = [
        ("!restore main --into ../../etc", 'needs a name'),
        ("!restore main --into /tmp/x", 'needs a name'),
        ("!restore main --time '2026-12-06 14:32:00'", 'UTC offset'),
        ("!restore main --time '2026-13-06 14:32:00+00'", 'UTC offset'),
        ("!restore main --time '2026-12-06 14:32:00+00; rm -rf /'", 'UTC offset'),
        ("!restore main --set ../../x", 'Not a pgBackRest backup set'),
        ("!restore main --replace", 'allow_replace'),
        ("!backup main weekly", 'full, diff or incr'),
    ]
    for cmd, why in refusals:
        t.hs.send(t.room_id, ALICE, cmd)
        wait_body(t, why)
    time.sleep(1)
    check(not os.path.exists(os.path.join(t.tmp, 'x')), 'a path from chat was used')
    check(br.scratch() == [] and restore_jobs(b) == [], 'a restore ran')
    check(not any('Restore request' in x for x in bodies(t)), 'a plan was made')


@test
def pgbackrest_stalled_archive_shows_in_status_and_alerts(t):
    br = Backrest(t)
    b = br.bot(extra='stale_after = 1m\n')
    backup(t, 'full')
    t.hs.send(t.room_id, ALICE, '!status main')
    ok = status_health(t, 1)
    check('pgbackrest check ok' in ok, ok)
    check('last WAL archived' in ok and 'WAL archive:' not in ok, ok)
    # archive_command now fails: backups may still look fine in the catalog
    br.pg.psql("ALTER SYSTEM SET archive_command = '/bin/false'", db='postgres')
    br.pg.psql('SELECT pg_reload_conf()', db='postgres')
    br.pg.psql('CREATE TABLE churn AS SELECT generate_series(1, 1000) g')
    br.pg.psql('SELECT pg_switch_wal()')
    deadline = time.time() + 60
    while br.pg.psql('SELECT failed_count FROM pg_stat_archiver') == '0':
        check(time.time() < deadline, 'archiving never failed')
        time.sleep(0.2)
    t.hs.send(t.room_id, ALICE, '!status main')
    bad = status_health(t, 2)
    check('⚠️ main: WAL archive:' in bad, bad)
    check('✗ pgbackrest check' in bad, bad)
    # the watch alerts without being asked, and resolves once it works
    alert = wait_body(t, '⏰ main: WAL archive', timeout=120)[0]
    check('point-in-time restores cannot reach' in alert, alert)
    br.pg.psql('ALTER SYSTEM RESET archive_command', db='postgres')
    br.pg.psql('SELECT pg_reload_conf()', db='postgres')
    wait_body(t, 'resolved: the WAL archive of main works again', timeout=120)
    b.stop()


@test
def pgbackrest_drill_restores_counts_and_removes(t):
    br = Backrest(t)
    b = br.bot()
    br.pg.psql('CREATE TABLE drilled AS SELECT generate_series(1, 123) g')
    backup(t, 'full')
    t.hs.send(t.room_id, ALICE, '!verify main')
    done = wait_body(t, '✅ restore drill of main', timeout=240)[0]
    check('mastodon.public.drilled: 123 rows' in done, done)
    check('stopped and removed' in done, done)
    check(br.scratch() == [], 'the scratch cluster is left: %r' % br.scratch())
    t.hs.send(t.room_id, ALICE, '!status main')
    health = status_health(t, 1)
    check('drill ✓' in health, health)
    runs = glob.glob(os.path.join(t.tmp, 'backups', 'main', '*.run.json'))
    check(any(json.load(open(p)).get('drill', {}).get('status') == 'ok' for p in runs),
          'drill not recorded')
    b.stop()


def pgbackrest_pids(conf):
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            cmd = open('/proc/%s/cmdline' % d, 'rb').read().split(b'\0')
        except OSError:
            continue
        if cmd and cmd[0].endswith(b'pgbackrest') and b'backup' in cmd and \
                ('--config=' + conf).encode() in cmd:
            out.append(int(d))
    return out


@test
def pgbackrest_killed_mid_backup_fails_then_next_works(t):
    br = Backrest(t, size_mb=40)
    b = br.bot()
    t.hs.send(t.room_id, ALICE, '!backup main full')
    deadline = time.time() + 60
    while not pgbackrest_pids(br.conf):
        check(time.time() < deadline, 'pgbackrest backup never started')
        time.sleep(0.05)
    time.sleep(0.5)
    for pid in pgbackrest_pids(br.conf):
        os.kill(pid, signal.SIGKILL)
    # repo1's run died; repo2's still ran: partial, with the cause
    failed = wait_body(t, 'full backup of main is only partial', timeout=180)[0]
    check('✗ repo1: pgbackrest backup killed by signal 9' in failed, failed)
    check('✓ repo2' in failed, failed)
    again = backup(t, 'full')
    check('✓ repo1' in again and '✓ repo2' in again, again)
    b.stop()


def cli_restore(conf, args, typed=None):
    """backupbot restore ARGS, its question answered with typed on a tty."""
    import pty
    argv = [os.environ.get('BACKUPBOT', './backupbot'), '-c', conf, 'restore'] + args
    if typed is None:
        return subprocess.run(argv, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    os.close(slave)
    os.write(master, (typed + '\n').encode())
    out, err = p.communicate(timeout=600)
    os.close(master)
    p.stdout_text = out + err
    return p


@test
def pgbackrest_replace_restores_in_place_after_the_stanza_is_typed(t):
    br = Backrest(t)
    conf = os.path.join(t.tmp, 'cli.conf')
    b = br.bot(start=False)
    with open(b.conf) as f:
        text = f.read().replace('[pgbackrest main]', '[pgbackrest live]')
    with open(conf, 'w') as f:
        f.write(text.replace('restore_dir =', 'allow_replace = yes\nrestore_dir ='))
    r = subprocess.run([os.environ.get('BACKUPBOT', './backupbot'), '-c', conf, 'backup',
                        'live', 'full'], capture_output=True, text=True, timeout=300)
    check(r.returncode == 0 and 'full backup' in r.stdout, r.stdout + r.stderr)
    target = br.time_between(
        ['CREATE TABLE kept AS SELECT generate_series(1, 40) g', 'SELECT pg_switch_wal()'],
        ['CREATE TABLE dropped AS SELECT generate_series(1, 5) g',
         'INSERT INTO kept SELECT generate_series(41, 50)'])
    args = ['live', 'latest', '--time', target, '--replace']
    # no terminal: no question, nothing done
    r = cli_restore(conf, args)
    check(r.returncode != 0 and 'non-terminal' in r.stderr, r.stderr)
    # the target's name is not the stanza's: refused
    p = cli_restore(conf, args, typed='live')
    check(p.returncode != 0 and 'Type the stanza name (main)' in p.stdout_text and
          'nothing done' in p.stdout_text, p.stdout_text)
    check(br.pg.psql('SELECT count(*) FROM kept') == '50', 'touched before the stanza was typed')
    p = cli_restore(conf, args, typed='main')
    check(p.returncode == 0, p.stdout_text)
    check(br.pg.psql('SELECT count(*) FROM kept') == '40', 'rows after the target survived')
    check(br.pg.psql("SELECT to_regclass('dropped') IS NULL") == 't', 'a later table survived')
    check(br.pg.psql('SELECT pg_is_in_recovery()') == 'f', 'the cluster is not promoted')
    check(br.scratch() == [] or all(x.endswith('.log') for x in br.scratch()), br.scratch())
    # a time no transaction reaches: recovery ends before it, the server
    # stops, and the restore says so at once (nothing is left behind)
    later = br.pg.psql("SELECT to_char((now() + interval '1 hour') AT TIME ZONE 'UTC', "
                       "'YYYY-MM-DD HH24:MI:SS') || '+00'")
    t0 = time.time()
    r = cli_restore(conf, ['live', 'latest', '--time', later, '--into', 'future', '--yes'])
    check(r.returncode != 0 and 'recovery ended before configured recovery target' in
          r.stdout + r.stderr, r.stdout + r.stderr)
    check(time.time() - t0 < 120, 'the failed recovery was waited for')
    check('future' not in br.scratch(), br.scratch())
