"""LSL benchmark: the pipeline's Lab Streaming Layer output, read back by real inlets.

1. **Round trip.** A board of 8 channels at 2 kHz (a synthetic recording with
   ground truth, handed out in 20 ms chunks paced at ``--speed`` times real
   time) -> :class:`~emg_pipeline.Pipeline` -> :class:`~emg_pipeline.sinks.lsl.LslOutlet`
   (conditioned EMG + markers) -> two pylsl inlets (clock-corrected) in
   threads of this process, for ``--duration`` seconds (default 60). Reported:
   samples delivered (every one sent must arrive, none invented), the largest
   error of the received timestamps against the samples' own time
   (``clock_zero + k / fs``; goal <= 1 ms), and each live event's latency:
   when the marker arrived minus when the pipeline emitted it (goal <= 50 ms).
2. **Packet loss.** An emulated board (``nus_emg``: 2 channels at 1 kHz, a
   packet counter) drops 5 % of its packets
   (:class:`~emg_pipeline.emulation.BoardStream`); its notifications go straight
   into the BLE source's packet assembler (no radio), then the pipeline, a
   BDF+ recording (:class:`~emg_pipeline.sinks.RecordingSink`) and the LSL
   outlet; an inlet reads the stream back and its timestamps are placed with
   :class:`~emg_pipeline.sources.lsl.SampleTimeline`. The gaps (count and lost
   samples) of the board's books, the source, the recording's annotations and
   the LSL stream must agree exactly.

    python benchmarks/lsl.py                    # 60 s round trip at real time (about 2 min)
    python benchmarks/lsl.py --duration 20      # shorter
    python benchmarks/lsl.py --speed 4          # paced 4x faster than real time

A benchmark, not a test: it prints Markdown tables of what it measured and exits 0.
Timings are wall-clock and depend on the load of the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emg_pipeline import Chunk, Pipeline, run, simulate
from emg_pipeline.emulation import BoardStream, board_signal
from emg_pipeline.lab.deps import import_pylsl
from emg_pipeline.profiles import load_profile
from emg_pipeline.sinks import RecordingSink
from emg_pipeline.sinks.lsl import LslOutlet
from emg_pipeline.sources.ble import PacketAssembler
from emg_pipeline.sources.formats import read_recording
from emg_pipeline.sources.lsl import SampleTimeline

TIMESTAMP_GOAL_S = 1e-3
LATENCY_GOAL_S = 0.050
RESOLVE_S = 15.0


class EmissionClock:
    """A sink placed before the outlet: the LSL time at which each live event was emitted."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.emitted: dict[tuple[str, str, float], float] = {}

    def open(self, info: object) -> None:
        """Nothing to prepare."""

    def update(self, result: Any) -> None:
        """Note when each event of the chunk leaves the pipeline."""
        if result.events:
            now = self.clock()
            for event in result.events:
                self.emitted[(event.kind, event.channel, round(event.onset_s, 6))] = now

    def close(self, summary: object) -> None:
        """Nothing to release."""


@dataclass
class Received:
    """What an inlet thread received."""

    data: list[np.ndarray] = field(default_factory=list)
    stamps: list[np.ndarray] = field(default_factory=list)
    markers: list[tuple[str, float]] = field(default_factory=list)
    clock_offset_s: float = float("nan")
    error: str = ""

    @property
    def n_samples(self) -> int:
        return sum(len(s) for s in self.stamps)


def _inlet(pylsl: Any, name: str) -> Any:
    found = pylsl.resolve_byprop("name", name, 1, RESOLVE_S)
    if not found:
        raise RuntimeError(f"stream {name} not found")
    inlet = pylsl.StreamInlet(found[0], max_buflen=360, recover=False,
                              processing_flags=pylsl.proc_clocksync)
    inlet.open_stream(RESOLVE_S)
    return inlet


def read_emg(pylsl: Any, name: str, expected: int, out: Received, deadline_s: float) -> None:
    """Pull the EMG stream until ``expected`` samples came (or the deadline)."""
    try:
        inlet = _inlet(pylsl, name)
        out.clock_offset_s = inlet.time_correction(RESOLVE_S)
        end = time.monotonic() + deadline_s
        while out.n_samples < expected and time.monotonic() < end:
            data, ts = inlet.pull_chunk(timeout=0.1, max_samples=65536, as_numpy=True)
            if len(ts):
                out.data.append(data)
                out.stamps.append(np.asarray(ts))
    except Exception as exc:  # reported in the table
        out.error = f"{type(exc).__name__}: {exc}"


