"""Autograd without PyTorch: finite-difference gradcheck of every differentiable primitive
(float64), and the tape's semantics (accumulation, retain_graph, hooks, no_grad, errors)."""
import numpy as np
import pytest

import frontend
import frontend.nn.functional as F
from frontend.autograd import GradcheckError, gradcheck
from frontend.autograd.rules import NOT_DIFFERENTIABLE, RULES


def rand(*shape, low=-1.0, high=1.0, seed=0):
    rng = np.random.default_rng(seed + len(shape))
    return frontend.tensor(rng.uniform(low, high, shape), dtype=frontend.float64, requires_grad=True)


def distinct(*shape):
    n = int(np.prod(shape))
    vals = np.random.default_rng(n).permutation(n).reshape(shape) * 0.37 - n * 0.1
    return frontend.tensor(vals, dtype=frontend.float64, requires_grad=True)


def index(high, *shape):
    return frontend.tensor(np.random.default_rng(3).integers(0, high, shape))


# op name (the primitive whose rule is exercised) -> (function, inputs)
GRADCHECK_CASES = [
    ("add", lambda a, b: a + b, lambda: (rand(2, 3), rand(3))),
    ("sub", lambda a, b: a - b, lambda: (rand(2, 1), rand(3))),
    ("mul", lambda a, b: a * b, lambda: (rand(2, 3), rand(2, 1))),
    ("div", lambda a, b: a / b, lambda: (rand(2, 3), rand(3, low=0.5, high=2))),
    ("pow", lambda a, b: a ** b, lambda: (rand(2, 3, low=0.5, high=2), rand(2, 3))),
    ("maximum", frontend.maximum, lambda: (distinct(2, 3), distinct(3) * 0.9)),
    ("minimum", frontend.minimum, lambda: (distinct(2, 3), distinct(3) * 0.9)),
    ("where", lambda a, b: frontend.where(a > 0, a, b), lambda: (rand(2, 3), rand(3))),
    ("neg", lambda a: -a, lambda: (rand(3),)),
    ("abs", frontend.abs, lambda: (rand(3, low=0.1),)),
    ("exp", frontend.exp, lambda: (rand(3),)),
    ("log", frontend.log, lambda: (rand(3, low=0.5, high=2),)),
    ("sqrt", frontend.sqrt, lambda: (rand(3, low=0.5, high=2),)),
    ("rsqrt", frontend.rsqrt, lambda: (rand(3, low=0.5, high=2),)),
    ("erf", frontend.erf, lambda: (rand(3),)),
    ("sigmoid", frontend.sigmoid, lambda: (rand(3),)),
    ("tanh", frontend.tanh, lambda: (rand(3),)),
    ("silu", F.silu, lambda: (rand(3),)),
    ("hardswish", F.hardswish, lambda: (rand(5, low=-5, high=5),)),
    ("hardsigmoid", F.hardsigmoid, lambda: (rand(5, low=-5, high=5),)),
    ("relu", F.relu, lambda: (rand(5),)),
    ("relu6", F.relu6, lambda: (rand(5, low=-3, high=9),)),
    ("clamp", lambda a: a.clamp(-0.5, 0.5), lambda: (rand(6),)),
    ("leaky_relu", lambda a: F.leaky_relu(a, 0.1), lambda: (rand(5),)),
    ("gelu", F.gelu, lambda: (rand(5),)),
    ("gelu", lambda a: F.gelu(a, approximate="tanh"), lambda: (rand(5),)),
    ("cast", lambda a: a.float().double() * 1, lambda: (rand(3),), dict(eps=1e-2, atol=1e-3)),
    ("matmul", frontend.matmul, lambda: (rand(2, 3, 4), rand(4, 2))),
    ("matmul", frontend.matmul, lambda: (rand(4), rand(2, 4, 3))),
    ("linear", F.linear, lambda: (rand(2, 3), rand(4, 3), rand(4))),
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), lambda: (rand(1, 2, 5, 5), rand(3, 2, 3, 3), rand(3))),
    ("conv2d", lambda x, w: F.conv2d(x, w, groups=2, dilation=2), lambda: (rand(1, 4, 6, 6), rand(2, 2, 2, 2))),
    ("max_pool2d", lambda x: F.max_pool2d(x, 2), lambda: (distinct(1, 2, 4, 4),)),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1), lambda: (rand(1, 2, 5, 5),)),
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (2, 2)), lambda: (rand(1, 2, 5, 5),)),
    ("batch_norm", lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b), lambda: (
        rand(2, 3, 2, 2), rand(3), rand(3, low=0.5, high=2), rand(3), rand(3))),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (4,), w, b), lambda: (rand(2, 4), rand(4), rand(4))),
    ("softmax", lambda x: x.softmax(1), lambda: (rand(2, 4),)),
    ("log_softmax", lambda x: x.log_softmax(0), lambda: (rand(3, 2),)),
    ("sum", lambda x: x.sum(1, keepdim=True), lambda: (rand(2, 3, 2),)),
    ("mean", lambda x: x.mean((0, 2)), lambda: (rand(2, 3, 2),)),
    ("max", lambda x: x.max(1)[0], lambda: (distinct(2, 3),)),
    ("min", lambda x: frontend.amin(x, 0), lambda: (distinct(2, 3),)),
    ("var", lambda x: x.var(1), lambda: (rand(2, 4),)),
    ("reshape", lambda x: x.reshape(3, 2), lambda: (rand(2, 3),)),
    ("flatten", lambda x: x.flatten(), lambda: (rand(2, 3),)),
    ("transpose", lambda x: x.permute(1, 2, 0), lambda: (rand(2, 3, 4),)),
    ("expand", lambda x: x.expand(2, 3, 4), lambda: (rand(3, 1),)),
    ("concat", lambda a, b: frontend.cat([a, b], 1), lambda: (rand(2, 2), rand(2, 3))),
    ("split", lambda a: a.split([1, 2], 1)[1] * 2, lambda: (rand(2, 3),)),
    ("slice", lambda a: a[1:, ::2], lambda: (rand(3, 5),)),
    ("slice", lambda a: a[::3, -2:], lambda: (rand(7, 4),)),
    ("pad", lambda a: F.pad(a, (1, 2, -1, 0)), lambda: (rand(3, 2),)),
    ("gather", lambda a: frontend.gather(a, 1, index(4, 2, 3)), lambda: (rand(3, 4),)),
    ("index_select", lambda a: frontend.index_select(a, 0, index(3, 5)), lambda: (rand(3, 2),)),
    ("embedding", lambda w: F.embedding(index(5, 2, 3), w), lambda: (rand(5, 2),)),
]


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(GRADCHECK_CASES)])
def test_gradcheck(case):
    op, fn, make = case[:3]
    options = case[3] if len(case) > 3 else {}
    assert gradcheck(fn, make(), **options)


