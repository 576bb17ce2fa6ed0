"""Streaming parse of delimited numeric text tables, shared by the text formats.

All text readers (generic CSV, OpenBCI, OpenSignals TXT, Myo, BioSPPy) reduce
to "skip some header lines, then read selected columns of a delimited table".
:func:`iter_table` does that with pandas' C parser, ``chunksize`` rows at a
time, and turns every parsing problem into a one-line :class:`RecordingError`
that names the column and the data row.

A fault in the middle of a file (a cell that is not a number, undecodable
bytes, a compressed stream that is truncated or damaged) is raised where it
is: every row before it is yielded first, so that a stream reads all that is
valid before it stops.
"""

from __future__ import annotations

import codecs
import csv as _stdlib_csv
import gzip
import io
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emg_pipeline.errors import RecordingError

from ._base import encoding_of, excerpt, is_gzip, read_head

__all__ = [
    "TABLE_ERRORS",
    "CleanText",
    "TableSpec",
    "check_first_row",
    "iter_table",
    "numeric_block",
    "table_error",
    "table_spec",
]

#: regular expression pandas understands as "runs of blanks"
WHITESPACE = r"\s+"


@dataclass(frozen=True)
class TableSpec:
    """How to read the table part of a text file.

    Parameters
    ----------
    skiprows : int
        Physical lines before the first data row (header lines).
    sep : str
        Field delimiter (a character, or :data:`WHITESPACE`).
    usecols : tuple of int
        Zero-based field indices to read, in output column order.
    names : tuple of str
        Name of each used column, for error messages.
    decimal : str
        Decimal mark.
    encoding : str
        Text encoding.
    compression : str or None
        ``'gzip'`` or None.
    comment : str or None
        Character that starts a comment line, if the format has them.
    drop_last_row : bool
        Leave out the last data row (a line the file was cut off in).
    datetime_cols : tuple of int
        Fields (as in ``usecols``) holding ISO-8601 date-times: they are given
        as seconds since 1970-01-01 (times with an offset in UTC, naive ones
        as written).
    """

    skiprows: int
    sep: str
    usecols: tuple[int, ...]
    names: tuple[str, ...]
    decimal: str = "."
    encoding: str = "utf-8-sig"
    compression: str | None = None
    comment: str | None = None
    drop_last_row: bool = False
    datetime_cols: tuple[int, ...] = ()


def table_spec(
    path: Path,
    *,
    skiprows: int,
    sep: str,
    usecols: Sequence[int],
    names: Sequence[str],
    decimal: str = ".",
    comment: str | None = None,
    datetime_cols: Sequence[int] = (),
) -> TableSpec:
    """Build a :class:`TableSpec`, finding the encoding and compression of ``path``."""
    return TableSpec(
        skiprows=skiprows,
        sep=sep,
        usecols=tuple(int(i) for i in usecols),
        names=tuple(names),
        decimal=decimal,
        encoding=encoding_of(read_head(path)),
        compression="gzip" if is_gzip(path) else None,
        comment=comment,
        datetime_cols=tuple(int(i) for i in datetime_cols),
    )


class CleanText(io.TextIOBase):
    """The text of a file as far as it can be read: up to the line of its first fault.

    Read by pandas' parser in place of the file. Undecodable bytes, or a
    compressed stream that is truncated or damaged, end the text after the last
    whole line before them; the fault is kept in :attr:`fault` for the caller
    to raise once the rows before it have been used.

    Parameters
    ----------
    path : Path
        The file.
    spec : TableSpec
        Its encoding and compression.
    """

    def __init__(self, path: Path, spec: TableSpec) -> None:
        super().__init__()
        self._raw = gzip.open(path, "rb") if spec.compression == "gzip" else open(path, "rb")
        # undecodable bytes become lone surrogates, which no valid text holds: found by search
        self._decoder = codecs.getincrementaldecoder(spec.encoding)(errors="surrogateescape")
        self._encoding = spec.encoding
        self._pending = ""   # the start of a line not yet whole
        self._ended = False
        self.fault: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        """Whole lines, about ``size`` characters; ``""`` at the end or at the first fault.

        Anything else raised while reading (Ctrl-C) is kept as the fault too:
        the parser calling this would turn it into a parsing error.
        """
        try:
            return self._lines(size if size is not None and size > 0 else 1 << 18)
        except BaseException as error:
            self.fault, self._ended = error, True
            return ""

    def _lines(self, want: int) -> str:
        while not self._ended:
            text = self._pending + self._decoded(want)
            if self._ended and self.fault is None:
                self._pending = ""
                return text
            cut = max(text.rfind("\n"), text.rfind("\r")) + 1
            self._pending = "" if self._ended else text[cut:]
            if cut:
                return text[:cut]
        return ""

    def _decoded(self, want: int) -> str:
        """The next text read, up to a fault (then :attr:`fault` is set)."""
        try:
            data = self._raw.read1(want)
        except (EOFError, OSError, zlib.error) as error:
            self.fault, self._ended = error, True
            return ""
        self._ended = not data
        text = self._decoder.decode(data, final=not data)
        bad = _UNDECODED.search(text)
        if bad is None:
            return text
        self.fault = UnicodeDecodeError(self._encoding, data, 0, len(data), "undecodable bytes")
        self._ended = True
        return text[: bad.start()]

    def close(self) -> None:
        self._raw.close()
        super().close()


