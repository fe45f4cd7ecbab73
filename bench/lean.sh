#!/usr/bin/env bash
# The five figures of issue 21 ("Lighter on the SD card and the battery") in one command:
#
#   bench/lean.sh                       # everything, about 6 minutes
#   RUNS="realtime" WINDOW=20 bench/lean.sh   # just CPU and wake-ups at real time, quickly
#   DAY=6h RUNS="day slow" bench/lean.sh      # RSS and CPU/reading on a quarter day
#
# Release build, the default config (`anemone config init`) on simulated buses, MQTT to our
# own Mosquitto on a free loopback port, the web page on a free loopback port, a fresh
# database for every run in a work directory under $BENCH_TMP (default /var/tmp, a real
# disk). Runs (RUNS, default "bytes realtime day slow"):
#   bytes     BYTES_SECONDS (75) of wall time at --speed BYTES_SPEED (10): write_bytes of the
#             whole process (bench/measure.py) / readings stored
#   realtime  real time: CPU (utime + stime) and context switches of every thread over
#             WINDOW (60) s after WARMUP (15) s (bench/lean_window.py)
#   day       --speed max --duration DAY (86400s): peak RSS, CPU µs / reading, bytes / reading
#   slow      the same day through bench/slow_link.py, a link of SLOW_BPS (100000) bytes/s
#             each way, so the broker acknowledges far slower than the station produces:
#             peak RSS (the finite run drains for at most 60 s, then exits)
# Other knobs: ANEMONE (binary; default target/release/anemone, built if missing), SEED,
# START_DAY, BENCH_TMP, KEEP=1 (keep the work directory: configs, logs, JSON, databases).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-bytes realtime day slow}
BYTES_SECONDS=${BYTES_SECONDS:-75}
BYTES_SPEED=${BYTES_SPEED:-10}
WARMUP=${WARMUP:-15}
WINDOW=${WINDOW:-60}
DAY=${DAY:-86400s}
SLOW_BPS=${SLOW_BPS:-100000}
build_anemone
make_workdir
LINK_PID=
cleanup() {
    if [ -n "$LINK_PID" ] && kill -0 "$LINK_PID" 2>/dev/null; then
        kill "$LINK_PID"; wait "$LINK_PID" 2>/dev/null || true
    fi
    stop_mosquitto
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
want() { case " $RUNS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# config NAME BROKER_URL: the default config, this run's database, broker and web port.
config() {
    local web
    web=$(free_port)
    bench_config "$WORK/$1.toml" "$WORK/$1.db" "$2" \
        -e "s|^listen = \"0.0.0.0:8080\"|listen = \"127.0.0.1:$web\"|"
}
station() { # NAME ARGS...: the command line of one run
    local name=$1; shift
    echo "$ANEMONE" --config "$WORK/$name.toml" --db "$WORK/$name.db" run --simulate \
        --seed "$SEED" --start "$START_DAY" "$@"
}
readings() { db_query "$WORK/$1.db" "SELECT count(*) FROM readings" >"$WORK/$1.readings"; }

if want bytes; then
    port=$(free_port); start_mosquitto "$port"
    config bytes "mqtt://127.0.0.1:$port"
    log "bytes: ${BYTES_SECONDS} s at --speed $BYTES_SPEED"
    # shellcheck disable=SC2046
    python3 "$BENCH_DIR/measure.py" --out "$WORK/bytes.json" --log "$WORK/bytes.log" -- \
        $(station bytes --speed "$BYTES_SPEED" --duration "$((BYTES_SECONDS * BYTES_SPEED))s")
    readings bytes
    stop_mosquitto
fi

if want realtime; then
    port=$(free_port); start_mosquitto "$port"
    config realtime "mqtt://127.0.0.1:$port"
    log "realtime: ${WARMUP} s warm-up, ${WINDOW} s window"
    # shellcheck disable=SC2046
    python3 "$BENCH_DIR/lean_window.py" --out "$WORK/realtime.json" --log "$WORK/realtime.log" \
        --warmup "$WARMUP" --window "$WINDOW" -- $(station realtime)
    stop_mosquitto
fi

if want day; then
    port=$(free_port); start_mosquitto "$port"
    config day "mqtt://127.0.0.1:$port"
    log "day: --speed max --duration $DAY"
    # shellcheck disable=SC2046
    python3 "$BENCH_DIR/measure.py" --out "$WORK/day.json" --log "$WORK/day.log" -- \
        $(station day --speed max --duration "$DAY")
    readings day
    stop_mosquitto
fi

if want slow; then
    port=$(free_port); start_mosquitto "$port"
    link=$(free_port)
    python3 "$BENCH_DIR/slow_link.py" --listen "$link" --to "127.0.0.1:$port" --rate "$SLOW_BPS" &
    LINK_PID=$!
    sleep 0.5
    config slow "mqtt://127.0.0.1:$link"
    log "slow: --speed max --duration $DAY through a $SLOW_BPS B/s link"
    # shellcheck disable=SC2046
    python3 "$BENCH_DIR/measure.py" --out "$WORK/slow.json" --log "$WORK/slow.log" -- \
        $(station slow --speed max --duration "$DAY")
    readings slow
    kill "$LINK_PID"; wait "$LINK_PID" 2>/dev/null || true; LINK_PID=
    stop_mosquitto
fi

python3 - "$WORK" <<'EOF' | tee "$WORK/summary.md"
import json, os, sys
w = sys.argv[1]
def load(name):
    p = os.path.join(w, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
def count(name):
    p = os.path.join(w, name + ".readings")
    return int(open(p).read()) if os.path.exists(p) else None
rows = []
b, n = load("bytes"), count("bytes")
if b and n:
    rows.append(("bytes written per reading", f"{b['write_bytes'] / n:.1f} B",
                 f"{b['write_bytes']} B / {n} readings", "≤ 41 B"))
r = load("realtime")
if r:
    rows.append(("CPU at real time", f"{r['cpu_pct']:.3f} % of a core",
                 f"{r['cpu_s']:.2f} s in {r['window_s']:.0f} s", "≤ 0.1 %"))
    rows.append(("wake-ups at real time", f"{r['wakeups_per_s']:.1f} /s",
                 f"{r['switches']} switches, {r['threads_at_start']} threads", "≤ 5 /s"))
d, dn = load("day"), count("day")
s, sn = load("slow"), count("slow")
for name, m, k in (("", d, dn), (", slow broker", s, sn)):
    if m:
        rows.append((f"peak RSS{name}", f"{m['peak_rss_kb'] / 1000:.1f} MB",
                     f"VmHWM {m['peak_rss_kb']} kB, {k} readings, {m['wall_s']:.0f} s wall", "≤ 10 MB"))
if d and dn:
    rows.append(("bytes written per reading, a whole day", f"{d['write_bytes'] / dn:.1f} B",
                 f"{d['write_bytes']} B / {dn} readings (max speed: start, checkpoints and end of a day)",
                 "(the field's figure; not in the issue)"))
    rows.append(("CPU per reading, max speed", f"{d['cpu_s'] * 1e6 / dn:.2f} µs",
                 f"{d['cpu_s']:.2f} s / {dn} readings", "no worse than before (10.7–11.1 µs in the issue)"))
print("| figure | value | from | target |")
print("|---|---:|---|---|")
for row in rows:
    print("| " + " | ".join(row) + " |")
if r:
    print()
    print("Wake-ups by thread (real time, window):")
    print()
    print("| thread | threads | switches | per s | run ms |")
    print("|---|---:|---:|---:|---:|")
    for k, v in r["per_thread_name"].items():
        print(f"| {k} | {v['threads']} | {v['switches']} | {v['per_s']} | {v['run_ms']} |")
for name in ("bytes", "realtime", "day", "slow"):
    m = load(name)
    if m and m.get("exit") not in (0, None):
        print(f"\nWARNING: the {name} run exited with {m['exit']} (see {w}/{name}.log)")
EOF
log "results in $WORK"
