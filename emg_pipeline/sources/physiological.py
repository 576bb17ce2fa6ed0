"""Physiological sEMG recordings with ground truth: motor-unit pools firing MUAPs.

A second generator, independent of :mod:`~emg_pipeline.sources.randomized` and
:mod:`~emg_pipeline.sources.synthetic` (which shape Gaussian noise to a
spectrum): here the muscle signal is built the way a muscle builds it, after
the motor-unit pool model of Fuglevand, Winter & Patla (1993, *J Neurophysiol*
70:2470). Each channel is one muscle under its electrodes:

* **Pool.** ``N`` motor units; unit ``i`` (1..N) is recruited at the
  excitation ``RTE(i) = exp(ln(RR) i / N)`` (most units have low thresholds),
  fires at ``FR = g_e (E - RTE(i)) + MFR`` pulses/s once recruited, up to its
  peak rate ``PFR(i)``, which falls linearly with ``RTE(i)`` from ``PFR(1)`` to
  ``PFR(N)``. The largest excitation ``E_max = RTE(N) + (PFR(N) - MFR) / g_e``
  brings the last unit to its peak rate; an event's drive ``e(t)`` in [0, 1]
  is the excitation ``E = e E_max``.
* **Discharges.** A unit fires its first discharge when it is recruited, then
  whenever its integrated rate grows by a Gaussian step of mean 1 and
  coefficient of variation ``isi_cv`` (clipped to 0.1-1.9): inter-spike
  intervals are Gaussian with that CV about ``1 / FR``, a renewal process that
  follows the rate as the drive changes (:func:`discharge_times`).
  Cramp-like spasms fire more irregularly (``cramp_cv``) and with doublets.
* **MUAPs.** A unit's potential at the skin is a Hermite-Rodriguez shape, a
  mixture of the first (biphasic) and second (triphasic) derivatives of a
  Gaussian, of width ``λ = w0 (1 + depth / d0) (4 m/s / v)`` and amplitude
  ``size exp(-depth / λ_d)``: deeper units are wider and smaller; sizes grow
  exponentially with recruitment order (Henneman) and so does the conduction
  velocity ``v`` (larger units conduct faster, so their potentials are
  narrower). Each discharge jitters the width by 3 % and the amplitude by 5 %.
  The muscle signal's median frequency comes out at about 55-125 Hz.
  Units whose potential is under 1 % of the largest are left out (together
  they carry well under 1 % of the signal's energy).
  The potentials are summed at their continuous discharge times at 1-2 kHz,
  then resampled to the recording's rate through an anti-alias filter.
* **Channels.** Each channel is its own muscle: its own units' depths, sizes,
  widths and velocities, and its own events; the pool's thresholds and rates
  are the recording's.

Ranges, drawn per recording (log-uniform where a range spans decades):

========================= ==================================================================
sampling rate             200, 250, 500, 1000, 2000 or 4000 Hz (the potentials are summed
                          at 1-2 kHz, then resampled to it through an anti-alias filter)
channels                  1-3
pool                      80-200 units; recruitment range RR 20-50; peak rate of the first
                          unit 25-35 pps, of the last 10-25 pps (at least 5 below the
                          first); minimum rate 8 pps; gain g_e 0.8-1.2 pps per unit of
                          excitation; ISI CV 0.1-0.3
MUAPs                     width w0 1.4-2.8 ms (a unit at the skin, at 4 m/s); depth:
                          fat 1-8 mm plus 0-(5-25) mm of muscle; d0 8-20 mm; λ_d 3-8 mm;
                          unit sizes spanning 5-50x; conduction velocity 3-5 m/s, 0.85-1.15x
                          of it from the first unit to the last, ±5 % per unit
events                    55 % twitches: a drive pulse of 30-450 ms, peak drive 0.15-1
                          (truth spans of a few ms, a single volley, to 0.45 s);
                          45 % spasms of 3-60 s, one in ten 60 s-10 min (cut to the
                          recording), peak drive 0.2-1: tonic (40 %): ramp up over
                          10 ms-2 s, plateau with a 3-15 % slow wander and a decline to
                          60-100 %, ramp down over 10 ms-2 s; clonic (30 %): 3-8 Hz
                          bursts, each 30-60 % of the cycle; mixed (30 %): clonic on a
                          tonic base of 20-50 %. One in ten to four in ten of the tonic
                          and mixed spasms are cramp-like (ISI CV 0.3-0.45, 2-15 % of
                          discharges doubled 3-10 ms later). Rest between events
                          0.8-1.5 s (three in ten) or 2-20 s. SNR per recording 3, 6,
                          12 or 20 dB, each event within ±2 dB of it
rest noise (in band)      white 1-10 µV, plus 1/f noise of 0-2x its in-band power, plus an
                          electrode drift (below 1 Hz) of 0-500 µV
resolution                8, 10, 12, 16 or 24 bits; rest noise of 0.5-50 steps, and at most
                          3 steps per 8 bits (0.5-3 for 8 bits, 0.5-12 for 10 bits: the
                          converter spans at least ±42 times the rest noise); samples in
                          µV or in counts (half of the recordings)
start                     normal, quiet (noise x0.3) or noisy (noise x3) for 10-60 s
mains                     none (one in four), 50 or 60 Hz off by up to ±0.3 Hz, wandering
                          slowly by up to 0.2 Hz more (within ±0.5 Hz); odd harmonics
                          (3, 5, 7) 0.05-1x and even ones (2, 4, 6) 0.01-0.3x the
                          fundamental, those above 0.45 fs left out; the fundamental
                          0.5-20x the rest noise, its amplitude wandering ±20 %
ECG                       on one channel in three recordings: R waves 5-300x the rest
                          noise, 50-110 beats/min with respiratory variation of 2-8 %
========================= ==================================================================

The drift, mains and ECG are capped (in the drawn spec) at 30 %, 25 % and 40 %
of the converter's range, so that the rest signal stays within it and only
contractions may reach the rail. There are no motion artefacts, pops, knocks
or lead-offs: ``artefacts`` is always empty.

**Truth.** An event lasts while its motor units fire: from the sample of its
first discharge to the sample after its last, over the units whose
potentials are rendered. The first discharge comes when the drive first
reaches the lowest recruitment threshold (unit 1 discharges on recruitment;
above 1 kHz the discharges follow the drive on a 1 kHz grid); the last one
comes up to an interval before the drive falls below it. It is a spasm when
it lasts at least ``spasm_min_s`` (:func:`~emg_pipeline.labels.label_for`).
Pattern: a twitch is ``phasic``, a tonic spasm ``tonic``, a clonic or mixed
spasm ``clonic``. The shortest twitches are a single volley, so their spans
run from a few ms (1 % of twitches under 10 ms, the median 0.1 s) to 0.45 s.
Outside the spans there is no muscle activity at all, apart from the
potentials' own extent around a discharge (a few ms; under 0.07 s for a deep
unit, with the resampling filter's below 1 kHz). A slow rise starts with a
few small units, under the noise at a low SNR, as in a real recording.

**SNR** is the RMS of an event's muscle signal over its span, in the
pipeline's band (20-450 Hz, clamped by
:func:`~emg_pipeline.conditioning.filters.effective_band`, causal filter),
over the RMS of the rest noise (white plus 1/f) in the same band, around the
event: during a quiet or noisy start that is the start's noise, so the
events there report an SNR 10 dB above or below the recording's. Each event's
sum of potentials is scaled to its SNR. Mains and ECG are not counted as noise.

Examples
--------
>>> spec = draw_spec(np.random.default_rng(1), duration_s=20.0, snr_db=20.0)
>>> rec = generate(spec)
>>> rec.signal.shape == (round(20.0 * spec.fs), spec.n_channels)
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import signal

from ..conditioning.filters import bandpass_sos, effective_band
from ..labels import DEFAULT_SPASM_MIN_S, label_for
from .synthetic import ARTEFACT_COLUMNS, TRUTH_COLUMNS, SyntheticRecording

__all__ = ["PhysioSpec", "discharge_times", "draw_spec", "firing_rate", "generate",
           "recruitment"]

RATES_HZ = (200.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
SNR_LEVELS_DB = (3.0, 6.0, 12.0, 20.0)
BITS = (8, 10, 12, 16, 24)
MIN_RATE_PPS = 8.0          # minimum firing rate of a recruited unit (Fuglevand's MFR)
RENDER_HZ = (1000.0, 2000.0)  # the potentials are summed at a rate in this range, then resampled
_C1 = math.sqrt(2.0 * math.e)   # peak of τ exp(-τ²) is 1 / sqrt(2e)
_SUPPORT = 3.5              # a potential is rendered over ±3.5 widths (1e-4 of its peak)
_WIDTH_JITTER = 0.03        # per discharge
_AMP_JITTER = 0.05          # per discharge
_REF_VELOCITY = 4.0         # m/s: muap_width_ms is the width at this conduction velocity
_VISIBLE = 0.01             # units under this share of the largest potential are left out


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


@dataclass(frozen=True)
class PhysioSpec:
    """The conditions of one physiological recording (see the module docstring for ranges).

    Attributes
    ----------
    fs : float
        Sampling rate, Hz.
    n_channels : int
        Channels (muscles).
    duration_s : float
        Length, s (exact: long spasms are cut to it).
    snr_db : float
        The recording's SNR level; each event is within ±2 dB of it.
    n_units : int
        Motor units in each channel's pool.
    recruit_range : float
        RR: the recruitment range, ``RTE(N) = RR`` with ``RTE(1) = RR^(1/N)`` (about 1).
    peak_rate_first, peak_rate_last : float
        Peak firing rates of the first and the last unit, pulses/s.
    min_rate : float
        Firing rate at recruitment, pulses/s.
    rate_gain : float
        g_e: pulses/s per unit of excitation.
    isi_cv : float
        Coefficient of variation of the inter-spike intervals.
    cramp_share : float
        Share of the tonic and mixed spasms that are cramp-like.
    cramp_cv : float
        ISI CV during cramp-like spasms.
    doublet_prob : float
        Share of discharges followed by a second one 3-10 ms later, in cramp-like spasms.
    size_range : float
        Largest unit's intrinsic potential amplitude over the smallest's.
    muap_width_ms : float
        w0: width λ of the potential of a unit at the skin conducting at 4 m/s, ms.
    fat_mm, muscle_mm : float
        Depth of the muscle under the skin, and its thickness; units lie uniformly in it.
    widen_mm : float
        d0: a unit's potential widens by ``1 + depth / d0``.
    decay_mm : float
        λ_d: a unit's potential shrinks by ``exp(-depth / λ_d)``.
    velocity_mps : float
        Mean muscle-fibre conduction velocity, m/s.
    noise_uv : float
        Rest noise (white plus 1/f), RMS in band, µV.
    pink_ratio : float
        In-band power of the 1/f noise over the white noise's.
    drift_uv : float
        Largest excursion of the electrode drift, µV.
    bits : int
        Converter resolution.
    lsb_uv : float
        Converter step, µV.
    counts : bool
        Samples in counts (converter steps) rather than µV.
    start : str
        ``"normal"``, ``"quiet"`` (rest noise x0.3) or ``"noisy"`` (x3) for ``start_s``.
    start_s : float
        Length of the start, s.
    mains_hz : float or None
        Nominal grid frequency, or None for no mains.
    mains_offset_hz, mains_wander_hz : float
        Offset of the grid from nominal, and the largest slow wander about it.
    mains_ratio : float
        Amplitude of the fundamental over ``noise_uv``.
    harmonics : tuple of float
        Amplitudes of harmonics 2-7 relative to the fundamental.
    ecg_channel : int or None
        The channel with ECG, or None.
    ecg_ratio : float
        R-wave amplitude over ``noise_uv``.
    rest_only : bool
        No events.
    seed : int
        Seed of everything :func:`generate` draws.
    """

    fs: float
    n_channels: int
    duration_s: float
    snr_db: float
    n_units: int
    recruit_range: float
    peak_rate_first: float
    peak_rate_last: float
    min_rate: float
    rate_gain: float
    isi_cv: float
    cramp_share: float
    cramp_cv: float
    doublet_prob: float
    size_range: float
    muap_width_ms: float
    fat_mm: float
    muscle_mm: float
    widen_mm: float
    decay_mm: float
    velocity_mps: float
    noise_uv: float
    pink_ratio: float
    drift_uv: float
    bits: int
    lsb_uv: float
    counts: bool
    start: str
    start_s: float
    mains_hz: float | None
    mains_offset_hz: float
    mains_wander_hz: float
    mains_ratio: float
    harmonics: tuple[float, ...]
    ecg_channel: int | None
    ecg_ratio: float
    rest_only: bool
    seed: int = 0

    @property
    def full_scale_uv(self) -> float:
        """The converter's largest positive value, µV."""
        return (2 ** (self.bits - 1) - 1) * self.lsb_uv

    def conditions(self) -> dict[str, object]:
        """The spec as a flat dict (for result tables).

        Every field (``harmonics`` as comma-separated text), plus ``mains``
        (``"off"``, ``"50"`` or ``"60"``, the words of
        :attr:`~emg_pipeline.settings.PipelineSettings.mains`) and ``ecg``
        (whether a channel carries ECG).

        Examples
        --------
        >>> c = draw_spec(np.random.default_rng(0), duration_s=10.0).conditions()
        >>> {"fs", "snr_db", "mains", "ecg", "start", "bits", "rest_only"} <= set(c)
        True
        """
        d: dict[str, object] = asdict(self)
        d["harmonics"] = ",".join(f"{h:.2f}" for h in self.harmonics)
        d["mains"] = "off" if self.mains_hz is None else f"{self.mains_hz:g}"
        d["ecg"] = self.ecg_channel is not None
        return d


