"""Graph optimization passes: pure functions NetDef -> NetDef, one per module, composed by
`optimize(net, level)`.

    level 0  nothing (the net runs exactly as traced: bit-exact with eager)
    level 1  identity/dropout removal, constant folding, dead-code elimination (exact)
    level 2  level 1 + batch-norm folding into conv2d/linear and conv2d/linear + relu/relu6
             fusion (changes rounding: outputs agree within ~1e-5 relative)

    >>> from graphruntime.netdef import NetBuilder
    >>> b = NetBuilder(); x = b.input("x", "float32", [2]); _ = b.op("relu", [x]); b.output(x, None)
    >>> len(optimize(b.build(), 1).op)
    0
"""
from __future__ import annotations

from graphruntime.passes.activation_fusion import fuse_activations
from graphruntime.passes.batch_norm_folding import fold_batch_norm
from graphruntime.passes.constant_folding import fold_constants
from graphruntime.passes.dead_code import eliminate_dead_code
from graphruntime.passes.identity import remove_identities
from graphruntime import errors
from graphruntime.netdef import check
from graphruntime.proto import net_pb2

PASSES_BY_LEVEL = {
    0: [],
    1: [remove_identities, fold_constants, eliminate_dead_code],
    2: [remove_identities, fold_constants, fold_batch_norm, fuse_activations, eliminate_dead_code],
}


def optimize(net: net_pb2.NetDef, level: int = 2) -> net_pb2.NetDef:
    """Returns an optimized copy of `net` (the input is not modified).

    The net is checked first (`graphruntime.check`), so a malformed one raises the checker's
    error naming the op, rather than being rewritten into something that fails later; the
    passes may assume a valid net.
    """
    if level not in PASSES_BY_LEVEL:
        raise errors.InvalidArgumentError(f"optimization level must be one of {sorted(PASSES_BY_LEVEL)}, got {level}")
    check(net)
    for apply in PASSES_BY_LEVEL[level]:
        net = apply(net)
    if not PASSES_BY_LEVEL[level]:
        copy = net_pb2.NetDef()
        copy.CopyFrom(net)
        net = copy
    return net


__all__ = ["optimize", "eliminate_dead_code", "fold_constants", "fold_batch_norm",
           "fuse_activations", "remove_identities", "PASSES_BY_LEVEL"]
