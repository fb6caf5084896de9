#!/bin/bash
# tests/packaging/docker_test.sh - build the Dockerfile's image and check
# that it works, without Docker Hub.
#
# Needs a reachable Docker daemon (else: "skip: ..." and exit 77) and root
# (the config files it mounts must be owned by root, as the bot in the
# container is).  When there is no debian:12-slim image it makes one
# locally: debootstrap --variant=minbase bookworm from deb.debian.org,
# trimmed as Debian's slim images are, then `docker import`
# (tests/packaging/docker_base.sh, shared with systemd_test.sh).
#
# Checks:
#   - .dockerignore keeps the host's build products out of the context
#   - `docker build` succeeds (log kept on failure)
#   - `backupbot --version` is the version of bot/base/version.h
#   - pg_dump and pg_restore 15, redis-cli, redis-check-rdb, redis-server,
#     rclone, tar and git run; no compiler in the runtime image
#   - the mount points exist, with mode 0700 where the Dockerfile says so
#   - `check` with bot.conf.example (backup_dir = /root/backups, an
#     unreachable homeserver): the config, state_dir and backup_dir pass,
#     only the login fails; a missing token file is reported as FILE:LINE
#   - `docker stop` of a running `run` is prompt, with the homeserver
#     unreachable and with one that accepts and never answers,
#     and the exit status is 0
# Prints "ok - ..." / "not ok - ..."; exits 1 on any failure.  Slow (a
# minute or more the first time), so not part of tests/run.sh.
#
#   sudo tests/packaging/docker_test.sh
#   IMAGE=backupbot:dev BUILD_FLAGS="--network host --no-cache" sudo -E tests/packaging/docker_test.sh
set -u
cd "$(dirname "$0")/../.." || exit 1

IMAGE=${IMAGE:-backupbot:test}
VERSION=$(sed -nE 's/^#define BB_VERSION[[:space:]]+"([^"]+)".*/\1/p' bot/base/version.h)
SUITE=docker
. tests/packaging/docker_base.sh

# in_image CMD...: run a shell command line in the image, output on stdout
in_image() { docker run --rm --entrypoint sh "$IMAGE" -c "$1" 2>&1; }

command -v docker >/dev/null || skip "no docker client"
docker info >/dev/null 2>&1 || skip "no Docker daemon reachable"
[ "$(id -u)" = 0 ] || skip "not root (the mounted config must be root's)"

