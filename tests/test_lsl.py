"""Lab Streaming Layer in and out, with real outlets and inlets on this computer.

The pipeline's outlet (:class:`LslOutlet`) is read by real pylsl inlets and by the
project's own inlet source (:class:`LslSource`); outlets of pylsl feed the source.
Every stream has a unique name, so that tests never see each other's streams, and
every wait is bounded (resolve timeouts of a few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.abc
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pylsl")

from emg_pipeline import (
    Chunk,
    ChunkFlags,
    Pipeline,
    StreamInfo,
    detect,
    run,
    run_async,
    simulate,
)
from emg_pipeline.cli import main
from emg_pipeline.errors import (
    ConfigError,
    ConnectionLostError,
    LslLibraryError,
    MissingDependencyError,
    StreamNotFoundError,
)
from emg_pipeline.lab import deps

pylsl = deps.import_pylsl()   # first: liblsl's log is kept quiet before it starts
from emg_pipeline.sinks.lsl import LslOutlet, event_marker  # noqa: E402
from emg_pipeline.sources.lsl import (  # noqa: E402
    LslSource,
    SampleTimeline,
    describe_stream,
    list_streams,
    parse_query,
)

FS = 2000.0
RESOLVE_S = 5.0


def unique(prefix: str = "emgtest") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def lossy_chunks(x: np.ndarray, fs: float, rng: np.random.Generator, *, packet: int = 20,
                 loss: float = 0.05, channels: tuple[str, ...] = ()) -> tuple[list[Chunk], int,
                                                                                  int]:
    """The board's packets of ``packet`` samples, ``loss`` of them lost: (chunks, lost, gaps).

    Lost packets leave a jump in ``first_index`` and the next chunk carries
    PACKET_LOSS, as the BLE source hands them out.
    """
    chunks: list[Chunk] = []
    expected = lost = gaps = 0
    for start in range(0, x.shape[0], packet):
        stop = min(start + packet, x.shape[0])
        if start and stop < x.shape[0] and rng.random() < loss:
            lost += stop - start
            gaps += start == expected
            continue
        missing = start - expected
        flags = ChunkFlags.PACKET_LOSS if missing else ChunkFlags.NONE
        chunks.append(Chunk(x[start:stop], fs, start, flags, missing, channels))
        expected = stop
    return chunks, lost, gaps


class Publisher:
    """``run(chunks, pipeline, [outlet])`` in a thread; its summary or error kept."""

    def __init__(self, chunks: list[Chunk], pipe: Pipeline, outlet: LslOutlet) -> None:
        self.summary = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(chunks, pipe, outlet),
                                       daemon=True)
        self.thread.start()

    def _run(self, chunks: list[Chunk], pipe: Pipeline, outlet: LslOutlet) -> None:
        try:
            self.summary = run(chunks, pipe, [outlet])
        except BaseException as exc:  # reported by join()
            self.error = exc

    def join(self, timeout: float = 60.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the publishing run did not end"
        if self.error is not None:
            raise self.error


def open_inlet(name: str) -> pylsl.StreamInlet:
    found = pylsl.resolve_byprop("name", name, 1, RESOLVE_S)
    assert found, f"stream {name} not found"
    inlet = pylsl.StreamInlet(found[0], max_buflen=360, recover=False,
                              processing_flags=pylsl.proc_clocksync)
    inlet.open_stream(RESOLVE_S)
    # the first clock-corrected pull waits for the first offset estimate: get it now
    inlet.time_correction(RESOLVE_S)
    return inlet


def pull(inlet: pylsl.StreamInlet, n: int, timeout_s: float = 30.0,
         strings: bool = False) -> tuple[list | np.ndarray, np.ndarray]:
    """Pull until ``n`` samples arrived (or the deadline)."""
    data: list = []
    stamps: list[np.ndarray] = []
    got = 0
    deadline = time.monotonic() + timeout_s
    while got < n and time.monotonic() < deadline:
        values, ts = inlet.pull_chunk(timeout=0.05, max_samples=65536, as_numpy=not strings)
        if len(ts):
            (data.extend if strings else data.append)(values)
            stamps.append(np.asarray(ts))
            got += len(ts)
    ts_all = np.concatenate(stamps) if stamps else np.empty(0)
    if strings:
        return [row[0] for row in data], ts_all
    return (np.concatenate(data) if data else np.empty((0, 0))), ts_all


def pull_markers(inlet: pylsl.StreamInlet, timeout_s: float = 30.0) -> list[str]:
    """Every marker until ``stream_end`` (pulled while the outlet is up: a lost outlet
    takes what an inlet still holds with it)."""
    texts: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not any('"stream_end"' in t for t in texts) and time.monotonic() < deadline:
        more, _ = pull(inlet, 1, timeout_s=0.5, strings=True)
        texts += more
    return texts


@pytest.fixture(scope="module")
def recording():
    return simulate(np.random.default_rng(7), fs=FS, duration_s=6.0, n_channels=8)


# ------------------------------------------------------------------------------- pure parts


def test_parse_query_and_bad_query() -> None:
    assert parse_query("Delsys") == ("name", "Delsys")
    assert parse_query("lsl:type=EMG") == ("type", "EMG")
    assert parse_query("source_id=abc") == ("source_id", "abc")
    assert parse_query("x=y") == ("name", "x=y")
    with pytest.raises(ConfigError, match="LSL stream"):
        parse_query("lsl:")
    with pytest.raises(ConfigError):
        parse_query("name='x'")


def test_timeline_counts_gaps_exactly_and_tolerates_jitter() -> None:
    fs = 1000.0
    rng = np.random.default_rng(1)
    # chunks of 10 samples stamped when pushed: +-2 ms jitter per chunk, one 100-sample gap
    starts = np.arange(0, 3000, 10)
    starts = starts[(starts < 1500) | (starts >= 1600)]
    stamps = np.concatenate([(s + np.arange(10)) / fs + rng.uniform(-0.002, 0.002)
                             for s in starts])
    line = SampleTimeline(fs)
    lost = line.place(stamps)
    assert line.loss_events == 1
    assert abs(int(lost.sum()) - 100) <= 3
    assert line.jitter_s > 0.001
    # exact timestamps: every lost sample counted, nothing else
    exact = SampleTimeline(fs)
    idx = np.concatenate([np.arange(0, 50), np.arange(53, 90), np.arange(91, 120)])
    got = np.concatenate([exact.place(idx[:40] / fs), exact.place(idx[40:] / fs)])
    assert int(got.sum()) == 4 and exact.loss_events == 2
    assert exact.n_samples == 120
    with pytest.raises(ConfigError):
        SampleTimeline(0.0)


def test_event_marker_fields_are_json() -> None:
    from emg_pipeline.events import LiveEvent

    fields, t = event_marker(LiveEvent("sustained", "calf", 5.0, 2.5), "calf")
    assert fields["label"] == "spasm" and t == 5.0
    json.dumps(fields, allow_nan=False)


# ------------------------------------------------------------------------ outlet -> inlet


def test_round_trip_every_sample_exact_timestamps(recording) -> None:
    name = unique()
    x = recording.signal
    chunks, _, _ = lossy_chunks(x, FS, np.random.default_rng(0), loss=0.0,
                                channels=recording.channels)
    outlet = LslOutlet(name, signal="raw", sites={"ch1": "calf"}, wait_for_consumers_s=10.0)
    pipe = Pipeline(FS, recording.channels, unit="uV")
    publisher = Publisher(chunks, pipe, outlet)
    inlet = open_inlet(name)
    markers = open_inlet(f"{name}-markers")
    xml = inlet.info(RESOLVE_S).as_xml()   # the full description, while the outlet is up
    full = describe_stream(inlet.info(RESOLVE_S))
    data, stamps = pull(inlet, x.shape[0])
    texts = pull_markers(markers)
    publisher.join()
    assert data.shape == x.shape
    np.testing.assert_array_equal(data, x.astype(np.float32))
    expected = outlet.clock_zero + np.arange(x.shape[0]) / FS
    assert np.abs(stamps - expected).max() < 1e-3
    # the stream's description: labels, units, sites
    assert full.labels == recording.channels and set(full.units) == {"microvolts"}
    assert full.fs == FS and full.channel_format == "float32" and full.type == "EMG"
    assert "<site>calf</site>" in xml
    events = [json.loads(t) for t in texts]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "stream_start" and kinds[-1] == "stream_end"
    ends = [e for e in events if e["event"] == "end"]
    assert len(ends) == len(pipe.episodes) > 0
    assert {e["label"] for e in ends} <= {"twitch", "spasm"}
    assert all("median_freq_hz" in e and "pattern" in e for e in ends)


def test_a_manual_mark_is_a_marker_at_its_stream_time() -> None:
    name = unique()
    outlet = LslOutlet(name, sites={"ch1": "calf"})
    outlet.open(StreamInfo(FS, ("ch1", "ch2"), "uV", 0.005, "marks"))
    try:
        markers = open_inlet(f"{name}-markers")
        outlet.mark(1.5, "cramp", "ch1")
        marks: list = []
        deadline = time.monotonic() + 20.0
        while not marks and time.monotonic() < deadline:
            texts, stamps = pull(markers, 1, timeout_s=0.5, strings=True)
            marks += [(json.loads(t), ts) for t, ts in zip(texts, stamps, strict=True)
                      if json.loads(t)["event"] == "mark"]
        assert len(marks) == 1
        event, stamp = marks[0]
        assert event == {"event": "mark", "onset_s": 1.5, "channel": "ch1", "site": "calf",
                         "note": "cramp"}
        assert abs(stamp - (outlet.clock_zero + 1.5)) < 1e-3
    finally:
        outlet._emg = outlet._markers = None


def test_conditioned_signal_is_band_passed(recording) -> None:
    name = unique()
    x = recording.signal
    chunks, _, _ = lossy_chunks(x, FS, np.random.default_rng(0), loss=0.0)
    outlet = LslOutlet(name, wait_for_consumers_s=10.0, linger_s=0.5)
    publisher = Publisher(chunks, Pipeline(FS, x.shape[1], unit="uV"), outlet)
    inlet = open_inlet(name)
    data, _ = pull(inlet, x.shape[0])
    publisher.join()
    assert data.shape == x.shape and np.isfinite(data).all()

    def line(v: np.ndarray, hz: float) -> float:
        spectrum = np.abs(np.fft.rfft(v[-8000:, 0] - v[-8000:, 0].mean()))
        return float(spectrum[round(hz * 8000 / FS)])

    # mains removed (the recording carries 50 Hz), DC and drift gone
    assert line(data, 50.0) < 0.2 * line(x, 50.0)
    assert abs(float(data[2000:, 0].mean())) < 1.0


def test_packet_loss_stays_gaps_counted_exactly(recording) -> None:
    name = unique()
    x = recording.signal
    chunks, lost, gaps = lossy_chunks(x, FS, np.random.default_rng(3), loss=0.05)
    assert gaps > 5
    outlet = LslOutlet(name, signal="raw", wait_for_consumers_s=10.0)
    pipe = Pipeline(FS, x.shape[1], unit="uV")
    publisher = Publisher(chunks, pipe, outlet)
    inlet = open_inlet(name)
    data, stamps = pull(inlet, x.shape[0] - lost)
    publisher.join()
    assert data.shape[0] == x.shape[0] - lost == outlet.samples_sent
    assert outlet.gaps_sent == gaps and pipe.lost_samples == lost
    line = SampleTimeline(FS)
    line.place(stamps)
    assert line.lost_samples == lost and line.loss_events == gaps
    assert line.n_samples == x.shape[0]


def test_inlet_source_reads_a_real_outlet_and_detects() -> None:
    """Pipeline -> outlet -> LslSource -> pipeline: the gaps and the episodes survive."""
    name = unique()
    rec = simulate(np.random.default_rng(1), fs=1000.0, duration_s=12.0, n_channels=2)
    x, channels, fs = rec.signal, rec.channels, rec.fs
    chunks, lost, _ = lossy_chunks(x, fs, np.random.default_rng(5), packet=10, loss=0.05,
                                   channels=channels)
    assert lost > 0
    outlet = LslOutlet(name, signal="raw", wait_for_consumers_s=10.0)
    first = Pipeline(fs, channels, unit="uV")
    publisher = Publisher(chunks, first, outlet)

    async def consume():
        source = LslSource(f"name={name}", resolve_timeout_s=RESOLVE_S)
        async with source:
            pipe = Pipeline(source.fs, source.channels, unit=source.unit)
            summary = await run_async(source, pipe, [], limit_samples=x.shape[0] - 20,
                                      stats=lambda: vars(source.stats).copy())
        return source, summary

    source, summary = asyncio.run(asyncio.wait_for(consume(), 60))
    publisher.join()
    assert source.channels == channels and source.unit == "uV"
    assert abs(source.timeline.first_timestamp - outlet.clock_zero) < 1e-3
    assert summary.lost_samples == sum(c.lost_samples for c in chunks
                                       if c.first_index < summary.n_samples)
    assert summary.source_stats["lost_samples"] == source.timeline.lost_samples == sum(
        c.lost_samples for c in chunks if c.first_index < source.timeline.n_samples)
    # the same samples at the same places: the same episodes as offline detection
    held = x.astype(np.float32).astype(np.float64)
    offline = np.full_like(held, np.nan)
    for c in chunks:
        offline[c.first_index:c.first_index + c.n_samples] = held[
            c.first_index:c.first_index + c.n_samples]
    want = detect(offline[: summary.n_samples], fs, channels=channels, unit="uV")
    got = [(e.channel, e.onset_s, e.offset_s, e.label) for e in sorted(
        summary.episodes, key=lambda e: (e.onset_s, e.channel))]
    ref = [(r.channel, r.onset_s, r.offset_s, r.label) for r in want.itertuples()]
    assert got == ref and len(got) > 0


def test_source_reconnects_when_the_outlet_returns() -> None:
    name, sid = unique(), unique("sid")
    fs, n_ch = 500.0, 2
    outage = 400   # samples the outlet is away for
    gone = threading.Event()

    def serve() -> None:
        info = pylsl.StreamInfo(name, "EMG", n_ch, fs, pylsl.cf_float32, sid)
        outlet = pylsl.StreamOutlet(info)
        outlet.wait_for_consumers(RESOLVE_S)
        t0 = pylsl.local_clock()
        x = np.arange(1000 * n_ch, dtype=np.float32).reshape(-1, n_ch)
        outlet.push_chunk(x[:500], t0 + 499 / fs)
        time.sleep(1.0)
        del outlet   # gone; the same stream (same source_id) comes back later
        gone.set()
        time.sleep(0.3)
        outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EMG", n_ch, fs, pylsl.cf_float32,
                                                     sid))
        outlet.wait_for_consumers(20.0)
        start = 500 + outage
        outlet.push_chunk(x[500:], t0 + (start + 499) / fs)
        time.sleep(2.0)

    server = threading.Thread(target=serve, daemon=True)
    server.start()

    async def consume() -> tuple[LslSource, list[Chunk]]:
        source = LslSource(name, resolve_timeout_s=RESOLVE_S, give_up_after_s=20.0)
        got: list[Chunk] = []
        async with source:
            async for chunk in source:
                got.append(chunk)
                if chunk.first_index + chunk.n_samples >= 1000 + outage:
                    break
        return source, got

    source, got = asyncio.run(asyncio.wait_for(consume(), 60))
    server.join(30)
    assert gone.is_set()
    back = [c for c in got if c.flags & ChunkFlags.RECONNECTED]
    assert len(back) == 1 and source.stats.reconnects == 1
    assert back[0].first_index == 500 + outage and back[0].lost_samples == outage
    assert back[0].flags & ChunkFlags.PACKET_LOSS
    assert source.stats.samples == 1000 and source.stats.lost_samples == outage
    assert back[0].samples[0, 0] == 1000.0


def test_source_gives_up_when_the_stream_stays_away() -> None:
    name = unique()
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EMG", 1, 100.0, pylsl.cf_float32, name))

    async def consume() -> None:
        async with LslSource(name, resolve_timeout_s=RESOLVE_S, give_up_after_s=0.5) as source:
            async for _ in source:
                pass

    with pytest.raises(ConnectionLostError, match=r"no data for 0\.5 s"):
        asyncio.run(asyncio.wait_for(consume(), 30))
    del outlet


def test_irregular_and_text_streams_are_refused() -> None:
    name = unique()
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, name)
    outlet = pylsl.StreamOutlet(info)
    try:
        with pytest.raises(StreamNotFoundError, match="text"):
            asyncio.run(LslSource(name, resolve_timeout_s=RESOLVE_S).connect())
    finally:
        del outlet


def test_missing_stream_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StreamNotFoundError, match=r"none found within 0\.3 s"):
        asyncio.run(LslSource(unique(), resolve_timeout_s=0.3).connect())
    assert main(["stream", f"lsl:{unique()}", "--scan-timeout", "0.3", "-qq"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emg-pipeline: error: LSL stream name=")


@pytest.mark.parametrize("argv, message", [
    (["stream"], "give a firmware PROFILE, lsl:NAME or --lsl-source"),
    (["stream", "lsl:x", "--address", "AA"], "--address is for BLE boards"),
    (["stream", "nus_emg", "--lsl-source", "x"], "takes no PROFILE"),
    (["stream", "lsl:x", "--lsl-source", "y"], "give the LSL stream once"),
    (["scan", "--lsl", "--emulator", "127.0.0.1:1"], "takes no --emulator"),
])
def test_bad_usage_is_one_error_line(argv: list[str], message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_outlet_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="signal"):
        LslOutlet("x", signal="band")
    with pytest.raises(ConfigError, match="name"):
        LslOutlet("  ")
    with pytest.raises(ConfigError, match="poll_s"):
        LslSource("x", poll_s=0)


class _NoLibrary(importlib.abc.MetaPathFinder):
    """Makes ``import pylsl`` fail as it does when its wheel has no liblsl."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "pylsl":
            raise RuntimeError("LSL binary library file was not found.")
        return None


