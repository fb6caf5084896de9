#!/bin/sh
# make bench: every benchmark, each against its peer in the same run.
cd "$(dirname "$0")/../.." || exit 1
echo "== command-to-reply latency and daemon RSS"
/usr/bin/python3 tests/bench/latency.py "${BENCH_N:-200}"
echo "== end-to-end encryption: encrypted against unencrypted room, first share, idle RSS"
/usr/bin/python3 tests/bench/e2ee_bench.py "${BENCH_N:-100}"
echo "== PostgreSQL backup against pg_dump (size: ${BENCH_PG_MB:-1000} MB)"
/usr/bin/python3 tests/bench/pg_backup.py "${BENCH_PG_MB:-1000}"
echo "== PostgreSQL restore against pg_restore (size: ${BENCH_PG_MB:-1000} MB)"
/usr/bin/python3 tests/bench/pg_restore.py "${BENCH_PG_MB:-1000}"
echo "== Redis backup against redis-cli --rdb (keys: ${BENCH_REDIS_KEYS:-1000000})"
/usr/bin/python3 tests/bench/redis_bench.py "${BENCH_REDIS_KEYS:-1000000}"
echo "== media sync against rclone sync"
/usr/bin/python3 tests/bench/media_bench.py
echo "== PostgreSQL with pgBackRest: by hand, through backupbot, against pg_dump and pg_restore (size: ${BENCH_PG_MB:-1000} MB)"
/usr/bin/python3 tests/bench/pgbackrest_bench.py "${BENCH_PG_MB:-1000}"
