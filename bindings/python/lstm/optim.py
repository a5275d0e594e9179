"""Optimizers with torch.optim's names, arguments and update rules (liblstm's
lstm/optim.h): SGD, Adagrad, RMSprop, Adam, AdamW; gradient clipping; the
StepLR and CosineAnnealingLR schedules.

An optimizer is made from what it updates, ``params``:

- an :class:`lstm.Network`: every part's parameters (lstm_optim_add_network);
- an :class:`lstm.LSTM`: all its parameters (lstm_optim_add_model), or,
  for a model made with ``bias=False``, every tensor but its bias b, so b
  stays exactly zero;
- a list of such models and/or ``(param, grad)`` pairs of float32
  C-contiguous numpy arrays of the same shape (for example an output
  layer's weights and the gradients you compute for them), bound by pointer
  (lstm_optim_add_buffer): update them in place, never rebind them.

The optimizer keeps what it is given alive.

A note on biases: PyTorch's nn.LSTM has two biases per layer, bias_ih and
bias_hh, each with the gradient of their sum; liblstm trains one, b. A
torch optimizer therefore moves the sum by two updates per step (twice the
step with SGD), liblstm's by one. liblstm trains exactly like an nn.LSTM
whose bias_hh is zero and frozen (``bias_hh.requires_grad_(False)``),
which is how :meth:`lstm.LSTM.state_dict` exports it.
"""

import contextlib
import ctypes
import struct

import numpy as np

from . import _ffi
from ._ffi import check
from .core import (LSTM, _UINT32, _UINT64, _float_array, _int_arg, _owner_handles, _path_arg,
                   _ptr)

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "step_lr", "cosine_lr"]

_lib = _ffi.lib()

_STATE_HEADER = struct.Struct("<IIIIQQQ")  # lstm_optim_state_size's layout, little-endian
_STATE_MAGIC = 0x4C4F5054


class _OptimHandle:
    __slots__ = ("optim", "_lib")

    def __init__(self, optim):
        self._lib = _lib
        self.optim = optim

    def __del__(self):
        if self.optim:
            self._lib.lstm_optim_destroy(self.optim)
            self.optim = None


def _bias_free_ranges(model):
    """(offset, count) runs of a model's parameter buffer without its biases."""
    runs = []
    for name, (_, _, kind, offset, rows, cols) in model._tensors.items():
        if kind == _ffi.TENSOR_BIAS:
            continue
        count = rows * cols
        if runs and runs[-1][0] + runs[-1][1] == offset:
            runs[-1] = (runs[-1][0], runs[-1][1] + count)
        else:
            runs.append((offset, count))
    return runs


