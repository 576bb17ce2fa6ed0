"""What a batch runs over: recordings found in files, folders, globs and manifests.

:func:`find_recordings` turns the inputs of ``emg-pipeline batch`` into one
:class:`RecordingSpec` per recording, each with its name, subject, channel
sites, start time and zone. Nothing is read beyond the first bytes of a file
(to tell a recording from a note, an episode file or a manifest): the recordings
themselves are opened by the workers.

Inputs
------
- a **file**: a recording in any format ``replay`` reads, or a CSV **manifest**
  (a table whose header has a ``path`` column);
- a **folder**: every recording below it, recursively. Hidden files and
  folders, the batch's own output folder, episode files, manifests, text files
  that no reader recognises and WFDB ``.dat`` files (their ``.hea`` header is
  the record) are skipped;
- a **glob** (``data/*/night*.edf``, ``**`` allowed): every match.

A manifest row gives per-recording metadata in the columns of
:data:`MANIFEST_COLUMNS` (only ``path`` is required; relative paths are read
from the manifest's folder)::

    path,subject,sites,start_time,timezone
    P01/night1.bdf,P01,ch1=calf; ch2=back,2024-05-03T22:10:00,Europe/Paris
    P02/night1.edf,P02,,,

``sites`` is ``CHANNEL=SITE`` pairs separated by ``;``; ``session`` names a
session file (TOML or JSON, see :mod:`emg_pipeline.sites`); ``recording``
names the recording (default: its path as written).

Names and subjects
------------------
A recording is named by where it was found: ``FOLDER/relative/path`` for a
folder input (``FOLDER`` is the folder's own name), ``PARENT/file`` for a file
or a glob's match below its fixed part, the ``recording`` column or the path as
written for a manifest. Its subject is the manifest's ``subject``, else the
batch-wide subject, else the name of the folder holding the file.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp()) / "study"
>>> (root / "P01").mkdir(parents=True)
>>> _ = (root / "P01" / "night1.csv").write_text("time,calf\\n0.0,1\\n0.001,2\\n")
>>> _ = (root / "notes.txt").write_text("electrodes changed on day 2\\n")
>>> found = find_recordings([root])
>>> [(s.recording, s.subject) for s in found.specs], [p.name for p in found.skipped]
([('study/P01/night1.csv', 'P01')], ['notes.txt'])
"""

from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

from emg_pipeline.errors import ManifestError, RecordingError, SiteError, UsageError
from emg_pipeline.sites import (
    SessionSettings,
    load_session,
    parse_site_option,
    parse_start_time,
    parse_timezone,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MANIFEST_COLUMNS",
    "FoundRecordings",
    "ManifestEntry",
    "RecordingSpec",
    "find_recordings",
    "is_manifest",
    "read_manifest",
]

#: columns a manifest may have (``path`` is required)
MANIFEST_COLUMNS: tuple[str, ...] = (
    "path", "recording", "subject", "sites", "session", "start_time", "timezone",
)

#: file endings of text tables: in a folder, such a file is a recording only if a
#: reader recognises it (notes and READMEs are skipped)
_TEXT_ENDINGS = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
#: the subject of a recording with none (a file at the root of the file system)
_NO_SUBJECT = "unknown"


