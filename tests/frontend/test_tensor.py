"""Tensor creation, properties, dtype promotion, indexing/assignment, conversions and save/load."""
import io

import numpy as np
import pytest

import frontend
from parity import HAVE_TORCH, needs_torch

if HAVE_TORCH:
    import torch


def test_creation_dtypes_and_shapes():
    assert frontend.tensor([1.0, 2.0]).dtype is frontend.float32
    assert frontend.tensor([1, 2]).dtype is frontend.int64
    assert frontend.tensor([True]).dtype is frontend.bool
    assert frontend.tensor(np.zeros(3, np.float64)).dtype is frontend.float64
    assert frontend.tensor(3.5).shape == () and frontend.tensor(3.5).item() == 3.5
    assert frontend.zeros(2, 3).shape == (2, 3) and frontend.ones((4,)).tolist() == [1.0] * 4
    assert frontend.full((2,), 7).dtype is frontend.int64
    assert frontend.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert frontend.arange(5).tolist() == [0, 1, 2, 3, 4] and frontend.arange(5).dtype is frontend.int64
    assert frontend.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert np.allclose(frontend.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1])
    assert frontend.eye(3).numpy().trace() == 3
    x = frontend.randn(2, 3, dtype=frontend.float64)
    assert frontend.zeros_like(x).dtype is frontend.float64 and frontend.ones_like(x).shape == (2, 3)
    assert frontend.empty(2).shape == (2,) and frontend.full_like(x, 2.0).numpy().sum() == 12
    assert frontend.randint(0, 5, (10,)).dtype is frontend.int64
    assert sorted(frontend.randperm(5).tolist()) == [0, 1, 2, 3, 4]


def test_from_numpy_shares_memory():
    a = np.zeros(3, np.float32)
    t = frontend.from_numpy(a)
    t.add_(1)
    assert a.tolist() == [1.0, 1.0, 1.0]
    a[0] = 5
    assert t[0].item() == 5
    assert t.numpy() is a


def test_manual_seed_reproducible():
    frontend.manual_seed(42)
    a = frontend.randn(5)
    frontend.manual_seed(42)
    assert np.array_equal(a.numpy(), frontend.randn(5).numpy())
    g = frontend.Generator().manual_seed(3)
    b = frontend.rand(4, generator=g)
    assert np.array_equal(b.numpy(), frontend.rand(4, generator=frontend.Generator().manual_seed(3)).numpy())


def test_properties():
    x = frontend.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.ndim == 3 and x.dim() == 3
    assert x.numel() == 24 and x.is_leaf and x.grad is None and x.grad_fn is None
    assert not x.requires_grad and x.is_floating_point() and x.device == "cpu"
    assert repr(x.shape) == "frontend.Size([2, 3, 4])"
    assert len(x) == 2


@needs_torch
@pytest.mark.parametrize("a,b", [
    (np.float32, np.int64), (np.int32, np.int64), (np.uint8, np.int32), (np.bool_, np.int32),
    (np.float32, np.float64), (np.int64, np.bool_), (np.float64, np.int32)])
def test_dtype_promotion_matches_torch(a, b):
    x, y = np.ones(3, a), np.ones(3, b)
    ours = (frontend.tensor(x) + frontend.tensor(y)).numpy().dtype
    theirs = (torch.tensor(x) + torch.tensor(y)).numpy().dtype
    assert ours == theirs


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("scalar", [2, 2.5, True])
def test_python_scalar_promotion_matches_torch(dtype, scalar):
    x = np.ones(3, dtype)
    ours = frontend.tensor(x) * scalar
    theirs = torch.tensor(x) * scalar
    assert ours.numpy().dtype == theirs.numpy().dtype
    assert np.allclose(ours.numpy(), theirs.numpy())


@needs_torch
def test_zero_dim_tensor_promotion_matches_torch():
    a = np.ones(3, np.int32)
    for z in [np.array(2.0), np.array(2, np.int64), np.array(2.0, np.float32)]:
        ours = (frontend.tensor(a) * frontend.tensor(z)).numpy().dtype
        theirs = (torch.tensor(a) * torch.tensor(z)).numpy().dtype
        assert ours == theirs, z.dtype


