#!/bin/sh
# tests/fuzz/run.sh [SECONDS] - build the libFuzzer targets with clang
# (ASan + UBSan, UB is fatal), replay each target's regression inputs
# (tests/fuzz/regressions/TARGET/: inputs that once crashed it), then run
# it for SECONDS (default: $FUZZ_SECONDS, else 10) on a throwaway copy of
# its seed corpus.
# SECONDS 0 only replays the regressions and the seeds.  One line per
# target; exit 1 if any target crashed, leaked, hit UB or broke one of
# its checks.  `make fuzz` runs this for longer.
#
#   BB_FUZZ_TARGETS="cmd sync"	run only these targets
#   BB_FUZZ_JOBS=N		parallel jobs per target (default 1)
#   BB_FUZZ_PARALLEL=N		targets run at once (default: one per CPU,
#				or 1 with BB_FUZZ_JOBS)
#
# Crash inputs are kept as build/fuzz/crash-<target>-*; reproduce with
# build/fuzz/fuzz_<target> FILE.  Minimise one with
# build/fuzz/fuzz_<target> -minimize_crash=1 -runs=100000 FILE, and keep
# it as tests/fuzz/regressions/<target>/<what-it-was>.
# shellcheck disable=SC2086 # flag lists ($cflags, $objs...) are split on purpose
set -u

secs=${1:-${FUZZ_SECONDS:-10}}
case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/../.." || exit 2

if ! command -v clang >/dev/null 2>&1; then
	echo "fuzz: clang not found, skipped"
	exit 0
fi

out=build/fuzz
targets=${BB_FUZZ_TARGETS:-"cmd sync config cron manifest request rclone \
redis_logical ledger relations pgbackrest to_device encrypted"}
jobs=${BB_FUZZ_JOBS:-1}
# one target per CPU, or one at a time when each forks its own jobs
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
[ "$jobs" -gt 1 ] && cpus=1
parallel=${BB_FUZZ_PARALLEL:-$cpus}
case $parallel in
''|*[!0-9]*|0) parallel=1 ;;
esac
# the same libraries as the Makefile's PKGS
pkgs=$(sed -n 's/^PKGS[[:space:]]*=[[:space:]]*//p' Makefile)
[ -n "$pkgs" ] || pkgs="libcurl libcjson libsodium"
pkg_cflags=$(pkg-config --cflags $pkgs 2>/dev/null)
pkg_libs=$(pkg-config --libs $pkgs 2>/dev/null || \
    echo "$pkgs" | sed 's/\(^\| \)lib/\1-l/g')
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
# the Makefile's layout: every .c under bot/ and handlers/, and one -I per
# folder that holds a header (includes are bare names)
srcs=$(find bot handlers -name '*.c' ! -path bot/main.c | LC_ALL=C sort)
incs=$(find bot handlers -name '*.h' -exec dirname {} \; | LC_ALL=C sort -u |
    sed 's/^/-I/')
cflags="-std=gnu11 -g -O1 -fno-omit-frame-pointer $san -D_GNU_SOURCE $(echo $incs) $pkg_cflags"

mkdir -p "$out/obj" || exit 2

