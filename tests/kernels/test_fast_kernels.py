"""Fast fp32 kernels (packed GEMM, conv2d algorithms) against the reference kernels.

Every case runs the op once with the ISA capped at 'reference' (the scalar oracle) and once per
ISA level this machine has ('portable', 'avx2', 'avx512', ...), on seeded random shapes that
include the edge sizes of the microkernel tiles (1, tile - 1, tile, tile + 1, odd channels,
widths that are not a multiple of the vector length, K not a multiple of the K block).

Tolerances follow the summation order: the reference accumulates in float64, a fast kernel in
float32 in a different order, so |fast - ref| <= c * K * eps32 * sum_k |a_k b_k| (the standard
bound for a float32 dot product of length K). We check that bound elementwise with c = 2.
Winograd F(4x4, 3x3) also rounds in its transforms, whose coefficients reach 8 (A^T) and 5 (B^T),
so for it the same bound is a measured rather than proven envelope: on these random cases its
error stays below a tenth of it, and a broken transform misses it by orders of magnitude.

Weights packed at load time (constant inputs, `_C.PreparedOp`) must give the same bits as the
same kernel packing per call (`_C.run_op`): packing moves data, it does not change arithmetic.
"""
import numpy as np
import pytest

from graphruntime import _C, errors
from oracle import assert_close

TESTED_OPS = {"linear", "matmul", "conv2d", "add", "sub", "mul", "div", "maximum", "minimum",
              "relu", "relu6", "batch_norm"}

EPS32 = np.finfo(np.float32).eps


def _registered(op):
    try:
        _C.op_schema(op)
        return True
    except errors.UnsupportedError:
        return False


pytestmark = pytest.mark.skipif(
    not all(_registered(op) for op in TESTED_OPS),
    reason="some of the ops these kernels attach to are not in this build",
)

# The fast ISAs this machine runs, up to the EMBER_ISA cap.
_ISAS = _C.cpu_features()["isas"]
FAST_ISAS = [isa for isa in _ISAS[: _ISAS.index(_C.cpu_features()["max_isa"]) + 1] if isa != "reference"]


def run_with_isa(isa, op, inputs, attrs):
    _C.set_max_isa(isa)
    return _C.run_op(op, inputs, attrs)[0], _C.kernel_name(op, inputs, attrs)


def check_against_reference(op, inputs, attrs, magnitude, depth, context):
    """Runs `op` under the reference and under every fast ISA; `magnitude` is sum |a_k b_k|
    per output (same shape as the output), `depth` the number of products summed."""
    ref, ref_name = run_with_isa("reference", op, inputs, attrs)
    assert "reference" in ref_name
    tol = 2.0 * (depth + 2) * EPS32 * magnitude + 1e-6
    for isa in FAST_ISAS:
        got, name = run_with_isa(isa, op, inputs, attrs)
        assert got.shape == ref.shape and got.dtype == ref.dtype, (context, isa, name)
        bad = np.argwhere(~(np.abs(got - ref) <= tol))
        assert bad.size == 0, (
            f"{context} isa={isa} kernel={name}: {len(bad)} elements off; first at "
            f"{tuple(bad[0])}: got {got[tuple(bad[0])]}, reference {ref[tuple(bad[0])]}, "
            f"tolerance {tol[tuple(bad[0])]}")
    return ref


def tile_sizes():
    """Microkernel tiles (mr, nr) per ISA, taken from the kernel names (sgemm_<mr>x<nr>_<isa>)."""
    sizes = set()
    for isa in FAST_ISAS:
        try:
            name = _C.SgemmPackedB(np.zeros((1, 1), np.float32), isa=isa).kernel_name
        except errors.UnsupportedError:
            continue
        mr, nr = name.split("_")[1].split("x")
        sizes.add((int(mr), int(nr)))
    return sorted(sizes)


def edge_values(tile):
    return sorted({1, tile - 1, tile, tile + 1, 2 * tile + 3} - {0})


# ----------------------------------------------------------------------------- matmul / linear

