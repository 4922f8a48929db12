"""The one oracle helper for kernel tests: run an op through `_C.run_op` and compare with an
expected value computed independently (numpy, explicit formulas, PyTorch when installed).

    check_op("add", [a, b], {}, expected=[a + b])
"""
import numpy as np

from graphruntime import _C

try:  # PyTorch is an optional oracle.
    import torch  # noqa: F401

    HAVE_TORCH = True
except Exception:  # pragma: no cover - depends on the environment
    HAVE_TORCH = False


def random_array(rng, shape, dtype=np.float32, low=-2.0, high=2.0):
    """Seeded random data of any supported dtype."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo = max(int(low), np.iinfo(dtype).min) if dtype.kind == "i" else 0
        hi = min(int(high) + 1, np.iinfo(dtype).max)
        return rng.integers(lo, max(hi, lo + 1), size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def run(op, inputs, attrs=None, num_outputs=-1):
    return _C.run_op(op, list(inputs), dict(attrs or {}), num_outputs)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, context=""):
    """Checks dtype, shape and values; a failure prints the worst index and the context."""
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{context}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{context}: shape {actual.shape} != {expected.shape}"
    if actual.size == 0:
        return
    if actual.dtype.kind in "biu":
        bad = np.argwhere(actual != expected)
        assert bad.size == 0, f"{context}: first mismatch at {tuple(bad[0])}: {actual[tuple(bad[0])]} != {expected[tuple(bad[0])]}"
        return
    ok = np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not ok.all():
        idx = tuple(np.argwhere(~ok)[0])
        raise AssertionError(
            f"{context}: {int((~ok).sum())} of {ok.size} elements differ; first at {idx}: "
            f"got {actual[idx]!r}, expected {expected[idx]!r} (rtol={rtol}, atol={atol})"
        )


def check_op(op, inputs, attrs=None, expected=None, rtol=1e-5, atol=1e-6, num_outputs=-1):
    """Runs `op` and compares every output with `expected` (a list). Returns the outputs."""
    outputs = run(op, inputs, attrs, num_outputs)
    assert len(outputs) == len(expected), f"{op}: {len(outputs)} outputs, expected {len(expected)}"
    for i, (got, want) in enumerate(zip(outputs, expected)):
        assert_close(got, want, rtol, atol, context=f"{op} output {i} attrs={attrs}")
    return outputs
