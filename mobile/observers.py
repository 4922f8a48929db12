"""Observers: collect the range of a float tensor over calibration batches and choose its uint8
quantization parameters.

    >>> import numpy as np
    >>> obs = MinMaxObserver()
    >>> obs.observe(np.array([-1.0, 0.5, 3.0], np.float32))
    >>> qparams_from_range(*obs.range())
    (0.01568627450980392, 64)

Three methods: `minmax` (the observed extremes), `percentile` (clip the 0.01 % tails of a
histogram), `entropy` (the clipping range whose 255-level quantized histogram has the smallest
KL divergence from the observed one, as TensorRT's entropy calibration).
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
    """A 2048-bin histogram over the running range; re-binned when the range grows."""

    BINS = 2048

    def __init__(self, method: str = "percentile", percentile: float = 99.99):
        super().__init__()
        self.method = method
        self.percentile = percentile
        self.counts = np.zeros(self.BINS, np.float64)

    def _edges(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self.BINS + 1)

    def observe(self, x: np.ndarray) -> None:
        if not x.size:
            return
        x = np.asarray(x, np.float64).ravel()
        lo, hi = float(x.min()), float(x.max())
        if self.lo > self.hi:  # first batch
            self.lo, self.hi = lo, max(hi, lo + 1e-12)
        elif lo < self.lo or hi > self.hi:
            # Re-bin the old counts into the wider range (mass at old bin centers).
            old_edges = self._edges()
            centers = (old_edges[:-1] + old_edges[1:]) / 2
            old = self.counts
            self.lo, self.hi = min(lo, self.lo), max(hi, self.hi)
            self.counts = np.histogram(centers, bins=self.BINS, range=(self.lo, self.hi), weights=old)[0]
        self.counts += np.histogram(x, bins=self.BINS, range=(self.lo, self.hi))[0]

    def range(self) -> tuple[float, float]:
        if self.lo > self.hi:
            return 0.0, 0.0
        if self.method == "percentile":
            return self._percentile_range()
        return self._entropy_range()

    def _quantile(self, q: float) -> float:
        cdf = np.cumsum(self.counts)
        total = cdf[-1]
        if total <= 0:
            return self.lo
        i = int(np.searchsorted(cdf, q * total))
        i = min(max(i, 0), self.BINS - 1)
        return float(self._edges()[i + (1 if q > 0.5 else 0)])

    def _percentile_range(self) -> tuple[float, float]:
        tail = (100.0 - self.percentile) / 100.0
        return self._quantile(tail), self._quantile(1.0 - tail)

    def _entropy_range(self) -> tuple[float, float]:
        """The clipping range (trimming each tail by a quantile from a grid) that minimizes
        KL(P || Q), P the histogram with clipped mass added to the edge bins, Q its 255-level
        quantization spread back over the non-empty bins."""
        edges = self._edges()
        cdf = np.cumsum(self.counts) / max(self.counts.sum(), 1.0)
        best, best_kl = (self.lo, self.hi), math.inf
        for tail in (0.0, 1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2):
            i = int(np.searchsorted(cdf, tail)) if tail > 0 else 0
            j = int(np.searchsorted(cdf, 1.0 - tail)) + 1 if tail > 0 else self.BINS
            i, j = min(i, self.BINS - 1), max(min(j, self.BINS), i + 1)
            if j - i < 2:
                continue
            p = self.counts[i:j].copy()
            p[0] += self.counts[:i].sum()
            p[-1] += self.counts[j:].sum()
            kl = _kl_after_quantization(p, 255)
            if kl < best_kl - 1e-12:
                best_kl, best = kl, (float(edges[i]), float(edges[j]))
        return best


def _kl_after_quantization(p: np.ndarray, levels: int) -> float:
    n = p.size
    q = np.zeros(n)
    # Bins merged into `levels` groups; each group's mass is spread over its non-empty bins.
    groups = np.minimum((np.arange(n) * levels) // n, levels - 1)
    for g in range(min(levels, n)):
        sel = groups == g
        nonzero = sel & (p > 0)
        count = nonzero.sum()
        if count:
            q[nonzero] = p[sel].sum() / count
    ps, qs = p / p.sum(), q / max(q.sum(), 1e-30)
    mask = ps > 0
    return float(np.sum(ps[mask] * np.log(ps[mask] / np.maximum(qs[mask], 1e-30))))


def make_observer(method: str):
    """A fresh observer for `method` ('minmax', 'percentile' or 'entropy')."""
    if method == "minmax":
        return MinMaxObserver()
    if method in ("percentile", "entropy"):
        return HistogramObserver(method)
    raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, got '{method}'")
