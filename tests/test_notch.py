"""The tracked notch comb: follows a drifting grid, leaves noise alone, any chunking."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import signal

from emg_pipeline.conditioning import MainsNotch, SosFilter, bandpass_sos
from emg_pipeline.conditioning.mains_search import find_mains
from emg_pipeline.conditioning.notch import BANDWIDTH_HZ, BANDWIDTH_PER_HARMONIC_HZ

from .conftest import random_splits

FS = 1000.0


def _grid(seconds: float, f0: float, rate_hz_s: float, harmonics: dict[int, float],
          swell: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Band-passed (signal, noise): unit noise plus lines wandering ±0.3 Hz around ``f0``.

    The wander is a sine whose steepest slope is ``rate_hz_s``.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * FS)
    t = np.arange(n) / FS
    period = 2 * np.pi * 0.3 / rate_hz_s if rate_hz_s else np.inf
    freq = f0 + 0.3 * np.sin(2 * np.pi * t / period)
    phase = 2 * np.pi * np.cumsum(freq) / FS
    amp = 1.0 + (0.5 * np.sin(2 * np.pi * t / 3.0) if swell else 0.0)
    mains = np.zeros(n)
    for h, a in harmonics.items():
        mains += a * np.sin(h * phase + h) * amp
    sos = bandpass_sos(FS, 20.0, 450.0)
    band = SosFilter(sos, 1)
    noise_band = SosFilter(sos, 1)
    noise = rng.standard_normal(n)[:, None]
    return band.process(mains[:, None] + noise), noise_band.process(noise)


def _line_power_left(x: np.ndarray, notch: MainsNotch, f0: float, skip_s: float) -> float:
    """Power near the harmonics after the comb over that before it (the last seconds)."""
    y = np.concatenate([notch.process(x[i : i + 40]) for i in range(0, x.shape[0], 40)])
    k = round(skip_s * FS)
    freqs, before = signal.welch(x[k:, 0], FS, nperseg=4096)
    _, after = signal.welch(y[k:, 0], FS, nperseg=4096)
    near = np.zeros(freqs.shape, dtype=bool)
    for h in range(1, 9):
        near |= np.abs(freqs - h * f0) <= 0.5 + 0.4 * h
    return float(after[near].sum() / before[near].sum())


def test_each_notch_has_its_bandwidth() -> None:
    # a pure tone half a bandwidth off the line is kept at about -3 dB
    rng = np.random.default_rng(0)
    t = np.arange(20000) / FS
    bandwidth = BANDWIDTH_HZ + BANDWIDTH_PER_HARMONIC_HZ
    for offset, low, high in ((0.0, -400.0, -40.0), (bandwidth / 2, -4.0, -2.0),
                              (4 * bandwidth, -0.7, 0.0)):
        x = np.sin(2 * np.pi * (50.0 + offset) * t + rng.uniform(0, 6))[:, None]
        notch = MainsNotch(FS, 1, mains="50", max_harmonics=1, band_hz=(20.0, 450.0),
                           block_s=60.0)   # no retuning in 20 s: the bare comb
        y = notch.process(x)
        gain_db = 20 * np.log10(np.std(y[10000:]) / np.std(x[10000:]))
        assert low <= gain_db <= high, (offset, gain_db)


@pytest.mark.parametrize(("f0", "offset", "rate"), [(50.0, 0.2, 0.0), (60.0, -0.2, 0.05),
                                                    (50.0, 0.0, 0.1)])
def test_a_drifting_grid_and_its_harmonics_are_removed(f0: float, offset: float,
                                                       rate: float) -> None:
    # mains 20x the noise at the fundamental, harmonics up to 1.5x it; the grid
    # up to 0.5 Hz off nominal, changing at up to 0.1 Hz/s
    x, _noise = _grid(40.0, f0 + offset, rate, {1: 20.0, 3: 30.0, 5: 10.0, 7: 5.0})
    notch = MainsNotch(FS, 1, mains=str(int(f0)), band_hz=(20.0, 450.0))
    assert _line_power_left(x, notch, f0 + offset, 10.0) < 0.003   # -25 dB or better


def test_swelling_mains_is_removed() -> None:
    # amplitude changing three-fold within 1.5 s
    x, _noise = _grid(40.0, 50.2, 0.0, {1: 20.0, 3: 20.0}, swell=True)
    notch = MainsNotch(FS, 1, mains="50", band_hz=(20.0, 450.0))
    assert _line_power_left(x, notch, 50.2, 10.0) < 0.01   # -20 dB or better


def test_noise_alone_loses_only_what_lies_in_the_notches() -> None:
    _, noise = _grid(30.0, 50.0, 0.0, {})
    y = MainsNotch(FS, 1, mains="50", band_hz=(20.0, 450.0)).process(noise)
    ratio = float(np.std(y[5000:]) / np.std(noise[5000:]))
    assert 0.85 < ratio <= 1.0   # the notches span about 15 % of the band, nothing gains


def test_auto_finds_the_grid_and_off_passes_through() -> None:
    x, _ = _grid(10.0, 60.2, 0.0, {1: 10.0})
    assert find_mains(x[:1000], FS, (20.0, 450.0)) == 60.0
    notch = MainsNotch(FS, 1, mains="auto", band_hz=(20.0, 450.0))
    notch.process(x)
    assert notch.mains_hz == 60.0
    off = MainsNotch(FS, 1, mains="off")
    assert off.process(x) is x
    _, noise = _grid(3.0, 50.0, 0.0, {})
    assert find_mains(noise, FS, (20.0, 450.0)) is None


def test_any_chunking_gives_the_same_output() -> None:
    rng = np.random.default_rng(4)
    x, _ = _grid(12.0, 50.3, 0.05, {1: 20.0, 2: 5.0, 3: 10.0})
    x = np.hstack([x, 0.5 * x + rng.standard_normal(x.shape)])
    x[5000:5020, 1] += 2000.0   # a pop on one channel
    whole = MainsNotch(FS, 2).process(x)
    for parts in (5, 300, 4000):
        notch = MainsNotch(FS, 2)
        bounds = [0, *random_splits(rng, x.shape[0], parts), x.shape[0]]
        got = np.concatenate([notch.process(x[a:b]) for a, b in itertools.pairwise(bounds)])
        np.testing.assert_array_equal(got, whole)


def test_weighted_median_is_the_sorted_cumulative_weight_crossing() -> None:
    from emg_pipeline.conditioning.notch import _weighted_median

    rng = np.random.default_rng(7)
    assert np.isnan(_weighted_median(np.empty(0), np.empty(0)))
    for n in (1, 2, 3, 7, 56):
        for _ in range(50):
            values = rng.standard_normal(n).round(int(rng.integers(0, 3)))  # ties too
            weights = rng.exponential(1.0, n)
            order = np.argsort(values, kind="stable")
            crossing = np.cumsum(weights[order]) >= 0.5 * weights.sum()
            assert _weighted_median(values, weights) == values[order][np.argmax(crossing)]


def test_each_harmonic_is_counted_in_whole_turns_from_the_ones_below_it() -> None:
    """A harmonic's angle gives the error modulo 1 / (h T); the consensus unwraps it."""
    from emg_pipeline.conditioning.notch import _unwrapped_consensus, _weighted_median

    rng = np.random.default_rng(8)
    block_s = 0.25
    orders = np.repeat(np.arange(1.0, 10.0), 2)   # two channels
    for true_error in np.linspace(-1.4, 1.4, 29):
        period = 1.0 / (orders * block_s)
        measured = true_error + rng.normal(0.0, 0.002, orders.size)
        wrapped = (measured + 0.5 * period) % period - 0.5 * period   # what an angle gives
        weights = rng.uniform(0.5, 2.0, orders.size) * orders**2
        got = _unwrapped_consensus(wrapped.copy(), weights, orders, block_s)
        assert got == pytest.approx(true_error, abs=0.01)
        # one harmonic alone is taken as it is: nothing tells its turns apart
        assert _unwrapped_consensus(wrapped[-2:].copy(), weights[-2:], orders[-2:],
                                    block_s) == _weighted_median(wrapped[-2:], weights[-2:])
    assert np.isnan(_unwrapped_consensus(np.empty(0), np.empty(0), np.empty(0), block_s))


