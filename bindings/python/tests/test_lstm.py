"""Tests of the ctypes bindings (lstm.LSTM, lstm.optim) against PyTorch, live.

Run (Debian's python3 with python3-torch, python3-numpy, python3-pytest):

    LSTM_LIBRARY=/path/to/liblstm.so.1 PYTHONPATH=bindings/python \\
        /usr/bin/python3 -m pytest -q bindings/python/tests

Without LSTM_LIBRARY the library is looked for through pkg-config and then
the system loader; when it is not found at all these tests are skipped
(with the ImportError's text as the reason).

Tolerance: every comparison with PyTorch is normwise relative,
max|ours - torch| <= 1e-5 * max|torch| per tensor (TOL). PyTorch runs in
float64 on the same weights (liblstm in float32), except for the optimizer
tests, which give torch.optim (float32, as liblstm) exactly the gradients
liblstm computed. Worst measured: 4.5e-7 (a parameter gradient) for the
networks, 1.9e-7 for the optimizers.
"""

import collections
import copy
import ctypes
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstm

try:
    from lstm import optim
except ImportError as exc:  # no liblstm on this machine
    pytest.skip("liblstm not found: %s" % exc, allow_module_level=True)

BINDINGS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-5

torch.set_num_threads(1)


# ---- helpers ---------------------------------------------------------------------

def rel_error(ours, reference):
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    scale = np.max(np.abs(reference))
    return float(np.max(np.abs(ours - reference)) / (scale if scale > 0 else 1.0))


def assert_close(ours, reference, label, tol=TOL):
    error = rel_error(ours, reference)
    assert error <= tol, "%s differs by %.3e relative (tolerance %g)" % (label, error, tol)


def torch_kwargs(spec):
    return {k: v for k, v in spec.items() if k not in ("lengths", "no_state")}


def make_pair(spec, seed=0):
    """(ours, torch float64 copy) with the same weights; torch's two biases differ."""
    torch.manual_seed(seed)
    module = torch.nn.LSTM(**torch_kwargs(spec))
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(torch.randn(param.shape) * (0.4 if name.startswith("bias") else 0.3))
    ours = lstm.LSTM(**torch_kwargs(spec), seed=5)
    ours.load_state_dict(module.state_dict())
    return ours, copy.deepcopy(module).double()


def run_torch(module, x, h0, c0, lengths, batch_first):
    """y, hT, cT of module (float64) with autograd on x, h0, c0."""
    T = x.shape[1] if batch_first else x.shape[0]
    inputs = x
    if lengths is not None:
        inputs = pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=batch_first,
                                      enforce_sorted=False)
    y, (hT, cT) = module(inputs, None if h0 is None else (h0, c0))
    if lengths is not None:
        y, _ = pad_packed_sequence(y, batch_first=batch_first, total_length=T)
    return y, hT, cT


# Network configurations for forward and gradient parity.
CASES = [
    dict(input_size=5, hidden_size=7),
    dict(input_size=4, hidden_size=6, num_layers=2, bidirectional=True),
    dict(input_size=3, hidden_size=8, num_layers=2, proj_size=3),
    dict(input_size=4, hidden_size=5, num_layers=2, proj_size=2, bidirectional=True,
         batch_first=True),
    dict(input_size=3, hidden_size=6, num_layers=2, bidirectional=True, batch_first=True,
         lengths=[5, 2, 6, 1]),
    dict(input_size=4, hidden_size=7, proj_size=4, lengths=[3, 6, 6, 4]),
    dict(input_size=3, hidden_size=5, num_layers=2, bias=False),
    dict(input_size=2, hidden_size=4, num_layers=2, bidirectional=True, no_state=True),
]


def case_id(spec):
    parts = ["L%d" % spec.get("num_layers", 1)]
    for key, tag in (("bidirectional", "bi"), ("batch_first", "bf"), ("lengths", "len"),
                     ("no_state", "nostate")):
        if spec.get(key):
            parts.append(tag)
    if spec.get("proj_size"):
        parts.append("p%d" % spec["proj_size"])
    if spec.get("bias") is False:
        parts.append("nobias")
    return "_".join(parts)


# ---- parity with torch.nn.LSTM: forward and gradients ----------------------------------

@pytest.mark.parametrize("spec", CASES, ids=case_id)
def test_forward_and_gradients_match_torch(spec):
    T, B = 6, 4
    ours, module = make_pair(spec)
    L = spec.get("num_layers", 1)
    D = 2 if spec.get("bidirectional") else 1
    H = spec["hidden_size"]
    R = spec.get("proj_size") or H
    batch_first = spec.get("batch_first", False)
    lengths = spec.get("lengths")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, spec["input_size"]) if batch_first
                            else (T, B, spec["input_size"])).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((L * D, B, R))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((L * D, B, H))).astype(np.float32)
    no_state = spec.get("no_state", False)
    hx = None if no_state else (h0, c0)
    lens = None if lengths is None else np.array(lengths)

    y, (hT, cT) = ours(x, hx, lengths=lens)
    tx = torch.from_numpy(x).double().requires_grad_()
    th0 = None if no_state else torch.from_numpy(h0).double().requires_grad_()
    tc0 = None if no_state else torch.from_numpy(c0).double().requires_grad_()
    ty, thT, tcT = run_torch(module, tx, th0, tc0, lengths, batch_first)
    for label, a, b in (("y", y, ty), ("h_n", hT, thT), ("c_n", cT, tcT)):
        assert_close(a, b.detach().numpy(), label)
    if lengths is not None:  # zero past each sequence's end, as pad_packed_sequence
        for b, n in enumerate(lengths):
            assert not np.any((y[b, n:] if batch_first else y[n:, b]))

    dy = rng.standard_normal(y.shape).astype(np.float32)
    dhT = rng.standard_normal(hT.shape).astype(np.float32)
    dcT = rng.standard_normal(cT.shape).astype(np.float32)
    ours.zero_grad()
    dx, (dh0, dc0) = ours.backward(dy, (dhT, dcT))
    torch.autograd.backward([ty, thT, tcT], [torch.from_numpy(dy).double(),
                                              torch.from_numpy(dhT).double(),
                                              torch.from_numpy(dcT).double()])
    assert_close(dx, tx.grad.numpy(), "d_input")
    if not no_state:
        assert_close(dh0, th0.grad.numpy(), "d_h0")
        assert_close(dc0, tc0.grad.numpy(), "d_c0")
    grads = ours.grad_dict()
    torch_grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    assert list(grads) == list(torch_grads)  # names and PyTorch's order
    for name, reference in torch_grads.items():
        assert_close(grads[name], reference, "grad " + name)


