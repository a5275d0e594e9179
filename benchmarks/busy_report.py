#!/usr/bin/python3
"""Turns busy-core.sh's key=value lines into busy.csv and busy.md: per
shape, mode (with its precision: infer, train, infer-bf16, train-bf16,
infer-int8) and load, each implementation's best round at 1 and 2 threads,
and the ratio "2 threads / 1 thread" under the same load, which the
requirement of issue 25 bounds at 1.3 for liblstm under one busy core, in
every precision.

Usage: busy_report.py RAW_LINES RESULTS_DIR
"""
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import machine  # noqa: E402

SHAPE = ("T", "B", "I", "H")


def main():
    raw, results = sys.argv[1], sys.argv[2]
    rows = []
    with open(raw) as f:
        for line in f:
            fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if "impl" in fields and "ms" in fields:
                precision = fields.get("precision", "fp32")
                if precision != "fp32":
                    fields["mode"] += "-" + precision
                rows.append(fields)
    best = {}
    for r in rows:
        key = tuple(r[c] for c in SHAPE) + (r["mode"], r["impl"], r["threads"], r["load"])
        if key not in best or float(r["ms"]) < float(best[key]["ms"]):
            best[key] = r
    columns = ["T", "B", "I", "H", "mode", "impl", "threads", "load", "ms", "gflops", "round"]
    with open(os.path.join(results, "busy.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for key in sorted(best, key=lambda k: tuple(int(x) for x in k[:4]) + k[4:]):
            w.writerow([best[key].get(c, "") for c in columns])

    shapes = sorted({k[:4] for k in best}, key=lambda s: tuple(int(x) for x in s))
    impls = [i for i in ("liblstm", "liblstm_ref", "onednn") if any(k[5] == i for k in best)]
    loads = [ld for ld in ("busy", "pinned") if any(k[7] == ld for k in best)]
    rounds = max(int(r["round"]) for r in rows) if rows else 0
    modes = [m for m in ("infer", "train", "infer-bf16", "train-bf16", "infer-int8")
             if any(k[4] == m for k in best)]

    def ms(s, mode, impl, threads, load):
        r = best.get(s + (mode, impl, threads, load))
        return float(r["ms"]) if r else None

    def fmt(x, spec=".1f"):
        return "n/a" if x is None else format(x, spec)

    out = ["# Two threads on a busy machine", "",
           f"Machine: {machine()}. Best of {rounds} round(s) of each (each a median of "
           "repetitions), all in one run of benchmarks/busy-core.sh. busy: a busy-loop "
           "process on one core, unpinned; pinned: the same pinned (taskset) to the last "
           "core. 2T/1T is the 2-thread time over the 1-thread time under the same load "
           "(the requirement: liblstm at most 1.30 under one busy core); quiet 2T is the "
           "2-thread time with no competitor.", ""]
    for load in loads:
        out += [f"## load = {load}", "",
                "| T | B | I | H | mode | " +
                " | ".join(f"{i} 1T ms | {i} 2T ms | {i} 2T/1T | {i} quiet 2T ms"
                           for i in impls) + " |",
                "|---|---|---|---|---|" + "---|---|---|---|" * len(impls)]
        for s in shapes:
            for mode in modes:
                cells = []
                for i in impls:
                    one, two = ms(s, mode, i, "1", load), ms(s, mode, i, "2", load)
                    ratio = two / one if one and two else None
                    cells += [fmt(one), fmt(two), fmt(ratio, ".2f"),
                              fmt(ms(s, mode, i, "2", "quiet"))]
                out.append(f"| {' | '.join(s)} | {mode} | " + " | ".join(cells) + " |")
        out.append("")
    if any(k[7] == "quiet" for k in best):
        out += ["## quiet", "", "| T | B | I | H | mode | " +
                " | ".join(f"{i} 1T ms | {i} 2T ms" for i in impls) + " |",
                "|---|---|---|---|---|" + "---|---|" * len(impls)]
        for s in shapes:
            for mode in modes:
                cells = []
                for i in impls:
                    cells += [fmt(ms(s, mode, i, "1", "quiet")), fmt(ms(s, mode, i, "2", "quiet"))]
                out.append(f"| {' | '.join(s)} | {mode} | " + " | ".join(cells) + " |")
        out.append("")
    with open(os.path.join(results, "busy.md"), "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
