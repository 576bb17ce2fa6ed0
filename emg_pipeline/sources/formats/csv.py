"""Generic delimited text tables: CSV, TSV, semicolon or blank separated, optionally gzipped.

Layout
------
* Optional leading comment lines starting with ``#`` (kept in ``metadata['comments']``).
* Optional header row: when any field of the first row is not a number, the
  row names the columns. A column named ``time``, ``time_s`` or ``timestamp``
  (any case, optionally with a ``(s)`` unit) holds the sample times: in
  seconds, or as ISO-8601 date-times (``2026-11-27T08:00:00.001+01:00``, or
  without an offset for local time). Every other
  column with numbers is a channel named by its header. Columns holding only
  text (labels, formatted clock times) are left out and listed in
  ``metadata['ignored_columns']``.
* Without a header the columns are channels ``ch1..chN`` and the rate must be
  given (``fs=``, the CLI's ``--fs``).

Start time
----------
``start_time`` (the wall-clock time of the first data row) comes from, in
order of precedence: an ISO-8601 time column (its first value, with the zone it
states, naive otherwise); a ``timestamp`` column in Unix seconds (UTC); a
leading comment line ``# start_time: 2026-11-27T08:00:00+01:00`` (also
``start time``, ``start``, ``recording start`` or ``recorded``, followed by
``:``, ``=`` or ``:=``). Such a comment that holds no date and time of day is
an error, not a silently missing start.

The delimiter is sniffed among tab, semicolon, comma and runs of blanks (in that
order of preference); with semicolons or tabs a decimal comma is recognised.
A UTF-8 byte order mark is ignored; gzip compression is recognised by content.

Rate
----
``fs=`` supplies or overrides the rate. Otherwise it is the median, over every
run of 1000 consecutive rows among the first 10 000 (a tenth of a shorter file),
of rows per second: gaps in the time column do not bias it, nor do times
written coarser than a sample period (2000 Hz with times in whole
milliseconds). When both exist and differ by more than 1 %,
:class:`SampleRateError` names both values.

Time column: gaps and order
---------------------------
The time column keeps the timeline (with
:class:`~emg_pipeline.sources.timeline.SampleTimeline`): a step of more than
1.5 sample periods from one row to the next is a gap of ``round(step * fs) - 1``
missing samples, given as rows of NaN that the pipeline bridges and counts, so
that the rows after it keep their time. Shorter steps are consecutive samples
(jitter); when the times jitter (steps shorter than a period by more than 1 µs),
a gap must exceed one period by twice the largest such shortfall seen, if that
is more than half a period. A row with an empty time cell follows the row
before it. The times must not go back: a row whose time is earlier than the
row before is a :class:`RecordingError` naming the data row. A time may
repeat: times written coarser than a sample period repeat, and the steps
between them count as jitter. A gap
longer than an hour and than the samples before it is refused as a broken
clock.

Units
-----
When every channel header ends with a voltage unit in brackets (``calf (uV)``,
``EMG [mV]``; µV, mV, V and their spelled-out names), the values are converted
to µV (× 1, 1e3, 1e6), the unit is ``'uV'`` and the channel names lose the
suffix. Otherwise values are returned as written with unit ``'counts'`` (the
file does not say what they are). Empty cells become NaN; no row is ever dropped.
A row with fewer cells than the header reads as one whose last cells are empty,
except the first data row, by which the parser sizes the table: there a missing
cell is a :class:`RecordingError` naming the row and the column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from emg_pipeline.errors import RecordingError
from emg_pipeline.sources.timeline import WIDEST_GAP_S, SampleTimeline

from ._base import (
    RecordingInfo,
    RecordingReader,
    encoding_of,
    is_gzip,
    leading_lines,
    parse_date_time,
    read_head,
    resolve_fs,
    text_of,
    to_uv,
    uv_per_unit,
)
from ._table import (
    TABLE_ERRORS,
    WHITESPACE,
    CleanText,
    TableSpec,
    check_first_row,
    iter_table,
    table_error,
    table_spec,
)

__all__ = ["CsvReader"]

TIME_COLUMNS = ("time", "time_s", "timestamp")
_SECONDS_SUFFIX = re.compile(r"\s*[(\[]\s*s\s*[)\]]$", re.I)
_UNIT_SUFFIX = re.compile(r"^(?P<name>.*?)\s*[(\[]\s*(?P<unit>[^()\[\]]+?)\s*[)\]]$")


def voltage_suffix(name: str) -> tuple[str, float] | None:
    """Split ``"calf (uV)"`` into the name and the µV per unit, or None without a voltage unit.

    Examples
    --------
    >>> voltage_suffix("calf_left (uV)"), voltage_suffix("EMG [mV]"), voltage_suffix("EMG")
    (('calf_left', 1.0), ('EMG', 1000.0), None)
    """
    match = _UNIT_SUFFIX.match(name.strip())
    if match is None or not match["name"]:
        return None
    factor = uv_per_unit(match["unit"])
    return None if factor is None else (match["name"], factor)


def is_time_column(name: str) -> bool:
    """Tell whether a header names the time column (``time``, ``time_s``, ``timestamp``).

    A trailing seconds unit is allowed: ``Time (s)``, ``time[s]``.

    Examples
    --------
    >>> is_time_column("Time (s)"), is_time_column("TIMESTAMP"), is_time_column("time_ms")
    (True, True, False)
    """
    return _SECONDS_SUFFIX.sub("", name.strip()).lower() in TIME_COLUMNS


#: rows read at opening to classify the columns and infer the rate
SAMPLE_ROWS = 10_000

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf|infinity)$", re.I)
_SEPARATORS = ("\t", ";", ",", WHITESPACE)


def is_number(field: str, decimal: str = ".") -> bool:
    """Tell whether a text field is a number (``decimal`` is the decimal mark).

    Examples
    --------
    >>> is_number(" -1.5e3 "), is_number("1,5", ","), is_number("EMG")
    (True, True, False)
    """
    field = field.strip().strip('"')
    if decimal != ".":
        field = field.replace(decimal, ".")
    return bool(_NUMBER.match(field))


def split_fields(line: str, sep: str) -> list[str]:
    """Split one line at ``sep`` (:data:`WHITESPACE` for runs of blanks)."""
    if sep == WHITESPACE:
        return line.split()
    return [f.strip().strip('"').strip() for f in line.split(sep)]


@dataclass(frozen=True)
class TextLayout:
    """What sniffing found out about a delimited text file.

    Parameters
    ----------
    comment_lines : tuple of str
        Leading ``#`` lines, without the ``#``.
    skip_lines : int
        Physical lines before the first data row (comments, blanks, header).
    sep : str
        Delimiter.
    decimal : str
        Decimal mark.
    header : tuple of str or None
        Column names if the first row is a header.
    n_fields : int
        Fields per data row.
    """

    comment_lines: tuple[str, ...]
    skip_lines: int
    sep: str
    decimal: str
    header: tuple[str, ...] | None
    n_fields: int


def sniff_layout(text: str) -> TextLayout | None:
    """Work out delimiter, header and comment lines of a text table, or None if it is not one."""
    lines = leading_lines(text, 400)
    comments: list[str] = []
    skip = 0
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if stripped:
            comments.append(stripped.lstrip("#").strip())
        skip += 1
    body = [line for line in lines[skip:] if line.strip()]
    if not body:
        return None
    for sep in _SEPARATORS:
        layout = _try_separator(body, sep, comments, skip)
        if layout is not None:
            return layout
    return None


def _try_separator(
    body: Sequence[str], sep: str, comments: list[str], skip: int
) -> TextLayout | None:
    rows = [split_fields(line, sep) for line in body[:60]]
    first = rows[0]
    decimal = "."
    if sep in ("\t", ";", WHITESPACE) and any("," in f for row in rows[1:] for f in row):
        # "1,5;2,3" is a decimal comma when commas are not the delimiter
        decimal = ","
    header = None
    if any(f and not is_number(f, decimal) for f in first):
        header = tuple(first)
        data = rows[1:]
    else:
        data = rows
    width = len(first)
    if width < 2 and sep != WHITESPACE:
        # one column: no delimiter in it, accept only when no other separator splits it
        if any(len(split_fields(line, s)) > 1 for line in body[:60] for s in _SEPARATORS):
            return None
    if data:
        same = sum(len(row) == width for row in data)
        if same < 0.5 * len(data):
            return None
        numeric_cols = [
            j
            for j in range(width)
            if sum(j < len(row) and is_number(row[j], decimal) for row in data) >= 0.5 * len(data)
        ]
        if not numeric_cols:
            return None
    elif header is None or width < 2:
        return None
    return TextLayout(
        comment_lines=tuple(comments),
        skip_lines=skip + (1 if header is not None else 0),
        sep=sep,
        decimal=decimal,
        header=header,
        n_fields=width,
    )


class CsvReader(RecordingReader):
    """Reader of generic delimited text tables (format ``'csv'``).

    See the module docstring for the layout, the rate rules and the units.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp()) / "demo.csv"
    >>> _ = tmp.write_text("time,emg\\n0.000,1\\n0.001,\\n0.002,3\\n")
    >>> with CsvReader(tmp) as reader:
    ...     reader.info.fs, reader.info.channels, reader.read()[:, 0].tolist()
    (1000.0, ('emg',), [1.0, nan, 3.0])
    """

    format: ClassVar[str] = "csv"
    extensions: ClassVar[tuple[str, ...]] = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")

    _spec: TableSpec

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """Tell whether ``head`` is a delimited numeric text table."""
        text = text_of(head)
        return text is not None and sniff_layout(text) is not None

    def _inspect(self, fs: float | None) -> RecordingInfo:
        path = self.path
        head = read_head(path)
        if not head.strip():
            raise RecordingError(path, "file is empty")
        text = text_of(head)
        if text is None:
            raise RecordingError(path, "binary content: not a text table")
        layout = sniff_layout(text)
        if layout is None:
            raise RecordingError(path, "not a delimited numeric table")
        width = layout.n_fields
        if layout.header is not None:
            names = [name or f"column {j + 1}" for j, name in enumerate(layout.header)]
        else:
            names = [f"ch{j + 1}" for j in range(width)]
        time_col = None
        if layout.header is not None:
            time_col = next((j for j, n in enumerate(layout.header) if is_time_column(n)), None)
        sample = self._sample(layout, names)
        if len(sample) == 0:
            raise RecordingError(path, "no data rows (header only)")
        cut = not is_gzip(path) and _cut_mid_row(path, layout, encoding_of(head))
        if len(sample) > SAMPLE_ROWS:
            sample = sample.iloc[:SAMPLE_ROWS]
        elif cut and len(sample) > 1:
            sample = sample.iloc[:-1]  # the row the file was cut in tells nothing
        channel_cols, ignored = _classify_columns(sample, names, time_col, layout)
        if not channel_cols:
            raise RecordingError(
                path, "no channel columns: no column other than time holds numbers"
            )
        stated = None
        metadata: dict[str, object] = {
            "delimiter": "whitespace" if layout.sep == WHITESPACE else layout.sep,
            "decimal": layout.decimal,
            "has_header": layout.header is not None,
            "ignored_columns": tuple(ignored),
            "comments": layout.comment_lines,
        }
        start_time = _comment_start(path, layout.comment_lines)
        if start_time is not None:
            metadata["start_time_comment"] = start_time.isoformat()
        if time_col is not None:
            clock = _clock_times(path, sample[time_col], names[time_col])
            if clock is None:
                times = _time_values(path, sample[time_col], names[time_col], layout.decimal)
            else:
                # ISO-8601 date-times: seconds from the first, which is the start time
                times, start_time = clock
                metadata["time_column_format"] = "iso8601"
            metadata["time_column"] = names[time_col]
            check_order(path, names[time_col], times, 0, None)
            stated = _rate_of(times)
            if stated is not None:
                metadata["fs_from_time_column"] = stated
            first = times[np.isfinite(times)][:1]
            timestamp = _SECONDS_SUFFIX.sub("", names[time_col].strip()).lower() == "timestamp"
            if timestamp and first.size and first[0] > 1e8:
                # seconds since the Unix epoch: an absolute, UTC instant
                try:
                    start_time = datetime.fromtimestamp(float(first[0]), tz=UTC)
                except (OverflowError, OSError, ValueError):
                    raise RecordingError(
                        path, f"first value {first[0]:g} of column {names[time_col]!r} is not "
                        "a Unix time in seconds"
                    ) from None
        rate = resolve_fs(path, stated, fs, "the time column (median interval)")
        units = [voltage_suffix(names[j]) for j in channel_cols]
        self._scale: np.ndarray | None = None
        unit = "counts"
        channels = tuple(names[j] for j in channel_cols)
        if all(u is not None for u in units):
            unit = "uV"
            channels = tuple(u[0] for u in units if u is not None)
            factors = np.array([u[1] for u in units if u is not None])
            self._scale = None if np.all(factors == 1.0) else factors
            metadata["uv_per_unit"] = tuple(factors.tolist())
        if len(set(channels)) != len(channels):
            channels = tuple(names[j] for j in channel_cols)
        # the time column, if any, is read first, to place the rows on the sample clock
        self._time_column = None if time_col is None else names[time_col]
        used = channel_cols if time_col is None else [time_col, *channel_cols]
        iso = metadata.get("time_column_format") == "iso8601"
        self._spec = table_spec(
            path,
            skiprows=layout.skip_lines,
            sep=layout.sep,
            usecols=used,
            names=[names[j] for j in used],
            decimal=layout.decimal,
            datetime_cols=(time_col,) if iso and time_col is not None else (),
        )
        if cut:
            self._salvage("the last line ends mid-row (the file was cut short)",
                          "reading the rows before it")
            self._spec = replace(self._spec, drop_last_row=True)
        return RecordingInfo(
            path=path,
            format=self.format,
            fs=rate,
            channels=channels,
            unit=unit,
            n_samples=None,
            start_time=start_time,
            metadata=metadata,
        )

    def _sample(self, layout: TextLayout, names: Sequence[str]) -> pd.DataFrame:
        width = len(names)
        spec = table_spec(
            self.path,
            skiprows=layout.skip_lines,
            sep=layout.sep,
            usecols=range(width),
            names=names,
        )
        try:   # the rows before a fault: the fault itself is raised when it is reached
            check_first_row(self.path, spec)
            with CleanText(self.path, spec) as text:
                return pd.read_csv(
                    text,
                    sep=spec.sep,
                    header=None,
                    skiprows=spec.skiprows,
                    usecols=list(range(width)),
                    skipinitialspace=spec.sep != WHITESPACE,
                    dtype=str,
                    keep_default_na=False,
                    nrows=SAMPLE_ROWS + 1,  # one more: to know whether the last row is in
                    engine="c",
                )
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except TABLE_ERRORS as error:
            raise table_error(self.path, error) from None

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        blocks = iter_table(self.path, self._spec, size_hint)
        if self._time_column is None:
            yield from (self._scaled(block) for block in blocks)
            return
        clock = RowClock(self.path, self._time_column, self.info.fs)
        for block in blocks:
            lost = clock.place(block[:, 0])
            yield from with_gaps(self._scaled(block[:, 1:]), lost)

    def _scaled(self, block: np.ndarray) -> np.ndarray:
        return block if self._scale is None else to_uv(block, self._scale)


class RowClock:
    """Places the rows of a table on the sample clock by their time column.

    See "Time column: gaps and order" in the module docstring.

    Parameters
    ----------
    path : Path
        The file, for messages.
    column : str
        Name of the time column, for messages.
    fs : float
        Sampling rate in Hz.

    Examples
    --------
    >>> clock = RowClock(Path("rec.csv"), "time", 1000.0)
    >>> clock.place(np.array([0.0, 0.001, 0.004, np.nan, 0.006])).tolist()
    [0, 0, 2, 0, 0]
    >>> clock.place(np.array([0.005]))
    Traceback (most recent call last):
    ...
    emg_pipeline.errors.RecordingError: rec.csv: time column 'time' goes back: \
