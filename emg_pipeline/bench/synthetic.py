"""The ``synthetic`` suite: seeded recordings from :func:`emg_pipeline.simulate` with ground truth.

Cells (each one seeded recording, the generator keyed by the cell so that a
cell does not depend on which others run):

- **SNR sweep** at 2000 Hz, 2 channels: 0, 3, 6, 12 and 20 dB;
- **sampling rates** at 12 dB, 2 channels: 200, 250, 500, 1000 Hz (and the
  2000 Hz cell of the sweep);
- **artefacts**: a mains frequency drifting by ±1 Hz at 60 Hz with 100 µV
  fundamental; ECG (400 µV R waves) on a trunk channel with events; rest with
  motion, electrode pops and cable knocks (1 per min per channel each); the
  same rest with ECG on the trunk channel;
- **multi-channel**: 8 channels at 2000 Hz, 12 dB.

Every cell is streamed through :class:`emg_pipeline.Pipeline` in 20 ms
chunks: the episodes scored are those of the stream, and the alert latencies
come from the live events it emitted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..pipeline import Pipeline
from ..run import run
from ..settings import PipelineSettings
from ..sources.synthetic import simulate
from .common import fmt, markdown, seeded_rng
from .scoring import score_run

__all__ = ["CONDITIONS", "Condition", "Goal", "run_cell", "run_synthetic"]

LIVE_CHUNK_S = 0.020
#: the twitch/spasm boundary of every benchmark: the pipeline's own setting
SPASM_MIN_S = PipelineSettings().spasm_min_s
REST_GOAL_PER_H = 2.0  # false episodes: at most 1 per 30 min
LABEL_GOAL = 0.97


@dataclass(frozen=True)
class Goal:
    """One pass/fail criterion on a cell's figures (NaN fails)."""

    name: str
    text: str
    metric: str
    limit: float
    at_least: bool = True

    def check(self, row: dict[str, Any]) -> bool:
        """Whether ``row`` meets the goal."""
        value = row.get(self.metric)
        if value is None or math.isnan(value):
            return False
        return value >= self.limit if self.at_least else value <= self.limit


def _f1(limit: float) -> Goal:
    return Goal("F1", f"F1 ≥ {limit:.2f}", "f1", limit)


LABEL = Goal("label", f"label ≥ {LABEL_GOAL:.2f}", "label_accuracy", LABEL_GOAL)
ONSET = Goal("onset", "onset MAE ≤ 25 ms", "onset_err_median_abs_ms", 25.0, at_least=False)
REST = Goal("false", f"false ≤ {REST_GOAL_PER_H:g} / h", "false_per_h", REST_GOAL_PER_H,
            at_least=False)
ARTEFACTS = {"events": False, "motion_per_min": 1.0, "pops_per_min": 1.0, "knocks_per_min": 1.0}


@dataclass(frozen=True)
class Condition:
    """One cell of the suite.

    Attributes
    ----------
    key : str
        Short identifier (also seeds the cell).
    group : str
        ``snr``, ``rate``, ``artefact`` or ``multichannel``.
    name : str
        Description in the tables.
    fs : float
        Sampling rate, Hz.
    sim : dict
        Keyword arguments of :func:`~emg_pipeline.simulate`.
    goals : tuple of Goal
        What the cell should reach (empty: reported only).
    n_channels : int
        Number of channels.
    minutes_scale : float
        Fraction of the suite's minutes this cell gets (wide cells are shorter).
    """

    key: str
    group: str
    name: str
    fs: float
    sim: dict[str, Any]
    goals: tuple[Goal, ...] = field(default=())
    n_channels: int = 2
    minutes_scale: float = 1.0

    @property
    def rest(self) -> bool:
        """A rest-only cell: only false episodes count."""
        return self.sim.get("events", True) is False


SNR_LEVELS_DB = (0.0, 3.0, 6.0, 12.0, 20.0)
RATES_HZ = (200.0, 250.0, 500.0, 1000.0, 2000.0)
_SNR_GOALS = {20.0: (_f1(0.98), ONSET, LABEL), 12.0: (LABEL,), 6.0: (_f1(0.95), LABEL),
              3.0: (_f1(0.85), LABEL), 0.0: ()}

