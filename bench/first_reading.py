#!/usr/bin/env python3
"""Time from start to the first stored reading, for a real-time simulated run.

    first_reading.py DB TIMEOUT_S -- anemone --config CFG run --simulate

Starts the command (the database must not exist yet), polls the database's row count
with Python's sqlite3 (read-only) every 50 ms, and prints the seconds from spawn to the
first poll that sees a row in `readings`. Then stops the command with SIGTERM (by PID).
The 50 ms polling interval is the resolution of the figure.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time


def rows(db):
    if not os.path.exists(db):
        return 0
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=0.05)
        try:
            return c.execute("SELECT count(*) FROM readings").fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return 0  # not created yet / schema not there yet / locked


def main():
    db, timeout = sys.argv[1], float(sys.argv[2])
    cmd = sys.argv[4:] if sys.argv[3] == "--" else sys.argv[3:]
    if os.path.exists(db):
        sys.exit(f"{db} exists: the measurement needs a fresh database")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = None
    while time.monotonic() - t0 < timeout and p.poll() is None:
        n = rows(db)
        if n > 0:
            seen = time.monotonic() - t0
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGTERM)
    p.wait(timeout=30)
    print(json.dumps({"first_reading_s": None if seen is None else round(seen, 3)}))


if __name__ == "__main__":
    main()
