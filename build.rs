//! Build script: link options for the `anemone` binary.
//!
//! On Linux glibc targets the binary is linked as a position-dependent executable (`-no-pie`). A
//! PIE's relocated read-only data (`.data.rel.ro`: vtables, string tables, the time-zone
//! and embedded-broker tables) is written by the dynamic loader at every start, which makes
//! all of it private anonymous memory (1.1 MB of the daemon's resident set, measured with
//! `/proc/PID/smaps`); at a fixed address it needs no relocation and stays clean, shared,
//! and paged in only where it is read. The price: the binary's own code and data are not
//! at a random address (libraries, heap and stacks still are).
//!
//! Measured on x86_64 (bench/README.md); the mechanism is the same on the Pi's glibc
//! targets (aarch64, armv7), which CI links this way and runs under qemu. The static musl
//! release binary (.ci/release.sh) keeps its toolchain's default.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo::rustc-link-arg-bins=-no-pie");
    }
}
