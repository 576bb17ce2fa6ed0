"""Bridging of missing samples (NaN) before any filter sees them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Gap", "NanBridge"]


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
