"""Command line: ``emg-pipeline COMMAND ...`` (also ``python -m emg_pipeline``).

Every error the user can cause (a missing or malformed file, an unknown or
inconsistent sampling rate, a bad setting) ends the program with one line on
standard error and exit status 2; nothing is printed as a traceback. A
recording read only in part (a truncated file) gives one
``emg-pipeline: warning: ...`` line saying what was lost. A recording that
cannot be read to its end (a damaged cell, undecodable bytes, a truncated
compressed file) is processed up to the fault, like a stream stopped there:
the outputs hold that part, the summary says the stream stopped by a read
error, and the error line follows (status 2). Ctrl-C stops the same way, with
``interrupted at ... s`` (status 130).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import typing
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from ._entry import INTERRUPTED, interruptible_loading
from .commands._common import (
    DEFAULT_CHUNK_MS,
    add_chunk_option,
    add_episode_options,
    add_pipeline_options,
    add_recording_options,
    add_stream_option,
    chunk_samples,
    demo_recording,
    setting_error,
    settings_from_args,
    sites_from_args,
)
from .errors import ConfigError, EmgPipelineError, RecordingWarning, UsageError

if typing.TYPE_CHECKING:
    from .run import RunSummary

__all__ = ["demo_recording", "main"]

#: modules of :mod:`emg_pipeline.commands` that add subcommands, in the order of ``--help``;
#: each has ``register(subparsers, add_pipeline_options)``
COMMAND_MODULES: tuple[str, ...] = ("replay", "serve", "report", "batch", "bench", "ble", "lab")


class _ArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`UsageError`, not a usage block and exit.

    :func:`main` prints them on one line like every other error, and callers of
    :func:`main` get an exit status back instead of :class:`SystemExit`.
    Subparsers inherit the class.
    """

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _cmd_detect(args: argparse.Namespace) -> int:
    from .pipeline import Pipeline
    from .run import StreamInfo, run
    from .sinks.episodes import EpisodeFile
    from .sources.formats import open_recording

    path = Path(args.path) if args.path else demo_recording()
    settings = settings_from_args(args)
    fif = _fif_output(args.mne_fif)
    with open_recording(path, format=args.format, fs=args.fs, strict=args.strict,
                        stream=args.stream) as reader:
        info = reader.info
        sites = sites_from_args(args, info.channels, info)
        episodes = EpisodeFile(args.out or "-", sites,
                               announce=None if args.quiet else sys.stderr)
        pipe = Pipeline(info.fs, info.channels, unit=info.unit, settings=settings)
        chunk = chunk_samples(args.chunk_ms or DEFAULT_CHUNK_MS, info.fs)
        # a read error ends the stream like its end: the part read is written, then said
        summary = run(reader.iter_chunks(chunk), pipe, [episodes],
                      info=StreamInfo.of(pipe, title=path.name, start_time=info.start_time),
                      partial=True)
    if not args.quiet:
        for line in detect_summary(summary):
            print(line, file=sys.stderr)
    if summary.read_error is not None:
        raise summary.read_error
    if summary.interrupted:
        print(f"emg-pipeline: interrupted at {summary.duration_s:.1f} s", file=sys.stderr)
    if fif is not None and not summary.interrupted:
        from .lab import to_mne, write_fif

        raw = to_mne(path, summary.episodes, format=args.format, fs=args.fs, stream=args.stream)
        write_fif(raw, fif)
        if not args.quiet:
            print(f"wrote {fif} (MNE FIF: {len(raw.ch_names)} emg channels in volts, "
                  f"{len(summary.episodes)} episodes as annotations)", file=sys.stderr)
    return 130 if summary.interrupted else 0


def _fif_output(option: str | None) -> Path | None:
    """The ``--mne-fif`` file, checked (and MNE imported) before the detection runs."""
    if option is None:
        return None
    from .lab.deps import import_mne
    from .sinks._output import probe_output

    import_mne()
    return probe_output(option, "--mne-fif")


