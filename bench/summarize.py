#!/usr/bin/env python3
"""Turn the JSON left by bench/run.sh in WORK into a Markdown table with the issue 7 ratios."""

import json
import os
import statistics
import sys


def load(work, name):
    with open(os.path.join(work, name + ".json")) as f:
        return json.load(f)


def read_int(work, name):
    p = os.path.join(work, name)
    return int(open(p).read().strip()) if os.path.exists(p) else None


def main():
    work, ticks = sys.argv[1], int(sys.argv[2])
    ref_ticks = int(sys.argv[3]) if len(sys.argv) > 3 else ticks
    out = []
    rows = []
    figs = {}
    for mode in ("nomqtt", "mqtt"):
        a = load(work, f"anemone-{mode}")
        r = load(work, f"ref-{mode}")
        a_n = read_int(work, f"anemone-{mode}.readings")
        r_info = json.loads(open(os.path.join(work, f"ref-{mode}.out")).read().strip().splitlines()[-1])
        r_n = r_info["readings"]
        for who, m, n, t in (("anemone", a, a_n, ticks), ("reference", r, r_n, ref_ticks)):
            figs[(who, mode)] = {
                "ticks": t,
                "cpu_s": m["cpu_s"],
                "cpu_tick_us": m["cpu_s"] / t * 1e6,
                "cpu_reading_us": m["cpu_s"] / n * 1e6,
                "wb": m["write_bytes"],
                "wb_tick": m["write_bytes"] / t,
                "wb_reading": m["write_bytes"] / n,
                "cancelled": m["cancelled_write_bytes"],
                # VmHWM, last poll (see measure.py: ru_maxrss includes the launcher's RSS).
                "rss_kb": m.get("peak_rss_kb", m.get("vmhwm_kb_polled")),
                "wall_s": m["wall_s"],
                "readings": n,
                "exit": m["exit"],
            }
            f = figs[(who, mode)]
            rows.append(
                f"| {who} | {'Mosquitto' if mode == 'mqtt' else 'none'} | {t} | {n} | {f['wall_s']:.1f} | "
                f"{f['cpu_s']:.2f} | {f['cpu_tick_us']:.1f} | {f['cpu_reading_us']:.2f} | "
                f"{f['wb']} | {f['wb_tick']:.0f} | {f['wb_reading']:.1f} | "
                f"{f['rss_kb'] / 1024:.1f} | {f['exit']} |")
    out.append(f"Simulated span: anemone {ticks} ticks, reference {ref_ticks} ticks (1 tick = 1 simulated s).\n")
    out.append("| program | broker | ticks | readings | wall s | CPU s | CPU µs/tick | CPU µs/reading "
               "| write_bytes | bytes/tick | bytes/reading | peak RSS MB | exit |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    out.extend(rows)
    out.append("")
    out.append("| ratio (reference / anemone) | no broker | Mosquitto | target |")
    out.append("|---|---:|---:|---|")

    def ratio(key):
        return [figs[("reference", m)][key] / figs[("anemone", m)][key]
                if figs[("anemone", m)][key] else float("inf") for m in ("nomqtt", "mqtt")]

    for key, label, target in (
        ("cpu_tick_us", "CPU per tick", "≥ 20× (anemone ≤ 1/20)"),
        ("wb_reading", "bytes written per reading", "≥ 100× (anemone ≤ 1/100)"),
        ("wb_tick", "bytes written per tick", "(context)"),
        ("cpu_reading_us", "CPU per reading", "(context)"),
    ):
        x, y = ratio(key)
        out.append(f"| {label} | {x:.1f}× | {y:.1f}× | {target} |")
    rss = figs[("anemone", "mqtt")]["rss_kb"] / 1024
    out.append(f"\nAnemone peak RSS with the full sensor set and MQTT: {rss:.1f} MB "
               f"(target ≤ 10 MB: {'met' if rss <= 10 else 'MISSED by %.1f MB' % (rss - 10)}).")
    for mode in ("mqtt",):
        c, mx = read_int(work, f"anemone-{mode}.cursor"), read_int(work, f"anemone-{mode}.maxid")
        out.append(f"Anemone with Mosquitto: publish cursor {c} of max reading id {mx} at exit.")
    sf = os.path.join(work, "anemone-sync-full.json")
    if os.path.exists(sf):
        m, n = load(work, "anemone-sync-full"), read_int(work, "anemone-sync-full.readings")
        ref = figs[("reference", "nomqtt")]["wb_reading"]
        out.append(f"Anemone, no broker, `synchronous = \"full\"` (upper bound of disk writes): "
                   f"{m['write_bytes']} bytes for {n} readings = {m['write_bytes'] / n:.1f} bytes/reading "
                   f"(reference / anemone = {ref / (m['write_bytes'] / n):.1f}×), CPU {m['cpu_s']:.2f} s, "
                   f"wall {m['wall_s']:.1f} s, peak RSS {m.get('peak_rss_kb', m.get('vmhwm_kb_polled')) / 1024:.1f} MB.")
    fp = json.load(open(os.path.join(work, "footprint.json")))
    out.append(f"Binary ({fp['target']}, release profile): {fp['release_bytes']} bytes; "
               f"after `strip`: {fp['stripped_bytes']} bytes ({fp['stripped_bytes'] / 2**20:.2f} MiB).")
    firsts = [json.loads(l)["first_reading_s"] for l in open(os.path.join(work, "first.jsonl")) if l.strip()]
    ok = [x for x in firsts if x is not None]
    if ok:
        out.append(f"Start to first stored reading (real time, fresh db, {len(firsts)} runs): "
                   f"median {statistics.median(ok):.3f} s, min {min(ok):.3f} s, max {max(ok):.3f} s "
                   f"(target ≤ 1 s; poll resolution 50 ms); runs: {firsts}.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
