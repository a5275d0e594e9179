"""Tests of lstm.ctc_loss and lstm.ctc_greedy_decode against PyTorch, live.

Run as tests/test_lstm.py says. torch.nn.functional.ctc_loss runs in
float64 on log_softmax of the same float32 logits, with autograd for the
gradient with respect to the logits; the library computes in double and
rounds the gradient to float32. Tolerances: losses within 1e-9 relative,
gradients within 1e-6 of their largest magnitude (worst measured: 4.8e-16
and 3.0e-8).
"""

import numpy as np
import pytest
import torch

import lstm

try:
    from lstm import ctc
    if lstm._ffi.optional("lstm_ctc_loss") is None:
        raise ImportError("the loaded liblstm %s has no CTC (0.6.0)" % lstm.version())
except ImportError as exc:
    pytest.skip("liblstm with CTC not found: %s" % exc, allow_module_level=True)

torch.set_num_threads(1)


def torch_ctc(logits, labels, input_lengths, label_lengths, blank, reduction, zero_infinity,
              batch_first):
    z = torch.from_numpy(logits.astype(np.float64)).requires_grad_(True)
    time_major = z.transpose(0, 1) if batch_first else z
    loss = torch.nn.functional.ctc_loss(
        time_major.log_softmax(2), torch.as_tensor(labels, dtype=torch.long),
        torch.as_tensor(input_lengths, dtype=torch.long),
        torch.as_tensor(label_lengths, dtype=torch.long), blank=blank, reduction=reduction,
        zero_infinity=zero_infinity)
    (loss.sum() if reduction == "none" else loss).backward()
    return loss.detach().numpy(), z.grad.numpy()


def assert_grad_close(ours, reference):
    scale = np.max(np.abs(reference))
    assert np.max(np.abs(ours.astype(np.float64) - reference)) <= 1e-6 * max(scale, 1e-30)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("blank", [0, 4])
def test_loss_against_torch(reduction, batch_first, blank):
    rng = np.random.default_rng(7 + blank)
    T, B, C = 30, 4, 6
    shape = (B, T, C) if batch_first else (T, B, C)
    logits = rng.uniform(-3, 3, size=shape).astype(np.float32)
    input_lengths = [30, 17, 9, 1]
    label_lengths = [5, 3, 0, 1]
    others = [c for c in range(C) if c != blank]
    labels = [others[k] for k in rng.integers(0, C - 1, size=sum(label_lengths))]
    labels[:2] = [others[1], others[1]]  # a repeat, which needs a blank between
    loss, grad = lstm.ctc_loss(logits, labels, input_lengths, label_lengths, blank=blank,
                               reduction=reduction, batch_first=batch_first)
    ref_loss, ref_grad = torch_ctc(logits, labels, input_lengths, label_lengths, blank,
                                   reduction, False, batch_first)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-9)
    assert grad.dtype == np.float32 and grad.shape == logits.shape
    assert_grad_close(grad, ref_grad)
    loss_only, none = lstm.ctc_loss(logits, labels, input_lengths, label_lengths, blank=blank,
                                    reduction=reduction, batch_first=batch_first, grad=False)
    assert none is None
    np.testing.assert_array_equal(loss_only, loss)


def test_padded_labels_and_zero_infinity():
    rng = np.random.default_rng(11)
    T, B, C = 6, 3, 5
    logits = rng.uniform(-2, 2, size=(T, B, C)).astype(np.float32)
    padded = np.array([[1, 2, 0, 0], [3, 3, 3, 3], [4, 4, 1, 0]])
    label_lengths = [2, 4, 3]  # "3 3 3 3" needs 7 steps: no alignment
    flat = [1, 2, 3, 3, 3, 3, 4, 4, 1]
    loss, grad = lstm.ctc_loss(logits, padded, None, label_lengths)
    assert loss == np.inf
    assert np.all(grad[:, 1] == 0)  # torch: NaN
    for reduction in ("mean", "sum"):
        ours, ours_grad = lstm.ctc_loss(logits, padded, None, label_lengths,
                                        reduction=reduction, zero_infinity=True)
        ref, ref_grad = torch_ctc(logits, flat, [T] * B, label_lengths, 0, reduction, True,
                                  False)
        np.testing.assert_allclose(ours, ref, rtol=1e-9)
        assert_grad_close(ours_grad, ref_grad)


def test_refusals():
    logits = np.zeros((4, 2, 3), dtype=np.float32)
    with pytest.raises(lstm.LSTMError) as error:
        lstm.ctc_loss(logits, [1, 0], None, [1, 1])
    assert error.value.status == lstm.Status.E_ARG
    assert "sequence 1, position 0" in error.value.message
    bad = logits.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(lstm.LSTMError) as error:
        lstm.ctc_loss(bad, [1, 2], None, [1, 1])
    assert error.value.status == lstm.Status.E_NONFINITE
    with pytest.raises(TypeError):
        lstm.ctc_loss(logits.astype(np.float64), [1, 2], None, [1, 1])
    with pytest.raises(ValueError):
        lstm.ctc_loss(logits, [1, 2, 1], None, [1, 1])
    with pytest.raises(ValueError):
        lstm.ctc_loss(logits, [1, 2], None, [1, 1], reduction="max")


def test_greedy_decode():
    # best classes per step, blank 0: 1 1 0 1 2 2 0 3 -> [1, 1, 2, 3]; a tie goes to the first
    best = [1, 1, 0, 1, 2, 2, 0, 3]
    logits = np.zeros((len(best), 2, 4), dtype=np.float32)
    for t, c in enumerate(best):
        logits[t, 0, c] = 1.0
        logits[t, 1, 0] = 1.0
    logits[0, 1, 2] = logits[0, 1, 3] = 2.0  # a tie between 2 and 3 at step 0: 2
    decoded = lstm.ctc_greedy_decode(logits, [8, 3])
    assert [d.tolist() for d in decoded] == [[1, 1, 2, 3], [2]]
    decoded = lstm.ctc_greedy_decode(np.ascontiguousarray(logits.transpose(1, 0, 2)),
                                     batch_first=True, blank=1)
    assert decoded[0].tolist() == [0, 2, 0, 3]
