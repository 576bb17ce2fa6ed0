"""Replay: the replay source, the live console view and the ``replay`` command.

The source is checked against the reader it wraps (same samples, contiguous
sample clock), its pacing against a fake clock (no wall-clock assertion), its
asynchronous protocol against the synchronous one; the command against
``detect`` (one path: the same episodes), the demo's ground truth, and every
bad input (one error line, exit status 2).
"""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import io
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emg_pipeline import (
    Chunk,
    ChunkFlags,
    ConfigError,
    LiveEvent,
    Pipeline,
    RunSummary,
    StreamInfo,
    run,
    simulate,
)
from emg_pipeline.cli import demo_recording, main
from emg_pipeline.commands._common import DEMO_DIR
from emg_pipeline.commands.replay import ProgressBar
from emg_pipeline.metrics import score
from emg_pipeline.sinks import format_event, format_stream_time, open_live_view
from emg_pipeline.sinks.episodes import EPISODE_FILE_COLUMNS, read_episodes
from emg_pipeline.sources.formats import RecordingReader, read_recording
from emg_pipeline.sources.replay import ReplaySource

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: columns of an episode file written without a known start time
UNTIMED_COLUMNS = [c for c in EPISODE_FILE_COLUMNS if c != "onset_time"]


class FakeClock:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def write_csv(path: Path, x: np.ndarray, fs: float, names: tuple[str, ...]) -> Path:
    t = np.arange(x.shape[0]) / fs
    frame = pd.DataFrame(x, columns=[f"{n} (uV)" for n in names])
    frame.insert(0, "time_s", t)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def small_csv(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, np.ndarray]:
    x = np.round(rng.normal(0.0, 20.0, (2345, 2)), 3)
    x[100:110, 1] = np.nan
    return write_csv(tmp_path / "small.csv", x, 1000.0, ("calf", "thigh")), x


# ---------------------------------------------------------------------------------------------
# the source
# ---------------------------------------------------------------------------------------------


def test_fast_replay_yields_the_recording_on_a_contiguous_clock(small_csv) -> None:
    path, x = small_csv
    with ReplaySource(path, speed=None, chunk_s=0.1) as source:
        assert source.fs == 1000.0 and source.channels == ("calf", "thigh")
        assert source.unit == "uV"
        chunks = list(source)
    assert all(isinstance(c, Chunk) for c in chunks)
    assert [c.first_index for c in chunks] == list(range(0, 2345, 100))
    assert all(c.fs == 1000.0 and c.channels == ("calf", "thigh") for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), x)
    flagged = [c.first_index for c in chunks if c.flags & ChunkFlags.NAN_BRIDGED]
    assert flagged == [100]
    assert source.position_s == pytest.approx(2.345)


def test_real_time_pacing_follows_the_sample_clock(small_csv) -> None:
    path, _ = small_csv
    clock = FakeClock()
    start = clock.now
    released = []
    with ReplaySource(path, speed=2.0, chunk_s=0.5, clock=clock, sleep=clock.sleep) as source:
        for chunk in source:
            released.append((clock.now - start, chunk.first_index + chunk.n_samples))
    # each chunk is released when the wall clock reaches (end of chunk) / speed
    for elapsed, end in released:
        assert elapsed == pytest.approx(end / 1000.0 / 2.0)
    assert sum(clock.sleeps) == pytest.approx(2.345 / 2.0)


def test_pacing_does_not_accumulate_drift_when_the_consumer_is_slow(small_csv) -> None:
    path, _ = small_csv
    clock = FakeClock()
    with ReplaySource(path, speed=1.0, chunk_s=0.5, clock=clock, sleep=clock.sleep) as source:
        for k, _chunk in enumerate(source):
            if k == 0:
                clock.now += 1.2  # a slow consumer: the next chunks are already due
    assert sum(clock.sleeps) == pytest.approx(2.345 - 1.2)