def transposed(array):
    """(T, B, ...) <-> (B, T, ...), a C-contiguous copy made by numpy."""
    return np.ascontiguousarray(np.swapaxes(array, 0, 1))


LAYOUT_CASES = [
    dict(input_size=4, hidden_size=6),
    dict(input_size=3, hidden_size=5, num_layers=2, proj_size=2, bidirectional=True),
]


@pytest.mark.parametrize("model_batch_first", [False, True], ids=["model_tb", "model_bt"])
@pytest.mark.parametrize("spec", LAYOUT_CASES, ids=case_id)
def test_batch_first_of_the_call_gives_the_transpose(spec, model_batch_first):
    # A call with batch_first= overriding the model's layout gives, bit for
    # bit, the transpose (made here by numpy) of what the model's own layout
    # gives: output, h_n, c_n, and after backward (d_output given in the
    # call's layout) d_input, d_h0, d_c0 and the parameter gradients.
    # The model's own layout named explicitly gives the same bits as None.
    T, B = 6, 4  # T != B, so that a layout mix-up changes shapes too
    ours = lstm.LSTM(**spec, batch_first=model_batch_first, seed=4)
    L, D = spec.get("num_layers", 1), 2 if spec.get("bidirectional") else 1
    H, R = spec["hidden_size"], spec.get("proj_size") or spec["hidden_size"]
    rng = np.random.default_rng(9)
    x = rng.standard_normal((T, B, spec["input_size"])).astype(np.float32)
    if model_batch_first:
        x = transposed(x)
    h0 = rng.standard_normal((L * D, B, R)).astype(np.float32)
    c0 = rng.standard_normal((L * D, B, H)).astype(np.float32)
    lengths = [6, 3, 5, 1]
    ours.zero_grad()
    y, (hT, cT) = ours(x, (h0, c0), lengths=lengths)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dhT = rng.standard_normal(hT.shape).astype(np.float32)
    dcT = rng.standard_normal(cT.shape).astype(np.float32)
    dx, (dh0, dc0) = ours.backward(dy, (dhT, dcT))
    grads = ours.grads.copy()
    y_eval, _ = ours.eval()(x, (h0, c0), lengths=lengths)
    ours.train()

    for batch_first in (not model_batch_first, model_batch_first):
        other = batch_first != model_batch_first
        change = transposed if other else (lambda a: a)
        ours.zero_grad()
        y2, (hT2, cT2) = ours(change(x), (h0, c0), lengths=lengths, batch_first=batch_first)
        assert y2.shape == change(y).shape
        assert np.array_equal(change(y2), y)
        assert np.array_equal(hT2, hT) and np.array_equal(cT2, cT)
        if other:  # the gradient of the output comes in the call's layout
            with pytest.raises(ValueError, match="d_output has shape"):
                ours.backward(dy, (dhT, dcT))
        dx2, (dh02, dc02) = ours.backward(change(dy), (dhT, dcT))
        assert dx2.shape == change(x).shape
        assert np.array_equal(change(dx2), dx)
        assert np.array_equal(dh02, dh0) and np.array_equal(dc02, dc0)
        assert np.array_equal(ours.grads, grads)
        y2_eval, _ = ours.eval()(change(x), (h0, c0), lengths=lengths, batch_first=batch_first)
        assert np.array_equal(change(y2_eval), y_eval)
        ours.train()
    assert ours.batch_first == model_batch_first  # the call changed nothing for later calls
    assert np.array_equal(ours(x, (h0, c0), lengths=lengths)[0], y)


ARG_STRUCTS = ["sequences", "inputs", "outputs", "output_grads", "input_grads"]


@pytest.mark.parametrize("name", ARG_STRUCTS)
def test_argument_structs_have_the_library_size_and_defaults(name):
    # The library's lstm_<name>_init accepts the mirror's sizeof and refuses
    # one byte less: the mirror has exactly the size of the struct's first
    # (0.3.0) version, so no field is missing or extra. What it fills in is
    # what the binding's constructor gives.
    from lstm import _ffi
    cls = getattr(_ffi, "Lstm" + "".join(part.title() for part in name.split("_")))
    library = ctypes.CDLL(lstm.library_path())
    init = getattr(library, "lstm_%s_init" % name)
    init.restype, init.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t]
    size = ctypes.sizeof(cls)
    filled = cls.from_buffer_copy(b"\xa5" * size)
    assert init(ctypes.byref(filled), size) == lstm.Status.OK
    ours = cls()
    for field, _ in cls._fields_:
        assert getattr(filled, field) == getattr(ours, field), field
    assert ours.struct_size == size
    assert init(ctypes.byref(filled), size - 1) == lstm.Status.E_ARG


def test_state_dict_round_trip_with_torch():
    spec = dict(input_size=3, hidden_size=5, num_layers=2, proj_size=2, bidirectional=True)
    ours, module = make_pair(spec)
    state = ours.state_dict()
    reference = module.state_dict()
    assert list(state) == list(reference)
    assert all(state[k].shape == tuple(reference[k].shape) for k in state)
    assert all(v.dtype == np.float32 for v in state.values())
    assert not np.any(state["bias_hh_l1_reverse"])  # b goes to bias_ih, bias_hh is zero
    assert_close(state["bias_ih_l0"], (reference["bias_ih_l0"] + reference["bias_hh_l0"]),
                 "b", 1e-7)
    back = torch.nn.LSTM(**spec)
    back.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    x = np.random.default_rng(2).standard_normal((5, 2, 3)).astype(np.float32)
    y, _ = ours.eval()(x)
    with torch.no_grad():
        ty, _ = back.double()(torch.from_numpy(x).double())
    assert_close(y, ty.numpy(), "y")


