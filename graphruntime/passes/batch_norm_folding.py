"""Batch-norm folding: an inference batch_norm right after a conv2d or linear is folded into
that op's weight and bias.

With s = gamma / sqrt(running_var + eps): W'[o] = W[o] * s[o] and b'[o] = (b[o] - mean[o]) * s[o]
+ beta[o]. Folding is computed in float64 and rounded once, so outputs match the unfolded net
to about 1e-6 relative.
"""
from __future__ import annotations

import numpy as np

from graphruntime.netdef import check, consumers, op_attrs, tensor_from_numpy, tensor_to_numpy
from graphruntime.passes._util import copy_net, graph_output_names, remove_ops
from graphruntime.proto import net_pb2

FOLDABLE = ("conv2d", "linear")


def _unique(name, taken):
    candidate, k = name, 0
    while candidate in taken:
        k += 1
        candidate = f"{name}_{k}"
    taken.add(candidate)
    return candidate


def fold_batch_norm(net: net_pb2.NetDef) -> net_pb2.NetDef:
    """Returns a copy of `net` with each foldable conv2d/linear -> batch_norm pair fused."""
    net = copy_net(net)
    try:
        types = check(net)
    except Exception:  # noqa: BLE001 - an invalid net is left for the checker to report
        return net
    inits = {t.name: t for t in net.initializer}
    uses = consumers(net)
    outputs = graph_output_names(net)
    producer = {o: i for i, op in enumerate(net.op) for o in op.output}
    taken = set(types) | set(inits)
    removed = []
    for index, bn in enumerate(net.op):
        if bn.type != "batch_norm" or not bn.input or bn.input[0] not in producer:
            continue
        prev = net.op[producer[bn.input[0]]]
        x = bn.input[0]
        if prev.type not in FOLDABLE or uses.get(x) != [index] or x in outputs:
            continue
        attrs = op_attrs(prev)
        if attrs.get("activation", "none") != "none":
            continue
        params = list(bn.input[1:]) + [""] * (5 - len(bn.input))
        if not all((not p) or p in inits for p in params[:4]) or not params[0] or not params[1]:
            continue
        if len(prev.input) < 2 or prev.input[1] not in inits:
            continue
        bias_name = prev.input[2] if len(prev.input) > 2 else ""
        if bias_name and bias_name not in inits:
            continue
        if prev.type == "linear" and len(types[prev.input[0]][1]) != 2:
            continue  # batch_norm's channel axis is the linear's feature axis only for 2-D input
        weight = tensor_to_numpy(inits[prev.input[1]])
        out_channels = weight.shape[0]
        mean, var = (tensor_to_numpy(inits[p]).astype(np.float64) for p in params[:2])
        gamma = tensor_to_numpy(inits[params[2]]).astype(np.float64) if params[2] else np.ones(out_channels)
        beta = tensor_to_numpy(inits[params[3]]).astype(np.float64) if params[3] else np.zeros(out_channels)
        if any(a.shape != (out_channels,) for a in (mean, var, gamma, beta)):
            continue
        eps = float(op_attrs(bn).get("eps", 1e-5))
        scale = gamma / np.sqrt(var + eps)
        bias = tensor_to_numpy(inits[bias_name]).astype(np.float64) if bias_name else np.zeros(out_channels)
        new_weight = (weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))).astype(weight.dtype)
        new_bias = ((bias - mean) * scale + beta).astype(weight.dtype)

        # Shared weights stay intact for their other users: write new initializers then.
        def store(name, value, reuse):
            if reuse:
                inits[name].CopyFrom(tensor_from_numpy(name, value))
                return name
            fresh = _unique(name, taken)
            t = tensor_from_numpy(fresh, value)
            net.initializer.append(t)
            inits[fresh] = t
            return fresh

        prev.input[1] = store(prev.input[1], new_weight, uses.get(prev.input[1]) == [producer[x]])
        bias_target = bias_name or f"{prev.name or prev.output[0]}.bias"
        new_bias_name = store(bias_target, new_bias, bool(bias_name) and uses.get(bias_name) == [producer[x]])
        while len(prev.input) < 3:
            prev.input.append("")
        prev.input[2] = new_bias_name
        prev.output[0] = bn.output[0]
        removed.append(index)
    remove_ops(net, removed)
    return net