CONDITIONS: tuple[Condition, ...] = (
    *(Condition(f"snr{snr:g}", "snr", f"{snr:g} dB", 2000.0, {"snr_db": snr}, _SNR_GOALS[snr])
      for snr in SNR_LEVELS_DB),
    *(Condition(f"rate{fs:g}", "rate", f"12 dB @ {fs:g} Hz", fs, {"snr_db": 12.0},
                (_f1(0.90), LABEL) if fs == 200.0 else ())
      for fs in RATES_HZ if fs != 2000.0),
    Condition("mains_drift", "artefact", "12 dB, 60 Hz mains 100 µV drifting ±1 Hz", 2000.0,
              {"snr_db": 12.0, "mains_hz": 60.0, "mains_uv": 100.0, "mains_drift_hz": 1.0}),
    Condition("ecg_events", "artefact", "12 dB, ECG 400 µV on trunk channel ch2", 2000.0,
              {"snr_db": 12.0, "ecg_uv": [0.0, 400.0]}),
    Condition("rest_artefacts", "artefact", "rest + motion, pops, knocks", 2000.0, ARTEFACTS,
              (REST,)),
    Condition("rest_ecg", "artefact", "rest + motion, pops, knocks + ECG on ch2", 2000.0,
              {**ARTEFACTS, "ecg_uv": [0.0, 400.0]}, (REST,)),
    Condition("multi8", "multichannel", "12 dB, 8 channels", 2000.0, {"snr_db": 12.0},
              n_channels=8, minutes_scale=1 / 3),
)


def run_cell(cond: Condition, minutes: float, seed: int,
             chunk_s: float = LIVE_CHUNK_S) -> dict[str, Any]:
    """Simulate one cell, stream it through the pipeline and score it."""
    t0 = time.perf_counter()
    duration_s = max(minutes * cond.minutes_scale, 0.25) * 60.0
    rec = simulate(seeded_rng(seed, cond.key), fs=cond.fs, duration_s=duration_s,
                   n_channels=cond.n_channels, spasm_min_s=SPASM_MIN_S, **cond.sim)
    t1 = time.perf_counter()
    pipe = Pipeline(rec.fs, rec.channels, unit="uV", spasm_min_s=SPASM_MIN_S)
    step = max(1, round(chunk_s * rec.fs))
    events: list = []
    chunks = (rec.signal[start : start + step] for start in range(0, rec.signal.shape[0], step))
    run(chunks, pipe, on_result=lambda result: events.extend(result.events))
    t2 = time.perf_counter()
    found = pipe.episodes_frame()
    row: dict[str, Any] = {
        "key": cond.key, "group": cond.group, "condition": cond.name, "fs": cond.fs,
        "channels": cond.n_channels, "minutes": rec.duration_s / 60.0,
        "snr_db": float(cond.sim.get("snr_db", math.nan)) if not cond.rest else math.nan,
        "rest": cond.rest, "n_artefacts": len(rec.artefacts), "chunk_ms": 1e3 * step / rec.fs,
    }
    row.update(score_run(rec.truth, found, rec.duration_s, rec.channels, events=events,
                         spasm_min_s=SPASM_MIN_S))
    row["generate_s"] = t1 - t0
    row["stream_s"] = t2 - t1
    row["stream_x_real_time"] = rec.duration_s / (t2 - t1)
    failed = [g.name for g in cond.goals if not g.check(row)]
    row["goal"] = "; ".join(g.text for g in cond.goals) or "reported only"
    row["verdict"] = ("PASS" if not failed else f"FAIL ({', '.join(failed)})") if cond.goals \
        else "-"
    row["failed"] = failed
    return row


