"""NetDef: generated code freshness, builder, load/save round trips, and the checker's errors."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphruntime
from graphruntime import errors
from graphruntime.netdef import (NetBuilder, argument_from_value, argument_to_value, check, listing,
                                 tensor_from_numpy, tensor_to_numpy)
from graphruntime.proto import net_pb2

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None, reason="needs grpcio-tools")
def test_generated_code_is_fresh():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "generate.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def small_net():
    b = NetBuilder("small")
    x = b.input("x", "float32", [-1, 3])
    w = b.initializer("w", np.arange(3, dtype=np.float32))
    h = b.op("mul", [x, w], name="scale")
    b.output(b.op("add", [h, x], name="shift"), "y")
    return b.build()


def test_builder_fills_output_types_and_listing():
    net = small_net()
    assert [op.type for op in net.op] == ["mul", "add"]
    assert net.output[0].name == "y"
    assert net.output[0].data_type == net_pb2.FLOAT32 and list(net.output[0].dims) == [-1, 3]
    text = listing(net)
    assert "%y: float32[-1, 3] = add(" in text and "const %w: float32[3]" in text


@pytest.mark.parametrize("suffix", [".pb", ".pbtxt"])
def test_save_load_round_trip(tmp_path, suffix):
    net = small_net()
    path = tmp_path / f"model{suffix}"
    graphruntime.save(net, path)
    loaded = graphruntime.load(path)
    assert loaded == net
    np.testing.assert_array_equal(tensor_to_numpy(loaded.initializer[0]), np.arange(3, dtype=np.float32))


def test_load_corrupt_file_raises_invalid_model(tmp_path):
    path = tmp_path / "bad.pb"
    path.write_bytes(b"\xff\xff\xff\xff garbage")
    with pytest.raises(errors.InvalidModelError, match="bad.pb"):
        graphruntime.load(path)


@pytest.mark.parametrize("array", [np.arange(6, dtype=np.float32).reshape(2, 3),
                                   np.array([True, False]), np.array(7, dtype=np.int64),
                                   np.array([-3, 4], dtype=np.int8), np.zeros((0, 2), np.float64)])
def test_tensor_round_trip(array):
    back = tensor_to_numpy(tensor_from_numpy("t", array))
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("value", [3, -1, 2.5, True, False, "relu", [1, 2], [0.5, 1.0], ["a", "b"]])
def test_argument_round_trip(value):
    back = argument_to_value(argument_from_value("k", value))
    assert back == value and type(back) is type(value)


def test_check_unknown_op_names_op():
    net = small_net()
    net.op[0].type = "no_such_op"
    with pytest.raises(errors.UnsupportedError, match="no_such_op"):
        check(net)


def test_check_ill_typed_attribute_names_op_and_attribute():
    b = NetBuilder()
    x = b.input("x", "float32", [2])
    b.output(b.op("add", [x, x], {"alpha": "oops"}, name="plus"))
    with pytest.raises(errors.InvalidArgumentError, match=r"add 'plus'.*alpha"):
        b.build()


def test_check_undefined_input_names_op_and_tensor():
    net = small_net()
    net.op[0].input[0] = "ghost"
    with pytest.raises(errors.InvalidModelError, match=r"mul 'scale'.*ghost"):
        check(net)


def test_check_wrong_dtype_names_op():
    b = NetBuilder()
    x = b.input("x", "float32", [2])
    c = b.initializer("c", np.array([1, 2], np.int64))
    b.output(b.op("add", [x, c], name="mix"))
    with pytest.raises(errors.InvalidArgumentError, match="add 'mix'"):
        b.build()


def test_check_incompatible_shapes_names_op():
    b = NetBuilder()
    x = b.input("x", "float32", [2, 3])
    c = b.initializer("c", np.ones(4, np.float32))
    b.output(b.op("add", [x, c], name="bad_broadcast"))
    with pytest.raises(errors.InvalidArgumentError, match="add 'bad_broadcast'"):
        b.build()


def test_check_duplicate_output_and_missing_graph_output():
    net = small_net()
    net.op[1].output[0] = net.op[0].output[0]
    with pytest.raises(errors.InvalidModelError, match="already defined"):
        check(net)
    net = small_net()
    net.output.add(name="nowhere")
    with pytest.raises(errors.InvalidModelError, match="nowhere"):
        check(net)


def test_check_bad_initializer_size():
    net = small_net()
    net.initializer[0].raw_data = b"\x00" * 5
    with pytest.raises(errors.InvalidModelError, match="initializer 'w'"):
        check(net)


def test_check_with_input_shapes_override():
    types = check(small_net(), input_shapes={"x": [5, 3]})
    assert types["y"] == ("float32", [5, 3])


def test_load_save_check_and_optimize_reject_bad_arguments(tmp_path):
    with pytest.raises(errors.InvalidArgumentError, match="does not exist"):
        graphruntime.load(tmp_path / "missing.pb")
    with pytest.raises(errors.InvalidArgumentError, match="is a directory"):
        graphruntime.load(tmp_path)
    for bad in ("net", None):
        with pytest.raises(errors.InvalidArgumentError, match=r"check\(\) takes a NetDef, not"):
            graphruntime.check(bad)
        with pytest.raises(errors.InvalidArgumentError, match=r"save\(\) takes a NetDef, not"):
            graphruntime.save(bad, tmp_path / "x.pb")
    net = graphruntime.NetBuilder("n")
    net.output(net.op("relu", [net.input("x", "float32", [2])]), "y")
    with pytest.raises(errors.InvalidArgumentError, match="optimization level"):
        graphruntime.optimize(net.build(), 7)


def test_empty_file_and_net_without_outputs_are_invalid_models(tmp_path):
    (tmp_path / "empty.pb").write_bytes(b"")
    with pytest.raises(errors.InvalidModelError, match="has no outputs"):
        graphruntime.Predictor(tmp_path / "empty.pb")
    b = NetBuilder("no_outputs")
    b.op("relu", [b.input("x", "float32", [2])])
    with pytest.raises(errors.InvalidModelError, match="net 'no_outputs' has no outputs"):
        check(b.net)
