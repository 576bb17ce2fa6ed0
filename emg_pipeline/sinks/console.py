"""Live console output: one readable line per live event, a summary at the end.

The view is fed every :class:`~emg_pipeline.pipeline.ChunkResult` of a stream
(including the one returned by ``pipe.flush()``) and prints, as they happen:

- ``onset`` — a contraction is confirmed on a channel;
- ``SPASM`` — the prolonged-spasm alert: a contraction has lasted long enough
  to count as a prolonged spasm (the pipeline's ``sustained`` event);
- ``end`` — the episode is over, with its label, pattern, duration and peak.

Times are stream times (from the sample clock, ``h:mm:ss.sss``), not wall-clock
times, so a replay at any speed prints the same lines as the live session.
:meth:`ConsoleView.close` prints the end summary: duration, twitches and spasms
per channel, bridged and lost samples, artefact time.

Examples
--------
>>> import io
>>> import numpy as np
>>> from emg_pipeline import Pipeline, simulate
>>> rec = simulate(np.random.default_rng(3), fs=1000.0, duration_s=20.0, n_channels=1)
>>> pipe = Pipeline(rec.fs, rec.channels, unit="uV")
>>> out = io.StringIO()
>>> view = open_live_view(pipe, out)
>>> for part in np.array_split(rec.signal, 100):
...     view.update(pipe.process(part))
>>> view.update(pipe.flush())
>>> view.close()
>>> "summary" in out.getvalue()
True
"""

from __future__ import annotations

import math
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Self, TextIO

import numpy as np

from emg_pipeline.events import Episode, LiveEvent
from emg_pipeline.pipeline import ChunkResult, Pipeline

from ..labels import Label

if TYPE_CHECKING:
    from .monitor import TerminalMonitor

__all__ = ["ConsoleView", "format_event", "format_stream_time", "open_live_view"]

_KIND_LABEL = {"onset": "onset", "sustained": "SPASM", "end": "end"}
_UNIT_LABEL = {"uV": "uV", "x_floor": "x floor"}


