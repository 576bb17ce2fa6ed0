"""The compiled frame-rate stages against plain numpy formulations, bit for bit.

Each reference below is the straightforward numpy statement of a stage (one
chunk, vectorised over the whole signal). The stages must give exactly its
values, in one chunk and in any chunking: the compiled kernels add in the same
order, and carry their state exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from emg_pipeline.conditioning import ArtefactGate, FlatLine, NanBridge
from emg_pipeline.conditioning.filters import SosFilter, bandpass_sos
from emg_pipeline.envelope import Envelope
from emg_pipeline.sources.synthetic import simulate

FS = 1000.0
FRAME = 5


def _frame_sums(x: np.ndarray, frame_len: int) -> np.ndarray:
    n = x.shape[0] // frame_len
    frames = x[: n * frame_len].reshape(n, frame_len, x.shape[1])
    total = frames[:, 0].copy()
    for j in range(1, frame_len):
        total += frames[:, j]
    return total


def _moving(x: np.ndarray, length: int, fill: float, op) -> np.ndarray:
    buf = np.concatenate([np.full((length - 1, x.shape[1]), fill), x])
    out = buf[: x.shape[0]].copy()
    for lag in range(1, length):
        out = op(out, buf[lag : lag + x.shape[0]])
    return out


def _envelope_reference(x: np.ndarray, window_s: float, kind: str) -> tuple[np.ndarray, ...]:
    rate = FS / FRAME
    power = _frame_sums(x * x, FRAME) / FRAME
    if kind == "rms":
        length = max(1, round(window_s * rate))
        return np.sqrt(np.maximum(_moving(power, length, 0.0, np.add) / length, 0.0)), power
    alpha = 1.0 - np.exp(-1.0 / (0.5 * window_s * rate))
    sos = np.array([[alpha, 0.0, 0.0, 1.0, alpha - 1.0, 0.0]])
    smooth = signal.sosfilt(sos, _frame_sums(np.abs(x), FRAME) / FRAME, axis=0)
    return smooth * np.sqrt(np.pi / 2), power


def _gate_reference(
    gate: ArtefactGate, raw: np.ndarray, env: np.ndarray, ecg: np.ndarray | None
) -> tuple[np.ndarray, ...]:
    rate = FS / FRAME
    means = _frame_sums(raw, FRAME) / FRAME
    zi = signal.sosfilt_zi(gate._sos)[:, :, None] * means[0][None, None, :]
    band = signal.sosfilt(gate._sos, means, axis=0, zi=zi)[0]
    window = max(1, round(gate.window_s * rate))
    hold = max(1, round(gate.hold_s * rate))
    amplitude = np.sqrt(np.maximum(_moving(band * band, window, 0.0, np.add) / window, 0.0))
    low = _moving(amplitude, hold, -np.inf, np.maximum)
    block = max(1, round(gate.level_block_s * rate))
    allowed = np.empty_like(low)  # what the low band holds without an artefact
    level, background = np.full(low.shape[1], np.inf), np.zeros(low.shape[1])
    heart = np.zeros(low.shape, dtype=bool) if ecg is None else ecg
    first = min(block, round(0.5 * rate))   # the first block is short
    for start in [0, *range(first, low.shape[0], block)]:
        rows = slice(start, first if start == 0 else start + block)
        allowed[rows] = np.where(heart[rows], gate.ecg_margin * level,
                                 gate.noise_margin * background)
        if rows.stop <= low.shape[0]:
            background, level = np.quantile(low[rows], (0.5, 0.95), axis=0)
    explained = gate.ratio**2 * np.maximum(low * low - allowed * allowed, 0.0)
    power = env * env
    return np.sqrt(np.maximum(power - explained, 0.0)), explained > 0.5 * power, low


def _flat_reference(x: np.ndarray, min_run: int, hold: int) -> np.ndarray:
    changed = np.empty(x.shape, dtype=bool)
    changed[0] = True
    changed[1:] = x[1:] != x[:-1]
    n = x.shape[0] // FRAME
    moved = changed[: n * FRAME].reshape(n, FRAME, x.shape[1]).any(axis=1)
    run = np.zeros(moved.shape, dtype=np.int64)
    count = np.zeros(x.shape[1], dtype=np.int64)
    for k in range(n):
        count = np.where(moved[k], 0, count + 1)
        run[k] = count
    flat = (run >= min_run).astype(np.float64)
    return _moving(flat, hold, -np.inf, np.maximum) > 0


def _signal(seed: int, n_channels: int = 3) -> np.ndarray:
    rec = simulate(np.random.default_rng(seed), fs=FS, duration_s=30.0, n_channels=n_channels,
                   snr_db=12.0, ecg_uv=[300.0] + [0.0] * (n_channels - 1), pops_per_min=10.0,
                   knocks_per_min=6.0, motion_per_min=4.0, lead_in_s=1.0)
    x = rec.signal.copy()
    x[:1500, -1] = 0.0  # zeros before the board streams
    x[9000:9700, 0] = x[9000, 0]  # a held value
    x[20000:20030, n_channels // 2] = 1e4  # stuck at a rail
    return x


def _cuts(rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    sizes = rng.choice([0, 1, 3, 7, 40, 333, 4000], size=n)
    bounds = np.minimum(np.cumsum(sizes), n)
    starts = np.concatenate([[0], bounds])
    return [(int(a), int(b)) for a, b in zip(starts, [*bounds, n], strict=True) if a <= b]


def _feed(make, x: np.ndarray, pieces: list[tuple[int, int]]):
    stage = make()
    return stage, [stage.process(x[a:b]) for a, b in pieces]


@pytest.mark.parametrize("kind", ["rms", "lowpass"])
@pytest.mark.parametrize("n_channels", [1, 3, 8])
def test_envelope_matches_the_numpy_reference(kind: str, n_channels: int) -> None:
    rng = np.random.default_rng(n_channels)
    x = SosFilter(bandpass_sos(FS, 20.0, 450.0), n_channels).process(_signal(1, n_channels))
    env_ref, power_ref = _envelope_reference(x, 0.1, kind)
    for pieces in ([(0, x.shape[0])], _cuts(rng, x.shape[0])):
        env = Envelope(FS, n_channels, FRAME, 0.1, kind)
        out, power = [], []
        for a, b in pieces:
            out.append(env.process(x[a:b]))
            power.append(env.frame_power)
        assert np.array_equal(np.concatenate(out), env_ref)
        assert np.array_equal(np.concatenate(power), power_ref)


@pytest.mark.parametrize("level_block_s", [5.0, 0.37])
def test_artefact_gate_matches_the_numpy_reference(level_block_s: float) -> None:
    rng = np.random.default_rng(2)
    raw = _signal(2)
    band = SosFilter(bandpass_sos(FS, 20.0, 450.0), 3).process(raw)
    env = Envelope(FS, 3, FRAME, 0.1).process(band)
    ecg = np.zeros(env.shape, dtype=bool)
    ecg[:, 0] = True
    ecg[1000:3000, 1] = True
    for flags in (None, ecg):
        gate = ArtefactGate(FS, 3, FRAME, 0.1, level_block_s=level_block_s)
        out_ref, art_ref, low_ref = _gate_reference(gate, raw, env, flags)
        for pieces in ([(0, raw.shape[0])], _cuts(rng, raw.shape[0])):
            gate.reset()
            out, art, low = [], [], []
            for a, b in pieces:
                f0, f1 = a // FRAME, b // FRAME
                part = None if flags is None else flags[f0:f1]
                out.append(gate.process(raw[a:b], env[f0:f1], part))
                art.append(gate.artefact)
                low.append(gate.low_band)
            assert np.array_equal(np.concatenate(out), out_ref)
            assert np.array_equal(np.concatenate(art), art_ref)
            assert np.array_equal(np.concatenate(low), low_ref)


@pytest.mark.parametrize(("min_s", "hold_s"), [(0.1, 0.15), (0.005, 0.0), (0.3, 0.5)])
def test_flat_line_matches_the_numpy_reference(min_s: float, hold_s: float) -> None:
    rng = np.random.default_rng(3)
    x = _signal(3)
    flat = FlatLine(FS, 3, FRAME, min_s=min_s, hold_s=hold_s)
    expected = _flat_reference(x, flat._min_run, flat._hold)
    assert expected.any() and not expected.all()
    for pieces in ([(0, x.shape[0])], _cuts(rng, x.shape[0])):
        _, out = _feed(lambda: FlatLine(FS, 3, FRAME, min_s=min_s, hold_s=hold_s), x, pieces)
        assert np.array_equal(np.concatenate(out), expected)


def test_nan_bridge_holds_the_last_value_and_records_every_run() -> None:
    rng = np.random.default_rng(4)
    x = _signal(4)
    x[:70, 0] = np.nan
    x[5000:5400, 1] = np.nan
    x[7000, 2] = np.inf
    x[7001, 2] = -np.inf
    x[rng.integers(0, x.shape[0], 300), rng.integers(0, 3, 300)] = np.nan
    x[-30:, 2] = np.nan
    bad = ~np.isfinite(x)
    idx = np.where(bad, 0, np.arange(x.shape[0])[:, None])
    expected = np.take_along_axis(x, np.maximum.accumulate(idx, axis=0), axis=0)
    expected[:70, 0] = 0.0  # nothing to hold before the first sample: zero
    whole, out = _feed(lambda: NanBridge(3), x, [(0, x.shape[0])])
    assert np.array_equal(out[0], expected)
    assert whole.n_bridged.tolist() == bad.sum(axis=0).tolist()
    runs = []  # every run of missing samples, channel by channel, in time order
    for c in range(3):
        edges = np.diff(np.concatenate([[0], bad[:, c].astype(int), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        runs += [(c, int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]
    assert [(g.channel, g.start, g.n_samples) for g in whole.gaps] == runs
    assert runs[0] == (0, 0, 70)
    stage, pieces = _feed(lambda: NanBridge(3), x, _cuts(rng, x.shape[0]))
    assert np.array_equal(np.concatenate(pieces), expected)
    assert stage.n_bridged.tolist() == whole.n_bridged.tolist()
    # a run cut by a chunk boundary is reported once per chunk, from where it continues
    assert sum(g.n_samples for g in stage.gaps) == bad.sum()
    clean = _signal(4)[100:4000]
    assert NanBridge(3).process(clean) is clean  # no missing sample: no copy
