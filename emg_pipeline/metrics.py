"""Scoring detected episodes and live alerts against reference events: pure functions.

Matching rule: a detection matches a reference event when it is on the same
channel, overlaps it in time, and its onset lies within the onset tolerance of
the reference onset (by default at most ``onset_tol_s = 0.25`` s either way; a
``(early_s, late_s)`` pair gives an asymmetric window, e.g. for cue-based
references where the muscle answers after the cue). An optional offset
tolerance constrains the offsets the same way. Matching is one-to-one,
smallest absolute onset error first. A reference event left unmatched is a
miss; a detection left unmatched (including the extra pieces of an event split
in several) is a false positive. Figures that are undefined (no events, no
detections) are NaN, never a silent 0 or 1.

Event tables are DataFrames with ``channel``, ``onset_s`` and ``offset_s``
columns and, for the class figures, a ``label`` column (``"twitch"`` or
``"spasm"``). Live alerts are scored from the stream of
:class:`~emg_pipeline.LiveEvent` objects the pipeline emitted while streaming,
not from its offline result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .labels import Label

__all__ = [
    "CLASSES",
    "AlertLatency",
    "MatchResult",
    "alert_latency",
    "class_scores",
    "confusion_matrix",
    "error_summary",
    "false_per_hour",
    "live_episodes",
    "match_events",
    "rest_seconds",
    "score",
]

#: the two classes the classifier tells apart
CLASSES: tuple[str, str] = (Label.TWITCH.value, Label.SPASM.value)

Tolerance = float | tuple[float, float]


@dataclass(frozen=True)
class MatchResult:
    """Outcome of matching detections to reference events.

    Attributes
    ----------
    pairs : DataFrame
        One row per match: ``ref`` and ``det`` (row positions in the inputs),
        ``channel``, ``onset_error_s`` and ``offset_error_s`` (detected minus
        reference), ``ref_label``, ``det_label``.
    missed : ndarray
        Row positions of unmatched reference events.
    false : ndarray
        Row positions of unmatched detections.
    """

    pairs: pd.DataFrame
    missed: np.ndarray
    false: np.ndarray


def _window(tol: Tolerance, name: str) -> tuple[float, float]:
    """``(early_s, late_s)`` of a tolerance given as one number or a pair."""
    early, late = (tol, tol) if np.isscalar(tol) else tuple(tol)  # type: ignore[misc]
    early, late = float(early), float(late)
    if not (early >= 0 and late >= 0):
        raise ValueError(f"{name} must be non-negative, got {tol!r}")
    return early, late


def match_events(
    reference: pd.DataFrame,
    detected: pd.DataFrame,
    onset_tol_s: Tolerance = 0.25,
    *,
    offset_tol_s: Tolerance | None = None,
) -> MatchResult:
    """Match detections to reference events one-to-one.

    Both tables need ``channel``, ``onset_s`` and ``offset_s`` columns; a
    ``label`` column is carried into the pairs when present.

    Parameters
    ----------
    reference, detected : DataFrame
        Reference events and detections.
    onset_tol_s : float or (float, float)
        Largest onset error in seconds: one number for both directions, or
        ``(early_s, late_s)``: the detected onset may come at most ``early_s``
        before and ``late_s`` after the reference onset.
    offset_tol_s : float or (float, float), optional
        The same for offsets; None (default) leaves offsets free (they only
        have to make the two events overlap).

    Returns
    -------
    MatchResult

    Examples
    --------
    >>> ref = pd.DataFrame({"channel": ["a"], "onset_s": [1.0], "offset_s": [2.0]})
    >>> det = pd.DataFrame({"channel": ["a", "a"], "onset_s": [1.1, 1.6],
    ...                     "offset_s": [1.5, 2.1]})
    >>> m = match_events(ref, det)
    >>> len(m.pairs), m.missed.tolist(), m.false.tolist()
    (1, [], [1])
    >>> late = pd.DataFrame({"channel": ["a"], "onset_s": [1.6], "offset_s": [2.5]})
    >>> len(match_events(ref, late).pairs), len(match_events(ref, late, (0.1, 0.8)).pairs)
    (0, 1)
    """
    on_early, on_late = _window(onset_tol_s, "onset_tol_s")
    off_window = None if offset_tol_s is None else _window(offset_tol_s, "offset_tol_s")
    cand = []
    ref = reference.reset_index(drop=True)
    det = detected.reset_index(drop=True)
    for channel, r_idx in ref.groupby("channel").indices.items():
        d_idx = det.index[det["channel"] == channel].to_numpy()
        if d_idx.size == 0:
            continue
        r_on = ref["onset_s"].to_numpy(dtype=float)[r_idx][:, None]
        r_off = ref["offset_s"].to_numpy(dtype=float)[r_idx][:, None]
        d_on = det["onset_s"].to_numpy(dtype=float)[d_idx][None, :]
        d_off = det["offset_s"].to_numpy(dtype=float)[d_idx][None, :]
        diff = d_on - r_on
        ok = (diff >= -on_early) & (diff <= on_late) & (d_on < r_off) & (d_off > r_on)
        if off_window is not None:
            off_diff = d_off - r_off
            ok &= (off_diff >= -off_window[0]) & (off_diff <= off_window[1])
        err = np.abs(diff)
        ii, jj = np.nonzero(ok)
        cand.extend(zip(err[ii, jj], r_idx[ii], d_idx[jj], strict=True))
    cand.sort(key=lambda t: (t[0], t[1], t[2]))
    used_r: set[int] = set()
    used_d: set[int] = set()
    rows = []
    has_label = "label" in ref.columns and "label" in det.columns
    for _, r, d in cand:
        if r in used_r or d in used_d:
            continue
        used_r.add(int(r))
        used_d.add(int(d))
        rows.append({
            "ref": int(r), "det": int(d), "channel": ref.at[r, "channel"],
            "onset_error_s": float(det.at[d, "onset_s"] - ref.at[r, "onset_s"]),
            "offset_error_s": float(det.at[d, "offset_s"] - ref.at[r, "offset_s"]),
            "ref_label": ref.at[r, "label"] if has_label else None,
            "det_label": det.at[d, "label"] if has_label else None,
        })
    columns = ["ref", "det", "channel", "onset_error_s", "offset_error_s", "ref_label", "det_label"]
    pairs = pd.DataFrame(rows, columns=columns).sort_values("ref").reset_index(drop=True)
    missed = np.array(sorted(set(range(len(ref))) - used_r), dtype=np.int64)
    false = np.array(sorted(set(range(len(det))) - used_d), dtype=np.int64)
    return MatchResult(pairs, missed, false)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1; NaN where undefined, F1 = 0 when something was wrong."""
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    if tp + fp + fn == 0:
        return precision, recall, math.nan
    if tp == 0:
        return precision, recall, 0.0
    return precision, recall, 2 * precision * recall / (precision + recall)


