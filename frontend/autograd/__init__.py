"""Reverse-mode automatic differentiation: a define-by-run tape (`graph.Node`), gradient rules
for every differentiable primitive (`rules.RULES`), and `gradcheck` by finite differences.

    >>> import frontend
    >>> x = frontend.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4.])
"""
import numpy as np


def _contig(a):
    """a as a C-contiguous array (0-d arrays stay 0-d, unlike np.ascontiguousarray)."""
    return np.asarray(a, order="C")

from frontend.autograd.function import Function, FunctionCtx
from frontend.autograd.graph import (GradMode, enable_grad, is_grad_enabled, no_grad,
                                     run_backward, set_grad_enabled)


def _check_roots(tensors, grad_tensors):
    from frontend._tensor import Tensor, _wrap
    roots, grads = [], []
    for t, g in zip(tensors, grad_tensors):
        if not t._requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if t._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = _wrap(np.ones(t._data.shape, t._data.dtype))
        elif not isinstance(g, Tensor):
            g = _wrap(_contig(np.asarray(g, t._data.dtype)))
        if tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(
                f"Mismatch in shape: grad_output[0] has a shape of {list(g.shape)} and output[0] has a "
                f"shape of {list(t.shape)}.")
        roots.append(t)
        grads.append(g)
    return roots, grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Computes gradients of `tensors` and accumulates them into the leaves' `.grad`."""
    from frontend._tensor import Tensor
    if create_graph:
        raise NotImplementedError("create_graph=True (higher-order gradients) is not supported")
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    roots, grads = _check_roots(list(tensors), list(grad_tensors))
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        captured = run_backward(roots, grads, bool(retain_graph), capture=inputs)
        for t in inputs:
            g = captured.get(id(t) if t._grad_fn is None else (id(t._grad_fn), t._out_idx))
            if g is not None:
                t.grad = g if t.grad is None else t.grad + g
        return
    run_backward(roots, grads, bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Returns d(outputs)/d(inputs) as a tuple, without touching `.grad`."""
    from frontend._tensor import Tensor, _zeros_like_array
    if create_graph:
        raise NotImplementedError("create_graph=True (higher-order gradients) is not supported")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    roots, grads = _check_roots(outputs, list(grad_outputs))
    captured = run_backward(roots, grads, bool(retain_graph), capture=inputs)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(id(t) if t._grad_fn is None else (id(t._grad_fn), t._out_idx))
        if g is None and not allow_unused:
            raise RuntimeError(f"One of the differentiated Tensors (input {i}) appears to not have been "
                               "used in the graph. Set allow_unused=True if this is the desired behavior.")
        result.append(g)
    return tuple(result)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Compares autograd gradients of `fn(*inputs)` with central finite differences.

    Floating inputs that require grad are checked; use float64 inputs (as torch.autograd.gradcheck
    expects). Every output is checked with a random projection vector. Returns True or raises
    (or returns False with raise_exception=False).

        >>> x = frontend.randn(3, dtype=frontend.float64, requires_grad=True)
        >>> frontend.autograd.gradcheck(frontend.tanh, (x,))
        True
    """
    from frontend._tensor import Tensor, _wrap
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t._requires_grad]
    rng = np.random.default_rng(1234)

    def outputs_of(args):
        with no_grad():
            out = fn(*args)
        outs = [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]
        return [o._data.astype(np.float64) for o in outs]

    base = outputs_of(inputs)
    projections = [rng.standard_normal(o.shape) for o in base]
    out = fn(*inputs)
    outs = [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]
    float_outs = [(o, p) for o, p in zip(outs, projections) if o._data.dtype.kind == "f" and o._requires_grad]
    if not float_outs:
        raise RuntimeError("gradcheck: no output requires grad")
    analytic = grad([o for o, _ in float_outs], [inputs[i] for i in diff],
                    [_wrap(_contig(p.astype(o._data.dtype))) for o, p in float_outs],
                    allow_unused=True)
    float_idx = [k for k, o in enumerate(outs) if o._data.dtype.kind == "f" and o._requires_grad]
    for slot, i in enumerate(diff):
        x = inputs[i]
        numeric = np.zeros(x.shape, np.float64)
        flat = x._data.reshape(-1)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = outputs_of(inputs)
            flat[j] = orig - eps
            minus = outputs_of(inputs)
            flat[j] = orig
            numeric.reshape(-1)[j] = sum(
                float(np.sum((plus[k] - minus[k]) * projections[k])) for k in float_idx) / (2 * eps)
        got = analytic[slot]
        got = np.zeros(x.shape) if got is None else got._data.astype(np.float64)
        if not np.allclose(got, numeric, atol=atol, rtol=rtol):
            idx = np.unravel_index(int(np.argmax(np.abs(got - numeric))), x.shape) if x.ndim else ()
            msg = (f"Jacobian mismatch for output 0 with respect to input {i},\n"
                   f"numerical:{numeric[idx]!r}\nanalytical:{got[idx]!r} at index {tuple(int(v) for v in idx)}")
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


class GradcheckError(RuntimeError):
    """Raised by gradcheck when analytic and numeric gradients disagree."""


__all__ = ["Function", "FunctionCtx", "backward", "grad", "gradcheck", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "GradMode", "GradcheckError"]
