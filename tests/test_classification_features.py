"""Episode features: the compiled classifier computes the numpy formulation of the features.

The reference below is the numpy formulation of the features (sort and
``np.interp`` percentiles, ``np.convolve``, ``np.hanning``, means, a batched
Welch estimate, ``History.read``). The classifier must give the same labels,
patterns and burst counts, and the same float features up to rounding, on
the episodes of simulated recordings; random inputs (NaN, infinities, ties,
constant and empty inputs, episodes whose rows wrap around the ring buffers)
must give the same results too.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.fft import next_fast_len

from emg_pipeline.classification import (
    Classifier,
    burst_features,
    median_frequency,
    welch_power,
)
from emg_pipeline.detection import Detection
from emg_pipeline.events import Episode
from emg_pipeline.framing import History
from emg_pipeline.labels import Label, Pattern, label_for
from emg_pipeline.pipeline import Pipeline
from emg_pipeline.settings import PipelineSettings
from emg_pipeline.sources.synthetic import simulate
from emg_pipeline.stages import Classification

# ---------------------------------------------------------------- reference


def _ref_welch_power(x, fs, nperseg, max_segments=None):
    step = nperseg - nperseg // 2
    n_seg = 1 + (x.shape[0] - nperseg) // step
    starts = np.arange(n_seg) * step
    if max_segments is not None and n_seg > max_segments:
        starts = starts[np.linspace(0, n_seg - 1, max_segments).round().astype(np.int64)]
    segs = x[starts[:, None] + np.arange(nperseg)]
    window = np.hanning(nperseg + 1)[:-1]
    spec = np.fft.rfft((segs - segs.mean(axis=1, keepdims=True)) * window, axis=1)
    power = (spec.real**2 + spec.imag**2).mean(axis=0) / (fs * float(window @ window))
    if nperseg % 2:
        power[1:] *= 2.0
    else:
        power[1:-1] *= 2.0
    return np.fft.rfftfreq(nperseg, 1.0 / fs), power


def _ref_median_frequency(x, fs, max_segments=24):
    n = x.shape[0]
    if n < 32:
        return math.nan
    freqs, power = _ref_welch_power(x, fs, min(256, n), max_segments)
    total = np.cumsum(power)
    if not total[-1] > 0:  # none of a spectrum of zeros, or with NaN (an infinite sample)
        return math.nan
    half = 0.5 * total[-1]
    k = int(np.searchsorted(total, half))
    below = total[k - 1] if k else 0.0
    width = freqs[1] - freqs[0]
    frac = (half - below) / power[k] if power[k] > 0 else 0.5
    return float(freqs[k] - 0.5 * width + frac * width)


def _ref_burst_features(power, frame_rate, band_hz):
    n_avg = max(1, round(0.02 * frame_rate))
    if power.shape[0] < n_avg + 2:
        return 1, math.nan, 0.0
    fine = np.sqrt(np.convolve(power, np.full(n_avg, 1.0 / n_avg), mode="valid"))
    ranked = np.sort(fine)
    lo, hi = np.interp([0.1, 0.9], np.linspace(0.0, 1.0, ranked.shape[0]), ranked)
    mid = 0.5 * (lo + hi)
    band = 0.15 * (hi - lo)
    state = np.where(fine > mid + band, 1, np.where(fine < mid - band, -1, 0))
    decided = state[state != 0]
    count = int(np.count_nonzero(np.diff(decided) > 0)) + int(decided.size > 0 and decided[0] > 0)
    count = max(count, 1)
    if fine.shape[0] < 2.0 * frame_rate / band_hz[0]:
        return count, math.nan, 0.0
    detrended = fine - fine.mean()
    n_fft = next_fast_len(detrended.shape[0], real=True)
    spectrum = np.abs(np.fft.rfft(detrended * np.hanning(detrended.shape[0]), n=n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / frame_rate)
    inside = (freqs >= band_hz[0]) & (freqs <= min(band_hz[1], 0.45 * frame_rate))
    if not inside.any() or fine.mean() <= 0:
        return count, math.nan, 0.0
    k = np.flatnonzero(inside)[np.argmax(spectrum[inside])]
    depth = float(4.0 * spectrum[k] / detrended.shape[0] / fine.mean())
    return count, float(freqs[k]), depth


def _ref_classify(cls: Classifier, det, envelope, frame_power, samples) -> tuple[Episode, float]:
    """The episode, and the depth of its burst rhythm."""
    c = det.channel
    on, off = det.onset_frame, max(det.offset_frame, det.onset_frame + 1)
    env = envelope.read(on, off, channel=c)
    power = frame_power.read(on, off, channel=c)
    floor = det.floor if math.isfinite(det.floor) and det.floor > 0 else math.nan
    scale = 1.0 if cls.calibrated else (1.0 / floor if math.isfinite(floor) else math.nan)
    peak = float(env.max()) * scale if env.size else math.nan
    mean = float(env.mean()) * scale if env.size else math.nan
    label = label_for((off - on) * cls.frame_s, cls.settings.spasm_min_s)
    s = cls.settings
    count, rate, depth = _ref_burst_features(power, 1.0 / cls.frame_s, s.clonic_band_hz)
    if label is Label.TWITCH:
        pattern = Pattern.PHASIC
    elif math.isfinite(rate) and depth >= s.clonic_min_depth and count >= 3:
        pattern = Pattern.CLONIC
    else:
        pattern = Pattern.TONIC
    stop = off * cls.frame_len
    start = max(on * cls.frame_len, stop - round(s.spectrum_s * cls.fs))
    mdf = _ref_median_frequency(samples.read(start, stop, channel=c), cls.fs)
    episode = Episode(
        channel=cls.channels[c],
        onset_s=on * cls.frame_s,
        offset_s=off * cls.frame_s,
        duration_s=off * cls.frame_s - on * cls.frame_s,
        label=label,
        pattern=pattern,
        peak=peak,
        mean=mean,
        unit="uV" if cls.calibrated else "x_floor",
        burst_count=count,
        burst_rate_hz=rate if label == "spasm" else math.nan,
        median_freq_hz=mdf,
        floor=floor,
        truncated=det.truncated,
    )
    return episode, depth


# ---------------------------------------------------------------- helpers


RTOL = 1e-9  # float features: equal up to rounding
# a burst rhythm this shallow (relative to the mean envelope, e.g. of a constant
# input) is rounding noise: its depth is compared absolutely, its rate not at all
NEGLIGIBLE = 1e-9


def _same(a: object, b: object, atol: float = 0.0) -> bool:
    """Same Python types; floats equal up to rounding (NaN equal to NaN), others exactly."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return bool(np.isclose(a, b, rtol=RTOL, atol=atol, equal_nan=True))
    return a == b


