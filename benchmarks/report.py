#!/usr/bin/python3
"""Turns the benchmark programs' key=value lines into latest.csv, and a
Markdown table of liblstm's time against each peer (latest.md).

Usage: report.py RAW_LINES RESULTS_DIR
"""
import csv
import ctypes
import ctypes.util
import os
import platform
import subprocess
import sys


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = subprocess.run(["pkg-config", "--modversion", "openblas"], capture_output=True,
                          text=True).stdout.strip() or "?"
    try:  # the kernels OpenBLAS chose for this CPU
        lib = ctypes.CDLL(ctypes.util.find_library("openblas") or "libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        blas += " (" + lib.openblas_get_corename().decode() + " kernels)"
    except (OSError, AttributeError):
        pass
    return f"{os.cpu_count()} x {model}, {platform.system()} {platform.release()}, OpenBLAS {blas}"


def main():
    raw, out = sys.argv[1], sys.argv[2]
    rows = []
    with open(raw) as f:
        for line in f:
            fields = dict(p.split("=", 1) for p in line.split() if "=" in p)
            if "impl" not in fields:
                continue
            rows.append(fields)
    columns = ["T", "B", "I", "H", "mode", "impl", "threads", "ms", "gflops"]
    with open(os.path.join(out, "latest.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([r[c] for c in columns])

    ms = {}
    workspace = {}
    kept = {}
    for r in rows:
        key = (r["T"], r["B"], r["I"], r["H"], r["mode"], r["threads"])
        ms[key + (r["impl"],)] = float(r["ms"])
        if r["mode"] == "train":
            workspace[(r["T"], r["B"], r["I"], r["H"], r["impl"])] = int(r["workspace_bytes"])
            if "kept_per_step_row" in r:
                kept[(r["T"], r["B"], r["I"], r["H"])] = float(r["kept_per_step_row"])
    shapes = []
    for r in rows:
        s = (r["T"], r["B"], r["I"], r["H"])
        if s not in shapes:
            shapes.append(s)

    def ratio(key, peer):
        """Throughput of liblstm relative to peer: > 1 means liblstm is faster."""
        a, b = ms.get(key + ("liblstm",)), ms.get(key + (peer,))
        return f"{b / a:.2f}" if a and b else "n/a"

    lines = [f"Machine: {machine()}.", "",
             "Throughput ratios (higher is better for liblstm): liblstm/oneDNN and "
             "liblstm/torch are the peers' time over liblstm's; liblstm/ceiling is the "
             "BLAS-only time over liblstm's (1.0 = no overhead).", "",
             "| T | B | I | H | mode | threads | liblstm ms | GF/s | oneDNN ms | torch ms | "
             "ceiling ms | liblstm/oneDNN | liblstm/torch | liblstm/ceiling |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    gflops = {(r["T"], r["B"], r["I"], r["H"], r["mode"], r["threads"], r["impl"]):
              r["gflops"] for r in rows}
    for s in shapes:
        for mode in ("infer", "train"):
            for threads in ("1", "2"):
                key = s + (mode, threads)
                if key + ("liblstm",) not in ms:
                    continue
                cell = lambda impl: (f"{ms[key + (impl,)]:.1f}" if key + (impl,) in ms
                                     else "n/a")
                lines.append(f"| {' | '.join(s)} | {mode} | {threads} | {cell('liblstm')} | "
                             f"{gflops.get(key + ('liblstm',), 'n/a')} | {cell('onednn')} | "
                             f"{cell('torch')} | {cell('ceiling')} | {ratio(key, 'onednn')} | "
                             f"{ratio(key, 'torch')} | {ratio(key, 'ceiling')} |")
    lines += ["", "Training memory, bytes per (time step x batch row). liblstm kept: what its "
              "workspace grows by per step and row (what backward needs); liblstm whole: its "
              "whole training workspace, packed weight copies included, over T x B; oneDNN: "
              "its training workspace over T x B (its scratchpad not counted).", "",
              "| T | B | I | H | liblstm kept | liblstm whole | oneDNN workspace | "
              "kept / oneDNN |", "|---|---|---|---|---|---|---|---|"]
    for s in shapes:
        per = lambda impl: (workspace[s + (impl,)] / (int(s[0]) * int(s[1]))
                            if s + (impl,) in workspace else None)
        show = lambda v: f"{v:.0f}" if v is not None else "n/a"
        onednn = per("onednn")
        share = (f"{kept[s] / onednn:.2f}" if s in kept and onednn else "n/a")
        lines.append(f"| {' | '.join(s)} | {show(kept.get(s))} | {show(per('liblstm'))} | "
                     f"{show(onednn)} | {share} |")
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
