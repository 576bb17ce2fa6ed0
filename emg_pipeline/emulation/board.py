"""A board's packet stream: the signal it measures, its counter, and injected faults.

Pure and deterministic given its ``rng``: no Bluetooth and no clock.
:class:`BoardStream` hands out one packet at a time (as the notifications
to send) and keeps the books the tests check against (:class:`FaultCounts`):
packets sent, dropped (alone or in bursts), corrupted, duplicated, reordered
and withheld by a stall, where each fault hit, and samples skipped during
outages.
"""

from __future__ import annotations

import math
from array import array
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


def _positions() -> array[int]:
    return array("q")   # 8 bytes a fault: the books of a day-long session stay small


@dataclass
class FaultCounts:
    """What the board did to its own stream (the truth the receiver is checked against).

    Every fault hits whole packets, and each packet gets at most one fault.
    Positions are board positions (packet numbers since the board started
    measuring, see :attr:`BoardStream.position`).

    Attributes
    ----------
    packets_sent : int
        Packets put on the air intact (a duplicated one counts once, a
        reordered one once; a corrupted one not).
    packets_dropped : int
        Packets lost, alone or in a burst (never sent).
    packets_malformed : int
        Packets sent corrupted (a receiver must reject them).
    packets_duplicated : int
        Packets whose notifications were sent twice in a row.
    packets_reordered : int
        Packets sent right after their successor (one per swapped pair).
    packets_stalled : int
        Packets withheld while the board stalled (connected, silent).
    samples_dropped : int
        Samples in dropped and corrupted packets.
    samples_stalled : int
        Samples in withheld packets.
    samples_reordered : int
        Samples in the late packet of each swapped pair.
    samples_skipped : int
        Samples that went by while no stream was running.
    bursts : int
        Loss bursts (their packets are in ``packets_dropped`` too).
    stalls : int
        Stalls begun.
    stalls_cut : int
        Stalls ended early by a new stream (a reconnect).
    packets_stalled_cut : int
        Packets withheld by the stalls a new stream ended (a receiver whose
        board restarts its counter can only measure these by time).
    positions : array of int
        Dropped or corrupted packets (the position lists are compact
        ``array("q")`` sequences).
    burst_positions, burst_lengths : array of int
        First packet of each loss burst and how many packets it took (a
        burst is cut short by the end of a stream).
    duplicate_positions : array of int
        Duplicated packets.
    reorder_positions : array of int
        The late packet of each swapped pair (its successor went first).
    stall_positions, stall_lengths : array of int
        First withheld packet of each stall and how many were withheld.
    """

    packets_sent: int = 0
    packets_dropped: int = 0
    packets_malformed: int = 0
    packets_duplicated: int = 0
    packets_reordered: int = 0
    packets_stalled: int = 0
    samples_dropped: int = 0
    samples_stalled: int = 0
    samples_reordered: int = 0
    samples_skipped: int = 0   # samples that went by while no stream was running
    bursts: int = 0
    stalls: int = 0
    stalls_cut: int = 0
    packets_stalled_cut: int = 0
    #: board positions (packet numbers) of the dropped or corrupted packets
    positions: array[int] = field(default_factory=_positions)
    burst_positions: array[int] = field(default_factory=_positions)
    burst_lengths: array[int] = field(default_factory=_positions)
    duplicate_positions: array[int] = field(default_factory=_positions)
    reorder_positions: array[int] = field(default_factory=_positions)
    stall_positions: array[int] = field(default_factory=_positions)
    stall_lengths: array[int] = field(default_factory=_positions)

    def between(self, first: int, stop: int) -> int:
        """Dropped or corrupted packets at positions ``first <= p < stop``."""
        return sum(first <= p < stop for p in self.positions)


def _length_range(value: int | tuple[int, int]) -> tuple[int, int]:
    lo, hi = (value, value) if isinstance(value, int) else value
    if isinstance(lo, bool) or isinstance(hi, bool) or not 1 <= int(lo) <= int(hi):
        raise ConfigError("burst_length", value, "a packet count >= 1, or a range (lo, hi)")
    return int(lo), int(hi)