def test_load_state_dict_checks():
    model = lstm.LSTM(3, 4, seed=1)
    good = model.state_dict()
    before = model.params.copy()
    with pytest.raises(ValueError, match="weight_ih_l0 has shape"):
        model.load_state_dict(dict(good, weight_ih_l0=np.zeros((16, 2))))
    with pytest.raises(ValueError, match="missing keys: bias_hh_l0"):
        model.load_state_dict({k: v for k, v in good.items() if k != "bias_hh_l0"})
    with pytest.raises(ValueError, match="unexpected keys: extra"):
        model.load_state_dict(dict(good, extra=np.zeros(1)))
    bad = dict(good, weight_hh_l0=np.full((16, 4), np.nan))
    with pytest.raises(lstm.LSTMError) as caught:
        model.load_state_dict(bad)
    assert caught.value.status == lstm.Status.E_NONFINITE
    assert np.array_equal(model.params, before)  # all or nothing
    result = model.load_state_dict({"weight_hh_l0": np.ones((16, 4))}, strict=False)
    assert "weight_ih_l0" in result.missing_keys
    assert np.all(model.tensor("weight_l0")[:, :4] == 1)
    assert np.array_equal(model.tensor("weight_l0")[:, 4:], before[:16 * 7].reshape(16, 7)[:, 4:])


def test_parameter_views_share_memory():
    model = lstm.LSTM(2, 3, num_layers=2, proj_size=2, peephole=True, seed=3)
    assert model.tensor_names() == ["weight_l0", "bias_l0", "projection_l0", "peephole_l0",
                                    "weight_l1", "bias_l1", "projection_l1", "peephole_l1"]
    assert model.params.size == model.param_count == sum(v.size for _, v in
                                                         model.named_parameters())
    weight = model.tensor("weight_l1")
    assert weight.shape == (12, 4) and np.shares_memory(weight, model.params)
    weight[0, 0] = 7.0
    assert model.state_dict()["weight_hh_l1"][0, 0] == 7.0
    assert model.state_dict()["peephole_l0"].shape == (3, 3)
    view = model.grads
    del model  # the view keeps the C model alive
    view[:] = 1.0
    assert view.sum() == view.size


def test_same_seed_same_parameters_and_bias_false():
    a = lstm.LSTM(3, 4, seed=9)
    b = lstm.LSTM(3, 4, seed=9)
    assert np.array_equal(a.params, b.params) and np.abs(a.params).max() <= 0.5
    assert not np.array_equal(a.params, lstm.LSTM(3, 4, seed=10).params)
    nobias = lstm.LSTM(3, 4, bias=False, seed=9)
    assert not np.any(nobias.tensor("bias_l0"))
    assert "bias_ih_l0" not in nobias.state_dict() and "bias_hh_l0" not in nobias.grad_dict()
    assert repr(nobias) == "lstm.LSTM(3, 4, bias=False)"


# ---- optimizers against torch.optim on the same gradients -------------------------------

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, maximize=True)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, weight_decay=0.02, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.01, maximize=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True, eps=1e-6)),
]


def torch_twin(ours):
    """A float32 nn.LSTM equal to ours, bias_hh zero and frozen (liblstm has one bias)."""
    module = torch.nn.LSTM(ours.input_size, ours.hidden_size, num_layers=ours.num_layers,
                           bias=ours.bias, bidirectional=ours.bidirectional,
                           proj_size=ours.proj_size)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for name, param in module.named_parameters():
        if name.startswith("bias_hh"):
            param.requires_grad_(False)
    return module


def train_side_by_side(ours, opt, module, topt, steps, clip=None):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, ours.input_size)).astype(np.float32)
    target = rng.standard_normal((5, 3, ours.directions * ours.state_size)).astype(np.float32)
    params = [p for p in module.parameters() if p.requires_grad]
    for step in range(steps):
        opt.zero_grad()
        y, _ = ours(x)
        ours.backward(2.0 * (y - target) / y.size)
        grads = ours.grad_dict()
        for name, param in module.named_parameters():
            if param.requires_grad:
                param.grad = torch.from_numpy(grads[name].copy())
        if clip is not None:
            norm = opt.clip_grad_norm(clip)
            tnorm = torch.nn.utils.clip_grad_norm_(params, clip)
            assert abs(norm - float(tnorm)) <= TOL * float(tnorm)
        opt.step()
        topt.step()
        reference = module.state_dict()
        for name, value in ours.state_dict().items():
            assert_close(value, reference[name].numpy(), "step %d %s" % (step, name))


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS,
                         ids=["%s%d" % (o[0], i) for i, o in enumerate(OPTIMIZERS)])
def test_optimizer_matches_torch(name, kwargs):
    ours = lstm.LSTM(3, 5, num_layers=2, proj_size=3, seed=4)
    module = torch_twin(ours)
    opt = getattr(optim, name)(ours, **kwargs)
    topt = getattr(torch.optim, name)([p for p in module.parameters() if p.requires_grad],
                                      **kwargs)
    train_side_by_side(ours, opt, module, topt, steps=4, clip=1.0 if "momentum" in kwargs
                       else None)
    assert opt.step_count == 4
    state = opt.state()
    torch_state = next(iter(topt.state.values()))
    assert state["step"] == 4
    assert set(state) - {"step"} == {k for k, v in torch_state.items()
                                     if k != "step" and v is not None}
    assert all(v.size == ours.param_count for k, v in state.items() if k != "step")


def test_bias_false_trains_like_torch_bias_false():
    ours = lstm.LSTM(3, 4, num_layers=2, bias=False, bidirectional=True, seed=6)
    module = torch_twin(ours)
    assert not module.bias
    opt = optim.SGD(ours, lr=0.1, momentum=0.9, weight_decay=0.1)
    topt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    train_side_by_side(ours, opt, module, topt, steps=3, clip=0.5)
    assert not np.any(ours.tensor("bias_l1_reverse"))
    assert opt.param_count == ours.param_count - 4 * 4 * 4  # 4 biases of 4H


