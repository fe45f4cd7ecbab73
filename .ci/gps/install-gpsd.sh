#!/usr/bin/env bash
# Makes sure gpsd and gpsfake are installed: the GPS tests of `cargo test` (tests/gps.rs)
# run a real gpsd fed by gpsfake on a free port, and fail under CI without it.
# gpsfake runs as root here without extra flags; it needs no gpsd service running.
# Usage: .ci/gps/install-gpsd.sh
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
if command -v gpsfake >/dev/null 2>&1 && command -v gpsd >/dev/null 2>&1; then
    exit 0
fi
printf '== %s\n' "Installing gpsd and gpsd-clients (gpsfake)"
apt_install gpsd gpsd-clients
command -v gpsfake >/dev/null || { echo "gpsfake not found after installing gpsd-clients" >&2; exit 1; }
