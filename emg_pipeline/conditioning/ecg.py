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
the low-band filter, the ring of amplitudes) and, while any channel is switched
on, the high-pass (run over every channel, kept on those switched on: a channel
switched on starts from the filter's running state); a chunk is cut only where
a block ends. The judgement, once per
block, is a few numpy calls over every channel at once (:meth:`EcgSuppressor._judge`
says what a beat is). A channel with a non-finite amplitude in the window (a
NaN or an infinity in its raw signal; it stays so in the low-band filter's
state until a reset) shows no heartbeat.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d

from ..framing import History
from .filters import FrameFilter, butter_sos, sosfilt_state

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
        # the carried state: the low band of the frame means (with the
        # unfinished frame), the amplitude of the last window, the high-pass's
        # state, the position on the block clock and the switches
        self._low = FrameFilter(self._low_sos, self.frame_len, C)
        self._amp = History(self._window_frames, C)
        n_hp = 0 if self._hp_sos is None else self._hp_sos.shape[0]
        self._hp_state = np.zeros((C, n_hp, 2))
        self.reset()

    def reset(self) -> None:
        """Forget the detections, the filter states and the kept amplitude."""
        self._low.reset()
        self._amp.reset()
        self._hp_state[:] = 0.0
        self._samples = 0  # samples since the reset
        self._block_end = self._block_samples  # sample count at which the next judgement is due
        self._misses = np.zeros(self.n_channels, dtype=np.int64)  # blocks without a heartbeat
        self._on = np.zeros(self.n_channels, dtype=bool)  # channels treated as carrying ECG
        self._any_on = False

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
            if self.filtering and self._any_on:
                # the high-pass runs on every channel (one contiguous pass costs
                # less than a selection of columns) and is kept on those switched on
                if out is band:
                    out = np.array(band, dtype=np.float64)
                high, self._hp_state = sosfilt_state(self._hp_sos, out[start:stop],
                                                     self._hp_state)
                out[start:stop] = np.where(self._on, high, out[start:stop])
            low = self._low.process(raw[start:stop])
            self._amp.write(np.abs(low, out=low))
            segment_flags = np.empty(low.shape, dtype=bool)
            segment_flags[:] = self._on
            flags.append(segment_flags)
            self._samples += stop - start
            start = stop
            if self._samples == self._block_end:
                found = self._judge()
                self._misses = np.where(found, 0, self._misses + 1)
                self._on = found | (self._on & (self._misses < _MISSES_OFF))
                self._any_on = bool(self._on.any())
                self._block_end += self._block_samples
        return out, flags[0] if len(flags) == 1 else np.concatenate(flags)

    def _judge(self) -> np.ndarray:
        """Which channels show heartbeats in the last ``window_s`` (bool, one per channel).

        The amplitude is pooled to at most 100 values per second (the maximum
        of each group of frames keeps every beat's peak). A beat is a value
        that reaches the height (``peak_mad`` robust deviations above the
        median), rises from the value before it, and is the largest within
        0.1 s on either side; the first and last values are not beats. A
        channel shows heartbeats when it has enough beats, at an interval of a
        heart rate, regular in interval and height. A channel with a value
        that is not finite shows none.
        """
        amp = self._amp.read(self._amp.end - self._window_frames, self._amp.end)
        usable = amp.shape[0] - amp.shape[0] % self._pool
        found = np.zeros(self.n_channels, dtype=bool)
        if usable < 3:
            return found
        amp = amp[amp.shape[0] - usable :]
        pooled = amp[0 :: self._pool].copy()
        for k in range(1, self._pool):
            np.maximum(pooled, amp[k :: self._pool], out=pooled)
        pooled = np.ascontiguousarray(pooled.T)  # one row per channel
        centre = _median(pooled)
        mad = _median(np.abs(pooled - centre[:, None]))
        height = centre + self.peak_mad * np.maximum(mad, 1e-12)
        near = maximum_filter1d(pooled, 2 * self._distance - 1, axis=1, mode="nearest")
        beat = (pooled >= height[:, None]) & (pooled == near)
        beat[:, 1:] &= pooled[:, 1:] > pooled[:, :-1]
        beat[:, [0, -1]] = False
        min_beats = max(4, int(0.8 * pooled.shape[1] / self._hi))
        judged = (np.count_nonzero(beat, axis=1) >= min_beats) & np.isfinite(pooled).all(axis=1)
        for c in np.flatnonzero(judged):
            at = np.flatnonzero(beat[c])
            found[c] = self._regular(np.diff(at), pooled[c, at])
        return found

    def _regular(self, intervals: np.ndarray, heights: np.ndarray) -> bool:
        """Whether beats at these intervals and heights are a heartbeat.

        The typical interval is that of 40-160 beats per minute, and the
        robust spreads of intervals and heights (a pop or a knock among the
        beats must not hide them) stay within ``max_cv`` of their medians.
        """
        typical, tall = _median(intervals), _median(heights)
        return bool(self._lo <= typical <= self._hi
                    and _robust_sd(intervals) <= self.max_cv * typical
                    and _robust_sd(heights) <= self.max_cv * tall)


def _median(values: np.ndarray) -> np.ndarray:
    """``np.median(values, axis=-1)`` of finite values, by a sort (a fraction of the cost
    on the few hundred values judged here)."""
    ranked = np.sort(values, axis=-1)
    n = ranked.shape[-1]
    return 0.5 * (ranked[..., (n - 1) // 2] + ranked[..., n // 2])


def _robust_sd(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation."""
    return 1.4826 * float(_median(np.abs(values - _median(values))))
