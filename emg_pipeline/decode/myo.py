"""Myo armband raw EMG: 16 bytes = 2 samples x 8 channels of int8 per notification.

The four EMG characteristics take turns; the index of the characteristic a
notification arrived on is reported as a packet counter modulo 4, so that a
skipped characteristic shows as a loss. That the rotation is strict is an
inference from the firmware design, not a documented guarantee.
"""

from __future__ import annotations

import numpy as np

from emg_pipeline.decode.base import (
    DecodedPacket,
    as_bytes,
    characteristic_index,
    field_error,
    to_output,
)
from emg_pipeline.errors import DecodeError
from emg_pipeline.profiles import FirmwareProfile

__all__ = ["MyoDecoder"]

_PACKET_BYTES = 16


class MyoDecoder:
    """Decode Myo EMG notifications (stateless).

    Parameters
    ----------
    profile : FirmwareProfile
        A profile with ``decoder = "myo"``.
    """

    def __init__(self, profile: FirmwareProfile) -> None:
        self.profile = profile

    @staticmethod
    def check_profile(profile: FirmwareProfile, label: str) -> None:
        """Check the format (8 channels, 2 samples of 8 bits) and the rotation counter.

        Arguments and error as for :func:`~emg_pipeline.decode.factory.check_profile`.
        """
        fmt, counter = profile.format, profile.counter
        if (profile.n_channels != 8 or fmt.samples_per_packet != 2 or fmt.bits != 8
                or not fmt.signed):
            raise field_error(label, "format", "the myo decoder needs 8 channels, 2 samples per "
                                               "packet, 8-bit signed values")
        if counter is not None and (counter.unit != "packet"
                                    or counter.modulus != len(profile.gatt.notify)):
            raise field_error(label, "counter", "the Myo rotation counter counts packets modulo "
                                                "the number of notify characteristics")

    def reset(self) -> None:
        """Nothing to forget: the decoder is stateless."""

    def decode(self, packet: bytes, characteristic: str | None = None) -> DecodedPacket:
        """Decode one notification.

        Parameters
        ----------
        packet : bytes
            The 16-byte notification payload.
        characteristic : str, optional
            UUID of the characteristic it arrived on; gives ``seq``.

        Returns
        -------
        DecodedPacket
            Two samples of 8 channels (unitless int8 values).

        Raises
        ------
        DecodeError
            Wrong length, or a characteristic that is not one of the profile's.
        """
        data = as_bytes(packet)
        if len(data) != _PACKET_BYTES:
            raise DecodeError(f"Myo EMG notifications are {_PACKET_BYTES} bytes, got "
                              f"{len(data)}", data)
        index = characteristic_index(self.profile, characteristic, data)
        counts = np.frombuffer(data, dtype=np.int8).reshape(2, 8)
        samples = to_output(counts, self.profile)
        counter = self.profile.counter
        if index is None or counter is None:
            return DecodedPacket(samples=samples)
        return DecodedPacket(samples=samples, seq=index % counter.modulus, seq_unit=counter.unit,
                             span=counter.increment)
