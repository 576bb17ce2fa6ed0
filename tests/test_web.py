"""The browser dashboard: frames, backpressure, the gate, marks, the CLI, and a real browser.

Fast tests need no browser: the screen columns against a one-shot reference,
the binary frame format, the hub's bounded queues (a viewer that never reads,
a server loop that is stuck: ``update`` never waits), the token, host, origin
and size checks of a live server, manual marks into the episode file and the
recording, the diary, and the command line. The browser test replays a small
recording with ``--web`` in a subprocess and drives Debian's Chromium with
Playwright: frames arrive, the traces move, the alert appears when the spasm
crosses the boundary, a manual mark reaches the episode file; it saves a
screenshot. It is skipped, with one line saying why, where no browser can be had.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from emg_pipeline import Chunk, Pipeline, simulate
from emg_pipeline.cli import main
from emg_pipeline.errors import ConfigError, MissingDependencyError
from emg_pipeline.run import RunSummary, StreamInfo
from emg_pipeline.sinks.episodes import EpisodeFile, read_episodes
from emg_pipeline.sinks.recording import RecordingSink
from emg_pipeline.sources.formats import read_recording
from emg_pipeline.web import WebSink, decode_frame, encode_frame, parse_web_address
from emg_pipeline.web.frames import SERIES, ColumnRing, MinMaxColumns
from emg_pipeline.web.hub import MAX_INBOX, Viewer

fastapi = pytest.importorskip("fastapi", reason="the web extra is not installed")
websockets_sync = pytest.importorskip("websockets.sync.client")

CHROMIUM = Path("/usr/bin/chromium")


# --------------------------------------------------------------------------- helpers
def _results(seconds: float = 12.0, fs: float = 1000.0, n_channels: int = 2, seed: int = 1,
             chunk: int = 20):
    rec = simulate(np.random.default_rng(seed), fs=fs, duration_s=seconds, n_channels=n_channels)
    pipe = Pipeline(fs, rec.channels, unit="uV")
    parts = [pipe.process(Chunk(rec.signal[a : a + chunk], fs, a))
             for a in range(0, rec.signal.shape[0], chunk)]
    parts.append(pipe.flush())
    return rec, pipe, parts


def _request(port: int, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def _served(pipe: Pipeline, **kwargs: object) -> Iterator[tuple[WebSink, int]]:
    sink = WebSink("127.0.0.1:0", **kwargs)  # type: ignore[arg-type]
    sink.start()
    assert sink.server is not None
    try:
        sink.open(StreamInfo.of(pipe, title="test"))
        yield sink, sink.server.port
    finally:
        sink.stop(0.2)


def _wait(predicate, timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.02)


# ---------------------------------------------------------------------- screen frames
def test_min_max_columns_do_not_depend_on_chunking(rng: np.random.Generator) -> None:
    x = rng.normal(size=(1003, 3))
    x[103:107, 1] = np.nan      # a gap inside a column
    x[200:210, 2] = np.nan      # a whole column without samples
    whole = MinMaxColumns(3, 10)
    lo_ref, hi_ref = whole.process(x)
    parts = MinMaxColumns(3, 10)
    cuts = np.sort(rng.integers(0, x.shape[0], size=40))
    pieces = [parts.process(x[a:b]) for a, b in zip([0, *cuts], [*cuts, x.shape[0]], strict=True)]
    lo = np.concatenate([p[0] for p in pieces])
    hi = np.concatenate([p[1] for p in pieces])
    np.testing.assert_array_equal(lo, lo_ref)
    np.testing.assert_array_equal(hi, hi_ref)
    assert lo.shape == (100, 3)
    blocks = x[:1000].reshape(100, 10, 3)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        np.testing.assert_array_equal(hi, np.nanmax(blocks, axis=1))
    assert np.isnan(hi[20, 2]) and np.isfinite(hi[10, 1])


def test_frame_round_trip_and_bad_frames() -> None:
    columns = np.arange(12, dtype=np.float64).reshape(3, 4)
    columns[1, 2] = np.nan
    blob = encode_frame({"type": "frame", "col0": 5, "n": 4, "series": 3, "ok": "é"}, columns)
    assert blob[:4] == b"EMG1"
    length = int.from_bytes(blob[4:8], "little")
    assert (8 + length) % 4 == 0        # float32 data aligned for a Float32Array view
    header, data = decode_frame(blob)
    assert header["col0"] == 5 and header["ok"] == "é"
    np.testing.assert_array_equal(data, columns.astype(np.float32))
    assert len(blob) == 8 + length + 12 * 4
    for bad in (b"", b"XXXX\x00\x00\x00\x00", blob[:10]):
        with pytest.raises(ValueError):
            decode_frame(bad)
    header, _ = decode_frame(encode_frame({"t": float("nan"), "n": 4, "a": [float("inf")]},
                                          columns))
    assert header["t"] is None and header["a"] == [None]   # never invalid JSON


def test_column_ring_wraps_and_never_joins_a_jump() -> None:
    ring = ColumnRing(2, capacity=5)
    data = np.arange(14.0).reshape(2, 7)
    ring.extend(0, data[:, :3])
    ring.extend(3, data[:, 3:7])
    first, cols = ring.view()
    assert first == 2 and cols.tolist() == [[2, 3, 4, 5, 6], [9, 10, 11, 12, 13]]
    ring.extend(20, data[:, :2])       # columns 7..19 never came
    first, cols = ring.view()
    assert first == 20 and cols.shape == (2, 2)


def test_web_address_parsing() -> None:
    assert parse_web_address("8765").host == "127.0.0.1"
    assert parse_web_address("0.0.0.0:80").loopback is False
    assert parse_web_address("[::1]:0") .loopback is True
    assert parse_web_address("localhost:9000").loopback is True
    for bad in ("", "abc", "1:2:x", "70000", "host:", " :80"):
        with pytest.raises(ConfigError):
            parse_web_address(bad)
    assert WebSink("127.0.0.1:0").token is None
    exposed = WebSink("0.0.0.0:0")
    assert exposed.token and len(exposed.token) >= 16
    assert exposed.url.endswith(f"?token={exposed.token}")


# ---------------------------------------------------------------- sink and hub, no server
def test_sink_columns_status_and_events_match_the_pipeline() -> None:
    rec, pipe, parts = _results(seconds=20.0)
    sink = WebSink("127.0.0.1:0")
    info = StreamInfo.of(pipe, title="sim")
    sink.open(info)
    hub = sink.hub
    for result in parts:
        sink.update(result)
        hub.drain()
    sink.close(RunSummary.of(pipe, info))   # the last columns, and the end
    hub.drain()
    assert not hub._inbox and hub.ended is not None
    first, cols = hub.ring.view()
    assert cols.shape[0] == len(SERIES) * 2
    assert first + cols.shape[1] == hub.ring.end
    # every column of the stream went through, in order, on the column clock
    assert hub.ring.end == round(20.0 / sink.col_s)
    summary_episodes = pipe.episodes
    assert len(hub.episodes) == len(summary_episodes)
    status = hub.status()
    assert sum(c["twitches"] + c["spasms"] for c in status["ch"]) == len(summary_episodes)
    assert status["t"] == pytest.approx(20.0)
    truth_spasms = int((rec.truth["label"] == "spasm").sum())
    assert status["alerts"] >= 1 and truth_spasms >= 1
    # the signal columns hold the conditioned signal's extremes, the envelope its maxima
    env_cols = cols[2::len(SERIES)]
    assert np.nanmax(env_cols) > 0
    assert np.all(cols[0::len(SERIES)] <= cols[1::len(SERIES)] + 1e-6)


def test_a_burst_rejected_as_not_muscle_reaches_the_hub_without_an_episode() -> None:
    # a 24 Hz ringing (a knock's) and a contraction, through the pipeline, sink and hub:
    # the ringing is an end without an episode, kept with the link events, counted nowhere
    rng = np.random.default_rng(4)
    fs = 1000.0
    x = 5.0 * rng.standard_normal((30_000, 1))
    x[10_000:11_500, 0] += 200.0 * np.sin(2 * np.pi * 24.0 * np.arange(1500) / fs)
    x[20_000:21_500, 0] += 200.0 * rng.standard_normal(1500)
    pipe = Pipeline(fs, ["calf"], unit="uV")
    sink = WebSink("127.0.0.1:0")
    info = StreamInfo.of(pipe)
    sink.open(info)
    hub = sink.hub
    for a in range(0, x.shape[0], 20):
        sink.update(pipe.process(Chunk(x[a : a + 20], fs, a)))
        hub.drain()
    sink.update(pipe.flush())
    sink.close(RunSummary.of(pipe, info))
    hub.drain()
    assert len(pipe.rejected) == 1 and len(pipe.episodes) == 1
    (row,) = [e for e in hub.hello()["link"] if e["kind"] == "end"]
    assert "episode" not in row and abs(row["rejected"]["median_freq_hz"] - 24.0) < 4.0
    assert [e["kind"] for e in hub.hello()["episodes"]] == ["end"]   # the contraction
    status = hub.status()["ch"][0]
    assert status["twitches"] + status["spasms"] == 1 and status["state"] == "rest"


def test_signal_columns_are_the_conditioned_signal_or_the_samples() -> None:
    _, pipe, parts = _results(seconds=8.0, chunk=50)
    info = StreamInfo.of(pipe)
    columns = []
    for strip in (False, True):
        sink = WebSink("127.0.0.1:0", rate_hz=1e6)
        sink.open(info)
        for result in parts:
            # a result without the conditioned signal: its samples are drawn
            sink.update(result._replace(band=np.empty((0, 0))) if strip else result)
            sink.hub.drain()     # what the server's loop does (else the inbox sheds columns)
        first, cols = sink.hub.ring.view()
        assert first == 0 and cols.shape[1] == round(8.0 / sink.col_s)
        columns.append(cols)
    n_col = round(sink.col_s * pipe.fs)
    band = np.concatenate([r.band for r in parts[:-1]])
    samples = np.concatenate([r.samples for r in parts[:-1]])
    for cols, drawn in zip(columns, (band, samples), strict=True):
        np.testing.assert_allclose(cols[1::len(SERIES), 0], drawn[:n_col].max(axis=0),
                                   rtol=1e-6)


def test_no_signal_is_the_pipelines_and_said_when_it_starts_and_ends() -> None:
    fs = 1000.0
    rec = simulate(np.random.default_rng(3), fs=fs, duration_s=12.0, n_channels=2)
    x = rec.signal.copy()
    x[4000:8000, 1] = 0.0   # electrode off on the second channel for 4 s
    pipe = Pipeline(fs, rec.channels, unit="uV")
    sink = WebSink("127.0.0.1:0", rate_hz=1e6)
    sink.open(StreamInfo.of(pipe))
    posted: list = []
    sink.hub.post = posted.append   # what the sink hands the server, in order
    flat_frames = 0
    for a in range(0, x.shape[0], 40):
        result = pipe.process(Chunk(x[a : a + 40], fs, a))
        flat_frames += int(result.no_signal[:, 1].sum())
        sink.update(result)
    events = [e for u in posted for e in getattr(u, "events", ())
              if e["kind"] in ("nosignal", "signal")]
    assert [(e["kind"], e["channel"]) for e in events] == [
        ("nosignal", rec.channels[1]), ("signal", rec.channels[1])]
    assert 3.0 < events[1]["duration_s"] < 4.5
    assert flat_frames > 0 and sink._flat_frames[1] == flat_frames


def test_a_viewer_that_never_reads_gets_fewer_frames_but_every_event() -> None:
    viewer = Viewer(max_frames=4)
    for i in range(100):
        events = ({"kind": "end", "i": i},) if i % 10 == 0 else ()
        viewer.push_frame(b"frame%d" % i, events)
    assert len(viewer.frames) == 4 and viewer.frames_dropped == 96
    messages = []
    while (m := viewer.next_message()) is not None:
        messages.append(m)
    carried = json.loads(messages[0])
    assert carried["type"] == "events"
    kept = [e["i"] for e in carried["events"]] + [
        i for i in range(96, 100) if i % 10 == 0]
    assert sorted(kept) == list(range(0, 100, 10))     # no event lost
    assert messages[1:] == [b"frame96", b"frame97", b"frame98", b"frame99"]


def test_update_never_waits_for_a_stuck_server_loop() -> None:
    _, pipe, parts = _results(seconds=30.0, chunk=10)
    sink = WebSink("127.0.0.1:0", rate_hz=1e6)   # a frame per chunk: the most to post
    loop = asyncio.new_event_loop()
    stuck = threading.Event()
    release = threading.Event()

    def block() -> None:
        stuck.set()
        release.wait(30)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        sink.hub.attach(loop)
        loop.call_soon_threadsafe(block)
        assert stuck.wait(5)
        sink.open(StreamInfo.of(pipe))
        times = []
        for result in parts:
            start = time.perf_counter()
            sink.update(result)
            times.append(time.perf_counter() - start)
        assert len(sink.hub._inbox) <= MAX_INBOX + 1       # bounded while the loop is stuck
        assert sink.hub.updates_dropped > 0
        assert max(times) < 0.25 and float(np.median(times)) < 0.01
        release.set()
        done = threading.Event()
        loop.call_soon_threadsafe(done.set)
        assert done.wait(10)
        _wait(lambda: not sink.hub._inbox, 10, "the loop to take the messages")
        # what was shed kept its events: every episode reached the hub
        assert len(sink.hub.episodes) == len(pipe.episodes)
    finally:
        release.set()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_slow_websocket_client_over_a_real_server_is_bounded(tmp_path: Path) -> None:
    _, pipe, parts = _results(seconds=120.0, fs=2000.0, n_channels=8, chunk=40)
    with _served(pipe, max_frames=4, rate_hz=1e6) as (sink, port):
        # a viewer with a tiny receive buffer that reads its first message, then nothing
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with websockets_sync.connect(f"ws://127.0.0.1:{port}/ws", sock=raw,
                                     max_size=None) as slow:
            assert json.loads(slow.recv(timeout=10))["type"] == "hello"
            times = _feed_while_stalled(sink, parts)
            assert float(np.percentile(times, 99)) < 0.05


def _feed_while_stalled(sink: WebSink, parts: list) -> list[float]:
    """Feed every result while one viewer reads nothing; its queue must stay bounded."""
    _wait(lambda: len(sink.hub.viewers) == 1, 5, "the viewer")
    viewer = next(iter(sink.hub.viewers))
    times = []
    for result in parts:
        start = time.perf_counter()
        sink.update(result)
        times.append(time.perf_counter() - start)
        time.sleep(0.0002)     # let the server's thread run: it is the one that stalls
        assert len(viewer.frames) <= viewer.max_frames
    _wait(lambda: viewer.frames_dropped > 0, 10, "frames to be dropped")
    assert len(viewer.frames) <= viewer.max_frames
    return times


# ------------------------------------------------------------------ server: the gate
def test_token_is_required_by_query_header_or_cookie() -> None:
    _, pipe, _ = _results(seconds=3.0)
    token = "token-for-the-test-0123"
    with _served(pipe, token=token) as (_, port):
        status, _, body = _request(port, "GET", "/")
        assert status == 401 and b"token is required" in body
        assert _request(port, "GET", "/api/state?token=wrong-token-000")[0] == 401
        status, headers, body = _request(port, "GET", f"/?token={token}")
        assert status == 200 and b"emg-pipeline" in body
        assert "emg_token=" in headers["set-cookie"] and "samesite=strict" in \
            headers["set-cookie"].lower() and "httponly" in headers["set-cookie"].lower()
        assert headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" in headers
        assert _request(port, "GET", "/api/state", headers={"X-Emg-Token": token})[0] == 200
        assert _request(port, "GET", "/api/state",
                        headers={"Authorization": f"Bearer {token}"})[0] == 200
        assert _request(port, "GET", "/static/app.js",
                        headers={"Cookie": f"other=1; emg_token={token}"})[0] == 200
        with pytest.raises(Exception, match="403"):
            websockets_sync.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10)
        with websockets_sync.connect(f"ws://127.0.0.1:{port}/ws?token={token}",
                                     open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"


def test_sizes_hosts_origins_and_files_are_bounded() -> None:
    _, pipe, _ = _results(seconds=3.0)
    with _served(pipe) as (_, port):
        # request bodies: by Content-Length, and while a chunked body arrives
        status, _, _ = _request(port, "POST", "/api/mark", body=b"x" * 5000,
                                headers={"Content-Type": "application/json"})
        assert status == 413
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.putrequest("POST", "/api/mark")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("Content-Type", "application/json")
        conn.endheaders()
        with contextlib.suppress(OSError):
            for _ in range(6):
                conn.send(b"400\r\n" + b"a" * 1024 + b"\r\n")
            conn.send(b"0\r\n\r\n")
        assert conn.getresponse().status == 413
        conn.close()
        assert _request(port, "GET", "/api/state?" + "a=1&" * 400)[0] == 414
        # DNS rebinding: a page of another name that resolves to this computer
        assert _request(port, "GET", "/", headers={"Host": "evil.example:80"})[0] == 421
        # another site's page may not post marks nor open the stream
        status, _, _ = _request(port, "POST", "/api/mark", body=b"{}", headers={
            "Content-Type": "application/json", "Origin": "http://evil.example"})
        assert status == 403
        with pytest.raises(Exception, match="403"):
            websockets_sync.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10,
                                    origin="http://evil.example")
        # no file system access: only the page's own files, from memory
        for path in ("/static/../app.py", "/static/%2e%2e%2fapp.py", "/static/frames.py",
                     "/static/", "/etc/passwd", "/static/..%2F..%2Fpyproject.toml"):
            assert _request(port, "GET", path)[0] == 404, path
        assert _request(port, "GET", "/static/uPlot.iife.min.js")[0] == 200
        # a WebSocket message beyond the limit closes the connection
        with websockets_sync.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            ws.recv(timeout=10)
            ws.send("x" * 5000)
            with pytest.raises(Exception) as caught:
                for _ in range(50):
                    ws.recv(timeout=10)
            assert "1009" in str(caught.value)


# ----------------------------------------------------------------------------- marks
def test_marks_reach_the_episode_file_and_the_recording(tmp_path: Path) -> None:
    rec, pipe, parts = _results(seconds=10.0)
    episodes = EpisodeFile(tmp_path / "ep.csv")
    recording = RecordingSink(tmp_path / "rec.bdf")
    info = StreamInfo.of(pipe, title="test")
    with _served(pipe, linger=True, rate_hz=1e6) as (sink, port):
        sink.add_mark_target(episodes)
        sink.add_mark_target(recording)
        episodes.open(info)
        recording.open(info)
        half = len(parts) // 2
        for result in parts[:half]:
            for s in (sink, episodes, recording):
                s.update(result)
        _wait(lambda: sink.hub.stream_s > 4.0, 5, "the stream time")

        def post(body: dict[str, object]) -> tuple[int, dict[str, object]]:
            status, _, raw = _request(port, "POST", "/api/mark", body=json.dumps(body).encode(),
                                      headers={"Content-Type": "application/json"})
            return status, json.loads(raw)

        status, answer = post({"note": "felt a cramp", "channel": rec.channels[0]})
        assert status == 202 and answer["mark"]["channel"] == rec.channels[0]
        assert post({"channel": "nope"})[0] == 422
        assert post({"note": "x" * 500})[0] == 422
        assert post({"time_s": -1})[0] == 422
        assert post({"unexpected": 1})[0] == 422
        status, answer = post({"note": "second"})
        assert status in (202, 429)      # a double click within 0.25 s is one mark
        time.sleep(0.3)
        # marks by WebSocket message too
        with websockets_sync.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
            ws.recv(timeout=10)
            ws.send(json.dumps({"type": "mark", "note": "by socket", "ref": 7}))
            reply = None
            for _ in range(200):
                message = ws.recv(timeout=10)
                if isinstance(message, str) and json.loads(message)["type"] in (
                        "mark-ack", "error"):
                    reply = json.loads(message)
                    break
            assert reply is not None and reply["type"] == "mark-ack" and reply["ref"] == 7
        for result in parts[half:-1]:
            for s in (sink, episodes, recording):
                s.update(result)
        # applied in the pipeline's thread at the next chunk: already in the file
        lines = (tmp_path / "ep.csv").read_text().splitlines()
        marks = [line for line in lines if ",mark,manual" in line]
        assert len(marks) >= 2 and marks[0].startswith(rec.channels[0] + ",")
        for s in (sink, episodes, recording):
            s.update(parts[-1])
        summary = RunSummary.of(pipe, info)
        sink.close(summary)            # lingers: the page stays, marks are refused
        recording.close(summary)
        episodes.close(summary)
        assert post({"note": "late"})[0] == 409
    table = read_episodes(tmp_path / "ep.csv")
    assert "mark" not in set(table["label"]) and len(table) == len(pipe.episodes)
    with_marks = read_episodes(tmp_path / "ep.csv", marks=True)
    marked = with_marks[with_marks["label"] == "mark"]
    assert len(marked) >= 2 and set(marked["pattern"]) == {"manual"}
    assert (marked["duration_s"] == 0).all()
    assert {"felt a cramp", "by socket"} <= set(marked["note"])
    assert (with_marks.loc[with_marks["label"] != "mark", "note"] == "").all()
    _, rec_info = read_recording(tmp_path / "rec.bdf")
    texts = rec_info.annotations["text"].tolist()
    assert f"manual mark {rec.channels[0]}: felt a cramp" in texts
    assert any(t == "manual mark: by socket" for t in texts)


def test_diary_flags_come_from_earlier_sessions_and_the_live_one(tmp_path: Path) -> None:
    from emg_pipeline.web import Diary

    for day in (1, 2, 3):
        (tmp_path / f"night{day}.csv").write_text(
            "channel,site,onset_s,onset_time,offset_s,duration_s,label,pattern\n"
            f"ch1,calf,10.0,2024-05-0{day}T23:00:10.000+02:00,16.0,6.0,spasm,tonic\n"
            f"ch1,calf,20.0,2024-05-0{day}T23:00:20.000+02:00,20.0,0.0,mark,manual\n")
    diary = Diary.from_files(sorted(tmp_path.glob("night*.csv")), session="live")
    _, pipe, _ = _results(seconds=12.0)
    from emg_pipeline.sites import SiteMap

    view = diary.build(pipe.episodes, SiteMap(), plots=False)
    kinds = {f["kind"] for f in view.data["flags"]}
    assert "recurring" in kinds
    assert view.data["live_session"] == "live" and not view.plots
    assert view.data["totals"]["spasms"] >= 3       # the marks are not episodes


# ------------------------------------------------------------------------ command line
def test_cli_bad_web_options_are_one_line(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["replay", "--web", "localhost:http", "--fast"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--web" in err[0] and "[HOST:]PORT" in err[0]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["replay", "--fast", "-qq", "--web", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--web 127.0.0.1:{port}: cannot listen there" in err[0]
    assert main(["replay", "--fast", "-qq", "--web", "0", "--web-diary", "missing.csv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.csv" in err[0]
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'emg-pipeline\[web\]'"):
        from emg_pipeline.web import require_web

        require_web()
    assert main(["replay", "--fast", "-qq", "--web", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'emg-pipeline[web]'" in err[0]


def test_serve_replays_into_the_dashboard_and_stops(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "served.csv"
    code = main(["serve", "--speed", "200", "--linger", "0", "--web", "127.0.0.1:0", "-q",
                 "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/ ", err)
    assert "the replay has ended" in err
    assert len(read_episodes(out)) > 10
    assert not any(t.name == "emg-web" for t in threading.enumerate())


def test_replay_with_web_stops_its_server_at_the_end(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["replay", "--fast", "-q", "--web", "0", "--out", str(tmp_path / "e.csv")])
    assert code == 0
    assert "dashboard: http://127.0.0.1:" in capsys.readouterr().err
    assert not any(t.name == "emg-web" for t in threading.enumerate())


# ---------------------------------------------------------------------------- browser
def _write_recording(path: Path, fs: float = 1000.0, seconds: float = 30.0,
                     knock_s: float | None = None) -> None:
    """Two channels at rest, a twitch at 4 s on the back, a spasm from 16 to 23 s on the calf,
    and with ``knock_s`` a knock's 24 Hz ringing (not muscle) on the back from then on."""
    rng = np.random.default_rng(7)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    x = rng.normal(0.0, 3.0, (n, 2))
    spasm = (t >= 16.0) & (t < 23.0)
    x[spasm, 0] += rng.normal(0.0, 45.0, spasm.sum())
    twitch = (t >= 4.0) & (t < 4.25)
    x[twitch, 1] += rng.normal(0.0, 40.0, twitch.sum())
    if knock_s is not None:
        ringing = (t >= knock_s) & (t < knock_s + 1.5)
        x[ringing, 1] += 150.0 * np.sin(2 * np.pi * 24.0 * t[ringing])
    lines = ["time_s,calf_left (uV),lower_back (uV)"]
    lines += [f"{a:.3f},{b:.2f},{c:.2f}" for a, b, c in zip(t, x[:, 0], x[:, 1], strict=True)]
    path.write_text("\n".join(lines) + "\n")


