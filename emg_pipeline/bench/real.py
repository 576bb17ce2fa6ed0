"""The ``real`` suite: recordings with usable reference timing, each with its reference rule.

None of the shared recordings carries scored involuntary events, so each
recording's reference is built by a rule stated here and in the report:

- ``cue``: the Myo armband gesture files 1-7 label every sample with the
  protocol cue (rest / gesture alternating every 5 s). Reference event = each
  gesture-cue stretch, on *any* channel (the episodes of the 8 channels are
  merged into one by time union; the merged label is ``spasm`` when any
  member is). Label ``spasm``: a gesture held for 5 s is a sustained
  contraction. The muscle answers 0.3-0.6 s after the cue, so a detected onset
  may come 0.25 s before to 1.0 s after the cue.
- ``envelope``: an offline, non-causal rule on the whole recording (the
  recordings of bursts and of brief contractions): zero-phase 4th-order
  Butterworth band-pass 20-450 Hz, centred 100 ms moving RMS, threshold at
  p10 + 0.2 × (p99 - p10) of that envelope, runs joined across gaps under
  0.25 s, runs under 50 ms dropped; label by duration (``spasm`` from 2 s).
  A recording whose envelope p99 is under 4 × its p10 has no activation (rest).
  The rule reproduces the contraction counts and onsets published with the
  recordings; onsets within 250 ms.
- ``rest``: no events (the Myo rest file, the BioSPPy near-rest file): every
  detection is a false alarm.

Recordings without usable timing are listed as skipped with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import signal

from ..errors import EmgPipelineError
from ..labels import Label, labels_for
from ..pipeline import Pipeline
from ..run import run
from ..sources.formats import open_recording
from .common import fmt, markdown
from .methods import EMG_PIPELINE, Method, run_method
from .scoring import score_run
from .synthetic import SPASM_MIN_S

__all__ = ["SKIPPED", "RealCase", "envelope_reference", "load_cases", "run_real"]

CUE_TOL_S = (0.25, 1.0)
ANY = "any"

#: recordings with no usable reference timing, and why
SKIPPED: dict[str, str] = {
    "libemg-myo-test/emg_data_myo.csv": "2.5 s parser fixture, no annotations",
    "openbci-gui-samples/*": "scalp EEG; jaw clenches and blinks mixed on every channel, "
                             "no annotations",
    "physionet-emgdb/*": "needle EMG (not surface), no annotations",
    "bitalino-opensignals/SampleEMG.txt": "same data as SampleEMG.h5 (scored once)",
}


@dataclass(frozen=True)
class RealCase:
    """One real recording and its reference.

    Attributes
    ----------
    name : str
        ``folder/file``.
    signal : ndarray
        ``(n_samples, n_channels)`` samples.
    fs : float
        Sampling rate, Hz.
    channels : tuple of str
        Channel names.
    unit : str
        ``uV`` or ``counts``.
    reference : DataFrame
        Reference events (``channel`` = a channel name, or ``any``).
    rule : str
        ``cue``, ``envelope`` or ``rest``.
    onset_tol_s : float or (float, float)
        Onset tolerance for matching.
    """

    name: str
    signal: np.ndarray
    fs: float
    channels: tuple[str, ...]
    unit: str
    reference: pd.DataFrame
    rule: str
    onset_tol_s: float | tuple[float, float]

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.signal.shape[0] / self.fs

    @property
    def any_channel(self) -> bool:
        """The reference is on any channel (detections are merged over channels)."""
        return self.rule == "cue" or (self.rule == "rest" and len(self.channels) > 1)

    @property
    def scored_channels(self) -> tuple[str, ...]:
        """Channels of the scoring (``any`` when merged)."""
        return (ANY,) if self.any_channel else self.channels


def _events(rows: list[tuple[str, float, float]], spasm_min_s: float = SPASM_MIN_S,
            label: str | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["channel", "onset_s", "offset_s"])
    frame["duration_s"] = frame["offset_s"] - frame["onset_s"]
    frame["label"] = label if label is not None else labels_for(frame["duration_s"], spasm_min_s)
    return frame


def envelope_reference(x: np.ndarray, fs: float, channel: str) -> pd.DataFrame:
    """Reference events of one channel by the offline ``envelope`` rule (see module docs).

    Examples
    --------
    >>> fs = 1000.0
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(10_000)
    >>> x[3000:4000] *= 20
    >>> ref = envelope_reference(x, fs, "a")
    >>> len(ref), bool(abs(ref.onset_s[0] - 3.0) < 0.1)
    (1, True)
    """
    sos = signal.butter(4, [20.0, min(450.0, 0.45 * fs)], btype="bandpass", fs=fs,
                        output="sos")
    y = signal.sosfiltfilt(sos, x - np.mean(x))
    w = max(1, round(0.1 * fs))
    env = np.sqrt(np.maximum(np.convolve(y * y, np.ones(w) / w, mode="same"), 0.0))
    lo, hi = np.percentile(env, [10, 99])
    if not hi >= 4.0 * lo:
        return _events([])
    active = env > lo + 0.2 * (hi - lo)
    d = np.diff(np.r_[0, active.astype(np.int8), 0])
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    if starts.size:
        keep = np.r_[True, (starts[1:] - ends[:-1]) >= 0.25 * fs]  # join short gaps
        group = np.cumsum(keep) - 1
        starts = starts[keep]
        ends = np.maximum.reduceat(ends, np.flatnonzero(keep))
        del group
    long_enough = (ends - starts) >= 0.05 * fs
    return _events([(channel, s / fs, e / fs)
                    for s, e in zip(starts[long_enough], ends[long_enough], strict=True)])


def _read(path: Path, fs: float | None = None) -> tuple[Any, np.ndarray]:
    with open_recording(path, fs=fs) as reader:
        info = reader.info
        blocks = list(reader.iter_chunks(65536))
    x = np.concatenate(blocks) if blocks else np.empty((0, len(info.channels)))
    return info, x


def _cue_reference(info: Any) -> pd.DataFrame:
    ann = info.annotations
    gesture = ann[ann["text"] != "label 0"]
    rows = [(ANY, float(o), float(o + d))
            for o, d in zip(gesture["onset_s"], gesture["duration_s"], strict=True)]
    return _events(rows, label=Label.SPASM.value)


def load_cases(data_dir: Path, progress: Callable[[str], None] | None = None
               ) -> tuple[list[RealCase], dict[str, str]]:
    """Every usable recording under ``data_dir``, and the skipped ones with reasons.

    A recording that cannot be read is skipped with the error as its reason.
    """
    cases: list[RealCase] = []
    skipped = dict(SKIPPED)

    def add(rel: str, rule: str, fs: float | None = None) -> None:
        path = data_dir / rel
        if not path.is_file():
            skipped[rel] = "not present"
            return
        try:
            info, x = _read(path, fs)
        except (EmgPipelineError, OSError, ValueError) as exc:
            skipped[rel] = f"cannot be read: {exc}"
            return
        if rule == "cue":
            ref, tol = _cue_reference(info), CUE_TOL_S
        elif rule == "rest":
            ch = ANY if x.shape[1] > 1 else info.channels[0]
            ref, tol = _events([]).assign(channel=pd.Series([], dtype=object)), 0.25
            del ch
        else:
            ref = pd.concat([envelope_reference(x[:, c], info.fs, name)
                             for c, name in enumerate(info.channels)], ignore_index=True)
            tol = 0.25
            if ref.empty:
                rule = "rest"
        cases.append(RealCase(rel, x, float(info.fs), tuple(info.channels), info.unit, ref,
                              rule, tol))
        if progress:
            progress(f"real: loaded {rel} ({rule}, {len(ref)} reference events)")

    myo = "myo-armband-labelled/right_hand_12345-1"
    for k in range(1, 8):
        add(f"{myo}/{k}.txt", "cue", fs=200.0)
    add(f"{myo}/0.txt", "rest", fs=200.0)
    add("plux-biosignalsnotebooks/emg_bursts.h5", "envelope")
    add("plux-biosignalsnotebooks/emg_1000_hz_16_bits_solo.h5", "envelope")
    add("bitalino-opensignals/SampleEMG.h5", "envelope")
    add("biosppy-examples/emg_1.txt", "envelope")
    add("biosppy-examples/emg.txt", "envelope")  # rest by the rule's dynamic-range test
    return cases, skipped


def merge_channels(found: pd.DataFrame) -> pd.DataFrame:
    """Episodes of all channels merged by time union into ``any``-channel episodes.

    Examples
    --------
    >>> f = pd.DataFrame({"channel": ["a", "b", "a"], "onset_s": [1.0, 1.5, 5.0],
    ...                   "offset_s": [2.0, 4.0, 6.0], "label": ["twitch", "spasm", "twitch"]})
    >>> merge_channels(f)[["onset_s", "offset_s", "label"]].values.tolist()
    [[1.0, 4.0, 'spasm'], [5.0, 6.0, 'twitch']]
    """
    if found.empty:
        return found.assign(channel=pd.Series([], dtype=object))
    f = found.sort_values("onset_s", kind="stable")
    on = f["onset_s"].to_numpy(dtype=float)
    off = f["offset_s"].to_numpy(dtype=float)
    reach = np.maximum.accumulate(off)
    first = np.flatnonzero(np.r_[True, on[1:] > reach[:-1]])
    spasm = (f["label"].to_numpy() == Label.SPASM).astype(np.int8)
    merged_on = on[first]
    merged_off = np.maximum.reduceat(off, first)
    return pd.DataFrame({
        "channel": ANY, "onset_s": merged_on, "offset_s": merged_off,
        "duration_s": merged_off - merged_on,
        "label": np.where(np.maximum.reduceat(spasm, first) > 0, Label.SPASM.value,
                          Label.TWITCH.value),
    })


def score_case(case: RealCase, method: Method, chunk_s: float = 0.020) -> dict[str, Any]:
    """Run ``method`` on one case (emg-pipeline streamed, with its live events) and score it."""
    row: dict[str, Any] = {"recording": case.name, "method": method.name, "rule": case.rule,
                           "fs": case.fs, "channels": len(case.channels),
                           "seconds": case.duration_s, "unit": case.unit}
    t0 = time.perf_counter()
    events = None
    try:
        if method is EMG_PIPELINE:
            pipe = Pipeline(case.fs, case.channels, unit=case.unit, spasm_min_s=SPASM_MIN_S)
            step = max(1, round(chunk_s * case.fs))
            events = []
            chunks = (case.signal[start : start + step]
                      for start in range(0, case.signal.shape[0], step))
            run(chunks, pipe, on_result=lambda result: events.extend(result.events))
            found = pipe.episodes_frame()
        else:
            found = run_method(method, case.signal, case.fs, case.channels, case.unit,
                               SPASM_MIN_S)
    except Exception as exc:  # a peer failing on a recording is a reported result
        row.update({"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:160]})
        return row
    row["run_s"] = time.perf_counter() - t0
    row["x_real_time"] = case.duration_s / row["run_s"] if row["run_s"] > 0 else float("nan")
    if case.any_channel:
        found = merge_channels(found)
        events = None  # alert latency is scored on per-channel references only
    row.update(score_run(case.reference, found, case.duration_s, case.scored_channels,
                         onset_tol_s=case.onset_tol_s, events=events,
                         spasm_min_s=SPASM_MIN_S))
    return row


def run_real(data_dir: Path, methods: list[Method] | None = None,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Score every usable recording with each method (default: emg-pipeline only)."""
    if not data_dir.is_dir():
        return {"skipped": f"no data folder ({data_dir.name} absent)", "rows": [],
                "recordings": {}}
    cases, skipped = load_cases(data_dir, progress)
    rows = []
    for case in cases:
        for method in methods or [EMG_PIPELINE]:
            rows.append(score_case(case, method))
    recordings = {c.name: {"rule": c.rule, "n_ref": len(c.reference), "fs": c.fs,
                           "channels": len(c.channels), "seconds": c.duration_s,
                           "onset_tol_s": c.onset_tol_s} for c in cases}
    return {"rows": rows, "recordings": recordings, "skipped_recordings": skipped}


