# Shared by the CI scripts: `source "$(dirname "$0")/…/lib.sh"`.

# Runs a command as root (CI runs as root; a developer's machine may need sudo).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs the Debian packages that are not installed yet (apt-get update only if needed).
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    printf -- '--- apt-get install %s\n' "${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The man page and shell completions the .deb ships ([package.metadata.deb] assets in
# Cargo.toml), written by the binary itself into target/assets/. The command line is the
# same on every target, so any build that runs here will do:
#   gen_assets target/debug/anemone          gen_assets qemu-aarch64 target/…/anemone
gen_assets() {
  local out=target/assets
  mkdir -p "$out"
  "$@" generate man | gzip -9n >"$out/anemone.1.gz"
  "$@" generate completions bash >"$out/anemone.bash"
  "$@" generate completions zsh >"$out/_anemone"
  "$@" generate completions fish >"$out/anemone.fish"
  for f in anemone.1.gz anemone.bash _anemone anemone.fish; do
    [ -s "$out/$f" ] || { echo "FAIL: $out/$f is empty"; return 1; }
  done
}

# Zig and cargo-zigbuild from PyPI in a venv under DIR (nothing installed system-wide), put
# on PATH: `zig_tools target/release-tools`. Used by .ci/release.sh and .ci/steps/50-armv6.sh.
zig_tools() {
  local dir=$1
  if [ ! -x "$dir/venv/bin/cargo-zigbuild" ] || [ ! -x "$dir/venv/bin/python-zig" ]; then
    rm -rf "$dir/venv"
    python3 -m venv "$dir/venv"
    "$dir/venv/bin/pip" install --quiet --upgrade pip
    "$dir/venv/bin/pip" install --quiet cargo-zigbuild ziglang
  fi
  export PATH=$dir/venv/bin:$PATH
  echo "cargo-zigbuild $(cargo-zigbuild --version | awk '{print $2}'), zig $(python-zig version)"
}
