#!/usr/bin/env python3
"""The Markdown table of bench/collector.sh: WORK/collector.json and WORK/reference.json
(either may be missing) side by side, and the collector/reference ratios.

    collector_summary.py WORK
"""

import json
import os
import sys


def load(work, name):
    path = os.path.join(work, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, int):
        return f"{v:,}".replace(",", " ")
    return f"{v:,.{digits}f}".replace(",", " ")


def main():
    work = sys.argv[1]
    runs = [r for r in (load(work, "collector"), load(work, "reference")) if r]
    print("| program | stations | offered/s | published/s | sent | rows | missing | duplicates "
          "| sustained readings/s | latency p50 ms | p99 ms | max ms | collector CPU µs/reading "
          "| PostgreSQL CPU µs/reading | Mosquitto CPU µs/reading | generator CPU µs/reading "
          "| DB bytes/reading |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        g = r["loadgen"]
        cpu = r["cpu_us_per_reading"]
        offered = "max" if not g["offered_rate"] else fmt(g["offered_rate"], 0)
        print(f"| {r['name']} | {g['stations']} | {offered} | {fmt(g['publish_rate'], 0)} "
              f"| {fmt(r['sent'])} | {fmt(r['rows'])} | {fmt(r['missing'])} | {fmt(r['duplicates'])} "
              f"| **{fmt(r['readings_per_s'], 0)}** | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} "
              f"| {fmt(r['max_ms'])} | {fmt(cpu['collector'], 2)} | {fmt(cpu['postgres'], 2)} "
              f"| {fmt(cpu['mosquitto'], 2)} | {fmt(cpu.get('loadgen'), 2)} "
              f"| {fmt(r['bytes_per_reading'], 1)} |")
    by = {r["name"]: r for r in runs}
    if "collector" in by and "reference" in by:
        c, ref = by["collector"], by["reference"]
        print()
        print("| collector against the reference | ratio |")
        print("|---|---:|")
        if ref["readings_per_s"]:
            print(f"| sustained readings/s | **{c['readings_per_s'] / ref['readings_per_s']:.1f}×** |")
        for k, label in (("collector", "collector CPU per reading"),
                         ("postgres", "PostgreSQL CPU per reading")):
            a, b = c["cpu_us_per_reading"][k], ref["cpu_us_per_reading"][k]
            if a and b:
                print(f"| {label} | 1/{b / a:.1f} |")
        if c["bytes_per_reading"] and ref["bytes_per_reading"]:
            print(f"| DB bytes per reading (collector includes its rollups) | "
                  f"{c['bytes_per_reading'] / ref['bytes_per_reading']:.2f}× |")
    bad = [r["name"] for r in runs if r["missing"] or r["duplicates"]]
    if bad:
        print(f"\nWARNING: readings missing or duplicated in: {', '.join(bad)}")


if __name__ == "__main__":
    main()
