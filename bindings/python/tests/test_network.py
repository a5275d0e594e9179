"""Tests of lstm.Network (whole sequence models) against PyTorch, live.

Run as tests/test_lstm.py says. A token classifier (nn.Embedding ->
bidirectional nn.LSTM -> nn.Linear on cat(h_n[-2], h_n[-1]) ->
CrossEntropyLoss) and a features regressor (nn.LSTM with batch_first ->
nn.Linear on every step -> MSELoss over the valid steps) are built in
PyTorch (float64), their weights copied into an lstm.Network through its
named parameter views (the LSTM's through lstm.LSTM.load_state_dict, an
independent path), and the output, the loss and every gradient compared,
normwise relative, with TOL. Then: training from Python lowers the loss,
files keep the whole model and its metadata, lstm.load returns what the
file holds, and bad input is refused before or by the library.
"""

import os
import tempfile

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import lstm

try:
    from lstm import optim
    from lstm.network import Network
    if lstm._ffi.optional("lstm_network_create") is None:
        raise ImportError("the loaded liblstm %s has no networks" % lstm.version())
except ImportError as exc:
    pytest.skip("liblstm with networks not found: %s" % exc, allow_module_level=True)

TOL = 1e-5
torch.set_num_threads(1)


def assert_close(ours, reference, label):
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    assert ours.shape == reference.shape, (label, ours.shape, reference.shape)
    scale = max(float(np.max(np.abs(reference))), 1e-30)
    error = float(np.max(np.abs(ours - reference))) / scale
    assert error <= TOL, "%s: relative error %.3g" % (label, error)


def copy_weights(net, embedding, torch_lstm, linear):
    """torch modules' weights into net, the LSTM's through lstm.LSTM."""
    params = net.named_parameters()
    if embedding is not None:
        params["embedding.weight"][...] = embedding.weight.detach().numpy()
    twin = lstm.LSTM(torch_lstm.input_size, torch_lstm.hidden_size, torch_lstm.num_layers,
                     bidirectional=torch_lstm.bidirectional, proj_size=torch_lstm.proj_size)
    twin.load_state_dict(torch_lstm.state_dict())
    params["lstm"][...] = twin.params
    params["head.weight"][...] = linear.weight.detach().numpy()
    params["head.bias"][...] = linear.bias.detach().numpy()
    return twin


def lstm_grads_as_torch(net, twin):
    """The network's LSTM gradients, named as torch's, through lstm.LSTM."""
    twin.grads[...] = net.named_grads()["lstm"]
    return twin.grad_dict()


def test_token_classifier_matches_pytorch():
    torch.manual_seed(0)
    V, E, H, T, B, C = 11, 5, 7, 6, 4, 3
    embedding = torch.nn.Embedding(V, E, padding_idx=0).double()
    torch_lstm = torch.nn.LSTM(E, H, num_layers=2, bidirectional=True).double()
    linear = torch.nn.Linear(2 * H, C).double()
    for module in (embedding, torch_lstm, linear):  # float32 values, exactly
        for p in module.parameters():
            p.data = p.data.float().double()
    net = Network(E, H, 2, num_embeddings=V, padding_idx=0, bidirectional=True,
                  head="last_step", head_size=C, loss="cross_entropy")
    twin = copy_weights(net, embedding, torch_lstm, linear)

    rng = np.random.default_rng(1)
    lengths = np.array([6, 2, 5, 1])
    tokens = rng.integers(1, V, size=(T, B))
    for b, n in enumerate(lengths):
        tokens[n:, b] = 0
    classes = np.array([0, 2, 1, 2], dtype=np.int32)

    x = embedding(torch.from_numpy(tokens))
    packed = pack_padded_sequence(x, torch.from_numpy(lengths), enforce_sorted=False)
    _, (h_n, _) = torch_lstm(packed)
    logits = linear(torch.cat((h_n[-2], h_n[-1]), 1))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(classes).long())
    loss.backward()

    ours = net(tokens, lengths)
    assert_close(ours, logits.detach().numpy(), "logits")
    our_loss = net.backward(classes)
    assert abs(our_loss - loss.item()) <= TOL * abs(loss.item())
    grads = net.named_grads()
    assert_close(grads["embedding.weight"], embedding.weight.grad.numpy(), "d embedding")
    assert_close(grads["head.weight"], linear.weight.grad.numpy(), "d head.weight")
    assert_close(grads["head.bias"], linear.bias.grad.numpy(), "d head.bias")
    ours_lstm = lstm_grads_as_torch(net, twin)
    for name, p in torch_lstm.named_parameters():
        assert_close(ours_lstm[name], p.grad.numpy(), "d " + name)
    # the inference call gives the training call's output, and its loss
    net.eval()
    assert np.array_equal(net(tokens, lengths), ours)
    assert abs(net.loss(ours, classes, lengths) - our_loss) <= 1e-6 * our_loss


