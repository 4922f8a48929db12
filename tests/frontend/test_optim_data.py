"""Optimizers and schedulers against PyTorch's update rules; data loading; a tiny training run."""
import numpy as np
import pytest

import frontend
from frontend import data, nn, optim
from parity import HAVE_TORCH, assert_close, needs_torch

if HAVE_TORCH:
    import torch

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.5, dampening=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
]


@needs_torch
@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_optimizer_matches_torch(name, kwargs):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 4)).astype(np.float32)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    ours_p = nn.Parameter(frontend.tensor(w0))
    theirs_p = torch.nn.Parameter(torch.tensor(w0))
    ours_opt = getattr(optim, name)([ours_p], **kwargs)
    theirs_opt = getattr(torch.optim, name)([theirs_p], **kwargs)
    for _ in range(4):
        ours_opt.zero_grad()
        theirs_opt.zero_grad()
        ((frontend.tensor(x) @ ours_p.T).tanh() ** 2).sum().backward()
        ((torch.tensor(x) @ theirs_p.T).tanh() ** 2).sum().backward()
        ours_opt.step()
        theirs_opt.step()
    assert_close(ours_p, theirs_p, f"{name} parameters after 4 steps", rtol=1e-4, atol=1e-5)


@needs_torch
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_step_with_closure_matches_torch(name):
    w0 = np.random.default_rng(1).standard_normal(4).astype(np.float32)
    params = {"ours": nn.Parameter(frontend.tensor(w0)), "theirs": torch.nn.Parameter(torch.tensor(w0))}
    opts = {"ours": getattr(optim, name)([params["ours"]], lr=0.1),
            "theirs": getattr(torch.optim, name)([params["theirs"]], lr=0.1)}
    for _ in range(3):
        losses = {}
        for side in ("ours", "theirs"):
            def closure(side=side):
                opts[side].zero_grad()
                loss = (params[side] ** 2).sum()
                loss.backward()
                return loss
            losses[side] = opts[side].step(closure)
        assert np.isclose(losses["ours"].item(), losses["theirs"].item(), rtol=1e-5)
        assert losses["ours"].requires_grad  # the closure ran with gradients enabled
    assert_close(params["ours"], params["theirs"], f"{name} with a closure", rtol=1e-5, atol=1e-6)


def test_zero_grad_and_state_dict_roundtrip():
    p = nn.Parameter(frontend.ones(2))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    (p * 2).sum().backward()
    opt.step()
    opt.zero_grad()
    assert p.grad is None
    (p * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0.0, 0.0]
    state = opt.state_dict()
    assert state["param_groups"][0]["params"] == [0] and "momentum_buffer" in state["state"][0]
    q = nn.Parameter(frontend.ones(2))
    opt2 = optim.SGD([q], lr=0.5)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["momentum"] == 0.9
    assert np.allclose(opt2.state[q]["momentum_buffer"].numpy(), [2.0, 2.0])


def test_optimizer_argument_errors():
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.SGD([nn.Parameter(frontend.ones(1))], lr=-1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])


@needs_torch
@pytest.mark.parametrize("make", [
    lambda m, o: m.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    lambda m, o: m.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
    lambda m, o: m.lr_scheduler.LambdaLR(o, lambda e: 0.9 ** e),
], ids=["StepLR", "CosineAnnealingLR", "LambdaLR"])
def test_lr_schedulers_match_torch(make):
    ours_opt = optim.SGD([nn.Parameter(frontend.ones(1))], lr=0.1)
    theirs_opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    ours, theirs = make(optim, ours_opt), make(torch.optim, theirs_opt)
    for _ in range(7):
        assert np.isclose(ours.get_last_lr()[0], theirs.get_last_lr()[0])
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


def test_dataloader_batches_shuffle_drop_last():
    x = frontend.arange(10).float().reshape(10, 1)
    y = frontend.arange(10)
    ds = data.TensorDataset(x, y)
    assert len(ds) == 10 and ds[3][1].item() == 3
    batches = list(data.DataLoader(ds, batch_size=4))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert batches[0][1].tolist() == [0, 1, 2, 3]
    assert len(data.DataLoader(ds, batch_size=4, drop_last=True)) == 2
    order1 = [b[1].tolist() for b in data.DataLoader(ds, 3, shuffle=True, generator=frontend.Generator().manual_seed(7))]
    order2 = [b[1].tolist() for b in data.DataLoader(ds, 3, shuffle=True, generator=frontend.Generator().manual_seed(7))]
    assert order1 == order2 and sorted(sum(order1, [])) == list(range(10)) and sum(order1, []) != list(range(10))


def test_default_collate_structures():
    class Pairs(data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"x": np.full(2, i, np.float32), "label": i, "w": float(i)}, frontend.tensor([i, i])

    batch = next(iter(data.DataLoader(Pairs(), batch_size=3)))
    d, t = batch
    assert d["x"].shape == (3, 2) and d["label"].tolist() == [0, 1, 2] and d["label"].dtype is frontend.int64
    assert d["w"].dtype is frontend.float64 and t.shape == (3, 2)
    sub = data.Subset(Pairs(), [3, 1])
    assert len(sub) == 2 and sub[0][1].tolist() == [3, 3]
    a, b = data.random_split(Pairs(), [3, 1], generator=frontend.Generator().manual_seed(0))
    assert len(a) == 3 and len(b) == 1


def test_training_reduces_loss():
    frontend.manual_seed(0)
    x = frontend.randn(128, 4)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = optim.Adam(model.parameters(), lr=0.05)
    loader = data.DataLoader(data.TensorDataset(x, y), batch_size=32, shuffle=True)
    first = None
    for _ in range(20):
        for xb, yb in loader:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            first = first if first is not None else loss.item()
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert loss.item() < first / 4 and accuracy > 0.95


def test_utils_data_is_reachable_as_attributes_like_torch_utils_data():
    import subprocess
    import sys
    # A fresh interpreter: `import frontend` alone must make frontend.utils.data usable.
    code = ("import frontend; d = frontend.utils.data; "
            "print(len(d.ConcatDataset([[1, 2], [3]])), d.Subset([5, 6, 7], [2])[0], d.DataLoader is frontend.data.DataLoader)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["3", "7", "True"]
