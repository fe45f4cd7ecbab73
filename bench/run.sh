#!/usr/bin/env bash
# Side-by-side benchmark: Anemone vs the reference logger, without and with Mosquitto.
#
#   bench/run.sh            # everything (about 10 minutes on 2 cores, most of it the
#                           # reference logger's fsync per tick)
#   REF_TICKS=21600 bench/run.sh   # reference logger on the first 6 h only
#
# Environment: TICKS (simulated seconds, default 86400 = one day), REF_TICKS (default TICKS), BENCH_TMP (parent of
# the work directory; must be a real disk, default /var/tmp), SEED, START_DAY,
# FIRST_READING_RUNS (default 5), KEEP=1 keeps the work directory.
# Prints a Markdown table (also saved as WORK/summary.md) and leaves per-run JSON in WORK.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

TICKS=${TICKS:-86400}
# The reference logger is bound by one fsync per tick (minutes for a day); REF_TICKS runs it
# on the first part of the day only. Figures are per tick / per reading either way.
REF_TICKS=${REF_TICKS:-$TICKS}
FIRST_READING_RUNS=${FIRST_READING_RUNS:-5}
setup_venv
build_anemone
make_workdir
trap 'stop_mosquitto; [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"' EXIT

duration="${TICKS}s"
measure() { "$PY" "$BENCH_DIR/measure.py" "$@"; }

run_anemone() { # NAME MQTT [sed expressions for the config]
    local name=$1 mqtt=$2 db=$WORK/$1.db
    shift 2
    bench_config "$WORK/$name.toml" "$db" "$mqtt" "$@"
    log "anemone $name: run --simulate --speed max --duration $duration"
    measure --out "$WORK/$name.json" --log "$WORK/$name.log" -- \
        "$ANEMONE" --config "$WORK/$name.toml" --db "$db" run --simulate --speed max \
        --duration "$duration" --seed "$SEED" --start "$START_DAY"
    db_query "$db" "SELECT count(*) FROM readings" >"$WORK/$name.readings"
    if [ "$mqtt" != off ]; then
        db_query "$db" "SELECT coalesce((SELECT value FROM meta WHERE key='publish_cursor'),0)" >"$WORK/$name.cursor"
        db_query "$db" "SELECT max(id) FROM readings" >"$WORK/$name.maxid"
    fi
}

run_reference() { # NAME [BROKER]
    local name=$1 db=$WORK/$1.db
    log "reference $name: $REF_TICKS ticks, INSERT + COMMIT (+ publish) per tick"
    measure --out "$WORK/$name.json" --log "$WORK/$name.log" --stdout "$WORK/$name.out" -- \
        "$PY" "$BENCH_DIR/reference_logger.py" --db "$db" --seconds "$REF_TICKS" \
        --start "$START_DAY" --seed "$SEED" ${2:+--broker "$2"}
}

# 1. Without MQTT.
run_anemone anemone-nomqtt off
run_reference ref-nomqtt
# Upper bound for Anemone's disk writes: every commit synced, so the page cache cannot merge
# rewrites of a page across commits the way it can in an accelerated run (see README).
run_anemone anemone-sync-full off -e 's|^synchronous = "normal"|synchronous = "full"|'

# 2. With a real Mosquitto on loopback (a fresh broker per program).
port=$(free_port)
start_mosquitto "$port"
run_anemone anemone-mqtt "mqtt://127.0.0.1:$port"
stop_mosquitto
port=$(free_port)
start_mosquitto "$port"
run_reference ref-mqtt "127.0.0.1:$port"
stop_mosquitto

# 3. Footprint: binary size (the release profile strips; we strip a copy anyway to be sure).
cp "$ANEMONE" "$WORK/anemone.stripped" && strip "$WORK/anemone.stripped"
printf '{"release_bytes": %s, "stripped_bytes": %s, "target": "%s"}\n' \
    "$(stat -c %s "$ANEMONE")" "$(stat -c %s "$WORK/anemone.stripped")" \
    "$(rustc -vV | sed -n 's/^host: //p')" >"$WORK/footprint.json"

# 4. Start to first stored reading: real time, fresh database, MQTT off.
bench_config "$WORK/first.toml" "$WORK/unused.db" off
: >"$WORK/first.jsonl"
for i in $(seq "$FIRST_READING_RUNS"); do
    "$PY" "$BENCH_DIR/first_reading.py" "$WORK/first-$i.db" 10 -- \
        "$ANEMONE" --config "$WORK/first.toml" --db "$WORK/first-$i.db" run --simulate \
        >>"$WORK/first.jsonl"
done
log "first reading: $(tr '\n' ' ' <"$WORK/first.jsonl")"

"$PY" "$BENCH_DIR/summarize.py" "$WORK" "$TICKS" "$REF_TICKS" | tee "$WORK/summary.md"
log "results in $WORK"
