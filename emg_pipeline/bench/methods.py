"""Detection methods compared by the benchmarks: emg-pipeline and its peers.

Every method turns a recording ``(n_samples, n_channels)`` into an episode
table (``channel, onset_s, offset_s, duration_s, label``) so that all of them
are scored by the same functions of :mod:`emg_pipeline.metrics`.

Peers
-----
- **NeuroKit2** ``emg_process(signal, sampling_rate, method_activation=M)``
  (its cleaning, amplitude and activation chain) with the activation methods
  ``threshold`` (its default), ``mixture``, ``biosppy``, ``silva`` and
  ``pelt``; the episodes are the runs of its ``EMG_Activity`` column.
- **BioSPPy** ``signals.emg.emg`` (its filter and ``find_onsets`` with
  default threshold) and ``hodges_bui_onset_detector`` on that filtered
  signal (50 ms window, threshold 3 standard deviations of the rest, rest =
  the first second of the recording). Both return the indices where the
  test function crosses its threshold, upward and downward; consecutive
  crossings are paired into episodes (the recordings start at rest).

Peers do not label episodes: their label is ``spasm`` when the episode lasts
at least ``spasm_min_s`` (the same boundary as the classifier), else
``twitch``. Peers process one channel at a time. A peer that is not installed
is *unavailable* (reported as skipped); one that raises on a recording is
reported with its error for that recording.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..labels import labels_for
from ..pipeline import detect

__all__ = [
    "EMG_PIPELINE",
    "Method",
    "available_peers",
    "crossings_to_intervals",
    "episodes_from_intervals",
    "intervals_from_activity",
    "peer_methods",
    "run_method",
]

EPISODE_COLUMNS = ["channel", "onset_s", "offset_s", "duration_s", "label"]


@dataclass(frozen=True)
class Method:
    """One detection method.

    Attributes
    ----------
    name : str
        Name shown in tables and plots.
    tool : str
        Package that provides it (``emg-pipeline``, ``neurokit2``, ``biosppy``).
    settings : str
        The settings used, in words.
    channel_fn : callable or None
        ``(x, fs) -> intervals`` for one channel (an ``(k, 2)`` array of
        sample indices, end exclusive); None for emg-pipeline itself.
    max_samples : int or None
        Longest channel the method is run on (a too-slow method is skipped
        on longer ones, and the skip is reported).
    """

    name: str
    tool: str
    settings: str
    channel_fn: Callable[[np.ndarray, float], np.ndarray] | None = None
    max_samples: int | None = None


EMG_PIPELINE = Method("emg-pipeline", "emg-pipeline", "default settings")


def intervals_from_activity(active: np.ndarray) -> np.ndarray:
    """Runs of True in a boolean array as ``(k, 2)`` ``[start, end)`` sample indices.

    Examples
    --------
    >>> intervals_from_activity(np.array([0, 1, 1, 0, 1], dtype=bool)).tolist()
    [[1, 3], [4, 5]]
    """
    a = np.asarray(active, dtype=bool).astype(np.int8)
    d = np.diff(np.r_[np.int8(0), a, np.int8(0)])
    return np.column_stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)]).astype(np.int64)


def crossings_to_intervals(crossings: np.ndarray, n_samples: int) -> np.ndarray:
    """Pair threshold crossings (up, down, up, down...) into ``[start, end)`` intervals.

    The signal is taken to start below the threshold; an unpaired last
    crossing runs to the end of the recording.

    Examples
    --------
    >>> crossings_to_intervals(np.array([10, 20, 30]), 50).tolist()
    [[10, 20], [30, 50]]
    """
    c = np.unique(np.asarray(crossings, dtype=np.int64))
    if c.size % 2:
        c = np.r_[c, n_samples]
    return c.reshape(-1, 2)


def episodes_from_intervals(intervals: np.ndarray, fs: float, channel: str,
                            spasm_min_s: float) -> pd.DataFrame:
    """An episode table from sample intervals, labelled by duration.

    Examples
    --------
    >>> ep = episodes_from_intervals(np.array([[100, 150], [200, 700]]), 100.0, "a", 2.0)
    >>> ep["label"].tolist()
    ['twitch', 'spasm']
    """
    iv = np.asarray(intervals, dtype=float).reshape(-1, 2)
    onset = iv[:, 0] / fs
    offset = iv[:, 1] / fs
    duration = offset - onset
    return pd.DataFrame({
        "channel": [channel] * len(iv), "onset_s": onset, "offset_s": offset,
        "duration_s": duration,
        "label": labels_for(duration, spasm_min_s),
    }, columns=EPISODE_COLUMNS)


@contextlib.contextmanager
def _quiet():
    """Silence the warnings and prints of third-party peers."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            yield


