"""The dashboard's ASGI app (FastAPI), behind the :class:`~emg_pipeline.web.guard.Guard`.

Routes
------
``GET /``
    The page (``?token=...`` once, when a token is required: it is then kept
    in a same-site cookie).
``GET /static/NAME``
    The page's script and style sheets and the vendored uPlot: a fixed set of
    files read from the package once, served from memory.
``GET /api/state``
    The stream, its live status and its recent episodes (JSON).
``GET /api/diary``, ``GET /api/diary/plot/NAME.png``
    The session diary: figures and flags (JSON; ``?plots=0``: without drawing
    the plots), and its plots.
``POST /api/mark``
    A manual mark: ``{"note": "...", "channel": "...", "time_s": 12.5}`` (all
    optional); 202 when queued.
``WS /ws``
    The live stream: a ``hello`` text message, then binary frames (see
    :mod:`emg_pipeline.web.frames`) and text messages (``events``, ``end``). A
    page may send ``{"type": "mark", ...}`` (answered by ``mark-ack`` or
    ``error``) and ``{"type": "ping"}``.

FastAPI is imported by :func:`create_app` only, so that this module (and its
documentation) can be read without the ``web`` extra. (No ``from __future__
import annotations`` here: FastAPI reads the route functions' annotations.)
"""

import asyncio
import json
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

from .frames import dumps
from .guard import COOKIE, Guard
from .server import MAX_BODY_BYTES
from .sink import MAX_NOTE, MarkRejected

if TYPE_CHECKING:
    from fastapi import WebSocket

    from .diary import DiaryView
    from .hub import Viewer
    from .sink import WebSink

__all__ = ["create_app"]

#: the files of the page, and their types: nothing else is ever served
STATIC_FILES: dict[str, str] = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "uPlot.LICENSE.txt": "text/plain; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: shortest time between two diary computations (each draws the plots)
DIARY_MIN_INTERVAL_S = 5.0
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _load_static() -> dict[str, bytes]:
    folder = resources.files("emg_pipeline.web") / "static"
    files = {name: (folder / name).read_bytes() for name in STATIC_FILES}
    files["index.html"] = (folder / "index.html").read_bytes()
    return files


class _DiaryCache:
    """The last diary computed, recomputed (off the event loop) when episodes were added.

    With plots it is recomputed at most every :data:`DIARY_MIN_INTERVAL_S`
    (drawing them takes seconds); the figures alone are cheap.
    """

    def __init__(self, sink: "WebSink", plots: bool) -> None:
        self.sink = sink
        self.plots = plots
        self.view: DiaryView | None = None
        self.key: int | None = None
        self.at = -float("inf")
        self.lock = asyncio.Lock()

    async def get(self) -> "DiaryView":
        hub = self.sink.hub
        async with self.lock:
            key = len(hub.episodes)
            wait = DIARY_MIN_INTERVAL_S if self.plots else 0.5
            fresh = self.view is not None and (key == self.key
                                               or time.monotonic() - self.at < wait)
            if not fresh:
                diary = self.sink.diary
                if diary is None:
                    from .diary import Diary

                    diary = self.sink.diary = Diary()
                episodes = list(hub.episodes)   # a snapshot: the loop keeps appending
                self.view = await asyncio.to_thread(diary.build, episodes, self.sink.sites,
                                                    self.plots)
                self.key, self.at = key, time.monotonic()
            assert self.view is not None
            return self.view


