"""Cutting a sample stream into fixed frames aligned on the sample clock.

The envelope and the detector run at a frame rate (``frame_s``, 5 ms by
default) rather than at the sample rate: every later stage then costs a
fraction of the band-pass. Frames are aligned on absolute sample indices, and
an unfinished frame is carried to the next chunk as samples (not as a partial
sum), so every frame is reduced from the same contiguous samples whatever the
chunking and the results are bit-for-bit identical.

The reductions are compiled kernels (:mod:`emg_pipeline._jit`) that add the
samples of a frame, and the rows of a window, one at a time in a fixed order
(oldest first): numpy's reductions choose their summation order from the
array's shape, which would make a value depend on the chunking in the last
bit. These kernels are the building blocks the frame-rate stages (envelope,
artefact gate) call from their own kernels, so that one ``process`` is one
compiled call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._jit import jit

__all__ = [
    "Framer",
    "History",
    "MovingAverage",
    "RunningMax",
    "frame_sum",
    "frame_sum_squares",
]


# ----------------------------------------------------------------- kernels
SUM, SQUARES, ABS = 0, 1, 2  # what the frame kernels add up: x, x * x or |x|
# the dtype of native float64 arrays: arrays made by numpy hold this very
# object, so an identity test is the cheap first check that a chunk needs no
# conversion (an equal dtype, e.g. of an unpickled array, is compared next)
FLOAT64 = np.dtype(np.float64)


@jit
def _sum_frames(
    src: np.ndarray, start: int, length: int, count: int, mode: int,
    out: np.ndarray, k0: int, scale: float,
) -> None:
    """``out[k0 + m] = (t(src[i]) + t(src[i + 1]) + ... + t(src[i + length - 1])) / scale``.

    For the ``count`` frames ``m`` of ``length`` rows from row ``start`` on
    (``i = start + m * length``). The rows are added left to right, one at a
    time; ``t`` is ``x``, ``x * x`` or ``|x|`` per ``mode`` (:data:`SUM`,
    :data:`SQUARES`, :data:`ABS`), written ``v * v`` or ``v * 1.0`` (exact).
    """
    n_ch = src.shape[1]
    square = mode == SQUARES
    rectify = mode == ABS
    for m in range(count):
        a = start + m * length
        k = k0 + m
        for c in range(n_ch):
            v = src[a, c]
            v = abs(v) if rectify else v
            out[k, c] = v * (v if square else 1.0)
        for j in range(a + 1, a + length):
            for c in range(n_ch):
                v = src[j, c]
                v = abs(v) if rectify else v
                out[k, c] += v * (v if square else 1.0)
        for c in range(n_ch):
            out[k, c] = out[k, c] / scale


@jit
def _moving_sum(
    buf: np.ndarray, length: int, out: np.ndarray, scale: float, root: bool
) -> None:
    """``out[m] = (buf[m] + buf[m + 1] + ... + buf[m + length - 1]) / scale``, left to right.

    With ``root``, ``sqrt(max(out[m], 0))`` instead (a moving RMS of squares).

    ``buf`` (``length - 1 + len(out)`` rows) and ``out`` are C-contiguous with
    the same columns. Each row of ``out`` is added left to right, one row at
    a time, as in :func:`_sum_frames`; the additions run one lag at a time
    over a block of outputs (contiguous in memory, so they vectorise), and
    the blocks stay in the first-level cache.
    """
    n_ch = buf.shape[1]
    src = buf.reshape(-1)
    dst = out.reshape(-1)
    total = out.shape[0] * n_ch
    block = 1024
    q0 = 0
    while q0 < total:
        q1 = min(q0 + block, total)
        acc = dst[q0:q1]
        first = src[q0:q1]
        for q in range(q1 - q0):
            acc[q] = first[q]
        for j in range(1, length):
            lag = src[q0 + j * n_ch : q1 + j * n_ch]
            for q in range(q1 - q0):
                acc[q] += lag[q]
        if root:
            for q in range(q1 - q0):
                v = acc[q] / scale
                acc[q] = np.sqrt(v if not v < 0.0 else 0.0)
        else:
            for q in range(q1 - q0):
                acc[q] = acc[q] / scale
        q0 = q1


@jit
def _frames_into(
    x: np.ndarray, rest: np.ndarray, n_rest: int, out: np.ndarray, mode: int, scale: float
) -> int:
    """Sum the frames completed by ``x``, with the unfinished frame carried in ``rest``.

    ``rest[:n_rest]`` holds the samples of the unfinished frame (``rest`` has
    ``frame_len`` rows). Every completed frame is summed sample by sample from
    its first sample (of ``x``, ``x * x`` or ``|x|`` per ``mode``) and divided
    by ``scale`` (``1.0``: the plain sum) into the next row of ``out``, which
    must have ``(n_rest + len(x)) // frame_len`` rows. The new unfinished frame
    is left in ``rest``; its length is returned.
    """
    n, n_ch = x.shape
    length = rest.shape[0]
    k = 0
    i = 0
    if n_rest:
        need = min(length - n_rest, n)
        for j in range(need):
            for c in range(n_ch):
                rest[n_rest + j, c] = x[j, c]
        if n_rest + need < length:
            return n_rest + need
        _sum_frames(rest, 0, length, 1, mode, out, 0, scale)
        k = 1
        i = need
    count = (n - i) // length
    _sum_frames(x, i, length, count, mode, out, k, scale)
    i += count * length
    for j in range(n - i):
        for c in range(n_ch):
            rest[j, c] = x[i + j, c]
    return n - i


@jit
def _slide(tail: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``tail`` followed by ``x`` in a new array; ``tail`` becomes the last rows of it."""
    keep = tail.shape[0]
    n, n_ch = x.shape
    buf = np.empty((keep + n, n_ch))
    for i in range(keep):
        for c in range(n_ch):
            buf[i, c] = tail[i, c]
    for i in range(n):
        for c in range(n_ch):
            buf[keep + i, c] = x[i, c]
    for i in range(keep):
        for c in range(n_ch):
            tail[i, c] = buf[n + i, c]
    return buf


