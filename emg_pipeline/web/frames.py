"""Screen frames: min/max decimation of a stream into columns, and their binary encoding.

The dashboard draws a stream as **columns** of ``col_s`` seconds (about 10 ms,
a whole number of envelope frames) on the stream's own clock: column ``c``
covers ``[c, c + 1) * col_s``. Each column holds, per channel, five values
(:data:`SERIES`): the lowest and highest sample of the displayed signal in the
column, the highest envelope frame, and the detector's on and off thresholds.
Min/max keeps every spike and every gap visible whatever the zoom; a column
without samples (lost packets) is NaN.

A **frame** is what one WebSocket message carries::

    b"EMG1" | uint32 LE header length H | H bytes of JSON header (space-padded
    to a multiple of 4) | float32 LE columns, one series after the other

so that the page reads each series as a ``Float32Array`` view without copying.
The header says where the columns start (``col0``) and how many there are
(``n``), plus the live status and the events since the previous frame.

Examples
--------
>>> dec = MinMaxColumns(n_channels=1, col_len=4)
>>> lo, hi = dec.process(np.array([[1.0], [5.0], [-2.0], [0.0], [3.0], [4.0]]))
>>> lo.ravel().tolist(), hi.ravel().tolist()
([-2.0], [5.0])
>>> lo, hi = dec.process(np.array([[9.0], [np.nan]]))
>>> lo.ravel().tolist(), hi.ravel().tolist()
([3.0], [9.0])
>>> blob = encode_frame({"type": "frame", "col0": 7, "n": 2}, np.zeros((3, 2)))
>>> header, columns = decode_frame(blob)
>>> header["col0"], columns.shape, columns.dtype.str
(7, (3, 2), '<f4')
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping

import numpy as np

__all__ = [
    "COLUMN_S",
    "MAGIC",
    "SERIES",
    "ColumnRing",
    "MinMaxColumns",
    "column_frames",
    "decode_frame",
    "dumps",
    "encode_frame",
    "finite_or_none",
    "json_ready",
]

#: wanted duration of one screen column (a whole number of envelope frames is used)
COLUMN_S = 0.01
#: the values of one channel in a column, in order
SERIES = ("signal_min", "signal_max", "envelope", "on_threshold", "off_threshold")
#: first bytes of every binary frame
MAGIC = b"EMG1"
_LENGTH = struct.Struct("<I")
_F32 = np.dtype("<f4")


def column_frames(frame_s: float, column_s: float = COLUMN_S) -> int:
    """Envelope frames per screen column (at least one).

    Examples
    --------
    >>> column_frames(0.005), column_frames(0.003), column_frames(0.05)
    (2, 3, 1)
    """
    if not (math.isfinite(frame_s) and frame_s > 0):
        raise ValueError(f"frame_s must be a positive number of seconds, got {frame_s!r}")
    return max(1, round(column_s / frame_s))


class MinMaxColumns:
    """Streaming min/max of consecutive blocks of ``col_len`` rows, per channel.

    The state (the unfinished column) is carried across calls, so any chunking
    of the same rows gives the same columns. NaN rows are ignored; a column of
    NaN only is NaN. Vectorised: one reshape and two reductions per call.

    Parameters
    ----------
    n_channels : int
        Number of channels (columns of the input).
    col_len : int
        Rows per output column.
    want_min : bool
        Also compute the minima (else :meth:`process` returns them as None).
    """

    def __init__(self, n_channels: int, col_len: int, *, want_min: bool = True) -> None:
        if n_channels < 1 or col_len < 1:
            raise ValueError(f"need n_channels >= 1 and col_len >= 1, got {n_channels}, "
                             f"{col_len}")
        self.n_channels = int(n_channels)
        self.col_len = int(col_len)
        self.want_min = bool(want_min)
        self.reset()

    def reset(self) -> None:
        """Forget the unfinished column."""
        self._lo = np.full(self.n_channels, np.nan)
        self._hi = np.full(self.n_channels, np.nan)
        self._held = 0

    def process(self, x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Minima and maxima ``(n_columns, n_channels)`` of the columns completed by ``x``."""
        x = np.asarray(x, dtype=np.float64)
        n, L = x.shape[0], self.col_len
        los: list[np.ndarray] = []
        his: list[np.ndarray] = []
        pos = 0
        if self._held and n:
            take = min(n, L - self._held)
            head = x[:take]
            self._hi = np.fmax(self._hi, np.fmax.reduce(head, axis=0))
            if self.want_min:
                self._lo = np.fmin(self._lo, np.fmin.reduce(head, axis=0))
            self._held += take
            pos = take
            if self._held == L:
                his.append(self._hi[None, :])
                los.append(self._lo[None, :])
                self.reset()
        whole = (n - pos) // L
        if whole:
            blocks = x[pos : pos + whole * L].reshape(whole, L, self.n_channels)
            his.append(np.fmax.reduce(blocks, axis=1))
            if self.want_min:
                los.append(np.fmin.reduce(blocks, axis=1))
            pos += whole * L
        if pos < n:
            tail = x[pos:]
            self._hi = np.fmax.reduce(tail, axis=0)
            if self.want_min:
                self._lo = np.fmin.reduce(tail, axis=0)
            self._held = n - pos
        hi = np.concatenate(his) if his else np.empty((0, self.n_channels))
        if not self.want_min:
            return None, hi
        lo = np.concatenate(los) if los else np.empty((0, self.n_channels))
        return lo, hi


