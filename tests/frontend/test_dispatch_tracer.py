"""The dispatch contract: every op reaches `frontend._dispatch.tracer.record`, Python-value
conversions call `on_python_value`, and in-place updates are visible to the tracer."""
import warnings

import numpy as np
import pytest

import frontend
from frontend import _dispatch, nn


class RecordingTracer:
    def __init__(self):
        self.ops, self.values = [], []

    def record(self, op_type, inputs, attrs, outputs):
        assert all(t is None or isinstance(t, frontend.Tensor) for t in inputs)
        assert all(isinstance(t, frontend.Tensor) for t in outputs)
        self.ops.append((op_type, [id(t) for t in inputs], dict(attrs), [id(t) for t in outputs]))

    def on_python_value(self, tensor):
        self.values.append(id(tensor))


@pytest.fixture
def tracer():
    t = RecordingTracer()
    _dispatch.tracer = t
    yield t
    _dispatch.tracer = None


def test_every_op_is_recorded_with_its_tensors(tracer):
    lin = nn.Linear(3, 2)
    x = frontend.ones(4, 3)
    y = lin(x).relu().sum(1)
    kinds = [op for op, *_ in tracer.ops]
    assert kinds == ["linear", "relu", "sum"]
    op, ins, attrs, outs = tracer.ops[0]
    assert ins == [id(x), id(lin.weight), id(lin.bias)] and attrs == {}
    assert tracer.ops[2][2] == {"dim": [1], "keepdim": False} and tracer.ops[2][3] == [id(y)]


def test_python_values_are_reported(tracer):
    x = frontend.tensor([1.5])
    x.item()
    bool(x)
    x.tolist()
    float(x)
    x.numpy()
    assert tracer.values == [id(x)] * 5


def test_inplace_updates_rebind_the_tensor(tracer):
    x = frontend.ones(2)
    y = x * 2
    y += 1
    last = tracer.ops[-1]
    assert last[3] == [id(y)]  # the tracer learns that y now holds the new value
    y[0] = 5.0
    assert tracer.ops[-1][3] == [id(y)]
    assert y.tolist() == [5.0, 3.0]


def test_traced_module_with_inplace_ops_matches_eager():
    jit = pytest.importorskip("frontend.jit")

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            y = self.fc(x)
            y += 1
            y.mul_(2)
            y[:, 0] = 0.0
            return y.relu()

    m = M().eval()
    x = frontend.randn(3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traced = jit.trace(m, x)
    with frontend.no_grad():
        assert np.allclose(traced(x).numpy(), m(x).numpy())
