"""Keeping heartbeats out of the EMG band on channels that carry ECG.

On trunk muscles (back, abdomen) and near the chest the electrodes also pick up
the heart: R waves of a hundred µV to a few mV, far larger than a weak
contraction. The QRS complex has much of its energy between 10 and 40 Hz, so a
20 Hz band-pass leaves a spike train in the band that looks like activity
(after a 20-450 Hz band-pass a 400 µV R wave leaks about 45 µV into a 100 ms
RMS envelope). A fourth-order high-pass at 30 Hz was the best single filter of
the 23 methods Drake and Callaghan compared (J Electromyogr Kinesiol 16:175,
2006); a steeper cut costs little EMG: on the usual sEMG spectral model a 60 Hz
corner keeps about 76 % of its power and leaves about 3 % of the ECG leak.

:class:`EcgSuppressor` finds the channels that carry ECG and applies that extra
high-pass to them only:

* the raw signal is cut into frames, band-passed to 5-25 Hz (where the QRS
  lives and EMG has little power) and its amplitude kept for the last
  ``window_s``;
* every ``block_s`` on the stream's sample clock, each channel is judged: ECG
  shows as a train of peaks standing far above the median (``peak_mad``
  robust deviations) at a regular interval of 0.375-1.5 s (40-160 beats per
  minute; clonus at 3-8 Hz is faster), with coefficients of variation of the
  intervals and of the peak heights below ``max_cv``;
* a channel is switched on at the first such block and off after three blocks
  without a heartbeat; a switch takes effect at the block boundary, so the
  output does not depend on how the stream is chunked.

The frames that carried a switched-on channel are reported, so that the
artefact gate can judge their low-band energy against the heartbeat's own
level instead of treating every beat as an artefact.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from ..framing import Framer, History, frame_sum
from .filters import sosfilt_state

__all__ = ["EcgSuppressor"]

_BEAT_INTERVAL_S = (0.375, 1.5)
_MISSES_OFF = 3  # blocks without a heartbeat before a channel is switched off


def _median_rows(rows: np.ndarray) -> np.ndarray:
    """Median of each row (a partition, several times cheaper than ``np.median``)."""
    n = rows.shape[1]
    k = n // 2
    if n % 2:
        return np.partition(rows, k, axis=1)[:, k]
    part = np.partition(rows, (k - 1, k), axis=1)
    return 0.5 * (part[:, k - 1] + part[:, k])


def _median(values: np.ndarray) -> float:
    """Median of a short 1-D array (``np.median`` costs tens of µs even on ten values)."""
    v = np.sort(values)
    n = v.shape[0]
    return 0.5 * float(v[(n - 1) // 2] + v[n // 2])


def _robust_sd(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation."""
    return 1.4826 * _median(np.abs(values - _median(values)))


