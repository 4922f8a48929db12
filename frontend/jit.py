"""Tracing eager code into a graph: `trace(module_or_fn, example_inputs)` runs the code once on
the example inputs, records every op that goes through the dispatcher, and returns a
`TracedModule` whose `.net` is the NetDef and whose `__call__` runs the C++ graph runtime.

    >>> import frontend
    >>> from frontend import nn, jit
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval()
    >>> traced = jit.trace(model, frontend.randn(1, 4), dynamic_axes=[0])
    >>> traced(frontend.randn(8, 4)).shape
    frontend.Size([8, 3])

Parameters and buffers become initializers named by their `state_dict` keys; any other tensor
the code uses (a constant made inside forward) becomes an initializer too. Python control flow
is evaluated once, at trace time: when a tensor is turned into a Python value (`item()`,
`bool()`, `tolist()`...), the tracer warns (`TracerWarning`), because the recorded graph will not
follow a different branch for other inputs.

Dynamic axes: with `dynamic_axes` the inputs' listed axes are -1 in the net, and the code is
traced a second time with those axes one larger; `reshape`/`expand` shapes that depend on them are
generalized to -1. Anything else that bakes in the size (a constant of that shape, a slice end)
stays as traced, and the runtime's error for another size names the op.
"""
from __future__ import annotations

import inspect
import warnings
from typing import Any, Mapping

import numpy as np

from graphruntime import Predictor
from graphruntime.netdef import NetBuilder, listing, op_attrs, set_op_attrs
from graphruntime.proto import net_pb2


class TracerWarning(UserWarning):
    """The trace may not generalize: a tensor was converted to a Python value while tracing."""


class _Tracer:
    """Receives every dispatched op while tracing (the `frontend._dispatch.tracer` hook)."""

    def __init__(self, builder: NetBuilder, param_names: Mapping[int, str]):
        self.builder = builder
        self.param_names = dict(param_names)
        self.names: dict[int, str] = {}
        self.keep: list[Any] = []  # keeps traced tensors alive so their ids stay unique
        # (op type, input names, attrs, output shapes, input shapes) of every recorded op
        self.ops: list[tuple[str, list, dict, list, list]] = []
        self.scope: list[str] = []  # names of the modules whose forward is running

    def bind(self, tensor, name: str) -> None:
        self.names[id(tensor)] = name
        self.keep.append(tensor)

    def name_of(self, tensor) -> str:
        key = id(tensor)
        if key in self.names:
            return self.names[key]
        if key in self.param_names:
            name = self.builder.initializer(self.param_names[key], np.array(tensor._data))
        else:  # a tensor made outside the dispatcher (a constant in forward)
            name = self.builder.initializer("const", np.array(tensor._data))
        self.bind(tensor, name)
        return name

    def record(self, op_type, inputs, attrs, outputs) -> None:
        in_names = ["" if t is None else self.name_of(t) for t in inputs]
        scope = next((s for s in reversed(self.scope) if s), "")
        hint = f"{scope}.{op_type}" if scope else op_type
        out_names = self.builder.op(op_type, in_names, dict(attrs), name=scope,
                                    outputs=[hint] * len(outputs))
        for t, name in zip(outputs, out_names):
            self.bind(t, name)
        self.ops.append((op_type, in_names, dict(attrs), [tuple(t._data.shape) for t in outputs],
                         [None if t is None else tuple(t._data.shape) for t in inputs]))

    def on_python_value(self, tensor) -> None:
        warnings.warn(
            "a tensor was converted to a Python value while tracing; the traced graph records the "
            "result of any Python control flow that used it as a constant and may be wrong for "
            "other inputs", TracerWarning, stacklevel=3)


def _as_tuple(example_inputs):
    import frontend
    if isinstance(example_inputs, frontend.Tensor):
        return (example_inputs,)
    return tuple(example_inputs)


def _input_names(fn, count: int) -> list[str]:
    target = fn.forward if hasattr(fn, "forward") else fn
    try:
        params = [p.name for p in inspect.signature(target).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) >= count and len(set(params[:count])) == count:
        return params[:count]
    return ["input"] if count == 1 else [f"input_{i}" for i in range(count)]


def _dynamic_axes_by_input(dynamic_axes, names: list[str], inputs) -> list[list[int]]:
    if dynamic_axes is None:
        return [[] for _ in names]
    if isinstance(dynamic_axes, Mapping):
        out = []
        for i, (name, t) in enumerate(zip(names, inputs)):
            axes = dynamic_axes.get(name, dynamic_axes.get(i, []))
            out.append(sorted({a % t.ndim for a in axes}))
        return out
    return [sorted({a % t.ndim for a in dynamic_axes}) if t.ndim else [] for t in inputs]


