"""SGD with momentum, dampening, Nesterov and weight decay (torch's update rule)."""
from frontend import _dispatch
from frontend.optim.optimizer import Optimizer


class SGD(Optimizer):
    """p -= lr * (g + wd p), with momentum buffer b = mu b + (1 - dampening) g.

        >>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def _updated(self, group, p):
        """Weight decay, then momentum (Nesterov or not), then the step: one sgd_update op."""
        mu = group["momentum"]
        state = self.state.setdefault(p, {}) if mu else None
        buf = state.get("momentum_buffer") if mu else None
        new_p, new_buf = _dispatch.dispatch("sgd_update", [p, p.grad, buf], {
            "lr": float(group["lr"]), "momentum": float(mu), "dampening": float(group["dampening"]),
            "weight_decay": float(group["weight_decay"]), "nesterov": bool(group["nesterov"]),
            "maximize": bool(group["maximize"])})
        if mu:
            state["momentum_buffer"] = new_buf
        return new_p
