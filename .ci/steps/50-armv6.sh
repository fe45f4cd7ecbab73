#!/usr/bin/env bash
# CI step: an ARMv6 hard-float binary (Pi Zero / Zero W, Pi 1: BCM2835, ARM1176JZF-S) and
# proof that it runs on that core, under `qemu-arm -cpu arm1176`:
#
#   - build arm-unknown-linux-musleabihf with `cargo zigbuild` (profile ci), statically
#     linked against musl, which zig compiles for the target CPU. rustup has no standard
#     library for ARMv6 here (its download answers 404), so std is built from the rust-src
#     component: `-Zbuild-std=std,panic_abort` with RUSTC_BOOTSTRAP=1, set for this one
#     cargo command only (the rest of CI stays on plain stable).
#   - the ELF says ARMv6 (readelf -A: Tag_CPU_arch v6KZ/v6, no Thumb-2) and is static
#   - `--version`, `validate --skip-files` of etc/anemone.toml and every hardware/*.toml
#   - a simulated hour of hardware/reef-buoy.toml (MQTT off) into a SQLite database, which
#     the HOST reads: python3's sqlite3 counts the readings per quantity, and the x86_64
#     anemone binary runs `stats`, `verify` and `export` on it
#   - the ARMv7 binary (20-cross.sh's, built here if absent) must FAIL on the same emulated
#     core: if it ran, `-cpu arm1176` would not be emulating an ARMv6 and this step would
#     prove nothing.
#
# Zig and cargo-zigbuild come from PyPI into a venv under target/ (shared with
# .ci/release.sh); nothing else is installed system-wide but apt packages.
# Knobs: ANEMONE_ARMV6_PROFILE (default ci), ANEMONE_QEMU_TIMEOUT (seconds, default 900).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh
root=$(pwd)

ARMV6=arm-unknown-linux-musleabihf
ARMV7=armv7-unknown-linux-gnueabihf
PROFILE=${ANEMONE_ARMV6_PROFILE:-ci}
QEMU_TIMEOUT=${ANEMONE_QEMU_TIMEOUT:-900}
tools=$root/target/release-tools
say() { printf -- '--- %s\n' "$*"; }
fail() { echo "FAIL: $*"; exit 1; }
t0=$SECONDS

# ---- toolchain ---------------------------------------------------------------------------
apt_install qemu-user file binutils python3-venv python3 gcc-arm-linux-gnueabihf \
  libc6-dev-armhf-cross
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
zig_tools "$tools"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- build --------------------------------------------------------------------------------
# No --config on the command line: cargo-zigbuild's linker and CC (environment) must win.
say "[$ARMV6] cargo zigbuild --profile $PROFILE -Zbuild-std=std,panic_abort"
s=$SECONDS
# `-C link-self-contained=no` (for the ARMv6 target only, not for build scripts): rustc's
# musl targets link the crt objects and libunwind of the prebuilt rust-std
# ("self-contained"), which a -Zbuild-std toolchain does not have ("failed to open object
# crt1.o", seen here); zig supplies its own, built for ARMv6. (`cargo zigbuild` has no
# `rustc` subcommand to pass it after `--`.)
CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no" \
  RUSTC_BOOTSTRAP=1 cargo zigbuild --profile "$PROFILE" --target "$ARMV6" \
  -Zbuild-std=std,panic_abort --bin anemone
build_s=$((SECONDS - s))
bin=$root/target/$ARMV6/$PROFILE/anemone
file "$bin"
file "$bin" | grep -q 'ARM, EABI5.*statically linked' || fail "$bin is not a static 32-bit ARM executable"
readelf -A "$bin" | tee "$work/attrs" | grep -E 'Tag_CPU_arch|Tag_THUMB_ISA_use|Tag_FP_arch|Tag_ABI_VFP_args'
grep -Eq 'Tag_CPU_arch: v6(KZ|K|Z)?$' "$work/attrs" || fail "$bin is not built for ARMv6 (readelf -A above)"
grep -q 'Tag_ABI_VFP_args: VFP registers' "$work/attrs" || fail "$bin is not hard-float"

run_v6() { timeout "$QEMU_TIMEOUT" qemu-arm -cpu arm1176 "$bin" "$@"; }