def create_app(sink: "WebSink", *, port: int) -> Guard:
    """The guarded ASGI app of a dashboard sink."""
    from fastapi import FastAPI, Request, WebSocket
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.websockets import WebSocketDisconnect

    class MarkBody(BaseModel):
        """A manual mark as a page sends it."""

        model_config = ConfigDict(extra="forbid")

        note: str = Field("", max_length=MAX_NOTE)
        channel: str | None = Field(None, max_length=64)
        time_s: float | None = Field(None, ge=0, allow_inf_nan=False)

    hub = sink.hub
    static = _load_static()
    diaries = {True: _DiaryCache(sink, plots=True), False: _DiaryCache(sink, plots=False)}
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    def plain(status: int, text: str) -> JSONResponse:
        return JSONResponse({"error": text}, status_code=status)

    @app.get("/")
    async def index(request: Request) -> HTMLResponse:
        response = HTMLResponse(static["index.html"], headers={
            "content-security-policy": _CSP, "cache-control": "no-store"})
        token = request.query_params.get("token")
        if sink.token is not None and token:   # the guard checked it
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/static/{name}")
    async def static_file(name: str) -> Response:
        if name not in STATIC_FILES:
            return plain(404, "no such file")
        return Response(static[name], media_type=STATIC_FILES[name],
                        headers={"cache-control": "no-cache"})

    @app.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(static["favicon.svg"], media_type=STATIC_FILES["favicon.svg"])

    @app.get("/api/state")
    async def state() -> JSONResponse:
        return JSONResponse(hub.hello(), headers={"cache-control": "no-store"})

    @app.get("/api/diary")
    async def diary_data(plots: int = 1) -> JSONResponse:
        if hub.info is None:
            return plain(409, "no stream yet")
        cache = diaries[bool(plots)]
        view = await cache.get()
        data = dict(view.data)
        data["version"] = cache.key or 0
        return JSONResponse(data, headers={"cache-control": "no-store"})

    @app.get("/api/diary/plot/{name}")
    async def diary_plot(name: str) -> Response:
        view = diaries[True].view
        stem = name.removesuffix(".png")
        if view is None or stem not in view.plots:
            return plain(404, "no such plot (open the diary first)")
        return Response(view.plots[stem], media_type="image/png",
                        headers={"cache-control": "no-store"})

    @app.post("/api/mark", status_code=202)
    async def mark(body: MarkBody) -> JSONResponse:
        try:
            queued = sink.request_mark(body.note, body.channel, body.time_s)
        except MarkRejected as exc:
            return plain(exc.status, exc.reason)
        return JSONResponse({"mark": queued, "status": "queued"}, status_code=202)

    @app.websocket("/ws")
    async def stream(ws: WebSocket) -> None:
        viewer = hub.connect()
        if viewer is None:
            await ws.close(code=1013, reason="too many viewers")
            return
        try:
            await ws.accept()
        except Exception:
            hub.disconnect(viewer)
            return
        pump = asyncio.create_task(_pump(ws, viewer))
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is not None:
                    reply = _answer(sink, text)
                    if reply is not None:
                        viewer.push_text(reply)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            hub.disconnect(viewer)
            pump.cancel()

    return Guard(app, token=sink.token, loopback_only=sink.address.loopback,
                 max_body=MAX_BODY_BYTES)


async def _pump(ws: "WebSocket", viewer: "Viewer") -> None:
    """Send a viewer its queued messages as they come (its own pace; others never wait)."""
    try:
        while True:
            await viewer.wake.wait()
            viewer.wake.clear()
            if viewer.too_slow:
                await ws.close(code=1008, reason="too slow to keep up with the events")
                return
            while (message := viewer.next_message()) is not None:
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                else:
                    await ws.send_text(message)
    except asyncio.CancelledError:
        raise
    except Exception:   # the page went away: the receive side ends the connection
        return


def _answer(sink: "WebSink", text: str) -> str | None:
    """The reply to a page's text message (a mark or a ping)."""
    try:
        message = json.loads(text)
    except ValueError:
        return _error("not JSON")
    if not isinstance(message, dict):
        return _error("expected a JSON object")
    kind = message.get("type")
    if kind == "ping":
        return dumps({"type": "pong", "t": message.get("t")})
    if kind != "mark":
        return _error("unknown message type")
    fields: dict[str, Any] = {k: message.get(k) for k in ("note", "channel", "time_s")}
    unknown = set(message) - {"type", "note", "channel", "time_s", "ref"}
    if unknown:
        return _error(f"unknown field(s): {', '.join(sorted(map(str, unknown)))[:80]}")
    try:
        queued = sink.request_mark(fields["note"] or "", fields["channel"], fields["time_s"])
    except MarkRejected as exc:
        return _error(exc.reason, message.get("ref"))
    ref = message.get("ref")
    return dumps({"type": "mark-ack", "mark": queued,
                  "ref": ref if isinstance(ref, int | str) else None})


def _error(reason: str, ref: object = None) -> str:
    return dumps({"type": "error", "error": reason,
                  "ref": ref if isinstance(ref, int | str) else None})
