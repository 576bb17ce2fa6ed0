"""Randomized sEMG recordings with ground truth, drawn from wide parameter ranges.

The robustness benchmark (``emg-pipeline bench --suite robust``) draws every
recording's conditions at random from the ranges below, so that a detector
cannot be tuned to the look of one generator. This generator is written apart
from :func:`~emg_pipeline.sources.synthetic.simulate` (other spectra, noise,
envelopes, mains and artefact models); both must be passed.

Ranges, drawn per recording (log-uniform where a range spans decades):

========================= ==================================================================
sampling rate             200, 250, 500, 1000, 2000 or 4000 Hz
channels                  1-3
EMG spectrum              band-pass shaped, median frequency 40-150 Hz (at most 0.3 fs)
rest noise (in band)      white 1-10 µV, plus 1/f noise 0-2x its power, plus a random-walk
                          electrode drift of 0-500 µV (below the band)
resolution                8, 10, 12, 16 or 24 bits; rest noise of 0.5-50 steps, and at most
                          3 steps per 8 bits (0.5-3 for 8 bits, 0.5-12 for 10 bits: the
                          converter spans at least ±42 times the rest noise); samples in
                          µV or in counts (half of the recordings)
events                    twitches of 30-450 ms; spasms of 3-60 s, one in ten up to 10 min,
                          tonic, clonic (3-8 Hz bursts) or mixed (clonic on a tonic base);
                          rises and releases of 10 ms-1 s; rest between events 0.8-1.5 s
                          (three in ten) or 2-20 s; SNR per recording 3, 6, 12 or 20 dB,
                          each event within ±2 dB of it
start                     normal, quiet (noise x0.3) or noisy (noise x3) for 10-60 s
mains                     none (one in four), 50 or 60 Hz off by up to ±0.5 Hz, drifting at
                          up to 0.1 Hz/s (one grid: the same on every channel); harmonics
                          2-7 each 0-1.5x the fundamental; the fundamental 0.5-20x the
                          rest noise; its amplitude changing 3-fold within a second now
                          and then (movement near a cable)
ECG                       on one channel in three recordings: R waves 5-300x the rest noise
converter range           drift, mains (with its harmonics and swells) and ECG are capped
                          at 30 %, 25 % and 40 % of it
artefacts                 motion, electrode pops and cable knocks, 0-2 per minute each,
                          50-5000 µV; a lead-off (flat or at the rail, 5-60 s) in one
                          recording in ten
========================= ==================================================================

**Truth.** An event's onset and offset are where its activation first and
last reaches a tenth of its peak; it is a spasm when that lasts at least
``spasm_min_s`` (:func:`~emg_pipeline.labels.label_for`). **SNR** is the RMS
of the event's muscle activity over its extent divided by the rest noise RMS,
both in the pipeline's band.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import signal

from ..conditioning.filters import bandpass_sos, effective_band
from ..labels import DEFAULT_SPASM_MIN_S, label_for
from .synthetic import ARTEFACT_COLUMNS, TRUTH_COLUMNS, SyntheticRecording

__all__ = ["RandomSpec", "draw_spec", "generate"]

RATES_HZ = (200.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
SNR_LEVELS_DB = (3.0, 6.0, 12.0, 20.0)
BITS = (8, 10, 12, 16, 24)
_FLOOR_LEVEL = 0.1   # truth onset/offset: where the activation reaches this share of its peak


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


@dataclass(frozen=True)
class RandomSpec:
    """The conditions of one randomized recording (see the module docstring for ranges)."""

    fs: float
    n_channels: int
    duration_s: float
    snr_db: float
    median_freq_hz: float
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
    mains_rate_hz_per_s: float
    mains_ratio: float
    harmonics: tuple[float, ...]
    mains_swells_per_min: float
    ecg_channel: int | None
    ecg_ratio: float
    motion_per_min: float
    pops_per_min: float
    knocks_per_min: float
    lead_off: bool
    rest_only: bool
    seed: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    def conditions(self) -> dict[str, object]:
        """The spec as a flat dict (for result tables)."""
        d = asdict(self)
        d["harmonics"] = ",".join(f"{h:.2f}" for h in self.harmonics)
        d.pop("labels")
        return d


def draw_spec(rng: np.random.Generator, *, snr_db: float | None = None,
              rest_only: bool = False, duration_s: float | None = None) -> RandomSpec:
    """Draw the conditions of one recording.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    snr_db : float, optional
        Fix the SNR (default: one of :data:`SNR_LEVELS_DB`).
    rest_only : bool
        No contraction events: rest, with whatever artefacts and mains are drawn.
    duration_s : float, optional
        Fix the length (default 2-6 min).
    """
    fs = float(rng.choice(RATES_HZ))
    bits = int(rng.choice(BITS))
    noise = _log_uniform(rng, 1.0, 10.0)
    # a usable converter spans at least ±42 times the rest noise (an 8-bit board
    # such as the Myo has 1-3 steps of noise in ±127): 3 steps per 8 bits at most
    steps = _log_uniform(rng, 0.5, min(50.0, 3.0 * 2.0 ** (bits - 8)))
    has_mains = rng.random() >= 0.25
    harmonics = tuple(float(rng.uniform(0.0, 1.5)) if rng.random() < 0.5
                      else float(rng.uniform(0.0, 0.1)) for _ in range(6))
    start = str(rng.choice(["normal", "quiet", "noisy"]))
    return RandomSpec(
        fs=fs,
        n_channels=int(rng.integers(1, 4)),
        duration_s=float(duration_s) if duration_s is not None else float(rng.uniform(120, 360)),
        snr_db=float(snr_db) if snr_db is not None else float(rng.choice(SNR_LEVELS_DB)),
        median_freq_hz=min(rng.uniform(40.0, 150.0), 0.3 * fs),
        noise_uv=noise,
        pink_ratio=float(rng.uniform(0.0, 2.0)),
        drift_uv=float(rng.uniform(0.0, 500.0)),
        bits=bits,
        lsb_uv=noise / steps,
        counts=bool(rng.random() < 0.5),
        start=start,
        start_s=float(rng.uniform(10.0, 60.0)),
        mains_hz=float(rng.choice([50.0, 60.0])) if has_mains else None,
        mains_offset_hz=float(rng.uniform(-0.5, 0.5)),
        mains_rate_hz_per_s=float(rng.uniform(0.0, 0.1)),
        mains_ratio=_log_uniform(rng, 0.5, 20.0),
        harmonics=harmonics,
        mains_swells_per_min=float(rng.uniform(0.0, 2.0)),
        ecg_channel=int(rng.integers(0, 3)) if rng.random() < 1 / 3 else None,
        ecg_ratio=_log_uniform(rng, 5.0, 300.0),
        motion_per_min=float(rng.uniform(0.0, 2.0)),
        pops_per_min=float(rng.uniform(0.0, 2.0)),
        knocks_per_min=float(rng.uniform(0.0, 2.0)),
        lead_off=bool(rng.random() < 0.1),
        rest_only=rest_only,
        seed=int(rng.integers(0, 2**31)),
    )


# ------------------------------------------------------------------------------ pieces


def _shaped_noise(rng: np.random.Generator, n: int, fs: float, median_hz: float) -> np.ndarray:
    """Unit-RMS Gaussian noise, band-pass shaped so that its median frequency is ``median_hz``."""
    f = np.fft.rfftfreq(n, 1.0 / fs)
    # a second-order band-pass around a centre, its width a share of it
    centre = 0.8 * median_hz
    q = 0.6
    shape = (f / centre) / np.sqrt((1 - (f / centre) ** 2) ** 2 + (f / (q * centre)) ** 2)
    power = np.cumsum(shape**2)
    if power[-1] > 0:   # move the centre so that half the power lies below median_hz
        actual = f[np.searchsorted(power, 0.5 * power[-1])]
        centre *= median_hz / max(actual, 1e-9)
        shape = (f / centre) / np.sqrt((1 - (f / centre) ** 2) ** 2 + (f / (q * centre)) ** 2)
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)
    return x / max(float(x.std()), 1e-12)


def _pink(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """Unit-RMS 1/f noise above 1 Hz."""
    f = np.fft.rfftfreq(n, 1.0 / fs)
    shape = np.where(f >= 1.0, 1.0 / np.sqrt(np.maximum(f, 1.0)), 0.0)
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)
    return x / max(float(x.std()), 1e-12)


def _smooth_step(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / max(n, 1))


def _activation(rng: np.random.Generator, kind: str, seconds: float, fs: float) -> np.ndarray:
    """Activation envelope (peak 1) of one event of ``seconds``."""
    n = max(4, round(seconds * fs))
    t = np.arange(n) / fs
    if kind == "twitch":
        edge = max(1, round(rng.uniform(0.05, 0.4) * n))
        a = np.ones(n)
    else:
        edge = max(1, min(n // 4, round(_log_uniform(rng, 0.01, 1.0) * fs)))
        base = rng.uniform(0.6, 1.0) ** (t / max(seconds, 1e-9))     # fatigue: a slow decay
        wander = np.interp(t, np.linspace(0, seconds, 8 + int(seconds)),
                           rng.uniform(0.8, 1.2, 8 + int(seconds)))
        a = base * wander
        if kind in ("clonic", "mixed"):
            rate = rng.uniform(3.0, 8.0)
            duty = rng.uniform(0.3, 0.6)
            phase = (rate * t + rng.uniform()) % 1.0
            bursts = np.where(phase < duty, np.sin(np.pi * phase / duty), 0.0)
            floor = 0.0 if kind == "clonic" else rng.uniform(0.3, 0.6)
            a = a * (floor + (1.0 - floor) * bursts)
    ramp = _smooth_step(edge)
    a[:edge] *= ramp
    a[n - edge:] *= ramp[::-1]
    return a / max(float(a.max()), 1e-12)


def _truth_span(a: np.ndarray) -> tuple[int, int]:
    above = np.flatnonzero(a >= _FLOOR_LEVEL * a.max())
    return int(above[0]), int(above[-1]) + 1


def _grid_phase(spec: RandomSpec, n: int) -> np.ndarray:
    """Phase of the grid's fundamental, one for every channel of the recording.

    The frequency: an offset, then a random walk at up to the drawn rate,
    within ±0.5 Hz. Drawn from its own stream, so that the other draws do not
    depend on it.
    """
    assert spec.mains_hz is not None
    rng = np.random.default_rng([spec.seed, 50])
    fs = spec.fs
    step_s = 0.5
    n_steps = int(n / fs / step_s) + 2
    walk = np.cumsum(rng.uniform(-1, 1, n_steps)) * spec.mains_rate_hz_per_s * step_s
    freq = np.clip(spec.mains_hz + spec.mains_offset_hz + walk, spec.mains_hz - 0.5,
                   spec.mains_hz + 0.5)
    f = np.interp(np.arange(n) / fs, np.arange(n_steps) * step_s, freq)
    return 2 * np.pi * np.cumsum(f) / fs


def _mains(rng: np.random.Generator, spec: RandomSpec, phase: np.ndarray,
           amp_uv: float) -> np.ndarray:
    """Mains pickup on one channel: the grid's harmonics 1-7, swells of its amplitude."""
    assert spec.mains_hz is not None
    fs = spec.fs
    n = phase.shape[0]
    envelope = np.ones(n)
    for _ in range(rng.poisson(spec.mains_swells_per_min * n / fs / 60.0)):
        i0 = int(rng.integers(0, n))
        rise, hold = round(rng.uniform(0.1, 1.0) * fs), round(rng.uniform(1.0, 10.0) * fs)
        shape = np.concatenate([_smooth_step(rise), np.ones(hold), _smooth_step(rise)[::-1]])
        i1 = min(n, i0 + shape.shape[0])
        envelope[i0:i1] *= 1.0 + 2.0 * shape[: i1 - i0]      # up to 3x
    out = np.sin(phase + rng.uniform(0, 2 * np.pi))
    for k, rel in enumerate(spec.harmonics, start=2):
        if k * (spec.mains_hz + 0.5) < 0.5 * fs:
            out += rel * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return amp_uv * envelope * out


