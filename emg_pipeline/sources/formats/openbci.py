"""OpenBCI GUI text recordings (Cyton, Cyton+Daisy, Ganglion), three file generations.

Generations
-----------
``v6``
    ``%OpenBCI Raw EXG Data`` and other ``%`` lines (``%Number of channels = 8``,
    ``%Sample Rate = 250 Hz``, ``%Board = ...``), then a column-name row
    (``Sample Index, EXG Channel 0, ..., Timestamp, Marker Channel, Timestamp (Formatted)``),
    then comma-separated rows.
``v5``
    ``%OpenBCI Raw EEG Data`` and the same ``%`` lines, no column-name row; the
    GUI writes a first row of zeros before the data (it is skipped, and
    ``metadata['skipped_rows']`` says so). Unix-ms timestamp, then formatted time.
``legacy``
    ``%Sample Rate = 250.0 Hz`` plus ``%First Column = SampleIndex`` lines; the
    formatted time comes before the Unix-ms timestamp.

In every generation column 0 is the sample index and the next N columns are the
ExG channels, N from ``%Number of channels`` (or the ``EXG Channel`` column names
in v6). Channels are named ``EXG Channel 0..N-1`` in all generations.
Accelerometer, digital, analog and marker columns are not channels.

Rate
----
From ``%Sample Rate`` (Cyton 250 Hz, Ganglion 200 Hz). ``fs=`` must agree within 1 %.

Units
-----
The GUI writes the ExG channels already scaled to µV (for the Cyton,
``4.5 V / gain / (2**23 - 1)`` per ADC count, gain 24 by default), so values are
returned unchanged with unit ``'uV'``.

Start time
----------
From the first row's Unix timestamp (milliseconds, or seconds in newer files,
told apart by magnitude) as a UTC-aware datetime.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import numpy as np

from emg_pipeline.errors import RecordingError

from ._base import (
    RecordingInfo,
    RecordingReader,
    excerpt,
    leading_lines,
    read_head,
    resolve_fs,
    text_of,
)
from ._table import TableSpec, iter_table, table_spec

__all__ = ["OpenBciReader"]

_RATE = re.compile(r"sample\s*rate\s*=\s*([0-9.]+)", re.I)
_N_CHANNELS = re.compile(r"number\s+of\s+channels\s*=\s*(\d+)", re.I)
_BOARD = re.compile(r"board\s*=\s*(.+)", re.I)
#: a Unix time after 2001-09-09 in seconds (1e9) or milliseconds (1e12)
_UNIX_S_MIN = 1e9
_UNIX_MS_MIN = 1e11


class OpenBciReader(RecordingReader):
    """Reader of OpenBCI GUI text files (format ``'openbci'``); see the module docstring."""

    format: ClassVar[str] = "openbci"
    extensions: ClassVar[tuple[str, ...]] = (".txt", ".csv")

    _spec: TableSpec

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """Tell whether ``head`` starts with OpenBCI GUI ``%`` header lines."""
        text = text_of(head)
        if text is None:
            return False
        first = text.lstrip("\ufeff").lstrip()
        return first.startswith("%OpenBCI") or (
            first.startswith("%") and _RATE.search(first[:2000]) is not None
        )

    def _inspect(self, fs: float | None) -> RecordingInfo:
        path = self.path
        text = text_of(read_head(path))
        if text is None:
            raise RecordingError(path, "binary content: not an OpenBCI GUI text file")
        lines = leading_lines(text, 400)
        header = [line for line in lines if line.startswith("%")]
        n_header = 0
        while n_header < len(lines) and lines[n_header].startswith("%"):
            n_header += 1
        header_text = "\n".join(header)
        rate_match = _RATE.search(header_text)
        stated = None
        if rate_match:
            try:
                stated = float(rate_match.group(1))
            except ValueError:  # "1.2.3" or "." match the pattern's digits and dots
                raise RecordingError(
                    path, f"malformed '%Sample Rate' {excerpt(rate_match.group(1))} in the "
                    "OpenBCI header"
                ) from None
        n_match = _N_CHANNELS.search(header_text)
        board_match = _BOARD.search(header_text)
        board = board_match.group(1).strip() if board_match else None
        rest = [line for line in lines[n_header:] if line.strip()]
        if not rest:
            raise RecordingError(path, "no data rows after the OpenBCI header")
        fields = [f.strip() for f in rest[0].split(",")]
        columns: tuple[str, ...] | None = None
        skip = n_header
        if fields and not _is_float(fields[0]):
            columns = tuple(fields)
            skip += 1
            rest = rest[1:]
            if not rest:
                raise RecordingError(path, "no data rows after the OpenBCI column names")
        if columns is not None:
            generation = "v6"
            exg = [j for j, name in enumerate(columns) if re.match(r"e[xe]g channel", name, re.I)]
            if not exg:
                raise RecordingError(path, "no 'EXG Channel' column in the OpenBCI column names")
        else:
            generation = "legacy" if "first column" in header_text.lower() else "v5"
            if n_match is None:
                raise RecordingError(path, "'%Number of channels' missing from the OpenBCI header")
            n_exg = int(n_match.group(1))
            if not 1 <= n_exg < len(fields):
                raise RecordingError(
                    path, f"'%Number of channels' of {excerpt(n_match.group(1))} does not fit "
                    f"the data rows of {len(fields)} fields"
                )
            exg = list(range(1, 1 + n_exg))
        skipped = 0
        first_row = [f.strip() for f in rest[0].split(",")]
        if all(_is_float(f) and float(f) == 0.0 for f in first_row) and len(rest) > 1:
            # the v5 GUI writes one all-zero placeholder row before the first sample
            skipped = 1
            skip += 1
            first_row = [f.strip() for f in rest[1].split(",")]
        if len(first_row) <= max(exg):
            raise RecordingError(
                path,
                f"first data row has {len(first_row)} fields, expected at least {max(exg) + 1}",
            )
        rate = resolve_fs(path, stated, fs, "the OpenBCI header")
        names = tuple(f"EXG Channel {k}" for k in range(len(exg)))
        self._spec = table_spec(path, skiprows=skip, sep=",", usecols=exg, names=names)
        metadata: dict[str, object] = {
            "generation": generation,
            "board": board,
            "header": tuple(line.lstrip("%").strip() for line in header),
            "skipped_rows": skipped,
            "scale": "values written by the OpenBCI GUI in µV; returned unchanged",
        }
        if columns is not None:
            metadata["columns"] = columns
            metadata["other_columns"] = tuple(
                c for j, c in enumerate(columns) if j not in exg and j != 0
            )
        return RecordingInfo(
            path=path,
            format=self.format,
            fs=rate,
            channels=names,
            unit="uV",
            n_samples=None,
            start_time=_start_time(path, first_row[max(exg) + 1 :], columns, first_row),
            metadata=metadata,
        )

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        return iter_table(self.path, self._spec, size_hint)


def _is_float(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _start_time(
    path: Path, after_channels: list[str], columns: tuple[str, ...] | None, row: list[str]
) -> datetime | None:
    """Find the Unix timestamp of the first row: the 'Timestamp' column, else by magnitude.

    Raises
    ------
    RecordingError
        If that timestamp is beyond the dates a datetime can hold.
    """
    candidates = after_channels
    if columns is not None and "Timestamp" in columns:
        k = columns.index("Timestamp")
        candidates = row[k : k + 1] if k < len(row) else []
    for field in candidates:
        if not _is_float(field):
            continue
        value = float(field)
        if not value > _UNIX_S_MIN:  # NaN too
            continue
        seconds = value / 1000.0 if value > _UNIX_MS_MIN else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise RecordingError(
                path, f"first timestamp {excerpt(field)} of the OpenBCI file is not a Unix time"
            ) from None
    return None
