"""Tests of training in bf16 from Python (liblstm 0.8.0:
lstm_workspace_set_training_precision, through LSTM.set_training_precision
and Network.set_training_precision).

Run as tests/test_lstm.py says. The reference is PyTorch in float64 on the
same weights (torch.nn.LSTM and autograd). Normwise relative L2 errors
against it: float32 training within 1e-5 (test_lstm.py's bound); bf16
training rounds each product's operands to 8 significant bits (a relative
step of 2^-8), so every output and gradient must be within 1e-2 of the
reference, and further than 1e-4 from it: a "bf16" run that silently ran
in float32 lands near 1e-7. A few Adam steps on the adding problem must
lower the loss in bf16 as they do in float32 (the final losses within 5%
of each other, both at most half the first).
"""

import pickle

import numpy as np
import pytest
import torch

try:
    import lstm
    from lstm import _ffi, optim
    _ffi.lib()
    HAVE_TRAINING_PRECISION = _ffi.optional("lstm_workspace_set_training_precision") is not None
    WHY = ("the loaded liblstm %s lacks lstm_workspace_set_training_precision (0.8.0)"
           % lstm.version())
except ImportError as exc:  # no library
    HAVE_TRAINING_PRECISION, WHY = False, "liblstm not found: %s" % exc

pytestmark = pytest.mark.skipif(not HAVE_TRAINING_PRECISION, reason=WHY)

torch.set_num_threads(1)

FP32_LIMIT = 1e-5
BF16_LIMITS = (1e-4, 1e-2)


def relative(ours, reference):
    reference = np.asarray(reference, dtype=np.float64)
    return float(np.linalg.norm(np.asarray(ours, dtype=np.float64) - reference)
                 / np.linalg.norm(reference))


