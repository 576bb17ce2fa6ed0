"""``emg-pipeline bench``: detection quality, live alert latency, speed and peer comparison.

Writes ``report.md`` (tables), PNG plots and ``results.json`` (every figure)
into ``--out``. See :mod:`emg_pipeline.bench` for the suites.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from ..bench import SUITES, run_bench
from ..errors import UsageError

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        raise UsageError(f"--minutes must be a positive number, got {args.minutes}")
    suites = args.suite or list(SUITES)
    data_dir = Path(args.data) if args.data else None
    if data_dir is not None and not data_dir.is_dir():
        raise UsageError(f"--data: not a folder: {data_dir}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: exists and is not a folder: {out}")

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    command = "emg-pipeline bench " + " ".join(
        [*(f"--suite {s}" for s in args.suite or []), *(["--quick"] if args.quick else []),
         *([f"--minutes {args.minutes:g}"] if args.minutes is not None else []),
         f"--seed {args.seed}"])
    results = run_bench(out, suites, quick=args.quick, seed=args.seed, data_dir=data_dir,
                        minutes=args.minutes, command=command.strip(), progress=progress)
    if not args.quiet:
        files = ", ".join(results["meta"]["files"])
        print(f"wrote {files} to {out} in {results['meta']['elapsed_s']:.0f} s",
              file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction,
             add_pipeline_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``bench`` subcommand."""
    del add_pipeline_options  # the benchmarks measure the default settings
    p = subparsers.add_parser(
        "bench",
        help="measure detection quality, alert latency, speed, and compare with peers",
        description="Run the benchmark suites and write a Markdown report with tables, PNG "
                    "plots and a JSON file of every figure. Suites: synthetic (seeded "
                    "recordings with ground truth), real (shared recordings with reference "
                    "timing; skipped when absent), speed (throughput, streaming latency, "
                    "memory), peers (NeuroKit2 and BioSPPy when installed: pip install -e "
                    "'.[bench]'). Default: all suites.",
    )
    p.add_argument("--suite", action="append", choices=SUITES, metavar="NAME",
                   help=f"run only this suite (repeatable; one of {', '.join(SUITES)})")
    p.add_argument("--quick", action="store_true",
                   help="small cells: a smoke run of about a minute (figures are rough)")
    p.add_argument("--out", default="bench-report", metavar="DIR",
                   help="folder for report.md, results.json and the plots "
                        "(default: bench-report)")
    p.add_argument("--minutes", type=float, default=None, metavar="M",
                   help="minutes of signal per synthetic cell (default 30; 0.5 with --quick)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic recordings")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="folder of the real recordings (default: ../shared/data beside the "
                        "project)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    p.set_defaults(func=_run, compiles=True)
