#!/usr/bin/env python3
"""One run of the collector benchmark: a collector program, the load generator, the figures.

    collector_run.py --name NAME --out RESULT.json --psql "psql -h … -p … -U postgres -d DB"
        --pgdata DIR --mosquitto-pid PID --loadgen "anemone-loadgen ARGS…"
        [--ready-sql SQL] [--table readings] [--station-col station] [--id-col reading_id]
        [--ts-expr ts] [--rollups "t1 t2"] -- COLLECTOR COMMAND…

What it does, in order (bench/README.md, "The collector benchmark", says why):
1. starts the collector command (stdout+stderr to --log) and waits until --ready-sql
   answers a non-empty value (its schema is there) and --ready-log's text is in its log
   (it has subscribed), then 2 s more;
2. reads the CPU counters: the collector process, PostgreSQL (the postmaster with every
   reaped child, plus every live child), Mosquitto;
3. runs the load generator to its end (its JSON summary gives the readings it sent and the
   broker acknowledged);
4. polls every 0.5 s until the collector's table holds every reading sent (or --timeout);
5. reads the CPU counters again, then queries PostgreSQL for the figures and stops the
   collector with SIGTERM.

Figures (all from PostgreSQL, so the same for every program):
* rows: readings of the generator's stations in the table; distinct (station, id) beside it.
* sustained readings/s: rows / (last commit time of any row − first publish time), where a
  row's commit time is pg_xact_commit_timestamp(xmin) (track_commit_timestamp = on) and
  the publish time is the reading's ts, which the generator sets to its wall clock when it
  serialises the message, just before the write.
* latency p50/p99: commit time − ts per row (same clock: one machine).
* CPU µs/reading: (utime + stime) of the collector process over the run / rows; the same for
  PostgreSQL's processes, Mosquitto and the load generator (RUSAGE_CHILDREN around its
  run), reported beside it.
* bytes/reading: sum of pg_total_relation_size over the partitions of the readings table
  and of the rollup tables (--rollups), / rows.
"""

import argparse
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """(ppid, utime+stime, cutime+cstime) in seconds, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    # rest[0] is field 3 (state): utime is field 14, so rest[11].
    ppid = int(rest[1])
    own = (int(rest[11]) + int(rest[12])) / TICK
    children = (int(rest[13]) + int(rest[14])) / TICK
    return ppid, own, children


def process_cpu(pid):
    s = stat_fields(pid)
    return s[1] if s else 0.0


def postgres_cpu(pgdata):
    """CPU seconds of the postmaster, its reaped children and its live children."""
    with open(os.path.join(pgdata, "postmaster.pid")) as f:
        master = int(f.readline())
    s = stat_fields(master)
    total = (s[1] + s[2]) if s else 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        c = stat_fields(int(entry))
        if c and c[0] == master:
            total += c[1]
    return total


def snapshot(args, pid):
    return {
        "t": time.monotonic(),
        "collector": process_cpu(pid),
        "postgres": postgres_cpu(args.pgdata),
        "mosquitto": process_cpu(args.mosquitto_pid),
    }


def sql(args, query):
    out = subprocess.run(shlex.split(args.psql) + ["-AtX", "-c", query],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed on {query!r}: {out.stderr.strip()}")
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--psql", required=True)
    ap.add_argument("--pgdata", required=True)
    ap.add_argument("--mosquitto-pid", type=int, required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--ready-sql", default="SELECT to_regclass('readings')")
    ap.add_argument("--ready-log", default="", help="also wait for this text in the log")
    ap.add_argument("--table", default="readings")
    ap.add_argument("--station-col", default="station")
    ap.add_argument("--id-col", default="reading_id")
    ap.add_argument("--ts-expr", default="ts")
    ap.add_argument("--rollups", default="")
    ap.add_argument("--prefix", default="bench-")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no collector command")

    log = open(a.log, "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                sys.exit(f"{a.name}: the collector exited with {proc.returncode} before it was ready (see {a.log})")
            try:
                logged = not a.ready_log or a.ready_log in open(a.log, errors="replace").read()
                if logged and sql(a, a.ready_sql):
                    break
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"{a.name}: not ready after 60 s ({a.ready_sql!r} stayed empty)")
            time.sleep(0.2)
        time.sleep(2.0)

        before = snapshot(a, proc.pid)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        gen = subprocess.run(shlex.split(a.loadgen), capture_output=True, text=True)
        kids_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        loadgen_cpu = (kids_after.ru_utime + kids_after.ru_stime) - (kids.ru_utime + kids.ru_stime)
        sys.stderr.write(gen.stderr)
        if gen.returncode != 0:
            sys.exit(f"{a.name}: the load generator failed: {gen.stderr.strip()[-400:]}")
        summary = json.loads(gen.stdout.strip().splitlines()[-1])
        sent = summary["sent"]

        ours = f"{a.table} WHERE {a.station_col} LIKE '{a.prefix}%'"
        deadline = time.monotonic() + a.timeout
        rows = 0
        while True:
            rows = int(sql(a, f"SELECT count(*) FROM {ours}"))
            if rows >= sent or time.monotonic() > deadline or proc.poll() is not None:
                break
            time.sleep(0.5)
        after = snapshot(a, proc.pid)

        figures = sql(a, f"""
            WITH r AS (
                SELECT extract(epoch FROM {a.ts_expr}) AS pub,
                       extract(epoch FROM pg_xact_commit_timestamp(xmin)) AS com
                FROM {ours})
            SELECT json_build_object(
                'rows', count(*),
                'first_publish', min(pub), 'last_commit', max(com),
                'p50_ms', 1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY com - pub),
                'p99_ms', 1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY com - pub),
                'max_ms', 1000 * max(com - pub))
            FROM r""")
        fig = json.loads(figures)
        distinct = int(sql(a, f"SELECT count(*) FROM (SELECT DISTINCT {a.station_col}, {a.id_col} FROM {ours}) d"))
        tables = [a.table] + a.rollups.split()
        sizes = {}
        for t in tables:
            # The partitions of a partitioned table, or the table itself (a partitioned
            # parent's own size is 0, so counting it too is harmless).
            sizes[t] = int(sql(a, f"""SELECT coalesce(sum(pg_total_relation_size(relid)), 0)
                FROM (SELECT relid FROM pg_partition_tree('{t}') UNION SELECT '{t}'::regclass) p"""))
        commits = sql(a, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    rows = fig["rows"] or 0
    span = (fig["last_commit"] - fig["first_publish"]) if rows else 0.0
    cpu = {k: after[k] - before[k] for k in ("collector", "postgres", "mosquitto")}
    # The generator's own CPU (it was this script's only child reaped during the run).
    cpu["loadgen"] = loadgen_cpu
    result = {
        "name": a.name,
        "loadgen": summary,
        "sent": sent,
        "rows": rows,
        "distinct": distinct,
        "missing": sent - distinct,
        "duplicates": rows - distinct,
        "span_s": span,
        "readings_per_s": rows / span if span > 0 else 0.0,
        "p50_ms": fig["p50_ms"],
        "p99_ms": fig["p99_ms"],
        "max_ms": fig["max_ms"],
        "cpu_s": cpu,
        "cpu_us_per_reading": {k: (v * 1e6 / rows if rows else None) for k, v in cpu.items()},
        "bytes": sizes,
        "bytes_per_reading": (sum(sizes.values()) / rows) if rows else None,
        "xact_commit": int(commits or 0),
        "wall_s": after["t"] - before["t"],
        "collector_exit": proc.returncode,
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
