"""``emg-pipeline replay``: stream a recording through the live pipeline.

The recording is read chunk by chunk (bounded memory), paced at real time,
``--speed N`` times real time or ``--fast`` (as fast as possible), fed to the
same :class:`~emg_pipeline.pipeline.Pipeline` a live board feeds, and every
live event is printed as it happens by the shared console view
(:func:`emg_pipeline.sinks.open_live_view`). ``--out`` writes the episode
file as ``detect`` does (same columns, same ``--site``, ``--session`` and
``--timezone`` options); ``--record`` writes a durable BDF+/EDF+ recording
with the episodes as annotations; ``--lsl`` publishes the conditioned EMG and
the live events as Lab Streaming Layer streams (for LabRecorder, or any
inlet), timestamped from the samples' time; ``--web [HOST:]PORT`` serves the live
browser dashboard (:mod:`emg_pipeline.web`). An XDF file is replayed from its
EMG stream (``--stream NAME`` to choose), its gaps kept. Without PATH the
bundled demo is replayed at :data:`DEMO_SPEED` times real time.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from emg_pipeline.commands._common import (
    add_chunk_option,
    add_episode_options,
    add_lsl_outlet_options,
    add_quiet_option,
    add_recording_options,
    add_stream_option,
    add_web_options,
    announce_lsl,
    demo_recording,
    live_stream_for,
    report_lsl,
    settings_from_args,
    sites_from_args,
    stream_sinks,
)
from emg_pipeline.commands._types import positive
from emg_pipeline.pipeline import Pipeline
from emg_pipeline.run import StreamInfo, run
from emg_pipeline.sinks.recording import RecordingWriter
from emg_pipeline.sources.formats import open_recording
from emg_pipeline.sources.replay import ReplaySource

__all__ = ["DEMO_SPEED", "ProgressBar", "register", "run_replay"]

#: default pace of the bundled demo (150 s of data in 15 s)
DEMO_SPEED = 10.0
#: chunk length of paced replays: a typical live chunk
PACED_CHUNK_MS = 20.0
#: chunk length of --fast replays: larger chunks cost less per sample
FAST_CHUNK_MS = 1000.0


class ProgressBar:
    """A one-line progress bar redrawn in place on a terminal.

    Parameters
    ----------
    stream : text file
        Where to draw (standard error).
    total_s : float or None
        Stream duration, when known (else only the position is shown).
    clock : callable
        Wall clock in seconds, for the speed figure and the redraw interval.
    """

    WIDTH = 30

    def __init__(
        self, stream: TextIO, total_s: float | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream
        self.total_s = total_s if total_s and total_s > 0 else None
        self._clock = clock
        self._start = clock()
        self._last = -math.inf
        self._shown = False

    def show(self, position_s: float, force: bool = False) -> None:
        """Redraw at stream time ``position_s`` (at most ten times a second)."""
        now = self._clock()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        elapsed = now - self._start
        pace = f"{position_s / elapsed:6.0f}x" if elapsed > 0 else "      "
        if self.total_s is not None:
            part = min(1.0, position_s / self.total_s)
            filled = round(part * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            text = f"[{bar}] {part * 100:5.1f}% {position_s:9.1f}/{self.total_s:.1f} s {pace}"
        else:
            text = f"{position_s:9.1f} s {pace}"
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the bar (before other output goes to the same terminal)."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def run_replay(args: argparse.Namespace) -> int:
    """Run ``emg-pipeline replay`` with parsed arguments; return the exit status."""
    demo = args.path is None
    path = demo_recording() if demo else Path(args.path)
    if args.fast:
        speed: float | None = None
    elif args.speed is not None:
        speed = args.speed
    else:
        speed = DEMO_SPEED if demo else 1.0
    chunk_ms = args.chunk_ms or (FAST_CHUNK_MS if speed is None else PACED_CHUNK_MS)
    settings = settings_from_args(args)
    quiet = args.quiet
    err = sys.stderr
    live_stream = live_stream_for(args.out)

    with open_recording(path, format=args.format, fs=args.fs, strict=args.strict,
                        stream=args.stream) as reader, \
            ReplaySource(reader, speed=speed, chunk_s=chunk_ms / 1000.0) as source:
        info = source.info
        sites = sites_from_args(args, info.channels, info)  # bad site options fail first
        pipe = Pipeline(info.fs, info.channels, unit=info.unit, settings=settings)
        # every output is checked before the first sample
        sinks, recorder = stream_sinks(args, sites, title=path.name,
                                       recording=f"replay of {path.name}",
                                       show_onsets=not args.no_onsets)
        if quiet < 2:
            pace = "as fast as possible" if speed is None else f"at {speed:g}x real time"
            what = "the bundled demo" if demo else path.name
            print(f"replaying {what} {pace} (Ctrl-C stops)", file=err)
            announce_lsl(sinks, err)
        # on a terminal the live view redraws in place and shows the stream time itself;
        # the bar is for replays whose events go to a file or a pipe
        progress = (
            ProgressBar(err, info.duration_s)
            if quiet == 0 and speed != 1.0 and _isatty(err) and not _isatty(live_stream)
            else None
        )
        stream_info = StreamInfo.of(pipe, title=path.name, start_time=info.start_time)
        try:
            # a read error ends the stream like its end: every output holds the part read
            summary = run(source, pipe, sinks, info=stream_info, partial=True,
                          on_result=None if progress is None else
                          (lambda _result: progress.show(source.position_s)))
        finally:
            if progress is not None:
                progress.clear()
    if summary.interrupted:
        print(f"emg-pipeline: interrupted at {summary.duration_s:.1f} s", file=err)
    if recorder is not None and recorder.writer is not None and quiet < 2:
        _report_recording(recorder.writer, err)
    if quiet < 2:
        report_lsl(sinks, err)
    if summary.read_error is not None:
        raise summary.read_error
    return 130 if summary.interrupted else 0


def _report_recording(recorder: RecordingWriter, err: TextIO) -> None:
    line = (
        f"recorded {recorder.n_samples / recorder.fs:.1f} s to {recorder.path} "
        f"({recorder.variant}, {recorder.n_annotations} annotations)"
    )
    if recorder.clipped.any():
        detail = ", ".join(
            f"{name}: {n}"
            for name, n in zip(recorder.channels, recorder.clipped.tolist(), strict=True)
            if n
        )
        line += f"; samples clipped to the file's range -> {detail}"
    print(line, file=err)


def register(
    subparsers: argparse._SubParsersAction,
    add_pipeline_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the ``replay`` subcommand."""
    p = subparsers.add_parser(
        "replay",
        help="stream a recording through the live pipeline, printing events as they happen",
        description="Replay a recording as a live stream: chunks are fed to the live pipeline "
                    "at real-time pace (default), --speed N times faster, or --fast; every "
                    "live event (onset, prolonged-spasm alert, end with its label) is printed "
                    "as it happens, in stream time, and a summary at the end. Without PATH the "
                    f"bundled demo session is replayed at {DEMO_SPEED:g}x real time.",
    )
    p.add_argument("path", nargs="?", metavar="PATH",
                   help="recording (any supported format); default: the bundled demo")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=positive, default=None, metavar="N",
                      help="replay N times faster than real time (default 1; "
                           f"{DEMO_SPEED:g} for the demo)")
    pace.add_argument("--fast", action="store_true",
                      help="replay as fast as possible, with a progress bar on a terminal")
    add_episode_options(p, out_help="also write the episode file, as 'detect' does ('-': "
                                    "standard output, then the live events go to standard "
                                    "error)")
    p.add_argument("--record", default=None, metavar="FILE.bdf",
                   help="write a durable recording (BDF+ for .bdf, EDF+ for .edf) with the "
                        "detected episodes as annotations")
    add_recording_options(p, fs_help="sampling rate; supplies or checks the file's rate")
    add_stream_option(p)
    add_chunk_option(p, default_help=f"default {PACED_CHUNK_MS:g} ms paced, "
                                     f"{FAST_CHUNK_MS:g} ms with --fast")
    p.add_argument("--no-onsets", action="store_true",
                   help="print only the prolonged-spasm alerts and episode ends")
    add_lsl_outlet_options(p)
    add_web_options(p)
    add_quiet_option(p)
    add_pipeline_options(p)
    p.set_defaults(func=run_replay, compiles=True)
