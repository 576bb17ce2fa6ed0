"""Labelling of finished episodes: twitch or prolonged spasm, tonic or clonic.

* ``label``: an episode whose sustained activity lasts at least ``spasm_min_s``
  (2.0 s by default) is a ``spasm``, anything shorter a ``twitch``. No
  published spasm-specific cut-off exists; 2 s sits between the brief phasic
  bursts of sleep scoring (0.1-5 s) and the tonic criterion (half of a 30-s
  epoch), and it is a setting. The live ``sustained`` alert uses the same rule,
  so an episode that raised the alert always ends labelled ``spasm``.
* ``pattern``: a spasm whose short-time envelope is modulated at a clonus
  rhythm (``clonic_band_hz``, 3-8 Hz by default) with a depth of at least
  ``clonic_min_depth`` is ``clonic``; other spasms are ``tonic``; twitches are
  ``phasic``.
* Features: duration, peak and mean envelope (µV when the signal is
  calibrated, else multiples of the noise floor), burst count and burst rate
  from the short-time envelope, median frequency of the episode's spectrum
  (over its last ``spectrum_s`` seconds).
"""

from __future__ import annotations

import math

import numpy as np

from .detection import Detection
from .events import Episode
from .framing import History
from .settings import PipelineSettings

__all__ = ["Classifier", "burst_features", "median_frequency", "welch_power"]

_FINE_WINDOW_S = 0.02  # short-time envelope used to see individual bursts


def median_frequency(x: np.ndarray, fs: float, max_segments: int = 24) -> float:
    """Median frequency (Hz) of the power spectrum of ``x``; NaN if too short.

    The spectrum is a Welch estimate over at most ``max_segments`` segments of
    256 samples spread evenly over ``x``.

    Examples
    --------
    >>> t = np.arange(2000) / 1000.0
    >>> round(median_frequency(np.sin(2 * np.pi * 80 * t), 1000.0))
    80
    """
    n = x.shape[0]
    if n < 32:
        return math.nan
    freqs, power = welch_power(x, fs, min(256, n), max_segments)
    total = np.cumsum(power)
    if total[-1] <= 0:
        return math.nan
    # each bin's power spread evenly over its width: interpolate inside the bin
    half = 0.5 * total[-1]
    k = int(np.searchsorted(total, half))
    below = total[k - 1] if k else 0.0
    width = freqs[1] - freqs[0]
    frac = (half - below) / power[k] if power[k] > 0 else 0.5
    return float(freqs[k] - 0.5 * width + frac * width)


