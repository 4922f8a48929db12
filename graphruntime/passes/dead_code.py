"""Dead-code elimination: drops ops whose outputs no graph output depends on, and unused
initializers."""
from __future__ import annotations

from graphruntime.passes._util import copy_net, graph_output_names
from graphruntime.proto import net_pb2


def eliminate_dead_code(net: net_pb2.NetDef) -> net_pb2.NetDef:
    """Returns a copy of `net` without the ops and initializers the outputs do not need.

    Graph inputs are kept even when unused: they are the model's interface.
    """
    net = copy_net(net)
    live = set(graph_output_names(net))
    keep = []
    for op in reversed(net.op):
        if any(o in live for o in op.output):
            keep.append(op)
            live.update(i for i in op.input if i)
    kept_ops = list(reversed(keep))
    del net.op[:]
    net.op.extend(kept_ops)
    kept_init = [t for t in net.initializer if t.name in live]
    del net.initializer[:]
    net.initializer.extend(kept_init)
    return net
