"""Amplitude envelope at the frame rate.

Conditioned samples are squared (or rectified) and reduced to frames, then
smoothed: a moving RMS over ``window_s`` (default) or a first-order low-pass of
the rectified signal. Both smoothers are causal with carried state, so the
envelope is the same, bit for bit, whatever the chunking. One ``process`` is one
compiled call (:func:`_rms_kernel` or :func:`_lowpass_kernel`).
"""

from __future__ import annotations

import numpy as np

from ._jit import jit
from .framing import ABS, FLOAT64, SQUARES, _frames_into, _moving_sum_into

__all__ = ["Envelope"]


@jit
def _rms_kernel(
    x: np.ndarray, rest: np.ndarray, n_rest: int, tail: np.ndarray,
    env: np.ndarray, power: np.ndarray,
) -> int:
    """Moving RMS ``env`` and frame mean square ``power`` of the frames completed by ``x``.

    ``rest`` ``(frame_len, n_channels)`` holds the unfinished frame (its first
    ``n_rest`` rows) and ``tail`` the last frame powers (the window less one);
    both are updated in place, and the new ``n_rest`` is returned.

    The arithmetic is that of the numpy formulation, in the same order: frame
    sums of squares from the first sample of a frame, divided by
    ``frame_len``; the moving average adds its window oldest first and divides
    by its length; then ``sqrt(max(., 0))``.
    """
    n_rest = _frames_into(x, rest, n_rest, power, SQUARES, float(rest.shape[0]))
    _moving_sum_into(tail, power, env, float(tail.shape[0] + 1), True)
    return n_rest


@jit
def _lowpass_kernel(
    x: np.ndarray, rest: np.ndarray, n_rest: int, coef: np.ndarray, zi: np.ndarray,
    env: np.ndarray, power: np.ndarray,
) -> int:
    """Low-passed rectified ``env`` and frame mean square ``power`` of the frames of ``x``.

    ``rest`` ``(2, frame_len, n_channels)`` holds the unfinished frame twice
    (its first ``n_rest`` rows; framed rectified and squared), ``zi``
    ``(n_channels, 2)`` the low-pass state and ``coef`` its ``(b0, b1, b2,
    a1, a2, gain)``; the state is updated in place, and the new ``n_rest`` is
    returned. The filter is ``scipy.signal.sosfilt``'s direct form II
    transposed, in the same order.
    """
    n_frames, n_ch = env.shape
    scale = float(rest.shape[1])
    _frames_into(x, rest[1], n_rest, power, SQUARES, scale)
    n_rest = _frames_into(x, rest[0], n_rest, env, ABS, scale)
    b0, b1, b2, a1, a2, gain = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5]
    for k in range(n_frames):
        for c in range(n_ch):
            xn = env[k, c]
            xc = b0 * xn + zi[c, 0]
            zi[c, 0] = b1 * xn - a1 * xc + zi[c, 1]
            zi[c, 1] = b2 * xn - a2 * xc
            env[k, c] = xc * gain
    return n_rest


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
        if frame_len < 1:
            raise ValueError(f"frame_len must be at least 1, got {frame_len}")
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.frame_len = int(frame_len)
        self.window_s = float(window_s)
        self.kind = kind
        frame_rate = self.fs / self.frame_len
        self._window = max(1, round(self.window_s * frame_rate))  # frames of the moving RMS
        alpha = 1.0 - np.exp(-1.0 / (0.5 * self.window_s * frame_rate))
        # the low-pass as one second-order section (b0, b1, b2, a1, a2), then the
        # gain from the mean |x| of Gaussian noise to its RMS
        self._coef = np.array([alpha, 0.0, 0.0, alpha - 1.0, 0.0, np.sqrt(np.pi / 2)])
        self.reset()

    def reset(self) -> None:
        """Forget the smoother state and the unfinished frame."""
        # the unfinished frame (twice for the low-pass: rectified and squared)
        shape = (self.frame_len, self.n_channels)
        self._rest = np.empty(shape if self.kind == "rms" else (2, *shape))
        self._n_rest = 0
        self._tail = np.zeros((self._window - 1, self.n_channels))  # last frame powers
        self._zi = np.zeros((self.n_channels, 2))  # low-pass state
        self.frame_power = np.empty((0, self.n_channels))

    def process(self, x: np.ndarray) -> np.ndarray:
        """Envelope values of the frames completed by ``x``, shape ``(n_frames, n_channels)``."""
        if x.dtype is not FLOAT64 and x.dtype != FLOAT64:
            x = x.astype(np.float64)
        r = self._n_rest
        n_frames = (r + x.shape[0]) // self.frame_len
        env = np.empty((n_frames, self.n_channels))
        power = np.empty((n_frames, self.n_channels))
        if self.kind == "rms":
            self._n_rest = _rms_kernel(x, self._rest, r, self._tail, env, power)
        else:
            self._n_rest = _lowpass_kernel(x, self._rest, r, self._coef, self._zi, env, power)
        self.frame_power = power
        return env
