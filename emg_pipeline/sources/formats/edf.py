"""European Data Format: EDF, EDF+ (C and D), BDF and BDF+.

Layout
------
A 256-byte fixed header, 256 bytes per signal, then data records. Each record
holds, signal after signal, that signal's samples for ``record duration``
seconds: little-endian int16 in EDF, int24 in BDF (version field ``\\xffBIOSEMI``).
EDF+/BDF+ add an ``EDF Annotations`` / ``BDF Annotations`` signal holding
time-stamped annotation lists (TALs).

Channels
--------
The ordinary (non-annotation) signals with a voltage physical dimension that
share the highest sampling rate; when no signal is in volts, every ordinary
signal at the highest rate. Signals left out (other rates, other dimensions,
e.g. a BioSemi ``Status`` channel or an accelerometer) are named in
``metadata['skipped_signals']``.

Units
-----
Digital values become physical with the header's ranges::

    physical = phys_min + (digital - dig_min) * (phys_max - phys_min) / (dig_max - dig_min)

then µV = physical · k, with k = 1 for ``uV``/``µV``, 1e3 for ``mV``, 1e6 for
``V`` (the physical dimension field). Without any voltage signal the physical
values are returned with unit ``'counts'`` and their dimensions in
``metadata['physical_dimensions']``.

Annotations and time
--------------------
Every TAL text becomes an annotation row (``onset_s`` relative to the first
sample, ``duration_s`` NaN when not given). The time-keeping TAL of each record
gives ``metadata['record_onsets_s']``; in EDF+D files records may have gaps,
flagged by ``metadata['discontinuous']`` (samples are returned back to back).
``start_time`` is the header's start date and time (naive: EDF has no time
zone), plus the sub-second offset of the first record in EDF+.

Truncated files
---------------
A file holding fewer whole data records than its header says (a copy cut
short, a disk that filled up) is read up to its last whole record, with one
:class:`~emg_pipeline.errors.RecordingWarning` saying how many records and
seconds are there; ``strict=True`` raises :class:`RecordingError` instead. A
header count of ``-1`` (a recording still being written, or whose writer was
killed) is replaced by the number of whole records in the file; a trailing
partial record of such a file is reported the same way. A file cut inside its
header, or before its first whole record, is a :class:`RecordingError`.

Records are read from disk as the chunks are requested: memory use is bounded
by the chunk size, however long the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, ClassVar

import numpy as np

from emg_pipeline.errors import RecordingError

from ._base import (
    RecordingInfo,
    RecordingReader,
    empty_annotations,
    int24_le,
    make_annotations,
    resolve_fs,
    uv_per_unit,
)

__all__ = ["EdfReader", "parse_tals"]

EDF_VERSION = b"0       "
BDF_VERSION = b"\xffBIOSEMI"
_ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
#: field widths of the per-signal header, in order
_SIGNAL_FIELDS = (
    ("label", 16),
    ("transducer", 80),
    ("dimension", 8),
    ("phys_min", 8),
    ("phys_max", 8),
    ("dig_min", 8),
    ("dig_max", 8),
    ("prefilter", 80),
    ("n_per_record", 8),
    ("reserved", 32),
)


@dataclass(frozen=True)
class EdfSignal:
    """One signal of the header."""

    label: str
    transducer: str
    dimension: str
    phys_min: float
    phys_max: float
    dig_min: int
    dig_max: int
    prefilter: str
    n_per_record: int

    @property
    def is_annotation(self) -> bool:
        """True for the EDF+/BDF+ annotation signal."""
        return self.label in _ANNOTATION_LABELS


#: The annotation with which a recording whose last data record was padded says where
#: its samples end (:class:`~emg_pipeline.sinks.recording.RecordingWriter` writes it); the
#: reader drops the padding after it.
END_TEXT = "recording ends"


def parse_tals(area: bytes) -> list[tuple[float, float, str]]:
    """Parse the time-stamped annotation lists of one record's annotation bytes.

    Returns ``(onset_s, duration_s, text)`` triples; a TAL without text (the
    record's time-keeping TAL) gives one triple with text ``""``; a missing
    duration is NaN.

    Examples
    --------
    >>> parse_tals(b"+0\\x14\\x14\\x00+1.5\\x152\\x14clench\\x14\\x00\\x00")
    [(0.0, nan, ''), (1.5, 2.0, 'clench')]
    """
    out: list[tuple[float, float, str]] = []
    for tal in area.split(b"\x00"):
        if not tal:
            continue
        parts = tal.split(b"\x14")
        timing = parts[0].split(b"\x15")
        try:
            onset = float(timing[0])
            duration = float(timing[1]) if len(timing) > 1 and timing[1] else float("nan")
        except ValueError:
            continue  # a damaged TAL is skipped rather than failing the whole file
        if not math.isfinite(onset):
            continue
        texts = [p.decode("utf-8", "replace") for p in parts[1:] if p]
        if not texts:
            out.append((onset, duration, ""))
        out.extend((onset, duration, t) for t in texts)
    return out


class EdfReader(RecordingReader):
    """Reader of EDF/EDF+/BDF/BDF+ files (format ``'edf'``); see the module docstring."""

    format: ClassVar[str] = "edf"
    extensions: ClassVar[tuple[str, ...]] = (".edf", ".bdf", ".rec")

    _handle: BinaryIO | None = None
    _header_bytes: int
    _record_bytes: int
    _n_records: int
    _sample_bytes: int
    _offsets: tuple[int, ...]  # byte offset of each channel inside a record
    _per_record: int
    _duration: float
    _gain: np.ndarray
    _shift: np.ndarray

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """Tell whether ``head`` is an EDF or BDF header."""
        if len(head) < 256:
            return False
        if head[:8] == BDF_VERSION:
            return True
        if head[:8] != EDF_VERSION:
            return False
        try:
            n_signals = int(head[252:256].decode("ascii").strip())
            header_bytes = int(head[184:192].decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return False
        return header_bytes == 256 * (n_signals + 1)

    def _inspect(self, fs: float | None) -> RecordingInfo:
        path = self.path
        self._handle = open(path, "rb")
        try:
            return self._parse(fs)
        except BaseException:
            self.close()
            raise

    def _parse(self, fs: float | None) -> RecordingInfo:
        path = self.path
        handle = self._handle
        if handle is None:
            raise RecordingError(path, "reader is closed")
        fixed = handle.read(256)
        if len(fixed) == 0:
            raise RecordingError(path, "file is empty")
        if len(fixed) < 256 or fixed[:8] not in (EDF_VERSION, BDF_VERSION):
            raise RecordingError(path, "not an EDF/BDF file: bad 256-byte header")
        bdf = fixed[:8] == BDF_VERSION
        text = fixed.decode("latin-1")
        reserved = text[192:236].strip()
        n_signals = _int(text[252:256], "number of signals", path)
        header_bytes = _int(text[184:192], "header size", path)
        n_records = _int(text[236:244], "number of data records", path)
        duration = _float(text[244:252], "data record duration", path)
        if n_signals <= 0 or header_bytes != 256 * (n_signals + 1):
            raise RecordingError(
                path, f"EDF header size {header_bytes} does not fit {n_signals} signals"
            )
        if n_records < -1:
            raise RecordingError(
                path, f"malformed EDF header: number of data records is {n_records}"
            )
        block = handle.read(256 * n_signals)
        if len(block) < 256 * n_signals:
            raise RecordingError(path, "truncated: EDF signal headers are incomplete")
        signals = _signals(block.decode("latin-1"), n_signals, path)
        ordinary = [k for k, s in enumerate(signals) if not s.is_annotation and s.n_per_record > 0]
        if not ordinary:
            raise RecordingError(path, "EDF file has no ordinary signal (annotations only)")
        if duration <= 0:
            raise RecordingError(
                path, f"EDF data record duration is {duration:g} s; no sampling rate"
            )
        self._sample_bytes = 3 if bdf else 2
        offsets = np.concatenate(([0], np.cumsum([s.n_per_record for s in signals])))
        self._record_bytes = int(offsets[-1]) * self._sample_bytes
        self._header_bytes = header_bytes
        self._duration = duration
        self._n_records = self._records_in_file(n_records)
        n_records = self._n_records
        volt = [k for k in ordinary if uv_per_unit(signals[k].dimension) is not None]
        pool = volt or ordinary
        top = max(signals[k].n_per_record for k in pool)
        selected = [k for k in pool if signals[k].n_per_record == top]
        for k in selected:
            if signals[k].dig_max == signals[k].dig_min:
                raise RecordingError(
                    path, f"signal {signals[k].label!r}: digital minimum equals maximum"
                )
        rate = resolve_fs(path, top / duration, fs, "the EDF header")
        self._per_record = top
        self._offsets = tuple(int(offsets[k]) * self._sample_bytes for k in selected)
        gains, shifts = [], []
        for k in selected:
            s = signals[k]
            g = (s.phys_max - s.phys_min) / (s.dig_max - s.dig_min)
            factor = (uv_per_unit(s.dimension) or 1.0) if volt else 1.0
            shift = (s.phys_min - g * s.dig_min) * factor
            if not (math.isfinite(g * factor) and math.isfinite(shift)):
                raise RecordingError(
                    path, f"signal {s.label!r}: physical range {s.phys_min:g}..{s.phys_max:g} "
                    f"over digital range {s.dig_min}..{s.dig_max} gives no finite scale"
                )
            gains.append(g * factor)
            shifts.append(shift)
        self._gain = np.array(gains)
        self._shift = np.array(shifts)
        annotation_signals = [k for k, s in enumerate(signals) if s.is_annotation]
        tals = self._read_tals([int(offsets[k]) for k in annotation_signals], signals)
        first_onset = tals[0][0] if tals else 0.0
        record_onsets = [onset for onset, _ in tals]
        rows = [row for _, texts in tals for row in texts]
        annotations = (
            make_annotations(
                [r[0] - first_onset for r in rows], [r[1] for r in rows], [r[2] for r in rows]
            )
            if rows
            else empty_annotations()
        )
        start = _start_time(text[168:176], text[176:184], text[88:168])
        if start is not None and first_onset:
            try:
                start += timedelta(seconds=first_onset)
            except OverflowError:
                raise RecordingError(
                    path, f"EDF+ first data record starts {first_onset:g} s after the header's "
                    "start time: out of range"
                ) from None
        variant = ("BDF" if bdf else "EDF") + (
            "+D" if reserved.endswith("+D") else "+C" if reserved.endswith("+C") else ""
        )
        self._n_samples = n_records * top
        ends = [r[0] - first_onset for r in rows if r[2] == END_TEXT]
        if ends and not variant.endswith("+D"):
            # the writer padded its last record: the samples end where it says (only
            # ever inside the last record)
            end = round(ends[-1] * rate)
            if (n_records - 1) * top <= end < self._n_samples:
                self._n_samples = end
        return RecordingInfo(
            path=path,
            format=self.format,
            fs=rate,
            channels=tuple(signals[k].label for k in selected),
            unit="uV" if volt else "counts",
            n_samples=self._n_samples,
            start_time=start,
            annotations=annotations,
            metadata={
                "variant": variant,
                "patient": text[8:88].strip(),
                "recording": text[88:168].strip(),
                "record_duration_s": duration,
                "n_records": n_records,
                "physical_dimensions": tuple(signals[k].dimension for k in selected),
                "transducers": tuple(signals[k].transducer for k in selected),
                "prefilters": tuple(signals[k].prefilter for k in selected),
                "scale": "physical = phys_min + (digital - dig_min) * (phys_max - phys_min)"
                " / (dig_max - dig_min); uV = physical * k_unit",
                "skipped_signals": tuple(signals[k].label for k in ordinary if k not in selected),
                "discontinuous": variant.endswith("+D"),
                "record_onsets_s": tuple(o - first_onset for o in record_onsets),
            },
        )

    def _records_in_file(self, stated: int) -> int:
        """The number of data records to read: the header's, or the whole ones a cut file holds.

        A header count of -1 (a recording that was not finished) is replaced by
        the number of whole records in the file. A file holding fewer whole
        records than its header says is read up to its last whole record, with
        one warning (an error in strict mode); so is a trailing partial record
        of an unfinished recording.
        """
        path = self.path
        data_bytes = max(path.stat().st_size - self._header_bytes, 0)
        whole, extra = divmod(data_bytes, self._record_bytes)
        ones = "one" if whole == 1 else "ones"
        kept = f"reading the {whole * self._duration:g} s that are there"
        if stated == -1:
            # -1: the writer did not finish; count the complete records
            if extra:
                loss = (
                    f"unfinished recording (data record count -1) ends in a partial data record "
                    f"({extra} of {self._record_bytes} bytes)"
                )
                if whole == 0:
                    raise RecordingError(path, f"{loss} and holds no whole one")
                self._salvage(f"{loss} after {whole} whole {ones}", kept)
            return whole
        if whole >= stated:
            return stated
        if whole == 0:
            raise RecordingError(
                path, f"truncated: header says {stated} data records, file holds no whole one"
            )
        self._salvage(f"truncated: header says {stated} data records, file holds {whole} whole "
                      f"{ones}", kept)
        return whole

    def _read_tals(
        self, starts: list[int], signals: list[EdfSignal]
    ) -> list[tuple[float, list[tuple[float, float, str]]]]:
        """Return, per record, its onset and its annotation rows (EDF+ only)."""
        if not starts or self._n_records == 0:
            return []
        widths = [s.n_per_record * self._sample_bytes for s in signals if s.is_annotation]
        handle = self._handle
        if handle is None:
            raise RecordingError(self.path, "reader is closed")
        # Only the annotation areas are read, record by record: mapping or reading the
        # whole file would make the memory of opening a day-long recording its size.
        out = []
        for r in range(self._n_records):
            onset = None
            rows: list[tuple[float, float, str]] = []
            base = self._header_bytes + r * self._record_bytes
            for a, w in zip(starts, widths, strict=True):
                handle.seek(base + a * self._sample_bytes)
                area = handle.read(w)
                for t_onset, t_duration, t_text in parse_tals(area):
                    if onset is None and t_text == "":
                        onset = t_onset  # the time-keeping TAL opens the first annotation signal
                    elif t_text:
                        rows.append((t_onset, t_duration, t_text))
            out.append((onset if onset is not None else r * self._duration, rows))
        return out

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        if self._handle is None:
            raise RecordingError(self.path, "reader is closed")
        per_block = max(1, size_hint // self._per_record)
        width = self._per_record * self._sample_bytes
        for first in range(0, self._n_records, per_block):
            count = min(per_block, self._n_records - first)
            self._handle.seek(self._header_bytes + first * self._record_bytes)
            raw = self._handle.read(count * self._record_bytes)
            if len(raw) < count * self._record_bytes:
                raise RecordingError(self.path, "truncated: a data record is incomplete")
            records = np.frombuffer(raw, dtype=np.uint8).reshape(count, self._record_bytes)
            out = np.empty((count * self._per_record, len(self._offsets)))
            for j, start in enumerate(self._offsets):
                part = np.ascontiguousarray(records[:, start : start + width]).tobytes()
                digital = int24_le(part) if self._sample_bytes == 3 else np.frombuffer(part, "<i2")
                out[:, j] = digital * self._gain[j] + self._shift[j]
            kept = out[: max(0, self._n_samples - first * self._per_record)]
            if kept.shape[0]:
                yield kept

    def close(self) -> None:
        """Close the file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _int(field: str, what: str, path: Path) -> int:
    try:
        return int(field.strip())
    except ValueError:
        raise RecordingError(path, f"malformed EDF header: {what} is {field.strip()!r}") from None


def _float(field: str, what: str, path: Path) -> float:
    try:
        value = float(field.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RecordingError(path, f"malformed EDF header: {what} is {field.strip()!r}")
    return value


def _signals(block: str, n: int, path: Path) -> list[EdfSignal]:
    columns: dict[str, list[str]] = {}
    pos = 0
    for name, width in _SIGNAL_FIELDS:
        columns[name] = [block[pos + k * width : pos + (k + 1) * width].strip() for k in range(n)]
        pos += n * width
    out = []
    for k in range(n):
        label = columns["label"][k]
        where = f"signal {k + 1} ({label!r})"
        n_per_record = _int(columns["n_per_record"][k], f"{where} samples per record", path)
        if n_per_record < 0:
            raise RecordingError(
                path, f"malformed EDF header: {where} samples per record is {n_per_record}"
            )
        out.append(
            EdfSignal(
                label=label,
                transducer=columns["transducer"][k],
                dimension=columns["dimension"][k],
                phys_min=_float(columns["phys_min"][k], f"{where} physical minimum", path),
                phys_max=_float(columns["phys_max"][k], f"{where} physical maximum", path),
                dig_min=_int(columns["dig_min"][k], f"{where} digital minimum", path),
                dig_max=_int(columns["dig_max"][k], f"{where} digital maximum", path),
                prefilter=columns["prefilter"][k],
                n_per_record=n_per_record,
            )
        )
    return out


def _start_time(date: str, clock: str, recording: str) -> datetime | None:
    d = re.fullmatch(r"(\d\d)\.(\d\d)\.(\d\d)", date.strip())
    t = re.fullmatch(r"(\d\d)\.(\d\d)\.(\d\d)", clock.strip())
    if not d or not t:
        return None
    year = int(d[3])
    year += 1900 if year >= 85 else 2000  # the EDF clipping date convention
    # EDF+ writes the full year in the recording field: "Startdate 02-AUG-2051 ..."
    full = re.match(r"Startdate (\d\d)-([A-Z]{3})-(\d{4})", recording.strip())
    if full and full[2] in _MONTHS:
        year = int(full[3])
    try:
        return datetime(year, int(d[2]), int(d[1]), int(t[1]), int(t[2]), int(t[3]))
    except ValueError:
        return None
