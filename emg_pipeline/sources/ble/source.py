"""Live acquisition from a BLE sEMG board: notifications in, chunks out.

:class:`BleSource` runs one firmware profile's lifecycle with bleak:

1. find the board (scan by address, or by the profile's service UUID / name);
2. connect (bleak-retry-connector, with backoff), request the MTU where the
   backend allows it, wait ``connect_settle_s``, read what the profile reads
   (choosing the firmware variant), write ``keep_awake`` and the ``setup``
   commands, subscribe to every notify characteristic, write ``start``;
3. the notification callback only copies the bytes and queues them with a
   receive timestamp; :meth:`BleSource.chunks` drains the queue, decodes,
   checks counters and yields :class:`~emg_pipeline.chunk.Chunk`s whose
   ``first_index`` keeps the timeline right (see
   :class:`~emg_pipeline.sources.ble.assembler.PacketAssembler`);
4. after a drop (or ``silence_timeout_s`` without data) it reconnects with
   exponential backoff, re-sends the start sequence and flags the next chunk
   ``RECONNECTED``, the outage marked as a gap by time;
5. on exit, cancellation or Ctrl-C it writes ``stop``, waits
   ``stop_settle_s``, unsubscribes and disconnects, in ``finally``.

Example (real hardware)::

    async with BleSource("ganglion") as source:
        summary = await run_async(source, pipe, sinks)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from emg_pipeline.chunk import Chunk
from emg_pipeline.decode import make_decoder
from emg_pipeline.errors import (
    CharacteristicNotFoundError,
    ConfigError,
    ConnectionLostError,
    EmgPipelineError,
)
from emg_pipeline.profiles import FirmwareProfile, load_profile
from emg_pipeline.sources.ble.assembler import PacketAssembler, StreamStats
from emg_pipeline.sources.ble.scan import BleBackend, find_board
from emg_pipeline.sources.live import LiveSource

__all__ = ["BleSource", "ReconnectPolicy"]

_log = logging.getLogger(__name__)

#: errors of the link layer that a reconnect may cure
_LINK_ERRORS = (BleakError, asyncio.TimeoutError, OSError, EOFError)


class _LinkDown:
    """Queue marker: the board disconnected."""


_LINK_DOWN = _LinkDown()
_Item = tuple[float, str, bytes] | _LinkDown
_T = TypeVar("_T")


@dataclass(frozen=True)
class ReconnectPolicy:
    """How hard to try to get a dropped board back.

    Parameters
    ----------
    enabled : bool
        Reconnect at all (else a drop raises :class:`ConnectionLostError`).
    attempts_per_try : int
        Connection attempts bleak-retry-connector makes per try.
    backoff_initial_s, backoff_max_s : float
        Wait before the second try, doubled after each failure up to the maximum.
    give_up_after_s : float
        Total time without a link after which the source gives up.
    """

    enabled: bool = True
    attempts_per_try: int = 2
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    give_up_after_s: float = 120.0


class BleSource(LiveSource):
    """Chunks of samples from one BLE board, live.

    Parameters
    ----------
    profile : FirmwareProfile or str
        The board's firmware profile (or a bundled profile's name).
    address : str, optional
        Connect to this board; otherwise the first board advertising what the
        profile's scan filter names.
    device : BLEDevice, optional
        An already scanned device (skips the scan).
    backend : BleBackend, optional
        bleak backend (default: the platform's; see
        :func:`~emg_pipeline.sources.ble.bleak_bumble` for emulated boards).
    scan_timeout_s : float
        How long to look for the board.
    reconnect : ReconnectPolicy
        What to do after a drop.
    silence_timeout_s : float
        No notification for this long (host clock) counts as a dropped link.
    time_scale : float
        Board seconds per host second (1 for real boards; the pacing factor of
        a sped-up emulated board), used to measure outages in samples.
    silence_gap_s : float
        For boards without a counter: a pause longer than this (board time)
        between packets is marked as lost samples, measured by time.
    command_timeout_s : float
        Limit for each write and for the whole stop sequence.

    Attributes
    ----------
    stats : StreamStats
        Packets, samples, losses, malformed packets, reconnects.
    mtu : int or None
        ATT MTU of the current connection.
    variant : str or None
        Firmware variant chosen at connect time.
    """

    def __init__(self, profile: FirmwareProfile | str, *, address: str | None = None,
                 device: BLEDevice | None = None, backend: BleBackend | None = None,
                 scan_timeout_s: float = 10.0, reconnect: ReconnectPolicy | None = None,
                 silence_timeout_s: float = 5.0, time_scale: float = 1.0,
                 silence_gap_s: float = 1.0, command_timeout_s: float = 10.0) -> None:
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        for name, value in (("scan_timeout_s", scan_timeout_s),
                            ("silence_timeout_s", silence_timeout_s),
                            ("time_scale", time_scale), ("silence_gap_s", silence_gap_s),
                            ("command_timeout_s", command_timeout_s)):
            if not (isinstance(value, int | float) and value > 0):
                raise ConfigError(name, value, "a positive number")
        self.address = address
        self.backend = backend or BleBackend()
        self.scan_timeout_s = float(scan_timeout_s)
        self.reconnect_policy = reconnect or ReconnectPolicy()
        self.silence_timeout_s = float(silence_timeout_s)
        self.time_scale = float(time_scale)
        self.silence_gap_s = float(silence_gap_s)
        self.command_timeout_s = float(command_timeout_s)
        self.mtu: int | None = None
        self.variant: str | None = None
        self.name: str | None = None
        self._device = device
        self._client: BleakClient | None = None
        self._assembler: PacketAssembler | None = None
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._keep_awake: asyncio.Task[None] | None = None
        self._closed = False
        self._stopping = False

    # ---------------------------------------------------------------- facade
    @property
    def fs(self) -> float:
        """Sampling rate in Hz."""
        return self.profile.fs

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names."""
        return self.profile.channels

    @property
    def unit(self) -> str:
        """``"uV"`` when the profile converts counts to µV, else ``"counts"``."""
        return "uV" if self.profile.scale.calibrated else "counts"

    @property
    def stats(self) -> StreamStats:
        """Counts kept while streaming."""
        return self._assembler.stats if self._assembler is not None else StreamStats()

    @property
    def connected(self) -> bool:
        """Whether the link is up."""
        return self._client is not None and self._client.is_connected

    # ------------------------------------------------------------- lifecycle
    async def connect(self) -> None:
        """Find the board, connect and start streaming.

        Raises
        ------
        DeviceNotFoundError
            The board was not seen while scanning.
        CharacteristicNotFoundError
            The board lacks a characteristic the profile needs.
        ConnectionLostError
            Connecting failed.
        """
        if self._closed:
            raise ConnectionLostError(self.address or "?", "the source was closed")
        if self._device is None:
            self._device = await find_board(self.profile, address=self.address,
                                            timeout_s=self.scan_timeout_s, backend=self.backend)
        self.address = self._device.address
        self.name = self._device.name
        try:
            await self._open()
        except _LINK_ERRORS as exc:
            await self._drop_client()
            raise ConnectionLostError(self.address, _reason(exc), 1) from exc

    async def chunks(self) -> AsyncIterator[Chunk]:
        """Yield chunks as notifications arrive, until cancelled or closed.

        Every chunk's ``first_index`` is its place on the stream's sample
        clock: lost samples lie between chunks (``PACKET_LOSS``), never
        closed up. The board is stopped and disconnected when the iteration
        ends for any reason.

        Raises
        ------
        ConnectionLostError
            The link dropped and could not be re-established.
        """
        try:
            if self._client is None:
                await self.connect()
            while True:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
                    # cancellation that arrives as the queue delivers (the consumer then
                    # never stops); timeout() tells its own expiry from a cancellation
                    async with asyncio.timeout(self.silence_timeout_s):
                        item = await self._queue.get()
                except TimeoutError:
                    await self._recover(f"no data for {self.silence_timeout_s:g} s")
                    continue
                link_down = False
                while True:
                    if isinstance(item, _LinkDown):
                        link_down = True
                        break
                    assembler = self._assembler
                    if assembler is not None:
                        assembler.push(item[2], item[1], item[0])
                    try:
                        item = self._queue.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                if self._assembler is not None:
                    for chunk in self._assembler.drain():
                        yield chunk
                if link_down:
                    await self._recover("the board disconnected")
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the board and disconnect (idempotent; safe after a drop).

        Writes the profile's ``stop`` command, waits ``stop_settle_s``,
        unsubscribes from every notify characteristic and disconnects. Errors
        of a link that is already gone are ignored.
        """
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        await self._stop_keep_awake()
        client = self._client
        if client is None:
            return
        try:
            if client.is_connected:
                async with asyncio.timeout(self.command_timeout_s
                                           + self.profile.timing.stop_settle_s):
                    await self._stop_board(client)
        except _LINK_ERRORS as exc:
            _log.debug("stopping %s: %s", self.address, exc)
        finally:
            await self._drop_client()

    # ------------------------------------------------------------- internals
    async def _open(self) -> None:
        device = self._device
        if device is None:  # pragma: no cover - connect() scans first
            raise ConnectionLostError(self.address or "?", "no device to connect to")
        self._stopping = False
        client = await establish_connection(
            BleakClient, device, self.name or device.address,
            disconnected_callback=self._on_disconnect,
            max_attempts=self.reconnect_policy.attempts_per_try,
            **self.backend.client_kwargs(),
        )
        self._client = client
        await _request_mtu(client)
        self.mtu = client.mtu_size
        prof = self.profile
        self._check_characteristics(client)
        if prof.timing.connect_settle_s:
            await asyncio.sleep(prof.timing.connect_settle_s)
        if self._assembler is None:
            values: dict[str, bytes] = {}
            for read in prof.reads:
                with contextlib.suppress(*_LINK_ERRORS):
                    values[read.name] = bytes(await self._timed(client.read_gatt_char(read.uuid)))
            self.variant = prof.select_variant(values)
            chosen = prof.with_variant(self.variant) if self.variant else prof
            self._assembler = PacketAssembler(chosen, make_decoder(chosen),
                                              time_scale=self.time_scale,
                                              silence_gap_s=self.silence_gap_s)
        cmds = prof.commands
        if cmds.keep_awake:
            await self._write(client, cmds.keep_awake)
        for command in cmds.setup:
            await self._write(client, command)
        for uuid in prof.gatt.notify:
            await self._timed(client.start_notify(uuid, self._on_notify))
        if cmds.start:
            await self._write(client, cmds.start)
        if cmds.keep_awake and cmds.keep_awake_interval_s > 0 and self._keep_awake is None:
            self._keep_awake = asyncio.get_running_loop().create_task(self._keep_awake_loop())

    def _check_characteristics(self, client: BleakClient) -> None:
        prof = self.profile
        needed = [*prof.gatt.notify, *([prof.gatt.command] if prof.gatt.command else [])]
        for uuid in needed:
            if client.services.get_characteristic(uuid) is None:
                raise CharacteristicNotFoundError(uuid, prof.name)

    async def _timed(self, awaitable: Awaitable[_T]) -> _T:
        async with asyncio.timeout(self.command_timeout_s):
            return await awaitable

    async def _write(self, client: BleakClient, data: bytes) -> None:
        command = self.profile.gatt.command
        if command is None or not data:
            return
        await self._timed(client.write_gatt_char(
            command, data, response=self.profile.gatt.write_with_response))

    async def _stop_board(self, client: BleakClient) -> None:
        prof = self.profile
        if prof.commands.stop:
            with contextlib.suppress(*_LINK_ERRORS):
                await self._write(client, prof.commands.stop)
        if prof.timing.stop_settle_s:
            await asyncio.sleep(prof.timing.stop_settle_s)
        for uuid in prof.gatt.notify:
            if not client.is_connected:
                break
            with contextlib.suppress(*_LINK_ERRORS):
                await self._timed(client.stop_notify(uuid))

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            self._stopping = True
            # a link that dies while disconnecting may never confirm it: never
            # let closing (Ctrl-C, the end of a stream) hang on it
            with contextlib.suppress(*_LINK_ERRORS):
                async with asyncio.timeout(self.command_timeout_s):
                    await client.disconnect()

    async def _stop_keep_awake(self) -> None:
        task, self._keep_awake = self._keep_awake, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_awake_loop(self) -> None:
        interval = self.profile.commands.keep_awake_interval_s
        while True:
            await asyncio.sleep(interval)
            client = self._client
            if client is not None and client.is_connected:
                with contextlib.suppress(*_LINK_ERRORS):
                    await self._write(client, self.profile.commands.keep_awake)

    async def _recover(self, reason: str) -> None:
        """Reconnect with backoff; raise ConnectionLostError when it cannot."""
        await self._drop_client()
        policy = self.reconnect_policy
        address = self.address or "?"
        if not policy.enabled:
            raise ConnectionLostError(address, reason)
        started = time.monotonic()
        delay = policy.backoff_initial_s
        attempts = 0
        last = reason
        while True:
            attempts += 1
            try:
                await self._open()
            except EmgPipelineError:
                await self._drop_client()
                raise
            except _LINK_ERRORS as exc:
                last = _reason(exc)
                await self._drop_client()
            else:
                if self._assembler is not None:
                    self._assembler.reconnected()
                _log.info("reconnected to %s after %d attempt(s)", address, attempts)
                return
            if time.monotonic() - started + delay > policy.give_up_after_s:
                raise ConnectionLostError(address, last, attempts)
            await asyncio.sleep(delay)
            delay = min(delay * 2, policy.backoff_max_s)

    # -------------------------------------------------------------- callbacks
    def _on_notify(self, sender: BleakGATTCharacteristic, data: bytearray) -> None:
        # Only copy and queue: decoding happens in the consumer (chunks()).
        self._queue.put_nowait((time.monotonic(), sender.uuid, bytes(data)))

    def _on_disconnect(self, client: BleakClient) -> None:
        if not self._stopping and client is self._client:
            self._queue.put_nowait(_LINK_DOWN)


async def _request_mtu(client: BleakClient) -> None:
    """Ask for a larger MTU where the backend exposes a way to.

    bleak has no public MTU request: BlueZ reports 23 until its private
    ``_acquire_mtu()`` runs (bleak docs); other backends negotiate on connect.
    """
    acquire = getattr(getattr(client, "_backend", None), "_acquire_mtu", None)
    if acquire is not None:
        with contextlib.suppress(*_LINK_ERRORS, AttributeError, NotImplementedError):
            await acquire()


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
