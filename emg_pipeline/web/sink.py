"""The dashboard as a :class:`~emg_pipeline.run.Sink`: chunks in, screen frames out.

:class:`WebSink` does, in the pipeline's thread, only what must follow the
samples: the displayed signal (the chunk result's conditioned ``band``, or the
raw samples), its min/max columns, the envelope's, the thresholds, the
pipeline's no-signal frames, and the events said as plain data; then it posts one small
message to the :class:`~emg_pipeline.web.hub.Hub` at most ``rate_hz`` times a
second (at once when something happens, so an alert is not held back). Each
step is vectorised, once per frame over the chunks since the previous one (a
replay faster than real time costs one pass per frame, not one per chunk);
nothing waits for the server, the network or a viewer.

Manual marks ("I felt a spasm now") arrive from the server's thread with
:meth:`WebSink.request_mark`; they are applied in the pipeline's thread at the
next chunk, to every sink given to :meth:`WebSink.add_mark_target` (the episode
file and the recording have a ``mark(time_s, note, channel)`` method), so the
files are never written from two threads.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from emg_pipeline.chunk import ChunkFlags
from emg_pipeline.errors import ConfigError
from emg_pipeline.events import Episode, LiveEvent
from emg_pipeline.settings import PipelineSettings
from emg_pipeline.sites import SiteMap, site_of_name

from .frames import SERIES, MinMaxColumns, column_frames, finite_or_none
from .hub import Closed, Hub, Opened, Update
from .server import WebAddress, parse_web_address

if TYPE_CHECKING:
    from emg_pipeline.pipeline import ChunkResult
    from emg_pipeline.run import RunSummary, StreamInfo

    from .diary import Diary
    from .server import WebServer

__all__ = ["MarkRejected", "MarkTarget", "WebSink"]

#: the time windows a viewer may choose, in seconds (the recent columns kept cover the largest)
WINDOW_RANGE_S = (10.0, 30.0)
#: longest note of a manual mark
MAX_NOTE = 120
#: marks waiting for the next chunk, beyond which new ones are refused
MAX_PENDING_MARKS = 32
#: shortest time between two marks (a double click is one mark)
MIN_MARK_INTERVAL_S = 0.25
#: most stream time kept before a frame is made (a replay much faster than real time)
MAX_BATCH_S = 5.0
_SIGNALS = ("conditioned", "raw")


@runtime_checkable
class MarkTarget(Protocol):
    """A sink that records manual marks (the episode file, the recording, the LSL outlet)."""

    def mark(self, time_s: float, note: str = "", channel: str | None = None) -> None:
        """Record a mark at stream time ``time_s``."""
        ...


class MarkRejected(Exception):
    """A manual mark cannot be taken; ``status`` is the HTTP status that says why."""

    def __init__(self, reason: str, status: int = 409) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason)


def _episode_dict(episode: Episode, site: str) -> dict[str, Any]:
    """An episode as JSON-ready data, with its site."""
    row: dict[str, Any] = {}
    for key, value in episode.as_dict().items():
        if isinstance(value, enum.Enum):
            row[key] = value.value
        elif isinstance(value, bool | np.bool_):
            row[key] = bool(value)
        elif isinstance(value, int | np.integer):
            row[key] = int(value)
        elif isinstance(value, float | np.floating):
            row[key] = finite_or_none(float(value))
        else:
            row[key] = str(value)
    row["site"] = site
    return row


class WebSink:
    """Serve a live dashboard of the stream to browsers.

    Parameters
    ----------
    address : str or (str, int)
        ``[HOST:]PORT`` to listen on; the host defaults to 127.0.0.1 (this
        computer only). Port 0 picks a free port.
    sites : SiteMap, optional
        Channel sites and start time (default: the sites channel names name).
    settings : PipelineSettings, optional
        The pipeline's settings (the spasm boundary).
    signal : {"conditioned", "raw"}
        Draw the signal as the pipeline conditions it (band-pass, ECG and
        mains removed: what the detector sees) or as received.
    token : str, optional
        Token every request must carry; default: none on a loopback address,
        a random one otherwise (printed with the address).
    diary : Diary, optional
        Earlier sessions shown in the diary with this one.
    linger : bool
        Keep serving after the stream's end (until :meth:`stop`).
    max_viewers : int
        Browsers at once.
    max_frames : int
        Frames queued per viewer before its oldest are dropped.
    rate_hz : float
        Most frames per second sent (events are sent at once).
    clock : callable
        Monotonic clock in seconds, for the frame rate.

    Examples
    --------
    >>> sink = WebSink("127.0.0.1:0")
    >>> sink.address.host, sink.token is None
    ('127.0.0.1', True)
    >>> WebSink("0.0.0.0:8765").token is not None
    True
    """

    def __init__(
        self,
        address: str | tuple[str, int] = "127.0.0.1:8765",
        *,
        sites: SiteMap | None = None,
        settings: PipelineSettings | None = None,
        signal: str = "conditioned",
        token: str | None = None,
        diary: Diary | None = None,
        linger: bool = False,
        max_viewers: int = 16,
        max_frames: int = 8,
        rate_hz: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address: WebAddress = parse_web_address(address)
        if signal not in _SIGNALS:
            raise ConfigError("signal", signal, "'conditioned' or 'raw'")
        if not (isinstance(rate_hz, int | float) and math.isfinite(rate_hz) and rate_hz > 0):
            raise ConfigError("rate_hz", rate_hz, "a positive number of frames per second")
        for name, value in (("max_viewers", max_viewers), ("max_frames", max_frames)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, value, "a whole number, at least 1")
        if token is not None and (not isinstance(token, str) or len(token) < 8
                                  or not token.isprintable()):
            raise ConfigError("token", "...", "printable text of at least 8 characters")
        self.sites = sites if sites is not None else SiteMap()
        self.settings = settings if settings is not None else PipelineSettings()
        self.signal = signal
        self.token = token if token is not None else (
            None if self.address.loopback else secrets.token_urlsafe(18))
        self.diary = diary
        self.linger = bool(linger)
        self.min_interval_s = 1.0 / float(rate_hz)
        self.hub = Hub(max_viewers=max_viewers, max_frames=max_frames)
        self._clock = clock
        self._targets: list[MarkTarget] = []
        self._marks: deque[dict[str, Any]] = deque()
        self._mark_id = 0
        self._last_mark_at = -math.inf
        self.server: WebServer | None = None
        self.info: StreamInfo | None = None
        self.opened = False
        self.closed = False

    # ------------------------------------------------------------------ server
    def start(self) -> str:
        """Start serving (a background thread); return the page's address.

        Raises
        ------
        MissingDependencyError
            If FastAPI or uvicorn is not installed.
        WebServerError
            If the address cannot be listened on.
        """
        from .server import WebServer

        if self.server is None:
            self.server = WebServer(self, self.address)
            self.server.start()
        return self.url

    @property
    def url(self) -> str:
        """Address of the page (with the token, when one is required).

        For a server on every interface (``0.0.0.0``), the address of this
        computer on its network.
        """
        from .server import network_address

        port = self.server.port if self.server is not None else self.address.port
        host = self.address.host
        shown = network_address() if host in ("", "0.0.0.0", "::") else host
        if ":" in shown:
            shown = f"[{shown}]"
        query = f"?token={self.token}" if self.token else ""
        return f"http://{shown}:{port}/{query}"

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop serving: viewers get what was queued (up to ``grace_s``), then the server ends."""
        if self.server is not None:
            self.server.stop(grace_s)
            self.server = None

    def add_mark_target(self, target: MarkTarget) -> None:
        """Also record manual marks in ``target`` (e.g. the episode file)."""
        if not isinstance(target, MarkTarget):
            raise TypeError(f"{type(target).__name__} has no mark(time_s, note, channel) method")
        self._targets.append(target)

    # -------------------------------------------------------------------- sink
    def open(self, info: StreamInfo) -> None:
        """Prepare the columns for the stream and tell the viewers its layout."""
        self.info = info
        if self.sites.start_time is None and info.start_time is not None:
            self.sites = dataclasses.replace(self.sites, start_time=info.start_time)
        n_ch = info.n_channels
        frame_len = max(1, round(info.frame_s * info.fs))
        self._col_frames = column_frames(info.frame_s)
        col_len = self._col_frames * frame_len
        self.col_s = col_len / info.fs
        self._signal_cols = MinMaxColumns(n_ch, col_len)
        self._envelope_cols = MinMaxColumns(n_ch, self._col_frames, want_min=False)
        self._shown: list[np.ndarray] = []   # what is drawn of each chunk's samples
        self._lo = np.empty((0, n_ch))
        self._hi = np.empty((0, n_ch))
        self._env = np.empty((0, n_ch))
        self._next_col = 0
        self.capacity = math.ceil(WINDOW_RANGE_S[1] / self.col_s) + 1
        self._site = [self._site_of(c) for c in info.channels]
        self._flat_now = np.zeros(n_ch, dtype=bool)
        self._flat_frames = np.zeros(n_ch, dtype=np.int64)
        self._excluded_frames = np.zeros(n_ch, dtype=np.int64)
        self._flat_since = [0.0] * n_ch
        self._floor = self._on = self._off = (math.nan,) * n_ch
        self._lost = self._loss_events = self._reconnects = self._malformed = 0
        self._stream_s = 0.0
        self._raw: list[np.ndarray] = []
        self._raw_n = 0
        self._raw_first = 0
        self._envelopes: list[np.ndarray] = []
        self._artefacts: list[np.ndarray] = []
        self._flats: list[np.ndarray] = []   # the pipeline's no-signal frames
        self._floor_now: np.ndarray | None = None
        self._on_now = self._off_now = np.empty(0)
        self._max_batch = max(1, round(MAX_BATCH_S * info.fs))
        self._reset_pending()
        self._last_post = -math.inf
        start = self.sites.local_start()
        self.hub.post(Opened(
            info={
                "title": info.title, "fs": info.fs, "unit": info.unit, "frame_s": info.frame_s,
                "col_s": self.col_s,
                "channels": [{"name": c, "site": s} for c, s in
                             zip(info.channels, self._site, strict=True)],
                "start_time": start.isoformat() if start is not None else None,
                "window_s": list(WINDOW_RANGE_S), "signal": self.signal,
                "spasm_min_s": self.settings.spasm_min_s, "series": list(SERIES),
                "token_required": self.token is not None,
            },
            n_series=len(SERIES) * n_ch, capacity=self.capacity,
        ))
        self.opened, self.closed = True, False

    def _site_of(self, channel: str) -> str:
        site = self.sites.site(channel)
        if site == "unspecified":
            site = site_of_name(channel) or site
        return site

    def _reset_pending(self) -> None:
        self._pending_cols: list[np.ndarray] = []
        self._pending_col0 = self._next_col
        self._pending_n = 0
        self._pending_events: list[dict[str, Any]] = []
        self._pending_episodes: list[Episode] = []

    def update(self, result: ChunkResult) -> None:
        """Take one chunk's result; make and post the frame when it is time.

        The chunk's arrays are only kept here: the columns are computed once per
        frame, over every chunk since the last one, so a replay faster than real
        time costs one vectorised pass per frame, not one per chunk.
        """
        if not self.opened or self.info is None:
            raise RuntimeError("the dashboard sink was not opened")
        fs = self.info.fs
        wall = time.time()
        now = self._clock()
        events = self._pending_events
        n = result.samples.shape[0]
        if self._marks:
            self._apply_marks(events, wall)
        if result.lost_samples:
            self._lost += result.lost_samples
            self._loss_events += 1
            events.append({"kind": "loss", "time_s": result.first_sample / fs,
                           "samples": int(result.lost_samples),
                           "duration_s": result.lost_samples / fs, "emit": wall})
        if result.flags & ChunkFlags.RECONNECTED:
            self._reconnects += 1
            events.append({"kind": "reconnect",
                           "time_s": (result.first_sample + result.lost_samples) / fs,
                           "emit": wall})
        if result.flags & ChunkFlags.MALFORMED:
            self._malformed += 1
            events.append({"kind": "malformed", "time_s": result.first_sample / fs,
                           "emit": wall})
        if n:
            if not self._raw:
                self._raw_first = result.first_sample
            self._raw.append(result.samples)
            self._raw_n += n
            conditioned = self.signal == "conditioned" and \
                result.band.shape == result.samples.shape
            self._shown.append(result.band if conditioned else result.samples)
            self._stream_s = max(self._stream_s, (result.first_sample + n) / fs)
        if result.envelope.shape[0]:
            self._envelopes.append(result.envelope)
            self._artefacts.append(result.artefact)
            if result.no_signal.shape == result.envelope.shape:
                self._flats.append(result.no_signal)
        if result.floor.size:
            self._floor_now = result.floor
            self._on_now = result.on_threshold
            self._off_now = result.off_threshold
        for event in result.events:
            events.append(self._event_dict(event, wall))
            if event.episode is not None:
                self._pending_episodes.append(event.episode)
        if events or now - self._last_post >= self.min_interval_s \
                or self._raw_n >= self._max_batch:
            self._post(now, wall)

    def _take_batch(self, wall: float) -> None:
        """Columns, no-signal test and artefact time of the chunks kept since the last frame."""
        info = self.info
        assert info is not None
        if self._floor_now is not None:
            self._floor = tuple(self._floor_now.tolist())
            self._on = tuple(self._on_now.tolist())
            self._off = tuple(self._off_now.tolist())
            self._floor_now = None
        envelope = None
        if self._envelopes:
            envelope = self._envelopes[0] if len(self._envelopes) == 1 \
                else np.concatenate(self._envelopes)
            artefact = self._artefacts[0] if len(self._artefacts) == 1 \
                else np.concatenate(self._artefacts)
            if artefact.size:
                self._excluded_frames += artefact.sum(axis=0)
            self._envelopes, self._artefacts = [], []
        if self._flats:
            flat = self._flats[0] if len(self._flats) == 1 else np.concatenate(self._flats)
            self._flats = []
            self._no_signal(flat, self._pending_events, wall)
        if self._raw:
            raw = self._raw[0] if len(self._raw) == 1 else np.concatenate(self._raw)
            shown = self._shown[0] if len(self._shown) == 1 else np.concatenate(self._shown)
            self._raw, self._raw_n, self._shown = [], 0, []
            self._columns(raw, shown, envelope)
        elif envelope is not None:
            empty = np.empty((0, info.n_channels))
            self._columns(empty, empty, envelope)

    def _columns(self, raw: np.ndarray, shown: np.ndarray, envelope: np.ndarray | None) -> None:
        """Min/max columns of the displayed signal and the envelope, joined on the column clock.

        ``shown`` is what is drawn of the samples ``raw`` (the conditioned band, or
        ``raw`` itself); where ``raw`` is missing it is drawn as a gap.
        """
        if shown is not raw:
            missing = ~np.isfinite(raw)
            if missing.any():   # a bridged value is the pipeline's, not a sample: a gap
                shown = np.where(missing, np.nan, shown)
        lo, hi = self._signal_cols.process(shown)
        assert lo is not None
        if lo.shape[0]:
            self._lo = np.concatenate([self._lo, lo]) if self._lo.shape[0] else lo
            self._hi = np.concatenate([self._hi, hi]) if self._hi.shape[0] else hi
        if envelope is not None:
            _, env = self._envelope_cols.process(envelope)
            if env.shape[0]:
                self._env = np.concatenate([self._env, env]) if self._env.shape[0] else env
        m = min(self._lo.shape[0], self._env.shape[0])
        if not m:
            return
        n_ch = self.info.n_channels  # type: ignore[union-attr]
        on = np.asarray(self._on, dtype=np.float64)
        off = np.asarray(self._off, dtype=np.float64)
        cols = np.empty((n_ch, len(SERIES), m), dtype=np.float32)
        cols[:, 0] = self._lo[:m].T
        cols[:, 1] = self._hi[:m].T
        cols[:, 2] = self._env[:m].T
        cols[:, 3] = np.where(np.isfinite(on), on, np.nan)[:, None]
        cols[:, 4] = np.where(np.isfinite(off), off, np.nan)[:, None]
        self._lo, self._hi, self._env = self._lo[m:], self._hi[m:], self._env[m:]
        self._pending_cols.append(cols.reshape(n_ch * len(SERIES), m))
        self._pending_n += m
        self._next_col += m
        if self._pending_n > self.capacity:   # a fast replay: older columns would never show
            joined = np.concatenate(self._pending_cols, axis=1)[:, -self.capacity :]
            self._pending_cols = [joined]
            self._pending_n = joined.shape[1]
        self._pending_col0 = self._next_col - self._pending_n

    def _no_signal(self, flat: np.ndarray, events: list[dict[str, Any]], wall: float) -> None:
        """The pipeline's no-signal frames (a flat line: electrode off, zeros): counted, and
        said when they start and end."""
        if not flat.shape[0]:
            return
        info = self.info
        assert info is not None
        self._flat_frames += flat.sum(axis=0)
        now = flat[-1]
        changed = np.flatnonzero(now != self._flat_now)
        if changed.size:
            end_s = self._stream_s
            for k in changed.tolist():
                name = info.channels[k]
                if now[k]:
                    self._flat_since[k] = end_s
                    events.append({"kind": "nosignal", "channel": name, "site": self._site[k],
                                   "time_s": end_s, "emit": wall})
                else:
                    events.append({"kind": "signal", "channel": name, "site": self._site[k],
                                   "time_s": end_s, "duration_s": end_s - self._flat_since[k],
                                   "emit": wall})
            self._flat_now = now.copy()

    def _event_dict(self, event: LiveEvent, wall: float) -> dict[str, Any]:
        assert self.info is not None
        k = self.info.channels.index(event.channel)
        row: dict[str, Any] = {"kind": event.kind, "channel": event.channel,
                               "site": self._site[k], "time_s": finite_or_none(event.time_s, 9),
                               "onset_s": finite_or_none(event.onset_s, 9), "emit": wall}
        if event.episode is not None:
            row["episode"] = _episode_dict(event.episode, self._site[k])
        elif event.rejected is not None:   # ended, but not muscle
            row["rejected"] = {**_episode_dict(event.rejected, self._site[k]),
                               "because": event.rejected.because}
        return row

    def _post(self, now: float, wall: float) -> None:
        info = self.info
        assert info is not None
        self._take_batch(wall)
        cols = (self._pending_cols[0] if len(self._pending_cols) == 1
                else np.concatenate(self._pending_cols, axis=1) if self._pending_cols
                else np.empty((info.n_channels * len(SERIES), 0), dtype=np.float32))
        frame_s = info.frame_s
        self.hub.post(Update(
            col0=self._pending_col0, columns=cols, events=tuple(self._pending_events),
            episodes=tuple(self._pending_episodes), stream_s=self._stream_s, wall=wall,
            floor=self._floor, on=self._on, off=self._off,
            flat_now=tuple(self._flat_now.tolist()),
            flat_s=tuple((self._flat_frames * frame_s).tolist()),
            excluded_s=tuple((self._excluded_frames * frame_s).tolist()),
            lost_samples=self._lost, loss_events=self._loss_events,
            reconnects=self._reconnects, malformed=self._malformed,
        ))
        self._last_post = now
        self._reset_pending()

    def close(self, summary: RunSummary) -> None:
        """Send the last columns and the end of the stream; stop serving unless ``linger``."""
        if not self.opened:
            return
        wall = time.time()
        if self._marks:
            self._apply_marks(self._pending_events, wall)
        self._post(self._clock(), wall)
        self.closed = True
        while self._marks:   # too late for the files: say so to the page
            self._marks.popleft()
        self.hub.post(Closed({
            "duration_s": summary.duration_s, "episodes": len(summary.episodes),
            "twitches": summary.n_twitches, "spasms": summary.n_spasms,
            "alerts": summary.n_alerts, "lost_samples": summary.lost_samples,
            "interrupted": summary.interrupted, "mains": summary.mains_text(),
            "no_signal_s": [round(v, 3) for v in summary.no_signal_s],
            "artefact_s": [round(v, 3) for v in summary.artefact_s],
        }))
        if not self.linger:
            self.stop()

    # ------------------------------------------------------------------- marks
    def request_mark(self, note: str = "", channel: str | None = None,
                     time_s: float | None = None) -> dict[str, Any]:
        """Queue a manual mark (called from the server's thread); it is applied at the next chunk.

        Parameters
        ----------
        note : str
            What was felt or done (at most :data:`MAX_NOTE` printable characters).
        channel : str, optional
            The channel concerned (default: none in particular).
        time_s : float, optional
            Stream time of the mark (default: the latest stream time shown).

        Returns
        -------
        dict
            The mark as queued (``id``, ``time_s``, ``channel``, ``note``).

        Raises
        ------
        MarkRejected
            No stream is running (409), a bad value (422), or marks too fast (429).
        """
        if not self.opened or self.closed or self.info is None:
            raise MarkRejected("no stream is running: a mark goes into a running stream's files")
        if not isinstance(note, str):
            raise MarkRejected("note must be text", 422)
        note = " ".join(note.split())
        if len(note) > MAX_NOTE or not note.isprintable():
            raise MarkRejected(f"note must be at most {MAX_NOTE} printable characters", 422)
        if channel in ("", None):
            channel = None
        elif channel not in self.info.channels:
            raise MarkRejected(f"unknown channel {str(channel)[:64]!r}; channels: "
                               f"{', '.join(self.info.channels)}", 422)
        latest = max(self.hub.stream_s, 0.0)
        if time_s is None:
            when = latest
        else:
            if isinstance(time_s, bool) or not isinstance(time_s, int | float) \
                    or not math.isfinite(time_s) or time_s < 0:
                raise MarkRejected("time_s must be a stream time in seconds, zero or more", 422)
            when = min(float(time_s), latest)
        now = self._clock()
        if now - self._last_mark_at < MIN_MARK_INTERVAL_S or \
                len(self._marks) >= MAX_PENDING_MARKS:
            raise MarkRejected("too many marks at once; try again in a moment", 429)
        self._last_mark_at = now
        self._mark_id += 1
        mark = {"id": self._mark_id, "time_s": round(when, 3), "channel": channel, "note": note}
        self._marks.append(mark)
        return dict(mark)

    def _apply_marks(self, events: list[dict[str, Any]], wall: float) -> None:
        """Write the queued marks to the targets (pipeline thread) and tell the viewers."""
        assert self.info is not None
        while self._marks:
            mark = self._marks.popleft()
            for target in self._targets:
                target.mark(mark["time_s"], mark["note"], mark["channel"])
            channel = mark["channel"]
            site = self._site[self.info.channels.index(channel)] if channel else None
            events.append({"kind": "mark", **mark, "site": site, "emit": wall,
                           "recorded": len(self._targets)})

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def mark_targets(sinks: Iterable[object]) -> list[MarkTarget]:
        """The sinks among ``sinks`` that record manual marks."""
        return [s for s in sinks if isinstance(s, MarkTarget)]

    def __repr__(self) -> str:
        return f"WebSink({self.address.text!r}, signal={self.signal!r})"

