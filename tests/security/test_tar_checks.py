"""The files target's pre-check sees what GNU tar will do: a pax global
header that renames the members after it, or a device or FIFO member, is
refused before tar writes anything.  The archive is planted by someone
who can write where the backup is kept (no key here: nothing tells a
planted archive from a real one, which is why the tar check matters)."""

import hashlib
import io
import os
import subprocess
import tarfile

from harness import check, test
from seclib import backup, backup_dir, load, manifest_path, restore_into, save, tree, write_conf


def plant_tar(t, conf, target, bid, build):
    """Replace backup bid's archive by the tar build(tarfile) writes, its
    manifest made to match."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.PAX_FORMAT,
                      **build.get('open', {})) as tf:
        for info, data in build['members']:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = raw.getvalue()
    packed = subprocess.run(['zstd', '-q', '-c'], input=raw, capture_output=True,
                            check=True).stdout
    mpath = manifest_path(backup_dir(t), target, bid)
    m = load(mpath)
    with open(os.path.join(backup_dir(t), target, m['file']), 'wb') as f:
        f.write(packed)
    m['blake2b'] = hashlib.blake2b(packed, digest_size=32).hexdigest()
    m['bytes'] = len(packed)
    m['bytes_raw'] = len(raw)
    m['files'] = 1
    save(mpath, m)


def member(name, data=b'x\n', **kw):
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else 0
    for k, v in kw.items():
        setattr(info, k, v)
    return info, data


def setup(t):
    src = os.path.join(t.tmp, 'src')
    tree(src, {'a.conf': b'a\n'})
    conf = write_conf(t, {'etc': [src]}, remote=False)
    return conf, backup(t, conf, 'etc')


@test
def pax_global_header_setting_paths_is_refused(t):
    conf, bid = setup(t)
    plant_tar(t, conf, 'etc', bid, {
        'open': {'pax_headers': {'path': 'etc/cron.d/planted'}},
        'members': [member('srv/harmless.txt', b'* * * * * root id\n')]})
    r, into = restore_into(t, conf, 'etc', bid)
    check(os.listdir(into) == [], 'tar wrote something: %r\n%s' % (list(os.walk(into)), r))
    check(r.rc != 0 and 'pax global header' in r.text, 'restore:\n%s' % r)


@test
def device_and_fifo_members_are_refused(t):
    conf, bid = setup(t)
    for kind, kw in (('device node', dict(type=tarfile.CHRTYPE, devmajor=1, devminor=3)),
                     ('FIFO', dict(type=tarfile.FIFOTYPE))):
        plant_tar(t, conf, 'etc', bid, {'members': [
            member('srv/ok.txt'), member('srv/dev', None, mode=0o666, **kw)]})
        r, into = restore_into(t, conf, 'etc', bid)
        check(os.listdir(into) == [], 'tar wrote something: %r' % list(os.walk(into)))
        check(r.rc != 0 and 'holds a %s' % kind in r.text, '%s: restore:\n%s' % (kind, r))
