#!/usr/bin/env python3
"""What the tamper-evident chain costs, from a callgrind profile and a syscall trace.

    chain_cost.py cpu CALLGRIND_OUT READINGS [--json FILE]
    chain_cost.py pages STRACE_LOG DB [--json FILE]

`cpu`: the instructions (callgrind's Ir) the chain costs, against the whole process:
  * every call from Anemone's own code (outside the chain's files) into a chain function,
    with everything under it (inclusive), and
  * the chain's code inlined into an Anemone function (the release build inlines the
    `Sealer` into the commit's insert loop): its own instructions and the calls made
    from its lines.
  Chain functions are those of `src/store/chain.rs` (Sealer, Feed, hash_range, head_link,
  insert_link, Store::chain_head, …), `src/mqtt/publisher/chain.rs` (publish_chain: the
  head's payload, signature and publish), `src/signing.rs` and `payload::chain_payload`.
  Calls into them from library code (rusqlite calling back `link_from_row`) are already
  inside a counted call and are not counted again.
  Not counted, because callgrind cannot tell them apart from the commit's own work: SQLite
  writing the chain's page into the WAL at commit (and again at checkpoint), and handling
  the broker's PUBACK for the head.

`pages`: the WAL frames of every write transaction in an `strace -e trace=openat,pwrite64
-xx -s 24` log (SQLite writes a frame's 24-byte header, whose first 4 bytes are the page
number and next 4 non-zero on a transaction's last frame, then the page), mapped to the
b-tree each page belongs to at the end of the run (`dbstat`). Prints how many pages each
transaction wrote, and how many of them were the chain's.
"""
import argparse
import collections
import json
import re
import sqlite3
import sys

CHAIN_FILES = ("src/store/chain.rs", "src/mqtt/publisher/chain.rs", "src/signing.rs")
CHAIN_FN = re.compile(
    r"^<?anemone::(store::chain|mqtt::publisher::chain|signing)::"
    r"|^anemone::mqtt::payload::chain_payload"
)
ANEMONE_FN = re.compile(r"^<?anemone::")


def is_chain_file(f):
    return any(f.endswith(c) for c in CHAIN_FILES)


def is_anemone_file(f):
    # The repository's own sources (absolute paths as the debug info has them), not the
    # registry's or the standard library's.
    return ("/src/" in f or "/drivers/src/" in f) and "/.cargo/" not in f and "/rustc/" not in f


def parse_callgrind(path):
    """Yields ("self", fn, file, cost) and ("call", fn, file, callee, cost) records, and
    returns the total through the first record ("total", cost)."""
    names = {"fn": {}, "fl": {}}
    kinds = {"fn": "fn", "cfn": "fn", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl", "cfl": "fl"}
    fn = fl = cur = callee = None
    total = None
    pending_call = False
    name_re = re.compile(r"^\((\d+)\)(?: (.*))?$")

    def resolve(kind, rest):
        m = name_re.match(rest)
        if not m:
            return rest
        table = names[kinds[kind]]
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), "???")

    records = []
    with open(path, errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            c0 = line[0]
            if c0.isdigit() or c0 in "+-*":
                parts = line.split()
                if len(parts) < 2:
                    continue
                cost = int(parts[1])
                if pending_call:
                    records.append(("call", fn, cur, callee, cost))
                    pending_call = False
                else:
                    records.append(("self", fn, cur, cost))
                continue
            key, _, rest = line.partition("=")
            if key in ("fn",):
                fn = resolve("fn", rest)
                cur = fl
            elif key == "fl":
                fl = cur = resolve("fl", rest)
            elif key in ("fi", "fe"):
                cur = resolve(key, rest)
            elif key == "cfn":
                callee = resolve("cfn", rest)
            elif key in ("cfi", "cfl"):
                resolve(key, rest)
            elif key == "calls":
                pending_call = True
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split(":")[1].split()[0])
    return total, records