def test_optimizer_on_numpy_buffers_and_lr():
    rng = np.random.default_rng(5)
    param = rng.standard_normal((4, 3)).astype(np.float32)
    grad = np.zeros_like(param)
    tparam = torch.nn.Parameter(torch.from_numpy(param.copy()))
    opt = optim.Adam([(param, grad)], lr=0.1)
    topt = torch.optim.Adam([tparam], lr=0.1)
    for step in range(5):
        grad[...] = rng.standard_normal(grad.shape)
        tparam.grad = torch.from_numpy(grad.copy())
        if step == 3:
            opt.lr = topt.param_groups[0]["lr"] = 0.02
        opt.step()
        topt.step()
    assert opt.lr == 0.02
    assert_close(param, tparam.detach().numpy(), "param")
    opt.clip_grad_value(0.1)
    assert np.abs(grad).max() <= np.float32(0.1)
    grad[0, 0] = np.inf
    before = param.copy()
    with pytest.raises(lstm.LSTMError) as caught:
        opt.step()
    assert caught.value.status == lstm.Status.E_NONFINITE
    assert np.array_equal(param, before) and opt.step_count == 5
    assert optim.step_lr(0.1, 0.5, 2, 5) == pytest.approx(0.025)
    assert optim.cosine_lr(1.0, 0.0, 10, 10) == pytest.approx(0.0, abs=1e-12)


# ---- files ------------------------------------------------------------------------------

def test_save_load_round_trip_with_optimizer(tmp_path):
    model = lstm.LSTM(3, 6, num_layers=2, proj_size=2, bidirectional=True, batch_first=True,
                      dropout=0.25, seed=8)
    opt = optim.Adam(model, lr=0.01, amsgrad=True)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)

    def train_step(m, o):
        o.zero_grad()
        y, _ = m(x)
        m.backward(y)  # loss = |y|^2 / 2
        o.step()

    model.seed_dropout(1)
    for _ in range(2):
        train_step(model, opt)
    path = tmp_path / "model.lstm"
    model.save(path, optimizer=opt)
    assert path.read_bytes() == model.dumps(opt)
    loaded = lstm.load(path)
    assert (loaded.input_size, loaded.hidden_size, loaded.num_layers, loaded.proj_size,
            loaded.bidirectional, loaded.batch_first, loaded.dropout) == (3, 6, 2, 2, True,
                                                                          True, 0.25)
    assert np.array_equal(loaded.params, model.params)
    opt2 = optim.Adam(loaded, lr=0.01, amsgrad=True)
    opt2.load(path)
    assert opt2.step_count == 2
    model.seed_dropout(2)
    loaded.seed_dropout(2)
    train_step(model, opt)
    train_step(loaded, opt2)
    assert np.array_equal(loaded.params, model.params)  # bit for bit

    again = lstm.loads(model.dumps())
    assert np.array_equal(again.params, model.params)
    clone = pickle.loads(pickle.dumps(model))
    assert np.array_equal(clone.params, model.params) and clone.training
    with pytest.raises(lstm.LSTMError) as caught:
        opt2.loads(model.dumps())  # no optimizer state in it
    assert caught.value.status == lstm.Status.E_FORMAT


def test_file_errors(tmp_path):
    with pytest.raises(lstm.LSTMError) as caught:
        lstm.load(tmp_path / "missing.lstm")
    assert caught.value.status == lstm.Status.E_IO and caught.value.message
    data = bytearray(lstm.LSTM(2, 3, seed=1).dumps())
    data[40] ^= 1
    with pytest.raises(lstm.LSTMError) as caught:
        lstm.loads(bytes(data))
    assert caught.value.status == lstm.Status.E_FORMAT
    with pytest.raises(ValueError, match="biases are not zero"):
        lstm.loads(lstm.LSTM(2, 3, seed=1).dumps(), bias=False)


def test_paths_are_str_bytes_or_pathlike_and_never_cut_at_nul(tmp_path):
    # A NUL used to cut the path in C: save wrote the model at the prefix.
    model = lstm.LSTM(2, 3, seed=1)
    opt = optim.SGD(model, momentum=0.9)
    for path in (str(tmp_path / "s.lstm"), os.fsencode(tmp_path / "b.lstm"),
                 tmp_path / "p.lstm"):
        model.save(path, optimizer=opt)
        assert np.array_equal(lstm.load(path).params, model.params)
        opt.load(path)
    prefix = tmp_path / "m.lstm"
    bad = (str(prefix) + "\0junk", os.fsencode(prefix) + b"\0junk",
           pathlib.Path(str(prefix) + "\0junk"))
    for path in bad:
        with pytest.raises(ValueError, match="null byte"):
            model.save(path, optimizer=opt)
    assert sorted(os.listdir(tmp_path)) == ["b.lstm", "p.lstm", "s.lstm"]
    model.save(prefix, optimizer=opt)  # a file at the prefix must not be read instead
    for path in bad:
        with pytest.raises(ValueError, match="null byte"):
            lstm.load(path)
        with pytest.raises(ValueError, match="null byte"):
            opt.load(path)
    with pytest.raises(TypeError):
        model.save(3)


def test_convert_reads_what_the_bindings_save(tmp_path):
    from lstm import convert
    model = lstm.LSTM(3, 4, num_layers=2, bidirectional=True, seed=2)
    path = tmp_path / "m.lstm"
    model.save(path)
    module = convert.load_torch(path)
    for name, value in module.state_dict().items():
        assert np.array_equal(value.numpy(), model.state_dict()[name])


# ---- errors -----------------------------------------------------------------------------

