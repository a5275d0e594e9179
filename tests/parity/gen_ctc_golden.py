#!/usr/bin/python3
"""Generate tests/parity/golden/ctc/ctc_golden.h, the PyTorch golden data that
tests/parity/test_ctc_parity.c compares liblstm's CTC loss (lstm/ctc.h) against.

Usage (Debian's python3 with python3-torch and python3-numpy, not a venv):

    /usr/bin/python3 tests/parity/gen_ctc_golden.py tests/parity/golden/ctc/ctc_golden.h

What is recorded, for each case: float32 logits z ([T][B][C], or [B][T][C]
batch first), the labels one sequence after another, the input and label
lengths, blank, reduction and zero_infinity; then, from
torch.nn.functional.ctc_loss(z.log_softmax(2), ...) computed by torch in
float64 on those exact float32 values:
 * the per-sequence losses (reduction='none', +inf for a label that has no
   alignment, 0 for it with zero_infinity),
 * the loss reduced as the case says ('mean' or 'sum'),
 * its gradient with respect to z from autograd. Where torch gives NaN (the
   rows of a sequence without an alignment, without zero_infinity) the
   file holds 0, liblstm's documented value; the generator checks that
   NaN appears in those rows and nowhere else.

The cases cover mixed input lengths, label lengths 0 and 1, repeated labels
("1 1", which need a blank between), a blank other than 0, both reductions,
zero_infinity with an impossible case, batch-first layout, T = 400 with
logits up to +-12 (log p near -1700, far below
double's range in linear space: the log space is needed) and C = 12.

Tensors are written as exact C hex-float literals of float32 values (the
float64 results rounded once to float32); losses as exact hex doubles. The
output is byte-for-byte reproducible: fixed seeds, numpy's PCG64, one torch
thread.
"""

import sys

import numpy as np
import torch

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)


def short_hex(value):
    """float.hex() without the mantissa's trailing zeros: 0x1.8p+1, 0x1p-3."""
    if value == float("inf"):
        return "INFINITY"
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
    out.append("static const %s %s[%d] = {" % (ctype, name, max(len(items), 1)))
    if not items:
        items = ["0"]
    for k in range(0, len(items), per_line):
        out.append("    " + ", ".join(items[k:k + per_line]) + ",")
    out.append("};")


def random_labels(rng, length, classes, blank):
    choices = [c for c in range(classes) if c != blank]
    return [int(rng.choice(choices)) for _ in range(length)]


# name, T, B, C, blank, reduction, zero_infinity, batch_first, bound of the
# logits, input lengths (None: all T), labels per sequence (None: random of
# the given length)
SPECS = [
    ("t1_b1_c2", 1, 1, 2, 0, "mean", False, False, 2.0, None, [[1]]),
    ("t6_b3_c5_mean", 6, 3, 5, 0, "mean", False, False, 3.0, [6, 4, 5],
     [[1, 1], [], [2, 3, 2]]),
    ("t7_b4_c6_sum_blank3", 7, 4, 6, 3, "sum", False, False, 3.0, [7, 3, 5, 1],
     [[1, 1, 5], [4], [0, 0], []]),
    ("t9_b3_c12_bf_mean", 9, 3, 12, 0, "mean", False, True, 4.0, [9, 6, 8],
     [[5, 5, 5], [11, 1, 2, 3], [7]]),
    ("t8_b3_c4_blank_last_sum_bf", 8, 3, 4, 3, "sum", False, True, 2.0, None,
     [[0, 1, 2, 1, 0], [2, 2, 2, 2], []]),
    ("t5_b3_c5_impossible_mean", 5, 3, 5, 0, "mean", False, False, 2.0, [5, 2, 5],
     [[1, 2], [3, 3], [1, 2, 3, 4, 4, 1]]),
    ("t5_b3_c5_zero_inf_mean", 5, 3, 5, 0, "mean", True, False, 2.0, [5, 2, 5],
     [[1, 2], [3, 3], [1, 2, 3, 4, 4, 1]]),
    ("t5_b2_c5_zero_inf_sum_bf", 5, 2, 5, 2, "sum", True, True, 2.0, [3, 5],
     [[1, 1, 1], [4, 0]]),
    ("t400_b2_c12_mean", 400, 2, 12, 0, "mean", False, False, 8.0, [400, 333],
     [60, 100]),
    ("t400_b1_c6_sum_bf", 400, 1, 6, 5, "sum", False, True, 12.0, None, [150]),
]


