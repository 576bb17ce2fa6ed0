"""BLE acquisition from consumer sEMG boards (the only part of the project that uses bleak).

- :class:`BleSource` — connect to a board described by a firmware profile and
  iterate over :class:`~emg_pipeline.chunk.Chunk`s, with loss accounting,
  reconnection and a clean stop;
- :func:`scan`, :func:`find_board`, :func:`match_profile` — find supported boards;
- :class:`PacketAssembler`, :class:`StreamStats` — the pure notification-to-chunk
  logic (no Bluetooth);
- :func:`bluetooth_stack_errors` — the bleak exception types, for callers that
  report a failing Bluetooth stack without importing bleak;
- :func:`bumble_backend` — a bleak backend on bumble
  (:mod:`~emg_pipeline.sources.ble.bleak_bumble`, needs the ``emulator`` extra),
  to run the same code against emulated boards (:mod:`emg_pipeline.emulation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emg_pipeline.sources.ble.assembler import PacketAssembler, StreamStats
from emg_pipeline.sources.ble.scan import BleBackend, FoundBoard, find_board, match_profile, scan
from emg_pipeline.sources.ble.source import BleSource, ReconnectPolicy

if TYPE_CHECKING:
    from emg_pipeline.sources.ble.bleak_bumble import BumbleCentral

__all__ = [
    "BleBackend",
    "BleSource",
    "FoundBoard",
    "PacketAssembler",
    "ReconnectPolicy",
    "StreamStats",
    "bluetooth_stack_errors",
    "bumble_backend",
    "find_board",
    "match_profile",
    "scan",
]


def bluetooth_stack_errors() -> tuple[type[BaseException], ...]:
    """The exception types bleak raises when the Bluetooth stack itself fails.

    Callers outside this package catch these (to report one clear line) without
    importing bleak themselves.
    """
    from bleak.exc import BleakError

    return (BleakError,)


def bumble_backend(central: BumbleCentral) -> BleBackend:
    """bleak backend options that route scanning and connections through a bumble host.

    Parameters
    ----------
    central : BumbleCentral
        The bumble host (on a virtual link or an HCI transport).

    Returns
    -------
    BleBackend
    """
    from emg_pipeline.sources.ble.bleak_bumble import BumbleClient, BumbleScanner

    return BleBackend(scanner=BumbleScanner, client=BumbleClient, options={"bumble": central})
