#!/usr/bin/env bash
# The MQTT tests again, against a real Mosquitto (anonymous, password, TLS).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/mqtt/run-mosquitto-tests.sh
