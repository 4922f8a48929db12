"""Backward ops of conv2d and pooling against torch.autograd: conv2d_grad_input,
conv2d_grad_weight, max_pool2d_grad, avg_pool2d_grad and adaptive_avg_pool2d_grad.

Each seeded random case runs the forward op in PyTorch (float64) with requires_grad inputs,
back-propagates a random grad_output, and compares the input/weight gradients with the op's
output cast to the tested dtype. An adjoint identity checks conv2d_grad_input against the
forward conv2d reference kernel without PyTorch.
"""
import numpy as np
import pytest

from graphruntime.errors import InvalidArgumentError
from oracle import assert_close, random_array, run

# Ops this module covers (tests/kernels/test_registry.py checks every op has a test).
TESTED_OPS = {'conv2d_grad_input', 'conv2d_grad_weight', 'max_pool2d_grad', 'avg_pool2d_grad', 'adaptive_avg_pool2d_grad'}

torch = pytest.importorskip("torch")
F = torch.nn.functional

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def torch_gradients(forward, arrays, grad_output):
    """Gradients of sum(forward(*arrays) * grad_output) with respect to each array (float64)."""
    tensors = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    y = forward(*tensors)
    y.backward(torch.from_numpy(np.asarray(grad_output, dtype=np.float64)))
    return [t.grad.numpy() for t in tensors]


def torch_output_shape(forward, arrays):
    with torch.no_grad():
        return list(forward(*[torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in arrays]).shape)


# ---------------------------------------------------------------------------- conv2d


def random_conv_case(rng):
    """A conv2d configuration PyTorch accepts: groups (incl. depthwise), stride > kernel,
    padding > kernel / 2, dilation, empty batch, unbatched input."""
    while True:
        groups = int(rng.choice([1, 2, 3]))
        in_per_group = int(rng.integers(1, 3))
        if rng.random() < 0.25:  # depthwise
            in_per_group = 1
        channels = groups * in_per_group
        out_channels = groups * int(rng.integers(1, 3))
        kernel = [int(v) for v in rng.integers(1, 4, size=2)]
        attrs = dict(stride=[int(v) for v in rng.integers(1, 4, size=2)],
                     padding=[int(v) for v in rng.integers(0, 4, size=2)],
                     dilation=[int(v) for v in rng.integers(1, 3, size=2)], groups=groups)
        shape = [int(rng.choice([0, 1, 2])), channels] + [int(v) for v in rng.integers(1, 8, size=2)]
        if rng.random() < 0.1:
            shape = shape[1:]
        effective = [d * (k - 1) + 1 for d, k in zip(attrs["dilation"], kernel)]
        if all(s + 2 * p >= e for s, p, e in zip(shape[-2:], attrs["padding"], effective)):
            return shape, [out_channels, in_per_group] + kernel, attrs


def torch_conv(attrs):
    return lambda x, w: F.conv2d(x, w, stride=attrs["stride"], padding=attrs["padding"],
                                 dilation=attrs["dilation"], groups=attrs["groups"])


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_grads_match_autograd(dtype):
    rng = np.random.default_rng(21)
    for _ in range(80):
        x_shape, w_shape, attrs = random_conv_case(rng)
        x = random_array(rng, x_shape, dtype)
        w = random_array(rng, w_shape, dtype)
        forward = torch_conv(attrs)
        grad_output = random_array(rng, torch_output_shape(forward, [x, w]), dtype)
        grad_x, grad_w = torch_gradients(forward, [x, w], grad_output)
        context = f"x{x_shape} w{w_shape}"
        (got_x,) = run("conv2d_grad_input", [grad_output, w], dict(attrs, input_shape=x_shape))
        assert_close(got_x, grad_x.astype(dtype), context="conv2d_grad_input " + context, **TOLERANCE[dtype])
        (got_w,) = run("conv2d_grad_weight", [grad_output, x], dict(attrs, weight_shape=w_shape))
        assert_close(got_w, grad_w.astype(dtype), context="conv2d_grad_weight " + context, **TOLERANCE[dtype])


