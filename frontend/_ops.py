"""Tensor ops with PyTorch's names and semantics, each one dispatched to a registered kernel
and recorded on the autograd tape when an input requires grad.

Functions take tensors first, so they double as `Tensor` methods:

    >>> import frontend
    >>> x = frontend.tensor([[1.0, -2.0]])
    >>> frontend.relu(x + 1)
    tensor([[2., 0.]])
"""
import builtins
import collections

import numpy as np


def _contig(a):
    """a as a C-contiguous array (0-d arrays stay 0-d, unlike np.ascontiguousarray)."""
    return np.asarray(a, order="C")

from frontend import _dtype as D
from frontend import _dispatch
from frontend._dispatch import dispatch, dispatch_one
from frontend._tensor import Tensor, _wrap  # noqa: F401 (_wrap is used by rules)
from frontend.autograd.graph import GradMode, record

_builtin_sum = builtins.sum


# --------------------------------------------------------------------------------------------
# Core: run an op and record it
# --------------------------------------------------------------------------------------------
def _op(op, inputs, attrs, num_outputs=-1):
    outs = dispatch(op, inputs, attrs, num_outputs)
    if GradMode.enabled:
        for t in inputs:
            if t is not None and t._requires_grad:
                record(op, inputs, attrs, outs)
                break
    return outs


def _op1(op, inputs, attrs):
    out = dispatch_one(op, inputs, attrs)
    if GradMode.enabled:
        for t in inputs:
            if t is not None and t._requires_grad:
                record(op, inputs, attrs, [out])
                break
    return out


_scalar_cache = {}


def _scalar(value, dt):
    """A 0-dim tensor holding Python number `value` as dtype `dt` (cached: these are constants)."""
    key = (type(value), value, dt.name)
    t = _scalar_cache.get(key)
    if t is None:
        t = _wrap(np.array(value, dt.np))
        if len(_scalar_cache) < 4096:
            _scalar_cache[key] = t
    return t


def _is_number(v):
    return isinstance(v, (int, float, bool, np.number, np.bool_))


def _to_tensor(value):
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return _wrap(_contig(value))
    from frontend._creation import tensor
    return tensor(value)


def _coerce(a, b):
    """Both operands as tensors of one dtype (torch promotion; Python scalars are weak)."""
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if a._data.dtype == b._data.dtype:
                return a, b
            dt = D.result_type(a, b)
            return to(a, dt), to(b, dt)
        if _is_number(b):
            dt = D.result_type_scalar(a.dtype, b)
            return to(a, dt), _scalar(b, dt)
        return _coerce(a, _to_tensor(b))
    if isinstance(b, Tensor):
        if _is_number(a):
            dt = D.result_type_scalar(b.dtype, a)
            return _scalar(a, dt), to(b, dt)
        return _coerce(_to_tensor(a), b)
    return _coerce(_to_tensor(a), _to_tensor(b))


def _binary(op, a, b):
    if type(a) is not Tensor or type(b) is not Tensor or a._data.dtype != b._data.dtype:
        a, b = _coerce(a, b)
    out = dispatch_one(op, [a, b])
    if (a._requires_grad or b._requires_grad) and GradMode.enabled:
        record(op, [a, b], {}, [out])
    return out


def _binary_fn(op, doc):
    """A two-operand op as a standalone function (used for Tensor's operators)."""
    def fn(a, b):
        # NOTE: `is not` on dtypes is a fast identity test; equal but distinct dtypes take _coerce.
        if type(a) is not Tensor or type(b) is not Tensor or a._data.dtype is not b._data.dtype:
            a, b = _coerce(a, b)
        out = dispatch_one(op, [a, b])
        if (a._requires_grad or b._requires_grad) and GradMode.enabled:
            record(op, [a, b], {}, [out])
        return out
    fn.__name__ = op
    fn.__doc__ = doc
    return fn


def _unary(op, x, attrs=None):
    out = dispatch_one(op, [x], attrs)
    if x._requires_grad and GradMode.enabled:
        record(op, [x], {} if attrs is None else attrs, [out])
    return out


# --------------------------------------------------------------------------------------------
# Dtype conversion
# --------------------------------------------------------------------------------------------
def to(x, *args, **kwargs):
    """`x.to(dtype)` (devices are accepted and ignored only when 'cpu')."""
    dtype = kwargs.get("dtype")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, str) and a.startswith("cpu"):
            continue
        elif a is not None:
            dtype = a
    device = kwargs.get("device")
    if device is not None and not str(device).startswith("cpu"):
        raise RuntimeError(f"frontend tensors live on the CPU; cannot move to device '{device}'")
    if dtype is None:
        return x
    dt = D.to_dtype(dtype)
    if x._data.dtype == dt.np:
        return x
    return _unary("cast", x, {"dtype": dt.name})


def type_as(x, other):
    """`x` cast to `other`'s dtype."""
    return to(x, other.dtype)


# --------------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------------
def add(a, b, alpha=1):
    """a + alpha * b, broadcasting, with torch type promotion."""
    if alpha != 1:
        b = mul(b, alpha)
    return _binary("add", a, b)


