#!/usr/bin/python3
"""Generate the PyTorch golden files used by tests/parity/test_network_parity.c.

Usage (Debian's python3 with python3-torch and python3-numpy, not a venv):

    /usr/bin/python3 tests/parity/gen_network_golden.py tests/parity/golden/network

Each case is a float64 torch.nn.LSTM(input_size, hidden_size, num_layers,
bias=True, batch_first, dropout=0, bidirectional, proj_size). Its
parameters, inputs and output gradients are float32 values (drawn in
float32 with numpy, then upcast), so the float32 copies the C test makes are
exact and the only difference between liblstm and the reference is
liblstm's own rounding. liblstm has a single bias b = bias_ih + bias_hh per
layer and direction, so bias_ih is set to b and bias_hh to zero.

Parameters are stored in liblstm's flat layout (include/lstm/model.h): one
block per layer and direction in the order (layer 0, forward), (layer 0,
reverse), (layer 1, forward), ..., each block holding

    W     [4H][R + I_l]  = [weight_hh_l{l}{sfx} | weight_ih_l{l}{sfx}]
    b     [4H]           = bias_ih_l{l}{sfx} + bias_hh_l{l}{sfx}
    W_hr  [P][H]         = weight_hr_l{l}{sfx}      (only when P > 0)

with sfx "" or "_reverse", R = P if P > 0 else H, I_0 = input_size and
I_l = D R for l > 0 (D = 2 when bidirectional). The C test places each of
these tensors with lstm_model_tensor(), not by this rule, and checks the
rule against the query once.

With sequence lengths the batch goes through
torch.nn.utils.rnn.pack_padded_sequence(enforce_sorted=False) and back
through pad_packed_sequence(total_length=T). The padded positions of x and
dy (past each sequence's end) hold large finite garbage (|v| ~ 1e4 .. 1e5,
float32 values) that must be ignored; y and dx are zero there.

The backward pass is that of

    L = sum over valid positions of y * dy + sum(hT * dhT) + sum(cT * dcT)

where an absent dy, dhT or dcT is zero. It gives dx, dh0, dc0 and the
parameter gradients, stored in the same flat layout:
dW = [grad weight_hh | grad weight_ih], db = grad bias_ih (equal to grad
bias_hh), dW_hr = grad weight_hr. When a case has no initial state, h0 and
c0 are zeros (the C test passes NULL) and dh0, dc0 are the gradients with
respect to those zeros.

Every case is checked twice more before it is written, independently of
torch.nn.LSTM and of the packing: (1) a hand-written cell in torch ops
reading the flat parameter buffer by the layout rule above, run sequence
by sequence on each sequence's own length (the reverse direction from its
own last step), with autograd: y, hT, cT, dx, dh0, dc0 and the flat
gradient must agree to 1e-12; (2) the same forward in plain numpy.

The output is bit-for-bit reproducible: fixed seeds, numpy's PCG64 for the
data, and one torch thread.

File format "LSTMNETG", version 1. All integers and floats little-endian.

    offset  size  field
         0     8  magic, the ASCII bytes "LSTMNETG"
         8     4  uint32 version = 1
        12     4  uint32 flags: which optional parts are present
                    bit 0  h0    bit 1  c0    bit 2  dy
                    bit 3  dhT   bit 4  dcT   bit 5  lengths
                    other bits are zero
        16     4  uint32 config flags, as lstm_config.flags:
                    bit 0  bidirectional    bit 1  batch first
                    other bits are zero
        20     4  uint32 T (seq_len)
        24     4  uint32 B (batch)
        28     4  uint32 I (input_size)
        32     4  uint32 H (hidden_size)
        36     4  uint32 L (num_layers)
        40     4  uint32 P (proj_size; 0 = none, else < H)
        44     4  uint32 n, count of float64 values that follow
        48   4*B  uint32 lengths, one per sequence, each in [1, T], any
                  order; only with flag bit 5. Followed by 4 zero bytes
                  when B is odd, so the float64 data starts at a multiple
                  of 8. Without bit 5 this area is empty.
     48+m   8*n  float64 tensors, row-major, in this order, the optional
                  ones only when their flag is set (m = the lengths area):
                    params [N]        inputs: float32 values stored exactly
                    x      [T][B][I]  ([B][T][I] when batch first)
                    h0     [LD][B][R] (optional)
                    c0     [LD][B][H] (optional)
                    y      [T][B][DR] ([B][T][DR] when batch first)
                    hT     [LD][B][R]
                    cT     [LD][B][H]
                    dy     like y     (optional) float32 values
                    dhT    [LD][B][R] (optional) float32 values
                    dcT    [LD][B][H] (optional) float32 values
                    dx     like x
                    dh0    [LD][B][R]
                    dc0    [LD][B][H]
                    grads  [N]        same layout as params
                  N is the parameter count of the layout above.
  48+m+8n     4  uint32 CRC-32 (IEEE 802.3, as zlib.crc32) of every byte
                  before it

The file is exactly 52 + m + 8 n bytes long. tests/support/golden.c reads it;
gen_golden.py writes its one-layer cases in this format too.
"""

