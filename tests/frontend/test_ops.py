"""Every tensor op against PyTorch: forward values and gradients on random inputs (one table)."""
import numpy as np
import pytest

from parity import check_parity, needs_torch

F32 = np.float32


def fn(L):
    return L.nn.functional


# (id, expression over (lib, *inputs), input specs[, kwargs for check_parity])
CASES = [
    # arithmetic with broadcasting and Python scalars
    ("add", lambda L, a, b: L.add(a, b), [(2, 3), (3,)]),
    ("add_alpha", lambda L, a, b: L.add(a, b, alpha=2.5), [(2, 3), (2, 1)]),
    ("sub", lambda L, a, b: a - b, [(4, 1, 3), (2, 3)]),
    ("mul", lambda L, a, b: a * b, [(2, 3), (2, 3)]),
    ("div", lambda L, a, b: a / b, [(2, 3), ("pos", (3,))]),
    ("pow", lambda L, a, b: a ** b, [("pos", (2, 3)), (2, 3)]),
    ("pow_scalar", lambda L, a: a ** 2, [(2, 3)]),
    ("rpow", lambda L, a: 2.0 ** a, [(2, 3)]),
    ("scalar_ops", lambda L, a: (3 - a) * 2 + a / 4 - 1 / (a * a + 1), [(5,)]),
    ("maximum", lambda L, a, b: L.maximum(a, b), [(3, 4), (4,)]),
    ("minimum", lambda L, a, b: L.minimum(a, b), [(3, 4), (3, 1)]),
    ("where", lambda L, c, a, b: L.where(c, a, b), [("bool", (3, 4)), (3, 4), (4,)]),
    ("where_scalar", lambda L, a: L.where(a > 0, a, 0.0), [(3, 4)]),
    ("masked_fill", lambda L, a, m: a.masked_fill(m, -1.5), [(3, 4), ("bool", (3, 4))]),
    ("compare", lambda L, a, b: (a < b, a <= b, a > b, a >= b, a == b, a != b), [(3, 4), (4,)]),
    ("int_promotion", lambda L, a, i: a * i + i, [(3,), ("int", (3,), 5)]),
    ("int_div", lambda L, i, j: i / (j + 1), [("int", (4,), 9), ("int", (4,), 9)]),
    # unary
    ("neg", lambda L, a: -a, [(3, 4)]),
    ("abs", lambda L, a: a.abs(), [(3, 4)]),
    ("exp", lambda L, a: a.exp(), [(3, 4)]),
    ("log", lambda L, a: a.log(), [("pos", (3, 4))]),
    ("sqrt", lambda L, a: a.sqrt(), [("pos", (3, 4))]),
    ("rsqrt", lambda L, a: a.rsqrt(), [("pos", (3, 4))]),
    ("erf", lambda L, a: L.erf(a), [(3, 4)]),
    ("sigmoid", lambda L, a: a.sigmoid(), [(3, 4)]),
    ("tanh", lambda L, a: a.tanh(), [(3, 4)]),
    ("relu", lambda L, a: a.relu(), [(3, 4)]),
    ("relu6", lambda L, a: fn(L).relu6(a * 4), [(3, 4)]),
    ("silu", lambda L, a: fn(L).silu(a), [(3, 4)]),
    ("hardswish", lambda L, a: fn(L).hardswish(a * 3), [(3, 4)]),
    ("hardsigmoid", lambda L, a: fn(L).hardsigmoid(a * 3), [(3, 4)]),
    ("leaky_relu", lambda L, a: fn(L).leaky_relu(a, 0.2), [(3, 4)]),
    ("gelu", lambda L, a: fn(L).gelu(a), [(3, 4)]),
    ("gelu_tanh", lambda L, a: fn(L).gelu(a, approximate="tanh"), [(3, 4)]),
    ("clamp", lambda L, a: a.clamp(-0.5, 1.0), [(3, 4)]),
    ("clamp_min", lambda L, a: a.clamp(min=0.25), [(3, 4)]),
    ("softplus", lambda L, a: fn(L).softplus(a * 10), [(3, 4)]),
    ("square_reciprocal", lambda L, a: a.square() + a.reciprocal(), [("pos", (3, 4))]),
    # reductions
    ("sum_all", lambda L, a: a.sum(), [(3, 4)]),
    ("sum_dim", lambda L, a: a.sum(1), [(3, 4, 2)]),
    ("sum_dims_keep", lambda L, a: a.sum((0, 2), keepdim=True), [(3, 4, 2)]),
    ("mean", lambda L, a: a.mean(-1), [(3, 4)]),
    ("mean_all", lambda L, a: a.mean(), [(3, 4)]),
    ("max_all", lambda L, a: a.max(), [("distinct", (3, 4))]),
    ("max_dim", lambda L, a: a.max(1), [("distinct", (3, 4))]),
    ("min_dim_keep", lambda L, a: a.min(0, keepdim=True), [("distinct", (3, 4))]),
    ("amax", lambda L, a: L.amax(a, (0, 1)), [("distinct", (3, 4, 2))]),
    ("argmax", lambda L, a: a.argmax(1), [("distinct", (3, 4))]),
    ("argmin", lambda L, a: a.argmin(), [("distinct", (3, 4))]),
    ("var", lambda L, a: a.var(1), [(3, 4)]),
    ("var_biased", lambda L, a: a.var(0, unbiased=False, keepdim=True), [(3, 4)]),
    ("std", lambda L, a: a.std(), [(3, 4)]),
    ("norm", lambda L, a: a.norm(dim=1), [(3, 4)]),
    ("logsumexp", lambda L, a: L.logsumexp(a, 1), [(3, 4)]),
    ("softmax", lambda L, a: a.softmax(-1), [(3, 4)]),
    ("softmax_dim0", lambda L, a: L.softmax(a, 0), [(3, 4)]),
    ("log_softmax", lambda L, a: a.log_softmax(1), [(2, 5, 3)]),
    # matrix products
    ("matmul_2d", lambda L, a, b: a @ b, [(3, 4), (4, 5)]),
    ("matmul_batched_broadcast", lambda L, a, b: a @ b, [(2, 3, 4), (4, 5)]),
    ("matmul_batch_bcast2", lambda L, a, b: a @ b, [(2, 1, 3, 4), (3, 4, 2)]),
    ("matmul_vec_mat", lambda L, a, b: a @ b, [(4,), (4, 5)]),
    ("matmul_mat_vec", lambda L, a, b: a @ b, [(3, 4), (4,)]),
    ("matmul_dot", lambda L, a, b: a @ b, [(4,), (4,)]),
    ("bmm", lambda L, a, b: L.bmm(a, b), [(2, 3, 4), (2, 4, 5)]),
    ("linear", lambda L, x, w, b: fn(L).linear(x, w, b), [(2, 3, 4), (5, 4), (5,)]),
    ("linear_nobias", lambda L, x, w: fn(L).linear(x, w), [(3, 4), (5, 4)]),
    # shapes
    ("reshape", lambda L, a: a.reshape(4, -1), [(2, 3, 2)]),
    ("view", lambda L, a: a.view(-1), [(2, 3)]),
    ("flatten", lambda L, a: a.flatten(1), [(2, 3, 4)]),
    ("squeeze_unsqueeze", lambda L, a: a.unsqueeze(0).squeeze(2).unsqueeze(-1), [(2, 1, 3)]),
    ("permute", lambda L, a: a.permute(2, 0, 1), [(2, 3, 4)]),
    ("transpose", lambda L, a: a.transpose(0, 2), [(2, 3, 4)]),
    ("T", lambda L, a: a.T * 1, [(2, 3)]),
    ("expand", lambda L, a: a.expand(2, 3, 4), [(3, 1)]),
    ("repeat", lambda L, a: a.repeat(2, 1, 3), [(3, 2)]),
    ("cat", lambda L, a, b: L.cat([a, b], 1), [(2, 3), (2, 5)]),
    ("stack", lambda L, a, b: L.stack([a, b], -1), [(2, 3), (2, 3)]),
    ("split", lambda L, a: a.split(2, 1), [(2, 5)]),
    ("split_sizes", lambda L, a: L.split(a, [1, 3], 0), [(4, 2)]),
    ("chunk", lambda L, a: a.chunk(3, -1), [(2, 7)]),
    ("unbind", lambda L, a: a.unbind(1), [(2, 3)]),
    ("narrow", lambda L, a: a.narrow(1, 1, 2), [(2, 4)]),
    ("flip", lambda L, a: a.flip(1), [(2, 4)]),
    ("gather", lambda L, a, i: L.gather(a, 1, i), [(3, 5), ("int", (3, 4), 5)]),
    ("index_select", lambda L, a, i: L.index_select(a, 1, i), [(3, 5), ("int", (6,), 5)]),
    ("embedding", lambda L, i, w: fn(L).embedding(i, w), [("int", (2, 3), 7), (7, 4)]),
    ("pad", lambda L, a: fn(L).pad(a, (1, 2, 0, 1)), [(2, 3, 4)]),
    ("pad_crop", lambda L, a: fn(L).pad(a, (-1, 1)), [(2, 4)]),
    ("pad_value", lambda L, a: fn(L).pad(a, (2, 0), value=1.5), [(3, 2)]),
    ("to_float64", lambda L, a: a.to(L.float64) * 2, [(3,)]),
    ("clone_detach", lambda L, a: a.clone() + a.detach(), [(3,)]),
    ("tril", lambda L, a: a.tril(), [(3, 3)]),
    # indexing
    ("index_int", lambda L, a: a[1], [(3, 4)]),
    ("index_slices", lambda L, a: a[:, 1:3, ::2], [(2, 4, 5)]),
    ("index_negative_step_free", lambda L, a: a[-2:, -1], [(4, 3)]),
    ("index_none_ellipsis", lambda L, a: a[None, ..., 0], [(2, 3, 4)]),
    ("index_mask", lambda L, a: a[a > 0], [(3, 4)]),
    ("index_tensor", lambda L, a, i: a[i], [(5, 3), ("int", (4,), 5)]),
    ("index_tensor_2d", lambda L, a, i: a[:, i], [(3, 5), ("int", (2, 2), 5)]),
    ("index_list", lambda L, a: a[[0, 2, 2]], [(3, 2)]),
    ("index_step3", lambda L, a: a[1::3], [(8, 2)]),
    # compositions used by models
    ("mlp_like", lambda L, x, w: (x @ w.T).relu().sum(-1).mean(), [(4, 3), (5, 3)]),
]


