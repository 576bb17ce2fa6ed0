"""Tests of the recording readers in ``emg_pipeline.sources.formats``.

Small files of every format are written here into ``tmp_path`` (EDF/BDF and
WFDB with the minimal writers below, checked against edfio where installed);
the real recordings in ``../shared/data`` (next to the repository) are read
back to the figures their ``SOURCE.txt`` states, and skipped when absent.
"""

from __future__ import annotations

import gzip
import json
import struct
from collections.abc import Sequence
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from benchmarks.fuzz_readers import pack_212
from emg_pipeline.errors import ConfigError, RecordingError, SampleRateError
from emg_pipeline.sources.formats import (
    FORMATS,
    READERS,
    RecordingInfo,
    detect_format,
    open_recording,
    read_recording,
)
from emg_pipeline.sources.formats.opensignals import emg_transfer_uv

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

CHUNK_SIZES = (1, 7, 256, 10_000_000)


# ---------------------------------------------------------------------------------------------
# writers used by the tests
# ---------------------------------------------------------------------------------------------


def write_edf(
    path: Path,
    signals: Sequence[dict],
    *,
    record_duration: float = 1.0,
    bdf: bool = False,
    annotations: Sequence[tuple[float, float | None, str]] = (),
    record_onsets: Sequence[float] | None = None,
    plus: bool = True,
    start: datetime = datetime(2023, 2, 1, 12, 30, 5),
    n_records_field: int | None = None,
) -> None:
    """Write a small EDF(+)/BDF(+) file.

    Each signal is a dict with ``label``, ``dim``, ``digital`` (int array),
    ``n`` (samples per record), ``phys`` (min, max), ``dig`` (min, max).
    Annotations go into the first record.
    """
    n_records = len(signals[0]["digital"]) // signals[0]["n"]
    onsets = (
        list(record_onsets)
        if record_onsets is not None
        else [r * record_duration for r in range(n_records)]
    )
    sample_bytes = 3 if bdf else 2
    all_signals = list(signals)
    tal_bytes = 0
    if plus:
        tal_bytes = 60 * sample_bytes
        all_signals.append(
            {
                "label": "BDF Annotations" if bdf else "EDF Annotations",
                "dim": "",
                "n": 60,
                "phys": (-1, 1),
                "dig": (-(2**23), 2**23 - 1) if bdf else (-32768, 32767),
            }
        )
    ns = len(all_signals)

    def field(value: object, width: int) -> bytes:
        text = str(value).encode("latin-1")
        if len(text) > width:
            raise ValueError(f"{value!r} does not fit {width} bytes")
        return text.ljust(width)

    version = b"\xffBIOSEMI" if bdf else b"0       "
    reserved = ("BDF" if bdf else "EDF") + ("+D" if record_onsets is not None else "+C")
    if not plus:
        reserved = "24BIT" if bdf else ""
    month = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    recording = (
        f"Startdate {start.day:02d}-{month[start.month - 1]}-{start.year} X X X" if plus else ""
    )
    header = b"".join(
        [
            version,
            field("X X X X" if plus else "test", 80),
            field(recording, 80),
            field(start.strftime("%d.%m.%y"), 8),
            field(start.strftime("%H.%M.%S"), 8),
            field(256 * (ns + 1), 8),
            field(reserved, 44),
            field(n_records if n_records_field is None else n_records_field, 8),
            field(f"{record_duration:g}", 8),
            field(ns, 4),
        ]
    )
    for width, key in (
        (16, "label"),
        (80, None),  # transducer
        (8, "dim"),
        (8, ("phys", 0)),
        (8, ("phys", 1)),
        (8, ("dig", 0)),
        (8, ("dig", 1)),
        (80, None),  # prefiltering
        (8, "n"),
        (32, None),  # reserved
    ):
        for s in all_signals:
            if key is None:
                value = ""
            elif isinstance(key, tuple):
                value = s[key[0]][key[1]]
            else:
                value = s[key]
            header += field(value, width)
    body = bytearray()
    for r in range(n_records):
        for s in signals:
            chunk = np.asarray(s["digital"][r * s["n"] : (r + 1) * s["n"]], dtype=np.int64)
            if bdf:
                u = chunk & 0xFFFFFF
                body += (
                    np.column_stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF])
                    .astype(np.uint8)
                    .tobytes()
                )
            else:
                body += chunk.astype("<i2").tobytes()
        if plus:
            tal = f"+{onsets[r]:g}\x14\x14\x00".encode()
            if r == 0:
                for onset, duration, text in annotations:
                    dur = "" if duration is None else f"\x15{duration:g}"
                    tal += f"+{onset:g}{dur}\x14{text}\x14\x00".encode()
            if len(tal) > tal_bytes:
                raise ValueError("annotations do not fit the annotation signal")
            body += tal.ljust(tal_bytes, b"\x00")
    path.write_bytes(header + bytes(body))


def write_wfdb(
    folder: Path,
    name: str,
    adu: np.ndarray,
    *,
    fmt: int = 16,
    gains: Sequence[str] = (),
    fs: float = 1000.0,
    extra: str = "",
    comments: Sequence[str] = (),
    n_samples: int | None = None,
) -> Path:
    """Write ``name.hea`` + ``name.dat`` holding ``adu`` (n, nsig) in one file."""
    adu = np.asarray(adu, dtype=np.int64)
    nsig = adu.shape[1]
    flat = adu.reshape(-1)
    if fmt == 16:
        raw = flat.astype("<i2").tobytes()
    elif fmt == 61:
        raw = flat.astype(">i2").tobytes()
    elif fmt == 80:
        raw = (flat + 128).astype(np.uint8).tobytes()
    elif fmt == 160:
        raw = (flat + 32768).astype("<u2").tobytes()
    elif fmt == 32:
        raw = flat.astype("<i4").tobytes()
    elif fmt == 24:
        u = flat & 0xFFFFFF
        raw = (
            np.column_stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF])
            .astype(np.uint8)
            .tobytes()
        )
    elif fmt == 212:
        raw = pack_212(flat)
    else:
        raise ValueError(fmt)
    (folder / f"{name}.dat").write_bytes(raw)
    n = adu.shape[0] if n_samples is None else n_samples
    lines = [f"{name} {nsig} {fs:g} {n}{extra}"]
    for k in range(nsig):
        gain = gains[k] if k < len(gains) else "200/mV"
        lines.append(f"{name}.dat {fmt} {gain} 12 0 {adu[0, k]} 0 0 sig{k}")
    lines += [f"# {c}" for c in comments]
    hea = folder / f"{name}.hea"
    hea.write_text("\n".join(lines) + "\n")
    return hea


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


def assert_chunks_equal_read(
    path: Path, sizes: Sequence[int] = CHUNK_SIZES, **kw: object
) -> np.ndarray:
    """iter_chunks concatenated == read(), for several chunk sizes; returns read()."""
    with open_recording(path, **kw) as reader:
        whole = reader.read()
        assert whole.dtype == np.float64
        assert whole.ndim == 2 and whole.shape[1] == len(reader.info.channels)
        for size in sizes:
            chunks = list(reader.iter_chunks(size))
            assert all(c.shape[0] == size for c in chunks[:-1])
            assert all(c.dtype == np.float64 for c in chunks)
            joined = np.concatenate(chunks) if chunks else np.empty_like(whole)
            np.testing.assert_array_equal(joined, whole)
    return whole


# ---------------------------------------------------------------------------------------------
# registry and interface
# ---------------------------------------------------------------------------------------------


