#!/usr/bin/python3
"""Generate the golden files of tests/parity/test_convert.c: train in PyTorch,
convert with bindings/python/lstm/convert.py, and record PyTorch's outputs.

Usage (Debian's python3 with python3-torch and python3-numpy, not a venv):

    /usr/bin/python3 tests/parity/gen_convert_golden.py tests/parity/golden/convert

For each case of CASES below:

1. build a float32 torch.nn.LSTM of that configuration (seeded) and train
   it for TRAIN_STEPS steps of plain SGD on random data (mean squared error
   of y against a random target, dropout active where configured), so that
   its weights are not PyTorch's initial ones, and both biases of every
   layer differ from each other;
2. convert it with lstm.convert.torch_to_bytes into NAME.lstm (the file
   under test: the C test loads it with lstm_model_load);
3. draw a fixed float32 input x (T = 7, B = 3) and initial states h0, c0,
   and compute PyTorch's outputs y, hT, cT in float64 with a float64 copy of
   the trained module (model.double(), eval mode: no dropout);
4. write those into NAME.expected (format below).

Before writing, each case checks itself: the converted file, read back
with lstm.convert.bytes_to_torch and run in float64, gives the same
outputs to 1e-7 relative (the difference is the one rounding of
b = bias_ih + bias_hh to float32), and its tensors are exactly the
module's (W = [weight_hh | weight_ih], b the float64 sum rounded once).

The output is bit-for-bit reproducible: fixed seeds, numpy's PCG64 for the
data, and one torch thread.

File format of NAME.expected, "LSTMCVTX" version 1. Every integer and float
is little-endian; nothing is aligned or padded.

    offset  size  field
         0     8  magic, the ASCII bytes "LSTMCVTX"
         8     4  u32 version = 1
        12     4  u32 flags, as lstm_config.flags: bit 0 bidirectional
                  (LSTM_BIDIRECTIONAL), bit 1 batch first (LSTM_BATCH_FIRST);
                  other bits 0. Must equal the model file's.
        16     4  u32 T (seq_len)
        20     4  u32 B (batch)
        24     4  u32 I (input_size)
        28     4  u32 H (hidden_size)
        32     4  u32 L (num_layers)
        36     4  u32 P (proj_size, 0 for none)
        40        float32 x   [T][B][I]      ([B][T][I] with batch first)
                  float32 h0  [L D][B][R]
                  float32 c0  [L D][B][H]
                  float64 y   [T][B][D R]    ([B][T][D R] with batch first)
                  float64 hT  [L D][B][R]
                  float64 cT  [L D][B][H]
                  (D = 2 when bidirectional, else 1; R = P if P > 0, else H;
                  the layouts of include/lstm/model.h)
  size - 4     4  u32 CRC-32C (as the model format's: lstm.convert.crc32c)
                  of every byte before it

The file is exactly 44 + 4 (|x| + |h0| + |c0|) + 8 (|y| + |hT| + |cT|)
bytes long; the reader checks the size, the CRC and every header field.
"""

import copy
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python"))

from lstm import convert  # noqa: E402  (after the path is set)

MAGIC = b"LSTMCVTX"
VERSION = 1
SEQ_LEN = 7
BATCH = 3
TRAIN_STEPS = 8
LEARNING_RATE = 0.3

# name, nn.LSTM keyword arguments
CASES = [
    ("l1", dict(input_size=5, hidden_size=8, num_layers=1)),
    ("l2_bi", dict(input_size=4, hidden_size=6, num_layers=2, bidirectional=True)),
    ("l2_proj", dict(input_size=5, hidden_size=9, num_layers=2, proj_size=4, dropout=0.25)),
    ("l2_bf_bi_proj", dict(input_size=3, hidden_size=7, num_layers=2, proj_size=3,
                           bidirectional=True, batch_first=True)),
]


def train(module, rng):
    """A few SGD steps of MSE regression on random data (train mode)."""
    optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)
    module.train()
    D = 2 if module.bidirectional else 1
    R = module.proj_size or module.hidden_size
    for _ in range(TRAIN_STEPS):
        shape = ((4, 9) if module.batch_first else (9, 4)) + (module.input_size,)
        x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
        target = torch.from_numpy(
            rng.standard_normal(shape[:2] + (D * R,)).astype(np.float32))
        optimizer.zero_grad()
        y, _ = module(x)
        loss = torch.nn.functional.mse_loss(y, target)
        loss.backward()
        optimizer.step()
    module.eval()


