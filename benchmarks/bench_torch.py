#!/usr/bin/python3
"""bench_torch.py: time PyTorch's nn.LSTM as a reference for bench_core.

Usage:
    OMP_WAIT_POLICY=passive /usr/bin/python3 benchmarks/bench_torch.py \
        --threads N [--reps R] [--budget S] [--precision fp32|bf16|int8] \
        T B I H L D [T B I H L D ...]

Run it with the system interpreter (Debian's python3-torch), several shapes
per process to pay the torch import once. A shape is six numbers: T B I H
as in bench_core, then the number of layers L and of directions D (1, or 2
for bidirectional; write 1 1 for one plain layer). For each shape it builds
nn.LSTM(I, H, num_layers=L, bidirectional=D == 2) (float32, time-major
input x of shape (T, B, I), output y of shape (T, B, D H), fixed seed) and
times, after 2 warm-up calls, the median of the repetitions of
  mode=infer  y, (h, c) = lstm(x) under torch.no_grad()
  mode=train  y, (h, c) = lstm(x) with x and the parameters requiring
              gradients, then y.backward(dy) with a fixed dy (gradients are
              cleared between repetitions, outside the timed region).
Repetitions: --reps (default 10), reduced so the timed repetitions of one
(shape, mode) take about --budget seconds (default 4), never below 3
(unless --reps is lower).
--precision bf16 or int8 times inference alone (mode=infer), on a copy of
the module made before the timing:
  bf16  the module and x in torch.bfloat16 (Debian's torch 1.13 runs its
        CPU LSTM in bf16, so no autocast), y converted back for the
        accuracy only, under torch.inference_mode()
  int8  torch.ao.quantization.quantize_dynamic(model, {nn.LSTM},
        dtype=torch.qint8) (weights s8 per tensor, quantized once; each
        product's input quantized at every step), on the quantized engine
        "onednn": Debian's build has no fbgemm, and qnnpack is 5x slower here
and adds relerr=, ||y - y_fp32|| / ||y_fp32|| over the whole of y, against
the float32 module on the same x. With a reduced precision, x is drawn
from N(0, 1) (the weights are nn.LSTM's default, uniform in +-1/sqrt(H)).
FLOP counts as in bench_core.c: forward = the sum over layers and
directions of T * 2 * B * 4H * (H + I_l), with I_0 = I and I_l = D H for
the later layers; a training step = 3 x forward. One line per (shape, mode)
on stdout (wrapped here):
  impl=torch T=.. B=.. I=.. H=.. layers=L directions=D mode=infer threads=N
      ms=.. gflops=.. workspace_bytes=0 precision=fp32 [relerr=..]
Diagnostics (backend, thread settings, repetitions used) go to stderr.

Threads: torch.set_num_threads(N) sets the OpenMP pool (elementwise ops);
the GEMMs of torch's CPU LSTM go to the system BLAS (OpenBLAS, pthread
build on Debian), whose thread count is its own. This script therefore sets
OPENBLAS_NUM_THREADS=N before importing torch (unless already set) and also
calls openblas_set_num_threads(N) when the loaded OpenBLAS exports it.
OMP_WAIT_POLICY=passive must be in the environment, or the spinning OpenMP
workers and the OpenBLAS threads fight over the cores.
"""

import argparse
import copy
import os
import statistics
import sys
import time

WARMUP_RUNS = 2
MIN_REPS = 3


