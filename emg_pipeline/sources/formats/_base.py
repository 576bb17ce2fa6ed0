"""Shared machinery of the recording readers.

Every reader is a :class:`RecordingReader` subclass that knows one file format:
it recognises the format from the first bytes of a file (:meth:`sniff`),
describes the recording once at opening (:attr:`info`) and streams the samples
as float64 blocks of shape ``(n_samples, n_channels)``. The subclass only
produces blocks of whatever size suits the format (:meth:`_blocks`); the base
class cuts them into chunks of the size the caller asked for.
"""

from __future__ import annotations

import gzip
import math
import re
import sys
import warnings
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from emg_pipeline.errors import ConfigError, RecordingError, RecordingWarning, SampleRateError

from ..._closing import Closing

__all__ = [
    "HEAD_BYTES",
    "MIN_BLOCK_SAMPLES",
    "RATE_TOLERANCE",
    "ReadOnlyMapping",
    "RecordingInfo",
    "RecordingReader",
    "check_fs",
    "empty_annotations",
    "excerpt",
    "int24_le",
    "is_gzip",
    "make_annotations",
    "parse_date_time",
    "read_head",
    "resolve_fs",
    "text_of",
    "to_uv",
    "uv_per_unit",
]

#: how many bytes of a file the sniffers look at
HEAD_BYTES = 65536

#: smallest block asked of a format: tiny chunks are cut from larger reads, since
#: parsing a handful of rows at a time costs far more than the rows themselves
MIN_BLOCK_SAMPLES = 4096

#: relative disagreement allowed between a rate given by the caller and the file's
RATE_TOLERANCE = 0.01

_GZIP_MAGIC = b"\x1f\x8b"

_ANNOTATION_COLUMNS = ("onset_s", "duration_s", "text")


def empty_annotations() -> pd.DataFrame:
    """Return an empty annotation table with the standard columns."""
    return make_annotations([], [], [])


def make_annotations(
    onsets_s: Iterable[float], durations_s: Iterable[float], texts: Iterable[str]
) -> pd.DataFrame:
    """Build an annotation table with columns ``onset_s``, ``duration_s``, ``text``.

    Examples
    --------
    >>> make_annotations([1.0], [0.5], ["label 2"]).to_dict("records")
    [{'onset_s': 1.0, 'duration_s': 0.5, 'text': 'label 2'}]
    """
    return pd.DataFrame(
        {
            "onset_s": np.asarray(list(onsets_s), dtype=np.float64),
            "duration_s": np.asarray(list(durations_s), dtype=np.float64),
            "text": pd.Series(list(texts), dtype=object),
        },
        columns=list(_ANNOTATION_COLUMNS),
    )