def draw_spec(rng: np.random.Generator, *, snr_db: float | None = None,
              rest_only: bool = False, duration_s: float | None = None) -> PhysioSpec:
    """Draw the conditions of one recording.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    snr_db : float, optional
        Fix the SNR level (default: one of :data:`SNR_LEVELS_DB`).
    rest_only : bool
        No contraction events: rest, with whatever noise, mains and ECG are drawn.
    duration_s : float, optional
        Fix the length (default 2-6 min).

    Returns
    -------
    PhysioSpec
    """
    fs = float(rng.choice(RATES_HZ))
    n_channels = int(rng.integers(1, 4))
    bits = int(rng.choice(BITS))
    noise = _log_uniform(rng, 1.0, 10.0)
    # a usable converter spans at least ±42 times the rest noise: 3 steps per 8 bits at most
    steps = _log_uniform(rng, 0.5, min(50.0, 3.0 * 2.0 ** (bits - 8)))
    lsb = noise / steps
    full = (2 ** (bits - 1) - 1) * lsb
    pfr1 = float(rng.uniform(25.0, 35.0))
    has_mains = rng.random() >= 0.25
    harmonics = tuple(_log_uniform(rng, 0.05, 1.0) if k % 2 else _log_uniform(rng, 0.01, 0.3)
                      for k in range(2, 8))
    mains_cap = 0.25 * full / noise / (1.0 + sum(harmonics))
    muscle_mm = float(rng.uniform(5.0, 25.0))
    return PhysioSpec(
        fs=fs,
        n_channels=n_channels,
        duration_s=float(duration_s) if duration_s is not None else float(rng.uniform(120, 360)),
        snr_db=float(snr_db) if snr_db is not None else float(rng.choice(SNR_LEVELS_DB)),
        n_units=int(rng.integers(80, 201)),
        recruit_range=float(rng.uniform(20.0, 50.0)),
        peak_rate_first=pfr1,
        peak_rate_last=float(rng.uniform(10.0, min(25.0, pfr1 - 5.0))),
        min_rate=MIN_RATE_PPS,
        rate_gain=float(rng.uniform(0.8, 1.2)),
        isi_cv=float(rng.uniform(0.1, 0.3)),
        cramp_share=float(rng.uniform(0.1, 0.4)),
        cramp_cv=float(rng.uniform(0.3, 0.45)),
        doublet_prob=float(rng.uniform(0.02, 0.15)),
        size_range=_log_uniform(rng, 5.0, 50.0),
        muap_width_ms=float(rng.uniform(1.4, 2.8)),
        fat_mm=float(rng.uniform(1.0, 8.0)),
        muscle_mm=muscle_mm,
        widen_mm=float(rng.uniform(8.0, 20.0)),
        decay_mm=float(rng.uniform(3.0, 8.0)),
        velocity_mps=float(rng.uniform(3.0, 5.0)),
        noise_uv=noise,
        pink_ratio=float(rng.uniform(0.0, 2.0)),
        drift_uv=min(float(rng.uniform(0.0, 500.0)), 0.3 * full),
        bits=bits,
        lsb_uv=lsb,
        counts=bool(rng.random() < 0.5),
        start=str(rng.choice(["normal", "quiet", "noisy"])),
        start_s=float(rng.uniform(10.0, 60.0)),
        mains_hz=float(rng.choice([50.0, 60.0])) if has_mains else None,
        mains_offset_hz=float(rng.uniform(-0.3, 0.3)),
        mains_wander_hz=float(rng.uniform(0.0, 0.2)),
        mains_ratio=min(_log_uniform(rng, 0.5, 20.0), mains_cap),
        harmonics=harmonics,
        ecg_channel=int(rng.integers(0, n_channels)) if rng.random() < 1 / 3 else None,
        ecg_ratio=min(_log_uniform(rng, 5.0, 300.0), 0.4 * full / noise),
        rest_only=rest_only,
        seed=int(rng.integers(0, 2**31)),
    )


