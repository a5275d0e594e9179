#!/usr/bin/python3
"""Generate tests/parity/golden/head/head_golden.h, the PyTorch golden data that
tests/parity/test_head.c compares liblstm's output head and losses against.

Usage (Debian's python3 with python3-torch and python3-numpy, not a venv):

    /usr/bin/python3 tests/parity/gen_head_golden.py tests/parity/golden/head/head_golden.h

What is recorded (inputs are float32 values, every computation is torch in
float64 on those exact values):

 * nn.Linear: W, b, x and an upstream gradient dz; the output z = x W^T + b
   and the gradients dx, dW, db from autograd.
 * nn.CrossEntropyLoss(ignore_index=-100, reduction="mean"): logits, class
   targets (some rows ignored), the loss and dloss/dlogits. Class counts 1,
   2, 10 and 1000; logits up to +-80 and +-1000, where a naive softmax in
   float or double overflows.
 * nn.BCEWithLogitsLoss: logits up to +-100 (0 and the ends included),
   targets in [0, 1] (hard and soft); the loss and dloss/dlogits.
 * nn.MSELoss: predictions, targets, the loss and dloss/dpredictions.
 * The last valid step of each sequence, y[lengths - 1, arange(B)] (time
   major) or y[arange(B), lengths - 1] (batch first), and its backward from
   autograd for an upstream gradient dlast.

Tensors are written as exact C hex-float literals of float32 values (the
float64 results rounded once to float32, 2^-24 relative, far inside the
tests' 1e-6 tolerance); losses as exact hex doubles. The output is
byte-for-byte reproducible: fixed seeds, numpy's PCG64, one torch thread.
"""

import sys

import numpy as np
import torch

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)


def f32(rng, shape, low, high):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def t64(array):
    return torch.from_numpy(np.asarray(array, dtype=np.float64))


def short_hex(value):
    """float.hex() without the mantissa's trailing zeros: 0x1.8p+1, 0x1p-3."""
    text = value.hex()
    if "." not in text:
        return text
    mantissa, exponent = text.split("p")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa + "p" + exponent


def hex_floats(values):
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    return [short_hex(float(np.float32(v))) + "f" for v in flat]


def c_array(out, ctype, name, items, per_line=8):
    out.append("static const %s %s[%d] = {" % (ctype, name, len(items)))
    for k in range(0, len(items), per_line):
        out.append("    " + ", ".join(items[k:k + per_line]) + ",")
    out.append("};")


def float_array(out, name, values):
    c_array(out, "float", name, hex_floats(values))


def dense_cases(out):
    shapes = [("r1_i1_o1", 1, 1, 1), ("r5_i3_o4", 5, 3, 4), ("r1_i7_o2", 1, 7, 2),
              ("r3_i1_o5", 3, 1, 5), ("r13_i16_o10", 13, 16, 10), ("r9_i33_o1", 9, 33, 1)]
    rng = np.random.default_rng(1001)
    entries = []
    for name, rows, nin, nout in shapes:
        bound = 1.0 / np.sqrt(nin)
        W = f32(rng, (nout, nin), -bound, bound)
        b = f32(rng, (nout,), -bound, bound)
        x = f32(rng, (rows, nin), -2.0, 2.0)
        dz = f32(rng, (rows, nout), -1.0, 1.0)
        lin = torch.nn.Linear(nin, nout)
        with torch.no_grad():
            lin.weight.copy_(t64(W))
            lin.bias.copy_(t64(b))
        xt = t64(x).requires_grad_(True)
        z = lin(xt)
        z.backward(t64(dz))
        p = "dense_" + name
        float_array(out, p + "_W", W)
        float_array(out, p + "_b", b)
        float_array(out, p + "_x", x)
        float_array(out, p + "_dz", dz)
        float_array(out, p + "_z", z.detach().numpy())
        float_array(out, p + "_dx", xt.grad.numpy())
        float_array(out, p + "_dW", lin.weight.grad.numpy())
        float_array(out, p + "_db", lin.bias.grad.numpy())
        entries.append('    {"%s", %d, %d, %d, %s_W, %s_b, %s_x, %s_dz, %s_z, %s_dx, %s_dW, %s_db},'
                       % ((name, rows, nin, nout) + (p,) * 8))
    out.append("static const struct head_dense_case head_dense_cases[] = {")
    out.extend(entries)
    out.append("};")


