"""PhysioNet WFDB records: a ``.hea`` text header and binary ``.dat`` signal files.

Supported
---------
Single-segment records with one sample per signal per frame and no skew,
signal files in formats

====== =============================================== ================
format layout                                          invalid sample
====== =============================================== ================
16     little-endian int16                             −32768
61     big-endian int16                                −32768
80     uint8, offset 128                               −128
160    little-endian uint16, offset 32768              −32768
212    two 12-bit two's-complement samples in 3 bytes  −2048
24     little-endian int24                             −2**23
32     little-endian int32                             −2**31
====== =============================================== ================

Signals may be spread over several files (each read with its own frame
layout) and a file may start at a byte offset (``16+512``). Invalid samples
become NaN. Other formats (8, 310, 311, the FLAC formats 508-524), multi-segment
records, several samples per frame and skew raise :class:`RecordingError`.

The path given may be the ``.hea``, the ``.dat`` or the record name without
extension.

Truncated records
-----------------
Signal files shorter than the header's sample count says are read up to their
last whole sample frame, with one :class:`~emg_pipeline.errors.RecordingWarning`
saying how many frames and seconds are there; ``strict=True`` raises
:class:`RecordingError` instead. Signal files holding no whole frame are a
:class:`RecordingError`.

Units
-----
Each signal line gives ``gain(baseline)/unit`` in ADC units per physical unit
(unit mV when absent; lower-case ``mv`` is read as mV). Physical values are::

    value_uV = (adu - baseline) / gain * k_unit

with ``baseline`` defaulting to the ADC zero and ``k_unit`` = 1 for µV, 1e3 for
mV, 1e6 for V. Channels are the signals with a voltage unit and a non-zero
gain; signals of other units are listed in ``metadata['skipped_signals']``.
When no signal qualifies, every signal is returned in ADC counts (unit
``'counts'``): WFDB's default gain of 200 for a missing or zero gain is not
applied, since it would be a made-up scale.

Header comments (``#`` lines) go to ``metadata['comments']``; the base time
and date of the record line give ``start_time`` (naive, local to the recording).
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
    excerpt,
    int24_le,
    resolve_fs,
    text_of,
    uv_per_unit,
)

__all__ = ["WfdbReader", "decode_212", "parse_header"]

#: bytes per sample, or None for 212 (1.5 bytes)
_SAMPLE_BYTES: dict[int, int | None] = {16: 2, 61: 2, 80: 1, 160: 2, 212: None, 24: 3, 32: 4}
_INVALID = {16: -32768, 61: -32768, 80: -128, 160: -32768, 212: -2048, 24: -(2**23), 32: -(2**31)}
_FORMAT = re.compile(r"^([0-9]+)(?:x([0-9]+))?(?::([0-9]+))?(?:\+([0-9]+))?$")
_GAIN = re.compile(
    r"^([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)?(?:\(([-+]?[0-9]+)\))?(?:/(\S+))?$"
)
_DIGITS = re.compile(r"[0-9]+")
#: no ADC value (sample, baseline, ADC zero) reaches this magnitude
_ADC_LIMIT = 2**32


@dataclass(frozen=True)
class SignalSpec:
    """One signal line of a WFDB header.

    Parameters
    ----------
    file_name : str
        Signal file, relative to the header.
    fmt : int
        Storage format.
    byte_offset : int
        Bytes to skip at the start of the file.
    gain : float
        ADC units per physical unit (0 when absent or uncalibrated).
    baseline : int
        ADC value of physical zero.
    units : str
        Physical unit.
    adc_zero : int
        ADC value at the middle of its range.
    description : str
        Signal name.
    """

    file_name: str
    fmt: int
    byte_offset: int
    gain: float
    baseline: int
    units: str
    adc_zero: int
    description: str


@dataclass(frozen=True)
class Header:
    """A parsed WFDB header: record line, signal lines and comments."""

    record: str
    fs: float | None
    n_samples: int | None
    base_time: str | None
    base_date: str | None
    signals: tuple[SignalSpec, ...]
    comments: tuple[str, ...]


def parse_header(text: str, path: Path) -> Header:
    """Parse the text of a ``.hea`` file.

    Raises
    ------
    RecordingError
        If the record line or a signal line is malformed or unsupported.
    """
    comments = [ln.strip()[1:].strip() for ln in text.splitlines() if ln.strip().startswith("#")]
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    if not lines:
        raise RecordingError(path, "WFDB header has no record line")
    tokens = lines[0].split()
    if len(tokens) < 2 or not _DIGITS.fullmatch(tokens[1]):
        raise RecordingError(path, f"malformed WFDB record line {excerpt(lines[0])}")
    if "/" in tokens[0]:
        raise RecordingError(path, "multi-segment WFDB records are not supported")
    n_signals = int(tokens[1])
    fs = None
    if len(tokens) > 2:
        try:
            fs = float(tokens[2].split("/")[0])
        except ValueError:
            raise RecordingError(
                path, f"malformed sampling rate {excerpt(tokens[2])} in WFDB header"
            ) from None
    else:
        fs = 250.0  # the WFDB default when the record line omits the rate
    n_samples = int(tokens[3]) if len(tokens) > 3 and _DIGITS.fullmatch(tokens[3]) else None
    if len(lines) < 1 + n_signals:
        raise RecordingError(
            path, f"WFDB header announces {n_signals} signals, has {len(lines) - 1}"
        )
    signals = tuple(_signal(line, path) for line in lines[1 : 1 + n_signals])
    return Header(
        record=tokens[0],
        fs=fs,
        n_samples=n_samples,
        base_time=tokens[4] if len(tokens) > 4 else None,
        base_date=tokens[5] if len(tokens) > 5 else None,
        signals=signals,
        comments=tuple(comments),
    )


def _signal(line: str, path: Path) -> SignalSpec:
    fields = line.split(maxsplit=8)
    if len(fields) < 2:
        raise RecordingError(path, f"malformed WFDB signal line {excerpt(line)}")
    fmt_match = _FORMAT.match(fields[1])
    if not fmt_match:
        raise RecordingError(path, f"malformed WFDB format field {excerpt(fields[1])}")
    fmt = int(fmt_match[1])
    if fmt not in _SAMPLE_BYTES:
        raise RecordingError(
            path, f"WFDB format {fmt} is not supported (only {sorted(_SAMPLE_BYTES)})"
        )
    if fmt_match[2] not in (None, "1"):
        raise RecordingError(path, "WFDB signals with several samples per frame are not supported")
    if fmt_match[3] not in (None, "0"):
        raise RecordingError(path, "WFDB signals with skew are not supported")
    gain, baseline, units = 0.0, None, "mV"
    if len(fields) > 2:
        gain_match = _GAIN.match(fields[2])
        try:
            gain = float(gain_match[1]) if gain_match and gain_match[1] else 0.0
        except ValueError:  # "1.2.3" matches the pattern's digits and dots
            gain_match = None
        if not gain_match or not math.isfinite(gain):
            raise RecordingError(path, f"malformed WFDB gain field {excerpt(fields[2])}")
        baseline = int(gain_match[2]) if gain_match[2] else None
        units = gain_match[3] or "mV"
    adc_zero = int(fields[4]) if len(fields) > 4 and _is_int(fields[4]) else 0
    if max(abs(adc_zero), abs(baseline or 0)) >= _ADC_LIMIT:
        raise RecordingError(
            path, f"WFDB baseline or ADC zero beyond any ADC in signal line {excerpt(line)}"
        )
    return SignalSpec(
        file_name=fields[0],
        fmt=fmt,
        byte_offset=int(fmt_match[4] or 0),
        gain=gain,
        baseline=adc_zero if baseline is None else baseline,
        units=units,
        adc_zero=adc_zero,
        description=fields[8].strip() if len(fields) > 8 else "",
    )


def _is_int(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?\d+", text))


def decode_212(raw: np.ndarray) -> np.ndarray:
    """Decode format-212 bytes (length a multiple of 3) into int16 samples.

    Each 3 bytes hold two 12-bit two's-complement samples: the first is byte 0
    plus the low nibble of byte 1 as bits 8-11, the second is byte 2 plus the
    high nibble of byte 1.

    Examples
    --------
    >>> decode_212(np.array([0x01, 0xF0, 0xFF], dtype=np.uint8)).tolist()
    [1, -1]
    """
    triples = np.asarray(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int16)
    first = triples[:, 0] | ((triples[:, 1] & 0x0F) << 8)
    second = triples[:, 2] | ((triples[:, 1] & 0xF0) << 4)
    out = np.empty(2 * triples.shape[0], dtype=np.int16)
    out[0::2] = first
    out[1::2] = second
    return np.where(out >= 2048, out - 4096, out).astype(np.int16)


def _decode(raw: bytes, fmt: int) -> np.ndarray:
    """Decode whole samples of a byte-aligned format into int64."""
    if fmt == 16:
        return np.frombuffer(raw, dtype="<i2").astype(np.int64)
    if fmt == 61:
        return np.frombuffer(raw, dtype=">i2").astype(np.int64)
    if fmt == 80:
        return np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 128
    if fmt == 160:
        return np.frombuffer(raw, dtype="<u2").astype(np.int64) - 32768
    if fmt == 32:
        return np.frombuffer(raw, dtype="<i4").astype(np.int64)
    if fmt == 24:
        return int24_le(raw).astype(np.int64)
    raise ValueError(f"format {fmt} is not byte-aligned")


@dataclass
class _Group:
    """Signals stored together in one file, interleaved frame by frame."""

    path: Path
    fmt: int
    offset: int
    members: list[int]
    handle: BinaryIO | None = None

    def available_frames(self) -> int:
        """Whole sample frames the file holds after its byte offset."""
        size = self.path.stat().st_size - self.offset
        width = _SAMPLE_BYTES[self.fmt]
        if width is None:
            samples = (size // 3) * 2 + (1 if size % 3 == 2 else 0)
        else:
            samples = size // width
        return max(samples, 0) // len(self.members)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Return frames ``[start, stop)`` as int64 ``(n, len(members))``."""
        k = len(self.members)
        s0, s1 = start * k, stop * k
        if self.handle is None:
            raise ValueError("closed")
        width = _SAMPLE_BYTES[self.fmt]
        if width is None:
            p0, p1 = s0 // 2, -(-s1 // 2)
            self.handle.seek(self.offset + 3 * p0)
            raw = self.handle.read(3 * (p1 - p0))
            raw += b"\x00" * (-len(raw) % 3)  # an odd final sample has no partner byte
            samples = decode_212(np.frombuffer(raw, dtype=np.uint8)).astype(np.int64)
            samples = samples[s0 - 2 * p0 : s0 - 2 * p0 + (s1 - s0)]
        else:
            self.handle.seek(self.offset + width * s0)
            samples = _decode(self.handle.read(width * (s1 - s0)), self.fmt)
        return samples.reshape(stop - start, k)


