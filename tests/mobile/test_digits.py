"""Acceptance: a digits CNN trained in eager mode, traced, quantized to int8 and exported loses at
most 0.5 points of test accuracy; ember-run and the Interpreter agree on the exported file."""
import numpy as np
import pytest

import frontend
import mobile
from frontend import jit, models, nn, optim
from graphruntime import Predictor

sklearn_datasets = pytest.importorskip("sklearn.datasets")


def digits_split():
    data = sklearn_datasets.load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None]  # [N, 1, 8, 8] in [0, 1]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def train_small_cnn(x, y, epochs=3, batch=64):
    frontend.manual_seed(0)
    model = models.SmallCNN(in_channels=1, num_classes=10, width=8)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(1)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for i in range(0, len(y), batch):
            idx = order[i:i + batch]
            loss = loss_fn(model(frontend.from_numpy(x[idx])), frontend.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def accuracy(run, x, y):
    return float(np.mean(run(x).argmax(1) == y))


def test_quantized_digits_cnn_keeps_accuracy(tmp_path):
    (xtr, ytr), (xte, yte) = digits_split()
    model = train_small_cnn(xtr, ytr)
    with frontend.no_grad():
        net = jit.trace(model, frontend.from_numpy(xte[:1]), dynamic_axes=[0]).net
    float_acc = accuracy(lambda x: Predictor(net).run({"x": x})["output"], xte, yte)
    calib = [{"x": xtr[i:i + 32]} for i in range(0, 32 * 16, 32)]
    qnet = mobile.quantize(net, calib, progress=False)
    path = tmp_path / "digits.ember"
    size = mobile.export(qnet, path)
    interp = mobile.Interpreter(path, num_threads=1)
    int8_acc = accuracy(lambda x: interp.run({"x": x})["output"], xte, yte)
    assert float_acc >= 0.9, f"float model trains poorly: {float_acc:.3f}"
    assert int8_acc >= float_acc - 0.005, f"int8 accuracy {int8_acc:.4f} vs float {float_acc:.4f}"
    assert any(op.type == "quantized_conv2d" for op in qnet.op)
    assert size < 40_000