def test_conv2d_grad_input_with_stride_leaving_rows_unused():
    # Height 6, kernel 2, stride 3: rows 2 and 5 are never read, so their gradient is zero; the
    # input_shape attribute tells 6 from 5 (both give 2 output rows).
    rng = np.random.default_rng(22)
    w = random_array(rng, [3, 2, 2, 2])
    grad_output = random_array(rng, [1, 3, 2, 2])
    for height in (5, 6):
        attrs = dict(stride=[3, 3], input_shape=[1, 2, height, 6])
        (grad_x,) = run("conv2d_grad_input", [grad_output, w], attrs)
        assert grad_x.shape == (1, 2, height, 6)
        assert np.all(grad_x[:, :, 2, :] == 0) and np.all(grad_x[:, :, :, 2] == 0)
        x = random_array(rng, [1, 2, height, 6])
        expected, _ = torch_gradients(lambda x, w: F.conv2d(x, w, stride=3), [x, w], grad_output)
        assert_close(grad_x, expected.astype(np.float32), rtol=2e-5, atol=2e-6)


def test_conv2d_grad_input_is_the_adjoint_of_conv2d():
    # <conv2d(x, w), g> == <x, conv2d_grad_input(g, w)> and == <w, conv2d_grad_weight(g, x)>,
    # using only Ember's own kernels.
    rng = np.random.default_rng(23)
    for _ in range(10):
        x_shape, w_shape, attrs = random_conv_case(rng)
        x = random_array(rng, x_shape, np.float64)
        w = random_array(rng, w_shape, np.float64)
        (y,) = run("conv2d", [x, w], attrs)
        g = random_array(rng, y.shape, np.float64)
        (grad_x,) = run("conv2d_grad_input", [g, w], dict(attrs, input_shape=x_shape))
        (grad_w,) = run("conv2d_grad_weight", [g, x], dict(attrs, weight_shape=w_shape))
        np.testing.assert_allclose(np.sum(x * grad_x), np.sum(y * g), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(np.sum(w * grad_w), np.sum(y * g), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------- pooling


def random_pool_case(rng, with_dilation):
    """A pooling configuration PyTorch accepts, with ceil_mode windows past the edge."""
    while True:
        kernel = [int(v) for v in rng.integers(1, 5, size=2)]
        attrs = dict(kernel_size=kernel,
                     stride=[] if rng.random() < 0.2 else [int(v) for v in rng.integers(1, 5, size=2)],
                     padding=[int(rng.integers(0, k // 2 + 1)) for k in kernel],
                     ceil_mode=bool(rng.random() < 0.5))
        if with_dilation:
            attrs["dilation"] = [int(v) for v in rng.integers(1, 3, size=2)]
        shape = [int(rng.choice([0, 1, 2])), int(rng.integers(1, 3))] + [int(v) for v in rng.integers(1, 9, size=2)]
        if rng.random() < 0.1:
            shape = shape[1:]
        try:
            torch_output_shape(lambda x: F.max_pool2d(x, kernel, attrs["stride"] or None, attrs["padding"],
                                                      attrs.get("dilation", 1), ceil_mode=attrs["ceil_mode"]),
                               [np.zeros(shape)])
        except RuntimeError:
            continue
        return shape, attrs


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_grad_matches_autograd(dtype):
    rng = np.random.default_rng(24)
    skipped = 0
    for case in range(100):
        shape, attrs = random_pool_case(rng, with_dilation=True)
        x = random_array(rng, shape, dtype)
        if case % 3 == 0:  # ties: the first maximum of the window gets the gradient
            x = np.round(x).astype(dtype)

        def forward(x, a=attrs):
            return F.max_pool2d(x, a["kernel_size"], a["stride"] or None, a["padding"], a["dilation"],
                                ceil_mode=a["ceil_mode"])

        (y,) = run("max_pool2d", [x], attrs)
        if np.isinf(y).any():
            # A window with no tap inside the input (padding plus dilation): its -inf output
            # depends on no input; test_max_pool2d_grad_window_outside_the_input covers it.
            skipped += 1
            continue
        grad_output = random_array(rng, y.shape, dtype)
        (expected,) = torch_gradients(forward, [x], grad_output)
        (got,) = run("max_pool2d_grad", [grad_output, x], attrs)
        assert_close(got, expected.astype(dtype), context=f"max_pool2d_grad x{shape} {attrs}", **TOLERANCE[dtype])
    assert skipped < 10


def test_max_pool2d_grad_window_outside_the_input():
    # Width 1, kernel 2, dilation 2, padding 1: the window's taps are at -1 and 1, both outside
    # the input, so the output is -inf and depends on no input: it gets no gradient. (ATen's
    # CPU backward writes it to the element after the clipped window start, outside the window.)
    x = np.array([[[[1.0], [2.0], [3.0]]]], dtype=np.float32)
    attrs = dict(kernel_size=[2, 2], stride=[4, 3], padding=[0, 1], dilation=[2, 2])
    (y,) = run("max_pool2d", [x], attrs)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == -np.inf
    (grad_x,) = run("max_pool2d_grad", [np.ones_like(y), x], attrs)
    assert np.all(grad_x == 0)
    # With one tap inside, the gradient goes there.
    attrs["padding"] = [1, 0]
    attrs["dilation"] = [2, 1]
    (y,) = run("max_pool2d", [x], dict(attrs, kernel_size=[2, 1]))
    (grad_x,) = run("max_pool2d_grad", [np.ones_like(y), x], dict(attrs, kernel_size=[2, 1]))
    assert y.ravel().tolist() == [2.0] and grad_x.ravel().tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_pool2d_grad_matches_autograd(dtype):
    rng = np.random.default_rng(25)
    for case in range(100):
        shape, attrs = random_pool_case(rng, with_dilation=False)
        attrs["count_include_pad"] = bool(case % 2)
        x = random_array(rng, shape, dtype)

        def forward(x, a=attrs):
            return F.avg_pool2d(x, a["kernel_size"], a["stride"] or None, a["padding"], ceil_mode=a["ceil_mode"],
                                count_include_pad=a["count_include_pad"])

        grad_output = random_array(rng, torch_output_shape(forward, [x]), dtype)
        (expected,) = torch_gradients(forward, [x], grad_output)
        (got,) = run("avg_pool2d_grad", [grad_output], dict(attrs, input_shape=shape))
        assert_close(got, expected.astype(dtype), context=f"avg_pool2d_grad x{shape} {attrs}", **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_avg_pool2d_grad_matches_autograd(dtype):
    rng = np.random.default_rng(26)
    for case in range(50):
        height, width = (int(v) for v in rng.integers(1, 10, size=2))
        output_size = [int(rng.integers(1, height + 3)), int(rng.integers(1, width + 3))]
        shape = [int(rng.choice([0, 1, 2])), int(rng.integers(1, 4)), height, width]
        if case % 8 == 0:
            shape = shape[1:]
        x = random_array(rng, shape, dtype)
        forward = lambda x, s=output_size: F.adaptive_avg_pool2d(x, s)  # noqa: E731
        grad_output = random_array(rng, torch_output_shape(forward, [x]), dtype)
        (expected,) = torch_gradients(forward, [x], grad_output)
        (got,) = run("adaptive_avg_pool2d_grad", [grad_output], dict(input_shape=shape))
        assert_close(got, expected.astype(dtype), context=f"adaptive_avg_pool2d_grad x{shape} -> {output_size}",
                     **TOLERANCE[dtype])


# ---------------------------------------------------------------------------- errors

ERROR_CASES = [
    # (op, input shapes, attrs, words the message must contain)
    ("conv2d_grad_input", [[4, 6, 6], [4, 3, 3, 3]], {"input_shape": [1, 3, 8, 8]},
     ["'grad_output'", "[4, 6, 6]", "[1, 3, 8, 8]", "[1, 4, 6, 6]"]),
    ("conv2d_grad_input", [[1, 4, 5, 5], [4, 3, 3, 3]], {"input_shape": [1, 3, 8, 8]},
     ["'grad_output'", "[1, 4, 5, 5]", "[1, 4, 6, 6]"]),
    ("conv2d_grad_input", [[1, 4, 6, 6], [4, 3, 3, 3]], {"input_shape": [1, 2, 8, 8]},
     ["'input_shape'", "[1, 2, 8, 8]", "[4, 3, 3, 3]"]),
    ("conv2d_grad_input", [[1, 4, 6, 6], [4, 3, 3, 3]], {"input_shape": [3, 8]}, ["'input_shape'", "[3, 8]"]),
    ("conv2d_grad_input", [[1, 4, 6, 6], [4, 3, 3, 3]], {"input_shape": [1, 3, -8, 8]}, ["'input_shape'"]),
    ("conv2d_grad_input", [[1, 4, 6, 6], [4, 3, 3, 3]], {}, ["input_shape"]),
    ("conv2d_grad_input", [[1, 4, 6, 6], [4, 3, 3, 3]], {"input_shape": [1, 3, 8, 8], "stride": [0, 1]},
     ["'stride'"]),
    ("conv2d_grad_weight", [[1, 4, 6, 6], [1, 3, 8, 8]], {"weight_shape": [4, 3, 2, 2]},
     ["'grad_output'", "[1, 4, 6, 6]", "[1, 4, 7, 7]"]),
    ("conv2d_grad_weight", [[1, 4, 6, 6], [1, 3, 8, 8]], {"weight_shape": [4, 3, 3]}, ["'weight_shape'"]),
    ("conv2d_grad_weight", [[1, 4, 6, 6], [1, 3, 8, 8]], {"weight_shape": [4, 2, 3, 3]},
     ["'input'", "[1, 3, 8, 8]", "[4, 2, 3, 3]"]),
    ("conv2d_grad_weight", [[1, 4, 6, 6], [1, 4, 8, 8]], {"weight_shape": [4, 2, 3, 3], "groups": 3},
     ["groups"]),
    ("max_pool2d_grad", [[1, 3, 4, 4], [1, 3, 8, 8]], {"kernel_size": [3, 3]},
     ["'grad_output'", "[1, 3, 4, 4]", "[1, 3, 2, 2]"]),
    ("max_pool2d_grad", [[1, 3, 4, 4], [1, 3, 8, 8]], {"kernel_size": [2, 2], "padding": [2, 2]}, ["'padding'"]),
    ("max_pool2d_grad", [[3, 4, 4], [8, 8]], {"kernel_size": [2, 2]}, ["'x'", "[8, 8]"]),
    ("avg_pool2d_grad", [[1, 3, 4, 4]], {"kernel_size": [2, 2], "input_shape": [1, 3, 9, 9], "ceil_mode": True},
     ["'grad_output'", "[1, 3, 4, 4]", "[1, 3, 5, 5]"]),
    ("avg_pool2d_grad", [[1, 3, 4, 4]], {"kernel_size": [2, 2]}, ["input_shape"]),
    ("avg_pool2d_grad", [[1, 3, 4, 4]], {"kernel_size": [2, 2], "input_shape": [1, 8, 8]}, ["'grad_output'"]),
    ("avg_pool2d_grad", [[1, 3, 4, 4]], {"kernel_size": [2, 2], "input_shape": [8, 8]}, ["'input_shape'", "[8, 8]"]),
    ("adaptive_avg_pool2d_grad", [[1, 3, 2, 2]], {"input_shape": [1, 4, 8, 8]},
     ["'grad_output'", "[1, 3, 2, 2]", "[1, 4, 8, 8]"]),
    ("adaptive_avg_pool2d_grad", [[1, 3, 2, 2]], {"input_shape": [3, 8, 8]}, ["'grad_output'"]),
    ("adaptive_avg_pool2d_grad", [[1, 3, 2, 2]], {"input_shape": [1, 3, 0, 8]}, ["'input_shape'"]),
    ("adaptive_avg_pool2d_grad", [[1, 3, 2, 2]], {"input_shape": [8]}, ["'input_shape'"]),
]


@pytest.mark.parametrize("op, shapes, attrs, words", ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_invalid_arguments_are_rejected(op, shapes, attrs, words):
    inputs = [np.zeros(s, dtype=np.float32) for s in shapes]
    with pytest.raises(InvalidArgumentError) as info:
        run(op, inputs, attrs)
    message = str(info.value)
    assert message.startswith(op), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize("op, attrs", [
    ("conv2d_grad_input", {"input_shape": [1, 3, 4, 4]}),
    ("conv2d_grad_weight", {"weight_shape": [2, 3, 3, 3]}),
    ("max_pool2d_grad", {"kernel_size": [3, 3]}),
])
def test_mixed_dtypes_are_rejected(op, attrs):
    second = {"conv2d_grad_input": [2, 3, 3, 3], "conv2d_grad_weight": [1, 3, 4, 4],
              "max_pool2d_grad": [1, 2, 4, 4]}[op]
    grad_output = np.zeros([1, 2, 2, 2], np.float32)
    with pytest.raises(InvalidArgumentError, match=f"^{op}.*float64"):
        run(op, [grad_output, np.zeros(second, np.float64)], attrs)