def detect_summary(summary: RunSummary) -> list[str]:
    """The short summary of ``detect``: one line per fact, what was found, what was repaired.

    A stream stopped before the recording's end says so first, with the time it
    reached: ``interrupted at 3.1 s``, ``stopped by a read error at 20.0 s``.
    """
    from .conditioning.gaps import MAX_ABS_SAMPLE
    from .events import not_muscle_reasons

    info = summary.info
    twitches, spasms = summary.n_twitches, summary.n_spasms
    mains = summary.mains_text()
    plural = "" if info.n_channels == 1 else "s"
    span = f"{summary.stopped} at " if summary.stopped else ""
    cut = sum(e.truncated for e in summary.episodes)
    lines = [
        f"{info.title}: {span}{summary.duration_s:.1f} s, {info.n_channels} channel{plural} at "
        f"{info.fs:g} Hz; {twitches} twitch{'' if twitches == 1 else 'es'}, "
        f"{spasms} spasm{'' if spasms == 1 else 's'}"
        + (f" ({cut} cut short, marked truncated)" if cut else "") + f"; mains {mains}"
    ]

    def per_channel(values: Sequence[float], fmt: str) -> str:
        return ", ".join(fmt.format(name, v) for name, v in zip(info.channels, values,
                                                                  strict=True) if v)

    if any(summary.bridged_samples):
        lines.append(f"bridged samples that were missing (NaN, inf, beyond ±{MAX_ABS_SAMPLE:g}, "
                     "empty cells or gaps in the time column) -> "
                     + per_channel(summary.bridged_samples, "{}: {}"))
    if summary.lost_samples:
        lines.append(f"lost samples marked as gaps: {summary.lost_samples}")
    if any(summary.artefact_s):
        lines.append("artefact time excluded from detection -> "
                     + per_channel(summary.artefact_s, "{}: {:.1f} s"))
    if any(summary.no_signal_s):
        lines.append("no signal (flat line: electrode off or zeros) -> "
                     + per_channel(summary.no_signal_s, "{}: {:.1f} s"))
    if summary.rejected:
        rejected = [sum(e.channel == name for e in summary.rejected) for name in info.channels]
        lines.append(f"not muscle ({not_muscle_reasons(summary.rejected)}), not counted -> "
                     + per_channel(rejected, "{}: {}"))
    return lines


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``emg-pipeline`` command."""
    parser = _ArgumentParser(
        prog="emg-pipeline",
        description="Detect muscle twitches and prolonged spasms in surface EMG, live or from "
                    "recordings.",
    )
    parser.add_argument("--version", action="version", version=f"emg-pipeline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "detect",
        help="detect and label episodes in a recording",
        description="Run the streaming pipeline over a recording, chunk by chunk as a live "
                    "stream would, and write the episode file: one row per episode (channel, "
                    "site, onset_s, onset_time when the start time is known, offset_s, "
                    "duration_s, label, pattern, peak, ...). Without PATH the bundled demo "
                    "session is used. A summary goes to standard error.",
    )
    p.add_argument("path", nargs="?", metavar="PATH",
                   help="recording (CSV with a header: an optional time column named time, "
                        "time_s or timestamp, every other numeric column a channel; or any "
                        "supported device format); default: the bundled demo")
    add_recording_options(p, fs_help="sampling rate; supplies or checks the file's rate (a "
                                     "rate stated by its header or time column must agree)")
    add_stream_option(p)
    add_chunk_option(p, default_help=f"default {DEFAULT_CHUNK_MS:g} ms, a typical live chunk")
    add_episode_options(p, out_help="where to write the episode file (default or '-': "
                                    "standard output)")
    p.add_argument("--mne-fif", default=None, metavar="FILE.fif",
                   help="also write the recording with its episodes as annotations as an MNE "
                        "FIF file (emg channels in volts; needs the 'lab' extra)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on standard error")
    add_pipeline_options(p)
    p.set_defaults(func=_cmd_detect, compiles=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f".commands.{name}", __package__)
        module.register(sub, add_pipeline_options)
    return parser


def _error(message: object) -> int:
    """Print ``message`` as the one-line error of the command; return the exit status."""
    text = " ".join(str(message).split())  # one line, whatever the exception's text
    print(f"emg-pipeline: error: {text}", file=sys.stderr)
    return 2


def _silence_stdout() -> None:
    """Point standard output at the null device, so the final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (captured)
        pass


def _one_line_warnings(previous: Callable[..., object]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints a :class:`RecordingWarning` as one plain line.

    Each distinct message is printed once, however often a command opens the
    recording; other warnings go to ``previous``.
    """
    shown: set[str] = set()

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: typing.TextIO | None = None, line: str | None = None) -> None:
        if not issubclass(category, RecordingWarning):
            previous(message, category, filename, lineno, file, line)
            return
        text = " ".join(str(message).split())
        if text not in shown:
            shown.add(text)
            print(f"emg-pipeline: warning: {text}", file=sys.stderr, flush=True)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    ``--help`` and ``--version`` print and raise :class:`SystemExit` (status 0)
    as argparse does; every error returns 2 after one line on standard error.
    A :class:`~emg_pipeline.errors.RecordingWarning` (a recording read only in
    part) is printed as one ``emg-pipeline: warning: ...`` line. Ctrl-C returns
    130 after one line, whenever it comes: while the commands' modules are
    imported (numpy, scipy, numba, matplotlib: a second or two), it ends the
    program at once the same way (see :func:`~emg_pipeline._entry.interruptible_loading`).
    """
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return _main(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130


def _prepare_kernels(quiet: bool) -> None:
    """Before a command that runs the pipeline: a note if its kernels are yet to be compiled.

    Numba's registries are loaded here, where Ctrl-C ends the program at once
    (see :func:`~emg_pipeline._jit.load_numba`), not in the first chunk.
    """
    from ._jit import compilation_pending, load_numba

    if not quiet and compilation_pending():
        print("emg-pipeline: first run of this installation: compiling the signal "
              "kernels (once; about 15 s)", file=sys.stderr, flush=True)
    with interruptible_loading():
        load_numba()


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--version"]:
        # answered before the commands (and the libraries they import) are loaded
        print(f"emg-pipeline {__version__}")
        raise SystemExit(0)
    with interruptible_loading():
        parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "compiles", False):
            _prepare_kernels(quiet=bool(getattr(args, "quiet", False)))
        return int(args.func(args))
    except ConfigError as exc:
        return _error(setting_error(exc))
    except EmgPipelineError as exc:
        return _error(exc)
    except BrokenPipeError:
        # the reader of standard output went away (emg-pipeline detect | head):
        # not an error of ours; stop quietly with the status of a SIGPIPE death
        _silence_stdout()
        return 141
    except (ValueError, OSError) as exc:
        # settings validated by numpy/scipy or the OS (permissions, full disk)
        return _error(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
