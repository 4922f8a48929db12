"""Vectorized fp32 element-wise and reduction kernels against the reference kernels, for every
ISA this machine has (forced with _C.set_max_isa), at 1 and 2 threads.

Sizes cover the vector widths (4, 8, 16 floats): 1, width - 1, width, width + 1, and blocks
larger than a thread-pool task. Broadcast patterns: same shape, scalar on either side, row
([N, D] op [D]), column ([N, D] op [N, 1]) and channel ([N, C, H, W] op [1, C, 1, 1]); other
broadcasts must fall back to the reference kernel.

Tolerances:
- binary arithmetic, comparisons, where, relu, neg, abs, relu6: IEEE float operations on the
  same operands as the reference (whose double result rounds to the same float), so bit-exact;
- exp, sigmoid, tanh, silu, hardswish, hardsigmoid, leaky_relu: the approximations stated in
  kernels/simd/vec.h, checked in ulps of the reference result (ULP_BOUNDS), with an absolute
  floor of 1e-37 where the reference result is subnormal or zero;
- gelu(tanh): x * sigmoid(2u) where u = sqrt(2/pi)(x + 0.044715 x^3) is computed in float; the
  relative error of u (a few ulp) is amplified by d log sigmoid(2u) / d log u = 2u (1 - sigmoid)
  (up to ~2|u|, ~30 for the inputs here), hence its larger bound. For u < -9 the reference's
  own 1 + tanh(u) cancels in double (absolute error ~1e-16 |x|, relative error large), so there
  the check is that absolute error;
- sum / mean / var: both accumulate in double; only the order differs, so results are within
  1 ulp of the reference (a double sum rounded to float), checked as rtol 2 * eps32; max / min
  select a value (NaN wins, the first of +0 / -0), bit-exact;
- layer_norm: statistics in double (reordered), affine step in double with the reference's
  formula: within 1 ulp (rtol 2 * eps32); batch_norm (inference): same formula and order as the
  reference, bit-exact;
- softmax: e = exp(x - max) in float (2 ulp) plus the rounding of x - max in float, whose
  absolute error (half an ulp of x - max, at most |x - max| 2^-24) becomes a relative error of
  e, up to |x - max| ulps of e: bound 6 + |x - max| ulp;
  log_softmax = (x - max) - log(sum) in double, with sum's relative error a few float ulps:
  |error| <= 2^-21 + 2^-23 |y|;
- expand, transpose, split: values are only moved, bit-exact.
"""
import numpy as np
import pytest

from graphruntime import _C

BINARY_OPS = ["add", "sub", "mul", "div", "maximum", "minimum"]
COMPARE_OPS = ["eq", "ne", "lt", "le", "gt", "ge"]
EXACT_UNARY = {"relu": {}, "neg": {}, "abs": {}, "relu6": {}}
ULP_BOUNDS = {"exp": 2, "sigmoid": 4, "tanh": 4, "silu": 6, "hardswish": 2, "hardsigmoid": 2,
              "leaky_relu": 1, "gelu": 48}
REDUCE_OPS = ["sum", "mean", "var"]
EXTREME_OPS = ["max", "min"]
ROW_OPS = ["softmax", "log_softmax", "layer_norm", "batch_norm"]
LAYOUT_OPS = ["expand", "transpose", "split"]
TESTED_OPS = (set(BINARY_OPS) | set(COMPARE_OPS) | {"where"} | set(EXACT_UNARY) | set(ULP_BOUNDS)
              | set(REDUCE_OPS) | set(EXTREME_OPS) | set(ROW_OPS) | set(LAYOUT_OPS))

FAST_ISAS = [isa for isa in _C.cpu_features()["isas"] if isa not in ("reference", "avx512_vnni")]
SIZES = [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 100, 16384 + 5, 40000]


