#!/bin/bash
# tests/packaging/test_install.sh - what `make install` puts where, and the
# packaging around it: the man pages, the systemd unit, the Dockerfile.
#
# Runs `make install DESTDIR=TMP PREFIX=/usr` and checks every file and its
# mode, the installed binary, that both man pages render without warnings,
# that bot.conf(5) documents every key of bot/base/config.c's keys[] table in
# its section with the default that set_defaults()/target_defaults() give
# it, that backupbot(8) names every command of --help and every chat
# command, `systemd-analyze verify` of the unit, the Dockerfile's package
# names against apt, and `make uninstall`.
# Ends with "packaging: N passed, N failed"; exits 1 on any failure.
#
#   VERBOSE=1 tests/packaging/test_install.sh    (show what was compared)
set -u
cd "$(dirname "$0")/../.."
passed=0
failed=0
skipped=0

T=$(mktemp -d /tmp/test_install.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
D=$T/root			# DESTDIR
PREFIX=/usr

ok() { passed=$((passed + 1)); echo "ok   $1"; }
not_ok() {
	failed=$((failed + 1))
	echo "FAIL $1"
	[ -n "${2:-}" ] && sed 's/^/     | /' <<<"$2"
}
skip() { skipped=$((skipped + 1)); echo "skip $1"; }
note() { echo "     $1"; }
# check DESC PROBLEMS: ok when PROBLEMS (lines, or words) is empty
check() {
	local problems
	problems=$(printf '%s' "$2")	# without trailing newlines
	if [ -z "$problems" ]; then ok "$1"; else not_ok "$1" "$problems"; fi
}
finish() {
	echo "packaging: $passed passed, $failed failed$([ "$skipped" = 0 ] ||
	    echo ", $skipped skipped")"
	[ "$failed" = 0 ]
	exit
}

VERSION=$(sed -nE 's/^#define BB_VERSION[[:space:]]+"([^"]+)".*/\1/p' bot/base/version.h)
MAN8=$D$PREFIX/share/man/man8/backupbot.8
MAN5=$D$PREFIX/share/man/man5/bot.conf.5
UNIT=$D$PREFIX/lib/systemd/system/backupbot.service
BIN=$D$PREFIX/bin/backupbot

# ---- make install -----------------------------------------------------------
echo "== make install DESTDIR=\$tmp PREFIX=$PREFIX"
# The plain build: `make test-asan` exports BUILD=build-asan and sanitizer
# flags, which must not reach the ./backupbot that install links.
if env -u BUILD -u CFLAGS -u LDFLAGS -u EXTRA_CFLAGS \
    make --no-print-directory install DESTDIR="$D" PREFIX=$PREFIX \
    >"$T/install.log" 2>&1; then
	ok "make install"
else
	not_ok "make install" "$(tail -20 "$T/install.log")"
	finish
fi

# path mode: every file install is meant to put there
while read -r path mode; do
	f=$D$path
	if [ ! -f "$f" ]; then
		not_ok "$path installed" "missing"
	elif [ "$(stat -c %a "$f")" != "$mode" ]; then
		not_ok "$path installed" "mode $(stat -c %a "$f"), want $mode"
	else
		ok "$path installed, mode $mode"
	fi
done <<EOF
$PREFIX/bin/backupbot 755
$PREFIX/share/man/man8/backupbot.8 644
$PREFIX/share/man/man5/bot.conf.5 644
/etc/backupbot/bot.conf.example 644
$PREFIX/lib/systemd/system/backupbot.service 644
$PREFIX/lib/sysusers.d/backupbot.conf 644
$PREFIX/lib/tmpfiles.d/backupbot.conf 644
EOF
extra=$(cd "$D" && find . -type f | sed 's/^\.//' | grep -vxF \
    -e "$PREFIX/bin/backupbot" -e "$PREFIX/share/man/man8/backupbot.8" \
    -e "$PREFIX/share/man/man5/bot.conf.5" -e /etc/backupbot/bot.conf.example \
    -e "$PREFIX/lib/systemd/system/backupbot.service" \
    -e "$PREFIX/lib/sysusers.d/backupbot.conf" \
    -e "$PREFIX/lib/tmpfiles.d/backupbot.conf")
check "nothing else installed" "$extra"
check "bot.conf.example installed as it is" \
    "$(cmp bot.conf.example "$D/etc/backupbot/bot.conf.example" 2>&1)"

