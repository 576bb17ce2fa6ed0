"""Detection of contraction episodes on the envelope, per channel, in real time.

The detector works on envelope frames, with two parts.

**The rest level** (the noise floor) comes from *minimum statistics* on the
frame clock, the method of noise-power trackers in speech enhancement (Martin,
IEEE Trans Speech Audio Process 9:504, 2001), applied to the log-envelope:

* every block of ``floor_block_s`` gets one *level*, the log of its RMS
  envelope over the frames above its lower quartile (frames of artefact or no
  signal left out; a block with less than half of its frames usable gets
  none), and one *spread*, the robust standard deviation of the upper half of
  its log-envelope ((q90 - q50) / 1.2816: the side that false alarms come
  from, heartbeats included); the spread of rest is the median spread of the
  quietest quarter of the blocks in the long memory;
* the floor is the **least level of the last** ``floor_window_s`` (a short
  window); it follows a falling level at once, and a level less than
  ``floor_hold_rise`` above the rest it rises from (a quiet start, a baseline
  that steps up a little) becomes the floor within that window;
* a higher level waits longer: up to ``floor_hold_rise`` times the least level
  of the last ``floor_hold_s`` (spasms last tens of seconds: clonus a median
  of about 20 s, cramps about 24 s), and up to ``floor_max_rise`` times the
  **long memory** (the 5th percentile of the levels of the last
  ``floor_memory_s``): sustained activity far above its rest (a prolonged
  spasm of minutes) stays one episode;
* where the floor stands on activity rather than rest (its level more than
  ``min_on_ratio`` above the long memory: a long weak spasm that the floor
  has followed), the on threshold counts the median spread of the window's
  blocks when it is wider than the spread of rest: the ups and downs of the
  activity itself (a clonic train's bursts, a tonic spasm's wander) do not
  start new episodes. The median, not the spread of the block that sets the
  floor: that block may straddle the activity's onset, and a spread that
  measures one step from rest to activity would lift the on threshold out of
  reach for a whole window.

**Why nothing can latch.** The floor is measured the same way whether a
channel is active or not: there is no state in which it stops following. Any
level that persists becomes the floor after at most ``floor_window_s`` (if it
is within ``floor_hold_rise`` of the rest), ``floor_hold_s`` (within
``floor_max_rise``) or ``floor_memory_s``; a wrong start, a quieter sensor,
or a sensor that got noisier therefore end every episode within that time.
The price, stated plainly: contraction that stays less than
``floor_max_rise`` above the rest for longer than ``floor_hold_s`` (less than
``floor_hold_rise`` above it: ``floor_window_s``) is taken as the new rest
(its episode ends there).

**Episodes** come from a double threshold with hysteresis (on and off
thresholds, in robust standard deviations of the log-envelope above the floor,
with lower bounds as ratios; or, for signals in µV, ``on_uv`` and ``off_uv``
above the floor, the sleep-scoring leg-movement rule):

* a candidate starts when the envelope rises above the on threshold and goes
  on while it stays above the off threshold; it is confirmed once it has
  lasted ``min_on_s`` (``ecg_min_on_s`` on frames of a channel carrying ECG).
  The onset is dated back to the frame after the envelope was last at or
  below the off threshold (at most 1 s back);
* an episode goes on through pauses shorter than ``merge_gap_s`` and ends when
  a pause has lasted that long; its offset is the end of its last active
  frame. A ``sustained`` decision comes at the first active frame at which it
  has lasted ``spasm_min_s``;
* a frame of an artefact cancels a candidate (the artefact gate recognises a
  pop or a knock a few frames into it). Inside an episode it is skipped while
  the episode is active (a movement during a spasm neither continues nor ends
  it: the gate's corrected envelope there says nothing of the muscle), but
  once a pause has begun it counts as pause: a movement between a twitch and
  a spasm a second later must not join them. Frames without signal count as
  rest (a lead-off ends an episode).

Thresholds change only at block ends on the frame clock, so the decisions are
the same, bit for bit, whatever the chunking. The per-frame walk is one short
compiled loop (:func:`_walk`) over named state; the block statistics are one
compiled kernel (:func:`_block_stats`) and a few numpy calls per block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from ._jit import jit
from .labels import boundary_frames
from .settings import PipelineSettings

__all__ = ["Detection", "Detector", "rest_level"]

_KINDS: tuple[Literal["onset", "sustained", "end"], ...] = ("onset", "sustained", "end")
_ONSET, _SUSTAINED, _END = 0, 1, 2
_MAX_BACKTRACK_S = 1.0
_MEMORY_QUANTILE = 0.05
_MEMORY_EVERY = 20   # blocks between measurements of the long memory
_TINY = 1e-12   # envelope values at or below this carry no level


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


#: The detector's durations in frames (one record: a compiled kernel reads it by name).
DURATIONS = np.dtype([
    ("min_on", np.int64),       # frames above the on threshold that confirm an onset
    ("min_on_ecg", np.int64),   # the same on frames of a channel carrying ECG
    ("gap", np.int64),          # frames of pause that end an episode
    ("spasm", np.int64),        # frames that make an episode sustained
    ("backtrack", np.int64),    # frames an onset may be dated back
])

#: Per-channel state of the frame walk (one record per channel).
WALK = np.dtype([
    ("on", np.float64),          # on threshold (envelope units)
    ("off", np.float64),         # off threshold
    ("in_episode", np.bool_),    # a confirmed episode is open
    ("run", np.int64),           # frames of the candidate run so far (0: none)
    ("run_onset", np.int64),     # onset the candidate would get
    ("last_rest", np.int64),     # last frame at or below the off threshold
    ("onset", np.int64),         # onset of the open episode
    ("last_active", np.int64),   # last frame of the open episode above the off threshold
    ("pause", np.int64),         # usable frames below the off threshold since then
    ("sustained", np.bool_),     # the open episode has had its sustained decision
])


def new_walk(n_channels: int) -> np.ndarray:
    """The walk's state before the first frame: no thresholds yet, no episode."""
    w = np.zeros(n_channels, dtype=WALK)
    w["on"] = w["off"] = np.inf
    w["last_rest"] = -1
    return w