def run(isa, threads, op, inputs, attrs=None):
    _C.set_max_isa(isa)
    _C.set_num_threads(threads)
    attrs = attrs or {}
    return _C.run_op(op, inputs, attrs)[0], _C.kernel_name(op, inputs, attrs)


def each_fast(op, inputs, attrs=None, expect_fast=True):
    """Yields (isa, threads, result) for every fast ISA and 1/2 threads, after checking that
    the fast kernel (or, when not expect_fast, the reference) was chosen."""
    for isa in FAST_ISAS:
        for threads in (1, 2):
            got, name = run(isa, threads, op, inputs, attrs)
            if expect_fast:
                assert name.startswith("f32_") and name.endswith(isa), (op, isa, name)
            else:
                assert "reference" in name, (op, isa, name)
            yield isa, threads, got


def special_values(rng, n):
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    if n >= 8:
        x[:8] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 6.0]
    return x


BROADCASTS = [  # (shape a, shape b)
    ((5, 7), (5, 7)),
    ((3, 17), ()),
    ((), (3, 17)),
    ((4, 33), (33,)),
    ((4, 33), (4, 1)),
    ((2, 5, 3, 3), (1, 5, 1, 1)),
    ((1, 5, 1, 1), (2, 5, 3, 3)),
    ((6, 32, 28, 28), (1, 32, 1, 1)),
    ((64, 10), (64, 1)),
    ((9, 1, 16), (9, 7, 16)),
]


@pytest.mark.parametrize("op", BINARY_OPS + COMPARE_OPS)
def test_binary_same_shape_sizes_bit_exact(op):
    rng = np.random.default_rng(1)
    for n in SIZES:
        a, b = special_values(rng, n), special_values(rng, n)
        if n > 2:
            b[2] = a[2]  # a tie
        if op == "div":
            b[b == 0] = 1.5
        ref, _ = run("reference", 1, op, [a, b])
        for isa, threads, got in each_fast(op, [a, b]):
            np.testing.assert_array_equal(got, ref, err_msg=f"{op} n={n} {isa} threads={threads}")


@pytest.mark.parametrize("op", BINARY_OPS + COMPARE_OPS)
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_binary_broadcast_fast_paths_bit_exact(op, shapes):
    rng = np.random.default_rng(2)
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = rng.standard_normal(shapes[1]).astype(np.float32)
    ref, _ = run("reference", 1, op, [a, b])
    for isa, threads, got in each_fast(op, [a, b]):
        assert got.shape == ref.shape and got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref, err_msg=f"{op} {shapes} {isa} threads={threads}")


def test_binary_other_broadcasts_fall_back_to_reference():
    a = np.ones((3, 1, 4, 1), np.float32)
    b = np.ones((1, 5, 1, 6), np.float32)
    ref, _ = run("reference", 1, "add", [a, b])
    for _, _, got in each_fast("add", [a, b], expect_fast=False):
        np.testing.assert_array_equal(got, ref)


def test_binary_float64_uses_reference():
    a = np.ones((5,), np.float64)
    for _, _, got in each_fast("mul", [a, a], expect_fast=False):
        np.testing.assert_array_equal(got, a)


@pytest.mark.parametrize("shapes", [((4, 33), (4, 33), ()), ((4, 33), (), (4, 33)),
                                    ((2, 5, 3, 3), (2, 5, 3, 3), (1, 5, 1, 1)), ((), (7, 9), (7, 9)),
                                    ((17,), (17,), (17,))], ids=str)
def test_where_bit_exact(shapes):
    rng = np.random.default_rng(3)
    c = rng.random(shapes[0]) < 0.5
    x = rng.standard_normal(shapes[1]).astype(np.float32)
    y = rng.standard_normal(shapes[2]).astype(np.float32)
    ref, _ = run("reference", 1, "where", [c, x, y])
    for isa, threads, got in each_fast("where", [c, x, y]):
        np.testing.assert_array_equal(got, ref, err_msg=f"{shapes} {isa} threads={threads}")


