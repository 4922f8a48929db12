"""Quantized ops against independent oracles.

Reference kernels are checked against the float computation (dequantize -> float op in float64
-> quantize) within one quantization step; integer-only ops (max pooling, data movement) exactly.
Fast kernels are checked bit for bit against the reference kernel on every ISA this machine runs
(the C++ runner covers the pre-packed-weights path and aarch64).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphruntime import _C, errors
from oracle import run

TESTED_OPS = {
    "quantize",
    "dequantize",
    "quantized_linear",
    "quantized_linear_float",
    "quantized_conv2d",
    "quantized_add",
    "quantized_max_pool2d",
    "quantized_avg_pool2d",
    "quantized_adaptive_avg_pool2d",
    "quantized_concat",
}


def quantize_np(x, scale, zero_point):
    """uint8 codes of real values x (round half to even, like the op)."""
    q = np.round(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, 0, 255).astype(np.uint8)


def dequantize_np(q, scale, zero_point):
    return (q.astype(np.float64) - zero_point) * scale


def assert_within_one_step(got, expected, context=""):
    assert got.dtype == np.uint8 and got.shape == expected.shape, context
    diff = np.abs(got.astype(np.int32) - expected.astype(np.int32))
    assert diff.size == 0 or diff.max() <= 1, (
        f"{context}: {int((diff > 1).sum())} codes differ by more than one step; "
        f"first at {tuple(np.argwhere(diff > 1)[0])}")


def activation_np(y, activation):
    if activation == "relu":
        return np.maximum(y, 0)
    if activation == "relu6":
        return np.clip(y, 0, 6)
    return y


@pytest.fixture
def each_isa():
    """Yields every ISA level this machine runs up to the EMBER_ISA cap, restoring the cap afterwards."""
    saved = _C.get_max_isa()
    isas = _C.cpu_features()["isas"]
    try:
        yield isas[: isas.index(_C.cpu_features()["max_isa"]) + 1]
    finally:
        _C.set_max_isa(saved)


# ---------------------------------------------------------------- quantize / dequantize

def test_quantize_matches_numpy_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, size=(5, 7, 11)).astype(np.float32)
    x.flat[:4] = [np.inf, -np.inf, 1e30, -0.0]
    for scale, zp in [(0.05, 128), (0.01, 0), (1.0, 255), (0.3, 7)]:
        (q,) = run("quantize", [x], {"scale": scale, "zero_point": zp})
        expected = np.clip(np.round(x / np.float32(scale)) + zp, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(q, expected)
    (q,) = run("quantize", [np.array([np.nan, 0.5], np.float32)], {"scale": 1.0, "zero_point": 9})
    assert q.tolist() == [9, 9]  # NaN -> zero point; 0.5 rounds to even 0


def test_dequantize_matches_numpy_formula():
    q = np.arange(256, dtype=np.uint8).reshape(16, 16)
    (x,) = run("dequantize", [q], {"scale": 0.125, "zero_point": 100})
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, ((q.astype(np.int32) - 100) * np.float32(0.125)).astype(np.float32))


def test_quantize_dequantize_round_trip_within_half_step():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=1000).astype(np.float32)
    (q,) = run("quantize", [x], {"scale": 2 / 255, "zero_point": 128})
    (y,) = run("dequantize", [q], {"scale": 2 / 255, "zero_point": 128})
    assert np.abs(y - x).max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("attrs, message", [
    ({"scale": 0.0}, "attribute 'scale' is 0"),
    ({"scale": float("nan")}, "attribute 'scale'"),
    ({"scale": 0.1, "zero_point": 256}, "attribute 'zero_point' is 256, must be in [0, 255]"),
    ({"scale": 0.1, "zero_point": -1}, "attribute 'zero_point' is -1"),
])
def test_quantize_rejects_bad_parameters(attrs, message):
    with pytest.raises(errors.InvalidArgumentError) as info:
        run("quantize", [np.zeros(3, np.float32)], attrs)
    assert str(info.value).startswith("quantize") and message in str(info.value)


# ---------------------------------------------------------------- linear / conv

def random_conv_case(rng, depthwise=False, groups=1):
    c = int(rng.integers(1, 9)) * groups
    if depthwise:
        groups = c
    o = groups * int(rng.integers(1, 5)) if groups > 1 else int(rng.integers(1, 17))
    k = int(rng.choice([1, 3, 5]))
    h, w = int(rng.integers(k, k + 9)), int(rng.integers(k, k + 9))
    attrs = {
        "stride": [int(rng.integers(1, 3))] * 2,
        "padding": [int(rng.integers(0, k // 2 + 1))] * 2,
        "dilation": [1, 1],
        "groups": groups,
        "input_scale": float(rng.uniform(0.01, 0.05)),
        "input_zero_point": int(rng.choice([0, int(rng.integers(0, 256))])),
        "output_zero_point": int(rng.choice([0, int(rng.integers(0, 256))])),
        "activation": str(rng.choice(["none", "relu", "relu6"])),
    }
    x = rng.integers(0, 256, size=(int(rng.integers(1, 3)), c, h, w), dtype=np.uint8)
    wq = rng.integers(-127, 128, size=(o, c // groups, k, k), dtype=np.int8)
    wscale = rng.uniform(0.002, 0.02, size=o).astype(np.float32)
    bias = rng.integers(-20000, 20000, size=o).astype(np.int32)
    kk = (c // groups) * k * k
    attrs["output_scale"] = float(attrs["input_scale"] * 0.01 * np.sqrt(kk) * 30 * rng.uniform(0.3, 3))
    return x, wq, wscale, bias, attrs


def float_conv(x, wq, wscale, bias, attrs):
    """The float computation the quantized conv approximates, in float64, then quantized."""
    xf = torch.from_numpy(dequantize_np(x, attrs["input_scale"], attrs["input_zero_point"]))
    wf = torch.from_numpy(wq.astype(np.float64) * wscale.astype(np.float64)[:, None, None, None])
    bf = torch.from_numpy(bias.astype(np.float64) * attrs["input_scale"] * wscale.astype(np.float64))
    y = F.conv2d(xf, wf, bf, stride=attrs["stride"], padding=attrs["padding"],
                 dilation=attrs["dilation"], groups=attrs["groups"]).numpy()
    y = activation_np(y, attrs["activation"])
    return quantize_np(y, attrs["output_scale"], attrs["output_zero_point"])


@pytest.mark.parametrize("kind", ["dense", "depthwise", "grouped"])
def test_quantized_conv2d_reference_within_one_step_of_float(kind):
    rng = np.random.default_rng({"dense": 10, "depthwise": 11, "grouped": 12}[kind])
    saved = _C.get_max_isa()
    _C.set_max_isa("reference")
    try:
        for _ in range(25):
            x, wq, ws, b, attrs = random_conv_case(rng, depthwise=kind == "depthwise",
                                                   groups=2 if kind == "grouped" else 1)
            (y,) = run("quantized_conv2d", [x, wq, ws, b], attrs)
            assert_within_one_step(y, float_conv(x, wq, ws, b, attrs), f"{kind} {attrs}")
    finally:
        _C.set_max_isa(saved)


def test_quantized_conv2d_fast_paths_bit_exact(each_isa):
    rng = np.random.default_rng(13)
    cases = [random_conv_case(rng, depthwise=i % 3 == 1, groups=2 if i % 3 == 2 else 1) for i in range(30)]
    # Edge cases: zero point 0, saturating bias, per-tensor scale, one output channel.
    x, wq, ws, b, attrs = random_conv_case(rng)
    cases.append((x, wq, ws[:1].copy(), np.full_like(b, 2**30), dict(attrs, input_zero_point=0)))
    cases.append((x, wq[:1].copy(), ws[:1].copy(), -np.full_like(b[:1], 2**30), attrs))
    # Depthwise planes of every row width the fast kernel copies differently (1..3, 4..7,
    # 8..16, wider), as one long row (narrow) and row by row (wide), strides 1 and 2.
    for width, stride in ((1, 1), (3, 1), (5, 2), (7, 1), (9, 1), (16, 2), (17, 1), (50, 1), (113, 2)):
        x, wq, ws, b, attrs = random_conv_case(rng, depthwise=True)
        c = wq.shape[0]
        x = rng.integers(0, 256, size=(1, c, 6, width), dtype=np.uint8)
        wq = rng.integers(-127, 128, size=(c, 1, 3, 3), dtype=np.int8)
        cases.append((x, wq, ws[:c], b[:c], dict(attrs, stride=[stride, stride], padding=[1, 1],
                                                groups=c)))
    # Depthwise accumulators far outside int16 (the fast kernels saturate while packing to
    # bytes): biases of +-2**30 and -2**20, a full 64-pixel step plus a partial one, narrow
    # planes (several per step) and a channel multiplier of 2.
    for width, mult in ((70, 1), (9, 1), (5, 2)):
        c = 3
        x = rng.integers(0, 256, size=(2, c, 4, width), dtype=np.uint8)
        wq = rng.integers(-127, 128, size=(c * mult, 1, 3, 3), dtype=np.int8)
        bias = np.resize(np.array([2**30, -2**30, -2**20], np.int32), c * mult)
        attrs = dict(random_conv_case(rng)[4], stride=[1, 1], padding=[1, 1], groups=c,
                     activation="none", output_zero_point=17)
        cases.append((x, wq, rng.uniform(0.002, 0.02, size=c * mult).astype(np.float32), bias, attrs))
    # 1x1 stride-1 unpadded layers read their input planes in place: batch 2, two groups,
    # planes whose size is not a multiple of the vector width (reads run past a plane's end).
    for h, w, groups in ((7, 7, 1), (5, 3, 2), (14, 14, 1), (1, 1, 2)):
        x, wq, ws, b, attrs = random_conv_case(rng, groups=groups)
        c, o = x.shape[1], wq.shape[0]
        x = rng.integers(0, 256, size=(2, c, h, w), dtype=np.uint8)
        wq = rng.integers(-127, 128, size=(o, c // groups, 1, 1), dtype=np.int8)
        cases.append((x, wq, ws, b, dict(attrs, stride=[1, 1], padding=[0, 0])))
    # Strided and dilated layers (the fast kernels split padded planes into stride x stride
    # phases): odd and even sizes and paddings, strides 2 and 3, dilation 2, two groups.
    for k, stride, pad, dil, h, w, groups in ((3, 2, 1, 1, 13, 14, 1), (3, 2, 0, 1, 14, 13, 2), (1, 2, 0, 1, 9, 8, 1),
                                              (7, 2, 3, 1, 23, 22, 1), (3, 2, 2, 2, 12, 15, 2), (5, 3, 2, 1, 17, 16, 1),
                                              (3, 1, 2, 2, 10, 11, 1), (2, 2, 1, 3, 9, 10, 1)):
        _, _, ws, b, attrs = random_conv_case(rng, groups=groups)
        c, o = 3 * groups, 5 * groups
        x = rng.integers(0, 256, size=(2, c, h, w), dtype=np.uint8)
        wq = rng.integers(-127, 128, size=(o, c // groups, k, k), dtype=np.int8)
        cases.append((x, wq, rng.uniform(0.002, 0.02, size=o).astype(np.float32), np.resize(b, o),
                      dict(attrs, stride=[stride, stride], padding=[pad, pad], dilation=[dil, dil], groups=groups)))
    # Narrow outputs (most of the cases above) compact each chunk's im2col rows to the real
    # pixels: here over several chunks of whole output rows (30 x 10). Wide outputs keep the
    # padded columns as dropped virtual pixels (6 x 40, and 35 columns at stride 2).
    for k, stride, pad, h, w in ((3, 1, 1, 30, 10), (3, 1, 1, 6, 40), (3, 2, 1, 9, 70), (5, 1, 2, 7, 7)):
        _, _, ws, b, attrs = random_conv_case(rng)
        c, o = 5, 11
        x = rng.integers(0, 256, size=(2, c, h, w), dtype=np.uint8)
        wq = rng.integers(-127, 128, size=(o, c, k, k), dtype=np.int8)
        cases.append((x, wq, rng.uniform(0.002, 0.02, size=o).astype(np.float32), np.resize(b, o),
                      dict(attrs, stride=[stride, stride], padding=[pad, pad], dilation=[1, 1], groups=1)))
    _C.set_max_isa("reference")
    expected = [run("quantized_conv2d", [x, wq, ws, b], attrs)[0] for x, wq, ws, b, attrs in cases]
    for isa in each_isa:
        _C.set_max_isa(isa)
        for (x, wq, ws, b, attrs), want in zip(cases, expected):
            (got,) = run("quantized_conv2d", [x, wq, ws, b], attrs)
            np.testing.assert_array_equal(got, want, err_msg=f"isa {isa}, attrs {attrs}, shapes {x.shape} {wq.shape}")


def lanes_case(rng, c, o, h, w, k=3, stride=1, pad=1, dilation=1, batch=1):
    """A conv that the AVX-512 VNNI kernels run channels-in-lanes (64 x 6 tiles reading the input
    as NHWC rows when c is a multiple of 4, else over a pixel-major im2col matrix, small maps
    only): out channels a multiple of 16, depth c * k * k >= 256."""
    _, _, _, _, attrs = random_conv_case(rng)
    x = rng.integers(0, 256, size=(batch, c, h, w), dtype=np.uint8)
    wq = rng.integers(-127, 128, size=(o, c, k, k), dtype=np.int8)
    ws = rng.uniform(0.002, 0.02, size=o).astype(np.float32)
    b = rng.integers(-20000, 20000, size=o).astype(np.int32)
    dilation = list(dilation) if isinstance(dilation, tuple) else [dilation, dilation]
    attrs = dict(attrs, stride=[stride, stride], padding=[pad, pad], dilation=dilation, groups=1,
                 output_scale=float(attrs["input_scale"] * 0.01 * np.sqrt(c * k * k) * 30))
    return [x, wq, ws, b], attrs


# Every vector count (16 .. 64 channels, 80 = 64 + 16: a partial last block) and pixel tail
# (1 x 1 .. 16 x 16 maps), depth not a multiple of 4 (57 x 9), batch 2, stride 2, dilation 2
# (and 2 x 1: taps of a row contiguous),
# over an im2col matrix (channels not a multiple of 4) and over the NHWC rows in place (the
# rest: large maps too, where 2 threads split the tiles; 256 channels, where they split the
# channels).
LANES_CASES = [dict(c=57, o=48, h=5, w=6), dict(c=40, o=80, h=3, w=3), dict(c=64, o=16, h=1, w=1),
               dict(c=30, o=32, h=4, w=4, batch=2), dict(c=29, o=112, h=9, w=11, stride=2),
               dict(c=33, o=64, h=16, w=16), dict(c=31, o=32, h=9, w=9, dilation=2, pad=2),
               dict(c=256, o=64, h=7, w=7), dict(c=32, o=48, h=9, w=9, dilation=2, pad=2),
               dict(c=44, o=32, h=13, w=11, stride=2, batch=2), dict(c=64, o=64, h=23, w=19),
               dict(c=36, o=80, h=29, w=31, stride=2), dict(c=64, o=256, h=5, w=5),
               dict(c=32, o=16, h=20, w=20, k=5, pad=2), dict(c=32, o=32, h=10, w=9, dilation=(2, 1), pad=2)]


@pytest.mark.parametrize("case", LANES_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_quantized_conv2d_lanes_tiles_bit_exact(each_isa, case):
    rng = np.random.default_rng(sum(v if isinstance(v, int) else sum(v) for v in case.values()))
    inputs, attrs = lanes_case(rng, **case)
    _C.set_max_isa("reference")
    (want,) = run("quantized_conv2d", inputs, attrs)
    threads = _C.get_num_threads()
    for isa in each_isa:
        _C.set_max_isa(isa)
        name = _C.kernel_name("quantized_conv2d", inputs, attrs)
        if isa == "avx512_vnni":
            assert name == "u8s8_conv_lanes_64x6_vnni", name
        # Weights packed per call and at load (constants), at 1 and 2 threads.
        loaded = _C.PreparedOp("quantized_conv2d", inputs, attrs, constants=[1, 2, 3])
        for t in (1, 2):
            _C.set_num_threads(t)
            (got,) = run("quantized_conv2d", inputs, attrs)
            np.testing.assert_array_equal(got, want, err_msg=f"isa {isa} ({name}), {t} threads, {case}")
            np.testing.assert_array_equal(loaded.run([inputs[0], None, None, None]), want,
                                          err_msg=f"isa {isa} ({name}) packed at load, {t} threads, {case}")
        _C.set_num_threads(threads)


def test_quantized_conv2d_lanes_for_deep_maps_with_whole_channel_quads_or_small(each_isa):
    if "avx512_vnni" not in each_isa:
        pytest.skip("channels-in-lanes tiles are AVX-512 VNNI only")
    rng = np.random.default_rng(15)
    _C.set_max_isa("avx512_vnni")
    for case, lanes in [(dict(c=64, o=64, h=14, w=14), True), (dict(c=64, o=64, h=56, w=56), True),
                        (dict(c=30, o=64, h=15, w=15), True), (dict(c=30, o=64, h=20, w=20), False),
                        (dict(c=64, o=40, h=7, w=7), False), (dict(c=16, o=64, h=7, w=7), False),
                        (dict(c=256, o=64, h=7, w=7, k=1, pad=0), False)]:
        inputs, attrs = lanes_case(rng, **case)
        name = _C.kernel_name("quantized_conv2d", inputs, attrs)
        assert (name == "u8s8_conv_lanes_64x6_vnni") == lanes, (case, name)


def test_quantized_conv2d_chooses_fast_kernels(each_isa):
    rng = np.random.default_rng(14)
    x, wq, ws, b, attrs = random_conv_case(rng)
    dw = random_conv_case(rng, depthwise=True)
    if "avx512_vnni" in each_isa:
        assert _C.kernel_name("quantized_conv2d", [x, wq, ws, b], attrs).endswith("_vnni")
    if "avx2" in each_isa:
        _C.set_max_isa("avx2")
        assert _C.kernel_name("quantized_conv2d", [x, wq, ws, b], attrs).endswith("_avx2")
        assert _C.kernel_name("quantized_conv2d", list(dw[:4]), dw[4]) == "u8s8_dwconv_8_avx2"
    _C.set_max_isa("reference")
    assert "reference" in _C.kernel_name("quantized_conv2d", [x, wq, ws, b], attrs)


def test_quantized_linear_reference_within_one_step_and_fast_paths_bit_exact(each_isa):
    rng = np.random.default_rng(15)
    cases = []
    for k in [1, 15, 16, 17, 64, 65, 200]:
        o = int(rng.integers(1, 40))
        x = rng.integers(0, 256, size=(3, 2, k), dtype=np.uint8)
        wq = rng.integers(-128, 128, size=(o, k), dtype=np.int8)
        ws = rng.uniform(0.002, 0.02, size=o).astype(np.float32)
        b = rng.integers(-20000, 20000, size=o).astype(np.int32)
        attrs = {"input_scale": 0.03, "input_zero_point": int(rng.integers(0, 256)),
                 "output_scale": float(0.03 * 0.01 * np.sqrt(k) * 40), "output_zero_point": int(rng.integers(0, 256)),
                 "activation": ["none", "relu", "relu6"][k % 3]}
        cases.append((x, wq, ws, b, attrs))
    _C.set_max_isa("reference")
    expected = []
    for x, wq, ws, b, attrs in cases:
        (y,) = run("quantized_linear", [x, wq, ws, b], attrs)
        xf = dequantize_np(x, attrs["input_scale"], attrs["input_zero_point"])
        wf = wq.astype(np.float64) * ws[:, None]
        yf = activation_np(xf @ wf.T + b * attrs["input_scale"] * ws.astype(np.float64), attrs["activation"])
        assert_within_one_step(y, quantize_np(yf, attrs["output_scale"], attrs["output_zero_point"]), str(attrs))
        expected.append(y)
    for isa in each_isa:
        _C.set_max_isa(isa)
        for (x, wq, ws, b, attrs), want in zip(cases, expected):
            (got,) = run("quantized_linear", [x, wq, ws, None], attrs)
            (got_b,) = run("quantized_linear", [x, wq, ws, b], attrs)
            np.testing.assert_array_equal(got_b, want, err_msg=f"isa {isa} {attrs}")
            _C.set_max_isa("reference")
            (ref_nb,) = run("quantized_linear", [x, wq, ws, None], attrs)
            _C.set_max_isa(isa)
            np.testing.assert_array_equal(got, ref_nb, err_msg=f"isa {isa}, no bias")


def test_quantized_linear_float_is_the_float_computation_and_fast_paths_bit_exact(each_isa):
    """The fused dequantize: the exact integer sum times input_scale * weight_scale in float64,
    rounded once to float32 (so the reference equals numpy's float64 result rounded)."""
    rng = np.random.default_rng(16)
    cases = []
    for k, act in [(1, "none"), (17, "relu"), (64, "relu6"), (200, "none"), (513, "relu")]:
        o = int(rng.integers(1, 40))
        x = rng.integers(0, 256, size=(2, 3, k), dtype=np.uint8)
        wq = rng.integers(-128, 128, size=(o, k), dtype=np.int8)
        ws = rng.uniform(0.002, 0.02, size=o if k % 2 else 1).astype(np.float32)
        b = rng.integers(-20000, 20000, size=o).astype(np.int32)
        attrs = {"input_scale": 0.03, "input_zero_point": int(rng.integers(0, 256)), "activation": act}
        cases.append((x, wq, ws, b, attrs))
    _C.set_max_isa("reference")
    expected = []
    for x, wq, ws, b, attrs in cases:
        (y,) = run("quantized_linear_float", [x, wq, ws, b], attrs)
        acc = (x.astype(np.int64) - attrs["input_zero_point"]) @ wq.astype(np.int64).T + b
        want = activation_np((acc * (attrs["input_scale"] * np.broadcast_to(ws.astype(np.float64), b.shape))).astype(np.float32),
                             attrs["activation"])
        assert y.dtype == np.float32 and y.shape == x.shape[:-1] + (wq.shape[0],)
        np.testing.assert_array_equal(y, want, err_msg=str(attrs))
        expected.append(y)
    for isa in each_isa:
        _C.set_max_isa(isa)
        for (x, wq, ws, b, attrs), want in zip(cases, expected):
            (got,) = run("quantized_linear_float", [x, wq, ws, b], attrs)
            np.testing.assert_array_equal(got, want, err_msg=f"isa {isa} {attrs}")
    with pytest.raises(errors.InvalidArgumentError, match="quantized_linear_float.*attribute 'activation' is 'gelu'"):
        run("quantized_linear_float", [x, wq, ws, b], dict(attrs, activation="gelu"))
    with pytest.raises(errors.InvalidArgumentError, match="quantized_linear_float.*features, weight expects"):
        run("quantized_linear_float", [x[..., :-1], wq, ws, b], attrs)


def test_quantized_conv2d_errors_name_op_and_rule():
    x = np.zeros((1, 4, 5, 5), np.uint8)
    w = np.zeros((2, 4, 3, 3), np.int8)
    attrs = {"input_scale": 0.1, "output_scale": 0.1}
    with pytest.raises(errors.InvalidArgumentError, match="quantized_conv2d: input 'input' has 3 channels, weight expects 4"):
        run("quantized_conv2d", [x[:, :3], w, np.ones(2, np.float32)], attrs)
    with pytest.raises(errors.InvalidArgumentError, match=r"input 'weight_scale' has shape \[3\], expected \[1\] or \[2\]"):
        run("quantized_conv2d", [x, w, np.ones(3, np.float32)], attrs)
    with pytest.raises(errors.InvalidArgumentError, match="attribute 'activation' is 'gelu'"):
        run("quantized_conv2d", [x, w, np.ones(2, np.float32)], dict(attrs, activation="gelu"))
    with pytest.raises(errors.InvalidArgumentError, match="input 'weight' has dtype uint8"):
        run("quantized_conv2d", [x, w.view(np.uint8), np.ones(2, np.float32)], attrs)
    with pytest.raises(errors.InvalidArgumentError, match=r"must be in \[2\*\*-32, 2\*\*16\)"):
        run("quantized_conv2d", [x, w, np.ones(2, np.float32)], dict(attrs, output_scale=1e-9))
    with pytest.raises(errors.InvalidArgumentError, match="weight_scale"):
        run("quantized_linear", [np.zeros((1, 4), np.uint8), np.zeros((2, 4), np.int8),
                                 np.array([1.0, -1.0], np.float32)], attrs)


# ---------------------------------------------------------------- add

def test_quantized_add_within_one_step_of_float():
    rng = np.random.default_rng(20)
    for i in range(30):
        shape = (2, 3, 4, 5)
        a = rng.integers(0, 256, size=shape, dtype=np.uint8)
        b = rng.integers(0, 256, size=shape[-2:] if i % 3 == 0 else shape, dtype=np.uint8)
        attrs = {"a_scale": float(rng.uniform(0.01, 0.1)), "a_zero_point": int(rng.integers(0, 256)),
                 "b_scale": float(rng.uniform(0.01, 0.1)), "b_zero_point": int(rng.integers(0, 256)),
                 "output_scale": float(rng.uniform(0.02, 0.2)), "output_zero_point": int(rng.integers(0, 256)),
                 "activation": "relu" if i % 2 else "none"}
        (y,) = run("quantized_add", [a, b], attrs)
        real = dequantize_np(a, attrs["a_scale"], attrs["a_zero_point"]) + dequantize_np(b, attrs["b_scale"], attrs["b_zero_point"])
        want = quantize_np(activation_np(real, attrs["activation"]), attrs["output_scale"], attrs["output_zero_point"])
        assert_within_one_step(y, want, str(attrs))
    same = {"a_scale": 0.1, "b_scale": 0.1, "output_scale": 0.1}
    (y,) = run("quantized_add", [np.array([1, 2, 250], np.uint8), np.array([3, 4, 10], np.uint8)], same)
    assert y.tolist() == [4, 6, 255]  # equal scales add exactly, saturating
    with pytest.raises(errors.InvalidArgumentError, match=r"scale ratio .* must be in \[2\*\*-14, 2\*\*8\)"):
        run("quantized_add", [a, a], dict(same, a_scale=100.0))


def test_quantized_add_fast_paths_bit_exact(each_isa):
    """Every ISA's add equals the reference bit for bit: sizes around the 8- and 16-code steps,
    scale ratios from 2**-14 to just under 2**8 (shifts 23 to 45) and ratios whose multiplier
    rounds up to 2**31 (the 32-bit path must leave those to the 64-bit one)."""
    rng = np.random.default_rng(21)
    ratios = [(1.0, 1.0), (2.0 ** -14, 0.5), (255.9, 3.0), (1 - 2.0 ** -33, 0.25), (0.7, 1 - 2.0 ** -34),
              (0.013, 0.021), (17.0, 100.0)]
    cases = []
    for i, (ra, rb) in enumerate(ratios):
        for n in (1, 7, 15, 16, 17, 33, 4099):
            y_scale = float(rng.uniform(0.01, 0.2))
            attrs = {"a_scale": ra * y_scale, "a_zero_point": int(rng.integers(0, 256)),
                     "b_scale": rb * y_scale, "b_zero_point": int(rng.integers(0, 256)),
                     "output_scale": y_scale, "output_zero_point": int(rng.integers(0, 256)),
                     "activation": ["none", "relu"][(i + n) % 2]}
            a = rng.integers(0, 256, size=(1, n), dtype=np.uint8)
            b = rng.integers(0, 256, size=(1, n), dtype=np.uint8)
            cases.append(([a, b], attrs))
    _C.set_max_isa("reference")
    expected = [run("quantized_add", inputs, attrs)[0] for inputs, attrs in cases]
    for isa in each_isa:
        _C.set_max_isa(isa)
        for (inputs, attrs), want in zip(cases, expected):
            (got,) = run("quantized_add", inputs, attrs)
            np.testing.assert_array_equal(got, want, err_msg=f"isa {isa}, n {inputs[0].size}, {attrs}")


# ---------------------------------------------------------------- pooling

@pytest.mark.parametrize("ceil_mode", [False, True])
def test_quantized_max_pool2d_matches_torch_exactly(ceil_mode):
    rng = np.random.default_rng(30)
    x = rng.integers(0, 256, size=(2, 3, 11, 9), dtype=np.uint8)
    for k, s, p, d in [(2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 2), (3, 3, 0, 1)]:
        attrs = {"kernel_size": [k, k], "stride": [s, s], "padding": [p, p], "dilation": [d, d], "ceil_mode": ceil_mode}
        (y,) = run("quantized_max_pool2d", [x], attrs)
        want = F.max_pool2d(torch.from_numpy(x.astype(np.float32)), k, s, p, d, ceil_mode=ceil_mode).numpy()
        np.testing.assert_array_equal(y, want.astype(np.uint8), err_msg=str(attrs))


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_quantized_avg_pool2d_within_one_step(ceil_mode, count_include_pad):
    rng = np.random.default_rng(31)
    x = rng.integers(0, 256, size=(2, 3, 10, 7), dtype=np.uint8)
    q = {"input_scale": 0.05, "input_zero_point": 30, "output_scale": 0.04, "output_zero_point": 60}
    for k, s, p in [(2, 2, 0), (3, 2, 1), (3, 1, 1)]:
        attrs = dict(q, kernel_size=[k, k], stride=[s, s], padding=[p, p], ceil_mode=ceil_mode,
                     count_include_pad=count_include_pad)
        (y,) = run("quantized_avg_pool2d", [x], attrs)
        xf = torch.from_numpy(dequantize_np(x, 0.05, 30))
        yf = F.avg_pool2d(xf, k, s, p, ceil_mode=ceil_mode, count_include_pad=count_include_pad).numpy()
        assert_within_one_step(y, quantize_np(yf, 0.04, 60), str(attrs))


def test_quantized_adaptive_avg_pool2d_within_one_step():
    rng = np.random.default_rng(32)
    x = rng.integers(0, 256, size=(2, 5, 7, 9), dtype=np.uint8)
    q = {"input_scale": 0.05, "input_zero_point": 128, "output_scale": 0.01, "output_zero_point": 128}
    for size in [[1, 1], [3, 4], [7, 9], [2, 5]]:
        (y,) = run("quantized_adaptive_avg_pool2d", [x], dict(q, output_size=size))
        yf = F.adaptive_avg_pool2d(torch.from_numpy(dequantize_np(x, 0.05, 128)), size).numpy()
        assert_within_one_step(y, quantize_np(yf, 0.01, 128), str(size))


def test_quantized_global_avg_pool2d_fast_kernel_bit_exact(each_isa):
    rng = np.random.default_rng(33)
    cases = []
    for shape in [(1, 1, 1, 1), (2, 3, 7, 7), (1, 1280, 7, 7), (3, 5, 13, 17), (1, 2, 1, 300), (1, 40, 64, 64)]:
        x = rng.integers(0, 256, size=shape, dtype=np.uint8)
        q = {"input_scale": float(rng.uniform(0.01, 0.1)), "input_zero_point": int(rng.integers(0, 256)),
             "output_scale": float(rng.uniform(0.002, 0.1)), "output_zero_point": int(rng.integers(0, 256)),
             "output_size": [1, 1]}
        cases.append((x, q))
    x = np.full((1, 4, 9, 9), 255, np.uint8)  # saturates at both ends of the output range
    cases += [(x, {"input_scale": 1.0, "input_zero_point": 0, "output_scale": 0.01, "output_zero_point": 200,
                   "output_size": [1, 1]}),
              (255 - x, {"input_scale": 1.0, "input_zero_point": 255, "output_scale": 0.01,
                         "output_zero_point": 20, "output_size": [1, 1]})]
    _C.set_max_isa("reference")
    expected = [run("quantized_adaptive_avg_pool2d", [x], q)[0] for x, q in cases]
    for isa in each_isa:
        _C.set_max_isa(isa)
        for threads in (1, 2):
            _C.set_num_threads(threads)
            for (x, q), want in zip(cases, expected):
                (got,) = run("quantized_adaptive_avg_pool2d", [x], q)
                np.testing.assert_array_equal(got, want, err_msg=f"{isa} {threads} thread(s) {x.shape} {q}")
    assert _C.kernel_name("quantized_adaptive_avg_pool2d", [cases[1][0]], cases[1][1]) == "u8_global_avg_pool2d_portable"
    assert "reference" in _C.kernel_name("quantized_adaptive_avg_pool2d", [cases[1][0]],
                                         dict(cases[1][1], output_size=[2, 2]))


# ---------------------------------------------------------------- concat

def test_quantized_concat_requantizes_each_input():
    rng = np.random.default_rng(40)
    a = rng.integers(0, 256, size=(2, 3, 4), dtype=np.uint8)
    b = rng.integers(0, 256, size=(2, 5, 4), dtype=np.uint8)
    attrs = {"dim": 1, "input_scales": [0.1, 0.05], "input_zero_points": [10, 200],
             "output_scale": 0.1, "output_zero_point": 10}
    (y,) = run("quantized_concat", [a, b], attrs)
    np.testing.assert_array_equal(y[:, :3], a)  # same parameters as the output: copied
    want = quantize_np(dequantize_np(b, 0.05, 200), 0.1, 10)
    assert_within_one_step(y[:, 3:], want, "requantized input")
    (y2,) = run("quantized_concat", [a, b], dict(attrs, dim=-2, input_scales=[0.1, 0.1], input_zero_points=[10, 10]))
    np.testing.assert_array_equal(y2, np.concatenate([a, b], axis=1))
    with pytest.raises(errors.InvalidArgumentError, match="one value per input"):
        run("quantized_concat", [a, b], dict(attrs, input_scales=[0.1]))
    with pytest.raises(errors.InvalidArgumentError, match="quantized_concat"):
        run("quantized_concat", [a, b], dict(attrs, dim=2))


# ---------------------------------------------------------------- data movement on uint8

@pytest.mark.parametrize("op, attrs, oracle", [
    ("reshape", {"shape": [3, -1]}, lambda x: x.reshape(3, -1)),
    ("flatten", {"start_dim": 1}, lambda x: x.reshape(x.shape[0], -1)),
    ("transpose", {"perm": [0, 2, 3, 1]}, lambda x: x.transpose(0, 2, 3, 1)),
    ("pad", {"pads": [1, 2, 0, 1], "value": 77.0},
     lambda x: np.pad(x, [(0, 0), (0, 0), (0, 1), (1, 2)], constant_values=77)),
])
def test_data_movement_ops_work_on_uint8(op, attrs, oracle):
    if _C.op_schemas() and op not in {s["name"] for s in _C.op_schemas()}:
        pytest.skip(f"{op} is not registered in this build")
    x = np.random.default_rng(50).integers(0, 256, size=(3, 2, 4, 5), dtype=np.uint8)
    (y,) = run(op, [x], attrs)
    np.testing.assert_array_equal(y, oracle(x))
