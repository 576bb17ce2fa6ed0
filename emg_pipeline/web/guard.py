"""The dashboard's gate: every HTTP request and WebSocket passes :class:`Guard` first.

A plain ASGI middleware (no web framework needed), checking in this order:

- sizes: the path and the query string are bounded (414), and so is a request
  body (413, from its ``Content-Length`` or while it arrives);
- the ``Host`` header, when the server listens on loopback only: a page on
  another site that makes a browser resolve its own name to 127.0.0.1 (DNS
  rebinding) is refused (421);
- the origin: a WebSocket or a ``POST`` sent by a page of another origin is
  refused (403), so a site the viewer happens to visit cannot read the stream
  or write marks;
- the token, when one is required (the server listens beyond loopback): the
  ``token`` query parameter, an ``X-Emg-Token`` header, an ``Authorization:
  Bearer`` header or the ``emg_token`` cookie the page receives (401).

Each refusal is a short plain-text answer; nothing of the request reaches the
app. Responses get headers that keep other pages from framing or sniffing them.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["COOKIE", "TOKEN_HEADER", "Guard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: cookie that carries the token once the page was opened with it
COOKIE = "emg_token"
#: header that may carry the token
TOKEN_HEADER = "x-emg-token"
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_EXTRA_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def _host_name(host: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8765`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware enforcing the dashboard's limits (see the module docstring).

    Parameters
    ----------
    app : ASGI application
        What is guarded.
    token : str, optional
        Required on every request when given.
    loopback_only : bool
        Accept only ``Host`` headers naming this computer (localhost,
        127.0.0.1, ::1).
    max_body : int
        Largest request body, in bytes.
    max_query : int
        Longest query string, in bytes.
    max_path : int
        Longest path, in bytes.
    """

    def __init__(self, app: App, *, token: str | None, loopback_only: bool,
                 max_body: int = 4096, max_query: int = 1024, max_path: int = 256) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only
        self.max_body = int(max_body)
        self.max_query = int(max_query)
        self.max_path = int(max_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]}; {text}" if name == "cookie" and name in headers \
                else text
        refusal = self.check(scope, headers)
        if refusal is not None:
            await self._refuse(kind, *refusal, send)
            return
        if kind == "http":
            length = headers.get("content-length")
            if length is not None and (not length.strip().isdigit()
                                       or int(length) > self.max_body):
                await self._refuse(kind, 413, "request body too large", send)
                return
            if scope.get("method", "GET") not in _SAFE_METHODS:
                body = await self._read_body(receive)
                if body is None:
                    await self._refuse(kind, 413, "request body too large", send)
                    return
                receive = _replay(body, receive)
            send = self._with_headers(send)
        await self.app(scope, receive, send)

    def check(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """``(status, reason)`` when the request must be refused, else None."""
        path = scope.get("raw_path") or scope.get("path", "").encode()
        query = scope.get("query_string", b"")
        if len(path) > self.max_path or len(query) > self.max_query:
            return 414, "address too long"
        host = headers.get("host", "")
        if self.loopback_only and _host_name(host) not in _LOOPBACK_NAMES:
            return 421, "this dashboard answers only to localhost / 127.0.0.1"
        cross = scope["type"] == "websocket" or scope.get("method", "GET") not in _SAFE_METHODS
        origin = headers.get("origin")
        if cross and origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            return 403, "requests from other sites are refused"
        if self.token is not None and not self._token_ok(query, headers):
            return 401, "a token is required: open the address printed when the dashboard started"
        return None

    def _token_ok(self, query: bytes, headers: dict[str, str]) -> bool:
        assert self.token is not None
        given: list[str] = []
        try:
            given += parse_qs(query.decode("latin-1"), max_num_fields=20).get("token", [])
        except ValueError:
            return False
        if TOKEN_HEADER in headers:
            given.append(headers[TOKEN_HEADER])
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given.append(auth[7:].strip())
        if "cookie" in headers:
            try:
                jar = SimpleCookie(headers["cookie"])
            except CookieError:
                jar = SimpleCookie()
            if COOKIE in jar:
                given.append(jar[COOKIE].value)
        expected = self.token.encode()
        return any(hmac.compare_digest(g.encode("utf-8", "replace"), expected) for g in given)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it exceeds the limit."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(parts)

    def _with_headers(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_EXTRA_HEADERS]
            await send(message)

        return wrapped

    @staticmethod
    async def _refuse(kind: str, status: int, reason: str, send: Send) -> None:
        if kind == "websocket":
            # closing before accepting answers the handshake with HTTP 403
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
            return
        body = (reason + "\n").encode("utf-8")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"), *_EXTRA_HEADERS]})
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