def run_synthetic(minutes: float, seed: int = 0, keys: Sequence[str] | None = None,
                  chunk_s: float = LIVE_CHUNK_S,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the cells (all, or those in ``keys``); return ``{"rows": [...], ...}``."""
    chosen = [c for c in CONDITIONS if keys is None or c.key in keys]
    rows = []
    for cond in chosen:
        row = run_cell(cond, minutes, seed, chunk_s)
        rows.append(row)
        if progress:
            progress(f"synthetic {cond.key}: F1 {fmt(row['f1'])}, {row['verdict']}")
    return {"minutes": minutes, "seed": seed, "chunk_ms": 1e3 * chunk_s, "rows": rows}


def quality_table(rows: Sequence[dict[str, Any]]) -> str:
    """Detection quality per cell."""
    headers = ["cell", "fs (Hz)", "ch", "min", "n_true", "TP", "FN", "FP", "precision",
               "recall", "F1", "onset MAE (ms)", "offset MAE (ms)", "label acc.",
               "false / h rest", "goal", "verdict"]
    body = []
    for r in rows:
        rates = ["n/a"] * 3 if r["n_ref"] == 0 else [fmt(r["precision"]), fmt(r["recall"]),
                                                     fmt(r["f1"])]
        body.append([r["condition"], f"{r['fs']:g}", str(r["channels"]), f"{r['minutes']:.3g}",
                     fmt(r["n_ref"]), fmt(r["tp"]), fmt(r["fn"]), fmt(r["fp"]), *rates,
                     fmt(r["onset_err_median_abs_ms"], 1), fmt(r["offset_err_median_abs_ms"], 1),
                     fmt(r["label_accuracy"]), fmt(r["false_per_h"], 1), r["goal"],
                     f"**{r['verdict']}**" if r["verdict"] != "-" else "-"])
    return markdown(headers, body)


def class_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per-class figures and the twitch/spasm confusion of each cell with events."""
    headers = ["cell", "twitch P", "twitch R", "twitch F1", "spasm P", "spasm R", "spasm F1",
               "twitch→spasm", "spasm→twitch", "missed (t/s)", "false (t/s)"]
    body = []
    for r in rows:
        if r["n_ref"] == 0:
            continue
        c = r["confusion"]
        body.append([r["condition"], fmt(r["twitch_precision"]), fmt(r["twitch_recall"]),
                     fmt(r["twitch_f1"]), fmt(r["spasm_precision"]), fmt(r["spasm_recall"]),
                     fmt(r["spasm_f1"]), str(c["twitch"]["spasm"]), str(c["spasm"]["twitch"]),
                     f"{c['twitch']['missed']}/{c['spasm']['missed']}",
                     f"{c['none']['twitch']}/{c['none']['spasm']}"])
    return markdown(headers, body)


def error_table(rows: Sequence[dict[str, Any]]) -> str:
    """Onset and offset error distributions (detected minus true, ms)."""
    headers = ["cell", "matched", "onset p5", "onset median", "onset p95", "offset p5",
               "offset median", "offset p95"]
    body = [[r["condition"], fmt(r["onset_err_n"]), fmt(r["onset_err_p5_ms"], 1),
             fmt(r["onset_err_median_ms"], 1), fmt(r["onset_err_p95_ms"], 1),
             fmt(r["offset_err_p5_ms"], 1), fmt(r["offset_err_median_ms"], 1),
             fmt(r["offset_err_p95_ms"], 1)] for r in rows if r["n_ref"]]
    return markdown(headers, body)


def latency_table(rows: Sequence[dict[str, Any]]) -> str:
    """Live alert latencies per cell (from the live event stream)."""
    headers = ["cell", "chunk (ms)", "onset alerts / true", "onset latency median (ms)",
               "onset latency p95 (ms)", "true spasms", "sustained alerts on them",
               "sustained delay median (ms)", "sustained delay p95 (ms)",
               "false onset alerts", "false sustained alerts"]
    body = [[r["condition"], f"{r['chunk_ms']:g}",
             f"{r['alert_n_onset_alerts']}/{r['alert_n_ref']}",
             fmt(r["alert_onset_median_ms"], 1), fmt(r["alert_onset_p95_ms"], 1),
             fmt(r["alert_n_true_spasms"]), fmt(r["alert_n_sustained_alerts"]),
             fmt(r["alert_sustained_median_ms"], 1), fmt(r["alert_sustained_p95_ms"], 1),
             fmt(r["alert_false_onset_alerts"]), fmt(r["alert_false_sustained_alerts"])]
            for r in rows]
    return markdown(headers, body)


def timing_table(rows: Sequence[dict[str, Any]]) -> str:
    """Time to generate and to stream each cell."""
    headers = ["cell", "fs (Hz)", "ch", "min", "generate (s)", "stream (s)",
               "stream × real time"]
    body = [[r["condition"], f"{r['fs']:g}", str(r["channels"]), f"{r['minutes']:.3g}",
             fmt(r["generate_s"], 2), fmt(r["stream_s"], 2), fmt(r["stream_x_real_time"], 0)]
            for r in rows]
    return markdown(headers, body)


def section(result: dict[str, Any]) -> str:
    """The suite's Markdown section."""
    rows = result["rows"]
    n_goal = [r for r in rows if r["verdict"] != "-"]
    n_pass = sum(1 for r in n_goal if not r["failed"])
    return "\n\n".join([
        "## Synthetic recordings",
        f"Seed {result['seed']}; {result['minutes']:g} min per cell (8-channel cell: a third); "
        f"each cell streamed through `Pipeline` in {result['chunk_ms']:g} ms chunks with default "
        "settings; events scored one-to-one on the same channel, onsets within 250 ms, "
        "overlapping. SNR: in-band RMS of an event over in-band RMS of the baseline "
        "(3 µV). MAE = median absolute error.",
        quality_table(rows),
        f"{n_pass} of {len(n_goal)} cells with goals pass.",
        "### Twitch / spasm per class and confusion",
        "P, R: precision and recall of a class (found *and* labelled that class). "
        "twitch→spasm: true twitches labelled spasm; missed and false counts by class.",
        class_table(rows),
        "### Onset and offset errors (detected minus true, ms)",
        error_table(rows),
        "### Live alerts (from the live event stream)",
        "Onset latency: time of the live `onset` event minus the true onset. Sustained "
        f"delay: time of the `sustained` alert minus (true onset + {SPASM_MIN_S:g} s), the "
        "moment the true spasm crossed the boundary. False alerts: live episodes matching no "
        "true event; sustained alerts on episodes matching no true spasm.",
        latency_table(rows),
        "### Time per cell",
        timing_table(rows),
    ])
