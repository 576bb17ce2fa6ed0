"""Bridging of missing samples (NaN) before any filter sees them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..framing import RunningMax

__all__ = ["FlatLine", "Gap", "NanBridge"]


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


class NanBridge:
    """Replace NaN samples by the last valid value of their channel.

    Holding the last value is causal and, after the band-pass, turns a gap into
    silence, so that a gap can neither excite the filters nor look like
    activity. Every bridged run is recorded in :attr:`gaps` and counted in
    :attr:`n_bridged`; nothing is dropped, so the timeline stays right.

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
        self.gaps: list[Gap] = []

    def process(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` with NaN (and ±inf) replaced; ``x`` itself is not modified."""
        n = x.shape[0]
        bad = ~np.isfinite(x)
        if n == 0:
            return x
        if not bad.any():
            self._last = x[-1].copy()
            self._index += n
            return x
        rows = np.arange(n)[:, None]
        # index of the last good row at or before each row (-1: none in this chunk)
        last_good = np.maximum.accumulate(np.where(bad, -1, rows), axis=0)
        held = np.take_along_axis(x, np.maximum(last_good, 0), axis=0)
        y = np.where(last_good < 0, self._last[None, :], held)
        y = np.where(bad, y, x)
        self._record(bad)
        self._last = y[-1].copy()
        self._index += n
        return y

    def _record(self, bad: np.ndarray) -> None:
        self.n_bridged += bad.sum(axis=0)
        padded = np.zeros((bad.shape[0] + 2, bad.shape[1]), dtype=np.int8)
        padded[1:-1] = bad
        edges = np.diff(padded, axis=0)
        starts_r, starts_c = np.nonzero(edges == 1)
        ends_r, ends_c = np.nonzero(edges == -1)
        # np.nonzero orders by row; sort by channel then row to pair starts with ends
        s_order = np.lexsort((starts_r, starts_c))
        e_order = np.lexsort((ends_r, ends_c))
        for s, e, c in zip(
            starts_r[s_order], ends_r[e_order], starts_c[s_order], strict=True
        ):
            self.gaps.append(Gap(int(c), self._index + int(s), int(e - s)))


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
        self._hold = RunningMax(max(1, round(self.hold_s * frame_rate) + 1), self.n_channels)
        self.reset()

    def reset(self) -> None:
        """Forget the current runs."""
        self._hold.reset()
        self._last = np.full(self.n_channels, np.nan)  # nothing equals the stream's start
        self._offset = 0  # samples of the unfinished frame already seen
        self._pending = np.zeros(self.n_channels, dtype=bool)  # ... and whether they changed
        self._run = np.zeros(self.n_channels, dtype=np.int64)
        self._clear = 10**9  # frames since the last flat frame (the hold needs none)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask ``(n_frames, n_channels)`` of the frames completed by ``x``."""
        n = x.shape[0]
        F = self.frame_len
        if n == 0:
            return np.zeros((0, self.n_channels), dtype=bool)
        # a sample "changes" when it differs from the one before it (across chunks)
        changed = np.empty(x.shape, dtype=bool)
        np.not_equal(x[0], self._last, out=changed[0])
        np.not_equal(x[1:], x[:-1], out=changed[1:])
        self._last = x[-1].copy()
        n_frames = (self._offset + n) // F
        if self._clear >= self._hold.length and not self._run.any() and changed.all():
            # the usual chunk of a live signal: every sample moved, no flat run
            # is in progress and the hold has run out, so nothing is marked and
            # the state after it is what the general path below would leave
            self._offset = (self._offset + n) % F
            self._pending = np.full(self.n_channels, n_frames == 0 or self._offset > 0)
            self._clear += n_frames
            return np.zeros((n_frames, self.n_channels), dtype=bool)
        if n_frames == 0:
            self._pending |= changed.any(axis=0)
            self._offset += n
            return np.zeros((0, self.n_channels), dtype=bool)
        # did anything change in each frame completed by this chunk?
        head = F - self._offset  # samples that complete the pending frame
        moved = np.empty((n_frames, self.n_channels), dtype=bool)
        moved[0] = self._pending | changed[:head].any(axis=0)
        stop = head + (n_frames - 1) * F
        if n_frames > 1:
            moved[1:] = changed[head:stop].reshape(n_frames - 1, F, self.n_channels).any(axis=1)
        self._pending = changed[stop:].any(axis=0)
        self._offset = (self._offset + n) % F
        still = ~moved
        # frames since the last frame that broke the run (carried across chunks)
        idx = np.arange(n_frames)[:, None]
        last_break = np.maximum.accumulate(np.where(still, -1, idx), axis=0)
        run = np.where(last_break >= 0, idx - last_break, self._run[None, :] + idx + 1)
        self._run = run[-1].copy()
        flat = run >= self._min_run
        hits = np.flatnonzero(flat.any(axis=1))
        self._clear = n_frames - 1 - int(hits[-1]) if hits.size else self._clear + n_frames
        return self._hold.process(flat.astype(np.float64)) > 0