def _count(n: int, one: str, many: str | None = None) -> str:
    """``1 twitch``, ``2 twitches``."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def format_stream_time(seconds: float) -> str:
    """Format a stream time as ``h:mm:ss.sss`` (hours only when needed).

    Examples
    --------
    >>> format_stream_time(3.25)
    '0:03.250'
    >>> format_stream_time(3725.5)
    '1:02:05.500'
    >>> format_stream_time(float("nan"))
    '?'
    """
    if not math.isfinite(seconds):
        return "?"
    millis = round(seconds * 1000.0)
    sign = "-" if millis < 0 else ""
    millis = abs(millis)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{secs:02d}.{ms:03d}"
    return f"{sign}{minutes}:{secs:02d}.{ms:03d}"


def _describe_episode(episode: Episode) -> str:
    unit = _UNIT_LABEL.get(episode.unit, episode.unit)
    text = (
        f"{episode.label} ({episode.pattern}) {format_stream_time(episode.onset_s)}"
        f"-{format_stream_time(episode.offset_s)}, {episode.duration_s:.2f} s, "
        f"peak {episode.peak:.1f} {unit}"
    )
    if episode.truncated:
        text += " (cut short by the end of the stream)"
    return text


def format_event(event: LiveEvent, channel_width: int = 0) -> str:
    """One line for a live event: stream time, channel, kind, details.

    Parameters
    ----------
    event : LiveEvent
        The event.
    channel_width : int
        Width the channel name is padded to (aligns the lines of a stream).

    Examples
    --------
    >>> from emg_pipeline import LiveEvent
    >>> format_event(LiveEvent("onset", "calf", 3.08, 3.0))
    '0:03.080  calf  onset  contraction started at 0:03.000'
    >>> format_event(LiveEvent("sustained", "calf", 5.0, 3.0))
    '0:05.000  calf  SPASM  prolonged spasm: contracted for 2.0 s (since 0:03.000)'
    """
    head = f"{format_stream_time(event.time_s)}  {event.channel:<{channel_width}}  "
    head += f"{_KIND_LABEL.get(event.kind, event.kind):<5}  "
    if event.kind == "onset":
        return head + f"contraction started at {format_stream_time(event.onset_s)}"
    if event.kind == "sustained":
        lasted = event.time_s - event.onset_s
        return head + (
            f"prolonged spasm: contracted for {lasted:.1f} s "
            f"(since {format_stream_time(event.onset_s)})"
        )
    if event.episode is not None:
        return head + _describe_episode(event.episode)
    return head + f"episode that started at {format_stream_time(event.onset_s)} is over"


class ConsoleView:
    """Prints the live events of a stream and its end summary.

    Parameters
    ----------
    pipe : Pipeline
        The pipeline whose results are shown (read for names, rate and the
        figures of the summary; never modified).
    stream : text file, optional
        Where to print (default: standard output at construction time).
    title : str, optional
        Name of the source, printed in the first line and the summary.
    show_onsets : bool
        Print ``onset`` events (the alerts and ends are always printed).

    Notes
    -----
    Feed the result of ``pipe.flush()`` to :meth:`update` before
    :meth:`close`, so that episodes still open at the end are counted.
    """

    def __init__(
        self,
        pipe: Pipeline,
        stream: TextIO | None = None,
        *,
        title: str | None = None,
        show_onsets: bool = True,
    ) -> None:
        self.pipe = pipe
        self.stream = stream if stream is not None else sys.stdout
        self.title = title
        self.show_onsets = bool(show_onsets)
        self._width = max(len(c) for c in pipe.channels)
        self.n_events = 0
        self.n_alerts = 0
        self.closed = False
        self._started = False

    def _start(self) -> None:
        self._started = True
        source = f"{self.title}: " if self.title else ""
        n = self.pipe.n_channels
        self._print(
            f"{source}{n} channel{'s' if n != 1 else ''} at {self.pipe.fs:g} Hz "
            f"({', '.join(self.pipe.channels)}); live events in stream time"
        )

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def update(self, result: ChunkResult) -> None:
        """Print the live events of one chunk's result, one line each."""
        if self.closed:
            raise RuntimeError("the live view is closed")
        if not self._started:
            self._start()
        for event in result.events:
            if event.kind == "sustained":
                self.n_alerts += 1
            if event.kind == "onset" and not self.show_onsets:
                continue
            self.n_events += 1
            self._print(format_event(event, self._width))

    def summary_lines(self) -> list[str]:
        """The lines of the end summary (see :meth:`close`)."""
        pipe = self.pipe
        duration = pipe.n_samples / pipe.fs
        source = f" of {self.title}" if self.title else ""
        lines = [
            f"summary{source}: {format_stream_time(duration)} ({duration:.1f} s), "
            f"{pipe.n_channels} channel{'s' if pipe.n_channels != 1 else ''} at {pipe.fs:g} Hz"
        ]
        rows = []
        artefact_s = np.asarray(pipe.artefact_frames) * pipe.frame_s
        bridged = pipe.bridged_samples
        for k, name in enumerate(pipe.channels):
            eps = [e for e in pipe.episodes if e.channel == name]
            spasms = [e for e in eps if e.label == Label.SPASM]
            rows.append(
                (
                    name,
                    str(len(eps) - len(spasms)),
                    str(len(spasms)),
                    str(sum(e.pattern == "tonic" for e in spasms)),
                    str(sum(e.pattern == "clonic" for e in spasms)),
                    f"{artefact_s[k]:.1f} s",
                    str(int(bridged[k])),
                )
            )
        header = ("channel", "twitches", "spasms", "tonic", "clonic", "artefact", "bridged")
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  " + "  ".join(cells))
        n_spasms = sum(e.label == Label.SPASM for e in pipe.episodes)
        truncated = sum(e.truncated for e in pipe.episodes)
        total = (
            f"  total: {_count(len(pipe.episodes) - n_spasms, 'twitch', 'twitches')}, "
            f"{_count(n_spasms, 'spasm')}, {_count(self.n_alerts, 'prolonged-spasm alert')}"
        )
        if truncated:
            total += f"; {truncated} episode{'s' if truncated != 1 else ''} cut by the end"
        lines.append(total)
        lines.append(
            f"  missing samples: {int(bridged.sum())} bridged (NaN or gaps), "
            f"{pipe.lost_samples} lost in transmission; "
            f"artefact time {float(artefact_s.sum()):.1f} s"
        )
        flat_s = np.asarray(pipe.no_signal_frames) * pipe.frame_s
        if flat_s.any():
            detail = ", ".join(
                f"{name} {s:.1f} s" for name, s in zip(pipe.channels, flat_s.tolist(), strict=True)
                if s > 0
            )
            lines.append(f"  no signal (flat line: electrode off or zeros): {detail}")
        mains = f"{pipe.mains_hz:g} Hz removed" if pipe.mains_hz else "none found"
        lines.append(f"  mains interference: {mains}")
        return lines

    def close(self) -> None:
        """Print the end summary once; later calls do nothing."""
        if self.closed:
            return
        if not self._started:
            self._start()
        self.closed = True
        for line in self.summary_lines():
            self._print(line)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()


def open_live_view(
    pipe: Pipeline, stream: TextIO | None = None, **options: object
) -> ConsoleView | TerminalMonitor:
    """Open the live console view of a stream.

    On a terminal this is the in-place monitor of :mod:`emg_pipeline.sinks.monitor`
    (same interface); anywhere else, the plain lines of :class:`ConsoleView`.

    Parameters
    ----------
    pipe : Pipeline
        The pipeline whose results will be shown.
    stream : text file, optional
        Where to print (default: standard output).
    **options
        Keyword options of :class:`ConsoleView` (``title``, ``show_onsets``).

    Returns
    -------
    ConsoleView or TerminalMonitor
        Call ``update(result)`` with every chunk result and ``close()`` at the end.
    """
    from .monitor import TerminalMonitor, is_terminal  # the monitor builds on this module

    if is_terminal(stream if stream is not None else sys.stdout):
        return TerminalMonitor(pipe, stream, **options)  # type: ignore[arg-type]
    return ConsoleView(pipe, stream, **options)  # type: ignore[arg-type]
