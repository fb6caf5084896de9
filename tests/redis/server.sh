#!/usr/bin/env bash
#
# server.sh - a throwaway redis-server for tests, the way redis' own
# test.sh starts one: one directory, one loopback port, nothing saved.
#
#   server.sh start DIR PORT [--password] [redis-server args...]
#   server.sh tls DIR PORT [--password] [redis-server args...]
#   server.sh stop DIR
#
# Layout of DIR:
#   DIR/redis.conf    the config (mode 0600: it may hold the password)
#   DIR/redis.pass    with --password: the password (0600), made once
#   DIR/redis.pid     DIR/redis.log    DIR/redis.sock (unix socket, 0700)
#   DIR/tls/          with tls: ca.crt (the CA that signed server.crt),
#                     other-ca.crt (a CA that signed nothing we serve),
#                     server.crt/.key for 127.0.0.1 and localhost
#
# "start" listens on 127.0.0.1:PORT; "tls" listens with TLS only on
# 127.0.0.1:PORT (--port 0 --tls-port PORT, no client certificates).
# The server never saves on its own (save ""), and sends diskless
# snapshots at once (repl-diskless-sync-delay 0) so that tests do not
# wait the 5 s a production server waits for more replicas.  Extra
# arguments override all that: --repl-diskless-sync no, --rename-command
# SYNC "", --dbfilename x.rdb ...  The DIR's dump.rdb, if there is one,
# is loaded at start.

set -euo pipefail

die() { echo "server.sh: $*" >&2; exit 1; }

usage() {
	sed -n '6,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

check_port() {
	case "$1" in
	''|*[!0-9]*) die "bad port: $1" ;;
	esac
	if [ "$1" -lt 1024 ] || [ "$1" -gt 65535 ]; then
		die "port out of range: $1"
	fi
}

# A CA, a server certificate it signs, and an unrelated second CA.
make_certs() {
	local d=$1/tls

	[ -s "$d/server.crt" ] && return 0
	mkdir -p "$d"
	chmod 0700 "$d"
	(
		cd "$d"
		openssl req -x509 -new -newkey rsa:2048 -nodes -days 2 \
		    -subj "/CN=backupbot test CA" -keyout ca.key -out ca.crt
		openssl req -x509 -new -newkey rsa:2048 -nodes -days 2 \
		    -subj "/CN=an unrelated CA" -keyout other-ca.key \
		    -out other-ca.crt
		openssl req -new -newkey rsa:2048 -nodes \
		    -subj "/CN=localhost" -keyout server.key -out server.csr
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext.cnf
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key \
		    -CAcreateserial -days 2 -extfile ext.cnf -out server.crt
	) >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; die "openssl failed"; }
	chmod 0600 "$d"/*.key
}

cmd_start() {
	local tls=$1 port=$2 pw
	shift 2

	check_port "$port"
	command -v redis-server >/dev/null ||
	    die "redis-server not found (Debian: apt-get install redis-server)"
	mkdir -p "$DIR"
	DIR=$(cd "$DIR" && pwd)
	if [ -f "$DIR/redis.pid" ] && kill -0 "$(cat "$DIR/redis.pid")" 2>/dev/null; then
		die "already running in $DIR (pid $(cat "$DIR/redis.pid"))"
	fi
	rm -f "$DIR/redis.pid"
	( umask 077; : >"$DIR/redis.conf" )
	{
		echo "# server.sh: a throwaway test server"
		echo "bind 127.0.0.1"
		if [ "$tls" = 1 ]; then
			make_certs "$DIR"
			echo "port 0"
			echo "tls-port $port"
			echo "tls-cert-file $DIR/tls/server.crt"
			echo "tls-key-file $DIR/tls/server.key"
			echo "tls-ca-cert-file $DIR/tls/ca.crt"
			echo "tls-auth-clients no"
			echo "tls-replication yes"
		else
			echo "port $port"
		fi
		echo "unixsocket $DIR/redis.sock"
		echo "unixsocketperm 700"
		echo "daemonize yes"
		echo "dir $DIR"
		echo "pidfile $DIR/redis.pid"
		echo "logfile $DIR/redis.log"
		echo 'save ""'
		echo "appendonly no"
		echo "repl-diskless-sync-delay 0"
		echo "enable-debug-command local"
		if [ "${1:-}" = --password ]; then
			if [ ! -s "$DIR/redis.pass" ]; then
				pw="bb-$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')"
				( umask 077; printf '%s\n' "$pw" >"$DIR/redis.pass" )
			fi
			chmod 0600 "$DIR/redis.pass"
			echo "requirepass $(head -n 1 "$DIR/redis.pass")"
		fi
	} >>"$DIR/redis.conf"
	[ "${1:-}" = --password ] && shift

	redis-server "$DIR/redis.conf" "$@" ||
	    { tail -n 20 "$DIR/redis.log" >&2 2>/dev/null; die "redis-server did not start"; }
	# Ready when the socket answers (it never needs TLS or a password
	# for PING to tell "up": NOAUTH is an answer too).
	for _ in $(seq 1 100); do
		if [ -S "$DIR/redis.sock" ] &&
		    redis-cli -s "$DIR/redis.sock" PING 2>/dev/null | grep -qE 'PONG|NOAUTH'; then
			echo "ready: 127.0.0.1:$port$([ "$tls" = 1 ] && echo ' (TLS)') socket $DIR/redis.sock"
			return 0
		fi
		sleep 0.05
	done
	tail -n 20 "$DIR/redis.log" >&2 2>/dev/null
	die "redis-server not ready on 127.0.0.1:$port"
}

cmd_stop() {
	local pid

	if [ ! -f "$DIR/redis.pid" ]; then
		echo "not running"
		return 0
	fi
	pid=$(cat "$DIR/redis.pid")
	case "$pid" in
	''|*[!0-9]*) die "bad pid file $DIR/redis.pid" ;;
	esac
	# Only our own server: its command line names our config.
	if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server; then
		rm -f "$DIR/redis.pid"
		echo "not running"
		return 0
	fi
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 200); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$DIR/redis.pid"; echo "stopped"; return 0; }
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$DIR/redis.pid"
	echo "killed"
}

[ $# -ge 2 ] || usage
CMD=$1
DIR=$2
shift 2
case "$CMD" in
start) [ $# -ge 1 ] || usage; cmd_start 0 "$@" ;;
tls) [ $# -ge 1 ] || usage; cmd_start 1 "$@" ;;
stop) cmd_stop ;;
*) usage ;;
esac
