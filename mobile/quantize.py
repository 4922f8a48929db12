"""Post-training int8 quantization of a NetDef: calibrate, then rewrite to quantized ops.

    >>> qnet = quantize(net, batches, per_channel=True, method="minmax")    # doctest: +SKIP
    >>> print(format_report(sqnr_report(net, qnet, batches[:2])))        # doctest: +SKIP

Scheme (the kernels' contract): uint8 asymmetric activations, int8 symmetric weights (per output
channel by default), int32 bias in units of input_scale * weight_scale; a linear whose output
leaves the net returns float32 (quantized_linear_float). The net is first optimized
(batch-norm folding, conv/linear + relu/relu6 fusion); then every op with an int8 kernel runs on
uint8 values, float ops stay float, and quantize/dequantize ops are inserted where the two meet.
Values keep their float names; a value's uint8 version is named '<name>.q'. The chosen
parameters are stored in the net's metadata ('ember.quantization', JSON {'<name>.q': [scale,
zero_point]}) for the report and for tools.
"""
from __future__ import annotations

import json
import math
from typing import Iterable, Mapping

import numpy as np

from graphruntime import errors
from graphruntime.netdef import check, consumers, initializers, op_attrs, set_op_attrs, tensor_from_numpy
from graphruntime.passes import eliminate_dead_code, optimize
from graphruntime.predictor import Predictor
from graphruntime.proto import net_pb2
from mobile.observers import make_observer, qparams_from_range

METADATA_KEY = "ember.quantization"
QUANTIZED_SUFFIX = ".q"

# Ops that only move or select uint8 codes: the output keeps the input's quantization.
_DATA_MOVEMENT = {"flatten", "reshape", "transpose"}


def _with_all_values_as_outputs(net: net_pb2.NetDef, names: Iterable[str]) -> net_pb2.NetDef:
    out = net_pb2.NetDef()
    out.CopyFrom(net)
    present = {o.name for o in out.output}
    for name in names:
        if name not in present:
            out.output.add(name=name)
            present.add(name)
    return out


def _float_values(net: net_pb2.NetDef, types) -> list[str]:
    """Graph inputs and op outputs of dtype float32, in execution order."""
    names = [vi.name for vi in net.input if types[vi.name][0] == "float32"]
    for op in net.op:
        names += [o for o in op.output if types[o][0] == "float32"]
    return names


def calibrate(net: net_pb2.NetDef, calibration_batches: Iterable[Mapping[str, np.ndarray]],
              method: str = "minmax", progress: bool = True) -> dict[str, tuple[float, float]]:
    """Runs `net` on each feed and returns the clipping range (lo, hi) of every float32 value."""
    return _calibrate(net, calibration_batches, method, progress)[0]


def _channel_axes(net: net_pb2.NetDef) -> dict[str, int]:
    """The channel axis of each conv2d / linear input (1 for NCHW, -1 for features)."""
    axes = {}
    for op in net.op:
        if op.type in ("conv2d", "linear") and op.input:
            axes[op.input[0]] = 1 if op.type == "conv2d" else -1
    return axes


def _calibrate(net, calibration_batches, method, progress):
    """calibrate(), plus the per-channel mean of every conv2d / linear input (for bias correction)."""
    types = check(net)
    names = _float_values(net, types)
    axes = _channel_axes(net)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    observers = {name: make_observer(method) for name in names}
    predictor = Predictor(_with_all_values_as_outputs(net, names))
    batches = calibration_batches
    if progress:
        from tqdm import tqdm
        batches = tqdm(batches, desc=f"calibrating ({method})", unit="batch")
    count = 0
    for feed in batches:
        outputs = predictor.run(feed)
        for name in names:
            value = np.asarray(feed[name] if name in feed else outputs[name])
            observers[name].observe(value)
            if name in axes and value.ndim >= 2:
                channels = np.moveaxis(value, axes[name], -1).reshape(-1, value.shape[axes[name]])
                sums[name] = sums.get(name, 0.0) + channels.sum(axis=0, dtype=np.float64)
                counts[name] = counts.get(name, 0) + channels.shape[0]
        count += 1
    if count == 0:
        raise errors.InvalidArgumentError("quantize: calibration_batches is empty")
    means = {name: sums[name] / max(counts[name], 1) for name in sums}
    return {name: obs.range() for name, obs in observers.items()}, means