class EcgSuppressor:
    """Detect ECG per channel and high-pass the channels that carry it.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    n_channels : int
        Number of channels.
    frame_len : int
        Samples per frame (the envelope's framing).
    band_hz : tuple of float
        Band of the band-passed signal this stage receives.
    highpass_hz : float
        Corner of the extra fourth-order Butterworth high-pass on ECG channels.
        No extra filter when it is not inside ``band_hz`` (low-rate boards).
    block_s : float
        How often channels are judged.
    window_s : float
        Length of signal each judgement looks at.
    peak_mad : float
        A beat stands this many robust deviations above the median amplitude.
    max_cv : float
        Largest coefficient of variation of the beat intervals and heights.

    Examples
    --------
    >>> from emg_pipeline.sources.synthetic import simulate
    >>> rec = simulate(np.random.default_rng(0), fs=1000.0, duration_s=30.0, n_channels=2,
    ...                events=False, ecg_uv=[0.0, 300.0])
    >>> ecg = EcgSuppressor(1000.0, 2, 5, (20.0, 450.0))
    >>> _, flags = ecg.process(rec.signal, rec.signal)
    >>> ecg.ecg.tolist()
    [False, True]
    """

    def __init__(
        self,
        fs: float,
        n_channels: int,
        frame_len: int,
        band_hz: tuple[float, float],
        highpass_hz: float = 60.0,
        block_s: float = 5.0,
        window_s: float = 10.0,
        peak_mad: float = 8.0,
        max_cv: float = 0.25,
    ) -> None:
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.frame_len = int(frame_len)
        self.band_hz = (float(band_hz[0]), float(band_hz[1]))
        self.highpass_hz = float(highpass_hz)
        self.block_s = float(block_s)
        self.window_s = float(window_s)
        self.peak_mad = float(peak_mad)
        self.max_cv = float(max_cv)
        self.frame_rate = self.fs / self.frame_len
        self._block_frames = max(1, round(self.block_s * self.frame_rate))
        self._block_samples = self._block_frames * self.frame_len
        self._window_frames = max(self._block_frames, round(self.window_s * self.frame_rate))
        top = min(25.0, 0.4 * self.frame_rate)
        self._low_sos = signal.butter(2, [5.0, top], btype="bandpass", fs=self.frame_rate,
                                      output="sos")
        self.filtering = self.band_hz[0] < self.highpass_hz < self.band_hz[1]
        self._hp_sos = (
            signal.butter(4, self.highpass_hz, btype="highpass", fs=self.fs, output="sos")
            if self.filtering else None
        )
        self._framer = Framer(self.frame_len, self.n_channels, frame_sum)
        self._amplitude = History(self._window_frames, self.n_channels)
        self.reset()

    def reset(self) -> None:
        """Forget the detections, the filter states and the kept amplitude."""
        self._framer.reset()
        self._amplitude.reset()
        self._zi_low: np.ndarray | None = None
        n_sections = 0 if self._hp_sos is None else self._hp_sos.shape[0]
        self._zi_hp = np.zeros((self.n_channels, n_sections, 2))  # the kernel's layout
        self.ecg = np.zeros(self.n_channels, dtype=bool)
        self._misses = np.zeros(self.n_channels, dtype=np.int64)
        self._samples = 0
        self._next = self._block_samples

    def process(self, raw: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filter one chunk; return it and the ECG flags of the frames it completed.

        Parameters
        ----------
        raw : ndarray, shape (n_samples, n_channels)
            Raw samples (gaps bridged), where heartbeats are looked for.
        band : ndarray, shape (n_samples, n_channels)
            The same samples band-passed: the signal that is filtered.

        Returns
        -------
        band : ndarray, shape (n_samples, n_channels)
            ``band`` with the extra high-pass on the channels carrying ECG
            (``band`` itself when there are none).
        flags : ndarray of bool, shape (n_frames, n_channels)
            Which channels were treated as carrying ECG, per completed frame.
        """
        n = raw.shape[0]
        out = band
        flags: list[np.ndarray] = []
        i = 0
        while i < n:
            j = min(n, i + self._next - self._samples)
            if self.filtering and self.ecg.any():
                if out is band:
                    out = band.copy()
                cols = np.flatnonzero(self.ecg)
                y, zf = sosfilt_state(self._hp_sos, band[i:j, cols], self._zi_hp[cols])
                out[i:j, cols] = y
                self._zi_hp[cols] = zf
            means = self._framer.process(raw[i:j]) / self.frame_len
            if means.shape[0]:
                if self._zi_low is None:
                    zi = signal.sosfilt_zi(self._low_sos)[:, :, None] * means[0][None, None, :]
                    self._zi_low = np.ascontiguousarray(np.moveaxis(zi, -1, 0))
                low, self._zi_low = sosfilt_state(self._low_sos, means, self._zi_low)
                self._amplitude.write(np.abs(low))
                flags.append(np.broadcast_to(self.ecg, means.shape).copy())
            self._samples += j - i
            i = j
            if self._samples == self._next:
                self._judge()
                self._next += self._block_samples
        if not flags:
            return out, np.zeros((0, self.n_channels), dtype=bool)
        return out, flags[0] if len(flags) == 1 else np.concatenate(flags)

    def _judge(self) -> None:
        """Decide, per channel, whether the last ``window_s`` carried heartbeats."""
        end = self._amplitude.end
        amp = self._amplitude.read(end - self._window_frames, end)
        # judged at no more than 100 values per second: the maximum of each group
        # of frames keeps every beat's peak, and the search costs less
        pool = max(1, int(self.frame_rate // 100))
        usable = amp.shape[0] - amp.shape[0] % pool
        rows = amp[amp.shape[0] - usable :].T.reshape(self.n_channels, -1, pool).max(axis=2)
        rate = self.frame_rate / pool
        lo, hi = (round(s * rate) for s in _BEAT_INTERVAL_S)
        min_beats = max(4, int(0.8 * rows.shape[1] / hi))
        found = np.zeros(self.n_channels, dtype=bool)
        median = _median_rows(rows)
        mad = _median_rows(np.abs(rows - median[:, None]))
        for c in range(self.n_channels):  # a handful of channels, once per block
            # peaks closer than a beat can be (clonus bursts come every 0.13-0.3 s)
            # are kept, so that a fast rhythm shows as one and is not thinned
            # out into something that looks like a heartbeat
            peaks, props = signal.find_peaks(
                rows[c], height=median[c] + self.peak_mad * max(mad[c], 1e-12),
                distance=max(1, round(0.1 * rate)),
            )
            if peaks.shape[0] < min_beats:
                continue
            gaps = np.diff(peaks)
            typical = _median(gaps)
            heights = props["peak_heights"]
            height = _median(heights)
            # robust spreads: a pop or a knock among the beats must not hide them
            found[c] = (
                lo <= typical <= hi
                and _robust_sd(gaps) <= self.max_cv * typical
                and _robust_sd(heights) <= self.max_cv * height
            )
        self._misses = np.where(found, 0, self._misses + 1)
        self.ecg = found | (self.ecg & (self._misses < _MISSES_OFF))
