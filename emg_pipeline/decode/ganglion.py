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
the chain. Before any raw packet the chain starts from zero: only the DC level
is then unknown, which the high-pass removes. A lost packet leaves a DC step
in firmware 2 for the same reason.

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
    non_emg,
    to_output,
    twos_complement,
)
from emg_pipeline.errors import DecodeError, ProfileError
from emg_pipeline.profiles import FirmwareProfile

__all__ = ["GanglionDecoder"]

_PACKET_BYTES = 20
_MAX_MESSAGE_CHARS = 4096


class GanglionDecoder:
    """Decode Ganglion notifications.

    Parameters
    ----------
    profile : FirmwareProfile
        A ganglion profile with a variant chosen (``params["firmware"]`` is 2 or 3).

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
        self._last = np.zeros(4, dtype=np.int64)
        self._message: list[str] = []

    def reset(self) -> None:
        """Restart the delta chain at zero and drop any partial message."""
        self._last = np.zeros(4, dtype=np.int64)
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
            return DecodedPacket(samples=to_output(self._last.reshape(1, 4), self.profile),
                                 kind=PacketKind.EMG)
        if pid > 200:  # 201-207 were handled by decode()
            raise DecodeError(f"unexpected packet ID {pid} for firmware 2", data)
        width = 18 if pid <= 100 else 19
        deltas = (self._fields(data, width) & ~np.int64(1)).reshape(2, 4)
        counts = self._last - np.cumsum(deltas, axis=0)
        self._last = counts[1].copy()
        return self._emg(counts, (pid - 1) % 100)

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