@needs_torch
@pytest.mark.parametrize("bounds", [(0.5, None), (None, 2.5), (0, 2), (-1.5, 2), (True, None)])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.float32])
def test_clamp_with_python_bounds_promotes_like_torch(dtype, bounds):
    x = np.array([1, 0, 3, 2], dtype)
    ours = frontend.tensor(x).clamp(*bounds)
    theirs = torch.tensor(x).clamp(*bounds)
    assert ours.numpy().dtype == theirs.numpy().dtype
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_randint_takes_high_and_size_positionally():
    frontend.manual_seed(0)
    x = frontend.randint(3, (50,))
    assert x.shape == (50,) and x.dtype is frontend.int64
    assert 0 <= x.min().item() and x.max().item() <= 2
    assert frontend.randint(3, size=(2, 2)).shape == (2, 2)


@needs_torch
@pytest.mark.parametrize("index", [
    (1,), (slice(None), 2), (Ellipsis, 1), (None, 0), (slice(1, None, 2),), (-1, slice(None, -1)),
    (slice(None), None, slice(2)), (np.array([True, False, True]),), ([2, 0],)])
def test_setitem_matches_torch(index):
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    ours, theirs = frontend.tensor(base), torch.tensor(base)
    ours[index] = -1.0
    theirs[index] = -1.0
    assert np.array_equal(ours.numpy(), theirs.numpy())


def test_setitem_tensor_value_and_views_are_copies():
    x = frontend.zeros(3, 4)
    x[1] = frontend.arange(4).float()
    assert x[1].tolist() == [0.0, 1.0, 2.0, 3.0]
    row = x[1]
    row[0] = 100.0  # NOTE: indexing results are copies, unlike torch views
    assert x[1, 0].item() == 0.0
    x[x > 2] = 9.0
    assert x[1, 3].item() == 9.0


def test_index_errors():
    x = frontend.zeros(3, 4)
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        x[3]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match=r"index 7 is out of bounds"):
        x[frontend.tensor([0, 7])]


def test_python_conversions():
    x = frontend.tensor([[1.5, 2.0]])
    assert x.tolist() == [[1.5, 2.0]] and float(x[0, 0]) == 1.5 and int(x[0, 1]) == 2
    assert bool(frontend.tensor([1.0])) and not bool(frontend.tensor(0.0))
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        bool(x)
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to Scalar"):
        x.item()
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        frontend.ones(2, requires_grad=True).numpy()
    assert [t.item() for t in frontend.tensor([1.0, 2.0])] == [1.0, 2.0]


def test_shape_mismatch_error_names_op_and_shapes():
    from graphruntime.errors import InvalidArgumentError
    with pytest.raises(InvalidArgumentError, match=r"add: .*\[2, 3\].*\[4\]"):
        frontend.ones(2, 3) + frontend.ones(4)
    with pytest.raises(InvalidArgumentError, match=r"mul: .*\[2\].*\[3\]"):
        frontend.ones(2) * frontend.ones(3)


def test_repr():
    assert repr(frontend.tensor([1.0, 2.5])) == "tensor([1.0000, 2.5000])"
    assert repr(frontend.tensor([1, 2])) == "tensor([1, 2])"
    assert "requires_grad=True" in repr(frontend.ones(1, requires_grad=True))
    assert "grad_fn=<MulBackward0>" in repr(frontend.ones(1, requires_grad=True) * 2)
    assert "dtype=frontend.float64" in repr(frontend.ones(1, dtype=frontend.float64))


def test_inplace_ops_and_version():
    x = frontend.ones(3)
    x.mul_(2).add_(frontend.tensor([1.0, 2.0, 3.0]))
    x += 1
    x.clamp_(max=5.0)
    assert x.tolist() == [4.0, 5.0, 5.0]
    with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"):
        x.add_(frontend.ones(2, 3))
    x.zero_()
    assert x.tolist() == [0.0, 0.0, 0.0]


