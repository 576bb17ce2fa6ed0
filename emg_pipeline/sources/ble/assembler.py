"""From notifications to :class:`~emg_pipeline.chunk.Chunk`s with the timeline kept right.

:class:`PacketAssembler` is the pure middle of the BLE source: no bleak, no
clock of its own. Each notification is pushed with the time it was received;
the assembler decodes it (:mod:`emg_pipeline.decode`), checks the board's
counter (:class:`~emg_pipeline.decode.SequenceTracker`) and places the samples
on the stream's sample clock. :meth:`PacketAssembler.drain` hands out the
chunks completed so far.

How the timeline is kept right:

* **Counter gap** (the board has a counter): the missing ticks are lost
  samples, counted exactly. The next chunk starts that many samples later
  (``first_index`` jumps ahead) and carries ``ChunkFlags.PACKET_LOSS``; the
  pipeline turns the jump into a bridged NaN gap.
* **No counter, or a counter that jumped too far to trust**: a silence longer
  than ``silence_gap_s`` between packets is measured on the receive clock and
  the samples it should have held are marked lost (an estimate, counted in
  ``StreamStats.estimated_lost_samples``).
* **Reconnect** (:meth:`PacketAssembler.reconnected`): the outage is measured by
  time; the counter's figure is used instead when it agrees with the clock
  (boards whose counter keeps running), so a board that restarts its counter
  on a new connection cannot fake a huge or a negative gap. The chunk carries
  ``ChunkFlags.RECONNECTED``. The outage starts when the last sample before
  it was due on the stream's own clock: the receive time of the least
  delayed packet of the last ``clock_window_s`` plus the samples since, or
  the last packet's receive time if earlier. A host that was lagging when
  the link dropped (its last packets received late) so does not shorten
  the outage.
* **Malformed packets** (:class:`~emg_pipeline.errors.DecodeError`) are counted
  and skipped; the next chunk carries ``ChunkFlags.MALFORMED``. Their samples
  show up as a counter gap like any lost packet.
* **Duplicate and late packets** (same or older counter) are counted and
  dropped (``StreamStats.duplicates``; the late ones also in
  ``StreamStats.late_packets``). A late packet comes after its successor,
  whose counter already marked it lost: it stays counted as lost, and its
  samples stay a gap (the timeline never moves back). So a swapped pair
  counts one lost packet and one late packet. A stateful decoder (delta
  coding) is put back as it was before a dropped packet, so a repeated
  packet cannot break its chain.
* **A board whose clock runs fast** (more packets than its nominal rate):
  the samples are placed by the counter, every one of them, none invented
  and none dropped; the timeline is the board's sample clock. Packets that
  arrive more than ``silence_gap_s`` ahead of the nominal rate since the
  connection's first packet (a fixed anchor: a host that lags only makes
  packets late, never early) are counted in ``StreamStats.early_packets``.
* **Delta-coded boards** (Ganglion firmware 2): after a lost packet the
  samples keep their shape but carry an unknown DC offset until the board's
  next uncompressed packet. They are delivered (the high-pass removes the
  offset) and counted in ``StreamStats.unanchored_samples``; the breaks in
  ``StreamStats.chain_breaks``.

A decoder whose counter differs from the profile's says so with a
``seq_modulus`` attribute (its ``seq`` then wraps there and counts the
``seq_unit`` of each packet); one that can tell exact samples from offset
ones has ``anchored`` and ``chain_breaks`` attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from emg_pipeline.chunk import Chunk, ChunkFlags
from emg_pipeline.decode import (
    DecodedPacket,
    Decoder,
    PacketKind,
    SeqEvent,
    SequenceTracker,
    make_decoder,
)
from emg_pipeline.errors import ConfigError, DecodeError
from emg_pipeline.profiles import FirmwareProfile

__all__ = ["PacketAssembler", "StreamStats"]


@dataclass
class StreamStats:
    """Counts kept while streaming from one board.

    Attributes
    ----------
    packets : int
        Notifications received (every kind).
    emg_packets : int
        Notifications that carried EMG samples and were accepted.
    samples : int
        Samples delivered (per channel).
    lost_packets : int
        Packets missing according to the board's counter (exact).
    lost_samples : int
        Samples marked as a gap, from the counter or from timing.
    estimated_lost_samples : int
        The part of ``lost_samples`` measured on the receive clock (no
        counter, an untrusted counter jump, or a reconnect).
    loss_events : int
        Gaps inserted.
    malformed : int
        Notifications that could not be decoded (skipped).
    duplicates : int
        Repeated or late packets (dropped).
    late_packets : int
        The part of ``duplicates`` that came after a later packet (already
        counted lost; dropped).
    early_packets : int
        Packets that came more than ``silence_gap_s`` ahead of the nominal
        rate, measured from the connection's first packet: the board's clock
        runs fast (its samples are still placed by its counter).
    counter_resets : int
        Counter jumps too large to be a gap (timeline kept by time).
    other_packets : int
        Non-EMG notifications (impedance, IMU, messages, frame fragments).
    reconnects : int
        Successful reconnections after a drop.
    unanchored_samples : int
        Samples of a delta-coded board decoded on a broken chain: right in
        shape and in place, but offset by an unknown constant (see
        :class:`~emg_pipeline.decode.ganglion.GanglionDecoder`).
    chain_breaks : int
        Times a delta-coded board's chain broke (lost packets), each leaving
        the samples unanchored until the next uncompressed packet.
    """

    packets: int = 0
    emg_packets: int = 0
    samples: int = 0
    lost_packets: int = 0
    lost_samples: int = 0
    estimated_lost_samples: int = 0
    loss_events: int = 0
    malformed: int = 0
    duplicates: int = 0
    late_packets: int = 0
    early_packets: int = 0
    counter_resets: int = 0
    other_packets: int = 0
    reconnects: int = 0
    unanchored_samples: int = 0
    chain_breaks: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dictionary (field order)."""
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}

    @property
    def loss_fraction(self) -> float:
        """Lost samples over all samples the board sent (``nan`` before any)."""
        total = self.samples + self.lost_samples
        return self.lost_samples / total if total else math.nan


