"""Fast fp32 backward kernels (conv2d_grad_input / conv2d_grad_weight on the packed GEMM, pooling
gradients) against the reference kernels.

Each case runs the op with the ISA capped at 'reference' (the scalar oracle, which accumulates
in float64) and at every other ISA level this machine has, at 1 and 2 threads, on seeded random
shapes that include edge sizes (1 channel, odd channels, sizes around the GEMM tiles and the
vector width, strides, padding, dilation, groups, 1x1).

Tolerance from the summation order: a fast kernel sums the same products in float32 in another
order, so |fast - ref| <= c * depth * eps32 * M elementwise, where depth is the number of
products summed into an output and M = sum |a_k b_k| is obtained by running the reference op on
|grad_output| and |weight| (or |input|): the standard bound for a float32 dot product. c = 2.
The chosen kernel must be the fast one (its name is checked), and 1 and 2 threads must give the
same bits (the kernels' split does not depend on the thread count).

max_pool2d and max_pool2d_grad (a portable kernel at every ISA level; the AVX-512 forward kernel
for column strides 1 and 2 without dilation) select values and add gradients in the reference's
order, so they must match it bit for bit, including ties (first maximum wins), NaN (propagates),
-inf, padding, dilation and ceil_mode windows. The average
pools and their gradients (portable kernels) do the reference's double arithmetic per element in
the same order, so they too must match bit for bit.
"""
import numpy as np
import pytest

from graphruntime import _C

TESTED_OPS = {"conv2d_grad_input", "conv2d_grad_weight", "max_pool2d", "max_pool2d_grad", "avg_pool2d",
              "avg_pool2d_grad", "adaptive_avg_pool2d", "adaptive_avg_pool2d_grad"}

EPS32 = np.finfo(np.float32).eps
FAST_ISAS = [isa for isa in _C.cpu_features()["isas"] if isa not in ("reference", "avx512_vnni")]


def run(isa, threads, op, inputs, attrs):
    _C.set_max_isa(isa)
    _C.set_num_threads(threads)
    return _C.run_op(op, inputs, attrs)[0], _C.kernel_name(op, inputs, attrs)


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# (N, C, H, W, O, kh, kw, stride, padding, dilation, groups)
CONV_CASES = [
    (2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1),
    (1, 1, 5, 5, 1, 3, 3, 1, 0, 1, 1),
    (3, 16, 8, 8, 32, 3, 3, 1, 1, 1, 1),  # the small CNN's middle layer, smaller
    (2, 6, 9, 11, 4, 3, 3, 2, 1, 1, 2),  # groups, stride 2, odd width
    (2, 8, 6, 6, 8, 1, 1, 1, 0, 1, 1),  # 1x1: GEMM straight into grad_input
    (2, 8, 7, 7, 15, 1, 1, 2, 0, 1, 1),  # 1x1 stride 2 (col2im)
    (1, 4, 10, 10, 7, 5, 5, 1, 2, 2, 1),  # dilation
    (2, 17, 5, 33, 13, 3, 1, 1, (1, 0), 1, 1),  # non-square kernel, width past a vector
    (4, 3, 12, 12, 6, 3, 3, 3, 0, 1, 3),  # depthwise-like groups
    (9, 2, 20, 20, 3, 3, 3, 1, 1, 1, 1),  # several weight-gradient chunks (N * P > 4096)
    # Stride-1 width-3 kernels take the direct weight gradient: rows of one vector plus one
    # lane, exactly two vectors, a single column, padding 0..2 and groups.
    (3, 5, 6, 17, 9, 2, 3, 1, (0, 1), 1, 1),
    (2, 3, 4, 32, 5, 3, 3, 1, (1, 0), 1, 1),
    (2, 4, 5, 16, 10, 3, 3, 1, (1, 2), 1, 2),
    (1, 3, 4, 1, 2, 1, 3, 1, (0, 1), 1, 1),
    (3, 64, 64, 64, 2, 3, 3, 1, 1, 1, 1),  # images larger than the direct kernel's chunk
    # grad_input of 3x3 stride-1 layers with >= 32 input and >= 16 output channels runs as a
    # Winograd convolution of dY (same bound: its error stays far inside it, as for conv2d).
    (2, 32, 9, 11, 16, 3, 3, 1, 1, 1, 1),
    (3, 40, 14, 13, 24, 3, 3, 1, (0, 2), 1, 1),
    (12, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1),  # enough tiles for Winograd's tile blocks
]


