"""The compiled mains canceller against a plain numpy statement of the same model."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from emg_pipeline.conditioning import MainsCanceller, SosFilter
from emg_pipeline.conditioning.filters import bandpass_sos
from emg_pipeline.conditioning.mains import (
    _ACTIVE_POWER,
    _ACTIVE_RATIO,
    _AMP_DRIFT,
    _AMP_DRIFT_UV,
    _COLOUR,
    _FREQ_COV0,
    _FREQ_DRIFT_HZ,
    _FREQ_RATE_DRIFT_HZ,
    _RECHECK_BLOCKS,
    _UNKNOWN,
    _energy,
    _phasors,
    _solve,
)
from emg_pipeline.sources.synthetic import simulate

from .conftest import feed, random_splits


class _Reference:
    """The canceller's block update written with numpy arrays, one block at a time."""

    def __init__(self, fs: float, n_channels: int, f0: float, k: int, block: int) -> None:
        self.fs, self.f0, self.L = fs, f0, block
        self.freq, self.rate, self.cov = f0, 0.0, _FREQ_COV0
        self.amp = np.zeros((k, n_channels), dtype=complex)
        self.amp_var = np.full((k, n_channels), _UNKNOWN)
        self.quiet = np.full(n_channels, np.inf)
        self.active = np.arange(k)
        self.updates = 0
        self.model = np.zeros((block, n_channels))
        self.z = self._phasors()
        self.advance = 2 * np.pi * self.freq * block / fs

    def _phasors(self) -> np.ndarray:
        n = np.arange(self.L, dtype=float)
        f_start = self.freq - 0.5 * self.rate
        theta = (2 * np.pi / self.fs) * (f_start * n + (0.5 * self.rate / self.L) * n * n)
        return np.exp(1j * np.arange(1, self.amp.shape[0] + 1) * theta[:, None])

    def update(self, block: np.ndarray) -> None:
        L, k = self.L, self.amp.shape[0]
        rows = np.arange(k) if self.updates % _RECHECK_BLOCKS == 0 else self.active
        K = rows.size
        z = self.z[:, rows]
        mid = np.arange(L) - (L - 1) / 2
        basis = np.hstack([z.real, z.imag, (mid * z[:, 0].real)[:, None],
                           (mid * z[:, 0].imag)[:, None]])
        gram = basis.T @ basis
        theta = np.linalg.solve(gram, basis.T @ block)
        amp_mid = theta[:K] - 1j * theta[K : 2 * K]
        slope1 = theta[2 * K] - 1j * theta[2 * K + 1]
        fitted = np.einsum("ij,ij->j", theta, gram @ theta) / L
        residual = np.maximum(np.einsum("ij,ij->j", block, block) / L - fitted, 1e-30)
        self.quiet = np.minimum(self.quiet * 1.02, residual)
        meas_var = _COLOUR * 4.0 * residual / L
        meas_var[residual > _ACTIVE_RATIO * np.maximum(self.quiet, 1e-3 * fitted)] = np.inf
        slope_var = 12.0 * meas_var / (L * L)
        info = np.abs(amp_mid[0]) ** 2 / slope_var
        w_fit = 2 * np.pi * self.freq / self.fs
        dw = 0.0
        F = np.array([[1.0, 1.0], [0.0, 1.0]])
        x = F @ np.array([self.freq, self.rate])
        P = F @ np.array(self.cov).reshape(2, 2) @ F.T + np.diag(
            [_FREQ_DRIFT_HZ**2, _FREQ_RATE_DRIFT_HZ**2])
        if info.sum() > 0 and np.isfinite(info).all():
            dw = np.sum((slope1 * np.conj(amp_mid[0])).imag / slope_var) / info.sum()
            f_meas = (w_fit + dw) * self.fs / (2 * np.pi)
            r_meas = (self.fs / (2 * np.pi)) ** 2 / info.sum()
            # gains of the predicted frequency; the measurement is of this block
            gain = P[:, 0] / (P[0, 0] + r_meas)
            x = x + gain * (f_meas - (x[0] - x[1]))
            P = P - np.outer(gain, P[0])
        self.cov = tuple(P.ravel())
        self.rate = float(np.clip(x[1], -0.01 * self.f0, 0.01 * self.f0))
        self.freq = float(np.clip(x[0], 0.97 * self.f0, 1.03 * self.f0))
        harm = np.arange(1, k + 1)[:, None]
        shift = self.advance + dw * (L - (L - 1) / 2)
        measured = amp_mid * np.exp(1j * harm[rows] * shift)
        amp = self.amp * np.exp(1j * harm * self.advance)
        var = self.amp_var + (_AMP_DRIFT * np.abs(amp)) ** 2 + _AMP_DRIFT_UV**2
        gain = var[rows] / (var[rows] + meas_var)
        amp[rows] += gain * (measured - amp[rows])
        var[rows] = (1.0 - gain) * var[rows]
        if self.updates % _RECHECK_BLOCKS == 0:
            power = np.abs(amp) ** 2
            keep = ((0.5 * power > _ACTIVE_POWER * self.quiet) & (power > 4.0 * var)).any(axis=1)
            keep[0] = True
            self.active = np.flatnonzero(keep)
            amp[~keep] = 0.0
            var[~keep] = 2.0 * _ACTIVE_POWER * self.quiet
        self.amp, self.amp_var = amp, var
        self.updates += 1
        self.z = self._phasors()
        self.advance = 2 * np.pi * self.freq * L / self.fs
        self.model = self.z.real @ self.amp.real - self.z.imag @ self.amp.imag

    def run(self, x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        for start in range(0, x.shape[0], self.L):
            seg = x[start : start + self.L]
            out[start : start + seg.shape[0]] = seg - self.model[: seg.shape[0]]
            if seg.shape[0] == self.L:
                self.update(seg)
        return out


def _mains_input(rng: np.random.Generator, fs: float, channels: int, mains: float,
                 seconds: float = 40.0) -> np.ndarray:
    rec = simulate(rng, fs=fs, duration_s=seconds, n_channels=channels, snr_db=6.0,
                   mains_hz=mains, mains_uv=40.0, pops_per_min=4.0, lead_in_s=1.0)
    sos = bandpass_sos(fs, 20.0, min(450.0, 0.45 * fs))
    return SosFilter(sos, channels).process(rec.signal)


@pytest.mark.parametrize(("fs", "channels", "mains"), [(2000.0, 8, 50.0), (1000.0, 3, 60.0),
                                                       (1000.0, 1, 50.0), (250.0, 2, 50.0)])
def test_kernel_matches_numpy_statement(rng: np.random.Generator, fs: float, channels: int,
                                        mains: float) -> None:
    x = _mains_input(rng, fs, channels, mains)
    band = (20.0, min(450.0, 0.45 * fs))
    stage = MainsCanceller(fs, channels, str(int(mains)), band_hz=band)
    ref = _Reference(fs, channels, mains, stage._k, stage._block)
    y, y_ref = stage.process(x), ref.run(x)
    # rounding-level agreement: BLAS sums in its own order, phasors carried between anchors
    assert np.max(np.abs(y - y_ref)) < 1e-9 * np.sqrt(np.mean(x**2))
    assert abs(stage.frequency_hz - ref.freq) < 1e-9
    assert stage._active == tuple(ref.active + 1)
    assert np.std(y[-round(10 * fs):]) < np.std(x[-round(10 * fs):])


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_chunking_and_layout_do_not_matter(rng: np.random.Generator, layout: str) -> None:
    fs = 1000.0
    x = _mains_input(rng, fs, 3, 60.0, seconds=12.0)
    whole = MainsCanceller(fs, 3, "auto").process(x)
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "strided":
        x = np.repeat(x, 2, axis=1)[:, ::2]
    for parts in (3, 50, 2000):
        stage = MainsCanceller(fs, 3, "auto")
        pieces = feed(stage.process, x, random_splits(rng, x.shape[0], parts))
        assert np.array_equal(np.concatenate(pieces), whole)


def test_state_survives_pickle_mid_block(rng: np.random.Generator) -> None:
    x = _mains_input(rng, 2000.0, 2, 50.0, seconds=6.0)
    stage = MainsCanceller(2000.0, 2, "50")
    stage.process(x[:3333])
    clone = pickle.loads(pickle.dumps(stage))
    assert np.array_equal(clone.process(x[3333:]), stage.process(x[3333:]))
    assert clone.frequency_hz == stage.frequency_hz


def test_no_harmonic_in_band_passes_through() -> None:
    x = np.random.default_rng(1).standard_normal((1000, 2))
    stage = MainsCanceller(100.0, 2, "60", band_hz=(20.0, 45.0))
    assert stage._k == 0
    assert np.array_equal(stage.process(x), x)
    assert stage.frequency_hz == 60.0


def test_helpers_against_numpy() -> None:
    rng = np.random.default_rng(2)
    for shape in [(1000, 8), (1000, 1), (37, 5), (500, 13)]:
        b = rng.standard_normal(shape)
        np.testing.assert_allclose(_energy(b), (b * b).sum(axis=0), rtol=1e-13)
    a = rng.standard_normal((12, 12))
    a = a @ a.T + np.eye(12)
    rhs = rng.standard_normal((12, 8))
    np.testing.assert_allclose(_solve(a, rhs), np.linalg.solve(a, rhs), rtol=1e-10)
    with pytest.raises(np.linalg.LinAlgError):
        _solve(np.zeros((3, 3)), np.ones((3, 1)))
    for fs, freq, rate in [(2000.0, 50.13, 0.004), (1000.0, 59.7, -0.3), (4000.0, 60.4, 0.6)]:
        L = round(fs / 2)
        rows = np.array([0, 1, 2, 4, 6])
        basis = np.zeros((2 * rows.size + 2, L))
        advance = _phasors(basis, rows, 7, fs, freq, rate)
        n = np.arange(L)
        theta = (2 * np.pi / fs) * ((freq - 0.5 * rate) * n + (0.5 * rate / L) * n * n)
        z = np.exp(1j * (rows[:, None] + 1) * theta)
        np.testing.assert_allclose(basis[: rows.size], z.real, rtol=0, atol=1e-12)
        np.testing.assert_allclose(basis[rows.size : 2 * rows.size], z.imag, rtol=0, atol=1e-12)
        mid = n - (L - 1) / 2
        np.testing.assert_allclose(basis[-2], mid * z[0].real, rtol=0, atol=1e-9)
        assert advance == 2 * np.pi * freq * L / fs
