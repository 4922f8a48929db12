"""Ember's eager front end, shaped like PyTorch: tensors, autograd, nn, optim and data loading
on the C++ kernels of the op registry.

    >>> import frontend
    >>> from frontend import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> model(frontend.randn(3, 4)).shape
    frontend.Size([3, 2])
"""
from graphruntime import _C as _C_module

from frontend import _dtype
from frontend._dtype import (bool, dtype, double, float, float32, float64, int, int8, int32, int64,  # noqa: A004
                             long, promote_types, uint8)
from frontend._tensor import Size, Tensor
from frontend import _ops
from frontend._ops import *  # noqa: F401,F403
from frontend._ops import (abs, add, all, any, max, min, pow, sum)  # noqa: A004
from frontend import _methods  # noqa: F401 (binds Tensor methods)
from frontend._creation import (Generator, arange, as_tensor, default_generator, empty, empty_like, eye,
                                from_numpy, full, full_like, initial_seed, linspace, manual_seed,
                                multinomial, normal, ones, ones_like, rand, rand_like, randint,
                                randint_like, randn, randn_like, randperm, seed, tensor, zeros,
                                zeros_like)
from frontend import autograd
from frontend.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from frontend._serialization import load, save
from frontend import nn, optim, data  # noqa: E402
from frontend import utils  # noqa: E402  (frontend.utils.data, as torch.utils.data)

float16 = None  # not supported; present so `frontend.float16` fails loudly when used as a dtype


def set_num_threads(n):
    """Number of threads the kernels use (like torch.set_num_threads)."""
    if n < 1:
        raise RuntimeError(f"set_num_threads expects a positive integer, got {n}")
    _C_module.set_num_threads(n)


def get_num_threads():
    """Number of threads the kernels use."""
    return _C_module.get_num_threads()


class device(str):
    """A device name; frontend tensors live on the CPU only, so only 'cpu' is accepted."""

    def __new__(cls, name="cpu", index=None):
        if not str(name).startswith("cpu"):
            raise RuntimeError(f"frontend tensors live on the CPU; device '{name}' is not available")
        return super().__new__(cls, "cpu")

    @property
    def type(self):
        """The device type: always 'cpu'."""
        return "cpu"


class cuda:
    """No CUDA: `frontend.cuda.is_available()` is False (so device-selection code ports)."""

    @staticmethod
    def is_available():
        """False: there is no CUDA device."""
        return False

    @staticmethod
    def device_count():
        """0: there is no CUDA device."""
        return 0


def is_tensor(obj):
    """True for frontend tensors."""
    return isinstance(obj, Tensor)


def numel(x):
    """Number of elements of a tensor."""
    return x.numel()


def inference_mode(mode=True):
    """Like no_grad (frontend has no separate inference mode)."""
    return no_grad() if mode else enable_grad()


del float16

from frontend import jit  # noqa: E402  (graph mode: frontend.jit.trace)