def _same_bursts(got: tuple, expected: tuple) -> bool:
    """Burst count, rate and depth (:func:`burst_features`) of the same rhythm."""
    count, rate, depth = expected
    return (
        _same(got[0], count)
        and _same(got[2], depth, atol=NEGLIGIBLE)
        and (depth < NEGLIGIBLE or _same(got[1], rate))
    )


def _same_episode(a: Episode, b: Episode, depth: float) -> bool:
    """Same episode (``depth``: of its burst rhythm, see :data:`NEGLIGIBLE`)."""
    fields = [f.name for f in dataclasses.fields(a)]
    if depth < NEGLIGIBLE:
        fields.remove("burst_rate_hz")
    return all(_same(getattr(a, name), getattr(b, name)) for name in fields)


def _power(rng: np.random.Generator, n: int) -> np.ndarray:
    """Frame powers of many shapes: noise, clonic bursts, zeros, constants, ties, extremes."""
    kind = int(rng.integers(0, 8))
    t = np.arange(n)
    if kind == 0:
        p = rng.exponential(1.0, n)
    elif kind == 1:
        rate = rng.uniform(2.0, 9.0)
        p = (1 + 0.8 * np.sin(2 * np.pi * rate * t / 200.0)) ** 2 * rng.exponential(1.0, n)
    elif kind == 2:
        p = np.zeros(n)
    elif kind == 3:
        p = np.full(n, rng.exponential())
    elif kind == 4:
        p = np.round(rng.exponential(1.0, n), 1)
    elif kind == 5:
        p = rng.exponential(1.0, n) * 10 ** rng.uniform(-8, 8)
    elif kind == 6:
        p = np.cumsum(rng.exponential(1.0, n))
    else:
        p = np.sort(rng.exponential(1.0, n))[::-1].copy()
    if n and rng.random() < 0.05:
        p[rng.integers(0, n)] = np.nan
    if n and rng.random() < 0.03:
        p[rng.integers(0, n)] = np.inf
    return p


