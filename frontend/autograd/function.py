"""`autograd.Function`: an operation with a hand-written backward, as in torch.

The forward runs with recording off (its ops still go through dispatch, so a tracer sees them);
one tape node stands for the whole forward, and `backward` maps output gradients to input
gradients. Used for composites whose closed-form gradient needs fewer passes than
differentiating their primitives (training-mode batch norm), and available to users:

    >>> class Square(frontend.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return grad * 2 * x
    >>> Square.apply(frontend.tensor([3.0], requires_grad=True))
    tensor([9.], grad_fn=<SquareBackward>)
"""
from frontend.autograd.graph import GradMode, Node, no_grad


class FunctionCtx:
    """The `ctx` of a Function: save_for_backward / saved_tensors, needs_input_grad,
    mark_non_differentiable."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors = ()
        self._non_differentiable = set()

    def save_for_backward(self, *tensors):
        """Keeps tensors (detached) for backward."""
        from frontend._tensor import Tensor, _wrap
        self.saved_tensors = tuple(_wrap(t._data) if isinstance(t, Tensor) else t for t in tensors)

    def mark_non_differentiable(self, *tensors):
        """Outputs that get no gradient (e.g. integer indices or statistics)."""
        self._non_differentiable.update(id(t) for t in tensors)


class Function:
    """Subclass with static `forward(ctx, *args)` and `backward(ctx, *grads)`; call `apply`."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        """Computes the outputs from the inputs; `ctx.save_for_backward(...)` keeps what backward needs."""
        raise NotImplementedError("Function subclasses must implement forward")

    @staticmethod
    def backward(ctx, *grads):
        """Given the gradient of each output, returns one gradient (or None) per forward input."""
        raise NotImplementedError("Function subclasses must implement backward")

    @classmethod
    def apply(cls, *args):
        """Runs forward and, if an input requires grad, records one node for backward."""
        from frontend._tensor import Tensor
        needs = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        ctx = FunctionCtx(needs)
        with no_grad():
            result = cls.forward(ctx, *args)
        outputs = result if isinstance(result, tuple) else (result,)
        if GradMode.enabled and any(needs):
            tensors = [a if isinstance(a, Tensor) else None for a in args]
            node = Node(cls.__name__, tensors, {}, list(outputs))
            node.function = (cls, ctx)
            for i, out in enumerate(outputs):
                if out._data.dtype.kind == "f" and id(out) not in ctx._non_differentiable:
                    out._grad_fn = node
                    out._out_idx = i
                    out._requires_grad = True
        return result