@pytest.mark.parametrize("op", sorted(EXACT_UNARY))
def test_exact_unary_bit_exact(op):
    rng = np.random.default_rng(4)
    for n in SIZES:
        x = special_values(rng, n)
        ref, _ = run("reference", 1, op, [x])
        for isa, threads, got in each_fast(op, [x]):
            np.testing.assert_array_equal(got, ref, err_msg=f"{op} n={n} {isa} threads={threads}")


def ulp_distance(a, b):
    """|a - b| in float32 ulps (ordered integer distance); NaN == NaN is 0, NaN vs number inf."""
    ai = a.view(np.int32).astype(np.int64)
    bi = b.view(np.int32).astype(np.int64)
    ai = np.where(ai < 0, -(ai & 0x7FFFFFFF), ai)
    bi = np.where(bi < 0, -(bi & 0x7FFFFFFF), bi)
    d = np.abs(ai - bi).astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    one_nan = np.isnan(a) ^ np.isnan(b)
    return np.where(both_nan, 0.0, np.where(one_nan, np.inf, d))


def unary_inputs(rng):
    parts = [special_values(rng, 64),
             np.linspace(-110, 100, 4001, dtype=np.float32),  # exp's whole range incl. over/underflow
             np.linspace(-1, 1, 2001, dtype=np.float32),  # tanh's polynomial / exp switch at 0.625
             (rng.standard_normal(30000) * 4).astype(np.float32),
             np.array([88.7, 88.72, 88.73, -87.3, -87.4, -103.9, -104.0, 1e-30, -1e-30], np.float32)]
    return np.concatenate(parts)


@pytest.mark.parametrize("op", sorted(ULP_BOUNDS))
def test_approximate_unary_within_ulp_bound(op):
    rng = np.random.default_rng(5)
    x = unary_inputs(rng)
    attrs = {"approximate": "tanh"} if op == "gelu" else {}
    if op == "gelu":
        x = x[np.abs(x) < 15]  # beyond, both are 0 or x (checked below)
    ref, _ = run("reference", 1, op, [x], attrs)
    for isa, threads, got in each_fast(op, [x], attrs):
        ulps = ulp_distance(got, ref)
        ok = (ulps <= ULP_BOUNDS[op]) | ((np.abs(ref) < 1e-37) & (np.abs(got) < 1e-37))
        if op == "gelu":
            # The reference's 1 + tanh(u) cancels in double for u < -9 (absolute error ~1e-16);
            # there the fast kernel only has to be within that error of it.
            xd = x.astype(np.float64)
            u = np.sqrt(2 / np.pi) * (xd + 0.044715 * xd ** 3)
            ok |= (u < -9) & (np.abs(got.astype(np.float64) - ref) <= 1e-15 * np.abs(xd))
        bad = np.flatnonzero(~ok)
        assert bad.size == 0, (f"{op} {isa}: x={x[bad[:5]]} got={got[bad[:5]]} want={ref[bad[:5]]} "
                               f"ulps={ulps[bad[:5]]}")
    # Every vector-width edge size, same values as one long call.
    for n in SIZES[:12]:
        xs = x[:n].copy()
        for isa, _, got in each_fast(op, [xs], attrs):
            full, _ = run(isa, 1, op, [x], attrs)
            np.testing.assert_array_equal(got, full[:n], err_msg=f"{op} n={n} {isa}")


def test_gelu_erf_left_to_reference_and_gelu_tanh_extremes():
    x = np.array([-30.0, -15.0, 15.0, 30.0], np.float32)
    for _, _, got in each_fast("gelu", [x], expect_fast=False):
        pass
    ref, _ = run("reference", 1, "gelu", [x], {"approximate": "tanh"})
    for _, _, got in each_fast("gelu", [x], {"approximate": "tanh"}):
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-37)


