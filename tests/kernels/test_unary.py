"""Unary element-wise ops against PyTorch (and numpy formulas) on seeded random shapes."""
import math
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphruntime import _C, errors
from oracle import assert_close, random_array, run

FLOAT_TYPES = [np.float32, np.float64]
INT_TYPES = [np.int64, np.int32, np.uint8, np.int8]
NUMERIC_TYPES = FLOAT_TYPES + INT_TYPES

# Shapes covering scalars, empty and size-1 dims, and a few ordinary ones.
SHAPES = [(), (0,), (1,), (7,), (3, 0, 2), (1, 1, 5), (2, 3, 4), (4, 1, 3, 2), (33,)]

# name -> (torch oracle, allowed dtypes, attribute sets, input range)
UNARY_CASES = {
    "neg": (torch.neg, NUMERIC_TYPES, [{}], (-100, 100)),
    "abs": (torch.abs, NUMERIC_TYPES, [{}], (-100, 100)),
    "sign": (torch.sign, NUMERIC_TYPES, [{}], (-3, 3)),
    "relu": (torch.relu, NUMERIC_TYPES, [{}], (-100, 100)),
    "exp": (torch.exp, FLOAT_TYPES, [{}], (-10, 10)),
    "log": (torch.log, FLOAT_TYPES, [{}], (-1, 10)),
    "sqrt": (torch.sqrt, FLOAT_TYPES, [{}], (-1, 10)),
    "rsqrt": (torch.rsqrt, FLOAT_TYPES, [{}], (-1, 10)),
    "erf": (torch.erf, FLOAT_TYPES, [{}], (-4, 4)),
    "sigmoid": (torch.sigmoid, FLOAT_TYPES, [{}], (-20, 20)),
    "tanh": (torch.tanh, FLOAT_TYPES, [{}], (-10, 10)),
    "silu": (F.silu, FLOAT_TYPES, [{}], (-10, 10)),
    "relu6": (F.relu6, FLOAT_TYPES, [{}], (-10, 10)),
    "hardswish": (F.hardswish, FLOAT_TYPES, [{}], (-6, 6)),
    "hardsigmoid": (F.hardsigmoid, FLOAT_TYPES, [{}], (-6, 6)),
    "leaky_relu": (
        lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope),
        FLOAT_TYPES,
        [{}, {"negative_slope": 0.2}, {"negative_slope": 0}, {"negative_slope": -1.5}],
        (-5, 5),
    ),
    "gelu": (
        lambda x, approximate="none": F.gelu(x, approximate=approximate),
        FLOAT_TYPES,
        [{}, {"approximate": "none"}, {"approximate": "tanh"}],
        (-6, 6),
    ),
    "clamp": (
        lambda x, min=-math.inf, max=math.inf: torch.clamp(x, min=min, max=max),
        FLOAT_TYPES,
        [{}, {"min": -1.0}, {"max": 0.5}, {"min": -0.5, "max": 0.75}, {"min": 1.0, "max": -1.0}],
        (-2, 2),
    ),
}

TESTED_OPS = set(UNARY_CASES)

SPECIAL_FLOATS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30, 88.0, -88.0, 710.0, -710.0]


def torch_expected(fn, x, attrs):
    return fn(torch.from_numpy(x.copy()), **attrs).numpy()


def tolerance(dtype):
    return (1e-5, 1e-6) if np.dtype(dtype) == np.float32 else (1e-12, 1e-14)


@pytest.mark.parametrize("op", sorted(UNARY_CASES))
def test_unary_matches_torch_on_random_shapes(op):
    fn, dtypes, attr_sets, (low, high) = UNARY_CASES[op]
    rng = np.random.default_rng(zlib.crc32(op.encode()))  # seeded per op, stable across runs
    for dtype in dtypes:
        for shape in SHAPES:
            for attrs in attr_sets:
                x = random_array(rng, shape, dtype, low, high)
                rtol, atol = tolerance(dtype)
                (y,) = run(op, [x], attrs)
                assert_close(y, torch_expected(fn, x, attrs), rtol, atol, context=f"{op} {dtype.__name__} {shape} {attrs}")
                assert y.flags.c_contiguous


@pytest.mark.parametrize("op", sorted(o for o, case in UNARY_CASES.items() if np.float32 in case[1]))
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_unary_special_values_match_torch(op, dtype):
    fn, _, attr_sets, _ = UNARY_CASES[op]
    x = np.array(SPECIAL_FLOATS, dtype=dtype)
    with np.errstate(all="ignore"):
        for attrs in attr_sets:
            (y,) = run(op, [x], attrs)
            want = torch_expected(fn, x, attrs)
            if op == "gelu":
                # NOTE: torch's vectorized float32 gelu returns NaN at +inf; the limit is +inf.
                want[x == np.inf] = np.inf
            rtol, atol = tolerance(dtype)
            assert_close(y, want, rtol, atol, context=f"{op} special values {attrs}")
            # Signs of zeros and infinities must agree too (isclose ignores the sign of zero).
            finite = np.isfinite(want) & (want == 0)
            np.testing.assert_array_equal(np.signbit(y[finite]), np.signbit(want[finite]), err_msg=op)


