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


def test_fuzzed_models_never_crash(tmp_path):
    model = tmp_path / "fuzz.ember"
    model.write_bytes(lower(fuzz_model()))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parents[1])] + env.get("PYTHONPATH", "").split(os.pathsep))
    result = subprocess.run([sys.executable, str(HERE / "fuzz_loader.py"), str(model), "3000", "1234"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-2000:]}"
    assert "'rejected'" in result.stdout


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
