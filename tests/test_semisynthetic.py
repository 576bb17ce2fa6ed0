"""Semi-synthetic recordings spliced from real EMG, and the two-device agreement."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import signal

from emg_pipeline.bench import semi
from emg_pipeline.labels import label_for
from emg_pipeline.sources import semisynthetic as ss
from emg_pipeline.sources.synthetic import TRUTH_COLUMNS

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def stretches() -> dict[str, ss.Stretches]:
    if not DATA.is_dir():
        pytest.skip("shared recordings absent")
    found = ss.load_stretches(DATA)
    if not found:
        pytest.skip("no usable shared recordings")
    return found


def _band(rec) -> np.ndarray:
    hi = min(450.0, 0.45 * rec.fs)
    sos = signal.butter(4, [20.0, hi], btype="bandpass", fs=rec.fs, output="sos")
    return signal.sosfiltfilt(sos, rec.signal - np.median(rec.signal, axis=0), axis=0)


def test_absent_folder_gives_nothing(tmp_path):
    assert ss.load_stretches(tmp_path / "missing") == {}
    result = semi.run_semi(tmp_path / "missing", 2, 0)
    assert result["rows"] == [] and "no data folder" in result["skipped"]
    assert "Skipped" in semi.section(result)


def test_devices_and_stretches(stretches):
    assert set(stretches) <= set(ss.DEVICES)
    assert {"myo", "plux-adductor"} <= set(stretches)
    assert ss.load_stretches(DATA)["myo"] is stretches["myo"]  # cached
    for st in stretches.values():
        counts = ss.stretch_counts(st)
        assert counts["rest"] > 0 and counts["contraction"] > 0
        for c in range(len(st.channels)):
            level = st.rest_rms[c]
            assert all(level / 1.25 - 1e-9 <= s.rms <= 1.25 * level + 1e-9 for s in st.rest[c])
            assert all(s.rms >= 3.0 * level - 1e-9 for s in st.contraction[c])
            assert all(s.source in st.sources and s.channel == c
                       for s in st.rest[c] + st.contraction[c])
    assert stretches["myo"].fs == 200.0 and len(stretches["myo"].channels) == 8


@pytest.mark.parametrize("device", ["myo", "plux-adductor", "bitalino", "openbci"])
def test_contraction_samples_are_the_stretch(stretches, device):
    """Truth is exact by construction: the placed stretch's own samples, unfaded."""
    st = stretches.get(device)
    if st is None:
        pytest.skip(f"{device} absent")
    rng = np.random.default_rng(11)
    n = round(40.0 * st.fs)
    for c in range(len(st.channels)):
        if not st.contraction[c]:
            continue
        plan = ss._channel_plan(rng, st, c, n, 2.0)
        assert sum(p.length for p in plan) == n
        y = ss._splice(rng, plan, n, st.fs)
        pos = checked = 0
        for k, piece in enumerate(plan):
            src = piece.stretch.data[piece.stretch.pad + piece.start:][: piece.length]
            if piece.active:
                np.testing.assert_array_equal(y[pos : pos + piece.length], src)
                assert piece.stretch in st.contraction[c]
                assert not plan[k - 1].active and not plan[k + 1].active
                checked += 1
            else:
                assert piece.stretch in st.rest[c]
            pos += piece.length
        assert checked > 0
        break


@pytest.mark.parametrize("device", list(ss.DEVICES))
def test_draw_truth_and_signal(stretches, device):
    st = stretches.get(device)
    if st is None:
        pytest.skip(f"{device} absent")
    rec = ss.draw(np.random.default_rng(5), st, 60.0, spasm_min_s=2.0)
    # one device per recording
    assert rec.fs == st.fs and rec.channels == st.channels and rec.unit == st.unit
    assert rec.signal.shape == (round(60.0 * st.fs), len(st.channels))
    assert np.isfinite(rec.signal).all()
    if st.lsb is not None:  # on the device's converter grid and in its range
        steps = (rec.signal - np.asarray(st.grid)) / st.lsb
        assert np.allclose(steps, np.round(steps), atol=1e-6)
    if st.limits is not None:
        assert rec.signal.min() >= st.limits[0] and rec.signal.max() <= st.limits[1]
    truth = rec.truth
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    assert len(truth) > 0 and set(truth["channel"]) <= set(st.channels)
    np.testing.assert_allclose(truth["offset_s"] - truth["onset_s"], truth["duration_s"])
    assert (truth["onset_s"] >= 2.0).all() and (truth["offset_s"] <= rec.duration_s).all()
    for row in truth.itertuples():
        assert row.label == label_for(row.duration_s, 2.0).value
        assert row.pattern == ("phasic" if row.duration_s < 2.0 else "tonic")
        # onsets and offsets on the sample grid
        assert abs(row.onset_s * rec.fs - round(row.onset_s * rec.fs)) < 1e-6
    assert (truth["snr_db"] > 6.0).all()
    # events of one channel never overlap and are at least 0.8 s apart
    for _, group in truth.groupby("channel"):
        gaps = group["onset_s"].to_numpy()[1:] - group["offset_s"].to_numpy()[:-1]
        assert (gaps >= 0.8 - 1e-9).all()
    # in-band RMS inside the truth spans well above the rest (0.3 s away from any span)
    band = _band(rec)
    t = np.arange(band.shape[0]) / rec.fs
    for c, name in enumerate(rec.channels):
        spans = truth[truth["channel"] == name]
        if spans.empty:
            continue
        inside = np.zeros(t.shape, dtype=bool)
        near = np.zeros(t.shape, dtype=bool)
        for on, off in zip(spans["onset_s"], spans["offset_s"], strict=True):
            inside |= (t >= on) & (t < off)
            near |= (t >= on - 0.3) & (t < off + 0.3)
        rms_in = math.sqrt(np.mean(band[inside, c] ** 2))
        rms_rest = math.sqrt(np.mean(band[~near, c] ** 2))
        assert rms_in > 2.0 * rms_rest


def test_draw_mixes_twitches_and_spasms(stretches):
    truth = pd.concat([ss.draw(np.random.default_rng(s), stretches["myo"], 60.0).truth
                       for s in range(2)])
    assert {"twitch", "spasm"} <= set(truth["label"])
    short = truth[truth["duration_s"] < 0.5]["duration_s"]
    assert len(short) and short.min() >= 0.1 - 1e-9
    assert truth["duration_s"].max() >= 3.0


def test_draw_is_reproducible(stretches):
    st = stretches["plux-adductor"]
    a = ss.draw(np.random.default_rng(7), st, 30.0)
    b = ss.draw(np.random.default_rng(7), st, 30.0)
    c = ss.draw(np.random.default_rng(8), st, 30.0)
    np.testing.assert_array_equal(a.signal, b.signal)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not np.array_equal(a.signal, c.signal)


def test_two_devices(stretches):
    rec = ss.draw(np.random.default_rng(3), stretches["plux-biceps"], 30.0)
    a, b = semi.simulate_devices(rec, np.random.default_rng(0))
    assert a.signal.shape == b.signal.shape == rec.signal.shape
    assert np.isfinite(a.signal).all() and np.isfinite(b.signal).all()
    assert len(np.unique(b.signal)) <= 256
    ratio = np.std(b.signal) / np.std(a.signal)
    assert 0.25 < ratio < 0.5  # gain x0.37
    same = semi.agreement(a, a)
    assert same["f1"] == 1.0 and same["fp"] == 0 and same["fn"] == 0 and same["n_a"] > 0
    assert same["label_agreement"] == 1.0
