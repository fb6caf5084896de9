"""fixtures.py - the two databases every PostgreSQL benchmark runs on, and
the shell pipeline that is the floor for what backupbot does.

  words   tests/pg/cluster.sh load: a 50-word vocabulary; its text
          compresses far better than real posts (-Fc keeps ~1/8)
  posts   tests/bench/posts.sql: an 8000-word Zipf vocabulary, hashtags,
          mentions, links and unique ids; -Fc keeps about a fifth, as on a
          real instance

Both live in one cluster, as databases `mastodon` and `posts`, of about
SIZE_MB each.
"""
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = (('words', 'mastodon'), ('posts', 'posts'))


def load(t, harness, size_mb):
    """A cluster with both databases; returns the harness' Postgres."""
    print('loading two ~%d MB Mastodon-like databases ...' % size_mb, flush=True)
    t0 = time.time()
    pg = harness.Postgres(t, size_mb=size_mb)
    pg.psql('CREATE DATABASE posts', db='postgres')
    subprocess.run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', 'n=%d' % (size_mb * 1000),
                    '-h', pg.dir, '-p', str(pg.port), '-U', 'postgres', '-d', 'posts',
                    '-f', os.path.join(HERE, 'posts.sql')],
                   check=True, stdout=subprocess.DEVNULL)
    for label, db in FIXTURES:
        print('  %-6s %5.0f MB' % (label, db_size(pg, db) / 1e6))
    print('loaded in %.0fs' % (time.time() - t0), flush=True)
    return pg


def db_size(pg, db):
    return int(pg.psql("SELECT pg_database_size('%s')" % db))


def section(pg, name, db, extra=''):
    """A [postgres NAME] section for database db."""
    return pg.section(name, extra).replace('dbname=%s ' % pg.db, 'dbname=%s ' % db)


def run_pipeline(argvs, env=None):
    """argvs[0] | argvs[1] | ... with every exit status checked, no shell;
    the last one's stdout is discarded.  Returns wall seconds."""
    t0 = time.time()
    procs, prev = [], None
    for i, argv in enumerate(argvs):
        last = i == len(argvs) - 1
        p = subprocess.Popen(argv, env=env, stdin=prev,
                             stdout=subprocess.DEVNULL if last else subprocess.PIPE)
        if prev is not None:
            prev.close()
        prev = p.stdout
        procs.append(p)
    for p in procs:
        p.wait()
    secs = time.time() - t0
    bad = [(a[0], p.returncode) for a, p in zip(argvs, procs) if p.returncode != 0]
    if bad:
        raise SystemExit('pipeline failed: %r' % bad)
    return secs


def real_pg_dump():
    """The newest /usr/lib/postgresql/N/bin/pg_dump (what Debian's
    pg_wrapper script ends up running), or plain pg_dump elsewhere."""
    base = '/usr/lib/postgresql'
    try:
        vers = sorted((d for d in os.listdir(base) if d.replace('.', '').isdigit()
                       and os.access(os.path.join(base, d, 'bin', 'pg_dump'), os.X_OK)),
                      key=lambda d: [int(x) for x in d.split('.')])
    except OSError:
        vers = []
    return os.path.join(base, vers[-1], 'bin', 'pg_dump') if vers else 'pg_dump'


def dump_floor(conn, env, pg_dump='pg_dump'):
    """`pg_dump -Fc -Z0 | zstd -3 | b2sum`: what backupbot does, in shell
    tools.  Wall seconds."""
    return run_pipeline([[pg_dump, '-Fc', '-Z0'] + conn, ['zstd', '-3', '-q', '-c'],
                         ['b2sum']], env=env)


def scratch():
    """A stand-in for the harness's Test: a temp dir (others may enter it,
    for the cluster's own user) and a list of cleanups."""
    import tempfile

    class T:
        pass
    t = T()
    t.tmp = tempfile.mkdtemp(prefix='bbbench-')
    os.chmod(t.tmp, 0o711)
    t.cleanups = []
    return t
