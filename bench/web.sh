#!/usr/bin/env bash
# The station's web page with a year of history (issue 15, "Benchmarks"): time to serve the
# page with all its 24-hour charts and with its year charts, the bytes transferred
# (gzip), and the station's RSS growth while five browsers hold the page open (live feed).
#
#   bench/web.sh                 # builds target/release/anemone if missing
#   ANEMONE=target/debug/anemone bench/web.sh
#   RUNS=9 KEEP=1 bench/web.sh
#   HISTORY_DB=/var/tmp/anemone-bench.X/history.db bench/web.sh   # reuse a kept history
#
# History: a year of the built-in station at 15-minute intervals (day, hour and minute
# aggregates for every day), then the last day at the real intervals (wind every second),
# so the 24-hour charts read full minute aggregates. Then the station runs live (real
# time) with its page on a free loopback port, and curl fetches what a browser fetches.
# Targets on the 2-core build machine: 24-h page ≤ 100 ms, year page ≤ 300 ms, ≤ 300 KB,
# RSS growth ≤ 2 MB.
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-5}
HOLD_S=${HOLD_S:-30}
build_anemone
make_workdir
DB=$WORK/web.db
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

config() { # $1 = interval override ("" keeps the example's)
    local text
    text=$(sed -e 's/^simulate = false/simulate = true/' \
        -e 's/^\[mqtt\]$/[mqtt]\nenabled = false/' \
        -e "s|^listen = \"0.0.0.0:8080\"|listen = \"127.0.0.1:$PORT\"|" \
        -e "s|^path = \"/var/lib/anemone/anemone.db\"|path = \"$DB\"|" \
        "$REPO_DIR/etc/anemone.toml")
    if [ -n "$1" ]; then
        text=$(printf '%s\n' "$text" | sed -e "s/^interval = \".*\"/interval = \"$1\"/")
    fi
    printf '%s\n' "$text"
}
# The history runs commit hourly (fewer fsyncs: a year at the default 2 minutes spends
# most of its time syncing); the live station keeps the example's commit interval.
config 15m | sed -e 's/^commit_interval = ".*"/commit_interval = "1h"/' >"$WORK/year.toml"
config "" >"$WORK/live.toml"

# Generating the history takes long on a small machine: with KEEP=1 a copy is kept as
# WORK/history.db, and HISTORY_DB=that-file starts from a copy of it instead (the live
# station then fills in the time since it was made).
if [ -n "${HISTORY_DB:-}" ]; then
    log "history: a copy of $HISTORY_DB"
    cp "$HISTORY_DB" "$DB"
else
    today=$(date -u +%F)
    year_start=$(date -u -d "$today -365 days" +%F)
    day_start=$(date -u -d "$today -1 day" +%F)
    log "history: $year_start to $day_start at 15-minute intervals"
    "$ANEMONE" run --simulate --speed max --start "$year_start" --duration 364d \
        --config "$WORK/year.toml" >"$WORK/year.log" 2>&1
    now_s=$(date -u +%s)
    rest_s=$((now_s - $(date -u -d "$day_start" +%s)))
    log "history: the last ${rest_s} s at the real intervals"
    sed -e 's/^commit_interval = ".*"/commit_interval = "1h"/' "$WORK/live.toml" >"$WORK/day.toml"
    "$ANEMONE" run --simulate --speed max --start "$day_start" --duration "${rest_s}s" \
        --config "$WORK/day.toml" >"$WORK/day.log" 2>&1
    if [ "${KEEP:-0}" = 1 ]; then
        cp "$DB" "$WORK/history.db"
    fi
fi
log "database: $(du -h "$DB" | cut -f1)"

RUST_LOG=info "$ANEMONE" run --simulate --config "$WORK/live.toml" >"$WORK/live.log" 2>&1 &
STATION=$!
CURLS=()
cleanup() {
    for p in "${CURLS[@]}"; do kill "$p" 2>/dev/null || true; done
    kill "$STATION" 2>/dev/null || true
    wait "$STATION" 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
BASE=http://127.0.0.1:$PORT
for _ in $(seq 100); do
    curl -s -o /dev/null "$BASE/api/health" && break
    sleep 0.2
done

charts=$(curl -s "$BASE/" | grep -o 'data-chart="[a-z_]*"' | cut -d'"' -f2)

# One visit: the page, its assets, /api/now, /api/health and every chart of a span,
# six connections at a time like a browser. Prints "ms bytes".
visit() {
    local span=$1 urls=() t0 t1 bytes
    urls=("$BASE/" "$BASE/app.js" "$BASE/app.css" "$BASE/favicon.svg" "$BASE/api/now" "$BASE/api/health")
    for c in $charts; do urls+=("$BASE/chart/$c.svg?span=$span&units=metric"); done
    local args=()
    for u in "${urls[@]}"; do args+=(-o /dev/null "$u"); done
    t0=$(date +%s%N)
    bytes=$(curl -s --compressed --parallel --parallel-max 6 -w '%{size_download}\n' "${args[@]}" 2>/dev/null |
        awk '{s += $1} END {print s}')
    t1=$(date +%s%N)
    echo "$(((t1 - t0) / 1000000)) $bytes"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

report() {
    local span=$1 results
    visit "$span" >/dev/null # warm-up
    results=$(for _ in $(seq "$RUNS"); do visit "$span"; done)
    printf '%s page: %s ms (median of %s), %s bytes transferred (gzip)\n' "$span" \
        "$(cut -d' ' -f1 <<<"$results" | median)" "$RUNS" "$(cut -d' ' -f2 <<<"$results" | median)"
}

report 24h
report 1y

rss() { awk '/^VmRSS/ {print $2}' "/proc/$STATION/status"; }
before=$(rss)
for _ in 1 2 3 4 5; do
    visit 24h >/dev/null
    curl -s -N "$BASE/api/events" >/dev/null &
    CURLS+=($!)
done
sleep "$HOLD_S"
after=$(rss)
printf 'RSS: %s KiB before, %s KiB with five live pages open for %s s (+%s KiB)\n' \
    "$before" "$after" "$HOLD_S" "$((after - before))"
