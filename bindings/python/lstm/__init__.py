"""liblstm from Python: ctypes bindings shaped like torch.nn.LSTM, and
converters between PyTorch and liblstm model files.

    import numpy as np, lstm
    model = lstm.LSTM(8, 32, num_layers=2, seed=1)       # torch.nn.LSTM's arguments
    opt = lstm.optim.Adam(model, lr=1e-2)                 # torch.optim's arguments
    y, (h_n, c_n) = model(x)                              # x: float32 (T, B, 8)
    opt.zero_grad()
    d_x, (d_h0, d_c0) = model.backward(2 * (y - target) / y.size)
    opt.step()
    model.load_state_dict(torch_lstm.state_dict())        # weights from PyTorch

Contents (see bindings/python/README.md):

- :class:`LSTM` (``lstm.core``): the network, its call, backward,
  parameters and gradients as numpy views, torch-style state dicts, files,
  streams (:class:`State`).
- :class:`Network` (``lstm.network``): a whole sequence model (token ids
  or features, embedding, LSTM, head, loss) with its metadata, in one file.
- :func:`load`, :func:`loads` read model files: a :class:`Network` when the
  file holds more than an LSTM, else an :class:`LSTM`.
- :func:`ctc_loss`, :func:`ctc_greedy_decode` (``lstm.ctc``): the CTC
  loss on logits with its gradient (PyTorch's ``F.ctc_loss``), and
  best-path decoding.
- :mod:`lstm.optim`: SGD, Adagrad, RMSprop, Adam, AdamW, clipping, schedules.
- :class:`LSTMError`: every failed library call (``.status``, ``.message``);
  :class:`Status`: the status codes.
- :mod:`lstm.convert`: pure-Python model files and PyTorch conversion,
  which needs no C library.

The C library (liblstm.so.1) is found on first use of anything but
``lstm.convert``, ``LSTMError`` and ``Status``: the path in the environment
variable ``LSTM_LIBRARY`` if set, else ``$(pkg-config --variable=libdir
lstm)/liblstm.so.1``, else ``ctypes.util.find_library("lstm")``; an
ImportError says where it looked when none is found.
"""

import importlib

__all__ = ["LSTM", "State", "Network", "load", "loads", "load_network", "loads_network", "optim",
           "LSTMError", "Status", "version", "library_path", "convert", "ctc_loss",
           "ctc_greedy_decode"]

_LAZY = {
    "LSTM": "core", "State": "core", "Network": "network", "load": "network",
    "loads": "network", "load_network": "network", "loads_network": "network",
    "LSTMError": "_ffi", "Status": "_ffi", "version": "_ffi", "library_path": "_ffi",
    "ctc_loss": "ctc", "ctc_greedy_decode": "ctc",
}


def __getattr__(name):
    # Loaded on first use, so that lstm.convert works without the C library.
    if name in _LAZY:
        return getattr(importlib.import_module("." + _LAZY[name], __name__), name)
    if name in ("optim", "convert", "core", "network", "ctc"):
        return importlib.import_module("." + name, __name__)
    raise AttributeError("module 'lstm' has no attribute %r" % name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
