"""Durable recordings: BDF+ (24-bit) or EDF+ (16-bit) written as the stream runs.

:class:`RecordingWriter` writes the samples of a live stream (or a replay) to a
standard file that EDF viewers, MNE, EDFbrowser and edfio open, with the
detected episodes as EDF+ annotations, one data record (``record_s``, 1 s by
default) at a time:

- the header is written first with the number of data records set to ``-1``
  (the EDF+ convention for "still recording") and fixed on :meth:`close`; the
  file starts in one step (header under a temporary name, renamed over any file
  of that name);
- every complete record is written and flushed to the operating system at once,
  and the file is ``fsync``'d at least every ``fsync_s`` seconds of wall-clock
  time, so a process killed mid-recording leaves a readable file that lacks at
  most the record being filled (about one second). The reader
  (:class:`~emg_pipeline.sources.formats.edf.EdfReader`) derives the record
  count of such a file from its size and ignores a trailing partial record.

Format
------
``.bdf`` paths give BDF+C: little-endian 24-bit samples, version field
``\\xffBIOSEMI``, a ``BDF Annotations`` signal; ``.edf`` paths give EDF+C with
16-bit samples and an ``EDF Annotations`` signal; other names are refused
(:data:`VARIANTS`). Each record's annotation
area opens with its time-keeping TAL (``+<onset>``), then the annotations
queued since the previous record (``+<onset>\\x15<duration>\\x14<text>``); a
record that cannot hold them all passes the rest to the next one.

Scale
-----
The physical range is chosen from the unit unless given:

======= ====== ============================== =================
unit    format physical range                 resolution
======= ====== ============================== =================
uV      BDF    -500000 .. 500000 uV (±0.5 V)  0.0596 uV
uV      EDF    -32767 .. 32767 uV (±32.8 mV)  1 uV (exact)
counts  BDF    -8388607 .. 8388607            1 count (exact)
counts  EDF    -32767 .. 32767                1 count (exact)
======= ====== ============================== =================

``digital = round((physical - phys_min) / gain) + dig_min`` with
``gain = (phys_max - phys_min) / (dig_max - dig_min)``. The digital range is
symmetric (``±(2^23 - 1)``, ``±(2^15 - 1)``), so 0 is written exactly. Samples beyond the
range are clipped to it and counted per channel (:attr:`RecordingWriter.clipped`);
missing samples (NaN) are written as 0 and counted (:attr:`RecordingWriter.missing`).
Counts are assumed to be whole ADC values: fractional counts are rounded (pass a
``physical_range`` for a finer step).
Reading back gives every sample within half a step of what was written. The
last, partial record is padded with 0 on close (:attr:`RecordingWriter.padded_samples`),
and an annotation ``"recording ends"`` marks where the samples end (this package's
reader stops there);
annotations still queued at close go into the free room of the last records.

Examples
--------
>>> import tempfile, pathlib
>>> import numpy as np
>>> from emg_pipeline.sources.formats import read_recording
>>> path = pathlib.Path(tempfile.mkdtemp()) / "session.bdf"
>>> x = np.random.default_rng(0).normal(0.0, 50.0, (2000, 2))
>>> with RecordingWriter(path, 1000.0, ("calf", "thigh")) as rec:
...     rec.write(x)
...     rec.annotate(0.5, 0.25, "twitch (phasic) calf")
>>> data, info = read_recording(path)
>>> info.metadata["variant"], info.channels, data.shape
('BDF+C', ('calf', 'thigh'), (2000, 2))
>>> bool(np.abs(data - x).max() <= rec.resolution / 2)
True
>>> info.annotations["text"].tolist()
['twitch (phasic) calf']
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from emg_pipeline.chunk import ChunkFlags, as_samples
from emg_pipeline.errors import ConfigError, OutputError
from emg_pipeline.events import LiveEvent

from .._closing import Closing
from ..sources.formats.edf import END_TEXT
from ._output import atomic_write, probe_output, sync

if TYPE_CHECKING:
    from ..pipeline import ChunkResult
    from ..run import RunSummary, StreamInfo

__all__ = [
    "VARIANTS",
    "RecordingSink",
    "RecordingWriter",
    "default_physical_range",
    "format_tal_number",
    "probe_recording",
    "recording_variant",
]

#: file name endings of a recording, and the format each is written in
VARIANTS: dict[str, str] = {".bdf": "BDF+C", ".edf": "EDF+C"}

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
#: symmetric digital ranges (one code short of the full one) so that 0 is a digital value
_DIGITAL = {3: (-(1 << 23) + 1, (1 << 23) - 1), 2: (-(1 << 15) + 1, (1 << 15) - 1)}
#: offset of the "number of data records" field in the fixed header
_N_RECORDS_OFFSET = 236
#: how many of the last records written may receive annotations queued at close
_REWRITABLE_RECORDS = 64


def default_physical_range(unit: str, bdf: bool) -> tuple[float, float]:
    """Physical minimum and maximum for ``unit`` (``'uV'`` or ``'counts'``).

    Examples
    --------
    >>> default_physical_range("uV", bdf=True)
    (-500000.0, 500000.0)
    >>> default_physical_range("counts", bdf=False)
    (-32767.0, 32767.0)
    """
    if unit == "uV":
        return (-500000.0, 500000.0) if bdf else (-32767.0, 32767.0)
    if unit == "counts":
        lo, hi = _DIGITAL[3 if bdf else 2]
        return float(lo), float(hi)
    raise ConfigError("unit", unit, "'uV' or 'counts'")


def format_tal_number(value: float) -> str:
    """A number as EDF+ writes it in TALs and headers: no exponent, no trailing zeros.

    Examples
    --------
    >>> format_tal_number(3.0), format_tal_number(0.25), format_tal_number(12.3456789)
    ('3', '0.25', '12.345679')
    """
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _field(text: str, width: int, what: str) -> bytes:
    raw = text.encode("ascii", "replace")
    if len(raw) > width:
        raise ConfigError(what, text, f"at most {width} ASCII characters")
    return raw.ljust(width, b" ")


def _number_field(value: float, what: str) -> bytes:
    text = format_tal_number(value) if value != int(value) else str(int(value))
    return _field(text, 8, what)


def _clean_text(text: str) -> str:
    # TAL separators and NUL would corrupt the annotation area; EDF+ wants printable text
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def recording_variant(path: str | Path) -> str:
    """The format a recording at ``path`` is written in, told by its name's end.

    Raises
    ------
    ConfigError
        If the name ends in neither ``.bdf`` nor ``.edf``.

    Examples
    --------
    >>> recording_variant("night.BDF"), recording_variant("night.edf")
    ('BDF+C', 'EDF+C')
    """
    variant = VARIANTS.get(Path(path).suffix.lower())
    if variant is None:
        raise ConfigError("path", str(path), "a file name ending in .bdf (BDF+) or .edf (EDF+)")
    return variant


def probe_recording(path: str | Path, option: str = "--record") -> Path:
    """Check, before a stream starts, that a recording can be written at ``path``; return it.

    Raises
    ------
    OutputError
        Naming ``option``: the name ends in neither ``.bdf`` nor ``.edf``, or
        the file cannot be written (see :func:`~emg_pipeline.sinks._output.probe_output`).
    """
    if Path(path).suffix.lower() not in VARIANTS:
        raise OutputError(option, path, "a recording's name must end in .bdf (BDF+) or "
                          ".edf (EDF+)")
    return probe_output(path, option)


class RecordingWriter(Closing):
    """Write a stream incrementally to a BDF+ or EDF+ file, durably.

    Parameters
    ----------
    path : str or Path
        The file to create (replaced if it exists). ``.bdf`` gives BDF+,
        ``.edf`` EDF+; any other name raises :class:`ConfigError`.
    fs : float
        Sampling rate in Hz; ``fs * record_s`` must be (close to) a whole
        number of samples.
    channels : sequence of str
        Channel names (at most 16 characters each).
    unit : {"uV", "counts"}
        Unit of the samples written.
    record_s : float
        Data record duration in seconds: the most a killed process can lose.
    fsync_s : float
        Longest wall-clock time between two ``fsync`` of the file.
    physical_range : (float, float), optional
        Physical minimum and maximum (default: from the unit, see the module
        docstring).
    start_time : datetime, optional
        Wall-clock time of the first sample (default: now).
    recording : str
        Free text for the header's recording field (e.g. what was replayed).
    annotation_bytes : int
        Size of each record's annotation area.
    clock : callable
        Monotonic clock in seconds, for the ``fsync`` interval.

    Attributes
    ----------
    n_samples : int
        Samples written (or buffered) so far.
    n_records : int
        Complete data records written.
    clipped, missing : ndarray of int
        Per channel, samples clipped to the physical range and NaN samples
        written as 0.
    padded_samples : int
        Samples of padding added to complete the last record on close.
    resolution : float
        Physical size of one digital step (the round-trip tolerance is half of it).
    """

    def __init__(
        self,
        path: str | Path,
        fs: float,
        channels: Sequence[str],
        *,
        unit: str = "uV",
        record_s: float = 1.0,
        fsync_s: float = 2.0,
        physical_range: tuple[float, float] | None = None,
        start_time: datetime | None = None,
        recording: str = "",
        annotation_bytes: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.variant = recording_variant(self.path)
        self.bdf = self.variant == "BDF+C"
        try:
            self.fs = float(fs)
        except (TypeError, ValueError):
            raise ConfigError("fs", fs, "a positive sampling rate in Hz") from None
        if not math.isfinite(self.fs) or self.fs <= 0:
            raise ConfigError("fs", fs, "a positive sampling rate in Hz")
        self.channels = tuple(str(c) for c in channels)
        if not self.channels:
            raise ConfigError("channels", channels, "at least one channel")
        for name in self.channels:
            if len(name.encode("ascii", "replace")) > 16:
                raise ConfigError("channels", name, "names of at most 16 ASCII characters")
        if unit not in ("uV", "counts"):
            raise ConfigError("unit", unit, "'uV' or 'counts'")
        self.unit = unit
        if not (math.isfinite(record_s) and record_s > 0):
            raise ConfigError("record_s", record_s, "a positive number of seconds")
        per_record = round(self.fs * record_s)
        if per_record < 1 or abs(per_record / record_s - self.fs) > 1e-6 * self.fs:
            raise ConfigError(
                "record_s", record_s, f"a duration holding a whole number of samples at {fs:g} Hz"
            )
        duration_text = format_tal_number(record_s)
        if len(duration_text) > 8 or float(duration_text) != record_s:
            raise ConfigError("record_s", record_s, "a duration written exactly in 8 characters")
        self.record_s = float(record_s)
        self.per_record = per_record
        if not (math.isfinite(fsync_s) and fsync_s > 0):
            raise ConfigError("fsync_s", fsync_s, "a positive number of seconds")
        self.fsync_s = float(fsync_s)
        self.sample_bytes = 3 if self.bdf else 2
        self.dig_min, self.dig_max = _DIGITAL[self.sample_bytes]
        lo, hi = physical_range if physical_range is not None else default_physical_range(
            unit, self.bdf
        )
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError("physical_range", physical_range, "finite (minimum, maximum)")
        # the header holds 8 characters: compute with the values as written there
        self.phys_min = float(_number_field(float(lo), "physical minimum"))
        self.phys_max = float(_number_field(float(hi), "physical maximum"))
        self.resolution = (self.phys_max - self.phys_min) / (self.dig_max - self.dig_min)
        if annotation_bytes < 64:
            raise ConfigError("annotation_bytes", annotation_bytes, "at least 64 bytes")
        self.annotation_samples = -(-int(annotation_bytes) // self.sample_bytes)
        self.annotation_bytes = self.annotation_samples * self.sample_bytes
        self.start_time = start_time if start_time is not None else datetime.now()
        self._clock = clock

        n_ch = len(self.channels)
        self.record_bytes = (n_ch * per_record + self.annotation_samples) * self.sample_bytes
        self.n_samples = 0
        self.n_records = 0
        self.n_annotations = 0
        self.padded_samples = 0
        self.clipped = np.zeros(n_ch, dtype=np.int64)
        self.missing = np.zeros(n_ch, dtype=np.int64)
        self.closed = False
        self._pending = np.empty((per_record, n_ch))
        self._held = 0
        self._notes: deque[bytes] = deque()
        self._offset_s = self.start_time.microsecond / 1e6
        self._last_sync = -math.inf
        self._recent: dict[int, bytes] = {}  # annotation areas of the last records written
        header = self._header(recording)
        self._header_bytes = len(header)
        with atomic_write(self.path, binary=True) as handle:
            handle.write(header)
        self._handle: BinaryIO = open(self.path, "r+b")  # kept open while recording
        self._handle.seek(0, os.SEEK_END)
        self._last_sync = self._clock()

    # -- header --------------------------------------------------------------------------------

    def _header(self, recording: str) -> bytes:
        start = self.start_time
        n_signals = len(self.channels) + 1
        date = f"{start.day:02d}-{_MONTHS[start.month - 1]}-{start.year:04d}"
        extra = "_".join(_clean_text(recording).split())
        recording_field = f"Startdate {date} X X emg-pipeline" + (f" {extra}" if extra else "")
        fixed = b"".join(
            (
                b"\xffBIOSEMI" if self.bdf else b"0       ",
                _field("X X X X", 80, "patient"),
                _field(recording_field[:80], 80, "recording"),
                _field(f"{start.day:02d}.{start.month:02d}.{start.year % 100:02d}", 8, "date"),
                _field(f"{start.hour:02d}.{start.minute:02d}.{start.second:02d}", 8, "time"),
                _field(str(256 * (n_signals + 1)), 8, "header bytes"),
                _field(self.variant, 44, "reserved"),
                _field("-1", 8, "number of data records"),
                _field(format_tal_number(self.record_s), 8, "record duration"),
                _field(str(n_signals), 4, "number of signals"),
            )
        )
        annotation_label = "BDF Annotations" if self.bdf else "EDF Annotations"
        labels = [*self.channels, annotation_label]
        ordinary = len(self.channels)
        dimension = "uV" if self.unit == "uV" else "counts"
        columns: list[list[bytes]] = [
            [_field(name, 16, "channel name") for name in labels],
            [_field("surface EMG electrode", 80, "transducer")] * ordinary + [_field("", 80, "")],
            [_field(dimension, 8, "dimension")] * ordinary + [_field("", 8, "")],
            [_number_field(self.phys_min, "physical minimum")] * ordinary
            + [_field("-1", 8, "")],
            [_number_field(self.phys_max, "physical maximum")] * ordinary + [_field("1", 8, "")],
            [_field(str(self.dig_min), 8, "digital minimum")] * n_signals,
            [_field(str(self.dig_max), 8, "digital maximum")] * n_signals,
            [_field("", 80, "prefiltering")] * n_signals,
            [_field(str(self.per_record), 8, "samples per record")] * ordinary
            + [_field(str(self.annotation_samples), 8, "annotation samples")],
            [_field("", 32, "reserved")] * n_signals,
        ]
        return fixed + b"".join(b"".join(col) for col in columns)

    # -- writing -------------------------------------------------------------------------------

    def write(self, samples: object) -> None:
        """Append samples ``(n_samples, n_channels)``; complete records go to disk at once."""
        if self.closed:
            raise RuntimeError("the recording is closed")
        x = as_samples(samples, len(self.channels))
        n = x.shape[0]
        if n == 0:
            return
        self.n_samples += n
        pos = 0
        if self._held:
            take = min(n, self.per_record - self._held)
            self._pending[self._held : self._held + take] = x[:take]
            self._held += take
            pos = take
            if self._held == self.per_record:
                self._write_records(self._pending)
                self._held = 0
        whole = (n - pos) // self.per_record * self.per_record
        if whole:
            self._write_records(x[pos : pos + whole])
            pos += whole
        rest = n - pos
        if rest:
            self._pending[:rest] = x[pos:]
            self._held = rest

    def annotate(self, onset_s: float, duration_s: float | None, text: str) -> None:
        """Queue an annotation; it goes into the next record written.

        Parameters
        ----------
        onset_s : float
            Stream time of the start, in seconds from the first sample.
        duration_s : float or None
            Duration in seconds (None: an instant).
        text : str
            What happened (printable text; TAL separators are replaced).
        """
        if self.closed:
            raise RuntimeError("the recording is closed")
        onset = float(onset_s) + self._offset_s
        tal = ("+" if onset >= 0 else "-") + format_tal_number(abs(onset))
        if duration_s is not None and math.isfinite(duration_s) and duration_s >= 0:
            tal += "\x15" + format_tal_number(float(duration_s))
        body = _clean_text(text).encode("utf-8")
        room = self.annotation_bytes - 32 - len(tal)  # leave space for the time-keeping TAL
        raw = tal.encode("ascii") + b"\x14" + body[: max(0, room)] + b"\x14\x00"
        self._notes.append(raw)
        self.n_annotations += 1

    def add_events(self, events: Iterable[LiveEvent]) -> None:
        """Annotate the finished episodes among live events (``end`` events).

        The text is ``"<label> (<pattern>) <channel>"``, e.g. ``"spasm (tonic) calf_left"``;
        a burst rejected as not muscle is ``"not muscle (<why>) <channel>"``, e.g.
        ``"not muscle (mains hum) calf_left"``.
        """
        for event in events:
            episode, rejected = event.episode, event.rejected
            if event.kind == "end" and episode is not None:
                self.annotate(
                    episode.onset_s,
                    episode.duration_s,
                    f"{episode.label} ({episode.pattern}) {episode.channel}",
                )
            elif event.kind == "end" and rejected is not None:
                self.annotate(
                    rejected.onset_s,
                    rejected.duration_s,
                    f"not muscle ({rejected.not_muscle}) {rejected.channel}",
                )

    def flush_annotations(self) -> None:
        """Write queued annotations now, into the free room of the records already written.

        An alert annotated this way is on disk at once (flushed to the operating
        system), not only with the next record: a process killed right after an
        alert still leaves it in the file. What finds no room waits for the next
        record as usual.
        """
        if self.closed:
            raise RuntimeError("the recording is closed")
        if self._notes and self._recent:
            self._place_in_written_records()
            self._sync()

    def _annotation_area(self, record: int) -> bytes:
        onset = self._offset_s + record * self.record_s
        area = bytearray(f"+{format_tal_number(onset)}\x14\x14\x00".encode("ascii"))
        while self._notes and len(area) + len(self._notes[0]) <= self.annotation_bytes:
            area += self._notes.popleft()
        self._recent[record] = bytes(area)
        while len(self._recent) > _REWRITABLE_RECORDS:
            del self._recent[next(iter(self._recent))]
        return bytes(area.ljust(self.annotation_bytes, b"\x00"))

    def _place_in_written_records(self) -> None:
        """Put queued annotations into the free room of the last records written.

        Episodes end after their samples were written, so at close the last
        annotations usually find no record to come; rewriting the annotation
        areas of recent records avoids padding the file with an extra record.
        """
        data_bytes = len(self.channels) * self.per_record * self.sample_bytes
        for record in sorted(self._recent, reverse=True):
            area = bytearray(self._recent[record])
            placed = False
            while self._notes and len(area) + len(self._notes[0]) <= self.annotation_bytes:
                area += self._notes.popleft()
                placed = True
            if placed:
                self._recent[record] = bytes(area)
                self._handle.seek(self._header_bytes + record * self.record_bytes + data_bytes)
                self._handle.write(bytes(area))
            if not self._notes:
                break
        self._handle.seek(0, os.SEEK_END)

    def _digital(self, x: np.ndarray) -> np.ndarray:
        missing = np.isnan(x)
        if missing.any():
            self.missing += missing.sum(axis=0)
            x = np.where(missing, 0.0, x)
        digital = np.rint((x - self.phys_min) / self.resolution) + self.dig_min
        low, high = digital < self.dig_min, digital > self.dig_max
        if low.any() or high.any():
            self.clipped += low.sum(axis=0) + high.sum(axis=0)
            digital = np.clip(digital, self.dig_min, self.dig_max)
        return digital.astype(np.int32)

    def _write_records(self, x: np.ndarray) -> None:
        """Write ``x`` (a whole number of records) as data records, then flush."""
        n_rec = x.shape[0] // self.per_record
        n_ch = len(self.channels)
        digital = self._digital(x)
        # (records, channels, samples) in little-endian bytes, channel after channel
        per = digital.reshape(n_rec, self.per_record, n_ch).transpose(0, 2, 1)
        if self.bdf:
            raw = np.ascontiguousarray(per).astype("<i4").view(np.uint8).reshape(
                n_rec, n_ch, self.per_record, 4
            )[..., :3]
        else:
            raw = np.ascontiguousarray(per).astype("<i2").view(np.uint8)
        data = raw.reshape(n_rec, -1)
        records = np.empty((n_rec, self.record_bytes), dtype=np.uint8)
        records[:, : data.shape[1]] = data
        for r in range(n_rec):
            area = self._annotation_area(self.n_records + r)
            records[r, data.shape[1] :] = np.frombuffer(area, dtype=np.uint8)
        self._handle.write(records.tobytes())
        self.n_records += n_rec
        self._sync()

    def _sync(self, force: bool = False) -> None:
        self._handle.flush()
        now = self._clock()
        if force or now - self._last_sync >= self.fsync_s:
            sync(self._handle)
            self._last_sync = now

    # -- end -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Pad and write the last record, write pending annotations, fix the header; idempotent."""
        if self.closed:
            return
        if self._held:
            # the padding is no signal: say where the samples end (a reader of this
            # package drops what follows; others show the annotation)
            self.annotate(self.n_samples / self.fs, None, END_TEXT)
        self.closed = True
        try:
            if self._held:
                self.padded_samples = self.per_record - self._held
                self._pending[self._held :] = 0.0
                self._write_records(self._pending)
                self._held = 0
            self._place_in_written_records()
            while self._notes:  # rare: more annotations than the last records hold
                self._write_records(np.zeros((self.per_record, len(self.channels))))
                self.padded_samples += self.per_record
            self._handle.seek(_N_RECORDS_OFFSET)
            self._handle.write(_field(str(self.n_records), 8, "number of data records"))
            self._sync(force=True)
        finally:
            self._handle.close()

    def __repr__(self) -> str:
        return (
            f"RecordingWriter({str(self.path)!r}, {self.variant}, fs={self.fs:g}, "
            f"channels={len(self.channels)}, records={self.n_records})"
        )


