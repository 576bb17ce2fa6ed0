"""Finding the grid frequency: is there a 50 or a 60 Hz line, and which?

Both mains removers (:mod:`.notch`, :mod:`.mains`) start once a line stands
out; until then they pass the signal through. The search looks at consecutive
windows of ``SEARCH_S`` on the stream's sample clock, so it finds the line at
the same sample whatever the chunking.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["MainsSearch", "find_mains"]

SEARCH_S = 1.0   # data per attempt
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
    """Feed samples until a grid frequency is found (:func:`find_mains` per window).

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
        #: samples fed so far, and the count at which a line was found (None: not yet)
        self.n_fed = 0
        self.found_at: int | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the samples of the unfinished window."""
        self._parts: list[np.ndarray] = []
        self._filled = 0

    def feed(self, x: np.ndarray) -> tuple[int, float | None]:
        """Take samples of ``x`` until a window finds a line; return (samples taken, line)."""
        used = 0
        while used < x.shape[0]:
            take = min(x.shape[0] - used, self.window - self._filled)
            self._parts.append(x[used : used + take].copy())
            self._filled += take
            used += take
            if self._filled == self.window:
                window = np.concatenate(self._parts)
                self.reset()
                found = find_mains(window, self.fs, self.band_hz)
                if found is not None:
                    self.n_fed += used
                    self.found_at = self.n_fed
                    return used, found
        self.n_fed += used
        return used, None

    def until_found(self, x: np.ndarray, start: Callable[[float], None],
                    remove: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``x`` unchanged up to the sample where a line is found, then ``remove``d.

        ``start(f0)`` is called at that sample with the grid frequency found.
        """
        used, found = self.feed(x)
        if found is None:
            return x
        start(found)
        if used == x.shape[0]:
            return x
        return np.concatenate([x[:used], remove(x[used:])])
