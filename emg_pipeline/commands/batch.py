"""``emg-pipeline batch INPUTS... --out DIR``: many recordings on Dask, one dataset, one diary.

Runs every recording found in the inputs (files, folders, globs, manifests)
through the streaming pipeline of ``detect``, one Dask task per recording, on
an embedded cluster sized to the machine or on the cluster of ``--scheduler``,
and writes ``DIR/episodes/`` (Parquet, by subject), ``DIR/recordings.parquet``
and ``DIR/report/``. See :mod:`emg_pipeline.batch`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from emg_pipeline.commands._common import (
    add_chunk_option,
    add_recording_options,
    add_site_options,
    settings_from_args,
)
from emg_pipeline.commands._types import positive, whole_at_least

__all__ = ["register", "run_batch_command"]

#: errors listed after the totals line (the rest are in recordings.parquet)
_SHOWN_ERRORS = 5


def run_batch_command(args: argparse.Namespace) -> int:
    """Run ``emg-pipeline batch``; return the exit status."""
    from emg_pipeline.batch import batch
    from emg_pipeline.batch.task import DEFAULT_CHUNK_S

    quiet = args.quiet
    err = sys.stderr

    def say(line: str) -> None:
        if quiet == 0:
            print(line, file=err, flush=True)

    settings = settings_from_args(args)
    chunk_s = args.chunk_ms / 1000.0 if args.chunk_ms else DEFAULT_CHUNK_S
    try:
        result = batch(
            args.inputs, settings, out=args.out, scheduler=args.scheduler, workers=args.workers,
            subject=args.subject, sites=args.site, session=args.session,
            timezone=args.timezone, format=args.format, fs=args.fs, strict=args.strict,
            stream=args.stream, report=not args.no_report, title=args.title,
            long_spasm_s=args.long_spasm_s, recurring_days=args.recurring_days, chunk_s=chunk_s,
            progress=err if quiet == 0 else None, announce=say,
        )
    except KeyboardInterrupt:
        print(f"emg-pipeline: interrupted; the recordings finished are kept in {args.out}: "
              "run the same command again to do the rest", file=err)
        return 130
    if quiet < 2:
        print(result.totals_line(), file=err)
        errors = result.errors
        for row in errors.head(_SHOWN_ERRORS).to_dict("records"):
            print(f"  not read: {row['recording']}: {row['error']}", file=err)
        if len(errors) > _SHOWN_ERRORS:
            print(f"  ... and {len(errors) - _SHOWN_ERRORS} more (column 'error' of "
                  f"{result.out}/recordings.parquet)", file=err)
        if result.report is not None:
            print(f"diary: {result.report}", file=err)
    return 0


def register(
    subparsers: argparse._SubParsersAction,
    add_pipeline_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the ``batch`` subcommand."""
    from emg_pipeline.report.summary import DEFAULT_LONG_SPASM_S, DEFAULT_RECURRING_DAYS

    p = subparsers.add_parser(
        "batch",
        help="detect episodes in many recordings on Dask: one episode dataset, one diary",
        description="Run every recording found in INPUTS through the streaming pipeline of "
                    "'detect' (one Dask task per recording, on an embedded cluster using every "
                    "core, or on the cluster of --scheduler) and write DIR/episodes/ (Parquet, "
                    "partitioned by subject), DIR/recordings.parquet (one row per recording, "
                    "with its error if it could not be read) and DIR/report/ (the diary of "
                    "each subject). Results are written as they come: run the same command "
                    "again after an interruption, or with more recordings, and only what is "
                    "missing or changed (file, code version, settings) is computed. The exit "
                    "status is 0 when the batch ran, even if some recordings could not be "
                    "read. Needs pip install 'emg-pipeline[batch]'.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="recordings (any format 'replay' reads), folders (searched "
                        "recursively), globs (quoted: 'data/*/night*.edf'), or CSV manifests "
                        "with a path column and optional recording, subject, sites "
                        "('ch1=calf; ch2=back'), session, start_time and timezone columns")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder of the results (created). A batch run into it again reuses "
                        "what is unchanged and removes the results of recordings no longer in "
                        "the batch")
    p.add_argument("--subject", default=None, metavar="NAME",
                   help="subject of recordings a manifest does not assign (default: the name "
                        "of the folder holding each file)")
    g = p.add_argument_group("Dask")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on the Dask cluster of this scheduler (tcp://HOST:PORT; default: "
                        "DASK_SCHEDULER_ADDRESS if set, else an embedded cluster)")
    g.add_argument("--workers", type=whole_at_least(1, "worker processes"), default=None,
                   metavar="N", help="worker processes of the embedded cluster (default: one "
                                     "per core)")
    g = p.add_argument_group("report")
    g.add_argument("--no-report", action="store_true", help="write no diary")
    g.add_argument("--title", default="Spasm diary", help="title of the diary pages")
    g.add_argument("--long-spasm-s", type=positive, default=DEFAULT_LONG_SPASM_S, metavar="S",
                   help=f"flag single spasms longer than this (default {DEFAULT_LONG_SPASM_S:g} s)")
    g.add_argument("--recurring-days", type=whole_at_least(2, "days"),
                   default=DEFAULT_RECURRING_DAYS, metavar="N",
                   help="flag prolonged spasms on N or more consecutive days "
                        f"(default {DEFAULT_RECURRING_DAYS})")
    p.add_argument("-q", "--quiet", action="count", default=0,
                   help="-q: no progress or notes, the totals line stays; -qq: nothing but "
                        "errors")
    add_recording_options(p, fs_help="sampling rate of recordings that do not state it (or "
                                     "a check of theirs)")
    p.add_argument("--stream", default=None, metavar="NAME",
                   help="multi-stream files (XDF): the stream to read (default: the stream "
                        "of type EMG)")
    add_chunk_option(p, default_help="default 1000 ms")
    add_site_options(p)
    add_pipeline_options(p)
    p.set_defaults(func=run_batch_command, compiles=True)
