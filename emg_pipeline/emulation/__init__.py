"""Emulated BLE sEMG boards, for tests and for users without hardware.

Every firmware profile in ``firmware_profiles/`` can be emulated: a bumble
GATT peripheral advertises with the profile's name and service UUIDs, serves
its characteristics, obeys its start / stop commands and sends paced
notifications in the board's own packet format, with its counter, fed from
the synthetic generator or a recording. Packet loss, malformed packets and
forced disconnects can be injected.

- :mod:`~emg_pipeline.emulation.protocol` — pure: samples to the exact bytes
  each board sends (no Bluetooth at all);
- :mod:`~emg_pipeline.emulation.board` — pure: a board's packet stream, with
  loss and malformed-packet injection;
- :mod:`~emg_pipeline.emulation.peripheral` — the bumble peripheral;
- :mod:`~emg_pipeline.emulation.air` — a local virtual radio link, and an HCI
  socket other processes can attach a central to.

Nothing here imports bleak: the central side lives in
:mod:`emg_pipeline.sources.ble`.
"""

from emg_pipeline.emulation.board import BoardStream, board_signal
from emg_pipeline.emulation.protocol import BoardProtocol, counts_from_uv

__all__ = ["BoardProtocol", "BoardStream", "board_signal", "counts_from_uv"]