class ReadOnlyMapping(Mapping[str, object]):
    """A read-only, picklable copy of a mapping.

    Examples
    --------
    >>> m = ReadOnlyMapping({"device": "bitalino"})
    >>> m["device"], len(m)
    ('bitalino', 1)
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, object]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> object:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


@dataclass(frozen=True, eq=False)
class RecordingInfo:
    """Description of a recording, known as soon as the file is opened.

    Equality is identity (the annotation table is a DataFrame, which has no
    single truth value); compare fields instead.

    Parameters
    ----------
    path : Path
        The file read (for WFDB, the ``.hea`` header).
    format : str
        One of :data:`emg_pipeline.sources.formats.FORMATS`.
    fs : float
        Sampling rate in Hz.
    channels : tuple of str
        Channel names, in column order.
    unit : str
        ``'uV'`` when the values are calibrated to microvolts, else ``'counts'``.
    n_samples : int or None
        Number of samples, or None when it cannot be known without reading the
        whole file (text formats).
    start_time : datetime or None
        Wall-clock time of the first sample if the file states it;
        timezone-aware only when the file says which zone (e.g. Unix time).
    annotations : DataFrame
        Columns ``onset_s``, ``duration_s``, ``text``; empty when there are none.
    metadata : Mapping
        Read-only format-specific details (device, scale used, labels...).
    """

    path: Path
    format: str
    fs: float
    channels: tuple[str, ...]
    unit: str
    n_samples: int | None = None
    start_time: datetime | None = None
    annotations: pd.DataFrame = field(default_factory=empty_annotations)
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A read-only copy, so that a shared info cannot be altered by a caller.
        object.__setattr__(self, "metadata", ReadOnlyMapping(self.metadata))

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @property
    def duration_s(self) -> float | None:
        """Duration in seconds, or None when the sample count is unknown."""
        return None if self.n_samples is None else self.n_samples / self.fs


class RecordingReader(Closing):
    """Base class of the readers: one subclass per file format.

    A reader is opened on construction, describes the recording in
    :attr:`info`, streams it with :meth:`iter_chunks` (bounded memory) or
    returns it whole with :meth:`read`, and is a context manager that releases
    its file handles on exit.

    Parameters
    ----------
    path : str or Path
        The recording.
    fs : float, optional
        Sampling rate in Hz. Required by formats that do not state it; for the
        others it must agree with the file within 1 %, and then it is used.
    strict : bool
        What to do with a damaged file of which a part can be read (e.g. a
        truncated EDF/BDF or WFDB record): False (the default) reads that part
        and warns once with a :class:`~emg_pipeline.errors.RecordingWarning`
        saying what was lost (its text is kept in
        ``info.metadata['partial_read']``); True raises :class:`RecordingError`
        instead. Formats with nothing to salvage ignore it.

    Raises
    ------
    RecordingError
        If the file is missing or cannot be read as this format (or, with
        ``strict=True``, can only be read in part).
    SampleRateError
        If the rate is unknown or disagrees with the file.
    """

    #: format name, one of FORMATS
    format: ClassVar[str] = ""
    #: file name endings that hint at this format (lower case, with the dot)
    extensions: ClassVar[tuple[str, ...]] = ()

    info: RecordingInfo

    def __init__(
        self, path: str | Path, *, fs: float | None = None, strict: bool = False
    ) -> None:
        self.path = Path(path)
        self.strict = bool(strict)
        self._partial: str | None = None
        if not self.path.is_file():
            raise RecordingError(self.path, "file not found")
        info = self._inspect(fs)
        if self._partial is not None:
            info = replace(info, metadata={**info.metadata, "partial_read": self._partial})
        self.info = info

    # -- to be provided by each format ---------------------------------------------------------

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """Tell whether ``head`` (the first bytes, decompressed) is in this format.

        Parameters
        ----------
        head : bytes
            Up to :data:`HEAD_BYTES` first bytes of the file.
        path : Path
            The file, for an extension hint or a sibling file.

        Returns
        -------
        bool
        """
        raise NotImplementedError

    @classmethod
    def locate(cls, path: Path) -> Path | None:
        """Return the file to open for ``path`` if it names a recording indirectly.

        The default finds nothing; WFDB maps a record name to its header.
        """
        return None

    def _inspect(self, fs: float | None) -> RecordingInfo:
        """Read the header (and whatever is cheap) and describe the recording."""
        raise NotImplementedError

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        """Yield consecutive float64 blocks ``(n, n_channels)`` of any positive size."""
        raise NotImplementedError

    # -- public API ----------------------------------------------------------------------------

    def iter_chunks(self, chunk_samples: int) -> Iterator[np.ndarray]:
        """Stream the recording in chunks of ``chunk_samples`` rows (the last may be shorter).

        Each call starts again from the first sample. Memory use is bounded by
        the chunk size and the format's own block size, never the file size.

        Parameters
        ----------
        chunk_samples : int
            Rows per chunk, positive.

        Yields
        ------
        ndarray, shape (n, n_channels)
            Float64 samples (µV or counts, see ``info.unit``); NaN where missing.
        """
        if isinstance(chunk_samples, bool) or not isinstance(chunk_samples, int | np.integer):
            raise ConfigError("chunk_samples", chunk_samples, "a positive integer")
        if chunk_samples <= 0:
            raise ConfigError("chunk_samples", chunk_samples, "a positive integer")
        size = int(chunk_samples)
        return _rechunk(self._blocks(max(size, MIN_BLOCK_SAMPLES)), size, self.info.n_channels)

    def read(self) -> np.ndarray:
        """Return the whole recording as a float64 ``(n_samples, n_channels)`` array."""
        blocks = list(self._blocks(1 << 16))
        if not blocks:
            return np.empty((0, self.info.n_channels))
        return np.concatenate(blocks, axis=0)

    def close(self) -> None:
        """Release the file handles; the reader cannot be used afterwards."""

    def _salvage(self, loss: str, kept: str) -> None:
        """Report that only part of the file can be read, once, at opening.

        Parameters
        ----------
        loss : str
            What is missing, e.g. ``"truncated: header says 10 data records,
            file holds 4 whole ones"``.
        kept : str
            What is read instead, e.g. ``"reading the 4 s that are there"``.

        Raises
        ------
        RecordingError
            In strict mode, naming the loss.
        """
        if self.strict:
            raise RecordingError(self.path, f"{loss}; strict mode refuses a partial read")
        self._partial = f"{loss}; {kept}"
        warnings.warn(RecordingWarning(self.path, self._partial), stacklevel=_caller_level())

    def __repr__(self) -> str:
        info = self.info
        return (
            f"{type(self).__name__}({str(self.path)!r}, fs={info.fs:g}, "
            f"channels={len(info.channels)}, unit={info.unit!r})"
        )


def _caller_level() -> int:
    """The ``stacklevel`` that attributes a warning to the first caller outside the readers."""
    here = str(Path(__file__).parent)
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(here):
        frame = frame.f_back
        level += 1
    return level


def _rechunk(blocks: Iterator[np.ndarray], size: int, n_channels: int) -> Iterator[np.ndarray]:
    """Cut a stream of blocks of any size into chunks of exactly ``size`` rows.

    A read error of ``blocks`` is raised after the rows read before it.
    """
    pending: list[np.ndarray] = []
    held = 0
    fault: RecordingError | None = None
    try:
        for block in blocks:
            if block.shape[0] == 0:
                continue
            pending.append(block)
            held += block.shape[0]
            if held < size:
                continue
            joined = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=0)
            n_full = (held // size) * size
            for start in range(0, n_full, size):
                yield np.array(joined[start : start + size], dtype=np.float64, copy=True)
            rest = joined[n_full:]
            pending = [rest] if rest.shape[0] else []
            held = rest.shape[0]
    except RecordingError as error:
        fault = error
    if held:
        joined = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=0)
        yield np.array(joined, dtype=np.float64, copy=True).reshape(-1, n_channels)
    if fault is not None:
        raise fault


def check_fs(fs: object, path: Path | None, what: str = "sampling rate") -> float:
    """Return ``fs`` as a positive finite float or raise :class:`SampleRateError`.

    Examples
    --------
    >>> check_fs("250", None)
    250.0
    """
    try:
        value = float(fs)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        where = f"{path}: " if path is not None else ""
        raise SampleRateError(f"{where}{what} must be a number in Hz, got {fs!r}") from None
    if not math.isfinite(value) or value <= 0:
        where = f"{path}: " if path is not None else ""
        raise SampleRateError(f"{where}{what} must be positive and finite, got {fs!r}", value)
    return value


def resolve_fs(path: Path, stated: float | None, given: float | None, source: str) -> float:
    """Choose the sampling rate from the file's (``stated``) and the caller's (``given``).

    The given rate wins when both exist and agree within :data:`RATE_TOLERANCE`;
    a larger disagreement, or neither, raises :class:`SampleRateError`.

    Parameters
    ----------
    path : Path
        The file, for messages.
    stated : float or None
        Rate found in the file.
    given : float or None
        Rate passed by the caller (``fs=``, the CLI's ``--fs``).
    source : str
        Where ``stated`` comes from, e.g. ``"the header"``.

    Raises
    ------
    RecordingError
        If ``stated`` is not a positive finite number (the file is malformed).
    SampleRateError
        If ``given`` is invalid, both are missing, or they disagree.
    """
    if given is not None:
        given = check_fs(given, path, "fs")
    if stated is not None:
        # a rate the file states is part of the file: a nonsense value makes it malformed
        try:
            stated = check_fs(stated, path, f"sampling rate from {source}")
        except SampleRateError:
            raise RecordingError(
                path, f"malformed file: {source} states a sampling rate of {stated!r} Hz"
            ) from None
    if given is None and stated is None:
        raise SampleRateError(f"{path}: sampling rate unknown: pass --fs")
    if given is None:
        return float(stated)  # type: ignore[arg-type]
    if stated is not None and abs(given - stated) > RATE_TOLERANCE * stated:
        raise SampleRateError(
            f"{path}: fs={given:g} Hz disagrees with {stated:g} Hz from {source}", given
        )
    return given


_UV_PER_UNIT = {
    "uv": 1.0,
    "µv": 1.0,
    "μv": 1.0,  # Greek mu, as some writers use
    "microvolt": 1.0,
    "microvolts": 1.0,
    "mv": 1e3,  # WFDB headers and hand-written files use lower case for millivolt
    "millivolt": 1e3,
    "millivolts": 1e3,
    "v": 1e6,
    "volt": 1e6,
    "volts": 1e6,
    "nv": 1e-3,
}


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def parse_date_time(text: str) -> datetime | None:
    """Return the ISO-8601 date and time of day in ``text``, or None if it holds none.

    A date alone is not a start time (it does not say when the first sample
    was taken) and gives None. The time keeps the zone the text states
    (``+01:00``, ``Z``); without one it is naive, local to the recording.

    Examples
    --------
    >>> parse_date_time("2026-11-27T08:00:00+01:00").isoformat()
    '2026-11-27T08:00:00+01:00'
    >>> parse_date_time(" 2026-11-27 08:00:00.250 ").isoformat()
    '2026-11-27T08:00:00.250000'
    >>> parse_date_time("2026-11-27"), parse_date_time("2026-13-40T08:00"), parse_date_time("x")
    (None, None, None)
    """
    value = str(text).strip().strip("\x00").strip()
    if not _DATE_TIME.match(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def excerpt(text: object, limit: int = 40) -> str:
    """``repr`` of a piece of a file, cut short for a one-line message.

    Examples
    --------
    >>> excerpt("12"), excerpt("9" * 50, 10)
    ("'12'", "'9999999...'")
    """
    value = str(text)
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def uv_per_unit(unit: str) -> float | None:
    """Return how many µV one ``unit`` is, or None if ``unit`` is not a voltage.

    Examples
    --------
    >>> uv_per_unit("mV"), uv_per_unit(" uV "), uv_per_unit("g")
    (1000.0, 1.0, None)
    """
    return _UV_PER_UNIT.get(unit.strip().lower())


def to_uv(values: np.ndarray, uv_per_unit: float | np.ndarray) -> np.ndarray:
    """``values * uv_per_unit``, where a product too large for a float is ±inf, silently.

    Such a value is missing: the pipeline bridges and counts it.

    Examples
    --------
    >>> to_uv(np.array([1.5, 1e305]), 1e6).tolist()
    [1500000.0, inf]
    """
    with np.errstate(over="ignore"):
        return values * uv_per_unit


def is_gzip(path: Path) -> bool:
    """Tell whether ``path`` starts with the gzip magic number."""
    with open(path, "rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def read_head(path: Path, n_bytes: int = HEAD_BYTES) -> bytes:
    """Return up to ``n_bytes`` first bytes of ``path``, decompressed if gzip.

    A truncated or damaged gzip stream gives what could be decompressed
    before the damage.
    """
    with open(path, "rb") as handle:
        raw = handle.read(n_bytes)
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(n_bytes)
    except (OSError, EOFError, zlib.error):
        # piece by piece, so that what comes before a damaged spot is kept
        decomp = zlib.decompressobj(wbits=31)
        out = b""
        for start in range(0, len(raw), 512):
            try:
                out += decomp.decompress(raw[start : start + 512], n_bytes - len(out))
            except zlib.error:
                break
            if len(out) >= n_bytes or decomp.eof:
                break
        return out


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13)) + b"\x7f"


def text_of(head: bytes) -> str | None:
    """Decode ``head`` as text, or return None if it looks binary.

    UTF-8 (with or without BOM) is tried first, then Latin-1. Text must hold no
    NUL byte and almost no other control characters.
    """
    if b"\x00" in head:
        return None
    sample = head[:8192]
    if sample and sum(sample.count(bytes([c])) for c in _CONTROL) > 0.01 * len(sample):
        return None
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(head) - 3:
            # the head may cut a multi-byte character in two
            return head[: error.start].decode("utf-8")
    text = head.decode("latin-1")
    printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in text[:8192])
    return text if printable > 0.95 * min(len(text), 8192) else None


def encoding_of(head: bytes) -> str:
    """Return the encoding to read a text file whose head is ``head``."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:
            return "latin-1"
    return "utf-8-sig"


def leading_lines(text: str, max_lines: int = 200) -> list[str]:
    """Return the complete lines at the start of ``text`` (a cut last line is left out)."""
    lines = text.splitlines()
    if text and not text.endswith(("\n", "\r")) and len(lines) > 1:
        lines = lines[:-1]
    return lines[:max_lines]


def int24_le(raw: bytes | np.ndarray) -> np.ndarray:
    """Decode little-endian signed 24-bit integers (length a multiple of 3) into int32.

    Examples
    --------
    >>> int24_le(bytes([0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x00])).tolist()
    [-1, 1]
    """
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
    value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    return np.where(value >= 1 << 23, value - (1 << 24), value)
