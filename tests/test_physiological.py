"""The physiological (motor-unit pool) generator: reproducible, truthful, physiological."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import signal

from emg_pipeline.conditioning.filters import bandpass_sos, effective_band
from emg_pipeline.labels import labels_for
from emg_pipeline.sources.physiological import (
    BITS,
    MIN_RATE_PPS,
    RATES_HZ,
    PhysioSpec,
    discharge_times,
    draw_spec,
    firing_rate,
    generate,
    recruitment,
)
from emg_pipeline.sources.synthetic import ARTEFACT_COLUMNS, TRUTH_COLUMNS, SyntheticRecording


def _specs(n: int, seed: int = 3, duration_s: float = 30.0, **kw: object) -> list[PhysioSpec]:
    rng = np.random.default_rng(seed)
    return [draw_spec(rng, duration_s=duration_s, **kw) for _ in range(n)]


def _clean(spec: PhysioSpec, **kw: object) -> PhysioSpec:
    """The spec without mains, ECG, drift or a special start, on a fine 24-bit converter."""
    changes: dict[str, object] = dict(mains_hz=None, ecg_channel=None, drift_uv=0.0,
                                      start="normal", bits=24, lsb_uv=spec.noise_uv / 200,
                                      counts=False)
    changes.update(kw)
    return dataclasses.replace(spec, **changes)


def _in_band(rec: SyntheticRecording) -> np.ndarray:
    lo, hi = effective_band(rec.fs, 20.0, 450.0)
    return signal.sosfilt(bandpass_sos(rec.fs, lo, hi), rec.signal, axis=0)


def _rms(x: np.ndarray) -> float:
    return math.sqrt(float(np.mean(np.square(x))))


# ------------------------------------------------------------------------------ seeding


def test_same_spec_same_recording() -> None:
    a_spec, b_spec = _specs(1)[0], _specs(1)[0]
    assert a_spec == b_spec                             # draw_spec is seeded by its rng
    a, b = generate(a_spec), generate(a_spec)
    assert np.array_equal(a.signal, b.signal) and a.truth.equals(b.truth)
    other = generate(dataclasses.replace(a_spec, seed=a_spec.seed + 1))
    assert not np.array_equal(a.signal, other.signal)


# ------------------------------------------------------------------------------ truth


@pytest.mark.parametrize("spasm_min_s", [2.0, 4.0])
def test_truth_is_consistent(spasm_min_s: float) -> None:
    n_events = 0
    for spec in _specs(6):
        rec = generate(spec, spasm_min_s=spasm_min_s)
        t = rec.truth
        assert tuple(t.columns) == TRUTH_COLUMNS
        assert tuple(rec.artefacts.columns) == ARTEFACT_COLUMNS and rec.artefacts.empty
        assert rec.signal.shape == (round(spec.duration_s * spec.fs), spec.n_channels)
        if t.empty:
            continue
        n_events += len(t)
        assert set(t["channel"]) <= set(rec.channels)
        assert (t["offset_s"] > t["onset_s"]).all() and (t["onset_s"] >= 0).all()
        assert (t["offset_s"] <= rec.duration_s).all()
        assert np.allclose(t["duration_s"], t["offset_s"] - t["onset_s"])
        assert np.array_equal(t["label"].to_numpy(), labels_for(t["duration_s"], spasm_min_s))
        assert set(t["pattern"]) <= {"phasic", "tonic", "clonic"}
        phasic = t["pattern"] == "phasic"
        assert (t.loc[phasic, "duration_s"] < 0.46).all()      # twitches: 30-450 ms drive
        assert (t.loc[~phasic, "duration_s"] > 1.0).all()      # spasms: 3 s or more drive
        # each event's SNR within ±2 dB of the recording's, where the rest noise is nominal
        steady = (t["onset_s"] > spec.start_s + 1.0 if spec.start != "normal"
                  else np.ones(len(t), dtype=bool))
        assert (np.abs(t.loc[steady, "snr_db"] - spec.snr_db) <= 2.0 + 1e-6).all()
        for _, group in t.groupby("channel"):                  # events never overlap
            assert (group["onset_s"].to_numpy()[1:] >= group["offset_s"].to_numpy()[:-1]).all()
    assert n_events >= 10


def _twin(spec: PhysioSpec) -> tuple[SyntheticRecording, SyntheticRecording, np.ndarray]:
    """The recording, its rest-only twin (same noise) and the muscle signal alone (µV)."""
    rec = generate(spec)
    rest = generate(dataclasses.replace(spec, rest_only=True))
    return rec, rest, rec.signal - rest.signal


@pytest.mark.parametrize("fs", [200.0, 1000.0, 4000.0])
def test_twitch_and_spasm_are_where_the_truth_says(fs: float) -> None:
    rng = np.random.default_rng(8)
    for _ in range(20):                                 # a recording with both, at 20 dB
        spec = _clean(draw_spec(rng, duration_s=40.0, snr_db=20.0), fs=fs)
        rec, rest, muscle = _twin(spec)
        if {"twitch", "spasm"} <= set(rec.truth["label"]):
            break
    else:
        pytest.fail("no recording with both a twitch and a spasm")
    band, rest_band = _in_band(rec), _in_band(rest)
    near = round(0.01 * fs) + 1
    noise = _rms(rest_band[round(fs):])
    assert noise == pytest.approx(spec.noise_uv, rel=0.05)
    for c, name in enumerate(rec.channels):
        t = rec.truth[rec.truth["channel"] == name]
        quiet = np.ones(rec.signal.shape[0], dtype=bool)
        for on, off in zip(t["onset_s"], t["offset_s"], strict=True):
            i0, i1 = round(on * fs), round(off * fs)
            # well above the rest noise over the span (20 dB ± 2 is 8-13x)
            assert _rms(band[i0:i1, c]) > 5.0 * noise
            # the span runs from the first discharge to the last
            assert np.any(muscle[max(0, i0 - near): i0 + near, c] != 0)
            assert np.any(muscle[max(0, i1 - near): i1 + near, c] != 0)
            quiet[max(0, i0 - round(0.1 * fs)): i1 + round(0.1 * fs)] = False
        # no muscle activity at all away from the truth's spans (potentials last < 0.1 s)
        assert np.all(muscle[quiet, c] == 0)


def test_snr_matches_the_request() -> None:
    rng = np.random.default_rng(21)
    checked = 0
    for fs, snr in ((200.0, 20.0), (1000.0, 12.0), (4000.0, 20.0), (500.0, 3.0)):
        spec = _clean(draw_spec(rng, duration_s=30.0, snr_db=snr), fs=fs, n_channels=2)
        rec, rest, _ = _twin(spec)
        band, rest_band = _in_band(rec), _in_band(rest)
        for c, name in enumerate(rec.channels):
            noise2 = float(np.mean(rest_band[round(fs):, c] ** 2))
            for _, ev in rec.truth[rec.truth["channel"] == name].iterrows():
                assert abs(ev["snr_db"] - snr) <= 2.0 + 1e-6
                i0, i1 = round(ev["onset_s"] * fs), round(ev["offset_s"] * fs)
                # from the recording itself: the span's in-band power less the noise's
                # (where the span is long enough for the noise's share to be known)
                excess = float(np.mean(band[i0:i1, c] ** 2)) / noise2 - 1.0
                if snr >= 12.0 and i1 - i0 >= 50:
                    assert 10 * math.log10(excess) == pytest.approx(ev["snr_db"], abs=1.5)
                # from the muscle alone (recording less its rest-only twin)
                alone = float(np.mean((band[i0:i1, c] - rest_band[i0:i1, c]) ** 2))
                assert 10 * math.log10(alone / noise2) == pytest.approx(ev["snr_db"], abs=0.5)
                checked += 1
    assert checked >= 10


def test_rest_only_has_empty_truth_and_nominal_noise() -> None:
    for spec in _specs(3, rest_only=True):
        rec = generate(spec)
        assert rec.truth.empty and tuple(rec.truth.columns) == TRUTH_COLUMNS
        assert not np.array_equal(rec.signal[1:], rec.signal[:-1])   # not flat: noise
    spec = _clean(_specs(1, seed=5, rest_only=True)[0])
    band = _in_band(generate(spec))[round(spec.fs):]
    for c in range(spec.n_channels):
        assert _rms(band[:, c]) == pytest.approx(spec.noise_uv, rel=0.05)


# ------------------------------------------------------------------------------ motor units


def test_firing_rate_follows_the_excitation() -> None:
    e = np.array([0.5, 2.0, 2.5, 10.0, 20.0, 100.0])
    assert firing_rate(e, 2.0, 30.0).tolist() == [0.0, 8.0, 8.5, 16.0, 26.0, 30.0]
    assert firing_rate(e, 2.0, 30.0, min_rate=10.0, gain=0.5).tolist() == [
        0.0, 10.0, 10.25, 14.0, 19.0, 30.0]


@pytest.mark.parametrize(("rate", "cv"), [(8.0, 0.1), (16.0, 0.2), (30.0, 0.3), (20.0, 0.4)])
def test_discharges_at_a_steady_rate(rate: float, cv: float) -> None:
    fs, seconds = 1000.0, 40.0
    t = discharge_times(np.full(round(seconds * fs), rate), fs, np.random.default_rng(4), cv)
    assert t[0] == 0.0                                  # a discharge at recruitment
    isi = np.diff(t)
    assert (isi > 0).all() and t[-1] < seconds
    # a renewal count: its SD is about cv sqrt(count); allow four of them
    expected = rate * seconds
    assert t.size == pytest.approx(expected, abs=4 * cv * math.sqrt(expected) + 2)
    assert float(isi.mean()) == pytest.approx(1.0 / rate, rel=0.06)
    # Gaussian intervals of that CV (clipping the steps at ±0.9 trims it a little at 0.4)
    assert float(isi.std() / isi.mean()) == pytest.approx(cv, abs=0.04)
    assert isi.min() >= 0.1 / rate - 1e-9


def test_discharges_restart_with_each_recruitment_and_follow_the_rate() -> None:
    fs = 1000.0
    rate = np.zeros(6000)
    rate[1000:2000] = 10.0                              # 1 s at 10 pps
    rate[2500:2520] = 20.0                              # 20 ms: a single discharge
    rate[3000:6000] = np.linspace(8.0, 32.0, 3000)      # a ramp
    t = discharge_times(rate, fs, np.random.default_rng(0), 0.1)
    assert {1.0, 2.5, 3.0} <= set(t.tolist())           # each episode starts with a discharge
    assert np.all(rate[(t * fs).astype(int)] > 0)       # never while not recruited
    assert np.sum((t >= 1.0) & (t < 2.0)) == pytest.approx(10.5, abs=1.5)   # 10 intervals
    assert np.sum((t >= 2.5) & (t < 2.6)) == 1
    assert np.sum((t >= 3.0) & (t < 6.0)) == pytest.approx(60, abs=3)   # mean 20 pps
    early, late = np.diff(t[(t >= 3.0) & (t < 4.0)]), np.diff(t[(t >= 5.0) & (t < 6.0)])
    assert early.mean() > 1.8 * late.mean()             # intervals shorten as the rate rises
    assert discharge_times(np.zeros(100), fs, np.random.default_rng(0)).size == 0


def test_the_pool_is_in_the_physiological_range() -> None:
    for spec in _specs(40):
        assert 80 <= spec.n_units <= 200 and 0.1 <= spec.isi_cv <= 0.3
        assert 0.3 <= spec.cramp_cv <= 0.45 and spec.min_rate == MIN_RATE_PPS
        rte, pfr, e_max = recruitment(spec)
        assert np.all(np.diff(rte) > 0) and rte[-1] == pytest.approx(spec.recruit_range)
        assert rte[-1] / rte[0] == pytest.approx(spec.recruit_range ** (1 - 1 / spec.n_units))
        assert 25.0 <= pfr[0] <= 35.0 and np.all(np.diff(pfr) < 0)
        assert pfr[-1] >= 10.0 and pfr[-1] <= pfr[0] - 5.0
        # at full drive every unit fires at its peak rate; all rates within 8-35 pps
        for drive in (0.05, 0.3, 1.0):
            rates = np.array([firing_rate(drive * e_max, float(r), float(p), spec.min_rate,
                                          spec.rate_gain) for r, p in zip(rte, pfr,
                                                                           strict=True)])
            fired = rates[rates > 0]
            assert fired.size and fired.min() >= MIN_RATE_PPS and fired.max() <= 35.0
        top = [firing_rate(e_max, float(r), float(p), spec.min_rate, spec.rate_gain)
               for r, p in zip(rte, pfr, strict=True)]
        assert np.allclose(top, pfr)


# ------------------------------------------------------------------------------ converter


def test_converter_steps_and_units() -> None:
    for spec in _specs(6, seed=4, duration_s=15.0):
        rec = generate(spec)
        steps = rec.signal if spec.counts else rec.signal / spec.lsb_uv
        assert np.allclose(steps, np.round(steps), atol=1e-6)
        assert np.abs(steps).max() <= 2 ** (spec.bits - 1)
        assert rec.unit == ("counts" if spec.counts else "uV")
        # the same recording in the other unit: the same steps
        other = generate(dataclasses.replace(spec, counts=not spec.counts))
        counts, uv = (rec, other) if spec.counts else (other, rec)
        assert np.allclose(counts.signal * spec.lsb_uv, uv.signal)
        assert counts.truth.equals(uv.truth)


@pytest.mark.parametrize("bits", [8, 12, 24])
def test_quantised_to_the_drawn_bit_depth(bits: int) -> None:
    spec = _specs(1, snr_db=6.0)[0]
    s = _clean(spec, bits=bits, lsb_uv=spec.noise_uv / 2.0, counts=False)
    x = generate(s).signal
    steps = x / s.lsb_uv
    assert np.allclose(steps, np.round(steps), atol=1e-6)          # on the converter's grid
    assert steps.min() >= -(2 ** (bits - 1)) and steps.max() <= 2 ** (bits - 1) - 1
    assert np.unique(steps).size > 10                               # the noise spans steps
    if bits == 8:
        assert np.unique(steps).size <= 256
    else:                                                           # room to spare: no rail
        assert np.abs(steps).max() < 2 ** (bits - 2)


def test_draws_are_wide_and_conditions_flat() -> None:
    specs = _specs(60)
    assert {s.fs for s in specs} == set(RATES_HZ)
    assert {s.bits for s in specs} == set(BITS)
    assert any(s.mains_hz is None for s in specs) and {50.0, 60.0} <= {s.mains_hz for s in specs}
    assert {s.start for s in specs} == {"normal", "quiet", "noisy"}
    assert any(s.counts for s in specs) and not all(s.counts for s in specs)
    assert any(s.ecg_channel is not None for s in specs)
    assert all(s.ecg_channel is None or s.ecg_channel < s.n_channels for s in specs)
    for s in specs:
        full = s.full_scale_uv
        assert s.drift_uv <= 0.3 * full + 1e-9
        assert 0.5 <= s.noise_uv / s.lsb_uv <= (3.0 if s.bits == 8 else 50.0) + 1e-9
    c = specs[0].conditions()
    assert {"fs", "snr_db", "mains", "ecg", "start", "bits", "rest_only", "counts",
            "mains_hz", "ecg_channel"} <= set(c)
    assert all(not isinstance(v, (tuple, list, dict)) for v in c.values())
    assert c["mains"] in {"off", "50", "60"} and isinstance(c["ecg"], bool)
