"""Reference kernels of the neural-network ops against PyTorch: linear, matmul, conv2d,
max/avg/adaptive pooling, batch_norm, layer_norm, softmax and log_softmax.

Every case runs the op through `_C.run_op` and compares with torch.nn.functional evaluated in
float64 on the same inputs (then cast to the tested dtype), so float32 results, which the
reference kernels accumulate in double, must agree to rounding. Random configurations are
seeded; where PyTorch rejects a configuration the op must reject it too (InvalidArgumentError),
and vice versa.
"""
import numpy as np
import pytest

from graphruntime import _C
from graphruntime.errors import InvalidArgumentError
from oracle import assert_close, random_array, run

# Ops this module covers (tests/kernels/test_registry.py checks every op has a test).
TESTED_OPS = {'linear', 'matmul', 'conv2d', 'max_pool2d', 'avg_pool2d', 'adaptive_avg_pool2d', 'batch_norm', 'layer_norm', 'softmax', 'log_softmax'}

torch = pytest.importorskip("torch")
F = torch.nn.functional

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def torch_reference(fn, arrays, dtype):
    """fn applied by PyTorch in float64 to `arrays` (None passes through), cast to `dtype`."""
    tensors = [None if a is None else torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in arrays]
    return fn(*tensors).numpy().astype(dtype)


def torch_activation(name):
    return {"none": lambda t: t, "relu": F.relu, "relu6": F.relu6}[name]


def compare_with_torch(op, arrays, attrs, fn, dtype, context=""):
    """Runs op and fn; both must succeed and agree, or both must reject the inputs."""
    try:
        expected = torch_reference(fn, arrays, dtype)
    except RuntimeError as torch_error:
        with pytest.raises(InvalidArgumentError) as info:
            run(op, arrays, attrs)
        assert str(info.value).startswith(op), str(info.value)
        return f"rejected: {torch_error}"
    (got,) = run(op, arrays, attrs)
    assert_close(got, expected, context=f"{op} {context} attrs={attrs}", **TOLERANCE[dtype])
    return "ok"


# ---------------------------------------------------------------------------- linear


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_random_shapes(dtype):
    rng = np.random.default_rng(1)
    for case in range(40):
        batch = [int(d) for d in rng.integers(0, 4, size=rng.integers(0, 4))]
        in_features, out_features = int(rng.integers(0, 7)), int(rng.integers(1, 7))
        x = random_array(rng, batch + [in_features], dtype)
        w = random_array(rng, [out_features, in_features], dtype)
        b = random_array(rng, [out_features], dtype) if case % 3 else None
        activation = ["none", "relu", "relu6"][case % 3]
        act = torch_activation(activation)
        # Scale so relu6 clips at 6 in some entries.
        x = (x * 3).astype(dtype)
        status = compare_with_torch(
            "linear", [x, w, b], {"activation": activation},
            lambda x, w, b: act(F.linear(x, w, b)), dtype, context=f"x{list(x.shape)}")
        assert status == "ok"


def test_linear_default_activation_and_vector_input():
    rng = np.random.default_rng(2)
    x = random_array(rng, [5])
    w = random_array(rng, [3, 5])
    (y,) = run("linear", [x, w])
    assert_close(y, torch_reference(F.linear, [x, w], np.float32), rtol=2e-5, atol=2e-6)
    assert y.shape == (3,)


# ---------------------------------------------------------------------------- matmul

