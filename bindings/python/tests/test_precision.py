"""Tests of reduced-precision inference and quantized model files from
Python (liblstm 0.7.0: lstm_workspace_set_precision, lstm_state_set_precision,
lstm_model_save_quantized, lstm_network_save_quantized; format 1.2, QTNS),
and of the converter of PyTorch's dynamically quantized LSTM.

Run as tests/test_lstm.py says. Tolerances (normwise relative L2 against
float32 on random weights): bf16 < 1%, int8 < 3%. The converter's test
compares liblstm's int8 run of a converted ``quantize_dynamic`` LSTM with
PyTorch's own quantized run, which quantizes the products' inputs per
tensor (liblstm: per row), within 5%, and checks the file's bytes against
what the C library writes for the same q and s.
"""

import ctypes
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from lstm import convert

try:
    import lstm
    from lstm import _ffi
    _ffi.lib()
    HAVE_PRECISION = _ffi.optional("lstm_workspace_set_precision") is not None
    WHY = "the loaded liblstm %s lacks lstm_workspace_set_precision (0.7.0)" % lstm.version()
except ImportError as exc:  # no library: the pure-Python tests still run
    HAVE_PRECISION, WHY = False, "liblstm not found: %s" % exc

needs_library = pytest.mark.skipif(not HAVE_PRECISION, reason=WHY)

torch.set_num_threads(1)

LIMITS = {"bf16": 0.01, "int8": 0.03}


