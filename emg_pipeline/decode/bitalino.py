"""BITalino frames (the serial API's frames, carried in BLE notifications).

A frame for ``n`` acquired analog channels is ``frame_bytes(n)`` bytes. Read
with its bytes in reverse order, it is an MSB-first bit stream::

    seq (4) | CRC4 (4) | digital I1-I4 (4) | A1 (10) | A2 (10) | A3 (10) | A4 (10) | A5 (6) | A6 (6)

keeping only the first ``n`` analog fields (the acquired channels, in channel
order). The CRC is CRC-4 with polynomial x^4 + x + 1 over every nibble of the
frame with the CRC nibble taken as zero. 6-bit channels (5th and 6th acquired)
are multiplied by 16 so that one 10-bit scale applies to all channels.

Each notification must hold whole frames; any frame with a bad CRC makes the
whole notification a :class:`DecodeError`. ``seq`` is the first frame's
sequence number (mod 16, one per sample).
"""

from __future__ import annotations

import numpy as np

from emg_pipeline.decode.base import DecodedPacket, as_bytes, field_error, to_output
from emg_pipeline.errors import DecodeError
from emg_pipeline.profiles import FirmwareProfile

__all__ = ["BitalinoDecoder", "crc4_table", "frame_bytes"]


def frame_bytes(n_channels: int) -> int:
    """Bytes in one frame with ``n_channels`` (1-6) analog channels.

    Examples
    --------
    >>> [frame_bytes(n) for n in range(1, 7)]
    [3, 4, 6, 7, 8, 8]
    """
    bits = 12 + 10 * min(n_channels, 4) + 6 * max(n_channels - 4, 0)
    return (bits + 7) // 8


def crc4_table() -> np.ndarray:
    """``table[c]`` = remainder of ``c * x^4`` modulo ``x^4 + x + 1`` (uint8, 16 entries)."""
    table = np.zeros(16, dtype=np.uint8)
    for c in range(16):
        value = c << 4
        for bit in range(7, 3, -1):
            if value & (1 << bit):
                value ^= 0b10011 << (bit - 4)
        table[c] = value
    return table


class BitalinoDecoder:
    """Decode BITalino notifications (stateless).

    Parameters
    ----------
    profile : FirmwareProfile
        A profile with ``decoder = "bitalino"``; its channels are the acquired
        analog channels, in order.
    """

    def __init__(self, profile: FirmwareProfile) -> None:
        self.profile = profile
        n = profile.n_channels
        self._frame = frame_bytes(n)
        self._widths = [10] * min(n, 4) + [6] * max(n - 4, 0)
        self._table = crc4_table()

    @staticmethod
    def check_profile(profile: FirmwareProfile, label: str) -> None:
        """Check the format (1-6 unsigned 10-bit channels), the MTU and the frame sequence.

        Arguments and error as for :func:`~emg_pipeline.decode.factory.check_profile`.
        """
        fmt, n, counter = profile.format, profile.n_channels, profile.counter
        if not 1 <= n <= 6 or fmt.bits != 10 or fmt.signed:
            raise field_error(label, "format",
                              "the bitalino decoder reads 1-6 unsigned 10-bit channels")
        if frame_bytes(n) > profile.max_payload:
            raise field_error(label, "mtu", "one BITalino frame does not fit in mtu - 3")
        if counter is not None and (counter.unit != "sample" or counter.modulus != 16):
            raise field_error(label, "counter",
                              "the BITalino frame sequence counts samples modulo 16")

    def reset(self) -> None:
        """Nothing to forget: the decoder is stateless."""

    def decode(self, packet: bytes, characteristic: str | None = None) -> DecodedPacket:
        """Decode one notification.

        Parameters
        ----------
        packet : bytes
            One or more whole frames.
        characteristic : str, optional
            Ignored (one data characteristic).

        Returns
        -------
        DecodedPacket
            One sample row per frame.

        Raises
        ------
        DecodeError
            Not a whole number of frames, or a CRC mismatch.
        """
        data = as_bytes(packet)
        size = self._frame
        if not data or len(data) % size:
            raise DecodeError(f"expected whole {size}-byte frames, got {len(data)} bytes", data)
        frames = np.frombuffer(data, dtype=np.uint8).reshape(-1, size)
        bad = np.flatnonzero(self._crc(frames) != (frames[:, -1] & 0x0F))
        if bad.size:
            raise DecodeError(f"CRC4 mismatch in frame {int(bad[0])} of {len(frames)}", data)
        bits = np.unpackbits(frames[:, ::-1], axis=1).astype(np.int64)
        columns = []
        start = 12
        for width in self._widths:  # at most 6 channels
            weights = np.left_shift(np.int64(1), np.arange(width - 1, -1, -1, dtype=np.int64))
            columns.append((bits[:, start:start + width] @ weights) << (10 - width))
            start += width
        counts = np.stack(columns, axis=1)
        samples = to_output(counts, self.profile)
        counter = self.profile.counter
        if counter is None:
            return DecodedPacket(samples=samples)
        seq = int(frames[0, -1] >> 4)
        return DecodedPacket(samples=samples, seq=seq, seq_unit=counter.unit,
                             span=len(frames) * counter.increment)

    def _crc(self, frames: np.ndarray) -> np.ndarray:
        table = self._table
        crc = np.zeros(len(frames), dtype=np.uint8)
        for j in range(frames.shape[1] - 1):  # loop over byte positions, vectorised over frames
            column = frames[:, j]
            crc = table[crc] ^ (column >> 4)
            crc = table[crc] ^ (column & 0x0F)
        crc = table[crc] ^ (frames[:, -1] >> 4)
        remainder: np.ndarray = table[crc]
        return remainder