def _ecg(rng: np.random.Generator, n: int, fs: float, r_uv: float) -> np.ndarray:
    """A heartbeat train at 50-110 beats/min: QRS as a difference of Gaussians, then T."""
    half = round(0.4 * fs)
    t = np.arange(-half, half) / fs
    qrs_w = rng.uniform(0.008, 0.015)
    beat = (np.exp(-0.5 * (t / qrs_w) ** 2) - 0.3 * np.exp(-0.5 * ((t - 0.02) / (2 * qrs_w)) ** 2)
            + rng.uniform(0.1, 0.35) * np.exp(-0.5 * ((t - 0.25) / 0.04) ** 2))
    out = np.zeros(n + 2 * half)
    period = 60.0 / rng.uniform(50.0, 110.0)
    k = rng.uniform(0, period)
    while k * fs < n:
        i = round(k * fs)
        out[i: i + 2 * half] += beat * rng.normal(1.0, 0.05)
        k += period * rng.normal(1.0, 0.05)
    return r_uv * out[half: half + n] / max(float(beat.max()), 1e-12)


def _artefact(rng: np.random.Generator, kind: str, fs: float) -> np.ndarray:
    amp = _log_uniform(rng, 50.0, 5000.0) * rng.choice((-1.0, 1.0))
    if kind == "motion":
        seconds = rng.uniform(0.2, 1.5)
        t = np.arange(round(seconds * fs)) / fs
        return amp * np.sin(np.pi * t / seconds) ** 2 * np.sin(
            2 * np.pi * rng.uniform(0.5, 5.0) * t)
    if kind == "pop":
        tau = rng.uniform(0.05, 1.5)
        t = np.arange(round(4 * tau * fs)) / fs
        return amp * np.exp(-t / tau)
    f = rng.uniform(5.0, 25.0)
    d = rng.uniform(0.03, 0.2)
    t = np.arange(round(4 * d * fs)) / fs
    return amp * np.exp(-t / d) * np.sin(2 * np.pi * f * t)


