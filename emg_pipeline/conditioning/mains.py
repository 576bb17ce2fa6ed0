"""Removal of mains interference (50/60 Hz and harmonics) that tracks a drifting grid.

A notch filter loses most of its depth when the grid frequency moves by a few
tenths of a hertz (a second-order notch keeps r² = 0.65 with clean EMG at 0.5 Hz
offset, Mewett et al. 2004), and a bank of notches for every harmonic costs more
than the rest of the pipeline. This stage instead models the interference as a
sum of harmonics of one tracked fundamental and subtracts the model:

* time is cut into blocks of ``block_s`` aligned on the stream's sample clock;
* inside a block the model (frequency and its drift, phase, complex amplitude
  of each harmonic on each channel) is fixed and is subtracted sample by
  sample, so the output is causal and does not depend on how the stream is
  chunked;
* at the end of each block the harmonics are fitted to the block by least
  squares, with a term for the fundamental's phase slope that measures the
  frequency error;
* the complex amplitude of every harmonic on every channel follows these
  measurements with Kalman gains, and the grid frequency with its rate of
  change follows a two-state Kalman filter, so a steadily drifting grid is
  followed without lag;
* a block whose residual power is well above that of quiet blocks carries
  muscle activity (or an artefact): its fit is biased, and a model nudged by it
  would leave a residual in the next block that looks like activity, so such
  blocks only carry the model forward (frequency, drift and phase keep
  advancing), and the model is still in phase with the grid when the muscle
  rests.

Only harmonics inside the band that reaches this stage are modelled. With
``mains="auto"`` the stage looks for a line at 50 or 60 Hz that stands out of
the spectrum around it and locks onto the one it finds; until then it passes
the signal through unchanged.

The per-sample work and every block's fit and update run in one compiled
kernel per call (:func:`_cancel_kernel`); the matrix products of the fit and
of the model go to BLAS.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.linalg import LinAlgError

from .._jit import jit
from .mains_search import MainsSearch

__all__ = ["MainsCanceller"]

_AMP_DRIFT = 0.05  # expected relative change of a harmonic's amplitude per block
_AMP_DRIFT_UV = 0.05  # and its absolute floor (µV or counts)
_FREQ_DRIFT_HZ = 0.002  # unexplained change of the grid frequency per block
_FREQ_RATE_DRIFT_HZ = 0.0005  # change of its rate of change (Hz per block) per block
_UNKNOWN = 1e12  # prior variance of an amplitude never measured
_RECHECK_BLOCKS = 8  # every this many blocks all harmonics are fitted again
_COLOUR = 3.0  # sEMG power density near the harmonics vs its mean over the band
_ACTIVE_RATIO = 2.0  # a block whose residual power exceeds the quiet one this much is active
_ACTIVE_POWER = 0.005  # a harmonic is modelled while its power exceeds this share of the noise
# prior covariance (row-major 2x2) of the grid frequency (Hz) and its rate (Hz per block)
_FREQ_COV0 = (0.1**2, 0.0, 0.0, 0.01**2)

# constant expressions of the model, evaluated once
_TWO_PI = 2 * np.pi
_MEAS_SCALE = _COLOUR * 4.0
_AMP_FLOOR_VAR = _AMP_DRIFT_UV**2
_FREQ_DRIFT_VAR = _FREQ_DRIFT_HZ**2
_FREQ_RATE_DRIFT_VAR = _FREQ_RATE_DRIFT_HZ**2
_OFF_PRIOR = 2.0 * _ACTIVE_POWER

_ANCHOR = 32  # the fundamental's phasor is evaluated exactly every this many samples

# layout of the carried state: frequency, its rate (Hz per block), their
# covariance, the basis' phase advance over a block, then the configuration
_F, _RATE, _C00, _C01, _C10, _C11, _ADVANCE, _FS, _MAINS, _FS_RAD2 = range(10)
# place in the block, blocks fitted, basis built, then one flag per harmonic (modelled now)
_POS, _UPDATES, _BUILT, _KEEP = range(4)


# ---------------------------------------------------------------- kernels
@jit
def _phasors(basis: np.ndarray, rows: np.ndarray, top: int, fs: float, freq: float,
             rate: float) -> float:
    """Fill the basis of the next block for harmonics ``rows + 1``; return its phase advance.

    The phase ``theta(n)`` follows the tracked frequency and its drift (a
    linear chirp through the block's middle), so the model stays in phase
    with a grid whose frequency is moving. With ``K = rows.size`` the rows of
    ``basis`` (n_rows, L) become: ``cos(k theta)`` of each harmonic (K rows),
    ``sin(k theta)`` (K rows), then ``mid * cos(theta)`` and ``mid * sin(theta)``,
    ``mid`` being the distance to the block's middle (the fundamental's phase
    slope, i.e. the frequency error). ``top`` is the highest harmonic in
    ``rows``, which always holds the fundamental.

    The fundamental's phasor ``z(n) = exp(1j theta(n))`` is evaluated exactly
    at the first sample of every ``_ANCHOR`` and carried to the next ones by
    its per-sample turn, ``z(n + 1) = z(n) d(n)`` with ``d(n + 1) = d(n) r``
    (the turn of a chirp turns at a constant rate): a few roundings from the
    exact phasor, no more than the rounding of ``theta(n)`` itself brings at
    the end of a block. Harmonics are the fundamental's powers,
    ``z_k = z_(k-1) z``.
    """
    L = basis.shape[1]
    K = rows.size
    f_start = freq - 0.5 * rate
    scale = _TWO_PI / fs
    curve = 0.5 * rate / L
    half = (L - 1) / 2
    step = 2.0 * scale * curve  # change of the per-sample turn per sample
    rr = math.cos(step)
    ri = math.sin(step)
    zr = basis[0]
    zi = basis[K]
    u = basis[2 * K]
    v = basis[2 * K + 1]
    c = s = dr = di = 0.0
    for n in range(L):
        t = float(n)
        if n % _ANCHOR == 0:
            theta = scale * (f_start * t + curve * t * t)
            c = math.cos(theta)
            s = math.sin(theta)
            turn = scale * (f_start + curve * (2.0 * t + 1.0))
            dr = math.cos(turn)
            di = math.sin(turn)
        else:
            c, s = c * dr - s * di, c * di + s * dr
            dr, di = dr * rr - di * ri, dr * ri + di * rr
        zr[n] = c
        zi[n] = s
        mid = t - half
        u[n] = mid * c
        v[n] = mid * s
    # powers: straight into the basis for the harmonics in it, else into scratch rows
    spare = np.empty((2, L))
    pr, pi = zr, zi
    a = 1
    for k in range(1, top):
        if a < K and rows[a] == k:
            qr, qi = basis[a], basis[K + a]
            a += 1
        else:
            qr, qi = spare[0], spare[1]
        for n in range(L):
            r = pr[n] * zr[n] - pi[n] * zi[n]
            i = pr[n] * zi[n] + pi[n] * zr[n]
            qr[n] = r
            qi[n] = i
        pr, pi = qr, qi
    return _TWO_PI * freq * L / fs


@jit
def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.linalg.solve(a, b)``: LU with partial pivoting (LAPACK's gesv), for small systems."""
    m = a.shape[0]
    lu = a.copy()
    x = b.copy()
    for j in range(m):
        p = j
        big = abs(lu[j, j])
        for i in range(j + 1, m):
            if abs(lu[i, j]) > big:
                big = abs(lu[i, j])
                p = i
        if lu[p, j] == 0.0:
            raise LinAlgError("Singular matrix")
        if p != j:
            for k in range(m):
                lu[j, k], lu[p, k] = lu[p, k], lu[j, k]
            for k in range(x.shape[1]):
                x[j, k], x[p, k] = x[p, k], x[j, k]
        inv = 1.0 / lu[j, j]
        for i in range(j + 1, m):
            f = lu[i, j] * inv
            lu[i, j] = f
            for k in range(j + 1, m):
                lu[i, k] -= f * lu[j, k]
            for k in range(x.shape[1]):
                x[i, k] -= f * x[j, k]
    for j in range(m - 1, -1, -1):
        for k in range(x.shape[1]):
            v = x[j, k]
            for i in range(j + 1, m):
                v -= lu[j, i] * x[i, k]
            x[j, k] = v / lu[j, j]
    return x


