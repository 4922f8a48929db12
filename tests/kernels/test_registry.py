"""The registry is complete: every op has a reference kernel, a doc line, well-typed defaults,
and a test case.

Convention: every tests/kernels/test_*.py module defines `TESTED_OPS`, the set of op names
whose values or errors it checks. This module gathers them and fails for any registered op
that no module tests (and for any tested name that is not registered).
"""
import glob
import importlib.util
import os

import pytest

from graphruntime import _C

HERE = os.path.dirname(os.path.abspath(__file__))
ATTR_TYPE_NAMES = {"int", "float", "bool", "string", "int[]", "float[]", "string[]"}
DTYPE_NAMES = {"float32", "float64", "int64", "int32", "uint8", "int8", "bool"}


def load_tested_ops():
    """{module file name: TESTED_OPS} for every test module in this directory."""
    tested = {}
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        name = os.path.basename(path)
        if name == "test_registry.py":
            continue
        spec = importlib.util.spec_from_file_location(f"_ember_kernel_tests_{name[:-3]}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        tested[name] = getattr(module, "TESTED_OPS", None)
    return tested


TESTED_BY_MODULE = load_tested_ops()
TESTED_OPS = set().union(*(ops or set() for ops in TESTED_BY_MODULE.values()))
SCHEMAS = {s["name"]: s for s in _C.op_schemas()}


def test_every_kernel_test_module_declares_tested_ops():
    missing = [name for name, ops in TESTED_BY_MODULE.items() if not isinstance(ops, (set, frozenset))]
    assert not missing, f"these modules do not define TESTED_OPS = {{...}}: {missing}"


def test_every_op_has_a_test_case():
    untested = sorted(set(SCHEMAS) - TESTED_OPS)
    assert not untested, f"ops with no test case in tests/kernels (add them to a TESTED_OPS table): {untested}"


def test_every_tested_name_is_a_registered_op():
    unknown = sorted(TESTED_OPS - set(SCHEMAS))
    assert not unknown, f"TESTED_OPS names that are not registered ops: {unknown}"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_complete(name):
    schema = SCHEMAS[name]
    assert any(k["isa"] == "reference" for k in schema["kernels"]), f"{name} has no reference kernel"
    assert schema["doc"].strip(), f"{name} has no doc line"
    assert schema["outputs"], f"{name} declares no outputs"
    for arg in schema["inputs"] + schema["outputs"]:
        assert arg["name"], f"{name} has an unnamed input or output"
        assert set(arg["dtypes"]) <= DTYPE_NAMES, (name, arg)
    variadic = [a["variadic"] for a in schema["inputs"]]
    assert not any(variadic[:-1]), f"{name}: only the last input may be variadic"
    names = [a["name"] for a in schema["attrs"]]
    assert len(names) == len(set(names)), f"{name} declares an attribute twice"
    for attr in schema["attrs"]:
        check_attribute(name, attr)


def check_attribute(op, attr):
    kind, default = attr["type"], attr["default"]
    assert kind in ATTR_TYPE_NAMES, (op, attr)
    where = f"{op}.{attr['name']}"
    if attr["required"]:
        assert default is None, f"{where} is required but has a default"
        return
    element = {"int[]": int, "float[]": float, "string[]": str}
    if kind == "int":
        assert type(default) is int, f"{where}: default {default!r} is not an int"
    elif kind == "float":
        assert type(default) is float, f"{where}: default {default!r} is not a float"
    elif kind == "bool":
        assert type(default) is bool, f"{where}: default {default!r} is not a bool"
    elif kind == "string":
        assert type(default) is str, f"{where}: default {default!r} is not a string"
    else:
        assert type(default) is list, f"{where}: default {default!r} is not a list"
        assert all(type(v) is element[kind] for v in default), f"{where}: default {default!r} is not {kind}"


def test_reference_kernels_can_be_forced():
    """With the ISA capped at 'reference', every op still finds a kernel."""
    import numpy as np

    previous = _C.get_max_isa()
    _C.set_max_isa("reference")
    try:
        assert _C.kernel_name("relu", [np.zeros(3, np.float32)]).endswith("reference")
        assert _C.kernel_name("reshape", [np.zeros(3, np.int8)], {"shape": [3]}).endswith("reference")
    finally:
        _C.set_max_isa(previous)
