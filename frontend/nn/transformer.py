"""MultiheadAttention and the Transformer encoder, with torch's parameter names and math."""
import copy
import math

import numpy as np

from frontend import _dtype as D
from frontend import _ops as O
from frontend._tensor import _wrap
from frontend.nn import functional as F
from frontend.nn import init
from frontend.nn.container import ModuleList
from frontend.nn.layers import Dropout, LayerNorm, Linear, _empty
from frontend.nn.module import Module


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear (torch's name for MultiheadAttention.out_proj)."""


class MultiheadAttention(Module):
    """Multi-head attention: in_proj_weight [3E, E], in_proj_bias [3E], out_proj Linear(E, E).

        >>> mha = nn.MultiheadAttention(16, 4, batch_first=True)
        >>> out, weights = mha(x, x, x)   # x: [N, L, 16]
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim % num_heads:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if add_bias_kv or add_zero_attn or (kdim not in (None, embed_dim)) or (vdim not in (None, embed_dim)):
            raise NotImplementedError("MultiheadAttention: add_bias_kv, add_zero_attn and kdim/vdim != embed_dim are not supported")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.batch_first, self.head_dim = batch_first, embed_dim // num_heads
        self.kdim = self.vdim = embed_dim
        self._qkv_same_embed_dim = True
        self.in_proj_weight = _empty(3 * embed_dim, embed_dim, dtype=dtype)
        self.register_parameter("in_proj_bias", _empty(3 * embed_dim, dtype=dtype) if bias else None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self):
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = (O.unsqueeze(t, 1 if not self.batch_first else 0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = O.unsqueeze(key_padding_mask, 0)
        if not self.batch_first:
            query, key, value = (O.transpose(t, 0, 1) if t is not None else t for t in (query, key, value))
        n, length, e = query.shape
        s = key.shape[1]
        h, d = self.num_heads, self.head_dim
        w, b = self.in_proj_weight, self.in_proj_bias
        if query is key and key is value:
            q, k, v = O.split(F.linear(query, w, b), e, -1)
        else:
            ws = O.split(w, e, 0)
            bs = O.split(b, e, 0) if b is not None else (None, None, None)
            q, k, v = F.linear(query, ws[0], bs[0]), F.linear(key, ws[1], bs[1]), F.linear(value, ws[2], bs[2])
        q = O.permute(O.reshape(q, [n, length, h, d]), [0, 2, 1, 3])
        k = O.permute(O.reshape(k, [n, s, h, d]), [0, 2, 3, 1])
        v = O.permute(O.reshape(v, [n, s, h, d]), [0, 2, 1, 3])
        scores = O.matmul(O.mul(q, 1.0 / math.sqrt(d)), k)  # [n, h, L, S]
        if is_causal and attn_mask is None:
            attn_mask = _wrap(~np.tril(np.ones((length, s), dtype=bool)))
        if attn_mask is not None:
            if attn_mask.ndim == 3:
                attn_mask = O.reshape(attn_mask, [n, h, length, s])
            if attn_mask.dtype is D.bool:
                scores = O.masked_fill(scores, attn_mask, float("-inf"))
            else:
                scores = O.add(scores, O.to(attn_mask, scores.dtype))
        if key_padding_mask is not None:
            kpm = O.reshape(key_padding_mask, [n, 1, 1, s])
            if kpm.dtype is D.bool:
                scores = O.masked_fill(scores, kpm, float("-inf"))
            else:
                scores = O.add(scores, O.to(kpm, scores.dtype))
        attn = F.softmax(scores, -1)
        if self.dropout > 0 and self.training:
            attn = F.dropout(attn, self.dropout, True)
        out = O.reshape(O.permute(O.matmul(attn, v), [0, 2, 1, 3]), [n, length, e])
        out = self.out_proj(out)
        if not self.batch_first:
            out = O.transpose(out, 0, 1)
        if unbatched:
            out = O.squeeze(out, 1 if not self.batch_first else 0)
        weights = None
        if need_weights:
            weights = O.mean(attn, 1) if average_attn_weights else attn
            if unbatched:
                weights = O.squeeze(weights, 0)
        return out, weights

    def extra_repr(self):
        return ""


def _get_activation(activation):
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


class TransformerEncoderLayer(Module):
    """Self-attention + feed-forward block (post-norm by default, norm_first for pre-norm)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _get_activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = O.add(x, self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal))
            x = O.add(x, self._ff_block(self.norm2(x)))
        else:
            x = self.norm1(O.add(x, self._sa_block(x, src_mask, src_key_padding_mask, is_causal)))
            x = self.norm2(O.add(x, self._ff_block(x)))
        return x


class TransformerEncoder(Module):
    """A stack of `num_layers` deep copies of `encoder_layer`, with an optional final norm."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        out = src
        for layer in self.layers:
            out = layer(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        if self.norm is not None:
            out = self.norm(out)
        return out
