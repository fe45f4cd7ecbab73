#!/usr/bin/env python3
"""Run one command and measure it: CPU seconds, bytes written to disk, peak RSS, wall time.

    measure.py --out RESULT.json [--log LOG] -- COMMAND ARGS...

Method (the same for Anemone and the reference logger):
* The child is started directly (no shell in between), so its PID is the program's PID.
* Every 50 ms /proc/PID/io and /proc/PID/status are read; the last values are kept
  (write_bytes, cancelled_write_bytes, VmHWM). VmHWM is the peak RSS figure: it is a
  high-water mark, so the last poll misses only growth in the final <50 ms.
* When the child exits it is NOT reaped at once: waitid(WEXITED | WNOWAIT) leaves it a
  zombie whose /proc/PID/io still holds the final, whole-process counters, which are read
  then (so the last <50 ms of writes are not lost to the polling interval).
* Then wait4() reaps it and its rusage gives utime + stime (all threads). Its ru_maxrss is
  NOT used as the peak RSS: at exec the kernel folds the high-water mark of the pre-exec
  address space into it, and posix_spawn's child shares this Python launcher's (~10-15 MB)
  until exec, so ru_maxrss is only an upper bound for a small child.
write_bytes is what the kernel accounts to the process when it dirties page-cache pages
of a file on a block device (counted once per dirtied page until written back, so it is a
page-granular figure close to what reaches the disk); cancelled_write_bytes is dirty
data that was truncated or deleted before write-back. Both are reported.
"""

import argparse
import json
import os
import sys
import time


def read_io(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                k, v = line.split(":")
                out[k.strip()] = int(v)
    except (OSError, ValueError):
        pass
    return out


def read_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--log", default=os.devnull, help="child's stdout+stderr go here")
    ap.add_argument("--stdout", help="child's stdout alone goes here (stderr to --log)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")

    log = open(a.log, "ab")
    out = open(a.stdout, "wb") if a.stdout else log
    t0 = time.monotonic()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ,
                          file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                        (os.POSIX_SPAWN_DUP2, log.fileno(), 2)])
    last_io, hwm, polls = {}, None, 0
    while True:
        r = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if r is not None:
            break
        io = read_io(pid)
        if io:
            last_io = io
        h = read_hwm_kb(pid)
        if h is not None:
            hwm = h
        polls += 1
        time.sleep(0.05)
    wall = time.monotonic() - t0
    final_io = read_io(pid)  # zombie: final whole-process counters
    _, status, ru = os.wait4(pid, 0)
    io = final_io or last_io
    res = {
        "cmd": cmd,
        "pid": pid,
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 3),
        "utime_s": ru.ru_utime,
        "stime_s": ru.ru_stime,
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 4),
        "peak_rss_kb": hwm,  # VmHWM, last poll
        "ru_maxrss_kb_upper_bound": ru.ru_maxrss,
        "write_bytes": io.get("write_bytes"),
        "cancelled_write_bytes": io.get("cancelled_write_bytes"),
        "wchar": io.get("wchar"),
        "io_from": "zombie" if final_io else "last poll",
        "write_bytes_last_poll": last_io.get("write_bytes"),
        "polls": polls,
    }
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    return 0 if res["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
