#!/usr/bin/python3
"""Generate the PyTorch golden files used by tests/parity/test_tbptt.c.

Usage (Debian's python3 with python3-torch and python3-numpy, not a venv):

    /usr/bin/python3 tests/parity/gen_tbptt_golden.py tests/parity/golden/tbptt

Truncated backpropagation through time as PyTorch users write it: a long
series x of T steps is cut into chunks (5, 5, 5, 5, 3 for T = 23); each
chunk continues from the previous chunk's final state, detached:

    h, c = h0, c0
    for each chunk:
        y, (h, c) = lstm(x_chunk, (h.detach(), c.detach()))
        (y * dy_chunk).sum().backward()      # no zero_grad between chunks

so the parameter gradients accumulate over the chunks and no gradient
crosses a chunk boundary. Recorded: every chunk's y and dx (stored as the
whole series, chunk after chunk), every chunk's dL/dh0 and dL/dc0 (with
respect to its detached initial state), the state at every chunk boundary
and the accumulated parameter gradients after every chunk (the last of
them is the final result).

Each case is a float64 torch.nn.LSTM(input_size, hidden_size, num_layers,
bias=True, batch_first, proj_size), unidirectional. Parameters, x, h0, c0
and dy are float32 values (drawn in float32 with numpy, then upcast), so
the float32 copies the C test makes are exact. liblstm has one bias per
layer, b = bias_ih + bias_hh: bias_ih is set to b and bias_hh to zero.
Parameters and gradients use liblstm's flat layout (include/lstm/model.h),
one block per layer:

    W     [4H][R + I_l]  = [weight_hh_l{l} | weight_ih_l{l}]
    b     [4H]           = bias_ih_l{l}            (gradient: grad bias_ih)
    W_hr  [P][H]         = weight_hr_l{l}          (only when P > 0)

with R = P if P > 0 else H, I_0 = input_size, I_l = R for l > 0.

Every case is checked before it is written, independently of torch.nn.LSTM:
(1) a hand-written cell in torch ops on the flat buffer, run chunk by chunk
with the same detaching and accumulation under autograd, must agree to
1e-12 on everything recorded; (2) a numpy forward over the whole series
must give the same y and final state (truncation changes no forward value);
(3) the accumulated gradient must differ from full backpropagation through
the whole series (by more than 1e-3 relative), so a library that ignored
the chunk boundaries would fail the test.

The output is bit-for-bit reproducible: fixed seeds, numpy's PCG64 for the
data, and one torch thread.

File format "LSTMTBPT", version 1. All integers and floats little-endian.

    offset  size  field
         0     8  magic, the ASCII bytes "LSTMTBPT"
         8     4  uint32 version = 1
        12     4  uint32 config flags, as lstm_config.flags: bit 1 batch
                  first; other bits zero
        16     4  uint32 T  (total steps of the series)
        20     4  uint32 B  (batch)
        24     4  uint32 I  (input_size)
        28     4  uint32 H  (hidden_size)
        32     4  uint32 L  (num_layers)
        36     4  uint32 P  (proj_size; 0 = none, else < H)
        40     4  uint32 K  (number of chunks)
        44   4*K  uint32 chunk lengths, each >= 1, summing to T
    44+4K     4  uint32 n, count of float64 values that follow
    48+4K   8*n  float64 tensors, row-major, in this order:
                   params [N]              float32 values
                   x      [T][B][I]        float32 values ([B][T][I] when batch first)
                   dy     [T][B][R]        float32 values (layout as x)
                   hs     [K+1][L][B][R]   state at each chunk boundary: hs[0] = h0
                                           (float32 values), hs[K] the final h
                   cs     [K+1][L][B][H]   likewise for c
                   y      [T][B][R]        every chunk's y, in series order (layout as x)
                   dx     [T][B][I]        every chunk's dx, in series order (layout as x)
                   dh0    [K][L][B][R]     gradient w.r.t. each chunk's initial h
                   dc0    [K][L][B][H]     gradient w.r.t. each chunk's initial c
                   grads  [K][N]           accumulated parameter gradients after
                                           each chunk (flat layout)
                 N is the parameter count of the layout above.
  48+4K+8n    4  uint32 CRC-32 (IEEE 802.3, as zlib.crc32) of every byte before it
"""

