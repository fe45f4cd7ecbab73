#!/usr/bin/env bash
# Build the files a release ships (not run by CI: LTO builds of two targets take a while).
#
#   bash .ci/release.sh            -> dist/
#
#   anemone-<v>-aarch64-linux-musl          static, any 64-bit Pi OS (Pi 3/4/5/Zero 2 W)
#   anemone-<v>-armv7-linux-gnueabihf       needs glibc >= 2.28: any 32-bit Pi OS since Buster
#   anemone-<v>-armv6-linux-musleabihf      static, ARMv6 hard float: Pi Zero / Zero W / Pi 1
#   anemone_<v>-1_arm64.deb, anemone_<v>-1_armhf.deb   the same binaries, packaged
#   SHA256SUMS
#   (each .deb also holds the man page anemone(1) and bash/zsh/fish completions)
#
# Why not the Debian cross linkers of .cargo/config.toml: they link against the build
# machine's glibc (2.36 on Debian 12), which older Pi OS images lack. cargo-zigbuild links
# with Zig instead, against musl (static) or against glibc 2.28 symbol versions. Both come
# from PyPI into a venv under target/, so nothing is installed system-wide but apt packages.
#
# Every binary is checked: architecture, static / highest GLIBC_ symbol version, and a run
# under qemu-user (--version, validate, a simulated hour). Idempotent; runs as root or with
# sudo on Debian/Ubuntu x86_64.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
root=$(pwd)
say() { printf '\n==> %s\n' "$*"; }
t0=$SECONDS

MUSL=aarch64-unknown-linux-musl
ARMV7=armv7-unknown-linux-gnueabihf
ARMV6=arm-unknown-linux-musleabihf
GLIBC=2.28
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "cannot read the package version"; exit 1; }
dist=$root/dist
tools=$root/target/release-tools


say "tools"
# qemu to run the results; the armhf sysroot (libc6-armhf-cross) for qemu-arm -L, and
# binutils-arm-linux-gnueabihf for objdump (both come with gcc-arm-linux-gnueabihf).
apt_install qemu-user file binutils python3-venv gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
zig_tools "$tools"
installed=$(rustup target list --installed)
for t in $MUSL $ARMV7; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
# ARMv6: rustup's standard library where it has one, else std built from rust-src
# (-Zbuild-std, with RUSTC_BOOTSTRAP=1 for that one build only).
armv6_std=()
if ! grep -qx "$ARMV6" <<<"$installed" && ! rustup target add "$ARMV6" 2>/dev/null; then
  echo "no prebuilt standard library for $ARMV6: building it from rust-src"
  rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
  armv6_std=(-Zbuild-std=std,panic_abort)
fi
if ! command -v cargo-deb >/dev/null 2>&1; then
  say "cargo install cargo-deb --locked"
  cargo install cargo-deb --locked --quiet
fi

# Never pass --config on the command line here: values given that way outrank the
# environment, and cargo-zigbuild's linker and CC (environment) must win over the Debian
# cross linkers named in .cargo/config.toml.
say "cargo zigbuild --release --target $MUSL"
s=$SECONDS
cargo zigbuild --release --target "$MUSL" --bin anemone
echo "built in $((SECONDS - s)) s"
say "cargo zigbuild --release --target $ARMV7.$GLIBC"
s=$SECONDS
cargo zigbuild --release --target "$ARMV7.$GLIBC" --bin anemone
echo "built in $((SECONDS - s)) s"

