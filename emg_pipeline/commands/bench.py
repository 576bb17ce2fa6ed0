"""``emg-pipeline bench``: detection quality, live alert latency, speed and peer comparison.

Writes ``report.md`` (tables), PNG plots and ``results.json`` (every figure)
into ``--out``. See :mod:`emg_pipeline.bench` for the suites.

The suites of many independent recordings (:data:`ENGINE_SUITES`) run on the
engine of ``emg-pipeline batch``: by default an embedded Dask cluster with one
worker per core, when Dask is installed and the machine has more than one
core. A run of those suites takes minutes (about 3.6 s per recording on one
core, 24 recordings with ``--quick``, 200 otherwise) against seconds for the
cluster to start, so the engine pays even for ``--quick``; ``--workers 1``
keeps them in this process, ``--scheduler`` sends them to a cluster. The rows
are the same either way.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..bench import SUITES, run_bench
from ..errors import UsageError
from ._types import whole_at_least

if TYPE_CHECKING:
    from ..batch.engine import Engine

__all__ = ["ENGINE_SUITES", "register"]

#: suites made of many independent recordings, run on the engine
ENGINE_SUITES: tuple[str, ...] = ("robust", "physio", "mains")


def _engine(args: argparse.Namespace, suites: list[str],
            progress: Callable[[str], None]) -> Engine | None:
    """The engine of the suites in :data:`ENGINE_SUITES`, or None to run them in this process."""
    import importlib.util

    from ..batch.engine import Engine, default_workers

    if not any(s in ENGINE_SUITES for s in suites):
        return None
    cluster = args.scheduler is not None or bool(os.environ.get("DASK_SCHEDULER_ADDRESS"))
    if not cluster and (args.workers == 1 or (args.workers is None and default_workers() == 1)):
        return None
    if not cluster and args.workers is None:
        if importlib.util.find_spec("distributed") is None:
            progress("the robust suites run in this process: Dask is not installed "
                     "(pip install 'emg-pipeline[batch]')")
            return None
    engine = Engine(scheduler=args.scheduler, workers=args.workers)
    progress(f"robust suites on the {engine.describe()}")
    return engine


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
         *([f"--workers {args.workers}"] if args.workers is not None else []),
         *([f"--scheduler {args.scheduler}"] if args.scheduler is not None else []),
         f"--seed {args.seed}"])
    engine = _engine(args, suites, progress)
    try:
        results = run_bench(out, suites, quick=args.quick, seed=args.seed, data_dir=data_dir,
                            minutes=args.minutes, command=command.strip(), progress=progress,
                            engine=engine)
    finally:
        if engine is not None:
            engine.close()
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
                    "recordings with ground truth), robust and physio (200 recordings each "
                    "under randomly drawn conditions, from two generators), mains (mains "
                    "removal methods compared on 48 of those recordings), real (shared "
                    "recordings with reference timing; skipped when absent), semi (real rest "
                    "and contractions spliced, with exact truth, and two simulated devices' "
                    "agreement; skipped when absent), speed (throughput, streaming latency, "
                    "memory), peers (NeuroKit2 and BioSPPy when installed: pip install -e "
                    "'.[bench]'). Default: all suites.",
    )
    p.add_argument("--suite", action="append", choices=SUITES, metavar="NAME",
                   help=f"run only this suite (repeatable; one of {', '.join(SUITES)})")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: small cells and few recordings (figures are rough)")
    p.add_argument("--out", default="bench-report", metavar="DIR",
                   help="folder for report.md, results.json and the plots "
                        "(default: bench-report)")
    p.add_argument("--minutes", type=float, default=None, metavar="M",
                   help="minutes of signal per synthetic cell (default 30; 0.5 with --quick)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic recordings")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="folder of the real recordings (default: ../shared/data beside the "
                        "project)")
    p.add_argument("--workers", type=whole_at_least(1, "worker processes"), default=None,
                   metavar="N",
                   help="worker processes of the embedded Dask cluster that runs the "
                        f"{', '.join(ENGINE_SUITES)} suites (default: one per core; 1: in this "
                        "process, without Dask)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run those suites on the Dask cluster of this scheduler "
                        "(tcp://HOST:PORT; default: DASK_SCHEDULER_ADDRESS if set)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    p.set_defaults(func=_run, compiles=True)
