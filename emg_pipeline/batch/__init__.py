"""Study scale: many recordings through the streaming pipeline on Dask, one dataset, one diary.

:func:`batch` (and ``emg-pipeline batch INPUTS... --out DIR``) runs every
recording found in files, folders, globs or manifests through the same
streaming pipeline as ``detect``, one Dask task per recording, and gathers

- ``DIR/episodes/``: a Parquet dataset partitioned by subject, one row per
  episode (recording, subject, channel, site, onset and offset, onset time,
  label, pattern and features);
- ``DIR/recordings.parquet``: one row per recording (duration, channels, rate,
  counts, time in spasm, bursts rejected as not muscle, repaired and lost
  samples, artefact and no-signal time, code version, settings digest, wall
  time, and its error if it could not be read);
- ``DIR/report/``: the spasm diary of every subject, with an index.

A bad file is a row with its error, never a failed batch. Each result is
written atomically under a key made of the file's content, the code version,
the settings and the recording's metadata: running the same batch again
(after a kill, or with more recordings) computes only what is missing or
changed. Dask is imported only when a batch runs (``pip install
'emg-pipeline[batch]'``); see :mod:`emg_pipeline.batch.engine` for clusters.

Modules: :mod:`.inputs` (finding recordings, manifests), :mod:`.task` (one
recording, as a worker runs it), :mod:`.engine` (Dask), :mod:`.store` (the
output folder), :mod:`.job` (the batch from start to end), :mod:`.diary` (the
report), :mod:`.progress`.

Why one task per recording, never a recording cut in time ranges with a
warm-up: the band-pass, notch and envelope filters are recursive and the
noise floor remembers the last ten minutes, so a range started cold converges
towards the values of one pass but not to its bits (on a simulated 30-minute
recording cut in half with a 10-minute warm-up, the same 286 episodes were
found, none of them bit-identical in every feature). A recording is streamed in
bounded memory however long it is, so whole recordings cost nothing in memory
and keep the results identical to ``detect``; a study has many recordings to
spread over the workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from emg_pipeline.settings import PipelineSettings
from emg_pipeline.sites import SessionSettings

from .inputs import FoundRecordings, RecordingSpec, find_recordings
from .job import BatchResult
from .task import DEFAULT_CHUNK_S, code_version

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

__all__ = ["BatchResult", "FoundRecordings", "RecordingSpec", "batch", "find_recordings"]


def _settings(settings: PipelineSettings | Mapping[str, Any] | None) -> PipelineSettings:
    if settings is None:
        return PipelineSettings()
    if isinstance(settings, PipelineSettings):
        return settings
    return PipelineSettings.from_kwargs(**dict(settings))


def batch(
    paths: str | Path | pd.DataFrame | Sequence[str | Path | pd.DataFrame],
    settings: PipelineSettings | Mapping[str, Any] | None = None,
    client: Client | None = None,
    *,
    out: str | Path | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    subject: str | None = None,
    sites: Iterable[str] = (),
    session: str | Path | SessionSettings | None = None,
    timezone: str | tzinfo | None = None,
    format: str | None = None,
    fs: float | None = None,
    strict: bool = False,
    stream: str | None = None,
    report: bool = True,
    title: str = "Spasm diary",
    long_spasm_s: float | None = None,
    recurring_days: int | None = None,
    chunk_s: float = DEFAULT_CHUNK_S,
    progress: TextIO | None = None,
    announce: Callable[[str], None] | None = None,
) -> BatchResult:
    """Detect the episodes of many recordings on Dask and gather them in pandas tables.

    Parameters
    ----------
    paths : path, glob, DataFrame, or a sequence of them
        Recordings, folders (searched recursively), globs, and manifests (CSV
        files, or tables, with a ``path`` column and optional ``recording``,
        ``subject``, ``sites``, ``session``, ``start_time``, ``timezone``);
        see :mod:`emg_pipeline.batch.inputs`.
    settings : PipelineSettings or mapping, optional
        Detection settings (default: the defaults).
    client : distributed.Client, optional
        Run on this client's cluster. Default: the scheduler at ``scheduler``
        or ``DASK_SCHEDULER_ADDRESS``, else an embedded cluster with
        ``workers`` processes (default: one per core), closed at the end.
    out : path, optional
        Output folder (``episodes/``, ``recordings.parquet``, ``report/``):
        results are written as they come, and a later batch into the same
        folder reuses those whose file, code, settings and metadata are
        unchanged. Without it, nothing is written.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://HOST:PORT``).
    workers : int, optional
        Worker processes of the embedded cluster.
    subject, sites, session, timezone
        Batch-wide metadata, below a manifest row's: the subject (default: the
        folder holding each file), ``CH=SITE`` texts, a session file, the zone
        of local times.
    format, fs, strict, stream
        As for :func:`~emg_pipeline.sources.formats.open_recording`.
    report : bool
        Write the diary (``out/report``) when there is an output folder.
    title, long_spasm_s, recurring_days
        Of the diary (see :func:`emg_pipeline.report.summarise`; None: its defaults).
    chunk_s : float
        Chunk length fed to the pipeline (results do not depend on it).
    progress : text file, optional
        Where to draw the progress line (e.g. ``sys.stderr``).
    announce : callable, optional
        Called with one line for each thing worth saying (the cluster and its
        dashboard, results reused).

    Returns
    -------
    BatchResult
        ``episodes`` and ``recordings`` tables; recordings that could not be
        read are rows with their ``error``.

    Raises
    ------
    MissingDependencyError
        Without Dask or pyarrow (``pip install 'emg-pipeline[batch]'``).
    UsageError, ManifestError, SiteError, ConfigError
        On inputs that name nothing, a bad manifest or a bad setting.
    OutputError
        If ``out`` cannot be written (or another batch is writing into it).
    ClusterError
        If the scheduler cannot be reached.

    Examples
    --------
    In a notebook, over a folder of nights, on the machine's cores::

        import emg_pipeline
        result = emg_pipeline.batch("study/", out="study-results")
        result.recordings[["recording", "duration_s", "n_spasms", "error"]]
        result.episodes.groupby(["subject", "label"]).size()
    """
    from .engine import Engine, require_dask
    from .job import run_batch
    from .store import ResultStore

    require_dask()
    chosen = _settings(settings)
    out_path = Path(out) if out is not None else None
    found = find_recordings(paths, subject=subject, sites=sites, session=session,
                            timezone=timezone, format=format, fs=fs, strict=strict,
                            stream=stream, exclude=[out_path] if out_path is not None else ())
    say = announce or (lambda _line: None)
    store = ResultStore(out_path) if out_path is not None else None
    try:
        with Engine(client, scheduler=scheduler, workers=workers) as engine:
            if found.skipped:
                say(f"skipped {len(found.skipped)} file(s) that are not recordings "
                    f"(e.g. {found.skipped[0].name})")
            say(f"running on {engine.describe()}")
            versions = set(engine.check_workers().values())
            if versions - {code_version()}:
                say(f"note: the workers run emg-pipeline {', '.join(sorted(versions))} and this "
                    f"process {code_version()}; each recording's row says which")
            return run_batch(found.specs, chosen, engine, store=store, chunk_s=chunk_s,
                             report=report, title=title, long_spasm_s=long_spasm_s,
                             recurring_days=recurring_days, progress=progress, announce=say)
    finally:
        if store is not None:
            store.close()
