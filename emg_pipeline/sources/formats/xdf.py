"""XDF files (LabRecorder, Lab Streaming Layer): the EMG stream, its gaps, the markers.

Layout
------
An XDF file (magic ``XDF:``, or gzipped as ``.xdfz`` / ``.xdf.gz``) holds
several streams recorded together, each with its own header (name, type,
channel count, nominal rate, format, an XML description), its samples with
timestamps on the sending computer's clock, and clock-offset measurements.
The file is read with pyxdf (the ``lab`` extra), clock offsets applied:
every timestamp is on the recording computer's clock, so streams line up.

Which stream
------------
``stream=NAME`` (the CLI's ``--stream``) picks a stream by name. Otherwise
the stream of type ``EMG`` (any case); else the only numeric stream with a
regular rate. When several qualify, the error lists them.

Timeline
--------
Samples are placed by their timestamps with
:class:`~emg_pipeline.sources.timeline.SampleTimeline`: a jump in time is samples
lost while recording (network, a device dropping out), kept as a gap: rows
of NaN, which the pipeline bridges and counts, so that later samples keep
their place in time. Timestamp jitter is not taken for loss (the tolerance
grows with the jitter the file shows); ``metadata`` says how many samples
and gaps were found (``lost_samples``, ``gaps``). Time 0 is the first EMG
sample.

Markers
-------
Every text stream (type ``Markers`` and the like) and every irregular
numeric stream becomes annotations: ``onset_s`` from the marker's timestamp
(same clock, relative to the first EMG sample), duration 0, the text being
the marker (``NAME: marker`` when there are several such streams).

Units
-----
When every channel of the EMG stream states a voltage unit in its
``desc/channels/channel/unit`` (microvolts, µV, mV, V...), values are
converted to µV; otherwise they are counts. The first sample's wall-clock
time is not known from an XDF file (its timestamps are on a monotonic
clock): ``start_time`` is None, and the file header's ``datetime`` is kept in
``metadata['file_datetime']``.

The whole file is read at opening (pyxdf reads files whole).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from emg_pipeline.errors import RecordingError
from emg_pipeline.sources.timeline import WIDEST_GAP_S, SampleTimeline

from ._base import (
    RecordingInfo,
    RecordingReader,
    make_annotations,
    resolve_fs,
    to_uv,
    uv_per_unit,
)

__all__ = ["XdfReader"]

_BLOCK = 65536


def _first(value: object, default: str = "") -> str:
    """pyxdf's header values are one-element lists of strings (or None)."""
    if isinstance(value, list):
        value = value[0] if value else None
    return default if value is None else str(value)


def _child(node: object, *names: str) -> object:
    for name in names:
        if not isinstance(node, Mapping):
            return None
        value = node.get(name)
        node = value[0] if isinstance(value, list) and value else value
    return node