def gemm_shapes():
    shapes = set()
    for mr, nr in tile_sizes():
        for m in edge_values(mr):
            for n in edge_values(nr):
                shapes.add((m, n, 7))
        shapes.add((mr + 1, nr + 1, 257))   # K not a multiple of the K block (256)
        shapes.add((2 * mr + 1, 3 * nr - 1, 513))
    shapes.add((1, 1000, 512))
    shapes.add((170, 40, 33))               # more rows than one M block
    # One M block, B packed 256 columns at a time: several groups, a partial last panel, and
    # (at 1 thread) a second N block of 76 columns.
    shapes.add((40, 600, 300))
    shapes.add((64, 1100, 40))
    # At 2 threads: four column blocks, each thread's two share their packed A over 3 K blocks.
    shapes.add((128, 1100, 600))
    return sorted(shapes)


@pytest.mark.parametrize("m,n,k", gemm_shapes())
def test_matmul_matches_reference(m, n, k):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    mag = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
    check_against_reference("matmul", [a, b], {}, mag, k, f"matmul {m}x{n}x{k}")


@pytest.mark.parametrize("a_shape,b_shape", [
    ((5,), (5, 3)), ((4, 5), (5,)), ((7,), (7,)), ((2, 3, 4, 5), (5, 6)),
    ((2, 1, 3, 4), (3, 4, 2)), ((3, 4), (2, 4, 33)), ((2, 3, 0), (0, 4)),
])
def test_matmul_batched_and_vector_forms(a_shape, b_shape):
    rng = np.random.default_rng(len(a_shape) * 10 + len(b_shape))
    a = rng.uniform(-1, 1, a_shape).astype(np.float32)
    b = rng.uniform(-1, 1, b_shape).astype(np.float32)
    mag = np.abs(np.matmul(np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64))))
    ref = check_against_reference("matmul", [a, b], {}, mag, a_shape[-1], f"matmul {a_shape} @ {b_shape}")
    assert_close(ref, np.matmul(a, b), rtol=1e-5, atol=1e-5, context="reference vs numpy")


@pytest.mark.parametrize("activation", ["none", "relu", "relu6"])
@pytest.mark.parametrize("batch,in_f,out_f", [((1,), 512, 1000), ((3, 5), 17, 33), ((13,), 64, 31),
                                              ((2,), 300, 16)])
def test_linear_matches_reference(batch, in_f, out_f, activation):
    rng = np.random.default_rng(in_f + out_f)
    x = rng.uniform(-1, 1, batch + (in_f,)).astype(np.float32)
    w = rng.uniform(-1, 1, (out_f, in_f)).astype(np.float32)
    b = rng.uniform(-1, 1, out_f).astype(np.float32) * 3
    mag = np.abs(x.astype(np.float64)) @ np.abs(w.T.astype(np.float64)) + np.abs(b)
    for bias in (b, None):
        check_against_reference("linear", [x, w, bias], {"activation": activation}, mag, in_f,
                                f"linear {batch}x{in_f}->{out_f} {activation} bias={bias is not None}")


def test_linear_keeps_nan_through_relu():
    x = np.array([[np.nan, 1.0]], np.float32)
    w = np.ones((3, 2), np.float32)
    for isa in FAST_ISAS:
        got, _ = run_with_isa(isa, "linear", [x, w, None], {"activation": "relu"})
        assert np.isnan(got).all(), isa


# ----------------------------------------------------------------------------- conv2d

def conv_magnitude(x, w, attrs):
    """sum |x w| per output, through the reference conv on absolute values (float64 inside)."""
    _C.set_max_isa("reference")
    return _C.run_op("conv2d", [np.abs(x), np.abs(w), None], {k: v for k, v in attrs.items() if k != "activation"})[0].astype(np.float64)


