"""Acceptance: a digits CNN trained in eager mode, traced, quantized to int8 and exported loses at
most 0.5 points of test accuracy, in the Interpreter and in ember-run (mobile.demo's flow)."""
import pytest

import frontend
from frontend import jit
from mobile.demo import digits_data, find_ember_run, quantize_export_and_run, train_digits_cnn

pytest.importorskip("sklearn.datasets")


def test_quantized_digits_cnn_keeps_accuracy():
    (xtr, ytr), (xte, yte) = digits_data()
    model = train_digits_cnn(xtr, ytr)
    with frontend.no_grad():
        net = jit.trace(model, frontend.from_numpy(xte[:1]), dynamic_axes=[0]).net
    lines = []
    result = quantize_export_and_run(net, xtr, xte, yte, print_fn=lines.append)
    assert result["float_accuracy"] >= 0.9, f"float model trains poorly: {result}"
    assert result["int8_accuracy"] >= result["float_accuracy"] - 0.005, result
    assert result["int8_bytes"] < result["float_bytes"] / 2  # small net: graph structure is a fixed cost
    if find_ember_run():
        assert result["ember_run_accuracy"] == result["int8_accuracy"]  # same runtime, same bits
        assert "median" in lines[-1]
