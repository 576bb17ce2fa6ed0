"""Truncated recordings are read up to their last whole record, with one warning.

EDF+/BDF+ files written by :class:`emg_pipeline.sinks.RecordingWriter` and
WFDB records written by hand are cut at several byte offsets: the samples read
must be exactly the intact records (or sample frames) before the cut, the
warning must be given once and say what was lost, ``strict=True`` must refuse
with one RecordingError line, and a cut inside the header stays an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from emg_pipeline.cli import main
from emg_pipeline.errors import RecordingError, RecordingWarning
from emg_pipeline.sinks import RecordingWriter
from emg_pipeline.sources.formats import open_recording, read_recording
from emg_pipeline.sources.replay import ReplaySource
from tests.test_formats import write_wfdb

FS = 500.0
N_RECORDS = 10


def write_recording(path: Path) -> RecordingWriter:
    """Ten 1-s records of two channels; annotations go into records 2 and 8 (0-based)."""
    x = np.random.default_rng(5).normal(0.0, 40.0, (int(FS) * N_RECORDS, 2))
    second = int(FS)
    with RecordingWriter(path, FS, ("calf", "thigh")) as writer:
        writer.write(x[: 2 * second])
        writer.annotate(1.5, 0.5, "early")  # queued: written with the next record
        writer.write(x[2 * second : 8 * second])
        writer.annotate(7.5, 0.5, "late")
        writer.write(x[8 * second :])
    return writer


def read_with_warnings(path: Path, **kwargs: object) -> tuple[np.ndarray, list[str]]:
    """``read_recording`` with every warning recorded; returns the RecordingWarning texts."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, _ = read_recording(path, **kwargs)
    others = [w for w in caught if not issubclass(w.category, RecordingWarning)]
    assert not others, [str(w.message) for w in others]
    return data, [str(w.message) for w in caught]


@pytest.fixture(params=[".bdf", ".edf"])
def recording(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, RecordingWriter]:
    path = tmp_path / f"intact{request.param}"
    return path, write_recording(path)


def header_bytes(path: Path) -> int:
    return int(path.read_bytes()[184:192])


@pytest.mark.parametrize(
    ("whole", "extra"), [(4, "none"), (4, "one byte"), (4, "half"), (9, "all but a byte"),
                         (1, "half"), (2, "none")]
)
def test_cut_edf_reads_the_whole_records_with_one_warning(
    recording: tuple[Path, RecordingWriter], whole: int, extra: str
) -> None:
    path, writer = recording
    intact, info = read_recording(path)
    assert info.metadata["n_records"] == N_RECORDS
    # the cut: after ``whole`` records and ``extra`` of the next one
    size = header_bytes(path) + whole * writer.record_bytes
    size += {"none": 0, "one byte": 1, "half": writer.record_bytes // 2,
             "all but a byte": writer.record_bytes - 1}[extra]
    cut = path.with_name(f"cut{path.suffix}")
    cut.write_bytes(path.read_bytes()[:size])
    data, messages = read_with_warnings(cut)
    n = whole * int(FS)
    assert data.shape == (n, 2)
    np.testing.assert_array_equal(data, intact[:n])
    assert len(messages) == 1
    ones = "one" if whole == 1 else "ones"
    assert messages[0] == (
        f"{cut}: truncated: header says {N_RECORDS} data records, file holds {whole} whole "
        f"{ones}; reading the {whole:g} s that are there"
    )
    with pytest.warns(RecordingWarning), open_recording(cut) as reader:
        # the chunks agree with read(); the info describes what is read
        assert reader.info.n_samples == n and reader.info.metadata["n_records"] == whole
        assert messages[0] == f"{cut}: {reader.info.metadata['partial_read']}"
        np.testing.assert_array_equal(np.concatenate(list(reader.iter_chunks(333))), data)
        kept = reader.info.annotations["text"].tolist()
    assert kept == (["early", "late"] if whole > 8 else ["early"] if whole > 2 else [])