def conv_case(case, seed):
    N, C, H, W, O, kh, kw, s, p, d, g = case
    pad = p if isinstance(p, tuple) else (p, p)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C // g, kh, kw)).astype(np.float32)
    OH, OW = out_size(H, kh, s, pad[0], d), out_size(W, kw, s, pad[1], d)
    gy = rng.standard_normal((N, O, OH, OW)).astype(np.float32)
    attrs = dict(stride=[s, s], padding=list(pad), dilation=[d, d], groups=g)
    return x, w, gy, attrs


def check(op, inputs, attrs, depth, context):
    ref, ref_name = run("reference", 1, op, inputs, attrs)
    assert "reference" in ref_name
    magnitude, _ = run("reference", 1, op, [np.abs(a) for a in inputs], attrs)
    bound = 2 * depth * EPS32 * magnitude + 1e-30
    for isa in FAST_ISAS:
        one, name = run(isa, 1, op, inputs, attrs)
        assert name.startswith(f"f32_{op}_") and name.endswith(
            {"portable": "portable", "avx2": "avx2", "avx512": "avx512"}[isa]), (isa, name)
        two, _ = run(isa, 2, op, inputs, attrs)
        assert one.shape == ref.shape and one.dtype == np.float32
        err = np.abs(one.astype(np.float64) - ref)
        worst = np.unravel_index(np.argmax(err - bound), err.shape)
        assert np.all(err <= bound), (
            f"{context} {isa} {name}: at {worst} got {one[worst]} want {ref[worst]} bound {bound[worst]}")
        np.testing.assert_array_equal(one, two, err_msg=f"{context} {isa}: 1 vs 2 threads")


@pytest.mark.parametrize("index", range(len(CONV_CASES)))
def test_conv2d_grad_input_matches_reference(index):
    case = CONV_CASES[index]
    x, w, gy, attrs = conv_case(case, 100 + index)
    O, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    depth = (O // attrs["groups"]) * kh * kw
    check("conv2d_grad_input", [gy, w], dict(attrs, input_shape=list(x.shape)), depth, case)


@pytest.mark.parametrize("index", range(len(CONV_CASES)))
def test_conv2d_grad_weight_matches_reference(index):
    case = CONV_CASES[index]
    x, w, gy, attrs = conv_case(case, 200 + index)
    depth = gy.shape[0] * gy.shape[2] * gy.shape[3]
    check("conv2d_grad_weight", [gy, x], dict(attrs, weight_shape=list(w.shape)), depth, case)


def test_conv2d_grad_weight_keeps_non_finite_inputs_out_of_taps_they_do_not_reach():
    """An inf in the last input column reaches the kx = 1, 2 taps (pad 1) but not kx = 0; the
    direct kernel's padded rows must not turn 0 * inf into NaN there."""
    x, w, gy, attrs = conv_case((2, 3, 5, 19, 4, 3, 3, 1, 1, 1, 1), 5)
    x[:, :, :, -1] = np.inf
    attrs = dict(attrs, weight_shape=list(w.shape))
    ref, _ = run("reference", 1, "conv2d_grad_weight", [gy, x], attrs)
    assert np.isfinite(ref[..., 0]).all() and not np.isfinite(ref[..., 2]).any()
    for isa in FAST_ISAS:
        got, name = run(isa, 1, "conv2d_grad_weight", [gy, x], attrs)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{isa} {name}")
        np.testing.assert_array_equal(np.isinf(got), np.isinf(ref), err_msg=f"{isa} {name}")
        finite = np.isfinite(ref)
        np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-4, atol=1e-3)


def test_winograd_input_gradient_is_chosen_for_wide_3x3_stride_1_layers():
    attrs = dict(stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1)
    w = np.zeros((16, 32, 3, 3), np.float32)
    for isa in FAST_ISAS:
        _C.set_max_isa(isa)
        name = _C.kernel_name("conv2d_grad_input", [np.zeros((2, 16, 6, 6), np.float32), w],
                              dict(attrs, input_shape=[2, 32, 6, 6]))
        assert ("winograd" in name) == (isa in ("avx2", "avx512")), (isa, name)
        # 8 input channels: a Winograd GEMM tile would stay mostly empty, col2im it is.
        narrow = _C.kernel_name("conv2d_grad_input", [np.zeros((2, 32, 6, 6), np.float32),
                                                      np.zeros((32, 8, 3, 3), np.float32)],
                                dict(attrs, input_shape=[2, 8, 6, 6]))
        assert "winograd" not in narrow, (isa, narrow)


