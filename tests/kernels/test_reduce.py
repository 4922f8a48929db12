"""Reductions (sum, mean, max, min, var, argmax) against PyTorch and numpy."""
import itertools
import warnings

import numpy as np
import pytest
import torch

from graphruntime import errors
from oracle import assert_close, random_array as _random_array, run

TESTED_OPS = {"sum", "mean", "max", "min", "var", "argmax"}

FLOAT_TYPES = [np.float32, np.float64]
INT_TYPES = [np.int64, np.int32, np.uint8, np.int8]
ALL_TYPES = FLOAT_TYPES + INT_TYPES + [np.bool_]



def random_array(rng, shape, dtype, low=-2.0, high=2.0):
    """The oracle's generator, always returning an ndarray (also for shape ())."""
    return np.asarray(_random_array(rng, shape, dtype, low, high))


SHAPES = [(), (1,), (5,), (0,), (3, 4), (1, 1), (2, 0, 3), (2, 3, 4), (4, 1, 3, 2), (3, 1, 0)]


def dim_lists(ndim, rng):
    """[] (all), every single dim (positive and negative), and a few random subsets."""
    if ndim == 0:
        return [[], [0], [-1]]
    out = [[]]
    for d in range(ndim):
        out += [[d], [d - ndim]]
    for r in range(2, ndim + 1):
        for combo in itertools.combinations(range(ndim), r):
            # Mix positive and negative spellings and orders.
            spelled = [d - ndim if rng.random() < 0.5 else d for d in combo]
            rng.shuffle(spelled)
            out.append([int(d) for d in spelled])
    return out


def torch_reduce(fn, x, dims, keepdim, **kwargs):
    t = torch.from_numpy(x.copy())
    if not dims:
        dims = list(range(x.ndim))
    if x.ndim == 0:
        return fn(t, **kwargs).numpy()
    return fn(t, dim=tuple(dims), keepdim=keepdim, **kwargs).numpy()


def reduces_empty_dim(shape, dims):
    dims = dims or list(range(len(shape)))
    return any(shape[d] == 0 for d in dims) if shape else False


def tolerance(dtype, op):
    if np.dtype(dtype) == np.float32:
        return (1e-4, 1e-5) if op in ("var", "mean", "sum") else (1e-6, 0)
    return (1e-10, 1e-12)


ORACLES = {
    "sum": (torch.sum, ALL_TYPES),
    "mean": (torch.mean, FLOAT_TYPES),
    "max": (torch.amax, ALL_TYPES),
    "min": (torch.amin, ALL_TYPES),
}


@pytest.mark.parametrize("op", sorted(ORACLES))
def test_reduction_matches_torch(op):
    fn, dtypes = ORACLES[op]
    rng = np.random.default_rng(sum(map(ord, op)))
    for dtype, shape in itertools.product(dtypes, SHAPES):
        for dims in dim_lists(len(shape), rng):
            for keepdim in (False, True):
                x = random_array(rng, shape, dtype, -50, 50)
                attrs = {"dim": dims, "keepdim": keepdim}
                ctx = f"{op} {np.dtype(dtype).name}{list(shape)} {attrs}"
                if op in ("max", "min") and reduces_empty_dim(shape, dims):
                    with pytest.raises(errors.InvalidArgumentError, match=f"^{op}: cannot reduce dim \\d+ of size 0"):
                        run(op, [x], attrs)
                    continue
                (y,) = run(op, [x], attrs)
                assert_close(y, torch_reduce(fn, x, dims, keepdim), *tolerance(dtype, op), context=ctx)