MATMUL_SHAPES = [
    ([4], [4]),  # dot -> scalar
    ([3], [3, 5]),  # vector-matrix
    ([5, 3], [3]),  # matrix-vector
    ([2, 3], [3, 4]),
    ([3], [2, 3, 4]),  # vector times a batch
    ([2, 4, 3], [3]),  # batch times a vector
    ([2, 1, 3, 4], [5, 4, 2]),  # broadcast batch dims
    ([1, 3, 4], [6, 4, 2]),
    ([6, 3, 4], [4, 2]),
    ([2, 3], [7, 3, 1]),
    ([0, 3, 4], [4, 5]),  # empty batch
    ([3, 0], [0, 4]),  # empty contraction -> zeros
    ([1, 1], [1, 1]),
    ([0], [0]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_shapes(shapes, dtype):
    rng = np.random.default_rng(3)
    a = random_array(rng, shapes[0], dtype)
    b = random_array(rng, shapes[1], dtype)
    assert compare_with_torch("matmul", [a, b], {}, torch.matmul, dtype) == "ok"


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_random_broadcast(dtype):
    rng = np.random.default_rng(4)
    for _ in range(40):
        m, k, n = (int(v) for v in rng.integers(1, 5, size=3))
        batch = [int(d) for d in rng.integers(1, 4, size=rng.integers(0, 3))]
        a_batch = [d if rng.random() < 0.6 else 1 for d in batch][int(rng.integers(0, len(batch) + 1)):]
        b_batch = [d if rng.random() < 0.6 else 1 for d in batch][int(rng.integers(0, len(batch) + 1)):]
        a_shape = [k] if rng.random() < 0.15 else a_batch + [m, k]
        b_shape = [k] if rng.random() < 0.15 else b_batch + [k, n]
        a = random_array(rng, a_shape, dtype)
        b = random_array(rng, b_shape, dtype)
        assert compare_with_torch("matmul", [a, b], {}, torch.matmul, dtype,
                                  context=f"{a_shape} @ {b_shape}") == "ok"


# ---------------------------------------------------------------------------- conv2d


def random_conv_case(rng, dtype):
    groups = int(rng.choice([1, 1, 2, 3]))
    in_per_group = int(rng.integers(1, 3))
    channels = groups * in_per_group
    depthwise = rng.random() < 0.25
    if depthwise:  # groups = channels, one or two filters per channel
        groups, in_per_group = channels, 1
    out_channels = groups * int(rng.integers(1, 3))
    kernel = [int(v) for v in rng.integers(1, 4, size=2)]
    stride = [int(v) for v in rng.integers(1, 4, size=2)]  # includes stride > kernel
    padding = [int(v) for v in rng.integers(0, 4, size=2)]  # includes padding > kernel / 2
    dilation = [int(v) for v in rng.integers(1, 3, size=2)]
    height, width = (int(v) for v in rng.integers(1, 8, size=2))
    batch = int(rng.choice([0, 1, 2]))
    x = random_array(rng, [batch, channels, height, width], dtype)
    w = random_array(rng, [out_channels, in_per_group] + kernel, dtype)
    b = random_array(rng, [out_channels], dtype) if rng.random() < 0.7 else None
    activation = str(rng.choice(["none", "relu", "relu6"]))
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, activation=activation)
    return x, w, b, attrs


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_random_configurations(dtype):
    rng = np.random.default_rng(5)
    outcomes = []
    for _ in range(120):
        x, w, b, attrs = random_conv_case(rng, dtype)
        x = (x * 3).astype(dtype)  # so relu6 clips somewhere
        act = torch_activation(attrs["activation"])

        def fn(x, w, b, attrs=attrs, act=act):
            return act(F.conv2d(x, w, b, stride=attrs["stride"], padding=attrs["padding"],
                                dilation=attrs["dilation"], groups=attrs["groups"]))

        outcomes.append(compare_with_torch("conv2d", [x, w, b], attrs, fn, dtype,
                                           context=f"x{list(x.shape)} w{list(w.shape)}"))
    # The generator must exercise both valid and rejected (kernel larger than input) cases.
    assert outcomes.count("ok") > 60 and len(outcomes) - outcomes.count("ok") > 3


def test_conv2d_depthwise_and_unbatched():
    rng = np.random.default_rng(6)
    x = random_array(rng, [2, 4, 6, 5])
    w = random_array(rng, [4, 1, 3, 3])
    attrs = dict(stride=[1, 2], padding=[1, 1], groups=4)
    (y,) = run("conv2d", [x, w, None], attrs)
    expected = torch_reference(lambda x, w: F.conv2d(x, w, stride=[1, 2], padding=1, groups=4), [x, w], np.float32)
    assert_close(y, expected, rtol=2e-5, atol=2e-6)
    # Unbatched [C, H, W] input, single-value attributes.
    (y3,) = run("conv2d", [x[0], w], dict(stride=[2], padding=[1], groups=4))
    expected3 = torch_reference(lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=4), [x[0], w], np.float32)
    assert_close(y3, expected3, rtol=2e-5, atol=2e-6)


