"""Live terminal monitor: one block per channel, redrawn in place.

For ``emg-pipeline replay`` and ``stream`` on a terminal. Per channel it shows
the site, a sparkline of the envelope over the last seconds, the noise floor,
the state (``rest``, ``active`` for a contraction under way, ``SPASM`` once it
has lasted long enough to be a prolonged spasm), running counts of twitches
and spasms, and the last episodes; the header line gives the stream time and
the packet loss. The block is redrawn with ANSI cursor codes at most a few
times a second (and at once on a prolonged-spasm alert), in one write, so it
does not flicker.

When the output is not a terminal (a pipe, a file, a log collector),
:func:`open_live_view` returns the plain line view of
:mod:`emg_pipeline.sinks.console` instead: one line per live event.

Both are :class:`~emg_pipeline.run.Sink` s: ``open(info)``, ``update(result)``
with every :class:`~emg_pipeline.pipeline.ChunkResult`, then ``close(summary)``,
which leaves the last frame on screen and prints the end summary below it.

Examples
--------
>>> import io
>>> import numpy as np
>>> from emg_pipeline import Pipeline, run, simulate
>>> rec = simulate(np.random.default_rng(3), fs=1000.0, duration_s=20.0, n_channels=1)
>>> screen = io.StringIO()
>>> monitor = TerminalMonitor(screen, width=72, refresh_s=0.0)
>>> _ = run(np.array_split(rec.signal, 100), Pipeline(rec.fs, rec.channels, unit="uV"),
...         [monitor])
>>> "\\x1b[" in screen.getvalue() and "summary" in screen.getvalue()
True
"""

from __future__ import annotations

import io
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TextIO

import numpy as np

from emg_pipeline.conditioning.gaps import is_missing
from emg_pipeline.events import Episode
from emg_pipeline.pipeline import ChunkResult
from emg_pipeline.sites import site_of_name

from ..labels import Label
from .console import ConsoleView, format_stream_time, summary_lines

if TYPE_CHECKING:
    from ..run import RunSummary, StreamInfo