import os
import struct
import sys
import zlib

import numpy as np
import torch

MAGIC = b"LSTMTBPT"
VERSION = 1
CONFIG_BATCH_FIRST = 0x2


def case(name, L, P, batch_first, chunks, B=3, I=4, H=6, seed=0):
    return {"name": name, "L": L, "P": P, "bf": batch_first, "chunks": list(chunks),
            "T": sum(chunks), "B": B, "I": I, "H": H, "seed": seed}


CHUNKS = [5, 5, 5, 5, 3]
CASES = [
    case("l1_p0_tf", 1, 0, False, CHUNKS, seed=11),
    case("l2_p0_tf", 2, 0, False, CHUNKS, seed=12),
    case("l1_p3_tf", 1, 3, False, CHUNKS, seed=13),
    case("l2_p3_bf", 2, 3, True, CHUNKS, seed=14),
]


# ---------------------------------------------------------------------------
# Layout

def state_size(c):
    return c["P"] if c["P"] > 0 else c["H"]


def layer_input(c, layer):
    return c["I"] if layer == 0 else state_size(c)


def block_layout(c):
    """[{name: (offset, rows, cols)}] per layer, and the total count."""
    R, H, P = state_size(c), c["H"], c["P"]
    out = []
    off = 0
    for layer in range(c["L"]):
        il = layer_input(c, layer)
        t = {"W": (off, 4 * H, R + il)}
        off += 4 * H * (R + il)
        t["b"] = (off, 4 * H, 1)
        off += 4 * H
        if P > 0:
            t["W_hr"] = (off, P, H)
            off += P * H
        out.append(t)
    return out, off


def tensor(p, entry):
    off, rows, cols = entry
    return p[off:off + rows * cols].reshape(rows, cols)


# ---------------------------------------------------------------------------
# Data, all in [T][B][...] order

def f32(rng, shape, low, high):
    return rng.uniform(low, high, size=shape).astype(np.float32).astype(np.float64)


def f32_normal(rng, shape, scale=1.0):
    return (rng.standard_normal(size=shape) * scale).astype(np.float32).astype(np.float64)


def make_inputs(c):
    rng = np.random.Generator(np.random.PCG64(c["seed"]))
    R, T, B, H, L = state_size(c), c["T"], c["B"], c["H"], c["L"]
    k = 1.0 / np.sqrt(H)
    layout, count = block_layout(c)
    params = np.zeros(count)
    for t in layout:
        for off, rows, cols in t.values():
            params[off:off + rows * cols] = f32(rng, rows * cols, -k, k)
    return {"params": params,
            "x": f32_normal(rng, (T, B, c["I"])),
            "h0": f32(rng, (L, B, R), -1.0, 1.0),
            "c0": f32(rng, (L, B, H), -2.0, 2.0),
            "dy": f32_normal(rng, (T, B, R))}


def to_layout(c, a):
    """A [T][B][...] array in the case's layout ([B][T][...] when batch first)."""
    return np.ascontiguousarray(np.swapaxes(a, 0, 1)) if c["bf"] else a


def chunk_bounds(c):
    t0 = 0
    for n in c["chunks"]:
        yield t0, n
        t0 += n


# ---------------------------------------------------------------------------
# The reference: torch.nn.LSTM, chunk by chunk

