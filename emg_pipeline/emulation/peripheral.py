"""An emulated board as a bumble GATT peripheral.

:class:`EmulatedBoard` puts a :class:`~emg_pipeline.emulation.board.BoardStream`
on the (virtual) air the way the real board does:

* advertises the profile's first service UUID, and its name (first name
  prefix + ``-emu``) in the scan response;
* serves the data service with the notify characteristic(s), the command
  characteristic (in the scan service when the profile advertises a separate
  control service, as the Myo does) and every characteristic the profile
  reads at connect time (standard ones such as ``2a28`` in a Device
  Information service);
* obeys the profile's commands: ``start`` starts the stream and restarts the
  counter, ``stop`` stops it, anything else (setup, keep-awake) is logged.
  Boards without a start command stream while a notify characteristic is
  subscribed;
* sends notifications paced at the board's packet rate times ``speed``, in
  bursts every ``tick_s`` as connection events would; the board's sample
  clock keeps running while nobody listens, so an outage loses exactly the
  samples that went by;
* injects faults: packet loss, loss bursts, malformed, duplicated and
  reordered packets and stalls (from the stream, see
  :class:`~emg_pipeline.emulation.board.BoardStream`), a fast clock (``rate``:
  notifications paced at ``rate`` times the nominal packet rate, each still
  holding the nominal number of samples), and forced disconnects
  (:meth:`EmulatedBoard.force_disconnect`, or every ``disconnect_every_s`` of
  streaming: 6 s gives a storm of 10 a minute). The last packet before a
  scheduled disconnect is always delivered intact, so every fault of the
  stream stays visible to a receiver's counter;
* can stop sending after ``stop_after_s`` of board time (staying connected),
  so that a test knows exactly which packets the board sent
  (:attr:`BoardState.notifications`, :attr:`BoardState.finished`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service

from emg_pipeline.emulation.board import BoardStream
from emg_pipeline.errors import ConfigError
from emg_pipeline.profiles import normalize_uuid

__all__ = ["BoardState", "EmulatedBoard"]

_log = logging.getLogger(__name__)

_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"
_DEVICE_INFORMATION = "0000180a" + _BASE_SUFFIX
_FALLBACK_SERVICE = "e6e90001-6d67-4e2e-9b1a-0c0a1e9d0b01"   # for profiles that name none
_MYO_FIRMWARE_VERSION = "d5060201-a904-deb9-4748-2c7f4a124842"


def _uuid(text: str) -> UUID:
    """bumble UUID, in 16-bit form when it is a Bluetooth-base UUID."""
    full = normalize_uuid(text)
    if full.endswith(_BASE_SUFFIX) and full.startswith("0000"):
        return UUID.from_16_bits(int(full[4:8], 16))
    return UUID(full)


@dataclass
class BoardState:
    """What the board went through, for tests and for the ``emulate`` command's log."""

    streaming: bool = False
    connections: int = 0
    disconnections: int = 0
    forced_disconnects: int = 0
    streams_started: int = 0
    commands: list[bytes] = field(default_factory=list)
    subscribed: set[str] = field(default_factory=set)
    stopped_by_command: bool = False
    #: board position (packet number) at which each stream started
    stream_starts: list[int] = field(default_factory=list)
    #: board sample position at which each stream started (its first sample)
    stream_start_samples: list[int] = field(default_factory=list)
    #: notifications put on the air (a duplicated packet's twice)
    notifications: int = 0
    #: connections on which at least one notification was sent (a reconnect that the
    #: board's stop overtook sends none)
    connections_notified: int = 0
    #: the board reached ``stop_after_s`` and sends nothing more
    finished: bool = False
    #: most board time the sending fell behind the board's clock at a tick (a link
    #: slower than the pace: then outages measured by time come out short)
    max_lag_s: float = 0.0


