"""nn modules against PyTorch (same weights, forward and gradients), and the Module API."""
import numpy as np
import pytest

import frontend
from frontend import nn
from parity import HAVE_TORCH, check_module_parity, needs_torch

if HAVE_TORCH:
    import torch

# (id, builder taking the nn namespace, input specs, train mode)
MODULE_CASES = [
    ("Linear", lambda n: n.Linear(4, 3), [(2, 4)], False),
    ("Linear_nobias", lambda n: n.Linear(4, 3, bias=False), [(5, 2, 4)], False),
    ("Conv2d", lambda n: n.Conv2d(3, 4, 3, stride=2, padding=1), [(2, 3, 7, 7)], False),
    ("Conv2d_groups", lambda n: n.Conv2d(4, 8, (3, 1), groups=4, bias=False), [(1, 4, 5, 5)], False),
    ("BatchNorm1d_train", lambda n: n.BatchNorm1d(3), [(6, 3)], True),
    ("BatchNorm1d_3d_eval", lambda n: n.BatchNorm1d(3), [(2, 3, 4)], False),
    ("BatchNorm2d_train", lambda n: n.BatchNorm2d(3), [(4, 3, 2, 3)], True),
    ("BatchNorm2d_eval", lambda n: n.BatchNorm2d(3), [(2, 3, 2, 2)], False),
    ("BatchNorm2d_train_no_bias", lambda n: n.BatchNorm2d(3, bias=False), [(4, 3, 2, 3)], True),
    ("BatchNorm2d_momentum_none", lambda n: n.BatchNorm2d(2, momentum=None), [(3, 2, 2, 2)], True),
    ("LayerNorm", lambda n: n.LayerNorm(4), [(2, 3, 4)], False),
    ("Embedding", lambda n: n.Embedding(10, 3), [("int", (2, 5), 10)], False),
    ("Embedding_padding", lambda n: n.Embedding(10, 3, padding_idx=0), [("const", np.array([[0, 1, 0, 5]]))], False),
    ("Dropout_eval", lambda n: n.Dropout(0.5), [(3, 4)], False),
    ("ReLU", lambda n: n.ReLU(), [(3, 4)], False),
    ("ReLU6", lambda n: n.ReLU6(), [(3, 4)], False),
    ("LeakyReLU", lambda n: n.LeakyReLU(0.2), [(3, 4)], False),
    ("GELU", lambda n: n.GELU(), [(3, 4)], False),
    ("SiLU", lambda n: n.SiLU(), [(3, 4)], False),
    ("Sigmoid", lambda n: n.Sigmoid(), [(3, 4)], False),
    ("Tanh", lambda n: n.Tanh(), [(3, 4)], False),
    ("Hardswish", lambda n: n.Hardswish(), [(3, 4)], False),
    ("Softmax", lambda n: n.Softmax(dim=1), [(3, 4)], False),
    ("MaxPool2d", lambda n: n.MaxPool2d(3, 2, 1), [("distinct", (1, 2, 6, 6))], False),
    ("AvgPool2d", lambda n: n.AvgPool2d(2), [(1, 2, 6, 6)], False),
    ("AdaptiveAvgPool2d", lambda n: n.AdaptiveAvgPool2d((1, 1)), [(2, 3, 4, 4)], False),
    ("Conv2d_unbatched", lambda n: n.Conv2d(2, 3, 3, padding=1), [(2, 5, 5)], False),
    ("MaxPool2d_unbatched", lambda n: n.MaxPool2d(2), [("distinct", (2, 6, 6))], False),
    ("AvgPool2d_unbatched", lambda n: n.AvgPool2d(3, 2, 1), [(2, 6, 6)], False),
    ("AdaptiveAvgPool2d_unbatched", lambda n: n.AdaptiveAvgPool2d((2, 3)), [(3, 4, 6)], False),
    ("Flatten", lambda n: n.Flatten(), [(2, 3, 4)], False),
    ("Identity", lambda n: n.Identity(), [(2, 3)], False),
    ("Sequential", lambda n: n.Sequential(n.Linear(4, 8), n.ReLU(), n.Linear(8, 2)), [(3, 4)], False),
    ("MultiheadAttention_batch_first",
     lambda n: n.MultiheadAttention(8, 2, batch_first=True), [(2, 3, 8)], False),
    ("MultiheadAttention_seq_first", lambda n: n.MultiheadAttention(8, 4), [(5, 2, 8)], False),
    ("TransformerEncoderLayer",
     lambda n: n.TransformerEncoderLayer(8, 2, 16, batch_first=True), [(2, 5, 8)], False),
    ("TransformerEncoderLayer_norm_first_gelu",
     lambda n: n.TransformerEncoderLayer(8, 2, 16, activation="gelu", norm_first=True), [(5, 2, 8)], False),
    ("TransformerEncoder",
     lambda n: n.TransformerEncoder(n.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2), [(2, 4, 8)], False),
    ("CrossEntropyLoss", lambda n: n.CrossEntropyLoss(label_smoothing=0.05), [(4, 5), ("int", (4,), 5)], False),
    ("NLLLoss", lambda n: n.NLLLoss(), [(4, 5), ("int", (4,), 5)], False),
    ("MSELoss", lambda n: n.MSELoss(), [(4, 5), (4, 5)], False),
    ("L1Loss", lambda n: n.L1Loss(reduction="sum"), [(4, 5), (4, 5)], False),
    ("BCEWithLogitsLoss", lambda n: n.BCEWithLogitsLoss(), [(4, 5), ("pos", (4, 5))], False),
]