class Optimizer:
    """Common methods; construct one of the subclasses."""

    _kind = None

    def _setup(self, params, fields, flags, threads):
        options = _ffi.LstmOptimOptions()
        check(_lib.lstm_optim_options_init(ctypes.byref(options), ctypes.sizeof(options),
                                           self._kind), "lstm_optim_options_init")
        for name, value in fields.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                                 np.integer)):
                raise TypeError("%s is %r; it must be a number" % (name, value))
            setattr(options, name, float(value))
        options.flags = flags
        options.threads = _int_arg("threads", threads, _UINT32)
        handle = ctypes.c_void_p()
        check(_lib.lstm_optim_create(ctypes.byref(options), ctypes.byref(handle)),
              "lstm_optim_create")
        self._handle = _OptimHandle(handle.value)
        self.defaults = dict(fields, flags=flags)
        self._models = []   # bound models: kept alive, their gradients zeroed by zero_grad
        self._arrays = []   # bound (param, grad) pairs: kept alive
        self._networks = []  # bound networks (lstm_optim_add_network): kept alive
        # Models whose parameters a step writes behind the library's back
        # (through lstm_optim_add_buffer): each step renews their epoch, so
        # that kept weights (LSTM.keep_weights) are packed again.
        self._written = []
        self._bind(params)
        # The locks of the bound models (those behind bound views too), in
        # one order (by id) for every optimizer, so that two optimizers
        # sharing models cannot deadlock.
        locks = {id(handles.lock): handles.lock
                 for handles in [model._handles for model in self._models + self._networks]
                 + self._written}
        self._locks = [locks[key] for key in sorted(locks)]

    def _bind(self, params):
        from .network import Network
        items = [params] if isinstance(params, (LSTM, Network)) else params
        try:
            items = list(items)
        except TypeError:
            raise TypeError("params must be an lstm.LSTM, or a list of models and "
                            "(param, grad) pairs of float32 arrays, not %s"
                            % type(params).__name__) from None
        if not items:
            raise ValueError("the optimizer got an empty parameter list")
        optim = self._handle.optim
        for index, item in enumerate(items):
            if isinstance(item, Network):
                add_network = _ffi.optional("lstm_optim_add_network")
                if add_network is None:
                    raise _ffi.unsupported("lstm_optim_add_network", _ffi.NETWORK_RELEASE)
                check(add_network(optim, item._handles.network), "lstm_optim_add_network")
                self._networks.append(item)
            elif isinstance(item, LSTM):
                if item.bias:
                    check(_lib.lstm_optim_add_model(optim, item._handles.model),
                          "lstm_optim_add_model")
                else:
                    self._written.append(item._handles)
                    params_base, grads_base = _ptr(item.params), _ptr(item.grads)
                    for offset, count in _bias_free_ranges(item):
                        check(_lib.lstm_optim_add_buffer(optim, params_base + 4 * offset,
                                                         grads_base + 4 * offset, count),
                              "lstm_optim_add_buffer")
                self._models.append(item)
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                param = _float_array("params[%d][0]" % index, item[0])
                grad = _float_array("params[%d][1]" % index, item[1], param.shape)
                for name, array in (("param", param), ("grad", grad)):
                    if not array.flags.writeable:
                        raise ValueError("params[%d]: the %s array is read-only"
                                         % (index, name))
                check(_lib.lstm_optim_add_buffer(optim, _ptr(param), _ptr(grad), param.size),
                      "lstm_optim_add_buffer")
                self._arrays.append((param, grad))
                owner = _owner_handles(param)  # a view of a model's parameters
                if owner is not None:
                    self._written.append(owner)
            else:
                raise TypeError("params[%d] is a %s; it must be an lstm.LSTM or a (param, "
                                "grad) pair of float32 arrays" % (index, type(item).__name__))

    def __repr__(self):
        shown = ", ".join("%s=%g" % (k, v) for k, v in self.defaults.items() if k != "flags")
        return "lstm.optim.%s(%s)" % (type(self).__name__, shown)

    @contextlib.contextmanager
    def _models_locked(self):
        with contextlib.ExitStack() as stack:
            for lock in self._locks:
                stack.enter_context(lock)
            yield

    # ---- steps --------------------------------------------------------------

    def step(self, closure=None):
        """One update of every bound parameter (all or nothing: a NaN or an
        infinity in any gradient, or a value the step would overflow,
        raises LSTMError E_NONFINITE and changes nothing). With a closure, calls it first and returns its value.
        Models that keep their weights (:meth:`lstm.LSTM.keep_weights`)
        pack them again after it, bound (param, grad) views of their
        parameters included. Holds the lock of every bound model, as
        zero_grad and the clipping calls do, so that no call of a model or
        of its states in another thread sees parameters half updated."""
        loss = closure() if closure is not None else None
        with self._models_locked():
            status = _lib.lstm_optim_step(self._handle.optim)
            for handles in self._written:
                handles.touch()
        check(status, "lstm_optim_step")
        return loss

    def zero_grad(self, set_to_none=False):
        """Set every bound gradient to zero (and a bias-free model's whole
        gradient buffer). set_to_none is accepted for torch's signature and
        ignored: the buffers stay."""
        with self._models_locked():
            check(_lib.lstm_optim_zero_grads(self._handle.optim), "lstm_optim_zero_grads")
            for model in self._models:
                if not model.bias:
                    model.zero_grad()

    def clip_grad_norm(self, max_norm):
        """Scale the bound gradients to a global L2 norm of at most max_norm
        (torch.nn.utils.clip_grad_norm_); returns the norm before clipping."""
        norm = ctypes.c_double()
        with self._models_locked():
            check(_lib.lstm_optim_clip_grad_norm(self._handle.optim, float(max_norm),
                                                 ctypes.byref(norm)),
                  "lstm_optim_clip_grad_norm")
        return norm.value

    def clip_grad_value(self, clip_value):
        """Clamp every bound gradient to [-clip_value, clip_value]
        (torch.nn.utils.clip_grad_value_)."""
        with self._models_locked():
            check(_lib.lstm_optim_clip_grad_value(self._handle.optim, float(clip_value)),
                  "lstm_optim_clip_grad_value")

    @property
    def lr(self):
        """The learning rate; assign to change it for the following steps."""
        lr = ctypes.c_double()
        check(_lib.lstm_optim_get_lr(self._handle.optim, ctypes.byref(lr)), "lstm_optim_get_lr")
        return lr.value

    @lr.setter
    def lr(self, value):
        check(_lib.lstm_optim_set_lr(self._handle.optim, float(value)), "lstm_optim_set_lr")

    @property
    def step_count(self):
        """Steps taken (PyTorch's state "step")."""
        steps = ctypes.c_uint64()
        check(_lib.lstm_optim_step_count(self._handle.optim, ctypes.byref(steps)),
              "lstm_optim_step_count")
        return steps.value

    @property
    def param_count(self):
        """Number of bound parameters."""
        return int(_lib.lstm_optim_param_count(self._handle.optim))

    # ---- state ------------------------------------------------------------------

    def _state_names(self):
        return []

    def state_bytes(self):
        """The optimizer's state in lstm_optim_save_state's documented layout: little-endian,
        the bytes of a model file's OPTM section, on every host."""
        size = ctypes.c_size_t()
        check(_lib.lstm_optim_state_size(self._handle.optim, ctypes.byref(size)),
              "lstm_optim_state_size")
        buffer = ctypes.create_string_buffer(size.value)
        check(_lib.lstm_optim_save_state(self._handle.optim, buffer, size.value),
              "lstm_optim_save_state")
        return buffer.raw[:size.value]

    def load_state_bytes(self, data):
        """Restore a state from :meth:`state_bytes` (same kind, flags and bound sizes)."""
        data = bytes(data)
        check(_lib.lstm_optim_load_state(self._handle.optim, data, len(data)),
              "lstm_optim_load_state")

    def state(self):
        """{"step": n, name: float32 array, ...} with PyTorch's state names
        (momentum_buffer; sum; square_avg, grad_avg; exp_avg, exp_avg_sq,
        max_exp_avg_sq). Each array runs over the bound buffers in binding
        order (for one model with bias: the layout of model.params)."""
        data = self.state_bytes()
        magic, _, _, _, steps, count, arrays = _STATE_HEADER.unpack_from(data)
        names = self._state_names()
        if magic != _STATE_MAGIC or arrays != len(names):
            raise RuntimeError("unexpected optimizer state layout (%d arrays, expected %s)"
                               % (arrays, names))
        values = np.frombuffer(data, dtype="<f4", offset=_STATE_HEADER.size).astype(np.float32)
        out = {"step": steps}
        for index, name in enumerate(names):
            out[name] = values[index * count: (index + 1) * count]
        return out

    def load(self, path):
        """Restore the state saved in a model file by ``model.save(path, optimizer)``
        (lstm_optim_load); bind the loaded model first."""
        check(_lib.lstm_optim_load(self._handle.optim, _path_arg(path)), "lstm_optim_load")

    def loads(self, data):
        """The same from a model file's bytes (lstm_optim_load_buffer)."""
        data = bytes(data)
        check(_lib.lstm_optim_load_buffer(self._handle.optim, data, len(data)),
              "lstm_optim_load_buffer")