# ------------------------------------------------------------------------------ recording


def generate(spec: RandomSpec, spasm_min_s: float = DEFAULT_SPASM_MIN_S) -> SyntheticRecording:
    """The recording of ``spec`` (seeded by ``spec.seed``) with its truth.

    Returns
    -------
    SyntheticRecording
        ``unit`` is ``"counts"`` when ``spec.counts`` (samples are ADC steps),
        else ``"uV"`` (quantised to the step).
    """
    rng = np.random.default_rng(spec.seed)
    fs = spec.fs
    names = tuple(f"ch{i + 1}" for i in range(spec.n_channels))
    lo, hi = effective_band(fs, 20.0, 450.0)
    band = bandpass_sos(fs, lo, hi)
    truth_rows: list[tuple] = []
    art_rows: list[tuple] = []
    # events first: a long spasm may lengthen the recording
    plans: list[list[tuple[int, np.ndarray, str]]] = []
    n = round(spec.duration_s * fs)
    lead_off: list[tuple[int, int] | None] = []
    for _ in names:
        plan: list[tuple[int, np.ndarray, str]] = []
        off = None
        if spec.lead_off:
            i0 = int(rng.integers(round(0.2 * n), round(0.8 * n)))
            off = (i0, i0 + round(rng.uniform(5.0, 60.0) * fs))
        t = float(rng.uniform(2.0, 8.0)) if not spec.rest_only else math.inf
        while t < spec.duration_s - 1.0:
            r = rng.random()
            if r < 0.55:
                kind, seconds = "twitch", _log_uniform(rng, 0.03, 0.45)
            else:
                kind = str(rng.choice(["tonic", "clonic", "mixed"], p=[0.4, 0.3, 0.3]))
                seconds = (_log_uniform(rng, 60.0, 600.0) if rng.random() < 0.1
                           else _log_uniform(rng, 3.0, 60.0))
            a = _activation(rng, kind, seconds, fs)
            i0 = round(t * fs)
            if off is not None and i0 < off[1] and i0 + a.shape[0] > off[0]:
                t = off[1] / fs + 2.0
                continue
            plan.append((i0, a, kind))
            n = max(n, i0 + a.shape[0] + round(2.0 * fs))
            gap = rng.uniform(0.8, 1.5) if rng.random() < 0.3 else rng.uniform(2.0, 20.0)
            t = (i0 + a.shape[0]) / fs + gap
        plans.append(plan)
        lead_off.append(off)
    x = np.zeros((n, spec.n_channels))
    # the converter's range: drift, mains and ECG stay within a part of it (no one
    # records with a device that they would hold at its rails)
    full = (2 ** (spec.bits - 1) - 1) * spec.lsb_uv
    grid = _grid_phase(spec, n) if spec.mains_hz is not None else None
    for c, name in enumerate(names):
        white = rng.standard_normal(n)
        pink = _pink(rng, n, fs) * math.sqrt(spec.pink_ratio)
        rest = white + pink
        rest_band = signal.sosfilt(band, rest)
        rest *= spec.noise_uv / max(float(rest_band[round(fs):].std()), 1e-12)
        if spec.start != "normal":
            k = round(spec.start_s * fs)
            rest[:k] *= 0.3 if spec.start == "quiet" else 3.0
        drift = np.cumsum(rng.standard_normal(n))
        drift = signal.sosfiltfilt(signal.butter(2, 0.5, fs=fs, output="sos"), drift)
        drift *= min(spec.drift_uv, 0.3 * full) / max(float(np.abs(drift).max()), 1e-12)
        x[:, c] = rest + drift
        emg = _shaped_noise(rng, n, fs, spec.median_freq_hz)
        activation = np.zeros(n)
        target = spec.noise_uv * 10 ** (spec.snr_db / 20.0)
        for i0, a, kind in plans[c]:
            i1 = min(n, i0 + a.shape[0])
            s0, s1 = _truth_span(a[: i1 - i0])
            piece = emg[i0:i1] * a[: i1 - i0]
            in_band = signal.sosfilt(band, np.concatenate([np.zeros(round(0.2 * fs)), piece]))
            rms = float(np.sqrt(np.mean(in_band[round(0.2 * fs) + s0: round(0.2 * fs) + s1]
                                        ** 2)))
            gain = target * 10 ** (rng.uniform(-2.0, 2.0) / 20.0) / max(rms, 1e-12)
            activation[i0:i1] += a[: i1 - i0] * gain
            on, off_s = (i0 + s0) / fs, (i0 + s1) / fs
            dur = off_s - on
            pattern = "phasic" if kind == "twitch" else ("tonic" if kind == "tonic" else "clonic")
            snr = 20 * math.log10(max(gain * rms, 1e-12) / spec.noise_uv)
            truth_rows.append((name, on, off_s, dur, label_for(dur, spasm_min_s).value,
                               pattern, snr))
        x[:, c] += emg * activation
        if spec.ecg_channel is not None and spec.ecg_channel == c:
            x[:, c] += _ecg(rng, n, fs, min(spec.ecg_ratio * spec.noise_uv, 0.4 * full))
        for kind, rate in (("motion", spec.motion_per_min), ("pop", spec.pops_per_min),
                           ("knock", spec.knocks_per_min)):
            for _ in range(rng.poisson(rate * n / fs / 60.0)):
                shape = _artefact(rng, kind, fs)
                i0 = int(rng.integers(0, max(1, n - shape.shape[0])))
                i1 = min(n, i0 + shape.shape[0])
                x[i0:i1, c] += shape[: i1 - i0]
                art_rows.append((name, i0 / fs, i1 / fs, kind))
        if grid is not None:
            amp = min(spec.mains_ratio * spec.noise_uv * rng.uniform(0.7, 1.3), 0.25 * full / 3)
            x[:, c] += _mains(rng, spec, grid, amp)
    # the converter: offset, steps, range
    x += rng.uniform(-0.1, 0.1) * full
    for c, off in enumerate(lead_off):
        if off is not None:
            i0, i1 = off[0], min(n, off[1])
            x[i0:i1, c] = full if rng.random() < 0.5 else x[i0, c]
            art_rows.append((names[c], i0 / fs, i1 / fs, "lead-off"))
    steps = np.clip(np.rint(x / spec.lsb_uv), -(2 ** (spec.bits - 1)), 2 ** (spec.bits - 1) - 1)
    samples = steps if spec.counts else steps * spec.lsb_uv
    truth = pd.DataFrame(truth_rows, columns=list(TRUTH_COLUMNS))
    truth = truth.sort_values(["onset_s", "channel"], kind="stable").reset_index(drop=True)
    artefacts = pd.DataFrame(art_rows, columns=list(ARTEFACT_COLUMNS))
    return SyntheticRecording(samples, fs, names, truth, artefacts,
                              unit="counts" if spec.counts else "uV")
