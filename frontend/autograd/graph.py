"""The autograd tape: `Node`s recorded by ops, and the engine that runs them backward."""
import threading

from frontend.autograd import rules as _rules

_FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


class GradMode:
    """Whether ops record the tape (one switch for the process, like torch's per-thread flag)."""

    enabled = True


def _camel(op):
    return "".join(part.capitalize() for part in op.split("_"))


class Node:
    """One recorded op: its inputs, attributes and saved outputs, and the rule that maps output
    gradients to input gradients. `Tensor.grad_fn` of an op's output points here."""

    __slots__ = ("op", "edges", "in_arrays", "attrs", "out_arrays", "pre_hooks", "retained", "freed",
                 "function", "__weakref__")

    def __init__(self, op, inputs, attrs, outputs):
        self.op = op
        # Captured now: a later in-place op may rebase an input tensor onto another node.
        self.in_arrays = [None if t is None else t._data for t in inputs]
        self.edges = [(t._grad_fn, t._out_idx, t) if t is not None and t._requires_grad else None
                      for t in inputs]
        self.attrs = attrs
        self.out_arrays = [o._data for o in outputs]
        self.pre_hooks = None
        self.retained = None
        self.freed = False
        self.function = None  # (Function subclass, its ctx) for autograd.Function nodes

    def name(self):
        """Like torch: 'AddBackward0' for ops, '<Function>Backward' for autograd.Function."""
        if self.function is not None:
            return self.op + "Backward"
        return _camel(self.op) + "Backward0"

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"

    @property
    def next_functions(self):
        """(grad_fn, output index) of each input; (None, 0) for inputs without a graph."""
        return tuple((None, 0) if e is None else (e[0], e[1]) for e in self.edges)


class Context:
    """What a gradient rule sees: detached inputs and outputs, attributes, and which inputs
    need a gradient."""

    __slots__ = ("inputs", "outputs", "attrs", "needs_input_grad")

    def __init__(self, node):
        from frontend._tensor import _wrap
        self.inputs = [None if a is None else _wrap(a) for a in node.in_arrays]
        self.outputs = [_wrap(a) for a in node.out_arrays]
        self.attrs = node.attrs
        self.needs_input_grad = [e is not None for e in node.edges]


def record(op, inputs, attrs, outputs):
    """Attaches a Node for `op` to its floating-point outputs."""
    node = Node(op, inputs, attrs, outputs)
    for i, o in enumerate(outputs):
        if o._data.dtype.kind == "f":
            o._grad_fn = node
            o._out_idx = i
            o._requires_grad = True
    return node


def _topological_order(root_nodes):
    """Nodes reachable from `root_nodes`, each before the nodes of its inputs."""
    order, visited = [], set()
    for root in root_nodes:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root.edges))]
        while stack:
            node, it = stack[-1]
            for e in it:
                if e is None or e[0] is None:
                    continue
                child = e[0]
                if child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child.edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _accumulate(a, b):
    return b if a is None else a + b


def run_backward(roots, grads, retain_graph=False, capture=None):
    """Propagates `grads` (one per root tensor) through the tape. Leaf gradients accumulate
    into `.grad`, unless `capture` (a list of tensors) is given: then their gradients are
    returned instead and no `.grad` changes."""
    from frontend._tensor import _zeros_like_array
    prev = GradMode.enabled
    GradMode.enabled = False
    try:
        node_grads = {}
        leaf_grads = {}
        captured = {} if capture is not None else None
        capture_ids = ({id(t) if t._grad_fn is None else (id(t._grad_fn), t._out_idx) for t in capture}
                       if capture is not None else ())
        for t, g in zip(roots, grads):
            if t._grad_fn is None:
                leaf_grads[id(t)] = (t, _accumulate(leaf_grads.get(id(t), (t, None))[1], g))
            else:
                slots = node_grads.setdefault(t._grad_fn, [None] * len(t._grad_fn.out_arrays))
                slots[t._out_idx] = _accumulate(slots[t._out_idx], g)
        for node in _topological_order([t._grad_fn for t in roots if t._grad_fn is not None]):
            slots = node_grads.pop(node, None)
            if slots is None:
                continue
            if node.freed:
                raise RuntimeError(_FREED_MESSAGE)
            if node.pre_hooks:
                for idx, hooks in node.pre_hooks.items():
                    if slots[idx] is None:
                        continue
                    for hook in hooks:
                        replaced = hook(slots[idx])
                        if replaced is not None:
                            slots[idx] = replaced
            if node.retained:
                for idx, ref in node.retained.items():
                    t = ref()
                    if t is not None and slots[idx] is not None:
                        t.grad = _accumulate(t.grad, slots[idx])
            if captured is not None:
                for idx, g in enumerate(slots):
                    key = (id(node), idx)
                    if key in capture_ids and g is not None:
                        captured[key] = g
            for i, g in enumerate(slots):
                if g is None:
                    slots[i] = _zeros_like_array(node.out_arrays[i])
            if node.function is not None:
                cls, fn_ctx = node.function
                in_grads = cls.backward(fn_ctx, *slots)
            else:
                rule = _rules.RULES.get(node.op)
                if rule is None:
                    raise RuntimeError(f"the derivative for '{node.op}' is not implemented")
                in_grads = rule(Context(node), *slots)
            if not isinstance(in_grads, (tuple, list)):
                in_grads = (in_grads,)
            if not retain_graph:
                node.freed = True
                if node.function is not None:
                    node.function[1].saved_tensors = ()
            for edge, array, g in zip(node.edges, node.in_arrays, in_grads):
                if g is None or edge is None:
                    continue
                if g._data.shape != array.shape:
                    raise RuntimeError(
                        f"Function {node.name()} returned an invalid gradient - got "
                        f"{list(g.shape)} but expected shape compatible with {list(array.shape)}")
                fn, idx, inp = edge
                if fn is None:
                    prev_entry = leaf_grads.get(id(inp))
                    leaf_grads[id(inp)] = (inp, g if prev_entry is None else prev_entry[1] + g)
                else:
                    slots_in = node_grads.setdefault(fn, [None] * len(fn.out_arrays))
                    slots_in[idx] = _accumulate(slots_in[idx], g)
        if capture is not None:
            for key, (t, g) in leaf_grads.items():
                captured[key] = g
            return captured
        for t, g in leaf_grads.values():
            if t._hooks:
                for hook in t._hooks:
                    replaced = hook(g)
                    if replaced is not None:
                        g = replaced
            if g.dtype is not t.dtype:
                g = g.to(t.dtype)
            t.grad = g if t.grad is None else t.grad + g
        return None
    finally:
        GradMode.enabled = prev


class no_grad:
    """Context manager and decorator that disables gradient recording.

        >>> with frontend.no_grad():
        ...     y = x * 2   # y.requires_grad is False
    """

    def __enter__(self):
        self.prev = GradMode.enabled
        GradMode.enabled = False

    def __exit__(self, *exc):
        GradMode.enabled = self.prev

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class enable_grad(no_grad):
    """Context manager and decorator that enables gradient recording (inside `no_grad`)."""

    def __enter__(self):
        self.prev = GradMode.enabled
        GradMode.enabled = True


class set_grad_enabled(no_grad):
    """Sets gradient recording on or off, as a function or a context manager."""

    def __init__(self, mode):
        self.prev = GradMode.enabled
        GradMode.enabled = bool(mode)
        self.mode = bool(mode)

    def __enter__(self):
        GradMode.enabled = self.mode


def is_grad_enabled():
    """Whether ops currently record the tape."""
    return GradMode.enabled


del threading
