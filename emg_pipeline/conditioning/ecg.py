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

A chunk costs three compiled calls shared with other stages (frame sums,
the low-band filter, the ring of amplitudes) and, on channels switched on, the
high-pass; a chunk is cut only where a block ends. The judgement, once per
block, is numpy and ``scipy.signal.find_peaks`` on the amplitude pooled to at
most 100 values per second (the maximum of each group of frames, which keeps
every beat's peak). A channel with a non-finite amplitude in the window (a NaN
or an infinity in its raw signal; it stays so in the low-band filter's state
until a reset) shows no heartbeat.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

from ..framing import Framer, History, frame_sum
from .filters import SosFilter, butter_sos, sosfilt_state

__all__ = ["EcgSuppressor"]

_BEAT_INTERVAL_S = (0.375, 1.5)
_MISSES_OFF = 3  # blocks without a heartbeat before a channel is switched off


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
        self._low_sos = butter_sos(2, (5.0, top), "bandpass", self.frame_rate)
        self.filtering = self.band_hz[0] < self.highpass_hz < self.band_hz[1]
        self._hp_sos = (
            butter_sos(4, self.highpass_hz, "highpass", self.fs)
            if self.filtering else None
        )
        # judged at no more than 100 values per second: the maximum of each group
        # of frames keeps every beat's peak, and the search costs less
        self._pool = max(1, int(self.frame_rate // 100))
        rate = self.frame_rate / self._pool
        self._lo, self._hi = (round(s * rate) for s in _BEAT_INTERVAL_S)
        # peaks closer than a beat can be (clonus bursts come every 0.13-0.3 s)
        # are kept, so that a fast rhythm shows as one and is not thinned out
        # into something that looks like a heartbeat
        self._distance = max(1, round(0.1 * rate))
        C = self.n_channels
        # the carried state: the unfinished frame, the low band's filter, the
        # amplitude of the last window, the high-pass's state per channel, the
        # position on the block clock and the switches
        self._framer = Framer(self.frame_len, C, frame_sum)
        self._low = SosFilter(self._low_sos, C)
        self._amp = History(self._window_frames, C)
        n_hp = 0 if self._hp_sos is None else self._hp_sos.shape[0]
        self._hp_state = np.zeros((C, n_hp, 2))
        self.reset()

    def reset(self) -> None:
        """Forget the detections, the filter states and the kept amplitude."""
        self._framer.reset()
        self._low.reset()
        self._amp.reset()
        self._hp_state[:] = 0.0
        self._samples = 0  # samples since the reset
        self._block_end = self._block_samples  # sample count at which the next judgement is due
        self._misses = np.zeros(self.n_channels, dtype=np.int64)  # blocks without a heartbeat
        self._on = np.zeros(self.n_channels, dtype=bool)  # channels treated as carrying ECG

    @property
    def ecg(self) -> np.ndarray:
        """Which channels carry ECG now (bool, one per channel; a copy)."""
        return self._on.copy()

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
        out = band
        flags = []
        start, n = 0, raw.shape[0]
        while start < n or not flags:
            # up to the end of the chunk or of the block, whichever comes first
            stop = min(n, start + self._block_end - self._samples)
            on = np.flatnonzero(self._on) if self.filtering else ()
            if len(on):
                if out is band:
                    out = np.array(band, dtype=np.float64)
                out[start:stop, on], self._hp_state[on] = sosfilt_state(
                    self._hp_sos, out[start:stop, on], self._hp_state[on])
            means = self._framer.process(raw[start:stop]) / self.frame_len
            if means.shape[0]:
                self._amp.write(np.abs(self._low.process(means)))
            flags.append(np.broadcast_to(self._on, means.shape))
            self._samples += stop - start
            start = stop
            if self._samples == self._block_end:
                found = self._judge()
                self._misses = np.where(found, 0, self._misses + 1)
                self._on = found | (self._on & (self._misses < _MISSES_OFF))
                self._block_end += self._block_samples
        return out, flags[0].copy() if len(flags) == 1 else np.concatenate(flags)

    def _judge(self) -> np.ndarray:
        """Which channels show heartbeats in the last ``window_s`` (bool, one per channel)."""
        amp = self._amp.read(self._amp.end - self._window_frames, self._amp.end)
        usable = amp.shape[0] - amp.shape[0] % self._pool
        amp = amp[amp.shape[0] - usable :]
        found = np.zeros(self.n_channels, dtype=bool)
        if not usable:
            return found
        # the maximum of each group of frames keeps every beat's peak
        pooled = amp.reshape(-1, self._pool, self.n_channels).max(axis=1)
        for c in np.flatnonzero(np.isfinite(amp).all(axis=0)):
            found[c] = self._shows_heartbeats(pooled[:, c])
        return found

    def _shows_heartbeats(self, amp: np.ndarray) -> bool:
        """Whether ``amp`` is a train of regular beats standing far above its median."""
        centre = np.median(amp)
        mad = np.median(np.abs(amp - centre))
        beats, props = find_peaks(amp, height=centre + self.peak_mad * max(mad, 1e-12),
                                  distance=self._distance)
        if len(beats) < max(4, int(0.8 * amp.shape[0] / self._hi)):
            return False
        intervals = np.diff(beats)
        heights = props["peak_heights"]
        typical, tall = np.median(intervals), np.median(heights)
        # robust spreads: a pop or a knock among the beats must not hide them
        return bool(self._lo <= typical <= self._hi
                    and _robust_sd(intervals) <= self.max_cv * typical
                    and _robust_sd(heights) <= self.max_cv * tall)


def _robust_sd(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation."""
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))
