"""`nn.functional`: stateless layers and losses, as in torch.nn.functional.

    >>> import frontend.nn.functional as F
    >>> F.relu(frontend.tensor([-1.0, 2.0]))
    tensor([0., 2.])
"""
import functools
import math

import numpy as np

from frontend import _dtype as D
from frontend import _dispatch
from frontend import _ops as O
from frontend._creation import default_generator
from frontend._ops import (gelu, hardsigmoid, hardswish, leaky_relu, log_softmax, logsigmoid, one_hot,  # noqa: F401
                           pad, relu, relu6, sigmoid, silu, softmax, softplus, tanh)
from frontend._dispatch import dispatch_one
from frontend._tensor import _wrap
from frontend.autograd.function import Function
from frontend.autograd.graph import GradMode, record


def _accepts_unbatched(fn):
    """Lets a 2-D op take an unbatched [C, H, W] input, as torch does: it runs on a batch of one."""
    @functools.wraps(fn)
    def run(input, *args, **kwargs):
        if getattr(input, "ndim", None) == 3:
            return O.squeeze(fn(O.unsqueeze(input, 0), *args, **kwargs), 0)
        return fn(input, *args, **kwargs)
    return run


def _pair(v):
    if isinstance(v, (list, tuple)):
        return [int(i) for i in v]
    return [int(v), int(v)]


def linear(input, weight, bias=None):
    """input @ weight.T + bias (weight is [out, in])."""
    x, w = input._data, weight._data
    if x.ndim == 0 or x.shape[-1] != w.shape[-1] or x.dtype != w.dtype:
        _linear_error(input, weight)
    out = dispatch_one("linear", [input, weight, bias])
    if (input._requires_grad or weight._requires_grad or (bias is not None and bias._requires_grad)) \
            and GradMode.enabled:
        record("linear", [input, weight, bias], {}, [out])
    return out


def _linear_error(input, weight):
    if input._data.dtype != weight._data.dtype:
        raise RuntimeError(f"linear: expected both inputs to have the same dtype, but got "
                           f"{input.dtype.name} and {weight.dtype.name}")
    a = list(input.shape)
    rows = 1
    for s in a[:-1]:
        rows *= s
    raise RuntimeError(f"linear: mat1 and mat2 shapes cannot be multiplied ({rows}x{a[-1] if a else 1} and "
                       f"{weight.shape[1]}x{weight.shape[0]})")


@_accepts_unbatched
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution of NCHW (or unbatched CHW) `input` with OIHW `weight` (padding int, pair or
    'same'/'valid')."""
    if input.ndim != 4:
        raise RuntimeError("conv2d: expected 3-D (unbatched) or 4-D (batched) input, got input of size "
                           f"{list(input.shape)}")
    if input.shape[1] != weight.shape[1] * groups:
        raise RuntimeError(
            f"conv2d: Given groups={groups}, weight of size {list(weight.shape)}, expected input{list(input.shape)} "
            f"to have {weight.shape[1] * groups} channels, but got {input.shape[1]} channels instead")
    dilation = _pair(dilation)
    if isinstance(padding, str):
        if padding == "valid":
            padding = [0, 0]
        elif padding == "same":
            total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
            if any(t % 2 for t in total):
                input = pad(input, [total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2])
                padding = [0, 0]
            else:
                padding = [t // 2 for t in total]
        else:
            raise ValueError(f"Invalid padding string '{padding}', should be one of ['valid', 'same']")
    attrs = {"stride": _pair(stride), "padding": _pair(padding), "dilation": dilation, "groups": int(groups)}
    return O._op1("conv2d", [input, weight, bias], attrs)


def _pool_attrs(kernel_size, stride, padding, ceil_mode):
    return {"kernel_size": _pair(kernel_size), "stride": _pair(stride) if stride not in (None, [], ()) else [],
            "padding": _pair(padding), "ceil_mode": bool(ceil_mode)}


@_accepts_unbatched
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling over 2-D windows."""
    if return_indices:
        raise NotImplementedError("max_pool2d(return_indices=True) is not supported")
    attrs = _pool_attrs(kernel_size, stride, padding, ceil_mode)
    attrs["dilation"] = _pair(dilation)
    return O._op1("max_pool2d", [input], attrs)


