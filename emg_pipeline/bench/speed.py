"""The ``speed`` suite: offline throughput, streaming latency, peak memory, against sosfilt.

- **Offline grid**: :func:`emg_pipeline.detect` on seeded synthetic signals
  for each channel count and sampling rate, as × real time (signal duration /
  processing time, best of N), next to one bare ``scipy.signal.sosfilt``
  pass of a 4th-order Butterworth 20-450 Hz band-pass (upper corner clamped
  to 0.45 fs) over the same array, timed in the same run: the practical floor.
- **Streaming**: ``Pipeline.process`` fed chunks of 5-100 ms, timed per
  call: × real time and per-chunk latency median and p99.
- **Peak memory**: ``tracemalloc`` peak of one ``detect`` call (numpy
  reports its buffers to it), not timed.

Figures are wall-clock (``time.perf_counter``) and noisy on a loaded machine;
compare figures of the same run. The thread pools of numpy's BLAS are as the
environment sets them (``benchmarks/speed.py`` sets them to 1 before numpy
is imported).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from scipy import signal

from ..pipeline import Pipeline, detect
from ..run import run
from ..sources.synthetic import simulate
from .common import best_of, fmt, markdown, seeded_rng

__all__ = ["bench_grid", "bench_memory", "bench_offline", "bench_stream", "make_signal",
           "run_speed"]


def make_signal(seed: int, fs: float, seconds: float, n_channels: int) -> np.ndarray:
    """Synthetic sEMG with events, drifting 50 Hz mains and baseline (simulate defaults)."""
    rec = simulate(seeded_rng(seed, f"speed{fs:g}"), fs=fs, duration_s=seconds,
                   n_channels=n_channels)
    return np.ascontiguousarray(rec.signal)


def _names(n: int) -> list[str]:
    return [f"ch{i + 1}" for i in range(n)]


def _sosfilt_time(x: np.ndarray, fs: float, repeats: int) -> float:
    sos = signal.butter(4, [20.0, min(450.0, 0.45 * fs)], btype="bandpass", fs=fs,
                        output="sos")
    return best_of(lambda: signal.sosfilt(sos, x, axis=0), repeats)


def bench_offline(x: np.ndarray, fs: float, repeats: int) -> dict[str, Any]:
    """Offline ``detect`` and one bare sosfilt pass over the same ``(n, C)`` array."""
    channels = _names(x.shape[1])
    seconds = x.shape[0] / fs
    # first-use costs (compiled kernels loaded from their cache, FFT plans,
    # filter designs) are paid once per process, not per call: a warm-up run
    detect(x[: max(1, round(30 * fs))], fs, channels=channels, unit="uV")
    t_detect = best_of(lambda: detect(x, fs, channels=channels, unit="uV"), repeats)
    t_sos = _sosfilt_time(x, fs, repeats)
    return {
        "fs": fs, "channels": x.shape[1], "seconds": seconds, "repeats": repeats,
        "detect_s": t_detect, "sosfilt_s": t_sos,
        "x_real_time": seconds / t_detect, "sosfilt_x_real_time": seconds / t_sos,
        "fraction_of_sosfilt": t_sos / t_detect,
        "channel_samples_per_s": x.size / t_detect,
    }


def bench_memory(x: np.ndarray, fs: float) -> float:
    """Peak traced memory (MB) of one ``detect`` call on ``x`` (the input not counted)."""
    channels = _names(x.shape[1])
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        detect(x, fs, channels=channels, unit="uV")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6


def bench_stream(x: np.ndarray, fs: float, chunk_s: float, repeats: int = 1) -> dict[str, Any]:
    """Streaming in chunks of ``chunk_s``: throughput and per-call latency of ``process``."""
    step = max(1, round(chunk_s * fs))
    starts = range(0, x.shape[0], step)
    channels = _names(x.shape[1])
    runs: list[np.ndarray] = []
    for _ in range(max(1, repeats)):
        lat = np.empty(len(starts))

        def timed_chunks(lat: np.ndarray = lat) -> Iterator[np.ndarray]:
            # the time from handing a chunk to the run loop until it asks for the next
            for i, start in enumerate(starts):
                t0 = time.perf_counter()
                yield x[start : start + step]
                lat[i] = time.perf_counter() - t0

        run(timed_chunks(), Pipeline(fs, channels, unit="uV"))
        runs.append(lat)
    best = min(runs, key=lambda lat: float(lat.sum()))
    seconds = x.shape[0] / fs
    return {
        "fs": fs, "channels": x.shape[1], "seconds": seconds, "repeats": repeats,
        "chunk_ms": 1e3 * step / fs, "chunks": len(starts),
        "process_s": float(best.sum()), "x_real_time": seconds / float(best.sum()),
        "latency_median_ms": 1e3 * float(np.median(best)),
        "latency_p99_ms": 1e3 * float(np.percentile(best, 99)),
        "latency_max_ms": 1e3 * float(best.max()),
        "latencies_ms": (1e3 * best).tolist(),
    }


def bench_grid(seed: int, seconds: float, channel_counts: Sequence[int],
               rates: Sequence[float], repeats: int,
               progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Offline ``detect`` and sosfilt × real time over channel counts and rates."""
    cells = []
    for fs in rates:
        base = make_signal(seed, fs, seconds, 1)
        for n_ch in channel_counts:
            # the same single-channel signal with each copy circularly shifted: cheap to build
            x = np.column_stack([np.roll(base[:, 0], round(i * 0.37 * fs))
                                 for i in range(n_ch)])
            cell = bench_offline(x, fs, repeats)
            cell["peak_memory_mb"] = bench_memory(x, fs)
            cell["input_mb"] = x.nbytes / 1e6
            cells.append(cell)
            if progress:
                progress(f"speed {n_ch} ch @ {fs:g} Hz: {cell['x_real_time']:.0f}× real time")
    return cells


