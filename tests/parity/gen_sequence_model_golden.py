#!/usr/bin/python3
"""Generate tests/parity/golden/sequence_model/sequence_model_golden.h, the
PyTorch golden data that tests/parity/test_sequence_model.c compares
liblstm's whole sequence models (include/lstm/network.h) against.

Usage (Debian's python3 with python3-torch and python3-numpy, not a venv):

    /usr/bin/python3 tests/parity/gen_sequence_model_golden.py \\
        tests/parity/golden/sequence_model/sequence_model_golden.h

Three configurations, each an nn.Module of nn.Embedding / nn.LSTM /
nn.Linear and a loss, on a padded batch of mixed lengths:

 a. tokens -> nn.Embedding -> 2-layer bidirectional nn.LSTM, packed
    (pack_padded_sequence, enforce_sorted=False) -> last-step head on
    torch.cat((h_n[-2], h_n[-1]), 1) -> nn.CrossEntropyLoss; time-major.
 b. tokens -> nn.Embedding(padding_idx=0) -> 1-layer nn.LSTM, packed ->
    every-step head -> cross-entropy over the valid steps whose target is
    not negative (a language model; some targets -1); time-major.
 c. float features -> 2-layer nn.LSTM with proj_size, batch_first, packed
    -> every-step head -> nn.MSELoss over the valid steps.

The loss over masked rows is PyTorch's loss (reduction "mean") on the rows
selected as valid. Positions past a sequence's end hold garbage in the
inputs (token ids outside the vocabulary, features of 1e4): the library
must never read them.

Recorded per configuration: the float32 weights (liblstm's layout: W =
[weight_hh | weight_ih], b = bias_ih + bias_hh with bias_hh zero,
W_hr = weight_hr), the inputs, the targets; from torch in float64 on those
float32 values: the output (zero past each sequence's end), the loss and
every parameter's gradient; then STEPS steps of torch.optim (SGD with
momentum for a, Adam for b and c; float64, bias_hh frozen at zero) on the
same batch: the loss before each step and every parameter after the last.

Tensors are exact C hex-float literals of float32 values (float64 results
rounded once to float32); losses exact hex doubles. The output is
byte-for-byte reproducible: fixed seeds, numpy's PCG64, one torch thread.
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

STEPS = 3
GARBAGE_FEATURE = 1.0e4


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


def f32(rng, shape, low, high):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def t64(array):
    return torch.from_numpy(np.asarray(array, dtype=np.float64).copy())


class Case:
    def __init__(self, name, seed, tokens, V, E, padding_idx, I, H, L, bidirectional, P,
                 head, O, loss, batch_first, T, B, lengths, optim):
        self.__dict__.update(locals())
        del self.__dict__["self"]


CASES = [
    Case("a_bilstm_last_ce", 11, True, 11, 5, None, 5, 6, 2, True, 0, "last", 4, "ce", False,
         7, 4, [7, 3, 5, 1], ("sgd", 0.1, 0.9)),
    Case("b_lm_every_ce", 12, True, 9, 4, 0, 4, 5, 1, False, 0, "every", 9, "ce", False,
         6, 3, [6, 4, 2], ("adam", 0.01, 0.0)),
    Case("c_proj_every_mse", 13, False, 0, 0, None, 3, 6, 2, False, 4, "every", 2, "mse", True,
         5, 3, [5, 2, 4], ("adam", 0.02, 0.0)),
]


def valid_mask(c):
    """[T][B] (or [B][T]) booleans: the position is within its sequence."""
    mask = np.zeros((c.T, c.B), dtype=bool)
    for b, n in enumerate(c.lengths):
        mask[:n, b] = True
    return mask.T.copy() if c.batch_first else mask


class SequenceModel(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        if c.tokens:
            self.emb = torch.nn.Embedding(c.V, c.E, padding_idx=c.padding_idx)
        self.lstm = torch.nn.LSTM(c.I, c.H, num_layers=c.L, bidirectional=c.bidirectional,
                                  proj_size=c.P, batch_first=c.batch_first)
        D = 2 if c.bidirectional else 1
        R = c.P if c.P else c.H
        self.head = torch.nn.Linear(D * R, c.O)

    def blocks(self):
        """(layer, direction, suffix) of every LSTM block, liblstm's order."""
        D = 2 if self.c.bidirectional else 1
        for layer in range(self.c.L):
            for d in range(D):
                yield layer, d, "_l%d%s" % (layer, "_reverse" if d else "")

    def forward(self, inputs):
        c = self.c
        if c.tokens:
            ids = torch.from_numpy(np.where(valid_mask(c), inputs, 0))
            x = self.emb(ids)
        else:
            x = inputs
        packed = pack_padded_sequence(x, torch.tensor(c.lengths), batch_first=c.batch_first,
                                      enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        if c.head == "last":
            last = torch.cat((h_n[-2], h_n[-1]), 1) if c.bidirectional else h_n[-1]
            return self.head(last)
        y, _ = pad_packed_sequence(out, batch_first=c.batch_first, total_length=c.T)
        z = self.head(y)
        return z * t64(valid_mask(c)).unsqueeze(-1)  # zero past each sequence's end

    def loss(self, z, targets):
        c = self.c
        if c.head == "last":
            return F.cross_entropy(z, torch.from_numpy(targets).long())
        keep = torch.from_numpy(valid_mask(c).reshape(-1))
        rows = z.reshape(-1, c.O)[keep]
        if c.loss == "ce":
            classes = torch.from_numpy(targets.reshape(-1)[keep.numpy()]).long()
            return F.cross_entropy(rows, classes, ignore_index=-1)
        return F.mse_loss(rows, t64(targets).reshape(-1, c.O)[keep])


def lstm_tensors(model, params):
    """liblstm's tensors, block by block: W, b and W_hr, from named params
    (value or gradient)."""
    out = []
    for _, _, sfx in model.blocks():
        out.append(np.concatenate([params["weight_hh" + sfx], params["weight_ih" + sfx]], axis=1))
        out.append(params["bias_ih" + sfx])
        if model.c.P:
            out.append(params["weight_hr" + sfx])
    return np.concatenate([np.asarray(t).reshape(-1) for t in out])


def snapshot(model, grads):
    """(embedding, lstm, head) flat float64 arrays of the values or gradients."""
    def get(p):
        t = p.grad if grads else p
        return t.detach().numpy().copy()
    named = {n: get(p) for n, p in model.lstm.named_parameters() if not n.startswith("bias_hh")}
    emb = get(model.emb.weight).reshape(-1) if model.c.tokens else np.zeros(0)
    head = np.concatenate([get(model.head.weight).reshape(-1), get(model.head.bias)])
    return emb, lstm_tensors(model, named), head


def make_case(c):
    rng = np.random.default_rng(c.seed)
    model = SequenceModel(c)
    D = 2 if c.bidirectional else 1
    R = c.P if c.P else c.H
    mask = valid_mask(c)
    with torch.no_grad():
        if c.tokens:
            W = rng.standard_normal((c.V, c.E)).astype(np.float32)
            if c.padding_idx is not None:
                W[c.padding_idx] = 0.0
            model.emb.weight.copy_(t64(W))
        k = 1.0 / np.sqrt(c.H)
        for name, p in model.lstm.named_parameters():
            if name.startswith("bias_hh"):
                p.zero_()
                p.requires_grad_(False)
            else:
                p.copy_(t64(f32(rng, tuple(p.shape), -k, k)))
        k = 1.0 / np.sqrt(D * R)
        model.head.weight.copy_(t64(f32(rng, (c.O, D * R), -k, k)))
        model.head.bias.copy_(t64(f32(rng, (c.O,), -k, k)))

    if c.tokens:
        inputs = rng.integers(0, c.V, size=mask.shape).astype(np.int64)
        if c.padding_idx is not None:  # a few padding ids within the sequences
            inputs.reshape(-1)[[1, 5]] = c.padding_idx
        garbage = np.array([c.V, -1, 1 << 40, -(1 << 40), c.V + 7], dtype=np.int64)
        inputs[~mask] = garbage[np.arange((~mask).sum()) % len(garbage)]
        torch_inputs = inputs
    else:
        inputs = f32(rng, mask.shape + (c.I,), -1.5, 1.5)
        inputs[~mask] = GARBAGE_FEATURE
        torch_inputs = t64(inputs)

    if c.loss == "ce" and c.head == "last":
        targets = rng.integers(0, c.O, size=c.B).astype(np.int32)
    elif c.loss == "ce":
        # the next token of each sequence, -1 at its last step and past its end
        targets = np.full(mask.shape, -1, dtype=np.int32)
        targets[:-1][mask[1:]] = inputs[1:][mask[1:]]
        targets.reshape(-1)[3] = -1  # one more left out within a sequence
        targets[~mask] = 1000  # never read: out of range
    else:
        targets = f32(rng, mask.shape + (c.O,), -1.0, 1.0)
        targets[~mask] = 1.0e30

    initial = snapshot(model, grads=False)
    z = model(torch_inputs)
    loss = model.loss(z, targets)
    loss.backward()
    grads = snapshot(model, grads=True)
    output = z.detach().numpy()

    params = [p for p in model.parameters() if p.requires_grad]
    kind, lr, momentum = c.optim
    for p in params:
        p.grad = None
    if kind == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, foreach=False)
    else:
        opt = torch.optim.Adam(params, lr=lr, foreach=False)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        step_loss = model.loss(model(torch_inputs), targets)
        step_loss.backward()
        losses.append(float(step_loss))
        opt.step()
    final = snapshot(model, grads=False)
    return dict(inputs=inputs, targets=targets, initial=initial, output=output,
                loss=float(loss), grads=grads, losses=losses, final=final)


