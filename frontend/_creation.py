"""Tensor creation: tensor, from_numpy, zeros/ones/full/empty, arange, linspace, eye, random.

    >>> import frontend
    >>> frontend.manual_seed(0)
    >>> frontend.randn(2, 3).shape
    frontend.Size([2, 3])
"""
import builtins

import numpy as np


def _contig(a):
    """a as a C-contiguous array (0-d arrays stay 0-d, unlike np.ascontiguousarray)."""
    return np.asarray(a, order="C")

from frontend import _dtype as D
from frontend._tensor import Tensor, _wrap


class Generator:
    """A seedable random source (numpy PCG64), like torch.Generator."""

    def __init__(self, device="cpu"):
        self._seed = 0
        self.rng = np.random.default_rng(0)

    def manual_seed(self, seed):
        """Reseeds; returns self."""
        self._seed = int(seed)
        self.rng = np.random.default_rng(int(seed))
        return self

    def initial_seed(self):
        """The last seed set."""
        return self._seed

    def get_state(self):
        """The generator state (a dict)."""
        return self.rng.bit_generator.state

    def set_state(self, state):
        """Restores a state from get_state()."""
        self.rng.bit_generator.state = state


default_generator = Generator()


def manual_seed(seed):
    """Seeds the global generator used by rand/randn/randint, dropout and nn.init."""
    default_generator.manual_seed(seed)
    return default_generator


def seed():
    """Seeds the global generator non-deterministically."""
    s = int(np.random.SeedSequence().entropy % (2 ** 63))
    default_generator.manual_seed(s)
    return s


def initial_seed():
    """The last seed of the global generator."""
    return default_generator.initial_seed()


def _rng(generator):
    return (generator or default_generator).rng


def _finish(array, dtype, requires_grad):
    if dtype is not None:
        array = array.astype(D.to_dtype(dtype).np, copy=False)
    t = _wrap(_contig(array))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _size(size):
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        size = size[0]
    return [int(s) for s in size]


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor copying `data` (nested lists, numbers, numpy arrays or tensors).

    Python floats become float32, ints int64, bools bool (torch's defaults)."""
    if isinstance(data, Tensor):
        array = data._data.copy()
    elif isinstance(data, np.ndarray):
        array = np.array(data, copy=True)
        if array.dtype == np.float16:
            array = array.astype(np.float32)
    else:
        if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in data):
            data = [d._data if isinstance(d, Tensor) else d for d in data]
        array = np.array(data)
        if array.dtype.kind == "f" and dtype is None and not isinstance(data, np.floating):
            array = array.astype(np.float32)
        elif array.dtype.kind in "iu" and dtype is None and not isinstance(data, np.integer):
            array = array.astype(np.int64)
        elif array.dtype == object:
            raise TypeError(f"tensor(): could not infer dtype of {type(data).__name__}")
    if dtype is None and array.dtype not in D._FROM_NP:
        D.from_numpy_dtype(array.dtype)
    return _finish(array, dtype, requires_grad)


as_tensor = tensor


def from_numpy(array):
    """A tensor sharing `array`'s memory (copied only if not C-contiguous)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    D.from_numpy_dtype(array.dtype)
    return _wrap(_contig(array))


def zeros(*size, dtype=None, requires_grad=False, device=None):
    """A tensor of zeros (float32 by default)."""
    return _finish(np.zeros(_size(size), (D.to_dtype(dtype) if dtype else D.float32).np), None, requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None):
    """A tensor of ones."""
    return _finish(np.ones(_size(size), (D.to_dtype(dtype) if dtype else D.float32).np), None, requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device=None):
    """A tensor filled with `fill_value` (dtype inferred from the value like torch)."""
    if dtype is None:
        dtype = D.result_type_scalar(D.bool, fill_value)
    return _finish(np.full(_size((size,)), fill_value, D.to_dtype(dtype).np), None, requires_grad)


def empty(*size, dtype=None, requires_grad=False, device=None):
    """An uninitialized tensor (zeros here, for reproducibility)."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def zeros_like(x, dtype=None, requires_grad=False):
    """zeros with x's shape and dtype."""
    return zeros(list(x.shape), dtype=dtype or x.dtype, requires_grad=requires_grad)


def ones_like(x, dtype=None, requires_grad=False):
    """ones with x's shape and dtype."""
    return ones(list(x.shape), dtype=dtype or x.dtype, requires_grad=requires_grad)


def full_like(x, fill_value, dtype=None, requires_grad=False):
    """full with x's shape and dtype."""
    return full(list(x.shape), fill_value, dtype=dtype or x.dtype, requires_grad=requires_grad)


def empty_like(x, dtype=None, requires_grad=False):
    """empty with x's shape and dtype."""
    return zeros_like(x, dtype, requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None):
    """Values start, start+step, ... < end (int64 for integer arguments, else float32)."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (start, end, step))
        dtype = D.int64 if ints else D.float32
    return _finish(np.arange(start, end, step, dtype=np.float64 if D.to_dtype(dtype).is_floating_point else None), dtype, requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False, device=None):
    """`steps` evenly spaced values from start to end inclusive."""
    return _finish(np.linspace(start, end, steps), dtype or D.float32, requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, device=None):
    """Identity matrix n x m."""
    return _finish(np.eye(n, m), dtype or D.float32, requires_grad)


def rand(*size, generator=None, dtype=None, requires_grad=False, device=None):
    """Uniform [0, 1) samples."""
    return _finish(_rng(generator).random(_size(size), dtype=np.float64), dtype or D.float32, requires_grad)


def randn(*size, generator=None, dtype=None, requires_grad=False, device=None):
    """Standard normal samples."""
    return _finish(_rng(generator).standard_normal(_size(size)), dtype or D.float32, requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=None, requires_grad=False, device=None):
    """Integers in [low, high) (int64)."""
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size), as torch allows
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    return _finish(_rng(generator).integers(low, high, size=_size((size,))), dtype or D.int64, False)


def randperm(n, generator=None, dtype=None, device=None):
    """A random permutation of 0..n-1 (int64)."""
    return _finish(_rng(generator).permutation(n), dtype or D.int64, False)


def rand_like(x, dtype=None):
    """rand with x's shape."""
    return rand(list(x.shape), dtype=dtype or x.dtype)


def randn_like(x, dtype=None):
    """randn with x's shape."""
    return randn(list(x.shape), dtype=dtype or x.dtype)


def randint_like(x, low, high=None, dtype=None):
    """randint with x's shape."""
    return randint(low, high, list(x.shape), dtype=dtype or x.dtype)


def normal(mean, std, size, generator=None):
    """Normal samples with the given mean and std."""
    return _finish(_rng(generator).normal(mean, std, _size((size,))), D.float32, False)


def multinomial(probs, num_samples, replacement=False, generator=None):
    """Samples indices from (rows of) probabilities."""
    p = np.atleast_2d(probs._data.astype(np.float64))
    rng = _rng(generator)
    out = np.stack([rng.choice(p.shape[1], num_samples, replace=replacement, p=row / row.sum()) for row in p])
    return _finish(out if probs.ndim == 2 else out[0], D.int64, False)


del builtins