class ColumnRing:
    """The last ``capacity`` columns of ``n_series`` float32 series (a ring, no reallocation).

    Parameters
    ----------
    n_series : int
        Values per column.
    capacity : int
        Columns kept.

    Examples
    --------
    >>> ring = ColumnRing(2, capacity=3)
    >>> ring.extend(0, np.arange(8.0).reshape(2, 4))
    >>> first, cols = ring.view()
    >>> first, cols.tolist()
    (1, [[1.0, 2.0, 3.0], [5.0, 6.0, 7.0]])
    """

    def __init__(self, n_series: int, capacity: int) -> None:
        self.n_series = int(n_series)
        self.capacity = max(1, int(capacity))
        self._data = np.full((self.n_series, self.capacity), np.nan, dtype=_F32)
        self._end = 0     # column index after the last column held
        self._count = 0

    def extend(self, col0: int, columns: np.ndarray) -> None:
        """Add columns ``col0 .. col0 + n`` (``columns`` is ``(n_series, n)``).

        A jump forward (columns never received) clears what is held, so the
        ring never joins two stretches that are not contiguous.
        """
        n = columns.shape[1]
        if n == 0:
            return
        if col0 != self._end:
            self._count = 0
        if n >= self.capacity:
            columns = columns[:, n - self.capacity :]
            col0 += n - self.capacity
            n = self.capacity
        start = col0 % self.capacity
        first = min(n, self.capacity - start)
        self._data[:, start : start + first] = columns[:, :first]
        if first < n:
            self._data[:, : n - first] = columns[:, first:]
        self._end = col0 + n
        self._count = min(self.capacity, self._count + n)

    def view(self) -> tuple[int, np.ndarray]:
        """``(first column index, columns (n_series, n))``: a copy, oldest first."""
        n = self._count
        first = self._end - n
        if n == 0:
            return first, np.empty((self.n_series, 0), dtype=_F32)
        start = first % self.capacity
        if start + n <= self.capacity:
            return first, self._data[:, start : start + n].copy()
        return first, np.concatenate(
            [self._data[:, start:], self._data[:, : start + n - self.capacity]], axis=1)

    @property
    def end(self) -> int:
        """Index of the column after the last one held."""
        return self._end


def finite_or_none(value: float, digits: int = 6) -> float | None:
    """A float for JSON: rounded to ``digits`` significant digits, None when not finite.

    Examples
    --------
    >>> finite_or_none(1.23456789), finite_or_none(float("nan")), finite_or_none(float("inf"))
    (1.23457, None, None)
    """
    v = float(value)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def json_ready(value: object) -> object:
    """``value`` with every non-finite float (at any depth) replaced by None.

    Examples
    --------
    >>> json_ready({"a": [1.0, float("nan")], "b": (float("inf"), "x")})
    {'a': [1.0, None], 'b': [None, 'x']}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def dumps(value: object) -> str:
    """Compact JSON; a NaN or infinity anywhere becomes null (never invalid JSON)."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(json_ready(value), separators=(",", ":"), allow_nan=False)


def encode_frame(header: Mapping[str, object], columns: np.ndarray) -> bytes:
    """One binary frame: the JSON header and the ``(n_series, n)`` columns as float32.

    A non-finite float in the header is sent as null (see :func:`dumps`).
    """
    head = dumps(header).encode("utf-8")
    head += b" " * (-len(head) % 4)   # the float32 data starts 4-byte aligned
    data = np.ascontiguousarray(columns, dtype=_F32)
    return b"".join((MAGIC, _LENGTH.pack(len(head)), head, data.tobytes()))


def decode_frame(blob: bytes) -> tuple[dict[str, object], np.ndarray]:
    """Split a frame into its header and its ``(n_series, n)`` float32 columns.

    Raises
    ------
    ValueError
        If ``blob`` is not a frame (wrong magic, truncated, sizes that disagree).
    """
    if len(blob) < 8 or blob[:4] != MAGIC:
        raise ValueError("not a dashboard frame (no EMG1 magic)")
    (length,) = _LENGTH.unpack_from(blob, 4)
    if 8 + length > len(blob):
        raise ValueError(f"truncated frame: header of {length} bytes, {len(blob)} in all")
    header = json.loads(blob[8 : 8 + length].decode("utf-8"))
    data = np.frombuffer(blob, dtype=_F32, offset=8 + length)
    n = int(header.get("n", 0))
    if n == 0:
        series = int(header.get("series", 0))
        return header, data.reshape(series, 0)
    if data.size % n:
        raise ValueError(f"frame of {data.size} values does not hold whole columns of {n}")
    return header, data.reshape(data.size // n, n)