def ctc_case(out, spec, rng):
    name, T, B, C, blank, reduction, zero_infinity, batch_first, bound, lengths, labels = spec
    labels = [random_labels(rng, l, C, blank) if isinstance(l, int) else l for l in labels]
    if lengths is None:
        lengths = [T] * B
    shape = (B, T, C) if batch_first else (T, B, C)
    # Multiples of 1/64: short exact literals keep the header small.
    z = (np.round(rng.uniform(-bound, bound, size=shape) * 64.0) / 64.0).astype(np.float32)
    flat = [v for seq in labels for v in seq]
    label_lengths = [len(seq) for seq in labels]

    def run(red):
        zt = torch.from_numpy(z.astype(np.float64)).requires_grad_(True)
        zt_tm = zt.transpose(0, 1) if batch_first else zt
        loss = torch.nn.functional.ctc_loss(
            zt_tm.log_softmax(2), torch.tensor(flat, dtype=torch.long),
            torch.tensor(lengths, dtype=torch.long), torch.tensor(label_lengths, dtype=torch.long),
            blank=blank, reduction=red, zero_infinity=zero_infinity)
        return zt, loss

    _, losses = run("none")
    zt, loss = run(reduction)
    loss.backward()
    grad = zt.grad.numpy().copy()
    # NaN only in the rows of a sequence without an alignment, without
    # zero_infinity; liblstm gives 0 there.
    expected_nan = np.zeros(shape, dtype=bool)
    for b in range(B):
        if not zero_infinity and not np.isfinite(losses[b].item()):
            if batch_first:
                expected_nan[b, :lengths[b]] = True
            else:
                expected_nan[:lengths[b], b] = True
    assert np.array_equal(np.isnan(grad), expected_nan), name
    grad[expected_nan] = 0.0

    p = "ctc_" + name
    c_array(out, "float", p + "_logits", hex_floats(z))
    c_array(out, "int32_t", p + "_labels", [str(v) for v in flat], 12)
    c_array(out, "size_t", p + "_lengths", [str(n) for n in lengths], 12)
    c_array(out, "size_t", p + "_label_lengths", [str(n) for n in label_lengths], 12)
    c_array(out, "double", p + "_losses", [short_hex(float(v)) for v in losses.detach().numpy()], 4)
    c_array(out, "float", p + "_grad", hex_floats(grad))
    return ('    {"%s", %d, %d, %d, %d, %s, %d, %d, %s_logits, %s_labels, %s_lengths, '
            '%s_label_lengths, %s, %s_losses, %s_grad},'
            % (name, T, B, C, blank, "LSTM_CTC_MEAN" if reduction == "mean" else "LSTM_CTC_SUM",
               int(zero_infinity), int(batch_first), p, p, p, p, short_hex(float(loss.item())), p,
               p))


PREAMBLE = """/*
 * Golden data for tests/parity/test_ctc_parity.c, from torch %s (float64 on float32 inputs).
 * Generated by tests/parity/gen_ctc_golden.py; do not edit, rerun it:
 *     /usr/bin/python3 tests/parity/gen_ctc_golden.py tests/parity/golden/ctc/ctc_golden.h
 */
#ifndef CTC_GOLDEN_H
#define CTC_GOLDEN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "lstm/ctc.h"

/* F.ctc_loss(z.log_softmax(2), labels, lengths, label_lengths, blank,
 * reduction, zero_infinity) and its gradient with respect to z (0 where
 * torch's is NaN: the rows of a sequence without an alignment). */
struct ctc_case {
    const char *name;
    size_t steps, batch, classes, blank;
    uint32_t reduction;
    int zero_infinity, batch_first;
    const float *logits;         /* [T][B][C], or [B][T][C] batch first */
    const int32_t *labels;       /* the label_lengths' sum */
    const size_t *lengths;       /* [B] */
    const size_t *label_lengths; /* [B] */
    double loss;                 /* reduced */
    const double *losses;        /* [B], reduction='none' */
    const float *grad;           /* as logits */
};
"""


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_ctc_golden.py OUTPUT.h")
    out = [PREAMBLE % torch.__version__]
    rng = np.random.default_rng(2406)
    entries = [ctc_case(out, spec, rng) for spec in SPECS]
    out.append("static const struct ctc_case ctc_cases[] = {")
    out.extend(entries)
    out.append("};")
    out.append("")
    out.append("#endif /* CTC_GOLDEN_H */")
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