def ce_cases(out):
    # name, rows, classes, logit bound, ignored rows
    specs = [("r6_c2", 6, 2, 3.0, [1, 4]), ("r5_c10_big80", 5, 10, 80.0, [3]),
             ("r4_c7_big1000", 4, 7, 1000.0, []), ("r3_c1", 3, 1, 5.0, [2]),
             ("r3_c1000", 3, 1000, 8.0, [1]), ("r8_c5", 8, 5, 2.0, [0, 1, 7])]
    rng = np.random.default_rng(2002)
    entries = []
    for name, rows, classes, bound, ignored in specs:
        logits = f32(rng, (rows, classes), -bound, bound)
        if classes >= 1000:
            # Multiples of 1/256: short exact literals keep the header small.
            logits = (np.round(logits * 256.0) / 256.0).astype(np.float32)
        if bound >= 80.0:
            # Exact extremes and a near-tie at the top of one row.
            logits[0, 0] = bound
            logits[0, classes - 1] = -bound
            logits[1, :2] = [bound, bound - 0.5]
        targets = rng.integers(0, classes, size=rows).astype(np.int32)
        for r in ignored:
            targets[r] = -100
        lt = t64(logits).requires_grad_(True)
        loss = torch.nn.CrossEntropyLoss(ignore_index=-100)(lt, torch.from_numpy(targets.astype(np.int64)))
        loss.backward()
        p = "ce_" + name
        float_array(out, p + "_logits", logits)
        c_array(out, "int32_t", p + "_targets", [str(int(t)) for t in targets], 12)
        float_array(out, p + "_dlogits", lt.grad.numpy())
        entries.append('    {"%s", %d, %d, -100, %s_logits, %s_targets, %s, %s_dlogits},'
                       % (name, rows, classes, p, p, short_hex(float(loss.item())), p))
    out.append("static const struct head_ce_case head_ce_cases[] = {")
    out.extend(entries)
    out.append("};")


def bce_cases(out):
    rng = np.random.default_rng(3003)
    entries = []
    specs = [("n1", 1), ("n24_big100", 24), ("n40", 40)]
    for name, count in specs:
        if name == "n1":
            logits = np.array([0.75], dtype=np.float32)
            targets = np.array([0.25], dtype=np.float32)
        elif name == "n24_big100":
            logits = f32(rng, (count,), -100.0, 100.0)
            logits[:6] = [100.0, -100.0, 0.0, 99.5, -99.5, 30.0]
            targets = f32(rng, (count,), 0.0, 1.0)
            targets[:8] = [1.0, 0.0, 0.5, 0.0, 1.0, 1.0, 0.0, 1.0]
        else:
            logits = f32(rng, (count,), -6.0, 6.0)
            targets = (rng.uniform(size=count) < 0.5).astype(np.float32)
        lt = t64(logits).requires_grad_(True)
        loss = torch.nn.BCEWithLogitsLoss()(lt, t64(targets))
        loss.backward()
        p = "bce_" + name
        float_array(out, p + "_logits", logits)
        float_array(out, p + "_targets", targets)
        float_array(out, p + "_dlogits", lt.grad.numpy())
        entries.append('    {"%s", %d, %s_logits, %s_targets, %s, %s_dlogits},'
                       % (name, count, p, p, short_hex(float(loss.item())), p))
    out.append("static const struct head_pointwise_case head_bce_cases[] = {")
    out.extend(entries)
    out.append("};")


def mse_cases(out):
    rng = np.random.default_rng(4004)
    entries = []
    for name, count, scale in [("n1", 1, 1.0), ("n17", 17, 3.0), ("n64_big", 64, 1000.0)]:
        pred = f32(rng, (count,), -scale, scale)
        targets = f32(rng, (count,), -scale, scale)
        pt = t64(pred).requires_grad_(True)
        loss = torch.nn.MSELoss()(pt, t64(targets))
        loss.backward()
        p = "mse_" + name
        float_array(out, p + "_predictions", pred)
        float_array(out, p + "_targets", targets)
        float_array(out, p + "_dpredictions", pt.grad.numpy())
        entries.append('    {"%s", %d, %s_predictions, %s_targets, %s, %s_dpredictions},'
                       % (name, count, p, p, short_hex(float(loss.item())), p))
    out.append("static const struct head_pointwise_case head_mse_cases[] = {")
    out.extend(entries)
    out.append("};")


