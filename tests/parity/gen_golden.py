#!/usr/bin/python3
"""Generate the PyTorch golden files used by tests/parity/test_parity.c.

Usage (Debian's python3 with python3-torch and python3-numpy, not a venv):

    /usr/bin/python3 tests/parity/gen_golden.py tests/parity/golden

Every case builds a float64 torch.nn.LSTM(I, H) whose parameters, inputs and
output gradients are float32 values (drawn in float32 with numpy, then
upcast), so the float32 copies the C test makes are exact and the only
difference between liblstm and the reference is liblstm's own rounding.
liblstm has a single bias b = bias_ih + bias_hh, so bias_ih is set to b and
bias_hh to zero. The packed weight is W = [weight_hh_l0 | weight_ih_l0]
(4H x (H + I), gate blocks i, f, g, o), as in include/lstm/model.h.

The forward pass gives y, hT, cT; the backward pass is that of

    L = sum(y * dy) + sum(hT * dhT) + sum(cT * dcT)

where an absent dy, dhT or dcT is zero. It gives dx, dh0, dc0,
dW = [grad weight_hh_l0 | grad weight_ih_l0] and db = grad bias_ih_l0.
When a case has no initial state, h0 and c0 are zeros (and the C test passes
NULL for them); dh0 and dc0 are still the gradients with respect to those
zeros. Each case is also recomputed with a hand-written cell (torch ops,
autograd) as an independent check of the gate order and layouts.

The output is bit-for-bit reproducible: fixed seeds, numpy's PCG64 for the
data, and one torch thread.

The files are in the format of gen_network_golden.py ("LSTMNETG", written
by its encode(); tests/support/golden.c reads them), as a network of one
layer, one direction, no projection, time-major and no lengths: params is
W [4H][H+I] followed by b [4H], grads is dW followed by db, and the states
are [1][B][H].
"""

import os
import sys

import numpy as np
import torch

import gen_network_golden as netg  # the file format and its writer (same folder)

FLAG_H0 = netg.FLAG_H0
FLAG_C0 = netg.FLAG_C0
FLAG_DY = netg.FLAG_DY
FLAG_DHT = netg.FLAG_DHT
FLAG_DCT = netg.FLAG_DCT

# name, (T, B, I, H), seed, flags, x_scale, note
CASES = [
    ("t23_b5_i13_h37", (23, 5, 13, 37), 1001,
     FLAG_H0 | FLAG_C0 | FLAG_DY | FLAG_DHT | FLAG_DCT, 1.0,
     "general shape, every optional tensor present"),
    ("t1_b1_i1_h1", (1, 1, 1, 1), 1002,
     FLAG_H0 | FLAG_C0 | FLAG_DY | FLAG_DHT | FLAG_DCT, 1.0,
     "smallest shape"),
    ("t1_b1_i4_h3", (1, 1, 4, 3), 1003,
     FLAG_H0 | FLAG_DY | FLAG_DCT, 1.0,
     "h0 without c0, dcT without dhT"),
    ("t7_b1_i8_h16", (7, 1, 8, 16), 1004,
     FLAG_H0 | FLAG_C0 | FLAG_DY | FLAG_DHT | FLAG_DCT, 1.0,
     "B = 1 (matrix-vector path)"),
    ("t12_b3_i5_h64", (12, 3, 5, 64), 1005,
     FLAG_DY, 1.0,
     "no initial state, no final-state gradients"),
    ("t5_b8_i32_h16_sat", (5, 8, 32, 16), 1006,
     FLAG_H0 | FLAG_C0 | FLAG_DY | FLAG_DHT | FLAG_DCT, 5.0,
     "x scaled by 5: most gates saturate"),
    ("t9_b2_i6_h10_nody", (9, 2, 6, 10), 1007,
     FLAG_H0 | FLAG_C0 | FLAG_DHT | FLAG_DCT, 1.0,
     "dy absent: only final-state gradients"),
    ("t4_b16_i3_h128", (4, 16, 3, 128), 1008,
     FLAG_H0 | FLAG_C0 | FLAG_DY | FLAG_DHT, 1.0,
     "wide hidden state, dhT without dcT"),
]


def f32(rng, shape, low, high):
    """Uniform float32 values, returned as float64 (exactly the same values)."""
    v = rng.uniform(low, high, size=shape).astype(np.float32)
    return torch.from_numpy(v.astype(np.float64))


def f32_normal(rng, shape, scale):
    v = (rng.standard_normal(size=shape) * scale).astype(np.float32)
    return torch.from_numpy(v.astype(np.float64))


def manual_lstm(W, b, x, h0, c0):
    """Reference by the equations of include/lstm/model.h (float64)."""
    H = h0.shape[1]
    h, c = h0, c0
    ys = []
    for t in range(x.shape[0]):
        s = torch.cat([h, x[t]], dim=1)           # [B][H+I]
        a = s @ W.t() + b                          # [B][4H]
        i = torch.sigmoid(a[:, 0:H])
        f = torch.sigmoid(a[:, H:2 * H])
        g = torch.tanh(a[:, 2 * H:3 * H])
        o = torch.sigmoid(a[:, 3 * H:4 * H])
        c = f * c + i * g
        h = o * torch.tanh(c)
        ys.append(h)
    return torch.stack(ys), h, c