def test_direct_weight_gradient_is_chosen_for_stride_1_width_3():
    gy, x = np.zeros((2, 8, 6, 6), np.float32), np.zeros((2, 4, 6, 6), np.float32)
    attrs = dict(stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, weight_shape=[8, 4, 3, 3])
    for isa in FAST_ISAS:
        _C.set_max_isa(isa)
        name = _C.kernel_name("conv2d_grad_weight", [gy, x], attrs)
        assert ("direct" in name) == (isa in ("avx2", "avx512")), (isa, name)


def test_random_conv_grad_shapes():
    """Seeded random geometries, both gradients."""
    rng = np.random.default_rng(7)
    for trial in range(12):
        g = int(rng.choice([1, 1, 2, 3]))
        C = g * int(rng.integers(1, 6))
        O = g * int(rng.integers(1, 6))
        kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        s, d = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        p = int(rng.integers(0, 2))
        H = d * (kh - 1) + 1 + int(rng.integers(0, 9))
        W = d * (kw - 1) + 1 + int(rng.integers(0, 19))
        N = int(rng.integers(1, 4))
        case = (N, C, H, W, O, kh, kw, s, p, d, g)
        x, w, gy, attrs = conv_case(case, 300 + trial)
        check("conv2d_grad_input", [gy, w], dict(attrs, input_shape=list(x.shape)),
              (O // g) * kh * kw, case)
        check("conv2d_grad_weight", [gy, x], dict(attrs, weight_shape=list(w.shape)),
              N * gy.shape[2] * gy.shape[3], case)


def test_conv_grad_unbatched_input_falls_back_to_reference():
    """A [C, H, W] input_shape is left to the reference kernel (the fast one wants 4-D)."""
    w = np.ones((2, 3, 3, 3), np.float32)
    gy = np.ones((2, 4, 4), np.float32)
    _C.set_max_isa(FAST_ISAS[-1])
    attrs = dict(stride=[1, 1], padding=[1, 1], dilation=[1, 1], groups=1, input_shape=[3, 4, 4])
    assert "reference" in _C.kernel_name("conv2d_grad_input", [gy, w], attrs)
    got = _C.run_op("conv2d_grad_input", [gy, w], attrs)[0]
    assert got.shape == (3, 4, 4)


# (shape, kernel, stride, padding, dilation, ceil_mode)
POOL_CASES = [
    ((2, 3, 8, 8), 2, [], 0, 1, False),  # the small CNN's pool
    ((2, 3, 9, 7), 2, [], 0, 1, False),  # odd sizes: last row / column in no window
    ((1, 2, 9, 9), 2, [], 0, 1, True),  # ceil_mode: clipped last windows
    ((2, 4, 11, 10), 3, 2, 1, 1, False),  # overlapping windows, padding
    ((1, 3, 12, 13), 3, 1, 1, 2, False),  # dilation, stride 1
    ((3, 7, 7), 3, 2, 0, 1, True),  # unbatched
    ((2, 5, 16, 17), [2, 3], [2, 1], [1, 1], 1, False),  # non-square
    ((64, 4, 28, 28), 2, [], 0, 1, False),
    ((1, 3, 10, 10), 3, 3, 1, 1, True),  # ceil_mode with stride = kernel: clipped edge windows
    ((2, 3, 23, 40), 3, 2, 1, 1, False),  # ResNet's stem pool, wide rows
    ((1, 2, 9, 12), [3, 5], [2, 3], [1, 2], [2, 1], True),  # everything non-square
    # Rows around the AVX-512 kernel's 16-output vectors, strides 1 and 2, one-column inputs.
    ((1, 3, 6, 33), 3, 2, 1, 1, True),
    ((2, 2, 5, 31), [3, 2], [2, 1], [1, 1], 1, False),
    ((1, 2, 4, 17), [2, 5], [1, 2], [0, 2], 1, True),
    ((1, 1, 7, 1), 3, [1, 2], 1, 1, False),
    ((1, 2, 3, 64), [1, 4], [3, 2], [0, 2], 1, True),
]


def max_pool_kernel(isa, stride, dilation):
    """The forward kernel the registry should choose."""
    stride = stride if isinstance(stride, list) else [stride, stride]
    dilation = dilation if isinstance(dilation, list) else [dilation, dilation]
    fast = _C.cpu_features()["avx512f"] and isa == "avx512" and dilation == [1, 1] and stride[1] in (1, 2)
    return "f32_max_pool2d_avx512" if fast else "f32_max_pool2d_portable"


def pool_input(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, shape).astype(np.float32)  # many ties
    flat = x.reshape(-1)
    idx = rng.choice(flat.size, size=max(1, flat.size // 50), replace=False)
    flat[idx[0::3]] = np.nan
    flat[idx[1::3]] = -np.inf
    flat[idx[2::3]] = -0.0
    return x


@pytest.mark.parametrize("index", range(len(POOL_CASES)))
def test_max_pool2d_and_grad_bit_exact(index):
    shape, k, s, p, d, ceil = POOL_CASES[index]
    pair = lambda v: v if isinstance(v, list) else [v, v]
    attrs = dict(kernel_size=pair(k), stride=pair(s) if s != [] else [], padding=pair(p),
                 dilation=pair(d), ceil_mode=ceil)
    x = pool_input(shape, 400 + index)
    ref, name = run("reference", 1, "max_pool2d", [x], attrs)
    assert "reference" in name
    gy = np.random.default_rng(index).standard_normal(ref.shape).astype(np.float32)
    gy.reshape(-1)[::7] = -0.0
    ref_grad, _ = run("reference", 1, "max_pool2d_grad", [gy, x], attrs)
    for isa in FAST_ISAS:
        for threads in (1, 2):
            got, name = run(isa, threads, "max_pool2d", [x], attrs)
            assert name == max_pool_kernel(isa, s if s != [] else k, d), name
            np.testing.assert_array_equal(got, ref, err_msg=f"{shape} {isa} threads={threads}")
            np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))  # which zero of a tie
            grad, name = run(isa, threads, "max_pool2d_grad", [gy, x], attrs)
            assert name == "f32_max_pool2d_grad_portable", name
            np.testing.assert_array_equal(grad, ref_grad, err_msg=f"grad {shape} {isa} threads={threads}")
            np.testing.assert_array_equal(np.signbit(grad), np.signbit(ref_grad))


def check_bit_exact(op, inputs, attrs, name):
    ref, ref_name = run("reference", 1, op, inputs, attrs)
    assert "reference" in ref_name
    for isa in FAST_ISAS:
        for threads in (1, 2):
            got, got_name = run(isa, threads, op, inputs, attrs)
            assert got_name == name, got_name
            np.testing.assert_array_equal(got, ref, err_msg=f"{op} {attrs} {isa} threads={threads}")
            np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))


