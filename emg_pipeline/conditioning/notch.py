"""Mains removal by an adaptive notch comb that follows the grid frequency.

Each harmonic ``h`` of the grid is a phasor per channel that turns at ``h f``
each sample; the sum of their real parts predicts the mains lines, the
prediction error is the output, and every phasor moves by a small gain times
that error (Widrow's adaptive noise canceller with sinusoidal references,
which acts as a notch of bandwidth ``gain fs / 2π`` at each line). It follows
a line whatever its amplitude does (a cable moved near the body can make the
interference three times stronger within a second) and removes nothing but
narrow bands around the lines. Three things make it hold up on real signals:

* **the frequency is tracked.** A notch keeps about ``2 δ / B`` of a line
  ``δ`` off its centre, so once per block of ``block_s`` on the stream's
  sample clock every harmonic of the current estimate ``f`` is demodulated
  over the block on every channel; the phase each demodulate turned through
  since the previous block, ``Δφ_h = 2π h δf T``, measures the frequency
  error ``δf``; the measurements of every harmonic on every channel where
  the line stands ``LINE_SNR`` above the noise in both blocks (on a channel
  with signal: not the dust of a flat input, ``SILENT_POWER``) are combined
  by their median weighted by line-to-noise ratio times ``h²`` (strength
  times frequency resolution; a median, so that a pop on one channel does not
  steer the comb of all). A harmonic's angle wraps at ±π, so it measures
  ``δf`` only modulo ``1 / (h T)``: the whole turns are counted first, at
  the error on which all the lines' angles agree best; an alpha-beta
  tracker turns
  them into the frequency and its rate of change (within ``MAX_OFFSET_HZ`` of
  nominal, ``MAX_RATE_HZ_S``);
* **transients do not make it ring.** The phasors move by the error clipped at
  ``CLIP_SD`` robust standard deviations of the last block's output: an
  electrode pop or a cable knock passes through untouched instead of
  exciting the lines' model for a tenth of a second after it;
* **it is flat elsewhere.** Away from the lines the error is the input times
  ``1 / (1 - Σ gain / 2)``; the output is scaled back (within 0.6 dB of unity
  between the notches, never above it).

Bandwidths are ``BANDWIDTH_HZ + BANDWIDTH_PER_HARMONIC_HZ h`` (a frequency
error grows with the harmonic number): together about 15 % of a 20-450 Hz
band. The loop runs sample by sample with carried state and the frequency
changes only at block ends on the sample clock, so the output does not depend
on the chunking. With ``mains="auto"`` the comb starts once a line at 50 or
60 Hz stands out of the spectrum, and starts afresh on the other grid if
that one's line is what stands out later (:mod:`.mains_search`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import jit
from .mains_search import MainsSearch

__all__ = ["MainsNotch"]

#: bandwidth of each notch (Hz): a constant part and a part per harmonic number
BANDWIDTH_HZ = 5.0
BANDWIDTH_PER_HARMONIC_HZ = 0.5
#: the tracked frequency stays this close to nominal, its rate of change below this
MAX_OFFSET_HZ = 1.0
MAX_RATE_HZ_S = 0.3
#: the phasors move by the error clipped at this many robust standard deviations
#: of the last block's output (transients would make them ring)
CLIP_SD = 4.0
#: a harmonic measures the frequency when its line stands this far above the noise
#: in its demodulate (power ratio)
LINE_SNR = 10.0
#: a channel whose output power per sample is below this (µV² or counts²: the
#: floating-point dust that a band-pass makes of a flat input) has no lines
SILENT_POWER = 1e-18
#: gains of the alpha-beta tracker (frequency, rate)
_ALPHA, _BETA = 0.7, 0.2


class _Comb(NamedTuple):
    """The comb's carried state (arrays; ``H`` harmonics, ``C`` channels)."""

    weight_re: np.ndarray    # (H, C) each line's complex amplitude against its reference
    weight_im: np.ndarray
    ref_re: np.ndarray       # (H,) a unit phasor turning at each harmonic's frequency
    ref_im: np.ndarray
    out_abs: np.ndarray      # (C,) the block's sum of |output|
    out_power: np.ndarray    # (C,) the block's sum of output squared


