"""The ``emg-pipeline`` console script: the command line, safe to interrupt from its start.

Importing :mod:`emg_pipeline.cli` and the commands (numpy, scipy, numba,
matplotlib) takes a second or two. Ctrl-C in that time must end the program
like Ctrl-C at any other time: exit status 130 after one line, not a
traceback. This module imports only the standard library.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["INTERRUPTED", "interruptible_loading", "main"]

#: the line printed when Ctrl-C ends the program
INTERRUPTED = "emg-pipeline: interrupted"


def _exit_interrupted(signum: int, frame: FrameType | None) -> None:
    os.write(2, f"{INTERRUPTED}\n".encode())
    os._exit(130)


@contextmanager
def interruptible_loading() -> Iterator[None]:
    """Within: Ctrl-C ends the program at once with one line and exit status 130.

    Meant for importing modules. A :class:`KeyboardInterrupt` raised inside an
    import is not reliable: a compiled extension's initialisation turns it into
    an ``ImportError``, a library's optional import may swallow it. So while
    modules load, SIGINT raises nothing; its handler prints the line and exits
    (nothing is written yet, so nothing is lost). Outside the main thread, or
    when SIGINT is ignored, nothing changes.
    """
    try:
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.SIG_IGN:
            previous = None
        else:
            signal.signal(signal.SIGINT, _exit_interrupted)
    except ValueError:  # not the main thread: its signals are not ours to handle
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def main() -> int:
    """Run the command line on ``sys.argv``; return the exit status (130 on Ctrl-C)."""
    try:
        with interruptible_loading():
            from .cli import main as run_cli
        return run_cli()
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
