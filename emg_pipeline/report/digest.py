"""Bounded-memory digests of long streams, for plots.

A plot of an hour of 1 kHz EMG cannot hold every sample, and does not need
to: a screen shows a few thousand columns. :class:`MinMaxDigest` keeps, per
channel, the minimum and maximum of consecutive bins of samples, doubling
the bin width whenever the bins outnumber twice the target, so memory stays
bounded whatever the stream length and the drawing (a band between min and
max) looks like the full-resolution trace. :class:`StretchRecorder` runs
alongside a :class:`~emg_pipeline.pipeline.Pipeline` and keeps what
``emg-pipeline plot`` and the report draw: the raw signal and the envelope of
a stretch, the on/off thresholds as they evolved, and the episodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from emg_pipeline.errors import ConfigError
from emg_pipeline.events import Episode

if TYPE_CHECKING:
    from emg_pipeline.pipeline import ChunkResult

__all__ = ["MinMaxDigest", "StretchRecorder"]


class MinMaxDigest:
    """Min/max of consecutive bins of a stream, in bounded memory.

    Parameters
    ----------
    n_channels : int
        Columns of the stream.
    target_bins : int
        The digest keeps between ``target_bins`` and ``2 * target_bins`` bins
        once the stream is long enough (fewer, of one sample, before).

    Examples
    --------
    >>> d = MinMaxDigest(1, target_bins=4)
    >>> for part in np.array_split(np.arange(20.0)[:, None], 7):
    ...     d.process(part)
    >>> d.bin_len, d.mins[:, 0].tolist(), d.maxs[:, 0].tolist()
    (4, [0.0, 4.0, 8.0, 12.0, 16.0], [3.0, 7.0, 11.0, 15.0, 19.0])
    """

    def __init__(self, n_channels: int, target_bins: int = 4000) -> None:
        if isinstance(target_bins, bool) or not isinstance(target_bins, int) or target_bins < 1:
            raise ConfigError("target_bins", target_bins, "a positive integer")
        self.n_channels = int(n_channels)
        self.target_bins = target_bins
        self.reset()

    def reset(self) -> None:
        """Forget everything seen."""
        self.bin_len = 1
        self.n_samples = 0
        self._mins: list[np.ndarray] = []
        self._maxs: list[np.ndarray] = []
        self._n_bins = 0
        self._part_min = np.full(self.n_channels, np.inf)
        self._part_max = np.full(self.n_channels, -np.inf)
        self._part_n = 0

    @property
    def mins(self) -> np.ndarray:
        """Minimum of each complete bin, shape ``(n_bins, n_channels)``."""
        self._compact()
        return self._mins[0] if self._mins else np.empty((0, self.n_channels))

    @property
    def maxs(self) -> np.ndarray:
        """Maximum of each complete bin, shape ``(n_bins, n_channels)``."""
        self._compact()
        return self._maxs[0] if self._maxs else np.empty((0, self.n_channels))

    def bins(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(first_sample, mins, maxs)`` of every bin, the partial last one included."""
        mins, maxs = self.mins, self.maxs
        if self._part_n:
            mins = np.vstack([mins, self._part_min])
            maxs = np.vstack([maxs, self._part_max])
        return np.arange(mins.shape[0]) * self.bin_len, mins, maxs

    def _compact(self) -> None:
        if len(self._mins) > 1:
            self._mins = [np.concatenate(self._mins)]
            self._maxs = [np.concatenate(self._maxs)]

    def process(self, x: np.ndarray) -> None:
        """Add samples ``x`` of shape ``(n, n_channels)``; NaNs are ignored."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.n_channels)
        self.n_samples += x.shape[0]
        w = self.bin_len
        if self._part_n:
            take = min(w - self._part_n, x.shape[0])
            head = x[:take]
            with np.errstate(invalid="ignore"):
                self._part_min = np.fmin(self._part_min, np.nanmin(head, axis=0, initial=np.inf))
                self._part_max = np.fmax(self._part_max, np.nanmax(head, axis=0, initial=-np.inf))
            self._part_n += take
            x = x[take:]
            if self._part_n == w:
                self._push(self._part_min[None], self._part_max[None])
                self._clear_partial()
        n_full = (x.shape[0] // w) * w
        if n_full:
            blocks = x[:n_full].reshape(-1, w, self.n_channels)
            self._push(np.nanmin(blocks, axis=1, initial=np.inf),
                       np.nanmax(blocks, axis=1, initial=-np.inf))
        rest = x[n_full:]
        if rest.shape[0]:
            self._part_min = np.nanmin(rest, axis=0, initial=np.inf)
            self._part_max = np.nanmax(rest, axis=0, initial=-np.inf)
            self._part_n = rest.shape[0]
        self._shrink()

    def _clear_partial(self) -> None:
        self._part_min = np.full(self.n_channels, np.inf)
        self._part_max = np.full(self.n_channels, -np.inf)
        self._part_n = 0

    def _push(self, mins: np.ndarray, maxs: np.ndarray) -> None:
        self._mins.append(mins)
        self._maxs.append(maxs)
        self._n_bins += mins.shape[0]

    def _shrink(self) -> None:
        while self._n_bins > 2 * self.target_bins:
            self._compact()
            mins, maxs = self._mins[0], self._maxs[0]
            n_pairs = mins.shape[0] // 2
            new_min = np.fmin(mins[0:2 * n_pairs:2], mins[1:2 * n_pairs:2])
            new_max = np.fmax(maxs[0:2 * n_pairs:2], maxs[1:2 * n_pairs:2])
            if mins.shape[0] % 2:
                # the odd last bin becomes the first half of the wider partial bin
                self._part_min = np.fmin(self._part_min, mins[-1])
                self._part_max = np.fmax(self._part_max, maxs[-1])
            part_n = self._part_n + (self.bin_len if mins.shape[0] % 2 else 0)
            self.bin_len *= 2
            self._mins, self._maxs = [new_min], [new_max]
            self._n_bins = n_pairs
            self._part_n = part_n
            if part_n == self.bin_len:
                self._push(self._part_min[None], self._part_max[None])
                self._clear_partial()


@dataclass(frozen=True)
class _Thresholds:
    times_s: np.ndarray
    on: np.ndarray
    off: np.ndarray
    floor: np.ndarray


class StretchRecorder:
    """Keep what a plot of ``[start_s, end_s)`` of a stream needs, in bounded memory.

    A :class:`~emg_pipeline.run.Sink`: feed it every
    :class:`~emg_pipeline.pipeline.ChunkResult` of the stream (:meth:`update`),
    then read :attr:`raw`, :attr:`envelope`,
    :meth:`thresholds` and :meth:`episodes`.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    n_channels : int
        Number of channels.
    start_s, end_s : float
        The stretch (``end_s`` may be ``inf``: to the end of the stream).
    target_bins : int
        Resolution kept for the raw signal and the envelope.
    """

    def __init__(
        self, fs: float, n_channels: int, start_s: float = 0.0, end_s: float = math.inf,
        target_bins: int = 4000,
    ) -> None:
        if not (math.isfinite(start_s) and start_s >= 0):
            raise ConfigError("start_s", start_s, "a non-negative number of seconds")
        if not end_s > start_s:
            raise ConfigError("end_s", end_s, f"a time after start_s={start_s:g}")
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.start_s = float(start_s)
        self.end_s = float(end_s)
        self.raw = MinMaxDigest(n_channels, target_bins)
        self.envelope = MinMaxDigest(n_channels, target_bins)
        self.frame_s = math.nan
        self._first_sample = math.ceil(self.start_s * self.fs - 1e-9)
        self._first_frame: int | None = None
        self._n_samples = 0
        self._times: list[float] = []
        self._on: list[np.ndarray] = []
        self._off: list[np.ndarray] = []
        self._floor: list[np.ndarray] = []
        self._open: dict[str, float] = {}
        self._episodes: list[Episode] = []

    @property
    def done(self) -> bool:
        """The stretch is past and no episode begun in it is still open."""
        return self._n_samples / self.fs >= self.end_s and not self._open

    def open(self, info: object) -> None:
        """Nothing to prepare (a :class:`~emg_pipeline.run.Sink`)."""

    def close(self, summary: object) -> None:
        """Nothing to release (a :class:`~emg_pipeline.run.Sink`)."""

    def update(self, result: ChunkResult) -> None:
        """Take one chunk's result: its samples, envelope, thresholds and events."""
        samples = np.asarray(result.samples, dtype=np.float64).reshape(-1, self.n_channels)
        a = self._n_samples
        b = a + samples.shape[0]
        self._n_samples = b
        lo = max(a, self._first_sample)
        hi = min(b, math.ceil(self.end_s * self.fs - 1e-9)) if math.isfinite(self.end_s) else b
        if hi > lo:
            self.raw.process(samples[lo - a : hi - a])
        env = result.envelope
        frame_s = float(result.frame_s)
        self.frame_s = frame_s
        if env.shape[0]:
            f0 = int(result.first_frame)
            first = math.ceil(self.start_s / frame_s - 1e-9)
            last = math.ceil(self.end_s / frame_s - 1e-9) if math.isfinite(self.end_s) \
                else f0 + env.shape[0]
            lo_f, hi_f = max(f0, first), min(f0 + env.shape[0], last)
            if hi_f > lo_f:
                if self._first_frame is None:
                    self._first_frame = lo_f
                self.envelope.process(env[lo_f - f0 : hi_f - f0])
            t = (f0 + env.shape[0]) * frame_s
            if self.start_s <= t and (t - frame_s * env.shape[0]) < self.end_s:
                self._times.append(t)
                self._on.append(np.asarray(result.on_threshold, dtype=np.float64))
                self._off.append(np.asarray(result.off_threshold, dtype=np.float64))
                self._floor.append(np.asarray(result.floor, dtype=np.float64))
                if len(self._times) > 2 * self.raw.target_bins:
                    # thin to every other point: the thresholds move slowly
                    for values in (self._times, self._on, self._off, self._floor):
                        values[:] = values[::2]
        for event in result.events:
            if event.kind == "onset" and event.onset_s < self.end_s:
                self._open[event.channel] = event.onset_s
            elif event.kind == "end":
                self._open.pop(event.channel, None)
                ep = event.episode
                if ep is not None and ep.offset_s > self.start_s and ep.onset_s < self.end_s:
                    self._episodes.append(ep)

    @property
    def seen_s(self) -> float:
        """Duration of the stream fed so far, in seconds."""
        return self._n_samples / self.fs

    @property
    def first_time_s(self) -> float:
        """Time of the first raw sample kept."""
        return self._first_sample / self.fs

    @property
    def envelope_first_time_s(self) -> float:
        """Start time of the first envelope frame kept."""
        if self._first_frame is None:
            return self.start_s
        return self._first_frame * self.frame_s

    def thresholds(self) -> _Thresholds:
        """On/off thresholds and noise floor, sampled at chunk ends within the stretch."""
        n = len(self._times)
        shape = (n, self.n_channels)
        return _Thresholds(
            np.asarray(self._times, dtype=np.float64),
            np.asarray(self._on, dtype=np.float64).reshape(shape),
            np.asarray(self._off, dtype=np.float64).reshape(shape),
            np.asarray(self._floor, dtype=np.float64).reshape(shape),
        )

    def episodes(self) -> list[Episode]:
        """Episodes that overlap the stretch, in onset order."""
        return sorted(self._episodes, key=lambda e: (e.onset_s, e.channel))
