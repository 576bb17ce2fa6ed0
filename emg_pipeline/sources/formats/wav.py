"""WAV (RIFF/RIFX/RF64) files, one channel per audio channel.

Read with :func:`scipy.io.wavfile.read` memory-mapped (``mmap=True``), so
chunks come from disk as they are requested. 24-bit files cannot be
memory-mapped by scipy and are read whole once; scipy returns them
left-aligned in int32 and they are shifted back to their 24-bit values. A file
shorter than its ``data`` chunk says is reported as truncated. Before scipy
reads the file, its chunk list is walked the way scipy walks it and checked
(a ``fmt `` chunk with at least one channel and a sample container of 1 to 8
bytes, then a ``data`` chunk that fits in the file), so that a damaged header
is one :class:`RecordingError` naming the problem.

Start time
----------
``start_time`` is the Broadcast Wave ``bext`` chunk's origination date and
time (``OriginationDate`` ``yyyy-mm-dd`` and ``OriginationTime`` ``hh:mm:ss``,
any of ``-_:. `` as separators), else the ``LIST``/``INFO`` ``ICRD`` creation
date when it holds an ISO-8601 date and time of day (a date alone does not say
when the first sample was taken and is kept in ``metadata['creation_date']``
only). Both are naive: WAV states no time zone. The ``bext`` time reference
(samples since midnight) is kept in ``metadata['bext_time_reference']``. The
chunks are found by walking the RIFF chunk list with seeks, so a ``LIST``
chunk after a long ``data`` chunk costs no reading.

Units
-----
``'counts'``: the sample values as stored (integers of the file's bit depth,
or the floats of a float WAV), with no scaling. WAV has no notion of
microvolts. Channels are named ``ch1..chN``; the rate is the file's.
"""

from __future__ import annotations

import re
import struct
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.io import wavfile

from emg_pipeline.errors import RecordingError

from ._base import RecordingInfo, RecordingReader, parse_date_time, read_head, resolve_fs

__all__ = ["WavReader"]


class WavReader(RecordingReader):
    """Reader of WAV files (format ``'wav'``); see the module docstring."""

    format: ClassVar[str] = "wav"
    extensions: ClassVar[tuple[str, ...]] = (".wav",)

    _data: np.ndarray | None = None
    _divisor: float = 1.0

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """Tell whether ``head`` is a RIFF/RIFX/RF64 WAVE header."""
        return head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE"

    def _inspect(self, fs: float | None) -> RecordingInfo:
        path = self.path
        rate, data, mapped = self._load()
        if data.ndim == 1:
            data = data[:, None]
        self._data = data
        container = _container_bytes(read_head(path, 4096))
        if container == 3 and data.dtype == np.int32:
            self._divisor = 256.0  # scipy puts 3-byte samples in the top bytes of an int32
        start_time, dated = _start_time(_metadata_chunks(path))
        return RecordingInfo(
            path=path,
            format=self.format,
            fs=resolve_fs(path, float(rate), fs, "the WAV header"),
            channels=tuple(f"ch{k + 1}" for k in range(data.shape[1])),
            unit="counts",
            n_samples=int(data.shape[0]),
            start_time=start_time,
            metadata={
                "dtype": str(data.dtype),
                "bytes_per_sample": container,
                "memory_mapped": mapped,
                **dated,
            },
        )

    def _load(self) -> tuple[int, np.ndarray, bool]:
        _check_layout(self.path)
        with warnings.catch_warnings():
            # unknown chunks (LIST, bext...) are skipped by scipy with a warning
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            try:
                rate, data = wavfile.read(self.path, mmap=True)
                return rate, data, True
            except ValueError as error:
                if "mmap length is greater than file size" in str(error):
                    raise RecordingError(
                        self.path, "truncated: WAV data chunk is incomplete"
                    ) from None
                if "not compatible" not in str(error):
                    raise RecordingError(self.path, f"cannot read WAV: {_line(error)}") from None
            except _SCIPY_ERRORS as error:
                raise RecordingError(self.path, f"cannot read WAV: {_line(error)}") from None
            try:
                rate, data = wavfile.read(self.path, mmap=False)
            except (ValueError, *_SCIPY_ERRORS) as error:
                raise RecordingError(self.path, f"cannot read WAV: {_line(error)}") from None
            return rate, data, False

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        data = self._data
        if data is None:
            raise RecordingError(self.path, "reader is closed")
        for start in range(0, data.shape[0], size_hint):
            block = np.asarray(data[start : start + size_hint], dtype=np.float64)
            yield block / self._divisor if self._divisor != 1.0 else block

    def close(self) -> None:
        """Drop the memory map."""
        self._data = None


