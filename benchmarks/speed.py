"""Speed of emg-pipeline: offline detection, streaming, and a grid of sizes.

The BLAS/OpenMP thread pools are limited to one thread (OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MKL_NUM_THREADS are set to 1 before numpy is
imported), so every figure is single-core. Timings are wall-clock
(``time.perf_counter``), best of N repeats; they are noisy on a busy machine.
Nothing is asserted: the script prints Markdown tables (``--json PATH`` also
writes the figures).

    python benchmarks/speed.py            # 10 min of 8-channel signal at 2 kHz
    python benchmarks/speed.py --quick    # 1 min, smaller grid (smoke run)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # single-core figures: set before numpy is imported

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402
from scipy import signal  # noqa: E402

import emg_pipeline  # noqa: E402
from emg_pipeline import Pipeline, detect, simulate  # noqa: E402

OFFLINE_GOAL_X = 2000.0  # × real time, 8 channels at 2 kHz
SOSFILT_GOAL = 0.30  # fraction of the speed of one bare sosfilt pass
STREAM_GOAL_X = 300.0  # × real time in 20 ms chunks
CHUNK_S = 0.020


def provenance() -> dict[str, Any]:
    """Which package code was measured: git commit, local edits, digest of its sources."""
    pkg = Path(emg_pipeline.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(pkg.rglob("*.py")):
        digest.update(path.relative_to(pkg).as_posix().encode())
        digest.update(path.read_bytes())

    def git(*cmd: str) -> str | None:
        try:
            out = subprocess.run(["git", *cmd], cwd=pkg, capture_output=True, text=True,
                                 timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--", ".") if commit else None
    return {"version": emg_pipeline.__version__, "commit": commit,
            "modified_files": len(status.splitlines()) if status else 0,
            "source_sha256": digest.hexdigest()[:12]}


def provenance_text(p: dict[str, Any]) -> str:
    """One line describing :func:`provenance`."""
    where = f"commit {p['commit']}" if p["commit"] else "no git checkout"
    if p["modified_files"]:
        where += f" + {p['modified_files']} locally modified file(s)"
    return f"emg-pipeline {p['version']} ({where}; sources sha256 {p['source_sha256']})"


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Smallest wall-clock time of ``repeats`` calls of ``fn``."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def make_signal(seed: int, fs: float, seconds: float, n_channels: int) -> np.ndarray:
    """Synthetic sEMG with events, drifting 50 Hz mains and baseline (simulate defaults)."""
    rec = simulate(np.random.default_rng(seed), fs=fs, duration_s=seconds, n_channels=n_channels)
    return np.ascontiguousarray(rec.signal)


def bench_offline(x: np.ndarray, fs: float, repeats: int) -> dict[str, Any]:
    """Offline ``detect`` vs. one bare 4th-order Butterworth sosfilt pass."""
    sos = signal.butter(4, [20.0, min(450.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    channels = [f"ch{i + 1}" for i in range(x.shape[1])]
    seconds = x.shape[0] / fs
    detect(x[: round(5 * fs)], fs, channels=channels, unit="uV")  # first-call costs
    t_detect = best_of(lambda: detect(x, fs, channels=channels, unit="uV"), repeats)
    t_sos = best_of(lambda: signal.sosfilt(sos, x, axis=0), repeats)
    n_episodes = len(detect(x, fs, channels=channels, unit="uV"))
    x_rt = seconds / t_detect
    ratio = t_sos / t_detect
    return {
        "fs": fs, "channels": x.shape[1], "seconds": seconds, "repeats": repeats,
        "episodes": n_episodes,
        "detect_s": t_detect, "sosfilt_s": t_sos,
        "x_real_time": x_rt, "sosfilt_x_real_time": seconds / t_sos,
        "fraction_of_sosfilt": ratio,
        "goal_x_real_time": OFFLINE_GOAL_X, "goal_fraction_of_sosfilt": SOSFILT_GOAL,
        "pass_x_real_time": x_rt >= OFFLINE_GOAL_X,
        "pass_fraction_of_sosfilt": ratio >= SOSFILT_GOAL,
    }


def bench_stream(x: np.ndarray, fs: float, repeats: int) -> dict[str, Any]:
    """Streaming in 20 ms chunks: throughput and per-chunk latency of ``Pipeline.process``."""
    step = max(1, round(CHUNK_S * fs))
    starts = range(0, x.shape[0], step)
    channels = [f"ch{i + 1}" for i in range(x.shape[1])]
    runs: list[np.ndarray] = []
    for _ in range(repeats):
        pipe = Pipeline(fs, channels, unit="uV")
        lat = np.empty(len(starts))
        for i, start in enumerate(starts):
            chunk = x[start : start + step]
            t0 = time.perf_counter()
            pipe.process(chunk)
            lat[i] = time.perf_counter() - t0
        pipe.flush()
        runs.append(lat)
    best = min(runs, key=lambda lat: float(lat.sum()))
    seconds = x.shape[0] / fs
    x_rt = seconds / float(best.sum())
    return {
        "fs": fs, "channels": x.shape[1], "seconds": seconds, "repeats": repeats,
        "chunk_ms": 1e3 * step / fs, "chunks": len(starts),
        "process_s": float(best.sum()), "x_real_time": x_rt,
        "latency_median_ms": 1e3 * float(np.median(best)),
        "latency_p99_ms": 1e3 * float(np.percentile(best, 99)),
        "latency_max_ms": 1e3 * float(best.max()),
        "goal_x_real_time": STREAM_GOAL_X, "pass_x_real_time": x_rt >= STREAM_GOAL_X,
    }


def bench_grid(seed: int, seconds: float, channel_counts: Sequence[int],
               rates: Sequence[float], repeats: int) -> list[dict[str, Any]]:
    """Offline × real time over channel counts and sampling rates."""
    cells = []
    for fs in rates:
        for n_ch in channel_counts:
            x = make_signal(seed, fs, seconds, n_ch)
            names = [f"ch{i + 1}" for i in range(n_ch)]
            t = best_of(lambda x=x, fs=fs, names=names: detect(x, fs, channels=names, unit="uV"),
                        repeats)
            cells.append({"fs": fs, "channels": n_ch, "seconds": seconds, "detect_s": t,
                          "x_real_time": seconds / t,
                          "channel_samples_per_s": x.size / t})
    return cells


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 min of signal, 2 repeats, a smaller grid")
    p.add_argument("--minutes", type=float, default=None,
                   help="minutes of 8-channel 2 kHz signal for (a) and (b) (default 10; 1 quick)")
    p.add_argument("--grid-seconds", type=float, default=None,
                   help="seconds of signal per grid cell (default 120; 20 quick)")
    p.add_argument("--repeats", type=int, default=None,
                   help="repeats of each offline timing, best kept (default 5; 2 quick)")
    p.add_argument("--stream-repeats", type=int, default=None,
                   help="repeats of the streaming run, best kept (default 2; 1 quick)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic signals")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    q = args.quick
    if args.minutes is None:
        args.minutes = 1.0 if q else 10.0
    if args.grid_seconds is None:
        args.grid_seconds = 20.0 if q else 120.0
    if args.repeats is None:
        args.repeats = 2 if q else 5
    if args.stream_repeats is None:
        args.stream_repeats = 1 if q else 2
    if min(args.minutes, args.grid_seconds) <= 0 or min(args.repeats, args.stream_repeats) < 1:
        p.error("durations must be positive and repeats at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three measurements and print their tables."""
    args = parse_args(argv)
    fs, n_ch = 2000.0, 8
    print("# emg-pipeline speed benchmark\n")
    prov = provenance()
    print(f"{provenance_text(prov)}; Python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}, pandas {pd.__version__}; "
          f"{os.cpu_count()} CPUs ({platform.machine()}); seed {args.seed}.")
    print("Single core: OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = 1 were set "
          "before numpy was imported. Wall-clock timings, best of N; other load on the machine "
          "makes them noisy.\n")
    sys.stdout.flush()
    x = make_signal(args.seed, fs, args.minutes * 60.0, n_ch)

    off = bench_offline(x, fs, args.repeats)
    print(f"## (a) Offline `detect`, {n_ch} channels at {fs:g} Hz, {off['seconds']:g} s "
          f"of signal (best of {off['repeats']})\n")
    print(markdown(
        ["measure", "time (s)", "× real time", "goal", "verdict"],
        [["`detect` (default settings)", f"{off['detect_s']:.3f}", f"{off['x_real_time']:.0f}",
          f"≥ {OFFLINE_GOAL_X:g}× real time", _verdict(off["pass_x_real_time"])],
         ["bare `sosfilt`, Butterworth 20-450 Hz order 4, axis 0", f"{off['sosfilt_s']:.3f}",
          f"{off['sosfilt_x_real_time']:.0f}", "reference", ""],
         ["`detect` speed / `sosfilt` speed", "", f"{off['fraction_of_sosfilt']:.1%}",
          f"≥ {SOSFILT_GOAL:.0%}", _verdict(off["pass_fraction_of_sosfilt"])]],
    ))
    print(f"\n({off['episodes']} episodes found.)\n")
    sys.stdout.flush()

    st = bench_stream(x, fs, args.stream_repeats)
    print(f"## (b) Streaming, {n_ch} channels at {fs:g} Hz in {st['chunk_ms']:g} ms chunks "
          f"({st['chunks']} calls of `Pipeline.process`, best of {st['repeats']})\n")
    print(markdown(
        ["× real time", "latency median (ms)", "latency p99 (ms)", "latency max (ms)",
         "goal", "verdict"],
        [[f"{st['x_real_time']:.0f}", f"{st['latency_median_ms']:.3f}",
          f"{st['latency_p99_ms']:.3f}", f"{st['latency_max_ms']:.3f}",
          f"≥ {STREAM_GOAL_X:g}× real time", _verdict(st["pass_x_real_time"])]],
    ))
    print()
    sys.stdout.flush()

    channel_counts = (1, 8) if args.quick else (1, 8, 32)
    rates = (200.0, 2000.0) if args.quick else (200.0, 1000.0, 2000.0)
    grid = bench_grid(args.seed, args.grid_seconds, channel_counts, rates, args.repeats)
    print(f"## (c) Offline `detect` × real time by channels and rate ({args.grid_seconds:g} s "
          f"per cell, best of {args.repeats}; in brackets: million channel-samples per s)\n")
    by = {(c["fs"], c["channels"]): c for c in grid}
    print(markdown(
        ["fs (Hz)", *[f"{n} ch" for n in channel_counts]],
        [[f"{r:g}", *[f"{by[r, n]['x_real_time']:.0f} "
                      f"({by[r, n]['channel_samples_per_s'] / 1e6:.1f})"
                      for n in channel_counts]] for r in rates],
    ))

    if args.json:
        payload = {
            "benchmark": "speed",
            "seed": args.seed,
            "package": prov,
            "versions": {"python": platform.python_version(), "numpy": np.__version__,
                         "scipy": scipy.__version__, "pandas": pd.__version__},
            "cpu_count": os.cpu_count(),
            "threads": "OMP/OPENBLAS/MKL_NUM_THREADS=1",
            "offline": off,
            "stream": st,
            "grid": grid,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(_jsonable(payload), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
