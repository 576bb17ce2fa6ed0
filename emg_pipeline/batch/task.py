"""One recording of a batch, as a worker runs it: the same streaming pipeline as ``detect``.

:func:`process_recording` is the task the engine sends to a worker with a
:class:`~emg_pipeline.batch.inputs.RecordingSpec` (a path, never samples). It

1. digests the file's content, and with the code version, the settings and the
   recording's metadata makes the result's **key**; when the key equals the one
   stored by an earlier run, it stops there (the result is reused);
2. otherwise opens the recording, streams it chunk by chunk through a
   :class:`~emg_pipeline.pipeline.Pipeline` with :func:`~emg_pipeline.run.run`
   into an :class:`EpisodeCollector` (memory bounded by the chunk and the
   episodes, never the file), and returns the episode table and the
   recording's row;
3. turns any error into that row's ``error``: one bad file never fails a batch.

Nothing here imports Dask: the same function runs in a test, a notebook or a
worker.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

import emg_pipeline
from emg_pipeline.errors import RecordingWarning, SiteError
from emg_pipeline.events import Episode
from emg_pipeline.labels import Label
from emg_pipeline.settings import PipelineSettings
from emg_pipeline.sinks.episodes import EPISODE_FILE_COLUMNS, episode_table
from emg_pipeline.sites import SessionSettings, SiteMap, resolve_sites

from .inputs import RecordingSpec

if TYPE_CHECKING:
    from emg_pipeline.pipeline import ChunkResult
    from emg_pipeline.run import RunSummary, StreamInfo

__all__ = [
    "DEFAULT_CHUNK_S",
    "EPISODE_COLUMNS",
    "RECORDING_COLUMNS",
    "EpisodeCollector",
    "RecordingOutcome",
    "code_version",
    "content_digest",
    "process_recording",
    "result_key",
    "settings_digest",
    "source_digest",
]

#: chunk fed to the pipeline by a batch: results do not depend on it, and larger
#: chunks cost less per sample (``replay --fast`` uses the same)
DEFAULT_CHUNK_S = 1.0

#: columns of the episode dataset, in order (``subject`` is its partition)
EPISODE_COLUMNS: tuple[str, ...] = ("recording", *EPISODE_FILE_COLUMNS, "onset_utc")

#: columns of ``recordings.parquet``, in order
RECORDING_COLUMNS: tuple[str, ...] = (
    "recording", "subject", "path", "format", "fs", "n_channels", "channels", "unit",
    "start_time", "duration_s", "n_samples", "n_episodes", "n_twitches", "n_spasms",
    "spasm_s", "n_alerts", "n_not_muscle", "artefact_s", "no_signal_s", "bridged_samples",
    "lost_samples", "mains_hz", "warning", "error", "error_type", "code_version", "settings_digest",
    "content_digest", "key", "wall_s", "worker", "reused",
)

#: bytes read at a time while digesting a file
_DIGEST_BLOCK = 1 << 20


@functools.cache
def source_digest() -> str:
    """SHA-256 of the package's Python sources (file names and contents), in hex.

    Computed once per process: the code a process runs is the code it imported.
    """
    package = Path(emg_pipeline.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def code_version() -> str:
    """The version of the code that computes results: release and a digest of the sources.

    Examples
    --------
    >>> version = code_version()
    >>> version.startswith(emg_pipeline.__version__ + "+"), len(version.split("+")[1])
    (True, 12)
    """
    return f"{emg_pipeline.__version__}+{source_digest()[:12]}"


def settings_digest(settings: PipelineSettings) -> str:
    """A short digest of every detection setting.

    Examples
    --------
    >>> default, other = PipelineSettings(), PipelineSettings(window_s=0.05)
    >>> settings_digest(default) == settings_digest(PipelineSettings())
    True
    >>> settings_digest(default) == settings_digest(other)
    False
    """
    text = json.dumps(dataclasses.asdict(settings), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _companions(path: Path) -> list[Path]:
    """The files a recording is made of: itself, and a WFDB header's signal files."""
    files = [path]
    if path.suffix.lower() == ".hea":
        files += sorted(p for p in path.parent.glob(f"{path.stem}.*")
                        if p.suffix.lower() == ".dat" and p.is_file())
    return files


def content_digest(path: str | Path) -> str:
    """SHA-256 of a recording's content (a WFDB record's ``.dat`` files included), in hex.

    Raises
    ------
    OSError
        If a file cannot be read.
    """
    digest = hashlib.sha256()
    for part in _companions(Path(path)):
        digest.update(part.name.encode())
        with open(part, "rb") as handle:
            while block := handle.read(_DIGEST_BLOCK):
                digest.update(block)
    return digest.hexdigest()


