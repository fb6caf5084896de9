"""PostgreSQL restores from the shell: `backupbot restore` into a new
database, --replace swapping names, and the restore drill of `backupbot
verify`, against a real cluster (tests/pg/cluster.sh).

The cluster is shaped like a real instance: the Mastodon tables and their
database belong to a role "mastodon"; the backup role may create
databases and is a member of "mastodon", so that a restore can give every
object back to its owner.  A restore must never write over a database,
must leave nothing half-done behind (a failed restore's database is
dropped, a drill's scratch database always), and --replace must only
swap names after the restored data proved equal to the manifest.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

from harness import BACKUPBOT, TestFailure, check, test
from test_backup_cli import (backup_ok, bb, check_no_leftovers, check_tmpdir_clean,
                             live_counts, ls, manifest, pg_section, pgrep, start_pg,
                             tmpdir, wait_no_process, write, wrapper, write_conf)

# Many replies and progress edits per test: the test homeserver's
# Synapse-like rc_message rate limit (0.2/s, burst 10) is off here; the
# protocol tests keep it on.
HS_RATE_LIMIT = False

REAL_PG_RESTORE = shutil.which('pg_restore') or '/usr/bin/pg_restore'
STAMP_MIN = r'\d{12}'          # YYYYmmddHHMM
STAMP_SEC = r'\d{14}'          # YYYYmmddHHMMSS


# ---- helpers ----------------------------------------------------------

def owned_by_mastodon(pg, owners=True):
    """Give the database and its tables to role mastodon (as on a real
    instance); the backup role may create databases, and with owners it
    is a member of mastodon."""
    pg.psql("CREATE ROLE mastodon LOGIN", db='postgres')
    pg.psql('ALTER DATABASE %s OWNER TO mastodon' % pg.db, db='postgres')
    for tb in pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").split():
        pg.psql('ALTER TABLE public.%s OWNER TO mastodon' % tb)
    pg.psql('ALTER ROLE backup CREATEDB', db='postgres')
    if owners:
        pg.psql('GRANT mastodon TO backup', db='postgres')


def setup(t, size_mb=1, extra='', owners=True, sections=None):
    pg = start_pg(t, size_mb)
    owned_by_mastodon(pg, owners)
    bdir = os.path.join(t.tmp, 'backups')
    body = pg_section(pg, 'main', extra=extra) + (sections(pg) if sections else '')
    conf = write_conf(t, 'bb.conf', bdir, body=body)
    return pg, bdir, conf


def databases(pg):
    return sorted(pg.psql('SELECT datname FROM pg_database WHERE NOT datistemplate',
                          db='postgres').split())


def change_live(pg):
    """What happened after the backup: rows gone, rows changed, a row added."""
    pg.psql('DELETE FROM statuses WHERE id % 3 = 0')
    pg.psql("UPDATE accounts SET display_name = 'changed' WHERE id < 5")
    pg.psql("INSERT INTO follows (id, account_id, target_account_id, created_at) "
            "VALUES (999999, 1, 2, now())")


def restore(t, conf, *args, timeout=300):
    return bb(t, conf, 'restore', *args, '--yes', timeout=timeout)


def restore_ok(t, conf, *args):
    r = restore(t, conf, *args)
    check(r.rc == 0 and re.search(r'^ok main: main-\S+: restore into \S+, good', r.out, re.M),
          'restore %s should succeed:\n%s' % (' '.join(args), r))
    check('differs:' not in r.out, 'a good restore lists differences:\n%s' % r)
    return r


def restore_fails(t, conf, *args, cause):
    r = restore(t, conf, *args)
    check(r.rc == 1 and re.search(r'^FAILED main: ', r.out, re.M),
          'restore %s should fail with exit 1:\n%s' % (' '.join(args), r))
    check(re.search(cause, r.text), 'restore %s: %r not in the output:\n%s'
          % (' '.join(args), cause, r))
    check(not re.search(r'^ok ', r.out, re.M), 'a failed restore printed ok:\n%s' % r)
    check(not re.search(r'with \d+ errors', r.text), 'errors counted, not failed:\n%s' % r)
    return r


def owners(pg, db):
    return pg.psql("SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables "
                   "WHERE schemaname = 'public'", db=db)


def db_owner(pg, db):
    return pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '%s'" % db,
                   db='postgres')


def check_clean(t, bdir, what):
    check_no_leftovers(os.path.join(bdir, 'main'), what)
    check_tmpdir_clean(t, what)


def set_manifest_count(bdir, bid, table, delta):
    path = os.path.join(bdir, 'main', bid + '.json')
    m = manifest(bdir, 'main', bid)
    m['tables'][table] += delta
    write(path, json.dumps(m, indent=1).encode())


def restore_wrapper(t, name, body):
    """A pg_restore wrapper: --version and --list reach the real one;
    the restore itself runs body (with $REAL set)."""
    return wrapper(t, name, 'REAL=%s\n'
                   'for a in "$@"; do case "$a" in --version|--list) exec "$REAL" "$@";; esac; done\n'
                   '%s' % (REAL_PG_RESTORE, body))


# ---- 1. round trip ------------------------------------------------------

@test
def restore_round_trip_into_a_new_database(t):
    pg, bdir, conf = setup(t, 2, sections=lambda pg: pg_section(
        pg, 'dir', extra='format = directory\njobs = 2\nrestore_jobs = 3'))
    source = pg.fingerprint()
    counts = live_counts(pg)
    bid = backup_ok(t, conf, 'main')
    change_live(pg)
    changed = pg.fingerprint()
    check(changed != source, 'the change did not change the fingerprint')
    before = databases(pg)

    t0 = time.gmtime()
    r = restore_ok(t, conf, 'main', 'latest')
    into = re.search(r'restore into (\S+), good', r.out).group(1)
    check(re.fullmatch(r'main_restore_' + STAMP_MIN, into), 'default name: %r' % into)
    check(into[len('main_restore_'):] >= time.strftime('%Y%m%d%H%M', t0),
          'the default name is not the time of the restore: %r' % into)
    check('(5 compared with the manifest)' in r.out, 'no comparison in:\n%s' % r)
    check(databases(pg) == sorted(before + [into]), 'databases: %r' % databases(pg))
    check(pg.fingerprint(into) == source, 'restored data differs from the backup:\n%r\n%r'
          % (pg.fingerprint(into), source))
    check(live_counts(pg, into) == counts, 'restored counts %r' % live_counts(pg, into))
    check(pg.fingerprint() == changed, 'the live database was touched by the restore')
    # owners as in the source: the database and every table
    check(owners(pg, into) == 'mastodon' and db_owner(pg, into) == 'mastodon',
          'owners of the restored database: %r, %r' % (owners(pg, into), db_owner(pg, into)))
    check(pg.psql("SELECT datcollate || ' ' || pg_encoding_to_char(encoding) FROM pg_database "
                  "WHERE datname = '%s'" % into, db='postgres') ==
          pg.psql("SELECT datcollate || ' ' || pg_encoding_to_char(encoding) FROM pg_database "
                  "WHERE datname = '%s'" % pg.db, db='postgres'), 'locale or encoding differ')
    check_clean(t, bdir, 'restore')

    # the directory format (a tar of pg_dump -Fd), with --into
    did = backup_ok(t, conf, 'dir')
    check(manifest(bdir, 'dir', did).get('container') == 'tar', 'dir backup is not a tar')
    r = restore(t, conf, 'dir', did, '--into', 'copy_of_dir')
    check(r.rc == 0 and re.search(r'^ok dir: %s: restore into copy_of_dir, good' % did, r.out,
                                  re.M), 'restore of the directory format:\n%s' % r)
    check(pg.fingerprint('copy_of_dir') == changed, 'directory-format restore differs')
    check_no_leftovers(os.path.join(bdir, 'dir'), 'directory restore')
    check(ls(os.path.join(bdir, 'dir')) == sorted([did + '.json', did + '.dump.zst']),
          'files left in dir/: %r' % ls(os.path.join(bdir, 'dir')))
    check_tmpdir_clean(t, 'directory restore')
    # nothing but bbtest's own sessions are left on the new databases
    left = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname IN ('%s', 'copy_of_dir')"
                   % into, db='postgres')
    check(left == '0', 'sessions left on the restored databases: %s' % left)


# ---- 2. --replace ---------------------------------------------------------

@test
def replace_swaps_names_and_keeps_the_old_database(t):
    pg, bdir, conf = setup(t, 1, extra='allow_replace = yes', sections=lambda pg: pg_section(
        pg, 'locked', extra=''))
    source = pg.fingerprint()
    bid = backup_ok(t, conf, 'main')
    change_live(pg)
    changed = pg.fingerprint()

    # without allow_replace: refused before anything happens
    before = databases(pg)
    r = restore(t, conf, 'locked', 'latest', '--replace')
    check(r.rc == 2 and 'allow_replace = yes' in r.err, '--replace without allow_replace:\n%s' % r)
    check(databases(pg) == before and pg.fingerprint() == changed,
          'a refused --replace changed something: %r' % databases(pg))

    # an application session on the live database (role mastodon)
    app = subprocess.Popen(['psql', '-X', '-q', '-h', pg.dir, '-p', str(pg.port), '-U', 'mastodon',
                            '-d', pg.db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    t.cleanups.append(lambda: app.poll() is None and app.kill())
    app.stdin.write('SELECT 1;\n')
    app.stdin.flush()
    deadline = time.time() + 10
    while pg.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'mastodon'",
                  db='postgres') != '1' and time.time() < deadline:
        time.sleep(0.05)

    r = restore(t, conf, 'main', bid, '--replace')
    check(r.rc == 0 and re.search(r'^ok main: %s: restore into %s, good' % (bid, pg.db), r.out,
                                  re.M), '--replace:\n%s' % r)
    m = re.search(r'kept the old database as (%s_before_restore_%s)$' % (pg.db, STAMP_SEC), r.out,
                  re.M)
    check(m, 'no "kept the old database as" note:\n%s' % r)
    old = m.group(1)
    check(pg.fingerprint() == source, 'the live database does not hold the backup\'s data')
    check(pg.fingerprint(old) == changed, 'the kept database is not the one before the restore')
    check(databases(pg) == sorted(before + [old]),
          'databases after --replace: %r (before %r)' % (databases(pg), before))
    check(owners(pg, pg.db) == 'mastodon' and db_owner(pg, pg.db) == 'mastodon',
          'owners after --replace: %r %r' % (owners(pg, pg.db), db_owner(pg, pg.db)))
    check(pg.psql("SELECT string_agg(datname || '=' || datallowconn, ',' ORDER BY datname) "
                  "FROM pg_database WHERE datname IN ('%s', '%s')" % (pg.db, old), db='postgres')
          == '%s=true,%s=true' % tuple(sorted([pg.db, old])),
          'both databases must take connections again')
    # the application's session was ended for the swap
    try:
        app.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    app.stdin = None
    check(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'mastodon'",
                  db='postgres') == '0', 'the application session survived the swap')
    check_clean(t, bdir, '--replace')

    # twice in a row: the second swap keeps the first restore's database
    r = restore(t, conf, 'main', bid, '--replace')
    check(r.rc == 0, 'second --replace:\n%s' % r)
    kept = [d for d in databases(pg) if d.startswith(pg.db + '_before_restore_')]
    check(len(kept) == 2 and old in kept and pg.fingerprint(old) == changed,
          'kept databases after a second --replace: %r\n%s' % (kept, r))
    check(pg.fingerprint() == source, 'the second --replace lost the data')


@test
def replace_that_cannot_end_a_session_swaps_nothing(t):
    # A superuser's session on the live database: the backup role may not
    # end it, so the live database cannot be renamed.  Nothing is swapped,
    # the live database takes connections again, the restored copy stays.
    pg, bdir, conf = setup(t, 1, extra='allow_replace = yes')
    backup_ok(t, conf, 'main')
    change_live(pg)
    live = pg.fingerprint()
    before = databases(pg)
    su = subprocess.Popen(['psql', '-X', '-q', '-h', pg.dir, '-p', str(pg.port), '-U', 'postgres',
                           '-d', pg.db], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, text=True)
    t.cleanups.append(lambda: su.poll() is None and su.kill())
    su.stdin.write('SELECT 1;\n')
    su.stdin.flush()
    deadline = time.time() + 10
    while pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND usename = "
                  "'postgres' AND pid <> pg_backend_pid()" % pg.db, db='postgres') != '1':
        check(time.time() < deadline, 'the superuser session did not start')
        time.sleep(0.05)

    r = restore_fails(t, conf, 'main', 'latest', '--replace',
                      cause=r'cannot rename %s to %s_before_restore_%s: .*being accessed by other '
                      r'users' % (pg.db, pg.db, STAMP_SEC))
    m = re.search(r'the restored database (main_restore_%s) is kept' % STAMP_MIN, r.out)
    check(m, 'the cause does not name the restored copy:\n%s' % r)
    check(databases(pg) == sorted(before + [m.group(1)]), 'databases: %r' % databases(pg))
    check(pg.fingerprint() == live, 'the live database changed')
    check(pg.psql("SELECT datallowconn FROM pg_database WHERE datname = '%s'" % pg.db,
                  db='postgres') == 't', 'the live database does not take connections again')
    su.stdin.close()
    su.wait(timeout=10)


# ---- 3. an existing database ----------------------------------------------

@test
def restore_into_an_existing_database_is_refused(t):
    pg, bdir, conf = setup(t, 1)
    backup_ok(t, conf, 'main')
    pg.psql('CREATE DATABASE taken', db='postgres')
    pg.psql('CREATE TABLE keep_me (x int); INSERT INTO keep_me VALUES (42)', db='taken')
    before, live, taken = databases(pg), pg.fingerprint(), pg.fingerprint('taken')

    for name in ('taken', pg.db):
        restore_fails(t, conf, 'main', 'latest', '--into', name,
                      cause=r'database %s already exists; a restore never writes over a database'
                      % name)
    check(databases(pg) == before, 'databases changed: %r -> %r' % (before, databases(pg)))
    check(pg.fingerprint('taken') == taken and pg.fingerprint() == live,
          'an existing database was touched')
    check_clean(t, bdir, 'refused')


# ---- 4. pg_restore fails -------------------------------------------------

@test
def pg_restore_error_fails_and_drops_the_new_database(t):
    pg = start_pg(t, 1)
    owned_by_mastodon(pg)
    # The real pg_restore fills the database, then an error is reported.
    w = restore_wrapper(t, 'bin/pg_restore',
                        '"$REAL" "$@" || exit\n'
                        'echo "pg_restore: error: could not execute query: ERROR:  disk full '
                        '(simulated)" >&2\necho "Command was: CREATE INDEX x" >&2\nexit 1\n')
    bdir = os.path.join(t.tmp, 'backups')
    conf = write_conf(t, 'bb.conf', bdir, body=pg_section(pg, 'main', extra='pg_restore = %s' % w))
    backup_ok(t, conf, 'main')
    before = databases(pg)
    r = restore_fails(t, conf, 'main', 'latest', '--into', 'half',
                      cause=r'pg_restore exited with status 1: .*disk full \(simulated\)')
    check('Command was: CREATE INDEX x' in r.out, 'stderr tail not in the cause:\n%s' % r)
    check('dropped the new database half' in r.out, 'the cause does not say it was dropped:\n%s'
          % r)
    check(databases(pg) == before, 'databases after a failed restore: %r' % databases(pg))
    check_clean(t, bdir, 'failed restore')

    # A real error from the server: the backup role may not own the
    # tables' owner's objects any more.
    pg.psql('REVOKE mastodon FROM backup', db='postgres')
    conf2 = write_conf(t, 'bb2.conf', bdir, body=pg_section(pg, 'main'))
    r = restore_fails(t, conf2, 'main', 'latest', '--into', 'noperm',
                      cause=r'(?s)cannot create database noperm|pg_restore exited')
    check('superuser or a member of the owning roles' in r.out and 'restore_conninfo' in r.out,
          'no hint about the role:\n%s' % r)
    check(databases(pg) == before, 'databases after a refused restore: %r' % databases(pg))


# ---- 5. row counts differ ---------------------------------------------------

@test
def row_count_difference_fails_and_replace_does_not_swap(t):
    pg, bdir, conf = setup(t, 1, extra='allow_replace = yes')
    bid = backup_ok(t, conf, 'main')
    # The manifest is not hashed, only the data: make it disagree.
    set_manifest_count(bdir, bid, 'public.accounts', 1)
    set_manifest_count(bdir, bid, 'public.follows', -2)
    change_live(pg)
    live = pg.fingerprint()
    before = databases(pg)

    r = restore_fails(t, conf, 'main', bid, '--into', 'looked_at',
                      cause=r'row counts differ in 2 of 5 tables')
    check(re.search(r'^  differs: table public\.accounts: (\d+) rows in the backup, (\d+) '
                    r'restored$', r.out, re.M), 'no difference line for accounts:\n%s' % r)
    check(re.search(r'^  differs: table public\.follows: ', r.out, re.M),
          'no difference line for follows:\n%s' % r)
    check('(5 compared with the manifest)' in r.out, 'compared count:\n%s' % r)
    check('looked_at is kept' in r.out, 'the cause does not say the database is kept:\n%s' % r)
    check(databases(pg) == sorted(before + ['looked_at']), 'databases: %r' % databases(pg))
    pg.psql('DROP DATABASE looked_at', db='postgres')

    r = restore_fails(t, conf, 'main', bid, '--replace', cause=r'row counts differ in 2 of 5')
    check(pg.fingerprint() == live, '--replace swapped although the counts differ')
    check(not any('_before_restore_' in d for d in databases(pg)),
          'a database was renamed: %r' % databases(pg))
    check_clean(t, bdir, 'count mismatch')


# ---- 6. the restore drill ---------------------------------------------------

@test
def verify_drill_uses_a_scratch_database_and_drops_it(t):
    # The drill restores without owners: CREATEDB is all the role needs.
    pg, bdir, conf = setup(t, 1, owners=False)
    bid = backup_ok(t, conf, 'main')
    live, before = pg.fingerprint(), databases(pg)
    log = os.path.join(pg.dir, 'postgres.log')
    pg.psql("ALTER SYSTEM SET log_statement = 'ddl'", db='postgres')
    pg.psql('SELECT pg_reload_conf()', db='postgres')

    # without CREATEDB the drill says what the role lacks
    pg.psql('ALTER ROLE backup NOCREATEDB', db='postgres')
    r = bb(t, conf, 'verify', 'main', 'latest')
    check(r.rc == 1 and 'backup needs CREATEDB: ALTER ROLE backup CREATEDB' in r.out,
          'drill without CREATEDB:\n%s' % r)
    check(databases(pg) == before, 'databases after a drill without CREATEDB: %r'
          % databases(pg))
    pg.psql('ALTER ROLE backup CREATEDB', db='postgres')

    r = bb(t, conf, 'verify', 'main', 'latest')
    check(r.rc == 0 and re.search(r'^ok main: %s: restore drill into bbdrill_main_%s, good'
                                  % (bid, STAMP_SEC), r.out, re.M), 'verify:\n%s' % r)
    check('(5 compared with the manifest)' in r.out, 'compared count:\n%s' % r)
    check(re.search(r'^  scratch database bbdrill_main_%s dropped$' % STAMP_SEC, r.out, re.M),
          'no note about the scratch database:\n%s' % r)
    check(databases(pg) == before, 'databases after the drill: %r' % databases(pg))
    check(pg.fingerprint() == live, 'the drill touched the live database')
    with open(log) as f:
        ddl = f.read()
    check(re.search(r'CREATE DATABASE "?bbdrill_main_', ddl) and
          re.search(r'DROP DATABASE "?bbdrill_main_', ddl),
          'the server log shows no scratch database created and dropped')
    check(not re.search(r'(ALTER|DROP) DATABASE "?%s"? ' % pg.db, ddl),
          'the drill altered the live database:\n%s' % ddl[-2000:])
    check_clean(t, bdir, 'drill')

    # a drill that finds a difference fails, and still drops its copy
    set_manifest_count(bdir, bid, 'public.statuses', 5)
    r = bb(t, conf, 'verify', 'main', bid)
    check(r.rc == 1 and re.search(r'^FAILED main: %s: restore drill: row counts differ in 1 of 5'
                                  % bid, r.out, re.M), 'failing drill:\n%s' % r)
    check(re.search(r'^  differs: table public\.statuses: ', r.out, re.M), 'differs:\n%s' % r)
    check('kept' not in r.out and re.search(r'^  scratch database bbdrill_main_%s dropped$'
                                             % STAMP_SEC, r.out, re.M),
          'the failed drill does not say its scratch copy is gone:\n%s' % r)
    check(databases(pg) == before, 'databases after a failed drill: %r' % databases(pg))

    # so does a drill whose pg_restore fails
    set_manifest_count(bdir, bid, 'public.statuses', -5)
    w = restore_wrapper(t, 'bin/pg_restore', '"$REAL" "$@"\necho "pg_restore: error: boom" >&2\n'
                        'exit 1\n')
    conf2 = write_conf(t, 'bb2.conf', bdir, body=pg_section(pg, 'main', extra='pg_restore = %s'
                                                            % w))
    r = bb(t, conf2, 'verify', 'main', bid)
    check(r.rc == 1 and 'pg_restore: error: boom' in r.out, 'drill with a failing pg_restore:\n%s'
          % r)
    check(databases(pg) == before, 'databases after a drill whose restore failed: %r'
          % databases(pg))
    check(pg.fingerprint() == live, 'the drills touched the live database')


# ---- 7. a pg_restore older than the archive -------------------------------

@test
def old_pg_restore_is_named_plainly(t):
    pg = start_pg(t, 1)
    owned_by_mastodon(pg)
    old = wrapper(t, 'old/pg_restore',
                  'for a in "$@"; do [ "$a" = --version ] && '
                  'echo "pg_restore (PostgreSQL) 13.0" && exit 0; done\n'
                  'echo "pg_restore: error: unsupported version (1.14) in file header" >&2\n'
                  'exit 1\n')
    bdir = os.path.join(t.tmp, 'backups')
    conf = write_conf(t, 'bb.conf', bdir, body=pg_section(pg, 'main', extra='pg_restore = %s'
                                                          % old))
    bid = backup_ok(t, conf, 'main')
    dump = manifest(bdir, 'main', bid)['pg_dump_version']
    major = dump.split('.')[0]
    before = databases(pg)
    for args in (('restore', 'main', 'latest', '--yes'), ('verify', 'main', 'latest')):
        r = bb(t, conf, *args)
        want = ('pg_restore 13.0 cannot read this archive (made by pg_dump %s); install '
                'postgresql-client-%s or set pg_restore = /usr/lib/postgresql/%s/bin/pg_restore '
                'in [postgres main]' % (dump, major, major))
        check(r.rc == 1 and want in r.out, '%s with an old pg_restore:\n%s\nwant: %s'
              % (args[0], r, want))
        check('dropped' not in r.out, 'something was created first:\n%s' % r)
        check(databases(pg) == before, 'databases: %r' % databases(pg))


# ---- 8. Ctrl-C during pg_restore -------------------------------------------

@test
def cancelled_restore_stops_pg_restore_and_drops_the_database(t):
    pg = start_pg(t, 1)
    owned_by_mastodon(pg)
    marker = 'bbslowrestore' + uuid.uuid4().hex[:8]
    mdir = os.path.join(t.tmp, marker)
    os.makedirs(mdir)
    os.symlink(shutil.which('sleep'), os.path.join(mdir, 'sleep'))
    w = restore_wrapper(t, marker + '/pg_restore', '"$REAL" "$@" || exit\n"%s/sleep" 30\n' % mdir)
    bdir = os.path.join(t.tmp, 'backups')
    conf = write_conf(t, 'bb.conf', bdir, body=pg_section(pg, 'main', extra='pg_restore = %s' % w))
    t.cleanups.append(lambda: subprocess.run(['pkill', '-9', '-f', marker]))
    backup_ok(t, conf, 'main')
    before = databases(pg)

    p = subprocess.Popen([BACKUPBOT, '-c', conf, 'restore', 'main', 'latest', '--into', 'stopped',
                          '--yes'], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True,
                         env=dict(os.environ, TMPDIR=tmpdir(t)))
    deadline = time.time() + 60
    while '/sleep 30' not in pgrep(marker + '/sleep') and time.time() < deadline:
        if p.poll() is not None:
            raise TestFailure('backupbot ended before the sleep: %r' % (p.communicate(),))
        time.sleep(0.05)
    check('stopped' in databases(pg), 'the restore did not create its database')
    os.kill(p.pid, signal.SIGINT)
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise TestFailure('backupbot did not stop within 20s of SIGINT')
    out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    check(p.returncode == 1 and 'cancelled' in out + err,
          'exit %s after SIGINT:\n%s\n%s' % (p.returncode, out, err))
    check('dropped the new database stopped' in out, 'not dropped:\n%s\n%s' % (out, err))
    left = wait_no_process(marker)
    check(not left, 'processes left behind by the cancelled restore:\n%s' % left)
    check(databases(pg) == before, 'databases after the cancel: %r' % databases(pg))
    check_clean(t, bdir, 'cancelled restore')
