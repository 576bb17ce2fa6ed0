"""``emg-pipeline report`` (the spasm diary) and ``emg-pipeline plot`` (a stretch of recording).

``report EVENTS... [--out DIR]`` reads the episode files of one or many
sessions (or recordings, on which it runs the detector first) and writes a
folder with ``index.html``, PNG plots and CSV/JSON summaries per local day and
per site, with plain-language flags.

``plot RECORDING [--start S] [--end S] [--out FILE.png]`` runs the streaming
pipeline over a recording and draws the raw signal, the envelope, the on/off
thresholds and the labelled episodes of a stretch, keeping only that stretch
(in bounded resolution) in memory.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from emg_pipeline.commands._common import (
    DEFAULT_CHUNK_MS,
    add_chunk_option,
    add_recording_options,
    add_site_options,
    chunk_samples,
    demo_recording,
    settings_from_args,
    sites_from_args,
)
from emg_pipeline.commands._types import positive, seconds, whole_at_least
from emg_pipeline.errors import OutputError, UsageError
from emg_pipeline.labels import Label
from emg_pipeline.pipeline import Pipeline
from emg_pipeline.report import (
    detect_recording,
    load_episode_files,
    session_name,
    summarise,
    write_report,
)
from emg_pipeline.report.digest import StretchRecorder
from emg_pipeline.report.plots import plot_stretch
from emg_pipeline.report.summary import DEFAULT_LONG_SPASM_S, DEFAULT_RECURRING_DAYS
from emg_pipeline.run import run
from emg_pipeline.sinks._output import probe_folder, probe_output
from emg_pipeline.sinks.episodes import is_episode_file
from emg_pipeline.sites import load_session, parse_timezone

__all__ = ["register", "run_plot", "run_report"]

_FS_HELP = "sampling rate of recordings that do not state it"


def register(
    subparsers: argparse._SubParsersAction,
    add_pipeline_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the ``report`` and ``plot`` subcommands."""
    p = subparsers.add_parser(
        "report",
        help="spasm diary: a report per day and site from episode files or recordings",
        description="Summarise one or many sessions per local day and per site: counts of "
                    "twitches and spasms, spasm time, longest spasm, tonic and clonic shares, "
                    "hour by hour; flag, as information and not as a diagnosis, prolonged "
                    "spasms on several consecutive days, spasms at the neck or back and very "
                    "long spasms. Writes DIR/index.html with PNG plots, and CSV and JSON "
                    "summaries.",
    )
    p.add_argument("inputs", nargs="*", metavar="EVENTS",
                   help="episode files (CSV written by 'detect --out' or by a report) or "
                        "recordings, on which episodes are detected first; default: the "
                        "bundled demo recording")
    p.add_argument("--out", default="report", metavar="DIR",
                   help="folder to write the report into (default: ./report)")
    p.add_argument("--long-spasm-s", type=positive, default=DEFAULT_LONG_SPASM_S,
                   metavar="S", help="flag single spasms longer than this "
                                     f"(default {DEFAULT_LONG_SPASM_S:g} s)")
    p.add_argument("--recurring-days", type=whole_at_least(2, "days"),
                   default=DEFAULT_RECURRING_DAYS, metavar="N",
                   help="flag prolonged spasms on N or more consecutive days "
                        f"(default {DEFAULT_RECURRING_DAYS})")
    p.add_argument("--title", default="Spasm diary", help="title of the page")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on standard error")
    add_recording_options(p, fs_help=_FS_HELP)
    add_site_options(p)
    add_pipeline_options(p)
    p.set_defaults(func=run_report)

    p = subparsers.add_parser(
        "plot",
        help="PNG of raw signal, envelope, thresholds and episodes for a stretch of a recording",
        description="Run the streaming pipeline over a recording and draw, for each channel, "
                    "the raw signal, the envelope with the on and off thresholds, and the "
                    "labelled episodes between --start and --end. Only that stretch is kept "
                    "in memory, so long recordings are fine.",
    )
    p.add_argument("path", nargs="?", metavar="RECORDING",
                   help="recording (default: the bundled demo)")
    p.add_argument("--start", type=seconds, default=0.0, metavar="S",
                   help="start of the stretch, seconds from the start of the recording")
    p.add_argument("--end", type=seconds, default=None, metavar="S",
                   help="end of the stretch (default: the end of the recording)")
    p.add_argument("--out", default=None, metavar="FILE.png",
                   help="PNG to write (default: RECORDING-name.png in the current folder)")
    add_chunk_option(p, default_help=f"default {DEFAULT_CHUNK_MS:g} ms")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on standard error")
    add_recording_options(p, fs_help=_FS_HELP)
    add_site_options(p)
    add_pipeline_options(p)
    p.set_defaults(func=run_plot)


