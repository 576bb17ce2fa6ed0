"""Where a batch's results go, written so that a kill never leaves half a result.

Layout of the output folder ``DIR``::

    DIR/episodes/subject=P01/night1.bdf-3f2a9c1e.parquet   one file per recording
    DIR/episodes/subject=P02/...
    DIR/recordings.parquet                                  one row per recording
    DIR/report/                                             the spasm diary

``DIR/episodes`` is a Parquet dataset partitioned by subject (hive style: the
folder names carry the ``subject`` column, URL-quoted). Each recording's file
holds its episodes and, in the file's metadata, its result key and its row of
``recordings.parquet``: the file *is* the record that the recording is done,
and a re-run with the same key reuses it without reading the recording again
(a bad recording's file is empty, with its error in the row).

Every file is written under a temporary name beginning with ``.`` (which
Parquet readers ignore), flushed to disk, then renamed over its final name
with :func:`os.replace`, which is atomic: a batch killed at any moment leaves
complete files and, at most, temporary ones that the next run removes.
``recordings.parquet`` and the report are written when the batch ends; the
files of recordings that are no longer part of the batch (another subject,
another key) are removed then, so the dataset always describes the last batch.
One batch at a time writes into a folder (a lock file says so).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd

from emg_pipeline.errors import OutputError

from .task import EPISODE_COLUMNS, RECORDING_COLUMNS, RecordingOutcome

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "EPISODES_DIR",
    "RECORDINGS_FILE",
    "REPORT_DIR",
    "ResultStore",
    "StoredResult",
    "arrow_to_pandas",
    "empty_episodes",
    "episode_schema",
    "episodes_frame",
    "read_episode_dataset",
    "recording_schema",
    "recordings_frame",
]

EPISODES_DIR = "episodes"
RECORDINGS_FILE = "recordings.parquet"
REPORT_DIR = "report"
#: key of the file metadata holding a recording's result key and row
_META = b"emg_pipeline.batch"
_TEMP = re.compile(r"^\..*\.tmp-\d+$")
_LOCK = ".batch.lock"


def episode_schema() -> pa.Schema:
    """Arrow schema of the episode files (``subject`` is in the folder names)."""
    import pyarrow as pa

    types = {
        "recording": pa.string(), "channel": pa.string(), "site": pa.string(),
        "onset_s": pa.float64(), "onset_time": pa.string(), "offset_s": pa.float64(),
        "duration_s": pa.float64(), "label": pa.string(), "pattern": pa.string(),
        "peak": pa.float64(), "mean": pa.float64(), "unit": pa.string(),
        "burst_count": pa.int64(), "burst_rate_hz": pa.float64(),
        "median_freq_hz": pa.float64(), "floor": pa.float64(), "truncated": pa.bool_(),
        "gap_s": pa.float64(), "note": pa.string(),
        "onset_utc": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(name, types[name]) for name in EPISODE_COLUMNS])


def recording_schema() -> pa.Schema:
    """Arrow schema of ``recordings.parquet``."""
    import pyarrow as pa

    text = {"recording", "subject", "path", "format", "unit", "start_time", "warning", "error",
            "error_type", "code_version", "settings_digest", "content_digest", "key", "worker"}
    whole = {"n_channels", "n_samples", "n_episodes", "n_twitches", "n_spasms", "n_alerts",
             "n_not_muscle", "bridged_samples", "lost_samples"}
    fields = []
    for name in RECORDING_COLUMNS:
        if name in text:
            kind = pa.string()
        elif name in whole:
            kind = pa.int64()
        elif name == "channels":
            kind = pa.list_(pa.string())
        elif name == "reused":
            kind = pa.bool_()
        else:
            kind = pa.float64()
        fields.append((name, kind))
    return pa.schema(fields)


def empty_episodes() -> pd.DataFrame:
    """An episode table with no rows and the dataset's columns."""
    return episode_schema().empty_table().to_pandas()


