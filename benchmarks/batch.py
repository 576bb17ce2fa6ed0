"""Batch benchmark: ``emg-pipeline batch`` on Dask against ``detect`` run file after file.

A study of ``--recordings`` recordings (default 200) of ``--minutes`` minutes
(default 10), ``--channels`` channels (8) at ``--fs`` Hz (1000), is written as
BDF+ files into a temporary folder, subjects in sub-folders, each recording
tiled from a few simulated segments (bounded memory, quick to write). Then:

1. **Serial baseline**: one process runs ``emg-pipeline detect FILE --out CSV -q``
   over the files one after another (through :func:`emg_pipeline.cli.main`, so
   no interpreter start-up is counted), with its default 20 ms chunks and again
   with the batch's 1 s chunks; and the batch's own task
   (:func:`~emg_pipeline.batch.task.process_recording`: content digest and
   pipeline) over the files one after another, in this process.
2. **Batch on 1 and on 2 workers** (embedded ``LocalCluster``, started, and
   every worker warmed on one recording of the study, before the clock starts:
   its start-up time is reported apart):
   recordings per second, × real time, the ratio to the serial baseline, and
   the engine's overhead per recording on 1 worker: (time from the first task
   sent to the last result − the tasks' own time on the worker) / recordings,
   i.e. scheduling, transfer of the results and what the Parquet writes do
   not hide. Also shown: the batch's fixed cost (finding the recordings,
   checking the workers, the final tables) and the difference to the same
   tasks run in this process (which adds the worker running the same code
   more slowly, e.g. on a loaded machine).
3. **Same episodes as detect**: every recording's rows of the dataset, written
   as ``detect`` writes its CSV, equal ``detect``'s file byte for byte; the
   first few are also compared at full precision with the table ``detect``
   builds in memory (bit for bit).
4. **Peak memory per worker against recording length**: one worker process,
   restarted before each length, runs a batch of one recording of
   ``--minutes`` and of ``--long-minutes`` (default 1440: 24 h); its peak
   resident memory (``getrusage``) is read from the worker.
5. **Kill and resume**: ``python -m emg_pipeline batch ... --workers 2`` in a
   subprocess, killed with SIGKILL (with its cluster) once half of the
   recordings have their file; run again to the end: it must compute only the
   rest, and the episode dataset must equal the uninterrupted run's.

Prints one Markdown table of the issue's goals and verdicts; asserts nothing.
Timings are wall-clock and noisy on a busy machine.

    python benchmarks/batch.py                                   # the issue's size (long)
    python benchmarks/batch.py --recordings 8 --minutes 1 --long-minutes 10   # small
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from emg_pipeline import Pipeline, run, simulate
from emg_pipeline.bench.common import markdown, provenance, provenance_text
from emg_pipeline.sinks.episodes import EPISODE_FILE_COLUMNS, EpisodeFile
from emg_pipeline.sinks.recording import RecordingWriter
from emg_pipeline.sites import resolve_sites

SITES = ("calf_l", "calf_r", "thigh_l", "thigh_r", "forearm_l", "forearm_r", "back_l", "back_r")
SEGMENT_S = 300.0
POOL = 4
RATIO_GOAL = 1.8
OVERHEAD_GOAL_MS = 50.0
MEMORY_GOAL_MB = 50.0
#: recordings compared with detect at full precision (in this process: slow at 20 ms chunks)
EXACT_CHECKS = 4


def _segments(fs: float, channels: int, seconds: float, seed: int) -> list[np.ndarray]:
    names = [SITES[i] if i < len(SITES) else f"ch{i + 1}" for i in range(channels)]
    return [simulate(np.random.default_rng([seed, k]), fs=fs, duration_s=seconds,
                     channels=names, mains_hz=50.0, motion_per_min=0.3, pops_per_min=0.2,
                     knocks_per_min=0.2).signal for k in range(POOL)]


def write_recording(path: Path, pool: list[np.ndarray], minutes: float, fs: float,
                    start: datetime, seed: int) -> None:
    """``minutes`` of signal tiled from the segment pool, one segment at a time."""
    channels = [SITES[i] if i < len(SITES) else f"ch{i + 1}" for i in range(pool[0].shape[1])]
    rng = np.random.default_rng(seed)
    left = round(minutes * 60.0 * fs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with RecordingWriter(path, fs, channels, unit="uV", start_time=start) as writer:
        while left > 0:
            block = pool[int(rng.integers(len(pool)))]
            writer.write(block[:left])
            left -= min(left, block.shape[0])


def write_study(root: Path, n: int, minutes: float, channels: int, fs: float,
                seed: int) -> list[Path]:
    pool = _segments(fs, channels, min(SEGMENT_S, minutes * 60.0), seed)
    subjects = max(1, min(10, n // 4))
    files = []
    for k in range(n):
        path = root / f"P{k % subjects + 1:02d}" / f"night{k:03d}.bdf"
        start = datetime(2024, 5, 1, 22, 0) + timedelta(days=k // subjects, minutes=k % 7)
        write_recording(path, pool, minutes, fs, start, seed + k)
        files.append(path)
    return files


def detect_csv(files: list[Path], out: Path, chunk_ms: float | None) -> float:
    """Run ``detect`` on every file, one after another, in this process; seconds taken."""
    from emg_pipeline.cli import main

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for k, path in enumerate(files):
        argv = ["detect", str(path), "--out", str(out / f"{k}.csv"), "-q", "--timezone", "UTC"]
        if chunk_ms is not None:
            argv += ["--chunk-ms", f"{chunk_ms:g}"]
        if main(argv) != 0:
            raise RuntimeError(f"detect failed on {path}")
    return time.perf_counter() - started


def detect_table(path: Path) -> pd.DataFrame:
    """The episode table ``detect --timezone UTC`` builds in memory (full precision)."""
    from emg_pipeline.run import StreamInfo
    from emg_pipeline.sources.formats import open_recording

    scratch = Path(tempfile.mkdtemp()) / "episodes.csv"
    with open_recording(path) as reader:
        info = reader.info
        sink = EpisodeFile(scratch, resolve_sites(info.channels, info=info, timezone=UTC))
        pipe = Pipeline(info.fs, info.channels, unit=info.unit)
        run(reader.iter_chunks(max(1, round(0.02 * info.fs))), pipe, [sink],
            info=StreamInfo.of(pipe, title=path.name, start_time=info.start_time))
    shutil.rmtree(scratch.parent)
    assert sink.table is not None
    return sink.table


def warm_up(path: str) -> None:
    """Run one recording of the study here (on a worker: its kernels are loaded then)."""
    from emg_pipeline import PipelineSettings
    from emg_pipeline.batch import find_recordings
    from emg_pipeline.batch.task import process_recording

    process_recording(find_recordings([path]).specs[0], PipelineSettings())


def peak_rss_mb() -> float:
    """Peak resident memory of this process (run on a worker), MB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


