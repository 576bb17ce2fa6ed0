"""One contract for the signal components the stages use: chunking invariance, purity,
reset, pickle (the stages themselves: test_stages.py)."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
from scipy import signal

from emg_pipeline.conditioning import (
    ArtefactGate,
    EcgSuppressor,
    FlatLine,
    MainsCanceller,
    NanBridge,
    SosFilter,
)
from emg_pipeline.conditioning.filters import bandpass_sos
from emg_pipeline.envelope import Envelope
from emg_pipeline.framing import Framer, frame_sum_squares
from emg_pipeline.sources.synthetic import simulate
from emg_pipeline.stage import Stage  # components share the method names of the protocol

from .conftest import feed, random_splits

FS = 1000.0


def _signal(rng: np.random.Generator) -> np.ndarray:
    rec = simulate(rng, fs=FS, duration_s=12.0, n_channels=3, snr_db=15.0, mains_uv=30.0,
                   pops_per_min=30.0, lead_in_s=1.0)
    x = rec.signal.copy()
    x[3000:3040, 1] = np.nan  # a gap, to exercise the bridge everywhere
    return x


def _stages() -> dict[str, object]:
    sos = bandpass_sos(FS, 20.0, 450.0)
    return {
        "bridge": lambda: NanBridge(3),
        "sos": lambda: SosFilter(sos, 3),
        "mains_auto": lambda: MainsCanceller(FS, 3, "auto", band_hz=(20, 450)),
        "mains_50": lambda: MainsCanceller(FS, 3, "50", band_hz=(20, 450)),
        "envelope_rms": lambda: Envelope(FS, 3, frame_len=5, window_s=0.1),
        "envelope_lowpass": lambda: Envelope(FS, 3, frame_len=5, window_s=0.1, kind="lowpass"),
        "framer": lambda: Framer(7, 3, frame_sum_squares),
        "flat_line": lambda: FlatLine(FS, 3, frame_len=5),
    }


def _prepare(name: str, x: np.ndarray) -> np.ndarray:
    # stages after the bridge expect finite input
    return x if name == "bridge" else np.nan_to_num(x)


@pytest.mark.parametrize("name", list(_stages()))
def test_stage_is_chunking_invariant(name: str, rng: np.random.Generator) -> None:
    make = _stages()[name]
    x = _prepare(name, _signal(rng))
    whole_stage = make()
    whole = whole_stage.process(x)
    for trial in range(3):
        stage = make()
        cuts = random_splits(rng, x.shape[0], parts=[5, 40, 400][trial])
        pieces = feed(stage.process, x, cuts)
        joined = np.concatenate(pieces)
        assert np.array_equal(joined, whole), f"{name}: output depends on chunking"


@pytest.mark.parametrize("name", list(_stages()))
def test_stage_contract(name: str, rng: np.random.Generator) -> None:
    make = _stages()[name]
    x = _prepare(name, _signal(rng))
    stage = make()
    assert isinstance(stage, Stage)
    assert type(stage).__doc__ and type(stage).process.__doc__ and type(stage).reset.__doc__
    before = x.copy()
    first = stage.process(x)
    assert np.array_equal(x, before, equal_nan=True), f"{name} modified its input"
    # pickling carries the state: the copy continues exactly like the original
    clone = pickle.loads(pickle.dumps(stage))
    assert np.array_equal(clone.process(x[:777]), stage.process(x[:777]))
    # reset gives the freshly built behaviour
    stage.reset()
    assert np.array_equal(stage.process(x), first)


def test_artefact_gate_is_chunking_invariant(rng: np.random.Generator) -> None:
    x = np.nan_to_num(_signal(rng))
    band = SosFilter(bandpass_sos(FS, 20.0, 450.0), 3).process(x)
    env = Envelope(FS, 3, 5, 0.1).process(band)

    def run(cuts: list[int]) -> np.ndarray:
        gate = ArtefactGate(FS, 3, 5, 0.1)
        bounds = [0, *cuts, x.shape[0]]
        out = []
        frames_done = 0
        for a, b in itertools.pairwise(bounds):
            n_frames = b // 5 - frames_done
            out.append(gate.process(x[a:b], env[frames_done : frames_done + n_frames]))
            frames_done += n_frames
        return np.concatenate(out)

    whole = run([])
    assert whole.any(), "the electrode pops in the test signal should be marked"
    for parts in (7, 300):
        assert np.array_equal(run(random_splits(rng, x.shape[0], parts)), whole)


def _ecg_signal(rng: np.random.Generator) -> np.ndarray:
    rec = simulate(rng, fs=FS, duration_s=40.0, n_channels=2, snr_db=12.0, mains_uv=20.0,
                   ecg_uv=[0.0, 500.0], pops_per_min=6.0, lead_in_s=1.0)
    return rec.signal


def test_ecg_suppressor_is_chunking_invariant(rng: np.random.Generator) -> None:
    x = _ecg_signal(rng)
    band = SosFilter(bandpass_sos(FS, 20.0, 450.0), 2).process(x)

    def run(cuts: list[int]) -> tuple[np.ndarray, np.ndarray]:
        ecg = EcgSuppressor(FS, 2, 5, (20.0, 450.0))
        parts = [ecg.process(x[a:b], band[a:b]) for a, b in itertools.pairwise([0, *cuts, len(x)])]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    whole, flags = run([])
    assert flags[:, 1].mean() > 0.8 and not flags[:, 0].any(), "ECG is on channel 2 only"
    for parts in (7, 300, 4000):
        y, f = run(random_splits(rng, x.shape[0], parts))
        assert np.array_equal(y, whole) and np.array_equal(f, flags)


def test_artefact_gate_with_heartbeats_is_chunking_invariant(rng: np.random.Generator) -> None:
    x = _ecg_signal(rng)
    band = SosFilter(bandpass_sos(FS, 20.0, 450.0), 2).process(x)
    band, flags = EcgSuppressor(FS, 2, 5, (20.0, 450.0)).process(x, band)
    env = Envelope(FS, 2, 5, 0.1).process(band)

    def run(cuts: list[int]) -> np.ndarray:
        gate = ArtefactGate(FS, 2, 5, 0.1)
        out, done = [], 0
        for a, b in itertools.pairwise([0, *cuts, x.shape[0]]):
            n = b // 5 - done
            out.append(gate.process(x[a:b], env[done : done + n], flags[done : done + n]))
            done += n
        return np.concatenate(out)

    whole = run([])
    for parts in (7, 300, 4000):
        assert np.array_equal(run(random_splits(rng, x.shape[0], parts)), whole)


@pytest.mark.parametrize("n_channels", [1, 3, 8])
def test_sosfilt_state_matches_scipy_sosfilt(rng: np.random.Generator, n_channels: int) -> None:
    # the compiled multichannel kernel gives scipy's output and state bit for bit
    from emg_pipeline.conditioning import filters

    sos = bandpass_sos(FS, 20.0, 450.0)
    x = rng.standard_normal((500, n_channels))
    zi = rng.standard_normal((n_channels, sos.shape[0], 2))
    y, zf = filters.sosfilt_state(sos, x, zi)
    y_ref, zf_ref = signal.sosfilt(sos, x, axis=0, zi=np.moveaxis(zi, 0, -1))
    assert np.array_equal(y, y_ref)
    assert np.array_equal(zf, np.moveaxis(zf_ref, -1, 0))
    # a strided (column-sliced) input and an empty chunk are handled too
    wide = np.hstack([x, x])[:, :n_channels]
    assert np.array_equal(filters.sosfilt_state(sos, wide, zi)[0], y_ref)
    y0, zf0 = filters.sosfilt_state(sos, x[:0], zi)
    assert y0.shape == (0, n_channels) and np.array_equal(zf0, zi)


def test_sosfilt_state_refuses_wrong_shapes() -> None:
    from emg_pipeline.conditioning import filters

    sos = bandpass_sos(FS, 20.0, 450.0)
    x = np.zeros((50, 3))
    good = np.zeros((3, sos.shape[0], 2))
    for zi in (np.zeros((sos.shape[0], 2, 3)), good[:, :-1], good[:2]):   # scipy's layout, short
        with pytest.raises(ValueError, match="zi must have shape"):
            filters.sosfilt_state(sos, x, zi)
    with pytest.raises(ValueError, match="sos must have shape"):
        filters.sosfilt_state(sos[:, :5], x, good)
    with pytest.raises(ValueError, match="x must have shape"):
        filters.sosfilt_state(sos, x[:, 0], good)
