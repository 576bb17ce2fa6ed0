"""Browser dashboard: the goals of the dashboard issue, measured (one Markdown table).

A synthetic stream (8 channels at 2 kHz by default, with twitches and spasms)
is paced at real time through the pipeline and the dashboard sink, in this
process; viewers are a real headless Chromium page (Debian's ``chromium``
driven by Playwright) and plain WebSocket clients in a separate process.

    python benchmarks/web.py                  # 60 s per phase
    python benchmarks/web.py --duration 600   # the 10-minute memory check

Phases: (1) the pipeline alone, paced, then unpaced; (2) the dashboard with one
Chromium viewer: frames drawn per second, alert latency (from the moment the
pipeline's thread hands the chunk with the alert to the sink, to the page
painted with the banner), CPU of the server thread and of the sink, memory of
this process and of the page over time; (3) the dashboard with ten WebSocket
viewers: the pipeline's per-chunk time and its unpaced speed against (1).
A measurement, not a test: it exits 0 whatever the verdicts.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # single-core figures: set before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from emg_pipeline import Chunk, Pipeline, run, simulate  # noqa: E402
from emg_pipeline.web import WebSink  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHUNK_S = 0.020
GOALS = {"fps": 50.0, "alert_ms": 150.0, "cpu_share": 0.10}
_TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ helpers
class TimedPipeline(Pipeline):
    """A pipeline that keeps the wall-clock time of every ``process`` call."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.times: list[float] = []

    def process(self, chunk):  # type: ignore[override]
        start = time.perf_counter()
        result = super().process(chunk)
        self.times.append(time.perf_counter() - start)
        return result


def paced(signal: np.ndarray, fs: float, chunk_s: float = CHUNK_S) -> Iterator[Chunk]:
    """Chunks of ``signal`` at real-time pace (the way a board delivers them)."""
    step = max(1, round(chunk_s * fs))
    start = time.monotonic()
    for first in range(0, signal.shape[0], step):
        due = start + (first + step) / fs
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield Chunk(signal[first : first + step], fs, first)


def unpaced(signal: np.ndarray, fs: float, chunk_s: float = CHUNK_S) -> Iterator[Chunk]:
    step = max(1, round(chunk_s * fs))
    for first in range(0, signal.shape[0], step):
        yield Chunk(signal[first : first + step], fs, first)


