#!/usr/bin/env bash
# The collector's fault tests against a real PostgreSQL and Mosquitto (issue 16): collector
# kill -9 and PostgreSQL restart mid-stream, a week's backfill, dead letters, two collectors
# on one shared subscription, the broker's ACL. With CI set, a missing PostgreSQL or
# Mosquitto fails the tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/postgres/install-postgresql.sh
CI=1 cargo test -p anemone-collector -- --test-threads=2
