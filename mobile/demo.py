"""The int8 mobile part of the end-to-end demo: quantize a traced digits CNN, export it as a
`.ember` file, run it with the `ember-run` binary (no Python in that process), and print the
float and int8 accuracy and the file sizes.

    >>> from mobile.demo import quantize_export_and_run            # doctest: +SKIP
    >>> quantize_export_and_run(traced.net, x_train, x_test, y_test)  # doctest: +SKIP

`python -m mobile.demo` trains a small digits CNN (scikit-learn's 8x8 digits) first.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile

import numpy as np

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_ember_run() -> str | None:
    """The newest `ember-run` under build/ that runs on this machine (cross builds skipped)."""
    found = sorted(glob.glob(os.path.join(SOURCE_ROOT, "build", "*", "ember-run")), key=os.path.getmtime)
    for path in reversed(found):
        try:
            if subprocess.run([path, "--help"], capture_output=True, timeout=30).returncode == 0:
                return path
        except OSError:
            continue
    return None


def quantize_export_and_run(net, calibration_images, test_images, test_labels, print_fn=print,
                            method: str = "minmax") -> dict:
    """Quantizes `net` (input 'x', output 'output') on batches of `calibration_images`, exports
    it, measures accuracy with the Interpreter and with ember-run, prints a summary and returns
    {'float_accuracy', 'int8_accuracy', 'ember_run_accuracy', 'float_bytes', 'int8_bytes'}."""
    import mobile
    from graphruntime import Predictor
    from graphruntime.lower import lower
    from graphruntime.passes import optimize

    calib = [{"x": calibration_images[i:i + 32]} for i in range(0, min(len(calibration_images), 512), 32)]
    qnet = mobile.quantize(net, calib, method=method, progress=False)
    result = {}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "digits.ember")
        result["int8_bytes"] = mobile.export(qnet, path)
        result["float_bytes"] = len(lower(optimize(net, 2)))
        float_out = Predictor(net).run({"x": test_images})["output"]
        int8_out = mobile.Interpreter(path).run({"x": test_images})["output"]
        result["float_accuracy"] = float(np.mean(float_out.argmax(1) == test_labels))
        result["int8_accuracy"] = float(np.mean(int8_out.argmax(1) == test_labels))
        binary = find_ember_run()
        if binary:
            np.save(os.path.join(d, "x.npy"), np.ascontiguousarray(test_images))
            out_dir = os.path.join(d, "out")
            done = subprocess.run([binary, path, "-i", f"x={os.path.join(d, 'x.npy')}", "-o", out_dir,
                                   "--bench", "20", "--threads", "1"], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"ember-run failed: {done.stderr.strip()}")
            run_out = np.load(os.path.join(out_dir, "output.npy"))
            result["ember_run_accuracy"] = float(np.mean(run_out.argmax(1) == test_labels))
            bench = done.stdout.strip().splitlines()[-1]
    print_fn(f"== int8 mobile: digits CNN float accuracy {result['float_accuracy']:.4f}, int8 "
             f"{result['int8_accuracy']:.4f}; .ember {result['int8_bytes']} bytes (float "
             f"{result['float_bytes']} bytes)")
    if "ember_run_accuracy" in result:
        print_fn(f"   ember-run (C++, no Python): accuracy {result['ember_run_accuracy']:.4f}; {bench}")
    else:
        print_fn("   ember-run is not built (cmake builds it with the project)")
    return result


def digits_data():
    """scikit-learn's 8x8 digits as [N, 1, 8, 8] float32 in [0, 1]: (train, test) splits."""
    from sklearn.datasets import load_digits
    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def train_digits_cnn(x, y, epochs: int = 3, batch: int = 64):
    """A frontend SmallCNN trained with Adam for a few epochs (seeded), in eval mode."""
    import frontend
    from frontend import models, nn, optim
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


def main() -> int:
    import frontend
    from frontend import jit
    (xtr, ytr), (xte, yte) = digits_data()
    model = train_digits_cnn(xtr, ytr)
    with frontend.no_grad():
        net = jit.trace(model, frontend.from_numpy(xte[:1]), dynamic_axes=[0]).net
    quantize_export_and_run(net, xtr, xte, yte)
    return 0


if __name__ == "__main__":
    sys.exit(main())