def test_features_regressor_matches_pytorch_with_masked_mse():
    torch.manual_seed(2)
    I, H, P, T, B, O = 3, 6, 4, 5, 3, 2
    torch_lstm = torch.nn.LSTM(I, H, proj_size=P, batch_first=True).double()
    linear = torch.nn.Linear(P, O).double()
    for module in (torch_lstm, linear):
        for p in module.parameters():
            p.data = p.data.float().double()
    net = Network(I, H, proj_size=P, batch_first=True, head="every_step", head_size=O,
                  loss="mse")
    twin = copy_weights(net, None, torch_lstm, linear)

    rng = np.random.default_rng(3)
    lengths = np.array([5, 3, 4])
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    target = rng.standard_normal((B, T, O)).astype(np.float32)
    mask = np.arange(T)[None, :] < lengths[:, None]

    xt = torch.from_numpy(x).double()
    y = torch.zeros(B, T, P, dtype=torch.float64)
    for b, n in enumerate(lengths):  # each sequence alone, zero past its end
        y[b, :n] = torch_lstm(xt[b:b + 1, :n])[0][0]
    z = linear(y)
    keep = torch.from_numpy(mask)
    loss = ((z - torch.from_numpy(target).double())[keep] ** 2).mean()
    loss.backward()

    ours = net(x, lengths)
    assert_close(ours[mask], z.detach().numpy()[mask], "output")
    assert not ours[~mask].any(), "the output is zero past each sequence's end"
    our_loss = net.backward(target)
    assert abs(our_loss - loss.item()) <= TOL * loss.item()
    grads = net.named_grads()
    assert_close(grads["head.weight"], linear.weight.grad.numpy(), "d head.weight")
    ours_lstm = lstm_grads_as_torch(net, twin)
    for name, p in torch_lstm.named_parameters():
        assert_close(ours_lstm[name], p.grad.numpy(), "d " + name)


def test_training_from_python_and_one_file_with_metadata():
    V, T, B = 8, 7, 16
    net = Network(6, 12, num_embeddings=V, padding_idx=0, bidirectional=True,
                  head="last_step", head_size=2, loss="cross_entropy", seed=7)
    opt = optim.Adam(net, lr=0.02)
    rng = np.random.default_rng(5)

    def batch():
        lengths = rng.integers(1, T + 1, size=B)
        tokens = np.zeros((T, B), np.int64)
        labels = rng.integers(0, 2, size=B).astype(np.int32)
        for b, n in enumerate(lengths):
            tokens[:n, b] = rng.integers(2, V, size=n)
            if labels[b]:
                tokens[rng.integers(0, n), b] = 1
        return tokens, lengths, labels

    losses = []
    for _ in range(150):
        tokens, lengths, labels = batch()
        opt.zero_grad()
        net(tokens, lengths)
        losses.append(net.backward(labels))
        opt.step()
    assert np.mean(losses[:10]) > 0.6 and np.mean(losses[-10:]) < 0.2, losses[::15]

    net.meta["labels"] = "absent\npresent"
    net.meta["vocabulary"] = "\n".join("<pad> one two three four five six seven".split())
    net.meta["blob"] = b"\x00\xff"
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "classifier.lstm")
        net.save(path, opt)
        loaded = lstm.load(path)
        assert isinstance(loaded, Network)
        assert list(loaded.meta) == ["blob", "labels", "vocabulary"]
        assert loaded.meta["labels"] == "absent\npresent"
        assert loaded.meta["blob"] == b"\x00\xff"
        # the optimizer state comes back for the loaded network
        resumed = optim.Adam(loaded, lr=0.02)
        resumed.load(path)
    tokens, lengths, labels = batch()
    net.eval()
    loaded.eval()
    out = net(tokens, lengths)
    assert np.array_equal(loaded(tokens, lengths), out)
    assert np.mean((out[:, 1] > out[:, 0]) == (labels == 1)) >= 0.85
    # pickling goes through the same file bytes
    import pickle
    again = pickle.loads(pickle.dumps(loaded))
    assert np.array_equal(again.eval()(tokens, lengths), out)