def _leave(tracer) -> None:
    """Forward hook: the module's forward returned (returns None: keeps the output)."""
    if tracer.scope:
        tracer.scope.pop()


def _run_traced(fn, inputs, param_names, names, dynamic):
    import frontend
    from frontend import _dispatch
    builder = NetBuilder(getattr(type(fn), "__name__", "traced") if hasattr(fn, "forward")
                         else getattr(fn, "__name__", "traced"))
    tracer = _Tracer(builder, param_names)
    for name, t, axes in zip(names, inputs, dynamic):
        shape = [(-1 if a in axes else d) for a, d in enumerate(t.shape)]
        dtype = str(t._data.dtype) if t._data.dtype != np.bool_ else "bool"
        tracer.bind(t, builder.input(name, dtype, shape))
    if _dispatch.tracer is not None:
        raise RuntimeError("jit.trace: another trace is already running")
    # Ops are named after the module that runs them ("layer1.0.conv1"), so runtime errors and
    # listings point at the model's code.
    handles = []
    if hasattr(fn, "named_modules"):
        for module_name, module in fn.named_modules():
            handles.append(module.register_forward_pre_hook(
                lambda m, args, _n=module_name: tracer.scope.append(_n)))
            handles.append(module.register_forward_hook(lambda m, args, out: _leave(tracer)))
    _dispatch.tracer = tracer
    try:
        with frontend.no_grad():
            result = fn(*inputs)
    finally:
        _dispatch.tracer = None
        for handle in handles:
            handle.remove()
    return builder, tracer, result


def _flatten_outputs(result):
    """The tensors of a traced function's result, their graph output names, and the structure.

    A Tensor is "output"; a tuple/list of tensors gives "output_0", "output_1", ...; a dict gives
    its keys; nesting joins the parts ("output_1_0", "output_0.logits"). The structure holds the
    leaf indices in the shape of the result, so `TracedModule` returns what the code returned.
    """
    import frontend
    tensors, names = [], []

    def walk(value, path):
        if isinstance(value, frontend.Tensor):
            tensors.append(value)
            names.append(path or "output")
            return len(tensors) - 1
        if isinstance(value, (tuple, list)):
            base = path or "output"
            return type(value)(walk(v, f"{base}_{i}") for i, v in enumerate(value))
        if isinstance(value, Mapping):
            for key in value:
                if not isinstance(key, str):
                    raise TypeError(f"jit.trace: output dict keys must be str, got {key!r}")
            return {key: walk(v, f"{path}.{key}" if path else key) for key, v in value.items()}
        where = f"output '{path}'" if path else "the output"
        raise TypeError(f"jit.trace: {where} is a {type(value).__name__}; traced code must return "
                        "Tensors, or tuples, lists or dicts of them")

    structure = walk(result, "")
    if not tensors:
        raise TypeError("jit.trace: the traced code returned no Tensor")
    return tensors, names, structure


def _unflatten_outputs(structure, values):
    if isinstance(structure, int):
        return values[structure]
    if isinstance(structure, dict):
        return {key: _unflatten_outputs(v, values) for key, v in structure.items()}
    return type(structure)(_unflatten_outputs(v, values) for v in structure)


def _shape_free_forms(in_shape, out_shape) -> list:
    """The ways a reshape from in_shape to out_shape can be written without sizes:
    ("unsqueeze", d) when a size-1 dim is inserted at d, ("flatten", start, end) when dims
    start..end are merged (a squeeze is a merge with a neighbour). Empty for a split. Size-1 dims
    make several forms fit; the caller keeps one that fits at both traced sizes."""
    in_shape, out_shape = list(in_shape), list(out_shape)
    forms = []
    if len(out_shape) == len(in_shape) + 1:
        forms += [("unsqueeze", d) for d in range(len(out_shape))
                  if out_shape[d] == 1 and out_shape[:d] + out_shape[d + 1:] == in_shape]
    for start in range(len(in_shape)):
        for end in range(start + 1, len(in_shape)):
            merged = int(np.prod(in_shape[start:end + 1]))
            if in_shape[:start] + [merged] + in_shape[end + 1:] == out_shape:
                forms.append(("flatten", start, end))
    return forms


