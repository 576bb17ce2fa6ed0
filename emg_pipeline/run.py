"""One run loop: a source's chunks through the pipeline into the sinks.

Every command and benchmark drives a stream the same way, with :func:`run`
(a recording, a synthetic signal, any iterable of chunks) or :func:`run_async`
(a live board, any async iterable)::

    sinks open ─► for each chunk: pipeline.process ─► every sink's update
              ─► pipeline.flush ─► every sink's update ─► every sink's close(summary)

A :class:`Sink` sees the stream's :class:`StreamInfo` when it opens, each
:class:`~emg_pipeline.pipeline.ChunkResult` (the chunk's samples, envelope,
flags, thresholds and live events), and the :class:`RunSummary` at the end: a
plain value, so sinks never reach into the pipeline. Ctrl-C (or the task's
cancellation) ends the stream like its end: the episodes still open are closed
(marked ``truncated``) and every sink is closed, and the summary says it was
interrupted. A read error of the source (a
:class:`~emg_pipeline.errors.RecordingError`: a damaged cell, a truncated
file) ends it the same way, after every sample read before the fault, and the
summary holds the error (``read_error``); then :func:`run` raises it, unless
asked for the summary of the part read (``partial=True``). A sink that fails
while the stream runs does not stop the others from being closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np

from .chunk import Chunk
from .errors import RecordingError
from .events import Episode
from .labels import Label
from .pipeline import ChunkResult, Pipeline

__all__ = ["RunSummary", "Sink", "StreamInfo", "run", "run_async"]

#: a mains line is reported when what was removed reaches this share of what is left
MAINS_REPORT_LEVEL = 0.1


@dataclass(frozen=True)
class StreamInfo:
    """What a sink knows of a stream before its first chunk.

    Attributes
    ----------
    fs : float
        Sampling rate in Hz.
    channels : tuple of str
        Channel names.
    unit : {"uV", "counts"}
        Unit of the samples.
    frame_s : float
        Envelope frame duration in seconds.
    title : str
        What is streamed (a file name, a board).
    start_time : datetime or None
        Wall-clock time of the first sample, when known.
    """

    fs: float
    channels: tuple[str, ...]
    unit: str
    frame_s: float
    title: str = ""
    start_time: datetime | None = None

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @classmethod
    def of(cls, pipe: Pipeline, title: str = "", start_time: datetime | None = None) -> StreamInfo:
        """The info of the stream a pipeline is built for."""
        return cls(pipe.fs, pipe.channels, pipe.unit, pipe.frame_s, title, start_time)


@dataclass(frozen=True)
class RunSummary:
    """What a finished (or interrupted) stream amounted to: a plain value.

    Attributes
    ----------
    info : StreamInfo
        The stream.
    n_samples : int
        Samples on the stream's clock (lost ones included).
    episodes : tuple of Episode
        Every episode, in the order they ended.
    n_alerts : int
        Prolonged-spasm alerts raised (``sustained`` events).
    artefact_s, no_signal_s : tuple of float
        Per channel: time marked as artefact, and time without signal (a
        flat line). A frame without signal is not counted as artefact too.
    bridged_samples : tuple of int
        Per channel: missing samples (NaN, inf, lost packets) bridged.
    lost_samples : int
        Samples lost in transmission (marked as gaps).
    mains_hz : float or None
        Grid frequency removed, if any.
    mains_level : tuple of float
        Per channel: RMS of the mains interference removed over the RMS of
        the EMG band left (0 where none was removed).
    interrupted : bool
        The stream was stopped (Ctrl-C, or a failure of a sink) before its end.
    source_stats : mapping
        Counts the source kept (packets, losses, reconnects...), if any.
    wall_s : float
        Wall-clock duration of the run.
    rejected : tuple of Episode
        What ended but was rejected as not muscle (each one's ``because``
        says why); in no count.
    read_error : RecordingError or None
        The read error of the source that ended the stream before the
        recording's end (after every sample read before it), if any.
    """

    info: StreamInfo
    n_samples: int
    episodes: tuple[Episode, ...]
    n_alerts: int
    artefact_s: tuple[float, ...]
    no_signal_s: tuple[float, ...]
    bridged_samples: tuple[int, ...]
    lost_samples: int
    mains_hz: float | None
    mains_level: tuple[float, ...] = ()
    interrupted: bool = False
    source_stats: Mapping[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    rejected: tuple[Episode, ...] = ()
    read_error: RecordingError | None = None

    @property
    def duration_s(self) -> float:
        """Stream duration in seconds."""
        return self.n_samples / self.info.fs

    @property
    def has_results(self) -> bool:
        """Whether there is something true to write: the stream ended, or ran before it stopped.

        A stream that reached its end has results, even without a sample (an
        empty recording has no episodes). One stopped before its first sample
        (Ctrl-C, a read error, a failing sink) has none: outputs that existed
        are then left as they were.
        """
        stopped = self.interrupted or self.read_error is not None
        return self.n_samples > 0 or not stopped

    @property
    def stopped(self) -> str:
        """Why the stream stopped before its end, in words; ``""`` if it reached its end.

        ``"interrupted"`` (Ctrl-C, a failing sink) or ``"stopped by a read error"``.
        """
        if self.read_error is not None:
            return "stopped by a read error"
        return "interrupted" if self.interrupted else ""

    def mains_text(self) -> str:
        """What was done about mains: the line and its level, or that none was worth removing.

        A line whose removed part stays under a tenth of what is left on every
        channel is below the noise: modelling it changed nothing that matters.
        """
        if self.mains_hz is None:
            return "none found"
        levels = self.mains_level
        if not levels or max(levels) < MAINS_REPORT_LEVEL:
            return f"no {self.mains_hz:g} Hz line above a tenth of the noise"
        detail = ", ".join(f"{name} {level:.2g}x" for name, level in
                           zip(self.info.channels, levels, strict=True))
        return f"{self.mains_hz:g} Hz removed (its RMS over what is left: {detail})"

    def raise_if_interrupted(self) -> RunSummary:
        """This summary, or :class:`KeyboardInterrupt` again when Ctrl-C stopped the stream.

        The run loop catches Ctrl-C to close every sink and returns a summary
        of what was processed. A caller that needs the whole recording (a
        report, a plot, an export, :func:`~emg_pipeline.pipeline.detect`)
        raises it again rather than pass a part off as the whole.
        """
        if self.interrupted:
            raise KeyboardInterrupt
        return self

    @property
    def n_twitches(self) -> int:
        """Episodes labelled twitch."""
        return sum(e.label == Label.TWITCH for e in self.episodes)

    @property
    def n_spasms(self) -> int:
        """Episodes labelled spasm."""
        return sum(e.label == Label.SPASM for e in self.episodes)

    @classmethod
    def of(cls, pipe: Pipeline, info: StreamInfo, *, n_alerts: int = 0,
           interrupted: bool = False, source_stats: Mapping[str, int] | None = None,
           wall_s: float = 0.0, read_error: RecordingError | None = None) -> RunSummary:
        """The summary of what ``pipe`` processed."""
        return cls(
            info=info,
            n_samples=pipe.n_samples,
            episodes=tuple(pipe.episodes),
            n_alerts=n_alerts,
            artefact_s=tuple((np.asarray(pipe.artefact_frames) * pipe.frame_s).tolist()),
            no_signal_s=tuple((np.asarray(pipe.no_signal_frames) * pipe.frame_s).tolist()),
            bridged_samples=tuple(int(n) for n in pipe.bridged_samples),
            lost_samples=int(pipe.lost_samples),
            mains_hz=pipe.mains_hz,
            mains_level=tuple(float(v) for v in pipe.mains_level),
            interrupted=interrupted,
            source_stats=dict(source_stats or {}),
            wall_s=wall_s,
            rejected=tuple(pipe.rejected),
            read_error=read_error,
        )


@runtime_checkable
class Sink(Protocol):
    """Where results go while a stream runs: ``open``, ``update`` per chunk, ``close``."""

    def open(self, info: StreamInfo) -> None:
        """Prepare for the stream (before its first chunk)."""
        ...

    def update(self, result: ChunkResult) -> None:
        """Take one chunk's result (the last one is the end of the stream's)."""
        ...

    def close(self, summary: RunSummary) -> None:
        """The stream is over: finish and release everything."""
        ...


class _Loop:
    """The parts of a run that do not depend on how chunks arrive.

    Used as ``with loop:`` around the iteration: entering opens the sinks;
    leaving ends the stream (the pipeline's flush goes to the sinks), builds the
    summary and closes every sink opened, even when a sink or the pipeline fails
    (then the summary says the stream was cut short and the error propagates).
    The chunks are taken through :meth:`read` or :meth:`aread`: a read error of
    the source ends them, and is kept for the summary.
    """

    def __init__(self, pipeline: Pipeline, sinks: Sequence[Sink], info: StreamInfo,
                 limit_samples: int | None, stats: Callable[[], Mapping[str, int]] | None,
                 on_result: Callable[[ChunkResult], None] | None) -> None:
        self.pipeline = pipeline
        self.sinks = tuple(sinks)
        self.info = info
        self.limit = limit_samples
        self.stats = stats
        self.on_result = on_result
        self.n_alerts = 0
        self.interrupted = False
        self.read_error: RecordingError | None = None
        self.started = time.monotonic()
        self.opened: list[Sink] = []
        self.result: RunSummary | None = None

    def __enter__(self) -> _Loop:
        try:
            for sink in self.sinks:
                sink.open(self.info)
                self.opened.append(sink)
        except BaseException:
            self._close(self._summary())
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        summary = None
        try:
            if exc_type is None:
                self._deliver(self.pipeline.flush())
                summary = self._summary()
        finally:
            self.interrupted = self.interrupted or summary is None
            self._close(summary if summary is not None else self._summary())
        self.result = summary

    def read(self, source: Iterable[Chunk | np.ndarray]) -> Iterator[Chunk | np.ndarray]:
        """The source's chunks, until its end or its first read error (kept)."""
        chunks = iter(source)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except RecordingError as exc:
                self.read_error = exc
                return
            yield chunk

    async def aread(self, source: AsyncIterable[Chunk]) -> AsyncIterator[Chunk]:
        """:meth:`read` for an asynchronous source."""
        chunks = aiter(source)
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except RecordingError as exc:
                self.read_error = exc
                return
            yield chunk

    def chunk(self, chunk: Chunk | np.ndarray) -> bool:
        """Process one chunk; False once the sample limit is reached."""
        self._deliver(self.pipeline.process(chunk))
        return self.limit is None or self.pipeline.n_samples < self.limit

    def _deliver(self, result: ChunkResult) -> None:
        self.n_alerts += sum(e.kind == "sustained" for e in result.events)
        for sink in self.sinks:
            sink.update(result)
        if self.on_result is not None:
            self.on_result(result)

    def _summary(self) -> RunSummary:
        return RunSummary.of(
            self.pipeline, self.info, n_alerts=self.n_alerts, interrupted=self.interrupted,
            source_stats=self.stats() if self.stats is not None else None,
            wall_s=time.monotonic() - self.started, read_error=self.read_error,
        )

    def _close(self, summary: RunSummary) -> None:
        """Close every opened sink, even if one of them fails; raise the first error."""
        first: BaseException | None = None
        for sink in self.opened:
            try:
                sink.close(summary)
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first


def run(
    source: Iterable[Chunk | np.ndarray],
    pipeline: Pipeline,
    sinks: Sequence[Sink] = (),
    *,
    info: StreamInfo | None = None,
    limit_samples: int | None = None,
    stats: Callable[[], Mapping[str, int]] | None = None,
    on_result: Callable[[ChunkResult], None] | None = None,
    partial: bool = False,
) -> RunSummary:
    """Drive a stream from ``source`` through ``pipeline`` into ``sinks``.

    Parameters
    ----------
    source : iterable of Chunk or ndarray
        The stream's chunks, in order.
    pipeline : Pipeline
        A fresh pipeline built for the stream.
    sinks : sequence of Sink
        Opened before the first chunk, updated with every result, closed at the end.
    info : StreamInfo, optional
        Default: from the pipeline.
    limit_samples : int, optional
        Stop once this many samples have been processed.
    stats : callable, optional
        Returns the source's counts for the summary (called at the end).
    on_result : callable, optional
        Called with every result after the sinks (e.g. a progress bar).
    partial : bool
        What a read error of the source does once it has ended the stream
        (every sample read before it processed, the sinks closed with a
        summary that holds it): False raises it; True returns that summary,
        for a caller that reports the part read.

    Returns
    -------
    RunSummary
        With ``interrupted`` set when Ctrl-C stopped the stream, and
        ``read_error`` when a read error did (``partial=True``).

    Raises
    ------
    RecordingError
        The source's read error, unless ``partial``.

    Examples
    --------
    >>> from emg_pipeline import simulate
    >>> rec = simulate(np.random.default_rng(1), fs=1000.0, duration_s=20.0, n_channels=1)
    >>> summary = run(np.array_split(rec.signal, 40), Pipeline(rec.fs, rec.channels, unit="uV"))
    >>> summary.duration_s, len(summary.episodes) == len(rec.truth)
    (20.0, True)
    """
    loop = _Loop(pipeline, sinks, info or StreamInfo.of(pipeline), limit_samples, stats,
                 on_result)
    with loop:
        try:
            for chunk in loop.read(source):
                if not loop.chunk(chunk):
                    break
        except KeyboardInterrupt:
            loop.interrupted = True
    return _outcome(loop, partial)


def _outcome(loop: _Loop, partial: bool) -> RunSummary:
    """The summary of a finished loop, or its read error raised (unless ``partial``)."""
    if loop.read_error is not None and not partial:
        raise loop.read_error
    assert loop.result is not None
    return loop.result


async def run_async(
    source: AsyncIterable[Chunk],
    pipeline: Pipeline,
    sinks: Sequence[Sink] = (),
    *,
    info: StreamInfo | None = None,
    limit_samples: int | None = None,
    stats: Callable[[], Mapping[str, int]] | None = None,
    on_result: Callable[[ChunkResult], None] | None = None,
    partial: bool = False,
) -> RunSummary:
    """:func:`run` for a live source (an async iterable, e.g. a BLE board).

    The task's cancellation (what Ctrl-C does to ``asyncio.run``) ends the
    stream like its end, with ``interrupted`` set; the cancellation is not
    propagated further.
    """
    loop = _Loop(pipeline, sinks, info or StreamInfo.of(pipeline), limit_samples, stats,
                 on_result)
    with loop:
        try:
            async for chunk in loop.aread(source):
                if not loop.chunk(chunk):
                    break
        except (asyncio.CancelledError, KeyboardInterrupt):
            loop.interrupted = True
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
    return _outcome(loop, partial)
