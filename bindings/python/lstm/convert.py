"""Convert between PyTorch's ``torch.nn.LSTM`` and liblstm model files.

liblstm model files (format version 1, docs/model-format.md) are read and
written here in pure Python (``struct``, ``numpy``); PyTorch is imported
only by the functions that make or take torch objects.

Layers
------
The file level works on liblstm's own form of a model:

- :func:`pack_model` and :func:`unpack_model` turn a configuration and its
  named tensors into a file's bytes and back, with every check the C
  loader makes; :func:`crc32c` is the file's checksum.

- :func:`pack_network` writes a whole network (format 1.1: an embedding
  or float features, the LSTM, a dense head on every step or on the last
  step, a loss, metadata); :func:`unpack_model` reads any model file,
  network sections included (:class:`ModelFile`).

- Both write quantized files too (format 1.2: W and W_hr in bf16 or int8
  in ``QTNS`` sections) given ``quantized=``: a precision, to quantize
  as liblstm does (:func:`quantize`, the bytes of
  lstm_model_save_quantized), or the quantized weights themselves. A
  network's embedding and head W go in the precision too (format 1.3:
  ``EMBQ`` and ``HDQ `` sections, :func:`quantize_rows`; the bytes of
  lstm_network_save_quantized).

The PyTorch level maps that form to and from ``torch.nn.LSTM``:

- :func:`torch_to_bytes`, :func:`save_torch`: an ``nn.LSTM`` (or its
  ``state_dict``) to a model file; also a dynamically quantized LSTM
  (``torch.ao.quantization.quantize_dynamic(model, {nn.LSTM},
  dtype=torch.qint8)``) to an int8 file, its q and scales as they are
  (:func:`quantized_torch_to_liblstm`);
- :func:`bytes_to_state_dict`, :func:`bytes_to_torch`, :func:`load_torch`:
  a model file to a ``state_dict`` or an ``nn.LSTM``;
- :func:`torch_parts_to_bytes`, :func:`save_torch_parts`,
  :func:`bytes_to_torch_parts`, :func:`load_torch_parts`: a whole network's
  ``nn.Embedding``, ``nn.LSTM`` and ``nn.Linear`` (with where the head sits,
  the loss, metadata) to one file and back (:class:`TorchParts`).

:func:`from_onnx` reads an ONNX model of such a network (what
``torch.onnx.export`` writes; lstm/onnx_import.py).

Mapping (include/lstm/model.h), for layer ``l`` and direction suffix
``sfx`` (``""``, or ``"_reverse"`` for the reverse direction)::

    liblstm tensor              shape              PyTorch
    weight_l{l}{sfx}      W     4H x (R + I_l)     [weight_hh_l{l}{sfx} | weight_ih_l{l}{sfx}]
    bias_l{l}{sfx}        b     4H x 1             bias_ih_l{l}{sfx} + bias_hh_l{l}{sfx}
    projection_l{l}{sfx}  W_hr  P x H              weight_hr_l{l}{sfx}   (proj_size > 0 only)
    peephole_l{l}{sfx}    p     3 x H              (none: PyTorch has no peepholes)

with R = P when there is a projection and H otherwise, I_0 = input_size and
I_l = D R for l > 0 (D = 2 when bidirectional).

What is exact and what is not
-----------------------------
PyTorch keeps two biases per layer and direction, liblstm one. Going to
liblstm, ``b = bias_ih + bias_hh`` is summed in float64 and rounded once to
float32: the one lossy step of a float32 model (at most half a float32 ulp
of each sum; the outputs move by about 1e-8 relative). A float64 (or
float16) model is also rounded to float32, the only type the file holds.
A module built with ``bias=False`` gets ``b = 0``.

Going to PyTorch, ``b`` goes entirely into ``bias_ih`` and ``bias_hh`` is
zero; the sum, which is all the LSTM ever uses, is exact. So
liblstm -> PyTorch -> liblstm gives the same bytes back.

Everything else is copied bit for bit. Dropout is kept in the file's
configuration (it acts only in training); ``batch_first`` is kept as
liblstm's ``LSTM_BATCH_FIRST`` flag.

Errors
------
Every problem with a file or a model raises :class:`FormatError` (a
``ValueError``) with a message that says what and where (the byte offset of
the section); features a file needs that this reader does not have
(another major version, an unknown required section) raise
:class:`UnsupportedError`, a subclass. Files with peephole weights load
with :func:`unpack_model`, but converting them to PyTorch is refused.

Command line (``bindings/python`` on PYTHONPATH)::

    python3 -m lstm.convert to-lstm MODEL.pt OUT.lstm   # a torch.save'd nn.LSTM (or state_dict)
    python3 -m lstm.convert to-lstm --precision int8 MODEL.pt OUT.lstm  # quantized (format 1.2)
    python3 -m lstm.convert to-torch IN.lstm OUT.pt     # saves an nn.LSTM module
    python3 -m lstm.convert info IN.lstm                # configuration and tensors
    python3 -m lstm.convert from-onnx IN.onnx OUT.lstm  # an ONNX sequence model (from_onnx)
"""

import argparse
import math
import os
import struct
import sys
import tempfile

import numpy as np

__all__ = [
    "FormatError",
    "UnsupportedError",
    "ModelFile",
    "crc32c",
    "tensor_name",
    "tensor_shapes",
    "pack_model",
    "pack_network",
    "quantize",
    "quantize_rows",
    "dequantize",
    "unpack_model",
    "torch_to_bytes",
    "save_torch",
    "quantized_torch_to_liblstm",
    "bytes_to_state_dict",
    "bytes_to_torch",
    "load_torch",
    "TorchParts",
    "torch_parts_to_bytes",
    "save_torch_parts",
    "bytes_to_torch_parts",
    "load_torch_parts",
    "from_onnx",
    "main",
]

# ---- format constants (docs/model-format.md) --------------------------------

MAGIC = b"LSTMFILE"
FORMAT_MAJOR = 1
FORMAT_MINOR = 1  # what the writers emit; readers take any minor of major 1
FORMAT_MINOR_QUANTIZED = 2  # 1.2: written only in a quantized file (one with QTNS)
FORMAT_MINOR_QUANTIZED_NETWORK = 3  # 1.3: written only in a file with EMBQ or HDQ
HEADER_SIZE = 16
SECTION_OVERHEAD = 20  # tag, flags, length before the payload; CRC after it
CONF_SIZE = 48
TENS_FIXED = 32  # layer, direction, kind, name length, rows, cols
QTNS_FIXED = 40  # layer, direction, kind, precision, rows, cols, split
SECTION_REQUIRED = 0x1

# lstm_precision of the QTNS sections; "fp32" is a file without them.
PRECISIONS = {"bf16": 1, "int8": 2}
PRECISION_NAMES = {value: name for name, value in PRECISIONS.items()}

LSTM_BIDIRECTIONAL = 0x1
LSTM_BATCH_FIRST = 0x2
LSTM_PEEPHOLE = 0x4
KNOWN_FLAGS = LSTM_BIDIRECTIONAL | LSTM_BATCH_FIRST | LSTM_PEEPHOLE

LSTM_MAX_SIZE = 1 << 24
LSTM_MAX_LAYERS = 1024

# Tensor kinds, as lstm_tensor.
WEIGHT, BIAS, PROJECTION, PEEPHOLE = 0, 1, 2, 3
KIND_PREFIXES = ("weight", "bias", "projection", "peephole")

# The network sections of format 1.1 (docs/model-format.md).
NETW_SIZE = 24     # input, head, loss, reserved, head_size
EMBD_FIXED = 32    # num_embeddings, embedding_dim, flags, reserved, padding_idx
HEAD_FIXED = 16    # out_features, in_features
HDQ_FIXED = 24     # out_features, in_features, precision, reserved (EMBQ: EMBD_FIXED,
                   # its reserved field the precision)
META_FIXED = 16    # kind, key_length, value_length
EMBEDDING_PADDING = 0x1
LSTM_MAX_VOCAB = 1 << 31
META_MAX_KEY = 255
META_MAX_VALUE = 1 << 30
META_MAX_ENTRIES = 65536
META_TEXT, META_BYTES = 0, 1
# The required bit of the 1.1 sections is fixed (readers refuse the other value).
_NETWORK_SECTION_REQUIRED = {b"NETW": True, b"EMBD": True, b"HEAD": True, b"META": False,
                             b"EMBQ": True, b"HDQ ": True}
# Names of the NETW enums, indexed by their values (lstm_head_placement,
# lstm_loss_kind); None is "none".
INPUT_KINDS = ("features", "tokens")
HEAD_PLACEMENTS = (None, "every", "last")
LOSS_KINDS = (None, "cross_entropy", "bce_with_logits", "mse")


class FormatError(ValueError):
    """A model file, or a model to be written, that is not valid."""


class UnsupportedError(FormatError):
    """A model file that needs a feature this reader does not have."""


# ---- CRC-32C -----------------------------------------------------------------

def _make_crc_table():
    # Castagnoli polynomial 0x1EDC6F41, reflected: 0x82F63B78.
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return tuple(table)


_CRC_TABLE = _make_crc_table()
_CRC_TABLE_NP = np.array(_CRC_TABLE, dtype=np.uint32)
# Inputs from this size on go through the vectorised path.
_CRC_VECTOR_MIN = 1 << 16


def _crc_register_bytes(register, data):
    """The CRC register after feeding data byte by byte (no pre/post inversion)."""
    table = _CRC_TABLE
    for byte in data:
        register = (register >> 8) ^ table[(register ^ byte) & 0xFF]
    return register


def _crc_register_vector(register, data):
    """Same result as _crc_register_bytes, for long inputs.

    The CRC register is linear over GF(2) in (register, data). The data is cut
    into `lanes` chunks of k bytes whose registers, each started from 0, are
    computed side by side with numpy; 32 extra lanes fed zero bytes from the
    registers 1 << i give the columns of the 32 x 32 matrix M that advances
    a register over k zero bytes. Then, chunk by chunk,
    register <- M register ^ chunk_register, and the < lanes leftover bytes
    go through the byte loop.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    lanes = max(64, min(16384, math.isqrt(buf.size)))
    k = buf.size // lanes
    body = np.zeros((k, lanes + 32), dtype=np.uint8)
    body[:, :lanes] = buf[: lanes * k].reshape(lanes, k).T
    state = np.zeros(lanes + 32, dtype=np.uint32)
    state[lanes:] = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    table = _CRC_TABLE_NP
    eight = np.uint32(8)
    mask = np.uint32(0xFF)
    for t in range(k):
        state = (state >> eight) ^ table[(state ^ body[t]) & mask]
    chunks = state[:lanes].tolist()
    columns = state[lanes:].tolist()
    # M applied one byte of the register at a time: four 256-entry tables.
    advance = []
    for byte in range(4):
        cols = columns[8 * byte: 8 * byte + 8]
        entries = [0] * 256
        for v in range(1, 256):
            low = v & -v
            entries[v] = entries[v ^ low] ^ cols[low.bit_length() - 1]
        advance.append(entries)
    a0, a1, a2, a3 = advance
    for chunk in chunks:
        register = (a0[register & 0xFF] ^ a1[(register >> 8) & 0xFF]
                    ^ a2[(register >> 16) & 0xFF] ^ a3[register >> 24] ^ chunk)
    return _crc_register_bytes(register, buf[lanes * k:].tobytes())


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli) of data, as the model format uses it.

    Polynomial 0x1EDC6F41, reflected, initial value and final XOR 0xFFFFFFFF:
    ``crc32c(b"123456789") == 0xE3069283``. Like ``zlib.crc32``, a previous
    result passed as crc continues the computation:
    ``crc32c(b + c) == crc32c(c, crc32c(b))``.
    """
    data = memoryview(data).cast("B")
    register = (crc ^ 0xFFFFFFFF) & 0xFFFFFFFF
    if len(data) >= _CRC_VECTOR_MIN:
        register = _crc_register_vector(register, data)
    else:
        register = _crc_register_bytes(register, data)
    return register ^ 0xFFFFFFFF


# ---- configurations and their tensors ---------------------------------------

CONFIG_KEYS = ("input_size", "hidden_size", "num_layers", "proj_size",
               "bidirectional", "batch_first", "peephole", "dropout")


