"""Hostile model files never crash the loader: truncated, bit-flipped and rewritten models
(thousands, in a subprocess) are either rejected with an Ember error or load and run safely."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphruntime
from graphruntime import errors
from graphruntime.lower import lower
from graphruntime.netdef import NetBuilder

HERE = Path(__file__).resolve().parent


def fuzz_model():
    b = NetBuilder("fuzz")
    x = b.input("x", "float32", [-1, 8])
    m = b.input("m", "bool", [8])
    w = b.initializer("w", np.linspace(0, 1, 8).astype(np.float32))
    v = b.initializer("v", np.arange(8, dtype=np.float32))
    h = b.op("mul", [x, w], name="scale")
    h = b.op("add", [h, v], name="shift")
    h = b.op("where", [m, h, x], name="select")
    b.output(b.op("maximum", [h, w], name="clip"), "y")
    b.output(b.op("ge", [h, x], name="cmp"), "z")
    return b.build()


CNN_OPS = ("conv2d", "relu", "max_pool2d", "flatten", "linear", "softmax", "reshape", "transpose",
           "batch_norm")


def fuzz_cnn_model():
    """A small CNN: many integer-list attributes (stride, padding, shapes) to corrupt."""
    rng = np.random.default_rng(0)
    b = NetBuilder("fuzz_cnn")
    x = b.input("x", "float32", [-1, 2, 6, 6])
    w = b.initializer("conv.weight", rng.standard_normal((4, 2, 3, 3)).astype(np.float32))
    h = b.op("conv2d", [x, w, b.initializer("conv.bias", np.zeros(4, np.float32))],
             {"padding": [1, 1], "stride": [1, 1]}, name="conv")
    h = b.op("batch_norm", [h, b.initializer("m", np.zeros(4, np.float32)),
                            b.initializer("v", np.ones(4, np.float32))], name="bn")
    h = b.op("relu", [h], name="relu")
    h = b.op("max_pool2d", [h], {"kernel_size": [2, 2]}, name="pool")
    h = b.op("transpose", [h], {"perm": [0, 2, 3, 1]}, name="nhwc")
    h = b.op("reshape", [h], {"shape": [-1, 36]}, name="rows")
    h = b.op("linear", [h, b.initializer("fc.weight", rng.standard_normal((5, 36)).astype(np.float32))],
             {"activation": "relu"}, name="fc")
    b.output(b.op("softmax", [h], {"dim": -1}, name="probs"), "y")
    return b.build()


REGISTERED = {s["name"] for s in graphruntime._C.op_schemas()}
MODELS = [("elementwise", fuzz_model, 3000)]
if all(op in REGISTERED for op in CNN_OPS):
    MODELS.append(("cnn", fuzz_cnn_model, 2000))


@pytest.mark.parametrize("name,make,iterations", MODELS, ids=[m[0] for m in MODELS])
def test_fuzzed_models_never_crash(tmp_path, name, make, iterations):
    model = tmp_path / "fuzz.ember"
    model.write_bytes(lower(make()))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parents[1])] + env.get("PYTHONPATH", "").split(os.pathsep))
    result = subprocess.run([sys.executable, str(HERE / "fuzz_loader.py"), str(model), str(iterations), "1234"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-2000:]}"
    assert "'rejected'" in result.stdout


def test_structurally_fuzzed_netdefs_never_crash():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parents[1])] + env.get("PYTHONPATH", "").split(os.pathsep))
    result = subprocess.run([sys.executable, str(HERE / "fuzz_netdef.py"), "1000", "99"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-2000:]}"
    assert "InvalidModelError" in result.stdout and "InvalidArgumentError" in result.stdout


@pytest.mark.parametrize("cut", [0, 4, 8, 100, -1])
def test_truncated_model_is_invalid(cut):
    data = lower(fuzz_model())
    with pytest.raises(errors.InvalidModelError):
        graphruntime.Predictor(data[:cut] if cut >= 0 else data[:-1])


def test_not_a_model():
    with pytest.raises(errors.InvalidModelError, match="EMBR"):
        graphruntime.Predictor(b"\x00" * 64)


def test_unknown_op_in_model_names_it():
    net = fuzz_model()
    net.op[1].type = "frobnicate"
    with pytest.raises(errors.UnsupportedError, match="frobnicate"):
        graphruntime.Predictor(lower(net, check_net=False))


def test_ill_typed_attribute_in_model_names_op_and_attribute():
    net = fuzz_model()
    arg = net.op[0].arg.add(name="activation", type=net.op[0].arg[0].STRING if net.op[0].arg else 3, s="relu")
    assert arg.name == "activation"
    with pytest.raises(errors.InvalidArgumentError, match=r"mul 'scale'.*activation"):
        graphruntime.Predictor(lower(net, check_net=False))


def test_input_used_before_defined_is_invalid():
    net = fuzz_model()
    net.op[0].input[0] = net.op[1].output[0]
    with pytest.raises(errors.InvalidModelError, match=r"mul 'scale'.*before"):
        graphruntime.Predictor(lower(net, check_net=False))