REDUCE_CASES = [  # (shape, dim)
    ((5,), []),
    ((17,), [0]),
    ((64, 10), [-1]),
    ((64, 10), [0]),
    ((64, 512), [0]),
    ((3, 300), [0]),
    ((6, 7, 5, 3), [0, 2, 3]),  # batch-norm statistics
    ((4, 32, 28, 28), [0, 2, 3]),
    ((2, 3, 40000), [2]),  # several chunks per output
    ((70000,), []),
    ((5, 1, 6), [0, 1]),
    ((4, 6, 9), [1, 2]),
    ((1, 1), [0, 1]),
]


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("case", REDUCE_CASES, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_reductions_match_reference(op, case, keepdim):
    shape, dim = case
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) + 3.0).astype(np.float32)
    attrs = {"dim": dim, "keepdim": keepdim}
    if op == "var":
        attrs["correction"] = 1
    ref, _ = run("reference", 1, op, [x], attrs)
    outs = {}
    for isa, threads, got in each_fast(op, [x], attrs):
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=2 * np.finfo(np.float32).eps, atol=0,
                                   err_msg=f"{op} {case} {isa} threads={threads}")
        outs.setdefault(isa, []).append(got)
    for isa, (one, two) in outs.items():
        np.testing.assert_array_equal(one, two, err_msg=f"{op} {case} {isa}: 1 vs 2 threads")


@pytest.mark.parametrize("op", EXTREME_OPS)
@pytest.mark.parametrize("case", REDUCE_CASES, ids=str)
def test_max_min_bit_exact(op, case):
    shape, dim = case
    rng = np.random.default_rng(15)
    x = rng.integers(-4, 5, shape).astype(np.float32)  # ties
    flat = x.reshape(-1)
    flat[flat == 0] = np.where(rng.random(int((flat == 0).sum())) < 0.5, -0.0, 0.0)
    if flat.size > 40:
        flat[rng.choice(flat.size, 3, replace=False)] = np.nan
        flat[rng.choice(flat.size, 3, replace=False)] = np.inf if op == "max" else -np.inf
    for keepdim in (False, True):
        attrs = {"dim": dim, "keepdim": keepdim}
        ref, _ = run("reference", 1, op, [x], attrs)
        for isa, threads, got in each_fast(op, [x], attrs):
            np.testing.assert_array_equal(got, ref, err_msg=f"{op} {case} {isa} threads={threads}")
            np.testing.assert_array_equal(np.signbit(got), np.signbit(ref), err_msg=f"{op} {case} {isa} sign")


def test_reduction_with_a_gap_falls_back_to_reference():
    x = np.ones((3, 4, 5), np.float32)
    for _, _, got in each_fast("sum", [x], {"dim": [1]}, expect_fast=False):
        np.testing.assert_array_equal(got, np.full((3, 5), 4.0, np.float32))
    x = np.ones((3, 4, 5, 6), np.float32)
    for _, _, got in each_fast("sum", [x], {"dim": [1, 3]}, expect_fast=False):
        np.testing.assert_array_equal(got, np.full((3, 5), 24.0, np.float32))


def test_reduction_errors_still_reported():
    from graphruntime import errors
    _C.set_max_isa(FAST_ISAS[-1])
    with pytest.raises(errors.InvalidArgumentError, match="sum"):
        _C.run_op("sum", [np.ones((2, 3), np.float32)], {"dim": [5]})


SOFTMAX_SHAPES = [(1,), (7,), (3, 16), (5, 17), (4, 33), (2, 3, 100), (64, 10), (8, 1000), ()]


