"""Predictor on hand-built nets: values against numpy, dynamic shapes, plan cache, bad feeds,
model files (mmap and NetDef paths), and parallel runs from Python threads."""
import threading

import numpy as np
import pytest

import graphruntime
from graphruntime import errors
from graphruntime.lower import lower, save_model
from graphruntime.netdef import NetBuilder


def chain_net():
    """y = ((x + w) * x + w) * (x + w), z = x > w: reuses several intermediates."""
    b = NetBuilder("chain")
    x = b.input("x", "float32", [-1, 4])
    w = b.initializer("w", np.linspace(-1, 1, 4).astype(np.float32))
    a = b.op("add", [x, w])
    m = b.op("mul", [a, x])
    s = b.op("add", [m, w])
    b.output(b.op("mul", [s, a]), "y")
    b.output(b.op("gt", [x, w]), "z")
    return b.build()


def chain_oracle(x):
    w = np.linspace(-1, 1, 4).astype(np.float32)
    a = x + w
    return {"y": ((a * x) + w) * a, "z": x > w}


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_chain_matches_numpy_at_any_batch(batch):
    p = graphruntime.Predictor(chain_net(), num_threads=2)
    x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
    out = p.run({"x": x})
    expected = chain_oracle(x)
    assert set(out) == {"y", "z"}
    np.testing.assert_array_equal(out["y"], expected["y"])  # same float ops, same order
    np.testing.assert_array_equal(out["z"], expected["z"])
    assert out["z"].dtype == np.bool_


def test_info_and_names():
    p = graphruntime.Predictor(chain_net())
    assert p.input_names == ["x"] and p.output_names == ["y", "z"]
    assert p.input_info == {"x": ("float32", [-1, 4])}
    assert p.output_info["z"] == ("bool", [-1, 4])


def test_plans_cached_by_input_shape_and_stats():
    p = graphruntime.Predictor(chain_net(), num_threads=1)
    for batch in [2, 5, 2, 5, 2]:
        p.run({"x": np.ones((batch, 4), np.float32)})
    stats = p.memory_stats()
    assert stats["num_plans"] == 2
    assert stats["weight_bytes"] == 16
    assert stats["lower_bound_bytes"] <= stats["arena_bytes"] <= stats["naive_bytes"]


def test_in_place_reuse_shrinks_the_arena():
    # A chain of element-wise ops on one big tensor: with in-place reuse, one buffer suffices.
    b = NetBuilder("inplace")
    x = b.input("x", "float32", [1024])
    h = b.op("add", [x, x])
    for _ in range(5):
        h = b.op("mul", [h, h])
    b.output(b.op("add", [h, h]), "y")
    p = graphruntime.Predictor(b.build(), num_threads=1)
    x = np.full(1024, 0.5, np.float32)
    expected = x + x
    for _ in range(5):
        expected = expected * expected
    np.testing.assert_array_equal(p.run({"x": x})["y"], expected + expected)
    stats = p.memory_stats()
    schema_inplace = graphruntime._C.op_schema("mul").get("inplace_input", -1)
    if schema_inplace == 0:
        assert stats["arena_bytes"] == 4096
    else:  # two ping-pong buffers without in-place
        assert stats["arena_bytes"] == 2 * 4096
    assert stats["naive_bytes"] == 6 * 4096


def test_output_that_is_an_input_or_constant_is_copied():
    b = NetBuilder("passthrough")
    x = b.input("x", "float32", [2])
    c = b.initializer("c", np.array([1, 2], np.float32))
    b.output(x)
    b.output(c)
    b.output(b.op("add", [x, c]), "s")
    p = graphruntime.Predictor(b.build())
    x = np.array([5, 6], np.float32)
    out = p.run({"x": x})
    np.testing.assert_array_equal(out["x"], x)
    np.testing.assert_array_equal(out["c"], [1, 2])
    np.testing.assert_array_equal(out["s"], [6, 8])
    out["x"][0] = 100  # a copy, not the caller's array
    assert x[0] == 5


def test_wrong_feeds_raise_naming_the_input():
    p = graphruntime.Predictor(chain_net())
    good = np.ones((2, 4), np.float32)
    with pytest.raises(errors.InvalidArgumentError, match="unknown input 'nope'"):
        p.run({"x": good, "nope": good})
    with pytest.raises(errors.InvalidArgumentError, match="missing input 'x'"):
        p.run({})
    with pytest.raises(errors.InvalidArgumentError, match=r"input 'x'.*dtype float32.*float64"):
        p.run({"x": good.astype(np.float64)})
    with pytest.raises(errors.InvalidArgumentError, match=r"input 'x'.*shape"):
        p.run({"x": np.ones((2, 5), np.float32)})
    with pytest.raises(errors.InvalidArgumentError, match=r"input 'x'.*shape"):
        p.run({"x": np.ones(4, np.float32)})
    with pytest.raises(errors.InvalidArgumentError, match="input 'x'.*float16"):
        p.run({"x": good.astype(np.float16)})


def test_runtime_shape_error_names_the_op():
    # The declared input shape is dynamic, but the constant baked in a batch of 2.
    b = NetBuilder("baked")
    x = b.input("x", "float32", [-1, 3])
    c = b.initializer("c", np.ones((2, 3), np.float32))
    b.output(b.op("add", [x, c], name="batch_specific"))
    p = graphruntime.Predictor(b.build())
    p.run({"x": np.ones((2, 3), np.float32)})
    with pytest.raises(errors.InvalidArgumentError, match="add 'batch_specific'"):
        p.run({"x": np.ones((5, 3), np.float32)})


