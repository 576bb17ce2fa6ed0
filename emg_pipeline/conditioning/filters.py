"""Causal IIR filtering in second-order sections with carried state."""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = ["SosFilter", "bandpass_sos", "effective_band"]


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
        self.zi: np.ndarray | None = None

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter one chunk and carry the state to the next."""
        if x.shape[0] == 0:
            return np.empty_like(x)
        if self.zi is None:
            self.zi = self._zi_unit[:, :, None] * x[0][None, None, :]
        y, self.zi = signal.sosfilt(self.sos, x, axis=0, zi=self.zi)
        return y
