"""Finding the grid frequency: is there a 50 or a 60 Hz line, and which?

Both mains removers (:mod:`.notch`, :mod:`.mains`) start once a line stands
out; until then they pass the signal through. The choice is watched after
that, and changed when the other grid's line is what keeps standing out. The
search looks at consecutive windows of ``SEARCH_S`` on the stream's sample
clock, so it finds the line at the same sample whatever the chunking.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["MainsSearch", "find_mains"]

SEARCH_S = 1.0   # data per attempt
REVISE_EVERY = 10   # after the start, one window in this many is looked at again
REVISE_WINDOWS = 4   # looked-at windows in a row that find the other grid change it
_LINE_RATIO = 10.0   # power of the line over the median around it


def find_mains(window: np.ndarray, fs: float, band_hz: tuple[float, float]) -> float | None:
    """The grid frequency (50 or 60 Hz) whose line stands out of ``window``'s spectrum, if any.

    A line counts when its power is more than ``_LINE_RATIO`` times the median
    power 2-8 Hz away from it (summed over channels).
    """
    spectrum = np.abs(np.fft.rfft(window - window.mean(axis=0), axis=0)) ** 2
    power = spectrum.sum(axis=1)
    freqs = np.fft.rfftfreq(window.shape[0], 1.0 / fs)
    best, best_ratio = None, _LINE_RATIO
    for f0 in (50.0, 60.0):
        if not band_hz[0] <= f0 <= min(band_hz[1], 0.5 * fs - 1.0):
            continue
        line = power[np.abs(freqs - f0) <= 1.0].max()
        around = power[(np.abs(freqs - f0) > 2.0) & (np.abs(freqs - f0) <= 8.0)]
        ratio = line / max(float(np.median(around)), 1e-30)
        if ratio > best_ratio:
            best, best_ratio = f0, ratio
    return best


class MainsSearch:
    """Route samples to a mains remover: through until a grid is found, then removed.

    The first window (:func:`find_mains`) whose line stands out sets the grid.
    The choice is then watched: one window in ``REVISE_EVERY`` is looked at
    again, and when ``REVISE_WINDOWS`` of them in a row find the other grid's
    line (a weak grid under a noisy start can lose its first window to a
    spurious peak at the other frequency), the remover is started afresh on
    that grid. Windows lie on the stream's sample clock, so every decision
    falls on the same sample whatever the chunking.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    band_hz : tuple of float
        Band of the signal searched.
    """

    def __init__(self, fs: float, band_hz: tuple[float, float]) -> None:
        self.fs = float(fs)
        self.band_hz = band_hz
        self.window = round(SEARCH_S * self.fs)
        #: samples fed so far, and the count at which a grid was set (None: not yet)
        self.n_fed = 0
        self.found_at: int | None = None
        #: the grid chosen (None: none yet)
        self.grid: float | None = None
        self._other_in_a_row = 0   # looked-at windows in a row that found the other grid
        self._new_window()

    def _new_window(self) -> None:
        self._parts: list[np.ndarray] = []
        self._filled = 0
        # after the start, only one window in REVISE_EVERY is kept and looked at
        self._looked_at = self.grid is None or (self.n_fed // self.window) % REVISE_EVERY == 0

    def route(self, x: np.ndarray, start: Callable[[float], None],
              remove: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``x`` unchanged up to the sample where a grid is set, then ``remove``d.

        ``start(f0)`` is called at each sample where a grid is set (or changed).
        """
        n = x.shape[0]
        if self.grid is not None and not self._looked_at and self._filled + n < self.window:
            self._filled += n   # the usual live chunk: inside a window not looked at
            self.n_fed += n
            return remove(x)
        out = []
        done = 0
        while done < x.shape[0]:
            grid = self.grid   # the grid of these samples
            used, changed = self._feed(x[done:])
            part = x[done : done + used]
            out.append(part if grid is None else remove(part))
            if changed:
                start(self.grid)
            done += used
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _feed(self, x: np.ndarray) -> tuple[int, bool]:
        """Take samples until a window sets or changes the grid; return (samples taken, changed)."""
        used = 0
        while used < x.shape[0]:
            take = min(x.shape[0] - used, self.window - self._filled)
            if self._looked_at:
                self._parts.append(x[used : used + take].copy())
            self._filled += take
            used += take
            self.n_fed += take
            if self._filled < self.window:
                continue
            found = (find_mains(np.concatenate(self._parts), self.fs, self.band_hz)
                     if self._looked_at else None)
            if self.grid is not None and self._looked_at:
                other = found is not None and found != self.grid
                self._other_in_a_row = self._other_in_a_row + 1 if other else 0
            if found is not None and (self.grid is None
                                      or self._other_in_a_row >= REVISE_WINDOWS):
                self.grid, self.found_at, self._other_in_a_row = found, self.n_fed, 0
                self._new_window()
                return used, True
            self._new_window()
        return used, False
