#!/usr/bin/env bash
# Makes sure a MariaDB server answers on 127.0.0.1:3306 for root without a password (the
# machine's server, as DESIGN.md describes the build machines): `anemone import`'s tests
# (tests/import.rs) create and drop databases of their own on it. Installs
# mariadb-server and mariadb-client if missing, starts the server if it is not running,
# and lets root in over TCP without a password if the fresh install allows only the socket.
# Idempotent. Usage: .ci/mariadb/ensure-mariadb.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh

apt_install mariadb-server mariadb-client

tcp_ok() { mariadb-admin --host=127.0.0.1 --port=3306 --user=root ping >/dev/null 2>&1; }
socket_ok() { as_root mariadb-admin --user=root ping >/dev/null 2>&1; }

if ! tcp_ok && ! socket_ok; then
  printf -- '--- starting MariaDB\n'
  as_root service mariadb start >/dev/null 2>&1 || true
  if ! socket_ok; then
    # No init system (a container): run the server directly.
    as_root mkdir -p /run/mysqld
    as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
    as_root sh -c 'nohup mariadbd --user=mysql >/tmp/anemone-ci-mariadb.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do socket_ok || tcp_ok && break; sleep 1; done
fi

if ! tcp_ok; then
  # Debian's root logs in through the socket only: let it in from 127.0.0.1 too.
  as_root mariadb --user=root -e \
    "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');"
fi
tcp_ok || { echo "MariaDB does not answer on 127.0.0.1:3306 for root (see /tmp/anemone-ci-mariadb.log)" >&2; exit 1; }
printf -- '--- MariaDB answers on 127.0.0.1:3306\n'