@pytest.mark.parametrize("shape", SOFTMAX_SHAPES, ids=str)
def test_softmax_and_log_softmax_within_bounds(shape):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    if x.ndim == 2 and x.shape[0] >= 3:
        x[1, :] = -np.inf  # an all -inf row: NaN, as the reference
        x[2, 0] = np.nan
    for dim in ([-1, x.ndim - 1] if x.ndim else [-1]):
        ref, _ = run("reference", 1, "softmax", [x], {"dim": dim})
        with np.errstate(invalid="ignore"):
            shifted = np.abs(x.astype(np.float64) - np.max(x, axis=-1, keepdims=True)) if x.ndim else 0.0
        for isa, threads, got in each_fast("softmax", [x], {"dim": dim}):
            ulps = ulp_distance(got, ref)
            ok = (ulps <= 6 + np.nan_to_num(shifted, nan=0.0, posinf=0.0)) | (
                (np.abs(ref) < 1e-37) & (np.abs(got) < 1e-37))
            assert ok.all(), (shape, isa, threads, got[~ok][:4], ref[~ok][:4])
        ref, _ = run("reference", 1, "log_softmax", [x], {"dim": dim})
        for isa, threads, got in each_fast("log_softmax", [x], {"dim": dim}):
            np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
            err = np.abs(got.astype(np.float64) - ref)
            ok = np.isnan(ref) | (err <= 2.0 ** -21 + 2.0 ** -23 * np.abs(ref))
            assert ok.all(), (shape, isa, threads, got[~ok][:4], ref[~ok][:4])


def test_softmax_over_other_dims_uses_reference():
    x = np.ones((3, 4), np.float32)
    for _, _, got in each_fast("softmax", [x], {"dim": 0}, expect_fast=False):
        np.testing.assert_allclose(got, np.full((3, 4), 1 / 3, np.float32), rtol=1e-6)


@pytest.mark.parametrize("case", [((4, 33), [33], True), ((2, 3, 16), [3, 16], True), ((5, 7), [7], False),
                                  ((1, 1), [1], True), ((6, 768), [768], True), ((3, 17), [17], "weight")],
                         ids=str)
def test_layer_norm_within_one_ulp(case):
    shape, normalized, affine = case
    rng = np.random.default_rng(9)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    w = rng.standard_normal(normalized).astype(np.float32)
    b = rng.standard_normal(normalized).astype(np.float32)
    inputs = [x, w, b] if affine is True else ([x, w] if affine == "weight" else [x])
    attrs = {"normalized_shape": normalized, "eps": 1e-5}
    ref, _ = run("reference", 1, "layer_norm", inputs, attrs)
    for isa, threads, got in each_fast("layer_norm", inputs, attrs):
        np.testing.assert_allclose(got, ref, rtol=2 * np.finfo(np.float32).eps, atol=0,
                                   err_msg=f"{case} {isa} threads={threads}")


@pytest.mark.parametrize("shape", [(2, 5), (3, 4, 7), (2, 3, 5, 5), (4, 32, 28, 28), (1, 17, 3, 1)], ids=str)
def test_batch_norm_inference_bit_exact(shape):
    rng = np.random.default_rng(10)
    C = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    mean, w, b = (rng.standard_normal(C).astype(np.float32) for _ in range(3))
    var = (rng.random(C) + 0.1).astype(np.float32)
    for inputs in ([x, mean, var, w, b], [x, mean, var, None, b], [x, mean, var]):
        ref, _ = run("reference", 1, "batch_norm", inputs, {"eps": 1e-3})
        for isa, threads, got in each_fast("batch_norm", inputs, {"eps": 1e-3}):
            np.testing.assert_array_equal(got, ref, err_msg=f"{shape} {isa} threads={threads}")


@pytest.mark.parametrize("case", [((64, 32, 1, 1), [64, 32, 28, 28]), ((1,), [5, 17]), ((33,), [4, -1]),
                                  ((4, 1), [4, 33]), ((3, 1, 5), [3, 4, 5]), ((), [7]), ((2, 3), [2, 3])],
                         ids=str)