def _browser_or_skip():
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("no browser driver: the playwright package is not installed")
    return sync_playwright


def test_dashboard_in_a_real_browser(tmp_path: Path) -> None:
    sync_playwright = _browser_or_skip()
    recording = tmp_path / "night.csv"
    # long enough that, on a busy machine too, the stream still runs when the mark is made
    _write_recording(recording, seconds=60.0, knock_s=40.0)
    episodes = tmp_path / "night.episodes.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emg_pipeline", "replay", str(recording), "--speed", "2",
         "--web", "127.0.0.1:0", "--out", str(episodes), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            found = re.search(r"dashboard: (http://\S+)", line)
            url = found.group(1) if found else None
        assert url, "the replay did not print the dashboard's address"
        with sync_playwright() as p:
            try:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                            args=["--no-sandbox", "--disable-gpu"], timeout=30000)
            except Exception as exc:   # a broken browser install: say so in one line
                pytest.skip(f"chromium does not start: {str(exc).splitlines()[0]}")
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 860},
                                              bypass_csp=True)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(url, timeout=30000)
                # frames arrive
                page.wait_for_function(
                    "() => window.emgDashboard && window.emgDashboard.stats.framesReceived > 5",
                    timeout=30000)
                assert page.locator(".channel").count() == 2
                # the traces move: the view scrolls and the first chart's pixels change
                snap = ("() => ({x: window.emgDashboard.state.xmax, "
                        "png: document.querySelector('.channel canvas').toDataURL()})")
                before = page.evaluate(snap)
                page.wait_for_timeout(1200)
                after = page.evaluate(snap)
                assert after["x"] > before["x"] + 0.5
                assert after["png"] != before["png"]
                assert page.evaluate("() => window.emgDashboard.stats.framesDrawn") > 10
                # the alert: the spasm from 16 s crosses the 2 s boundary at 18 s
                page.wait_for_selector("#alert:not([hidden])", timeout=30000)
                assert "PROLONGED SPASM" in page.inner_text("#alert")
                assert "calf" in page.inner_text("#alert")
                assert page.title().startswith("⚠ SPASM")
                alerts = page.evaluate("() => window.emgDashboard.stats.alerts")
                assert alerts and alerts[0]["channel"] == "calf_left"
                assert 17.9 <= alerts[0]["time_s"] <= 19.5
                # a manual mark, round trip to the episode file
                page.fill("#mark-note", "felt it")
                page.click("#mark")
                page.wait_for_function(
                    "() => document.getElementById('mark-status').textContent"
                    ".startsWith('Mark recorded')", timeout=15000)
                rows = [line for line in episodes.read_text().splitlines()
                        if ",mark,manual" in line]
                assert len(rows) == 1
                # the knock is listed with the link events, not as an episode
                page.wait_for_function(
                    "() => document.getElementById('linklog').textContent"
                    ".includes('not muscle on')", timeout=30000)
                assert "Hz: a knock or motion), not counted" in page.inner_text("#linklog")
                page.wait_for_timeout(300)
                page.screenshot(path=str(tmp_path / "dashboard.png"))
                assert not errors, errors
            finally:
                browser.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    table = read_episodes(episodes, marks=True)
    assert table.loc[table["label"] == "mark", "note"].tolist() == ["felt it"]
    spasms = table[table["label"] == "spasm"]
    assert len(spasms) == 1 and spasms.iloc[0]["channel"] == "calf_left"
    back = table[table["channel"] == "lower_back"]
    assert not ((back["onset_s"] < 41.5) & (back["offset_s"] > 40.0)).any()   # the knock
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