def _check_config(config):
    """A complete, checked copy of a liblstm configuration dict (lstm_config's rules).

    Keys: input_size, hidden_size, num_layers (0 means 1), proj_size (0 for
    none), bidirectional, batch_first, peephole, dropout; the last five are
    optional.
    """
    unknown = set(config) - set(CONFIG_KEYS)
    if unknown:
        raise FormatError("unknown configuration keys: %s" % ", ".join(sorted(unknown)))
    out = {}
    for key in ("input_size", "hidden_size", "num_layers", "proj_size"):
        value = config.get(key, 0 if key in ("num_layers", "proj_size") else None)
        if value is None:
            raise FormatError("the configuration has no %s" % key)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise FormatError("%s is %r; it must be an integer" % (key, value))
        out[key] = int(value)
    for key in ("bidirectional", "batch_first", "peephole"):
        out[key] = bool(config.get(key, False))
    out["dropout"] = float(config.get("dropout", 0.0))
    if out["num_layers"] == 0:
        out["num_layers"] = 1
    for key in ("input_size", "hidden_size"):
        if not 1 <= out[key] <= LSTM_MAX_SIZE:
            raise FormatError("%s is %d; it must be in [1, %d]" % (key, out[key], LSTM_MAX_SIZE))
    if not 1 <= out["num_layers"] <= LSTM_MAX_LAYERS:
        raise FormatError("num_layers is %d; it must be in [0, %d]"
                          % (out["num_layers"], LSTM_MAX_LAYERS))
    if not 0 <= out["proj_size"] < out["hidden_size"]:
        raise FormatError("proj_size is %d; it must be 0 or less than hidden_size %d"
                          % (out["proj_size"], out["hidden_size"]))
    if not 0.0 <= out["dropout"] < 1.0:  # NaN fails too
        raise FormatError("dropout is %r; it must be in [0, 1)" % out["dropout"])
    return {key: out[key] for key in CONFIG_KEYS}


def _config_flags(config):
    return ((LSTM_BIDIRECTIONAL if config["bidirectional"] else 0)
            | (LSTM_BATCH_FIRST if config["batch_first"] else 0)
            | (LSTM_PEEPHOLE if config["peephole"] else 0))


def tensor_name(kind, layer, direction):
    """The canonical name of a tensor: ``weight_l0``, ``bias_l1_reverse``, ..."""
    return "%s_l%d%s" % (KIND_PREFIXES[kind], layer, "_reverse" if direction == 1 else "")


def _directions(config):
    return 2 if config["bidirectional"] else 1


def _tensor_table(config):
    """(name, layer, direction, kind, rows, cols) of every tensor, in file order."""
    H = config["hidden_size"]
    P = config["proj_size"]
    R = P if P else H
    D = _directions(config)
    table = []
    for layer in range(config["num_layers"]):
        layer_input = config["input_size"] if layer == 0 else D * R
        for direction in range(D):
            shapes = [(WEIGHT, 4 * H, R + layer_input), (BIAS, 4 * H, 1)]
            if P:
                shapes.append((PROJECTION, P, H))
            if config["peephole"]:
                shapes.append((PEEPHOLE, 3, H))
            for kind, rows, cols in shapes:
                table.append((tensor_name(kind, layer, direction), layer, direction, kind,
                              rows, cols))
    return table


def tensor_shapes(config):
    """{name: (rows, cols)} of every tensor of a configuration, in file order."""
    config = _check_config(config)
    return {entry[0]: (entry[4], entry[5]) for entry in _tensor_table(config)}


# ---- writing -------------------------------------------------------------------

def _section(tag, payload, required=True):
    head = struct.pack("<4sIQ", tag, SECTION_REQUIRED if required else 0, len(payload))
    body = head + payload
    return body + struct.pack("<I", crc32c(body))


def _as_float32(name, values, shape):
    """values as a C-ordered float32 array of shape, checked to be finite."""
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise FormatError("%s has dtype %s; it must be real numbers" % (name, array.dtype))
    rows, cols = shape
    if array.shape != (rows, cols) and not (cols == 1 and array.shape == (rows,)):
        raise FormatError("%s has shape %s; it must be %d x %d"
                          % (name, tuple(array.shape), rows, cols))
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(array, dtype=np.float32).reshape(rows, cols)
    if not np.all(np.isfinite(out)):
        raise FormatError("%s holds NaN or infinity (or a value too large for float32)" % name)
    return out


def _checked_tensors(config, tensors, quantized=()):
    """[(name, layer, direction, kind, float32 array)] of exactly the
    configuration's tensors; those named in quantized may be left out (the
    array is then None)."""
    table = _tensor_table(config)
    missing = [entry[0] for entry in table
               if entry[0] not in tensors and entry[0] not in quantized]
    extra = sorted(set(tensors) - {entry[0] for entry in table})
    if missing or extra:
        raise FormatError("the tensors do not match the configuration: %s%s%s"
                          % ("missing " + ", ".join(missing) if missing else "",
                             "; " if missing and extra else "",
                             "unexpected " + ", ".join(extra) if extra else ""))
    return [(name, layer, direction, kind,
             _as_float32(name, tensors[name], (rows, cols)) if name in tensors else None)
            for name, layer, direction, kind, rows, cols in table]


# ---- quantized weights (QTNS, format 1.2) ------------------------------------

def _quantized_split(config, kind, cols):
    """The columns of a quantized tensor's first part: R for W (its W_h;
    W_x is the second part), all of W_hr."""
    return (config["proj_size"] or config["hidden_size"]) if kind == WEIGHT else cols


def _bf16_bits(values):
    """float32 values (finite) as bf16 bits, as liblstm rounds them: to
    nearest, ties to even, subnormals to a signed zero."""
    u = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    subnormal = (u & 0x7F800000) == 0
    return np.where(subnormal, (u >> 16) & 0x8000, rounded).astype(np.uint16)


def _quantize_tensor(name, values, split, precision):
    """A float32 weight (rows x cols) in bf16 or int8, exactly as liblstm
    packs it for inference (src/lowp.c): s = max |w| / 127 over each row of
    each part, q = round(w / s) clamped to [-127, 127], ties to even, in
    float32 arithmetic."""
    if precision == "bf16":
        bits = _bf16_bits(values)
        if np.any((bits & 0x7F80) == 0x7F80):
            raise FormatError("%s holds a value too large for bf16 (it rounds to infinity)"
                              % name)
        return {"precision": "bf16", "bits": bits}
    rows, cols = values.shape
    parts = [(0, split)] + ([(split, cols)] if split < cols else [])
    scales = np.empty((len(parts), rows), dtype=np.float32)
    q = np.zeros((rows, cols), dtype=np.int8)
    for index, (first, last) in enumerate(parts):
        block = values[:, first:last]
        s = (np.max(np.abs(block), axis=1) if last > first else np.zeros(rows, np.float32)) \
            .astype(np.float32) / np.float32(127)
        scales[index] = s
        positive = s > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = block / np.where(positive, s, np.float32(1))[:, None]
        ratio = np.clip(ratio, np.float32(-127), np.float32(127))
        q[:, first:last] = np.where(positive[:, None], np.rint(ratio), 0).astype(np.int8)
    return {"precision": "int8", "q": q, "scales": scales}


def quantize(config, tensors, precision):
    """{name: quantized weight} of every W and W_hr of a configuration's
    float tensors, in ``precision`` "bf16" or "int8", bit for bit as
    liblstm packs them for inference and lstm_model_save_quantized writes
    them (the value :func:`pack_model` takes as ``quantized``).

    A quantized weight is a dict: ``{"precision": "int8", "q": int8 rows x
    cols, "scales": float32 parts x rows}`` (one scale per row of each part:
    W's W_h columns, then its W_x columns; W_hr has one part; the weight is
    q s), or ``{"precision": "bf16", "bits": uint16 rows x cols}`` (the
    upper halves of float32 values).
    """
    config = _check_config(config)
    if precision not in PRECISIONS:
        raise FormatError("precision is %r; it must be 'bf16' or 'int8'" % (precision,))
    out = {}
    for name, _, _, kind, values in _checked_tensors(config, tensors):
        if kind in (WEIGHT, PROJECTION):
            split = _quantized_split(config, kind, values.shape[1])
            out[name] = _quantize_tensor(name, values, split, precision)
    return out


def quantize_rows(values, precision):
    """A float32 matrix (rows x cols: a network's embedding, V x E, or its
    head's W, O x K) in ``precision`` "bf16" or "int8" with one scale per
    row, bit for bit as liblstm runs it and lstm_network_save_quantized
    writes it (``EMBQ`` and ``HDQ ``): bf16 rounded to nearest even; int8
    s = max |w| / 127 and q = round(w / s) per row. The result is a
    quantized weight as :func:`quantize` gives them (scales 1 x rows), the
    ``"quantized"`` entry of :func:`pack_network`'s embedding and head."""
    if precision not in PRECISIONS:
        raise FormatError("precision is %r; it must be 'bf16' or 'int8'" % (precision,))
    array = np.asarray(values)
    if array.ndim != 2:
        raise FormatError("the matrix has shape %s; it must be rows x cols"
                          % (tuple(array.shape),))
    values = _as_float32("the matrix", array, array.shape)
    return _quantize_tensor("the matrix", values, values.shape[1], precision)


def dequantize(weight, split):
    """The float32 values of a quantized weight (see :func:`quantize`): q s,
    each product rounded once to float32, with the scales of the first part
    for the columns before ``split`` and those of the second after; or the
    bf16 values. These are a loaded model's float32 parameters."""
    if weight["precision"] == "bf16":
        return (np.asarray(weight["bits"], dtype=np.uint16).astype(np.uint32) << 16) \
            .view(np.float32)
    q = np.asarray(weight["q"], dtype=np.int8)
    scales = np.asarray(weight["scales"], dtype=np.float32)
    columns = np.arange(q.shape[1]) >= split
    per_value = np.where(columns[None, :], scales[-1][:, None], scales[0][:, None])
    return q.astype(np.float32) * per_value


