"""ASCII values, one sample per notification (MyoWare 2.0 wireless shield).

The payload is text such as ``b"2047"`` or ``b"2047.00\\r\\n"``: one number per
channel, separated by commas, semicolons or whitespace; trailing NUL bytes
and whitespace are ignored.
"""

from __future__ import annotations

import re

import numpy as np

from emg_pipeline.decode.base import DecodedPacket, as_bytes, field_error, to_output
from emg_pipeline.errors import DecodeError
from emg_pipeline.profiles import FirmwareProfile

__all__ = ["AsciiDecoder"]

_NUMBER = re.compile(r"^[+-]?\d{1,12}(?:\.\d{0,12})?$")
_SEPARATORS = re.compile(r"[,;\s]+")


class AsciiDecoder:
    """Decode ASCII-number notifications (stateless).

    Parameters
    ----------
    profile : FirmwareProfile
        A profile with ``decoder = "ascii"``; one number per channel.
    """

    def __init__(self, profile: FirmwareProfile) -> None:
        self.profile = profile

    @staticmethod
    def check_profile(profile: FirmwareProfile, label: str) -> None:
        """Check that no counter is declared (the values carry none).

        Arguments and error as for :func:`~emg_pipeline.decode.factory.check_profile`.
        """
        if profile.counter is not None:
            raise field_error(label, "counter", "ASCII values carry no counter")

    def reset(self) -> None:
        """Nothing to forget: the decoder is stateless."""

    def decode(self, packet: bytes, characteristic: str | None = None) -> DecodedPacket:
        """Decode one notification.

        Parameters
        ----------
        packet : bytes
            ASCII text.
        characteristic : str, optional
            Ignored.

        Returns
        -------
        DecodedPacket
            One sample row; ADC counts converted with the profile's scale
            (``(ADC - zero) * uv_per_count``).

        Raises
        ------
        DecodeError
            Not ASCII, not numbers, or not one number per channel.
        """
        data = as_bytes(packet)
        try:
            text = data.decode("ascii").strip("\x00 \t\r\n")
        except UnicodeDecodeError:
            raise DecodeError("payload is not ASCII", data) from None
        tokens = [t for t in _SEPARATORS.split(text) if t]
        if len(tokens) != self.profile.n_channels or not all(_NUMBER.match(t) for t in tokens):
            raise DecodeError(f"expected {self.profile.n_channels} ASCII number(s), got "
                              f"{text[:40]!r}", data)
        counts = np.array([[float(t) for t in tokens]], dtype=np.float64)
        return DecodedPacket(samples=to_output(counts, self.profile))
