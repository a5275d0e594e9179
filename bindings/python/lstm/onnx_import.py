"""ONNX graphs of sequence models to liblstm model files: the engine of
:func:`lstm.convert.from_onnx`.

A graph is read by running it symbolically: every tensor the graph
computes from its inputs is a :class:`_Sym`, which records, for each
element of its static axes, what that element *is* (feature f of the
input, h of layer l, direction d, unit j at every step, ...), and for each
dynamic axis (time, batch) which input axis it came from. The exporter's
glue (Transpose, Squeeze, Unsqueeze, Reshape, Slice, Concat, Gather, Shape
and the shape arithmetic around them) then moves these labels around as it
moves the data, and the converter checks at the LSTM nodes, at the head and
at the graph outputs that what arrives is exactly what liblstm's network
computes there:

- an LSTM layer reads the network input (float features, or an embedding
  Gather of token ids) or, in order, both directions of the previous
  layer's Y;
- an every-step head (MatMul [+ Add], or Gemm) reads the top layer's Y at
  each step, time- or batch-major as the input;
- a last-step head reads the top layer's final hidden states, forward then
  reverse (Y_h, or Y at the last step of a unidirectional LSTM without
  sequence_lens, where the two are the same);
- the graph outputs are the head's output (or, without a head, the top
  layer's Y), and optionally the whole h_n / c_n stacks.

Anything else raises UnsupportedError naming the node (name and op_type)
and, where one is at fault, the attribute. Tensors that no graph output
depends on are not looked at.
"""

import numpy as np

from . import convert
from .convert import FormatError, UnsupportedError

__all__ = ["from_onnx"]

# ONNX LSTM gate blocks are i, o, f, c; liblstm's (PyTorch's) are i, f, g(c), o.
_GATE_ORDER = [0, 2, 3, 1]
# ONNX peepholes are p_i, p_o, p_f; liblstm's rows p_i, p_f, p_o.
_PEEPHOLE_ORDER = [0, 2, 1]
_DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")
_INT_MAX = np.iinfo(np.int64).max
# ONNX TensorProto data types
_FLOAT, _DOUBLE, _FLOAT16 = 1, 11, 10
_INT_TYPES = (2, 3, 4, 5, 6, 7, 12, 13)  # uint8 .. int64

ZEROS = "zeros"    # an all-zero tensor of unknown shape (Expand, ConstantOfShape)
_ZERO_PRESERVING = ("Identity", "Cast", "Transpose", "Squeeze", "Unsqueeze", "Reshape", "Slice",
                    "Gather", "Concat", "Expand")
OPAQUE = "opaque"  # an integer tensor computed from shapes in a way not followed


class _Sym:
    """A tensor computed from the graph's inputs.

    ids: an object array with one entry per element of the static axes,
         telling what it is (a tuple, e.g. ("y", layer, direction, unit));
         dynamic axes have extent 1 in it.
    dyn: per axis, the label of a dynamic axis ("a0", "a1": the sequence
         input's axes; "b:<input>" the batch axis of a state input) or None.
    kind: "float", "tokens" (integer ids) or "lengths" (sequence lengths).
    """

    __slots__ = ("ids", "dyn", "kind", "node")

    def __init__(self, ids, dyn, kind="float", node=None):
        self.ids = ids
        self.dyn = tuple(dyn)
        self.kind = kind
        self.node = node  # the node that made it (for messages)
        assert ids.ndim == len(self.dyn)

    def vector(self):
        """The entries along the last axis, when every other axis has extent 1."""
        if self.dyn[-1] is not None or any(n != 1 for n in self.ids.shape[:-1]):
            return None
        return list(self.ids.reshape(-1))


def _ids(shape, make):
    """An object array of shape whose entry at index is make(*index)."""
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        out[index] = make(*index)
    return out


def _take(ids, index, axis):
    """np.take that always gives an array (a 0-d one for a scalar index)."""
    taken = np.take(ids, index, axis=axis)
    if isinstance(taken, np.ndarray):
        return taken
    if ids.dtype != object:
        return np.asarray(taken, dtype=ids.dtype)
    out = np.empty((), dtype=object)
    out[()] = taken
    return out


def _describe(node):
    return "node %r (%s)" % (node.name, node.op_type)