def test_strict_refuses_a_cut_edf_with_one_line(recording: tuple[Path, RecordingWriter]) -> None:
    path, writer = recording
    cut = path.with_name(f"cut{path.suffix}")
    cut.write_bytes(path.read_bytes()[: header_bytes(path) + 4 * writer.record_bytes + 7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # strict gives no warning, only the error
        with pytest.raises(RecordingError) as caught:
            read_recording(cut, strict=True)
    text = str(caught.value)
    assert "\n" not in text
    assert text == (f"{cut}: truncated: header says 10 data records, file holds 4 whole ones; "
                    "strict mode refuses a partial read")


def test_intact_edf_gives_no_warning_even_strict(recording: tuple[Path, RecordingWriter]) -> None:
    path, _ = recording
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data, _ = read_recording(path, strict=True)
        assert data.shape == (N_RECORDS * int(FS), 2)
        _, info = read_recording(path)
    assert "partial_read" not in info.metadata


@pytest.mark.parametrize("size", ["empty", "inside fixed header", "inside signal headers",
                                  "header only", "part of the first record"])
def test_edf_cut_before_a_whole_record_is_an_error(
    recording: tuple[Path, RecordingWriter], size: str
) -> None:
    path, writer = recording
    end = {"empty": 0, "inside fixed header": 100, "inside signal headers": 300,
           "header only": header_bytes(path),
           "part of the first record": header_bytes(path) + writer.record_bytes - 1}[size]
    cut = path.with_name(f"cut{path.suffix}")
    cut.write_bytes(path.read_bytes()[:end])
    for strict in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(RecordingError) as caught:
                read_recording(cut, strict=strict, format="edf")
        text = str(caught.value)
        assert "\n" not in text and cut.name in text
        assert "empty" in text if size == "empty" else "truncated" in text or "bad" in text


def test_unfinished_recording_count_minus_one(recording: tuple[Path, RecordingWriter]) -> None:
    """Record count -1: whole records are the recording; a partial last one is reported."""
    path, writer = recording
    intact, _ = read_recording(path)
    raw = bytearray(path.read_bytes())
    raw[236:244] = b"-1      "
    live = path.with_name(f"live{path.suffix}")
    live.write_bytes(bytes(raw[: header_bytes(path) + 6 * writer.record_bytes]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is lost: no warning
        data, info = read_recording(live, strict=True)
    assert info.metadata["n_records"] == 6
    np.testing.assert_array_equal(data, intact[: 6 * int(FS)])
    live.write_bytes(bytes(raw[: header_bytes(path) + 6 * writer.record_bytes + 100]))
    data, messages = read_with_warnings(live)
    np.testing.assert_array_equal(data, intact[: 6 * int(FS)])
    assert len(messages) == 1
    assert "unfinished recording (data record count -1) ends in a partial data record" in (
        messages[0]
    )
    assert "reading the 6 s that are there" in messages[0]
    with pytest.raises(RecordingError, match="strict mode refuses"):
        read_recording(live, strict=True)


# ---------------------------------------------------------------------------------------------
# WFDB
# ---------------------------------------------------------------------------------------------


def frames_held(fmt: int, n_signals: int, size: int) -> int:
    """Whole sample frames in ``size`` bytes of a signal file."""
    if fmt == 212:
        samples = (size // 3) * 2 + (1 if size % 3 == 2 else 0)
    else:
        samples = size // {16: 2, 24: 3, 80: 1}[fmt]
    return samples // n_signals


@pytest.mark.parametrize(("fmt", "n_signals"), [(16, 2), (212, 2), (212, 3), (24, 1)])
def test_cut_wfdb_reads_the_whole_frames_with_one_warning(
    tmp_path: Path, fmt: int, n_signals: int
) -> None:
    n = 300
    adu = np.random.default_rng(fmt + n_signals).integers(-2000, 2000, (n, n_signals))
    hea = write_wfdb(tmp_path, f"rec{fmt}", adu, fmt=fmt, fs=FS)
    dat = hea.with_suffix(".dat")
    raw = dat.read_bytes()
    intact, _ = read_recording(hea)
    assert intact.shape == (n, n_signals)
    frame_bytes = len(raw) / n
    for cut_at in sorted({int(120 * frame_bytes), int(120 * frame_bytes) + 1,
                          int(120 * frame_bytes) + 2, len(raw) - 1, 5}):
        dat.write_bytes(raw[:cut_at])
        whole = frames_held(fmt, n_signals, cut_at)
        data, messages = read_with_warnings(hea)
        assert data.shape == (whole, n_signals), cut_at
        np.testing.assert_array_equal(data, intact[:whole])
        plural = "" if whole == 1 else "s"
        assert messages == [
            f"{hea}: truncated: header says {n} samples, signal files hold {whole} whole sample "
            f"frame{plural}; reading the {whole / FS:g} s that are there"
        ]
        with pytest.raises(RecordingError, match="strict mode refuses a partial read"):
            read_recording(hea, strict=True)
        with pytest.warns(RecordingWarning), open_recording(dat) as reader:  # by its .dat
            np.testing.assert_array_equal(np.concatenate(list(reader.iter_chunks(7))), data)


def test_wfdb_signal_file_without_a_whole_frame_is_an_error(tmp_path: Path) -> None:
    hea = write_wfdb(tmp_path, "rec", np.arange(20).reshape(10, 2), fs=FS)
    hea.with_suffix(".dat").write_bytes(b"\x01\x00\x02")  # one sample and a half
    for strict in (False, True):
        with pytest.raises(RecordingError, match="no whole sample frame"):
            read_recording(hea, strict=strict)


def test_formats_with_nothing_to_salvage_accept_strict(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    path.write_text("time,emg\n0.000,1\n0.001,2\n")
    data, _ = read_recording(path, strict=True)
    assert data.tolist() == [[1.0], [2.0]]


# ---------------------------------------------------------------------------------------------
# replay and the command line
# ---------------------------------------------------------------------------------------------


def cut_bdf(folder: Path) -> Path:
    path = folder / "recording.bdf"
    writer = write_recording(path)
    cut = folder / "cut.bdf"
    cut.write_bytes(path.read_bytes()[: header_bytes(path) + 4 * writer.record_bytes + 10])
    return cut


def test_replay_source_salvages_or_refuses(tmp_path: Path) -> None:
    cut = cut_bdf(tmp_path)
    with pytest.warns(RecordingWarning, match="file holds 4 whole ones"):
        source = ReplaySource(cut, speed=None)
    with source:
        assert sum(chunk.samples.shape[0] for chunk in source) == 4 * int(FS)
    with pytest.raises(RecordingError, match="strict"):
        ReplaySource(cut, speed=None, strict=True)


@pytest.mark.parametrize("command", [["detect", "-q"], ["replay", "--fast", "-qq"]])
def test_cli_shows_one_warning_line_or_refuses_with_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    cut = cut_bdf(tmp_path)
    out = tmp_path / "episodes.csv"
    status = main([*command, str(cut), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 0, err
    assert err.splitlines() == [
        f"emg-pipeline: warning: {cut}: truncated: header says 10 data records, file holds 4 "
        "whole ones; reading the 4 s that are there"
    ]
    status = main([*command, str(cut), "--out", str(out), "--strict"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.splitlines() == [
        f"emg-pipeline: error: {cut}: truncated: header says 10 data records, file holds 4 "
        "whole ones; strict mode refuses a partial read"
    ]


def test_csv_cut_mid_row_reads_the_rows_before_it_with_one_warning(tmp_path: Path) -> None:
    rows = [f"{i / 1000:.3f},{i % 7 - 3.5},{(i * 3) % 11 - 5.0}" for i in range(3000)]
    whole = "time,calf (uV),thigh (uV)\n" + "\n".join(rows)
    for cut in ("\n0.3,-", "\n0.3,1.5e", "\n3.0,-1.2,4e-"):
        path = tmp_path / "cut.csv"
        path.write_text(whole + cut)
        with pytest.warns(RecordingWarning, match="cut short") as caught:
            data, info = read_recording(path)
        assert len(caught) == 1 and data.shape == (3000, 2)
        assert "partial_read" in info.metadata
        with pytest.raises(RecordingError, match="cut short"):
            read_recording(path, strict=True)
    # a last row that reads whole is a row, line break or not; a short one is NaN-padded
    for tail, n in (("", 3000), ("\n3.0,1.0,2.0", 3001), ("\n3.0,1.0", 3001),
                    ("\n3.0,-1.2,", 3001)):
        path = tmp_path / "whole.csv"
        path.write_text(whole + tail)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            data, info = read_recording(path)
        assert data.shape == (n, 2) and "partial_read" not in info.metadata
