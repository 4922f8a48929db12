"""Graph mode on the digits model: trace -> optimize -> run in the C++ runtime -> agree with eager.

    python examples/graph_mode.py     # standalone (an untrained model on sklearn's digits)

`make demo` calls `show_graph_mode(model, images)` with the model its eager stage trained.
"""
import os
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def show_graph_mode(model, images):
    """Traces `model` at batch 1 (dynamic batch), optimizes it, runs it on `images` (N, 1, 8, 8)
    in the runtime, and checks it agrees with eager."""
    import frontend
    import graphruntime
    from frontend import jit

    model.eval()
    x = frontend.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jit.TracerWarning)
        traced = jit.trace(model, x[:1], dynamic_axes=[0])
    optimized = graphruntime.optimize(traced.net, 2)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits.pb")
        graphruntime.save(optimized, path)
        predictor = graphruntime.Predictor(path, num_threads=2)
        start = time.perf_counter()
        got = predictor.run({traced.input_names[0]: x._data})["output"]
        runtime_ms = (time.perf_counter() - start) * 1e3
    with frontend.no_grad():
        start = time.perf_counter()
        expected = model(x)._data
        eager_ms = (time.perf_counter() - start) * 1e3
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    agree = float(np.mean(got.argmax(1) == expected.argmax(1)))
    stats = predictor.memory_stats()
    print(f"== graph mode: traced {len(traced.net.op)} ops, optimized to {len(optimized.op)} "
          f"({', '.join(sorted({op.type for op in optimized.op}))})")
    print(f"   runtime vs eager on {len(images)} images: max |diff| {np.max(np.abs(got - expected)):.2e}, "
          f"same predictions {agree:.0%}; {runtime_ms:.1f} ms vs {eager_ms:.1f} ms eager")
    print(f"   memory plan: arena {stats['arena_bytes']:,} B (lower bound {stats['lower_bound_bytes']:,} B, "
          f"naive {stats['naive_bytes']:,} B), weights {stats['weight_bytes']:,} B")
    return optimized


def main():
    import frontend
    from frontend import models
    try:
        from sklearn.datasets import load_digits
        images = (load_digits().images[:256] / 16.0).astype(np.float32)[:, None]
    except ImportError:
        images = np.random.default_rng(0).random((256, 1, 8, 8), dtype=np.float32)
    frontend.manual_seed(0)
    show_graph_mode(models.SmallCNN(in_channels=1, num_classes=10), images)


if __name__ == "__main__":
    main()