@jit
def _moving_sum_into(
    tail: np.ndarray, x: np.ndarray, out: np.ndarray, scale: float, root: bool
) -> None:
    """``out[m]`` = the sum of the ``len(tail) + 1`` rows ending at ``x[m]``, over ``scale``.

    The rows come from ``tail`` (the rows before ``x``, oldest first) and
    ``x``, and are added oldest first (:func:`_moving_sum`, which also takes
    the root); ``tail`` is then moved on.
    """
    _moving_sum(_slide(tail, x), tail.shape[0] + 1, out, scale, root)


@jit
def _running_max_into(x: np.ndarray, hold: np.ndarray, pos: int, out: np.ndarray) -> int:
    """``out[m]`` = the maximum of the ``length`` rows ending at ``x[m]``; returns the new ``pos``.

    The result of ``np.maximum`` applied oldest first: ``np.maximum(a, b)``
    keeps ``a`` when ``a >= b`` or ``a`` is NaN, so a NaN in the window gives
    NaN and of equal values the oldest is kept. That operation is
    associative, so it is computed per block of ``length`` rows aligned on
    the row clock (van Herk/Gil-Werman): a window is the end of the previous
    block and the start of the current one; ``hold`` ``(2 * length + 1,
    n_channels)`` holds the current block's ``pos`` rows so far, the maxima
    of every end of the previous block, and the maximum of the current block
    so far. Three comparisons per value, whatever the window, and no buffer.
    """
    n, n_ch = x.shape
    length = hold.shape[0] // 2
    block = hold[:length]
    ends = hold[length : 2 * length]
    start = hold[2 * length]
    for m in range(n):
        for c in range(n_ch):
            v = x[m, c]
            block[pos, c] = v
            if pos:
                a = start[c]
                v = a if (a >= v) | (a != a) else v
            start[c] = v
            if pos + 1 < length:
                a = ends[pos + 1, c]
                v = a if (a >= v) | (a != a) else v
            out[m, c] = v
        pos += 1
        if pos == length:  # the block is complete: the maxima of its ends
            for c in range(n_ch):
                ends[length - 1, c] = block[length - 1, c]
            for i in range(length - 2, -1, -1):
                for c in range(n_ch):
                    a = block[i, c]
                    b = ends[i + 1, c]
                    ends[i, c] = a if (a >= b) | (a != a) else b
            pos = 0
    return pos


