"""Score one run (episodes + live events) against a reference: every figure of the report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .. import metrics
from ..labels import Label

__all__ = ["score_run"]


def _ms(summary: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}_{k}_ms" if k != "n" else f"{prefix}_n":
            (v * 1e3 if k != "n" else v) for k, v in summary.items()}


def score_run(reference: pd.DataFrame, found: pd.DataFrame, duration_s: float,
              channels: Sequence[str], *, onset_tol_s: metrics.Tolerance = 0.25,
              events: Sequence[Any] | None = None, spasm_min_s: float = 2.0) -> dict[str, Any]:
    """All figures of one detection run.

    Parameters
    ----------
    reference, found : DataFrame
        Reference events and detected episodes (``channel, onset_s, offset_s,
        label``).
    duration_s : float
        Length of the recording (for the rest time).
    channels : sequence of str
        Channels scored (rest time is counted on each).
    onset_tol_s : float or (float, float)
        Onset tolerance of :func:`emg_pipeline.metrics.match_events`.
    events : sequence of LiveEvent, optional
        The live event stream, for the alert latencies (absent: NaN).
    spasm_min_s : float
        Twitch/spasm boundary.

    Returns
    -------
    dict
        Counts, precision/recall/F1 overall and per class, onset and offset
        error distributions (ms), confusion matrix, rest hours and false
        episodes per hour of rest, alert latencies (ms).
    """
    m = metrics.match_events(reference, found, onset_tol_s)
    s = metrics.score(reference, found, onset_tol_s)
    rest_s = metrics.rest_seconds(reference, duration_s, channels)
    row: dict[str, Any] = {
        "n_ref": int(s["n_ref"]), "n_det": int(s["n_det"]), "tp": int(s["tp"]),
        "fn": int(s["fn"]), "fp": int(s["fp"]),
        "precision": s["precision"], "recall": s["recall"], "f1": s["f1"],
        "label_accuracy": s["label_accuracy"],
        "rest_h": rest_s / 3600.0,
        "false_per_h": metrics.false_per_hour(len(m.false), rest_s),
    }
    for cls, fig in metrics.class_scores(reference, found, match=m).items():
        row.update({f"{cls}_{k}": v for k, v in fig.items()})
    row.update(_ms(metrics.error_summary(m.pairs["onset_error_s"]), "onset_err"))
    row.update(_ms(metrics.error_summary(m.pairs["offset_error_s"]), "offset_err"))
    row["confusion"] = metrics.confusion_matrix(reference, found, match=m).to_dict("index")
    row["onset_errors_ms"] = [1e3 * v for v in m.pairs["onset_error_s"]]
    if events is not None:
        lat = metrics.alert_latency(reference, events, spasm_min_s, onset_tol_s)
        summ = lat.summary()
        row.update({f"alert_{k}_ms" if k.startswith(("onset_", "sustained_")) else f"alert_{k}":
                    (v * 1e3 if k.startswith(("onset_", "sustained_")) else v)
                    for k, v in summ.items()})
        pe = lat.per_event
        row["onset_latencies_ms"] = [1e3 * v for v in pe["onset_latency_s"] if not math.isnan(v)]
        row["sustained_latencies_ms"] = [
            1e3 * v for v in pe.loc[pe["label"] == Label.SPASM, "sustained_latency_s"]
            if not math.isnan(v)]
    return row