import os
import struct
import sys
import zlib

import numpy as np
import torch

MAGIC = b"LSTMNETG"
VERSION = 1

FLAG_H0 = 1 << 0
FLAG_C0 = 1 << 1
FLAG_DY = 1 << 2
FLAG_DHT = 1 << 3
FLAG_DCT = 1 << 4
FLAG_LENGTHS = 1 << 5
FLAG_ALL_STATE = FLAG_H0 | FLAG_C0 | FLAG_DY | FLAG_DHT | FLAG_DCT

CONFIG_BIDIRECTIONAL = 0x1
CONFIG_BATCH_FIRST = 0x2

# Garbage written into the padding of x and dy: large but finite float32.
GARBAGE_LOW = 1.0e4
GARBAGE_HIGH = 1.0e5


def case(name, L, bidir, P, batch_first, T, B, I, H, lengths=None,
         flags=FLAG_ALL_STATE, x_scale=1.0, note=""):
    return {"name": name, "L": L, "bidir": bidir, "P": P, "bf": batch_first,
            "T": T, "B": B, "I": I, "H": H, "lengths": lengths,
            "flags": flags, "x_scale": x_scale, "note": note}


def grid_cases():
    """num_layers 1..3 x bidirectional x projection x batch_first x lengths."""
    mixed = [[5, 6, 2, 4], [3, 1, 6, 6], [4, 2, 5, 3], [2, 6, 1, 5]]
    out = []
    index = 0
    for L in (1, 2, 3):
        for bidir in (False, True):
            for P in (0, 3):
                for bf in (False, True):
                    for with_lengths in (False, True):
                        flags = FLAG_ALL_STATE
                        suffix = ""
                        # A few cases without initial state or without
                        # final-state gradients (the C test passes NULL).
                        if index % 8 == 5:
                            flags &= ~(FLAG_H0 | FLAG_C0)
                            suffix = "_noinit"
                        elif index % 8 == 2:
                            flags &= ~(FLAG_DHT | FLAG_DCT)
                            suffix = "_nofinal"
                        name = "l%d_%s_p%d_%s_%s%s" % (
                            L, "bi" if bidir else "uni", P, "bf" if bf else "tf",
                            "len" if with_lengths else "full", suffix)
                        lengths = mixed[(index // 2) % 4] if with_lengths else None
                        if lengths is not None:
                            flags |= FLAG_LENGTHS
                        out.append(case(name, L, bidir, P, bf, 6, 4, 5, 7, lengths, flags,
                                        note="grid"))
                        index += 1
    return out


def targeted_cases():
    A = FLAG_ALL_STATE
    LEN = FLAG_LENGTHS
    return [
        case("l2_bi_p3_len1635", 2, True, 3, False, 6, 4, 5, 7, [1, 6, 3, 5], A | LEN,
             note="all lengths different, unsorted, one of length 1"),
        case("l2_bi_p3_len6111", 2, True, 3, False, 6, 4, 5, 7, [6, 1, 1, 1], A | LEN,
             note="one long sequence: late steps have a single active row"),
        case("l3_uni_p0_len1161_bf", 3, False, 0, True, 6, 4, 5, 7, [1, 1, 6, 1], A | LEN,
             note="one long sequence, not first; batch first"),
        case("l2_bi_p3_b1", 2, True, 3, False, 6, 1, 5, 7, None, A,
             note="B = 1 (matrix-vector path)"),
        case("l2_bi_p3_b1_len", 2, True, 3, False, 6, 1, 5, 7, [4], A | LEN,
             note="B = 1 with a length shorter than T"),
        case("l2_bi_p0_b1_len_bf", 2, True, 0, True, 6, 1, 5, 7, [6], A | LEN,
             note="B = 1, length T given explicitly, batch first"),
        case("l3_uni_p2_b1", 3, False, 2, False, 6, 1, 5, 7, None, A,
             note="B = 1, three layers, projection"),
        case("l2_bi_p3_t1", 2, True, 3, False, 1, 3, 5, 7, None, A,
             note="T = 1"),
        case("l2_bi_p3_t1_len_bf", 2, True, 3, True, 1, 3, 5, 7, [1, 1, 1], A | LEN,
             note="T = 1 with lengths, batch first"),
        case("l3_bi_p2_t1_b1", 3, True, 2, False, 1, 1, 5, 7, None, A,
             note="T = 1, B = 1"),
        case("l2_bi_p3_lenall", 2, True, 3, False, 6, 4, 5, 7, [6, 6, 6, 6], A | LEN,
             note="lengths all T, given explicitly"),
        case("l2_bi_p3_short_bf", 2, True, 3, True, 7, 3, 5, 7, [3, 2, 4], A | LEN,
             note="every sequence shorter than T; batch first"),
        case("l2_bi_p0_h1", 2, True, 0, False, 3, 2, 1, 1, [3, 1], A | LEN,
             note="I = H = 1"),
        case("l2_bi_p1_h2", 2, True, 1, False, 3, 2, 1, 2, [2, 3], A | LEN,
             note="H = 2, P = 1"),
        case("l2_bi_p3_partial", 2, True, 3, False, 5, 3, 4, 6, [5, 2, 4],
             FLAG_H0 | FLAG_DCT | LEN,
             note="h0 without c0, dcT without dhT, no dy"),
        case("l2_uni_p3_nody", 2, False, 3, True, 5, 3, 4, 6, None,
             FLAG_C0 | FLAG_DHT,
             note="c0 without h0, dhT only, no dy; batch first"),
        case("l2_bi_p3_bare_len", 2, True, 3, False, 6, 4, 5, 7, [2, 6, 4, 1],
             FLAG_DY | LEN,
             note="no initial state, no final-state gradients"),
        case("l2_bi_p3_sat_len", 2, True, 3, False, 6, 4, 5, 7, [6, 3, 5, 2], A | LEN,
             x_scale=5.0, note="x scaled by 5: most gates saturate"),
        case("l2_uni_p8_h32_len", 2, False, 8, False, 5, 3, 6, 32, [5, 2, 4], A | LEN,
             note="wider hidden state with projection"),
        case("l2_bi_p11_i13_h37_len", 2, True, 11, False, 9, 5, 13, 37, [9, 4, 7, 1, 6],
             A | LEN, note="larger case (also run sequence by sequence in the C test)"),
        case("l2_bi_p0_i7_h16_len_bf", 2, True, 0, True, 8, 6, 7, 16, [3, 8, 8, 1, 5, 7],
             A | LEN, note="larger case without projection, batch first"),
    ]


CASES = grid_cases() + targeted_cases()


# ---------------------------------------------------------------------------
# Layout

def dims(c):
    D = 2 if c["bidir"] else 1
    R = c["P"] if c["P"] > 0 else c["H"]
    return D, R


def layer_input(c, layer):
    D, R = dims(c)
    return c["I"] if layer == 0 else D * R


def block_layout(c):
    """[(layer, direction, {name: (offset, rows, cols)})] and the total count."""
    D, R = dims(c)
    H, P = c["H"], c["P"]
    out = []
    off = 0
    for layer in range(c["L"]):
        for d in range(D):
            il = layer_input(c, layer)
            t = {"W": (off, 4 * H, R + il)}
            off += 4 * H * (R + il)
            t["b"] = (off, 4 * H, 1)
            off += 4 * H
            if P > 0:
                t["W_hr"] = (off, P, H)
                off += P * H
            out.append((layer, d, t))
    return out, off


def torch_names(layer, d):
    sfx = "_reverse" if d == 1 else ""
    return {"w_ih": "weight_ih_l%d%s" % (layer, sfx),
            "w_hh": "weight_hh_l%d%s" % (layer, sfx),
            "b_ih": "bias_ih_l%d%s" % (layer, sfx),
            "b_hh": "bias_hh_l%d%s" % (layer, sfx),
            "w_hr": "weight_hr_l%d%s" % (layer, sfx)}


# ---------------------------------------------------------------------------
# Data

def f32(rng, shape, low, high):
    """Uniform float32 values as a float64 numpy array (exactly the same values)."""
    return rng.uniform(low, high, size=shape).astype(np.float32).astype(np.float64)


def f32_normal(rng, shape, scale):
    return (rng.standard_normal(size=shape) * scale).astype(np.float32).astype(np.float64)


def garbage(rng, shape):
    mag = rng.uniform(GARBAGE_LOW, GARBAGE_HIGH, size=shape)
    sign = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float32).astype(np.float64)


def pad_mask(c):
    """[T][B] booleans: True where a sequence runs."""
    T, B = c["T"], c["B"]
    lengths = c["lengths"] if c["lengths"] is not None else [T] * B
    return np.arange(T)[:, None] < np.array(lengths)[None, :]


def to_layout(c, a):
    """A [T][B][...] array in the case's layout ([B][T][...] when batch first)."""
    return np.ascontiguousarray(np.swapaxes(a, 0, 1)) if c["bf"] else a


def from_layout(c, a):
    return np.ascontiguousarray(np.swapaxes(a, 0, 1)) if c["bf"] else a


def make_inputs(c, seed):
    """Parameters (flat) and inputs; sequence tensors in [T][B][...] order."""
    rng = np.random.Generator(np.random.PCG64(seed))
    D, R = dims(c)
    T, B, H = c["T"], c["B"], c["H"]
    LD = c["L"] * D
    k = 1.0 / np.sqrt(H)  # PyTorch's own init range
    layout, count = block_layout(c)
    params = np.zeros(count)
    for _, _, t in layout:
        for off, rows, cols in t.values():
            params[off:off + rows * cols] = f32(rng, rows * cols, -k, k)
    mask = pad_mask(c)[:, :, None]
    x = f32_normal(rng, (T, B, c["I"]), c["x_scale"])
    x = np.where(mask, x, garbage(rng, x.shape))
    flags = c["flags"]
    h0 = f32(rng, (LD, B, R), -1.0, 1.0) if flags & FLAG_H0 else None
    c0 = f32(rng, (LD, B, H), -2.0, 2.0) if flags & FLAG_C0 else None
    dy = None
    if flags & FLAG_DY:
        dy = f32_normal(rng, (T, B, D * R), 1.0)
        dy = np.where(mask, dy, garbage(rng, dy.shape))
    dhT = f32_normal(rng, (LD, B, R), 1.0) if flags & FLAG_DHT else None
    dcT = f32_normal(rng, (LD, B, H), 1.0) if flags & FLAG_DCT else None
    return {"params": params, "x": x, "h0": h0, "c0": c0, "dy": dy, "dhT": dhT, "dcT": dcT}


# ---------------------------------------------------------------------------
# The reference: torch.nn.LSTM

def loss_of(y, hT, cT, dy_valid, dhT, dcT):
    loss = torch.zeros((), dtype=torch.float64)
    if dy_valid is not None:
        loss = loss + (y * dy_valid).sum()
    if dhT is not None:
        loss = loss + (hT * dhT).sum()
    if dcT is not None:
        loss = loss + (cT * dcT).sum()
    return loss


def optional_tensor(a):
    return None if a is None else torch.from_numpy(a)


def valid_dy(c, dy):
    """dy with its padding zeroed ([T][B][DR]), as a tensor, or None."""
    if dy is None:
        return None
    return torch.from_numpy(np.where(pad_mask(c)[:, :, None], dy, 0.0))


def run_torch(c, inp):
    D, R = dims(c)
    T, B, H, L = c["T"], c["B"], c["H"], c["L"]
    lstm = torch.nn.LSTM(c["I"], H, num_layers=L, bias=True, batch_first=c["bf"],
                         dropout=0.0, bidirectional=c["bidir"], proj_size=c["P"]).double()
    layout, _ = block_layout(c)
    p = inp["params"]
    with torch.no_grad():
        for layer, d, t in layout:
            n = torch_names(layer, d)
            off, rows, cols = t["W"]
            W = torch.from_numpy(p[off:off + rows * cols].reshape(rows, cols))
            getattr(lstm, n["w_hh"]).copy_(W[:, :R])
            getattr(lstm, n["w_ih"]).copy_(W[:, R:])
            off, rows, _ = t["b"]
            getattr(lstm, n["b_ih"]).copy_(torch.from_numpy(p[off:off + rows]))
            getattr(lstm, n["b_hh"]).zero_()
            if c["P"] > 0:
                off, rows, cols = t["W_hr"]
                getattr(lstm, n["w_hr"]).copy_(
                    torch.from_numpy(p[off:off + rows * cols].reshape(rows, cols)))

    LD = L * D
    h0 = torch.from_numpy(inp["h0"] if inp["h0"] is not None else np.zeros((LD, B, R)))
    c0 = torch.from_numpy(inp["c0"] if inp["c0"] is not None else np.zeros((LD, B, H)))
    h0 = h0.clone().requires_grad_(True)
    c0 = c0.clone().requires_grad_(True)
    x = torch.from_numpy(to_layout(c, inp["x"]).copy()).requires_grad_(True)

    if c["lengths"] is not None:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x, torch.tensor(c["lengths"], dtype=torch.int64), batch_first=c["bf"],
            enforce_sorted=False)
        out, (hT, cT) = lstm(packed, (h0, c0))
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=c["bf"],
                                                      total_length=T)
    else:
        y, (hT, cT) = lstm(x, (h0, c0))

    dy_valid = valid_dy(c, inp["dy"])
    if dy_valid is not None and c["bf"]:
        dy_valid = dy_valid.transpose(0, 1)
    loss_of(y, hT, cT, dy_valid, optional_tensor(inp["dhT"]),
            optional_tensor(inp["dcT"])).backward()

    grads = np.zeros_like(p)
    for layer, d, t in layout:
        n = torch_names(layer, d)
        gih = getattr(lstm, n["b_ih"]).grad
        ghh = getattr(lstm, n["b_hh"]).grad
        # Both biases feed the same sum; torch reduces them separately.
        assert torch.allclose(gih, ghh, rtol=1e-13, atol=1e-13)
        off, rows, cols = t["W"]
        gW = torch.cat([getattr(lstm, n["w_hh"]).grad, getattr(lstm, n["w_ih"]).grad], dim=1)
        grads[off:off + rows * cols] = gW.numpy().reshape(-1)
        off, rows, _ = t["b"]
        grads[off:off + rows] = gih.numpy()
        if c["P"] > 0:
            off, rows, cols = t["W_hr"]
            grads[off:off + rows * cols] = getattr(lstm, n["w_hr"]).grad.numpy().reshape(-1)

    return {"y": from_layout(c, y.detach().numpy()), "hT": hT.detach().numpy(),
            "cT": cT.detach().numpy(), "dx": from_layout(c, x.grad.numpy()),
            "dh0": h0.grad.numpy(), "dc0": c0.grad.numpy(), "grads": grads,
            "h0_used": h0.detach(), "c0_used": c0.detach()}


