#!/usr/bin/env bash
# `anemone import` against the real MariaDB once more, on its own, so its result stands
# out in the log (.ci/run made sure the server runs before `cargo test`).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/mariadb/ensure-mariadb.sh
cargo test --test tests import::
