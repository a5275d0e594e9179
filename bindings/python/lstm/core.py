"""lstm.LSTM and lstm.State: liblstm models from Python, shaped like torch.nn.LSTM.

Every array that crosses into the library is checked here first (dtype
float32, C order, shape), so that no mistake in Python can make the C code
read or write outside an array; everything the library checks itself (NaN,
sizes, lengths, order of calls) comes back as :class:`lstm.LSTMError`.
Inputs that already are float32 C-contiguous arrays are passed by pointer,
never copied. The GIL is released during every library call.
"""

import collections
import ctypes
import itertools
import os
import secrets
import threading

import numpy as np

from . import _ffi
from ._ffi import LSTMError, Status, check

__all__ = ["LSTM", "State", "load", "loads"]

_lib = _ffi.lib()  # ImportError, saying where it looked, when liblstm is not found

_KIND_PREFIXES = ("weight", "bias", "projection", "peephole")

# Numbers for the parameters' epochs (_ModelHandles.epoch), never reused
# across models; next() on it is atomic under the GIL.
_EPOCHS = itertools.count(1)


def _ptr(array):
    """The address of an array's first element, or None (NULL)."""
    return None if array is None else array.ctypes.data


def _to_ndarray(name, value):
    """value as a numpy array without copying it: ndarrays as they are, and
    objects that export an array (torch CPU tensors, memoryviews) through
    np.asarray."""
    if value is None:
        raise TypeError("%s is None; it must be a float32 numpy array" % name)
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and getattr(value, "requires_grad", False):
        raise TypeError("%s is a tensor that requires grad; pass %s.detach()" % (name, name))
    if not (hasattr(value, "__array__") or hasattr(value, "__array_interface__")
            or isinstance(value, memoryview)):
        raise TypeError("%s is a %s; it must be a float32 numpy array"
                        % (name, type(value).__name__))
    try:
        return np.asarray(value)
    except Exception as exc:  # a foreign object that would not convert
        raise TypeError("%s (a %s) cannot be read as a numpy array: %s"
                        % (name, type(value).__name__, exc)) from exc


def _float_array(name, value, shape=None, ndim=None, layout=""):
    """value checked to be a float32, aligned, C-contiguous array of shape (or ndim)."""
    array = _to_ndarray(name, value)
    if array.dtype != np.float32:
        raise TypeError("%s has dtype %s; liblstm computes in float32 (native byte order): "
                        "pass %s.astype(np.float32)" % (name, array.dtype, name))
    if ndim is not None and array.ndim != ndim:
        raise ValueError("%s has %d dimensions (shape %s); it must have %d dimensions%s"
                         % (name, array.ndim, array.shape, ndim, layout))
    if shape is not None and array.shape != tuple(shape):
        raise ValueError("%s has shape %s; it must be %s%s"
                         % (name, array.shape, tuple(shape), layout))
    if not array.flags.c_contiguous:
        raise ValueError("%s is not C-contiguous (a transposed or strided view); pass "
                         "np.ascontiguousarray(%s)" % (name, name))
    if not array.flags.aligned:
        raise ValueError("%s is not aligned for float32; pass a copy" % name)
    return array


def _layout(batch_first):
    """The lstm_layout of a call's batch_first argument: None keeps the
    model's configuration (LSTM_LAYOUT_MODEL), True and False override it
    for the call. TypeError for anything but None or a bool."""
    if batch_first is None:
        return _ffi.LAYOUT_MODEL
    if not isinstance(batch_first, (bool, np.bool_)):
        raise TypeError("batch_first is %r; it must be None (the model's layout), True or False"
                        % (batch_first,))
    return _ffi.LAYOUT_BATCH_MAJOR if batch_first else _ffi.LAYOUT_TIME_MAJOR


def _sequences(seq_len, batch, batch_first, lengths):
    """The lstm_sequences of a call; lengths is _lengths_array()'s array or
    None, and must outlive the call."""
    return _ffi.LstmSequences(steps=seq_len, batch=batch, layout=_layout(batch_first),
                              lengths=_ptr(lengths))


def _lengths_array(lengths, batch, seq_len):
    """B sequence lengths as a C size_t array (a small copy), or None."""
    if lengths is None:
        return None
    if hasattr(lengths, "detach"):
        lengths = lengths.detach().cpu()
    array = np.asarray(lengths)
    if array.dtype.kind not in "iu":
        raise TypeError("lengths has dtype %s; it must be integers" % array.dtype)
    if array.shape != (batch,):
        raise ValueError("lengths has shape %s; it must be (%d,), one length per sequence"
                         % (array.shape, batch))
    if array.size and (array.min() < 1 or array.max() > seq_len):
        raise ValueError("lengths must be in [1, %d] (the sequence length); they are in [%d, %d]"
                         % (seq_len, array.min(), array.max()))
    return np.ascontiguousarray(array, dtype=np.uintp)


# The C types of the integers passed to the library: (name, bits).
_SIZE_T = ("size_t", 8 * ctypes.sizeof(ctypes.c_size_t))
_UINT32 = ("uint32_t", 32)
_UINT64 = ("uint64_t", 64)


def _int_arg(name, value, ctype=_SIZE_T, minimum=0):
    """value as an int in [minimum, 2**bits - 1], the range of the unsigned C
    type it is passed as (_SIZE_T, _UINT32, _UINT64). Every integer argument
    comes through here, since ctypes would pass one out of range modulo
    2**bits without a word (LSTM(2**64 + 4, 8) was LSTM(4, 8)). TypeError
    for a non-integer (a bool included); ValueError, naming the argument and
    the range, for one outside it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError("%s is %r; it must be an integer" % (name, value))
    value = int(value)
    type_name, bits = ctype
    if not minimum <= value < 1 << bits:
        raise ValueError("%s is %d; it must be in [%d, 2**%d - 1] (%s)"
                         % (name, value, minimum, bits, type_name))
    return value


def _path_arg(path):
    """A path (str, bytes or os.PathLike) as the bytes of a C string. A NUL
    would end the C string early, so that the library wrote or read the
    prefix: ValueError, as open() raises."""
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise ValueError("path %r has an embedded null byte" % (path,))
    return encoded


def _tensor_name(kind, layer, direction):
    return "%s_l%d%s" % (_KIND_PREFIXES[kind], layer, "_reverse" if direction else "")


def _numpy_value(name, value):
    """A state-dict value (numpy array, torch tensor, nested list) as float64 numpy."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise TypeError("%s has dtype %s; it must be real numbers" % (name, array.dtype))
    return array.astype(np.float64, copy=False)


_IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys",
                                                                "unexpected_keys"])