def test_async_protocol_gives_the_same_chunks(small_csv) -> None:
    path, x = small_csv
    clock = FakeClock()

    async def collect() -> list[Chunk]:
        out = []
        async with ReplaySource(
            path, speed=1.0, chunk_s=0.02, clock=clock, async_sleep=clock.async_sleep
        ) as source:
            async for chunk in source:
                out.append(chunk)
        return out

    chunks = asyncio.run(collect())
    assert [c.first_index for c in chunks] == list(range(0, 2345, 20))
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), x)
    assert sum(clock.sleeps) == pytest.approx(2.345)


def test_source_settings_and_lifetime(small_csv) -> None:
    path, _ = small_csv
    for bad in (0, -1.0, float("nan"), "fast"):
        with pytest.raises(ConfigError, match="speed"):
            ReplaySource(path, speed=bad)
    with pytest.raises(ConfigError, match="chunk_s"):
        ReplaySource(path, chunk_s=0.0)
    source = ReplaySource(path, speed=None)
    assert "fast" in repr(source)
    list(source)
    with pytest.raises(RuntimeError, match="once"):
        list(source)
    source.close()
    source.close()
    with pytest.raises(RuntimeError, match="closed"):
        list(source)


def test_pipeline_fed_by_replay_equals_pipeline_fed_whole(small_csv) -> None:
    path, _ = small_csv
    data, info = read_recording(path)
    whole = Pipeline(info.fs, info.channels, unit=info.unit)
    whole.process(data)
    whole.flush()
    streamed = Pipeline(info.fs, info.channels, unit=info.unit)
    with ReplaySource(path, speed=None, chunk_s=0.037) as source:
        for chunk in source:
            streamed.process(chunk)
    streamed.flush()
    pd.testing.assert_frame_equal(whole.episodes_frame(), streamed.episodes_frame())
    assert streamed.lost_samples == 0
    np.testing.assert_array_equal(streamed.bridged_samples, [0, 10])


# ---------------------------------------------------------------------------------------------
# the console view
# ---------------------------------------------------------------------------------------------


def test_event_lines() -> None:
    assert format_stream_time(0.0) == "0:00.000"
    assert format_stream_time(59.9996) == "1:00.000"
    assert format_stream_time(86400.0) == "24:00:00.000"
    line = format_event(LiveEvent("sustained", "calf", 12.5, 10.0), channel_width=6)
    assert line == "0:12.500  calf    SPASM  prolonged spasm: contracted for 2.5 s (since 0:10.000)"


def test_live_view_prints_every_event_and_a_summary(rng: np.random.Generator) -> None:
    from emg_pipeline import simulate

    rec = simulate(rng, fs=1000.0, duration_s=40.0, n_channels=2)
    pipe = Pipeline(rec.fs, rec.channels, unit="uV")
    out = io.StringIO()
    view = open_live_view(out, title="sim")
    events = []
    summary = run(np.array_split(rec.signal, 400), pipe, [view],
                  on_result=lambda r: events.extend(r.events))
    view.close(summary)  # idempotent
    result = pipe.flush()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("sim: 2 channels at 1000 Hz")
    body = lines[1 : 1 + len(events)]
    assert body == [format_event(e, max(len(c) for c in rec.channels)) for e in events]
    ends = [line for line in body if "  end  " in line]
    assert len(ends) == len(pipe.episodes)
    assert sum("  SPASM  " in line for line in body) == sum(e.kind == "sustained" for e in events)
    summary = "\n".join(lines[1 + len(events) :])
    assert summary.count("summary of sim") == 1
    n_twitch = sum(e.label == "twitch" for e in pipe.episodes)
    assert f"total: {n_twitch} twitches, {len(pipe.episodes) - n_twitch} spasms" in summary
    for name in rec.channels:
        assert name in summary
    with pytest.raises(RuntimeError, match="closed"):
        view.update(result)