T=$(mktemp -d /tmp/docker_test.XXXXXX)
CTR=backupbot-test-$$
cleanup() {
	docker rm -f "$CTR" >/dev/null 2>&1
	docker rmi "$IMAGE-context" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- the base image ---------------------------------------------------------
ensure_base

# ---- the build context ------------------------------------------------------
# What `COPY . .` would see: none of the host's build products.
printf 'FROM %s\nCOPY . /ctx\n' "$BASE" |
    docker build -q "${BUILD_FLAGS[@]}" -t "$IMAGE-context" -f - . \
    >"$T/context.log" 2>&1
leaked=$(docker run --rm --entrypoint sh "$IMAGE-context" -c '
	cd /ctx || exit 1
	for f in backupbot backupbot-asan build build-asan .git; do
		[ -e "$f" ] && echo "$f"
	done
	find . -name "*.o" -type f' 2>&1)
if [ -z "$leaked" ] && docker image inspect "$IMAGE-context" >/dev/null 2>&1
then
	ok ".dockerignore keeps build products out of the context"
else
	not_ok ".dockerignore keeps build products out of the context" \
	    "$leaked$(cat "$T/context.log")"
fi
docker rmi "$IMAGE-context" >/dev/null 2>&1

# ---- the build ----------------------------------------------------------------
echo "# docker build${BUILD_FLAGS[*]:+ ${BUILD_FLAGS[*]}} -t $IMAGE ."
SECONDS=0
if docker build "${BUILD_FLAGS[@]}" -t "$IMAGE" . >"$T/build.log" 2>&1; then
	ok "docker build ($SECONDS s)"
else
	cp "$T/build.log" /tmp/docker_test-build.log
	not_ok "docker build (log: /tmp/docker_test-build.log)" \
	    "$(tail -30 "$T/build.log")"
	finish
fi
note "image size: $(docker image inspect -f '{{.Size}}' "$IMAGE" |
    awk '{ printf "%.0f MB", $1 / 1e6 }')"

# ---- what is in the image -----------------------------------------------------
out=$(docker run --rm "$IMAGE" --version 2>&1)
if [ "$out" = "backupbot $VERSION" ]; then
	ok "backupbot --version: $out"
else
	not_ok "backupbot --version is \"backupbot $VERSION\"" "$out"
fi

# tool_version DESC CMD PATTERN: CMD's first line of output matches PATTERN
tool_version() {
	local out
	out=$(in_image "$2" | head -1)
	if grep -Eq "$3" <<<"$out"; then
		ok "$1: $out"
	else
		not_ok "$1" "$out"
	fi
}
tool_version pg_dump "pg_dump --version" '^pg_dump \(PostgreSQL\) 15\.'
tool_version pg_restore "pg_restore --version" \
    '^pg_restore \(PostgreSQL\) 15\.'
tool_version redis-cli "redis-cli --version" '^redis-cli [0-9]'
tool_version redis-check-rdb "redis-check-rdb --version" \
    '^redis-check-rdb [0-9]'
tool_version redis-server "redis-server --version" '^Redis server v=[0-9]'
tool_version rclone "rclone version" '^rclone v[0-9]'
tool_version tar "tar --version" '^tar \(GNU tar\)'
tool_version git "git --version" '^git version'

out=$(in_image 'for c in cc gcc make; do command -v $c; done')
if [ -z "$out" ]; then
	ok "no compiler in the runtime image"
else
	not_ok "no compiler in the runtime image" "$out"
fi

out=$(in_image 'stat -c "%a %U %n" /root/backups /var/lib/backupbot \
    /etc/backupbot /root/scripts /root/.config/rclone \
    /etc/backupbot/bot.conf.example')
want="700 root /root/backups
700 root /var/lib/backupbot
700 root /etc/backupbot
755 root /root/scripts
755 root /root/.config/rclone
644 root /etc/backupbot/bot.conf.example"
if [ "$out" = "$want" ]; then
	ok "mount points and modes"
else
	not_ok "mount points and modes" \
	    "$(diff <(echo "$want") <(echo "$out"))"
fi

# ---- backupbot check ----------------------------------------------------------
# bot.conf.example as README.md says to adapt it for the image, with a
# homeserver that refuses connections: nothing listens on port 9.
mkdir -m 0700 "$T/etc"
sed -e 's|^backup_dir = .*|backup_dir = /root/backups|' \
    -e 's|^homeserver = .*|homeserver = http://127.0.0.1:9|' \
    bot.conf.example >"$T/etc/bot.conf"
echo syt_not_a_real_token >"$T/etc/token"
chmod 0600 "$T/etc/bot.conf" "$T/etc/token"

out=$(docker run --rm -v "$T/etc:/etc/backupbot:ro" "$IMAGE" check 2>&1)
rc=$?
want_ok="ok: /etc/backupbot/bot.conf is valid
ok: state_dir /var/lib/backupbot is writable
ok: backup_dir /root/backups is writable"
errors=$(grep -v '^ok: ' <<<"$out")
if [ "$rc" != 0 ] && [ "$(grep '^ok: ' <<<"$out")" = "$want_ok" ] &&
    grep -q '^error: login: cannot reach http://127.0.0.1:9' <<<"$errors" &&
    [ "$(wc -l <<<"$errors")" = 1 ]; then
	ok "check: config, state_dir and backup_dir pass; the login fails"
else
	not_ok "check: config, state_dir and backup_dir pass; the login fails" \
	    "exit $rc
$out"
fi

# Only bot.conf mounted: the token file it names is missing.
out=$(docker run --rm -v "$T/etc/bot.conf:/etc/backupbot/bot.conf:ro" \
    "$IMAGE" check 2>&1)
rc=$?
if [ "$rc" != 0 ] && grep -Eq \
    '^error: /etc/backupbot/bot.conf:[0-9]+: access_token_file: /etc/backupbot/token: No such file' \
    <<<"$out"; then
	ok "check: a missing token file is reported as FILE:LINE"
else
	not_ok "check: a missing token file is reported as FILE:LINE" \
	    "exit $rc
$out"
fi

# ---- docker stop ----------------------------------------------------------------
# stop_check DESC: `docker stop` of the running $CTR ends it with status 0
# within 5 s; the container is removed.
stop_check() {
	local start ms code
	start=$(date +%s%N)
	docker stop -t 10 "$CTR" >/dev/null
	ms=$((($(date +%s%N) - start) / 1000000))
	code=$(docker inspect -f '{{.State.ExitCode}}' "$CTR")
	if [ "$code" = 0 ] && [ "$ms" -lt 5000 ]; then
		ok "$1: exit status 0 after $ms ms"
	else
		not_ok "$1: exit status 0 within 5 s" "exit status $code after $ms ms
$(docker logs "$CTR" 2>&1 | tail -10)"
	fi
	docker rm "$CTR" >/dev/null
}

# `run` retries the login to the refusing homeserver until SIGTERM.
if docker run -d --name "$CTR" -v "$T/etc:/etc/backupbot:ro" "$IMAGE" run \
    >/dev/null 2>"$T/run.err"; then
	for _ in $(seq 50); do
		docker logs "$CTR" 2>&1 | grep -q 'retrying in' && break
		sleep 0.2
	done
	state=$(docker inspect -f '{{.State.Status}}' "$CTR")
	if [ "$state" = running ]; then
		ok "run keeps running while the homeserver is unreachable"
	else
		not_ok "run keeps running while the homeserver is unreachable" \
		    "state $state
$(docker logs "$CTR" 2>&1 | tail -10)"
	fi
	stop_check "docker stop"
else
	not_ok "docker run -d ... run" "$(cat "$T/run.err")"
fi

# A homeserver that accepts the connection and never answers: the login
# request hangs, and SIGTERM must still stop the bot at once.
/usr/bin/python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
held = []
while True:
	held.append(s.accept()[0])
' >"$T/hang.port" &
hang=$!
for _ in $(seq 50); do [ -s "$T/hang.port" ] && break; sleep 0.1; done
sed "s|^homeserver = .*|homeserver = http://127.0.0.1:$(cat "$T/hang.port")|" \
    "$T/etc/bot.conf" >"$T/etc/hang.conf"
chmod 0600 "$T/etc/hang.conf"
if docker run -d --name "$CTR" --network host \
    -v "$T/etc:/etc/backupbot:ro" --entrypoint /usr/local/bin/backupbot \
    "$IMAGE" -c /etc/backupbot/hang.conf run >/dev/null 2>"$T/run.err"; then
	sleep 2
	stop_check "docker stop with a hung homeserver"
else
	not_ok "docker run -d ... run (hung homeserver)" "$(cat "$T/run.err")"
fi
kill "$hang" 2>/dev/null

finish