class BoardStream:
    """One board's packets, in order, with optional faults.

    Parameters
    ----------
    profile : FirmwareProfile
        The board.
    signal : BoardSignal
        What it measures (looped).
    rng : numpy.random.Generator
        Randomness of the fault injection (the only one: the same seed gives
        the same faults at the same positions).
    loss : float
        Probability that a packet is not sent.
    malformed : float
        Probability that a packet is sent corrupted.
    max_payload : int, optional
        Largest notification payload of the link (see :class:`BoardProtocol`).
    firmware : int, optional
        Ganglion firmware, 2 or 3 (see :class:`BoardProtocol`).
    burst : float
        Probability that a loss burst starts at a packet: ``burst_length``
        consecutive packets are not sent.
    burst_length : int or (int, int)
        Packets per burst, or the range ``(lo, hi)`` each burst's length is
        drawn from uniformly (bounded as every run of faults is, see Notes).
    duplicate : float
        Probability that a packet's notifications are sent twice in a row.
    reorder : float
        Probability that a packet and the next one are swapped (the next one
        is sent first).
    stall_every_s : float, optional
        The board stalls every this many seconds of board time (at packet
        positions that are multiples of it): it stays connected but sends
        nothing for ``stall_s``, its sample clock running on. A new stream
        (a reconnect) ends a stall.
    stall_s : float
        Length of each stall, in board seconds.

    Notes
    -----
    Faults never hit more packets in a row than the board's counter can
    reveal (a run longer than the counter's range would be invisible to any
    receiver), so every injected loss is detectable in principle; the first
    packet of a stream, and any packet asked for with ``clean=True``, is
    always delivered intact. Stalls are the exception: they are as long as
    asked, and a receiver sees one by its counter only if it is shorter than
    the counter's range, else only by time.

    Duplicated and reordered packets need a counter that tells them from
    new data: duplicates any counter, a swap one whose ``max_back`` reaches
    two packets back (not the Myo's rotation modulo 4, nor BITalino's 4-bit
    sample counter). A :class:`~emg_pipeline.errors.ConfigError` says when the
    profile cannot. A receiver that counts by the counter sees a swapped
    pair as one lost packet (the successor arrives first, so the gap is
    marked) and one late packet (dropped).

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
                 max_payload: int | None = None, firmware: int | None = None,
                 burst: float = 0.0, burst_length: int | tuple[int, int] = 5,
                 duplicate: float = 0.0, reorder: float = 0.0,
                 stall_every_s: float | None = None, stall_s: float = 0.0) -> None:
        for name, p in (("loss", loss), ("malformed", malformed), ("burst", burst),
                        ("duplicate", duplicate), ("reorder", reorder)):
            if not (0.0 <= p < 1.0):
                raise ConfigError(name, p, "a probability in [0, 1)")
        self.profile = profile
        self.signal = signal
        self.rng = rng
        self.loss = float(loss)
        self.malformed = float(malformed)
        self.burst = float(burst)
        self.burst_length = _length_range(burst_length)
        self.duplicate = float(duplicate)
        self.reorder = float(reorder)
        self.protocol = BoardProtocol(profile, max_payload, firmware=firmware)
        self.samples_per_packet = self.protocol.samples_per_packet
        self.max_fault_run = self._max_fault_run()
        if self.duplicate and profile.counter is None:
            raise ConfigError("duplicate", duplicate,
                              f"0: {profile.name} has no counter to reveal a repeated packet")
        if self.reorder and not self._late_visible():
            raise ConfigError("reorder", reorder,
                              f"0: {profile.name}'s counter cannot tell a late packet from a gap")
        pps = self.protocol.packets_per_second
        self.stall_every: int | None = None
        self.stall_packets = 0
        if stall_every_s is not None:
            if not stall_every_s > 0:
                raise ConfigError("stall_every_s", stall_every_s, "a positive time")
            if not stall_s > 0:
                raise ConfigError("stall_s", stall_s, "a positive time")
            self.stall_every = max(1, round(stall_every_s * pps))
            self.stall_packets = max(1, round(stall_s * pps))
        self.faults = FaultCounts()
        self.position = 0          # packets since the board started measuring
        self.counter_origin = 0    # position where the counter last restarted
        self.sample_position = 0   # samples since the board started measuring
        self.sample_origin = 0     # sample_position where the counter last restarted
        self._run = 0
        self._burst_left = 0
        self._stall_left = 0
        self._next_stall = self.stall_every

    def _max_fault_run(self) -> int:
        if self.profile.counter is None:
            return 1 << 30
        tracker = SequenceTracker.from_profile(self.profile)
        span = tracker.increment
        if self.profile.counter.unit == "sample":
            span = self.samples_per_packet * self.profile.counter.increment
        return max(1, tracker.max_gap // span - 1)

    def _late_visible(self) -> bool:
        """Whether a packet that comes after its successor is seen as late (not as a gap)."""
        if self.profile.counter is None:
            return False
        tracker = SequenceTracker.from_profile(self.profile)
        span = tracker.increment
        if self.profile.counter.unit == "sample":
            span = self.samples_per_packet * self.profile.counter.increment
        return 2 * span <= tracker.max_back and self.max_fault_run >= 2

    @property
    def packets_per_second(self) -> float:
        """Nominal packet rate."""
        return self.protocol.packets_per_second

    @property
    def stalled(self) -> bool:
        """Whether the board is stalled (connected, sending nothing)."""
        return self._stall_left > 0

    def begin(self) -> None:
        """A stream starts: its first packet is always delivered.

        A receiver cannot see a loss before the first packet it gets, so none
        is injected there (the same reason runs of faults are bounded). A
        loss burst or a stall still under way ends here.
        """
        self._run = self.max_fault_run
        self._burst_left = 0
        if self._stall_left:
            self.faults.stalls_cut += 1
            self.faults.packets_stalled_cut += self.faults.stall_lengths[-1]
        self._end_stall()

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
            if self.stall_every is not None and self._next_stall is not None:
                while self._next_stall <= position:   # stalls due while nobody listened
                    self._next_stall += self.stall_every

    def _end_stall(self) -> None:
        if self._stall_left:
            self._stall_left = 0
            self._run = self.max_fault_run   # the packet after a stall is delivered

    def _make(self) -> tuple[list[tuple[int, bytes]], int]:
        """Encode the packet at the current position and move past it."""
        index = self.position - self.counter_origin
        spp = self.protocol.samples_in_packet(index)
        n = self.signal.counts.shape[0]
        rows = np.arange(self.sample_position, self.sample_position + spp) % n
        counts = self.signal.counts[rows]
        out = self.protocol.encode(counts, index, self.sample_position - self.sample_origin)
        self.position += 1
        self.sample_position += spp
        return out, spp

    def _drop(self, position: int, spp: int) -> None:
        self._run += 1
        self.faults.positions.append(position)
        self.faults.packets_dropped += 1
        self.faults.samples_dropped += spp

    def next_packet(self, *, clean: bool = False) -> list[tuple[int, bytes]]:
        """The notifications for the next packet (empty if the packet is lost).

        A swap hands out two packets at once (the later one first), so
        :attr:`position` may move by two.

        Parameters
        ----------
        clean : bool
            Deliver this packet intact whatever the fault settings (it also
            ends a stall or a loss burst under way).

        Returns
        -------
        list of (int, bytes)
            Notify-characteristic index and payload, in sending order.
        """
        f = self.faults
        position = self.position
        if clean:
            self._burst_left = 0
            self._end_stall()
        elif self._next_stall is not None and position >= self._next_stall:
            self._next_stall += self.stall_every or 1
            if not self._stall_left:   # a stall still under way goes on
                self._stall_left = self.stall_packets
                self._burst_left = 0
                f.stalls += 1
                f.stall_positions.append(position)
                f.stall_lengths.append(0)
        out, spp = self._make()
        if self._stall_left:
            self._stall_left -= 1
            f.packets_stalled += 1
            f.samples_stalled += spp
            f.stall_lengths[-1] += 1
            if not self._stall_left:
                self._run = self.max_fault_run   # the packet after a stall is delivered
            return []
        fault = not clean and self._run < self.max_fault_run
        if self._burst_left:
            if fault:
                self._burst_left -= 1
                self._drop(position, spp)
                f.burst_lengths[-1] += 1
                return []
            self._burst_left = 0
        if fault and self.burst and self.rng.random() < self.burst:
            lo, hi = self.burst_length
            length = int(self.rng.integers(lo, hi + 1))
            length = min(length, self.max_fault_run - self._run)
            f.bursts += 1
            f.burst_positions.append(position)
            f.burst_lengths.append(1)
            self._burst_left = length - 1
            self._drop(position, spp)
            return []
        if fault and self.loss and self.rng.random() < self.loss:
            self._drop(position, spp)
            return []
        if fault and self.malformed and self.rng.random() < self.malformed:
            self._run += 1
            f.positions.append(position)
            f.packets_malformed += 1
            f.samples_dropped += spp
            last_char, last = out[-1]
            return [*out[:-1], (last_char, self.protocol.corrupt(last))]
        if fault and self.duplicate and self.rng.random() < self.duplicate:
            self._run = 0
            f.packets_sent += 1
            f.packets_duplicated += 1
            f.duplicate_positions.append(position)
            return out + out
        if fault and self._run + 1 < self.max_fault_run and self.reorder \
                and self.rng.random() < self.reorder:
            later, _ = self._make()
            self._run = 0
            f.packets_sent += 2
            f.packets_reordered += 1
            f.samples_reordered += spp
            f.reorder_positions.append(position)
            return later + out
        self._run = 0
        f.packets_sent += 1
        return out