class _ModelHandles:
    """Owns the C model and its workspace. Views of the parameter and
    gradient buffers hold a reference to this object, so the buffers live as
    long as any view does (and the model holds no view of itself: no cycle).

    lock is the model's (LSTM._lock): every call through this package that
    reads or writes the parameters or gradients, or uses the workspace,
    holds it. It lives here, not on the LSTM, because optimizers find
    models through views of their parameters (_owner_handles) too.

    epoch is renewed (touch()) whenever parameters may be written behind the
    library's back: a view handed out, an optimizer step through
    lstm_optim_add_buffer. A workspace or state that keeps the packed
    weights and saw another epoch is told to pack again (see _KeptWeights)."""

    __slots__ = ("model", "workspace", "epoch", "lock", "precision", "_lib", "__weakref__")

    def __init__(self, model):
        self._lib = _lib
        self.model = model
        self.workspace = None
        self.epoch = next(_EPOCHS)
        self.lock = threading.RLock()
        self.precision = "fp32"  # the workspace's, as last set (_set_precision)

    def touch(self):
        self.epoch = next(_EPOCHS)

    def __del__(self):
        if self.workspace:
            self._lib.lstm_workspace_destroy(self.workspace)
            self.workspace = None
        if self.model:
            self._lib.lstm_model_destroy(self.model)
            self.model = None


def _view(handles, address, count):
    """A writable float32 numpy view of count floats at address, keeping handles alive."""
    buffer = (ctypes.c_float * count).from_address(address)
    buffer.owner = handles
    return np.ctypeslib.as_array(buffer)


def _owner_handles(array):
    """The _ModelHandles whose buffer the numpy array views (through _view),
    or None: how an optimizer finds a model behind a (param, grad) pair."""
    base = array
    while base is not None:
        if isinstance(base, memoryview):
            base = base.obj
            continue
        owner = getattr(base, "owner", None)  # set on the ctypes buffer by _view
        if isinstance(owner, _ModelHandles):
            return owner
        base = getattr(base, "base", None)
    return None


def _set_precision(name, handle, current, wanted):
    """Set a workspace's or a state's precision (name:
    lstm_workspace_set_precision or lstm_state_set_precision) to wanted
    (a checked name) unless it is current already; returns wanted. A
    library older than 0.7.0 runs float32 only: LSTMError E_UNSUPPORTED
    for another precision."""
    if wanted == current:
        return current
    function = _ffi.optional(name)
    if function is None:
        raise _ffi.unsupported(name, _ffi.QUANTIZED_RELEASE)
    check(function(handle, _ffi.PRECISIONS[wanted]), name)
    return wanted


def _check_precision(precision, name="precision"):
    """precision, checked to be 'fp32', 'bf16' or 'int8' (ValueError otherwise)."""
    _ffi.precision_value(precision, name)
    return precision


def _workspace_precision(precision):
    """precision, checked (_check_precision()) and runnable by the loaded
    library: a workspace's precision is set at each eval-mode call
    (_set_precision()), so a library older than 0.7.0 is refused here
    already, with LSTMError E_UNSUPPORTED, for "bf16" and "int8"."""
    _check_precision(precision)
    if precision != "fp32" and _ffi.optional("lstm_workspace_set_precision") is None:
        raise _ffi.unsupported("lstm_workspace_set_precision", _ffi.QUANTIZED_RELEASE)
    return precision


def _set_training_precision(workspace, current, precision):
    """Set a workspace's training precision
    (lstm_workspace_set_training_precision) to precision unless it is
    current already; returns precision. ValueError for anything but "fp32"
    and "bf16" ("int8" is for inference only). The library drops a training
    forward held when the precision changes, so the backward that follows
    raises LSTMError E_STATE. A library older than 0.8.0 trains in float32
    only: LSTMError E_UNSUPPORTED for "bf16"."""
    _ffi.training_precision_value(precision)
    if precision == current:
        return current
    name = "lstm_workspace_set_training_precision"
    function = _ffi.optional(name)
    if function is None:
        raise _ffi.unsupported(name, _ffi.TRAINING_PRECISION_RELEASE)
    check(function(workspace, _ffi.PRECISIONS[precision]), name)
    return precision


def _training_mode_precision(precision, kind):
    """The ValueError for a reduced precision= on a training-mode call of
    an LSTM or a Network (kind: "model" or "network")."""
    return ValueError("precision=%r in training mode: a call's precision is that of inference; "
                      "training runs in %s.training_precision (%s.set_training_precision('bf16')),"
                      " or call %s.eval() first" % (precision, kind, kind, kind))


def _save_quantized(name, handle, precision, path):
    """lstm_model_save_quantized or lstm_network_save_quantized (name) of a
    handle to path."""
    function = _ffi.optional(name)
    if function is None:
        raise _ffi.unsupported(name, _ffi.QUANTIZED_RELEASE)
    check(function(handle, _ffi.PRECISIONS[precision], _path_arg(path)), name)


def _dumps_quantized(name, handle, precision):
    """The bytes lstm_model_save_quantized_buffer or
    lstm_network_save_quantized_buffer (name) gives for a handle."""
    function = _ffi.optional(name)
    if function is None:
        raise _ffi.unsupported(name, _ffi.QUANTIZED_RELEASE)
    value = _ffi.PRECISIONS[precision]
    size = ctypes.c_size_t()
    check(function(handle, value, None, 0, ctypes.byref(size)), name)
    buffer = ctypes.create_string_buffer(size.value)
    check(function(handle, value, buffer, size.value, ctypes.byref(size)), name)
    return buffer.raw[:size.value]


def _file_precision(precision, optimizer):
    """precision checked for a save; a quantized file holds no optimizer."""
    _check_precision(precision)
    if precision != "fp32" and optimizer is not None:
        raise ValueError("a quantized file (precision %r) holds no optimizer state; save "
                         "the optimizer in a float32 file" % precision)
    return precision


class _KeptWeights:
    """The keep_weights() setting of a workspace or a state: whether it keeps
    the packed weights, and the parameters' epoch (_ModelHandles.epoch) it
    last told the library to keep them for."""

    __slots__ = ("name", "keep", "epoch")

    def __init__(self, name):
        self.name = name  # lstm_workspace_keep_weights or lstm_state_keep_weights
        self.keep = False
        self.epoch = None

    def set(self, handle, keep, epoch):
        check(getattr(_lib, self.name)(handle, 1 if keep else 0), self.name)
        self.keep = bool(keep)
        self.epoch = epoch

    def before_call(self, handle, epoch):
        """Before a call: when keeping, pack again if the epoch changed since
        (a view went out, an optimizer stepped, or another model runs;
        epochs are unique)."""
        if self.keep and self.epoch != epoch:
            self.set(handle, True, epoch)


