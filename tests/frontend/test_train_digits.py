"""examples/train_digits.py reaches >= 97 % test accuracy on scikit-learn's digits."""
import importlib.util
import os

import pytest

pytest.importorskip("sklearn")

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "train_digits.py")


def load_example():
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_digits_reaches_97_percent():
    example = load_example()
    x_train, y_train, x_test, y_test = example.load_data(seed=0)
    assert x_train.shape == (1437, 1, 8, 8) and x_test.shape == (360, 1, 8, 8)
    model = example.build_model(seed=0)
    history = example.train(model, x_train, y_train, epochs=8, seed=0, progress=False)
    assert history[-1] < history[0]
    assert example.evaluate(model, x_test, y_test) >= 0.97
