"""The randomized generator of the robustness suite: reproducible, truthful, wide."""

from __future__ import annotations

import numpy as np
import pytest

from emg_pipeline.labels import labels_for
from emg_pipeline.sources import physiological
from emg_pipeline.sources.randomized import RATES_HZ, draw_spec, generate


def _specs(n: int, **kw: object) -> list:
    rng = np.random.default_rng(3)
    return [draw_spec(rng, duration_s=30.0, **kw) for _ in range(n)]


def test_same_spec_same_recording() -> None:
    spec = _specs(1)[0]
    a, b = generate(spec), generate(spec)
    assert np.array_equal(a.signal, b.signal) and a.truth.equals(b.truth)


@pytest.mark.parametrize("spasm_min_s", [2.0, 4.0])
def test_truth_is_consistent(spasm_min_s: float) -> None:
    for spec in _specs(6):
        rec = generate(spec, spasm_min_s=spasm_min_s)
        t = rec.truth
        assert (t["offset_s"] > t["onset_s"]).all()
        assert (t["offset_s"] <= rec.duration_s).all()
        assert np.array_equal(t["label"].to_numpy(), labels_for(t["duration_s"], spasm_min_s))
        assert abs(float(np.median(t["snr_db"])) - spec.snr_db) < 3.0 if len(t) else True
        # events on one channel never overlap
        for _, group in t.groupby("channel"):
            assert (group["onset_s"].to_numpy()[1:] >= group["offset_s"].to_numpy()[:-1]).all()


def test_converter_steps_and_units() -> None:
    for spec in _specs(8):
        rec = generate(spec)
        steps = rec.signal if spec.counts else rec.signal / spec.lsb_uv
        assert np.allclose(steps, np.round(steps))
        assert np.abs(steps).max() <= 2 ** (spec.bits - 1)
        assert rec.unit == ("counts" if spec.counts else "uV")


def test_rest_only_has_no_events_and_draws_are_wide() -> None:
    rec = generate(_specs(1, rest_only=True)[0])
    assert rec.truth.empty
    specs = _specs(60)
    assert {s.fs for s in specs} == set(RATES_HZ)
    assert {s.bits for s in specs} >= {8, 24}
    assert any(s.mains_hz is None for s in specs) and any(s.mains_hz == 60.0 for s in specs)
    assert {s.start for s in specs} == {"normal", "quiet", "noisy"}


@pytest.mark.parametrize("draw", [draw_spec, physiological.draw_spec],
                         ids=["randomized", "physiological"])
def test_the_converter_spans_at_least_42_times_the_rest_noise(draw) -> None:
    """A usable converter (the Myo's 8 bits hold 1-3 steps of rest noise in ±127)."""
    rng = np.random.default_rng(5)
    for _ in range(400):
        spec = draw(rng, duration_s=30.0)
        assert 2 ** (spec.bits - 1) * spec.lsb_uv >= 42.0 * spec.noise_uv
        assert 0.5 <= spec.noise_uv / spec.lsb_uv <= 50.0
