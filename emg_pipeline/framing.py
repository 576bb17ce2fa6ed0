"""Cutting a sample stream into fixed frames aligned on the sample clock.

The envelope and the detector run at a frame rate (``frame_s``, 5 ms by
default) rather than at the sample rate: every later stage then costs a
fraction of the band-pass. Frames are aligned on absolute sample indices, and
an unfinished frame is carried to the next chunk as samples (not as a partial
sum), so every frame is reduced from the same contiguous samples whatever the
chunking and the results are bit-for-bit identical.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

__all__ = [
    "Framer",
    "History",
    "MovingAverage",
    "RunningMax",
    "frame_sum",
    "frame_sum_squares",
]

_FEW_FRAMES = 16  # up to this many frames, frame_sum uses one running sum (see there)
# up to this many new rows, MovingAverage and RunningMax gather their windows
# (fewer numpy calls for a live chunk; slower per element than the lag loop)
_FEW_ROWS = 6


@functools.lru_cache(maxsize=64)
def _windows(n: int, length: int) -> np.ndarray:
    """Row indices ``(n, length)`` of the ``length``-row windows ending at each of ``n`` rows."""
    rows = np.arange(n)[:, None] + np.arange(length)[None, :]
    rows.flags.writeable = False  # shared between callers
    return rows


def frame_sum(frames: np.ndarray) -> np.ndarray:
    """Sum over axis 1 of ``(n_frames, frame_len, n_channels)``.

    The positions of a frame are added one vector at a time, always in the same
    order: numpy's reductions (and einsum) choose their summation order from the
    array's shape, which would make frame values depend on the chunking in the
    last bit.
    """
    if frames.shape[0] <= _FEW_FRAMES:
        # a live chunk completes a handful of frames: a running sum along each
        # frame is the same sequence of additions in one call instead of
        # frame_len - 1 (slower per element, so only for small inputs)
        return np.add.accumulate(frames, axis=1)[:, -1, :]
    total = frames[:, 0, :].copy()
    for j in range(1, frames.shape[1]):
        total += frames[:, j, :]
    return total


def frame_sum_squares(frames: np.ndarray) -> np.ndarray:
    """Sum of squares over axis 1 of ``(n_frames, frame_len, n_channels)``."""
    return frame_sum(frames * frames)


class Framer:
    """Reduce consecutive frames of ``frame_len`` samples with a carried remainder.

    Parameters
    ----------
    frame_len : int
        Samples per frame.
    n_channels : int
        Number of channels.
    reduce : callable
        Maps ``(n_frames, frame_len, n_channels)`` to ``(n_frames, n_channels)``.

    Examples
    --------
    >>> f = Framer(2, 1, frame_sum)
    >>> f.process(np.arange(3.0)[:, None]).ravel().tolist()
    [1.0]
    >>> f.process(np.arange(3.0, 6.0)[:, None]).ravel().tolist()
    [5.0, 9.0]
    """

    def __init__(
        self, frame_len: int, n_channels: int, reduce: Callable[[np.ndarray], np.ndarray]
    ) -> None:
        if frame_len < 1:
            raise ValueError(f"frame_len must be at least 1, got {frame_len}")
        self.frame_len = int(frame_len)
        self.n_channels = int(n_channels)
        self.reduce = reduce
        self.reset()

    def reset(self) -> None:
        """Drop the unfinished frame."""
        self._rest = np.empty((0, self.n_channels))

    def process(self, x: np.ndarray) -> np.ndarray:
        """Return the reduction of every frame completed by ``x``."""
        F = self.frame_len
        r = self._rest.shape[0]
        out = []
        start = 0
        if r:
            need = F - r
            if x.shape[0] < need:
                self._rest = np.concatenate([self._rest, x])
                return np.empty((0, self.n_channels))
            first = np.concatenate([self._rest, x[:need]])
            out.append(self.reduce(first.reshape(1, F, self.n_channels)))
            start = need
        n_full = (x.shape[0] - start) // F
        if n_full:
            body = np.ascontiguousarray(x[start : start + n_full * F])
            out.append(self.reduce(body.reshape(n_full, F, self.n_channels)))
        self._rest = x[start + n_full * F :].copy()
        if not out:
            return np.empty((0, self.n_channels))
        return out[0] if len(out) == 1 else np.concatenate(out)


class MovingAverage:
    """Causal moving average over the last ``length`` rows, with a carried tail.

    Every output is the sum of exactly the same inputs in the same order
    whatever the chunking (a carried ``zi`` in :func:`scipy.signal.lfilter`
    does not give that guarantee bit for bit). The tail starts as zeros.

    Parameters
    ----------
    length : int
        Number of rows averaged.
    n_channels : int
        Number of channels.

    Examples
    --------
    >>> m = MovingAverage(2, 1)
    >>> m.process(np.array([[2.0], [4.0], [6.0]])).ravel().tolist()
    [1.0, 3.0, 5.0]
    """

    def __init__(self, length: int, n_channels: int) -> None:
        self.length = max(1, int(length))
        self.n_channels = int(n_channels)
        self.reset()

    def reset(self) -> None:
        """Zero the carried tail."""
        self._tail = np.zeros((self.length - 1, self.n_channels))

    def process(self, x: np.ndarray) -> np.ndarray:
        """Moving average of each row of ``x`` over the last ``length`` rows."""
        if x.shape[0] == 0:
            return np.empty((0, self.n_channels))
        if self.length == 1:
            return x.copy()
        buf = np.concatenate([self._tail, x])
        n = x.shape[0]
        if n <= _FEW_ROWS:
            # a live chunk: gather the windows and take a running sum along the
            # lags, the same additions in the same order as the loop below
            total = np.add.accumulate(buf[_windows(n, self.length)], axis=1)[:, -1]
        else:
            # one vector add per lag, always in the same order: numpy's reductions
            # pick their summation order from the array's shape, which would make
            # the result depend on the chunking
            total = buf[0:n].copy()
            for lag in range(1, self.length):
                total += buf[lag : lag + n]
        self._tail = buf[-(self.length - 1) :].copy()
        return total / self.length


class RunningMax:
    """Causal maximum over the last ``length`` rows, with a carried tail.

    Examples
    --------
    >>> m = RunningMax(2, 1)
    >>> m.process(np.array([[3.0], [1.0], [0.0]])).ravel().tolist()
    [3.0, 3.0, 1.0]
    """

    def __init__(self, length: int, n_channels: int) -> None:
        self.length = max(1, int(length))
        self.n_channels = int(n_channels)
        self.reset()

    def reset(self) -> None:
        """Forget the tail (it starts at minus infinity)."""
        self._tail = np.full((self.length - 1, self.n_channels), -np.inf)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Running maximum of each row of ``x`` over the last ``length`` rows."""
        if x.shape[0] == 0 or self.length == 1:
            return x.copy()
        buf = np.concatenate([self._tail, x])
        n = x.shape[0]
        if n <= _FEW_ROWS:  # a live chunk: one reduction over the gathered windows
            out = buf[_windows(n, self.length)].max(axis=1)
        else:
            out = buf[0:n].copy()
            for lag in range(1, self.length):
                np.maximum(out, buf[lag : lag + n], out=out)
        self._tail = buf[-(self.length - 1) :].copy()
        return out


