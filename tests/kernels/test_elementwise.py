"""Element-wise binary ops, comparisons and where: broadcasting corners, every dtype, NaN
handling and integer division by zero, against PyTorch and numpy."""
import itertools

import numpy as np
import pytest
import torch

from graphruntime import errors
from oracle import assert_close, random_array as _random_array, run

ARITHMETIC_OPS = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]
COMPARE_OPS = ["eq", "ne", "lt", "le", "gt", "ge"]
TESTED_OPS = set(ARITHMETIC_OPS) | set(COMPARE_OPS) | {"where"}

FLOAT_TYPES = [np.float32, np.float64]
INT_TYPES = [np.int64, np.int32, np.uint8, np.int8]
NUMERIC_TYPES = FLOAT_TYPES + INT_TYPES
ALL_TYPES = NUMERIC_TYPES + [np.bool_]

# Pairs of shapes that broadcast: scalars, size-1 dims on either side, empty dims, rank gaps.
BROADCAST_PAIRS = [
    ((), ()), ((), (3,)), ((4,), ()), ((5,), (5,)), ((1,), (6,)), ((2, 3), (3,)), ((2, 1), (1, 4)),
    ((3, 1, 5), (4, 1)), ((1, 1, 1), (2, 3, 4)), ((0,), (1,)), ((1,), (0,)), ((0,), ()),
    ((2, 0, 3), (1, 3)), ((5, 0), (1, 1)), ((2, 3, 4), (2, 3, 4)), ((1, 4, 1, 2), (3, 1, 1, 1)),
    ((7, 1), (1, 9)),
]

TORCH_BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": lambda a, b: torch.div(a, b) if a.is_floating_point() else torch.div(a, b, rounding_mode="trunc"),
    "pow": torch.pow,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge,
}


def random_array(rng, shape, dtype, low=-20, high=20):
    return np.asarray(_random_array(rng, shape, dtype, low, high))


def dtypes_of(op):
    if op == "pow":
        return FLOAT_TYPES
    return ALL_TYPES if op in COMPARE_OPS else NUMERIC_TYPES


def operands(rng, op, dtype, sa, sb):
    if dtype == np.uint8 and op == "sub":
        a = random_array(rng, sa, dtype, 0, 255)
    else:
        a = random_array(rng, sa, dtype)
    if op == "pow":
        a = np.asarray(np.abs(a) + np.asarray(0.1, dtype))  # keep the base positive: real results
        b = random_array(rng, sb, dtype, -3, 3)
    elif op == "div" and np.dtype(dtype).kind in "iu":
        b = np.asarray(np.maximum(random_array(rng, sb, dtype, 1, 9), 1))  # no zero divisors (tested separately)
        if np.dtype(dtype).kind == "i":
            b = np.asarray(b * np.where(rng.random(b.shape) < 0.5, -1, 1).astype(dtype))
    else:
        b = random_array(rng, sb, dtype)
    return a, b


def tolerance(dtype):
    return (1e-6, 1e-6) if np.dtype(dtype) == np.float32 else (1e-13, 1e-13)


@pytest.mark.parametrize("op", ARITHMETIC_OPS + COMPARE_OPS)
def test_binary_op_matches_torch_with_broadcasting(op):
    rng = np.random.default_rng(sum(map(ord, op)))
    for dtype, (sa, sb) in itertools.product(dtypes_of(op), BROADCAST_PAIRS):
        for swap in (False, True):
            a, b = operands(rng, op, dtype, *((sb, sa) if swap else (sa, sb)))
            (y,) = run(op, [a, b])
            want = TORCH_BINARY[op](torch.from_numpy(a.copy()), torch.from_numpy(b.copy())).numpy()
            assert_close(y, want, *tolerance(dtype), context=f"{op} {np.dtype(dtype).name} {a.shape} {b.shape}")


def test_comparisons_of_equal_values_and_nan():
    a = np.array([1.0, np.nan, 2.0, np.inf, -0.0], np.float32)
    b = np.array([1.0, np.nan, 3.0, np.inf, 0.0], np.float32)
    for op in COMPARE_OPS:
        (y,) = run(op, [a, b])
        want = getattr(np, {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}[op])(a, b)
        np.testing.assert_array_equal(y, want, err_msg=op)


@pytest.mark.parametrize("op,npfn", [("maximum", np.maximum), ("minimum", np.minimum)])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_maximum_minimum_propagate_nan(op, npfn, dtype):
    a = np.array([np.nan, 1.0, np.nan, -np.inf, 0.0, -0.0], dtype)
    b = np.array([1.0, np.nan, np.nan, np.nan, -0.0, 0.0], dtype)
    (y,) = run(op, [a, b])
    assert np.isnan(y[:4]).all(), y
    assert_close(y, npfn(a, b), context=op)  # numpy propagates NaN the same way
    assert_close(y, getattr(torch, op)(torch.from_numpy(a), torch.from_numpy(b)).numpy(), context=op)


