# backupbot - one readable GNU Makefile.  `make V=1` shows the commands.

PREFIX	?= /usr/local
CC	?= cc
PKGS	 = libcurl libcjson libsodium libzstd libpq hiredis
# libolm is opened at run time by the E2EE code (bot/matrix/olm_dl.h): its
# headers are needed to build, the library only in encrypted rooms.
OLM	 = olm
CFLAGS	?= -O2 -g
WARN	 = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	   -Wpointer-arith -Wformat=2 -Wno-format-nonliteral
# Sources are found by folder (README "Code map"; each folder's README says
# what it may include): every .c under bot/ and handlers/, no list to keep.
# Includes stay bare ("config.h"): one -I per folder that holds a header,
# so header names are unique across folders (tests/layout checks it).
SRC_ALL	 = $(sort $(wildcard bot/*.c bot/*/*.c bot/*/*/*.c handlers/*.c))
INC_DIRS = $(patsubst %/,%,$(sort $(dir $(wildcard bot/*.h bot/*/*.h bot/*/*/*.h handlers/*.h))))
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) -D_GNU_SOURCE $(INC_DIRS:%=-I%) \
	   $(shell pkg-config --cflags $(PKGS) $(OLM) 2>/dev/null) $(EXTRA_CFLAGS)
LIBS	 = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -lcjson -lsodium -lzstd -lpq -lhiredis) -ldl

ifeq ($(V),1)
Q =
else
Q = @
endif

BUILD	?= build
# every module but main; one command per file in handlers/
CORE_SRC = $(filter-out bot/main.c,$(SRC_ALL))
CORE_OBJ = $(CORE_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ = $(BUILD)/bot/main.o

all: backupbot

# The core objects alone (test drivers link against them).
objs: $(CORE_OBJ)

# What a script that links a driver against the core needs (tests/remote).
print-objs:
	@echo $(CORE_OBJ)
print-includes:
	@echo $(INC_DIRS:%=-I%)

backupbot: $(CORE_OBJ) $(MAIN_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(CORE_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)

# ---- dependencies: one target that every entry point shares ----------
DEB_PKGS = build-essential pkg-config libcurl4-openssl-dev libcjson-dev \
	   libsodium-dev libzstd-dev libpq-dev libhiredis-dev libcmocka-dev \
	   postgresql postgresql-client redis-server redis-tools rclone zstd tar git tzdata \
	   procps util-linux openssl faketime python3-prometheus-client groff-base man-db \
	   python3 python3-yaml python3-jsonschema clang curl ca-certificates \
	   pgbackrest libolm-dev python3-olm python3-matrix-nio

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (run make as root, or apt-get install them)"; exit 1; fi; \
	fi

# ---- tests -------------------------------------------------------------
UNIT_TESTS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

unit: $(UNIT_TESTS)

test: deps
	$(Q)$(MAKE) --no-print-directory backupbot unit
	$(Q)tests/run.sh

# The same suite under AddressSanitizer and UBSan, in its own build dir.
test-asan: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" backupbot-asan unit
	$(Q)BB_SKIP_SLOW=1 BACKUPBOT=./backupbot-asan BUILD=build-asan tests/run.sh

backupbot-asan: $(CORE_OBJ) $(MAIN_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

demo: deps
	$(Q)$(MAKE) --no-print-directory backupbot
	$(Q)tests/demo.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory backupbot
	$(Q)tests/bench/run.sh

# Longer fuzzing than `make test` does: every libFuzzer target for
# FUZZ_SECONDS each (default 300); BB_FUZZ_TARGETS="ledger request" picks.
fuzz: deps
	$(Q)tests/fuzz/run.sh $(or $(FUZZ_SECONDS),300)

# Build the Dockerfile's image and check it (needs a Docker daemon; makes
# a local debian:12-slim with debootstrap when Docker Hub is out of reach).
docker-test:
	$(Q)tests/packaging/docker_test.sh

# The systemd unit under a real systemd (PID 1 of a container): the same
# needs as docker-test.
systemd-test:
	$(Q)tests/packaging/systemd_test.sh

.PHONY: fuzz docker-test systemd-test

# Banned functions (curl's list): unbounded or shell-running calls.
check: backupbot
	$(Q)! grep -nE '\b(sprintf|vsprintf|strcpy|strcat|strtok|gets|system|popen)\s*\(' \
	  $(SRC_ALL) || { echo "banned function used"; exit 1; }

clean:
	rm -rf build build-asan backupbot backupbot-asan

# ---- install -----------------------------------------------------------
# `make install`, or `make install DESTDIR=/tmp/pkg PREFIX=/usr` for a
# package.  SYSCONFDIR is not under PREFIX: the daemon reads
# /etc/backupbot/bot.conf unless told otherwise (CONFIG_DEFAULT_PATH).
# The unit's ExecStart is rewritten to BINDIR and SYSCONFDIR.  systemd
# reads units, sysusers.d and tmpfiles.d under /usr/local/lib as well.
# An existing $(SYSCONFDIR)/backupbot keeps its owner and mode (README:
# 0700, the bot's user); only a missing one is made, 0755.
BINDIR		?= $(PREFIX)/bin
MANDIR		?= $(PREFIX)/share/man
SYSCONFDIR	?= /etc
SYSTEMDDIR	?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR	?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR	?= $(PREFIX)/lib/tmpfiles.d
INSTALL		?= install
CONFDIR		 = $(DESTDIR)$(SYSCONFDIR)/backupbot

install: backupbot
	@echo "  INSTALL $(DESTDIR)$(PREFIX)"
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDDIR) \
	  $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR)
	$(Q)$(INSTALL) -m 0755 backupbot $(DESTDIR)$(BINDIR)/backupbot
	$(Q)$(INSTALL) -m 0644 man/backupbot.8 $(DESTDIR)$(MANDIR)/man8/backupbot.8
	$(Q)$(INSTALL) -m 0644 man/bot.conf.5 $(DESTDIR)$(MANDIR)/man5/bot.conf.5
	$(Q)test -d $(CONFDIR) || $(INSTALL) -d -m 0755 $(CONFDIR)
	$(Q)$(INSTALL) -m 0644 bot.conf.example $(CONFDIR)/bot.conf.example
	$(Q)sed -e '/^ExecStart=/s|/usr/local/bin/|$(BINDIR)/|' \
	  -e '/^ExecStart=/s|/etc/backupbot/|$(SYSCONFDIR)/backupbot/|' \
	  dist/backupbot.service >$(DESTDIR)$(SYSTEMDDIR)/backupbot.service
	$(Q)chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/backupbot.service
	$(Q)$(INSTALL) -m 0644 dist/sysusers.d/backupbot.conf \
	  $(DESTDIR)$(SYSUSERSDIR)/backupbot.conf
	$(Q)$(INSTALL) -m 0644 dist/tmpfiles.d/backupbot.conf \
	  $(DESTDIR)$(TMPFILESDIR)/backupbot.conf

# What install put there; never bot.conf, secrets, state or backups.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/backupbot \
	  $(DESTDIR)$(MANDIR)/man8/backupbot.8 \
	  $(DESTDIR)$(MANDIR)/man5/bot.conf.5 \
	  $(CONFDIR)/bot.conf.example \
	  $(DESTDIR)$(SYSTEMDDIR)/backupbot.service \
	  $(DESTDIR)$(SYSUSERSDIR)/backupbot.conf \
	  $(DESTDIR)$(TMPFILESDIR)/backupbot.conf
	$(Q)if [ -d $(CONFDIR) ]; then rmdir --ignore-fail-on-non-empty $(CONFDIR); fi

.PHONY: all objs print-objs print-includes deps unit test test-asan demo bench check clean \
	install uninstall
