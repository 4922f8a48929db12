"""Adam and AdamW (torch's update rules, optional amsgrad)."""
import math

from frontend import _ops as O
from frontend.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adaptive moments: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, p -= lr m_hat / (sqrt(v_hat) + eps).
    weight_decay adds wd * p to the gradient (L2); AdamW decays the weights directly."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameters: {betas}")
        if eps < 0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _updated(self, group, p):
        """L2 or decoupled decay, moment updates, bias-corrected step."""
        g = O.neg(p.grad) if group["maximize"] else p.grad
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        param = p
        if wd:
            if self._decoupled:
                param = O.mul(p, 1 - lr * wd)
            else:
                g = O.add(g, O.mul(p, wd))
        state = self.state.setdefault(p, {})
        if not state:
            state["step"] = 0
            state["exp_avg"] = O.mul(p, 0.0)
            state["exp_avg_sq"] = O.mul(p, 0.0)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = O.mul(p, 0.0)
        state["step"] += 1
        t = state["step"]
        m = O.add(O.mul(state["exp_avg"], b1), O.mul(g, 1 - b1))
        v = O.add(O.mul(state["exp_avg_sq"], b2), O.mul(O.mul(g, g), 1 - b2))
        state["exp_avg"], state["exp_avg_sq"] = m, v
        if group["amsgrad"]:
            v = O.maximum(state["max_exp_avg_sq"], v)
            state["max_exp_avg_sq"] = v
        bias1 = 1 - b1 ** t
        bias2 = 1 - b2 ** t
        denom = O.add(O.div(O.sqrt(v), math.sqrt(bias2)), eps)
        return O.sub(param, O.mul(O.div(m, denom), lr / bias1))


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01)."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
