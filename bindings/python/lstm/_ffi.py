"""The C ABI of liblstm through ctypes: library discovery, struct mirrors,
function signatures, status codes and the exception they raise.

Nothing here is public API except what lstm/__init__.py re-exports
(:class:`LSTMError`, :class:`Status`, :func:`library_path`, :func:`version`).
The library is found and loaded on the first call of :func:`lib`, so that
``import lstm`` and ``lstm.convert`` work without it.
"""

import ctypes
import ctypes.util
import enum
import os
import subprocess
import threading

__all__ = ["LSTMError", "Status", "lib", "library_path", "version", "optional", "unsupported",
           "check", "error", "LstmConfig", "LstmOptimOptions", "LstmSequences", "LstmInputs",
           "LstmOutputs", "LstmOutputGrads", "LstmInputGrads", "LstmEmbeddingConfig",
           "LstmNetworkConfig", "LstmNetworkInputs", "LstmNetworkOutputs", "LstmTargets",
           "LstmCtcConfig", "LstmCtcOutputs", "MIN_VERSION", "NETWORK_RELEASE", "CTC_RELEASE",
           "QUANTIZED_RELEASE", "TRAINING_PRECISION_RELEASE", "PRECISIONS",
           "TRAINING_PRECISIONS", "precision_value", "training_precision_value"]


class Status(enum.IntEnum):
    """lstm_status (include/lstm/common.h); values are never renumbered."""

    OK = 0
    E_NULL = 1
    E_SIZE = 2
    E_OVERFLOW = 3
    E_SHAPE = 4
    E_ARG = 5
    E_NONFINITE = 6
    E_NOMEM = 7
    E_STATE = 8
    E_IO = 9
    E_FORMAT = 10
    E_UNSUPPORTED = 11
    E_NOT_FOUND = 12


class LSTMError(Exception):
    """A liblstm call returned a status other than LSTM_OK.

    Attributes:
        status:   the status, a :class:`Status` (an int) when this version
                  knows it, else the plain int.
        message:  lstm_error_message(), the per-thread detail message
                  ("hidden_size is 0; it must be at least 1").
        strerror: lstm_strerror(status), the static text of the status.
        function: the C function that failed ("lstm_model_infer").
    """

    def __init__(self, status, message="", strerror="", function=""):
        try:
            status = Status(status)
        except ValueError:
            pass
        self.status = status
        self.message = message
        self.strerror = strerror
        self.function = function
        name = status.name if isinstance(status, Status) else str(int(status))
        text = "%s%s (LSTM_%s)" % (function + ": " if function else "", strerror or "error", name)
        if message:
            text += ": " + message
        super().__init__(text)

    def __reduce__(self):
        return (type(self), (int(self.status), self.message, self.strerror, self.function))


# ---- struct mirrors ------------------------------------------------------------

class LstmConfig(ctypes.Structure):
    """struct lstm_config (include/lstm/model.h). Fill with lstm_config_init()."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("input_size", ctypes.c_size_t),
                ("hidden_size", ctypes.c_size_t),
                ("num_layers", ctypes.c_size_t),
                ("flags", ctypes.c_uint32),
                ("proj_size", ctypes.c_size_t),
                ("dropout", ctypes.c_double)]


class LstmOptimOptions(ctypes.Structure):
    """struct lstm_optim_options (include/lstm/optim.h). Fill with lstm_optim_options_init()."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("kind", ctypes.c_int),  # enum lstm_optim_kind
                ("flags", ctypes.c_uint32),
                ("lr", ctypes.c_double),
                ("weight_decay", ctypes.c_double),
                ("momentum", ctypes.c_double),
                ("dampening", ctypes.c_double),
                ("alpha", ctypes.c_double),
                ("beta1", ctypes.c_double),
                ("beta2", ctypes.c_double),
                ("eps", ctypes.c_double),
                ("lr_decay", ctypes.c_double),
                ("initial_accumulator_value", ctypes.c_double),
                ("threads", ctypes.c_uint32)]


