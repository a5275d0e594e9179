"""liblstm from Python.

For now this package holds only :mod:`lstm.convert`, a pure-Python reader
and writer of liblstm model files (docs/model-format.md) and a converter
between them and PyTorch's ``torch.nn.LSTM``::

    from lstm import convert
    convert.save_torch(torch_lstm, "model.lstm")    # PyTorch -> liblstm
    torch_lstm = convert.load_torch("model.lstm")   # liblstm -> PyTorch

or, from a shell (with ``bindings/python`` on PYTHONPATH)::

    python3 -m lstm.convert to-lstm model.pt model.lstm
    python3 -m lstm.convert to-torch model.lstm model.pt
    python3 -m lstm.convert info model.lstm

The ctypes bindings to the C library itself will live in this package too.
"""