# ---------------------------------------------------------------------------
# Independent checks: the equations of include/lstm/model.h on the flat buffer

def manual_torch(c, params, x, h0, c0):
    """Forward, sequence by sequence; x [T][B][I], returns y [T][B][DR], hT, cT."""
    D, R = dims(c)
    T, B, H, P = c["T"], c["B"], c["H"], c["P"]
    layout, _ = block_layout(c)
    lengths = c["lengths"] if c["lengths"] is not None else [T] * B
    ys, hTs, cTs = [], [[None] * B for _ in range(c["L"] * D)], \
        [[None] * B for _ in range(c["L"] * D)]
    for b in range(B):
        n = lengths[b]
        seq = x[:n, b, :]
        for layer, d, t in [(la, dd, tt) for la, dd, tt in layout]:
            if d == 0:
                outs = []
            off, rows, cols = t["W"]
            W = params[off:off + rows * cols].reshape(rows, cols)
            off, rows, _ = t["b"]
            bias = params[off:off + rows]
            Whr = None
            if P > 0:
                off, rows, cols = t["W_hr"]
                Whr = params[off:off + rows * cols].reshape(rows, cols)
            k = layer * D + d
            h, cell = h0[k, b], c0[k, b]
            steps = range(n) if d == 0 else range(n - 1, -1, -1)
            hs = [None] * n
            for s in steps:
                a = W @ torch.cat([h, seq[s]]) + bias
                i = torch.sigmoid(a[0:H])
                f = torch.sigmoid(a[H:2 * H])
                g = torch.tanh(a[2 * H:3 * H])
                o = torch.sigmoid(a[3 * H:4 * H])
                cell = f * cell + i * g
                h = o * torch.tanh(cell)
                if Whr is not None:
                    h = Whr @ h
                hs[s] = h
            hTs[k][b], cTs[k][b] = h, cell
            outs.append(torch.stack(hs))
            if d == D - 1:
                seq = torch.cat(outs, dim=1)
        pad = torch.zeros(T - n, D * R, dtype=torch.float64)
        ys.append(torch.cat([seq, pad], dim=0))
    y = torch.stack(ys, dim=1)
    hT = torch.stack([torch.stack(row) for row in hTs])
    cT = torch.stack([torch.stack(row) for row in cTs])
    return y, hT, cT