def make_lstm(c, params):
    R = state_size(c)
    lstm = torch.nn.LSTM(c["I"], c["H"], num_layers=c["L"], bias=True,
                         batch_first=c["bf"], dropout=0.0, bidirectional=False,
                         proj_size=c["P"]).double()
    layout, _ = block_layout(c)
    with torch.no_grad():
        for layer, t in enumerate(layout):
            W = torch.from_numpy(tensor(params, t["W"]).copy())
            getattr(lstm, "weight_hh_l%d" % layer).copy_(W[:, :R])
            getattr(lstm, "weight_ih_l%d" % layer).copy_(W[:, R:])
            getattr(lstm, "bias_ih_l%d" % layer).copy_(
                torch.from_numpy(tensor(params, t["b"]).reshape(-1).copy()))
            getattr(lstm, "bias_hh_l%d" % layer).zero_()
            if c["P"] > 0:
                getattr(lstm, "weight_hr_l%d" % layer).copy_(
                    torch.from_numpy(tensor(params, t["W_hr"]).copy()))
    return lstm


def flat_grads(c, lstm):
    layout, count = block_layout(c)
    g = np.zeros(count)
    for layer, t in enumerate(layout):
        gih = getattr(lstm, "bias_ih_l%d" % layer).grad
        ghh = getattr(lstm, "bias_hh_l%d" % layer).grad
        assert torch.allclose(gih, ghh, rtol=1e-13, atol=1e-13)
        off, rows, cols = t["W"]
        gW = torch.cat([getattr(lstm, "weight_hh_l%d" % layer).grad,
                        getattr(lstm, "weight_ih_l%d" % layer).grad], dim=1)
        g[off:off + rows * cols] = gW.numpy().reshape(-1)
        off, rows, _ = t["b"]
        g[off:off + rows] = gih.numpy()
        if c["P"] > 0:
            off, rows, cols = t["W_hr"]
            g[off:off + rows * cols] = \
                getattr(lstm, "weight_hr_l%d" % layer).grad.numpy().reshape(-1)
    return g


def run_torch(c, inp):
    lstm = make_lstm(c, inp["params"])
    h = torch.from_numpy(inp["h0"].copy())
    cell = torch.from_numpy(inp["c0"].copy())
    x_all = torch.from_numpy(inp["x"])
    dy_all = torch.from_numpy(inp["dy"])
    out = {"hs": [h.numpy().copy()], "cs": [cell.numpy().copy()], "y": [], "dx": [],
           "dh0": [], "dc0": [], "grads": []}
    for t0, n in chunk_bounds(c):
        h_in = h.detach().clone().requires_grad_(True)
        c_in = cell.detach().clone().requires_grad_(True)
        xc = x_all[t0:t0 + n]
        dyc = dy_all[t0:t0 + n]
        if c["bf"]:
            xc, dyc = xc.transpose(0, 1), dyc.transpose(0, 1)
        xc = xc.contiguous().clone().requires_grad_(True)
        y, (h, cell) = lstm(xc, (h_in, c_in))
        (y * dyc).sum().backward()
        y_tm, dx_tm = y.detach(), xc.grad
        if c["bf"]:
            y_tm, dx_tm = y_tm.transpose(0, 1), dx_tm.transpose(0, 1)
        out["y"].append(y_tm.numpy().copy())
        out["dx"].append(dx_tm.numpy().copy())
        out["dh0"].append(h_in.grad.numpy().copy())
        out["dc0"].append(c_in.grad.numpy().copy())
        out["grads"].append(flat_grads(c, lstm))
        out["hs"].append(h.detach().numpy().copy())
        out["cs"].append(cell.detach().numpy().copy())
    return {"hs": np.stack(out["hs"]), "cs": np.stack(out["cs"]),
            "y": np.concatenate(out["y"]), "dx": np.concatenate(out["dx"]),
            "dh0": np.stack(out["dh0"]), "dc0": np.stack(out["dc0"]),
            "grads": np.stack(out["grads"])}


# ---------------------------------------------------------------------------
# Independent checks