class _ArgStruct(ctypes.Structure):
    """An argument struct of the sequence calls (liblstm 0.3.0): struct_size
    first, set from ctypes.sizeof, and every other field zero (NULL), which
    is what the header's _INIT macro gives. Fields are set by keyword."""

    def __init__(self, **fields):
        super().__init__()
        self.struct_size = ctypes.sizeof(self)
        for name, value in fields.items():
            setattr(self, name, value)


class LstmSequences(_ArgStruct):
    """struct lstm_sequences (include/lstm/model.h): note layout before lengths."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("steps", ctypes.c_size_t),
                ("batch", ctypes.c_size_t),
                ("layout", ctypes.c_uint32),    # lstm_layout, LAYOUT_* below
                ("lengths", ctypes.c_void_p)]   # const size_t *, or NULL


class LstmInputs(_ArgStruct):
    """struct lstm_inputs (include/lstm/model.h)."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("x", ctypes.c_void_p),
                ("h0", ctypes.c_void_p),
                ("c0", ctypes.c_void_p)]


class LstmOutputs(_ArgStruct):
    """struct lstm_outputs (include/lstm/model.h)."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("y", ctypes.c_void_p),
                ("hT", ctypes.c_void_p),
                ("cT", ctypes.c_void_p)]


class LstmOutputGrads(_ArgStruct):
    """struct lstm_output_grads (include/lstm/train.h)."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("dy", ctypes.c_void_p),
                ("dhT", ctypes.c_void_p),
                ("dcT", ctypes.c_void_p)]


class LstmInputGrads(_ArgStruct):
    """struct lstm_input_grads (include/lstm/train.h)."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("dx", ctypes.c_void_p),
                ("dh0", ctypes.c_void_p),
                ("dc0", ctypes.c_void_p)]


class LstmEmbeddingConfig(ctypes.Structure):
    """struct lstm_embedding_config (include/lstm/embedding.h)."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("num_embeddings", ctypes.c_size_t),
                ("embedding_dim", ctypes.c_size_t),
                ("flags", ctypes.c_uint32),
                ("padding_idx", ctypes.c_int64)]


class LstmNetworkConfig(ctypes.Structure):
    """struct lstm_network_config (include/lstm/network.h)."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("embedding", ctypes.POINTER(LstmEmbeddingConfig)),
                ("lstm", ctypes.POINTER(LstmConfig)),
                ("head", ctypes.c_uint32),     # lstm_head_placement, HEAD_* below
                ("loss", ctypes.c_uint32),     # lstm_loss_kind, LOSS_* below
                ("head_size", ctypes.c_size_t)]


class LstmNetworkInputs(_ArgStruct):
    """struct lstm_network_inputs (include/lstm/network.h)."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("tokens", ctypes.c_void_p),
                ("features", ctypes.c_void_p),
                ("h0", ctypes.c_void_p),
                ("c0", ctypes.c_void_p)]


class LstmNetworkOutputs(_ArgStruct):
    """struct lstm_network_outputs (include/lstm/network.h)."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("output", ctypes.c_void_p),
                ("hT", ctypes.c_void_p),
                ("cT", ctypes.c_void_p)]


class LstmTargets(_ArgStruct):
    """struct lstm_targets (include/lstm/network.h)."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("classes", ctypes.c_void_p),
                ("values", ctypes.c_void_p),
                ("grad", ctypes.c_void_p),
                ("mask", ctypes.c_void_p)]     # const uint8_t *, or NULL