# ------------------------------------------------------------------------------ motor units


def recruitment(spec: PhysioSpec) -> tuple[np.ndarray, np.ndarray, float]:
    """The pool's recruitment thresholds, peak rates and largest excitation.

    Returns
    -------
    thresholds : ndarray, shape (n_units,)
        ``RTE(i) = exp(ln(RR) i / N)``, i = 1..N, in units of excitation (increasing).
    peak_rates : ndarray, shape (n_units,)
        ``PFR(i)``, pulses/s, falling linearly with ``RTE(i)`` from the first unit's to
        the last's.
    e_max : float
        The excitation at drive 1: the last unit then fires at its peak rate.

    Examples
    --------
    >>> spec = draw_spec(np.random.default_rng(0), duration_s=10.0)
    >>> rte, pfr, e_max = recruitment(spec)
    >>> bool(np.all(np.diff(rte) > 0) and np.all(np.diff(pfr) < 0) and rte[-1] < e_max)
    True
    """
    n = spec.n_units
    rte = np.exp(math.log(spec.recruit_range) * np.arange(1, n + 1) / n)
    share = (rte - rte[0]) / max(float(rte[-1] - rte[0]), 1e-12)
    pfr = spec.peak_rate_first - (spec.peak_rate_first - spec.peak_rate_last) * share
    e_max = float(rte[-1] + (pfr[-1] - spec.min_rate) / spec.rate_gain)
    return rte, pfr, e_max


