#!/bin/bash
# tests/packaging/systemd_test.sh - the systemd unit, sysusers.d and
# tmpfiles.d files (dist/), as `make install PREFIX=/usr` installs them,
# under a real systemd as PID 1, talking to the test homeserver.
#
# Builds the Dockerfile's build stage, runs `make install DESTDIR=/pkg
# PREFIX=/usr` in it (or PREFIX=/usr/local, `make install`'s default) and
# copies the result into debian:12-slim with systemd, the shared libraries
# of the Dockerfile's runtime stage, curl, and python3 for
# tests/homeserver/hs.py (run inside as a transient unit, with the Matrix
# spec mounted from $MATRIX_SPEC_DIR or ../shared/matrix-spec).
# The container runs /lib/systemd/systemd as PID 1, not --privileged but
# with every capability the host's root has (a VM may withhold some, and
# --privileged then fails), no seccomp or AppArmor profile, and the host's
# cgroup namespace with /sys/fs/cgroup mounted read-write.
#
# Checks:
#   - systemd boots: is-system-running says running (or degraded)
#   - at boot, systemd-sysusers made the backupbot user (home
#     /var/lib/backupbot, no login shell) and systemd-tmpfiles the two
#     directories, 0700 backupbot; README's commands find nothing to do
#   - `backupbot check` as the backupbot user passes (README's steps)
#   - `systemctl enable --now backupbot`: active, the daemon runs as
#     backupbot, its journal reaches "ready: listening"
#   - `!backup www` from an admin: a ✅ reply in the room, the backup in
#     /var/backups/backupbot/www/ (backupbot's, 0600) with /srv/www in it
#   - `systemctl reload`: "reload: configuration reloaded", same MainPID
#   - the sandbox: NoNewPrivs, no capabilities, seccomp on; in the
#     daemon's mount namespace /usr, /etc, /var/lib and /home are
#     read-only and state_dir and backup_dir are writable
#   - kill -9: Restart=on-failure starts a new MainPID that gets ready
#     again (a drop-in sets RestartSec=1s for the test; the unit says 30s)
#   - `systemctl stop` while a backup runs (slowed by a runtime
#     CPUQuota=3%): inactive, not failed, within 5 s, no partial file and
#     no process left; after the next start the room hears of it
#   - `systemctl stop`: inactive (not failed) within 5 s, exit status 0,
#     "stopped" logged
#   - the homeserver saw no Matrix spec violations
# Notes the exposure level of `systemd-analyze security backupbot`.
# Prints "ok - ..." / "not ok - ..." and "systemd: N passed, N failed";
# exits 1 on any failure, 77 ("skip: ...") without a Docker daemon or
# root.  Slow (a minute or more the first time; then about 30 s), so not
# part of tests/run.sh.  Leaves the images $IMAGE and $IMAGE-build
# (backupbot:systemd-test[-build]) for the next run's layer cache.
#
#   sudo tests/packaging/systemd_test.sh
#   PREFIX=/usr/local sudo -E tests/packaging/systemd_test.sh
#   KEEP=1 sudo -E tests/packaging/systemd_test.sh   (leave the container
#       running: docker exec -it backupbot-systemd-test-PID bash)
set -u
cd "$(dirname "$0")/../.." || exit 1

IMAGE=${IMAGE:-backupbot:systemd-test}
PREFIX=${PREFIX:-/usr}		# make install PREFIX=
SPEC=${MATRIX_SPEC_DIR:-../shared/matrix-spec}
HS=http://127.0.0.1:8008	# the test homeserver, inside the container
BOT=@backupbot:localhost
ADMIN=@alice:localhost
TOKEN=syt_systemd_test_Kq3vW8	# the bot's access token
SUITE=systemd
. tests/packaging/docker_base.sh

# check DESC GOT WANT: ok when they are equal
check() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1" "got:  $2
want: $3"
	fi
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