HEADER = """\
/* Golden data for tests/parity/test_sequence_model.c, from torch %s.
 * Generated by tests/parity/gen_sequence_model_golden.py: do not edit. */
#ifndef SEQUENCE_MODEL_GOLDEN_H
#define SEQUENCE_MODEL_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

#define SEQUENCE_MODEL_STEPS %d

struct sequence_model_case {
    const char *name;
    int tokens;                  /* 1: token ids through an embedding; 0: float features */
    size_t V, E;                 /* the embedding */
    int has_padding;             /* padding_idx set */
    int64_t padding_idx;
    size_t I, H, L;              /* the LSTM */
    int bidirectional;
    size_t P;                    /* proj_size, 0 without */
    int head;                    /* lstm_head_placement */
    size_t O;                    /* head_size */
    int loss;                    /* lstm_loss_kind */
    int batch_first;             /* LSTM_BATCH_FIRST in the LSTM's flags */
    size_t T, B;
    const size_t *lengths;       /* [B] */
    const int64_t *ids;          /* [T][B] (or [B][T]) with tokens */
    const float *features;       /* [T][B][I] (or [B][T][I]) without */
    const int32_t *classes;      /* cross-entropy: a class per output row */
    const float *values;         /* MSE: [rows][O], garbage past each sequence's end */
    const float *embedding;      /* W [V][E] */
    const float *lstm;           /* every block's W, b (and W_hr), block after block */
    const float *head_params;    /* [W | b] */
    const float *output;         /* [rows][O] */
    double loss_value;
    const float *d_embedding, *d_lstm, *d_head;
    int optim_kind;              /* lstm_optim_kind */
    double lr, momentum;
    const double *losses;        /* [SEQUENCE_MODEL_STEPS] before each step */
    const float *final_embedding, *final_lstm, *final_head;
};
"""


