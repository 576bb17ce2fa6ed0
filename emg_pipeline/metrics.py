"""Scoring detected episodes against reference events: pure functions.

Matching rule: a detection matches a reference event when it is on the same
channel, overlaps it in time, and their onsets are at most ``onset_tol_s``
apart; matching is one-to-one (closest onsets first). A reference event left
unmatched is a miss; a detection left unmatched (including the extra pieces of
an event split in several) is a false positive. Figures that are undefined
(no events, no detections) are NaN, never a silent 0 or 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["MatchResult", "match_events", "score"]


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


def match_events(
    reference: pd.DataFrame, detected: pd.DataFrame, onset_tol_s: float = 0.25
) -> MatchResult:
    """Match detections to reference events one-to-one.

    Both tables need ``channel``, ``onset_s`` and ``offset_s`` columns; a
    ``label`` column is carried into the pairs when present.

    Examples
    --------
    >>> ref = pd.DataFrame({"channel": ["a"], "onset_s": [1.0], "offset_s": [2.0]})
    >>> det = pd.DataFrame({"channel": ["a", "a"], "onset_s": [1.1, 1.6],
    ...                     "offset_s": [1.5, 2.1]})
    >>> m = match_events(ref, det)
    >>> len(m.pairs), m.missed.tolist(), m.false.tolist()
    (1, [], [1])
    """
    cand = []
    ref = reference.reset_index(drop=True)
    det = detected.reset_index(drop=True)
    for channel, r_idx in ref.groupby("channel").indices.items():
        d_idx = det.index[det["channel"] == channel].to_numpy()
        if d_idx.size == 0:
            continue
        r_on = ref["onset_s"].to_numpy()[r_idx][:, None]
        r_off = ref["offset_s"].to_numpy()[r_idx][:, None]
        d_on = det["onset_s"].to_numpy()[d_idx][None, :]
        d_off = det["offset_s"].to_numpy()[d_idx][None, :]
        err = np.abs(d_on - r_on)
        ok = (err <= onset_tol_s) & (d_on < r_off) & (d_off > r_on)
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


def score(
    reference: pd.DataFrame, detected: pd.DataFrame, onset_tol_s: float = 0.25
) -> dict[str, float]:
    """Event-level figures of a detection against a reference.

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
    m = match_events(reference, detected, onset_tol_s)
    tp = len(m.pairs)
    fn = len(m.missed)
    fp = len(m.false)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    if math.isnan(precision) or math.isnan(recall):
        f1 = math.nan if (tp + fp + fn) == 0 else 0.0
    else:
        f1 = _ratio(2 * precision * recall, precision + recall)
        f1 = 0.0 if math.isnan(f1) else f1
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