@needs_torch
@pytest.mark.parametrize("name,expr,specs", CASES, ids=[c[0] for c in CASES])
def test_op_matches_torch(name, expr, specs):
    check_parity(expr, specs)


FUNCTIONAL_CASES = [
    ("conv2d", lambda L, x, w, b: fn(L).conv2d(x, w, b, stride=1, padding=1), [(2, 3, 6, 6), (4, 3, 3, 3), (4,)]),
    ("conv2d_stride_dil", lambda L, x, w: fn(L).conv2d(x, w, None, stride=2, padding=2, dilation=2),
     [(1, 2, 9, 8), (3, 2, 3, 3)]),
    ("conv2d_groups", lambda L, x, w: fn(L).conv2d(x, w, groups=2), [(2, 4, 5, 5), (6, 2, 3, 3)]),
    ("conv2d_depthwise", lambda L, x, w: fn(L).conv2d(x, w, padding=1, groups=4), [(2, 4, 5, 5), (4, 1, 3, 3)]),
    ("conv2d_same", lambda L, x, w: fn(L).conv2d(x, w, padding="same"), [(1, 2, 5, 5), (2, 2, 3, 3)]),
    ("max_pool2d", lambda L, x: fn(L).max_pool2d(x, 2), [("distinct", (2, 3, 6, 6))]),
    ("max_pool2d_pad", lambda L, x: fn(L).max_pool2d(x, 3, 2, 1), [("distinct", (1, 2, 7, 7))]),
    ("max_pool2d_ceil", lambda L, x: fn(L).max_pool2d(x, 2, ceil_mode=True), [("distinct", (1, 2, 5, 5))]),
    ("avg_pool2d", lambda L, x: fn(L).avg_pool2d(x, 2), [(2, 3, 6, 6)]),
    ("avg_pool2d_pad", lambda L, x: fn(L).avg_pool2d(x, 3, 2, 1, count_include_pad=False), [(1, 2, 7, 7)]),
    ("adaptive_avg_pool2d", lambda L, x: fn(L).adaptive_avg_pool2d(x, (1, 1)), [(2, 3, 5, 5)]),
    ("adaptive_avg_pool2d_uneven", lambda L, x: fn(L).adaptive_avg_pool2d(x, (2, 3)), [(1, 2, 5, 7)]),
    ("batch_norm_eval", lambda L, x, m, v, w, b: fn(L).batch_norm(x, m.detach(), v.detach().abs(), w, b, False),
     [(2, 3, 4, 4), (3,), ("pos", (3,)), (3,), (3,)]),
    ("batch_norm_train", lambda L, x, w, b: fn(L).batch_norm(x, None, None, w, b, True), [(4, 3, 2, 2), (3,), (3,)]),
    ("layer_norm", lambda L, x, w, b: fn(L).layer_norm(x, (4,), w, b), [(2, 3, 4), (4,), (4,)]),
    ("layer_norm_2d", lambda L, x, w, b: fn(L).layer_norm(x, (3, 4), w, b), [(2, 3, 4), (3, 4), (3, 4)]),
    ("layer_norm_noaffine", lambda L, x: fn(L).layer_norm(x, (4,)), [(2, 3, 4)]),
    ("cross_entropy", lambda L, x, t: fn(L).cross_entropy(x, t), [(4, 5), ("int", (4,), 5)]),
    ("cross_entropy_smoothing", lambda L, x, t: fn(L).cross_entropy(x, t, label_smoothing=0.1), [(4, 5), ("int", (4,), 5)]),
    ("cross_entropy_ignore", lambda L, x: fn(L).cross_entropy(x, L.tensor([1, -100, 3, 0])), [(4, 5)]),
    ("cross_entropy_weight", lambda L, x, t, w: fn(L).cross_entropy(x, t, weight=w.detach().abs()),
     [(4, 5), ("int", (4,), 5), (5,)]),
    ("cross_entropy_probs", lambda L, x, p: fn(L).cross_entropy(x, p.softmax(-1)), [(4, 5), (4, 5)]),
    ("cross_entropy_spatial", lambda L, x, t: fn(L).cross_entropy(x, t, reduction="sum"), [(2, 3, 4), ("int", (2, 4), 3)]),
    ("nll_loss", lambda L, x, t: fn(L).nll_loss(x.log_softmax(1), t), [(4, 5), ("int", (4,), 5)]),
    ("mse_loss", lambda L, a, b: fn(L).mse_loss(a, b), [(3, 4), (3, 4)]),
    ("l1_loss_sum", lambda L, a, b: fn(L).l1_loss(a, b, reduction="sum"), [(3, 4), (3, 4)]),
    ("bce_with_logits", lambda L, a, t: fn(L).binary_cross_entropy_with_logits(a, t), [(3, 4), ("pos", (3, 4))]),
    ("bce_with_logits_pos_weight", lambda L, a, t, w: fn(L).binary_cross_entropy_with_logits(
        a, t.detach() / 2, pos_weight=w.detach()), [(3, 4), ("pos", (3, 4)), ("pos", (4,))]),
    ("sdpa", lambda L, q, k, v: fn(L).scaled_dot_product_attention(q, k, v), [(2, 3, 4), (2, 5, 4), (2, 5, 4)]),
]


@needs_torch
@pytest.mark.parametrize("name,expr,specs", FUNCTIONAL_CASES, ids=[c[0] for c in FUNCTIONAL_CASES])
def test_functional_matches_torch(name, expr, specs):
    check_parity(expr, specs)
