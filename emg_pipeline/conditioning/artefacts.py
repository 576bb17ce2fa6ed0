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

import numpy as np
from scipy import signal

from .._jit import jit
from ..framing import SUM, _frames_into, _moving_sum_into, _new_hold, _running_max_into

__all__ = ["ArtefactGate"]


@jit
def _select(a: np.ndarray, k: int) -> float:
    """The ``k``-th smallest value of ``a`` (no NaN); ``a`` is reordered."""
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
def _quantile_into(block: np.ndarray, q: float, level: np.ndarray) -> None:
    """``level[c]`` = ``np.quantile(block, q, axis=0)[c]`` (the default, linear method).

    numpy's arithmetic, step for step: the virtual index ``(n - 1) * q``, its
    floor and the next index (both the last one at or past the end, the floor
    then counted as ``-1``), the two order statistics, and the interpolation
    ``a + (b - a) * g`` (``b - (b - a) * (1 - g)`` when ``g >= 0.5``). A
    column with a NaN gives NaN.
    """
    n, n_ch = block.shape
    virtual = (n - 1) * q
    if virtual >= n - 1:
        prev_i = n - 1
        next_i = n - 1
        gamma = virtual - (-1.0)
    elif virtual < 0.0:
        prev_i = 0
        next_i = 0
        gamma = virtual - 0.0
    else:
        floor = np.floor(virtual)
        prev_i = int(floor)
        next_i = prev_i + 1
        gamma = virtual - floor
    work = np.empty(n)
    for c in range(n_ch):
        nan = 0.0
        has_nan = False
        for i in range(n):
            v = block[i, c]
            if v != v:
                if not has_nan:
                    nan = v
                has_nan = True
            work[i] = v
        if has_nan:
            level[c] = nan
            continue
        b = _select(work, next_i)
        if prev_i == next_i:
            a = b
        else:  # the largest value left of the next index after the selection
            a = work[0]
            for i in range(1, next_i):
                if work[i] > a:
                    a = work[i]
        diff = b - a
        if gamma >= 0.5:
            level[c] = b - diff * (1 - gamma)
        else:
            level[c] = a + diff * gamma


@jit
def _gate_kernel(
    raw: np.ndarray,
    envelope: np.ndarray,
    ecg: np.ndarray,
    has_ecg: bool,
    rest: np.ndarray,
    n_rest: int,
    istate: np.ndarray,
    coef: np.ndarray,
    zi: np.ndarray,
    average_tail: np.ndarray,
    hold: np.ndarray,
    block: np.ndarray,
    level: np.ndarray,
    fconf: np.ndarray,
    out: np.ndarray,
    artefact: np.ndarray,
    low: np.ndarray,
) -> None:
    """The gate for the frames completed by ``raw``.

    Fills ``low`` (the held low-band amplitude) for every frame, then ``out``
    and ``artefact`` (:func:`_gate_output`). State, updated in place: ``rest[:n_rest]`` the
    unfinished frame, ``istate`` (band filter started, frames in the level
    block, ``pos`` of the hold), ``zi`` ``(n_channels, n_sections, 2)`` the
    band filter, ``average_tail`` the last rows of the moving average and
    ``hold`` the running maximum's blocks
    (:func:`~emg_pipeline.framing._running_max_into`). ``coef`` holds the
    sections ``(b0, b1, b2, a0, a1, a2)`` followed by the filter's unit steady
    state (``sosfilt_zi``), two columns.

    The arithmetic is that of the numpy formulation, in the same order: frame
    means, ``scipy.signal.sosfilt``'s direct form II transposed (started at the
    steady state of the first frame), squares, a moving average adding its
    window oldest first, ``sqrt(max(., 0))``, and the running maximum.
    """
    n_frames, n_ch = low.shape
    n_sec = coef.shape[0]
    _frames_into(raw, rest, n_rest, low, SUM, float(rest.shape[0]))
    if n_frames == 0:
        return
    if istate[0] == 0:
        for c in range(n_ch):
            for s in range(n_sec):
                zi[c, s, 0] = coef[s, 6] * low[0, c]
                zi[c, s, 1] = coef[s, 7] * low[0, c]
        istate[0] = 1
    for i in range(n_frames):
        for s in range(n_sec):
            b0 = coef[s, 0]
            b1 = coef[s, 1]
            b2 = coef[s, 2]
            a1 = coef[s, 4]
            a2 = coef[s, 5]
            for c in range(n_ch):
                xn = low[i, c]
                xc = b0 * xn + zi[c, s, 0]
                zi[c, s, 0] = b1 * xn - a1 * xc + zi[c, s, 1]
                zi[c, s, 1] = b2 * xn - a2 * xc
                low[i, c] = xc
        for c in range(n_ch):
            low[i, c] = low[i, c] * low[i, c]
    window = average_tail.shape[0] + 1
    _moving_sum_into(average_tail, low, out, float(window))
    for i in range(n_frames):
        for c in range(n_ch):
            v = out[i, c]
            out[i, c] = np.sqrt(v if not v < 0.0 else 0.0)
    istate[2] = _running_max_into(out, hold, istate[2], low)
    _gate_output(low, envelope, ecg, has_ecg, block, level, istate, fconf, out, artefact)


@jit
def _gate_output(
    low: np.ndarray,
    envelope: np.ndarray,
    ecg: np.ndarray,
    has_ecg: bool,
    block: np.ndarray,
    level: np.ndarray,
    istate: np.ndarray,
    fconf: np.ndarray,
    out: np.ndarray,
    artefact: np.ndarray,
) -> None:
    """Corrected envelope ``out`` and ``artefact`` flags of every frame.

    Every frame's held amplitude joins the heartbeat-level block (``istate[1]``
    rows of ``block`` so far); when the block is complete, the heartbeat
    ``level`` is measured on it for the frames after it. ``fconf`` is
    ``(ratio, ecg_margin, quantile)``.
    """
    n_frames, n_ch = low.shape
    ratio = fconf[0]
    margin = fconf[1]
    size = block.shape[0]
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
        if filled == size:
            _quantile_into(block, fconf[2], level)
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
        # the sections, then their unit steady state (the filter starts at the
        # steady state of the first frame)
        self._coef = np.hstack([self._sos, signal.sosfilt_zi(self._sos)])
        self._window = max(1, round(self.window_s * frame_rate))  # frames averaged
        self._hold = max(1, round(self.hold_s * frame_rate))  # frames held
        self._fconf = np.array([self.ratio, self.ecg_margin, 0.95])  # 0.95: the level's quantile
        self._no_ecg = np.zeros((0, self.n_channels), dtype=bool)
        self.reset()

    def reset(self) -> None:
        """Forget filter states and the hold."""
        C = self.n_channels
        self._rest = np.empty((self.frame_len, C))  # the unfinished frame
        self._n_rest = 0
        # band filter started, frames in the level block, rows in the hold's block
        self._istate = np.zeros(3, dtype=np.int64)
        self._zi = np.zeros((C, self._sos.shape[0], 2))
        self._average_tail = np.zeros((self._window - 1, C))
        self._peak = _new_hold(self._hold, C)
        self._block = np.empty((self._level_block, C))  # held amplitudes of the level block
        self._level = np.full(C, np.inf)  # heartbeat level, none measured yet
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
        if raw.dtype != np.float64:
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
            raw, envelope, ecg, has_ecg, self._rest, r, self._istate, self._coef, self._zi,
            self._average_tail, self._peak, self._block, self._level, self._fconf,
            out, artefact, low,
        )
        self.low_band = low
        self.artefact = artefact
        return out if n else envelope
