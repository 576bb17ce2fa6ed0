"""The hub between the pipeline and the viewers: one writer, many bounded readers.

The pipeline's thread only *posts* small immutable messages (:class:`Opened`,
:class:`Update`, :class:`Closed`) with :meth:`Hub.post`: an append under a lock
held for a few microseconds, and at most one wake-up of the server's event loop
per batch. It never waits for the loop, a viewer or the network.

Everything else happens on the server's event loop, in one thread: the hub keeps
the live status (per channel state, counts, floor, thresholds, link faults),
the recent columns (:class:`~emg_pipeline.web.frames.ColumnRing`, for a viewer
that joins), the episode list, and encodes each batch **once** into a frame
that every viewer's :class:`Viewer` queue receives.

Backpressure: a viewer's queue holds at most ``max_frames`` frames; when a
slow viewer falls behind, its oldest frame is dropped (it draws fewer frames,
with a gap), but the events that frame carried are kept and sent before the
next one, so no alert, episode or mark is lost. A viewer that cannot even keep
up with the events is disconnected. Memory is bounded by the number of viewers
times ``max_frames``, whatever the stream does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emg_pipeline.events import Episode

from .frames import SERIES, ColumnRing, dumps, encode_frame, finite_or_none

__all__ = ["Closed", "Hub", "Opened", "Update", "Viewer"]

_log = logging.getLogger("emg_pipeline.web")

#: messages posted and not yet taken by the loop, beyond which the oldest lose their columns
MAX_INBOX = 64
#: events a viewer may have waiting before it is disconnected as hopelessly slow
MAX_VIEWER_EVENTS = 2000
#: episodes and marks sent to a viewer that joins (the most recent)
HELLO_EPISODES = 500
#: link events (loss, reconnects, no signal, bursts that were not muscle) kept for a
#: viewer that joins
HELLO_LINK_EVENTS = 200


@dataclass(frozen=True)
class Opened:
    """A stream opened: what a viewer needs to lay out the page."""

    info: Mapping[str, object]
    n_series: int
    capacity: int


@dataclass(frozen=True)
class Update:
    """What the pipeline's thread posts for one or more chunks (plain, immutable values).

    Counters are running totals, so an update that is dropped on the way
    (see :data:`MAX_INBOX`) loses only its columns.
    """

    col0: int
    columns: np.ndarray              # (n_series, n) float32
    events: tuple[dict[str, Any], ...]
    episodes: tuple[Episode, ...]
    stream_s: float
    wall: float
    floor: tuple[float, ...]
    on: tuple[float, ...]
    off: tuple[float, ...]
    flat_now: tuple[bool, ...]
    flat_s: tuple[float, ...]
    excluded_s: tuple[float, ...]
    lost_samples: int = 0
    loss_events: int = 0
    reconnects: int = 0
    malformed: int = 0


@dataclass(frozen=True)
class Closed:
    """The stream ended: its summary, as JSON-ready data."""

    summary: Mapping[str, object]
    wall: float = field(default_factory=time.time)


class Viewer:
    """One connected page: a bounded queue of frames and a queue of text messages.

    Parameters
    ----------
    max_frames : int
        Frames kept waiting; beyond, the oldest is dropped (its events are kept).
    """

    def __init__(self, max_frames: int) -> None:
        self.max_frames = max(1, int(max_frames))
        self.frames: deque[tuple[bytes, tuple[dict[str, Any], ...]]] = deque()
        self.texts: deque[str] = deque()
        self.carry: list[dict[str, Any]] = []
        self.wake = asyncio.Event()
        self.frames_sent = 0
        self.frames_dropped = 0
        self.too_slow = False

    def push_frame(self, blob: bytes, events: tuple[dict[str, Any], ...]) -> None:
        """Queue a frame; drop the oldest (keeping its events) if the queue is full."""
        if len(self.frames) >= self.max_frames:
            _, carried = self.frames.popleft()
            self.carry.extend(carried)
            self.frames_dropped += 1
            if len(self.carry) > MAX_VIEWER_EVENTS:
                self.too_slow = True
        self.frames.append((blob, events))
        self.wake.set()

    def push_text(self, text: str) -> None:
        """Queue a text message (never dropped)."""
        self.texts.append(text)
        if len(self.texts) > MAX_VIEWER_EVENTS:
            self.too_slow = True
        self.wake.set()

    def next_message(self) -> str | bytes | None:
        """The next message to send, or None: texts, then carried events, then frames."""
        if self.texts:
            return self.texts.popleft()
        if self.carry:
            text = dumps({"type": "events", "events": self.carry})
            self.carry = []
            return text
        if self.frames:
            self.frames_sent += 1
            return self.frames.popleft()[0]
        return None


class Hub:
    """Live state of the dashboard and the fan-out to viewers (see the module docstring).

    Parameters
    ----------
    max_viewers : int
        Viewers at once; more are refused.
    max_frames : int
        Frames queued per viewer (see :class:`Viewer`).
    clock : callable
        Wall clock (seconds since the epoch) for the frames' timestamps.
    """

    def __init__(self, *, max_viewers: int = 16, max_frames: int = 8,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_viewers = int(max_viewers)
        self.max_frames = int(max_frames)
        self._clock = clock
        self._lock = threading.Lock()
        self._inbox: deque[Opened | Update | Closed] = deque()
        self._scheduled = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.viewers: set[Viewer] = set()
        self.updates_dropped = 0
        self._reset_stream()

    # ------------------------------------------------------------ pipeline side
    def post(self, message: Opened | Update | Closed) -> None:
        """Hand a message over from any thread; never blocks on the loop or the viewers."""
        with self._lock:
            self._inbox.append(message)
            if len(self._inbox) > MAX_INBOX:
                self._shed()
            wake = not self._scheduled and self.loop is not None
            if wake:
                self._scheduled = True
        if wake:
            try:
                self.loop.call_soon_threadsafe(self.drain)  # type: ignore[union-attr]
            except RuntimeError:    # the loop was closed: nobody is watching
                with self._lock:
                    self._scheduled = False

    def _shed(self) -> None:
        """Drop the oldest update's columns (the loop is starved); its events go to the next."""
        inbox = self._inbox
        for i in range(len(inbox) - 1):
            old, new = inbox[i], inbox[i + 1]
            if isinstance(old, Update) and isinstance(new, Update):
                inbox[i + 1] = dataclasses.replace(
                    new, events=old.events + new.events, episodes=old.episodes + new.episodes)
                del inbox[i]
                self.updates_dropped += 1
                return

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve viewers from ``loop`` (the server's); take what was posted before."""
        with self._lock:
            self.loop = loop
            self._scheduled = True
        loop.call_soon_threadsafe(self.drain)

    def detach(self) -> None:
        """Stop waking the loop (it is closing)."""
        with self._lock:
            self.loop = None
            self._scheduled = False

    # ---------------------------------------------------------------- loop side
    def _reset_stream(self) -> None:
        self.info: dict[str, Any] | None = None
        self.ring: ColumnRing | None = None
        self.n_series = 0
        self.channels: tuple[str, ...] = ()
        self.frame_seq = 0
        self.event_seq = 0
        self.stream_s = 0.0
        self.ended: dict[str, Any] | None = None
        self.episode_rows: deque[dict[str, Any]] = deque(maxlen=HELLO_EPISODES)
        self.link_rows: deque[dict[str, Any]] = deque(maxlen=HELLO_LINK_EVENTS)
        self.episodes: list[Episode] = []
        self.n_alerts = 0
        self.n_marks = 0
        self.last_alert: dict[str, Any] | None = None
        self._state: list[dict[str, Any]] = []
        self._link: dict[str, int] = {"lost_samples": 0, "loss_events": 0, "reconnects": 0,
                                      "malformed": 0}

    def drain(self) -> None:
        """Take every posted message, update the state, send one frame to every viewer.

        A failure here is said on one line and the hub carries on: the viewers are
        a view of the stream, never a reason to stop it.
        """
        with self._lock:
            messages = list(self._inbox)
            self._inbox.clear()
            self._scheduled = False
        try:
            self._take(messages)
        except Exception as exc:
            _log.warning("dashboard: a frame was lost (%s: %s)", type(exc).__name__, exc)

    def _take(self, messages: list[Opened | Update | Closed]) -> None:
        batch: list[Update] = []
        for message in messages:
            if isinstance(message, Update):
                batch.append(message)
                continue
            if batch:
                self._send_updates(batch)
                batch = []
            if isinstance(message, Opened):
                self._open(message)
            else:
                self._close(message)
        if batch:
            self._send_updates(batch)

    def _open(self, message: Opened) -> None:
        self._reset_stream()
        self.info = dict(message.info)
        self.channels = tuple(str(c["name"]) for c in self.info["channels"])  # type: ignore[index, union-attr]
        self.n_series = message.n_series
        self.ring = ColumnRing(message.n_series, message.capacity)
        self._state = [{"state": "rest", "since": None, "floor": None, "on": None, "off": None,
                        "twitches": 0, "spasms": 0, "nosignal": False, "nosignal_s": 0.0,
                        "excluded_s": 0.0} for _ in self.channels]
        hello = self.hello_text()
        for viewer in self.viewers:
            viewer.frames.clear()
            viewer.carry.clear()
            viewer.push_text(hello)

    def _close(self, message: Closed) -> None:
        self.ended = {**message.summary, "wall": message.wall}
        text = dumps({"type": "end", "summary": self.ended, "status": self.status()})
        for viewer in self.viewers:
            viewer.push_text(text)

    def _send_updates(self, updates: Sequence[Update]) -> None:
        if self.ring is None:   # nothing opened yet: nothing to show them against
            return
        events: list[dict[str, Any]] = []
        col0 = None
        pieces: list[np.ndarray] = []
        for u in updates:
            if u.columns.shape[1]:
                if col0 is not None and u.col0 != col0 + sum(p.shape[1] for p in pieces):
                    self._fan_out(col0, pieces, [])   # not contiguous: send what is joined
                    pieces = []
                    col0 = None
                if col0 is None:
                    col0 = u.col0
                pieces.append(u.columns)
                self.ring.extend(u.col0, u.columns)
            events.extend(u.events)
            self.episodes.extend(u.episodes)
        for event in events:
            self._apply_event(event)
        if updates:
            self._apply_totals(updates[-1])
        self._fan_out(col0 if col0 is not None else self.ring.end, pieces, events)

    def _fan_out(self, col0: int, pieces: list[np.ndarray], events: list[dict[str, Any]]) -> None:
        self.frame_seq += 1
        if not self.viewers:   # nobody watching: the ring and the status are kept, no frame made
            return
        columns = (np.concatenate(pieces, axis=1) if len(pieces) > 1 else pieces[0]) if pieces \
            else np.empty((self.n_series, 0), dtype=np.float32)
        ev = tuple(events)
        header = {"type": "frame", "seq": self.frame_seq, "col0": int(col0),
                  "n": int(columns.shape[1]), "series": self.n_series,
                  "t": finite_or_none(self.stream_s, 9), "emit": self._clock(),
                  "status": self.status(), "events": list(ev)}
        blob = encode_frame(header, columns)
        slow = []
        for viewer in self.viewers:
            viewer.push_frame(blob, ev)
            if viewer.too_slow:
                slow.append(viewer)
        for viewer in slow:       # the endpoint closes its socket when it sees this
            viewer.wake.set()

    def _apply_event(self, event: dict[str, Any]) -> None:
        self.event_seq += 1
        event["seq"] = self.event_seq
        kind = event["kind"]
        k = self._index(event.get("channel"))
        if kind == "onset" and k is not None:
            self._state[k].update(state="active", since=event["onset_s"])
        elif kind == "sustained" and k is not None:
            self._state[k].update(state="spasm", since=event["onset_s"])
            self.n_alerts += 1
            self.last_alert = event
        elif kind == "end" and k is not None:
            self._state[k].update(state="rest", since=None)
            if "episode" in event:
                label = event["episode"]["label"]
                self._state[k]["spasms" if label == "spasm" else "twitches"] += 1
                self.episode_rows.append(event)
            else:   # rejected as not muscle: listed with the link events, counted nowhere
                self.link_rows.append(event)
        elif kind == "mark":
            self.n_marks += 1
            self.episode_rows.append(event)
        elif kind in ("loss", "reconnect", "malformed", "nosignal", "signal"):
            self.link_rows.append(event)

    def _apply_totals(self, u: Update) -> None:
        self.stream_s = max(self.stream_s, u.stream_s)
        for k, state in enumerate(self._state):
            state["floor"] = finite_or_none(u.floor[k])
            state["on"] = finite_or_none(u.on[k])
            state["off"] = finite_or_none(u.off[k])
            state["nosignal"] = bool(u.flat_now[k])
            state["nosignal_s"] = round(u.flat_s[k], 3)
            state["excluded_s"] = round(u.excluded_s[k], 3)
        self._link = {"lost_samples": u.lost_samples, "loss_events": u.loss_events,
                      "reconnects": u.reconnects, "malformed": u.malformed}

    def _index(self, channel: object) -> int | None:
        try:
            return self.channels.index(str(channel))
        except ValueError:
            return None

    # ----------------------------------------------------------------- viewers
    def status(self) -> dict[str, Any]:
        """The live status: per channel state and figures, link faults, totals."""
        return {"t": finite_or_none(self.stream_s, 9), "ch": self._state, "link": self._link,
                "alerts": self.n_alerts, "episodes": len(self.episodes), "marks": self.n_marks,
                "viewers": len(self.viewers), "ended": self.ended is not None}

    def hello(self) -> dict[str, Any]:
        """What a viewer that joins is told first: the stream, its status and its history."""
        return {"type": "hello", "info": self.info, "status": self.status(),
                "episodes": list(self.episode_rows), "link": list(self.link_rows),
                "last_alert": self.last_alert, "ended": self.ended,
                "series": list(SERIES)}

    def hello_text(self) -> str:
        """:meth:`hello` as JSON text."""
        return dumps(self.hello())

    def backfill(self) -> bytes | None:
        """A frame of the recent columns (what the ring holds), or None before a stream."""
        if self.ring is None:
            return None
        first, columns = self.ring.view()
        header = {"type": "frame", "seq": self.frame_seq, "col0": int(first),
                  "n": int(columns.shape[1]), "series": self.n_series, "backfill": True,
                  "t": finite_or_none(self.stream_s, 9), "emit": self._clock(),
                  "status": self.status(), "events": []}
        return encode_frame(header, columns)

    def connect(self) -> Viewer | None:
        """Register a viewer (its first messages queued); None when there are too many."""
        if len(self.viewers) >= self.max_viewers:
            return None
        viewer = Viewer(self.max_frames)
        self.viewers.add(viewer)
        if self.info is not None:
            viewer.push_text(self.hello_text())
            blob = self.backfill()
            if blob is not None:
                viewer.push_frame(blob, ())
        else:
            viewer.push_text(json.dumps({"type": "waiting"}))
        return viewer

    def disconnect(self, viewer: Viewer) -> None:
        """Forget a viewer."""
        self.viewers.discard(viewer)
