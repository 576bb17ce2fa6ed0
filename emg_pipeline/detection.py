"""Detection of contraction episodes on the envelope, per channel, in real time.

The detector works on envelope frames. Its pieces:

* **Noise floor.** Time is cut into blocks of ``floor_block_s`` on the frame
  clock. At the end of each block the resting level (median log-envelope) and
  its spread (a robust standard deviation from the lower quantiles) are
  measured on the block's *quiet* frames: not active, not within the merge gap
  after activity, not artefact. The floor follows falls quickly and rises
  slowly, and a block with less than half of its frames quiet leaves it
  unchanged, so a long spasm cannot pull the floor up (only after
  ``floor_freeze_max_s`` of uninterrupted activity does it start to follow
  again, so a permanent baseline shift cannot hold an episode open forever).
  The thresholds are fixed for the duration of a block, which makes the whole
  detector independent of chunking.
* **Hysteresis.** A channel turns on above the on threshold and stays on until
  it falls below the off threshold. Thresholds are relative to the floor (in
  robust standard deviations of the resting log-envelope, with lower bounds as
  ratios) or, for calibrated signals, absolute (+8 µV on, +2 µV off, the
  sleep-scoring leg-movement rule).
* **Episodes.** A run of activity confirms an onset once it has lasted
  ``min_on_s``; the onset is dated back to where the envelope left the resting
  band (last frame at or below the off threshold), not to the confirmation.
  Pauses shorter than ``merge_gap_s`` do not end an episode; the end is known
  once a pause has lasted that long, and the offset is the end of the last
  active frame. A ``sustained`` event is emitted at the first active frame at
  which the episode has lasted ``spasm_min_s``.

The vectorised part (thresholds, hysteresis, run boundaries, floor statistics)
runs over all frames and channels of a block at once; only the run boundaries,
a handful per second at most, go through Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .settings import PipelineSettings

__all__ = ["Detection", "Detector"]

_NEVER = -(10**15)
_MAX_BACKTRACK_S = 1.0
_INIT_MAX_BLOCKS = 60  # blocks (30 s) the first floor may wait for enough quiet frames


@dataclass(frozen=True)
class Detection:
    """A detector decision, in frames.

    Attributes
    ----------
    kind : {"onset", "sustained", "end"}
        What was decided.
    channel : int
        Channel index.
    frame : int
        Frame at whose end the decision was made.
    onset_frame : int
        First frame of the episode.
    offset_frame : int
        One past the last active frame (``end`` only; else -1).
    floor : float
        Noise floor (envelope units) when the onset was confirmed.
    truncated : bool
        The episode was closed by the end of the stream.
    """

    kind: Literal["onset", "sustained", "end"]
    channel: int
    frame: int
    onset_frame: int
    offset_frame: int = -1
    floor: float = math.nan
    truncated: bool = False


class Detector:
    """Adaptive double-threshold detector of contraction episodes.

    Parameters
    ----------
    n_channels : int
        Number of channels.
    frame_s : float
        Duration of one envelope frame in seconds.
    settings : PipelineSettings
        Thresholds and durations.
    calibrated : bool
        Whether the envelope is in µV (needed by the absolute rule).
    """

    def __init__(
        self, n_channels: int, frame_s: float, settings: PipelineSettings, calibrated: bool
    ) -> None:
        if settings.threshold == "absolute_uv" and not calibrated:
            raise ValueError(
                "threshold='absolute_uv' needs a signal calibrated in µV; this one is unitless"
            )
        self.n_channels = int(n_channels)
        self.frame_s = float(frame_s)
        self.settings = settings
        self.calibrated = bool(calibrated)
        fr = 1.0 / self.frame_s
        self._block = max(1, round(settings.floor_block_s * fr))
        self._gap = max(1, math.ceil(settings.merge_gap_s * fr - 1e-9))
        self._min_on = max(1, round(settings.min_on_s * fr))
        self._min_on_ecg = max(self._min_on, round(settings.ecg_min_on_s * fr))
        self._spasm = max(1, math.ceil(settings.spasm_min_s * fr - 1e-9))
        self._backtrack = max(1, round(_MAX_BACKTRACK_S * fr))
        block_s = self._block * self.frame_s
        self._rise = 1.0 - math.exp(-block_s / settings.floor_rise_tau_s)
        self._fall = 1.0 - math.exp(-block_s / settings.floor_fall_tau_s)
        self._spread_gain = 1.0 - math.exp(-block_s / 5.0)
        self._freeze_blocks = max(1, math.ceil(settings.floor_freeze_max_s / block_s))
        self._warmup = math.ceil(settings.window_s * fr - 1e-9)  # envelope window filling
        self._columns = np.arange(self.n_channels)[None, :]
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the floor, the thresholds and every open episode."""
        C = self.n_channels
        self.frame_index = 0  # absolute index of the next frame
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
        # episode state machine, one entry per channel
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
        """Current noise floor per channel, in envelope units (NaN before the first block)."""
        if not self.ready:
            return np.full(self.n_channels, np.nan)
        return np.exp(self._log_floor)

    def active(self) -> np.ndarray:
        """Which channels are inside a confirmed episode now."""
        return np.array(self._ep_active, dtype=bool)

    # --------------------------------------------------------------- process
    def process(
        self,
        env: np.ndarray,
        artefact: np.ndarray,
        ecg: np.ndarray | None = None,
        no_signal: np.ndarray | None = None,
    ) -> list[Detection]:
        """Consume envelope frames (and their artefact mask); return the decisions made.

        ``ecg`` marks frames of channels that carry ECG: an activity that starts
        there is confirmed only after ``ecg_min_on_s`` (a pop during a heartbeat
        looks like the beat to the artefact gate for longer). ``no_signal``
        marks frames without signal (a flat line): they count as artefact, and
        no onset is dated back into them.
        """
        if ecg is None:
            ecg = np.zeros(artefact.shape, dtype=bool)
        if no_signal is None:
            no_signal = np.zeros(artefact.shape, dtype=bool)
        out: list[Detection] = []
        n = env.shape[0]
        i = 0
        while i < n:
            pos = self.frame_index % self._block
            j = min(n, i + self._block - pos)
            self._segment(env[i:j], artefact[i:j] | no_signal[i:j], ecg[i:j], no_signal[i:j], out)
            if (self.frame_index % self._block) == 0:
                self._end_block()
            i = j
        return out

    def flush(self) -> list[Detection]:
        """Close every open episode at the end of the stream."""
        out: list[Detection] = []
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

    # -------------------------------------------------------------- internals
    def _segment(
        self,
        env: np.ndarray,
        art: np.ndarray,
        ecg: np.ndarray,
        no_signal: np.ndarray,
        out: list[Detection],
    ) -> None:
        m = env.shape[0]
        f0 = self.frame_index
        idx = np.arange(f0, f0 + m, dtype=np.int64)[:, None]
        if self.ready:
            above_on = (env > self.on_threshold) & ~art
            resting = (env <= self.off_threshold) | art
        else:
            above_on = np.zeros_like(art)
            resting = np.ones_like(art)
        seg_end = f0 + m
        h_prev = self._h
        # onsets are dated back to the last frame really at rest: an artefact
        # frame (a heartbeat during the rise of a contraction) is no evidence of
        # rest, but nothing is dated back into a stretch without signal
        at_rest = (resting & ~art) | no_signal if self.ready else resting
        if not np.where(h_prev, resting, above_on).any():
            # the usual segment (every live chunk but a few): no channel meets a
            # frame that would flip its state (a resting one while on, one above
            # the on threshold while off), so each keeps its state throughout,
            # no run starts or ends, and the general path below reduces to this
            last_below = np.where(at_rest, idx, _NEVER).max(axis=0)
            self._last_below = np.maximum(last_below, self._last_below)
            self._block_env.append(env)
            self._block_quiet.append(~(art | h_prev) & ((idx - self._last_on) >= self._gap))
            self._last_on = np.where(h_prev, seg_end - 1, self._last_on)
            for c, on in enumerate(h_prev.tolist()):
                if on:
                    self._run_continues(c, seg_end, out)
                elif self._ep_active[c] and seg_end - self._ep_last[c] >= self._gap:
                    self._end_episode(c, out)
            self.frame_index = seg_end
            return
        # hysteresis by forward fill of the last decisive frame: its row and its
        # decision travel in one integer (2 r + 1 above on, 2 r resting), and
        # rows before any decisive one carry the previous state (-1 on, -2 off)
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
        quiet = ~(h | art) & ((idx - last_on) >= self._gap)
        self._block_env.append(env)
        self._block_quiet.append(quiet)

        change = np.diff(h.view(np.int8), axis=0, prepend=self._h.view(np.int8)[None, :])
        # run boundaries, channel by channel and in time order within a channel
        chans, rows = np.nonzero(change.T)
        begins = (change[rows, chans] > 0).tolist()
        below = last_below[rows, chans].tolist()
        chans_l, rows_l = chans.tolist(), rows.tolist()
        h_last = h[-1].tolist()
        todo = set(chans_l)
        todo.update(c for c in range(self.n_channels) if self._ep_active[c] or self._h[c])
        i, n_changes = 0, len(chans_l)
        for c in sorted(todo):
            while i < n_changes and chans_l[i] == c:
                f = f0 + rows_l[i]
                if begins[i]:
                    self._run_begins(c, f, below[i], out)
                    self._run_min_on[c] = self._min_on_ecg if ecg[rows_l[i], c] else self._min_on
                else:
                    self._run_ends(c, f, out)
                i += 1
            if h_last[c]:
                self._run_continues(c, seg_end, out)
            elif self._ep_active[c] and seg_end - self._ep_last[c] >= self._gap:
                self._end_episode(c, out)
        self._h = h[-1].copy()
        self._last_below = last_below[-1].copy()
        self._last_on = last_on[-1].copy()
        self.frame_index = seg_end

    def _run_begins(self, c: int, f: int, last_below: int, out: list[Detection]) -> None:
        if self._ep_active[c] and f - self._ep_last[c] >= self._gap:
            self._end_episode(c, out)
        self._run_start[c] = f
        self._run_in_episode[c] = self._ep_active[c]
        self._cand_onset[c] = max(last_below + 1, f - self._backtrack)

    def _run_ends(self, c: int, f: int, out: list[Detection]) -> None:
        self._advance_run(c, f, out)
        if self._run_in_episode[c]:
            self._ep_last[c] = f

    def _run_continues(self, c: int, seg_end: int, out: list[Detection]) -> None:
        self._advance_run(c, seg_end, out)
        if self._run_in_episode[c]:
            self._ep_last[c] = seg_end

    def _advance_run(self, c: int, upto: int, out: list[Detection]) -> None:
        """Account for active frames of the current run up to frame ``upto`` (exclusive)."""
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
        # a block usually arrives as one segment: no copy then
        env = self._block_env[0] if len(self._block_env) == 1 else np.concatenate(self._block_env)
        quiet = (self._block_quiet[0] if len(self._block_quiet) == 1
                 else np.concatenate(self._block_quiet))
        self._block_env, self._block_quiet = [], []
        log_env = np.log(np.maximum(env, 1e-12))
        if not self.ready:
            # the first floor comes from quiet frames past the envelope's warm-up
            # (its window is still filling), not marked as artefact and not empty
            # (an envelope the artefact gate emptied says nothing about rest);
            # without enough of them on every channel, wait for the next block
            # (at most _INIT_MAX_BLOCKS, then take what there is); a channel that
            # carries ECG needs a few seconds before its heartbeats are filtered out
            end = self.frame_index
            idx = np.arange(end - env.shape[0], end)[:, None]
            usable = quiet & (env > 0) & (idx >= self._warmup)
            self._init_blocks += 1
            enough = usable.sum(axis=0) >= 0.25 * env.shape[0]
            if not enough.all() and self._init_blocks < _INIT_MAX_BLOCKS:
                return
            # after the wait, any quiet frame will do, but a channel without one
            # (a flat line all along) keeps waiting: a floor must come from signal
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
            q10, q50, q90 = _masked_quantiles(log_env, mask, (0.1, 0.5, 0.9))
            update = usable | thawed
            rate = np.where(q50 < self._log_floor, self._fall, self._rise)
            self._log_floor = np.where(update, self._log_floor + rate * (q50 - self._log_floor),
                                       self._log_floor)
            spread = np.maximum((q90 - q10) / 2.563, 1e-3)
            self._log_spread = np.where(
                usable, self._log_spread + self._spread_gain * (spread - self._log_spread),
                self._log_spread,
            )
        self._set_thresholds()

    def _set_thresholds(self) -> None:
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


def _masked_quantiles(
    values: np.ndarray, mask: np.ndarray, qs: tuple[float, ...]
) -> tuple[np.ndarray, ...]:
    """Per-column quantiles of ``values[mask]`` (lower interpolation); NaN where empty."""
    # one contiguous row per column: sorting along the last axis is cheaper
    data = np.ascontiguousarray(np.where(mask, values, np.inf).T)
    data.sort(axis=1)
    count = mask.sum(axis=0)
    # floor(q (count - 1)) never exceeds count - 1, and truncation only differs
    # from the floor below zero (an empty column), where both become 0
    k = np.maximum((np.array(qs)[:, None] * (count - 1)).astype(np.int64), 0)
    picked = data[np.arange(values.shape[1])[None, :], k]  # (len(qs), n_columns)
    return tuple(np.where(count > 0, picked, np.nan))