def manual_cell_forward(c, params, x, h0, c0):
    """The equations of include/lstm/model.h on the flat buffer, in torch ops.
    x [n][B][I]; returns y [n][B][R], hT [L][B][R], cT [L][B][H]."""
    H, P = c["H"], c["P"]
    layout, _ = block_layout(c)
    seq = x
    hT, cT = [], []
    for layer, t in enumerate(layout):
        off, rows, cols = t["W"]
        W = params[off:off + rows * cols].reshape(rows, cols)
        off, rows, _ = t["b"]
        bias = params[off:off + rows]
        Whr = None
        if P > 0:
            off, rows, cols = t["W_hr"]
            Whr = params[off:off + rows * cols].reshape(rows, cols)
        h, cell = h0[layer], c0[layer]
        outs = []
        for s in range(seq.shape[0]):
            a = torch.cat([h, seq[s]], dim=1) @ W.T + bias
            i = torch.sigmoid(a[:, 0:H])
            f = torch.sigmoid(a[:, H:2 * H])
            g = torch.tanh(a[:, 2 * H:3 * H])
            o = torch.sigmoid(a[:, 3 * H:4 * H])
            cell = f * cell + i * g
            h = o * torch.tanh(cell)
            if Whr is not None:
                h = h @ Whr.T
            outs.append(h)
        seq = torch.stack(outs)
        hT.append(h)
        cT.append(cell)
    return seq, torch.stack(hT), torch.stack(cT)


def rel_err(a, b):
    scale = max(np.abs(b).max(), 1e-300)
    return np.abs(a - b).max() / scale


def check_manual(c, inp, ref):
    params = torch.from_numpy(inp["params"].copy()).requires_grad_(True)
    h = torch.from_numpy(inp["h0"].copy())
    cell = torch.from_numpy(inp["c0"].copy())
    x_all = torch.from_numpy(inp["x"])
    dy_all = torch.from_numpy(inp["dy"])
    got = {"hs": [h.numpy().copy()], "cs": [cell.numpy().copy()], "y": [], "dx": [],
           "dh0": [], "dc0": [], "grads": []}
    for t0, n in chunk_bounds(c):
        h_in = h.detach().clone().requires_grad_(True)
        c_in = cell.detach().clone().requires_grad_(True)
        xc = x_all[t0:t0 + n].clone().requires_grad_(True)
        y, h, cell = manual_cell_forward(c, params, xc, h_in, c_in)
        (y * dy_all[t0:t0 + n]).sum().backward()
        got["y"].append(y.detach().numpy())
        got["dx"].append(xc.grad.numpy().copy())
        got["dh0"].append(h_in.grad.numpy().copy())
        got["dc0"].append(c_in.grad.numpy().copy())
        got["grads"].append(params.grad.numpy().copy())  # accumulates, as torch does
        got["hs"].append(h.detach().numpy().copy())
        got["cs"].append(cell.detach().numpy().copy())
    mine = {"hs": np.stack(got["hs"]), "cs": np.stack(got["cs"]),
            "y": np.concatenate(got["y"]), "dx": np.concatenate(got["dx"]),
            "dh0": np.stack(got["dh0"]), "dc0": np.stack(got["dc0"]),
            "grads": np.stack(got["grads"])}
    for name, v in mine.items():
        err = rel_err(v, ref[name])
        if err > 1e-12:
            raise AssertionError("%s: manual check failed for %s: rel err %g"
                                 % (c["name"], name, err))

    # numpy forward over the whole series: the same y and final state
    H, P = c["H"], c["P"]
    layout, _ = block_layout(c)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))
    seq = inp["x"]
    for layer, t in enumerate(layout):
        W = tensor(inp["params"], t["W"])
        bias = tensor(inp["params"], t["b"]).reshape(-1)
        h, cl = inp["h0"][layer].copy(), inp["c0"][layer].copy()
        outs = []
        for s in range(seq.shape[0]):
            a = np.concatenate([h, seq[s]], axis=1) @ W.T + bias
            cl = sig(a[:, H:2 * H]) * cl + sig(a[:, :H]) * np.tanh(a[:, 2 * H:3 * H])
            h = sig(a[:, 3 * H:]) * np.tanh(cl)
            if P > 0:
                h = h @ tensor(inp["params"], t["W_hr"]).T
            outs.append(h)
        seq = np.stack(outs)
        for name, v, r in (("hT", h, ref["hs"][-1][layer]), ("cT", cl, ref["cs"][-1][layer])):
            if rel_err(v, r) > 1e-12:
                raise AssertionError("%s: numpy check failed for %s" % (c["name"], name))
    if rel_err(seq, ref["y"]) > 1e-12:
        raise AssertionError("%s: numpy check failed for y" % c["name"])

    # Full BPTT through the whole series gives other gradients.
    params.grad = None
    xf = x_all.clone()
    y, _, _ = manual_cell_forward(c, params, xf, torch.from_numpy(inp["h0"]),
                                  torch.from_numpy(inp["c0"]))
    (y * dy_all).sum().backward()
    diff = rel_err(params.grad.numpy(), ref["grads"][-1])
    if diff < 1e-3:
        raise AssertionError("%s: truncation changes the gradient by only %g" % (c["name"], diff))
    return diff