def _mha_call(m, *xs):
    if isinstance(m, (nn.MultiheadAttention,)) or (HAVE_TORCH and isinstance(m, torch.nn.MultiheadAttention)):
        return m(xs[0], xs[0], xs[0])
    return m(*xs)


@needs_torch
@pytest.mark.parametrize("name,build,specs,train", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_module_matches_torch(name, build, specs, train):
    check_module_parity(lambda: build(nn), lambda: build(torch.nn), specs, train=train, call=_mha_call)


@needs_torch
def test_multihead_attention_masks_and_weights():
    def call(m, q, kv, kpm_spec):
        kpm = frontend.tensor(kpm_spec) if isinstance(m, nn.Module) else torch.tensor(kpm_spec)
        mask = np.triu(np.ones((3, 4), bool), 1)
        am = frontend.tensor(mask) if isinstance(m, nn.Module) else torch.tensor(mask)
        return m(q, kv, kv, key_padding_mask=kpm, attn_mask=am, average_attn_weights=False)

    kpm_spec = np.array([[False, False, True, False], [False, False, False, False]])
    check_module_parity(lambda: nn.MultiheadAttention(8, 2, batch_first=True),
                        lambda: torch.nn.MultiheadAttention(8, 2, batch_first=True),
                        [(2, 3, 8), (2, 4, 8)], call=lambda m, q, kv: call(m, q, kv, kpm_spec))


@needs_torch
def test_default_initialization_statistics_match_torch():
    # Same distributions as torch (bounds of kaiming-uniform(a=sqrt(5)) = 1/sqrt(fan_in)).
    ours, theirs = nn.Linear(400, 300), torch.nn.Linear(400, 300)
    for a, b in [(ours.weight, theirs.weight), (ours.bias, theirs.bias)]:
        a, b = a.detach().numpy(), b.detach().numpy()
        assert abs(a.max() - b.max()) < 0.01 and abs(a.std() - b.std()) < 0.01 * b.std() * 10
    conv, tconv = nn.Conv2d(16, 32, 3), torch.nn.Conv2d(16, 32, 3)
    assert abs(conv.weight.numpy(force=True).std() - tconv.weight.detach().numpy().std()) < 0.002


def test_state_dict_keys_and_module_api():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    keys = list(model.state_dict())
    assert keys == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                    "1.num_batches_tracked", "4.weight", "4.bias"]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert [n for n, _ in model.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert len(list(model.children())) == 5 and len(list(model.modules())) == 6
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert model[1].training
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential"


def test_load_state_dict_strict_and_numpy():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict({k: v.numpy() for k, v in a.state_dict().items()})
    assert np.array_equal(a.weight.numpy(force=True), b.weight.numpy(force=True))
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "bias"'):
        b.load_state_dict({"weight": a.weight.detach()})
    result = b.load_state_dict({"weight": a.weight.detach(), "extra": frontend.zeros(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with shape"):
        b.load_state_dict({"weight": frontend.zeros(4, 3), "bias": frontend.zeros(2)})


def test_repr_like_torch():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Conv2d(1, 2, 3, padding=1, bias=False))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=8, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
        ")")
    if HAVE_TORCH:
        tmodel = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Conv2d(1, 2, 3, padding=1, bias=False))
        assert repr(model) == repr(tmodel)


@needs_torch
@pytest.mark.parametrize("build", [
    lambda n: n.BatchNorm2d(4), lambda n: n.BatchNorm1d(3, momentum=None, affine=False),
    lambda n: n.BatchNorm2d(4, bias=False), lambda n: n.BatchNorm1d(2, track_running_stats=False),
    lambda n: n.LayerNorm(4), lambda n: n.LayerNorm((2, 3), bias=False),
    lambda n: n.LayerNorm(4, elementwise_affine=False), lambda n: n.Dropout(0.2),
    lambda n: n.Embedding(10, 3, padding_idx=1), lambda n: n.GELU("tanh"), lambda n: n.MaxPool2d(2),
    lambda n: n.TransformerEncoderLayer(8, 2, 16, batch_first=True)])
def test_norm_and_other_layer_reprs_and_keys_match_torch(build):
    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


@needs_torch
@pytest.mark.parametrize("build", [
    lambda n, dt: n.LayerNorm(3, dtype=dt), lambda n, dt: n.Linear(2, 3, dtype=dt),
    lambda n, dt: n.BatchNorm1d(2, dtype=dt), lambda n, dt: n.MultiheadAttention(4, 2, dtype=dt),
    lambda n, dt: n.TransformerEncoderLayer(4, 2, 8, dtype=dt)])
def test_dtype_argument_sets_parameter_dtypes_like_torch(build):
    ours, theirs = build(nn, frontend.float64), build(torch.nn, torch.float64)
    assert {k: str(v.dtype).split(".")[1] for k, v in ours.state_dict().items()} == \
        {k: str(v.dtype).split(".")[1] for k, v in theirs.state_dict().items()}


def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: calls.append("pre"))
    h2 = lin.register_forward_hook(lambda m, args, out: out * 0)
    out = lin(frontend.ones(1, 2))
    assert calls == ["pre"] and out.tolist() == [[0.0, 0.0]]
    h1.remove()
    h2.remove()
    assert lin(frontend.ones(1, 2)).tolist() != [[0.0, 0.0]]