def _shape_free_ops(op: net_pb2.OperatorDef, form, rank: int) -> list:
    """Ops doing `op`'s reshape in the given shape-free form: a flatten, or for an unsqueeze an
    expand that adds a leading 1, moved into place by a transpose."""
    x, y = op.input[0], op.output[0]
    if form[0] == "flatten":
        flatten = net_pb2.OperatorDef(type="flatten", name=op.name, input=[x], output=[y])
        set_op_attrs(flatten, {"start_dim": form[1], "end_dim": form[2]})
        return [flatten]
    d = form[1]
    expand = net_pb2.OperatorDef(type="expand", name=op.name, input=[x], output=[y if d == 0 else f"{y}.lead"])
    set_op_attrs(expand, {"shape": [1] + [-1] * rank})
    if d == 0:
        return [expand]
    move = net_pb2.OperatorDef(type="transpose", name=op.name, input=[expand.output[0]], output=[y])
    set_op_attrs(move, {"perm": list(range(1, d + 1)) + [0] + list(range(d + 1, rank + 1))})
    return [expand, move]


def _generalize(net: net_pb2.NetDef, ops_a, ops_b) -> None:
    """Makes the reshape/expand ops whose target shape changed between two traces (at two sizes
    of the dynamic axes) shape-free: the changing dim becomes -1, a squeeze/unsqueeze over several
    dynamic axes becomes flatten or expand + transpose. A reshape that splits or merges several
    dynamic axes cannot be written without sizes: it stays as traced, with a warning."""
    if len(ops_a) != len(ops_b) or any(a[0] != b[0] for a, b in zip(ops_a, ops_b)):
        warnings.warn("the traced code ran different ops at another size of the dynamic axes; "
                      "shapes baked into the trace are kept as they are", TracerWarning, stacklevel=3)
        return
    new_ops = []
    for op, (type_a, _, attrs_a, shapes_a, in_shapes_a), (_, _, _, shapes_b, in_shapes_b) in zip(net.op, ops_a, ops_b):
        new_ops.append(op)
        if type_a not in ("reshape", "expand") or len(shapes_a) != 1:
            continue
        out_a, out_b = shapes_a[0], shapes_b[0]
        varying = [i for i, (x, y) in enumerate(zip(out_a, out_b)) if x != y]
        if not varying or len(out_a) != len(out_b):
            continue
        attrs = op_attrs(op)
        if type_a == "reshape":
            if len(varying) != 1:
                other = _shape_free_forms(in_shapes_b[0], out_b)
                form = next((f for f in _shape_free_forms(in_shapes_a[0], out_a) if f in other), None)
                if form is None:
                    warnings.warn(f"reshape '{op.name}' splits a dim over several dynamic axes (traced "
                                  f"shape {list(out_a)}); it keeps that shape, so other sizes fail there",
                                  TracerWarning, stacklevel=3)
                else:
                    new_ops[-1:] = _shape_free_ops(op, form, len(in_shapes_a[0]))
                continue
            shape = list(out_a)
            shape[varying[0]] = -1
        else:
            shape = list(attrs["shape"])
            for i in varying:
                shape[i] = -1
        attrs["shape"] = shape
        set_op_attrs(op, attrs)
    new_ops += net.op[len(ops_a):]  # the output copies added after tracing
    if len(new_ops) != len(net.op):
        new_ops = [net_pb2.OperatorDef(type=o.type, name=o.name, input=o.input, output=o.output, arg=o.arg)
                   for o in new_ops]
        del net.op[:]
        net.op.extend(new_ops)


