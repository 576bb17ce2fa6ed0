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
"""

from __future__ import annotations

import numpy as np

__all__ = ["MainsCanceller"]

_SEARCH_S = 1.0  # length of data used by each auto-detection attempt
_LINE_RATIO = 10.0  # power at the line vs the median around it, to lock
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
        self._n = np.arange(self._block, dtype=float)
        self._mid = self._n - (self._block - 1) / 2
        self._mid_energy = float(self._mid @ self._mid)
        self._search_n = round(_SEARCH_S * self.fs)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the model, the detected frequency and every buffer."""
        self.mains_hz: float | None = None if self.mains in ("auto", "off") else float(self.mains)
        self.frequency_hz: float | None = self.mains_hz
        self._k = 0 if self.mains_hz is None else self._n_harmonics(self.mains_hz)
        # complex amplitude of each harmonic on each channel at the current block start
        self._amp = np.zeros((self._k, self.n_channels), dtype=complex)
        self._active: tuple[int, ...] = tuple(range(1, self._k + 1))
        self._amp_var = np.full((self._k, self.n_channels), _UNKNOWN)  # Kalman variances
        self._freq_cov = _FREQ_COV0
        self._freq_rate = 0.0
        self._sets: dict[tuple[int, ...], tuple[np.ndarray | None, np.ndarray]] = {}
        self._updates = 0
        self._quiet = np.full(self.n_channels, np.inf)  # residual power of a quiet block
        self._pos = 0  # position inside the current block
        self._buf = np.empty((self._block, self.n_channels))
        self._model_block = np.zeros((self._block, self.n_channels))
        self._z: np.ndarray | None = None  # phasors the current block's model was built with
        self._advance = 0.0  # their phase advance over the block
        self._search: list[np.ndarray] = []
        self._search_len = 0

    def _n_harmonics(self, f0: float) -> int:
        lo, hi = self.band_hz
        top = min(hi, 0.5 * self.fs - 1.0)
        ks = [k for k in range(1, self.max_harmonics + 1) if lo <= k * f0 <= top]
        return max(ks) if ks else 0

    # --------------------------------------------------------------- process
    def process(self, x: np.ndarray) -> np.ndarray:
        """Return ``x`` minus the mains model; ``x`` itself is not modified."""
        if self.mains == "off" or x.shape[0] == 0:
            return x
        if self.mains_hz is None:
            used = self._look_for_mains(x)
            if self.mains_hz is None or used == x.shape[0]:
                return x
            return np.concatenate([x[:used], self._cancel(x[used:])])
        return self._cancel(x)

    def _cancel(self, x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        i = 0
        n = x.shape[0]
        while i < n:
            j = min(n, i + self._block - self._pos)
            seg = x[i:j]
            np.subtract(seg, self._model_block[self._pos : self._pos + j - i], out=out[i:j])
            # the fit always reads the same owned buffer: BLAS may sum in another
            # order for differently aligned memory, and results must not depend
            # on how the stream was chunked
            self._buf[self._pos : self._pos + j - i] = seg
            self._pos += j - i
            if self._pos == self._block:
                self._update(self._buf)
                self._pos = 0
            i = j
        return out

    def _harmonic_set(self, harmonics: tuple[int, ...]) -> tuple[np.ndarray | None, np.ndarray]:
        """Row indices (None when every harmonic is in) and ``1j * k`` of a harmonic set.

        Blocks come ~100 times a minute per stream, each with a few dozen small
        array operations: these constant arrays are built once per set, and
        selecting every row (the usual case) becomes no copy at all.
        """
        cached = self._sets.get(harmonics)
        if cached is None:
            rows = None if harmonics == tuple(range(1, self._k + 1)) else np.array(harmonics) - 1
            jk = 1j * np.array(harmonics, dtype=float)[:, None]
            cached = self._sets[harmonics] = (rows, jk)
        return cached

    def _update(self, block: np.ndarray) -> None:
        """Fit the finished block, update the model, and build the next block's model."""
        if self._k == 0:
            return
        assert self.frequency_hz is not None and self.mains_hz is not None
        L = self._block
        recheck = self._updates % _RECHECK_BLOCKS == 0
        harmonics = tuple(range(1, self._k + 1)) if recheck else self._active
        rows, jk = self._harmonic_set(harmonics)
        w_fit = 2 * np.pi * self.frequency_hz / self.fs
        # the phasors the model of this block was built with (same frequency and drift)
        if self._z is None:
            self._make_phasors()
        assert self._z is not None
        z = self._z if rows is None else self._z[:, rows]  # (L, K)
        # least squares on cos/sin of every harmonic plus the fundamental's
        # cos/sin weighted by the distance to the block middle (its phase
        # slope, i.e. the frequency error); amplitudes are at the block middle
        K = len(harmonics)
        basis = np.empty((L, 2 * K + 2))
        basis[:, :K] = z.real
        basis[:, K : 2 * K] = z.imag
        np.multiply(self._mid, z[:, 0].real, out=basis[:, 2 * K])
        np.multiply(self._mid, z[:, 0].imag, out=basis[:, 2 * K + 1])
        gram = basis.T @ basis
        theta = np.linalg.solve(gram, basis.T @ block)  # (2K + 2, C)
        amp_mid = theta[:K] - 1j * theta[K : 2 * K]
        amp1 = amp_mid[0]
        slope1 = theta[2 * K] - 1j * theta[2 * K + 1]  # = j dw amp_mid[0]
        fitted = np.einsum("ij,ij->j", theta, gram @ theta) / L
        residual = np.maximum(np.einsum("ij,ij->j", block, block) / L - fitted, 1e-30)
        self._quiet = np.minimum(self._quiet * 1.02, residual)
        # variance of one complex amplitude measured over the block, and of its slope;
        # sEMG is coloured (its power peaks near 60-100 Hz, where the harmonics are)
        meas_var = _COLOUR * 4.0 * residual / L
        # a block carrying a contraction measures the grid badly, and a model
        # nudged by it leaves a residual in the next block that looks like
        # activity: such blocks only carry the model forward
        # (a residual far below the mains power itself, as on a synthetic pure tone, is no
        # sign of activity)
        quiet = np.maximum(self._quiet, 1e-3 * fitted)
        meas_var[residual > _ACTIVE_RATIO * quiet] = np.inf
        slope_var = 12.0 * meas_var / (L * L)
        # grid frequency: inverse-variance mean of the channels' fundamentals
        power1 = np.abs(amp1) ** 2
        info = power1 / slope_var
        info_sum = info.sum()
        w_fit_meas = w_fit
        # grid frequency and its rate of change (Hz per block): a two-state Kalman
        # filter, so that blocks skipped during activity keep following a drift.
        # Two states are cheaper in Python floats than in 2x2 arrays; the
        # transition F = [[1, 1], [0, 1]] only adds, so F x and F P F' are
        # written out term by term (the same roundings as the matrix products)
        f, r = self.frequency_hz, self._freq_rate
        p00, p01, p10, p11 = self._freq_cov
        f_pred, r_pred = f + r, r
        c00 = (p00 + p10) + (p01 + p11) + _FREQ_DRIFT_HZ**2
        c01 = p01 + p11
        c10 = p10 + p11
        c11 = p11 + _FREQ_RATE_DRIFT_HZ**2
        if info_sum > 0 and np.isfinite(info).all():
            dw = float(np.sum((slope1 * np.conj(amp1)).imag / slope_var) / info_sum)
            f_meas = (w_fit + dw) * self.fs / (2 * np.pi)
            w_fit_meas = w_fit + dw
            f_meas_var = float((self.fs / (2 * np.pi)) ** 2 / info_sum)
            g0 = c00 / (c00 + f_meas_var)
            g1 = c10 / (c00 + f_meas_var)
            # the measurement is of this block; the state predicts it one block on
            innovation = f_meas - (f_pred - r_pred)
            f_pred, r_pred = f_pred + g0 * innovation, r_pred + g1 * innovation
            c00, c01, c10, c11 = c00 - g0 * c00, c01 - g0 * c01, c10 - g1 * c00, c11 - g1 * c01
        self._freq_cov = (c00, c01, c10, c11)
        rate_max = 0.01 * self.mains_hz
        self._freq_rate = float(min(max(r_pred, -rate_max), rate_max))
        self.frequency_hz = float(min(max(f_pred, 0.97 * self.mains_hz), 1.03 * self.mains_hz))
        # amplitudes at the next block's start: the basis' own phase advance over
        # the block, plus the measured phase slope from the middle on
        n_mid = (L - 1) / 2
        advance = self._advance
        measured = amp_mid * np.exp(jk * (advance + (w_fit_meas - w_fit) * (L - n_mid)))
        _, jk_all = self._harmonic_set(tuple(range(1, self._k + 1)))
        amp = self._amp * np.exp(jk_all * advance)  # carry every harmonic forward
        drift = (_AMP_DRIFT * np.abs(amp)) ** 2 + _AMP_DRIFT_UV**2
        amp_var = self._amp_var + drift
        if rows is None:
            gain = amp_var / (amp_var + meas_var[None, :])
            amp += gain * (measured - amp)
            amp_var = (1.0 - gain) * amp_var
        else:
            prior = amp_var[rows]
            gain = prior / (prior + meas_var[None, :])
            amp[rows] += gain * (measured - amp[rows])
            amp_var[rows] = (1.0 - gain) * prior
        self._amp, self._amp_var = amp, amp_var
        if recheck:
            power = np.abs(amp) ** 2
            worth = 0.5 * power > _ACTIVE_POWER * self._quiet[None, :]
            sure = power > 4.0 * amp_var  # two standard deviations
            keep = (worth & sure).any(axis=1)
            keep[0] = True  # the fundamental carries the frequency tracking
            self._active = tuple(int(h) + 1 for h in np.flatnonzero(keep))
            amp[~keep] = 0.0
            # prior of a harmonic not modelled now: just the power that would make
            # it worth modelling (an "unknown" prior would let one block carrying
            # a contraction switch it on with a noise amplitude)
            amp_var[~keep] = 2.0 * _ACTIVE_POWER * self._quiet[None, :]
        self._updates += 1
        self._build_model()

    def _make_phasors(self, top: int | None = None) -> None:
        """Phasors ``exp(1j k theta(n))`` of every harmonic over the next block.

        ``theta`` follows the tracked frequency and its drift (a linear chirp
        through the block's middle), so the model stays in phase with a grid
        whose frequency is moving. Harmonics are powers of the fundamental's
        phasor: one complex exponential per sample, not one per sample and
        harmonic. Only harmonics up to ``top`` (default: all) are evaluated; the
        columns above it are left unset and must not be read.
        """
        assert self.frequency_hz is not None
        L = self._block
        f_start = self.frequency_hz - 0.5 * self._freq_rate
        n = self._n
        theta = (2 * np.pi / self.fs) * (f_start * n + (0.5 * self._freq_rate / L) * n * n)
        self._advance = 2 * np.pi * self.frequency_hz * L / self.fs  # theta at n = L
        z = np.empty((L, self._k), dtype=complex)
        z[:, 0] = np.exp(1j * theta)
        for j in range(1, self._k if top is None else top):
            np.multiply(z[:, j - 1], z[:, 0], out=z[:, j])
        self._z = z

    def _build_model(self) -> None:
        """Evaluate the model over the whole next block once (chunking-independent)."""
        rows, _ = self._harmonic_set(self._active)
        # the next fit reads the active harmonics, or all of them when it rechecks
        recheck = self._updates % _RECHECK_BLOCKS == 0
        self._make_phasors(None if recheck else self._active[-1])
        assert self._z is not None
        z = self._z if rows is None else self._z[:, rows]
        amp = self._amp if rows is None else self._amp[rows]
        self._model_block = z.real @ amp.real - z.imag @ amp.imag

    # ---------------------------------------------------------- auto-detect
    def _look_for_mains(self, x: np.ndarray) -> int:
        """Feed the detector; return how many samples of ``x`` it consumed.

        Attempts cover consecutive windows of ``_SEARCH_S`` on the sample clock,
        so the lock happens at the same sample whatever the chunking.
        """
        used = 0
        while used < x.shape[0] and self.mains_hz is None:
            take = min(x.shape[0] - used, self._search_n - self._search_len)
            self._search.append(x[used : used + take].copy())
            self._search_len += take
            used += take
            if self._search_len == self._search_n:
                window = np.concatenate(self._search)
                self._search = []
                self._search_len = 0
                found = self._find_line(window)
                if found is not None:
                    self._lock(found)
        return used

    def _find_line(self, window: np.ndarray) -> float | None:
        spectrum = np.abs(np.fft.rfft(window - window.mean(axis=0), axis=0)) ** 2
        power = spectrum.sum(axis=1)
        freqs = np.fft.rfftfreq(window.shape[0], 1.0 / self.fs)
        best, best_ratio = None, _LINE_RATIO
        for f0 in (50.0, 60.0):
            if not self.band_hz[0] <= f0 <= min(self.band_hz[1], 0.5 * self.fs - 1):
                continue
            line = power[np.abs(freqs - f0) <= 1.0].max()
            around = power[(np.abs(freqs - f0) > 2.0) & (np.abs(freqs - f0) <= 8.0)]
            ratio = line / max(float(np.median(around)), 1e-30)
            if ratio > best_ratio:
                best, best_ratio = f0, ratio
        return best

    def _lock(self, f0: float) -> None:
        """Start modelling at ``f0``; the block clock starts at the next sample."""
        self.mains_hz = f0
        self.frequency_hz = f0
        self._k = self._n_harmonics(f0)
        self._amp = np.zeros((self._k, self.n_channels), dtype=complex)
        self._amp_var = np.full((self._k, self.n_channels), _UNKNOWN)
        self._freq_cov = _FREQ_COV0
        self._freq_rate = 0.0
        self._sets = {}
        self._active = tuple(range(1, self._k + 1))
        self._z = None
        self._pos = 0