__all__ = ["TerminalMonitor", "is_terminal", "open_live_view", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"
_ESC = "\x1b["
_RESET = f"{_ESC}0m"
_BOLD_RED = f"{_ESC}1;31m"
_YELLOW = f"{_ESC}33m"
_DIM = f"{_ESC}2m"
_HIDE_CURSOR = f"{_ESC}?25l"
_SHOW_CURSOR = f"{_ESC}?25h"
_CLEAR_LINE = f"{_ESC}K"
_CLEAR_BELOW = f"{_ESC}J"
_UNIT = {"uV": "µV", "counts": "counts"}


def is_terminal(stream: object) -> bool:
    """Tell whether ``stream`` is an interactive terminal."""
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def sparkline(values: np.ndarray, reference: float) -> str:
    """Bars of ``values``: a value at ``reference`` (the on threshold) is 3 of 8 high.

    Parameters
    ----------
    values : ndarray
        Non-negative levels (NaN shows as a space).
    reference : float
        Level drawn as the third bar; NaN or non-positive: the largest value.

    Examples
    --------
    >>> sparkline(np.array([0.0, 1.0, 2.0, 10.0, np.nan]), reference=1.0)
    '▁▃▆█ '
    """
    v = np.asarray(values, dtype=np.float64)
    if not (math.isfinite(reference) and reference > 0):
        finite = v[np.isfinite(v)]
        reference = float(finite.max()) / 2.5 if finite.size and finite.max() > 0 else 1.0
    with np.errstate(invalid="ignore"):
        level = np.clip(np.round(v / reference * 3.0), 1, 8) - 1
    chars = np.array(list(_BARS))
    out = np.where(np.isfinite(v), chars[np.nan_to_num(level, nan=0).astype(np.int64)], " ")
    return "".join(out.tolist())


class TerminalMonitor:
    """Live per-channel monitor redrawn in place on a terminal.

    Parameters
    ----------
    stream : text file, optional
        The terminal (default: standard output).
    title : str, optional
        Name of the source, in the header line (default: the stream's title).
    show_onsets, events : bool
        Accepted for the interface of :class:`~emg_pipeline.sinks.console.ConsoleView`
        (the monitor shows state, not a list of events).
    sites : Mapping[str, str], optional
        Body site of each channel (default: the sites channel names name).
    window_s : float
        Envelope history drawn as the sparkline.
    refresh_s : float
        Minimum wall-clock time between redraws.
    n_last : int
        Last episodes listed per channel.
    width : int, optional
        Line width (default: the terminal's, else 100).
    colour : bool
        Use ANSI colours for the state.
    clock : callable
        Wall clock in seconds (for the redraw rate).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        title: str | None = None,
        show_onsets: bool = True,
        events: bool = True,
        sites: Mapping[str, str] | None = None,
        window_s: float = 10.0,
        refresh_s: float = 0.25,
        n_last: int = 3,
        width: int | None = None,
        colour: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        if not (math.isfinite(refresh_s) and refresh_s >= 0):
            raise ValueError(f"refresh_s must be zero or more seconds, got {refresh_s!r}")
        self.stream = stream if stream is not None else sys.stdout
        self.title = title
        self.show_onsets = bool(show_onsets)
        self._given_sites = None if sites is None else dict(sites)
        self.window_s = float(window_s)
        self.refresh_s = float(refresh_s)
        self.n_last = int(n_last)
        self.colour = bool(colour)
        self._clock = clock
        self._fixed_width = width
        self.n_redraws = 0
        self.closed = False
        self.info: StreamInfo | None = None

    def open(self, info: StreamInfo) -> None:
        """Size the display for the stream's channels."""
        self.info = info
        if self.title is None:
            self.title = info.title or None
        sites = self._given_sites
        if sites is None:  # channels named after a site or muscle show it
            named = ((c, site_of_name(c)) for c in info.channels)
            sites = {c: site for c, site in named if site is not None}
        self.sites = dict(sites)
        n_ch = info.n_channels
        self._index = {name: k for k, name in enumerate(info.channels)}
        self._env = np.full((max(1, round(self.window_s / info.frame_s)), n_ch), np.nan)
        self._state_since: list[float | None] = [None] * n_ch
        self._sustained = [False] * n_ch
        self._last: list[deque[Episode]] = [deque(maxlen=self.n_last) for _ in range(n_ch)]
        self._counts = np.zeros((n_ch, 2), dtype=np.int64)  # twitches, spasms
        self._floor = np.full(n_ch, np.nan)
        self._on = np.full(n_ch, np.inf)
        self._seen = self._lost = self._bridged = 0
        self._time_s = 0.0
        self._lines_drawn = 0
        self._last_draw = -math.inf

    # ----------------------------------------------------------------- input
    def update(self, result: ChunkResult) -> None:
        """Take one chunk's result; redraw if the refresh interval has passed or on an alert."""
        if self.closed:
            raise RuntimeError("the monitor is closed")
        env = np.asarray(result.envelope, dtype=np.float64)
        self._seen = result.first_sample + result.samples.shape[0]
        self._lost += result.lost_samples
        self._bridged += int(np.count_nonzero(is_missing(result.samples)))
        if result.floor.size:
            self._floor, self._on = result.floor, result.on_threshold
        if env.shape[0]:
            n = self._env.shape[0]
            self._env = np.concatenate([self._env, env])[-n:] if env.shape[0] < n else \
                env[-n:].copy()
            self._time_s = (result.first_frame + env.shape[0]) * result.frame_s
        alert = False
        for event in result.events:
            k = self._index[event.channel]
            self._time_s = max(self._time_s, event.time_s)
            if event.kind == "onset":
                self._state_since[k] = event.onset_s
                self._sustained[k] = False
            elif event.kind == "sustained":
                self._sustained[k] = True
                alert = True
            elif event.kind == "end":
                self._state_since[k] = None
                self._sustained[k] = False
                if event.episode is not None:
                    self._last[k].append(event.episode)
                    self._counts[k, 0 if event.episode.label == Label.TWITCH else 1] += 1
        now = self._clock()
        if alert or now - self._last_draw >= self.refresh_s:
            self._draw(now)

    # ---------------------------------------------------------------- output
    @property
    def width(self) -> int:
        """Line width used."""
        if self._fixed_width is not None:
            return max(40, int(self._fixed_width))
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            columns = 0
        return max(40, columns) if columns else 100

    def _paint(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self.colour else text

    def _state(self, k: int) -> str:
        since = self._state_since[k]
        if since is None:
            return f"{'rest':<15}"
        lasted = max(0.0, self._time_s - since)
        if self._sustained[k]:
            return self._paint(f"{'SPASM':<6} {lasted:5.1f} s ", _BOLD_RED)
        return self._paint(f"{'active':<6} {lasted:5.1f} s ", _YELLOW)

    def frame_lines(self) -> list[str]:
        """The lines of the current frame (without cursor codes)."""
        info = self.info
        if info is None:
            raise RuntimeError("the monitor was not opened")
        width = self.width
        lost = self._lost
        loss = 100.0 * lost / (self._seen if self._seen else 1)
        source = f"{self.title} · " if self.title else ""
        head = (f"{source}{format_stream_time(self._time_s)} · {info.n_channels} ch at "
                f"{info.fs:g} Hz · packet loss {loss:.2f} % ({lost} samples) · "
                f"bridged {self._bridged}")
        lines = [head[:width]]
        unit = _UNIT.get(info.unit, info.unit)
        floors, on = self._floor, self._on
        name_w = min(24, max(len(self._label(k)) for k in range(info.n_channels)))
        spark_w = max(10, width - name_w - 52)
        for k in range(info.n_channels):
            values = self._columns(self._env[:, k], spark_w)
            spark = sparkline(values, float(on[k]))
            floor = float(floors[k])
            floor_text = f"{floor:7.2f} {unit}" if math.isfinite(floor) else "learning"
            state = self._state(k)
            tw, sp = (int(c) for c in self._counts[k])
            lines.append(
                f"{self._label(k)[:name_w]:<{name_w}} {spark} floor {floor_text:>12}  "
                f"{state}  tw {tw} sp {sp}"
            )
            last = " · ".join(self._describe(e) for e in reversed(self._last[k]))
            lines.append(self._paint(f"{'':<{name_w}} last: {last or '-'}"[:width], _DIM))
        return lines

    def _label(self, k: int) -> str:
        name = self.info.channels[k] if self.info is not None else str(k)
        site = self.sites.get(name)
        return f"{name} ({site})" if site and site != name else name

    @staticmethod
    def _describe(e: Episode) -> str:
        what = "twitch" if e.label == Label.TWITCH else f"spasm {e.pattern}"
        return f"{format_stream_time(e.onset_s)} {what} {e.duration_s:.1f} s"

    @staticmethod
    def _columns(values: np.ndarray, n: int) -> np.ndarray:
        """Maximum of ``values`` in ``n`` equal column bins (NaN where a bin is empty)."""
        if values.size == 0:
            return np.full(n, np.nan)
        edges = np.linspace(0, values.size, n + 1).astype(np.int64)
        padded = np.where(np.isnan(values), -np.inf, values)
        starts = np.minimum(edges[:-1], values.size - 1)
        out = np.maximum.reduceat(padded, starts)
        out[edges[1:] <= edges[:-1]] = -np.inf
        return np.where(np.isfinite(out), out, np.nan)

    def _draw(self, now: float) -> None:
        lines = self.frame_lines()
        parts = []
        if self._lines_drawn:
            parts.append(f"\r{_ESC}{self._lines_drawn}A")  # back to the top of the block
        else:
            parts.append(_HIDE_CURSOR)
        parts += [line + _CLEAR_LINE + "\n" for line in lines]
        parts.append(_CLEAR_BELOW)
        self.stream.write("".join(parts))
        self.stream.flush()
        self._lines_drawn = len(lines)
        self._last_draw = now
        self.n_redraws += 1

    def close(self, summary: RunSummary) -> None:
        """Draw the final frame, restore the cursor and print the end summary (once)."""
        if self.closed:
            return
        if self.info is not None:
            self._draw(self._clock())
        self.closed = True
        self.stream.write(_SHOW_CURSOR)
        for line in summary_lines(summary, self.title):
            self.stream.write(line + "\n")
        self.stream.flush()


def open_live_view(
    stream: TextIO | None = None, **options: object
) -> TerminalMonitor | ConsoleView:
    """The live view of a stream: the monitor on a terminal, plain lines anywhere else.

    Both are :class:`~emg_pipeline.run.Sink` s (see the module docstring).

    Parameters
    ----------
    stream : text file, optional
        Where to write (default: standard output).
    **options
        ``title``, ``show_onsets`` and ``events`` for both; the monitor's own options
        (``sites``, ``window_s``, ``refresh_s``...) are used on a terminal only.
    """
    stream = stream if stream is not None else sys.stdout
    if is_terminal(stream):
        return TerminalMonitor(stream, **options)  # type: ignore[arg-type]
    plain = {k: v for k, v in options.items() if k in ("title", "show_onsets", "events")}
    return ConsoleView(stream, **plain)  # type: ignore[arg-type]