class WfdbReader(RecordingReader):
    """Reader of WFDB records (format ``'wfdb'``); see the module docstring."""

    format: ClassVar[str] = "wfdb"
    extensions: ClassVar[tuple[str, ...]] = (".hea", ".dat")

    _groups: list[_Group]
    _columns: list[tuple[int, int]]  # (group index, column in group) per channel
    _gain: np.ndarray
    _baseline: np.ndarray
    _factor: np.ndarray
    _invalid: np.ndarray
    _calibrated: bool
    _n: int

    def __init__(
        self, path: str | Path, *, fs: float | None = None, strict: bool = False
    ) -> None:
        self._groups = []
        header = self.locate(Path(path))
        super().__init__(header if header is not None else path, fs=fs, strict=strict)

    @classmethod
    def locate(cls, path: Path) -> Path | None:
        """Return the ``.hea`` header for a ``.dat`` file or a bare record name."""
        if path.suffix.lower() == ".hea":
            return None
        candidates = [path.with_suffix(".hea")] if path.suffix.lower() == ".dat" else []
        candidates.append(path.with_name(path.name + ".hea"))
        return next((c for c in candidates if _is_file(c)), None)

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """Tell whether ``head`` is a WFDB header, or ``path`` a ``.dat`` beside its header."""
        if path.suffix.lower() == ".dat":
            return _is_file(path.with_suffix(".hea"))
        text = text_of(head)
        if text is None:
            return False
        lines = [
            ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
        ]
        if len(lines) < 2 or len(lines[0]) < 2 or not _DIGITS.fullmatch(lines[0][1]):
            return False
        if path.suffix.lower() != ".hea" and lines[0][0] != path.stem:
            return False
        n_signals = int(lines[0][1])
        return len(lines) > n_signals and all(
            len(ln) >= 2 and _FORMAT.match(ln[1]) for ln in lines[1 : 1 + n_signals]
        )

    def _inspect(self, fs: float | None) -> RecordingInfo:
        path = self.path
        raw = path.read_bytes()
        text = text_of(raw)
        if text is None:
            raise RecordingError(path, "binary content: not a WFDB header")
        header = parse_header(text, path)
        if not header.signals:
            raise RecordingError(path, "WFDB record without signals")
        rate = resolve_fs(path, header.fs, fs, "the WFDB header")
        selected = [
            k
            for k, s in enumerate(header.signals)
            if s.gain != 0 and uv_per_unit(s.units) is not None
        ]
        self._calibrated = bool(selected)
        if not selected:
            selected = list(range(len(header.signals)))
        # group signals by file, in order of first appearance
        files: dict[str, _Group] = {}
        position: dict[int, tuple[str, int]] = {}
        for k, sig in enumerate(header.signals):
            group = files.get(sig.file_name)
            if group is None:
                group = _Group(path.parent / sig.file_name, sig.fmt, sig.byte_offset, [])
                files[sig.file_name] = group
            elif group.fmt != sig.fmt:
                raise RecordingError(path, f"{sig.file_name}: signals of one file differ in format")
            position[k] = (sig.file_name, len(group.members))
            group.members.append(k)
        needed = [name for name in files if any(position[k][0] == name for k in selected)]
        self._groups = [files[name] for name in needed]
        index = {name: i for i, name in enumerate(needed)}
        self._columns = [(index[position[k][0]], position[k][1]) for k in selected]
        frames = []
        for group in self._groups:
            if not _is_file(group.path):
                raise RecordingError(path, f"signal file {excerpt(group.path.name)} not found")
            frames.append(group.available_frames())
        available = min(frames)
        self._n = available
        if header.n_samples is not None:
            self._n = min(header.n_samples, available)
            if header.n_samples > available:
                self._truncated(header.n_samples, available, rate)
        specs = [header.signals[k] for k in selected]
        if self._calibrated:
            for k, s in zip(selected, specs, strict=True):
                # the largest value this signal can give must be a number
                largest = (_ADC_LIMIT + abs(s.baseline)) / abs(s.gain) * (uv_per_unit(s.units) or 1)
                if not math.isfinite(largest):
                    raise RecordingError(
                        path, f"WFDB gain {s.gain:g} of signal {excerpt(s.description or k)} "
                        "gives no finite scale"
                    )
        self._gain = np.array([s.gain for s in specs])
        self._baseline = np.array([s.baseline for s in specs], dtype=np.float64)
        self._factor = np.array([uv_per_unit(s.units) or 1.0 for s in specs])
        self._invalid = np.array([_INVALID[s.fmt] for s in specs], dtype=np.int64)
        for group in self._groups:
            try:
                group.handle = open(group.path, "rb")
            except OSError as error:
                self.close()
                reason = (error.strerror or type(error).__name__).lower()
                raise RecordingError(
                    path, f"cannot open signal file {excerpt(group.path.name)}: {reason}"
                ) from None
        channel_names = [s.description or f"sig{k}" for k, s in zip(selected, specs, strict=True)]
        return RecordingInfo(
            path=path,
            format=self.format,
            fs=rate,
            channels=tuple(channel_names),
            unit="uV" if self._calibrated else "counts",
            n_samples=self._n,
            start_time=_start_time(header.base_time, header.base_date),
            metadata={
                "record": header.record,
                "comments": header.comments,
                "signal_formats": tuple(s.fmt for s in specs),
                "gain_adu_per_unit": tuple(s.gain for s in specs),
                "baseline_adu": tuple(s.baseline for s in specs),
                "units": tuple(s.units for s in specs),
                "scale": "uV = (adu - baseline) / gain * k_unit" if self._calibrated else None,
                "base_time": header.base_time,
                "base_date": header.base_date,
                "skipped_signals": tuple(
                    s.description or f"sig{k}"
                    for k, s in enumerate(header.signals)
                    if k not in selected
                ),
            },
        )

    def _truncated(self, stated: int, available: int, rate: float) -> None:
        """Report signal files shorter than the header says (see the module docstring)."""
        loss = f"truncated: header says {stated} samples, signal files hold"
        if available == 0:
            raise RecordingError(self.path, f"{loss} no whole sample frame")
        self._salvage(
            f"{loss} {available} whole sample frame{'' if available == 1 else 's'}",
            f"reading the {available / rate:g} s that are there",
        )

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        if any(g.handle is None for g in self._groups):
            raise RecordingError(self.path, "reader is closed")
        for start in range(0, self._n, size_hint):
            stop = min(self._n, start + size_hint)
            parts = [g.read(start, stop) for g in self._groups]
            adu = np.column_stack([parts[g][:, c] for g, c in self._columns])
            invalid = adu == self._invalid
            if self._calibrated:
                out = (adu - self._baseline) / self._gain * self._factor
            else:
                out = adu.astype(np.float64)
            if invalid.any():
                out[invalid] = np.nan
            yield out

    def close(self) -> None:
        """Close the signal files."""
        for group in self._groups:
            if group.handle is not None:
                group.handle.close()
                group.handle = None


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False as well for a name the system refuses (too long...)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _start_time(base_time: str | None, base_date: str | None) -> datetime | None:
    if base_time is None or base_date is None:
        return None
    t = re.fullmatch(r"(\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?", base_time)
    d = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", base_date)
    if not t or not d:
        return None
    try:
        day = datetime(int(d[3]), int(d[2]), int(d[1]))
    except ValueError:
        return None
    return day + timedelta(hours=int(t[1]), minutes=int(t[2]), seconds=float(t[3] or 0))
