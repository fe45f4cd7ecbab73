#!/usr/bin/env bash
# The collector benchmark (issue 16): N simulated stations → Mosquitto → anemone-collector →
# PostgreSQL, then the same load into the hobbyist reference (one INSERT + COMMIT per message).
#
#   bench/collector.sh                      # both, default load (1000 stations, 50 000/s, 20 s)
#   ONLY=collector bench/collector.sh       # one of them (collector | reference)
#   RATE=0 bench/collector.sh               # unthrottled: as fast as the broker acknowledges
#
# Environment: STATIONS (1000), RATE (readings/s offered, all stations; default 50000),
# DURATION (s of publishing, 20), REF_READINGS (readings per station for the reference, 20:
# it drains at a few hundred to a few thousand per second), WINDOW (per-station QoS 1 in
# flight, 200), TICK_MS (20), MOSQ_INFLIGHT (broker → collector in flight, 20000),
# BATCH_SIZE / BATCH_MS (the collector's batch bounds, its defaults when unset), BENCH_TMP
# (parent of the work directory, /var/tmp), BENCH_LTO=1 (build with the release profile's
# LTO; default off: the same settings otherwise, much quicker to build), KEEP=1.
# Prints a Markdown table (also WORK/collector-summary.md); per-run JSON and logs in WORK.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

STATIONS=${STATIONS:-1000}
RATE=${RATE:-50000}
DURATION=${DURATION:-20}
REF_READINGS=${REF_READINGS:-20}
WINDOW=${WINDOW:-200}
TICK_MS=${TICK_MS:-20}
MOSQ_INFLIGHT=${MOSQ_INFLIGHT:-20000}
ONLY=${ONLY:-}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BUILD_DIR=${BENCH_TARGET:-$REPO_DIR/target/collector-bench}
BIN=$BUILD_DIR/release

# 1000 connections for the generator and as many for Mosquitto.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log "building the collector, the load generator and the reference (release, LTO ${BENCH_LTO:-0})"
lto=false
[ "${BENCH_LTO:-0}" = 1 ] && lto=true
packages=(-p anemone-collector-bench)
if [ "$ONLY" != reference ]; then
    if [ ! -f "$REPO_DIR/collector/Cargo.toml" ]; then
        log "no collector/ in this tree: run ONLY=reference, or merge the collector first"; exit 1
    fi
    packages+=(-p anemone-collector)
fi
(cd "$REPO_DIR" && CARGO_PROFILE_RELEASE_LTO=$lto cargo build --release --target-dir "$BUILD_DIR" \
    "${packages[@]}")
PY3=python3

make_workdir
chmod 755 "$WORK" # PostgreSQL runs as its own user under it
trap 'stop_mosquitto; stop_postgres; [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"' EXIT

# start_postgres: our own cluster in WORK/pg on a free port (initdb refuses to run as root,
# so as root it runs as the postgres user). track_commit_timestamp gives each row's commit
# time (the end of the latency); durability settings stay PostgreSQL's defaults.
start_postgres() {
    PGPORT=$(free_port)
    PGDATA=$WORK/pg
    local as=()
    if [ "$(id -u)" = 0 ]; then
        mkdir -p "$PGDATA" && chown postgres: "$PGDATA"
        as=(runuser -u postgres --)
    fi
    "${as[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --no-locale >"$WORK/initdb.log"
    cat >>"$PGDATA/postgresql.conf" <<EOF
port = $PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDATA'
track_commit_timestamp = on
EOF
    "${as[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w start >/dev/null
    PG_AS=("${as[@]}")
    log "postgresql on 127.0.0.1:$PGPORT ($PGDATA)"
}

stop_postgres() {
    if [ -n "${PGDATA:-}" ] && [ -f "$PGDATA/postmaster.pid" ]; then
        "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null || true
    fi
}

psql_cmd() { echo "psql -h 127.0.0.1 -p $PGPORT -U postgres -d $1"; }

loadgen() { # PORT EXTRA-ARGS…
    local port=$1; shift
    echo "$BIN/anemone-loadgen --broker 127.0.0.1:$port --stations $STATIONS --rate $RATE" \
        "--window $WINDOW --tick-ms $TICK_MS $*"
}

# Mosquitto for the benchmark: no limit on queued messages (the reference falls behind),
# MOSQ_INFLIGHT unacknowledged messages to a subscriber (the collector acknowledges a batch
# only after its commit, so the default of 20 would cap every batch at 20 messages), and
# no Nagle delay on its sockets.
MOSQ_EXTRA="max_inflight_messages $MOSQ_INFLIGHT
max_queued_bytes 0
set_tcp_nodelay true"
export MOSQ_EXTRA

# run_one NAME LOADGEN-ARGS -- COMMAND…: collector_run.py on the database and broker that
# `fresh NAME` made (extra collector_run.py options in RUN_ARGS), then the broker stops.
run_one() {
    local name=$1 gen=$2; shift 3
    "$PY3" "$BENCH_DIR/collector_run.py" --name "$name" --out "$WORK/$name.json" \
        --log "$WORK/$name.log" --psql "$(psql_cmd "$name")" --pgdata "$PGDATA" \
        --mosquitto-pid "$MOSQ_PID" "${RUN_ARGS[@]}" --loadgen "$(loadgen "$port" $gen)" -- "$@"
    stop_mosquitto
}
fresh() { # NAME: sets db and port
    db=$1
    "${PG_AS[@]}" "$PG_BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres "$db"
    port=$(free_port)
    start_mosquitto "$port"
}

start_postgres

if [ "$ONLY" != reference ]; then
    fresh collector
    {
        printf '[mqtt]\nbroker = "mqtt://127.0.0.1:%s"\nclient_id = "bench-collector"\n' "$port"
        printf '[postgres]\nurl = "host=127.0.0.1 port=%s user=postgres dbname=%s"\n' "$PGPORT" "$db"
        printf '[batch]\n'
        if [ -n "${BATCH_SIZE:-}" ]; then printf 'size = %s\n' "$BATCH_SIZE"; fi
        if [ -n "${BATCH_MS:-}" ]; then printf 'interval = "%sms"\n' "$BATCH_MS"; fi
    } >"$WORK/collector.toml"
    "$BIN/anemone-collector" --config "$WORK/collector.toml" migrate 2>>"$WORK/collector.log"
    log "collector: $STATIONS stations, $RATE readings/s offered for $DURATION s"
    RUN_ARGS=(--id-col id --rollups "rollups_hourly rollups_daily" --ready-log "Subscribed to the stations' topics")
    run_one collector "--duration $DURATION" -- "$BIN/anemone-collector" --config "$WORK/collector.toml"
fi

if [ "$ONLY" != collector ]; then
    fresh reference
    log "reference: $STATIONS stations × $REF_READINGS readings, offered at $RATE/s"
    RUN_ARGS=(--id-col reading_id --timeout "${REF_TIMEOUT:-1800}")
    run_one reference "--duration 3600 --readings $REF_READINGS" -- "$BIN/hobbyist-collector" \
        --broker "127.0.0.1:$port" --db "host=127.0.0.1 port=$PGPORT user=postgres dbname=$db"
fi

"$PY3" "$BENCH_DIR/collector_summary.py" "$WORK" | tee "$WORK/collector-summary.md"
log "results in $WORK"
