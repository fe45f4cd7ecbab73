#!/usr/bin/env bash
# Makes sure PostgreSQL's server programs (initdb, pg_ctl) and Mosquitto are installed: the
# collector's tests (collector/tests/) start a PostgreSQL cluster and a Mosquitto of their
# own in temporary directories on free ports, and fail under CI without them.
# Usage: .ci/postgres/install-postgresql.sh
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
apt_install postgresql mosquitto
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "initdb not found after installing postgresql" >&2; exit 1; }
