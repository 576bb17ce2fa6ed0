"""MNE and BIDS-EMG export: the recording, its episodes as annotations, read back by MNE."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emg_pipeline import detect, simulate, to_mne
from emg_pipeline.cli import main
from emg_pipeline.errors import ConfigError, MissingDependencyError
from emg_pipeline.lab import GAP_DESCRIPTION, export_bids, write_fif

mne = pytest.importorskip("mne")
mne_bids = pytest.importorskip("mne_bids")

FS = 1000.0


@pytest.fixture(scope="module")
def recording():
    return simulate(np.random.default_rng(1), fs=FS, duration_s=20.0,
                    channels=("calf_left", "thigh_right"))


@pytest.fixture
def csv_recording(tmp_path: Path, recording) -> Path:
    path = tmp_path / "night.csv"
    table = pd.DataFrame(recording.signal, columns=[f"{c} (uV)" for c in recording.channels])
    table.insert(0, "time", np.arange(len(table)) / FS)
    table.iloc[5000:5100, 1:] = np.nan           # a gap on both channels
    table.iloc[7000:7010, 1] = np.nan            # a few cells on one channel
    path.write_text("# start_time: 2026-11-27T22:00:00+01:00\n"
                    + table.to_csv(index=False, float_format="%.6f"))
    return path


def test_to_mne_volts_episodes_and_gaps(recording, csv_recording: Path) -> None:
    episodes = detect(recording.signal, FS, channels=recording.channels, unit="uV")
    raw = to_mne(recording, episodes)
    assert raw.get_channel_types() == ["emg", "emg"] and raw.info["sfreq"] == FS
    np.testing.assert_allclose(raw.get_data().T, recording.signal * 1e-6)
    labels = [d for d in raw.annotations.description]
    assert len(labels) == len(episodes) > 0
    first = episodes.iloc[0]
    assert labels[0] == f"{first.label}/{first.pattern}/{first.channel}"
    assert raw.annotations.ch_names[0] == (first.channel,)
    np.testing.assert_allclose(raw.annotations.onset[0], first.onset_s)
    # a file with gaps and a start time: BAD_gap annotations, zeros, meas_date
    raw = to_mne(csv_recording, episodes)
    gaps = [(a["onset"], a["duration"], a["ch_names"]) for a in raw.annotations
            if a["description"] == GAP_DESCRIPTION]
    assert (5.0, 0.1, ()) in [(round(o, 6), round(d, 6), c) for o, d, c in gaps]
    assert any(c == ("calf_left",) for _, _, c in gaps)
    assert np.isfinite(raw.get_data()).all() and raw.get_data()[:, 5000:5100].max() == 0
    assert raw.info["meas_date"].isoformat() == "2026-11-27T21:00:00+00:00"


def test_to_mne_counts_arrays_and_bad_input() -> None:
    x = np.random.default_rng(0).normal(0, 100, (3000, 1))
    raw = to_mne(x, None, fs=500.0, unit="counts", channels=["a"])
    np.testing.assert_allclose(raw.get_data()[0], x[:, 0])
    assert "counts" in raw.info["description"]
    with pytest.raises(ConfigError, match="fs"):
        to_mne(x)
    with pytest.raises(ConfigError, match="recording"):
        to_mne({"x": 1})
    with pytest.raises(ConfigError, match="episodes"):
        to_mne(x, [1, 2], fs=500.0)
    with pytest.raises(ConfigError, match="columns"):
        to_mne(x, pd.DataFrame({"a": [1]}), fs=500.0)


def test_detect_writes_a_fif_file(csv_recording: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    fif = tmp_path / "night.fif"
    episodes = tmp_path / "episodes.csv"
    assert main(["detect", str(csv_recording), "--mne-fif", str(fif), "--out", str(episodes)]) == 0
    assert "episodes as annotations" in capsys.readouterr().err
    raw = mne.io.read_raw_fif(fif, preload=True, verbose="error")
    table = pd.read_csv(episodes)
    described = [d for d in raw.annotations.description if d != GAP_DESCRIPTION]
    assert len(described) == len(table) > 0
    assert raw.get_channel_types() == ["emg", "emg"]
    # write_fif on its own: any name, overwritten
    again = write_fif(raw, tmp_path / "other-name.fif")
    assert again.is_file()


def test_fif_output_is_checked_first(csv_recording: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(csv_recording), "--mne-fif", str(tmp_path), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"emg-pipeline: error: --mne-fif: {tmp_path}: is a directory"]


def test_export_bids_reads_back_with_episodes(csv_recording: Path, recording,
                                              tmp_path: Path) -> None:
    second = tmp_path / "second.csv"
    second.write_text(csv_recording.read_text())
    root = tmp_path / "bids"
    done = export_bids([csv_recording, second], root, subject="01", session="night1",
                       task="sleep")
    assert [d.run for d in done] == [1, 2] and all(d.data_file.is_file() for d in done)
    path = mne_bids.BIDSPath(subject="01", session="night1", task="sleep", run=1,
                             datatype="emg", root=root)
    raw = mne_bids.read_raw_bids(path, verbose="error")
    assert raw.get_channel_types() == ["emg", "emg"]
    assert raw.ch_names == list(recording.channels)
    episodes = [d for d in raw.annotations.description if d != GAP_DESCRIPTION]
    assert len(episodes) == done[0].n_episodes > 0
    assert all(d.split("/")[0] in ("twitch", "spasm") for d in episodes)
    data = raw.get_data()
    expected = pd.read_csv(csv_recording, comment="#").iloc[:, 1:].to_numpy() * 1e-6
    keep = np.isfinite(expected).all(axis=1)
    np.testing.assert_allclose(data.T[keep], expected[keep], atol=1e-9)
    sidecar = json.loads(path.copy().update(suffix="emg", extension=".json").fpath.read_text())
    assert sidecar["EMGPlacementScheme"] == "Other"
    assert "calf_left: calf" in sidecar["EMGPlacementSchemeDescription"]
    assert sidecar["PowerLineFrequency"] == 50.0 and sidecar["Manufacturer"] == "n/a"
    events = pd.read_csv(path.copy().update(suffix="events", extension=".tsv").fpath, sep="\t")
    assert set(events["trial_type"]) >= {GAP_DESCRIPTION}
    channels = pd.read_csv(path.copy().update(suffix="channels", extension=".tsv").fpath,
                           sep="\t")
    assert channels["type"].tolist() == ["EMG", "EMG"]


def test_export_bids_command_and_bad_labels(csv_recording: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ds"
    assert main(["export-bids", str(csv_recording), "--bids-root", str(root), "--subject",
                 "sub-07", "--emg-placement", "Measured", "-q"]) == 0
    assert (root / "sub-07" / "emg" / "sub-07_task-monitoring_emg.bdf").is_file()
    assert (root / "dataset_description.json").is_file()
    assert main(["export-bids", str(csv_recording), "--bids-root", str(root), "--subject",
                 "a_b"]) == 2
    assert main(["export-bids", str(tmp_path / "nope.csv"), "--bids-root", str(root),
                 "--subject", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "invalid subject='a_b'" in err[0] and "file not found" in err[1]
    with pytest.raises(ConfigError, match="emg_placement"):
        export_bids([csv_recording], root, subject="1", emg_placement="Guessed")


@contextlib.contextmanager
def _without(module: str) -> Iterator[None]:
    saved = {k: v for k, v in sys.modules.items() if k == module or k.startswith(module + ".")}
    for key in saved:
        del sys.modules[key]
    sys.modules[module] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        del sys.modules[module]
        sys.modules.update(saved)


def test_missing_mne_is_one_line(csv_recording: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    with _without("mne"), pytest.raises(MissingDependencyError, match=r"emg-pipeline\[lab\]"):
        to_mne(np.zeros((10, 1)), fs=100.0)
    with _without("mne_bids"):
        assert main(["export-bids", str(csv_recording), "--bids-root", str(tmp_path / "x"),
                     "--subject", "1"]) == 2
    with _without("mne"):
        assert main(["detect", str(csv_recording), "--mne-fif", str(tmp_path / "a.fif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "emg-pipeline: error: BIDS export needs the package 'mne_bids', which is not "
        "installed: pip install 'emg-pipeline[lab]'",
        "emg-pipeline: error: MNE export needs the package 'mne', which is not installed: "
        "pip install 'emg-pipeline[lab]'",
    ]
