"""Batches run as sub-batches (Predictor, when the plan exceeds the budget and every op keeps
batch rows apart): the outputs equal the whole batch's bit for bit; models with ops that mix or
move batch rows are never split."""
import numpy as np
import pytest

import graphruntime
from graphruntime.netdef import NetBuilder


def predictor(monkeypatch, net, budget, threads=2):
    monkeypatch.setenv("EMBER_BATCH_SPLIT_BYTES", str(budget))
    return graphruntime.Predictor(net, num_threads=threads)


def cnn_net(seed=0):
    """conv 3x3 (Winograd-sized channels) + relu, residual add, 1x1 conv, max pool, global
    average pool, flatten, linear: the kernels whose blocking could depend on the batch."""
    rng = np.random.default_rng(seed)
    b = NetBuilder("cnn")
    x = b.input("x", "float32", [-1, 16, 14, 14])
    w1 = b.initializer("w1", (rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float32))
    b1 = b.initializer("b1", rng.standard_normal(16).astype(np.float32))
    h = b.op("conv2d", [x, w1, b1], {"padding": [1, 1], "activation": "relu"})
    h = b.op("add", [h, x])
    w2 = b.initializer("w2", (rng.standard_normal((24, 16, 1, 1)) * 0.1).astype(np.float32))
    h = b.op("conv2d", [h, w2], {})
    h = b.op("max_pool2d", [h], {"kernel_size": [2, 2], "stride": [2, 2]})
    h = b.op("flatten", [b.op("adaptive_avg_pool2d", [h], {"output_size": [1, 1]})], {"start_dim": 1})
    w3 = b.initializer("w3", rng.standard_normal((10, 24)).astype(np.float32))
    b3 = b.initializer("b3", rng.standard_normal(10).astype(np.float32))
    b.output(b.op("linear", [h, w3, b3]), "y")
    return b.build()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch", [2, 5, 9])
def test_sub_batches_give_the_whole_batch_bits(monkeypatch, threads, batch):
    x = np.random.default_rng(batch).standard_normal((batch, 16, 14, 14)).astype(np.float32)
    whole = predictor(monkeypatch, cnn_net(), 0, threads)
    split = predictor(monkeypatch, cnn_net(), 1, threads)  # a budget of 1 byte: one row at a time
    expected = whole.run({"x": x})["y"]
    whole_arena = whole.memory_stats()["arena_bytes"]
    got = split.run({"x": x})["y"]
    np.testing.assert_array_equal(got, expected)
    # The plan used last is a one-row plan, smaller than the whole batch's.
    assert split.memory_stats()["arena_bytes"] * batch <= whole_arena * 1.01
    # Each row alone gives the same bits too.
    for i in range(batch):
        np.testing.assert_array_equal(whole.run({"x": x[i:i + 1]})["y"], expected[i:i + 1])
    # Profiling a split run times every node once per sub-batch, summed.
    timings = split.profile({"x": x})
    assert len(timings) == len(split.kernel_names()) and all(t[2] >= 0 for t in timings)


def test_ops_that_mix_batch_rows_are_never_split(monkeypatch):
    b = NetBuilder("mix")
    x = b.input("x", "float32", [-1, 4])
    # (intermediates live in the arena, so its plan exceeds the 1-byte budget)
    b.output(b.op("relu", [b.op("softmax", [b.op("neg", [x])], {"dim": 0})]), "over_batch")
    x_value = np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32)
    out = predictor(monkeypatch, b.build(), 1).run({"x": x_value})
    e = np.exp(-x_value - (-x_value).max(axis=0))
    np.testing.assert_allclose(out["over_batch"], e / e.sum(axis=0), rtol=1e-5)


def test_constants_with_rows_of_their_own_are_never_split(monkeypatch):
    """x[-1, 4] + c[3, 4] only broadcasts at batch 3 (and 1): split into rows it would not."""
    b = NetBuilder("rows")
    x = b.input("x", "float32", [-1, 4])
    c = np.arange(12, dtype=np.float32).reshape(3, 4)
    b.output(b.op("neg", [b.op("add", [b.op("neg", [x]), b.initializer("c", c)])]), "y")
    x_value = np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(predictor(monkeypatch, b.build(), 1).run({"x": x_value})["y"], x_value - c)


def test_transposes_of_the_batch_are_never_split(monkeypatch):
    b = NetBuilder("t")
    x = b.input("x", "float32", [-1, 3, 4])
    b.output(b.op("relu", [b.op("transpose", [x], {"perm": [1, 0, 2]})]), "y")
    x_value = np.random.default_rng(5).standard_normal((5, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(predictor(monkeypatch, b.build(), 1).run({"x": x_value})["y"],
                                  np.maximum(np.transpose(x_value, [1, 0, 2]), 0))
