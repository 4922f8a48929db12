"""`frontend.save` / `frontend.load`: state dicts in the safetensors format (no code runs on
load, unlike pickle).

    >>> frontend.save(model.state_dict(), "model.safetensors")
    >>> model.load_state_dict(frontend.load("model.safetensors"))
"""
import json

import numpy as np

_KEY_ORDER = "frontend.key_order"


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
    # safetensors stores tensors sorted by dtype and size; the key order of the dict (which
    # torch.save keeps, and code iterating a state_dict relies on) is kept in the metadata.
    meta[_KEY_ORDER] = json.dumps(list(arrays))
    if hasattr(f, "write"):
        f.write(save(arrays, metadata=meta or None))
    else:
        save_file(arrays, str(f), metadata=meta or None)


def load(f, map_location=None, weights_only=True):
    """Loads a safetensors file into a dict of str -> Tensor, in the order they were saved."""
    from safetensors.numpy import load as load_bytes
    from frontend._tensor import _wrap
    if hasattr(f, "read"):
        data = f.read()
    else:
        with open(f, "rb") as file:
            data = file.read()
    arrays = load_bytes(data)
    order = [k for k in _saved_key_order(data) if k in arrays]
    order += [k for k in arrays if k not in set(order)]
    return {k: _wrap(_contig(arrays[k])) for k in order}


def _saved_key_order(data: bytes) -> list:
    """The key order `save` recorded in the safetensors header (empty for other writers' files)."""
    try:
        header_size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_size])
        order = json.loads(header.get("__metadata__", {}).get(_KEY_ORDER, "[]"))
    except (ValueError, AttributeError, TypeError):
        return []
    return [k for k in order if isinstance(k, str)] if isinstance(order, list) else []
