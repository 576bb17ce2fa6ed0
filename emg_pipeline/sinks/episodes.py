"""Episode files: the episode table with body sites and wall-clock times.

An episode file is a CSV with the columns of
:data:`~emg_pipeline.events.EPISODE_COLUMNS`, plus

- ``site`` (after ``channel``): the body site of the channel (see
  :mod:`emg_pipeline.sites`), ``unspecified`` when unknown;
- ``onset_time`` (after ``onset_s``), when the recording's start time is
  known: the onset as ISO-8601 local time with its UTC offset, e.g.
  ``2024-05-03T22:14:05.120+02:00``;
- ``note`` (last): the words of a manual mark, empty for episodes.

:func:`write_episodes` writes one; :func:`read_episodes` reads and validates
one, for reports that gather many sessions.

Manual marks ("I felt a spasm now", from the dashboard) are rows of their own:
label ``mark``, pattern ``manual``, an instant (``offset_s == onset_s``), the
channel concerned or ``any``, and the note typed with it. :meth:`EpisodeFile.mark`
writes them;
:func:`read_episodes` leaves them out unless asked (``marks=True``), so reports
count episodes only.

Examples
--------
>>> import io
>>> from datetime import datetime, timezone
>>> from emg_pipeline.sites import SiteMap
>>> table = episode_table(
...     [dict(channel="ch1", onset_s=3.0, offset_s=8.5, duration_s=5.5, label="spasm",
...           pattern="tonic")],
...     SiteMap({"ch1": "calf"}, datetime(2024, 5, 3, 22, 0, tzinfo=timezone.utc)),
... )
>>> table.loc[0, ["site", "onset_time"]].tolist()
['calf', '2024-05-03T22:00:03.000+00:00']
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import pandas as pd

from emg_pipeline.errors import EpisodeFileError, OutputError
from emg_pipeline.events import EPISODE_COLUMNS, Episode
from emg_pipeline.sites import UNSPECIFIED, SiteMap

from ..labels import Label
from ._output import atomic_write, probe_output, sync

if TYPE_CHECKING:
    from ..pipeline import ChunkResult
    from ..run import RunSummary, StreamInfo

__all__ = [
    "EPISODE_FILE_COLUMNS",
    "MARK_CHANNEL",
    "MARK_LABEL",
    "MARK_PATTERN",
    "REQUIRED_COLUMNS",
    "EpisodeFile",
    "EpisodeFileError",
    "append_rows",
    "episode_table",
    "is_episode_file",
    "read_episodes",
    "write_episodes",
]

#: columns of an episode file, in order (``onset_time`` only when the start time is known)
EPISODE_FILE_COLUMNS: tuple[str, ...] = (
    "channel", "site", "onset_s", "onset_time",
    *(c for c in EPISODE_COLUMNS if c not in ("channel", "onset_s")),
    "note",
)

#: columns an episode file must have to be read
REQUIRED_COLUMNS: tuple[str, ...] = ("channel", "onset_s", "offset_s", "duration_s", "label")

#: label, pattern and channel (when none is named) of a manual mark's row
MARK_LABEL = "mark"
MARK_PATTERN = "manual"
MARK_CHANNEL = "any"

_LABELS = tuple(label.value for label in Label)
_PATTERNS = ("phasic", "tonic", "clonic")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


def episode_table(
    episodes: Iterable[Episode] | Iterable[Mapping[str, object]] | pd.DataFrame,
    sites: SiteMap | None = None,
) -> pd.DataFrame:
    """Return the episode table with ``site`` and, when possible, ``onset_time``.

    Parameters
    ----------
    episodes : iterable of Episode or of dicts, or DataFrame
        Episodes (a table with the columns of ``EPISODE_COLUMNS``; missing
        optional columns are left empty).
    sites : SiteMap, optional
        Channel sites, start time and zone; without it every site is
        ``unspecified`` and there is no ``onset_time``.

    Returns
    -------
    DataFrame
        Columns of :data:`EPISODE_FILE_COLUMNS` (``onset_time`` only when the
        start time is known), sorted by onset then channel.
    """
    if isinstance(episodes, pd.DataFrame):
        frame = episodes.copy()
    else:
        rows = [e.as_dict() if isinstance(e, Episode) else dict(e) for e in episodes]
        frame = pd.DataFrame(rows)
    for column in EPISODE_COLUMNS:
        if column not in frame:
            frame[column] = pd.Series([None] * len(frame), dtype=object)
    frame["note"] = frame["note"].fillna("").astype(str) if "note" in frame else ""
    # a whole count stays whole where a mark's row has none (not 95.0000)
    frame["burst_count"] = frame["burst_count"].astype("Int64")
    sites = sites if sites is not None else SiteMap()
    frame["site"] = [sites.site(str(c)) for c in frame["channel"]]
    start = sites.local_start()
    columns = list(EPISODE_FILE_COLUMNS)
    if start is None:
        columns.remove("onset_time")
    else:
        frame["onset_time"] = [_iso(start, float(s)) for s in frame["onset_s"]]
    frame = frame[columns]
    if len(frame):
        frame = frame.sort_values(["onset_s", "channel"], kind="stable").reset_index(drop=True)
    return frame


def _iso(start: datetime, seconds: float) -> str:
    """``start + seconds`` as ISO-8601 with milliseconds and the offset of that instant."""
    # add elapsed time in UTC: aware arithmetic in a zone with daylight saving adds
    # wall-clock time, which is an hour off across a change of offset
    moment = (start.astimezone(UTC) + timedelta(seconds=seconds)).astimezone(start.tzinfo)
    return moment.isoformat(timespec="milliseconds")


def _cell(value: object) -> str:
    """One value as ``DataFrame.to_csv(float_format="%.4f")`` writes it (NaN and None empty)."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def append_rows(
    episodes: Iterable[Episode] | Iterable[Mapping[str, object]],
    handle: IO[str],
    sites: SiteMap | None = None,
) -> None:
    """Append episodes to an open episode file: the rows :func:`write_episodes` would write.

    The same columns, order and text as :func:`episode_table` written with
    ``to_csv``, without building a DataFrame: a live stream appends each episode
    the moment it ends, and that must cost next to nothing.
    """
    sites = sites if sites is not None else SiteMap()
    start = sites.local_start()
    columns = [c for c in EPISODE_FILE_COLUMNS if start is not None or c != "onset_time"]
    rows = []
    for e in episodes:
        row = e.as_dict() if isinstance(e, Episode) else dict(e)
        row["site"] = sites.site(str(row["channel"]))
        if start is not None:
            row["onset_time"] = _iso(start, float(row["onset_s"]))  # type: ignore[arg-type]
        row["note"] = row.get("note") or ""
        rows.append(row)
    rows.sort(key=lambda r: (r["onset_s"], str(r["channel"])))
    writer = csv.writer(handle, lineterminator=os.linesep)
    writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)