out=$("$BIN" --version 2>&1)
if [ "$out" = "backupbot $VERSION" ]; then
	ok "installed binary: --version says '$out'"
else
	not_ok "installed binary: --version" "got '$out', want 'backupbot $VERSION'"
fi
# libolm (C++) is opened by the E2EE code when a room is encrypted: linked
# at start-up it would map libstdc++ into every backup process.
check "installed binary: neither libolm nor libstdc++ is loaded at start" \
    "$(ldd "$BIN" | grep -E 'libolm|libstdc\+\+')"

# ---- man pages ----------------------------------------------------------------
echo "== man pages"
for page in "$MAN8" "$MAN5"; do
	name=$(basename "$page")
	th=$(grep -m1 '^\.TH ' "$page")
	case "$th" in
	*"\"backupbot $VERSION\""*) ok "$name: .TH names version $VERSION" ;;
	*) not_ok "$name: .TH names version $VERSION" "$th" ;;
	esac
	if ! command -v groff >/dev/null; then
		not_ok "$name renders (groff)" "groff not found: apt-get install groff-base"
	else
		out=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
		check "$name renders without warnings (groff -man -ww)" "$out"
	fi
	if ! command -v man >/dev/null; then
		skip "$name with man --warnings (man not found: man-db)"
	else
		out=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
		check "$name renders without warnings (man --warnings -l)" "$out"
	fi
done

# ---- bot.conf(5) against bot/base/config.c ----------------------------------
# keys[] rows: { "SECTION", O(key), K_TYPE, ... } or { "SECTION", OWN_X,
# "key", offsetof(...), K_TYPE, ... } -> "SECTION OWNER key TYPE".
sed -n '/^static const struct key_def keys\[\] = {/,/^};/p' bot/base/config.c \
    >"$T/table.c"
sed -nE \
    -e 's/^[[:space:]]*\{ "([a-z]+)", ([OTR])\(([a-z0-9_]+)\),[[:space:]]*(K_[A-Z]+).*/\1 \2 \3 \4/p' \
    -e 's/^[[:space:]]*\{ "([a-z]+)", OWN_(C|T|R)[A-Z]*, "([a-z_]+)",[^K]*(K_[A-Z]+)?.*/\1 \2 \3 \4/p' \
    "$T/table.c" | sed -E 's/ C / O /' >"$T/keys"
rows=$(grep -c '^[[:space:]]*{ "' "$T/table.c")
nkeys=$(wc -l <"$T/keys")
if [ "$nkeys" -gt 50 ] && [ "$nkeys" = "$rows" ]; then
	ok "read $nkeys keys from bot/base/config.c keys[]"
else
	not_ok "read every row of bot/base/config.c keys[]" \
	    "$rows rows, $nkeys understood: teach this test the new row format"
fi
# Rows that carry their type on the next line ("keep").
while read -r sec own key type; do
	if [ -z "$type" ]; then
		type=$(grep -A1 "\"$sec\", OWN_[A-Z]*, \"$key\"" "$T/table.c" |
		    grep -oE 'K_[A-Z]+' | head -1)
	fi
	echo "$sec $own $key $type"
done <"$T/keys" >"$T/keys.typed"

