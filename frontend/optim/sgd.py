"""SGD with momentum, dampening, Nesterov and weight decay (torch's update rule)."""
from frontend import _ops as O
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
        """Weight decay, then momentum (Nesterov or not), then the step."""
        g = p.grad
        if group["maximize"]:
            g = O.neg(g)
        if group["weight_decay"]:
            g = O.add(g, O.mul(p, group["weight_decay"]))
        mu = group["momentum"]
        if mu:
            state = self.state.setdefault(p, {})
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = O.clone(g)
            else:
                buf = O.add(O.mul(buf, mu), O.mul(g, 1 - group["dampening"]) if group["dampening"] else g)
            state["momentum_buffer"] = buf
            g = O.add(g, O.mul(buf, mu)) if group["nesterov"] else buf
        return O.sub(p, O.mul(g, group["lr"]))