def test_expand_bit_exact(case):
    shape, target = case
    x = np.random.default_rng(11).standard_normal(shape).astype(np.float32)
    ref, _ = run("reference", 1, "expand", [x], {"shape": target})
    for isa, threads, got in each_fast("expand", [x], {"shape": target}):
        np.testing.assert_array_equal(got, ref, err_msg=f"{case} {isa} threads={threads}")


def test_expand_needing_four_dims_uses_reference():
    x = np.random.default_rng(14).standard_normal((3, 1, 5)).astype(np.float32)
    for _, _, got in each_fast("expand", [x], {"shape": [2, 3, 4, 5]}, expect_fast=False):
        np.testing.assert_array_equal(got, np.broadcast_to(x, (2, 3, 4, 5)))


@pytest.mark.parametrize("case", [((5, 7), [1, 0]), ((64, 33), [1, 0]), ((96, 70), [-1, 0]), ((2, 40, 33), [0, 2, 1]),
                                  ((2, 3, 28, 28), [0, 2, 3, 1]), ((3, 4, 5), [2, 0, 1]), ((1, 9, 1, 8), [3, 2, 1, 0]),
                                  # the innermost dims stay innermost: whole rows are copied
                                  ((2, 3, 4), [1, 0, 2]), ((1, 7, 3, 5), [0, 2, 1, 3]), ((2, 5, 3, 17), [2, 0, 1, 3]),
                                  ((3, 1, 4, 2, 6), [3, 2, 0, 1, 4]), ((2, 3, 4, 5), [2, 1, 0, 3]),
                                  ((40, 50, 3, 2), [1, 0, 2, 3]),  # rows of 6: several chunks per thread
                                  ((4, 6), [0, 1]), ((1, 1), [1, 0])],
                         ids=str)
def test_transpose_bit_exact(case):
    shape, perm = case
    x = np.random.default_rng(12).standard_normal(shape).astype(np.float32)
    ref, _ = run("reference", 1, "transpose", [x], {"perm": perm})
    np.testing.assert_array_equal(ref, np.transpose(x, perm))
    for isa, threads, got in each_fast("transpose", [x], {"perm": perm}):
        np.testing.assert_array_equal(got, ref, err_msg=f"{case} {isa} threads={threads}")


@pytest.mark.parametrize("case", [((5, 7), [2, 5], 1), ((128, 768), [256, 256, 256], -1), ((3, 40, 7), [10, 0, 30], 1),
                                  ((6, 4), [1, 5], 0), ((2, 3, 300), [1, 299], 2), ((4000, 3), [1, 2], 1)], ids=str)
def test_split_bit_exact(case):
    shape, sizes, dim = case
    x = np.random.default_rng(15).standard_normal(shape).astype(np.float32)
    attrs = {"sizes": sizes, "dim": dim}
    want = np.split(x, np.cumsum(sizes)[:-1], axis=dim)
    for isa in FAST_ISAS:
        for threads in (1, 2):
            _C.set_max_isa(isa)
            _C.set_num_threads(threads)
            assert _C.kernel_name("split", [x], attrs).endswith(isa)
            got = _C.run_op("split", [x], attrs, num_outputs=len(sizes))
            assert len(got) == len(sizes)
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w, err_msg=f"{case} {isa} threads={threads}")


def test_transpose_other_permutations_use_reference():
    # neither a batched 2-D transpose nor one that keeps the innermost dim innermost
    x = np.random.default_rng(13).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for _, _, got in each_fast("transpose", [x], {"perm": [2, 0, 3, 1]}, expect_fast=False):
        np.testing.assert_array_equal(got, np.transpose(x, [2, 0, 3, 1]))