def _check_quantized(name, weight, rows, cols, split, symmetric=False):
    """A quantized weight (see :func:`quantize`) checked against its shape
    and the format's rules (symmetric: q in [-127, 127], as EMBQ and HDQ
    have it; QTNS takes -128 too); returns the checked weight."""
    if not isinstance(weight, dict) or weight.get("precision") not in PRECISIONS:
        raise FormatError("the quantized %s must be a dict with precision 'bf16' or 'int8'"
                          % name)
    if weight["precision"] == "bf16":
        bits = np.asarray(weight.get("bits"))
        if bits.dtype != np.uint16 or bits.shape != (rows, cols):
            raise FormatError("the bf16 %s must be uint16 bits of shape %d x %d, not %s %s"
                              % (name, rows, cols, bits.dtype, tuple(bits.shape)))
        exponent = bits & 0x7F80
        if np.any(exponent == 0x7F80) or np.any((exponent == 0) & ((bits & 0x7F) != 0)):
            raise FormatError("the bf16 %s holds NaN, infinity or a subnormal value" % name)
        return {"precision": "bf16", "bits": np.ascontiguousarray(bits)}
    parts = 2 if split < cols else 1
    q = np.asarray(weight.get("q"))
    scales = np.asarray(weight.get("scales"))
    if q.dtype != np.int8 or q.shape != (rows, cols):
        raise FormatError("the int8 %s must be int8 q of shape %d x %d, not %s %s"
                          % (name, rows, cols, q.dtype, tuple(q.shape)))
    if scales.shape == (rows,) and parts == 1:
        scales = scales.reshape(1, rows)
    if scales.dtype.kind != "f" or scales.shape != (parts, rows):
        raise FormatError("the int8 %s needs %d x %d float scales (one per row of each part), "
                          "not %s %s" % (name, parts, rows, scales.dtype, tuple(scales.shape)))
    scales = np.ascontiguousarray(scales, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~(scales >= 0) | ~np.isfinite(np.float32(128) * scales)
    if np.any(bad):
        raise FormatError("the int8 %s has a scale that is negative, NaN, or too large "
                          "(128 s must be finite)" % name)
    if symmetric and np.any(q == -128):
        raise FormatError("the int8 %s holds q = -128; q must be in [-127, 127]" % name)
    return {"precision": "int8", "q": np.ascontiguousarray(q), "scales": scales}


def _qtns_payload(layer, direction, kind, weight, split):
    """The QTNS payload of a checked quantized weight."""
    rows, cols = (weight["bits"] if weight["precision"] == "bf16" else weight["q"]).shape
    head = struct.pack("<IIIIQQQ", layer, direction, kind, PRECISIONS[weight["precision"]],
                       rows, cols, split)
    if weight["precision"] == "bf16":
        return head + weight["bits"].astype("<u2", copy=False).tobytes()
    return head + weight["scales"].astype("<f4", copy=False).tobytes() + weight["q"].tobytes()


def _name_of(names, value, what):
    """The index of value (a name, or None for "none") in names."""
    if value == "none":
        value = None
    if value not in names:
        raise FormatError("%s is %r; it must be one of %s"
                          % (what, value, ", ".join(repr(n) for n in names)))
    return names.index(value)


def _check_joints(head, loss, head_size):
    """lstm_network_create's rules for a head placement, a loss and head_size (all ints);
    the reason they are refused, or None."""
    if head == 0:
        if head_size != 0:
            return "head_size is %d without a head; it must be 0" % head_size
        if loss == 1:
            return "cross-entropy needs a head to give its classes"
        return None
    if not 1 <= head_size <= LSTM_MAX_SIZE:
        return "head_size is %d; it must be in [1, %d]" % (head_size, LSTM_MAX_SIZE)
    if loss == 1 and head_size < 2:
        return "cross-entropy needs head_size >= 2 classes; it is %d" % head_size
    return None


def _rows_quantized(name, part, values, precision):
    """A network part's matrix (values: its float32 values, rows x cols) in
    a file of ``precision`` ("bf16" or "int8"; None: a float32 file, which
    holds the values): its own "quantized" entry when it has one, checked,
    else quantized as liblstm does (:func:`quantize_rows`)."""
    given = part.get("quantized")
    if precision is None:
        return None
    if given is None:
        return quantize_rows(values, precision)
    rows, cols = values.shape
    checked = _check_quantized(name, given, rows, cols, cols, symmetric=True)
    if checked["precision"] != precision:
        raise FormatError("the %s is quantized in %s, the LSTM in %s; a file holds one precision"
                          % (name, checked["precision"], precision))
    return checked


def _rows_payload(values, quantized):
    """A matrix's values as EMBD/HEAD (float32) or EMBQ/HDQ (quantized) hold them."""
    if quantized is None:
        return values.astype("<f4", copy=False).tobytes()
    if quantized["precision"] == "bf16":
        return quantized["bits"].astype("<u2", copy=False).tobytes()
    return quantized["scales"].astype("<f4", copy=False).tobytes() + quantized["q"].tobytes()


def _embedding_payload(config, embedding, precision=None):
    """(tag, payload) of {"weight": V x E, "padding_idx": None or int in [-V, V),
    "quantized": None or a quantized weight}: EMBD, or EMBQ in a file of a
    precision ("bf16" or "int8")."""
    unknown = set(embedding) - {"weight", "padding_idx", "quantized"}
    if unknown:
        raise FormatError("unknown embedding keys: %s" % ", ".join(sorted(unknown)))
    weight = np.asarray(embedding["weight"])
    if weight.ndim != 2:
        raise FormatError("the embedding weight has shape %s; it must be V x E"
                          % (tuple(weight.shape),))
    V, E = weight.shape
    if not 1 <= V <= LSTM_MAX_VOCAB:
        raise FormatError("the embedding has %d rows; it must have 1 to %d" % (V, LSTM_MAX_VOCAB))
    if E != config["input_size"]:
        raise FormatError("the embedding's dimension is %d; it must be the LSTM's input_size %d"
                          % (E, config["input_size"]))
    padding_idx = embedding.get("padding_idx")
    flags = 0
    if padding_idx is None:
        padding_idx = 0
    else:
        if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
                or not -V <= padding_idx < V:
            raise FormatError("padding_idx is %r; it must be None or an integer in [%d, %d)"
                              % (padding_idx, -V, V))
        flags = EMBEDDING_PADDING
        padding_idx = int(padding_idx) % V
    values = _as_float32("the embedding weight", weight, (V, E))
    quantized = _rows_quantized("embedding", embedding, values, precision)
    if quantized is None:
        return b"EMBD", struct.pack("<QQIIq", V, E, flags, 0, padding_idx) + _rows_payload(
            values, None)
    return b"EMBQ", (struct.pack("<QQIIq", V, E, flags, PRECISIONS[quantized["precision"]],
                                 padding_idx) + _rows_payload(values, quantized))


def _head_payload(config, head, precision=None):
    """(placement value, O, tag, payload) of {"placement", "weight": O x K,
    "bias": O or None, "quantized": None or a quantized W}: HEAD, or HDQ in
    a quantized file (precision as for _embedding_payload)."""
    unknown = set(head) - {"placement", "weight", "bias", "quantized"}
    if unknown:
        raise FormatError("unknown head keys: %s" % ", ".join(sorted(unknown)))
    placement = _name_of(HEAD_PLACEMENTS, head.get("placement"), "the head's placement")
    if placement == 0:
        raise FormatError("a head needs a placement, 'every' or 'last'")
    weight = np.asarray(head["weight"])
    K = _directions(config) * (config["proj_size"] or config["hidden_size"])
    if weight.ndim != 2 or weight.shape[1] != K:
        raise FormatError("the head's weight has shape %s; it must be O x %d (D R of the LSTM)"
                          % (tuple(weight.shape), K))
    O = weight.shape[0]
    bias = head.get("bias")
    W = _as_float32("the head's weight", weight, (O, K))
    b = _as_float32("the head's bias", np.zeros(O) if bias is None else bias, (O, 1))
    quantized = _rows_quantized("head's weight", head, W, precision)
    bias_bytes = b.astype("<f4", copy=False).tobytes()
    if quantized is None:
        return placement, O, b"HEAD", struct.pack("<QQ", O, K) + _rows_payload(W, None) \
            + bias_bytes
    fields = struct.pack("<QQII", O, K, PRECISIONS[quantized["precision"]], 0)
    return placement, O, b"HDQ ", fields + _rows_payload(W, quantized) + bias_bytes


def _utf8(text, what):
    """text (a str) as UTF-8 bytes without NUL."""
    if not isinstance(text, str):
        raise FormatError("%s is %r; it must be a str" % (what, text))
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError("%s %r is not valid Unicode (a lone surrogate)" % (what, text)) from None
    if b"\0" in encoded:
        raise FormatError("%s %r holds a NUL character" % (what, text))
    return encoded


def _meta_payloads(metadata):
    """The META payloads of {key: str (text) or bytes}, sorted by the keys' bytes."""
    if len(metadata) > META_MAX_ENTRIES:
        raise FormatError("%d metadata entries; at most %d" % (len(metadata), META_MAX_ENTRIES))
    entries = []
    for key, value in metadata.items():
        encoded = _utf8(key, "the metadata key")
        if not 1 <= len(encoded) <= META_MAX_KEY:
            raise FormatError("the metadata key %r is %d bytes long; it must be 1 to %d"
                              % (key, len(encoded), META_MAX_KEY))
        if isinstance(value, str):
            kind, data = META_TEXT, _utf8(value, "the text of metadata %r" % key)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            kind, data = META_BYTES, bytes(value)
        else:
            raise FormatError("metadata %r is a %s; it must be str (text) or bytes"
                              % (key, type(value).__name__))
        if len(data) > META_MAX_VALUE:
            raise FormatError("metadata %r is %d bytes; at most %d" % (key, len(data),
                                                                      META_MAX_VALUE))
        entries.append((encoded, struct.pack("<IIQ", kind, len(encoded), len(data))
                        + encoded + data))
    return [payload for _, payload in sorted(entries)]


def _quantized_weights(config, tensors, quantized):
    """{name: checked quantized weight} of every W and W_hr, from
    pack_model's quantized argument: None (a float32 file: {}), a
    precision name, or {name: quantized weight}."""
    if quantized is None:
        return {}
    if isinstance(quantized, str):
        quantized = quantize(config, tensors, quantized)
    table = [entry for entry in _tensor_table(config) if entry[3] in (WEIGHT, PROJECTION)]
    names = {entry[0] for entry in table}
    extra = sorted(set(quantized) - names)
    missing = [entry[0] for entry in table if entry[0] not in quantized]
    if extra or missing:
        raise FormatError("the quantized weights must be every W and W_hr of the "
                          "configuration: %s%s%s"
                          % ("missing " + ", ".join(missing) if missing else "",
                             "; " if missing and extra else "",
                             "unexpected " + ", ".join(extra) if extra else ""))
    out = {name: _check_quantized(name, quantized[name], rows, cols,
                                  _quantized_split(config, kind, cols))
           for name, _, _, kind, rows, cols in table}
    if len({weight["precision"] for weight in out.values()}) > 1:
        raise FormatError("the quantized weights are of two precisions; a file holds one")
    return out


def _pack(config, tensors, network, optimizer, quantized=None):
    """A model file; network is None (no NETW) or the NETW fields and the
    other payloads; quantized as pack_model takes it."""
    config = _check_config(config)
    quantized = _quantized_weights(config, tensors, quantized)
    checked = _checked_tensors(config, tensors, quantized)
    if quantized and optimizer is not None:
        raise FormatError("a quantized file holds no optimizer state")
    # the lowest minor version that has the file's sections
    if network is not None and any(network[part] is not None and network[part][0] in (
            b"EMBQ", b"HDQ ") for part in ("embd", "head")):
        minor = FORMAT_MINOR_QUANTIZED_NETWORK
    else:
        minor = FORMAT_MINOR_QUANTIZED if quantized else FORMAT_MINOR
    parts = [MAGIC + struct.pack("<HH", FORMAT_MAJOR, minor)]
    parts[0] += struct.pack("<I", crc32c(parts[0]))
    conf = struct.pack("<QQQQIId", config["input_size"], config["hidden_size"],
                       config["num_layers"], config["proj_size"], _config_flags(config), 0,
                       config["dropout"])
    parts.append(_section(b"CONF", conf))
    if network is not None:
        parts.append(_section(b"NETW", network["netw"]))
        if network["embd"] is not None:
            parts.append(_section(*network["embd"]))
    for name, layer, direction, kind, values in checked:
        if name in quantized:
            split = _quantized_split(config, kind, _tensor_cols(config, name))
            parts.append(_section(b"QTNS", _qtns_payload(layer, direction, kind,
                                                         quantized[name], split)))
            continue
        encoded = name.encode("ascii")
        payload = (struct.pack("<IIIIQQ", layer, direction, kind, len(encoded), *values.shape)
                   + encoded + values.astype("<f4", copy=False).tobytes())
        parts.append(_section(b"TENS", payload))
    if network is not None:
        if network["head"] is not None:
            parts.append(_section(*network["head"]))
        parts.extend(_section(b"META", payload, required=False) for payload in network["meta"])
    if optimizer is not None:
        parts.append(_section(b"OPTM", bytes(optimizer), required=False))
    parts.append(_section(b"END ", b""))
    return b"".join(parts)


def _tensor_cols(config, name):
    return next(entry[5] for entry in _tensor_table(config) if entry[0] == name)


def pack_model(config, tensors, *, optimizer=None, quantized=None):
    """The bytes of a model file (format 1.1, or 1.2 when quantized) of an LSTM alone.

    config: a dict with input_size, hidden_size, and optionally num_layers,
    proj_size, bidirectional, batch_first, peephole, dropout (liblstm's
    lstm_config; see :func:`unpack_model`).
    tensors: {canonical name: array} with exactly the tensors of the
    configuration (:func:`tensor_shapes`), converted to float32 (a bias may
    be given as a vector).
    optimizer: the payload of an OPTM section (an lstm_optim state, already
    little-endian), or None.

    quantized: None for a float32 file; or a quantized file (format 1.2,
    a QTNS section for every W and W_hr, no optimizer): "bf16" or "int8"
    to quantize the tensors' W and W_hr as liblstm does
    (:func:`quantize`; the same bytes as lstm_model_save_quantized), or
    {name: quantized weight} (as :func:`quantize` returns them: int8 q may
    reach -128, scales are any finite s >= 0 with 128 s finite), whose W
    and W_hr then need not be in tensors (they are not written if they
    are).

    Sections are written in the order liblstm writes them (CONF, the tensors
    by layer, direction and kind, OPTM, END), so a model saved by the C
    library and repacked here gives the same bytes. The file has no network
    sections: liblstm loads it as a features network without head or loss.
    """
    return _pack(config, tensors, None, optimizer, quantized)


def pack_network(config, tensors, *, embedding=None, head=None, loss=None, metadata=None,
                 optimizer=None, quantized=None):
    """The bytes of a model file (format 1.1; 1.2 or 1.3 when quantized) of
    a whole network: an embedding or float features, the LSTM, a dense head,
    a loss, metadata.

    config, tensors, optimizer, quantized: the LSTM (float32 or quantized)
        and an optimizer state, as for :func:`pack_model`. In a quantized
        file (quantized a precision, or the LSTM's quantized weights) the
        embedding and the head's W are in the file's precision too (EMBQ and
        HDQ, format 1.3, what lstm_network_save_quantized writes): their own
        "quantized" entry as it is, or else their weight quantized as
        liblstm does (:func:`quantize_rows`). A float32 file (quantized
        None) holds their "weight" (a "quantized" entry is not written).
    embedding: None (the input is float features), or a dict (token ids):
        ``weight`` V x E (E = config's input_size; row v is the vector of
        id v), ``padding_idx`` None or an integer in [-V, V) (negative
        counts from the end; the file holds it in [0, V)), and optionally
        ``quantized``: the weight in bf16 or int8 as :func:`quantize_rows`
        gives it (int8: one scale per row, q in [-127, 127]).
    head: None, or a dict: ``placement`` "every" (a dense layer on every
        step's y) or "last" (on each sequence's final hidden states, both
        directions side by side), ``weight`` O x K as nn.Linear.weight
        (K = D R), ``bias`` O values or None (zeros), and optionally
        ``quantized``: W in bf16 or int8, as for the embedding (b stays
        float32).
    loss: None, "cross_entropy" (needs a head with O >= 2),
        "bce_with_logits" or "mse".
    metadata: None or {key: value}: str keys (1 to 255 bytes of UTF-8, no
        NUL); a str value is text (UTF-8, no NUL), a bytes value bytes.
        Written sorted by the keys' bytes.

    The file always has a NETW section (even for a features network without
    head, loss or metadata, which the format allows); sections are written
    as liblstm writes them: CONF, NETW, EMBD, the tensors, HEAD, META...,
    OPTM, END. Raises FormatError (a ValueError) for anything the format or
    lstm_network_create would refuse.
    """
    config = _check_config(config)
    loss_value = _name_of(LOSS_KINDS, loss, "loss")
    # the LSTM's quantized weights first: their precision is the file's
    quantized = _quantized_weights(config, tensors, quantized)
    precision = next(iter(quantized.values()))["precision"] if quantized else None
    placement, head_size, head_tag, head_payload = (0, 0, None, None) if head is None \
        else _head_payload(config, head, precision)
    refused = _check_joints(placement, loss_value, head_size)
    if refused:
        raise FormatError(refused)
    network = {
        "netw": struct.pack("<IIIIQ", 0 if embedding is None else 1, placement, loss_value, 0,
                            head_size),
        "embd": None if embedding is None else _embedding_payload(config, embedding, precision),
        "head": None if head is None else (head_tag, head_payload),
        "meta": _meta_payloads(metadata or {}),
    }
    return _pack(config, tensors, network, optimizer, quantized or None)


# ---- reading -------------------------------------------------------------------

class ModelFile:
    """What a checked model file holds.

    Attributes:
        version: (major, minor) format version.
        config: liblstm configuration dict: input_size, hidden_size,
            num_layers, proj_size (0 = none), bidirectional, batch_first,
            peephole (bools), dropout (float).
        tensors: {canonical name: float32 numpy array (rows, cols)} in file
            order (layer, direction, kind); a bias is 4H x 1.
        optimizer: the OPTM payload (bytes), or None.
        skipped: [(tag, payload length, byte offset)] of the unknown optional
            sections that were skipped.
        network: whether the file has a NETW section (format 1.1). A file
            without one is an LSTM alone: a features network, no head, no
            loss; the attributes below then say so.
        input: "features" or "tokens".
        embedding: None, or {"weight": V x E float32, "padding_idx": None or
            an int in [0, V)} (token networks), with "quantized": the rows
            as an EMBQ section stores them (format 1.3, as
            :func:`quantize_rows` gives them), "weight" then their float32
            values (:func:`dequantize`).
        head: None, or {"placement": "every" or "last", "weight": O x K
            float32, "bias": O float32}, with "quantized" for an HDQ
            section's W, as for the embedding.
        loss: None, "cross_entropy", "bce_with_logits" or "mse".
        metadata: {key: value} in the file's (ascending) key order: str
            values for text entries, bytes for bytes entries.
        precision: "fp32", or "bf16" or "int8" for a quantized file
            (format 1.2; 1.3 with a quantized embedding or head).
        quantized: {name: quantized weight} of every W and W_hr of a
            quantized file, as :func:`quantize` gives them ({} otherwise);
            ``tensors`` then holds their float32 values (:func:`dequantize`:
            q s, or the bf16 values), as liblstm's loader makes them.

    ``pack_network(m.config, m.tensors, embedding=m.embedding, head=m.head,
    loss=m.loss, metadata=m.metadata, optimizer=m.optimizer,
    quantized=m.quantized or None)`` writes the file back (byte for byte
    when it was written in liblstm's order, by liblstm 0.8.0 or later for
    a quantized network: 0.7.0's float32 EMBD and HEAD beside QTNS come
    back as EMBQ and HDQ, as liblstm saves them now).
    """

    def __init__(self, version, config, tensors, optimizer, skipped, network=False,
                 input="features", embedding=None, head=None, loss=None, metadata=None,
                 quantized=None):
        self.version = version
        self.config = config
        self.tensors = tensors
        self.optimizer = optimizer
        self.skipped = skipped
        self.network = network
        self.input = input
        self.embedding = embedding
        self.head = head
        self.loss = loss
        self.metadata = {} if metadata is None else metadata
        self.quantized = {} if quantized is None else quantized
        self.precision = next(iter(self.quantized.values()))["precision"] \
            if self.quantized else "fp32"

    def __repr__(self):
        return "ModelFile(version=%r, config=%r, tensors=[%s], input=%r, head=%r, loss=%r, " \
               "metadata=[%s])" % (
                   self.version, self.config, ", ".join(self.tensors), self.input,
                   self.head and self.head["placement"], self.loss,
                   ", ".join(self.metadata))


def _corrupt(what, offset):
    return FormatError("not a valid liblstm model file: %s at byte %d" % (what, offset))


def _read_config(payload, at):
    if len(payload) != CONF_SIZE:
        raise _corrupt("a CONF section of %d bytes instead of %d" % (len(payload), CONF_SIZE), at)
    input_size, hidden_size, num_layers, proj_size, flags, reserved, dropout = \
        struct.unpack("<QQQQIId", payload)
    if reserved != 0:
        raise _corrupt("a CONF section with its reserved field set", at)
    if flags & ~KNOWN_FLAGS:
        raise _corrupt("configuration flags 0x%x with unknown bits" % flags, at)
    try:
        return _check_config({
            "input_size": input_size, "hidden_size": hidden_size, "num_layers": num_layers,
            "proj_size": proj_size, "bidirectional": bool(flags & LSTM_BIDIRECTIONAL),
            "batch_first": bool(flags & LSTM_BATCH_FIRST),
            "peephole": bool(flags & LSTM_PEEPHOLE), "dropout": dropout})
    except FormatError as error:
        raise _corrupt("an invalid configuration (%s)" % error, at) from None


def _read_tensor(payload, at, config, expected, found):
    if len(payload) < TENS_FIXED:
        raise _corrupt("a TENS section too short for its header", at)
    layer, direction, kind, name_length, rows, cols = struct.unpack_from("<IIIIQQ", payload)
    if kind >= len(KIND_PREFIXES):
        raise _corrupt("a tensor of unknown kind %d" % kind, at)
    name = tensor_name(kind, layer, direction) if direction <= 1 else None
    if name not in expected:
        raise _corrupt("a tensor the configuration does not have (layer %d, direction %d, "
                       "kind %d)" % (layer, direction, kind), at)
    want_rows, want_cols = expected[name]
    if (rows, cols) != (want_rows, want_cols):
        raise _corrupt("tensor %s of shape %d x %d; the configuration gives %d x %d"
                       % (name, rows, cols, want_rows, want_cols), at)
    encoded = name.encode("ascii")
    if name_length != len(encoded) or payload[TENS_FIXED:TENS_FIXED + name_length] != encoded:
        raise _corrupt("a tensor whose name is not %s" % name, at)
    count = rows * cols
    if len(payload) != TENS_FIXED + len(encoded) + 4 * count:
        raise _corrupt("tensor %s with a payload of %d bytes instead of %d"
                       % (name, len(payload), TENS_FIXED + len(encoded) + 4 * count), at)
    if name in found:
        raise _corrupt("tensor %s given twice" % name, at)
    values = np.frombuffer(payload, dtype="<f4", count=count, offset=TENS_FIXED + len(encoded))
    if not np.all(np.isfinite(values)):
        raise _corrupt("tensor %s holding NaN or infinity" % name, at)
    found[name] = values.astype(np.float32).reshape(rows, cols)


def _file_precision(given, file_precision, at, what):
    """The precision name of a quantized section (given: its field), which
    must be the file's one precision (file_precision: [name or None], the
    precision of the quantized sections read before, set by the first)."""
    if given not in PRECISION_NAMES:
        raise _corrupt("%s of an unknown precision %d" % (what, given), at)
    name = PRECISION_NAMES[given]
    if file_precision[0] is not None and file_precision[0] != name:
        raise _corrupt("quantized sections of two precisions (%s, then %s)"
                       % (file_precision[0], name), at)
    file_precision[0] = name
    return name


def _read_quantized(payload, at, config, expected, found, quantized, file_precision):
    """A QTNS payload (format 1.2) checked as liblstm's loader checks it,
    into found (its float32 values) and quantized (as stored)."""
    if len(payload) < QTNS_FIXED:
        raise _corrupt("a QTNS section too short", at)
    layer, direction, kind, precision, rows, cols, split = \
        struct.unpack_from("<IIIIQQQ", payload)
    name = tensor_name(kind, layer, direction) \
        if direction <= 1 and kind in (WEIGHT, PROJECTION) else None
    if name not in expected:
        raise _corrupt("a quantized tensor the configuration does not have (layer %d, "
                       "direction %d, kind %d)" % (layer, direction, kind), at)
    _file_precision(precision, file_precision, at, "a quantized tensor")
    if (rows, cols) != expected[name]:
        raise _corrupt("quantized tensor %s of shape %d x %d; the configuration gives %d x %d"
                       % ((name, rows, cols) + expected[name]), at)
    want_split = _quantized_split(config, kind, cols)
    if split != want_split:
        raise _corrupt("quantized tensor %s split at column %d instead of %d"
                       % (name, split, want_split), at)
    parts = 2 if split < cols else 1
    size = 2 * rows * cols if precision == PRECISIONS["bf16"] else 4 * rows * parts + rows * cols
    if len(payload) != QTNS_FIXED + size:
        raise _corrupt("a QTNS section of %d bytes instead of %d"
                       % (len(payload), QTNS_FIXED + size), at)
    if name in found:
        raise _corrupt("tensor %s given twice" % name, at)
    if precision == PRECISIONS["bf16"]:
        weight = {"precision": "bf16", "bits": np.frombuffer(
            payload, dtype="<u2", count=rows * cols, offset=QTNS_FIXED)
            .astype(np.uint16).reshape(rows, cols)}
    else:
        scales = np.frombuffer(payload, dtype="<f4", count=parts * rows, offset=QTNS_FIXED)
        q = np.frombuffer(payload, dtype=np.int8, count=rows * cols,
                          offset=QTNS_FIXED + 4 * parts * rows)
        weight = {"precision": "int8", "q": q.reshape(rows, cols).copy(),
                  "scales": scales.astype(np.float32).reshape(parts, rows)}
    try:
        weight = _check_quantized(name, weight, rows, cols, split)
    except FormatError as error:
        raise _corrupt(str(error), at) from None
    quantized[name] = weight
    found[name] = dequantize(weight, split)


def _read_netw(payload, at):
    """(input, head placement, loss, head_size) of a NETW payload, all ints."""
    if len(payload) != NETW_SIZE:
        raise _corrupt("a NETW section of %d bytes instead of %d" % (len(payload), NETW_SIZE), at)
    kind, placement, loss, reserved, head_size = struct.unpack("<IIIIQ", payload)
    if reserved != 0:
        raise _corrupt("a NETW section with its reserved field set", at)
    if kind >= len(INPUT_KINDS):
        raise _corrupt("a network input of unknown kind %d" % kind, at)
    if placement >= len(HEAD_PLACEMENTS):
        raise _corrupt("a head of unknown placement %d" % placement, at)
    if loss >= len(LOSS_KINDS):
        raise _corrupt("a loss of unknown kind %d" % loss, at)
    refused = _check_joints(placement, loss, head_size)
    if refused:
        raise _corrupt("a network lstm_network_create refuses (%s)" % refused, at)
    return kind, placement, loss, head_size


def _read_rows(payload, offset, rows, cols, precision, at, what, article):
    """(float32 values, quantized weight or None) of a matrix's checked
    values in an EMBD/HEAD (precision None) or EMBQ/HDQ payload; what names
    it in messages (with its article, for float32 values)."""
    if precision is None:
        values = np.frombuffer(payload, dtype="<f4", count=rows * cols, offset=offset)
        if not np.all(np.isfinite(values)):
            raise _corrupt("%s %s holding NaN or infinity" % (article, what), at)
        return values.astype(np.float32).reshape(rows, cols), None
    if precision == "bf16":
        weight = {"precision": "bf16", "bits": np.frombuffer(
            payload, dtype="<u2", count=rows * cols, offset=offset)
            .astype(np.uint16).reshape(rows, cols)}
    else:
        scales = np.frombuffer(payload, dtype="<f4", count=rows, offset=offset)
        q = np.frombuffer(payload, dtype=np.int8, count=rows * cols, offset=offset + 4 * rows)
        weight = {"precision": "int8", "q": q.reshape(rows, cols).copy(),
                  "scales": scales.astype(np.float32).reshape(1, rows)}
    try:
        weight = _check_quantized(what, weight, rows, cols, cols, symmetric=True)
    except FormatError as error:
        raise _corrupt(str(error), at) from None
    return dequantize(weight, cols), weight


def _rows_bytes(precision, rows, cols):
    """Bytes of a matrix's values: float32 (precision None), bf16, or int8
    with a float32 scale per row."""
    if precision is None:
        return 4 * rows * cols
    return 2 * rows * cols if precision == "bf16" else 4 * rows + rows * cols


def _read_embd(payload, at, config, quantized=False, file_precision=None):
    """{"weight", "padding_idx"} of an EMBD payload, or of an EMBQ payload
    (quantized: with "quantized", the weight as stored)."""
    tag = "EMBQ" if quantized else "EMBD"
    if len(payload) < EMBD_FIXED:
        raise _corrupt("an %s section too short for its header" % tag, at)
    V, E, flags, reserved, padding_idx = struct.unpack_from("<QQIIq", payload)
    precision = None
    if quantized:
        precision = _file_precision(reserved, file_precision, at, "an EMBQ section")
    elif reserved != 0:
        raise _corrupt("an EMBD section with its reserved field set", at)
    if flags & ~EMBEDDING_PADDING:
        raise _corrupt("embedding flags 0x%x with unknown bits" % flags, at)
    if not 1 <= V <= LSTM_MAX_VOCAB:
        raise _corrupt("an embedding of %d rows (it must have 1 to %d)" % (V, LSTM_MAX_VOCAB), at)
    if E != config["input_size"]:
        raise _corrupt("an embedding of dimension %d; the LSTM's input_size is %d"
                       % (E, config["input_size"]), at)
    if flags & EMBEDDING_PADDING:
        if not 0 <= padding_idx < V:
            raise _corrupt("padding_idx %d outside [0, %d)" % (padding_idx, V), at)
    elif padding_idx != 0:
        raise _corrupt("padding_idx %d without the padding flag (it must be 0)" % padding_idx, at)
    size = EMBD_FIXED + _rows_bytes(precision, V, E)
    if len(payload) != size:
        raise _corrupt("an %s section of %d bytes; %d x %d values need %d"
                       % (tag, len(payload), V, E, size), at)
    values, weight = _read_rows(payload, EMBD_FIXED, V, E, precision, at, "embedding", "an")
    out = {"weight": values,
           "padding_idx": int(padding_idx) if flags & EMBEDDING_PADDING else None}
    if weight is not None:
        out["quantized"] = weight
    return out


def _read_head(payload, at, config, quantized=False, file_precision=None):
    """({"weight", "bias"}, O) of a HEAD payload (the placement comes from
    NETW), or of an HDQ payload (quantized: with "quantized", W as stored)."""
    tag, fixed = ("HDQ", HDQ_FIXED) if quantized else ("HEAD", HEAD_FIXED)
    if len(payload) < fixed:
        raise _corrupt("a %s section too short for its header" % tag, at)
    O, K = struct.unpack_from("<QQ", payload)
    want_K = _directions(config) * (config["proj_size"] or config["hidden_size"])
    if K != want_K:
        raise _corrupt("a head of %d inputs; the LSTM gives D R = %d" % (K, want_K), at)
    if not 1 <= O <= LSTM_MAX_SIZE:
        raise _corrupt("a head of %d outputs (it must have 1 to %d)" % (O, LSTM_MAX_SIZE), at)
    precision = None
    if quantized:
        given, reserved = struct.unpack_from("<II", payload, 16)
        precision = _file_precision(given, file_precision, at, "an HDQ section")
        if reserved != 0:
            raise _corrupt("an HDQ section with its reserved field set", at)
    size = fixed + _rows_bytes(precision, O, K) + 4 * O
    if len(payload) != size:
        raise _corrupt("a %s section of %d bytes; %d x %d weights and %d biases need %d"
                       % (tag, len(payload), O, K, O, size), at)
    W, weight = _read_rows(payload, fixed, O, K, precision, at, "head", "a")
    bias = np.frombuffer(payload, dtype="<f4", count=O, offset=size - 4 * O)
    if not np.all(np.isfinite(W)) or not np.all(np.isfinite(bias)):
        raise _corrupt("a head holding NaN or infinity", at)
    out = {"weight": W, "bias": bias.astype(np.float32)}
    if weight is not None:
        out["quantized"] = weight
    return out, O


def _decode_utf8(data, what, at):
    """RFC 3629 UTF-8 without NUL (Python's strict codec refuses overlongs,
    surrogates, values above U+10FFFF and truncated sequences)."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        raise _corrupt("%s that is not valid UTF-8 (%s)" % (what, error.reason), at) from None
    if "\0" in text:
        raise _corrupt("%s holding a NUL byte" % what, at)
    return text


def _read_meta(payload, at):
    """(key bytes, key, value) of a META payload: value a str (text) or bytes."""
    if len(payload) < META_FIXED:
        raise _corrupt("a META section too short for its header", at)
    kind, key_length, value_length = struct.unpack_from("<IIQ", payload)
    if kind not in (META_TEXT, META_BYTES):
        raise _corrupt("metadata of unknown kind %d" % kind, at)
    if not 1 <= key_length <= META_MAX_KEY:
        raise _corrupt("a metadata key of %d bytes (it must have 1 to %d)"
                       % (key_length, META_MAX_KEY), at)
    if value_length > META_MAX_VALUE:
        raise _corrupt("a metadata value of %d bytes (at most %d)"
                       % (value_length, META_MAX_VALUE), at)
    if len(payload) != META_FIXED + key_length + value_length:
        raise _corrupt("a META section of %d bytes; its key and value need %d"
                       % (len(payload), META_FIXED + key_length + value_length), at)
    key_bytes = bytes(payload[META_FIXED:META_FIXED + key_length])
    key = _decode_utf8(key_bytes, "a metadata key", at)
    value = bytes(payload[META_FIXED + key_length:])
    if kind == META_TEXT:
        value = _decode_utf8(value, "the text of metadata %r" % key, at)
    return key_bytes, key, value


def unpack_model(data):
    """Check a model file's bytes completely and return a :class:`ModelFile`.

    Checks, as liblstm's loader does (docs/model-format.md, "Validation"):
    magic, major version 1 (any minor), the header CRC and every section's
    CRC, that every length fits in the bytes that remain, reserved flags and
    fields, the configuration (lstm_config's rules), CONF first and once,
    every tensor's identity, name, shape, length and finiteness, no tensor
    missing or repeated, at most one OPTM, an empty END and nothing after it.
    Unknown sections are skipped when optional and refused when required.
    The network sections of format 1.1 (NETW, EMBD, HEAD, META) are read
    and checked as lstm_network_load does: their fields, lengths and
    values, lstm_network_create's rules, EMBD present exactly for a token
    network and HEAD exactly with a head (checked at END), metadata keys
    strictly ascending and valid UTF-8, text values valid UTF-8 without
    NUL, at most 65536 entries, the required bit set on NETW, EMBD and
    HEAD and clear on META.
    The QTNS sections of a quantized file (format 1.2) are checked as
    liblstm checks them too (identity, precision, shape, split, length,
    scales, bf16 values; one precision; every W and W_hr quantized): their
    stored form is in ``quantized``, their float32 values in ``tensors``;
    and so are EMBQ and HDQ (format 1.3; also q in [-127, 127]), their
    stored form in the embedding's and head's "quantized".

    Raises FormatError (a ValueError) for a bad file, UnsupportedError for a
    file that needs a newer reader.
    """
    data = bytes(data)
    size = len(data)
    if size < HEADER_SIZE or data[:8] != MAGIC:
        raise FormatError("not a liblstm model file (no LSTMFILE header)")
    major, minor, header_crc = struct.unpack_from("<HHI", data, 8)
    if header_crc != crc32c(data[:12]):
        raise _corrupt("a header checksum that does not match", 12)
    if major != FORMAT_MAJOR:
        raise UnsupportedError("the file has format version %d.%d; this reader reads version %d"
                               % (major, minor, FORMAT_MAJOR))
    config = None
    expected = {}
    found = {}
    optimizer = None
    skipped = []
    netw = None
    embedding = None
    head = None
    metadata = {}
    quantized = {}
    file_precision = [None]  # of the quantized sections, set by the first
    last_key = None
    at = HEADER_SIZE
    while True:
        if size - at < SECTION_OVERHEAD:
            raise _corrupt("a file that ends inside a section header (truncated?)", at)
        tag, flags, length = struct.unpack_from("<4sIQ", data, at)
        if length > size - at - SECTION_OVERHEAD:
            raise _corrupt("a section longer than the rest of the file (truncated?)", at)
        end = at + 16 + length
        if struct.unpack_from("<I", data, end)[0] != crc32c(memoryview(data)[at:end]):
            raise _corrupt("a %r section whose checksum does not match" % tag.decode("latin-1"),
                           at)
        if flags & ~SECTION_REQUIRED:
            raise _corrupt("a section with reserved flags 0x%x set" % flags, at)
        payload = memoryview(data)[at + 16:end]
        if tag in _NETWORK_SECTION_REQUIRED and \
                bool(flags & SECTION_REQUIRED) != _NETWORK_SECTION_REQUIRED[tag]:
            # fixed, so that no writer's slip makes a 1.0 reader take a network for an LSTM
            raise _corrupt("a %r section with its required bit %s" % (
                tag.decode("latin-1"), "set" if flags & SECTION_REQUIRED else "clear"), at)
        if tag == b"CONF":
            if config is not None:
                raise _corrupt("a second CONF section", at)
            config = _read_config(payload, at)
            expected = {entry[0]: (entry[4], entry[5]) for entry in _tensor_table(config)}
        elif config is None:
            raise _corrupt("a %r section before the configuration (CONF must come first)"
                           % tag.decode("latin-1"), at)
        elif tag == b"TENS":
            _read_tensor(payload, at, config, expected, found)
        elif tag == b"QTNS":
            if not flags & SECTION_REQUIRED:
                raise _corrupt("a QTNS section not marked required", at)
            _read_quantized(payload, at, config, expected, found, quantized, file_precision)
        elif tag == b"OPTM":
            if optimizer is not None:
                raise _corrupt("a second OPTM section", at)
            optimizer = bytes(payload)
        elif tag == b"NETW":
            if netw is not None:
                raise _corrupt("a second NETW section", at)
            netw = _read_netw(payload, at)
        elif tag in (b"EMBD", b"EMBQ"):
            if embedding is not None:
                raise _corrupt("a second %s section (one embedding)" % tag.decode("latin-1"), at)
            embedding = _read_embd(payload, at, config, tag == b"EMBQ", file_precision)
        elif tag in (b"HEAD", b"HDQ "):
            if head is not None:
                raise _corrupt("a second %s section (one head)" % tag.decode("latin-1"), at)
            head = _read_head(payload, at, config, tag == b"HDQ ", file_precision)
        elif tag == b"META":
            if len(metadata) == META_MAX_ENTRIES:
                raise _corrupt("more than %d META sections" % META_MAX_ENTRIES, at)
            key_bytes, key, value = _read_meta(payload, at)
            if last_key is not None and key_bytes <= last_key:
                raise _corrupt("metadata key %r %s" % (
                    key, "repeated" if key_bytes == last_key else
                    "after %r (keys must be strictly ascending)" % last_key.decode("utf-8")), at)
            last_key = key_bytes
            metadata[key] = value
        elif tag == b"END ":
            if length != 0:
                raise _corrupt("an END section with a payload", at)
            _check_network_sections(netw, embedding, head, at)
            at = end + 4
            break
        elif flags & SECTION_REQUIRED:
            raise UnsupportedError("the file needs section %r (byte %d), which this reader "
                                   "does not know" % (tag.decode("latin-1"), at))
        else:
            skipped.append((tag.decode("latin-1"), int(length), at))
        at = end + 4
    if at != size:
        raise _corrupt("%d bytes after the END section" % (size - at), at)
    missing = [name for name in expected if name not in found]
    if missing:
        raise FormatError("not a valid liblstm model file: tensor%s %s missing"
                          % ("s" if len(missing) > 1 else "", ", ".join(missing)))
    tensors = {name: found[name] for name in expected}
    if file_precision[0] is not None:
        floats = [name for name, _, _, kind, _, _ in _tensor_table(config)
                  if kind in (WEIGHT, PROJECTION) and name not in quantized]
        if floats:
            raise FormatError("not a valid liblstm model file: a quantized file with %s in "
                              "float32 (every W and W_hr must be quantized)" % ", ".join(floats))
        quantized = {name: quantized[name] for name in expected if name in quantized}
    kind, placement, loss = netw[:3] if netw is not None else (0, 0, 0)
    if head is not None:
        head = dict(placement=HEAD_PLACEMENTS[placement], **head[0])
    return ModelFile((major, minor), config, tensors, optimizer, skipped, network=netw is not None,
                     input=INPUT_KINDS[kind], embedding=embedding, head=head,
                     loss=LOSS_KINDS[loss], metadata=metadata, quantized=quantized)


def _check_network_sections(netw, embedding, head, at):
    """The rules across NETW, EMBD and HEAD, checked once END is reached."""
    kind, placement, _, head_size = netw if netw is not None else (0, 0, 0, 0)
    if (embedding is not None) != (kind == 1):
        raise _corrupt("%s (NETW's input is %s)" % (
            "an EMBD section in a features network" if embedding is not None
            else "no EMBD section for a token network", INPUT_KINDS[kind]), at)
    if (head is not None) != (placement != 0):
        raise _corrupt("a HEAD section in a network without a head" if head is not None
                       else "no HEAD section for the network's head", at)
    if head is not None and head[1] != head_size:
        raise _corrupt("a head of %d outputs; NETW gives head_size %d" % (head[1], head_size), at)


# ---- PyTorch -------------------------------------------------------------------

def _torch():
    try:
        import torch
    except ImportError as error:  # pragma: no cover - depends on the system
        raise ImportError("lstm.convert needs PyTorch for this (import torch failed: %s)"
                          % error) from None
    return torch


def _to_float64(name, value):
    """A tensor or array as a float64 numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().double().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise FormatError("%s has dtype %s; it must be real numbers" % (name, array.dtype))
    return array.astype(np.float64)


def _torch_keys(config, bias):
    """PyTorch's state_dict names and shapes for a torch.nn.LSTM configuration."""
    H, P = config["hidden_size"], config["proj_size"]
    R = P if P else H
    D = 2 if config["bidirectional"] else 1
    keys = {}
    for layer in range(config["num_layers"]):
        layer_input = config["input_size"] if layer == 0 else D * R
        for direction in range(D):
            sfx = "_l%d%s" % (layer, "_reverse" if direction else "")
            keys["weight_ih" + sfx] = (4 * H, layer_input)
            keys["weight_hh" + sfx] = (4 * H, R)
            if bias:
                keys["bias_ih" + sfx] = (4 * H,)
                keys["bias_hh" + sfx] = (4 * H,)
            if P:
                keys["weight_hr" + sfx] = (P, H)
    return keys


def _infer_torch_config(state):
    """input_size, hidden_size, num_layers, bidirectional, proj_size, bias of a state_dict."""
    if "weight_ih_l0" not in state:
        raise FormatError("the state_dict has no weight_ih_l0: not a torch.nn.LSTM state_dict "
                          "(keys: %s)" % ", ".join(list(state)[:8]))
    weight_ih = np.shape(state["weight_ih_l0"])
    if len(weight_ih) != 2 or weight_ih[0] % 4 != 0:
        raise FormatError("weight_ih_l0 has shape %s; it must be 4H x input_size"
                          % (tuple(weight_ih),))
    num_layers = 0
    while "weight_ih_l%d" % num_layers in state:
        num_layers += 1
    proj = np.shape(state["weight_hr_l0"]) if "weight_hr_l0" in state else (0,)
    return {"input_size": int(weight_ih[1]), "hidden_size": int(weight_ih[0] // 4),
            "num_layers": num_layers, "bidirectional": "weight_ih_l0_reverse" in state,
            "proj_size": int(proj[0]), "bias": "bias_ih_l0" in state}


def torch_to_bytes(module_or_state_dict, *, batch_first=None, dropout=None, precision=None):
    """A liblstm model file (bytes) from a torch.nn.LSTM or its state_dict,
    or from a dynamically quantized LSTM.

    module_or_state_dict: a ``torch.nn.LSTM`` in any configuration
        (num_layers, bidirectional, proj_size, batch_first, bias, dropout),
        or its ``state_dict()`` (a mapping of tensors or arrays, keys as
        nn.LSTM's: weight_ih_l0, weight_hh_l0, bias_ih_l0, ...; the
        configuration is read from the keys and shapes); or the
        ``torch.ao.nn.quantized.dynamic.LSTM`` that
        ``torch.ao.quantization.quantize_dynamic(model, {nn.LSTM},
        dtype=torch.qint8)`` puts in place of an nn.LSTM, which gives an
        int8 quantized file (format 1.2; see :func:`quantized_torch_to_liblstm`).
    batch_first, dropout: None keeps the module's values (False and 0.0 for
        a state_dict, which does not hold them); a value overrides them.
    precision: None (float32, or int8 for a quantized module), or "bf16"
        or "int8" to write a float module's W and W_hr quantized as liblstm
        quantizes them (:func:`quantize`; what lstm_model_save_quantized
        would write for the converted model).

    b = bias_ih + bias_hh is summed in float64 and rounded once to float32:
    the one lossy step for a float32 model (see the module docstring);
    without biases (bias=False) b is 0. Raises FormatError (ValueError) for
    a module liblstm cannot hold (for example dropout >= 1 or non-finite
    weights) and TypeError for something that is not an LSTM.
    """
    config, tensors, quantized = _lstm_from_torch(module_or_state_dict, batch_first, dropout)
    return pack_model(config, tensors, quantized=_precision_arg(quantized, precision))


def _precision_arg(quantized, precision):
    """pack_model's quantized argument: a quantized module's weights, or
    the precision asked for a float one."""
    if precision not in (None, "bf16", "int8"):
        raise FormatError("precision is %r; it must be None, 'bf16' or 'int8'" % (precision,))
    if quantized is not None:
        if precision not in (None, "int8"):
            raise FormatError("the module is quantized to int8; it cannot be written in %s"
                              % precision)
        return quantized
    return precision


def _dynamic_lstm_class(torch):
    """torch.ao.nn.quantized.dynamic.LSTM (PyTorch 1.13 and later), or the
    older torch.nn.quantized.dynamic.LSTM; None when there is neither."""
    for path in ("ao.nn.quantized.dynamic", "nn.quantized.dynamic"):
        module = torch
        try:
            for part in path.split("."):
                module = getattr(module, part)
            return module.LSTM
        except AttributeError:
            continue
    return None


def _qint8_rows(torch, name, weight, rows):
    """(int8 q, float32 scale of each row) of one of a dynamic LSTM's
    qint8 weights: per tensor (one scale, repeated for every row) or per
    channel along axis 0 (the rows), zero points 0 (symmetric)."""
    if not getattr(weight, "is_quantized", False) or weight.dtype != torch.qint8:
        raise UnsupportedError("%s is %s; liblstm's int8 files take qint8 weights"
                               % (name, weight.dtype))
    scheme = weight.qscheme()
    if scheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        if weight.q_zero_point() != 0:
            raise UnsupportedError("%s has zero point %d; liblstm's int8 weights are symmetric "
                                   "(zero point 0)" % (name, weight.q_zero_point()))
        scales = np.full(rows, weight.q_scale(), dtype=np.float64)
    elif scheme in (torch.per_channel_affine, torch.per_channel_symmetric):
        if weight.q_per_channel_axis() != 0:
            raise UnsupportedError("%s is quantized per channel along axis %d; liblstm's "
                                   "scales are per row (axis 0)"
                                   % (name, weight.q_per_channel_axis()))
        if bool(torch.any(weight.q_per_channel_zero_points() != 0)):
            raise UnsupportedError("%s has nonzero zero points; liblstm's int8 weights are "
                                   "symmetric (zero point 0)" % name)
        scales = weight.q_per_channel_scales().double().numpy()
    else:
        raise UnsupportedError("%s has quantization scheme %s, which liblstm's int8 files do "
                               "not hold" % (name, scheme))
    return weight.int_repr().numpy().astype(np.int8), scales.astype(np.float32)


def _dynamic_lstm_to_liblstm(module, batch_first, dropout):
    """(configuration, float tensors: the biases, quantized weights) of a
    dynamically quantized LSTM (see quantized_torch_to_liblstm)."""
    torch = _torch()
    if module.dtype != torch.qint8:
        raise UnsupportedError("the dynamic quantized LSTM has dtype %s; liblstm's int8 files "
                               "hold qint8 weights" % module.dtype)
    weights, biases = module.get_weight(), module.get_bias()
    H = module.hidden_size
    hh = weights["weight_hh_l0"]
    if tuple(hh.shape) != (4 * H, H):
        raise UnsupportedError("weight_hh_l0 has shape %s; a projection (proj_size) is not "
                               "supported in a quantized LSTM" % (tuple(hh.shape),))
    config = _check_config({
        "input_size": module.input_size, "hidden_size": H, "num_layers": module.num_layers,
        "bidirectional": bool(module.bidirectional),
        "batch_first": bool(module.batch_first) if batch_first is None else batch_first,
        "dropout": float(module.dropout) if dropout is None else dropout})
    tensors, quantized = {}, {}
    for name, layer, direction, kind, rows, cols in _tensor_table(config):
        sfx = "_l%d%s" % (layer, "_reverse" if direction else "")
        if kind == WEIGHT:
            q_hh, s_hh = _qint8_rows(torch, "weight_hh" + sfx, weights["weight_hh" + sfx], rows)
            q_ih, s_ih = _qint8_rows(torch, "weight_ih" + sfx, weights["weight_ih" + sfx], rows)
            if q_hh.shape[1] + q_ih.shape[1] != cols:
                raise FormatError("weight_ih%s and weight_hh%s have %d + %d columns; the "
                                  "configuration gives %d" % (sfx, sfx, q_ih.shape[1],
                                                              q_hh.shape[1], cols))
            # W = [W_h | W_x]: W_h's scales are the first part's
            quantized[name] = {"precision": "int8", "q": np.concatenate([q_hh, q_ih], axis=1),
                               "scales": np.stack([s_hh, s_ih])}
        elif kind == BIAS:
            b_ih, b_hh = biases.get("bias_ih" + sfx), biases.get("bias_hh" + sfx)
            total = np.zeros(rows)
            for value in (b_ih, b_hh):
                if value is not None:
                    total = total + _to_float64("bias" + sfx, value)
            # float64 sum, one rounding to float32 (in _as_float32)
            tensors[name] = total.reshape(rows, 1)
    return config, tensors, quantized


def quantized_torch_to_liblstm(module, *, batch_first=None, dropout=None):
    """(configuration, tensors, quantized) of a dynamically quantized LSTM,
    as :func:`pack_model` takes them (``pack_model(*result[:2],
    quantized=result[2])``); :func:`torch_to_bytes` writes the file.

    module: the ``torch.ao.nn.quantized.dynamic.LSTM`` that
    ``torch.ao.quantization.quantize_dynamic(model, {nn.LSTM},
    dtype=torch.qint8)`` makes (weights quantized per tensor by default, or
    per row with ``per_channel_dynamic_qconfig``). Its int8 q are kept as
    they are (PyTorch's symmetric per-tensor q reaches -128, which the
    format accepts) with each row's scale rounded to float32 (a per-tensor
    scale repeated for every row): weight_hh becomes the W_h part of
    liblstm's W and weight_ih its W_x part, each with its own scales; the
    gates keep their order (i, f, g, o in both); b = bias_ih + bias_hh,
    summed in float64 and rounded once to float32. Layers and
    bidirectional modules are converted. liblstm then runs the weights
    as stored with ``precision="int8"``. Its activations are quantized
    differently (per row of each product, uint8 over the row's own range,
    where PyTorch quantizes per tensor), so the outputs agree closely but
    not to the bit.

    Raises UnsupportedError for what the format cannot hold: float16
    dynamic quantization, nonzero zero points, per-channel scales along
    another axis.
    """
    torch = _torch()
    dynamic = _dynamic_lstm_class(torch)
    if dynamic is None or not isinstance(module, dynamic):
        raise TypeError("expected a torch.ao.nn.quantized.dynamic.LSTM, got %s"
                        % type(module).__name__)
    return _dynamic_lstm_to_liblstm(module, batch_first, dropout)


def _lstm_from_torch(obj, batch_first, dropout):
    """(liblstm configuration, tensors, quantized weights or None) of an
    nn.LSTM, its state_dict or a dynamic quantized LSTM (see torch_to_bytes)."""
    if hasattr(obj, "state_dict") and hasattr(obj, "parameters"):
        torch = _torch()
        dynamic = _dynamic_lstm_class(torch)
        if dynamic is not None and isinstance(obj, dynamic):
            return _dynamic_lstm_to_liblstm(obj, batch_first, dropout)
        if not isinstance(obj, torch.nn.LSTM):
            raise TypeError("expected a torch.nn.LSTM, got %s" % type(obj).__name__)
        state = obj.state_dict()
        torch_config = {"input_size": obj.input_size, "hidden_size": obj.hidden_size,
                        "num_layers": obj.num_layers, "bidirectional": bool(obj.bidirectional),
                        "proj_size": int(getattr(obj, "proj_size", 0)), "bias": bool(obj.bias)}
        module_batch_first, module_dropout = bool(obj.batch_first), float(obj.dropout)
    elif hasattr(obj, "keys") and hasattr(obj, "__getitem__"):
        state = obj
        torch_config = _infer_torch_config(state)
        module_batch_first, module_dropout = False, 0.0
    else:
        raise TypeError("expected a torch.nn.LSTM or its state_dict, got %s"
                        % type(obj).__name__)

    config = _check_config({
        "input_size": torch_config["input_size"], "hidden_size": torch_config["hidden_size"],
        "num_layers": torch_config["num_layers"], "proj_size": torch_config["proj_size"],
        "bidirectional": torch_config["bidirectional"],
        "batch_first": module_batch_first if batch_first is None else batch_first,
        "dropout": module_dropout if dropout is None else dropout})
    keys = _torch_keys(config, torch_config["bias"])
    extra = sorted(set(state) - set(keys))
    missing = [key for key in keys if key not in state]
    if extra or missing:
        raise FormatError("the state_dict does not match an nn.LSTM%s: %s%s%s"
                          % (" of its configuration" if extra else "",
                             "missing " + ", ".join(missing) if missing else "",
                             "; " if missing and extra else "",
                             "unexpected " + ", ".join(extra) if extra else ""))
    values = {}
    for key, shape in keys.items():
        array = _to_float64(key, state[key])
        if array.shape != shape:
            raise FormatError("%s has shape %s; the configuration gives %s"
                              % (key, tuple(array.shape), shape))
        values[key] = array

    tensors = {}
    for _, layer, direction, kind, rows, _ in _tensor_table(config):
        sfx = "_l%d%s" % (layer, "_reverse" if direction else "")
        name = tensor_name(kind, layer, direction)
        if kind == WEIGHT:
            tensors[name] = np.concatenate([values["weight_hh" + sfx],
                                            values["weight_ih" + sfx]], axis=1)
        elif kind == BIAS:
            if torch_config["bias"]:
                # float64 sum, one rounding to float32 (in _as_float32)
                tensors[name] = (values["bias_ih" + sfx] + values["bias_hh" + sfx]).reshape(rows, 1)
            else:
                tensors[name] = np.zeros((rows, 1))
        else:
            tensors[name] = values["weight_hr" + sfx]
    return config, tensors, None


def _write_atomic(path, data):
    """Write data to path through a temporary file in the same directory."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                                     dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def save_torch(module, path, *, batch_first=None, dropout=None, precision=None):
    """Write a torch.nn.LSTM (or its state_dict) to path as a liblstm model file.

    Same conversion as :func:`torch_to_bytes`. The file is replaced
    atomically (written beside it, then renamed over it). path is a str,
    bytes or os.PathLike; one with a NUL raises ValueError, as open() does.
    """
    # As str (bytes are decoded as os.fsencode would encode them back), to
    # build the temporary file's name from it.
    _write_atomic(os.fsdecode(path), torch_to_bytes(module, batch_first=batch_first,
                                                    dropout=dropout, precision=precision))


def _file_to_torch(model, bias):
    """(torch configuration, {key: float32 numpy array}) of a checked ModelFile."""
    config = model.config
    if config["peephole"]:
        raise UnsupportedError("the model has peephole connections (LSTM_PEEPHOLE), which "
                               "torch.nn.LSTM does not have; it cannot be converted to PyTorch")
    torch_config = {"input_size": config["input_size"], "hidden_size": config["hidden_size"],
                    "num_layers": config["num_layers"], "bias": bool(bias),
                    "batch_first": config["batch_first"], "dropout": config["dropout"],
                    "bidirectional": config["bidirectional"], "proj_size": config["proj_size"]}
    R = config["proj_size"] or config["hidden_size"]
    state = {}
    for key in _torch_keys(config, bias):
        # family: weight_ih, weight_hh, bias_ih, bias_hh or weight_hr;
        # layer_sfx: "_l{l}" or "_l{l}_reverse", as in the liblstm names
        family, rest = key.split("_l", 1)
        layer_sfx = "_l" + rest
        if family in ("bias_ih", "bias_hh"):
            b = model.tensors["bias" + layer_sfx][:, 0]
            state[key] = b.copy() if family == "bias_ih" else np.zeros_like(b)
        elif family == "weight_hr":
            state[key] = model.tensors["projection" + layer_sfx].copy()
        else:
            W = model.tensors["weight" + layer_sfx]
            state[key] = (W[:, :R] if family == "weight_hh" else W[:, R:]).copy()
    if not bias:
        nonzero = [name for name, t in model.tensors.items()
                   if name.startswith("bias") and np.any(t != 0)]
        if nonzero:
            raise FormatError("bias=False was asked for, but the model's biases are not zero "
                              "(%s)" % ", ".join(nonzero))
    return torch_config, state


def bytes_to_state_dict(data, *, bias=True, numpy=False):
    """A torch.nn.LSTM configuration and state_dict from a model file's bytes.

    Returns (config, state_dict): config holds nn.LSTM's keyword arguments
    (``torch.nn.LSTM(**config)`` builds the module), state_dict its
    parameters as float32 torch tensors (numpy arrays with numpy=True, which
    needs no PyTorch). W is split back into weight_hh (its first R columns)
    and weight_ih (the rest); b goes entirely into bias_ih, and bias_hh is
    zero (their sum, all the LSTM uses, is exact); W_hr becomes weight_hr.

    bias=False gives a module without biases, and is refused unless every
    bias in the file is zero. A file with peephole weights is refused
    (UnsupportedError): PyTorch has no peepholes. Any defect of the file
    raises FormatError (a ValueError), as in :func:`unpack_model`.
    """
    config, state = _file_to_torch(unpack_model(data), bias)
    if not numpy:
        torch = _torch()
        state = {key: torch.from_numpy(value) for key, value in state.items()}
    return config, state


def bytes_to_torch(data, *, bias=True):
    """A float32 torch.nn.LSTM from a model file's bytes (see bytes_to_state_dict)."""
    import warnings
    torch = _torch()
    config, state = bytes_to_state_dict(data, bias=bias)
    with warnings.catch_warnings():
        # nn.LSTM warns when dropout is set on a single layer; liblstm allows it.
        warnings.filterwarnings("ignore", message=".*dropout.*", category=UserWarning)
        module = torch.nn.LSTM(**config)
    module.load_state_dict(state, strict=True)
    return module


def load_torch(path, *, bias=True):
    """Read a liblstm model file into a new float32 torch.nn.LSTM.

    The file is fully checked first (see :func:`unpack_model`); b goes into
    bias_ih and bias_hh is zero (see :func:`bytes_to_state_dict`).
    """
    with open(path, "rb") as handle:
        return bytes_to_torch(handle.read(), bias=bias)


# ---- PyTorch: whole networks ---------------------------------------------------

class TorchParts:
    """A network's parts as PyTorch modules (:func:`bytes_to_torch_parts`).

    Attributes:
        embedding: an ``nn.Embedding`` (its padding_idx set), or None for a
            features network.
        lstm: the ``nn.LSTM`` (its batch_first and dropout from the file).
        linear: the head's ``nn.Linear``, or None.
        head: "every", "last" or None: where the head sits.
        loss: None, "cross_entropy", "bce_with_logits" or "mse".
        metadata: {key: str (text) or bytes}.

    :meth:`forward` runs them as liblstm's network does.
    """

    def __init__(self, embedding, lstm, linear, head, loss, metadata):
        self.embedding = embedding
        self.lstm = lstm
        self.linear = linear
        self.head = head
        self.loss = loss
        self.metadata = metadata

    def forward(self, inputs, hx=None):
        """The network's output for token ids (a LongTensor, [T, B] or
        [B, T] with batch_first) or features ([T, B, I] or [B, T, I]), and
        an optional (h0, c0): the head on every step ([T, B, O] or
        [B, T, O]), on the last step (the top layer's final h of each
        direction side by side: [B, O]), or the LSTM's y without a head.
        """
        x = self.embedding(inputs) if self.embedding is not None else inputs
        y, (h_n, _) = self.lstm(x, hx)
        if self.head is None:
            return y
        if self.head == "every":
            return self.linear(y)
        D = 2 if self.lstm.bidirectional else 1
        return self.linear(_torch().cat([h_n[k] for k in range(-D, 0)], 1))

    __call__ = forward

    def __repr__(self):
        return "TorchParts(embedding=%r, lstm=%r, linear=%r, head=%r, loss=%r, metadata=[%s])" % (
            self.embedding, self.lstm, self.linear, self.head, self.loss,
            ", ".join(self.metadata))


def _embedding_from_torch(module):
    """{"weight", "padding_idx"} of an nn.Embedding liblstm can hold."""
    torch = _torch()
    if not isinstance(module, torch.nn.Embedding):
        raise TypeError("embedding must be a torch.nn.Embedding, got %s" % type(module).__name__)
    refused = [text for flag, text in (
        (module.max_norm is not None, "max_norm=%r (rows renormalised in the forward)"
         % module.max_norm),
        (module.scale_grad_by_freq, "scale_grad_by_freq=True"),
        (module.sparse, "sparse=True (sparse gradients)")) if flag]
    if refused:
        raise FormatError("the nn.Embedding has %s, which liblstm's embedding does not have"
                          % " and ".join(refused))
    return {"weight": _to_float64("the embedding weight", module.weight),
            "padding_idx": module.padding_idx}


def _head_from_torch(module, placement, config):
    """{"placement", "weight", "bias"} of an nn.Linear on the LSTM's outputs."""
    torch = _torch()
    if not isinstance(module, torch.nn.Linear):
        raise TypeError("linear must be a torch.nn.Linear, got %s" % type(module).__name__)
    if placement not in ("every", "last"):
        raise FormatError("head is %r; with a linear layer it must be 'every' (on each step's "
                          "y) or 'last' (on the final hidden states)" % (placement,))
    K = _directions(config) * (config["proj_size"] or config["hidden_size"])
    if module.in_features != K:
        raise FormatError("the nn.Linear has in_features %d; the LSTM gives D R = %d (%s%d)"
                          % (module.in_features, K, "2 x " if _directions(config) == 2 else "",
                             config["proj_size"] or config["hidden_size"]))
    return {"placement": placement, "weight": _to_float64("the head's weight", module.weight),
            "bias": None if module.bias is None else _to_float64("the head's bias", module.bias)}


def torch_parts_to_bytes(*, lstm, embedding=None, linear=None, head=None, loss=None,
                         metadata=None, batch_first=None, dropout=None, precision=None):
    """A model file (format 1.1) of a whole network from its PyTorch parts.

    lstm: the ``nn.LSTM`` (any configuration it has; see torch_to_bytes:
        the two biases are summed once, the one lossy step).
    embedding: None (float features), or an ``nn.Embedding`` whose
        embedding_dim is the LSTM's input_size (its padding_idx is kept;
        max_norm, scale_grad_by_freq and sparse are refused).
    linear: None, or the head's ``nn.Linear``; its in_features must be
        D R (2 x hidden_size, or 2 x proj_size, when bidirectional).
        Without a bias, b = 0.
    head: None (no head; then linear must be None), "every" (linear on each
        step's y) or "last" (linear on the top layer's final hidden states
        of both directions side by side, torch.cat((h_n[-2], h_n[-1]), 1)).
    loss: None, "cross_entropy", "bce_with_logits" or "mse" (what the
        network trains with; liblstm's rules: cross-entropy needs a head
        with at least two outputs).
    metadata: None or {key: str (text) or bytes}.
    batch_first, dropout: None keeps the LSTM's own.
    precision: as for :func:`torch_to_bytes` (lstm may be a dynamically
        quantized LSTM: the file is then int8). In a quantized file the
        embedding and the linear layer's weight are quantized as liblstm
        quantizes them (:func:`quantize_rows`), as lstm_network_save_quantized
        writes them.

    Raises FormatError (a ValueError) for a part or a combination liblstm
    cannot represent, TypeError for a part of the wrong type.
    """
    config, tensors, quantized = _lstm_from_torch(lstm, batch_first, dropout)
    if head is None and linear is not None:
        raise FormatError("a linear layer was given without head= ('every' or 'last')")
    if head is not None and linear is None:
        raise FormatError("head=%r needs the head's nn.Linear (linear=)" % (head,))
    return pack_network(
        config, tensors,
        embedding=None if embedding is None else _embedding_from_torch(embedding),
        head=None if linear is None else _head_from_torch(linear, head, config),
        loss=loss, metadata=metadata, quantized=_precision_arg(quantized, precision))


def save_torch_parts(path, **parts):
    """Write a network's PyTorch parts to path (see :func:`torch_parts_to_bytes`,
    which takes the same keyword arguments), atomically."""
    _write_atomic(os.fsdecode(path), torch_parts_to_bytes(**parts))


def bytes_to_torch_parts(data):
    """A model file's network as PyTorch modules: a :class:`TorchParts`.

    Any model file loads: one without network sections gives an LSTM alone
    (no embedding, head or loss). The LSTM is built as by
    :func:`bytes_to_torch` (b in bias_ih, bias_hh zero; peepholes refused);
    the embedding is an ``nn.Embedding`` with the file's padding_idx, the
    head an ``nn.Linear`` with a bias; every weight is the file's, bit for
    bit, in float32 modules in eval mode.
    """
    torch = _torch()
    model = unpack_model(data)
    lstm = bytes_to_torch(data).eval()
    embedding = linear = None
    if model.embedding is not None:
        V, E = model.embedding["weight"].shape
        embedding = torch.nn.Embedding(V, E, padding_idx=model.embedding["padding_idx"])
        embedding.load_state_dict({"weight": torch.from_numpy(model.embedding["weight"])})
        embedding.eval()
    if model.head is not None:
        O, K = model.head["weight"].shape
        linear = torch.nn.Linear(K, O)
        linear.load_state_dict({"weight": torch.from_numpy(model.head["weight"]),
                                "bias": torch.from_numpy(model.head["bias"])})
        linear.eval()
    return TorchParts(embedding, lstm, linear, model.head and model.head["placement"],
                      model.loss, dict(model.metadata))


def load_torch_parts(path):
    """Read a model file into PyTorch modules (see :func:`bytes_to_torch_parts`)."""
    with open(path, "rb") as handle:
        return bytes_to_torch_parts(handle.read())


# ---- ONNX ---------------------------------------------------------------------

def from_onnx(source, *, padding_idx=None, loss=None, metadata=None):
    """A liblstm model file (bytes) from an ONNX model of a sequence network.

    source: an ``onnx.ModelProto``, a path, or the model's bytes.
    padding_idx: the embedding's padding row, which ONNX does not record
        (it matters only to training); None for none.
    loss: the loss to train with (ONNX graphs have none): None,
        "cross_entropy", "bce_with_logits" or "mse".
    metadata: entries added to {"source": "onnx:<producer_name>
        <producer_version>"} (and may replace it).

    Takes the graphs ``torch.onnx.export`` writes for nn.Embedding (a
    Gather) or float features, then nn.LSTM (one ONNX LSTM node per layer;
    bidirectional, batch_first, initial states as graph inputs or zeros,
    sequence_lens as a graph input, layout 0 or 1, peepholes), then an
    nn.Linear on every step (MatMul + Add) or on the last step (Gemm on
    h_n[-1], or on torch.cat((h_n[-2], h_n[-1]), 1) when bidirectional),
    with the Transpose/Squeeze/Unsqueeze/Reshape/Slice/Concat/Gather/Shape
    glue between them. ONNX gates i, o, f, c become liblstm's i, f, g, o,
    W and R become W = [R | W], B's two halves are summed (the one rounding,
    as from PyTorch), peepholes p_i, p_o, p_f become rows p_i, p_f, p_o.

    Raises UnsupportedError (a FormatError, so a ValueError), naming the
    node and its attribute, for anything liblstm's network cannot compute
    exactly as the graph does: cell clipping, input_forget, other
    activations, a reverse-only LSTM, layers of different sizes, learned
    initial states, other operators, a head elsewhere. Needs the onnx
    package (lstm/onnx_import.py holds the converter).
    """
    from . import onnx_import
    return onnx_import.from_onnx(source, padding_idx=padding_idx, loss=loss, metadata=metadata)


# ---- command line --------------------------------------------------------------

def _load_torch_object(path, prefix):
    """A torch.nn.LSTM or an LSTM state_dict from a torch.save'd file."""
    torch = _torch()
    obj = torch.load(path, map_location="cpu")
    if prefix:
        if isinstance(obj, torch.nn.Module):
            obj = obj.get_submodule(prefix.rstrip("."))
        elif hasattr(obj, "keys"):
            start = prefix if prefix.endswith(".") else prefix + "."
            obj = {key[len(start):]: value for key, value in obj.items()
                   if key.startswith(start)}
            if not obj:
                raise FormatError("no key of %s starts with %r" % (path, start))
    return obj


def _describe(model, out):
    config = model.config
    print("liblstm model file, format %d.%d" % model.version, file=out)
    for key in CONFIG_KEYS:
        print("  %-13s %s" % (key, config[key]), file=out)
    total = sum(t.size for t in model.tensors.values())
    print("tensors (%d, %d float32 values):" % (len(model.tensors), total), file=out)
    if model.quantized:
        quantized_parts = [name for name, part in (("the embedding (EMBQ)", model.embedding),
                                                   ("the head's W (HDQ)", model.head))
                           if part is not None and "quantized" in part]
        print("quantized: W and W_hr in %s (QTNS)%s; the values below are their float32 values"
              % (model.precision, "".join(", " + name for name in quantized_parts)), file=out)
    for name, tensor in model.tensors.items():
        print("  %-22s %6d x %-6d  min %+.6g  max %+.6g  rms %.6g"
              % (name, tensor.shape[0], tensor.shape[1], float(tensor.min()),
                 float(tensor.max()), float(np.sqrt(np.mean(np.square(tensor, dtype=np.float64))))),
              file=out)
    if model.optimizer is not None:
        described = "%d bytes" % len(model.optimizer)
        if len(model.optimizer) >= 40:
            magic, layout, kind, flags, step, count, slots = struct.unpack_from(
                "<IIIIQQQ", model.optimizer)
            if magic == 0x4C4F5054:
                described += ", layout %d, kind %d, flags 0x%x, step %d, %d x %d values" % (
                    layout, kind, flags, step, slots, count)
        print("optimizer state (OPTM): %s" % described, file=out)
    if model.network:
        print("network: %s input, head %s, loss %s" % (
            model.input, model.head["placement"] if model.head else "none",
            model.loss or "none"), file=out)
    if model.embedding is not None:
        V, E = model.embedding["weight"].shape
        print("  embedding %d x %d, padding_idx %s" % (V, E, model.embedding["padding_idx"]),
              file=out)
    if model.head is not None:
        O, K = model.head["weight"].shape
        print("  head %d x %d (+ %d biases)" % (O, K, O), file=out)
    for key, value in model.metadata.items():
        if isinstance(value, str):
            shown = value if len(value) <= 60 else value[:57] + "..."
            print("  metadata %r: text, %d bytes: %r" % (key, len(value.encode("utf-8")), shown),
                  file=out)
        else:
            print("  metadata %r: bytes, %d bytes" % (key, len(value)), file=out)
    for tag, length, at in model.skipped:
        print("skipped optional section %r of %d bytes at byte %d" % (tag, length, at), file=out)


def main(argv=None):
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python3 -m lstm.convert",
        description="Convert between torch.nn.LSTM (or ONNX) and liblstm model files.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    to_lstm = commands.add_parser(
        "to-lstm", help="a torch.save'd nn.LSTM (or its state_dict) to a liblstm model file")
    to_lstm.add_argument("model", metavar="MODEL.pt")
    to_lstm.add_argument("output", metavar="OUT.lstm")
    to_lstm.add_argument("--prefix", default="",
                         help="the LSTM inside a larger model: a submodule name, or the "
                              "key prefix of a state_dict (for example 'encoder.lstm')")
    to_lstm.add_argument("--batch-first", dest="batch_first", action="store_true",
                         default=None, help="set LSTM_BATCH_FIRST (default: the module's; "
                                            "off for a state_dict)")
    to_lstm.add_argument("--dropout", type=float, default=None,
                         help="dropout to store (default: the module's; 0 for a state_dict)")
    to_lstm.add_argument("--precision", choices=sorted(PRECISIONS), default=None,
                         help="write W and W_hr quantized, as liblstm quantizes them (a "
                              "dynamically quantized LSTM is always written in int8)")
    to_torch = commands.add_parser("to-torch", help="a liblstm model file to a torch.save'd "
                                                    "nn.LSTM")
    to_torch.add_argument("model", metavar="IN.lstm")
    to_torch.add_argument("output", metavar="OUT.pt")
    to_torch.add_argument("--state-dict", action="store_true",
                          help="save the state_dict instead of the module")
    info = commands.add_parser("info", help="print a model file's configuration and tensors")
    info.add_argument("model", metavar="IN.lstm")
    onnx = commands.add_parser("from-onnx", help="an ONNX sequence model (embedding or "
                                                 "features, LSTM, head) to a liblstm model file")
    onnx.add_argument("model", metavar="IN.onnx")
    onnx.add_argument("output", metavar="OUT.lstm")
    onnx.add_argument("--padding-idx", type=int, default=None,
                      help="the embedding's padding row (ONNX does not record it)")
    onnx.add_argument("--loss", choices=[name for name in LOSS_KINDS if name], default=None,
                      help="the loss the network trains with (ONNX graphs have none)")
    args = parser.parse_args(argv)

    try:
        if args.command == "to-lstm":
            obj = _load_torch_object(args.model, args.prefix)
            save_torch(obj, args.output, batch_first=args.batch_first, dropout=args.dropout,
                       precision=args.precision)
        elif args.command == "to-torch":
            import io
            torch = _torch()
            module = load_torch(args.model)
            buffer = io.BytesIO()
            torch.save(module.state_dict() if args.state_dict else module, buffer)
            _write_atomic(args.output, buffer.getvalue())
        elif args.command == "from-onnx":
            _write_atomic(args.output, from_onnx(args.model, padding_idx=args.padding_idx,
                                                 loss=args.loss))
        else:
            with open(args.model, "rb") as handle:
                _describe(unpack_model(handle.read()), sys.stdout)
    except (ValueError, TypeError, OSError, ImportError) as error:
        print("%s: error: %s" % (parser.prog, error), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
