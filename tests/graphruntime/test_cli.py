"""The `ember` command line: `ember ops` lists every registered schema."""
import json
import os
import subprocess
import sys

import pytest

from graphruntime import _C, cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "graphruntime.cli", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def test_ember_ops_lists_every_op():
    result = run_cli("ops")
    assert result.returncode == 0, result.stderr
    blocks = {block.split("(", 1)[0]: block for block in result.stdout.strip().split("\n\n")}
    assert list(blocks) == [s["name"] for s in _C.op_schemas()]
    for schema in _C.op_schemas():
        block = blocks[schema["name"]]
        assert schema["doc"] in block
        for arg in schema["inputs"]:
            assert arg["name"] in block and ", ".join(arg["dtypes"]) in block, (schema["name"], arg)
        for attr in schema["attrs"]:
            assert f"{attr['name']}: {attr['type']}" in block, (schema["name"], attr["name"])
        for kernel in schema["kernels"]:
            assert kernel["name"] in block


def test_ember_ops_one_op_shows_inputs_dtypes_attributes_and_defaults():
    result = run_cli("ops", "sum")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("sum(x) -> y\n")
    assert "x                 float32, float64, int64, int32, uint8, int8, bool" in out
    assert "dim: int[] = []" in out and "keepdim: bool = false" in out
    assert "sum_any_reference (dtype any, reference)" in out
    assert "\nmean(" not in out


def test_ember_ops_required_attribute_and_variadic_input():
    out = run_cli("ops", "split", "concat").stdout
    assert "sizes: int[] (required)" in out
    assert "concat(inputs...) -> y" in out and "split(x) -> outputs..." in out


def test_ember_ops_unknown_name_fails_with_message():
    result = run_cli("ops", "no_such_op")
    assert result.returncode == 1
    assert "unknown op 'no_such_op'" in result.stderr


def test_ember_ops_json_round_trips(capsys):
    assert cli.main(["ops", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in data] == [s["name"] for s in _C.op_schemas()]
    clamp = next(s for s in data if s["name"] == "clamp")
    assert {a["name"]: a["default"] for a in clamp["attrs"]} == {"min": float("-inf"), "max": float("inf")}


def test_ember_ops_names(capsys):
    assert cli.main(["ops", "--names"]) == 0
    assert capsys.readouterr().out.split() == [s["name"] for s in _C.op_schemas()]


def test_no_subcommand_prints_usage(capsys):
    assert cli.main([]) == 1
    assert "ops" in capsys.readouterr().out


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2


def test_subcommand_modules_are_imported_lazily(monkeypatch):
    """A subcommand's module is imported only when that subcommand is chosen."""
    monkeypatch.setitem(cli.SUBCOMMANDS, "broken", ("graphruntime.no_such_module:register", "not importable"))
    assert cli.main(["ops", "--names"]) == 0  # building the parser does not import "broken"
    with pytest.raises(ModuleNotFoundError):
        cli.main(["broken"])


def test_every_registrar_target_is_importable():
    for name, (target, help_text) in cli.SUBCOMMANDS.items():
        assert help_text, name
        assert callable(cli._load_registrar(target)), name
