#!/bin/bash
# tests/remote/test_remote.sh - bot/store/remote.c against real rclone remotes:
# a local directory, `rclone serve webdav` on loopback (read-write with a
# password, and read-only), and a WebDAV port nobody listens on.
#
# Builds tests/remote/remote_driver.c against the core objects, then runs
# put/verify/list/get/delete through it.  Prints the time of a put+verify
# of a BIG_MB (default 100) MiB file to the local and WebDAV remotes.
# Ends with "remote: N passed, N failed"; exits 1 on any failure.
#
#   BUILD=build-asan tests/remote/test_remote.sh   (sanitizer objects)
#   VERBOSE=1 tests/remote/test_remote.sh          (show every output)
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BIG_MB=${BIG_MB:-100}
DRIVER=$BUILD/remote_driver
passed=0
failed=0

# Only our own config may reach rclone (Go takes the first RCLONE_CONFIG).
for v in $(compgen -e | grep '^RCLONE_'); do unset "$v"; done

T=$(mktemp -d /tmp/test_remote.XXXXXX)
server_pids=()
cleanup() {
	for pid in "${server_pids[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- build ---------------------------------------------------------------
# Against the same core objects the daemon is made of (all but main.o).
SAN=""
case "$BUILD" in *asan*) SAN="-fsanitize=address,undefined" ;; esac
make --no-print-directory -s BUILD="$BUILD" objs >"$T/build.log" 2>&1 || true
OBJS=$(make --no-print-directory -s BUILD="$BUILD" print-objs)
INCS=$(make --no-print-directory -s print-includes)
for o in $OBJS; do [ -f "$o" ] || OBJS=""; done
if [ -z "$OBJS" ] ||
   ! cc -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Werror -O1 -g $SAN $INCS -D_GNU_SOURCE \
    tests/remote/remote_driver.c $OBJS \
    $(pkg-config --cflags --libs libcurl libcjson libsodium libzstd libpq hiredis olm) \
    -o "$DRIVER" >>"$T/build.log" 2>&1
then
	cat "$T/build.log"
	echo "remote: 0 passed, 1 failed"
	exit 1
fi
DRIVER=$(realpath "$DRIVER")

# ---- helpers ---------------------------------------------------------------
ok() { passed=$((passed + 1)); echo "ok   $1"; }
not_ok() {
	failed=$((failed + 1))
	echo "FAIL $1"
	[ -n "${2:-}" ] && sed 's/^/     | /' <<<"$2"
}

# run CONF ARGS...: the driver's stdout+stderr in $out, exit status in $rc
# (VERBOSE=1 shows them)
run() {
	out=$("$DRIVER" "$@" 2>&1)
	rc=$?
	[ -n "${VERBOSE:-}" ] && sed 's/^/     > /' <<<"$out"
	return 0
}

# expect_ok DESC ARGS...
expect_ok() {
	local desc=$1; shift
	run "$@"
	if [ "$rc" = 0 ]; then ok "$desc"; else not_ok "$desc" "$out"; fi
}

# expect_fail DESC REGEX ARGS...: exit 1 and an "error:" line matching REGEX
expect_fail() {
	local desc=$1 re=$2; shift 2
	run "$@"
	if [ "$rc" = 1 ] && grep -E '^error: ' <<<"$out" | grep -qE -- "$re"
	then ok "$desc"; else not_ok "$desc (want exit 1 and /$re/)" "rc=$rc
$out"; fi
}

# check DESC CMD...: a plain shell condition
check() {
	local desc=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$desc"; else not_ok "$desc"; fi
}