def result_key(content: str, code: str, settings: str, metadata: str) -> str:
    """The key of a recording's result: it is reused only when all four are unchanged."""
    text = json.dumps([content, code, settings, metadata])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class EpisodeCollector:
    """A :class:`~emg_pipeline.run.Sink` that keeps the episodes of a stream as they end.

    The table at the end is the one ``detect`` writes (the same
    :func:`~emg_pipeline.sinks.episodes.episode_table`, so the same sites,
    wall-clock onset times and order), with full precision.

    Parameters
    ----------
    sites : SiteMap
        Channel sites and start time (the stream's start time fills in a
        missing one, as in ``detect``).

    Attributes
    ----------
    episodes : list of Episode
        Every episode that ended, in the order they ended.
    table : DataFrame or None
        The episode table, once the stream is closed.
    """

    def __init__(self, sites: SiteMap) -> None:
        self.sites = sites
        self.episodes: list[Episode] = []
        self.table: pd.DataFrame | None = None

    def open(self, info: StreamInfo) -> None:
        """Take the stream's start time if the sites have none."""
        if self.sites.start_time is None and info.start_time is not None:
            self.sites = dataclasses.replace(self.sites, start_time=info.start_time)

    def update(self, result: ChunkResult) -> None:
        """Keep the episodes that ended in this chunk."""
        self.episodes.extend(e.episode for e in result.events if e.episode is not None)

    def close(self, summary: RunSummary) -> None:
        """Build the episode table."""
        del summary
        self.table = episode_table(self.episodes, self.sites)


@dataclass(frozen=True)
class RecordingOutcome:
    """What a worker sends back for one recording.

    Attributes
    ----------
    recording, subject : str
        Which recording.
    key : str or None
        Its result key (None when its file could not be read).
    row : dict
        Its row of ``recordings.parquet`` (columns of :data:`RECORDING_COLUMNS`).
    episodes : DataFrame or None
        Its episodes (columns of :data:`EPISODE_COLUMNS`); None when reused.
    reused : bool
        The key matched the stored result: nothing was computed.
    cacheable : bool
        The result may be kept for a later run (False for errors that may not
        happen again: a file that could not be read, no memory).
    """

    recording: str
    subject: str
    key: str | None
    row: dict[str, Any]
    episodes: pd.DataFrame | None
    reused: bool = False
    cacheable: bool = True


def _one_line(exc: BaseException, path: Path | None = None) -> str:
    """The error in one line; without the file's path when it only repeats the recording's."""
    reason = getattr(exc, "reason", None)
    if path is not None and getattr(exc, "path", None) == path and isinstance(reason, str):
        return " ".join(reason.split()) or type(exc).__name__
    text = " ".join(str(exc).split())
    if path is not None and text.startswith(f"{path}: "):   # errors that name it first
        text = text[len(f"{path}: "):]
    return text or type(exc).__name__


def _empty_row(spec: RecordingSpec) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(RECORDING_COLUMNS)
    row.update(recording=spec.recording, subject=spec.subject, path=str(spec.path),
               reused=False)
    return row


def _sites_for(spec: RecordingSpec, channels: tuple[str, ...], info: object) -> SiteMap:
    """The recording's sites: its own channel names, then the given sites in precedence order."""
    for channel, _site, origin in spec.sites:
        if channel not in channels:
            raise SiteError(channel, f"{origin} names channel {channel!r}, but the recording "
                                     f"has {', '.join(map(repr, channels))}")
    session = SessionSettings(sites={ch: site for ch, site, _ in spec.sites},
                              start_time=spec.start_time, timezone=spec.timezone)
    return resolve_sites(channels, session=session, info=info)


def _onset_utc(onset_time: pd.Series) -> pd.Series:
    """ISO-8601 onset times (each with its own offset) as UTC instants; NaT when unknown."""
    moments = pd.to_datetime(onset_time.where(onset_time.notna() & (onset_time != ""), None),
                             utc=True, format="ISO8601")
    return moments.astype("datetime64[us, UTC]")


def episodes_of(table: pd.DataFrame, recording: str) -> pd.DataFrame:
    """The dataset's rows for an episode table written by ``detect``'s code.

    Adds ``recording`` and ``onset_utc``, gives every recording the
    ``onset_time`` column (empty when its start time is unknown) and plain
    text labels.
    """
    frame = table.copy()
    if "onset_time" not in frame:
        frame.insert(3, "onset_time", pd.Series([None] * len(frame), dtype=object))
    frame["label"] = [str(v) for v in frame["label"]]
    frame["pattern"] = [str(v) for v in frame["pattern"]]
    frame["unit"] = [str(v) for v in frame["unit"]]
    frame.insert(0, "recording", recording)
    frame["onset_utc"] = _onset_utc(frame["onset_time"]).to_numpy()
    return frame[list(EPISODE_COLUMNS)].reset_index(drop=True)


