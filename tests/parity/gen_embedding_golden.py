#!/usr/bin/python3
"""Generate tests/parity/golden/embedding/embedding_golden.h, the PyTorch golden
data that tests/parity/test_embedding.c compares liblstm's embedding layer
(include/lstm/embedding.h) against.

Usage (Debian's python3 with python3-torch and python3-numpy, not a venv):

    /usr/bin/python3 tests/parity/gen_embedding_golden.py \\
        tests/parity/golden/embedding/embedding_golden.h

What is recorded:

 * Forward and backward, torch in float64 on float32 inputs: nn.Embedding
   (V, E, padding_idx) with the weights W, the ids (repeated ids, the
   padding id, a negative padding_idx, a vocabulary of one, ids that are
   all the padding id), an upstream gradient dout; the output W[ids] and
   autograd's dense weight gradient (repeated ids summed, nothing in the
   padding row). The padding row of W is not zero in some cases: forward
   gives it as it is.
 * Training, torch in float32 as torch.optim runs: an nn.Embedding
   (sparse=False, its default) from weights W0 (padding row zero, as
   nn.Embedding makes it, except in the AdamW case, where weight decay
   moves it), STEPS steps of
       loss = F.mse_loss(emb(ids_t), target_t);  backward;  optimizer.step()
   with torch.optim.SGD (momentum, and Nesterov with weight decay), Adam
   and AdamW (foreach=False, the single-tensor path). Some rows are used in
   early steps only and some never: momentum and Adam's moments keep moving
   the first, weight decay moves every row. Recorded: each step's loss
   (before the step) and the weights after every step, and the options read
   back from the optimizer's param group.
 * Lazy training (LSTM_OPTIM_LAZY_ROWS), torch in float32: the same loop on
   an nn.Embedding(sparse=True) with torch.optim.SparseAdam and with
   torch.optim.SGD (no momentum, no weight decay: the lazy SGD liblstm
   accepts), over LAZY_STEPS batches that leave rows untouched in some
   steps, repeat ids, use the padding id, and in one step touch nothing but
   the padding row (an empty sparse gradient: SparseAdam's step count still
   moves). Recorded: the weights after every step; the generator checks
   that rows outside a step's sparse gradient kept their bits, the padding
   row included. The case "sparse_adam" has the options of the dense case
   "adam" (lr, betas, eps), so that one optimizer training a lazy and a
   dense embedding can be checked against torch's SparseAdam + Adam pair.

Tensors are exact C hex-float literals of float32 values (float64 results
rounded once to float32). The output is byte-for-byte reproducible: fixed
seeds, numpy's PCG64, one torch thread.
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)

STEPS = 5


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
    out = []
    for v in flat:
        value = float(np.float32(v))
        assert np.isfinite(value)
        out.append(short_hex(value) + "f")
    return out


def c_array(out, ctype, name, items, per_line=8):
    out.append("static const %s %s[%d] = {" % (ctype, name, len(items)))
    for k in range(0, len(items), per_line):
        out.append("    " + ", ".join(items[k:k + per_line]) + ",")
    out.append("};")


def float_array(out, name, values):
    c_array(out, "float", name, hex_floats(values))


def id_array(out, name, ids):
    c_array(out, "int64_t", name, [str(int(i)) for i in np.asarray(ids).reshape(-1)], 16)


def f32(rng, shape, low, high):
    return rng.uniform(low, high, size=shape).astype(np.float32)


# ---- forward and backward ------------------------------------------------------

# name, V, E, padding_idx (None: no padding row), ids (a list, or a count of
# random ids), nonzero padding row in W
LOOKUPS = [
    ("v10_e4_pad0", 10, 4, 0, [0, 3, 3, 9, 0, 1, 3, 7, 0, 2, 9, 3], True),
    ("v7_e3_padneg2", 7, 3, -2, [5, 1, 5, 6, 0, 5, 2, 1, 4], False),
    ("v5_e1_nopad", 5, 1, None, [4, 4, 0, 2, 4, 1, 1, 3, 0, 4, 2], False),
    ("v1_e6_nopad", 1, 6, None, [0, 0, 0, 0], False),
    ("v3_e2_pad1_all_padding", 3, 2, 1, [1, 1, 1, 1, 1], True),
    ("v50_e17_pad49", 50, 17, 49, 40, False),
]


def lookup_cases(out):
    rng = np.random.default_rng(6006)
    entries = []
    for name, V, E, padding_idx, ids, padding_row_set in LOOKUPS:
        if isinstance(ids, int):
            ids = rng.integers(0, V, size=ids)
            ids[[3, 17, 30]] = V - 1  # the padding id, at chosen places
            ids[[5, 6, 20]] = ids[4]  # repeats
        ids = np.asarray(ids, dtype=np.int64)
        W = f32(rng, (V, E), -1.0, 1.0)
        pad_row = None if padding_idx is None else padding_idx % V
        if pad_row is not None and not padding_row_set:
            W[pad_row] = 0.0
        dout = f32(rng, (len(ids), E), -1.0, 1.0)
        emb = torch.nn.Embedding(V, E, padding_idx=padding_idx, dtype=torch.float64)
        with torch.no_grad():
            emb.weight.copy_(torch.from_numpy(W.astype(np.float64)))
        result = emb(torch.from_numpy(ids))
        result.backward(torch.from_numpy(dout.astype(np.float64)))
        if pad_row is not None:
            assert not emb.weight.grad[pad_row].any()
        p = "lookup_" + name
        float_array(out, p + "_W", W)
        id_array(out, p + "_ids", ids)
        float_array(out, p + "_dout", dout)
        float_array(out, p + "_out", result.detach().numpy())
        float_array(out, p + "_dW", emb.weight.grad.numpy())
        entries.append('    {"%s", %d, %d, %d, %d, %d, %s_W, %s_ids, %s_dout, %s_out, %s_dW},'
                       % ((name, V, E, int(padding_idx is not None),
                           padding_idx if padding_idx is not None else 0, len(ids)) + (p,) * 5))
    out.append("static const struct embedding_lookup_case embedding_lookup_cases[] = {")
    out.extend(entries)
    out.append("};")


# ---- training with torch.optim ---------------------------------------------------

TRAIN_V, TRAIN_E = 12, 3
# Rows 9, 10 and 11 are never used; 4 and 5 only in early steps; 2 is the
# padding id of the cases that have one.
STEP_IDS = [
    [0, 1, 2, 3, 3, 4],
    [5, 6, 0, 2, 7, 7],
    [1, 1, 1, 8, 2, 0],
    [3, 5, 2, 2, 6, 4],
    [0, 8, 8, 8, 7, 1],
]
assert len(STEP_IDS) == STEPS

KIND = {"SGD": "LSTM_OPTIM_SGD", "Adam": "LSTM_OPTIM_ADAM", "AdamW": "LSTM_OPTIM_ADAMW"}
CLASS = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}

# name, kind, options, padding_idx, nonzero padding row in W0
TRAIN_CASES = [
    ("sgd_momentum", "SGD", dict(lr=0.1, momentum=0.9), 2, False),
    ("sgd_nesterov_weight_decay", "SGD",
     dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05), None, False),
    ("adam", "Adam", dict(lr=0.05), -10, False),
    ("adam_no_padding", "Adam", dict(lr=0.05, betas=(0.8, 0.99)), None, False),
    ("adamw_padding_row_decays", "AdamW", dict(lr=0.05, weight_decay=0.5), 2, True),
]


def train_cases(out):
    rng = np.random.default_rng(7007)
    W0 = rng.standard_normal((TRAIN_V, TRAIN_E)).astype(np.float32)
    targets = [rng.standard_normal((len(ids), TRAIN_E)).astype(np.float32) for ids in STEP_IDS]
    count = len(STEP_IDS[0])
    assert all(len(ids) == count for ids in STEP_IDS)
    id_array(out, "train_ids", STEP_IDS)
    float_array(out, "train_targets", np.stack(targets))
    entries = []
    for name, kind, options, padding_idx, padding_row_set in TRAIN_CASES:
        W = W0.copy()
        if padding_idx is not None and not padding_row_set:
            W[padding_idx % TRAIN_V] = 0.0
        emb = torch.nn.Embedding(TRAIN_V, TRAIN_E, padding_idx=padding_idx)
        assert emb.weight.dtype == torch.float32 and not emb.sparse
        with torch.no_grad():
            emb.weight.copy_(torch.from_numpy(W))
        optimizer = CLASS[kind](emb.parameters(), foreach=False, **options)
        group = optimizer.param_groups[0]
        losses, trajectory = [], []
        for t in range(STEPS):
            optimizer.zero_grad()
            loss = F.mse_loss(emb(torch.tensor(STEP_IDS[t])), torch.from_numpy(targets[t]))
            loss.backward()
            optimizer.step()
            losses.append(float(loss.item()))
            trajectory.append(emb.weight.detach().numpy().copy())
        if padding_idx is not None and not padding_row_set:
            assert not trajectory[-1][padding_idx % TRAIN_V].any()
        # Rows never used move by weight decay alone; row 4, used in steps 0
        # and 3 only, still moves in step 4 (momentum, Adam's moments).
        decays = group["weight_decay"] != 0.0
        for row in (9, 10, 11):
            assert (trajectory[-1][row] != W[row]).any() == decays
        assert 4 not in STEP_IDS[4] and (trajectory[4][4] != trajectory[3][4]).all()
        p = "train_" + name
        float_array(out, p + "_W0", W)
        float_array(out, p + "_losses", losses)
        float_array(out, p + "_W", np.stack(trajectory))
        beta1, beta2 = group.get("betas", (0.0, 0.0))
        flags = "LSTM_OPTIM_NESTEROV" if group.get("nesterov") else "0"
        entries.append('    {"%s", %s, %s, %s, %s, %s, %s, %s, %s, %d, %d, %s_W0, %s_losses, %s_W},'
                       % (name, KIND[kind], flags, short_hex(float(group["lr"])),
                          short_hex(float(group.get("momentum", 0.0))),
                          short_hex(float(group["weight_decay"])), short_hex(float(beta1)),
                          short_hex(float(beta2)), short_hex(float(group.get("eps", 0.0))),
                          int(padding_idx is not None),
                          padding_idx if padding_idx is not None else 0, p, p, p))
    out.append("static const struct embedding_train_case embedding_train_cases[] = {")
    out.extend(entries)
    out.append("};")


PREAMBLE = """/*
 * Golden data for tests/parity/test_embedding.c, from torch %s.
 * Generated by tests/parity/gen_embedding_golden.py; do not edit, rerun it:
 *     /usr/bin/python3 tests/parity/gen_embedding_golden.py \\
 *         tests/parity/golden/embedding/embedding_golden.h
 */
