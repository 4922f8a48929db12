"""Constant folding: an op whose inputs are all constants is run once, at optimization time,
with the same kernels, and replaced by an initializer holding its result."""
from __future__ import annotations

from graphruntime import _C
from graphruntime.netdef import op_attrs, tensor_from_numpy, tensor_to_numpy
from graphruntime.passes._util import copy_net, graph_output_names, remove_ops
from graphruntime.proto import net_pb2

# Results larger than this stay computed at run time (folding would bloat the model file).
MAX_FOLDED_BYTES = 64 << 20


def fold_constants(net: net_pb2.NetDef) -> net_pb2.NetDef:
    """Returns a copy of `net` with constant subgraphs replaced by initializers.

    Graph outputs that become constant are folded too (they are still returned by the runtime).
    """
    net = copy_net(net)
    constants = {t.name: tensor_to_numpy(t) for t in net.initializer}
    removed = []
    for index, op in enumerate(net.op):
        if not op.input or not all((not i) or i in constants for i in op.input):
            continue
        if op.type in ("identity", "dropout"):
            continue
        try:
            outs = _C.run_op(op.type, [constants[i] if i else None for i in op.input], op_attrs(op),
                             len(op.output))
        except Exception:  # noqa: BLE001 - leave it for the runtime to report
            continue
        if sum(o.nbytes for o in outs) > MAX_FOLDED_BYTES:
            continue
        for name, value in zip(op.output, outs):
            constants[name] = value
            net.initializer.append(tensor_from_numpy(name, value))
        removed.append(index)
    remove_ops(net, removed)
    _ = graph_output_names  # outputs remain valid: the runtime returns constants as outputs
    return net
