"""Optimization passes: each keeps the outputs (exactly, or within a stated tolerance when it
changes rounding) and removes what it should."""
import numpy as np
import pytest

import graphruntime
from graphruntime import _C, errors
from graphruntime.netdef import NetBuilder, check
from graphruntime.passes import (eliminate_dead_code, fold_batch_norm, fold_constants, fuse_activations,
                                 optimize, remove_identities)

REGISTERED = {s["name"] for s in _C.op_schemas()}


def requires_ops(*names):
    missing = [n for n in names if n not in REGISTERED]
    return pytest.mark.skipif(bool(missing), reason=f"ops not registered yet: {missing}")


def run(net, feed):
    return graphruntime.Predictor(net, num_threads=1).run(feed)


def types(net):
    return [op.type for op in net.op]


def test_dead_code_elimination_removes_unused_ops_and_weights():
    b = NetBuilder()
    x = b.input("x", "float32", [3])
    unused_w = b.initializer("unused", np.ones(3, np.float32))
    dead = b.op("mul", [x, unused_w])
    b.op("add", [dead, dead])
    b.output(b.op("add", [x, x]), "y")
    net = b.build()
    out = eliminate_dead_code(net)
    assert types(out) == ["add"] and len(out.initializer) == 0
    assert len(net.op) == 3  # the pass is pure
    x = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(run(out, {"x": x})["y"], run(net, {"x": x})["y"])


def test_constant_folding_replaces_constant_subgraph():
    b = NetBuilder()
    x = b.input("x", "float32", [3])
    a = b.initializer("a", np.array([1, 2, 3], np.float32))
    c = b.initializer("c", np.array([4, 5, 6], np.float32))
    k = b.op("mul", [a, c])          # constant
    k2 = b.op("add", [k, a])         # constant
    b.output(b.op("add", [x, k2]), "y")
    net = b.build()
    folded = eliminate_dead_code(fold_constants(net))
    assert types(folded) == ["add"]
    assert {t.name for t in folded.initializer} == {k2}
    x = np.array([0.5, -1, 2], np.float32)
    np.testing.assert_array_equal(run(folded, {"x": x})["y"], x + (np.array([1, 2, 3]) * np.array([4, 5, 6]) + np.array([1, 2, 3])).astype(np.float32))


def test_identity_and_dropout_removed():
    b = NetBuilder()
    x = b.input("x", "float32", [3])
    h = b.op("add", [x, x])
    net = b.net
    net.op.add(type="dropout", name="drop", input=[h], output=["h_drop"])
    net.op.add(type="identity", name="id", input=["h_drop"], output=["h_id"])
    net.op.add(type="mul", name="sq", input=["h_id", "h_id"], output=["sq"])
    net.op.add(type="identity", name="out", input=["sq"], output=["y"])
    net.output.add(name="y")
    cleaned = remove_identities(net)
    assert types(cleaned) == ["add", "mul"]
    check(cleaned)
    x = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(run(cleaned, {"x": x})["y"], (x + x) * (x + x))


def test_optimize_level_0_is_a_copy():
    b = NetBuilder()
    x = b.input("x", "float32", [3])
    b.op("add", [x, x])
    b.output(x)
    net = b.build()
    assert optimize(net, 0) == net and optimize(net, 0) is not net
    assert types(optimize(net, 1)) == []
    with pytest.raises(ValueError):
        optimize(net, 7)


def conv_bn_relu_net(rng, with_bias, activation="relu"):
    b = NetBuilder("cbr")
    x = b.input("x", "float32", [-1, 3, 8, 8])
    w = b.initializer("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    ins = [x, w] + ([b.initializer("conv.bias", rng.standard_normal(4).astype(np.float32))] if with_bias else [])
    h = b.op("conv2d", ins, {"padding": [1, 1]}, name="conv")
    bn = [b.initializer("bn.running_mean", rng.standard_normal(4).astype(np.float32)),
          b.initializer("bn.running_var", rng.uniform(0.5, 2, 4).astype(np.float32)),
          b.initializer("bn.weight", rng.standard_normal(4).astype(np.float32)),
          b.initializer("bn.bias", rng.standard_normal(4).astype(np.float32))]
    h = b.op("batch_norm", [h] + bn, {"eps": 1e-5}, name="bn")
    b.output(b.op(activation, [h], name="act"), "y")
    return b.build()


@requires_ops("conv2d", "batch_norm", "relu", "relu6")
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("activation", ["relu", "relu6"])
def test_conv_batch_norm_relu_folds_into_one_conv(with_bias, activation):
    rng = np.random.default_rng(0)
    net = conv_bn_relu_net(rng, with_bias, activation)
    opt = optimize(net, 2)
    assert types(opt) == ["conv2d"]
    conv = opt.op[0]
    assert {a.name: a.s for a in conv.arg}["activation"] == activation
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(run(opt, {"x": x})["y"], run(net, {"x": x})["y"], rtol=1e-4, atol=1e-5)


@requires_ops("linear", "batch_norm", "relu")
def test_linear_batch_norm_folds():
    rng = np.random.default_rng(1)
    b = NetBuilder()
    x = b.input("x", "float32", [-1, 5])
    w = b.initializer("fc.weight", rng.standard_normal((6, 5)).astype(np.float32))
    h = b.op("linear", [x, w])
    bn = [b.initializer(n, v) for n, v in [("m", rng.standard_normal(6).astype(np.float32)),
                                             ("v", rng.uniform(0.5, 2, 6).astype(np.float32))]]
    b.output(b.op("relu", [b.op("batch_norm", [h] + bn)]), "y")
    net = b.build()
    opt = optimize(net, 2)
    assert types(opt) == ["linear"]
    x = rng.standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(run(opt, {"x": x})["y"], run(net, {"x": x})["y"], rtol=1e-4, atol=1e-5)


@requires_ops("conv2d", "relu")
def test_fusion_skips_when_conv_output_has_other_users():
    rng = np.random.default_rng(2)
    b = NetBuilder()
    x = b.input("x", "float32", [1, 3, 4, 4])
    h = b.op("conv2d", [x, b.initializer("w", rng.standard_normal((2, 3, 1, 1)).astype(np.float32))])
    b.output(b.op("relu", [h]), "r")
    b.output(h, "raw")
    net = b.build()
    assert types(fuse_activations(net)) == ["conv2d", "relu"]
    assert types(fold_batch_norm(net)) == ["conv2d", "relu"]


@pytest.mark.parametrize("level", [0, 1, 2])
def test_optimize_rejects_a_malformed_net_naming_the_op(level):
    b = NetBuilder("bad")
    x = b.input("x", "float32", [-1, 3, 4, 4])
    w = b.initializer("w", np.ones((2, 3, 1, 1), np.float32))
    conv = b.op("conv2d", [x, w], name="stem")
    mean, var = b.initializer("m", np.zeros(2, np.float32)), b.initializer("v", np.ones(2, np.float32))
    b.output(b.op("batch_norm", [conv, mean, var], name="bn"), "y")
    net = b.build()
    net.op[1].input[1] = "undefined"
    with pytest.raises(errors.InvalidModelError, match="batch_norm 'bn': input 1 'undefined' is not defined"):
        graphruntime.optimize(net, level)
    net = b.build(check_net=False)
    net.op[1].input[1] = "m"
    net.op[0].type = "no_such_op"
    with pytest.raises(errors.UnsupportedError, match="no_such_op 'stem'"):
        graphruntime.optimize(net, level)
