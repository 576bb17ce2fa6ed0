"""Durable BDF+/EDF+ recordings: round trips, annotations, an independent reader, SIGKILL.

Every file written is read back by the project's EDF reader (bit-for-bit
within half a digital step) and by ``edfio``, an independent implementation.
A recording killed mid-write by a real ``SIGKILL`` of a subprocess must read
back, losing at most the record being filled (one second).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from emg_pipeline import ConfigError, Pipeline, simulate
from emg_pipeline.errors import RecordingWarning
from emg_pipeline.sinks.recording import RecordingWriter, default_physical_range
from emg_pipeline.sources.formats import detect_format, open_recording, read_recording

START = datetime(2026, 3, 14, 15, 9, 26, 535000)


def n_records_field(path: Path) -> str:
    with open(path, "rb") as handle:
        handle.seek(236)
        return handle.read(8).decode("ascii").strip()


def write_in_pieces(path: Path, x: np.ndarray, cuts: list[int], **kw: object) -> RecordingWriter:
    writer = RecordingWriter(path, 1000.0, tuple(f"ch{k}" for k in range(x.shape[1])), **kw)
    bounds = [0, *cuts, x.shape[0]]
    for a, b in itertools.pairwise(bounds):
        writer.write(x[a:b])
    writer.close()
    return writer


@pytest.mark.parametrize(("suffix", "unit"), [(".bdf", "uV"), (".edf", "uV"), (".bdf", "counts")])
def test_round_trip_within_half_a_step(tmp_path: Path, rng, suffix: str, unit: str) -> None:
    scale = 300.0 if unit == "uV" else 2000.0
    x = rng.normal(0.0, scale, (4000, 3))
    if unit == "counts":
        x = np.round(x)
    path = tmp_path / f"rec{suffix}"
    writer = write_in_pieces(path, x, [7, 7, 1500, 2999], unit=unit, start_time=START)
    assert detect_format(path) == "edf"
    data, info = read_recording(path)
    assert info.fs == 1000.0 and info.unit == unit
    assert info.channels == ("ch0", "ch1", "ch2")
    assert info.metadata["variant"] == ("BDF+C" if suffix == ".bdf" else "EDF+C")
    assert info.start_time == START
    assert data.shape == x.shape and writer.n_records == 4 and writer.padded_samples == 0
    assert np.abs(data - x).max() <= writer.resolution / 2 * (1 + 1e-9)
    if unit == "counts":
        np.testing.assert_array_equal(data, x)  # integer counts are exact
    assert n_records_field(path) == "4"


def test_chunking_does_not_change_the_file(tmp_path: Path, rng) -> None:
    x = rng.normal(0.0, 100.0, (3500, 2))
    one = tmp_path / "one.bdf"
    many = tmp_path / "many.bdf"
    write_in_pieces(one, x, [], start_time=START)
    cuts = np.sort(rng.integers(0, 3500, 40)).tolist()
    write_in_pieces(many, x, cuts, start_time=START)
    assert one.read_bytes() == many.read_bytes()


def test_partial_last_record_is_padded_and_read_back_without_the_padding(
    tmp_path: Path, rng
) -> None:
    # the file holds whole records (3000 samples), and says where the 2300 written end
    x = rng.normal(0.0, 50.0, (2300, 1))
    writer = write_in_pieces(tmp_path / "p.bdf", x, [1000])
    assert writer.padded_samples == 700
    assert (tmp_path / "p.bdf").stat().st_size == 256 * 3 + 3 * writer.record_bytes
    data, info = read_recording(tmp_path / "p.bdf")
    assert data.shape == (2300, 1) and info.n_samples == 2300
    assert np.abs(data - x).max() <= writer.resolution / 2 * (1 + 1e-9)
    ends = info.annotations[info.annotations.text == "recording ends"]
    # (the first record's onset holds the start time's fraction of a second, and the
    # annotation is read relative to it: equal to the last bits only)
    assert ends.onset_s.tolist() == pytest.approx([2.3], abs=1e-9)
    with open_recording(tmp_path / "p.bdf") as reader:   # streamed in pieces: the same
        assert np.array_equal(np.concatenate(list(reader.iter_chunks(700))), data)


def test_clipped_and_missing_samples_are_counted(tmp_path: Path) -> None:
    x = np.zeros((1000, 2))
    x[10:15, 0] = 1e7  # far beyond ±0.5 V
    x[20, 0] = -1e7
    x[30:33, 1] = np.nan
    writer = write_in_pieces(tmp_path / "c.bdf", x, [])
    np.testing.assert_array_equal(writer.clipped, [6, 0])
    np.testing.assert_array_equal(writer.missing, [0, 3])
    data, _ = read_recording(tmp_path / "c.bdf")
    lo, hi = default_physical_range("uV", bdf=True)
    assert data[12, 0] == pytest.approx(hi) and data[20, 0] == pytest.approx(lo)
    assert (data[30:33, 1] == 0).all()


def test_header_says_minus_one_while_recording(tmp_path: Path, rng) -> None:
    path = tmp_path / "live.bdf"
    x = rng.normal(0.0, 80.0, (3600, 2))
    writer = RecordingWriter(path, 1000.0, ("a", "b"))
    writer.write(x)
    assert n_records_field(path) == "-1"
    data, info = read_recording(path)  # readable while it is still being written
    assert info.metadata["n_records"] == 3 and data.shape == (3000, 2)
    assert np.abs(data - x[:3000]).max() <= writer.resolution / 2 * (1 + 1e-9)
    writer.close()
    assert n_records_field(path) == "4"


def test_reader_ignores_a_trailing_partial_record(tmp_path: Path, rng) -> None:
    path = tmp_path / "cut.bdf"
    x = rng.normal(0.0, 80.0, (5000, 2))
    writer = write_in_pieces(path, x, [])
    raw = bytearray(path.read_bytes())
    raw[236:244] = b"-1      "
    path.write_bytes(bytes(raw[: len(raw) - writer.record_bytes // 2]))
    with pytest.warns(RecordingWarning, match="unfinished recording"):
        data, info = read_recording(path)
    assert info.n_samples == 4500 - 500 and data.shape == (4000, 2)
    np.testing.assert_allclose(data, x[:4000], atol=writer.resolution)


def test_episodes_become_annotations(tmp_path: Path) -> None:
    rec = simulate(np.random.default_rng(11), fs=1000.0, duration_s=30.0, n_channels=2)
    pipe = Pipeline(rec.fs, rec.channels, unit="uV")
    path = tmp_path / "episodes.bdf"
    with RecordingWriter(path, rec.fs, rec.channels, start_time=START) as writer:
        for part in np.array_split(rec.signal, 300):
            result = pipe.process(part)
            writer.write(part)
            writer.add_events(result.events)
        writer.add_events(pipe.flush().events)
    assert len(pipe.episodes) > 0 and writer.n_annotations == len(pipe.episodes)
    data, info = read_recording(path)
    assert data.shape[0] == 30_000  # annotations queued at close did not add a record
    ann = info.annotations.sort_values("onset_s").reset_index(drop=True)
    eps = sorted(pipe.episodes, key=lambda e: e.onset_s)
    assert ann["text"].tolist() == [f"{e.label} ({e.pattern}) {e.channel}" for e in eps]
    np.testing.assert_allclose(ann["onset_s"], [e.onset_s for e in eps], atol=1e-6)
    np.testing.assert_allclose(ann["duration_s"], [e.duration_s for e in eps], atol=1e-6)


def test_many_annotations_spill_into_following_records(tmp_path: Path) -> None:
    path = tmp_path / "busy.edf"
    with RecordingWriter(path, 1000.0, ("a",), annotation_bytes=120) as writer:
        for k in range(40):
            writer.annotate(k * 0.1, 0.05, f"twitch (phasic) a #{k}")
        writer.write(np.zeros((3000, 1)))
    _, info = read_recording(path)
    assert info.annotations["text"].tolist() == [f"twitch (phasic) a #{k}" for k in range(40)]
    assert writer.n_records > 3  # the rest went into padded records at close


def test_edfio_reads_what_we_write(tmp_path: Path, rng) -> None:
    edfio = pytest.importorskip("edfio")
    x = rng.normal(0.0, 200.0, (3000, 2))
    for suffix in (".bdf", ".edf"):
        path = tmp_path / f"check{suffix}"
        with RecordingWriter(path, 1000.0, ("calf_left", "lower_back"), start_time=START) as w:
            w.write(x)
            w.annotate(1.25, 0.5, "twitch (phasic) calf_left")
            w.annotate(2.0, None, "alert")
        doc = edfio.read_bdf(path) if suffix == ".bdf" else edfio.read_edf(path)
        assert [s.label for s in doc.signals] == ["calf_left", "lower_back"]
        assert doc.signals[0].sampling_frequency == 1000
        assert doc.signals[0].physical_dimension == "uV"
        for k in range(2):
            np.testing.assert_allclose(doc.signals[k].data, x[:, k], atol=w.resolution)
        texts = [(a.onset, a.duration, a.text) for a in doc.annotations]
        assert texts == [(1.25, 0.5, "twitch (phasic) calf_left"), (2.0, None, "alert")]
        assert doc.startdate == START.date()
        assert doc.duration == 3.0


def test_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="record_s"):
        RecordingWriter(tmp_path / "a.bdf", 1000.5, ("a",))
    with pytest.raises(ConfigError, match="channels"):
        RecordingWriter(tmp_path / "a.bdf", 1000.0, ("a_channel_name_too_long",))
    with pytest.raises(ConfigError, match="unit"):
        RecordingWriter(tmp_path / "a.bdf", 1000.0, ("a",), unit="mV")
    with pytest.raises(ConfigError, match="physical"):
        RecordingWriter(tmp_path / "a.bdf", 1000.0, ("a",), physical_range=(1.0, -1.0))
    writer = RecordingWriter(tmp_path / "b.bdf", 250.0, ("a",), record_s=0.2)
    writer.close()
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="channels"):
        RecordingWriter(tmp_path / "c.bdf", 250.0, ("a",)).write(np.zeros((5, 2)))


def test_a_recording_is_named_bdf_or_edf(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from emg_pipeline.cli import main
    from emg_pipeline.errors import OutputError
    from emg_pipeline.sinks.recording import RecordingSink, recording_variant

    assert recording_variant("a.BDF") == "BDF+C" and recording_variant("a.edf") == "EDF+C"
    with pytest.raises(ConfigError, match=r"\.bdf \(BDF\+\) or \.edf"):
        RecordingWriter(tmp_path / "a.txt", 1000.0, ("a",))
    with pytest.raises(OutputError, match=r"^--record: "):
        RecordingSink(tmp_path / "a.txt")
    # the command refuses it before the first sample: one line naming the option, no file
    target = tmp_path / "x.txt"
    assert main(["replay", "--fast", "-qq", "--record", str(target)]) == 2
    assert capsys.readouterr().err == (f"emg-pipeline: error: --record: {target}: a "
                                       "recording's name must end in .bdf (BDF+) or .edf (EDF+)\n")
    assert list(tmp_path.iterdir()) == []


_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from emg_pipeline.sinks.recording import RecordingWriter

    x = np.random.default_rng(7).normal(0.0, 100.0, (60_000, 2))
    writer = RecordingWriter(sys.argv[1], 1000.0, ("a", "b"), fsync_s=0.5)
    for start in range(0, x.shape[0], 100):
        writer.write(x[start : start + 100])
        if start % 1000 == 500:
            writer.annotate(start / 1000.0, 0.1, f"mark {start}")
        print(start + 100, flush=True)
        time.sleep(0.002)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_recording_killed_mid_write_reads_back(
    tmp_path: Path, spawn: Callable[..., subprocess.Popen]
) -> None:
    path = tmp_path / "killed.bdf"
    child = spawn([sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    written = 0
    try:
        assert child.stdout is not None
        for line in child.stdout:
            written = int(line)
            if written >= 6_300:  # six records and a bit handed to the writer
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert n_records_field(path) == "-1"
    data, info = read_recording(path)
    x = np.random.default_rng(7).normal(0.0, 100.0, (60_000, 2))
    n = data.shape[0]
    assert n % 1000 == 0 and written - n <= 1000  # at most the record being filled is lost
    resolution = 1e6 / (2**24 - 2)
    assert np.abs(data - x[:n]).max() <= resolution / 2 * (1 + 1e-9)
    marks = info.annotations["text"].tolist()
    assert marks[: n // 1000] == [f"mark {k * 1000 + 500}" for k in range(n // 1000)]