def float32_values(rng, shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def reference(module, x, h0, c0):
    """float64 y, hT, cT of a float64 copy of module (eval mode)."""
    model64 = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        y, (hT, cT) = model64(torch.from_numpy(x).double(),
                              (torch.from_numpy(h0).double(), torch.from_numpy(c0).double()))
    return y.numpy(), hT.numpy(), cT.numpy()


def rel_error(a, b):
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a)))


def self_check(name, module, data, x, h0, c0, outputs):
    """The converted file holds the module's tensors and gives its outputs."""
    model = convert.unpack_model(data)
    state = {k: v.detach().double().numpy() for k, v in module.state_dict().items()}
    D = 2 if module.bidirectional else 1
    R = module.proj_size or module.hidden_size
    for layer in range(module.num_layers):
        for direction in range(D):
            sfx = "_l%d%s" % (layer, "_reverse" if direction else "")
            W = model.tensors["weight" + sfx]
            assert np.array_equal(W[:, :R], state["weight_hh" + sfx]), (name, sfx)
            assert np.array_equal(W[:, R:], state["weight_ih" + sfx]), (name, sfx)
            b = (state["bias_ih" + sfx] + state["bias_hh" + sfx]).astype(np.float32)
            assert np.array_equal(model.tensors["bias" + sfx][:, 0], b), (name, sfx)
            assert not np.array_equal(state["bias_ih" + sfx], state["bias_hh" + sfx])
            if module.proj_size:
                assert np.array_equal(model.tensors["projection" + sfx],
                                      state["weight_hr" + sfx]), (name, sfx)
    back = reference(convert.bytes_to_torch(data), x, h0, c0)
    for label, a, b in zip(("y", "hT", "cT"), back, outputs):
        error = rel_error(a, b)
        assert error <= 1e-7, (name, label, error)


def write_expected(path, module, x, h0, c0, outputs):
    flags = ((convert.LSTM_BIDIRECTIONAL if module.bidirectional else 0)
             | (convert.LSTM_BATCH_FIRST if module.batch_first else 0))
    header = MAGIC + struct.pack("<8I", VERSION, flags, SEQ_LEN, BATCH, module.input_size,
                                 module.hidden_size, module.num_layers, module.proj_size)
    body = b"".join(a.astype("<f4").tobytes() for a in (x, h0, c0))
    body += b"".join(np.ascontiguousarray(a).astype("<f8").tobytes() for a in outputs)
    data = header + body
    data += struct.pack("<I", convert.crc32c(data))
    with open(path, "wb") as handle:
        handle.write(data)
    return len(data)


def main(argv):
    if len(argv) != 2:
        print("usage: %s OUTPUT_DIRECTORY" % argv[0], file=sys.stderr)
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    for index, (name, kwargs) in enumerate(CASES):
        torch.manual_seed(1000 + index)
        rng = np.random.Generator(np.random.PCG64(2000 + index))
        module = torch.nn.LSTM(**kwargs)
        initial = {k: v.clone() for k, v in module.state_dict().items()}
        train(module, rng)
        for key, value in module.state_dict().items():
            assert not torch.equal(value, initial[key]), (name, key, "not trained")

        D = 2 if module.bidirectional else 1
        R = module.proj_size or module.hidden_size
        LD = module.num_layers * D
        x_shape = ((BATCH, SEQ_LEN) if module.batch_first else (SEQ_LEN, BATCH))
        x = float32_values(rng, x_shape + (module.input_size,))
        h0 = float32_values(rng, (LD, BATCH, R), 0.5)
        c0 = float32_values(rng, (LD, BATCH, module.hidden_size), 0.5)
        outputs = reference(module, x, h0, c0)

        data = convert.torch_to_bytes(module)
        self_check(name, module, data, x, h0, c0, outputs)
        with open(os.path.join(out_dir, name + ".lstm"), "wb") as handle:
            handle.write(data)
        size = write_expected(os.path.join(out_dir, name + ".expected"), module, x, h0, c0,
                              outputs)
        print("%-15s %s: %d + %d bytes" % (name, module, len(data), size))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