@contextlib.contextmanager
def _pylsl_hidden(finder: importlib.abc.MetaPathFinder | None) -> Iterator[None]:
    saved = {k: v for k, v in sys.modules.items() if k == "pylsl" or k.startswith("pylsl.")}
    for key in saved:
        del sys.modules[key]
    if finder is None:
        sys.modules["pylsl"] = None  # type: ignore[assignment]
    else:
        sys.meta_path.insert(0, finder)
    deps.import_pylsl.cache_clear()
    try:
        yield
    finally:
        if finder is None:
            del sys.modules["pylsl"]
        else:
            sys.meta_path.remove(finder)
        sys.modules.update(saved)
        deps.import_pylsl.cache_clear()


def test_missing_pylsl_and_liblsl_say_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                       capsys) -> None:
    with _pylsl_hidden(None):
        with pytest.raises(MissingDependencyError, match=r"emg-pipeline\[lab\]"):
            deps.import_pylsl()
        assert main(["scan", "--lsl", "--timeout", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["emg-pipeline: error: LSL needs the package 'pylsl', which is not "
                   "installed: pip install 'emg-pipeline[lab]'"]
    monkeypatch.setattr(deps, "_mne_lsl_library", lambda: None)
    with _pylsl_hidden(_NoLibrary()), pytest.raises(LslLibraryError, match="mne-lsl"):
        deps.import_pylsl()


# ------------------------------------------------------------------------------- commands


def test_scan_lsl_lists_streams(capsys: pytest.CaptureFixture[str]) -> None:
    name = unique()
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EMG", 3, 250.0, pylsl.cf_float32,
                                                 name))
    try:
        assert any(d.name == name and d.fs == 250.0 and d.n_channels == 3
                   for d in list_streams(1.0))
        assert main(["scan", "--lsl", "--timeout", "1"]) == 0
    finally:
        del outlet
    out = capsys.readouterr().out
    assert "source id" in out.splitlines()[0]
    row = next(line for line in out.splitlines() if line.startswith(name))
    assert "EMG" in row and "250 Hz" in row and "float32" in row