def test_containers():
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    md = nn.ModuleDict({"a": nn.ReLU(), "b": nn.Linear(2, 2)})
    assert len(ml) == 3 and len(list(ml.parameters())) == 6
    assert list(md.keys()) == ["a", "b"] and "b.weight" in md.state_dict()
    seq = nn.Sequential(nn.Linear(1, 2), nn.ReLU())
    assert isinstance(seq[0], nn.Linear) and len(seq[:1]) == 1


@pytest.mark.parametrize("make", [lambda ms: nn.Sequential(*ms), nn.ModuleList])
def test_sequential_and_module_list_index_like_lists(make):
    seq = make([nn.Linear(1, 2), nn.ReLU(), nn.Tanh()])
    assert isinstance(seq[-1], nn.Tanh) and type(seq[1:]) is type(seq) and len(seq[1:]) == 2
    for bad in (3, -4):
        with pytest.raises(IndexError, match=f"index {bad} is out of range"):
            seq[bad]
        with pytest.raises(IndexError, match=f"index {bad} is out of range"):
            seq[bad] = nn.ReLU()
    seq[1] = nn.Sigmoid()
    seq.insert(0, nn.Identity())
    seq.extend([nn.ReLU()]).append(nn.ReLU())
    assert [type(m).__name__ for m in seq] == ["Identity", "Linear", "Sigmoid", "Tanh", "ReLU", "ReLU"]
    assert [name for name, _ in seq.named_children()] == [str(i) for i in range(6)]


@needs_torch
def test_reassigned_children_parameters_and_buffers_keep_their_place_like_torch():
    def build(T):
        class Net(T.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1 = T.nn.Conv2d(3, 4, 3)
                self.body = T.nn.Sequential(T.nn.Linear(4, 4), T.nn.ReLU(), T.nn.Linear(4, 2))
                self.heads = T.nn.ModuleList([T.nn.ReLU(), T.nn.Tanh()])
                self.bn = T.nn.BatchNorm1d(2)

        net = Net()
        net.conv1 = T.nn.Conv2d(1, 4, 3)  # grayscale input: the usual fine-tuning edit
        net.body.add_module("1", T.nn.Tanh())
        net.heads[0] = T.nn.Sigmoid()
        net.body[0].weight = T.nn.Parameter(T.zeros(4, 4))
        net.bn.running_mean = T.ones(2)
        return net

    ours, theirs = build(frontend), build(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [type(m).__name__ for m in ours.body] == [type(m).__name__ for m in theirs.body]
    assert [type(m).__name__ for m in ours.heads] == ["Sigmoid", "Tanh"]


def test_dropout_train_scales_and_is_seeded():
    frontend.manual_seed(0)
    d = nn.Dropout(0.25)
    out = d(frontend.ones(1000))
    assert np.all(np.isclose(out.numpy(), 0) | np.isclose(out.numpy(), 1 / 0.75))
    assert 0.6 < (out.numpy() > 0).mean() < 0.9
    frontend.manual_seed(0)
    assert np.array_equal(d(frontend.ones(1000)).numpy(), out.numpy())
    assert np.array_equal(d.eval()(frontend.ones(3)).numpy(), np.ones(3, np.float32))


def test_layer_shape_errors_name_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"):
        nn.Linear(4, 5)(frontend.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"expected input\[1, 2, 5, 5\] to have 3 channels, but got 2"):
        nn.Conv2d(3, 4, 3)(frontend.ones(1, 2, 5, 5))


def test_init_functions():
    w = frontend.zeros(64, 32)
    frontend.manual_seed(1)
    nn.init.xavier_uniform_(w)
    bound = np.sqrt(6 / 96)
    assert np.abs(w.numpy()).max() <= bound and w.numpy().std() > bound / 3
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - np.sqrt(2 / 64)) < 0.02
    nn.init.constant_(w, 0.5)
    assert np.all(w.numpy() == 0.5)
    assert nn.init.calculate_gain("relu") == np.sqrt(2)