def sub(a, b, alpha=1):
    """a - alpha * b."""
    if alpha != 1:
        b = mul(b, alpha)
    return _binary("sub", a, b)


def rsub(a, b):
    """b - a."""
    return _binary("sub", b, a)


def mul(a, b):
    """a * b."""
    return _binary("mul", a, b)


def div(a, b, rounding_mode=None):
    """True division a / b (integers are divided as float32); rounding_mode 'trunc'/'floor'."""
    a, b = _coerce(a, b)
    if rounding_mode is None:
        if a._data.dtype.kind != "f":
            a, b = to(a, D.float32), to(b, D.float32)
        return _binary("div", a, b)
    if rounding_mode == "trunc":
        if a._data.dtype.kind != "f":
            return _binary("div", a, b)
        q = _binary("div", a, b)
        return mul(sign(q), floor_abs(q))
    if rounding_mode == "floor":
        return floor_divide(a, b)
    raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")


def _host(x):
    """x's array for a computation done in numpy (no kernel): a tracer is told, as for item()."""
    _dispatch.on_python_value(x)
    return x._data


def floor_abs(x):
    """floor(|x|) for floats, computed in numpy (not differentiable, not traceable)."""
    return _wrap(np.floor(np.abs(_host(x))))


def floor_divide(a, b):
    """floor(a / b), as torch.floor_divide; computed in numpy (not differentiable, not traceable)."""
    a, b = _coerce(a, b)
    return _wrap(np.floor_divide(_host(a), _host(b)))


def remainder(a, b):
    """Python-style remainder, as torch.remainder; computed in numpy (not differentiable, not traceable)."""
    a, b = _coerce(a, b)
    return _wrap(np.remainder(_host(a), _host(b)))


def true_divide(a, b):
    """a / b."""
    return div(a, b)


def rdiv(a, b):
    """b / a."""
    return div(b, a)


def pow(a, b):  # noqa: A001 - torch's name
    """a ** b (float; integer tensors are computed in float64 and cast back)."""
    a, b = _coerce(a, b)
    if a._data.dtype.kind != "f":
        dt = a.dtype
        return to(_binary("pow", to(a, D.float64), to(b, D.float64)), dt)
    return _binary("pow", a, b)


def rpow(a, b):
    """b ** a."""
    return pow(b, a)


def maximum(a, b):
    """Element-wise maximum (NaN propagates)."""
    return _binary("maximum", a, b)


def minimum(a, b):
    """Element-wise minimum (NaN propagates)."""
    return _binary("minimum", a, b)


def eq(a, b):
    """a == b -> bool tensor."""
    return _binary("eq", a, b)


def ne(a, b):
    """a != b -> bool tensor."""
    return _binary("ne", a, b)


def lt(a, b):
    """a < b -> bool tensor."""
    return _binary("lt", a, b)


def le(a, b):
    """a <= b -> bool tensor."""
    return _binary("le", a, b)


def gt(a, b):
    """a > b -> bool tensor."""
    return _binary("gt", a, b)


def ge(a, b):
    """a >= b -> bool tensor."""
    return _binary("ge", a, b)


def logical_not(x):
    """not x, element-wise, as bool."""
    return eq(to(x, D.bool), False)


def logical_and(a, b):
    """a and b, element-wise, as bool."""
    return mul(to(_to_tensor(a), D.uint8), to(_to_tensor(b), D.uint8)).to(D.bool)


def logical_or(a, b):
    """a or b, element-wise, as bool."""
    return maximum(to(_to_tensor(a), D.uint8), to(_to_tensor(b), D.uint8)).to(D.bool)


def _bitwise(name, a, b, on_bool, on_ints):
    a, b = _coerce(a, b)
    if a.dtype is D.bool:
        return on_bool(a, b)
    if a._data.dtype.kind == "f":
        raise RuntimeError(f"\"{name}_cpu\" not implemented for '{a.dtype.name.capitalize()}'")
    return _wrap(_contig(on_ints(_host(a), _host(b))))


def bitwise_and(a, b):
    """a & b: logical for bool tensors (kernels); bitwise for integers, computed in numpy (not
    differentiable, not traceable), as torch's `&`."""
    return _bitwise("bitwise_and", a, b, logical_and, np.bitwise_and)


def bitwise_or(a, b):
    """a | b: logical for bool tensors (kernels); bitwise for integers, computed in numpy."""
    return _bitwise("bitwise_or", a, b, logical_or, np.bitwise_or)


def bitwise_xor(a, b):
    """a ^ b: a != b for bool tensors (kernels); bitwise for integers, computed in numpy."""
    return _bitwise("bitwise_xor", a, b, ne, np.bitwise_xor)


def bitwise_not(x):
    """~x: logical not for bool tensors (kernels); bitwise for integers, computed in numpy."""
    if x.dtype is D.bool:
        return logical_not(x)
    if x._data.dtype.kind == "f":
        raise RuntimeError(f"\"bitwise_not_cpu\" not implemented for '{x.dtype.name.capitalize()}'")
    return _wrap(_contig(np.invert(_host(x))))