class EmulatedBoard:
    """A bumble peripheral speaking one firmware profile's protocol.

    Parameters
    ----------
    device : bumble.device.Device
        A device on a virtual link (see :class:`~emg_pipeline.emulation.air.VirtualAir`),
        not yet powered on.
    stream : BoardStream
        The packets to send (with its fault injection).
    speed : float
        Pace notifications this many times faster than the real board (tests).
    name : str, optional
        Advertised name (default: first name prefix of the profile + ``-emu``).
    firmware_revision : str, optional
        Served in the Software Revision characteristic when the profile reads
        it. Default: ``"2.0.0"`` for a Ganglion speaking firmware 2 (see
        :class:`~emg_pipeline.emulation.protocol.BoardProtocol`), else
        ``"3.0.2"``, so that a central picks the matching firmware variant.
    disconnect_every_s : float, optional
        Drop the link after this much streaming (board time), again and again.
    tick_s : float
        Interval between bursts of notifications (wall clock).
    rate : float
        The board's clock runs this many times faster than its nominal rate:
        notifications are paced at ``rate`` times the nominal packet rate
        (on top of ``speed``), each with the nominal number of samples.
    stop_after_s : float, optional
        Stop sending after this many seconds of the board's own clock
        (packets since the first stream started, over the nominal packet
        rate), staying connected; the last two packets are delivered intact,
        also when a reconnect comes after the board's clock passed the end.
    """

    def __init__(self, device: Device, stream: BoardStream, *, speed: float = 1.0,
                 name: str | None = None, firmware_revision: str | None = None,
                 disconnect_every_s: float | None = None, tick_s: float = 0.005,
                 rate: float = 1.0, stop_after_s: float | None = None) -> None:
        if not speed > 0:
            raise ConfigError("speed", speed, "a positive factor")
        if not rate > 0:
            raise ConfigError("rate", rate, "a positive factor")
        if disconnect_every_s is not None and not disconnect_every_s > 0:
            raise ConfigError("disconnect_every_s", disconnect_every_s, "a positive time")
        if stop_after_s is not None and not stop_after_s > 0:
            raise ConfigError("stop_after_s", stop_after_s, "a positive time")
        self.device = device
        self.stream = stream
        self.profile = stream.profile
        self.speed = float(speed)
        prefixes = self.profile.scan.name_prefixes
        self.name = name or f"{prefixes[0] if prefixes else self.profile.name}-emu"
        if firmware_revision is None:
            firmware_revision = "2.0.0" if stream.protocol.firmware == 2 else "3.0.2"
        self.firmware_revision = firmware_revision
        self.disconnect_every_s = disconnect_every_s
        self.tick_s = tick_s
        self.rate = float(rate)
        self.stop_after_s = stop_after_s
        self.state = BoardState()
        self._stop_at: int | None = None
        self._connection: Connection | None = None
        self._notified = False   # a notification was sent on the current connection
        self._task: asyncio.Task[None] | None = None
        self._origin: float | None = None
        self._notify: list[Characteristic] = []
        self._command: Characteristic | None = None
        self._build_gatt()

    @property
    def address(self) -> str:
        """The board's address as a central sees it."""
        return self.device.random_address.to_string(False)

    # ------------------------------------------------------------------ GATT
    def _build_gatt(self) -> None:
        prof = self.profile
        data_uuid = prof.gatt.service or (prof.scan.service_uuids[0] if prof.scan.service_uuids
                                          else _FALLBACK_SERVICE)
        services: dict[str, list[Characteristic]] = {data_uuid: []}
        props = Characteristic.Properties
        for uuid in prof.gatt.notify:
            char: Characteristic = Characteristic(_uuid(uuid), props.NOTIFY | props.READ,
                                                  Characteristic.READABLE, b"")
            char.on(char.EVENT_SUBSCRIPTION, self._subscription_handler(uuid))
            self._notify.append(char)
            services[data_uuid].append(char)
        control_uuid = data_uuid
        if prof.scan.service_uuids and prof.scan.service_uuids[0] != data_uuid:
            control_uuid = prof.scan.service_uuids[0]
            services.setdefault(control_uuid, [])
        if prof.gatt.command is not None:
            command_props = props.WRITE | props.WRITE_WITHOUT_RESPONSE
            if prof.decoder == "gforce":   # the gForce command characteristic also notifies
                command_props |= props.NOTIFY
            self._command = Characteristic(
                _uuid(prof.gatt.command), command_props, Characteristic.WRITEABLE,
                CharacteristicValue(write=self._on_command))
            services[control_uuid].append(self._command)
        for read in prof.reads:
            value = self._read_value(read.uuid)
            char = Characteristic(_uuid(read.uuid), props.READ, Characteristic.READABLE, value)
            if read.uuid.endswith(_BASE_SUFFIX) and read.uuid.startswith("00002a"):
                services.setdefault(_DEVICE_INFORMATION, []).append(char)
            else:
                services[control_uuid].append(char)
        for uuid, chars in services.items():
            self.device.add_service(Service(_uuid(uuid), chars))

    def _read_value(self, uuid: str) -> bytes:
        if uuid == normalize_uuid("2a28"):
            return self.firmware_revision.encode("ascii")
        if uuid == _MYO_FIRMWARE_VERSION:
            return b"".join(v.to_bytes(2, "little") for v in (1, 5, 1970, 2))
        return b""

    def _advertising(self) -> tuple[bytes, bytes]:
        """Advertising data (flags, service UUID, name) and scan response (full name).

        The name goes in the advertisement too, shortened if 31 bytes cannot
        hold it: bumble's emulated controller answers scan requests with the
        advertising data itself.
        """
        flags = bytes([AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG
                       | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG])
        adv = [(AdvertisingData.FLAGS, flags)]
        if self.profile.scan.service_uuids:
            u = _uuid(self.profile.scan.service_uuids[0])
            kind = (AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS
                    if len(u.to_bytes()) == 2
                    else AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS)
            adv.append((kind, u.to_bytes()))
        name = self.name.encode("utf-8")
        room = 31 - len(bytes(AdvertisingData(adv))) - 2
        if room > 0:
            kind = (AdvertisingData.COMPLETE_LOCAL_NAME if len(name) <= room
                    else AdvertisingData.SHORTENED_LOCAL_NAME)
            adv.append((kind, name[:room]))
        response = AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, name[:29])])
        return bytes(AdvertisingData(adv)), bytes(response)

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Power on and advertise (again after every disconnection)."""
        self.device.on(self.device.EVENT_CONNECTION, self._on_connection)
        await self.device.power_on()
        adv, scan_response = self._advertising()
        await self.device.start_advertising(advertising_data=adv, scan_response_data=scan_response,
                                            auto_restart=True, advertising_interval_min=20.0,
                                            advertising_interval_max=20.0)

    async def close(self) -> None:
        """Stop streaming, drop any connection and stop advertising."""
        await self._stop_stream()
        conn = self._connection
        if conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):  # bumble waits for the disconnection event
                    await conn.disconnect()
        # let a pending advertising restart (after the last disconnection) complete first
        await asyncio.sleep(0.05)
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()

    async def force_disconnect(self) -> None:
        """Drop the link from the board's side (a fault; the board keeps measuring)."""
        conn = self._connection
        if conn is None:
            return
        self.state.forced_disconnects += 1
        await self._stop_stream()
        with contextlib.suppress(Exception):
            await conn.disconnect()

    def _on_connection(self, connection: Connection) -> None:
        self._connection = connection
        self.state.connections += 1
        self._notified = False   # nothing sent on this connection yet
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self.state.disconnections += 1
        self.state.subscribed.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.state.streaming = False

    # -------------------------------------------------------------- commands
    def _on_command(self, connection: Connection, value: bytes) -> None:
        value = bytes(value)
        self.state.commands.append(value)
        cmds = self.profile.commands
        if cmds.start and value == cmds.start:
            self.state.stopped_by_command = False
            self._start_stream(restart_counter=True)
        elif cmds.stop and value == cmds.stop:
            self.state.stopped_by_command = True
            if self._task is not None:
                self._task.cancel()
                self._task = None
            self.state.streaming = False
        if self.profile.decoder == "gforce" and self._command is not None and value:
            response = bytes([0x00, value[0]])   # [resp_code = success, cmd]
            asyncio.get_running_loop().create_task(self._respond(connection, response))

    async def _respond(self, connection: Connection, response: bytes) -> None:
        if self._command is not None:
            with contextlib.suppress(Exception):
                await self.device.notify_subscriber(connection, self._command, response)

    def _subscription_handler(self, uuid: str) -> Callable[[object, bool, bool], None]:
        def handler(connection: object, notify: bool, indicate: bool) -> None:
            if notify or indicate:
                self.state.subscribed.add(uuid)
            else:
                self.state.subscribed.discard(uuid)
            if not self.profile.commands.start:   # streams while subscribed
                if self.state.subscribed:
                    self._start_stream(restart_counter=False)
                elif self._task is not None:
                    self._task.cancel()
                    self._task = None
                    self.state.streaming = False
        return handler

    # -------------------------------------------------------------- streaming
    def _due(self, now: float) -> int:
        if self._origin is None:
            self._origin = now
        return int((now - self._origin) * self.stream.packets_per_second * self.speed
                   * self.rate)

    def _start_stream(self, *, restart_counter: bool) -> None:
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        due = self._due(loop.time())
        if self._stop_at is not None:   # a stream after a reconnect still ends with its packets
            due = min(due, max(self.stream.position, self._stop_at - 2))
        self.stream.skip_to(due)
        if restart_counter:
            self.stream.restart_counter()
        self.stream.begin()
        self.state.streaming = True
        self.state.streams_started += 1
        self.state.stream_starts.append(self.stream.position)
        self.state.stream_start_samples.append(self.stream.sample_position)
        if self.stop_after_s is not None and self._stop_at is None:
            self._stop_at = self.stream.position + max(
                1, round(self.stop_after_s * self.stream.packets_per_second))
        self._task = loop.create_task(self._pace())

    async def _stop_stream(self) -> None:
        task, self._task = self._task, None
        self.state.streaming = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _send(self, conn: Connection, notifications: list[tuple[int, bytes]]) -> None:
        for index, payload in notifications:
            await self.device.notify_subscriber(conn, self._notify[index], payload)
            self.state.notifications += 1
            if not self._notified:
                self._notified = True
                self.state.connections_notified += 1

    async def _drain(self, conn: Connection) -> None:
        """Wait (boundedly) until the link has carried every notification queued.

        bumble queues notifications without limit: a board paced faster than
        the link carries them would build a backlog that a disconnection then
        discards, notifications the board counted as sent. Waiting here is
        the flow control of a real radio (its buffers are few): the board
        falls behind its clock instead (:attr:`BoardState.max_lag_s`).
        """
        host = self.device.host
        queue = getattr(host, "le_acl_packet_queue", None) or getattr(host, "acl_packet_queue",
                                                                       None)
        if queue is None or not queue.pending:
            return
        with contextlib.suppress(ValueError, TimeoutError):   # no such connection (any more)
            async with asyncio.timeout(5.0):
                await queue.drain(conn.handle)

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            while True:
                conn = self._connection
                if conn is None:
                    return
                due = self._due(loop.time())
                stop = self._stop_at
                if stop is not None:
                    due = min(due, stop)
                lag = (due - self.stream.position) / (self.stream.packets_per_second * self.rate)
                self.state.max_lag_s = max(self.state.max_lag_s, lag)
                while self.stream.position < due:
                    clean = stop is not None and self.stream.position >= stop - 2
                    await self._send(conn, self.stream.next_packet(clean=clean))
                await self._drain(conn)
                if stop is not None and self.stream.position >= stop:
                    self.state.finished = True   # connected, silent for good
                    return
                every = self.disconnect_every_s
                if every is not None and (loop.time() - started) * self.speed >= every:
                    # the last packet before the drop is delivered: the stream's faults
                    # stay visible to the receiver's counter
                    await self._send(conn, self.stream.next_packet(clean=True))
                    await self._drain(conn)
                    self.state.forced_disconnects += 1
                    self.state.streaming = False
                    self._task = None
                    await conn.disconnect()
                    return
                await asyncio.sleep(self.tick_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:   # the link went away under us: stop quietly
            _log.debug("emulated %s stopped streaming: %s", self.profile.name, exc)
            self.state.streaming = False
