"""What every decoder returns, and small helpers shared by the decoders."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from emg_pipeline.errors import DecodeError, ProfileError
from emg_pipeline.profiles import FirmwareProfile, normalize_uuid

__all__ = ["DecodedPacket", "Decoder", "PacketKind", "SeqUnit"]

#: What a counter counts.
SeqUnit = Literal["packet", "sample"]


class PacketKind(enum.StrEnum):
    """What a notification carried."""

    #: EMG samples (``samples`` has one row per sample)
    EMG = "emg"
    #: part of a longer frame; nothing to emit yet
    FRAGMENT = "fragment"
    #: an electrode impedance reading (``value`` in ohms, ``code`` names the channel)
    IMPEDANCE = "impedance"
    #: a text message from the board (``text``)
    MESSAGE = "message"
    #: a packet the profile knows but that carries no EMG (IMU, status...; ``code``)
    OTHER = "other"


@dataclass(frozen=True)
class DecodedPacket:
    """The content of one notification.

    Parameters
    ----------
    samples : ndarray, shape (n_samples, n_channels)
        float64, read-only; in µV when the profile has a scale, else counts.
        Empty (0 rows) for every kind but ``EMG``.
    seq : int or None
        The board's counter for this packet (folded into ``0..modulus-1``),
        or ``None`` when the packet has none.
    seq_unit : {'packet', 'sample'} or None
        What ``seq`` counts.
    span : int
        Counter ticks this packet covers (what to add to ``seq`` to get the
        next packet's value); 0 when ``seq`` is ``None``.
    kind : PacketKind
        What the packet carried.
    code : int or None
        Board-specific packet code for non-EMG packets (packet ID, data type).
    value : float or None
        Numeric payload of non-EMG packets (impedance in ohms).
    text : str or None
        Text payload of ``MESSAGE`` packets.
    """

    samples: np.ndarray
    seq: int | None = None
    seq_unit: SeqUnit | None = None
    span: int = 0
    kind: PacketKind = PacketKind.EMG
    code: int | None = None
    value: float | None = None
    text: str | None = field(default=None)

    @property
    def n_samples(self) -> int:
        """Number of sample rows."""
        return int(self.samples.shape[0])


class Decoder(Protocol):
    """The protocol every decoder follows (see :func:`make_decoder`)."""

    profile: FirmwareProfile

    def decode(self, packet: bytes, characteristic: str | None = None) -> DecodedPacket:
        """Decode one notification; raise :class:`DecodeError` if it cannot be."""
        ...

    def reset(self) -> None:
        """Forget any state carried between packets (call after a reconnect)."""
        ...


def field_error(label: str, fieldname: str, reason: str) -> ProfileError:
    """The error of a profile field its decoder cannot work with."""
    return ProfileError(label, f"field {fieldname!r}: {reason}")


def as_bytes(packet: bytes | bytearray | memoryview) -> bytes:
    """Copy the notification at the boundary (bleak hands out a bytearray)."""
    return bytes(packet)


def readonly(array: np.ndarray) -> np.ndarray:
    """Mark an array read-only so a frozen packet cannot be changed in place."""
    array.flags.writeable = False
    return array


def empty_samples(n_channels: int) -> np.ndarray:
    """A read-only (0, n_channels) float64 array."""
    return readonly(np.zeros((0, n_channels), dtype=np.float64))


def to_output(counts: np.ndarray, profile: FirmwareProfile) -> np.ndarray:
    """Counts (any integer array) to float64 output, scaled to µV when calibrated."""
    out = counts.astype(np.float64)
    scale = profile.scale
    if scale.uv_per_count is not None:
        out = (out - scale.zero) * scale.uv_per_count
    return readonly(out)


def non_emg(profile: FirmwareProfile, kind: PacketKind, *, code: int | None = None,
            value: float | None = None, text: str | None = None) -> DecodedPacket:
    """A packet with no samples."""
    return DecodedPacket(samples=empty_samples(profile.n_channels), kind=kind, code=code,
                         value=value, text=text)


def bit_fields(data: np.ndarray, width: int, count: int) -> np.ndarray:
    """Read ``count`` consecutive MSB-first unsigned ``width``-bit fields.

    ``data`` is a uint8 array (or a 2-D array of rows, fields read per row).
    Returns int64 values of shape ``(..., count)``.
    """
    bits = np.unpackbits(data, axis=-1)[..., : width * count]
    fields = bits.reshape(*bits.shape[:-1], count, width).astype(np.int64)
    weights = np.left_shift(np.int64(1), np.arange(width - 1, -1, -1, dtype=np.int64))
    return fields @ weights


def twos_complement(values: np.ndarray, width: int) -> np.ndarray:
    """Interpret unsigned ``width``-bit int64 values as two's complement."""
    signed: np.ndarray = values - ((values >> (width - 1)) & 1) * (np.int64(1) << width)
    return signed


def characteristic_index(profile: FirmwareProfile, characteristic: str | None,
                         packet: bytes) -> int | None:
    """Index of ``characteristic`` in the profile's notify list (None if not given)."""
    if characteristic is None:
        return None
    try:
        uuid = normalize_uuid(characteristic)
    except ValueError:
        raise DecodeError(f"not a characteristic UUID: {characteristic!r}", packet) from None
    try:
        return profile.gatt.notify.index(uuid)
    except ValueError:
        raise DecodeError(f"characteristic {uuid} is not a notify characteristic of profile "
                          f"{profile.name!r}", packet) from None