def main():
    path = sys.argv[1]
    out = [HEADER % (torch.__version__, STEPS)]
    entries = []
    for c in CASES:
        g = make_case(c)
        p = "sm_" + c.name
        c_array(out, "size_t", p + "_lengths", [str(n) for n in c.lengths])
        if c.tokens:
            c_array(out, "int64_t", p + "_ids", ["INT64_C(%d)" % v for v in g["inputs"].reshape(-1)])
        else:
            float_array(out, p + "_features", g["inputs"])
        if c.loss == "ce":
            c_array(out, "int32_t", p + "_classes", [str(v) for v in g["targets"].reshape(-1)])
        else:
            float_array(out, p + "_values", g["targets"])
        names = []
        for tag, arrays in (("", g["initial"]), ("d_", g["grads"]), ("final_", g["final"])):
            for part, values in zip(("embedding", "lstm", "head"), arrays):
                if part == "embedding" and not c.tokens:
                    names.append("NULL")
                    continue
                float_array(out, p + "_" + tag + part, values)
                names.append(p + "_" + tag + part)
        float_array(out, p + "_output", g["output"])
        c_array(out, "double", p + "_losses", [short_hex(v) for v in g["losses"]], per_line=4)
        kind, lr, momentum = c.optim
        head = {"none": 0, "every": 1, "last": 2}[c.head]
        loss = {"ce": 1, "bce": 2, "mse": 3}[c.loss]
        entries.append(
            '    {"%s", %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d,\n'
            '     %s_lengths, %s, %s, %s, %s,\n'
            '     %s, %s, %s, %s_output, %s,\n'
            '     %s, %s, %s, %d, %s, %s, %s_losses, %s, %s, %s},'
            % (c.name, int(c.tokens), c.V, c.E, int(c.padding_idx is not None),
               c.padding_idx or 0, c.I, c.H, c.L, int(c.bidirectional), c.P, head, c.O, loss,
               int(c.batch_first), c.T, c.B, p,
               p + "_ids" if c.tokens else "NULL", "NULL" if c.tokens else p + "_features",
               p + "_classes" if c.loss == "ce" else "NULL",
               p + "_values" if c.loss != "ce" else "NULL",
               names[0], names[1], names[2], p, short_hex(g["loss"]),
               names[3], names[4], names[5], 0 if kind == "sgd" else 3, short_hex(lr),
               short_hex(momentum), p, names[6], names[7], names[8]))
    out.append("static const struct sequence_model_case sequence_model_cases[] = {")
    out.extend(entries)
    out.append("};")
    out.append("")
    out.append("#endif /* SEQUENCE_MODEL_GOLDEN_H */")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