class LSTM:
    """A liblstm LSTM network with torch.nn.LSTM's constructor and call.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, proj_size=0, *, seed=None, peephole=False)``

    - ``bias=False``: the model keeps its single bias b at zero; optimizers
      made from the model do not bind b (it never changes, weight decay
      included), :meth:`state_dict` and :meth:`grad_dict` have no bias
      entries, and :meth:`load_state_dict` expects none. Write to b through
      :attr:`params` and it is your bias.
    - ``seed``: parameters are drawn as PyTorch draws them, U(-1/sqrt(H),
      1/sqrt(H)), from liblstm's own generator started at seed (the same on
      every platform); None draws a seed from the OS. The same seed also
      starts the dropout masks (:meth:`seed_dropout`).
    - ``peephole=True``: liblstm's peephole connections (PyTorch has none).

    Call: ``output, (h_n, c_n) = model(input, (h_0, c_0), lengths=None,
    batch_first=None)``, all numpy float32 C-contiguous arrays. ``input`` is
    (T, B, I), or (B, T, I) with batch_first; ``output`` is (T, B, D*R) (or
    (B, T, D*R)). The call's ``batch_first`` (a keyword) overrides the
    model's for that call only; None keeps it. h_0, h_n are (L*D, B, R)
    and c_0, c_n (L*D, B, H), with D = 2 when bidirectional and R =
    proj_size or hidden_size. hx, h_0 or c_0 may be
    None for zeros. ``lengths`` (B integers in [1, T]) gives each sequence's
    length, as pack_padded_sequence does; the output is then zero past each
    sequence's end (as pad_packed_sequence with total_length=T gives it) and
    h_n, c_n come from each sequence's own last step.

    Like a torch module the model starts in training mode: the call keeps
    the activations (lstm_model_train_forward) for :meth:`backward`, and
    applies dropout. :meth:`eval` switches to inference
    (lstm_model_infer), which keeps nothing.

    :meth:`keep_weights` makes calls in eval mode reuse the weights packed
    for their products instead of packing them on every call.

    :meth:`set_precision` (or a call's ``precision=``) runs calls in eval
    mode in bfloat16 (``"bf16"``) or int8 (``"int8"``) instead of float32
    (``"fp32"``, the default); ``save(path, precision="int8")`` writes a
    quantized file (liblstm 0.7.0). :meth:`set_training_precision`
    (``"bf16"``) runs the training calls' matrix products in bfloat16 with
    float32 sums, parameters, gradients and optimizer state (liblstm 0.8.0).

    Threads: calls on one model are serialised by a lock (they share the
    model's workspace and parameters), which its states' steps and
    optimizers over it take too; the GIL is released inside the library.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, *, seed=None, peephole=False):
        config = _ffi.LstmConfig()
        check(_lib.lstm_config_init(ctypes.byref(config), ctypes.sizeof(config)),
              "lstm_config_init")
        config.input_size = _int_arg("input_size", input_size)
        config.hidden_size = _int_arg("hidden_size", hidden_size)
        config.num_layers = _int_arg("num_layers", num_layers, minimum=1)
        config.proj_size = _int_arg("proj_size", proj_size)
        config.dropout = float(dropout)
        config.flags = ((_ffi.BIDIRECTIONAL if bidirectional else 0)
                        | (_ffi.BATCH_FIRST if batch_first else 0)
                        | (_ffi.PEEPHOLE if peephole else 0))
        if seed is None:
            seed = secrets.randbits(64)
        seed = _int_arg("seed", seed, _UINT64)
        model = ctypes.c_void_p()
        check(_lib.lstm_model_create(ctypes.byref(config), ctypes.byref(model)),
              "lstm_model_create")
        handles = _ModelHandles(model.value)  # destroys the model if what follows fails
        check(_lib.lstm_model_init(handles.model, seed, 0), "lstm_model_init")
        self._setup(handles, bool(bias), seed)

    # ---- construction shared with load() ------------------------------------

    def _setup(self, handles, bias, seed):
        config = _ffi.LstmConfig()
        check(_lib.lstm_config_init(ctypes.byref(config), ctypes.sizeof(config)),
              "lstm_config_init")
        check(_lib.lstm_model_get_config(handles.model, ctypes.byref(config)),
              "lstm_model_get_config")
        self.input_size = int(config.input_size)
        self.hidden_size = int(config.hidden_size)
        self.num_layers = max(1, int(config.num_layers))
        self.proj_size = int(config.proj_size)
        self.dropout = float(config.dropout)
        self.bidirectional = bool(config.flags & _ffi.BIDIRECTIONAL)
        self.batch_first = bool(config.flags & _ffi.BATCH_FIRST)
        self.peephole = bool(config.flags & _ffi.PEEPHOLE)
        self.bias = bias
        self.training = True
        self._handles = handles
        self._lock = handles.lock
        self._pending = None  # (x shape, batch, state shape) of the training forward held
        self._kept = _KeptWeights("lstm_workspace_keep_weights")  # keep_weights()

        workspace = ctypes.c_void_p()
        check(_lib.lstm_workspace_create(handles.model, ctypes.byref(workspace)),
              "lstm_workspace_create")
        handles.workspace = workspace.value
        check(_lib.lstm_workspace_set_seed(handles.workspace, seed), "lstm_workspace_set_seed")

        # The writable view of the parameters is taken on first need
        # (_writable_params): lstm_model_params tells the library that the
        # parameters may change, which drops the weights a model loaded from
        # a quantized file keeps as the file stored them.
        self._params = None
        self._param_count = int(_lib.lstm_model_param_count(handles.model))
        self._precision = "fp32"  # of inference calls (set_precision)
        self._training_precision = "fp32"  # of training calls (set_training_precision)
        data, count = ctypes.c_void_p(), ctypes.c_size_t()
        check(_lib.lstm_model_grads(handles.model, ctypes.byref(data), ctypes.byref(count)),
              "lstm_model_grads")
        self._grads = _view(handles, data.value, count.value)

        # name -> (layer, direction, kind, offset, rows, cols), in buffer order
        self._tensors = collections.OrderedDict()
        kinds = [_ffi.TENSOR_WEIGHT, _ffi.TENSOR_BIAS]
        if self.proj_size:
            kinds.append(_ffi.TENSOR_PROJECTION)
        if self.peephole:
            kinds.append(_ffi.TENSOR_PEEPHOLE)
        offset, rows, cols = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_size_t()
        for layer in range(self.num_layers):
            for direction in range(self.directions):
                for kind in kinds:
                    check(_lib.lstm_model_tensor(handles.model, layer, direction, kind,
                                                 ctypes.byref(offset), ctypes.byref(rows),
                                                 ctypes.byref(cols)), "lstm_model_tensor")
                    self._tensors[_tensor_name(kind, layer, direction)] = (
                        layer, direction, kind, offset.value, rows.value, cols.value)
        if not bias:
            for name in self._bias_names():
                self.tensor(name)[...] = 0.0

    @classmethod
    def _from_handle(cls, model, bias):
        handles = _ModelHandles(model)
        self = cls.__new__(cls)
        self._setup(handles, True, 0)
        if not bias:
            current = self._params_copy()
            if any(np.any(self._slice(current, name) != 0) for name in self._bias_names()):
                raise ValueError("bias=False, but the model's biases are not zero")
            self.bias = False
        return self

    def _writable_params(self):
        """The writable view of every parameter (lstm_model_params), taken
        once; taking it counts as a change of the parameters (the library
        drops a quantized file's stored weights: see :meth:`save`)."""
        with self._lock:
            if self._params is None:
                data, count = ctypes.c_void_p(), ctypes.c_size_t()
                check(_lib.lstm_model_params(self._handles.model, ctypes.byref(data),
                                             ctypes.byref(count)), "lstm_model_params")
                self._params = _view(self._handles, data.value, count.value)
            return self._params

    def _params_copy(self):
        """A float32 copy of the parameters (lstm_model_get_params), which
        reads them without counting as a change."""
        with self._lock:
            if self._params is not None:
                return self._params.copy()
            out = np.empty(self._param_count, dtype=np.float32)
            check(_lib.lstm_model_get_params(self._handles.model, _ptr(out), out.size),
                  "lstm_model_get_params")
            return out

    # ---- sizes ----------------------------------------------------------------

    @property
    def directions(self):
        """D: 2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def state_size(self):
        """R: proj_size with a projection, else hidden_size."""
        return self.proj_size or self.hidden_size

    def _layer_input(self, layer):
        return self.input_size if layer == 0 else self.directions * self.state_size

    def _bias_names(self):
        return [name for name, entry in self._tensors.items() if entry[2] == _ffi.TENSOR_BIAS]

    def __repr__(self):
        extra = ""
        if self.num_layers != 1:
            extra += ", num_layers=%d" % self.num_layers
        for key, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                             ("bidirectional", False), ("proj_size", 0), ("peephole", False)):
            value = getattr(self, key)
            if value != default:
                extra += ", %s=%r" % (key, value)
        return "lstm.LSTM(%d, %d%s)" % (self.input_size, self.hidden_size, extra)

    # ---- modes ------------------------------------------------------------------

    def train(self, mode=True):
        """Training mode (the default): calls keep activations for backward()
        and apply dropout. Returns self."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Inference mode: calls use lstm_model_infer. Returns self."""
        return self.train(False)

    # ---- forward and backward -------------------------------------------------

    def _states(self, hx, batch, prefix):
        """(h, c) arrays checked against (L*D, B, R) and (L*D, B, H); each may be None."""
        if hx is None:
            return None, None
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("%s must be a pair (h, c) (either may be None), not %s"
                            % (prefix, type(hx).__name__))
        LD = self.num_layers * self.directions
        h, c = hx
        if h is not None:
            h = _float_array(prefix + "[0]", h, (LD, batch, self.state_size),
                             layout=" = (num_layers * directions, batch, %s)"
                             % ("proj_size" if self.proj_size else "hidden_size"))
        if c is not None:
            c = _float_array(prefix + "[1]", c, (LD, batch, self.hidden_size),
                             layout=" = (num_layers * directions, batch, hidden_size)")
        return h, c

    def _input(self, input, name="input", batch_first=None):
        """(x, seq_len, batch) of a call's input, in the call's layout: the
        model's when batch_first is None."""
        _layout(batch_first)  # TypeError for anything but None or a bool
        if batch_first is None:
            batch_first = self.batch_first
        layout = " (batch, seq_len, input_size)" if batch_first else \
            " (seq_len, batch, input_size)"
        x = _float_array(name, input, ndim=3, layout=layout)
        if x.shape[2] != self.input_size:
            raise ValueError("%s has shape %s; its last dimension must be input_size %d"
                             % (name, x.shape, self.input_size))
        if batch_first:
            batch, seq_len = x.shape[0], x.shape[1]
        else:
            seq_len, batch = x.shape[0], x.shape[1]
        return x, seq_len, batch

    def forward(self, input, hx=None, lengths=None, *, batch_first=None, precision=None):
        """``output, (h_n, c_n) = model.forward(input, (h_0, c_0), lengths,
        batch_first=None, precision=None)``.

        See the class documentation for shapes. ``batch_first`` True or
        False lays out input and output (and, in training mode, the
        gradients of the :meth:`backward` that follows) as (B, T, ...) or
        (T, B, ...) for this call, whatever the model's configuration;
        None keeps the model's. In training mode the activations are kept
        for one :meth:`backward`. ``precision`` ("fp32", "bf16", "int8")
        overrides :attr:`precision` for this call, in eval mode only
        (training-mode calls run in :attr:`training_precision`).
        """
        if precision is not None:
            _check_precision(precision)
            if self.training and precision != "fp32":
                raise _training_mode_precision(precision, "model")
        else:
            precision = self._precision
        x, seq_len, batch = self._input(input, batch_first=batch_first)
        lens = _lengths_array(lengths, batch, seq_len)
        h0, c0 = self._states(hx, batch, "hx")
        LD = self.num_layers * self.directions
        y = np.empty(x.shape[:2] + (self.directions * self.state_size,), dtype=np.float32)
        h_n = np.empty((LD, batch, self.state_size), dtype=np.float32)
        c_n = np.empty((LD, batch, self.hidden_size), dtype=np.float32)
        sequences = _sequences(seq_len, batch, batch_first, lens)
        inputs = _ffi.LstmInputs(x=_ptr(x), h0=_ptr(h0), c0=_ptr(c0))
        outputs = _ffi.LstmOutputs(y=_ptr(y), hT=_ptr(h_n), cT=_ptr(c_n))
        training = self.training
        name = "lstm_model_train_forward" if training else "lstm_model_infer"
        function = getattr(_lib, name)
        with self._lock:
            self._pending = None  # any forward ends the training state held
            if not training:
                self._handles.precision = _set_precision(
                    "lstm_workspace_set_precision", self._handles.workspace,
                    self._handles.precision, precision)
                self._kept.before_call(self._handles.workspace, self._handles.epoch)
            check(function(self._handles.model, self._handles.workspace,
                           ctypes.byref(sequences), ctypes.byref(inputs),
                           ctypes.byref(outputs)), name)
            if training:
                self._pending = (x.shape, y.shape, h_n.shape, c_n.shape)
        return y, (h_n, c_n)

    __call__ = forward

    def backward(self, d_output=None, d_state=None):
        """Backpropagation through time for the last training forward.

        ``d_input, (d_h0, d_c0) = model.backward(d_output, (d_h_n, d_c_n))``

        d_output has the output's shape (and layout: that of the forward
        call, batch_first override included), d_h_n and d_c_n those of h_n
        and c_n; each (and d_state) may be None for zeros. d_input has the
        input's shape. Parameter gradients are added to :attr:`grads` (call
        :meth:`zero_grad` to start again); d_input, d_h0 and d_c0 are new
        arrays (d_input is zero past each sequence's end). Each backward
        consumes its forward: a second one raises LSTMError(E_STATE).
        """
        with self._lock:
            if self._pending is None:
                raise LSTMError(Status.E_STATE,
                                "backward() needs a forward call in training mode first "
                                "(model.train(); model(x)), and each forward serves one "
                                "backward", _lib.lstm_strerror(Status.E_STATE).decode(),
                                "LSTM.backward")
            x_shape, y_shape, h_shape, c_shape = self._pending
            dy = None if d_output is None else _float_array("d_output", d_output, y_shape)
            dh_n, dc_n = None, None
            if d_state is not None:
                if not isinstance(d_state, (tuple, list)) or len(d_state) != 2:
                    raise TypeError("d_state must be a pair (d_h_n, d_c_n) (either may be "
                                    "None), not %s" % type(d_state).__name__)
                if d_state[0] is not None:
                    dh_n = _float_array("d_state[0]", d_state[0], h_shape)
                if d_state[1] is not None:
                    dc_n = _float_array("d_state[1]", d_state[1], c_shape)
            dx = np.empty(x_shape, dtype=np.float32)
            dh0 = np.empty(h_shape, dtype=np.float32)
            dc0 = np.empty(c_shape, dtype=np.float32)
            output_grads = _ffi.LstmOutputGrads(dy=_ptr(dy), dhT=_ptr(dh_n), dcT=_ptr(dc_n))
            input_grads = _ffi.LstmInputGrads(dx=_ptr(dx), dh0=_ptr(dh0), dc0=_ptr(dc0))
            check(_lib.lstm_model_train_backward(self._handles.model, self._handles.workspace,
                                                 ctypes.byref(output_grads),
                                                 ctypes.byref(input_grads)),
                  "lstm_model_train_backward")
            self._pending = None
        return dx, (dh0, dc0)

    def forward_chunk(self, input, state, *, lengths=None, batch_first=None):
        """Truncated BPTT: run the next chunk of a long series from a
        :class:`State` (unidirectional models) and leave the state at the
        chunk's end. In training mode (lstm_model_train_chunk) the
        following :meth:`backward` stops at the chunk's first step (pass no
        d_state); in eval mode this is ``state.run(input, lengths=lengths,
        batch_first=batch_first)``. ``lengths`` and ``batch_first`` are
        those of :meth:`State.run`. Returns output."""
        if not isinstance(state, State):
            raise TypeError("state must be an lstm.State (model.stream_state(batch))")
        if not self.training:
            return state.run(input, model=self, lengths=lengths, batch_first=batch_first)
        x, seq_len, batch = self._input(input, batch_first=batch_first)
        if batch != state.batch:
            raise ValueError("input has batch %d; the state was made for batch %d"
                             % (batch, state.batch))
        lens = _lengths_array(lengths, batch, seq_len)
        y = np.empty(x.shape[:2] + (self.state_size,), dtype=np.float32)
        sequences = _sequences(seq_len, batch, batch_first, lens)
        inputs = _ffi.LstmInputs(x=_ptr(x))  # h0 and c0 come from the state
        outputs = _ffi.LstmOutputs(y=_ptr(y))
        with self._lock:
            self._pending = None
            check(_lib.lstm_model_train_chunk(self._handles.model, self._handles.workspace,
                                              state._handle.state, ctypes.byref(sequences),
                                              ctypes.byref(inputs), ctypes.byref(outputs)),
                  "lstm_model_train_chunk")
            self._pending = (x.shape, y.shape, (self.num_layers, batch, self.state_size),
                             (self.num_layers, batch, self.hidden_size))
        return y

    # ---- parameters and gradients ----------------------------------------------

    @property
    def params(self):
        """The whole parameter buffer, a writable flat float32 view
        (lstm_model_params; layout in include/lstm/model.h). It stays valid
        while the view lives (it keeps the C model alive). Taking it makes
        calls that keep their weights (:meth:`keep_weights`) pack them
        again; writes through a view taken before such a call are not
        seen by the later ones."""
        params = self._writable_params()
        self._handles.touch()
        return params

    @property
    def grads(self):
        """The whole gradient buffer, a writable flat float32 view, same
        layout as :attr:`params` (lstm_model_grads)."""
        return self._grads

    @property
    def param_count(self):
        return self._param_count

    def tensor_names(self):
        """liblstm's tensor names in buffer order: weight_l0, bias_l0,
        projection_l0, peephole_l0, weight_l0_reverse, ... (as lstm.convert)."""
        return list(self._tensors)

    def _tensor_entry(self, name):
        try:
            return self._tensors[name]
        except KeyError:
            raise KeyError("the model has no tensor %r; it has %s"
                           % (name, ", ".join(self._tensors))) from None

    def tensor(self, name):
        """A writable 2-D view of one tensor in :attr:`params` (lstm_model_tensor):
        weight_l{l} is W = [weight_hh | weight_ih] (4H x (R + I_l)), bias_l{l}
        is b (4H x 1), projection_l{l} is W_hr (P x H), peephole_l{l} is
        [p_i; p_f; p_o] (3 x H), with "_reverse" for the second direction.
        Taking it counts as a change of the parameters, as for :attr:`params`."""
        _, _, _, offset, rows, cols = self._tensor_entry(name)
        params = self._writable_params()
        self._handles.touch()
        return params[offset: offset + rows * cols].reshape(rows, cols)

    def tensor_grad(self, name):
        """The same view of the tensor's gradient in :attr:`grads`."""
        _, _, _, offset, rows, cols = self._tensor_entry(name)
        return self._grads[offset: offset + rows * cols].reshape(rows, cols)

    def named_parameters(self):
        """(name, view) of every tensor, liblstm's names (see :meth:`tensor`)."""
        return [(name, self.tensor(name)) for name in self._tensors]

    def zero_grad(self):
        """Set every accumulated gradient to zero (lstm_model_zero_grads)."""
        with self._lock:
            check(_lib.lstm_model_zero_grads(self._handles.model), "lstm_model_zero_grads")

    def _torch_dict(self, buffer, gradients):
        R = self.state_size
        out = collections.OrderedDict()
        for layer in range(self.num_layers):
            for direction in range(self.directions):
                suffix = "_l%d%s" % (layer, "_reverse" if direction else "")
                weight = self._slice(buffer, "weight" + suffix)
                out["weight_ih" + suffix] = weight[:, R:].copy()
                out["weight_hh" + suffix] = weight[:, :R].copy()
                if self.bias:
                    bias = self._slice(buffer, "bias" + suffix).reshape(-1)
                    out["bias_ih" + suffix] = bias.copy()
                    out["bias_hh" + suffix] = bias.copy() if gradients else np.zeros_like(bias)
                if self.proj_size:
                    out["weight_hr" + suffix] = self._slice(buffer, "projection" + suffix).copy()
                if self.peephole:
                    out["peephole" + suffix] = self._slice(buffer, "peephole" + suffix).copy()
        return out

    def _slice(self, buffer, name):
        _, _, _, offset, rows, cols = self._tensors[name]
        return buffer[offset: offset + rows * cols].reshape(rows, cols)

    def state_dict(self):
        """The parameters with torch.nn.LSTM's names and shapes, as float32
        copies: weight_ih_l{l}, weight_hh_l{l}, bias_ih_l{l}, bias_hh_l{l},
        weight_hr_l{l} (proj_size), with "_reverse" for the reverse
        direction, in PyTorch's order; peephole_l{l} (3 x H) with peepholes.

        liblstm has one bias b = bias_ih + bias_hh: it is returned as
        bias_ih = b and bias_hh = 0, whose sum is exact. So
        ``torch_lstm.load_state_dict({k: torch.from_numpy(v) for k, v in
        model.state_dict().items()})`` gives PyTorch the same network."""
        with self._lock:
            return self._torch_dict(self._params_copy(), gradients=False)

    def grad_dict(self):
        """The accumulated gradients, keyed and shaped as :meth:`state_dict`:
        what ``{name: p.grad for name, p in torch_lstm.named_parameters()}``
        holds after the same backward. Both bias_ih and bias_hh get db (in
        PyTorch each has the gradient of their sum)."""
        with self._lock:
            return self._torch_dict(self._grads, gradients=True)

    def load_state_dict(self, state_dict, strict=True):
        """Set the parameters from a torch.nn.LSTM state_dict (torch tensors,
        numpy arrays, anything np.asarray converts; any float dtype).

        ``model.load_state_dict(torch_lstm.state_dict())`` moves a PyTorch
        model's weights here: W = [weight_hh | weight_ih], and
        b = bias_ih + bias_hh, summed in float64 and rounded once to float32.
        All or nothing: shapes are checked first, then lstm_model_set_params
        refuses NaN or infinity (LSTMError E_NONFINITE) without changing
        anything. With strict=False missing tensors keep their values and
        unknown keys are ignored; returns (missing_keys, unexpected_keys).
        """
        R = self.state_size
        H4 = 4 * self.hidden_size
        expected = []
        new = self._params_copy()
        values = dict(state_dict)
        missing = []

        def take(key, shape):
            expected.append(key)
            if key not in values:
                missing.append(key)
                return None
            array = _numpy_value(key, values[key])
            if array.shape != shape:
                raise ValueError("%s has shape %s; this model needs %s"
                                 % (key, array.shape, shape))
            return array

        def store(name, array):
            _, _, _, offset, rows, cols = self._tensors[name]
            with np.errstate(over="ignore", invalid="ignore"):
                new[offset: offset + rows * cols] = array.reshape(-1).astype(np.float32)

        for layer in range(self.num_layers):
            for direction in range(self.directions):
                suffix = "_l%d%s" % (layer, "_reverse" if direction else "")
                w_ih = take("weight_ih" + suffix, (H4, self._layer_input(layer)))
                w_hh = take("weight_hh" + suffix, (H4, R))
                weight = self._slice(new, "weight" + suffix)
                if w_hh is not None:
                    with np.errstate(over="ignore", invalid="ignore"):
                        weight[:, :R] = w_hh.astype(np.float32)
                if w_ih is not None:
                    with np.errstate(over="ignore", invalid="ignore"):
                        weight[:, R:] = w_ih.astype(np.float32)
                if self.bias:
                    b_ih = take("bias_ih" + suffix, (H4,))
                    b_hh = take("bias_hh" + suffix, (H4,))
                    if b_ih is not None and b_hh is not None:
                        store("bias" + suffix, b_ih + b_hh)
                    elif (b_ih is None) != (b_hh is None) and not strict:
                        raise ValueError("bias_ih%s and bias_hh%s come together: liblstm "
                                         "keeps their sum" % (suffix, suffix))
                if self.proj_size:
                    w_hr = take("weight_hr" + suffix, (self.proj_size, self.hidden_size))
                    if w_hr is not None:
                        store("projection" + suffix, w_hr)
                if self.peephole:
                    peep = take("peephole" + suffix, (3, self.hidden_size))
                    if peep is not None:
                        store("peephole" + suffix, peep)
        unexpected = sorted(set(values) - set(expected))
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("missing keys: " + ", ".join(missing))
            if unexpected:
                parts.append("unexpected keys: " + ", ".join(unexpected))
            if not self.bias and any(k.startswith("bias_") for k in unexpected):
                parts.append("(this model has bias=False)")
            raise ValueError("the state_dict does not match this model: " + "; ".join(parts))
        with self._lock:
            check(_lib.lstm_model_set_params(self._handles.model, _ptr(new), new.size),
                  "lstm_model_set_params")
        return _IncompatibleKeys(missing, unexpected)

    # ---- workspace ---------------------------------------------------------------

    def _mode(self, train):
        return _ffi.MODE_TRAIN if (self.training if train is None else train) else \
            _ffi.MODE_INFER

    def workspace_size(self, seq_len, batch, train=None):
        """Bytes the workspace needs for a call of this shape (lstm_workspace_size);
        train defaults to the model's mode."""
        size = ctypes.c_size_t()
        check(_lib.lstm_workspace_size(self._handles.model, self._mode(train),
                                       _int_arg("seq_len", seq_len),
                                       _int_arg("batch", batch), ctypes.byref(size)),
              "lstm_workspace_size")
        return size.value

    def reserve(self, seq_len, batch, train=None):
        """Grow the workspace now, so calls up to this shape allocate nothing."""
        with self._lock:
            self._pending = None
            check(_lib.lstm_workspace_reserve(self._handles.workspace, self._mode(train),
                                              _int_arg("seq_len", seq_len),
                                              _int_arg("batch", batch)),
                  "lstm_workspace_reserve")

    def seed_dropout(self, seed):
        """Restart the dropout masks of the training calls that follow from seed."""
        with self._lock:
            check(_lib.lstm_workspace_set_seed(self._handles.workspace,
                                               _int_arg("seed", seed, _UINT64)),
                  "lstm_workspace_set_seed")

    def keep_weights(self, keep=True):
        """Keep the weights packed between calls in eval mode
        (lstm_workspace_keep_weights on the model's workspace). Returns self.

        Each call in eval mode (lstm_model_infer) first packs every
        layer's weights for its products, which costs about as much as one
        step of a batch of a few dozen rows. With keep, the next call packs
        them into memory of the workspace's own (about the size of
        :attr:`params`) and later calls of the same batch size reuse them
        while the parameters stay the same. Outputs are the same to the bit
        either way. keep=False, the default, packs on every call and frees
        that memory. Training calls neither use nor disturb it; streams
        have :meth:`State.keep_weights`.

        Parameter changes made through this package are noticed:
        :meth:`load_state_dict`, an optimizer step, and writes through a
        view from :attr:`params`, :meth:`tensor` or
        :meth:`named_parameters` taken since the last call (taking one
        counts as a change: ``model.tensor("weight_l0")[...] = w`` is
        seen). A view kept from before a call and written after it is not:
        call ``keep_weights(True)`` again after writing through it.
        """
        with self._lock:
            self._kept.set(self._handles.workspace, keep, self._handles.epoch)
        return self

    @property
    def precision(self):
        """The precision of calls in eval mode: "fp32" (the default),
        "bf16" or "int8" (see :meth:`set_precision`)."""
        return self._precision

    @precision.setter
    def precision(self, value):
        self.set_precision(value)

    def set_precision(self, precision):
        """Run the calls in eval mode (lstm_model_infer) in ``precision``:
        "fp32" (float32, the default), "bf16" (bfloat16 weights and
        inputs of the matrix products, sums in float32) or "int8" (weights
        quantized per row, each product's input per row at every step,
        sums in int32); the cells, states and biases stay float32
        (lstm_workspace_set_precision). Returns self.

        Training calls run in :attr:`training_precision` instead
        (:meth:`set_training_precision`). A model loaded from a
        quantized file (:meth:`save` with ``precision``) runs its weights
        as the file stores them when it runs in the file's precision, and
        their float32 values (q s, or the bf16 values) in the others.
        ValueError for another name; LSTMError E_UNSUPPORTED for "bf16" or
        "int8" with a liblstm older than 0.7.0.
        """
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

    def set_training_precision(self, precision: str) -> "LSTM":
        """Run the training calls (a training-mode call, :meth:`forward_chunk`
        and :meth:`backward`) in ``precision``: "fp32" (float32, the
        default) or "bf16", mixed precision: every matrix product of the
        forward and backward passes rounds its two operands to bfloat16
        and sums in float32; the parameters, their gradients, the
        optimizers' state, the biases and the cells stay float32
        (lstm_workspace_set_training_precision). Returns self.

        Calls in eval mode keep their own precision (:meth:`set_precision`).
        A change drops the training forward held: the :meth:`backward`
        that follows raises LSTMError E_STATE (setting the current
        precision again changes nothing). ValueError for "int8" (for
        inference only) and any other name; LSTMError E_UNSUPPORTED for
        "bf16" with a liblstm older than 0.8.0.
        """
        with self._lock:
            self._training_precision = _set_training_precision(
                self._handles.workspace, self._training_precision, precision)
        return self

    # ---- streams -------------------------------------------------------------------

    def stream_state(self, batch, *, precision="fp32"):
        """A :class:`State` for running batch streams a step or a chunk at a
        time (unidirectional models; LSTMError E_ARG otherwise), in
        ``precision`` (see :meth:`State.set_precision`)."""
        return State(self, batch, precision=precision)

    # ---- files ---------------------------------------------------------------------

    def save(self, path, optimizer=None, *, precision="fp32"):
        """Save to a model file (lstm_model_save: atomic, checksummed), with the
        optimizer's state when one is given.

        ``precision`` "bf16" or "int8" writes a quantized file for
        inference in that precision (lstm_model_save_quantized, format
        1.2): W and W_hr as that precision runs them (bf16 values, or int8
        with one float32 scale per row), about 2x or 4x smaller; biases and
        peepholes in float32; never an optimizer. :func:`load` reads it
        back; the loaded model, run in that precision, gives the bits this
        one gives in it. Needs liblstm 0.7.0.
        """
        _file_precision(precision, optimizer)
        with self._lock:
            if precision != "fp32":
                _save_quantized("lstm_model_save_quantized", self._handles.model, precision,
                                path)
                return
            check(_lib.lstm_model_save(self._handles.model, _optim_handle(optimizer),
                                       _path_arg(path)), "lstm_model_save")

    def dumps(self, optimizer=None, *, precision="fp32"):
        """The bytes of a model file (lstm_model_save_buffer; with a
        ``precision``, lstm_model_save_quantized_buffer, as :meth:`save`)."""
        _file_precision(precision, optimizer)
        if precision != "fp32":
            with self._lock:
                return _dumps_quantized("lstm_model_save_quantized_buffer",
                                        self._handles.model, precision)
        size = ctypes.c_size_t()
        with self._lock:
            handle = _optim_handle(optimizer)
            check(_lib.lstm_model_save_buffer(self._handles.model, handle, None, 0,
                                              ctypes.byref(size)), "lstm_model_save_buffer")
            buffer = ctypes.create_string_buffer(size.value)
            check(_lib.lstm_model_save_buffer(self._handles.model, handle, buffer, size.value,
                                              ctypes.byref(size)), "lstm_model_save_buffer")
        return buffer.raw[:size.value]

    def __reduce__(self):
        return (_restore, (self.dumps(), self.bias, self.training, self._kept.keep,
                           self._precision, self._training_precision))


def _restore(data, bias, training, keep=False, precision="fp32", training_precision="fp32"):
    model = loads(data, bias=bias).train(training)
    if precision != "fp32":
        model.set_precision(precision)
    if training_precision != "fp32":
        model.set_training_precision(training_precision)
    return model.keep_weights() if keep else model


def _optim_handle(optimizer):
    if optimizer is None:
        return None
    handle = getattr(optimizer, "_handle", None)
    if handle is None or not getattr(handle, "optim", None):
        raise TypeError("optimizer must be an lstm.optim optimizer, not %s"
                        % type(optimizer).__name__)
    return handle.optim


def load(path, *, bias=True):
    """A new :class:`LSTM` from a model file (lstm_model_load), in training
    mode. Files do not record bias=False; pass it to get such a model back
    (its biases must be zero). An optimizer's state in the file is restored
    with ``optimizer.load(path)`` once the optimizer is bound to this model.
    A quantized file (format 1.2) loads too: its weights run as stored in
    the file's precision (``model.eval().set_precision("int8")``), and as
    their float32 values otherwise."""
    model = ctypes.c_void_p()
    check(_lib.lstm_model_load(_path_arg(path), ctypes.byref(model)), "lstm_model_load")
    return LSTM._from_handle(model.value, bias)


def loads(data, *, bias=True):
    """A new :class:`LSTM` from a model file's bytes (lstm_model_load_buffer)."""
    data = bytes(data)
    model = ctypes.c_void_p()
    check(_lib.lstm_model_load_buffer(data, len(data), ctypes.byref(model)),
          "lstm_model_load_buffer")
    return LSTM._from_handle(model.value, bias)


class _StateHandle:
    __slots__ = ("state", "_lib")

    def __init__(self, state):
        self._lib = _lib
        self.state = state

    def __del__(self):
        if self.state:
            self._lib.lstm_state_destroy(self.state)
            self.state = None


class State:
    """The h and c of batch streams, for running a unidirectional model a
    step (:meth:`step`) or a chunk (:meth:`run`) at a time: chunk by chunk
    gives, bit for bit, what one whole-sequence call in eval mode gives.
    Made by ``model.stream_state(batch)``; starts at zero. Runs the model's
    current parameters (inference, no dropout), whatever its mode, under
    the model's lock. One thread at a time per state. :meth:`keep_weights`
    makes its calls reuse the packed weights; ``precision`` (or
    :meth:`set_precision`) runs them in bf16 or int8."""

    def __init__(self, model, batch, *, precision="fp32"):
        if not isinstance(model, LSTM):
            raise TypeError("model must be an lstm.LSTM")
        self.batch = _int_arg("batch", batch)
        self.model = model
        state = ctypes.c_void_p()
        check(_lib.lstm_state_create(model._handles.model, self.batch, ctypes.byref(state)),
              "lstm_state_create")
        self._handle = _StateHandle(state.value)
        self._kept = _KeptWeights("lstm_state_keep_weights")  # keep_weights()
        self._precision = "fp32"
        self.set_precision(precision)

    @property
    def precision(self):
        """The precision of this state's calls: "fp32", "bf16" or "int8"."""
        return self._precision

    @precision.setter
    def precision(self, value):
        self.set_precision(value)

    def set_precision(self, precision):
        """Run :meth:`step` and :meth:`run` in ``precision`` ("fp32",
        "bf16", "int8"; lstm_state_set_precision), as
        :meth:`LSTM.set_precision` does whole calls. A stream run chunk by
        chunk in a precision gives, bit for bit, what one whole call in it
        gives. Returns self."""
        self._precision = _set_precision("lstm_state_set_precision", self._handle.state,
                                         self._precision, _check_precision(precision))
        return self

    def __repr__(self):
        return "lstm.State(batch=%d, model=%r)" % (self.batch, self.model)

    def keep_weights(self, keep=True):
        """Keep the model's weights packed between :meth:`step` and
        :meth:`run` calls (lstm_state_keep_weights). Returns self.

        What :meth:`LSTM.keep_weights` does for whole calls, under the same
        rules: the same outputs to the bit, memory of about the size of the
        parameters held by the state, parameter changes through this
        package noticed (a view kept from before a call and written after
        it is not: call keep_weights(True) again). Each call packs the
        weights first, which at small batches costs more than the step
        itself, so this pays most when stepping one stream at a time.
        """
        self._kept.set(self._handle.state, keep, self.model._handles.epoch)
        return self

    def step(self, x_t):
        """One step of every stream: x_t (B, I) -> y_t (B, R), the last layer's h_t."""
        model = self.model
        x = _float_array("x_t", x_t, (self.batch, model.input_size),
                         layout=" = (batch, input_size)")
        y = np.empty((self.batch, model.state_size), dtype=np.float32)
        # The model's lock: the library reads its parameters throughout the
        # call, and load_state_dict or an optimizer step in another thread
        # must not change them halfway (outputs of neither the old weights
        # nor the new).
        with model._lock:
            self._kept.before_call(self._handle.state, model._handles.epoch)
            check(_lib.lstm_model_step(model._handles.model, self._handle.state, _ptr(x),
                                       _ptr(y)), "lstm_model_step")
        return y

    def run(self, x, model=None, *, lengths=None, batch_first=None):
        """A chunk of steps (lstm_model_infer_stream): x (T, B, I), or
        (B, T, I) with batch_first -> output (T, B, R) (or (B, T, R)). The
        state moves to the chunk's end.

        ``lengths`` (B integers in [1, T]) makes each stream run its own
        number of steps in this chunk: its output is zero past them and its
        h and c are taken at its own last step, so the next chunk continues
        from there. ``batch_first`` True or False lays out x and the output
        for this call, whatever the model's configuration; None (the
        default) keeps the model's.
        """
        model = self.model if model is None else model
        x, seq_len, batch = model._input(x, "x", batch_first)
        if batch != self.batch:
            raise ValueError("x has batch %d; the state was made for batch %d"
                             % (batch, self.batch))
        lens = _lengths_array(lengths, batch, seq_len)
        y = np.empty(x.shape[:2] + (model.state_size,), dtype=np.float32)
        sequences = _sequences(seq_len, batch, batch_first, lens)
        inputs = _ffi.LstmInputs(x=_ptr(x))  # h0 and c0 come from the state
        outputs = _ffi.LstmOutputs(y=_ptr(y))
        with model._lock:  # as in step()
            self._kept.before_call(self._handle.state, model._handles.epoch)
            check(_lib.lstm_model_infer_stream(model._handles.model, self._handle.state,
                                               ctypes.byref(sequences), ctypes.byref(inputs),
                                               ctypes.byref(outputs)),
                  "lstm_model_infer_stream")
        return y

    def reset(self):
        """Every stream back to h = c = 0."""
        check(_lib.lstm_state_reset(self._handle.state), "lstm_state_reset")

    @property
    def h(self):
        """A copy of h, (num_layers, B, R). Assign an array (or None for zeros) to set it."""
        out = np.empty((self.model.num_layers, self.batch, self.model.state_size), np.float32)
        check(_lib.lstm_state_get(self._handle.state, _ptr(out), None), "lstm_state_get")
        return out

    @property
    def c(self):
        """A copy of c, (num_layers, B, H). Assign an array (or None for zeros) to set it."""
        out = np.empty((self.model.num_layers, self.batch, self.model.hidden_size), np.float32)
        check(_lib.lstm_state_get(self._handle.state, None, _ptr(out)), "lstm_state_get")
        return out

    def set(self, h=None, c=None):
        """Replace h (num_layers, B, R) and c (num_layers, B, H); None means zeros."""
        model = self.model
        if h is not None:
            h = _float_array("h", h, (model.num_layers, self.batch, model.state_size))
        if c is not None:
            c = _float_array("c", c, (model.num_layers, self.batch, model.hidden_size))
        check(_lib.lstm_state_set(self._handle.state, _ptr(h), _ptr(c)), "lstm_state_set")

    @h.setter
    def h(self, value):
        self.set(value, self.c)

    @c.setter
    def c(self, value):
        self.set(self.h, value)
