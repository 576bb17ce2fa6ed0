"""Choosing the decoder a profile names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from emg_pipeline.decode.ascii_values import AsciiDecoder
from emg_pipeline.decode.base import Decoder
from emg_pipeline.decode.bitalino import BitalinoDecoder
from emg_pipeline.decode.ganglion import GanglionDecoder
from emg_pipeline.decode.gforce import GforceDecoder
from emg_pipeline.decode.layout import LayoutDecoder
from emg_pipeline.decode.myo import MyoDecoder
from emg_pipeline.errors import ProfileError
from emg_pipeline.profiles import FirmwareProfile

__all__ = ["DECODERS", "make_decoder"]

#: Decoder classes by the name a profile's ``decoder`` field uses.
DECODERS: Mapping[str, Callable[[FirmwareProfile], Decoder]] = MappingProxyType({
    "layout": LayoutDecoder,
    "ganglion": GanglionDecoder,
    "myo": MyoDecoder,
    "gforce": GforceDecoder,
    "bitalino": BitalinoDecoder,
    "ascii": AsciiDecoder,
})


def make_decoder(profile: FirmwareProfile, variant: str | None = None) -> Decoder:
    """Build the decoder for a profile.

    Parameters
    ----------
    profile : FirmwareProfile
        A loaded profile.
    variant : str, optional
        Firmware variant (see :meth:`FirmwareProfile.select_variant`); when
        omitted, the profile's chosen variant or else its default is used.

    Returns
    -------
    Decoder
        An object with ``decode(packet, characteristic=None)`` and ``reset()``.

    Raises
    ------
    ProfileError
        Unknown decoder or variant.

    Examples
    --------
    >>> from emg_pipeline.profiles import load_profile
    >>> dec = make_decoder(load_profile("myo"))
    >>> dec.decode(bytes(range(16))).samples.shape
    (2, 8)
    """
    if variant is not None or (profile.variants and profile.variant is None):
        profile = profile.with_variant(variant)
    factory = DECODERS.get(profile.decoder)
    if factory is None:
        raise ProfileError(profile.name, f"no decoder named {profile.decoder!r}")
    return factory(profile)