def _neurokit(method: str) -> Callable[[np.ndarray, float], np.ndarray]:
    def run(x: np.ndarray, fs: float) -> np.ndarray:
        import neurokit2 as nk

        rate = round(fs) if float(fs).is_integer() else fs
        with _quiet():
            signals, _ = nk.emg_process(x, sampling_rate=rate, method_activation=method)
        return intervals_from_activity(signals["EMG_Activity"].to_numpy() > 0)

    return run


def _biosppy_find_onsets(x: np.ndarray, fs: float) -> np.ndarray:
    from biosppy.signals import emg as bemg

    with _quiet():
        out = bemg.emg(signal=x, sampling_rate=fs, show=False)
    return crossings_to_intervals(np.asarray(out["onsets"]), x.shape[0])


def _biosppy_hodges_bui(x: np.ndarray, fs: float) -> np.ndarray:
    from biosppy.signals import emg as bemg

    with _quiet():
        filtered = bemg.emg(signal=x, sampling_rate=fs, show=False)["filtered"]
        out = bemg.hodges_bui_onset_detector(
            signal=filtered, rest=[0, round(fs)], sampling_rate=fs,
            size=max(1, round(0.05 * fs)), threshold=3.0)
    return crossings_to_intervals(np.asarray(out["onsets"]), x.shape[0])


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def peer_methods() -> list[Method]:
    """Every peer method, installed or not."""
    nk_settings = "emg_process defaults, method_activation={}"
    return [
        Method("neurokit2 threshold", "neurokit2", nk_settings.format("threshold"),
               _neurokit("threshold")),
        Method("neurokit2 mixture", "neurokit2", nk_settings.format("mixture"),
               _neurokit("mixture")),
        Method("neurokit2 biosppy", "neurokit2", nk_settings.format("biosppy"),
               _neurokit("biosppy")),
        Method("neurokit2 silva", "neurokit2", nk_settings.format("silva"), _neurokit("silva")),
        # change-point search grows much faster than linearly with length
        Method("neurokit2 pelt", "neurokit2", nk_settings.format("pelt"), _neurokit("pelt"),
               max_samples=30_000),
        Method("biosppy find_onsets", "biosppy", "signals.emg.emg defaults",
               _biosppy_find_onsets),
        Method("biosppy hodges_bui", "biosppy",
               "hodges_bui_onset_detector, 50 ms window, threshold 3 SD, rest = first 1 s",
               _biosppy_hodges_bui),
    ]


def available_peers() -> tuple[list[Method], dict[str, str]]:
    """Installed peer methods, and why the others are skipped (tool -> reason)."""
    found: list[Method] = []
    skipped: dict[str, str] = {}
    modules = {"neurokit2": "neurokit2", "biosppy": "biosppy"}
    ok = {}
    for tool, module in modules.items():
        ok[tool] = _installed(module)
        if ok[tool] and tool == "biosppy":
            try:  # biosppy imports packages it does not declare
                with _quiet():
                    importlib.import_module("biosppy.signals.emg")
            except ImportError as exc:
                ok[tool] = False
                skipped[tool] = f"installed but cannot be imported ({exc})"
                continue
        if not ok[tool]:
            skipped[tool] = "not installed (pip install -e '.[bench]')"
    found = [m for m in peer_methods() if ok[m.tool]]
    return found, skipped


def run_method(method: Method, x: np.ndarray, fs: float, channels: Sequence[str], unit: str,
               spasm_min_s: float = 2.0) -> pd.DataFrame:
    """Episodes found by ``method`` in ``x`` (``(n_samples, n_channels)``).

    Raises
    ------
    ValueError
        If the recording is longer than ``method.max_samples``.
    Exception
        Whatever the peer raises (the caller reports it).
    """
    if method.channel_fn is None:
        found = detect(x, fs, channels=channels, unit=unit, spasm_min_s=spasm_min_s)
        return found[EPISODE_COLUMNS].reset_index(drop=True)
    if method.max_samples is not None and x.shape[0] > method.max_samples:
        raise ValueError(f"skipped: longer than {method.max_samples} samples per channel "
                         f"({x.shape[0]})")
    frames = [
        episodes_from_intervals(method.channel_fn(np.ascontiguousarray(x[:, c]), fs), fs,
                                name, spasm_min_s)
        for c, name in enumerate(channels)
    ]
    found = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=EPISODE_COLUMNS)
    return found.sort_values(["onset_s", "channel"], kind="stable").reset_index(drop=True)
