"""A local virtual radio link for emulated boards and their centrals.

:class:`VirtualAir` wraps bumble's in-process ``LocalLink``: every device
made with :meth:`VirtualAir.device` gets its own emulated controller on the
same "air", so a peripheral and a central in one process see each other's
advertisements and connect, with no radio and no kernel Bluetooth.
:meth:`VirtualAir.serve_hci` exposes one more controller on a TCP socket, so
a central in another process (``emg-pipeline stream --emulator HOST:PORT``)
attaches to the same air through bumble's ``tcp-client`` HCI transport.
"""

from __future__ import annotations

from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import Transport, open_transport
from bumble.transport.common import AsyncPipeSink

__all__ = ["VirtualAir"]


class VirtualAir:
    """A virtual LE link shared by emulated controllers.

    Examples
    --------
    >>> import asyncio
    >>> async def first_address() -> str:
    ...     return VirtualAir().device("board").random_address.to_string(False)
    >>> asyncio.run(first_address())
    'F0:00:00:00:00:01'
    """

    def __init__(self) -> None:
        self.link = LocalLink()
        self._count = 0
        self._transports: list[Transport] = []

    def _next_address(self) -> str:
        self._count += 1
        return f"F0:00:00:00:00:{self._count:02X}"

    def device(self, name: str, address: str | None = None) -> Device:
        """A new bumble device with its own controller on this link (not yet powered on).

        Parameters
        ----------
        name : str
            Controller / device name.
        address : str, optional
            Public address (default: a fresh ``F0:00:00:00:00:xx``).
        """
        addr = address or self._next_address()
        controller = Controller(name, link=self.link, public_address=addr)
        return Device(name=name, address=Address(addr),
                      host=Host(controller, AsyncPipeSink(controller)))

    async def serve_hci(self, host: str, port: int) -> Transport:
        """Expose a controller on this link as an HCI socket (bumble ``tcp-server``).

        A central in another process attaches with the transport
        ``tcp-client:HOST:PORT``. One client at a time; a new client resets the
        controller and starts afresh.
        """
        transport = await open_transport(f"tcp-server:{host}:{port}")
        Controller(f"hci-{port}", host_source=transport.source, host_sink=transport.sink,
                   link=self.link, public_address=self._next_address())
        self._transports.append(transport)
        return transport

    async def close(self) -> None:
        """Close the HCI sockets opened by :meth:`serve_hci`."""
        for transport in self._transports:
            await transport.close()
        self._transports = []
