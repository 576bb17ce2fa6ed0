"""One spasm boundary: the setting moves the classifier, the live alert and the truth together."""

from __future__ import annotations

import numpy as np
import pytest

from emg_pipeline import Pipeline, simulate
from emg_pipeline.labels import Label, Pattern, boundary_frames, label_for, labels_for
from emg_pipeline.settings import PipelineSettings

FS = 1000.0


def _one_contraction(seconds: float) -> np.ndarray:
    """Rest, one steady contraction of ``seconds``, rest (one channel, µV)."""
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 3.0, (round(12.0 * FS), 1))
    i0 = round(3.0 * FS)
    x[i0 : i0 + round(seconds * FS), 0] += rng.normal(0.0, 60.0, round(seconds * FS))
    return x


@pytest.mark.parametrize("spasm_min_s", [1.0, 2.0, 3.0])
def test_the_boundary_setting_moves_label_and_alert(spasm_min_s: float) -> None:
    x = _one_contraction(2.5)
    pipe = Pipeline(FS, 1, unit="uV", spasm_min_s=spasm_min_s)
    events = [*pipe.process(x).events, *pipe.flush().events]
    (episode,) = pipe.episodes
    want = label_for(episode.duration_s, spasm_min_s)
    assert episode.label is want
    assert want is (Label.SPASM if spasm_min_s < 2.5 else Label.TWITCH)
    sustained = [e for e in events if e.kind == "sustained"]
    if want is Label.SPASM:   # the alert fires the moment the episode crosses the boundary
        (alert,) = sustained
        assert alert.time_s - alert.onset_s == pytest.approx(spasm_min_s, abs=0.006)
    else:
        assert not sustained and episode.pattern is Pattern.PHASIC


def test_simulated_truth_follows_the_boundary() -> None:
    rng = np.random.default_rng(0)
    rec = simulate(rng, fs=500.0, duration_s=120.0, spasm_min_s=5.0)
    want = labels_for(rec.truth["duration_s"], 5.0)
    assert (rec.truth["label"].to_numpy() == want).all()
    assert set(rec.truth["label"]) == {Label.TWITCH, Label.SPASM}


def test_the_default_boundary_is_the_settings_default() -> None:
    assert label_for(PipelineSettings().spasm_min_s) is Label.SPASM
    assert boundary_frames(PipelineSettings().spasm_min_s, 0.005) == 400
    assert Label.SPASM == "spasm" and str(Label.TWITCH) == "twitch"
