"""Framing helpers: the frame and window kernels, and the ring buffer of recent rows."""

from __future__ import annotations

import numpy as np
import pytest

from emg_pipeline.framing import (
    Framer,
    History,
    MovingAverage,
    RunningMax,
    frame_sum,
    frame_sum_squares,
)


@pytest.mark.parametrize("capacity", [1, 3, 10])
def test_history_reads_what_was_written_across_the_wrap(capacity: int) -> None:
    rng = np.random.default_rng(capacity)
    hist = History(capacity, 2)
    written: list[np.ndarray] = []
    for n in rng.integers(0, 7, size=40):
        rows = rng.standard_normal((int(n), 2))
        hist.write(rows)
        written.append(rows)
        everything = np.concatenate(written)
        for _ in range(10):
            a, b = sorted(rng.integers(0, everything.shape[0] + 3, size=2).tolist())
            lo, hi = max(a, hist.start), min(b, hist.end)
            expected = everything[lo:hi] if hi > lo else np.empty((0, 2))
            assert np.array_equal(hist.read(a, b), expected)
            assert np.array_equal(hist.read(a, b, channel=1), expected[:, 1])


def _sequential_sum(frames: np.ndarray) -> np.ndarray:
    # the reference order: one position of the frame after the other
    total = frames[:, 0, :].copy()
    for j in range(1, frames.shape[1]):
        total += frames[:, j, :]
    return total


@pytest.mark.parametrize("n_channels", [1, 3, 4, 8, 9])
def test_frame_sums_add_the_positions_in_order(n_channels: int) -> None:
    x = np.random.default_rng(3).standard_normal((40, 10, n_channels)) * 1e3
    assert np.array_equal(frame_sum(x), _sequential_sum(x))
    assert np.array_equal(frame_sum_squares(x), _sequential_sum(x * x))
    assert np.array_equal(frame_sum(x[:, :1]), x[:, 0])
    # one frame, or a few, is the same as in a long run
    assert np.array_equal(frame_sum(x[:2]), frame_sum(x)[:2])


@pytest.mark.parametrize("reduce", [frame_sum, frame_sum_squares, lambda f: f.max(axis=1)])
def test_framer_is_chunking_invariant(reduce) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1000, 3)) * 1e3
    whole = Framer(7, 3, reduce).process(x)
    assert whole.shape == (142, 3)
    framer = Framer(7, 3, reduce)
    cuts = np.sort(rng.integers(0, 1000, size=150))
    pieces = [framer.process(x[a:b]) for a, b in zip([0, *cuts], [*cuts, 1000], strict=True)]
    assert np.array_equal(np.concatenate(pieces), whole)


def _moving_reference(x: np.ndarray, length: int, fill: float, op) -> np.ndarray:
    buf = np.concatenate([np.full((length - 1, x.shape[1]), fill), x])
    out = buf[: x.shape[0]].copy()
    for lag in range(1, length):
        out = op(out, buf[lag : lag + x.shape[0]])
    return out


@pytest.mark.parametrize("length", [1, 2, 20, 31])
def test_window_stages_match_the_lag_loop_whatever_the_chunking(length: int) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 3)) * 1e3
    x[::97, 0] = np.nan
    x[5::211, 1] = np.inf
    expected = {
        MovingAverage: _moving_reference(x, length, 0.0, np.add) / length,
        RunningMax: _moving_reference(x, length, -np.inf, np.maximum),
    }
    for stage, reference in expected.items():
        whole = stage(length, 3).process(x)
        assert np.array_equal(whole, reference, equal_nan=True)
        live = stage(length, 3)
        pieces = [live.process(x[i : i + 4]) for i in range(0, 3000, 4)]
        assert np.array_equal(np.concatenate(pieces), whole, equal_nan=True)
        ragged = stage(length, 3)
        cuts = np.sort(rng.integers(0, 3000, size=200))
        pieces = [ragged.process(x[a:b]) for a, b in zip([0, *cuts], [*cuts, 3000], strict=True)]
        assert np.array_equal(np.concatenate(pieces), whole, equal_nan=True)
