"""Benchmarks of emg-pipeline: detection quality, live alert latency, speed, and peers.

Run by ``emg-pipeline bench [--suite NAME] [--quick] [--out DIR]`` or
:func:`run_bench`. Suites:

- ``synthetic`` (:mod:`.synthetic`): seeded recordings with ground truth: SNR
  sweep, sampling rates, artefacts, multi-channel; streamed, so alert
  latencies come from the live events;
- ``robust`` (:mod:`.robust`): many recordings, each under conditions drawn at
  random from wide ranges (:mod:`emg_pipeline.sources.randomized`); medians and
  worst deciles per condition, false episodes at rest;
- ``physio`` (:mod:`.robust` too): the same on recordings from the
  physiological generator (:mod:`emg_pipeline.sources.physiological`);
- ``mains`` (:mod:`.robust` too): the randomized recordings that carry mains,
  under the tracked notch comb, a plain notch comb, the Kalman model and no
  removal;
- ``real`` (:mod:`.real`): the shared real recordings with usable reference
  timing, each with a stated reference rule; skipped when the data folder is
  absent;
- ``semi`` (:mod:`.semi`): semi-synthetic recordings spliced from real rest and
  real contraction stretches of the shared recordings (exact truth), one
  device per recording, and the agreement of two simulated devices seeing the
  same signal; skipped when the data folder is absent;
- ``speed`` (:mod:`.speed`): offline × real time over channels and rates next
  to a bare ``sosfilt`` pass, streaming per-chunk latency, peak memory;
- ``peers`` (:mod:`.peers`): NeuroKit2 and BioSPPy on the same recordings,
  scored by the same metrics (:mod:`emg_pipeline.metrics`), when installed.

The report (:mod:`.report`) is Markdown with tables and PNG plots plus JSON
of every figure.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .common import environment, provenance

if TYPE_CHECKING:
    from ..batch.engine import Engine

__all__ = ["SUITES", "default_data_dir", "run_bench"]

SUITES: tuple[str, ...] = ("synthetic", "robust", "physio", "mains", "real", "semi", "speed",
                            "peers")


def default_data_dir() -> Path:
    """The shared recordings folder: ``../shared/data`` next to the project checkout."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def run_bench(out: Path | None, suites: Sequence[str] = SUITES, *, quick: bool = False,
              seed: int = 0, data_dir: Path | None = None, minutes: float | None = None,
              command: str = "emg-pipeline bench",
              progress: Callable[[str], None] | None = None,
              engine: Engine | None = None) -> dict[str, Any]:
    """Run the suites and (when ``out`` is given) write the report there.

    Parameters
    ----------
    out : Path or None
        Folder of ``report.md``, ``results.json`` and the PNG plots.
    suites : sequence of str
        Names from :data:`SUITES`.
    quick : bool
        Small cells and few recordings (a smoke run; rough figures).
    seed : int
        Seed of every synthetic recording.
    data_dir : Path, optional
        Folder of the real recordings (default :func:`default_data_dir`).
    minutes : float, optional
        Minutes of signal per synthetic cell (default 30; 0.5 with ``quick``).
    command : str
        The command line, recorded in the report.
    progress : callable, optional
        Called with one line per finished step.
    engine : Engine, optional
        Where the suites of many recordings (robust, physio, mains) run their
        recordings, one task each (the engine of ``emg-pipeline batch``: every
        core, or a Dask cluster); default: one after another in this process.
        The figures are the same.

    Returns
    -------
    dict
        Every figure, by suite, plus ``meta``.

    Raises
    ------
    ConfigError
        For an unknown suite or non-positive minutes.
    """
    from . import peers, real, robust, semi, speed, synthetic
    from .report import write_report

    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ConfigError("suite", unknown[0], f"one of {', '.join(SUITES)}")
    if minutes is None:
        minutes = 0.5 if quick else 30.0
    if not minutes > 0:
        raise ConfigError("minutes", minutes, "a positive number of minutes")
    data = data_dir if data_dir is not None else default_data_dir()
    # the code measured is the code imported now: describe it before the (long)
    # run, so that later edits to the files cannot be ascribed to it
    package = provenance()
    started = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    if "synthetic" in suites:
        results["synthetic"] = synthetic.run_synthetic(minutes, seed, progress=progress)
    if "robust" in suites:
        results["robust"] = robust.run_robust(24 if quick else 200, seed, progress=progress,
                                              engine=engine)
    if "physio" in suites:
        results["physio"] = robust.run_robust(16 if quick else 200, seed, progress=progress,
                                              generator="physio", engine=engine)
    if "mains" in suites:
        results["mains"] = robust.run_mains_comparison(8 if quick else 48, seed,
                                                       progress=progress, engine=engine)
    if "real" in suites:
        results["real"] = real.run_real(data, progress=progress)
    if "semi" in suites:
        results["semi"] = semi.run_semi(data, 8 if quick else 40, seed, progress=progress)
    if "speed" in suites:
        results["speed"] = speed.run_speed(seed, quick, progress)
    if "peers" in suites:
        results["peers"] = peers.run_peers(data, seed, quick, progress)
    results["meta"] = {
        "package": package, "environment": environment(), "seed": seed, "quick": quick,
        "suites": list(suites), "minutes": minutes, "command": command,
        "date": started,
        "elapsed_s": time.perf_counter() - t0,
    }
    if out is not None:
        results["meta"]["files"] = sorted(write_report(results, Path(out)))
    return results
