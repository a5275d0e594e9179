"""lstm.Network: a whole sequence model (include/lstm/network.h) from Python.

An input (int64 token ids through an embedding, or float32 features), the
LSTM stack, an optional dense head on every step or on each sequence's last
step, and a loss, in one object that trains, runs, and saves to one model
file with its metadata::

    net = lstm.Network(32, 64, num_embeddings=5000, padding_idx=0,
                       bidirectional=True, head="last_step", head_size=2,
                       loss="cross_entropy", seed=1)
    opt = lstm.optim.Adam(net, lr=1e-3)
    opt.zero_grad()
    logits = net(tokens, lengths)                 # tokens: int64 (T, B)
    loss = net.backward(labels)                   # labels: int32 (B,)
    opt.step()
    net.meta["vocabulary"] = "\\n".join(words)
    net.save("sentiment.lstm")
    net = lstm.load("sentiment.lstm")             # an lstm.Network again

Arrays are checked here (dtype, C order, shape) before they reach the
library, as in lstm.core; the library's own checks (token ids in range,
lengths, NaN) come back as :class:`lstm.LSTMError`.
"""

import collections.abc
import ctypes
import threading

import numpy as np

from . import _ffi
from ._ffi import LSTMError, Status, check
from .core import _float_array, _int_arg, _lengths_array, _layout, _path_arg, _ptr, _sequences
from .core import _optim_handle, _UINT64
from .core import _check_precision, _dumps_quantized, _file_precision, _save_quantized
from .core import _set_precision, _set_training_precision, _training_mode_precision
from .core import _workspace_precision
from .core import _view as _core_view

__all__ = ["Network", "Metadata", "load", "loads", "load_network", "loads_network"]

_lib = _ffi.lib()

_HEADS = {None: _ffi.HEAD_NONE, "every_step": _ffi.HEAD_EVERY_STEP,
          "last_step": _ffi.HEAD_LAST_STEP}
_LOSSES = {None: _ffi.LOSS_NONE, "cross_entropy": _ffi.LOSS_CROSS_ENTROPY,
           "bce_with_logits": _ffi.LOSS_BCE_WITH_LOGITS, "mse": _ffi.LOSS_MSE}


def _function(name):
    """The library's function name, or LSTMError E_UNSUPPORTED naming the
    release that added it when the loaded library is older."""
    function = _ffi.optional(name)
    if function is None:
        raise _ffi.unsupported(name, _ffi.NETWORK_RELEASE)
    return function


def _call(name, *args):
    check(_function(name)(*args), name)


class _NetworkHandles:
    """Owns the C network and its workspace. ``model`` is the network's own
    lstm_model (freed with the network), and ``lock`` guards every call, as
    lstm.core's _ModelHandles does, so that lstm.optim can bind a network
    as it binds a model."""

    __slots__ = ("network", "model", "workspace", "lock", "precision", "_destroy",
                 "_destroy_workspace", "__weakref__")

    def __init__(self, network):
        self._destroy = _function("lstm_network_destroy")
        self._destroy_workspace = _lib.lstm_workspace_destroy
        self.network = network
        self.model = _function("lstm_network_model")(network)
        self.workspace = None
        self.lock = threading.RLock()
        self.precision = "fp32"  # the workspace's, as last set

    def touch(self):
        pass  # networks keep no packed weights across calls

    def __del__(self):
        if self.workspace:
            self._destroy_workspace(self.workspace)
            self.workspace = None
        if self.network:
            self._destroy(self.network)
            self.network = None


def _view(handles, name, part):
    """A writable flat float32 view of a part's parameter or gradient buffer
    (name: the C call that gives it), keeping the network alive."""
    address, count = ctypes.c_void_p(), ctypes.c_size_t()
    function = getattr(_lib, name) if name.startswith("lstm_model_") else _function(name)
    check(function(part, ctypes.byref(address), ctypes.byref(count)), name)
    return _core_view(handles, address.value, count.value)


