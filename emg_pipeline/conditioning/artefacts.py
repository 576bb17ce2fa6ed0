"""Suppression of artefacts whose energy lies below the EMG band.

Heartbeats on trunk muscles, limb and cable motion, and electrode pops all put
most of their energy below about 20 Hz, where surface EMG has almost none
(1.6 % of the power of the usual EMG spectral model lies below 20 Hz). What
they leak into the EMG band after the band-pass can still look like a
contraction. For each frame the gate measures the raw signal's amplitude ``L``
in a low band (about 4-18 Hz, below the band-pass) and removes from the
EMG-band envelope ``E`` the power such an artefact can explain:
``E_c**2 = E**2 - ratio**2 * (L**2 - A**2)``, where ``A`` is what the low
band holds without an artefact.

On the project's artefact models the EMG-band excess of cable knocks stays
below 0.85 L (95th percentile) and that of motion below 0.05 L, so one rule
cancels knocks and motion; ``L`` is held at its maximum over ``hold_s`` so that
the tail an artefact leaves in the EMG band is covered too. Frames where the
artefact explains more than half of the envelope's power are reported as
artefact.

The low band has noise of its own, unrelated to the EMG band's: electrode and
amplifier noise with a 1/f part puts as much power in 4-18 Hz as in 20-90 Hz,
the whole EMG band of a 200 Hz board. Counted as artefact, that noise would
flag a quiet rest as artefact frame after frame and hide what happens in it.
So only low-band power above ``A = noise_margin`` times the low band's
background (its median over the previous ``level_block_s``) counts; Gaussian
noise stays under 1.5 times that median in 95 % of frames, and the power
subtraction makes what passes it count for little.

Heartbeats are handled upstream: on a channel that carries ECG,
:class:`~emg_pipeline.conditioning.ecg.EcgSuppressor` filters the QRS out of
the EMG band, and there ``A`` is the heart itself (``ecg_margin`` times the
95th percentile of ``L`` over the previous ``level_block_s``): only what stands
above the heartbeat (a pop, a knock, a movement) is judged, and a contraction
under a strong ECG keeps its envelope.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .._jit import jit
from ..framing import MovingAverage, RunningMax
from .filters import FrameFilter

__all__ = ["ArtefactGate"]

_FIRST_BLOCK_S = 0.5   # the first block, from which the first background is measured


@jit
def _gate_frames(held: np.ndarray, envelope: np.ndarray, ecg: np.ndarray, level: np.ndarray,
                 background: np.ndarray, ratio: float, ecg_margin: float, noise_margin: float,
                 out: np.ndarray, artefact: np.ndarray) -> None:
    """The gate's rule, frame by frame: ``out**2 = envelope**2 - ratio**2 * leak**2``.

    ``leak**2`` is the held low-band power above what the channel's low band
    holds without an artefact: ``(noise_margin * background)**2``, or on the
    frames flagged ``ecg``, ``(ecg_margin * level)**2``. The frames where the
    leak explains more than half of the power are artefact.
    """
    for i in range(held.shape[0]):
        for c in range(held.shape[1]):
            allowed = ecg_margin * level[c] if ecg[i, c] else noise_margin * background[c]
            above = held[i, c] ** 2 - allowed**2
            explained = ratio**2 * above if above > 0.0 else 0.0
            power = envelope[i, c] ** 2
            artefact[i, c] = explained > 0.5 * power
            rest = power - explained
            out[i, c] = np.sqrt(rest if not rest < 0.0 else 0.0)


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
        How often the heartbeat level and the background are measured (the
        first time after 0.5 s, or ``level_block_s`` if shorter).
    ecg_margin : float
        On ECG channels, low-band power up to this multiple of the heartbeat
        level is the heart, not an artefact.
    noise_margin : float
        Elsewhere, low-band power up to this multiple of the low band's
        background (its median over the previous ``level_block_s``) is the
        channel's own noise. Gaussian noise of any spectrum exceeds 1.5 times
        that median in about 5 % of frames and twice it in 0.2 % (the held
        amplitude of a 14 Hz band, against the previous block's median).
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
        noise_margin: float = 1.5,
    ) -> None:
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.frame_len = int(frame_len)
        self.window_s = float(window_s)
        self.ratio = float(ratio)
        self.hold_s = float(hold_s)
        self.level_block_s = float(level_block_s)
        self.ecg_margin = float(ecg_margin)
        self.noise_margin = float(noise_margin)
        frame_rate = self.fs / self.frame_len
        self._level_block = max(1, round(self.level_block_s * frame_rate))
        # the first background comes from a short first block: until it is
        # measured, all of the low band counts, rest noise included
        self._first_block = min(self._level_block, max(1, round(_FIRST_BLOCK_S * frame_rate)))
        high = min(band_hz[1], 0.4 * frame_rate)
        self.band_hz = (float(band_hz[0]), float(high))
        # a steep upper edge: mains hum is still in the raw signal and must not
        # count as low-band energy ((18/50)^4 leaves under 2 % of 50 Hz)
        self._sos = np.vstack([
            signal.butter(4, self.band_hz[1], btype="lowpass", fs=frame_rate, output="sos"),
            signal.butter(2, self.band_hz[0], btype="highpass", fs=frame_rate, output="sos"),
        ])
        window = max(1, round(self.window_s * frame_rate))  # frames averaged
        hold = max(1, round(self.hold_s * frame_rate))  # frames held
        C = self.n_channels
        # the carried state: the unfinished frame, the low band's filter (it
        # starts at the steady state of the first frame), the smoothing, the
        # hold, and the heartbeat level with the block it is measured on
        self._low = FrameFilter(self._sos, self.frame_len, C)
        self._rms = MovingAverage(window, C, root=True)
        self._hold = RunningMax(hold, C)
        self._block = np.empty((self._level_block, C))
        self.reset()

    def reset(self) -> None:
        """Forget filter states, the hold, the heartbeat level and the background."""
        C = self.n_channels
        for part in (self._low, self._rms, self._hold):
            part.reset()
        self._filled = 0  # frames in the level block
        self._block_len = self._first_block  # frames of the block being filled
        self._level = np.full(C, np.inf)  # no heartbeat level measured yet
        self._background = np.zeros(C)  # no background measured yet: all of it counts
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
            there only low-band power above the heartbeat's own level (the
            95th percentile of the held amplitude over the previous
            ``level_block_s``, times ``ecg_margin``) counts; elsewhere only
            power above ``noise_margin`` times the median does.

        Returns
        -------
        ndarray, shape (n_frames, n_channels)
            Corrected envelope. :attr:`artefact` holds the frames where the
            artefact explains more than half of the power, :attr:`low_band`
            the held low-band amplitude.
        """
        low = self._low.process(raw)
        n = low.shape[0]
        if n != envelope.shape[0]:
            raise ValueError("raw samples and envelope frames are out of step")
        held = self._hold.process(self._rms.process(np.square(low, out=low)))
        out = np.empty_like(held)
        artefact = np.empty(held.shape, dtype=bool)
        if ecg is None:
            ecg = np.zeros(held.shape, dtype=bool)
        if self._filled + n < self._block_len:  # no block ends in this chunk
            self._gate(held, envelope, ecg, out, artefact)
            self._block[self._filled : self._filled + n] = held
            self._filled += n
            start = n
        else:
            start = 0
        # the heartbeat level changes where a block of level_block_s ends: the
        # frames are cut there
        while start < n:
            stop = min(n, start + self._block_len - self._filled)
            rows = slice(start, stop)
            self._gate(held[rows], envelope[rows], ecg[rows], out[rows], artefact[rows])
            self._block[self._filled : self._filled + stop - start] = held[rows]
            self._filled += stop - start
            if self._filled == self._block_len:
                self._background, self._level = np.quantile(self._block[: self._filled],
                                                            (0.5, 0.95), axis=0)
                self._filled = 0
                self._block_len = self._level_block
            start = stop
        self.low_band = held
        self.artefact = artefact
        return out if n else envelope

    def _gate(self, held: np.ndarray, envelope: np.ndarray, ecg: np.ndarray, out: np.ndarray,
              artefact: np.ndarray) -> None:
        _gate_frames(held, envelope, ecg, self._level, self._background, self.ratio,
                     self.ecg_margin, self.noise_margin, out, artefact)
