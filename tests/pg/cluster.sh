#!/usr/bin/env bash
#
# cluster.sh - a throwaway PostgreSQL cluster for tests, the way redis'
# test.sh starts a throwaway server: one directory, one loopback port.
#
#   cluster.sh start DIR PORT                  initdb (first time) and start
#   cluster.sh stop DIR                        stop (fast); DIR stays
#   cluster.sh load DIR PORT DBNAME SIZE_MB    a Mastodon-like database
#
# Layout of DIR:
#   DIR/data          the cluster
#   DIR/.s.PGSQL.PORT the unix socket (trust, superuser "postgres")
#   DIR/pg.pass       password of role "backup" (mode 0600), used over
#                     TCP on 127.0.0.1:PORT with scram-sha-256
#   DIR/postgres.log  the server log
#
# Role "backup" may log in and read everything (pg_read_all_data), like a
# dedicated backup role on a real server.  Its password contains ':' and
# '\' on purpose: they need escaping in a .pgpass file.
#
# Works as an ordinary user, and as root (then the server runs as the
# "postgres" system user, or "bbtest" which is created if needed).
# PG_BINDIR overrides where initdb/pg_ctl/postgres are looked up.

set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }

usage() {
	sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

find_bindir() {
	local d
	if [ -n "${PG_BINDIR:-}" ]; then
		[ -x "$PG_BINDIR/initdb" ] || die "no initdb in PG_BINDIR=$PG_BINDIR"
		echo "$PG_BINDIR"; return
	fi
	# Debian keeps the server binaries out of PATH, one dir per major.
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -rn); do
		if [ -x "$d/initdb" ]; then echo "$d"; return; fi
	done
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir)
		if [ -x "$d/initdb" ]; then echo "$d"; return; fi
	fi
	d=$(command -v initdb 2>/dev/null || true)
	[ -n "$d" ] && { dirname "$d"; return; }
	die "initdb not found: install postgresql (Debian: apt-get install postgresql-15) or set PG_BINDIR"
}

# The user the server runs as: ourselves, or a system user when root.
server_user() {
	if [ "$(id -u)" != 0 ]; then id -un; return; fi
	if id postgres >/dev/null 2>&1; then echo postgres; return; fi
	if ! id bbtest >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin bbtest ||
		    die "cannot create user bbtest"
	fi
	echo bbtest
}

# Run a server-side command as the server user.
as_server() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$SERVER_USER" -- "$@"
	else
		"$@"
	fi
}

check_port() {
	case "$1" in
	''|*[!0-9]*) die "bad port: $1" ;;
	esac
	if [ "$1" -lt 1024 ] || [ "$1" -gt 65535 ]; then
		die "port out of range: $1"
	fi
}

psql_super() {
	local port=$1 db=$2; shift 2
	PGOPTIONS="-c client_min_messages=warning" \
	    "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$port" -U postgres -d "$db" "$@"
}

