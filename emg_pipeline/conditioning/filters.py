"""Causal IIR filtering in second-order sections with carried state."""

from __future__ import annotations

import numpy as np
from scipy import signal

try:  # the compiled kernel behind scipy.signal.sosfilt (private: guarded, see sosfilt_state)
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # pragma: no cover - depends on the scipy build
    _sosfilt_kernel = None

__all__ = ["SosFilter", "bandpass_sos", "effective_band", "sosfilt_state"]


def sosfilt_state(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filter ``x`` along axis 0 from state ``zi`` in the kernel's own layout.

    The same filter as ``scipy.signal.sosfilt(sos, x, axis=0, zi=...)``, whose
    wrapper costs about ten times its kernel on a live chunk of a few dozen
    samples (validation, axis moves, copies of the state). Here the state stays
    in the kernel's layout between calls and only the samples are copied.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
        Second-order sections, float64.
    x : ndarray, shape (n_samples, n_channels)
        Samples, float64; not modified.
    zi : ndarray, shape (n_channels, n_sections, 2)
        State, C-contiguous float64; not modified.

    Returns
    -------
    y : ndarray, shape (n_samples, n_channels)
        Filtered samples (the transpose of a C-contiguous array, the layout
        ``scipy.signal.sosfilt`` returns for ``axis=0``).
    zf : ndarray, shape (n_channels, n_sections, 2)
        State after the last sample.

    Examples
    --------
    >>> sos = bandpass_sos(1000.0, 20.0, 450.0)
    >>> x = np.random.default_rng(0).standard_normal((100, 2))
    >>> zi = np.zeros((2, sos.shape[0], 2))
    >>> y, zf = sosfilt_state(sos, x, zi)
    >>> y2, zf2 = signal.sosfilt(sos, x, axis=0, zi=np.moveaxis(zi, 0, -1))
    >>> bool(np.array_equal(y, y2)) and bool(np.array_equal(zf, np.moveaxis(zf2, -1, 0)))
    True
    """
    if _sosfilt_kernel is None:
        y, zf = signal.sosfilt(sos, x, axis=0, zi=np.moveaxis(zi, 0, -1))
        return y, np.ascontiguousarray(np.moveaxis(zf, -1, 0))
    xt = np.array(x.T, dtype=np.float64, order="C")  # the kernel filters in place
    zf = zi.copy()
    _sosfilt_kernel(sos, xt, zf)
    return xt.T, zf


def effective_band(fs: float, highpass_hz: float, lowpass_hz: float) -> tuple[float, float]:
    """Return the band actually used at rate ``fs``.

    The upper corner is clamped to ``0.45 * fs`` so that a 450 Hz default works
    on a 200 Hz board (where it becomes 90 Hz).

    Examples
    --------
    >>> effective_band(200.0, 20.0, 450.0)
    (20.0, 90.0)
    """
    high = min(float(lowpass_hz), 0.45 * fs)
    if high <= highpass_hz:
        raise ValueError(
            f"band {highpass_hz:g}-{lowpass_hz:g} Hz leaves nothing below Nyquist at fs={fs:g} Hz"
        )
    return float(highpass_hz), high


def bandpass_sos(fs: float, highpass_hz: float, lowpass_hz: float, order: int = 4) -> np.ndarray:
    """Design the Butterworth band-pass of the pipeline as second-order sections.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    highpass_hz, lowpass_hz : float
        Corners in Hz (the upper one clamped by :func:`effective_band`).
    order : int
        Order of each edge.

    Returns
    -------
    ndarray, shape (n_sections, 6)
    """
    low, high = effective_band(fs, highpass_hz, lowpass_hz)
    return signal.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")


class SosFilter:
    """A causal SOS filter over ``(n_samples, n_channels)`` with carried state.

    The state starts at the steady state of the first sample of each channel
    (``sosfilt_zi`` scaled), so a DC offset in the input does not ring through
    the filter at start-up.

    Parameters
    ----------
    sos : ndarray, shape (n_sections, 6)
        Second-order sections.
    n_channels : int
        Number of channels.

    Examples
    --------
    >>> sos = bandpass_sos(1000.0, 20.0, 450.0)
    >>> x = np.random.default_rng(0).standard_normal((1000, 2))
    >>> f = SosFilter(sos, 2)
    >>> y = np.vstack([f.process(x[:300]), f.process(x[300:])])
    >>> zi = signal.sosfilt_zi(sos)[:, :, None] * x[0]
    >>> bool(np.allclose(y, signal.sosfilt(sos, x, axis=0, zi=zi)[0]))
    True
    """

    def __init__(self, sos: np.ndarray, n_channels: int) -> None:
        self.sos = np.array(sos, dtype=np.float64)
        self.n_channels = int(n_channels)
        self._zi_unit = signal.sosfilt_zi(self.sos)
        self.reset()

    def reset(self) -> None:
        """Forget the filter state; the next sample sets the steady state."""
        self._state: np.ndarray | None = None  # (n_channels, n_sections, 2)

    @property
    def zi(self) -> np.ndarray | None:
        """Filter state in ``scipy.signal.sosfilt`` layout ``(n_sections, 2, n_channels)``."""
        return None if self._state is None else np.moveaxis(self._state, 0, -1)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter one chunk and carry the state to the next."""
        if x.shape[0] == 0:
            return np.empty_like(x)
        if self._state is None:
            zi = self._zi_unit[:, :, None] * x[0][None, None, :]
            self._state = np.ascontiguousarray(np.moveaxis(zi, -1, 0))
        y, self._state = sosfilt_state(self.sos, x, self._state)
        # time-major rows are what the later stages slice, frame and copy;
        # one copy here is cheaper than strided access in each of them
        return np.ascontiguousarray(y)
