"""`frontend.save` / `frontend.load`: state dicts in the safetensors format (no code runs on
load, unlike pickle).

    >>> frontend.save(model.state_dict(), "model.safetensors")
    >>> model.load_state_dict(frontend.load("model.safetensors"))
"""
import numpy as np


def _contig(a):
    """a as a C-contiguous array (0-d arrays stay 0-d, unlike np.ascontiguousarray)."""
    return np.asarray(a, order="C")


def save(obj, f, metadata=None):
    """Saves a dict of str -> Tensor (or numpy array) to path `f` in safetensors format."""
    from safetensors.numpy import save, save_file
    from frontend._tensor import Tensor
    if not isinstance(obj, dict):
        raise TypeError(f"frontend.save stores dicts of tensors (a state_dict), got {type(obj).__name__}")
    arrays = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"frontend.save: keys must be str, got {type(key).__name__}")
        if isinstance(value, Tensor):
            arrays[key] = _contig(value._data)
        elif isinstance(value, np.ndarray):
            arrays[key] = _contig(value)
        else:
            raise TypeError(f"frontend.save: value for '{key}' is a {type(value).__name__}, expected a tensor")
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    if hasattr(f, "write"):
        f.write(save(arrays, metadata=meta or None))
    else:
        save_file(arrays, str(f), metadata=meta or None)


def load(f, map_location=None, weights_only=True):
    """Loads a safetensors file into a dict of str -> Tensor."""
    from safetensors.numpy import load as load_bytes, load_file
    from frontend._tensor import _wrap
    arrays = load_bytes(f.read()) if hasattr(f, "read") else load_file(str(f))
    return {k: _wrap(_contig(v)) for k, v in arrays.items()}
