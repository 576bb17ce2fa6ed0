"""Replay benchmark: a long recording replayed ``--fast``; reading speed per format.

1. **Long replay.** A recording of ``--hours`` (default 24) hours, 8 channels at
   1 kHz, is written once into a temporary folder in the project's recording
   format (BDF+, :class:`emg_pipeline.sinks.RecordingWriter`), piece by piece
   with bounded memory (a 5-minute simulated segment with ground truth, tiled),
   then replayed through the real command path::

       python -m emg_pipeline replay FILE --fast -q --out EPISODES.csv

   in a subprocess. Reported: wall time, × real time (goal ≥ 500×), peak
   resident memory of the subprocess (``getrusage`` via ``os.wait4``; goal
   below 400 MB), episodes found.
2. **Reading speed.** The same 60 s, 8-channel segment written in each format
   the readers know how to produce here (CSV, gzipped CSV, Myo text, WFDB,
   EDF+, BDF+, WAV) is read with ``iter_chunks`` (1 s chunks); reported in MB
   of file per second and × real time (best of ``--repeats``).

Nothing is asserted: the script prints Markdown tables. Timings are wall-clock
and noisy on a busy machine.

    python benchmarks/replay.py                 # 24 h (writes ~2 GB; long)
    python benchmarks/replay.py --hours 1       # a shorter long replay
    python benchmarks/replay.py --quick         # smoke run: 0.1 h, 1 repeat
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import wavfile

import emg_pipeline
from emg_pipeline import simulate
from emg_pipeline.sinks import RecordingWriter
from emg_pipeline.sources.formats import open_recording

FS = 1000.0
SEGMENT_S = 300.0
MEMORY_GOAL_MB = 400.0
SPEED_GOAL_X = 500.0
SITES = ("calf_l", "calf_r", "thigh_l", "thigh_r", "forearm_l", "forearm_r", "back_l", "back_r")


def provenance() -> str:
    """One line: package version, git commit and whether the package has local edits."""
    pkg = Path(emg_pipeline.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=pkg,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=pkg,
                               capture_output=True, text=True, check=True).stdout
        edits = len(dirty.splitlines())
    except (OSError, subprocess.SubprocessError):
        commit, edits = "unknown", 0
    return (f"emg-pipeline {emg_pipeline.__version__}, commit {commit}, "
            f"{edits} package files with local edits; Python {sys.version.split()[0]}, "
            f"numpy {np.__version__}")


def segment(seed: int, duration_s: float = SEGMENT_S) -> np.ndarray:
    """A simulated 8-channel segment in µV (spasms, twitches, artefacts, mains)."""
    rec = simulate(np.random.default_rng(seed), fs=FS, duration_s=duration_s, channels=SITES,
                   mains_hz=50.0, motion_per_min=0.3, pops_per_min=0.2, knocks_per_min=0.2)
    return rec.signal


def write_long_bdf(path: Path, hours: float, seed: int) -> float:
    """Write ``hours`` of 8-channel signal as BDF+, one tiled segment at a time; seconds taken."""
    block = segment(seed)
    total = round(hours * 3600.0 * FS)
    start = time.perf_counter()
    with RecordingWriter(path, FS, SITES, recording="replay benchmark") as writer:
        done = 0
        while done < total:
            n = min(block.shape[0], total - done)
            writer.write(block[:n])
            done += n
    return time.perf_counter() - start


def replay_subprocess(path: Path, out_csv: Path) -> tuple[float, float, int]:
    """Run ``replay --fast`` in a subprocess: (wall seconds, peak RSS in MB, exit status)."""
    cmd = [sys.executable, "-m", "emg_pipeline", "replay", str(path), "--fast", "-q",
           "--out", str(out_csv)]
    start = time.perf_counter()
    child = subprocess.Popen(cmd)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024.0, child.returncode  # ru_maxrss is in KiB on Linux


# -- writers of the formats compared ----------------------------------------------------------


def _csv(path: Path, x: np.ndarray) -> Path:
    frame = pd.DataFrame(np.round(x, 2), columns=[f"{s} (uV)" for s in SITES])
    frame.insert(0, "time_s", np.round(np.arange(x.shape[0]) / FS, 3))
    frame.to_csv(path, index=False)
    return path


def _csv_gz(path: Path, x: np.ndarray) -> Path:
    frame = pd.DataFrame(np.round(x, 2), columns=[f"{s} (uV)" for s in SITES])
    frame.insert(0, "time_s", np.round(np.arange(x.shape[0]) / FS, 3))
    frame.to_csv(path, index=False, compression={"method": "gzip", "mtime": 0})
    return path


def _myo(path: Path, x: np.ndarray) -> Path:
    counts = np.clip(np.round(x / 4.0), -128, 127).astype(np.int8)
    np.savetxt(path, counts, fmt="%d", delimiter=",")
    return path


def _wfdb(path: Path, x: np.ndarray) -> Path:
    gain = 1000.0  # adu per mV: 1 µV per count
    digital = np.clip(np.round(x / 1000.0 * gain), -32767, 32767).astype("<i2")
    dat = path.with_suffix(".dat")
    digital.tofile(dat)
    lines = [f"{path.stem} {x.shape[1]} {FS:g} {x.shape[0]}"]
    lines += [f"{dat.name} 16 {gain:g}/mV 16 0 {int(digital[0, k])} 0 0 {name}"
              for k, name in enumerate(SITES)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _bdf(path: Path, x: np.ndarray) -> Path:
    with RecordingWriter(path, FS, SITES) as writer:
        writer.write(x)
    return path


def _wav(path: Path, x: np.ndarray) -> Path:
    wavfile.write(path, int(FS), np.clip(np.round(x), -32767, 32767).astype(np.int16))
    return path


WRITERS: dict[str, tuple[str, Callable[[Path, np.ndarray], Path], dict]] = {
    "csv": ("seg.csv", _csv, {}),
    "csv (gzip)": ("seg.csv.gz", _csv_gz, {}),
    "myo": ("seg_myo.txt", _myo, {"fs": FS}),
    "wfdb": ("seg.hea", _wfdb, {}),
    "edf (EDF+)": ("seg.edf", _bdf, {}),
    "edf (BDF+)": ("seg.bdf", _bdf, {}),
    "wav": ("seg.wav", _wav, {}),
}


def file_bytes(path: Path) -> int:
    if path.suffix == ".hea":
        return path.stat().st_size + path.with_suffix(".dat").stat().st_size
    return path.stat().st_size


def reading_speed(folder: Path, x: np.ndarray, repeats: int) -> pd.DataFrame:
    rows = []
    duration = x.shape[0] / FS
    for name, (filename, writer, kwargs) in WRITERS.items():
        path = writer(folder / filename, x)
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            with open_recording(path, **kwargs) as reader:
                n = sum(chunk.shape[0] for chunk in reader.iter_chunks(int(FS)))
            best = min(best, time.perf_counter() - start)
        size = file_bytes(path)
        rows.append({
            "format": name,
            "file MB": size / 1e6,
            "samples": n,
            "read ms": best * 1e3,
            "MB/s": size / 1e6 / best,
            "x real time": duration / best,
        })
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame, floatfmt: str = ".1f") -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = [format(v, floatfmt) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=24.0,
                        help="length of the long recording (default 24)")
    parser.add_argument("--repeats", type=int, default=3, help="reading-speed repeats (best of)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="0.1 h and 1 repeat (smoke run)")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="write the files into DIR and keep them (default: a temporary "
                             "folder, removed at the end)")
    args = parser.parse_args(argv)
    hours = 0.1 if args.quick else args.hours
    repeats = 1 if args.quick else max(1, args.repeats)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="emg-replay-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"# Replay benchmark\n\n{provenance()}\n")
    try:
        print("## Reading speed per format (60 s, 8 channels, 1 kHz; 1 s chunks)\n")
        table = reading_speed(folder, segment(args.seed + 1, 60.0), repeats)
        print(markdown(table) + "\n")

        long_path = folder / "long.bdf"
        write_s = write_long_bdf(long_path, hours, args.seed)
        size_mb = long_path.stat().st_size / 1e6
        wall, peak_mb, status = replay_subprocess(long_path, folder / "episodes.csv")
        episodes = len(pd.read_csv(folder / "episodes.csv")) if status == 0 else -1
        duration = hours * 3600.0
        speed = duration / wall
        print(f"## Long replay: {hours:g} h, 8 channels, 1 kHz, BDF+ ({size_mb:,.0f} MB)\n")
        rows = pd.DataFrame([
            {"figure": "writing the BDF+ file", "value": f"{write_s:.1f} s "
             f"({size_mb / write_s:.0f} MB/s, {duration / write_s:.0f}x real time)",
             "goal": "", "verdict": ""},
            {"figure": "replay --fast wall time", "value": f"{wall:.1f} s", "goal": "",
             "verdict": "" if status == 0 else f"exit status {status}"},
            {"figure": "x real time", "value": f"{speed:.0f}x",
             "goal": f">= {SPEED_GOAL_X:g}x",
             "verdict": "pass" if speed >= SPEED_GOAL_X else "FAIL"},
            {"figure": "peak memory (RSS)", "value": f"{peak_mb:.0f} MB",
             "goal": f"< {MEMORY_GOAL_MB:g} MB",
             "verdict": "pass" if peak_mb < MEMORY_GOAL_MB else "FAIL"},
            {"figure": "episodes found", "value": str(episodes), "goal": "", "verdict": ""},
        ])
        print(markdown(rows))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
