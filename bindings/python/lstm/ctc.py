"""Connectionist temporal classification (include/lstm/ctc.h): the loss of
unsegmented label sequences over every-step logits, its gradient, and greedy
decoding.

    loss, grad = lstm.ctc_loss(logits, labels, input_lengths, label_lengths)
    decoded = lstm.ctc_greedy_decode(logits, input_lengths)

``ctc_loss`` is ``torch.nn.functional.ctc_loss(logits.log_softmax(2), ...)``
with the same arguments and defaults, computed in double by the library;
the gradient is with respect to the logits (not the log-probabilities),
ready for :meth:`lstm.Network.backward` of a network without a loss. One
difference: without ``zero_infinity`` a sequence whose label has no
alignment has a zero gradient here, NaN in PyTorch (its loss is inf in
both). Needs liblstm 0.6.0.
"""

import ctypes

import numpy as np

from . import _ffi
from ._ffi import check
from .core import _float_array, _int_arg, _lengths_array, _ptr, _sequences

__all__ = ["ctc_loss", "ctc_greedy_decode"]

_REDUCTIONS = {"mean": _ffi.CTC_MEAN, "sum": _ffi.CTC_SUM, "none": _ffi.CTC_SUM}


def _call(name, *args):
    function = _ffi.optional(name)
    if function is None:
        raise _ffi.unsupported(name, _ffi.CTC_RELEASE)
    check(function(*args), name)


def _shape(logits, batch_first):
    """(T, B, C) of a 3-dimensional logits array in its layout."""
    if logits.ndim != 3:
        raise ValueError("logits has shape %s; it must be (T, B, C), or (B, T, C) with "
                         "batch_first" % (logits.shape,))
    if batch_first:
        batch, steps, classes = logits.shape
    else:
        steps, batch, classes = logits.shape
    return steps, batch, classes


def _config(classes, blank, reduction=_ffi.CTC_MEAN, flags=0):
    return _ffi.LstmCtcConfig(classes=classes, blank=_int_arg("blank", blank),
                              reduction=reduction, flags=flags)


def _integers(name, value):
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError("%s has dtype %s; it must be integers" % (name, array.dtype))
    return array


def _labels(labels, label_lengths, batch):
    """PyTorch's targets, concatenated (1-D, sum(label_lengths) entries) or
    padded (B, S_max), as one int32 array of the labels one after another,
    and label_lengths as a size_t array."""
    lengths = _integers("label_lengths", label_lengths)
    if lengths.shape != (batch,):
        raise ValueError("label_lengths has shape %s; it must be (%d,), one length per sequence"
                         % (lengths.shape, batch))
    if lengths.size and lengths.min() < 0:
        raise ValueError("label_lengths holds %d; lengths must be at least 0" % lengths.min())
    lengths = np.ascontiguousarray(lengths, dtype=np.uintp)
    array = _integers("labels", labels)
    total = int(lengths.sum())
    if array.ndim == 1:
        if array.size != total:
            raise ValueError("labels has %d entries; concatenated, it must hold sum(label_lengths)"
                             " = %d" % (array.size, total))
        flat = array
    elif array.ndim == 2 and array.shape[0] == batch:
        if lengths.size and int(lengths.max()) > array.shape[1]:
            raise ValueError("labels has shape %s; a label length of %d does not fit"
                             % (array.shape, int(lengths.max())))
        flat = np.concatenate([array[b, :int(lengths[b])] for b in range(batch)]) \
            if batch else array.reshape(-1)
    else:
        raise ValueError("labels has shape %s; it must be 1-D (concatenated) or (B, S_max) "
                         "(padded)" % (array.shape,))
    if flat.size and (flat.min() < -2**31 or flat.max() >= 2**31):
        raise ValueError("labels hold %d; each must be a class index" %
                         (flat.min() if flat.min() < -2**31 else flat.max()))
    return np.ascontiguousarray(flat, dtype=np.int32), lengths


def ctc_loss(logits, labels, input_lengths, label_lengths, blank=0, reduction="mean",
             zero_infinity=False, batch_first=False, *, grad=True):
    """The CTC loss of a batch of logits and its gradient (lstm_ctc_loss).

    Arguments as torch.nn.functional.ctc_loss's, but on logits:
        logits:        float32 (T, B, C), or (B, T, C) with batch_first; the
                       log-softmax is taken inside.
        labels:        integer class indices, 1-D concatenated (the B labels
                       one after another) or (B, S_max) padded; never blank.
        input_lengths: B lengths in [1, T], or None for T each.
        label_lengths: B lengths (0 for an empty label).
        blank, reduction ('mean', 'sum' or 'none'), zero_infinity: as PyTorch's.
        grad:          False for the loss alone.

    Returns (loss, grad): loss a float ('mean', 'sum') or a float64 array
    of the B losses ('none'); grad a float32 array of logits' shape (zero
    past each sequence's end; for 'none', the gradient of the losses' sum),
    or None. Raises LSTMError for what the library refuses (a label out of
    range or equal to the blank, NaN logits, ...).
    """
    logits = _float_array("logits", logits)
    steps, batch, classes = _shape(logits, batch_first)
    if reduction not in _REDUCTIONS:
        raise ValueError("reduction is %r; it must be 'mean', 'sum' or 'none'" % (reduction,))
    flat, lengths = _labels(labels, label_lengths, batch)
    input_lens = _lengths_array(input_lengths, batch, steps)
    config = _config(classes, blank, _REDUCTIONS[reduction],
                     _ffi.CTC_ZERO_INFINITY if zero_infinity else 0)
    sequences = _sequences(steps, batch, bool(batch_first), input_lens)
    loss = ctypes.c_double()
    losses = np.empty(batch, dtype=np.float64)
    gradient = np.empty(logits.shape, dtype=np.float32) if grad else None
    outputs = _ffi.LstmCtcOutputs(loss=ctypes.addressof(loss), losses=_ptr(losses),
                                  grad=_ptr(gradient))
    _call("lstm_ctc_loss", ctypes.byref(config), ctypes.byref(sequences), _ptr(logits),
          _ptr(flat) if flat.size else None, _ptr(lengths), ctypes.byref(outputs))
    return (losses if reduction == "none" else loss.value), gradient


def ctc_greedy_decode(logits, input_lengths=None, blank=0, batch_first=False):
    """Best-path decoding (lstm_ctc_greedy_decode): each step's most likely
    class (the first on a tie), repeats merged, blanks removed.

    logits: float32 (T, B, C), or (B, T, C) with batch_first (logits,
    probabilities or log-probabilities alike). Returns a list of B int32
    arrays, the decoded labels.
    """
    logits = _float_array("logits", logits)
    steps, batch, classes = _shape(logits, batch_first)
    input_lens = _lengths_array(input_lengths, batch, steps)
    config = _config(classes, blank)
    sequences = _sequences(steps, batch, bool(batch_first), input_lens)
    decoded = np.empty((batch, steps), dtype=np.int32)
    counts = np.empty(batch, dtype=np.uintp)
    _call("lstm_ctc_greedy_decode", ctypes.byref(config), ctypes.byref(sequences),
          _ptr(logits), _ptr(decoded), _ptr(counts))
    return [decoded[b, :int(counts[b])].copy() for b in range(batch)]
