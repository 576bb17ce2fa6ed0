"""OpenBCI Ganglion packets (firmware 2 deltas and firmware 3 absolute values).

Packet = 20 bytes: byte 0 is the packet ID, bytes 1-19 the payload.
In the 18- and 19-bit modes, bytes 1-18 (or 1-19) form one MSB-first bit
stream of 8 fields: sample A channels 1-4, then sample B channels 1-4.

The firmware writes each value's sign into its least significant bit (the
sign bit is copied to bit 6 / bit 5 before the arithmetic shift right by 6 / 5),
so a field is read as N-bit two's complement with the LSB cleared. In firmware
3 that is the top N bits of the 24-bit sample: shift left by 24 - N. In
firmware 2 the field is a delta to *subtract*: A = previous B - delta[0:4],
B = A - delta[4:8]; a raw packet (ID 0, four 24-bit big-endian values) restarts
the chain. The firmware sends one raw packet, then IDs 1-100 (or 101-200),
then a raw packet again: a cycle of 101 packets holding 201 samples.

Firmware 2 counter: so that a lost raw packet (one sample) is counted like
any other, the decoder reports ``seq`` in samples within the 201-sample cycle
(raw packet: 0, span 1; ID ``k``: ``2k - 1``, span 2; see
:attr:`GanglionDecoder.seq_modulus`), not the profile's packet counter.

Delta chain: a sample is only known exactly while every packet since the last
raw packet arrived. Before the first raw packet (the chain starts from zero)
and after a lost packet, the samples keep their shape but carry an unknown DC
offset (the sum of the missing deltas) until the next raw packet re-anchors
the chain. :attr:`GanglionDecoder.anchored` tells which, and
:attr:`GanglionDecoder.chain_breaks` counts the breaks.

IDs 201-205 carry an impedance (ASCII digits ended by ``Z``, ohms, for
channels 1-4 and the reference); 206 is part of an ASCII message and 207 its
last part.
"""

from __future__ import annotations

import numpy as np

from emg_pipeline.decode.base import (
    DecodedPacket,
    PacketKind,
    as_bytes,
    bit_fields,
    field_error,
    non_emg,
    to_output,
    twos_complement,
)
from emg_pipeline.errors import DecodeError, ProfileError
from emg_pipeline.profiles import FirmwareProfile

__all__ = ["GanglionDecoder"]

_PACKET_BYTES = 20
_MAX_MESSAGE_CHARS = 4096
_FW2_RING = 100                      # delta packets per raw packet
_FW2_CYCLE = 2 * _FW2_RING + 1       # samples per firmware-2 cycle


