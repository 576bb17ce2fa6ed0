"""The run loop and the sinks that must lose nothing: episode file, recording, bad outputs."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emg_pipeline import ChunkResult, Pipeline, RunSummary, StreamInfo, run, simulate
from emg_pipeline.cli import main
from emg_pipeline.errors import OutputError, RecordingError
from emg_pipeline.sinks._output import atomic_write
from emg_pipeline.sinks.episodes import EpisodeFile, read_episodes
from emg_pipeline.sinks.recording import RecordingSink
from emg_pipeline.sources.formats import read_recording

FS = 1000.0


@pytest.fixture(scope="module")
def rec():
    return simulate(np.random.default_rng(4), fs=FS, duration_s=60.0, n_channels=2)


class Spy:
    """A sink that remembers what it was given."""

    def __init__(self, fail_on_update: bool = False) -> None:
        self.info: StreamInfo | None = None
        self.results: list[ChunkResult] = []
        self.summary: RunSummary | None = None
        self.fail_on_update = fail_on_update

    def open(self, info: StreamInfo) -> None:
        self.info = info

    def update(self, result: ChunkResult) -> None:
        if self.fail_on_update:
            raise OSError(28, "No space left on device")
        self.results.append(result)

    def close(self, summary: RunSummary) -> None:
        self.summary = summary


def test_run_feeds_every_sink_and_summarises(rec) -> None:
    spy = Spy()
    pipe = Pipeline(FS, rec.channels, unit="uV")
    summary = run(np.array_split(rec.signal, 300), pipe, [spy])
    assert spy.info is not None and spy.info.channels == rec.channels
    assert spy.summary is summary and not summary.interrupted
    # every sample reached the sinks once, in order, and the last result ends the stream
    assert np.array_equal(np.concatenate([r.samples for r in spy.results]), rec.signal)
    assert [r.first_sample for r in spy.results] == \
        np.cumsum([0] + [r.samples.shape[0] for r in spy.results[:-1]]).tolist()
    ended = [e.episode for r in spy.results for e in r.events if e.episode is not None]
    assert summary.episodes == tuple(ended) and len(ended) == len(pipe.episodes) > 0
    assert summary.duration_s == 60.0
    assert summary.n_alerts == sum(e.kind == "sustained" for r in spy.results for e in r.events)


def test_ctrl_c_ends_the_stream_like_its_end(rec) -> None:
    def source() -> Iterator[np.ndarray]:
        yield rec.signal[:25_000]          # inside a contraction on some channel
        raise KeyboardInterrupt

    spy = Spy()
    summary = run(source(), Pipeline(FS, rec.channels, unit="uV"), [spy])
    assert summary.interrupted and spy.summary is summary
    assert summary.n_samples == 25_000


def test_a_read_error_ends_the_stream_like_its_end(rec) -> None:
    fault = RecordingError("rec.csv", "non-numeric value 'x' in column 'a' at data row 25001")

    def source() -> Iterator[np.ndarray]:
        yield rec.signal[:25_000]
        raise fault

    x = np.random.default_rng(0).normal(0, 3.0, (20_000, 1))
    x[12_000:, 0] += np.random.default_rng(1).normal(0, 80.0, 8000)   # still contracting

    def contracting() -> Iterator[np.ndarray]:
        yield x
        raise fault

    spy = Spy()
    summary = run(contracting(), Pipeline(FS, 1, unit="uV"), [spy], partial=True)
    assert summary.read_error is fault and spy.summary is summary
    assert not summary.interrupted and summary.stopped == "stopped by a read error"
    assert summary.n_samples == 20_000 and summary.has_results
    # flushed: the episode open at the fault is ended, marked truncated
    assert summary.episodes and summary.episodes[-1].truncated
    # by default the error is raised, after the sinks were closed with the same summary
    spy = Spy()
    with pytest.raises(RecordingError) as caught:
        run(source(), Pipeline(FS, rec.channels, unit="uV"), [spy])
    assert caught.value is fault
    assert spy.summary is not None and spy.summary.read_error is fault
    assert spy.summary.n_samples == 25_000


def test_a_stream_stopped_before_its_first_sample_has_no_results(rec) -> None:
    def unreadable() -> Iterator[np.ndarray]:
        raise RecordingError("rec.csv", "undecodable bytes after data row 0")
        yield rec.signal

    summary = run(unreadable(), Pipeline(FS, rec.channels, unit="uV"), partial=True)
    assert summary.n_samples == 0 and not summary.has_results
    # an empty recording read to its end has results: no episodes
    assert run([], Pipeline(FS, rec.channels, unit="uV")).has_results


def test_a_failing_sink_does_not_keep_the_others_open(rec) -> None:
    good = Spy()
    with pytest.raises(OSError, match="No space"):
        run([rec.signal[:5000]], Pipeline(FS, rec.channels, unit="uV"), [Spy(True), good])
    assert good.summary is not None and good.summary.interrupted


def test_episode_file_holds_every_ended_episode_while_running(tmp_path: Path, rec) -> None:
    out = tmp_path / "live" / "episodes.csv"
    sink = EpisodeFile(out)
    seen: list[int] = []

    def check(result: ChunkResult) -> None:
        # on disk (not only in a buffer) the moment each episode has ended
        if any(e.kind == "end" for e in result.events):
            seen.append(len(pd.read_csv(out)))

    pipe = Pipeline(FS, rec.channels, unit="uV")
    run(np.array_split(rec.signal, 600), pipe, [sink], on_result=check)
    assert seen and seen == sorted(seen) and seen[-1] == len(pipe.episodes)
    table = read_episodes(out)                     # rewritten sorted at the end
    assert len(table) == len(pipe.episodes)
    assert table["onset_s"].is_monotonic_increasing
    assert not (tmp_path / "live" / "episodes.csv.partial").exists()


def test_an_episode_cut_by_the_end_is_marked_truncated(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(0, 3.0, (20_000, 1))
    x[12_000:, 0] += np.random.default_rng(1).normal(0, 80.0, 8000)   # still contracting
    out = tmp_path / "e.csv"
    run([x], Pipeline(FS, 1, unit="uV"), [EpisodeFile(out)])
    table = read_episodes(out)
    assert bool(table["truncated"].iloc[-1]) and not table["truncated"].iloc[:-1].any()


@pytest.mark.parametrize("bad", ["dir", "unwritable"])
def test_outputs_are_checked_before_the_first_sample(tmp_path: Path, bad: str) -> None:
    target = tmp_path / "adir"
    target.mkdir()
    if bad == "unwritable":
        if os.geteuid() == 0:
            target = Path("/proc/emg-pipeline-test/x.csv")   # not creatable, even for root
        else:
            target.chmod(0o500)
            target = target / "x.csv"
    with pytest.raises(OutputError) as info:
        EpisodeFile(target)
    assert str(info.value).startswith(f"--out: {target}: ")
    with pytest.raises(OutputError) as info:
        RecordingSink(target)
    assert str(info.value).startswith(f"--record: {target}: ")


def test_cli_names_the_option_of_a_bad_output(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "adir").mkdir()
    status = main(["replay", "--fast", "--out", str(tmp_path / "adir")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip() == f"emg-pipeline: error: --out: {tmp_path / 'adir'}: is a directory"


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RecordingError])
def test_a_stream_stopped_before_its_first_sample_leaves_the_files_as_they_were(
    tmp_path: Path, rec, stop: type[BaseException]
) -> None:
    csv, bdf = tmp_path / "e.csv", tmp_path / "r.bdf"
    csv.write_text("channel,onset_s\nkept,1.0\n")
    bdf.write_bytes(b"an earlier recording")

    def stopped() -> Iterator[np.ndarray]:
        raise stop("x.csv", "undecodable bytes after data row 0")
        yield rec.signal

    said = io.StringIO()
    summary = run(stopped(), Pipeline(FS, rec.channels, unit="uV"),
                  [EpisodeFile(csv, announce=said), RecordingSink(bdf)], partial=True)
    assert summary.n_samples == 0
    assert csv.read_text() == "channel,onset_s\nkept,1.0\n"
    assert bdf.read_bytes() == b"an earlier recording"
    assert said.getvalue() == ""                       # no "wrote 0 episodes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv", "r.bdf"]


def test_detect_failing_at_its_first_row_keeps_the_episode_file(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    x = np.random.default_rng(0).normal(0, 3.0, (5000, 1))
    x[2000:3000, 0] *= 30.0
    good = tmp_path / "good.csv"
    good.write_text("time,calf\n" + "".join(f"{k / FS:.3f},{v:.3f}\n"
                                            for k, v in enumerate(x[:, 0])))
    keep = tmp_path / "keep.csv"
    assert main(["detect", str(good), "--out", str(keep)]) == 0
    before = keep.read_bytes()
    assert len(before.splitlines()) > 1
    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text().replace("0.000,", "0.000,x", 1))
    capsys.readouterr()
    assert main(["detect", str(bad), "--out", str(keep)]) == 2
    err = capsys.readouterr().err
    assert "wrote" not in err
    assert err.splitlines()[-1].startswith(f"emg-pipeline: error: {bad}: non-numeric value")
    assert keep.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv", "keep.csv"]


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    target.chmod(0o640)
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("the page could not be drawn")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_write(target) as handle:
        handle.write("new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]
    assert target.stat().st_mode & 0o777 == 0o640      # a file replaced keeps its permissions
    link = tmp_path / "latest.html"
    link.symlink_to(target.name)
    with atomic_write(link) as handle:
        handle.write("newer")
    assert link.is_symlink() and target.read_text() == "newer"   # the link still points at it


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_out_dev_null_discards_the_episodes(capsys: pytest.CaptureFixture) -> None:
    assert main(["detect", "--out", "/dev/null"]) == 0
    err = capsys.readouterr().err
    assert "error" not in err and "episodes to /dev/null" in err
    assert Path("/dev/null").is_char_device()
    assert main(["replay", "--fast", "-qq", "--out", "/dev/null"]) == 0
    assert Path("/dev/null").is_char_device()


def test_recording_has_onsets_and_alerts_on_disk_at_once(tmp_path: Path, rec) -> None:
    path = tmp_path / "r.bdf"
    sink = RecordingSink(path)
    alerts_on_disk: list[bool] = []

    def check(result: ChunkResult) -> None:
        for e in result.events:
            if e.kind == "sustained" and e.time_s > 2.0:   # a record has been written
                alerts_on_disk.append(f"prolonged spasm alert {e.channel}".encode()
                                      in path.read_bytes())

    pipe = Pipeline(FS, rec.channels, unit="uV")
    run(np.array_split(rec.signal, 3000), pipe, [sink], on_result=check)
    assert alerts_on_disk and all(alerts_on_disk)
    _, info = read_recording(path)
    texts = info.annotations["text"].tolist()
    assert sum(t.startswith("onset ") for t in texts) == \
        sum(e.label is not None for e in pipe.episodes)
    assert any(t.startswith("prolonged spasm alert ") for t in texts)


_KILLED = """
import sys, time
import numpy as np
from emg_pipeline import Pipeline, run, simulate
from emg_pipeline.sinks.episodes import EpisodeFile
from emg_pipeline.sinks.recording import RecordingSink

