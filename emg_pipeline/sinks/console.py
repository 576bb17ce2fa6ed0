"""Live console output: one readable line per live event, a summary at the end.

The view is a :class:`~emg_pipeline.run.Sink`: :func:`~emg_pipeline.run.run`
feeds it every :class:`~emg_pipeline.pipeline.ChunkResult` of a stream and it
prints, as they happen:

- ``onset`` — a contraction is confirmed on a channel;
- ``SPASM`` — the prolonged-spasm alert: a contraction has lasted long enough
  to count as a prolonged spasm (the pipeline's ``sustained`` event);
- ``end`` — the episode is over, with its label, pattern, duration and peak.

Times are stream times (from the sample clock, ``h:mm:ss.sss``), not wall-clock
times, so a replay at any speed prints the same lines as the live session.
:meth:`ConsoleView.close` prints the end summary (:func:`summary_lines`):
duration, twitches and spasms per channel, artefact and no-signal time per
channel, bridged and lost samples.

Examples
--------
>>> import io
>>> import numpy as np
>>> from emg_pipeline import Pipeline, run, simulate
>>> rec = simulate(np.random.default_rng(3), fs=1000.0, duration_s=20.0, n_channels=1)
>>> out = io.StringIO()
>>> summary = run(np.array_split(rec.signal, 100), Pipeline(rec.fs, rec.channels, unit="uV"),
...               [ConsoleView(out)])
>>> "summary" in out.getvalue()
True
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, TextIO

from emg_pipeline.chunk import ChunkFlags
from emg_pipeline.conditioning.gaps import MAX_ABS_SAMPLE
from emg_pipeline.events import Episode, LiveEvent, not_muscle_reasons
from emg_pipeline.pipeline import ChunkResult

from ..labels import Label, Pattern

if TYPE_CHECKING:
    from ..run import RunSummary, StreamInfo


__all__ = [
    "ConsoleView", "format_event", "format_stream_time", "summary_lines",
]

#: shortest stream time between two lines about packet loss or malformed packets
LINK_EVERY_S = 10.0
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
    if event.rejected is not None:
        return head + (
            f"activity since {format_stream_time(event.onset_s)} was not muscle "
            f"({event.rejected.because}); not counted"
        )
    return head + f"episode that started at {format_stream_time(event.onset_s)} is over"


class ConsoleView:
    """Prints the live events of a stream and its end summary (a :class:`~emg_pipeline.run.Sink`).

    Parameters
    ----------
    stream : text file, optional
        Where to print (default: standard output at construction time).
    title : str, optional
        Name of the source, printed in the first line and the summary
        (default: the stream's title).
    show_onsets : bool
        Print ``onset`` events (the alerts and ends are always printed).
    events : bool
        Print live events at all (``-q``: only the summary).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        title: str | None = None,
        show_onsets: bool = True,
        events: bool = True,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.title = title
        self.show_onsets = bool(show_onsets)
        self.events = bool(events)
        self.info: StreamInfo | None = None
        self._width = 0
        self.n_events = 0
        self.n_alerts = 0
        self.closed = False
        # link faults not yet reported: lost samples and chunks with malformed packets
        self._lost = self._malformed = 0
        self._link_said_s = -math.inf

    def open(self, info: StreamInfo) -> None:
        """Print the heading line of the stream."""
        self.info = info
        if self.title is None:
            self.title = info.title or None
        self._width = max(len(c) for c in info.channels)
        source = f"{self.title}: " if self.title else ""
        n = info.n_channels
        self._print(
            f"{source}{n} channel{'s' if n != 1 else ''} at {info.fs:g} Hz "
            f"({', '.join(info.channels)}); live events in stream time"
        )

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def update(self, result: ChunkResult) -> None:
        """Print the live events of one chunk's result, one line each."""
        if self.closed:
            raise RuntimeError("the live view is closed")
        if result.flags and self.events:
            self._link(result)
        for event in result.events:
            if event.kind == "sustained":
                self.n_alerts += 1
            if not self.events or (event.kind == "onset" and not self.show_onsets):
                continue
            self.n_events += 1
            self._print(format_event(event, self._width))

    def _link(self, result: ChunkResult) -> None:
        """Say what the link did: a reconnect at once; losses at once, then at most every
        LINK_EVERY_S of stream time (a lossy link would fill the screen)."""
        fs = self.info.fs if self.info is not None else 1.0
        t = result.first_sample / fs
        self._lost += result.lost_samples
        self._malformed += bool(result.flags & ChunkFlags.MALFORMED)
        if result.flags & ChunkFlags.RECONNECTED:
            gap = result.lost_samples / fs
            self._print(f"{format_stream_time(t)}  {'':<{self._width}}  link   reconnected after "
                        f"{gap:.2f} s without data (a gap in the stream, counted)")
            self._lost -= result.lost_samples
        if (self._lost or self._malformed) and t - self._link_said_s >= LINK_EVERY_S:
            parts = []
            if self._lost:
                parts.append(f"{self._lost} samples lost in transmission (gaps, bridged)")
            if self._malformed:
                parts.append(f"malformed packets skipped in {self._malformed} chunk(s)")
            self._print(f"{format_stream_time(t)}  {'':<{self._width}}  link   "
                        + "; ".join(parts) + " since the last report")
            self._lost = self._malformed = 0
            self._link_said_s = t

    def close(self, summary: RunSummary) -> None:
        """Print the end summary once; later calls do nothing."""
        if self.closed:
            return
        self.closed = True
        for line in summary_lines(summary, self.title):
            self._print(line)


def summary_lines(summary: RunSummary, title: str | None = None) -> list[str]:
    """The lines of a stream's end summary: per channel, then the totals.

    Artefact and no-signal times are per channel (each channel's own time,
    never a sum over channels).
    """
    info = summary.info
    duration = summary.duration_s
    title = title if title is not None else info.title
    source = f" of {title}" if title else ""
    n_ch = info.n_channels
    lines = [
        f"summary{source}: {format_stream_time(duration)} ({duration:.1f} s), "
        f"{n_ch} channel{'s' if n_ch != 1 else ''} at {info.fs:g} Hz"
        + (f" ({summary.stopped})" if summary.stopped else "")
    ]
    rows = []
    flat = any(s > 0 for s in summary.no_signal_s)
    for k, name in enumerate(info.channels):
        eps = [e for e in summary.episodes if e.channel == name]
        spasms = [e for e in eps if e.label == Label.SPASM]
        row = [
            name,
            str(len(eps) - len(spasms)),
            str(len(spasms)),
            str(sum(e.pattern == Pattern.TONIC for e in spasms)),
            str(sum(e.pattern == Pattern.CLONIC for e in spasms)),
            f"{summary.artefact_s[k]:.1f} s",
        ]
        if flat:
            row.append(f"{summary.no_signal_s[k]:.1f} s")
        row.append(str(summary.bridged_samples[k]))
        rows.append(tuple(row))
    header = ("channel", "twitches", "spasms", "tonic", "clonic", "artefact",
              *(("no signal",) if flat else ()), "bridged")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells))
    truncated = sum(e.truncated for e in summary.episodes)
    total = (
        f"  total: {_count(summary.n_twitches, 'twitch', 'twitches')}, "
        f"{_count(summary.n_spasms, 'spasm')}, "
        f"{_count(summary.n_alerts, 'prolonged-spasm alert')}"
    )
    # the live alert comes before the end that finds a burst not muscle (the same
    # spasm boundary: a rejected spasm-long burst raised one)
    false_alarms = sum(e.label is Label.SPASM for e in summary.rejected)
    if false_alarms:
        total += f" ({false_alarms} for a burst found not muscle at its end)"
    if truncated:
        total += f"; {truncated} episode{'s' if truncated != 1 else ''} cut by the end"
    lines.append(total)
    if summary.rejected:
        n = len(summary.rejected)
        lines.append(f"  not muscle: {n} burst{'s' if n != 1 else ''} "
                     f"({not_muscle_reasons(summary.rejected)}), counted nowhere above")
    bridged = sum(summary.bridged_samples)
    lost = summary.lost_samples
    if bridged or lost:
        lines.append(
            f"  missing samples: {bridged - lost * n_ch if lost else bridged} missing in the "
            f"input (NaN, inf, beyond ±{MAX_ABS_SAMPLE:g}, empty cells, time-column gaps), "
            f"{lost} per channel lost in transmission; all bridged, none dropped"
        )
    else:
        lines.append("  missing samples: none")
    if flat:
        lines.append("  no signal: a flat line (electrode off, zeros, held gaps), per channel "
                     "above")
    lines.append(f"  mains interference: {summary.mains_text()}")
    stats = summary.source_stats
    if "packets" in stats:
        received, lost = stats.get("samples", 0), stats.get("lost_samples", 0)
        share = f" ({100 * lost / (received + lost):.2f} %)" if received + lost else ""
        lines.append(
            f"  packets: {stats['packets']} received, {stats.get('lost_packets', 0)} lost by "
            f"counter, {stats.get('malformed', 0)} malformed, {stats.get('duplicates', 0)} "
            f"duplicate; samples: {received} received, {lost} lost{share} marked as gaps; "
            f"reconnects: {stats.get('reconnects', 0)}"
        )
        odd = [f"{stats[key]} {what}" for key, what in
               (("late_packets", "late packets dropped"),
                ("early_packets", "packets ahead of the board's nominal rate"))
               if stats.get(key)]
        if odd:
            lines.append("  " + "; ".join(odd))
    return lines
