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

__all__ = ["DECODERS", "check_profile", "make_decoder"]

#: Decoder classes by the name a profile's ``decoder`` field uses.
DECODERS: Mapping[str, Callable[[FirmwareProfile], Decoder]] = MappingProxyType({
    "layout": LayoutDecoder,
    "ganglion": GanglionDecoder,
    "myo": MyoDecoder,
    "gforce": GforceDecoder,
    "bitalino": BitalinoDecoder,
    "ascii": AsciiDecoder,
})

_CHECKS: Mapping[str, Callable[[FirmwareProfile, str], None]] = MappingProxyType({
    "layout": LayoutDecoder.check_profile,
    "ganglion": GanglionDecoder.check_profile,
    "myo": MyoDecoder.check_profile,
    "gforce": GforceDecoder.check_profile,
    "bitalino": BitalinoDecoder.check_profile,
    "ascii": AsciiDecoder.check_profile,
})


def check_profile(profile: FirmwareProfile, label: str | None = None) -> None:
    """Check that the profile's decoder can read the packets the profile describes.

    Each decoder checks its own constraints: the sample format it reads, packet
    sizes against ``mtu - 3``, the counter it can follow.

    Parameters
    ----------
    profile : FirmwareProfile
        A profile, with its variant's parameters merged in when it has variants.
    label : str, optional
        How the error names the profile (default: its name).

    Raises
    ------
    ProfileError
        Unknown decoder, or the first field the decoder cannot work with.

    Examples
    --------
    >>> from dataclasses import replace
    >>> from emg_pipeline.profiles import load_profile
    >>> check_profile(load_profile("myo"))
    >>> check_profile(replace(load_profile("myo"), channels=("a", "b")))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    emg_pipeline.errors.ProfileError: firmware profile 'myo': field 'format': the myo decoder ...
    """
    check = _CHECKS.get(profile.decoder)
    if check is None:
        raise ProfileError(profile.name, f"no decoder named {profile.decoder!r}")
    check(profile, profile.name if label is None else label)


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