def trace(module_or_fn, example_inputs, dynamic_axes=None, check_trace: bool = True) -> "TracedModule":
    """Traces a module or function into a `TracedModule` (see the module docstring).

    `example_inputs`: a Tensor or a tuple of Tensors. `dynamic_axes`: a list of axes dynamic in
    every input (e.g. `[0]` for the batch), or a dict input name/index -> axes.
    """
    import frontend
    inputs = _as_tuple(example_inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, frontend.Tensor):
            raise TypeError(f"jit.trace: example input {i} is a {type(t).__name__}, not a Tensor")
    param_names: dict[int, str] = {}
    if hasattr(module_or_fn, "named_parameters"):
        for name, p in module_or_fn.named_parameters():
            param_names.setdefault(id(p), name)
        for name, b in module_or_fn.named_buffers():
            if b is not None:
                param_names.setdefault(id(b), name)
    names = _input_names(module_or_fn, len(inputs))
    dynamic = _dynamic_axes_by_input(dynamic_axes, names, inputs)
    builder, tracer, result = _run_traced(module_or_fn, inputs, param_names, names, dynamic)
    outputs, out_names, structure = _flatten_outputs(result)
    used, values = set(), []
    for out, name in zip(outputs, out_names):
        value = tracer.name_of(out)
        if value in used or any(vi.name == value for vi in builder.net.input) or \
                any(t.name == value for t in builder.net.initializer):
            # An input, a constant or a repeated output: the graph output needs its own value,
            # made by a copy (a cast to the same dtype).
            dtype = str(out._data.dtype) if out._data.dtype != np.bool_ else "bool"
            value = builder.op("cast", [value], {"dtype": dtype}, outputs=[f"{name}.copy"])[0]
        used.add(value)
        values.append(value)
    taken = {vi.name for vi in builder.net.input} | {t.name for t in builder.net.initializer}
    for name in out_names:
        if name in taken:
            raise ValueError(f"jit.trace: the output name '{name}' (a key of the returned dict) is also the "
                             "name of an input or a parameter; the graph needs distinct names, so use another key")
    for value, name in zip(values, out_names):  # renaming comes last: copies read the old names
        builder.output(value, name)

    if any(dynamic):
        grown = []
        for t, axes in zip(inputs, dynamic):
            data = t._data
            for a in axes:  # one more along each dynamic axis
                data = np.concatenate([data, np.take(data, [0], axis=a)], axis=a)
            grown.append(frontend.from_numpy(np.ascontiguousarray(data)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TracerWarning)
                _, tracer_b, _ = _run_traced(module_or_fn, grown, param_names, names, dynamic)
        except Exception as e:  # noqa: BLE001 - the code itself rejects other sizes
            warnings.warn(f"jit.trace: the code fails at another size of the dynamic axes ({e}); "
                          "the graph keeps the traced shapes", TracerWarning, stacklevel=2)
        else:
            _generalize(builder.net, tracer.ops, tracer_b.ops)
    net = builder.build()
    traced = TracedModule(net, structure=structure)
    if check_trace:
        expected = [np.asarray(o._data) for o in outputs]
        got = traced.predictor.run({n: t._data for n, t in zip(names, inputs)})
        for name, e in zip(out_names, expected):
            # NOTE: a tolerance, not equality: with a constant weight a fast kernel may choose
            # another algorithm (pre-packed GEMV, Winograd) than the eager call did.
            if got[name].shape != e.shape or not np.allclose(got[name], e, rtol=1e-4, atol=1e-5, equal_nan=True):
                warnings.warn(f"jit.trace: the traced graph's '{name}' differs from the eager "
                              "result", TracerWarning, stacklevel=2)
    return traced


class TracedModule:
    """A traced graph: `.net` (NetDef), `.graph` (readable listing), `.save(path)`, and calling it
    runs the C++ runtime and returns frontend Tensors.

    `structure` (made by `trace`) is the shape of the traced code's result, with each graph
    output's index as a leaf: calling returns the same tuples, lists and dicts. Without it a call
    returns one Tensor, or a tuple for several outputs.
    """

    def __init__(self, net: net_pb2.NetDef, num_threads: int | None = None, structure=None):
        self.net = net
        self.structure = structure
        self._num_threads = num_threads
        self._predictor = None

    @property
    def predictor(self) -> Predictor:
        """The runtime Predictor for `.net` (created on first use)."""
        if self._predictor is None:
            self._predictor = Predictor(self.net, num_threads=self._num_threads)
        return self._predictor

    @property
    def graph(self) -> str:
        """A readable listing of the traced net."""
        return listing(self.net)

    @property
    def input_names(self) -> list[str]:
        """Names of the net's inputs, in call order."""
        return [vi.name for vi in self.net.input]

    def save(self, path) -> None:
        """Writes the NetDef (`.pb`, or text format for `.pbtxt`)."""
        from graphruntime import save
        save(self.net, path)

    def __call__(self, *inputs):
        import frontend
        if len(inputs) != len(self.net.input):
            raise TypeError(f"traced module takes {len(self.net.input)} inputs, got {len(inputs)}")
        feed = {vi.name: (t._data if isinstance(t, frontend.Tensor) else np.asarray(t))
                for vi, t in zip(self.net.input, inputs)}
        out = self.predictor.run(feed)
        results = [frontend.from_numpy(out[vi.name]) for vi in self.net.output]
        if self.structure is not None:
            return _unflatten_outputs(self.structure, results)
        return results[0] if len(results) == 1 else tuple(results)

    def __repr__(self):
        return f"TracedModule({self.net.name}: {len(self.net.op)} ops)\n{self.graph}"


__all__ = ["trace", "TracedModule", "TracerWarning"]
