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

from ..framing import Framer, MovingAverage, RunningMax, frame_sum
from .filters import sosfilt_state

__all__ = ["ArtefactGate"]


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
        self._average = MovingAverage(max(1, round(self.window_s * frame_rate)), n_channels)
        self._peak = RunningMax(max(1, round(self.hold_s * frame_rate)), n_channels)
        self._framer = Framer(self.frame_len, self.n_channels, frame_sum)
        self.reset()

    def reset(self) -> None:
        """Forget filter states and the hold."""
        self._framer.reset()
        self._zi_band: np.ndarray | None = None
        self._average.reset()
        self._peak.reset()
        self.low_band = np.empty((0, self.n_channels))
        self.artefact = np.zeros((0, self.n_channels), dtype=bool)
        self._level = np.full(self.n_channels, np.inf)  # heartbeat level, none measured yet
        self._block_low: list[np.ndarray] = []
        self._block_len = 0

    def _beat_levels(self, low: np.ndarray) -> np.ndarray:
        """Per-frame allowance for heartbeats: the level measured over the previous block.

        Blocks of ``level_block_s`` are aligned on the frame clock, so the
        allowance does not depend on how the stream is chunked.
        """
        out = np.empty_like(low)
        i = 0
        while i < low.shape[0]:
            take = min(low.shape[0] - i, self._level_block - self._block_len)
            out[i : i + take] = self.ecg_margin * self._level
            self._block_low.append(low[i : i + take])
            self._block_len += take
            i += take
            if self._block_len == self._level_block:
                self._level = np.quantile(np.concatenate(self._block_low), 0.95, axis=0)
                self._block_low, self._block_len = [], 0
        return out

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
        means = self._framer.process(raw) / self.frame_len
        n = means.shape[0]
        if n != envelope.shape[0]:
            raise ValueError("raw samples and envelope frames are out of step")
        if n == 0:
            self.low_band = means
            self.artefact = np.zeros((0, self.n_channels), dtype=bool)
            return envelope
        if self._zi_band is None:
            zi = signal.sosfilt_zi(self._sos)[:, :, None] * means[0][None, None, :]
            self._zi_band = np.ascontiguousarray(np.moveaxis(zi, -1, 0))
        band, self._zi_band = sosfilt_state(self._sos, means, self._zi_band)
        low = self._peak.process(np.sqrt(np.maximum(self._average.process(band * band), 0.0)))
        self.low_band = low
        levels = self._beat_levels(low)
        if ecg is not None and ecg.any():
            low = np.where(ecg, np.maximum(low - levels, 0.0), low)
        explained = (self.ratio * low) ** 2
        power = envelope * envelope
        self.artefact = explained > 0.5 * power
        return np.sqrt(np.maximum(power - explained, 0.0))
