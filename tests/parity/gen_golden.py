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

File format, version 1. All integers and floats are little-endian.

    offset  size  field
         0     8  magic, the ASCII bytes "LSTMGOLD"
         8     4  uint32 version = 1
        12     4  uint32 flags: which optional tensors are present
                    bit 0  h0    bit 1  c0    bit 2  dy
                    bit 3  dhT   bit 4  dcT   other bits are zero
        16     4  uint32 T (seq_len)
        20     4  uint32 B (batch)
        24     4  uint32 I (input_size)
        28     4  uint32 H (hidden_size)
        32     4  uint32 count of float64 values that follow
        36     4  uint32 reserved, zero
        40   8*n  float64 tensors, row-major, in this order, the optional
                  ones only when their flag is set:
                    W    [4H][H+I]   inputs: float32 values stored exactly
                    b    [4H]
                    x    [T][B][I]
                    h0   [B][H]      (optional)
                    c0   [B][H]      (optional)
                    y    [T][B][H]   reference outputs
                    hT   [B][H]
                    cT   [B][H]
                    dy   [T][B][H]   (optional) output gradients: float32 values
                    dhT  [B][H]      (optional)
                    dcT  [B][H]      (optional)
                    dx   [T][B][I]   reference gradients
                    dh0  [B][H]
                    dc0  [B][H]
                    dW   [4H][H+I]
                    db   [4H]
    40+8*n     4  uint32 CRC-32 (IEEE 802.3, as zlib.crc32) of every byte
                  before it

The file is exactly 44 + 8*n bytes long. tests/support/golden.c reads it.
"""

import os
import struct
import sys
import zlib

import numpy as np
import torch

MAGIC = b"LSTMGOLD"
VERSION = 1

FLAG_H0 = 1 << 0
FLAG_C0 = 1 << 1
FLAG_DY = 1 << 2
FLAG_DHT = 1 << 3
FLAG_DCT = 1 << 4

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


ORDER = ["W", "b", "x", "h0", "c0", "y", "hT", "cT", "dy", "dhT", "dcT",
         "dx", "dh0", "dc0", "dW", "db"]
OPTIONAL = {"h0": FLAG_H0, "c0": FLAG_C0, "dy": FLAG_DY, "dhT": FLAG_DHT, "dcT": FLAG_DCT}
FLOAT32_EXACT = {"W", "b", "x", "h0", "c0", "dy", "dhT", "dcT"}


def encode(shape, flags, tensors):
    T, B, I, H = shape
    expected = {
        "W": (4 * H, H + I), "b": (4 * H,), "x": (T, B, I),
        "h0": (B, H), "c0": (B, H), "y": (T, B, H), "hT": (B, H), "cT": (B, H),
        "dy": (T, B, H), "dhT": (B, H), "dcT": (B, H), "dx": (T, B, I),
        "dh0": (B, H), "dc0": (B, H), "dW": (4 * H, H + I), "db": (4 * H,),
    }
    arrays = []
    for name in ORDER:
        if name in OPTIONAL and not flags & OPTIONAL[name]:
            assert tensors[name] is None
            continue
        a = tensors[name].detach().numpy().astype(np.float64)
        assert a.shape == expected[name], (name, a.shape)
        assert np.all(np.isfinite(a)), name
        if name in FLOAT32_EXACT:
            assert np.array_equal(a.astype(np.float32).astype(np.float64), a), name
        arrays.append(np.ascontiguousarray(a).reshape(-1))
    data = np.concatenate(arrays).astype("<f8")
    header = MAGIC + struct.pack("<8I", VERSION, flags, T, B, I, H, data.size, 0)
    body = header + data.tobytes()
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


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
        blob = encode(shape, flags, tensors)
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
