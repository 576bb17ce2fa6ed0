"""The randomized robustness suites: many recordings, each under conditions drawn at random.

Two generators, written apart, so that a detector tuned to the look of one
fails the other: ``robust`` draws from
:mod:`emg_pipeline.sources.randomized` (shaped noise under activation
envelopes), ``physio`` from :mod:`emg_pipeline.sources.physiological` (motor
units recruited and rate-coded, their action potentials through a volume
conductor). Every recording comes from its generator with its own
draw of sampling rate, resolution, spectrum, noise, mains, ECG, artefacts and
start (see that module for the ranges); one in eight is rest only (artefacts
and mains, no contraction) and gives the false-episode rate. Each is streamed
through the pipeline in 20 ms chunks with default settings and scored against
its truth (:func:`emg_pipeline.metrics.score`). The tables give, per
condition, the median **and the worst decile** (10th percentile over the
recordings) of F1, so that a few recordings where detection breaks cannot hide
behind a good mean.

The recordings are independent, so each suite runs them with
:func:`~emg_pipeline.bench.common.run_tasks`: in this process, or one task per
recording on the engine of ``emg-pipeline batch`` (every core, or a Dask
cluster: ``emg-pipeline bench --workers N`` or ``--scheduler``). A task is a
recording's index and the seed, never its samples; every recording is drawn
from its own seeded generator, so the rows are the same either way (only the
timing columns ``generate_s`` and ``detect_s`` differ).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import signal

from .. import metrics
from ..pipeline import Pipeline
from ..run import run
from ..sources import physiological, randomized
from ..sources.randomized import SNR_LEVELS_DB
from .common import decile as _decile
from .common import finite_median as _median
from .common import fmt, markdown, run_tasks, seeded_rng
from .synthetic import LIVE_CHUNK_S, SPASM_MIN_S

if TYPE_CHECKING:
    from ..batch.engine import Engine

__all__ = ["run_robust", "section"]

#: goals of the issue, per SNR: worst-decile F1
F1_GOALS = {3.0: 0.85, 6.0: 0.95, 12.0: 0.95, 20.0: 0.95}
REST_SHARE = 1 / 8


#: the generators, by suite name
GENERATORS = {"robust": randomized, "physio": physiological}


#: mains removal compared by :func:`run_mains_comparison`: pipeline settings, and
#: whether a plain notch comb filters the recording first
MAINS_METHODS: dict[str, tuple[dict[str, Any], bool]] = {
    "tracked notch comb (default)": ({}, False),
    "plain notch comb (Q 30 at nominal 50/60 Hz harmonics)": ({"mains": "off"}, True),
    "Kalman-tracked model (mains_removal='model')": ({"mains_removal": "model"}, False),
    "no removal": ({"mains": "off"}, False),
}


def plain_notch_comb(x: np.ndarray, fs: float, mains_hz: float, q: float = 30.0) -> np.ndarray:
    """``x`` through causal second-order notches (``scipy.signal.iirnotch``) at every harmonic.

    The textbook baseline: fixed at the nominal grid frequency, below 0.45 fs.
    """
    out = np.asarray(x, dtype=float)
    for h in range(1, 10):
        f = h * mains_hz
        if f >= 0.45 * fs:
            break
        b, a = signal.iirnotch(f, q, fs=fs)
        out = signal.lfilter(b, a, out, axis=0)
    return out


def _score_one(k: int, seed: int, generator: str = "robust",
               method: str | None = None) -> dict[str, Any]:
    source = GENERATORS[generator]
    rng = seeded_rng(seed, f"robust{k}" if generator == "robust" else f"{generator}{k}")
    rest_only = k % round(1 / REST_SHARE) == round(1 / REST_SHARE) - 1
    snr = SNR_LEVELS_DB[k % len(SNR_LEVELS_DB)]
    spec = source.draw_spec(rng, snr_db=snr, rest_only=rest_only)
    t0 = time.perf_counter()
    rec = source.generate(spec, spasm_min_s=SPASM_MIN_S)
    t1 = time.perf_counter()
    settings, prefilter = MAINS_METHODS[method] if method else ({}, False)
    x = rec.signal
    if prefilter and spec.mains_hz is not None:
        x = plain_notch_comb(x, rec.fs, spec.mains_hz)
    pipe = Pipeline(rec.fs, rec.channels, unit=rec.unit, spasm_min_s=SPASM_MIN_S, **settings)
    step = max(1, round(LIVE_CHUNK_S * rec.fs))
    chunks = (x[i : i + step] for i in range(0, x.shape[0], step))
    run(chunks, pipe)
    t2 = time.perf_counter()
    found = pipe.episodes_frame()
    s = metrics.score(rec.truth, found)
    channel_minutes = rec.duration_s * len(rec.channels) / 60.0
    row: dict[str, Any] = {
        "index": k, "lead_off": False, **spec.conditions(), "duration_s": rec.duration_s,
        "n_ref": int(s["n_ref"]), "n_det": int(s["n_det"]), "tp": int(s["tp"]),
        "fp": int(s["fp"]), "fn": int(s["fn"]), "f1": s["f1"],
        "onset_mae_ms": 1e3 * s["onset_mae_s"], "label_accuracy": s["label_accuracy"],
        "false_per_30min": s["fp"] / channel_minutes * 30.0 if rest_only else math.nan,
        "generate_s": t1 - t0, "detect_s": t2 - t1, "method": method,
    }
    return row


def run_mains_comparison(n_recordings: int = 48, seed: int = 0,
                         progress: Callable[[str], None] | None = None,
                         engine: Engine | None = None) -> dict[str, Any]:
    """The first ``n_recordings`` of the randomized suite that carry mains, under every method.

    Each method of :data:`MAINS_METHODS` sees the same recordings (the plain
    comb is given the true nominal frequency, which the others find by
    themselves). ``engine``: as for :func:`run_robust`.
    """
    t0 = time.perf_counter()
    k = 0
    chosen: list[int] = []
    while len(chosen) < n_recordings:
        rest_only = k % round(1 / REST_SHARE) == round(1 / REST_SHARE) - 1
        spec = randomized.draw_spec(seeded_rng(seed, f"robust{k}"),
                                    snr_db=SNR_LEVELS_DB[k % len(SNR_LEVELS_DB)],
                                    rest_only=rest_only)
        if spec.mains_hz is not None:
            chosen.append(k)
        k += 1
    tasks = [(k, seed, "robust", method) for k in chosen for method in MAINS_METHODS]
    rows = run_tasks(_score_one, tasks, engine=engine, progress=progress, label="mains",
                     unit="runs (recordings x methods)", every=8 * len(MAINS_METHODS))
    return {"rows": rows, "n_recordings": n_recordings, "seed": seed,
            "elapsed_s": time.perf_counter() - t0}


def mains_section(result: dict[str, Any]) -> str:
    """The mains comparison's part of the report."""
    out = []
    for method in MAINS_METHODS:
        rows = [r for r in result["rows"] if r["method"] == method]
        events = [r for r in rows if not r["rest_only"]]
        rest = [r["false_per_30min"] for r in rows if r["rest_only"]]
        out.append([method, fmt(_median(r["f1"] for r in events)),
                    fmt(_decile(r["f1"] for r in events)),
                    str(sum(r["fp"] for r in events)), str(sum(r["fn"] for r in events)),
                    fmt(_median(rest), 2) if rest else "n/a",
                    fmt(max(rest), 2) if rest else "n/a"])
    return "\n\n".join([
        f"## Mains removal compared ({result['n_recordings']} randomized recordings with "
        f"mains, seed {result['seed']}, {result['elapsed_s']:.0f} s)",
        "The same recordings (drifting grid, harmonics 2-7, swells) under each method; the "
        "detector and every other setting unchanged.",
        markdown(["method", "F1 median", "F1 worst decile", "false", "missed",
                  "rest: false per 30 min, median", "rest: worst"], out),
    ])