rec = simulate(np.random.default_rng(4), fs=1000.0, duration_s=600.0, n_channels=2)
pipe = Pipeline(rec.fs, rec.channels, unit="uV")

def paced():
    for part in np.array_split(rec.signal, 6000):
        yield part
        time.sleep(0.002)

def report(result):
    for e in result.events:
        if e.kind in ("end", "sustained"):
            print(e.kind, e.channel, round(e.onset_s, 3), flush=True)

run(paced(), pipe, [EpisodeFile(sys.argv[1]), RecordingSink(sys.argv[2])], on_result=report)
"""


def test_kill_9_loses_no_ended_episode_and_no_fired_alert(
    tmp_path: Path, spawn: Callable[..., subprocess.Popen]
) -> None:
    csv, bdf = tmp_path / "e.csv", tmp_path / "r.bdf"
    child = spawn([sys.executable, "-c", _KILLED, str(csv), str(bdf)], stdout=subprocess.PIPE,
                  text=True)
    ends, alerts = [], []
    assert child.stdout is not None
    for line in child.stdout:
        kind, channel, onset = line.split()
        (ends if kind == "end" else alerts).append((channel, float(onset)))
        if len(ends) >= 6 and len(alerts) >= 2:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    table = pd.read_csv(csv)
    on_file = {(c, round(o, 3)) for c, o in zip(table["channel"], table["onset_s"], strict=True)}
    assert set(ends) <= on_file
    raw = bdf.read_bytes()
    for channel, _ in alerts:
        assert f"prolonged spasm alert {channel}".encode() in raw
    assert io.BytesIO(raw).read(8)    # the file is there and readable


@pytest.mark.parametrize(("mains_uv", "said"), [
    (0.0, "no 50 Hz line above a tenth of the noise"),   # auto: a line is modelled on noise
    (0.15, "no 50 Hz line above a tenth of the noise"),
    (1.5, r"50 Hz removed \(its RMS over what is left: ch1 0\.[56]"),   # 1.5 / 2.5 µV left
])
def test_mains_is_reported_with_its_level(mains_uv: float, said: str) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(round(60 * FS)) / FS
    x = rng.normal(0, 3.0, (t.size, 1)) + mains_uv * 2**0.5 * np.sin(2 * np.pi * 50.05 * t)[:, None]
    summary = run([x], Pipeline(FS, 1, unit="uV", mains="50" if mains_uv else "auto"))
    assert re.match(said, summary.mains_text()), summary.mains_text()


def test_a_caller_that_needs_the_whole_stream_raises_ctrl_c_again() -> None:
    def source():
        yield np.zeros((100, 1))
        raise KeyboardInterrupt

    summary = run(source(), Pipeline(1000.0, 1))
    assert summary.interrupted and summary.n_samples == 100
    with pytest.raises(KeyboardInterrupt):
        summary.raise_if_interrupted()
    whole = run([np.zeros((100, 1))], Pipeline(1000.0, 1))
    assert whole.raise_if_interrupted() is whole