@dataclass(frozen=True)
class RecordingSpec:
    """One recording of a batch: where it is and what is known about it.

    It is what a worker is sent (a path and a few values, never samples).

    Attributes
    ----------
    path : Path
        The recording file (absolute).
    recording : str
        Its name in the results (unique within the batch).
    subject : str
        Whose recording it is: the partition of the episode dataset.
    sites : tuple of (channel, site, origin)
        Channel sites given for it, lowest precedence first; ``origin`` says
        where each came from, for error messages.
    start_time : datetime or None
        Wall-clock time of the first sample, when given (else the file's own).
    timezone : tzinfo or None
        Zone of its local times, when given.
    format : str or None
        Forced file format.
    fs : float or None
        Sampling rate for files that do not state one (or a check of theirs).
    strict : bool
        Refuse a damaged file instead of reading the part that is there.
    stream : str or None
        Which stream of a multi-stream file (XDF) to read (default: its EMG stream).
    """

    path: Path
    recording: str
    subject: str
    sites: tuple[tuple[str, str, str], ...] = ()
    start_time: datetime | None = None
    timezone: tzinfo | None = None
    format: str | None = None
    fs: float | None = None
    strict: bool = False
    stream: str | None = None

    def metadata_digest(self) -> str:
        """A digest of everything here that shapes the results (not the file's content).

        Examples
        --------
        >>> a = RecordingSpec(Path("/data/n1.edf"), "data/n1.edf", "P01")
        >>> b = RecordingSpec(Path("/data/n1.edf"), "data/n1.edf", "P02")
        >>> len(a.metadata_digest()), a.metadata_digest() == b.metadata_digest()
        (16, False)
        """
        text = json.dumps({
            "recording": self.recording, "subject": self.subject,
            "sites": [list(s[:2]) for s in self.sites],
            "start_time": None if self.start_time is None else self.start_time.isoformat(),
            "timezone": None if self.timezone is None else str(self.timezone),
            "format": self.format, "fs": self.fs, "strict": self.strict, "stream": self.stream,
        }, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FoundRecordings:
    """What :func:`find_recordings` found.

    Attributes
    ----------
    specs : tuple of RecordingSpec
        The recordings, in the order found (inputs in order, folders sorted).
    skipped : tuple of Path
        Files in the folders scanned that are not recordings (episode files,
        manifests, text no reader recognises).
    """

    specs: tuple[RecordingSpec, ...]
    skipped: tuple[Path, ...] = ()


@dataclass
class _Defaults:
    """Batch-wide values, below every manifest row's."""

    subject: str | None
    sites: list[tuple[str, str, str]] = field(default_factory=list)
    start_time: datetime | None = None
    timezone: tzinfo | None = None
    format: str | None = None
    fs: float | None = None
    strict: bool = False
    stream: str | None = None


def _recording_endings() -> tuple[str, ...]:
    from emg_pipeline.sources.formats import READERS

    return tuple(sorted({ext.lower() for reader in READERS for ext in reader.extensions}))


def _header_cells(path: Path) -> list[str]:
    """Cells of the first non-empty line of a text file (``[]`` for binary or unreadable)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return []
    if b"\0" in head:
        return []
    text = head.decode("utf-8-sig", errors="replace")
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    for delimiter in (",", "\t", ";"):
        if delimiter in line:
            return [c.strip().strip('"').strip().lower() for c in line.split(delimiter)]
    return [line.strip().strip('"').strip().lower()]


def is_manifest(path: str | Path) -> bool:
    """Tell whether ``path`` is a batch manifest: a CSV/TSV whose header names ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "study.csv"
    >>> _ = p.write_text("path,subject\\nn1.edf,P01\\n")
    >>> is_manifest(p)
    True
    """
    path = Path(path)
    if not path.is_file() or not path.name.lower().endswith((".csv", ".tsv", ".txt")):
        return False
    return "path" in _header_cells(path)


def _split_sites(text: str, origin: str) -> list[tuple[str, str, str]]:
    out = []
    for part in text.split(";"):
        if part.strip():
            channel, site = parse_site_option(part)
            out.append((channel, site, origin))
    return out


@dataclass(frozen=True)
class ManifestEntry:
    """One row of a manifest, checked.

    Attributes
    ----------
    path : Path
        The recording (absolute).
    written : str
        The path as the manifest wrote it.
    recording, subject : str or None
        Name and subject, when given.
    sites : tuple of (channel, site, origin)
        Sites from the row's session file, then from its ``sites`` column.
    start_time : datetime or None
        From the ``start_time`` column, else the row's session file.
    timezone : tzinfo or None
        From the ``timezone`` column, else the row's session file.
    """

    path: Path
    written: str
    recording: str | None
    subject: str | None
    sites: tuple[tuple[str, str, str], ...]
    start_time: datetime | None
    timezone: tzinfo | None


def read_manifest(source: str | Path | pd.DataFrame) -> list[ManifestEntry]:
    """Read and check a manifest: one entry per row, paths made absolute.

    Parameters
    ----------
    source : path or DataFrame
        A CSV (or TSV) file whose relative paths are read from its folder, or
        a table with the same columns (relative paths from the current folder).

    Returns
    -------
    list
        One entry per row, in order.

    Raises
    ------
    ManifestError
        On a missing ``path`` column, an unknown column, an empty path, or a
        bad site, start time, time zone or session file (the row is named).
    """
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        where, base = Path("manifest table"), Path.cwd()
        header = [str(c).strip().lower() for c in source.columns]
        rows = [["" if _missing(v) else str(v) for v in rec]
                for rec in source.itertuples(index=False)]
    else:
        where = Path(source)
        base = where.resolve().parent
        try:
            text = where.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(where, f"cannot read the manifest: {exc}") from None
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise ManifestError(where, "empty manifest: expected a header with a path column")
        delimiter = next((d for d in (",", "\t", ";") if d in lines[0]), ",")
        table = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
        header = [c.strip().lower() for c in table[0]]
        rows = table[1:]
    if "path" not in header:
        raise ManifestError(where, "no 'path' column: a manifest needs a header naming "
                                   f"{', '.join(MANIFEST_COLUMNS)} (path required)", column="path")
    unknown = [c for c in header if c not in MANIFEST_COLUMNS]
    if unknown:
        raise ManifestError(where, f"unknown column(s) {', '.join(map(repr, unknown))}; a "
                                   f"manifest has {', '.join(MANIFEST_COLUMNS)}", column=unknown[0])
    entries = []
    for number, cells in enumerate(rows, start=1):
        if len(cells) > len(header):
            raise ManifestError(where, f"{len(cells)} cells for {len(header)} columns (a cell "
                                       "holding the delimiter needs quotes)", row=number)
        row = {name: (cells[i].strip() if i < len(cells) else "")
               for i, name in enumerate(header)}
        entries.append(_manifest_row(where, base, number, row))
    return entries


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _manifest_row(where: Path, base: Path, number: int, row: Mapping[str, str]) -> ManifestEntry:
    def fail(column: str, reason: str) -> ManifestError:
        return ManifestError(where, reason, row=number, column=column, value=row.get(column))

    written = row["path"]
    if not written:
        raise fail("path", "empty path")
    path = Path(written).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    sites: list[tuple[str, str, str]] = []
    start = zone = None
    try:
        if row.get("session"):
            session_path = Path(row["session"]).expanduser()
            session_path = session_path if session_path.is_absolute() else base / session_path
            session = load_session(session_path)
            sites += [(ch, site, f"session file {session_path.name}")
                      for ch, site in session.sites.items()]
            start, zone = session.start_time, session.timezone
    except SiteError as exc:
        raise fail("session", str(exc)) from None
    try:
        sites += _split_sites(row.get("sites", ""), "the manifest's sites")
    except SiteError as exc:
        raise fail("sites", str(exc)) from None
    if row.get("start_time"):
        try:
            start = parse_start_time(row["start_time"])
        except SiteError as exc:
            raise fail("start_time", str(exc)) from None
    if row.get("timezone"):
        try:
            zone = parse_timezone(row["timezone"])
        except SiteError as exc:
            raise fail("timezone", str(exc)) from None
    return ManifestEntry(
        path=path, written=Path(written).as_posix(), recording=row.get("recording") or None,
        subject=row.get("subject") or None, sites=tuple(sites), start_time=start, timezone=zone,
    )


def _scan(folder: Path, exclude: Sequence[Path], skipped: list[Path]) -> Iterator[Path]:
    """Recordings below ``folder``, sorted, recursively (see the module docstring)."""
    endings = _recording_endings()
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (here / d).resolve() not in exclude)
        for name in sorted(files):
            path = here / name
            lower = name.lower()
            if name.startswith(".") or not lower.endswith(endings):
                continue
            if lower.endswith(".dat"):
                continue   # WFDB signal file: its .hea header is the record
            if lower.endswith(_TEXT_ENDINGS) and not _is_text_recording(path):
                skipped.append(path)
                continue
            yield path


def _is_text_recording(path: Path) -> bool:
    """Whether a text file in a folder is a recording, not notes, episodes or a manifest.

    Tables (``.csv``, ``.tsv``) are, unless they are episode files or
    manifests: a damaged one must be reported, not skipped. A ``.txt`` file is
    when a device format recognises it, or when its first lines are numbers.
    """
    from emg_pipeline.sinks.episodes import is_episode_file
    from emg_pipeline.sources.formats import detect_format

    if is_episode_file(path) or is_manifest(path):
        return False
    if not path.name.lower().endswith(".txt"):
        return True
    try:
        if detect_format(path) != "csv":
            return True
    except RecordingError:
        return False
    return _numeric_lines(path) >= 2


def _numeric_lines(path: Path) -> int:
    """How many of the first lines of a text file (comments aside) hold only numbers."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096).splitlines()[:20]
    except OSError:
        return 0
    return sum(1 for line in head if line.strip() and not line.lstrip().startswith("#")
               and all(_is_number(cell) for cell in re.split(r"[,;\t ]+", line.strip())))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _glob_base(pattern: str) -> Path:
    """The part of a glob before its first wildcard, as a folder."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _name_below(base: Path, path: Path) -> str:
    base = base.resolve()
    label = base.name or base.as_posix().strip("/") or "root"
    return f"{label}/{path.resolve().relative_to(base).as_posix()}"


def _file_name(path: Path) -> str:
    path = path.resolve()
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _subject_of(path: Path) -> str:
    return path.resolve().parent.name or _NO_SUBJECT


def find_recordings(
    inputs: str | Path | pd.DataFrame | Sequence[str | Path | pd.DataFrame],
    *,
    subject: str | None = None,
    sites: Iterable[str] = (),
    session: str | Path | SessionSettings | None = None,
    timezone: str | tzinfo | None = None,
    format: str | None = None,
    fs: float | None = None,
    strict: bool = False,
    stream: str | None = None,
    exclude: Iterable[str | Path] = (),
) -> FoundRecordings:
    """Find the recordings of a batch and give each its name, subject and metadata.

    Parameters
    ----------
    inputs : path, glob, DataFrame, or a sequence of them
        Recordings, folders (recursive), globs, manifests (CSV files or
        tables); see the module docstring.
    subject : str, optional
        Subject of every recording a manifest does not assign (default: the
        name of the folder holding the file).
    sites : iterable of str
        ``CH=SITE`` texts for every recording (a manifest row's sites win).
    session : path or SessionSettings, optional
        A session file for every recording: its sites, and its time zone; its
        start time only when the batch has a single recording.
    timezone : str or tzinfo, optional
        Zone of local times for every recording (a manifest row's wins).
    format, fs, strict, stream : optional
        As for :func:`~emg_pipeline.sources.formats.open_recording`, for every recording.
    exclude : iterable of path
        Folders never scanned (the batch's output folder).

    Returns
    -------
    FoundRecordings

    Raises
    ------
    UsageError
        If an input names nothing, a glob matches nothing, nothing is found,
        or two recordings would get the same name.
    ManifestError, SiteError
        On a bad manifest, site, session file or time zone.
    """
    import pandas as pd

    items: list[str | Path | pd.DataFrame]
    if isinstance(inputs, str | Path | pd.DataFrame):
        items = [inputs]
    else:
        items = list(inputs)
    if not items:
        raise UsageError("no inputs: give recordings, folders, globs or a manifest")
    defaults = _Defaults(subject=subject or None, format=format, fs=fs, strict=strict,
                         stream=stream)
    if session is not None:
        loaded = session if isinstance(session, SessionSettings) else load_session(session)
        origin = "the session file" if isinstance(session, SessionSettings) else \
            f"session file {Path(session).name}"
        defaults.sites += [(ch, site, origin) for ch, site in loaded.sites.items()]
        defaults.start_time, defaults.timezone = loaded.start_time, loaded.timezone
    defaults.sites += [(*parse_site_option(text), "--site") for text in sites]
    if timezone is not None:
        defaults.timezone = parse_timezone(timezone) if isinstance(timezone, str) else timezone
    excluded = [Path(p).resolve() for p in exclude]

    specs: list[RecordingSpec] = []
    skipped: list[Path] = []
    seen: set[Path] = set()

    def add(path: Path, name: str, row: ManifestEntry | None = None) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        specs.append(_spec(key, name, defaults, row))

    for item in items:
        if isinstance(item, pd.DataFrame):
            for row in read_manifest(item):
                add(row.path, row.recording or _manifest_name(row), row)
            continue
        text = str(item)
        path = Path(text).expanduser()
        if path.is_file():
            if is_manifest(path):
                for row in read_manifest(path):
                    add(row.path, row.recording or _manifest_name(row), row)
            else:
                add(path, _file_name(path))
        elif path.is_dir():
            for found in _scan(path, excluded, skipped):
                add(found, _name_below(path, found))
        elif glob.has_magic(text):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
            if not matches:
                raise UsageError(f"{text}: no file matches this pattern")
            base = _glob_base(os.path.expanduser(text))
            for match in map(Path, matches):
                if match.is_dir():
                    for found in _scan(match, excluded, skipped):
                        add(found, _name_below(match, found))
                elif match.is_file() and not is_manifest(match):
                    add(match, _name_below(base, match))
        else:
            raise UsageError(f"{text}: no such file or folder")
    if not specs:
        what = ", ".join(str(i) for i in items if not isinstance(i, pd.DataFrame)) or "the table"
        raise UsageError(f"no recordings found in {what}")
    if defaults.start_time is not None and len(specs) > 1:
        raise UsageError("the session file's start_time would apply to every recording: give "
                         "each recording its start_time in a manifest instead")
    _check_unique(specs)
    return FoundRecordings(tuple(specs), tuple(skipped))


def _manifest_name(row: ManifestEntry) -> str:
    written = Path(row.written)
    return _file_name(row.path) if written.is_absolute() or ".." in written.parts \
        else written.as_posix()


def _spec(path: Path, name: str, defaults: _Defaults, row: ManifestEntry | None) -> RecordingSpec:
    sites = list(defaults.sites)
    start, zone = defaults.start_time, defaults.timezone
    subject = defaults.subject
    if row is not None:
        sites += row.sites
        start = row.start_time or start
        zone = row.timezone or zone
        subject = row.subject or subject
    return RecordingSpec(
        path=path, recording=name, subject=subject or _subject_of(path), sites=tuple(sites),
        start_time=start, timezone=zone, format=defaults.format, fs=defaults.fs,
        strict=defaults.strict, stream=defaults.stream,
    )


def _check_unique(specs: Sequence[RecordingSpec]) -> None:
    by_name: dict[str, Path] = {}
    for spec in specs:
        other = by_name.setdefault(spec.recording, spec.path)
        if other != spec.path:
            raise UsageError(
                f"two recordings would both be named {spec.recording!r} ({other} and "
                f"{spec.path}): give their common folder as the input, or name them in a "
                "manifest's recording column"
            )
