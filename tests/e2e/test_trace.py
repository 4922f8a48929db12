"""Graph mode end to end: models built with `frontend` are traced at batch 1 with a dynamic batch
axis, run in the C++ runtime at batch 8, and compared with eager: bit-exact without
optimization, within rtol 1e-4 after batch-norm folding and activation fusion."""
import warnings

import numpy as np
import pytest

frontend = pytest.importorskip("frontend")
jit = pytest.importorskip("frontend.jit")
models = pytest.importorskip("frontend.models")

import graphruntime  # noqa: E402
from graphruntime import errors  # noqa: E402
from frontend import nn  # noqa: E402


def randomize_batch_norm_stats(module, seed=0):
    """Non-trivial running statistics so that folding them actually changes the weights."""
    rng = np.random.default_rng(seed)
    for name, buf in module.named_buffers():
        if name.endswith("running_mean"):
            buf._data[...] = rng.uniform(-0.5, 0.5, buf._data.shape).astype(buf._data.dtype)
        elif name.endswith("running_var"):
            buf._data[...] = rng.uniform(0.5, 2.0, buf._data.shape).astype(buf._data.dtype)
    return module


class reference_kernels:
    """Caps the ISA at the scalar reference kernels (restored on exit)."""

    def __enter__(self):
        self.saved = graphruntime._C.get_max_isa()
        graphruntime._C.set_max_isa("reference")

    def __exit__(self, *exc):
        graphruntime._C.set_max_isa(self.saved)


def check_model(model, make_input, rtol=1e-4, atol=1e-5):
    model.eval()
    x1 = make_input(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jit.TracerWarning)
        traced = jit.trace(model, x1, dynamic_axes=[0])
    assert traced.net.input[0].dims[0] == -1
    x8 = make_input(8)
    name = traced.net.input[0].name
    # Level 0 runs the ops eager ran, in the same order and with the same kernels (kernels choose
    # their algorithm by shape, never by whether the weight is a constant): the bits agree, on
    # the reference kernels and on the fast ones.
    with reference_kernels():
        with frontend.no_grad():
            expected_reference = model(x8)._data
        got = graphruntime.Predictor(traced.net, num_threads=2).run({name: x8._data})["output"]
    np.testing.assert_array_equal(got, expected_reference)
    with frontend.no_grad():
        expected = model(x8)._data
    plain = graphruntime.Predictor(traced.net, num_threads=2).run({name: x8._data})["output"]
    np.testing.assert_array_equal(plain, expected)
    optimized = graphruntime.optimize(traced.net, 2)
    fast = graphruntime.Predictor(optimized, num_threads=2).run({name: x8._data})["output"]
    np.testing.assert_allclose(fast, expected, rtol=rtol, atol=atol)
    return traced, optimized


def image_input(channels, size, seed=0):
    def make(batch):
        rng = np.random.default_rng(seed + batch)
        return frontend.from_numpy(rng.standard_normal((batch, channels, size, size)).astype(np.float32))
    return make


def test_mlp():
    frontend.manual_seed(0)
    traced, optimized = check_model(models.MLP((64, 32, 16, 10)), image_input(1, 8))
    assert "linear" in traced.graph
    # relu fused into the linears
    assert [op.type for op in optimized.op].count("relu") == 0


def test_small_cnn():
    frontend.manual_seed(0)
    model = randomize_batch_norm_stats(models.SmallCNN(in_channels=1, width=8))
    traced, optimized = check_model(model, image_input(1, 8))
    types = [op.type for op in optimized.op]
    assert "batch_norm" not in types and "relu" not in types
    assert types.count("conv2d") == 3


def test_resnet18():
    frontend.manual_seed(0)
    model = randomize_batch_norm_stats(models.resnet18(num_classes=10))
    traced, optimized = check_model(model, image_input(3, 32), rtol=1e-4, atol=1e-4)
    assert "batch_norm" not in [op.type for op in optimized.op]
    # Parameters are initializers named by their state_dict keys.
    names = {t.name for t in traced.net.initializer}
    assert "layer1.0.conv1.weight" in names and "fc.bias" in names
    assert "layer1.0.bn1.running_var" in names