def welch_power(
    x: np.ndarray, fs: float, nperseg: int, max_segments: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectrum of a 1-D signal: Hann segments, half overlap, each de-meaned.

    The same estimate as ``scipy.signal.welch(x, fs, nperseg=nperseg)`` (one-sided
    density), computed with one batched FFT instead of a per-segment loop. With
    ``max_segments``, at most that many segments, evenly spread over ``x``, are
    averaged (a bounded cost for long episodes).

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal(3000)
    >>> f, p = welch_power(x, 1000.0, 256)
    >>> from scipy import signal
    >>> f2, p2 = signal.welch(x, fs=1000.0, nperseg=256)
    >>> bool(np.allclose(p, p2)) and bool(np.allclose(f, f2))
    True
    """
    step = nperseg - nperseg // 2
    n_seg = 1 + (x.shape[0] - nperseg) // step
    starts = np.arange(n_seg) * step
    if max_segments is not None and n_seg > max_segments:
        starts = starts[np.linspace(0, n_seg - 1, max_segments).round().astype(np.int64)]
    segs = x[starts[:, None] + np.arange(nperseg)]
    window = np.hanning(nperseg + 1)[:-1]  # periodic Hann, as scipy's default "hann"
    spec = np.fft.rfft((segs - segs.mean(axis=1, keepdims=True)) * window, axis=1)
    power = (spec.real**2 + spec.imag**2).mean(axis=0) / (fs * float(window @ window))
    if nperseg % 2:
        power[1:] *= 2.0
    else:
        power[1:-1] *= 2.0
    return np.fft.rfftfreq(nperseg, 1.0 / fs), power


def burst_features(
    power: np.ndarray, frame_rate: float, band_hz: tuple[float, float]
) -> tuple[int, float, float]:
    """Burst count, dominant burst rate and modulation depth of an episode.

    Parameters
    ----------
    power : ndarray, shape (n_frames,)
        Mean square of each frame of the episode.
    frame_rate : float
        Frames per second.
    band_hz : tuple of float
        Range in which a burst rhythm is looked for.

    Returns
    -------
    burst_count : int
        Rising crossings of the short-time envelope through its mid level.
    rate_hz : float
        Frequency of the strongest envelope modulation in ``band_hz`` (NaN if
        the episode is shorter than two cycles of the band's lowest rate).
    depth : float
        Amplitude of that modulation relative to the mean envelope.
    """
    n_avg = max(1, round(_FINE_WINDOW_S * frame_rate))
    if power.shape[0] < n_avg + 2:
        return 1, math.nan, 0.0
    fine = np.sqrt(np.convolve(power, np.full(n_avg, 1.0 / n_avg), mode="valid"))
    ranked = np.sort(fine)  # 10th and 90th percentiles (linear interpolation)
    lo, hi = np.interp([0.1, 0.9], np.linspace(0.0, 1.0, ranked.shape[0]), ranked)
    mid = 0.5 * (lo + hi)
    band = 0.15 * (hi - lo)
    # rising crossings of mid with hysteresis: above mid+band after being below mid-band
    state = np.where(fine > mid + band, 1, np.where(fine < mid - band, -1, 0))
    decided = state[state != 0]
    count = int(np.count_nonzero(np.diff(decided) > 0)) + int(decided.size > 0 and decided[0] > 0)
    count = max(count, 1)
    if fine.shape[0] < 2.0 * frame_rate / band_hz[0]:
        return count, math.nan, 0.0
    detrended = fine - fine.mean()
    spectrum = np.abs(np.fft.rfft(detrended * np.hanning(detrended.shape[0])))
    freqs = np.fft.rfftfreq(detrended.shape[0], 1.0 / frame_rate)
    inside = (freqs >= band_hz[0]) & (freqs <= min(band_hz[1], 0.45 * frame_rate))
    if not inside.any() or fine.mean() <= 0:
        return count, math.nan, 0.0
    k = np.flatnonzero(inside)[np.argmax(spectrum[inside])]
    # Hann window: coherent gain 0.5, so amplitude = 2 * |X| / (0.5 * N)
    depth = float(4.0 * spectrum[k] / detrended.shape[0] / fine.mean())
    return count, float(freqs[k]), depth


class Classifier:
    """Turn the detector's ``end`` decisions into labelled :class:`Episode` values.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    frame_len : int
        Samples per frame.
    settings : PipelineSettings
        Spasm boundary and clonus rules.
    calibrated : bool
        Whether envelope values are µV.
    channels : sequence of str
        Channel names.
    """

    def __init__(
        self,
        fs: float,
        frame_len: int,
        settings: PipelineSettings,
        calibrated: bool,
        channels: tuple[str, ...],
    ) -> None:
        self.fs = float(fs)
        self.frame_len = int(frame_len)
        self.frame_s = self.frame_len / self.fs
        self.settings = settings
        self.calibrated = bool(calibrated)
        self.channels = tuple(channels)
        fr = 1.0 / self.frame_s
        self._spasm_frames = max(1, math.ceil(settings.spasm_min_s * fr - 1e-9))

    def reset(self) -> None:
        """The classifier carries no state."""

    def classify(
        self,
        det: Detection,
        envelope: History,
        frame_power: History,
        samples: History,
    ) -> Episode:
        """Label one finished episode from the recent history of the stream."""
        c = det.channel
        on, off = det.onset_frame, max(det.offset_frame, det.onset_frame + 1)
        env = envelope.read(on, off, channel=c)
        power = frame_power.read(on, off, channel=c)
        floor = det.floor if math.isfinite(det.floor) and det.floor > 0 else math.nan
        scale = 1.0 if self.calibrated else (1.0 / floor if math.isfinite(floor) else math.nan)
        peak = float(env.max()) * scale if env.size else math.nan
        mean = float(env.mean()) * scale if env.size else math.nan
        n_frames = off - on
        label = "spasm" if n_frames >= self._spasm_frames else "twitch"
        s = self.settings
        count, rate, depth = burst_features(power, 1.0 / self.frame_s, s.clonic_band_hz)
        if label == "twitch":
            pattern = "phasic"
        elif math.isfinite(rate) and depth >= s.clonic_min_depth and count >= 3:
            pattern = "clonic"
        else:
            pattern = "tonic"
        stop = off * self.frame_len
        start = max(on * self.frame_len, stop - round(s.spectrum_s * self.fs))
        mdf = median_frequency(samples.read(start, stop, channel=c), self.fs)
        onset_s = on * self.frame_s
        offset_s = off * self.frame_s
        return Episode(
            channel=self.channels[c],
            onset_s=onset_s,
            offset_s=offset_s,
            duration_s=offset_s - onset_s,
            label=label,
            pattern=pattern,
            peak=peak,
            mean=mean,
            unit="uV" if self.calibrated else "x_floor",
            burst_count=int(count),
            burst_rate_hz=rate if pattern == "clonic" else (rate if label == "spasm" else math.nan),
            median_freq_hz=mdf,
            floor=floor,
            truncated=det.truncated,
        )