class RecordingSink:
    """The durable recording of a stream, as a :class:`~emg_pipeline.run.Sink`.

    Every chunk's samples go to a :class:`RecordingWriter` (lost samples as
    gaps of 0, counted), and the stream's events become annotations: the
    onset of each contraction and each prolonged-spasm alert the moment they
    happen (:meth:`RecordingWriter.flush_annotations`: in the file even if the
    process is killed right after), each finished episode with its duration,
    label and pattern, and every reconnect, packet loss and malformed packet.
    Manual marks (:meth:`mark`, from the dashboard) are annotated the same way.
    The file is created with the stream's first samples: a stream that stops
    before them leaves a file of that name as it was.

    Parameters
    ----------
    path : str or Path
        The file (``.bdf``: BDF+, ``.edf``: EDF+); checked now.
    recording : str
        Free text for the header (what is recorded).
    option : str
        The option that named the file, for error messages.

    Raises
    ------
    OutputError
        If the name ends in neither ``.bdf`` nor ``.edf``, or the file cannot be
        written (naming ``option``).
    """

    def __init__(self, path: str | Path, *, recording: str = "", option: str = "--record") -> None:
        self.path = probe_recording(path, option)
        self.option = option
        self.recording = recording
        self.writer: RecordingWriter | None = None
        self._info: StreamInfo | None = None
        self._marks: list[tuple[float, str]] = []   # taken before the first samples

    def open(self, info: StreamInfo) -> None:
        """Take the stream's description; the file is created with the first samples."""
        self._info = info

    def _start(self) -> RecordingWriter:
        """Create the file (header first, record count -1 until closed)."""
        info = self._info
        if info is None:
            raise RuntimeError("the recording sink was not opened")
        try:
            writer = RecordingWriter(self.path, info.fs, info.channels, unit=info.unit,
                                     start_time=info.start_time, recording=self.recording)
        except OSError as exc:
            raise OutputError.from_os(self.option, self.path, exc) from None
        for time_s, text in self._marks:
            writer.annotate(time_s, None, text)
        self._marks.clear()
        self.writer = writer
        return writer

    def update(self, result: ChunkResult) -> None:
        """Write the chunk's samples and annotate its events and faults."""
        writer = self.writer
        if writer is None:
            if not result.samples.shape[0]:
                return
            writer = self._start()
        fs = writer.fs
        flags = result.flags
        if result.lost_samples:
            writer.annotate(result.first_sample / fs, result.lost_samples / fs,
                            f"lost {result.lost_samples} samples")
        if flags & ChunkFlags.RECONNECTED:
            writer.annotate((result.first_sample + result.lost_samples) / fs, None, "reconnected")
        if flags & ChunkFlags.MALFORMED:
            writer.annotate(result.first_sample / fs, None, "malformed packets skipped")
        writer.write(result.samples)
        urgent = False
        for event in result.events:
            if event.kind == "onset":
                writer.annotate(event.onset_s, None, f"onset {event.channel}")
                urgent = True
            elif event.kind == "sustained":
                writer.annotate(event.time_s, None, f"prolonged spasm alert {event.channel}")
                urgent = True
        writer.add_events(result.events)
        if urgent:
            writer.flush_annotations()

    def mark(self, time_s: float, note: str = "", channel: str | None = None) -> None:
        """Annotate a manual mark ("I felt a spasm now") at stream time ``time_s``, at once.

        The text is ``"manual mark"``, with the channel and the note when given
        (``"manual mark calf_left: cramp"``); like an alert, it is written into
        the records already on disk (a mark taken before the first samples goes
        in when the file is created).

        Parameters
        ----------
        time_s : float
            Stream time of the mark, in seconds.
        note : str
            What was felt (printable text).
        channel : str, optional
            The channel concerned.
        """
        writer = self.writer
        if self._info is None or (writer is not None and writer.closed):
            raise RuntimeError("the recording sink is not open")
        text = "manual mark" + (f" {channel}" if channel else "") + (f": {note}" if note else "")
        if writer is None:
            self._marks.append((time_s, text))
            return
        writer.annotate(time_s, None, text)
        writer.flush_annotations()

    def close(self, summary: RunSummary) -> None:
        """Finish the file (last record, pending annotations, record count), if it was started."""
        if self.writer is not None:
            self.writer.close()