def manual_numpy_forward(c, params, x, h0, c0):
    """The same forward in numpy, all sequences at once with a running mask."""
    D, R = dims(c)
    T, B, H, P = c["T"], c["B"], c["H"], c["P"]
    layout, _ = block_layout(c)
    lengths = np.array(c["lengths"] if c["lengths"] is not None else [T] * B)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    hT = np.zeros((c["L"] * D, B, R))
    cT = np.zeros((c["L"] * D, B, H))
    inp = np.where(pad_mask(c)[:, :, None], x, 0.0)
    for layer in range(c["L"]):
        out = np.zeros((T, B, D * R))
        for d in range(D):
            t = [tt for la, dd, tt in layout if la == layer and dd == d][0]
            off, rows, cols = t["W"]
            W = params[off:off + rows * cols].reshape(rows, cols)
            off, rows, _ = t["b"]
            bias = params[off:off + rows]
            if P > 0:
                off, rows, cols = t["W_hr"]
                Whr = params[off:off + rows * cols].reshape(rows, cols)
            k = layer * D + d
            h = h0[k].copy()
            cell = c0[k].copy()
            for step in range(T):
                # Forward: time step; reverse: each sequence's own step n-1-step.
                if d == 0:
                    ts = np.full(B, step)
                else:
                    ts = lengths - 1 - step
                active = ts >= 0
                ts_c = np.clip(ts, 0, T - 1)
                xt = inp[ts_c, np.arange(B)]
                a = np.concatenate([h, xt], axis=1) @ W.T + bias
                i, f = sig(a[:, :H]), sig(a[:, H:2 * H])
                g, o = np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
                c_new = f * cell + i * g
                h_new = o * np.tanh(c_new)
                if P > 0:
                    h_new = h_new @ Whr.T
                if d == 0:
                    active = active & (step < lengths)
                cell = np.where(active[:, None], c_new, cell)
                h = np.where(active[:, None], h_new, h)
                rows_b = np.nonzero(active)[0]
                out[ts_c[rows_b], rows_b, d * R:(d + 1) * R] = h_new[rows_b]
            hT[k], cT[k] = h, cell
        inp = out
    return inp, hT, cT


