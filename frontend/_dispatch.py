"""The one entry point of every eager op: `dispatch` runs a registered kernel on tensors.

Everything else in the front end (functional ops, autograd rules, modules, optimizers) calls
`dispatch`; a tracer (`frontend.jit`) installed in `tracer` sees every op that runs:

    >>> from frontend import _dispatch, tensor
    >>> _dispatch.dispatch("add", [tensor([1.0]), tensor([2.0])], {})[0]
    tensor([3.])
"""
from graphruntime import _C

#: When not None, an object with `record(op_type, input_tensors, attrs, output_tensors)` and
#: `on_python_value(tensor)`; set by `frontend.jit.trace` while it runs a module.
tracer = None

Tensor = None  # set by frontend._tensor (avoids an import cycle)
_handles = {}


def _new_handle(op_type):
    # One cached kernel handle per op: schema lookup, attribute resolution, output types and
    # kernel are reused across calls with the same attributes and input types.
    h = _handles[op_type] = _C.OpHandle(op_type, Tensor)
    return h


def dispatch(op_type, inputs, attrs, num_outputs=-1):
    """Runs op `op_type` of the registry on `inputs` (Tensors or None for absent optional inputs)
    with attribute dict `attrs`; returns the list of output Tensors (no autograd recording)."""
    h = _handles.get(op_type)
    if h is None:
        h = _new_handle(op_type)
    result = h(inputs, attrs, num_outputs)
    if tracer is not None:
        tracer.record(op_type, inputs, attrs, result)
    return result


def dispatch_one(op_type, inputs, attrs=None):
    """The single-output form of `dispatch` (same kernel call, same tracer record): returns the
    output Tensor itself. `attrs` None means the defaults. Used on the hot path of most ops."""
    h = _handles.get(op_type)
    if h is None:
        h = _new_handle(op_type)
    out = h.one(inputs, attrs)
    if tracer is not None:
        tracer.record(op_type, inputs, {} if attrs is None else attrs, [out])
    return out


def record_inplace(op_type, inputs, attrs, target):
    """Tells the tracer that `target` (already updated in place) now holds the output of op
    `op_type` applied to `inputs`."""
    if tracer is not None:
        tracer.record(op_type, inputs, attrs, [target])


def on_python_value(tensor):
    """Called when a tensor becomes a Python value (item, bool, tolist, numpy)."""
    if tracer is not None:
        tracer.on_python_value(tensor)
