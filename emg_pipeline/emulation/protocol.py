"""What each board puts on the air: samples in, notification payloads out.

Written from the documented formats (see each decoder's module docstring and
the profile files), independently of the decoders: the emulator's bytes are
what the decoders are tested against end to end.

:class:`BoardProtocol` turns one packet's worth of ADC counts into the
notification(s) the board sends, each with the index of the notify
characteristic it goes out on (the Myo's four EMG characteristics take turns;
a gForce frame longer than the link allows is cut into fragments).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from emg_pipeline.errors import ConfigError
from emg_pipeline.profiles import FirmwareProfile

__all__ = ["BoardProtocol", "count_range", "counts_from_uv"]

_GANGLION_FW3_BITS = 18     # IDs 0-99: 18-bit fields, top bits of each 24-bit sample
_GANGLION_FW2_BITS = 19     # accelerometer off: IDs 101-200, 19-bit deltas
_GANGLION_FW2_RING = 100    # delta packets between two raw packets
_GANGLION_PACKET = 20
_GFORCE_EMG = 0x08
_GFORCE_FRAGMENT = 0xFF


def count_range(profile: FirmwareProfile) -> tuple[int, int]:
    """Smallest and largest ADC count a profile's sample format can hold.

    Examples
    --------
    >>> from emg_pipeline.profiles import load_profile
    >>> count_range(load_profile("myo")), count_range(load_profile("bitalino_ble"))
    ((-128, 127), (0, 1023))
    """
    bits = profile.format.bits
    if profile.format.signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def counts_from_uv(profile: FirmwareProfile, uv: np.ndarray,
                   counts_per_uv: float | None = None) -> np.ndarray:
    """Convert µV to the board's ADC counts, rounded and clipped to its range.

    Calibrated profiles invert their scale (``uv / uv_per_count + zero``).
    Unitless boards get ``counts_per_uv`` (default 1 for 8-bit boards, 8 for
    wider ones) around mid-scale (0 for signed formats).

    Parameters
    ----------
    profile : FirmwareProfile
    uv : ndarray, shape (n_samples, n_channels)
    counts_per_uv : float, optional
        Gain of an uncalibrated board.

    Returns
    -------
    ndarray of int64
    """
    lo, hi = count_range(profile)
    scale = profile.scale
    if scale.uv_per_count is not None:
        counts = np.asarray(uv, dtype=np.float64) / scale.uv_per_count + scale.zero
    else:
        gain = counts_per_uv if counts_per_uv is not None else (
            1.0 if profile.format.bits <= 8 else 8.0)
        mid = 0 if profile.format.signed else (lo + hi + 1) // 2
        counts = np.asarray(uv, dtype=np.float64) * gain + mid
    counts = np.nan_to_num(counts, nan=0.0)
    return np.clip(np.rint(counts), lo, hi).astype(np.int64)


def _crc4(frame: bytes) -> int:
    """CRC-4 (x^4 + x + 1) of a BITalino frame, CRC nibble taken as zero (long division)."""
    message = int.from_bytes(frame, "big") & ~0xF
    for bit in range(len(frame) * 8 - 1, 3, -1):
        if message & (1 << bit):
            message ^= 0b10011 << (bit - 4)
    return message & 0xF


class BoardProtocol:
    """The packet format of one board, from counts to notification payloads.

    Parameters
    ----------
    profile : FirmwareProfile
        Any bundled or user profile (its ``decoder`` chooses the format).
    max_payload : int, optional
        Largest notification the link carries (``ATT_MTU - 3``); default the
        profile's own. BITalino packs as many whole frames as fit; gForce cuts
        longer frames into fragments.
    firmware : int, optional
        Ganglion only: 2 (a raw packet, then 100 packets of 19-bit deltas,
        again and again) or 3 (18-bit absolute values). Default: the
        profile's chosen variant (``params["firmware"]``), else 3.

    Notes
    -----
    Firmware 2 is stateful like the board: each delta is taken from the
    previous sample, so packets must be encoded in order from packet 0 (a
    raw packet), lost ones included. Its packets do not all hold the same
    number of samples: see :meth:`samples_in_packet`.

    Examples
    --------
    >>> from emg_pipeline.profiles import load_profile
    >>> proto = BoardProtocol(load_profile("nus_emg"))
    >>> proto.samples_per_packet
    25
    >>> [(i, len(p)) for i, p in proto.encode(np.zeros((25, 2), np.int64), 7, 175)]
    [(0, 102)]
    """

    def __init__(self, profile: FirmwareProfile, max_payload: int | None = None, *,
                 firmware: int | None = None) -> None:
        self.profile = profile
        self.max_payload = profile.max_payload if max_payload is None else int(max_payload)
        if self.max_payload < 1:
            raise ConfigError("max_payload", max_payload, "a positive number of bytes")
        self.kind = profile.decoder
        encoder = _ENCODERS.get(self.kind)
        if encoder is None:
            raise ConfigError("decoder", self.kind,
                              f"a format the emulator encodes ({', '.join(sorted(_ENCODERS))})")
        self._encoder: _Encoder = encoder
        self.firmware: int | None = None
        if self.kind == "ganglion":
            chosen = profile.params.get("firmware", 3) if firmware is None else firmware
            if chosen not in (2, 3) or isinstance(chosen, bool):
                raise ConfigError("firmware", chosen, "2 or 3 (Ganglion firmware)")
            self.firmware = int(chosen)
        elif firmware is not None:
            raise ConfigError("firmware", firmware, "None: only the Ganglion has firmware variants")
        self._previous: np.ndarray | None = None   # firmware 2: last sample measured
        if self.kind == "bitalino":
            size = self._bitalino_frame_bytes()
            self.samples_per_packet = max(1, min(self.max_payload, 20) // size)
        elif self.kind in ("ascii",):
            self.samples_per_packet = 1
        else:
            self.samples_per_packet = profile.format.samples_per_packet

    @property
    def packets_per_second(self) -> float:
        """Notification rate (Ganglion firmware 2: 101 packets per 201 samples)."""
        if self.firmware == 2:
            return self.profile.fs * (_GANGLION_FW2_RING + 1) / (2 * _GANGLION_FW2_RING + 1)
        return self.profile.fs / self.samples_per_packet

    def samples_in_packet(self, packet_index: int) -> int:
        """Samples carried by packet ``packet_index`` (counted from the counter's start).

        Examples
        --------
        >>> from emg_pipeline.profiles import load_profile
        >>> proto = BoardProtocol(load_profile("ganglion"), firmware=2)
        >>> [proto.samples_in_packet(i) for i in (0, 1, 100, 101, 102)]
        [1, 2, 2, 1, 2]
        """
        if self.firmware == 2 and packet_index % (_GANGLION_FW2_RING + 1) == 0:
            return 1
        return self.samples_per_packet

    def sample_offset(self, packet_index: int) -> int:
        """Samples sent before packet ``packet_index`` since the counter started.

        Examples
        --------
        >>> from emg_pipeline.profiles import load_profile
        >>> proto = BoardProtocol(load_profile("ganglion"), firmware=2)
        >>> [proto.sample_offset(i) for i in (0, 1, 2, 101, 102)]
        [0, 1, 3, 201, 202]
        """
        if self.firmware == 2:
            cycles, ring = divmod(packet_index, _GANGLION_FW2_RING + 1)
            return cycles * (2 * _GANGLION_FW2_RING + 1) + (2 * ring - 1 if ring else 0)
        return packet_index * self.samples_per_packet

    def encode(self, counts: np.ndarray, packet_index: int,
               sample_index: int) -> list[tuple[int, bytes]]:
        """Notifications carrying one packet of samples.

        Parameters
        ----------
        counts : ndarray of int, shape (samples_in_packet(packet_index), n_channels)
            ADC counts within :func:`count_range`.
        packet_index : int
            Packets sent since the board's counter started.
        sample_index : int
            Samples sent since the board's counter started.

        Returns
        -------
        list of (int, bytes)
            Notify-characteristic index and payload, in sending order.
        """
        return self._encoder(self, np.asarray(counts, dtype=np.int64), packet_index,
                             sample_index)

    # ----------------------------------------------------------------- formats
    def _encode_layout(self, counts: np.ndarray, packet_index: int,
                       sample_index: int) -> list[tuple[int, bytes]]:
        prof, lay = self.profile, self.profile.layout
        if lay is None:  # pragma: no cover - validated profiles have one
            raise ConfigError("profile", prof.name, "a [layout] table")
        fmt = prof.format
        width = fmt.bytes_per_sample
        n, ch = counts.shape
        unsigned = counts & ((1 << (8 * width)) - 1)
        shifts = np.arange(width, dtype=np.int64) * 8
        if fmt.endianness == "big":
            shifts = shifts[::-1]
        value_bytes = ((unsigned[..., None] >> shifts) & 0xFF).astype(np.uint8)
        records = np.zeros((n, lay.record_bytes), dtype=np.uint8)
        records[:, lay.sample_offset: lay.sample_offset + ch * width] = value_bytes.reshape(n, -1)
        header = bytearray(lay.header_bytes)
        c = prof.counter
        if c is not None and c.offset is not None and c.bits is not None:
            nb = c.bits // 8
            if c.offset + nb <= lay.header_bytes:
                tick = packet_index if c.unit == "packet" else sample_index
                value = (tick * c.increment) % c.modulus
                header[c.offset: c.offset + nb] = value.to_bytes(nb, c.endianness)
            else:  # one counter per record (NPG Lite)
                at = c.offset - lay.header_bytes
                for i in range(n):
                    value = ((sample_index + i) * c.increment) % c.modulus
                    records[i, at: at + nb] = np.frombuffer(value.to_bytes(nb, c.endianness),
                                                            dtype=np.uint8)
        return [(0, bytes(header) + records.tobytes())]

    @staticmethod
    def _sign_marked(values: np.ndarray, shift: int, width: int) -> bytes:
        """Copy each value's sign into bit ``shift``, shift right, pack ``width``-bit fields."""
        sign = (values < 0).astype(np.int64)
        marked = (values & ~np.int64(1 << shift)) | (sign << shift)
        fields = (marked >> shift) & ((1 << width) - 1)
        bits = (fields[:, None] >> np.arange(width - 1, -1, -1)) & 1
        return np.packbits(bits.reshape(-1).astype(np.uint8)).tobytes()

    def _encode_ganglion(self, counts: np.ndarray, packet_index: int,
                         sample_index: int) -> list[tuple[int, bytes]]:
        if self.firmware == 2:
            return self._encode_ganglion_fw2(counts, packet_index)
        # Firmware 3, 18-bit mode: sign copied into bit 6, arithmetic shift right by 6.
        width = _GANGLION_FW3_BITS
        payload = self._sign_marked(counts.reshape(-1), 24 - width, width)   # 18 bytes
        pid = packet_index % 100
        packet = bytes([pid]) + payload + bytes(1)        # accelerometer byte: 0
        return [(0, packet[:_GANGLION_PACKET])]

    def _encode_ganglion_fw2(self, counts: np.ndarray,
                             packet_index: int) -> list[tuple[int, bytes]]:
        # Firmware 2, accelerometer off. Ring position 0: the raw packet, one sample as
        # 4 x 24-bit big-endian, padded with ASCII 'A'..'G'. Positions 1-100: ID = 100 +
        # position; delta = previous sample - this one (old minus new), its sign written
        # into bit 0, the low 19 bits sent (MSB first, sample A then B, channels 1-4).
        ring = packet_index % (_GANGLION_FW2_RING + 1)
        if ring == 0:
            sample = counts.reshape(-1)
            body = ((sample[:, None] >> np.array([16, 8, 0])) & 0xFF).astype(np.uint8)
            self._previous = sample.copy()
            return [(0, bytes([0]) + body.tobytes() + b"ABCDEFG")]
        if self._previous is None:
            raise ConfigError("packet_index", packet_index,
                              "0 first: a firmware-2 stream starts with its raw packet")
        chain = np.vstack([self._previous[None, :], counts.reshape(2, 4)])
        deltas = chain[:-1] - chain[1:]
        self._previous = chain[-1].copy()
        payload = self._sign_marked(deltas.reshape(-1), 0, _GANGLION_FW2_BITS)   # 19 bytes
        return [(0, bytes([_GANGLION_FW2_RING + ring]) + payload)]

    def _encode_myo(self, counts: np.ndarray, packet_index: int,
                    sample_index: int) -> list[tuple[int, bytes]]:
        payload = counts.astype(np.int8).tobytes()
        return [(packet_index % len(self.profile.gatt.notify), payload)]

    def _encode_gforce(self, counts: np.ndarray, packet_index: int,
                       sample_index: int) -> list[tuple[int, bytes]]:
        dtype = np.uint8 if self.profile.format.bits == 8 else np.dtype("<u2")
        frame = bytes([_GFORCE_EMG]) + counts.astype(dtype).tobytes()
        if len(frame) <= self.max_payload:
            return [(0, frame)]
        size = self.max_payload - 2
        parts = [frame[i: i + size] for i in range(0, len(frame), size)]
        last = len(parts) - 1
        return [(0, bytes([_GFORCE_FRAGMENT, last - i]) + part) for i, part in enumerate(parts)]

    def _bitalino_frame_bytes(self) -> int:
        n = self.profile.n_channels
        return (12 + 10 * min(n, 4) + 6 * max(n - 4, 0) + 7) // 8

    def _encode_bitalino(self, counts: np.ndarray, packet_index: int,
                         sample_index: int) -> list[tuple[int, bytes]]:
        n = self.profile.n_channels
        size = self._bitalino_frame_bytes()
        widths = [10] * min(n, 4) + [6] * max(n - 4, 0)
        frames = []
        for i, row in enumerate(counts.tolist()):
            seq = (sample_index + i) % 16
            acc, used = seq << 8, 12                      # seq | crc = 0 | digital = 0
            for value, w in zip(row, widths, strict=True):
                acc = (acc << w) | ((int(value) >> (10 - w)) & ((1 << w) - 1))
                used += w
            acc <<= size * 8 - used
            frame = bytearray(acc.to_bytes(size, "big")[::-1])   # sent least significant first
            frame[-1] |= _crc4(bytes(frame))
            frames.append(bytes(frame))
        return [(0, b"".join(frames))]

    def _encode_ascii(self, counts: np.ndarray, packet_index: int,
                      sample_index: int) -> list[tuple[int, bytes]]:
        return [(0, ",".join(str(int(v)) for v in row).encode("ascii"))
                for row in counts.tolist()]

    # --------------------------------------------------------------- faults
    def corrupt(self, payload: bytes) -> bytes:
        """A malformed version of ``payload`` that the board's decoder must reject."""
        if self.kind == "ascii":
            return b"?" + payload
        if len(payload) > 1:
            return payload[:-1]
        return b""


_Encoder = Callable[[BoardProtocol, np.ndarray, int, int], list[tuple[int, bytes]]]

#: How :meth:`BoardProtocol.encode` writes each format, by the profile's ``decoder`` name.
_ENCODERS: Mapping[str, _Encoder] = MappingProxyType({
    "layout": BoardProtocol._encode_layout,
    "ganglion": BoardProtocol._encode_ganglion,
    "myo": BoardProtocol._encode_myo,
    "gforce": BoardProtocol._encode_gforce,
    "bitalino": BoardProtocol._encode_bitalino,
    "ascii": BoardProtocol._encode_ascii,
})
