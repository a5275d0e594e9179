"""Tests of lstm.convert.from_onnx: ONNX sequence models to liblstm files.

(a) PyTorch models of the kinds issue 23 names (embedding + 2-layer
    bidirectional LSTM + last-step head; embedding with padding_idx + LSTM +
    every-step head; float features + LSTM + every-step head, batch_first
    too), and variants (initial states as inputs, h_n[-1], y[:, -1], no
    head), are exported with torch.onnx.export, converted, read back into
    PyTorch modules (bytes_to_torch_parts) and run: outputs within 1e-5
    relative of the original model's. This checks the converter without the
    C library. The files are also byte for byte those torch_parts_to_bytes
    writes from the original modules (the same bias sums, the same order).
(b) Peepholes, sequence_lens and layout 1, which PyTorch cannot export:
    hand-built graphs, checked against a numpy ONNX LSTM written here from
    the operator's specification (Debian's onnx 1.12 has no
    onnx.reference), against a numpy liblstm LSTM run on the file's tensors.
(c) Every construct liblstm cannot represent is refused, the message naming
    the node (name, op_type) and the attribute.
(d) The command line: python3 -m lstm.convert from-onnx.
(e) With a liblstm that has the network loader (lstm_network_load_buffer),
    the converted files run in C (lstm_network_infer) and agree with
    PyTorch, and a peephole graph with lengths and initial states agrees
    with the numpy ONNX LSTM; skipped, saying why, with an older library.
"""

import ctypes
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from lstm import convert

onnx = pytest.importorskip("onnx", reason="the onnx package (Debian: python3-onnx) is needed "
                                          "to read ONNX models")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

BINDINGS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-5

torch.set_num_threads(1)


# ---- helpers ---------------------------------------------------------------------