def test_load_gives_an_lstm_for_a_plain_file():
    model = lstm.LSTM(3, 4, seed=1)
    assert isinstance(lstm.loads(model.dumps()), lstm.LSTM)
    net = lstm.loads_network(model.dumps())
    assert net.head is None and net.num_embeddings is None
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    model.eval()
    assert np.array_equal(net.eval()(x), model(x)[0])


def test_bad_input():
    net = Network(4, 5, num_embeddings=10, head="every_step", head_size=3,
                  loss="cross_entropy", seed=1)
    with pytest.raises(lstm.LSTMError) as info:
        net(np.array([[1, 2], [3, 10]]))
    assert info.value.status == lstm.Status.E_ARG and "3" in info.value.message
    with pytest.raises(lstm.LSTMError) as info:
        net(np.array([[1, -1]]))
    assert info.value.status == lstm.Status.E_ARG
    with pytest.raises(ValueError):
        net(np.zeros((2, 3, 4), np.int64))
    with pytest.raises(lstm.LSTMError) as info:
        net.backward(np.zeros((1, 2), np.int32))
    assert info.value.status == lstm.Status.E_STATE
    net(np.ones((2, 2), np.int64))
    with pytest.raises(ValueError):
        net.backward(np.zeros((3, 2), np.int32))
    with pytest.raises(lstm.LSTMError) as info:
        net.backward(np.full((2, 2), 3, np.int32))
    assert info.value.status == lstm.Status.E_ARG
    with pytest.raises(KeyError):
        net.meta["missing"]
    with pytest.raises(lstm.LSTMError):
        net.meta[""] = "x"
    with pytest.raises(TypeError):
        net.meta["k"] = 3
    with pytest.raises(ValueError):
        Network(4, 5, head="sideways")


def test_a_row_mask_leaves_warm_up_steps_out_of_the_loss():
    net = Network(3, 5, batch_first=True, head="every_step", head_size=2, loss="mse", seed=4)
    rng = np.random.default_rng(9)
    B, T = 3, 6
    x = rng.standard_normal((B, T, 3)).astype(np.float32)
    target = rng.standard_normal((B, T, 2)).astype(np.float32)
    lengths = np.array([6, 4, 5])
    mask = np.ones((B, T), np.uint8)
    mask[:, :2] = 0  # two warm-up steps
    kept = mask.astype(bool) & (np.arange(T)[None, :] < lengths[:, None])
    output = net.eval()(x, lengths)
    expected = np.mean((output[kept].astype(np.float64) - target[kept]) ** 2)
    assert abs(net.loss(output, target, lengths, mask=mask) - expected) <= 1e-6 * expected
    net.train()(x, lengths)
    assert abs(net.backward(target, mask=mask) - expected) <= 1e-6 * expected
    with pytest.raises(ValueError):
        net(x, lengths)
        net.backward(target, mask=mask[:, 1:])
