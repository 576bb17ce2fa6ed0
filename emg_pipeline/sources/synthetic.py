"""Synthetic sEMG recordings with ground truth, for tests, benchmarks and the demo.

The model, in µV, per channel:

* **Muscle activity**: Gaussian noise shaped to the Shwedyk-Balasubramanian-Scott
  spectrum (``f_l = 60 Hz``, ``f_h = 120 Hz``; peak near 65 Hz, median near
  96 Hz), multiplied by an activation envelope. Event types:

  - *twitch*: a brief burst, 50-800 ms (log-uniform), short ramps;
  - *tonic spasm*: fast rise (50-300 ms), then a slow decay to 40-70 % over its
    course, slow amplitude wander, release over 0.2-0.5 s; 2.5-60 s;
  - *clonic spasm*: rhythmic bursts at 3.5-7.5 Hz (each 30-50 % of the cycle,
    5 % period jitter, slower at start and end), merged by the detector into
    one episode; 2.5-30 s.

  Twitches last under 1 s and spasms over 2.5 s, so the true label (by
  :func:`~emg_pipeline.labels.label_for`) is never within 0.5 s of the default
  2 s boundary.
* **Baseline**: white amplifier noise (``noise_uv`` RMS within the band) plus a
  slow electrode drift.
* **Mains**: 50 or 60 Hz with 2nd, 3rd, 5th and 7th harmonics; the frequency
  wanders by up to ``mains_drift_hz`` over minutes.
* **ECG** (trunk sites): PQRST beats at 55-95 beats/min with beat-to-beat
  variability; ``ecg_uv`` is the R-wave amplitude.
* **Artefacts**: motion (smooth 1-8 Hz bursts of 0.1-0.6 s), electrode pops
  (a step that decays over 0.2-2 s) and cable knocks (a damped 5-15 Hz
  oscillation of 50-150 ms), hundreds of µV to a few mV.

**SNR** is the RMS of an event's muscle activity over its extent divided by the
RMS of the baseline, both within the pipeline's band (20-450 Hz, the upper
corner clamped to 0.45 fs). Each event is scaled to the requested SNR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import signal

from ..conditioning.filters import bandpass_sos, effective_band
from ..labels import DEFAULT_SPASM_MIN_S, label_for

__all__ = ["SyntheticRecording", "emg_noise", "simulate"]

TRUTH_COLUMNS = ("channel", "onset_s", "offset_s", "duration_s", "label", "pattern", "snr_db")
ARTEFACT_COLUMNS = ("channel", "onset_s", "offset_s", "kind")


@dataclass(frozen=True)
class SyntheticRecording:
    """A synthetic recording and what is really in it.

    Attributes
    ----------
    signal : ndarray, shape (n_samples, n_channels)
        Samples in µV.
    fs : float
        Sampling rate in Hz.
    channels : tuple of str
        Channel names.
    truth : DataFrame
        True contraction events: ``channel, onset_s, offset_s, duration_s,
        label, pattern, snr_db``.
    artefacts : DataFrame
        Artefacts added: ``channel, onset_s, offset_s, kind``.
    unit : str
        Always ``"uV"``.
    """

    signal: np.ndarray
    fs: float
    channels: tuple[str, ...]
    truth: pd.DataFrame
    artefacts: pd.DataFrame
    unit: str = "uV"

    @property
    def duration_s(self) -> float:
        """Length of the recording in seconds."""
        return self.signal.shape[0] / self.fs


def emg_noise(
    rng: np.random.Generator, n: int, fs: float, f_low: float = 60.0, f_high: float = 120.0
) -> np.ndarray:
    """Unit-variance Gaussian noise with the Shwedyk sEMG spectrum.

    ``PSD(f) ∝ f_h⁴ f² / ((f² + f_l²)(f² + f_h²)²)``, shaped in the frequency
    domain.

    Examples
    --------
    >>> x = emg_noise(np.random.default_rng(0), 4000, 1000.0)
    >>> round(float(x.std()), 2)
    1.0
    """
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    shape = np.sqrt(f_high**4 * f**2 / ((f**2 + f_low**2) * (f**2 + f_high**2) ** 2))
    x = np.fft.irfft(spec * shape, n)
    return x / x.std()


def _ramp(n: int) -> np.ndarray:
    """Raised-cosine ramp from 0 to 1 over n samples."""
    if n <= 0:
        return np.empty(0)
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)


def _twitch(rng: np.random.Generator, fs: float) -> np.ndarray:
    d = math.exp(rng.uniform(math.log(0.05), math.log(0.8)))
    n = max(4, round(d * fs))
    edge = max(1, min(round(0.02 * fs), n // 4))
    a = np.ones(n)
    a[:edge] = _ramp(edge)
    a[n - edge :] = _ramp(edge)[::-1]
    return a


def _tonic(rng: np.random.Generator, fs: float, max_s: float) -> np.ndarray:
    d = math.exp(rng.uniform(math.log(2.5), math.log(max(2.6, min(60.0, max_s)))))
    n = round(d * fs)
    rise = round(rng.uniform(0.05, 0.3) * fs)
    release = round(rng.uniform(0.2, 0.5) * fs)
    t = np.arange(n) / fs
    end_level = rng.uniform(0.4, 0.7)
    a = end_level ** (t / d)  # slow decay to end_level
    wander = signal.sosfiltfilt(
        signal.butter(2, 1.0, fs=fs, output="sos"), rng.standard_normal(n + 64)
    )[32:-32]
    a *= 1.0 + 0.15 * wander / max(wander.std(), 1e-12)
    a[:rise] *= _ramp(rise)
    a[n - release :] *= _ramp(release)[::-1]
    return np.clip(a, 0.0, None)


def _clonic(rng: np.random.Generator, fs: float, max_s: float) -> np.ndarray:
    d = math.exp(rng.uniform(math.log(2.5), math.log(max(2.6, min(30.0, max_s)))))
    n = round(d * fs)
    rate = rng.uniform(3.5, 7.5)
    a = np.zeros(n)
    t = 0.0
    while True:
        # clonus slows at the start and the end of an episode
        frac = t / d
        slow = 1.0 - 0.25 * (max(0.0, 0.15 - frac) + max(0.0, frac - 0.85)) / 0.15
        period = rng.normal(1.0, 0.05) / (rate * slow)
        width = rng.uniform(0.3, 0.5) * period
        i0, i1 = round(t * fs), round((t + width) * fs)
        if i1 >= n:
            break
        w = i1 - i0
        a[i0:i1] = np.sin(np.pi * (np.arange(w) + 0.5) / w) * rng.uniform(0.7, 1.0)
        t += period
    last = np.flatnonzero(a > 0)
    return a[: last[-1] + 1] if last.size else a


def _ecg(rng: np.random.Generator, n: int, fs: float, r_uv: float) -> np.ndarray:
    """PQRST beats; amplitude of R = r_uv."""
    waves = (  # (amplitude, delay s, width s)
        (0.12, -0.20, 0.025), (-0.12, -0.035, 0.010), (1.0, 0.0, 0.011),
        (-0.25, 0.035, 0.012), (0.30, 0.28, 0.05),
    )
    half = round(0.5 * fs)
    tt = np.arange(-half, half) / fs
    beat = sum(a * np.exp(-0.5 * ((tt - d) / w) ** 2) for a, d, w in waves)
    out = np.zeros(n + 2 * half)
    rate = rng.uniform(55, 95) / 60.0
    t = rng.uniform(0, 1.0 / rate)
    while t * fs < n:
        i = round(t * fs)
        out[i : i + 2 * half] += beat * rng.normal(1.0, 0.03)
        t += rng.normal(1.0, 0.04) / rate
    return r_uv * out[half : half + n]


def _mains_phase(rng: np.random.Generator, n: int, fs: float, f0: float,
                 drift_hz: float) -> np.ndarray:
    """Phase of the grid's fundamental; its frequency wanders by up to ``drift_hz``."""
    t = np.arange(n) / fs
    period = rng.uniform(120.0, 600.0)
    f = f0 + drift_hz * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return 2 * np.pi * np.cumsum(f) / fs


