"""Gradient rules: one short function per differentiable primitive op, written with other ops.

A rule receives a `Context` (detached `inputs`, `outputs`, `attrs`, `needs_input_grad`) and the
gradient of each output, and returns one gradient (or None) per input. Rules run with recording
off. Ops listed in NOT_DIFFERENTIABLE have integer/bool outputs or are backward kernels
themselves; backward through them raises.
"""
import math

import numpy as np

from frontend import _ops as O

RULES = {}
NOT_DIFFERENTIABLE = {"eq", "ne", "lt", "le", "gt", "ge", "argmax", "conv2d_grad_input",
                      "conv2d_grad_weight", "max_pool2d_grad", "avg_pool2d_grad",
                      "adaptive_avg_pool2d_grad", "batch_norm_train_grad",
                      # differentiated as a whole by nn.functional's _BatchNormTraining Function
                      # (gradcheck case "batch_norm_training"), never recorded by itself
                      "batch_norm_train",
                      "sgd_update"}  # an optimizer's step, run under no_grad


def rule(name):
    """Decorator: registers the function as the gradient rule of op `name` in RULES."""
    def register(fn):
        RULES[name] = fn
        return fn
    return register


def unbroadcast(g, shape):
    """Sums `g` down to `shape` (the reverse of broadcasting)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    dims = list(range(lead)) + [lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1]
    if dims:
        g = O.sum(g, dims, keepdim=True)
    return O.reshape(g, list(shape))


def _zero(g):
    return O._scalar(0.0, g.dtype)


def _masked(g, cond):
    """g where cond, else 0."""
    return O.where(cond, g, _zero(g))


def _binary_grads(ctx, ga, gb):
    a, b = ctx.inputs
    return (unbroadcast(ga, a.shape) if ctx.needs_input_grad[0] and ga is not None else None,
            unbroadcast(gb, b.shape) if ctx.needs_input_grad[1] and gb is not None else None)


# ---- element-wise binary ----
@rule("add")
def add(ctx, g):
    return _binary_grads(ctx, g, g)


@rule("sub")
def sub(ctx, g):
    return _binary_grads(ctx, g, O.neg(g) if ctx.needs_input_grad[1] else None)


@rule("mul")
def mul(ctx, g):
    a, b = ctx.inputs
    return _binary_grads(ctx, O.mul(g, b) if ctx.needs_input_grad[0] else None,
                         O.mul(g, a) if ctx.needs_input_grad[1] else None)


@rule("div")
def div(ctx, g):
    a, b = ctx.inputs
    ga = O.div(g, b) if ctx.needs_input_grad[0] else None
    gb = O.neg(O.div(O.mul(g, ctx.outputs[0]), b)) if ctx.needs_input_grad[1] else None
    return _binary_grads(ctx, ga, gb)


@rule("pow")
def pow_(ctx, g):
    a, b = ctx.inputs
    y = ctx.outputs[0]
    ga = gb = None
    if ctx.needs_input_grad[0]:
        # NOTE: b * a**(b-1) is 0 where b == 0 (torch masks it so 0**0 gets no NaN).
        ga = _masked(O.mul(g, O.mul(b, O.pow(a, O.sub(b, 1.0)))), O.ne(b, 0.0))
    if ctx.needs_input_grad[1]:
        # NOTE: y * log(a) is taken as 0 at a == 0, b >= 0, as torch does.
        zero_base = O.logical_and(O.eq(a, 0.0), O.ge(b, 0.0))
        gb = _masked(O.mul(g, O.mul(y, O.log(a))), O.logical_not(zero_base))
    return _binary_grads(ctx, ga, gb)


def _minmax(ctx, g, cmp):
    a, b = ctx.inputs
    # NOTE: ties split the gradient in half, like torch.maximum/minimum.
    half = O.mul(g, 0.5)
    tie = O.eq(a, b)
    ga = O.where(tie, half, _masked(g, cmp(a, b))) if ctx.needs_input_grad[0] else None
    gb = O.where(tie, half, _masked(g, cmp(b, a))) if ctx.needs_input_grad[1] else None
    return _binary_grads(ctx, ga, gb)


@rule("maximum")
def maximum(ctx, g):
    return _minmax(ctx, g, O.gt)


@rule("minimum")
def minimum(ctx, g):
    return _minmax(ctx, g, O.lt)


@rule("where")
def where(ctx, g):
    c, x, y = ctx.inputs
    gx = unbroadcast(_masked(g, c), x.shape) if ctx.needs_input_grad[1] else None
    gy = unbroadcast(_masked(g, O.logical_not(c)), y.shape) if ctx.needs_input_grad[2] else None
    return None, gx, gy


# ---- element-wise unary ----
def _x(ctx):
    return ctx.inputs[0]


def _y(ctx):
    return ctx.outputs[0]


@rule("neg")
def neg(ctx, g):
    return O.neg(g)


@rule("abs")
def abs_(ctx, g):
    return O.mul(g, O.sign(_x(ctx)))


@rule("sign")
def sign(ctx, g):
    # NOTE: the true derivative of sign is 0 almost everywhere (torch returns zeros too).
    return O.mul(g, 0.0)


@rule("exp")
def exp(ctx, g):
    return O.mul(g, _y(ctx))


@rule("log")
def log(ctx, g):
    return O.div(g, _x(ctx))


@rule("sqrt")
def sqrt(ctx, g):
    return O.div(O.mul(g, 0.5), _y(ctx))


@rule("rsqrt")
def rsqrt(ctx, g):
    y = _y(ctx)
    return O.mul(g, O.mul(O.mul(O.mul(y, y), y), -0.5))


@rule("erf")
def erf(ctx, g):
    x = _x(ctx)
    return O.mul(g, O.mul(O.exp(O.neg(O.mul(x, x))), 2.0 / math.sqrt(math.pi)))


@rule("sigmoid")
def sigmoid(ctx, g):
    y = _y(ctx)
    return O.mul(g, O.mul(y, O.rsub(y, 1.0)))


@rule("tanh")
def tanh(ctx, g):
    y = _y(ctx)
    return O.mul(g, O.rsub(O.mul(y, y), 1.0))


@rule("silu")
def silu(ctx, g):
    x = _x(ctx)
    s = O.sigmoid(x)
    return O.mul(g, O.mul(s, O.add(O.mul(x, O.rsub(s, 1.0)), 1.0)))


@rule("hardswish")
def hardswish(ctx, g):
    x = _x(ctx)
    inner = O.mul(g, O.add(O.div(x, 3.0), 0.5))
    # torch: 0 below -3, (2x + 3) / 6 in [-3, 3], 1 above 3.
    return O.where(O.lt(x, -3.0), _zero(g), O.where(O.le(x, 3.0), inner, g))


@rule("hardsigmoid")
def hardsigmoid(ctx, g):
    x = _x(ctx)
    return _masked(O.div(g, 6.0), O.logical_and(O.gt(x, -3.0), O.lt(x, 3.0)))


@rule("relu")
def relu(ctx, g):
    return _masked(g, O.gt(_y(ctx), 0))


@rule("relu6")
def relu6(ctx, g):
    x = _x(ctx)
    return _masked(g, O.logical_and(O.gt(x, 0.0), O.lt(x, 6.0)))


@rule("clamp")
def clamp(ctx, g):
    x = _x(ctx)
    lo = ctx.attrs.get("min", -math.inf)
    hi = ctx.attrs.get("max", math.inf)
    return _masked(g, O.logical_and(O.ge(x, lo), O.le(x, hi)))


@rule("leaky_relu")
def leaky_relu(ctx, g):
    slope = ctx.attrs.get("negative_slope", 0.01)
    return O.where(O.gt(_x(ctx), 0.0), g, O.mul(g, slope))


@rule("gelu")
def gelu(ctx, g):
    x = _x(ctx)
    if ctx.attrs.get("approximate", "none") == "tanh":
        k = math.sqrt(2.0 / math.pi)
        x3 = O.mul(O.mul(x, x), x)
        t = O.tanh(O.mul(O.add(x, O.mul(x3, 0.044715)), k))
        dt = O.mul(O.rsub(O.mul(t, t), 1.0), O.mul(O.add(O.mul(O.mul(x, x), 3 * 0.044715), 1.0), k))
        return O.mul(g, O.add(O.mul(O.add(t, 1.0), 0.5), O.mul(O.mul(x, dt), 0.5)))
    cdf = O.mul(O.add(O.erf(O.mul(x, 1.0 / math.sqrt(2.0))), 1.0), 0.5)
    pdf = O.mul(O.exp(O.mul(O.mul(x, x), -0.5)), 1.0 / math.sqrt(2.0 * math.pi))
    return O.mul(g, O.add(cdf, O.mul(x, pdf)))


@rule("cast")
def cast(ctx, g):
    return O.to(g, _x(ctx).dtype)


# ---- linear algebra ----
@rule("matmul")
def matmul(ctx, g):
    a, b = ctx.inputs
    a2 = a if a.ndim > 1 else O.unsqueeze(a, 0)
    b2 = b if b.ndim > 1 else O.unsqueeze(b, -1)
    g2 = g
    if a.ndim == 1:
        g2 = O.unsqueeze(g2, -2 if b.ndim > 1 else 0)
    if b.ndim == 1:
        g2 = O.unsqueeze(g2, -1)
    ga = gb = None
    if ctx.needs_input_grad[0]:
        ga = O.reshape(unbroadcast(O.matmul(g2, O.transpose(b2, -1, -2)), a2.shape), list(a.shape))
    if ctx.needs_input_grad[1]:
        gb = O.reshape(unbroadcast(O.matmul(O.transpose(a2, -1, -2), g2), b2.shape), list(b.shape))
    return ga, gb


def _activation_grad(g, y, activation):
    if activation == "relu":
        return _masked(g, O.gt(y, 0.0))
    if activation == "relu6":
        return _masked(g, O.logical_and(O.gt(y, 0.0), O.lt(y, 6.0)))
    return g


@rule("linear")
def linear(ctx, g):
    x, w, b = ctx.inputs
    g = _activation_grad(g, _y(ctx), ctx.attrs.get("activation", "none"))
    gx = gw = gb = None
    if ctx.needs_input_grad[0]:
        gx = O.matmul(g, w)
    g2 = g if g.ndim == 2 else O.reshape(g, [-1, w.shape[0]])
    if ctx.needs_input_grad[1]:
        x2 = x if x.ndim == 2 else O.reshape(x, [-1, w.shape[1]])
        gw = O.matmul(O.transpose(g2, 0, 1), x2)
    if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]:
        gb = O.sum(g2, 0)
    return gx, gw, gb


def _conv_attrs(ctx):
    return {k: v for k, v in ctx.attrs.items() if k != "activation"}


@rule("conv2d")
def conv2d(ctx, g):
    x, w = ctx.inputs[0], ctx.inputs[1]
    g = _activation_grad(g, _y(ctx), ctx.attrs.get("activation", "none"))
    gx = gw = gb = None
    if ctx.needs_input_grad[0]:
        gx = O._op1("conv2d_grad_input", [g, w], dict(_conv_attrs(ctx), input_shape=list(x.shape)))
    if ctx.needs_input_grad[1]:
        gw = O._op1("conv2d_grad_weight", [g, x], dict(_conv_attrs(ctx), weight_shape=list(w.shape)))
    if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]:
        gb = O.sum(g, [0, 2, 3])
    return gx, gw, gb


@rule("max_pool2d")
def max_pool2d(ctx, g):
    return O._op1("max_pool2d_grad", [g, _x(ctx)], dict(ctx.attrs))


@rule("avg_pool2d")
def avg_pool2d(ctx, g):
    return O._op1("avg_pool2d_grad", [g], dict(ctx.attrs, input_shape=list(_x(ctx).shape)))


@rule("adaptive_avg_pool2d")
def adaptive_avg_pool2d(ctx, g):
    return O._op1("adaptive_avg_pool2d_grad", [g], {"input_shape": list(_x(ctx).shape)})


# ---- normalization and softmax ----
@rule("batch_norm")
def batch_norm(ctx, g):
    x, mean, var, w, b = ctx.inputs
    need = ctx.needs_input_grad
    eps = ctx.attrs.get("eps", 1e-5)
    shape = [1, x.shape[1]] + [1] * (x.ndim - 2)
    dims = [0] + list(range(2, x.ndim))
    inv = O.rsqrt(O.add(var, eps))
    scale = inv if w is None else O.mul(w, inv)
    gx = O.mul(g, O.reshape(scale, shape)) if need[0] else None
    # Per-channel sums shared by the mean, var, weight and bias gradients.
    gsum = O.sum(g, dims) if (need[1] or (b is not None and need[4])) else None
    gxc = None
    if need[2] or (w is not None and need[3]):
        gxc = O.sum(O.mul(g, O.sub(x, O.reshape(mean, shape))), dims)  # sum(g * (x - mean))
    gmean = O.neg(O.mul(gsum, scale)) if need[1] else None
    gvar = O.mul(O.mul(gxc, O.mul(O.mul(scale, inv), inv)), -0.5) if need[2] else None
    gw = O.mul(gxc, inv) if w is not None and need[3] else None
    gb = gsum if b is not None and need[4] else None
    return gx, gmean, gvar, gw, gb


@rule("layer_norm")
def layer_norm(ctx, g):
    x, w, b = (list(ctx.inputs) + [None, None])[:3]
    need = list(ctx.needs_input_grad) + [False, False]
    k = len(ctx.attrs["normalized_shape"])
    eps = ctx.attrs.get("eps", 1e-5)
    dims = list(range(x.ndim - k, x.ndim))
    lead = list(range(x.ndim - k))
    mu = O.mean(x, dims, keepdim=True)
    rstd = O.rsqrt(O.add(O.var(x, dims, keepdim=True, correction=0), eps))
    xhat = O.mul(O.sub(x, mu), rstd)
    gx = gw = gb = None
    if need[0]:
        gxhat = g if w is None else O.mul(g, w)
        m1 = O.mean(gxhat, dims, keepdim=True)
        m2 = O.mean(O.mul(gxhat, xhat), dims, keepdim=True)
        gx = O.mul(rstd, O.sub(O.sub(gxhat, m1), O.mul(xhat, m2)))
    if w is not None and need[1]:
        gw = O.sum(O.mul(g, xhat), lead) if lead else O.mul(g, xhat)
    if b is not None and need[2]:
        gb = O.sum(g, lead) if lead else g
    return gx, gw, gb


@rule("softmax")
def softmax(ctx, g):
    y = _y(ctx)
    dim = ctx.attrs.get("dim", -1)
    return O.mul(y, O.sub(g, O.sum(O.mul(g, y), dim, keepdim=True)))


@rule("log_softmax")
def log_softmax(ctx, g):
    dim = ctx.attrs.get("dim", -1)
    return O.sub(g, O.mul(O.exp(_y(ctx)), O.sum(g, dim, keepdim=True)))


# ---- reductions ----
def _reduced_dims(ctx):
    x = _x(ctx)
    dims = ctx.attrs.get("dim", [])
    if isinstance(dims, int):
        dims = [dims]
    return sorted(d % x.ndim for d in dims) if dims else list(range(x.ndim))


def _expand_back(ctx, t):
    """A reduced tensor broadcast back to the input shape."""
    x = _x(ctx)
    if not ctx.attrs.get("keepdim", False):
        shape = list(x.shape)
        for d in _reduced_dims(ctx):
            shape[d] = 1
        t = O.reshape(t, shape)
    return O.expand(t, list(x.shape))


@rule("sum")
def sum_(ctx, g):
    return _expand_back(ctx, g)


@rule("mean")
def mean(ctx, g):
    x = _x(ctx)
    count = 1
    for d in _reduced_dims(ctx):
        count *= x.shape[d]
    return _expand_back(ctx, O.div(g, float(max(count, 1))))  # divide before expanding: fewer elements


def _max_min(ctx, g):
    # NOTE: ties share the gradient evenly (torch's amax/amin rule).
    x = _x(ctx)
    mask = O.to(O.eq(x, _expand_back(ctx, _y(ctx))), x.dtype)
    count = O.sum(mask, _reduced_dims(ctx), keepdim=True)
    return O.div(O.mul(_expand_back(ctx, g), mask), count)


RULES["max"] = _max_min
RULES["min"] = _max_min


@rule("var")
def var(ctx, g):
    x = _x(ctx)
    dims = _reduced_dims(ctx)
    n = 1
    for d in dims:
        n *= x.shape[d]
    correction = ctx.attrs.get("correction", 1)
    centered = O.sub(x, O.mean(x, dims, keepdim=True))
    return O.mul(_expand_back(ctx, O.mul(g, 2.0 / max(n - correction, 1))), centered)


# ---- shapes ----
@rule("reshape")
def reshape(ctx, g):
    return O.reshape(g, list(_x(ctx).shape))


RULES["flatten"] = reshape


@rule("transpose")
def transpose(ctx, g):
    perm = ctx.attrs["perm"]
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return O.permute(g, inverse)


@rule("expand")
def expand(ctx, g):
    return unbroadcast(g, _x(ctx).shape)


@rule("concat")
def concat(ctx, g):
    dim = ctx.attrs.get("dim", 0)
    sizes = [t.shape[dim] for t in ctx.inputs]
    return O.split(g, sizes, dim)


@rule("split")
def split(ctx, *grads):
    return O.cat(list(grads), ctx.attrs.get("dim", 0))


@rule("slice")
def slice_(ctx, g):
    x = _x(ctx)
    a = ctx.attrs
    steps = a.get("steps") or [1] * len(a["dims"])
    pads = [0] * (2 * x.ndim)
    for d, start, end, step in zip(a["dims"], a["starts"], a["ends"], steps):
        d %= x.ndim
        size = x.shape[d]
        start, stop, step = slice(start, end, step).indices(size)
        n = len(range(start, stop, step))
        if n == 0:
            return O._wrap(np.zeros(x.shape, x._data.dtype))
        if step > 1:
            g = O.unsqueeze(g, d + 1)
            spread = [0] * (2 * g.ndim)
            spread[(g.ndim - 1 - (d + 1)) * 2 + 1] = step - 1
            g = O.pad(g, spread)
            shape = list(g.shape)
            g = O.reshape(g, shape[:d] + [n * step] + shape[d + 2:])
        covered = n * step
        pads[(x.ndim - 1 - d) * 2] = start
        pads[(x.ndim - 1 - d) * 2 + 1] = size - start - covered
    return O.pad(g, pads)


@rule("pad")
def pad(ctx, g):
    return O.pad(g, [-p for p in ctx.attrs["pads"]])


def _one_hot(index, size, dtype):
    """[*index.shape, size] float one-hot of an integer tensor."""
    classes = O._wrap(np.arange(size, dtype=index._data.dtype))
    return O.to(O.eq(O.unsqueeze(index, -1), classes), dtype)


@rule("index_select")
def index_select(ctx, g):
    x, index = ctx.inputs
    dim = ctx.attrs["dim"] % x.ndim
    onehot = _one_hot(index, x.shape[dim], g.dtype)  # [k, n]
    moved = O.movedim(g, dim, -1)  # [..., k]
    return O.movedim(O.matmul(moved, onehot), -1, dim), None


@rule("embedding")
def embedding(ctx, g):
    weight, indices = ctx.inputs
    v, d = weight.shape
    onehot = _one_hot(O.reshape(indices, [-1]), v, g.dtype)  # [n, V]
    return O.matmul(O.transpose(onehot, 0, 1), O.reshape(g, [-1, d])), None


@rule("gather")
def gather(ctx, g):
    x, index = ctx.inputs
    dim = ctx.attrs["dim"] % x.ndim
    onehot = _one_hot(index, x.shape[dim], g.dtype)  # index.shape + [n]
    spread = O.sum(O.mul(O.unsqueeze(g, -1), onehot), dim)  # index.shape without dim, + [n]
    out = O.movedim(spread, -1, dim)  # index.shape with dim -> n
    pads = []
    for d in reversed(range(x.ndim)):
        pads += [0, x.shape[d] - out.shape[d]]
    return (O.pad(out, pads) if any(pads) else out), None