class _Segment:
    """Contiguous samples waiting to become one chunk."""

    __slots__ = ("first_index", "flags", "lost", "parts")

    def __init__(self, first_index: int, flags: ChunkFlags, lost: int) -> None:
        self.first_index = first_index
        self.flags = flags
        self.lost = lost
        self.parts: list[np.ndarray] = []


class PacketAssembler:
    """Decode notifications and place their samples on the stream's sample clock.

    Parameters
    ----------
    profile : FirmwareProfile
        The board's profile (with its variant chosen, if it has variants).
    decoder : Decoder, optional
        Decoder to use (default: ``make_decoder(profile)``).
    time_scale : float
        Board seconds per receive-clock second: 1 for real boards; an emulated
        board paced ``k`` times faster than real time needs ``k``. Used only to
        turn receive-time silences into sample counts.
    silence_gap_s : float
        A pause between packets longer than this (in board time) is taken as
        lost packets when the counter cannot tell (default 1 s). Shorter
        losses of a board without a counter cannot be told from delivery
        jitter and go unnoticed.

    Examples
    --------
    >>> from emg_pipeline.profiles import load_profile
    >>> asm = PacketAssembler(load_profile("nus_emg"))
    >>> body = bytes(100)                       # 25 samples x 2 channels of int16
    >>> for seq, t in [(0, 0.000), (1, 0.025), (3, 0.075)]:  # packet 2 lost
    ...     asm.push(seq.to_bytes(2, "little") + body, None, t)
    >>> [(c.first_index, c.n_samples, c.lost_samples) for c in asm.drain()]
    [(0, 50, 0), (75, 25, 25)]
    >>> asm.stats.lost_packets, asm.stats.lost_samples
    (1, 25)
    """

    def __init__(self, profile: FirmwareProfile, decoder: Decoder | None = None, *,
                 time_scale: float = 1.0, silence_gap_s: float = 1.0) -> None:
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise ConfigError("time_scale", time_scale, "a positive number")
        if not (math.isfinite(silence_gap_s) and silence_gap_s > 0):
            raise ConfigError("silence_gap_s", silence_gap_s, "a positive number of seconds")
        self.profile = profile
        self.decoder = decoder if decoder is not None else make_decoder(profile)
        self.time_scale = float(time_scale)
        self.silence_gap_s = float(silence_gap_s)
        self.fs = profile.fs
        self.channels = profile.channels
        counter = profile.counter
        self._tracker = SequenceTracker.from_profile(profile) if counter is not None else None
        self._own_counter = False
        modulus = getattr(self.decoder, "seq_modulus", None)
        if counter is not None and isinstance(modulus, int) and modulus >= 2:
            # the decoder's own counter (Ganglion firmware 2 counts samples per cycle)
            per_packet = max(1, min(profile.format.samples_per_packet, modulus - 1))
            self._tracker = SequenceTracker(modulus, per_packet)
            self._own_counter = True
        self.stats = StreamStats()
        self._next_index = 0
        self._t_last: float | None = None
        self._pending_flags = ChunkFlags.NONE
        self._reconnected = False
        self._segments: list[_Segment] = []
        self._open: _Segment | None = None
        # delta-coded decoders keep state a dropped packet must not change
        self._stateful = getattr(self.decoder, "chain_breaks", None) is not None
        # the connection's first packet: (receive time, sample index after it)
        self._anchor: tuple[float, int] | None = None
        # least delay seen (board seconds of receive time minus sample clock), per window
        self._floor: float | None = None
        self._floor_previous: float | None = None
        self._floor_start = 0.0

    # ------------------------------------------------------------------ input
    @property
    def next_index(self) -> int:
        """Index on the sample clock of the next sample to arrive."""
        return self._next_index

    def push(self, payload: bytes, characteristic: str | None, t_rx: float) -> None:
        """Account for one notification.

        Parameters
        ----------
        payload : bytes
            The notification's bytes.
        characteristic : str or None
            UUID of the characteristic it arrived on.
        t_rx : float
            When it was received, in seconds on any monotonic clock.
        """
        self.stats.packets += 1
        saved = dict(vars(self.decoder)) if self._stateful else None
        try:
            packet = self.decoder.decode(payload, characteristic=characteristic)
        except DecodeError:
            self.stats.malformed += 1
            self._pending_flags |= ChunkFlags.MALFORMED
            return
        if packet.kind is not PacketKind.EMG or packet.n_samples == 0:
            self.stats.other_packets += 1
            return
        lost = self._account(packet, t_rx)
        if lost is None:  # duplicate or late: dropped, and the decoder as it was
            if saved is not None:
                vars(self.decoder).update(saved)
            return
        if not getattr(self.decoder, "anchored", True):
            self.stats.unanchored_samples += packet.n_samples
        self.stats.chain_breaks = int(getattr(self.decoder, "chain_breaks", 0))
        self._place(packet.samples, lost)
        self.stats.emg_packets += 1
        self._t_last = t_rx
        self._check_rate(t_rx)
        self._track_delay(t_rx)

    def reconnected(self) -> None:
        """Say that the link was re-established: the next packet starts after an outage."""
        self._reconnected = True
        self.stats.reconnects += 1
        self.decoder.reset()
        self._anchor = None

    # ---------------------------------------------------------------- output
    def drain(self) -> list[Chunk]:
        """Chunks completed since the last call (the open run of samples included).

        Returns
        -------
        list of Chunk
            In stream order; ``first_index`` of each is where its samples sit
            on the sample clock, after any gap.
        """
        if self._open is not None and self._open.parts:
            self._segments.append(self._open)
            self._open = None
        out = []
        for seg in self._segments:
            samples = seg.parts[0] if len(seg.parts) == 1 else np.concatenate(seg.parts)
            out.append(Chunk(samples=samples, fs=self.fs, first_index=seg.first_index,
                             flags=seg.flags, lost_samples=seg.lost, channels=self.channels))
        self._segments = []
        return out

    # -------------------------------------------------------------- internals
    def _account(self, packet: DecodedPacket, t_rx: float) -> int | None:
        """Samples lost just before ``packet`` (None: drop the packet)."""
        n = packet.n_samples
        by_time = self._lost_by_time(t_rx, n)
        tracker = self._tracker
        if self._reconnected:
            self._reconnected = False
            self._pending_flags |= ChunkFlags.RECONNECTED
            self._floor = self._floor_previous = None   # a new connection, new delays
            by_counter = None
            if tracker is not None and packet.seq is not None:
                by_counter = self._counter_gap(packet)
                tracker.reset()
                tracker.update(packet.seq, packet.span or None)
            if by_counter is not None and by_time is not None and \
                    abs(by_counter[1] - by_time) <= self._tolerance(n):
                self.stats.lost_packets += by_counter[0]
                return by_counter[1]
            return self._estimated(by_time or 0)
        if tracker is None or packet.seq is None:
            return self._estimated(by_time or 0) if by_time and by_time > 0 else 0
        status = tracker.update(packet.seq, packet.span or None)
        if not status.accepted:
            self.stats.duplicates += 1
            if status.event is SeqEvent.OUT_OF_ORDER:
                self.stats.late_packets += 1
            return None
        if status.event is SeqEvent.GAP and status.lost:
            ticks = status.lost
            samples = self._ticks_to_samples(ticks, packet)
            self.stats.lost_packets += self._ticks_to_packets(ticks, packet)
            return samples
        if status.event is SeqEvent.RESET:
            self.stats.counter_resets += 1
            self._anchor = None   # the timeline is kept by time here: measure afresh
            return self._estimated(by_time or 0)
        return 0

    def _counter_gap(self, packet: DecodedPacket) -> tuple[int, int] | None:
        """(packets, samples) the counter says were missed across an outage."""
        tracker = self._tracker
        expected = None if tracker is None else tracker.expected
        if tracker is None or expected is None or packet.seq is None:
            return None
        ticks = (packet.seq - expected) % tracker.modulus
        return self._ticks_to_packets(ticks, packet), self._ticks_to_samples(ticks, packet)

    def _ticks_to_samples(self, ticks: int, packet: DecodedPacket) -> int:
        counter = self.profile.counter
        if counter is None:
            return 0
        if self._own_counter:
            return ticks if packet.seq_unit == "sample" else \
                ticks * self.profile.format.samples_per_packet
        if counter.unit == "sample":
            return ticks // counter.increment
        return ticks // counter.increment * self.profile.format.samples_per_packet

    def _ticks_to_packets(self, ticks: int, packet: DecodedPacket) -> int:
        span = packet.span or 1
        counter = self.profile.counter
        if self._own_counter:
            if packet.seq_unit != "sample":
                return ticks
            per_packet = self.profile.format.samples_per_packet   # nominal: some packets hold fewer
            return -(-ticks // per_packet)
        if counter is not None and counter.unit == "packet":
            return ticks // counter.increment
        return -(-ticks // span)

    def _lost_by_time(self, t_rx: float, n_new: int) -> int | None:
        """Samples that fit in the silence before this packet (None for the first packet)."""
        if self._t_last is None:
            return None
        silence_s = (t_rx - self._t_last) * self.time_scale
        if self._reconnected:
            silence_s = t_rx * self.time_scale - self._end_of_stream_s()
        elif silence_s <= self.silence_gap_s:
            return 0
        return max(0, round(silence_s * self.fs) - n_new)

    #: length of the windows the least delay is tracked over (board seconds)
    clock_window_s = 10.0

    def _track_delay(self, t_rx: float) -> None:
        """Keep the least delay of recent packets (receive time minus sample clock)."""
        t = t_rx * self.time_scale
        delay = t - self._next_index / self.fs
        if self._floor is None or t - self._floor_start > self.clock_window_s:
            self._floor_previous = self._floor
            self._floor = delay
            self._floor_start = t
        elif delay < self._floor:
            self._floor = delay

    def _end_of_stream_s(self) -> float:
        """When (board seconds of receive time) the last sample placed was due."""
        last = (self._t_last or 0.0) * self.time_scale
        floors = [f for f in (self._floor, self._floor_previous) if f is not None]
        if not floors:
            return last
        return min(last, min(floors) + self._next_index / self.fs)

    def _check_rate(self, t_rx: float) -> None:
        """Count a packet that came early for the nominal rate (a fast board clock)."""
        anchor = self._anchor
        if anchor is None:
            self._anchor = (t_rx, self._next_index)
            return
        board_s = (self._next_index - anchor[1]) / self.fs
        host_s = (t_rx - anchor[0]) * self.time_scale
        if board_s - host_s > self.silence_gap_s:
            self.stats.early_packets += 1

    def _tolerance(self, n_new: int) -> int:
        return max(round(self.silence_gap_s * self.fs), 2 * n_new)

    def _estimated(self, samples: int) -> int:
        self.stats.estimated_lost_samples += samples
        return samples

    def _place(self, samples: np.ndarray, lost: int) -> None:
        if lost > 0:
            self.stats.lost_samples += lost
            self.stats.loss_events += 1
            self._pending_flags |= ChunkFlags.PACKET_LOSS
        if lost > 0 or self._pending_flags or self._open is None:
            if self._open is not None and self._open.parts:
                self._segments.append(self._open)
            self._next_index += lost
            self._open = _Segment(self._next_index, self._pending_flags, lost)
            self._pending_flags = ChunkFlags.NONE
        self._open.parts.append(samples)
        self._next_index += samples.shape[0]
        self.stats.samples += samples.shape[0]
