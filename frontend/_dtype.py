"""Tensor dtypes (`frontend.float32`, ...) and PyTorch's type-promotion rules."""
import builtins as _builtins

import numpy as np


class dtype:
    """A tensor element type, e.g. ``frontend.float32``; ``.np`` is the numpy dtype."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "category")

    def __init__(self, name, np_dtype, category):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.category = category  # 0 bool, 1 integer, 2 floating
        self.is_floating_point = category == 2
        self.is_signed = self.np.kind in "if"
        self.itemsize = self.np.itemsize

    def __repr__(self):
        return f"frontend.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)
int64 = dtype("int64", np.int64, 1)
int32 = dtype("int32", np.int32, 1)
uint8 = dtype("uint8", np.uint8, 1)
int8 = dtype("int8", np.int8, 1)
bool = dtype("bool", np.bool_, 0)  # noqa: A001 - torch's name
float = float32  # noqa: A001
double = float64
long = int64
int = int32  # noqa: A001

ALL = (float32, float64, int64, int32, uint8, int8, bool)
_FROM_NP = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}


def _by_name(name):
    return _BY_NAME[name]


def from_numpy_dtype(np_dtype):
    """The frontend dtype of a numpy dtype; TypeError if unsupported."""
    d = _FROM_NP.get(np.dtype(np_dtype))
    if d is None:
        raise TypeError(f"can't convert np.ndarray of type {np.dtype(np_dtype)}; the supported types "
                        "are: float64, float32, int64, int32, int8, uint8, and bool.")
    return d


def to_dtype(d):
    """Accepts a frontend dtype, a numpy dtype/type, or a name string."""
    if isinstance(d, dtype):
        return d
    if isinstance(d, str):
        try:
            return _BY_NAME[d]
        except KeyError:
            raise TypeError(f"unknown dtype '{d}'") from None
    if d is _builtins.float:
        return float32
    if d is _builtins.int:
        return int64
    if d is _builtins.bool:
        return bool
    return from_numpy_dtype(d)


def promote_types(a, b):
    """PyTorch's promote_types for two frontend dtypes."""
    if a is b:
        return a
    if a.category != b.category:  # float beats int beats bool, keeping the winner's width
        return a if a.category > b.category else b
    r = np.promote_types(a.np, b.np)
    if r == np.int16:  # uint8 with int8: torch gives int16, which we don't have
        return int32
    return _FROM_NP[r]


def scalar_category(value):
    """0 for a Python/numpy bool, 1 for an integer, 2 for a float: the promotion category."""
    if isinstance(value, (_builtins.bool, np.bool_)):
        return 0
    if isinstance(value, (_builtins.int, np.integer)):
        return 1
    return 2


_DEFAULT_FOR_CATEGORY = {0: bool, 1: int64, 2: float32}


def result_type_scalar(t, value):
    """dtype of `tensor op python-scalar` (a scalar only raises the category, torch-style)."""
    c = scalar_category(value)
    if c > t.category:
        return _DEFAULT_FOR_CATEGORY[c]
    return t


def result_type(a, b):
    """dtype of `a op b` for two tensors: dimensioned tensors outrank 0-dim ones within a category."""
    da, db = a.dtype, b.dtype
    if da is db:
        return da
    za, zb = a.ndim == 0, b.ndim == 0
    if za == zb:
        return promote_types(da, db)
    # One 0-dim tensor: it decides only if its category is higher.
    dim_t, zero_t = (db, da) if za else (da, db)
    if zero_t.category > dim_t.category:
        return zero_t
    return dim_t
