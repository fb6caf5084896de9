"""No silent loss of a job's result: a restore drill with hundreds of
differing tables produces a report of tens of KiB (each line longer than
the 8 KiB the daemon used to read); the daemon reads it whole and posts
it, the list capped with "… and N more"."""

import json
import os
import re
import subprocess

from harness import ALICE, BOB, BACKUPBOT, Postgres, check, test
from seclib import backup_dir, wait_body

TABLES = 300


@test
def a_20_kib_job_result_reaches_the_room(t):
    pg = Postgres(t, size_mb=1)
    pg.psql(';'.join('CREATE TABLE a_table_with_a_rather_long_name_for_the_report_%03d '
                     '(id int); INSERT INTO a_table_with_a_rather_long_name_for_the_report_%03d '
                     'VALUES (1)' % (i, i) for i in range(TABLES)))
    b = t.bot(admins=(ALICE, BOB))
    restorer = 'restore_conninfo = host=%s port=%d dbname=%s user=postgres\n' % (
        pg.dir, pg.port, pg.db)
    with open(b.conf) as f:
        conf = f.read()
    conf = conf[:conf.index('[storage]')]
    conf += '[storage]\nstate_dir = %s\nbackup_dir = %s\n\n%s' % (
        b.state_dir, backup_dir(t), pg.section('main', restorer))
    with open(b.conf, 'w') as f:
        f.write(conf)
    r = subprocess.run([BACKUPBOT, '-c', b.conf, 'backup', 'main'], capture_output=True,
                       text=True, timeout=300)
    check(r.returncode == 0, 'backup: %s%s' % (r.stdout, r.stderr))
    bid = re.search(r'(main-\d{8}T\d{6}Z)', r.stdout).group(1)
    # Every table "had" one row more when it was backed up: the drill
    # finds them all different.  (No key: the manifest is not MACed.)
    path = os.path.join(backup_dir(t), 'main', bid + '.json')
    m = json.load(open(path))
    for name in m['tables']:
        m['tables'][name] += 1
    json.dump(m, open(path, 'w'))
    # what the job itself reports, before any cap: tens of KiB
    r = subprocess.run([BACKUPBOT, '-c', b.conf, 'verify', bid], capture_output=True,
                       text=True, timeout=300)
    differs = [x for x in r.stdout.splitlines() if x.startswith('  differs: ')]
    check(r.returncode != 0 and len(differs) >= TABLES and
          sum(len(x) for x in differs) >= 20 * 1024,
          'the CLI drill: %d lines, %d bytes:\n%s' % (
              len(differs), sum(len(x) for x in differs), r.stderr[-2000:]))
    b.start()
    t.hs.send(t.room_id, ALICE, '!verify main %s' % bid)
    report = wait_body(t, 'restore drill', timeout=300)
    full = [x for x in report if '≠' in x]
    check(full, 'no report with its differences; the bot said: %r' % report)
    text = full[0]
    check('ended without a result' not in text and re.search(r'row counts differ in \d+ of', text),
          'report: %s' % text[:3000])
    # 100 shown: the line that carried them was over 8 KiB itself
    check(text.count('≠ table') == 100 and re.search(r'… and 20\d more', text),
          'the list is not shown capped: %s' % text[:3000])
    ledger = [json.loads(x) for x in open(os.path.join(b.state_dir, 'ledger.jsonl'))]
    check(not any('without a result' in json.dumps(x) for x in ledger), 'ledger: %r' % ledger)