def where(condition, x=None, y=None):
    """condition ? x : y with broadcasting; x and y may be Python scalars."""
    if x is None and y is None:
        return tuple(_wrap(_contig(i.astype(np.int64))) for i in np.nonzero(_host(condition)))
    condition = to(_to_tensor(condition), D.bool)
    x, y = _coerce(x, y)
    return _op1("where", [condition, x, y], {})


def masked_fill(x, mask, value):
    """x with `value` where `mask` is true."""
    if isinstance(value, Tensor):
        value = to(value, x.dtype)
    else:
        value = _scalar(value, x.dtype)
    return _op1("where", [to(_to_tensor(mask), D.bool), value, x], {})


def equal(a, b):
    """True when both have the same shape and elements."""
    return a.shape == b.shape and bool(np.array_equal(_host(a), _host(b)))


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """numpy/torch allclose on the values."""
    return bool(np.allclose(_host(_to_tensor(a)), _host(_to_tensor(b)), rtol=rtol, atol=atol, equal_nan=equal_nan))


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Element-wise closeness as a bool tensor."""
    return _wrap(np.isclose(_host(_to_tensor(a)), _host(_to_tensor(b)), rtol=rtol, atol=atol, equal_nan=equal_nan))


# --------------------------------------------------------------------------------------------
# Unary
# --------------------------------------------------------------------------------------------
def neg(x):
    """-x."""
    return _unary("neg", x)


def abs(x):  # noqa: A001
    """|x|."""
    return _unary("abs", x)


def sign(x):
    """-1, 0 or 1 by the sign of x."""
    return _unary("sign", x)


def _float_unary(op):
    def fn(x):
        if x._data.dtype.kind != "f":
            x = to(x, D.float32)
        out = dispatch_one(op, [x])
        if x._requires_grad and GradMode.enabled:
            record(op, [x], {}, [out])
        return out
    fn.__name__ = op
    fn.__doc__ = f"torch.{op}, element-wise (integers are computed as float32)."
    return fn


exp = _float_unary("exp")
log = _float_unary("log")
sqrt = _float_unary("sqrt")
rsqrt = _float_unary("rsqrt")
erf = _float_unary("erf")
sigmoid = _float_unary("sigmoid")
tanh = _float_unary("tanh")
silu = _float_unary("silu")
hardswish = _float_unary("hardswish")
hardsigmoid = _float_unary("hardsigmoid")
relu6 = _float_unary("relu6")


def relu(x):
    """max(x, 0)."""
    out = dispatch_one("relu", [x])
    if x._requires_grad and GradMode.enabled:
        record("relu", [x], {}, [out])
    return out


def clamp(x, min=None, max=None):  # noqa: A002
    """Clamps to [min, max] (either may be None; tensor bounds use maximum/minimum)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        if min is not None:
            x = maximum(x, min)
        if max is not None:
            x = minimum(x, max)
        return x
    # A float bound on an integer tensor gives a float result, as in torch.
    dt = x.dtype
    for bound in (min, max):
        if bound is not None:
            dt = D.result_type_scalar(dt, bound)
    if dt is not x.dtype:
        x = to(x, dt)
    attrs = {}
    if min is not None:
        attrs["min"] = float(min)
    if max is not None:
        attrs["max"] = float(max)
    return _unary("clamp", x, attrs)


clip = clamp


def clamp_min(x, min):  # noqa: A002
    """max(x, min)."""
    return clamp(x, min=min)


def clamp_max(x, max):  # noqa: A002
    """min(x, max)."""
    return clamp(x, max=max)


def leaky_relu(x, negative_slope=0.01):
    """x if x > 0 else negative_slope * x."""
    return _unary("leaky_relu", x, {"negative_slope": float(negative_slope)})


def gelu(x, approximate="none"):
    """Gaussian error linear unit ('none' = exact erf form, or 'tanh')."""
    return _unary("gelu", x, {"approximate": approximate} if approximate != "none" else {})


def square(x):
    """x * x."""
    return mul(x, x)


def reciprocal(x):
    """1 / x."""
    return div(1.0, x)


def log1p(x):
    """log(1 + x)."""
    return log(add(x, 1.0))