def test_sum_of_integers_and_bool_is_int64_and_wraps():
    big = np.full(4, np.iinfo(np.int64).max, dtype=np.int64)
    (y,) = run("sum", [big])
    assert y.dtype == np.int64 and y == big.sum()  # numpy wraps the same way
    (b,) = run("sum", [np.array([[True, False, True], [True, True, True]])], {"dim": [1]})
    np.testing.assert_array_equal(b, [2, 3])
    assert b.dtype == np.int64
    (u,) = run("sum", [np.full(300, 255, np.uint8)])
    assert u == 300 * 255 and u.dtype == np.int64


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_var_matches_torch_for_corrections(dtype):
    rng = np.random.default_rng(11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when N - correction <= 0
        for shape in SHAPES:
            for dims in dim_lists(len(shape), rng):
                for correction, keepdim in itertools.product((0, 1, 2), (False, True)):
                    x = random_array(rng, shape, dtype)
                    attrs = {"dim": dims, "keepdim": keepdim, "correction": correction}
                    (y,) = run("var", [x], attrs)
                    want = torch_reduce(torch.var, x, dims, keepdim, correction=correction)
                    assert_close(y, want, *tolerance(dtype, "var"), context=f"var {list(shape)} {attrs}")


def test_var_default_is_unbiased_and_matches_numpy():
    x = np.random.default_rng(3).normal(size=(6, 7))
    (y,) = run("var", [x], {"dim": [0]})
    assert_close(y, x.var(axis=0, ddof=1), 1e-12, 1e-14)
    (z,) = run("var", [x], {"correction": 0})
    assert_close(z, np.asarray(x.var()), 1e-12, 1e-14)


def test_mean_of_empty_is_nan():
    (y,) = run("mean", [np.zeros((0, 3), np.float32)], {"dim": [0]})
    assert y.shape == (3,) and np.isnan(y).all()


@pytest.mark.parametrize("op,fn", [("max", np.maximum), ("min", np.minimum)])
def test_max_min_propagate_nan(op, fn):
    x = np.array([[1.0, np.nan, 3.0], [np.nan, 2.0, -1.0], [4.0, 5.0, np.inf]], np.float32)
    for dims in ([0], [1], []):
        (y,) = run(op, [x], {"dim": dims})
        want = fn.reduce(x, axis=tuple(dims) if dims else None)  # numpy propagates NaN too
        assert_close(y, np.asarray(want, np.float32), context=f"{op} {dims}")


@pytest.mark.parametrize("dtype", FLOAT_TYPES + INT_TYPES)
def test_argmax_matches_numpy_and_torch(dtype):
    rng = np.random.default_rng(5)
    for shape in SHAPES:
        ndim = len(shape)
        for dim in (range(-ndim, ndim) if ndim else [0, -1]):
            for keepdim in (False, True):
                # A narrow range makes ties frequent: the first index must win.
                x = random_array(rng, shape, dtype, -3, 3)
                attrs = {"dim": dim, "keepdim": keepdim}
                ctx = f"argmax {np.dtype(dtype).name}{list(shape)} {attrs}"
                if ndim and shape[dim] == 0:
                    with pytest.raises(errors.InvalidArgumentError, match="^argmax: cannot reduce dim"):
                        run("argmax", [x], attrs)
                    continue
                (y,) = run("argmax", [x], attrs)
                want = np.argmax(x, axis=dim if ndim else None)
                if keepdim and ndim:
                    want = np.expand_dims(want, dim)
                assert_close(y, np.asarray(want, np.int64), context=ctx)
                t = torch.argmax(torch.from_numpy(x.copy()), dim=dim, keepdim=keepdim).numpy()
                assert_close(y, t, context=ctx + " vs torch")


def test_argmax_ties_and_nan():
    x = np.array([[1, 3, 3, 2], [5, 5, 5, 5]], np.float32)
    np.testing.assert_array_equal(run("argmax", [x], {"dim": 1})[0], [1, 0])
    x = np.array([1.0, np.nan, 7.0, np.nan], np.float32)
    assert run("argmax", [x], {"dim": 0})[0] == 1  # NaN is the maximum; the first wins
    assert run("argmax", [x], {"dim": 0})[0] == torch.argmax(torch.from_numpy(x)).item()


def test_argmax_requires_dim_and_rejects_bool():
    with pytest.raises(errors.InvalidArgumentError, match="argmax: missing required attribute 'dim'"):
        run("argmax", [np.zeros(3, np.float32)])
    with pytest.raises(errors.InvalidArgumentError, match="argmax: input 'x' has dtype bool"):
        run("argmax", [np.zeros(3, bool)], {"dim": 0})


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "var"])
def test_reduction_dim_errors(op):
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(errors.InvalidArgumentError, match=f"^{op}: attribute 'dim' = 2 is out of range"):
        run(op, [x], {"dim": [2]})
    with pytest.raises(errors.InvalidArgumentError, match=f"^{op}: attribute 'dim' = -3 is out of range"):
        run(op, [x], {"dim": [-3]})
    with pytest.raises(errors.InvalidArgumentError, match=f"^{op}: attribute 'dim' names dim 0 more than once"):
        run(op, [x], {"dim": [0, -2]})


def test_max_min_of_empty_tensor_over_all_dims_is_an_error():
    for op in ("max", "min"):
        with pytest.raises(errors.InvalidArgumentError, match=f"{op}: cannot reduce dim 0 of size 0"):
            run(op, [np.zeros((0,), np.float32)])


def test_shape_inference_with_unknown_dims():
    from graphruntime import _C

    f32 = "float32"
    assert _C.infer_types("sum", [(f32, [-1, 3, 4])], {"dim": [1]}) == [(f32, [-1, 4])]
    assert _C.infer_types("sum", [("int8", [-1, 3])], {"dim": [-1], "keepdim": True}) == [("int64", [-1, 1])]
    assert _C.infer_types("max", [(f32, [-1, 3])], {"dim": [0]}) == [(f32, [3])]  # size known only at run time
    assert _C.infer_types("argmax", [(f32, [-1, 5])], {"dim": 1, "keepdim": True}) == [("int64", [-1, 1])]
    assert _C.infer_types("var", [("float64", [2, -1])], {}) == [("float64", [])]