def test_formats_and_registry_agree() -> None:
    assert FORMATS == ("csv", "openbci", "opensignals", "myo", "biosppy", "wfdb", "edf", "wav",
                       "xdf")
    assert sorted(r.format for r in READERS) == sorted(FORMATS)
    for reader in READERS:
        assert reader.__doc__ and reader.sniff.__doc__


def test_info_is_frozen_and_annotations_have_columns(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("time,emg\n0,1\n0.001,2\n")
    with open_recording(path) as reader:
        info = reader.info
    assert isinstance(info, RecordingInfo)
    with pytest.raises(FrozenInstanceError):
        info.fs = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        info.metadata["x"] = 1  # type: ignore[index]
    assert list(info.annotations.columns) == ["onset_s", "duration_s", "text"]
    assert info.annotations.empty


def test_bad_format_name_and_chunk_size(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("time,emg\n0,1\n0.001,2\n")
    with pytest.raises(ConfigError, match="format"):
        open_recording(path, format="xls")
    with open_recording(path) as reader, pytest.raises(ConfigError, match="chunk_samples"):
        list(reader.iter_chunks(0))


# ---------------------------------------------------------------------------------------------
# generic CSV
# ---------------------------------------------------------------------------------------------


def test_csv_with_time_column_empty_cells_and_text_column(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    path.write_text("Time,biceps,triceps,note\n0.000,1.5,-2,start\n0.002,,3,\n0.004,2.5,4,x\n")
    data, info = read_recording(path)
    assert info.format == "csv"
    assert info.fs == pytest.approx(500.0)
    assert info.channels == ("biceps", "triceps")
    assert info.unit == "counts"
    assert info.n_samples == 3
    assert info.metadata["ignored_columns"] == ("note",)
    np.testing.assert_array_equal(data, [[1.5, -2], [np.nan, 3], [2.5, 4]])


@pytest.mark.parametrize(
    ("sep", "decimal"), [(",", "."), ("\t", "."), (";", "."), (";", ","), ("  ", ".")]
)
def test_csv_delimiters(tmp_path: Path, sep: str, decimal: str) -> None:
    rows = [("0.000", "1.25", "-3"), ("0.001", "2.5", "4"), ("0.002", "-1", "5.75")]
    text = sep.join(("time_s", "a", "b")) + "\n"
    text += "".join(sep.join(v.replace(".", decimal) for v in row) + "\n" for row in rows)
    path = tmp_path / "rec.txt"
    path.write_text(text)
    data, info = read_recording(path)
    assert info.channels == ("a", "b")
    assert info.fs == pytest.approx(1000.0)
    np.testing.assert_allclose(data, [[1.25, -3], [2.5, 4], [-1, 5.75]])


def test_csv_bom_and_timestamp_start(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    path.write_bytes(b"\xef\xbb\xbftimestamp,emg\n1700000000.000,1\n1700000000.001,2\n")
    data, info = read_recording(path)
    assert info.channels == ("emg",)
    assert info.start_time == datetime.fromtimestamp(1700000000, tz=UTC)
    assert data.shape == (2, 1)


def test_csv_headerless_needs_fs(tmp_path: Path) -> None:
    path = tmp_path / "raw.csv"
    path.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(SampleRateError, match="pass --fs") as caught:
        open_recording(path)
    assert str(path) in one_line(caught.value)
    data, info = read_recording(path, fs=1000)
    assert info.channels == ("ch1", "ch2", "ch3")
    assert info.fs == 1000.0
    np.testing.assert_array_equal(data, [[1, 2, 3], [4, 5, 6]])


def test_csv_header_without_time_needs_fs(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    path.write_text("emg1,emg2\n1,2\n3,4\n")
    with pytest.raises(SampleRateError, match="sampling rate unknown: pass --fs"):
        open_recording(path)
    assert read_recording(path, fs=2000)[1].fs == 2000.0


def test_csv_fs_override_and_disagreement(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    path.write_text("time,emg\n" + "".join(f"{k / 1000:.3f},{k}\n" for k in range(50)))
    assert read_recording(path, fs=1005)[1].fs == 1005.0  # within 1 %: the given rate is used
    with pytest.raises(SampleRateError) as caught:
        open_recording(path, fs=2000)
    message = one_line(caught.value)
    assert "2000" in message and "1000" in message and str(path) in message


def write_timed_csv(path: Path, times: np.ndarray, fmt: str = "{:.4f}") -> None:
    """A CSV of one channel whose value is the row number, with the given time column."""
    path.write_text("time,emg\n" + "".join(f"{fmt.format(t)},{k}\n" for k, t in enumerate(times)))


def test_csv_gap_in_time_column_keeps_the_timeline(tmp_path: Path) -> None:
    times = np.arange(100) / 250.0
    times[50:] += 0.4  # a 0.4 s gap: 100 samples missing
    path = tmp_path / "gaps.csv"
    write_timed_csv(path, times)
    data, info = read_recording(path)
    assert info.fs == pytest.approx(250.0)  # the median step: the gap does not bias it
    assert data.shape == (200, 1)  # no row dropped; the gap is rows of NaN
    np.testing.assert_array_equal(data[:50, 0], np.arange(50))
    assert np.isnan(data[50:150, 0]).all()
    np.testing.assert_array_equal(data[150:, 0], np.arange(50, 100))
    assert_chunks_equal_read(path)


def test_csv_time_column_jitter_is_no_gap_and_gaps_survive_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    index = np.concatenate([np.arange(3000), np.arange(3010, 12_000)])  # 10 samples lost
    times = (index + rng.uniform(-0.3, 0.3, index.size)) / 1000.0  # +-0.3 period of jitter
    path = tmp_path / "jitter.csv"
    write_timed_csv(path, times, "{:.6f}")
    data = assert_chunks_equal_read(path, (1, 4096, 10_000_000))
    assert data.shape == (12_000, 1)
    assert np.flatnonzero(np.isnan(data[:, 0])).tolist() == list(range(3000, 3010))
    # a step of 1.5 periods is jitter, one of 1.6 a missing sample
    write_timed_csv(path, np.array([0.0, 0.001, 0.002, 0.0035, 0.0045, 0.0061, 0.0071]))
    assert read_recording(path, fs=1000)[0].shape == (8, 1)


def test_csv_long_gap_after_the_opening_rows_streams_in_pieces(tmp_path: Path) -> None:
    times = np.arange(30_000) / 1000.0
    times[20_000:] += 150.0  # 150 s missing, beyond the rows read at opening
    path = tmp_path / "long.csv"
    write_timed_csv(path, times, "{:.3f}")
    with open_recording(path) as reader:
        chunks = list(reader.iter_chunks(50_000))
    data = np.concatenate(chunks)
    assert data.shape == (180_000, 1)
    assert np.isnan(data[20_000:170_000]).all() and not np.isnan(data[170_000:]).any()
    assert data[170_000, 0] == 20_000


def test_csv_empty_time_cell_follows_the_row_before(tmp_path: Path) -> None:
    path = tmp_path / "holes.csv"
    path.write_text("time,emg\n,0\n0.001,1\n0.002,2\n,3\n0.004,4\n0.005,5\n,6\n0.010,7\n")
    data, info = read_recording(path)
    assert info.fs == 1000.0  # from the steps between rows that both have a time
    # the rows without a time take 0, 0.003 and 0.006; the next is 0.010: 3 missing
    assert data[:7, 0].tolist() == list(range(7))
    assert np.isnan(data[7:10, 0]).all() and data[10:, 0].tolist() == [7]


def test_csv_iso_time_column_gap(tmp_path: Path) -> None:
    path = tmp_path / "clock.csv"
    stamps = [f"2026-11-27T08:00:00.{ms:03d}+01:00" for ms in (0, 1, 2, 6, 7)]
    path.write_text("time,emg\n" + "".join(f"{t},{k}\n" for k, t in enumerate(stamps)))
    data, info = read_recording(path)
    assert info.fs == 1000.0 and info.start_time == datetime.fromisoformat(stamps[0])
    assert data.shape == (8, 1) and np.isnan(data[3:6, 0]).all() and data[6, 0] == 3


@pytest.mark.parametrize(
    ("times", "where"),
    [
        ([0.0, 0.001, 0.002, 0.0015, 0.003], "data row 4 is 0.0005 s earlier than data row 3"),
        (np.random.default_rng(0).permutation(np.arange(300) / 1000.0), "earlier than"),
    ],
)
def test_csv_time_column_going_back_names_file_and_row(
    tmp_path: Path, times: Sequence[float], where: str
) -> None:
    path = tmp_path / "order.csv"
    write_timed_csv(path, np.asarray(times))
    with pytest.raises(RecordingError) as caught:
        open_recording(path)
    message = one_line(caught.value)
    assert str(path) in message and "time column 'time' goes back" in message
    assert where in message


@pytest.mark.parametrize("fs", [2000.0, 1024.0])
def test_csv_times_coarser_than_a_sample_keep_the_rate_and_lose_nothing(
    tmp_path: Path, fs: float
) -> None:
    # times written in whole milliseconds repeat at these rates: consecutive
    # samples all the same, read at the rate the rows come at
    times = np.round(np.arange(round(12 * fs)) / fs, 3)
    path = tmp_path / "coarse.csv"
    write_timed_csv(path, times, "{:.3f}")
    data, info = read_recording(path)
    assert abs(info.fs - fs) < 0.01 * fs
    assert data.shape[0] == times.shape[0] and not np.isnan(data).any()


def test_csv_time_going_back_after_the_opening_rows_is_an_error(tmp_path: Path) -> None:
    times = np.arange(12_000) / 1000.0
    times[11_000:] -= 0.5
    path = tmp_path / "late.csv"
    write_timed_csv(path, times, "{:.3f}")
    with open_recording(path) as reader, pytest.raises(RecordingError) as caught:
        reader.read()
    assert "data row 11001 is 0.499 s earlier than data row 11000" in one_line(caught.value)


def test_csv_time_jump_of_a_clock_reset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "reset.csv"
    write_timed_csv(path, np.array([0.0, 0.001, 0.002, 1e9, 1e9 + 0.001]))
    with pytest.raises(RecordingError, match="jumps by 1000000000 s at data row 4") as caught:
        read_recording(path)
    assert str(path) in one_line(caught.value)


def test_detect_dates_episodes_after_a_time_column_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from emg_pipeline.cli import main

    fs, rng = 1000, np.random.default_rng(0)
    x = rng.normal(0.0, 5.0, 12 * fs)
    x[8000:8400] += rng.normal(0.0, 120.0, 400)  # a burst at 8 s
    t = np.arange(x.size) / fs
    keep = (t < 4.0) | (t >= 5.0)  # the rows of 4-5 s deleted, the times kept
    path = tmp_path / "gap.csv"
    path.write_text("time_s,calf (uV)\n"
                    + "".join(f"{a:.3f},{b:.2f}\n" for a, b in zip(t[keep], x[keep], strict=True)))
    out = tmp_path / "episodes.csv"
    assert main(["detect", str(path), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "gap.csv: 12.0 s" in err and "calf: 1000" in err  # the second bridged, counted
    onset = float(out.read_text().splitlines()[1].split(",")[2])
    assert onset == pytest.approx(8.0, abs=0.05)


def test_csv_gzip_and_streaming(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(-500, 500, size=(20_000, 2))
    text = "time,a,b\n" + "".join(f"{k / 1000:.3f},{a},{b}\n" for k, (a, b) in enumerate(values))
    path = tmp_path / "demo.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert detect_format(path) == "csv"
    whole = assert_chunks_equal_read(path)
    np.testing.assert_array_equal(whole, values)


def test_csv_non_numeric_cell_names_column_and_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("time,emg,other\n0,1,2\n0.001,2,3\n0.002,oops,4\n")
    with pytest.raises(RecordingError) as caught:
        read_recording(path)
    message = one_line(caught.value)
    assert "'emg'" in message and "row 3" in message and "oops" in message
    assert str(path) in message


def test_csv_streams_without_parsing_the_whole_file(tmp_path: Path) -> None:
    # a bad cell in the last row: the first chunks come out before the parser reaches it
    rows = "".join(f"{k / 1000:.3f},{k % 97}\n" for k in range(100_000))
    path = tmp_path / "big.csv"
    path.write_text("time,emg\n" + rows + "100.000,oops\n")
    with open_recording(path) as reader:
        chunks = reader.iter_chunks(500)
        first = next(chunks)
        np.testing.assert_array_equal(first[:3, 0], [0, 1, 2])
        with pytest.raises(RecordingError, match="row 100001"):
            list(chunks)


@pytest.mark.parametrize(
    ("header", "first", "row", "missing"),
    [
        ("time,a,b", "0,1", "{k},{k},{k}", "data row 1 has 2 fields: column 'b' (field 3)"),
        ("a,b,c", "1,2", "{k},{k},{k}", "data row 1 has 2 fields: column 'c' (field 3)"),
        ("a;b", "1", "{k};{k}", "data row 1 has 1 field: column 'b' (field 2)"),
    ],
)
def test_csv_short_first_row_names_row_and_column(
    tmp_path: Path, header: str, first: str, row: str, missing: str
) -> None:
    path = tmp_path / "short.csv"
    rows = [row.format(k=k / 1000) for k in range(1, 9)]
    path.write_text("\n".join([header, first, *rows]) + "\n")
    with pytest.raises(RecordingError) as caught:
        read_recording(path, fs=1000)
    message = one_line(caught.value)
    assert str(path) in message and "Usecols" not in message
    assert f"{missing} is missing" in message


def test_csv_latin1_header_and_time_unit(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("Time (s);EMG (µV)\n0,0;1,5\n0,0005;2,5\n".encode("latin-1"))
    data, info = read_recording(path)
    assert info.channels == ("EMG",) and info.unit == "uV"
    assert info.fs == pytest.approx(2000.0)
    np.testing.assert_allclose(data[:, 0], [1.5, 2.5])


def test_csv_voltage_units_in_headers(tmp_path: Path) -> None:
    path = tmp_path / "mv.csv"
    path.write_text("time_s,calf [mV],thigh (uV)\n0,0.5,1\n0.001,-1.25,2\n")
    data, info = read_recording(path)
    assert info.unit == "uV" and info.channels == ("calf", "thigh")
    np.testing.assert_allclose(data, [[500.0, 1.0], [-1250.0, 2.0]])
    assert_chunks_equal_read(path, (1,))
    # one channel without a voltage unit: nothing is converted, names are kept
    path.write_text("time_s,calf [mV],accel (g)\n0,0.5,1\n0.001,-1.25,2\n")
    data, info = read_recording(path)
    assert info.unit == "counts" and info.channels == ("calf [mV]", "accel (g)")
    np.testing.assert_allclose(data, [[0.5, 1.0], [-1.25, 2.0]])


def test_csv_truncated_gzip(tmp_path: Path) -> None:
    text = "time,a\n" + "".join(f"{k / 1000},{k}\n" for k in range(20_000))
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(text.encode())[:30_000])
    with pytest.raises(RecordingError, match="truncated") as caught:
        read_recording(path)
    assert path.name in one_line(caught.value)


def _read_until_fault(path: Path, chunk: int) -> tuple[np.ndarray, RecordingError]:
    """The rows a stream of ``path`` gets before its fault, and the fault."""
    rows: list[np.ndarray] = []
    with open_recording(path) as reader, pytest.raises(RecordingError) as caught:
        for block in reader.iter_chunks(chunk):
            rows.append(block)
    return np.concatenate(rows) if rows else np.empty((0, 1)), caught.value


@pytest.mark.parametrize("chunk", [1000, 4096, 20_000])
def test_every_row_before_a_bad_cell_is_read_first(tmp_path: Path, chunk: int) -> None:
    # the bad cell falls inside a block of the parser: the rows of that block before it count
    values = np.arange(30_000) % 251
    rows = [f"{k / 1000:.3f},{v}\n" for k, v in enumerate(values)]
    rows[20_000] = "20.000,x5o5\n"
    path = tmp_path / "late.csv"
    path.write_text("time,emg\n" + "".join(rows))
    data, fault = _read_until_fault(path, chunk)
    np.testing.assert_array_equal(data[:, 0], values[:20_000])
    assert "'x5o5'" in one_line(fault) and "data row 20001" in one_line(fault)


def test_undecodable_bytes_end_the_rows_where_they_are(tmp_path: Path) -> None:
    # a few bytes garbled in the middle: reported there, not at the start of the parser's buffer
    values = np.arange(24_000) % 1000
    text = "time,emg\n" + "".join(f"{k / 1000:.3f},{v}\n" for k, v in enumerate(values))
    raw = bytearray(text.encode())
    at = raw.index(b"\n12.000,") + 4      # inside data row 12001
    raw[at : at + 3] = b"\xff\xfe\x00"
    path = tmp_path / "garbled.csv"
    path.write_bytes(bytes(raw))
    data, fault = _read_until_fault(path, 20)
    np.testing.assert_array_equal(data[:, 0], values[:12_000])
    assert "undecodable bytes after data row 12000" in one_line(fault)


def test_truncated_gzip_gives_its_whole_rows_first(tmp_path: Path) -> None:
    text = "time,a\n" + "".join(f"{k / 1000},{k}\n" for k in range(20_000))
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(text.encode())[:30_000])
    data, fault = _read_until_fault(path, 1000)
    n = data.shape[0]
    assert n > 5000    # what the 30 kB hold, not only the parser's first buffers
    np.testing.assert_array_equal(data[:, 0], np.arange(n))
    assert f"truncated: the compressed stream ends early, after data row {n}" in one_line(fault)


def test_info_pickles(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "a.csv"
    path.write_text("time,emg\n0,1\n0.001,2\n")
    _, info = read_recording(path)
    again = pickle.loads(pickle.dumps(info))
    assert again.fs == info.fs and dict(again.metadata) == dict(info.metadata)


# ---------------------------------------------------------------------------------------------
# bad inputs: one clear line each
# ---------------------------------------------------------------------------------------------


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, dict, type[Exception], str]]:
    cases: dict[str, tuple[Path, dict, type[Exception], str]] = {}
    cases["missing"] = (tmp / "nope.csv", {}, RecordingError, "not found")
    (tmp / "empty.csv").write_bytes(b"")
    cases["empty"] = (tmp / "empty.csv", {}, RecordingError, "empty")
    (tmp / "blank.csv").write_text("\n\n  \n")
    cases["blank"] = (tmp / "blank.csv", {}, RecordingError, "empty")
    (tmp / "header.csv").write_text("time,emg\n")
    cases["header only"] = (tmp / "header.csv", {"format": "csv"}, RecordingError, "no data rows")
    (tmp / "timeonly.csv").write_text("time\n0\n0.001\n")
    cases["no channel"] = (tmp / "timeonly.csv", {"format": "csv"}, RecordingError, "no channel")
    rng = np.random.default_rng(1)
    (tmp / "garbage.csv").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    cases["garbage"] = (tmp / "garbage.csv", {}, RecordingError, "unknown format")
    cases["garbage forced"] = (tmp / "garbage.csv", {"format": "csv"}, RecordingError, "binary")
    (tmp / "notes.txt").write_text('{"hello": "world",\n "list": [1, 2]}\nsome prose here.\n')
    cases["unknown"] = (tmp / "notes.txt", {}, RecordingError, "unknown format")
    (tmp / "bad.csv").write_text("time,emg\n0,1\n0.001,abc\n")
    cases["non-numeric"] = (tmp / "bad.csv", {}, RecordingError, "non-numeric")
    (tmp / "nofs.csv").write_text("emg\n1\n2\n")
    cases["missing rate"] = (tmp / "nofs.csv", {}, SampleRateError, "pass --fs")
    (tmp / "wrongfs.csv").write_text("time,emg\n0,1\n0.001,2\n0.002,3\n")
    cases["wrong rate"] = (tmp / "wrongfs.csv", {"fs": 500}, SampleRateError, "disagrees")
    hea = write_wfdb(tmp, "trunc", np.arange(200).reshape(100, 2), n_samples=150)
    cases["truncated wfdb"] = (hea, {"strict": True}, RecordingError, "truncated")
    digital = np.arange(400) - 200
    sig = {
        "label": "EMG",
        "dim": "uV",
        "digital": digital,
        "n": 100,
        "phys": (-1000, 1000),
        "dig": (-32768, 32767),
    }
    write_edf(tmp / "full.edf", [sig])
    full = (tmp / "full.edf").read_bytes()
    (tmp / "trunc.edf").write_bytes(full[:-50])
    cases["truncated edf"] = (tmp / "trunc.edf", {"strict": True}, RecordingError, "truncated")
    (tmp / "header.edf").write_bytes(full[:300])
    cases["truncated edf header"] = (tmp / "header.edf", {}, RecordingError, "truncated")
    from scipy.io import wavfile

    wavfile.write(tmp / "full.wav", 1000, np.arange(1000, dtype=np.int16))
    (tmp / "trunc.wav").write_bytes((tmp / "full.wav").read_bytes()[:500])
    cases["truncated wav"] = (tmp / "trunc.wav", {}, RecordingError, "truncated")
    (tmp / "myo.csv").write_text("1,2,3,4,5,6,7,8\n-1,-2,-3,-4,-5,-6,-7,-8\n")
    cases["myo without fs"] = (tmp / "myo.csv", {}, SampleRateError, "pass --fs")
    (tmp / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    cases["broken hdf5"] = (tmp / "bad.h5", {}, RecordingError, "HDF5")
    return cases


BAD_CASES = (
    "missing",
    "empty",
    "blank",
    "header only",
    "no channel",
    "garbage",
    "garbage forced",
    "unknown",
    "non-numeric",
    "missing rate",
    "wrong rate",
    "truncated wfdb",
    "truncated edf",
    "truncated edf header",
    "truncated wav",
    "myo without fs",
    "broken hdf5",
)


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_gives_one_clear_error(tmp_path: Path, case: str) -> None:
    path, kwargs, error, fragment = _bad_inputs(tmp_path)[case]
    with pytest.raises(error) as caught:
        read_recording(path, **kwargs)
    message = one_line(caught.value)
    assert fragment in message
    assert path.name in message


def test_detect_format_errors(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="not found"):
        detect_format(tmp_path / "missing.edf")
    with pytest.raises(RecordingError, match="directory"):
        detect_format(tmp_path)


# ---------------------------------------------------------------------------------------------
# OpenBCI
# ---------------------------------------------------------------------------------------------

_EXG = np.array([[61379.36, -16597.06], [60973.46, -16279.02], [61433.45, -16245.72]])


def _openbci_v6(n_ch: int, rate: int, board: str) -> str:
    cols = ["Sample Index"] + [f"EXG Channel {k}" for k in range(n_ch)]
    cols += [
        "Accel Channel 0",
        "Accel Channel 1",
        "Accel Channel 2",
        "Timestamp",
        "Marker Channel",
        "Timestamp (Formatted)",
    ]
    lines = [
        "%OpenBCI Raw EXG Data",
        f"%Number of channels = {n_ch}",
        f"%Sample Rate = {rate} Hz",
        f"%Board = OpenBCI_GUI${board}",
        ", ".join(cols),
    ]
    for i in range(3):
        exg = [f"{_EXG[i, k % 2] + k:.2f}" for k in range(n_ch)]
        lines.append(
            ", ".join(
                [
                    str(i),
                    *exg,
                    "0.040",
                    "0.420",
                    "0.238",
                    f"{1557936053329 + 4 * i}",
                    "0",
                    "12:00:53.329",
                ]
            )
        )
    return "\n".join(lines) + "\n"


def test_openbci_v6_cyton(tmp_path: Path) -> None:
    path = tmp_path / "OpenBCI-RAW-2024.txt"
    path.write_text(_openbci_v6(8, 250, "BoardCytonSerial"))
    assert detect_format(path) == "openbci"
    data, info = read_recording(path)
    assert info.fs == 250.0
    assert info.channels == tuple(f"EXG Channel {k}" for k in range(8))
    assert info.unit == "uV"
    assert info.metadata["generation"] == "v6"
    assert "Accel Channel 0" in info.metadata["other_columns"]
    assert info.start_time == datetime(2019, 5, 15, 16, 0, 53, 329000, tzinfo=UTC)
    np.testing.assert_allclose(data[:, 0], _EXG[:, 0])
    np.testing.assert_allclose(data[:, 1], _EXG[:, 1] + 1)


def test_openbci_ganglion_200hz(tmp_path: Path) -> None:
    path = tmp_path / "ganglion.txt"
    path.write_text(_openbci_v6(4, 200, "BoardGanglionBLE"))
    data, info = read_recording(path)
    assert info.fs == 200.0 and len(info.channels) == 4 and data.shape == (3, 4)
    with pytest.raises(SampleRateError, match="disagrees"):
        open_recording(path, fs=250)


def test_openbci_v5_skips_zero_row_and_legacy(tmp_path: Path) -> None:
    v5 = [
        "%OpenBCI Raw EEG Data",
        "%Number of channels = 4",
        "%Sample Rate = 200 Hz",
        "%Board = OpenBCI_GUI$BoardGanglionBLE",
        ",".join(["0.0"] * 11),
    ]
    legacy = [
        "%OpenBCI Raw EEG Data",
        "%Number of channels = 4",
        "%Sample Rate = 200.0 Hz",
        "%First Column = SampleIndex",
        "%Last Column = Timestamp",
        "%Other Columns = EEG data in microvolts followed by Accel Data (in G) "
        "interleaved with Aux Data",
    ]
    for i in range(3):
        exg = [f"{_EXG[i, 0] + k:.2f}" for k in range(4)]
        v5.append(
            ", ".join(
                [str(i), *exg, "0.0", "0.0", "0.0", f"{1557936053329 + 5 * i}", "12:00:53.329"]
            )
        )
        legacy.append(
            ", ".join(
                [str(i), *exg, "0.0", "0.0", "0.0", "12:00:53.329", f"{1557936053329 + 5 * i}"]
            )
        )
    for name, lines, generation in (("v5.txt", v5, "v5"), ("legacy.txt", legacy, "legacy")):
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        assert detect_format(path) == "openbci"
        data, info = read_recording(path)
        assert info.metadata["generation"] == generation
        assert info.fs == 200.0
        assert data.shape == (3, 4)
        np.testing.assert_allclose(data[:, 2], _EXG[:, 0] + 2)
        assert info.start_time == datetime(2019, 5, 15, 16, 0, 53, 329000, tzinfo=UTC)
        assert info.metadata["skipped_rows"] == (1 if generation == "v5" else 0)


# ---------------------------------------------------------------------------------------------
# OpenSignals
# ---------------------------------------------------------------------------------------------


def test_opensignals_txt_bitalino(tmp_path: Path) -> None:
    header = {
        "20:16:02:26:60:88": {
            "sensor": ["RAW"],
            "column": ["nSeq", "I1", "I2", "O1", "O2", "A1"],
            "channels": [1],
            "label": ["A1"],
            "resolution": [4, 1, 1, 1, 1, 10],
            "sampling rate": 1000,
            "device": "bitalino",
            "date": "2016-6-11",
            "time": "7:5:4.409",
        }
    }
    adc = np.array([505, 0, 1023, 512, 300])
    rows = "".join(f"{k % 16}\t1\t1\t1\t0\t{v}\t\n" for k, v in enumerate(adc))
    path = tmp_path / "rec.txt"
    path.write_text(
        "# OpenSignals Text File Format\n# " + json.dumps(header) + "\n# EndOfHeader\n" + rows
    )
    assert detect_format(path) == "opensignals"
    data, info = read_recording(path)
    assert info.unit == "uV" and info.channels == ("A1",) and info.fs == 1000.0
    expected = (adc / 1024 - 0.5) * 3.3 / 1009 * 1e6
    np.testing.assert_allclose(data[:, 0], expected)
    assert info.start_time == datetime(2016, 6, 11, 7, 5, 4, 409000)
    assert info.metadata["vcc_v"] == 3.3 and info.metadata["emg_gain"] == 1009


def test_opensignals_hdf5_plux_selects_emg_channel(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "plux.h5"
    adc = np.array([[32768], [0], [65535], [40000]], dtype=np.uint16)
    with h5py.File(path, "w") as f:
        g = f.create_group("00:07:80:3B:46:61")
        g.attrs.update(
            {
                "sampling rate": 1000,
                "resolution": np.array([16, 16]),
                "channels": np.array([1, 3]),
                "device": "channeller",
                "date": "2017-1-23",
                "time": "10:28:51.69",
            }
        )
        raw = g.create_group("raw")
        raw.create_dataset("channel_1", data=adc + 1).attrs.update(
            {"sensor": "ECG", "label": "CH1"}
        )
        raw.create_dataset("channel_3", data=adc).attrs.update(
            {"sensor": "EMG", "label": "PORT3_CHN1"}
        )
        raw.create_dataset("nSeq", data=np.arange(4, dtype=np.uint16)[:, None])
    assert detect_format(path) == "opensignals"
    whole = assert_chunks_equal_read(path)
    _, info = read_recording(path)
    assert info.channels == ("PORT3_CHN1",)
    assert info.metadata["channel_numbers"] == (3,)
    assert info.metadata["skipped_channels"] == ("CH1",)
    assert info.n_samples == 4
    expected = emg_transfer_uv(adc[:, 0], 16, 3.0, 1000.0)
    np.testing.assert_allclose(whole[:, 0], expected)
    np.testing.assert_allclose(expected[[0, 1]], [0.0, -1500.0])
    assert info.start_time == datetime(2017, 1, 23, 10, 28, 51, 69000)


# ---------------------------------------------------------------------------------------------
# Myo
# ---------------------------------------------------------------------------------------------


def test_myo_labels_become_annotations(tmp_path: Path) -> None:
    labels = np.array([0] * 5 + [3] * 4 + [0] * 3)
    rng = np.random.default_rng(2)
    emg = rng.integers(-128, 128, size=(labels.size, 8))
    path = tmp_path / "1.txt"
    path.write_text(
        "".join(
            ",".join(map(str, [*row, lab])) + "\n" for row, lab in zip(emg, labels, strict=True)
        )
    )
    assert detect_format(path) == "myo"
    data, info = read_recording(path, fs=200)
    np.testing.assert_array_equal(data, emg)
    assert info.unit == "counts" and info.n_samples == 12
    np.testing.assert_array_equal(info.metadata["labels"], labels)
    ann = info.annotations
    assert ann["text"].tolist() == ["label 0", "label 3", "label 0"]
    np.testing.assert_allclose(ann["onset_s"], [0.0, 0.025, 0.045])
    np.testing.assert_allclose(ann["duration_s"], [0.025, 0.02, 0.015])


def test_myo_whitespace_and_sniffing_against_csv(tmp_path: Path) -> None:
    path = tmp_path / "myo.txt"
    path.write_text("1 2 3 4 5 6 7 8\n-8 -7 -6 -5 -4 -3 -2 -1\n")
    assert detect_format(path) == "myo"
    assert read_recording(path, fs=200)[0].shape == (2, 8)
    wide = tmp_path / "wide.csv"
    wide.write_text("1,2,3,4,5,6,7,800\n1,2,3,4,5,6,7,8\n")  # out of int8 range
    assert detect_format(wide) == "csv"
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("1,2,3\n4,5,6\n")
    assert detect_format(narrow) == "csv"
    floats = tmp_path / "floats.csv"
    floats.write_text("1.5,2,3,4,5,6,7,8\n1,2,3,4,5,6,7,8\n")
    assert detect_format(floats) == "csv"


# ---------------------------------------------------------------------------------------------
# BioSPPy
# ---------------------------------------------------------------------------------------------


def test_biosppy_counts_and_declared_units(tmp_path: Path) -> None:
    path = tmp_path / "emg.txt"
    path.write_text(
        "# Simple Text Format\n# Sampling Rate (Hz):= 1000.00\n# Resolution:= 12\n"
        "# Labels:= EMG\n2055.0\n2048\n\n2040\n"
    )
    assert detect_format(path) == "biosppy"
    data, info = read_recording(path)
    assert info.unit == "counts" and info.fs == 1000.0 and info.channels == ("EMG",)
    assert info.metadata["resolution_bits"] == 12
    np.testing.assert_array_equal(data[:, 0], [2055, 2048, 2040])
    scaled = tmp_path / "mv.txt"
    scaled.write_text("# Simple Text Format\n# Sampling Rate (Hz):= 500\n# Units:= mV\n0.5\n-1\n")
    data, info = read_recording(scaled)
    assert info.unit == "uV"
    np.testing.assert_allclose(data[:, 0], [500.0, -1000.0])


# ---------------------------------------------------------------------------------------------
# WFDB
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [16, 61, 80, 160, 212, 24, 32])
def test_wfdb_formats(tmp_path: Path, fmt: int) -> None:
    top = {16: 30000, 61: 30000, 80: 120, 160: 30000, 212: 2000, 24: 8_000_000, 32: 10**9}[fmt]
    rng = np.random.default_rng(fmt)
    adu = rng.integers(-top, top, size=(101, 2))  # odd sample count: 212 packing edge
    hea = write_wfdb(tmp_path, f"r{fmt}", adu, fmt=fmt, gains=("200(10)/mV", "5/uV"))
    assert detect_format(hea) == "wfdb"
    whole = assert_chunks_equal_read(hea)
    np.testing.assert_allclose(whole[:, 0], (adu[:, 0] - 10) / 200 * 1000)
    np.testing.assert_allclose(whole[:, 1], adu[:, 1] / 5)


def test_wfdb_header_details_and_record_name(tmp_path: Path) -> None:
    adu = np.array([[-32768, 1], [100, 2], [200, 3]])
    hea = write_wfdb(
        tmp_path,
        "rec",
        adu,
        gains=("1000/V", "10/degrees"),
        fs=360,
        extra=" 10:20:30 05/06/2007",
        comments=["<age>: 44 <sex>: M", "needle EMG"],
    )
    data, info = read_recording(tmp_path / "rec")  # the record name, no extension
    assert info.path == hea
    assert info.fs == 360.0 and info.n_samples == 3
    assert info.channels == ("sig0",)
    assert info.metadata["skipped_signals"] == ("sig1",)
    assert info.metadata["comments"] == ("<age>: 44 <sex>: M", "needle EMG")
    assert info.start_time == datetime(2007, 6, 5, 10, 20, 30)
    assert np.isnan(data[0, 0])  # the invalid-sample value
    np.testing.assert_allclose(data[1:, 0], [1e5, 2e5])
    assert detect_format(tmp_path / "rec.dat") == "wfdb"


def test_wfdb_decode_212_golden() -> None:
    from emg_pipeline.sources.formats.wfdb import decode_212

    samples = np.array([0, 1, -1, 2047, -2048, 1000, -1000, 5])
    np.testing.assert_array_equal(decode_212(np.frombuffer(pack_212(samples), np.uint8)), samples)
    # hand-checked bytes: 0x123 and 0x456 -> 23 61 45 (low nibble of byte 1 = high bits of 1st)
    np.testing.assert_array_equal(
        decode_212(np.array([0x23, 0x41, 0x56], np.uint8)), [0x123, 0x456]
    )


# ---------------------------------------------------------------------------------------------
# EDF / BDF
# ---------------------------------------------------------------------------------------------


def _edf_signals(n_records: int, n: int) -> list[dict]:
    rng = np.random.default_rng(3)
    return [
        {
            "label": "EMG biceps",
            "dim": "uV",
            "digital": rng.integers(-30000, 30000, n * n_records),
            "n": n,
            "phys": (-3200, 3200),
            "dig": (-32768, 32767),
        },
        {
            "label": "EMG triceps",
            "dim": "mV",
            "digital": rng.integers(-30000, 30000, n * n_records),
            "n": n,
            "phys": (-5, 5),
            "dig": (-32768, 32767),
        },
        {
            "label": "Accel",
            "dim": "g",
            "digital": rng.integers(-100, 100, n * n_records),
            "n": n,
            "phys": (-2, 2),
            "dig": (-32768, 32767),
        },
        {
            "label": "Slow",
            "dim": "uV",
            "digital": rng.integers(-100, 100, 10 * n_records),
            "n": 10,
            "phys": (-100, 100),
            "dig": (-32768, 32767),
        },
    ]


def _physical(sig: dict) -> np.ndarray:
    (pmin, pmax), (dmin, dmax) = sig["phys"], sig["dig"]
    return pmin + (np.asarray(sig["digital"]) - dmin) * (pmax - pmin) / (dmax - dmin)


@pytest.mark.parametrize("bdf", [False, True])
def test_edf_plus_channels_units_annotations(tmp_path: Path, bdf: bool) -> None:
    signals = _edf_signals(5, 200)
    if bdf:
        for s in signals:
            s["dig"] = (-(2**23), 2**23 - 1)
            s["digital"] = s["digital"] * 100
    path = tmp_path / ("rec.bdf" if bdf else "rec.edf")
    write_edf(
        path,
        signals,
        record_duration=0.5,
        bdf=bdf,
        annotations=[(0.25, 1.5, "clench"), (1.0, None, "spasm")],
    )
    assert detect_format(path) == "edf"
    whole = assert_chunks_equal_read(path)
    _, info = read_recording(path)
    assert info.fs == 400.0
    assert info.channels == ("EMG biceps", "EMG triceps")
    assert info.unit == "uV"
    assert info.n_samples == 1000
    assert set(info.metadata["skipped_signals"]) == {"Accel", "Slow"}
    assert info.metadata["variant"] == ("BDF+C" if bdf else "EDF+C")
    assert info.start_time == datetime(2023, 2, 1, 12, 30, 5)
    np.testing.assert_allclose(whole[:, 0], _physical(signals[0]))
    np.testing.assert_allclose(whole[:, 1], _physical(signals[1]) * 1000)
    ann = info.annotations
    assert ann["text"].tolist() == ["clench", "spasm"]
    np.testing.assert_allclose(ann["onset_s"], [0.25, 1.0])
    np.testing.assert_allclose(ann["duration_s"], [1.5, np.nan])


def test_edf_plain_and_discontinuous(tmp_path: Path) -> None:
    signals = _edf_signals(3, 100)[:1]
    plain = tmp_path / "plain.edf"
    write_edf(plain, signals, plus=False)
    data, info = read_recording(plain)
    assert info.metadata["variant"] == "EDF" and info.annotations.empty
    np.testing.assert_allclose(data[:, 0], _physical(signals[0]))
    gapped = tmp_path / "gapped.edf"
    write_edf(gapped, signals, record_onsets=[0.0, 1.0, 5.0])
    _, info = read_recording(gapped)
    assert info.metadata["discontinuous"] is True
    assert info.metadata["record_onsets_s"] == (0.0, 1.0, 5.0)
    unknown = tmp_path / "unfinished.edf"
    write_edf(unknown, signals, n_records_field=-1)
    assert read_recording(unknown)[1].n_samples == 300


def test_bdf_matches_edfio_writer(tmp_path: Path) -> None:
    edfio = pytest.importorskip("edfio")
    if not hasattr(edfio, "Bdf"):
        pytest.skip("this edfio has no BDF writer")
    rng = np.random.default_rng(5)
    emg = rng.normal(0, 200, 2048)
    bdf = edfio.Bdf(
        [
            edfio.BdfSignal(
                emg,
                sampling_frequency=2048,
                label="EMG",
                physical_dimension="uV",
                physical_range=(-4000, 4000),
            )
        ],
        annotations=[edfio.EdfAnnotation(0.25, None, "cramp")],
    )
    path = tmp_path / "edfio.bdf"
    bdf.write(path)
    data, info = read_recording(path)
    assert info.fs == 2048.0 and info.metadata["variant"].startswith("BDF")
    np.testing.assert_allclose(data[:, 0], emg, atol=8000 / 2**24)
    assert info.annotations["text"].tolist() == ["cramp"]


def test_edf_matches_edfio_writer(tmp_path: Path) -> None:
    edfio = pytest.importorskip("edfio")
    rng = np.random.default_rng(4)
    emg = rng.normal(0, 200, 2000)
    edf = edfio.Edf(
        [
            edfio.EdfSignal(
                emg,
                sampling_frequency=1000,
                label="EMG",
                physical_dimension="uV",
                physical_range=(-2000, 2000),
            ),
            edfio.EdfSignal(
                emg / 1000,
                sampling_frequency=1000,
                label="EMG2",
                physical_dimension="mV",
                physical_range=(-2, 2),
            ),
        ],
        annotations=[edfio.EdfAnnotation(0.5, 0.2, "twitch")],
    )
    path = tmp_path / "edfio.edf"
    edf.write(path)
    data, info = read_recording(path)
    assert info.fs == 1000.0 and info.channels == ("EMG", "EMG2")
    np.testing.assert_allclose(data[:, 0], emg, atol=2000 / 32767)
    np.testing.assert_allclose(data[:, 1], emg, atol=2000 / 32767)
    assert info.annotations["text"].tolist() == ["twitch"]
    np.testing.assert_allclose(info.annotations["onset_s"], [0.5])


# ---------------------------------------------------------------------------------------------
# WAV
# ---------------------------------------------------------------------------------------------


def test_wav_int_and_float(tmp_path: Path) -> None:
    from scipy.io import wavfile

    stereo = np.array([[1, -2], [3, -4], [32767, -32768]], dtype=np.int16)
    path = tmp_path / "rec.wav"
    wavfile.write(path, 2000, stereo)
    assert detect_format(path) == "wav"
    data, info = read_recording(path)
    assert info.fs == 2000.0 and info.channels == ("ch1", "ch2") and info.unit == "counts"
    np.testing.assert_array_equal(data, stereo)
    mono = tmp_path / "float.wav"
    wavfile.write(mono, 1000, np.array([0.5, -0.25], dtype=np.float32))
    np.testing.assert_array_equal(read_recording(mono)[0], [[0.5], [-0.25]])


def test_wav_24bit_falls_back_to_plain_read(tmp_path: Path) -> None:
    values = np.array([1, -1, 2**23 - 1, -(2**23), 12345], dtype=np.int64)
    u = values & 0xFFFFFF
    pcm = np.column_stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF]).astype(np.uint8).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 1000, 3000, 3, 24)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(pcm)) + pcm + b"\x00"
    path = tmp_path / "24.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    data, info = read_recording(path)
    assert info.metadata["memory_mapped"] is False
    assert info.metadata["bytes_per_sample"] == 3
    np.testing.assert_array_equal(data[:, 0], values)


# ---------------------------------------------------------------------------------------------
# the real recordings in ../shared/data
# ---------------------------------------------------------------------------------------------


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


REAL_FILES = [
    ("biosppy-examples/emg.txt", "biosppy", {}),
    ("biosppy-examples/emg_1.txt", "biosppy", {}),
    ("bitalino-opensignals/SampleEMG.txt", "opensignals", {}),
    ("bitalino-opensignals/SampleEMG.h5", "opensignals", {}),
    ("libemg-myo-test/emg_data_myo.csv", "myo", {"fs": 200}),
    *[(f"myo-armband-labelled/right_hand_12345-1/{k}.txt", "myo", {"fs": 200}) for k in range(8)],
    ("openbci-gui-samples/OpenBCI_GUI-v6-blinks-jawClench-alpha.txt", "openbci", {}),
    ("openbci-gui-samples/OpenBCI_GUI-v5-blinks-jawClench-alpha.first10s.txt", "openbci", {}),
    ("openbci-gui-samples/OpenBCI-sampleData-1-blinks-jawClench-alpha.first10s.txt", "openbci", {}),
    ("physionet-emgdb/emg_healthy.hea", "wfdb", {}),
    ("physionet-emgdb/emg_myopathy.hea", "wfdb", {}),
    ("physionet-emgdb/emg_neuropathy.dat", "wfdb", {}),
    ("plux-biosignalsnotebooks/emg_bursts.h5", "opensignals", {}),
    ("plux-biosignalsnotebooks/emg_1000_hz_16_bits_solo.h5", "opensignals", {}),
]


@pytest.mark.parametrize(("name", "fmt", "kwargs"), REAL_FILES, ids=[r[0] for r in REAL_FILES])
def test_real_file_detected_and_chunk_invariant(name: str, fmt: str, kwargs: dict) -> None:
    path = shared(*name.split("/"))
    assert detect_format(path) == fmt
    whole = assert_chunks_equal_read(path, (1000, 4099, 10_000_000), **kwargs)
    assert whole.shape[0] > 0 and not np.isnan(whole).any()


def test_real_biosppy() -> None:
    for name, n, lo, hi in (("emg.txt", 100_000, 2037, 2071), ("emg_1.txt", 63_880, 1412, 2443)):
        data, info = read_recording(shared("biosppy-examples", name))
        assert info.fs == 1000.0 and info.channels == ("EMG",) and info.unit == "counts"
        assert data.shape == (n, 1)
        assert info.n_samples / info.fs == pytest.approx(n / 1000)
        assert (data.min(), data.max()) == (lo, hi)
        assert info.metadata["resolution_bits"] == 12


def test_real_bitalino_txt_equals_hdf5_and_scale() -> None:
    txt, info_txt = read_recording(shared("bitalino-opensignals", "SampleEMG.txt"))
    h5, info_h5 = read_recording(shared("bitalino-opensignals", "SampleEMG.h5"))
    np.testing.assert_array_equal(txt, h5)
    for info in (info_txt, info_h5):
        assert info.fs == 1000.0 and info.channels == ("A1",) and info.unit == "uV"
        assert info.n_samples == 24_150
        assert info.start_time == datetime(2016, 6, 11, 7, 5, 4, 409000)
        assert info.metadata["resolution_bits"] == (10,)
    mv = txt[:, 0] / 1000
    assert mv.min() == pytest.approx(-0.97, abs=0.006)
    assert mv.max() == pytest.approx(1.24, abs=0.006)
    assert txt[0, 0] == pytest.approx((505 / 1024 - 0.5) * 3.3 / 1009 * 1e6)


def test_real_plux_hdf5() -> None:
    cases = (
        ("emg_bursts.h5", 28_519, 28.5, "PORT3_CHN1", 3, -0.91, 0.48),
        ("emg_1000_hz_16_bits_solo.h5", 87_600, 87.6, "PORT1_CHN1", 1, -1.50, 1.47),
    )
    for name, n, seconds, label, number, lo, hi in cases:
        data, info = read_recording(shared("plux-biosignalsnotebooks", name))
        assert info.duration_s == pytest.approx(seconds, abs=0.05)
        assert info.fs == 1000.0 and info.channels == (label,) and info.unit == "uV"
        assert info.metadata["channel_numbers"] == (number,)
        assert info.metadata["resolution_bits"] == (16,)
        assert data.shape == (n, 1) and info.n_samples == n
        mv = data[:, 0] / 1000
        assert mv.min() == pytest.approx(lo, abs=0.006)
        assert mv.max() == pytest.approx(hi, abs=0.006)
        assert np.abs(mv).max() < 1.5  # inside the ±1.5 mV full scale


def test_real_libemg_myo() -> None:
    data, info = read_recording(shared("libemg-myo-test", "emg_data_myo.csv"), fs=200)
    assert data.shape == (500, 8) and info.n_samples == 500
    assert info.duration_s == pytest.approx(2.5)
    assert info.fs == 200.0 and info.unit == "counts"
    assert np.array_equal(data, np.round(data))
    assert (data.min(), data.max()) == (-126, 101)
    assert (data[:, 0].min(), data[:, 0].max()) == (-35, 43)


def test_real_myo_labelled() -> None:
    folder = shared("myo-armband-labelled", "right_hand_12345-1")
    for k in range(8):
        data, info = read_recording(folder / f"{k}.txt", fs=200)
        assert data.shape[1] == 8 and 11_925 <= data.shape[0] <= 11_940
        assert 59.6 <= info.n_samples / info.fs <= 59.7
        labels = info.metadata["labels"]
        assert set(np.unique(labels)) == ({0} if k == 0 else {0, k})
        if k == 0:
            assert len(info.annotations) == 1
            assert (data.min(), data.max()) == (-87, 63)
        else:
            assert data.min() >= -128 and data.max() <= 127
    data, info = read_recording(folder / "1.txt", fs=200)
    ann = info.annotations
    assert len(ann) == 12  # 11 label transitions
    assert ann["onset_s"].iloc[1] == pytest.approx(4.995)
    assert ann["text"].iloc[1] == "label 1"
    assert ann["duration_s"].sum() == pytest.approx(info.n_samples / 200)


def test_real_openbci_three_generations() -> None:
    folder = shared("openbci-gui-samples")
    v6, i6 = read_recording(folder / "OpenBCI_GUI-v6-blinks-jawClench-alpha.txt")
    v5, i5 = read_recording(folder / "OpenBCI_GUI-v5-blinks-jawClench-alpha.first10s.txt")
    old, iold = read_recording(folder / "OpenBCI-sampleData-1-blinks-jawClench-alpha.first10s.txt")
    assert v6.shape == (22_490, 8) and i6.n_samples / i6.fs == pytest.approx(89.96)
    assert v5.shape == old.shape == (2500, 8)
    for info, generation in ((i6, "v6"), (i5, "v5"), (iold, "legacy")):
        assert info.fs == 250.0 and info.unit == "uV" and len(info.channels) == 8
        assert info.metadata["generation"] == generation
        assert info.start_time == datetime(2019, 5, 15, 16, 0, 53, 329000, tzinfo=UTC)
    # the same recording in three generations
    np.testing.assert_array_equal(v5, v6[:2500])
    np.testing.assert_array_equal(old, v6[:2500])
    np.testing.assert_allclose(
        v6[0], [61379.36, 49492.89, -16597.06, -21309.75, 6703.91, -3284.86, 7223.10, 1740.11]
    )


def test_real_physionet_wfdb() -> None:
    cases = (
        ("emg_healthy", 50_860, 12.7, -0.52, 1.11),
        ("emg_myopathy", 110_337, 27.6, -0.67, 0.78),
        ("emg_neuropathy", 147_858, 37.0, -3.28, 3.28),
    )
    for name, n, seconds, lo, hi in cases:
        data, info = read_recording(shared("physionet-emgdb", f"{name}.hea"))
        assert info.fs == 4000.0 and info.channels == ("EMG",) and info.unit == "uV"
        assert data.shape == (n, 1) and info.n_samples == n
        assert info.duration_s == pytest.approx(seconds, abs=0.05)
        assert info.metadata["gain_adu_per_unit"] == (10000.0,)
        assert any("tibialis anterior" in c for c in info.metadata["comments"])
        mv = data[:, 0] / 1000
        assert mv.min() == pytest.approx(lo, abs=0.006)
        assert mv.max() == pytest.approx(hi, abs=0.006)
    raw = np.fromfile(shared("physionet-emgdb", "emg_healthy.dat"), dtype="<i2")
    data, _ = read_recording(shared("physionet-emgdb", "emg_healthy.hea"))
    np.testing.assert_allclose(data[:, 0], raw / 10000 * 1000)


def test_real_saturation_figures() -> None:
    # physionet-emgdb SOURCE.txt: the neuropathy record reaches the int16 ADC limits
    # (±3.28 mV at 10000 adu/mV; the raw extremes are -32767 and +32753 adu)
    data, _ = read_recording(shared("physionet-emgdb", "emg_neuropathy.hea"))
    limit_uv = 32768 / 10000 * 1000
    assert data.max() >= 0.99 * limit_uv and data.min() <= -0.99 * limit_uv
    # myo-armband-labelled SOURCE.txt: files 1-7 reach the int8 limits in up to 0.07 % of samples
    folder = shared("myo-armband-labelled", "right_hand_12345-1")
    for k in range(1, 8):
        counts, _ = read_recording(folder / f"{k}.txt", fs=200)
        saturated = np.mean((counts == -128) | (counts == 127))
        assert saturated <= 0.0007
    # plux solo SOURCE.txt: close to the ±1.5 mV full scale, no sample at the ADC limits
    data, _ = read_recording(shared("plux-biosignalsnotebooks", "emg_1000_hz_16_bits_solo.h5"))
    full_scale_uv = 1500.0
    assert np.abs(data).max() < full_scale_uv * (1 - 2.0**-16)
