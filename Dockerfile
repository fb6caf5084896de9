# backupbot's container image: Debian 12, the daemon, and the tools its
# jobs run (pg_dump and pg_restore 15, redis-cli, redis-check-rdb,
# redis-server for RDB restores and drills, rclone, tar, git).
# How to run it: docs/install.md, "Installing and running in production".
#
#   docker build -t backupbot .
#
# Mount points: /etc/backupbot/bot.conf (with the secret files it names),
# /root/.config/rclone/rclone.conf, /var/lib/backupbot (state_dir: keep it
# across containers), /root/backups (backup_dir = /root/backups in
# bot.conf), /root/scripts.

# ---- build: the Makefile's -dev packages that `make` needs ---------------
FROM debian:12-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libcurl4-openssl-dev libcjson-dev \
      libsodium-dev libzstd-dev libpq-dev libhiredis-dev libolm-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" backupbot && ./backupbot --version

# ---- runtime: the shared libraries and the tools, no compiler ------------
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcurl4 libcjson1 libsodium23 libzstd1 libpq5 libhiredis0.14 libolm3 \
      rclone postgresql-client-15 redis-tools redis-server \
      tar git tzdata ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/backupbot /usr/local/bin/backupbot
COPY bot.conf.example /etc/backupbot/bot.conf.example
RUN mkdir -p /var/lib/backupbot /root/backups /root/scripts \
      /root/.config/rclone \
 && chmod 0700 /etc/backupbot /var/lib/backupbot /root/backups \
 && backupbot --version
VOLUME ["/root/backups", "/root/scripts", "/var/lib/backupbot"]
# SIGTERM (docker stop) finishes the message being sent and exits 0;
# SIGHUP (docker kill -s HUP) reloads bot.conf.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/backupbot", "-c", "/etc/backupbot/bot.conf"]
CMD ["run"]