def test_row_copy_transpose_whose_dynamic_innermost_dim_is_1():
    """A permutation kept innermost at creation (the unknown last dim) whose last dim is 1 at run
    time: the runs found per run are neither a row copy nor a 2-D transpose, and must still be
    copied right."""
    from graphruntime import Predictor
    from graphruntime.netdef import NetBuilder

    b = NetBuilder("rows")
    x = b.input("x", "float32", [2, 3, 4, 5, -1])
    b.output(b.op("transpose", [x], {"perm": [1, 3, 0, 2, 4]}), "y")
    net = b.build()
    for isa in FAST_ISAS:
        _C.set_max_isa(isa)
        predictor = Predictor(net, num_threads=2)
        assert any(name.endswith(f"f32_transpose_rows_{isa}") for name in predictor.kernel_names())
        for last in (1, 3):
            value = np.random.default_rng(last).standard_normal((2, 3, 4, 5, last)).astype(np.float32)
            np.testing.assert_array_equal(predictor.run({"x": value})["y"],
                                          np.transpose(value, [1, 3, 0, 2, 4]), err_msg=f"{isa} {last}")


def test_dynamic_batch_graph_uses_fast_kernels_planned_per_run():
    """In graph mode the batch dim is unknown (-1) when kernels are created: the element-wise,
    reduction and layout kernels plan per run and must still match the reference, for any
    batch size, including a broadcast that needs more than three dims."""
    from graphruntime import Predictor
    from graphruntime.netdef import NetBuilder

    rng = np.random.default_rng(16)
    b = NetBuilder("dynamic")
    x = b.input("x", "float32", [-1, 4, 5, 6])
    bias = b.initializer("bias", rng.standard_normal((1, 4, 1, 1)).astype(np.float32))
    odd = b.initializer("odd", rng.standard_normal((4, 1, 6)).astype(np.float32))
    zero = b.initializer("zero", np.zeros((), np.float32))
    h = b.op("add", [x, bias])
    h = b.op("mul", [h, x])
    h = b.op("sub", [h, odd])  # [-1, 4, 5, 6] - [4, 1, 6]: four dims after coalescing
    mask = b.op("gt", [h, zero])
    h = b.op("where", [mask, h, zero])
    outputs = {
        "stats": b.op("sum", [h], {"dim": [0, 2, 3]}),
        "var": b.op("var", [h], {"dim": [0, 2, 3], "correction": 1}),
        "rowmax": b.op("max", [h], {"dim": [-1]}),
        "nhwc": b.op("transpose", [h], {"perm": [0, 2, 3, 1]}),
        "heads": b.op("transpose", [h], {"perm": [0, 2, 1, 3]}),  # attention's [B, S, H, D] -> [B, H, S, D]
        "wide": b.op("expand", [b.op("mean", [h], {"dim": [2, 3], "keepdim": True})], {"shape": [-1, 4, 5, 6]}),
    }
    for name, value in outputs.items():
        b.output(value, name)
    net = b.build()
    results = {}
    for isa in ["reference"] + FAST_ISAS:
        _C.set_max_isa(isa)
        predictor = Predictor(net, num_threads=2)
        if isa != "reference":
            names = [entry.split(": ")[-1] for entry in predictor.kernel_names()]
            for op in ("add", "mul", "sub", "gt", "where", "sum", "var", "max", "transpose", "expand", "mean"):
                assert f"f32_{op}_{isa}" in names or f"f32_{op}_2d_{isa}" in names, (op, names)
            assert f"f32_transpose_rows_{isa}" in names, names
        for batch in (1, 3):
            feed = {"x": np.random.default_rng(batch).standard_normal((batch, 4, 5, 6)).astype(np.float32)}
            results[isa, batch] = predictor.run(feed)
    for isa in FAST_ISAS:
        for batch in (1, 3):
            for name in outputs:
                ref, got = results["reference", batch][name], results[isa, batch][name]
                if name in ("stats", "var", "wide"):
                    np.testing.assert_allclose(got, ref, rtol=2 * np.finfo(np.float32).eps, atol=0,
                                               err_msg=f"{name} {isa} batch={batch}")
                else:
                    np.testing.assert_array_equal(got, ref, err_msg=f"{name} {isa} batch={batch}")