# ---------------------------------------------------------------------------
# Encoding

def encode(c, inp, ref):
    R, T, B, I, H, L = state_size(c), c["T"], c["B"], c["I"], c["H"], c["L"]
    K = len(c["chunks"])
    _, N = block_layout(c)
    parts = [
        ("params", inp["params"], (N,), True, False),
        ("x", inp["x"], (T, B, I), True, True),
        ("dy", inp["dy"], (T, B, R), True, True),
        ("hs", ref["hs"], (K + 1, L, B, R), False, False),
        ("cs", ref["cs"], (K + 1, L, B, H), False, False),
        ("y", ref["y"], (T, B, R), False, True),
        ("dx", ref["dx"], (T, B, I), False, True),
        ("dh0", ref["dh0"], (K, L, B, R), False, False),
        ("dc0", ref["dc0"], (K, L, B, H), False, False),
        ("grads", ref["grads"], (K, N), False, False),
    ]
    arrays = []
    for name, a, shape, exact, sequence in parts:
        a = np.asarray(a, dtype=np.float64)
        assert a.shape == shape, (c["name"], name, a.shape, shape)
        assert np.all(np.isfinite(a)), (c["name"], name)
        if exact:
            assert np.array_equal(a.astype(np.float32).astype(np.float64), a), name
        if sequence:
            a = to_layout(c, a)
        arrays.append(np.ascontiguousarray(a).reshape(-1))
    # h0 and c0 are inputs too: float32 values
    for a in (ref["hs"][0], ref["cs"][0]):
        assert np.array_equal(a.astype(np.float32).astype(np.float64), a)
    data = np.concatenate(arrays).astype("<f8")
    config_flags = CONFIG_BATCH_FIRST if c["bf"] else 0
    header = MAGIC + struct.pack("<9I", VERSION, config_flags, T, B, I, H, L, c["P"], K)
    header += struct.pack("<%dI" % K, *c["chunks"]) + struct.pack("<I", data.size)
    body = header + data.tobytes()
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s OUTPUT_DIR\n" % argv[0])
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    total = 0
    for c in CASES:
        assert all(n >= 1 for n in c["chunks"]) and c["P"] < c["H"]
        inp = make_inputs(c)
        ref = run_torch(c, inp)
        trunc = check_manual(c, inp, ref)
        blob = encode(c, inp, ref)
        path = os.path.join(out_dir, c["name"] + ".bin")
        with open(path, "wb") as f:
            f.write(blob)
        total += len(blob)
        print("%-10s L=%d P=%d %s T=%d chunks=%s: %d bytes; full BPTT differs by %.3g"
              % (c["name"], c["L"], c["P"], "bf" if c["bf"] else "tf", c["T"],
                 "+".join(str(n) for n in c["chunks"]), len(blob), trunc))
    print("total %d bytes" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