def _flag(condition, flag):
    return flag if condition else 0


class SGD(Optimizer):
    """torch.optim.SGD. lr defaults to 0.01 (PyTorch requires it)."""

    _kind = _ffi.OPTIM_SGD

    def __init__(self, params, lr=0.01, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, threads=0):
        self._setup(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                 weight_decay=weight_decay),
                    _flag(nesterov, _ffi.OPTIM_NESTEROV) | _flag(maximize, _ffi.OPTIM_MAXIMIZE),
                    threads)

    def _state_names(self):
        return ["momentum_buffer"] if self.defaults["momentum"] != 0 else []


class Adagrad(Optimizer):
    """torch.optim.Adagrad."""

    _kind = _ffi.OPTIM_ADAGRAD

    def __init__(self, params, lr=0.01, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, *, maximize=False, threads=0):
        self._setup(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                 initial_accumulator_value=initial_accumulator_value, eps=eps),
                    _flag(maximize, _ffi.OPTIM_MAXIMIZE), threads)

    def _state_names(self):
        return ["sum"]


class RMSprop(Optimizer):
    """torch.optim.RMSprop."""

    _kind = _ffi.OPTIM_RMSPROP

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False, threads=0):
        self._setup(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                 momentum=momentum),
                    _flag(centered, _ffi.OPTIM_CENTERED) | _flag(maximize, _ffi.OPTIM_MAXIMIZE),
                    threads)

    def _state_names(self):
        names = ["square_avg"]
        if self.defaults["flags"] & _ffi.OPTIM_CENTERED:
            names.append("grad_avg")
        if self.defaults["momentum"] > 0:
            names.append("momentum_buffer")
        return names


