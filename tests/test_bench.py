"""The benchmark machinery: reference rules, peers adapters, and an end-to-end smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emg_pipeline.bench.methods import (
    available_peers,
    crossings_to_intervals,
    intervals_from_activity,
    run_method,
)
from emg_pipeline.bench.real import envelope_reference, load_cases, merge_channels
from emg_pipeline.cli import main

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared recordings absent")


def test_interval_helpers():
    assert intervals_from_activity(np.array([], dtype=bool)).shape == (0, 2)
    assert intervals_from_activity(np.ones(4, dtype=bool)).tolist() == [[0, 4]]
    assert crossings_to_intervals(np.array([], dtype=int), 10).shape == (0, 2)
    assert crossings_to_intervals(np.array([5, 3, 3]), 10).tolist() == [[3, 5]]


def test_merge_channels_unions_overlaps():
    f = pd.DataFrame({"channel": ["a", "b", "c"], "onset_s": [1.0, 1.2, 1.9],
                      "offset_s": [2.0, 1.5, 2.5], "label": ["twitch"] * 3})
    m = merge_channels(f)
    assert m[["onset_s", "offset_s"]].values.tolist() == [[1.0, 2.5]]
    assert merge_channels(f.iloc[:0]).empty


@needs_data
@pytest.mark.parametrize(("rel", "onsets"), [
    ("plux-biosignalsnotebooks/emg_bursts.h5",
     [1.4, 4.8, 7.9, 11.7, 14.7, 17.3, 20.4, 23.3, 26.7]),
    ("biosppy-examples/emg_1.txt", [1.5, 15.6, 25.7, 26.4]),
])
def test_envelope_reference_reproduces_published_onsets(rel, onsets):
    from emg_pipeline.bench.real import _read

    info, x = _read(DATA / rel)
    ref = envelope_reference(x[:, 0], info.fs, info.channels[0])
    assert len(ref) == len(onsets)
    assert np.allclose(ref["onset_s"], onsets, atol=0.15)


@needs_data
def test_reference_counts_and_rest():
    cases = {c.name: c for c in load_cases(DATA)[0]}
    assert len(cases["plux-biosignalsnotebooks/emg_1000_hz_16_bits_solo.h5"].reference) == 21
    solo = cases["plux-biosignalsnotebooks/emg_1000_hz_16_bits_solo.h5"].reference
    assert solo["duration_s"].between(0.1, 0.45).all()
    assert cases["biosppy-examples/emg.txt"].rule == "rest"  # near-rest: no activation
    assert cases["biosppy-examples/emg.txt"].reference.empty
    myo = cases["myo-armband-labelled/right_hand_12345-1/1.txt"]
    assert myo.rule == "cue" and len(myo.reference) == 6
    assert myo.reference["onset_s"].iloc[0] == pytest.approx(4.995, abs=0.01)


def test_peers_adapters_when_installed():
    peers, skipped = available_peers()
    if not peers:
        pytest.skip(f"no peer installed: {skipped}")
    rng = np.random.default_rng(0)
    fs = 1000.0
    x = rng.standard_normal((8000, 1))
    x[3000:4000] *= 30
    for method in peers:
        if method.max_samples is not None and method.max_samples < x.shape[0]:
            continue
        try:
            found = run_method(method, x, fs, ["a"], "uV")
        except Exception:  # a peer's own failure: the suite reports it, not a test failure
            continue
        assert list(found.columns[:5]) == ["channel", "onset_s", "offset_s", "duration_s",
                                           "label"]
        assert (found["offset_s"] >= found["onset_s"]).all()


def test_bench_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "report"
    status = main(["bench", "--quick", "--minutes", "0.25", "--suite", "synthetic",
                   "--suite", "real", "--suite", "speed", "--out", str(out), "-q"])
    assert status == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("# emg-pipeline benchmark report", "## Synthetic recordings", "## Speed",
                    "## Real recordings", "### Live alerts"):
        assert heading in text
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert set(data) >= {"synthetic", "real", "speed", "meta"}
    keys = {r["key"] for r in data["synthetic"]["rows"]}
    assert {"snr0", "snr20", "rate200", "rest_ecg", "multi8"} <= keys
    for r in data["synthetic"]["rows"]:
        assert r["f1"] is None or 0.0 <= r["f1"] <= 1.0
    assert data["speed"]["grid"] and all(c["x_real_time"] > 0 for c in data["speed"]["grid"])
    from matplotlib import image

    for name in ("snr.png", "latency.png", "throughput.png"):
        png = image.imread(out / name)
        assert png.ndim == 3 and png.shape[0] > 100
        assert f"]({name})" in text


def test_bench_rejects_bad_input(tmp_path, capsys):
    assert main(["bench", "--suite", "nope"]) == 2
    assert main(["bench", "--minutes", "0", "--out", str(tmp_path)]) == 2
    (tmp_path / "file").write_text("x")
    assert main(["bench", "--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.count("emg-pipeline: error:") == 3 and "Traceback" not in err


def test_plain_notch_comb_removes_a_line_at_nominal_frequency() -> None:
    from emg_pipeline.bench.robust import plain_notch_comb

    fs = 1000.0
    t = np.arange(20000) / fs
    x = np.sin(2 * np.pi * 50.0 * t)[:, None] + np.sin(2 * np.pi * 150.0 * t)[:, None]
    y = plain_notch_comb(x, fs, 50.0)
    assert np.std(y[5000:]) < 0.01 * np.std(x[5000:])