def walk_durations(min_on: int, min_on_ecg: int, gap: int, spasm: int,
                   backtrack: int) -> np.ndarray:
    """The walk's durations (frames) as the one-record array that :func:`_walk` reads."""
    return np.array([(min_on, min_on_ecg, gap, spasm, backtrack)], dtype=DURATIONS)


@jit
def _emit(out: np.ndarray, n_out: int, kind: int, c: int, k: int, onset: int,
          offset: int) -> int:
    """Write one decision row; return the new row count."""
    out[n_out, 0] = kind
    out[n_out, 1] = c
    out[n_out, 2] = k
    out[n_out, 3] = onset
    out[n_out, 4] = offset
    return n_out + 1


@jit
def _pause(w: np.void, gap: int, out: np.ndarray, n_out: int, c: int, k: int) -> int:
    """One more frame of pause in the open episode of ``w``; it ends after ``gap`` of them."""
    w.pause += 1
    if w.pause >= gap:
        w.in_episode = False
        n_out = _emit(out, n_out, _END, c, k, w.onset, w.last_active + 1)
    return n_out


@jit
def _walk(env: np.ndarray, skip: np.ndarray, rest: np.ndarray, ecg: np.ndarray,
          first_frame: int, walk: np.ndarray, durations: np.ndarray, out: np.ndarray) -> int:
    """Walk frames ``env[i, c]`` through the double threshold; write decisions to ``out``.

    ``skip``: artefact frames (cancel a candidate, else skipped); ``rest``: frames without
    signal (count as below the off threshold); ``ecg``: frames of a channel
    carrying ECG (longer confirmation); ``walk``: the state (:data:`WALK`, one
    record per channel, updated in place); ``durations``: :data:`DURATIONS`.
    Each decision is a row ``(kind, channel, frame, onset, offset)``. Returns
    the number of rows written.
    """
    d = durations[0]
    n_out = 0
    for c in range(env.shape[1]):
        w = walk[c]
        for i in range(env.shape[0]):
            k = first_frame + i
            e = env[i, c]
            if skip[i, c]:
                w.run = 0   # an artefact cancels a candidate
                # an episode goes on through an artefact that came while it was
                # active; one that came after its pause began goes on with the pause
                if w.in_episode and w.pause > 0:
                    n_out = _pause(w, d.gap, out, n_out, c, k)
                continue
            active = e > w.off and not rest[i, c]
            if w.in_episode:
                if active:
                    w.last_active = k
                    w.pause = 0
                    if not w.sustained and k - w.onset + 1 >= d.spasm:
                        w.sustained = True
                        n_out = _emit(out, n_out, _SUSTAINED, c, k, w.onset, -1)
                else:
                    w.last_rest = k
                    n_out = _pause(w, d.gap, out, n_out, c, k)
                continue
            if not active:
                w.run = 0
                w.last_rest = k
                continue
            if w.run == 0:
                if e <= w.on:
                    continue   # between the thresholds: no candidate starts here
                w.run_onset = max(w.last_rest + 1, k - d.backtrack)
            w.run += 1
            if w.run >= (d.min_on_ecg if ecg[i, c] else d.min_on):
                w.in_episode = True
                w.run = 0
                w.onset = w.run_onset
                w.last_active = k
                w.pause = 0
                w.sustained = False
                n_out = _emit(out, n_out, _ONSET, c, k, w.onset, -1)
                if k - w.onset + 1 >= d.spasm:
                    w.sustained = True
                    n_out = _emit(out, n_out, _SUSTAINED, c, k, w.onset, -1)
    return n_out


