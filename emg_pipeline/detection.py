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

The frames go through one compiled kernel (:func:`_detect`) that walks each
block segment channel by channel, frame by frame, with the whole state in two
small arrays, and writes its rare decisions to a preallocated table that Python
turns into :class:`Detection` values. Logarithms and exponentials (the block
statistics live on the log-envelope) are left to numpy, whose vectorised
``log``/``exp`` differ in the last bit from the C library's: at the end of a
block the kernel returns, numpy takes the logarithm of the block (and then the
exponentials of the new floor and spreads), and the kernel resumes where it
stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._jit import jit
from .settings import PipelineSettings

__all__ = ["Detection", "Detector"]

_NEVER = -(10**15)
_MAX_BACKTRACK_S = 1.0
_INIT_MAX_BLOCKS = 60  # blocks (30 s) the first floor may wait for enough quiet frames
_DBL_MAX = float(np.finfo(np.float64).max)

# kernel status (low two bits of its return value; the rest counts decisions)
_DONE, _NEED_LOG, _NEED_EXP, _FULL = 0, 1, 2, 3
_KINDS: tuple[Literal["onset", "sustained", "end"], ...] = ("onset", "sustained", "end")
_ONSET, _SUSTAINED, _END = 0, 1, 2

# integer state: row 0 holds the scalars, the other rows one entry per channel
_FRAME, _READY, _INIT_BLOCKS, _PHASE, _ROW = 0, 1, 2, 3, 4
_N_SCALARS = 5
(_H, _LAST_BELOW, _LAST_ON, _FROZEN, _RUN_START, _RUN_MIN_ON, _RUN_IN_EP, _CAND_ONSET,
 _EP_ACTIVE, _EP_ONSET, _EP_LAST, _EP_SUSTAINED) = range(1, 13)
_N_IROWS = 13
# float state, one entry per channel in each row; the last six rows are the
# arguments and results of the block's exponentials
(_LOG_FLOOR, _LOG_SPREAD, _ON_THR, _OFF_THR, _FLOOR, _EP_FLOOR) = range(6)
_EXP_IN, _EXP_OUT = 6, 9
_N_FROWS = 12
# planes of the block buffer: envelope, envelope clipped for the log, its log, quiet flag
_RAW, _CLIPPED, _LOG, _QUIET = range(4)
# configuration (one float64 vector; integers are exact)
(_C_BLOCK, _C_GAP, _C_MIN_ON, _C_MIN_ON_ECG, _C_SPASM, _C_BACKTRACK, _C_WARMUP, _C_FREEZE,
 _C_INIT_MAX, _C_ABSOLUTE, _C_RISE, _C_FALL, _C_SPREAD_GAIN, _C_ON_SD, _C_OFF_SD,
 _C_MIN_ON_RATIO, _C_MIN_OFF_RATIO, _C_ON_UV, _C_OFF_UV) = range(19)
