#!/usr/bin/env bash
# What the tamper-evident chain costs (issue 19: "at most 5 % more CPU per reading in a
# max-speed simulated day, and no extra page written per commit beyond the chain row").
#
#   bench/chain_cost.sh [DURATION]      # default 6h of station time; about 6 minutes
#   RUNS=off bench/chain_cost.sh 1h     # one run only (mqtt, off, pages)
#
# Builds the release profile with symbols (strip off, line tables) into a separate target
# directory ($PROF_TARGET, default /var/tmp/anemone-prof-target, shared with profile.sh),
# then runs the default config (`anemone config init`) on simulated buses, `run --simulate
# --speed max --duration DURATION`, seed $SEED, from $START_DAY, a fresh database each:
#   mqtt   under callgrind, MQTT to our own Mosquitto on a free loopback port, the heads
#          signed (`[station] signing_key`, a key made by `anemone keygen`)
#   off    under callgrind, `[mqtt] enabled = false`
#   pages  under `strace -e trace=openat,pwrite64` (no valgrind), MQTT off: the WAL frames
#          of every commit, by the b-tree each page belongs to
# and prints, per callgrind run, the instructions (Ir) of the whole process and of the
# chain (Sealer: head_link, the rows' bytes and SHA-256, insert_link; Store::chain_head after each commit;
# publish_chain: payload, signature, publish; see chain_cost.py), per reading with and
# without the chain. The web page listens on a free loopback port. KEEP=1 keeps the work
# directory (configs, logs, callgrind files, databases, the trace).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DURATION=${1:-6h}
RUNS=${RUNS:-mqtt off pages}
PROF_TARGET=${PROF_TARGET:-/var/tmp/anemone-prof-target}
(cd "$REPO_DIR" && CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release --target-dir "$PROF_TARGET")
ANEMONE=$PROF_TARGET/release/anemone
make_workdir
cleanup() {
    stop_mosquitto
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
want() { case " $RUNS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# config NAME BROKER [SED…]: the default config, this run's database and broker, the web
# page on a free loopback port.
config() {
    local name=$1 broker=$2 web
    shift 2
    web=$(free_port)
    bench_config "$WORK/$name.toml" "$WORK/$name.db" "$broker" \
        -e "s|^listen = \"0.0.0.0:8080\"|listen = \"127.0.0.1:$web\"|" "$@"
}
run_args() { # NAME
    echo --config "$WORK/$1.toml" --db "$WORK/$1.db" run --simulate --speed max \
        --duration "$DURATION" --seed "$SEED" --start "$START_DAY"
}
readings() { db_query "$WORK/$1.db" "SELECT count(*) FROM readings"; }

callgrind() { # NAME
    local name=$1 n
    log "$name: callgrind, --duration $DURATION"
    # shellcheck disable=SC2046
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.callgrind" \
        "$ANEMONE" $(run_args "$name") >"$WORK/$name.log" 2>&1
    n=$(readings "$name")
    echo "## $name: $(tail -n 1 "$WORK/$name.log" | sed 's/^==[0-9]*== //')"
    grep -h '^Stored ' "$WORK/$name.log" || true
    python3 "$BENCH_DIR/chain_cost.py" cpu "$WORK/$name.callgrind" "$n" --json "$WORK/$name.json"
}

if want mqtt; then
    port=$(free_port)
    start_mosquitto "$port"
    config mqtt "mqtt://127.0.0.1:$port" \
        -e "s|^# signing_key = .*|signing_key = \"$WORK/chain.key\"|"
    grep -q "^signing_key = " "$WORK/mqtt.toml" || { log "no signing_key line in the example config"; exit 1; }
    "$ANEMONE" keygen --config "$WORK/mqtt.toml" >/dev/null
    callgrind mqtt
    stop_mosquitto
fi

if want off; then
    config off off
    callgrind off
fi

if want pages; then
    config pages off
    log "pages: strace, --duration $DURATION"
    # shellcheck disable=SC2046
    strace -f -e trace=openat,pwrite64 -e signal=none -xx -s 24 -o "$WORK/pages.strace" \
        "$ANEMONE" $(run_args pages) >"$WORK/pages.log" 2>&1
    echo "## pages written per commit (WAL frames), MQTT off"
    python3 "$BENCH_DIR/chain_cost.py" pages "$WORK/pages.strace" "$WORK/pages.db" --json "$WORK/pages.json"
fi
