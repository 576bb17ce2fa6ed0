"""Shared pieces of the benchmark suites: provenance, timing, tables, JSON, the engine.

Suites made of many independent recordings (``robust``, ``physio``, ``mains``)
run them with :func:`run_tasks`: one after another in this process, or as one
task per recording on the engine of ``emg-pipeline batch``
(:class:`~emg_pipeline.batch.engine.Engine`: every core, or a Dask cluster),
with the same results in the same order.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import emg_pipeline

if TYPE_CHECKING:
    from emg_pipeline.batch.engine import Engine

__all__ = [
    "best_of",
    "decile",
    "environment",
    "finite_median",
    "fmt",
    "jsonable",
    "markdown",
    "provenance",
    "provenance_text",
    "run_tasks",
    "seeded_rng",
]

def provenance() -> dict[str, Any]:
    """Which package code was measured: version, git commit, local edits, digest of its sources."""
    from emg_pipeline.batch.task import source_digest

    pkg = Path(emg_pipeline.__file__).resolve().parent

    def git(*cmd: str) -> str | None:
        try:
            out = subprocess.run(["git", *cmd], cwd=pkg, capture_output=True, text=True,
                                 timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--", ".") if commit else None
    return {"version": emg_pipeline.__version__, "commit": commit,
            "modified_files": len(status.splitlines()) if status else 0,
            "source_sha256": source_digest()[:12]}


def provenance_text(p: dict[str, Any]) -> str:
    """One line describing :func:`provenance`."""
    where = f"commit {p['commit']}" if p["commit"] else "no git checkout"
    if p["modified_files"]:
        where += f" + {p['modified_files']} locally modified file(s)"
    return f"emg-pipeline {p['version']} ({where}; sources sha256 {p['source_sha256']})"


def environment() -> dict[str, Any]:
    """Interpreter, library versions, CPU count and thread settings of this run."""
    import pandas as pd
    import scipy

    return {
        "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__, "pandas": pd.__version__,
        "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "threads": {v: os.environ.get(v) for v in
                    ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
    }


def seeded_rng(seed: int, key: str) -> np.random.Generator:
    """A generator for one benchmark cell that does not depend on which other cells run.

    Examples
    --------
    >>> a = seeded_rng(0, "snr12").standard_normal(3)
    >>> b = seeded_rng(0, "snr12").standard_normal(3)
    >>> bool((a == b).all()), bool((a == seeded_rng(0, "snr6").standard_normal(3)).all())
    (True, False)
    """
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Smallest wall-clock time (``time.perf_counter``) of ``repeats`` calls of ``fn``."""
    best = math.inf
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: ``n/a`` for None and NaN, fixed decimals for floats.

    Examples
    --------
    >>> fmt(float("nan")), fmt(0.51234), fmt(3), fmt(True), fmt(12.0, 0)
    ('n/a', '0.512', '3', 'yes', '12')
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}f}"
    return str(value)


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table.

    Examples
    --------
    >>> print(markdown(["a", "b"], [["1", "2"]]))
    | a | b |
    |---|---|
    | 1 | 2 |
    """
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars made plain and non-finite floats made None (JSON null).

    Examples
    --------
    >>> jsonable({"a": np.float64(1.5), "b": [float("nan"), np.int64(2)], "c": (True,)})
    {'a': 1.5, 'b': [None, 2], 'c': [True]}
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def decile(values: Iterable[float]) -> float:
    """The 10th percentile of the finite values (the worst decile of a score); NaN if none."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    return float(np.percentile(v, 10)) if v.size else math.nan


def finite_median(values: Iterable[float]) -> float:
    """The median of the finite values; NaN if none."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    return float(np.median(v)) if v.size else math.nan


def run_tasks(
    fn: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    *,
    engine: Engine | None = None,
    progress: Callable[[str], None] | None = None,
    label: str = "tasks",
    unit: str = "recordings",
    every: int = 10,
) -> list[Any]:
    """``fn(*args)`` for every ``args`` of ``tasks``: results in the order of ``tasks``.

    Parameters
    ----------
    fn : callable
        An importable function (the engine's workers import it by name).
    tasks : sequence of tuple
        Arguments of each call: small values (an index, a seed), never arrays.
    engine : Engine, optional
        Run on it (None: one after another in this process).
    progress : callable, optional
        Called with ``"LABEL: N/TOTAL UNIT (S s)"`` every ``every`` results.
    label, unit, every
        Of the progress lines.

    Raises
    ------
    Exception
        The first error a task raised (the tasks not finished are cancelled).

    Examples
    --------
    >>> run_tasks(pow, [(2, 3), (3, 2)])
    [8, 9]
    """
    results: list[Any] = [None] * len(tasks)
    started = time.perf_counter()

    def tick(done: int) -> None:
        if progress is not None and (done % every == 0 or done == len(tasks)):
            progress(f"{label}: {done}/{len(tasks)} {unit} "
                     f"({time.perf_counter() - started:.0f} s)")

    if engine is None:
        for i, args in enumerate(tasks):
            results[i] = fn(*args)
            tick(i + 1)
        return results
    done = 0
    for i, result, error in engine.map_unordered(fn, tasks, name=label):
        if error is not None:
            raise error
        results[i] = result
        done += 1
        tick(done)
    return results