say "cargo zigbuild --release --target $ARMV6 ${armv6_std[*]}"
s=$SECONDS
if [ ${#armv6_std[@]} -gt 0 ]; then
  # Without rust-std's self-contained crt objects, zig supplies them (see 50-armv6.sh).
  CARGO_TARGET_ARM_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no" \
    RUSTC_BOOTSTRAP=1 cargo zigbuild --release --target "$ARMV6" "${armv6_std[@]}" \
    --bin anemone
else
  cargo zigbuild --release --target "$ARMV6" --bin anemone
fi
echo "built in $((SECONDS - s)) s"

musl_bin=target/$MUSL/release/anemone
armv7_bin=target/$ARMV7/release/anemone
armv6_bin=target/$ARMV6/release/anemone

say "checks"
file "$musl_bin" "$armv7_bin" "$armv6_bin"
file "$armv6_bin" | grep -q 'ARM, EABI5.*statically linked' \
  || { echo "FAIL: $armv6_bin is not a static 32-bit ARM executable"; exit 1; }
readelf -A "$armv6_bin" | grep -Eq 'Tag_CPU_arch: v6(KZ|K|Z)?$' \
  || { echo "FAIL: $armv6_bin is not built for ARMv6"; exit 1; }
file "$musl_bin" | grep -q 'ARM aarch64.*statically linked' \
  || { echo "FAIL: $musl_bin is not a static aarch64 executable"; exit 1; }
file "$armv7_bin" | grep -q 'ARM, EABI5' || { echo "FAIL: $armv7_bin is not 32-bit ARM"; exit 1; }
newest=$(arm-linux-gnueabihf-objdump -T "$armv7_bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
echo "$armv7_bin: highest glibc symbol version $newest"
if [ "$(printf '%s\n' "GLIBC_$GLIBC" "$newest" | sort -V | tail -n 1)" != "GLIBC_$GLIBC" ]; then
  echo "FAIL: needs $newest, more than glibc $GLIBC"
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
awk '/^\[/ { skip = ($0 ~ /^\[mqtt[].]/) } !skip' etc/anemone.toml >"$work/sim.toml"
printf '\n[mqtt]\nenabled = false\n' >>"$work/sim.toml"
check_run() {  # check_run NAME QEMU...: the binary under qemu-user
  local name=$1
  shift
  "$@" --version
  for c in etc/anemone.toml hardware/*.toml; do
    [ -e "$c" ] && "$@" validate --skip-files --config "$c"
  done
  "$@" --config "$work/sim.toml" --db "$work/$name.db" \
    run --simulate --speed max --duration 1h --seed 1 --start 2026-06-01T00:00:00Z
  "$@" --config "$work/sim.toml" --db "$work/$name.db" export --format csv >"$work/$name.csv"
  [ "$(wc -l <"$work/$name.csv")" -gt 1 ] || { echo "FAIL: $name exported nothing"; exit 1; }
}
check_run musl qemu-aarch64 "$musl_bin"
check_run armv7 qemu-arm -L /usr/arm-linux-gnueabihf "$armv7_bin"
check_run armv6 qemu-arm -cpu arm1176 "$armv6_bin"

say "packages"
# The man page and completions, written by the binary (the same on every target).
gen_assets qemu-aarch64 "$musl_bin"
mkdir -p "$dist"
rm -f "$dist"/anemone*
# Dependencies: cargo-deb would derive libc6 (>= the build machine's glibc) from the cross
# sysroot; the variants in Cargo.toml state the real ones (none for the static binary).
cargo deb --no-build --no-strip --target "$MUSL" --variant release-arm64 --output "$dist" >/dev/null
cargo deb --no-build --no-strip --target "$ARMV7" --variant release-armhf --output "$dist" >/dev/null
install -m 0755 "$musl_bin" "$dist/anemone-$version-aarch64-linux-musl"
install -m 0755 "$armv7_bin" "$dist/anemone-$version-armv7-linux-gnueabihf"
install -m 0755 "$armv6_bin" "$dist/anemone-$version-armv6-linux-musleabihf"
for deb in "$dist"/*.deb; do
  echo "$(basename "$deb"): $(dpkg-deb -f "$deb" Architecture), Depends: $(dpkg-deb -f "$deb" Depends)"
  dpkg-deb -c "$deb" | awk '{print "    " $6}' | grep -v '/$'
done
(cd "$dist" && sha256sum anemone* >SHA256SUMS)

say "sizes (stripped, release profile)"
for f in "$dist"/anemone-*; do
  printf '  %-40s %9d bytes  %6.2f MiB\n' "$(basename "$f")" "$(stat -c %s "$f")" \
    "$(awk -v b="$(stat -c %s "$f")" 'BEGIN { print b / 1048576 }')"
done
echo "done in $((SECONDS - t0)) s: $dist"
