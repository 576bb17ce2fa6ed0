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
  (over its last ``spectrum_s`` seconds), and the share of that spectrum at
  the mains lines.
* Not muscle: a burst whose median frequency lies below ``min_median_freq_hz``
  is the ringing of a knock or of motion; one with more than
  ``max_mains_share`` of its power at the mains lines is mains hum that the
  canceller left (a swell, or a grid that moved faster than it followed). Both
  end without an episode (:class:`~emg_pipeline.labels.NotMuscle`).
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
import scipy.fft
from scipy.fft import next_fast_len

from .conditioning.notch import BANDWIDTH_HZ, BANDWIDTH_PER_HARMONIC_HZ
from .detection import Detection
from .events import Episode
from .framing import History
from .labels import Label, NotMuscle, Pattern, boundary_frames
from .settings import PipelineSettings

__all__ = ["Classifier", "burst_features", "mains_share", "median_frequency", "welch_power"]

_FINE_WINDOW_S = 0.02  # short-time envelope used to see individual bursts
_SEGMENT = 256  # samples per Welch segment
_MAX_SEGMENTS = 24  # Welch segments averaged at most (spread over the episode)
_MIN_SPECTRUM = 32  # fewer samples than this: no median frequency
#: the mains lines may cover at most this share of the band for :func:`mains_share`
#: to tell hum from muscle (broadband muscle puts about that share on them)
MAX_LINE_COVERAGE = 0.25


# ---------------------------------------------------------------- helpers
#
# An episode is classified once, when it ends (a few times a minute at most),
# so every feature is plain numpy over the episode's rows: its cost is noise
# beside the per-sample stages. Every value depends only on the episode's rows,
# so it does not depend on how the stream was chunked.


@functools.lru_cache(maxsize=64)
def _periodic_hann(nperseg: int) -> tuple[np.ndarray, float]:
    """Periodic Hann window of ``nperseg`` samples (scipy's default ``"hann"``) and its energy."""
    window = np.hanning(nperseg + 1)[:-1]
    window.flags.writeable = False  # shared between callers
    return window, float(window @ window)


def _quantile(ordered: np.ndarray, q: float) -> float:
    """The ``q`` quantile of sorted values, interpolated linearly (numpy's default method).

    ``np.quantile`` costs some 30 µs of overhead on the few dozen values of a
    short episode; this is what it computes.
    """
    position = q * (ordered.shape[0] - 1)
    below = math.floor(position)
    above = min(below + 1, ordered.shape[0] - 1)
    return float(ordered[below] + (position - below) * (ordered[above] - ordered[below]))


def _median_of_rows(a: np.ndarray) -> np.ndarray:
    """Median of each column of ``a`` (``np.median(a, axis=0)``, without its overhead).

    NaN in a column makes its median NaN, as in numpy (NaN sorts last).
    """
    ordered = np.sort(a, axis=0)
    n = ordered.shape[0]
    middle = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2.0
    return np.where(np.isnan(ordered[-1]), np.nan, middle)