CONV_CASES = [
    # (N, C, H, W), (O, C/g, kh, kw), attrs
    ((1, 3, 17, 19), (8, 3, 3, 3), dict(padding=[1, 1])),
    ((2, 5, 9, 8), (7, 5, 1, 1), {}),                                   # 1x1, odd channels
    ((1, 16, 15, 33), (29, 16, 1, 1), dict(activation="relu")),          # 1x1, > 2 tiles of M
    ((1, 3, 30, 30), (16, 3, 7, 7), dict(stride=[2, 2], padding=[3, 3])),
    # stride-2 im2col runs of up to 32 pixels (two AVX-512 vectors, the padded edges masked):
    # 35 and 29 output columns, odd input widths
    ((1, 3, 70, 69), (8, 3, 7, 7), dict(stride=[2, 2], padding=[3, 3])),
    ((1, 5, 57, 58), (6, 5, 3, 3), dict(stride=[2, 2], padding=[1, 1], activation="relu")),
    ((1, 4, 12, 12), (6, 2, 3, 3), dict(groups=2, padding=[2, 1], dilation=[2, 1], stride=[2, 3])),
    ((1, 8, 10, 10), (20, 8, 1, 1), dict(stride=[2, 2])),                # strided 1x1
    ((1, 64, 9, 9), (200, 64, 3, 3), dict(padding=[1, 1], activation="relu6")),  # M > one block
    ((7, 5, 8), (5, 7, 3, 2), dict(padding=[0, 1])),                     # unbatched [C, H, W]
] + [
    # depthwise: 3x3 / 5x5, stride 1 / 2, widths around the vector length, odd channels
    ((1, c, h, w), (c, 1, k, k), dict(groups=c, stride=[s, s], padding=[k // 2, k // 2], activation=act))
    for (c, h, w, k, s, act) in [
        (3, 7, 7, 3, 1, "none"), (5, 17, 16, 3, 1, "relu6"), (6, 11, 13, 5, 2, "relu"),
        (4, 33, 31, 3, 2, "none"), (2, 9, 15, 5, 1, "relu6"), (1, 1, 1, 3, 1, "none"),
        (7, 20, 17, 3, 2, "relu"),
        # 3x3 stride 1 (the AVX-512 kernel without a padded copy): widths around one and two
        # vectors of 16 and heights around its block of 4 rows
        (3, 5, 33, 3, 1, "relu6"), (2, 4, 32, 3, 1, "none"), (4, 6, 17, 3, 1, "relu"),
        (3, 9, 1, 3, 1, "none"), (2, 2, 48, 3, 1, "relu6"), (3, 3, 15, 3, 1, "none"),
        (2, 13, 31, 3, 1, "relu"), (2, 8, 2, 3, 1, "none"), (1, 7, 56, 3, 1, "relu6"),
        # 3x3 stride 2 (its AVX-512 kernel reads 32 input columns per 16 outputs): even and odd
        # sizes around those widths and around its block of 4 output rows
        (3, 8, 32, 3, 2, "relu6"), (2, 9, 33, 3, 2, "none"), (2, 5, 1, 3, 2, "relu"),
        (3, 2, 2, 3, 2, "none"), (2, 7, 64, 3, 2, "relu6"), (1, 15, 63, 3, 2, "none"),
        (2, 18, 30, 3, 2, "relu"),
    ]
] + [
    ((2, 3, 6, 18), (3, 1, 3, 3), dict(groups=3, padding=[1, 1])),       # depthwise, batch 2
    ((2, 4, 9, 10), (4, 1, 3, 3), dict(groups=4, padding=[0, 0])),       # depthwise, no padding
    ((1, 4, 9, 10), (8, 1, 3, 3), dict(groups=4, padding=[1, 1])),       # channel multiplier 2
]


WINOGRAD_CASES = [  # 3x3 stride 1, >= 16 channels: Winograd, eager or with a constant weight
    ((1, 16, 34, 34), (16, 16, 3, 3), dict(padding=[1, 1])),
    ((1, 16, 16, 16), (16, 16, 3, 3), dict(padding=[1, 1])),
    ((2, 17, 14, 14), (19, 17, 3, 3), dict(padding=[1, 1], activation="relu")),
    ((1, 20, 15, 17), (33, 20, 3, 3), dict(padding=[1, 1], activation="relu6")),  # partial tiles
    ((1, 16, 18, 18), (16, 16, 3, 3), dict(padding=[0, 0])),
    ((1, 24, 14, 14), (16, 24, 3, 3), dict(padding=[2, 2])),
    # Enough tiles for the L2-sized tile blocks: five blocks (the last partial) at 1 and 2
    # threads; three blocks (blocked at 1 thread, phase-parallel at 2) with partial tiles.
    ((8, 16, 32, 32), (16, 16, 3, 3), dict(padding=[1, 1])),
    ((3, 20, 29, 31), (24, 20, 3, 3), dict(padding=[1, 1], activation="relu")),
    # Input channels over the depth of one transformed-weight chunk (unequal chunks) and output
    # channels ending in a partial panel: few tiles (one partial row panel) and many blocks.
    ((1, 70, 13, 13), (40, 70, 3, 3), dict(padding=[1, 1])),
    ((8, 48, 24, 20), (36, 48, 3, 3), dict(padding=[1, 1], activation="relu")),
    # The input transform reads rows of tiles by whole vectors: 56 x 56 puts one row of 14 tiles
    # in each 14-row panel (AVX-512), 58 x 62 rows of 15 tiles (the last partial) across panels.
    ((1, 16, 56, 56), (16, 16, 3, 3), dict(padding=[1, 1], activation="relu")),
    ((2, 16, 58, 62), (20, 16, 3, 3), dict(padding=[1, 1])),
]
CONV_CASES += WINOGRAD_CASES

TRANSPOSED_1X1_CASES = [  # 1x1 over small maps: computed as pixels x channels where that fits the tiles
    ((1, 320, 7, 7), (96, 320, 1, 1), dict(activation="relu6")),
    ((2, 576, 14, 14), (96, 576, 1, 1), dict(activation="relu")),
    ((1, 300, 5, 9), (128, 300, 1, 1), {}),  # a partial tile of pixels
    ((2, 160, 7, 7), (45, 160, 1, 1), {}),   # channels ending in a partial panel
    # im2col layers onto 7x7-sized maps: patches gathered into packed A panels
    ((1, 64, 14, 14), (64, 64, 3, 3), dict(stride=[2, 2], padding=[1, 1], activation="relu")),
    ((2, 32, 13, 11), (64, 16, 3, 3), dict(stride=[2, 2], padding=[1, 1], groups=2)),
    ((1, 24, 7, 7), (64, 24, 3, 3), dict(padding=[2, 2], dilation=[2, 2])),
]
CONV_CASES += TRANSPOSED_1X1_CASES


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
def test_conv2d_matches_reference(x_shape, w_shape, attrs):
    rng = np.random.default_rng(sum(x_shape) * 7 + sum(w_shape))
    x = rng.uniform(-1, 1, x_shape).astype(np.float32)
    w = rng.uniform(-1, 1, w_shape).astype(np.float32)
    b = rng.uniform(-1, 1, w_shape[0]).astype(np.float32)
    mag = conv_magnitude(x, w, attrs) + np.abs(b)[:, None, None]
    depth = w_shape[1] * w_shape[2] * w_shape[3]
    check_against_reference("conv2d", [x, w, b], attrs, mag, depth, f"conv2d {x_shape} {w_shape} {attrs}")


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
def test_conv2d_weights_packed_at_load_give_the_same_bits(x_shape, w_shape, attrs):
    rng = np.random.default_rng(sum(x_shape) + 3)
    x = rng.uniform(-1, 1, x_shape).astype(np.float32)
    w = rng.uniform(-1, 1, w_shape).astype(np.float32)
    b = rng.uniform(-1, 1, w_shape[0]).astype(np.float32)
    winograd_seen = False
    for isa in FAST_ISAS:
        _C.set_max_isa(isa)
        loaded = _C.PreparedOp("conv2d", [x, w, b], attrs, constants=[1, 2])
        winograd_seen |= "winograd" in loaded.kernel_name
        per_call = _C.PreparedOp("conv2d", [x, w, b], attrs)
        if loaded.kernel_name != per_call.kernel_name:  # the choice may differ; compare to the reference
            _C.set_max_isa("reference")
            ref = _C.run_op("conv2d", [x, w, b], attrs)[0]
            mag = conv_magnitude(x, w, attrs) + np.abs(b)[:, None, None]
            depth = w_shape[1] * w_shape[2] * w_shape[3]
            got = loaded.run([x, None, None])
            assert (np.abs(got - ref) <= 2.0 * (depth + 2) * EPS32 * mag + 1e-6).all(), (isa, loaded.kernel_name)
            continue
        assert np.array_equal(loaded.run([x, None, None]), per_call.run([x, w, b])), (isa, loaded.kernel_name)
    if (x_shape, w_shape, attrs) in WINOGRAD_CASES and any(i.startswith("avx") for i in FAST_ISAS):
        assert winograd_seen, "a Winograd case did not run Winograd"


# 100 rows at 2 threads: one block of 48 and one of 52 rows (not whole 14-row panels).
@pytest.mark.parametrize("batch", [1, 5, 100])
def test_linear_weights_packed_at_load_give_the_same_bits(batch):
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (batch, 300)).astype(np.float32)
    w = rng.uniform(-1, 1, (70, 300)).astype(np.float32)
    b = rng.uniform(-1, 1, 70).astype(np.float32)
    for isa in FAST_ISAS:
        _C.set_max_isa(isa)
        loaded = _C.PreparedOp("linear", [x, w, b], {"activation": "relu"}, constants=[1, 2])
        got = loaded.run([x, None, None])
        eager = _C.run_op("linear", [x, w, b], {"activation": "relu"})[0]
        assert np.array_equal(got, eager), isa
        threads = _C.get_num_threads()
        _C.set_num_threads(1 if threads > 1 else 2)
        assert np.array_equal(loaded.run([x, None, None]), got), isa
        _C.set_num_threads(threads)
        want = np.maximum(x.astype(np.float64) @ w.T.astype(np.float64) + b, 0)
        mag = np.abs(x.astype(np.float64)) @ np.abs(w.T.astype(np.float64)) + np.abs(b)
        assert (np.abs(got - want) <= 2 * 302 * EPS32 * mag).all(), isa


def test_winograd_is_chosen_for_3x3_stride_1_with_enough_channels():
    if not any(isa.startswith("avx") for isa in FAST_ISAS):
        pytest.skip("Winograd kernels are x86 only")
    x = np.zeros((1, 64, 7, 7), np.float32)
    w = np.zeros((64, 64, 3, 3), np.float32)
    _C.set_max_isa(_C.cpu_features()["detected_isa"])
    # The choice depends on the shape only, not on whether the weight is a constant.
    for constants in ([], [1]):
        assert "winograd" in _C.PreparedOp("conv2d", [x, w, None], {"padding": [1, 1]},
                                           constants=constants).kernel_name
    strided = _C.PreparedOp("conv2d", [x, w, None], {"padding": [1, 1], "stride": [2, 2]})
    assert "im2col" in strided.kernel_name
    few_channels = _C.PreparedOp("conv2d", [x[:, :8], w[:, :8], None], {"padding": [1, 1]})
    assert "im2col" in few_channels.kernel_name


def test_eager_winograd_sees_a_weight_updated_in_place():
    # Eager calls reuse transformed weights by address and content: an update must show.
    rng = np.random.default_rng(21)
    x = rng.uniform(-1, 1, (1, 16, 12, 12)).astype(np.float32)
    w = rng.uniform(-1, 1, (16, 16, 3, 3)).astype(np.float32)
    attrs = {"padding": [1, 1]}
    for isa in [i for i in FAST_ISAS if i.startswith("avx")]:
        _C.set_max_isa(isa)
        first = _C.run_op("conv2d", [x, w, None], attrs)[0]
        w[0, 0, 1, 1] += 1.0  # in place: same address
        second = _C.run_op("conv2d", [x, w, None], attrs)[0]
        _C.set_max_isa("reference")
        ref = _C.run_op("conv2d", [x, w, None], attrs)[0]
        assert not np.array_equal(first, second), isa
        np.testing.assert_allclose(second, ref, rtol=1e-4, atol=1e-4, err_msg=isa)


def test_conv2d_picks_algorithm_by_shape():
    x = np.zeros((1, 8, 12, 12), np.float32)
    names = {}
    for label, w, attrs in [
        ("dw", np.zeros((8, 1, 3, 3), np.float32), dict(groups=8, padding=[1, 1])),
        ("1x1", np.zeros((16, 8, 1, 1), np.float32), {}),
        ("im2col", np.zeros((16, 8, 3, 3), np.float32), {}),
    ]:
        _C.set_max_isa(_C.cpu_features()["detected_isa"])
        names[label] = _C.PreparedOp("conv2d", [x, w, None], attrs).kernel_name
    assert "dw3x3" in names["dw"] and "1x1" in names["1x1"] and "im2col" in names["im2col"], names
    if _C.cpu_features()["avx512f"]:
        # 7x7 pixels fill 14-row tiles better than 32-column panels: pixels x channels.
        x7, w7 = np.zeros((1, 320, 7, 7), np.float32), np.zeros((96, 320, 1, 1), np.float32)
        assert "1x1t" in _C.PreparedOp("conv2d", [x7, w7, None], {}).kernel_name
        assert "1x1t" in _C.PreparedOp("conv2d", [x7, w7, None], {}, constants=[1]).kernel_name
        w3 = np.zeros((64, 64, 3, 3), np.float32)
        assert "im2colt" in _C.PreparedOp("conv2d", [x7[:, :64].repeat(2, 2).repeat(2, 3), w3, None],
                                          {"stride": [2, 2], "padding": [1, 1]}, constants=[1]).kernel_name
        x56 = np.zeros((1, 64, 56, 56), np.float32)
        assert "1x1_" in _C.PreparedOp("conv2d", [x56, w7[:, :64], None], {}).kernel_name


@pytest.mark.parametrize("op,inputs,attrs", [
    ("matmul", [(301, 600), (600, 517)], {}),
    ("matmul", [(4, 128, 64), (4, 64, 128)], {}),  # attention heads: one product per thread
    ("matmul", [(2, 3, 20, 30), (3, 30, 25)], {}),  # broadcast batch dims
    ("linear", [(37, 300), (70, 300), (70,)], {"activation": "relu"}),
    # One block of rows: runs of column blocks per thread sharing a packed A over 3 K blocks.
    ("linear", [(128, 600), (1100, 600), (1100,)], {"activation": "relu"}),
    ("matmul", [(8, 700), (700, 2100)], {}),
    ("conv2d", [(1, 32, 20, 20), (48, 32, 3, 3), (48,)], {"padding": [1, 1]}),
    ("conv2d", [(1, 32, 20, 20), (32, 1, 3, 3), (32,)], {"padding": [1, 1], "groups": 32}),
    ("conv2d", [(1, 48, 28, 28), (40, 48, 3, 3), (40,)], {"padding": [1, 1]}),  # Winograd
    ("conv2d", [(8, 16, 32, 32), (16, 16, 3, 3), (16,)], {"padding": [1, 1]}),  # in tile blocks
    ("conv2d", [(3, 20, 29, 31), (24, 20, 3, 3), (24,)], {"padding": [1, 1]}),  # blocks at 1 thread
    ("conv2d", [(1, 70, 13, 13), (40, 70, 3, 3), (40,)], {"padding": [1, 1]}),  # depth chunks
    ("conv2d", [(8, 48, 24, 20), (36, 48, 3, 3), (36,)], {"padding": [1, 1]}),  # chunks, blocks
    ("conv2d", [(1, 320, 7, 7), (96, 320, 1, 1), (96,)], {}),  # 1x1 as pixels x channels
    # Batches that divide among the threads: one image's product per thread.
    ("conv2d", [(4, 24, 10, 10), (40, 24, 1, 1), (40,)], {}),
    ("conv2d", [(2, 320, 7, 7), (96, 320, 1, 1), (96,)], {"activation": "relu6"}),
    ("conv2d", [(6, 6, 11, 9), (10, 6, 3, 3), (10,)], {"stride": [2, 2]}),
    ("conv2d", [(3, 8, 9, 9), (12, 4, 3, 3), (12,)], {"groups": 2, "padding": [1, 1]}),
    ("conv2d", [(1, 64, 14, 14), (64, 64, 3, 3), (64,)], {"stride": [2, 2], "padding": [1, 1]}),  # im2colt
    ("conv2d", [(2, 64, 14, 14), (64, 64, 3, 3), (64,)], {"stride": [2, 2], "padding": [1, 1]}),
])
def test_one_and_two_threads_give_identical_bits(op, inputs, attrs):
    rng = np.random.default_rng(5)
    arrays = [rng.uniform(-1, 1, s).astype(np.float32) for s in inputs]
    for isa in FAST_ISAS:
        _C.set_max_isa(isa)
        _C.set_num_threads(1)
        one = _C.run_op(op, arrays, attrs)[0]
        _C.set_num_threads(2)
        two = _C.run_op(op, arrays, attrs)[0]
        assert np.array_equal(one, two), (op, isa)


def test_sgemm_binding_validates_inputs():
    with pytest.raises(errors.InvalidArgumentError, match="sgemm: 'a' has K=3, 'b' has K=4"):
        _C.sgemm(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))
    with pytest.raises(errors.InvalidArgumentError, match="activation"):
        _C.sgemm(np.zeros((2, 3), np.float32), np.zeros((3, 5), np.float32), activation="gelu")


def test_fp32_peak_probe_follows_the_isa():
    """The FMA-throughput probe benchmarks/kernels.py reports against: a finite positive rate per
    ISA, AVX-512 not below AVX2 (equal on cores that halve 512-bit FMAs; 0.8x allows for noise);
    ISAs without an FMA loop are refused by name."""
    fma_isas = [i for i in FAST_ISAS if i in ("avx2", "avx512", "avx512_vnni")]
    if not fma_isas:
        with pytest.raises(errors.UnsupportedError, match="no FMA loop for isa"):
            _C.measure_fp32_peak_gflops()
        return
    with pytest.raises(errors.UnsupportedError, match="no FMA loop for isa 'portable'"):
        _C.measure_fp32_peak_gflops("portable")
    peaks = {isa: _C.measure_fp32_peak_gflops(isa) for isa in fma_isas}
    assert all(np.isfinite(v) and v > 1.0 for v in peaks.values()), peaks
    if "avx2" in peaks and "avx512" in peaks:
        assert peaks["avx512"] >= 0.8 * peaks["avx2"], peaks


def test_packed_b_matches_numpy():
    rng = np.random.default_rng(3)
    for isa in FAST_ISAS:
        w = rng.uniform(-1, 1, (70, 45)).astype(np.float32)
        packed = _C.SgemmPackedB(w, b_transposed=True, isa=isa)
        x = rng.uniform(-1, 1, (9, 45)).astype(np.float32)
        bias = rng.uniform(-1, 1, 70).astype(np.float32)
        assert_close(packed.run(x, bias, "relu6"), np.clip(x @ w.T + bias, 0, 6), rtol=1e-5,
                     atol=1e-5, context=f"SgemmPackedB {isa}")


# ----------------------------------------------------------------------------- element-wise

BINARY_OPS = ["add", "sub", "mul", "div", "maximum", "minimum"]
BINARY_LAYOUTS = [  # (a shape, b shape): same, scalars, bias rows, and a general broadcast
    ((17,), (17,)), ((3, 5, 16), (3, 5, 16)), ((100003,), (100003,)), ((4, 15), (1,)),
    ((), (7, 3)), ((6, 33), (33,)), ((2, 3, 4, 5), (1, 4, 5)), ((3,), (5, 3)),
    ((2000, 64), (64,)), ((4, 1, 3), (1, 5, 1)),
]


def with_specials(x):
    """Sprinkles NaN, infinities, zeros of both signs into x (NaN rules must match)."""
    flat = x.reshape(-1)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    flat[: min(flat.size, 5)] = specials[: min(flat.size, 5)]
    return x


@pytest.mark.parametrize("op", BINARY_OPS)
@pytest.mark.parametrize("a_shape,b_shape", BINARY_LAYOUTS)
def test_binary_elementwise_is_bit_identical_to_reference(op, a_shape, b_shape):
    rng = np.random.default_rng(len(a_shape) * 31 + len(b_shape))
    a = with_specials(rng.uniform(-3, 3, a_shape).astype(np.float32))
    b = rng.uniform(-3, 3, b_shape).astype(np.float32)
    b = b[::-1].copy() if b.ndim else b
    b = with_specials(b) if b.size > 8 else b
    with np.errstate(all="ignore"):
        ref, _ = run_with_isa("reference", op, [a, b], {})
        for isa in FAST_ISAS:
            got, name = run_with_isa(isa, op, [a, b], {})
            np.testing.assert_array_equal(got, ref, err_msg=f"{op} {a_shape} {b_shape} {isa} {name}")


@pytest.mark.parametrize("op", ["relu", "relu6"])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 100003])
def test_unary_elementwise_is_bit_identical_to_reference(op, n):
    rng = np.random.default_rng(n)
    x = with_specials(rng.uniform(-8, 8, n).astype(np.float32))
    ref, _ = run_with_isa("reference", op, [x], {})
    for isa in FAST_ISAS:
        got, name = run_with_isa(isa, op, [x], {})
        np.testing.assert_array_equal(got, ref, err_msg=f"{op} n={n} {isa} {name}")
        assert np.signbit(got).tolist() == np.signbit(ref).tolist(), (op, isa)


