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
"""
import numpy as np
import pytest

from graphruntime import _C

TESTED_OPS = {"conv2d_grad_input", "conv2d_grad_weight"}

EPS32 = np.finfo(np.float32).eps
FAST_ISAS = [isa for isa in _C.cpu_features()["isas"] if isa not in ("reference", "avx512_vnni")]


@pytest.fixture(autouse=True)
def _restore_isa_and_threads():
    isa, threads = _C.get_max_isa(), _C.get_num_threads()
    yield
    _C.set_max_isa(isa)
    _C.set_num_threads(threads)


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
