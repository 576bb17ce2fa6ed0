"""Bridging of missing samples (NaN) before any filter sees them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .._jit import jit
from ..framing import FLOAT64

__all__ = ["MAX_ABS_SAMPLE", "MAX_GAPS_KEPT", "FlatLine", "Gap", "NanBridge", "is_missing"]

#: largest magnitude a sample can have (µV or counts): beyond it, a value is no
#: measurement (a megavolt, more than any converter counts) but a damaged or
#: misread one, and is bridged as missing, before its square or a filter's sum
#: could overflow
MAX_ABS_SAMPLE = 1e12

#: bridged runs listed by :attr:`NanBridge.gaps` (the most recent ones; the counts
#: stay exact): a 24-hour stream over a lossy link has tens of thousands of them,
#: and a live session's memory must not grow with its length
MAX_GAPS_KEPT = 10_000


def is_missing(x: np.ndarray) -> np.ndarray:
    """Mask of the samples the :class:`NanBridge` bridges: NaN, ±inf, beyond :data:`MAX_ABS_SAMPLE`.

    Examples
    --------
    >>> is_missing(np.array([1.0, np.nan, -np.inf, 1e200, -1e12])).tolist()
    [False, True, True, True, False]
    """
    return ~(np.abs(x) <= MAX_ABS_SAMPLE)


@dataclass(frozen=True)
class Gap:
    """A run of missing samples on one channel that was bridged.

    Attributes
    ----------
    channel : int
        Channel index.
    start : int
        Index of the first missing sample on the stream's sample clock.
    n_samples : int
        Number of missing samples (the run may continue into the next chunk,
        in which case it is reported again from there).
    """

    channel: int
    start: int
    n_samples: int


@jit
def _all_finite(x: np.ndarray, last: np.ndarray) -> bool:
    """Whether every sample of ``x`` (C-contiguous) is usable; if so ``last`` = its last row.

    Usable: finite and within :data:`MAX_ABS_SAMPLE`.
    """
    n, n_ch = x.shape
    values = x.reshape(-1)
    for start in range(0, n * n_ch, 1024):  # blocks: an early exit, and loops that vectorise
        block = values[start : start + 1024]
        bad = 0
        for i in range(block.shape[0]):
            bad += not (abs(block[i]) <= MAX_ABS_SAMPLE)  # NaN compares false
        if bad:
            return False
    if n:
        for c in range(n_ch):
            last[c] = x[n - 1, c]
    return True


@jit
def _bridge_kernel(
    x: np.ndarray, last: np.ndarray, index: int, y: np.ndarray,
    counts: np.ndarray, runs: np.ndarray,
) -> int:
    """Hold the last usable value of each channel over the missing samples.

    Missing: NaN, ±inf, or beyond :data:`MAX_ABS_SAMPLE` in magnitude.

    ``last`` (the value held from before ``x``) and ``counts`` (bridged
    samples per channel) are updated in place. Every run of missing samples
    is written to ``runs`` as ``(channel, start, length)``, channel by channel
    and in time order, with ``start`` on the stream's clock (``index`` is that
    of ``x[0]``); the number of runs is returned.
    """
    n, n_ch = x.shape
    n_runs = 0
    for c in range(n_ch):
        held = last[c]
        start = -1
        for i in range(n):
            v = x[i, c]
            if abs(v) <= MAX_ABS_SAMPLE:  # usable (NaN compares false)
                held = v
                if start >= 0:
                    runs[n_runs, 0] = c
                    runs[n_runs, 1] = index + start
                    runs[n_runs, 2] = i - start
                    n_runs += 1
                    start = -1
            else:
                counts[c] += 1
                if start < 0:
                    start = i
            y[i, c] = held
        if start >= 0:
            runs[n_runs, 0] = c
            runs[n_runs, 1] = index + start
            runs[n_runs, 2] = n - start
            n_runs += 1
        last[c] = held
    return n_runs


@jit
def _flat_kernel(
    x: np.ndarray, frame_len: int, offset: int, state: np.ndarray, prev: np.ndarray,
    moved: np.ndarray, min_run: int, hold: int, out: np.ndarray,
) -> None:
    """Mark the frames completed by ``x`` (rows of ``out``) where a channel is flat.

    ``offset`` samples of the unfinished frame were seen before ``x``. State,
    per channel, updated in place: ``prev`` the last sample, ``moved``
    whether a sample of the unfinished frame differed from the one before it,
    ``state[0]`` the frames since the last frame that moved and ``state[1]``
    the frames since the last flat frame (capped at ``hold``). A frame is
    flat when no sample moved for ``min_run`` frames (itself included), and
    marked when a flat frame is among the last ``hold`` frames (itself
    included).

    A frame that moved is settled by its first changing sample: the samples
    after it are not compared, only the frame's last sample is kept.
    """
    n, n_ch = x.shape
    run = state[0]
    since = state[1]
    k = 0
    a = 0  # first sample of the current frame in x
    while True:
        b = a + frame_len - offset  # one past its last sample
        complete = b <= n
        if not complete:
            b = n
        if b > a:
            for c in range(n_ch):
                if not moved[c]:
                    p = prev[c]
                    for i in range(a, b):
                        if x[i, c] != p:  # NaN never equals anything
                            moved[c] = True
                            break
                prev[c] = x[b - 1, c]
        if not complete:
            return
        for c in range(n_ch):
            if moved[c]:
                run[c] = 0
            else:
                run[c] += 1
            if run[c] >= min_run:
                since[c] = 0
            elif since[c] < hold:
                since[c] += 1
            out[k, c] = since[c] < hold
            moved[c] = False
        k += 1
        a = b
        offset = 0


class NanBridge:
    """Replace missing samples by the last valid value of their channel.

    Missing: NaN, ±inf, and values beyond :data:`MAX_ABS_SAMPLE` in magnitude
    (a damaged or misread value, which would overflow the filters' sums).

    Holding the last value is causal and, after the band-pass, turns a gap into
    silence, so that a gap can neither excite the filters nor look like
    activity. Every bridged sample is counted in :attr:`n_bridged` and every
    run in :attr:`n_gaps`; the most recent :data:`MAX_GAPS_KEPT` runs are
    listed in :attr:`gaps`. Nothing is dropped, so the timeline stays right.

    Parameters
    ----------
    n_channels : int
        Number of channels.

    Examples
    --------
    >>> b = NanBridge(1)
    >>> b.process(np.array([[1.0], [np.nan], [3.0]])).ravel().tolist()
    [1.0, 1.0, 3.0]
    >>> b.n_bridged.tolist()
    [1]
    """

    def __init__(self, n_channels: int) -> None:
        self.n_channels = int(n_channels)
        self.reset()

    def reset(self) -> None:
        """Forget the held values, counts and gap list."""
        self._last = np.zeros(self.n_channels)
        self._index = 0
        self.n_bridged = np.zeros(self.n_channels, dtype=np.int64)
        self.n_gaps = 0
        self.gaps: deque[Gap] = deque(maxlen=MAX_GAPS_KEPT)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` with missing samples replaced; ``x`` itself is not modified.

        A chunk without missing samples is returned as it is (the same array).
        """
        if (x.dtype is not FLOAT64 and x.dtype != FLOAT64) or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float64)
        n = x.shape[0]
        if _all_finite(x, self._last):  # the usual chunk: one pass, no copy
            self._index += n
            return x
        y = np.empty(x.shape)
        runs = np.empty((self.n_channels * ((n + 1) // 2), 3), dtype=np.int64)
        n_runs = _bridge_kernel(x, self._last, self._index, y, self.n_bridged, runs)
        self.gaps.extend(Gap(c, start, length) for c, start, length in runs[:n_runs].tolist())
        self.n_gaps += int(n_runs)
        self._index += n
        return y


class FlatLine:
    """Mark the frames where a channel carries no signal: a flat line.

    An electrode that came off, a board that sends zeros before it streams, an
    amplifier stuck at a rail, and the runs of missing samples the
    :class:`NanBridge` holds at their last value all give exactly constant samples.
    After the band-pass they look like perfect rest: a floor learned from them would
    be near zero, and the signal's return would look like a contraction that never
    ends. A frame whose samples all equal the sample before them continues a flat
    run; once the run has lasted ``min_s`` its frames are marked (causal: the first
    ``min_s`` of a run are not), and so are the ``hold_s`` after it (the band-pass
    and the envelope window need that long to settle when the signal comes back).

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    n_channels : int
        Number of channels.
    frame_len : int
        Samples per frame (the envelope's framing).
    min_s : float
        Shortest flat run that counts.
    hold_s : float
        Frames after a flat run that stay marked.

    Examples
    --------
    >>> x = np.zeros((400, 1)); x[200:, 0] = np.random.default_rng(0).standard_normal(200)
    >>> marked = FlatLine(1000.0, 1, 10, min_s=0.05, hold_s=0.05).process(x)
    >>> marked[:, 0].astype(int).tolist()[:30]
    [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    """

    def __init__(
        self, fs: float, n_channels: int, frame_len: int, min_s: float = 0.1, hold_s: float = 0.15
    ) -> None:
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.frame_len = int(frame_len)
        self.min_s = float(min_s)
        self.hold_s = float(hold_s)
        frame_rate = self.fs / self.frame_len
        self._min_run = max(1, round(self.min_s * frame_rate))
        self._hold = max(1, round(self.hold_s * frame_rate) + 1)  # frames marked per flat frame
        self.reset()

    def reset(self) -> None:
        """Forget the current runs."""
        self._prev = np.full(self.n_channels, np.nan)  # nothing equals the stream's start
        self._offset = 0  # samples of the unfinished frame already seen
        self._moved = np.zeros(self.n_channels, dtype=bool)  # ... and whether they changed
        # frames since the last frame that moved, and since the last flat frame
        self._state = np.zeros((2, self.n_channels), dtype=np.int64)
        self._state[1] = self._hold

    def process(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask ``(n_frames, n_channels)`` of the frames completed by ``x``."""
        if x.dtype is not FLOAT64 and x.dtype != FLOAT64:
            x = x.astype(np.float64)
        total = self._offset + x.shape[0]
        out = np.empty((total // self.frame_len, self.n_channels), dtype=bool)
        _flat_kernel(
            x, self.frame_len, self._offset, self._state, self._prev, self._moved,
            self._min_run, self._hold, out,
        )
        self._offset = total % self.frame_len
        return out