def test_conv2d_dynamic_batch_inference():
    out = _C.infer_types("conv2d", [("float32", [-1, 3, 9, 8]), ("float32", [6, 3, 3, 2]), None],
                         dict(stride=[2, 2], padding=[1, 0], dilation=[1, 2]))
    assert out == [("float32", [-1, 6, 5, 3])]


# ---------------------------------------------------------------------------- pooling


def random_pool_params(rng, with_dilation):
    kernel = [int(v) for v in rng.integers(1, 5, size=2)]
    stride = [] if rng.random() < 0.2 else [int(v) for v in rng.integers(1, 5, size=2)]
    # Mostly legal padding (<= kernel / 2), sometimes one more to check the error.
    padding = [int(rng.integers(0, k // 2 + (2 if rng.random() < 0.15 else 1))) for k in kernel]
    attrs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=bool(rng.random() < 0.5))
    if with_dilation:
        attrs["dilation"] = [int(v) for v in rng.integers(1, 3, size=2)]
    return attrs


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_random_configurations(dtype):
    rng = np.random.default_rng(7)
    outcomes = []
    for case in range(150):
        attrs = random_pool_params(rng, with_dilation=True)
        shape = [int(rng.choice([0, 1, 2])), int(rng.integers(1, 3))] + [int(v) for v in rng.integers(1, 9, size=2)]
        if case % 10 == 0:
            shape = shape[1:]  # unbatched
        x = random_array(rng, shape, dtype)
        if case % 7 == 0:  # ties and NaN
            x = np.round(x).astype(dtype)
            x.flat[:: max(1, x.size // 3)] = np.nan
        a = attrs

        def fn(x, a=a):
            return F.max_pool2d(x, a["kernel_size"], a["stride"] or None, a["padding"], a["dilation"],
                                ceil_mode=a["ceil_mode"])

        outcomes.append(compare_with_torch("max_pool2d", [x], attrs, fn, dtype, context=f"x{shape}"))
    assert outcomes.count("ok") > 70 and len(outcomes) - outcomes.count("ok") > 5


@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_pool2d_random_configurations(dtype):
    rng = np.random.default_rng(8)
    outcomes = []
    for case in range(150):
        attrs = random_pool_params(rng, with_dilation=False)
        attrs["count_include_pad"] = bool(rng.random() < 0.5)
        shape = [int(rng.choice([0, 1, 2])), int(rng.integers(1, 3))] + [int(v) for v in rng.integers(1, 9, size=2)]
        if case % 10 == 0:
            shape = shape[1:]
        x = random_array(rng, shape, dtype)
        a = attrs

        def fn(x, a=a):
            return F.avg_pool2d(x, a["kernel_size"], a["stride"] or None, a["padding"], ceil_mode=a["ceil_mode"],
                                count_include_pad=a["count_include_pad"])

        outcomes.append(compare_with_torch("avg_pool2d", [x], attrs, fn, dtype, context=f"x{shape}"))
    assert outcomes.count("ok") > 70 and len(outcomes) - outcomes.count("ok") > 5


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pool_ceil_mode_windows_past_the_edge(op):
    # Height 6, kernel 3, stride 2: ceil_mode adds a third window starting at 4 that hangs past
    # the bottom edge (floor mode has 2). Width 3, kernel 2, stride 2, padding 1: rounding up
    # would give 3 windows, but the third would start in the right padding (at 4 - 1 = 3 >= 3),
    # so PyTorch drops it and there are 2.
    rng = np.random.default_rng(9)
    x = random_array(rng, [2, 2, 6, 3])
    attrs = dict(kernel_size=[3, 2], stride=[2, 2], padding=[0, 1], ceil_mode=True)
    torch_fn = F.max_pool2d if op == "max_pool2d" else F.avg_pool2d
    (y,) = run(op, [x], attrs)
    assert y.shape == (2, 2, 3, 2)
    expected = torch_reference(lambda t: torch_fn(t, (3, 2), 2, (0, 1), ceil_mode=True), [x], np.float32)
    assert_close(y, expected, rtol=2e-5, atol=2e-6)
    (y_floor,) = run(op, [x], dict(attrs, ceil_mode=False))
    assert y_floor.shape == (2, 2, 2, 2)


def test_max_pool2d_all_minus_infinity():
    x = np.full([1, 1, 3, 3], -np.inf, dtype=np.float32)
    (y,) = run("max_pool2d", [x], dict(kernel_size=[2, 2], stride=[1, 1], padding=[1, 1]))
    assert y.shape == (1, 1, 4, 4) and np.all(y == -np.inf)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_avg_pool2d_random(dtype):
    rng = np.random.default_rng(10)
    for case in range(60):
        height, width = (int(v) for v in rng.integers(1, 10, size=2))
        output_size = [int(rng.integers(0 if case % 15 == 0 else 1, height + 3)),
                       int(rng.integers(1, width + 3))]
        shape = [int(rng.choice([0, 1, 2])), int(rng.integers(1, 4)), height, width]
        if case % 8 == 0:
            shape = shape[1:]
        x = random_array(rng, shape, dtype)
        assert compare_with_torch(
            "adaptive_avg_pool2d", [x], dict(output_size=output_size),
            lambda t, s=output_size: F.adaptive_avg_pool2d(t, s), dtype, context=f"x{shape} -> {output_size}") == "ok"


# ---------------------------------------------------------------------------- normalization


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_any_rank(dtype):
    rng = np.random.default_rng(11)
    for case in range(40):
        rank = int(rng.integers(2, 6))
        shape = [int(rng.integers(0 if case % 9 == 0 else 1, 3)), int(rng.integers(1, 5))]
        shape += [int(d) for d in rng.integers(1, 4, size=rank - 2)]
        channels = shape[1]
        x = random_array(rng, shape, dtype)
        mean = random_array(rng, [channels], dtype)
        var = random_array(rng, [channels], dtype, low=0.1, high=3.0)
        weight = random_array(rng, [channels], dtype) if case % 2 else None
        bias = random_array(rng, [channels], dtype) if case % 3 else None
        eps = float(rng.choice([1e-5, 1e-3, 0.5]))
        assert compare_with_torch(
            "batch_norm", [x, mean, var, weight, bias], dict(eps=eps),
            lambda x, m, v, w, b, eps=eps: F.batch_norm(x, m, v, w, b, training=False, eps=eps),
            dtype, context=f"x{shape}") == "ok"


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_random(dtype):
    rng = np.random.default_rng(12)
    for case in range(40):
        shape = [int(d) for d in rng.integers(1, 5, size=rng.integers(1, 5))]
        if case % 10 == 0:
            shape = [0] + shape
        normalized = shape[len(shape) - int(rng.integers(1, len(shape) + 1)):]
        x = (random_array(rng, shape, dtype) * 10 + 5).astype(dtype)  # a mean far from zero
        weight = random_array(rng, normalized, dtype) if case % 2 else None
        bias = random_array(rng, normalized, dtype) if case % 3 else None
        eps = float(rng.choice([1e-5, 0.1]))
        assert compare_with_torch(
            "layer_norm", [x, weight, bias], dict(normalized_shape=normalized, eps=eps),
            lambda x, w, b, n=normalized, eps=eps: F.layer_norm(x, n, w, b, eps=eps),
            dtype, context=f"x{shape} normalized {normalized}") == "ok"


# ---------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_random(op, dtype):
    rng = np.random.default_rng(13)
    torch_fn = F.softmax if op == "softmax" else F.log_softmax
    for case in range(40):
        shape = [int(d) for d in rng.integers(1, 5, size=rng.integers(0, 5))]
        if case % 10 == 5 and shape:
            shape[0] = 0
        dim = int(rng.integers(-len(shape), len(shape))) if shape else int(rng.choice([0, -1]))
        # Large magnitudes: a naive exp overflows float32.
        x = random_array(rng, shape, dtype, low=-300.0, high=300.0)
        if case % 4 == 0 and x.size:
            x.flat[0] = -np.inf
        assert compare_with_torch(op, [x], dict(dim=dim), lambda t, d=dim: torch_fn(t, dim=d), dtype,
                                  context=f"x{shape} dim {dim}") == "ok"


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_default_dim_and_all_minus_infinity_row(op):
    x = np.array([[1.0, 2.0, 3.0], [-np.inf, -np.inf, -np.inf], [1e30, 0.0, -1e30]], dtype=np.float32)
    (y,) = run(op, [x])
    torch_fn = F.softmax if op == "softmax" else F.log_softmax
    expected = torch_fn(torch.from_numpy(x), dim=-1).numpy()
    assert np.isnan(y[1]).all()
    assert_close(y, expected, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------- errors

f32 = np.float32
ERROR_CASES = [
    # (op, input shapes (None = absent), attrs, words the message must contain)
    ("linear", [[2, 3], [4, 5]], {}, ["'input'", "[2, 3]", "[4, 5]"]),
    ("linear", [[2, 3], [3]], {}, ["'weight'", "[3]"]),
    ("linear", [[], [4, 3]], {}, ["'input'"]),
    ("linear", [[2, 3], [4, 3], [5]], {}, ["'bias'", "[5]", "[4, 3]"]),
    ("linear", [[2, 3], [4, 3]], {"activation": "tanh"}, ["'activation'", "tanh"]),
    ("matmul", [[], [3]], {}, ["[]", "[3]"]),
    ("matmul", [[2, 3], [4, 5]], {}, ["[2, 3]", "[4, 5]"]),
    ("matmul", [[2, 3, 4], [5, 4, 2]], {}, ["[2, 3, 4]", "[5, 4, 2]", "batch"]),
    ("conv2d", [[3, 8], [4, 3, 3, 3]], {}, ["'input'", "[3, 8]"]),
    ("conv2d", [[1, 3, 8, 8], [4, 3, 3]], {}, ["'weight'", "[4, 3, 3]"]),
    ("conv2d", [[1, 4, 8, 8], [4, 3, 3, 3]], {}, ["'input'", "[1, 4, 8, 8]", "[4, 3, 3, 3]", "channels"]),
    ("conv2d", [[1, 4, 8, 8], [6, 2, 3, 3]], {"groups": 4}, ["groups", "[6, 2, 3, 3]", "[1, 4, 8, 8]"]),
    ("conv2d", [[1, 4, 8, 8], [3, 2, 3, 3]], {"groups": 2}, ["groups", "[3, 2, 3, 3]"]),
    ("conv2d", [[1, 3, 8, 8], [4, 3, 3, 3]], {"groups": 0}, ["'groups'"]),
    ("conv2d", [[1, 3, 8, 8], [4, 3, 3, 3]], {"stride": [0, 1]}, ["'stride'"]),
    ("conv2d", [[1, 3, 8, 8], [4, 3, 3, 3]], {"stride": [1, 1, 1]}, ["'stride'", "2 values"]),
    ("conv2d", [[1, 3, 8, 8], [4, 3, 3, 3]], {"padding": [-1, 0]}, ["'padding'"]),
    ("conv2d", [[1, 3, 8, 8], [4, 3, 3, 3]], {"dilation": [1, 0]}, ["'dilation'"]),
    ("conv2d", [[1, 3, 2, 8], [4, 3, 3, 3]], {}, ["'input'", "[1, 3, 2, 8]", "[4, 3, 3, 3]"]),
    ("conv2d", [[1, 3, 4, 4], [4, 3, 3, 3]], {"dilation": [2, 2]}, ["[1, 3, 4, 4]", "dilated"]),
    ("conv2d", [[1, 3, 8, 8], [4, 3, 3, 3], [3]], {}, ["'bias'", "[3]"]),
    ("conv2d", [[1, 3, 8, 8], [4, 3, 3, 3]], {"activation": "gelu"}, ["'activation'"]),
    ("max_pool2d", [[1, 3, 8, 8]], {"kernel_size": [3, 3], "padding": [2, 2]}, ["'padding'", "[2, 2]", "[3, 3]"]),
    ("max_pool2d", [[1, 3, 8, 8]], {}, ["kernel_size"]),
    ("max_pool2d", [[1, 3, 8, 8]], {"kernel_size": [0, 2]}, ["'kernel_size'"]),
    ("max_pool2d", [[3, 8]], {"kernel_size": [2, 2]}, ["'x'", "[3, 8]"]),
    ("max_pool2d", [[1, 0, 8, 8]], {"kernel_size": [2, 2]}, ["'x'", "[1, 0, 8, 8]"]),
    ("max_pool2d", [[1, 3, 2, 2]], {"kernel_size": [3, 3]}, ["'x'", "[1, 3, 2, 2]", "[3, 3]"]),
    ("max_pool2d", [[1, 3, 8, 8]], {"kernel_size": [2, 2], "stride": [1, 2, 3]}, ["'stride'"]),
    ("max_pool2d", [[1, 3, 8, 8]], {"kernel_size": [2, 2], "dilation": [0, 1]}, ["'dilation'"]),
    ("avg_pool2d", [[1, 3, 8, 8]], {"kernel_size": [2, 4], "padding": [0, 3]}, ["'padding'", "[2, 4]"]),
    ("avg_pool2d", [[1, 3, 8, 8]], {"kernel_size": [2, 2], "dilation": [2, 2]}, ["unknown attribute", "'dilation'"]),
    ("avg_pool2d", [[8, 8]], {"kernel_size": [2, 2]}, ["'x'", "[8, 8]"]),
    ("adaptive_avg_pool2d", [[1, 3, 8, 8]], {"output_size": [2]}, ["'output_size'"]),
    ("adaptive_avg_pool2d", [[1, 3, 8, 8]], {"output_size": [2, -1]}, ["'output_size'"]),
    ("adaptive_avg_pool2d", [[1, 3, 0, 8]], {"output_size": [2, 2]}, ["'x'", "[1, 3, 0, 8]"]),
    ("batch_norm", [[4], [4], [4]], {}, ["'x'", "[4]"]),
    ("batch_norm", [[2, 4, 3], [3], [4]], {}, ["'running_mean'", "[3]", "[2, 4, 3]"]),
    ("batch_norm", [[2, 4, 3], [4], [4], [5]], {}, ["'weight'", "[5]"]),
    ("batch_norm", [[2, 4, 3], [4], [4], None, [2]], {}, ["'bias'", "[2]"]),
    ("layer_norm", [[2, 3, 4]], {"normalized_shape": [3]}, ["'normalized_shape'", "[3]", "[2, 3, 4]"]),
    ("layer_norm", [[2, 3, 4]], {"normalized_shape": []}, ["'normalized_shape'"]),
    ("layer_norm", [[2, 3, 4], [3, 4], [4]], {"normalized_shape": [3, 4]}, ["'bias'", "[4]", "[3, 4]"]),
    ("layer_norm", [[2, 3, 4], [4]], {"normalized_shape": [3, 4]}, ["'weight'", "[4]"]),
    ("softmax", [[2, 3]], {"dim": 2}, ["'dim'", "2"]),
    ("log_softmax", [[2, 3]], {"dim": -3}, ["'dim'", "-3"]),
]


@pytest.mark.parametrize("op, shapes, attrs, words", ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_invalid_arguments_are_rejected(op, shapes, attrs, words):
    inputs = [None if s is None else np.zeros(s, dtype=f32) for s in shapes]
    with pytest.raises(InvalidArgumentError) as info:
        run(op, inputs, attrs)
    message = str(info.value)
    assert message.startswith(op), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize("op, shapes", [
    ("linear", [[2, 3], [4, 3]]), ("matmul", [[2, 3], [3, 4]]), ("conv2d", [[1, 3, 4, 4], [2, 3, 1, 1]]),
    ("batch_norm", [[2, 3], [3], [3]]), ("layer_norm", [[2, 3]]),
])
def test_mixed_dtypes_are_rejected(op, shapes):
    inputs = [np.zeros(shapes[0], np.float32)] + [np.zeros(s, np.float64) for s in shapes[1:]]
    attrs = {"normalized_shape": [3]} if op == "layer_norm" else {}
    if op == "layer_norm":
        inputs.append(np.zeros([3], np.float64))
    with pytest.raises(InvalidArgumentError, match=f"^{op}.*float64"):
        run(op, inputs, attrs)


def test_integer_inputs_are_rejected_by_the_schema():
    with pytest.raises(InvalidArgumentError, match="^softmax.*'x'.*int64"):
        run("softmax", [np.zeros([2, 3], np.int64)])


# ---------------------------------------------------------------------------- shape inference

DYNAMIC_CASES = [
    # (op, input types, attrs, expected output shape); -1 = unknown until run time
    ("linear", [[-1, 7, 5], [3, 5], [3]], {}, [-1, 7, 3]),
    ("matmul", [[-1, 4, 5], [5, 2]], {}, [-1, 4, 2]),
    ("matmul", [[-1, 5], [5]], {}, [-1]),
    ("matmul", [[2, 1, 4, 5], [-1, 5, 3]], {}, [2, -1, 4, 3]),
    ("conv2d", [[-1, 3, -1, 9], [6, 1, 3, 3]], {"groups": 3, "stride": [2, 2], "padding": [1, 1]},
     [-1, 6, -1, 5]),
    ("max_pool2d", [[-1, 3, 7, -1]], {"kernel_size": [3, 3], "stride": [2, 2], "ceil_mode": True},
     [-1, 3, 3, -1]),
    ("avg_pool2d", [[-1, 3, 8, 8]], {"kernel_size": [2, 2]}, [-1, 3, 4, 4]),
    ("adaptive_avg_pool2d", [[-1, 3, -1, -1]], {"output_size": [1, 1]}, [-1, 3, 1, 1]),
    ("batch_norm", [[-1, 4, -1], [4], [4], [4], [4]], {}, [-1, 4, -1]),
    ("layer_norm", [[-1, -1, 6], [6], [6]], {"normalized_shape": [6]}, [-1, -1, 6]),
    ("softmax", [[-1, 10]], {"dim": 1}, [-1, 10]),
    ("log_softmax", [[-1, 10]], {}, [-1, 10]),
]


@pytest.mark.parametrize("op, shapes, attrs, expected", DYNAMIC_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(DYNAMIC_CASES)])
def test_shape_inference_keeps_unknown_dims(op, shapes, attrs, expected):
    out = _C.infer_types(op, [("float32", s) for s in shapes], attrs)
    assert out == [("float32", expected)]


def test_shape_inference_still_checks_known_dims():
    with pytest.raises(InvalidArgumentError, match="^conv2d.*channels"):
        _C.infer_types("conv2d", [("float32", [-1, 4, -1, -1]), ("float32", [8, 3, 3, 3])], {})
    with pytest.raises(InvalidArgumentError, match="^linear.*features"):
        _C.infer_types("linear", [("float32", [-1, 4]), ("float32", [8, 3])], {})