class _Importer:
    """One conversion: walks the graph, then assembles the file."""

    def __init__(self, model):
        from onnx import numpy_helper
        self.numpy_helper = numpy_helper
        self.model = model
        graph = model.graph
        self.values = {}
        for tensor in graph.initializer:
            self.values[tensor.name] = numpy_helper.to_array(tensor)
        self.producer = {}
        for node in graph.node:
            for name in node.output:
                if name:
                    self.producer[name] = node
        self.layers = []          # per layer: dict of its converted tensors and attributes
        self.embedding = None     # V x E weight
        self.head = None          # {"features", "weight", "bias", "node", "sym"}
        self.time_label = None
        self.batch_label = None
        self.lengths = None       # the sequence_lens input's name, or False for none
        self.states = {}          # "h"/"c" -> the graph input's name, or False for zeros
        self.sequence_input = None
        self._graph_inputs(graph)

    # ---- the graph's inputs -------------------------------------------------------

    def _graph_inputs(self, graph):
        roles = self._input_roles(graph)
        for value_info in graph.input:
            name = value_info.name
            if name in self.values:
                continue  # an initializer listed as an input (older exporters)
            tensor_type = value_info.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None
                    for d in tensor_type.shape.dim]
            role = roles.get(name)
            if role == "sequence":
                if self.sequence_input is not None:
                    raise UnsupportedError("the graph has two sequence inputs, %r and %r; "
                                           "liblstm's network has one" % (self.sequence_input,
                                                                            name))
                self.sequence_input = name
                if tensor_type.elem_type in _INT_TYPES:
                    if len(dims) != 2:
                        raise UnsupportedError("input %r holds token ids of rank %d; they must "
                                               "be [T, B] or [B, T]" % (name, len(dims)))
                    self.values[name] = _Sym(_ids((1, 1), lambda *_: ("tok",)), ("a0", "a1"),
                                             "tokens")
                else:
                    if len(dims) != 3 or dims[2] is None:
                        raise UnsupportedError("input %r has shape %s; float features must be "
                                               "[T, B, I] or [B, T, I] with I fixed"
                                               % (name, dims))
                    self.values[name] = _Sym(_ids((1, 1, dims[2]), lambda a, b, f: ("x", f)),
                                             ("a0", "a1", None))
            elif role == "state":
                if len(dims) != 3 or dims[0] is None or dims[2] is None:
                    raise UnsupportedError("input %r has shape %s; an initial state must be "
                                           "[L D, B, H] with L D and H fixed" % (name, dims))
                self.values[name] = _Sym(
                    _ids((dims[0], 1, dims[2]), lambda k, b, j, n=name: ("in", n, k, j)),
                    (None, "b:" + name, None))
            elif role == "lengths":
                self.values[name] = _Sym(_ids((1,), lambda b: ("len",)), ("lengths",),
                                         "lengths")
            # an input no LSTM reads stays unknown; a node that needs it refuses it

    def _input_roles(self, graph):
        """{graph input name: "sequence", "state" or "lengths"}: what each input
        feeds at the LSTM nodes, following data (not shape) edges back."""
        roles = {}
        inputs = {v.name for v in graph.input}

        def walk(name, role, seen):
            if not name or name in seen:
                return
            seen.add(name)
            if name in inputs and name not in self.values:
                if roles.get(name, role) != role:
                    raise UnsupportedError("input %r is used both as %s and as %s"
                                           % (name, roles[name], role))
                roles[name] = role
                return
            node = self.producer.get(name)
            if node is None or node.op_type in ("Shape", "Size", "ConstantOfShape"):
                return  # what comes out depends on shapes alone
            if node.op_type == "Gather":
                data = node.input[0]
                walk(node.input[1] if data in self.values else data, role, seen)
            elif node.op_type in ("Concat", "LSTM"):
                if node.op_type == "Concat":
                    for source in node.input:
                        walk(source, role, seen)
                else:
                    walk(node.input[0], "sequence", seen)
            elif node.input:
                walk(node.input[0], role, seen)

        for node in graph.node:
            if node.op_type == "LSTM":
                for position, role in ((0, "sequence"), (4, "lengths"), (5, "state"),
                                       (6, "state")):
                    if len(node.input) > position:
                        walk(node.input[position], role, set())
        return roles

    # ---- running the graph --------------------------------------------------------

    def run(self):
        graph = self.model.graph
        needed = set()
        stack = [o.name for o in graph.output]
        while stack:
            name = stack.pop()
            node = self.producer.get(name)
            if node is None or id(node) in needed:
                continue
            needed.add(id(node))
            stack.extend(n for n in node.input if n)
        for node in graph.node:
            if id(node) not in needed:
                continue
            inputs = [self._value(name, node) if name else None for name in node.input]
            handler = getattr(self, "_op_" + node.op_type, None)
            if handler is None or node.domain not in ("", "ai.onnx"):
                raise UnsupportedError(
                    "%s: operator %s%s is not part of a network liblstm runs (an embedding, "
                    "LSTM layers, a dense head and the reshaping between them)"
                    % (_describe(node), node.domain + "." if node.domain else "", node.op_type))
            attrs = self._attributes(node)
            if node.op_type in _ZERO_PRESERVING and inputs and inputs[0] is ZEROS and (
                    node.op_type != "Concat" or all(v is ZEROS for v in inputs)):
                outputs = ZEROS  # zeros moved around: zero initial states, sliced per layer
            else:
                outputs = handler(node, inputs, attrs)
            if not isinstance(outputs, list):
                outputs = [outputs]
            for name, value in zip(node.output, outputs):
                if name:
                    if isinstance(value, _Sym) and value.node is None:
                        value.node = node
                    self.values[name] = value
        if not self.layers:
            raise UnsupportedError("the graph has no LSTM node that its outputs depend on")
        return self._assemble([o.name for o in graph.output])

    def _value(self, name, node):
        if name not in self.values:
            raise UnsupportedError("%s reads %r, which is neither a constant nor something "
                                   "computed from the network's input" % (_describe(node), name))
        return self.values[name]

    def _attributes(self, node):
        from onnx import helper
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    # ---- helpers for the operators ---------------------------------------------------

    @staticmethod
    def _const(node, value, what):
        """A constant weight: float32, or float16 (widened exactly); a float64
        weight would be rounded, so it is refused."""
        if not isinstance(value, np.ndarray) or value.dtype == object:
            raise UnsupportedError("%s: its %s must be a constant" % (_describe(node), what))
        if value.dtype not in (np.float32, np.float16):
            raise UnsupportedError("%s: its %s is %s; liblstm holds float32 (a float16 "
                                   "weight is widened exactly, others would be rounded)"
                                   % (_describe(node), what, value.dtype))
        return value

    @staticmethod
    def _ints(node, value, what):
        """A constant integer vector (shape glue: axes, starts, perm...)."""
        if not isinstance(value, np.ndarray) or value.dtype == object:
            raise UnsupportedError("%s: its %s must be a constant" % (_describe(node), what))
        return [int(v) for v in np.atleast_1d(value)]

    def _axes(self, node, inputs, attrs, position):
        """Axes from the attribute (opset < 13) or the input at position."""
        if "axes" in attrs:
            return list(attrs["axes"])
        if len(inputs) > position and inputs[position] is not None:
            return self._ints(node, inputs[position], "axes")
        return None

    @staticmethod
    def _refuse_sym(node, what="this operator on the network's data"):
        raise UnsupportedError("%s: %s cannot be represented in liblstm's network"
                               % (_describe(node), what))

    # ---- operators: constants and shape glue -------------------------------------------

    def _op_Constant(self, node, inputs, attrs):
        if "value" in attrs:
            return self.numpy_helper.to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in attrs:
                return np.array(attrs[key], dtype=dtype)
        raise UnsupportedError("%s: a constant of kind %s" % (_describe(node), sorted(attrs)))

    def _op_Identity(self, node, inputs, attrs):
        return inputs[0]

    def _op_Shape(self, node, inputs, attrs):
        data = inputs[0]
        if isinstance(data, _Sym):
            entries = [label if label is not None else int(n)
                       for label, n in zip(data.dyn, data.ids.shape)]
            shape = np.array(entries, dtype=object)
        elif isinstance(data, np.ndarray):
            shape = np.array(data.shape, dtype=np.int64)
        else:
            return OPAQUE
        start, end = attrs.get("start", 0), attrs.get("end", len(shape))
        return shape[start:end]

    def _op_Cast(self, node, inputs, attrs):
        data, to = inputs[0], attrs.get("to")
        if isinstance(data, _Sym):
            if data.kind == "float" and to != _FLOAT:
                self._refuse_sym(node, "a cast of the network's float data to type %d" % to)
            if data.kind != "float" and to not in _INT_TYPES:
                self._refuse_sym(node, "a cast of token ids or lengths to type %d" % to)
            return data
        if isinstance(data, np.ndarray) and data.dtype != object:
            from onnx import helper
            if hasattr(helper, "tensor_dtype_to_np_dtype"):
                return data.astype(helper.tensor_dtype_to_np_dtype(to))
            from onnx import mapping
            return data.astype(mapping.TENSOR_TYPE_TO_NP_TYPE[to])
        return data

    def _op_Expand(self, node, inputs, attrs):
        data = inputs[0]
        if data is ZEROS or (isinstance(data, np.ndarray) and data.dtype != object
                             and not np.any(data)):
            return ZEROS
        if isinstance(data, _Sym):
            self._refuse_sym(node, "broadcasting the network's data")
        shape = inputs[1]
        if isinstance(data, np.ndarray) and isinstance(shape, np.ndarray) \
                and shape.dtype != object:
            return data * np.ones(shape.astype(np.int64), dtype=data.dtype)
        return OPAQUE

    def _op_ConstantOfShape(self, node, inputs, attrs):
        value = self.numpy_helper.to_array(attrs["value"]) if "value" in attrs \
            else np.zeros(1, np.float32)
        if not np.any(value):
            return ZEROS
        shape = inputs[0]
        if isinstance(shape, np.ndarray) and shape.dtype != object:
            return np.full(shape.astype(np.int64), value.reshape(-1)[0], dtype=value.dtype)
        return OPAQUE

    def _arithmetic(self, node, inputs, function):
        a, b = inputs[0], inputs[1]
        if isinstance(a, _Sym) or isinstance(b, _Sym):
            return None
        if all(isinstance(v, np.ndarray) and v.dtype != object for v in (a, b)):
            return function(a, b)
        return OPAQUE  # shape arithmetic on dynamic sizes

    def _op_Add(self, node, inputs, attrs):
        folded = self._arithmetic(node, inputs, np.add)
        if folded is not None:
            return folded
        sym, other = (inputs[0], inputs[1]) if isinstance(inputs[0], _Sym) \
            else (inputs[1], inputs[0])
        head = self.head
        if (head is None or head["sym"] is not sym or head["bias"] is not None
                or not isinstance(other, np.ndarray) or other.dtype == object):
            self._refuse_sym(node, "an addition other than the head's bias (right after its "
                                   "MatMul, a constant of its output size)")
        O = head["weight"].shape[0]
        if other.size != O or (other.ndim > 0 and other.shape[-1] != O):
            self._refuse_sym(node, "a bias of shape %s for a head of %d outputs"
                             % (tuple(other.shape), O))
        head["bias"] = other.reshape(O)
        out = _Sym(sym.ids, sym.dyn)
        head["sym"] = out
        return out

    def _op_Sub(self, node, inputs, attrs):
        folded = self._arithmetic(node, inputs, np.subtract)
        return self._refuse_sym(node) if folded is None else folded

    def _op_Mul(self, node, inputs, attrs):
        folded = self._arithmetic(node, inputs, np.multiply)
        return self._refuse_sym(node) if folded is None else folded

    def _op_Div(self, node, inputs, attrs):
        def divide(a, b):
            return a // b if a.dtype.kind in "iu" and b.dtype.kind in "iu" else a / b
        folded = self._arithmetic(node, inputs, divide)
        return self._refuse_sym(node) if folded is None else folded

    # ---- operators that move data: on constants and on _Sym alike ----------------------

    def _op_Transpose(self, node, inputs, attrs):
        data = inputs[0]
        if isinstance(data, (_Sym, np.ndarray)):
            ndim = data.ids.ndim if isinstance(data, _Sym) else data.ndim
            perm = list(attrs.get("perm", range(ndim)[::-1]))
            if isinstance(data, np.ndarray):
                return np.transpose(data, perm)
            return _Sym(np.transpose(data.ids, perm), [data.dyn[p] for p in perm], data.kind)
        return OPAQUE

    def _op_Squeeze(self, node, inputs, attrs):
        data = inputs[0]
        axes = self._axes(node, inputs, attrs, 1)
        if isinstance(data, np.ndarray):
            return np.squeeze(data, axis=None if axes is None else tuple(axes))
        if not isinstance(data, _Sym):
            return OPAQUE
        if axes is None:
            self._refuse_sym(node, "a Squeeze without axes (time or batch may be 1)")
        axes = sorted(a % data.ids.ndim for a in axes)
        for a in axes:
            if data.dyn[a] is not None or data.ids.shape[a] != 1:
                self._refuse_sym(node, "squeezing axis %d, which is not of size 1" % a)
        return _Sym(np.squeeze(data.ids, axis=tuple(axes)),
                    [label for i, label in enumerate(data.dyn) if i not in axes], data.kind)

    def _op_Unsqueeze(self, node, inputs, attrs):
        data = inputs[0]
        axes = self._axes(node, inputs, attrs, 1)
        if axes is None:
            raise UnsupportedError("%s: an Unsqueeze without axes" % _describe(node))
        if isinstance(data, np.ndarray):
            rank = data.ndim + len(axes)
            for a in sorted(a % rank for a in axes):
                data = np.expand_dims(data, a)
            return data
        if not isinstance(data, _Sym):
            return OPAQUE
        ids, dyn = data.ids, list(data.dyn)
        rank = ids.ndim + len(axes)
        for a in sorted(a % rank for a in axes):
            ids = np.expand_dims(ids, a)
            dyn.insert(a, None)
        return _Sym(ids, dyn, data.kind)

    def _op_Concat(self, node, inputs, attrs):
        axis = attrs["axis"]
        if all(isinstance(v, np.ndarray) for v in inputs):
            if any(v.dtype == object for v in inputs):
                return np.concatenate([v.astype(object) for v in inputs], axis=axis)
            return np.concatenate(inputs, axis=axis)
        if not all(isinstance(v, _Sym) for v in inputs):
            if any(isinstance(v, _Sym) for v in inputs):
                self._refuse_sym(node, "joining the network's data with other tensors")
            return OPAQUE
        first = inputs[0]
        axis %= first.ids.ndim
        for other in inputs[1:]:
            if other.dyn != first.dyn or other.kind != first.kind or \
                    other.ids.shape[:axis] + other.ids.shape[axis + 1:] != \
                    first.ids.shape[:axis] + first.ids.shape[axis + 1:]:
                self._refuse_sym(node, "joining tensors of different shapes")
        if first.dyn[axis] is not None:
            self._refuse_sym(node, "joining along the time or batch axis")
        return _Sym(np.concatenate([v.ids for v in inputs], axis=axis), first.dyn, first.kind)

    def _last_step(self, node, sym, axis):
        """sym at the last time step of axis (the time axis): Y there, for a
        unidirectional LSTM without sequence lengths, is its final h."""
        if sym.dyn[axis] != self.time_label or self.time_label is None:
            self._refuse_sym(node, "picking one step of the batch axis, or of data before "
                                   "the LSTM")

        def last(entry):
            if entry[0] == "y" and self.lengths is False:
                return ("ylast",) + entry[1:]
            return ("step of",) + entry
        out = np.empty_like(sym.ids)
        for index in np.ndindex(*sym.ids.shape):
            out[index] = last(sym.ids[index])
        return out

    def _op_Gather(self, node, inputs, attrs):
        data, indices = inputs
        axis = attrs.get("axis", 0)
        if isinstance(indices, _Sym):
            if indices.kind != "tokens" or not isinstance(data, np.ndarray) \
                    or data.dtype == object or data.ndim != 2 or axis != 0:
                self._refuse_sym(node, "a Gather by the network's ids other than an embedding "
                                       "lookup (rows of a constant V x E matrix)")
            if self.embedding is not None:
                self._refuse_sym(node, "a second embedding")
            self.embedding = self._const(node, data, "first input (the embedding weight)")
            E = data.shape[1]
            return _Sym(_ids(indices.ids.shape + (E,), lambda a, b, f: ("e", f)),
                        indices.dyn + (None,))
        if isinstance(indices, np.ndarray) and indices.dtype == object:
            return OPAQUE
        if isinstance(data, np.ndarray):
            if not isinstance(indices, np.ndarray):
                return OPAQUE
            n = data.shape[axis]
            return _take(data, np.where(indices < 0, indices + n, indices), axis)
        if not isinstance(data, _Sym):
            return OPAQUE
        index = self._ints(node, indices, "indices")
        axis %= data.ids.ndim
        if data.dyn[axis] is not None:
            if index != [-1]:
                self._refuse_sym(node, "picking a step other than the last")
            ids = self._last_step(node, data, axis)
            if indices.ndim == 0:
                return _Sym(_take(ids, 0, axis), data.dyn[:axis] + data.dyn[axis + 1:],
                            data.kind)
            return _Sym(ids, data.dyn[:axis] + (None,) + data.dyn[axis + 1:], data.kind)
        n = data.ids.shape[axis]
        if any(not -n <= i < n for i in index):
            self._refuse_sym(node, "indices %s outside an axis of %d" % (index, n))
        taken = _take(data.ids, np.array(index).reshape(indices.shape) % n, axis)
        dyn = data.dyn[:axis] + (None,) * indices.ndim + data.dyn[axis + 1:]
        return _Sym(taken, dyn, data.kind)

    def _op_Slice(self, node, inputs, attrs):
        data = inputs[0]
        if "starts" in attrs:  # opset < 10
            starts, ends = list(attrs["starts"]), list(attrs["ends"])
            axes, steps = attrs.get("axes"), None
        else:
            starts = self._ints(node, inputs[1], "starts")
            ends = self._ints(node, inputs[2], "ends")
            axes = self._ints(node, inputs[3], "axes") if len(inputs) > 3 and \
                inputs[3] is not None else None
            steps = self._ints(node, inputs[4], "steps") if len(inputs) > 4 and \
                inputs[4] is not None else None
        axes = list(range(len(starts))) if axes is None else list(axes)
        steps = [1] * len(starts) if steps is None else steps
        if isinstance(data, np.ndarray):
            index = [slice(None)] * data.ndim
            for a, s, e, st in zip(axes, starts, ends, steps):
                index[a] = slice(s, min(e, data.shape[a] + 1) if e > 0 else e, st)
            return data[tuple(index)]
        if not isinstance(data, _Sym):
            return OPAQUE
        ids, dyn = data.ids, list(data.dyn)
        for a, s, e, st in zip(axes, starts, ends, steps):
            a %= ids.ndim
            if dyn[a] is None:
                index = [slice(None)] * ids.ndim
                index[a] = slice(s, e if e < _INT_MAX // 2 else None, st)
                ids = ids[tuple(index)]
            elif (s, st) == (0, 1) and e >= _INT_MAX // 2:
                continue  # the whole axis
            elif (s, st) == (-1, 1) and e >= _INT_MAX // 2:
                ids = self._last_step(node, _Sym(ids, dyn, data.kind), a)
                dyn[a] = None
            else:
                self._refuse_sym(node, "a slice of the time or batch axis other than its last "
                                       "step")
        if 0 in ids.shape:
            self._refuse_sym(node, "an empty slice")
        return _Sym(ids, dyn, data.kind)

    def _op_Reshape(self, node, inputs, attrs):
        data, shape = inputs
        if isinstance(shape, np.ndarray) and shape.dtype == object:
            entries = list(shape)
        elif isinstance(shape, np.ndarray):
            entries = [int(v) for v in shape]
        else:
            if isinstance(data, _Sym):
                self._refuse_sym(node, "a reshape to a shape computed in a way not followed")
            return OPAQUE
        if attrs.get("allowzero", 0) and 0 in entries:
            self._refuse_sym(node, "a reshape with allowzero=1 and a zero in its shape")
        if isinstance(data, np.ndarray):
            if any(isinstance(e, str) for e in entries):
                return OPAQUE
            target = [data.shape[i] if e == 0 else e for i, e in enumerate(entries)]
            return data.reshape(target)
        if not isinstance(data, _Sym):
            return OPAQUE
        return self._reshape_sym(node, data, entries)

    def _reshape_sym(self, node, data, entries):
        """Reshape a _Sym: its dynamic axes stay whole and in order; the static
        axes between them are regrouped."""
        # Each target entry: ("dyn", label) or ("static", n) (n = -1: inferred).
        target = []
        for i, e in enumerate(entries):
            if isinstance(e, str):
                target.append(("dyn", e))
            elif e == 0:
                if i >= len(data.dyn):
                    self._refuse_sym(node, "a reshape copying an axis the input does not have")
                target.append(("dyn", data.dyn[i]) if data.dyn[i] is not None
                              else ("static", data.ids.shape[i]))
            else:
                target.append(("static", e))
        if [t[1] for t in target if t[0] == "dyn"] != [d for d in data.dyn if d is not None]:
            self._refuse_sym(node, "a reshape that does not keep the time and batch axes whole")

        def groups(items, is_dyn):
            out, current = [], []
            for item in items:
                if is_dyn(item):
                    out.append(current)
                    current = []
                else:
                    current.append(item)
            out.append(current)
            return out

        in_groups = groups(list(range(len(data.dyn))), lambda a: data.dyn[a] is not None)
        out_groups = groups(target, lambda t: t[0] == "dyn")
        pieces = []
        for axes, wanted in zip(in_groups, out_groups):
            size = int(np.prod([data.ids.shape[a] for a in axes], dtype=np.int64))
            sizes = [t[1] for t in wanted]
            if sizes.count(-1) > 1:
                self._refuse_sym(node, "a reshape with two -1")
            if -1 in sizes:
                known = int(np.prod([s for s in sizes if s != -1], dtype=np.int64))
                if known == 0 or size % known:
                    self._refuse_sym(node, "a reshape whose -1 does not divide")
                sizes[sizes.index(-1)] = size // known
            if int(np.prod(sizes, dtype=np.int64)) != size:
                self._refuse_sym(node, "a reshape that changes the number of elements")
            pieces.append(sizes)
        # Static axes in order, regrouped; dynamic axes moved last and back.
        dyn_axes = [a for a, d in enumerate(data.dyn) if d is not None]
        static_axes = [a for a, d in enumerate(data.dyn) if d is None]
        flat = np.transpose(data.ids, static_axes + dyn_axes).reshape(-1)
        static_shape = [s for sizes in pieces for s in sizes]
        ids = flat.reshape(static_shape) if static_shape else flat.reshape(())
        # put the dynamic axes (extent 1) back where the target has them
        out_dyn = []
        for k, sizes in enumerate(pieces):
            out_dyn.extend([None] * len(sizes))
            if k < len(pieces) - 1:
                out_dyn.append([t[1] for t in target if t[0] == "dyn"][k])
        for a, label in enumerate(out_dyn):
            if label is not None:
                ids = np.expand_dims(ids, a)
        return _Sym(ids, out_dyn, data.kind)

    # ---- the head -----------------------------------------------------------------------

    def _dense(self, node, sym, weight, bias):
        """Record the head: sym's last axis times weight^T (weight O x K) + bias."""
        if not isinstance(sym, _Sym) or sym.kind != "float":
            raise UnsupportedError("%s: a dense layer not on the LSTM's output"
                                   % _describe(node))
        if self.head is not None:
            self._refuse_sym(node, "a second dense layer (liblstm's head is one nn.Linear)")
        features = sym.vector() if sym.dyn[-1] is None else None
        if features is None:
            self._refuse_sym(node, "a dense layer over anything but the last axis")
        if weight.ndim != 2 or weight.shape[1] != len(features):
            self._refuse_sym(node, "a weight of shape %s for %d inputs"
                             % (tuple(weight.shape), len(features)))
        O = weight.shape[0]
        ids = np.broadcast_to(_ids((O,), lambda o: ("z", o)),
                              sym.ids.shape[:-1] + (O,)).copy()
        out = _Sym(ids, sym.dyn, node=node)
        self.head = {"features": features, "weight": weight, "bias": bias, "node": node,
                     "sym": out}
        return out

    def _op_MatMul(self, node, inputs, attrs):
        a, b = inputs
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return np.matmul(a, b)
        weight = self._const(node, b, "second input (the weight)")
        if weight.ndim != 2:
            self._refuse_sym(node, "a MatMul by a weight of rank %d" % weight.ndim)
        return self._dense(node, a, weight.T, None)

    def _op_Gemm(self, node, inputs, attrs):
        for name in ("alpha", "beta"):
            if attrs.get(name, 1.0) != 1.0:
                raise UnsupportedError("%s: attribute %s=%r: liblstm's head is x W^T + b, "
                                       "without scaling" % (_describe(node), name, attrs[name]))
        if attrs.get("transA", 0):
            raise UnsupportedError("%s: attribute transA=1: the head's input must be "
                                   "[batch, features]" % _describe(node))
        a = inputs[0]
        if not isinstance(a, _Sym) or len(a.dyn) != 2:
            self._refuse_sym(node, "a Gemm not on [batch, features] of the LSTM")
        weight = self._const(node, inputs[1], "second input (the weight)")
        weight = weight if attrs.get("transB", 0) else weight.T
        bias = None
        if len(inputs) > 2 and inputs[2] is not None:
            bias = self._const(node, inputs[2], "third input (the bias)")
            if bias.size != weight.shape[0]:
                self._refuse_sym(node, "a bias of shape %s for %d outputs"
                                 % (tuple(bias.shape), weight.shape[0]))
            bias = np.broadcast_to(bias, (1, weight.shape[0])).reshape(-1) \
                if bias.ndim else np.full(weight.shape[0], bias)
        out = self._dense(node, a, weight, bias)
        if bias is None:
            self.head["bias"] = np.zeros(weight.shape[0], np.float32)
        return out

    # ---- the LSTM -------------------------------------------------------------------------

    def _op_LSTM(self, node, inputs, attrs):
        where = _describe(node)

        def refuse(attribute, text):
            raise UnsupportedError("%s: attribute %s: %s" % (where, attribute, text))

        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction not in ("forward", "bidirectional"):
            refuse("direction=%r" % direction, "liblstm's layers run forward or both ways, "
                   "not in reverse alone")
        D = 2 if direction == "bidirectional" else 1
        if "clip" in attrs:
            refuse("clip=%r" % attrs["clip"], "liblstm's LSTM does not clip its cell")
        if attrs.get("input_forget", 0):
            refuse("input_forget=%r" % attrs["input_forget"],
                   "liblstm's LSTM has separate input and forget gates")
        for name in ("activation_alpha", "activation_beta"):
            if name in attrs:
                refuse("%s=%r" % (name, list(attrs[name])),
                       "liblstm's activations are the plain sigmoid and tanh")
        if "activations" in attrs:
            got = [a.decode() if isinstance(a, bytes) else a for a in attrs["activations"]]
            if got != list(_DEFAULT_ACTIVATIONS) * D:
                refuse("activations=%r" % got, "liblstm's gates are %s in each direction"
                       % ", ".join(_DEFAULT_ACTIVATIONS))
        layout = attrs.get("layout", 0)
        if layout not in (0, 1):
            refuse("layout=%r" % layout, "it must be 0 or 1")

        inputs = inputs + [None] * (8 - len(inputs))
        X, W, R, B, lengths, initial_h, initial_c, P = inputs
        W = self._const(node, W, "W input")
        R = self._const(node, R, "R input")
        if W.ndim != 3 or W.shape[0] != D or W.shape[1] % 4:
            raise UnsupportedError("%s: W has shape %s; it must be [%d, 4 H, I]"
                                   % (where, tuple(W.shape), D))
        H = W.shape[1] // 4
        if attrs.get("hidden_size", H) != H or R.shape != (D, 4 * H, H):
            refuse("hidden_size=%r" % attrs.get("hidden_size"),
                   "W has shape %s and R %s, which give hidden_size %d"
                   % (tuple(W.shape), tuple(R.shape), H))
        B = np.zeros((D, 8 * H)) if B is None else self._const(node, B, "B input")
        if B.shape != (D, 8 * H):
            raise UnsupportedError("%s: B has shape %s; it must be [%d, %d]"
                                   % (where, tuple(B.shape), D, 8 * H))
        if P is not None:
            P = self._const(node, P, "P input (the peepholes)")
            if P.shape != (D, 3 * H):
                raise UnsupportedError("%s: P has shape %s; it must be [%d, %d]"
                                       % (where, tuple(P.shape), D, 3 * H))
        if self.layers:
            first = self.layers[0]
            if H != first["H"]:
                refuse("hidden_size=%d" % H, "layer 0 has hidden_size %d; liblstm's layers "
                       "share one" % first["H"])
            if D != first["D"]:
                refuse("direction=%r" % direction, "layer 0 is %s; liblstm's layers share "
                       "one direction" % first["direction"])
            if layout != first["layout"]:
                refuse("layout=%d" % layout, "layer 0 has layout %d" % first["layout"])

        layer = self._layer_input(node, X, layout, W.shape[2])
        self._sequence_lengths(node, lengths)
        for kind, state in (("h", initial_h), ("c", initial_c)):
            self._initial_state(node, kind, state, layer, D, H, layout)

        weights, biases, peepholes = [], [], []
        for d in range(D):
            W_d = W[d].reshape(4, H, -1)[_GATE_ORDER].reshape(4 * H, -1)
            R_d = R[d].reshape(4, H, H)[_GATE_ORDER].reshape(4 * H, H)
            weights.append(np.concatenate([R_d, W_d], axis=1))
            b = B[d, :4 * H].astype(np.float64) + B[d, 4 * H:].astype(np.float64)
            biases.append(b.reshape(4, H)[_GATE_ORDER].reshape(4 * H, 1))
            peepholes.append(None if P is None else P[d].reshape(3, H)[_PEEPHOLE_ORDER])
        self.layers.append({"H": H, "D": D, "I": W.shape[2], "layout": layout, "node": node,
                            "direction": direction, "weights": weights, "biases": biases,
                            "peepholes": peepholes})

        t, b_ = self.time_label, self.batch_label
        if layout == 0:
            Y = _Sym(_ids((1, D, 1, H), lambda _t, d, _b, j: ("y", layer, d, j)),
                     (t, None, b_, None))
            final = [_Sym(_ids((D, 1, H), lambda d, _b, j, k=k: (k, layer, d, j)),
                          (None, b_, None)) for k in ("h", "c")]
        else:
            Y = _Sym(_ids((1, 1, D, H), lambda _b, _t, d, j: ("y", layer, d, j)),
                     (b_, t, None, None))
            final = [_Sym(_ids((1, D, H), lambda _b, d, j, k=k: (k, layer, d, j)),
                          (b_, None, None)) for k in ("h", "c")]
        return [Y] + final

    def _layer_input(self, node, X, layout, input_size):
        """The layer this LSTM node is, from what its X holds; sets the time
        and batch labels at layer 0."""
        if not isinstance(X, _Sym) or X.kind != "float" or len(X.dyn) != 3 \
                or X.dyn[2] is not None or None in X.dyn[:2]:
            raise UnsupportedError("%s: its input X is not [T, B, I] (or [B, T, I] with "
                                   "layout 1) computed from the network's input"
                                   % _describe(node))
        features = X.vector() or [()]
        t, b = X.dyn[:2] if layout == 0 else X.dyn[1::-1]
        layer = len(self.layers)
        if layer == 0:
            if features[0][:1] not in (("x",), ("e",)) or \
                    features != [(features[0][0], f) for f in range(len(features))]:
                raise UnsupportedError("%s: its input X is not the network's input (float "
                                       "features, or an embedding lookup of token ids)"
                                       % _describe(node))
            self.time_label, self.batch_label = t, b
        else:
            below = self.layers[-1]
            want = [("y", layer - 1, d, j) for d in range(below["D"]) for j in range(below["H"])]
            if features != want:
                raise UnsupportedError("%s: its input X is not layer %d's output Y (both "
                                       "directions side by side, at every step)"
                                       % (_describe(node), layer - 1))
            if (t, b) != (self.time_label, self.batch_label):
                raise UnsupportedError("%s: its input X has time and batch axes swapped "
                                       "with respect to layer 0's" % _describe(node))
        if len(features) != input_size:
            raise UnsupportedError("%s: W expects %d inputs; X has %d"
                                   % (_describe(node), input_size, len(features)))
        return layer

    def _sequence_lengths(self, node, lengths):
        name = False
        if lengths is not None:
            if not isinstance(lengths, _Sym) or lengths.kind != "lengths":
                raise UnsupportedError("%s: its sequence_lens is not a graph input (liblstm "
                                       "takes lengths with each call, not in the model)"
                                       % _describe(node))
            name = next(n for n, v in self.values.items() if v is lengths)
        if self.lengths is not None and self.lengths != name:
            raise UnsupportedError("%s: its sequence_lens differs from layer 0's"
                                   % _describe(node))
        self.lengths = name

    def _initial_state(self, node, kind, state, layer, D, H, layout):
        what = "initial_" + kind
        if state is None or state is ZEROS or (isinstance(state, np.ndarray) and
                                               state.dtype != object and not np.any(state)):
            name = False
        elif isinstance(state, _Sym):
            if layout != 0:
                raise UnsupportedError("%s: %s from a graph input with layout 1 ([B, D, H]; "
                                       "liblstm takes [L D, B, H])" % (_describe(node), what))
            entries = state.ids.reshape(-1) if state.ids.ndim == 3 else None
            name = entries[0][1] if entries is not None and len(entries) and \
                entries[0][0] == "in" else None
            want = [("in", name, layer * D + d, j) for d in range(D) for j in range(H)]
            if state.dyn[0] is not None or state.dyn[2] is not None or \
                    state.ids.shape != (D, 1, H) or list(entries) != want:
                raise UnsupportedError("%s: %s is not rows %d to %d of an [L D, B, H] graph "
                                       "input" % (_describe(node), what, layer * D,
                                                  layer * D + D - 1))
        elif isinstance(state, np.ndarray):
            raise UnsupportedError("%s: %s is a nonzero constant (a learned initial state), "
                                   "which liblstm's network does not hold" % (_describe(node),
                                                                              what))
        else:
            raise UnsupportedError("%s: %s is computed in a way not followed"
                                   % (_describe(node), what))
        if kind in self.states and self.states[kind] != name:
            raise UnsupportedError("%s: %s differs in kind from layer 0's (all zeros, or all "
                                   "rows of one graph input)" % (_describe(node), what))
        self.states[kind] = name

    # ---- the result -------------------------------------------------------------------------

    def _assemble(self, outputs):
        L = len(self.layers)
        top = L - 1
        D, H = self.layers[0]["D"], self.layers[0]["H"]
        # The input's own layout (whatever the LSTM nodes' layout attribute).
        batch_first = self.time_label != "a0"
        for kind, name in self.states.items():
            if name and self.values[name].ids.shape[0] != L * D:
                raise UnsupportedError("input %r (initial_%s) has %d rows; liblstm's takes "
                                       "L D = %d, all of them read"
                                       % (name, kind, self.values[name].ids.shape[0], L * D))
        y_top = [("y", top, d, j) for d in range(D) for j in range(H)]
        main = None
        for name in outputs:
            value = self.values.get(name)
            source = self.producer.get(name)
            where = "graph output %r%s" % (name, " (from %s)" % _describe(source)
                                           if source is not None else "")
            if not isinstance(value, _Sym):
                raise UnsupportedError("%s is not computed from the network's input" % where)
            if self.head is not None and value.vector() == [
                    ("z", o) for o in range(self.head["weight"].shape[0])]:
                kind = "head"
            elif value.vector() is not None and value.vector() == y_top and \
                    len(value.dyn) == 3:
                kind = "y"
            elif self._is_state_stack(value, D, H, L):
                continue  # h_n or c_n, which the network gives as hT, cT
            else:
                raise UnsupportedError("%s is not something liblstm's network outputs (the "
                                       "head's output, the top layer's y without a head, or "
                                       "h_n, c_n)" % where)
            if main is not None:
                raise UnsupportedError("%s: a second main output (liblstm's network has one)"
                                       % where)
            if kind == "y" and self.head is not None:
                raise UnsupportedError("%s: the LSTM's y beside the head's output" % where)
            main = (kind, value, where)
        placement = None
        if self.head is not None:
            if main is None:
                raise UnsupportedError("the head (%s) reaches no graph output unchanged"
                                       % _describe(self.head["node"]))
            placement = self._placement(main, D, H, top, batch_first)
        elif main is not None:
            self._check_every_step_layout(main[1], main[2], batch_first)
        config = {"input_size": self.layers[0]["I"], "hidden_size": H, "num_layers": L,
                  "bidirectional": D == 2, "batch_first": batch_first,
                  "peephole": any(p is not None for layer in self.layers
                                  for p in layer["peepholes"])}
        tensors = {}
        for index, layer in enumerate(self.layers):
            for d in range(D):
                tensors[convert.tensor_name(convert.WEIGHT, index, d)] = layer["weights"][d]
                tensors[convert.tensor_name(convert.BIAS, index, d)] = layer["biases"][d]
                if config["peephole"]:
                    p = layer["peepholes"][d]
                    tensors[convert.tensor_name(convert.PEEPHOLE, index, d)] = \
                        np.zeros((3, H)) if p is None else p
        head = None
        if placement is not None:
            head = {"placement": placement, "weight": self.head["weight"],
                    "bias": self.head["bias"]}
        embedding = None if self.embedding is None else {"weight": self.embedding}
        return config, tensors, embedding, head

    def _is_state_stack(self, value, D, H, L):
        if len(value.dyn) != 3 or value.dyn[0] is not None or value.dyn[2] is not None \
                or value.ids.shape != (L * D, 1, H):
            return False
        kind = value.ids[0, 0, 0][0]
        return kind in ("h", "c") and list(value.ids.reshape(-1)) == [
            (kind, l, d, j) for l in range(L) for d in range(D) for j in range(H)]

    def _placement(self, main, D, H, top, batch_first):
        kind, value, where = main
        features = self.head["features"]
        node = self.head["node"]
        if kind != "head":
            raise UnsupportedError("%s: the head's output does not reach a graph output"
                                   % where)
        if features == [("y", top, d, j) for d in range(D) for j in range(H)]:
            self._check_every_step_layout(value, where, batch_first)
            return "every"
        last = [("h", top, d, j) for d in range(D) for j in range(H)]
        if D == 1:
            alternatives = (last, [("ylast", top, 0, j) for j in range(H)])
        else:
            alternatives = (last,)
        if features in alternatives:
            if len(value.dyn) != 2 or value.dyn[0] != self.batch_label:
                raise UnsupportedError("%s: a last-step head's output must be [B, O]" % where)
            return "last"
        raise UnsupportedError(
            "%s: the head's input is not what liblstm's head reads: the top layer's y at every "
            "step, or its final hidden states (forward%s) at the last step%s"
            % (_describe(node), ", then reverse" if D == 2 else "",
               "; a step of Y other than h_n, or with sequence_lens, is not" if D == 1
               else "; Y at the last step is not h_n in the reverse direction"))

    def _check_every_step_layout(self, value, where, batch_first):
        want = (self.batch_label, self.time_label) if batch_first \
            else (self.time_label, self.batch_label)
        if tuple(value.dyn[:2]) != want or len(value.dyn) != 3:
            raise UnsupportedError("%s: its time and batch axes are not in the order of the "
                                   "input's (%s)" % (where, "batch-major" if batch_first
                                                     else "time-major"))


def _load(source):
    import onnx
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return onnx.load_from_string(bytes(source))
    return onnx.load(source)


def from_onnx(source, *, padding_idx=None, loss=None, metadata=None):
    """A liblstm model file (bytes) from an ONNX model; see convert.from_onnx."""
    model = _load(source)
    importer = _Importer(model)
    config, tensors, embedding, head = importer.run()
    if embedding is not None and padding_idx is not None:
        embedding["padding_idx"] = padding_idx
    elif padding_idx is not None:
        raise FormatError("padding_idx was given, but the graph has no embedding")
    entries = {"source": "onnx:%s %s" % (model.producer_name, model.producer_version)}
    entries.update(metadata or {})
    return convert.pack_network(config, tensors, embedding=embedding, head=head, loss=loss,
                                metadata=entries)
