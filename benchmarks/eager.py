"""Eager-mode overhead and training-step time, side by side with PyTorch in one run.

    python benchmarks/eager.py [--threads N] [--quick]

Per-op overhead: a 1-element add, a relu and a 1x16 by 16x16 linear (median time per call).
Training step (forward, backward, SGD step): MLP 784-512-256-10 and a small CNN on 1x28x28,
batch 64. Prints a table of medians and the ratio frontend / PyTorch (lower is better).
"""
import argparse
import os
import statistics
import sys
import time

# numpy's BLAS threads are unused here; idle spinning ones would only add noise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import frontend  # noqa: E402
from frontend import models, nn, optim  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def per_call(fn, number, repeat):
    """Median seconds per call of fn over `repeat` timed loops of `number` calls."""
    for _ in range(max(number // 10, 1)):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def op_cases(lib):
    F = lib.nn.functional
    a, b = lib.ones(1), lib.ones(1)
    x, w, bias = lib.ones(1, 16), lib.ones(16, 16), lib.ones(16)
    return {
        "add 1-elem": lambda: a + b,
        "relu 1-elem": lambda: F.relu(a),
        "linear 1x16 @ 16x16": lambda: F.linear(x, w, bias),
    }


def torch_small_cnn():
    tnn = torch.nn
    w = 16
    body = tnn.Sequential(
        tnn.Conv2d(1, w, 3, padding=1, bias=False), tnn.BatchNorm2d(w), tnn.ReLU(),
        tnn.Conv2d(w, 2 * w, 3, padding=1, bias=False), tnn.BatchNorm2d(2 * w), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False), tnn.BatchNorm2d(4 * w), tnn.ReLU(),
        tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(4 * w, 10))
    return body


def train_step_fn(lib, model, x, y):
    F = lib.nn.functional
    opt = (optim if lib is frontend else torch.optim).SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="kernel threads for both libraries")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    frontend.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    number, repeat, steps = (2000, 5, 5) if args.quick else (20000, 7, 15)
    rows = []
    ours_ops = op_cases(frontend)
    theirs_ops = op_cases(torch) if torch is not None else {}
    for name, fn in ours_ops.items():
        with_grad = per_call(fn, number, repeat)
        theirs = per_call(theirs_ops[name], number, repeat) if theirs_ops else float("nan")
        rows.append((name, with_grad * 1e6, theirs * 1e6, "us", 1.0))

    rng = np.random.default_rng(0)
    xm = rng.standard_normal((64, 784)).astype(np.float32)
    xc = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    frontend.manual_seed(0)
    cases = [("train step MLP 784-512-256-10 b64", models.MLP((784, 512, 256, 10)), xm,
              lambda: torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256),
                                          torch.nn.ReLU(), torch.nn.Linear(256, 10))),
             ("train step CNN 1x28x28 b64", models.SmallCNN(), xc, torch_small_cnn)]
    for name, ours_model, x, make_theirs in cases:
        ours = per_call(train_step_fn(frontend, ours_model, frontend.tensor(x), frontend.tensor(y)), 1, steps)
        theirs = float("nan")
        if torch is not None:
            theirs = per_call(train_step_fn(torch, make_theirs(), torch.tensor(x), torch.tensor(y)), 1, steps)
        rows.append((name, ours * 1e3, theirs * 1e3, "ms", 1.2))

    print(f"threads={args.threads}  numpy={np.__version__}  torch={torch.__version__ if torch else 'n/a'}")
    print(f"{'case':<36} {'frontend':>12} {'pytorch':>12} {'ratio':>7} {'target':>7}")
    for name, ours, theirs, unit, target in rows:
        ratio = ours / theirs if theirs == theirs else float("nan")
        print(f"{name:<36} {ours:>9.2f} {unit} {theirs:>9.2f} {unit} {ratio:>6.2f}x {'<=' + str(target) + 'x':>7}")


if __name__ == "__main__":
    main()
