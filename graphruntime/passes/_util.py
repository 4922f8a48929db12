"""Helpers shared by the passes: copying nets and rewiring values."""
from __future__ import annotations

from graphruntime.proto import net_pb2


def copy_net(net: net_pb2.NetDef) -> net_pb2.NetDef:
    """A deep copy, so that passes stay pure."""
    out = net_pb2.NetDef()
    out.CopyFrom(net)
    return out


def replace_uses(net: net_pb2.NetDef, old: str, new: str) -> None:
    """Makes every op that reads `old` read `new` instead."""
    for op in net.op:
        for i, name in enumerate(op.input):
            if name == old:
                op.input[i] = new


def graph_output_names(net: net_pb2.NetDef) -> set[str]:
    """Names of the graph outputs."""
    return {vi.name for vi in net.output}


def remove_ops(net: net_pb2.NetDef, indices) -> None:
    """Deletes the ops at the given indices."""
    for i in sorted(set(indices), reverse=True):
        del net.op[i]