#: what scipy's WAV parser raises on a malformed file that the layout check let through
#: (ValueError is handled apart: it also says "memory-map unsuitable, read plainly")
_SCIPY_ERRORS = (OSError, EOFError, struct.error, ZeroDivisionError, OverflowError, TypeError,
                 MemoryError)
#: WAVE_FORMAT_EXTENSIBLE
_EXTENSIBLE = 0xFFFE


def _check_layout(path: Path) -> None:
    """Walk the chunk list as scipy's reader will; raise on what would derail it.

    Raises
    ------
    RecordingError
        If the RIFF header, a ``fmt `` chunk or a ``data`` chunk is malformed,
        the ``data`` chunk runs past the end of the file, or there is no
        ``fmt `` chunk followed by a ``data`` chunk within the RIFF size.
    """
    file_size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX", b"RF64") or head[8:12] != b"WAVE":
            raise RecordingError(path, "not a WAV file: no RIFF/RIFX/RF64 WAVE header")
        order = ">" if head[:4] == b"RIFX" else "<"
        rf64_data: int | None = None
        pos = 12
        if head[:4] == b"RF64":
            ds64 = handle.read(24)
            if len(ds64) < 24 or ds64[:4] != b"ds64":
                raise RecordingError(path, "malformed RF64 file: no ds64 chunk after the header")
            ds64_size, riff_size, rf64_data = struct.unpack("<IQQ", ds64[4:])
            if ds64_size < 16:
                raise RecordingError(path, f"malformed RF64 file: ds64 chunk of {ds64_size} bytes")
            end = riff_size + 8
            pos = 20 + ds64_size
        else:
            end = struct.unpack(order + "I", head[4:8])[0] + 8
        seen_fmt = seen_data = False
        while pos < end:
            handle.seek(pos)
            chunk_header = handle.read(8)
            if len(chunk_header) < 8:
                if seen_data and len(chunk_header) <= 4 and chunk_header not in (b"fmt ", b"data"):
                    break  # scipy stops at the end of the file once it has the data
                raise RecordingError(path, "truncated: the WAV file ends inside its chunk list")
            chunk_id = chunk_header[:4]
            (size,) = struct.unpack(order + "I", chunk_header[4:])
            if chunk_id == b"fmt ":
                _check_fmt(path, handle.read(min(size, 40)), size, order)
                seen_fmt = True
            elif chunk_id == b"data":
                if not seen_fmt:
                    raise RecordingError(path, "malformed WAV file: data chunk before fmt chunk")
                if rf64_data is not None:
                    size = rf64_data
                if pos + 8 + size > file_size:
                    raise RecordingError(path, "truncated: WAV data chunk is incomplete")
                seen_data = True
            pos += 8 + size + (size & 1)
    if not seen_data:
        raise RecordingError(path, "malformed WAV file: no fmt and data chunks within the "
                                   "size its RIFF header states")


def _check_fmt(path: Path, body: bytes, size: int, order: str) -> None:
    """Check a ``fmt `` chunk's body (its first bytes) as scipy will read it."""
    if size < 16:
        raise RecordingError(path, f"malformed WAV fmt chunk of {size} bytes")
    if len(body) < 16:
        raise RecordingError(path, "truncated: the WAV fmt chunk is incomplete")
    tag, channels, _, _, block_align, _ = struct.unpack(order + "HHIIHH", body[:16])
    if tag == _EXTENSIBLE and size >= 18 and len(body) < 18:
        raise RecordingError(path, "truncated: the WAV fmt chunk is incomplete")
    if channels == 0 or not 1 <= block_align // channels <= 8:
        raise RecordingError(
            path, f"malformed WAV fmt chunk: {channels} channel(s) in blocks of {block_align} bytes"
        )


def _container_bytes(head: bytes) -> int | None:
    """Bytes per sample and channel, from the ``fmt `` chunk (None if not in ``head``)."""
    order = ">" if head[:4] == b"RIFX" else "<"
    pos = 12
    while pos + 8 <= len(head):
        chunk_id = head[pos : pos + 4]
        (size,) = struct.unpack(order + "I", head[pos + 4 : pos + 8])
        if chunk_id == b"fmt " and pos + 24 <= len(head):
            channels, _, _, block_align = struct.unpack(order + "HIIH", head[pos + 10 : pos + 22])
            return block_align // channels if channels else None
        pos += 8 + size + (size & 1)
    return None


