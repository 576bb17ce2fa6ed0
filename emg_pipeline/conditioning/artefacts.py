"""Suppression of artefacts whose energy lies below the EMG band.

Heartbeats on trunk muscles, limb and cable motion, and electrode pops all put
most of their energy below about 20 Hz, where surface EMG has almost none
(1.6 % of the power of the usual EMG spectral model lies below 20 Hz). What
they leak into the EMG band after the band-pass can still look like a
contraction. For each frame the gate measures the raw signal's amplitude ``L``
in a low band (about 4-18 Hz, below the band-pass) and removes from the
EMG-band envelope ``E`` the power such an artefact can explain:
``E_c**2 = E**2 - (ratio * L)**2``.

On the project's artefact models the EMG-band excess of cable knocks stays
below 0.85 L (95th percentile) and that of motion below 0.05 L, so one rule
cancels knocks and motion; ``L`` is held at its maximum over ``hold_s`` so that
the tail an artefact leaves in the EMG band is covered too. Frames where the
artefact explains more than half of the envelope's power are reported as
artefact.

Heartbeats are handled upstream: on a channel that carries ECG,
:class:`~emg_pipeline.conditioning.ecg.EcgSuppressor` filters the QRS out of
the EMG band, and there the gate lets pass the low-band energy of the heart
itself (up to ``ecg_margin`` times the 95th percentile of ``L`` over the
previous ``level_block_s``): only what stands above the heartbeat (a pop, a
knock, a movement) is judged, and a contraction under a strong ECG keeps its
envelope.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from .._jit import jit
from ..framing import FLOAT64, SUM, _frames_into, _moving_sum_into, _running_max_into
from .filters import sos_rows

__all__ = ["ArtefactGate"]


def _quantile_ranks(n: int, q: float) -> tuple[int, int, float]:
    """The two ranks and the weight of ``np.quantile(values, q)`` over ``n`` values.

    numpy's default (linear) method, step for step: the virtual index
    ``(n - 1) * q``, its floor and the next rank (both the last rank at or past
    the end, the floor then counted as ``-1``); the weight is the virtual
    index less that floor.
    """
    virtual = (n - 1) * q
    if virtual >= n - 1:
        return n - 1, n - 1, virtual - (-1.0)
    floor = math.floor(virtual)
    return floor, floor + 1, virtual - floor


@jit
def _select(a: np.ndarray, k: int) -> float:
    """The ``k``-th smallest value of ``a`` (no NaN); ``a`` is reordered.

    Afterwards no value left of ``k`` is larger than ``a[k]``.
    """
    lo = 0
    hi = a.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        # median of three as the pivot: sorted and constant runs stay cheap
        x, y, z = a[lo], a[mid], a[hi]
        if x > y:
            x, y = y, x
        if y > z:
            y = z
            if x > y:
                y = x
        pivot = y
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                t = a[i]
                a[i] = a[j]
                a[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@jit
def _ranks(a: np.ndarray, lower: int, upper: int) -> tuple[float, float]:
    """The values at ranks ``lower`` and ``upper`` (the same, or the next) of ``a``."""
    high = _select(a, upper)
    if lower == upper:
        return high, high
    low = a[0]  # the largest value left of the upper rank
    for i in range(1, upper):
        if a[i] > low:
            low = a[i]
    return low, high


@jit
def _level_of(
    block: np.ndarray, lower: int, upper: int, gamma: float, level: np.ndarray
) -> None:
    """``level`` = ``np.quantile(block, q, axis=0)`` for the ranks and weight of ``q``.

    The values at the two ranks (:func:`_quantile_ranks`), then numpy's
    interpolation ``a + (b - a) * g``, or ``b - (b - a) * (1 - g)`` when ``g >=
    0.5``; a column with a NaN gives NaN. When the ranks are near the top,
    only the values above a pivot taken from every eighth value are searched.
    """
    n, n_ch = block.shape
    columns = np.empty((n_ch, n))  # each channel's values, contiguous
    for i in range(n):
        for c in range(n_ch):
            columns[c, i] = block[i, c]
    scratch = np.empty(n)
    need = n - lower  # values at or above the lower rank
    m = n // 8
    for c in range(n_ch):
        values = columns[c]
        nan = 0.0
        for i in range(n):
            if values[i] != values[i]:
                nan = values[i]
                break
        if nan != nan:
            level[c] = nan
            continue
        found = False
        if 4 * need < n and m >= 16:
            sample = scratch[:m]
            for i in range(m):
                sample[i] = values[8 * i]
            pivot = _select(sample, m - (need + 7) // 8 - 2)
            count = 0
            for i in range(n):
                if values[i] >= pivot:
                    scratch[count] = values[i]
                    count += 1
            if count >= need:  # every value below the pivot ranks below `lower`
                a, b = _ranks(scratch[:count], lower - (n - count), upper - (n - count))
                found = True
        if not found:
            a, b = _ranks(values, lower, upper)
        diff = b - a
        if gamma >= 0.5:
            level[c] = b - diff * (1 - gamma)
        else:
            level[c] = a + diff * gamma


@jit
def _gate_views(state: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, ...]:
    """The parts of the gate's state, rows of ``state`` ``(n_rows, n_channels)``.

    ``shape`` is ``(frame_len, n_sections, window, hold, level_block, lower,
    upper)``. The parts: the unfinished frame (``frame_len`` rows), the band
    filter's state (two rows per section), the moving average's last rows
    (``window - 1``), the hold (``2 * hold + 1`` rows, see
    :func:`~emg_pipeline.framing._running_max_into`), the level block
    (``level_block`` rows) and the heartbeat level (one row).
    """
    frame_len, n_sec, window, hold, block = shape[0], shape[1], shape[2], shape[3], shape[4]
    i0 = frame_len
    i1 = i0 + 2 * n_sec
    i2 = i1 + window - 1
    i3 = i2 + 2 * hold + 1
    i4 = i3 + block
    return state[:i0], state[i0:i1], state[i1:i2], state[i2:i3], state[i3:i4], state[i4]


@jit
def _gate_kernel(
    raw: np.ndarray,
    envelope: np.ndarray,
    ecg: np.ndarray,
    has_ecg: bool,
    n_rest: int,
    state: np.ndarray,
    istate: np.ndarray,
    conf: np.ndarray,
    shape: np.ndarray,
    out: np.ndarray,
    artefact: np.ndarray,
    low: np.ndarray,
) -> None:
    """The gate for the frames completed by ``raw``.

    Fills ``low`` (the held low-band amplitude) for every frame, then ``out``
    and ``artefact`` (:func:`_gate_output`). ``state`` and ``istate`` (band
    filter started, frames in the level block, rows in the hold's block) are
    updated in place; the parts of ``state`` are in :func:`_gate_views`.
    ``conf`` is ``(ratio, ecg_margin, quantile)`` in its first row, then the
    band filter's sections ``(b0, b1, b2, a0, a1, a2)``, each followed by its
    unit steady state (``sosfilt_zi``, two columns). ``n_rest`` samples of the
    unfinished frame were seen before ``raw``.

    The arithmetic is that of the numpy formulation, in the same order: frame
    means, ``scipy.signal.sosfilt``'s direct form II transposed (started at the
    steady state of the first frame), squares, a moving average adding its
    window oldest first, ``sqrt(max(., 0))``, and the running maximum.
    """
    n_frames, n_ch = low.shape
    rest, zi, average_tail, hold, block, level = _gate_views(state, shape)
    coef = conf[1:]
    n_sec = coef.shape[0]
    _frames_into(raw, rest, n_rest, low, SUM, float(rest.shape[0]))
    if n_frames == 0:
        return
    if istate[0] == 0:
        for s in range(n_sec):
            for c in range(n_ch):
                zi[2 * s, c] = coef[s, 6] * low[0, c]
                zi[2 * s + 1, c] = coef[s, 7] * low[0, c]
        istate[0] = 1
    sos_rows(coef[:, :6], low, low, zi[0::2], zi[1::2])
    for i in range(n_frames):
        for c in range(n_ch):
            low[i, c] = low[i, c] * low[i, c]
    _moving_sum_into(average_tail, low, out, float(average_tail.shape[0] + 1), True)
    istate[2] = _running_max_into(out, hold, istate[2], low)
    _gate_output(low, envelope, ecg, has_ecg, block, level, shape, istate, conf, out, artefact)


@jit
def _gate_output(
    low: np.ndarray,
    envelope: np.ndarray,
    ecg: np.ndarray,
    has_ecg: bool,
    block: np.ndarray,
    level: np.ndarray,
    shape: np.ndarray,
    istate: np.ndarray,
    conf: np.ndarray,
    out: np.ndarray,
    artefact: np.ndarray,
) -> None:
    """Corrected envelope ``out`` and ``artefact`` flags of every frame.

    Every frame's held amplitude joins the heartbeat-level block (``istate[1]``
    rows of ``block`` so far); when the block is complete, the heartbeat
    ``level`` is measured on it (:func:`_level_of`, at the ranks ``shape[5:7]``
    with the weight ``conf[0, 2]``) for the frames after it. ``conf[0]`` is
    ``(ratio, ecg_margin, weight)``.
    """
    n_frames, n_ch = low.shape
    ratio = conf[0, 0]
    margin = conf[0, 1]
    filled = istate[1]
    for i in range(n_frames):
        for c in range(n_ch):
            held = low[i, c]
            block[filled, c] = held
            if has_ecg and ecg[i, c]:
                above = held - margin * level[c]
                held = above if not above < 0.0 else 0.0
            t = ratio * held
            explained = t * t
            e = envelope[i, c]
            power = e * e
            artefact[i, c] = explained > 0.5 * power
            rest = power - explained
            out[i, c] = np.sqrt(rest if not rest < 0.0 else 0.0)
        filled += 1
        if filled == block.shape[0]:
            _level_of(block, shape[5], shape[6], conf[0, 2], level)
            filled = 0
    istate[1] = filled


class ArtefactGate:
    """Remove from the envelope what sub-EMG-band artefacts explain.

    Parameters
    ----------
    fs : float
        Sampling rate of the raw signal in Hz.
    n_channels : int
        Number of channels.
    frame_len : int
        Samples per frame (the same framing as the envelope).
    window_s : float
        Smoothing window of the low-band amplitude (the envelope's window).
    ratio : float
        Largest EMG-band leak of an artefact, as a multiple of its low-band
        amplitude.
    band_hz : tuple of float
        Low band.
    hold_s : float
        The low-band amplitude is held at its maximum over this long.
    level_block_s : float
        How often the heartbeat level of ECG channels is measured.
    ecg_margin : float
        On ECG channels, low-band energy up to this multiple of the heartbeat
        level is the heart, not an artefact.
    """

    def __init__(
        self,
        fs: float,
        n_channels: int,
        frame_len: int,
        window_s: float,
        ratio: float = 0.8,
        band_hz: tuple[float, float] = (4.0, 18.0),
        hold_s: float = 0.15,
        level_block_s: float = 5.0,
        ecg_margin: float = 1.2,
    ) -> None:
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.frame_len = int(frame_len)
        self.window_s = float(window_s)
        self.ratio = float(ratio)
        self.hold_s = float(hold_s)
        self.level_block_s = float(level_block_s)
        self.ecg_margin = float(ecg_margin)
        frame_rate = self.fs / self.frame_len
        self._level_block = max(1, round(self.level_block_s * frame_rate))
        high = min(band_hz[1], 0.4 * frame_rate)
        self.band_hz = (float(band_hz[0]), float(high))
        # a steep upper edge: mains hum is still in the raw signal and must not
        # count as low-band energy ((18/50)^4 leaves under 2 % of 50 Hz)
        self._sos = np.vstack([
            signal.butter(4, self.band_hz[1], btype="lowpass", fs=frame_rate, output="sos"),
            signal.butter(2, self.band_hz[0], btype="highpass", fs=frame_rate, output="sos"),
        ])
        window = max(1, round(self.window_s * frame_rate))  # frames averaged
        hold = max(1, round(self.hold_s * frame_rate))  # frames held
        n_sec = self._sos.shape[0]
        # the level is the 0.95 quantile of a block: the values at two ranks and
        # a weight
        lower, upper, weight = _quantile_ranks(self._level_block, 0.95)
        self._shape = np.array(
            [self.frame_len, n_sec, window, hold, self._level_block, lower, upper]
        )
        # each section is followed by its unit steady state (the filter starts
        # at the steady state of the first frame)
        self._conf = np.zeros((1 + n_sec, 8))
        self._conf[0, :3] = self.ratio, self.ecg_margin, weight
        self._conf[1:] = np.hstack([self._sos, signal.sosfilt_zi(self._sos)])
        # rows of the state (see _gate_views), and those of the hold
        first = self.frame_len + 2 * n_sec + window - 1
        self._hold_rows = (first, first + 2 * hold + 1)
        self._rows = self._hold_rows[1] + self._level_block + 1
        self._no_ecg = np.zeros((0, self.n_channels), dtype=bool)
        self.reset()

    def reset(self) -> None:
        """Forget filter states and the hold."""
        C = self.n_channels
        self._n_rest = 0  # samples of the unfinished frame
        # band filter started, frames in the level block, rows in the hold's block
        self._istate = np.zeros(3, dtype=np.int64)
        # the parts are in _gate_views: zero filter state and average, the hold
        # at minus infinity, no heartbeat level measured yet (infinite)
        self._state = np.zeros((self._rows, C))
        self._state[self._hold_rows[0] : self._hold_rows[1]] = -np.inf
        self._state[-1] = np.inf
        self.low_band = np.empty((0, C))
        self.artefact = np.zeros((0, C), dtype=bool)

    def process(
        self, raw: np.ndarray, envelope: np.ndarray, ecg: np.ndarray | None = None
    ) -> np.ndarray:
        """Envelope with the artefact-explained power removed, for the frames of ``raw``.

        Parameters
        ----------
        raw : ndarray, shape (n_samples, n_channels)
            Raw signal (gaps bridged), before the band-pass.
        envelope : ndarray, shape (n_frames, n_channels)
            EMG-band envelope of the frames completed by ``raw``.
        ecg : ndarray of bool, shape (n_frames, n_channels), optional
            Frames of channels that carry ECG and whose band signal had it
            filtered out (:class:`~emg_pipeline.conditioning.ecg.EcgSuppressor`):
            there only low-band energy above the heartbeat's own level (the
            95th percentile of the held amplitude over the previous
            ``level_block_s``, times ``ecg_margin``) counts.

        Returns
        -------
        ndarray, shape (n_frames, n_channels)
            Corrected envelope. :attr:`artefact` holds the frames where the
            artefact explains more than half of the power, :attr:`low_band`
            the held low-band amplitude.
        """
        C = self.n_channels
        if raw.dtype is not FLOAT64 and raw.dtype != FLOAT64:
            raw = raw.astype(np.float64)
        r = self._n_rest
        n = (r + raw.shape[0]) // self.frame_len
        if n != envelope.shape[0]:
            raise ValueError("raw samples and envelope frames are out of step")
        self._n_rest = (r + raw.shape[0]) % self.frame_len
        out = np.empty((n, C))
        artefact = np.empty((n, C), dtype=bool)
        low = np.empty((n, C))
        has_ecg = ecg is not None
        if not has_ecg:
            ecg = self._no_ecg
        _gate_kernel(
            raw, envelope, ecg, has_ecg, r, self._state, self._istate, self._conf, self._shape,
            out, artefact, low,
        )
        self.low_band = low
        self.artefact = artefact
        return out if n else envelope
