"""Binds the functional ops of `frontend._ops` to `Tensor` as methods and operators."""
from frontend import _creation as C
from frontend import _dtype as D
from frontend import _ops as O
from frontend._tensor import Tensor

_METHODS = [
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge",
    "neg", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "erf", "sigmoid", "tanh", "relu",
    "clamp", "clip", "clamp_min", "clamp_max", "square", "reciprocal", "log1p", "expm1",
    "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "var", "std", "norm", "all", "any",
    "softmax", "log_softmax", "logsumexp", "matmul", "mm", "bmm", "dot", "outer",
    "reshape", "view", "view_as", "reshape_as", "flatten", "unflatten", "squeeze", "unsqueeze",
    "permute", "transpose", "swapaxes", "t", "movedim", "expand", "expand_as", "repeat", "split",
    "chunk", "tensor_split", "unbind", "narrow", "flip", "roll", "gather", "index_select",
    "masked_fill", "where", "to", "type_as", "detach", "clone", "tril", "triu", "nonzero",
    "floor_divide", "remainder", "true_divide", "logical_not", "logical_and", "logical_or",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
    "cumsum", "equal", "allclose", "isclose", "broadcast_to",
]
for _name in _METHODS:
    setattr(Tensor, _name, getattr(O, _name))

Tensor.divide = O.div
Tensor.multiply = O.mul
Tensor.subtract = O.sub
Tensor.negative = O.neg
Tensor.absolute = O.abs
Tensor.greater = O.gt
Tensor.less = O.lt
Tensor.T = property(lambda self: O.permute(self, list(range(self.ndim))[::-1]),
                    doc="The tensor with its dimensions reversed (the transpose of a matrix).")
Tensor.mT = property(lambda self: O.transpose(self, -2, -1), doc="The last two dimensions swapped.")
Tensor.__add__ = O._binary_fn("add", "self + other")
Tensor.__radd__ = lambda self, other: O.add(other, self)
Tensor.__sub__ = O._binary_fn("sub", "self - other")
Tensor.__rsub__ = O.rsub
Tensor.__mul__ = O._binary_fn("mul", "self * other")
Tensor.__rmul__ = lambda self, other: O.mul(other, self)
Tensor.__truediv__ = O.div
Tensor.__rtruediv__ = O.rdiv
Tensor.__floordiv__ = O.floor_divide
Tensor.__rfloordiv__ = lambda self, other: O.floor_divide(other, self)
Tensor.__mod__ = O.remainder
Tensor.__pow__ = O.pow
Tensor.__rpow__ = O.rpow
Tensor.__matmul__ = O.matmul
Tensor.__rmatmul__ = lambda self, other: O.matmul(O._to_tensor(other), self)
Tensor.__neg__ = O.neg
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = O.abs
Tensor.__invert__ = O.bitwise_not
Tensor.__and__ = Tensor.__rand__ = O.bitwise_and
Tensor.__or__ = Tensor.__ror__ = O.bitwise_or
Tensor.__xor__ = Tensor.__rxor__ = O.bitwise_xor
Tensor.__eq__ = O.eq
Tensor.__ne__ = O.ne
Tensor.__lt__ = O.lt
Tensor.__le__ = O.le
Tensor.__gt__ = O.gt
Tensor.__ge__ = O.ge
Tensor.__getitem__ = O.getitem
Tensor.__setitem__ = O.setitem


def _inplace_method(fn):
    def method(self, *args, **kwargs):
        return O.inplace(self, fn, *args, **kwargs)
    method.__name__ = fn.__name__ + "_"
    method.__doc__ = f"In-place {fn.__name__}; returns self."
    return method


for _name in ["add", "sub", "mul", "div", "pow", "clamp", "clamp_min", "clamp_max", "neg", "abs",
              "exp", "log", "sqrt", "relu", "sigmoid", "tanh", "masked_fill", "maximum", "minimum",
              "square", "reciprocal"]:
    setattr(Tensor, _name + "_", _inplace_method(getattr(O, _name)))
Tensor.clip_ = Tensor.clamp_
Tensor.__iadd__ = Tensor.add_
Tensor.__isub__ = Tensor.sub_
Tensor.__imul__ = Tensor.mul_
Tensor.__itruediv__ = Tensor.div_


def _addcmul(self, t1, t2, value=1):
    """self + value * t1 * t2."""
    return O.add(self, O.mul(O.mul(t1, t2), value))


def _addcdiv(self, t1, t2, value=1):
    """self + value * t1 / t2."""
    return O.add(self, O.mul(O.div(t1, t2), value))


def _lerp(self, end, weight):
    """self + weight * (end - self)."""
    return O.add(self, O.mul(O.sub(end, self), weight))


Tensor.addcmul = _addcmul
Tensor.addcdiv = _addcdiv
Tensor.lerp = _lerp
Tensor.addcmul_ = _inplace_method(_addcmul)
Tensor.addcdiv_ = _inplace_method(_addcdiv)
Tensor.lerp_ = _inplace_method(_lerp)


def _copy_(self, src):
    """Copies `src` into self (broadcasting), in place."""
    src = O._to_tensor(src)
    return O.inplace(self, lambda x, s: O.add(O.mul(x, 0), O.to(s, x.dtype)) if s.shape != x.shape
                     else O.to(s, x.dtype), src)


def _fill_(self, value):
    """Sets every element to `value`, in place."""
    if O.GradMode.enabled and self._requires_grad and self._grad_fn is None:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    self._data[...] = value._data if isinstance(value, Tensor) else value
    self._version += 1
    return self


def _zero_(self):
    """Sets every element to zero, in place."""
    return _fill_(self, 0)


Tensor.copy_ = _copy_
Tensor.fill_ = _fill_
Tensor.zero_ = _zero_


def _cast_method(dtype, name):
    def cast(self):
        return O.to(self, dtype)
    cast.__name__ = name
    cast.__doc__ = f"The tensor as {dtype.name} (self when it already is)."
    return cast


for _name, _dtype in [("float", D.float32), ("double", D.float64), ("long", D.int64), ("int", D.int32),
                      ("bool", D.bool), ("byte", D.uint8)]:
    setattr(Tensor, _name, _cast_method(_dtype, _name))


def _type(self, dtype=None):
    """The type name ("frontend.float32") without an argument, else the tensor cast to `dtype`."""
    return f"frontend.{self.dtype.name}" if dtype is None else O.to(self, dtype)


Tensor.type = _type


def _new_factory(make, doc):
    def new(self, *args, dtype=None, device=None, requires_grad=False, **kwargs):
        return make(*args, dtype=dtype or self.dtype, requires_grad=requires_grad, **kwargs)
    new.__doc__ = doc
    return new


for _name, _make in [("new_zeros", C.zeros), ("new_ones", C.ones), ("new_empty", C.empty), ("new_full", C.full),
                     ("new_tensor", C.tensor)]:
    setattr(Tensor, _name, _new_factory(_make, f"{_make.__name__}(...) with this tensor's dtype unless dtype= is given."))
