"""The contract of every pipeline stage, found by building pipelines, and of Pipeline.

Stages are not listed here: every stage that :func:`build_stages` puts in a
pipeline, for each configuration below, is checked (a new stage is checked the
moment it is added). For each: the outputs it adds to the blocks and the state
it carries do not depend on how the stream is cut; ``reset`` gives the freshly
built behaviour; a pickled copy continues exactly like the original; it follows
the protocol and is documented.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import pickle

import numpy as np
import pytest

from emg_pipeline import Pipeline, simulate
from emg_pipeline.settings import PipelineSettings
from emg_pipeline.stage import Block, Stage
from emg_pipeline.stages import SLICE_S, StreamSpec, build_stages

from .conftest import random_splits

FS = 1000.0
CONFIGS = {
    "default": {},
    "bare": {"artefact_rejection": False, "ecg_suppression": False, "mains": "off"},
    "lowpass_envelope": {"envelope": "lowpass", "mains": "50"},
    "absolute_rule": {"threshold": "absolute_uv"},
}
FIELDS = ("raw", "band", "envelope", "power", "artefact", "no_signal", "ecg")


def _signal() -> np.ndarray:
    rec = simulate(np.random.default_rng(5), fs=FS, duration_s=30.0, n_channels=2, snr_db=12.0,
                   mains_uv=20.0, ecg_uv=[0.0, 400.0], pops_per_min=6.0, lead_in_s=1.0)
    x = rec.signal.copy()
    x[9000:9060, 0] = np.nan   # a gap for the bridge
    return x


def _spec(name: str) -> StreamSpec:
    settings = PipelineSettings(**CONFIGS[name])
    return StreamSpec(FS, ("a", "b"), True, 5, (20.0, 450.0), settings)


def _fold(stages: tuple[Stage, ...], x: np.ndarray, cuts: list[int]) -> list[list[Block]]:
    """Each stage's output blocks, chunk by chunk; the last block ends the stream."""
    out: list[list[Block]] = [[] for _ in stages]
    slices = range(0, x.shape[0], round(SLICE_S * FS))   # the longest block a stage takes
    bounds = [*sorted({0, *cuts, *slices}), x.shape[0], x.shape[0]]
    frame = 0
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        block = Block.of_samples(x[a:b], a, frame, end_of_stream=k == len(bounds) - 2)
        for i, stage in enumerate(stages):
            block = stage.process(block)
            out[i].append(dataclasses.replace(block))   # the record as this stage left it
        frame += block.n_frames
    return out


def _joined(blocks: list[Block], name: str) -> np.ndarray | None:
    parts = [getattr(b, name) for b in blocks]
    if any(p is None for p in parts):
        assert all(p is None for p in parts), f"{name} is sometimes None"
        return None
    return np.concatenate(parts)


def _same(got: list[Block], want: list[Block], label: str) -> None:
    for name in FIELDS:
        g, w = _joined(got, name), _joined(want, name)
        assert (g is None and w is None) or np.array_equal(g, w), f"{label}: {name} differs"
    # decisions: the same set (a chunk's end also ends the detector's segment)
    key = lambda d: (d.frame, d.channel, d.kind, d.onset_frame)  # noqa: E731
    assert sorted((d for b in got for d in b.decisions), key=key) == \
        sorted((d for b in want for d in b.decisions), key=key), f"{label}: decisions differ"
    assert [e for b in got for e in b.events] == [e for b in want for e in b.events], \
        f"{label}: events differ"


def _cases() -> list[tuple[str, int]]:
    return [(name, k) for name in CONFIGS for k in range(len(build_stages(_spec(name))))]


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return _signal()


@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_stage_is_chunking_invariant(config: str, signal: np.ndarray) -> None:
    rng = np.random.default_rng(11)
    whole = _fold(build_stages(_spec(config)), signal, [])
    assert any(b.events for b in whole[-1]), "the test signal should hold episodes"
    for parts in (9, 200, 3000):
        stages = build_stages(_spec(config))
        pieces = _fold(stages, signal, random_splits(rng, signal.shape[0], parts))
        for k, stage in enumerate(stages):
            _same(pieces[k], whole[k], f"{config}/{type(stage).__name__} in {parts} chunks")


@pytest.mark.parametrize(("config", "index"), _cases())
def test_stage_contract(config: str, index: int, signal: np.ndarray) -> None:
    stages = build_stages(_spec(config))
    stage = stages[index]
    name = type(stage).__name__
    assert isinstance(stage, Stage), f"{name} does not follow the stage protocol"
    for what in (type(stage), type(stage).process, type(stage).reset):
        assert inspect.getdoc(what), f"{name}: {what} has no docstring"
    # the input blocks of this stage: what the stages before it make
    head = signal[:12_000]
    inputs = [blocks for blocks in _fold(stages[:index], head, [5000])[-1]] if index else [
        Block.of_samples(head[:5000], 0, 0), Block.of_samples(head[5000:], 5000, 1000)]
    first = [stage.process(dataclasses.replace(b)) for b in inputs[:1]]
    given = {f: getattr(inputs[1], f) for f in FIELDS if getattr(inputs[1], f) is not None}
    before = {f: np.copy(value) for f, value in given.items()}
    # a pickled copy carries the state: it continues exactly like the original
    clone = pickle.loads(pickle.dumps(stage))
    a = clone.process(dataclasses.replace(inputs[1]))
    b = stage.process(dataclasses.replace(inputs[1]))
    _same([a], [b], f"{name}: pickled copy")
    # a stage sets new arrays; it never writes into those it was given
    for f, value in before.items():
        assert np.array_equal(given[f], value, equal_nan=True), f"{name} wrote into its input's {f}"
    # reset gives the freshly built behaviour
    stage.reset()
    _same([stage.process(dataclasses.replace(inputs[0]))], first, f"{name}: after reset")


def test_pipeline_reset_and_pickle(signal: np.ndarray) -> None:
    pipe = Pipeline(FS, ("a", "b"), unit="uV")
    pipe.process(signal[:15_000])
    clone = pickle.loads(pickle.dumps(pipe))
    rest_a, rest_b = pipe.process(signal[15_000:]), clone.process(signal[15_000:])
    assert rest_a.events == rest_b.events
    assert np.array_equal(rest_a.envelope, rest_b.envelope)
    pipe.flush()
    first = pipe.episodes_frame()
    assert len(first) > 0
    pipe.reset()
    assert pipe.n_samples == 0 and not pipe.episodes and not pipe.finished
    pipe.process(signal)
    pipe.flush()
    assert first.equals(pipe.episodes_frame())


def test_a_switched_off_stage_is_absent() -> None:
    spec = _spec("bare")
    names = [type(s).__name__ for s in build_stages(spec)]
    assert "ArtefactGating" not in names and "EcgSuppression" not in names
    pipe = Pipeline(FS, 2, artefact_rejection=False, ecg_suppression=False)
    assert [type(s).__name__ for s in pipe.stages] == names


def test_mains_energies_match_their_numpy_definition() -> None:
    from emg_pipeline.stages import _add_energies

    rng = np.random.default_rng(2)
    before, after = rng.standard_normal((57, 3)), rng.standard_normal((57, 3))
    removed, residual = np.ones(3), np.zeros(3)
    _add_energies(before, after, removed, residual)
    np.testing.assert_allclose(removed, 1 + ((before - after) ** 2).sum(0), rtol=1e-12)
    np.testing.assert_allclose(residual, (after**2).sum(0), rtol=1e-12)
