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


def test_subcommand_modules_are_imported_lazily(monkeypatch, capsys):
    """A subcommand's module is imported only when that subcommand is chosen."""
    table = cli.SUBCOMMANDS + [("broken", "graphruntime.no_such_module", "not importable")]
    monkeypatch.setattr(cli, "SUBCOMMANDS", table)
    assert cli.main(["ops", "--names"]) == 0  # building the parser does not import "broken"
    assert cli.main([]) == 1
    assert "broken" in capsys.readouterr().out  # listed in the help from the table alone
    with pytest.raises(ModuleNotFoundError):
        cli.main(["broken"])


def test_a_module_may_register_several_subcommands(monkeypatch, tmp_path, capsys):
    (tmp_path / "ember_test_commands.py").write_text(
        "def register(subparsers):\n"
        "    for name in ('first', 'second'):\n"
        "        p = subparsers.add_parser(name)\n"
        "        p.add_argument('--n', type=int, default=1)\n"
        "        p.set_defaults(func=lambda args, name=name: print(name, args.n) or 3)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    table = cli.SUBCOMMANDS + [("first", "ember_test_commands", "one"), ("second", "ember_test_commands", "two")]
    monkeypatch.setattr(cli, "SUBCOMMANDS", table)
    assert cli.main(["second", "--n", "5"]) == 3
    assert capsys.readouterr().out == "second 5\n"


def test_library_errors_are_reported_without_traceback(capsys):
    assert cli.main(["ops", "no_such_op"]) == 1
    assert capsys.readouterr().err == "ember ops: unknown op 'no_such_op'\n"


def test_every_subcommand_module_registers_its_names():
    for name, module, help_text in cli.SUBCOMMANDS:
        assert help_text, name
        parser = cli.build_parser(name)
        sub = parser._subparsers._group_actions[0].choices[name]
        assert sub.get_default("func") is not None, f"{module}.register does not set func for {name}"


def test_a_single_command_module_needs_only_add_arguments_and_run(monkeypatch, tmp_path, capsys):
    (tmp_path / "ember_test_single.py").write_text(
        "def add_arguments(parser):\n"
        "    parser.add_argument('--x', type=int, required=True)\n"
        "def run(args):\n"
        "    print('x =', args.x)\n"
        "    return 4\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "SUBCOMMANDS", cli.SUBCOMMANDS + [("single", "ember_test_single", "one command")])
    assert cli.main(["single", "--x", "2"]) == 4
    assert capsys.readouterr().out == "x = 2\n"


@pytest.mark.parametrize("name", [name for name, _, _ in cli.SUBCOMMANDS])
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: ember {name}" in capsys.readouterr().out


def test_serve_is_wired_to_the_serving_daemon():
    result = run_cli("serve", "--help")
    assert result.returncode == 0, result.stderr
    assert "--model-repository" in result.stdout
