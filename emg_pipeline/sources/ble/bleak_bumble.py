"""A bleak backend built on bumble: the real bleak API against emulated boards.

bleak's ``BleakScanner`` and ``BleakClient`` accept a ``backend=`` class. The
two classes here implement bleak's backend interfaces on a bumble host, so
that unmodified bleak code (and :class:`~emg_pipeline.sources.ble.BleSource`)
scans, connects, discovers, writes, reads and subscribes over a bumble link:
an in-process virtual link in tests, or bumble's ``tcp-client`` HCI transport
to the ``emg-pipeline emulate`` process. No radio, no BlueZ.

Both classes take the host as the keyword argument ``bumble=`` (a
:class:`BumbleCentral`), which bleak passes through::

    central = await BumbleCentral.open("tcp-client:127.0.0.1:7000")
    async with BleakScanner(backend=BumbleScanner, bumble=central) as scanner: ...
    client = BleakClient(device, backend=BumbleClient, bumble=central)

:func:`bumble_backend` bundles the two for :class:`~emg_pipeline.sources.ble.BleBackend`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bleak.uuids import normalize_uuid_str
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import Characteristic
from bumble.hci import Address
from bumble.transport import Transport, open_transport

__all__ = ["BumbleCentral", "BumbleClient", "BumbleScanner", "parse_advertisement"]

_DISCONNECT_TIMEOUT_S = 5.0  # longest wait for a disconnection to be confirmed
_CENTRAL_ADDRESS = "F1:00:00:00:00:01"

_PROPERTY_NAMES = {
    Characteristic.Properties.BROADCAST: "broadcast",
    Characteristic.Properties.READ: "read",
    Characteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    Characteristic.Properties.WRITE: "write",
    Characteristic.Properties.NOTIFY: "notify",
    Characteristic.Properties.INDICATE: "indicate",
    Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES: "authenticated-signed-writes",
    Characteristic.Properties.EXTENDED_PROPERTIES: "extended-properties",
}


class BumbleCentral:
    """A bumble host standing in for the computer's Bluetooth adapter.

    Parameters
    ----------
    device : bumble.device.Device
        The host's device (on a virtual link, or on an HCI transport).
    transport : bumble.transport.Transport, optional
        The transport it runs on, closed by :meth:`close`.
    """

    def __init__(self, device: Device, transport: Transport | None = None) -> None:
        self.device = device
        self.transport = transport
        self._powered = False

    @classmethod
    async def open(cls, transport_spec: str) -> BumbleCentral:
        """Attach to an HCI transport (e.g. ``"tcp-client:127.0.0.1:7000"``) and power on."""
        transport = await open_transport(transport_spec)
        device = Device.with_hci("emg-pipeline", Address(_CENTRAL_ADDRESS),
                                 transport.source, transport.sink)
        central = cls(device, transport)
        await central.power_on()
        return central

    async def power_on(self) -> None:
        """Power the host on (once)."""
        if not self._powered:
            await self.device.power_on()
            self._powered = True

    async def close(self) -> None:
        """Drop connections and close the transport."""
        for conn in list(self.device.connections.values()):
            with contextlib.suppress(Exception):
                await conn.disconnect()
        if self.transport is not None:
            await self.transport.close()
            self.transport = None


def _uuid_text(uuid: UUID) -> str:
    return normalize_uuid_str(uuid.to_hex_str("-").lower())


def parse_advertisement(data: AdvertisingData) -> dict[str, Any]:
    """Split bumble advertising data into bleak's ``AdvertisementData`` fields.

    Returns
    -------
    dict
        ``local_name``, ``service_uuids`` (full lowercase), ``manufacturer_data``
        ({company id: bytes}), ``service_data`` and ``tx_power``.
    """
    name: str | None = None
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: int | None = None
    sizes = {
        AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS: 2,
        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS: 2,
        AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS: 4,
        AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS: 4,
        AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS: 16,
        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS: 16,
    }
    data_sizes = {AdvertisingData.SERVICE_DATA_16_BIT_UUID: 2,
                  AdvertisingData.SERVICE_DATA_32_BIT_UUID: 4,
                  AdvertisingData.SERVICE_DATA_128_BIT_UUID: 16}
    for kind, value in data.ad_structures:
        if kind in (AdvertisingData.COMPLETE_LOCAL_NAME, AdvertisingData.SHORTENED_LOCAL_NAME):
            if name is None or kind == AdvertisingData.COMPLETE_LOCAL_NAME:
                name = value.decode("utf-8", "replace")
        elif kind in sizes:
            size = sizes[kind]
            for i in range(0, len(value) - size + 1, size):
                text = _uuid_text(UUID.from_bytes(value[i: i + size]))
                if text not in uuids:
                    uuids.append(text)
        elif kind == AdvertisingData.MANUFACTURER_SPECIFIC_DATA and len(value) >= 2:
            manufacturer[int.from_bytes(value[:2], "little")] = bytes(value[2:])
        elif kind in data_sizes and len(value) >= data_sizes[kind]:
            size = data_sizes[kind]
            service_data[_uuid_text(UUID.from_bytes(value[:size]))] = bytes(value[size:])
        elif kind == AdvertisingData.TX_POWER_LEVEL and len(value) == 1:
            tx_power = int.from_bytes(value, "little", signed=True)
    return {"local_name": name, "service_uuids": uuids, "manufacturer_data": manufacturer,
            "service_data": service_data, "tx_power": tx_power}


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend on a bumble host (pass ``bumble=BumbleCentral``)."""

    def __init__(self, detection_callback: AdvertisementDataCallback | None,
                 service_uuids: list[str] | None, scanning_mode: str = "active", *,
                 bumble: BumbleCentral, **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        self._central = bumble
        self._active = scanning_mode != "passive"
        self._listening = False

    async def start(self) -> None:
        self.seen_devices = {}
        await self._central.power_on()
        device = self._central.device
        if not self._listening:
            device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
            self._listening = True
        await device.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        device = self._central.device
        if self._listening:
            device.remove_listener(device.EVENT_ADVERTISEMENT, self._on_advertisement)
            self._listening = False
        with contextlib.suppress(Exception):
            await device.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        fields = parse_advertisement(advertisement.data)
        address = advertisement.address.to_string(False)
        previous = self.seen_devices.get(address)
        if previous is not None:   # merge with what the scan response said before
            old = previous[1]
            fields["local_name"] = fields["local_name"] or old.local_name
            fields["service_uuids"] = list(dict.fromkeys([*old.service_uuids,
                                                          *fields["service_uuids"]]))
            fields["manufacturer_data"] = {**old.manufacturer_data, **fields["manufacturer_data"]}
            fields["service_data"] = {**old.service_data, **fields["service_data"]}
        adv = AdvertisementData(rssi=advertisement.rssi, platform_data=(advertisement,), **fields)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        device = self.create_or_update_device(address, address, fields["local_name"],
                                              advertisement.address, adv)
        self.call_detection_callbacks(device, adv)


class BumbleClient(BaseBleakClient):
    """bleak client backend on a bumble host (pass ``bumble=BumbleCentral``).

    ``connect`` connects, exchanges the MTU (``mtu=`` keyword, default 517:
    bumble grants up to 247 on its virtual link) and discovers every service,
    characteristic and descriptor.
    """

    def __init__(self, address_or_ble_device: BLEDevice | str, *,
                 disconnected_callback: Callable[[], None] | None, timeout: float,
                 bumble: BumbleCentral, mtu: int = 517, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout)
        self._central = bumble
        self._mtu_wanted = mtu
        self._mtu = 23
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._closing = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}
        details = getattr(address_or_ble_device, "details", None)
        self._target = details if isinstance(details, Address) else Address(self.address)

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        await self._central.power_on()
        device = self._central.device
        try:
            conn = await device.connect(self._target, timeout=self._timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise BleakDeviceNotFoundError(self.address, f"cannot connect: {exc}") from exc
        self._closing = False
        self._connection = conn
        conn.on(conn.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            peer = Peer(conn)
            self._peer = peer
            self._mtu = await peer.request_mtu(self._mtu_wanted)
            await peer.discover_all()
            self.services = self._collect(peer)
        except Exception as exc:
            with contextlib.suppress(Exception):
                await self.disconnect()
            raise BleakError(f"GATT discovery failed: {exc}") from exc

    def _collect(self, peer: Peer) -> BleakGATTServiceCollection:
        services = BleakGATTServiceCollection()
        for s in peer.services:
            service = BleakGATTService(s, s.handle, _uuid_text(s.uuid))
            services.add_service(service)
            for c in s.characteristics:
                props = [text for flag, text in _PROPERTY_NAMES.items() if c.properties & flag]
                char = BleakGATTCharacteristic(c, c.handle, _uuid_text(c.uuid), props,
                                               lambda: self._mtu - 3, service)
                services.add_characteristic(char)
                for d in c.descriptors:
                    services.add_descriptor(
                        BleakGATTDescriptor(d, d.handle, _uuid_text(d.type), char))
        return services

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._peer = None
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        conn = self._connection
        if conn is None:
            return
        self._closing = True
        # bumble waits for the controller's disconnection event; bound the wait
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_DISCONNECT_TIMEOUT_S):
                await conn.disconnect()
        self._connection = None
        self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("pairing is not supported by the bumble backend")

    async def unpair(self) -> None:
        raise BleakError("pairing is not supported by the bumble backend")

    def _require(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        self._require()
        return bytearray(await characteristic.obj.read_value())

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        self._require()
        return bytearray(await descriptor.obj.read_value())

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: SizedBuffer,
                              response: bool) -> None:
        self._require()
        await characteristic.obj.write_value(bytes(data), with_response=response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor,
                                    data: SizedBuffer) -> None:
        self._require()
        await descriptor.obj.write_value(bytes(data), with_response=True)

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        peer = self._require()

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = deliver
        await peer.subscribe(characteristic.obj, deliver, prefer_notify=True)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require()
        subscriber = self._subscribers.pop(characteristic.handle, None)
        await peer.unsubscribe(characteristic.obj, subscriber)
