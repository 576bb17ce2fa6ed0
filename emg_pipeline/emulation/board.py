"""A board's packet stream: the signal it measures, its counter, and injected faults.

Pure and deterministic given its ``rng``: no Bluetooth and no clock.
:class:`BoardStream` hands out one packet at a time (as the notifications
to send) and keeps the books the tests check against: packets sent, dropped
and corrupted, and samples skipped during outages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal as sps

from emg_pipeline.decode import SequenceTracker
from emg_pipeline.emulation.protocol import BoardProtocol, counts_from_uv
from emg_pipeline.errors import ConfigError, RecordingError
from emg_pipeline.profiles import FirmwareProfile
from emg_pipeline.sources.synthetic import simulate

__all__ = ["BoardSignal", "BoardStream", "FaultCounts", "board_signal"]


@dataclass(frozen=True)
class BoardSignal:
    """What an emulated board measures.

    Attributes
    ----------
    counts : ndarray of int64, shape (n_samples, n_channels)
        ADC counts at the profile's rate; the board loops over them.
    truth : DataFrame or None
        True contraction events (synthetic source), in seconds from sample 0.
    fs : float
        Sampling rate in Hz.
    """

    counts: np.ndarray
    truth: pd.DataFrame | None
    fs: float

    @property
    def duration_s(self) -> float:
        """Length of one loop in seconds."""
        return self.counts.shape[0] / self.fs


def board_signal(profile: FirmwareProfile, rng: np.random.Generator, *,
                 duration_s: float = 120.0, source: str | Path | None = None,
                 snr_db: float = 20.0, counts_per_uv: float | None = None) -> BoardSignal:
    """Make the signal an emulated board sends.

    Parameters
    ----------
    profile : FirmwareProfile
        The board emulated: its rate, channels and sample format.
    rng : numpy.random.Generator
        Randomness of the synthetic source.
    duration_s : float
        Length of the synthetic signal (it loops).
    source : str or Path, optional
        A recording (any format :func:`~emg_pipeline.sources.formats.open_recording`
        reads) instead of the synthetic generator; resampled to the profile's
        rate, its channels used in order (repeated if the board has more).
    snr_db : float
        SNR of the synthetic contractions.
    counts_per_uv : float, optional
        Gain of unitless boards (see :func:`counts_from_uv`).

    Returns
    -------
    BoardSignal
    """
    if source is None:
        mains = 50.0 if profile.fs >= 250 else None   # below 250 Hz 50 Hz mains would alias
        rec = simulate(rng, fs=profile.fs, duration_s=duration_s, channels=profile.channels,
                       snr_db=snr_db, mains_hz=mains)
        return BoardSignal(counts_from_uv(profile, rec.signal, counts_per_uv), rec.truth,
                           profile.fs)
    uv = _read_recording(Path(source), profile)
    return BoardSignal(counts_from_uv(profile, uv, counts_per_uv), None, profile.fs)


def _read_recording(path: Path, profile: FirmwareProfile) -> np.ndarray:
    from emg_pipeline.sources.formats import open_recording

    with open_recording(path) as reader:
        fs = reader.info.fs
        unit = reader.info.unit
        parts = [np.asarray(block, dtype=np.float64) for block in reader.iter_chunks(65536)]
    if not parts:
        raise RecordingError(path, "the recording holds no samples")
    x = np.concatenate(parts)
    x = np.nan_to_num(x - np.nanmean(x, axis=0), nan=0.0)
    if unit != "uV":  # counts of another device: scale to a plausible sEMG level
        rms = float(np.sqrt(np.mean(x**2))) or 1.0
        x = x * (20.0 / rms)
    if not math.isclose(fs, profile.fs, rel_tol=1e-6):
        ratio = Fraction(profile.fs / fs).limit_denominator(1000)
        x = sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=0)
    reps = -(-profile.n_channels // x.shape[1])
    return np.tile(x, (1, reps))[:, : profile.n_channels]


@dataclass
class FaultCounts:
    """What the board did to its own stream (the truth the receiver is checked against)."""

    packets_sent: int = 0
    packets_dropped: int = 0
    packets_malformed: int = 0
    samples_dropped: int = 0
    samples_skipped: int = 0   # samples that went by while no stream was running
    #: board positions (packet numbers) of the dropped or corrupted packets
    positions: list[int] = field(default_factory=list)

    def between(self, first: int, stop: int) -> int:
        """Faulty packets at positions ``first <= p < stop``."""
        return sum(first <= p < stop for p in self.positions)


class BoardStream:
    """One board's packets, in order, with optional loss and corruption.

    Parameters
    ----------
    profile : FirmwareProfile
        The board.
    signal : BoardSignal
        What it measures (looped).
    rng : numpy.random.Generator
        Randomness of the fault injection.
    loss : float
        Probability that a packet is not sent.
    malformed : float
        Probability that a packet is sent corrupted.
    max_payload : int, optional
        Largest notification payload of the link (see :class:`BoardProtocol`).
    firmware : int, optional
        Ganglion firmware, 2 or 3 (see :class:`BoardProtocol`).

    Notes
    -----
    Faults never hit more packets in a row than the board's counter can
    reveal (a run longer than the counter's range would be invisible to any
    receiver), so every injected loss is detectable in principle.

    Examples
    --------
    >>> from emg_pipeline.profiles import load_profile
    >>> prof = load_profile("nus_emg")
    >>> sig = board_signal(prof, np.random.default_rng(0), duration_s=5.0)
    >>> board = BoardStream(prof, sig, np.random.default_rng(1), loss=0.5)
    >>> sent = [board.next_packet() for _ in range(100)]
    >>> board.faults.packets_dropped + board.faults.packets_sent
    100
    """

    def __init__(self, profile: FirmwareProfile, signal: BoardSignal, rng: np.random.Generator,
                 *, loss: float = 0.0, malformed: float = 0.0,
                 max_payload: int | None = None, firmware: int | None = None) -> None:
        for name, p in (("loss", loss), ("malformed", malformed)):
            if not (0.0 <= p < 1.0):
                raise ConfigError(name, p, "a probability in [0, 1)")
        self.profile = profile
        self.signal = signal
        self.rng = rng
        self.loss = float(loss)
        self.malformed = float(malformed)
        self.protocol = BoardProtocol(profile, max_payload, firmware=firmware)
        self.samples_per_packet = self.protocol.samples_per_packet
        self.max_fault_run = self._max_fault_run()
        self.faults = FaultCounts()
        self.position = 0          # packets since the board started measuring
        self.counter_origin = 0    # position where the counter last restarted
        self.sample_position = 0   # samples since the board started measuring
        self.sample_origin = 0     # sample_position where the counter last restarted
        self._run = 0

    def _max_fault_run(self) -> int:
        if self.profile.counter is None:
            return 1 << 30
        tracker = SequenceTracker.from_profile(self.profile)
        span = tracker.increment
        if self.profile.counter.unit == "sample":
            span = self.samples_per_packet * self.profile.counter.increment
        return max(1, tracker.max_gap // span - 1)

    @property
    def packets_per_second(self) -> float:
        """Nominal packet rate."""
        return self.protocol.packets_per_second

    def begin(self) -> None:
        """A stream starts: its first packet is always delivered.

        A receiver cannot see a loss before the first packet it gets, so none
        is injected there (the same reason runs of faults are bounded).
        """
        self._run = self.max_fault_run

    def restart_counter(self) -> None:
        """Restart the board's counter at the current position (a new stream)."""
        self.counter_origin = self.position
        self.sample_origin = self.sample_position

    def skip_to(self, position: int) -> None:
        """Let packets go by unsent (the board measured, nobody was listening)."""
        if position > self.position:
            skipped = (position - self.position) * self.samples_per_packet
            self.faults.samples_skipped += skipped
            self.sample_position += skipped
            self.position = position

    def next_packet(self) -> list[tuple[int, bytes]]:
        """The notifications for the next packet (empty if the packet is lost).

        Returns
        -------
        list of (int, bytes)
            Notify-characteristic index and payload.
        """
        index = self.position - self.counter_origin
        spp = self.protocol.samples_in_packet(index)
        n = self.signal.counts.shape[0]
        rows = np.arange(self.sample_position, self.sample_position + spp) % n
        counts = self.signal.counts[rows]
        out = self.protocol.encode(counts, index, self.sample_position - self.sample_origin)
        self.position += 1
        self.sample_position += spp
        fault = self._run < self.max_fault_run
        if fault and self.loss and self.rng.random() < self.loss:
            self._run += 1
            self.faults.positions.append(self.position - 1)
            self.faults.packets_dropped += 1
            self.faults.samples_dropped += spp
            return []
        if fault and self.malformed and self.rng.random() < self.malformed:
            self._run += 1
            self.faults.positions.append(self.position - 1)
            self.faults.packets_malformed += 1
            self.faults.samples_dropped += spp
            last_char, last = out[-1]
            return [*out[:-1], (last_char, self.protocol.corrupt(last))]
        self._run = 0
        self.faults.packets_sent += 1
        return out
