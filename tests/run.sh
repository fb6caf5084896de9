#!/bin/bash
# tests/run.sh - every test: cmocka unit tests, the layout check
# (tests/layout/), the test homeserver's self-test, integration tests
# against the test homeserver, the security suite (tests/security/),
# the fault-injection suite (tests/fault/), and a short fuzz run.  Ends with "N passed, N failed".
#
#   BUILD=build-asan BACKUPBOT=./backupbot-asan tests/run.sh   (sanitizers)
#   FUZZ_SECONDS=0 skips fuzzing.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BACKUPBOT=${BACKUPBOT:-./backupbot}
passed=0
failed=0

count() {	# count LOG: add a runner's "N passed, N failed" to the totals
	local line
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + $(sed -E 's/.*\b([0-9]+) passed.*/\1/' <<<"$line")))
	failed=$((failed + $(sed -E 's/.*\b([0-9]+) failed.*/\1/' <<<"$line")))
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== unit tests ($BUILD)"
up=0; uf=0
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	if "$t" >"$log" 2>&1; then :; fi
	p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | head -1)
	f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$log" | grep -oE '[0-9]+' | head -1)
	if [ -z "$p$f" ]; then	# crashed before cmocka could count
		cat "$log"; f=1
	fi
	[ "${f:-0}" != 0 ] && cat "$log"
	echo "$(basename "$t"): ${p:-0} passed, ${f:-0} failed"
	up=$((up + ${p:-0})); uf=$((uf + ${f:-0}))
done
echo "unit: $up passed, $uf failed" | tee "$log"
count "$log"

echo "== remote copies (rclone: local and served webdav)"
bash tests/remote/test_remote.sh | tee "$log"
count "$log"

echo "== packaging (make install, man pages, systemd unit, Dockerfile)"
bash tests/packaging/test_install.sh | tee "$log"
count "$log"

echo "== layout (the include walls between bot/'s folders, file sizes)"
/usr/bin/python3 tests/layout/test_layout.py | tee "$log"
count "$log"
echo "== docs (every relative link and anchor of the Markdown files)"
/usr/bin/python3 tests/layout/test_docs.py | tee "$log"
count "$log"
echo "== test homeserver (its own answers against the spec; Synapse's habits)"
/usr/bin/python3 tests/homeserver/selftest.py 2>&1 | grep -E '(ERROR|FAIL)|passed, [0-9]+ failed' |
	sed -E 's/^([0-9]+ passed)/homeserver: \1/' | tee "$log"
count "$log"

# Integration and fault tests wait on servers more than they compute:
# run a few at a time (each test has its own homeserver and servers).
export BB_TEST_JOBS="${BB_TEST_JOBS:-3}"

echo "== integration tests"
/usr/bin/python3 tests/integration/run.py | tee "$log"
count "$log"

echo "== security (tests/security: swapped backups, approvals, locks, hostile input)"
/usr/bin/python3 tests/security/run.py | tee "$log"
count "$log"

echo "== fault injection"
/usr/bin/python3 tests/fault/run.py | tee "$log"
count "$log"

if [ "${FUZZ_SECONDS:-10}" != 0 ] && [ -x tests/fuzz/run.sh ]; then
	echo "== fuzzing (${FUZZ_SECONDS:-10}s per target)"
	fp=0; ff=0
	if tests/fuzz/run.sh "${FUZZ_SECONDS:-10}" | tee "$log"; then :; fi
	fp=$(grep -c ': ok' "$log"); ff=$(grep -ciE 'crash|fail' "$log")
	echo "fuzz: $fp passed, $ff failed" | tee "$log"
	count "$log"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
