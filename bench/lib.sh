# Shared helpers for bench/run.sh and bench/backfill.sh (sourced, not run).
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
ANEMONE=${ANEMONE:-$REPO_DIR/target/release/anemone}
VENV=$BENCH_DIR/.venv
PY=$VENV/bin/python
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
SEED=${SEED:-1}
START_DAY=${START_DAY:-2026-06-01}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

setup_venv() {
    if [ ! -x "$PY" ] || ! "$PY" -c 'import paho.mqtt.client' 2>/dev/null; then
        log "creating $VENV with paho-mqtt"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet paho-mqtt
    fi
}

build_anemone() {
    if [ ! -x "$ANEMONE" ]; then
        log "building anemone (release, LTO): takes a few minutes"
        (cd "$REPO_DIR" && cargo build --release)
    fi
}

# A work directory on a real disk (write_bytes is 0 on tmpfs).
make_workdir() {
    WORK=$(mktemp -d "${BENCH_TMP:-/var/tmp}/anemone-bench.XXXXXX")
    local fstype
    fstype=$(stat -f -c %T "$WORK")
    if [ "$fstype" = tmpfs ] || [ "$fstype" = ramfs ]; then
        log "WARNING: $WORK is on $fstype: write_bytes will read 0; set BENCH_TMP to a disk"
    fi
    log "work directory: $WORK ($fstype)"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_mosquitto PORT: our own broker on loopback, our own config; sets MOSQ_PID.
# MOSQ_EXTRA, if set, is appended to the config (bench/collector.sh sets broker limits).
start_mosquitto() {
    local port=$1 conf=$WORK/mosquitto-$1.conf
    cat >"$conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
max_queued_messages 0
${MOSQ_EXTRA:-}
EOF
    # mosquitto drops root for its own user, so it logs to stderr, redirected by us.
    "$MOSQUITTO" -c "$conf" 2>"$WORK/mosquitto-$port.log" &
    MOSQ_PID=$!
    for _ in $(seq 100); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
            log "mosquitto pid $MOSQ_PID on 127.0.0.1:$port"
            return 0
        fi
        sleep 0.05
    done
    log "mosquitto did not start"; return 1
}

stop_mosquitto() {
    if [ -n "${MOSQ_PID:-}" ] && kill -0 "$MOSQ_PID" 2>/dev/null; then
        kill "$MOSQ_PID"; wait "$MOSQ_PID" 2>/dev/null || true
    fi
    MOSQ_PID=
}

# bench_config FILE DB MQTT: the example config (anemone config init) on simulated buses;
# MQTT = off | mqtt://host:port. Extra `sed` expressions may follow.
bench_config() {
    local file=$1 db=$2 mqtt=$3; shift 3
    "$ANEMONE" config init >"$file.example"
    local mq
    if [ "$mqtt" = off ]; then
        mq='s|^broker = "embedded"|enabled = false|'
    else
        mq="s|^broker = \"embedded\"|broker = \"$mqtt\"|"
    fi
    sed -e 's|^simulate = false|simulate = true|' \
        -e "s|^path = \"/var/lib/anemone/anemone.db\"|path = \"$db\"|" \
        -e "$mq" "$@" "$file.example" >"$file"
    rm -f "$file.example"
    "$ANEMONE" validate --config "$file" >/dev/null
}

# db_query DB SQL: one value from the database (read-only, concurrent with the writer).
db_query() {
    python3 - "$1" "$2" <<'EOF'
import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
print(c.execute(sys.argv[2]).fetchone()[0])
EOF
}
