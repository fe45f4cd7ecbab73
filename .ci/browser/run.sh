#!/usr/bin/env bash
# The page in a real browser (issue 15): Debian's chromium, headless, driven by
# puppeteer-core from npm, against a simulated station of our own (free ports, temp dir).
#
# 1. A simulated day of history, at full speed, into a temporary database (so the charts
#    have something to draw), then the live station on that database: web page and embedded
#    broker on free loopback ports.
# 2. .ci/browser/check.mjs opens the page at desktop and phone widths, waits for a live
#    update to change a value, checks every chart loaded, the unit and period switches,
#    and fails on a console error, a blank page or a missing chart.
# Screenshots go to $SCREENSHOT_DIR (default: a new directory under /tmp), printed at the end.
# Usage: .ci/browser/run.sh   (from anywhere; installs chromium and puppeteer-core itself)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$root/.ci/lib.sh"

apt_install chromium
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
CHROMIUM="$(command -v chromium || echo /usr/bin/chromium)"

# puppeteer-core never downloads a browser; it drives the system chromium.
npm_dir="${ANEMONE_BROWSER_NPM_DIR:-/tmp/anemone-browser-npm}"
if [ ! -f "$npm_dir/node_modules/puppeteer-core/package.json" ]; then
  mkdir -p "$npm_dir"
  (cd "$npm_dir" && { [ -f package.json ] || echo '{"private":true}' > package.json; } &&
     npm install --no-audit --no-fund --loglevel=error puppeteer-core@25)
fi

(cd "$root" && cargo build --quiet --bin anemone)
bin="$root/target/debug/anemone"

work="$(mktemp -d /tmp/anemone-browser.XXXXXX)"
shots="${SCREENSHOT_DIR:-$work/screenshots}"
mkdir -p "$shots"
station_pid=""
cleanup() {
  if [ -n "$station_pid" ]; then kill "$station_pid" 2>/dev/null || true; wait "$station_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
web_port="$(free_port)"
mqtt_port="$(free_port)"

# The example config with simulated buses, our database, our ports, quick commits.
"$bin" config init > "$work/anemone.toml"
python3 - "$work/anemone.toml" "$work/station.db" "$web_port" "$mqtt_port" <<'PY'
import re, sys
path, db, web, mqtt = sys.argv[1:]
out, section = [], None
for line in open(path, encoding="utf-8"):
    m = re.match(r"\s*\[+([a-z_]+)\]+", line)
    if m:
        section = m.group(1)
    key = line.split("=")[0].strip()
    if section == "hal" and key == "simulate":
        line = "simulate = true\n"
    elif section == "storage" and key == "path":
        line = f'path = "{db}"\n'
    elif section == "mqtt" and key == "listen":
        line = f'listen = "127.0.0.1:{mqtt}"\n'
    elif section == "web" and key == "listen":
        line = f'listen = "127.0.0.1:{web}"\n'
    out.append(line)
open(path, "w", encoding="utf-8").write("".join(out))
PY
grep -q "127.0.0.1:$web_port" "$work/anemone.toml" || { echo "the example config has no [web] listen key" >&2; exit 1; }
"$bin" validate --config "$work/anemone.toml" >/dev/null

start="$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%SZ)"
echo "--- a simulated day of history from $start"
"$bin" run --simulate --config "$work/anemone.toml" --speed max --duration 24h --start "$start" \
  > "$work/history.log" 2>&1 || { cat "$work/history.log" >&2; exit 1; }

# Live: commit every 5 s, so the charts show the last minutes too.
sed -i 's/^commit_interval = .*/commit_interval = "5s"/' "$work/anemone.toml"
echo "--- the live station: web on 127.0.0.1:$web_port, broker on 127.0.0.1:$mqtt_port"
"$bin" run --simulate --config "$work/anemone.toml" > "$work/station.log" 2>&1 &
station_pid=$!
url="http://127.0.0.1:$web_port/"
for _ in $(seq 1 120); do
  if curl -fsS -o /dev/null "$url" 2>/dev/null; then break; fi
  kill -0 "$station_pid" 2>/dev/null || { cat "$work/station.log" >&2; echo "the station stopped" >&2; exit 1; }
  sleep 0.5
done
curl -fsS -o /dev/null "$url" || { cat "$work/station.log" >&2; echo "no page at $url" >&2; exit 1; }

status=0
# Run from beside node_modules, so that `import "puppeteer-core"` resolves there.
cp "$here/check.mjs" "$npm_dir/check.mjs"
CHROMIUM="$CHROMIUM" node "$npm_dir/check.mjs" "$url" "$shots" "$work/chromium-profile" || status=$?
# What a visit costs on the wire: the page, its assets, /api/now, /api/health and every
# chart, gzip-compressed as a browser gets them (times are from this debug build).
for span in 24h 1y; do
  paths="/ /app.js /app.css /favicon.svg /api/now /api/health"
  for c in temperature humidity pressure wind wind_direction wind_rose rain water track; do
    paths="$paths /chart/$c.svg?span=$span&units=metric"
  done
  for p in $paths; do
    curl -fsS -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download} %{time_total}\n' "${url%/}$p"
  done | awk -v span="$span" '{ b += $1; t += $2; if ($2 > m) m = $2 }
    END { printf "Page with the %s charts: %d bytes compressed, %.0f ms for all requests one after another, slowest %.0f ms\n", span, b, t * 1000, m * 1000 }'

done

if [ "$status" -ne 0 ]; then
  echo "--- station log (last 40 lines)"; tail -n 40 "$work/station.log"
fi
echo "Screenshots: $shots"
exit "$status"
