"""A recording and its episodes as an MNE-Python ``Raw`` object (and a FIF file).

:func:`to_mne` builds an :class:`mne.io.RawArray`: channel type ``emg``, values
in volts (µV × 1e-6; a recording in counts keeps its counts, and the Raw's
``description`` says so), the recording's start time as ``meas_date``, and
as :class:`mne.Annotations`:

- each episode, ``<label>/<pattern>/<channel>`` (e.g. ``spasm/tonic/calf``)
  from its onset for its duration, tied to its channel (``ch_names``), so
  that ``epochs["spasm"]`` and ``raw.annotations`` work as MNE users expect;
- each run of missing samples (lost packets, gaps of an XDF file, NaN
  cells), ``BAD_gap``, whose samples are 0 in the Raw: MNE leaves ``BAD_``
  segments out of its computations;
- the recording's own annotations (EDF+ annotations, XDF markers), as they are.

:func:`write_fif` saves it (the FIF format of MNE, any file name).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emg_pipeline.errors import ConfigError, OutputError
from emg_pipeline.events import Episode
from emg_pipeline.lab.deps import import_mne

__all__ = ["GAP_DESCRIPTION", "episode_description", "to_mne", "write_fif"]

#: description of the annotation that marks missing samples
GAP_DESCRIPTION = "BAD_gap"

_Recording = Any  # a path, (samples, RecordingInfo), an array, or a SyntheticRecording


def episode_description(label: str, pattern: str, channel: str) -> str:
    """The annotation text of an episode: MNE's hierarchical ``label/pattern/channel``.

    Examples
    --------
    >>> episode_description("spasm", "tonic", "calf_left")
    'spasm/tonic/calf_left'
    """
    return f"{label}/{pattern}/{channel}" if pattern else f"{label}/{channel}"


def _recording_parts(
    recording: _Recording, fs: float | None, channels: Sequence[str] | None, unit: str,
    format: str | None, stream: str | None,
) -> tuple[np.ndarray, float, tuple[str, ...], str, datetime | None, pd.DataFrame | None]:
    from emg_pipeline.chunk import as_samples
    from emg_pipeline.sources.formats import RecordingInfo, read_recording

    if isinstance(recording, str | Path):
        data, info = read_recording(recording, format=format, fs=fs, stream=stream)
        return data, info.fs, info.channels, info.unit, info.start_time, info.annotations
    if isinstance(recording, tuple) and len(recording) == 2 \
            and isinstance(recording[1], RecordingInfo):
        data, info = recording
        return (as_samples(data, info.n_channels), info.fs, info.channels, info.unit,
                info.start_time, info.annotations)
    if hasattr(recording, "signal") and hasattr(recording, "fs"):
        data = as_samples(recording.signal)
        names = tuple(getattr(recording, "channels", ()) or ())
        return (data, float(recording.fs), names or _names(data.shape[1]),
                str(getattr(recording, "unit", unit)), None, None)
    if isinstance(recording, np.ndarray | list):
        if fs is None:
            raise ConfigError("fs", fs, "the sampling rate in Hz of an array recording")
        data = as_samples(recording)
        names = tuple(channels) if channels is not None else _names(data.shape[1])
        return data, float(fs), names, unit, None, None
    raise ConfigError("recording", type(recording).__name__,
                      "a recording path, (samples, RecordingInfo), an array or a "
                      "SyntheticRecording")


def _names(n: int) -> tuple[str, ...]:
    return tuple(f"ch{i + 1}" for i in range(n))


def _episode_rows(episodes: object) -> pd.DataFrame:
    """Episodes as a table with onset_s, duration_s, label, pattern, channel."""
    if episodes is None:
        return pd.DataFrame(columns=["onset_s", "duration_s", "label", "pattern", "channel"])
    if isinstance(episodes, str | Path):
        from emg_pipeline.sinks.episodes import read_episodes

        episodes = read_episodes(episodes)
    if isinstance(episodes, pd.DataFrame):
        table = episodes
    elif isinstance(episodes, Iterable):
        items = list(episodes)
        if not all(isinstance(e, Episode) for e in items):
            raise ConfigError("episodes", type(items[0]).__name__ if items else "?",
                              "a DataFrame of episodes, Episode objects or an episode file")
        table = pd.DataFrame([e.as_dict() for e in items])
    else:
        raise ConfigError("episodes", type(episodes).__name__,
                          "a DataFrame of episodes, Episode objects or an episode file")
    if table.empty:
        return pd.DataFrame(columns=["onset_s", "duration_s", "label", "pattern", "channel"])
    missing = [c for c in ("onset_s", "label", "channel") if c not in table.columns]
    if missing or ("duration_s" not in table.columns and "offset_s" not in table.columns):
        raise ConfigError("episodes", list(table.columns),
                          "columns onset_s, duration_s (or offset_s), label and channel")
    onset = pd.to_numeric(table["onset_s"], errors="coerce").to_numpy(np.float64)
    if "duration_s" in table.columns:
        duration = pd.to_numeric(table["duration_s"], errors="coerce").to_numpy(np.float64)
    else:
        duration = pd.to_numeric(table["offset_s"], errors="coerce").to_numpy(np.float64) - onset
    pattern = (table["pattern"].astype(str) if "pattern" in table.columns
               else pd.Series([""] * len(table)))
    return pd.DataFrame({"onset_s": onset, "duration_s": duration,
                         "label": table["label"].astype(str).to_numpy(),
                         "pattern": pattern.to_numpy(),
                         "channel": table["channel"].astype(str).to_numpy()})


def _gap_runs(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of runs of True."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], missing, [False])).astype(np.int8)))
    starts, stops = edges[0::2], edges[1::2]
    return starts, stops - starts


def _meas_date(start: datetime | None) -> datetime | None:
    if start is None:
        return None
    aware = start if start.tzinfo is not None else start.astimezone()
    return aware.astimezone(UTC)


def to_mne(
    recording: _Recording,
    episodes: object = None,
    *,
    fs: float | None = None,
    channels: Sequence[str] | None = None,
    unit: str = "uV",
    format: str | None = None,
    stream: str | None = None,
    file_annotations: bool = True,
) -> Any:
    """A recording with its episodes as an MNE ``RawArray`` (emg channels, volts, annotations).

    Parameters
    ----------
    recording : str, Path, (ndarray, RecordingInfo), ndarray or SyntheticRecording
        A recording file (any supported format), what
        :func:`~emg_pipeline.sources.formats.read_recording` returned, a
        ``(n_samples, n_channels)`` array (then ``fs`` is required), or a
        synthetic recording.
    episodes : DataFrame, sequence of Episode, str or Path, optional
        The episodes (e.g. :func:`~emg_pipeline.detect`'s table, an episode
        file, ``summary.episodes``); each becomes an annotation.
    fs : float, optional
        Sampling rate of an array; supplies or checks a file's rate.
    channels : sequence of str, optional
        Channel names of an array.
    unit : {"uV", "counts"}
        Unit of an array.
    format, stream : str, optional
        Force a file format; choose an XDF stream.
    file_annotations : bool
        Keep the recording's own annotations (EDF+ annotations, XDF markers).

    Returns
    -------
    mne.io.RawArray
        Preloaded; missing samples are 0 inside ``BAD_gap`` annotations.

    Raises
    ------
    MissingDependencyError
        If MNE is not installed.
    ConfigError
        If the recording or the episodes are of no known kind.
    RecordingError, SampleRateError
        If the recording file cannot be read.

    Examples
    --------
    >>> import numpy as np
    >>> from emg_pipeline import detect, simulate
    >>> rec = simulate(np.random.default_rng(0), fs=1000.0, duration_s=20.0, n_channels=1)
    >>> episodes = detect(rec.signal, rec.fs, channels=rec.channels, unit="uV")
    >>> raw = to_mne(rec, episodes)
    >>> raw.get_channel_types(), raw.info["sfreq"]
    (['emg'], 1000.0)
    >>> len(raw.annotations) == len(episodes) > 0
    True
    >>> raw.annotations.description[0].split("/")[0] in ("twitch", "spasm")
    True
    """
    if unit not in ("uV", "counts"):
        raise ConfigError("unit", unit, "'uV' or 'counts'")
    data, rate, names, data_unit, start, notes = _recording_parts(
        recording, fs, channels, unit, format, stream)
    rows = _episode_rows(episodes)
    mne = import_mne()
    missing = ~np.isfinite(data)
    values = np.where(missing, 0.0, data) if missing.any() else data
    scale = 1e-6 if data_unit == "uV" else 1.0
    info = mne.create_info(list(names), rate, "emg", verbose="error")
    if data_unit != "uV":
        info["description"] = "values are ADC counts of an uncalibrated recording, not volts"
    raw = mne.io.RawArray(np.ascontiguousarray(values.T) * scale, info, verbose="error")
    meas_date = _meas_date(start)
    if meas_date is not None:
        raw.set_meas_date(meas_date)
    onsets: list[float] = []
    durations: list[float] = []
    texts: list[str] = []
    ch_names: list[tuple[str, ...]] = []
    known = set(names)
    for row in rows.itertuples(index=False):
        onsets.append(float(row.onset_s))
        durations.append(max(0.0, float(row.duration_s)))
        texts.append(episode_description(row.label, row.pattern, row.channel))
        ch_names.append((row.channel,) if row.channel in known else ())
    row_missing = missing.all(axis=1)
    partial = missing & ~row_missing[:, None]
    # whole rows missing: a gap of the stream; some channels only: a gap of those
    for mask, where in ((row_missing, ()), *((partial[:, c], (name,))
                                             for c, name in enumerate(names))):
        starts, lengths = _gap_runs(mask)
        onsets.extend((starts / rate).tolist())
        durations.extend((lengths / rate).tolist())
        texts.extend([GAP_DESCRIPTION] * starts.size)
        ch_names.extend([where] * starts.size)
    if file_annotations and notes is not None and not notes.empty:
        for onset, duration, text in zip(notes["onset_s"], notes["duration_s"], notes["text"],
                                         strict=True):
            onsets.append(float(onset))
            durations.append(float(duration) if np.isfinite(duration) else 0.0)
            texts.append(str(text))
            ch_names.append(())
    if onsets:
        raw.set_annotations(mne.Annotations(onsets, durations, texts, orig_time=meas_date,
                                            ch_names=ch_names), verbose="error")
    return raw


def write_fif(raw: Any, path: str | Path, *, option: str = "--mne-fif") -> Path:
    """Save an MNE ``Raw`` as a FIF file (whatever its name), overwriting it.

    Raises
    ------
    OutputError
        If the file cannot be written (naming ``option``).
    """
    target = Path(path)
    try:
        with warnings.catch_warnings():
            # MNE asks for names ending in raw.fif; the user chose this one
            warnings.filterwarnings("ignore", message=".*naming conventions.*")
            raw.save(target, overwrite=True, verbose="error")
    except OSError as exc:
        raise OutputError.from_os(option, target, exc) from None
    return target
