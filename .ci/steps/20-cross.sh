#!/usr/bin/env bash
# CI step: cross-build Anemone for the Pi and prove the binaries work, under qemu-user.
#
#   for aarch64-unknown-linux-gnu (64-bit Pi OS) and armv7-unknown-linux-gnueabihf (32-bit):
#     - build with the `ci` profile (release without LTO: minutes cheaper; see Cargo.toml)
#     - `anemone --version`, `anemone validate` on etc/anemone.toml and hardware/*.toml
#     - a simulated hour at max speed into a SQLite database, MQTT off
#     - the HOST binary reads that database with `stats`, `verify` (the chain) and `export --format csv`
#       (the on-disk format is the same across architectures)
#     - a .deb from that binary (cargo-deb), contents checked with dpkg-deb -c (binary, unit,
#       config, examples, man page, bash/zsh/fish completions, licence texts)
#
# binfmt_misc is not assumed: every target binary runs as `qemu-<arch> -L <sysroot> BIN`.
# Release-profile (LTO) sizes: .ci/sizes.sh (opt-in, slow). Shipped binaries: .ci/release.sh.
#
# Knobs: ANEMONE_CROSS_TARGETS (space-separated triples), ANEMONE_CROSS_PROFILE (default ci),
# ANEMONE_CROSS_DEB=0 to skip the .deb part.
# Runs as root on a clean Debian machine, with no stdin; idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh
root=$(pwd)

read -r -a TARGETS <<<"${ANEMONE_CROSS_TARGETS:-aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf}"
PROFILE=${ANEMONE_CROSS_PROFILE:-ci}
BUILD_DEB=${ANEMONE_CROSS_DEB:-1}
QEMU_TIMEOUT=${ANEMONE_QEMU_TIMEOUT:-600}

say() { printf -- '--- %s\n' "$*"; }
t0=$SECONDS
declare -A took   # phase -> seconds
timed() {         # timed NAME CMD...: run, remember the wall time
  local name=$1 start=$SECONDS
  shift
  "$@"
  took[$name]=$((SECONDS - start))
}


# Per target: Debian arch, C toolchain prefix, qemu binary, sysroot for -L.
deb_arch() {
  case $1 in
    aarch64-*) echo arm64 ;;
    armv7-*-gnueabihf) echo armhf ;;
    *) echo "unsupported target $1" >&2; return 1 ;;
  esac
}
gnu_prefix() {
  case $1 in
    aarch64-*) echo aarch64-linux-gnu ;;
    armv7-*-gnueabihf) echo arm-linux-gnueabihf ;;
  esac
}
qemu_for() {
  case $1 in
    aarch64-*) echo qemu-aarch64 ;;
    armv7-*) echo qemu-arm ;;
  esac
}

# ---- toolchain ---------------------------------------------------------------------------
timed toolchain apt_install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf \
  libc6-dev-arm64-cross libc6-dev-armhf-cross qemu-user file
installed=$(rustup target list --installed)
for t in "${TARGETS[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- host binary (reads the databases the Pi binaries write) -----------------------------
say "host build (dev profile; usually already built by the tests)"
timed host_build cargo build --bin anemone
HOST_BIN=$root/target/debug/anemone