def firing_rate(excitation: np.ndarray | float, threshold: float, peak_rate: float,
                min_rate: float = MIN_RATE_PPS, gain: float = 1.0) -> np.ndarray:
    """A unit's firing rate (pulses/s) at ``excitation``: 0 below its threshold.

    ``g_e (E - RTE) + MFR`` once recruited, at most the unit's peak rate.

    Examples
    --------
    >>> firing_rate(np.array([1.0, 2.0, 10.0, 100.0]), 2.0, 30.0).tolist()
    [0.0, 8.0, 16.0, 30.0]
    """
    e = np.asarray(excitation, dtype=float)
    rate = np.minimum(gain * (e - threshold) + min_rate, peak_rate)
    return np.where(e >= threshold, rate, 0.0)


def _discharges(idx: np.ndarray, rate: np.ndarray, fs: float, rng: np.random.Generator,
                cv: np.ndarray) -> np.ndarray:
    """Discharge times (s) of one unit firing at ``rate`` (> 0) on the samples ``idx``.

    ``idx`` is increasing; a run of consecutive samples is one recruitment
    episode. ``cv`` (per sample of ``idx``) is read at each episode's start.
    """
    if idx.size == 0:
        return np.empty(0)
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [idx.size]])
    phase = np.empty(idx.size + 1)          # integrated rate at the start of each sample
    phase[0] = 0.0
    np.cumsum(rate / fs, out=phase[1:])
    span = phase[ends] - phase[starts]
    cv_ep = cv[starts]
    # enough Gaussian steps per episode to cover it almost surely (the surplus is dropped)
    count = (np.floor(span).astype(np.int64) + 2
             + np.ceil(5.0 * cv_ep * np.sqrt(span + 1.0)).astype(np.int64))
    first = np.cumsum(count) - count
    ep = np.repeat(np.arange(count.size), count)
    steps = np.clip(1.0 + cv_ep[ep] * rng.standard_normal(ep.size), 0.1, 1.9)
    steps[first] = 0.0                      # the first discharge at recruitment
    theta = np.cumsum(steps)
    theta -= np.repeat(theta[first], count)
    keep = theta < span[ep]
    target = phase[starts][ep[keep]] + theta[keep]
    pos = np.interp(target, phase, np.arange(phase.size, dtype=float))
    ip = np.minimum(pos.astype(np.int64), idx.size - 1)
    return (idx[ip] + (pos - ip)) / fs