def test_replay_lsl_publishes_the_recording(tmp_path: Path) -> None:
    name = unique()
    rec = simulate(np.random.default_rng(2), fs=1000.0, duration_s=8.0, n_channels=2)
    path = tmp_path / "rec.csv"
    header = "time," + ",".join(f"{c} (uV)" for c in rec.channels)
    rows = np.column_stack([np.arange(rec.signal.shape[0]) / rec.fs, rec.signal])
    np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt="%.9g")
    status: list[int] = []
    worker = threading.Thread(target=lambda: status.append(main(
        ["replay", str(path), "--fast", "--lsl", name, "--lsl-wait", "10", "-qq"])),
        daemon=True)
    worker.start()
    inlet = open_inlet(name)
    markers = open_inlet(f"{name}-markers")
    data, _ = pull(inlet, rec.signal.shape[0])
    texts = pull_markers(markers)
    worker.join(30)
    assert status == [0]
    assert data.shape == rec.signal.shape
    assert any('"event":"end"' in t for t in texts)


def test_stream_command_reads_an_lsl_stream(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    name = unique()
    rec = simulate(np.random.default_rng(4), fs=1000.0, duration_s=12.0, n_channels=2)

    def serve() -> None:
        info = pylsl.StreamInfo(name, "EMG", 2, 1000.0, pylsl.cf_float32, name)
        channels = info.desc().append_child("channels")
        for label in rec.channels:
            ch = channels.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", "microvolts")
        outlet = pylsl.StreamOutlet(info)
        if outlet.wait_for_consumers(15.0):
            t0 = pylsl.local_clock()
            outlet.push_chunk(rec.signal.astype(np.float32), t0 + (rec.signal.shape[0] - 1)
                              / 1000.0)
            time.sleep(1.5)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    out = tmp_path / "episodes.csv"
    assert main(["stream", f"lsl:{name}", "--duration", "10", "--out", str(out), "-q"]) == 0
    server.join(30)
    err = capsys.readouterr().err
    table = out.read_text().splitlines()
    assert table[0].startswith("channel,site") and len(table) > 1
    stream_line = next(line for line in err.splitlines() if line.startswith("LSL:"))
    assert " 0 lost" in stream_line


def test_outlet_without_consumers_never_blocks() -> None:
    outlet = LslOutlet(unique(), signal="raw")
    x = np.random.default_rng(0).normal(0, 10, (4000, 1))
    start = time.monotonic()
    run([x], Pipeline(1000.0, 1, unit="uV"), [outlet])
    assert time.monotonic() - start < 10
    assert outlet.samples_sent == 4000 and outlet.gaps_sent == 0