# ---- configs ------------------------------------------------------------------------------
configs=(etc/anemone.toml)
shopt -s nullglob
hw=(hardware/*.toml)
shopt -u nullglob
if [ ${#hw[@]} -eq 0 ]; then
  say "no hardware/*.toml example configs yet: validating etc/anemone.toml only"
else
  configs+=("${hw[@]}")
fi

# The simulated run uses the example config with MQTT switched off: CI must not publish to
# (or start a broker on) 127.0.0.1:1883, where another service may live.
sim_config=$work/sim.toml
awk '/^\[/ { skip = ($0 ~ /^\[mqtt[].]/) } !skip' etc/anemone.toml >"$sim_config"
printf '\n[mqtt]\nenabled = false\n' >>"$sim_config"
"$HOST_BIN" validate --config "$sim_config" >/dev/null

# ---- per target ---------------------------------------------------------------------------
declare -A size
for t in "${TARGETS[@]}"; do
  arch=$(deb_arch "$t")
  prefix=$(gnu_prefix "$t")
  qemu=$(qemu_for "$t")
  run_pi() { timeout "$QEMU_TIMEOUT" "$qemu" -L "/usr/$prefix" "$bin" "$@"; }

  say "[$t] cargo build --profile $PROFILE"
  timed "build_$arch" cargo build --profile "$PROFILE" --target "$t" --bin anemone
  bin=$root/target/$t/$PROFILE/anemone
  file "$bin"
  size[$t]=$(stat -c %s "$bin")

  start=$SECONDS
  say "[$t] --version under $qemu"
  run_pi --version

  for c in "${configs[@]}"; do
    say "[$t] validate --skip-files --config $c"
    run_pi validate --skip-files --config "$c"
  done

  db=$work/$arch.db
  rm -f "$db" "$db-wal" "$db-shm"
  say "[$t] a simulated hour at max speed -> $db"
  run_s=$SECONDS
  run_pi --config "$sim_config" --db "$db" \
    run --simulate --speed max --duration 1h --seed 1 --start 2026-06-01T00:00:00Z
  took[simhour_$arch]=$((SECONDS - run_s))
  test -s "$db" || { echo "FAIL: $db is empty or missing"; exit 1; }

  say "[$t] host binary reads the Pi database: stats"
  "$HOST_BIN" --config "$sim_config" --db "$db" stats | tee "$work/$arch.stats"
  test -s "$work/$arch.stats" || { echo "FAIL: stats printed nothing"; exit 1; }

  # The chain's hashes, sealed on the Pi's architecture from the values inserted, must be
  # what the host computes from the stored rows (byte order, float bits, varints).
  say "[$t] host binary verifies the Pi database's tamper-evident chain"
  "$HOST_BIN" --config "$sim_config" --db "$db" verify

  say "[$t] host binary reads the Pi database: export --format csv"
  "$HOST_BIN" --config "$sim_config" --db "$db" export --format csv --output "$work/$arch.csv"
  rows=$(($(wc -l <"$work/$arch.csv") - 1))
  head -n 3 "$work/$arch.csv"
  if [ "$rows" -lt 1 ]; then
    echo "FAIL: export has no readings"
    exit 1
  fi
  echo "export: $rows readings"
  took[qemu_$arch]=$((SECONDS - start))
done

# Same seed, same start, same code: the host's own hour should hold the same readings. Rows
# with one timestamp may come out in another order (task scheduling), so compare sorted; float
# maths may differ in the last digits between libms, so a difference is reported, not fatal.
say "host: the same simulated hour, compared with the Pi binaries' exports"
"$HOST_BIN" --config "$sim_config" --db "$work/host.db" \
  run --simulate --speed max --duration 1h --seed 1 --start 2026-06-01T00:00:00Z 2>/dev/null
"$HOST_BIN" --config "$sim_config" --db "$work/host.db" export --format csv 2>/dev/null \
  | sort >"$work/host.sorted"
for t in "${TARGETS[@]}"; do
  arch=$(deb_arch "$t")
  sort "$work/$arch.csv" >"$work/$arch.sorted"
  if cmp -s "$work/host.sorted" "$work/$arch.sorted"; then
    echo "$arch: the same $(($(wc -l <"$work/host.sorted") - 1)) readings as the host (x86_64)"
  else
    echo "$arch: readings differ from the host's; first differences:"
    diff "$work/host.sorted" "$work/$arch.sorted" | head -n 6 || true
  fi
done

# ---- .deb per target (cargo-deb) ----------------------------------------------------------
if [ "$BUILD_DEB" = 1 ]; then
  if [ ${#hw[@]} -eq 0 ]; then
    say "SKIP .deb: the package ships hardware/*.toml as examples and there are none yet"
  else
    if ! command -v cargo-deb >/dev/null 2>&1; then
      say "cargo install cargo-deb --locked (once per machine, about 2-3 min on 2 cores)"
      timed cargo_deb_install cargo install cargo-deb --locked --quiet
    fi
    say "man page and completions (anemone generate, host binary)"
    gen_assets "$HOST_BIN"
    for t in "${TARGETS[@]}"; do
      arch=$(deb_arch "$t")
      say "[$t] cargo deb (profile $PROFILE, binary already built)"
      timed "deb_$arch" cargo deb --no-build --no-strip --profile "$PROFILE" --target "$t" \
        --output "$work/deb-$arch" >/dev/null
      deb=$(ls "$work/deb-$arch"/*.deb)
      dpkg-deb -I "$deb" | sed -n '/Package:/,$p'
      dpkg-deb -c "$deb" | tee "$work/deb-$arch.list"
      test "$(dpkg-deb -f "$deb" Architecture)" = "$arch" || { echo "FAIL: $deb is not $arch"; exit 1; }
      for want in ./usr/bin/anemone ./usr/lib/systemd/system/anemone.service \
                  ./etc/anemone/anemone.toml ./usr/share/doc/anemone/examples/anemone.toml \
                  ./usr/share/man/man1/anemone.1.gz \
                  ./usr/share/bash-completion/completions/anemone \
                  ./usr/share/zsh/vendor-completions/_anemone \
                  ./usr/share/fish/vendor_completions.d/anemone.fish \
                  ./usr/share/doc/anemone/LICENSE-MIT ./usr/share/doc/anemone/LICENSE-APACHE; do
        grep -q " $want\$" "$work/deb-$arch.list" || { echo "FAIL: $deb lacks $want"; exit 1; }
      done
      for h in "${hw[@]}"; do
        grep -q " ./usr/share/doc/anemone/examples/$(basename "$h")\$" "$work/deb-$arch.list" \
          || { echo "FAIL: $deb lacks the example $h"; exit 1; }
      done
      dpkg-deb --ctrl-tarfile "$deb" | tar -t | tee "$work/ctrl-$arch.list"
      for want in postinst prerm postrm conffiles; do
        grep -qx "./$want" "$work/ctrl-$arch.list" || { echo "FAIL: $deb lacks $want"; exit 1; }
      done
      dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/anemone/anemone.toml \
        || { echo "FAIL: /etc/anemone/anemone.toml is not a conffile"; exit 1; }
      echo "$(basename "$deb"): $(stat -c %s "$deb") bytes, contents OK"
    done
  fi
fi

# ---- report -------------------------------------------------------------------------------
say "summary (profile $PROFILE; release-profile sizes: bash .ci/sizes.sh)"
for t in "${TARGETS[@]}"; do
  printf '  %-32s %8d bytes (%s KiB), stripped\n' "$t" "${size[$t]}" "$((size[$t] / 1024))"
done
for k in $(printf '%s\n' "${!took[@]}" | sort); do
  printf '  %-24s %5ds\n' "$k" "${took[$k]}"
done
printf '  %-24s %5ds\n' total $((SECONDS - t0))
