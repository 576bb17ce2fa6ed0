"""Finding supported boards: advertisements matched to firmware profiles."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bleak import BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

from emg_pipeline.errors import ConfigError, DeviceNotFoundError
from emg_pipeline.profiles import FirmwareProfile, list_profiles, load_profile, normalize_uuid

__all__ = ["BleBackend", "FoundBoard", "find_board", "match_profile", "scan"]


@dataclass(frozen=True)
class BleBackend:
    """Which bleak backend to use: the platform's (default) or a custom one.

    Parameters
    ----------
    scanner, client : type, optional
        ``BaseBleakScanner`` / ``BaseBleakClient`` subclasses passed to bleak
        as ``backend=``; ``None`` keeps the platform backend.
    options : mapping
        Extra keyword arguments for both (e.g. ``{"bumble": central}``).
    """

    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None
    options: Mapping[str, object] = field(default_factory=dict)

    def scanner_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``BleakScanner``."""
        out = dict(self.options)
        if self.scanner is not None:
            out["backend"] = self.scanner
        return out

    def client_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``BleakClient``."""
        out = dict(self.options)
        if self.client is not None:
            out["backend"] = self.client
        return out


@dataclass(frozen=True)
class FoundBoard:
    """A supported board seen while scanning."""

    name: str | None
    address: str
    profile: str
    rssi: int
    device: BLEDevice = field(compare=False, repr=False)


def match_profile(local_name: str | None, service_uuids: Sequence[str],
                  profiles: Sequence[FirmwareProfile]) -> FirmwareProfile | None:
    """The first profile whose scan filter matches an advertisement.

    A profile matches when the advertisement lists one of its service UUIDs,
    or when the advertised name starts with one of its name prefixes.

    Parameters
    ----------
    local_name : str or None
        Advertised name.
    service_uuids : sequence of str
        Advertised service UUIDs (any form :func:`normalize_uuid` accepts).
    profiles : sequence of FirmwareProfile
        Candidates, in order of preference.

    Returns
    -------
    FirmwareProfile or None

    Examples
    --------
    >>> ps = [load_profile(n) for n in ("ganglion", "myo")]
    >>> match_profile("Ganglion-1a2b", [], ps).name
    'ganglion'
    >>> match_profile(None, ["D5060001-A904-DEB9-4748-2C7F4A124842"], ps).name
    'myo'
    >>> match_profile("Headphones", ["180d"], ps) is None
    True
    """
    advertised = set()
    for u in service_uuids:
        try:
            advertised.add(normalize_uuid(u))
        except ValueError:
            continue
    for p in profiles:
        if advertised.intersection(p.scan.service_uuids):
            return p
        if local_name and any(local_name.startswith(x) for x in p.scan.name_prefixes):
            return p
    return None


def _profiles(profiles: Sequence[FirmwareProfile] | None) -> list[FirmwareProfile]:
    return list(profiles) if profiles is not None else [load_profile(n) for n in list_profiles()]


async def scan(timeout_s: float = 5.0, *, profiles: Sequence[FirmwareProfile] | None = None,
               backend: BleBackend | None = None) -> list[FoundBoard]:
    """Scan for supported boards.

    Parameters
    ----------
    timeout_s : float
        How long to listen.
    profiles : sequence of FirmwareProfile, optional
        Profiles to match (default: every bundled profile).
    backend : BleBackend, optional
        bleak backend (default: the platform's).

    Returns
    -------
    list of FoundBoard
        One entry per address, strongest signal first.
    """
    if not timeout_s > 0:
        raise ConfigError("timeout_s", timeout_s, "a positive number of seconds")
    candidates = _profiles(profiles)
    seen: dict[str, tuple[BLEDevice, AdvertisementData]] = {}

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        seen[device.address] = (device, adv)

    opts = (backend or BleBackend()).scanner_kwargs()
    async with BleakScanner(on_advertisement, **opts):   # type: ignore[arg-type]
        await asyncio.sleep(timeout_s)
    found = []
    for address, (device, adv) in seen.items():
        name = adv.local_name or device.name
        profile = match_profile(name, adv.service_uuids, candidates)
        if profile is not None:
            found.append(FoundBoard(name, address, profile.name, adv.rssi, device))
    return sorted(found, key=lambda b: (-b.rssi, b.address))


async def find_board(profile: FirmwareProfile, *, address: str | None = None,
                     timeout_s: float = 10.0, backend: BleBackend | None = None) -> BLEDevice:
    """Scan until the wanted board advertises.

    Parameters
    ----------
    profile : FirmwareProfile
        The kind of board wanted; without ``address`` the first board whose
        advertisement matches the profile is taken.
    address : str, optional
        The board's address (case-insensitive).
    timeout_s : float
        How long to scan before giving up.
    backend : BleBackend, optional
        bleak backend (default: the platform's).

    Returns
    -------
    BLEDevice

    Raises
    ------
    DeviceNotFoundError
        If nothing matched within ``timeout_s``.
    """
    wanted = address.upper() if address else None

    def wanted_board(device: BLEDevice, adv: AdvertisementData) -> bool:
        if wanted is not None:
            return device.address.upper() == wanted
        return match_profile(adv.local_name or device.name, adv.service_uuids,
                             [profile]) is not None

    opts = (backend or BleBackend()).scanner_kwargs()
    device = await BleakScanner.find_device_by_filter(wanted_board, timeout=timeout_s,
                                                      **opts)   # type: ignore[arg-type]
    if device is None:
        raise DeviceNotFoundError(address or profile.name, timeout_s)
    return device