def test_bad_inputs_raise_not_crash():
    model = lstm.LSTM(3, 4, num_layers=2, seed=1)
    x = np.zeros((5, 2, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="float32"):
        model(x.astype(np.float64))
    with pytest.raises(TypeError, match="float32"):
        model(x.astype(">f4"))
    with pytest.raises(TypeError, match="None"):
        model(None)
    with pytest.raises(TypeError):
        model([[[0.0, 0.0, 0.0]]])
    with pytest.raises(ValueError, match="C-contiguous"):
        model(np.zeros((2, 5, 3), dtype=np.float32).transpose(1, 0, 2))
    with pytest.raises(ValueError, match="C-contiguous"):
        model(np.zeros((5, 2, 6), dtype=np.float32)[:, :, ::2])
    with pytest.raises(ValueError, match="input_size 3"):
        model(np.zeros((5, 2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="3 dimensions"):
        model(np.zeros((5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(2, 2, 4\)"):
        model(x, (np.zeros((1, 2, 4), np.float32), None))
    with pytest.raises(TypeError, match="float32"):
        model(x, (None, np.zeros((2, 2, 4))))
    with pytest.raises(TypeError, match="pair"):
        model(x, np.zeros((2, 2, 4), np.float32))
    with pytest.raises(ValueError, match="lengths"):
        model(x, lengths=np.array([6, 1]))
    with pytest.raises(TypeError, match="integers"):
        model(x, lengths=np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="requires grad"):
        model(torch.zeros(5, 2, 3, requires_grad=True))
    for flag in (1, 0, "yes"):  # None or a bool: 0 is not "the model's layout"
        with pytest.raises(TypeError, match="batch_first"):
            model(x, batch_first=flag)
    with pytest.raises(ValueError, match=r"\(batch, seq_len, input_size\)"):
        model(np.zeros((2, 3), np.float32), batch_first=True)
    y, _ = model(torch.zeros(5, 2, 3))  # a float32 CPU tensor is read in place
    assert y.shape == (5, 2, 4)
    assert model(x[1:4])[0].shape == (3, 2, 4)  # a contiguous slice, no copy

    x[2, 1, 0] = np.nan
    with pytest.raises(lstm.LSTMError) as caught:
        model(x)
    error = caught.value
    assert error.status == lstm.Status.E_NONFINITE == 6
    assert "x at step 2 of sequence 1" in error.message
    assert error.strerror and error.strerror in str(error) and "LSTM_E_NONFINITE" in str(error)
    assert isinstance(error, Exception) and pickle.loads(pickle.dumps(error)).status == 6


# Every Python int the binding passes to a C integer type: (argument, its C
# type, a call passing value as that argument).
def _small_model():
    return lstm.LSTM(2, 3, seed=1)


INT_ARGUMENTS = [
    ("input_size", "size_t", lambda v: lstm.LSTM(v, 8)),
    ("hidden_size", "size_t", lambda v: lstm.LSTM(4, v)),
    ("num_layers", "size_t", lambda v: lstm.LSTM(4, 8, num_layers=v)),
    ("proj_size", "size_t", lambda v: lstm.LSTM(4, 8, proj_size=v)),
    ("seed", "uint64_t", lambda v: lstm.LSTM(4, 8, seed=v)),
    ("seq_len", "size_t", lambda v: _small_model().workspace_size(v, 1)),
    ("batch", "size_t", lambda v: _small_model().workspace_size(1, v)),
    ("seq_len", "size_t", lambda v: _small_model().reserve(v, 1)),
    ("batch", "size_t", lambda v: _small_model().reserve(1, v)),
    ("seed", "uint64_t", lambda v: _small_model().seed_dropout(v)),
    ("batch", "size_t", lambda v: _small_model().stream_state(v)),
    ("threads", "uint32_t", lambda v: optim.SGD(_small_model(), threads=v)),
    ("threads", "uint32_t", lambda v: optim.AdamW(_small_model(), threads=v)),
    ("step_size", "uint64_t", lambda v: optim.step_lr(0.1, 0.5, v, 1)),
    ("epoch", "uint64_t", lambda v: optim.step_lr(0.1, 0.5, 1, v)),
    ("t_max", "uint64_t", lambda v: optim.cosine_lr(0.1, 0.0, v, 1)),
    ("epoch", "uint64_t", lambda v: optim.cosine_lr(0.1, 0.0, 1, v)),
]


def int_cases():
    for index, (name, ctype, call) in enumerate(INT_ARGUMENTS):
        values = [2**64, 2**64 + 4, -1] + ([2**32] if ctype == "uint32_t" else [])
        for value in values:
            yield pytest.param(name, ctype, call, value, id="%d-%s-%s" % (index, name, value))


@pytest.mark.parametrize("name,ctype,call,value", list(int_cases()))
def test_integers_out_of_their_c_range_are_refused(name, ctype, call, value):
    # ctypes wraps an int modulo 2**bits without a word: LSTM(2**64 + 4, 8)
    # used to build LSTM(4, 8).
    with pytest.raises(ValueError, match=r"^%s is %d; it must be in \[\d+, 2\*\*\d+ - 1\] "
                                         r"\(%s\)$" % (name, value, ctype)):
        call(value)


@pytest.mark.parametrize("name,ctype,call", INT_ARGUMENTS,
                         ids=["%d-%s" % (index, entry[0]) for index, entry in
                              enumerate(INT_ARGUMENTS)])
def test_integer_arguments_refuse_non_integers(name, ctype, call):
    for value in (True, 2.0, "2"):
        with pytest.raises(TypeError, match="^%s is " % name):
            call(value)


def test_call_order_and_configuration_errors():
    model = lstm.LSTM(3, 4, seed=1)
    x = np.ones((4, 2, 3), dtype=np.float32)
    with pytest.raises(lstm.LSTMError) as caught:
        model.backward()
    assert caught.value.status == lstm.Status.E_STATE
    y, _ = model(x)
    with pytest.raises(ValueError, match="d_output has shape"):
        model.backward(np.zeros((4, 2, 5), np.float32))
    dy = np.full(y.shape, np.nan, dtype=np.float32)
    with pytest.raises(lstm.LSTMError) as caught:
        model.backward(dy)
    assert caught.value.status == lstm.Status.E_NONFINITE
    model.backward(np.ones_like(y))  # the failed backward kept the forward
    with pytest.raises(lstm.LSTMError) as caught:
        model.backward()
    assert caught.value.status == lstm.Status.E_STATE
    model.eval()(x)
    with pytest.raises(lstm.LSTMError):
        model.backward()

    with pytest.raises(lstm.LSTMError) as caught:
        lstm.LSTM(3, 0)
    assert caught.value.status == lstm.Status.E_SIZE and "hidden_size" in caught.value.message
    with pytest.raises(lstm.LSTMError) as caught:
        lstm.LSTM(3, 4, proj_size=4)
    assert "proj_size" in caught.value.message
    with pytest.raises(lstm.LSTMError) as caught:
        lstm.LSTM(3, 4, dropout=1.0)
    assert caught.value.status == lstm.Status.E_ARG
    with pytest.raises(ValueError):
        lstm.LSTM(-3, 4)
    with pytest.raises(TypeError):
        lstm.LSTM(3.0, 4)
    with pytest.raises(lstm.LSTMError) as caught:
        optim.SGD(model, lr=-1.0)
    assert caught.value.status == lstm.Status.E_ARG and "lr" in caught.value.message
    with pytest.raises(lstm.LSTMError):
        optim.SGD(model, momentum=0.0, nesterov=True)
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(TypeError):
        optim.Adam([np.zeros(3, np.float32)])
    with pytest.raises(lstm.LSTMError) as caught:
        lstm.LSTM(3, 4, bidirectional=True).stream_state(2)
    assert caught.value.status == lstm.Status.E_ARG


# ---- streams, dropout, truncated BPTT, threads ------------------------------------------

@pytest.mark.parametrize("batch_first", [False, True])
def test_stream_equals_whole_call(batch_first):
    model = lstm.LSTM(3, 6, num_layers=2, proj_size=4, batch_first=batch_first, seed=7).eval()
    T, B = 9, 3
    rng = np.random.default_rng(6)
    x = rng.standard_normal((B, T, 3) if batch_first else (T, B, 3)).astype(np.float32)
    y, (hT, cT) = model(x)
    state = model.stream_state(B)
    pieces, start = [], 0
    for size in (4, 1, 4):
        chunk = x[:, start:start + size] if batch_first else x[start:start + size]
        pieces.append(state.run(np.ascontiguousarray(chunk)))
        start += size
    assert np.array_equal(np.concatenate(pieces, axis=1 if batch_first else 0), y)
    assert np.array_equal(state.h, hT) and np.array_equal(state.c, cT)
    state.reset()
    for t in range(T):
        step = state.step(np.ascontiguousarray(x[:, t] if batch_first else x[t]))
        assert np.array_equal(step, y[:, t] if batch_first else y[t])
    state.h = None
    assert not np.any(state.h) and np.array_equal(state.c, cT)


def test_stream_lengths_and_layout():
    # state.run(x, lengths=...) gives what one whole call with those lengths
    # gives (compared with torch above): output zero past each stream's
    # length, and each stream's h and c taken at its own last step, which
    # the next chunk continues from. batch_first= gives the transpose.
    model = lstm.LSTM(3, 5, num_layers=2, proj_size=2, seed=8).eval()
    T, B = 5, 3
    lengths = [5, 2, 3]
    rng = np.random.default_rng(12)
    x = rng.standard_normal((T, B, 3)).astype(np.float32)
    y, (h, c) = model(x, lengths=lengths)
    state = model.stream_state(B)
    y_stream = state.run(x, lengths=lengths)
    assert np.array_equal(y_stream, y)
    assert np.array_equal(state.h, h) and np.array_equal(state.c, c)
    for b, n in enumerate(lengths):
        assert not np.any(y_stream[n:, b])
        lone = model.stream_state(1)
        lone.run(np.ascontiguousarray(x[:n, b:b + 1]))
        assert_close(state.h[:, b], lone.h[:, 0], "h of stream %d" % b, 1e-6)
        assert_close(state.c[:, b], lone.c[:, 0], "c of stream %d" % b, 1e-6)
    full = model.stream_state(B)
    full.run(x)
    assert not np.array_equal(full.h, state.h)  # the lengths were not ignored

    x_next = rng.standard_normal((4, B, 3)).astype(np.float32)
    y_next = state.run(x_next)
    assert np.array_equal(y_next, model(x_next, (h, c))[0])

    state.reset()
    y_bt = state.run(transposed(x), lengths=lengths, batch_first=True)
    assert y_bt.shape == (B, T, 2)
    assert np.array_equal(transposed(y_bt), y) and np.array_equal(state.h, h)
    with pytest.raises(ValueError, match="lengths"):
        state.run(x, lengths=[5, 2])
    with pytest.raises(ValueError, match="lengths must be in"):
        state.run(x, lengths=[6, 2, 3])


def test_truncated_bptt_chunk_with_lengths_and_layout():
    model = lstm.LSTM(2, 5, seed=3)
    T, B = 6, 3
    lengths = [6, 2, 4]
    x = np.random.default_rng(4).standard_normal((T, B, 2)).astype(np.float32)
    model.zero_grad()
    y, (h, c) = model(x, lengths=lengths)
    dy = np.ones_like(y)
    dx, _ = model.backward(dy)
    whole = model.grads.copy()
    state = model.stream_state(B)
    model.zero_grad()
    y_chunk = model.forward_chunk(transposed(x), state, lengths=lengths, batch_first=True)
    assert np.array_equal(transposed(y_chunk), y)
    assert np.array_equal(state.h, h) and np.array_equal(state.c, c)
    dx_chunk, _ = model.backward(transposed(dy))
    assert np.array_equal(model.grads, whole) and np.array_equal(transposed(dx_chunk), dx)
    state.reset()  # in eval mode, forward_chunk is state.run
    y_eval = model.eval().forward_chunk(x, state, lengths=lengths)
    assert np.array_equal(y_eval, y) and np.array_equal(state.h, h)


def plain_twin(model):
    """A copy of model in eval mode that packs its weights on every call."""
    return lstm.loads(model.dumps()).eval()


def assert_same_as_plain(model, x):
    """model's outputs (eval, weights kept) equal, bit for bit, a plain copy's."""
    y, (h_n, c_n) = model(x)
    y_ref, (h_ref, c_ref) = plain_twin(model)(x)
    assert np.array_equal(y, y_ref) and np.array_equal(h_n, h_ref)
    assert np.array_equal(c_n, c_ref)
    return y


def test_keep_weights_same_bits_after_every_parameter_change():
    model = lstm.LSTM(3, 8, num_layers=2, proj_size=5, seed=4).eval()
    assert model.keep_weights() is model
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4, 3)).astype(np.float32)
    first = assert_same_as_plain(model, x)
    assert np.array_equal(model(x)[0], first)  # the kept packing reused
    assert_same_as_plain(model, np.ascontiguousarray(x[:, :2]))  # another batch size
    assert_same_as_plain(model, x)

    changes = []

    def changed():
        """The kept model's outputs moved and are still those of a plain copy."""
        changes.append(assert_same_as_plain(model, x))
        assert not np.array_equal(changes[-1], changes[-2] if len(changes) > 1 else first)

    other = lstm.LSTM(3, 8, num_layers=2, proj_size=5, seed=5)
    model.load_state_dict(other.state_dict())
    changed()
    opt = lstm.optim.SGD(model, lr=0.5)
    y, _ = model.train()(x)
    model.backward(np.ones_like(y))
    opt.step()
    model.eval()
    changed()
    model.params[:] = other.params * 0.5  # a view taken after the last call
    changed()
    model.tensor("weight_l1")[0, :] += 1.0
    changed()
    for name, view in model.named_parameters():
        if name == "projection_l0":
            view *= -1.0
    changed()
    view = model.params
    model(x)
    view[:] = other.params  # written after a kept call: not seen until keep again
    model.keep_weights(True)
    changed()
    copied = copy.deepcopy(model)
    assert copied._kept.keep and np.array_equal(copied(x)[0], changes[-1])
    # training calls with the weights kept are those of a plain model too
    y, _ = model.train()(x)
    assert np.array_equal(y, plain_twin(model).train()(x)[0])
    assert model.keep_weights(False) is model
    assert np.array_equal(model.eval()(x)[0], changes[-1])


def test_keep_weights_sees_optimizer_steps_through_buffers():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3, 2)).astype(np.float32)
    nobias = lstm.LSTM(2, 6, bias=False, seed=1)      # bound with lstm_optim_add_buffer
    pairs = lstm.LSTM(2, 6, num_layers=2, seed=2)     # only layer 1, as (param, grad) views
    for model, opt in (
            (nobias, lstm.optim.Adam(nobias, lr=0.1)),
            (pairs, lstm.optim.SGD([(pairs.tensor(name), pairs.tensor_grad(name))
                                    for name in ("weight_l1", "bias_l1")], lr=0.5))):
        model.eval().keep_weights()
        before = assert_same_as_plain(model, x)
        for _ in range(2):
            opt.zero_grad()
            y, _ = model.train()(x)
            model.backward(np.ones_like(y))
            opt.step()
            after = assert_same_as_plain(model.eval(), x)
            assert not np.array_equal(after, before)
            before = after


def test_state_keep_weights_equals_plain_steps():
    model = lstm.LSTM(3, 7, num_layers=2, proj_size=4, peephole=True, seed=8).eval()
    T, B = 6, 2
    x = np.random.default_rng(5).standard_normal((T, B, 3)).astype(np.float32)
    kept = model.stream_state(B)
    assert kept.keep_weights() is kept
    plain = model.stream_state(B)
    whole, _ = model(x)
    for t in range(T):
        step = kept.step(x[t])
        assert np.array_equal(step, plain.step(x[t])) and np.array_equal(step, whole[t])
    assert np.array_equal(kept.h, plain.h) and np.array_equal(kept.c, plain.c)
    # parameters change between steps: load_state_dict, a view, a view kept across a call
    other = lstm.LSTM(3, 7, num_layers=2, proj_size=4, peephole=True, seed=9)
    view = model.params
    for change in (lambda: model.load_state_dict(other.state_dict()),
                   lambda: model.tensor("weight_l1").__imul__(2.0),
                   lambda: model.params.__iadd__(0.01)):
        change()
        assert np.array_equal(kept.step(x[0]), plain.step(x[0]))
    view *= 0.5
    kept.keep_weights(True)
    assert np.array_equal(kept.step(x[1]), plain.step(x[1]))
    kept.reset()
    plain.reset()
    assert np.array_equal(kept.run(x[:4]), plain.run(x[:4]))
    assert np.array_equal(kept.run(x[4:]), plain.run(x[4:]))
    # another model of the same shape through run(model=...)
    assert np.array_equal(kept.run(x, model=other), plain.run(x, model=other))
    kept.keep_weights(False)
    assert np.array_equal(kept.step(x[0]), plain.step(x[0]))


def test_calls_newer_than_the_minimum_are_bound_optionally(monkeypatch):
    # The mechanism for calls added after the oldest library the binding
    # loads (_ffi.MIN_VERSION; none at present): a name the library lacks is
    # left unbound, optional() says so, and the caller raises unsupported().
    from lstm import _ffi
    path = lstm.library_path()
    monkeypatch.setattr(_ffi, "_OPTIONAL_SIGNATURES", {
        "lstm_no_such_call": (ctypes.c_int, []),
        "lstm_sequences_init": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t])})
    _, absent = _ffi._bind(ctypes.CDLL(path), path)
    assert absent == frozenset(["lstm_no_such_call"])
    monkeypatch.setattr(_ffi, "_absent", absent)
    assert _ffi.optional("lstm_no_such_call") is None
    assert _ffi.optional("lstm_sequences_init") is not None
    error = _ffi.unsupported("lstm_no_such_call", "9.0.0")
    assert error.status == lstm.Status.E_UNSUPPORTED and error.function == "lstm_no_such_call"
    assert "9.0.0" in error.message and lstm.version() in error.message


