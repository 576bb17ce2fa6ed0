"""The progress of a batch: recordings done and hours of signal, on one line.

On a terminal the line is redrawn in place (at most ten times a second); in a
log file (a cluster job's output) a line is written at most every
:data:`LOG_EVERY_S` seconds, so the log stays readable.

Examples
--------
>>> import io
>>> out = io.StringIO()
>>> bar = BatchProgress(out, 4, clock=iter([0.0, 10.0, 20.0]).__next__)
>>> bar.update(signal_s=7200.0)
>>> for part in bar.line().split(", "):
...     print(part)
[########----------------------] 1/4 recordings
2.0 h of signal processed
720x real time
0.10 rec/s
0:30 left
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["LOG_EVERY_S", "BatchProgress", "duration_text", "signal_text"]


def signal_text(seconds: float) -> str:
    """An amount of signal: hours from one hour on, else minutes.

    Examples
    --------
    >>> signal_text(7200.0), signal_text(150.0)
    ('2.0 h', '2.5 min')
    """
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"

#: seconds between two progress lines when the output is not a terminal
LOG_EVERY_S = 30.0


def duration_text(seconds: float) -> str:
    """``H:MM:SS`` or ``M:SS``.

    Examples
    --------
    >>> duration_text(75), duration_text(3725)
    ('1:15', '1:02:05')
    """
    if not math.isfinite(seconds):
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class BatchProgress:
    """A progress line over the recordings of a batch and the hours of signal processed.

    Parameters
    ----------
    stream : text file or None
        Where to draw (None: nowhere).
    total : int
        Recordings in the batch.
    clock : callable
        Wall clock in seconds.
    """

    WIDTH = 30

    def __init__(self, stream: TextIO | None, total: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.signal_s = 0.0
        self._clock = clock
        self._start = clock()
        self._now = self._start
        self._last = -math.inf
        self._tty = _isatty(stream)
        self._shown = False

    def update(self, signal_s: float = 0.0) -> None:
        """One more recording is done, with ``signal_s`` seconds of signal processed."""
        self.done += 1
        if math.isfinite(signal_s):
            self.signal_s += signal_s
        self._now = self._clock()
        if self.stream is None:
            return
        every = 0.1 if self._tty else LOG_EVERY_S
        if self._now - self._last >= every or self.done == self.total:
            self._last = self._now
            self._draw()

    def line(self) -> str:
        """The progress line."""
        elapsed = self._now - self._start
        part = self.done / self.total if self.total else 1.0
        filled = round(part * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        width = len(str(self.total))
        text = (f"[{bar}] {self.done:>{width}}/{self.total} recordings, "
                f"{signal_text(self.signal_s)} of signal processed")
        if elapsed > 0 and self.done:
            rate = self.done / elapsed
            left = (self.total - self.done) / rate
            text += (f", {self.signal_s / elapsed:.0f}x real time, {rate:.2f} rec/s, "
                     f"{duration_text(left)} left")
        return text

    def _draw(self) -> None:
        assert self.stream is not None
        if self._tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
            self._shown = True
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """End the line drawn in place, so that what follows starts on its own line."""
        if self._shown and self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


def _isatty(stream: TextIO | None) -> bool:
    try:
        return stream is not None and bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
