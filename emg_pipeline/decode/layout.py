"""The declarative decoder: packets described entirely by a profile's ``[layout]``."""

from __future__ import annotations

import numpy as np

from emg_pipeline.decode.base import (
    DecodedPacket,
    PacketKind,
    SeqUnit,
    as_bytes,
    field_error,
    non_emg,
    to_output,
    twos_complement,
)
from emg_pipeline.errors import DecodeError, ProfileError
from emg_pipeline.profiles import FirmwareProfile, Layout

__all__ = ["LayoutDecoder"]


class LayoutDecoder:
    """Decode packets laid out as header, fixed-size sample records, trailer.

    Stateless. The counter (if any) is read at ``counter.offset``; with a
    per-sample counter inside each record (NPG Lite), the first record's value
    is reported.

    Parameters
    ----------
    profile : FirmwareProfile
        A profile with ``decoder = "layout"``.
    """

    def __init__(self, profile: FirmwareProfile) -> None:
        if profile.layout is None:
            raise ProfileError(profile.name, "the layout decoder needs a [layout] table")
        self.profile = profile
        self._layout: Layout = profile.layout
        fmt = profile.format
        width = fmt.bytes_per_sample
        powers = np.arange(width, dtype=np.int64) * 8
        if fmt.endianness == "big":
            powers = powers[::-1]
        self._weights = np.left_shift(np.int64(1), powers)
        self._width = width
        self._value_bytes = profile.n_channels * width
        lay = self._layout
        self._lengths = {
            lay.header_bytes + n * lay.record_bytes + t: n
            for t in sorted(lay.trailer_bytes, reverse=True)
            for n in range(lay.min_records, fmt.samples_per_packet + 1)
        }

    @staticmethod
    def check_profile(profile: FirmwareProfile, label: str) -> None:
        """Check that every packet fits in ``mtu - 3`` and the counter lies clear of the samples.

        Arguments and error as for :func:`~emg_pipeline.decode.factory.check_profile`.
        """
        fmt, limit, lay = profile.format, profile.max_payload, profile.layout
        if lay is None:  # pragma: no cover - required when the profile is read
            raise field_error(label, "layout", "required")
        biggest = (lay.header_bytes + fmt.samples_per_packet * lay.record_bytes
                   + max(lay.trailer_bytes))
        if biggest > limit:
            raise field_error(label, "layout",
                              f"packet of up to {biggest} bytes exceeds mtu - 3 = {limit}")
        for n in lay.other_packet_bytes:
            if n > limit:
                raise field_error(label, "layout.other_packet_bytes",
                                  f"{n} exceeds mtu - 3 = {limit}")
        c = profile.counter
        if c is not None and c.offset is not None and c.bits is not None:
            end = c.offset + c.bits // 8
            smallest = lay.header_bytes + lay.min_records * lay.record_bytes
            if end > smallest:
                raise field_error(label, "counter.offset",
                                  f"counter bytes {c.offset}..{end - 1} lie outside "
                                  f"the smallest packet ({smallest} bytes)")
            first = lay.header_bytes + lay.sample_offset
            last = first + profile.n_channels * fmt.bytes_per_sample
            if c.offset < last and end > first:
                raise field_error(label, "counter.offset",
                                  "counter overlaps the first record's sample values")

    def reset(self) -> None:
        """Nothing to forget: the decoder is stateless."""

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
            ``EMG`` samples, or ``OTHER`` (``code`` = length) for a length
            listed in ``layout.other_packet_bytes``.

        Raises
        ------
        DecodeError
            If the length matches no layout or the counter is out of range.
        """
        data = as_bytes(packet)
        lay, prof = self._layout, self.profile
        if len(data) in lay.other_packet_bytes:
            return non_emg(prof, PacketKind.OTHER, code=len(data))
        n = self._lengths.get(len(data))
        if n is None:
            sizes = ", ".join(str(s) for s in sorted(self._lengths))
            raise DecodeError(f"length {len(data)} matches no layout of profile "
                              f"{prof.name!r} (expected one of {sizes})", data)
        raw = np.frombuffer(data, dtype=np.uint8)
        body = raw[lay.header_bytes: lay.header_bytes + n * lay.record_bytes]
        values = body.reshape(n, lay.record_bytes)[
            :, lay.sample_offset: lay.sample_offset + self._value_bytes
        ]
        counts = values.reshape(n, prof.n_channels, self._width).astype(np.int64) @ self._weights
        if prof.format.signed:
            counts = twos_complement(counts, 8 * self._width)
        seq, unit, span = self._counter(data, n)
        return DecodedPacket(samples=to_output(counts, prof), seq=seq, seq_unit=unit, span=span)

    def _counter(self, data: bytes, n: int) -> tuple[int | None, SeqUnit | None, int]:
        c = self.profile.counter
        if c is None or c.offset is None or c.bits is None:
            return None, None, 0
        value = int.from_bytes(data[c.offset: c.offset + c.bits // 8], c.endianness)
        if value >= c.modulus:
            raise DecodeError(f"counter {value} out of range (modulus {c.modulus})", data)
        span = c.increment if c.unit == "packet" else n * c.increment
        return value, c.unit, span