data row 6 is 0.001 s earlier than data row 5
    """

    def __init__(self, path: Path, column: str, fs: float) -> None:
        self.path = path
        self.column = column
        self.fs = float(fs)
        self.timeline = SampleTimeline(self.fs)
        #: data rows placed so far
        self.rows = 0
        self._last: tuple[int, float] | None = None  # last row with a time, and its time

    def place(self, times: np.ndarray) -> np.ndarray:
        """Place the next rows, whose times are ``times``; return the samples missing before each.

        Raises
        ------
        RecordingError
            If a time goes back, or a gap is too long to be a loss.
        """
        self._last = check_order(self.path, self.column, times, self.rows, self._last)
        before = self.timeline.n_samples
        lost = self.timeline.place(self._filled(times))
        widest = int(lost.max()) if lost.size else 0
        if widest > max(WIDEST_GAP_S * self.fs, before):
            row = self.rows + int(np.argmax(lost)) + 1
            raise RecordingError(
                self.path, f"time column {self.column!r} jumps by {widest / self.fs:.0f} s at "
                f"data row {row} (a clock reset?): too long a gap to keep"
            )
        self.rows += times.shape[0]
        return lost

    def _filled(self, times: np.ndarray) -> np.ndarray:
        """``times`` with each empty cell one period after the row before it."""
        known = np.isfinite(times)
        if known.all():
            return times
        previous = self.timeline.last_timestamp
        if previous is None:  # the first rows: counted back from the first time given
            first = np.flatnonzero(known)[:1]
            ahead = float(times[first[0]]) if first.size else 0.0
            previous = ahead - (int(first[0]) + 1 if first.size else 1) / self.fs
        extended = np.concatenate(([previous], times))
        index = np.arange(extended.shape[0])
        given = np.maximum.accumulate(np.where(np.isfinite(extended), index, 0))
        return (extended[given] + (index - given) / self.fs)[1:]


def check_order(
    path: Path, column: str, times: np.ndarray, first_row: int, last: tuple[int, float] | None
) -> tuple[int, float] | None:
    """Raise if a time given (empty cells aside) is earlier than the one of the row before.

    Parameters
    ----------
    path : Path
        The file, for messages.
    column : str
        Name of the time column, for messages.
    times : ndarray
        Times of consecutive data rows, NaN where the cell is empty.
    first_row : int
        Zero-based data row of ``times[0]``.
    last : tuple of (int, float) or None
        The last row before ``times`` that had a time, and that time.

    Returns
    -------
    tuple of (int, float) or None
        The last row that has a time (``last`` if none in ``times``), and its time.

    Raises
    ------
    RecordingError
        Naming the first data row whose time goes back.
    """
    rows = first_row + np.flatnonzero(np.isfinite(times))
    values = times[rows - first_row]
    if last is not None:
        rows = np.concatenate(([last[0]], rows))
        values = np.concatenate(([last[1]], values))
    if rows.shape[0] == 0:
        return last
    steps = np.diff(values)
    bad = np.flatnonzero(steps < 0)
    if bad.size:
        k = int(bad[0])
        raise RecordingError(
            path, f"time column {column!r} goes back: data row {rows[k + 1] + 1} is "
            f"{-steps[k]:.6g} s earlier than data row {rows[k] + 1}"
        )
    return int(rows[-1]), float(values[-1])


#: rows of NaN given at once for a gap (a long one comes in pieces)
_GAP_PIECE = 1 << 16


def with_gaps(values: np.ndarray, lost: np.ndarray) -> Iterator[np.ndarray]:
    """Yield ``values`` with ``lost[k]`` rows of NaN before row ``k``, in bounded pieces.

    Examples
    --------
    >>> [b.ravel().tolist() for b in with_gaps(np.array([[1.0], [2.0]]), np.array([0, 2]))]
    [[1.0, nan, nan, 2.0]]
    """
    total = int(lost.sum())
    if total == 0:
        yield values
        return
    n, n_ch = values.shape
    if total <= _GAP_PIECE:
        out = np.full((n + total, n_ch), np.nan)
        out[np.arange(n) + np.cumsum(lost)] = values
        yield out
        return
    start = 0
    for k in np.flatnonzero(lost).tolist():
        yield values[start:k]
        for size in range(int(lost[k]), 0, -_GAP_PIECE):
            yield np.full((min(size, _GAP_PIECE), n_ch), np.nan)
        start = k
    yield values[start:]


def _cut_mid_row(path: Path, layout: TextLayout, encoding: str) -> bool:
    """Whether the file ends inside a row: no line break at the end, and a cell of
    the last line is not a number (``-``, ``1.2e``...), as a stopped logger leaves it.

    A last line without a line break that reads whole is a row like the others.
    """
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 4096))
        tail = f.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return False
    last = tail.splitlines()[-1].decode(encoding, errors="replace")
    cells = last.split() if layout.sep == WHITESPACE else last.split(layout.sep)
    return any(c.strip() and not is_number(c.strip(), layout.decimal) for c in cells)


def _classify_columns(
    sample: pd.DataFrame, names: Sequence[str], time_col: int | None, layout: TextLayout
) -> tuple[list[int], list[str]]:
    """Split columns into channels (any number seen) and ignored text or empty unnamed ones."""
    channels: list[int] = []
    ignored: list[str] = []
    for j in range(len(names)):
        if j == time_col:
            continue
        cells = sample[j].astype(str).str.strip()
        filled = cells[cells != ""]
        numeric = filled.map(lambda f: is_number(f, layout.decimal)).sum() if len(filled) else 0
        unnamed = layout.header is None or not layout.header[j].strip()
        if numeric > 0 or (len(filled) == 0 and not unnamed):
            channels.append(j)
        else:
            ignored.append(names[j])
    return channels, ignored


#: rows per run over which the rate is measured (see "Rate" in the module docstring)
RATE_RUN_ROWS = 1000


def _rate_of(times: np.ndarray) -> float | None:
    """Rows per second of a time column (NaN: an empty cell), or None if it cannot tell.

    The median over every run of :data:`RATE_RUN_ROWS` rows (a tenth of a
    shorter column, at least one row) of the rows in the run over its duration.

    Examples
    --------
    >>> _rate_of(np.arange(5000) / 2000.0)
    2000.0
    >>> round(_rate_of(np.round(np.arange(5000) / 2000.0, 3)))   # whole milliseconds
    2000
    """
    rows = np.flatnonzero(np.isfinite(times))
    if rows.size < 2:
        return None
    k = max(1, min(RATE_RUN_ROWS, rows.size // 10))   # ten runs at least, where it can
    span = times[rows[k:]] - times[rows[:-k]]
    count = rows[k:] - rows[:-k]
    moving = span > 0
    if not moving.any():
        return None
    return _snap_rate(float(np.median(count[moving] / span[moving])))


def _snap_rate(rate: float) -> float:
    """Remove the floating-point noise of a rate measured from decimal times.

    Times written in decimal (0.001, 0.002, ...) differ by not quite 0.001 in
    binary; a rate within 1e-9 of a whole millihertz is that value.

    Examples
    --------
    >>> _snap_rate(999.9999999999991), _snap_rate(1000 / 3)
    (1000.0, 333.3333333333333)
    """
    snapped = round(rate, 3)
    return snapped if abs(snapped - rate) <= 1e-9 * rate else rate


_START_COMMENT = re.compile(
    r"^(?P<key>start[ _-]?time|start|recording[ _-]start|recorded)\s*(?::=|:|=)\s*(?P<value>.*)$",
    re.I,
)


def _comment_start(path: Path, comments: Sequence[str]) -> datetime | None:
    """The start time a leading ``# start_time: ...`` comment line gives, if any.

    Raises
    ------
    RecordingError
        If such a line holds no ISO-8601 date and time of day.
    """
    for line in comments:
        match = _START_COMMENT.match(line.strip())
        if match is None:
            continue
        moment = parse_date_time(match["value"])
        if moment is None:
            raise RecordingError(
                path, f"comment '{match['key']}: {match['value']}' is not an ISO-8601 date and "
                "time (expected e.g. 2026-11-27T08:00:00+01:00)"
            )
        return moment
    return None


def _clock_times(path: Path, cells: pd.Series, name: str) -> tuple[np.ndarray, datetime] | None:
    """Seconds from the first row and the first row's time, for a column of ISO-8601 times.

    Returns None when the column does not start with an ISO-8601 date and time
    (it is then read as seconds).

    Raises
    ------
    RecordingError
        If a later cell is not a date and time, or naive and zoned times are mixed.
    """
    text = cells.astype(str).str.strip()
    filled = text[text != ""]
    if filled.empty:
        return None
    first = parse_date_time(filled.iloc[0])
    if first is None:
        return None
    aware = first.tzinfo is not None
    try:
        moments = pd.to_datetime(text.replace("", None), format="ISO8601", utc=aware,
                                 errors="coerce")
    except (ValueError, TypeError):
        raise RecordingError(
            path, f"column {name!r} mixes date-times with and without a UTC offset"
        ) from None
    bad = moments.isna().to_numpy() & (text != "").to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise RecordingError(
            path, f"value {text.iloc[k]!r} in column {name!r} at data row {k + 1} is not an "
            "ISO-8601 date and time like the first row's"
        )
    nanoseconds = moments.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    finite = ~moments.isna().to_numpy()
    seconds = np.full(len(text), np.nan)
    seconds[finite] = (nanoseconds[finite] - nanoseconds[finite][0]) / 1e9
    return seconds, first


def _time_values(path: Path, cells: pd.Series, name: str, decimal: str) -> np.ndarray:
    text = cells.astype(str).str.strip()
    if decimal != ".":
        text = text.str.replace(decimal, ".", regex=False)
    values = pd.to_numeric(text.replace("", pd.NA), errors="coerce")
    bad = values.isna().to_numpy() & (text != "").to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise RecordingError(
            path, f"non-numeric value {text.iloc[k]!r} in column {name!r} at data row {k + 1}"
        )
    return values.to_numpy(dtype=np.float64, na_value=np.nan)