def read_markers(pylsl: Any, name: str, out: Received, deadline_s: float) -> None:
    """Pull markers one by one (a blocking pull returns as one arrives) until ``stream_end``."""
    try:
        inlet = _inlet(pylsl, f"{name}-markers")
        inlet.time_correction(RESOLVE_S)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            sample, _ = inlet.pull_sample(timeout=0.2)
            if sample is None:
                continue
            out.markers.append((sample[0], pylsl.local_clock()))
            if '"stream_end"' in sample[0]:
                break
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"


def paced(x: np.ndarray, fs: float, chunk: int, speed: float | None) -> Iterator[np.ndarray]:
    """The board: chunks released when their last sample is due (``speed`` x real time)."""
    start = time.monotonic()
    for a in range(0, x.shape[0], chunk):
        b = min(a + chunk, x.shape[0])
        if speed is not None:
            wait = start + b / fs / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        yield x[a:b]


def _threads(pylsl: Any, name: str, expected: int, budget_s: float
             ) -> tuple[Received, Received, list[threading.Thread]]:
    emg, markers = Received(), Received()
    threads = [threading.Thread(target=read_emg, args=(pylsl, name, expected, emg, budget_s),
                                daemon=True),
               threading.Thread(target=read_markers, args=(pylsl, name, markers, budget_s),
                                daemon=True)]
    for t in threads:
        t.start()
    return emg, markers, threads


def round_trip(duration_s: float, speed: float | None, seed: int) -> list[tuple[str, ...]]:
    """Part 1: 8 channels at 2 kHz through the outlet and back."""
    pylsl = import_pylsl()
    fs, n_ch = 2000.0, 8
    rec = simulate(np.random.default_rng(seed), fs=fs, duration_s=duration_s, n_channels=n_ch)
    name = f"bench-{uuid.uuid4().hex[:8]}"
    n = rec.signal.shape[0]
    budget = duration_s / (speed or 50.0) + 60.0
    emg, markers, threads = _threads(pylsl, name, n, budget)
    clock = EmissionClock(pylsl.local_clock)
    outlet = LslOutlet(name, wait_for_consumers_s=RESOLVE_S)
    pipe = Pipeline(fs, rec.channels, unit="uV")
    started = time.monotonic()
    summary = run(paced(rec.signal, fs, round(0.02 * fs), speed), pipe, [clock, outlet])
    wall = time.monotonic() - started
    for t in threads:
        t.join(budget)
    stamps = np.concatenate(emg.stamps) if emg.stamps else np.empty(0)
    got = stamps.size
    if got and outlet.clock_zero is not None:
        k = np.arange(got)
        error = np.abs(stamps - (outlet.clock_zero + k / fs))
        ts_max, ts_p99 = float(error.max()), float(np.quantile(error, 0.99))
    else:
        ts_max = ts_p99 = float("nan")
    latencies = []
    for text, arrived in markers.markers:
        fields = json.loads(text)
        key = (fields["event"], fields.get("channel"), round(fields.get("onset_s") or 0.0, 6))
        if key in clock.emitted:
            latencies.append(arrived - clock.emitted[key])
    lat = np.asarray(latencies)
    pace = "as fast as possible" if speed is None else f"{speed:g}x real time"
    rows = [
        ("stream", "", f"{n_ch} ch x {fs:g} Hz x {duration_s:g} s, 20 ms chunks, {pace}; "
                       f"wall {wall:.1f} s; {len(summary.episodes)} episodes", ""),
        ("samples delivered", "every sample",
         f"{got} of {outlet.samples_sent} sent ({n} on the board)",
         _verdict(got == outlet.samples_sent == n)),
        ("timestamp error, max (p99)", f"<= {TIMESTAMP_GOAL_S * 1e3:g} ms",
         f"{ts_max * 1e3:.3f} ms ({ts_p99 * 1e3:.3f} ms); clock correction "
         f"{emg.clock_offset_s * 1e6:.0f} us", _verdict(ts_max <= TIMESTAMP_GOAL_S)),
        ("event latency, max (median)", f"<= {LATENCY_GOAL_S * 1e3:g} ms",
         (f"{lat.max() * 1e3:.2f} ms ({np.median(lat) * 1e3:.2f} ms) over {lat.size} events"
          if lat.size else "no event"),
         _verdict(bool(lat.size) and float(lat.max()) <= LATENCY_GOAL_S)),
    ]
    for what, r in (("EMG inlet", emg), ("marker inlet", markers)):
        if r.error:
            rows.append((what, "", r.error, "error"))
    return rows