class History:
    """Ring buffer of the most recent rows of a stream, addressed by absolute index.

    Parameters
    ----------
    capacity : int
        Rows kept.
    n_channels : int
        Columns.
    """

    def __init__(self, capacity: int, n_channels: int) -> None:
        self.capacity = max(1, int(capacity))
        self.n_channels = int(n_channels)
        self.reset()

    def reset(self) -> None:
        """Forget everything."""
        # allocated at the first write, and never cleared: only rows written
        # since are ever read (a pipeline holds ~17 MB of histories, and
        # clearing them cost more than detecting a minute of 8 channels)
        self._buf: np.ndarray | None = None
        self.end = 0  # absolute index one past the newest row

    @property
    def start(self) -> int:
        """Absolute index of the oldest row still kept."""
        return max(0, self.end - self.capacity)

    def write(self, rows: np.ndarray) -> None:
        """Append rows (the oldest ones are overwritten)."""
        n = rows.shape[0]
        if n == 0:
            return
        if self._buf is None:
            self._buf = np.empty((self.capacity, self.n_channels))
        if n >= self.capacity:
            rows = rows[-self.capacity :]
            self.end += n - self.capacity
            n = self.capacity
        i = self.end % self.capacity
        first = min(n, self.capacity - i)
        self._buf[i : i + first] = rows[:first]
        if first < n:
            self._buf[: n - first] = rows[first:]
        self.end += n

    def read(self, start: int, stop: int, channel: int | None = None) -> np.ndarray:
        """Rows ``[start, stop)`` clipped to what is still kept."""
        start = max(start, self.start)
        stop = min(stop, self.end)
        if stop <= start:
            shape = (0,) if channel is not None else (0, self.n_channels)
            return np.empty(shape)
        assert self._buf is not None  # rows were written
        i, j = start % self.capacity, (stop - 1) % self.capacity + 1
        cols = slice(None) if channel is None else channel
        if i < j:  # no wrap: a plain slice
            return self._buf[i:j, cols].copy()
        return np.concatenate([self._buf[i:, cols], self._buf[:j, cols]])
