"""Episode features: each checked against what it must find in a signal of known make-up.

The features are short numpy formulations (:mod:`emg_pipeline.classification`);
these tests give them signals whose answer is known (a tone, white noise, a
burst train of known rate, count and depth, degenerate inputs) and check
Welch's estimate against scipy's own.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
from scipy import signal

from emg_pipeline.classification import (
    MAX_LINE_COVERAGE,
    _median_of_rows,
    _quantile,
    burst_features,
    mains_share,
    median_frequency,
    welch_power,
)
from emg_pipeline.framing import History
from emg_pipeline.labels import Label, Pattern, label_for
from emg_pipeline.pipeline import Pipeline
from emg_pipeline.sources.synthetic import simulate
from emg_pipeline.stages import Classification


@pytest.mark.parametrize("n", [32, 255, 256, 257, 1000, 4097])
@pytest.mark.parametrize("nperseg", [32, 100, 256])
@pytest.mark.parametrize("average", ["mean", "median"])
def test_welch_power_is_scipys_welch(n: int, nperseg: int, average: str) -> None:
    if nperseg > n:
        return
    x = np.random.default_rng(n).standard_normal(n) + 3.0
    f0, p0 = signal.welch(x, fs=1000.0, nperseg=nperseg, average=average)
    f1, p1 = welch_power(x, 1000.0, nperseg, average=average)
    assert np.allclose(f0, f1) and np.allclose(p0, p1, rtol=1e-10, atol=0.0)
    if average == "median":
        return
    # enough segments allowed: the same estimate
    _, p2 = welch_power(x, 1000.0, nperseg, max_segments=10_000)
    assert np.array_equal(p1, p2)


def test_welch_power_with_few_segments_spreads_them_over_the_signal() -> None:
    """A tone in the second half only is still seen when 3 segments are kept."""
    fs = 1000.0
    x = np.zeros(20_000)
    x[10_000:] = np.sin(2 * np.pi * 100.0 * np.arange(10_000) / fs)
    f, p = welch_power(x, fs, 256, max_segments=3)
    assert abs(f[np.argmax(p)] - 100.0) < fs / 256


@pytest.mark.parametrize("fs", [250.0, 1000.0, 2000.0])
@pytest.mark.parametrize("tone_hz", [20.0, 61.3, 110.0])
def test_median_frequency_of_a_tone_is_the_tone(fs: float, tone_hz: float) -> None:
    t = np.arange(round(3 * fs)) / fs
    mdf = median_frequency(np.sin(2 * np.pi * tone_hz * t), fs)
    assert abs(mdf - tone_hz) < 0.5 * fs / 256


def test_median_frequency_is_not_moved_by_a_knock_in_a_few_segments() -> None:
    """A loud low ringing in a tenth of an episode: the mean spectrum is the knock's, the
    median spectrum (the one used) still the muscle's."""
    fs = 1000.0
    t = np.arange(10_000) / fs
    x = np.sin(2 * np.pi * 120.0 * t)
    x[4000:5000] += 30.0 * np.sin(2 * np.pi * 22.0 * t[4000:5000])
    f, p = welch_power(x, fs, 256)
    assert f[np.argmax(p)] < 30.0
    assert abs(median_frequency(x, fs) - 120.0) < fs / 256


def test_median_frequency_of_white_noise_is_a_quarter_of_the_rate() -> None:
    x = np.random.default_rng(3).standard_normal(60_000)
    assert median_frequency(x, 2000.0) == pytest.approx(500.0, rel=0.08)


def test_small_order_statistics_are_numpys() -> None:
    rng = np.random.default_rng(4)
    for n in (1, 2, 3, 8, 25, 101):
        rows = rng.random((n, 40))
        rows[0, 3] = np.nan   # numpy's median of a column with NaN is NaN
        np.testing.assert_array_equal(_median_of_rows(rows), np.median(rows, axis=0))
        ordered = np.sort(rng.random(n))
        for q in (0.0, 0.1, 0.5, 0.9, 1.0):
            assert _quantile(ordered, q) == pytest.approx(np.quantile(ordered, q), rel=1e-15)