class Metadata(collections.abc.MutableMapping):
    """A network's metadata: str keys to str (UTF-8 text) or bytes values,
    saved in its model file, iterated in the order of the keys' bytes."""

    def __init__(self, handles):
        self._handles = handles

    def __getitem__(self, key):
        kind, value, size = ctypes.c_uint32(), ctypes.c_void_p(), ctypes.c_size_t()
        name = "lstm_network_get_meta"
        status = _function(name)(self._handles.network, _key(key), ctypes.byref(kind),
                                 ctypes.byref(value), ctypes.byref(size))
        if status == Status.E_NOT_FOUND:
            raise KeyError(key)
        check(status, name)
        data = ctypes.string_at(value.value, size.value) if size.value else b""
        return data.decode("utf-8") if kind.value == _ffi.META_TEXT else data

    def __setitem__(self, key, value):
        if isinstance(value, str):
            kind, data = _ffi.META_TEXT, value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            kind, data = _ffi.META_BYTES, bytes(value)
        else:
            raise TypeError("metadata values are str or bytes, not %s" % type(value).__name__)
        with self._handles.lock:
            _call("lstm_network_set_meta", self._handles.network, _key(key), kind, data,
                  len(data))

    def __delitem__(self, key):
        name = "lstm_network_remove_meta"
        with self._handles.lock:
            status = _function(name)(self._handles.network, _key(key))
        if status == Status.E_NOT_FOUND:
            raise KeyError(key)
        check(status, name)

    def __iter__(self):
        keys = []
        for index in range(len(self)):
            key = ctypes.c_char_p()
            _call("lstm_network_meta_key", self._handles.network, index, ctypes.byref(key))
            keys.append(key.value.decode("utf-8"))
        return iter(keys)

    def __len__(self):
        return _function("lstm_network_meta_count")(self._handles.network)

    def __repr__(self):
        return "lstm.Metadata(%r)" % dict(self)


def _key(key):
    if not isinstance(key, str):
        raise TypeError("metadata keys are str, not %s" % type(key).__name__)
    return key.encode("utf-8")


