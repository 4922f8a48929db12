"""`nn.Parameter`: a tensor that a Module registers as a learnable parameter."""
from frontend._tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad by default; assigning one to a Module attribute
    registers it in `parameters()` and `state_dict()`.

        >>> w = nn.Parameter(frontend.zeros(3))
        >>> w.requires_grad
        True
    """

    def __init__(self, data=None, requires_grad=True):
        import numpy as np
        if data is None:
            array = np.zeros((0,), np.float32)
        elif isinstance(data, Tensor):
            array = data._data
        else:
            array = np.asarray(data, order="C")
        self._data = array
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (Parameter, (_plain(self._data), self._requires_grad))

    def __deepcopy__(self, memo):
        p = Parameter(self._data.copy(), self._requires_grad)
        memo[id(self)] = p
        return p


def _plain(array):
    from frontend._tensor import _wrap
    return _wrap(array)


class Buffer(Tensor):
    """Marks a tensor to be registered as a buffer when assigned to a Module attribute."""

    def __init__(self, data, persistent=True):
        self._data = data._data if isinstance(data, Tensor) else data
        self.persistent = persistent
