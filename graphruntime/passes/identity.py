"""Identity removal: ops that return their input unchanged at inference (`identity`, `dropout`,
and a `cast` to the dtype the input already has) are bypassed."""
from __future__ import annotations

from graphruntime.netdef import op_attrs
from graphruntime.passes._util import copy_net, graph_output_names, remove_ops, replace_uses
from graphruntime.proto import net_pb2

IDENTITY_OPS = {"identity", "dropout", "Identity", "Dropout"}


def _value_dtypes(net):
    from graphruntime.netdef import DTYPE_NAMES
    dtypes = {vi.name: DTYPE_NAMES[vi.data_type] for vi in net.input}
    dtypes.update({t.name: DTYPE_NAMES[t.data_type] for t in net.initializer})
    return dtypes


def remove_identities(net: net_pb2.NetDef) -> net_pb2.NetDef:
    """Returns a copy of `net` where consumers of an identity-like op read its input directly.

    An identity whose output is a graph output is kept when its input is a graph input or
    constant (the output needs its own name); otherwise the producer is renamed to the output.
    """
    net = copy_net(net)
    outputs = graph_output_names(net)
    dtypes = None
    removed = []
    for index, op in enumerate(net.op):
        is_identity = op.type in IDENTITY_OPS
        if op.type == "cast" and len(op.input) == 1:
            if dtypes is None:
                from graphruntime.netdef import check
                try:
                    dtypes = {k: v[0] for k, v in check(net).items()}
                except Exception:  # noqa: BLE001 - an unchecked net: leave casts alone
                    dtypes = _value_dtypes(net)
            is_identity = dtypes.get(op.input[0]) == op_attrs(op).get("dtype")
        if not is_identity or not op.input or not op.input[0] or len(op.output) != 1:
            continue
        src, dst = op.input[0], op.output[0]
        if dst in outputs:
            producer = next((p for p in net.op if src in p.output), None)
            if producer is None or src in outputs:
                continue  # input or constant (or already an output): keep the op
            for i, name in enumerate(producer.output):
                if name == src:
                    producer.output[i] = dst
            replace_uses(net, src, dst)
        else:
            replace_uses(net, dst, src)
        removed.append(index)
    remove_ops(net, removed)
    return net