def run_report(args: argparse.Namespace) -> int:
    """Run ``emg-pipeline report``; return the exit status."""
    inputs = [Path(p) for p in args.inputs] or [demo_recording()]
    out = probe_folder(args.out, "--out")   # before any detection runs
    zone = parse_timezone(args.timezone) if args.timezone else None
    settings = settings_from_args(args)
    episode_files = []
    recordings = []
    names = _names(inputs)
    for path, name in zip(inputs, names, strict=True):
        if not path.exists():
            raise UsageError(f"{path}: no such file")
        if _input_kind(path, args) == "episodes":
            episode_files.append((path, name))
            continue
        if not args.quiet:
            print(f"{path.name}: detecting episodes...", file=sys.stderr)
        rec = detect_recording(
            path, out / f"{name}.episodes.csv", settings=settings, format=args.format,
            fs=args.fs, resolve=lambda channels, info: sites_from_args(args, channels, info),
            name=name, strict=args.strict,
        )
        recordings.append(rec)
    tables = []
    if episode_files:
        # sites from the session file, then --site, override the files' own sites
        session = load_session(args.session) if args.session else None
        options = [f"{ch}={site}" for ch, site in session.sites.items()] if session else []
        loaded = load_episode_files(
            [p for p, _ in episode_files], site_options=[*options, *args.site],
            names=[n for _, n in episode_files],
            timezone=zone or (session.timezone if session else None),
        )
        if not args.quiet:
            for line in loaded.attrs.get("local_times", []):
                print(line, file=sys.stderr)
        tables.append(loaded)
    tables += [rec.episodes for rec in recordings]
    table = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    summary = summarise(table, long_spasm_s=args.long_spasm_s,
                        recurring_days=args.recurring_days, timezone=zone)
    try:
        written = write_report(summary, out, recordings, title=args.title)
    except OSError as exc:
        raise OutputError.from_os("--out", out, exc) from None
    if not args.quiet:
        n_tw = int((table["label"] == Label.TWITCH).sum())
        n_sp = int((table["label"] == Label.SPASM).sum())
        print(f"report: {len(inputs)} session(s), {len(summary.days)} day(s), "
              f"{n_tw} twitch{'' if n_tw == 1 else 'es'}, {n_sp} spasm{'' if n_sp == 1 else 's'}, "
              f"{len(summary.flags)} flag(s) -> {written['html']}", file=sys.stderr)
        for flag in summary.flags:
            print(f"  note: {flag.message}", file=sys.stderr)
    return 0


def _input_kind(path: Path, args: argparse.Namespace) -> str:
    """``"episodes"`` or ``"recording"``, told by the columns; refuse a table that is neither.

    An episode file has the columns channel, onset_s, offset_s, duration_s and
    label; a recording table has numeric channel columns (and maybe a time
    column). A table that names some episode columns but not all, or holds
    text columns, is neither: refused with one line rather than read as EMG.
    """
    from emg_pipeline.sinks.episodes import REQUIRED_COLUMNS
    from emg_pipeline.sources.formats import open_recording

    if path.is_file() and is_episode_file(path):
        return "episodes"
    if path.is_file():
        with open(path, "rb") as handle:
            head = handle.readline(4096).decode("utf-8-sig", errors="replace")
        names = {h.strip().strip('"').lower() for h in head.replace(";", ",").split(",")}
        named = [c for c in REQUIRED_COLUMNS if c in names]
        if len(named) >= 2:
            missing = ", ".join(c for c in REQUIRED_COLUMNS if c not in names)
            raise UsageError(f"{path}: looks like an episode file but lacks the column(s) "
                             f"{missing}")
    # strict here: detect_recording, which opens the recording again, has no strict option
    with open_recording(path, format=args.format, fs=args.fs, strict=args.strict) as reader:
        ignored = reader.info.metadata.get("ignored_columns", ())
    if ignored:
        text = ", ".join(repr(str(c)) for c in ignored)
        raise UsageError(
            f"{path}: neither an episode file (columns {', '.join(REQUIRED_COLUMNS)}) nor a "
            f"recording (numeric channel columns): column(s) {text} hold text"
        )
    return "recording"


def _names(paths: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for path in paths:
        name = session_name(path)
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def run_plot(args: argparse.Namespace) -> int:
    """Run ``emg-pipeline plot``; return the exit status."""
    from emg_pipeline.sources.formats import open_recording

    path = Path(args.path) if args.path else demo_recording()
    start = float(args.start)
    end = math.inf if args.end is None else float(args.end)
    if not end > start:
        raise UsageError(f"--end ({args.end:g} s) must be after --start ({start:g} s)")
    out = Path(args.out) if args.out else Path(f"{session_name(path)}.png")
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file, got {out}")
    probe_output(out, "--out")   # before the first sample, like every output
    settings = settings_from_args(args)
    with open_recording(path, format=args.format, fs=args.fs, strict=args.strict) as reader:
        info = reader.info
        if info.duration_s is not None and start >= info.duration_s:
            raise UsageError(
                f"--start {start:g} s is past the end of the recording ({info.duration_s:.1f} s)"
            )
        sites = sites_from_args(args, info.channels, info)
        pipe = Pipeline(info.fs, info.channels, unit=info.unit, settings=settings)
        recorder = StretchRecorder(info.fs, len(info.channels), start, end)
        chunk = chunk_samples(args.chunk_ms or DEFAULT_CHUNK_MS, info.fs)
        # stop once the stretch is drawn and every episode in it has ended
        chunks = itertools.takewhile(lambda _: not recorder.done, reader.iter_chunks(chunk))
        run(chunks, pipe, [recorder]).raise_if_interrupted()
    if recorder.seen_s <= start:
        raise UsageError(
            f"--start {start:g} s is past the end of the recording ({recorder.seen_s:.1f} s)"
        )
    shown_end = min(end, recorder.seen_s)
    title = f"{path.name}: {start:.1f}-{shown_end:.1f} s"
    try:
        plot_stretch(recorder, out, info.channels, unit=info.unit, sites=sites, raw=True,
                     title=title)
    except OSError as exc:
        raise OutputError.from_os("--out", out, exc) from None
    if not args.quiet:
        n = len(recorder.episodes())
        print(f"{path.name}: {start:.1f}-{shown_end:.1f} s, {n} episode(s) -> {out}",
              file=sys.stderr)
    return 0