#ifndef EMBEDDING_GOLDEN_H
#define EMBEDDING_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#include "lstm/optim.h"

/* nn.Embedding(V, E, padding_idx) in float64: out = W[ids] and autograd's
 * dW for upstream dout. */
struct embedding_lookup_case {
    const char *name;
    size_t num_embeddings, embedding_dim;
    int has_padding;     /* padding_idx given (else None) */
    int64_t padding_idx; /* as given to torch, maybe negative */
    size_t count;
    const float *W;      /* [V][E] */
    const int64_t *ids;  /* [count] */
    const float *dout;   /* [count][E] */
    const float *out;    /* [count][E] */
    const float *dW;     /* [V][E] */
};

/* Training steps of an nn.Embedding (float32) with torch.optim: at step t,
 * loss = mse_loss(emb(train_ids[t]), train_targets[t]), backward, step. */
enum { EMBEDDING_TRAIN_STEPS = %d, EMBEDDING_TRAIN_V = %d, EMBEDDING_TRAIN_E = %d,
       EMBEDDING_TRAIN_COUNT = %d };

struct embedding_train_case {
    const char *name;
    lstm_optim_kind kind;
    uint32_t flags;
    double lr, momentum, weight_decay, beta1, beta2, eps; /* from torch's param group */
    int has_padding;
    int64_t padding_idx;
    const float *W0;     /* [V][E] before the first step */
    const float *losses; /* [STEPS], each before its step */
    const float *W;      /* [STEPS][V][E], after each step */
};