def random(shape, rng, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


CONFIGS = [dict(), dict(num_layers=2, bidirectional=True), dict(proj_size=12),
           dict(num_layers=2, batch_first=True)]


def config_id(config):
    return ",".join("%s=%s" % item for item in config.items()) or "plain"


def torch_reference(module, x, h0, c0, dy, dhT, dcT, batch_first):
    """Outputs and gradients of module (float64) by autograd: y, h_n, c_n,
    dx, dh0, dc0 and {name: parameter gradient}."""
    tx, th0, tc0 = (torch.from_numpy(a).double().requires_grad_() for a in (x, h0, c0))
    module.zero_grad()
    y, (hT, cT) = module(tx, (th0, tc0))
    torch.autograd.backward([y, hT, cT], [torch.from_numpy(a).double() for a in (dy, dhT, dcT)])
    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return ([t.detach().numpy() for t in (y, hT, cT)],
            [t.grad.numpy() for t in (tx, th0, tc0)], grads)


def run_ours(model, x, h0, c0, dy, dhT, dcT):
    model.zero_grad()
    y, (hT, cT) = model(x, (h0, c0))
    dx, (dh0, dc0) = model.backward(dy, (dhT, dcT))
    return [y, hT, cT], [dx, dh0, dc0], model.grad_dict()


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_bf16_training_is_close_to_float64_and_not_float32(config):
    T, B, I, H = 20, 8, 16, 32
    torch.manual_seed(4)
    module = torch.nn.LSTM(I, H, **config)
    model = lstm.LSTM(I, H, **config, seed=1)
    model.load_state_dict(module.state_dict())
    module = module.double()
    rng = np.random.default_rng(7)
    batch_first = config.get("batch_first", False)
    L, D, R = config.get("num_layers", 1), 2 if config.get("bidirectional") else 1, \
        config.get("proj_size") or H
    x = random((B, T, I) if batch_first else (T, B, I), rng)
    h0, c0 = random((L * D, B, R), rng, 0.5), random((L * D, B, H), rng, 0.5)
    y_shape = x.shape[:2] + (D * R,)
    dy, dhT, dcT = random(y_shape, rng), random(h0.shape, rng), random(c0.shape, rng)
    reference = torch_reference(module, x, h0, c0, dy, dhT, dcT, batch_first)

    assert model.training_precision == "fp32"
    fp32 = run_ours(model, x, h0, c0, dy, dhT, dcT)
    assert model.set_training_precision("bf16") is model
    assert model.training_precision == "bf16"
    bf16 = run_ours(model, x, h0, c0, dy, dhT, dcT)

    names = ["y", "h_n", "c_n", "d_input", "d_h0", "d_c0"]
    for name, a32, a16, r in zip(names, fp32[0] + fp32[1], bf16[0] + bf16[1],
                                 reference[0] + reference[1]):
        assert relative(a32, r) < FP32_LIMIT, name
        error = relative(a16, r)
        assert BF16_LIMITS[0] < error < BF16_LIMITS[1], (name, error)
    assert list(bf16[2]) == list(reference[2])
    for name, r in reference[2].items():
        assert relative(fp32[2][name], r) < FP32_LIMIT, name
        error = relative(bf16[2][name], r)
        assert BF16_LIMITS[0] < error < BF16_LIMITS[1], (name, error)

    # back to float32: the float32 bits again
    model.training_precision = "fp32"
    again = run_ours(model, x, h0, c0, dy, dhT, dcT)
    for a, b in zip(again[0] + again[1] + list(again[2].values()),
                    fp32[0] + fp32[1] + list(fp32[2].values())):
        assert np.array_equal(a, b)


def test_training_and_inference_precisions_are_separate():
    model = lstm.LSTM(8, 16, num_layers=2, seed=3)
    x = random((12, 4, 8), np.random.default_rng(1))
    fp32 = model.eval()(x)[0]
    bf16 = model(x, precision="bf16")[0]
    model.train().set_training_precision("bf16")
    # without dropout a training forward in bf16 gives bf16 inference's bits
    assert np.array_equal(model(x)[0], bf16)
    assert np.array_equal(model.eval()(x)[0], fp32)  # eval-mode calls stay float32
    model.set_precision("int8")
    assert model.precision == "int8" and model.training_precision == "bf16"
    assert np.array_equal(model.train()(x)[0], bf16)
    # a reduced precision= on a training-mode call is still refused, naming the way
    with pytest.raises(ValueError, match="set_training_precision"):
        model(x, precision="bf16")


def adding_batch(rng, T, B):
    """The adding problem (examples/adding.c): values and two markers, one
    in each half; the target is the sum of the marked values."""
    x = np.zeros((T, B, 2), np.float32)
    x[:, :, 0] = rng.random((T, B))
    first, second = rng.integers(0, T // 2, B), rng.integers(T // 2, T, B)
    x[first, np.arange(B), 1] = 1.0
    x[second, np.arange(B), 1] = 1.0
    target = (x[first, np.arange(B), 0] + x[second, np.arange(B), 0]).reshape(B, 1)
    return x, target.astype(np.float32)


def adam_losses(precision, steps=60):
    net = lstm.Network(2, 32, head="last_step", head_size=1, loss="mse", seed=11)
    net.set_training_precision(precision)
    opt = optim.Adam(net, lr=1e-2)
    rng = np.random.default_rng(5)
    losses = []
    for _ in range(steps):
        x, target = adding_batch(rng, 10, 32)
        opt.zero_grad()
        net(x)
        losses.append(net.backward(target))
        opt.step()
    return np.array(losses)


def test_adam_steps_lower_the_loss_in_bf16_as_in_float32():
    fp32, bf16 = adam_losses("fp32"), adam_losses("bf16")
    assert not np.array_equal(fp32, bf16)  # bf16 did run
    assert abs(bf16[0] - fp32[0]) < 1e-2 * fp32[0]  # the same start
    end32, end16 = fp32[-10:].mean(), bf16[-10:].mean()
    assert end32 < 0.5 * fp32[:5].mean() and end16 < 0.5 * bf16[:5].mean()
    assert abs(end16 - end32) < 0.05 * end32, (end32, end16)


def test_network_gradients_in_bf16_close_to_float32():
    net = lstm.Network(16, 32, 2, num_embeddings=50, head="every_step", head_size=7,
                       loss="cross_entropy", seed=2)
    rng = np.random.default_rng(3)
    tokens, classes = rng.integers(0, 50, size=(15, 6)), rng.integers(0, 7, size=(15, 6))

    def grads():
        net.zero_grad()
        net(tokens)
        loss = net.backward(classes)
        return loss, {name: g.copy() for name, g in net.named_grads().items()}

    loss32, grads32 = grads()
    net.set_training_precision("bf16")
    assert net.training_precision == "bf16"
    loss16, grads16 = grads()
    assert loss16 != loss32 and abs(loss16 - loss32) < 1e-2 * loss32
    for name, g in grads32.items():
        error = relative(grads16[name], g)
        assert error < BF16_LIMITS[1], (name, error)
        # the LSTM's own gradients carry its bf16 products; the float32
        # head's and the embedding's see them through y only
        assert name != "lstm" or error > BF16_LIMITS[0], (name, error)


def test_int8_and_unknown_names_are_refused():
    model, net = lstm.LSTM(4, 8, seed=1), lstm.Network(4, 8, seed=1)
    for target in (model, net):
        with pytest.raises(ValueError, match="inference only"):
            target.set_training_precision("int8")
        with pytest.raises(ValueError, match="inference only"):
            target.training_precision = "int8"
        for bad in ("fp16", "BF16", "", 1, None, b"bf16"):
            with pytest.raises(ValueError) as error:
                target.set_training_precision(bad)
            assert "'fp32', 'bf16'" in str(error.value)
        assert target.training_precision == "fp32"
    # the library refuses int8, and a value that is no lstm_precision, itself
    function = _ffi.optional("lstm_workspace_set_training_precision")
    for value in (_ffi.PRECISIONS["int8"], 7, -1):
        assert function(model._handles.workspace, value) == lstm.Status.E_ARG


def test_a_change_between_forward_and_backward_is_a_state_error():
    rng = np.random.default_rng(2)
    x = random((5, 3, 4), rng)
    model = lstm.LSTM(4, 6, seed=1)
    y, _ = model(x)
    model.set_training_precision("fp32")  # the same precision: nothing dropped
    model.backward(np.ones_like(y))
    y, _ = model(x)
    model.set_training_precision("bf16")
    with pytest.raises(lstm.LSTMError) as error:
        model.backward(np.ones_like(y))
    assert error.value.status == lstm.Status.E_STATE
    assert error.value.function == "lstm_model_train_backward"
    model(x)
    model.backward(np.ones_like(y))  # a new forward serves again
    # a truncated-BPTT chunk likewise
    state = model.stream_state(3)
    model.forward_chunk(x, state)
    model.training_precision = "fp32"
    with pytest.raises(lstm.LSTMError) as error:
        model.backward(np.ones_like(y))
    assert error.value.status == lstm.Status.E_STATE

    net = lstm.Network(4, 6, head="every_step", head_size=2, loss="mse", seed=1)
    target = random((5, 3, 2), rng)
    net(x)
    net.set_training_precision("bf16")
    with pytest.raises(lstm.LSTMError) as error:
        net.backward(target)
    assert error.value.status == lstm.Status.E_STATE
    assert error.value.function == "lstm_network_train_backward"
    net(x)
    assert net.backward(target) > 0.0


def test_pickle_keeps_the_training_precision():
    model = lstm.LSTM(4, 8, seed=1).set_training_precision("bf16").set_precision("int8")
    net = lstm.Network(4, 8, head="last_step", head_size=1, seed=1)
    net.set_training_precision("bf16")
    x = random((6, 2, 4), np.random.default_rng(0))
    for original in (model, net):
        copy = pickle.loads(pickle.dumps(original))
        assert copy.training_precision == "bf16" and copy.precision == original.precision
        first = original(x)
        again = copy(x)
        first, again = (first[0], again[0]) if isinstance(first, tuple) else (first, again)
        assert np.array_equal(first, again)


def test_training_precision_needs_liblstm_0_8(monkeypatch):
    name = "lstm_workspace_set_training_precision"
    model, net = lstm.LSTM(3, 4, seed=1), lstm.Network(3, 4, seed=1)
    monkeypatch.setattr(_ffi, "_absent", _ffi._absent | {name})
    for target in (model, net):
        assert target.set_training_precision("fp32") is target  # float32 needs no new call
        with pytest.raises(lstm.LSTMError) as error:
            target.set_training_precision("bf16")
        assert error.value.status == lstm.Status.E_UNSUPPORTED
        assert "0.8.0" in error.value.message and name in error.value.message
        assert target.training_precision == "fp32"
    model(random((2, 1, 3), np.random.default_rng(0)))  # training still runs, in float32


def test_declared_signature():
    restype, argtypes = _ffi._OPTIONAL_SIGNATURES["lstm_workspace_set_training_precision"]
    assert argtypes[1].__name__ == "c_int" and _ffi.TRAINING_PRECISIONS == ("fp32", "bf16")