def rel_err(a, b):
    scale = max(np.abs(b).max(), 1e-300)
    return np.abs(a - b).max() / scale


def check_manual(c, inp, ref):
    params = torch.from_numpy(inp["params"]).clone().requires_grad_(True)
    x = torch.from_numpy(inp["x"]).clone().requires_grad_(True)
    h0 = ref["h0_used"].clone().requires_grad_(True)
    c0 = ref["c0_used"].clone().requires_grad_(True)
    y, hT, cT = manual_torch(c, params, x, h0, c0)
    loss_of(y, hT, cT, valid_dy(c, inp["dy"]), optional_tensor(inp["dhT"]),
            optional_tensor(inp["dcT"])).backward()
    mine = {"y": y, "hT": hT, "cT": cT, "dx": x.grad, "dh0": h0.grad, "dc0": c0.grad,
            "grads": params.grad}
    for name, v in mine.items():
        err = rel_err(v.detach().numpy(), ref[name])
        if err > 1e-12:
            raise AssertionError("%s: manual check failed for %s: rel err %g"
                                 % (c["name"], name, err))
    ny, nh, nc = manual_numpy_forward(c, inp["params"], inp["x"], ref["h0_used"].numpy(),
                                      ref["c0_used"].numpy())
    for name, v in (("y", ny), ("hT", nh), ("cT", nc)):
        err = rel_err(v, ref[name])
        if err > 1e-12:
            raise AssertionError("%s: numpy check failed for %s: rel err %g"
                                 % (c["name"], name, err))
    # Padding: y and dx exactly zero past each sequence's end.
    pad = ~pad_mask(c)
    assert np.all(ref["y"][pad] == 0.0), c["name"]
    assert np.all(ref["dx"][pad] == 0.0), c["name"]