/* Lazy training: an nn.Embedding(sparse=True) from lazy_W0 (V, E as above),
 * at step t loss = mse_loss(emb(lazy_ids[t]), lazy_targets[t]), zero_grad,
 * backward, step, with torch.optim.SparseAdam (kind Adam) or SGD. */
enum { EMBEDDING_LAZY_STEPS = %d };

struct embedding_lazy_case {
    const char *name;
    lstm_optim_kind kind;
    uint32_t flags; /* LSTM_OPTIM_MAXIMIZE or 0 */
    double lr, beta1, beta2, eps;
    int has_padding;
    int64_t padding_idx;
    const float *W; /* [LAZY_STEPS][V][E], after each step */
};

"""


# ---- lazy training: sparse gradients with SparseAdam and SGD ----------------------

# Row 2 is the padding id of the cases that have one; step 3 touches nothing
# but it. Rows 9, 10 and 11 are never used; 4 and 5 in some steps only.
LAZY_STEP_IDS = [
    [0, 1, 2, 3, 3, 4],
    [5, 6, 0, 2, 7, 7],
    [1, 1, 1, 8, 2, 0],
    [2, 2, 2, 2, 2, 2],
    [3, 5, 2, 2, 6, 4],
    [0, 8, 8, 8, 7, 1],
]
LAZY_STEPS = len(LAZY_STEP_IDS)

LAZY_CLASS = {"SparseAdam": torch.optim.SparseAdam, "SGD": torch.optim.SGD}
LAZY_KIND = {"SparseAdam": "LSTM_OPTIM_ADAM", "SGD": "LSTM_OPTIM_SGD"}

# name, optimizer, options, padding_idx
LAZY_CASES = [
    ("sparse_adam", "SparseAdam", dict(lr=0.05), -10),
    ("sparse_adam_maximize", "SparseAdam", dict(lr=0.03, betas=(0.8, 0.99), eps=1e-6,
                                                maximize=True), None),
    ("sparse_sgd", "SGD", dict(lr=0.1), 2),
    ("sparse_sgd_maximize", "SGD", dict(lr=0.2, maximize=True), None),
]


def lazy_cases(out):
    rng = np.random.default_rng(8008)
    W0 = rng.standard_normal((TRAIN_V, TRAIN_E)).astype(np.float32)
    targets = [rng.standard_normal((len(ids), TRAIN_E)).astype(np.float32)
               for ids in LAZY_STEP_IDS]
    assert all(len(ids) == len(LAZY_STEP_IDS[0]) for ids in LAZY_STEP_IDS)
    id_array(out, "lazy_ids", LAZY_STEP_IDS)
    float_array(out, "lazy_targets", np.stack(targets))
    float_array(out, "lazy_W0", W0)
    entries = []
    for name, kind, options, padding_idx in LAZY_CASES:
        emb = torch.nn.Embedding(TRAIN_V, TRAIN_E, padding_idx=padding_idx, sparse=True)
        with torch.no_grad():
            emb.weight.copy_(torch.from_numpy(W0))  # the padding row is not zero
        optimizer = LAZY_CLASS[kind](emb.parameters(), **options)
        group = optimizer.param_groups[0]
        pad_row = None if padding_idx is None else padding_idx % TRAIN_V
        trajectory = []
        for t in range(LAZY_STEPS):
            optimizer.zero_grad()
            before = emb.weight.detach().numpy().copy()
            loss = F.mse_loss(emb(torch.tensor(LAZY_STEP_IDS[t])), torch.from_numpy(targets[t]))
            loss.backward()
            assert emb.weight.grad.is_sparse
            touched = set(emb.weight.grad.coalesce().indices()[0].tolist())
            assert touched == set(LAZY_STEP_IDS[t]) - {pad_row}
            optimizer.step()
            after = emb.weight.detach().numpy().copy()
            for row in range(TRAIN_V):
                if row not in touched:
                    assert (after[row] == before[row]).all(), (name, t, row)
            trajectory.append(after)
        if kind == "SparseAdam":
            assert optimizer.state[emb.weight]["step"] == LAZY_STEPS
        p = "lazy_" + name
        float_array(out, p + "_W", np.stack(trajectory))
        beta1, beta2 = group.get("betas", (0.0, 0.0))
        flags = "LSTM_OPTIM_MAXIMIZE" if group.get("maximize") else "0"
        entries.append('    {"%s", %s, %s, %s, %s, %s, %s, %d, %d, %s_W},'
                       % (name, LAZY_KIND[kind], flags, short_hex(float(group["lr"])),
                          short_hex(float(beta1)), short_hex(float(beta2)),
                          short_hex(float(group.get("eps", 0.0))), int(padding_idx is not None),
                          padding_idx if padding_idx is not None else 0, p))
    out.append("static const struct embedding_lazy_case embedding_lazy_cases[] = {")
    out.extend(entries)
    out.append("};")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_embedding_golden.py OUTPUT.h")
    out = [PREAMBLE % (torch.__version__, STEPS, TRAIN_V, TRAIN_E, len(STEP_IDS[0]), LAZY_STEPS)]
    lookup_cases(out)
    out.append("")
    train_cases(out)
    out.append("")
    lazy_cases(out)
    out.append("")
    out.append("#endif /* EMBEDDING_GOLDEN_H */")
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
