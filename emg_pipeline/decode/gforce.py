"""OYMotion gForce data frames, with reassembly of fragmented frames.

A frame is ``[data_type, payload...]``; type 0x08 is EMG ADC data: uint8
values (8-bit resolution) or uint16 little-endian values (12-bit), sample-major
over the channels. A frame longer than a notification arrives as fragments
``[0xFF, n, chunk...]`` where ``n`` counts down to 0 on the last fragment.

Loss handling: when a fragment's ``n`` is not one less than the previous
fragment's, the frame being assembled is lost and :class:`DecodeError` is
raised. If the count went *up* the fragment starts a new frame and is kept;
if it went *down* by more than one, the rest of the broken frame is skipped
until its last fragment (so a frame tail is never taken for a frame head).
A non-fragment packet arriving in the middle of a frame also raises.
"""

from __future__ import annotations

import enum

import numpy as np

from emg_pipeline.decode.base import (
    DecodedPacket,
    PacketKind,
    as_bytes,
    field_error,
    non_emg,
    to_output,
)
from emg_pipeline.errors import DecodeError
from emg_pipeline.profiles import FirmwareProfile

__all__ = ["GforceDecoder"]

_FRAGMENT = 0xFF
_EMG_ADC = 0x08


class _State(enum.Enum):
    IDLE = enum.auto()
    ASSEMBLING = enum.auto()
    SKIPPING = enum.auto()


class GforceDecoder:
    """Decode gForce data notifications.

    Parameters
    ----------
    profile : FirmwareProfile
        A profile with ``decoder = "gforce"``; ``format.bits`` is 8 or 12.

    Notes
    -----
    Stateful (fragment reassembly): call :meth:`reset` after a reconnect.
    """

    def __init__(self, profile: FirmwareProfile) -> None:
        self.profile = profile
        self._dtype = np.dtype(np.uint8) if profile.format.bits == 8 else np.dtype("<u2")
        self._sample_bytes = profile.n_channels * self._dtype.itemsize
        self.reset()

    @staticmethod
    def check_profile(profile: FirmwareProfile, label: str) -> None:
        """Check the format (unsigned 8 or 12 bits) and that no counter is declared.

        Arguments and error as for :func:`~emg_pipeline.decode.factory.check_profile`.
        """
        fmt = profile.format
        if fmt.bits not in (8, 12) or fmt.signed:
            raise field_error(label, "format",
                              "the gforce decoder reads unsigned 8-bit or 12-bit values")
        if profile.counter is not None:
            raise field_error(label, "counter", "gForce frames carry no counter the decoder reads")

    def reset(self) -> None:
        """Drop any partly assembled frame."""
        self._state = _State.IDLE
        self._last_n = 0
        self._parts: list[bytes] = []

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
            ``EMG`` samples, ``FRAGMENT`` while a frame is incomplete, or
            ``OTHER`` (``code`` = data type) for non-EMG frames.

        Raises
        ------
        DecodeError
            Lost fragment, empty or malformed frame.
        """
        data = as_bytes(packet)
        if not data:
            raise DecodeError("empty packet", data)
        if data[0] != _FRAGMENT:
            if self._state is _State.ASSEMBLING:
                self.reset()
                raise DecodeError("frame interrupted before its last fragment: frame lost", data)
            self.reset()
            return self._frame(data)
        if len(data) < 2:
            raise DecodeError("fragment without a countdown byte", data)
        n, chunk = data[1], data[2:]
        state, last = self._state, self._last_n
        if state is _State.ASSEMBLING and n == last - 1:
            self._parts.append(chunk)
            self._last_n = n
            return self._complete() if n == 0 else self._fragment()
        if state is _State.SKIPPING and n < last:
            self._last_n = n
            if n == 0:
                self.reset()
            return self._fragment()
        if state is _State.ASSEMBLING and n < last - 1:
            self._state, self._last_n, self._parts = _State.SKIPPING, n, []
            if n == 0:
                self.reset()
            raise DecodeError(f"lost fragment(s): countdown went from {last} to {n}", data)
        # A new frame starts here (IDLE, or the countdown went up).
        lost = state is _State.ASSEMBLING
        self._state, self._last_n, self._parts = _State.ASSEMBLING, n, [chunk]
        if lost:
            if n == 0:  # the new frame was a single fragment: it goes with the error
                self.reset()
            raise DecodeError(f"lost fragment(s): countdown restarted at {n} after {last}", data)
        return self._complete() if n == 0 else self._fragment()

    def _fragment(self) -> DecodedPacket:
        return non_emg(self.profile, PacketKind.FRAGMENT, code=_FRAGMENT)

    def _complete(self) -> DecodedPacket:
        frame = b"".join(self._parts)
        self.reset()
        if not frame:
            raise DecodeError("reassembled frame is empty", frame)
        return self._frame(frame)

    def _frame(self, frame: bytes) -> DecodedPacket:
        kind = frame[0]
        if kind != _EMG_ADC:
            return non_emg(self.profile, PacketKind.OTHER, code=kind)
        payload = frame[1:]
        if not payload or len(payload) % self._sample_bytes:
            raise DecodeError(f"EMG payload of {len(payload)} bytes is not a positive multiple "
                              f"of {self._sample_bytes} ({self.profile.n_channels} channels x "
                              f"{self._dtype.itemsize} bytes)", frame)
        counts = np.frombuffer(payload, dtype=self._dtype).reshape(-1, self.profile.n_channels)
        return DecodedPacket(samples=to_output(counts, self.profile))