def _dataset(out: Path) -> pd.DataFrame:
    from emg_pipeline.batch.store import read_episode_dataset

    return read_episode_dataset(out / "episodes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--fs", type=float, default=1000.0)
    parser.add_argument("--long-minutes", type=float, default=1440.0,
                        help="the long recording of the memory check (default 24 h)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="work in DIR and keep it (default: a temporary folder, removed)")
    args = parser.parse_args()

    from emg_pipeline import PipelineSettings, batch
    from emg_pipeline.batch import find_recordings
    from emg_pipeline.batch.diary import write_batch_report
    from emg_pipeline.batch.engine import Engine
    from emg_pipeline.batch.task import process_recording

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="emg-batch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    n, minutes = args.recordings, args.minutes
    signal_h = n * minutes / 60.0
    print(f"# Batch benchmark: {n} recordings x {minutes:g} min x {args.channels} channels x "
          f"{args.fs:g} Hz ({signal_h:.1f} h of signal)\n")
    print(provenance_text(provenance()) + f"; {os.cpu_count()} cores\n")
    try:
        t0 = time.perf_counter()
        files = write_study(work / "data", n, minutes, args.channels, args.fs, args.seed)
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        print(f"wrote {n} BDF files ({size_mb:.0f} MB) in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        detect_csv(files[:1], work / "warm-detect", None)        # kernels loaded here

        serial_20 = detect_csv(files, work / "detect", None)
        serial_1s = detect_csv(files, work / "detect-1s", 1000.0)
        specs = find_recordings(work / "data", timezone="UTC").specs
        started = time.perf_counter()
        for spec in specs:
            process_recording(spec, PipelineSettings())
        serial_tasks = time.perf_counter() - started
        print(f"serial detect: {serial_20:.1f} s (20 ms chunks), {serial_1s:.1f} s (1 s); "
              f"the batch's tasks in this process: {serial_tasks:.1f} s", file=sys.stderr)

        timings: dict[int, float] = {}
        startup: dict[int, float] = {}
        results = {}
        for workers in (1, 2):
            with Engine(workers=workers, dashboard_address=None) as engine:
                startup[workers] = engine.startup_s
                engine.client.run(warm_up, str(files[0]))          # every worker warm
                started = time.perf_counter()
                results[workers] = batch(work / "data", client=engine.client,
                                         out=work / f"out{workers}", timezone="UTC",
                                         report=False)
                timings[workers] = time.perf_counter() - started
            print(f"batch on {workers} worker(s): {timings[workers]:.1f} s "
                  f"(cluster start-up {startup[workers]:.1f} s)", file=sys.stderr)
        two = results[2]
        t_report = time.perf_counter()
        write_batch_report(two.episodes, two.recordings, work / "report")
        t_report = time.perf_counter() - t_report

        # the same episodes as detect
        names = dict(zip(two.recordings["path"], two.recordings["recording"], strict=True))
        same_text = 0
        for k, path in enumerate(files):
            mine = two.episodes[two.episodes["recording"] == names[str(path.resolve())]]
            text = mine[list(EPISODE_FILE_COLUMNS)].to_csv(index=False, float_format="%.4f")
            same_text += (work / "detect" / f"{k}.csv").read_text() == text
        same_bits = 0
        checked = files[:EXACT_CHECKS]
        for path in checked:
            mine = two.episodes[two.episodes["recording"] == names[str(path.resolve())]]
            theirs = detect_table(path)
            try:
                pd.testing.assert_frame_equal(
                    mine[list(EPISODE_FILE_COLUMNS)].reset_index(drop=True).astype(
                        {"label": str, "pattern": str}),
                    theirs[list(EPISODE_FILE_COLUMNS)].reset_index(drop=True).astype(
                        {"label": str, "pattern": str}),
                    check_exact=True, check_dtype=False)
                same_bits += 1
            except AssertionError:
                pass
        one_vs_two = results[1].episodes.equals(two.episodes)

        # peak memory per worker against recording length
        memory: dict[float, float] = {}
        pool = _segments(args.fs, args.channels, min(SEGMENT_S, minutes * 60.0), args.seed)
        with Engine(workers=1, dashboard_address=None) as engine:
            for length in (minutes, args.long_minutes):
                path = work / "memory" / f"{length:g}min.bdf"
                write_recording(path, pool, length, args.fs, datetime(2024, 6, 1, 22, 0), 7)
                engine.client.restart()
                engine.client.run(warm_up, str(files[0]))
                batch([path], client=engine.client, report=False)
                memory[length] = max(engine.client.run(peak_rss_mb).values())
                path.unlink()
                print(f"{length:g} min: worker peak {memory[length]:.0f} MB", file=sys.stderr)

        # kill halfway, then resume
        out = work / "killed"
        argv = [sys.executable, "-m", "emg_pipeline", "batch", str(work / "data"), "--out",
                str(out), "--workers", "2", "--timezone", "UTC", "--no-report", "-qq"]
        child = subprocess.Popen(argv, start_new_session=True)
        while child.poll() is None:
            if len(list((out / "episodes").glob("*/*.parquet"))) >= n // 2:
                os.killpg(child.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        child.wait()
        killed_at = len(list((out / "episodes").glob("*/*.parquet")))
        started = time.perf_counter()
        subprocess.run(argv, check=True)
        resume_s = time.perf_counter() - started
        from emg_pipeline.batch import BatchResult

        resumed = BatchResult.load(out)
        recomputed = int((~resumed.recordings["reused"].astype(bool)).sum())
        leftovers = [p for p in out.rglob("*") if ".tmp-" in p.name]
        identical = _dataset(out).equals(_dataset(work / "out2"))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def rate(seconds: float) -> str:
        return (f"{n / seconds:.2f} recordings/s, {signal_h * 3600 / seconds:.0f}x real time "
                f"({seconds:.1f} s)")

    ratio = serial_20 / timings[2]
    ratio_1s = serial_1s / timings[2]
    one = results[1]
    overhead_ms = 1e3 * (one.elapsed_s - float(one.recordings["wall_s"].sum())) / n
    fixed_s = timings[1] - one.elapsed_s
    versus_ms = 1e3 * (one.elapsed_s - serial_tasks) / n
    short, long = memory[minutes], memory[args.long_minutes]
    rows = [
        ["serial `detect`, one process, file after file", "baseline",
         f"{rate(serial_20)}; with 1 s chunks {rate(serial_1s)}", ""],
        ["the batch's task, file after file in one process", "", rate(serial_tasks), ""],
        ["batch, 1 worker", "", rate(timings[1]), ""],
        ["batch, 2 workers", "", rate(timings[2]), ""],
        ["2 workers vs serial `detect`", f"≥ {RATIO_GOAL:g}x", f"{ratio:.2f}x "
         f"({ratio_1s:.2f}x against `detect --chunk-ms 1000`)",
         "met" if ratio >= RATIO_GOAL else "NOT MET"],
        ["engine overhead per recording (1 worker: tasks phase − tasks' time on the worker)",
         f"≤ {OVERHEAD_GOAL_MS:g} ms", f"{overhead_ms:.1f} ms (against the same tasks in one "
         f"process: {versus_ms:+.1f} ms; fixed cost per batch {fixed_s:.2f} s)",
         "met" if overhead_ms <= OVERHEAD_GOAL_MS else "NOT MET"],
        [f"peak memory per worker, {minutes:g} min vs {args.long_minutes:g} min recording",
         f"± {MEMORY_GOAL_MB:g} MB", f"{short:.0f} MB vs {long:.0f} MB ({long - short:+.0f} MB)",
         "met" if abs(long - short) <= MEMORY_GOAL_MB else "NOT MET"],
        ["same episodes as `detect`", "bit for bit",
         f"{same_text}/{n} files byte-identical CSV; {same_bits}/{len(checked)} bit-identical "
         f"at full precision; 1 and 2 workers identical: {'yes' if one_vs_two else 'no'}",
         "met" if same_text == n and same_bits == len(checked) and one_vs_two else "NOT MET"],
        ["kill halfway, resume", "finishes the rest; identical dataset",
         f"killed with {killed_at}/{n} done; the re-run computed {recomputed} "
         f"({resume_s:.1f} s incl. start-up); identical: {'yes' if identical else 'no'}; "
         f"temporary files left: {len(leftovers)}",
         "met" if identical and recomputed == n - killed_at and not leftovers else "NOT MET"],
    ]
    print(markdown(["", "goal", "measured", "verdict"], rows))
    print(f"\nCluster start-up (not in the times above): {startup[1]:.1f} s with 1 worker, "
          f"{startup[2]:.1f} s with 2; the diary of {len(set(two.recordings['subject']))} "
          f"subjects took {t_report:.1f} s. Throughput counts every recording's content "
          f"digest, pipeline and Parquet write; {math.ceil(size_mb)} MB of BDF read.")


if __name__ == "__main__":
    main()
