"""Options and outputs that several subcommands share, spelled and handled once.

- :func:`add_recording_options`: ``--fs``, ``--format`` and ``--strict`` of the commands
  that read a recording;
- :func:`add_chunk_option` and :func:`chunk_samples`: ``--chunk-ms``;
- :func:`add_episode_options`: ``--out EVENTS.csv`` with ``--site``, ``--session`` and
  ``--timezone``, so that ``detect``, ``replay`` and ``stream`` write the same episode
  file (:class:`emg_pipeline.sinks.episodes.EpisodeFile`) whatever command wrote it;
- :func:`add_quiet_option`: ``-q`` and ``-qq``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from emg_pipeline.sites import SiteMap, add_site_options

if TYPE_CHECKING:
    from emg_pipeline.run import Sink
    from emg_pipeline.sinks.recording import RecordingSink

from ._types import positive

__all__ = [
    "add_chunk_option",
    "add_episode_options",
    "add_quiet_option",
    "add_recording_options",
    "chunk_samples",
    "live_stream_for",
    "stream_sinks",
]


def add_recording_options(p: argparse.ArgumentParser, *, fs_help: str) -> None:
    """Add ``--fs HZ`` (with ``fs_help``), ``--format NAME`` and ``--strict``."""
    p.add_argument("--fs", type=positive, default=None, metavar="HZ", help=fs_help)
    p.add_argument("--format", default=None, metavar="NAME",
                   help="force a file format instead of detecting it from the content")
    p.add_argument("--strict", action="store_true",
                   help="refuse a damaged recording instead of reading the part that is "
                        "there (a truncated EDF/BDF or WFDB file is otherwise read up to its "
                        "last whole record, with a warning saying what was lost)")


def add_chunk_option(p: argparse.ArgumentParser, *, default_help: str) -> None:
    """Add ``--chunk-ms MS``; ``default_help`` says what the default is."""
    p.add_argument("--chunk-ms", type=positive, default=None, metavar="MS",
                   help=f"chunk length fed to the pipeline ({default_help}; results do not "
                        "depend on it)")


def chunk_samples(chunk_ms: float, fs: float) -> int:
    """Samples in a chunk of ``chunk_ms`` at ``fs`` (at least one).

    Examples
    --------
    >>> chunk_samples(20.0, 1000.0), chunk_samples(0.1, 200.0)
    (20, 1)
    """
    return max(1, round(chunk_ms / 1000.0 * fs))


def add_episode_options(p: argparse.ArgumentParser, *, out_help: str) -> None:
    """Add ``--out EVENTS.csv`` (with ``out_help``) and the site and time options."""
    p.add_argument("--out", default=None, metavar="EVENTS.csv", help=out_help)
    add_site_options(p)


def add_quiet_option(p: argparse.ArgumentParser) -> None:
    """Add ``-q`` (no live event lines; the summary stays) and ``-qq`` (errors only)."""
    p.add_argument("-q", "--quiet", action="count", default=0,
                   help="-q: no live event lines or progress, the summary stays; "
                        "-qq: nothing but errors")


def stream_sinks(
    args: argparse.Namespace, sites: SiteMap, *, title: str, recording: str,
    show_onsets: bool = True,
) -> tuple[list[Sink], RecordingSink | None]:
    """The sinks of a live session (``replay``, ``stream``), every output checked now.

    The live view (unless ``-qq``), the episode file of ``--out`` and the
    recording of ``--record``; the recording sink is also returned on its own,
    for the line that says what was recorded.
    """
    from emg_pipeline.sinks import open_live_view
    from emg_pipeline.sinks.episodes import EpisodeFile
    from emg_pipeline.sinks.recording import RecordingSink

    quiet = args.quiet
    sinks: list[Sink] = []
    if quiet < 2:
        sinks.append(open_live_view(live_stream_for(args.out), title=title,
                                    events=quiet == 0, show_onsets=show_onsets))
    if args.out is not None:
        sinks.append(EpisodeFile(args.out, sites, announce=sys.stderr if quiet < 2 else None))
    recorder = None
    if args.record is not None:
        recorder = RecordingSink(args.record, recording=recording)
        sinks.append(recorder)
    return sinks, recorder


def live_stream_for(out: str | None) -> TextIO:
    """Where live events go: standard error when the episodes go to standard output."""
    return sys.stderr if out == "-" else sys.stdout