@jit
def _comb(x: np.ndarray, out: np.ndarray, w_re: np.ndarray, w_im: np.ndarray,
          r_re: np.ndarray, r_im: np.ndarray, out_abs: np.ndarray, out_power: np.ndarray,
          turn_re: np.ndarray, turn_im: np.ndarray, gain: np.ndarray, clip: np.ndarray,
          scale: float) -> None:
    """Adaptive notch comb, sample by sample: ``out = scale * (x - prediction of the lines)``.

    Each sample the references turn by their harmonic's ``turn``; the lines
    predicted are the real parts of weight times reference, summed over the
    harmonics; each weight moves by ``gain[h]`` times the prediction error
    (clipped at ``clip[c]``) times the reference's conjugate (the LMS step).
    Away from the lines the error is the input times
    ``1 / (1 - sum(gain) / 2)``: ``scale`` undoes that. The block sums of
    :class:`_Comb` are added to. The state comes as the fields of :class:`_Comb`
    (``w_re, w_im, r_re, r_im, out_abs, out_power``: separate arguments, as a
    compiled call types a tuple of arrays slowly) and is updated in place.
    """
    n_h, n_c = w_re.shape
    predicted = np.empty(n_c)
    for i in range(x.shape[0]):
        for h in range(n_h):
            a = r_re[h] * turn_re[h] - r_im[h] * turn_im[h]
            r_im[h] = r_re[h] * turn_im[h] + r_im[h] * turn_re[h]
            r_re[h] = a
        predicted[:] = 0.0
        for h in range(n_h):
            for c in range(n_c):
                predicted[c] += w_re[h, c] * r_re[h] - w_im[h, c] * r_im[h]
        for c in range(n_c):
            error = x[i, c] - predicted[c]
            y = scale * error
            out[i, c] = y
            out_abs[c] += abs(y)
            out_power[c] += y * y
            predicted[c] = min(max(error, -clip[c]), clip[c])   # the step
        for h in range(n_h):
            g_re = gain[h] * r_re[h]
            g_im = gain[h] * r_im[h]
            for c in range(n_c):
                w_re[h, c] += g_re * predicted[c]
                w_im[h, c] -= g_im * predicted[c]


class _Lines(NamedTuple):
    """What the last block measured of each line (arrays ``(H, C)``), for the next block."""

    re: np.ndarray
    im: np.ndarray
    power: np.ndarray
    strong: np.ndarray


@jit
def _measure_lines(st: _Comb, last: _Lines, out_power: np.ndarray, kept: float,
                   noise_share: np.ndarray, harmonics: np.ndarray, block_s: float,
                   line_snr: float, line_energy: np.ndarray, n_block: int,
                   silent: float) -> float:
    """Measure every line at a block's end; return the grid's frequency error (NaN: none).

    A line's power is ``|weight|^2 / 2``; the noise in its notch is the output's
    power per sample (``out_power / kept``: what the notches took added back)
    times ``noise_share[h]``. A line is strong when its power is ``line_snr``
    times that, on a channel whose output power is above ``silent`` (a flat
    input leaves dust whose "lines" would stand far above its own noise).
    Strong lines add their energy to ``line_energy``; a line strong
    in this block and the last measures the frequency error by the angle its
    weight turned, ``2π h δf T``. The errors are combined by
    :func:`_unwrapped_consensus`, weighted by line-to-noise ratio times ``h²``.
    ``last`` becomes this block's.
    """
    n_h, n_c = st.weight_re.shape
    errors = np.empty(n_h * n_c)
    weights = np.empty(n_h * n_c)
    orders = np.empty(n_h * n_c)   # the harmonic of each measurement, in rising order
    m = 0
    for h in range(n_h):
        for c in range(n_c):
            re = st.weight_re[h, c]
            im = st.weight_im[h, c]
            power = 0.5 * (re * re + im * im)
            noise = out_power[c] / kept * noise_share[h]
            strong = out_power[c] > silent and power > line_snr * noise
            if strong:
                line_energy[c] += (power - noise) * n_block
                if last.strong[h, c]:
                    # the angle of this weight times the conjugate of the last one
                    a = re * last.re[h, c] + im * last.im[h, c]
                    b = im * last.re[h, c] - re * last.im[h, c]
                    errors[m] = np.arctan2(b, a) / (2.0 * np.pi * harmonics[h] * block_s)
                    weights[m] = min(power, last.power[h, c]) / noise * harmonics[h] ** 2
                    orders[m] = harmonics[h]
                    m += 1
            last.re[h, c] = re
            last.im[h, c] = im
            last.power[h, c] = power
            last.strong[h, c] = strong
    return _unwrapped_consensus(errors[:m], weights[:m], orders[:m], block_s)


