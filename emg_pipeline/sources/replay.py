"""Replay a recording as a live stream of :class:`~emg_pipeline.chunk.Chunk` objects.

:class:`ReplaySource` reads a recording chunk by chunk from its reader
(bounded memory, however long the file) and hands each chunk on with its place
on the stream's sample clock (``first_index``), the rate and the channel names,
exactly as a board source does. It follows the source protocol of the project::

    async with ReplaySource(path, speed=1.0) as source:
        summary = await run_async(source, pipe, sinks)

and, for replays that need no pacing, is also a plain synchronous iterator::

    with ReplaySource(path, speed=None) as source:
        summary = run(source, pipe, sinks)

Pacing
------
``speed=1.0`` releases each chunk when the wall clock reaches the stream time of
its last sample (real time); ``speed=N`` runs N times faster; ``speed=None``
releases chunks as fast as they are read. The schedule is kept against the
start of the replay, not chunk to chunk, so sleeping late never accumulates
drift; a consumer slower than the pace simply gets the next chunk at once.
The clock and the sleep function can be replaced (tests use a fake clock).

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "rec.csv"
>>> _ = path.write_text("time,biceps\\n" + "".join(f"{k / 1000},{k % 7}\\n" for k in range(50)))
>>> with ReplaySource(path, speed=None, chunk_s=0.02) as source:
...     [(c.first_index, c.n_samples) for c in source]
[(0, 20), (20, 20), (40, 10)]
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np

from emg_pipeline._closing import Closing
from emg_pipeline.chunk import Chunk, ChunkFlags
from emg_pipeline.errors import ConfigError
from emg_pipeline.sources.formats import RecordingInfo, RecordingReader, open_recording

__all__ = ["ReplaySource"]


_SPEED_EXPECTED = "a positive number or None (as fast as possible)"


def _check_speed(speed: float | None) -> float | None:
    if speed is None:
        return None
    try:
        value = float(speed)
    except (TypeError, ValueError):
        raise ConfigError("speed", speed, _SPEED_EXPECTED) from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError("speed", speed, _SPEED_EXPECTED)
    return value


class ReplaySource(Closing):
    """A recording replayed as a stream of chunks, paced or as fast as possible.

    Parameters
    ----------
    recording : str or Path or RecordingReader
        A recording file (opened with
        :func:`~emg_pipeline.sources.formats.open_recording`) or an open reader
        (then left open: its owner closes it).
    speed : float or None
        Pace: 1.0 is real time, N is N times real time, None is as fast as
        possible.
    chunk_s : float
        Length of each chunk in seconds (at least one sample). Live boards
        deliver 10-50 ms; fast replays go quicker with larger chunks. Results
        of the pipeline do not depend on it.
    format : str, optional
        Force a file format (see :data:`~emg_pipeline.sources.formats.FORMATS`).
    fs : float, optional
        Sampling rate when the file does not state it, or a check of the file's.
    strict : bool
        Refuse a damaged file instead of reading the part that is there (see
        :func:`~emg_pipeline.sources.formats.open_recording`).
    clock : callable, optional
        Monotonic clock in seconds (default :func:`time.monotonic`).
    sleep : callable, optional
        Blocking sleep for the synchronous iterator (default :func:`time.sleep`).
    async_sleep : callable, optional
        Coroutine sleep for the asynchronous iterator (default :func:`asyncio.sleep`).

    Attributes
    ----------
    info : RecordingInfo
        The recording's description (rate, channels, unit, annotations...).
    samples_read : int
        Samples handed out so far.

    Raises
    ------
    ConfigError
        If ``speed`` or ``chunk_s`` is not a positive number.
    RecordingError, SampleRateError
        From the reader, if the file cannot be read.
    """

    def __init__(
        self,
        recording: str | Path | RecordingReader,
        *,
        speed: float | None = 1.0,
        chunk_s: float = 0.02,
        format: str | None = None,
        fs: float | None = None,
        strict: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.speed = _check_speed(speed)
        try:
            chunk_value = float(chunk_s)
        except (TypeError, ValueError):
            raise ConfigError("chunk_s", chunk_s, "a positive number of seconds") from None
        if not math.isfinite(chunk_value) or chunk_value <= 0:
            raise ConfigError("chunk_s", chunk_s, "a positive number of seconds")
        self.chunk_s = chunk_value
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        if isinstance(recording, RecordingReader):
            self._reader: RecordingReader | None = recording
            self._owns_reader = False
        else:
            self._reader = open_recording(recording, format=format, fs=fs, strict=strict)
            self._owns_reader = True
        self.info: RecordingInfo = self._reader.info
        self.chunk_samples = max(1, round(self.chunk_s * self.info.fs))
        self.samples_read = 0
        self._started = False

    # -- description ---------------------------------------------------------------------------

    @property
    def fs(self) -> float:
        """Sampling rate in Hz."""
        return self.info.fs

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names."""
        return self.info.channels

    @property
    def unit(self) -> str:
        """``'uV'`` or ``'counts'``."""
        return self.info.unit

    @property
    def position_s(self) -> float:
        """Stream time reached so far, in seconds."""
        return self.samples_read / self.info.fs

    # -- streaming -----------------------------------------------------------------------------

    def _chunks(self) -> Iterator[Chunk]:
        if self._reader is None:
            raise RuntimeError("the replay source is closed")
        if self._started:
            raise RuntimeError("a replay source streams once; open a new one to replay again")
        self._started = True
        info = self.info
        for block in self._reader.iter_chunks(self.chunk_samples):
            flags = ChunkFlags.NAN_BRIDGED if np.isnan(block).any() else ChunkFlags.NONE
            chunk = Chunk(block, info.fs, self.samples_read, flags, 0, info.channels)
            self.samples_read += block.shape[0]
            yield chunk

    def _delay(self, start: float) -> float:
        """Seconds to wait before releasing everything read so far."""
        if self.speed is None:
            return 0.0
        due = start + self.samples_read / self.info.fs / self.speed
        return due - self._clock()

    def __iter__(self) -> Iterator[Chunk]:
        """Yield the chunks, pacing with the blocking ``sleep``."""
        start = self._clock()
        for chunk in self._chunks():
            wait = self._delay(start)
            if wait > 0:
                self._sleep(wait)
            yield chunk

    def __aiter__(self) -> AsyncIterator[Chunk]:
        """Yield the chunks, pacing with ``await async_sleep``.

        Reading a chunk is a short blocking call; at real-time pace it leaves
        the event loop free nearly all the time.
        """
        return self._agen()

    async def _agen(self) -> AsyncIterator[Chunk]:
        start = self._clock()
        for chunk in self._chunks():
            wait = self._delay(start)
            if wait > 0:
                await self._async_sleep(wait)
            else:
                await asyncio.sleep(0)  # let other tasks run during fast replays
            yield chunk

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the reader if this source opened it; idempotent."""
        if self._reader is not None and self._owns_reader:
            self._reader.close()
        self._reader = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        pace = "fast" if self.speed is None else f"speed={self.speed:g}"
        return (
            f"ReplaySource({str(self.info.path)!r}, {pace}, fs={self.info.fs:g}, "
            f"channels={self.info.n_channels})"
        )