def loss_of(y, hT, cT, dy, dhT, dcT):
    loss = torch.zeros((), dtype=torch.float64)
    if dy is not None:
        loss = loss + (y * dy).sum()
    if dhT is not None:
        loss = loss + (hT * dhT).sum()
    if dcT is not None:
        loss = loss + (cT * dcT).sum()
    return loss


def make_case(shape, seed, flags, x_scale):
    T, B, I, H = shape
    rng = np.random.Generator(np.random.PCG64(seed))
    k = 1.0 / np.sqrt(H)  # PyTorch's own init range

    W = f32(rng, (4 * H, H + I), -k, k)
    b = f32(rng, (4 * H,), -k, k)
    x = f32_normal(rng, (T, B, I), x_scale)
    h0 = f32(rng, (B, H), -1.0, 1.0) if flags & FLAG_H0 else None
    c0 = f32(rng, (B, H), -2.0, 2.0) if flags & FLAG_C0 else None
    dy = f32_normal(rng, (T, B, H), 1.0) if flags & FLAG_DY else None
    dhT = f32_normal(rng, (B, H), 1.0) if flags & FLAG_DHT else None
    dcT = f32_normal(rng, (B, H), 1.0) if flags & FLAG_DCT else None

    lstm = torch.nn.LSTM(I, H).double()
    with torch.no_grad():
        lstm.weight_hh_l0.copy_(W[:, :H])
        lstm.weight_ih_l0.copy_(W[:, H:])
        lstm.bias_ih_l0.copy_(b)
        lstm.bias_hh_l0.zero_()

    # An absent initial state is zero; it still gets a gradient.
    h0_t = (h0 if h0 is not None else torch.zeros(B, H, dtype=torch.float64)).clone()
    c0_t = (c0 if c0 is not None else torch.zeros(B, H, dtype=torch.float64)).clone()
    x_t = x.clone().requires_grad_(True)
    h0_t.requires_grad_(True)
    c0_t.requires_grad_(True)

    y, (hT, cT) = lstm(x_t, (h0_t.unsqueeze(0), c0_t.unsqueeze(0)))
    hT = hT.squeeze(0)
    cT = cT.squeeze(0)
    loss_of(y, hT, cT, dy, dhT, dcT).backward()

    out = {
        "W": W, "b": b, "x": x, "h0": h0, "c0": c0,
        "y": y.detach(), "hT": hT.detach(), "cT": cT.detach(),
        "dy": dy, "dhT": dhT, "dcT": dcT,
        "dx": x_t.grad.detach(), "dh0": h0_t.grad.detach(), "dc0": c0_t.grad.detach(),
        "dW": torch.cat([lstm.weight_hh_l0.grad, lstm.weight_ih_l0.grad], dim=1).detach(),
        "db": lstm.bias_ih_l0.grad.detach(),
    }
    # Both biases feed the same sum; torch reduces them separately, so they
    # may differ in the last bits only.
    assert torch.allclose(lstm.bias_ih_l0.grad, lstm.bias_hh_l0.grad, rtol=1e-13, atol=1e-13)
    check_against_manual(out, h0_t.detach(), c0_t.detach())
    return out


def check_against_manual(ref, h0z, c0z):
    """Recompute with manual_lstm() and autograd; must agree to float64 noise."""
    W = ref["W"].clone().requires_grad_(True)
    b = ref["b"].clone().requires_grad_(True)
    x = ref["x"].clone().requires_grad_(True)
    h0 = h0z.clone().requires_grad_(True)
    c0 = c0z.clone().requires_grad_(True)
    y, hT, cT = manual_lstm(W, b, x, h0, c0)
    loss_of(y, hT, cT, ref["dy"], ref["dhT"], ref["dcT"]).backward()
    mine = {"y": y, "hT": hT, "cT": cT, "dx": x.grad, "dh0": h0.grad,
            "dc0": c0.grad, "dW": W.grad, "db": b.grad}
    for name, v in mine.items():
        r = ref[name]
        scale = max(r.abs().max().item(), 1e-300)
        err = (v.detach() - r).abs().max().item() / scale
        if err > 1e-12:
            raise AssertionError("manual check failed for %s: rel err %g" % (name, err))


def encode(name, shape, flags, tensors):
    """The LSTMNETG file of a one-layer case (netg.encode checks every shape)."""
    T, B, I, H = shape
    c = netg.case(name, 1, False, 0, False, T, B, I, H, flags=flags)

    def array(key):  # absent stays absent
        a = tensors[key]
        return None if a is None else a.detach().numpy()

    def flat(*keys):
        return np.concatenate([array(key).reshape(-1) for key in keys])

    netg_tensors = {"params": flat("W", "b"), "grads": flat("dW", "db")}
    for key in ("x", "y", "dy", "dx"):
        netg_tensors[key] = array(key)
    for key in ("h0", "c0", "hT", "cT", "dhT", "dcT", "dh0", "dc0"):  # [B][H] -> [1][B][H]
        a = array(key)
        netg_tensors[key] = None if a is None else a[None]
    return netg.encode(c, netg_tensors)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s OUTPUT_DIR\n" % argv[0])
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    total = 0
    for name, shape, seed, flags, x_scale, note in CASES:
        tensors = make_case(shape, seed, flags, x_scale)
        blob = encode(name, shape, flags, tensors)
        path = os.path.join(outdir, name + ".bin")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
        total += len(blob)
        print("%-22s T=%-3d B=%-3d I=%-3d H=%-4d %8d bytes  %s"
              % (name, shape[0], shape[1], shape[2], shape[3], len(blob), note))
    print("total %d bytes" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