# Scratch space, in memory when there is some: the ledger and request
# targets write a file per input, and truncating files on a disk mounted
# with discard costs milliseconds.
scratch=${TMPDIR:-/tmp}
[ -d /dev/shm ] && [ -w /dev/shm ] && scratch=/dev/shm
tmp=$(mktemp -d "$scratch/bbfuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# The core, once, instrumented for coverage but without libFuzzer's main;
# $parallel files at a time.
objs=""
n=0
for src in $srcs; do
	obj=$out/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')
	objs="$objs $obj"
	( clang $cflags -fsanitize=fuzzer-no-link -c -o "$obj" "$src" ||
	    echo "$src" >>"$tmp/cc-failed" ) &
	n=$((n + 1))
	[ $((n % parallel)) -eq 0 ] && wait
done
wait
if [ -s "$tmp/cc-failed" ]; then
	sed 's/^/fuzz: cannot compile /' "$tmp/cc-failed"
	exit 1
fi

# report LOG: what went wrong, and which of the target's checks (an
# abort() in tests/fuzz/fuzz_*.c) if it was one.  No "fail" or "crash" in
# these lines: tests/run.sh counts the lines that say so.
report() {
	grep -E "ERROR: |runtime error|SUMMARY" "$1" | head -n 8
	grep -m 1 -o "in [A-Za-z_]* [^ ]*tests/fuzz/fuzz_[a-z_]*\.c:[0-9]*" \
	    "$1" | sed 's|^in \([A-Za-z_]*\) [^ ]*\(tests/fuzz/.*\)|check broken: \2 (\1)|'
}

# fuzz_one TARGET: build, replay, fuzz; its report line(s) on stdout,
# exit 1 on failure.
fuzz_one() {
	t=$1
	bin=$out/fuzz_$t
	log=$out/fuzz_$t.log
	if ! clang $cflags -fsanitize=fuzzer -o "$bin" "tests/fuzz/fuzz_$t.c" \
	    $objs $pkg_libs >"$tmp/ld-$t.log" 2>&1; then
		echo "fuzz $t: build failed"
		sed 's/^/    /' "$tmp/ld-$t.log" | head -n 20
		return 1
	fi
	mkdir -p "$tmp/$t" "$tmp/tmp-$t"
	# the targets' scratch files go where the trap removes them
	export TMPDIR="$tmp/tmp-$t"
	case $t in
	sync)		max_len=65536 ;;
	relations)	max_len=16384 ;;
	*)		max_len=8192 ;;
	esac
	san_opts="-timeout=20 -rss_limit_mb=2048 -print_final_stats=1"

	# Regressions first, one by one: each must pass as it is.
	reg=tests/fuzz/regressions/$t
	if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
		if ! "$bin" $san_opts -runs=1 "$reg"/* >"$log" 2>&1 ||
		    grep -q "ERROR: \|runtime error" "$log"; then
			echo "fuzz $t: FAILED a regression input; log in $log"
			{ grep "^Running: " "$log" | tail -n 1
			  report "$log"; } | sed 's/^/    /'
			return 1
		fi
	fi

	cp "tests/fuzz/seeds/$t"/* "$tmp/$t/" 2>/dev/null
	dict=""
	[ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
	if [ "$secs" -eq 0 ]; then
		limit="-runs=0"		# the seeds once
	else
		limit="-max_total_time=$secs"
	fi
	if [ "$jobs" -gt 1 ]; then
		par="-fork=$jobs"
	else
		par=""
	fi
	"$bin" $par $dict $limit -max_len="$max_len" $san_opts \
	    -artifact_prefix="$out/crash-$t-" "$tmp/$t" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' \
	    "$log" | tail -n 1)
	[ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' \
	    "$log" | tail -n 1)
	if [ $rc -eq 0 ] && ! grep -q "ERROR: \|runtime error" "$log"; then
		echo "fuzz $t: ok (${runs:-?} runs)"
		return 0
	fi
	echo "fuzz $t: FAILED (exit $rc); log in $log"
	{ report "$log"; grep "Test unit written" "$log"; } | sed 's/^/    /'
	return 1
}

# $parallel targets at a time, reported in the order given.
status=0
set -- $targets
while [ $# -gt 0 ]; do
	batch=""
	while [ $# -gt 0 ] && [ "$(echo $batch | wc -w)" -lt "$parallel" ]; do
		batch="$batch $1"
		( fuzz_one "$1" >"$tmp/report-$1" 2>&1
		  echo $? >"$tmp/rc-$1" ) &
		shift
	done
	wait
	for t in $batch; do
		cat "$tmp/report-$t"
		[ "$(cat "$tmp/rc-$t" 2>/dev/null)" = 0 ] || status=1
	done
done
exit $status
