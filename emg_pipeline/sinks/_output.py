"""Outputs are checked before the first sample: a session never ends in a lost write."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from emg_pipeline.errors import OutputError

__all__ = ["probe_folder", "probe_output"]


def probe_output(path: str | Path, option: str) -> Path:
    """Make sure ``path`` can be written now, before a stream starts; return it.

    Parent folders are created. A file that exists is left as it is; one that did
    not is created to prove it can be, then removed.

    Raises
    ------
    OutputError
        Naming ``option``, the path and the reason (``permission denied``,
        ``is a directory``, ``read-only file system``...).
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(option, path, "is a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        existed = target.exists()
        with open(target, "ab"):
            pass
        if not existed:
            with contextlib.suppress(OSError):
                os.remove(target)
    except OSError as exc:
        raise OutputError.from_os(option, path, exc) from None
    return target


def probe_folder(path: str | Path, option: str) -> Path:
    """Make sure files can be written into the folder ``path`` (created if missing).

    Raises
    ------
    OutputError
        Naming ``option``, the path and the reason.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputError(option, path, "is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".emg-pipeline-probe-{os.getpid()}"
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise OutputError.from_os(option, path, exc) from None
    return folder