cmd_start() {
	local port=$1 pw

	check_port "$port"
	mkdir -p "$DIR"
	DIR=$(cd "$DIR" && pwd)
	if [ "$(id -u)" = 0 ]; then
		chown "$SERVER_USER" "$DIR"
		chmod 0700 "$DIR"
		as_server test -w "$DIR" ||
		    die "$SERVER_USER cannot reach $DIR (a parent directory is not searchable); use a directory under /tmp"
	fi

	if [ ! -f "$DIR/data/PG_VERSION" ]; then
		rm -rf "$DIR/data"
		as_server "$BINDIR/initdb" -D "$DIR/data" -U postgres -E UTF8 \
		    --locale=C --auth-local=trust --auth-host=scram-sha-256 \
		    >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
		cat >"$DIR/data/pg_hba.conf" <<-EOF
		# cluster.sh: trust on the socket, scram over loopback TCP only
		local	all	all			trust
		host	all	all	127.0.0.1/32	scram-sha-256
		EOF
		cat >>"$DIR/data/postgresql.conf" <<-EOF

		# cluster.sh: a throwaway test cluster
		listen_addresses = '127.0.0.1'
		port = $port
		unix_socket_directories = '$DIR'
		password_encryption = 'scram-sha-256'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_wal_size = 2GB
		shared_buffers = 128MB
		max_connections = 50
		logging_collector = off
		EOF
		[ "$(id -u)" = 0 ] && chown "$SERVER_USER" "$DIR/data/pg_hba.conf" "$DIR/data/postgresql.conf"
		NEW=1
	else
		# Reused cluster: the port may differ from last time.
		sed -i "s/^port = .*/port = $port/" "$DIR/data/postgresql.conf"
		NEW=0
	fi

	if [ "$(id -u)" = 0 ]; then
		touch "$DIR/postgres.log"
		chown "$SERVER_USER" "$DIR/postgres.log"
	fi
	as_server "$BINDIR/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
	    -o "-p $port" start >/dev/null ||
	    { tail -n 20 "$DIR/postgres.log" >&2; die "server did not start (port $port in use?)"; }
	for _ in $(seq 1 100); do
		"$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" && break
		sleep 0.1
	done
	"$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" || die "server not ready on 127.0.0.1:$port"

	if [ "$NEW" = 1 ] || [ ! -s "$DIR/pg.pass" ]; then
		# ':' and '\' on purpose (pgpass escaping); no quote characters.
		pw="bb:$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')\\x"
		( umask 077; printf '%s\n' "$pw" >"$DIR/pg.pass" )
		chmod 0600 "$DIR/pg.pass"
		psql_super "$port" postgres <<-EOF
		DROP ROLE IF EXISTS backup;
		CREATE ROLE backup LOGIN PASSWORD '$pw';
		GRANT pg_read_all_data, pg_read_all_stats TO backup;
		-- restore drills create (and drop) a scratch database
		ALTER ROLE backup CREATEDB;
		EOF
	fi
	echo "ready: host=127.0.0.1 port=$port user=backup (password in $DIR/pg.pass); superuser: psql -h $DIR -p $port -U postgres"
}

cmd_stop() {
	if [ ! -f "$DIR/data/postmaster.pid" ]; then
		echo "not running"
		return 0
	fi
	as_server "$BINDIR/pg_ctl" -D "$DIR/data" -m fast -w -t 60 stop >/dev/null
	echo "stopped"
}