# (shape, kernel, stride, padding, ceil_mode, count_include_pad)
AVG_CASES = [
    ((2, 3, 8, 8), 2, [], 0, False, True),
    ((2, 3, 9, 7), 3, 2, 1, False, True),
    ((2, 3, 9, 7), 3, 2, 1, False, False),
    ((1, 2, 10, 10), 3, 2, 1, True, True),  # ceil_mode: a clipped last window
    ((3, 5, 5), [2, 3], [1, 2], [1, 1], True, False),  # unbatched, non-square
    ((64, 4, 14, 14), 2, [], 0, False, True),
]


@pytest.mark.parametrize("index", range(len(AVG_CASES)))
def test_avg_pool2d_and_grad_bit_exact(index):
    shape, k, s, p, ceil, include = AVG_CASES[index]
    pair = lambda v: v if isinstance(v, list) else [v, v]
    attrs = dict(kernel_size=pair(k), stride=pair(s) if s != [] else [], padding=pair(p), ceil_mode=ceil,
                 count_include_pad=include)
    rng = np.random.default_rng(500 + index)
    x = rng.standard_normal(shape).astype(np.float32)
    check_bit_exact("avg_pool2d", [x], attrs, "f32_avg_pool2d_portable")
    y, _ = run("reference", 1, "avg_pool2d", [x], attrs)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gy.reshape(-1)[::5] = -0.0
    check_bit_exact("avg_pool2d_grad", [gy], dict(attrs, input_shape=list(shape)),
                    "f32_avg_pool2d_grad_portable")


@pytest.mark.parametrize("case", [((2, 3, 7, 7), [1, 1]), ((64, 64, 14, 14), [1, 1]), ((2, 3, 10, 7), [3, 4]),
                                  ((1, 2, 5, 5), [5, 5]), ((4, 9, 11), [2, 3]), ((2, 2, 3, 3), [6, 5])],
                         ids=str)
def test_adaptive_avg_pool2d_and_grad_bit_exact(case):
    shape, size = case
    rng = np.random.default_rng(600)
    x = rng.standard_normal(shape).astype(np.float32)
    check_bit_exact("adaptive_avg_pool2d", [x], {"output_size": size}, "f32_adaptive_avg_pool2d_portable")
    gy = rng.standard_normal(shape[:-2] + tuple(size)).astype(np.float32)
    gy.reshape(-1)[::3] = -0.0
    check_bit_exact("adaptive_avg_pool2d_grad", [gy], {"input_shape": list(shape)},
                    "f32_adaptive_avg_pool2d_grad_portable")