def test_every_rule_has_a_gradcheck_case():
    covered = {c[0] for c in GRADCHECK_CASES}
    missing = set(RULES) - covered - {"sign"}  # sign's derivative is 0 almost everywhere
    assert not missing, f"rules without a gradcheck case: {sorted(missing)}"


def test_registered_ops_are_differentiable_or_declared_not():
    from graphruntime import _C
    names = {s["name"] for s in _C.op_schemas()}
    # int8 ops belong to graph mode (mobile); the eager front end never records them.
    graph_only = {n for n in names if n.startswith(("quantize", "dequantize", "quantized_"))}
    unknown = names - set(RULES) - NOT_DIFFERENTIABLE - graph_only
    assert not unknown, f"registered ops with neither a gradient rule nor a not-differentiable entry: {sorted(unknown)}"


def test_gradcheck_detects_a_wrong_rule(monkeypatch):
    def bad_exp(ctx, g):
        return g  # wrong: should be g * exp(x)
    monkeypatch.setitem(RULES, "exp", bad_exp)
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gradcheck(frontend.exp, (rand(3),))


def test_accumulation_and_retain_graph():
    x = frontend.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_backward_through_freed_graph_raises():
    x = frontend.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_non_scalar_backward_needs_gradient():
    x = frontend.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    y.backward(frontend.tensor([1.0, 0.5]))
    assert x.grad.tolist() == [3.0, 1.5]


def test_gradient_shape_mismatch_raises():
    x = frontend.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of \[3\]"):
        (x * 3).backward(frontend.ones(3))


def test_no_grad_and_enable_grad():
    x = frontend.ones(2, requires_grad=True)
    with frontend.no_grad():
        y = x * 2
        with frontend.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn.name() == "MulBackward0"

    @frontend.no_grad()
    def f(t):
        return t + 1
    assert not f(x).requires_grad
    assert frontend.is_grad_enabled()


def test_requires_grad_rules():
    x = frontend.ones(2)
    assert not (x * 2).requires_grad
    x.requires_grad_()
    assert x.is_leaf and (x * 2).requires_grad and not (x * 2).is_leaf
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require gradients"):
        frontend.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)


def test_tensor_hooks_see_and_replace_gradients():
    x = frontend.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    y = x * 3
    handle = y.register_hook(lambda g: g * 10)
    y.sum().backward()
    assert seen == [[30.0, 30.0]]
    assert x.grad.tolist() == [30.0, 30.0]
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_retain_grad_and_autograd_grad():
    x = frontend.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.retain_grad()
    y.sum().backward()
    assert y.grad.tolist() == [1.0, 1.0]
    (gx,) = frontend.autograd.grad((x ** 3).sum(), x)
    assert np.allclose(gx.numpy(), [3.0, 12.0])
    assert x.grad.tolist() == [2.0, 4.0]  # autograd.grad leaves .grad alone


def test_inplace_on_non_leaf_is_recorded():
    x = frontend.tensor([1.0, -2.0], requires_grad=True)
    y = x * 2
    y.mul_(y)  # y = (2x)^2
    y += 1
    y.sum().backward()
    assert x.grad.tolist() == [8.0, -16.0]


def test_setitem_with_autograd():
    x = frontend.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    y[1] = 0.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 1.0]


def test_detach_and_grad_fn_chain():
    x = frontend.ones(2, requires_grad=True)
    y = (x + 1).relu()
    assert y.grad_fn.name() == "ReluBackward0"
    assert y.grad_fn.next_functions[0][0].name() == "AddBackward0"
    assert not y.detach().requires_grad


def test_backward_op_without_rule_raises_not_zero():
    # conv2d_grad_input is a backward kernel: differentiating through it is not implemented.
    g = frontend.randn(1, 1, 3, 3, requires_grad=True)
    w = frontend.randn(1, 1, 3, 3)
    from frontend import _ops
    out = _ops._op1("conv2d_grad_input", [g, w], {"input_shape": [1, 1, 5, 5]})
    with pytest.raises(RuntimeError, match="derivative for 'conv2d_grad_input' is not implemented"):
        out.sum().backward()