def log(message):
    print("bench_torch: " + message, file=sys.stderr, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Time torch.nn.LSTM (see module docstring).")
    parser.add_argument("--threads", type=int, required=True, help="intra-op and BLAS threads")
    parser.add_argument("--reps", type=int, default=10, help="maximum timed repetitions (default 10)")
    parser.add_argument("--budget", type=float, default=4.0,
                        help="target seconds of timed repetitions per (shape, mode) (default 4)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                        help="fp32 (default), or bf16 / int8 inference (see module docstring)")
    parser.add_argument("shape", nargs="+", type=int, help="T B I H L D, repeated")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.reps < 1 or args.budget <= 0:
        parser.error("--threads, --reps and --budget must be positive")
    if len(args.shape) % 6 or any(v < 1 for v in args.shape):
        parser.error("shapes are groups of six positive integers T B I H L D")
    args.shapes = [tuple(args.shape[k:k + 6]) for k in range(0, len(args.shape), 6)]
    if any(shape[5] > 2 for shape in args.shapes):
        parser.error("D, the number of directions, must be 1 or 2")
    return args


def loaded_libraries(words):
    """Paths of the shared objects mapped into this process whose name contains one of words."""
    found = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                name = os.path.basename(path)
                if path.startswith("/") and any(w in name for w in words) and path not in found:
                    found.append(path)
    except OSError:
        pass
    return found


def configure_openblas(threads):
    """Set and report the OpenBLAS thread count through its C API, if it is loaded."""
    import ctypes
    for path in loaded_libraries(("openblas",)):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_set_num_threads(ctypes.c_int(threads))
            lib.openblas_get_config.restype = ctypes.c_char_p
            config = lib.openblas_get_config().decode(errors="replace")
            return "%s (%s, openblas_get_num_threads=%d)" % (path, config, lib.openblas_get_num_threads())
        except (OSError, AttributeError):
            continue
    return None


def report_backend(torch, threads):
    log("torch %s, python %s" % (torch.__version__, sys.version.split()[0]))
    config = torch.__config__.show()
    for line in config.splitlines():
        if "BLAS_INFO" in line or "LAPACK_INFO" in line:
            items = [item.split(":")[-1].strip() for item in line.split(",")]
            keys = [item for item in items
                    if item.startswith(("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP"))]
            log("build: " + ", ".join(keys))
        elif "MKL-DNN" in line or "OpenMP" in line or "CPU capability" in line:
            log("build: " + line.strip(" -"))
    log("mkldnn available: %s, mkl available: %s" % (torch.backends.mkldnn.is_available(),
                                                      torch.backends.mkl.is_available()))
    # Force the BLAS library to load, then find it.
    torch.ones(8, 8) @ torch.ones(8, 8)
    blas = configure_openblas(threads)
    if blas:
        log("BLAS: " + blas)
    else:
        libs = loaded_libraries(("blas", "mkl", "blis"))
        log("BLAS: %s (thread count not set by this script)" % (", ".join(libs) or "not detected"))
    log("torch threads: intra-op %d, inter-op %d; OMP_WAIT_POLICY=%s OPENBLAS_NUM_THREADS=%s"
        % (torch.get_num_threads(), torch.get_num_interop_threads(),
           os.environ.get("OMP_WAIT_POLICY", "(unset)"), os.environ.get("OPENBLAS_NUM_THREADS", "(unset)")))


def time_mode(run, budget, max_reps, before=None):
    """Median seconds of run() after WARMUP_RUNS calls; before() runs untimed ahead of each call."""
    warm = []
    for _ in range(WARMUP_RUNS):
        if before:
            before()
        start = time.perf_counter()
        run()
        warm.append(time.perf_counter() - start)
    estimate = min(warm)
    fit = int(budget / estimate) if estimate > 0 else max_reps
    reps = min(max_reps, max(MIN_REPS, fit))
    times = []
    for _ in range(reps):
        if before:
            before()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), reps


def forward_flops(T, B, I, H, L, D):
    """The gate products of every layer and direction (bench_util.h's forward_flops)."""
    return sum(D * T * 2.0 * B * 4.0 * H * (H + (I if layer == 0 else D * H))
               for layer in range(L))


def reduced_module(torch, lstm, precision):
    """The module in bf16, or dynamically quantized to int8 (prepared before any timing)."""
    if precision == "bf16":
        return copy.deepcopy(lstm).to(torch.bfloat16)
    torch.backends.quantized.engine = "onednn"
    # quantize_dynamic swaps submodules, so the LSTM goes in a container.
    return torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(copy.deepcopy(lstm)),
                                                  {torch.nn.LSTM}, dtype=torch.qint8)[0]


