"""Amplitude envelope at the frame rate.

Conditioned samples are squared (or rectified) and reduced to frames, then
smoothed: a moving RMS over ``window_s`` (default) or a first-order low-pass of
the rectified signal. Both smoothers are causal with carried state, so the
envelope is the same, bit for bit, whatever the chunking.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .framing import Framer, MovingAverage, frame_sum, frame_sum_squares

__all__ = ["Envelope"]


class Envelope:
    """Causal amplitude envelope of conditioned sEMG, one value per frame.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    n_channels : int
        Number of channels.
    frame_len : int
        Samples per frame.
    window_s : float
        RMS window, or twice the time constant of the low-pass.
    kind : {"rms", "lowpass"}
        Smoother.

    Attributes
    ----------
    frame_power : ndarray
        Mean square of each frame of the last chunk (kept for the burst
        analysis of the classifier).

    Examples
    --------
    >>> env = Envelope(1000.0, 1, frame_len=5, window_s=0.05)
    >>> x = np.random.default_rng(0).standard_normal((2000, 1))
    >>> e = env.process(x)
    >>> e.shape, round(float(e[-1, 0]), 1)
    ((400, 1), 1.0)
    """

    def __init__(
        self, fs: float, n_channels: int, frame_len: int, window_s: float, kind: str = "rms"
    ) -> None:
        if kind not in ("rms", "lowpass"):
            raise ValueError(f"envelope kind must be 'rms' or 'lowpass', got {kind!r}")
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.frame_len = int(frame_len)
        self.window_s = float(window_s)
        self.kind = kind
        frame_rate = self.fs / self.frame_len
        self._average = MovingAverage(max(1, round(self.window_s * frame_rate)), n_channels)
        alpha = 1.0 - np.exp(-1.0 / (0.5 * self.window_s * frame_rate))
        self._sos = np.array([[alpha, 0.0, 0.0, 1.0, alpha - 1.0, 0.0]])
        if kind == "rms":
            self._framer = Framer(self.frame_len, self.n_channels, frame_sum_squares)
        else:
            self._framer = Framer(self.frame_len, self.n_channels, _frame_abs_sum)
        self._power_framer = Framer(self.frame_len, self.n_channels, frame_sum_squares)
        self.reset()

    def reset(self) -> None:
        """Forget the smoother state and the unfinished frame."""
        self._framer.reset()
        self._power_framer.reset()
        self._average.reset()
        self._zi = np.zeros((1, 2, self.n_channels))
        self.frame_power = np.empty((0, self.n_channels))

    def process(self, x: np.ndarray) -> np.ndarray:
        """Envelope values of the frames completed by ``x``, shape ``(n_frames, n_channels)``."""
        frames = self._framer.process(x) / self.frame_len
        if self.kind == "rms":
            self.frame_power = frames
        else:
            self.frame_power = self._power_framer.process(x) / self.frame_len
        if frames.shape[0] == 0:
            return frames
        if self.kind == "rms":
            return np.sqrt(np.maximum(self._average.process(frames), 0.0))
        smooth, self._zi = signal.sosfilt(self._sos, frames, axis=0, zi=self._zi)
        return smooth * np.sqrt(np.pi / 2)  # mean |x| of Gaussian noise -> RMS scale


def _frame_abs_sum(frames: np.ndarray) -> np.ndarray:
    return frame_sum(np.abs(frames))