def _weight_error_shift(weight: np.ndarray, qweight: np.ndarray, scale: np.ndarray, mean: np.ndarray,
                        groups: int) -> np.ndarray | None:
    """The mean output shift that rounding the weight causes, E[(Wq - W) x] per output channel,
    from the input's per-channel means (padding taken as mean-valued): subtracting it from the
    bias is bias correction (Nagel et al., 2019)."""
    w = np.asarray(weight, np.float64)
    error = qweight.astype(np.float64) * scale.astype(np.float64).reshape((-1,) + (1,) * (w.ndim - 1)) - w
    error = error.reshape(w.shape[0], w.shape[1], -1).sum(axis=2)  # [O, C / groups]
    per_group = w.shape[1]
    if mean.shape != (per_group * groups,) or w.shape[0] % groups:
        return None
    mean = mean.reshape(groups, per_group)
    group_of = np.arange(w.shape[0]) // (w.shape[0] // groups)
    return np.einsum("oc,oc->o", error, mean[group_of])


def quantize_weight(weight: np.ndarray, per_channel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """int8 symmetric weights (codes in [-127, 127]) and float32 scales, one per output channel
    (dim 0) or one for the tensor.

        >>> q, s = quantize_weight(np.array([[0.5, -1.0], [2.0, 0.0]], np.float32))
        >>> q.tolist(), s.tolist()
        ([[64, -127], [127, 0]], [0.007874015718698502, 0.015748031437397003])
    """
    w = np.asarray(weight, np.float64)
    flat = w.reshape(w.shape[0], -1)
    amax = np.abs(flat).max(axis=1) if per_channel else np.full(w.shape[0], np.abs(w).max() if w.size else 0.0)
    scale = (amax / 127.0).astype(np.float32)
    scale[~(scale > 0)] = 1.0  # all-zero channel: any positive scale
    q = np.clip(np.round(flat / scale.astype(np.float64)[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), (scale if per_channel else scale[:1])


def _quantize_bias(bias: np.ndarray | None, input_scale: float, weight_scale: np.ndarray, channels: int):
    if bias is None:
        return None
    ws = np.broadcast_to(weight_scale.astype(np.float64), (channels,))
    q = np.round(np.asarray(bias, np.float64) / (input_scale * ws))
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)


class _Rewriter:
    """Emits the quantized net op by op (see the module doc)."""

    def __init__(self, net, qparams, per_channel, means=None):
        self.src = net
        self.qparams = qparams  # float value -> (scale, zero_point)
        self.per_channel = per_channel
        self.means = means or {}  # conv / linear input -> per-channel mean (bias correction)
        self.weights = initializers(net)
        self.consumers = consumers(net)
        self.graph_outputs = {o.name for o in net.output}
        self.out = net_pb2.NetDef(name=net.name, opset_version=net.opset_version)
        self.out.input.extend(net.input)
        self.out.metadata.extend(net.metadata)
        self.out.initializer.extend(net.initializer)
        self.float_available = {vi.name for vi in net.input} | set(self.weights)
        self.quantized: dict[str, tuple[str, float, int]] = {}  # float name -> (q name, scale, zp)
        self.names = set(self.float_available) | {o for op in net.op for o in op.output}
        self.skip: set[int] = set()

    # ---- helpers
    def _unique(self, hint):
        name, i = hint, 0
        while name in self.names:
            i += 1
            name = f"{hint}_{i}"
        self.names.add(name)
        return name

    def _emit(self, op_type, inputs, outputs, attrs, name):
        op = self.out.op.add(type=op_type, name=name, input=[i or "" for i in inputs], output=outputs)
        set_op_attrs(op, attrs)
        return op

    def _initializer(self, hint, array):
        name = self._unique(hint)
        self.out.initializer.append(tensor_from_numpy(name, np.ascontiguousarray(array)))
        return name

    def _record(self, value, scale, zero_point):
        qname = self._unique(value + QUANTIZED_SUFFIX)
        self.quantized[value] = (qname, float(scale), int(zero_point))
        return qname

    def as_quantized(self, value):
        """The uint8 version of a float value (inserting a quantize op when needed)."""
        if value not in self.quantized:
            scale, zp = self.qparams[value]
            self.as_float(value)
            qname = self._record(value, scale, zp)
            self._emit("quantize", [value], [qname], {"scale": scale, "zero_point": zp}, f"{value}/quantize")
        return self.quantized[value]

    def as_float(self, value):
        if value and value not in self.float_available:
            qname, scale, zp = self.quantized[value]
            self._emit("dequantize", [qname], [value], {"scale": scale, "zero_point": zp}, f"{value}/dequantize")
            self.float_available.add(value)
        return value

    def can_quantize(self, value):
        return value in self.quantized or value in self.qparams

    # ---- rules, each returns True when it emitted a quantized op
    def conv_or_linear(self, op, attrs):
        x, w = op.input[0], op.input[1]
        b = op.input[2] if len(op.input) > 2 and op.input[2] else None
        y = op.output[0]
        if w not in self.weights or (b and b not in self.weights):
            return False
        # A linear whose output only leaves the net keeps it float (quantized_linear_float, the
        # dequantize fused): no rounding of the logits to 256 levels, which ties or swaps
        # close top classes.
        float_out = op.type == "linear" and y in self.graph_outputs and not self.consumers.get(y)
        if not (self.can_quantize(x) and (float_out or y in self.qparams)):
            return False
        weight = self.weights[w]
        qw, ws = quantize_weight(weight, self.per_channel)
        _, in_scale, in_zp = self.as_quantized(x)
        if not float_out:
            out_scale, out_zp = self.qparams[y]
            ratio = in_scale * ws.astype(np.float64) / out_scale
            if not np.all((ratio >= 2.0**-32) & (ratio < 2.0**16)):
                return False
        xq = self.quantized[x][0]
        inputs = [xq, self._initializer(w + ".int8", qw), self._initializer(w + ".scale", ws)]
        bias = np.asarray(self.weights[b], np.float64) if b else None
        if x in self.means:
            shift = _weight_error_shift(weight, qw, ws, self.means[x], int(attrs.get("groups", 1)))
            if shift is not None:
                bias = (0.0 if bias is None else bias) - shift
        if bias is not None:
            inputs.append(self._initializer((b or w + ".bias") + ".int32", _quantize_bias(bias, in_scale, ws, weight.shape[0])))
        qattrs = dict(attrs, input_scale=in_scale, input_zero_point=in_zp)
        if float_out:
            self._emit("quantized_linear_float", inputs, [y], qattrs, op.name)
            self.float_available.add(y)
            return True
        qattrs.update(output_scale=out_scale, output_zero_point=out_zp)
        self._emit("quantized_" + op.type, inputs, [self._record(y, out_scale, out_zp)], qattrs, op.name)
        return True

    def add(self, op, attrs, index):
        a, b = op.input
        y = op.output[0]
        if not (self.can_quantize(a) and self.can_quantize(b) and y in self.qparams):
            return False
        activation, out_value = "none", y
        users = self.consumers.get(y, [])
        if len(users) == 1 and y not in self.graph_outputs and self.src.op[users[0]].type == "relu":
            activation, out_value = "relu", self.src.op[users[0]].output[0]
            if out_value not in self.qparams:
                return False
        out_scale, out_zp = self.qparams[out_value]
        _, a_scale, a_zp = self.as_quantized(a)
        _, b_scale, b_zp = self.as_quantized(b)
        for r in (a_scale / out_scale, b_scale / out_scale):
            if not (2.0**-14 <= r < 2.0**8):
                return False
        if activation == "relu":
            self.skip.add(users[0])
        self._emit("quantized_add", [self.quantized[a][0], self.quantized[b][0]],
                   [self._record(out_value, out_scale, out_zp)],
                   {"a_scale": a_scale, "a_zero_point": a_zp, "b_scale": b_scale, "b_zero_point": b_zp,
                    "output_scale": out_scale, "output_zero_point": out_zp, "activation": activation}, op.name)
        return True

    def pool(self, op, attrs):
        x, y = op.input[0], op.output[0]
        if op.type == "max_pool2d":
            if not self.can_quantize(x):
                return False
            xq, s, zp = self.as_quantized(x)
            self._emit("quantized_max_pool2d", [xq], [self._record(y, s, zp)], attrs, op.name)
            return True
        if not (self.can_quantize(x) and y in self.qparams):
            return False
        xq, s, zp = self.as_quantized(x)
        out_scale, out_zp = self.qparams[y]
        if not (2.0**-32 <= s / out_scale < 2.0**16):
            return False
        qattrs = dict(attrs, input_scale=s, input_zero_point=zp, output_scale=out_scale, output_zero_point=out_zp)
        self._emit("quantized_" + op.type, [xq], [self._record(y, out_scale, out_zp)], qattrs, op.name)
        return True

    def concat(self, op, attrs):
        y = op.output[0]
        if not (all(self.can_quantize(v) for v in op.input) and y in self.qparams):
            return False
        ins = [self.as_quantized(v) for v in op.input]
        out_scale, out_zp = self.qparams[y]
        self._emit("quantized_concat", [q for q, _, _ in ins], [self._record(y, out_scale, out_zp)],
                   {"dim": attrs.get("dim", 0), "input_scales": [s for _, s, _ in ins],
                    "input_zero_points": [z for _, _, z in ins], "output_scale": out_scale,
                    "output_zero_point": out_zp}, op.name)
        return True

    def data_movement(self, op, attrs):
        x, y = op.input[0], op.output[0]
        if x not in self.quantized:  # not worth quantizing for a reshape
            return False
        xq, s, zp = self.quantized[x]
        if op.type == "pad":
            if attrs.get("value", 0.0) != 0.0:
                return False
            attrs = dict(attrs, value=float(zp))  # real 0 is the zero point
        self._emit(op.type, [xq], [self._record(y, s, zp)], attrs, op.name)
        return True

    def clamp_activation(self, op, attrs):
        """relu / relu6 on uint8 codes: maximum/minimum with the codes of 0 and 6 (exact)."""
        x, y = op.input[0], op.output[0]
        if x not in self.quantized:
            return False
        xq, s, zp = self.quantized[x]
        value = self._emit("maximum", [xq, self._initializer(y + ".zero", np.array([zp], np.uint8))],
                           [self._unique(y + ".relu")] if op.type == "relu6" else [self._record(y, s, zp)],
                           {}, op.name).output[0]
        if op.type == "relu6":
            six = int(min(255, zp + round(6.0 / s)))
            self._emit("minimum", [value, self._initializer(y + ".six", np.array([six], np.uint8))],
                       [self._record(y, s, zp)], {}, op.name + "/relu6")
        return True

    def run(self) -> net_pb2.NetDef:
        types = check(self.src)
        for index, op in enumerate(self.src.op):
            if index in self.skip:
                continue
            attrs = op_attrs(op)
            float_in = all(types[v][0] == "float32" for v in op.input[:1] if v)
            done = False
            if float_in:
                if op.type in ("conv2d", "linear"):
                    done = self.conv_or_linear(op, attrs)
                elif op.type == "add" and types[op.input[1]][0] == "float32":
                    done = self.add(op, attrs, index)
                elif op.type in ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"):
                    done = self.pool(op, attrs)
                elif op.type == "concat" and all(types[v][0] == "float32" for v in op.input):
                    done = self.concat(op, attrs)
                elif op.type in _DATA_MOVEMENT or op.type == "pad":
                    done = self.data_movement(op, attrs)
                elif op.type in ("relu", "relu6"):
                    done = self.clamp_activation(op, attrs)
            if not done:
                for v in op.input:
                    self.as_float(v)
                new = self.out.op.add()
                new.CopyFrom(op)
                self.float_available.update(op.output)
        for o in self.src.output:
            self.as_float(o.name)
        self.out.output.extend(self.src.output)
        table = {q: [s, z] for q, s, z in self.quantized.values()}
        self.out.metadata.add(key=METADATA_KEY, value=json.dumps(table, sort_keys=True))
        return eliminate_dead_code(self.out)


def quantize(net: net_pb2.NetDef, calibration_batches: Iterable[Mapping[str, np.ndarray]],
             per_channel: bool = True, method: str = "minmax", progress: bool = True,
             bias_correction: bool = True) -> net_pb2.NetDef:
    """Calibrates `net` on `calibration_batches` (an iterable of feeds {input name: array}) and
    returns the int8 NetDef.

    `per_channel` quantizes weights with one scale per output channel (else one per tensor);
    `method` chooses activation ranges: 'minmax', 'percentile' (99.99 %) or 'entropy' (KL).
    `bias_correction` folds the mean output shift of each conv / linear's rounded weights,
    estimated from its input's per-channel means over the calibration batches, into its bias.
    """
    float_net = optimize(net, 2)
    ranges, means = _calibrate(float_net, calibration_batches, method, progress)
    qparams = {name: qparams_from_range(lo, hi) for name, (lo, hi) in ranges.items()}
    return _Rewriter(float_net, qparams, per_channel, means if bias_correction else None).run()


def quantization_table(qnet: net_pb2.NetDef) -> dict[str, tuple[float, int]]:
    """The (scale, zero_point) of every uint8 value of a quantized net, by its '.q' name."""
    for entry in qnet.metadata:
        if entry.key == METADATA_KEY:
            return {k: (float(v[0]), int(v[1])) for k, v in json.loads(entry.value).items()}
    raise errors.InvalidArgumentError(f"net '{qnet.name}' has no '{METADATA_KEY}' metadata: not made by mobile.quantize")


def sqnr_report(float_net: net_pb2.NetDef, qnet: net_pb2.NetDef,
                feeds: Iterable[Mapping[str, np.ndarray]]) -> list[dict]:
    """Per quantized tensor (and float output of an int8 op): the SQNR (dB) of its dequantized
    values against the float net's, accumulated over `feeds`, in execution order. Rows: {'name',
    'op', 'sqnr_db'}; the layer that loses accuracy is the first with a low SQNR."""
    float_net = optimize(float_net, 2)
    table = quantization_table(qnet)
    float_names = set(_float_values(float_net, check(float_net)))
    pairs = [(q[: -len(QUANTIZED_SUFFIX)], q) for q in table if q.endswith(QUANTIZED_SUFFIX)
             and q[: -len(QUANTIZED_SUFFIX)] in float_names]
    # float32 outputs of int8 ops (quantized_linear_float) are compared as they are.
    pairs += [(op.output[0], op.output[0]) for op in qnet.op
              if op.type == "quantized_linear_float" and op.output[0] in float_names]
    producer = {o: op.type for op in qnet.op for o in op.output}
    order = {name: i for i, name in enumerate(_float_values(float_net, check(float_net)))}
    pairs.sort(key=lambda p: order.get(p[0], 0))
    f_pred = Predictor(_with_all_values_as_outputs(float_net, [f for f, _ in pairs]))
    q_pred = Predictor(_with_all_values_as_outputs(qnet, [q for _, q in pairs]))
    signal = {f: 0.0 for f, _ in pairs}
    noise = {f: 0.0 for f, _ in pairs}
    for feed in feeds:
        fo, qo = f_pred.run(feed), q_pred.run(feed)
        for f, q in pairs:
            ref = (feed[f] if f in feed else fo[f]).astype(np.float64)
            scale, zp = table.get(q, (1.0, 0))
            deq = (qo[q].astype(np.float64) - zp) * scale
            signal[f] += float(np.sum(ref * ref))
            noise[f] += float(np.sum((ref - deq) ** 2))
    rows = []
    for f, q in pairs:
        sqnr = math.inf if noise[f] == 0 else 10 * math.log10(max(signal[f], 1e-30) / noise[f])
        rows.append({"name": f, "op": producer.get(q, "?"), "sqnr_db": sqnr})
    return rows


def format_report(rows: list[dict]) -> str:
    """The per-layer SQNR report as a text table."""
    width = max([len(r["name"]) for r in rows] + [6])
    lines = [f"{'tensor':<{width}}  {'op':<28} SQNR (dB)"]
    for r in rows:
        lines.append(f"{r['name']:<{width}}  {r['op']:<28} {r['sqnr_db']:8.2f}")
    return "\n".join(lines)


def output_sqnr(reference: np.ndarray, approx: np.ndarray) -> float:
    """SQNR in dB of `approx` against `reference`."""
    ref = np.asarray(reference, np.float64)
    noise = np.sum((ref - np.asarray(approx, np.float64)) ** 2)
    return math.inf if noise == 0 else 10 * math.log10(max(np.sum(ref * ref), 1e-30) / noise)