def test_dropout_only_in_training_and_seeded():
    model = lstm.LSTM(3, 8, num_layers=3, dropout=0.5, seed=2)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    model.seed_dropout(11)
    first, _ = model(x)
    model.seed_dropout(11)
    again, _ = model(x)
    assert np.array_equal(first, again)
    plain, _ = model.eval()(x)
    assert not np.array_equal(first, plain)


def test_truncated_bptt_chunk():
    model = lstm.LSTM(2, 5, seed=3)
    x = np.random.default_rng(1).standard_normal((6, 2, 2)).astype(np.float32)
    y, _ = model(x)
    dy = np.ones_like(y)
    model.zero_grad()
    dx, _ = model.backward(dy)
    whole = model.grads.copy()
    state = model.stream_state(2)
    model.zero_grad()
    assert np.array_equal(model.forward_chunk(x, state), y)  # from a zero state
    dx_chunk, _ = model.backward(dy)
    assert np.array_equal(model.grads, whole) and np.array_equal(dx_chunk, dx)
    assert model.eval().forward_chunk(x, state).shape == y.shape


def test_threads_share_a_model():
    model = lstm.LSTM(4, 16, num_layers=2, seed=1).eval()
    x = np.random.default_rng(2).standard_normal((20, 4, 4)).astype(np.float32)
    expected, _ = model(x)
    results = []

    def work():
        for _ in range(5):
            results.append(np.array_equal(model(x)[0], expected))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 20