def _betas(betas):
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise TypeError("betas is %r; it must be a pair (beta1, beta2)" % (betas,)) from None
    return beta1, beta2


class Adam(Optimizer):
    """torch.optim.Adam."""

    _kind = _ffi.OPTIM_ADAM

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0,
                 amsgrad=False, *, maximize=False, threads=0):
        beta1, beta2 = _betas(betas)
        self._setup(params, dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                                 weight_decay=weight_decay),
                    _flag(amsgrad, _ffi.OPTIM_AMSGRAD) | _flag(maximize, _ffi.OPTIM_MAXIMIZE),
                    threads)

    def _state_names(self):
        names = ["exp_avg", "exp_avg_sq"]
        if self.defaults["flags"] & _ffi.OPTIM_AMSGRAD:
            names.append("max_exp_avg_sq")
        return names


class AdamW(Adam):
    """torch.optim.AdamW (decoupled weight decay, default 0.01)."""

    _kind = _ffi.OPTIM_ADAMW

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01,
                 amsgrad=False, *, maximize=False, threads=0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, threads=threads)


def step_lr(base_lr, gamma, step_size, epoch):
    """torch.optim.lr_scheduler.StepLR's rate at epoch:
    base_lr * gamma ** (epoch // step_size) (lstm_schedule_step)."""
    lr = ctypes.c_double()
    check(_lib.lstm_schedule_step(float(base_lr), float(gamma),
                                  _int_arg("step_size", step_size, _UINT64),
                                  _int_arg("epoch", epoch, _UINT64),
                                  ctypes.byref(lr)), "lstm_schedule_step")
    return lr.value


def cosine_lr(base_lr, eta_min, t_max, epoch):
    """torch.optim.lr_scheduler.CosineAnnealingLR's closed form at epoch
    (lstm_schedule_cosine)."""
    lr = ctypes.c_double()
    check(_lib.lstm_schedule_cosine(float(base_lr), float(eta_min),
                                    _int_arg("t_max", t_max, _UINT64),
                                    _int_arg("epoch", epoch, _UINT64),
                                    ctypes.byref(lr)), "lstm_schedule_cosine")
    return lr.value
