"""sgd_update: torch.optim.SGD's rule for one parameter, as one op.

Checked against the element-wise formula evaluated op by op in the parameter's dtype (numpy,
same rounding steps: bit-exact), and, with PyTorch installed, against torch.optim.SGD over
several steps for every option (torch fuses p + (-lr) * d into one rounding, hence rtol).
"""
import itertools

import numpy as np
import pytest

from graphruntime import _C
from graphruntime.errors import InvalidArgumentError

TESTED_OPS = {"sgd_update"}

OPTIONS = [dict(momentum=m, dampening=d, weight_decay=w, nesterov=n, maximize=x)
           for m, d, w, n, x in itertools.product((0.0, 0.9), (0.0, 0.25), (0.0, 0.01), (False, True),
                                                  (False, True))
           if not (n and (m == 0 or d != 0))]


def formula(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, maximize):
    t = p.dtype.type
    d = -g if maximize else g.copy()
    if weight_decay:
        d = d + p * t(weight_decay)
    new_buf = d
    if momentum:
        if buf is not None:
            add = d * t(1 - dampening) if dampening else d
            new_buf = buf * t(momentum) + add
        d = d + new_buf * t(momentum) if nesterov else new_buf
    return p - d * t(lr), new_buf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_matches_the_formula_bit_for_bit(options, dtype):
    rng = np.random.default_rng(len(str(options)))
    p, g, buf = (rng.standard_normal((7, 5)).astype(dtype) for _ in range(3))
    for b in (None, buf):
        got_p, got_buf = _C.run_op("sgd_update", [p, g, b], dict(options, lr=0.05))
        want_p, want_buf = formula(p, g, b, 0.05, **options)
        np.testing.assert_array_equal(got_p, want_p)
        np.testing.assert_array_equal(got_buf, want_buf)


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_matches_torch_sgd_over_steps(options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal((4, 6)).astype(np.float32)
    grads = [rng.standard_normal((4, 6)).astype(np.float32) for _ in range(4)]
    tp = torch.nn.Parameter(torch.tensor(p0))
    opt = torch.optim.SGD([tp], lr=0.1, **options)
    p, buf = p0, None
    for g in grads:
        tp.grad = torch.tensor(g)
        opt.step()
        p, new_buf = _C.run_op("sgd_update", [p, g, buf], dict(options, lr=0.1))
        buf = new_buf if options["momentum"] else None
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_bad_inputs_name_the_input():
    p = np.zeros((2, 3), np.float32)
    with pytest.raises(InvalidArgumentError, match="sgd_update.*'grad' has shape \\[3, 2\\]"):
        _C.run_op("sgd_update", [p, np.zeros((3, 2), np.float32)], {"lr": 0.1})
    with pytest.raises(InvalidArgumentError, match="sgd_update.*'momentum_buffer' has dtype float64"):
        _C.run_op("sgd_update", [p, p, p.astype(np.float64)], {"lr": 0.1})
    with pytest.raises(InvalidArgumentError, match="sgd_update.*lr"):
        _C.run_op("sgd_update", [p, p], {})