def test_model_file_is_memory_mapped_and_netdef_path_loads(tmp_path):
    net = chain_net()
    save_model(net, tmp_path / "chain.ember")
    graphruntime.save(net, tmp_path / "chain.pb")
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    expected = chain_oracle(x)
    for path in [tmp_path / "chain.ember", tmp_path / "chain.pb", str(tmp_path / "chain.pb")]:
        out = graphruntime.Predictor(path).run({"x": x})
        np.testing.assert_array_equal(out["y"], expected["y"])
    out = graphruntime.Predictor(lower(net)).run({"x": x})
    np.testing.assert_array_equal(out["y"], expected["y"])


def test_missing_file_and_wrong_type():
    with pytest.raises(errors.InvalidArgumentError, match="does not exist"):
        graphruntime.Predictor("/nonexistent/model.ember")
    with pytest.raises(errors.InvalidArgumentError):
        graphruntime.Predictor(42)


def test_weights_are_64_byte_aligned_in_the_model():
    from graphruntime import model_fb
    b = NetBuilder("aligned")
    x = b.input("x", "float32", [3])
    for i in range(3):
        x = b.op("add", [x, b.initializer(f"w{i}", np.ones(3 + i * 5, np.float32)[:3])])
    b.output(x)
    data = lower(b.build())
    model = model_fb.Model.GetRootAs(data, 0)
    start = model._tab.Vector(model._tab.Offset(18))  # Model.data
    assert start % 64 == 0
    for i in range(model.ValuesLength()):
        v = model.Values(i)
        if v.DataOffset() >= 0:
            assert v.DataOffset() % 64 == 0


def test_parallel_runs_from_threads_agree():
    p = graphruntime.Predictor(chain_net(), num_threads=2)
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal((16, 4)).astype(np.float32) for _ in range(8)]
    results = [None] * len(inputs)

    def work(i):
        for _ in range(20):
            results[i] = p.run({"x": inputs[i]})["y"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for x, y in zip(inputs, results):
        np.testing.assert_array_equal(y, chain_oracle(x)["y"])


def test_profile_times_every_node():
    p = graphruntime.Predictor(chain_net(), num_threads=1)
    rows = p.profile({"x": np.ones((2, 4), np.float32)})
    assert len(rows) == 5
    assert rows[0][0].startswith("add") and rows[0][1] == p.kernel_names()[0].split(": ", 1)[1]
    assert all(seconds >= 0 for _, _, seconds in rows)


def test_bad_paths_thread_counts_and_plan_shapes_raise_ember_errors(tmp_path):
    with pytest.raises(errors.InvalidArgumentError, match="is a directory"):
        graphruntime.Predictor(tmp_path)
    for threads in (0, -1, "2", 1.5, True):
        with pytest.raises(errors.InvalidArgumentError, match="num_threads"):
            graphruntime.Predictor(chain_net(), num_threads=threads)
    p = graphruntime.Predictor(chain_net(), num_threads=1)
    with pytest.raises(errors.InvalidArgumentError, match="input 'x': a shape is a list of ints"):
        p.plan({"x": "ab"})
    with pytest.raises(errors.InvalidArgumentError, match="input 'x': a shape is a list of ints"):
        p.plan({"x": [2.5, 4]})


def test_non_native_and_non_contiguous_feeds_run_on_the_right_values():
    p = graphruntime.Predictor(chain_net(), num_threads=1)
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    expected = chain_oracle(x)["y"]
    wide = np.zeros((3, 8), np.float32)
    wide[:, ::2] = x
    for feed in (x.astype(">f4"), wide[:, ::2], np.asfortranarray(x)):
        np.testing.assert_array_equal(p.run({"x": feed})["y"], expected)


def test_list_and_scalar_feeds_take_the_declared_dtype():
    p = graphruntime.Predictor(chain_net(), num_threads=1)
    rows = [[0.5, -1, 2, 3], [1, 1, 1, 1]]
    expected = chain_oracle(np.array(rows, np.float32))
    out = p.run({"x": rows})
    np.testing.assert_array_equal(out["y"], expected["y"])
    with pytest.raises(errors.InvalidArgumentError, match="input 'x': cannot convert str to float32"):
        p.run({"x": "abc"})
    with pytest.raises(errors.InvalidArgumentError, match="input 'x': cannot convert list to float32"):
        p.run({"x": [[1, 2], [3]]})


def test_plan_checks_input_names_like_run():
    p = graphruntime.Predictor(chain_net(), num_threads=1)
    with pytest.raises(errors.InvalidArgumentError, match="unknown input 'nope'"):
        p.plan({"x": [2, 4], "nope": [1]})
    with pytest.raises(errors.InvalidArgumentError, match="missing input 'x'"):
        p.plan({})
    with pytest.raises(errors.InvalidArgumentError, match=r"plan\(\) .* takes a dict keyed by input name"):
        p.plan([[2, 4]])
    with pytest.raises(errors.InvalidArgumentError, match=r"run\(\) .* takes a dict keyed by input name"):
        p.run([np.ones((2, 4), np.float32)])
    assert p.plan({"x": [2, 4]})["arena_bytes"] > 0


def test_zero_dim_feeds_and_scalar_inputs_keep_their_rank():
    """A 0-d input stays 0-d (numpy's ascontiguousarray would make it 1-d)."""
    from graphruntime import _C
    from graphruntime.netdef import NetBuilder

    assert _C.run_op("add", [2.0, np.float64(3.0)])[0].shape == ()
    b = NetBuilder()
    b.output(b.op("relu", [b.input("x", "float32", [])]), "y")
    predictor = graphruntime.Predictor(b.build())
    out = predictor.run({"x": np.array(-2.0, np.float32)})["y"]
    assert out.shape == () and out == 0.0