# ---- on an ARM1176 ------------------------------------------------------------------------
s=$SECONDS
say "[arm1176] --version"
run_v6 --version
for c in etc/anemone.toml hardware/*.toml; do
  [ -e "$c" ] || continue
  say "[arm1176] validate --skip-files --config $c"
  run_v6 validate --skip-files --config "$c" >/dev/null
done

# The buoy preset is the Pi Zero W's use; MQTT off (CI must not publish to 127.0.0.1:1883).
sim=$work/reef-buoy.toml
awk '/^\[/ { skip = ($0 ~ /^\[mqtt[].]/) } !skip' hardware/reef-buoy.toml >"$sim"
printf '\n[mqtt]\nenabled = false\n' >>"$sim"
db=$work/armv6.db
say "[arm1176] a simulated hour of hardware/reef-buoy.toml -> $db"
sim_s=$SECONDS
run_v6 --config "$sim" --db "$db" \
  run --simulate --speed max --duration 1h --seed 1 --start 2026-06-01T00:00:00Z
sim_took=$((SECONDS - sim_s))
qemu_took=$((SECONDS - s))

# ---- the host reads the ARMv6 database ----------------------------------------------------
say "host: python3 sqlite3 reads $db"
python3 - "$db" <<'EOF'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
(check,) = con.execute("PRAGMA integrity_check").fetchone()
if check != "ok":
    sys.exit(f"FAIL: integrity_check says {check}")
(n,) = con.execute("SELECT count(*) FROM readings").fetchone()
per = con.execute(
    "SELECT s.name, r.quantity, count(*) FROM readings r JOIN sensors s ON s.id = r.sensor "
    "GROUP BY s.name, r.quantity ORDER BY s.name, r.quantity").fetchall()
for name, q, c in per:
    print(f"  {name:>10} quantity {q:>3}: {c} readings")
if n == 0:
    sys.exit("FAIL: the ARMv6 database holds no readings")
print(f"{n} readings from {len({p[0] for p in per})} sensors")
EOF
say "host: cargo build --bin anemone (usually built by the tests already)"
cargo build --bin anemone
HOST_BIN=$root/target/debug/anemone
"$HOST_BIN" --config "$sim" --db "$db" stats | tee "$work/stats"
test -s "$work/stats" || fail "stats printed nothing"
"$HOST_BIN" --config "$sim" --db "$db" verify || fail "the chain sealed on ARMv6 does not verify on the host"
"$HOST_BIN" --config "$sim" --db "$db" export --format csv --output "$work/armv6.csv"
[ "$(wc -l <"$work/armv6.csv")" -gt 1 ] || fail "export of the ARMv6 database has no readings"

# ---- negative control: an ARMv7 binary must not run on the ARM1176 ------------------------
v7=$root/target/$ARMV7/ci/anemone
if [ ! -x "$v7" ]; then
  say "no ARMv7 binary from 20-cross.sh: building it"
  rustup target list --installed | grep -qx "$ARMV7" || rustup target add "$ARMV7"
  cargo build --profile ci --target "$ARMV7" --bin anemone
fi
say "[arm1176] the ARMv7 binary must fail here"
set +e
timeout 120 qemu-arm -cpu arm1176 -L /usr/arm-linux-gnueabihf "$v7" --version >"$work/v7.out" 2>&1
rc=$?
set -e
head -c 400 "$work/v7.out"
echo "exit status $rc"
if [ "$rc" -eq 0 ]; then
  fail "the ARMv7 binary ran under -cpu arm1176: the emulated core is not an ARMv6, so the check above proves nothing"
fi
# 132 = killed by SIGILL (qemu re-raises the guest's signal): the expected failure.
[ "$rc" -eq 132 ] || grep -qi 'illegal instruction' "$work/v7.out" \
  || fail "the ARMv7 binary failed with status $rc, not with an illegal instruction"
echo "ARMv7 binary: illegal instruction on the ARM1176, as it should"
say "[arm1176] and the same ARMv7 binary runs with the default (ARMv7+) CPU"
timeout 120 qemu-arm -L /usr/arm-linux-gnueabihf "$v7" --version

say "summary"
printf '  %-34s %9d bytes\n' "$ARMV6 ($PROFILE)" "$(stat -c %s "$bin")"
printf '  %-34s %5ds\n' build "$build_s" "simulated hour (qemu arm1176)" "$sim_took" \
  "all qemu runs" "$qemu_took" total $((SECONDS - t0))
