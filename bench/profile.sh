#!/usr/bin/env bash
# Where Anemone's CPU goes on a max-speed simulated run (no broker).
#
#   bench/profile.sh [DURATION]      # default 6h of station time
#
# Builds the release profile with symbols (strip off, line tables) into a separate target
# directory ($PROF_TARGET, default /var/tmp/anemone-prof-target: the shipped binary is
# stripped), then
#   * `strace -f -c`: syscall counts (divided by the ticks, in the output),
#   * `perf record -g` if perf works here, else `valgrind --tool=callgrind`,
# and prints the top symbols (self time) and the top callers of futex wakes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DURATION=${1:-6h}
PROF_TARGET=${PROF_TARGET:-/var/tmp/anemone-prof-target}
(cd "$REPO_DIR" && CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release --target-dir "$PROF_TARGET")
BIN=$PROF_TARGET/release/anemone
ANEMONE=$BIN
make_workdir
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"' EXIT
bench_config "$WORK/p.toml" "$WORK/p.db" off
run=(--config "$WORK/p.toml" run --simulate --speed max --duration "$DURATION" --seed "$SEED" --start "$START_DAY")
ticks=$(( ${DURATION%h} * 3600 ))

if command -v strace >/dev/null; then
    rm -f "$WORK/p.db"*
    strace -f -c -o "$WORK/strace.txt" "$BIN" --db "$WORK/p.db" "${run[@]}" 2>/dev/null
    echo "## strace -f -c ($ticks ticks)"
    awk -v t="$ticks" 'NR<=2 || /^-/ {print; next} NF>=5 && $NF!="total" && NR<14 {printf "%s   (%.2f calls/tick)\n", $0, $4/t}' "$WORK/strace.txt"
fi

rm -f "$WORK/p.db"*
if perf record -o "$WORK/perf.data" -F 2000 -g "$BIN" --db "$WORK/p.db" "${run[@]}" 2>/dev/null >/dev/null; then
    echo "## perf: self time by object"
    perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | sed -n '1,6p'
    echo "## perf: top symbols (self)"
    perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | sed -n '1,30p'
    echo "## perf: user-space callers of the futex syscall (inclusive)"
    perf report -i "$WORK/perf.data" --children --sort sym --stdio -g caller,0.5,callee,function,percent \
        --symbol-filter=__x64_sys_futex 2>/dev/null | grep -v '^#' | grep -v '^$' | sed -n '1,60p'
else
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$BIN" --db "$WORK/p.db" "${run[@]}" 2>/dev/null
    callgrind_annotate "$WORK/callgrind.out" | sed -n '1,40p'
fi