_N_CFG = 19
# columns of the decision table
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
        self._spasm = max(1, math.ceil(settings.spasm_min_s * fr - 1e-9))
        self._backtrack = max(1, round(_MAX_BACKTRACK_S * fr))
        block_s = self._block * self.frame_s
        self._rise = 1.0 - math.exp(-block_s / settings.floor_rise_tau_s)
        self._fall = 1.0 - math.exp(-block_s / settings.floor_fall_tau_s)
        self._spread_gain = 1.0 - math.exp(-block_s / 5.0)
        self._freeze_blocks = max(1, math.ceil(settings.floor_freeze_max_s / block_s))
        self._warmup = math.ceil(settings.window_s * fr - 1e-9)  # envelope window filling
        cfg = np.zeros(_N_CFG)
        cfg[_C_BLOCK] = self._block
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
        self._dec = np.zeros((self.n_channels * (3 * self._block + 3) + 16, 6))
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
        fst[_FLOOR] = np.exp(fst[_LOG_FLOOR])
        fst[_EP_FLOOR] = np.nan
        self._istate = ist
        self._fstate = fst
        self._buf = np.zeros((4, self._block, C))
        # views handed to numpy's log and exp at the end of a block
        self._log_in, self._log_out = self._buf[_CLIPPED], self._buf[_LOG]
        self._exp_in = fst[_EXP_IN : _EXP_IN + 3]
        self._exp_out = fst[_EXP_OUT : _EXP_OUT + 3]

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
        return self._fstate[_ON_THR]

    @property
    def off_threshold(self) -> np.ndarray:
        """Off threshold per channel (envelope units; inf before the first floor)."""
        return self._fstate[_OFF_THR]

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

        ``ecg`` marks frames of channels that carry ECG: an activity that starts
        there is confirmed only after ``ecg_min_on_s`` (a pop during a heartbeat
        looks like the beat to the artefact gate for longer). ``no_signal``
        marks frames without signal (a flat line): they count as artefact, and
        no onset is dated back into them.
        """
        args = (env, artefact, ecg, no_signal, self._istate, self._fstate, self._buf,
                self._dec, self._cfg)
        r = _detect(*args)
        if r == 0:  # the usual live chunk: no decision, no block end
            return []
        out: list[Detection] = []
        while True:
            n, status = r >> 2, r & 3
            if n:
                for kind, c, frame, onset, offset, floor in self._dec[:n].tolist():
                    out.append(Detection(_KINDS[int(kind)], int(c), int(frame), int(onset),
                                         int(offset), floor))
            if status == _DONE:
                return out
            if status == _NEED_LOG:
                np.log(self._log_in, out=self._log_out)
            elif status == _NEED_EXP:
                np.exp(self._exp_in, out=self._exp_out)
            r = _detect(*args)

    def flush(self) -> list[Detection]:
        """Close every open episode at the end of the stream."""
        out: list[Detection] = []
        ist, fst = self._istate, self._fstate
        end = self.frame_index
        for c in range(self.n_channels):
            if not ist[_EP_ACTIVE, c]:
                continue
            still_on = bool(ist[_H, c])
            last = end if still_on else int(ist[_EP_LAST, c])
            truncated = still_on or (end - last) < self._gap
            out.append(Detection("end", c, end - 1, int(ist[_EP_ONSET, c]), last,
                                 float(fst[_EP_FLOOR, c]), truncated))
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
    """Partially order ``a[lo:hi]`` so that ``a[k]`` is its ``k - lo``-th smallest.

    Afterwards ``a[lo:k] <= a[k] <= a[k + 1:hi]`` (Wirth's selection; no NaN).
    """
    m = hi - 1
    while lo < m:
        x = a[k]
        i = lo
        j = m
        while i <= j:
            while a[i] < x:
                i += 1
            while x < a[j]:
                j -= 1
            if i <= j:
                t = a[i]
                a[i] = a[j]
                a[j] = t
                i += 1
                j -= 1
        if j < k:
            lo = i
        if k < i:
            m = j


@jit
def _quantiles3(
    vals: np.ndarray, n_val: int, n_nan: int, n_rows: int, q0: float, q1: float, q2: float
) -> tuple[float, float, float]:
    """Three quantiles (lower interpolation) of a masked column, as numpy would sort it.

    ``vals[:n_val]`` are the selected non-NaN values (reordered in place),
    ``n_nan`` the selected NaN values, ``n_rows`` the column length: unselected
    rows count as +inf, after the selected values and before the NaNs. NaN
    where nothing is selected.
    """
    count = n_val + n_nan
    if count == 0:
        return np.nan, np.nan, np.nan
    k0 = max(int(q0 * (count - 1)), 0)
    k1 = max(int(q1 * (count - 1)), 0)
    k2 = max(int(q2 * (count - 1)), 0)
    # nearest-rank picks, in increasing order (k0 <= k1 <= k2)
    if k1 < n_val:
        _select(vals, 0, n_val, k1)
        if k0 < k1:
            _select(vals, 0, k1, k0)
        if k2 > k1 and k2 < n_val:
            _select(vals, k1 + 1, n_val, k2)
    elif k0 < n_val:
        _select(vals, 0, n_val, k0)
    fills = n_rows - count
    out = np.empty(3)
    for i, k in enumerate((k0, k1, k2)):
        if k < n_val:
            out[i] = vals[k]
        elif k < n_val + fills:
            out[i] = np.inf
        else:
            out[i] = np.nan
    return out[0], out[1], out[2]


@jit
def _gather(
    buf: np.ndarray, c: int, mode: int, first: int, warmup: int, vals: np.ndarray
) -> tuple[int, int]:
    """Collect the log-envelope of channel ``c`` on the block rows selected by ``mode``.

    ``mode``: 0 quiet rows, 1 every row, 2 quiet rows with a positive envelope,
    3 those of them past the warm-up (row ``t`` is frame ``first + t``).
    Returns the number of non-NaN values written to ``vals`` and of NaN values.
    """
    n_val = 0
    n_nan = 0
    for t in range(buf.shape[1]):
        if mode != 1:
            if buf[3, t, c] == 0.0:
                continue
            if mode >= 2 and not buf[0, t, c] > 0.0:
                continue
            if mode == 3 and first + t < warmup:
                continue
        v = buf[2, t, c]
        if v != v:
            n_nan += 1
        else:
            vals[n_val] = v
            n_val += 1
    return n_val, n_nan


@jit
def _block_stats(ist: np.ndarray, fst: np.ndarray, buf: np.ndarray, cfg: np.ndarray) -> bool:
    """Update the floor and spread from the finished block (its log in ``buf[2]``).

    Returns whether the thresholds must be set (then ``fst[6:9]`` holds the
    arguments of their exponentials).
    """
    C = fst.shape[1]
    block = buf.shape[1]
    vals = np.empty(block)
    if ist[0, 1] == 0:
        # the first floor: see Detector._end_block in the documentation above
        first = ist[0, 0] - block
        warmup = int(cfg[6])
        ist[0, 2] += 1
        enough = np.empty(C, dtype=np.bool_)
        all_enough = True
        for c in range(C):
            cnt = 0
            for t in range(block):
                if buf[3, t, c] != 0.0 and buf[0, t, c] > 0.0 and first + t >= warmup:
                    cnt += 1
            enough[c] = cnt >= 0.25 * block
            if not enough[c]:
                all_enough = False
        if not all_enough and ist[0, 2] < int(cfg[8]):
            return False
        for c in range(C):
            found = False
            for t in range(block):
                if buf[3, t, c] != 0.0 and buf[0, t, c] > 0.0 and (
                    not enough[c] or first + t >= warmup
                ):
                    found = True
                    break
            if not found:
                return False
        for c in range(C):
            n_val, n_nan = _gather(buf, c, 3 if enough[c] else 2, first, warmup, vals)
            q10, q30, q40 = _quantiles3(vals, n_val, n_nan, block, 0.1, 0.3, 0.4)
            spread = _npmax(_nan_to_num((q40 - q10) / 1.028, 1e-3), 1e-3)
            fst[1, c] = spread
            fst[0, c] = _nan_to_num(q30, 0.0) + 0.524 * spread
        ist[0, 1] = 1
    else:
        freeze = int(cfg[7])
        rise = cfg[10]
        fall = cfg[11]
        gain = cfg[12]
        for c in range(C):
            cnt = 0
            for t in range(block):
                if buf[3, t, c] != 0.0:
                    cnt += 1
            usable = cnt >= 0.5 * block
            if usable:
                ist[4, c] = 0
            else:
                ist[4, c] += 1
            thawed = not usable and ist[4, c] >= freeze
            n_val, n_nan = _gather(buf, c, 1 if thawed else 0, 0, 0, vals)
            q10, q50, q90 = _quantiles3(vals, n_val, n_nan, block, 0.1, 0.5, 0.9)
            log_floor = fst[0, c]
            if usable or thawed:
                rate = fall if q50 < log_floor else rise
                fst[0, c] = log_floor + rate * (q50 - log_floor)
            spread = _npmax((q90 - q10) / 2.563, 1e-3)
            if usable:
                fst[1, c] = fst[1, c] + gain * (spread - fst[1, c])
    absolute = cfg[9] != 0.0
    for c in range(C):
        fst[6, c] = fst[0, c]
        if absolute:
            fst[7, c] = 0.0
            fst[8, c] = 0.0
        else:
            fst[7, c] = cfg[13] * fst[1, c]
            fst[8, c] = cfg[14] * fst[1, c]
    return True


@jit
def _set_thresholds(fst: np.ndarray, cfg: np.ndarray) -> None:
    """Floor and thresholds from the exponentials in ``fst[9:12]``."""
    absolute = cfg[9] != 0.0
    for c in range(fst.shape[1]):
        floor = fst[9, c]
        fst[4, c] = floor
        if absolute:
            fst[2, c] = floor + cfg[17]
            fst[3, c] = floor + cfg[18]
        else:
            on = _npmax(fst[10, c], cfg[15])
            off = _npmax(fst[11, c], cfg[16])
            fst[2, c] = floor * on
            fst[3, c] = floor * _npmin(off, on)


@jit
def _emit(
    dec: np.ndarray, nd: int, kind: int, c: int, frame: int, onset: int, offset: int,
    floor: float,
) -> int:
    dec[nd, 0] = kind
    dec[nd, 1] = c
    dec[nd, 2] = frame
    dec[nd, 3] = onset
    dec[nd, 4] = offset
    dec[nd, 5] = floor
    return nd + 1


@jit
def _end_episode(ist: np.ndarray, fst: np.ndarray, dec: np.ndarray, nd: int, c: int,
                 gap: int) -> int:
    last = ist[11, c]
    nd = _emit(dec, nd, 2, c, last + gap - 1, ist[10, c], last, fst[5, c])
    ist[9, c] = 0
    return nd


@jit
def _advance_run(ist: np.ndarray, fst: np.ndarray, dec: np.ndarray, nd: int, c: int, upto: int,
                 spasm: int) -> int:
    """Account for active frames of the current run up to frame ``upto`` (exclusive)."""
    start = ist[5, c]
    if ist[7, c] == 0:
        confirm = start + ist[6, c] - 1
        if confirm >= upto:
            return nd
        ist[9, c] = 1
        ist[10, c] = ist[8, c]
        ist[12, c] = 0
        fst[5, c] = fst[4, c]
        ist[7, c] = 1
        nd = _emit(dec, nd, 0, c, confirm, ist[10, c], -1, fst[5, c])
    if ist[12, c] == 0:
        t = max(start, ist[10, c] + spasm - 1)
        if t < upto:
            ist[12, c] = 1
            nd = _emit(dec, nd, 1, c, t, ist[10, c], -1, fst[5, c])
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
    """Run the detector over ``env`` from row ``ist[0, 4]`` until done or numpy is needed.

    Returns ``4 * n_decisions + status``: the decisions are in ``dec[:n]``;
    status 0 done (the next call starts a new chunk), 1 the block ended and
    needs ``log(buf[1])`` in ``buf[2]``, 2 the new floor needs ``exp(fst[6:9])``
    in ``fst[9:12]``, 3 the decision table is full (read it and call again).
    """
    n = env.shape[0]
    C = fst.shape[1]
    block = int(cfg[0])
    gap = int(cfg[1])
    min_on = int(cfg[2])
    min_on_ecg = int(cfg[3])
    spasm = int(cfg[4])
    backtrack = int(cfg[5])
    nd = 0
    phase = ist[0, 3]
    if phase == 1:
        if _block_stats(ist, fst, buf, cfg):
            ist[0, 3] = 2
            return 2
        ist[0, 3] = 0
    elif phase == 2:
        _set_thresholds(fst, cfg)
        ist[0, 3] = 0
    row = ist[0, 4]
    while row < n:
        f0 = ist[0, 0]
        pos = f0 % block
        m = min(n - row, block - pos)
        if nd + C * (3 * m + 3) > dec.shape[0]:
            ist[0, 4] = row
            return 4 * nd + 3
        ready = ist[0, 1] != 0
        seg_end = f0 + m
        for c in range(C):
            on_thr = fst[2, c]
            off_thr = fst[3, c]
            h = ist[1, c] != 0
            last_below = ist[2, c]
            last_on = ist[3, c]
            for t in range(m):
                r = row + t
                f = f0 + t
                e = env[r, c]
                flat = False
                if ns is not None:
                    flat = ns[r, c] != 0
                a = (art[r, c] != 0) or flat
                if ready:
                    above = (e > on_thr) and not a
                    resting = (e <= off_thr) or a
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
                    if h:
                        # a run begins
                        if ist[9, c] != 0 and f - ist[11, c] >= gap:
                            nd = _end_episode(ist, fst, dec, nd, c, gap)
                        ist[5, c] = f
                        ist[7, c] = ist[9, c]
                        ist[8, c] = max(last_below + 1, f - backtrack)
                        on_ecg = False
                        if ecg is not None:
                            on_ecg = ecg[r, c] != 0
                        ist[6, c] = min_on_ecg if on_ecg else min_on
                    else:
                        # the run ends
                        nd = _advance_run(ist, fst, dec, nd, c, f, spasm)
                        if ist[7, c] != 0:
                            ist[11, c] = f
                if h:
                    last_on = f
                p = pos + t
                buf[0, p, c] = e
                buf[1, p, c] = e if (e >= 1e-12 or e != e) else 1e-12
                buf[3, p, c] = 1.0 if (not h and not a and f - last_on >= gap) else 0.0
            if h:
                nd = _advance_run(ist, fst, dec, nd, c, seg_end, spasm)
                if ist[7, c] != 0:
                    ist[11, c] = seg_end
            elif ist[9, c] != 0 and seg_end - ist[11, c] >= gap:
                nd = _end_episode(ist, fst, dec, nd, c, gap)
            ist[1, c] = 1 if h else 0
            ist[2, c] = last_below
            ist[3, c] = last_on
        row += m
        ist[0, 0] = seg_end
        if seg_end % block == 0:
            ist[0, 4] = row
            ist[0, 3] = 1
            return 4 * nd + 1
    ist[0, 4] = 0
    return 4 * nd