@_accepts_unbatched
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Average pooling over 2-D windows."""
    if divisor_override is not None:
        raise NotImplementedError("avg_pool2d(divisor_override=...) is not supported")
    attrs = _pool_attrs(kernel_size, stride, padding, ceil_mode)
    attrs["count_include_pad"] = bool(count_include_pad)
    return O._op1("avg_pool2d", [input], attrs)


@_accepts_unbatched
def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size (None keeps that dim)."""
    size = list(output_size) if isinstance(output_size, (list, tuple)) else [output_size, output_size]
    size = [input.shape[-2 + i] if s is None else int(s) for i, s in enumerate(size)]
    return O._op1("adaptive_avg_pool2d", [input], {"output_size": size})


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalization over dim 1. In training mode the batch statistics are used (composed
    from ops, so autograd flows through them) and the running stats are updated in place."""
    if training:
        count = input.numel() // input.shape[1]
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {list(input.shape)}")
        y, mean, var = _BatchNormTraining.apply(input, weight, bias, float(eps))
        if running_mean is not None:
            with_no_grad_update(running_mean, mean, momentum, 1.0)
            with_no_grad_update(running_var, var, momentum, count / (count - 1))
        return y
    if running_mean is None:
        raise RuntimeError("batch_norm: running_mean and running_var are required in eval mode")
    return O._op1("batch_norm", [input, running_mean, running_var, weight, bias], {"eps": float(eps)})


class _BatchNormTraining(Function):
    """Batch norm with batch statistics: one registered op each way (batch_norm_train and
    batch_norm_train_grad), so a training step makes two passes over the activations instead of
    the dozen a composition of mean/var/mul/add and their gradients would."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        y, mean, var = _dispatch.dispatch("batch_norm_train", [x, weight, bias], {"eps": eps})
        ctx.save_for_backward(x, mean, var, weight)
        ctx.eps = eps
        ctx.has_bias = bias is not None
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, g, _grad_mean, _grad_var):
        x, mean, var, weight = ctx.saved_tensors
        gx, gw, gb = _dispatch.dispatch("batch_norm_train_grad", [g, x, mean, var, weight],
                                        {"eps": ctx.eps})
        return (gx if ctx.needs_input_grad[0] else None,
                gw if weight is not None and ctx.needs_input_grad[1] else None,
                gb if ctx.has_bias and ctx.needs_input_grad[2] else None, None)


def with_no_grad_update(running, batch_value, momentum, scale):
    """running = (1 - momentum) * running + momentum * scale * batch_value, in place, untracked."""
    from frontend.autograd.graph import no_grad
    with no_grad():
        new = O.add(O.mul(running, 1.0 - momentum), O.mul(O.to(batch_value, running.dtype), momentum * scale))
    running._data[...] = new._data


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalizes over the last len(normalized_shape) dims."""
    shape = [normalized_shape] if isinstance(normalized_shape, int) else [int(s) for s in normalized_shape]
    if list(input.shape[input.ndim - len(shape):]) != shape:
        raise RuntimeError(
            f"layer_norm: Given normalized_shape={shape}, expected input with shape [*, {', '.join(map(str, shape))}], "
            f"but got input of size{list(input.shape)}")
    inputs = [input, weight, bias] if bias is not None else ([input, weight] if weight is not None else [input])
    if weight is None and bias is not None:
        inputs = [input, None, bias]
    return O._op1("layer_norm", inputs, {"normalized_shape": shape, "eps": float(eps)})


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(||input||_p, eps) along `dim`."""
    return O.div(input, O.clamp(O.norm(input, p, dim, keepdim=True), min=eps))