def discharge_times(rate: np.ndarray, fs: float, rng: np.random.Generator,
                    cv: float | np.ndarray = 0.2) -> np.ndarray:
    """Discharge times of one motor unit firing at ``rate`` (pulses/s per sample).

    Where the rate is 0 the unit is silent; each run of positive rate is a
    recruitment episode that starts with a discharge on its first sample.
    Then the unit fires whenever its integrated rate has grown by a step drawn
    from a Gaussian of mean 1 and SD ``cv`` (clipped to 0.1-1.9), so at a
    steady rate the intervals are Gaussian about ``1 / rate`` with that
    coefficient of variation (Fuglevand et al. 1993), and they follow the rate
    as it changes. Vectorised: no loop over samples or discharges.

    Parameters
    ----------
    rate : ndarray, shape (n,)
        Firing rate per sample, pulses/s (0 where not recruited).
    fs : float
        Sampling rate of ``rate``, Hz.
    rng : numpy.random.Generator
        Source of the interval jitter.
    cv : float or ndarray, shape (n,)
        ISI coefficient of variation (per sample: read at each episode's start).

    Returns
    -------
    ndarray
        Discharge times in seconds from the first sample, increasing.

    Examples
    --------
    >>> t = discharge_times(np.full(10000, 20.0), 1000.0, np.random.default_rng(0))
    >>> float(t[0]), 195 <= t.size <= 205
    (0.0, True)
    """
    r = np.asarray(rate, dtype=float)
    idx = np.flatnonzero(r > 0)
    cv_all = np.broadcast_to(np.asarray(cv, dtype=float), r.shape)
    return _discharges(idx, r[idx], float(fs), rng, cv_all[idx])


def _muap(tau: np.ndarray, mix: float | np.floating) -> np.ndarray:
    """Hermite-Rodriguez potential of peak 1 per part: ``mix`` biphasic, the rest triphasic."""
    t2 = tau * tau
    return np.exp(-t2) * ((mix * _C1) * tau + (1 - mix) * (1 - 2 * t2))


@dataclass(frozen=True)
class _Units:
    """One channel's units: the potential's width (s), amplitude, shape mix, and visibility."""

    width_s: np.ndarray
    amp: np.ndarray
    mix: np.ndarray
    visible: np.ndarray     # rendered: at least _VISIBLE of the largest potential


def _draw_units(rng: np.random.Generator, spec: PhysioSpec) -> _Units:
    n = spec.n_units
    rank = np.arange(n) / max(n - 1, 1)
    depth = spec.fat_mm + spec.muscle_mm * rng.uniform(0.0, 1.0, n)
    velocity = spec.velocity_mps * (0.85 + 0.3 * rank) * rng.normal(1.0, 0.05, n)
    width = 1e-3 * spec.muap_width_ms * (1.0 + depth / spec.widen_mm) * _REF_VELOCITY / velocity
    size = spec.size_range ** rank
    amp = size * np.exp(-depth / spec.decay_mm) * rng.choice((-1.0, 1.0), n)
    visible = np.abs(amp) >= _VISIBLE * float(np.abs(amp).max())
    return _Units(width, amp, rng.uniform(0.0, 1.0, n), visible)


class _Summer:
    """Adds potentials at continuous discharge times into a signal at ``fs``."""

    def __init__(self, n: int, fs: float, pad: int) -> None:
        self.n, self.fs, self.pad = n, fs, pad
        self.out = np.zeros(n + 2 * pad + 2)

    def add(self, rng: np.random.Generator, times: np.ndarray, width_s: float, amp: float,
            mix: float) -> None:
        k = times.size
        if k == 0:
            return
        half = math.ceil(_SUPPORT * width_s * 1.1 * self.fs)
        width = width_s * np.clip(1.0 + _WIDTH_JITTER * rng.standard_normal(k), 0.9, 1.1)
        a = (amp * (1.0 + _AMP_JITTER * rng.standard_normal(k))).astype(np.float32)
        at = times * self.fs
        j0 = np.floor(at).astype(np.int64) - half
        # τ in float32 (4x faster exp), from the small offsets of each window to its discharge
        offset = (j0 - at).astype(np.float32)[:, None] + np.arange(2 * half + 2,
                                                                   dtype=np.float32)
        tau = offset * (1.0 / (width * self.fs)).astype(np.float32)[:, None]
        cols = j0[:, None] + (np.arange(2 * half + 2) + self.pad)
        weights = (a[:, None] * _muap(tau, np.float32(mix))).astype(np.float64)
        np.add.at(self.out, cols.ravel(), weights.ravel())   # windows overlap: unbuffered

    def signal(self) -> np.ndarray:
        return self.out[self.pad: self.pad + self.n]


# ------------------------------------------------------------------------------ drive


def _smooth_step(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / max(n, 1))


def _slow(rng: np.random.Generator, n: int, fs: float, knot_s: float) -> np.ndarray:
    """Zero-mean unit-SD slow wander: Gaussian knots every ``knot_s``, smoothly joined."""
    k = int(n / fs / knot_s) + 3
    knots = rng.standard_normal(k)
    t = np.arange(n) / fs / knot_s
    i = np.minimum(t.astype(np.int64), k - 2)
    w = _smooth_step_of(t - i)
    return knots[i] * (1.0 - w) + knots[i + 1] * w


