#!/usr/bin/env bash
# Opt-in (not part of .ci/run): build the release profile (LTO, one codegen unit, stripped,
# opt-level "s") for both Pi targets with the Debian cross linkers and print the sizes that
# go into the README. About 4-6 minutes per target on 2 idle cores.
#
#   bash .ci/sizes.sh                       # both targets
#   bash .ci/sizes.sh aarch64-unknown-linux-gnu
#
# The shipped binaries (musl / glibc 2.28, via cargo-zigbuild) are measured by .ci/release.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

source .ci/lib.sh
apt_install gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross file
installed=$(rustup target list --installed)

declare -A size took
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
  s=$SECONDS
  cargo build --release --target "$t" --bin anemone
  took[$t]=$((SECONDS - s))
  bin=target/$t/release/anemone
  file "$bin"
  file "$bin" | grep -q ', stripped' || { echo "FAIL: $bin is not stripped"; exit 1; }
  size[$t]=$(stat -c %s "$bin")
done

echo
echo "| target | stripped size (release profile) |"
echo "|---|---|"
for t in "${targets[@]}"; do
  # shellcheck disable=SC2016 # literal backticks: Markdown code
  printf '| `%s` | %s bytes (%s MiB) |\n' "$t" "${size[$t]}" \
    "$(awk -v b="${size[$t]}" 'BEGIN { printf "%.2f", b / 1048576 }')"
done
for t in "${targets[@]}"; do echo "build time $t: ${took[$t]} s"; done
