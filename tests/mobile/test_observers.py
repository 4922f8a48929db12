"""The calibration observers on distributions with known answers."""
import numpy as np
import pytest

from mobile.observers import HistogramObserver, make_observer, qparams_from_range


def observe(method, batches):
    obs = make_observer(method)
    for b in batches:
        obs.observe(b)
    return obs.range()


def fake_quant_sqnr(x, lo, hi):
    """SQNR (dB) of x through uint8 quantization with the range's qparams."""
    scale, zp = qparams_from_range(lo, hi)
    deq = (np.clip(np.round(x / scale) + zp, 0, 255) - zp) * scale
    return 10 * np.log10(np.sum(x * x) / np.sum((x - deq) ** 2))


def relu_gaussian(n_batches=8, size=100_000, seed=0):
    rng = np.random.default_rng(seed)
    return [np.maximum(rng.standard_normal(size), 0).astype(np.float32) for _ in range(n_batches)]


def test_entropy_on_relu_gaussian_clips_only_a_tiny_tail():
    # Half the values are exact zeros (quantized exactly): they must not pull the range in, and
    # the 256 uint8 levels over [0, t] leave little quantization noise to trade against clipping.
    batches = relu_gaussian()
    x = np.concatenate(batches).astype(np.float64)
    lo, hi = observe("entropy", batches)
    assert lo == 0.0
    assert np.percentile(x, 99.99) <= hi <= x.max()
    assert np.mean(x > hi) < 1e-4
    assert fake_quant_sqnr(x, lo, hi) >= fake_quant_sqnr(x, 0.0, x.max()) - 0.5


def test_entropy_clips_a_single_big_outlier():
    for relu in (True, False):
        rng = np.random.default_rng(1)
        batches = [rng.standard_normal(100_000) for _ in range(8)]
        if relu:
            batches = [np.maximum(b, 0) for b in batches]
        batches[3][17] = 200.0  # one value in 800k, 40x the rest
        lo, hi = observe("entropy", batches)
        rest = np.concatenate(batches)[np.concatenate(batches) < 100]
        assert np.percentile(rest, 99.99) <= hi <= 30.0, (relu, lo, hi)
        assert lo == 0.0 if relu else rest.min() <= lo <= -3.5
        # The outlier is clipped so the other 799,999 values keep their resolution.
        assert fake_quant_sqnr(rest, lo, hi) >= fake_quant_sqnr(rest, lo, 200.0) + 15


def test_entropy_signed_ranges_are_asymmetric():
    rng = np.random.default_rng(2)
    batches = [rng.normal(2.0, 1.0, 100_000) for _ in range(8)]  # about [-2.8, 6.8]
    x = np.concatenate(batches)
    lo, hi = observe("entropy", batches)
    assert x.min() <= lo <= -1.5 and 5.5 <= hi <= x.max()
    assert np.mean((x < lo) | (x > hi)) < 1e-3
    assert fake_quant_sqnr(x, lo, hi) >= fake_quant_sqnr(x, x.min(), x.max()) - 0.5


def test_entropy_does_not_clip_a_distribution_away_from_zero():
    # Few values (a global-average-pool output), all in about [0.3, 1.4]: the histogram spans
    # [0, max], and clipping everything into one end bin must not look like a perfect match.
    rng = np.random.default_rng(3)
    batches = [np.abs(rng.normal(0.8, 0.15, 512)) for _ in range(32)]
    x = np.concatenate(batches)
    lo, hi = observe("entropy", batches)
    assert lo >= 0.0 and np.percentile(x, 99.9) <= hi <= x.max()


def test_histogram_keeps_counts_and_percentiles_when_the_range_grows():
    rng = np.random.default_rng(4)
    batches = [np.maximum(rng.standard_normal(50_000), 0) * (1 + 0.1 * i) for i in range(16)]
    batches.append(np.zeros(1000))
    obs = HistogramObserver("percentile")
    for b in batches:
        obs.observe(b)
    x = np.concatenate(batches)
    assert obs.counts.sum() + obs.zeros == pytest.approx(x.size)
    assert obs.zeros == np.count_nonzero(x == 0)
    lo, hi = obs.range()
    width = x.max() / HistogramObserver.BINS
    assert lo == 0.0 and abs(hi - np.percentile(x, 99.99)) <= 3 * width
    rng = np.random.default_rng(5)
    signed = [rng.normal(1.0, 2.0, 50_000) for _ in range(8)]
    lo, hi = observe("percentile", signed)
    y = np.concatenate(signed)
    width = (y.max() - y.min()) / HistogramObserver.BINS
    assert abs(lo - np.percentile(y, 0.01)) <= 3 * width and abs(hi - np.percentile(y, 99.99)) <= 3 * width


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_histogram_observers_edge_cases(method):
    assert qparams_from_range(*observe(method, [])) == (1.0, 0)
    assert qparams_from_range(*observe(method, [np.zeros(10)])) == (1.0, 0)
    lo, hi = observe(method, [np.zeros(10), np.full(10, -2.0), np.zeros(0)])  # non-positive
    scale, zp = qparams_from_range(lo, hi)
    assert zp == 255 and scale == pytest.approx(2.0 / 255, rel=1e-3)