def _mains(rng: np.random.Generator, phase: np.ndarray, fs: float, f0: float,
           amp: float) -> np.ndarray:
    """Mains pickup on one channel: its own amplitude and phases, the grid's frequency."""
    out = np.zeros(phase.shape[0])
    amp *= rng.uniform(0.5, 1.5)
    for k, rel in ((1, 1.0), (2, 0.05), (3, 0.3), (5, 0.15), (7, 0.05)):
        if k * f0 < 0.5 * fs:
            out += amp * rel * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return out


def _artefact(rng: np.random.Generator, kind: str, fs: float) -> np.ndarray:
    amp = math.exp(rng.uniform(math.log(200.0), math.log(3000.0))) * rng.choice((-1.0, 1.0))
    if kind == "motion":
        w = rng.uniform(0.1, 0.6)
        f = rng.uniform(1.0, 8.0)
        t = np.arange(-round(2 * w * fs), round(2 * w * fs)) / fs
        return amp * np.exp(-0.5 * (t / (w / 2)) ** 2) * np.cos(2 * np.pi * f * t)
    if kind == "pop":
        tau = rng.uniform(0.2, 2.0)
        t = np.arange(round(5 * tau * fs)) / fs
        return amp * np.exp(-t / tau)
    # cable knock: damped oscillation
    f = rng.uniform(5.0, 15.0)
    d = rng.uniform(0.05, 0.15)
    t = np.arange(round(3 * d * fs)) / fs
    return amp * np.exp(-t / d) * np.sin(2 * np.pi * f * t)


