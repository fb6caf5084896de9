"""seclib.py - what the security tests share: a bot.conf with a files
target and a local-directory remote, backupbot runs, manifests."""

import json
import os
import re

from harness import BOT_TOKEN, check
# the integration suite's own helpers (run.py keeps only our tests)
from test_backup_chat import bodies, wait_body  # noqa: F401
from test_backup_cli import bb  # noqa: F401
from test_restore_chat import plan_of, react  # noqa: F401


def tree(root, files):
    """Write {relative path: bytes} under root."""
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data)


def keyfile(t, name='backup.key'):
    path = os.path.join(t.tmp, name)
    if not os.path.exists(path):
        r = bb(t, None, 'keygen', path)
        check(r.rc == 0, 'keygen: %s' % r)
    return path


def write_conf(t, targets, key=None, remote=True, name='bb.conf', extra_storage=''):
    """bot.conf with [files NAME] targets ({name: [paths]}), each copied
    to one local-directory remote ("r1") when remote is set."""
    token = os.path.join(t.tmp, 'token')
    with open(token, 'w') as f:
        f.write(BOT_TOKEN + '\n')
    os.chmod(token, 0o600)
    body = ''
    for tname, paths in targets.items():
        body += '[files %s]\npaths = %s\n%s\n' % (
            tname, ', '.join(paths), 'remotes = r1' if remote else '')
    if remote:
        body += '[remote r1]\npath = %s\n' % remote_dir(t)
    path = os.path.join(t.tmp, name)
    with open(path, 'w') as f:
        f.write('[matrix]\nhomeserver = %s\nuser_id = @backupbot:localhost\n'
                'access_token_file = %s\nrooms = %s\nadmins = @alice:localhost\n\n'
                '[storage]\nstate_dir = %s\nbackup_dir = %s\n%s%s\n\n%s'
                % (t.hs.url, token, t.room_id, os.path.join(t.tmp, 'state'),
                   backup_dir(t), 'encryption_key_file = %s\n' % key if key else '',
                   extra_storage, body))
    return path


def backup_dir(t):
    return os.path.join(t.tmp, 'backups')


def remote_dir(t):
    return os.path.join(t.tmp, 'remote')


def backup(t, conf, target):
    r = bb(t, conf, 'backup', target)
    ids = re.findall(r'^ok %s: (%s-\d{8}T\d{6}Z), ' % (target, target), r.out, re.M)
    check(r.rc == 0 and len(ids) == 1, 'backup %s:\n%s' % (target, r))
    return ids[0]


def manifest_path(where, target, bid):
    return os.path.join(where, target, bid + '.json')


def load(path):
    with open(path) as f:
        return json.load(f)


def save(path, m):
    with open(path, 'w') as f:
        json.dump(m, f, indent=1)


def later_id(bid, seconds=3600):
    """The id of a backup made `seconds` after bid (same target)."""
    import calendar
    import time
    target, stamp = bid[:-17], bid[-16:]
    ts = calendar.timegm(time.strptime(stamp, '%Y%m%dT%H%M%SZ')) + seconds
    return '%s-%s' % (target, time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(ts)))


def drop_local(t, target):
    """The disaster case: the local catalog of target is gone."""
    import shutil
    shutil.rmtree(os.path.join(backup_dir(t), target), ignore_errors=True)


def restore_into(t, conf, target, bid, *extra):
    into = os.path.join(t.tmp, 'restored-%d' % len(os.listdir(t.tmp)))
    os.makedirs(into)
    r = bb(t, conf, 'restore', target, bid, '--into', into, '--yes', *extra)
    return r, into


def files_under(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, 'rb') as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


# ---- the chat side ------------------------------------------------------

def chat_bot(t, targets, admins, restore='', key=None):
    """A daemon whose config has files targets ({name: [paths]}) and
    [restore] lines; one good backup of each made first."""
    b = t.bot(admins=admins)
    set_chat_conf(t, b, targets, restore, key)
    ids = {name: backup(t, b.conf, name) for name in targets}
    b.start()
    return b, ids


def set_chat_conf(t, b, targets, restore='', key=None, admins=None):
    import os
    if admins is not None:
        b.write_config(admins=admins)
    else:
        with open(b.conf) as f:
            text = f.read()
        b.write_config(admins=tuple(
            x.strip() for x in text.split('admins = ')[1].split('\n')[0].split(',')))
    with open(b.conf) as f:
        conf = f.read()
    conf = conf[:conf.index('[storage]')]
    conf += '[storage]\nstate_dir = %s\nbackup_dir = %s\n%s\n[restore]\n%s\n\n' % (
        b.state_dir, backup_dir(t), 'encryption_key_file = %s\n' % key if key else '', restore)
    for name, paths in targets.items():
        conf += '[files %s]\npaths = %s\n\n' % (name, ', '.join(paths))
    with open(b.conf, 'w') as f:
        f.write(conf)
