"""Where an eager training step spends its time, op by op, with and without the fast training
kernels (backward convolutions, pooling, element-wise, reductions, norms, layout).

    python benchmarks/training_ops.py [--threads N] [--steps N] [--top N]

Runs the training steps of benchmarks/eager.py (MLP 784-512-256-10 and the small CNN on
1x28x28, batch 64, SGD with momentum) twice: once with every op in TRAINING_OPS forced to its
reference kernel (the ISA cap set to 'reference' around those calls only, so GEMM-based
forward kernels stay fast in both runs), once with the best kernels. Times are process CPU
seconds (time.process_time), which stay meaningful on a machine shared with other jobs; with
--threads > 1 they add up the threads' time. Prints the step time of both runs, the op table of
the fast run, and PyTorch's step CPU time when it is installed.
"""
import argparse
import collections
import contextlib
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import frontend  # noqa: E402
import frontend.nn.functional as F  # noqa: E402
from frontend import _dispatch, models, optim  # noqa: E402
from graphruntime import _C  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

#: Ops whose fast kernels this benchmark measures (forced to 'reference' in the baseline run).
TRAINING_OPS = {
    "conv2d_grad_input", "conv2d_grad_weight", "max_pool2d", "max_pool2d_grad", "avg_pool2d",
    "avg_pool2d_grad", "adaptive_avg_pool2d", "adaptive_avg_pool2d_grad", "add", "sub", "mul", "div",
    "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "where", "relu", "neg", "abs", "relu6",
    "exp", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "gelu", "leaky_relu", "sum", "mean",
    "var", "max", "min", "softmax", "log_softmax", "layer_norm", "batch_norm", "expand", "transpose",
}


class OpTimer:
    """Per-op CPU time of the dispatcher's kernel calls, optionally forcing the reference kernel
    for TRAINING_OPS. `installed()` puts timed handles in front of the dispatcher's (every eager
    op goes through frontend._dispatch's per-op OpHandle)."""

    def __init__(self, force_reference):
        self.force_reference = force_reference
        self.times = collections.defaultdict(float)
        self.counts = collections.Counter()

    def timed(self, op, call):
        cap = None
        if self.force_reference and op in TRAINING_OPS:
            cap = _C.get_max_isa()
            _C.set_max_isa("reference")
        start = time.process_time()
        try:
            return call()
        finally:
            self.times[op] += time.process_time() - start
            self.counts[op] += 1
            if cap is not None:
                _C.set_max_isa(cap)

    @contextlib.contextmanager
    def installed(self):
        timer, saved_handles, saved_new = self, _dispatch._handles, _dispatch._new_handle

        class TimedHandle:
            def __init__(self, op):
                self.op, self.handle = op, _C.OpHandle(op, _dispatch.Tensor)

            def __call__(self, inputs, attrs=None, num_outputs=-1):
                return timer.timed(self.op, lambda: self.handle(inputs, attrs, num_outputs))

            def one(self, inputs, attrs=None):
                return timer.timed(self.op, lambda: self.handle.one(inputs, attrs))

        def new_handle(op):
            h = _dispatch._handles[op] = TimedHandle(op)
            return h

        _dispatch._handles, _dispatch._new_handle = {}, new_handle
        try:
            yield self
        finally:
            _dispatch._handles, _dispatch._new_handle = saved_handles, saved_new


def cases():
    rng = np.random.default_rng(0)
    frontend.manual_seed(0)
    y = rng.integers(0, 10, 64)
    return [("MLP 784-512-256-10 b64", models.MLP((784, 512, 256, 10)),
             rng.standard_normal((64, 784)).astype(np.float32), y),
            ("CNN 1x28x28 b64", models.SmallCNN(), rng.standard_normal((64, 1, 28, 28)).astype(np.float32), y)]


def measure(model, x, y, steps, timer):
    """Median CPU seconds per training step, with `timer` installed as the kernel runner."""
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = frontend.tensor(x), frontend.tensor(y)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()

    with timer.installed():
        step()
        timer.times.clear()
        timer.counts.clear()
        samples = []
        for _ in range(steps):
            start = time.process_time()
            step()
            samples.append(time.process_time() - start)
    return statistics.median(samples)


def torch_step_time(name, x, y, steps):
    tnn = torch.nn
    if name.startswith("MLP"):
        model = tnn.Sequential(tnn.Linear(784, 512), tnn.ReLU(), tnn.Linear(512, 256), tnn.ReLU(), tnn.Linear(256, 10))
    else:
        w = 16
        model = tnn.Sequential(
            tnn.Conv2d(1, w, 3, padding=1, bias=False), tnn.BatchNorm2d(w), tnn.ReLU(),
            tnn.Conv2d(w, 2 * w, 3, padding=1, bias=False), tnn.BatchNorm2d(2 * w), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(2 * w, 4 * w, 3, padding=1, bias=False), tnn.BatchNorm2d(4 * w), tnn.ReLU(),
            tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(4 * w, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.tensor(x), torch.tensor(y)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()

    step()
    samples = []
    for _ in range(steps):
        start = time.process_time()
        step()
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="kernel threads (and PyTorch's)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run (median)")
    parser.add_argument("--top", type=int, default=15, help="ops listed per model")
    args = parser.parse_args()
    frontend.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"threads={args.threads}  isa={_C.get_max_isa()}  CPU ms per training step (median of {args.steps})")
    for name, model, x, y in cases():
        state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
        baseline = OpTimer(force_reference=True)
        before = measure(model, x, y, args.steps, baseline)
        model.load_state_dict(state)
        fast = OpTimer(force_reference=False)
        after = measure(model, x, y, args.steps, fast)
        theirs = torch_step_time(name, x, y, args.steps) if torch is not None else float("nan")
        print(f"\n{name}: reference training ops {before * 1e3:.2f} ms -> fast {after * 1e3:.2f} ms "
              f"({before / after:.1f}x); PyTorch {theirs * 1e3:.2f} ms (ratio {after / theirs:.2f}x)")
        print(f"  {'op':<28} {'calls':>5} {'reference ms':>13} {'fast ms':>9}")
        for op, t in sorted(fast.times.items(), key=lambda kv: -kv[1])[:args.top]:
            calls = fast.counts[op] // args.steps
            print(f"  {op:<28} {calls:>5} {baseline.times[op] / args.steps * 1e3:>13.3f} "
                  f"{t / args.steps * 1e3:>9.3f}")


if __name__ == "__main__":
    main()