def randomise(module, seed):
    """Random parameters (the two LSTM biases different), in eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(torch.randn(param.shape) * (0.4 if "bias" in name else 0.3))
    return module.eval()


def export(module, args, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), **kwargs)
    return path


def rel_error(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


class Net(torch.nn.Module):
    """Embedding (or features) -> LSTM -> Linear, as people write them.

    head: "every" (linear(y)), "last" (linear on h_n of the top layer, both
    directions), "ylast" (linear(y[-1]) / y[:, -1]), None (y itself).
    states: forward takes (h0, c0) as inputs.
    """

    def __init__(self, *, vocab=None, padding_idx=None, input_size=6, hidden_size=5,
                 num_layers=1, bidirectional=False, batch_first=False, head="every",
                 out_features=3, states=False, extra=None):
        super().__init__()
        self.embedding = None if vocab is None else \
            torch.nn.Embedding(vocab, input_size, padding_idx=padding_idx)
        self.lstm = torch.nn.LSTM(input_size, hidden_size, num_layers=num_layers,
                                  bidirectional=bidirectional, batch_first=batch_first)
        D = 2 if bidirectional else 1
        self.linear = None if head is None else torch.nn.Linear(D * hidden_size, out_features)
        self.head, self.states, self.extra = head, states, extra

    def forward(self, x, h0=None, c0=None):
        if self.embedding is not None:
            x = self.embedding(x)
        y, (h_n, c_n) = self.lstm(x, (h0, c0) if self.states else None)
        if self.extra is not None:
            y = self.extra(y)
        if self.head is None:
            return y
        if self.head == "every":
            return self.linear(y)
        if self.head == "ylast":
            return self.linear(y[:, -1] if self.lstm.batch_first else y[-1])
        if self.lstm.bidirectional:
            return self.linear(torch.cat((h_n[-2], h_n[-1]), 1))
        return self.linear(h_n[-1])


def inputs_for(net, T=7, B=3, seed=5):
    """Example inputs (tokens or features, and states when taken) for net."""
    g = torch.Generator().manual_seed(seed)
    lstm = net.lstm
    shape = (B, T) if lstm.batch_first else (T, B)
    if net.embedding is not None:
        x = torch.randint(0, net.embedding.num_embeddings, shape, generator=g)
        if net.embedding.padding_idx is not None:
            x[0, 0] = net.embedding.padding_idx
    else:
        x = torch.randn(shape + (lstm.input_size,), generator=g)
    if not net.states:
        return (x,)
    D = 2 if lstm.bidirectional else 1
    h0 = torch.randn(lstm.num_layers * D, B, lstm.hidden_size, generator=g)
    c0 = torch.randn(lstm.num_layers * D, B, lstm.hidden_size, generator=g)
    return (x, h0, c0)


def export_net(net, tmp_path, dynamic=True, name="model.onnx"):
    args = inputs_for(net)
    names = ["x", "h0", "c0"][:len(args)]
    axes = None
    if dynamic:
        seq = {0: "B", 1: "T"} if net.lstm.batch_first else {0: "T", 1: "B"}
        axes = {"x": seq, "h0": {1: "B"}, "c0": {1: "B"}}
        axes = {k: v for k, v in axes.items() if k in names}
    return export(net, args, tmp_path / name, input_names=names, output_names=["out"],
                  dynamic_axes=axes, opset_version=14)


def parts_output(parts, args):
    hx = tuple(args[1:]) if len(args) > 1 else None
    with torch.no_grad():
        return parts(args[0], hx)


# ---- (a) PyTorch models through ONNX -------------------------------------------------

NETWORKS = {
    # the three networks of issue 23
    "tokens_bi2_last": dict(vocab=40, num_layers=2, bidirectional=True, head="last"),
    "tokens_padding_every": dict(vocab=30, padding_idx=0, head="every", out_features=30),
    "features_every": dict(input_size=4, head="every", out_features=2),
    "features_every_batch_first": dict(input_size=4, head="every", out_features=2,
                                       batch_first=True),
    # variants
    "tokens_batch_first_last": dict(vocab=25, batch_first=True, head="last", num_layers=3),
    "tokens_ylast": dict(vocab=25, head="ylast"),
    "features_ylast_batch_first": dict(input_size=3, head="ylast", batch_first=True,
                                       num_layers=2),
    "features_states_bi2_bf": dict(input_size=4, num_layers=2, bidirectional=True,
                                   batch_first=True, states=True),
    "features_states_last": dict(input_size=4, num_layers=2, states=True, head="last"),
    "features_bi_every": dict(input_size=4, bidirectional=True, num_layers=3),
    "features_no_head": dict(input_size=4, head=None, num_layers=2, bidirectional=True),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic", "static"])
def test_torch_models_through_onnx(name, dynamic, tmp_path):
    spec = NETWORKS[name]
    net = randomise(Net(**spec), seed=len(name))
    path = export_net(net, tmp_path, dynamic=dynamic)
    data = convert.from_onnx(str(path), padding_idx=spec.get("padding_idx"))
    parts = convert.bytes_to_torch_parts(data)
    proto = onnx.load(str(path))
    assert parts.metadata == {"source": "onnx:pytorch %s" % proto.producer_version}
    placement = {"ylast": "last"}.get(spec.get("head", "every"), spec.get("head", "every"))
    assert parts.head == placement
    assert parts.lstm.batch_first == spec.get("batch_first", False)
    assert (parts.embedding is not None) == ("vocab" in spec)
    if parts.embedding is not None:
        assert parts.embedding.padding_idx == spec.get("padding_idx")

    for seed, T, B in ((5, 7, 3), (6, 2, 1), (7, 11, 4)):
        args = inputs_for(net, T=T, B=B, seed=seed)
        if not dynamic and (T, B) != (7, 3):
            continue  # a static export takes its example's shape only
        with torch.no_grad():
            want = net(*args)
        got = parts_output(parts, args)
        assert got.shape == want.shape
        assert rel_error(got, want) <= TOL, name

    # The same file as the PyTorch route writes from the original modules.
    same = convert.torch_parts_to_bytes(
        embedding=net.embedding, lstm=net.lstm, linear=net.linear,
        head=placement if net.linear is not None else None,
        metadata={"source": parts.metadata["source"]})
    assert data == same


def test_model_proto_and_bytes_and_options(tmp_path):
    net = randomise(Net(vocab=12, head="last", out_features=4), seed=3)
    path = export_net(net, tmp_path)
    from_path = convert.from_onnx(path)
    proto = onnx.load(str(path))
    assert convert.from_onnx(proto) == from_path
    assert convert.from_onnx(path.read_bytes()) == from_path
    data = convert.from_onnx(proto, padding_idx=-1, loss="cross_entropy",
                             metadata={"labels": "a\nb\nc\nd", "blob": b"\0\1"})
    model = convert.unpack_model(data)
    assert model.embedding["padding_idx"] == 11
    assert model.loss == "cross_entropy"
    assert model.metadata == {"blob": b"\0\1", "labels": "a\nb\nc\nd",
                              "source": "onnx:%s %s" % (proto.producer_name,
                                                        proto.producer_version)}
    with pytest.raises(ValueError, match="no embedding"):
        convert.from_onnx(export_net(randomise(Net(), 1), tmp_path, name="f.onnx"),
                          padding_idx=0)


# ---- (b) peepholes, sequence_lens, layout 1: hand-built graphs -----------------------------

def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def onnx_lstm_reference(X, W, R, B, lengths, h0, c0, P, layout):
    """ONNX's LSTM (opset 14), float64, from the operator's specification:
    gates i, o, f, c; peepholes P = [p_i, p_o, p_f]; f = sigmoid, g = h = tanh.
    Returns Y [T, D, B, H] (zero past each sequence's end), Y_h, Y_c [D, B, H]
    (in layout 0 shapes)."""
    if layout == 1:
        X = X.transpose(1, 0, 2)
    T, batch, _ = X.shape
    D, four_h, _ = W.shape
    H = four_h // 4
    Y = np.zeros((T, D, batch, H))
    Y_h = np.zeros((D, batch, H))
    Y_c = np.zeros((D, batch, H))
    for d in range(D):
        Wi, Wo, Wf, Wc = np.split(W[d].astype(np.float64), 4)
        Ri, Ro, Rf, Rc = np.split(R[d].astype(np.float64), 4)
        Wbi, Wbo, Wbf, Wbc, Rbi, Rbo, Rbf, Rbc = np.split(B[d].astype(np.float64), 8)
        Pi, Po, Pf = np.split(P[d].astype(np.float64), 3)
        for b in range(batch):
            h, c = h0[d, b].astype(np.float64), c0[d, b].astype(np.float64)
            steps = range(lengths[b])
            for t in (reversed(steps) if d == 1 else steps):
                x = X[t, b].astype(np.float64)
                i = sigmoid(Wi @ x + Ri @ h + Wbi + Rbi + Pi * c)
                f = sigmoid(Wf @ x + Rf @ h + Wbf + Rbf + Pf * c)
                g = np.tanh(Wc @ x + Rc @ h + Wbc + Rbc)
                c = f * c + i * g
                o = sigmoid(Wo @ x + Ro @ h + Wbo + Rbo + Po * c)
                h = o * np.tanh(c)
                Y[t, d, b] = h
            Y_h[d, b], Y_c[d, b] = h, c
    return Y, Y_h, Y_c


def liblstm_reference(model, x, lengths, h0, c0):
    """liblstm's LSTM (include/lstm/model.h) on a checked ModelFile, float64,
    time-major: y [T, B, D H] (zero past each end), hT [L D, B, H]."""
    config = model.config
    L, H = config["num_layers"], config["hidden_size"]
    D = 2 if config["bidirectional"] else 1
    T, batch, _ = x.shape
    layer_input = x.astype(np.float64)
    hT = np.zeros((L * D, batch, H))
    for layer in range(L):
        y = np.zeros((T, batch, D * H))
        for d in range(D):
            sfx = "_l%d%s" % (layer, "_reverse" if d else "")
            W = model.tensors["weight" + sfx].astype(np.float64)
            bias = model.tensors["bias" + sfx][:, 0].astype(np.float64)
            p = model.tensors["peephole" + sfx].astype(np.float64) if config["peephole"] \
                else np.zeros((3, H))
            for b in range(batch):
                h, c = h0[layer * D + d, b].astype(np.float64), \
                    c0[layer * D + d, b].astype(np.float64)
                steps = range(lengths[b])
                for t in (reversed(steps) if d == 1 else steps):
                    z = W @ np.concatenate([h, layer_input[t, b]]) + bias
                    zi, zf, zg, zo = np.split(z, 4)
                    i = sigmoid(zi + p[0] * c)
                    f = sigmoid(zf + p[1] * c)
                    c = f * c + i * np.tanh(zg)
                    o = sigmoid(zo + p[2] * c)
                    h = o * np.tanh(c)
                    y[t, b, d * H:(d + 1) * H] = h
                hT[layer * D + d, b] = h
        layer_input = y
    return layer_input, hT


def lstm_graph(*, I=2, H=3, D=2, O=4, layout=0, peepholes=True, lengths=True, states=True,
               lstm_attrs=None, seed=0, head_op=None):
    """A hand-built ONNX model: X -> LSTM 'lstm_node' (with P, sequence_lens,
    initial states as inputs) -> Y to [T, B, D H] -> MatMul + Add head, and the
    arrays it holds."""
    rng = np.random.default_rng(seed)
    arrays = {
        "W": (0.5 * rng.standard_normal((D, 4 * H, I))).astype(np.float32),
        "R": (0.5 * rng.standard_normal((D, 4 * H, H))).astype(np.float32),
        "B": (0.3 * rng.standard_normal((D, 8 * H))).astype(np.float32),
        "P": (0.5 * rng.standard_normal((D, 3 * H))).astype(np.float32),
        "head_w": (0.5 * rng.standard_normal((D * H, O))).astype(np.float32),
        "head_b": (0.3 * rng.standard_normal(O)).astype(np.float32),
    }
    initializers = [numpy_helper.from_array(arrays[k], k) for k in ("W", "R", "B", "head_w",
                                                                   "head_b")]
    if peepholes:
        initializers.append(numpy_helper.from_array(arrays["P"], "P"))
    x_shape = ["B", "T", I] if layout else ["T", "B", I]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)]
    if lengths:
        inputs.append(helper.make_tensor_value_info("lens", TensorProto.INT32, ["B"]))
    if states:
        for name in ("h0", "c0"):
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [D, "B", H]))
    attrs = dict(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
    if layout:
        attrs["layout"] = 1
    attrs.update(lstm_attrs or {})
    lstm_inputs = ["X", "W", "R", "B", "lens" if lengths else "",
                   "h0" if states else "", "c0" if states else "", "P" if peepholes else ""]
    while lstm_inputs[-1] == "":
        lstm_inputs.pop()
    shape = numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "shape")
    initializers.append(shape)
    nodes = [helper.make_node("LSTM", lstm_inputs, ["Y", "Y_h", "Y_c"], name="lstm_node",
                              **attrs)]
    if layout == 0:
        nodes.append(helper.make_node("Transpose", ["Y"], ["Yt"], name="tr", perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", ["Yt", "shape"], ["y"], name="rs"))
    else:
        nodes.append(helper.make_node("Reshape", ["Y", "shape"], ["y"], name="rs"))
    head_in = "y"
    if head_op is not None:
        nodes.append(helper.make_node(head_op, ["y"], ["y2"], name="between"))
        head_in = "y2"
    nodes.append(helper.make_node("MatMul", [head_in, "head_w"], ["mm"], name="head_mm"))
    nodes.append(helper.make_node("Add", ["mm", "head_b"], ["out"], name="head_add"))
    out_shape = ["B", "T", O] if layout else ["T", "B", O]
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT,
                                                             out_shape)],
                              initializer=initializers)
    model = helper.make_model(graph, producer_name="hand", producer_version="1",
                              opset_imports=[helper.make_opsetid("", 14)])
    return model, arrays


@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("D", [1, 2])
def test_peepholes_lengths_layout(layout, D):
    H, I, O, T, batch = 3, 2, 4, 5, 3
    model, arrays = lstm_graph(I=I, H=H, D=D, O=O, layout=layout, states=(layout == 0),
                               seed=layout + 2 * D)
    onnx.checker.check_model(model)
    data = convert.from_onnx(model)
    file = convert.unpack_model(data)
    assert file.config["peephole"] and file.config["batch_first"] == bool(layout)
    assert file.config["bidirectional"] == (D == 2)
    assert file.metadata == {"source": "onnx:hand 1"}
    assert file.head["placement"] == "every"

    rng = np.random.default_rng(11)
    x = rng.standard_normal((T, batch, I)).astype(np.float32)
    lengths = np.array([5, 2, 4][:batch])
    h0 = (0.5 * rng.standard_normal((D, batch, H))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((D, batch, H))).astype(np.float32)
    if layout == 1:
        h0 = c0 = np.zeros((D, batch, H), np.float32)  # no state inputs in layout 1
    Y, Y_h, _ = onnx_lstm_reference(x.transpose(1, 0, 2) if layout else x, arrays["W"],
                                    arrays["R"], arrays["B"], lengths, h0, c0, arrays["P"],
                                    layout)
    want = Y.transpose(0, 2, 1, 3).reshape(T, batch, D * H) @ arrays["head_w"] \
        + arrays["head_b"]
    # liblstm's head, like ONNX's Add, puts b on every row; the network's
    # output is zero past each end, which the ONNX graph does not do.
    y, hT = liblstm_reference(file, x, lengths, h0, c0)
    got = y @ file.head["weight"].T.astype(np.float64) + file.head["bias"]
    assert rel_error(hT, Y_h) <= 1e-6
    assert rel_error(y, Y.transpose(0, 2, 1, 3).reshape(T, batch, D * H)) <= 1e-6
    assert rel_error(got, want) <= 1e-6


def test_peephole_mapping_is_not_symmetric():
    """The test above would not see a converter that kept ONNX's gate or
    peephole order: swapping them changes the numbers."""
    model, arrays = lstm_graph(D=1, states=False, lengths=False)
    file = convert.unpack_model(convert.from_onnx(model))
    H = 3
    assert np.array_equal(file.tensors["peephole_l0"],
                          arrays["P"][0].reshape(3, H)[[0, 2, 1]])
    W = file.tensors["weight_l0"]
    assert np.array_equal(W[H:2 * H, H:], arrays["W"][0][2 * H:3 * H])  # f rows
    assert np.array_equal(W[3 * H:, :H], arrays["R"][0][H:2 * H])       # o rows


# ---- (c) refusals ------------------------------------------------------------------------

REFUSED_ATTRIBUTES = [
    ({"clip": 3.0}, "clip"),
    ({"input_forget": 1}, "input_forget"),
    ({"activations": ["Sigmoid", "Relu", "Tanh", "Sigmoid", "Tanh", "Tanh"]}, "activations"),
    ({"activations": ["Sigmoid", "Tanh", "Tanh"]}, "activations"),  # 3 for 2 directions
    ({"activation_alpha": [1.0, 1.0, 1.0]}, "activation_alpha"),
    ({"activation_beta": [1.0, 1.0, 1.0]}, "activation_beta"),
    ({"hidden_size": 4}, "hidden_size"),
    ({"direction": "reverse"}, "direction"),
]


@pytest.mark.parametrize("attrs, attribute", REFUSED_ATTRIBUTES,
                         ids=[a[1] + str(i) for i, a in enumerate(REFUSED_ATTRIBUTES)])
def test_refused_lstm_attributes(attrs, attribute):
    model, _ = lstm_graph(lstm_attrs=attrs, D=1 if attrs.get("direction") else 2)
    with pytest.raises(convert.UnsupportedError) as caught:
        convert.from_onnx(model)
    message = str(caught.value)
    assert "'lstm_node' (LSTM)" in message and "attribute " + attribute in message, message


def test_default_activations_spelled_out_are_accepted():
    model, _ = lstm_graph(lstm_attrs={"activations": ["Sigmoid", "Tanh", "Tanh"] * 2,
                                      "input_forget": 0})
    convert.from_onnx(model)


def test_unknown_operator_in_the_head_path():
    model, _ = lstm_graph(head_op="Relu")
    with pytest.raises(convert.UnsupportedError, match=r"node 'between' \(Relu\): operator "
                                                       r"Relu is not part of"):
        convert.from_onnx(model)


def test_relu_between_torch_lstm_and_head(tmp_path):
    net = randomise(Net(input_size=4, extra=torch.nn.ReLU()), seed=2)
    path = export_net(net, tmp_path)
    with pytest.raises(convert.UnsupportedError, match=r"\(Relu\): operator Relu"):
        convert.from_onnx(path)


def test_refused_graphs(tmp_path):
    # Two heads (two outputs), a head on the first of two layers, a learned
    # initial state, a Gemm with alpha, a head on c_n.
    class TwoHeads(Net):
        def forward(self, x):
            y, (h_n, _) = self.lstm(x)
            return self.linear(y), self.linear(h_n[-1])

    class LowerLayer(Net):
        def forward(self, x):
            y, (h_n, _) = self.lstm(x)
            return self.linear(h_n[0])

    class CellHead(Net):
        def forward(self, x):
            y, (h_n, c_n) = self.lstm(x)
            return self.linear(c_n[-1])

    class LearnedState(Net):
        def __init__(self):
            super().__init__(input_size=4)
            self.h0 = torch.nn.Parameter(torch.randn(1, 3, 5))  # for batches of 3

        def forward(self, x):
            y, _ = self.lstm(x, (self.h0, torch.zeros_like(self.h0)))
            return self.linear(y)

    cases = [
        (TwoHeads(input_size=4), "a second dense layer"),
        (LowerLayer(input_size=4, num_layers=2, head="last"), "not what liblstm's head reads"),
        (CellHead(input_size=4, head="last"), "not what liblstm's head reads"),
        (LearnedState(), r"'/lstm/LSTM' \(LSTM\): initial_h is a nonzero constant"),
    ]
    for index, (net, match) in enumerate(cases):
        path = export_net(randomise(net, index), tmp_path, name="m%d.onnx" % index,
                          dynamic=not isinstance(net, LearnedState))
        with pytest.raises(convert.UnsupportedError, match=match):
            convert.from_onnx(path)

    model = onnx.load(str(export_net(randomise(Net(input_size=4, head="last"), 9), tmp_path)))
    for node in model.graph.node:
        if node.op_type == "Gemm":
            node.attribute.append(helper.make_attribute("alpha", 2.0))
            name = node.name
    with pytest.raises(convert.UnsupportedError,
                       match=r"node '%s' \(Gemm\): attribute alpha=2.0" % name):
        convert.from_onnx(model)


def test_layers_of_different_sizes_refused():
    a, _ = lstm_graph(D=1, states=False, lengths=False, peepholes=False)
    # A second layer of hidden size 2 reading the first's y.
    rng = np.random.default_rng(1)
    graph = a.graph
    graph.initializer.extend([
        numpy_helper.from_array(rng.standard_normal((1, 8, 3)).astype(np.float32), "W2"),
        numpy_helper.from_array(rng.standard_normal((1, 8, 2)).astype(np.float32), "R2")])
    mm = next(n for n in graph.node if n.name == "head_mm")
    mm.input[0] = "y_second"
    index = list(graph.node).index(mm)
    graph.node.insert(index, helper.make_node("LSTM", ["y", "W2", "R2"], ["Y2"], name="second",
                                              hidden_size=2))
    graph.node.insert(index + 1, helper.make_node("Squeeze", ["Y2", "one"], ["y_second"],
                                                  name="sq"))
    graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "one"))
    with pytest.raises(convert.UnsupportedError,
                       match=r"node 'second' \(LSTM\): attribute hidden_size=2"):
        convert.from_onnx(a)


# ---- (d) the command line -------------------------------------------------------------

def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=BINDINGS_DIR)
    return subprocess.run([sys.executable, "-m", "lstm.convert"] + [str(a) for a in args],
                          env=env, capture_output=True, text=True)


def test_cli_from_onnx(tmp_path):
    net = randomise(Net(vocab=20, padding_idx=3, num_layers=2, bidirectional=True,
                        head="last"), seed=4)
    path = export_net(net, tmp_path)
    result = run_cli("from-onnx", "--padding-idx", 3, "--loss", "cross_entropy", path,
                     tmp_path / "out.lstm")
    assert result.returncode == 0, result.stderr
    data = (tmp_path / "out.lstm").read_bytes()
    assert data == convert.from_onnx(path, padding_idx=3, loss="cross_entropy")
    model = convert.unpack_model(data)
    assert model.input == "tokens" and model.head["placement"] == "last"
    assert model.embedding["padding_idx"] == 3 and model.loss == "cross_entropy"
    info = run_cli("info", tmp_path / "out.lstm")
    assert info.returncode == 0 and "num_layers    2" in info.stdout

    bad, _ = lstm_graph(lstm_attrs={"clip": 1.0})
    onnx.save(bad, str(tmp_path / "bad.onnx"))
    result = run_cli("from-onnx", tmp_path / "bad.onnx", tmp_path / "bad.lstm")
    assert result.returncode == 1
    assert "'lstm_node' (LSTM): attribute clip" in result.stderr
    assert not (tmp_path / "bad.lstm").exists()


# ---- (e) the C library's network loader ----------------------------------------------------

def c_network_output(_ffi, data, args, batch_first, head, O):
    """The C library's network output for args (tokens or features, h0, c0)."""
    lib = _ffi.lib()
    network = ctypes.c_void_p()
    buffer = ctypes.create_string_buffer(data, len(data))
    _ffi.check(lib.lstm_network_load_buffer(buffer, len(data), ctypes.byref(network)),
               "lstm_network_load_buffer")
    workspace = ctypes.c_void_p()
    try:
        _ffi.check(lib.lstm_workspace_create(lib.lstm_network_model(network),
                                             ctypes.byref(workspace)), "lstm_workspace_create")
        x = args[0].numpy()
        steps, batch = (x.shape[1], x.shape[0]) if batch_first else x.shape[:2]
        keep = []
        inputs = _ffi.LstmNetworkInputs()
        if x.dtype == np.int64:
            tokens = np.ascontiguousarray(x, dtype=np.int64)
            keep.append(tokens)
            inputs.tokens = tokens.ctypes.data
        else:
            features = np.ascontiguousarray(x, dtype=np.float32)
            keep.append(features)
            inputs.features = features.ctypes.data
        if len(args) > 1:
            h0 = np.ascontiguousarray(args[1].numpy(), dtype=np.float32)
            c0 = np.ascontiguousarray(args[2].numpy(), dtype=np.float32)
            keep += [h0, c0]
            inputs.h0, inputs.c0 = h0.ctypes.data, c0.ctypes.data
        shape = (batch, O) if head == "last" else (x.shape[0], x.shape[1], O)
        output = np.zeros(shape, dtype=np.float32)
        outputs = _ffi.LstmNetworkOutputs(output=output.ctypes.data)
        sequences = _ffi.LstmSequences(steps=steps, batch=batch, layout=_ffi.LAYOUT_MODEL)
        _ffi.check(lib.lstm_network_infer(network, workspace, ctypes.byref(sequences),
                                          ctypes.byref(inputs), ctypes.byref(outputs)),
                   "lstm_network_infer")
        return output
    finally:
        lib.lstm_workspace_destroy(workspace)
        lib.lstm_network_destroy(network)


@pytest.mark.parametrize("name", ["tokens_bi2_last", "tokens_padding_every", "features_every",
                                  "features_every_batch_first", "features_states_bi2_bf"])
def test_c_library_runs_converted_files(name, tmp_path, network_ffi):
    _ffi = network_ffi
    spec = NETWORKS[name]
    net = randomise(Net(**spec), seed=len(name))
    data = convert.from_onnx(export_net(net, tmp_path), padding_idx=spec.get("padding_idx"))
    args = inputs_for(net, T=6, B=2, seed=3)
    with torch.no_grad():
        want = net(*args).numpy()
    O = want.shape[-1]
    got = c_network_output(_ffi, data, args, spec.get("batch_first", False),
                           spec.get("head", "every"), O)
    assert got.shape == want.shape
    assert rel_error(got, want) <= TOL


def last_step_graph(lengths, D=1):
    """X -> LSTM -> Y to [T, B, D H] -> Gather(-1) on time -> Gemm: the head
    on Y's last step, which is h_n only for one direction without lengths."""
    model, _ = lstm_graph(D=D, lengths=lengths, states=False, peepholes=False)
    graph = model.graph
    for name in ("head_mm", "head_add"):
        graph.node.remove(next(n for n in graph.node if n.name == name))
    graph.initializer.append(numpy_helper.from_array(np.array(-1, np.int64), "minus_one"))
    graph.node.append(helper.make_node("Gather", ["y", "minus_one"], ["y_last"], name="pick",
                                       axis=0))
    graph.node.append(helper.make_node("Gemm", ["y_last", "head_w", "head_b"], ["out"],
                                       name="gemm"))
    return model


def test_last_step_of_y():
    file = convert.unpack_model(convert.from_onnx(last_step_graph(lengths=False)))
    assert file.head["placement"] == "last"
    for lengths, D in ((True, 1), (False, 2)):
        with pytest.raises(convert.UnsupportedError,
                           match=r"node 'gemm' \(Gemm\): the head's input is not"):
            convert.from_onnx(last_step_graph(lengths=lengths, D=D))


# ---- other ways people write a last-step head, and other opsets ---------------------------

class Pattern(Net):
    """Net whose head reads pick(x, y, h_n)."""

    def __init__(self, pick, **kwargs):
        super().__init__(**kwargs)
        self.pick = pick

    def forward(self, x):
        y, (h_n, _) = self.lstm(x)
        return self.linear(self.pick(x, y, h_n))


HEAD_PATTERNS = {
    "cat_dim_minus_1": (lambda x, y, h: torch.cat([h[-2], h[-1]], dim=-1),
                        dict(bidirectional=True, num_layers=2)),
    "transpose_reshape": (lambda x, y, h: h[-2:].transpose(0, 1).reshape(x.shape[1], -1),
                          dict(bidirectional=True, num_layers=2)),
    "view_top_layer": (lambda x, y, h: h.view(2, 2, x.shape[1], 5)[-1].transpose(0, 1)
                       .reshape(x.shape[1], 10), dict(bidirectional=True, num_layers=2)),
    "squeeze0": (lambda x, y, h: h.squeeze(0), dict()),
    "view_minus_1": (lambda x, y, h: h.transpose(0, 1).contiguous().view(x.shape[1], -1), dict()),
    "y_last_step": (lambda x, y, h: y[-1], dict(num_layers=2)),
}


@pytest.mark.parametrize("name", sorted(HEAD_PATTERNS))
def test_last_step_head_patterns(name, tmp_path):
    pick, kwargs = HEAD_PATTERNS[name]
    net = randomise(Pattern(pick, input_size=4, head="last", **kwargs), seed=7)
    parts = convert.bytes_to_torch_parts(convert.from_onnx(export_net(net, tmp_path)))
    assert parts.head == "last"
    for T, B in ((7, 3), (3, 5)):
        args = inputs_for(net, T=T, B=B)
        with torch.no_grad():
            want = net(*args)
        assert rel_error(parts_output(parts, args), want) <= TOL


@pytest.mark.parametrize("opset", [9, 11, 13, 16])
@pytest.mark.parametrize("name", ["tokens_bi2_last", "features_states_bi2_bf"])
def test_opsets(opset, name, tmp_path):
    net = randomise(Net(**NETWORKS[name]), seed=opset)
    args = inputs_for(net)
    path = export(net, args, tmp_path / "m.onnx", input_names=["x", "h0", "c0"][:len(args)],
                  opset_version=opset)
    parts = convert.bytes_to_torch_parts(convert.from_onnx(path))
    with torch.no_grad():
        assert rel_error(parts_output(parts, args), net(*args)) <= TOL


@pytest.mark.parametrize("pick, match", [
    (lambda x, y, h: y[-1], "Y at the last step is not h_n in the reverse direction"),
    (lambda x, y, h: y[0].reshape(x.shape[1], -1), "picking a step other than the last"),
], ids=["y_last_bidirectional", "y_first"])
def test_refused_last_step_patterns(pick, match, tmp_path):
    net = randomise(Pattern(pick, input_size=4, head="last", bidirectional=True), seed=1)
    with pytest.raises(convert.UnsupportedError, match=match):
        convert.from_onnx(export_net(net, tmp_path))


def test_double_weights_refused_half_accepted():
    model, arrays = lstm_graph(D=1, states=False, lengths=False)
    for tensor in model.graph.initializer:
        if tensor.name == "R":
            tensor.CopyFrom(numpy_helper.from_array(arrays["R"].astype(np.float64), "R"))
    with pytest.raises(convert.UnsupportedError, match=r"'lstm_node' \(LSTM\): its R input is "
                                                       r"float64"):
        convert.from_onnx(model)
    half = arrays["R"].astype(np.float16)
    for tensor in model.graph.initializer:
        if tensor.name == "R":
            tensor.CopyFrom(numpy_helper.from_array(half, "R"))
    file = convert.unpack_model(convert.from_onnx(model))
    assert np.array_equal(file.tensors["weight_l0"][:3, :3], half[0][:3].astype(np.float32))


def test_c_library_runs_peephole_graph(network_ffi):
    """Peepholes, lengths and initial states through the C network, against
    the numpy ONNX LSTM (rows past each sequence's end: zero in liblstm)."""
    _ffi = network_ffi
    H, I, O, T, batch, D = 3, 2, 4, 5, 3, 2
    model, arrays = lstm_graph(I=I, H=H, D=D, O=O, seed=9)
    data = convert.from_onnx(model)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, batch, I)).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((D, batch, H))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((D, batch, H))).astype(np.float32)
    lengths = np.array([5, 2, 4], dtype=np.uintp)
    Y, _, _ = onnx_lstm_reference(x, arrays["W"], arrays["R"], arrays["B"], lengths, h0, c0,
                                  arrays["P"], 0)
    want = Y.transpose(0, 2, 1, 3).reshape(T, batch, D * H) @ arrays["head_w"] \
        + arrays["head_b"]
    for b, n in enumerate(lengths):
        want[n:, b] = 0

    lib = _ffi.lib()
    network, workspace = ctypes.c_void_p(), ctypes.c_void_p()
    _ffi.check(lib.lstm_network_load_buffer(ctypes.create_string_buffer(data, len(data)),
                                            len(data), ctypes.byref(network)),
               "lstm_network_load_buffer")
    try:
        _ffi.check(lib.lstm_workspace_create(lib.lstm_network_model(network),
                                             ctypes.byref(workspace)), "lstm_workspace_create")
        output = np.zeros((T, batch, O), np.float32)
        inputs = _ffi.LstmNetworkInputs(features=x.ctypes.data, h0=h0.ctypes.data,
                                        c0=c0.ctypes.data)
        outputs = _ffi.LstmNetworkOutputs(output=output.ctypes.data)
        sequences = _ffi.LstmSequences(steps=T, batch=batch, layout=_ffi.LAYOUT_MODEL,
                                       lengths=lengths.ctypes.data)
        _ffi.check(lib.lstm_network_infer(network, workspace, ctypes.byref(sequences),
                                          ctypes.byref(inputs), ctypes.byref(outputs)),
                   "lstm_network_infer")
    finally:
        lib.lstm_workspace_destroy(workspace)
        lib.lstm_network_destroy(network)
    assert rel_error(output, want) <= TOL