command -v docker >/dev/null || skip "no docker client"
docker info >/dev/null 2>&1 || skip "no Docker daemon reachable"
[ "$(id -u)" = 0 ] || skip "not root (the container needs capabilities)"
[ -d "$SPEC/data/api/client-server" ] ||
	skip "no Matrix spec at $SPEC (set MATRIX_SPEC_DIR)"
SPEC=$(cd "$SPEC" && pwd)

T=$(mktemp -d /tmp/systemd_test.XXXXXX)
CTR=backupbot-systemd-test-$$
cleanup() {
	if [ -n "${KEEP:-}" ]; then
		echo "# kept: docker exec -it $CTR bash; docker rm -f $CTR"
	else
		docker rm -f "$CTR" >/dev/null 2>&1
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- helpers -----------------------------------------------------------------
# in_ctr CMDLINE: run a shell command line in the container, output on stdout
in_ctr() { docker exec "$CTR" sh -c "$1" 2>&1; }
# wait_for SECONDS CMDLINE: until CMDLINE succeeds in the container
wait_for() {
	local deadline=$((SECONDS + $1))
	until in_ctr "$2" >/dev/null; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.2
	done
}
# hs METHOD PATH [JSON]: the test homeserver's control API; the answer
hs() {
	docker exec "$CTR" curl -sS --fail-with-body -X "$1" \
	    -H 'Content-Type: application/json' ${3:+--data "$3"} "$HS$2" 2>&1
}
# json EXPR: a Python expression over the JSON document `j` on stdin
json() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }
# urlq STRING: STRING %-encoded for a URL's path or query
urlq() {
	python3 -c 'import sys, urllib.parse as u
print(u.quote(sys.argv[1], safe=""))' "$1"
}
prop() { in_ctr "systemctl show -p $1 --value backupbot"; }
# unit_state: is-active, Result= and the main process's exit status
unit_state() {
	echo "$(in_ctr 'systemctl is-active backupbot') result=$(prop Result)" \
	    "status=$(prop ExecMainStatus)"
}
journal() { in_ctr 'journalctl -u backupbot -o cat --no-pager'; }
# bot_said: the bodies of the bot's messages in the room (an edit's new
# body), one a line
bot_said() {
	hs GET "/_test/events?room_id=$(urlq "$ROOM")&sender=$(urlq "$BOT")" |
	    python3 -c '
import json, sys
for e in json.load(sys.stdin)["events"]:
	c = e["event"]["content"]
	c = c.get("m.new_content", c)
	if "body" in c:
		print(c["body"].replace("\n", " "))'
}
# wait_said SECONDS REGEX: until a message of the bot matches REGEX
wait_said() {
	local deadline=$((SECONDS + $1))
	until bot_said | grep -E "$2" >/dev/null; do
		[ "$SECONDS" -ge "$deadline" ] && return 1
		sleep 0.3
	done
}
# missing_caps: --cap-drop for each capability this host's root lacks
missing_caps() {
	local names=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL
	    SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE
	    NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE
	    SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT
	    SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE
	    AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG
	    WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
	    CHECKPOINT_RESTORE)
	local bnd i
	bnd=$((16#$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)))
	for ((i = 0; i < ${#names[@]}; i++)); do
		[ $((bnd >> i & 1)) = 1 ] || echo "--cap-drop ${names[i]}"
	done
}

# ---- the image ---------------------------------------------------------------
ensure_base

echo "# docker build --target build (the Dockerfile's build stage)"
SECONDS=0
if ! docker build "${BUILD_FLAGS[@]}" --target build -t "$IMAGE-build" . \
    >"$T/build.log" 2>&1; then
	cp "$T/build.log" /tmp/systemd_test-build.log
	not_ok "build stage (log: /tmp/systemd_test-build.log)" \
	    "$(tail -30 "$T/build.log")"
	finish
fi
# The runtime stage's shared libraries, read from the Dockerfile.
LIBS=$(awk '/^FROM/ { n++ } n == 2' Dockerfile |
    sed -n '/apt-get install/,/rm -rf/p' |
    grep -oE '(^|[[:space:]])lib[^[:space:]]+' | tr -d ' \t' | tr '\n' ' ')
note "runtime libraries from the Dockerfile: $LIBS"
if docker build "${BUILD_FLAGS[@]}" -t "$IMAGE" - >"$T/image.log" 2>&1 <<EOF
FROM $IMAGE-build AS build
RUN make install DESTDIR=/pkg PREFIX=$PREFIX

FROM $BASE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      systemd procps curl python3 python3-jsonschema python3-yaml $LIBS \\
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /pkg/ /
ENV container=docker
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
EOF
then
	ok "image with systemd and \`make install PREFIX=$PREFIX\` ($SECONDS s)"
else
	cp "$T/image.log" /tmp/systemd_test-build.log
	not_ok "image with systemd (log: /tmp/systemd_test-build.log)" \
	    "$(tail -30 "$T/image.log")"
	finish
fi

# ---- boot --------------------------------------------------------------------
read -ra CAP_DROP <<<"$(missing_caps | tr '\n' ' ')"
[ ${#CAP_DROP[@]} = 0 ] || note "the host lacks: ${CAP_DROP[*]}"
SECONDS=0
if ! docker run -d --name "$CTR" --cap-add ALL "${CAP_DROP[@]}" \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock \
    -v "$SPEC:/opt/matrix-spec:ro" -v "$PWD/tests/homeserver:/opt/hs:ro" \
    "$IMAGE" >/dev/null 2>"$T/run.err"; then
	not_ok "docker run ... /lib/systemd/systemd" "$(cat "$T/run.err")"
	finish
fi
# systemctl needs PID 1's private socket before it can --wait.
wait_for 60 'test -S /run/systemd/private'
state=$(timeout 120 docker exec "$CTR" systemctl is-system-running --wait 2>&1)
case "$state" in
running) ok "systemd boots: $state (${SECONDS} s)" ;;
degraded)
	ok "systemd boots: $state (${SECONDS} s)"
	note "failed units: $(in_ctr 'systemctl --failed --plain --no-legend' |
	    awk '{ print $1 }' | tr '\n' ' ')"
	;;
*)
	not_ok "systemd boots" "is-system-running: $state
$(docker logs "$CTR" 2>&1 | tail -20)"
	finish
	;;
esac

# ---- the user and the directories --------------------------------------------
# systemd-sysusers.service and systemd-tmpfiles-setup.service ran at boot
# with the files install put in $PREFIX/lib/sysusers.d and tmpfiles.d.
check "sysusers.d: the backupbot user, home state_dir, no login shell" \
    "$(in_ctr 'getent passwd backupbot | cut -d: -f1,6,7')" \
    "backupbot:/var/lib/backupbot:/usr/sbin/nologin"
check "tmpfiles.d: state_dir and backup_dir, 0700 backupbot" \
    "$(in_ctr 'stat -c "%a %U:%G %n" /var/lib/backupbot /var/backups/backupbot')" \
    "700 backupbot:backupbot /var/lib/backupbot
700 backupbot:backupbot /var/backups/backupbot"
out=$(in_ctr 'systemd-sysusers backupbot.conf &&
    systemd-tmpfiles --create backupbot.conf && echo done')
check "README's systemd-sysusers/systemd-tmpfiles commands: nothing to do" \
    "$out" "done"

# ---- the homeserver, the room and bot.conf -----------------------------------
in_ctr 'systemd-run --unit=test-homeserver \
    --setenv=MATRIX_SPEC_DIR=/opt/matrix-spec \
    /usr/bin/python3 /opt/hs/hs.py --port 8008' >/dev/null
if ! wait_for 60 "curl -sf $HS/_test/health"; then
	not_ok "test homeserver starts" \
	    "$(in_ctr 'journalctl -u test-homeserver -o cat | tail -20')"
	finish
fi
hs POST /_test/users "{\"user_id\": \"$ADMIN\", \"password\": \"pw-alice-1\"}" \
    >/dev/null
hs POST /_test/users "{\"user_id\": \"$BOT\", \"access_token\": \"$TOKEN\"}" \
    >/dev/null
ROOM=$(hs POST /_test/rooms "{\"creator\": \"$ADMIN\",
    \"members\": [\"$ADMIN\", \"$BOT\"],
    \"power_levels\": {\"users\": {\"$ADMIN\": 100}}}" | json 'j["room_id"]')
if [ -z "$ROOM" ]; then
	not_ok "a room at the test homeserver" \
	    "$(in_ctr 'journalctl -u test-homeserver -o cat | tail -20')"
	finish
fi
note "room $ROOM at the test homeserver"

# As README.md's "Under systemd": /etc/backupbot 0700 backupbot, the
# secret 0600; bot.conf 0600 too.  What the targets back up is root's
# and world-readable, as /etc/nginx would be: www is small, big is 64 MB
# that does not compress (a backup to stop half-way).
in_ctr 'mkdir -p /srv/www/img /srv/big &&
    echo "<h1>hello</h1>" >/srv/www/index.html &&
    head -c 4096 /dev/urandom >/srv/www/img/logo.png &&
    head -c 64M /dev/urandom >/srv/big/data' >/dev/null
in_ctr 'install -d -m 700 -o backupbot /etc/backupbot' >/dev/null
docker exec -i "$CTR" sh -c 'umask 077 && cat >/etc/backupbot/bot.conf' <<EOF
[matrix]
homeserver = $HS
user_id = $BOT
access_token_file = /etc/backupbot/token
rooms = $ROOM
admins = $ADMIN

[storage]
state_dir = /var/lib/backupbot
backup_dir = /var/backups/backupbot

[files www]
paths = /srv/www

[files big]
paths = /srv/big
EOF
docker exec -i "$CTR" sh -c 'umask 077 && cat >/etc/backupbot/token' <<<"$TOKEN"
in_ctr 'chown backupbot: /etc/backupbot/bot.conf /etc/backupbot/token' >/dev/null

out=$(in_ctr 'runuser -u backupbot -- backupbot check; echo "exit $?"')
if [ "$(tail -1 <<<"$out")" = "exit 0" ]; then
	ok "backupbot check as the backupbot user"
else
	not_ok "backupbot check as the backupbot user" "$out"
fi

# ---- start -------------------------------------------------------------------
start=$(date +%s%N)
out=$(in_ctr 'systemctl daemon-reload && systemctl enable --now backupbot')
check "systemctl enable --now backupbot: active" \
    "$(in_ctr 'systemctl is-active backupbot')" active
[ -n "$out" ] && note "$out"
pid=$(prop MainPID)
check "the daemon (MainPID $pid) runs as backupbot" \
    "$(in_ctr "ps -o user:16=,group:16=,args= -p $pid" | tr -s ' ')" \
    "backupbot backupbot $PREFIX/bin/backupbot -c /etc/backupbot/bot.conf run"
if wait_for 30 "journalctl -u backupbot -o cat |
    grep -q '^.* ready: listening for commands in 1 room(s)\$'"; then
	ok "journal: ready: listening for commands in 1 room(s) ($(ms_since "$start") ms)"
else
	not_ok "journal: ready: listening" "$(journal | tail -20)"
	finish
fi

# ---- a backup from the chat --------------------------------------------------
start=$(date +%s%N)
hs POST "/_test/rooms/$(urlq "$ROOM")/send" "{\"sender\": \"$ADMIN\",
    \"content\": {\"msgtype\": \"m.text\", \"body\": \"!backup www\"}}" >/dev/null
if wait_said 60 '^✅ backup of www'; then
	ok "!backup www: ✅ in the room ($(ms_since "$start") ms)"
else
	not_ok "!backup www: ✅ in the room" "the bot said:
$(bot_said)
$(journal | tail -10)"
fi
files=$(in_ctr 'cd /var/backups/backupbot/www && stat -c "%a %U %n" *')
id=$(in_ctr 'cd /var/backups/backupbot/www && ls *.json' | sed 's/\.json$//')
check "backup_dir/www/: the data file and the manifest, backupbot's, 0600" \
    "$(sed -E 's/ www-[^.]+/ ID/' <<<"$files")" "600 backupbot ID.json
600 backupbot ID.tar.zst"
out=$(in_ctr "runuser -u backupbot -- backupbot cat '$id' | tar -t | sort")
check "the backup holds /srv/www" "$out" "srv/www/
srv/www/img/
srv/www/img/logo.png
srv/www/index.html"

# ---- reload ------------------------------------------------------------------
out=$(in_ctr 'systemctl reload backupbot && echo done')
if [ "$out" = "done" ] && wait_for 10 "journalctl -u backupbot -o cat |
    grep -q 'reload: configuration reloaded'"; then
	ok "systemctl reload: journal says \"reload: configuration reloaded\""
else
	not_ok "systemctl reload: configuration reloaded" "$out
$(journal | tail -10)"
fi
check "after the reload: active, same MainPID" \
    "$(in_ctr 'systemctl is-active backupbot') $(prop MainPID)" "active $pid"

# ---- the sandbox -------------------------------------------------------------
check "systemctl show: the unit's hardening settings" \
    "$(in_ctr 'systemctl show backupbot -p User -p NoNewPrivileges \
        -p ProtectSystem -p ProtectHome -p PrivateTmp -p PrivateDevices \
        -p CapabilityBoundingSet -p ReadWritePaths' | sort)" \
    "CapabilityBoundingSet=
NoNewPrivileges=yes
PrivateDevices=yes
PrivateTmp=yes
ProtectHome=read-only
ProtectSystem=strict
ReadWritePaths=/var/lib/backupbot /var/backups/backupbot
User=backupbot"
check "/proc/MAINPID/status: NoNewPrivs, no capabilities, seccomp filter" \
    "$(in_ctr "grep -E '^(NoNewPrivs|Cap(Inh|Prm|Eff|Bnd|Amb)|Seccomp):' \
        /proc/$pid/status" | tr -s '\t' ' ')" \
    "CapInh: 0000000000000000
CapPrm: 0000000000000000
CapEff: 0000000000000000
CapBnd: 0000000000000000
CapAmb: 0000000000000000
NoNewPrivs: 1
Seccomp: 2"
# As root in the daemon's mount namespace: read-only bind mounts stop root
# too, so this is the file system the daemon sees, whatever its user.
out=$(in_ctr "nsenter -t $pid -m sh -c '
	for d in /usr /etc /var/lib /home /var/lib/backupbot /var/backups/backupbot; do
		if touch \$d/.systemd_test 2>/dev/null; then
			rm \$d/.systemd_test; echo \"\$d writable\"
		else
			echo \"\$d read-only\"
		fi
	done; touch /usr/.x 2>&1'")
check "mount namespace: only state_dir and backup_dir are writable" "$out" \
    "/usr read-only
/etc read-only
/var/lib read-only
/home read-only
/var/lib/backupbot writable
/var/backups/backupbot writable
touch: cannot touch '/usr/.x': Read-only file system"

# ---- kill -9: Restart=on-failure ---------------------------------------------
# The unit waits RestartSec=30s; a drop-in shortens it for the test.
in_ctr 'mkdir -p /etc/systemd/system/backupbot.service.d &&
    printf "[Service]\nRestartSec=1s\n" \
        >/etc/systemd/system/backupbot.service.d/systemd-test.conf &&
    systemctl daemon-reload' >/dev/null
readies=$(journal | grep -c 'ready: listening')
start=$(date +%s%N)
in_ctr "kill -9 $pid" >/dev/null
if wait_for 20 "[ \"\$(journalctl -u backupbot -o cat |
    grep -c 'ready: listening')\" -gt $readies ]"; then
	new=$(prop MainPID)
	if [ "$new" != "$pid" ] && [ "$new" != 0 ] &&
	    [ "$(in_ctr 'systemctl is-active backupbot')" = active ]; then
		took="$(ms_since "$start") ms, NRestarts=$(prop NRestarts)"
		ok "kill -9: restarted as MainPID $new, ready again ($took)"
	else
		not_ok "kill -9: restarted with a new MainPID" "MainPID $pid -> $new"
	fi
	pid=$new
else
	not_ok "kill -9: restarted and ready again" "$(journal | tail -10)
$(in_ctr 'systemctl status backupbot --no-pager' | tail -15)"
fi

# ---- stop during a backup ----------------------------------------------------
# KillMode=control-group: SIGTERM reaches the daemon and the job (and its
# tar) at once; the job removes its partial file.  CPUQuota=3% (for this
# run only) makes the 64 MB take several seconds.
in_ctr 'systemctl set-property --runtime backupbot CPUQuota=3%' >/dev/null
hs POST "/_test/rooms/$(urlq "$ROOM")/send" "{\"sender\": \"$ADMIN\",
    \"content\": {\"msgtype\": \"m.text\", \"body\": \"!backup big\"}}" >/dev/null
if wait_for 30 'ls /var/backups/backupbot/big/*.partial'; then
	procs=$(in_ctr 'ps -o args= -u backupbot' | awk '{ print $1, $(NF - 1), $NF }')
	start=$(date +%s%N)
	in_ctr 'systemctl stop backupbot' >/dev/null
	ms=$(ms_since "$start")
	state=$(unit_state)
	left=$(in_ctr 'ls /var/backups/backupbot/big; pgrep -a -u backupbot')
	if [ "$state" = "inactive result=success status=0" ] &&
	    [ "$ms" -lt 5000 ] && [ -z "$left" ]; then
		ok "stop during a backup: $state after $ms ms, no partial file, no process left"
	else
		not_ok "stop during a backup: inactive, success, within 5 s, nothing left" \
		    "$state after $ms ms; processes before:
$procs
left: $left
$(journal | tail -8)"
	fi
	# The next start tells the room what became of it.
	in_ctr 'systemctl set-property --runtime backupbot CPUQuota= &&
	    systemctl start backupbot' >/dev/null
	# Either the daemon saw the job end (❌ ... cancelled, sent from the
	# outbox) or it exited first (⚠️ ... interrupted, from the ledger).
	if wait_said 30 \
	    '^(❌ backup of big failed|⚠️ the backup of big .* interrupted)'; then
		ok "after a restart the room hears: $(bot_said |
		    grep -E '^(❌|⚠️)' | tail -1 | tr -s ' ')"
	else
		not_ok "after a restart the room hears of the stopped backup" \
		    "the bot said:
$(bot_said | tail -5)"
	fi
else
	not_ok "!backup big: a partial file appears" "$(journal | tail -10)"
fi

# ---- stop --------------------------------------------------------------------
wait_for 30 "journalctl -u backupbot -o cat |
    grep -c 'ready: listening' | grep -qx $((readies + 2))"
inv=$(prop InvocationID)
start=$(date +%s%N)
in_ctr 'systemctl stop backupbot' >/dev/null
ms=$(ms_since "$start")
state=$(unit_state)
if [ "$state" = "inactive result=success status=0" ] && [ "$ms" -lt 5000 ]; then
	ok "systemctl stop: $state after $ms ms"
else
	not_ok "systemctl stop: inactive, result=success, status=0, within 5 s" \
	    "$state after $ms ms"
fi
last=$(in_ctr "journalctl _SYSTEMD_INVOCATION_ID=$inv -o cat" | tail -2 |
    sed -E 's/^[^ ]+ [^ ]+ //')
check "journal: a clean exit" "$last" "info: received Terminated, finishing the current write
info: stopped"

# ---- the homeserver's verdict, and the exposure ------------------------------
out=$(hs GET /_test/violations | json 'j["violations"]')
check "no Matrix spec violations at the homeserver" "$out" "[]"
note "$(in_ctr 'systemd-analyze security backupbot --no-pager' | tail -1)"

finish
