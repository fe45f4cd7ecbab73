#!/usr/bin/env bash
# The station's page in a real browser (Debian's chromium, headless, puppeteer-core):
# live updates, every chart, unit and period switches, screenshots at desktop and phone widths.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash .ci/browser/run.sh