# list_is DESC EXPECTED CONF REMOTE TARGET: the sorted names, space separated
list_is() {
	local desc=$1 want=$2; shift 2
	run "$@"
	local got
	got=$(sort <<<"$out" | tr '\n' ' ' | sed 's/ $//')
	if [ "$rc" = 0 ] && [ "$got" = "$want" ]; then ok "$desc"
	else not_ok "$desc (want '$want')" "rc=$rc
$out"; fi
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# serve_webdav LOGNAME DIR FLAGS...: start a server on a port it picks,
# wait until it listens, and set $port.  No directory cache, so that
# changes made behind its back (a truncated file) show at once.
serve_webdav() {
	local log=$T/$1.log dir=$2 i
	shift 2
	: >"$log"
	RCLONE_CONFIG=$T/empty.conf rclone serve webdav --addr 127.0.0.1:0 \
	    --dir-cache-time 0s "$@" "$dir" >"$log" 2>&1 &
	server_pids+=($!)
	port=""
	for i in $(seq 200); do
		port=$(grep -oE 'started on http://127\.0\.0\.1:[0-9]+' "$log" |
		    grep -oE '[0-9]+$' | head -1)
		[ -n "$port" ] && return 0
		kill -0 "${server_pids[-1]}" 2>/dev/null || break
		sleep 0.05
	done
	echo "rclone serve webdav did not start:"; cat "$log"
	exit 1
}

# ---- fixtures --------------------------------------------------------------
: >"$T/empty.conf"
mkdir -p "$T/backups/db" "$T/served" "$T/served-ro" "$T/big"
DUMP=$T/backups/db/db-20261126T030000Z.dump
MANIFEST=$T/backups/db/db-20261126T030000Z.json
head -c 1048576 /dev/urandom >"$DUMP"
echo '{"id":"db-20261126T030000Z"}' >"$MANIFEST"
D=$(basename "$DUMP")
M=$(basename "$MANIFEST")

PASS=s3cret-$$
serve_webdav dav "$T/served" --user backupbot --pass "$PASS"
dav_port=$port
serve_webdav ro "$T/served-ro" --read-only
ro_port=$port
dead_port=$(free_port)

cat >"$T/rclone.conf" <<EOF
[dav]
type = webdav
url = http://127.0.0.1:$dav_port
vendor = other
user = backupbot
pass = $(rclone obscure "$PASS")

[badpass]
type = webdav
url = http://127.0.0.1:$dav_port
vendor = other
user = backupbot
pass = $(rclone obscure wrong)

[ro]
type = webdav
url = http://127.0.0.1:$ro_port
vendor = other

[dead]
type = webdav
url = http://127.0.0.1:$dead_port
vendor = other
EOF
chmod 600 "$T/rclone.conf"

matrix_section="[matrix]
homeserver = http://127.0.0.1:9
user_id = @backupbot:test
access_token_file = $T/token
rooms = !room:test
admins = @admin:test"

CONF=$T/bot.conf
cat >"$CONF" <<EOF
$matrix_section

[storage]
state_dir = $T/state
backup_dir = $T/backups
rclone_config = $T/rclone.conf

[remote local]
path = $T/local

[remote slash]
path = $T/slash/

[remote dav]
path = dav:vmst-backups

[remote davroot]
path = dav:

[remote badpass]
path = badpass:vmst-backups

[remote ro]
path = ro:vmst-backups

[remote dead]
path = dead:vmst-backups

[remote inline]
path = :webdav,url=http://127.0.0.1:$dav_port,user=x:vmst-backups
EOF

# no rclone_config (rclone's defaults), and a missing rclone binary
CONF_PLAIN=$T/plain.conf
cat >"$CONF_PLAIN" <<EOF
$matrix_section

[storage]
state_dir = $T/state
backup_dir = $T/backups

[remote local]
path = $T/plain
EOF
CONF_NOBIN=$T/nobin.conf
cat >"$CONF_NOBIN" <<EOF
$matrix_section

[storage]
state_dir = $T/state
backup_dir = $T/backups
rclone = $T/no-such-dir/rclone

[remote local]
path = $T/local
EOF

# ---- (a) a local directory -------------------------------------------------
echo "== local directory remote"
expect_ok "put dump + manifest" "$CONF" put local db "$DUMP" "$MANIFEST"
check "copies are byte-identical" cmp "$DUMP" "$T/local/db/$D"
check "manifest copied" cmp "$MANIFEST" "$T/local/db/$M"
list_is "list shows both" "$D $M" "$CONF" list local db
expect_ok "verify (size + md5)" "$CONF" verify local db "$DUMP" "$MANIFEST"

# same size, same mtime, one byte changed: only a hash can tell
printf 'X' | dd of="$T/local/db/$D" bs=1 seek=4096 conv=notrunc 2>/dev/null
touch -r "$DUMP" "$T/local/db/$D"
expect_fail "verify detects a same-size corruption" "md5 mismatch" \
    "$CONF" verify local db "$DUMP"
run "$CONF" put local db "$DUMP"
if [ "$rc" = 0 ] && grep -q "retrying" <<<"$out" &&
    cmp -s "$DUMP" "$T/local/db/$D"; then
	ok "put repairs it (copy looked current; the retry re-copies)"
else
	not_ok "put repairs a same-size same-time corruption" "$out"
fi

GOT=$T/got.dump
expect_ok "get" "$CONF" get local db "$D" "$GOT"
check "got the same bytes" cmp "$DUMP" "$GOT"
expect_fail "get of a missing name fails, naming the remote" \
    "^error: remote local .*(not found|exited with status)" \
    "$CONF" get local db nope.dump "$T/nope"
expect_ok "delete one existing + one missing" "$CONF" delete local db \
    "$M" never-was.json
list_is "list after delete" "$D" "$CONF" list local db
list_is "list of a target never copied: 0 names" "" \
    "$CONF" list local never-copied
expect_ok "delete in a target never copied" "$CONF" delete local \
    never-copied x.dump

expect_ok "path with a trailing slash" "$CONF" put slash db "$MANIFEST"
check "... lands in PATH/TARGET/NAME" cmp "$MANIFEST" "$T/slash/db/$M"

# local names that rclone would misread: "a:b" (a remote), "-x" (a flag)
(
	cd "$T/backups/db" && cp "$MANIFEST" "odd:name.json" &&
	"$DRIVER" "$CONF" put local db "odd:name.json" &&
	"$DRIVER" "$CONF" get local db "odd:name.json" "x:y.json"
) >"$T/odd.log" 2>&1
if cmp -s "$MANIFEST" "$T/local/db/odd:name.json" &&
    cmp -s "$MANIFEST" "$T/backups/db/x:y.json"; then
	ok "relative local paths with ':' stay local"
else
	not_ok "relative local paths with ':' stay local" "$(cat "$T/odd.log")"
fi

expect_ok "no rclone_config: rclone's defaults" "$CONF_PLAIN" put local db \
    "$MANIFEST"
check "... copied" cmp "$MANIFEST" "$T/plain/db/$M"
expect_fail "a missing rclone binary is a clear error" "cannot run" \
    "$CONF_NOBIN" put local db "$MANIFEST"

echo "== refusals"
cp "$MANIFEST" "$T/backups/db/.hidden"
expect_fail "put of a dot file" "refusing file name" \
    "$CONF" put local db "$T/backups/db/.hidden"
expect_fail "delete '../x'" "refusing file name" \
    "$CONF" delete local db ../x
expect_fail "get '-x'" "refusing file name" "$CONF" get local db -x "$T/x"
expect_fail "target '..'" "refusing target name" "$CONF" list local ..
expect_fail "target with '/'" "refusing target name" \
    "$CONF" put local "db/../.." "$MANIFEST"
expect_fail "credentials in the remote path" "connection parameters" \
    "$CONF" list inline db
expect_fail "a missing local file" "No such file" \
    "$CONF" put local db "$T/backups/db/missing.dump"

# ---- (b) rclone serve webdav ----------------------------------------------
echo "== webdav remote (rclone serve webdav on 127.0.0.1:$dav_port)"
expect_ok "put dump + manifest" "$CONF" put dav db "$DUMP" "$MANIFEST"
check "served copy is byte-identical" cmp "$DUMP" \
    "$T/served/vmst-backups/db/$D"
list_is "list shows both" "$D $M" "$CONF" list dav db
expect_ok "verify (size only: no hashes on webdav)" "$CONF" verify dav db \
    "$DUMP" "$MANIFEST"
expect_ok "get" "$CONF" get dav db "$D" "$T/got-dav.dump"
check "got the same bytes" cmp "$DUMP" "$T/got-dav.dump"

# ---- (e) size mismatch ------------------------------------------------------
truncate -s 1000 "$T/served/vmst-backups/db/$D"
expect_fail "verify detects a truncated remote copy" \
    "^error: remote dav .*size mismatch: local 1048576 bytes, remote 1000" \
    "$CONF" verify dav db "$DUMP"
rm "$T/served/vmst-backups/db/$M"
expect_fail "verify detects a missing remote copy" "missing on the remote" \
    "$CONF" verify dav db "$MANIFEST"
expect_ok "put repairs both" "$CONF" put dav db "$DUMP" "$MANIFEST"
check "... byte-identical again" cmp "$DUMP" "$T/served/vmst-backups/db/$D"

expect_ok "delete one existing + one missing" "$CONF" delete dav db "$M" \
    never-was.json
list_is "list after delete" "$D" "$CONF" list dav db
list_is "list of a target never copied: 0 names" "" \
    "$CONF" list dav never-copied
# [storage] rclone_config must win over an RCLONE_CONFIG the daemon
# inherited: rclone (Go) takes the first of two same-named variables
out=$(RCLONE_CONFIG=$T/empty.conf "$DRIVER" "$CONF" list dav db 2>&1); rc=$?
if [ "$rc" = 0 ] && [ "$out" = "$D" ]; then
	ok "rclone_config wins over an inherited RCLONE_CONFIG"
else
	not_ok "rclone_config wins over an inherited RCLONE_CONFIG" "$out"
fi
expect_ok "remote at the root (dav:)" "$CONF" put davroot db "$MANIFEST"
check "... lands in ROOT/TARGET/NAME" cmp "$MANIFEST" "$T/served/db/$M"

# ---- (c) unreachable ------------------------------------------------------
echo "== unreachable remote (webdav on closed port $dead_port)"
start=$(date +%s)
expect_fail "put fails, naming the remote and rclone's status" \
    "^error: remote dead \(dead:vmst-backups\): copyto .*exited with status [0-9]+ \(.*\).*connection refused" \
    "$CONF" put dead db "$MANIFEST"
check "... after one retry" grep -q "retrying" <<<"$out"
check "... within 20 s" test $(($(date +%s) - start)) -lt 20
expect_fail "list fails (not an empty list)" "^error: remote dead " \
    "$CONF" list dead db
expect_fail "delete fails (not 'already gone')" "^error: remote dead " \
    "$CONF" delete dead db "$M"
expect_fail "get fails" "^error: remote dead " \
    "$CONF" get dead db "$M" "$T/x"
expect_fail "wrong password fails, with the server's answer" \
    "^error: remote badpass .*401 Unauthorized" \
    "$CONF" put badpass db "$MANIFEST"

# ---- (d) fails only on upload ----------------------------------------------
echo "== read-only remote (rclone serve webdav --read-only)"
list_is "list works (0 names)" "" "$CONF" list ro db
expect_fail "put fails, naming the remote" \
    "^error: remote ro \(ro:vmst-backups\): copyto .*exited with status" \
    "$CONF" put ro db "$MANIFEST"

# ---- figures ---------------------------------------------------------------
echo "== put + verify of a $BIG_MB MiB file"
BIG=$T/big/db-big.dump
head -c $((BIG_MB * 1048576)) /dev/urandom >"$BIG"
for remote in local dav; do
	t0=$(date +%s%N)
	run "$CONF" put $remote big "$BIG"
	t1=$(date +%s%N)
	if [ "$rc" = 0 ]; then
		ms=$(((t1 - t0) / 1000000))
		ok "$BIG_MB MiB to $remote: $ms ms ($((BIG_MB * 1000 / (ms > 0 ? ms : 1))) MiB/s)"
	else
		not_ok "$BIG_MB MiB to $remote" "$out"
	fi
done

echo "remote: $passed passed, $failed failed"
[ "$failed" = 0 ]