class Network:
    """A whole sequence model with liblstm's network API.

    ``Network(input_size, hidden_size, num_layers=1, *, num_embeddings=None,
    padding_idx=None, bidirectional=False, batch_first=False, proj_size=0,
    dropout=0.0, peephole=False, head=None, head_size=0, loss=None,
    seed=None)``

    - ``num_embeddings`` (V) makes a token network: its input is int64 ids
      in [0, V), embedded into ``input_size`` floats (nn.Embedding with
      ``padding_idx``); without it the input is float32 features.
    - ``head``: None (the output is the LSTM's output), ``"every_step"``
      (a dense layer of ``head_size`` outputs on every step) or
      ``"last_step"`` (on each sequence's final hidden state, both
      directions side by side: PyTorch's ``cat((h_n[-2], h_n[-1]), 1)``).
    - ``loss``: None, ``"cross_entropy"``, ``"bce_with_logits"`` or
      ``"mse"``; averaged over the rows the lengths keep.
    - ``seed``: PyTorch's initialisation of every part from this seed;
      None leaves every parameter at zero.

    Shapes: tokens (T, B) or features (T, B, I); (B, T) and (B, T, I) with
    ``batch_first``. The output is (T, B, O) (every step, or without a head:
    O = D R), or (B, O) with a last-step head.

    :meth:`set_precision` (or a call's ``precision=``) runs eval-mode
    calls in "bf16" or "int8" (the LSTM; with liblstm 0.8.0, the embedding
    and the head too); ``save(path, precision="int8")`` writes a quantized
    file (liblstm 0.7.0; the embedding and the head's W quantized too from
    0.8.0), as for :class:`lstm.LSTM`. :meth:`set_training_precision`
    ("bf16") trains the LSTM's matrix products in bfloat16 with float32
    sums (liblstm 0.8.0).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, *, num_embeddings=None,
                 padding_idx=None, bidirectional=False, batch_first=False, proj_size=0,
                 dropout=0.0, peephole=False, head=None, head_size=0, loss=None, seed=None):
        if head not in _HEADS:
            raise ValueError("head is %r; it must be None, 'every_step' or 'last_step'" % (head,))
        if loss not in _LOSSES:
            raise ValueError("loss is %r; it must be None, 'cross_entropy', 'bce_with_logits' "
                             "or 'mse'" % (loss,))
        lstm_config = _ffi.LstmConfig()
        check(_lib.lstm_config_init(ctypes.byref(lstm_config), ctypes.sizeof(lstm_config)),
              "lstm_config_init")
        lstm_config.input_size = _int_arg("input_size", input_size)
        lstm_config.hidden_size = _int_arg("hidden_size", hidden_size)
        lstm_config.num_layers = _int_arg("num_layers", num_layers)
        lstm_config.proj_size = _int_arg("proj_size", proj_size)
        lstm_config.flags = ((_ffi.BIDIRECTIONAL if bidirectional else 0)
                             | (_ffi.BATCH_FIRST if batch_first else 0)
                             | (_ffi.PEEPHOLE if peephole else 0))
        lstm_config.dropout = float(dropout)
        config = _ffi.LstmNetworkConfig(struct_size=ctypes.sizeof(_ffi.LstmNetworkConfig),
                                        lstm=ctypes.pointer(lstm_config), head=_HEADS[head],
                                        loss=_LOSSES[loss],
                                        head_size=_int_arg("head_size", head_size))
        if num_embeddings is not None:
            embedding = _ffi.LstmEmbeddingConfig(
                struct_size=ctypes.sizeof(_ffi.LstmEmbeddingConfig),
                num_embeddings=_int_arg("num_embeddings", num_embeddings),
                embedding_dim=lstm_config.input_size)
            if padding_idx is not None:
                embedding.flags = _ffi.EMBEDDING_PADDING
                embedding.padding_idx = int(padding_idx)
            config.embedding = ctypes.pointer(embedding)
        elif padding_idx is not None:
            raise ValueError("padding_idx needs num_embeddings (a token network)")
        handle = ctypes.c_void_p()
        _call("lstm_network_create", ctypes.byref(config), ctypes.byref(handle))
        self._setup(_NetworkHandles(handle.value))
        if seed is not None:
            self.init(seed)

    @classmethod
    def _from_handle(cls, handle):
        network = cls.__new__(cls)
        network._setup(_NetworkHandles(handle))
        return network

    def _setup(self, handles):
        self._handles = handles
        self._lock = handles.lock
        self._pending = None
        self.training = True
        self._precision = "fp32"
        self._training_precision = "fp32"
        config = _ffi.LstmNetworkConfig(struct_size=ctypes.sizeof(_ffi.LstmNetworkConfig))
        _call("lstm_network_get_config", handles.network, ctypes.byref(config))
        lstm_config = config.lstm.contents
        self.input_size = lstm_config.input_size
        self.hidden_size = lstm_config.hidden_size
        self.num_layers = lstm_config.num_layers
        self.proj_size = lstm_config.proj_size
        self.bidirectional = bool(lstm_config.flags & _ffi.BIDIRECTIONAL)
        self.batch_first = bool(lstm_config.flags & _ffi.BATCH_FIRST)
        self.peephole = bool(lstm_config.flags & _ffi.PEEPHOLE)
        self.dropout = lstm_config.dropout
        self.directions = 2 if self.bidirectional else 1
        self.state_size = self.proj_size or self.hidden_size
        heads = {v: k for k, v in _HEADS.items()}
        losses = {v: k for k, v in _LOSSES.items()}
        self.head = heads[config.head]
        self.loss_kind = losses[config.loss]
        self.head_size = config.head_size
        self.output_size = self.head_size if self.head else self.directions * self.state_size
        self.num_embeddings = self.padding_idx = None
        if config.embedding:
            embedding = config.embedding.contents
            self.num_embeddings = embedding.num_embeddings
            if embedding.flags & _ffi.EMBEDDING_PADDING:
                self.padding_idx = embedding.padding_idx
        self.meta = Metadata(handles)
        workspace = ctypes.c_void_p()
        check(_lib.lstm_workspace_create(handles.model, ctypes.byref(workspace)),
              "lstm_workspace_create")
        handles.workspace = workspace.value

    def __repr__(self):
        parts = ["%d, %d" % (self.input_size, self.hidden_size)]
        if self.num_layers != 1:
            parts.append("num_layers=%d" % self.num_layers)
        if self.num_embeddings is not None:
            parts.append("num_embeddings=%d" % self.num_embeddings)
        if self.padding_idx is not None:
            parts.append("padding_idx=%d" % self.padding_idx)
        for name in ("bidirectional", "batch_first", "peephole"):
            if getattr(self, name):
                parts.append("%s=True" % name)
        if self.proj_size:
            parts.append("proj_size=%d" % self.proj_size)
        if self.head:
            parts.append("head=%r, head_size=%d" % (self.head, self.head_size))
        if self.loss_kind:
            parts.append("loss=%r" % self.loss_kind)
        return "lstm.Network(%s)" % ", ".join(parts)

    # ---- parameters ----------------------------------------------------------------

    def init(self, seed):
        """PyTorch's initialisation of every part (lstm_network_init)."""
        with self._lock:
            _call("lstm_network_init", self._handles.network, _int_arg("seed", seed, _UINT64), 0)

    def zero_grad(self):
        """Every part's gradients to zero."""
        with self._lock:
            _call("lstm_network_zero_grads", self._handles.network)

    def param_count(self):
        return _function("lstm_network_param_count")(self._handles.network)

    def _parts(self, buffer):
        """buffer: "params" or "grads"."""
        handles, out = self._handles, {}
        embedding = _function("lstm_network_embedding")(handles.network)
        if embedding:
            out["embedding.weight"] = _view(handles, "lstm_embedding_" + buffer,
                                            embedding).reshape(self.num_embeddings,
                                                               self.input_size)
        out["lstm"] = _view(handles, "lstm_model_" + buffer, handles.model)
        head = _function("lstm_network_head")(handles.network)
        if head:
            in_features = self.directions * self.state_size
            both = _view(handles, "lstm_dense_" + buffer, head)
            out["head.weight"] = both[:self.head_size * in_features].reshape(
                self.head_size, in_features)
            out["head.bias"] = both[self.head_size * in_features:]
        return out

    def named_parameters(self):
        """{name: writable float32 view}: "embedding.weight" (V, E), "lstm"
        (the LSTM's flat buffer, laid out as lstm.LSTM's params), "head.weight"
        (O, D R) and "head.bias" (O,), for the parts the network has."""
        return self._parts("params")

    def named_grads(self):
        """The gradients, named and shaped as :meth:`named_parameters`."""
        return self._parts("grads")

    # ---- calls ---------------------------------------------------------------------

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    @property
    def precision(self):
        """The precision of eval-mode calls: "fp32", "bf16" or "int8"."""
        return self._precision

    @precision.setter
    def precision(self, value):
        self.set_precision(value)

    def set_precision(self, precision):
        """Run eval-mode calls (lstm_network_infer) in ``precision``:
        "fp32" (the default), "bf16" or "int8" (see
        :meth:`lstm.LSTM.set_precision`): the LSTM's products, the
        embedding's rows (looked up rounded to bf16, or quantized per row
        to int8, as a quantized file stores them) and the head's product
        (W per output row, its input per row; the bias in float32).
        Returns self."""
        self._precision = _workspace_precision(precision)
        return self

    @property
    def training_precision(self) -> str:
        """The precision of training-mode calls: "fp32" (the default) or
        "bf16" (see :meth:`set_training_precision`)."""
        return self._training_precision

    @training_precision.setter
    def training_precision(self, value: str) -> None:
        self.set_training_precision(value)

    def set_training_precision(self, precision: str) -> "Network":
        """Train the LSTM's matrix products (training-mode calls and
        :meth:`backward`) in ``precision``: "fp32" (the default) or "bf16"
        (see :meth:`lstm.LSTM.set_training_precision`); the embedding, the
        head, the loss, every parameter, gradient and optimizer state stay
        float32. A change drops the training forward held (the
        :meth:`backward` that follows raises LSTMError E_STATE). ValueError
        for "int8" and any other name; LSTMError E_UNSUPPORTED for "bf16"
        with a liblstm older than 0.8.0. Returns self."""
        with self._lock:
            self._training_precision = _set_training_precision(
                self._handles.workspace, self._training_precision, precision)
        return self

    def eval(self):
        return self.train(False)

    def _input(self, input, batch_first):
        _layout(batch_first)
        if batch_first is None:
            batch_first = self.batch_first
        if self.num_embeddings is not None:
            tokens = np.asarray(input)
            if tokens.dtype != np.int64:
                if tokens.dtype.kind not in "iu":
                    raise TypeError("tokens have dtype %s; they must be integer ids"
                                    % tokens.dtype)
                tokens = tokens.astype(np.int64)
            tokens = np.ascontiguousarray(tokens)
            if tokens.ndim != 2:
                raise ValueError("tokens have shape %s; they must be %s" % (
                    tokens.shape, "(batch, seq_len)" if batch_first else "(seq_len, batch)"))
            data = tokens
        else:
            layout = " (batch, seq_len, input_size)" if batch_first else \
                " (seq_len, batch, input_size)"
            data = _float_array("input", input, ndim=3, layout=layout)
            if data.shape[2] != self.input_size:
                raise ValueError("input has shape %s; its last dimension must be input_size %d"
                                 % (data.shape, self.input_size))
        batch, seq_len = (data.shape[0], data.shape[1]) if batch_first else \
            (data.shape[1], data.shape[0])
        return data, seq_len, batch, batch_first

    def _output_shape(self, seq_len, batch, batch_first):
        if self.head == "last_step":
            return (batch, self.output_size)
        steps = (batch, seq_len) if batch_first else (seq_len, batch)
        return steps + (self.output_size,)

    def forward(self, input, lengths=None, hx=None, *, batch_first=None, precision=None):
        """The network's output for ``input`` (token ids or features), numpy
        float32, in the call's layout; in training mode the activations are
        kept for one :meth:`backward`. ``precision`` overrides
        :attr:`precision` for this call, in eval mode only (training-mode
        calls run in :attr:`training_precision`)."""
        if precision is not None:
            _check_precision(precision)
            if self.training and precision != "fp32":
                raise _training_mode_precision(precision, "network")
        else:
            precision = self._precision
        data, seq_len, batch, batch_first = self._input(input, batch_first)
        lens = _lengths_array(lengths, batch, seq_len)
        h0 = c0 = None
        if hx is not None:
            LD = self.num_layers * self.directions
            h0 = _float_array("hx[0]", hx[0], (LD, batch, self.state_size))
            c0 = _float_array("hx[1]", hx[1], (LD, batch, self.hidden_size))
        output = np.empty(self._output_shape(seq_len, batch, batch_first), np.float32)
        sequences = _sequences(seq_len, batch, batch_first, lens)
        tokens = data if self.num_embeddings is not None else None
        features = None if self.num_embeddings is not None else data
        inputs = _ffi.LstmNetworkInputs(tokens=_ptr(tokens), features=_ptr(features),
                                        h0=_ptr(h0), c0=_ptr(c0))
        outputs = _ffi.LstmNetworkOutputs(output=_ptr(output))
        training = self.training
        name = "lstm_network_train_forward" if training else "lstm_network_infer"
        with self._lock:
            self._pending = None
            if not training:
                self._handles.precision = _set_precision(
                    "lstm_workspace_set_precision", self._handles.workspace,
                    self._handles.precision, precision)
            _call(name, self._handles.network, self._handles.workspace,
                  ctypes.byref(sequences), ctypes.byref(inputs), ctypes.byref(outputs))
            if training:
                self._pending = output.shape
        return output

    __call__ = forward

    def _targets(self, targets, output_shape):
        rows = int(np.prod(output_shape[:-1]))
        if self.loss_kind == "cross_entropy":
            classes = np.ascontiguousarray(np.asarray(targets))
            if classes.dtype.kind not in "iu":
                raise TypeError("targets have dtype %s; cross-entropy takes class indices"
                                % classes.dtype)
            if classes.size != rows or classes.shape != output_shape[:-1]:
                raise ValueError("targets have shape %s; they must be %s, one class per row"
                                 % (classes.shape, output_shape[:-1]))
            classes = classes.astype(np.int32)
            return _ffi.LstmTargets(classes=_ptr(classes)), classes
        values = _float_array("targets", targets, output_shape)
        if self.loss_kind is None:
            return _ffi.LstmTargets(grad=_ptr(values)), values
        return _ffi.LstmTargets(values=_ptr(values)), values

    def _mask(self, mask, shape):
        """A row mask (0 leaves a row out of the loss) as a C uint8 array, or None."""
        if mask is None:
            return None
        array = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
        if array.shape != shape[:-1]:
            raise ValueError("mask has shape %s; it must be %s, one value per row"
                             % (array.shape, shape[:-1]))
        return array

    def backward(self, targets, mask=None):
        """Backward of the last training forward: returns the loss and adds
        every part's gradients to :meth:`named_grads`. ``targets``: class
        indices (rows of the output; negative ones are left out) for
        cross-entropy, float32 arrays of the output's shape for BCE and MSE,
        and dL/d(output) for a network without a loss. ``mask``: one value
        per row of the output, 0 to leave the row out of the loss (a
        warm-up, unscored steps)."""
        with self._lock:
            if self._pending is None:
                raise LSTMError(Status.E_STATE,
                                "backward() needs a forward call in training mode first, and "
                                "each forward serves one backward",
                                _lib.lstm_strerror(Status.E_STATE).decode(), "Network.backward")
            raw, keep = self._targets(targets, self._pending)
            rows = self._mask(mask, self._pending)
            raw.mask = _ptr(rows)
            loss = ctypes.c_double()
            _call("lstm_network_train_backward", self._handles.network, self._handles.workspace,
                  ctypes.byref(raw), ctypes.byref(loss))
            self._pending = None
        del keep, rows
        return loss.value

    def loss(self, output, targets, lengths=None, *, mask=None, batch_first=None):
        """The network's loss of an output of an eval-mode call with the
        same lengths and layout (lstm_network_loss)."""
        output = _float_array("output", output)
        if batch_first is None:
            batch_first = self.batch_first
        if self.head == "last_step":
            batch, seq_len = output.shape[0], 1
        else:
            seq_len, batch = output.shape[:2][::-1] if batch_first else output.shape[:2]
        if output.shape != self._output_shape(seq_len, batch, batch_first):
            raise ValueError("output has shape %s, not a shape this network gives"
                             % (output.shape,))
        if self.head == "last_step" and lengths is not None:
            seq_len = int(np.max(lengths))
        lens = _lengths_array(lengths, batch, seq_len)
        raw, keep = self._targets(targets, output.shape)
        rows = self._mask(mask, output.shape)
        raw.mask = _ptr(rows)
        sequences = _sequences(seq_len, batch, batch_first, lens)
        loss = ctypes.c_double()
        _call("lstm_network_loss", self._handles.network, ctypes.byref(sequences),
              _ptr(output), ctypes.byref(raw), ctypes.byref(loss))
        del keep, rows
        return loss.value

    # ---- files ---------------------------------------------------------------------

    def save(self, path, optimizer=None, *, precision="fp32"):
        """Save the whole model, with its metadata (and an optimizer's
        state), to one file (lstm_network_save: atomic, checksummed).
        ``precision`` "bf16" or "int8" writes a quantized file
        (lstm_network_save_quantized: the LSTM's W and W_hr, the
        embedding and the head's W in that precision, the biases and
        everything else as in float32, no optimizer)."""
        _file_precision(precision, optimizer)
        with self._lock:
            if precision != "fp32":
                _save_quantized("lstm_network_save_quantized", self._handles.network,
                                precision, path)
                return
            _call("lstm_network_save", self._handles.network, _optim_handle(optimizer),
                  _path_arg(path))

    def dumps(self, optimizer=None, *, precision="fp32"):
        """The bytes of the model file (lstm_network_save_buffer; with a
        ``precision``, lstm_network_save_quantized_buffer, as :meth:`save`)."""
        _file_precision(precision, optimizer)
        if precision != "fp32":
            with self._lock:
                return _dumps_quantized("lstm_network_save_quantized_buffer",
                                        self._handles.network, precision)
        size = ctypes.c_size_t()
        with self._lock:
            handle = _optim_handle(optimizer)
            _call("lstm_network_save_buffer", self._handles.network, handle, None, 0,
                  ctypes.byref(size))
            buffer = ctypes.create_string_buffer(size.value)
            _call("lstm_network_save_buffer", self._handles.network, handle, buffer,
                  size.value, ctypes.byref(size))
        return buffer.raw[:size.value]

    def __reduce__(self):
        return (_restore, (self.dumps(), self.training, self._precision,
                           self._training_precision))


