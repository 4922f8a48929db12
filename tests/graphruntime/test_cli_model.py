"""`ember inspect/run/bench` through graphruntime.cli_model (FLOPs checked by hand formulas)."""
import numpy as np
import pytest

import graphruntime
from graphruntime import _C
from graphruntime.cli_model import main
from graphruntime.netdef import NetBuilder


def mlp_net():
    rng = np.random.default_rng(0)
    b = NetBuilder("mlp")
    x = b.input("x", "float32", [-1, 4])
    w = b.initializer("w", rng.standard_normal(4).astype(np.float32))
    h = b.op("mul", [x, w], name="scale")
    b.output(b.op("add", [h, x], name="shift"), "y")
    return b.build()


def test_inspect_prints_shapes_params_flops(tmp_path, capsys):
    graphruntime.save(mlp_net(), tmp_path / "m.pb")
    assert main(["inspect", str(tmp_path / "m.pb"), "--shape", "x=3,4"]) == 0
    out = capsys.readouterr().out
    assert "scale" in out and "float32[3, 4]" in out
    assert "parameters: 4 (16 bytes)" in out
    assert "FLOPs: 24" in out  # two element-wise ops on 12 elements


@pytest.mark.skipif("linear" not in {s["name"] for s in _C.op_schemas()}, reason="linear not registered")
def test_linear_flops():
    from graphruntime.cli_model import inspect_net
    b = NetBuilder()
    x = b.input("x", "float32", [2, 8])
    b.output(b.op("linear", [x, b.initializer("w", np.ones((5, 8), np.float32))]))
    assert "FLOPs: 160" in inspect_net(b.build())  # 2 * (2*5) * 8


def test_dynamic_batch_counts_as_one_in_flops():
    from graphruntime.cli_model import inspect_net
    b = NetBuilder()
    x = b.input("x", "float32", [-1, 8])
    b.output(b.op("linear", [x, b.initializer("w", np.ones((5, 8), np.float32))]))
    assert "FLOPs: 80" in inspect_net(b.build())  # 2 * (1*5) * 8 with the batch counted as 1


def test_run_and_bench(tmp_path, capsys):
    graphruntime.save(mlp_net(), tmp_path / "m.pb")
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path / "m.pb"), "--input", f"x={tmp_path / 'x.npy'}",
                 "--output-dir", str(tmp_path / "out")]) == 0
    expected = graphruntime.Predictor(mlp_net()).run({"x": x})["y"]
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), expected)
    assert main(["bench", str(tmp_path / "m.pb"), "--runs", "3", "--warmup", "1", "--batch", "4"]) == 0
    assert "median" in capsys.readouterr().out


def test_errors_are_reported_not_raised(tmp_path, capsys):
    graphruntime.save(mlp_net(), tmp_path / "m.pb")
    assert main(["run", str(tmp_path / "m.pb"), "--input", "nope"]) == 1
    assert "NAME=file.npy" in capsys.readouterr().err


def test_registered_in_the_ember_command(tmp_path, capsys):
    from graphruntime.cli import main as ember_main
    graphruntime.save(mlp_net(), tmp_path / "m.pb")
    assert ember_main(["inspect", str(tmp_path / "m.pb")]) == 0
    assert "parameters: 4" in capsys.readouterr().out
    assert ember_main(["run", str(tmp_path / "m.pb"), "--input", "x=/nonexistent.npy"]) != 0


def test_bad_command_lines_are_reported_not_raised(tmp_path, capsys):
    graphruntime.save(mlp_net(), tmp_path / "m.pb")
    assert main(["inspect", str(tmp_path / "missing.pb")]) == 1
    assert "missing.pb' does not exist" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "m.pb"), "--shape", "x=a,b"]) == 1
    assert "--shape expects NAME=D0,D1" in capsys.readouterr().err
    for option in (["--runs", "0"], ["--threads", "-1"], ["--warmup", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["bench", str(tmp_path / "m.pb"), *option])
        assert exit_info.value.code == 2
        assert "expected an integer >=" in capsys.readouterr().err
