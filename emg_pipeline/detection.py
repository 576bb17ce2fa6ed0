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

The frames go through one compiled kernel (``_detect``) that walks each block
segment channel by channel, frame by frame, with the whole state in two small
arrays, and writes its rare decisions to a preallocated table that Python turns
into :class:`Detection` values; a chunk takes one kernel call (more only if it
brings more decisions than the table holds). At the end of a block the kernel
takes the block statistics itself: the quantiles are found by selection (not
sorting) on the envelope clipped at 1e-12, and only the few quantiles are
turned into logarithms (the logarithm is monotone, so the quantiles of the
log-envelope are the logarithms of the envelope's quantiles); the floor and
thresholds then come from the C library's exponential. Everything happens on
the frame clock, so the results are the same, bit for bit, whatever the
chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._jit import jit
from .labels import boundary_frames
from .settings import PipelineSettings

__all__ = ["Detection", "Detector"]

_NEVER = -(10**15)
_MAX_BACKTRACK_S = 1.0
_INIT_MAX_BLOCKS = 60  # blocks (30 s) the first floor may wait for enough quiet frames
_DBL_MAX = float(np.finfo(np.float64).max)

_KINDS: tuple[Literal["onset", "sustained", "end"], ...] = ("onset", "sustained", "end")
_ONSET, _SUSTAINED, _END = 0, 1, 2
_CLIP = 1e-12  # the envelope is clipped here before its logarithm

# integer state: row 0 holds the scalars (_ROW: where a call that filled the
# decision table stopped), the other rows one entry per channel
_FRAME, _READY, _INIT_BLOCKS, _ROW = range(4)
_N_SCALARS = 4
(_H, _LAST_BELOW, _LAST_ON, _FROZEN, _RUN_START, _RUN_MIN_ON, _RUN_IN_EP, _CAND_ONSET,
 _EP_ACTIVE, _EP_ONSET, _EP_LAST, _EP_SUSTAINED) = range(1, 13)
_N_IROWS = 13
# float state, one entry per channel in each row (_EP_FLOOR: the floor when
# the current episode was confirmed)
(_LOG_FLOOR, _LOG_SPREAD, _ON_THR, _OFF_THR, _FLOOR, _EP_FLOOR) = range(6)
_N_FROWS = 6
# planes of the block buffer, (plane, channel, frame of the block): the
# envelope, and whether the frame is quiet
_ENV, _QUIET = range(2)
_NOT_QUIET, _QUIET_EMPTY, _QUIET_SIGNAL = 0.0, 1.0, 2.0  # quiet with an envelope <= 0, > 0
# configuration (one float64 vector; integers are exact)
(_C_GAP, _C_MIN_ON, _C_MIN_ON_ECG, _C_SPASM, _C_BACKTRACK, _C_WARMUP, _C_FREEZE,
 _C_INIT_MAX, _C_ABSOLUTE, _C_RISE, _C_FALL, _C_SPREAD_GAIN, _C_ON_SD, _C_OFF_SD,
 _C_MIN_ON_RATIO, _C_MIN_OFF_RATIO, _C_ON_UV, _C_OFF_UV) = range(18)
_N_CFG = 18
# columns of the decision table (the last one: the floor, float64 bits)
_D_KIND, _D_CHANNEL, _D_FRAME, _D_ONSET, _D_OFFSET, _D_FLOOR = range(6)


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
        self._spasm = boundary_frames(settings.spasm_min_s, self.frame_s)
        self._backtrack = max(1, round(_MAX_BACKTRACK_S * fr))
        block_s = self._block * self.frame_s
        self._rise = 1.0 - math.exp(-block_s / settings.floor_rise_tau_s)
        self._fall = 1.0 - math.exp(-block_s / settings.floor_fall_tau_s)
        self._spread_gain = 1.0 - math.exp(-block_s / 5.0)
        self._freeze_blocks = max(1, math.ceil(settings.floor_freeze_max_s / block_s))
        self._warmup = math.ceil(settings.window_s * fr - 1e-9)  # envelope window filling
        cfg = np.zeros(_N_CFG)
        cfg[_C_GAP] = self._gap
        cfg[_C_MIN_ON] = self._min_on
        cfg[_C_MIN_ON_ECG] = self._min_on_ecg
        cfg[_C_SPASM] = self._spasm
        cfg[_C_BACKTRACK] = self._backtrack
        cfg[_C_WARMUP] = self._warmup
        cfg[_C_FREEZE] = self._freeze_blocks
        cfg[_C_INIT_MAX] = _INIT_MAX_BLOCKS
        cfg[_C_ABSOLUTE] = settings.threshold == "absolute_uv"
        cfg[_C_RISE] = self._rise
        cfg[_C_FALL] = self._fall
        cfg[_C_SPREAD_GAIN] = self._spread_gain
        cfg[_C_ON_SD] = settings.on_sd
        cfg[_C_OFF_SD] = settings.off_sd
        cfg[_C_MIN_ON_RATIO] = settings.min_on_ratio
        cfg[_C_MIN_OFF_RATIO] = settings.min_off_ratio
        cfg[_C_ON_UV] = settings.on_uv
        cfg[_C_OFF_UV] = settings.off_uv
        self._cfg = cfg
        # room for the decisions of the longest segment (a block) on every channel
        self._dec = np.zeros((self.n_channels * (3 * self._block + 3) + 16, 6), dtype=np.int64)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the floor, the thresholds and every open episode."""
        C = self.n_channels
        ist = np.zeros((_N_IROWS, max(C, _N_SCALARS)), dtype=np.int64)
        ist[_LAST_BELOW] = _NEVER
        ist[_LAST_ON] = _NEVER
        ist[_RUN_MIN_ON] = self._min_on
        fst = np.zeros((_N_FROWS, C))
        fst[_ON_THR] = np.inf
        fst[_OFF_THR] = np.inf
        fst[_FLOOR] = 1.0  # exp of the log floor
        fst[_EP_FLOOR] = np.nan
        self._istate = ist
        self._fstate = fst
        self._buf = np.zeros((2, C, self._block))

    @property
    def frame_index(self) -> int:
        """Absolute index of the next frame."""
        return int(self._istate[0, _FRAME])

    @property
    def ready(self) -> bool:
        """Whether the first noise floor has been measured."""
        return bool(self._istate[0, _READY])

    @property
    def on_threshold(self) -> np.ndarray:
        """On threshold per channel (envelope units; inf before the first floor)."""
        return self._fstate[_ON_THR].copy()

    @property
    def off_threshold(self) -> np.ndarray:
        """Off threshold per channel (envelope units; inf before the first floor)."""
        return self._fstate[_OFF_THR].copy()

    @property
    def floor(self) -> np.ndarray:
        """Current noise floor per channel, in envelope units (NaN before the first block)."""
        if not self.ready:
            return np.full(self.n_channels, np.nan)
        return self._fstate[_FLOOR].copy()

    def active(self) -> np.ndarray:
        """Which channels are inside a confirmed episode now."""
        return self._istate[_EP_ACTIVE, : self.n_channels].astype(bool)

    # --------------------------------------------------------------- process
    def process(
        self,
        env: np.ndarray,
        artefact: np.ndarray,
        ecg: np.ndarray | None = None,
        no_signal: np.ndarray | None = None,
    ) -> list[Detection]:
        """Consume envelope frames (and their artefact mask); return the decisions made.

        Parameters
        ----------
        env : ndarray, shape (n_frames, n_channels)
            Envelope frames (float64).
        artefact : ndarray of bool, shape (n_frames, n_channels)
            Frames marked as artefact: neither activity nor rest.
        ecg : ndarray of bool, shape (n_frames, n_channels), optional
            Frames of channels that carry ECG: an activity that starts there is
            confirmed only after ``ecg_min_on_s`` (a pop during a heartbeat
            looks like the beat to the artefact gate for longer).
        no_signal : ndarray of bool, shape (n_frames, n_channels), optional
            Frames without signal (a flat line): they count as artefact, and no
            onset is dated back into them.

        Returns
        -------
        list of Detection
            The decisions taken on these frames, segment by segment (a segment
            ends with the chunk or with a floor block), channel by channel
            within a segment, in time order within a channel.

        Raises
        ------
        ValueError
            If the arrays do not all have the shape ``(n_frames, n_channels)``.
        """
        args = (env, artefact, ecg, no_signal, self._istate, self._fstate, self._buf, self._dec,
                self._cfg)
        r = _detect(*args)
        if r <= 0:
            if r == 0:  # the usual live chunk: no decision
                return []
            raise ValueError(
                f"expected envelope, artefact, ecg and no-signal frames of one shape "
                f"(n_frames, {self.n_channels})"
            )
        out: list[Detection] = []
        while True:
            n = r >> 1
            rows = self._dec[:n].tolist()
            # (a view taken here: one kept as an attribute would not survive pickling)
            floors = self._dec[:n, _D_FLOOR].view(np.float64).tolist()
            for (kind, c, frame, onset, offset, _), floor in zip(rows, floors, strict=True):
                out.append(Detection(_KINDS[kind], c, frame, onset, offset, floor))
            if not r & 1:
                return out
            r = _detect(*args)  # the table was full: resume where the kernel stopped

    def flush(self) -> list[Detection]:
        """Close every open episode at the end of the stream.

        Returns
        -------
        list of Detection
            One ``end`` decision per channel inside an episode, ``truncated``
            where the stream ended before the episode's end was known.
        """
        out: list[Detection] = []
        ist, fst = self._istate, self._fstate
        end = self.frame_index
        for c in range(self.n_channels):
            if not ist[_EP_ACTIVE, c]:
                continue
            still_on = bool(ist[_H, c])
            last = end if still_on else int(ist[_EP_LAST, c])
            truncated = still_on or (end - last) < self._gap
            floor = float(fst[_EP_FLOOR, c])
            out.append(Detection("end", c, end - 1, int(ist[_EP_ONSET, c]), last, floor, truncated))
            ist[_EP_ACTIVE, c] = 0
        ist[_H] = 0
        return out


# ------------------------------------------------------------------ kernels
@jit
def _npmax(a: float, b: float) -> float:
    """``np.maximum`` of two floats (NaN wins)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a >= b else b


@jit
def _npmin(a: float, b: float) -> float:
    """``np.minimum`` of two floats (NaN wins)."""
    if a != a:
        return a
    if b != b:
        return b
    return a if a <= b else b


@jit
def _nan_to_num(a: float, nan: float) -> float:
    """``np.nan_to_num`` of a float."""
    if a != a:
        return nan
    if a == np.inf:
        return _DBL_MAX
    if a == -np.inf:
        return -_DBL_MAX
    return a


@jit
def _select(a: np.ndarray, lo: int, hi: int, k: int) -> None:
    """Partially order ``a[lo:hi]`` so that ``a[k]`` is its ``k - lo``-th smallest value.

    Afterwards ``a[lo:k] <= a[k] <= a[k + 1:hi]``. Quickselect with a median
    of three and a branch-free Lomuto partition (the comparisons of envelope
    values are unpredictable, mispredicted branches would dominate); no NaN.
    """
    hi -= 1
    while hi > lo:
        if hi == lo + 1:
            if a[hi] < a[lo]:
                t = a[lo]
                a[lo] = a[hi]
                a[hi] = t
            return
        mid = (lo + hi) >> 1
        x0 = a[lo]
        x1 = a[mid]
        x2 = a[hi]
        if x1 < x0:
            x0, x1 = x1, x0
        if x2 < x1:
            x1, x2 = x2, x1
            if x1 < x0:
                x0, x1 = x1, x0
        # the median goes last (the pivot), the others to the ends
        a[lo] = x0
        a[mid] = x2
        a[hi] = x1
        s = lo
        for i in range(lo, hi):
            ui = np.uint64(i)  # unsigned indices: no test for negative ones
            us = np.uint64(s)
            v = a[ui]
            w = a[us]
            lt = v < x1
            a[ui] = w if lt else v
            a[us] = v if lt else w
            s += 1 if lt else 0
        a[hi] = a[s]
        a[s] = x1
        if s == k:
            return
        if k < s:
            hi = s - 1
        elif s > lo:
            lo = s + 1
        else:
            # the pivot is the least value: gather its copies (runs of equal
            # values, an envelope clipped to its floor) instead of peeling
            # them off one pass at a time
            s += 1
            for i in range(s, hi + 1):
                ui = np.uint64(i)
                us = np.uint64(s)
                v = a[ui]
                w = a[us]
                eq = v <= x1
                a[ui] = w if eq else v
                a[us] = v if eq else w
                s += 1 if eq else 0
            if k < s:
                return
            lo = s


@jit
def _pick(vals: np.ndarray, k: int, n_val: int, n_fill: int) -> float:
    """Element ``k`` of the sorted column: a value, then the +inf fill, then NaN."""
    if k < n_val:
        return vals[k]
    if k < n_val + n_fill:
        return np.inf
    return np.nan


@jit
def _quantiles3(
    vals: np.ndarray, n_val: int, n_nan: int, n_rows: int, q0: float, q1: float, q2: float
) -> tuple[float, float, float]:
    """Three quantiles (lower interpolation, ``q0 <= q1 <= q2``) of a masked column.

    The result is what numpy gives by sorting the column with the unselected
    rows set to +inf and picking ``floor(q * (count - 1))``: ``vals[:n_val]``
    are the selected non-NaN values (reordered in place), ``n_nan`` the number
    of selected NaN values (numpy sorts NaN last, after the +inf fill) and
    ``n_rows`` the column length. NaN where nothing is selected.
    """
    count = n_val + n_nan
    if count == 0:
        return np.nan, np.nan, np.nan
    k0 = max(int(q0 * (count - 1)), 0)
    k1 = max(int(q1 * (count - 1)), 0)
    k2 = max(int(q2 * (count - 1)), 0)
    if k1 < n_val:
        _select(vals, 0, n_val, k1)
        if k0 < k1:
            _select(vals, 0, k1, k0)
        if k1 < k2 < n_val:
            _select(vals, k1 + 1, n_val, k2)
    elif k0 < n_val:
        _select(vals, 0, n_val, k0)
    n_fill = n_rows - count
    return (_pick(vals, k0, n_val, n_fill), _pick(vals, k1, n_val, n_fill),
            _pick(vals, k2, n_val, n_fill))


@jit
def _gather(buf: np.ndarray, c: int, least: float, first: int, vals: np.ndarray) -> tuple[int, int]:
    """Collect the block's envelope of channel ``c`` on rows whose quiet code is >= ``least``.

    Only rows from ``first`` on count; the values are clipped at ``_CLIP`` (as
    before a logarithm). Returns the numbers of non-NaN values (written to
    ``vals``) and of NaN values.
    """
    n_val = 0
    n_nan = 0
    quiet = buf[_QUIET, c]
    env = buf[_ENV, c]
    for t in range(first, buf.shape[2]):
        ut = np.uint64(t)
        if quiet[ut] >= least:
            v = env[ut]
            if v != v:
                n_nan += 1
            else:
                vals[n_val] = v if v >= _CLIP else _CLIP
                n_val += 1
    return n_val, n_nan


@jit
def _log_quantiles3(
    vals: np.ndarray, n_val: int, n_nan: int, n_rows: int, q0: float, q1: float, q2: float
) -> tuple[float, float, float]:
    """:func:`_quantiles3` of the log of the values (the log is monotone: the log of theirs)."""
    a, b, c = _quantiles3(vals, n_val, n_nan, n_rows, q0, q1, q2)
    return math.log(a), math.log(b), math.log(c)


@jit
def _block_stats(ist: np.ndarray, fst: np.ndarray, buf: np.ndarray, cfg: np.ndarray) -> None:
    """Update the floor, the spread and the thresholds from the block just finished."""
    C = fst.shape[1]
    block = buf.shape[2]
    vals = np.empty(block)
    if ist[0, _READY] == 0:
        # the first floor comes from quiet frames past the envelope's warm-up
        # (its window is still filling), not marked as artefact and not empty
        # (an envelope the artefact gate emptied says nothing about rest);
        # without enough of them on every channel, wait for the next block
        # (at most _INIT_MAX_BLOCKS, then take what there is); a channel that
        # carries ECG needs a few seconds before its heartbeats are filtered out
        skip = min(block, max(0, int(cfg[_C_WARMUP]) - (ist[0, _FRAME] - block)))
        ist[0, _INIT_BLOCKS] += 1
        enough = np.empty(C, dtype=np.bool_)
        all_enough = True
        for c in range(C):
            cnt = 0
            for t in range(skip, block):
                if buf[_QUIET, c, t] == _QUIET_SIGNAL:
                    cnt += 1
            enough[c] = cnt >= 0.25 * block
            all_enough = all_enough and enough[c]
        if not all_enough and ist[0, _INIT_BLOCKS] < int(cfg[_C_INIT_MAX]):
            return
        # after the wait, any quiet frame will do, but a channel without one
        # (a flat line all along) keeps waiting: a floor must come from signal
        for c in range(C):
            found = False
            for t in range(skip if enough[c] else 0, block):
                if buf[_QUIET, c, t] == _QUIET_SIGNAL:
                    found = True
                    break
            if not found:
                return
        for c in range(C):
            n_val, n_nan = _gather(buf, c, _QUIET_SIGNAL, skip if enough[c] else 0, vals)
            q10, q30, q40 = _log_quantiles3(vals, n_val, n_nan, block, 0.1, 0.3, 0.4)
            spread = _npmax(_nan_to_num((q40 - q10) / 1.028, 1e-3), 1e-3)
            fst[_LOG_SPREAD, c] = spread
            fst[_LOG_FLOOR, c] = _nan_to_num(q30, 0.0) + 0.524 * spread
        ist[0, _READY] = 1
    else:
        freeze = int(cfg[_C_FREEZE])
        for c in range(C):
            # a block with less than half of its frames quiet leaves the floor
            # unchanged, unless the channel has been frozen for too long
            n_val, n_nan = _gather(buf, c, _QUIET_EMPTY, 0, vals)
            usable = n_val + n_nan >= 0.5 * block
            if usable:
                ist[_FROZEN, c] = 0
            else:
                ist[_FROZEN, c] += 1
                if ist[_FROZEN, c] < freeze:
                    continue  # no statistic needed
                n_val, n_nan = _gather(buf, c, _NOT_QUIET, 0, vals)  # thawed: every frame
            q10, q50, q90 = _log_quantiles3(vals, n_val, n_nan, block, 0.1, 0.5, 0.9)
            log_floor = fst[_LOG_FLOOR, c]
            rate = cfg[_C_FALL] if q50 < log_floor else cfg[_C_RISE]
            fst[_LOG_FLOOR, c] = log_floor + rate * (q50 - log_floor)
            if usable:
                spread = _npmax((q90 - q10) / 2.563, 1e-3)
                log_spread = fst[_LOG_SPREAD, c]
                fst[_LOG_SPREAD, c] = log_spread + cfg[_C_SPREAD_GAIN] * (spread - log_spread)
    absolute = cfg[_C_ABSOLUTE] != 0.0
    for c in range(C):
        floor = math.exp(fst[_LOG_FLOOR, c])
        fst[_FLOOR, c] = floor
        if absolute:
            fst[_ON_THR, c] = floor + cfg[_C_ON_UV]
            fst[_OFF_THR, c] = floor + cfg[_C_OFF_UV]
        else:
            on = _npmax(math.exp(cfg[_C_ON_SD] * fst[_LOG_SPREAD, c]), cfg[_C_MIN_ON_RATIO])
            off = _npmax(math.exp(cfg[_C_OFF_SD] * fst[_LOG_SPREAD, c]), cfg[_C_MIN_OFF_RATIO])
            fst[_ON_THR, c] = floor * on
            fst[_OFF_THR, c] = floor * _npmin(off, on)


@jit
def _emit(
    dec: np.ndarray, nd: int, kind: int, c: int, frame: int, onset: int, offset: int,
    floor: float,
) -> int:
    """Write one decision to row ``nd`` of the table; return the next row."""
    dec[nd, _D_KIND] = kind
    dec[nd, _D_CHANNEL] = c
    dec[nd, _D_FRAME] = frame
    dec[nd, _D_ONSET] = onset
    dec[nd, _D_OFFSET] = offset
    dec.view(np.float64)[nd, _D_FLOOR] = floor
    return nd + 1


@jit
def _end_episode(
    ist: np.ndarray, fst: np.ndarray, dec: np.ndarray, nd: int, c: int, gap: int
) -> int:
    last = ist[_EP_LAST, c]
    nd = _emit(dec, nd, _END, c, last + gap - 1, ist[_EP_ONSET, c], last, fst[_EP_FLOOR, c])
    ist[_EP_ACTIVE, c] = 0
    return nd


@jit
def _advance_run(
    ist: np.ndarray, fst: np.ndarray, dec: np.ndarray, nd: int, c: int, upto: int, spasm: int
) -> int:
    """Account for active frames of the current run up to frame ``upto`` (exclusive)."""
    start = ist[_RUN_START, c]
    if ist[_RUN_IN_EP, c] == 0:
        confirm = start + ist[_RUN_MIN_ON, c] - 1
        if confirm >= upto:
            return nd
        ist[_EP_ACTIVE, c] = 1
        ist[_EP_ONSET, c] = ist[_CAND_ONSET, c]
        ist[_EP_SUSTAINED, c] = 0
        fst[_EP_FLOOR, c] = fst[_FLOOR, c]
        ist[_RUN_IN_EP, c] = 1
        nd = _emit(dec, nd, _ONSET, c, confirm, ist[_EP_ONSET, c], -1, fst[_EP_FLOOR, c])
    if ist[_EP_SUSTAINED, c] == 0:
        t = max(start, ist[_EP_ONSET, c] + spasm - 1)
        if t < upto:
            ist[_EP_SUSTAINED, c] = 1
            nd = _emit(dec, nd, _SUSTAINED, c, t, ist[_EP_ONSET, c], -1, fst[_EP_FLOOR, c])
    return nd


@jit
def _detect(
    env: np.ndarray,
    art: np.ndarray,
    ecg: np.ndarray | None,
    ns: np.ndarray | None,
    ist: np.ndarray,
    fst: np.ndarray,
    buf: np.ndarray,
    dec: np.ndarray,
    cfg: np.ndarray,
) -> int:
    """Run the detector over the chunk from row ``ist[0, _ROW]`` on.

    The chunk is cut at block boundaries into segments; within a segment every
    channel is walked frame by frame (hysteresis, run and episode state
    machine, quiet flags for the block statistics), and a segment that ends a
    block updates the floor and thresholds. Returns ``2 * n_decisions + full``,
    the decisions being in ``dec[:n_decisions]``: ``full`` is 0 when the chunk
    is consumed (the next call starts a new one), 1 when the table filled up
    (call again to resume). Returns -1 (and does nothing) if the inputs do not
    all have the shape ``(n_frames, n_channels)``.
    """
    n = env.shape[0]
    C = fst.shape[1]
    if env.shape[1] != C or art.shape[0] != n or art.shape[1] != C:
        return -1
    if ecg is not None and (ecg.shape[0] != n or ecg.shape[1] != C):
        return -1
    if ns is not None and (ns.shape[0] != n or ns.shape[1] != C):
        return -1
    block = buf.shape[2]
    gap = int(cfg[_C_GAP])
    min_on = int(cfg[_C_MIN_ON])
    min_on_ecg = int(cfg[_C_MIN_ON_ECG])
    spasm = int(cfg[_C_SPASM])
    backtrack = int(cfg[_C_BACKTRACK])
    nd = 0
    row = ist[0, _ROW]
    while row < n:
        f0 = ist[0, _FRAME]
        pos = f0 % block
        m = min(n - row, block - pos)
        if nd + C * (3 * m + 3) > dec.shape[0]:
            ist[0, _ROW] = row
            return 2 * nd + 1
        ready = ist[0, _READY] != 0
        seg_end = f0 + m
        for c in range(C):
            on_thr = fst[_ON_THR, c]
            off_thr = fst[_OFF_THR, c]
            h = ist[_H, c] != 0
            last_below = ist[_LAST_BELOW, c]
            last_on = ist[_LAST_ON, c]
            uc = np.uint64(c)  # unsigned indices: no test for negative ones
            for t in range(m):
                r = np.uint64(row + t)
                f = f0 + t
                e = env[r, uc]
                flat = False
                if ns is not None:
                    flat = ns[r, uc] != 0
                a = (art[r, uc] != 0) or flat
                if ready:
                    above = (e > on_thr) and not a
                    resting = (e <= off_thr) or a
                    # an artefact frame (a heartbeat during the rise of a
                    # contraction) is no evidence of rest, but nothing is
                    # dated back into a stretch without signal
                    at_rest = (resting and not a) or flat
                else:
                    above = False
                    resting = True
                    at_rest = True
                if at_rest:
                    last_below = f
                if above:
                    h_new = True
                elif resting:
                    h_new = False
                else:
                    h_new = h
                if h_new != h:
                    h = h_new
                    if h:  # a run begins
                        if ist[_EP_ACTIVE, c] != 0 and f - ist[_EP_LAST, c] >= gap:
                            nd = _end_episode(ist, fst, dec, nd, c, gap)
                        ist[_RUN_START, c] = f
                        ist[_RUN_IN_EP, c] = ist[_EP_ACTIVE, c]
                        ist[_CAND_ONSET, c] = max(last_below + 1, f - backtrack)
                        on_ecg = False
                        if ecg is not None:
                            on_ecg = ecg[r, uc] != 0
                        ist[_RUN_MIN_ON, c] = min_on_ecg if on_ecg else min_on
                    else:  # the run ends
                        nd = _advance_run(ist, fst, dec, nd, c, f, spasm)
                        if ist[_RUN_IN_EP, c] != 0:
                            ist[_EP_LAST, c] = f
                if h:
                    last_on = f
                p = np.uint64(pos + t)
                buf[_ENV, uc, p] = e
                if h or a or f - last_on < gap:
                    buf[_QUIET, uc, p] = _NOT_QUIET
                elif e > 0.0:
                    buf[_QUIET, uc, p] = _QUIET_SIGNAL
                else:
                    buf[_QUIET, uc, p] = _QUIET_EMPTY
            if h:
                nd = _advance_run(ist, fst, dec, nd, c, seg_end, spasm)
                if ist[_RUN_IN_EP, c] != 0:
                    ist[_EP_LAST, c] = seg_end
            elif ist[_EP_ACTIVE, c] != 0 and seg_end - ist[_EP_LAST, c] >= gap:
                nd = _end_episode(ist, fst, dec, nd, c, gap)
            ist[_H, c] = 1 if h else 0
            ist[_LAST_BELOW, c] = last_below
            ist[_LAST_ON, c] = last_on
        row += m
        ist[0, _FRAME] = seg_end
        if seg_end % block == 0:
            _block_stats(ist, fst, buf, cfg)
    ist[0, _ROW] = 0
    return 2 * nd