def thread_cpu_s(native_id: int | None) -> float:
    """CPU seconds of one thread of this process (Linux /proc)."""
    if native_id is None:
        return math.nan
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def slope_per_10min(times: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` over ``times`` (s), per 10 minutes."""
    if len(times) < 3:
        return math.nan
    t = np.asarray(times) - times[0]
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 3:
        return math.nan
    return float(np.polyfit(t[ok], v[ok], 1)[0] * 600.0)


def chunk_stats(times: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile of per-chunk times, in microseconds (first 50 skipped)."""
    x = np.asarray(times[50:] if len(times) > 100 else times) * 1e6
    return float(np.median(x)), float(np.percentile(x, 95))


class TimedSink(WebSink):
    """The dashboard sink, with the CPU time its ``update`` costs the pipeline's thread."""

    cpu_s = 0.0

    def update(self, result):  # type: ignore[override]
        start = time.thread_time()
        super().update(result)
        self.cpu_s += time.thread_time() - start


# ----------------------------------------------------------------------------- phases
def unpaced_speeds(signal: np.ndarray, fs: float, channels: Sequence[str], sinks: list,
                   repeats: int) -> tuple[float, float]:
    """Best of ``repeats`` unpaced runs: (whole loop, pipeline's own) in x real time."""
    loop, own = [], []
    for _ in range(repeats):
        pipe = TimedPipeline(fs, channels, unit="uV")
        start = time.perf_counter()
        run(unpaced(signal, fs), pipe, sinks)
        seconds = signal.shape[0] / fs
        loop.append(seconds / (time.perf_counter() - start))
        own.append(seconds / sum(pipe.times))
    return max(loop), max(own)


class RssSampler(threading.Thread):
    """This process's RSS once a second, in a daemon thread."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.samples.append((time.monotonic() - self.t0, rss_mb()))

    def slope(self, warm_s: float) -> float:
        steady = [(t, v) for t, v in self.samples if t > warm_s]
        return slope_per_10min([t for t, _ in steady], [v for _, v in steady])


def phase_alone(signal: np.ndarray, fs: float, channels: Sequence[str], duration: float,
                repeats: int) -> dict[str, float]:
    n = round(duration * fs)
    pipe = TimedPipeline(fs, channels, unit="uV")
    sampler = RssSampler()
    sampler.start()
    run(paced(signal[:n], fs), pipe, [])
    sampler.stop.set()
    med, p95 = chunk_stats(pipe.times)
    loop, own = unpaced_speeds(signal, fs, channels, [], repeats)
    return {"chunk_median_us": med, "chunk_p95_us": p95, "fast_x": loop, "own_x": own,
            "rss_slope": sampler.slope(max(10.0, 0.2 * duration))}


def phase_browser(signal: np.ndarray, fs: float, channels: Sequence[str],
                  duration: float) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    n = round(duration * fs)
    sink = TimedSink("127.0.0.1:0", linger=True)   # the page keeps its figures after the end
    url = sink.start()
    server_tid = sink.server._thread.native_id if sink.server and sink.server._thread else None
    pipe = TimedPipeline(fs, channels, unit="uV")
    samples: list[dict[str, float]] = []
    with sync_playwright() as p:
        # a garbage collection before each heap reading: the heap kept, not the GC's timing
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu",
                                          "--js-flags=--expose-gc",
                                          "--enable-precise-memory-info"])
        page = browser.new_context(viewport={"width": 1600, "height": 1000},
                                   bypass_csp=True).new_page()
        page.goto(url)
        page.wait_for_function("() => window.emgDashboard !== undefined", timeout=15000)
        worker = threading.Thread(target=lambda: run(paced(signal[:n], fs), pipe, [sink]),
                                  daemon=True)
        cpu0, wall0, sink0 = thread_cpu_s(server_tid), time.monotonic(), sink.cpu_s
        worker.start()
        tick = 0
        while worker.is_alive():
            worker.join(1.0)
            tick += 1
            collect = "true" if tick % 10 == 0 else "false"
            stats = page.evaluate(
                "() => { const s = window.emgDashboard.stats;"
                f" if ({collect} && window.gc) window.gc();"
                " return {draws: s.drawsPerSecond,"
                " frames: s.framesReceived, drawMs: s.drawMs, gaps: s.seqGaps,"
                f" heap: {collect} && performance.memory ? performance.memory.usedJSHeapSize"
                " : null}; }")
            samples.append({"t": time.monotonic() - wall0, "rss": rss_mb(),
                            "server_cpu": thread_cpu_s(server_tid) - cpu0,
                            "sink_cpu": sink.cpu_s - sink0, **stats})
        wall = time.monotonic() - wall0
        server_cpu = thread_cpu_s(server_tid) - cpu0
        final = page.evaluate("() => window.emgDashboard.stats")
        page.screenshot(path=str(Path(os.environ.get("TMPDIR", "/tmp")) / "web-bench.png"))
        browser.close()
    sink.stop()
    # warm-up (imports, first allocations, the page's first GC cycles) is left out
    warm = max(10.0, 0.2 * duration)
    steady = [s for s in samples if s["t"] > warm] or samples
    draws = [s["draws"] for s in samples if s["t"] > 5.0] or [s["draws"] for s in samples]
    latencies = final.get("alertLatencyMs", [])
    med, p95 = chunk_stats(pipe.times)
    heap = [s["heap"] / 2**20 if s.get("heap") else math.nan for s in samples]
    first_heap = next((i for i, s in enumerate(samples) if s["t"] > warm and s.get("heap")),
                      len(samples) - 1)
    last_heap = max((i for i, s in enumerate(samples) if s.get("heap")), default=len(samples) - 1)
    return {
        "wall_s": wall, "draws_mean": statistics.fmean(draws) if draws else math.nan,
        "draws_min": min(draws) if draws else math.nan,
        "frames_per_s": final["framesReceived"] / wall, "seq_gaps": final["seqGaps"],
        "draw_ms": final.get("drawMs", math.nan),
        "alerts": len(latencies),
        "alert_median_ms": statistics.median(latencies) if latencies else math.nan,
        "alert_p95_ms": float(np.percentile(latencies, 95)) if latencies else math.nan,
        "alert_max_ms": max(latencies) if latencies else math.nan,
        "server_cpu_share": server_cpu / wall,
        "sink_cpu_share": samples[-1]["sink_cpu"] / wall if samples else math.nan,
        "rss_start": steady[0]["rss"], "rss_end": steady[-1]["rss"],
        "rss_slope": slope_per_10min([s["t"] for s in steady], [s["rss"] for s in steady]),
        "heap_start": heap[first_heap], "heap_end": heap[last_heap],
        "heap_slope": slope_per_10min([s["t"] for s in steady],
                                      heap[samples.index(steady[0]):]),
        "memory_from_s": warm,
        "chunk_median_us": med, "chunk_p95_us": p95,
    }


_CLIENTS = textwrap.dedent("""
    import asyncio, json, os, sys, time
    from websockets.asyncio.client import connect

    os.nice(19)   # the viewers stand for other devices: they take only CPU left over

    async def viewer(url, stop, out):
        frames = size = 0
        try:
            async with connect(url, max_size=None, compression=None) as ws:
                while time.monotonic() < stop:
                    try:
                        m = await asyncio.wait_for(ws.recv(),
                                                   timeout=max(0.01, stop - time.monotonic()))
                    except asyncio.TimeoutError:
                        break
                    if isinstance(m, bytes):
                        frames += 1
                        size += len(m)
        except Exception:   # the server closed: the run is over
            pass
        out.append((frames, size))

    async def main(url, n, seconds):
        stop = time.monotonic() + seconds
        out = []
        await asyncio.gather(*(viewer(url, stop, out) for _ in range(n)))
        print(json.dumps({"frames": [f for f, _ in out], "bytes": [b for _, b in out],
                          "cpu_s": time.process_time()}))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
""")


def phase_viewers(signal: np.ndarray, fs: float, channels: Sequence[str], duration: float,
                  n_viewers: int, repeats: int) -> dict[str, object]:
    n = round(duration * fs)
    sink = TimedSink("127.0.0.1:0", linger=True)   # one dashboard serves every run below
    url = sink.start().replace("http://", "ws://") + "ws"
    server_tid = sink.server._thread.native_id if sink.server and sink.server._thread else None
    none_loop, none_own = unpaced_speeds(signal, fs, channels, [sink], repeats)
    bare_loop, bare_own = unpaced_speeds(signal, fs, channels, [], repeats)   # same process
    fast_s = repeats * signal.shape[0] / fs / 100.0 + 30.0   # generous: unpaced runs follow
    clients = subprocess.Popen([sys.executable, "-c", _CLIENTS, url, str(n_viewers),
                                str(duration + fast_s + 5.0)],
                               stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(sink.hub.viewers) < n_viewers and time.monotonic() < deadline:
        time.sleep(0.05)
    connected = len(sink.hub.viewers)
    pipe = TimedPipeline(fs, channels, unit="uV")
    cpu0, t0 = thread_cpu_s(server_tid), time.monotonic()
    run(paced(signal[:n], fs), pipe, [sink])
    wall = time.monotonic() - t0
    server_share = (thread_cpu_s(server_tid) - cpu0) / wall
    med, p95 = chunk_stats(pipe.times)
    cpu1, t1 = thread_cpu_s(server_tid), time.monotonic()
    loop, own = unpaced_speeds(signal, fs, channels, [sink], repeats)
    fast_server_share = (thread_cpu_s(server_tid) - cpu1) / (time.monotonic() - t1)
    sink.stop()
    out, _ = clients.communicate(timeout=duration + fast_s + 60)
    received = json.loads(out) if out.strip() else {"frames": [], "bytes": [], "cpu_s": math.nan}
    return {"connected": connected, "chunk_median_us": med, "chunk_p95_us": p95,
            "fast_x": loop, "own_x": own, "none_fast_x": none_loop, "none_own_x": none_own,
            "bare_fast_x": bare_loop, "bare_own_x": bare_own,
            "server_cpu_share": server_share,
            "fast_server_cpu_share": fast_server_share,
            "clients_cpu_s": received.get("cpu_s", math.nan),
            "frames_min": min(received["frames"] or [0]),
            "frames_max": max(received["frames"] or [0])}


# ------------------------------------------------------------------------------- main
def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**FAIL**")


def fmt(v: float, spec: str = ".1f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else \
        format(v, spec)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=60.0,
                   help="seconds of paced stream per phase (default 60; 600 for the "
                        "10-minute memory goal)")
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--fs", type=float, default=2000.0)
    p.add_argument("--viewers", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="unpaced runs per case, best kept")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--only", choices=("browser", "alone", "viewers"), default=None,
                   help="run one phase only and print its figures as JSON (e.g. the "
                        "10-minute memory check of the page, or of the pipeline alone)")
    args = p.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"no browser at {CHROMIUM}: apt-get install chromium (the browser phase is "
              "skipped)", file=sys.stderr)
    rec = simulate(np.random.default_rng(args.seed), fs=args.fs,
                   duration_s=max(args.duration, 120.0), n_channels=args.channels)
    signal, channels = rec.signal, tuple(rec.channels)
    truth = rec.truth
    n_spasms = int(((truth["label"] == "spasm") & (truth["onset_s"] < args.duration - 2.5)).sum())
    print(f"{args.channels} channels at {args.fs:g} Hz, {args.duration:g} s per phase, "
          f"{n_spasms} simulated spasms in it; CPUs: {os.cpu_count()}", file=sys.stderr)
    # warm up the compiled kernels and the imports
    run(unpaced(signal[: round(5 * args.fs)], args.fs), Pipeline(args.fs, channels, unit="uV"))

    browser: dict[str, object] = {}
    if args.only is not None:
        if args.only == "alone":
            figures = phase_alone(signal, args.fs, channels, args.duration, args.repeats)
        elif args.only == "browser":
            figures = phase_browser(signal, args.fs, channels, args.duration)
        else:
            figures = phase_viewers(signal, args.fs, channels, args.duration, args.viewers,
                                    args.repeats)
        print(json.dumps(figures, indent=2, default=str))
        return 0
    print("phase 1: pipeline alone", file=sys.stderr)
    alone = phase_alone(signal, args.fs, channels, args.duration, args.repeats)
    if Path(CHROMIUM).exists():
        print("phase 2: one Chromium viewer", file=sys.stderr)
        browser = phase_browser(signal, args.fs, channels, args.duration)
    print(f"phase 3: {args.viewers} WebSocket viewers", file=sys.stderr)
    many = phase_viewers(signal, args.fs, channels, args.duration, args.viewers, args.repeats)

    g = GOALS
    b = browser
    cpu = (b.get("server_cpu_share", math.nan) + b.get("sink_cpu_share", math.nan)) \
        if b else math.nan
    rows = [
        ("frames drawn per second (headless Chromium)", f"≥ {g['fps']:g}",
         f"{fmt(b.get('draws_mean', math.nan))} mean, {fmt(b.get('draws_min', math.nan), '.0f')}"
         f" min ({fmt(b.get('frames_per_s', math.nan))} frames/s received, "
         f"{fmt(b.get('draw_ms', math.nan))} ms per draw)" if b else "n/a",
         verdict(b["draws_mean"] >= g["fps"]) if b else "n/a"),
        ("alert shown after the pipeline emits it", f"≤ {g['alert_ms']:g} ms",
         f"median {fmt(b.get('alert_median_ms', math.nan), '.0f')} ms, p95 "
         f"{fmt(b.get('alert_p95_ms', math.nan), '.0f')} ms, max "
         f"{fmt(b.get('alert_max_ms', math.nan), '.0f')} ms ({b.get('alerts', 0)} alerts)"
         if b else "n/a",
         verdict(b["alert_p95_ms"] <= g["alert_ms"]) if b and b.get("alerts") else "n/a"),
        ("CPU of serving one viewer (server thread + sink)", f"≤ {g['cpu_share']:.0%} of a core",
         f"{fmt(100 * cpu)} % (server {fmt(100 * b.get('server_cpu_share', math.nan))} %, "
         f"sink {fmt(100 * b.get('sink_cpu_share', math.nan))} %)" if b else "n/a",
         verdict(cpu <= g["cpu_share"]) if b else "n/a"),
        ("memory over time after warm-up (this process's RSS; the page's JS heap after GC)",
         "flat",
         f"RSS {fmt(b.get('rss_start', math.nan))} → {fmt(b.get('rss_end', math.nan))} MB "
         f"({fmt(b.get('rss_slope', math.nan), '+.1f')} MB/10 min); heap "
         f"{fmt(b.get('heap_start', math.nan))} → {fmt(b.get('heap_end', math.nan))} MB "
         f"({fmt(b.get('heap_slope', math.nan), '+.1f')} MB/10 min); the pipeline alone: RSS "
         f"{fmt(alone['rss_slope'], '+.1f')} MB/10 min" if b else "n/a",
         # flat: no more growth than the pipeline's own, and a page heap that does not climb
         verdict(b["rss_slope"] <= max(0.0, alone["rss_slope"]) + 5.0
                 and abs(b["heap_slope"]) < 5.0)
         if b and math.isfinite(b["rss_slope"]) and math.isfinite(b["heap_slope"])
         and math.isfinite(alone["rss_slope"]) else "n/a"),
        (f"{args.viewers} viewers: pipeline time per 20 ms chunk", "unchanged",
         f"median {fmt(many['chunk_median_us'], '.0f')} µs (alone "
         f"{fmt(alone['chunk_median_us'], '.0f')}), p95 {fmt(many['chunk_p95_us'], '.0f')} µs "
         f"(alone {fmt(alone['chunk_p95_us'], '.0f')}); {many['connected']} connected, "
         f"{many['frames_min']}-{many['frames_max']} frames each, server thread "
         f"{fmt(100 * many['server_cpu_share'])} % of a core",
         verdict(many["chunk_median_us"] <= 1.25 * alone["chunk_median_us"])),
        (f"{args.viewers} viewers: the pipeline's own speed, unpaced", "unchanged",
         f"{fmt(many['own_x'], '.0f')}x real time with {args.viewers} viewers, "
         f"{fmt(many['none_own_x'], '.0f')}x with none, {fmt(many['bare_own_x'], '.0f')}x without "
         f"the dashboard (time inside Pipeline.process; best of {args.repeats}, one process)",
         verdict(many["own_x"] >= 0.8 * many["bare_own_x"])),
        (f"{args.viewers} viewers: whole loop, unpaced (pipeline + dashboard sink)", "(context)",
         f"{fmt(many['fast_x'], '.0f')}x real time with {args.viewers} viewers, "
         f"{fmt(many['none_fast_x'], '.0f')}x with none, {fmt(many['bare_fast_x'], '.0f')}x "
         f"without the dashboard; server thread {fmt(100 * many['fast_server_cpu_share'])} % "
         f"of a core; the viewers' process, on the same {os.cpu_count()} cores, used "
         f"{fmt(many['clients_cpu_s'])} s of CPU", "n/a"),
    ]
    print(f"\nDashboard benchmark: {args.channels} channels at {args.fs:g} Hz, "
          f"{args.duration:g} s paced per phase, {CHUNK_S * 1000:g} ms chunks, "
          f"{os.cpu_count()} CPUs\n")
    print("| goal | target | measured | verdict |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"alone": alone, "browser": browser,
                                               "viewers": many}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
