"""The ``semi`` suite: real EMG with exact truth, and the agreement of two devices.

**Semi-synthetic recordings** (:mod:`emg_pipeline.sources.semisynthetic`):
real rest and real contraction stretches cut from the shared recordings
(``../shared/data``) and spliced into new 60 s recordings, one device per
recording (the devices in turn); the truth is where each contraction stretch
was placed. Each is streamed through the pipeline in 20 ms chunks with default
settings and scored against its truth (:func:`emg_pipeline.metrics.score`: same
channel, overlapping, onsets within 250 ms). The table gives per device the
median and the worst decile (10th percentile over the recordings) of F1.

**Two-device agreement** (:func:`simulate_devices`, :func:`agreement`): one
underlying signal (a semi-synthetic recording, or a
:func:`~emg_pipeline.sources.randomized.generate` recording at 12 dB without
motion, pop, knock or lead-off artefacts, 120 s: its quiet or noisy start
lasts 10-60 s) seen by two simulated devices:

- device A: 16-bit converter spanning 1.25x the largest excursion of each
  channel from its median, plus white noise 30 dB under the channel's rest
  (in band);
- device B: gain x0.37, plus white noise 6 dB under the (scaled) rest (in
  band), on an 8-bit converter whose step is a third of the scaled rest RMS
  (codes -128..127 around the channel's median: large excursions clip).

"Rest RMS" is the in-band (20-450 Hz, clamped) noise floor of the channel
outside its truth spans (0.5 s margins): the median of its power spectral
density over the band times the bandwidth, so that mains lines do not count.
Both are streamed through the pipeline (default settings, 20 ms chunks); B's
episodes are scored against A's (:func:`emg_pipeline.metrics.score`): the F1
of agreement, goal at least 0.90.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import signal

from .. import metrics
from ..conditioning.filters import effective_band
from ..pipeline import Pipeline
from ..run import run
from ..sources import randomized, semisynthetic
from ..sources.synthetic import SyntheticRecording
from .common import decile as _decile
from .common import finite_median as _median
from .common import fmt, markdown, seeded_rng
from .synthetic import LIVE_CHUNK_S, SPASM_MIN_S

__all__ = ["agreement", "run_semi", "section", "simulate_devices"]

DURATION_S = 60.0
RANDOMIZED_S = 120.0   # the generator's shortest: its quiet or noisy start lasts 10-60 s
AGREEMENT_GOAL = 0.90
AGREEMENT_SNR_DB = 12.0
B_GAIN = 0.37
B_NOISE_DB = -6.0
B_STEP_OF_REST = 1.0 / 3.0
A_NOISE_DB = -30.0
A_BITS, B_BITS = 16, 8


# ---------------------------------------------------------------------------- helpers


def _episodes(rec: SyntheticRecording) -> tuple[pd.DataFrame, float]:
    """Stream ``rec`` through a default pipeline in 20 ms chunks; its episodes and the time."""
    t0 = time.perf_counter()
    pipe = Pipeline(rec.fs, rec.channels, unit=rec.unit, spasm_min_s=SPASM_MIN_S)
    step = max(1, round(LIVE_CHUNK_S * rec.fs))
    chunks = (rec.signal[i : i + step] for i in range(0, rec.signal.shape[0], step))
    run(chunks, pipe)
    return pipe.episodes_frame(), time.perf_counter() - t0


def _rest_rms(rec: SyntheticRecording) -> np.ndarray:
    """Per channel: the in-band noise floor of the rest (outside the truth spans, 0.5 s margins).

    The floor is the median of the rest's power spectral density over the band
    times the bandwidth, so that mains lines (narrow peaks) do not count.
    """
    lo, hi = effective_band(rec.fs, 20.0, 450.0)
    sos = signal.butter(4, [lo, hi], btype="bandpass", fs=rec.fs, output="sos")
    x = rec.signal - np.median(rec.signal, axis=0)
    band = signal.sosfiltfilt(sos, x, axis=0)
    out = np.empty(len(rec.channels))
    t = np.arange(x.shape[0]) / rec.fs
    nper = max(16, round(0.5 * rec.fs))
    for c, name in enumerate(rec.channels):
        rest = np.ones(x.shape[0], dtype=bool)
        for on, off in rec.truth.loc[rec.truth["channel"] == name, ["onset_s", "offset_s"]
                                     ].itertuples(index=False):
            rest &= (t < on - 0.5) | (t >= off + 0.5)
        v = band[rest, c] if rest.sum() >= 4 * nper else band[:, c]
        f, p = signal.welch(v, rec.fs, nperseg=min(nper, v.size))
        inside = (f >= lo) & (f <= hi)
        out[c] = float(np.sqrt(np.median(p[inside]) * (hi - lo)))
    return out


# ---------------------------------------------------------------------- two devices


def simulate_devices(rec: SyntheticRecording, rng: np.random.Generator
                     ) -> tuple[SyntheticRecording, SyntheticRecording]:
    """The signal of ``rec`` as seen by device A and by device B (see the module docstring).

    Parameters
    ----------
    rec : SyntheticRecording
        The underlying signal and its truth.
    rng : numpy.random.Generator
        Source of the devices' noise.

    Returns
    -------
    (SyntheticRecording, SyntheticRecording)
        Device A and device B, in ``rec.unit`` (B's gain is not corrected), with
        ``rec``'s truth.
    """
    x = np.asarray(rec.signal, dtype=float)
    med = np.median(x, axis=0)
    dev = x - med
    rest = np.maximum(_rest_rms(rec), 1e-12)
    lo, hi = effective_band(rec.fs, 20.0, 450.0)
    band_fraction = (hi - lo) / (0.5 * rec.fs)

    def white(level: np.ndarray) -> np.ndarray:  # in-band RMS ``level`` per channel
        return rng.standard_normal(x.shape) * level / math.sqrt(band_fraction)

    span = 1.25 * np.maximum(np.max(np.abs(dev), axis=0), 1e-12)
    lsb_a = 2.0 * span / 2**A_BITS
    a = np.round((dev + white(rest * 10 ** (A_NOISE_DB / 20))) / lsb_a) * lsb_a
    a = med + np.clip(a, -span, span - lsb_a)
    step_b = B_GAIN * rest * B_STEP_OF_REST
    b = B_GAIN * dev + white(B_GAIN * rest * 10 ** (B_NOISE_DB / 20))
    codes = np.clip(np.round(b / step_b), -(2 ** (B_BITS - 1)), 2 ** (B_BITS - 1) - 1)
    b = B_GAIN * med + codes * step_b
    return (dataclasses.replace(rec, signal=a), dataclasses.replace(rec, signal=b))


def agreement(rec_a: SyntheticRecording, rec_b: SyntheticRecording) -> dict[str, Any]:
    """Stream both recordings through the pipeline; score B's episodes against A's.

    Parameters
    ----------
    rec_a, rec_b : SyntheticRecording
        The same signal seen by two devices (same rate and channels).

    Returns
    -------
    dict
        ``f1``, ``tp``, ``fp``, ``fn`` and ``onset_mae_ms`` of B against A,
        ``label_agreement``, ``n_a`` and ``n_b`` (episodes), ``f1_a_truth`` and
        ``f1_b_truth`` (each against ``rec_a``'s truth), ``clipped_b`` (share
        of B's samples at its extreme values: its rails when it clips) and
        ``detect_s``.
    """
    found_a, ta = _episodes(rec_a)
    found_b, tb = _episodes(rec_b)
    s = metrics.score(found_a, found_b)
    b = rec_b.signal
    clipped = float(np.mean((b == b.max(axis=0)) | (b == b.min(axis=0)))) if b.size else 0.0
    return {
        "f1": s["f1"], "tp": int(s["tp"]), "fp": int(s["fp"]), "fn": int(s["fn"]),
        "onset_mae_ms": 1e3 * s["onset_mae_s"], "label_agreement": s["label_accuracy"],
        "n_a": len(found_a), "n_b": len(found_b),
        "f1_a_truth": metrics.score(rec_a.truth, found_a)["f1"],
        "f1_b_truth": metrics.score(rec_a.truth, found_b)["f1"],
        "clipped_b": clipped, "detect_s": ta + tb,
    }


def _randomized(rng: np.random.Generator) -> SyntheticRecording:
    spec = randomized.draw_spec(rng, snr_db=AGREEMENT_SNR_DB, duration_s=RANDOMIZED_S)
    spec = dataclasses.replace(spec, motion_per_min=0.0, pops_per_min=0.0, knocks_per_min=0.0,
                               lead_off=False)
    return randomized.generate(spec, spasm_min_s=SPASM_MIN_S)


# ---------------------------------------------------------------------------- suite


def _score_one(k: int, seed: int, stretches: semisynthetic.Stretches) -> dict[str, Any]:
    rng = seeded_rng(seed, f"semi{k}")
    t0 = time.perf_counter()
    rec = semisynthetic.draw(rng, stretches, DURATION_S, spasm_min_s=SPASM_MIN_S)
    t1 = time.perf_counter()
    found, detect_s = _episodes(rec)
    s = metrics.score(rec.truth, found)
    return {
        "index": k, "device": stretches.device, "fs": rec.fs, "channels": len(rec.channels),
        "unit": rec.unit, "duration_s": rec.duration_s,
        "n_ref": int(s["n_ref"]), "n_det": int(s["n_det"]), "tp": int(s["tp"]),
        "fp": int(s["fp"]), "fn": int(s["fn"]), "f1": s["f1"],
        "onset_mae_ms": 1e3 * s["onset_mae_s"], "label_accuracy": s["label_accuracy"],
        "n_spasm": int((rec.truth["label"] == "spasm").sum()),
        "snr_db_median": _median(rec.truth["snr_db"]),
        "generate_s": t1 - t0, "detect_s": detect_s,
    }


def _agree_one(k: int, seed: int, source: str,
               stretches: semisynthetic.Stretches | None) -> dict[str, Any]:
    rng = seeded_rng(seed, f"semi-agree-{source}{k}")
    if stretches is not None:
        rec = semisynthetic.draw(rng, stretches, DURATION_S, spasm_min_s=SPASM_MIN_S)
    else:
        rec = _randomized(rng)
    rec_a, rec_b = simulate_devices(rec, rng)
    row = {"index": k, "source": source, "fs": rec.fs, "channels": len(rec.channels),
           "n_ref": len(rec.truth)}
    row.update(agreement(rec_a, rec_b))
    return row


def run_semi(data_dir: Path, n_recordings: int = 40, seed: int = 0,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Splice, stream and score ``n_recordings`` recordings, then the two-device agreement.

    Parameters
    ----------
    data_dir : Path
        The shared recordings folder.
    n_recordings : int
        Semi-synthetic recordings (the devices in turn); the agreement uses
        ``max(4, n_recordings // 4)`` semi-synthetic and as many randomized
        signals.
    seed : int
        Seed of every draw.
    progress : callable, optional
        Called with one line per finished step.

    Returns
    -------
    dict
        ``rows`` (one per recording), ``agreement`` (one per signal),
        ``stretches`` (per device), or ``skipped`` with the reason.
    """
    t0 = time.perf_counter()
    if not Path(data_dir).is_dir():
        return {"skipped": f"no data folder ({Path(data_dir).name} absent)", "rows": [],
                "agreement": [], "stretches": {}}
    found = semisynthetic.load_stretches(data_dir)
    devices = [d for d, st in found.items() if any(st.contraction)]
    if not devices:
        return {"skipped": "no usable recordings under the data folder", "rows": [],
                "agreement": [], "stretches": {}}
    stretches = {d: {**semisynthetic.stretch_counts(st), "fs": st.fs, "unit": st.unit,
                     "rule": st.rule, "sources": list(st.sources)} for d, st in found.items()}
    if progress:
        progress(f"semi: stretches of {len(found)} devices loaded "
                 f"({time.perf_counter() - t0:.1f} s)")
    rows = []
    for k in range(n_recordings):
        rows.append(_score_one(k, seed, found[devices[k % len(devices)]]))
        if progress is not None and (k + 1) % 8 == 0:
            progress(f"semi: {k + 1}/{n_recordings} recordings "
                     f"({time.perf_counter() - t0:.0f} s)")
    agree = []
    n_agree = max(4, n_recordings // 4)
    for k in range(n_agree):
        device = devices[k % len(devices)]
        agree.append(_agree_one(k, seed, f"semi:{device}", found[device]))
    for k in range(n_agree):
        agree.append(_agree_one(k, seed, "randomized", None))
    if progress:
        progress(f"semi: agreement of {len(agree)} signals ({time.perf_counter() - t0:.0f} s)")
    return {"rows": rows, "agreement": agree, "stretches": stretches,
            "n_recordings": n_recordings, "seed": seed, "duration_s": DURATION_S,
            "elapsed_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------- tables


def stretch_table(stretches: dict[str, dict[str, Any]]) -> str:
    """Per device: rate, channels, rule, kept rest and contraction stretches."""
    body = [[d, fmt(s["fs"], 0), str(s["channels"]), s["unit"], s["rule"],
             f"{s['rest']} ({s['rest_s']:.0f} s)",
             f"{s['contraction']} ({s['contraction_s']:.1f} s)",
             str(s["channels_with_contractions"])] for d, s in stretches.items()]
    return markdown(["device", "fs (Hz)", "channels", "unit", "rule", "rest stretches",
                     "contraction stretches", "channels with contractions"], body)


def detection_table(rows: list[dict[str, Any]]) -> str:
    """Per device: recordings, F1 median and worst decile, onset error, labels, counts."""
    groups = [("all", rows)]
    for device in dict.fromkeys(r["device"] for r in rows):
        groups.append((device, [r for r in rows if r["device"] == device]))
    body = []
    for label, group in groups:
        if not group:
            continue
        body.append([
            label, str(len(group)), str(sum(r["n_ref"] for r in group)),
            fmt(_median(r["snr_db_median"] for r in group), 1),
            fmt(_median(r["f1"] for r in group)), fmt(_decile(r["f1"] for r in group)),
            fmt(_median(r["onset_mae_ms"] for r in group), 1),
            fmt(_median(r["label_accuracy"] for r in group)),
            str(sum(r["fp"] for r in group)), str(sum(r["fn"] for r in group)),
        ])
    return markdown(["device", "recordings", "true events", "SNR median (dB)", "F1 median",
                     "F1 worst decile", "onset error median (ms)", "label accuracy median",
                     "false", "missed"], body)


def agreement_table(rows: list[dict[str, Any]]) -> str:
    """Per source: F1 of B against A (median, worst decile) with the goal beside each."""
    def goal(v: float) -> str:
        if not math.isfinite(v):
            return "n/a"
        return f"≥ {AGREEMENT_GOAL:g}: {'met' if v >= AGREEMENT_GOAL else 'NOT MET'}"

    groups = [("all", rows),
              ("semi-synthetic", [r for r in rows if r["source"].startswith("semi:")]),
              ("randomized 12 dB", [r for r in rows if r["source"] == "randomized"])]
    body = []
    for label, group in groups:
        if not group:
            continue
        med = _median(r["f1"] for r in group)
        worst = _decile(r["f1"] for r in group)
        body.append([
            label, str(len(group)), fmt(med), goal(med), fmt(worst), goal(worst),
            fmt(_median(r["onset_mae_ms"] for r in group), 1),
            fmt(_median(r["label_agreement"] for r in group)),
            str(sum(r["n_a"] for r in group)), str(sum(r["n_b"] for r in group)),
            fmt(_median(r["f1_a_truth"] for r in group)),
            fmt(_median(r["f1_b_truth"] for r in group)),
            fmt(max(r["clipped_b"] for r in group) * 100, 2),
        ])
    return markdown(["signals", "n", "F1 B vs A median", "goal", "F1 B vs A worst decile",
                     "goal", "onset difference median (ms)", "label agreement median",
                     "episodes A", "episodes B", "F1 A vs truth median",
                     "F1 B vs truth median", "B clipped, worst (%)"], body)


def section(result: dict[str, Any]) -> str:
    """The suite's Markdown section."""
    if result.get("skipped"):
        return f"## Semi-synthetic recordings from real EMG\n\nSkipped: {result['skipped']}."
    return "\n\n".join([
        f"## Semi-synthetic recordings from real EMG ({result['n_recordings']} recordings "
        f"of {result['duration_s']:g} s, seed {result['seed']}, {result['elapsed_s']:.0f} s)",
        "Real rest and real contraction stretches cut from the shared recordings by the "
        "stated rules (`emg_pipeline.sources.semisynthetic`: Myo = middles of the rest- and "
        "gesture-cue periods; the others = offline zero-phase 100 ms RMS envelope, rest "
        "≤ 2x and active ≥ 6x its 10th percentile, with margins; per channel, rest within "
        "1.25x of the channel's rest level and contractions ≥ 3x it), spliced per channel "
        "with 5-20 ms equal-power crossfades on the rest side, one device per recording. "
        "The truth is where each contraction stretch was placed. Streamed in 20 ms chunks "
        "with default settings; a match is the same channel, overlapping, onsets within "
        "250 ms. Worst decile: the 10th percentile over recordings.",
        stretch_table(result["stretches"]),
        detection_table(result["rows"]),
        "### Two-device agreement",
        "The same signal seen by device A (16-bit, noise 30 dB under the rest) and device B "
        f"(gain x{B_GAIN:g}, white noise {-B_NOISE_DB:g} dB under the rest, 8-bit with a "
        "step of a third of the rest RMS); B's episodes scored against A's. Signals: "
        "semi-synthetic recordings (the devices in turn) and randomized recordings at "
        f"{AGREEMENT_SNR_DB:g} dB without artefacts ({DURATION_S:g} s and {RANDOMIZED_S:g} s).",
        agreement_table(result["agreement"]),
    ])
