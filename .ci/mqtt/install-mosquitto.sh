#!/usr/bin/env bash
# Makes sure Mosquitto (with mosquitto_passwd) and openssl are installed: the MQTT tests of
# `cargo test` start Mosquittos of their own (tests/mqtt/mqtt5.rs fails under CI without
# one), and .ci/mqtt/run-mosquitto-tests.sh runs the whole MQTT suite against it.
# Usage: .ci/mqtt/install-mosquitto.sh
set -euo pipefail

have_mosquitto() {
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]
}

if have_mosquitto && command -v mosquitto_passwd >/dev/null && command -v openssl >/dev/null; then
    exit 0
fi
printf '== %s\n' "Installing mosquitto and openssl"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO apt-get install -y mosquitto openssl
have_mosquitto || { echo "mosquitto not found after installing it" >&2; exit 1; }