def score(
    reference: pd.DataFrame,
    detected: pd.DataFrame,
    onset_tol_s: Tolerance = 0.25,
    *,
    offset_tol_s: Tolerance | None = None,
) -> dict[str, float]:
    """Event-level figures of a detection against a reference.

    Parameters
    ----------
    reference, detected : DataFrame
        As for :func:`match_events`.
    onset_tol_s, offset_tol_s
        Tolerances of :func:`match_events`.

    Returns
    -------
    dict
        ``n_ref``, ``n_det``, ``tp``, ``fn``, ``fp``, ``precision``,
        ``recall``, ``f1``, ``onset_mae_s`` (median absolute onset error),
        ``offset_mae_s``, ``label_accuracy`` (twitch/spasm agreement on matched
        events, NaN without labels).

    Examples
    --------
    >>> ref = pd.DataFrame({"channel": ["a"], "onset_s": [1.0], "offset_s": [2.0]})
    >>> score(ref, ref.iloc[:0])["recall"]
    0.0
    >>> import math; math.isnan(score(ref.iloc[:0], ref.iloc[:0])["f1"])
    True
    """
    m = match_events(reference, detected, onset_tol_s, offset_tol_s=offset_tol_s)
    tp = len(m.pairs)
    fn = len(m.missed)
    fp = len(m.false)
    precision, recall, f1 = _prf(tp, fp, fn)
    labelled = m.pairs.dropna(subset=["ref_label", "det_label"]) if tp else m.pairs
    return {
        "n_ref": float(len(reference)),
        "n_det": float(len(detected)),
        "tp": float(tp),
        "fn": float(fn),
        "fp": float(fp),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "onset_mae_s": float(np.median(np.abs(m.pairs["onset_error_s"]))) if tp else math.nan,
        "offset_mae_s": float(np.median(np.abs(m.pairs["offset_error_s"]))) if tp else math.nan,
        "label_accuracy": (
            float(np.mean(labelled["ref_label"] == labelled["det_label"]))
            if len(labelled) else math.nan
        ),
    }


