"""``emg-pipeline serve``: the live browser dashboard over a replayed recording.

``serve`` replays a recording (the bundled demo without PATH) through the live
pipeline **at real time** (``--speed N`` for faster), so the page shows exactly
what a live session shows: the traces, the states, the alerts as they fire, the
episodes as they end, the diary growing. When the recording ends the page
stays up with the session's final state and diary until Ctrl-C (or ``--linger
S`` seconds), so it can be looked at and shown. It listens on 127.0.0.1:8765
unless ``--web`` says otherwise (``--web 0.0.0.0:8765``: any network, with a
token printed at start). ``--web-diary`` adds the episode files of earlier
sessions to the diary (the consecutive-day flag needs several days);
``--out`` and ``--record`` write the session's files, manual marks included.

For a live board or an LSL stream, use ``emg-pipeline stream ... --web PORT``;
for a replay that ends with the recording, ``emg-pipeline replay ... --web PORT``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from emg_pipeline.commands._common import (
    add_chunk_option,
    add_episode_options,
    add_quiet_option,
    add_recording_options,
    add_stream_option,
    add_web_options,
    demo_recording,
    settings_from_args,
    sites_from_args,
    stream_sinks,
)
from emg_pipeline.commands._types import positive, seconds
from emg_pipeline.pipeline import Pipeline
from emg_pipeline.run import StreamInfo, run
from emg_pipeline.sources.formats import open_recording
from emg_pipeline.sources.replay import ReplaySource

__all__ = ["DEFAULT_WEB", "register", "run_serve"]

#: where ``serve`` listens when ``--web`` is not given
DEFAULT_WEB = "127.0.0.1:8765"
#: chunk length fed to the pipeline: a typical live chunk
CHUNK_MS = 20.0


def run_serve(args: argparse.Namespace) -> int:
    """Run ``emg-pipeline serve`` with parsed arguments; return the exit status."""
    from emg_pipeline.web import WebSink

    demo = args.path is None
    path = demo_recording() if demo else Path(args.path)
    settings = settings_from_args(args)
    chunk_ms = args.chunk_ms or CHUNK_MS
    err = sys.stderr
    quiet = args.quiet
    with open_recording(path, format=args.format, fs=args.fs, strict=args.strict,
                        stream=args.stream) as reader, \
            ReplaySource(reader, speed=args.speed, chunk_s=chunk_ms / 1000.0) as source:
        info = source.info
        sites = sites_from_args(args, info.channels, info)   # bad site options fail first
        pipe = Pipeline(info.fs, info.channels, unit=info.unit, settings=settings)
        sinks, _ = stream_sinks(args, sites, title=path.name, recording=f"replay of {path.name}",
                                web_linger=True)
        web = next(s for s in sinks if isinstance(s, WebSink))
        try:
            if quiet < 2:
                what = "the bundled demo" if demo else path.name
                print(f"replaying {what} at {args.speed:g}x real time into the dashboard "
                      "(Ctrl-C stops)", file=err)
            stream_info = StreamInfo.of(pipe, title=path.name, start_time=info.start_time)
            summary = run(source, pipe, sinks, info=stream_info, partial=True)
            if summary.read_error is not None:   # the outputs hold the part read
                raise summary.read_error
            if summary.interrupted:
                print(f"emg-pipeline: interrupted at {summary.duration_s:.1f} s", file=err)
                return 130
            if quiet < 2:
                until = "until Ctrl-C" if args.linger is None else f"for {args.linger:g} s"
                print(f"the replay has ended; the dashboard stays at {web.url} {until}",
                      file=err, flush=True)
            _wait(args.linger)
        finally:
            web.stop()
    return 0


def _wait(linger_s: float | None, sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait ``linger_s`` seconds (None: until Ctrl-C); Ctrl-C ends the wait, not the program."""
    deadline = None if linger_s is None else time.monotonic() + linger_s
    try:
        while deadline is None or time.monotonic() < deadline:
            sleep(0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass


def register(
    subparsers: argparse._SubParsersAction,
    add_pipeline_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the ``serve`` subcommand."""
    p = subparsers.add_parser(
        "serve",
        help="serve the live browser dashboard over a replayed recording (default: the demo)",
        description="Replay a recording (default: the bundled demo) at real time through the "
                    "live pipeline and serve the browser dashboard: live traces, per-channel "
                    "state, the prolonged-spasm alert, link faults, the episode list, the "
                    "session diary, and manual marks. The page stays up after the end until "
                    f"Ctrl-C. Listens on {DEFAULT_WEB} unless --web says otherwise.",
    )
    p.add_argument("path", nargs="?", metavar="PATH",
                   help="recording (any supported format); default: the bundled demo")
    p.add_argument("--speed", type=positive, default=1.0, metavar="N",
                   help="replay N times faster than real time (default 1)")
    p.add_argument("--linger", type=seconds, default=None, metavar="S",
                   help="after the end, keep the page up S seconds (default: until Ctrl-C)")
    add_web_options(p, default=DEFAULT_WEB)
    add_episode_options(p, out_help="also write the episode file (manual marks included)")
    p.add_argument("--record", default=None, metavar="FILE.bdf",
                   help="write a durable recording (BDF+ for .bdf, EDF+ for .edf) with the "
                        "episodes and manual marks as annotations")
    add_recording_options(p, fs_help="sampling rate; supplies or checks the file's rate")
    add_stream_option(p)
    add_chunk_option(p, default_help=f"default {CHUNK_MS:g} ms")
    add_quiet_option(p)
    add_pipeline_options(p)
    p.set_defaults(func=run_serve, compiles=True)