def test_median_frequency_of_degenerate_input_is_nan() -> None:
    assert math.isnan(median_frequency(np.ones(31), 1000.0))  # too short
    assert math.isnan(median_frequency(np.zeros(5000), 1000.0))  # no power
    assert math.isnan(median_frequency(np.full(5000, 3.0), 1000.0))  # DC only: removed
    x = np.random.default_rng(0).standard_normal(5000)
    x[100] = np.inf
    with np.errstate(invalid="ignore"):
        assert math.isnan(median_frequency(x, 1000.0))


def _burst_train(rate_hz: float, duration_s: float, depth: float, frame_rate: float,
                 noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Frame powers of an envelope ``1 + depth sin(2 pi rate t)``, optionally noisy."""
    t = np.arange(round(duration_s * frame_rate)) / frame_rate
    env = 1.0 + depth * np.sin(2 * np.pi * rate_hz * t)
    env *= 1.0 + noise * np.random.default_rng(seed).standard_normal(t.shape[0])
    return env**2


def _mains_share_by_hand(x: np.ndarray, fs: float, mains_hz: float, band_hz: tuple) -> float:
    """The definition, line by line: a Hann periodogram, each line's bins summed."""
    x = x[len(x) - scipy.fft.prev_fast_len(len(x), real=True):]   # a fast FFT length
    window = signal.get_window("hann", len(x))   # periodic, as scipy's periodogram
    power = np.abs(np.fft.rfft((x - x.mean()) * window)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / fs)
    band = [k for k, f in enumerate(freqs) if band_hz[0] <= f <= band_hz[1]]
    lines = set()
    for h in range(1, 100):
        half = max(2 * fs / len(x), (5.0 + 0.5 * h) / 2)
        lines |= {k for k in band if abs(freqs[k] - h * mains_hz) <= half}
    return sum(power[k] for k in lines) / sum(power[k] for k in band)


@pytest.mark.parametrize(("fs", "mains_hz", "n"), [(1000.0, 50.0, 3000), (2000.0, 60.0, 20000),
                                                   (200.0, 50.0, 1000), (4000.0, 50.3, 7001)])
def test_mains_share_is_its_definition(fs: float, mains_hz: float, n: int) -> None:
    rng = np.random.default_rng(int(fs + n))
    t = np.arange(n) / fs
    x = rng.standard_normal(n) + 3.0 * np.sin(2 * np.pi * 3 * mains_hz * t)
    band = (20.0, min(450.0, 0.45 * fs))
    assert mains_share(x, fs, mains_hz, band) == pytest.approx(
        _mains_share_by_hand(x, fs, mains_hz, band), rel=1e-9)


def test_mains_share_tells_hum_from_muscle() -> None:
    fs, t = 1000.0, np.arange(5000) / 1000.0
    rng = np.random.default_rng(3)
    hum = sum(np.sin(2 * np.pi * h * 50.4 * t + h) / h for h in (1, 3, 5, 7))
    noise = 0.3 * rng.standard_normal(t.size)
    assert mains_share(hum + noise, fs, 50.0, (20.0, 450.0)) > 0.9   # off-grid 0.4 Hz: held
    assert mains_share(rng.standard_normal(t.size), fs, 50.0, (20.0, 450.0)) < 0.2
    # too short to resolve the lines (they would cover most of the band), or no power
    assert math.isnan(mains_share(rng.standard_normal(40), fs, 50.0, (20.0, 450.0)))
    assert math.isnan(mains_share(np.zeros(5000), fs, 50.0, (20.0, 450.0)))
    assert MAX_LINE_COVERAGE == 0.25


@pytest.mark.parametrize("frame_rate", [200.0, 1000.0 / 3])
@pytest.mark.parametrize("rate_hz", [3.0, 4.5, 6.0, 7.5])
@pytest.mark.parametrize("duration_s", [2.0, 6.0])
def test_burst_features_find_the_rate_count_and_depth(
    frame_rate: float, rate_hz: float, duration_s: float
) -> None:
    power = _burst_train(rate_hz, duration_s, 0.6, frame_rate)
    count, rate, depth = burst_features(power, frame_rate, (3.0, 8.0))
    assert abs(count - rate_hz * duration_s) <= 1
    bin_hz = frame_rate / len(power)
    assert abs(rate - rate_hz) <= bin_hz
    # a short train whose rate sits at the band's edge loses some depth to the
    # spectrum's coarse bins (scalloping); a longer one does not
    assert depth == pytest.approx(0.6, rel=0.2) if duration_s > 4 else 0.3 < depth < 0.7


def test_burst_features_hold_in_noise() -> None:
    power = _burst_train(5.0, 4.0, 0.8, 200.0, noise=0.1, seed=4)
    count, rate, depth = burst_features(power, 200.0, (3.0, 8.0))
    assert abs(count - 20) <= 2 and abs(rate - 5.0) < 0.3 and depth > 0.5


def test_burst_features_of_a_steady_or_short_envelope() -> None:
    steady = np.full(2000, 4.0)
    count, rate, depth = burst_features(steady, 200.0, (3.0, 8.0))
    assert count == 1 and depth < 1e-9
    # shorter than two cycles of the band's lowest rate: no rhythm looked for
    count, rate, depth = burst_features(_burst_train(5.0, 0.5, 0.6, 200.0), 200.0, (3.0, 8.0))
    assert math.isnan(rate) and depth == 0.0 and count >= 2
    count, rate, depth = burst_features(np.ones(3), 200.0, (3.0, 8.0))
    assert count == 1 and math.isnan(rate) and depth == 0.0
    with np.errstate(all="ignore"):
        count, rate, depth = burst_features(np.full(400, np.nan), 200.0, (3.0, 8.0))
    assert count == 1 and math.isnan(rate) and depth == 0.0


def test_classified_episodes_follow_the_truth_of_simulated_recordings() -> None:
    """Labels follow the boundary; features are finite; clonic spasms are mostly found clonic."""
    clonic_found = clonic_truth = 0
    n_episodes = 0
    for seed, fs in [(0, 2000.0), (1, 1000.0), (2, 200.0)]:
        rec = simulate(np.random.default_rng(seed), fs=fs, duration_s=120.0, n_channels=2)
        pipe = Pipeline(rec.fs, rec.channels, unit="uV")
        spasm_min_s = pipe.settings.spasm_min_s
        step = round(0.02 * fs)
        for s in range(0, rec.signal.shape[0], step):
            pipe.process(rec.signal[s : s + step])
        pipe.flush()
        for ep in pipe.episodes:
            n_episodes += 1
            assert ep.label is label_for(ep.duration_s, spasm_min_s)
            assert (ep.pattern is Pattern.PHASIC) == (ep.label is Label.TWITCH)
            assert ep.peak >= ep.mean > 0 and ep.burst_count >= 1
            if ep.duration_s * fs >= 32:  # fewer samples have no spectrum
                assert 0 < ep.median_freq_hz < fs / 2
            assert math.isnan(ep.burst_rate_hz) or 3.0 <= ep.burst_rate_hz <= 8.0
        for row in rec.truth.itertuples():
            if row.pattern != "clonic":
                continue
            clonic_truth += 1
            overlapping = [ep for ep in pipe.episodes if ep.channel == row.channel
                           and ep.onset_s < row.offset_s and ep.offset_s > row.onset_s
                           and ep.label is Label.SPASM]
            clonic_found += any(ep.pattern is Pattern.CLONIC for ep in overlapping)
    assert n_episodes > 50
    assert clonic_truth >= 5 and clonic_found >= 0.8 * clonic_truth


def test_classifier_is_the_classification_stages() -> None:
    pipe = Pipeline(1000.0, ("a",), unit="uV")
    assert pipe.stage(Classification).classifier.fs == 1000.0


def test_history_segments_are_the_rows_read() -> None:
    rng = np.random.default_rng(5)
    for capacity in (1, 7, 64):
        hist = History(capacity, 3)
        assert [part.shape for part in hist.segments(0, 5)] == [(0, 3), (0, 3)]
        for _ in range(40):
            hist.write(rng.standard_normal((int(rng.integers(0, 2 * capacity)), 3)))
            start = int(rng.integers(-5, hist.end + 5))
            stop = int(rng.integers(start - 2, hist.end + 8))
            first, second = hist.segments(start, stop)
            assert first.flags.c_contiguous and second.flags.c_contiguous
            assert first.size == 0 or np.shares_memory(first, hist._buf)  # views, no copy
            assert np.array_equal(np.concatenate((first, second)), hist.read(start, stop))