#: the chunks read for the start time, and the most of each that is read
_METADATA_CHUNKS = (b"bext", b"LIST")
_MAX_METADATA_BYTES = 1 << 16
_BEXT_DATE = slice(320, 330)      # after Description (256), Originator (32), reference (32)
_BEXT_TIME = slice(330, 338)
_BEXT_REFERENCE = slice(338, 346)
_SEP = r"[-_:. ]"
_BEXT_DATE_FORM = re.compile(rf"(\d{{4}}){_SEP}(\d{{2}}){_SEP}(\d{{2}})")
_BEXT_TIME_FORM = re.compile(rf"(\d{{2}}){_SEP}(\d{{2}}){_SEP}(\d{{2}})")


def _metadata_chunks(path: Path) -> dict[bytes, bytes]:
    """The first bytes of the ``bext`` and ``LIST`` chunks of a RIFF/RIFX/RF64 file.

    Walks the chunk list by seeking over chunk bodies; stops quietly at the end of
    the file or at a chunk header that runs past it (a truncated file).
    """
    found: dict[bytes, bytes] = {}
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12:
            return found
        order = ">" if head[:4] == b"RIFX" else "<"
        data_size: int | None = None
        end = handle.seek(0, 2)
        pos = 12
        while pos + 8 <= end:
            handle.seek(pos)
            chunk_id = handle.read(4)
            (size,) = struct.unpack(order + "I", handle.read(4))
            if chunk_id == b"ds64" and size >= 16:   # RF64: 64-bit sizes
                sizes = handle.read(16)
                if len(sizes) < 16:
                    break
                data_size = struct.unpack(order + "QQ", sizes)[1]
            if chunk_id == b"data" and size == 0xFFFFFFFF:
                if data_size is None:
                    break
                size = data_size
            if chunk_id in _METADATA_CHUNKS and chunk_id not in found:
                found[chunk_id] = handle.read(min(size, _MAX_METADATA_BYTES))
            pos += 8 + size + (size & 1)
    return found


def _info_entries(body: bytes) -> dict[str, str]:
    """The text entries (``ICRD``, ``INAM``...) of a ``LIST`` chunk of type ``INFO``."""
    out: dict[str, str] = {}
    if body[:4] != b"INFO":
        return out
    pos = 4
    while pos + 8 <= len(body):
        key = body[pos : pos + 4].decode("latin-1")
        (size,) = struct.unpack("<I", body[pos + 4 : pos + 8])
        text = body[pos + 8 : pos + 8 + size].split(b"\x00", 1)[0]
        out[key] = text.decode("utf-8", errors="replace").strip()
        pos += 8 + size + (size & 1)
    return out


def _start_time(chunks: dict[bytes, bytes]) -> tuple[datetime | None, dict[str, object]]:
    """The start time from ``bext``, else ``ICRD``, and what was found, for the metadata."""
    found: dict[str, object] = {}
    start = None
    bext = chunks.get(b"bext", b"")
    if len(bext) >= _BEXT_REFERENCE.stop:
        date_text = bext[_BEXT_DATE].decode("latin-1").strip("\x00 ")
        time_text = bext[_BEXT_TIME].decode("latin-1").strip("\x00 ")
        low, high = struct.unpack("<II", bext[_BEXT_REFERENCE])
        found["bext_origination"] = f"{date_text} {time_text}".strip()
        found["bext_time_reference"] = low + (high << 32)
        date = _BEXT_DATE_FORM.fullmatch(date_text)
        clock = _BEXT_TIME_FORM.fullmatch(time_text)
        if date and clock:
            try:
                start = datetime(*map(int, date.groups()), *map(int, clock.groups()))
                found["start_time_from"] = "bext"
            except ValueError:   # an impossible date: no start time, the text is kept
                start = None
    created = _info_entries(chunks.get(b"LIST", b"")).get("ICRD")
    if created:
        found["creation_date"] = created
        if start is None:
            start = parse_date_time(created)
            if start is not None:
                found["start_time_from"] = "ICRD"
    return start, found


def _line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