def process_recording(
    spec: RecordingSpec,
    settings: PipelineSettings,
    stored_key: str | None = None,
    chunk_s: float = DEFAULT_CHUNK_S,
) -> RecordingOutcome:
    """Run one recording through the streaming pipeline (the task of a batch).

    Parameters
    ----------
    spec : RecordingSpec
        The recording and its metadata.
    settings : PipelineSettings
        Detection settings.
    stored_key : str, optional
        The key of the result an earlier run stored for this recording: when
        it equals this run's key the recording is not processed again.
    chunk_s : float
        Chunk length fed to the pipeline (results do not depend on it).

    Returns
    -------
    RecordingOutcome
        Never raises for a bad recording: the error is in the row.
    """
    from emg_pipeline.pipeline import Pipeline
    from emg_pipeline.run import StreamInfo, run
    from emg_pipeline.sources.formats import open_recording

    started = time.perf_counter()
    row = _empty_row(spec)
    code, digest_of_settings = code_version(), settings_digest(settings)
    row.update(code_version=code, settings_digest=digest_of_settings,
               worker=f"{socket.gethostname()}:{os.getpid()}")

    def failed(exc: BaseException, key: str | None, cacheable: bool) -> RecordingOutcome:
        row.update(error=_one_line(exc, spec.path), error_type=type(exc).__name__,
                   wall_s=time.perf_counter() - started)
        return RecordingOutcome(spec.recording, spec.subject, key, row, None,
                                cacheable=cacheable and key is not None)

    try:
        content = content_digest(spec.path)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        return failed(OSError(f"cannot read the file: {reason}"), None, False)
    key = result_key(content, code, digest_of_settings, spec.metadata_digest())
    row.update(content_digest=content, key=key)
    if stored_key == key:
        row["wall_s"] = time.perf_counter() - started
        return RecordingOutcome(spec.recording, spec.subject, key, row, None, reused=True)
    try:
        with warnings.catch_warnings():
            # a salvaged file says what was lost in its info (the row's warning);
            # the worker's console need not repeat it
            warnings.simplefilter("ignore", RecordingWarning)
            # the stream option only where one is chosen: formats without streams take none
            chosen = {} if spec.stream is None else {"stream": spec.stream}
            with open_recording(spec.path, format=spec.format, fs=spec.fs, strict=spec.strict,
                                **chosen) as reader:
                info = reader.info
                row.update(format=info.format, fs=info.fs, n_channels=info.n_channels,
                           channels=list(info.channels), unit=info.unit)
                collector = EpisodeCollector(_sites_for(spec, info.channels, info))
                pipe = Pipeline(info.fs, info.channels, unit=info.unit, settings=settings)
                chunk = max(1, round(chunk_s * info.fs))
                summary = run(reader.iter_chunks(chunk), pipe, [collector],
                              info=StreamInfo.of(pipe, title=spec.recording,
                                                 start_time=info.start_time))
                partial = info.metadata.get("partial_read")
    except (OSError, MemoryError) as exc:
        return failed(exc, key, False)
    except Exception as exc:  # a bad recording, or a reader's bug on it: a row, never a crash
        # deterministic for this content, code and settings: kept, so a re-run skips it
        return failed(exc, key, True)
    if summary.interrupted or collector.table is None:   # stopped on the worker: not a result
        return failed(RuntimeError("the recording's run was interrupted"), key, False)
    episodes = episodes_of(collector.table, spec.recording)
    start = collector.sites.local_start()
    spasms = episodes["label"] == Label.SPASM
    row.update(
        start_time=None if start is None else start.isoformat(timespec="milliseconds"),
        duration_s=summary.duration_s, n_samples=summary.n_samples,
        n_episodes=len(episodes), n_twitches=int((~spasms).sum()), n_spasms=int(spasms.sum()),
        spasm_s=float(episodes.loc[spasms, "duration_s"].sum()), n_alerts=summary.n_alerts,
        n_not_muscle=len(summary.rejected),
        artefact_s=float(math.fsum(summary.artefact_s)),
        no_signal_s=float(math.fsum(summary.no_signal_s)),
        bridged_samples=int(sum(summary.bridged_samples)), lost_samples=summary.lost_samples,
        mains_hz=summary.mains_hz, warning=None if not partial else " ".join(str(partial).split()),
        wall_s=time.perf_counter() - started,
    )
    return RecordingOutcome(spec.recording, spec.subject, key, row, episodes)