def last_cases(out):
    rng = np.random.default_rng(5005)
    entries = []
    specs = [("t5_b4_f3_tm", 5, 4, 3, False, [5, 1, 3, 2]),
             ("t5_b4_f3_bf", 5, 4, 3, True, [5, 1, 3, 2]),
             ("t1_b1_f1", 1, 1, 1, False, None),
             ("t6_b3_f2_bf_full", 6, 3, 2, True, None),
             ("t7_b2_f5_tm_full", 7, 2, 5, False, None),
             ("t4_b6_f1_tm", 4, 6, 1, False, [1, 4, 2, 4, 3, 1])]
    for name, T, B, F, batch_first, lengths in specs:
        shape = (B, T, F) if batch_first else (T, B, F)
        y = f32(rng, shape, -1.0, 1.0)
        dlast = f32(rng, (B, F), -1.0, 1.0)
        yt = t64(y).requires_grad_(True)
        steps = torch.tensor(lengths if lengths is not None else [T] * B) - 1
        batch = torch.arange(B)
        last = yt[batch, steps] if batch_first else yt[steps, batch]
        last.backward(t64(dlast))
        p = "last_" + name
        float_array(out, p + "_y", y)
        float_array(out, p + "_dlast", dlast)
        float_array(out, p + "_last", last.detach().numpy())
        float_array(out, p + "_dy", yt.grad.numpy())
        if lengths is not None:
            c_array(out, "size_t", p + "_lengths", [str(n) for n in lengths], 12)
            len_name = p + "_lengths"
        else:
            len_name = "NULL"
        entries.append('    {"%s", %d, %d, %d, %d, %s, %s_y, %s_dlast, %s_last, %s_dy},'
                       % (name, T, B, F, int(batch_first), len_name, p, p, p, p))
    out.append("static const struct head_last_case head_last_cases[] = {")
    out.extend(entries)
    out.append("};")


PREAMBLE = """/*
 * Golden data for tests/parity/test_head.c, from torch %s (float64 on float32 inputs).
 * Generated by tests/parity/gen_head_golden.py; do not edit, rerun it:
 *     /usr/bin/python3 tests/parity/gen_head_golden.py tests/parity/golden/head/head_golden.h
 */
#ifndef HEAD_GOLDEN_H
#define HEAD_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

/* nn.Linear: z = x W^T + b and autograd's dx, dW, db for upstream dz. */
struct head_dense_case {
    const char *name;
    size_t rows, in_features, out_features;
    const float *W, *b, *x, *dz; /* [out][in], [out], [rows][in], [rows][out] */
    const float *z, *dx, *dW, *db;
};

/* nn.CrossEntropyLoss(ignore_index): mean over the rows not ignored. */
struct head_ce_case {
    const char *name;
    size_t rows, classes;
    int32_t ignore_index;
    const float *logits;    /* [rows][classes] */
    const int32_t *targets; /* [rows] */
    double loss;
    const float *dlogits;   /* [rows][classes] */
};

/* nn.BCEWithLogitsLoss and nn.MSELoss: mean over count elements. */
struct head_pointwise_case {
    const char *name;
    size_t count;
    const float *inputs, *targets;
    double loss;
    const float *dinputs;
};

/* The last valid step: y[lengths - 1, b] (time major) or y[b, lengths - 1]. */
struct head_last_case {
    const char *name;
    size_t seq_len, batch, features;
    int batch_first;
    const size_t *lengths; /* NULL: every sequence runs seq_len steps */
    const float *y, *dlast, *last, *dy;
};
"""


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_head_golden.py OUTPUT.h")
    out = [PREAMBLE % torch.__version__]
    dense_cases(out)
    ce_cases(out)
    bce_cases(out)
    mse_cases(out)
    last_cases(out)
    out.append("")
    out.append("#endif /* HEAD_GOLDEN_H */")
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