@jit
def _energy(block: np.ndarray) -> np.ndarray:
    """Sum of squares of each column of ``block`` (L, C).

    The block is walked as rows of ``g`` samples (at least 32 values, so
    the additions run in vector registers), each position of a row summing
    its own samples; the positions of a channel are added at the end.
    """
    L, C = block.shape
    x = block.reshape(L * C)
    g = max(1, (32 + C - 1) // C)
    w = g * C
    rows = L // g
    acc = np.zeros(w)
    for r in range(rows):
        seg = x[r * w : r * w + w]
        for j in range(w):
            acc[j] += seg[j] * seg[j]
    out = np.zeros(C)
    for j in range(w):
        out[j % C] += acc[j]
    for n in range(rows * g, L):
        for c in range(C):
            out[c] += x[n * C + c] * x[n * C + c]
    return out


@jit
def _build_model(model: np.ndarray, basis: np.ndarray, amp: np.ndarray, keep: np.ndarray,
                 st: np.ndarray, ist: np.ndarray, fs: float) -> None:
    """Build the next block's basis and evaluate its model once (chunking-independent)."""
    n_all, C = amp.shape
    # the next fit reads the active harmonics, or all of them when it rechecks
    # (harmonics not modelled have a zero amplitude)
    if ist[_UPDATES] % _RECHECK_BLOCKS == 0:
        rows = np.arange(n_all)
    else:
        rows = np.flatnonzero(keep)
    K = rows.size
    st[_ADVANCE] = _phasors(basis, rows, rows[K - 1] + 1, fs, st[_F], st[_RATE])
    ist[_BUILT] = 1
    coef = np.empty((2 * K, C))
    for a in range(K):
        for c in range(C):
            v = amp[rows[a], c]
            coef[a, c] = v.real
            coef[K + a, c] = -v.imag
    np.dot(basis[: 2 * K].T, coef, model)


@jit
def _update(block: np.ndarray, model: np.ndarray, basis: np.ndarray, amp: np.ndarray,
            amp_var: np.ndarray, quiet: np.ndarray, keep: np.ndarray, st: np.ndarray,
            ist: np.ndarray, fs: float, mains_hz: float, fs_rad2: float) -> None:
    """Fit the finished block, update the model, and build the next block's model."""
    n_all = amp.shape[0]
    if n_all == 0:
        return
    L, C = block.shape
    recheck = ist[_UPDATES] % _RECHECK_BLOCKS == 0
    rows = np.arange(n_all) if recheck else np.flatnonzero(keep)
    K = rows.size
    freq = st[_F]
    w_fit = _TWO_PI * freq / fs
    # the basis this block's model was built with (same frequency and drift)
    if ist[_BUILT] == 0:
        st[_ADVANCE] = _phasors(basis, rows, rows[K - 1] + 1, fs, freq, st[_RATE])
        ist[_BUILT] = 1
    # least squares on cos/sin of the harmonics plus the fundamental's cos/sin
    # weighted by the distance to the block middle (its phase slope, i.e. the
    # frequency error); amplitudes are at the block middle
    m = 2 * K + 2
    fit = basis[:m]
    gram = np.dot(fit, fit.T)
    theta = _solve(gram, np.dot(fit, block))  # (2K + 2, C)
    gt = np.dot(gram, theta)
    energy = _energy(block)
    meas_var = np.empty(C)
    info = np.empty(C)
    cross = np.empty(C)
    for c in range(C):
        fitted = 0.0
        for i in range(m):
            fitted += theta[i, c] * gt[i, c]
        fitted /= L
        residual = max(energy[c] / L - fitted, 1e-30)
        q = min(quiet[c] * 1.02, residual)
        quiet[c] = q
        # variance of one complex amplitude measured over the block, and of its slope;
        # sEMG is coloured (its power peaks near 60-100 Hz, where the harmonics are)
        mv = _MEAS_SCALE * residual / L
        # a block carrying a contraction measures the grid badly, and a model
        # nudged by it leaves a residual in the next block that looks like
        # activity: such blocks only carry the model forward (a residual far
        # below the mains power itself, as on a synthetic pure tone, is no
        # sign of activity)
        if residual > _ACTIVE_RATIO * max(q, 1e-3 * fitted):
            mv = math.inf
        meas_var[c] = mv
        slope_var = 12.0 * mv / (L * L)
        # the fundamental at the block middle and its phase slope (= j dw amp1)
        amp1 = complex(theta[0, c], -theta[K, c])
        slope1 = complex(theta[2 * K, c], -theta[2 * K + 1, c])
        info[c] = abs(amp1) ** 2 / slope_var
        cross[c] = (slope1 * amp1.conjugate()).imag / slope_var
    # grid frequency: inverse-variance mean of the channels' fundamentals
    info_sum = info.sum()
    w_fit_meas = w_fit
    # grid frequency and its rate of change (Hz per block): a two-state Kalman
    # filter, so that blocks skipped during activity keep following a drift;
    # the transition F = [[1, 1], [0, 1]] only adds, so F x and F P F' are
    # written out term by term
    f = freq
    r = st[_RATE]
    p00, p01, p10, p11 = st[_C00], st[_C01], st[_C10], st[_C11]
    f_pred = f + r
    r_pred = r
    c00 = (p00 + p10) + (p01 + p11) + _FREQ_DRIFT_VAR
    c01 = p01 + p11
    c10 = p10 + p11
    c11 = p11 + _FREQ_RATE_DRIFT_VAR
    if info_sum > 0 and np.isfinite(info).all():
        dw = cross.sum() / info_sum
        f_meas = (w_fit + dw) * fs / _TWO_PI
        w_fit_meas = w_fit + dw
        f_meas_var = fs_rad2 / info_sum
        g0 = c00 / (c00 + f_meas_var)
        g1 = c10 / (c00 + f_meas_var)
        # the measurement is of this block; the state predicts it one block on
        innovation = f_meas - (f_pred - r_pred)
        f_pred = f_pred + g0 * innovation
        r_pred = r_pred + g1 * innovation
        c00, c01, c10, c11 = c00 - g0 * c00, c01 - g0 * c01, c10 - g1 * c00, c11 - g1 * c01
    st[_C00], st[_C01], st[_C10], st[_C11] = c00, c01, c10, c11
    rate_max = 0.01 * mains_hz
    st[_RATE] = min(max(r_pred, -rate_max), rate_max)
    st[_F] = min(max(f_pred, 0.97 * mains_hz), 1.03 * mains_hz)
    # amplitudes at the next block's start: the basis' own phase advance over
    # the block, plus the measured phase slope from the middle on; every
    # harmonic is carried forward and the fitted ones follow their measurement
    advance = st[_ADVANCE]
    shift = advance + (w_fit_meas - w_fit) * (L - (L - 1) / 2)
    a = 0
    for h in range(n_all):
        k = float(h + 1)
        turn = complex(math.cos(k * advance), math.sin(k * advance))
        fitted_row = a < K and rows[a] == h
        if fitted_row:
            turn_meas = complex(math.cos(k * shift), math.sin(k * shift))
        for c in range(C):
            prior = amp[h, c] * turn
            var = amp_var[h, c] + ((_AMP_DRIFT * abs(prior)) ** 2 + _AMP_FLOOR_VAR)
            if fitted_row:
                measured = complex(theta[a, c], -theta[K + a, c]) * turn_meas
                gain = var / (var + meas_var[c])
                prior += gain * (measured - prior)
                var = (1.0 - gain) * var
            amp[h, c] = prior
            amp_var[h, c] = var
        if fitted_row:
            a += 1
    if recheck:
        for h in range(n_all):
            kept = h == 0  # the fundamental carries the frequency tracking
            for c in range(C):
                power = abs(amp[h, c]) ** 2
                if 0.5 * power > _ACTIVE_POWER * quiet[c] and power > 4.0 * amp_var[h, c]:
                    kept = True
            keep[h] = kept
            if not kept:
                # prior of a harmonic not modelled now: just the power that would
                # make it worth modelling (an "unknown" prior would let one block
                # carrying a contraction switch it on with a noise amplitude)
                for c in range(C):
                    amp[h, c] = 0.0
                    amp_var[h, c] = _OFF_PRIOR * quiet[c]
    ist[_UPDATES] += 1
    _build_model(model, basis, amp, keep, st, ist, fs)


@jit
def _cancel_kernel(x: np.ndarray, out: np.ndarray, samples: np.ndarray, basis: np.ndarray,
                   amp: np.ndarray, var: np.ndarray, st: np.ndarray, ist: np.ndarray) -> None:
    """Subtract the current block's model from ``x`` into ``out``, fitting each finished block.

    ``samples`` holds the block's samples so far and its model (2, L, C);
    ``var`` the amplitudes' variances and, last row, the quiet residual power.
    The fit always reads the same owned buffer, so nothing depends on where
    the chunks were cut.
    """
    n, C = x.shape
    buf = samples[0]
    model = samples[1]
    L = buf.shape[0]
    # samples of one block are contiguous in every array: walk them flat
    x_flat = x.reshape(n * C)
    out_flat = out.reshape(n * C)
    buf_flat = buf.reshape(L * C)
    model_flat = model.reshape(L * C)
    pos = ist[_POS]
    i = 0
    while i < n:
        seg = min(n - i, L - pos)
        k = seg * C
        src = x_flat[i * C : i * C + k]
        dst = out_flat[i * C : i * C + k]
        kept = buf_flat[pos * C : pos * C + k]
        sub = model_flat[pos * C : pos * C + k]
        for j in range(k):
            v = src[j]
            dst[j] = v - sub[j]
            kept[j] = v
        i += seg
        pos += seg
        if pos == L:
            _update(buf, model, basis, amp, var[:-1], var[-1], ist[_KEEP:], st, ist, st[_FS],
                    st[_MAINS], st[_FS_RAD2])
            pos = 0
    ist[_POS] = pos


class MainsCanceller:
    """Subtract a tracked model of mains interference.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    n_channels : int
        Number of channels.
    mains : {"auto", "50", "60", "off"}
        Grid frequency, or ``"auto"`` to detect it, or ``"off"``.
    max_harmonics : int
        Highest harmonic modelled.
    band_hz : tuple of float
        Band of the signal reaching this stage; harmonics outside it are skipped.
    block_s : float
        Length of the blocks in which the model is held fixed.

    Attributes
    ----------
    mains_hz : float or None
        Nominal grid frequency once known.
    frequency_hz : float or None
        Tracked grid frequency.

    Examples
    --------
    >>> fs = 1000.0
    >>> t = np.arange(20000) / fs
    >>> x = (100 * np.sin(2 * np.pi * 50.2 * t))[:, None]
    >>> y = MainsCanceller(fs, 1, mains="50", band_hz=(20, 450)).process(x)
    >>> bool(np.std(y[-5000:]) < 0.01 * np.std(x))
    True
    """

    def __init__(
        self,
        fs: float,
        n_channels: int,
        mains: str = "auto",
        max_harmonics: int = 9,
        band_hz: tuple[float, float] = (20.0, 450.0),
        block_s: float = 0.5,
    ) -> None:
        if mains not in ("auto", "50", "60", "off"):
            raise ValueError(f"mains must be 'auto', '50', '60' or 'off', got {mains!r}")
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.mains = mains
        self.max_harmonics = int(max_harmonics)
        self.band_hz = (float(band_hz[0]), float(band_hz[1]))
        self.block_s = float(block_s)
        self._block = max(8, round(self.block_s * self.fs))
        self._fs_rad2 = (self.fs / (2 * np.pi)) ** 2  # variance scale from rad/sample to Hz
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the model, the detected frequency and every buffer."""
        self.mains_hz: float | None = None if self.mains in ("auto", "off") else float(self.mains)
        self._start_model(0 if self.mains_hz is None else self._n_harmonics(self.mains_hz))
        self._search = MainsSearch(self.fs, self.band_hz)

    def _start_model(self, k: int) -> None:
        """A model of ``k`` harmonics at the nominal frequency, never fitted."""
        self._k = k
        C = self.n_channels
        # the current block's samples so far, and its model
        self._samples = np.zeros((2, self._block, C))
        # basis of the current block's model and fit (rows: cos and sin of the
        # harmonics, then the fundamental's phase-slope terms)
        self._basis = np.zeros((2 * k + 2, self._block))
        # complex amplitude of each harmonic on each channel at the current block start
        self._amp = np.zeros((k, C), dtype=complex)
        # their Kalman variances, then the residual power of a quiet block
        self._var = np.full((k + 1, C), _UNKNOWN)
        self._var[k] = np.inf
        f0 = np.nan if self.mains_hz is None else self.mains_hz
        self._state = np.array([f0, 0.0, *_FREQ_COV0, 0.0, self.fs, f0, self._fs_rad2])
        self._istate = np.zeros(_KEEP + k, dtype=np.int64)
        self._istate[_KEEP:] = 1

    @property
    def frequency_hz(self) -> float | None:
        """Tracked grid frequency (None until the grid frequency is known)."""
        return None if self.mains_hz is None else float(self._state[_F])

    @property
    def _active(self) -> tuple[int, ...]:
        """Harmonics modelled now."""
        return tuple(int(h) + 1 for h in np.flatnonzero(self._istate[_KEEP:]))

    def _n_harmonics(self, f0: float) -> int:
        lo, hi = self.band_hz
        top = min(hi, 0.5 * self.fs - 1.0)
        ks = [k for k in range(1, self.max_harmonics + 1) if lo <= k * f0 <= top]
        return max(ks) if ks else 0

    @property
    def found_at(self) -> int:
        """Sample of the stream from which mains is removed (0 when its frequency was given)."""
        return self._search.found_at or 0

    # --------------------------------------------------------------- process
    def process(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` minus the mains model; ``x`` itself is not modified."""
        if self.mains == "off" or x.shape[0] == 0:
            return x
        if self.mains == "auto":   # found, and watched, by the search
            return self._search.route(x, self._lock, self._cancel)
        return self._cancel(x)

    def _cancel(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        _cancel_kernel(x, out, self._samples, self._basis, self._amp, self._var, self._state,
                       self._istate)
        return out

    def _lock(self, f0: float) -> None:
        """Start modelling at ``f0``; the block clock starts at the next sample."""
        self.mains_hz = f0
        self._start_model(self._n_harmonics(f0))
