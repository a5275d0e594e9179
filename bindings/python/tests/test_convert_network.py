"""Tests of the whole-network model files (format 1.1) in lstm.convert.

(a) PyTorch parts -> bytes -> PyTorch parts: every weight back bit for bit
    (the LSTM's two biases summed once, as for a lone LSTM), the same bytes
    when written again, the same outputs; token and feature inputs, every
    head placement and loss, bidirectional, proj_size, padding_idx,
    batch_first, metadata text and bytes.
(b) The layout of what pack_network writes, field by field, against
    docs/model-format.md and the 1.1 spec; old files (no network sections,
    minor version 0, tests/unit/data/model-v1.lstm) still read.
(c) Hostile and broken files are refused with FormatError (a ValueError):
    every truncation and flipped byte, each rule of the network sections
    (counts, cross-section rules, lengths, reserved fields, UTF-8, key
    order), and models that cannot be written.
"""

import os
import struct
import warnings

import numpy as np
import pytest
import torch

from lstm import convert
from test_convert import assemble, sections

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

torch.set_num_threads(1)


# ---- helpers ---------------------------------------------------------------------

def make_parts(*, tokens=True, padding_idx=None, input_size=4, hidden_size=5, num_layers=1,
               bidirectional=False, proj_size=0, batch_first=False, head="last",
               out_features=3, linear_bias=True, seed=0):
    """(embedding or None, nn.LSTM, nn.Linear or None) with random weights."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        lstm = torch.nn.LSTM(input_size, hidden_size, num_layers=num_layers,
                             bidirectional=bidirectional, proj_size=proj_size,
                             batch_first=batch_first)
    embedding = torch.nn.Embedding(11, input_size, padding_idx=padding_idx) if tokens else None
    D = 2 if bidirectional else 1
    linear = None if head is None else \
        torch.nn.Linear(D * (proj_size or hidden_size), out_features, bias=linear_bias)
    for module in (embedding, lstm, linear):
        if module is not None:
            with torch.no_grad():
                for param in module.parameters():
                    param.copy_(torch.randn(param.shape) * 0.4)
            module.eval()
    return embedding, lstm, linear


def run_parts(embedding, lstm, linear, head, x):
    with torch.no_grad():
        inputs = embedding(x) if embedding is not None else x
        y, (h_n, _) = lstm(inputs)
        if head is None:
            return y
        if head == "every":
            return linear(y)
        D = 2 if lstm.bidirectional else 1
        return linear(torch.cat([h_n[k] for k in range(-D, 0)], 1))


def small_network(**changes):
    """A small token network file and its parts (for the corruption tests)."""
    config = dict(input_size=2, hidden_size=2)
    tensors = {name: np.full(shape, 0.25) for name, shape in
               convert.tensor_shapes(config).items()}
    kwargs = dict(embedding={"weight": np.arange(6.0).reshape(3, 2), "padding_idx": 1},
                  head={"placement": "every", "weight": np.ones((3, 2)), "bias": [1, 2, 3]},
                  loss="cross_entropy", metadata={"a": "text", "b": b"\0\xff"})
    kwargs.update(changes)
    return convert.pack_network(config, tensors, **kwargs), config, tensors


def with_section(data, tag, edit):
    """data with the payload of its (first) tag section replaced by edit(payload)."""
    parts = sections(data)
    index = next(i for i, part in enumerate(parts) if part[0] == tag)
    t, flags, payload = parts[index]
    parts[index] = (t, flags, edit(payload))
    return assemble(parts, minor=1)


def patch(offset, fmt, value):
    def edit(payload):
        return payload[:offset] + struct.pack(fmt, value) + payload[offset + struct.calcsize(fmt):]
    return edit


# ---- (a) PyTorch parts round trips -----------------------------------------------------

ROUND_TRIP = [
    dict(tokens=True, head="last", loss="cross_entropy"),
    dict(tokens=True, padding_idx=0, head="every", loss="cross_entropy", num_layers=2),
    dict(tokens=True, padding_idx=10, head="every", loss="bce_with_logits", bidirectional=True),
    dict(tokens=True, head=None, loss=None, proj_size=2, num_layers=2, bidirectional=True),
    dict(tokens=True, head="last", loss="mse", proj_size=3, bidirectional=True, batch_first=True,
         out_features=1),
    dict(tokens=False, head="every", loss="mse", batch_first=True),
    dict(tokens=False, head="last", loss="bce_with_logits", num_layers=3, bidirectional=True,
         linear_bias=False),
    dict(tokens=False, head=None, loss="mse"),
    dict(tokens=False, head=None, loss=None, proj_size=1),
    dict(tokens=False, head="every", loss=None, out_features=2, proj_size=2),
]


def round_trip_id(spec):
    return "%s_%s_%s%s%s%s" % ("tok" if spec["tokens"] else "feat", spec["head"], spec["loss"],
                               "_bi" if spec.get("bidirectional") else "",
                               "_p%d" % spec["proj_size"] if spec.get("proj_size") else "",
                               "_pad" if spec.get("padding_idx") is not None else "")


@pytest.mark.parametrize("spec", ROUND_TRIP, ids=round_trip_id)
def test_torch_parts_round_trip(spec):
    spec = dict(spec)
    loss = spec.pop("loss")
    embedding, lstm, linear = make_parts(**spec)
    metadata = {"vocabulary": "<pad>\nthe\ncat\n\u00e9t\u00e9 \U0001F600", "raw": b"\0\1\xff",
                "empty": "", "description": "a test"}
    data = convert.torch_parts_to_bytes(embedding=embedding, lstm=lstm, linear=linear,
                                        head=spec["head"], loss=loss, metadata=metadata)
    assert data[10:12] == b"\x01\x00"  # minor version 1
    parts = convert.bytes_to_torch_parts(data)

    assert (parts.head, parts.loss) == (spec["head"], loss)
    assert parts.metadata == metadata
    assert list(parts.metadata) == sorted(metadata)
    assert isinstance(parts.metadata["raw"], bytes) and isinstance(parts.metadata["empty"], str)
    if embedding is None:
        assert parts.embedding is None
    else:
        assert torch.equal(parts.embedding.weight, embedding.weight)
        assert parts.embedding.padding_idx == embedding.padding_idx
    if linear is None:
        assert parts.linear is None
    else:
        assert torch.equal(parts.linear.weight, linear.weight)
        want_bias = linear.bias if linear.bias is not None else torch.zeros(linear.out_features)
        assert torch.equal(parts.linear.bias, want_bias)
    original = lstm.state_dict()
    for key, value in parts.lstm.state_dict().items():
        if key.startswith("bias_ih"):
            sfx = key[len("bias_ih"):]
            total = (original[key].double() + original["bias_hh" + sfx].double()).float()
            assert torch.equal(value, total), key
        elif key.startswith("bias_hh"):
            assert torch.count_nonzero(value) == 0
        else:
            assert torch.equal(value, original[key]), key
    assert parts.lstm.batch_first == lstm.batch_first

    # written again: the same bytes
    again = convert.torch_parts_to_bytes(embedding=parts.embedding, lstm=parts.lstm,
                                         linear=parts.linear, head=parts.head,
                                         loss=parts.loss, metadata=parts.metadata)
    assert again == data

    # and the same outputs (the bias sum is the one rounding)
    shape = (2, 6) if lstm.batch_first else (6, 2)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 11, shape, generator=g) if embedding is not None \
        else torch.randn(shape + (lstm.input_size,), generator=g)
    want = run_parts(embedding, lstm, linear, spec["head"], x)
    with torch.no_grad():
        got = parts(x)
    assert got.shape == want.shape
    assert float((got - want).abs().max()) <= 1e-6 * float(want.abs().max())


def test_save_and_load_paths(tmp_path):
    embedding, lstm, linear = make_parts(padding_idx=2)
    path = tmp_path / "net.lstm"
    convert.save_torch_parts(path, embedding=embedding, lstm=lstm, linear=linear, head="last",
                             loss="cross_entropy", metadata={"labels": "a\nb\nc"})
    assert path.read_bytes() == convert.torch_parts_to_bytes(
        embedding=embedding, lstm=lstm, linear=linear, head="last", loss="cross_entropy",
        metadata={"labels": "a\nb\nc"})
    parts = convert.load_torch_parts(str(path))
    assert parts.embedding.padding_idx == 2 and parts.metadata == {"labels": "a\nb\nc"}
    assert os.listdir(tmp_path) == ["net.lstm"]
    # a refused model leaves the file that was there
    with pytest.raises(ValueError):
        convert.save_torch_parts(path, lstm=lstm, linear=linear, head="last",
                                 loss="cross_entropy", metadata={"": "empty key"})
    assert convert.load_torch_parts(path).metadata == {"labels": "a\nb\nc"}
    assert os.listdir(tmp_path) == ["net.lstm"]


def test_torch_parts_refused():
    embedding, lstm, linear = make_parts()
    cases = [
        (dict(embedding=torch.nn.Embedding(11, 4, max_norm=1.0)), "max_norm"),
        (dict(embedding=torch.nn.Embedding(11, 4, scale_grad_by_freq=True)),
         "scale_grad_by_freq"),
        (dict(embedding=torch.nn.Embedding(11, 4, sparse=True)), "sparse"),
        (dict(embedding=torch.nn.Embedding(11, 3)), "dimension is 3.*input_size 4"),
        (dict(linear=torch.nn.Linear(4, 3)), "in_features 4; the LSTM gives D R = 5"),
        (dict(head=None), "without head="),
        (dict(linear=None), "needs the head's nn.Linear"),
        (dict(head="first"), "'every'.*or 'last'"),
        (dict(linear=torch.nn.Linear(5, 1), loss="cross_entropy"), "head_size >= 2"),
        (dict(linear=None, head=None, loss="cross_entropy"), "cross-entropy needs a head"),
        (dict(loss="hinge"), "loss is 'hinge'"),
        (dict(metadata={"k": 3}), "str \\(text\\) or bytes"),
        (dict(metadata={"a\0b": "x"}), "NUL"),
        (dict(metadata={"k": "a\0b"}), "NUL"),
        (dict(metadata={"k": "\ud800"}), "lone surrogate"),
        (dict(metadata={"k" * 256: "x"}), "256 bytes long"),
    ]
    for change, match in cases:
        kwargs = dict(embedding=embedding, lstm=lstm, linear=linear, head="last", loss=None)
        kwargs.update(change)
        with pytest.raises(convert.FormatError, match=match):
            convert.torch_parts_to_bytes(**kwargs)
    with pytest.raises(TypeError):
        convert.torch_parts_to_bytes(lstm=lstm, embedding=linear)


# ---- (b) the layout, and old files ---------------------------------------------------------

def test_layout_of_a_network_file():
    data, config, tensors = small_network()
    assert data[:16] == convert.MAGIC + struct.pack("<HH", 1, 1) + struct.pack(
        "<I", convert.crc32c(convert.MAGIC + struct.pack("<HH", 1, 1)))
    parts = sections(data)
    assert [(tag, flags) for tag, flags, _ in parts] == [
        (b"CONF", 1), (b"NETW", 1), (b"EMBD", 1), (b"TENS", 1), (b"TENS", 1), (b"HEAD", 1),
        (b"META", 0), (b"META", 0), (b"END ", 1)]
    netw = parts[1][2]
    assert netw == struct.pack("<IIIIQ", 1, 1, 1, 0, 3)
    embd = parts[2][2]
    assert embd == struct.pack("<QQIIq", 3, 2, 1, 0, 1) + np.arange(6, dtype="<f4").tobytes()
    head = parts[5][2]
    assert head == struct.pack("<QQ", 3, 2) + np.ones(6, "<f4").tobytes() + \
        np.array([1, 2, 3], "<f4").tobytes()
    assert parts[6][2] == struct.pack("<IIQ", 0, 1, 4) + b"a" + b"text"
    assert parts[7][2] == struct.pack("<IIQ", 1, 1, 2) + b"b" + b"\0\xff"
    # An LSTM-only file of the same model is the same CONF and TENS, no network sections.
    plain = sections(convert.pack_model(config, tensors))
    assert [p[0] for p in plain] == [b"CONF", b"TENS", b"TENS", b"END "]
    assert plain[:3] == [parts[0], parts[3], parts[4]]


def test_a_features_network_without_head_still_has_netw():
    config = dict(input_size=2, hidden_size=2)
    tensors = {n: np.zeros(s) for n, s in convert.tensor_shapes(config).items()}
    parts = sections(convert.pack_network(config, tensors))
    assert [p[0] for p in parts] == [b"CONF", b"NETW", b"TENS", b"TENS", b"END "]
    assert parts[1][2] == bytes(24)
    model = convert.unpack_model(convert.pack_network(config, tensors))
    assert model.network and model.input == "features" and model.head is None


def test_metadata_sorted_by_bytes():
    keys = ["b", "a", "\u00e4", "Z", "ab", "a\u00e4", "\U0001F600"]
    data, _, _ = small_network(metadata={k: k for k in keys})
    model = convert.unpack_model(data)
    assert list(model.metadata) == sorted(keys, key=lambda k: k.encode("utf-8"))
    assert model.metadata == {k: k for k in keys}


def test_old_files_still_read():
    path = os.path.join(REPO, "tests", "unit", "data", "model-v1.lstm")
    with open(path, "rb") as handle:
        data = handle.read()
    assert data[8:12] == b"\x01\x00\x00\x00"  # written as format 1.0
    model = convert.unpack_model(data)
    assert (model.network, model.input, model.embedding, model.head, model.loss,
            model.metadata) == (False, "features", None, None, None, {})
    # Written again, the same sections after a 1.1 header.
    again = convert.pack_model(model.config, model.tensors, optimizer=model.optimizer)
    assert again[16:] == data[16:] and again[10:12] == b"\x01\x00"
    # (That file has peepholes, which PyTorch lacks: a 1.0 file of an nn.LSTM.)
    _, lstm, _ = make_parts(tokens=False, num_layers=2, bidirectional=True)
    old = assemble(sections(convert.torch_to_bytes(lstm)), minor=0)
    parts = convert.bytes_to_torch_parts(old)
    assert parts.embedding is None and parts.linear is None and parts.head is None
    assert (parts.loss, parts.metadata) == (None, {})
    assert torch.equal(parts.lstm.weight_ih_l1_reverse, lstm.weight_ih_l1_reverse)


# ---- (c) hostile files -------------------------------------------------------------------

def test_every_truncation_and_flipped_byte_refused():
    data, _, _ = small_network()
    for size in range(len(data)):
        with pytest.raises(ValueError):
            convert.unpack_model(data[:size])
    for at in range(len(data)):
        bad = bytearray(data)
        bad[at] ^= 0x04
        with pytest.raises(ValueError):
            convert.unpack_model(bytes(bad))


def corrupt_networks():
    """(label, bytes, match) of files each breaking one rule of the 1.1 sections."""
    data, config, tensors = small_network()
    parts = sections(data)
    by_tag = {}
    for part in parts:
        by_tag.setdefault(part[0], []).append(part)
    conf, netw, embd, tens, head, meta, end = (by_tag[b"CONF"][0], by_tag[b"NETW"][0],
                                               by_tag[b"EMBD"][0], by_tag[b"TENS"],
                                               by_tag[b"HEAD"][0], by_tag[b"META"],
                                               by_tag[b"END "][0])

    def build(*sequence):
        return assemble([conf] + list(sequence) + [end], minor=1)

    meta_a, meta_b = meta
    out = [
        ("no NETW, EMBD", build(embd, *tens), "EMBD section in a features network"),
        ("no EMBD", build(netw, *tens, head), "no EMBD section for a token network"),
        ("no HEAD", build(netw, embd, *tens), "no HEAD section for the network's head"),
        ("HEAD without head", build(netw, embd, *tens, head, head), "second HEAD"),
        ("second NETW", build(netw, netw, embd, *tens, head), "second NETW"),
        ("second EMBD", build(netw, embd, embd, *tens, head), "second EMBD"),
        ("keys descending", build(netw, embd, *tens, head, meta_b, meta_a), "strictly ascending"),
        ("key repeated", build(netw, embd, *tens, head, meta_a, meta_a), "repeated"),
        ("sections anywhere after CONF", None, None),
    ]
    # Accepted: NETW, EMBD, HEAD and META in another order (before END).
    out[-1] = ("moved sections", build(meta_a, *tens, head, meta_b, embd, netw), None)
    # The required bit is fixed: set on NETW, EMBD, HEAD, clear on META.
    for tag, section in ((b"NETW", netw), (b"EMBD", embd), (b"HEAD", head), (b"META", meta_a)):
        flipped = (tag, section[1] ^ 1, section[2])
        sequence = [netw, embd, *tens, head, meta_a, meta_b]
        sequence[sequence.index(section)] = flipped
        out.append(("required bit of " + tag.decode(), build(*sequence), "required bit"))

    def netw_with(offset, fmt, value, match):
        return ("NETW %d=%r" % (offset, value), with_section(data, b"NETW",
                                                             patch(offset, fmt, value)), match)

    out += [
        netw_with(0, "<I", 2, "input of unknown kind 2"),
        netw_with(4, "<I", 3, "head of unknown placement 3"),
        netw_with(8, "<I", 4, "loss of unknown kind 4"),
        netw_with(12, "<I", 1, "reserved"),
        netw_with(16, "<Q", 4, "head of 3 outputs; NETW gives head_size 4"),
        netw_with(16, "<Q", 1, "cross-entropy needs head_size >= 2"),
        netw_with(16, "<Q", 0, "head_size is 0"),
        ("NETW short", with_section(data, b"NETW", lambda p: p[:20]), "24"),
    ]

    def embd_with(offset, fmt, value, match):
        return ("EMBD %d=%r" % (offset, value), with_section(data, b"EMBD",
                                                             patch(offset, fmt, value)), match)

    out += [
        embd_with(0, "<Q", 1 << 31, "V|bytes"),           # 2^31 rows: lengths do not match
        embd_with(0, "<Q", (1 << 31) + 1, "rows"),
        embd_with(0, "<Q", 0, "rows"),
        embd_with(8, "<Q", 3, "dimension 3; the LSTM's input_size is 2"),
        embd_with(16, "<I", 3, "flags 0x3"),
        embd_with(20, "<I", 1, "reserved"),
        embd_with(24, "<q", 3, "padding_idx 3 outside"),
        embd_with(24, "<q", -1, "padding_idx -1 outside"),
        embd_with(32, "<f", float("inf"), "NaN or infinity"),
        ("EMBD index without flag", with_section(data, b"EMBD", lambda p: patch(16, "<I", 0)(
            patch(24, "<q", 2)(p))), "without the padding flag"),
        ("EMBD long", with_section(data, b"EMBD", lambda p: p + b"\0\0\0\0"), "bytes"),
    ]
    out += [
        ("HEAD K", with_section(data, b"HEAD", patch(8, "<Q", 4)), "D R = 2"),
        ("HEAD O", with_section(data, b"HEAD", patch(0, "<Q", 2)), "bytes"),
        ("HEAD NaN", with_section(data, b"HEAD", patch(16 + 4 * 6, "<f", float("nan"))),
         "NaN or infinity"),
    ]

    def meta_with(edit, match, label):
        return ("META " + label, with_section(data, b"META", edit), match)

    def text(value):
        return lambda p: struct.pack("<IIQ", 0, 1, len(value)) + b"a" + value

    def key(k):
        return lambda p: struct.pack("<IIQ", 0, len(k), 1) + k + b"v"

    out += [
        meta_with(patch(0, "<I", 2), "unknown kind 2", "kind"),
        meta_with(lambda p: struct.pack("<IIQ", 0, 0, 0), "key of 0 bytes", "empty key"),
        meta_with(key(b"k" * 256), "key of 256 bytes", "long key"),
        meta_with(lambda p: struct.pack("<IIQ", 1, 1, (1 << 30) + 1) + b"a",
                  "value of 1073741825 bytes", "huge value"),
        meta_with(lambda p: p + b"x", "bytes", "long"),
        meta_with(text(b"\xc0\xaf"), "not valid UTF-8", "overlong"),
        meta_with(text(b"\xed\xa0\x80"), "not valid UTF-8", "surrogate"),
        meta_with(text(b"\xf4\x90\x80\x80"), "not valid UTF-8", "above U+10FFFF"),
        meta_with(text(b"ab\xe2\x82"), "not valid UTF-8", "truncated"),
        meta_with(text(b"a\0b"), "NUL", "NUL in text"),
        meta_with(key(b"\xff"), "key that is not valid UTF-8", "bad key"),
        meta_with(key(b"a\0"), "NUL", "NUL in key"),
    ]
    return out


def test_corrupt_network_sections_refused():
    for label, bad, match in corrupt_networks():
        if match is None:
            model = convert.unpack_model(bad)
            assert model.input == "tokens" and model.head["placement"] == "every", label
            assert model.metadata == {"a": "text", "b": b"\0\xff"}, label
            continue
        with pytest.raises(convert.FormatError, match=match):
            convert.unpack_model(bad)


def test_bytes_values_may_be_anything_and_text_may_be_empty():
    data, _, _ = small_network(metadata={"bin": b"\xed\xa0\x80\xc0\xaf\0", "t": ""})
    assert convert.unpack_model(data).metadata == {"bin": b"\xed\xa0\x80\xc0\xaf\0", "t": ""}


def test_metadata_entry_limit():
    with pytest.raises(convert.FormatError, match="65537 metadata entries"):
        small_network(metadata={"k%d" % i: "" for i in range(65537)})
    data, _, _ = small_network(metadata={"k%05d" % i: "" for i in range(65536)})
    assert len(convert.unpack_model(data).metadata) == 65536
    parts = sections(data)
    extra = (b"META", 0, struct.pack("<IIQ", 0, 6, 0) + b"k99999")
    bad = assemble(parts[:-1] + [extra, parts[-1]], minor=1)
    with pytest.raises(convert.FormatError, match="more than 65536 META"):
        convert.unpack_model(bad)


# ---- (d) the C library agrees (once it has the network loader) ----------------------------

def c_load(_ffi, data):
    """(status, network handle or None) of lstm_network_load_buffer."""
    import ctypes
    network = ctypes.c_void_p()
    status = _ffi.lib().lstm_network_load_buffer(ctypes.create_string_buffer(data, len(data)),
                                                 len(data), ctypes.byref(network))
    return status, (network if status == 0 else None)


def c_save(_ffi, network):
    import ctypes
    lib = _ffi.lib()
    size = ctypes.c_size_t()
    _ffi.check(lib.lstm_network_save_buffer(network, None, None, 0, ctypes.byref(size)),
               "lstm_network_save_buffer")
    buffer = ctypes.create_string_buffer(size.value)
    _ffi.check(lib.lstm_network_save_buffer(network, None, buffer, size.value,
                                            ctypes.byref(size)), "lstm_network_save_buffer")
    return buffer.raw[:size.value]


@pytest.mark.parametrize("spec", ROUND_TRIP, ids=round_trip_id)
def test_c_saves_python_network_files_byte_for_byte(spec, network_ffi):
    _ffi = network_ffi
    spec = dict(spec)
    loss = spec.pop("loss")
    embedding, lstm, linear = make_parts(**spec)
    data = convert.torch_parts_to_bytes(embedding=embedding, lstm=lstm, linear=linear,
                                        head=spec["head"], loss=loss,
                                        metadata={"z": b"\0", "a": "\u00e9", "m": ""})
    status, network = c_load(_ffi, data)
    _ffi.check(status, "lstm_network_load_buffer")
    try:
        assert c_save(_ffi, network) == data
    finally:
        _ffi.lib().lstm_network_destroy(network)


def test_c_refuses_what_python_refuses(network_ffi):
    _ffi = network_ffi
    for label, bad, match in corrupt_networks():
        status, network = c_load(_ffi, bad)
        if match is None:
            assert status == 0, label
            _ffi.lib().lstm_network_destroy(network)
        else:
            assert status in (_ffi.Status.E_FORMAT, _ffi.Status.E_UNSUPPORTED), label
    data, _, _ = small_network()
    for size in range(0, len(data), 7):
        assert c_load(_ffi, data[:size])[0] == _ffi.Status.E_FORMAT
