"""The dashboard's HTTP server: uvicorn in a background thread, on its own event loop.

The socket is bound here, before the thread starts, so that a taken port or a
bad address is one clear error at start (not a log line from another thread),
and port 0 gives a free port whose number is known at once. The server's event
loop runs in a daemon thread: the pipeline (in the main thread, or the main
event loop for a live board) never waits for it. FastAPI and uvicorn are
imported here only when a server starts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emg_pipeline.errors import ConfigError, MissingDependencyError, WebServerError

if TYPE_CHECKING:
    from .sink import WebSink

__all__ = ["WebAddress", "WebServer", "network_address", "parse_web_address", "require_web"]

#: largest request body accepted (a manual mark is a few dozen bytes)
MAX_BODY_BYTES = 4096
#: largest WebSocket message accepted from a page
MAX_WS_MESSAGE_BYTES = 4096
#: largest HTTP head (request line and headers) accepted
MAX_HEAD_BYTES = 16384


@dataclass(frozen=True)
class WebAddress:
    """Where the dashboard listens.

    Attributes
    ----------
    host : str
        Address to bind (``127.0.0.1``, ``0.0.0.0``, ``::1``...).
    port : int
        TCP port (0: any free port).
    """

    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """True when only this computer can connect."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def text(self) -> str:
        """``HOST:PORT`` as given on the command line."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_web_address(value: str | tuple[str, int] | WebAddress) -> WebAddress:
    """Read ``[HOST:]PORT`` (``8765``, ``127.0.0.1:8765``, ``0.0.0.0:8765``, ``[::1]:8765``).

    Raises
    ------
    ConfigError
        If the text is not a port, or a host and a port.

    Examples
    --------
    >>> parse_web_address("8765")
    WebAddress(host='127.0.0.1', port=8765)
    >>> parse_web_address("0.0.0.0:9000").loopback, parse_web_address("[::1]:0").loopback
    (False, True)
    >>> parse_web_address("localhost:http")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    emg_pipeline.errors.ConfigError: invalid web address='localhost:http': expected [HOST:]PORT...
    """
    if isinstance(value, WebAddress):
        return value
    expected = "[HOST:]PORT with a port 0-65535, e.g. 8765 or 0.0.0.0:8765"
    if isinstance(value, tuple):
        host, port_value = value
        text = f"{host}:{port_value}"
    else:
        text = str(value).strip()
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = "127.0.0.1", text
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not port_text.isdigit():
            raise ConfigError("web address", value, expected)
        port_value = int(port_text)
    host = str(host).strip()
    if not host or any(c.isspace() for c in host) or len(host) > 253:
        raise ConfigError("web address", value, expected)
    if isinstance(port_value, bool) or not isinstance(port_value, int) \
            or not 0 <= port_value <= 65535:
        raise ConfigError("web address", text, expected)
    return WebAddress(host, port_value)


def network_address() -> str:
    """This computer's address on its network (what another device would type), or its name.

    A UDP socket is "connected" to a private address: no packet is sent, the
    operating system only picks the interface it would use.
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
    except OSError:
        address = ""
    return address if address and not address.startswith("0.") else socket.gethostname()


def require_web() -> None:
    """Check that FastAPI and uvicorn can be imported (the ``web`` extra).

    Raises
    ------
    MissingDependencyError
        Naming ``pip install 'emg-pipeline[web]'``.
    """
    for module in ("fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            raise MissingDependencyError("the web dashboard", "web", module) from None


class _OneLine(logging.Formatter):
    """Server log records as one ``emg-pipeline: web: ...`` line, never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(record.getMessage().split())
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f": {type(exc).__name__}: {' '.join(str(exc).split())}"
        return f"emg-pipeline: web: {text}"


def _quiet_server_logs() -> None:
    """uvicorn says only warnings and errors, each on one line (set up once)."""
    logger = logging.getLogger("uvicorn")
    if any(isinstance(h.formatter, _OneLine) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


def _bind(address: WebAddress) -> socket.socket:
    """A listening socket on ``address`` (one clear error when it cannot be had)."""
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise WebServerError(address.text, f"unknown host ({exc.strerror})") from None
    family, kind, proto, _, where = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or type(exc).__name__).lower()
        raise WebServerError(address.text, f"cannot listen there ({reason})") from None
    sock.setblocking(False)
    return sock


class WebServer:
    """uvicorn serving the dashboard app of a :class:`~emg_pipeline.web.sink.WebSink`.

    Parameters
    ----------
    sink : WebSink
        The dashboard: its hub, its marks, its token.
    address : WebAddress
        Where to listen.
    """

    def __init__(self, sink: WebSink, address: WebAddress) -> None:
        self.sink = sink
        self.address = address
        self.port = address.port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout_s: float = 15.0) -> None:
        """Bind, then serve from a daemon thread; return once the server accepts connections."""
        require_web()
        import uvicorn

        from .app import create_app

        _quiet_server_logs()
        sock = _bind(self.address)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            create_app(self.sink, port=self.port), log_config=None, log_level="warning",
            access_log=False, proxy_headers=False, server_header=False, lifespan="off",
            ws_max_size=MAX_WS_MESSAGE_BYTES, ws_per_message_deflate=False,
            ws_ping_interval=20.0, ws_ping_timeout=20.0, limit_concurrency=64,
            timeout_keep_alive=5, timeout_graceful_shutdown=2,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, args=(sock,), name="emg-web",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                sock.close()
                reason = f"{type(self._error).__name__}: {self._error}" if self._error \
                    else "the server stopped at start"
                raise WebServerError(self.address.text, reason)
            if time.monotonic() > deadline:
                self.stop(0.0)
                raise WebServerError(self.address.text, f"not serving after {timeout_s:g} s")
            time.sleep(0.01)

    def _run(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self.sink.hub.attach(loop)
        try:
            loop.run_until_complete(self._server.serve(sockets=[sock]))
        except BaseException as exc:   # reported by start(); this thread only ends
            self._error = exc
        finally:
            self.sink.hub.detach()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                sock.close()

    async def _flush(self, grace_s: float) -> None:
        """Wait until every viewer has been sent what is queued (at most ``grace_s``)."""
        hub = self.sink.hub
        hub.drain()
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(
                v.frames or v.texts or v.carry for v in hub.viewers):
            await asyncio.sleep(0.02)

    def stop(self, grace_s: float = 1.0) -> None:
        """Let viewers receive what is queued (up to ``grace_s``), then stop and join the thread."""
        loop, thread = self.loop, self._thread
        if loop is not None and thread is not None and thread.is_alive() and grace_s > 0:
            try:
                asyncio.run_coroutine_threadsafe(self._flush(grace_s), loop).result(grace_s + 1)
            except Exception:   # the loop went away meanwhile: nothing left to flush
                pass
        if self._server is not None:
            self._server.should_exit = True
        if thread is not None:
            thread.join(timeout=5.0)