class GanglionDecoder:
    """Decode Ganglion notifications.

    Parameters
    ----------
    profile : FirmwareProfile
        A ganglion profile with a variant chosen (``params["firmware"]`` is 2 or 3).

    Attributes
    ----------
    seq_modulus : int or None
        Firmware 2 only: the decoder's ``seq`` counts samples and wraps at
        201 (one raw sample plus 100 delta packets of two); ``None`` for
        firmware 3, whose ``seq`` is the profile's packet counter.
    anchored : bool
        Whether the samples of the last EMG packet are exact: always for
        firmware 3; for firmware 2, whether the delta chain was anchored on a
        raw packet and no packet went missing since.
    chain_breaks : int
        Firmware 2: times the delta chain was found broken (a packet ID out
        of order, i.e. lost packets) since construction.

    Notes
    -----
    Stateful: the firmware 2 delta chain and the ASCII message being assembled.
    Call :meth:`reset` after a reconnect (the board resets on connect).
    """

    def __init__(self, profile: FirmwareProfile) -> None:
        firmware = profile.params.get("firmware")
        if firmware not in (2, 3):
            raise ProfileError(profile.name, "params.firmware must be 2 or 3 (choose a variant)")
        self.profile = profile
        self.firmware = int(firmware)
        self.seq_modulus: int | None = _FW2_CYCLE if self.firmware == 2 else None
        self.anchored = self.firmware == 3
        self.chain_breaks = 0
        self._last = np.zeros(4, dtype=np.int64)
        self._next_ring: int | None = None   # ring position the next fw-2 packet should have
        self._message: list[str] = []

    @staticmethod
    def check_profile(profile: FirmwareProfile, label: str) -> None:
        """Check the format (4 channels, 2 samples of 24 bits), the MTU and the packet ID counter.

        Arguments and error as for :func:`~emg_pipeline.decode.factory.check_profile`.
        """
        fmt, counter = profile.format, profile.counter
        if (profile.n_channels != 4 or fmt.samples_per_packet != 2 or fmt.bits != 24
                or not fmt.signed):
            raise field_error(label, "format", "the ganglion decoder needs 4 channels, 2 samples "
                                               "per packet, 24-bit signed values")
        if profile.max_payload < _PACKET_BYTES:
            raise field_error(label, "mtu", "Ganglion packets are 20 bytes")
        if counter is not None and (counter.unit != "packet" or counter.modulus != 100):
            raise field_error(label, "counter", "the Ganglion packet ID counts packets modulo 100")

    def reset(self) -> None:
        """Restart the delta chain at zero (unanchored) and drop any partial message."""
        self._last = np.zeros(4, dtype=np.int64)
        self._next_ring = None
        self.anchored = self.firmware == 3
        self._message = []

    def decode(self, packet: bytes, characteristic: str | None = None) -> DecodedPacket:
        """Decode one notification.

        Parameters
        ----------
        packet : bytes
            The notification payload.
        characteristic : str, optional
            Ignored (one data characteristic).

        Returns
        -------
        DecodedPacket
            Two samples for data packets (one for a firmware-2 raw packet),
            or an impedance / message / fragment packet.

        Raises
        ------
        DecodeError
            Wrong length, unknown ID, or unreadable ASCII payload.
        """
        data = as_bytes(packet)
        if not data:
            raise DecodeError("empty packet", data)
        pid = data[0]
        if 201 <= pid <= 205:
            return self._impedance(data)
        if pid in (206, 207):
            return self._message_part(data)
        if len(data) != _PACKET_BYTES:
            raise DecodeError(f"data packets are {_PACKET_BYTES} bytes, got {len(data)}", data)
        if self.firmware == 3:
            return self._absolute(data, pid)
        return self._delta(data, pid)

    # firmware 3 ------------------------------------------------------------------------
    def _absolute(self, data: bytes, pid: int) -> DecodedPacket:
        if pid >= 200:
            raise DecodeError(f"unexpected packet ID {pid} for firmware 3", data)
        width = 18 if pid < 100 else 19
        fields = self._fields(data, width)
        counts = (fields & ~np.int64(1)) << (24 - width)
        return self._emg(counts.reshape(2, 4), pid % 100)

    # firmware 2 ------------------------------------------------------------------------
    def _delta(self, data: bytes, pid: int) -> DecodedPacket:
        raw = np.frombuffer(data, dtype=np.uint8)
        if pid == 0:
            values = raw[1:13].reshape(4, 3).astype(np.int64) @ np.array(
                [1 << 16, 1 << 8, 1], dtype=np.int64)
            self._last = twos_complement(values, 24)
            self._next_ring = 1
            self.anchored = True
            return DecodedPacket(samples=to_output(self._last.reshape(1, 4), self.profile),
                                 seq=0, seq_unit="sample", span=1, kind=PacketKind.EMG)
        if pid > 200:  # 201-207 were handled by decode()
            raise DecodeError(f"unexpected packet ID {pid} for firmware 2", data)
        width = 18 if pid <= _FW2_RING else 19
        ring = pid if pid <= _FW2_RING else pid - _FW2_RING
        if ring != self._next_ring:
            if self.anchored:
                self.chain_breaks += 1
            self.anchored = False
        self._next_ring = ring + 1 if ring < _FW2_RING else 0
        deltas = (self._fields(data, width) & ~np.int64(1)).reshape(2, 4)
        counts = self._last - np.cumsum(deltas, axis=0)
        self._last = counts[1].copy()
        return DecodedPacket(samples=to_output(counts, self.profile), seq=2 * ring - 1,
                             seq_unit="sample", span=2)

    # shared ----------------------------------------------------------------------------
    @staticmethod
    def _fields(data: bytes, width: int) -> np.ndarray:
        payload = np.frombuffer(data, dtype=np.uint8)[1:]
        return twos_complement(bit_fields(payload, width, 8), width)

    def _emg(self, counts: np.ndarray, seq: int) -> DecodedPacket:
        counter = self.profile.counter
        if counter is None:
            return DecodedPacket(samples=to_output(counts, self.profile))
        return DecodedPacket(samples=to_output(counts, self.profile), seq=seq,
                             seq_unit=counter.unit, span=counter.increment)

    def _impedance(self, data: bytes) -> DecodedPacket:
        body = data[1:]
        end = body.find(b"Z")
        digits = body if end < 0 else body[:end]
        if end < 0 or not digits or not digits.isdigit() or len(digits) > 18:
            raise DecodeError("impedance packet is not ASCII digits ended by 'Z'", data)
        return non_emg(self.profile, PacketKind.IMPEDANCE, code=data[0], value=float(int(digits)))

    def _message_part(self, data: bytes) -> DecodedPacket:
        part = data[1:].rstrip(b"\x00").decode("ascii", "replace")
        if sum(map(len, self._message)) + len(part) > _MAX_MESSAGE_CHARS:
            self._message = []
            raise DecodeError(f"ASCII message longer than {_MAX_MESSAGE_CHARS} characters", data)
        self._message.append(part)
        if data[0] == 206:
            return non_emg(self.profile, PacketKind.FRAGMENT, code=206)
        text = "".join(self._message)
        self._message = []
        return non_emg(self.profile, PacketKind.MESSAGE, code=207, text=text)