def run_robust(n_recordings: int = 200, seed: int = 0,
               progress: Callable[[str], None] | None = None,
               generator: str = "robust", engine: Engine | None = None) -> dict[str, Any]:
    """Draw, stream and score ``n_recordings`` recordings; return every row and the tables.

    ``generator`` is ``"robust"`` (:mod:`emg_pipeline.sources.randomized`) or
    ``"physio"`` (:mod:`emg_pipeline.sources.physiological`). ``engine``: run
    the recordings on it, one task each (default: in this process); the rows
    are the same.
    """
    t0 = time.perf_counter()
    tasks = [(k, seed, generator) for k in range(n_recordings)]
    rows = run_tasks(_score_one, tasks, engine=engine, progress=progress, label=generator)
    return {"rows": rows, "n_recordings": n_recordings, "seed": seed, "generator": generator,
            "elapsed_s": time.perf_counter() - t0}


def _groups(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    events = [r for r in rows if not r["rest_only"]]

    def where(label: str, test: Callable[[dict[str, Any]], bool]) -> tuple[str, list]:
        return label, [r for r in events if test(r)]

    groups = [("all", events)]
    groups += [where(f"SNR {snr:g} dB", lambda r, s=snr: r["snr_db"] == s)
               for snr in SNR_LEVELS_DB]
    groups += [
        where("fs 200-250 Hz", lambda r: r["fs"] <= 250),
        where("fs 500-1000 Hz", lambda r: 500 <= r["fs"] <= 1000),
        where("fs 2000-4000 Hz", lambda r: r["fs"] >= 2000),
        where("8-bit converter", lambda r: r["bits"] == 8),
        where("samples in counts", lambda r: r["counts"]),
        where("no mains", lambda r: r["mains_hz"] is None),
        where("mains < 5x noise", lambda r: r["mains_hz"] is not None and r["mains_ratio"] < 5),
        where("mains >= 5x noise", lambda r: r["mains_hz"] is not None and r["mains_ratio"] >= 5),
        where("ECG on a channel", lambda r: r["ecg_channel"] is not None),
        where("quiet start", lambda r: r["start"] == "quiet"),
        where("noisy start", lambda r: r["start"] == "noisy"),
        where("lead-off", lambda r: r["lead_off"]),
    ]
    return groups


def detection_table(rows: list[dict[str, Any]]) -> str:
    """Per condition: recordings, F1 median and worst decile, onset error, label accuracy."""
    out = []
    for label, group in _groups(rows):
        if not group:
            continue
        goal = ""
        if label.startswith("SNR "):
            snr = float(label.split()[1])
            worst = _decile(r["f1"] for r in group)
            want = F1_GOALS[snr]
            goal = f"≥ {want:g}: {'met' if worst >= want else 'NOT MET'}"
        out.append([
            label, str(len(group)), fmt(_median(r["f1"] for r in group)),
            fmt(_decile(r["f1"] for r in group)),
            fmt(_median(r["onset_mae_ms"] for r in group), 1),
            fmt(_median(r["label_accuracy"] for r in group)),
            str(sum(r["fp"] for r in group)), str(sum(r["fn"] for r in group)), goal,
        ])
    return markdown(["condition", "recordings", "F1 median", "F1 worst decile",
                     "onset error median (ms)", "label accuracy median", "false", "missed",
                     "goal (worst decile)"], out)


def rest_table(rows: list[dict[str, Any]]) -> str:
    """Rest-only recordings: false episodes per 30 min of channel time, by mains condition."""
    rest = [r for r in rows if r["rest_only"]]
    out = []
    for label, test in (("all", lambda r: True), ("no mains", lambda r: r["mains_hz"] is None),
                        ("mains", lambda r: r["mains_hz"] is not None),
                        ("ECG", lambda r: r["ecg_channel"] is not None)):
        group = [r for r in rest if test(r)]
        if not group:
            continue
        rates = [r["false_per_30min"] for r in group]
        worst = max(rates)
        out.append([label, str(len(group)), fmt(_median(rates), 2), fmt(worst, 2),
                    f"≤ 1: {'met' if worst <= 1 else 'NOT MET'}"])
    return markdown(["rest recordings", "n", "false per 30 min, median", "worst",
                     "goal (every recording)"], out)


def section(result: dict[str, Any]) -> str:
    """The suite's part of the report."""
    rows = result["rows"]
    generator = result.get("generator", "robust")
    title = {"robust": "Randomized robustness", "physio": "Physiological generator"}[generator]
    return "\n\n".join([
        f"## {title} ({result['n_recordings']} recordings, seed "
        f"{result['seed']}, {result['elapsed_s']:.0f} s)",
        f"Each recording's conditions are drawn at random "
        f"(`{GENERATORS[generator].__name__}`); "
        "streamed in 20 ms chunks with default settings; a match is the same channel, "
        "overlapping, onsets within 250 ms. Worst decile: the 10th percentile over "
        "recordings.",
        detection_table(rows),
        rest_table(rows),
    ])