@jit
def _moving_average_kernel(x: np.ndarray, tail: np.ndarray, out: np.ndarray, root: bool) -> None:
    """Moving average of the rows of ``x`` over ``len(tail) + 1`` rows (``tail`` updated).

    With ``root``, ``sqrt(max(average, 0))``.
    """
    _moving_sum_into(tail, x, out, float(tail.shape[0] + 1), root)


# ------------------------------------------------------------ reductions
def frame_sum(frames: np.ndarray) -> np.ndarray:
    """Sum over axis 1 of ``(n_frames, frame_len, n_channels)``.

    The positions of a frame are added one at a time, always in the same order
    (first to last): numpy's reductions (and einsum) choose their summation
    order from the array's shape, which would make frame values depend on the
    chunking in the last bit.

    Examples
    --------
    >>> frame_sum(np.arange(12.0).reshape(2, 3, 2)).tolist()
    [[6.0, 9.0], [24.0, 27.0]]
    """
    return _reduce(frames, SUM)


def frame_sum_squares(frames: np.ndarray) -> np.ndarray:
    """Sum of squares over axis 1 of ``(n_frames, frame_len, n_channels)``, in the same order."""
    return _reduce(frames, SQUARES)


def _reduce(frames: np.ndarray, mode: int) -> np.ndarray:
    if frames.dtype != np.float64 or frames.shape[1] == 0:
        # other types keep numpy's arithmetic (the same order of additions)
        values = frames * frames if mode == SQUARES else frames
        total = values[:, 0, :].copy()
        for j in range(1, values.shape[1]):
            total += values[:, j, :]
        return total
    n, length, n_ch = frames.shape
    out = np.empty((n, n_ch))
    rows = np.ascontiguousarray(frames).reshape(n * length, n_ch)
    _sum_frames(rows, 0, length, n, mode, out, 0, 1.0)
    return out


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
        :func:`frame_sum` and :func:`frame_sum_squares` run in one compiled
        call that reads the samples in place (in float64).

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
        self._mode = SQUARES if reduce is frame_sum_squares else SUM if reduce is frame_sum else -1
        self.reset()

    def reset(self) -> None:
        """Drop the unfinished frame."""
        self._rest = np.empty((self.frame_len, self.n_channels))
        self._n_rest = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        """Return the reduction of every frame completed by ``x``."""
        F = self.frame_len
        r = self._n_rest
        n_frames = (r + x.shape[0]) // F
        if self._mode >= 0:
            if x.dtype is not FLOAT64 and x.dtype != FLOAT64:
                x = x.astype(np.float64)
            out = np.empty((n_frames, self.n_channels))
            self._n_rest = _frames_into(x, self._rest, r, out, self._mode, 1.0)
            return out
        out = []
        start = 0
        if r:
            need = F - r
            if x.shape[0] < need:
                self._rest[r : r + x.shape[0]] = x
                self._n_rest = r + x.shape[0]
                return np.empty((0, self.n_channels))
            first = np.concatenate([self._rest[:r], x[:need]])
            out.append(self.reduce(first.reshape(1, F, self.n_channels)))
            start = need
        n_full = (x.shape[0] - start) // F
        if n_full:
            body = np.ascontiguousarray(x[start : start + n_full * F])
            out.append(self.reduce(body.reshape(n_full, F, self.n_channels)))
        tail = x[start + n_full * F :]
        self._rest[: tail.shape[0]] = tail
        self._n_rest = tail.shape[0]
        if not out:
            return np.empty((0, self.n_channels))
        return out[0] if len(out) == 1 else np.concatenate(out)