def _row_quantiles(a: np.ndarray, *qs: float) -> list[np.ndarray]:
    """Per row, the ``q`` quantiles (lower value, no interpolation) of the non-NaN entries.

    NaN where a row has none. The same as ``np.nanquantile(a, q, axis=1,
    method="lower")`` for each ``q``, without its warnings.
    """
    ordered = np.sort(a, axis=1)   # NaN last
    n = (~np.isnan(a)).sum(axis=1)
    rows = np.arange(a.shape[0])
    out = []
    for q in qs:
        k = (q * np.maximum(n - 1, 0)).astype(np.int64)   # floor: never negative
        out.append(np.where(n > 0, ordered[rows, k], np.nan))
    return out


def rest_level(log_env: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level and spread of one block of log-envelope frames, per channel.

    Parameters
    ----------
    log_env : ndarray, shape (n_channels, n_frames)
        Log-envelope of the block's frames.
    usable : ndarray of bool, same shape
        Frames that may be measured (no artefact, signal present).

    Returns
    -------
    level, spread : ndarray, shape (n_channels,)
        Log of the RMS envelope of the usable frames above their lower
        quartile (the log of the square root of their mean power: a train of
        bursts is measured by its bursts, not by the pauses between them, and
        frames that a gate emptied do not count), and the robust standard
        deviation of
        the upper half of their log-envelope ((q90 - q50) / 1.2816); NaN where
        fewer than half of the frames are usable.
    """
    y = np.where(usable, log_env, np.nan)
    enough = usable.sum(axis=1) * 2 >= usable.shape[1]
    low, middle, high = _row_quantiles(y, 0.25, 0.5, 0.9)
    spread = (high - middle) / 1.2816
    # the lowest quarter is left out: frames where a gate took out (nearly) all
    # the power are no measure of rest
    kept = usable & (log_env >= low[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        power = np.where(kept, np.exp(2.0 * log_env), 0.0).sum(axis=1) / kept.sum(axis=1)
        level = 0.5 * np.log(power)
    return np.where(enough, level, np.nan), np.where(enough, spread, np.nan)


@jit
def _keep_frames(env: np.ndarray, artefact: np.ndarray, no_signal: np.ndarray,
                 block_log: np.ndarray, block_usable: np.ndarray, first: int) -> None:
    """Write frames into the block buffers from column ``first``: log-envelope, usable."""
    for i in range(env.shape[0]):
        for c in range(env.shape[1]):
            e = env[i, c]
            block_log[c, first + i] = np.log(max(e, _TINY))
            block_usable[c, first + i] = not (artefact[i, c] or no_signal[i, c]) and e > _TINY


@jit
def _block_stats(log_env: np.ndarray, usable: np.ndarray, level: np.ndarray,
                 spread: np.ndarray) -> None:
    """Compiled :func:`rest_level` (the same values; the numpy version is its reference)."""
    n_c, n = log_env.shape
    values = np.empty(n)
    for c in range(n_c):
        m = 0
        for i in range(n):
            if usable[c, i]:
                values[m] = log_env[c, i]
                m += 1
        if m == 0 or 2 * m < n:
            level[c] = np.nan
            spread[c] = np.nan
            continue
        ordered = np.sort(values[:m])
        low = ordered[int(np.floor(0.25 * (m - 1)))]
        spread[c] = (ordered[int(np.floor(0.9 * (m - 1)))]
                     - ordered[int(np.floor(0.5 * (m - 1)))]) / 1.2816
        power = 0.0
        kept = 0
        for i in range(m):
            if ordered[i] >= low:
                power += np.exp(2.0 * ordered[i])
                kept += 1
        level[c] = 0.5 * np.log(power / kept)


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
        per_s = 1.0 / self.frame_s
        min_on = max(1, round(settings.min_on_s * per_s))
        self._durations = walk_durations(
            min_on=min_on,
            min_on_ecg=max(min_on, round(settings.ecg_min_on_s * per_s)),
            gap=max(1, math.ceil(settings.merge_gap_s * per_s - 1e-9)),
            spasm=boundary_frames(settings.spasm_min_s, self.frame_s),
            backtrack=max(1, round(_MAX_BACKTRACK_S * per_s)),
        )
        self.block_frames = max(1, round(settings.floor_block_s * per_s))
        block_s = self.block_frames * self.frame_s
        self._window_blocks = max(1, round(settings.floor_window_s / block_s))
        self._memory_blocks = max(self._window_blocks, round(settings.floor_memory_s / block_s))
        self._max_rise = math.log(settings.floor_max_rise)
        self._hold_blocks = max(self._window_blocks, round(settings.floor_hold_s / block_s))
        self._hold_rise = math.log(settings.floor_hold_rise)
        self._bias_of = [self._bias(n) for n in range(self._window_blocks + 1)]
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the floor, the thresholds and every open episode."""
        C = self.n_channels
        self._walk = new_walk(C)
        self._frame = 0
        self._block_log = np.zeros((C, self.block_frames))
        self._block_usable = np.zeros((C, self.block_frames), dtype=bool)
        self._levels = np.full((C, self._memory_blocks), np.nan)   # ring, newest at _n_blocks-1
        self._spreads = np.full((C, self._memory_blocks), np.nan)
        self._recent = np.full((C, self._window_blocks), np.nan)   # the window's levels
        self._recent_spreads = np.full((C, self._window_blocks), np.nan)   # and spreads
        self._held = np.full((C, self._hold_blocks), np.nan)       # the hold's levels
        self._n_blocks = 0
        self._floor = np.full(C, np.nan)
        self._ep_floor = np.full(C, np.nan)
        self._rows_frames = 0
        self._decision_rows(64)
        self._publish()

    @property
    def frame_index(self) -> int:
        """Absolute index of the next frame."""
        return self._frame

    @property
    def ready(self) -> bool:
        """Whether every channel has a noise floor."""
        return bool(np.isfinite(self._floor).all())

    @property
    def on_threshold(self) -> np.ndarray:
        """On threshold per channel (envelope units; inf before the first floor; read-only)."""
        return self._published[1]

    @property
    def off_threshold(self) -> np.ndarray:
        """Off threshold per channel (envelope units; inf before the first floor; read-only)."""
        return self._published[2]

    @property
    def floor(self) -> np.ndarray:
        """Current noise floor per channel, in envelope units (NaN before the first block)."""
        return self._published[0]

    def active(self) -> np.ndarray:
        """Which channels are inside a confirmed episode now."""
        return self._walk["in_episode"].copy()

    # --------------------------------------------------------------- process
    def process(
        self,
        env: np.ndarray,
        artefact: np.ndarray,
        ecg: np.ndarray | None = None,
        no_signal: np.ndarray | None = None,
    ) -> list[Detection]:
        """Consume envelope frames (and their flags); return the decisions made.

        Parameters
        ----------
        env : ndarray, shape (n_frames, n_channels)
            Envelope frames.
        artefact : ndarray of bool, shape (n_frames, n_channels)
            Frames of an artefact: skipped, neither activity nor rest.
        ecg : ndarray of bool, shape (n_frames, n_channels), optional
            Frames of channels that carry ECG: an activity that starts there is
            confirmed only after ``ecg_min_on_s``.
        no_signal : ndarray of bool, shape (n_frames, n_channels), optional
            Frames without signal (a flat line): rest, never measured.

        Returns
        -------
        list of Detection
            The decisions, block by block, channel by channel within a block,
            in time order within a channel.

        Raises
        ------
        ValueError
            If the arrays do not all have the shape ``(n_frames, n_channels)``.
        """
        env = np.asarray(env, dtype=np.float64)
        shape = env.shape
        if ecg is None or no_signal is None:
            none = np.zeros(shape, dtype=bool)
            ecg = none if ecg is None else ecg
            no_signal = none if no_signal is None else no_signal
        if (len(shape) != 2 or shape[1] != self.n_channels or artefact.shape != shape
                or ecg.shape != shape or no_signal.shape != shape):
            raise ValueError(
                f"expected envelope, artefact, ecg and no-signal frames of one shape "
                f"(n_frames, {self.n_channels})"
            )
        n = shape[0]
        in_block = self._frame % self.block_frames
        out: list[Detection] = []
        if in_block + n < self.block_frames:   # the usual live chunk: inside a block
            self._segment(env, artefact, ecg, no_signal, in_block, out)
            return out
        start = 0
        while start < n:
            in_block = self._frame % self.block_frames
            stop = min(n, start + self.block_frames - in_block)
            self._segment(env[start:stop], artefact[start:stop], ecg[start:stop],
                          no_signal[start:stop], in_block, out)
            start = stop
        return out

    def _segment(self, env: np.ndarray, artefact: np.ndarray, ecg: np.ndarray,
                 no_signal: np.ndarray, in_block: int, out: list[Detection]) -> None:
        """Frames within one block: walk them, keep them for the block's level."""
        n = env.shape[0]
        rows = self._rows if n <= self._rows_frames else self._decision_rows(n)
        found = _walk(env, artefact, no_signal, ecg, self._frame, self._walk, self._durations,
                      rows)
        for kind, c, frame, onset, offset in rows[:found].tolist():
            if kind == _ONSET:
                self._ep_floor[c] = self._floor[c]
            out.append(Detection(_KINDS[kind], c, frame, onset, offset,
                                 float(self._ep_floor[c])))
        _keep_frames(env, artefact, no_signal, self._block_log, self._block_usable, in_block)
        self._frame += n
        if in_block + n == self.block_frames:
            self._end_block()

    def _publish(self) -> None:
        """What the properties hand out: read-only copies, replaced (not written) later."""
        self._published = tuple(_read_only(a.copy())
                                for a in (self._floor, self._walk["on"], self._walk["off"]))

    def _decision_rows(self, n_frames: int) -> np.ndarray:
        """A table for the decisions of ``n_frames`` frames (at most two per frame and channel)."""
        self._rows_frames = n_frames
        self._rows = np.empty((2 * n_frames * self.n_channels + 1, 5), dtype=np.int64)
        return self._rows

    def _end_block(self) -> None:
        """A block is complete: measure it, update the floor and the thresholds."""
        level, spread = np.empty(self.n_channels), np.empty(self.n_channels)
        _block_stats(self._block_log, self._block_usable, level, spread)
        b = self._n_blocks
        self._levels[:, b % self._memory_blocks] = level
        self._spreads[:, b % self._memory_blocks] = spread
        self._n_blocks = b + 1
        self._recent[:, b % self._window_blocks] = level
        self._recent_spreads[:, b % self._window_blocks] = spread
        # the window's block of least level (NaN: unfilled, unmeasured, left out; NaN if none)
        least = np.argmin(np.where(np.isnan(self._recent), np.inf, self._recent), axis=1)
        channels = np.arange(self.n_channels)
        window_min = self._recent[channels, least]
        self._held[:, b % self._hold_blocks] = level
        held_min = np.fmin.reduce(self._held, axis=1)
        if b < _MEMORY_EVERY or b % _MEMORY_EVERY == 0:
            self._memory, self._rest_spread = self._long_memory(b)
        memory, sd = self._memory, self._rest_spread
        # the least of n block levels lies below the typical one: add back its
        # expected shortfall (the minimum-statistics bias compensation)
        log_floor = (np.fmin(np.fmin(window_min, held_min + self._hold_rise),
                             memory + self._max_rise)
                     + self._bias_of[min(b + 1, self._window_blocks)] * sd)
        s = self.settings
        floor = np.exp(log_floor)
        if s.threshold == "absolute_uv":
            on, off = floor + s.on_uv, floor + s.off_uv
        else:
            # a floor standing on activity: the activity's own spread counts too
            (activity_sd,) = _row_quantiles(self._recent_spreads, 0.5)
            on_sd = np.where(window_min > memory + math.log(s.min_on_ratio),
                             np.fmax(sd, activity_sd), sd)
            on = np.exp(log_floor + np.maximum(s.on_sd * on_sd, math.log(s.min_on_ratio)))
            off = np.exp(log_floor + np.maximum(s.off_sd * sd, math.log(s.min_off_ratio)))
        known = np.isfinite(log_floor)
        # the walk's thresholds change here, in place; what the properties handed out
        # earlier are copies (_publish), so they stay as they were
        self._floor = np.where(known, floor, self._floor)
        self._walk["on"] = np.where(known, on, self._walk["on"])
        self._walk["off"] = np.where(known, off, self._walk["off"])
        self._publish()

    def _long_memory(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """The long memory's low level and the spread of rest, per channel.

        They change slowly, so they are measured every ``_MEMORY_EVERY`` blocks
        (every block at the start).
        """
        (memory,) = _row_quantiles(self._levels, _MEMORY_QUANTILE)
        # the spread of rest: the median spread of the quietest quarter of the
        # blocks in memory (a clonic burst train has a wide spread of its own;
        # in the log domain the spread of rest hardly depends on its level)
        known = min(b + 1, self._memory_blocks)
        quarter = max(1, known // 4)
        # the quarter of least level (NaN, no level, sorts last), in no order
        quietest = np.argpartition(self._levels, quarter - 1, axis=1)[:, :quarter]
        (sd,) = _row_quantiles(np.take_along_axis(self._spreads, quietest, axis=1), 0.5)
        return memory, np.where(np.isnan(sd), 0.0, sd)

    def _bias(self, n_blocks: int) -> float:
        """Expected shortfall of the least of ``n_blocks`` block medians, in spreads.

        A block median of ``block_s / window_s`` independent envelope values
        has a standard error of ``sqrt(pi / 2)`` spreads over the square root
        of their number; the least of ``n`` such medians lies about ``z(n)``
        standard errors below their mean (Blom's approximation of the expected
        minimum of ``n`` normal values).
        """
        if n_blocks < 2:
            return 0.0
        z = -float(special.ndtri((1.0 - 0.375) / (n_blocks + 0.25)))
        independent = max(1.0, self.block_frames * self.frame_s / self.settings.window_s)
        return z * math.sqrt(math.pi / 2.0 / independent)

    def flush(self) -> list[Detection]:
        """Close every open episode at the end of the stream.

        Returns
        -------
        list of Detection
            One ``end`` decision per channel inside an episode, ``truncated``
            where the stream ended before the episode's end was known.
        """
        out: list[Detection] = []
        last = self._frame - 1
        for c in np.flatnonzero(self._walk["in_episode"]).tolist():
            w = self._walk[c]
            still_on = bool(w["pause"] == 0)
            offset = self._frame if still_on else int(w["last_active"]) + 1
            out.append(Detection("end", c, last, int(w["onset"]), offset,
                                 float(self._ep_floor[c]), truncated=True))
        self._walk["in_episode"] = False
        self._walk["run"] = 0
        return out


def _read_only(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view
