"""Compiled kernels: the one place that configures numba.

The hot loops of the pipeline that numpy cannot express without per-sample
Python work (recursive filters across channels, the adaptive mains comb,
framing and moving windows, the detector's hysteresis walk) are compiled with
:func:`jit`. Each kernel walks a ``(n_samples, n_channels)`` array once, in
sample order, with its state in named arrays owned by the calling stage (a
record array with a field per state variable, or separate arrays passed by
name: numba types a tuple of arrays at every call, which cost a few
microseconds per live chunk), so a kernel's result never depends on how the
stream was chunked. What
runs once per block or per episode is numpy, not a kernel: compiling costs
more than it would save.

``fastmath`` stays off: reassociating sums would make results depend on the
chunk boundaries in the last bit, and IEEE semantics (NaN, inf) are relied on.
Compiled code is cached next to the sources, so the compilation cost (about a
second per kernel) is paid once per installation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numba

__all__ = ["compilation_pending", "jit", "load_numba"]

F = TypeVar("F", bound=Callable[..., Any])


def jit(func: F) -> F:
    """Compile ``func`` in nopython mode (cached, GIL released, no fastmath)."""
    return numba.njit(cache=True, nogil=True, fastmath=False)(func)  # type: ignore[return-value]


def compilation_pending() -> bool:
    """Whether no compiled kernel of this installation is cached yet.

    Then the next run that builds a pipeline compiles them first (about 15 s
    on a quiet 2-core machine), and a command says so rather than sitting
    silent. The cache is beside the sources, or under ``NUMBA_CACHE_DIR``
    when that is set. When the package folder is not writable numba caches
    elsewhere and this returns False (it cannot tell).
    """
    cache_dir = os.environ.get("NUMBA_CACHE_DIR")
    if cache_dir:
        return not any(Path(cache_dir).glob("**/*.nbi"))
    root = Path(__file__).resolve().parent
    if not os.access(root, os.W_OK):
        return False
    return not any(root.glob("**/__pycache__/*.nbi"))


def load_numba() -> None:
    """Load now what numba loads on the first call of a kernel: its CPU target's registries.

    Loading them imports modules that enter types in numba's global tables;
    Ctrl-C in the middle leaves those half filled, and every later kernel call
    fails (``duplicate registration``). The command line calls this while
    Ctrl-C ends the program at once
    (:func:`emg_pipeline._entry.interruptible_loading`); the first kernel call
    would spend the same time (about half a second) otherwise.
    """
    from numba.core.registry import cpu_target

    cpu_target.target_context.refresh()