def _median_bias(n: int) -> float:
    """Ratio of the median to the mean of ``n`` periodogram values (scipy's correction)."""
    even = 2.0 * np.arange(1, (n - 1) // 2 + 1)
    return float(1.0 + np.sum(1.0 / (even + 1.0) - 1.0 / even))


def _welch_starts(n: int, nperseg: int, max_segments: int | None) -> np.ndarray:
    """First samples of half-overlapping segments over ``n`` samples (at most ``max_segments``,
    spread evenly)."""
    step = nperseg - nperseg // 2
    n_seg = 1 + (n - nperseg) // step
    starts = np.arange(n_seg) * step
    if max_segments is not None and n_seg > max_segments:
        starts = starts[np.linspace(0, n_seg - 1, max_segments).round().astype(np.int64)]
    return starts


def _short_time_envelope(power: np.ndarray, n_avg: int) -> np.ndarray:
    """RMS of every ``n_avg`` consecutive frame powers (a sliding window, one value per frame)."""
    return np.sqrt(np.convolve(power, np.full(n_avg, 1.0 / n_avg), mode="valid"))


def _count_bursts(fine: np.ndarray) -> int:
    """Rising crossings of the short-time envelope through its mid band (at least 1).

    The band is the middle of the 10-90 % range, +- 15 % of it: a value above
    the band is high, below it low, inside it keeps the last state. A burst is
    a change to high (or a first state that is high).
    """
    ordered = np.sort(fine)
    if np.isnan(ordered[-1]):   # NaN sorts last: an envelope with a hole has no mid band
        return 1
    lo, hi = _quantile(ordered, 0.1), _quantile(ordered, 0.9)
    mid, half_band = 0.5 * (lo + hi), 0.15 * (hi - lo)
    state = np.where(fine > mid + half_band, 1, np.where(fine < mid - half_band, -1, 0))
    decided = state[state != 0]
    rising = np.count_nonzero(np.diff(decided) > 0) + int(decided.size > 0 and decided[0] > 0)
    return max(int(rising), 1)


def _strongest_rhythm(
    fine: np.ndarray, frame_rate: float, band_hz: tuple[float, float]
) -> tuple[float, float]:
    """Frequency of the strongest modulation of ``fine`` in ``band_hz``, and its depth.

    The de-meaned envelope times a Hann window, zero-padded to a fast FFT
    length; the depth is the modulation's amplitude over the mean envelope
    (a Hann window's coherent gain is 0.5, so amplitude = 4 |X| / N).
    """
    mean = fine.mean()
    n = fine.shape[0]
    n_fft = next_fast_len(n, real=True)
    spectrum = np.abs(np.fft.rfft((fine - mean) * np.hanning(n), n=n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / frame_rate)
    inside = np.flatnonzero((freqs >= band_hz[0]) & (freqs <= band_hz[1]))
    if not inside.size or not mean > 0:
        return math.nan, 0.0
    k = inside[np.argmax(spectrum[inside])]
    return float(freqs[k]), float(4.0 * spectrum[k] / n / mean)


# ---------------------------------------------------------------- public

def median_frequency(x: np.ndarray, fs: float, max_segments: int = _MAX_SEGMENTS) -> float:
    """Median frequency (Hz) of the power spectrum of ``x``; NaN if too short.

    The spectrum is a Welch estimate over at most ``max_segments`` segments of
    256 samples spread evenly over ``x``, their median per frequency (Welch's
    median average): a cable knock or an electrode pop in fewer than half of
    the segments does not move it, where in the mean it would outweigh the
    muscle's own spectrum.

    Examples
    --------
    >>> t = np.arange(2000) / 1000.0
    >>> round(median_frequency(np.sin(2 * np.pi * 80 * t), 1000.0))
    80
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < _MIN_SPECTRUM:
        return math.nan
    freqs, power = welch_power(x, fs, min(_SEGMENT, x.shape[0]), max_segments,
                               average="median")
    total = np.cumsum(power)
    if not total[-1] > 0:  # a spectrum of zeros, or with NaN (an infinite sample)
        return math.nan
    # the bin holding half the power, interpolated linearly within the bin
    half = 0.5 * total[-1]
    k = int(np.searchsorted(total, half))
    below = total[k - 1] if k else 0.0
    width = freqs[1] - freqs[0]
    frac = (half - below) / power[k] if power[k] > 0 else 0.5
    return float(freqs[k] + (frac - 0.5) * width)


def mains_share(x: np.ndarray, fs: float, mains_hz: float,
                band_hz: tuple[float, float]) -> float:
    """Share of the power of ``x`` within ``band_hz`` that lies at the mains lines.

    The spectrum is a periodogram (periodic Hann window) of the last
    ``scipy.fft.prev_fast_len(len(x))`` samples of ``x``: a length whose FFT
    is fast (an awkward length costs up to ten times more), at most a few
    percent shorter than ``x``. The lines
    are the harmonics ``h * mains_hz`` (h = 1, 2, ...), each as wide as the
    mains comb's notch there (``BANDWIDTH_HZ + BANDWIDTH_PER_HARMONIC_HZ * h``)
    and at least two bins. At the nominal frequency, they hold a grid off by
    up to 0.5 Hz up to the 9th harmonic. Muscle is broadband: it puts on the
    lines about the share of the band they cover. Hum left by the canceller
    puts nearly all its power there.

    Returns NaN when ``x`` is too short to resolve the lines (they would cover
    more than :data:`MAX_LINE_COVERAGE` of the band), or has no power.

    Examples
    --------
    >>> t = np.arange(4000) / 1000.0
    >>> hum = np.sin(2 * np.pi * 50.2 * t) + 0.5 * np.sin(2 * np.pi * 150.6 * t)
    >>> round(mains_share(hum, 1000.0, 50.2, (20.0, 450.0)), 2)
    1.0
    >>> noise = np.random.default_rng(0).standard_normal(4000)
    >>> round(mains_share(noise, 1000.0, 50.2, (20.0, 450.0)), 2)   # the lines cover 15 %
    0.15
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < _MIN_SPECTRUM:
        return math.nan
    n = scipy.fft.prev_fast_len(x.shape[0], real=True)
    x = x[x.shape[0] - n:]
    window, _ = _periodic_hann(n)
    spectrum = scipy.fft.rfft((x - x.mean()) * window)
    power = spectrum.real**2 + spectrum.imag**2
    bin_hz = fs / n
    band = _bins(band_hz[0], band_hz[1], bin_hz, power.shape[0])
    bins = np.arange(band.start, band.stop)
    power = power[band]
    # each bin against its nearest harmonic (the lines are far narrower than
    # the grid's spacing wherever they cover under a quarter of the band), in
    # bins: a line edge that falls on a bin (two bins wide) takes it in
    h = np.maximum(np.rint(bins * bin_hz / mains_hz), 1.0)
    half_bins = np.maximum(2.0, 0.5 * (BANDWIDTH_HZ + BANDWIDTH_PER_HARMONIC_HZ * h) / bin_hz)
    on_line = np.abs(bins - h * mains_hz / bin_hz) <= half_bins + 1e-9
    total = power.sum()
    if not total > 0 or np.count_nonzero(on_line) > MAX_LINE_COVERAGE * power.shape[0]:
        return math.nan
    return float(power[on_line].sum() / total)


def _bins(low_hz: float, high_hz: float, bin_hz: float, n_bins: int) -> slice:
    """The bins of a spectrum (``k * bin_hz``) from ``low_hz`` to ``high_hz``, both included."""
    return slice(max(0, math.ceil(low_hz / bin_hz)), min(n_bins, math.floor(high_hz / bin_hz) + 1))


def welch_power(
    x: np.ndarray, fs: float, nperseg: int, max_segments: int | None = None,
    average: Literal["mean", "median"] = "mean",
) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectrum of a 1-D signal: Hann segments, half overlap, each de-meaned.

    The same estimate as ``scipy.signal.welch(x, fs, nperseg=nperseg,
    average=average)`` (one-sided density), computed with one batched FFT
    instead of a per-segment loop. With ``max_segments``, at most that many
    segments, evenly spread over ``x``, are averaged (a bounded cost for long
    episodes).

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal(3000)
    >>> f, p = welch_power(x, 1000.0, 256)
    >>> from scipy import signal
    >>> f2, p2 = signal.welch(x, fs=1000.0, nperseg=256)
    >>> bool(np.allclose(p, p2)) and bool(np.allclose(f, f2))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    starts = _welch_starts(x.shape[0], nperseg, max_segments)
    segs = x[starts[:, None] + np.arange(nperseg)]
    window, energy = _periodic_hann(nperseg)
    spec = np.fft.rfft((segs - segs.mean(axis=1, keepdims=True)) * window, axis=1)
    periodograms = spec.real**2 + spec.imag**2
    if average == "median":   # scipy's: the median, unbiased for chi-square(2) values
        power = _median_of_rows(periodograms) / _median_bias(periodograms.shape[0])
    else:
        power = periodograms.mean(axis=0)
    power /= fs * energy
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
        Rising crossings of the short-time envelope (RMS over 20 ms) through
        its mid level; at least 1.
    rate_hz : float
        Frequency of the strongest envelope modulation in ``band_hz`` (NaN if
        the episode is shorter than two cycles of the band's lowest rate).
    depth : float
        Amplitude of that modulation relative to the mean envelope.

    Examples
    --------
    Five bursts a second for 2 s, at 200 frames per second:

    >>> t = np.arange(400) / 200.0
    >>> power = (1.0 + np.sin(2 * np.pi * 5.0 * t)) ** 2
    >>> count, rate, depth = burst_features(power, 200.0, (3.0, 8.0))
    >>> count, round(rate, 1)
    (10, 5.0)
    """
    power = np.asarray(power, dtype=np.float64)
    n_avg = max(1, round(_FINE_WINDOW_S * frame_rate))
    if power.shape[0] < n_avg + 2:
        return 1, math.nan, 0.0
    fine = _short_time_envelope(power, n_avg)
    count = _count_bursts(fine)
    if fine.shape[0] < 2.0 * frame_rate / band_hz[0]:
        return count, math.nan, 0.0
    band = (float(band_hz[0]), min(float(band_hz[1]), 0.45 * frame_rate))
    rate, depth = _strongest_rhythm(fine, frame_rate, band)
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
    band_hz : tuple of float
        The band-pass corners in use (``StreamSpec.band_hz``).
    """

    def __init__(
        self,
        fs: float,
        frame_len: int,
        settings: PipelineSettings,
        calibrated: bool,
        channels: tuple[str, ...],
        band_hz: tuple[float, float],
    ) -> None:
        self.fs = float(fs)
        self.band_hz = (float(band_hz[0]), float(band_hz[1]))
        self.frame_len = int(frame_len)
        self.frame_s = self.frame_len / self.fs
        self.settings = settings
        self.calibrated = bool(calibrated)
        self.channels = tuple(channels)
        self._frame_rate = 1.0 / self.frame_s

    def reset(self) -> None:
        """The classifier carries no state."""

    def classify(
        self,
        det: Detection,
        envelope: History,
        frame_power: History,
        samples: History,
        mains_hz: float | None = None,
    ) -> Episode:
        """Label one finished episode from the recent history of the stream.

        ``mains_hz`` is the nominal mains frequency (50 or 60 Hz) removed by
        the episode's end (None when none was found): the episode's
        ``mains_share`` is measured at its harmonics. An episode that is not
        muscle comes back with ``not_muscle`` set.
        """
        s = self.settings
        c = det.channel
        on, off = det.onset_frame, max(det.offset_frame, det.onset_frame + 1)
        n_frames = off - on
        spasm = n_frames >= boundary_frames(s.spasm_min_s, self.frame_s)
        label = Label.SPASM if spasm else Label.TWITCH
        env = envelope.read(on, off, channel=c)
        peak = float(env.max()) if env.size else math.nan
        mean = float(env.mean()) if env.size else math.nan
        power = frame_power.read(on, off, channel=c)
        count, rate, depth = burst_features(power, self._frame_rate, s.clonic_band_hz)
        # the burst rate of a twitch is not reported
        stop = off * self.frame_len
        start = max(on * self.frame_len, stop - round(s.spectrum_s * self.fs))
        tail = samples.read(start, stop, channel=c)
        mdf = median_frequency(tail, self.fs)
        share = math.nan if mains_hz is None else mains_share(tail, self.fs, mains_hz,
                                                              self.band_hz)
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
            mains_share=share,
            not_muscle=self._not_muscle(mdf, share),
        )

    def _not_muscle(self, median_freq_hz: float, share: float) -> NotMuscle | None:
        """Why a burst with these spectral features is not muscle (None: it may be).

        NaN features (a spectrum too short to tell) never reject.
        """
        if median_freq_hz < self.settings.min_median_freq_hz:
            return NotMuscle.KNOCK
        if share > self.settings.max_mains_share:
            return NotMuscle.MAINS
        return None
