"""Backups nobody can swap: with encryption_key_file set, a manifest is
MACed with a subkey, the data is bound to its target and id, and every
reader (restore, verify, cat, catalog --from, remote fetches) refuses what
does not authenticate.  The attacker here can write to the remote (and
the local disk is lost, or written to as well) but has no key."""

import os
import re
import shutil
import subprocess
import time

from harness import check, test
from seclib import (backup, backup_dir, bb, drop_local, files_under, keyfile,
                    later_id, load, manifest_path, remote_dir, restore_into, save,
                    tree, write_conf)


def plant(t, src_dir, target, old_id, new_id, edit=None):
    """Copy backup old_id (manifest + data) from src_dir to the remote as
    new_id of target, its manifest edited to match, as an attacker would."""
    m = load(manifest_path(src_dir, target if os.path.exists(
        manifest_path(src_dir, target, old_id)) else old_id[:-17], old_id))
    src_target = m['target']
    data = m['file']
    m['id'] = new_id
    m['target'] = target
    m['file'] = new_id + data[len(old_id):]
    if edit:
        edit(m)
    dest = os.path.join(remote_dir(t), target)
    os.makedirs(dest, exist_ok=True)
    shutil.copyfile(os.path.join(src_dir, src_target, data), os.path.join(dest, m['file']))
    save(os.path.join(dest, new_id + '.json'), m)
    return m


@test
def plaintext_swap_on_a_remote_is_refused(t):
    good, evil = os.path.join(t.tmp, 'good'), os.path.join(t.tmp, 'evil')
    tree(good, {'app.conf': b'listen = 127.0.0.1\n'})
    tree(evil, {'app.conf': b'listen = 0.0.0.0 # planted\n'})
    key = keyfile(t)
    conf = write_conf(t, {'etc': [good]}, key=key)
    bid = backup(t, conf, 'etc')
    m = load(manifest_path(backup_dir(t), 'etc', bid))

    # The attacker makes a plaintext backup of their own, same target name
    # (backupbot itself, without a key), and plants it as the newest.
    t2 = os.path.join(t.tmp, 'attacker')
    os.makedirs(t2)
    aconf = write_conf(t, {'etc': [evil]}, remote=False, name='attacker.conf')
    with open(aconf) as f:
        text = f.read().replace(backup_dir(t), os.path.join(t2, 'backups'))
    with open(aconf, 'w') as f:
        f.write(text)
    aid = backup(t, aconf, 'etc')
    plant(t, os.path.join(t2, 'backups'), 'etc', aid, later_id(bid))
    drop_local(t, 'etc')

    r, into = restore_into(t, conf, 'etc', 'latest')
    check(files_under(into) == {}, 'the planted backup was restored: %r\n%s'
          % (files_under(into), r))
    check(r.rc != 0 and 'not authenticated' in r.text and 'refused' in r.text,
          'a planted plaintext backup must be refused:\n%s' % r)
    check(m['format_version'] == 2 and len(m.get('mac', '')) == 64 and
          m['encryption'] == 'secretstream-xchacha20poly1305-bound', 'manifest: %r' % m)
    r = bb(t, conf, 'verify', 'etc', 'latest')
    check(r.rc != 0 and 'not authenticated' in r.text, 'verify:\n%s' % r)
    # the CLI's override reads it, and says so
    r, into = restore_into(t, conf, 'etc', 'latest', '--insecure-unauthenticated')
    check(r.rc == 0 and 'NOT authenticated' in r.text, 'override:\n%s' % r)
    # the genuine one, asked for by id, still restores
    r, into = restore_into(t, conf, 'etc', bid)
    got = files_under(into)
    check(r.rc == 0 and any(v == b'listen = 127.0.0.1\n' for v in got.values()),
          'the genuine backup: %s\n%r' % (r, got))


def replant_refused(t, conf, old, new_id, what):
    """Back up everything, plant backup old (of any target) on etc's
    remote as new_id, lose the local catalog: the restore of latest must
    refuse it and restore nothing."""
    local = os.path.join(t.tmp, 'keep')
    shutil.copytree(backup_dir(t), local)
    plant(t, local, 'etc', old, new_id)
    drop_local(t, 'etc')
    r, into = restore_into(t, conf, 'etc', 'latest')
    check(files_under(into) == {}, '%s was restored: %r' % (what, files_under(into)))
    check(r.rc != 0 and 'does not authenticate' in r.text,
          '%s must be refused:\n%s' % (what, r))


@test
def replay_under_a_new_id_is_refused(t):
    src = os.path.join(t.tmp, 'src')
    tree(src, {'a.conf': b'version 1\n'})
    conf = write_conf(t, {'etc': [src]}, key=keyfile(t))
    old = backup(t, conf, 'etc')
    tree(src, {'a.conf': b'version 2\n'})
    time.sleep(1.1)
    new = backup(t, conf, 'etc')
    replant_refused(t, conf, old, later_id(new), 'an old backup replayed under a new id')