def write_episodes(
    episodes: Iterable[Episode] | Iterable[Mapping[str, object]] | pd.DataFrame,
    out: str | Path | IO[str],
    sites: SiteMap | None = None,
) -> pd.DataFrame:
    """Write an episode file (CSV) and return the table written.

    Parameters
    ----------
    episodes : iterable of Episode or of dicts, or DataFrame
        The episodes (e.g. ``pipe.episodes``).
    out : str, Path or text stream
        Where to write; parent folders are created, and a file is replaced in
        one step (see :func:`~emg_pipeline.sinks._output.atomic_write`).
    sites : SiteMap, optional
        Sites and start time (see :func:`episode_table`).

    Returns
    -------
    DataFrame
        The table as written.
    """
    table = episode_table(episodes, sites)
    if isinstance(out, str | Path):
        with atomic_write(out) as handle:
            table.to_csv(handle, index=False, float_format="%.4f")
    else:
        table.to_csv(out, index=False, float_format="%.4f")
    return table


def is_episode_file(path: str | Path) -> bool:
    """Tell whether ``path`` is a CSV whose header has the required episode columns."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            header = handle.readline()
    except OSError:
        return False
    names = {h.strip().strip('"') for h in header.split(",")}
    return set(REQUIRED_COLUMNS) <= names


def _bool(value: object) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def read_episodes(source: str | Path | IO[str], timezone: tzinfo | None = None, *,
                  marks: bool = False) -> pd.DataFrame:
    """Read and validate an episode file.

    Parameters
    ----------
    source : str, Path or text stream
        An episode file written by :func:`write_episodes` or ``emg-pipeline
        detect`` (without ``site``: every site is ``unspecified``).
    timezone : tzinfo, optional
        Zone of ``onset_time`` values written without a UTC offset (local
        times, as most tools write them); default: this computer's zone. The
        table's ``attrs["local_times"]`` then names the zone used.
    marks : bool
        Keep the rows of manual marks (label ``mark``); by default they are
        validated, then left out.

    Returns
    -------
    DataFrame
        Columns of :data:`EPISODE_FILE_COLUMNS`; ``onset_time`` holds aware
        :class:`~datetime.datetime` objects (None when the file has no start
        time); ``truncated`` is bool.

    Raises
    ------
    EpisodeFileError
        On a missing file, missing columns or a bad value (the row is named).

    Examples
    --------
    >>> import io
    >>> text = "channel,onset_s,offset_s,duration_s,label\\nch1,1.0,0.5,0.5,spasm\\n"
    >>> read_episodes(io.StringIO(text))
    Traceback (most recent call last):
    ...
    emg_pipeline.errors.EpisodeFileError: row 1: offset_s 0.5 is before onset_s 1.0
    """
    path = None if not isinstance(source, str | Path) else Path(source)
    if path is not None and not path.is_file():
        raise EpisodeFileError(path, "episode file not found")
    try:
        raw = pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise EpisodeFileError(
            path, "empty file: expected a CSV header of episode columns"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        text = " ".join(str(exc).split())
        raise EpisodeFileError(path, f"not a readable CSV: {text}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise EpisodeFileError(
            path, f"missing column(s) {', '.join(missing)}; an episode file needs "
            f"{', '.join(REQUIRED_COLUMNS)}", column=missing[0],
        )
    n = len(raw)
    out = pd.DataFrame(index=range(n))
    out["channel"] = raw["channel"].str.strip()
    out["site"] = raw["site"].str.strip().replace("", UNSPECIFIED) if "site" in raw else UNSPECIFIED

    def fail(i: int, column: str, reason: str) -> EpisodeFileError:
        return EpisodeFileError(path, reason, row=i + 1, column=column, value=raw.at[i, column])

    for i in np.flatnonzero(out["channel"].eq("").to_numpy()):
        raise fail(int(i), "channel", "empty channel name")
    numeric = ("onset_s", "offset_s", "duration_s")
    for column in numeric:
        values = pd.to_numeric(raw[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if bad.size:
            i = int(bad[0])
            raise fail(i, column, f"{column} must be a non-negative number of seconds, "
                       f"got {raw.at[i, column]!r}")
        out[column] = values
    before = np.flatnonzero(out["offset_s"].to_numpy() < out["onset_s"].to_numpy())
    if before.size:
        i = int(before[0])
        raise fail(i, "offset_s", f"offset_s {raw.at[i, 'offset_s']} is before onset_s "
                   f"{raw.at[i, 'onset_s']}")
    span = out["offset_s"].to_numpy() - out["onset_s"].to_numpy()
    # files are written with 4 decimals: allow their rounding
    wrong = np.flatnonzero(np.abs(span - out["duration_s"].to_numpy()) > 2e-3 + 1e-6 * span)
    if wrong.size:
        i = int(wrong[0])
        raise fail(i, "duration_s", f"duration_s {raw.at[i, 'duration_s']} differs from "
                   f"offset_s - onset_s = {span[i]:.4f}")
    labels = raw["label"].str.strip().str.lower()
    is_mark = labels.eq(MARK_LABEL).to_numpy()
    bad_label = np.flatnonzero(~labels.isin(_LABELS).to_numpy() & ~is_mark)
    if bad_label.size:
        i = int(bad_label[0])
        raise fail(i, "label", f"label {raw.at[i, 'label']!r} is not one of {', '.join(_LABELS)}")
    out["label"] = labels
    if "pattern" in raw:
        patterns = raw["pattern"].str.strip().str.lower()
        empty = patterns.eq("")
        patterns = patterns.where(~empty, np.where(labels.eq(Label.TWITCH), "phasic", "tonic"))
        patterns = patterns.where(~is_mark, MARK_PATTERN)
        bad = np.flatnonzero(~patterns.isin(_PATTERNS).to_numpy() & ~is_mark)
        if bad.size:
            i = int(bad[0])
            raise fail(i, "pattern", f"pattern {raw.at[i, 'pattern']!r} is not one of "
                       f"{', '.join(_PATTERNS)}")
        out["pattern"] = patterns
    else:
        out["pattern"] = np.where(labels.eq(Label.TWITCH), "phasic", "tonic")
    if is_mark.any():
        out.loc[is_mark, "pattern"] = MARK_PATTERN
    out["onset_time"], local = _times(raw, path, timezone)
    if local is not None:
        out.attrs["local_times"] = local
    for column in ("peak", "mean", "burst_rate_hz", "median_freq_hz", "floor"):
        if column in raw:
            values = pd.to_numeric(raw[column].replace("", "nan"), errors="coerce")
            bad = np.flatnonzero(values.isna().to_numpy() & ~raw[column].isin(["", "nan", "NaN"]))
            if bad.size:
                i = int(bad[0])
                raise fail(i, column, f"{column} must be a number, got {raw.at[i, column]!r}")
            out[column] = values.to_numpy(dtype=np.float64)
        else:
            out[column] = np.nan
    out["unit"] = raw["unit"].str.strip() if "unit" in raw else ""
    if "burst_count" in raw:
        counts = pd.to_numeric(raw["burst_count"].replace("", "0"), errors="coerce")
        bad = np.flatnonzero((counts.isna() | (counts < 0) | (counts % 1 != 0)).to_numpy())
        if bad.size:
            i = int(bad[0])
            raise fail(i, "burst_count", "burst_count must be a non-negative whole number, "
                       f"got {raw.at[i, 'burst_count']!r}")
        out["burst_count"] = counts.to_numpy(dtype=np.int64)
    else:
        out["burst_count"] = 0
    if "truncated" in raw:
        flags = [_bool(v) for v in raw["truncated"]]
        for i, flag in enumerate(flags):
            if flag is None:
                raise fail(i, "truncated", f"truncated must be True or False, "
                           f"got {raw.at[i, 'truncated']!r}")
        out["truncated"] = np.array(flags, dtype=bool)
    else:
        out["truncated"] = False
    if "gap_s" in raw:   # files written before the column existed have none: no gap known
        gaps = pd.to_numeric(raw["gap_s"].replace("", "0"), errors="coerce")
        bad = np.flatnonzero((gaps.isna() | (gaps < 0)).to_numpy())
        if bad.size:
            i = int(bad[0])
            raise fail(i, "gap_s", f"gap_s must be a number >= 0, got {raw.at[i, 'gap_s']!r}")
        out["gap_s"] = gaps.to_numpy(dtype=np.float64)
    else:
        out["gap_s"] = 0.0
    # files written before the column existed have no notes
    out["note"] = raw["note"].fillna("").astype(str) if "note" in raw else ""
    out = out[list(EPISODE_FILE_COLUMNS)]
    if is_mark.any() and not marks:
        out = out[~is_mark].reset_index(drop=True)
    return out


def _times(
    raw: pd.DataFrame, path: Path | None, zone: tzinfo | None
) -> tuple[list[datetime | None], str | None]:
    """Parse the ``onset_time`` column: ISO-8601 times, empty cells allowed.

    Times without a UTC offset are local times in ``zone`` (default: this
    computer's); the second value names that zone when any was read so.
    """
    if "onset_time" not in raw:
        return [None] * len(raw), None
    out: list[datetime | None] = []
    local: str | None = None
    for i, text in enumerate(raw["onset_time"].str.strip()):
        if not text:
            out.append(None)
            continue
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise EpisodeFileError(
                path, f"onset_time {text!r} is not an ISO-8601 date and time",
                row=i + 1, column="onset_time", value=text,
            ) from None
        if moment.tzinfo is None:
            if zone is not None:
                moment = moment.replace(tzinfo=zone)
                local = str(zone)
            else:
                moment = moment.astimezone()   # this computer's zone at that date
                local = f"this computer's time zone ({moment.tzname()})"
        out.append(moment)
    return out, local


class EpisodeFile:
    """The episode file of a stream, as a :class:`~emg_pipeline.run.Sink`.

    The file is started (its header written, replacing in one step any file of
    that name) with the stream's first samples, not before: a stream that stops
    before its first sample (a recording unreadable from its start, Ctrl-C)
    leaves a file that was there as it was. Each episode is then appended the
    moment it ends (flushed and ``fsync``'d): a process that is killed, or a
    machine that loses power, keeps every episode that had ended. When the
    stream ends (at its end, by Ctrl-C or by a read error) the file is
    rewritten sorted by onset, atomically (a temporary file renamed over it).
    An episode that the end of the stream cut short is marked ``truncated``.
    For ``"-"`` the table goes to standard output at the end. Manual marks
    (:meth:`mark`) are written the same way, and kept in the final file.

    Parameters
    ----------
    out : str or Path
        The file (parent folders are created), or ``"-"``; checked at once.
    sites : SiteMap, optional
        Channel sites and start time (the stream's start time, when it has one,
        fills in a missing one).
    option : str
        The option that named the file, for error messages.
    announce : text file, optional
        Where to say, at the end, where the file went (None: say nothing).
    """

    def __init__(self, out: str | Path, sites: SiteMap | None = None, *, option: str = "--out",
                 announce: IO[str] | None = None) -> None:
        self.out = out
        self.option = option
        self.sites = sites if sites is not None else SiteMap()
        self.announce = announce
        self.path = None if str(out) == "-" else probe_output(out, option)
        self._handle: IO[str] | None = None
        self.n_written = 0
        self.table: pd.DataFrame | None = None
        self.marks: list[dict[str, object]] = []

    def open(self, info: StreamInfo) -> None:
        """Take the stream's start time; the file is started by the first samples."""
        if self.sites.start_time is None and info.start_time is not None:
            self.sites = dataclasses.replace(self.sites, start_time=info.start_time)

    def _start(self) -> None:
        """Replace the file, in one step, by the header and the marks taken so far."""
        assert self.path is not None
        try:
            with atomic_write(self.path) as handle:
                episode_table([], self.sites).to_csv(handle, index=False)
                append_rows(self.marks, handle, self.sites)
            self._handle = open(self.path, "a", encoding="utf-8", newline="")
        except OSError as exc:
            raise OutputError.from_os(self.option, self.path, exc) from None

    def update(self, result: ChunkResult) -> None:
        """Start the file with the first samples; append the episodes that ended."""
        if self.path is None:
            return
        if self._handle is None:
            if not result.samples.shape[0]:
                return
            self._start()
        ended = [e.episode for e in result.events if e.episode is not None]
        if not ended:
            return
        self._append(ended)
        self.n_written += len(ended)

    def _append(self, rows: list[Episode] | list[dict[str, object]]) -> None:
        assert self._handle is not None
        try:
            append_rows(rows, self._handle, self.sites)
            sync(self._handle)
        except OSError as exc:
            raise OutputError.from_os(self.option, self.path or "-", exc) from None

    def mark(self, time_s: float, note: str = "", channel: str | None = None) -> None:
        """Add a manual mark ("I felt a spasm now") at stream time ``time_s``.

        The row (label ``mark``, see the module docstring) is appended and
        ``fsync``'d at once, and kept when the file is rewritten at the end.

        Parameters
        ----------
        time_s : float
            Stream time of the mark, in seconds.
        note : str
            What was felt (the row's ``note``; the recording's annotation
            keeps it too).
        channel : str, optional
            The channel concerned (default: ``any``).
        """
        row: dict[str, object] = {
            "channel": channel or MARK_CHANNEL, "onset_s": float(time_s),
            "offset_s": float(time_s), "duration_s": 0.0, "label": MARK_LABEL,
            "pattern": MARK_PATTERN, "unit": "", "note": note,
        }
        self.marks.append(row)
        if self._handle is not None:
            self._append([row])

    def close(self, summary: RunSummary) -> None:
        """Rewrite the file sorted by onset (atomically), or print it to standard output.

        A stream that ended with no result (stopped before its first sample)
        writes nothing and says nothing: a file that was there keeps what it held.
        """
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if not summary.has_results:
            return
        rows: list[Episode | dict[str, object]] = [*summary.episodes, *self.marks]
        if self.path is None:
            self.table = write_episodes(rows, sys.stdout, self.sites)
            sys.stdout.flush()   # a closed pipe shows here, inside the command
            return
        try:
            self.table = write_episodes(rows, self.path, self.sites)
        except OSError as exc:
            raise OutputError.from_os(self.option, self.path, exc) from None
        if self.announce is not None:
            marked = f" and {len(self.marks)} manual marks" if self.marks else ""
            print(f"wrote {len(self.table) - len(self.marks)} episodes{marked} to {self.out}",
                  file=self.announce)