def test_save_load_safetensors_roundtrip(tmp_path):
    from frontend import nn
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    path = tmp_path / "m.safetensors"
    frontend.save(model.state_dict(), path)
    loaded = frontend.load(path)
    assert set(loaded) == set(model.state_dict())
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    other.load_state_dict(loaded)
    for k, v in model.state_dict().items():
        assert np.array_equal(v.numpy(), other.state_dict()[k].numpy())
        assert v.dtype is loaded[k].dtype
    # The file is plain safetensors: readable without frontend.
    from safetensors.numpy import load_file
    assert load_file(str(path))["0.weight"].shape == (4, 3)
    buf = io.BytesIO()
    frontend.save({"a": frontend.arange(3)}, buf)
    buf.seek(0)
    assert frontend.load(buf)["a"].tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="dicts of tensors"):
        frontend.save([1, 2], tmp_path / "bad.safetensors")


def test_num_threads():
    n = frontend.get_num_threads()
    frontend.set_num_threads(1)
    assert frontend.get_num_threads() == 1
    frontend.set_num_threads(n)
    with pytest.raises(RuntimeError, match="positive"):
        frontend.set_num_threads(0)


def test_save_load_keeps_the_key_order(tmp_path):
    from frontend import nn
    state = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).state_dict()
    state["a_late_scalar"] = frontend.tensor(3)
    frontend.save(state, tmp_path / "m.safetensors", metadata={"epoch": 3})
    assert list(frontend.load(tmp_path / "m.safetensors")) == list(state)
    buf = io.BytesIO()
    frontend.save({"z": frontend.ones(2), "a": frontend.ones(5)}, buf)
    buf.seek(0)
    assert list(frontend.load(buf)) == ["z", "a"]
    # A file from another safetensors writer loads in the file's own order.
    from safetensors.numpy import save_file
    save_file({"b": np.ones(2, np.float32), "a": np.ones(1, np.float32)}, str(tmp_path / "other.safetensors"))
    assert sorted(frontend.load(tmp_path / "other.safetensors")) == ["a", "b"]


@needs_torch
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_bitwise_operators_match_torch(dtype):
    a = np.array([1, 3, 4, 0, 7], dtype)
    b = np.array([2, 3, 5, 1, 0], dtype)
    ours, theirs = (frontend.tensor(a), frontend.tensor(b)), (torch.tensor(a), torch.tensor(b))
    for fn in (lambda x, y: x & y, lambda x, y: x | y, lambda x, y: x ^ y, lambda x, y: ~x,
               lambda x, y: x & 1, lambda x, y: 1 | y):
        got, expected = fn(*ours), fn(*theirs)
        assert got.numpy().dtype == expected.numpy().dtype
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    with pytest.raises(RuntimeError, match="bitwise_and_cpu"):
        frontend.ones(2) & frontend.ones(2)


@needs_torch
@pytest.mark.parametrize("call", [
    lambda t, T: t.new_zeros(3), lambda t, T: t.new_zeros((2, 1)), lambda t, T: t.new_ones(2, 2),
    lambda t, T: t.new_full((2,), 7), lambda t, T: t.new_tensor([1.5, 2]),
    lambda t, T: t.new_zeros(2, dtype=T.int32)])
@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_new_factories_take_the_tensor_dtype_like_torch(call, dtype):
    base = np.array([1, 2], dtype)
    ours, theirs = call(frontend.tensor(base), frontend), call(torch.tensor(base), torch)
    assert ours.numpy().dtype == theirs.numpy().dtype
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_new_empty_takes_the_tensor_dtype_like_torch(dtype):
    # Shape and dtype only: the values are whatever the memory held (torch's may be NaN).
    base = np.array([1, 2], dtype)
    ours, theirs = frontend.tensor(base).new_empty(3, 2), torch.tensor(base).new_empty(3, 2)
    assert ours.numpy().dtype == theirs.numpy().dtype and tuple(ours.shape) == tuple(theirs.shape)