@pytest.mark.parametrize("writer", ["load_state_dict", "optimizer"])
@pytest.mark.parametrize("call", ["step", "run"])
def test_states_never_see_half_written_weights(call, writer):
    # A state's step or run reads the model's weights; another thread swaps
    # them between two sets A and B, by load_state_dict or by SGD steps of
    # lr 1 with gradient +-(A - B). Every output must be exactly A's or B's.
    # Weights are multiples of 2**-8, so that A - (A - B) is B to the bit.
    model = lstm.LSTM(16, 128, num_layers=2, seed=1)
    rng = np.random.default_rng(3)
    params_a, params_b = (rng.integers(-20, 21, model.param_count).astype(np.float32) / 256
                          for _ in range(2))
    x = rng.standard_normal((2, 1, 16)).astype(np.float32)
    state = model.stream_state(1)

    def compute():
        state.reset()
        return state.step(x[0]) if call == "step" else state.run(x)

    expected = []
    for params in (params_a, params_b):
        model.params[...] = params
        expected.append((model.state_dict(), compute()))
    (dict_a, y_a), (dict_b, y_b) = expected
    model.params[...] = params_a
    opt = optim.SGD(model, lr=1.0)
    difference = params_a - params_b
    stop, failures, swaps = threading.Event(), [], [0]

    def swap():
        try:
            while not stop.is_set():
                for target, gradient in ((dict_b, difference), (dict_a, -difference)):
                    if writer == "load_state_dict":
                        model.load_state_dict(target)
                    else:
                        model.grads[...] = gradient
                        opt.step()
                    swaps[0] += 1
        except Exception as exc:  # reported by the main thread
            failures.append(exc)

    thread = threading.Thread(target=swap)
    thread.start()
    seen = collections.Counter()
    try:
        while not swaps[0]:  # until the writer runs
            compute()
        first = swaps[0]
        for _ in range(1500):
            y = compute()
            seen["A" if np.array_equal(y, y_a) else "B" if np.array_equal(y, y_b) else
                 "neither"] += 1
        swapped = swaps[0] - first
    finally:
        stop.set()
        thread.join()
    assert not failures, failures
    assert seen["neither"] == 0, "%s torn outputs (%s; %d swaps)" % (seen["neither"], dict(seen),
                                                                     swaps[0])
    assert swapped > 0, dict(seen)


