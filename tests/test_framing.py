"""The ring buffer that keeps recent samples and frames for episode features."""

from __future__ import annotations

import numpy as np
import pytest

from emg_pipeline.framing import _FEW_FRAMES, History, MovingAverage, RunningMax, frame_sum


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


def test_frame_sum_running_sum_path_is_identical() -> None:
    # few frames take a running sum, many an explicit loop: the same additions in the same order
    x = np.random.default_rng(3).standard_normal((3 * _FEW_FRAMES, 10, 4)) * 1e3
    whole = frame_sum(x)
    assert np.array_equal(whole[:_FEW_FRAMES], frame_sum(x[:_FEW_FRAMES]))
    assert np.array_equal(whole[:2], frame_sum(x[:2]))


@pytest.mark.parametrize("stage", [MovingAverage, RunningMax])
def test_window_stages_give_the_same_rows_for_live_and_long_chunks(stage) -> None:
    # a few rows take the gathered-window path, many the lag loop: identical values
    x = np.random.default_rng(4).standard_normal((200, 3)) * 1e3
    whole = stage(20, 3).process(x)
    live = stage(20, 3)
    pieces = [live.process(x[i : i + 4]) for i in range(0, 200, 4)]
    assert np.array_equal(np.concatenate(pieces), whole)
