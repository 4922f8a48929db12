"""batch_norm_train and batch_norm_train_grad: training-mode batch normalization (batch statistics)
and its closed-form gradient.

The reference kernel (float64 accumulation, ISA capped at 'reference') is checked against the
textbook formulas evaluated in float64 numpy; every fast kernel this machine has is checked
against the reference at 1 and 2 threads on seeded random shapes (one channel, odd sizes, sizes
around the vector width). A fast kernel sums in double lanes in another order, and forms
x - mean in float32 against the float32-rounded mean before widening: its statistics differ from
the reference's by a few float32 ulps of the values involved, hence rtol 1e-5 on the outputs.
With PyTorch installed, the forward outputs and all three gradients match
torch.nn.functional.batch_norm(training=True) under autograd.
"""
import numpy as np
import pytest

from graphruntime import _C
from graphruntime.errors import InvalidArgumentError

TESTED_OPS = {"batch_norm_train", "batch_norm_train_grad"}

FAST_ISAS = [isa for isa in _C.cpu_features()["isas"] if isa not in ("reference", "avx512_vnni")]
SHAPES = [(2, 1), (5, 3), (4, 3, 7), (2, 1, 5, 5), (3, 16, 8, 8), (2, 5, 17, 3), (1, 2, 33, 1),
          (64, 4, 28, 28)]


def run(isa, threads, op, inputs, attrs):
    _C.set_max_isa(isa)
    _C.set_num_threads(threads)
    return _C.run_op(op, inputs, attrs), _C.kernel_name(op, inputs, attrs)


def inputs_for(shape, seed, dtype=np.float32, affine=True):
    rng = np.random.default_rng(seed)
    c = shape[1]
    # An offset mean, so x - mean is not x: catches a statistic taken about zero.
    x = (rng.standard_normal(shape) * 2.0 + 3.0).astype(dtype)
    w = rng.uniform(0.5, 1.5, c).astype(dtype) if affine else None
    b = rng.uniform(-1, 1, c).astype(dtype) if affine else None
    g = rng.standard_normal(shape).astype(dtype)
    return x, w, b, g


def formulas(x, w, b, g, eps):
    """Forward and gradients in float64 numpy."""
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    dims = (0,) + tuple(range(2, x.ndim))
    bshape = [1, x.shape[1]] + [1] * (x.ndim - 2)
    m = x.size // x.shape[1]
    mean = x64.mean(axis=dims)
    var = ((x64 - mean.reshape(bshape)) ** 2).mean(axis=dims)
    inv = 1.0 / np.sqrt(var + eps)
    w64 = np.ones(x.shape[1]) if w is None else w.astype(np.float64)
    b64 = np.zeros(x.shape[1]) if b is None else b.astype(np.float64)
    xhat = (x64 - mean.reshape(bshape)) * inv.reshape(bshape)
    y = xhat * w64.reshape(bshape) + b64.reshape(bshape)
    gsum = g64.sum(axis=dims)
    gdot = (g64 * xhat).sum(axis=dims)
    gx = (w64 * inv).reshape(bshape) * (g64 - gsum.reshape(bshape) / m - xhat * gdot.reshape(bshape) / m)
    return y, mean, var, gx, gdot, gsum


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES[:6])
def test_reference_matches_the_formulas(shape, affine, dtype):
    x, w, b, g = inputs_for(shape, sum(shape), dtype, affine)
    eps = 1e-3
    (y, mean, var), name = run("reference", 1, "batch_norm_train", [x, w, b], {"eps": eps})
    assert "reference" in name
    (gx, gw, gb), name = run("reference", 1, "batch_norm_train_grad", [g, x, mean, var, w], {"eps": eps})
    assert "reference" in name
    ey, emean, evar, egx, egw, egb = formulas(x, w, b, g, eps)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for got, want, what in ((y, ey, "y"), (mean, emean, "mean"), (var, evar, "var"), (gx, egx, "grad_x"),
                            (gw, egw, "grad_weight"), (gb, egb, "grad_bias")):
        assert got.dtype == dtype, what
        scale = np.abs(want).max() + 1.0
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_fast_kernels_match_reference(shape, affine):
    x, w, b, g = inputs_for(shape, 7 * sum(shape), np.float32, affine)
    attrs = {"eps": 1e-5}
    ref, _ = run("reference", 1, "batch_norm_train", [x, w, b], attrs)
    ref_grad, _ = run("reference", 1, "batch_norm_train_grad", [g, x, ref[1], ref[2], w], attrs)
    for isa in FAST_ISAS:
        outs = []
        for threads in (1, 2):
            got, name = run(isa, threads, "batch_norm_train", [x, w, b], attrs)
            assert name == f"f32_batch_norm_train_{isa}", name
            # The gradient from the reference statistics, so both kernels see the same inputs.
            grad, name = run(isa, threads, "batch_norm_train_grad", [g, x, ref[1], ref[2], w], attrs)
            assert name == f"f32_batch_norm_train_grad_{isa}", name
            for a, r, what in zip(list(got) + list(grad), list(ref) + list(ref_grad),
                                  ("y", "mean", "var", "grad_x", "grad_weight", "grad_bias")):
                np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5 * (np.abs(r).max() + 1.0),
                                           err_msg=f"{what} {shape} {isa} threads={threads}")
            outs.append(list(got) + list(grad))
        for a, b2 in zip(*outs):  # channels are split over threads, not their sums
            np.testing.assert_array_equal(a, b2)


def test_matches_torch_under_autograd():
    torch = pytest.importorskip("torch")
    x, w, b, g = inputs_for((8, 6, 5, 7), 11)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.batch_norm(tx, None, None, tw, tb, training=True, eps=1e-5)
    ty.backward(torch.tensor(g))
    y, mean, var = _C.run_op("batch_norm_train", [x, w, b], {"eps": 1e-5})
    gx, gw, gb = _C.run_op("batch_norm_train_grad", [g, x, mean, var, w], {"eps": 1e-5})
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var, tx.detach().numpy().var(axis=(0, 2, 3)), rtol=1e-4)
    for got, want in ((gx, tx.grad), (gw, tw.grad), (gb, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


def test_bad_inputs_name_the_input():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(InvalidArgumentError, match="batch_norm_train.*'weight'.*\\[4\\].*expected \\[3\\]"):
        _C.run_op("batch_norm_train", [x, np.ones(4, np.float32), None], {})
    with pytest.raises(InvalidArgumentError, match="batch_norm_train.*at least 2 dims"):
        _C.run_op("batch_norm_train", [np.zeros(3, np.float32)], {})
    stats = np.zeros(3, np.float32)
    with pytest.raises(InvalidArgumentError, match="batch_norm_train_grad.*'grad_y'.*\\[2, 3, 5\\]"):
        _C.run_op("batch_norm_train_grad", [np.zeros((2, 3, 5), np.float32), x, stats, stats], {})
    with pytest.raises(InvalidArgumentError, match="batch_norm_train_grad.*'grad_y' has dtype float64"):
        _C.run_op("batch_norm_train_grad", [x.astype(np.float64), x, stats, stats], {})
