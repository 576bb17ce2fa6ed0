"""Metrics on hand-made event lists: matching, classes, errors, rest, live alert latency."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from emg_pipeline import LiveEvent
from emg_pipeline.metrics import (
    alert_latency,
    class_scores,
    confusion_matrix,
    error_summary,
    false_per_hour,
    live_episodes,
    match_events,
    rest_seconds,
    score,
)


def events(rows, label=True):
    cols = ["channel", "onset_s", "offset_s", "label"] if label else ["channel", "onset_s",
                                                                      "offset_s"]
    return pd.DataFrame(rows, columns=cols)


EMPTY = events([])
REF = events([("a", 1.0, 1.5, "twitch"), ("a", 5.0, 9.0, "spasm"), ("b", 5.0, 5.4, "twitch")])


def test_perfect_detection():
    s = score(REF, REF)
    assert (s["tp"], s["fn"], s["fp"]) == (3, 0, 0)
    assert s["f1"] == 1.0 and s["onset_mae_s"] == 0.0 and s["label_accuracy"] == 1.0


def test_fragments_are_false_positives():
    det = events([("a", 5.05, 6.0, "twitch"), ("a", 6.5, 7.5, "twitch"),
                  ("a", 8.0, 9.0, "twitch")])
    m = match_events(REF, det)
    assert len(m.pairs) == 1 and m.pairs.at[0, "det"] == 0
    assert m.false.tolist() == [1, 2]
    assert m.missed.tolist() == [0, 2]


def test_other_channel_never_matches():
    det = events([("b", 1.0, 1.5, "twitch")])
    assert len(match_events(REF.iloc[:1], det).pairs) == 0


def test_no_overlap_no_match_even_within_tolerance():
    ref = events([("a", 1.0, 1.1, "twitch")])
    det = events([("a", 1.2, 1.3, "twitch")])
    assert len(match_events(ref, det).pairs) == 0


def test_one_to_one_closest_onset_first():
    ref = events([("a", 1.0, 3.0, "spasm")])
    det = events([("a", 1.2, 2.0, "twitch"), ("a", 1.05, 1.1, "twitch")])
    m = match_events(ref, det)
    assert m.pairs.at[0, "det"] == 1 and m.false.tolist() == [0]


def test_asymmetric_onset_tolerance():
    ref = events([("a", 5.0, 10.0, "spasm")])
    late = events([("a", 5.8, 10.0, "spasm")])
    early = events([("a", 4.6, 10.0, "spasm")])
    assert len(match_events(ref, late, (0.25, 1.0)).pairs) == 1
    assert len(match_events(ref, early, (0.25, 1.0)).pairs) == 0
    assert len(match_events(ref, late).pairs) == 0


def test_offset_tolerance():
    ref = events([("a", 5.0, 10.0, "spasm")])
    det = events([("a", 5.0, 12.0, "spasm")])
    assert len(match_events(ref, det).pairs) == 1
    assert len(match_events(ref, det, offset_tol_s=1.0).pairs) == 0
    assert len(match_events(ref, det, offset_tol_s=(0.0, 2.0)).pairs) == 1


def test_negative_tolerance_rejected():
    with pytest.raises(ValueError, match="onset_tol_s"):
        match_events(REF, REF, -0.1)


def test_empty_lists_give_nan_not_zero_or_one():
    s = score(EMPTY, EMPTY)
    assert all(math.isnan(s[k]) for k in ("precision", "recall", "f1", "onset_mae_s",
                                          "label_accuracy"))
    s = score(REF, EMPTY)
    assert s["recall"] == 0.0 and math.isnan(s["precision"]) and s["f1"] == 0.0
    s = score(EMPTY, REF)
    assert s["precision"] == 0.0 and math.isnan(s["recall"]) and s["f1"] == 0.0


def test_class_scores_and_confusion():
    det = events([("a", 1.0, 1.5, "twitch"), ("a", 5.0, 6.0, "twitch"),
                  ("b", 20.0, 23.0, "spasm")])
    cs = class_scores(REF, det)
    assert cs["twitch"] == {"n_ref": 2.0, "n_det": 2.0, "tp": 1.0, "precision": 0.5,
                            "recall": 0.5, "f1": 0.5}
    assert cs["spasm"]["tp"] == 0 and cs["spasm"]["precision"] == 0 and cs["spasm"]["f1"] == 0
    cm = confusion_matrix(REF, det)
    assert cm.loc["twitch", "twitch"] == 1 and cm.loc["spasm", "twitch"] == 1
    assert cm.loc["twitch", "missed"] == 1 and cm.loc["none", "spasm"] == 1
    assert int(cm.to_numpy().sum()) == 4
    nan_class = class_scores(EMPTY, EMPTY)
    assert all(math.isnan(nan_class[c][k]) for c in nan_class for k in ("precision", "recall",
                                                                         "f1"))


def test_error_summary():
    s = error_summary([0.1, -0.3, float("nan"), 0.2])
    assert s["n"] == 3 and s["median"] == pytest.approx(0.1)
    assert s["median_abs"] == pytest.approx(0.2) and s["max_abs"] == pytest.approx(0.3)
    assert s["p5"] < s["p25"] < s["p75"] < s["p95"]
    empty = error_summary([])
    assert empty["n"] == 0 and all(math.isnan(v) for k, v in empty.items() if k != "n")


def test_rest_seconds_and_false_per_hour():
    ref = events([("a", 1.0, 3.0, "spasm"), ("a", 2.0, 4.0, "spasm"), ("a", 10.0, 11.0, "t"),
                  ("b", -1.0, 2.0, "twitch")])
    # a: 20 - (3 + 1) ; b: 20 - 2 ; c: 20
    assert rest_seconds(ref, 20.0, ["a", "b", "c"]) == pytest.approx(16 + 18 + 20)
    assert rest_seconds(EMPTY, 30.0, ["a"]) == 30.0
    assert false_per_hour(2, 1800.0) == 4.0
    assert math.isnan(false_per_hour(2, 0.0))


def test_live_episodes_from_stream():
    ev = [LiveEvent("onset", "a", 1.05, 1.0), LiveEvent("onset", "b", 1.2, 1.1),
          LiveEvent("sustained", "a", 3.01, 1.0), LiveEvent("end", "b", 1.8, 1.1)]
    live = live_episodes(ev)
    assert live["channel"].tolist() == ["a", "b"]
    a = live.iloc[0]
    assert math.isinf(a["offset_s"]) and a["label"] is None  # still open
    assert a["onset_alert_s"] == 1.05 and a["sustained_alert_s"] == 3.01
    assert math.isnan(live.iloc[1]["sustained_alert_s"]) and live.iloc[1]["end_s"] == 1.8
    assert live_episodes([]).empty


def test_alert_latency_from_live_events():
    ref = events([("a", 1.0, 6.0, "spasm"), ("a", 10.0, 10.4, "twitch"),
                  ("b", 2.0, 8.0, "spasm")])
    ev = [
        LiveEvent("onset", "a", 1.06, 1.02), LiveEvent("sustained", "a", 3.10, 1.02),
        LiveEvent("onset", "a", 10.05, 10.01),
        # spasm on b: onset alert but no sustained alert
        LiveEvent("onset", "b", 2.2, 2.1),
        # a false episode that even raised a sustained alert
        LiveEvent("onset", "b", 30.0, 29.9), LiveEvent("sustained", "b", 31.9, 29.9),
    ]
    lat = alert_latency(ref, ev, spasm_min_s=2.0)
    pe = lat.per_event
    assert pe["onset_latency_s"].round(3).tolist() == [0.06, 0.05, 0.2]
    assert pe.at[0, "sustained_latency_s"] == pytest.approx(0.10)
    assert math.isnan(pe.at[1, "sustained_latency_s"])  # a twitch has none
    assert math.isnan(pe.at[2, "sustained_latency_s"])  # the alert never came
    assert lat.false_onset_alerts == 1 and lat.false_sustained_alerts == 1
    s = lat.summary()
    assert s["n_true_spasms"] == 2 and s["n_sustained_alerts"] == 1
    assert s["n_spasms_without_alert"] == 1
    assert s["onset_median"] == pytest.approx(0.06)


def test_alert_latency_nan_cases():
    lat = alert_latency(REF, [])
    assert not lat.per_event["matched"].any()
    s = lat.summary()
    assert s["n_onset_alerts"] == 0 and math.isnan(s["onset_median"])
    assert math.isnan(s["sustained_p95"])
    empty = alert_latency(EMPTY, [LiveEvent("onset", "a", 1.0, 0.9)])
    assert empty.false_onset_alerts == 1 and empty.per_event.empty


def test_latency_from_a_real_stream():
    """The pipeline's own events: every matched true event has a non-negative onset latency."""
    from emg_pipeline import Pipeline, simulate

    rec = simulate(np.random.default_rng(5), fs=1000.0, duration_s=40.0, n_channels=1,
                   snr_db=20.0)
    pipe = Pipeline(rec.fs, rec.channels, unit="uV")
    ev = []
    for chunk in np.array_split(rec.signal, 400):
        ev.extend(pipe.process(chunk).events)
    ev.extend(pipe.flush().events)
    live = live_episodes(ev)
    eps = pipe.episodes_frame()
    assert np.allclose(live["onset_s"], eps["onset_s"]) and np.allclose(live["offset_s"],
                                                                         eps["offset_s"])
    lat = alert_latency(rec.truth, ev).per_event
    assert lat["matched"].sum() > 0
    got = lat.loc[lat["matched"], "onset_latency_s"]
    assert (got > -0.25).all()