def bench_reduced(torch, T, B, I, H, L, D, threads, args):
    """Inference in args.precision, its time and its relative error against float32."""
    torch.manual_seed(1234)
    lstm = torch.nn.LSTM(I, H, num_layers=L, bidirectional=D == 2).float()
    x = torch.randn(T, B, I)
    with torch.inference_mode():
        reference, _ = lstm(x)
    model = reduced_module(torch, lstm, args.precision)
    x_in = x.to(torch.bfloat16) if args.precision == "bf16" else x
    out = {}

    def infer():
        with torch.inference_mode():
            out["y"], _ = model(x_in)

    seconds, reps = time_mode(infer, args.budget, args.reps)
    y = out["y"].float()
    relerr = ((y - reference).norm() / reference.norm()).item()
    flops = forward_flops(T, B, I, H, L, D)
    print("impl=torch T=%d B=%d I=%d H=%d layers=%d directions=%d mode=infer threads=%d ms=%.3f "
          "gflops=%.2f workspace_bytes=0 precision=%s relerr=%.6f"
          % (T, B, I, H, L, D, threads, 1e3 * seconds, flops / seconds * 1e-9, args.precision,
             relerr), flush=True)
    log("T=%d B=%d I=%d H=%d layers=%d directions=%d mode=infer precision=%s reps=%d"
        % (T, B, I, H, L, D, args.precision, reps))


def bench_shape(torch, T, B, I, H, L, D, threads, args):
    torch.manual_seed(1234)
    lstm = torch.nn.LSTM(I, H, num_layers=L, bidirectional=D == 2).float()
    x = torch.rand(T, B, I) * 2 - 1
    dy = (torch.rand(T, B, D * H) * 2 - 1) * 1e-3
    flops = forward_flops(T, B, I, H, L, D)

    def infer():
        with torch.no_grad():
            y, (h, c) = lstm(x)
        return y

    x_train = x.clone().requires_grad_(True)
    params = list(lstm.parameters())

    def clear_grads():
        x_train.grad = None
        for p in params:
            p.grad = None

    def train():
        y, (h, c) = lstm(x_train)
        y.backward(dy)

    results = []
    for mode, run, before, mode_flops in (("infer", infer, None, flops),
                                          ("train", train, clear_grads, 3.0 * flops)):
        seconds, reps = time_mode(run, args.budget, args.reps, before)
        print("impl=torch T=%d B=%d I=%d H=%d layers=%d directions=%d mode=%s threads=%d ms=%.3f "
              "gflops=%.2f workspace_bytes=0 precision=fp32"
              % (T, B, I, H, L, D, mode, threads, 1e3 * seconds, mode_flops / seconds * 1e-9),
              flush=True)
        log("T=%d B=%d I=%d H=%d layers=%d directions=%d mode=%s reps=%d"
            % (T, B, I, H, L, D, mode, reps))
        results.append(seconds)
    return results


def main(argv):
    args = parse_args(argv)
    if os.environ.get("OMP_WAIT_POLICY", "").lower() != "passive":
        log("WARNING: OMP_WAIT_POLICY=passive is not set; OpenMP workers will spin and "
            "compete with the BLAS threads, so timings may be badly off")
    wanted = str(args.threads)
    have = os.environ.get("OPENBLAS_NUM_THREADS")
    if have is None:
        os.environ["OPENBLAS_NUM_THREADS"] = wanted  # read when OpenBLAS loads, with torch
    elif have != wanted:
        log("WARNING: OPENBLAS_NUM_THREADS=%s differs from --threads %s; "
            "overriding through openblas_set_num_threads" % (have, wanted))

    import torch  # after the environment is set

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    report_backend(torch, args.threads)

    start = time.perf_counter()
    for T, B, I, H, L, D in args.shapes:
        if args.precision == "fp32":
            bench_shape(torch, T, B, I, H, L, D, args.threads, args)
        else:
            bench_reduced(torch, T, B, I, H, L, D, args.threads, args)
    log("total %.1f s" % (time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
