"""The ``peers`` suite: the same recordings through NeuroKit2 and BioSPPy, scored alike.

Two parts, every method (emg-pipeline included, offline) timed in this process:

- an SNR sweep (0, 3, 6, 12, 20 dB) of seeded single-channel synthetic
  recordings at 1000 Hz (the peers' default rate), scored against the truth;
- the real recordings of the ``real`` suite, with the same reference rules.

Peers that are not installed are reported as skipped; see
:mod:`emg_pipeline.bench.methods` for the settings of each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..sources.synthetic import simulate
from .common import fmt, markdown, seeded_rng
from .methods import EMG_PIPELINE, Method, available_peers, run_method
from .real import load_cases, real_table, score_case
from .scoring import score_run
from .synthetic import SNR_LEVELS_DB, SPASM_MIN_S

__all__ = ["QUICK_REAL", "run_peers"]

PEER_FS = 1000.0
#: recordings used by the peers suite with --quick
QUICK_REAL = ("myo-armband-labelled/right_hand_12345-1/4.txt",
              "plux-biosignalsnotebooks/emg_bursts.h5", "biosppy-examples/emg.txt")


def _synthetic_rows(methods: list[Method], minutes: float, seed: int,
                    progress: Callable[[str], None] | None) -> list[dict[str, Any]]:
    rows = []
    for snr in SNR_LEVELS_DB:
        rec = simulate(seeded_rng(seed, f"peers{snr:g}"), fs=PEER_FS, duration_s=minutes * 60.0,
                       n_channels=1, snr_db=snr, spasm_min_s=SPASM_MIN_S)
        for method in methods:
            row: dict[str, Any] = {"method": method.name, "tool": method.tool,
                                   "snr_db": snr, "fs": rec.fs, "minutes": minutes}
            t0 = time.perf_counter()
            try:
                found = run_method(method, rec.signal, rec.fs, rec.channels, "uV", SPASM_MIN_S)
            except Exception as exc:  # a failing peer is a reported result
                row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
                rows.append(row)
                continue
            row["run_s"] = time.perf_counter() - t0
            row["x_real_time"] = rec.duration_s / row["run_s"]
            row.update(score_run(rec.truth, found, rec.duration_s, rec.channels,
                                 spasm_min_s=SPASM_MIN_S))
            rows.append(row)
            if progress:
                progress(f"peers {snr:g} dB {method.name}: F1 {fmt(row['f1'])}")
    return rows


def run_peers(data_dir: Path, seed: int = 0, quick: bool = False,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every installed peer and emg-pipeline on the synthetic sweep and the recordings."""
    peers, skipped = available_peers()
    if quick:  # change-point search takes seconds per second of signal
        slow = [m.name for m in peers if m.max_samples is not None]
        peers = [m for m in peers if m.max_samples is None]
        skipped.update({name: "too slow for --quick" for name in slow})
    methods = [EMG_PIPELINE, *peers]
    minutes = 0.25 if quick else 5.0
    result: dict[str, Any] = {
        "seed": seed, "minutes": minutes, "fs": PEER_FS,
        "methods": [{"name": m.name, "tool": m.tool, "settings": m.settings} for m in methods],
        "skipped_tools": skipped,
    }
    result["synthetic"] = _synthetic_rows(methods, minutes, seed, progress)
    real_rows: list[dict[str, Any]] = []
    if data_dir.is_dir():
        cases, _ = load_cases(data_dir)
        if quick:
            cases = [c for c in cases if c.name in QUICK_REAL]
        for case in cases:
            for method in methods:
                real_rows.append(score_case(case, method))
            if progress:
                progress(f"peers real {case.name}")
    else:
        result["real_skipped"] = f"no data folder ({data_dir.name} absent)"
    result["real"] = real_rows
    return result


def synthetic_table(rows: list[dict[str, Any]]) -> str:
    """F1, onset error and speed per method and SNR."""
    headers = ["SNR (dB)", "method", "TP", "FN", "FP", "F1", "twitch F1", "spasm F1",
               "onset MAE (ms)", "false / h rest", "× real time"]
    body = []
    for r in rows:
        if "error" in r:
            body.append([f"{r['snr_db']:g}", r["method"], *["-"] * 8, f"not run: {r['error']}"])
            continue
        body.append([f"{r['snr_db']:g}", r["method"], fmt(r["tp"]), fmt(r["fn"]), fmt(r["fp"]),
                     fmt(r["f1"]), fmt(r["twitch_f1"]), fmt(r["spasm_f1"]),
                     fmt(r["onset_err_median_abs_ms"], 1), fmt(r["false_per_h"], 1),
                     fmt(r["x_real_time"], 0)])
    return markdown(headers, body)


def summary_table(result: dict[str, Any]) -> str:
    """One row per method: mean F1 over the SNR sweep and over the real recordings."""
    names = [m["name"] for m in result["methods"]]
    body = []
    for name in names:
        syn = [r for r in result["synthetic"] if r["method"] == name and "error" not in r]
        real = [r for r in result["real"] if r["method"] == name and "error" not in r
                and r["n_ref"] > 0]
        rest = [r for r in result["real"] if r["method"] == name and "error" not in r
                and r["n_ref"] == 0]
        f1 = [r["f1"] for r in syn]
        body.append([name, _mean(f1), _mean([r["onset_err_median_abs_ms"] for r in syn], 1),
                     f"{len(real)}", _mean([r["f1"] for r in real]),
                     str(sum(r["fp"] for r in rest)) if rest else "n/a",
                     _mean([r["x_real_time"] for r in syn], 0)])
    return markdown(["method", "mean F1, SNR sweep", "mean onset MAE (ms), sweep",
                     "recordings with events", "mean F1, recordings",
                     "false episodes on rest recordings", "mean × real time, sweep"], body)


def _mean(values: list[float], digits: int = 3) -> str:
    import math

    v = [x for x in values if x is not None and not math.isnan(x)]
    return fmt(sum(v) / len(v), digits) if v else "n/a"


def section(result: dict[str, Any]) -> str:
    """The suite's Markdown section."""
    parts = ["## Peers",
             f"The same recordings through each method, scored by the same metrics, timed in "
             f"the same process. SNR sweep: one channel at {result['fs']:g} Hz, "
             f"{result['minutes']:g} min per level, seed {result['seed']}. Peers do not "
             f"classify: their episodes are labelled spasm from {SPASM_MIN_S:g} s. "
             "emg-pipeline runs offline here (`detect`).",
             markdown(["method", "tool", "settings"],
                      [[m["name"], m["tool"], m["settings"]] for m in result["methods"]])]
    if result["skipped_tools"]:
        parts.append("Skipped: " + "; ".join(f"{k}: {v}" for k, v in
                                              result["skipped_tools"].items()) + ".")
    parts += ["### Summary", summary_table(result),
              "### SNR sweep", synthetic_table(result["synthetic"]),
              "### Real recordings"]
    parts.append(real_table(result["real"]) if result["real"]
                 else f"Skipped: {result.get('real_skipped', 'no recordings')}.")
    return "\n\n".join(parts)
