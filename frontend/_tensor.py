"""`frontend.Tensor`: a contiguous numpy array plus autograd state.

    >>> import frontend
    >>> x = frontend.ones(2, 3, requires_grad=True)
    >>> (x * 2).sum().backward()
    >>> x.grad
    tensor([[2., 2., 2.],
            [2., 2., 2.]])

Ops are the functions of `frontend._ops`, bound here as methods. NOTE: shape ops (`view`,
`reshape`, `transpose`, `x[0]`, ...) return copies, not views: writing into their result does
not change the original (assignment through `x[idx] = v` does).
"""
import numpy as np


def _contig(a):
    """a as a C-contiguous array (0-d arrays stay 0-d, unlike np.ascontiguousarray)."""
    return np.asarray(a, order="C")

from frontend import _dtype as D
from frontend import _dispatch

_new = object.__new__


def _wrap(array):
    """A Tensor over numpy array `array` (must be C-contiguous; not copied)."""
    t = _new(Tensor)
    t._data = array
    return t


def _zeros_like_array(array):
    return _wrap(np.zeros(array.shape, array.dtype))


class Size(tuple):
    """A tensor shape: a tuple of ints, printed like torch.Size."""

    def __repr__(self):
        return f"frontend.Size({list(self)})"

    def numel(self):
        """Product of the dims."""
        n = 1
        for s in self:
            n *= s
        return n


class Tensor:
    """An n-dimensional array of one dtype with autograd support (see module docstring).

    `Tensor(data)` makes a float32 tensor from a list or array, like `torch.Tensor`."""

    # `_data` is a slot; the other attributes default on the class and go to the instance dict
    # only when set, so creating a tensor sets just `_data`.
    __slots__ = ("_data", "__dict__", "__weakref__")
    _requires_grad = False
    _grad_fn = None
    _out_idx = 0
    _hooks = None
    _version = 0
    grad = None
    __array_priority__ = 1000  # numpy scalars/arrays defer to our operators

    def __init__(self, *args):
        if len(args) == 1 and not isinstance(args[0], int):
            data = args[0]
            if isinstance(data, Tensor):
                data = data._data
            self._data = _contig(np.asarray(data, dtype=np.float32))
        else:
            self._data = np.empty([int(a) for a in args], dtype=np.float32)

    # ---- properties ----
    @property
    def shape(self):
        """The shape as a `frontend.Size`."""
        return Size(self._data.shape)

    def size(self, dim=None):
        """The shape, or the size of one dim."""
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[dim]

    @property
    def dtype(self):
        """The element type, e.g. frontend.float32."""
        return D._FROM_NP[self._data.dtype]

    @property
    def ndim(self):
        """Number of dims."""
        return self._data.ndim

    def dim(self):
        """Number of dims."""
        return self._data.ndim

    ndimension = dim

    def numel(self):
        """Number of elements."""
        return self._data.size

    nelement = numel

    def element_size(self):
        """Bytes per element."""
        return self._data.itemsize

    @property
    def device(self):
        """Always 'cpu'."""
        return "cpu"

    @property
    def is_leaf(self):
        """True for tensors not produced by a recorded op."""
        return self._grad_fn is None

    @property
    def grad_fn(self):
        """The Node that produced this tensor, or None for leaves."""
        return self._grad_fn

    @property
    def requires_grad(self):
        """Whether gradients are computed for this tensor."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        """`t.requires_grad = True` is `t.requires_grad_(True)` (leaves only)."""
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad=True):
        """Sets requires_grad on a leaf (floating point only); returns self."""
        if self._grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed "
                "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().")
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def data(self):
        """A detached tensor sharing this tensor's memory."""
        return _wrap(self._data)

    @data.setter
    def data(self, value):
        """Replaces the values (and shape) without autograd seeing it, as torch's `.data =`."""
        self._data = value._data if isinstance(value, Tensor) else _contig(value)

    @property
    def is_cuda(self):
        """Always False: frontend tensors live on the CPU."""
        return False

    def is_floating_point(self):
        """True for float32/float64."""
        return self._data.dtype.kind == "f"

    def is_contiguous(self):
        """Always True: frontend tensors are contiguous."""
        return True

    def contiguous(self):
        """self (already contiguous)."""
        return self

    def cpu(self):
        """self."""
        return self

    def stride(self, dim=None):
        """Strides in elements."""
        s = tuple(b // self._data.itemsize for b in self._data.strides)
        return s if dim is None else s[dim]

    # ---- autograd ----
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulates d(self)/d(leaf) * gradient into every leaf's `.grad`."""
        from frontend.autograd import backward
        backward(self, gradient, retain_graph, create_graph, inputs)

    def register_hook(self, hook):
        """Calls hook(grad) when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            node = self._grad_fn
            if node.pre_hooks is None:
                node.pre_hooks = {}
            hooks = node.pre_hooks.setdefault(self._out_idx, [])
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def retain_grad(self):
        """Keeps `.grad` of a non-leaf tensor after backward."""
        if self._grad_fn is None:
            return
        import weakref
        node = self._grad_fn
        if node.retained is None:
            node.retained = {}
        node.retained[self._out_idx] = weakref.ref(self)

    def detach_(self):
        """Cuts self from the graph, in place."""
        self._grad_fn = None
        self._requires_grad = False
        return self

    # ---- Python values ----
    def item(self):
        """The single element as a Python number."""
        _dispatch.on_python_value(self)
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.reshape(()).item()

    def tolist(self):
        """Nested Python lists of the elements."""
        _dispatch.on_python_value(self)
        return self._data.tolist()

    def numpy(self, force=False):
        """The underlying numpy array (shares memory)."""
        _dispatch.on_python_value(self)
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        _dispatch.on_python_value(self)
        return self._data if dtype is None else self._data.astype(dtype)

    def __bool__(self):
        _dispatch.on_python_value(self)
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iu" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        from frontend._ops import unbind
        return iter(unbind(self, 0))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        a = self._data
        fixed = a.dtype.kind == "f" and a.size and not np.all(np.mod(a[np.isfinite(a)], 1) == 0)
        body = np.array2string(a, separator=", ", prefix="tensor(", precision=4,
                               floatmode="fixed" if fixed else "maxprec")
        extras = []
        if self._data.dtype not in (np.float32, np.int64, np.bool_) or (
                self._data.size == 0 and self._data.dtype != np.float32):
            extras.append(f"dtype={self.dtype!r}")
        if self._grad_fn is not None:
            extras.append(f"grad_fn=<{self._grad_fn.name()}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __str__ = __repr__

    def __reduce_ex__(self, protocol):
        return (_rebuild, (self._data, self._requires_grad))

    def __deepcopy__(self, memo):
        t = self.__class__.__new__(self.__class__)
        t._data = self._data.copy()
        t._requires_grad = self._requires_grad
        if self.grad is not None:
            t.grad = _wrap(self.grad._data.copy())
        memo[id(self)] = t
        return t


def _rebuild(data, requires_grad):
    t = _wrap(_contig(data))
    t._requires_grad = requires_grad
    return t


class _HookHandle:
    """Returned by register_hook; `.remove()` unregisters."""

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


_dispatch.Tensor = Tensor