def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes elements with probability p and scales the rest by 1/(1-p) (when training)."""
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return O.mul(input, 0.0)
    keep = default_generator.rng.random(input.shape) >= p
    scale = _wrap((keep / (1.0 - p)).astype(input._data.dtype))
    return O.mul(input, scale)


def embedding(input, weight, padding_idx=None, max_norm=None, scale_grad_by_freq=False, sparse=False):
    """Rows of `weight` for the integer indices in `input`."""
    if max_norm is not None or sparse or scale_grad_by_freq:
        raise NotImplementedError("embedding(max_norm/scale_grad_by_freq/sparse) is not supported")
    out = O._op1("embedding", [weight, input], {})
    if padding_idx is not None and weight._requires_grad:
        # NOTE: the padding row gets no gradient, as in torch.
        mask = _wrap((input._data != padding_idx)[..., None].astype(weight._data.dtype))
        out = O.add(O.mul(out, mask), O.mul(O.detach(out), O.rsub(mask, 1.0)))
    return out


# ---- losses ----
def _reduce(loss, reduction):
    if reduction == "mean":
        return O.mean(loss)
    if reduction == "sum":
        return O.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log likelihood of log-probabilities `input` [N, C, ...] at class `target`."""
    return _nll(input, target, weight, ignore_index, reduction, 0.0)


def _nll(logp, target, weight, ignore_index, reduction, label_smoothing):
    if logp.ndim < 1:
        raise ValueError("Expected input to have at least 1 dimension")
    if logp.ndim == 1:
        logp, target = O.unsqueeze(logp, 0), O.unsqueeze(target, 0)
    n, c = logp.shape[0], logp.shape[1]
    if target.shape[0] != n:
        raise ValueError(f"Expected input batch_size ({n}) to match target batch_size ({target.shape[0]}).")
    if target._data.dtype.kind == "f":
        return _soft_target_ce(logp, target, weight, reduction, label_smoothing)
    t = target._data
    valid = t != ignore_index
    if np.any((t[valid] < 0) | (t[valid] >= c)):
        bad = t[valid][(t[valid] < 0) | (t[valid] >= c)][0]
        raise IndexError(f"Target {bad} is out of bounds.")
    # Move classes last: [N, ..., C]
    logp_last = O.movedim(logp, 1, -1) if logp.ndim > 2 else logp
    safe = np.where(valid, t, 0)
    onehot = _wrap(np.eye(c, dtype=logp._data.dtype)[safe] * valid[..., None])
    w = None if weight is None else O.reshape(weight, [c])
    picked = O.mul(logp_last, onehot if w is None else O.mul(onehot, w))
    loss = O.neg(O.sum(picked, -1))
    wsum_arr = valid.astype(logp._data.dtype) if weight is None else (weight._data[safe] * valid).astype(logp._data.dtype)
    if label_smoothing > 0:
        ones = _wrap(valid[..., None].astype(logp._data.dtype))
        smooth_w = ones if w is None else O.mul(ones, w)
        smooth = O.neg(O.sum(O.mul(logp_last, smooth_w), -1))
        loss = O.add(O.mul(loss, 1.0 - label_smoothing), O.mul(smooth, label_smoothing / c))
    if reduction == "mean":
        return O.div(O.sum(loss), float(wsum_arr.sum()))
    return _reduce(loss, reduction)


def _soft_target_ce(logp, target, weight, reduction, label_smoothing):
    c = logp.shape[1]
    if label_smoothing > 0:
        target = O.add(O.mul(target, 1.0 - label_smoothing), label_smoothing / c)
    prod = O.mul(logp, target)
    if weight is not None:
        prod = O.mul(prod, O.reshape(weight, [1, c] + [1] * (logp.ndim - 2)))
    loss = O.neg(O.sum(prod, 1))
    return _reduce(loss, reduction)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """log_softmax over dim 1, then NLL (class indices or class probabilities as target)."""
    dim = 1 if input.ndim > 1 else 0
    return _nll(log_softmax(input, dim), target, weight, ignore_index, reduction, float(label_smoothing))


