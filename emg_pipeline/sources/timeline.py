"""Placing timestamped samples on a sample clock: a jump in time is samples lost.

Shared by the sources whose samples come with times rather than counters:
the LSL inlet (:mod:`emg_pipeline.sources.lsl`), XDF files and text tables
with a time column (:mod:`emg_pipeline.sources.formats`). The lost samples
become a gap that the pipeline bridges and counts, so that later samples keep
their place in time.
"""

from __future__ import annotations

import math

import numpy as np

from emg_pipeline.errors import ConfigError

__all__ = ["WIDEST_GAP_S", "SampleTimeline"]

#: a gap longer than this (and than the samples there are) is a broken clock, not a loss
WIDEST_GAP_S = 3600.0
#: a negative timestamp step larger than this is a clock jump, not jitter
_JITTER_LIMIT_S = 0.1
#: a negative step smaller than this is rounding (exact timestamps), not jitter
_ROUNDING_S = 1e-6


class SampleTimeline:
    """Places timestamped samples on a stream's sample clock; jumps in time are lost samples.

    Consecutive samples one period (``1 / fs``) apart follow each other. A
    step longer than that by more than the tolerance means samples were lost:
    ``round(excess * fs)`` of them, placed as a gap before the sample. A step
    that is short or goes back (jitter of timestamps taken when a chunk was
    pushed, or a clock jump) places the sample right after the previous one:
    the timeline never moves back and never drops a sample.

    The tolerance is half a period, or ``gap_tolerance_s``, or twice the
    largest early arrival seen so far (the timestamps' own jitter, below
    0.1 s), whichever is largest: timestamps stamped by sample count, as the
    pipeline's outlet and most drivers do, give exact gaps; jittery ones do
    not count their jitter as loss.

    Parameters
    ----------
    fs : float
        Nominal sampling rate in Hz.
    gap_tolerance_s : float
        Extra delay a step may have before it counts as a gap.

    Attributes
    ----------
    n_samples : int
        Next free index on the sample clock (samples placed plus lost).
    lost_samples, loss_events : int
        Samples marked lost, and the gaps they form.
    early_steps : int
        Steps shorter than a period by more than rounding (jitter, or the
        clock going back).
    jitter_s : float
        Largest early arrival seen (seconds).
    first_timestamp, last_timestamp : float or None
        Timestamps of the first and the latest sample placed.

    Examples
    --------
    >>> line = SampleTimeline(100.0)
    >>> line.place(np.array([0.0, 0.01, 0.02, 0.05, 0.06])).tolist()
    [0, 0, 0, 2, 0]
    >>> line.n_samples, line.lost_samples, line.loss_events
    (7, 2, 1)
    """

    def __init__(self, fs: float, *, gap_tolerance_s: float = 0.0) -> None:
        if not (isinstance(fs, int | float) and math.isfinite(fs) and fs > 0):
            raise ConfigError("fs", fs, "a positive sampling rate in Hz")
        if not (isinstance(gap_tolerance_s, int | float) and math.isfinite(gap_tolerance_s)
                and gap_tolerance_s >= 0):
            raise ConfigError("gap_tolerance_s", gap_tolerance_s, "zero or more seconds")
        self.fs = float(fs)
        self.gap_tolerance_s = float(gap_tolerance_s)
        self.n_samples = 0
        self.lost_samples = 0
        self.loss_events = 0
        self.early_steps = 0
        self.jitter_s = 0.0
        self.first_timestamp: float | None = None
        self.last_timestamp: float | None = None

    @property
    def tolerance_s(self) -> float:
        """How late a sample may come before the delay counts as lost samples."""
        return max(0.5 / self.fs, self.gap_tolerance_s, 2.0 * self.jitter_s)

    def place(self, timestamps: np.ndarray) -> np.ndarray:
        """Place the next samples; return how many were lost just before each one.

        Parameters
        ----------
        timestamps : ndarray, shape (n,)
            Timestamps of consecutive samples, seconds.

        Returns
        -------
        ndarray of int64, shape (n,)
            Lost samples before each sample (0 almost everywhere).
        """
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        n = ts.shape[0]
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        previous = ts[0] if self.last_timestamp is None else self.last_timestamp
        excess = np.diff(ts, prepend=previous) - 1.0 / self.fs
        if self.last_timestamp is None:
            excess[0] = 0.0
            self.first_timestamp = float(ts[0])
        early = excess < -_ROUNDING_S
        if early.any():
            self.early_steps += int(np.count_nonzero(early))
            jitter = -excess[early & (excess > -_JITTER_LIMIT_S)]
            if jitter.size:
                self.jitter_s = max(self.jitter_s, float(jitter.max()))
        lost = np.where(excess > self.tolerance_s, np.rint(excess * self.fs), 0.0)
        lost = lost.astype(np.int64)
        total = int(lost.sum())
        self.lost_samples += total
        self.loss_events += int(np.count_nonzero(lost))
        self.n_samples += n + total
        self.last_timestamp = float(ts[-1])
        return lost
