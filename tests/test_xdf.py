"""XDF files, written here by the XDF specification, read back through every command.

The writer below follows the XDF 1.0 specification: the magic ``XDF:``, then
chunks ``[NumLengthBytes][Length][Tag][Content]`` with tags 1 FileHeader,
2 StreamHeader, 3 Samples, 4 ClockOffset, 6 StreamFooter; samples carry an
optional 8-byte timestamp (deduced from the rate when absent), string values
a variable-length length. Timestamps are written on each sender's clock, and
ClockOffset chunks say how far that clock is from the recorder's.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyxdf")

from emg_pipeline import Pipeline, run, simulate
from emg_pipeline.cli import main
from emg_pipeline.errors import ConfigError, RecordingError, RecordingWarning
from emg_pipeline.sources.formats import detect_format, open_recording, read_recording
from emg_pipeline.sources.replay import ReplaySource

FS = 1000.0
T0 = 5000.0          # recorder clock (LSL local_clock) of the first EMG sample
EMG_OFFSET = 42.25   # recorder clock - EMG sender's clock
MARKER_OFFSET = -3.5  # recorder clock - marker sender's clock
GAP = (8000, 8250)   # EMG samples lost while recording


def _length(n: int) -> bytes:
    if n < 256:
        return struct.pack("<BB", 1, n)
    if n < 1 << 32:
        return struct.pack("<BI", 4, n)
    return struct.pack("<BQ", 8, n)


def _chunk(tag: int, content: bytes) -> bytes:
    return _length(len(content) + 2) + struct.pack("<H", tag) + content


def _header_xml(name: str, kind: str, n_ch: int, rate: float, fmt: str,
                channels: list[tuple[str, str]] | None = None) -> bytes:
    desc = ""
    if channels:
        desc = "<desc><channels>" + "".join(
            f"<channel><label>{label}</label><unit>{unit}</unit><type>EMG</type></channel>"
            for label, unit in channels) + "</channels></desc>"
    return (f'<?xml version="1.0"?><info><name>{name}</name><type>{kind}</type>'
            f"<channel_count>{n_ch}</channel_count><nominal_srate>{rate:g}</nominal_srate>"
            f"<channel_format>{fmt}</channel_format><source_id>{name}-1</source_id>"
            f"<created_at>1.0</created_at>{desc}</info>").encode()


class XdfWriter:
    """A minimal XDF writer, by the specification."""

    def __init__(self) -> None:
        self.parts = [b"XDF:", _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version>'
                                         b"<datetime>2026-11-27T08:00:00+0100</datetime></info>")]

    def stream(self, sid: int, xml: bytes) -> None:
        self.parts.append(_chunk(2, struct.pack("<I", sid) + xml))

    def numeric(self, sid: int, stamps: list[float | None], values: np.ndarray) -> None:
        """Samples of float32 channels; a None timestamp is deduced by the reader."""
        body = [struct.pack("<I", sid), _length(len(stamps))]
        for stamp, row in zip(stamps, values, strict=True):
            body.append(b"\x00" if stamp is None else b"\x08" + struct.pack("<d", stamp))
            body.append(np.asarray(row, dtype="<f4").tobytes())
        self.parts.append(_chunk(3, b"".join(body)))

    def strings(self, sid: int, stamps: list[float], values: list[str]) -> None:
        body = [struct.pack("<I", sid), _length(len(stamps))]
        for stamp, text in zip(stamps, values, strict=True):
            raw = text.encode()
            body += [b"\x08", struct.pack("<d", stamp), _length(len(raw)), raw]
        self.parts.append(_chunk(3, b"".join(body)))

    def offset(self, sid: int, collection_time: float, value: float) -> None:
        self.parts.append(_chunk(4, struct.pack("<Idd", sid, collection_time, value)))

    def footer(self, sid: int, first: float, last: float, count: int) -> None:
        xml = (f'<?xml version="1.0"?><info><first_timestamp>{first}</first_timestamp>'
               f"<last_timestamp>{last}</last_timestamp><sample_count>{count}</sample_count>"
               "</info>").encode()
        self.parts.append(_chunk(6, struct.pack("<I", sid) + xml))

    def save(self, path: Path) -> Path:
        path.write_bytes(b"".join(self.parts))
        return path


def write_session(path: Path, signal: np.ndarray, channels: tuple[str, ...], *,
                  extra_emg: bool = False) -> Path:
    """EMG (float32, µV) with a gap and a clock offset, and a marker stream with its own."""
    x = signal.astype(np.float32)
    kept = np.r_[0:GAP[0], GAP[1]:x.shape[0]]
    w = XdfWriter()
    w.stream(1, _header_xml("EMG-Board", "EMG", x.shape[1], FS, "float32",
                            [(c, "microvolts") for c in channels]))
    w.stream(2, _header_xml("Stim", "Markers", 1, 0.0, "string"))
    if extra_emg:
        w.stream(3, _header_xml("Other-EMG", "EMG", 1, 500.0, "float32"))
        w.numeric(3, [T0 - EMG_OFFSET], np.zeros((1, 1)))
    sender = T0 - EMG_OFFSET + kept / FS   # the EMG sender's clock
    # chunks of 100 samples: the first stamped, the others deduced; after the gap, stamped
    for start in range(0, kept.size, 100):
        rows = kept[start:start + 100]
        stamps: list[float | None] = [None] * rows.size
        stamps[0] = float(sender[start])
        jump = np.flatnonzero(np.diff(rows) > 1)
        for j in jump:
            stamps[j + 1] = float(sender[start + j + 1])
        w.numeric(1, stamps, x[rows])
        if start % 5000 == 0:
            w.offset(1, float(sender[start]), EMG_OFFSET)
            w.offset(2, float(sender[start]) - 1.0, MARKER_OFFSET)
    markers = [(2.0, "start"), (15.0, '{"event":"stim","level":3}')]
    w.strings(2, [T0 + t - MARKER_OFFSET for t, _ in markers], [m for _, m in markers])
    w.offset(1, float(sender[-1]), EMG_OFFSET)
    w.offset(2, float(sender[-1]), MARKER_OFFSET)
    w.footer(1, float(sender[0]), float(sender[-1]), kept.size)
    w.footer(2, T0 + 2.0 - MARKER_OFFSET, T0 + 15.0 - MARKER_OFFSET, 2)
    return w.save(path)


def write_csv(path: Path, signal: np.ndarray, channels: tuple[str, ...]) -> Path:
    """The same samples (as float32) with empty cells where the XDF has its gap."""
    x = signal.astype(np.float32).astype(np.float64)
    table = pd.DataFrame(x, columns=[f"{c} (uV)" for c in channels])
    table.insert(0, "time", np.arange(x.shape[0]) / FS)
    table.iloc[GAP[0]:GAP[1], 1:] = np.nan
    table.to_csv(path, index=False, float_format="%.9g")
    return path


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray, tuple]:
    rec = simulate(np.random.default_rng(11), fs=FS, duration_s=20.0,
                   channels=("calf_left", "thigh_right"))
    folder = tmp_path_factory.mktemp("xdf")
    xdf = write_session(folder / "session.xdf", rec.signal, rec.channels)
    csv = write_csv(folder / "session.csv", rec.signal, rec.channels)
    return xdf, csv, rec.signal, rec.channels


def replay_episodes(path: Path, **kwargs: object) -> pd.DataFrame:
    with open_recording(path, **kwargs) as reader, \
            ReplaySource(reader, speed=None, chunk_s=0.05) as source:
        info = source.info
        pipe = Pipeline(info.fs, info.channels, unit=info.unit)
        run(source, pipe)
    return pipe.episodes_frame()


def test_xdf_reads_the_emg_with_its_gap_and_markers(session) -> None:
    xdf, _, signal, channels = session
    assert detect_format(xdf) == "xdf"
    data, info = read_recording(xdf)
    assert info.format == "xdf" and info.fs == FS and info.unit == "uV"
    assert info.channels == channels
    assert data.shape == signal.shape
    missing = np.isnan(data).all(axis=1)
    assert missing.sum() == GAP[1] - GAP[0] and missing[GAP[0]:GAP[1]].all()
    keep = ~missing
    np.testing.assert_array_equal(data[keep], signal.astype(np.float32)[keep])
    assert info.metadata["lost_samples"] == GAP[1] - GAP[0] and info.metadata["gaps"] == 1
    assert info.metadata["stream"] == "EMG-Board" and info.start_time is None
    notes = info.annotations
    # both clock offsets applied: the markers land where they were sent
    np.testing.assert_allclose(notes["onset_s"], [2.0, 15.0], atol=1e-6)
    assert notes["text"].tolist() == ["start", '{"event":"stim","level":3}']


def test_xdf_replays_to_the_same_episodes_as_the_csv(session) -> None:
    xdf, csv, _, _ = session
    from_xdf = replay_episodes(xdf)
    from_csv = replay_episodes(csv, fs=FS)
    assert len(from_xdf) > 0
    pd.testing.assert_frame_equal(from_xdf, from_csv)


def test_detect_and_replay_commands_read_xdf(session, tmp_path: Path) -> None:
    xdf, csv, _, _ = session
    out_xdf, out_csv = tmp_path / "xdf.csv", tmp_path / "csv.csv"
    assert main(["detect", str(xdf), "--stream", "EMG-Board", "--out", str(out_xdf), "-q"]) == 0
    assert main(["detect", str(csv), "--fs", "1000", "--out", str(out_csv), "-q"]) == 0
    a, b = pd.read_csv(out_xdf), pd.read_csv(out_csv)
    pd.testing.assert_frame_equal(a, b)
    out_replay = tmp_path / "replay.csv"
    assert main(["replay", str(xdf), "--fast", "--out", str(out_replay), "-qq"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out_replay), a)


def test_report_reads_xdf(session, tmp_path: Path) -> None:
    xdf, _, _, _ = session
    assert main(["report", str(xdf), "--out", str(tmp_path / "report"), "-q"]) == 0
    assert (tmp_path / "report" / "index.html").is_file()


def test_stream_choice_and_errors(tmp_path: Path, session,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    rec = simulate(np.random.default_rng(3), fs=FS, duration_s=10.0, n_channels=2)
    two = write_session(tmp_path / "two.xdf", rec.signal, rec.channels, extra_emg=True)
    with pytest.raises(RecordingError, match="several streams could be the EMG"):
        open_recording(two)
    with open_recording(two, stream="Other-EMG") as reader:
        assert reader.info.fs == 500.0 and reader.info.unit == "counts"
    with pytest.raises(RecordingError, match="no stream named 'Nope'"):
        open_recording(two, stream="Nope")
    with pytest.raises(RecordingError, match="holds text"):
        open_recording(two, stream="Stim")
    csv = session[1]
    with pytest.raises(ConfigError, match="stream"):
        open_recording(csv, stream="EMG-Board")
    # damaged files: one error line, no traceback
    broken = tmp_path / "broken.xdf"
    broken.write_bytes(b"XDF:" + b"\x01\x05\x02\x00\x01\x00")
    empty = tmp_path / "empty.xdf"
    empty.write_bytes(b"XDF:")
    for path in (broken, empty):
        assert main(["detect", str(path), "-q"]) == 2
    assert main(["detect", str(two), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("emg-pipeline: error: ") for line in err)
    assert "--stream NAME" in err[2]


def test_truncated_xdf_is_read_in_part_or_refused(tmp_path: Path, session,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    xdf = session[0]
    cut = tmp_path / "cut.xdf"
    raw = xdf.read_bytes()
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    assert main(["detect", str(cut), "-q", "--out", str(tmp_path / "e.csv")]) == 0
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("emg-pipeline: warning: ")
    assert "damaged XDF file" in warning[0]
    with pytest.warns(RecordingWarning, match="damaged XDF file"):
        data, info = read_recording(cut)
    assert 0 < data.shape[0] < 20000 and "partial_read" in info.metadata
    assert main(["detect", str(cut), "-q", "--strict"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "strict mode refuses a partial read" in error[0]


def test_jittered_timestamps_are_not_loss(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 10, (6000, 1))
    w = XdfWriter()
    w.stream(1, _header_xml("J", "EMG", 1, FS, "float32", [("calf", "uV")]))
    for start in range(0, 6000, 20):   # stamped when pushed: +-1.5 ms of jitter
        stamps: list[float | None] = [None] * 20
        stamps[0] = T0 + start / FS + rng.uniform(-0.0015, 0.0015)
        w.numeric(1, stamps, x[start:start + 20])
    path = w.save(tmp_path / "jitter.xdf")
    data, info = read_recording(path)
    assert info.metadata["gaps"] == 0 and data.shape == x.shape
    assert info.metadata["timestamp_jitter_s"] > 0.001


def test_a_broken_clock_is_one_error_line(tmp_path: Path) -> None:
    w = XdfWriter()
    w.stream(1, _header_xml("J", "EMG", 1, FS, "float32"))
    w.numeric(1, [T0] + [None] * 99, np.zeros((100, 1)))
    w.numeric(1, [T0 + 7200.0] + [None] * 99, np.zeros((100, 1)))   # two hours later
    path = w.save(tmp_path / "jump.xdf")
    with pytest.raises(RecordingError, match=r"timestamps jump by 7200 s at 0\.1 s"):
        open_recording(path)
