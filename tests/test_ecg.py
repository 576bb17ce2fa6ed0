"""The ECG suppressor: streamed in any chunking, it is the block-wise statement of its algorithm."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import signal

from emg_pipeline.conditioning.ecg import EcgSuppressor
from emg_pipeline.conditioning.filters import SosFilter, bandpass_sos
from emg_pipeline.sources.synthetic import simulate

from .conftest import random_splits

FS = 1000.0


def _robust_sd(values: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _found(stage: EcgSuppressor, amp: np.ndarray) -> np.ndarray:
    """Which channels of ``amp`` (the kept window, oldest first) show a heartbeat."""
    pool = max(1, int(stage.frame_rate // 100))
    rate = stage.frame_rate / pool
    lo, hi = (round(s * rate) for s in (0.375, 1.5))
    distance = max(1, round(0.1 * rate))
    usable = amp.shape[0] - amp.shape[0] % pool
    amp = amp[amp.shape[0] - usable :]
    rows = amp.T.reshape(amp.shape[1], -1, pool).max(axis=2)
    min_beats = max(4, int(0.8 * rows.shape[1] / hi))
    found = np.zeros(amp.shape[1], dtype=bool)
    for c in range(amp.shape[1]):
        if not np.isfinite(amp[:, c]).all():
            continue
        row = rows[c]
        median = np.median(row)
        height = median + stage.peak_mad * max(np.median(np.abs(row - median)), 1e-12)
        # a beat reaches the height, rises, and is the largest within 0.1 s either side
        beats = [i for i in range(1, len(row) - 1)
                 if row[i] >= height and row[i] > row[i - 1]
                 and row[i] == row[max(0, i - distance + 1) : i + distance].max()]
        if len(beats) < min_beats:
            continue
        gaps = np.diff(beats)
        heights = row[beats]
        typical = np.median(gaps)
        found[c] = (
            lo <= typical <= hi
            and _robust_sd(gaps) <= stage.max_cv * typical
            and _robust_sd(heights) <= stage.max_cv * np.median(heights)
        )
    return found


def _reference(stage: EcgSuppressor, raw: np.ndarray, band: np.ndarray) -> tuple:
    """The stage on a whole signal, block by block, with numpy and scipy."""
    F, C = stage.frame_len, raw.shape[1]
    n_frames = raw.shape[0] // F
    frames = raw[: n_frames * F].reshape(n_frames, F, C)
    total = frames[:, 0].copy()
    for j in range(1, F):  # the additions in sample order
        total += frames[:, j]
    means = total / F
    low_sos = signal.butter(2, [5.0, min(25.0, 0.4 * stage.frame_rate)], btype="bandpass",
                            fs=stage.frame_rate, output="sos")
    zi = signal.sosfilt_zi(low_sos)[:, :, None] * means[0]
    amp = np.abs(signal.sosfilt(low_sos, means, axis=0, zi=zi)[0])
    hp_sos = signal.butter(4, stage.highpass_hz, btype="highpass", fs=stage.fs, output="sos")
    block_frames = max(1, round(stage.block_s * stage.frame_rate))
    window = max(block_frames, round(stage.window_s * stage.frame_rate))
    B = block_frames * F
    out = band.copy()
    flags = np.zeros((n_frames, C), dtype=bool)
    ecg = np.zeros(C, dtype=bool)
    misses = np.zeros(C, dtype=np.int64)
    zi_hp = np.zeros((hp_sos.shape[0], 2, C))
    for b in range(-(-raw.shape[0] // B)):
        s, e = b * B, min(raw.shape[0], (b + 1) * B)
        if ecg.any():  # the high-pass runs on every channel, kept where switched on
            high, zi_hp = signal.sosfilt(hp_sos, band[s:e], axis=0, zi=zi_hp)
            out[s:e] = np.where(ecg, high, band[s:e])
        flags[b * block_frames : (b + 1) * block_frames] = ecg
        if e == (b + 1) * B:
            end = (b + 1) * block_frames
            found = _found(stage, amp[max(0, end - window) : end])
            misses = np.where(found, 0, misses + 1)
            ecg = found | (ecg & (misses < 3))
    return out, flags, ecg


def _signal(rng: np.random.Generator) -> np.ndarray:
    """Heartbeats on two of three channels, then none, then again."""
    kw = dict(fs=FS, duration_s=30.0, n_channels=3, snr_db=12.0, mains_uv=20.0)
    beats = simulate(rng, ecg_uv=[400.0, 0.0, 250.0], pops_per_min=6.0, **kw).signal
    quiet = simulate(rng, **kw).signal
    return np.ascontiguousarray(np.concatenate([beats, quiet, beats[:10000]]))


@pytest.mark.parametrize(("block_s", "window_s"), [(5.0, 10.0), (2.0, 3.0)])
def test_the_stage_is_the_numpy_statement_bit_for_bit(
    rng: np.random.Generator, block_s: float, window_s: float
) -> None:
    x = _signal(rng)
    band = SosFilter(bandpass_sos(FS, 20.0, 450.0), 3).process(x)
    kw = dict(block_s=block_s, window_s=window_s)
    ref_out, ref_flags, ref_ecg = _reference(EcgSuppressor(FS, 3, 5, (20.0, 450.0), **kw), x, band)
    assert ref_flags[:, 0].any() and not ref_flags[:, 1].any()
    for parts in (1, 7, 500, 5000):
        stage = EcgSuppressor(FS, 3, 5, (20.0, 450.0), **kw)
        cuts = [] if parts == 1 else random_splits(rng, x.shape[0], parts)
        pieces = [stage.process(x[a:b], band[a:b])
                  for a, b in itertools.pairwise([0, *cuts, x.shape[0]])]
        assert np.array_equal(np.concatenate([p[0] for p in pieces]), ref_out)
        assert np.array_equal(np.concatenate([p[1] for p in pieces]), ref_flags)
        assert np.array_equal(stage.ecg, ref_ecg)


def test_a_chunk_without_heartbeats_returns_the_band_itself(rng: np.random.Generator) -> None:
    x = simulate(rng, fs=FS, duration_s=12.0, n_channels=2).signal
    stage = EcgSuppressor(FS, 2, 5, (20.0, 450.0))
    out, flags = stage.process(x, x)
    assert out is x and flags.shape == (x.shape[0] // 5, 2) and not flags.any()
    out, flags = stage.process(x[:3], x[:3])
    assert out.shape == (3, 2) and flags.shape == (0, 2)


def test_reset_forgets_everything(rng: np.random.Generator) -> None:
    x = _signal(rng)[:40000]
    stage = EcgSuppressor(FS, 3, 5, (20.0, 450.0))
    first = stage.process(x, x)
    snapshot = stage.ecg
    assert snapshot.any()
    stage.reset()
    assert not stage.ecg.any() and snapshot.any()  # ``ecg`` is a copy
    again = stage.process(x, x)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])


def _pieces(stage: EcgSuppressor, x: np.ndarray, band: np.ndarray, cuts: list) -> tuple:
    parts = [stage.process(x[a:b], band[a:b]) for a, b in itertools.pairwise([0, *cuts, len(x)])]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize(
    "kw",
    [dict(ecg_uv=400.0), dict(ecg_uv=[0.0, 300.0, 0.0, 300.0]),
     dict(motion_per_min=6.0, pops_per_min=6.0, knocks_per_min=4.0),
     dict(ecg_uv=[300.0, 0.0, 0.0, 500.0], motion_per_min=4.0, pops_per_min=8.0,
          knocks_per_min=4.0)],
)
def test_simulated_recordings_are_judged_like_the_numpy_statement(
    rng: np.random.Generator, kw: dict
) -> None:
    fs = 2000.0
    x = simulate(rng, fs=fs, duration_s=40.0, n_channels=4, **kw).signal
    band = SosFilter(bandpass_sos(fs, 20.0, 450.0), 4).process(x)
    ref = _reference(EcgSuppressor(fs, 4, 10, (20.0, 450.0)), x, band)
    beats = np.asarray(kw.get("ecg_uv", 0.0)) * np.ones(4) > 0
    assert not (ref[2] & ~beats).any()
    if set(kw) == {"ecg_uv"}:
        assert np.array_equal(ref[2], beats)
    for parts in (1, 9, 2000):
        stage = EcgSuppressor(fs, 4, 10, (20.0, 450.0))
        cuts = [] if parts == 1 else random_splits(rng, x.shape[0], parts)
        out, flags = _pieces(stage, x, band, cuts)
        assert np.array_equal(out, ref[0]) and np.array_equal(flags, ref[1])
        assert np.array_equal(stage.ecg, ref[2])


def test_a_non_finite_amplitude_shows_no_heartbeat(rng: np.random.Generator) -> None:
    # a NaN poisons the low band of its channel until a reset: the channel is
    # switched off after three blocks, the others are judged as before
    x = _signal(rng)[:40000].copy()
    x[12345, 2] = np.nan
    band = SosFilter(bandpass_sos(FS, 20.0, 450.0), 3).process(x)
    whole = EcgSuppressor(FS, 3, 5, (20.0, 450.0)).process(x, band)
    ref = _reference(EcgSuppressor(FS, 3, 5, (20.0, 450.0)), x, band)
    assert np.array_equal(whole[0], ref[0], equal_nan=True)
    assert np.array_equal(whole[1], ref[1])
    assert whole[1][:2000, 2].any() and not whole[1][-2000:, 2].any()
    assert whole[1][-2000:, 0].all()
    for parts in (7, 300):
        stage = EcgSuppressor(FS, 3, 5, (20.0, 450.0))
        out, flags = _pieces(stage, x, band, random_splits(rng, x.shape[0], parts))
        assert np.array_equal(out, whole[0], equal_nan=True)
        assert np.array_equal(flags, whole[1])
    # in the judgement itself: an infinity, or a NaN anywhere in the window
    stage = EcgSuppressor(FS, 3, 5, (20.0, 450.0))
    stage.process(x[:12000], x[:12000])
    assert stage._judge()[[0, 2]].all()
    kept = stage._amp.read(0, stage._amp.end)
    for bad in (np.inf, np.nan):
        for back in (1, 1000, stage._window_frames):
            amp = kept.copy()
            amp[-back, 2] = bad
            stage._amp.reset()
            stage._amp.write(amp)
            found = stage._judge()
            assert found[0] and not found[2]


def _ring(rng: np.random.Generator, kind: int, shape: tuple[int, int]) -> np.ndarray:
    if kind == 0:
        return rng.random(shape)
    if kind == 1:  # regular spikes of slightly different heights on noise
        a = 0.1 * rng.random(shape)
        period = int(rng.integers(8, 60))
        a[int(rng.integers(period)) :: period] += 1.0 + 0.1 * rng.random((1, shape[1]))
        return a
    if kind == 2:  # few levels: plateaus and equal heights
        return np.floor(rng.random(shape) * int(rng.integers(2, 10)))
    return np.repeat(rng.random((shape[0] // 3 + 1, shape[1])), 3, axis=0)[: shape[0]]


@pytest.mark.parametrize("fs", [200.0, 500.0, 1000.0, 2000.0, 4000.0])
def test_judge_matches_the_numpy_statement(rng: np.random.Generator, fs: float) -> None:
    frame_len = max(1, round(0.005 * fs))
    stage = EcgSuppressor(fs, 4, frame_len, (20.0, min(450.0, 0.45 * fs)))
    for trial in range(60):
        end = int(rng.integers(stage._window_frames // 2, 3 * stage._window_frames))
        amp = _ring(rng, trial % 4, (end, 4))
        stage._amp.reset()
        stage._amp.write(amp)
        assert np.array_equal(stage._judge(), _found(stage, amp[-stage._window_frames:])), trial
