"""Live acquisition from a Lab Streaming Layer (LSL) stream: any outlet on the network as a board.

:class:`LslSource` follows the source protocol of the project (``async with``,
``async for chunk in source``), like the BLE source:

1. it resolves a stream by name or by type (``lsl:NAME``, ``type=EMG``,
   ``source_id=...``) within ``resolve_timeout_s``, reads its description
   (rate, channel labels and units from the XML ``desc/channels`` node) and
   opens an inlet;
2. it pulls what has arrived every ``poll_s`` (never blocking the event loop)
   and puts every timestamp on this computer's LSL clock (``local_clock``):
   the sender's clock offset (``time_correction``, measured in a worker
   thread at connect time and every ``clock_update_s``) is added;
3. it places the samples on the stream's sample clock with a
   :class:`SampleTimeline`: a jump in the timestamps is samples lost on the
   way (the next chunk starts that many samples later and carries
   ``ChunkFlags.PACKET_LOSS``; the pipeline turns the jump into a bridged
   gap), so losses upstream stay visible and are counted exactly;
4. when the outlet goes away, liblsl looks for the same stream (its
   ``source_id``, else its name, type and host) until it comes back; what the
   inlet held is kept (an inlet that gives up drops it). The first chunk
   after the return carries ``ChunkFlags.RECONNECTED``, the offset is
   measured again (the stream may come back from another computer) and the
   outage is a gap measured by the timestamps. After ``give_up_after_s``
   without a sample it raises :class:`~emg_pipeline.errors.ConnectionLostError`.

:func:`list_streams` lists the streams on the network (``scan --lsl``).
Nothing here imports pylsl at import time (see :mod:`emg_pipeline.lab.deps`).

Example (a running outlet)::

    async with LslSource("type=EMG") as source:
        pipe = Pipeline(source.fs, source.channels, unit=source.unit)
        summary = await run_async(source, pipe, sinks)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from emg_pipeline.chunk import Chunk, ChunkFlags
from emg_pipeline.errors import ConfigError, ConnectionLostError, StreamNotFoundError
from emg_pipeline.lab.deps import import_pylsl
from emg_pipeline.sources.formats._base import uv_per_unit
from emg_pipeline.sources.live import LiveSource
from emg_pipeline.sources.timeline import SampleTimeline

__all__ = [
    "LslSource",
    "LslStats",
    "LslStreamDescription",
    "SampleTimeline",
    "describe_stream",
    "list_streams",
    "parse_query",
]

#: the stream properties a query may name
QUERY_PROPERTIES = ("name", "type", "source_id", "hostname")
#: samples asked of the inlet per pull
_PULL = 1024


def parse_query(text: str) -> tuple[str, str]:
    """Split a stream query into the property and the value to match.

    ``NAME`` (or ``name=NAME``) matches the stream's name; ``type=EMG``,
    ``source_id=...`` and ``hostname=...`` match those properties. An
    ``lsl:`` prefix is allowed.

    Examples
    --------
    >>> parse_query("lsl:Delsys"), parse_query("type=EMG"), parse_query("name=a=b")
    (('name', 'Delsys'), ('type', 'EMG'), ('name', 'a=b'))

    Raises
    ------
    ConfigError
        If the query is empty.
    """
    value = str(text).strip()
    if value.lower().startswith("lsl:"):
        value = value[4:].strip()
    prop = "name"
    key, sep, rest = value.partition("=")
    if sep and key.strip().lower() in QUERY_PROPERTIES:
        prop, value = key.strip().lower(), rest.strip()
    if not value or "'" in value:
        raise ConfigError("LSL stream", text, "NAME, name=NAME, type=TYPE or source_id=ID "
                          "(without quotes)")
    return prop, value


@dataclass
class LslStats:
    """Counts kept while reading an LSL stream.

    Attributes
    ----------
    chunks : int
        Chunks handed out.
    samples : int
        Samples received (per channel).
    lost_samples : int
        Samples marked lost from jumps in the timestamps (outages included).
    loss_events : int
        Gaps marked.
    early_steps : int
        Samples that came less than a period after the previous one
        (timestamp jitter or a clock going back; placed right after it).
    reconnects : int
        Times the stream came back (and sent again) after it was lost.
    """

    chunks: int = 0
    samples: int = 0
    lost_samples: int = 0
    loss_events: int = 0
    early_steps: int = 0
    reconnects: int = 0


@dataclass(frozen=True)
class LslStreamDescription:
    """What an LSL stream says of itself.

    Attributes
    ----------
    name, type, source_id, hostname : str
        The stream's identification.
    fs : float
        Nominal rate in Hz (0: irregular, e.g. markers).
    n_channels : int
        Channel count.
    channel_format : str
        ``float32``, ``double64``, ``string``, ``int32``, ``int16``,
        ``int8`` or ``int64``.
    labels, units : tuple of str
        Per channel, from the ``desc/channels`` node (empty strings when absent).
    created_at : float
        When the outlet was made, on its computer's LSL clock.
    """

    name: str
    type: str
    source_id: str
    hostname: str
    fs: float
    n_channels: int
    channel_format: str
    labels: tuple[str, ...] = field(default=())
    units: tuple[str, ...] = field(default=())
    created_at: float = 0.0

    @property
    def numeric(self) -> bool:
        """Whether the stream carries numbers (not text)."""
        return self.channel_format != "string"


_FORMATS = {1: "float32", 2: "double64", 3: "string", 4: "int32", 5: "int16", 6: "int8",
            7: "int64"}


def describe_stream(info: Any) -> LslStreamDescription:
    """The description of a pylsl ``StreamInfo`` (its XML read once, no liblsl walk).

    Parameters
    ----------
    info : pylsl.StreamInfo
        As resolved, or as an inlet's full ``info()`` (which holds ``desc``).
    """
    labels: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    try:
        root = ET.fromstring(info.as_xml())
    except ET.ParseError:
        root = None
    if root is not None:
        nodes = root.findall("./desc/channels/channel")
        labels = tuple((node.findtext("label") or "").strip() for node in nodes)
        units = tuple((node.findtext("unit") or "").strip() for node in nodes)
    return LslStreamDescription(
        name=info.name(), type=info.type(), source_id=info.source_id(),
        hostname=info.hostname(), fs=float(info.nominal_srate()),
        n_channels=int(info.channel_count()),
        channel_format=_FORMATS.get(int(info.channel_format()), "undefined"),
        labels=labels, units=units, created_at=float(info.created_at()),
    )


def list_streams(timeout_s: float = 2.0) -> list[LslStreamDescription]:
    """Every LSL stream seen on the network within ``timeout_s``, sorted by type and name.

    Raises
    ------
    MissingDependencyError
        If pylsl (or its liblsl) is missing.
    """
    pylsl = import_pylsl()
    found = [describe_stream(info) for info in pylsl.resolve_streams(float(timeout_s))]
    return sorted(found, key=lambda d: (d.type.lower(), d.name.lower(), d.hostname))


def _channel_layout(desc: LslStreamDescription) -> tuple[tuple[str, ...], str, np.ndarray]:
    """Channel names, unit and per-channel scale to that unit from the stream's description."""
    n = desc.n_channels
    labels = list(desc.labels[:n]) + [""] * max(0, n - len(desc.labels))
    names = tuple(label or f"ch{i + 1}" for i, label in enumerate(labels))
    if len(set(names)) != n:   # repeated labels: the pipeline needs distinct names
        names = tuple(f"ch{i + 1}" for i in range(n))
    units = list(desc.units[:n])
    scales = [uv_per_unit(u) if u else None for u in units]
    if len(scales) == n and all(s is not None for s in scales):
        return names, "uV", np.asarray(scales, dtype=np.float64)
    return names, "counts", np.ones(n)


