# shellcheck shell=bash
# tests/packaging/docker_base.sh - what docker_test.sh and systemd_test.sh
# share: their "ok - ..." / "not ok - ..." lines and the debian:12-slim
# base image, made locally when Docker Hub is out of reach.  Sourced (not
# run), after the caller has set SUITE (the name on its last line).
#
# ensure_base: use an existing $BASE image, or make one: debootstrap
# --variant=minbase bookworm from $MIRROR into $T/rootfs, trimmed as
# Debian's slim images are, then `docker import`.  Uses the caller's T (a
# temp dir).

BASE=debian:12-slim
MIRROR=${MIRROR:-http://deb.debian.org/debian}
read -ra BUILD_FLAGS <<<"${BUILD_FLAGS:-}"	# extra `docker build` flags
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $1"; }
# not_ok DESC [DETAIL]: DETAIL's lines follow, as comments
not_ok() {
	failed=$((failed + 1))
	echo "not ok - $1"
	[ -n "${2:-}" ] && sed 's/^/#   /' <<<"$2"
	return 0
}
note() { echo "# $1"; }
skip() { echo "skip: $1"; exit 77; }
finish() {
	echo "$SUITE: $passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
}

# A stand-in for Docker Hub's debian:12-slim: minbase, deb822 sources with
# updates and security, no docs/man/locales, no apt caches.
make_base() {
	local r=$T/rootfs
	command -v debootstrap >/dev/null ||
		skip "no $BASE image and no debootstrap to make one"
	echo "# debootstrap bookworm into $r"
	SECONDS=0
	if ! debootstrap --variant=minbase bookworm "$r" "$MIRROR" \
	    >"$T/debootstrap.log" 2>&1; then
		not_ok "debootstrap" "$(tail -20 "$T/debootstrap.log")"
		finish
	fi
	note "debootstrap took ${SECONDS}s"
	rm -f "$r/etc/apt/sources.list" "$r/etc/hostname" "$r/etc/resolv.conf"
	cat >"$r/etc/apt/sources.list.d/debian.sources" <<-EOF
	Types: deb
	URIs: ${MIRROR}
	Suites: bookworm bookworm-updates
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

	Types: deb
	URIs: ${MIRROR}-security
	Suites: bookworm-security
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	cat >"$r/etc/dpkg/dpkg.cfg.d/docker-slim" <<-'EOF'
	path-exclude /usr/share/doc/*
	path-include /usr/share/doc/*/copyright
	path-exclude /usr/share/groff/*
	path-exclude /usr/share/info/*
	path-exclude /usr/share/linda/*
	path-exclude /usr/share/lintian/overrides/*
	path-exclude /usr/share/locale/*
	path-exclude /usr/share/man/*
	EOF
	cat >"$r/etc/apt/apt.conf.d/docker-clean" <<-'EOF'
	DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
	Dir::Cache::pkgcache "";
	Dir::Cache::srcpkgcache "";
	EOF
	rm -f "$r"/var/cache/apt/archives/*.deb
	rm -rf "$r"/var/lib/apt/lists/*
	if tar --numeric-owner -C "$r" --exclude='./dev/*' \
	    --exclude='./proc/*' --exclude='./sys/*' -c . |
	    docker import -c 'CMD ["bash"]' - "$BASE" >/dev/null; then
		ok "made $BASE locally (debootstrap + docker import)"
	else
		not_ok "docker import of the debootstrapped $BASE"
		finish
	fi
	rm -rf "$r"
}

ensure_base() {
	if docker image inspect "$BASE" >/dev/null 2>&1; then
		note "using the existing $BASE image"
	else
		make_base
	fi
}