# bot.conf.5, source side: "BLOCK key" for every `.BI "key = "` tag; BLOCK
# is the .SH it is under: [matrix] -> matrix, [postgres NAME] -> postgres,
# SCHEDULE KEYS -> schedule.
awk '/^\.SH /	{ b = $2; gsub(/[\[\]"]/, "", b)
		  if ($0 ~ /SCHEDULE KEYS/) b = "schedule" }
     /^\.BI "[a-z0-9_]+ = "/ { k = $2; gsub(/"/, "", k); print b, k }' \
    "$MAN5" >"$T/documented"
KINDS="postgres redis media files"
missing=""
while read -r sec own key type; do
	grep -qxF "$sec $key" "$T/documented" && continue
	[ "$own" = T ] && grep -qxF "schedule $key" "$T/documented" && continue
	missing+="[$sec] $key"$'\n'
done <"$T/keys.typed"
check "bot.conf.5 documents every key of keys[] in its section" "$missing"
stale=""
while read -r block key; do
	if [ "$block" = schedule ]; then
		for k in $KINDS; do
			grep -qxE "$k T $key K_[A-Z]+" "$T/keys.typed" ||
			    stale+="SCHEDULE KEYS: $key is not a key of [$k]"$'\n'
		done
	elif ! grep -qE "^$block [OTR] $key " "$T/keys.typed"; then
		stale+="[$block] $key is not in keys[]"$'\n'
	fi
done <"$T/documented"
check "bot.conf.5 documents no key that keys[] lacks" "$stale"
sections=$(awk '{ print $1 }' "$T/keys.typed" | sort -u)
nohead=""
for s in $sections; do
	grep -qE "^\.SH \"?\[$s( NAME)?\]" "$MAN5" || nohead+="[$s] "
done
check "bot.conf.5 has a section for each of: $(echo $sections)" "$nohead"

# Defaults: set_defaults() (the [matrix] ... [log] keys) and
# target_defaults() (target keys; the rest are 0 after memset), against the
# "Default:" of each key's paragraph in bot.conf.5.
defaults() {	# defaults FUNCTION VAR -> "key value" (value: "string" or a number)
	sed -n "/^$1(/,/^}/p" bot/base/config.c |
	    sed -nE "s/^[[:space:]]*$2->([a-z_]+) = (.*);/\1 \2/p" |
	    while read -r key expr; do
		case "$expr" in
		xstrdup\(*) expr=${expr#xstrdup(}; echo "$key ${expr%)}" ;;
		*[!0-9\ \*+-]*) ;;		# not a plain constant
		*) echo "$key $((expr))" ;;
		esac
	    done
}
defaults set_defaults c >"$T/def.cfg"
defaults target_defaults t >"$T/def.target"
# "BLOCK key<TAB>text after Default:" for every tagged paragraph, with the
# font macros and escapes taken out (.TQ: two tags share one paragraph).
awk '
function plain(s,   out, i, c, q, alt, a, n, args) {
	# The arguments of a font macro; alternating ones (BR, IR...) join
	# their arguments without a space.
	alt = (s ~ /^\.[BIR][BIR] /)
	sub(/^\.[BIR][BIR]? ?/, "", s)
	n = 0; q = 0; a = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "\"") { q = !q; continue }
		if (c == " " && !q) { if (a != "") args[++n] = a; a = ""; continue }
		a = a c
	}
	if (a != "") args[++n] = a
	out = ""
	for (i = 1; i <= n; i++)
		out = out (i > 1 && !alt ? " " : "") args[i]
	return out
}
function flush(   i) {
	for (i = 1; i <= npend; i++) print pend[i] "\t" body
	npend = 0; body = ""
}
/^\.SH /	{ flush(); b = $2; gsub(/[\[\]"]/, "", b)
		  if ($0 ~ /SCHEDULE KEYS/) b = "schedule"; next }
/^\.(TP|PP|SS|RE|RS|EX|EE)/ { flush(); next }
/^\.TQ/		{ next }
/^\.BI "[a-z0-9_]+ = "/ { k = $2; gsub(/"/, "", k); pend[++npend] = b " " k; next }
/^\.\\"/	{ next }
		{ if (!npend) next
		  line = /^\./ ? plain($0) : $0
		  gsub(/\\f[BIRP]/, "", line); gsub(/\\-/, "-", line)
		  gsub(/\\\(lq|\\\(rq/, "\"", line)
		  body = body " " line }
END		{ flush() }' "$MAN5" |
    sed -nE 's/^([^\t]*)\t.*Default: *(.*)/\1\t\2/p' >"$T/doc.defaults"
[ -n "${VERBOSE:-}" ] && sed 's/^/     > /' "$T/doc.defaults"

seconds() {	# 30s 5m 2h 1d -> seconds; anything else -> itself
	case "$1" in
	*[0-9]s) echo $((${1%s})) ;; *[0-9]m) echo $((${1%m} * 60)) ;;
	*[0-9]h) echo $((${1%h} * 3600)) ;; *[0-9]d) echo $((${1%d} * 86400)) ;;
	*) echo "$1" ;;
	esac
}
wrong=""
nchecked=0
while read -r sec own key type; do
	case "$own" in O) deffile=$T/def.cfg ;; T) deffile=$T/def.target ;; *) continue ;; esac
	value=$(awk -v k="$key" '$1 == k { sub(/^[^ ]+ /, ""); print; exit }' "$deffile")
	if [ -z "$value" ]; then
		# Not set: zero from calloc/memset.  Only numbers and booleans
		# have a zero that means something; 0 durations are computed.
		case "$type" in K_INT|K_BOOL) value=0 ;; *) continue ;; esac
	fi
	[ "$value" = -1 ] && continue		# -1: not set (min_power_level)
	doc=$(awk -F'\t' -v a="$sec $key" -v b="schedule $key" \
	    '$1 == a || $1 == b { print $2; exit }' "$T/doc.defaults")
	first=$(awk '{ print $1 }' <<<"$doc" | sed -E 's/[.,;:]+$//')
	nchecked=$((nchecked + 1))
	case "$type" in
	K_BOOL)	want=$([ "$value" = 1 ] && echo yes || echo no)
		[ "$first" = "$want" ] ||
		    wrong+="[$sec] $key: code $want, bot.conf.5 '${doc:-no Default:}'"$'\n' ;;
	K_INT)	[ "$first" = "$value" ] ||
		    wrong+="[$sec] $key: code $value, bot.conf.5 '${doc:-no Default:}'"$'\n' ;;
	K_DURATION)
		[ "$(seconds "$first")" = "$value" ] ||
		    wrong+="[$sec] $key: code ${value}s, bot.conf.5 '${doc:-no Default:}'"$'\n' ;;
	*)	value=${value#\"}; value=${value%\"}
		grep -qF -- "$value" <<<"$doc" ||
		    wrong+="[$sec] $key: code '$value', bot.conf.5 '${doc:-no Default:}'"$'\n' ;;
	esac
done <"$T/keys.typed"
check "bot.conf.5: $nchecked defaults as set_defaults/target_defaults set them" "$wrong"

# The example in EXAMPLES parses (with its secret files made, and state and
# backups in the temp dir).
mkdir -p "$T/ex"
sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$MAN5" | sed -n '/^\.EX/,/^\.EE/p' |
    sed -e '1d' -e '$d' -e 's/\\-/-/g' -e "s|/etc/backupbot/|$T/ex/|" \
    >"$T/ex/bot.conf"
printf '[storage]\nstate_dir = %s/ex/state\nbackup_dir = %s/ex/backups\n' \
    "$T" "$T" >>"$T/ex/bot.conf"
for f in $(grep -oE "$T/ex/[a-z.]+" "$T/ex/bot.conf" | grep -v /bot.conf); do
	(umask 077; echo secret >"$f")
done
out=$("$BIN" -c "$T/ex/bot.conf" list 2>&1)
rc=$?
check "bot.conf.5: the EXAMPLES configuration is valid" \
    "$([ $rc = 0 ] || echo "$out")"

# ---- backupbot(8) against --help and the chat commands -----------------------
"$BIN" --help >"$T/help"
cmds=$(sed -n '/^commands:/,/^$/p' "$T/help" | sed -nE 's/^  ([a-z]+)( .*|$)/\1/p')
opts=$(sed -n '/^options:/,/^$/p' "$T/help" | grep -oE '^  -{1,2}[a-z]+' | tr -d ' ')
missing=""
for c in $cmds; do
	grep -qE "^\.BR? $c( |$)" "$MAN8" || missing+="command $c"$'\n'
done
for o in $opts; do
	grep -E '^\.B[IR]? ' "$MAN8" | grep -qF -- "$(sed 's/-/\\-/g' <<<"$o")" ||
	    missing+="option $o"$'\n'
done
check "backupbot.8 names every command and option of --help ($(echo $cmds $opts))" "$missing"
chat=$(sed -nE 's/^[[:space:]]*\.(name|alias) = "([^"]+)".*/\2/p' handlers/*.c)
missing=""
for c in $chat; do
	grep -qE "^\.B[IR]? !$(sed 's/[?]/[?]/' <<<"$c")( |$)" "$MAN8" ||
	    missing+="!$c"$'\n'
done
check "backupbot.8 names every chat command ($(echo $chat | sed 's/\([^ ]*\)/!\1/g'))" "$missing"

# ---- the systemd unit ---------------------------------------------------------
echo "== systemd unit"
state_dir=$(awk '$1 == "state_dir" { print $2 }' "$T/def.cfg" | tr -d '"')
backup_dir=$(awk '$1 == "backup_dir" { print $2 }' "$T/def.cfg" | tr -d '"')
unit_has() {	# unit_has LINE: the installed unit has this line
	grep -qxF "$1" "$UNIT" || echo "no line '$1'"
}
check "unit: ExecStart is rewritten to PREFIX=$PREFIX" \
    "$(unit_has "ExecStart=$PREFIX/bin/backupbot -c /etc/backupbot/bot.conf run")"
check "unit: ExecReload sends SIGHUP" "$(unit_has 'ExecReload=/bin/kill -HUP $MAINPID')"
check "unit: ReadWritePaths are state_dir and backup_dir ($state_dir $backup_dir)" \
    "$(unit_has "ReadWritePaths=$state_dir $backup_dir")"
check "unit: StateDirectory= is state_dir" \
    "$(unit_has "StateDirectory=${state_dir#/var/lib/}"; [ "${state_dir#/var/lib/}" != "$state_dir" ] || echo "state_dir is not under /var/lib")"
user=$(sed -nE 's/^User=//p' "$UNIT")
check "unit: User=$user is the one sysusers.d creates" \
    "$(grep -qE "^u[[:space:]]+$user[[:space:]]" "$D$PREFIX/lib/sysusers.d/backupbot.conf" || echo "sysusers.d has no user $user")"
for dir in "$state_dir" "$backup_dir"; do
	check "tmpfiles.d makes $dir, 0700, for $user" \
	    "$(grep -qE "^d[[:space:]]+$dir[[:space:]]+0700[[:space:]]+$user[[:space:]]" \
	    "$D$PREFIX/lib/tmpfiles.d/backupbot.conf" || echo "no 'd $dir 0700 $user' line")"
done
if ! command -v systemd-sysusers >/dev/null ||
   ! command -v systemd-tmpfiles >/dev/null; then
	skip "sysusers.d and tmpfiles.d applied: systemd-sysusers or systemd-tmpfiles not found"
elif [ "$(id -u)" != 0 ]; then
	skip "sysusers.d and tmpfiles.d applied: needs root (chown)"
else
	# Applied to a copy of the installed tree, as on a first boot.
	cp -a "$D" "$T/sys"
	out=$(systemd-sysusers --root="$T/sys" backupbot.conf 2>&1 &&
	    systemd-tmpfiles --root="$T/sys" --create backupbot.conf 2>&1)
	rc=$?
	pw=$(grep "^$user:" "$T/sys/etc/passwd" 2>/dev/null)
	uid=$(cut -d: -f3 <<<"$pw")
	problems=$([ $rc = 0 ] || echo "$out"
	    [ "$(cut -d: -f6 <<<"$pw")" = "$state_dir" ] ||
		echo "passwd: '$pw', want home $state_dir"
	    grep -q "^$user:" "$T/sys/etc/group" 2>/dev/null || echo "no group $user"
	    for dir in "$state_dir" "$backup_dir"; do
		got=$(stat -c '%a %u' "$T/sys$dir" 2>&1)
		[ "$got" = "700 $uid" ] || echo "$dir: '$got', want '700 $uid'"
	    done)
	check "systemd-sysusers and systemd-tmpfiles make the user and both directories" \
	    "$problems"
fi
if ! command -v systemd-analyze >/dev/null; then
	skip "systemd-analyze verify: systemd-analyze not found (package systemd)"
else
	# ExecStart must name an executable: point it at the DESTDIR binary;
	# Documentation= man pages are looked up in DESTDIR's MANPATH.
	mkdir -p "$T/unit"
	sed "s|^ExecStart=$PREFIX/bin/|ExecStart=$D$PREFIX/bin/|" "$UNIT" \
	    >"$T/unit/backupbot.service"
	out=$(MANPATH=$D$PREFIX/share/man SYSTEMD_LOG_COLOR=0 \
	    systemd-analyze verify "$T/unit/backupbot.service" 2>&1)
	rc=$?
	check "systemd-analyze verify: no warnings" "$out$([ $rc = 0 ] || echo " (exit $rc)")"
	exposure=$(systemd-analyze security --offline=yes --no-pager \
	    "$T/unit/backupbot.service" 2>/dev/null |
	    sed -nE 's/.*Overall exposure level for [^:]*: ([0-9.]+ [A-Z]+).*/\1/p')
	[ -n "$exposure" ] && note "(systemd-analyze security: exposure $exposure)"
fi

# ---- Dockerfile ----------------------------------------------------------------
echo "== Dockerfile"
# The package names of each stage's apt-get install.
stage_pkgs() {	# stage_pkgs N: the packages of the Nth FROM stage
	awk -v n="$1" '/^FROM /{ s++ } s == n' Dockerfile |
	    sed -e ':a' -e '/\\$/{N; s/\\\n//; ba' -e '}' |
	    grep 'apt-get install' | sed -E 's/.*apt-get install//; s/&&.*//' |
	    tr ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$'
}
build_pkgs=$(stage_pkgs 1)
run_pkgs=$(stage_pkgs 2)
check "Dockerfile: two stages, each installing packages" \
    "$([ -n "$build_pkgs" ] && [ -n "$run_pkgs" ] || echo "build: '$build_pkgs' runtime: '$run_pkgs'")"
deb_pkgs=$(sed -n '/^DEB_PKGS/,/[^\\]$/p' Makefile | sed 's/^DEB_PKGS *=//; s/\\//g')
notdeb=""
for p in $build_pkgs; do
	grep -qw -- "$p" <<<"$deb_pkgs" || notdeb+="$p "
done
check "Dockerfile: build packages are among the Makefile's DEB_PKGS" "$notdeb"
check "Dockerfile: builds with make, not make deps/test" \
    "$(grep -E '^RUN .*\bmake\b' Dockerfile | grep -E '\bmake +(deps|test|test-asan|demo|bench)\b')$(grep -qE '^RUN .*\bmake\b' Dockerfile || echo 'no RUN make')"
for line in 'ENTRYPOINT ["/usr/local/bin/backupbot", "-c", "/etc/backupbot/bot.conf"]' \
    'CMD ["run"]' 'FROM debian:12-slim AS build' 'FROM debian:12-slim'; do
	check "Dockerfile: $line" "$(grep -qxF "$line" Dockerfile || echo missing)"
done
vol=$(grep -E '^VOLUME ' Dockerfile)
check "Dockerfile: VOLUME /root/backups and /root/scripts" \
    "$(grep -q '"/root/backups"' <<<"$vol" && grep -q '"/root/scripts"' <<<"$vol" || echo "$vol")"
missing=""
for p in build/ build-asan/ backupbot backupbot-asan .git; do
	grep -qxF "$p" .dockerignore 2>/dev/null || missing+="$p "
done
check ".dockerignore leaves out build products and .git" "$missing"

if ! grep -q '^12\.' /etc/debian_version 2>/dev/null; then
	skip "Dockerfile packages in apt: this is not Debian 12 ($(cat /etc/debian_version 2>/dev/null))"
elif ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
	skip "Dockerfile packages in apt: no apt lists (run apt-get update)"
else
	missing=""
	for p in $build_pkgs $run_pkgs; do
		apt-cache show -- "$p" >/dev/null 2>&1 || missing+="$p "
	done
	check "Dockerfile: every package is in Debian 12 (apt-cache show): $(echo $run_pkgs)" "$missing"
	# Each library the binary needs comes from a package the runtime
	# stage names (libc6 is in every Debian image).
	missing=""
	for lib in $(readelf -d "$BIN" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p'); do
		path=$(ldd "$BIN" | awk -v l="$lib" '$1 == l { print $3 }')
		real=$(realpath "$path" 2>/dev/null)
		# dpkg knows a file by the path its package ships (/lib or
		# /usr/lib: merged /usr).
		pkg=$(dpkg -S "$path" "$real" "${real#/usr}" 2>/dev/null |
		    head -1 | sed -E 's/[:,].*//')
		if [ -z "$pkg" ]; then
			missing+="$lib (no package owns '$path') "
		elif [ "$pkg" != libc6 ] && ! grep -qxF "$pkg" <<<"$run_pkgs"; then
			missing+="$lib (package $pkg) "
		fi
	done
	check "Dockerfile: the runtime stage has every library the binary links" "$missing"
fi

# ---- reinstall and uninstall -------------------------------------------------
echo "== make uninstall"
chmod 0700 "$D/etc/backupbot"
echo "; the operator's" >"$D/etc/backupbot/bot.conf"
env -u BUILD -u CFLAGS -u LDFLAGS -u EXTRA_CFLAGS \
    make --no-print-directory install DESTDIR="$D" PREFIX=$PREFIX >"$T/install.log" 2>&1
check "a second install keeps /etc/backupbot's mode (0700)" \
    "$(m=$(stat -c %a "$D/etc/backupbot"); [ "$m" = 700 ] || echo "mode $m")"
if make --no-print-directory uninstall DESTDIR="$D" PREFIX=$PREFIX \
    >"$T/uninstall.log" 2>&1; then
	left=$(cd "$D" && find . -type f | sed 's/^\.//')
	check "make uninstall removes what install put there, and only that" \
	    "$([ "$left" = /etc/backupbot/bot.conf ] || echo "left: $left")"
else
	not_ok "make uninstall" "$(cat "$T/uninstall.log")"
fi

finish
