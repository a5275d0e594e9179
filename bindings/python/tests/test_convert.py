"""Tests of lstm.convert: PyTorch <-> liblstm model files.

Run (Debian's python3 with python3-torch, python3-numpy, python3-pytest):

    LSTM_LIBRARY=/path/to/liblstm.so.1 PYTHONPATH=bindings/python \\
        /usr/bin/python3 -m pytest -q bindings/python/tests

Without LSTM_LIBRARY the tests that need the C library are skipped (with
that reason); the others need only PyTorch and numpy.

(a) torch -> bytes -> torch for every configuration nn.LSTM has (layers 1-3,
    bidirectional, proj_size, bias False, batch_first, dropout), and, with
    the library, the C loader accepts every converted file and saves it back
    byte for byte.
(b) C saves, Python loads into torch, outputs equal: models made and run by
    liblstm through ctypes, saved with lstm_model_save, loaded with
    load_torch and run by PyTorch in float64; normwise relative error
    <= 1e-6 (measured worst 1.7e-7, hT).
(c) CRC-32C known answers, and the vectorised path against the byte loop.
(d) corrupted and hostile files raise ValueError (and the C loader agrees).
(e) the command line: to-lstm, to-torch, info.
"""

import ctypes
import itertools
import os
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from lstm import convert

BINDINGS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-6

torch.set_num_threads(1)


# ---- helpers ---------------------------------------------------------------------

def make_lstm(seed=0, **kwargs):
    """A float32 nn.LSTM with random parameters, its two biases different."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dropout on one layer
        module = torch.nn.LSTM(**kwargs)
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(torch.randn(param.shape) * (0.4 if name.startswith("bias") else 0.3))
    return module.eval()


def torch_outputs(module, x, h0, c0):
    """float64 y, hT, cT of a float64 copy of module."""
    import copy
    model64 = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        y, (hT, cT) = model64(torch.from_numpy(x).double(),
                              (torch.from_numpy(h0).double(), torch.from_numpy(c0).double()))
    return y.numpy(), hT.numpy(), cT.numpy()


def rel_error(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def sections(data):
    """[(tag, flags, payload)] of a valid model file's sections."""
    out = []
    at = convert.HEADER_SIZE
    while at < len(data):
        tag, flags, length = struct.unpack_from("<4sIQ", data, at)
        out.append((tag, flags, data[at + 16: at + 16 + length]))
        at += 20 + length
    return out


def assemble(parts, major=1, minor=0):
    """A model file from [(tag, flags, payload)], with correct CRCs."""
    header = convert.MAGIC + struct.pack("<HH", major, minor)
    out = [header + struct.pack("<I", convert.crc32c(header))]
    for tag, flags, payload in parts:
        body = struct.pack("<4sIQ", tag, flags, len(payload)) + payload
        out.append(body + struct.pack("<I", convert.crc32c(body)))
    return b"".join(out)


# Every configuration nn.LSTM has, on small sizes.
ROUND_TRIP = [
    dict(input_size=3, hidden_size=5, num_layers=layers, bidirectional=bi, proj_size=proj,
         bias=bias, batch_first=bf, dropout=0.3 if (layers + bi + bf) % 2 else 0.0)
    for layers, bi, proj, bias, bf in itertools.product(
        (1, 2, 3), (False, True), (0, 2), (True, False), (False, True))
]


def config_id(kwargs):
    return "L%d%s%s%s%s%s" % (kwargs["num_layers"], "_bi" if kwargs["bidirectional"] else "",
                              "_p%d" % kwargs["proj_size"] if kwargs["proj_size"] else "",
                              "" if kwargs["bias"] else "_nobias",
                              "_bf" if kwargs["batch_first"] else "",
                              "_do" if kwargs["dropout"] else "")


# ---- the C library through ctypes --------------------------------------------------

