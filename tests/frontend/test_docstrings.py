"""Every public name of the Python packages has a docstring (methods may inherit the one of the
method they override; gradient rules are documented by their registry, `autograd.rules.RULES`;
generated code and the C++ binding are skipped)."""
import importlib
import inspect
import pkgutil

import pytest

# Generated code, and the C++ binding (documented in csrc/python).
SKIPPED = ("_pb2", "model_fb", "graphruntime._C")


def public_names_without_docstrings(package_name):
    package = importlib.import_module(package_name)
    from frontend.autograd.rules import RULES
    rules = set(RULES.values())
    missing = []
    for info in pkgutil.walk_packages(package.__path__, package_name + "."):
        if any(part in info.name for part in SKIPPED) or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if not (inspect.isfunction(value) or inspect.isclass(value)) or value in rules:
                continue
            if not inspect.getdoc(value):
                missing.append(f"{module.__name__}.{name}")
            if inspect.isclass(value):
                for attr, member in vars(value).items():
                    if attr.startswith("_"):
                        continue
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if (inspect.isfunction(member) or isinstance(member, property)) and \
                            not inspect.getdoc(getattr(value, attr, member)) and not inspect.getdoc(member):
                        missing.append(f"{module.__name__}.{name}.{attr}")
    return missing


@pytest.mark.parametrize("package_name", ["frontend", "graphruntime"])
def test_public_names_have_docstrings(package_name):
    assert public_names_without_docstrings(package_name) == []