class LslSource(LiveSource):
    """Chunks of samples from one LSL stream, live, with losses and reconnects accounted for.

    Parameters
    ----------
    query : str
        Which stream: ``NAME`` (also ``lsl:NAME`` or ``name=NAME``),
        ``type=EMG``, ``source_id=ID`` or ``hostname=HOST``; the first match
        is used.
    resolve_timeout_s : float
        How long to look for the stream, and to wait for a clock offset.
    poll_s : float
        Interval between pulls of what has arrived (the chunk rhythm).
    give_up_after_s : float
        No sample for this long ends the stream with
        :class:`~emg_pipeline.errors.ConnectionLostError`.
    reconnect : bool
        Wait for the stream to come back when its outlet goes away (else raise
        at once).
    gap_tolerance_s : float
        Extra delay a sample may have before it counts as a gap (see
        :class:`SampleTimeline`; raise it for outlets that stamp chunks with
        the time they were pushed).
    buffer_s : float
        How much the inlet buffers while the pipeline is busy.
    clock_update_s : float
        Interval between measurements of the sender's clock offset.

    Attributes
    ----------
    description : LslStreamDescription or None
        The stream read from, once connected.
    stats : LslStats
        Chunks, samples, losses, reconnects.
    timeline : SampleTimeline or None
        Where the samples were placed; ``timeline.first_timestamp`` is the
        LSL time (this computer's clock) of sample 0.
    clock_offset_s : float
        The sender's clock offset last measured (about 0 on one computer).

    Raises
    ------
    ConfigError
        If a setting is out of range or the query is empty.
    """

    def __init__(self, query: str = "type=EMG", *, resolve_timeout_s: float = 5.0,
                 poll_s: float = 0.01, give_up_after_s: float = 120.0,
                 reconnect: bool = True, gap_tolerance_s: float = 0.0,
                 buffer_s: float = 360.0, clock_update_s: float = 5.0) -> None:
        self.query = str(query)
        self.prop, self.value = parse_query(query)
        for name, value in (("resolve_timeout_s", resolve_timeout_s), ("poll_s", poll_s),
                            ("give_up_after_s", give_up_after_s), ("buffer_s", buffer_s),
                            ("clock_update_s", clock_update_s)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(name, value, "a positive number of seconds")
        if not (isinstance(gap_tolerance_s, int | float) and gap_tolerance_s >= 0):
            raise ConfigError("gap_tolerance_s", gap_tolerance_s, "zero or more seconds")
        self.resolve_timeout_s = float(resolve_timeout_s)
        self.poll_s = float(poll_s)
        self.give_up_after_s = float(give_up_after_s)
        self.reconnect = bool(reconnect)
        self.gap_tolerance_s = float(gap_tolerance_s)
        self.buffer_s = float(buffer_s)
        self.clock_update_s = float(clock_update_s)
        self.description: LslStreamDescription | None = None
        self.stats = LslStats()
        self.timeline: SampleTimeline | None = None
        self.clock_offset_s = 0.0
        self._pylsl: ModuleType | None = None
        self._inlet: Any = None
        self._channels: tuple[str, ...] = ()
        self._unit = "counts"
        self._scale = np.ones(0)
        self._reconnected = False
        self._closed = False
        self._numpy_pull = False
        self._clock_task: asyncio.Task[None] | None = None
        self._clock_measured = -math.inf

    # ---------------------------------------------------------------- facade
    @property
    def fs(self) -> float:
        """Sampling rate in Hz (the stream's nominal rate)."""
        return self._described().fs

    @property
    def channels(self) -> tuple[str, ...]:
        """Channel names (the stream's labels, else ch1..chN)."""
        self._described()
        return self._channels

    @property
    def unit(self) -> str:
        """``"uV"`` when every channel states a voltage unit (then in µV), else ``"counts"``."""
        self._described()
        return self._unit

    @property
    def name(self) -> str | None:
        """The stream's name, once connected."""
        return None if self.description is None else self.description.name

    @property
    def connected(self) -> bool:
        """Whether an inlet is open."""
        return self._inlet is not None

    def _described(self) -> LslStreamDescription:
        if self.description is None:
            raise RuntimeError("the LSL source is not connected yet (call connect())")
        return self.description

    # ------------------------------------------------------------- lifecycle
    async def connect(self) -> None:
        """Resolve the stream, open an inlet on it and measure the sender's clock offset.

        Raises
        ------
        MissingDependencyError
            If pylsl (or liblsl) is missing.
        StreamNotFoundError
            No matching stream was found in time, or it carries no samples to
            detect on (text, an irregular rate).
        """
        if self._closed:
            raise ConnectionLostError(f"LSL stream {self.prop}={self.value}",
                                      "the source was closed")
        if self._inlet is not None:
            return
        pylsl = import_pylsl()
        self._pylsl = pylsl
        self._numpy_pull = "as_numpy" in inspect.signature(pylsl.StreamInlet.pull_chunk).parameters
        query = f"{self.prop}={self.value}"
        timeout_s = self.resolve_timeout_s
        found = await asyncio.to_thread(pylsl.resolve_byprop, self.prop, self.value, 1,
                                        timeout_s)
        if not found:
            raise StreamNotFoundError(query, timeout_s)
        first = describe_stream(found[0])
        if not first.numeric:
            raise StreamNotFoundError(query, timeout_s, f"{first.name!r} carries text (a marker "
                                      "stream), not samples to detect on")
        if first.fs <= 0:
            raise StreamNotFoundError(query, timeout_s, f"{first.name!r} has an irregular rate: "
                                      "no sampling rate to detect on")
        # liblsl's own recovery keeps what the inlet holds when the outlet goes away;
        # clock offsets are applied here, so that a pull never waits for one
        inlet = pylsl.StreamInlet(found[0], max_buflen=max(1, math.ceil(self.buffer_s)),
                                  recover=self.reconnect, processing_flags=0)
        errors = (pylsl.util.TimeoutError, pylsl.util.LostError)
        try:
            full = await asyncio.to_thread(inlet.info, timeout_s)
            await asyncio.to_thread(inlet.open_stream, timeout_s)
            self.clock_offset_s = float(await asyncio.to_thread(inlet.time_correction,
                                                                timeout_s))
        except errors as exc:
            with contextlib.suppress(Exception):
                inlet.close_stream()
            raise StreamNotFoundError(query, timeout_s,
                                      f"found {first.name!r} but could not open it "
                                      f"({type(exc).__name__})") from None
        self._clock_measured = time.monotonic()
        desc = describe_stream(full)
        self.description = desc
        self._channels, self._unit, self._scale = _channel_layout(desc)
        self.timeline = SampleTimeline(desc.fs, gap_tolerance_s=self.gap_tolerance_s)
        self._inlet = inlet

    async def chunks(self) -> AsyncIterator[Chunk]:
        """Yield chunks as samples arrive, until cancelled or closed.

        Every chunk's ``first_index`` is its place on the stream's sample
        clock, from the timestamps: lost samples lie between chunks
        (``PACKET_LOSS``), never closed up. The inlet is closed when the
        iteration ends for any reason.

        Raises
        ------
        ConnectionLostError
            No sample came for ``give_up_after_s`` (or, without ``reconnect``,
            the outlet went away).
        """
        try:
            await self.connect()
            pylsl = self._pylsl
            assert pylsl is not None
            last_data = time.monotonic()
            while True:
                inlet = self._inlet
                if inlet is None:   # closed meanwhile
                    return
                if inlet.was_clock_reset():   # liblsl recovered the stream
                    self._reconnected = True
                    await self._measure_clock()
                elif time.monotonic() - self._clock_measured > self.clock_update_s \
                        and self._clock_task is None:
                    self._clock_task = asyncio.get_running_loop().create_task(
                        self._measure_clock())
                try:
                    data, stamps = self._pull_all()
                except pylsl.util.LostError:
                    raise ConnectionLostError(f"LSL stream {self._described().name!r}",
                                              "the outlet went away") from None
                now = time.monotonic()
                if stamps.size:
                    last_data = now
                    for chunk in self._place(data, stamps + self.clock_offset_s):
                        yield chunk
                elif now - last_data > self.give_up_after_s:
                    raise ConnectionLostError(f"LSL stream {self._described().name!r}",
                                              f"no data for {self.give_up_after_s:g} s")
                await asyncio.sleep(self.poll_s)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the inlet (idempotent)."""
        self._closed = True
        task, self._clock_task = self._clock_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            with contextlib.suppress(Exception):
                inlet.close_stream()

    # ------------------------------------------------------------- internals
    async def _measure_clock(self) -> None:
        """Measure the sender's clock offset in a worker thread (it takes round trips)."""
        inlet, pylsl = self._inlet, self._pylsl
        try:
            if inlet is not None and pylsl is not None:
                with contextlib.suppress(pylsl.util.TimeoutError, pylsl.util.LostError):
                    self.clock_offset_s = float(await asyncio.to_thread(
                        inlet.time_correction, self.resolve_timeout_s))
            self._clock_measured = time.monotonic()
        finally:
            if self._clock_task is asyncio.current_task():
                self._clock_task = None

    def _pull_all(self) -> tuple[np.ndarray, np.ndarray]:
        """Everything the inlet holds now (non-blocking), as float64 samples and timestamps."""
        inlet = self._inlet
        desc = self._described()
        n_ch = desc.n_channels
        parts: list[np.ndarray] = []
        stamps: list[np.ndarray] = []
        while True:
            if self._numpy_pull:
                block, ts = inlet.pull_chunk(timeout=0.0, max_samples=_PULL, as_numpy=True)
                block = np.asarray(block).reshape(-1, n_ch)
            else:   # pylsl < 1.18: pull into a buffer of our own
                dtype = np.float64 if desc.channel_format == "double64" else np.float32
                buffer = np.empty((_PULL, n_ch), dtype=dtype)
                _, ts = inlet.pull_chunk(timeout=0.0, max_samples=_PULL, dest_obj=buffer)
                block = buffer[: len(ts)]
            ts = np.asarray(ts, dtype=np.float64)
            if ts.size == 0:
                break
            parts.append(np.asarray(block, dtype=np.float64))
            stamps.append(ts)
            if ts.size < _PULL:
                break
        if not parts:
            return np.empty((0, n_ch)), np.empty(0)
        data = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return data, (stamps[0] if len(stamps) == 1 else np.concatenate(stamps))

    def _place(self, data: np.ndarray, stamps: np.ndarray) -> list[Chunk]:
        """Cut what was pulled into chunks at the gaps its timestamps show."""
        timeline = self.timeline
        assert timeline is not None
        start = timeline.n_samples
        lost = timeline.place(stamps)
        if self._unit == "uV":
            data = data * self._scale
        fs = timeline.fs
        cuts = np.flatnonzero(lost)
        bounds = [0, *cuts.tolist(), data.shape[0]]
        chunks: list[Chunk] = []
        index = start
        for k in range(len(bounds) - 1):
            a, b = bounds[k], bounds[k + 1]
            if a == b:
                continue
            missing = int(lost[a])
            index += missing
            flags = ChunkFlags.PACKET_LOSS if missing else ChunkFlags.NONE
            if self._reconnected:   # counted when data flows again
                flags |= ChunkFlags.RECONNECTED
                self._reconnected = False
                self.stats.reconnects += 1
            chunks.append(Chunk(data[a:b], fs, index, flags, missing, self._channels))
            index += b - a
        stats = self.stats
        stats.chunks += len(chunks)
        stats.samples += data.shape[0]
        stats.lost_samples = timeline.lost_samples
        stats.loss_events = timeline.loss_events
        stats.early_steps = timeline.early_steps
        return chunks

    def __repr__(self) -> str:
        return f"LslSource({self.prop}={self.value!r}, connected={self.connected})"