class LstmCtcConfig(_ArgStruct):
    """struct lstm_ctc_config (include/lstm/ctc.h); zero fields are its defaults."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("classes", ctypes.c_size_t),
                ("blank", ctypes.c_size_t),
                ("reduction", ctypes.c_uint32),  # lstm_ctc_reduction, CTC_MEAN / CTC_SUM
                ("flags", ctypes.c_uint32)]      # CTC_ZERO_INFINITY


class LstmCtcOutputs(_ArgStruct):
    """struct lstm_ctc_outputs (include/lstm/ctc.h)."""

    _fields_ = [("struct_size", ctypes.c_size_t),
                ("loss", ctypes.c_void_p),       # double *, required
                ("losses", ctypes.c_void_p),     # double [B], or NULL
                ("grad", ctypes.c_void_p)]       # float, as logits, or NULL


# lstm_config.flags
BIDIRECTIONAL = 0x1
BATCH_FIRST = 0x2
PEEPHOLE = 0x4
# lstm_tensor
TENSOR_WEIGHT, TENSOR_BIAS, TENSOR_PROJECTION, TENSOR_PEEPHOLE = 0, 1, 2, 3
# lstm_mode
MODE_INFER, MODE_TRAIN = 0, 1
# lstm_layout (lstm_sequences.layout)
LAYOUT_MODEL, LAYOUT_TIME_MAJOR, LAYOUT_BATCH_MAJOR = 0, 1, 2
# lstm_optim_kind and lstm_optim_options.flags
OPTIM_SGD, OPTIM_ADAGRAD, OPTIM_RMSPROP, OPTIM_ADAM, OPTIM_ADAMW = 0, 1, 2, 3, 4
OPTIM_NESTEROV, OPTIM_CENTERED, OPTIM_AMSGRAD, OPTIM_MAXIMIZE = 0x1, 0x2, 0x4, 0x8
# lstm_embedding_config.flags, lstm_head_placement, lstm_loss_kind, lstm_meta_kind
EMBEDDING_PADDING = 0x1
HEAD_NONE, HEAD_EVERY_STEP, HEAD_LAST_STEP = 0, 1, 2
LOSS_NONE, LOSS_CROSS_ENTROPY, LOSS_BCE_WITH_LOGITS, LOSS_MSE = 0, 1, 2, 3
META_TEXT, META_BYTES = 0, 1
# lstm_ctc_reduction, lstm_ctc_config.flags
CTC_MEAN, CTC_SUM = 0, 1
CTC_ZERO_INFINITY = 0x1
# lstm_precision (include/lstm/model.h): the names the Python API takes
PRECISION_FP32, PRECISION_BF16, PRECISION_INT8 = 0, 1, 2
PRECISIONS = {"fp32": PRECISION_FP32, "bf16": PRECISION_BF16, "int8": PRECISION_INT8}


def precision_value(precision, name="precision"):
    """The lstm_precision of a precision name ('fp32', 'bf16', 'int8');
    ValueError naming the allowed ones for anything else."""
    if isinstance(precision, str) and precision in PRECISIONS:
        return PRECISIONS[precision]
    raise ValueError("%s is %r; it must be one of %s"
                     % (name, precision, ", ".join(repr(p) for p in PRECISIONS)))


# The precisions training runs in (lstm_workspace_set_training_precision);
# int8 is for inference only.
TRAINING_PRECISIONS = ("fp32", "bf16")


def training_precision_value(precision, name="training precision"):
    """The lstm_precision of a training precision name ('fp32', 'bf16');
    ValueError naming the allowed ones for anything else, and saying that
    'int8' is for inference only."""
    if isinstance(precision, str) and precision in TRAINING_PRECISIONS:
        return PRECISIONS[precision]
    why = "; 'int8' is for inference only (set_precision)" if precision == "int8" else ""
    raise ValueError("%s is %r; it must be one of %s%s"
                     % (name, precision, ", ".join(repr(p) for p in TRAINING_PRECISIONS), why))


# ---- signatures ------------------------------------------------------------------

_h = ctypes.c_void_p                      # any opaque handle, and float / size_t arrays
_out = ctypes.POINTER(ctypes.c_void_p)    # lstm_x **out
_size = ctypes.c_size_t
_size_p = ctypes.POINTER(ctypes.c_size_t)
_st = ctypes.c_int                        # lstm_status
_u32, _u64, _dbl = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_double
_seq = ctypes.POINTER(LstmSequences)
_in, _outs = ctypes.POINTER(LstmInputs), ctypes.POINTER(LstmOutputs)
_dout, _din = ctypes.POINTER(LstmOutputGrads), ctypes.POINTER(LstmInputGrads)

# The oldest liblstm the binding loads: the release of the argument-struct
# sequence calls (version node LSTM_1.2), which every forward uses.
MIN_VERSION = (0, 3, 0)

_SIGNATURES = {
    "lstm_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "lstm_error_message": (ctypes.c_char_p, []),
    "lstm_version_number": (ctypes.c_uint, []),
    "lstm_version_string": (ctypes.c_char_p, []),
    "lstm_config_init": (_st, [ctypes.POINTER(LstmConfig), _size]),
    "lstm_model_create": (_st, [ctypes.POINTER(LstmConfig), _out]),
    "lstm_model_destroy": (None, [_h]),
    "lstm_model_get_config": (_st, [_h, ctypes.POINTER(LstmConfig)]),
    "lstm_model_param_count": (_size, [_h]),
    "lstm_model_tensor": (_st, [_h, _size, _size, ctypes.c_int, _size_p, _size_p, _size_p]),
    "lstm_model_params": (_st, [_h, ctypes.POINTER(ctypes.c_void_p), _size_p]),
    "lstm_model_grads": (_st, [_h, ctypes.POINTER(ctypes.c_void_p), _size_p]),
    "lstm_model_get_params": (_st, [_h, _h, _size]),
    "lstm_model_set_params": (_st, [_h, _h, _size]),
    "lstm_model_get_grads": (_st, [_h, _h, _size]),
    "lstm_model_zero_grads": (_st, [_h]),
    "lstm_model_init": (_st, [_h, _u64, _u32]),
    "lstm_workspace_create": (_st, [_h, _out]),
    "lstm_workspace_destroy": (None, [_h]),
    "lstm_workspace_size": (_st, [_h, ctypes.c_int, _size, _size, _size_p]),
    "lstm_workspace_reserve": (_st, [_h, ctypes.c_int, _size, _size]),
    "lstm_workspace_set_seed": (_st, [_h, _u64]),
    "lstm_workspace_keep_weights": (_st, [_h, ctypes.c_int]),
    "lstm_model_infer": (_st, [_h, _h, _seq, _in, _outs]),
    "lstm_model_train_forward": (_st, [_h, _h, _seq, _in, _outs]),
    "lstm_model_train_chunk": (_st, [_h, _h, _h, _seq, _in, _outs]),
    "lstm_model_train_backward": (_st, [_h, _h, _dout, _din]),
    "lstm_state_create": (_st, [_h, _size, _out]),
    "lstm_state_destroy": (None, [_h]),
    "lstm_state_reset": (_st, [_h]),
    "lstm_state_get": (_st, [_h, _h, _h]),
    "lstm_state_set": (_st, [_h, _h, _h]),
    "lstm_model_infer_stream": (_st, [_h, _h, _seq, _in, _outs]),
    "lstm_model_step": (_st, [_h, _h, _h, _h]),
    "lstm_state_keep_weights": (_st, [_h, ctypes.c_int]),
    "lstm_model_save": (_st, [_h, _h, ctypes.c_char_p]),
    "lstm_model_save_buffer": (_st, [_h, _h, _h, _size, _size_p]),
    "lstm_model_load": (_st, [ctypes.c_char_p, _out]),
    "lstm_model_load_buffer": (_st, [_h, _size, _out]),
    "lstm_optim_load": (_st, [_h, ctypes.c_char_p]),
    "lstm_optim_load_buffer": (_st, [_h, _h, _size]),
    "lstm_optim_options_init": (_st, [ctypes.POINTER(LstmOptimOptions), _size, ctypes.c_int]),
    "lstm_optim_create": (_st, [ctypes.POINTER(LstmOptimOptions), _out]),
    "lstm_optim_destroy": (None, [_h]),
    "lstm_optim_add_buffer": (_st, [_h, _h, _h, _size]),
    "lstm_optim_add_model": (_st, [_h, _h]),
    "lstm_optim_param_count": (_size, [_h]),
    "lstm_optim_step": (_st, [_h]),
    "lstm_optim_zero_grads": (_st, [_h]),
    "lstm_optim_clip_grad_norm": (_st, [_h, _dbl, ctypes.POINTER(_dbl)]),
    "lstm_optim_clip_grad_value": (_st, [_h, _dbl]),
    "lstm_optim_get_lr": (_st, [_h, ctypes.POINTER(_dbl)]),
    "lstm_optim_set_lr": (_st, [_h, _dbl]),
    "lstm_optim_step_count": (_st, [_h, ctypes.POINTER(_u64)]),
    "lstm_optim_state_size": (_st, [_h, _size_p]),
    "lstm_optim_save_state": (_st, [_h, _h, _size]),
    "lstm_optim_load_state": (_st, [_h, _h, _size]),
    "lstm_schedule_step": (_st, [_dbl, _dbl, _u64, _u64, ctypes.POINTER(_dbl)]),
    "lstm_schedule_cosine": (_st, [_dbl, _dbl, _u64, _u64, ctypes.POINTER(_dbl)]),
}

# Functions added after MIN_VERSION go here, not in _SIGNATURES: they are
# bound when the loaded library has them, so that an older library (of at
# least MIN_VERSION) still loads, and optional() tells the callers, which
# raise unsupported() when they need one that is absent.
_net_in, _net_out = ctypes.POINTER(LstmNetworkInputs), ctypes.POINTER(LstmNetworkOutputs)
_targets = ctypes.POINTER(LstmTargets)
NETWORK_RELEASE = "0.5.0"  # the release of lstm/network.h (version node LSTM_1.4)
CTC_RELEASE = "0.6.0"  # the release of lstm/ctc.h (version node LSTM_1.5)
# the release of reduced-precision inference and quantized files (version node LSTM_1.6)
QUANTIZED_RELEASE = "0.7.0"
# the release of training in bf16 (version node LSTM_1.7)
TRAINING_PRECISION_RELEASE = "0.8.0"
_OPTIONAL_SIGNATURES = {
    "lstm_network_create": (_st, [ctypes.POINTER(LstmNetworkConfig), _out]),
    "lstm_network_destroy": (None, [_h]),
    "lstm_network_get_config": (_st, [_h, ctypes.POINTER(LstmNetworkConfig)]),
    "lstm_network_embedding": (_h, [_h]),
    "lstm_network_model": (_h, [_h]),
    "lstm_network_head": (_h, [_h]),
    "lstm_network_param_count": (_size, [_h]),
    "lstm_network_init": (_st, [_h, _u64, _u32]),
    "lstm_network_zero_grads": (_st, [_h]),
    "lstm_optim_add_network": (_st, [_h, _h]),
    "lstm_network_infer": (_st, [_h, _h, _seq, _net_in, _net_out]),
    "lstm_network_loss": (_st, [_h, _seq, _h, _targets, ctypes.POINTER(_dbl)]),
    "lstm_network_train_forward": (_st, [_h, _h, _seq, _net_in, _net_out]),
    "lstm_network_train_backward": (_st, [_h, _h, _targets, ctypes.POINTER(_dbl)]),
    "lstm_network_set_meta": (_st, [_h, ctypes.c_char_p, _u32, _h, _size]),
    "lstm_network_get_meta": (_st, [_h, ctypes.c_char_p, ctypes.POINTER(_u32),
                                    ctypes.POINTER(ctypes.c_void_p), _size_p]),
    "lstm_network_remove_meta": (_st, [_h, ctypes.c_char_p]),
    "lstm_network_meta_count": (_size, [_h]),
    "lstm_network_meta_key": (_st, [_h, _size, ctypes.POINTER(ctypes.c_char_p)]),
    "lstm_network_save": (_st, [_h, _h, ctypes.c_char_p]),
    "lstm_network_save_buffer": (_st, [_h, _h, _h, _size, _size_p]),
    "lstm_network_load": (_st, [ctypes.c_char_p, _out]),
    "lstm_network_load_buffer": (_st, [_h, _size, _out]),
    "lstm_embedding_params": (_st, [_h, ctypes.POINTER(ctypes.c_void_p), _size_p]),
    "lstm_embedding_grads": (_st, [_h, ctypes.POINTER(ctypes.c_void_p), _size_p]),
    "lstm_dense_params": (_st, [_h, ctypes.POINTER(ctypes.c_void_p), _size_p]),
    "lstm_dense_grads": (_st, [_h, ctypes.POINTER(ctypes.c_void_p), _size_p]),
    # lstm/ctc.h, CTC_RELEASE
    "lstm_ctc_loss": (_st, [ctypes.POINTER(LstmCtcConfig), _seq, _h, _h, _h,
                            ctypes.POINTER(LstmCtcOutputs)]),
    "lstm_ctc_greedy_decode": (_st, [ctypes.POINTER(LstmCtcConfig), _seq, _h, _h, _h]),
    # lstm_precision and quantized files, QUANTIZED_RELEASE
    "lstm_workspace_set_precision": (_st, [_h, ctypes.c_int]),
    "lstm_state_set_precision": (_st, [_h, ctypes.c_int]),
    "lstm_model_save_quantized": (_st, [_h, ctypes.c_int, ctypes.c_char_p]),
    "lstm_model_save_quantized_buffer": (_st, [_h, ctypes.c_int, _h, _size, _size_p]),
    "lstm_network_save_quantized": (_st, [_h, ctypes.c_int, ctypes.c_char_p]),
    "lstm_network_save_quantized_buffer": (_st, [_h, ctypes.c_int, _h, _size, _size_p]),
    # training in bf16, TRAINING_PRECISION_RELEASE
    "lstm_workspace_set_training_precision": (_st, [_h, ctypes.c_int]),
}


# ---- discovery -------------------------------------------------------------------

# File names of the ABI-1 library: the SONAME first.
_FILE_NAMES = ("liblstm.so.1", "liblstm.1.dylib", "lstm.dll")

_lock = threading.Lock()
_lib = None
_path = None
_absent = frozenset()  # the names of _OPTIONAL_SIGNATURES the loaded library lacks


def _pkg_config_libdir():
    """`pkg-config --variable=libdir lstm`, or None (no pkg-config, no lstm.pc)."""
    try:
        result = subprocess.run(["pkg-config", "--variable=libdir", "lstm"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = result.stdout.strip()
    return libdir if result.returncode == 0 and libdir else None


def _candidates():
    """[(how it was found, path or name)] in the documented order."""
    out = []
    env = os.environ.get("LSTM_LIBRARY")
    if env:
        out.append(("LSTM_LIBRARY", env))
        return out  # an explicit choice is never silently replaced
    libdir = _pkg_config_libdir()
    if libdir:
        for name in _FILE_NAMES:
            path = os.path.normpath(os.path.join(libdir, name))
            if os.path.exists(path):
                out.append(("pkg-config libdir", path))
                break
        else:
            out.append(("pkg-config libdir", os.path.join(libdir, _FILE_NAMES[0])))
    found = ctypes.util.find_library("lstm")
    if found:
        out.append(("ctypes.util.find_library", found))
    return out


def _version_text(numbers):
    return ".".join(str(n) for n in numbers)


def _library_version(cdll, path):
    """(major, minor, patch, string) of a loaded library, from its
    lstm_version_number() and lstm_version_string() (both in every release)."""
    missing = [name for name in ("lstm_version_number", "lstm_version_string")
               if not hasattr(cdll, name)]
    if missing:
        raise ImportError("%s is not a usable liblstm: it lacks %s" % (path, ", ".join(missing)))
    for name in ("lstm_version_number", "lstm_version_string"):
        function = getattr(cdll, name)
        function.restype, function.argtypes = _SIGNATURES[name]
    number = int(cdll.lstm_version_number())
    text = cdll.lstm_version_string()
    text = text.decode("ascii", "replace") if text else ""
    return number // 10000, number // 100 % 100, number % 100, text


def _bind(cdll, path):
    """cdll with every signature set, and the optional names it lacks.

    ImportError, naming the version found and MIN_VERSION, for a library
    older than MIN_VERSION, and for one that lacks a function it should have."""
    major, minor, patch, text = _library_version(cdll, path)
    found = text or _version_text((major, minor, patch))
    if (major, minor, patch) < MIN_VERSION:
        raise ImportError(
            "%s is liblstm %s; these bindings need liblstm %s or later (the sequence calls "
            "with argument structs, lstm_model_infer and the others of version node "
            "LSTM_1.2). Install a newer liblstm, or point LSTM_LIBRARY at one."
            % (path, found, _version_text(MIN_VERSION)))
    missing = [name for name in _SIGNATURES if not hasattr(cdll, name)]
    if missing:
        raise ImportError("%s (liblstm %s) is not a usable liblstm: it lacks %s"
                          % (path, found, ", ".join(missing)))
    absent = frozenset(name for name in _OPTIONAL_SIGNATURES if not hasattr(cdll, name))
    signatures = dict(_SIGNATURES)
    signatures.update(item for item in _OPTIONAL_SIGNATURES.items() if item[0] not in absent)
    for name, (restype, argtypes) in signatures.items():
        function = getattr(cdll, name)
        function.restype = restype
        function.argtypes = argtypes
    return cdll, absent


def lib():
    """The loaded liblstm (a ctypes.CDLL with every signature set).

    Raises ImportError, saying where it looked, when no library is found,
    and naming the version found when the library is older than MIN_VERSION.
    """
    global _lib, _path, _absent
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for how, path in _candidates():
            try:
                cdll = ctypes.CDLL(path)
            except OSError as exc:
                tried.append("%s: %s (%s)" % (how, path, exc))
                if how == "LSTM_LIBRARY":
                    break
                continue
            bound, absent = _bind(cdll, path)
            _lib, _path, _absent = bound, path, absent
            return _lib
        raise ImportError(
            "liblstm (liblstm.so.1) was not found. Set LSTM_LIBRARY to its path "
            "(for example build/liblstm.so.1), or install it so that "
            "`pkg-config --variable=libdir lstm` or the system loader finds it "
            "(PKG_CONFIG_PATH, LD_LIBRARY_PATH, ldconfig). Tried: %s"
            % ("; ".join(tried) if tried else
               "LSTM_LIBRARY is unset, pkg-config knows no lstm, "
               "find_library('lstm') found nothing"))


def library_path():
    """The path (or loader name) of the liblstm that was loaded."""
    lib()
    return _path


def version():
    """lstm_version_string() of the loaded library, e.g. "0.3.0"."""
    return lib().lstm_version_string().decode()


def optional(name):
    """The loaded library's function name (one of _OPTIONAL_SIGNATURES, added
    after MIN_VERSION), or None when that library predates it."""
    library = lib()
    return None if name in _absent else getattr(library, name)


def unsupported(name, release):
    """The LSTMError for calling optional(name), added in release, when the
    loaded library lacks it."""
    return LSTMError(Status.E_UNSUPPORTED,
                     "the loaded liblstm %s (%s) lacks %s; it needs liblstm %s or later"
                     % (version(), _path, name, release),
                     "this liblstm is too old for the call", name)


# ---- errors ----------------------------------------------------------------------

def error(status, function):
    """The LSTMError for a failed call; read the detail message right away
    (it is per thread and kept until the next failure on this thread)."""
    library = lib()
    message = library.lstm_error_message()
    text = library.lstm_strerror(status)
    return LSTMError(status, message.decode("utf-8", "replace") if message else "",
                     text.decode("utf-8", "replace") if text else "", function)


def check(status, function):
    """Raise LSTMError unless status is LSTM_OK."""
    if status != 0:
        raise error(status, function)
