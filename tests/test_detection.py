"""The detector: its frame walk against an obvious reference, its floor, and no latching.

The compiled frame walk (:func:`~emg_pipeline.detection._walk`) must take the
decisions of :func:`_reference_walk`, a plain per-frame transcription of the
rules in the module's docstring; the block statistics must equal numpy's
quantiles; and the whole detector must give the same decisions, floors and
thresholds whatever the chunking. The behaviour tests check what the design
promises: a wrong start, a baseline that steps up and a sensor that gets
noisier end every episode within ``floor_window_s``, while a strong spasm of
minutes stays one episode.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from emg_pipeline.detection import (
    Detection,
    Detector,
    _block_stats,
    _row_quantiles,
    _walk,
    new_walk,
    rest_level,
    walk_durations,
)
from emg_pipeline.settings import PipelineSettings

from .conftest import random_splits

FRAME_S = 0.005


def _reference_walk(env, skip, rest, ecg, on, off, d: SimpleNamespace) -> list[tuple]:
    """The double threshold, frame by frame, one channel at a time (fixed thresholds)."""
    out = []
    for c in range(env.shape[1]):
        in_episode, run, run_onset, last_rest = False, 0, 0, -1
        onset = last_active = pause = 0
        sustained = False
        for k in range(env.shape[0]):
            if skip[k, c]:
                run = 0
                if in_episode and pause > 0:   # an artefact after a pause began: pause
                    pause += 1
                    if pause >= d.gap:
                        in_episode = False
                        out.append((2, c, k, onset, last_active + 1))
                continue
            active = env[k, c] > off[c] and not rest[k, c]
            if in_episode:
                if active:
                    last_active, pause = k, 0
                    if not sustained and k - onset + 1 >= d.spasm:
                        sustained = True
                        out.append((1, c, k, onset, -1))
                else:
                    last_rest, pause = k, pause + 1
                    if pause >= d.gap:
                        in_episode = False
                        out.append((2, c, k, onset, last_active + 1))
            elif not active:
                run, last_rest = 0, k
            elif run > 0 or env[k, c] > on[c]:
                if run == 0:
                    run_onset = max(last_rest + 1, k - d.backtrack)
                run += 1
                if run >= (d.min_on_ecg if ecg[k, c] else d.min_on):
                    in_episode, run, onset, last_active, pause = True, 0, run_onset, k, 0
                    out.append((0, c, k, onset, -1))
                    sustained = k - onset + 1 >= d.spasm
                    if sustained:
                        out.append((1, c, k, onset, -1))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_walk_equals_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, C = 4000, 3
    slow = np.repeat(rng.standard_normal((n // 50, C)), 50, axis=0)   # bursts and pauses
    env = np.exp(slow + 0.5 * rng.standard_normal((n, C)))
    skip, rest, ecg = (rng.random((n, C)) < p for p in (0.05, 0.02, 0.3))
    on, off = np.array([2.0, 3.0, 1.5]), np.array([1.0, 2.9, 0.5])
    d = SimpleNamespace(min_on=int(rng.integers(1, 12)), min_on_ecg=int(rng.integers(12, 30)),
                        gap=int(rng.integers(1, 80)), spasm=int(rng.integers(1, 400)),
                        backtrack=int(rng.integers(1, 200)))
    w = new_walk(C)
    w["on"], w["off"] = on, off
    rows = np.empty((2 * n * C + 1, 5), dtype=np.int64)
    found = _walk(env, skip, rest, ecg, 0, w, walk_durations(**vars(d)), rows)
    want = _reference_walk(env, skip, rest, ecg, on, off, d)
    got = [tuple(r) for r in rows[:found].tolist()]
    assert sorted(got, key=lambda r: (r[1], r[2], r[0])) == want
    assert len(want) > 10


def test_block_statistics_equal_numpy_quantiles() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((5, 37))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[4] = np.nan
    for q in (0.05, 0.25, 0.5, 0.75):
        (got,) = _row_quantiles(a, q)
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            want = np.nanquantile(a, q, axis=1, method="lower")
        np.testing.assert_array_equal(got, want)
    usable = rng.random((2, 100)) < 0.7
    usable[1, :60] = False   # under half usable: no level
    level, spread = rest_level(a[:2, :1].repeat(100, axis=1) + rng.standard_normal((2, 100)),
                               usable)
    assert np.isfinite(level[0]) and np.isnan(level[1]) and np.isnan(spread[1])


def test_compiled_block_statistics_equal_the_numpy_ones() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        log_env = rng.standard_normal((4, 100)) * rng.uniform(0.1, 3)
        usable = rng.random((4, 100)) < rng.uniform(0.3, 1.0)
        want = rest_level(log_env, usable)
        got = np.empty(4), np.empty(4)
        _block_stats(log_env, usable, *got)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def _feed(det: Detector, env: np.ndarray, art: np.ndarray, bounds: list[int]):
    decisions, floors = [], []
    for a, b in itertools.pairwise(bounds):
        decisions += det.process(env[a:b], art[a:b])
        floors.append((a, b, det.floor.copy(), det.on_threshold.copy()))
    return decisions + det.flush(), floors


def test_any_chunking_gives_the_same_decisions_and_floor() -> None:
    rng = np.random.default_rng(7)
    n, C = 30_000, 4
    env = np.exp(0.2 * rng.standard_normal((n, C)))
    for start in range(1000, n, 2300):
        env[start : start + int(rng.integers(5, 900)), int(rng.integers(0, C))] *= 20.0
    env[5000:9000, 1] *= 0.2
    art = rng.random((n, C)) < 0.02
    whole, floors = _feed(Detector(C, FRAME_S, PipelineSettings(), True), env, art, [0, n])
    assert len(whole) > 20
    for parts in (7, 300, 5000):
        cuts = [0, *random_splits(rng, n, parts), n]
        got, got_floors = _feed(Detector(C, FRAME_S, PipelineSettings(), True), env, art, cuts)
        assert got == whole
        np.testing.assert_array_equal(got_floors[-1][2], floors[-1][2])
        np.testing.assert_array_equal(got_floors[-1][3], floors[-1][3])


def _episodes(decisions: list[Detection]) -> list[tuple[float, float]]:
    return [(d.onset_frame * FRAME_S, d.offset_frame * FRAME_S)
            for d in decisions if d.kind == "end"]


def _bursts(n_s: float, rest: float, bursts: list[tuple[float, float, float]],
            seed: int = 0) -> np.ndarray:
    """An envelope: log-normal rest at ``rest`` with bursts ``(start_s, length_s, level)``."""
    rng = np.random.default_rng(seed)
    n = round(n_s / FRAME_S)
    env = rest * np.exp(0.15 * rng.standard_normal(n))
    for start, length, level in bursts:
        a, b = round(start / FRAME_S), min(n, round((start + length) / FRAME_S))
        env[a:b] = level * np.exp(0.15 * rng.standard_normal(max(0, b - a)))
    return env[:, None]


def _detect(env: np.ndarray, **settings: object) -> list[tuple[float, float]]:
    det = Detector(1, FRAME_S, PipelineSettings(**settings), True)
    art = np.zeros(env.shape, dtype=bool)
    return _episodes(det.process(env, art) + det.flush())


def _latch_bound(step: float) -> float:
    """How long a level ``step`` times the rest may hold an episode (the floor's tiers)."""
    s = PipelineSettings()
    return s.floor_window_s if step <= s.floor_hold_rise else s.floor_hold_s


def test_a_quiet_start_does_not_latch() -> None:
    # 20 s at a third of the later rest (a quiet start), then rest with brief bursts
    bursts = [(t, 0.3, 20.0) for t in np.arange(25.0, 100.0, 5.0)]
    env = _bursts(100.0, 3.0, bursts)
    env[: round(20.0 / FRAME_S)] /= 3.0
    found = _detect(env)
    bound = _latch_bound(3.0)
    assert all(off - on <= bound + 1.0 for on, off in found), found
    late = [(on, off) for on, off in found if on > 20.0 + bound + 1.0]
    assert len(late) == sum(1 for t, _, _ in bursts if t > 20.0 + bound + 1.0)
    assert all(abs(on - t) < 0.05 for (on, _), (t, _, _) in
               zip(late, [b for b in bursts if b[0] > 20.0 + bound + 1.0], strict=True))


@pytest.mark.parametrize("step", [1.8, 3.5])
def test_a_baseline_that_steps_up_becomes_the_rest(step: float) -> None:
    # a sensor that gets noisier (or a posture held): the episode it starts ends
    # within the floor's bound for that step, and the bursts after it are found one by one
    bursts = [(t, 0.5, 60.0) for t in np.arange(50.0, 90.0, 4.0)]
    env = _bursts(90.0, 2.0, bursts)
    env[round(15.0 / FRAME_S):] *= step
    found = _detect(env)
    bound = _latch_bound(step)
    assert all(off <= 15.0 + bound + 1.0 for on, off in found if on < 45.0), found
    assert len([f for f in found if f[0] >= 49.0]) == len(bursts)


def test_a_baseline_that_falls_is_followed_at_once() -> None:
    env = _bursts(60.0, 10.0, [(30.0, 0.4, 30.0)])
    env[round(20.0 / FRAME_S):] /= 5.0   # quieter: the burst is 15x the new rest
    found = _detect(env)
    assert len(found) == 1 and abs(found[0][0] - 30.0) < 0.05


def test_a_strong_spasm_of_minutes_stays_one_episode() -> None:
    env = _bursts(400.0, 2.0, [(30.0, 300.0, 40.0)])
    found = _detect(env)
    assert len(found) == 1
    on, off = found[0]
    assert abs(on - 30.0) < 0.05 and abs(off - 330.0) < 0.05


def test_the_floor_on_a_weak_clonic_spasm_starts_no_new_episodes() -> None:
    # 120 s of 4 Hz bursts reaching 3.5x the rest, each burst of its own height: the
    # floor follows the train within its window, and the bursts' own ups and downs
    # (the spread of the block that sets the floor) start no new episodes; the
    # twitches after the train are found one by one
    rng = np.random.default_rng(3)
    start, length, rate = 30.0, 120.0, 4.0
    twitches = [(t, 0.3, 20.0) for t in np.arange(160.0, 200.0, 5.0)]
    env = _bursts(210.0, 1.0, twitches)
    t = np.arange(env.shape[0]) * FRAME_S
    inside = (t >= start) & (t < start + length)
    height = rng.uniform(0.5, 1.5, round(length * rate) + 1)
    phase = (t[inside] - start) * rate
    env[inside, 0] *= 1.0 + 2.5 * height[phase.astype(int)] * np.sin(np.pi * phase) ** 2
    found = _detect(env)
    assert len([f for f in found if f[0] < start + length]) == 1, found
    assert abs(found[0][0] - start) < 0.5
    late = [on for on, _ in found if on >= start + length]
    assert len(late) == len(twitches)
    assert all(abs(on - t) < 0.05 for on, (t, _, _) in zip(late, twitches, strict=True))


@pytest.mark.parametrize("level", [6.0, 12.0])
def test_a_spasm_held_past_the_window_leaves_the_on_threshold_in_reach(level: float) -> None:
    # the block that straddles the onset (half rest, half spasm) has a wide spread: once
    # the floor stands on the spasm, that one step must not lift the on threshold out of
    # reach of everything (it once went to 50-1000x the floor for a window)
    env = _bursts(60.0, 2.0, [(20.25, 30.0, level)])
    det = Detector(1, FRAME_S, PipelineSettings(), True)
    art = np.zeros(env.shape, dtype=bool)
    ratios = []
    for i in range(0, env.shape[0], det.block_frames):
        det.process(env[i : i + det.block_frames], art[i : i + det.block_frames])
        ratios.append(det.on_threshold[0] / det.floor[0])
    assert np.nanmax(ratios) < 4.0


def test_artefact_frames_are_skipped() -> None:
    env = _bursts(30.0, 1.0, [(10.0, 2.0, 30.0)])
    art = np.zeros(env.shape, dtype=bool)
    a = round(10.8 / FRAME_S)
    env[a : a + 200] = 1e-6   # the gate removed what the artefact explained...
    art[a : a + 200] = True   # ...and flagged it: no pause, the episode goes on
    det = Detector(1, FRAME_S, PipelineSettings(), True)
    found = _episodes(det.process(env, art) + det.flush())
    assert len(found) == 1 and abs(found[0][1] - 12.0) < 0.05


def test_an_artefact_in_a_pause_goes_on_with_the_pause() -> None:
    # a twitch, 0.1 s of rest, then 1.2 s of a movement (flagged frames, the gate's
    # corrected envelope far below the rest), then a spasm: two episodes, not one
    env = _bursts(30.0, 1.0, [(10.0, 0.2, 30.0), (11.5, 5.0, 30.0)])
    art = np.zeros(env.shape, dtype=bool)
    a, b = round(10.3 / FRAME_S), round(11.5 / FRAME_S)
    env[a:b] = 1e-6
    art[a:b] = True
    det = Detector(1, FRAME_S, PipelineSettings(), True)
    found = _episodes(det.process(env, art) + det.flush())
    assert len(found) == 2, found
    assert abs(found[0][0] - 10.0) < 0.05 and abs(found[0][1] - 10.2) < 0.05
    # the spasm's onset may be dated back across the movement (at most 1 s)
    assert 10.2 < found[1][0] <= 11.5 and found[1][1] > 16.0


def test_flush_closes_open_episodes_as_truncated() -> None:
    env = _bursts(20.0, 1.0, [(15.0, 10.0, 30.0)])
    det = Detector(1, FRAME_S, PipelineSettings(), True)
    det.process(env, np.zeros(env.shape, dtype=bool))
    (end,) = det.flush()
    assert end.kind == "end" and end.truncated and end.offset_frame == env.shape[0]
    assert det.flush() == []


def test_absolute_rule_sets_thresholds_above_the_floor() -> None:
    env = _bursts(5.0, 3.0, [])
    det = Detector(1, FRAME_S, PipelineSettings(threshold="absolute_uv"), True)
    det.process(env, np.zeros(env.shape, dtype=bool))
    np.testing.assert_allclose(det.on_threshold - det.floor, 8.0)
    np.testing.assert_allclose(det.off_threshold - det.floor, 2.0)
    with pytest.raises(ValueError, match="calibrated"):
        Detector(1, FRAME_S, PipelineSettings(threshold="absolute_uv"), False)


def test_frames_of_another_shape_are_an_error() -> None:
    det = Detector(2, FRAME_S, PipelineSettings(), True)
    env, art = np.ones((4, 2)), np.zeros((4, 2), dtype=bool)
    for args in ((np.ones((4, 3)), np.zeros((4, 3), dtype=bool)),
                 (env, np.zeros((5, 2), dtype=bool)),
                 (env, art, np.zeros((3, 2), dtype=bool)),
                 (env, art, None, np.zeros((4, 1), dtype=bool))):
        with pytest.raises(ValueError, match="one shape"):
            det.process(*args)
    assert det.frame_index == 0  # nothing was consumed
    assert det.process(env, art) == [] and det.frame_index == 4


def test_thresholds_handed_out_do_not_change_later() -> None:
    det = Detector(1, FRAME_S, PipelineSettings(), True)
    env = _bursts(2.0, 1.0, [])
    det.process(env, np.zeros(env.shape, dtype=bool))
    first = det.on_threshold
    kept = first.copy()
    det.process(env * 5.0, np.zeros(env.shape, dtype=bool))
    np.testing.assert_array_equal(first, kept)
    assert not first.flags.writeable
