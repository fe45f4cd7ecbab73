#!/usr/bin/env python3
"""Time how long Anemone takes to drain its MQTT backlog.

    drain_watch.py DB TARGET_ID TIMEOUT_S -- anemone ... run ...

Starts the command, polls `meta.publish_cursor` in DB (Python sqlite3, read-only) every
100 ms, and stops the command with SIGTERM (by PID) once the cursor reaches TARGET_ID (the
last reading id stored before the broker came back) or TIMEOUT_S passes. Prints JSON:
seconds from spawn to the first cursor advance and to the cursor reaching TARGET_ID, and
the timeline of cursor values (sampled about once a second). The cursor is persisted by
the writer in its commits (every `commit_interval` of station time), so the figure has
that resolution plus 100 ms.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time


def cursor(db):
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=0.5)
        try:
            r = c.execute("SELECT value FROM meta WHERE key = 'publish_cursor'").fetchone()
            return int(r[0]) if r else 0
        finally:
            c.close()
    except sqlite3.Error:
        return None


def main():
    db, target, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    cmd = sys.argv[5:] if sys.argv[4] == "--" else sys.argv[4:]
    start_cursor = cursor(db) or 0
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(db + ".drain.log", "wb"))
    first_advance = done = None
    timeline, last_mark = [], -1.0
    c = start_cursor
    while p.poll() is None:
        now = time.monotonic() - t0
        v = cursor(db)
        if v is not None:
            c = v
            if first_advance is None and c > start_cursor:
                first_advance = now
            if now - last_mark >= 1.0:
                timeline.append((round(now, 1), c))
                last_mark = now
            if c >= target:
                done = now
                break
        if now > timeout:
            break
        time.sleep(0.1)
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=90)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    drained = target - start_cursor
    print(json.dumps({
        "start_cursor": start_cursor,
        "target_id": target,
        "final_cursor_seen": c,
        "first_advance_s": None if first_advance is None else round(first_advance, 3),
        "drained_s": None if done is None else round(done, 3),
        "readings_drained": drained if done is not None else c - start_cursor,
        "msgs_per_s": round(drained / done, 1) if done else None,
        "msgs_per_s_after_first_advance": round(drained / (done - first_advance), 1)
        if done and first_advance is not None and done > first_advance else None,
        "timeline": timeline,
    }))


if __name__ == "__main__":
    main()
