#!/usr/bin/env python3
"""Which code of a running Anemone is resident, by crate: what peak RSS is made of.

    bench/resident_code.py BINARY_WITH_SYMBOLS -- COMMAND...

Runs COMMAND (whose executable must be BINARY_WITH_SYMBOLS, e.g. the profiling build of
`bench/chain_cost.sh`: release code with symbols), reads `/proc/PID/pagemap` of its
executable mappings every 0.2 s until it exits, and for the sample with the most resident
pages attributes each resident 4 KiB page to the symbols (`nm -S`) that lie on it, summed
by crate (the first path segment of the demangled name; SQLite's C functions together,
other C functions by their own name). Each page fault maps the 64 KB around it when those pages are in the
page cache, so a function's neighbours count too: this shows where resident code lies,
not only what ran. The binary is non-PIE (`build.rs`), so symbol addresses are the
mapped addresses. Needs read access to the process's pagemap (the same user suffices for
the present bits).
"""
import bisect
import collections
import re
import struct
import subprocess
import sys
import time


def symbols(binary):
    out = subprocess.run(["nm", "-S", "--defined-only", "-C", binary],
                         capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            syms.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    syms.sort()
    return syms


def crate(name):
    # `<F as axum::handler::Handler>::call`: the trait's crate for a generic parameter.
    generic = re.match(r"^<(?:&(?:mut )?)?[A-Z]\w* as (\w+)", name)
    if generic:
        return generic.group(1)
    if "::" not in name and re.match(r"^_*sqlite3", name, re.I):
        return "SQLite (C)"
    name = name.lstrip("<")
    return name.split("::")[0] if "::" in name else name.split("(")[0][:40]


def resident_pages(pid, binary):
    pages = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pm:
        for m in maps:
            f = m.split()
            if len(f) < 6 or f[5] != binary or "x" not in f[1]:
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            pm.seek(lo // 4096 * 8)
            raw = pm.read((hi - lo) // 4096 * 8)
            for i, (e,) in enumerate(struct.iter_unpack("<Q", raw)):
                if e >> 63:
                    pages.append(lo + i * 4096)
    return pages


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    binary = subprocess.run(["realpath", sys.argv[1]], capture_output=True, text=True).stdout.strip()
    syms = symbols(binary)
    starts = [s[0] for s in syms]
    p = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    best = []
    while p.poll() is None:
        try:
            pages = resident_pages(p.pid, binary)
        except (FileNotFoundError, ProcessLookupError):
            break
        if len(pages) > len(best):
            best = pages
        time.sleep(0.2)
    p.wait()
    by_crate = collections.Counter()
    for a in best:
        i = bisect.bisect_right(starts, a + 4096) - 1
        covered = 0
        while i >= 0 and a - syms[i][0] < 4 << 20:
            s0, size, name = syms[i]
            overlap = min(a + 4096, s0 + size) - max(a, s0)
            if overlap > 0:
                by_crate[crate(name)] += overlap
                covered += overlap
            i -= 1
        by_crate["(between symbols)"] += max(0, 4096 - covered)
    print(f"resident code at the fullest sample: {len(best) * 4} kB (exit status {p.returncode})")
    for name, n in by_crate.most_common(30):
        print(f"{n / 1024:8.0f} kB  {name}")


if __name__ == "__main__":
    main()