#: what the ``surrogateescape`` handler makes of undecodable bytes
_UNDECODED = re.compile("[\udc80-\udcff]")


def _reader(
    text: CleanText, spec: TableSpec, chunk_rows: int, nrows: int | None
) -> pd.io.parsers.TextFileReader:
    return pd.read_csv(
        text,
        sep=spec.sep,
        header=None,
        skiprows=spec.skiprows,
        usecols=list(spec.usecols),
        skipinitialspace=spec.sep != WHITESPACE,
        decimal=spec.decimal,
        comment=spec.comment,
        chunksize=chunk_rows,
        nrows=nrows,
        engine="c",
        # quoting stays on: a quoted number is still a number
        quoting=_stdlib_csv.QUOTE_MINIMAL,
        on_bad_lines="error",
    )


def iter_table(
    path: Path, spec: TableSpec, chunk_rows: int, nrows: int | None = None
) -> Iterator[np.ndarray]:
    """Yield float64 blocks ``(rows, len(spec.usecols))`` of the table in ``path``.

    Empty cells become NaN; a cell that is not a number raises. Every row
    before a fault is yielded before the fault is raised.

    Raises
    ------
    RecordingError
        On a non-numeric cell (naming column and data row), a malformed line,
        undecodable bytes or a truncated compressed stream (naming the rows
        read before it).
    """
    first_row = 0
    try:
        check_first_row(path, spec)
        with CleanText(path, spec) as text:
            for frame in _frames(text, spec, chunk_rows, nrows):
                block, bad_cell = _numeric_rows(path, frame, spec, first_row)
                first_row += block.shape[0]
                yield block
                if bad_cell is not None:
                    raise bad_cell
            if text.fault is not None:
                raise text.fault
    except TABLE_ERRORS as error:
        raise table_error(path, error, first_row) from None


def check_first_row(path: Path, spec: TableSpec) -> None:
    """Raise if the first data row has fewer fields than the columns to read need.

    The parser sizes the table by its first row: a column beyond it would be
    missing from the whole table. (A later row that is short reads as one
    whose last cells are empty.)

    Raises
    ------
    RecordingError
        Naming the first column missing from data row 1.
    """
    try:
        first = pd.read_csv(path, sep=spec.sep, header=None, skiprows=spec.skiprows, nrows=1,
                            dtype=str, skipinitialspace=spec.sep != WHITESPACE,
                            encoding=spec.encoding, compression=spec.compression,
                            comment=spec.comment, engine="c")
    except (pd.errors.EmptyDataError, *TABLE_ERRORS):
        return  # no row, or one the reading proper reports
    width = first.shape[1]
    for col, name in zip(spec.usecols, spec.names, strict=True):
        if col >= width:
            raise RecordingError(
                path, f"malformed table: data row 1 has {width} field{'s' * (width != 1)}: "
                f"column {name!r} (field {col + 1}) is missing"
            )


