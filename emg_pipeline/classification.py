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

import functools
import math

import numpy as np

from ._jit import jit
from .detection import Detection
from .events import Episode
from .framing import History
from .labels import Label, Pattern, boundary_frames
from .settings import PipelineSettings

__all__ = ["Classifier", "burst_features", "median_frequency", "welch_power"]

_FINE_WINDOW_S = 0.02  # short-time envelope used to see individual bursts
_SEGMENT = 256  # samples per Welch segment
_MAX_SEGMENTS = 24  # Welch segments averaged at most (spread over the episode)
_MIN_SPECTRUM = 32  # fewer samples than this: no median frequency


# ---------------------------------------------------------------- kernels
#
# An episode is classified by plain compiled loops around numpy's sort and
# FFTs: ``_episode_kernel`` reads the episode's columns from the histories'
# ring buffers (:meth:`History.segments`, no copy of the ring) and returns the
# peak and mean envelope, the short-time envelope and the windowed Welch
# segments; numpy sorts the short-time envelope (a vectorised sort, faster
# than a compiled one), ``_burst_kernel`` takes its percentiles, counts the
# bursts and tapers it for the burst spectrum (skipped for twitches), and
# ``_median_kernel`` reduces the Welch spectra to a median frequency. Every
# value depends only on the episode's rows, so it does not depend on how the
# stream was chunked. The burst spectrum is zero-padded to a 2-3-5-smooth
# length (``_fast_len``): an FFT of a length with a large prime factor costs
# up to a hundred times more, and one plan then serves many episode lengths.


@jit
def _column(first: np.ndarray, second: np.ndarray, channel: int) -> np.ndarray:
    """Column ``channel`` of the rows of ``first`` followed by those of ``second``."""
    n1 = first.shape[0]
    out = np.empty(n1 + second.shape[0])
    out[:n1] = first[:, channel]
    out[n1:] = second[:, channel]
    return out


@jit
def _short_time(power: np.ndarray, n_avg: int) -> np.ndarray:
    """Short-time envelope: the RMS of every ``n_avg`` consecutive frame powers."""
    n_fine = max(power.shape[0] - n_avg + 1, 0)
    fine = power[:n_fine].copy()
    for j in range(1, n_avg):
        for i in range(n_fine):
            fine[i] += power[i + j]
    for i in range(n_fine):
        fine[i] = math.sqrt(fine[i] / n_avg)
    return fine


@jit
def _quantile(ranked: np.ndarray, q: float) -> float:
    """Quantile ``q`` of sorted values, linear between ranks (``np.interp`` on a 0-1 grid).

    A NaN (sorted last) between the two ranks gives NaN; equal infinities
    stay infinite.
    """
    pos = q * (ranked.shape[0] - 1)
    i = int(pos)
    v = ranked[i]
    if pos > i and ranked[i + 1] != v:
        v += (pos - i) * (ranked[i + 1] - v)
    return v


@jit
def _fast_len(n: int) -> int:
    """Smallest length ``>= n`` whose only prime factors are 2, 3 and 5.

    ``scipy.fft.next_fast_len(n, real=True)``.
    """
    m = max(n, 1)
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