# A database shaped like Mastodon's: the five tables that hold most of
# an instance's bytes, with the usual indexes and column types.  Content
# is made of words, so it compresses like real posts do; setseed makes it
# the same on every run.  Rows scale with SIZE_MB (calibrated on 15).
cmd_load() {
	local port=$1 db=$2 size=$3 n here

	here=$(cd "$(dirname "$0")" && pwd)

	check_port "$port"
	case "$db" in
	''|*[!a-z0-9_]*) die "bad database name: $db (a-z, 0-9, _)" ;;
	esac
	case "$size" in
	''|*[!0-9]*) die "bad size: $size (MB)" ;;
	esac
	DIR=$(cd "$DIR" && pwd)
	n=$((size * 1000))	# statuses; the other tables follow
	[ "$n" -ge 1000 ] || n=1000

	psql_super "$port" postgres -c "DROP DATABASE IF EXISTS $db" \
	    -c "CREATE DATABASE $db"
	psql_super "$port" "$db" <<-EOF
	SELECT setseed(0.42) \\g /dev/null
	CREATE TEMP TABLE words AS
	  SELECT array['the','a','federated','timeline','boost','toot','instance',
	    'server','admin','moderation','report','hashtag','follow','mastodon',
	    'matrix','backup','restore','database','postgres','redis','media',
	    'upload','image','video','link','preview','thread','reply','mention',
	    'community','fediverse','open','source','release','update','today',
	    'tomorrow','weather','coffee','music','photo','cat','dog','garden',
	    'bike','train','book','movie','game','code'] AS w;

	\\i $here/mastodon.sql

	INSERT INTO accounts
	SELECT g, 'user' || g,
	  CASE WHEN g % 3 = 0 THEN NULL ELSE 'instance' || (g % 97) || '.example' END,
	  initcap((SELECT w[1 + (random() * 49)::int] FROM words)) || ' ' || g,
	  (SELECT string_agg(w[1 + (random() * 49)::int], ' ')
	     FROM words, generate_series(1, 10 + g % 20)),
	  jsonb_build_array(jsonb_build_object('name', 'Website',
	    'value', 'https://example.org/~user' || g)),
	  g % 17 = 0,
	  timestamp '2017-04-01' + g * interval '17 minutes',
	  timestamp '2024-01-01' + g * interval '3 minutes'
	FROM generate_series(1::bigint, GREATEST($n / 20, 10)) g;

	INSERT INTO statuses
	SELECT g,
	  'https://instance' || (g % 97) || '.example/users/user' || (g % ($n / 20 + 1)) || '/statuses/' || g,
	  (SELECT string_agg(w[1 + (random() * 49)::int], ' ')
	     FROM words, generate_series(1, 15 + (g * 7) % 45)),
	  timestamp '2018-01-01' + g * interval '41 seconds',
	  timestamp '2018-01-01' + g * interval '41 seconds',
	  CASE WHEN g % 4 = 0 THEN g - 1 END,
	  CASE WHEN g % 11 = 0 THEN g - 5 END,
	  1 + (g * 7919) % GREATEST($n / 20, 10),
	  g % 4, g % 23 = 0,
	  CASE WHEN g % 23 = 0 THEN 'cw: spoilers' ELSE '' END,
	  (array['en','de','fr','es','ja'])[1 + g % 5]
	FROM generate_series(1::bigint, $n) g;

	INSERT INTO media_attachments
	SELECT g, g * 3, 1 + (g * 31) % GREATEST($n / 20, 10),
	  md5(g::text) || '.jpg', 'image/jpeg', 20000 + (g * 131) % 900000,
	  jsonb_build_object('original', jsonb_build_object('width', 1280,
	    'height', 720 + g % 360, 'aspect', 1.77),
	    'small', jsonb_build_object('width', 640, 'height', 360),
	    'focus', jsonb_build_object('x', 0.0, 'y', 0.0)),
	  'https://files.instance' || (g % 97) || '.example/media/' || g || '.jpg',
	  (SELECT string_agg(w[1 + (random() * 49)::int], ' ')
	     FROM words, generate_series(1, 5 + g % 10)),
	  'UKO2?U%2Tw=w]~RBVZRi};RPxuwH' || (g % 10),
	  timestamp '2018-01-01' + g * interval '123 seconds'
	FROM generate_series(1::bigint, $n / 3) g;

	INSERT INTO follows
	SELECT g, 1 + g % GREATEST($n / 20, 10), 1 + (g * 7) % GREATEST($n / 20, 10),
	  g % 5 <> 0, 'https://instance' || (g % 97) || '.example/' || md5(g::text),
	  timestamp '2018-01-01' + g * interval '300 seconds'
	FROM generate_series(1::bigint, $n / 2) g;

	INSERT INTO notifications
	SELECT g, g, (array['Status','Follow','Favourite','Mention'])[1 + g % 4],
	  1 + g % GREATEST($n / 20, 10), 1 + (g * 13) % GREATEST($n / 20, 10),
	  (array['reblog','follow','favourite','mention'])[1 + g % 4],
	  timestamp '2018-01-01' + g * interval '60 seconds'
	FROM generate_series(1::bigint, $n) g;

	\\i $here/mastodon_indexes.sql
	\\pset tuples_only on
	SELECT 'loaded $db: ' || pg_size_pretty(pg_database_size('$db'));
	EOF
}

[ $# -ge 2 ] || usage
CMD=$1 DIR=$2
shift 2
BINDIR=$(find_bindir)
SERVER_USER=$(server_user)

case "$CMD" in
start)	[ $# -eq 1 ] || usage; cmd_start "$1" ;;
stop)	[ $# -eq 0 ] || usage; cmd_stop ;;
load)	[ $# -eq 3 ] || usage; cmd_load "$1" "$2" "$3" ;;
*)	usage ;;
esac