def _frames(
    text: CleanText, spec: TableSpec, chunk_rows: int, nrows: int | None
) -> Iterator[pd.DataFrame]:
    """The table's frames, its last row left out when the file was cut off inside it."""
    held: pd.DataFrame | None = None   # one frame behind, to know the last one
    try:
        with _reader(text, spec, chunk_rows, nrows) as reader:
            for frame in reader:
                if held is not None:
                    yield held
                held = frame
    except pd.errors.EmptyDataError:
        return
    if held is not None:
        # a fault ends the text after a whole line: the last row is whole
        yield held.iloc[:-1] if spec.drop_last_row and text.fault is None else held


#: what parsing a table can raise: pandas' errors (ValueError also for usecols beyond the
#: row width), undecodable text, and the decompressor's errors for a gzipped file
TABLE_ERRORS = (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError, ValueError,
                zlib.error)


def table_error(path: Path, error: BaseException, rows_read: int = 0) -> RecordingError:
    """Turn a parsing exception of pandas or of the decompressor into a one-line error."""
    if isinstance(error, UnicodeDecodeError):
        return RecordingError(
            path, f"undecodable bytes after data row {rows_read}: binary content in a text file"
        )
    if isinstance(error, EOFError):
        return RecordingError(
            path, f"truncated: the compressed stream ends early, after data row {rows_read}"
        )
    if isinstance(error, zlib.error):
        return RecordingError(
            path, f"damaged compressed stream after data row {rows_read}: {_first_line(error)}"
        )
    if isinstance(error, OSError):
        return RecordingError(path, f"cannot read the table: {_first_line(error)}")
    return RecordingError(path, f"malformed table: {_first_line(error)}")


def numeric_block(path: Path, frame: pd.DataFrame, spec: TableSpec, first_row: int) -> np.ndarray:
    """Return ``frame``'s columns, in ``spec.usecols`` order, as float64.

    ``first_row`` is the zero-based data row of ``frame``'s first line, for messages.

    Raises
    ------
    RecordingError
        On a missing column or a cell that is not a number.
    """
    block, bad_cell = _numeric_rows(path, frame, spec, first_row)
    if bad_cell is not None:
        raise bad_cell
    return block


def _numeric_rows(
    path: Path, frame: pd.DataFrame, spec: TableSpec, first_row: int
) -> tuple[np.ndarray, RecordingError | None]:
    """:func:`numeric_block` up to its first fault: the rows before it, and the fault (or None)."""
    out = np.empty((len(frame), len(spec.usecols)), dtype=np.float64)
    n_valid, fault = len(frame), None
    for j, (col, name) in enumerate(zip(spec.usecols, spec.names, strict=True)):
        if col not in frame.columns:
            # pandas sizes the table by its first row: a short one leaves the column out
            return out[:0], RecordingError(
                path, f"malformed table: no field {col + 1} (column {name!r}) in the rows "
                f"from data row {first_row + 1}"
            )
        series = frame[col]
        if col in spec.datetime_cols:
            out[:, j] = _epoch_seconds(path, series, name, first_row)
            continue
        if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        ):
            out[:, j] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        text = series.astype("string").str.strip()
        values = pd.to_numeric(text.replace("", pd.NA), errors="coerce")
        bad = (
            values.isna().to_numpy()
            & text.notna().to_numpy()
            & (text != "").fillna(False).to_numpy()
        )
        k = int(np.argmax(bad)) if bad.any() else n_valid
        if k < n_valid:
            cell = str(text.iloc[k])
            shown = cell if len(cell) <= 20 else cell[:17] + "..."
            n_valid, fault = k, RecordingError(
                path,
                f"non-numeric value {shown!r} in column {name!r} at data row {first_row + k + 1}",
            )
        out[:, j] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return out[:n_valid], fault


def _epoch_seconds(path: Path, series: pd.Series, name: str, first_row: int) -> np.ndarray:
    """Seconds since 1970-01-01 of a column of ISO-8601 date-times (NaN for empty cells)."""
    text = series.astype("string").str.strip()
    moments = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    filled = text.notna().to_numpy() & (text != "").fillna(False).to_numpy()
    bad = moments.isna().to_numpy() & filled
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise RecordingError(
            path, f"value {excerpt(text.iloc[k], 30)} in column {name!r} at data row "
            f"{first_row + k + 1} is not an ISO-8601 date and time like the first row's"
        )
    seconds = (moments - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return seconds.to_numpy(dtype=np.float64, na_value=np.nan)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