def test_live_view_can_hide_onsets() -> None:
    pipe = Pipeline(1000.0, ("a",), unit="uV")
    out = io.StringIO()
    view = open_live_view(out, show_onsets=False)
    from emg_pipeline.pipeline import ChunkResult

    empty = np.empty((0, 1))
    view.open(StreamInfo.of(pipe))
    view.update(ChunkResult(empty, 0, 0.005, empty.astype(bool), (LiveEvent("onset", "a", 1, 1),)))
    view.close(RunSummary.of(pipe, StreamInfo.of(pipe)))
    assert "onset" not in out.getvalue()


def test_progress_bar_draws_in_place() -> None:
    clock = FakeClock()
    out = io.StringIO()
    bar = ProgressBar(out, 100.0, clock=clock)
    clock.now += 1.0
    bar.show(50.0)
    bar.show(60.0)  # within 0.1 s: not redrawn
    clock.now += 1.0
    bar.show(100.0)
    bar.clear()
    text = out.getvalue()
    assert text.count("\r[") == 2 and " 50.0%" in text and "100.0%" in text
    assert text.endswith("\r\x1b[K")


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_replay_equals_detect(tmp_path: Path, capsys, small_csv) -> None:
    path, _ = small_csv
    status, _, _ = run_cli(capsys, "detect", str(path), "--out", str(tmp_path / "d.csv"))
    assert status == 0
    status, out, err = run_cli(
        capsys, "replay", str(path), "--fast", "--out", str(tmp_path / "r.csv")
    )
    assert status == 0
    assert "summary of small.csv" in out and "wrote" in err
    detected = pd.read_csv(tmp_path / "d.csv")
    replayed = pd.read_csv(tmp_path / "r.csv")
    # the episode file: no start time in the file, so no onset_time column
    assert list(replayed.columns) == UNTIMED_COLUMNS
    assert set(replayed["site"]) <= {"calf", "thigh"}  # sites from the channel names
    pd.testing.assert_frame_equal(detected, replayed)


