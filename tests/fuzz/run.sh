#!/bin/sh
# tests/fuzz/run.sh [SECONDS] - build the libFuzzer targets with clang
# (ASan + UBSan, UB is fatal) and run each for SECONDS (default 10) on a
# throwaway copy of its seed corpus.  One line per target; exit 1 if any
# target crashed, leaked, hit UB or broke one of its checks.
#
#   BB_FUZZ_TARGETS="cmd sync"	run only these targets
#   BB_FUZZ_JOBS=N		parallel jobs per target (default 1)
#
# Crash inputs are kept as build/fuzz/crash-<target>-*; reproduce with
# build/fuzz/fuzz_<target> FILE.
# shellcheck disable=SC2086 # flag lists ($cflags, $objs...) are split on purpose
set -u

secs=${1:-10}
case $secs in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/../.." || exit 2

if ! command -v clang >/dev/null 2>&1; then
	echo "fuzz: clang not found, skipped"
	exit 0
fi

out=build/fuzz
targets=${BB_FUZZ_TARGETS:-"cmd sync config cron"}
jobs=${BB_FUZZ_JOBS:-1}
# the same libraries as the Makefile's PKGS
pkgs=$(sed -n 's/^PKGS[[:space:]]*=[[:space:]]*//p' Makefile)
[ -n "$pkgs" ] || pkgs="libcurl libcjson libsodium"
pkg_cflags=$(pkg-config --cflags $pkgs 2>/dev/null)
pkg_libs=$(pkg-config --libs $pkgs 2>/dev/null || \
    echo "$pkgs" | sed 's/\(^\| \)lib/\1-l/g')
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
cflags="-std=gnu11 -g -O1 -fno-omit-frame-pointer $san -D_GNU_SOURCE -Ibot $pkg_cflags"

mkdir -p "$out/obj" || exit 2

# The core, once, instrumented for coverage but without libFuzzer's main.
objs=""
for src in bot/*.c handlers/*.c; do
	[ "$src" = bot/main.c ] && continue
	obj=$out/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')
	if ! clang $cflags -fsanitize=fuzzer-no-link -c -o "$obj" "$src"; then
		echo "fuzz: cannot compile $src"
		exit 1
	fi
	objs="$objs $obj"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bbfuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

status=0
for t in $targets; do
	bin=$out/fuzz_$t
	if ! clang $cflags -fsanitize=fuzzer -o "$bin" "tests/fuzz/fuzz_$t.c" \
	    $objs $pkg_libs; then
		echo "fuzz $t: build failed"
		status=1
		continue
	fi
	mkdir -p "$tmp/$t"
	cp "tests/fuzz/seeds/$t"/* "$tmp/$t/" 2>/dev/null
	case $t in
	sync)	max_len=65536 ;;
	*)	max_len=8192 ;;
	esac
	dict=""
	[ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
	log=$out/fuzz_$t.log
	if [ "$jobs" -gt 1 ]; then
		par="-fork=$jobs"
	else
		par=""
	fi
	"$bin" $par $dict -max_total_time="$secs" -max_len="$max_len" \
	    -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$out/crash-$t-" "$tmp/$t" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' \
	    "$log" | tail -n 1)
	[ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' \
	    "$log" | tail -n 1)
	if [ $rc -eq 0 ] && ! grep -q "ERROR: \|runtime error" "$log"; then
		echo "fuzz $t: ok (${runs:-?} runs)"
	else
		echo "fuzz $t: FAILED (exit $rc); log in $log"
		grep -E "ERROR: |runtime error|SUMMARY|Test unit written" \
		    "$log" | head -n 10 | sed 's/^/    /'
		status=1
	fi
done
exit $status