def iter_cases(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Rows of ``result`` that ran (no error)."""
    return (r for r in result["rows"] if "error" not in r)


def real_table(rows: list[dict[str, Any]]) -> str:
    """Figures per recording and method."""
    headers = ["recording", "method", "rule", "n_ref", "TP", "FN", "FP", "precision", "recall",
               "F1", "onset MAE (ms)", "label acc.", "false / h rest", "onset alert median (ms)",
               "× real time"]
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["recording"], r["method"], r["rule"], *["-"] * 11,
                         f"not run: {r['error']}"])
            continue
        body.append([r["recording"], r["method"], r["rule"], fmt(r["n_ref"]), fmt(r["tp"]),
                     fmt(r["fn"]), fmt(r["fp"]), fmt(r["precision"]), fmt(r["recall"]),
                     fmt(r["f1"]), fmt(r["onset_err_median_abs_ms"], 1),
                     fmt(r["label_accuracy"]), fmt(r["false_per_h"], 1),
                     fmt(r.get("alert_onset_median_ms"), 1), fmt(r["x_real_time"], 0)])
    return markdown(headers, body)


def section(result: dict[str, Any]) -> str:
    """The suite's Markdown section."""
    if result.get("skipped") and not result["rows"]:
        return f"## Real recordings\n\nSkipped: {result['skipped']}."
    lines = ["## Real recordings",
             "Reference rules (see `emg_pipeline.bench.real`): **cue** = Myo gesture-cue "
             "stretches, any channel (episodes of the 8 channels merged by time union), label "
             "spasm (5 s holds), detected onset 0.25 s before to 1.0 s after the cue; "
             "**envelope** = offline zero-phase 20-450 Hz band-pass, centred 100 ms RMS, "
             "threshold p10 + 0.2 (p99 - p10), gaps < 0.25 s joined, runs < 50 ms dropped, "
             "label by duration (spasm from 2 s), onsets within 250 ms; **rest** = no "
             "events, every detection is a false alarm. These references are protocol cues or "
             "an offline threshold, not expert scoring of involuntary events.",
             real_table(result["rows"]),
             "Recordings not scored:",
             "\n".join(f"- `{k}`: {v}" for k, v in result["skipped_recordings"].items())]
    return "\n\n".join(lines)