class LstmConfig(ctypes.Structure):
    """struct lstm_config (include/lstm/model.h)."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("input_size", ctypes.c_size_t),
                ("hidden_size", ctypes.c_size_t), ("num_layers", ctypes.c_size_t),
                ("flags", ctypes.c_uint32), ("proj_size", ctypes.c_size_t),
                ("dropout", ctypes.c_double)]


class LstmSequences(ctypes.Structure):
    """struct lstm_sequences (include/lstm/model.h): layout before lengths."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("steps", ctypes.c_size_t),
                ("batch", ctypes.c_size_t), ("layout", ctypes.c_uint32),
                ("lengths", ctypes.c_void_p)]


class LstmInputs(ctypes.Structure):
    """struct lstm_inputs (include/lstm/model.h)."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("x", ctypes.c_void_p),
                ("h0", ctypes.c_void_p), ("c0", ctypes.c_void_p)]


class LstmOutputs(ctypes.Structure):
    """struct lstm_outputs (include/lstm/model.h)."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("y", ctypes.c_void_p),
                ("hT", ctypes.c_void_p), ("cT", ctypes.c_void_p)]


LSTM_OK, LSTM_E_FORMAT, LSTM_E_UNSUPPORTED = 0, 10, 11


class Library:
    """The few liblstm calls these tests make."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        handle, size, handle_out = ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)
        signatures = {
            "lstm_config_init": (ctypes.c_int, [ctypes.POINTER(LstmConfig), size]),
            "lstm_model_create": (ctypes.c_int, [ctypes.POINTER(LstmConfig), handle_out]),
            "lstm_model_destroy": (None, [handle]),
            "lstm_model_init": (ctypes.c_int, [handle, ctypes.c_uint64, ctypes.c_uint32]),
            "lstm_model_save": (ctypes.c_int, [handle, handle, ctypes.c_char_p]),
            "lstm_model_save_buffer": (ctypes.c_int, [handle, handle, ctypes.c_void_p, size,
                                                      ctypes.POINTER(size)]),
            "lstm_model_load_buffer": (ctypes.c_int, [ctypes.c_char_p, size, handle_out]),
            "lstm_workspace_create": (ctypes.c_int, [handle, handle_out]),
            "lstm_workspace_destroy": (None, [handle]),
            "lstm_model_infer": (ctypes.c_int, [handle, handle, ctypes.POINTER(LstmSequences),
                                                ctypes.POINTER(LstmInputs),
                                                ctypes.POINTER(LstmOutputs)]),
            "lstm_strerror": (ctypes.c_char_p, [ctypes.c_int]),
            "lstm_error_message": (ctypes.c_char_p, []),
        }
        for name, (restype, argtypes) in signatures.items():
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = argtypes
        self.lib = lib
        # The minor format version this library writes: 1 from the release
        # of the network sections (format 1.1, lstm_network_load_buffer) on,
        # 0 before it.
        self.format_minor = 1 if hasattr(lib, "lstm_network_load_buffer") else 0

    def as_saved(self, data):
        """data (a Python-written file) as this library saves the same model:
        the same bytes, but for the minor version in the header."""
        header = data[:10] + struct.pack("<H", self.format_minor)
        return header + struct.pack("<I", convert.crc32c(header)) + data[16:]

    def check(self, status, call):
        if status != LSTM_OK:
            raise AssertionError("%s: %s: %s" % (call, self.lib.lstm_strerror(status).decode(),
                                                 self.lib.lstm_error_message().decode()))

    def create(self, input_size, hidden_size, num_layers=1, flags=0, proj_size=0, dropout=0.0,
               seed=1):
        config = LstmConfig()
        self.check(self.lib.lstm_config_init(ctypes.byref(config), ctypes.sizeof(config)),
                   "lstm_config_init")
        config.input_size, config.hidden_size, config.num_layers = input_size, hidden_size, \
            num_layers
        config.flags, config.proj_size, config.dropout = flags, proj_size, dropout
        model = ctypes.c_void_p()
        self.check(self.lib.lstm_model_create(ctypes.byref(config), ctypes.byref(model)),
                   "lstm_model_create")
        self.check(self.lib.lstm_model_init(model, seed, 0), "lstm_model_init")
        return model

    def load_buffer(self, data):
        """(status, model or None)."""
        model = ctypes.c_void_p()
        status = self.lib.lstm_model_load_buffer(data, len(data), ctypes.byref(model))
        return status, (model if status == LSTM_OK else None)

    def save_buffer(self, model):
        size = ctypes.c_size_t()
        self.check(self.lib.lstm_model_save_buffer(model, None, None, 0, ctypes.byref(size)),
                   "lstm_model_save_buffer")
        buffer = ctypes.create_string_buffer(size.value)
        self.check(self.lib.lstm_model_save_buffer(model, None, buffer, size.value,
                                                   ctypes.byref(size)), "lstm_model_save_buffer")
        return buffer.raw[:size.value]

    def forward(self, model, seq_len, batch, x, h0, c0, y_shape):
        """y, hT, cT of lstm_model_infer (h0 [L D][B][R], c0 [L D][B][H]),
        in the model's layout.

        The caller's shapes are checked here, so that a mistake in a test
        cannot make the library read or write outside the arrays.
        """
        for a in (x, h0, c0):
            assert a.dtype == np.float32 and a.flags.c_contiguous
        assert x.shape[:2] in ((seq_len, batch), (batch, seq_len))
        assert y_shape[:2] == x.shape[:2]
        assert h0.shape[1] == c0.shape[1] == batch and h0.shape[0] == c0.shape[0]
        assert y_shape[2] % h0.shape[2] == 0
        y = np.zeros(y_shape, dtype=np.float32)
        hT = np.zeros(h0.shape, dtype=np.float32)
        cT = np.zeros(c0.shape, dtype=np.float32)
        workspace = ctypes.c_void_p()
        self.check(self.lib.lstm_workspace_create(model, ctypes.byref(workspace)),
                   "lstm_workspace_create")
        sequences = LstmSequences(ctypes.sizeof(LstmSequences), seq_len, batch, 0, None)
        inputs = LstmInputs(ctypes.sizeof(LstmInputs), x.ctypes.data, h0.ctypes.data,
                            c0.ctypes.data)
        outputs = LstmOutputs(ctypes.sizeof(LstmOutputs), y.ctypes.data, hT.ctypes.data,
                              cT.ctypes.data)
        try:
            self.check(self.lib.lstm_model_infer(model, workspace, ctypes.byref(sequences),
                                                 ctypes.byref(inputs), ctypes.byref(outputs)),
                       "lstm_model_infer")
        finally:
            self.lib.lstm_workspace_destroy(workspace)
        return y, hT, cT


@pytest.fixture(scope="session")
def lib():
    path = os.environ.get("LSTM_LIBRARY")
    if not path:
        pytest.skip("LSTM_LIBRARY is not set: set it to the path of liblstm.so.1 to run the "
                    "tests against the C library")
    return Library(path)


# ---- (a) torch -> bytes -> torch ---------------------------------------------------

@pytest.mark.parametrize("kwargs", ROUND_TRIP, ids=config_id)
def test_round_trip(kwargs):
    module = make_lstm(**kwargs)
    data = convert.torch_to_bytes(module)
    config, state = convert.bytes_to_state_dict(data)

    want_config = dict(kwargs, bias=True)
    assert config == {key: want_config[key] for key in config}
    assert set(config) == set(want_config)
    original = module.state_dict()
    for key, value in state.items():
        assert value.dtype == torch.float32
        if key.startswith("bias_hh"):
            assert torch.count_nonzero(value) == 0
        elif key.startswith("bias_ih"):
            if kwargs["bias"]:
                total = (original[key].double() + original["bias_hh" + key[7:]].double()).float()
            else:
                total = torch.zeros_like(value)
            assert torch.equal(value, total), key
        else:
            assert torch.equal(value, original[key]), key
    assert set(state) == set(original) | {k.replace("weight_ih", b) for k in original
                                          if k.startswith("weight_ih")
                                          for b in ("bias_ih", "bias_hh")}

    # liblstm -> torch -> liblstm is exact, and the state_dict gives the same file.
    assert convert.torch_to_bytes(convert.bytes_to_torch(data)) == data
    assert convert.torch_to_bytes(original, batch_first=kwargs["batch_first"],
                                  dropout=kwargs["dropout"]) == data

    # bias=False modules come back as they were when asked to.
    if not kwargs["bias"]:
        config, state = convert.bytes_to_state_dict(data, bias=False)
        assert config == kwargs
        assert state.keys() == original.keys()
        assert all(torch.equal(state[k], original[k]) for k in state)

    # The reloaded module computes what the original does (b rounded once).
    T, B = 4, 2
    D = 2 if kwargs["bidirectional"] else 1
    R = kwargs["proj_size"] or kwargs["hidden_size"]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, 3) if kwargs["batch_first"] else (T, B, 3)).astype(np.float32)
    h0 = rng.standard_normal((kwargs["num_layers"] * D, B, R)).astype(np.float32)
    c0 = rng.standard_normal((kwargs["num_layers"] * D, B, 5)).astype(np.float32)
    for a, b in zip(torch_outputs(convert.bytes_to_torch(data), x, h0, c0),
                    torch_outputs(module, x, h0, c0)):
        assert rel_error(a, b) <= 1e-7


@pytest.mark.parametrize("kwargs", ROUND_TRIP, ids=config_id)
def test_c_loads_python_files(lib, kwargs):
    """liblstm accepts every converted file and writes back the same bytes."""
    data = convert.torch_to_bytes(make_lstm(**kwargs))
    status, model = lib.load_buffer(data)
    lib.check(status, "lstm_model_load_buffer")
    try:
        assert lib.save_buffer(model) == lib.as_saved(data)
    finally:
        lib.lib.lstm_model_destroy(model)


def test_numpy_state_dict_and_float64_module():
    module = make_lstm(input_size=2, hidden_size=3, num_layers=2)
    data = convert.torch_to_bytes(module)
    config, state = convert.bytes_to_state_dict(data, numpy=True)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in state.values())
    assert np.array_equal(state["weight_ih_l1"], module.weight_ih_l1.detach().numpy())
    # A float64 module is rounded to float32: the same file as its float32 copy.
    assert convert.torch_to_bytes(module.double()) == data


def test_model_file_level():
    config = dict(input_size=2, hidden_size=3, peephole=True, bidirectional=True)
    shapes = convert.tensor_shapes(config)
    assert shapes == {"weight_l0": (12, 5), "bias_l0": (12, 1), "peephole_l0": (3, 3),
                      "weight_l0_reverse": (12, 5), "bias_l0_reverse": (12, 1),
                      "peephole_l0_reverse": (3, 3)}
    rng = np.random.default_rng(0)
    tensors = {name: rng.standard_normal(shape).astype(np.float32)
               for name, shape in shapes.items()}
    data = convert.pack_model(config, tensors, optimizer=b"\0" * 40)
    model = convert.unpack_model(data)
    assert model.config["peephole"] and model.config["num_layers"] == 1
    assert model.optimizer == b"\0" * 40
    assert all(np.array_equal(model.tensors[k], tensors[k]) for k in tensors)
    with pytest.raises(convert.UnsupportedError, match="peephole"):
        convert.bytes_to_state_dict(data)
    with pytest.raises(ValueError, match="missing bias_l0"):
        convert.pack_model(config, {k: v for k, v in tensors.items() if k != "bias_l0"})
    with pytest.raises(ValueError, match="shape"):
        convert.pack_model(config, dict(tensors, weight_l0=np.zeros((5, 12))))


def test_bad_modules():
    with pytest.raises(ValueError, match="dropout"):
        convert.torch_to_bytes(make_lstm(input_size=2, hidden_size=3, num_layers=2,
                                         dropout=1.0))
    module = make_lstm(input_size=2, hidden_size=3)
    with torch.no_grad():
        module.weight_hh_l0[1, 2] = float("nan")
    with pytest.raises(ValueError, match="weight_l0 holds NaN"):
        convert.torch_to_bytes(module)
    module = make_lstm(input_size=2, hidden_size=3).double()
    with torch.no_grad():
        module.bias_ih_l0[0] = 1e300  # beyond float32
    with pytest.raises(ValueError, match="too large for float32"):
        convert.torch_to_bytes(module)
    with pytest.raises(TypeError, match="GRU"):
        convert.torch_to_bytes(torch.nn.GRU(2, 3))
    state = make_lstm(input_size=2, hidden_size=3).state_dict()
    with pytest.raises(ValueError, match="unexpected extra"):
        convert.torch_to_bytes(dict(state, extra=torch.zeros(1)))
    with pytest.raises(ValueError, match="missing bias_hh_l0"):
        convert.torch_to_bytes({k: v for k, v in state.items() if k != "bias_hh_l0"})
    data = convert.torch_to_bytes(make_lstm(input_size=2, hidden_size=3))
    with pytest.raises(ValueError, match="biases are not zero"):
        convert.bytes_to_state_dict(data, bias=False)


# ---- (b) C saves, Python loads into torch ---------------------------------------

C_CONFIGS = [
    dict(input_size=4, hidden_size=6),
    dict(input_size=3, hidden_size=7, num_layers=2, flags=convert.LSTM_BIDIRECTIONAL),
    dict(input_size=5, hidden_size=8, num_layers=3, proj_size=3, flags=convert.LSTM_BATCH_FIRST),
    dict(input_size=4, hidden_size=9, num_layers=2, proj_size=5, dropout=0.4,
         flags=convert.LSTM_BIDIRECTIONAL | convert.LSTM_BATCH_FIRST),
]


@pytest.mark.parametrize("spec", C_CONFIGS, ids=lambda s: "I%d_H%d_L%d_P%d_f%d" % (
    s["input_size"], s["hidden_size"], s.get("num_layers", 1), s.get("proj_size", 0),
    s.get("flags", 0)))
def test_c_saves_torch_loads(lib, spec, tmp_path):
    T, B = 6, 3
    L = spec.get("num_layers", 1)
    H, P, flags = spec["hidden_size"], spec.get("proj_size", 0), spec.get("flags", 0)
    D = 2 if flags & convert.LSTM_BIDIRECTIONAL else 1
    R = P or H
    batch_first = bool(flags & convert.LSTM_BATCH_FIRST)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((B, T, spec["input_size"]) if batch_first
                            else (T, B, spec["input_size"])).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((L * D, B, R))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((L * D, B, H))).astype(np.float32)

    model = lib.create(seed=11, **spec)
    path = tmp_path / "c.lstm"
    try:
        y_shape = x.shape[:2] + (D * R,)
        c_out = lib.forward(model, T, B, x, h0, c0, y_shape)
        lib.check(lib.lib.lstm_model_save(model, None, str(path).encode()), "lstm_model_save")
    finally:
        lib.lib.lstm_model_destroy(model)

    module = convert.load_torch(path)
    assert module.batch_first == batch_first and module.bidirectional == (D == 2)
    assert module.num_layers == L and module.proj_size == P
    assert module.dropout == spec.get("dropout", 0.0)
    for label, a, b in zip(("y", "hT", "cT"), c_out, torch_outputs(module, x, h0, c0)):
        assert a.shape == b.shape
        error = rel_error(a, b)
        assert error <= TOL, "%s differs by %.3e relative" % (label, error)
    # and back: the same bytes as the C library wrote
    assert lib.as_saved(convert.torch_to_bytes(module)) == path.read_bytes()


def test_c_peephole_model_refused_by_torch(lib, tmp_path):
    model = lib.create(input_size=3, hidden_size=4, flags=convert.LSTM_PEEPHOLE)
    path = tmp_path / "peep.lstm"
    try:
        lib.check(lib.lib.lstm_model_save(model, None, str(path).encode()), "lstm_model_save")
    finally:
        lib.lib.lstm_model_destroy(model)
    assert convert.unpack_model(path.read_bytes()).tensors["peephole_l0"].shape == (3, 4)
    with pytest.raises(ValueError, match="peephole"):
        convert.load_torch(path)


def test_paths_are_str_bytes_or_pathlike(tmp_path):
    module = make_lstm(input_size=3, hidden_size=4)
    data = convert.torch_to_bytes(module)
    for path in (str(tmp_path / "s.lstm"), os.fsencode(tmp_path / "b.lstm"),
                 tmp_path / "p.lstm"):
        convert.save_torch(module, path)
        assert convert.torch_to_bytes(convert.load_torch(path)) == data
    prefix = tmp_path / "m.lstm"
    for path in (str(prefix) + "\0junk", os.fsencode(prefix) + b"\0junk"):
        with pytest.raises(ValueError, match="null byte"):
            convert.save_torch(module, path)
    assert sorted(os.listdir(tmp_path)) == ["b.lstm", "p.lstm", "s.lstm"]


# ---- (c) CRC-32C -------------------------------------------------------------------

def test_crc32c_known_answers():
    assert convert.crc32c(b"123456789") == 0xE3069283
    assert convert.crc32c(b"") == 0
    assert convert.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4
    assert convert.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert convert.crc32c(bytes(range(32))) == 0x46DD794E
    assert convert.crc32c(b"6789", convert.crc32c(b"12345")) == 0xE3069283


@pytest.mark.parametrize("size", [(1 << 16) - 1, 1 << 16, 70001, 1 << 20, 3_000_017])
def test_crc32c_vector_path(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    bytewise = convert._crc_register_bytes(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    assert convert.crc32c(data) == bytewise
    assert convert.crc32c(data[size // 3:], convert.crc32c(data[:size // 3])) == bytewise


# ---- (d) corrupted files -------------------------------------------------------------

@pytest.fixture(scope="module")
def small_file():
    return convert.torch_to_bytes(make_lstm(input_size=1, hidden_size=1, bidirectional=True))


def test_every_flipped_byte_refused(small_file, lib_or_none):
    for at in range(len(small_file)):
        data = bytearray(small_file)
        data[at] ^= 0x10
        with pytest.raises(ValueError):
            convert.unpack_model(bytes(data))
        if lib_or_none is not None:
            status, _ = lib_or_none.load_buffer(bytes(data))
            assert status in (LSTM_E_FORMAT, LSTM_E_UNSUPPORTED), at


def test_every_truncation_refused(small_file, lib_or_none):
    for size in range(len(small_file)):
        with pytest.raises(ValueError):
            convert.unpack_model(small_file[:size])
        if lib_or_none is not None:
            assert lib_or_none.load_buffer(small_file[:size])[0] == LSTM_E_FORMAT


@pytest.fixture(scope="module")
def lib_or_none():
    path = os.environ.get("LSTM_LIBRARY")
    return Library(path) if path else None


def corrupt_variants(data):
    """(label, bytes, error class, C status) of hand-made bad files."""
    parts = sections(data)
    conf, tensors, end = parts[0], parts[1:-1], parts[-1]
    variants = []
    add = variants.append
    add(("unknown required section", assemble([conf] + tensors + [(b"XTRA", 1, b"abc"), end]),
         convert.UnsupportedError, LSTM_E_UNSUPPORTED))
    add(("major version 2", assemble(parts, major=2), convert.UnsupportedError,
         LSTM_E_UNSUPPORTED))
    add(("not a model file", b"PK\x03\x04" + bytes(40), convert.FormatError, LSTM_E_FORMAT))
    add(("byte after END", data + b"\0", convert.FormatError, LSTM_E_FORMAT))
    add(("missing tensor", assemble([conf] + tensors[1:] + [end]), convert.FormatError,
         LSTM_E_FORMAT))
    add(("repeated tensor", assemble([conf] + tensors + tensors[:1] + [end]),
         convert.FormatError, LSTM_E_FORMAT))
    add(("no END", assemble([conf] + tensors), convert.FormatError, LSTM_E_FORMAT))
    add(("END with payload", assemble([conf] + tensors + [(b"END ", 1, b"x")]),
         convert.FormatError, LSTM_E_FORMAT))
    add(("second CONF", assemble([conf, conf] + tensors + [end]), convert.FormatError,
         LSTM_E_FORMAT))
    add(("section before CONF", assemble([(b"XTRA", 0, b"")] + parts), convert.FormatError,
         LSTM_E_FORMAT))
    add(("reserved section flag", assemble([(conf[0], 3, conf[2])] + parts[1:]),
         convert.FormatError, LSTM_E_FORMAT))
    tag, flags, payload = tensors[0]
    name_length = struct.unpack_from("<I", payload, 12)[0]
    renamed = payload[:32] + b"W" + payload[33:]
    add(("wrong tensor name", assemble([conf, (tag, flags, renamed)] + tensors[1:] + [end]),
         convert.FormatError, LSTM_E_FORMAT))
    nan = payload[:32 + name_length] + struct.pack("<f", float("nan")) + payload[36 + name_length:]
    add(("NaN value", assemble([conf, (tag, flags, nan)] + tensors[1:] + [end]),
         convert.FormatError, LSTM_E_FORMAT))
    reshaped = payload[:16] + struct.pack("<QQ", *struct.unpack_from("<QQ", payload, 16)[::-1]) \
        + payload[32:]
    add(("wrong tensor shape", assemble([conf, (tag, flags, reshaped)] + tensors[1:] + [end]),
         convert.FormatError, LSTM_E_FORMAT))
    add(("short tensor", assemble([conf, (tag, flags, payload[:-4])] + tensors[1:] + [end]),
         convert.FormatError, LSTM_E_FORMAT))
    other_layer = payload[:0] + struct.pack("<I", 5) + payload[4:]
    add(("layer out of range", assemble([conf, (tag, flags, other_layer)] + tensors[1:] + [end]),
         convert.FormatError, LSTM_E_FORMAT))
    for label, offset, value in (("proj_size >= hidden_size", 24, struct.pack("<Q", 99)),
                                 ("hidden_size 0", 8, struct.pack("<Q", 0)),
                                 ("unknown config flag", 32, struct.pack("<I", 8)),
                                 ("reserved config field", 36, struct.pack("<I", 1)),
                                 ("dropout 1", 40, struct.pack("<d", 1.0)),
                                 ("dropout NaN", 40, struct.pack("<d", float("nan")))):
        bad = conf[2][:offset] + value + conf[2][offset + len(value):]
        add((label, assemble([(b"CONF", 1, bad)] + parts[1:]), convert.FormatError,
             LSTM_E_FORMAT))
    huge = struct.pack("<4sIQ", b"TENS", 1, 1 << 62)
    add(("section length beyond the file", data[:-20] + huge + struct.pack("<I", 0),
         convert.FormatError, LSTM_E_FORMAT))
    return variants


def test_corrupted_files_refused(lib_or_none):
    data = convert.torch_to_bytes(make_lstm(input_size=2, hidden_size=4, num_layers=2,
                                            proj_size=2, bidirectional=True))
    variants = corrupt_variants(data)
    for label, bad, error, c_status in variants:
        with pytest.raises(error) as caught:
            convert.unpack_model(bad)
        assert isinstance(caught.value, ValueError)
        assert str(caught.value), label
        if lib_or_none is not None:
            assert lib_or_none.load_buffer(bad)[0] == c_status, label


def test_optional_sections_and_minor_versions(lib_or_none):
    module = make_lstm(input_size=2, hidden_size=3)
    data = convert.torch_to_bytes(module)
    parts = sections(data)
    extended = assemble(parts[:2] + [(b"NOTE", 0, b"a later optional section")] + parts[2:],
                        minor=7)
    model = convert.unpack_model(extended)
    assert model.version == (1, 7)
    assert [s[0] for s in model.skipped] == ["NOTE"]
    assert convert.torch_to_bytes(convert.bytes_to_torch(extended)) == data
    if lib_or_none is not None:
        status, c_model = lib_or_none.load_buffer(extended)
        assert status == LSTM_OK
        assert lib_or_none.save_buffer(c_model) == lib_or_none.as_saved(data)
        lib_or_none.lib.lstm_model_destroy(c_model)


def test_error_messages_say_what_and_where():
    data = bytearray(convert.torch_to_bytes(make_lstm(input_size=2, hidden_size=3)))
    data[100] ^= 1
    with pytest.raises(ValueError, match=r"'TENS' section whose checksum does not match at "
                                         r"byte 84"):
        convert.unpack_model(bytes(data))
    with pytest.raises(ValueError, match="no LSTMFILE header"):
        convert.unpack_model(b"hello")


# ---- (e) the command line -------------------------------------------------------------

def run_cli(*args, check=True):
    env = dict(os.environ, PYTHONPATH=BINDINGS_DIR)
    result = subprocess.run([sys.executable, "-m", "lstm.convert"] + [str(a) for a in args],
                            env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_cli_round_trip(tmp_path):
    module = make_lstm(input_size=3, hidden_size=6, num_layers=2, proj_size=2,
                       bidirectional=True, batch_first=True, dropout=0.1)
    torch.save(module, tmp_path / "model.pt")
    run_cli("to-lstm", tmp_path / "model.pt", tmp_path / "model.lstm")
    data = (tmp_path / "model.lstm").read_bytes()
    assert data == convert.torch_to_bytes(module)

    run_cli("to-torch", tmp_path / "model.lstm", tmp_path / "back.pt")
    back = torch.load(tmp_path / "back.pt")
    assert isinstance(back, torch.nn.LSTM)
    assert (back.batch_first, back.bidirectional, back.proj_size, back.dropout) == \
        (True, True, 2, 0.1)
    assert convert.torch_to_bytes(back) == data
    original = module.state_dict()
    for key, value in back.state_dict().items():
        if not key.startswith("bias"):
            assert torch.equal(value, original[key]), key

    info = run_cli("info", tmp_path / "model.lstm").stdout
    assert "hidden_size   6" in info and "batch_first   True" in info
    assert "weight_l1_reverse" in info and "projection_l0" in info
    assert sorted(os.listdir(tmp_path)) == ["back.pt", "model.lstm", "model.pt"]


def test_cli_state_dict_and_errors(tmp_path):
    module = make_lstm(input_size=3, hidden_size=4)
    torch.save({"encoder.lstm." + k: v for k, v in module.state_dict().items()},
               tmp_path / "sd.pt")
    run_cli("to-lstm", "--prefix", "encoder.lstm", "--batch-first", tmp_path / "sd.pt",
            tmp_path / "sd.lstm")
    assert (tmp_path / "sd.lstm").read_bytes() == convert.torch_to_bytes(module,
                                                                          batch_first=True)
    bad = bytearray((tmp_path / "sd.lstm").read_bytes())
    bad[-30] ^= 0xFF  # in the last tensor's values
    (tmp_path / "bad.lstm").write_bytes(bytes(bad))
    result = run_cli("to-torch", tmp_path / "bad.lstm", tmp_path / "bad.pt", check=False)
    assert result.returncode == 1
    assert "checksum does not match" in result.stderr
    assert not (tmp_path / "bad.pt").exists()