@test
def cross_target_copy_is_refused(t):
    a, b = os.path.join(t.tmp, 'a'), os.path.join(t.tmp, 'b')
    tree(a, {'a.conf': b'target a\n'})
    tree(b, {'b.conf': b'target b\n'})
    conf = write_conf(t, {'etc': [a], 'www': [b]}, key=keyfile(t))
    eid = backup(t, conf, 'etc')
    wid = backup(t, conf, 'www')
    replant_refused(t, conf, wid, later_id(eid), 'the backup of another target')
    # catalog --from does not take it either (nor fetch its data)
    r = bb(t, conf, 'catalog', '--from', 'r1')
    check('does not authenticate' in r.text and
          not os.path.exists(manifest_path(backup_dir(t), 'etc', later_id(eid))),
          'catalog --from:\n%s' % r)


@test
def manifest_edited_by_one_byte_is_refused(t):
    src = os.path.join(t.tmp, 'src')
    tree(src, {'a.conf': b'x' * 5000})
    conf = write_conf(t, {'etc': [src]}, key=keyfile(t), remote=False)
    bid = backup(t, conf, 'etc')
    path = manifest_path(backup_dir(t), 'etc', bid)
    with open(path) as f:
        original = f.read()
    r = bb(t, conf, 'verify', bid, '--quick')
    check(r.rc == 0, 'the untouched backup must verify:\n%s' % r)

    def flip_hex(h):
        return h[:-1] + ('0' if h[-1] != '0' else '1')

    edits = {
        'size': lambda m: m.__setitem__('bytes', m['bytes'] + 1),
        'raw size': lambda m: m.__setitem__('bytes_raw', m['bytes_raw'] - 1),
        'hash': lambda m: m.__setitem__('blake2b', flip_hex(m['blake2b'])),
        'encryption': lambda m: m.__setitem__('encryption', 'none'),
        'mac': lambda m: m.__setitem__('mac', flip_hex(m['mac'])),
        'no mac': lambda m: m.pop('mac'),
    }
    for what, edit in edits.items():
        m = load(path)
        edit(m)
        save(path, m)
        for args in (('verify', bid, '--quick'), ('cat', bid)):
            with open(os.devnull, 'wb') as null:
                r = bb(t, conf, *args, stdout=null if args[0] == 'cat'
                       else subprocess.PIPE)
            check(r.rc != 0 and 'refused' in r.text,
                  '%s edited: %s must refuse:\n%s' % (what, args[0], r))
        with open(path, 'w') as f:
            f.write(original)
    # bookkeeping that changes after a backup is made is outside the MAC
    m = load(path)
    m['status'] = 'partial'
    m['remotes'] = {'r9': {'status': 'ok'}}
    save(path, m)
    r = bb(t, conf, 'verify', bid, '--quick')
    check(r.rc == 0, 'status/remotes are bookkeeping:\n%s' % r)


@test
def key_file_of_another_owner_is_refused(t):
    if os.geteuid() != 0:
        raise AssertionError('needs root to give the key file another owner')
    src = os.path.join(t.tmp, 'src')
    tree(src, {'a.conf': b'a\n'})
    key = keyfile(t)
    conf = write_conf(t, {'etc': [src]}, key=key, remote=False)
    os.chown(key, 65534, 65534)
    r = bb(t, conf, 'backup', 'etc')
    check(r.rc != 0 and 'owned by uid 65534' in r.text, 'backup:\n%s' % r)
    os.chown(key, 0, 0)
    backup(t, conf, 'etc')


@test
def old_backups_are_listed_unauthenticated_and_no_key_is_warned(t):
    src = os.path.join(t.tmp, 'src')
    tree(src, {'a.conf': b'a\n'})
    plain = write_conf(t, {'etc': [src]}, remote=False)
    bid = backup(t, plain, 'etc')
    r = bb(t, plain, 'check')
    check(re.search(r'^warning: .*replace a backup there undetected.*keygen', r.out, re.M),
          'no key: check must warn:\n%s' % r)
    conf = write_conf(t, {'etc': [src]}, key=keyfile(t), remote=False)
    r = bb(t, conf, 'list')
    check(r.rc == 0 and 'UNAUTHENTICATED' in r.out, 'list:\n%s' % r)
    r = bb(t, conf, 'verify', bid, '--quick')
    check(r.rc != 0 and 'unencrypted and not authenticated' in r.text, 'verify:\n%s' % r)
    r = bb(t, conf, 'verify', bid, '--quick', '--insecure-unauthenticated')
    check(r.rc == 0, 'override:\n%s' % r)
    nid = backup(t, conf, 'etc')
    r = bb(t, conf, 'list')
    line = [x for x in r.out.splitlines() if x.startswith(nid)]
    check(line and 'UNAUTHENTICATED' not in line[0], 'the new backup: %s' % r)