def test_workspace_queries():
    model = lstm.LSTM(3, 4, seed=1)
    assert model.workspace_size(10, 2, train=True) > model.workspace_size(10, 2, train=False)
    model.reserve(10, 2)


# ---- library discovery ------------------------------------------------------------------

def run_python(code, **env_changes):
    env = dict(os.environ, PYTHONPATH=BINDINGS_DIR)
    env.pop("LSTM_LIBRARY", None)
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_discovery_through_pkg_config(tmp_path):
    path = lstm.library_path()
    if not os.path.isabs(path):
        pytest.skip("the library was found by the loader, not by path")
    libdir = os.path.dirname(os.path.realpath(path))
    if not os.path.exists(os.path.join(libdir, "liblstm.so.1")):
        pytest.skip("no liblstm.so.1 beside %s" % path)
    (tmp_path / "lstm.pc").write_text(
        "libdir=%s\nName: lstm\nDescription: test\nVersion: 0.3.0\nLibs: -L${libdir} -llstm\n"
        % libdir)
    result = run_python("import lstm; print(lstm.library_path()); lstm.LSTM(2, 3)",
                        PKG_CONFIG_PATH=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == os.path.join(libdir, "liblstm.so.1")


def test_missing_library_is_a_clear_import_error():
    result = run_python("from lstm import convert\nimport lstm\n"
                        "try:\n    lstm.LSTM\nexcept ImportError as e:\n    print(e)",
                        LSTM_LIBRARY="/nonexistent/liblstm.so.1")
    assert result.returncode == 0, result.stderr
    assert "LSTM_LIBRARY" in result.stdout and "/nonexistent/liblstm.so.1" in result.stdout


def build_stub(directory, version_number, version_string):
    """A liblstm.so.1 with nothing but the two version calls, or a skip
    when there is no C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build a stub library with")
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "stub.c"
    source.write_text("unsigned lstm_version_number(void) { return %du; }\n"
                      "const char *lstm_version_string(void) { return \"%s\"; }\n"
                      % (version_number, version_string))
    library = directory / "liblstm.so.1"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


IMPORT_ERROR = "import lstm\ntry:\n    lstm.LSTM\nexcept ImportError as e:\n    print(e)"


def test_a_library_older_than_0_3_is_refused_naming_both_versions(tmp_path):
    stub = build_stub(tmp_path / "old", 200, "0.2.0")
    result = run_python(IMPORT_ERROR, LSTM_LIBRARY=str(stub))
    assert result.returncode == 0, result.stderr
    assert str(stub) in result.stdout
    assert "liblstm 0.2.0" in result.stdout and "liblstm 0.3.0 or later" in result.stdout
    # one that says 0.3.0 and lacks the calls is refused too, naming them
    stub = build_stub(tmp_path / "hollow", 300, "0.3.0")
    result = run_python(IMPORT_ERROR, LSTM_LIBRARY=str(stub))
    assert result.returncode == 0, result.stderr
    assert "liblstm 0.3.0" in result.stdout and "lacks" in result.stdout
    assert "lstm_model_infer" in result.stdout and "lstm_model_train_backward" in result.stdout
