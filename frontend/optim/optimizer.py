"""`Optimizer` base: parameter groups, zero_grad, state_dict / load_state_dict."""
import copy

import numpy as np

from frontend._tensor import Tensor, _wrap
from frontend.autograd.graph import enable_grad, no_grad


class Optimizer:
    """Holds parameter groups (dicts with 'params' and hyperparameters) and per-parameter state."""

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got " + type(params).__name__)
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        """Adds a group; missing hyperparameters take the defaults."""
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        for p in group["params"]:
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clears every parameter's .grad (to None by default, else to zeros)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad._data[...] = 0

    @no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns `closure()`'s loss if given
        (the closure re-evaluates the model, with gradients enabled)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group, p in self._params_with_grad():
            new = self._updated(group, p)
            p._data[...] = new._data
            p._version += 1
        return loss

    def _updated(self, group, p):
        """The new value of parameter `p` (its .grad is set): the optimizer's update rule."""
        raise NotImplementedError

    def _params_with_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p

    def state_dict(self):
        """{'state': {index: {name: tensor/number}}, 'param_groups': [... 'params': [indices]]},
        as in torch."""
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (_wrap(v._data.copy()) if isinstance(v, Tensor) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restores hyperparameters and state saved by state_dict()."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        params = {}
        for own, saved in zip(self.param_groups, groups):
            if len(own["params"]) != len(saved["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of optimizer's group")
            for p, i in zip(own["params"], saved["params"]):
                params[i] = p
            for k, v in saved.items():
                if k != "params":
                    own[k] = v
        self.state = {}
        for i, s in state_dict["state"].items():
            p = params[int(i)]
            self.state[p] = {k: (_wrap(np.array(v._data if isinstance(v, Tensor) else v, dtype=p._data.dtype))
                                 if isinstance(v, (Tensor, np.ndarray)) else copy.deepcopy(v))
                             for k, v in s.items()}

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"