def _channel_list(info: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    channels = _child(info, "desc", "channels")
    if not isinstance(channels, Mapping):
        return []
    listed = channels.get("channel") or []
    return [c for c in listed if isinstance(c, Mapping)]


class _Collect(logging.Handler):
    """Keeps what pyxdf says while it reads (damage it skipped over)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(record.getMessage().split())
        (self.errors if record.levelno >= logging.ERROR else self.warnings).append(text)


class XdfReader(RecordingReader):
    """Reader of XDF files: the EMG stream with its gaps, marker streams as annotations.

    Parameters
    ----------
    path : str or Path
        The file.
    fs : float, optional
        Checks the stream's nominal rate, or supplies one for a stream
        recorded with an irregular rate.
    strict : bool
        Refuse a file pyxdf had to skip damage in.
    stream : str, optional
        Name of the stream to read (default: the EMG stream).
    gap_tolerance_s : float
        Extra delay a sample may have before it counts as a gap.
    """

    format: ClassVar[str] = "xdf"
    extensions: ClassVar[tuple[str, ...]] = (".xdf", ".xdfz", ".xdf.gz")

    def __init__(self, path: str | Path, *, fs: float | None = None, strict: bool = False,
                 stream: str | None = None, gap_tolerance_s: float = 0.0) -> None:
        self.stream = stream
        self.gap_tolerance_s = float(gap_tolerance_s)
        self._data = np.empty((0, 0))
        self._notes: list[str] = []
        self._damage: list[str] = []
        super().__init__(path, fs=fs, strict=strict)

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """XDF files start with the magic ``XDF:``."""
        return head.startswith(b"XDF:")

    # -- reading -------------------------------------------------------------------------------

    def _load(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from emg_pipeline.lab.deps import import_pyxdf

        pyxdf = import_pyxdf()
        logger = logging.getLogger("pyxdf")
        collect = _Collect()
        logger.addHandler(collect)
        try:
            streams, header = pyxdf.load_xdf(
                str(self.path), synchronize_clocks=True, handle_clock_resets=True,
                dejitter_timestamps=False)
        except Exception as exc:  # pyxdf raises Exception, struct.error, EOFError, KeyError...
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise RecordingError(self.path, f"malformed XDF file ({text[:160]})") from None
        finally:
            logger.removeHandler(collect)
        self._damage = [text.rstrip(". ") for text in collect.errors]
        self._notes = collect.warnings
        return list(streams), dict(header or {})

    def _choose(self, streams: list[dict[str, Any]]) -> dict[str, Any]:
        def name(s: dict[str, Any]) -> str:
            return _first(s["info"].get("name"))

        def kind(s: dict[str, Any]) -> str:
            return _first(s["info"].get("type"))

        def numeric(s: dict[str, Any]) -> bool:
            return _first(s["info"].get("channel_format")) != "string"

        def regular(s: dict[str, Any]) -> bool:
            try:
                return float(_first(s["info"].get("nominal_srate"), "0")) > 0
            except ValueError:
                return False

        listing = ", ".join(f"{name(s)!r} ({kind(s) or 'no type'})" for s in streams) or "none"
        if self.stream is not None:
            chosen = [s for s in streams if name(s) == self.stream]
            if not chosen:
                raise RecordingError(self.path, f"no stream named {self.stream!r} (streams: "
                                                f"{listing})")
            if not numeric(chosen[0]):
                raise RecordingError(self.path, f"stream {self.stream!r} holds text (markers), "
                                                "not samples")
            return chosen[0]
        emg = [s for s in streams if kind(s).lower() == "emg" and numeric(s)]
        if not emg:
            emg = [s for s in streams if numeric(s) and regular(s)]
        if not emg:
            raise RecordingError(self.path, f"no EMG stream (streams: {listing})")
        if len(emg) > 1:
            names = ", ".join(repr(name(s)) for s in emg)
            raise RecordingError(self.path, f"several streams could be the EMG ({names}): "
                                            "choose one with --stream NAME")
        return emg[0]

    def _inspect(self, fs: float | None) -> RecordingInfo:
        streams, header = self._load()
        try:
            chosen = self._choose(streams)
        except RecordingError:
            if self._damage:   # nothing usable left: say why
                raise RecordingError(self.path, f"damaged XDF file ({self._damage[0][:160]})"
                                     ) from None
            raise
        if self._damage:
            self._salvage(f"damaged XDF file: {self._damage[0][:160]}",
                          "reading the chunks that are whole")
        info = chosen["info"]
        stream_name = _first(info.get("name"))
        try:
            stated = float(_first(info.get("nominal_srate"), "0"))
        except ValueError:
            stated = 0.0
        rate = resolve_fs(self.path, stated if stated > 0 else None, fs,
                          f"the header of stream {stream_name!r}")
        series = chosen["time_series"]
        values = np.asarray(series, dtype=np.float64)
        n_ch = int(_first(info.get("channel_count"), "0") or 0) or (
            values.shape[1] if values.ndim == 2 else 1)
        values = values.reshape(-1, n_ch) if values.size else np.empty((0, n_ch))
        stamps = np.asarray(chosen["time_stamps"], dtype=np.float64).reshape(-1)
        if stamps.shape[0] != values.shape[0]:
            raise RecordingError(self.path, f"stream {stream_name!r} has {values.shape[0]} "
                                            f"samples but {stamps.shape[0]} timestamps")
        if values.shape[0] == 0:
            raise RecordingError(self.path, f"stream {stream_name!r} holds no samples")
        order_ok = bool(np.all(np.diff(stamps) > -0.5))
        names, unit, scale = self._channels(info, n_ch)
        timeline = SampleTimeline(rate, gap_tolerance_s=self.gap_tolerance_s)
        lost = timeline.place(stamps)
        widest = int(lost.max())
        if widest > max(WIDEST_GAP_S * rate, values.shape[0]):
            at = float(stamps[max(0, int(np.argmax(lost)) - 1)] - stamps[0])
            raise RecordingError(self.path, f"stream {stream_name!r}: its timestamps jump by "
                                            f"{widest / rate:.0f} s at {at:.1f} s (a clock "
                                            "reset?): too long a gap to keep")
        positions = np.arange(values.shape[0]) + np.cumsum(lost)
        data = np.full((timeline.n_samples, n_ch), np.nan)
        data[positions] = to_uv(values, scale)
        self._data = data
        t0 = float(stamps[0])
        annotations = self._markers(streams, chosen, t0)
        metadata: dict[str, object] = {
            "stream": stream_name,
            "stream_type": _first(info.get("type")),
            "source_id": _first(info.get("source_id")),
            "hostname": _first(info.get("hostname")),
            "streams": tuple(_first(s["info"].get("name")) for s in streams),
            "lost_samples": timeline.lost_samples,
            "gaps": timeline.loss_events,
            "timestamp_jitter_s": timeline.jitter_s,
            "clock_offsets": len(chosen.get("clock_times") or ()),
            "first_timestamp": t0,
        }
        if not order_ok:
            metadata["timestamps_went_back"] = True
        file_datetime = _first(_child(header.get("info", {}), "datetime"))
        if file_datetime:
            metadata["file_datetime"] = file_datetime
        if self._notes:
            metadata["reader_notes"] = tuple(self._notes[:10])
        return RecordingInfo(
            path=self.path, format=self.format, fs=rate, channels=names, unit=unit,
            n_samples=int(data.shape[0]), start_time=None, annotations=annotations,
            metadata=metadata,
        )

    @staticmethod
    def _channels(info: Mapping[str, Any], n_ch: int) -> tuple[tuple[str, ...], str, np.ndarray]:
        listed = _channel_list(info)
        labels = [_first(_child(c, "label")).strip() for c in listed[:n_ch]]
        labels += [""] * (n_ch - len(labels))
        names = tuple(label or f"ch{i + 1}" for i, label in enumerate(labels))
        if len(set(names)) != n_ch:
            names = tuple(f"ch{i + 1}" for i in range(n_ch))
        units = [_first(_child(c, "unit")).strip() for c in listed[:n_ch]]
        scales = [uv_per_unit(u) if u else None for u in units]
        if len(scales) == n_ch and all(s is not None for s in scales):
            return names, "uV", np.asarray(scales, dtype=np.float64)
        return names, "counts", np.ones(n_ch)

    @staticmethod
    def _markers(streams: list[dict[str, Any]], chosen: dict[str, Any],
                 t0: float) -> pd.DataFrame:
        marker_streams = []
        for s in streams:
            if s is chosen:
                continue
            info = s["info"]
            text = _first(info.get("channel_format")) == "string"
            try:
                irregular = float(_first(info.get("nominal_srate"), "0")) == 0
            except ValueError:
                irregular = False
            if text or irregular:
                marker_streams.append(s)
        onsets: list[float] = []
        texts: list[str] = []
        prefix = len(marker_streams) > 1
        for s in marker_streams:
            name = _first(s["info"].get("name"))
            stamps = np.asarray(s["time_stamps"], dtype=np.float64).reshape(-1)
            for stamp, sample in zip(stamps.tolist(), s["time_series"], strict=False):
                values = sample if isinstance(sample, list | tuple | np.ndarray) else [sample]
                value = ", ".join(str(v) for v in values)
                onsets.append(stamp - t0)
                texts.append(f"{name}: {value}" if prefix else value)
        order = np.argsort(np.asarray(onsets), kind="stable")
        return make_annotations([onsets[i] for i in order], [0.0] * len(onsets),
                                [texts[i] for i in order])

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        step = max(size_hint, _BLOCK)
        for start in range(0, self._data.shape[0], step):
            yield self._data[start : start + step]