def test_elementwise_kernels_are_the_fast_ones():
    a = np.zeros((4, 8), np.float32)
    _C.set_max_isa(_C.cpu_features()["detected_isa"])
    assert _C.kernel_name("add", [a, a]).startswith("f32_add_")
    assert _C.kernel_name("relu", [a]).startswith("f32_relu_")
    assert "reference" in _C.kernel_name("add", [a.astype(np.float64), a.astype(np.float64)])


@pytest.mark.parametrize("shape", [(1, 3, 7, 9), (2, 16, 17, 17), (4, 5), (2, 33, 100), (1, 64, 56, 56)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_reference(shape, affine):
    rng = np.random.default_rng(shape[1])
    c = shape[1]
    x = rng.uniform(-3, 3, shape).astype(np.float32)
    mean = rng.uniform(-1, 1, c).astype(np.float32)
    var = rng.uniform(0.1, 2, c).astype(np.float32)
    weight = rng.uniform(-2, 2, c).astype(np.float32) if affine else None
    bias = rng.uniform(-1, 1, c).astype(np.float32) if affine else None
    attrs = {"eps": 1e-3}
    ref, _ = run_with_isa("reference", "batch_norm", [x, mean, var, weight, bias], attrs)
    # The fast kernel computes x * scale + shift with scale, shift rounded to float32 once per
    # channel: a few roundings of terms as large as |x * scale| and |mean * scale| + |bias|.
    bshape = (1, c) + (1,) * (len(shape) - 2)
    scale = (weight if affine else 1.0) / np.sqrt(var.astype(np.float64) + 1e-3)
    terms = np.abs(x * scale.reshape(bshape)) + np.abs(mean * scale).reshape(bshape)
    if affine:
        terms = terms + np.abs(bias).reshape(bshape)
    for isa in FAST_ISAS:
        got, name = run_with_isa(isa, "batch_norm", [x, mean, var, weight, bias], attrs)
        assert "batch_norm" in name and "reference" not in name, name
        assert (np.abs(got - ref) <= 4 * EPS32 * terms + 1e-7).all(), (isa, shape)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_batch_row_gets_the_same_bits_in_any_batch(threads):
    """Fast GEMM-based kernels sum a row's products in the same order whatever the batch around
    it (no split accumulator chains for few rows, M == 1 products blocked over K like the
    microkernel path): the graph runtime relies on it to run large batches in pieces."""
    rng = np.random.default_rng(21)
    cases = [
        ("linear", [rng.standard_normal((8, 700)).astype(np.float32),
                    rng.standard_normal((300, 700)).astype(np.float32),
                    rng.standard_normal(300).astype(np.float32)], {}),
        ("matmul", [rng.standard_normal((7, 600)).astype(np.float32),
                    rng.standard_normal((600, 130)).astype(np.float32)], {}),
        # Winograd-sized channels on small maps (partial panels of tiles), and 1x1 convolutions
        ("conv2d", [rng.standard_normal((8, 32, 14, 14)).astype(np.float32),
                    (rng.standard_normal((32, 32, 3, 3)) * 0.1).astype(np.float32),
                    rng.standard_normal(32).astype(np.float32)], {"padding": [1, 1]}),
        ("conv2d", [rng.standard_normal((6, 64, 7, 7)).astype(np.float32),
                    (rng.standard_normal((48, 64, 3, 3)) * 0.1).astype(np.float32)], {"padding": [1, 1]}),
        ("conv2d", [rng.standard_normal((5, 96, 7, 7)).astype(np.float32),
                    (rng.standard_normal((40, 96, 1, 1)) * 0.1).astype(np.float32)], {}),
    ]
    _C.set_num_threads(threads)
    for isa in FAST_ISAS:
        _C.set_max_isa(isa)
        for op, inputs, attrs in cases:
            whole = _C.run_op(op, inputs, attrs)[0]
            batch = inputs[0].shape[0]
            for size in (1, 2, 3):
                parts = [_C.run_op(op, [inputs[0][i:i + size]] + inputs[1:], attrs)[0]
                         for i in range(0, batch, size)]
                np.testing.assert_array_equal(np.concatenate(parts), whole,
                                              err_msg=f"{isa} {op} {inputs[1].shape} rows of {size}")
