"""The live terminal monitor: renders under a pseudo terminal, falls back to lines without one."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import termios
import threading

import numpy as np
import pytest

from emg_pipeline import Pipeline, StreamInfo, run, simulate
from emg_pipeline.chunk import Chunk
from emg_pipeline.sinks.console import ConsoleView
from emg_pipeline.sinks.monitor import TerminalMonitor, is_terminal, open_live_view, sparkline

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def recording():
    return simulate(np.random.default_rng(3), fs=1000.0, duration_s=30.0, n_channels=2)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sparkline_levels() -> None:
    assert sparkline(np.array([0.0, 1.0, 10.0]), 1.0) == "▁▃█"
    # no threshold yet (learning): scaled to the largest value
    assert sparkline(np.array([0.0, 5.0]), float("nan"))[-1] == "█"
    assert sparkline(np.array([np.nan, 1.0]), 1.0)[0] == " "


def test_frame_shows_state_counts_and_loss(recording) -> None:
    pipe = Pipeline(recording.fs, recording.channels, unit="uV")
    clock = FakeClock()
    monitor = TerminalMonitor(io.StringIO(), width=100, clock=clock,
                              sites={"ch1": "calf"}, colour=False)
    monitor.open(StreamInfo.of(pipe))
    x = recording.signal
    step = 100
    # feed up to 12 s (inside the long clonic spasm of ch1, 3.0-21.5 s), dropping 50 samples
    for start in range(0, 12_000, step):
        first = start + 50 if start == 5000 else start  # 50 samples lost in transmission
        chunk = Chunk(x[first:start + step], recording.fs, first_index=first)
        monitor.update(pipe.process(chunk))
        clock.now += 0.02
    lines = monitor.frame_lines()
    assert len(lines) == 1 + 2 * pipe.n_channels
    assert "packet loss 0.42 % (50 samples)" in lines[0]
    ch1 = next(line for line in lines if line.startswith("ch1 (calf)"))
    assert "SPASM" in ch1 and "floor" in ch1
    assert re.search(r"tw \d+ sp \d+", ch1)
    ch2 = next(line for line in lines if line.startswith("ch2"))
    ended = [e for e in pipe.episodes if e.channel == "ch2"]
    assert f"sp {sum(e.label == 'spasm' for e in ended)}" in ch2
    assert any("last:" in line and "spasm tonic" in line for line in lines)  # ch2 3.0-6.4 s
    assert all(len(ANSI.sub("", line)) <= 100 for line in lines)


def test_redraw_rate_is_bounded_by_the_clock(recording) -> None:
    pipe = Pipeline(recording.fs, recording.channels, unit="uV")
    clock = FakeClock()
    screen = io.StringIO()
    monitor = TerminalMonitor(screen, refresh_s=0.5, clock=clock, width=80)
    monitor.open(StreamInfo.of(pipe))
    n_chunks = alerts = 0
    for part in np.array_split(recording.signal, 1500):
        result = pipe.process(part)
        monitor.update(result)
        alerts += sum(e.kind == "sustained" for e in result.events)
        clock.now += 0.02  # 1500 chunks in 30 s of wall time
        n_chunks += 1
    # one redraw per 0.5 s of wall time at most, plus one for every alert
    assert monitor.n_redraws <= 30 / 0.5 + 1 + alerts
    assert monitor.n_redraws >= 30 / 0.5 - 1
    assert n_chunks == 1500


def _pty_stream(columns: int = 100) -> tuple[int, io.TextIOWrapper]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    return master, os.fdopen(slave, "w", encoding="utf-8", buffering=1)


def _drain(master: int, sink: bytearray, stop: threading.Event) -> None:
    while True:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            sink.extend(data)
        elif stop.is_set():
            return


def test_renders_in_place_under_a_pseudo_terminal(recording) -> None:
    master, stream = _pty_stream(columns=90)
    received = bytearray()
    stop = threading.Event()
    reader = threading.Thread(target=_drain, args=(master, received, stop), daemon=True)
    reader.start()
    try:
        assert is_terminal(stream)
        pipe = Pipeline(recording.fs, recording.channels, unit="uV")
        view = open_live_view(stream, title="sim", refresh_s=0.0)
        assert isinstance(view, TerminalMonitor)
        assert view.width == 90
        run(np.array_split(recording.signal, 300), pipe, [view])
        stream.flush()
    finally:
        stop.set()
        reader.join(timeout=5)
        stream.close()
        os.close(master)
    text = received.decode("utf-8")
    n_lines = 1 + 2 * pipe.n_channels
    assert "\x1b[?25l" in text and "\x1b[?25h" in text  # cursor hidden, then restored
    assert text.count(f"\x1b[{n_lines}A") >= 299  # moved back up to redraw in place
    assert "SPASM" in text and "\x1b[1;31m" in text
    plain = ANSI.sub("", text)
    assert "sim · " in plain and "packet loss 0.00 %" in plain
    assert "summary of sim" in plain
    assert plain.rstrip().splitlines()[-1].strip().startswith("mains interference")


def test_falls_back_to_lines_without_a_terminal(recording) -> None:
    pipe = Pipeline(recording.fs, recording.channels, unit="uV")
    out = io.StringIO()
    view = open_live_view(out, title="sim", sites={"ch1": "calf"}, refresh_s=0.1)
    assert isinstance(view, ConsoleView)
    run(np.array_split(recording.signal, 300), pipe, [view])
    text = out.getvalue()
    assert "\x1b[" not in text
    assert "SPASM" in text and "summary of sim" in text
    ends = [line for line in text.splitlines() if "  end  " in line]
    assert len(ends) == len(pipe.episodes)


def test_pipe_is_not_a_terminal() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "w") as stream:
        assert not is_terminal(stream)
    os.close(read_fd)
    assert not is_terminal(object())


def test_closed_monitor_refuses_updates(recording) -> None:
    pipe = Pipeline(recording.fs, recording.channels, unit="uV")
    monitor = TerminalMonitor(io.StringIO(), width=80)
    run([recording.signal[:1000]], pipe, [monitor])
    monitor.close(None)  # once only
    fresh = Pipeline(recording.fs, recording.channels, unit="uV")
    with pytest.raises(RuntimeError, match="closed"):
        monitor.update(fresh.process(recording.signal[:100]))
    with pytest.raises(ValueError):
        TerminalMonitor(io.StringIO(), window_s=0.0)


def test_replay_uses_the_monitor_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from emg_pipeline.cli import main

    master, stream = _pty_stream(columns=120)
    received = bytearray()
    stop = threading.Event()
    reader = threading.Thread(target=_drain, args=(master, received, stop), daemon=True)
    reader.start()
    monkeypatch.setattr("sys.stdout", stream)
    try:
        assert main(["replay", "--fast"]) == 0
        stream.flush()
    finally:
        stop.set()
        reader.join(timeout=5)
        stream.close()
        os.close(master)
    text = received.decode("utf-8")
    assert "\x1b[7A" in text  # 3 channels: header + 2 lines each, redrawn in place
    plain = ANSI.sub("", text)
    assert "calf_left (calf)" in plain and "summary of session.csv.gz" in plain