def run_speed(seed: int = 0, quick: bool = False,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The whole suite; sizes are small with ``quick``."""
    if quick:
        channel_counts, rates, seconds, repeats = (1, 8), (200.0, 2000.0), 10.0, 2
        stream_seconds, chunks_ms = 20.0, (5.0, 20.0, 100.0)
    else:
        channel_counts, rates, seconds, repeats = (1, 4, 8, 16, 32, 64), \
            (200.0, 500.0, 1000.0, 2000.0, 4000.0), 60.0, 3
        stream_seconds, chunks_ms = 120.0, (5.0, 10.0, 20.0, 50.0, 100.0)
    grid = bench_grid(seed, seconds, channel_counts, rates, repeats, progress)
    fs, n_ch = 2000.0, 8
    x = make_signal(seed, fs, stream_seconds, n_ch)
    stream = []
    for ms in chunks_ms:
        st = bench_stream(x, fs, ms / 1000.0)
        stream.append(st)
        if progress:
            progress(f"speed stream {ms:g} ms: p99 {st['latency_p99_ms']:.3f} ms")
    return {"seed": seed, "grid_seconds": seconds, "repeats": repeats,
            "channel_counts": list(channel_counts), "rates": list(rates),
            "grid": grid, "stream": stream, "stream_seconds": stream_seconds,
            "stream_fs": fs, "stream_channels": n_ch}


def grid_table(result: dict[str, Any], key: str = "x_real_time") -> str:
    """One figure of the grid by rate (rows) and channel count (columns)."""
    by = {(c["fs"], c["channels"]): c for c in result["grid"]}
    counts, rates = result["channel_counts"], result["rates"]
    return markdown(["fs (Hz)", *[f"{n} ch" for n in counts]],
                    [[f"{r:g}", *[_cell(by[r, n][key], key) for n in counts]] for r in rates])


def _cell(value: float, key: str) -> str:
    if key == "fraction_of_sosfilt":
        return f"{value:.1%}"
    if key == "peak_memory_mb":
        return fmt(value, 1)
    return fmt(value, 0)


def stream_table(result: dict[str, Any]) -> str:
    """Per-chunk latency by chunk size."""
    return markdown(
        ["chunk (ms)", "calls", "× real time", "latency median (ms)", "latency p99 (ms)",
         "latency max (ms)"],
        [[f"{s['chunk_ms']:g}", str(s["chunks"]), fmt(s["x_real_time"], 0),
          fmt(s["latency_median_ms"], 3), fmt(s["latency_p99_ms"], 3),
          fmt(s["latency_max_ms"], 3)] for s in result["stream"]])


def section(result: dict[str, Any]) -> str:
    """The suite's Markdown section."""
    return "\n\n".join([
        "## Speed",
        f"Offline `detect` (default settings) on {result['grid_seconds']:g} s of synthetic "
        f"signal per cell, best of {result['repeats']}; × real time = signal duration / "
        "processing time.",
        "### Offline `detect`, × real time",
        grid_table(result),
        "### One bare `sosfilt` band-pass pass (Butterworth order 4, 20-450 Hz) over the same "
        "array, × real time",
        grid_table(result, "sosfilt_x_real_time"),
        "### `detect` speed as a fraction of that `sosfilt` pass",
        grid_table(result, "fraction_of_sosfilt"),
        "### Peak traced memory of one `detect` call (MB; tracemalloc)",
        grid_table(result, "peak_memory_mb"),
        f"### Streaming, {result['stream_channels']} channels at {result['stream_fs']:g} Hz, "
        f"{result['stream_seconds']:g} s, `Pipeline.process` timed per call",
        stream_table(result),
    ])