def board_chunks(stream: BoardStream, asm: PacketAssembler, seconds: float,
                 chars: tuple[str, ...]) -> Iterator[Chunk]:
    """The board's notifications straight into the packet assembler (its own clock)."""
    pps = stream.packets_per_second
    end = round(seconds * pps)
    per_drain = max(1, round(0.02 * pps))
    stream.begin()
    since = 0
    while stream.position < end:
        notifications = stream.next_packet(clean=stream.position >= end - 2)
        t = (stream.position - 1) / pps
        for index, payload in notifications:
            asm.push(payload, chars[index], t)
        since += 1
        if since >= per_drain:
            since = 0
            yield from asm.drain()
    yield from asm.drain()


def packet_loss(duration_s: float, seed: int, loss: float) -> list[tuple[str, ...]]:
    """Part 2: an emulated board losing packets; the gaps everywhere they are seen."""
    pylsl = import_pylsl()
    profile = load_profile("nus_emg")
    signal = board_signal(profile, np.random.default_rng(seed), duration_s=120.0)
    stream = BoardStream(profile, signal, np.random.default_rng(seed + 1), loss=loss)
    asm = PacketAssembler(profile, time_scale=1.0)
    chars = tuple(profile.gatt.notify)
    chunks = list(board_chunks(stream, asm, duration_s, chars))
    received_total = sum(c.n_samples for c in chunks)
    name = f"bench-loss-{uuid.uuid4().hex[:8]}"
    emg, _markers, threads = _threads(pylsl, name, received_total, 120.0)
    with tempfile.TemporaryDirectory() as folder:
        record = Path(folder) / "loss.bdf"
        recorder = RecordingSink(record)
        outlet = LslOutlet(name, signal="raw", wait_for_consumers_s=RESOLVE_S)
        pipe = Pipeline(profile.fs, profile.channels, unit="uV" if profile.scale.calibrated
                        else "counts")
        run(chunks, pipe, [recorder, outlet])
        for t in threads:
            t.join(120.0)
        _, info = read_recording(record)
    notes = info.annotations["text"].astype(str)
    lost_notes = notes[notes.str.startswith("lost ")]
    rec_lost = int(lost_notes.str.split().str[1].astype(int).sum())
    stamps = np.concatenate(emg.stamps) if emg.stamps else np.empty(0)
    line = SampleTimeline(profile.fs)
    line.place(stamps)
    faults = stream.faults
    books = (faults.packets_dropped, faults.samples_dropped)
    src = (asm.stats.loss_events, asm.stats.lost_samples)
    recd = (int(lost_notes.size), rec_lost)
    lsl = (line.loss_events, line.lost_samples)
    exact = src[1] == recd[1] == lsl[1] == books[1] and src[0] == recd[0] == lsl[0]
    rows = [
        ("board", "", f"{profile.name}: {len(profile.channels)} ch x {profile.fs:g} Hz x "
                      f"{duration_s:g} s, {loss * 100:g} % of packets dropped", ""),
        ("board's books", "", f"{books[0]} packets, {books[1]} samples dropped", ""),
        ("source (assembler)", "", f"{src[0]} gaps, {src[1]} samples lost", ""),
        ("recording (BDF+ annotations)", "", f"{recd[0]} gaps, {recd[1]} samples lost", ""),
        ("LSL stream (inlet timestamps)", "same gaps, counted exactly",
         f"{lsl[0]} gaps, {lsl[1]} samples lost; {stamps.size} samples received of "
         f"{outlet.samples_sent} sent", _verdict(exact and stamps.size == outlet.samples_sent)),
    ]
    if emg.error:
        rows.append(("EMG inlet", "", emg.error, "error"))
    return rows


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| measure | goal | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, metavar="S",
                        help="seconds of stream in each part (default 60)")
    parser.add_argument("--speed", type=float, default=1.0, metavar="X",
                        help="pace of the round trip, x real time (default 1; 0: unpaced)")
    parser.add_argument("--loss", type=float, default=0.05, metavar="P",
                        help="share of the emulated board's packets lost (default 0.05)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    speed = None if args.speed <= 0 else args.speed
    print("## Round trip: board -> pipeline -> LSL outlet -> inlet\n")
    print(table(round_trip(args.duration, speed, args.seed)))
    print("\n## Packet loss: the same gaps in the recording and in the LSL stream\n")
    print(table(packet_loss(args.duration, args.seed, args.loss)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