@pytest.mark.parametrize("dtype", INT_TYPES)
def test_integer_division_truncates_and_rejects_zero(dtype):
    a = np.array([7, 6, 0, 9], dtype)
    b = np.array([2, 4, 5, 3], dtype)
    (y,) = run("div", [a, b])
    np.testing.assert_array_equal(y, np.trunc(a / b).astype(dtype))
    if np.dtype(dtype).kind == "i":
        (y,) = run("div", [np.array([-7, 7], dtype), np.array([2, -2], dtype)])
        np.testing.assert_array_equal(y, [-3, -3])  # toward zero, not floor
    b[2] = 0
    with pytest.raises(errors.InvalidArgumentError, match="^div: integer division by zero"):
        run("div", [a, b])
    with pytest.raises(errors.InvalidArgumentError, match="^div: integer division by zero"):
        run("div", [a, np.zeros((), dtype)])  # broadcast zero


def test_float_division_by_zero_gives_ieee_results():
    a = np.array([1.0, -1.0, 0.0], np.float32)
    with np.errstate(all="ignore"):
        want = a / np.zeros(3, np.float32)
    (y,) = run("div", [a, np.zeros(3, np.float32)])
    assert_close(y, want)


def test_small_integer_arithmetic_wraps_like_torch():
    a = np.array([100, -100, 127, -128], np.int8)
    b = np.array([100, -100, 1, -1], np.int8)
    for op in ("add", "sub", "mul"):
        (y,) = run(op, [a, b])
        assert_close(y, TORCH_BINARY[op](torch.from_numpy(a), torch.from_numpy(b)).numpy(), context=op)


def test_where_matches_torch_with_three_way_broadcasting():
    rng = np.random.default_rng(17)
    triples = [((), (), ()), ((3,), (), (3,)), ((2, 1), (1, 4), (4,)), ((1,), (0,), (1,)),
               ((2, 3, 1), (3, 1), (1, 5)), ((4, 1, 2), (1, 3, 1), ()), ((0, 2), (1, 2), (2,))]
    for dtype, (sc, sx, sy) in itertools.product(ALL_TYPES, triples):
        c = np.asarray(rng.random(sc) < 0.5)
        x, y = random_array(rng, sx, dtype), random_array(rng, sy, dtype)
        (out,) = run("where", [c, x, y])
        want = torch.where(torch.from_numpy(c.copy()), torch.from_numpy(x.copy()), torch.from_numpy(y.copy())).numpy()
        assert_close(out, want, context=f"where {np.dtype(dtype).name} {sc} {sx} {sy}")
        assert_close(out, np.where(c, x, y), context="where vs numpy")


def test_where_errors():
    c = np.array([True, False])
    with pytest.raises(errors.InvalidArgumentError, match="^where: input 'condition' has dtype float32"):
        run("where", [c.astype(np.float32), c.astype(np.float32), c.astype(np.float32)])
    with pytest.raises(errors.InvalidArgumentError, match="^where: inputs 'x' and 'y' have different dtypes"):
        run("where", [c, np.zeros(2, np.float32), np.zeros(2, np.float64)])
    with pytest.raises(errors.InvalidArgumentError, match="^where: shapes .* cannot be broadcast"):
        run("where", [c, np.zeros(3, np.float32), np.zeros(2, np.float32)])


@pytest.mark.parametrize("op", ARITHMETIC_OPS + COMPARE_OPS)
def test_binary_errors(op):
    dtype = np.float32
    with pytest.raises(errors.InvalidArgumentError, match=rf"^{op}: shapes \[2, 3\] and \[4\] cannot be broadcast together \(dimension 1: 3 vs 4\)"):
        run(op, [np.zeros((2, 3), dtype), np.zeros(4, dtype)])
    with pytest.raises(errors.InvalidArgumentError, match=f"^{op}: inputs have different dtypes: float32 and float64"):
        run(op, [np.zeros(2, np.float32), np.zeros(2, np.float64)])
    if op not in COMPARE_OPS:
        with pytest.raises(errors.InvalidArgumentError, match=f"^{op}: input 'a' has dtype bool"):
            run(op, [np.zeros(2, bool), np.zeros(2, bool)])


@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_integer_division_of_min_by_minus_one_does_not_crash(dtype):
    """Run in a child process: a trap must not take the test session down with it."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from graphruntime import _C\n"
        f"m = np.iinfo(np.{dtype}).min\n"
        f"(y,) = _C.run_op('div', [np.array([m, 7], np.{dtype}), np.array([-1, 2], np.{dtype})])\n"
        "assert y.tolist() == [m, 3], y\n"
    )
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"exit code {result.returncode}: {result.stderr[-500:]}"