def test_replay_and_detect_write_the_same_episode_file(tmp_path: Path, capsys) -> None:
    rec = simulate(np.random.default_rng(3), fs=1000.0, duration_s=20.0, n_channels=2)
    path = write_csv(tmp_path / "active.csv", np.round(rec.signal, 3), rec.fs, ("calf", "thigh"))
    session = tmp_path / "session.toml"
    session.write_text('start_time = "2026-11-27T23:59:58+01:00"\n[sites]\nthigh = "neck"\n')
    options = ["--session", str(session), "--site", "calf=foot", "--timezone", "UTC", "-q"]
    assert main(["detect", str(path), "--out", str(tmp_path / "d.csv"), *options]) == 0
    assert main(["replay", str(path), "--fast", "--out", str(tmp_path / "r.csv"), *options]) == 0
    capsys.readouterr()
    detected = (tmp_path / "d.csv").read_text()
    assert detected == (tmp_path / "r.csv").read_text()
    table = read_episodes(tmp_path / "r.csv")
    assert len(table) > 0 and set(table["site"]) <= {"foot", "neck"}
    assert detected.splitlines()[0] == ",".join(EPISODE_FILE_COLUMNS)
    first = table.iloc[0]
    expected = datetime(2026, 11, 27, 22, 59, 58, tzinfo=UTC) + timedelta(
        seconds=float(first["onset_s"]))
    assert abs(first["onset_time"] - expected) < timedelta(milliseconds=1)
    assert first["onset_time"].utcoffset() == timedelta(0)  # --timezone UTC
    # a site option naming a channel the recording lacks: one error line, before replaying
    assert main(["replay", str(path), "--fast", "--site", "ch9=calf"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ch9" in err


def test_a_read_error_ends_replay_and_detect_alike(tmp_path: Path, capsys) -> None:
    # a contraction runs over a bad cell at data row 20001: everything before is processed,
    # the open episode is written truncated, and the command says why it stopped
    x = np.random.default_rng(0).normal(0, 3.0, (30_000, 1))
    x[17_000:, 0] += np.random.default_rng(1).normal(0, 80.0, 13_000)
    path = write_csv(tmp_path / "late.csv", np.round(x, 3), 1000.0, ("calf",))
    lines = path.read_text().splitlines(keepends=True)
    lines[20_001] = "20.0,x5o5\n"
    path.write_text("".join(lines))
    outs = {}
    for command, extra in (("replay", ["--fast"]), ("detect", [])):
        outs[command] = tmp_path / f"{command}.csv"
        status, out, err = run_cli(capsys, command, str(path), *extra,
                                   "--out", str(outs[command]))
        assert status == 2
        assert err.splitlines()[-1] == (f"emg-pipeline: error: {path}: non-numeric value "
                                        "'x5o5' in column 'calf (uV)' at data row 20001")
        assert "Traceback" not in err and "interrupted" not in out + err
        said = out if command == "replay" else err
        assert ("(stopped by a read error)" if command == "replay"
                else "stopped by a read error at 20.0 s") in said
    table = read_episodes(outs["replay"])
    assert table["offset_s"].max() == pytest.approx(20.0)
    assert bool(table["truncated"].iloc[-1])
    assert outs["replay"].read_text() == outs["detect"].read_text()


def test_an_interrupted_detect_says_so(tmp_path: Path, capsys, monkeypatch) -> None:
    x = np.round(np.random.default_rng(0).normal(0, 3.0, (10_000, 1)), 3)
    path = write_csv(tmp_path / "long.csv", x, 1000.0, ("calf",))
    whole = RecordingReader.iter_chunks

    def ctrl_c_at_3_s(reader: RecordingReader, size: int):
        for chunk in whole(reader, size):
            if reader_at[0] >= 3000:
                raise KeyboardInterrupt
            reader_at[0] += chunk.shape[0]
            yield chunk

    reader_at = [0]
    monkeypatch.setattr(RecordingReader, "iter_chunks", ctrl_c_at_3_s)
    status, _, err = run_cli(capsys, "detect", str(path), "--out", str(tmp_path / "e.csv"))
    assert status == 130
    lines = err.splitlines()
    assert lines[1].startswith("long.csv: interrupted at 3.0 s, 1 channel at 1000 Hz;")
    assert lines[-1] == "emg-pipeline: interrupted at 3.0 s"


def test_replay_of_the_demo_finds_its_ground_truth(tmp_path: Path, capsys) -> None:
    out_csv = tmp_path / "episodes.csv"
    status, out, err = run_cli(capsys, "replay", "--fast", "--out", str(out_csv))
    assert status == 0, err
    assert "replaying the bundled demo" in err
    found = pd.read_csv(out_csv)
    truth = pd.read_csv(DEMO_DIR / "truth.csv")
    figures = score(truth, found)
    assert figures["recall"] >= 0.8
    assert figures["precision"] >= 0.75
    assert figures["label_accuracy"] >= 0.9
    for channel in ("calf_left", "thigh_right", "lower_back"):
        per = score(truth[truth.channel == channel], found[found.channel == channel])
        assert per["recall"] >= 0.7, (channel, per)
    # every episode written has its "end" line among the live events
    assert sum("  end  " in line for line in out.splitlines()) == len(found)
    assert (found["unit"] == "uV").all()


def test_replay_csv_to_stdout_moves_live_lines_to_stderr(capsys, small_csv) -> None:
    path, _ = small_csv
    status, out, err = run_cli(capsys, "replay", str(path), "--fast", "--out", "-")
    assert status == 0
    assert out.splitlines()[0] == ",".join(UNTIMED_COLUMNS)
    assert "summary of small.csv" in err


def test_replay_quiet_and_record(tmp_path: Path, capsys, small_csv) -> None:
    path, x = small_csv
    bdf = tmp_path / "sub" / "copy.bdf"
    status, out, err = run_cli(capsys, "replay", str(path), "--fast", "-qq", "--record", str(bdf))
    assert status == 0 and out == "" and err == ""
    # -q drops the live event lines and keeps the summary
    status, out, err = run_cli(capsys, "replay", str(path), "--fast", "-q", "--record", str(bdf))
    assert status == 0 and "summary of small.csv" in out and "  end  " not in out
    assert "recorded 2.3 s" in err
    data, info = read_recording(bdf)
    assert info.channels == ("calf", "thigh") and info.unit == "uV"
    resolution = 1e6 / (2**24 - 2)
    finite = np.isfinite(x)
    assert np.abs(data[: len(x)][finite] - x[finite]).max() <= resolution / 2 + 1e-9
    assert (data[: len(x)][~finite] == 0).all()
    assert data.shape[0] == len(x)   # the last record's padding is left out on reading


def test_demo_files_are_reproducible(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_demo", DEMO_DIR / "make_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("truth.csv", "artefacts.csv"):
        assert (tmp_path / name).read_text() == (DEMO_DIR / name).read_text(), name
    fresh = gzip.decompress((tmp_path / "session.csv.gz").read_bytes())
    assert fresh == gzip.decompress(demo_recording().read_bytes())
    assert demo_recording().stat().st_size < 2_000_000


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Command-line arguments of each bad input and a word its error line must hold."""
    truncated_bdf = tmp / "cut.bdf"
    from emg_pipeline.sinks import RecordingWriter

    with RecordingWriter(truncated_bdf, 1000.0, ("a",)) as writer:
        writer.write(np.zeros((5000, 1)))
    raw = truncated_bdf.read_bytes()
    truncated_bdf.write_bytes(raw[: len(raw) - 4000])  # header says 5 records; 4 and a piece
    garbage = tmp / "garbage.bin"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    empty = tmp / "empty.csv"
    empty.write_bytes(b"")
    headerless = tmp / "headerless.csv"
    headerless.write_text("".join(f"{k},{-k}\n" for k in range(500)))
    timed = tmp / "timed.csv"
    timed.write_text("time,a\n" + "".join(f"{k / 1000},{k % 5}\n" for k in range(500)))
    text_cell = tmp / "text_cell.csv"
    rows = [f"{k / 1000},{k % 5}\n" for k in range(30_000)]
    rows[20_000] = "20.0,oops\n"
    text_cell.write_text("time,a\n" + "".join(rows))
    slow = tmp / "slow.csv"
    slow.write_text("time,a\n" + "".join(f"{k / 10},{k % 5}\n" for k in range(500)))
    return {
        "truncated file": ([str(truncated_bdf), "--strict"], "truncated"),
        "binary garbage": ([str(garbage)], "unknown format"),
        "unknown format": ([str(timed), "--format", "matlab"], "format"),
        "missing file": ([str(tmp / "nope.csv")], "not found"),
        "missing rate": ([str(headerless)], "--fs"),
        "wrong rate": ([str(timed), "--fs", "250"], "disagrees"),
        "rate too low": ([str(slow)], "too low"),
        "empty file": ([str(empty)], "empty"),
        "non-numeric column": ([str(text_cell)], "oops"),
        "bad speed": ([str(timed), "--speed", "0"], "speed"),
        "speed and fast": ([str(timed), "--speed", "2", "--fast"], "not allowed"),
    }


BAD_CASES = (
    "truncated file", "binary garbage", "unknown format", "missing file", "missing rate",
    "wrong rate", "rate too low", "empty file", "non-numeric column", "bad speed",
    "speed and fast",
)


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_gives_one_error_line_and_status_2(tmp_path: Path, capsys, case: str) -> None:
    argv, word = _bad_inputs(tmp_path)[case]
    status, _, err = run_cli(capsys, "replay", "--fast", *argv)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 or (len(lines) == 2 and lines[0].startswith("replaying")), err
    assert lines[-1].startswith("emg-pipeline: error: ")
    assert word.lower() in lines[-1].lower()
    assert "Traceback" not in err


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data not available")
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("plux-biosignalsnotebooks/emg_bursts.h5", []),
        ("libemg-myo-test/emg_data_myo.csv", ["--fs", "200"]),
        ("physionet-emgdb/emg_healthy.hea", []),
    ],
)
def test_replay_real_recordings(capsys, name: str, extra: list[str]) -> None:
    status, out, err = run_cli(capsys, "replay", str(SHARED_DATA / name), "--fast", *extra)
    assert status == 0, err
    assert "summary of" in out


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data not available")
def test_replay_plux_bursts_finds_the_nine_contractions(capsys) -> None:
    path = SHARED_DATA / "plux-biosignalsnotebooks" / "emg_bursts.h5"
    status, out, _ = run_cli(capsys, "replay", str(path), "--fast", "--out", "-", "-q")
    assert status == 0
    found = pd.read_csv(io.StringIO(out))
    # SOURCE.txt: 9 contractions of ~1 s, onsets near these times (descriptive figures,
    # threshold-dependent: so each must fall inside a detected episode, give or take 0.5 s,
    # and every episode must hold one of them)
    onsets = np.array([1.4, 4.8, 7.9, 11.7, 14.7, 17.3, 20.4, 23.3, 26.7])
    starts = found["onset_s"].to_numpy() - 0.5
    ends = found["offset_s"].to_numpy()
    covered = [bool(((starts <= t) & (t <= ends)).any()) for t in onsets]
    assert sum(covered) >= 8, found
    holds = [bool(((s <= onsets) & (onsets <= e)).any()) for s, e in zip(starts, ends, strict=True)]
    assert all(holds), found


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGINT"), reason="needs SIGINT")
def test_ctrl_c_stops_with_a_summary_and_a_closed_recording(
    tmp_path: Path, spawn: Callable[..., subprocess.Popen]
) -> None:
    import signal
    import sys

    bdf = tmp_path / "cut.bdf"
    # spawn gives the child the default SIGINT disposition a terminal's Ctrl-C meets
    # (a test run started in the background inherits it ignored)
    child = spawn(
        [sys.executable, "-m", "emg_pipeline", "replay", "--speed", "5", "--record", str(bdf)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    first = child.stdout.readline()  # the heading line: the replay is running
    assert "channels at 1000 Hz" in first
    child.stdout.readline()  # a first live event: a few seconds of stream have passed
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "interrupted at" in err and "summary of session.csv.gz" in out
    with open(bdf, "rb") as handle:
        handle.seek(236)
        n_records = int(handle.read(8))
    data, _ = read_recording(bdf)
    # whole records in the file; the padding of the last is left out on reading
    assert n_records > 0 and (n_records - 1) * 1000 < data.shape[0] <= n_records * 1000


def test_live_view_reports_the_link() -> None:
    from emg_pipeline.pipeline import ChunkResult

    pipe = Pipeline(1000.0, ("a",), unit="uV")
    out = io.StringIO()
    view = open_live_view(out)
    view.open(StreamInfo.of(pipe))
    empty = np.empty((0, 1))

    def result(first: int, flags: ChunkFlags, lost: int = 0) -> ChunkResult:
        return ChunkResult(empty, 0, 0.005, empty.astype(bool), (), flags, lost,
                           np.zeros((10, 1)), first)

    view.update(result(1000, ChunkFlags.PACKET_LOSS, 25))
    view.update(result(2000, ChunkFlags.MALFORMED))          # within 10 s: held back
    view.update(result(30_000, ChunkFlags.RECONNECTED | ChunkFlags.PACKET_LOSS, 4000))
    view.update(result(31_000, ChunkFlags.PACKET_LOSS, 5))
    lines = out.getvalue().splitlines()[1:]
    assert "25 samples lost" in lines[0]                   # the first loss at once
    assert "reconnected after 4.00 s" in lines[1]
    assert "malformed packets skipped in 1 chunk(s)" in lines[2]   # held back until 10 s on
    assert len(lines) == 3                                 # the 5 samples wait for 10 s more
