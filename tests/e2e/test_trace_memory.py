"""Memory planning on a real network: ResNet-18 at 224x224 (planned, not run)."""
import warnings

import numpy as np
import pytest

frontend = pytest.importorskip("frontend")
jit = pytest.importorskip("frontend.jit")
models = pytest.importorskip("frontend.models")

import graphruntime  # noqa: E402


@pytest.mark.parametrize("level", [0, 2])
def test_resnet18_arena_close_to_lower_bound(level):
    frontend.manual_seed(0)
    model = models.resnet18().eval()
    # Traced small with dynamic batch and spatial axes, planned at 1x3x224x224.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = jit.trace(model, frontend.randn(1, 3, 32, 32), dynamic_axes=[0, 2, 3])
    net = graphruntime.optimize(traced.net, level)
    predictor = graphruntime.Predictor(net, num_threads=1)
    stats = predictor.plan({predictor.input_names[0]: [1, 3, 224, 224]})
    assert stats["arena_bytes"] <= 1.1 * stats["lower_bound_bytes"], stats
    assert stats["arena_bytes"] <= 0.35 * stats["naive_bytes"], stats
    state_bytes = sum(v._data.nbytes for v in model.state_dict().values() if v._data.dtype == np.float32)
    if level == 0:
        assert stats["weight_bytes"] == state_bytes
    else:  # batch-norm parameters are folded into the convolutions
        assert stats["weight_bytes"] < state_bytes