def _plain(value: Any) -> Any:
    """A row value as JSON can hold it (NaN as null)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as pandas, whole-number columns as nullable ``Int64``."""
    import pyarrow as pa

    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def recordings_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The recordings table (columns of ``RECORDING_COLUMNS``), sorted by subject and name."""
    import pyarrow as pa

    plain = [{name: _plain(row.get(name)) for name in RECORDING_COLUMNS} for row in rows]
    plain.sort(key=lambda r: (r["subject"], r["recording"]))
    return arrow_to_pandas(pa.Table.from_pylist(plain, schema=recording_schema()))


def episodes_frame(parts: Iterable[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """One episode table from ``(subject, episodes)`` parts, sorted, with ``subject`` second."""
    import pyarrow as pa

    tables = [pa.Table.from_pandas(frame, schema=episode_schema(), preserve_index=False)
              .append_column("subject", pa.array([subject] * len(frame), pa.string()))
              for subject, frame in parts]
    if not tables:
        frame = empty_episodes()
        frame.insert(1, "subject", pd.Series([], dtype=object))
        return frame
    frame = pa.concat_tables(tables).replace_schema_metadata(None).to_pandas()
    columns = ["recording", "subject", *EPISODE_COLUMNS[1:]]
    frame = frame[columns].sort_values(["subject", "recording", "onset_s", "channel"],
                                       kind="stable")
    return frame.reset_index(drop=True)


def read_episode_dataset(folder: str | Path) -> pd.DataFrame:
    """Read ``DIR/episodes`` (every file in it) as one table, ``subject`` as text.

    Parameters
    ----------
    folder : path
        The ``episodes`` folder of a batch's output.

    Returns
    -------
    DataFrame
        Sorted by subject, recording, onset and channel.
    """
    import pyarrow.parquet as pq

    folder = Path(folder)
    parts = []
    for path in sorted(folder.glob("subject=*/*.parquet")):
        if path.name.startswith("."):
            continue
        subject = unquote(path.parent.name.removeprefix("subject="))
        parts.append((subject, pq.read_table(path).to_pandas()))
    return episodes_frame(parts)


def _safe(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "recording"
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned[-80:]}-{digest}"


@dataclass(frozen=True)
class StoredResult:
    """A recording's result found in the output folder.

    Attributes
    ----------
    path : Path
        Its episode file.
    key : str
        Its result key.
    recording, subject : str
    row : dict
        Its row of ``recordings.parquet`` as stored.
    """

    path: Path
    key: str
    recording: str
    subject: str
    row: dict[str, Any]


class ResultStore:
    """The output folder of a batch (see the module docstring).

    Parameters
    ----------
    out : path
        The folder (created if missing).
    option : str
        The option that named it, for error messages.

    Raises
    ------
    OutputError
        If the folder cannot be written or another batch is writing into it.
    """

    def __init__(self, out: str | Path, option: str = "--out") -> None:
        from emg_pipeline.sinks._output import probe_folder

        self.option = option
        self.out = probe_folder(out, option)
        self.episodes_dir = self.out / EPISODES_DIR
        self._lock = self._take_lock()

    def _take_lock(self) -> int | None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return None
        path = self.out / _LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError.from_os(self.option, path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputError(self.option, self.out,
                              "another batch is writing into this folder") from None
        return fd

    def close(self) -> None:
        """Release the folder's lock."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def path_for(self, recording: str, subject: str) -> Path:
        """The episode file of a recording."""
        folder = self.episodes_dir / f"subject={quote(subject, safe='')}"
        return folder / f"{_safe(recording)}.parquet"

    def remove_temporary(self) -> int:
        """Remove the temporary files a killed run left behind; return how many."""
        removed = 0
        for folder in (self.out, self.episodes_dir, *self.episodes_dir.glob("subject=*")):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if _TEMP.match(path.name) and path.is_file():
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def scan(self) -> dict[str, StoredResult]:
        """The complete results in the folder, by recording name (unreadable files are left out)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        found: dict[str, StoredResult] = {}
        for path in sorted(self.episodes_dir.glob("subject=*/*.parquet")):
            if path.name.startswith("."):
                continue
            try:
                meta = pq.read_schema(path).metadata or {}
                record = json.loads(meta[_META])
                stored = StoredResult(path, str(record["key"]), str(record["recording"]),
                                      str(record["subject"]), dict(record["row"]))
            except (OSError, KeyError, ValueError, TypeError, pa.ArrowException):
                continue  # not ours, or damaged: the recording is processed again
            found[stored.recording] = stored
        return found

    def _write_atomically(self, table: pa.Table, target: Path) -> None:
        import pyarrow.parquet as pq

        temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, temporary)
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise OutputError.from_os(self.option, target, exc) from None

    def write(self, outcome: RecordingOutcome) -> Path:
        """Write a recording's episodes and row as its episode file; return the file."""
        import pyarrow as pa

        episodes = outcome.episodes if outcome.episodes is not None else empty_episodes()
        table = pa.Table.from_pandas(episodes, schema=episode_schema(), preserve_index=False)
        record = {"key": outcome.key, "recording": outcome.recording, "subject": outcome.subject,
                  "row": {k: _plain(v) for k, v in outcome.row.items()}}
        table = table.replace_schema_metadata({_META: json.dumps(record).encode()})
        target = self.path_for(outcome.recording, outcome.subject)
        self._write_atomically(table, target)
        return target

    def write_recordings(self, frame: pd.DataFrame) -> Path:
        """Write ``recordings.parquet`` (atomically)."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, schema=recording_schema(), preserve_index=False)
        target = self.out / RECORDINGS_FILE
        self._write_atomically(table.replace_schema_metadata(None), target)
        return target

    def prune(self, keep: Iterable[Path]) -> int:
        """Remove episode files not in ``keep`` (no longer in the batch); return how many."""
        kept = {Path(p).resolve() for p in keep}
        removed = 0
        for path in self.episodes_dir.glob("subject=*/*.parquet"):
            if path.resolve() not in kept:
                path.unlink(missing_ok=True)
                removed += 1
        for folder in self.episodes_dir.glob("subject=*"):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return removed

    def read(self, paths: Sequence[Path]) -> pd.DataFrame:
        """The episodes of the given files (their subject from their folder)."""
        import pyarrow.parquet as pq

        parts = [(unquote(p.parent.name.removeprefix("subject=")),
                  pq.read_table(p).replace_schema_metadata(None).to_pandas()) for p in paths]
        return episodes_frame(parts)