def _restore(data, training, precision="fp32", training_precision="fp32"):
    network = loads_network(data).train(training)
    if training_precision != "fp32":
        network.set_training_precision(training_precision)
    return network.set_precision(precision) if precision != "fp32" else network


def load_network(path):
    """The network stored in a model file (a file with an LSTM only gives a
    features network without a head)."""
    handle = ctypes.c_void_p()
    _call("lstm_network_load", _path_arg(path), ctypes.byref(handle))
    return Network._from_handle(handle.value)


def loads_network(data):
    """The network stored in a model file's bytes."""
    data = bytes(data)
    handle = ctypes.c_void_p()
    _call("lstm_network_load_buffer", data, len(data), ctypes.byref(handle))
    return Network._from_handle(handle.value)


def _plain(network):
    """Whether a loaded network is an LSTM and nothing more."""
    return (network.num_embeddings is None and network.head is None
            and network.loss_kind is None and len(network.meta) == 0)


def load(path, *, bias=True):
    """What a model file holds: an :class:`Network` when it has more than an
    LSTM (an embedding, a head, a loss or metadata), else an
    :class:`lstm.LSTM` (lstm.core.load, ``bias`` as there)."""
    from . import core
    if _ffi.optional("lstm_network_load") is not None:
        network = load_network(path)
        if not _plain(network):
            return network
    return core.load(path, bias=bias)


def loads(data, *, bias=True):
    """:func:`load` for a model file's bytes."""
    from . import core
    if _ffi.optional("lstm_network_load_buffer") is not None:
        network = loads_network(data)
        if not _plain(network):
            return network
    return core.loads(data, bias=bias)