# ---------------------------------------------------------------------------
# Encoding

OPTIONAL = {"h0": FLAG_H0, "c0": FLAG_C0, "dy": FLAG_DY, "dhT": FLAG_DHT, "dcT": FLAG_DCT}
ORDER = ["params", "x", "h0", "c0", "y", "hT", "cT", "dy", "dhT", "dcT",
         "dx", "dh0", "dc0", "grads"]
FLOAT32_EXACT = {"params", "x", "h0", "c0", "dy", "dhT", "dcT"}
SEQUENCE = {"x", "y", "dy", "dx"}


def encode(c, tensors):
    D, R = dims(c)
    T, B, I, H, L, P = c["T"], c["B"], c["I"], c["H"], c["L"], c["P"]
    LD = L * D
    _, count = block_layout(c)
    expected = {
        "params": (count,), "grads": (count,),
        "x": (T, B, I), "dx": (T, B, I),
        "y": (T, B, D * R), "dy": (T, B, D * R),
        "h0": (LD, B, R), "hT": (LD, B, R), "dhT": (LD, B, R), "dh0": (LD, B, R),
        "c0": (LD, B, H), "cT": (LD, B, H), "dcT": (LD, B, H), "dc0": (LD, B, H),
    }
    flags = c["flags"]
    arrays = []
    for name in ORDER:
        a = tensors[name]
        if name in OPTIONAL and not flags & OPTIONAL[name]:
            assert a is None, name
            continue
        a = np.asarray(a, dtype=np.float64)
        assert a.shape == expected[name], (c["name"], name, a.shape)
        assert np.all(np.isfinite(a)), (c["name"], name)
        if name in FLOAT32_EXACT:
            assert np.array_equal(a.astype(np.float32).astype(np.float64), a), name
        if name in SEQUENCE:
            a = to_layout(c, a)
        arrays.append(np.ascontiguousarray(a).reshape(-1))
    data = np.concatenate(arrays).astype("<f8")
    config_flags = (CONFIG_BIDIRECTIONAL if c["bidir"] else 0) | \
        (CONFIG_BATCH_FIRST if c["bf"] else 0)
    header = MAGIC + struct.pack("<10I", VERSION, flags, config_flags, T, B, I, H, L, P,
                                 data.size)
    lengths = b""
    if flags & FLAG_LENGTHS:
        assert len(c["lengths"]) == B and all(1 <= n <= T for n in c["lengths"])
        lengths = struct.pack("<%dI" % B, *c["lengths"])
        if B % 2 == 1:
            lengths += b"\0\0\0\0"
    else:
        assert c["lengths"] is None
    body = header + lengths + data.tobytes()
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def make_case(c, seed):
    inp = make_inputs(c, seed)
    ref = run_torch(c, inp)
    check_manual(c, inp, ref)
    tensors = dict(inp)
    tensors.update({k: ref[k] for k in ("y", "hT", "cT", "dx", "dh0", "dc0", "grads")})
    return tensors


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s OUTPUT_DIR\n" % argv[0])
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    names = [c["name"] for c in CASES]
    assert len(set(names)) == len(names)
    total = 0
    for index, c in enumerate(CASES):
        tensors = make_case(c, 3000 + index)
        blob = encode(c, tensors)
        path = os.path.join(outdir, c["name"] + ".bin")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
        total += len(blob)
        print("%-26s L=%d D=%d P=%-2d %s T=%d B=%d I=%-2d H=%-2d len=%-16s %7d bytes  %s"
              % (c["name"], c["L"], 2 if c["bidir"] else 1, c["P"], "bf" if c["bf"] else "tf",
                 c["T"], c["B"], c["I"], c["H"],
                 ",".join(map(str, c["lengths"])) if c["lengths"] else "-",
                 len(blob), c["note"]))
    print("%d cases, total %d bytes" % (len(CASES), total))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
