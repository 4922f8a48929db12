"""`nn.utils`: gradient clipping and parameter vectors."""
import math

import numpy as np

from frontend._tensor import _wrap


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scales gradients in place so their total norm is at most max_norm; returns the norm."""
    from frontend import _ops as O
    from frontend.autograd.graph import no_grad
    params = [parameters] if hasattr(parameters, "_data") else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return _wrap(np.array(0.0, np.float32))
    with no_grad():
        if norm_type == math.inf:
            total = O.amax(O.stack([O.amax(O.abs(g)) for g in grads]))
        else:
            total = O.pow(O.sum(O.stack([O.sum(O.pow(O.abs(g), float(norm_type))) for g in grads])), 1.0 / norm_type)
        if error_if_nonfinite and not np.isfinite(total._data).all():
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite")
        coef = float(max_norm) / (float(total._data) + 1e-6)
        if coef < 1:
            for g in grads:
                g._data[...] = O.mul(g, coef)._data
    return total


def clip_grad_value_(parameters, clip_value):
    """Clamps gradients in place to [-clip_value, clip_value]."""
    from frontend import _ops as O
    params = [parameters] if hasattr(parameters, "_data") else list(parameters)
    for p in params:
        if p.grad is not None:
            p.grad._data[...] = O.clamp(p.grad, -clip_value, clip_value)._data


def parameters_to_vector(parameters):
    """All parameters flattened into one 1-D tensor."""
    from frontend import _ops as O
    return O.cat([O.reshape(p, [-1]) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copies slices of `vec` into the parameters."""
    offset = 0
    for p in parameters:
        n = p.numel()
        p._data[...] = vec._data[offset:offset + n].reshape(p.shape)
        offset += n
