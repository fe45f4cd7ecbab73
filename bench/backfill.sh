#!/usr/bin/env bash
# Backfill benchmark: a simulated day (full default sensor set, 1 Hz wind) stored while the
# broker is down, then drained to a real Mosquitto on loopback.
#
#   bench/backfill.sh
#
# Phase 1: `anemone run --simulate --speed max --duration 24h` with the broker pointing at a
#          closed loopback port: everything is stored, nothing acknowledged (cursor 0).
# Phase 2: Mosquitto started on a free port; anemone run again on a copy of that database
#          (the next simulated day, --speed 10, so live readings keep flowing) and the
#          publish cursor polled until it reaches the last reading id of phase 1.
#          Done twice: with the default `[mqtt] backfill_rate` (50 000/s) and with
#          BACKFILL_RATE_FAST (default 1000000, i.e. unthrottled) set in the config.
# Environment: BENCH_TMP, SEED, START_DAY, BACKLOG_DURATION (hours, default 24h),
# DRAIN_TIMEOUT (s, default 400), KEEP=1.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-400}
# How much station time is queued (24h = the issue's day; 82h ≈ 864 000 readings of the default station).
BACKLOG_DURATION=${BACKLOG_DURATION:-24h}
BACKFILL_RATE_FAST=${BACKFILL_RATE_FAST:-1000000}
setup_venv
build_anemone
make_workdir
trap 'stop_mosquitto; [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"' EXIT

# Phase 2 continues where phase 1 stopped, in station time.
next_day=$(python3 -c 'import datetime as d, sys; print((d.datetime.fromisoformat(sys.argv[1]) + d.timedelta(hours=int(sys.argv[2].rstrip("h")))).strftime("%Y-%m-%dT%H:%M:%SZ"))' "$START_DAY" "$BACKLOG_DURATION")

# Phase 1: broker down (a port nothing listens on).
closed=$(free_port)
bench_config "$WORK/down.toml" "$WORK/backlog.db" "mqtt://127.0.0.1:$closed"
log "phase 1: $BACKLOG_DURATION with the broker down (127.0.0.1:$closed closed)"
t0=$(date +%s.%N)
"$ANEMONE" --config "$WORK/down.toml" --db "$WORK/backlog.db" run --simulate --speed max \
    --duration "$BACKLOG_DURATION" --seed "$SEED" --start "$START_DAY" 2>"$WORK/phase1.log"
t1=$(date +%s.%N)
maxid=$(db_query "$WORK/backlog.db" "SELECT max(id) FROM readings")
count=$(db_query "$WORK/backlog.db" "SELECT count(*) FROM readings")
cur=$(db_query "$WORK/backlog.db" "SELECT coalesce((SELECT value FROM meta WHERE key='publish_cursor'),0)")
log "phase 1 took $(echo "$t1 - $t0" | bc) s: $count readings, max id $maxid, cursor $cur"

# Phase 2: broker up, drain.
port=$(free_port)
start_mosquitto "$port"
results=()
for rate in default "$BACKFILL_RATE_FAST"; do
    db=$WORK/drain-$rate.db
    cp "$WORK/backlog.db" "$db"
    for ext in -wal -shm; do [ -e "$WORK/backlog.db$ext" ] && cp "$WORK/backlog.db$ext" "$db$ext"; done
    # The watcher sees the cursor when a commit persists it: commit every simulated 10 s
    # (1 s of real time at --speed 10) so the figure is the drain, not the commit interval.
    extra=(-e 's|^commit_interval = .*|commit_interval = "10s"|')
    [ "$rate" = default ] || extra+=(-e "s|^discovery = true|discovery = true\nbackfill_rate = $rate|")
    bench_config "$WORK/up-$rate.toml" "$db" "mqtt://127.0.0.1:$port" "${extra[@]}"
    log "phase 2 (backfill_rate $rate): draining $((maxid - cur)) readings to 127.0.0.1:$port"
    res=$("$PY" "$BENCH_DIR/drain_watch.py" "$db" "$maxid" "$DRAIN_TIMEOUT" -- \
        "$ANEMONE" --config "$WORK/up-$rate.toml" --db "$db" run --simulate --speed 10 \
        --duration 24h --seed "$SEED" --start "$next_day")
    echo "$res" >"$WORK/drain-$rate.json"
    results+=("$rate $res")
done
stop_mosquitto

{
    echo "Backlog: $count readings (max id $maxid) from $BACKLOG_DURATION of simulated station time from $START_DAY (seed $SEED), cursor $cur; phase 1 took $(echo "$t1 - $t0" | bc) s."
    echo
    echo "| backfill_rate | drained | seconds to cursor = max id | msgs/s | s to first cursor advance | 864 000 in ≤ 30 s? |"
    echo "|---|---:|---:|---:|---:|---|"
    for line in "${results[@]}"; do
        rate=${line%% *}; json=${line#* }
        python3 - "$rate" "$json" <<'EOF'
import json, sys
rate, r = sys.argv[1], json.loads(sys.argv[2])
s = r["drained_s"]
if s is None:
    print(f"| {rate} | {r['readings_drained']} (timeout) | > timeout | – | {r['first_advance_s']} | no |")
else:
    t864 = 864000 / r["msgs_per_s"]
    print(f"| {rate} | {r['readings_drained']} | {s:.1f} | {r['msgs_per_s']:.0f} | {r['first_advance_s']} | "
          f"{'yes' if t864 <= 30 else 'no'} (864 000 at this rate: {t864:.1f} s) |")
EOF
    done
} | tee "$WORK/backfill.md"
log "results in $WORK"