def mse_loss(input, target, reduction="mean"):
    """(input - target)^2, reduced."""
    _check_same_shape("mse_loss", input, target)
    d = O.sub(input, target)
    return _reduce(O.mul(d, d), reduction)


def l1_loss(input, target, reduction="mean"):
    """|input - target|, reduced."""
    _check_same_shape("l1_loss", input, target)
    return _reduce(O.abs(O.sub(input, target)), reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Huber-like loss: 0.5 d^2 / beta below beta, |d| - 0.5 beta above."""
    d = O.abs(O.sub(input, target))
    loss = O.where(O.lt(d, beta), O.div(O.mul(O.mul(d, d), 0.5), beta), O.sub(d, 0.5 * beta))
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross entropy, computed stably."""
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    # loss = (1 - t) x + (1 + (pw - 1) t) * softplus(-x)
    sp = softplus(O.neg(input))
    if pos_weight is not None:
        coef = O.add(O.mul(O.sub(pos_weight, 1.0), target), 1.0)
        loss = O.add(O.mul(O.rsub(target, 1.0), input), O.mul(coef, sp))
    else:
        loss = O.add(O.mul(O.rsub(target, 1.0), input), sp)
    if weight is not None:
        loss = O.mul(loss, weight)
    return _reduce(loss, reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)), logs clamped at -100 like torch."""
    logp = O.clamp(O.log(input), min=-100.0)
    log1mp = O.clamp(O.log(O.rsub(input, 1.0)), min=-100.0)
    loss = O.neg(O.add(O.mul(target, logp), O.mul(O.rsub(target, 1.0), log1mp)))
    if weight is not None:
        loss = O.mul(loss, weight)
    return _reduce(loss, reduction)


def kl_div(input, target, reduction="mean", log_target=False):
    """KL divergence with log-probabilities `input`."""
    if log_target:
        loss = O.mul(O.exp(target), O.sub(target, input))
    else:
        loss = O.mul(target, O.sub(O.log(O.clamp(target, min=1e-38)), input))
    if reduction == "batchmean":
        return O.div(O.sum(loss), float(input.shape[0]))
    return _reduce(loss, reduction)


def _check_same_shape(op, a, b):
    if a.shape != b.shape:
        raise ValueError(f"{op}: Using a target size ({list(b.shape)}) that is different to the input size "
                         f"({list(a.shape)}). Please ensure they have the same size.")


# ---- attention ----
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) v over the last two dims."""
    d = query.shape[-1]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    scores = O.matmul(O.mul(query, scale), O.transpose(key, -2, -1))
    if is_causal:
        L, S = query.shape[-2], key.shape[-2]
        attn_mask = _wrap(np.tril(np.ones((L, S), dtype=bool)))
    if attn_mask is not None:
        if attn_mask.dtype is D.bool:
            scores = O.masked_fill(scores, O.logical_not(attn_mask), float("-inf"))
        else:
            scores = O.add(scores, attn_mask)
    attn = softmax(scores, -1)
    if dropout_p > 0:
        attn = dropout(attn, dropout_p, True)
    return O.matmul(attn, value)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p along the last dim."""
    return O.norm(O.add(O.sub(x1, x2), eps), p, -1, keepdim)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """Cosine of the angle between x1 and x2 along `dim`."""
    num = O.sum(O.mul(x1, x2), dim)
    den = O.mul(O.clamp(O.norm(x1, 2, dim), min=eps), O.clamp(O.norm(x2, 2, dim), min=eps))
    return O.div(num, den)


def flatten(input, start_dim=0, end_dim=-1):
    """torch.flatten."""
    return O.flatten(input, start_dim, end_dim)


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("math", "np", "D", "O", "GradMode", "record", "dispatch_one", "default_generator")]
