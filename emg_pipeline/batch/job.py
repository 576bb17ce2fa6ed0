"""A batch from start to end: recordings to the engine, results to the output folder.

:func:`run_batch` sends one :func:`~emg_pipeline.batch.task.process_recording`
task per recording (largest files first, so that the last task to finish is a
short one), passing each the key of the result an earlier run stored for it;
as results come back it writes each recording's file at once (so an
interrupted batch keeps everything finished), draws the progress, and at the
end writes ``recordings.parquet`` and the report. :class:`BatchResult` is what
it returns, and what :meth:`BatchResult.load` reads back from a folder.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pandas as pd

from emg_pipeline.settings import PipelineSettings

from .inputs import RecordingSpec
from .progress import BatchProgress, duration_text, signal_text
from .store import (
    EPISODES_DIR,
    RECORDINGS_FILE,
    REPORT_DIR,
    ResultStore,
    arrow_to_pandas,
    episodes_frame,
    read_episode_dataset,
    recordings_frame,
)
from .task import DEFAULT_CHUNK_S, RECORDING_COLUMNS, RecordingOutcome, process_recording

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["BatchResult", "run_batch"]


@dataclass(frozen=True)
class BatchResult:
    """The results of a batch, as pandas tables.

    Attributes
    ----------
    episodes : DataFrame
        One row per episode: ``recording``, ``subject``, ``channel``, ``site``,
        ``onset_s``, ``onset_time`` (ISO-8601 local time with its offset, when
        the start time is known), ``offset_s``, ``duration_s``, ``label``,
        ``pattern``, the features, and ``onset_utc``.
    recordings : DataFrame
        One row per recording: duration, channels, rate, counts, time in
        spasm, bridged and lost samples, artefact and no-signal time, code
        version, settings digest, wall time, ``reused`` (taken from an earlier
        run), and ``error`` (None when it was read).
    out : Path or None
        The output folder, if the batch wrote one.
    report : Path or None
        The report's index page, if one was written.
    elapsed_s : float
        Wall-clock time from the first task sent to the last result.
    """

    episodes: pd.DataFrame
    recordings: pd.DataFrame
    out: Path | None = None
    report: Path | None = None
    elapsed_s: float = math.nan

    @property
    def errors(self) -> pd.DataFrame:
        """The recordings that could not be read, with their error."""
        return self.recordings[self.recordings["error"].notna()]

    @property
    def n_reused(self) -> int:
        """Recordings whose result was taken from an earlier run."""
        return int(self.recordings["reused"].fillna(False).astype(bool).sum())

    def totals_line(self) -> str:
        """One line: recordings, signal hours, episodes, time and throughput.

        The throughput counts the recordings processed by this run, not those reused.
        """
        recs = self.recordings
        n = len(recs)
        errors = len(self.errors)
        reused = self.n_reused
        processed = n - reused - errors
        total_s = float(recs["duration_s"].fillna(0.0).sum())
        labels = self.episodes["label"]
        twitches, spasms = int((labels == "twitch").sum()), int((labels == "spasm").sum())
        text = (f"batch: {n} recording{'s' if n != 1 else ''} ({processed} processed, "
                f"{reused} reused, {errors} not read), {signal_text(total_s)} of signal, "
                f"{twitches} twitch{'es' if twitches != 1 else ''} and "
                f"{spasms} spasm{'s' if spasms != 1 else ''}")
        if processed and math.isfinite(self.elapsed_s) and self.elapsed_s > 0:
            fresh = ~recs["reused"].fillna(False).astype(bool)
            signal = float(recs.loc[fresh, "duration_s"].fillna(0.0).sum())
            text += (f" in {duration_text(self.elapsed_s)}: {signal / self.elapsed_s:.0f}x "
                     f"real time, {processed / self.elapsed_s:.2f} recordings/s")
        if self.out is not None:
            text += f" -> {self.out}"
        return text

    @classmethod
    def load(cls, out: str | Path) -> BatchResult:
        """Read the results a batch wrote into ``out``.

        Raises
        ------
        FileNotFoundError
            If ``out`` holds no ``recordings.parquet``.
        """
        import pyarrow.parquet as pq

        folder = Path(out)
        recordings = arrow_to_pandas(pq.read_table(folder / RECORDINGS_FILE))
        episodes = read_episode_dataset(folder / EPISODES_DIR)
        report = folder / REPORT_DIR / "index.html"
        return cls(episodes, recordings, folder, report if report.is_file() else None)


def _lost(spec: RecordingSpec, exc: BaseException) -> RecordingOutcome:
    """The row of a recording whose task failed outside the pipeline (a worker lost)."""
    row: dict[str, Any] = dict.fromkeys(RECORDING_COLUMNS)
    text = " ".join(str(exc).split()) or type(exc).__name__
    row.update(recording=spec.recording, subject=spec.subject, path=str(spec.path),
               error=f"the task failed on the cluster: {text}", error_type=type(exc).__name__,
               reused=False)
    return RecordingOutcome(spec.recording, spec.subject, None, row, None, cacheable=False)


def _size(spec: RecordingSpec) -> int:
    try:
        return spec.path.stat().st_size
    except OSError:
        return 0


def run_batch(
    specs: Sequence[RecordingSpec],
    settings: PipelineSettings,
    engine: Engine,
    *,
    store: ResultStore | None = None,
    chunk_s: float = DEFAULT_CHUNK_S,
    report: bool = True,
    title: str = "Spasm diary",
    long_spasm_s: float | None = None,
    recurring_days: int | None = None,
    progress: TextIO | None = None,
    announce: Callable[[str], None] | None = None,
) -> BatchResult:
    """Run the recordings on the engine and gather (and, with a store, write) the results.

    Parameters
    ----------
    specs : sequence of RecordingSpec
        The recordings.
    settings : PipelineSettings
        Detection settings.
    engine : Engine
        Where the tasks run.
    store : ResultStore, optional
        The output folder: results are written there and earlier results
        with the same key reused. Without it, nothing is written.
    chunk_s : float
        Chunk length fed to the pipeline (results do not depend on it).
    report : bool
        Write the diary into the store's ``report`` folder.
    title, long_spasm_s, recurring_days
        Of the diary (None: the report's defaults).
    progress : text file, optional
        Where to draw the progress line.
    announce : callable, optional
        Called with a line for each thing worth saying (results reused,
        temporary files of a killed run removed).

    Returns
    -------
    BatchResult
    """
    say = announce or (lambda _line: None)
    stored = {}
    if store is not None:
        removed = store.remove_temporary()
        if removed:
            say(f"removed {removed} unfinished file(s) left by an interrupted run")
        stored = store.scan()
    order = sorted(specs, key=_size, reverse=True)
    tasks = []
    for spec in order:
        previous = stored.get(spec.recording)
        tasks.append((spec, settings, previous.key if previous is not None else None, chunk_s))
    if stored:
        say(f"{sum(s.recording in stored for s in order)} recording(s) have results from an "
            "earlier run: they are reused when file, code and settings are unchanged")
    bar = BatchProgress(progress, len(order))
    rows: list[dict[str, Any]] = []
    kept: list[Path] = []
    in_memory: list[tuple[str, pd.DataFrame]] = []
    started = time.perf_counter()
    try:
        for index, outcome, error in engine.map_unordered(process_recording, tasks,
                                                          name="recording"):
            spec = order[index]
            if error is not None or outcome is None:
                outcome = _lost(spec, error or RuntimeError("no result"))
            if outcome.reused:
                previous = stored[spec.recording]
                row = {**previous.row, "reused": True}
                kept.append(previous.path)
            else:
                row = outcome.row
                if store is not None and outcome.cacheable:
                    kept.append(store.write(outcome))
                elif outcome.episodes is not None:
                    in_memory.append((outcome.subject, outcome.episodes))
            rows.append(row)
            bar.update(0.0 if outcome.reused else row.get("duration_s") or 0.0)
    finally:
        bar.clear()
    elapsed = time.perf_counter() - started
    recordings = recordings_frame(rows)
    report_page = None
    if store is not None:
        store.prune(kept)
        episodes = store.read(sorted(kept))
        store.write_recordings(recordings)
        if report:
            from .diary import write_batch_report

            report_page = write_batch_report(
                episodes, recordings, store.out / REPORT_DIR, title=title,
                long_spasm_s=long_spasm_s, recurring_days=recurring_days,
            )
    else:
        episodes = episodes_frame(in_memory)
    return BatchResult(episodes, recordings, store.out if store is not None else None,
                       report_page, elapsed)