def relative(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


def inputs(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CONFIGS = [dict(), dict(num_layers=2), dict(bidirectional=True, num_layers=2),
           dict(proj_size=12), dict(peephole=True), dict(batch_first=True)]


@needs_library
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(c) or "plain")
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_inference_close_to_float32(config, precision):
    model = lstm.LSTM(24, 40, seed=3, **config).eval()
    x = inputs((30, 5, 24) if not config.get("batch_first") else (5, 30, 24))
    y32, (h32, c32) = model(x)
    y, (h, c) = model(x, precision=precision)
    assert relative(y, y32) < LIMITS[precision]
    assert relative(c, c32) < LIMITS[precision]
    assert not np.array_equal(y, y32)
    # the model's own setting, and back to float32 bit for bit
    assert model.set_precision(precision) is model and model.precision == precision
    assert np.array_equal(model(x)[0], y)
    model.precision = "fp32"
    assert np.array_equal(model(x)[0], y32)


@needs_library
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_streams_in_a_precision_equal_the_whole_call(precision):
    model = lstm.LSTM(8, 16, num_layers=2, seed=5).eval()
    x = inputs((12, 3, 8), 1)
    whole = model(x, precision=precision)[0]
    state = model.stream_state(3, precision=precision)
    assert state.precision == precision
    chunks = np.concatenate([state.run(x[:5]), state.run(x[5:])])
    assert np.array_equal(chunks, whole)
    state.reset()
    steps = np.stack([state.step(x[t]) for t in range(12)])
    assert np.array_equal(steps, whole)
    # and a float32 state gives the float32 call
    state.set_precision("fp32").reset()
    assert np.array_equal(state.run(x), model(x)[0])


@needs_library
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_network_inference_close_to_float32(precision):
    net = lstm.Network(16, 32, 2, num_embeddings=50, bidirectional=True, head="every_step",
                       head_size=5, seed=2).eval()
    tokens = np.random.default_rng(2).integers(0, 50, size=(20, 4))
    out32 = net(tokens)
    out = net(tokens, precision=precision)
    assert relative(out, out32) < LIMITS[precision]
    net.set_precision(precision)
    assert net.precision == precision and np.array_equal(net(tokens), out)


@needs_library
def test_invalid_precisions_are_value_errors_naming_the_allowed_ones():
    model = lstm.LSTM(4, 8, seed=1)
    net = lstm.Network(4, 8, seed=1)
    x = inputs((3, 2, 4))
    calls = [lambda p: model.set_precision(p), lambda p: setattr(model, "precision", p),
             lambda p: model.eval()(x, precision=p), lambda p: model.stream_state(2, precision=p),
             lambda p: model.save("unused.lstm", precision=p), lambda p: model.dumps(precision=p),
             lambda p: net.set_precision(p), lambda p: net.eval()(x, precision=p),
             lambda p: net.dumps(precision=p)]
    for call in calls:
        for bad in ("fp16", "INT8", 2, None if call is calls[2] else "", b"int8"):
            if bad is None:
                continue
            with pytest.raises(ValueError) as error:
                call(bad)
            assert "'fp32', 'bf16', 'int8'" in str(error.value)
    assert model.precision == "fp32"
    # training runs in float32: a reduced precision for a training call is refused
    with pytest.raises(ValueError, match="training"):
        model.train()(x, precision="int8")
    with pytest.raises(ValueError, match="training"):
        net.train()(x, precision="bf16")
    # a model set to int8 still trains in float32
    model.set_precision("int8").train()
    y_train = model(x)[0]
    assert np.array_equal(y_train, model.eval()(x, precision="fp32")[0])
    # a quantized file holds no optimizer
    optimizer = lstm.optim.SGD(model, lr=0.1)
    with pytest.raises(ValueError, match="optimizer"):
        model.dumps(optimizer, precision="int8")


@needs_library
@pytest.mark.parametrize("precision", ["bf16", "int8"])
@pytest.mark.parametrize("config", [dict(num_layers=2), dict(bidirectional=True, proj_size=6),
                                    dict(peephole=True)], ids=["layers", "bidir-proj", "peep"])
def test_quantized_save_load_round_trip(tmp_path, precision, config):
    model = lstm.LSTM(10, 20, seed=7, **config).eval()
    x = inputs((15, 3, 10), 4)
    expected = model(x, precision=precision)
    path = tmp_path / ("model-%s.lstm" % precision)
    model.save(path, precision=precision)
    data = path.read_bytes()
    assert data == model.dumps(precision=precision)
    assert struct.unpack_from("<HH", data, 8) == (1, 2)
    assert len(data) < len(model.dumps()) * (0.6 if precision == "bf16" else 0.5)
    for loaded in (lstm.load(path), lstm.loads(data)):
        loaded.eval().set_precision(precision)
        y, (h, c) = loaded(x)
        assert np.array_equal(y, expected[0]) and np.array_equal(h, expected[1][0]) \
            and np.array_equal(c, expected[1][1])
        # saved again in that precision: the same bytes
        assert loaded.dumps(precision=precision) == data
    # pickling keeps the precision setting
    copy = pickle.loads(pickle.dumps(lstm.loads(data).eval().set_precision(precision)))
    assert copy.precision == precision and np.array_equal(copy(x)[0], expected[0])


@needs_library
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_quantized_network_round_trip(tmp_path, precision):
    net = lstm.Network(8, 16, 2, num_embeddings=30, padding_idx=0, head="last_step",
                       head_size=3, loss="cross_entropy", seed=4).eval()
    net.meta["labels"] = "a\nb\nc"
    tokens = np.random.default_rng(5).integers(0, 30, size=(9, 4))
    expected = net(tokens, precision=precision)
    path = tmp_path / "net.lstm"
    net.save(path, precision=precision)
    loaded = lstm.load(path)
    assert isinstance(loaded, lstm.Network) and loaded.meta["labels"] == "a\nb\nc"
    assert np.array_equal(loaded.eval()(tokens, precision=precision), expected)
    assert loaded.dumps(precision=precision) == path.read_bytes()
    parsed = convert.unpack_model(path.read_bytes())
    assert parsed.precision == precision and parsed.head["placement"] == "last"


@needs_library
def test_loaded_int8_weights_run_as_stored_until_the_parameters_are_taken():
    # A file whose int8 rows do not reach 127 (as PyTorch's per-tensor
    # scales leave them): quantizing q s again would change them. The
    # binding must not take the parameter view at load (lstm_model_params
    # tells the library the weights may change, which drops the stored ones).
    config = {"input_size": 6, "hidden_size": 8}
    rng = np.random.default_rng(9)
    q = rng.integers(-100, 101, size=(32, 14)).astype(np.int8)
    q[0, 0] = -128  # PyTorch's symmetric qint8 reaches it; liblstm's writer does not
    scales = np.stack([np.full(32, 0.004, np.float32), np.full(32, 0.006, np.float32)])
    weight = {"precision": "int8", "q": q, "scales": scales}
    data = convert.pack_model(config, {"bias_l0": rng.standard_normal(32) * 0.1},
                              quantized={"weight_l0": weight})
    x = inputs((7, 2, 6), 3)
    model = lstm.loads(data).eval()
    stored = model(x, precision="int8")[0]
    network = lstm.loads_network(data).eval()
    assert np.array_equal(network(x, precision="int8"), stored)
    # the float32 parameters are q s
    assert np.array_equal(model.state_dict()["weight_hh_l0"], q[:, :8] * np.float32(0.004))
    assert np.array_equal(model(x, precision="int8")[0], stored)  # state_dict kept them
    model.params  # noqa: B018 - taking the writable view: quantized again from q s
    assert not np.array_equal(model(x, precision="int8")[0], stored)


@needs_library
@pytest.mark.parametrize("precision", ["bf16", "int8"])
@pytest.mark.parametrize("config", [dict(num_layers=3, bidirectional=True), dict(proj_size=5),
                                    dict(peephole=True, num_layers=2)],
                         ids=["bidir", "proj", "peep"])
def test_python_writer_gives_the_c_writers_bytes(precision, config):
    model = lstm.LSTM(7, 11, seed=8, **config)
    parsed = convert.unpack_model(model.dumps())
    ours = convert.pack_model(parsed.config, parsed.tensors, quantized=precision)
    theirs = model.dumps(precision=precision)
    assert ours == theirs
    again = convert.unpack_model(theirs)
    assert again.precision == precision and set(again.quantized) == {
        name for name in again.tensors if name.startswith(("weight", "projection"))}
    assert convert.pack_model(again.config, again.tensors, quantized=again.quantized) == theirs
    # the float32 values the reader gives are those the C loader gives
    loaded = lstm.loads(theirs)
    for name, values in again.tensors.items():
        assert np.array_equal(loaded._slice(loaded._params_copy(), name), values)
    # and as a network's file
    net_bytes = convert.pack_network(parsed.config, parsed.tensors, head={
        "placement": "every", "weight": np.ones((2, model.directions * model.state_size))},
        quantized=precision)
    net = lstm.loads_network(net_bytes)
    assert net.dumps(precision=precision) == net_bytes


def qtns_file(precision="int8"):
    config = {"input_size": 3, "hidden_size": 4, "proj_size": 2}
    tensors = {"weight_l0": np.linspace(-1, 1, 16 * 5).reshape(16, 5), "bias_l0": np.ones(16),
               "projection_l0": np.linspace(-2, 1, 8).reshape(2, 4)}
    return config, tensors, convert.pack_model(config, tensors, quantized=precision)


def sections(data):
    """[(tag, offset, payload length)] of a model file."""
    out, at = [], 16
    while at < len(data):
        tag, _, length = struct.unpack_from("<4sIQ", data, at)
        out.append((tag, at, length))
        at += 20 + length
    return out


def reseal(data, at):
    """data with the CRC of the section at `at` recomputed."""
    _, _, length = struct.unpack_from("<4sIQ", data, at)
    end = at + 16 + length
    return data[:end] + struct.pack("<I", convert.crc32c(data[at:end])) + data[end + 4:]


def corrupt_qtns(data, field_offset, packed, which=0):
    at = [s for s in sections(data) if s[0] == b"QTNS"][which][1]
    body = bytearray(data)
    body[at + 16 + field_offset: at + 16 + field_offset + len(packed)] = packed
    return reseal(bytes(body), at)


CORRUPTIONS = {
    "kind": (8, struct.pack("<I", 1), "configuration does not have"),
    "precision": (12, struct.pack("<I", 3), "unknown precision"),
    "split": (32, struct.pack("<Q", 3), "split"),
    "negative scale": (40, struct.pack("<f", -1.0), "scale"),
    "huge scale": (40, struct.pack("<f", 3e38), "scale"),
    "nan scale": (40, struct.pack("<f", float("nan")), "scale"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_reader_refuses_bad_qtns_as_the_c_loader_does(name):
    _, _, data = qtns_file()
    offset, packed, message = CORRUPTIONS[name]
    bad = corrupt_qtns(data, offset, packed)
    with pytest.raises(convert.FormatError, match=message):
        convert.unpack_model(bad)
    if HAVE_PRECISION:
        with pytest.raises(lstm.LSTMError) as error:
            lstm.loads(bad)
        assert error.value.status == lstm.Status.E_FORMAT


def test_reader_refuses_mixed_and_unrequired_quantized_sections():
    config, tensors, data = qtns_file("bf16")
    # W_hr as TENS beside a quantized W
    float_file = convert.pack_model(config, tensors)
    float_tens = [s for s in sections(float_file) if s[0] == b"TENS"][2]
    qtns = [s for s in sections(data) if s[0] == b"QTNS"][1]
    mixed = data[:qtns[1]] + float_file[float_tens[1]: float_tens[1] + 20 + float_tens[2]] \
        + data[qtns[1] + 20 + qtns[2]:]
    with pytest.raises(convert.FormatError, match="every W and W_hr"):
        convert.unpack_model(mixed)
    # the required bit cleared
    at = qtns[1]
    unrequired = reseal(data[:at + 4] + struct.pack("<I", 0) + data[at + 8:], at)
    with pytest.raises(convert.FormatError, match="required"):
        convert.unpack_model(unrequired)
    # two precisions
    _, _, int8 = qtns_file("int8")
    int8_qtns = [s for s in sections(int8) if s[0] == b"QTNS"][1]
    two = data[:qtns[1]] + int8[int8_qtns[1]: int8_qtns[1] + 20 + int8_qtns[2]] \
        + data[qtns[1] + 20 + qtns[2]:]
    with pytest.raises(convert.FormatError, match="two precisions"):
        convert.unpack_model(two)
    if HAVE_PRECISION:
        for bad in (mixed, unrequired, two):
            with pytest.raises(lstm.LSTMError):
                lstm.loads(bad)


def test_writer_checks_quantized_weights():
    config, tensors, _ = qtns_file()
    good = convert.quantize(config, tensors, "int8")
    with pytest.raises(convert.FormatError, match="missing projection_l0"):
        convert.pack_model(config, tensors, quantized={"weight_l0": good["weight_l0"]})
    bad = dict(good, weight_l0=dict(good["weight_l0"], scales=-good["weight_l0"]["scales"]))
    with pytest.raises(convert.FormatError, match="scale"):
        convert.pack_model(config, tensors, quantized=bad)
    mixed = dict(good, projection_l0=convert.quantize(config, tensors, "bf16")["projection_l0"])
    with pytest.raises(convert.FormatError, match="two precisions"):
        convert.pack_model(config, tensors, quantized=mixed)
    with pytest.raises(convert.FormatError, match="optimizer"):
        convert.pack_model(config, tensors, quantized="int8", optimizer=b"x" * 40)
    with pytest.raises(convert.FormatError, match="'bf16' or 'int8'"):
        convert.pack_model(config, tensors, quantized="fp16")
    with pytest.raises(convert.FormatError, match="infinity"):
        convert.quantize(config, dict(tensors, bias_l0=np.ones(16),
                                      weight_l0=np.full((16, 5), 3.4e38)), "bf16")


def quantized_torch(bidirectional, num_layers, per_channel, seed):
    torch.manual_seed(seed)
    float_lstm = torch.nn.LSTM(16, 32, num_layers=num_layers, bidirectional=bidirectional)
    spec = {torch.nn.LSTM: torch.ao.quantization.per_channel_dynamic_qconfig} \
        if per_channel else {torch.nn.LSTM}
    quantized = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(float_lstm), spec,
                                                       dtype=torch.qint8)[0]
    return float_lstm, quantized


@needs_library
@pytest.mark.parametrize("bidirectional,num_layers,per_channel",
                         [(False, 1, False), (True, 2, False), (False, 2, True),
                          (True, 1, True)])
def test_dynamic_quantized_torch_lstm_converts(bidirectional, num_layers, per_channel):
    float_lstm, quantized = quantized_torch(bidirectional, num_layers, per_channel, 11)
    data = convert.torch_to_bytes(quantized)
    parsed = convert.unpack_model(data)
    assert parsed.precision == "int8" and parsed.config["bidirectional"] == bidirectional
    # q as PyTorch holds them: W = [weight_hh | weight_ih]
    weights = quantized.get_weight()
    w = parsed.quantized["weight_l0"]
    assert np.array_equal(w["q"][:, :32], weights["weight_hh_l0"].int_repr().numpy())
    assert np.array_equal(w["q"][:, 32:], weights["weight_ih_l0"].int_repr().numpy())

    x = torch.randn(25, 4, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y_float = float_lstm(x)[0].numpy()
        y_torch = quantized(x)[0].numpy()
    model = lstm.loads(data).eval()
    y_int8 = model(x.numpy(), precision="int8")[0]
    y_dequantized = model(x.numpy())[0]  # liblstm float32 on the q s weights
    assert relative(y_int8, y_torch) < 0.05
    assert relative(y_int8, y_dequantized) < 0.03
    assert relative(y_int8, y_float) < 0.03
    # PyTorch's float LSTM on the q s weights (bytes_to_torch) is what PyTorch's
    # quantized LSTM approximates: the mapping, gates included, is right
    with torch.no_grad():
        y_torch_dequantized = convert.bytes_to_torch(data)(x)[0].numpy()
    assert relative(y_torch, y_torch_dequantized) < 0.05
    assert relative(y_dequantized, y_torch_dequantized) < 1e-5
    # the C library, saving what it loaded in int8, writes the same bytes
    assert model.dumps(precision="int8") == data


@needs_library
def test_dynamic_quantized_lstm_in_a_network_and_refusals():
    _, quantized = quantized_torch(True, 1, False, 12)
    head = torch.nn.Linear(64, 3)
    data = convert.torch_parts_to_bytes(lstm=quantized, linear=head, head="last", loss=None)
    net = lstm.loads_network(data).eval()
    x = torch.randn(10, 2, 16)
    with torch.no_grad():
        _, (h_n, _) = quantized(x)
        reference = head(torch.cat([h_n[-2], h_n[-1]], 1)).numpy()
    assert relative(net(x.numpy(), precision="int8"), reference) < 0.05
    assert net.dumps(precision="int8") == data
    with pytest.raises(convert.FormatError, match="int8"):
        convert.torch_to_bytes(quantized, precision="bf16")
    with pytest.raises(TypeError):
        convert.quantized_torch_to_liblstm(torch.nn.LSTM(2, 3))


@needs_library
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_float_torch_lstm_written_quantized_is_what_liblstm_writes(precision):
    torch.manual_seed(3)
    module = torch.nn.LSTM(5, 9, num_layers=2, proj_size=4)
    data = convert.torch_to_bytes(module, precision=precision)
    assert data == lstm.loads(convert.torch_to_bytes(module)).dumps(precision=precision)


@needs_library
def test_precision_needs_liblstm_0_7(monkeypatch):
    names = frozenset(["lstm_workspace_set_precision", "lstm_state_set_precision",
                       "lstm_model_save_quantized", "lstm_model_save_quantized_buffer",
                       "lstm_network_save_quantized", "lstm_network_save_quantized_buffer"])
    model = lstm.LSTM(3, 4, seed=1).eval()
    monkeypatch.setattr(_ffi, "_absent", _ffi._absent | names)
    x = inputs((2, 1, 3))
    assert model.set_precision("fp32") is model
    model(x)  # float32 needs no new call
    model.stream_state(1).run(x)
    for call in (lambda: model.set_precision("int8"), lambda: model(x, precision="bf16"),
                 lambda: model.stream_state(1, precision="int8"),
                 lambda: model.dumps(precision="int8"),
                 lambda: lstm.Network(3, 4).set_precision("bf16")):
        with pytest.raises(lstm.LSTMError) as error:
            call()
        assert error.value.status == lstm.Status.E_UNSUPPORTED
        assert "0.7.0" in error.value.message


def test_declared_signatures_match_the_header_types():
    # lstm_precision is an enum: passed as int, as the other enums are
    signature = _ffi._OPTIONAL_SIGNATURES["lstm_model_save_quantized_buffer"]
    assert signature[1][1] is ctypes.c_int
    assert _ffi.PRECISIONS == {"fp32": 0, "bf16": 1, "int8": 2}


def test_command_line_converts_a_saved_quantized_module(tmp_path):
    _, quantized = quantized_torch(False, 2, False, 13)
    torch.save(torch.nn.Sequential(quantized), tmp_path / "q.pt")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(convert.__file__)))
    run = [sys.executable, "-m", "lstm.convert"]
    subprocess.run(run + ["to-lstm", "--prefix", "0", str(tmp_path / "q.pt"),
                          str(tmp_path / "q.lstm")], check=True, env=env)
    data = (tmp_path / "q.lstm").read_bytes()
    assert data == convert.torch_to_bytes(quantized)
    info = subprocess.run(run + ["info", str(tmp_path / "q.lstm")], check=True, env=env,
                          capture_output=True, text=True).stdout
    assert "format 1.2" in info and "int8" in info


# ---- quantized networks: the embedding and the head (format 1.3, EMBQ, HDQ) ----

NETWORKS = [dict(num_embeddings=40, head="every_step", head_size=7),
            dict(num_embeddings=25, padding_idx=0, head="last_step", head_size=3,
                 loss="cross_entropy", bidirectional=True),
            dict(head="every_step", head_size=4, proj_size=5)]


def own_rows(values, precision):
    """This test's own rounding of a matrix's rows, from the format's text:
    bf16 to nearest even (subnormals to zero); int8 s = max |w| / 127 and
    q = round(w / s) in float32, per row."""
    values = np.asarray(values, dtype=np.float32)
    if precision == "bf16":
        u = values.view(np.uint32).astype(np.uint64)
        bits = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
        return {"bits": np.where((u & 0x7F800000) == 0, (u >> 16) & 0x8000, bits)
                .astype(np.uint16)}
    s = (np.abs(values).max(axis=1) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(s[:, None] > 0, np.rint(values / s[:, None]), 0)
    return {"q": np.clip(q, -127, 127).astype(np.int8), "scales": s}


@needs_library
@pytest.mark.parametrize("precision", ["bf16", "int8"])
@pytest.mark.parametrize("shape", NETWORKS, ids=["every", "last-bidir-pad", "features-proj"])
def test_python_writer_gives_the_c_writers_network_bytes(precision, shape):
    net = lstm.Network(6, 10, 1, seed=5, **shape)
    theirs = net.dumps(precision=precision)
    parsed = convert.unpack_model(net.dumps())
    ours = convert.pack_network(parsed.config, parsed.tensors, embedding=parsed.embedding,
                                head=parsed.head, loss=parsed.loss, quantized=precision)
    assert ours == theirs
    again = convert.unpack_model(theirs)
    tokens = shape.get("num_embeddings") is not None
    assert again.version == (1, 3) and again.precision == precision
    # the stored rows are this test's rounding of the float32 values
    for part, float_part in ((again.embedding, parsed.embedding), (again.head, parsed.head)):
        if part is None:
            continue
        stored, expected = part["quantized"], own_rows(float_part["weight"], precision)
        assert stored["precision"] == precision
        for key, value in expected.items():
            assert np.array_equal(np.asarray(stored[key]).reshape(value.shape), value)
        # and the float32 values the reader gives are those the C loader gives
        assert np.array_equal(part["weight"], convert.dequantize(stored, part["weight"].shape[1]))
    assert (again.embedding is not None) == tokens
    assert np.array_equal(again.head["bias"], parsed.head["bias"])
    loaded = lstm.loads_network(theirs)
    params = dict(loaded.named_parameters())
    if tokens:
        assert np.array_equal(params["embedding.weight"], again.embedding["weight"])
    assert np.array_equal(params["head.weight"], again.head["weight"])
    # written back as read: the same bytes
    assert convert.pack_network(again.config, again.tensors, embedding=again.embedding,
                                head=again.head, loss=again.loss,
                                quantized=again.quantized) == theirs
    assert convert.quantize_rows(parsed.head["weight"], precision)["precision"] == precision


@needs_library
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_quantized_network_file_sizes_and_bits(tmp_path, precision):
    net = lstm.Network(64, 64, 1, num_embeddings=1000, head="every_step", head_size=1000,
                       seed=6).eval()
    tokens = np.random.default_rng(7).integers(0, 1000, size=(12, 3))
    expected = net(tokens, precision=precision)
    data = net.dumps(precision=precision)
    assert len(data) < len(net.dumps()) * (0.3 if precision == "int8" else 0.55)
    loaded = lstm.loads_network(data).eval()
    assert np.array_equal(loaded(tokens, precision=precision), expected)
    assert loaded.dumps(precision=precision) == data
    # the head runs in the precision: not float32's output
    assert not np.array_equal(expected, net(tokens, precision="fp32"))
    assert relative(expected, net(tokens)) < LIMITS[precision]


def quantized_network_file(precision="int8"):
    config = {"input_size": 4, "hidden_size": 5}
    rng = np.random.default_rng(8)
    tensors = {"weight_l0": rng.standard_normal((20, 9)) * 0.3, "bias_l0": np.zeros(20)}
    return convert.pack_network(
        config, tensors, embedding={"weight": rng.standard_normal((6, 4))},
        head={"placement": "last", "weight": rng.standard_normal((3, 5)),
              "bias": rng.standard_normal(3)}, quantized=precision)


def corrupt_section(data, tag, field_offset, packed):
    at = [s for s in sections(data) if s[0] == tag][0][1]
    body = bytearray(data)
    body[at + 16 + field_offset: at + 16 + field_offset + len(packed)] = packed
    return reseal(bytes(body), at)


NETWORK_CORRUPTIONS = {
    "embq precision": ("int8", b"EMBQ", 20, struct.pack("<I", 3), "unknown precision"),
    "hdq two precisions": ("int8", b"HDQ ", 16, struct.pack("<I", 1), "two precisions"),
    "embq nan scale": ("int8", b"EMBQ", 32, struct.pack("<f", float("nan")), "scale"),
    "embq negative scale": ("int8", b"EMBQ", 36, struct.pack("<f", -1.0), "scale"),
    "hdq huge scale": ("int8", b"HDQ ", 24, struct.pack("<f", 3e38), "scale"),
    "embq q -128": ("int8", b"EMBQ", 32 + 4 * 6 + 3, b"\x80", "-128"),
    "hdq q -128": ("int8", b"HDQ ", 24 + 4 * 3, b"\x80", "-128"),
    "hdq reserved": ("int8", b"HDQ ", 20, struct.pack("<I", 1), "reserved"),
    "hdq nan bias": ("int8", b"HDQ ", 24 + 4 * 3 + 15, struct.pack("<f", float("nan")), "NaN"),
    "embq bf16 subnormal": ("bf16", b"EMBQ", 32 + 2, struct.pack("<H", 1), "subnormal"),
    "hdq bf16 infinite": ("bf16", b"HDQ ", 24, struct.pack("<H", 0x7F80), "infinity"),
    "embq wrong rows": ("int8", b"EMBQ", 0, struct.pack("<Q", 7), "bytes"),
}


@pytest.mark.parametrize("name", sorted(NETWORK_CORRUPTIONS))
def test_reader_refuses_bad_embq_and_hdq_as_the_c_loader_does(name):
    precision, tag, offset, packed, message = NETWORK_CORRUPTIONS[name]
    bad = corrupt_section(quantized_network_file(precision), tag, offset, packed)
    with pytest.raises(convert.FormatError, match=message):
        convert.unpack_model(bad)
    if HAVE_PRECISION:
        with pytest.raises(lstm.LSTMError) as error:
            lstm.loads_network(bad)
        assert error.value.status == lstm.Status.E_FORMAT


def test_quantized_network_sections_rules():
    data = quantized_network_file()
    parsed = convert.unpack_model(data)
    assert parsed.version == (1, 3) and [s[0] for s in sections(data)] == [
        b"CONF", b"NETW", b"EMBQ", b"QTNS", b"TENS", b"HDQ ", b"END "]
    # EMBQ without the required bit
    at = [s for s in sections(data) if s[0] == b"EMBQ"][0][1]
    optional = reseal(data[:at + 4] + struct.pack("<I", 0) + data[at + 8:], at)
    with pytest.raises(convert.FormatError, match="required"):
        convert.unpack_model(optional)
    # an EMBQ in a file whose LSTM is float32
    float_file = convert.pack_network(parsed.config, parsed.tensors,
                                      embedding={"weight": parsed.embedding["weight"]})
    embd = [s for s in sections(float_file) if s[0] == b"EMBD"][0]
    embq = [s for s in sections(data) if s[0] == b"EMBQ"][0]
    mixed = float_file[:embd[1]] + data[embq[1]: embq[1] + 20 + embq[2]] \
        + float_file[embd[1] + 20 + embd[2]:]
    with pytest.raises(convert.FormatError, match="every W and W_hr"):
        convert.unpack_model(mixed)
    # a 1.2 file (liblstm 0.7.0's: the embedding and head in float32 beside
    # the QTNS) still reads; saved again it is 1.3
    floats = convert.pack_network(parsed.config, parsed.tensors, embedding={
        "weight": parsed.embedding["weight"]}, head={k: parsed.head[k] for k in (
            "placement", "weight", "bias")})
    spans = {tag: (at, at + 20 + length) for tag, at, length in sections(floats)}
    old = b"".join(
        floats[slice(*spans[b"EMBD"])] if tag == b"EMBQ" else
        floats[slice(*spans[b"HEAD"])] if tag == b"HDQ " else data[at: at + 20 + length]
        for tag, at, length in sections(data))
    header = b"LSTMFILE" + struct.pack("<HH", 1, 2)
    old = header + struct.pack("<I", convert.crc32c(header)) + old
    read = convert.unpack_model(old)
    assert read.version == (1, 2) and read.precision == "int8"
    assert "quantized" not in read.embedding and "quantized" not in read.head
    assert np.array_equal(read.embedding["weight"], parsed.embedding["weight"])
    if HAVE_PRECISION:
        resaved = convert.unpack_model(lstm.loads_network(old).dumps(precision="int8"))
        assert resaved.version == (1, 3)
        assert np.array_equal(resaved.embedding["quantized"]["q"],
                              own_rows(parsed.embedding["weight"], "int8")["q"])
    # writer: a part's own quantized rows must follow the format's rules
    rows = convert.quantize_rows(parsed.embedding["weight"], "int8")
    rows["q"][0, 0] = -128
    with pytest.raises(convert.FormatError, match="-128"):
        convert.pack_network(parsed.config, parsed.tensors, quantized="int8",
                             embedding={"weight": parsed.embedding["weight"], "quantized": rows})
    with pytest.raises(convert.FormatError, match="one precision"):
        convert.pack_network(parsed.config, parsed.tensors, quantized="bf16", embedding={
            "weight": parsed.embedding["weight"],
            "quantized": convert.quantize_rows(parsed.embedding["weight"], "int8")})
    # a float32 file writes the float32 weight
    assert convert.unpack_model(convert.pack_network(
        parsed.config, parsed.tensors, embedding=parsed.embedding)).version == (1, 1)