def class_scores(
    reference: pd.DataFrame,
    detected: pd.DataFrame,
    onset_tol_s: Tolerance = 0.25,
    *,
    offset_tol_s: Tolerance | None = None,
    classes: Sequence[str] = CLASSES,
    match: MatchResult | None = None,
) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 of each class (an event must be found *and* labelled right).

    For class ``c``: a true positive is a matched pair whose reference and
    detection are both labelled ``c``; precision is over the detections
    labelled ``c``, recall over the reference events labelled ``c``.

    Parameters
    ----------
    reference, detected : DataFrame
        Event tables with a ``label`` column.
    onset_tol_s, offset_tol_s
        Tolerances of :func:`match_events`.
    classes : sequence of str
        Classes to report.
    match : MatchResult, optional
        A matching already computed on these tables (saves redoing it).

    Returns
    -------
    dict
        ``{class: {"n_ref", "n_det", "tp", "precision", "recall", "f1"}}``.

    Examples
    --------
    >>> ref = pd.DataFrame({"channel": ["a", "a"], "onset_s": [1.0, 5.0],
    ...                     "offset_s": [1.5, 9.0], "label": ["twitch", "spasm"]})
    >>> det = ref.assign(label=["twitch", "twitch"])
    >>> s = class_scores(ref, det)
    >>> s["twitch"]["precision"], s["twitch"]["recall"], s["spasm"]["recall"]
    (0.5, 1.0, 0.0)
    >>> import math; math.isnan(s["spasm"]["precision"])
    True
    """
    m = match if match is not None else match_events(
        reference, detected, onset_tol_s, offset_tol_s=offset_tol_s)
    ref_labels = reference["label"].to_numpy() if len(reference) else np.array([])
    det_labels = detected["label"].to_numpy() if len(detected) else np.array([])
    out: dict[str, dict[str, float]] = {}
    for c in classes:
        n_ref = int(np.sum(ref_labels == c))
        n_det = int(np.sum(det_labels == c))
        tp = int(np.sum((m.pairs["ref_label"] == c) & (m.pairs["det_label"] == c)))
        precision, recall, f1 = _prf(tp, n_det - tp, n_ref - tp)
        out[c] = {"n_ref": float(n_ref), "n_det": float(n_det), "tp": float(tp),
                  "precision": precision, "recall": recall, "f1": f1}
    return out


def confusion_matrix(
    reference: pd.DataFrame,
    detected: pd.DataFrame,
    onset_tol_s: Tolerance = 0.25,
    *,
    offset_tol_s: Tolerance | None = None,
    classes: Sequence[str] = CLASSES,
    match: MatchResult | None = None,
) -> pd.DataFrame:
    """Twitch/spasm confusion matrix, with misses and false detections.

    Rows are the reference class (plus ``"none"`` for detections that match
    nothing), columns the detected class (plus ``"missed"`` for reference
    events that no detection matches).

    Examples
    --------
    >>> ref = pd.DataFrame({"channel": ["a", "a", "a"], "onset_s": [1.0, 5.0, 20.0],
    ...                     "offset_s": [1.5, 9.0, 21.0],
    ...                     "label": ["twitch", "spasm", "twitch"]})
    >>> det = pd.DataFrame({"channel": ["a", "a", "a"], "onset_s": [1.0, 5.1, 30.0],
    ...                     "offset_s": [1.4, 6.0, 31.0],
    ...                     "label": ["twitch", "twitch", "spasm"]})
    >>> confusion_matrix(ref, det).to_dict("index")["spasm"]
    {'twitch': 1, 'spasm': 0, 'missed': 0}
    >>> cm = confusion_matrix(ref, det)
    >>> int(cm.loc["none", "spasm"]), int(cm.loc["twitch", "missed"])
    (1, 1)
    """
    m = match if match is not None else match_events(
        reference, detected, onset_tol_s, offset_tol_s=offset_tol_s)
    rows = [*classes, "none"]
    cols = [*classes, "missed"]
    table = pd.DataFrame(0, index=pd.Index(rows, name="reference"),
                         columns=pd.Index(cols, name="detected"), dtype=np.int64)
    for r_lab, d_lab in zip(m.pairs["ref_label"], m.pairs["det_label"], strict=True):
        if r_lab in classes and d_lab in classes:
            table.loc[r_lab, d_lab] += 1
    if len(m.missed) and "label" in reference.columns:
        missed_labels = reference["label"].to_numpy()[m.missed]
        for c in classes:
            table.loc[c, "missed"] = int(np.sum(missed_labels == c))
    if len(m.false) and "label" in detected.columns:
        false_labels = detected["label"].to_numpy()[m.false]
        for c in classes:
            table.loc["none", c] = int(np.sum(false_labels == c))
    return table


def error_summary(errors_s: Iterable[float]) -> dict[str, float]:
    """Distribution of timing errors (seconds): count, median, mean, spread, quantiles.

    Returns ``n`` and, NaN when there are none: ``median``, ``mean``,
    ``median_abs`` (the median absolute error), ``p5``, ``p25``, ``p75``,
    ``p95`` and ``max_abs``. NaN values in the input are ignored.

    Examples
    --------
    >>> s = error_summary([-0.02, 0.0, 0.01, 0.05])
    >>> s["n"], round(s["median"], 3), round(s["median_abs"], 3), round(s["max_abs"], 2)
    (4, 0.005, 0.015, 0.05)
    >>> import math; math.isnan(error_summary([])["median"])
    True
    """
    e = np.asarray(list(errors_s), dtype=float)
    e = e[~np.isnan(e)]
    keys = ("median", "mean", "median_abs", "p5", "p25", "p75", "p95", "max_abs")
    if e.size == 0:
        return {"n": 0, **dict.fromkeys(keys, math.nan)}
    q = np.percentile(e, [5, 25, 50, 75, 95])
    return {"n": int(e.size), "median": float(q[2]), "mean": float(e.mean()),
            "median_abs": float(np.median(np.abs(e))), "p5": float(q[0]),
            "p25": float(q[1]), "p75": float(q[3]), "p95": float(q[4]),
            "max_abs": float(np.abs(e).max())}


def rest_seconds(reference: pd.DataFrame, duration_s: float, channels: Sequence[str]) -> float:
    """Channel-seconds of rest: the recording on every channel minus its reference events.

    Overlapping reference events on one channel count once.

    Examples
    --------
    >>> ref = pd.DataFrame({"channel": ["a", "a", "b"], "onset_s": [1.0, 1.5, 0.0],
    ...                     "offset_s": [2.0, 3.0, 10.0]})
    >>> rest_seconds(ref, 10.0, ["a", "b"])
    8.0
    """
    total = float(duration_s) * len(channels)
    for channel in channels:
        spans = reference.loc[reference["channel"] == channel, ["onset_s", "offset_s"]]
        if spans.empty:
            continue
        iv = np.clip(spans.to_numpy(dtype=float), 0.0, float(duration_s))
        iv = iv[np.argsort(iv[:, 0], kind="stable")]
        # union of intervals: a new group starts past the running maximum of the ends
        reach = np.maximum.accumulate(iv[:, 1])
        first = np.flatnonzero(np.r_[True, iv[1:, 0] > reach[:-1]])
        total -= float(np.sum(np.maximum.reduceat(iv[:, 1], first) - iv[first, 0]))
    return total


def false_per_hour(n_false: float, rest_s: float) -> float:
    """False episodes per hour of rest (NaN without rest).

    Examples
    --------
    >>> false_per_hour(3, 1800.0)
    6.0
    >>> import math; math.isnan(false_per_hour(0, 0.0))
    True
    """
    return _ratio(float(n_false) * 3600.0, float(rest_s))


LIVE_EPISODE_COLUMNS = ("channel", "onset_s", "offset_s", "label", "onset_alert_s",
                        "sustained_alert_s", "end_s")


def live_episodes(events: Iterable[Any]) -> pd.DataFrame:
    """Episodes as the live event stream told them, with the time of each alert.

    Events of one episode share ``channel`` and ``onset_s``. ``offset_s`` and
    ``label`` come from the ``end`` event; an episode whose ``end`` has not
    come yet is still open (``offset_s`` = inf, ``label`` None). Alert times
    are NaN when that alert never came.

    Parameters
    ----------
    events : iterable of LiveEvent
        The events returned by ``Pipeline.process`` and ``Pipeline.flush``,
        in the order they came.

    Returns
    -------
    DataFrame
        ``channel, onset_s, offset_s, label, onset_alert_s,
        sustained_alert_s, end_s``, sorted by onset.

    Examples
    --------
    >>> from emg_pipeline import LiveEvent
    >>> ev = [LiveEvent("onset", "a", 1.05, 1.0), LiveEvent("sustained", "a", 3.0, 1.0)]
    >>> live_episodes(ev)[["onset_s", "offset_s", "onset_alert_s", "sustained_alert_s"]].values
    array([[1.  ,  inf, 1.05, 3.  ]])
    """
    rows: dict[tuple[str, float], dict[str, Any]] = {}
    for e in events:
        key = (e.channel, round(float(e.onset_s), 6))
        row = rows.setdefault(key, {
            "channel": e.channel, "onset_s": float(e.onset_s), "offset_s": math.inf,
            "label": None, "onset_alert_s": math.nan, "sustained_alert_s": math.nan,
            "end_s": math.nan,
        })
        slot = {"onset": "onset_alert_s", "sustained": "sustained_alert_s", "end": "end_s"}[e.kind]
        if math.isnan(row[slot]):
            row[slot] = float(e.time_s)
        if e.kind == "end" and e.episode is not None:
            row["offset_s"] = float(e.episode.offset_s)
            row["label"] = e.episode.label
    frame = pd.DataFrame(list(rows.values()), columns=list(LIVE_EPISODE_COLUMNS))
    if len(frame):
        frame = frame.sort_values(["onset_s", "channel"], kind="stable").reset_index(drop=True)
    return frame


@dataclass(frozen=True)
class AlertLatency:
    """How early the live alerts came, from the live event stream.

    Attributes
    ----------
    per_event : DataFrame
        One row per reference event: ``channel``, ``onset_s``, ``label``,
        ``matched`` (a live episode matches it), ``onset_latency_s`` (time of
        the live ``onset`` event minus the true onset), ``sustained_latency_s``
        (for true spasms: time of the ``sustained`` alert minus the moment the
        spasm crossed the boundary, true onset + ``spasm_min_s``). NaN where
        there was no such alert.
    false_onset_alerts : int
        Live episodes that match no reference event (false alarms).
    false_sustained_alerts : int
        ``sustained`` alerts on live episodes that match no true spasm.
    spasm_min_s : float
        The twitch/spasm boundary used.
    """

    per_event: pd.DataFrame
    false_onset_alerts: int
    false_sustained_alerts: int
    spasm_min_s: float

    def summary(self) -> dict[str, float]:
        """Counts and distributions (seconds) of both latencies.

        Keys: ``n_ref``, ``n_onset_alerts``, ``n_true_spasms``,
        ``n_sustained_alerts``, ``n_spasms_without_alert``,
        ``false_onset_alerts``, ``false_sustained_alerts``, then
        ``onset_<stat>`` and ``sustained_<stat>`` for each statistic of
        :func:`error_summary`.
        """
        pe = self.per_event
        spasm = pe["label"] == Label.SPASM if len(pe) else pe.index == 0
        onset = error_summary(pe["onset_latency_s"])
        sustained = error_summary(pe.loc[spasm, "sustained_latency_s"])
        n_spasm = int(np.sum(spasm))
        out: dict[str, float] = {
            "n_ref": len(pe), "n_onset_alerts": onset["n"], "n_true_spasms": n_spasm,
            "n_sustained_alerts": sustained["n"],
            "n_spasms_without_alert": n_spasm - sustained["n"],
            "false_onset_alerts": self.false_onset_alerts,
            "false_sustained_alerts": self.false_sustained_alerts,
        }
        out.update({f"onset_{k}": v for k, v in onset.items() if k != "n"})
        out.update({f"sustained_{k}": v for k, v in sustained.items() if k != "n"})
        return out


def alert_latency(
    reference: pd.DataFrame,
    events: Iterable[Any],
    spasm_min_s: float = 2.0,
    onset_tol_s: Tolerance = 0.25,
    *,
    offset_tol_s: Tolerance | None = None,
) -> AlertLatency:
    """Latency of the live ``onset`` and ``sustained`` alerts against reference events.

    The live episodes are rebuilt from the event stream
    (:func:`live_episodes`) and matched to the reference with
    :func:`match_events`. For each matched reference event, the onset latency
    is the time of the live ``onset`` event minus the true onset; for each
    reference event labelled ``spasm``, the sustained latency is the time of
    the ``sustained`` alert minus (true onset + ``spasm_min_s``), the moment
    the true spasm crossed the boundary. Negative values mean the alert came
    early.

    Parameters
    ----------
    reference : DataFrame
        ``channel``, ``onset_s``, ``offset_s``, ``label``.
    events : iterable of LiveEvent
        Everything the pipeline emitted while streaming, flush included.
    spasm_min_s : float
        Twitch/spasm boundary (the pipeline's ``spasm_min_s``).
    onset_tol_s, offset_tol_s
        Tolerances of :func:`match_events`.

    Returns
    -------
    AlertLatency

    Examples
    --------
    >>> from emg_pipeline import LiveEvent
    >>> ref = pd.DataFrame({"channel": ["a", "a"], "onset_s": [1.0, 10.0],
    ...                     "offset_s": [6.0, 10.4], "label": ["spasm", "twitch"]})
    >>> ev = [LiveEvent("onset", "a", 1.08, 1.01), LiveEvent("sustained", "a", 3.12, 1.01),
    ...       LiveEvent("onset", "a", 20.1, 20.0)]
    >>> lat = alert_latency(ref, ev)
    >>> [round(v, 2) for v in lat.per_event["onset_latency_s"]]
    [0.08, nan]
    >>> float(round(lat.per_event.at[0, "sustained_latency_s"], 2)), lat.false_onset_alerts
    (0.12, 1)
    """
    live = live_episodes(events)
    ref = reference.reset_index(drop=True)
    m = match_events(ref, live, onset_tol_s, offset_tol_s=offset_tol_s)
    onset_lat = np.full(len(ref), math.nan)
    sustained_lat = np.full(len(ref), math.nan)
    matched = np.zeros(len(ref), dtype=bool)
    labels = ref["label"].to_numpy() if "label" in ref.columns else np.full(len(ref), None)
    true_spasm_live: set[int] = set()
    for r, d in zip(m.pairs["ref"].to_numpy(), m.pairs["det"].to_numpy(), strict=True):
        matched[r] = True
        t_true = float(ref.at[r, "onset_s"])
        onset_lat[r] = live.at[d, "onset_alert_s"] - t_true
        if labels[r] == Label.SPASM:
            true_spasm_live.add(int(d))
            sustained_lat[r] = live.at[d, "sustained_alert_s"] - (t_true + spasm_min_s)
    has_sustained = (~live["sustained_alert_s"].isna()).to_numpy() if len(live) else np.array([])
    false_sustained = sum(1 for d in np.flatnonzero(has_sustained) if int(d) not in true_spasm_live)
    per_event = pd.DataFrame({
        "channel": ref["channel"].to_numpy() if len(ref) else [],
        "onset_s": ref["onset_s"].to_numpy(dtype=float) if len(ref) else [],
        "label": labels,
        "matched": matched,
        "onset_latency_s": onset_lat,
        "sustained_latency_s": sustained_lat,
    })
    return AlertLatency(per_event, len(m.false), int(false_sustained), float(spasm_min_s))