def expm1(x):
    """exp(x) - 1."""
    return sub(exp(x), 1.0)


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, linear above `threshold` (as torch)."""
    bx = mul(x, beta) if beta != 1 else x
    soft = div(log1p(exp(minimum(bx, _scalar(float(threshold), x.dtype)))), beta)
    return where(gt(bx, threshold), x, soft)


def logsigmoid(x):
    """log(sigmoid(x)), computed stably."""
    return neg(softplus(neg(x)))


# --------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------
def _dims(dim):
    if dim is None:
        return []
    if isinstance(dim, (list, tuple)):
        return [int(d) for d in dim]
    return [int(dim)]


def sum(x, dim=None, keepdim=False, dtype=None):  # noqa: A001
    """Sum over `dim` (int, tuple or None = all); integers and bools sum as int64."""
    if dtype is not None:
        x = to(x, dtype)
    elif x._data.dtype.kind in "biu":
        x = to(x, D.int64)
    attrs = {"dim": _dims(dim), "keepdim": bool(keepdim)}
    return _unary("sum", x, attrs)


def mean(x, dim=None, keepdim=False, dtype=None):
    """Mean over `dim` (floating point only, as torch)."""
    if dtype is not None:
        x = to(x, dtype)
    if x._data.dtype.kind != "f":
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point or "
            f"complex dtype. Got: {x.dtype.name.capitalize()}")
    return _unary("mean", x, {"dim": _dims(dim), "keepdim": bool(keepdim)})


_MinMax = collections.namedtuple("return_types", ["values", "indices"])


def _reduce_minmax(op, x, dim, keepdim, other):
    if isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        return (maximum if op == "max" else minimum)(x, other)
    if dim is None:
        return _unary(op, x, {"dim": [], "keepdim": False})
    values = _unary(op, x, {"dim": [int(dim)], "keepdim": bool(keepdim)})
    idx_op = argmax if op == "max" else argmin
    return _MinMax(values, idx_op(x, int(dim), keepdim))


def max(x, dim=None, keepdim=False, other=None):  # noqa: A001
    """x.max() -> tensor; x.max(dim) -> (values, indices); x.max(other) -> maximum."""
    return _reduce_minmax("max", x, dim, keepdim, other)


def min(x, dim=None, keepdim=False, other=None):  # noqa: A001
    """x.min() -> tensor; x.min(dim) -> (values, indices); x.min(other) -> minimum."""
    return _reduce_minmax("min", x, dim, keepdim, other)


def amax(x, dim=(), keepdim=False):
    """Maximum over `dim` (values only)."""
    return _unary("max", x, {"dim": _dims(dim), "keepdim": bool(keepdim)})


def amin(x, dim=(), keepdim=False):
    """Minimum over `dim` (values only)."""
    return _unary("min", x, {"dim": _dims(dim), "keepdim": bool(keepdim)})


def argmax(x, dim=None, keepdim=False):
    """Index of the maximum along `dim` (None: of the flattened tensor) as int64."""
    if dim is None:
        return _unary("argmax", reshape(x, [-1]), {"dim": 0, "keepdim": False})
    return _unary("argmax", x, {"dim": int(dim), "keepdim": bool(keepdim)})


def argmin(x, dim=None, keepdim=False):
    """Index of the minimum along `dim` as int64 (argmax of -x)."""
    if x._data.dtype.kind == "b":
        x = to(x, D.uint8)
    if x._data.dtype.kind == "u":
        x = to(x, D.int32)
    return argmax(neg(x), dim, keepdim)


def var(x, dim=None, unbiased=None, keepdim=False, correction=None):
    """Variance over `dim` with `correction` (default 1; unbiased=False means 0)."""
    if correction is None:
        correction = 0 if unbiased is False else 1
    if isinstance(dim, bool):  # x.var(False): torch's old positional `unbiased`
        correction, dim = (1 if dim else 0), None
    return _unary("var", x, {"dim": _dims(dim), "correction": int(correction), "keepdim": bool(keepdim)})


def std(x, dim=None, unbiased=None, keepdim=False, correction=None):
    """Standard deviation: sqrt(var)."""
    return sqrt(var(x, dim, unbiased, keepdim, correction))


def norm(x, p=2, dim=None, keepdim=False):
    """p-norm over `dim` (p = 1, 2 or inf)."""
    if p == 2 or p == "fro":
        return sqrt(sum(mul(x, x), dim, keepdim))
    if p == 1:
        return sum(abs(x), dim, keepdim)
    if p == float("inf"):
        return amax(abs(x), _dims(dim), keepdim)
    return pow(sum(pow(abs(x), float(p)), dim, keepdim), 1.0 / p)


def all(x, dim=None):  # noqa: A001
    """True when every element is nonzero."""
    return eq(sum(to(eq(x, 0) if x._data.dtype.kind != "b" else logical_not(x), D.int64), dim), 0)


def any(x, dim=None):  # noqa: A001
    """True when some element is nonzero."""
    return gt(sum(to(ne(x, 0), D.int64), dim), 0)


def cumsum(x, dim):
    """Cumulative sum along `dim`, computed in numpy (not differentiable, not traceable)."""
    return _wrap(_contig(np.cumsum(_host(x), axis=dim)))


# --------------------------------------------------------------------------------------------
# Softmax
# --------------------------------------------------------------------------------------------
def softmax(x, dim=-1, dtype=None):
    """exp(x) / sum(exp(x)) along `dim`."""
    if dtype is not None:
        x = to(x, dtype)
    return _unary("softmax", x, {"dim": int(dim)})


def log_softmax(x, dim=-1, dtype=None):
    """log(softmax(x)) along `dim`, computed stably."""
    if dtype is not None:
        x = to(x, dtype)
    return _unary("log_softmax", x, {"dim": int(dim)})


def logsumexp(x, dim, keepdim=False):
    """log(sum(exp(x))) along `dim`, stably."""
    m = detach(amax(x, dim, keepdim=True))
    out = add(log(sum(exp(sub(x, m)), dim, keepdim=True)), m)
    return out if keepdim else squeeze(out, dim)


# --------------------------------------------------------------------------------------------
# Matrix products
# --------------------------------------------------------------------------------------------
def matmul(a, b):
    """torch.matmul: 1-D, 2-D and batched products with broadcasting batch dims."""
    if a._data.dtype != b._data.dtype:
        a, b = _coerce(a, b)
    out = dispatch_one("matmul", [a, b])
    if (a._requires_grad or b._requires_grad) and GradMode.enabled:
        record("matmul", [a, b], {}, [out])
    return out


def mm(a, b):
    """2-D matrix product."""
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got {a.ndim}-D and {b.ndim}-D")
    return matmul(a, b)


def bmm(a, b):
    """Batched (3-D) matrix product."""
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(f"bmm: expected 3-D tensors, got {a.ndim}-D and {b.ndim}-D")
    return matmul(a, b)


def dot(a, b):
    """Inner product of two 1-D tensors."""
    return matmul(a, b)


def outer(a, b):
    """Outer product of two 1-D tensors."""
    return mul(unsqueeze(a, 1), unsqueeze(b, 0))


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------
def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    return [int(s) for s in shape]


def reshape(x, *shape):
    """A tensor with the same elements in `shape` (one -1 allowed). Always a copy."""
    return _unary("reshape", x, {"shape": _shape_arg(shape)})


def view(x, *shape):
    """Like reshape; NOTE: frontend views are copies, so writing to one leaves `x` unchanged."""
    if len(shape) == 1 and isinstance(shape[0], D.dtype):
        raise NotImplementedError("view(dtype) is not supported")
    return reshape(x, *shape)


def view_as(x, other):
    """reshape(x, other.shape)."""
    return reshape(x, list(other.shape))


def reshape_as(x, other):
    """reshape(x, other.shape)."""
    return reshape(x, list(other.shape))


def flatten(x, start_dim=0, end_dim=-1):
    """Merges dims start_dim..end_dim into one."""
    if x.ndim == 0:
        return reshape(x, [1])
    return _unary("flatten", x, {"start_dim": int(start_dim), "end_dim": int(end_dim)})


def unflatten(x, dim, sizes):
    """Splits dim `dim` into `sizes`."""
    dim = dim % x.ndim
    shape = list(x.shape)
    return reshape(x, shape[:dim] + list(sizes) + shape[dim + 1:])


def _norm_dim(dim, ndim, name="dim"):
    if not -ndim <= dim < builtins.max(ndim, 1):
        lo, hi = -builtins.max(ndim, 1), builtins.max(ndim, 1) - 1
        raise IndexError(f"Dimension out of range (expected to be in range of [{lo}, {hi}], but got {dim})")
    return dim % builtins.max(ndim, 1)


def squeeze(x, dim=None):
    """Removes size-1 dims (all, or those in `dim`)."""
    shape = list(x.shape)
    if dim is None:
        new = [s for s in shape if s != 1]
    else:
        dims = {_norm_dim(d, x.ndim) for d in _dims(dim)} if x.ndim else set()
        new = [s for i, s in enumerate(shape) if not (i in dims and s == 1)]
    if new == shape:
        return x
    return reshape(x, new)


def unsqueeze(x, dim):
    """Inserts a size-1 dim at `dim`."""
    dim = _norm_dim(dim, x.ndim + 1)
    shape = list(x.shape)
    return reshape(x, shape[:dim] + [1] + shape[dim:])


def permute(x, *dims):
    """Reorders dims (a copy)."""
    perm = [_norm_dim(d, x.ndim) for d in _shape_arg(dims)]
    if sorted(perm) != list(range(x.ndim)):
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the length of the desired ordering of dimensions i.e. input.dim() = {x.ndim} is not equal to len(dims) = {len(perm)}" if len(perm) != x.ndim else f"permute: dims {perm} are not a permutation")
    return _unary("transpose", x, {"perm": perm})


def transpose(x, dim0, dim1):
    """Swaps two dims (a copy)."""
    if x.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    perm = list(range(x.ndim))
    d0, d1 = _norm_dim(dim0, x.ndim), _norm_dim(dim1, x.ndim)
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return _unary("transpose", x, {"perm": perm})


swapaxes = transpose


def t(x):
    """Transpose of a <= 2-D tensor."""
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {x.ndim}D")
    return transpose(x, 0, -1) if x.ndim == 2 else x


def movedim(x, source, destination):
    """Moves dim `source` to position `destination`."""
    src, dst = _norm_dim(source, x.ndim), _norm_dim(destination, x.ndim)
    perm = [d for d in range(x.ndim) if d != src]
    perm.insert(dst, src)
    return permute(x, perm)


def expand(x, *sizes):
    """Broadcasts to `sizes` (-1 keeps a dim). A copy."""
    return _unary("expand", x, {"shape": _shape_arg(sizes)})


def expand_as(x, other):
    """expand(x, other.shape)."""
    return expand(x, list(other.shape))


def broadcast_to(x, shape):
    """expand(x, shape)."""
    return expand(x, list(shape))


def repeat(x, *sizes):
    """Tiles `x` `sizes` times along each dim."""
    sizes = _shape_arg(sizes)
    shape = [1] * (len(sizes) - x.ndim) + list(x.shape)
    x = reshape(x, shape)
    inter, target = [], []
    for s, r in zip(shape, sizes):
        inter += [1, s]
        target += [r, s]
    y = expand(reshape(x, inter), target)
    return reshape(y, [s * r for s, r in zip(shape, sizes)])


def _common(tensors):
    tensors = [_to_tensor(t) for t in tensors]
    dt = tensors[0].dtype
    for t in tensors[1:]:
        if t.dtype is not dt:
            dt = D.promote_types(dt, t.dtype)
    return [to(t, dt) for t in tensors]


def cat(tensors, dim=0):
    """Concatenates along an existing dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    tensors = _common(tensors)
    if len(tensors) == 1:
        return tensors[0]
    return _op1("concat", tensors, {"dim": int(dim)})