def test_mobilenet_v2():
    frontend.manual_seed(0)
    model = randomize_batch_norm_stats(models.mobilenet_v2(num_classes=10))
    check_model(model, image_input(3, 32), rtol=1e-4, atol=1e-4)


def test_transformer_encoder():
    frontend.manual_seed(0)
    model = models.transformer_encoder(d_model=32, nhead=4, num_layers=2, dim_feedforward=64)

    def make(batch):
        rng = np.random.default_rng(batch)
        return frontend.from_numpy(rng.standard_normal((batch, 10, 32)).astype(np.float32))
    check_model(model, make)


def test_several_inputs_and_outputs_and_save(tmp_path):
    frontend.manual_seed(0)

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 3)
            self.b = nn.Linear(5, 3)

        def forward(self, x, y):
            h = self.a(x) + self.b(y)
            return h.relu(), h * 2.0

    model = TwoHeads().eval()
    x, y = frontend.randn(1, 4), frontend.randn(1, 5)
    traced = jit.trace(model, (x, y), dynamic_axes={"x": [0], "y": [0]})
    assert traced.input_names == ["x", "y"]
    x8, y8 = frontend.randn(8, 4), frontend.randn(8, 5)
    r, s = traced(x8, y8)
    er, es = model(x8, y8)
    np.testing.assert_array_equal(r._data, er._data)
    np.testing.assert_array_equal(s._data, es._data)
    traced.save(tmp_path / "two.pb")
    out = graphruntime.Predictor(tmp_path / "two.pb").run({"x": x8._data, "y": y8._data})
    np.testing.assert_array_equal(out["output_0"], er._data)


def test_tracer_warns_on_python_values():
    def f(x):
        if float(x.sum()) > 0:  # data-dependent control flow
            return x * 2.0
        return x * 3.0
    with pytest.warns(jit.TracerWarning):
        jit.trace(f, frontend.ones(2, 3))


def test_baked_batch_size_error_names_the_op():
    def f(x):
        return x + frontend.ones(1, 3)  # a constant of the traced batch size... broadcast is fine
    traced = jit.trace(f, frontend.ones(2, 3), dynamic_axes=[0])
    traced(frontend.ones(5, 3))

    def g(x):
        return x + frontend.ones(2, 3)  # baked batch of 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = jit.trace(g, frontend.ones(2, 3), dynamic_axes=[0])
    with pytest.raises(errors.InvalidArgumentError, match="add"):
        traced(frontend.ones(5, 3))


def test_ops_are_named_after_modules():
    frontend.manual_seed(0)
    model = models.resnet18(num_classes=10).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = jit.trace(model, frontend.randn(1, 3, 32, 32))
    names = {(op.type, op.name) for op in traced.net.op}
    assert ("conv2d", "layer1.0.conv1") in names and ("linear", "fc") in names
    # The hooks are gone after tracing: eager calls are unaffected.
    assert model(frontend.randn(1, 3, 32, 32)).shape == frontend.Size([1, 10])


def test_outputs_that_are_inputs_constants_or_repeated():
    def f(x):
        y = x * 2.0
        return x, y, y
    traced = jit.trace(f, frontend.ones(2, 3), dynamic_axes=[0])
    x = frontend.randn(4, 3)
    a, b, c = traced(x)
    np.testing.assert_array_equal(a._data, x._data)
    np.testing.assert_array_equal(b._data, x._data * 2)
    np.testing.assert_array_equal(c._data, x._data * 2)
    # The identity-removal pass keeps the copies that give outputs their own names.
    out = graphruntime.Predictor(graphruntime.optimize(traced.net, 2)).run({traced.input_names[0]: x._data})
    np.testing.assert_array_equal(out["output_0"], x._data)


