"""Speed of emg-pipeline: offline detection, streaming, and a grid of sizes (Markdown tables).

A thin entry point over :mod:`emg_pipeline.bench.speed` (the ``speed`` suite
of ``emg-pipeline bench``) that first limits the BLAS/OpenMP thread pools to
one thread (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS are set
to 1 before numpy is imported), so every figure is single-core.

    python benchmarks/speed.py            # 10 min of 8-channel signal at 2 kHz
    python benchmarks/speed.py --quick    # 1 min, smaller grid (smoke run)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # single-core figures: set before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from emg_pipeline.bench.common import (  # noqa: E402
    environment,
    jsonable,
    markdown,
    provenance,
    provenance_text,
)
from emg_pipeline.bench.speed import (  # noqa: E402
    bench_grid,
    bench_offline,
    bench_stream,
    make_signal,
)

OFFLINE_GOAL_X = 2000.0  # × real time, 8 channels at 2 kHz
SOSFILT_GOAL = 0.30  # fraction of the speed of one bare sosfilt pass
STREAM_GOAL_X = 300.0  # × real time in 20 ms chunks
CHUNK_S = 0.020


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


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
    args.minutes = args.minutes if args.minutes is not None else (1.0 if q else 10.0)
    args.grid_seconds = args.grid_seconds if args.grid_seconds is not None else (
        20.0 if q else 120.0)
    args.repeats = args.repeats if args.repeats is not None else (2 if q else 5)
    args.stream_repeats = args.stream_repeats if args.stream_repeats is not None else (
        1 if q else 2)
    if min(args.minutes, args.grid_seconds) <= 0 or min(args.repeats, args.stream_repeats) < 1:
        p.error("durations must be positive and repeats at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three measurements and print their tables."""
    args = parse_args(argv)
    fs, n_ch = 2000.0, 8
    prov, env = provenance(), environment()
    print("# emg-pipeline speed benchmark\n")
    print(f"{provenance_text(prov)}; Python {env['python']}, numpy {env['numpy']}, scipy "
          f"{env['scipy']}, pandas {env['pandas']}; {env['cpu_count']} CPUs "
          f"({env['machine']}); seed {args.seed}.")
    print("Single core: OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = 1 were set "
          "before numpy was imported. Wall-clock timings, best of N; other load on the machine "
          "makes them noisy.\n")
    sys.stdout.flush()
    x = make_signal(args.seed, fs, args.minutes * 60.0, n_ch)

    off = bench_offline(x, fs, args.repeats)
    off["pass_x_real_time"] = off["x_real_time"] >= OFFLINE_GOAL_X
    off["pass_fraction_of_sosfilt"] = off["fraction_of_sosfilt"] >= SOSFILT_GOAL
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
    print()
    sys.stdout.flush()

    st = bench_stream(x, fs, CHUNK_S, args.stream_repeats)
    st["pass_x_real_time"] = st["x_real_time"] >= STREAM_GOAL_X
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
        st.pop("latencies_ms", None)
        payload = {"benchmark": "speed", "seed": args.seed, "package": prov, "versions": env,
                   "offline": off, "stream": st, "grid": grid}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(jsonable(payload), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