concat = cat
concatenate = cat


def stack(tensors, dim=0):
    """Stacks along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape0 = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.shape != shape0:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(shape0)} at entry 0 and {list(t.shape)} at entry {i}")
    dim = _norm_dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def hstack(tensors):
    """cat along dim 1 (dim 0 for 1-D)."""
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """cat along dim 0 (1-D tensors become rows)."""
    return cat([t if t.ndim > 1 else unsqueeze(t, 0) for t in tensors], 0)


def split(x, split_size_or_sections, dim=0):
    """Splits into chunks of a size, or of the given sizes; returns a tuple."""
    dim = _norm_dim(dim, x.ndim)
    n = x.shape[dim]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        sizes = [builtins.min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if _builtin_sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at dimension {dim}), but got split_sizes={sizes}")
    if len(sizes) == 1:
        return (x,)
    return tuple(_op("split", [x], {"sizes": sizes, "dim": dim}, len(sizes)))


def chunk(x, chunks, dim=0):
    """Splits into `chunks` pieces (the last may be smaller)."""
    n = x.shape[_norm_dim(dim, x.ndim)]
    size = -(-n // chunks)
    return split(x, size, dim)


def tensor_split(x, sections, dim=0):
    """Splits into `sections` nearly equal parts."""
    n = x.shape[_norm_dim(dim, x.ndim)]
    sizes = [n // sections + (1 if i < n % sections else 0) for i in range(sections)]
    return split(x, sizes, dim)


def unbind(x, dim=0):
    """Tuple of slices along `dim`, with that dim removed."""
    dim = _norm_dim(dim, x.ndim)
    return tuple(squeeze(p, dim) for p in split(x, 1, dim))


def narrow(x, dim, start, length):
    """x sliced to [start, start + length) along `dim`."""
    dim = _norm_dim(dim, x.ndim)
    return slice_dims(x, [dim], [start], [start + length])


def slice_dims(x, dims, starts, ends, steps=None):
    """The `slice` op: python-slice semantics per listed dim."""
    attrs = {"dims": list(dims), "starts": list(starts), "ends": list(ends)}
    if steps is not None:
        attrs["steps"] = list(steps)
    return _unary("slice", x, attrs)


def flip(x, dims):
    """Reverses the order along `dims` (computed via index_select)."""
    for d in _dims(dims):
        d = _norm_dim(d, x.ndim)
        idx = _wrap(np.arange(x.shape[d] - 1, -1, -1, dtype=np.int64))
        x = index_select(x, d, idx)
    return x


def roll(x, shifts, dims):
    """Rolls elements along `dims` by `shifts`."""
    shifts, dims = _dims(shifts), _dims(dims)
    for s, d in zip(shifts, dims):
        d = _norm_dim(d, x.ndim)
        n = x.shape[d]
        idx = _wrap(((np.arange(n) - s) % n).astype(np.int64))
        x = index_select(x, d, idx)
    return x


def gather(x, dim, index):
    """torch.gather: out[i][j] = x[i][index[i][j]] along `dim`."""
    return _op1("gather", [x, index], {"dim": int(dim)})


def index_select(x, dim, index):
    """Rows of `x` along `dim` picked by a 1-D integer `index`."""
    return _op1("index_select", [x, index], {"dim": int(dim)})


def take_along_dim(x, indices, dim):
    """gather with broadcasting of `indices` (same ndim required)."""
    return gather(x, dim, indices)


def pad(x, pad, mode="constant", value=0.0):
    """torch.nn.functional.pad, constant mode: `pad` is (left, right) pairs from the last dim."""
    if mode != "constant":
        raise NotImplementedError(f"pad mode '{mode}' is not supported (only 'constant')")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise RuntimeError(f"Padding length must be divisible by 2 and at most twice the number of dims; got {len(pad)} for a {x.ndim}-D input")
    return _unary("pad", x, {"pads": [int(p) for p in pad], "value": float(value or 0.0)})


def tril(x, diagonal=0):
    """Lower triangle (mask computed in numpy, applied with where)."""
    mask = np.tril(np.ones(x.shape[-2:], dtype=bool), diagonal)
    return where(_wrap(mask), x, _scalar(0, x.dtype))


def triu(x, diagonal=0):
    """Upper triangle (mask computed in numpy, applied with where)."""
    mask = np.triu(np.ones(x.shape[-2:], dtype=bool), diagonal)
    return where(_wrap(mask), x, _scalar(0, x.dtype))


def nonzero(x, as_tuple=False):
    """Indices of nonzero elements ([n, ndim] int64, or a tuple of 1-D tensors)."""
    idx = np.nonzero(_host(x))
    if as_tuple:
        return tuple(_wrap(_contig(i.astype(np.int64))) for i in idx)
    return _wrap(_contig(np.stack(idx, 1).astype(np.int64)))


# --------------------------------------------------------------------------------------------
# Indexing
# --------------------------------------------------------------------------------------------
def _index_to_tensor(item):
    if isinstance(item, Tensor):
        return item
    if isinstance(item, np.ndarray):
        return _wrap(_contig(item))
    arr = np.asarray(item)
    if arr.dtype == np.float64 and arr.size == 0:
        arr = arr.astype(np.int64)
    return _wrap(_contig(arr))


def _expand_index(x, idx):
    if not isinstance(idx, tuple):
        idx = (idx,)
    items = []
    for item in idx:
        if isinstance(item, (list, np.ndarray)) or (isinstance(item, Tensor) and item.ndim > 0) or (
                isinstance(item, Tensor) and item._data.dtype.kind == "b"):
            items.append(_index_to_tensor(item))
        elif isinstance(item, Tensor):
            items.append(int(item._data))
        elif isinstance(item, np.integer):
            items.append(int(item))
        else:
            items.append(item)
    consumed = _builtin_sum(
        (it.ndim if isinstance(it, Tensor) and it._data.dtype.kind == "b" else 1)
        for it in items if it is not None and it is not Ellipsis)
    if consumed > x.ndim:
        raise IndexError(f"too many indices for tensor of dimension {x.ndim}")
    if Ellipsis in [it for it in items if not isinstance(it, Tensor)]:
        pos = [i for i, it in enumerate(items) if not isinstance(it, Tensor) and it is Ellipsis]
        if len(pos) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        p = pos[0]
        items = items[:p] + [builtins.slice(None)] * (x.ndim - consumed) + items[p + 1:]
    return items


def getitem(x, idx):
    """x[idx] with ints, slices, None, ..., one boolean mask or one integer tensor."""
    items = _expand_index(x, idx)
    shape = list(x.shape)
    dims, starts, ends, steps = [], [], [], []
    new_shape = []
    adv = None
    d = 0
    for item in items:
        if item is None:
            new_shape.append(1)
        elif isinstance(item, builtins.slice):
            n = shape[d]
            start, stop, step = item.indices(n) if (item.step or 1) > 0 else (0, 0, 0)
            if item.step is not None and item.step <= 0:
                raise ValueError("step must be greater than zero")
            if (start, stop, step) != (0, n, 1):
                dims.append(d)
                starts.append(start)
                ends.append(stop)
                steps.append(step)
            new_shape.append(len(range(start, stop, step)))
            d += 1
        elif isinstance(item, Tensor):
            if adv is not None:
                raise NotImplementedError("indexing with more than one tensor index is not supported")
            if item._data.dtype.kind == "b":
                k = item.ndim
                if list(item.shape) != shape[d:d + k]:
                    raise IndexError(
                        f"The shape of the mask {list(item.shape)} at index {d} does not match the shape of the indexed tensor {shape[d:d + k]} at index {d}")
                adv = (len(new_shape), item, k)
                new_shape.extend(shape[d:d + k])
                d += k
            elif item._data.dtype.kind in "iu":
                adv = (len(new_shape), item, 1)
                new_shape.append(shape[d])
                d += 1
            else:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        elif isinstance(item, int):
            n = shape[d]
            if not -n <= item < n:
                raise IndexError(f"index {item} is out of bounds for dimension {d} with size {n}")
            i = item % n
            dims.append(d)
            starts.append(i)
            ends.append(i + 1)
            steps.append(1)
            d += 1
        else:
            raise IndexError(
                "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices (got "
                f"{type(item).__name__})")
    new_shape.extend(shape[d:])
    y = x
    if dims:
        y = slice_dims(y, dims, starts, ends, steps if builtins.any(s != 1 for s in steps) else None)
    if list(y.shape) != new_shape:
        y = reshape(y, new_shape)
    if adv is not None:
        pos, index, k = adv
        if index._data.dtype.kind == "b":
            if k != 1:
                ys = list(y.shape)
                y = reshape(y, ys[:pos] + [-1] + ys[pos + k:])
            flat = _wrap(_contig(np.flatnonzero(_host(index)).astype(np.int64)))
            y = index_select(y, pos, flat)
        else:
            flat = index if index.ndim == 1 else reshape(index, [-1])
            if flat._data.dtype.kind == "u":
                flat = to(flat, D.int64)
            n = y.shape[pos]
            if flat.numel() and (flat._data.min() < -n or flat._data.max() >= n):
                bad = flat._data[(flat._data < -n) | (flat._data >= n)][0]
                raise IndexError(f"index {bad} is out of bounds for dimension {pos} with size {n}")
            if flat.numel() and flat._data.min() < 0:
                flat = _wrap(_contig(flat._data % n))
            y = index_select(y, pos, flat)
            if index.ndim != 1:
                ys = list(y.shape)
                y = reshape(y, ys[:pos] + list(index.shape) + ys[pos + 1:])
    return y


def _numpy_index(idx):
    if isinstance(idx, tuple):
        return tuple(_numpy_index(i) for i in idx)
    if isinstance(idx, Tensor):
        return idx._data
    return idx


def setitem(x, idx, value):
    """x[idx] = value, in place. When autograd records (or a tracer watches) it is computed as
    where(mask, value, x) so the graph sees it; otherwise numpy writes the values directly."""
    np_idx = _numpy_index(idx)
    value_requires = isinstance(value, Tensor) and value._requires_grad
    use_graph = GradMode.enabled and (x._requires_grad or value_requires)
    if use_graph or _dispatch.tracer is not None:
        if use_graph and x._requires_grad and x._grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        mask = np.zeros(x.shape, dtype=bool)
        mask[np_idx] = True
        v = value if isinstance(value, Tensor) else _scalar(value, x.dtype)
        if v.ndim and v.shape != x.shape:
            target_shape = np.zeros(x.shape, dtype=bool)[np_idx].shape
            try:
                v = expand(v, list(target_shape)) if v.shape != target_shape else v
            except Exception:
                raise RuntimeError(f"shape mismatch: value tensor of shape {list(value.shape)} cannot be "
                                   f"broadcast to indexing result of shape {list(target_shape)}") from None
            # Scatter the values to their flat positions with index_select.
            flat_pos = np.zeros(x.numel(), dtype=np.int64)
            flat_pos[np.flatnonzero(mask)] = np.arange(int(mask.sum()))
            v = reshape(index_select(reshape(to(v, x.dtype), [-1]), 0, _wrap(flat_pos)), list(x.shape))
        out = where(_wrap(mask), to(v, x.dtype), _alias(x))
        if use_graph:
            _take_over(x, out)
        else:
            np.copyto(x._data, out._data)
            x._version += 1
        _dispatch.record_inplace("reshape", [out], {"shape": list(x.shape)}, x)
        return
    v = value._data if isinstance(value, Tensor) else value
    x._data[np_idx] = v
    x._version += 1


def _take_over(x, out):
    """x becomes `out` (used by in-place ops that record autograd)."""
    x._data = out._data
    x._grad_fn = out._grad_fn
    x._out_idx = out._out_idx
    x._requires_grad = out._requires_grad
    x._version += 1


def inplace(x, fn, *args, **kwargs):
    """Runs out-of-place op `fn(x, *args)` and stores the result in `x` (torch's `op_`).

    Without autograd recording the result is copied into x's buffer (so numpy arrays and
    `.data` aliases see it); with recording, x is rebased onto the new node."""
    needs_graph = GradMode.enabled and (
        x._requires_grad or builtins.any(isinstance(a, Tensor) and a._requires_grad for a in args))
    src = x
    if needs_graph:
        if x._requires_grad and x._grad_fn is None:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        src = _alias(x)
        args = tuple(src if a is x else a for a in args)
    out = fn(src, *args, **kwargs)
    _check_inplace_shape(x, out)
    if out._data.dtype != x._data.dtype:
        out = to(out, x.dtype)
    if needs_graph:
        _take_over(x, out)
    else:
        np.copyto(x._data, out._data, casting="unsafe")
        x._version += 1
    _dispatch.record_inplace("reshape", [out], {"shape": list(x.shape)}, x)
    return x


def _alias(x):
    """A new Tensor object standing for x's current value and graph position."""
    a = _wrap(x._data)
    a._grad_fn = x._grad_fn
    a._out_idx = x._out_idx
    a._requires_grad = x._requires_grad
    _dispatch.record_inplace("reshape", [x], {"shape": list(x.shape)}, a)
    return a


def _check_inplace_shape(x, out):
    if out.shape != x.shape:
        raise RuntimeError(
            f"output with shape {list(x.shape)} doesn't match the broadcast shape {list(out.shape)}")
    if out._data.dtype.kind == "f" and x._data.dtype.kind != "f":
        raise RuntimeError(f"result type Float can't be cast to the desired output type {x.dtype.name.capitalize()}")


def detach(x):
    """A tensor sharing `x`'s data, cut from the graph."""
    return _wrap(x._data)


def clone(x):
    """A copy (recorded, so gradients flow)."""
    return reshape(x, list(x.shape))


def one_hot(x, num_classes=-1):
    """int64 one-hot encoding with a new last dim."""
    if num_classes < 0:
        num_classes = int(x._data.max()) + 1
    classes = _wrap(np.arange(num_classes, dtype=x._data.dtype))
    return to(eq(unsqueeze(x, -1), classes), D.int64)
