"""Start times in the readers that can state one: CSV/TSV, WAV (bext, LIST/INFO) and BioSPPy.

Every file is written here; each is also read without its dating to check that
the samples do not change with it.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from emg_pipeline.cli import main
from emg_pipeline.errors import RecordingError
from emg_pipeline.sinks.episodes import read_episodes
from emg_pipeline.sources.formats import read_recording

PARIS = ZoneInfo("Europe/Paris")

# -- CSV ---------------------------------------------------------------------------------------


def _rows(values: np.ndarray, times: list[str]) -> str:
    return "".join(f"{t},{v:.3f}\n" for t, v in zip(times, values, strict=True))


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("# start_time: 2026-11-27T08:00:00+01:00",
         datetime(2026, 11, 27, 8, tzinfo=timezone(timedelta(hours=1)))),
        ("# Start Time = 2026-11-27 08:00:00.250", datetime(2026, 11, 27, 8, 0, 0, 250000)),
        ("#recorded:= 2026-11-27T07:00:00Z", datetime(2026, 11, 27, 7, tzinfo=UTC)),
    ],
)
def test_csv_start_time_from_a_comment_line(tmp_path: Path, comment: str, expected) -> None:
    values = np.arange(50) * 0.5
    body = "time,emg\n" + _rows(values, [f"{k / 1000:.3f}" for k in range(50)])
    plain, dated = tmp_path / "plain.csv", tmp_path / "dated.csv"
    plain.write_text(body)
    dated.write_text(f"# session 4, calf\n{comment}\n" + body)
    x0, info0 = read_recording(plain)
    x1, info1 = read_recording(dated)
    assert info0.start_time is None
    assert info1.start_time == expected and info1.fs == 1000.0
    assert info1.start_time.tzinfo == expected.tzinfo or info1.start_time.utcoffset() == \
        expected.utcoffset()
    np.testing.assert_array_equal(x0, x1)


def test_csv_iso_time_column_across_a_daylight_saving_change(tmp_path: Path) -> None:
    # Paris moved from +01:00 to +02:00 at 01:00 UTC on 2026-03-29; 1 kHz across it
    first = datetime(2026, 3, 29, 0, 59, 59, 900000, tzinfo=UTC)
    n = 400
    stamps = [(first + timedelta(milliseconds=k)).astimezone(PARIS).isoformat(
        timespec="milliseconds") for k in range(n)]
    assert stamps[0].endswith("+01:00") and stamps[-1].endswith("+02:00")
    values = np.sin(np.arange(n) / 7.0)
    path = tmp_path / "clock.csv"
    path.write_text("timestamp,calf (uV)\n" + _rows(values, stamps))
    x, info = read_recording(path)
    assert info.fs == 1000.0 and info.channels == ("calf",) and info.unit == "uV"
    assert info.start_time == first and info.start_time.utcoffset() == timedelta(hours=1)
    assert info.metadata["time_column_format"] == "iso8601"
    np.testing.assert_allclose(x[:, 0], np.round(values, 3))


def test_csv_naive_iso_time_column_and_semicolons(tmp_path: Path) -> None:
    stamps = [f"2026-11-27 08:00:00.{4 * k:03d}" for k in range(100)]
    path = tmp_path / "naive.csv"
    path.write_text("time;a;b\n" + "".join(f"{t};{k};{-k}\n" for k, t in enumerate(stamps)))
    x, info = read_recording(path)
    assert info.fs == 250.0 and info.start_time == datetime(2026, 11, 27, 8)
    assert info.start_time.tzinfo is None
    np.testing.assert_array_equal(x, np.c_[np.arange(100), -np.arange(100)])


def test_csv_iso_time_column_wins_over_the_comment(tmp_path: Path) -> None:
    path = tmp_path / "both.csv"
    path.write_text("# start_time: 2020-01-01T00:00:00+00:00\ntime,emg\n"
                    "2026-11-27T08:00:00.000+01:00,1\n2026-11-27T08:00:00.001+01:00,2\n")
    _, info = read_recording(path)
    assert info.start_time == datetime(2026, 11, 27, 7, tzinfo=UTC)
    assert info.metadata["start_time_comment"] == "2020-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# start_time: tomorrow morning\ntime,emg\n0,1\n0.001,2\n", "not an ISO-8601"),
        ("# start: 2026-11-27\ntime,emg\n0,1\n0.001,2\n", "not an ISO-8601"),
        ("time,emg\n2026-11-27T08:00:00,1\n2026-11-27T08:00:00.001,2\nlater,3\n",
         "'later' in column 'time' at data row 3"),
        ("time,emg\n2026-11-27T08:00:00,1\n2026-11-27T08:00:00.001+01:00,2\n", "mixes"),
    ],
)
def test_csv_bad_start_times_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(RecordingError, match=message) as info:
        read_recording(path)
    assert "\n" not in str(info.value)


def test_detect_dates_the_episodes_of_an_iso_timed_csv(tmp_path: Path) -> None:
    from emg_pipeline import simulate

    rec = simulate(np.random.default_rng(5), fs=1000.0, duration_s=15.0, n_channels=1)
    start = datetime(2026, 11, 27, 22, 0, tzinfo=timezone(timedelta(hours=1)))
    frame = pd.DataFrame({"calf (uV)": np.round(rec.signal[:, 0], 3)})
    frame.insert(0, "time", [(start + timedelta(milliseconds=k)).isoformat(
        timespec="milliseconds") for k in range(len(frame))])
    path, out = tmp_path / "night.csv", tmp_path / "night.episodes.csv"
    frame.to_csv(path, index=False)
    assert main(["detect", str(path), "--out", str(out), "-q"]) == 0
    table = read_episodes(out)
    assert len(table) > 0 and set(table["site"]) == {"calf"}
    for onset_s, onset_time in zip(table["onset_s"], table["onset_time"], strict=True):
        assert abs(onset_time - (start + timedelta(seconds=onset_s))) < timedelta(milliseconds=1)


# -- WAV ---------------------------------------------------------------------------------------


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def _bext(date: str, clock: str, reference: int = 0) -> bytes:
    body = bytes(256 + 32 + 32) + date.encode().ljust(10, b"\0") + clock.encode().ljust(8, b"\0")
    body += struct.pack("<II", reference & 0xFFFFFFFF, reference >> 32) + struct.pack("<H", 1)
    return _chunk(b"bext", body + bytes(64 + 190))


def _info(**entries: str) -> bytes:
    body = b"INFO" + b"".join(_chunk(k.encode(), v.encode() + b"\0") for k, v in entries.items())
    return _chunk(b"LIST", body)


def _wav(samples: np.ndarray, fs: int, before: bytes = b"", after: bytes = b"") -> bytes:
    fmt = _chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, fs, 2 * fs, 2, 16))
    body = b"WAVE" + fmt + before + _chunk(b"data", samples.astype("<i2").tobytes()) + after
    return b"RIFF" + struct.pack("<I", len(body)) + body


SAMPLES = (np.arange(2001) % 97 - 48).astype(np.int16)  # odd length: a padded data chunk


@pytest.mark.parametrize(
    ("before", "after", "expected", "source"),
    [
        (_bext("2026-11-27", "08:15:30", 8 * 3600 * 1000), b"",
         datetime(2026, 11, 27, 8, 15, 30), "bext"),
        (_bext("2026:11:27", "08.15.30"), _info(ICRD="2020-01-01T00:00:00"),
         datetime(2026, 11, 27, 8, 15, 30), "bext"),
        (b"", _info(INAM="calf", ICRD="2026-11-27T08:15:30"),
         datetime(2026, 11, 27, 8, 15, 30), "ICRD"),
        (_bext("", ""), _info(ICRD="2026-11-27 08:15:30"), datetime(2026, 11, 27, 8, 15, 30),
         "ICRD"),
        (_bext("2026-13-45", "25:00:00"), b"", None, None),
        (b"", _info(ICRD="2026-11-27"), None, None),
    ],
    ids=["bext", "bext-separators", "icrd-after-data", "blank-bext", "bad-bext", "date-only"],
)
def test_wav_start_time(tmp_path: Path, before: bytes, after: bytes, expected, source) -> None:
    plain, dated = tmp_path / "plain.wav", tmp_path / "dated.wav"
    plain.write_bytes(_wav(SAMPLES, 1000))
    dated.write_bytes(_wav(SAMPLES, 1000, before, after))
    x0, info0 = read_recording(plain)
    x1, info1 = read_recording(dated)
    assert info0.start_time is None and info1.format == "wav"
    assert info1.start_time == expected
    assert info1.metadata.get("start_time_from") == source
    np.testing.assert_array_equal(x0, x1)
    np.testing.assert_array_equal(x1[:, 0], SAMPLES)


def test_wav_metadata_keeps_what_it_could_not_use(tmp_path: Path) -> None:
    path = tmp_path / "kept.wav"
    path.write_bytes(_wav(SAMPLES, 1000, _bext("2026-11-27", "08:15:30", 2**33 + 5),
                          _info(ICRD="2026-11-27")))
    _, info = read_recording(path)
    assert info.metadata["bext_origination"] == "2026-11-27 08:15:30"
    assert info.metadata["bext_time_reference"] == 2**33 + 5
    assert info.metadata["creation_date"] == "2026-11-27"


def test_wav_chunk_walk_survives_a_chunk_running_past_the_end(tmp_path: Path) -> None:
    data = _wav(SAMPLES, 1000, after=b"LIST" + struct.pack("<I", 10**6) + b"INFO")
    path = tmp_path / "cut.wav"
    path.write_bytes(data)
    x, info = read_recording(path)
    assert info.start_time is None
    np.testing.assert_array_equal(x[:, 0], SAMPLES)


# -- BioSPPy -----------------------------------------------------------------------------------

BIOSPPY = "# Simple Text Format\n# Sampling Rate (Hz):= 1000.00\n# Resolution:= 12\n{extra}" \
          "# Labels:= EMG\n" + "".join(f"{2048 + k % 9}\n" for k in range(300))


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("# Date:= 2017-03-14T10:21:05.000123\n", datetime(2017, 3, 14, 10, 21, 5, 123)),
        ("# Start Time:= 2017-03-14T10:21:05+00:00\n", datetime(2017, 3, 14, 10, 21, 5,
                                                                tzinfo=UTC)),
        ('# {"date": "2017-03-14 10:21:05"}\n', datetime(2017, 3, 14, 10, 21, 5)),
        ("# Date:= 2017-03-14\n", None),
        ("# Date:= unknown\n", None),
        ("", None),
    ],
)
def test_biosppy_start_time(tmp_path: Path, extra: str, expected) -> None:
    plain, dated = tmp_path / "plain.txt", tmp_path / "dated.txt"
    plain.write_text(BIOSPPY.format(extra=""))
    dated.write_text(BIOSPPY.format(extra=extra))
    x0, _ = read_recording(plain)
    x1, info = read_recording(dated)
    assert info.format == "biosppy" and info.start_time == expected
    np.testing.assert_array_equal(x0, x1)


def test_biosppy_bad_start_entry_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(BIOSPPY.format(extra="# Start Time:= soon\n"))
    with pytest.raises(RecordingError, match="not an ISO-8601 date and time"):
        read_recording(path)


# -- session files and --timezone --------------------------------------------------------------

NEW_YORK = ZoneInfo("America/New_York")


def _session(tmp_path: Path, start: str | None, zone: str = "Europe/Paris") -> Path:
    path = tmp_path / "session.toml"
    path.write_text((f'start_time = "{start}"\n' if start else "") + f'timezone = "{zone}"\n')
    return path


def test_a_session_start_time_without_offset_is_in_the_session_zone(tmp_path: Path) -> None:
    from emg_pipeline.sites import load_session, resolve_sites

    session = load_session(_session(tmp_path, "2026-11-27T23:30:00"))
    assert session.start_time == datetime(2026, 11, 27, 23, 30, tzinfo=PARIS)
    shown = resolve_sites(["calf"], session=session, timezone=NEW_YORK).local_start()
    assert shown.isoformat() == "2026-11-27T17:30:00-05:00"   # the same instant, re-expressed


def test_a_naive_recording_start_is_read_in_the_session_zone(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from emg_pipeline.sites import load_session, resolve_sites

    session = load_session(_session(tmp_path, None))
    info = SimpleNamespace(start_time=datetime(2026, 11, 27, 23, 30), metadata={})
    shown = resolve_sites(["calf"], session=session, info=info, timezone=NEW_YORK).local_start()
    assert shown.isoformat() == "2026-11-27T17:30:00-05:00"
    alone = resolve_sites(["calf"], info=info, timezone=NEW_YORK).local_start()
    assert alone.isoformat() == "2026-11-27T23:30:00-05:00"   # no session zone: read in TZ


def test_detect_timezone_re_expresses_the_session_start(tmp_path: Path) -> None:
    from emg_pipeline import simulate

    rec = simulate(np.random.default_rng(5), fs=1000.0, duration_s=15.0, n_channels=1)
    path = tmp_path / "night.csv"
    pd.DataFrame({"time_s": np.arange(len(rec.signal)) / 1000.0,
                  "calf (uV)": np.round(rec.signal[:, 0], 3)}).to_csv(path, index=False)
    session = _session(tmp_path, "2026-11-27T23:30:00")
    start = datetime(2026, 11, 27, 23, 30, tzinfo=PARIS)
    for zone, offset in (("America/New_York", -5), (None, 1)):
        out = tmp_path / f"episodes-{offset}.csv"
        argv = ["detect", str(path), "--session", str(session), "--out", str(out), "-q"]
        assert main(argv + (["--timezone", zone] if zone else [])) == 0
        table = read_episodes(out)
        assert len(table) > 0
        for onset_s, onset_time in zip(table["onset_s"], table["onset_time"], strict=True):
            assert abs(onset_time - (start + timedelta(seconds=onset_s))) < \
                timedelta(milliseconds=1)
            assert onset_time.utcoffset() == timedelta(hours=offset)