INT_OPS = sorted(o for o, case in UNARY_CASES.items() if np.int8 in case[1])
assert "clamp" not in INT_OPS  # clamp on integers has its own tests (torch would promote to float)


@pytest.mark.parametrize("op", INT_OPS)
@pytest.mark.parametrize("dtype", INT_TYPES)
def test_unary_integer_extremes_wrap_like_torch(op, dtype):
    info = np.iinfo(dtype)
    x = np.array([info.min, info.min + 1, -1 if info.min < 0 else 1, 0, 1, info.max - 1, info.max], dtype=dtype)
    (y,) = run(op, [x])
    assert_close(y, torch_expected(UNARY_CASES[op][0], x, {}), context=f"{op} {dtype.__name__}")


@pytest.mark.parametrize("dtype", INT_TYPES)
@pytest.mark.parametrize(
    "bounds",
    [{}, {"min": 2}, {"max": 5}, {"min": -3, "max": 4}, {"min": 7, "max": 2}, {"min": -1e10}, {"max": 1e10}, {"min": 1e10}],
)
def test_clamp_integers_keep_dtype(dtype, bounds):
    rng = np.random.default_rng(7)
    x = random_array(rng, (5, 6), dtype, -20, 20)
    (y,) = run("clamp", [x], bounds)
    info = np.iinfo(dtype)
    lo = max(bounds.get("min", -math.inf), info.min)
    hi = min(bounds.get("max", math.inf), info.max)
    want = np.minimum(np.maximum(x.astype(np.float64), lo), hi).astype(dtype)
    assert_close(y, want, context=f"clamp {dtype.__name__} {bounds}")
    if bounds and all(isinstance(v, int) for v in bounds.values()) and (dtype != np.uint8 or bounds.get("min", 0) >= 0):
        assert_close(y, torch_expected(torch.clamp, x, bounds), context="clamp vs torch")


def test_clamp_integers_round_fractional_bounds_inward():
    x = np.arange(-5, 6, dtype=np.int32)
    (y,) = run("clamp", [x], {"min": -2.5, "max": 3.5})
    np.testing.assert_array_equal(y, np.clip(x, -2, 3))


FLOAT_ONLY_OPS = sorted(o for o in UNARY_CASES if "int32" not in _C.op_schema(o)["inputs"][0]["dtypes"])


@pytest.mark.parametrize("op", FLOAT_ONLY_OPS)
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
def test_float_only_unary_rejects_integers(op, dtype):
    x = np.zeros((2, 2), dtype=dtype)
    with pytest.raises(errors.InvalidArgumentError, match=f"^{op}: input 'x' has dtype"):
        run(op, [x])


def test_unary_ops_reject_bool():
    for op in INT_OPS:
        with pytest.raises(errors.InvalidArgumentError, match=op):
            run(op, [np.zeros(3, dtype=bool)])


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(errors.InvalidArgumentError, match="gelu: attribute 'approximate'.*erf"):
        run("gelu", [np.zeros(3, np.float32)], {"approximate": "erf"})


def test_clamp_rejects_nan_bounds():
    with pytest.raises(errors.InvalidArgumentError, match="clamp: .*NaN"):
        run("clamp", [np.zeros(3, np.float32)], {"min": math.nan})


def test_gelu_and_silu_match_explicit_formulas():
    """An oracle independent of torch: the textbook formulas in float64."""
    x = np.linspace(-6, 6, 101)
    erf = np.vectorize(math.erf)
    (g,) = run("gelu", [x])
    assert_close(g, 0.5 * x * (1 + erf(x / math.sqrt(2))), 1e-12, 1e-14)
    (gt,) = run("gelu", [x], {"approximate": "tanh"})
    assert_close(gt, 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))), 1e-12, 1e-14)
    (s,) = run("silu", [x])
    assert_close(s, x / (1 + np.exp(-x)), 1e-12, 1e-14)
    (h,) = run("hardswish", [x])
    assert_close(h, x * np.clip(x + 3, 0, 6) / 6, 1e-12, 1e-14)


def test_unary_schemas_declare_inplace_hint():
    for op in UNARY_CASES:
        assert _C.op_schema(op)["inplace_input"] == 0, op
