"""The front end's oracle helper: run the same expression in `frontend` and in PyTorch on the
same random inputs and compare outputs and gradients (float32: rtol 1e-4, atol 1e-5).

    check_parity(lambda L, a, b: L.add(a, b), [(2, 3), (3,)])

An input spec is a shape (uniform floats in [-2, 2]), or a tuple tagged with its kind:
("pos", shape) positive floats, ("int", shape, high) int64 in [0, high), ("bool", shape),
("const", array) a fixed array. Expressions receive the library (`frontend` or `torch`) first.
"""
import numpy as np
import pytest

import frontend

try:
    import torch
    HAVE_TORCH = True
except Exception:  # pragma: no cover - depends on the environment
    torch = None
    HAVE_TORCH = False

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed")
RTOL, ATOL = 1e-4, 1e-5


def make_input(rng, spec, dtype=np.float32):
    if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
        kind = spec[0]
        if kind == "pos":
            return rng.uniform(0.5, 2.0, spec[1]).astype(dtype)
        if kind == "int":
            return rng.integers(0, spec[2], spec[1]).astype(np.int64)
        if kind == "bool":
            return rng.random(spec[1]) < 0.5
        if kind == "const":
            return np.asarray(spec[1])
        if kind == "distinct":  # floats with no ties (max/min/sort gradients)
            n = int(np.prod(spec[1]))
            return (rng.permutation(n).reshape(spec[1]) * 0.1 - n * 0.05).astype(dtype)
        raise ValueError(kind)
    return rng.uniform(-2.0, 2.0, spec).astype(dtype)


def to_numpy(x):
    if isinstance(x, frontend.Tensor):
        return x.detach().numpy()
    return x.detach().numpy()


def assert_close(ours, theirs, what, rtol=RTOL, atol=ATOL):
    a, b = to_numpy(ours), to_numpy(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != torch {b.shape}"
    assert str(a.dtype) == str(b.dtype), f"{what}: dtype {a.dtype} != torch {b.dtype}"
    if a.dtype.kind in "biu":
        assert np.array_equal(a, b), f"{what}: values differ"
        return
    ok = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    if not ok.all():
        idx = tuple(np.argwhere(~ok)[0])
        raise AssertionError(f"{what}: {int((~ok).sum())}/{ok.size} differ; first at {idx}: {a[idx]} vs torch {b[idx]}")


def _flatten_outputs(out):
    if isinstance(out, (tuple, list)):
        return [o for o in out if o is not None]
    return [out]


def check_parity(expr, specs, grad=True, seed=0, rtol=RTOL, atol=ATOL, dtype=np.float32):
    """Runs expr(frontend, *inputs) and expr(torch, *inputs); compares outputs and gradients of
    every floating input for a random output gradient."""
    rng = np.random.default_rng(seed)
    arrays = [make_input(rng, s, dtype) for s in specs]
    ours_in = [frontend.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    ours = _flatten_outputs(expr(frontend, *ours_in))
    theirs = _flatten_outputs(expr(torch, *theirs_in))
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_close(a, b, f"output {i}", rtol, atol)
    if not grad:
        return
    float_outs = [(a, b) for a, b in zip(ours, theirs) if a.dtype.is_floating_point and a.requires_grad]
    if not float_outs:
        return
    our_total, their_total = None, None
    for a, b in float_outs:
        g = rng.uniform(-1, 1, tuple(a.shape)).astype(dtype)
        oa = (a * frontend.tensor(g)).sum()
        ob = (b * torch.tensor(g)).sum()
        our_total = oa if our_total is None else our_total + oa
        their_total = ob if their_total is None else their_total + ob
    our_total.backward()
    their_total.backward()
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        if not b.requires_grad:
            continue
        if b.grad is None:
            assert a.grad is None or not np.any(a.grad.numpy()), f"grad of input {i}: torch has none"
            continue
        assert a.grad is not None, f"grad of input {i} missing"
        assert_close(a.grad, b.grad, f"grad of input {i}", rtol, atol)


def copy_torch_weights(torch_module, our_module, strict=True):
    """Loads a torch module's state_dict (as numpy arrays) into ours."""
    state = {k: v.detach().numpy() for k, v in torch_module.state_dict().items()}
    return our_module.load_state_dict(state, strict=strict)


def check_module_parity(make_ours, make_theirs, input_specs, train=False, grad=True, seed=0, rtol=RTOL, atol=ATOL,
                        call=None):
    """Builds both modules, copies torch's weights into ours, runs the same inputs, compares the
    output, the input gradients and every parameter gradient (by state_dict name)."""
    torch.manual_seed(seed)
    theirs = make_theirs()
    ours = make_ours()
    copy_torch_weights(theirs, ours)
    theirs.train(train)
    ours.train(train)
    rng = np.random.default_rng(seed)
    arrays = [make_input(rng, s) for s in input_specs]
    ours_in = [frontend.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    call = call or (lambda m, *xs: m(*xs))
    out_ours = _flatten_outputs(call(ours, *ours_in))
    out_theirs = _flatten_outputs(call(theirs, *theirs_in))
    for i, (a, b) in enumerate(zip(out_ours, out_theirs)):
        assert_close(a, b, f"output {i}", rtol, atol)
    if grad:
        g = rng.uniform(-1, 1, tuple(out_ours[0].shape)).astype(np.float32)
        (out_ours[0] * frontend.tensor(g)).sum().backward()
        (out_theirs[0] * torch.tensor(g)).sum().backward()
        for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
            if b.grad is not None:
                assert_close(a.grad, b.grad, f"grad of input {i}", rtol, atol)
        params = dict(ours.named_parameters())
        for name, p in theirs.named_parameters():
            if p.grad is not None:
                assert params[name].grad is not None, f"no grad for {name}"
                assert_close(params[name].grad, p.grad, f"grad of {name}", rtol, atol)
    # Buffers (e.g. BatchNorm running stats after a training step) must agree too.
    ours_state = ours.state_dict()
    for name, b in theirs.state_dict().items():
        assert_close(ours_state[name], b, f"state {name}", rtol, atol)
    return ours, theirs
