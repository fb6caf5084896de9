#!/usr/bin/python3
"""redis_bench.py - backupbot's Redis backup against the tool operators use
today, in the same run on the same server:

  redis-cli --rdb FILE          the snapshot, written to a file
  backupbot backup (rdb)        SYNC | check CRC64 | [zstd] | BLAKE2b | file
  backupbot backup (logical)    SCAN + pipelined DUMP/PTTL | zstd | file

Reports wall time (best of RUNS), output size, throughput, the ratio to
redis-cli, keys/s for the logical mode, and backupbot's peak RSS.

    redis_bench.py [KEYS] [RUNS]     (default 1000000 keys, 3 runs)

The server is a throwaway one (tests/redis/server.sh) filled with
DEBUG POPULATE KEYS key 100: KEYS strings of 100 bytes.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'integration'))
import harness  # noqa: E402

BACKUPBOT = os.path.join(ROOT, 'backupbot')
SERVER = os.path.join(ROOT, 'tests', 'redis', 'server.sh')


def hwm(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(argv, env=None):
    """Run argv; wall seconds, peak RSS (KB) of that process, stdout."""
    t0 = time.time()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while p.poll() is None:
        peak = max(peak, hwm(p.pid))
        time.sleep(0.01)
    wall = time.time() - t0
    out, err = p.communicate()
    if p.returncode != 0:
        raise SystemExit('%s failed: %s%s' % (argv[0], out.decode()[-1000:],
                                             err.decode(errors='replace')[-2000:]))
    return wall, peak, out.decode()


def size(n):
    for unit in ('B', 'KB', 'MB', 'GB'):
        if n < 1024 or unit == 'GB':
            return '%.1f %s' % (n, unit) if unit != 'B' else '%d B' % n
        n /= 1024.0
    return str(n)


def redis_cli(*args):
    return subprocess.run(['redis-cli'] + list(args), capture_output=True, text=True,
                          check=True).stdout


def main():
    keys = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    tmp = tempfile.mkdtemp(prefix='bbbench-redis-')
    port = harness.free_port()
    sdir = os.path.join(tmp, 'server')
    bdir = os.path.join(tmp, 'backups')
    try:
        subprocess.run(['bash', SERVER, 'start', sdir, str(port)], check=True,
                       capture_output=True)
        sock = os.path.join(sdir, 'redis.sock')
        t0 = time.time()
        redis_cli('-s', sock, 'DEBUG', 'POPULATE', str(keys), 'key', '100')
        info = redis_cli('-s', sock, 'INFO', 'memory')
        used = int(re.search(r'used_memory:(\d+)', info).group(1))
        print('server: redis-server %s, %d keys of 100 bytes, used_memory %s (loaded in %.1fs)'
              % (redis_cli('-s', sock, 'INFO', 'server').split('redis_version:')[1].split()[0],
                 keys, size(used), time.time() - t0))

        token = os.path.join(tmp, 'token')
        with open(token, 'w') as f:
            f.write('x\n')
        os.chmod(token, 0o600)
        conf = os.path.join(tmp, 'bb.conf')
        url = 'redis://127.0.0.1:%d/0' % port
        with open(conf, 'w') as f:
            f.write('[matrix]\nhomeserver = http://127.0.0.1:1\nuser_id = @b:localhost\n'
                    'access_token_file = %s\nrooms = !r:localhost\nadmins = @a:localhost\n\n'
                    '[storage]\nstate_dir = %s\nbackup_dir = %s\n\n'
                    '[redis rdbnone]\nurl = %s\nmode = rdb\ncompression = none\n\n'
                    '[redis rdbzstd]\nurl = %s\nmode = rdb\ncompression = zstd\n\n'
                    '[redis logical]\nurl = %s\nmode = logical\ncompression = zstd\n\n'
                    '[redis logicalnone]\nurl = %s\nmode = logical\ncompression = none\n'
                    % (token, os.path.join(tmp, 'state'), bdir, url, url, url, url))

        rows = []
        rdbfile = os.path.join(tmp, 'cli.rdb')
        best = None
        for _ in range(runs):
            wall, peak, _out = timed(['redis-cli', '-h', '127.0.0.1', '-p', str(port),
                                      '--rdb', rdbfile])
            if best is None or wall < best[0]:
                best = (wall, peak)
        cli_bytes = os.path.getsize(rdbfile)
        cli_wall = best[0]
        rows.append(('redis-cli --rdb FILE', cli_wall, cli_bytes, cli_bytes, best[1], None))

        for target in ('rdbnone', 'rdbzstd', 'logicalnone', 'logical'):
            best = None
            for _ in range(runs):
                shutil.rmtree(os.path.join(bdir, target), ignore_errors=True)
                wall, peak, out = timed([BACKUPBOT, '-c', conf, 'backup', target])
                if best is None or wall < best[0]:
                    bid = re.search(r'^ok %s: (\S+),' % target, out, re.M).group(1)
                    with open(os.path.join(bdir, target, bid + '.json')) as f:
                        m = json.load(f)
                    best = (wall, peak, m)
            wall, peak, m = best
            rows.append(('backupbot %s (%s)' % ('rdb' if target.startswith('rdb') else 'logical',
                                               m['compression_info']['algorithm']),
                         wall, m['bytes'], m['bytes_raw'], peak,
                         m.get('records')))

        print()
        print('%-28s %8s %10s %10s %9s %7s %10s %8s' % (
            'run (best of %d)' % runs, 'seconds', 'stored', 'raw', 'raw MB/s', 'x cli',
            'keys/s', 'RSS'))
        for name, wall, stored, raw, peak, records in rows:
            print('%-28s %8.2f %10s %10s %9.0f %7.2f %10s %8s' % (
                name, wall, size(stored), size(raw), raw / wall / 1e6, wall / cli_wall,
                '%.0f' % (records / wall) if records else '-',
                size(peak * 1024) if peak else '-'))
        print('\n"x cli": wall time relative to redis-cli --rdb (lower is faster).')
    finally:
        subprocess.run(['bash', SERVER, 'stop', sdir], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
