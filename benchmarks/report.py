#!/usr/bin/python3
"""Turns the benchmark programs' key=value lines into latest.csv, and a
Markdown table of liblstm's time against each peer (latest.md).

A network shape is (T, B, I, H, L, D): L layers of D directions; lines
without layers= and directions= (older raw files) are one layer, one
direction.

Two other builds of liblstm, timed by the same bench_core in the same
rounds, have their own tables: impl=liblstm_blas (-DLSTM_STEP_PRODUCTS=blas,
the per-step products on the BLAS) against the default build and oneDNN,
and impl=liblstm_clang (the default build compiled by clang) against the
default build, compiled by GCC.

Reduced precision (precision=bf16 or int8; lines without precision= are
fp32): liblstm, oneDNN and PyTorch in the same rounds, and
liblstm on its portable kernels (impl=liblstm_portable, LSTM_CPU_DISABLE=
bf16,vnni). Each gets a table (reduced_tables()): liblstm's time against
the peers in the same precision and against its own fp32, and every
implementation's relerr= (its relative L2 error against its own fp32 on the
same data). liblstm's training step in bf16 (bench_core's mode=train
lines in bf16) has a table of its own (training_table()): its time against
its own fp32 step, and the relative error of dx. In latest.csv the columns
precision and relerr come last
(relerr empty for fp32); a reader of the fp32 rows alone filters
precision == "fp32".

With README, the compact table of ratios (ratio_table()) also replaces
what README holds between its RATIOS_BEGIN and RATIOS_END lines, followed
by the reduced precisions' ratios (reduced_ratio_table()).

With BENCH_QUICK=1 in the environment (benchmarks/run --quick), latest.md
and the README's table open with a line saying the figures come from a
smoke run.

Usage: report.py RAW_LINES RESULTS_DIR [README]
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


def best_round(lines):
    """The line of the round with the lowest time. Every round's time is
    already a median of repetitions; across rounds, the lowest is the one
    least disturbed by the other tenants of the host, whose load only ever
    slows a measurement down. The same rule applies to every implementation."""
    return min(lines, key=lambda r: float(r["ms"]))


SHAPE = ("T", "B", "I", "H", "layers", "directions")


def shape_of(r):
    return tuple(r[c] for c in SHAPE)


RATIOS_BEGIN = "<!-- benchmarks/report.py: ratios begin -->"
RATIOS_END = "<!-- benchmarks/report.py: ratios end -->"


def ratio_table(shapes, ratio):
    """A row per shape and thread count: liblstm against each peer and the
    ceiling, in inference and in training."""
    lines = ["| T | B | I | H | L | D | threads | infer: /oneDNN | /torch | /ceiling | "
             "train: /oneDNN | /torch | /ceiling |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in shapes:
        for threads in ("1", "2"):
            cells = [ratio(s + (mode, threads), peer) for mode in ("infer", "train")
                     for peer in ("onednn", "torch", "ceiling")]
            lines.append(f"| {' | '.join(s)} | {threads} | {' | '.join(cells)} |")
    return lines


def builds_tables(shapes, ms, gflops):
    """The other builds of liblstm: the per-step products on the BLAS
    against the default build (its own kernel) and oneDNN, and the clang
    build against the GCC one. Each time is its best round, as above."""
    def cell(key, impl):
        return f"{ms[key + (impl,)]:.1f}" if key + (impl,) in ms else "n/a"

    def over(key, numerator, denominator):
        a, b = ms.get(key + (numerator,)), ms.get(key + (denominator,))
        return f"{a / b:.2f}" if a and b else "n/a"

    lines = ["", "The per-step products on the BLAS: liblstm built with "
             "-DLSTM_STEP_PRODUCTS=blas (one cblas_sgemm per product on the linked BLAS, "
             "the choice of LSTM_STEP_PRODUCTS=auto on CPUs other than x86-64), in the same "
             "rounds. blas/own and blas/oneDNN are throughput ratios (the other's time over the "
             "blas build's; below 1.00 the blas build is slower).", "",
             "| T | B | I | H | L | D | mode | threads | own ms | blas ms | blas GF/s | "
             "oneDNN ms | blas/own | blas/oneDNN |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in shapes:
        for mode in ("infer", "train"):
            for threads in ("1", "2"):
                key = s + (mode, threads)
                if key + ("liblstm_blas",) not in ms:
                    continue
                lines.append(f"| {' | '.join(s)} | {mode} | {threads} | {cell(key, 'liblstm')} | "
                             f"{cell(key, 'liblstm_blas')} | "
                             f"{gflops.get(key + ('liblstm_blas',), 'n/a')} | "
                             f"{cell(key, 'onednn')} | {over(key, 'liblstm', 'liblstm_blas')} | "
                             f"{over(key, 'onednn', 'liblstm_blas')} |")
    lines += ["", "The compiler: the default build compiled by clang against the same by GCC, "
              "in the same rounds. clang/gcc is the clang build's time over the GCC build's "
              "(above 1.00 the clang build is slower).", "",
              "| T | B | I | H | L | D | mode | threads | gcc ms | clang ms | clang/gcc |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in shapes:
        for mode in ("infer", "train"):
            for threads in ("1", "2"):
                key = s + (mode, threads)
                if key + ("liblstm_clang",) not in ms:
                    continue
                lines.append(f"| {' | '.join(s)} | {mode} | {threads} | {cell(key, 'liblstm')} | "
                             f"{cell(key, 'liblstm_clang')} | "
                             f"{over(key, 'liblstm_clang', 'liblstm')} |")
    return lines


REDUCED = ("bf16", "int8")

QUICK_NOTE = ("**A smoke run (`benchmarks/run --quick`: one round, 3 repetitions), not a "
              "measurement:** its figures may be far from a full run's.")


def reduced(impl, precision):
    """The key of impl in a reduced precision in the tables' dictionaries
    (fp32 keeps the bare name, so the fp32 tables read what they always read)."""
    return impl if precision == "fp32" else f"{impl}@{precision}"


def reduced_tables(shapes, ms, gflops, relerr):
    """A table per reduced precision: liblstm's time, its throughput against
    oneDNN and PyTorch in the same precision and against its own fp32, the
    portable kernels' time, and each implementation's relative error."""
    lines = []
    for p in REDUCED:
        def cell(key, impl):
            return f"{ms[key + (impl,)]:.1f}" if key + (impl,) in ms else "n/a"

        def over(key, peer, mine):
            a, b = ms.get(key + (mine,)), ms.get(key + (peer,))
            return f"{b / a:.2f}" if a and b else "n/a"

        def error(key, impl):
            v = relerr.get(key + (impl,))
            return f"{100 * v:.2f}%" if v is not None else "n/a"

        ours = reduced("liblstm", p)
        lines += ["", f"Inference in {p} (precision={p}): liblstm's time, and its throughput "
                  f"against oneDNN and PyTorch in {p} and against its own fp32 (the other's "
                  "time over liblstm's: above 1.00 liblstm in " + p + " is faster). "
                  "portable: liblstm on its portable kernels (LSTM_CPU_DISABLE=bf16,vnni, one "
                  "round). relerr: the relative L2 error of y against the same implementation's "
                  "fp32 y on the same x (N(0, 1)) and weights (uniform +-1/sqrt(H)).", "",
                  "| T | B | I | H | L | D | threads | liblstm ms | GF/s | oneDNN ms | torch ms | "
                  "fp32 ms | /oneDNN | /torch | /own fp32 | portable ms | relerr liblstm | "
                  "oneDNN | torch |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in shapes:
            for threads in ("1", "2"):
                key = s + ("infer", threads)
                if key + (ours,) not in ms:
                    continue
                lines.append(
                    f"| {' | '.join(s)} | {threads} | {cell(key, ours)} | "
                    f"{gflops.get(key + (ours,), 'n/a')} | {cell(key, reduced('onednn', p))} | "
                    f"{cell(key, reduced('torch', p))} | {cell(key, 'liblstm')} | "
                    f"{over(key, reduced('onednn', p), ours)} | "
                    f"{over(key, reduced('torch', p), ours)} | {over(key, 'liblstm', ours)} | "
                    f"{cell(key, reduced('liblstm_portable', p))} | {error(key, ours)} | "
                    f"{error(key, reduced('onednn', p))} | {error(key, reduced('torch', p))} |")
    return lines


def training_table(shapes, ms, relerr):
    """liblstm's training step in bf16 (lstm_workspace_set_training_precision)
    against its own fp32 step, with the relative error of dx."""
    ours = reduced("liblstm", "bf16")
    rows = []
    for s in shapes:
        for threads in ("1", "2"):
            key = s + ("train", threads)
            if key + (ours,) not in ms:
                continue
            fp32, bf16 = ms.get(key + ("liblstm",)), ms[key + (ours,)]
            error = relerr.get(key + (ours,))
            rows.append(f"| {' | '.join(s)} | {threads} | {bf16:.1f} | "
                        f"{f'{fp32:.1f}' if fp32 else 'n/a'} | "
                        f"{f'{fp32 / bf16:.2f}' if fp32 else 'n/a'} | "
                        f"{f'{100 * error:.2f}%' if error is not None else 'n/a'} |")
    if not rows:
        return []
    return ["", "Training in bf16 (lstm_workspace_set_training_precision: a forward and backward "
            "step with every product's operands in bf16): liblstm's time, against its own fp32 "
            "step (above 1.00 bf16 is faster), and the relative L2 error of dx against fp32's.",
            "", "| T | B | I | H | L | D | threads | bf16 ms | fp32 ms | /own fp32 | relerr dx |",
            "|---|---|---|---|---|---|---|---|---|---|---|"] + rows


def accuracy_table(shapes, relerr):
    """Each implementation's relative error in bf16 and int8 per shape (one
    thread's run; the error does not depend on the thread count)."""
    impls = ("liblstm", "onednn", "torch")
    lines = ["", "Accuracy: the relative L2 error of y in bf16 and int8 against the same "
             "implementation's fp32 y (x from N(0, 1), zero initial states, weights uniform "
             "+-1/sqrt(H)); oneDNN int8 with its static data scale and shift calibrated on x's "
             "range, PyTorch int8 quantize_dynamic.", "",
             "| T | B | I | H | L | D | bf16: liblstm | oneDNN | torch | "
             "int8: liblstm | oneDNN | torch |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = 0
    for s in shapes:
        cells = []
        for p in REDUCED:
            for impl in impls:
                values = [relerr[k] for k in (s + ("infer", t, reduced(impl, p)) for t in ("1", "2"))
                          if k in relerr]
                cells.append(f"{100 * values[0]:.2f}%" if values else "n/a")
        if all(c == "n/a" for c in cells):
            continue
        rows += 1
        lines.append(f"| {' | '.join(s)} | {' | '.join(cells)} |")
    return lines if rows else []


def reduced_ratio_table(shapes, ms):
    """The compact table for README: liblstm in bf16 and int8 against the
    peers in the same precision and against its own fp32."""
    def over(key, peer, mine):
        a, b = ms.get(key + (mine,)), ms.get(key + (peer,))
        return f"{b / a:.2f}" if a and b else "n/a"

    lines = ["", "| T | B | I | H | L | D | threads | bf16: /oneDNN bf16 | /torch bf16 | "
             "/own fp32 | int8: /oneDNN int8 | /torch int8 | /own fp32 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = 0
    for s in shapes:
        for threads in ("1", "2"):
            key = s + ("infer", threads)
            cells = []
            for p in REDUCED:
                ours = reduced("liblstm", p)
                cells += [over(key, reduced("onednn", p), ours),
                          over(key, reduced("torch", p), ours), over(key, "liblstm", ours)]
            if all(c == "n/a" for c in cells):
                continue
            rows += 1
            lines.append(f"| {' | '.join(s)} | {threads} | {' | '.join(cells)} |")
    return lines if rows else []


def replace_between_markers(path, lines):
    """Puts lines between the README's markers; the rest stays as it is."""
    with open(path) as f:
        text = f.read()
    begin, end = text.find(RATIOS_BEGIN), text.find(RATIOS_END)
    if begin < 0 or end < begin:
        sys.exit(f"report.py: {path} has no {RATIOS_BEGIN} ... {RATIOS_END} lines")
    text = (text[:begin + len(RATIOS_BEGIN)] + "\n" + "\n".join(lines) + "\n" +
            text[end:])
    with open(path, "w") as f:
        f.write(text)


def main():
    raw, out = sys.argv[1], sys.argv[2]
    measured = {}  # one list of lines (a line per round) per measurement
    for line in open(raw):
        fields = dict(p.split("=", 1) for p in line.split() if "=" in p)
        if "impl" not in fields:
            continue
        fields.setdefault("layers", "1")
        fields.setdefault("directions", "1")
        fields.setdefault("precision", "fp32")
        fields.setdefault("relerr", "")
        key = shape_of(fields) + (fields["mode"], fields["threads"],
                                  reduced(fields["impl"], fields["precision"]))
        measured.setdefault(key, []).append(fields)
    rows = [best_round(group) for group in measured.values()]
    # The CSV and the main table: liblstm and its three references. (impl=openblas
    # and impl=split, from bench_ceiling, stay in raw.txt and their own table.)
    # The network's layers and directions come last, so that the columns of
    # earlier files keep their places.
    listed = ("liblstm", "onednn", "torch", "ceiling", "liblstm_blas", "liblstm_clang",
              "liblstm_portable")
    columns = ["T", "B", "I", "H", "mode", "impl", "threads", "ms", "gflops", "layers",
               "directions", "precision", "relerr"]
    with open(os.path.join(out, "latest.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in rows:
            if r["impl"] in listed:
                writer.writerow([r[c] for c in columns])

    def round_ratios(key, peer):
        """liblstm against peer in each round: the spread the medians hide."""
        by_round = lambda impl: {r.get("round"): float(r["ms"])
                                 for r in measured.get(key + (impl,), [])}
        mine, theirs = by_round("liblstm"), by_round(peer)
        ratios = sorted(theirs[k] / mine[k] for k in mine if k in theirs)
        return f"{ratios[0]:.2f}–{ratios[-1]:.2f}" if len(ratios) > 1 else "n/a"

    ms = {}
    workspace = {}
    kept = {}
    relerr = {}
    for r in rows:
        key = shape_of(r) + (r["mode"], r["threads"])
        impl = reduced(r["impl"], r["precision"])
        ms[key + (impl,)] = float(r["ms"])
        if r["relerr"]:
            relerr[key + (impl,)] = float(r["relerr"])
        if r["mode"] == "train" and r["precision"] == "fp32":
            workspace[shape_of(r) + (r["impl"],)] = int(r["workspace_bytes"])
            if "kept_per_step_row" in r:
                kept[shape_of(r)] = float(r["kept_per_step_row"])
    shapes = []
    for r in rows:
        if shape_of(r) not in shapes:
            shapes.append(shape_of(r))

    def ratio(key, peer):
        """Throughput of liblstm relative to peer: > 1 means liblstm is faster."""
        a, b = ms.get(key + ("liblstm",)), ms.get(key + (peer,))
        return f"{b / a:.2f}" if a and b else "n/a"

    rounds = max(len(group) for group in measured.values())
    quick = ([QUICK_NOTE, ""] if os.environ.get("BENCH_QUICK") == "1" else [])
    lines = quick + [f"Machine: {machine()}.", "",
             "Throughput ratios (higher is better for liblstm): liblstm/oneDNN and "
             "liblstm/torch are the peers' time over liblstm's; liblstm/ceiling is the "
             "time of liblstm's own matrix products alone (bench_ceiling) over liblstm's (1.0 = no "
             "overhead). Each implementation was "
             f"measured in each of {rounds} rounds (PyTorch in the first and the last), side "
             "by side with the others; a time is "
             "the lowest of its rounds' medians of repetitions (the machine's other tenants "
             "only ever slow a round down). \"per round\" gives the lowest and highest "
             "liblstm/oneDNN of the single rounds.", "",
             "| T | B | I | H | L | D | mode | threads | liblstm ms | GF/s | oneDNN ms | "
             "torch ms | ceiling ms | liblstm/oneDNN | per round | liblstm/torch | "
             "liblstm/ceiling |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    gflops = {shape_of(r) + (r["mode"], r["threads"], reduced(r["impl"], r["precision"])):
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
                             f"{round_ratios(key, 'onednn')} | "
                             f"{ratio(key, 'torch')} | {ratio(key, 'ceiling')} |")
    lines += ["", "Training memory, bytes per (time step x batch row). liblstm kept: what its "
              "workspace grows by per step and row (what backward needs); liblstm whole: its "
              "whole training workspace, packed weight copies included, over T x B; oneDNN: "
              "its training workspace over T x B (its scratchpad not counted). Every layer and "
              "direction together.", "",
              "| T | B | I | H | L | D | liblstm kept | liblstm whole | oneDNN workspace | "
              "kept / oneDNN |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in shapes:
        per = lambda impl: (workspace[s + (impl,)] / (int(s[0]) * int(s[1]))
                            if s + (impl,) in workspace else None)
        show = lambda v: f"{v:.0f}" if v is not None else "n/a"
        onednn = per("onednn")
        share = (f"{kept[s] / onednn:.2f}" if s in kept and onednn else "n/a")
        lines.append(f"| {' | '.join(s)} | {show(kept.get(s))} | {show(per('liblstm'))} | "
                     f"{show(onednn)} | {share} |")
    lines += ["", "What the stacked [h, x] product costs: the ceiling's products against the "
              "same kernels with the input's part hoisted out of the recurrence (impl=split "
              "in bench_ceiling.c: one product X W_x^T over every step, then h W_h^T per "
              "step, as oneDNN does). Above 1.00, the hoisted products are faster. liblstm "
              "hoists it itself up to B = 4, and in inference with over 12 MB of packed W "
              "(lstm__schedule_hoist_input() in src/schedule.c), where the ceiling times the same calls "
              "as split.", "",
              "| T | B | I | H | L | D | mode | threads | ceiling ms | split ms | "
              "ceiling / split |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in shapes:
        for mode in ("infer", "train"):
            for threads in ("1", "2"):
                key = s + (mode, threads)
                if key + ("split",) in ms and key + ("ceiling",) in ms:
                    a, b = ms[key + ("ceiling",)], ms[key + ("split",)]
                    lines.append(f"| {' | '.join(s)} | {mode} | {threads} | {a:.1f} | "
                                 f"{b:.1f} | {a / b:.2f} |")
    lines += builds_tables(shapes, ms, gflops)
    lines += reduced_tables(shapes, ms, gflops, relerr)
    lines += training_table(shapes, ms, relerr)
    lines += accuracy_table(shapes, relerr)
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if len(sys.argv) > 3:
        replace_between_markers(sys.argv[3], quick + ratio_table(shapes, ratio) +
                                reduced_ratio_table(shapes, ms))


if __name__ == "__main__":
    main()