def _smooth_step_of(x: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _drive(rng: np.random.Generator, kind: str, seconds: float, fs: float) -> np.ndarray:
    """Drive e(t) in [0, 1] of one event of about ``seconds``."""
    n = max(3, round(seconds * fs))
    if kind == "twitch":
        peak = rng.uniform(0.15, 1.0)
        rise = max(1, round(rng.uniform(0.1, 0.4) * n))
        fall = max(1, round(rng.uniform(0.1, 0.4) * n))
        e = np.full(n, peak)
        e[:rise] *= _smooth_step(rise)
        e[n - fall:] *= _smooth_step(fall)[::-1]
        return e
    peak = rng.uniform(0.2, 1.0)
    t = np.arange(n) / fs
    decline = rng.uniform(0.6, 1.0) ** (t / max(seconds, 1e-9))
    wander = 1.0 + rng.uniform(0.03, 0.15) * _slow(rng, n, fs, rng.uniform(0.5, 3.0))
    base = decline * wander
    if kind in ("clonic", "mixed"):
        rate = rng.uniform(3.0, 8.0)
        duty = rng.uniform(0.3, 0.6)
        n_bursts = int(1.2 * seconds * rate) + 4
        periods = rng.normal(1.0, 0.05, n_bursts) / rate
        onsets = np.concatenate([[0.0], np.cumsum(periods)[:-1]])
        heights = rng.uniform(0.6, 1.0, n_bursts)
        b = np.searchsorted(onsets, t, side="right") - 1
        x = (t - onsets[b]) / (duty * periods[b])
        bursts = np.where(x < 1.0, np.sin(np.pi * np.clip(x, 0.0, 1.0)), 0.0) * heights[b]
        floor = 0.0 if kind == "clonic" else rng.uniform(0.2, 0.5)
        base = base * (floor + (1.0 - floor) * bursts)
    e = base
    rise = max(1, min(n // 4, round(_log_uniform(rng, 0.01, 2.0) * fs)))
    fall = max(1, min(n // 4, round(_log_uniform(rng, 0.01, 2.0) * fs)))
    e[:rise] *= _smooth_step(rise)
    e[n - fall:] *= _smooth_step(fall)[::-1]
    return np.clip(peak * e / max(float(e.max()), 1e-12), 0.0, 1.0)


@dataclass(frozen=True)
class _Event:
    i0: int            # first sample of the drive
    drive: np.ndarray
    kind: str
    cramp: bool
    cv: float


def _plan(rng: np.random.Generator, spec: PhysioSpec, n: int) -> list[_Event]:
    """One channel's events, in order, not overlapping, within the recording."""
    fs = spec.fs
    events: list[_Event] = []
    if spec.rest_only:
        return events
    end_s = n / fs - 1.0                    # rest at the end
    t = float(rng.uniform(2.0, 8.0))
    while t < end_s - 0.05:
        room = end_s - t
        if rng.random() < 0.55 or room < 3.5:
            kind, seconds = "twitch", _log_uniform(rng, 0.03, 0.45)
            if seconds > room:
                break
        else:
            kind = str(rng.choice(["tonic", "clonic", "mixed"], p=[0.4, 0.3, 0.3]))
            seconds = (_log_uniform(rng, 60.0, 600.0) if rng.random() < 0.1
                       else _log_uniform(rng, 3.0, 60.0))
            seconds = min(seconds, room)
        cramp = kind in ("tonic", "mixed") and rng.random() < spec.cramp_share
        drive = _drive(rng, kind, seconds, fs)
        i0 = round(t * fs)
        drive = drive[: max(0, n - i0)]
        events.append(_Event(i0, drive, kind, cramp, spec.cramp_cv if cramp else spec.isi_cv))
        gap = rng.uniform(0.8, 1.5) if rng.random() < 0.3 else rng.uniform(2.0, 20.0)
        t = (i0 + drive.shape[0]) / fs + gap
    return events


# ------------------------------------------------------------------------------ rest


def _pink(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """1/f noise (power) above 0.05 Hz."""
    f = np.fft.rfftfreq(n, 1.0 / fs)
    shape = np.where(f >= 0.05, 1.0 / np.sqrt(np.maximum(f, 0.05)), 0.0)
    return np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)


def _drift(rng: np.random.Generator, n: int, fs: float, peak_uv: float) -> np.ndarray:
    """Electrode drift: Brownian-like below ~0.3 Hz, cut off steeply by 1 Hz; peak ``peak_uv``."""
    if peak_uv <= 0:
        return np.zeros(n)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    fc = rng.uniform(0.05, 0.3)
    shape = 1.0 / (np.maximum(f, 0.01) * (1.0 + (f / fc) ** 4))
    shape[0] = 0.0
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)
    return x * peak_uv / max(float(np.abs(x).max()), 1e-12)


def _mains_phase(rng: np.random.Generator, spec: PhysioSpec, n: int) -> np.ndarray:
    """Phase of the grid's fundamental: offset plus a slow wander, within ±0.5 Hz."""
    assert spec.mains_hz is not None
    fs = spec.fs
    wander = _slow(rng, n, fs, rng.uniform(5.0, 30.0))
    wander *= spec.mains_wander_hz / max(float(np.abs(wander).max()), 1e-12)
    f = np.clip(spec.mains_hz + spec.mains_offset_hz + wander, spec.mains_hz - 0.5,
                spec.mains_hz + 0.5)
    return 2 * np.pi * np.cumsum(f) / fs


def _mains(rng: np.random.Generator, spec: PhysioSpec, phase: np.ndarray,
           amp_uv: float) -> np.ndarray:
    """One channel's pickup of the grid: fundamental, harmonics 2-7, a slow amplitude wander."""
    assert spec.mains_hz is not None
    n = phase.shape[0]
    z = np.exp(1j * phase)                  # harmonic k is Im(z^k e^{i phi_k})
    zk = z.copy()
    total = zk * np.exp(1j * rng.uniform(0, 2 * np.pi))
    for k, rel in enumerate(spec.harmonics, start=2):
        zk *= z
        if k * (spec.mains_hz + 0.5) < 0.45 * spec.fs:
            total += rel * np.exp(1j * rng.uniform(0, 2 * np.pi)) * zk
    out = total.imag
    swell = 1.0 + 0.2 * np.tanh(_slow(rng, n, spec.fs, rng.uniform(5.0, 30.0)))
    return amp_uv * swell * out


def _ecg(rng: np.random.Generator, n: int, fs: float, r_uv: float) -> np.ndarray:
    """Heartbeats at 50-110 beats/min with respiratory variation; R wave ``r_uv``."""
    waves = (  # (amplitude, delay s, width s): P, Q, R, S, T
        (rng.uniform(0.05, 0.15), -0.18, 0.022), (rng.uniform(-0.2, -0.05), -0.03, 0.008),
        (1.0, 0.0, rng.uniform(0.008, 0.013)), (rng.uniform(-0.35, -0.1), 0.03, 0.01),
        (rng.uniform(0.1, 0.35), rng.uniform(0.22, 0.3), 0.045),
    )
    half = round(0.45 * fs)
    tt = np.arange(-half, half + 1) / fs
    beat = sum(a * np.exp(-0.5 * ((tt - d) / w) ** 2) for a, d, w in waves)
    beat = beat / max(float(beat.max()), 1e-12)
    mean_rr = 60.0 / rng.uniform(50.0, 110.0)
    n_beats = int(n / fs / (0.7 * mean_rr)) + 2
    resp_hz, depth = rng.uniform(0.15, 0.4), rng.uniform(0.02, 0.08)
    even = np.arange(n_beats) * mean_rr
    rr = (mean_rr * (1.0 + depth * np.sin(2 * np.pi * resp_hz * even + rng.uniform(0, 2 * np.pi)))
          * rng.normal(1.0, 0.02, n_beats))
    times = rng.uniform(0, mean_rr) + np.concatenate([[0.0], np.cumsum(rr)[:-1]])
    idx = np.round(times * fs).astype(np.int64)
    ok = idx < n
    train = np.bincount(idx[ok], weights=rng.normal(1.0, 0.05, n_beats)[ok], minlength=n)[:n]
    return r_uv * signal.oaconvolve(train, beat)[half: half + n]


# ------------------------------------------------------------------------------ recording


def _render_ratio(fs: float) -> tuple[int, int]:
    """``(up, down)``: the potentials are summed at ``fs * up / down``, within :data:`RENDER_HZ`.

    Examples
    --------
    >>> [_render_ratio(fs) for fs in (200.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)]
    [(5, 1), (4, 1), (2, 1), (1, 1), (1, 1), (1, 2)]
    """
    lo, hi = RENDER_HZ
    if fs < lo:
        return math.ceil(lo / fs - 1e-9), 1
    if fs > hi:
        return 1, math.ceil(fs / hi - 1e-9)
    return 1, 1


def _channel_muscle(spike_rng: np.random.Generator, units: _Units, spec: PhysioSpec,
                    events: list[_Event], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The channel's unscaled sum of potentials at ``spec.fs`` (see :func:`_render_ratio`),
    and the sorted times of the discharges of its rendered units."""
    fs = spec.fs
    rte, pfr, e_max = recruitment(spec)
    step = max(1, int(fs // RENDER_HZ[0]))  # discharges from the drive at <= 1 kHz
    excitation = np.zeros(n)
    cv = np.full(n, spec.isi_cv)
    cramp = np.zeros(n, dtype=bool)
    for ev in events:
        i1 = ev.i0 + ev.drive.shape[0]
        excitation[ev.i0: i1] = ev.drive * e_max
        cv[ev.i0: i1] = ev.cv
        cramp[ev.i0: i1] = ev.cramp
    up, down = _render_ratio(fs)
    fs_m = fs * up / down
    n_m = -(-n * up // down)
    visible = units.visible
    pad = math.ceil(_SUPPORT * float(units.width_s[visible].max()) * 1.2 * fs_m) + 2
    summer = _Summer(n_m, fs_m, pad)
    fired: list[np.ndarray] = []
    fs_d = fs / step
    excitation, cv = excitation[::step], cv[::step]
    act = np.flatnonzero(excitation >= rte[0])
    e_act, cv_act = excitation[act], cv[act]
    top = float(e_act.max()) if act.size else -math.inf
    for i in range(spec.n_units):
        if rte[i] > top:
            break                           # thresholds increase: no later unit fires
        on = e_act >= rte[i]
        if not on.all():                    # the samples that recruit this unit recruit
            act, e_act, cv_act = act[on], e_act[on], cv_act[on]   # no fewer later ones
        if not visible[i]:
            continue
        rate = e_act - rte[i]               # firing_rate(), all recruited here
        rate *= spec.rate_gain
        rate += spec.min_rate
        np.minimum(rate, pfr[i], out=rate)
        times = _discharges(act, rate, fs_d, spike_rng, cv_act)
        if spec.doublet_prob > 0 and times.size:
            in_cramp = cramp[np.minimum((times * fs).astype(np.int64), n - 1)]
            double = in_cramp & (spike_rng.random(times.size) < spec.doublet_prob)
            if double.any():
                extra = times[double] + spike_rng.uniform(0.003, 0.010, int(double.sum()))
                times = np.sort(np.concatenate([times, extra[extra < n / fs]]))
        summer.add(spike_rng, times, float(units.width_s[i]), float(units.amp[i]),
                   float(units.mix[i]))
        fired.append(times)
    muscle = summer.signal()
    if up != down:      # to fs, through resample_poly's anti-alias (or anti-image) filter
        muscle = signal.resample_poly(muscle, down, up)[:n]
    return muscle, np.sort(np.concatenate(fired)) if fired else np.empty(0)


def _span(fired: np.ndarray, ev: _Event, fs: float, n: int) -> tuple[int, int] | None:
    """Samples ``[s0, s1)`` from the event's first discharge to its last, or None."""
    t0, t1 = ev.i0 / fs - 0.002, (ev.i0 + ev.drive.shape[0]) / fs + 0.02   # grid, doublets
    first, last = np.searchsorted(fired, (t0, t1))
    if last <= first:
        return None
    s0 = math.floor(fired[first] * fs)
    return s0, min(n, max(s0 + 1, math.floor(fired[last - 1] * fs) + 1))


def _rms(x: np.ndarray) -> float:
    return math.sqrt(float(np.mean(x * x))) if x.size else 0.0


def generate(spec: PhysioSpec, spasm_min_s: float = DEFAULT_SPASM_MIN_S) -> SyntheticRecording:
    """The recording of ``spec`` (seeded by ``spec.seed``) with its truth.

    The events, the motor units, the discharges, the rest noise, the mains,
    the ECG and the converter draw from separate streams of ``spec.seed``: a
    spec and its ``rest_only`` twin have the same noise, mains and ECG, so
    their difference is the muscle signal alone (to the converter's step).

    Parameters
    ----------
    spec : PhysioSpec
        The conditions (:func:`draw_spec`).
    spasm_min_s : float
        Twitch/spasm boundary of the truth's labels (:func:`~emg_pipeline.labels.label_for`).

    Returns
    -------
    SyntheticRecording
        ``unit`` is ``"counts"`` when ``spec.counts`` (samples are converter
        steps), else ``"uV"`` (quantised to the step). ``artefacts`` is empty.
    """
    streams = np.random.SeedSequence(spec.seed).spawn(7)
    plan_rng, unit_rng, spike_rng, noise_rng, mains_rng, ecg_rng, adc_rng = (
        np.random.default_rng(s) for s in streams)
    fs = float(spec.fs)
    n = round(spec.duration_s * fs)
    names = tuple(f"ch{i + 1}" for i in range(spec.n_channels))
    lo, hi = effective_band(fs, 20.0, 450.0)
    band = bandpass_sos(fs, lo, hi)
    settle = min(n // 2, round(fs))         # the band filter's start-up, left out of noise RMS
    # the start: rest noise x0.3 or x3, joined to the rest over 1 s
    start_gain = np.ones(n)
    if spec.start != "normal":
        t = np.arange(n) / fs
        w = _smooth_step_of(t - (spec.start_s - 0.5))
        start_gain = (0.3 if spec.start == "quiet" else 3.0) * (1.0 - w) + w
    grid = _mains_phase(mains_rng, spec, n) if spec.mains_hz is not None else None
    x = np.zeros((n, spec.n_channels))
    truth_rows: list[tuple] = []
    for c, name in enumerate(names):
        # rest noise: white plus 1/f at its in-band power ratio, then scaled in band
        white = noise_rng.standard_normal(n)
        pink = _pink(noise_rng, n, fs)
        white_band = signal.sosfilt(band, white)
        pink_band = signal.sosfilt(band, pink)
        a = 1.0 / max(_rms(white_band[settle:]), 1e-12)
        b = math.sqrt(spec.pink_ratio) / max(_rms(pink_band[settle:]), 1e-12)
        scale = spec.noise_uv / max(_rms((a * white_band + b * pink_band)[settle:]), 1e-12)
        rest = (a * scale) * white + (b * scale) * pink
        x[:, c] = rest * start_gain + _drift(noise_rng, n, fs, spec.drift_uv)
        # muscle: the events' discharges, scaled per event to its SNR
        events = _plan(plan_rng, spec, n)
        units = _draw_units(unit_rng, spec)
        if events:
            muscle, fired = _channel_muscle(spike_rng, units, spec, events, n)
            spans = [_span(fired, ev, fs, n) for ev in events]   # the truth
            in_band = signal.sosfilt(band, muscle)
            edges = [0] + [(events[k].i0 + events[k].drive.shape[0] + events[k + 1].i0) // 2
                           for k in range(len(events) - 1)] + [n]
            for k, span in enumerate(spans):
                if span is None:
                    continue
                s0, s1 = span
                target = spec.noise_uv * 10 ** ((spec.snr_db + plan_rng.uniform(-2, 2)) / 20)
                rms = _rms(in_band[s0:s1])
                if rms > 0:                 # the filter's memory of one segment is gone
                    muscle[edges[k]: edges[k + 1]] *= target / rms   # well before the next
                    in_band[edges[k]: edges[k + 1]] *= target / rms
            for ev, span in zip(events, spans, strict=True):
                if span is None:
                    continue
                s0, s1 = span
                local = spec.noise_uv * _rms(start_gain[s0:s1])
                snr = 20 * math.log10(max(_rms(in_band[s0:s1]), 1e-12) / local)
                on, off = s0 / fs, s1 / fs
                pattern = {"twitch": "phasic", "tonic": "tonic"}.get(ev.kind, "clonic")
                truth_rows.append((name, on, off, off - on,
                                   label_for(off - on, spasm_min_s).value, pattern, snr))
            x[:, c] += muscle
        if spec.ecg_channel == c:
            x[:, c] += _ecg(ecg_rng, n, fs, spec.ecg_ratio * spec.noise_uv)
        if grid is not None:
            x[:, c] += _mains(mains_rng, spec, grid, spec.mains_ratio * spec.noise_uv)
    # the converter: an offset, steps, the rails
    full = spec.full_scale_uv
    x += adc_rng.uniform(-0.1, 0.1, spec.n_channels) * full
    steps = np.clip(np.rint(x / spec.lsb_uv), -(2 ** (spec.bits - 1)), 2 ** (spec.bits - 1) - 1)
    samples = steps if spec.counts else steps * spec.lsb_uv
    truth = pd.DataFrame(truth_rows, columns=list(TRUTH_COLUMNS))
    truth = truth.sort_values(["onset_s", "channel"], kind="stable").reset_index(drop=True)
    artefacts = pd.DataFrame([], columns=list(ARTEFACT_COLUMNS))
    return SyntheticRecording(samples, fs, names, truth, artefacts,
                              unit="counts" if spec.counts else "uV")
