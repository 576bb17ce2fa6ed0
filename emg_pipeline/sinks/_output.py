"""Outputs: checked before the first sample, and replaced in one step when written.

A session never ends in a lost write, and never loses a file that was there:

- :func:`probe_output` and :func:`probe_folder` check, before a stream starts, that
  an output can be written (one error naming the option otherwise);
- :func:`atomic_write` is the one way the commands write a file: into a temporary
  file in the same folder, synced, then renamed over the target. Until that rename
  the target keeps what it held; a write that fails leaves it as it was and the
  temporary file removed. A target that is not a regular file (``/dev/null``, a
  named pipe) is written directly: it cannot be replaced, and holds nothing to lose;
- :func:`sync` flushes an open output to the disk (where the disk can be asked).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from emg_pipeline.errors import OutputError

__all__ = ["atomic_write", "is_special", "probe_folder", "probe_output", "sync"]

#: the end of a temporary file's name: ``episodes.csv.<random>.partial``
PARTIAL_SUFFIX = ".partial"


def is_special(path: str | Path) -> bool:
    """Whether ``path`` exists and is neither a regular file nor a folder (``/dev/null``)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def probe_output(path: str | Path, option: str) -> Path:
    """Make sure ``path`` can be written now, before a stream starts; return it.

    Parent folders are created. A file that exists is left as it is (and must be
    writable: a write-protected file is not replaced); a temporary file is
    created beside it and removed, as :func:`atomic_write` will. ``/dev/null``
    and other special files are accepted if they can be opened for writing.

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
        if target.exists():
            with open(target, "ab"):
                pass
        if not is_special(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            probe = _temporary_name(Path(os.path.realpath(target)))
            with open(probe, "xb"):
                pass
            os.remove(probe)
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


def sync(handle: IO[Any]) -> None:
    """Flush ``handle`` and, for a regular file, have the disk keep what it holds."""
    handle.flush()
    fd = handle.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):   # fsync of a device or a pipe is invalid
        os.fsync(fd)


@contextlib.contextmanager
def atomic_write(path: str | Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """Write ``path`` in one step: ``with atomic_write(path) as handle: ...``.

    The block writes into a temporary file in the same folder (parent folders
    are created), which is synced and renamed over ``path`` when the block
    ends; if the block raises, the temporary file is removed and ``path``
    keeps what it held. A symbolic link is followed (the file it names is
    replaced, the link kept); a special file (``/dev/null``) is written directly.

    Parameters
    ----------
    path : str or Path
        The file to write.
    binary : bool
        Open in binary mode (default: UTF-8 text, newlines as written).

    Yields
    ------
    file object
        The open temporary file.

    Raises
    ------
    OSError
        If the file cannot be written (the caller names the option).
    """
    target = Path(os.path.realpath(path))   # a symbolic link keeps pointing at the file
    text = {} if binary else {"encoding": "utf-8", "newline": ""}
    if is_special(target):
        with open(target, "wb" if binary else "w", **text) as handle:
            yield handle
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(target)
    try:
        # "x": a new file (never another's), with the permissions a new file gets
        with open(temporary, "xb" if binary else "x", **text) as handle:
            yield handle
            sync(handle)
        with contextlib.suppress(OSError):   # a file replaced keeps its permissions
            os.chmod(temporary, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def _temporary_name(target: Path) -> Path:
    """A fresh name beside ``target`` for its temporary file."""
    return target.with_name(f"{target.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")
