"""BIDS-EMG export: recordings with their detected episodes as a BIDS dataset (mne-bids).

:func:`export_bids` runs the pipeline over each recording (the same detection
as ``detect``), builds the MNE ``Raw`` of :func:`~emg_pipeline.lab.to_mne`
and writes it with mne-bids into ``sub-<subject>[/ses-<session>]/emg/``:

- ``*_emg.bdf``: the samples (24-bit BDF, µV), lost samples as 0;
- ``*_emg.json``: the sidecar, with ``EMGPlacementScheme`` (``Measured``,
  ``ChannelSpecific`` or ``Other``; for ``Other`` a description naming the
  body site of every channel), the mains frequency found as
  ``PowerLineFrequency``;
- ``*_channels.tsv``: one EMG channel per row with its unit and rate;
- ``*_events.tsv``: the episodes (``trial_type`` ``spasm/tonic/calf``...,
  onset, duration), the ``BAD_gap`` runs of missing samples and the
  recording's own annotations;
- ``dataset_description.json``, ``participants.tsv``, ``README``, scans.

Several recordings of one subject become runs 1, 2... (in the order given).
``mne_bids.read_raw_bids`` reads the result back with the episodes as
annotations.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from emg_pipeline.errors import ConfigError, OutputError
from emg_pipeline.lab.deps import import_mne_bids
from emg_pipeline.settings import PipelineSettings

__all__ = ["EMG_PLACEMENTS", "BidsExport", "export_bids"]

#: the placement schemes BIDS-EMG allows
EMG_PLACEMENTS = ("Measured", "ChannelSpecific", "Other")

_LABEL = re.compile(r"[A-Za-z0-9]+")
#: samples per chunk of the detection run
_CHUNK_S = 10.0


@dataclass(frozen=True)
class BidsExport:
    """One recording written into a BIDS dataset.

    Attributes
    ----------
    recording : Path
        The source recording.
    data_file : Path
        The EMG data file written.
    run : int or None
        Its run number (when several recordings were exported together).
    n_episodes : int
        Episodes written to its events.tsv.
    duration_s : float
        Length of the recording.
    """

    recording: Path
    data_file: Path
    run: int | None
    n_episodes: int
    duration_s: float


def _check_label(what: str, value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if text.lower().startswith(f"{what[:3]}-"):
        text = text[len(what[:3]) + 1:]
    if not _LABEL.fullmatch(text):
        raise ConfigError(what, value, "letters and digits only (a BIDS label)")
    return text


def export_bids(
    recordings: Sequence[str | Path],
    bids_root: str | Path,
    *,
    subject: str,
    session: str | None = None,
    task: str = "monitoring",
    emg_placement: str = "Other",
    placement_description: str | None = None,
    settings: PipelineSettings | None = None,
    sites: Mapping[str, str] | None = None,
    format: str | None = None,
    fs: float | None = None,
    stream: str | None = None,
) -> list[BidsExport]:
    """Detect episodes in recordings and write them, with the signals, as BIDS-EMG.

    Parameters
    ----------
    recordings : sequence of str or Path
        Recording files (any supported format; one run each).
    bids_root : str or Path
        The dataset's folder (created; existing files of the same entities
        are overwritten).
    subject : str
        Subject label (letters and digits; ``sub-`` prefix optional).
    session : str, optional
        Session label.
    task : str
        Task label.
    emg_placement : {"Measured", "ChannelSpecific", "Other"}
        How the electrode positions were determined (BIDS ``EMGPlacementScheme``).
    placement_description : str, optional
        ``EMGPlacementSchemeDescription`` (default for ``Other``: each channel's
        body site).
    settings : PipelineSettings, optional
        Detection settings.
    sites : mapping, optional
        Body site per channel name (default: from the channel names).
    format, fs, stream : optional
        Force a file format, supply or check the rate, choose an XDF stream.

    Returns
    -------
    list of BidsExport
        One per recording, in order.

    Raises
    ------
    MissingDependencyError
        If MNE or mne-bids is missing.
    ConfigError
        If a label or the placement is invalid.
    RecordingError, SampleRateError
        If a recording cannot be read.
    OutputError
        If the dataset cannot be written.
    """
    subject_label = _check_label("subject", subject)
    session_label = _check_label("session", session)
    task_label = _check_label("task", task)
    if emg_placement not in EMG_PLACEMENTS:
        raise ConfigError("emg_placement", emg_placement, " or ".join(EMG_PLACEMENTS))
    paths = [Path(p) for p in recordings]
    if not paths:
        raise ConfigError("recordings", recordings, "at least one recording")
    mne_bids = import_mne_bids()
    from emg_pipeline.lab.mne_raw import to_mne

    root = Path(bids_root)
    if root.exists() and not root.is_dir():
        raise OutputError("--bids-root", root, "is a file, not a folder")
    results: list[BidsExport] = []
    several = len(paths) > 1
    for k, path in enumerate(paths):
        data, info, episodes, mains_hz = _detect(path, settings, format, fs, stream)
        raw = to_mne((data, info), episodes)
        if mains_hz is not None:
            raw.info["line_freq"] = float(mains_hz)
        run = k + 1 if several else None
        bids_path = mne_bids.BIDSPath(subject=subject_label, session=session_label,
                                      task=task_label, run=run, datatype="emg", root=root)
        try:
            with warnings.catch_warnings():
                # mne-bids says it converts to BDF and lacks electrode positions: both expected
                warnings.simplefilter("ignore", RuntimeWarning)
                written = mne_bids.write_raw_bids(
                    raw, bids_path, emg_placement=emg_placement, allow_preload=True,
                    format="BDF", overwrite=True, verbose="error")
        except OSError as exc:
            raise OutputError.from_os("--bids-root", root, exc) from None
        channel_sites = {name: (sites or {}).get(name) or _site_of(name)
                         for name in info.channels}
        _complete_sidecar(mne_bids, written, emg_placement, placement_description,
                          channel_sites)
        results.append(BidsExport(path, Path(written.fpath), run, len(episodes),
                                  data.shape[0] / info.fs))
    return results


def _site_of(channel: str) -> str:
    from emg_pipeline.sites import UNSPECIFIED, site_of_name

    return site_of_name(channel) or UNSPECIFIED


def _detect(path: Path, settings: PipelineSettings | None, format: str | None,
            fs: float | None, stream: str | None):
    """Read a recording and run the pipeline over it: (data, info, episodes, mains_hz)."""
    import numpy as np

    from emg_pipeline.pipeline import Pipeline
    from emg_pipeline.run import StreamInfo, run
    from emg_pipeline.sources.formats import read_recording

    data, info = read_recording(path, format=format, fs=fs, stream=stream)
    pipe = Pipeline(info.fs, info.channels, unit=info.unit, settings=settings)
    step = max(1, round(_CHUNK_S * info.fs))
    chunks = (data[i : i + step] for i in range(0, data.shape[0], step))
    stream = StreamInfo.of(pipe, title=path.name, start_time=info.start_time)
    run(chunks, pipe, info=stream).raise_if_interrupted()
    episodes = pipe.episodes_frame()
    return np.asarray(data), info, episodes, pipe.mains_hz


def _complete_sidecar(mne_bids, written, placement: str, description: str | None,
                      sites: Mapping[str, str]) -> None:
    """Fill in what mne-bids leaves open in the EMG sidecar."""
    # mne-bids names the maker of the file format (BioSemi for any .bdf), not of the device
    updates: dict[str, object] = {"SoftwareFilters": "n/a", "Manufacturer": "n/a"}
    if placement == "Other":
        text = description or ("surface electrodes over the body site of each channel: "
                               + "; ".join(f"{ch}: {site}" for ch, site in sites.items()))
        updates["EMGPlacementSchemeDescription"] = text
    elif description:
        updates["EMGPlacementSchemeDescription"] = description
    sidecar = written.copy().update(suffix="emg", extension=".json")
    mne_bids.update_sidecar_json(sidecar, updates, verbose="error")
