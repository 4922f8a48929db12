"""Observers: collect the range of a float tensor over calibration batches and choose its uint8
quantization parameters.

    >>> import numpy as np
    >>> obs = MinMaxObserver()
    >>> obs.observe(np.array([-1.0, 0.5, 3.0], np.float32))
    >>> qparams_from_range(*obs.range())
    (0.01568627450980392, 64)

Three methods: `minmax` (the observed extremes), `percentile` (clip the 0.01 % tails of a
histogram), `entropy` (the clipping range whose quantized histogram, 256 uint8 levels as
qparams_from_range lays them out, has the smallest KL divergence from the clipped observed one,
as TensorRT's entropy calibration).
"""
from __future__ import annotations

import math

import numpy as np

METHODS = ("minmax", "percentile", "entropy")


def qparams_from_range(lo: float, hi: float) -> tuple[float, int]:
    """uint8 asymmetric (scale, zero_point) covering [lo, hi] extended to include 0 (so zero, the
    padding value, is exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"cannot quantize a tensor with range [{lo}, {hi}]")
    if hi - lo < 1e-8:
        return 1.0, 0
    scale = (hi - lo) / 255.0
    zero_point = int(min(255, max(0, round(-lo / scale))))
    return scale, zero_point


class MinMaxObserver:
    """Running minimum and maximum."""

    def __init__(self):
        self.lo = math.inf
        self.hi = -math.inf

    def observe(self, x: np.ndarray) -> None:
        """Adds one batch of values."""
        if x.size:
            self.lo = min(self.lo, float(np.min(x)))
            self.hi = max(self.hi, float(np.max(x)))

    def range(self) -> tuple[float, float]:
        """The clipping range [lo, hi] (0, 0 when nothing was observed)."""
        if self.lo > self.hi:
            return 0.0, 0.0
        return self.lo, self.hi


class HistogramObserver(MinMaxObserver):
    """A 2048-bin histogram of the nonzero values over a running range that always contains 0,
    re-binned (mass spread uniformly within each old bin) when the range grows; exact zeros are
    counted apart (they are quantized exactly whatever the range)."""

    BINS = 2048
    LEVELS = 256  # uint8 codes

    def __init__(self, method: str = "percentile", percentile: float = 99.99):
        super().__init__()
        self.method = method
        self.percentile = percentile
        self.counts = np.zeros(self.BINS, np.float64)
        self.zeros = 0

    def _edges(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self.BINS + 1)

    def observe(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64).ravel()
        nonzero = x[x != 0]
        self.zeros += x.size - nonzero.size
        if not nonzero.size:
            return
        lo, hi = min(float(nonzero.min()), 0.0), max(float(nonzero.max()), 0.0)
        if self.lo > self.hi:  # first nonzero batch
            self.lo, self.hi = lo, hi
        elif lo < self.lo or hi > self.hi:
            # Re-bin: interpolate the old cumulative counts at the new edges.
            old_edges = self._edges()
            cdf = np.concatenate([[0.0], np.cumsum(self.counts)])
            self.lo, self.hi = min(lo, self.lo), max(hi, self.hi)
            self.counts = np.diff(np.interp(self._edges(), old_edges, cdf))
        self.counts += np.histogram(nonzero, bins=self.BINS, range=(self.lo, self.hi))[0]

    def range(self) -> tuple[float, float]:
        if self.lo > self.hi:
            return 0.0, 0.0
        if self.method == "percentile":
            return self._percentile_range()
        return self._entropy_range()

    def _zero_bin(self) -> int:
        """The bin holding 0 (the range always contains it)."""
        width = (self.hi - self.lo) / self.BINS
        return min(int(-self.lo / width), self.BINS - 1)

    def _quantile(self, q: float) -> float:
        counts = self.counts.copy()
        counts[self._zero_bin()] += self.zeros
        cdf = np.cumsum(counts)
        i = int(np.searchsorted(cdf, q * cdf[-1]))
        i = min(max(i, 0), self.BINS - 1)
        return float(self._edges()[i + (1 if q > 0.5 else 0)])

    def _percentile_range(self) -> tuple[float, float]:
        tail = (100.0 - self.percentile) / 100.0
        return min(self._quantile(tail), 0.0), max(self._quantile(1.0 - tail), 0.0)

    def _entropy_range(self) -> tuple[float, float]:
        """The clipping range [edges[a], edges[b]] minimizing KL(P || Q), searched one end at a
        time (coordinate descent; only the upper end for non-negative tensors). P: the histogram
        restricted to the range, clipped mass added to its end bins. Q: the unclipped restricted
        histogram merged by the uint8 code each bin rounds to under qparams_from_range (256 levels
        over the range), each code's mass spread back over the bins where P is nonzero."""
        counts = self.counts
        if counts.sum() <= 0:
            return 0.0, 0.0
        edges, zb, levels = self._edges(), self._zero_bin(), self.LEVELS
        cum = np.concatenate([[0.0], np.cumsum(counts)])
        a, b = 0, self.BINS
        best = _kl_after_quantization(counts, cum, edges, a, b)
        for sweep in range(4):
            moved = False
            if sweep % 2 == 0 and self.hi > 0:
                for j in range(max(zb + 1, a + levels), self.BINS + 1):
                    kl = _kl_after_quantization(counts, cum, edges, a, j)
                    if kl < best - 1e-12:
                        best, b, moved = kl, j, True
            if sweep % 2 == 1 and self.lo < 0:
                for i in range(0, min(zb, b - levels) + 1):
                    kl = _kl_after_quantization(counts, cum, edges, i, b)
                    if kl < best - 1e-12:
                        best, a, moved = kl, i, True
            if sweep > 0 and not moved:
                break
        return float(edges[a]), float(edges[b])


def _kl_after_quantization(counts: np.ndarray, cum: np.ndarray, edges: np.ndarray, a: int, b: int) -> float:
    """KL(P || Q) for the clipping range [edges[a], edges[b]] (see HistogramObserver)."""
    h = counts[a:b]
    if not h.sum() > 0:  # everything clipped
        return math.inf
    p = h.copy()
    p[0] += cum[a]
    p[-1] += cum[-1] - cum[b]
    scale, zero_point = qparams_from_range(edges[a], edges[b])
    centers = (edges[a:b] + edges[a + 1:b + 1]) / 2
    codes = np.clip(np.round(centers / scale) + zero_point, 0, 255).astype(np.intp)
    nonzero = p > 0
    mass = np.bincount(codes, weights=h, minlength=256)
    used = np.bincount(codes, weights=nonzero, minlength=256)
    q = np.where(nonzero, mass[codes] / np.maximum(used[codes], 1.0), 0.0)
    q[nonzero & (q <= 0)] = 1e-4  # smoothing (in counts): clipped mass Q cannot represent
    # Both over the total count: Q keeps only the unclipped mass, so this is TensorRT's KL (Q
    # renormalized) plus -log(1 - clipped fraction), which rules out clipping nearly everything
    # into the end bins (where the renormalized KL degenerates to ~0).
    total = cum[-1]
    pn, qn = p[nonzero] / total, q[nonzero] / total
    return float(np.sum(pn * np.log(pn / qn)))


def make_observer(method: str):
    """A fresh observer for `method` ('minmax', 'percentile' or 'entropy')."""
    if method == "minmax":
        return MinMaxObserver()
    if method in ("percentile", "entropy"):
        return HistogramObserver(method)
    raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, got '{method}'")