@jit
def _burst_kernel(
    fine: np.ndarray,
    ranked: np.ndarray,
    min_fine: float,
    spectrum: bool,
    df: float,
    band_lo: float,
    band_hi: float,
) -> tuple[int, np.ndarray, float, int, int]:
    """Burst count of the short-time envelope ``fine``, and what the burst spectrum needs.

    ``ranked`` is ``np.sort(fine)``. Returns ``(count, tapered, mean, k0,
    k1)``: when a burst rhythm is looked for (``spectrum`` and at least
    ``min_fine`` values), the burst rate is the strongest bin in ``k0..k1``
    of the spectrum of ``tapered`` (the de-meaned envelope times a Hann
    window, zero-padded to ``_fast_len``); otherwise ``tapered`` is empty.
    """
    none = np.empty(0)
    n_fine = fine.shape[0]
    if n_fine < 3:
        return 1, none, math.nan, 0, -1
    # bursts: rising crossings of the band mid +- 15 % of the 10-90 % range
    lo = _quantile(ranked, 0.1)
    hi = _quantile(ranked, 0.9)
    mid = 0.5 * (lo + hi)
    band = 0.15 * (hi - lo)
    count = 0
    state = 0
    for v in fine:
        s = 1 if v > mid + band else -1 if v < mid - band else state
        if s > state:  # rising (or a first decided state that is high)
            count += 1
        state = s
    count = max(count, 1)
    if n_fine < min_fine or not spectrum:
        return count, none, math.nan, 0, -1
    mean = fine.mean()
    n_fft = _fast_len(n_fine)
    val = 1.0 / (n_fft * df)  # bin width: np.fft.rfftfreq(n_fft, df)[k] == k * val
    k0, k1 = 0, -1
    for k in range(n_fft // 2 + 1):
        if band_lo <= k * val <= band_hi:
            k0 = k if k1 < 0 else k0
            k1 = k
    if k1 < 0 or mean <= 0:
        return count, none, mean, 0, -1
    # de-meaned, times np.hanning(n_fine): 0.5 - 0.5 * cos(i * step), symmetric about
    # the middle; the cosines by rotation, from exact values every 16 points
    # (within ~1e-14 of the library's, at a fraction of the cost)
    tapered = np.empty(n_fine)
    step = 2.0 * math.pi / (n_fine - 1)
    cos_step, sin_step = math.cos(step), math.sin(step)
    c = s = 0.0
    for i in range((n_fine + 1) // 2):
        if i % 16:
            c, s = c * cos_step - s * sin_step, s * cos_step + c * sin_step
        else:
            c, s = math.cos(i * step), math.sin(i * step)
        w = 0.5 - 0.5 * c
        tapered[i] = (fine[i] - mean) * w
        tapered[n_fine - 1 - i] = (fine[n_fine - 1 - i] - mean) * w
    return count, tapered, mean, k0, k1


@jit
def _welch_segments(
    first: np.ndarray, second: np.ndarray, channel: int, starts: np.ndarray, window: np.ndarray
) -> np.ndarray:
    """De-meaned, windowed segments of column ``channel`` of ``first`` followed by ``second``."""
    n1 = first.shape[0]
    nperseg = window.shape[0]
    segs = np.empty((starts.shape[0], nperseg))
    seg = np.empty(nperseg)
    for s in range(starts.shape[0]):
        for j in range(nperseg):
            t = starts[s] + j
            seg[j] = first[t, channel] if t < n1 else second[t - n1, channel]
        mean = seg.mean()
        for j in range(nperseg):
            segs[s, j] = (seg[j] - mean) * window[j]
    return segs


@jit
def _median_kernel(spec: np.ndarray, norm: float, odd: bool, df: float) -> float:
    """Median frequency of the Welch density of the segment spectra ``spec`` (rows).

    ``norm`` is ``fs * sum(window ** 2)``, ``odd`` whether the segment length
    is odd, ``df`` the bin width.
    """
    n_seg, n_bins = spec.shape
    power = np.zeros(n_bins)
    for s in range(n_seg):
        for k in range(n_bins):
            v = spec[s, k]
            power[k] += v.real * v.real + v.imag * v.imag
    power /= n_seg * norm
    power[1 : n_bins if odd else n_bins - 1] *= 2.0  # one-sided density
    total = np.cumsum(power)
    if not total[-1] > 0:
        return math.nan
    half = 0.5 * total[-1]
    k = np.searchsorted(total, half)  # the bin holding the median, interpolated within
    below = total[k - 1] if k else 0.0
    frac = (half - below) / power[k] if power[k] > 0 else 0.5
    return (k - 0.5 + frac) * df


@jit
def _episode_kernel(
    env: tuple[np.ndarray, np.ndarray],
    power: tuple[np.ndarray, np.ndarray],
    samples: tuple[np.ndarray, np.ndarray],
    channel: int,
    n_avg: int,
    starts: np.ndarray,
    window: np.ndarray,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Peak and mean envelope, short-time envelope and Welch segments of one episode.

    Each history is given as the two parts of :meth:`History.segments`.
    """
    values = _column(env[0], env[1], channel)
    peak = values.max() if values.shape[0] else math.nan
    mean = values.mean() if values.shape[0] else math.nan
    fine = _short_time(_column(power[0], power[1], channel), n_avg)
    segs = _welch_segments(samples[0], samples[1], channel, starts, window)
    return peak, mean, fine, segs


# ---------------------------------------------------------------- helpers

_NO_STARTS = np.empty(0, dtype=np.int64)
_NO_STARTS.flags.writeable = False


@functools.lru_cache(maxsize=64)
def _periodic_hann(nperseg: int) -> tuple[np.ndarray, float]:
    """Periodic Hann window of ``nperseg`` samples (scipy's default ``"hann"``) and its energy."""
    window = np.hanning(nperseg + 1)[:-1]
    window.flags.writeable = False  # shared between callers
    return window, float(window @ window)


@functools.lru_cache(maxsize=512)
def _segment_starts(n_seg: int, step: int, max_segments: int | None) -> np.ndarray:
    """First samples of the Welch segments used: all, or ``max_segments`` spread evenly."""
    starts = np.arange(n_seg) * step
    if max_segments is not None and n_seg > max_segments:
        starts = starts[np.linspace(0, n_seg - 1, max_segments).round().astype(np.int64)]
    starts = starts.astype(np.int64)
    starts.flags.writeable = False  # shared between callers
    return starts


def _welch_plan(n: int, nperseg: int, max_segments: int | None) -> np.ndarray:
    """Segment starts of a Welch estimate over ``n`` samples (half-overlapping segments)."""
    step = nperseg - nperseg // 2
    return _segment_starts(1 + (n - nperseg) // step, step, max_segments)


def _spectrum_median(segs: np.ndarray, fs: float, nperseg: int, energy: float) -> float:
    """Median frequency of the Welch density of windowed segments (rows of ``segs``)."""
    return _median_kernel(
        np.fft.rfft(segs), fs * energy, nperseg % 2 == 1, 1.0 / (nperseg * (1.0 / fs))
    )


def _burst_rate(
    tapered: np.ndarray, k0: int, k1: int, mean: float, frame_rate: float
) -> tuple[float, float]:
    """Strongest envelope modulation in bins ``k0..k1`` and its depth (:func:`_burst_kernel`)."""
    n = tapered.shape[0]
    n_fft = _fast_len(n)
    magnitude = np.abs(np.fft.rfft(tapered, n=n_fft)[k0 : k1 + 1])
    j = int(np.argmax(magnitude))
    rate = (k0 + j) * (1.0 / (n_fft * (1.0 / frame_rate)))
    # Hann window: coherent gain 0.5, so amplitude = 2 * |X| / (0.5 * N)
    depth = 4.0 * float(magnitude[j]) / n / mean
    return rate, depth


# ---------------------------------------------------------------- public

def median_frequency(x: np.ndarray, fs: float, max_segments: int = _MAX_SEGMENTS) -> float:
    """Median frequency (Hz) of the power spectrum of ``x``; NaN if too short.

    The spectrum is a Welch estimate over at most ``max_segments`` segments of
    256 samples spread evenly over ``x``.

    Examples
    --------
    >>> t = np.arange(2000) / 1000.0
    >>> round(median_frequency(np.sin(2 * np.pi * 80 * t), 1000.0))
    80
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = x.shape[0]
    if n < _MIN_SPECTRUM:
        return math.nan
    nperseg = min(_SEGMENT, n)
    window, energy = _periodic_hann(nperseg)
    column = x.reshape(-1, 1)
    segs = _welch_segments(column, column[:0], 0, _welch_plan(n, nperseg, max_segments), window)
    return float(_spectrum_median(segs, float(fs), nperseg, energy))


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
    starts = _welch_plan(x.shape[0], nperseg, max_segments)
    segs = x[starts[:, None] + np.arange(nperseg)]
    window, energy = _periodic_hann(nperseg)
    spec = np.fft.rfft((segs - segs.mean(axis=1, keepdims=True)) * window, axis=1)
    power = (spec.real**2 + spec.imag**2).mean(axis=0) / (fs * energy)
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
    fine = _short_time(
        np.ascontiguousarray(power, dtype=np.float64), max(1, round(_FINE_WINDOW_S * frame_rate))
    )
    count, tapered, mean, k0, k1 = _burst_kernel(
        fine,
        np.sort(fine),
        2.0 * frame_rate / band_hz[0],
        True,
        1.0 / frame_rate,
        float(band_hz[0]),
        min(band_hz[1], 0.45 * frame_rate),
    )
    if k1 < k0:
        return count, math.nan, 0.0
    rate, depth = _burst_rate(tapered, k0, k1, mean, frame_rate)
    return count, rate, depth


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
        self._spasm_frames = boundary_frames(settings.spasm_min_s, self.frame_s)
        self._derived_for: PipelineSettings | None = None

    def reset(self) -> None:
        """The classifier carries no state."""

    def _derive(self) -> None:
        """Constants of the burst analysis and the spectrum (from the settings)."""
        s = self.settings
        frame_rate = 1.0 / self.frame_s
        lo, hi = s.clonic_band_hz
        self._frame_rate = frame_rate
        self._burst_args = (
            max(1, round(_FINE_WINDOW_S * frame_rate)),  # frames of the short-time envelope
            2.0 * frame_rate / lo,  # fewest of its values with a rhythm looked for
            1.0 / frame_rate,
            float(lo),
            min(hi, 0.45 * frame_rate),
        )
        self._spectrum_len = round(s.spectrum_s * self.fs)
        self._derived_for = s

    def classify(
        self,
        det: Detection,
        envelope: History,
        frame_power: History,
        samples: History,
    ) -> Episode:
        """Label one finished episode from the recent history of the stream."""
        s = self.settings
        if s is not self._derived_for:
            self._derive()
        c = det.channel
        on, off = det.onset_frame, max(det.offset_frame, det.onset_frame + 1)
        stop = off * self.frame_len
        rows = samples.segments(max(on * self.frame_len, stop - self._spectrum_len), stop)
        n_frames = off - on
        label = Label.SPASM if n_frames >= self._spasm_frames else Label.TWITCH
        n = rows[0].shape[0] + rows[1].shape[0]
        if n >= _MIN_SPECTRUM:
            nperseg = min(_SEGMENT, n)
            window, energy = _periodic_hann(nperseg)
            starts = _welch_plan(n, nperseg, _MAX_SEGMENTS)
        else:
            nperseg, energy = _SEGMENT, 0.0
            window, starts = _periodic_hann(_SEGMENT)[0], _NO_STARTS
        n_avg, min_fine, df, band_lo, band_hi = self._burst_args
        env, power = envelope.segments(on, off), frame_power.segments(on, off)
        peak, mean, fine, segs = _episode_kernel(env, power, rows, c, n_avg, starts, window)
        # the burst rate of a twitch is not reported: its spectrum is skipped
        count, tapered, fmean, k0, k1 = _burst_kernel(
            fine, np.sort(fine), min_fine, label is Label.SPASM, df, band_lo, band_hi
        )
        rate, depth = math.nan, 0.0
        if k1 >= k0:
            rate, depth = _burst_rate(tapered, k0, k1, fmean, self._frame_rate)
        mdf = _spectrum_median(segs, self.fs, nperseg, energy) if n >= _MIN_SPECTRUM else math.nan
        floor = det.floor if math.isfinite(det.floor) and det.floor > 0 else math.nan
        scale = 1.0 if self.calibrated else (1.0 / floor if math.isfinite(floor) else math.nan)
        if label is Label.TWITCH:
            pattern = Pattern.PHASIC
        elif math.isfinite(rate) and depth >= s.clonic_min_depth and count >= 3:
            pattern = Pattern.CLONIC
        else:
            pattern = Pattern.TONIC
        onset_s = on * self.frame_s
        offset_s = off * self.frame_s
        return Episode(
            channel=self.channels[c],
            onset_s=onset_s,
            offset_s=offset_s,
            duration_s=offset_s - onset_s,
            label=label,
            pattern=pattern,
            peak=peak * scale,
            mean=mean * scale,
            unit="uV" if self.calibrated else "x_floor",
            burst_count=int(count),
            burst_rate_hz=rate if label is Label.SPASM else math.nan,
            median_freq_hz=float(mdf),
            floor=floor,
            truncated=det.truncated,
        )