def cpu(args):
    total, records = parse_callgrind(args.callgrind)
    entries = collections.Counter()  # callee -> inclusive Ir of the calls into it
    inlined = collections.Counter()  # anemone fn holding inlined chain code -> Ir
    for r in records:
        if r[0] == "call":
            _, fn, f, callee, cost = r
            f = f or ""
            if CHAIN_FN.search(callee) and not CHAIN_FN.search(fn or "") \
                    and is_anemone_file(f) and not is_chain_file(f):
                entries[callee] += cost
            elif is_chain_file(f) and ANEMONE_FN.search(fn or "") and not CHAIN_FN.search(fn or ""):
                inlined[fn] += cost
        else:
            _, fn, f, cost = r
            if is_chain_file(f or "") and ANEMONE_FN.search(fn or "") and not CHAIN_FN.search(fn or ""):
                inlined[fn] += cost
    chain = sum(entries.values()) + sum(inlined.values())
    n = args.readings
    rest = total - chain
    out = {
        "total_ir": total,
        "chain_ir": chain,
        "chain_share": chain / total,
        "readings": n,
        "ir_per_reading": total / n,
        "ir_per_reading_without_chain": rest / n,
        "chain_ir_per_reading": chain / n,
        "increase": chain / rest,
        "parts": {**{f"call {k}": v for k, v in entries.most_common()},
                  **{f"inlined in {k}": v for k, v in inlined.most_common()}},
    }
    print(f"  whole process      {total:>14,} Ir   {total / n:>9,.0f} Ir/reading ({n} readings)")
    print(f"  the chain          {chain:>14,} Ir   {chain / n:>9,.0f} Ir/reading   {100 * chain / total:.2f} % of the process")
    print(f"  without the chain  {rest:>14,} Ir   {rest / n:>9,.0f} Ir/reading   the chain adds {100 * chain / rest:.2f} %")
    for k, v in out["parts"].items():
        print(f"    {v:>14,} Ir  {100 * v / total:5.2f} %  {k}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


FD_RE = re.compile(r'openat\([^"]*"([^"]*)".*\)\s*=\s*(\d+)')
PW_RE = re.compile(r'pwrite64\((\d+),\s*"((?:\\x[0-9a-f]{2})*)"(?:\.\.\.)?,\s*(\d+),\s*(\d+)')


def unescape(s):
    """The bytes of a string strace printed with -xx (every byte as \\xNN)."""
    return bytes(int(h, 16) for h in s.split("\\x")[1:])


def pages(args):
    wal_fds = set()
    txs = []
    frames = []
    with open(args.strace, errors="replace") as fh:
        for line in fh:
            m = FD_RE.search(line)
            if m:
                path = unescape(m.group(1)).decode(errors="replace")
                (wal_fds.add if path.endswith("-wal") else wal_fds.discard)(int(m.group(2)))
                continue
            m = PW_RE.search(line)
            if not m or int(m.group(1)) not in wal_fds or int(m.group(3)) != 24:
                continue
            raw = unescape(m.group(2))
            if len(raw) < 8:
                continue
            frames.append(int.from_bytes(raw[0:4], "big"))
            if int.from_bytes(raw[4:8], "big"):
                txs.append(frames)
                frames = []
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    owner = {p: name for name, p in db.execute("SELECT name, pageno FROM dbstat")}
    per_tx = []
    for tx in txs:
        names = collections.Counter(owner.get(p, "page 1" if p == 1 else "free") for p in tx)
        per_tx.append(names)
    with_chain = [t for t in per_tx if t.get("chain")]
    dist = collections.Counter(t["chain"] for t in with_chain)
    total_frames = sum(sum(t.values()) for t in per_tx)
    chain_frames = sum(t["chain"] for t in with_chain)
    frames_with = sum(sum(t.values()) for t in with_chain)
    by_table = collections.Counter()
    for t in with_chain:
        by_table.update(t)
    out = {
        "transactions": len(per_tx),
        "transactions_with_chain": len(with_chain),
        "frames": total_frames,
        "chain_frames": chain_frames,
        "chain_pages_per_commit": {str(k): v for k, v in sorted(dist.items())},
        "pages_per_commit_with_chain": frames_with / max(1, len(with_chain)),
        "pages_by_btree_in_those_commits": dict(by_table.most_common()),
    }
    print(f"  write transactions: {len(per_tx)}, {len(with_chain)} of them wrote a chain page")
    print(f"  chain pages per such commit: " + ", ".join(f"{k}: {v} commits" for k, v in sorted(dist.items())))
    print(f"  pages per such commit: {out['pages_per_commit_with_chain']:.2f} "
          f"({chain_frames} of {frames_with} are the chain's)")
    print("  pages of those commits by b-tree: " + ", ".join(f"{k} {v}" for k, v in by_table.most_common()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cpu")
    c.add_argument("callgrind")
    c.add_argument("readings", type=int)
    c.add_argument("--json")
    p = sub.add_parser("pages")
    p.add_argument("strace")
    p.add_argument("db")
    p.add_argument("--json")
    args = ap.parse_args()
    {"cpu": cpu, "pages": pages}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