def _samples(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    kind = int(rng.integers(0, 5))
    if kind == 0:
        x = rng.standard_normal(n)
    elif kind == 1:
        x = np.zeros(n)
    elif kind == 2:
        x = np.full(n, 3.0)
    elif kind == 3:
        x = rng.standard_normal(n) * 10 ** rng.uniform(-6, 6)
    else:
        tone = np.sin(2 * np.pi * rng.uniform(10.0, 0.45 * fs) * np.arange(n) / fs)
        x = tone + 0.01 * rng.standard_normal(n)
    if n and rng.random() < 0.03:
        x[rng.integers(0, n)] = np.nan
    if n and rng.random() < 0.02:
        x[rng.integers(0, n)] = np.inf
    return x


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", range(4))
def test_burst_features_match_the_numpy_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(300):
        n = int(rng.choice([rng.integers(0, 50), rng.integers(0, 600), rng.integers(0, 6000)]))
        frame_rate = float(rng.choice([200.0, 250.0, 2000.0 / 9, 100.0, 1000.0 / 3]))
        band = (float(rng.uniform(0.5, 5.0)), float(rng.uniform(5.5, 60.0)))
        power = _power(rng, n)
        with np.errstate(all="ignore"):
            expected = _ref_burst_features(power, frame_rate, band)
            got = burst_features(power, frame_rate, band)
        assert _same_bursts(got, expected), (n, frame_rate, band, got, expected)


@pytest.mark.parametrize("seed", range(4))
def test_median_frequency_and_welch_match_the_numpy_computation(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for _ in range(300):
        n = int(rng.choice([rng.integers(0, 300), rng.integers(0, 3000), rng.integers(0, 30000)]))
        fs = float(rng.choice([2000.0, 1000.0, 500.0, 4000.0, 250.0]))
        max_segments = int(rng.choice([24, 5, 1, 100]))
        x = _samples(rng, n, fs)
        with np.errstate(all="ignore"):
            expected = _ref_median_frequency(x, fs, max_segments)
            got = median_frequency(x, fs, max_segments)
            assert _same(got, expected), (n, fs, got, expected)
            if n >= 32:
                nperseg = min(256, n)
                f0, p0 = _ref_welch_power(x, fs, nperseg, max_segments)
                f1, p1 = welch_power(x, fs, nperseg, max_segments)
                assert np.array_equal(f0, f1)
                assert np.allclose(p0, p1, rtol=RTOL, atol=0.0, equal_nan=True)


def _histories(rng, fs, frame_len, n_channels, n_frames):
    """Envelope, frame power and sample histories, small enough to wrap, written in chunks."""
    cap_frames = int(rng.integers(10, n_frames + 50))
    cap_samples = int(rng.integers(100, n_frames * frame_len + 500))
    env, power, samples = (
        History(cap_frames, n_channels),
        History(cap_frames, n_channels),
        History(cap_samples, n_channels),
    )
    done = 0
    while done < n_frames:
        k = min(int(rng.integers(1, 700)), n_frames - done)
        p = _power(rng, k * n_channels).reshape(k, n_channels)
        env.write(np.sqrt(np.abs(p)))
        power.write(p)
        samples.write(rng.standard_normal((k * frame_len, n_channels)))
        done += k
    return env, power, samples


@pytest.mark.parametrize("seed", range(3))
def test_classify_matches_the_numpy_computation(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    for _ in range(60):
        fs = float(rng.choice([2000.0, 1000.0, 500.0, 1800.0]))
        n_channels = int(rng.integers(1, 5))
        settings = PipelineSettings()
        if rng.random() < 0.3:
            settings = dataclasses.replace(
                settings,
                spasm_min_s=float(rng.uniform(0.2, 3.0)),
                spectrum_s=float(rng.uniform(0.5, 12.0)),
                clonic_min_depth=float(rng.uniform(0.0, 1.0)),
                clonic_band_hz=(float(rng.uniform(1.0, 4.0)), float(rng.uniform(5.0, 12.0))),
            )
        frame_len = max(1, round(settings.frame_s * fs))
        calibrated = bool(rng.random() < 0.5)
        names = tuple(f"ch{i}" for i in range(n_channels))
        cls = Classifier(fs, frame_len, settings, calibrated, names)
        n_frames = int(rng.integers(50, 4000))
        env, power, samples = _histories(rng, fs, frame_len, n_channels, n_frames)
        for _ in range(5):
            off = int(rng.integers(1, n_frames + 3))
            on = int(rng.integers(max(0, off - int(rng.choice([30, 500, 5000]))), off + 1))
            det = Detection(
                kind="end",
                channel=int(rng.integers(0, n_channels)),
                frame=off,
                onset_frame=on,
                offset_frame=off if rng.random() < 0.9 else on,
                floor=float(rng.choice([1.0, 0.0, np.nan, 2.5])),
                truncated=bool(rng.random() < 0.1),
            )
            with np.errstate(all="ignore"):
                expected, depth = _ref_classify(cls, det, env, power, samples)
                got = cls.classify(det, env, power, samples)
            assert _same_episode(got, expected, depth), (det, got, expected)


def test_classify_matches_the_numpy_computation_on_simulated_recordings() -> None:
    """Every episode of simulated recordings, classified from the pipeline's own histories."""
    n_episodes = n_spasms = 0
    for seed, fs in [(0, 2000.0), (1, 1000.0), (2, 200.0)]:
        rec = simulate(np.random.default_rng(seed), fs=fs, duration_s=120.0, n_channels=2)
        pipe = Pipeline(rec.fs, rec.channels, unit="uV")
        cls = pipe.stage(Classification).classifier
        classify = cls.classify
        found: list[tuple[Episode, tuple[Episode, float]]] = []

        def both(det, envelope, frame_power, samples, cls=cls, classify=classify, found=found):
            got = classify(det, envelope, frame_power, samples)
            found.append((got, _ref_classify(cls, det, envelope, frame_power, samples)))
            return got

        cls.classify = both
        step = round(0.02 * fs)
        for s in range(0, rec.signal.shape[0], step):
            pipe.process(rec.signal[s : s + step])
        pipe.flush()
        for got, (expected, depth) in found:
            assert depth > NEGLIGIBLE or got.label == "twitch"
            assert _same_episode(got, expected, depth), (got, expected)
            # labels, patterns and burst counts exactly; rates to the bin
            assert (got.label, got.pattern, got.burst_count) == (
                expected.label, expected.pattern, expected.burst_count
            )
            n_spasms += got.label == "spasm"
        n_episodes += len(found)
    assert n_episodes > 50 and n_spasms > 10


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


def test_percentiles_equal_sort_and_interp() -> None:
    from emg_pipeline.classification import _quantile

    rng = np.random.default_rng(11)
    cases = [
        np.zeros(3),
        np.array([0.0, 1.0, 2.0]),
        np.full(50, 7.0),
        np.r_[np.zeros(3000), 1e300],
        np.r_[np.full(999, 1.0), 2.0],
        np.array([5e-324, 0.0, 1e-320, 3.0]),
        np.round(rng.exponential(1.0, 5000), 1),
        rng.exponential(1.0, 100_000),
        np.r_[rng.exponential(1.0, 500), np.inf],
        np.r_[rng.exponential(1.0, 500), np.full(100, np.inf)],
        np.r_[rng.exponential(1.0, 500), np.nan, 3.0],
        np.r_[np.nan, rng.exponential(1.0, 20), np.full(3, np.nan)],
        np.full(5, np.nan),
    ]
    for n in (3, 4, 5, 6, 7, 8, 9, 10, 17, 100, 1000):
        cases.append(rng.exponential(1.0, n) * 10 ** rng.uniform(-300, 300))
        cases.append(rng.integers(0, 3, n).astype(float))
    for x in cases:
        ranked = np.sort(x)
        expected = np.interp([0.1, 0.9], np.linspace(0.0, 1.0, x.shape[0]), ranked)
        got = [_quantile(ranked, 0.1), _quantile(ranked, 0.9)]
        assert np.allclose(got, expected, rtol=RTOL, atol=0.0, equal_nan=True), (x, got, expected)
