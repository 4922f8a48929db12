"""NetDef helpers: build nets by hand, convert tensors and attributes, load, save and check.

A NetDef (graphruntime/proto/net.proto) holds a graph of operators in execution order and its
weights. `NetBuilder` makes one by hand:

    >>> import numpy as np
    >>> from graphruntime.netdef import NetBuilder, check
    >>> b = NetBuilder("tiny")
    >>> x = b.input("x", "float32", [-1, 3])
    >>> w = b.initializer("w", np.ones(3, np.float32))
    >>> y = b.op("add", [x, w])
    >>> b.output(y)
    >>> net = b.build()
    >>> check(net)[y]
    ('float32', [-1, 3])
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
from google.protobuf import message as _message
from google.protobuf import text_format

from graphruntime import _C, errors
from graphruntime.proto import net_pb2

OPSET_VERSION = 1

DTYPE_NAMES = ["undefined", "float32", "float64", "int64", "int32", "uint8", "int8", "bool"]
_NUMPY_DTYPES = {
    "float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32,
    "uint8": np.uint8, "int8": np.int8, "bool": np.bool_,
}


def dtype_to_proto(name: str | np.dtype) -> int:
    """DataType enum value of a dtype name ("float32") or numpy dtype."""
    key = np.dtype(name).name if not isinstance(name, str) else name
    if key == "bool_":
        key = "bool"
    if key not in _NUMPY_DTYPES:
        raise errors.InvalidArgumentError(f"unsupported dtype {name!r}")
    return DTYPE_NAMES.index(key)


def dtype_from_proto(value: int) -> str:
    """Dtype name of a DataType enum value; raises InvalidModelError for UNDEFINED/unknown."""
    if not 0 < value < len(DTYPE_NAMES):
        raise errors.InvalidModelError(f"invalid data type {value}")
    return DTYPE_NAMES[value]


def numpy_dtype(name: str) -> np.dtype:
    """numpy dtype of an Ember dtype name."""
    return np.dtype(_NUMPY_DTYPES[name])


# ---------------------------------------------------------------- tensors

def tensor_from_numpy(name: str, array: np.ndarray) -> net_pb2.TensorProto:
    """A TensorProto holding a copy of `array` (little-endian, row-major)."""
    array = np.asarray(array)
    t = net_pb2.TensorProto(name=name, dims=list(array.shape),
                            data_type=dtype_to_proto(array.dtype))
    t.raw_data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return t


def tensor_to_numpy(tensor: net_pb2.TensorProto) -> np.ndarray:
    """The value of a TensorProto as a numpy array (read-only view of its bytes when possible)."""
    dtype = numpy_dtype(dtype_from_proto(tensor.data_type))
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise errors.InvalidModelError(f"initializer '{tensor.name}': negative dimension in {dims}")
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if len(tensor.raw_data) != count * dtype.itemsize:
        raise errors.InvalidModelError(
            f"initializer '{tensor.name}': raw_data has {len(tensor.raw_data)} bytes, shape "
            f"{dims} of {dtype.name} needs {count * dtype.itemsize}")
    return np.frombuffer(tensor.raw_data, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(dims)


# ---------------------------------------------------------------- attributes

def argument_from_value(name: str, value: Any) -> net_pb2.Argument:
    """An Argument holding a Python attribute value (bool, int, float, str or a list of those)."""
    A = net_pb2.Argument
    arg = A(name=name)
    if isinstance(value, (bool, np.bool_)):
        arg.type, arg.i = A.BOOL, int(bool(value))
    elif isinstance(value, (int, np.integer)):
        arg.type, arg.i = A.INT, int(value)
    elif isinstance(value, (float, np.floating)):
        arg.type, arg.f = A.FLOAT, float(value)
    elif isinstance(value, str):
        arg.type, arg.s = A.STRING, value
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = list(value.tolist() if isinstance(value, np.ndarray) else value)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in items):
            arg.type = A.INTS
            arg.ints.extend(int(v) for v in items)
        elif all(isinstance(v, (int, float, np.integer, np.floating)) for v in items):
            arg.type = A.FLOATS
            arg.floats.extend(float(v) for v in items)
        elif all(isinstance(v, str) for v in items):
            arg.type = A.STRINGS
            arg.strings.extend(items)
        else:
            raise errors.InvalidArgumentError(f"attribute '{name}': unsupported list {value!r}")
    else:
        raise errors.InvalidArgumentError(f"attribute '{name}': unsupported value {value!r}")
    return arg


def argument_to_value(arg: net_pb2.Argument) -> Any:
    """The Python value of an Argument."""
    A = net_pb2.Argument
    if arg.type == A.INT:
        return int(arg.i)
    if arg.type == A.BOOL:
        return bool(arg.i)
    if arg.type == A.FLOAT:
        return float(arg.f)
    if arg.type == A.STRING:
        return arg.s
    if arg.type == A.INTS:
        return [int(v) for v in arg.ints]
    if arg.type == A.FLOATS:
        return [float(v) for v in arg.floats]
    if arg.type == A.STRINGS:
        return list(arg.strings)
    raise errors.InvalidModelError(
        f"attribute '{arg.name}' has type {A.Type.Name(arg.type) if arg.type in A.Type.values() else arg.type}, "
        "which no op attribute takes")


def op_attrs(op: net_pb2.OperatorDef) -> dict[str, Any]:
    """The attributes of an OperatorDef as a dict of Python values."""
    out = {}
    for arg in op.arg:
        try:
            out[arg.name] = argument_to_value(arg)
        except errors.InvalidModelError as e:
            raise errors.InvalidModelError(f"{describe_op(op)}: {e}") from None
    return out


def set_op_attrs(op: net_pb2.OperatorDef, attrs: Mapping[str, Any]) -> None:
    """Replaces the attributes of `op` with `attrs` (sorted by name, so output is deterministic)."""
    del op.arg[:]
    for key in sorted(attrs):
        op.arg.append(argument_from_value(key, attrs[key]))


def describe_op(op: net_pb2.OperatorDef) -> str:
    """"conv2d 'layer1.conv'" -- how messages name an op."""
    return f"{op.type} '{op.name}'" if op.name else op.type


# ---------------------------------------------------------------- builder

class NetBuilder:
    """Builds a NetDef op by op; names are made unique automatically.

        >>> b = NetBuilder("mlp")
        >>> x = b.input("x", "float32", [-1, 4])
        >>> h = b.op("relu", [x])
        >>> b.output(h, "y")
        >>> [op.type for op in b.build().op]
        ['relu']
    """

    def __init__(self, name: str = "net"):
        self.net = net_pb2.NetDef(name=name, opset_version=OPSET_VERSION)
        self._names: set[str] = set()
        self._counter = 0

    def unique_name(self, hint: str) -> str:
        """A value name not used yet, based on `hint`."""
        hint = hint or "v"
        name = hint
        while name in self._names:
            self._counter += 1
            name = f"{hint}_{self._counter}"
        self._names.add(name)
        return name

    def input(self, name: str, dtype: str, shape: Sequence[int]) -> str:
        """Declares a graph input (-1 in `shape` = dynamic dim); returns its value name."""
        if name in self._names:
            raise errors.InvalidArgumentError(f"value name '{name}' is already used")
        self._names.add(name)
        self.net.input.add(name=name, data_type=dtype_to_proto(dtype), dims=list(shape))
        return name

    def initializer(self, name: str, array: np.ndarray) -> str:
        """Adds a constant (weight) tensor; returns its value name (made unique if taken)."""
        name = self.unique_name(name)
        self.net.initializer.append(tensor_from_numpy(name, np.asarray(array)))
        return name

    def op(self, op_type: str, inputs: Sequence[str | None], attrs: Mapping[str, Any] | None = None,
           *, name: str = "", outputs: Sequence[str] | int | None = None) -> Any:
        """Appends an op; returns its output name (or a list when `outputs` asks for several).

        `inputs` are value names (None or "" for an absent optional input). `outputs` is either
        the number of outputs (default: the schema's minimum) or their names.
        """
        schema = _C.op_schema(op_type)
        if outputs is None or isinstance(outputs, int):
            count = outputs if isinstance(outputs, int) else max(1, len(schema["outputs"]))
            base = name or op_type
            out_names = [self.unique_name(base if count == 1 else f"{base}:{i}") for i in range(count)]
        else:
            out_names = [self.unique_name(o) for o in outputs]
        op = self.net.op.add(type=op_type, name=name or out_names[0],
                             input=[i or "" for i in inputs], output=out_names)
        set_op_attrs(op, attrs or {})
        if outputs is None:
            return out_names[0]
        return out_names

    def output(self, value: str, name: str | None = None) -> None:
        """Marks a value as a graph output, optionally renaming it to `name`."""
        if name is not None and name != value:
            if name in self._names:
                raise errors.InvalidArgumentError(f"value name '{name}' is already used")
            self._names.add(name)
            _rename_value(self.net, value, name)
            value = name
        self.net.output.add(name=value)

    def build(self, check_net: bool = True) -> net_pb2.NetDef:
        """Returns the NetDef, with output dtypes/shapes filled in by shape inference."""
        if check_net:
            types = check(self.net)
            for out in self.net.output:
                dtype, shape = types[out.name]
                out.data_type = dtype_to_proto(dtype)
                del out.dims[:]
                out.dims.extend(shape)
        return self.net


def _rename_value(net: net_pb2.NetDef, old: str, new: str) -> None:
    for op in net.op:
        for i, v in enumerate(op.input):
            if v == old:
                op.input[i] = new
        for i, v in enumerate(op.output):
            if v == old:
                op.output[i] = new
    for vi in list(net.input) + list(net.output):
        if vi.name == old:
            vi.name = new
    for t in net.initializer:
        if t.name == old:
            t.name = new


# ---------------------------------------------------------------- load / save

def _require_netdef(net, what: str) -> None:
    if not isinstance(net, net_pb2.NetDef):
        raise errors.InvalidArgumentError(f"{what}() takes a NetDef, not {type(net).__name__}")


def load(path: str | os.PathLike) -> net_pb2.NetDef:
    """Reads a NetDef from a binary `.pb` file (or protobuf text format for `.pbtxt`)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise errors.InvalidArgumentError(
            f"model file '{path}' {'is a directory' if os.path.isdir(path) else 'does not exist'}")
    with open(path, "rb") as f:
        data = f.read()
    return load_bytes(data, text=path.endswith((".pbtxt", ".txt")), what=path)


def load_bytes(data: bytes, text: bool = False, what: str = "NetDef") -> net_pb2.NetDef:
    """Parses a serialized NetDef; a malformed one raises InvalidModelError."""
    net = net_pb2.NetDef()
    try:
        if text:
            text_format.Parse(data.decode("utf-8"), net)
        else:
            net.ParseFromString(data)
    except (_message.DecodeError, text_format.ParseError, UnicodeDecodeError) as e:
        raise errors.InvalidModelError(f"{what}: not a valid NetDef ({e})") from None
    return net


def save(net: net_pb2.NetDef, path: str | os.PathLike) -> None:
    """Writes a NetDef as binary protobuf (or text format when the path ends in `.pbtxt`)."""
    _require_netdef(net, "save")
    path = os.fspath(path)
    if path.endswith((".pbtxt", ".txt")):
        data = text_format.MessageToString(net).encode("utf-8")
    else:
        data = net.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- checker

ValueTypes = dict  # name -> (dtype name, shape list)


def check(net: net_pb2.NetDef, input_shapes: Mapping[str, Sequence[int]] | None = None) -> ValueTypes:
    """Validates a net against the op schemas and returns every value's (dtype, shape).

    Checks that names are unique, every op input is defined before use, op types exist
    (UnsupportedError otherwise), attributes have the schema's names and types, input dtypes and
    shapes are accepted by each op's inference function, and the outputs exist. `input_shapes`
    overrides the declared input shapes. Errors name the op and the tensor or attribute.
    """
    _require_netdef(net, "check")
    types: dict[str, tuple[str, list[int]]] = {}
    for vi in net.input:
        if not vi.name:
            raise errors.InvalidModelError("a graph input has an empty name")
        if vi.name in types:
            raise errors.InvalidModelError(f"graph input '{vi.name}' is declared twice")
        if any(d < -1 for d in vi.dims):
            raise errors.InvalidModelError(f"graph input '{vi.name}': invalid shape {list(vi.dims)}")
        shape = list(input_shapes[vi.name]) if input_shapes and vi.name in input_shapes else list(vi.dims)
        try:
            dtype = dtype_from_proto(vi.data_type)
        except errors.InvalidModelError:
            raise errors.InvalidModelError(f"graph input '{vi.name}': invalid data type {vi.data_type}") from None
        types[vi.name] = (dtype, shape)
    for t in net.initializer:
        if not t.name:
            raise errors.InvalidModelError("an initializer has an empty name")
        if t.name in types:
            raise errors.InvalidModelError(f"initializer '{t.name}' is defined twice")
        try:
            dtype = dtype_from_proto(t.data_type)
        except errors.InvalidModelError:
            raise errors.InvalidModelError(f"initializer '{t.name}': invalid data type {t.data_type}") from None
        tensor_to_numpy(t)  # checks the byte count
        types[t.name] = (dtype, list(t.dims))
    for op in net.op:
        where = describe_op(op)
        ins = []
        for i, name in enumerate(op.input):
            if name == "":
                ins.append(None)
                continue
            if name not in types:
                raise errors.InvalidModelError(f"{where}: input {i} '{name}' is not defined before this op")
            ins.append(types[name])
        attrs = op_attrs(op)
        try:
            outs = _C.infer_types(op.type, ins, attrs, num_outputs=len(op.output), name=op.name)
        except errors.UnsupportedError as e:
            raise errors.UnsupportedError(f"{where}: {e}") from None
        if len(outs) != len(op.output):
            raise errors.InvalidModelError(
                f"{where}: has {len(op.output)} outputs, the op produces {len(outs)}")
        for name, (dtype, shape) in zip(op.output, outs):
            if not name:
                raise errors.InvalidModelError(f"{where}: an output has an empty name")
            if name in types:
                raise errors.InvalidModelError(f"{where}: output '{name}' is already defined")
            types[name] = (dtype, list(shape))
    if not net.output:
        # An empty or truncated file parses as a NetDef with nothing in it: say so here rather
        # than load a model that computes nothing.
        raise errors.InvalidModelError(f"net '{net.name}' has no outputs")
    seen = set()
    for vi in net.output:
        if vi.name not in types:
            raise errors.InvalidModelError(f"graph output '{vi.name}' is not produced by any op")
        if vi.name in seen:
            raise errors.InvalidModelError(f"graph output '{vi.name}' is listed twice")
        seen.add(vi.name)
    return types


def initializers(net: net_pb2.NetDef) -> dict[str, np.ndarray]:
    """All initializers of a net as numpy arrays, by name."""
    return {t.name: tensor_to_numpy(t) for t in net.initializer}


def producers(net: net_pb2.NetDef) -> dict[str, int]:
    """Value name -> index of the op that produces it."""
    return {out: i for i, op in enumerate(net.op) for out in op.output}


def consumers(net: net_pb2.NetDef) -> dict[str, list[int]]:
    """Value name -> indices of the ops that read it."""
    out: dict[str, list[int]] = {}
    for i, op in enumerate(net.op):
        for name in op.input:
            if name:
                out.setdefault(name, []).append(i)
    return out


def listing(net: net_pb2.NetDef, types: Mapping | None = None) -> str:
    """A readable listing of the net, one op per line with attributes and shapes."""
    if types is None:
        try:
            types = check(net)
        except errors.EmberError:
            types = {}

    def fmt(name):
        if not name:
            return "-"
        if name in types:
            dtype, shape = types[name]
            return f"%{name}: {dtype}{list(shape)}"
        return f"%{name}"

    lines = [f"net {net.name}(" + ", ".join(fmt(v.name) for v in net.input) + ")"]
    for t in net.initializer:
        lines.append(f"  const {fmt(t.name)}")
    for op in net.op:
        attrs = ", ".join(f"{k}={v}" for k, v in op_attrs(op).items())
        lines.append(f"  {', '.join(fmt(o) for o in op.output)} = {op.type}"
                     f"({', '.join(fmt(i) for i in op.input)}){' {' + attrs + '}' if attrs else ''}")
    lines.append("  return " + ", ".join(fmt(v.name) for v in net.output))
    return "\n".join(lines)


__all__ = [
    "NetBuilder", "load", "load_bytes", "save", "check", "listing", "initializers",
    "tensor_from_numpy", "tensor_to_numpy", "argument_from_value", "argument_to_value",
    "op_attrs", "set_op_attrs", "describe_op", "producers", "consumers", "dtype_to_proto",
    "dtype_from_proto", "numpy_dtype", "OPSET_VERSION",
]