@jit
def _unwrapped_consensus(errors: np.ndarray, weights: np.ndarray, orders: np.ndarray,
                         block_s: float) -> float:
    """The grid's frequency error from every line's measurement (NaN for none).

    The line of harmonic ``h`` measures the error only up to whole turns of
    its angle, that is modulo ``1 / (h T)``: within ±0.29 Hz for the 7th
    harmonic over a 0.25 s block, while the fundamental's range is ±2 Hz.
    Taken at face value, a strong high harmonic can hold the comb on a wrong
    frequency where it turns by exactly one whole turn per block. So first
    the turns are counted: of the values the strongest measurement allows
    within the fundamental's range, the one on which all the lines' angles
    agree best (the largest sum of ``weight * cos(2π h T (value -
    measured))``; the nearest to zero among equals). Then each measurement
    is moved by whole turns to the one nearest that value, and the consensus
    is their weighted median (:func:`_weighted_median`).
    """
    if errors.shape[0] == 0:
        return np.nan
    strongest = np.argmax(weights)
    period = 1.0 / (orders[strongest] * block_s)
    top = 0.5 / block_s   # the fundamental's range
    best, best_score = errors[strongest], -np.inf
    tie = 1e-9 * weights.sum()
    for k in range(2 * int(top / period) + 1):   # 0, +1, -1, +2, -2, ... turns
        candidate = errors[strongest] + period * ((k + 1) // 2) * (1 if k % 2 else -1)
        score = 0.0
        for j in range(errors.shape[0]):
            score += weights[j] * np.cos(2.0 * np.pi * orders[j] * block_s
                                         * (candidate - errors[j]))
        if abs(candidate) <= top and score > best_score + tie:
            best, best_score = candidate, score
    for j in range(errors.shape[0]):
        period = 1.0 / (orders[j] * block_s)
        errors[j] += period * np.floor((best - errors[j]) / period + 0.5)
    return _weighted_median(errors, weights)


@jit
def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The least value whose own weight and that of the values below it reach half the total.

    NaN for no values. A direct count over every pair: the lines of a comb
    are a few dozen at most.
    """
    half = 0.5 * weights.sum()
    best = np.nan
    for i in range(values.shape[0]):
        v = values[i]
        if not v >= best:  # NaN best: the first candidate
            at_or_below = 0.0
            for j in range(values.shape[0]):
                if values[j] <= v:
                    at_or_below += weights[j]
            if at_or_below >= half:
                best = v
    return best


def _clip(value: float, low: float, high: float) -> float:
    """``value`` within ``[low, high]`` (``np.clip`` of one float, without its overhead)."""
    return min(max(float(value), low), high)


class MainsNotch:
    """Remove mains interference with an adaptive notch comb that tracks the grid frequency.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    n_channels : int
        Number of channels.
    mains : {"auto", "50", "60", "off"}
        Grid frequency, or ``"auto"`` to find it, or ``"off"``.
    max_harmonics : int
        Highest harmonic notched.
    band_hz : tuple of float
        Band of the signal reaching this stage; harmonics outside it are skipped.
    block_s : float
        The comb is retuned at the end of every block of this length.

    Attributes
    ----------
    mains_hz : float or None
        Nominal grid frequency once known.
    line_energy : ndarray, shape (n_channels,)
        Energy of the mains lines measured so far (the power of every line that
        stands ``LINE_SNR`` above the noise in its notch, times the samples it
        covers): what the comb took out that was mains, not the EMG in the
        notches' bands.

    Examples
    --------
    >>> fs = 1000.0
    >>> t = np.arange(20000) / fs
    >>> x = (100 * np.sin(2 * np.pi * 50.3 * t))[:, None]
    >>> y = MainsNotch(fs, 1, mains="50", band_hz=(20, 450)).process(x)
    >>> bool(np.std(y[-5000:]) < 0.01 * np.std(x))
    True
    """

    def __init__(self, fs: float, n_channels: int, mains: str = "auto", max_harmonics: int = 9,
                 band_hz: tuple[float, float] = (20.0, 450.0), block_s: float = 0.25) -> None:
        if mains not in ("auto", "50", "60", "off"):
            raise ValueError(f"mains must be 'auto', '50', '60' or 'off', got {mains!r}")
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.mains = mains
        self.max_harmonics = int(max_harmonics)
        self.band_hz = (float(band_hz[0]), float(band_hz[1]))
        self.block = max(8, round(block_s * self.fs))
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the frequency, the notches' state and every buffer."""
        self.mains_hz: float | None = None if self.mains in ("auto", "off") else float(self.mains)
        self._search = MainsSearch(self.fs, self.band_hz)
        self.line_energy = np.zeros(self.n_channels)
        if self.mains_hz is not None:
            self._start(self.mains_hz)

    def _start(self, f0: float) -> None:
        self.mains_hz = f0
        top = min(self.band_hz[1], 0.5 * self.fs - 2.0 * BANDWIDTH_HZ)
        self._harmonics = np.array([h for h in range(1, self.max_harmonics + 1)
                                    if self.band_hz[0] <= h * f0 <= top], dtype=float)
        self.frequency_hz = f0
        self._rate = 0.0          # Hz per second
        self._lines = _Lines(np.zeros((self._harmonics.size, self.n_channels)),
                             np.zeros((self._harmonics.size, self.n_channels)),
                             np.zeros((self._harmonics.size, self.n_channels)),
                             np.zeros((self._harmonics.size, self.n_channels), dtype=np.bool_))
        self._filled = 0
        H, C = self._harmonics.size, self.n_channels
        self._comb = _Comb(np.zeros((H, C)), np.zeros((H, C)), np.ones(H), np.zeros(H),
                           np.zeros(C), np.zeros(C))
        self._clip = np.full(self.n_channels, np.inf)
        # gain of each phasor for a -3 dB bandwidth B: 2π B / fs (tan: exact at fs / 4)
        self._gain = 2.0 * np.tan(np.pi * (BANDWIDTH_HZ + BANDWIDTH_PER_HARMONIC_HZ
                                           * self._harmonics) / self.fs)
        self._scale = 1.0 - 0.5 * float(self._gain.sum())
        # the share of a broadband signal's power that passes: a notch of -3 dB
        # bandwidth B takes a noise bandwidth of about π B / 2
        self._band = min(self.band_hz[1], 0.5 * self.fs) - self.band_hz[0]
        widths = BANDWIDTH_HZ + BANDWIDTH_PER_HARMONIC_HZ * self._harmonics
        self._noise_share = 0.5 * np.pi * widths / self._band
        self._kept = max(0.5, 1.0 - float(self._noise_share.sum()))
        self._turn = self._rotation()

    def _rotation(self) -> tuple[np.ndarray, np.ndarray]:
        """Each harmonic's turn per sample (real, imaginary)."""
        turn = np.exp(2j * np.pi * self._harmonics * self.frequency_hz / self.fs)
        return turn.real.copy(), turn.imag.copy()

    @property
    def found_at(self) -> int:
        """Sample of the stream from which mains is removed (0 when its frequency was given)."""
        return self._search.found_at or 0

    # --------------------------------------------------------------- process
    def process(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` with the mains lines notched out; ``x`` itself is not modified."""
        if self.mains == "off" or x.shape[0] == 0:
            return x
        if self.mains == "auto":   # found, and watched, by the search
            return self._search.route(x, self._start, self._notch)
        return self._notch(x)

    def _notch(self, x: np.ndarray) -> np.ndarray:
        if self._harmonics.size == 0:
            return x
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        start = 0
        while start < x.shape[0]:   # row ranges of a C-contiguous array stay contiguous
            stop = start + min(x.shape[0] - start, self.block - self._filled)
            _comb(x[start:stop], y[start:stop], *self._comb, *self._turn, self._gain,
                  self._clip, self._scale)
            self._filled += stop - start
            start = stop
            if self._filled == self.block:
                self._retune()
                self._filled = 0
        return y

    def _retune(self) -> None:
        """A block is complete: set the clip level, measure the frequency error, retune."""
        st = self._comb
        # CLIP_SD standard deviations of the block's output (mean |y| sqrt(π / 2)):
        # what is left of noise and lines stays below, a pop goes far above
        self._clip = CLIP_SD * np.sqrt(np.pi / 2.0) * st.out_abs / self.block
        T = self.block / self.fs
        magnitude = np.hypot(st.ref_re, st.ref_im)   # keep the references unit phasors
        st.ref_re[:] /= magnitude
        st.ref_im[:] /= magnitude
        out_power = st.out_power / self.block
        st.out_abs[:] = 0.0
        st.out_power[:] = 0.0
        error = _measure_lines(st, self._lines, out_power, self._kept, self._noise_share,
                               self._harmonics, T, LINE_SNR, self.line_energy, self.block,
                               SILENT_POWER)
        if error == error:   # not NaN: some line measured it
            self._rate = _clip(self._rate + _BETA * error / T, -MAX_RATE_HZ_S, MAX_RATE_HZ_S)
            assert self.mains_hz is not None
            self.frequency_hz = _clip(self.frequency_hz + _ALPHA * error + self._rate * T,
                                      self.mains_hz - MAX_OFFSET_HZ, self.mains_hz + MAX_OFFSET_HZ)
            self._turn = self._rotation()
