#!/usr/bin/env python3
"""Run a real-time station and measure its CPU and wake-ups over a window (issue 21).

    lean_window.py --out RESULT.json [--log LOG] [--warmup 15] [--window 60] -- COMMAND ARGS...

Method:
* The child is started directly (posix_spawn, no shell), so its PID is the program's PID.
* After --warmup seconds the whole-process `utime + stime` (fields 14 and 15 of
  /proc/PID/stat: every thread, dead ones included) and, per thread, the voluntary and
  involuntary context switches (/proc/PID/task/TID/status) and run time in ns
  (/proc/PID/task/TID/schedstat) are read; then again every second until --window seconds
  later. A thread's figure in the window is its last value read minus its value at the
  start of the window (0 for a thread born in the window), so a thread that exits in the
  window still counts up to the last second it was seen.
* Then the child gets SIGTERM and is waited for (its exit status is reported).
The figures: CPU % of one core = Δ(utime + stime) / window; wake-ups per second =
Σ Δ(voluntary + nonvoluntary switches) / window; a table per thread name beside them.
"""

import argparse
import json
import os
import signal
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return int(fields[11]) + int(fields[12])


def threads(pid):
    """{tid: (comm, switches, run_ns)} for every live thread."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/comm") as f:
                comm = f.read().strip()
            sw = 0
            with open(f"{base}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        sw += int(line.split()[1])
            with open(f"{base}/schedstat") as f:
                run_ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        out[int(tid)] = (comm, sw, run_ns)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--log", default=os.devnull)
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")
    log = open(a.log, "ab")
    pid = os.posix_spawnp(cmd[0], cmd, os.environ,
                          file_actions=[(os.POSIX_SPAWN_DUP2, log.fileno(), 1),
                                        (os.POSIX_SPAWN_DUP2, log.fileno(), 2)])

    def alive():
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

    time.sleep(a.warmup)
    if not alive():
        print("lean_window: the station exited during the warm-up (see its log)", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    cpu0 = proc_cpu_ticks(pid)
    start = threads(pid)
    last = dict(start)
    cpu1 = cpu0
    t1 = t0
    while True:
        next_at = t1 + 1.0
        time.sleep(max(0.0, min(next_at, t0 + a.window) - time.monotonic()))
        if not alive():
            print("lean_window: the station exited during the window", file=sys.stderr)
            return 1
        last.update(threads(pid))
        cpu1 = proc_cpu_ticks(pid)
        t1 = time.monotonic()
        if t1 - t0 >= a.window:
            break
    window = t1 - t0
    per_name = {}
    total_sw = 0
    for tid, (comm, sw, run_ns) in last.items():
        _, sw0, ns0 = start.get(tid, (comm, 0, 0))
        d_sw, d_ns = sw - sw0, run_ns - ns0
        total_sw += d_sw
        e = per_name.setdefault(comm, {"threads": 0, "switches": 0, "run_ms": 0.0})
        e["threads"] += 1
        e["switches"] += d_sw
        e["run_ms"] += d_ns / 1e6
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    res = {
        "cmd": cmd,
        "pid": pid,
        "exit": os.waitstatus_to_exitcode(status),
        "warmup_s": a.warmup,
        "window_s": round(window, 3),
        "cpu_s": (cpu1 - cpu0) / TICK,
        "cpu_pct": round(100.0 * (cpu1 - cpu0) / TICK / window, 4),
        "switches": total_sw,
        "wakeups_per_s": round(total_sw / window, 3),
        "threads_seen": len(last),
        "threads_at_start": len(start),
        "per_thread_name": {k: {"threads": v["threads"], "switches": v["switches"],
                                "per_s": round(v["switches"] / window, 3),
                                "run_ms": round(v["run_ms"], 2)}
                            for k, v in sorted(per_name.items(), key=lambda kv: -kv[1]["switches"])},
    }
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