def simulate(
    rng: np.random.Generator,
    fs: float = 1000.0,
    duration_s: float = 60.0,
    n_channels: int = 2,
    *,
    channels: Sequence[str] | None = None,
    snr_db: float = 20.0,
    noise_uv: float = 3.0,
    events: bool = True,
    rest_s: tuple[float, float] = (2.0, 10.0),
    mix: tuple[float, float, float] = (0.6, 0.25, 0.15),
    mains_hz: float | None = 50.0,
    mains_uv: float = 20.0,
    mains_drift_hz: float = 0.3,
    ecg_uv: float | Sequence[float] = 0.0,
    motion_per_min: float = 0.0,
    pops_per_min: float = 0.0,
    knocks_per_min: float = 0.0,
    lead_in_s: float = 3.0,
    spasm_min_s: float = DEFAULT_SPASM_MIN_S,
) -> SyntheticRecording:
    """Generate a synthetic sEMG recording and its ground truth.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the only one used).
    fs : float
        Sampling rate in Hz.
    duration_s : float
        Length in seconds.
    n_channels : int
        Number of channels (ignored when ``channels`` is given).
    channels : sequence of str, optional
        Channel names, e.g. muscle sites.
    snr_db : float
        Event SNR in dB (see the module docstring).
    noise_uv : float
        Baseline RMS within the band, µV.
    events : bool
        Add contraction events (False gives rest only).
    rest_s : tuple of float
        Range of the rest intervals between events on a channel.
    mix : tuple of float
        Probabilities of twitch, tonic spasm and clonic spasm.
    mains_hz : float or None
        Mains frequency, or None for none.
    mains_uv : float
        Amplitude of the mains fundamental, µV.
    mains_drift_hz : float
        Largest deviation of the mains frequency.
    ecg_uv : float or sequence of float
        R-wave amplitude of ECG contamination, per channel or for all.
    motion_per_min, pops_per_min, knocks_per_min : float
        Mean rates of motion artefacts, electrode pops and cable knocks per
        channel.
    lead_in_s : float
        Rest at the start before the first event.
    spasm_min_s : float
        Twitch/spasm boundary of the truth's labels (:func:`~emg_pipeline.labels.label_for`);
        pass the pipeline's ``spasm_min_s`` when it is not the default.

    Returns
    -------
    SyntheticRecording

    Examples
    --------
    >>> rec = simulate(np.random.default_rng(3), fs=500.0, duration_s=30.0)
    >>> rec.signal.shape, set(rec.truth["label"]) <= {"twitch", "spasm"}
    ((15000, 2), True)
    """
    fs = float(fs)
    n = round(duration_s * fs)
    if channels is not None:
        names = tuple(channels)
    else:
        names = tuple(f"ch{i + 1}" for i in range(n_channels))
    C = len(names)
    ecg = np.broadcast_to(np.asarray(ecg_uv, dtype=float), (C,))
    lo, hi = effective_band(fs, 20.0, 450.0)
    sos = bandpass_sos(fs, lo, hi)
    band_fraction = (hi - lo) / (fs / 2)
    x = np.zeros((n, C))
    grid = _mains_phase(rng, n, fs, mains_hz, mains_drift_hz) if mains_hz else None
    truth_rows: list[tuple] = []
    art_rows: list[tuple] = []
    for c, name in enumerate(names):
        base = rng.standard_normal(n) * noise_uv / math.sqrt(band_fraction)
        drift = signal.sosfiltfilt(signal.butter(1, 0.5, fs=fs, output="sos"),
                                   rng.standard_normal(n)) * 30.0 * math.sqrt(fs / 1000.0)
        x[:, c] = base + drift
        if events:
            activation = np.zeros(n)
            spans = []
            t = lead_in_s
            while True:
                kind = rng.choice(3, p=np.asarray(mix) / np.sum(mix))
                room = duration_s - t - 1.0
                if room < 1.0:
                    break
                if kind == 0:
                    a, pattern = _twitch(rng, fs), "phasic"
                elif room < 3.0:
                    break
                elif kind == 1:
                    a, pattern = _tonic(rng, fs, room), "tonic"
                else:
                    a, pattern = _clonic(rng, fs, room), "clonic"
                i0 = round(t * fs)
                i1 = min(n, i0 + a.shape[0])
                activation[i0:i1] = a[: i1 - i0]
                spans.append((i0, i1, pattern))
                t = i1 / fs + rng.uniform(*rest_s)
            emg = emg_noise(rng, n, fs) * activation
            emg_band = signal.sosfiltfilt(sos, emg)
            target = noise_uv * 10 ** (snr_db / 20.0)
            for i0, i1, pattern in spans:
                rms = math.sqrt(float(np.mean(emg_band[i0:i1] ** 2)))
                if rms > 0:
                    emg[i0:i1] *= target / rms
                dur = (i1 - i0) / fs
                label = label_for(dur, spasm_min_s).value
                truth_rows.append((name, i0 / fs, i1 / fs, dur, label, pattern, float(snr_db)))
            x[:, c] += emg
        if ecg[c] > 0:
            x[:, c] += _ecg(rng, n, fs, float(ecg[c]))
        for kind, rate in (("motion", motion_per_min), ("pop", pops_per_min),
                           ("knock", knocks_per_min)):
            count = rng.poisson(rate * duration_s / 60.0) if rate > 0 else 0
            for _ in range(count):
                shape = _artefact(rng, kind, fs)
                i0 = int(rng.integers(0, max(1, n - shape.shape[0])))
                i1 = min(n, i0 + shape.shape[0])
                x[i0:i1, c] += shape[: i1 - i0]
                art_rows.append((name, i0 / fs, i1 / fs, kind))
        if grid is not None and mains_uv > 0:
            x[:, c] += _mains(rng, grid, fs, float(mains_hz), mains_uv)
    truth = pd.DataFrame(truth_rows, columns=list(TRUTH_COLUMNS))
    truth = truth.sort_values(["onset_s", "channel"], kind="stable").reset_index(drop=True)
    artefacts = pd.DataFrame(art_rows, columns=list(ARTEFACT_COLUMNS))
    artefacts = artefacts.sort_values(["onset_s", "channel"], kind="stable").reset_index(drop=True)
    return SyntheticRecording(x, fs, names, truth, artefacts)