def test_a_strong_high_harmonic_does_not_hold_the_comb_on_a_wrong_frequency() -> None:
    """A grid 0.3 Hz off its nominal 60 Hz, with a 7th harmonic 1.5 times the
    fundamental: that line's angle wraps in a 0.25 s block, and taken at face value
    it held the comb 0.57 Hz off (where it turns a whole turn per block), every line
    missed. Counted from the fundamental up, the comb locks and takes the lines out."""
    fs = 4000.0
    n = round(30.0 * fs)
    t = np.arange(n) / fs
    rng = np.random.default_rng(9)
    lines = sum(a * np.sin(2 * np.pi * h * 60.3 * t + h) for h, a in ((1, 50.0), (4, 47.0),
                                                                        (7, 74.0)))
    noise = 4.0 * rng.standard_normal(n)
    sos = bandpass_sos(fs, 20.0, 450.0)
    notch = MainsNotch(fs, 1, mains="60", band_hz=(20.0, 450.0))
    out = notch.process(SosFilter(sos, 1).process((lines + noise)[:, None]))[:, 0]
    rest = SosFilter(sos, 1).process(noise[:, None])[:, 0]
    assert notch.frequency_hz == pytest.approx(60.3, abs=0.02)
    assert np.std(out[n // 2 :]) < 1.1 * np.std(rest[n // 2 :])


def test_a_grid_taken_for_the_other_one_is_changed_on_the_same_sample_for_any_chunking(
) -> None:
    """A 50 Hz burst fills the first window, where a weak 60 Hz grid hums all along:
    the search sets 50 Hz, then sees the 60 Hz line in the windows it looks at again
    and starts the comb afresh on 60 Hz, at the same sample whatever the chunking."""
    from emg_pipeline.conditioning.mains_search import REVISE_EVERY, REVISE_WINDOWS

    rng = np.random.default_rng(11)
    n = round(60.0 * FS)
    t = np.arange(n) / FS
    x = rng.standard_normal(n) + np.sin(2 * np.pi * 60.2 * t)
    x[: round(FS)] += 8.0 * np.sin(2 * np.pi * 50.0 * t[: round(FS)])
    x = SosFilter(bandpass_sos(FS, 20.0, 450.0), 1).process(x[:, None])
    outs = []
    for cuts in ([], random_splits(rng, n, 60)):
        notch = MainsNotch(FS, 1, mains="auto", band_hz=(20.0, 450.0))
        edges = [0, *cuts, n]
        outs.append(np.concatenate([notch.process(x[a:b]) for a, b in itertools.pairwise(edges)]))
        assert notch.mains_hz == 60.0
        assert notch.found_at == round((REVISE_EVERY * REVISE_WINDOWS + 1) * FS)
    np.testing.assert_array_equal(outs[0], outs[1])
    late = outs[0][notch.found_at + round(4.0 * FS) :, 0]   # the comb settled on 60 Hz
    f, power = signal.welch(late, FS, nperseg=4000)
    line = power[np.abs(f - 60.2) < 1.0].max()
    assert line < 10.0 * np.median(power[(f > 50.0) & (f < 70.0)])


def _step_residue(pop: bool) -> tuple[float, float]:
    """RMS of the lines left by the comb in the 0.45 s after a step, and a second later.

    Lines 20x the noise triple at 10 s (a cable moved near the body), or a
    2000-unit pop lands at 10 s on steady lines. What is left of the lines is
    the comb's output less its output for the same signal without lines.
    """
    n = round(20.0 * FS)
    t = np.arange(n) / FS
    amp = np.where(t >= 10.0, 3.0, 1.0) if not pop else np.ones(n)
    lines = amp * (20.0 * np.sin(2 * np.pi * 50.1 * t) + 10.0 * np.sin(6 * np.pi * 50.1 * t + 1))
    rest = np.random.default_rng(2).standard_normal(n)
    if pop:
        rest[round(10.0 * FS) : round(10.02 * FS)] += 2000.0
    sos = bandpass_sos(FS, 20.0, 450.0)

    def comb(x: np.ndarray) -> np.ndarray:
        band = SosFilter(sos, 1).process(x[:, None])
        return MainsNotch(FS, 1, mains="50", band_hz=(20.0, 450.0)).process(band)[:, 0]

    left = comb(lines + rest) - comb(rest)
    first = slice(round(10.05 * FS), round(10.5 * FS))
    later = slice(round(11.0 * FS), round(12.0 * FS))
    return float(np.sqrt(np.mean(left[first] ** 2))), float(np.sqrt(np.mean(left[later] ** 2)))


def test_a_pop_does_not_make_the_lines_ring() -> None:
    first, later = _step_residue(pop=True)
    assert first < 2.0 and later < 1.0


def test_channels_that_go_flat_do_not_steer_the_comb() -> None:
    # two leads come off (flat inputs: a band-pass makes floating-point dust of them,
    # whose "lines" stand far above their own noise) while the grid drifts; when the
    # mains on the last channel swells three-fold, the dust must not retune the comb
    fs = 4000.0
    rng = np.random.default_rng(5)
    n = round(60.0 * fs)
    t = np.arange(n) / fs
    grid_hz = 49.7 + 0.2 * np.sin(2 * np.pi * t / 20.0)
    phase = 2 * np.pi * np.cumsum(grid_hz) / fs
    swell = 1.0 + 2.0 * np.clip((t - 20.0) / 0.3, 0, 1) * np.clip((26.3 - t) / 0.3, 0, 1)
    mains = swell * sum(a * np.sin(h * phase + h) for h, a in ((1, 20.0), (3, 20.0), (5, 6.0)))
    raw = 5000.0 + mains[:, None] + rng.standard_normal((n, 3))
    raw[round(10.0 * fs):, 1:] = raw[round(10.0 * fs), 1:]   # leads off
    x = SosFilter(bandpass_sos(fs, 20.0, 450.0), 3).process(raw)
    notch = MainsNotch(fs, 3, mains="50")
    error = []
    for i in range(0, n, 1000):
        notch.process(x[i : i + 1000])
        error.append(notch.frequency_hz - grid_hz[i + 999])
    assert np.abs(error[40:]).max() < 0.05   # 0.5 Hz off when dust could steer it
