"""Activation fusion: conv2d/linear followed by relu or relu6 (or the equivalent clamp) become one
conv2d/linear with its `activation` attribute set, so the kernel applies it in its epilogue."""
from __future__ import annotations

import math

from graphruntime.netdef import consumers, op_attrs, set_op_attrs
from graphruntime.passes._util import copy_net, graph_output_names, remove_ops
from graphruntime.proto import net_pb2

FUSABLE = ("conv2d", "linear")


def _activation_of(op) -> str | None:
    if op.type in ("relu", "relu6"):
        return op.type
    if op.type == "clamp":
        attrs = op_attrs(op)
        lo, hi = attrs.get("min", -math.inf), attrs.get("max", math.inf)
        if lo == 0 and hi == math.inf:
            return "relu"
        if lo == 0 and hi == 6:
            return "relu6"
    return None


def fuse_activations(net: net_pb2.NetDef) -> net_pb2.NetDef:
    """Returns a copy of `net` with relu/relu6 folded into the preceding conv2d/linear."""
    net = copy_net(net)
    uses = consumers(net)
    outputs = graph_output_names(net)
    producer = {o: i for i, op in enumerate(net.op) for o in op.output}
    removed = []
    for index, act in enumerate(net.op):
        kind = _activation_of(act)
        if kind is None or not act.input or act.input[0] not in producer:
            continue
        x = act.input[0]
        prev = net.op[producer[x]]
        if prev.type not in FUSABLE or uses.get(x) != [index] or x in outputs:
            continue
        attrs = op_attrs(prev)
        if attrs.get("activation", "none") != "none":
            continue
        attrs["activation"] = kind
        set_op_attrs(prev, attrs)
        prev.output[0] = act.output[0]
        removed.append(index)
    remove_ops(net, removed)
    return net
