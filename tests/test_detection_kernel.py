"""The compiled detector: equal to a plain numpy reference, independent of chunking.

``_Reference`` below is the detector written with numpy array operations (the
way it was before the frame loop was compiled); the compiled
:class:`~emg_pipeline.detection.Detector` must take the same decisions and
keep the same floor and thresholds (up to the last-bit rounding of the
logarithms and exponentials, numpy's being vectorised, the kernel's the C
library's), on adversarial inputs (NaN, inf, zero and negative envelopes,
artefact and no-signal stretches, ECG channels) and unusual settings; and it
must give the same results, bit for bit, whatever the chunking.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from emg_pipeline.detection import (
    _INIT_MAX_BLOCKS,
    _MAX_BACKTRACK_S,
    _NEVER,
    Detection,
    Detector,
    _nan_to_num,
    _npmax,
    _npmin,
    _quantiles3,
    _select,
)
from emg_pipeline.settings import PipelineSettings

from .conftest import random_splits

FRAME_S = 0.005
RTOL = 1e-12  # floors and thresholds: numpy's log and exp against the C library's


def _masked_quantiles(
    values: np.ndarray, mask: np.ndarray, qs: tuple[float, ...]
) -> tuple[np.ndarray, ...]:
    data = np.ascontiguousarray(np.where(mask, values, np.inf).T)
    data.sort(axis=1)
    count = mask.sum(axis=0)
    k = np.maximum((np.array(qs)[:, None] * (count - 1)).astype(np.int64), 0)
    picked = data[np.arange(values.shape[1])[None, :], k]
    return tuple(np.where(count > 0, picked, np.nan))


class _Reference:
    """The detector in numpy array operations (a run boundary at a time in Python)."""

    def __init__(self, n_channels: int, frame_s: float, settings: PipelineSettings) -> None:
        self.n_channels = n_channels
        self.settings = settings
        fr = 1.0 / frame_s
        self._block = max(1, round(settings.floor_block_s * fr))
        self._gap = max(1, math.ceil(settings.merge_gap_s * fr - 1e-9))
        self._min_on = max(1, round(settings.min_on_s * fr))
        self._min_on_ecg = max(self._min_on, round(settings.ecg_min_on_s * fr))
        self._spasm = max(1, math.ceil(settings.spasm_min_s * fr - 1e-9))
        self._backtrack = max(1, round(_MAX_BACKTRACK_S * fr))
        block_s = self._block * frame_s
        self._rise = 1.0 - math.exp(-block_s / settings.floor_rise_tau_s)
        self._fall = 1.0 - math.exp(-block_s / settings.floor_fall_tau_s)
        self._spread_gain = 1.0 - math.exp(-block_s / 5.0)
        self._freeze_blocks = max(1, math.ceil(settings.floor_freeze_max_s / block_s))
        self._warmup = math.ceil(settings.window_s * fr - 1e-9)
        C = n_channels
        self.frame_index = 0
        self.ready = False
        self._log_floor = np.zeros(C)
        self._log_spread = np.zeros(C)
        self.on_threshold = np.full(C, np.inf)
        self.off_threshold = np.full(C, np.inf)
        self._frozen = np.zeros(C, dtype=np.int64)
        self._block_env: list[np.ndarray] = []
        self._block_quiet: list[np.ndarray] = []
        self._init_blocks = 0
        self._h = np.zeros(C, dtype=bool)
        self._last_on = np.full(C, _NEVER, dtype=np.int64)
        self._last_below = np.full(C, _NEVER, dtype=np.int64)
        self._run_start = [0] * C
        self._run_min_on = [self._min_on] * C
        self._run_in_episode = [False] * C
        self._cand_onset = [0] * C
        self._ep_active = [False] * C
        self._ep_onset = [0] * C
        self._ep_last = [0] * C
        self._ep_sustained = [False] * C
        self._ep_floor = [math.nan] * C

    @property
    def floor(self) -> np.ndarray:
        if not self.ready:
            return np.full(self.n_channels, np.nan)
        return np.exp(self._log_floor)

    def process(self, env, artefact, ecg=None, no_signal=None) -> list[Detection]:
        if ecg is None:
            ecg = np.zeros(artefact.shape, dtype=bool)
        if no_signal is None:
            no_signal = np.zeros(artefact.shape, dtype=bool)
        out: list[Detection] = []
        n, i = env.shape[0], 0
        while i < n:
            j = min(n, i + self._block - self.frame_index % self._block)
            self._segment(env[i:j], artefact[i:j] | no_signal[i:j], ecg[i:j], no_signal[i:j], out)
            if self.frame_index % self._block == 0:
                self._end_block()
            i = j
        return out

    def flush(self) -> list[Detection]:
        out = []
        end = self.frame_index
        for c in range(self.n_channels):
            if not self._ep_active[c]:
                continue
            still_on = bool(self._h[c])
            last = end if still_on else self._ep_last[c]
            truncated = still_on or (end - last) < self._gap
            out.append(
                Detection("end", c, end - 1, self._ep_onset[c], last, self._ep_floor[c], truncated)
            )
            self._ep_active[c] = False
        self._h[:] = False
        return out

    def _segment(self, env, art, ecg, no_signal, out) -> None:
        m, f0 = env.shape[0], self.frame_index
        idx = np.arange(f0, f0 + m, dtype=np.int64)[:, None]
        if self.ready:
            above_on = (env > self.on_threshold) & ~art
            resting = (env <= self.off_threshold) | art
        else:
            above_on = np.zeros_like(art)
            resting = np.ones_like(art)
        seg_end = f0 + m
        at_rest = (resting & ~art) | no_signal if self.ready else resting
        r2 = 2 * (idx - f0)
        code = np.where(above_on, r2 + 1, np.where(resting, r2, self._h.astype(np.int64) - 2))
        np.maximum.accumulate(code, axis=0, out=code)
        h = (code & 1).astype(bool)
        last_below = np.where(at_rest, idx, _NEVER)
        np.maximum(last_below[0], self._last_below, out=last_below[0])
        np.maximum.accumulate(last_below, axis=0, out=last_below)
        last_on = np.where(h, idx, _NEVER)
        np.maximum(last_on[0], self._last_on, out=last_on[0])
        np.maximum.accumulate(last_on, axis=0, out=last_on)
        self._block_env.append(env)
        self._block_quiet.append(~(h | art) & ((idx - last_on) >= self._gap))
        change = np.diff(h.view(np.int8), axis=0, prepend=self._h.view(np.int8)[None, :])
        chans, rows = np.nonzero(change.T)
        for c in range(self.n_channels):
            for row in rows[chans == c]:
                f = f0 + int(row)
                if change[row, c] > 0:
                    if self._ep_active[c] and f - self._ep_last[c] >= self._gap:
                        self._end_episode(c, out)
                    self._run_start[c] = f
                    self._run_in_episode[c] = self._ep_active[c]
                    self._cand_onset[c] = max(int(last_below[row, c]) + 1, f - self._backtrack)
                    self._run_min_on[c] = self._min_on_ecg if ecg[row, c] else self._min_on
                else:
                    self._advance_run(c, f, out)
                    if self._run_in_episode[c]:
                        self._ep_last[c] = f
            if h[-1, c]:
                self._advance_run(c, seg_end, out)
                if self._run_in_episode[c]:
                    self._ep_last[c] = seg_end
            elif self._ep_active[c] and seg_end - self._ep_last[c] >= self._gap:
                self._end_episode(c, out)
        self._h = h[-1].copy()
        self._last_below = last_below[-1].copy()
        self._last_on = last_on[-1].copy()
        self.frame_index = seg_end

    def _advance_run(self, c: int, upto: int, out: list[Detection]) -> None:
        start = self._run_start[c]
        if not self._run_in_episode[c]:
            confirm = start + self._run_min_on[c] - 1
            if confirm >= upto:
                return
            self._ep_active[c] = True
            self._ep_onset[c] = self._cand_onset[c]
            self._ep_sustained[c] = False
            self._ep_floor[c] = float(np.exp(self._log_floor[c]))
            self._run_in_episode[c] = True
            out.append(Detection("onset", c, confirm, self._ep_onset[c], floor=self._ep_floor[c]))
        if not self._ep_sustained[c]:
            t = max(start, self._ep_onset[c] + self._spasm - 1)
            if t < upto:
                self._ep_sustained[c] = True
                out.append(Detection("sustained", c, t, self._ep_onset[c], floor=self._ep_floor[c]))

    def _end_episode(self, c: int, out: list[Detection]) -> None:
        last = self._ep_last[c]
        out.append(
            Detection("end", c, last + self._gap - 1, self._ep_onset[c], last, self._ep_floor[c])
        )
        self._ep_active[c] = False

    def _end_block(self) -> None:
        env = np.concatenate(self._block_env)
        quiet = np.concatenate(self._block_quiet)
        self._block_env, self._block_quiet = [], []
        log_env = np.log(np.maximum(env, 1e-12))
        if not self.ready:
            end = self.frame_index
            idx = np.arange(end - env.shape[0], end)[:, None]
            usable = quiet & (env > 0) & (idx >= self._warmup)
            self._init_blocks += 1
            enough = usable.sum(axis=0) >= 0.25 * env.shape[0]
            if not enough.all() and self._init_blocks < _INIT_MAX_BLOCKS:
                return
            usable = np.where(enough[None, :], usable, quiet & (env > 0))
            if not usable.any(axis=0).all():
                return
            q10, q30, q40 = _masked_quantiles(log_env, usable, (0.1, 0.3, 0.4))
            self._log_spread = np.maximum(np.nan_to_num((q40 - q10) / 1.028, nan=1e-3), 1e-3)
            self._log_floor = np.nan_to_num(q30, nan=0.0) + 0.524 * self._log_spread
            self.ready = True
        else:
            usable = quiet.sum(axis=0) >= 0.5 * quiet.shape[0]
            self._frozen = np.where(usable, 0, self._frozen + 1)
            thawed = ~usable & (self._frozen >= self._freeze_blocks)
            mask = np.where(thawed[None, :], True, quiet)
            with np.errstate(invalid="ignore"):
                q10, q50, q90 = _masked_quantiles(log_env, mask, (0.1, 0.5, 0.9))
                update = usable | thawed
                rate = np.where(q50 < self._log_floor, self._fall, self._rise)
                self._log_floor = np.where(
                    update, self._log_floor + rate * (q50 - self._log_floor), self._log_floor
                )
                spread = np.maximum((q90 - q10) / 2.563, 1e-3)
                self._log_spread = np.where(
                    usable, self._log_spread + self._spread_gain * (spread - self._log_spread),
                    self._log_spread,
                )
        s = self.settings
        floor = np.exp(self._log_floor)
        if s.threshold == "absolute_uv":
            self.on_threshold = floor + s.on_uv
            self.off_threshold = floor + s.off_uv
            return
        on = np.maximum(np.exp(s.on_sd * self._log_spread), s.min_on_ratio)
        off = np.maximum(np.exp(s.off_sd * self._log_spread), s.min_off_ratio)
        self.on_threshold = floor * on
        self.off_threshold = floor * np.minimum(off, on)


# ---------------------------------------------------------------- inputs
def _frames(
    rng: np.random.Generator, n: int, n_channels: int, weird: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Envelope frames with rest, bursts, flicker, level shifts, flat lines and artefacts."""
    env = np.empty((n, n_channels))
    for c in range(n_channels):
        x = np.exp(rng.uniform(-2, 3) + 0.3 * rng.standard_normal(n))
        x *= np.repeat(np.exp(rng.normal(0, 0.7, n // 500 + 1)), 500)[:n]
        t = 0
        while t < n:
            t += int(rng.exponential(300))
            d = int(rng.exponential(40)) + 1 if rng.random() < 0.9 else int(rng.integers(300, 2000))
            x[t : t + d] *= np.exp(rng.uniform(0.5, 4))
            if rng.random() < 0.5:  # flicker around the thresholds
                x[t : t + d] *= np.exp(rng.normal(0, 0.8, x[t : t + d].shape[0]))
            t += d
        env[:, c] = x
    art = rng.random((n, n_channels)) < rng.uniform(0, 0.1)
    for _ in range(n // 400):
        s = rng.integers(0, n)
        art[s : s + rng.integers(1, 60), rng.integers(0, n_channels)] = True
    ecg = np.zeros((n, n_channels), dtype=bool)
    for c in range(n_channels):
        if rng.random() < 0.5:
            ecg[:, c] = rng.random(n) < 0.9
    no_signal = np.zeros((n, n_channels), dtype=bool)
    for _ in range(n // 1500 + 1):
        s, c, length = rng.integers(0, n), rng.integers(0, n_channels), rng.integers(1, 600)
        no_signal[s : s + length, c] = True
        env[s : s + length, c] = 0.0 if rng.random() < 0.5 else env[s, c]
    if rng.random() < 0.2:
        no_signal[: rng.integers(0, 3000)] = True
    if weird:
        u = rng.random((n, n_channels))
        env[u < 0.002] = np.nan
        env[(u > 0.002) & (u < 0.003)] = np.inf
        env[(u > 0.003) & (u < 0.006)] = 0.0
        env[(u > 0.006) & (u < 0.007)] = -1.0
        env[(u > 0.007) & (u < 0.0075)] = 1e-300
    ecg_or_none = ecg if rng.random() < 0.8 else None
    return env, art, ecg_or_none, (no_signal if rng.random() < 0.8 else None)


def _key(d: Detection) -> tuple:
    return (d.kind, d.channel, d.frame, d.onset_frame, d.offset_frame, d.floor.hex(),
            d.truncated)


def _state(det: Detector | _Reference) -> tuple:
    arrays = (det.floor, det.on_threshold, det.off_threshold)
    return (det.frame_index, det.ready, *(tuple(float(v).hex() for v in a) for a in arrays))


def _close(a: str, b: str) -> bool:
    x, y = float.fromhex(a), float.fromhex(b)
    return x == y or (math.isnan(x) and math.isnan(y)) or abs(x - y) <= RTOL * abs(y)


def _assert_matches(got: tuple[list, list], ref: tuple[list, list]) -> None:
    """The same decisions and states, floors and thresholds within ``RTOL``."""
    assert len(got[0]) == len(ref[0]) and len(got[1]) == len(ref[1])
    for g, r in zip(got[0], ref[0], strict=True):
        assert [k[:5] + k[6:] for k in g] == [k[:5] + k[6:] for k in r]
        assert all(_close(a[5], b[5]) for a, b in zip(g, r, strict=True)), (g, r)
    for g, r in zip(got[1], ref[1], strict=True):
        assert g[:2] == r[:2]
        for a, b in zip(g[2:], r[2:], strict=True):
            assert all(_close(x, y) for x, y in zip(a, b, strict=True)), (g, r)


def _run(det: Detector | _Reference, inputs: tuple, bounds: list[int]) -> tuple[list, list]:
    env, art, ecg, no_signal = inputs
    decisions, states = [], []
    for a, b in itertools.pairwise(bounds):
        part = [None if x is None else x[a:b] for x in (ecg, no_signal)]
        decisions.append([_key(d) for d in det.process(env[a:b], art[a:b], *part)])
        states.append(_state(det))
    decisions.append([_key(d) for d in det.flush()])
    states.append(_state(det))
    return decisions, states


SETTINGS = [
    {},
    dict(floor_block_s=0.02, merge_gap_s=0.0, min_on_s=0.0, spasm_min_s=0.005, ecg_min_on_s=0.0),
    dict(floor_block_s=0.1, floor_freeze_max_s=0.3, merge_gap_s=0.1, spasm_min_s=0.3),
    dict(threshold="absolute_uv", floor_block_s=0.25),
    dict(threshold="absolute_uv", on_uv=0.5, off_uv=0.5, min_on_s=0.005),
    dict(on_sd=2.0, off_sd=2.0, min_on_ratio=1.0, min_off_ratio=1.0, window_s=1.0),
    dict(on_sd=50.0, off_sd=0.0, floor_rise_tau_s=0.01, floor_fall_tau_s=1000.0,
         floor_block_s=2.0, merge_gap_s=3.0),
    dict(floor_block_s=0.005, merge_gap_s=0.005, ecg_min_on_s=0.5),
]


@pytest.mark.parametrize("case", range(len(SETTINGS)))
def test_compiled_detector_equals_the_numpy_reference(case: int) -> None:
    settings = PipelineSettings(**SETTINGS[case])
    rng = np.random.default_rng([case, 7])
    for n_channels in (1, 3, 8):
        inputs = _frames(rng, int(rng.integers(2000, 6000)), n_channels, weird=bool(case % 2))
        n = inputs[0].shape[0]
        whole = None
        for parts in (0, 5, 300):  # one chunk, large and small chunks (some empty)
            bounds = [0, *random_splits(rng, n, parts), n]
            with np.errstate(invalid="ignore", over="ignore"):
                ref = _run(_Reference(n_channels, FRAME_S, settings), inputs, bounds)
                got = _run(Detector(n_channels, FRAME_S, settings, True), inputs, bounds)
            # the same decisions in the same order, the same state after every call
            _assert_matches(got, ref)
            whole = whole or got
            # and the same decisions, state and floor, bit for bit, whatever the
            # chunking (the order within a call follows the channels)
            assert sorted(k for d in got[0] for k in d) == sorted(k for d in whole[0] for k in d)
            assert got[1][-1] == whole[1][-1]
        with np.errstate(over="ignore"):
            frames = _run(Detector(n_channels, FRAME_S, settings, True), inputs, list(range(n + 1)))
        assert sorted(k for d in frames[0] for k in d) == sorted(k for d in whole[0] for k in d)
        assert frames[1][-1] == whole[1][-1]


def test_state_after_every_chunk_equals_the_reference(rng: np.random.Generator) -> None:
    settings = PipelineSettings()
    inputs = _frames(rng, 6000, 4, weird=True)
    bounds = [0, *random_splits(rng, 6000, 80), 6000]
    with np.errstate(invalid="ignore"):
        ref = _run(_Reference(4, FRAME_S, settings), inputs, bounds)
    _assert_matches(_run(Detector(4, FRAME_S, settings, True), inputs, bounds), ref)


def test_live_chunks_take_decisions_at_their_frames(rng: np.random.Generator) -> None:
    # a 3 s burst on channel 1 of a two-channel stream, in 4-frame chunks
    env = np.exp(0.05 * rng.standard_normal((3000, 2)))
    env[1990:2000, 1] = 0.5
    env[2000:2600, 1] *= 20.0
    env[2600:2610, 1] = 0.5
    det = Detector(2, FRAME_S, PipelineSettings(), True)
    seen, floors = [], []
    for i in range(0, 3000, 4):
        for d in det.process(env[i : i + 4], np.zeros((4, 2), dtype=bool)):
            assert i <= d.frame < i + 4  # taken in the chunk that completes it
            seen.append(d)
            floors.append(det.floor[1])
    assert [(d.kind, d.channel, d.frame) for d in seen] == [
        ("onset", 1, 2009), ("sustained", 1, 2399), ("end", 1, 2699)
    ]
    assert all(d.onset_frame == 2000 for d in seen)
    assert seen[2].offset_frame == 2600
    assert seen[0].floor == floors[0] and seen[1].floor == seen[0].floor
    assert det.active().tolist() == [False, False]
    assert det.flush() == []


def test_many_decisions_in_one_chunk() -> None:
    # a one-frame block, one-frame runs: more decisions than the table holds at once
    settings = PipelineSettings(floor_block_s=0.005, merge_gap_s=0.0, min_on_s=0.0,
                                spasm_min_s=0.005, ecg_min_on_s=0.0)
    env = np.tile([1.0, 1.0, 100.0], 4000)[:, None].repeat(6, axis=1)
    art = np.zeros(env.shape, dtype=bool)
    det = Detector(6, FRAME_S, settings, True)
    whole = det.process(env, art)
    assert len(whole) > det._dec.shape[0]
    with np.errstate(invalid="ignore"):
        ref = _Reference(6, FRAME_S, settings).process(env, art)
    _assert_matches(([[_key(d) for d in whole]], []), ([[_key(d) for d in ref]], []))
    # and the same, bit for bit, in small chunks
    det = Detector(6, FRAME_S, settings, True)
    chunked = [d for i in range(0, env.shape[0], 7)
               for d in det.process(env[i : i + 7], art[i : i + 7])]
    assert [_key(d) for d in chunked] == [_key(d) for d in whole]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 50, 101])
def test_quantiles_equal_numpy_sorting_with_inf_fill(n: int, rng: np.random.Generator) -> None:
    for _ in range(200):
        values = np.round(rng.standard_normal(n), int(rng.integers(0, 3)))
        special = rng.random(n)
        values[special < 0.05] = np.nan
        values[(special > 0.05) & (special < 0.08)] = np.inf
        mask = rng.random(n) < rng.uniform(0, 1)
        qs = tuple(sorted(rng.choice([0.1, 0.3, 0.4, 0.5, 0.9, 0.0, 1.0], 3)))
        expected = [q[0] for q in _masked_quantiles(values[:, None], mask[:, None], qs)]
        picked = values[mask]
        vals = np.empty(n)
        finite = picked[~np.isnan(picked)]
        vals[: finite.shape[0]] = finite
        got = _quantiles3(vals, finite.shape[0], int(np.isnan(picked).sum()), n, *qs)
        np.testing.assert_array_equal(np.array(got), np.array(expected))


def test_select_partitions_around_the_kth_value(rng: np.random.Generator) -> None:
    for n in range(1, 60):
        for _ in range(20):
            a = np.round(rng.standard_normal(n), int(rng.integers(0, 2)))
            if rng.random() < 0.2:
                a[:] = a[0]  # all equal
            lo = int(rng.integers(0, n))
            hi = int(rng.integers(lo + 1, n + 1))
            k = int(rng.integers(lo, hi))
            b = a.copy()
            _select(b, lo, hi, k)
            assert b[k] == np.sort(a[lo:hi])[k - lo]
            assert (b[lo:k] <= b[k]).all() and (b[k + 1 : hi] >= b[k]).all()
            assert np.array_equal(np.sort(b[lo:hi]), np.sort(a[lo:hi]))
            assert np.array_equal(b[:lo], a[:lo]) and np.array_equal(b[hi:], a[hi:])


def test_scalar_helpers_follow_numpy() -> None:
    values = [0.0, -0.0, 1.5, -2.0, 1e-3, np.inf, -np.inf, np.nan, 1e308]
    for a, b in itertools.product(values, values):
        for ours, theirs in ((_npmax, np.maximum), (_npmin, np.minimum)):
            got, expected = ours(a, b), float(theirs(a, b))
            assert got == expected or (math.isnan(got) and math.isnan(expected))
    for a in values:
        for nan in (0.0, 1e-3):
            assert _nan_to_num(a, nan) == float(np.nan_to_num(a, nan=nan))


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


def test_frames_at_the_thresholds(rng: np.random.Generator) -> None:
    # frames exactly at, and one ulp around, the thresholds in force: the
    # decisions, floors and thresholds do not depend on the chunking, bit for bit
    settings = PipelineSettings()
    n_channels, block, n = 8, 100, 3000
    env = np.exp(0.3 * rng.standard_normal((n, n_channels)))
    env[1500:1700, 2] *= 30.0
    art = np.zeros(env.shape, dtype=bool)
    for b in range(3, n // block):
        det = Detector(n_channels, FRAME_S, settings, True)
        det.process(env[: b * block], art[: b * block])
        rows = b * block + rng.choice(block, size=12, replace=False)
        for i, thr in enumerate((det.on_threshold, det.off_threshold)):
            for j, shift in enumerate((-np.inf, 0.0, np.inf)):
                value = thr if shift == 0.0 else np.nextafter(thr, shift)
                env[rows[6 * i + 2 * j : 6 * i + 2 * j + 2]] = value
    inputs = (env, art, None, None)
    whole = _run(Detector(n_channels, FRAME_S, settings, True), inputs, [0, n])
    assert sum(len(d) for d in whole[0]) > 0
    for parts in (40, 700):
        bounds = [0, *random_splits(rng, n, parts), n]
        got = _run(Detector(n_channels, FRAME_S, settings, True), inputs, bounds)
        assert sorted(k for d in got[0] for k in d) == sorted(k for d in whole[0] for k in d)
        assert got[1][-1] == whole[1][-1]
    frames = _run(Detector(n_channels, FRAME_S, settings, True), inputs, list(range(n + 1)))
    assert sorted(k for d in frames[0] for k in d) == sorted(k for d in whole[0] for k in d)
    assert frames[1][-1] == whole[1][-1]