class MovingAverage:
    """Causal moving average over the last ``length`` rows, with a carried tail.

    Every output is the sum of exactly the same inputs in the same order
    (oldest first) whatever the chunking (a carried ``zi`` in
    :func:`scipy.signal.lfilter` does not give that guarantee bit for bit).
    The tail starts as zeros.

    Parameters
    ----------
    length : int
        Number of rows averaged.
    n_channels : int
        Number of channels.
    root : bool
        Return ``sqrt(max(average, 0))``: fed squares, a moving RMS.

    Examples
    --------
    >>> m = MovingAverage(2, 1)
    >>> m.process(np.array([[2.0], [4.0], [6.0]])).ravel().tolist()
    [1.0, 3.0, 5.0]
    >>> MovingAverage(2, 1, root=True).process(np.array([[8.0], [10.0]])).ravel().tolist()
    [2.0, 3.0]
    """

    def __init__(self, length: int, n_channels: int, root: bool = False) -> None:
        self.length = max(1, int(length))
        self.n_channels = int(n_channels)
        self.root = bool(root)
        self.reset()

    def reset(self) -> None:
        """Zero the carried tail."""
        self._tail = np.zeros((self.length - 1, self.n_channels))

    def process(self, x: np.ndarray) -> np.ndarray:
        """Moving average of each row of ``x`` over the last ``length`` rows."""
        out = np.empty((x.shape[0], self.n_channels))
        _moving_average_kernel(np.asarray(x, dtype=np.float64), self._tail, out, self.root)
        return out


class RunningMax:
    """Causal maximum over the last ``length`` rows, with a carried tail.

    A NaN in the window gives NaN (as ``np.maximum`` does).

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
        # see _running_max_into: the rows before the stream are minus infinity
        self._hold = np.full((2 * self.length + 1, self.n_channels), -np.inf)
        self._pos = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        """Running maximum of each row of ``x`` over the last ``length`` rows."""
        out = np.empty((x.shape[0], self.n_channels))
        self._pos = _running_max_into(np.asarray(x, dtype=np.float64), self._hold, self._pos, out)
        return out


@jit
def _ring_write(buf: np.ndarray, end: int, rows: np.ndarray) -> None:
    """Write ``rows`` to the ring ``buf`` from absolute row ``end`` on (only the last fit)."""
    capacity, n_ch = buf.shape
    n = rows.shape[0]
    first = n - capacity if n > capacity else 0
    i = (end + first) % capacity
    for k in range(first, n):
        for c in range(n_ch):
            buf[i, c] = rows[k, c]
        i += 1
        if i == capacity:
            i = 0


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
        self._none = np.empty((0, self.n_channels))  # no rows
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
        at = self.end % self.capacity
        if n <= self.capacity - at:   # the usual live chunk: no wrap, one slice copy
            self._buf[at : at + n] = rows
        else:
            _ring_write(self._buf, self.end, rows)
        self.end += n

    def segments(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``[start, stop)``, clipped to what is still kept, as views of the buffer.

        Parameters
        ----------
        start, stop : int
            Absolute row indices.

        Returns
        -------
        first, second : ndarray, shape (n_rows, n_channels)
            The rows in order, ``first`` then ``second``; ``second`` is empty
            unless the rows wrap around the end of the ring buffer. Both are
            C-contiguous views, not copies: a later :meth:`write` overwrites
            them. ``np.concatenate((first, second))`` equals
            ``read(start, stop)``.

        Examples
        --------
        >>> h = History(4, 1)
        >>> h.write(np.arange(6.0)[:, None])
        >>> [part.ravel().tolist() for part in h.segments(1, 6)]
        [[2.0, 3.0], [4.0, 5.0]]
        >>> [part.ravel().tolist() for part in h.segments(2, 4)]
        [[2.0, 3.0], []]
        """
        end = self.end
        start = max(start, end - self.capacity, 0)
        stop = min(stop, end)
        buf = self._buf
        if stop <= start or buf is None:
            return self._none, self._none
        i = start % self.capacity
        j = i + stop - start
        if j <= self.capacity:  # no wrap: a plain slice
            return buf[i:j], self._none
        return buf[i:], buf[: j - self.capacity]

    def read(self, start: int, stop: int, channel: int | None = None) -> np.ndarray:
        """Rows ``[start, stop)`` clipped to what is still kept (a copy)."""
        first, second = self.segments(start, stop)
        cols = slice(None) if channel is None else channel
        if not second.shape[0]:
            return first[:, cols].copy()
        return np.concatenate([first[:, cols], second[:, cols]])