def test_dict_and_nested_outputs_keep_their_structure_with_eval_dropout_and_batch_norm():
    frontend.manual_seed(0)

    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5), nn.ReLU())
            self.cls = nn.Linear(6, 3)

        def forward(self, x, mask):
            h = self.body(x)
            logits = self.cls(h) + mask
            return {"logits": logits, "extra": (h.sum(1), [logits.softmax(-1)])}

    model = randomize_batch_norm_stats(Heads()).eval()
    x, mask = frontend.randn(1, 4), frontend.randn(1, 3)
    traced = jit.trace(model, (x, mask), dynamic_axes=[0])
    assert [vi.name for vi in traced.net.output] == ["logits", "extra_0", "extra_1_0"]
    x8, mask8 = frontend.randn(8, 4), frontend.randn(8, 3)
    got, expected = traced(x8, mask8), model(x8, mask8)
    assert list(got) == ["logits", "extra"] and isinstance(got["extra"], tuple)
    assert isinstance(got["extra"][1], list)
    np.testing.assert_array_equal(got["logits"]._data, expected["logits"]._data)
    np.testing.assert_array_equal(got["extra"][0]._data, expected["extra"][0]._data)
    np.testing.assert_array_equal(got["extra"][1][0]._data, expected["extra"][1][0]._data)
    folded = graphruntime.Predictor(graphruntime.optimize(traced.net, 2)).run({"x": x8._data, "mask": mask8._data})
    np.testing.assert_allclose(folded["logits"], expected["logits"]._data, rtol=1e-4, atol=1e-5)
    assert not any(op.type in ("batch_norm", "dropout") for op in graphruntime.optimize(traced.net, 2).op)


def test_non_tensor_outputs_are_rejected_naming_the_output():
    with pytest.raises(TypeError, match=r"output 'output_1' is a float"):
        jit.trace(lambda x: (x * 2.0, 3.0), frontend.ones(2))
    with pytest.raises(TypeError, match="keys must be str"):
        jit.trace(lambda x: {1: x * 2.0}, frontend.ones(2))
    with pytest.raises(ValueError, match="output name 'x' .* is also the name of an input or a parameter"):
        jit.trace(lambda x: {"x": x * 2.0}, frontend.ones(2))

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(frontend.ones(2))

        def forward(self, x):
            return {"weight": x * self.weight}

    with pytest.raises(ValueError, match="output name 'weight'"):
        jit.trace(Scale(), frontend.ones(2))


def test_unsqueeze_squeeze_and_merge_over_two_dynamic_axes_run_at_other_sizes():
    frontend.manual_seed(0)

    class Pool(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.proj = nn.Linear(4, 4)

        def forward(self, ids, mask):
            h = self.proj(self.embed(ids)) * mask.unsqueeze(-1).float()      # [N, L, 4]
            merged = h.reshape(h.shape[0] * h.shape[1], 4).relu()               # [N*L, 4]
            col = h.sum(-1, keepdim=True).squeeze(-1)                            # [N, L]
            return merged, col, h.unsqueeze(1).sum(2).squeeze(1)                 # [N, 4]

    model = Pool().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", jit.TracerWarning)
        traced = jit.trace(model, (frontend.randint(0, 10, (1, 5)), frontend.ones(1, 5, dtype=frontend.bool)),
                           dynamic_axes=[0, 1])
    assert {"flatten", "expand", "transpose"} <= {op.type for op in traced.net.op}
    for n, length in [(4, 6), (2, 1), (1, 5)]:
        ids, mask = frontend.randint(0, 10, (n, length)), frontend.rand(n, length) > 0.3
        for got, expected in zip(traced(ids, mask), model(ids, mask)):
            np.testing.assert_array_equal(got._data, expected._data)
        optimized = graphruntime.Predictor(graphruntime.optimize(traced.net, 2)).run(
            {"ids": ids._data, "mask": mask._data})
        np.testing.assert_allclose(optimized["output_2"], model(ids, mask)[2]._data, rtol=1e-5, atol=1e-6)


def test_reshape_splitting_a_dim_over_two_dynamic_axes_warns_and_the_runtime_names_it():
    def split_heads(x):
        return x.reshape(x.shape[0], x.shape[1], 2, 2) * 2.0
    with pytest.warns(jit.TracerWarning, match="reshape .* splits a dim over several dynamic axes"):
        traced = jit.trace(split_heads, frontend.ones(1, 3, 4), dynamic_axes=[0, 1])
    with pytest.raises(errors.InvalidArgumentError, match="reshape"):
        traced(frontend.ones(2, 5, 4))
