"""Fault benchmark: an emulated board's faults against what the BLE source counts.

Each case streams ``--minutes`` of board time from an emulated board (a bumble
peripheral on the in-process virtual link, paced ``--speed`` times faster than
real time) through :class:`~emg_pipeline.sources.ble.BleSource` and
:func:`~emg_pipeline.run.run_async` into a :class:`~emg_pipeline.Pipeline`, a
:class:`~emg_pipeline.sinks.RecordingSink` (a temporary BDF+ file, read back at
the end) and, with ``--episodes``, an episode file. The board injects one kind
of fault per case (``everything`` injects them all), keeps the exact books
(:class:`~emg_pipeline.emulation.board.FaultCounts`) and stops sending after
the case's board time; the run ends once every notification it sent was
received and placed. The table compares the source's counts with the truth:

* lost packets = dropped + corrupted + reordered + stalled packets (+ packets
  that went by during an outage, when the board's counter keeps running); a
  swapped pair is one lost packet (its successor came first and marked the
  gap) and one late packet (counted with the duplicates, dropped);
* samples received = the board's samples elapsed minus everything lost: none
  invented, none dropped; the timeline (received + marked lost) equals the
  board's samples elapsed, exactly when every gap is measured by the counter;
  a board that restarts its counter on a new connection (``nus_emg``) has its
  outages measured by the host's clock (the table gives the error);
* the recording holds the same lost samples and reconnects as annotations.

A board whose clock runs fast (``fast-clock``) must not make the source invent
or drop samples: the timeline stays the board's sample clock, and
``early_packets`` counts the packets that came ahead of the nominal rate.

Then a soak: ``--soak-hours`` (default 24) of board time with every fault at
once, RSS sampled every stream hour; it prints the peak RSS and the slope after
the first hour in MB per stream hour (goal <= 1). ``--soak-mode ble`` runs it
through the BLE emulation (as fast as ``--soak-speed``); ``direct`` feeds the
board's notifications straight into the packet assembler with synthetic
receive times (the board's own clock; disconnects as outages of
``--outage-s``), then the same pipeline and sinks, as ``benchmarks/boards.py``
does; ``auto`` (default) picks BLE when the cases show it can stream the soak
within ``--soak-budget-min`` minutes, else direct. The output says which ran.

    python benchmarks/faults.py                           # every case, 1 min each, 24 h soak
    python benchmarks/faults.py --case storm --skip-soak
    python benchmarks/faults.py --skip-soak --minutes 2 --speed 10

A benchmark, not a test: it prints what it measured and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import re
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emg_pipeline import Chunk, Pipeline
from emg_pipeline.emulation import BoardStream, board_signal
from emg_pipeline.profiles import FirmwareProfile, Timing, load_profile
from emg_pipeline.run import run, run_async
from emg_pipeline.sinks import RecordingSink
from emg_pipeline.sinks.episodes import EpisodeFile
from emg_pipeline.sources.ble import PacketAssembler, StreamStats
from emg_pipeline.sources.formats import open_recording

# --------------------------------------------------------------------------- cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One fault scenario: the board, its stream faults and its link faults."""

    name: str
    profile: str = "nus_emg"
    stream: dict[str, Any] = dataclasses.field(default_factory=dict)
    rate: float = 1.0
    disconnect_every_s: float | None = None
    #: stall longer than the source's silence timeout (the source reconnects)
    long_stall: bool = False
    what: str = ""


CASES: tuple[Case, ...] = (
    Case("clean", what="no fault"),
    Case("loss-bursts", stream={"burst": 0.01, "burst_length": (2, 12)},
         what="bursts of 2-12 lost packets"),
    Case("duplicates", stream={"duplicate": 0.05}, what="5% of packets sent twice"),
    Case("reordered", stream={"reorder": 0.05}, what="5% of packets swapped with the next"),
    Case("malformed", stream={"malformed": 0.03}, what="3% of packets corrupted"),
    Case("fast-clock", rate=2.0, what="notifications at twice the nominal rate"),
    Case("stall", stream={"stall_every_s": 20.0, "stall_s": 3.0},
         what="silent 3 s every 20 s, under the silence timeout"),
    Case("stall-timeout", long_stall=True, stream={"stall_every_s": 15.0},
         what="silent past the silence timeout every 15 s: the source reconnects"),
    Case("storm", disconnect_every_s=6.0, what="10 disconnects a minute (counter restarts)"),
    Case("storm-umyo", profile="umyo", disconnect_every_s=6.0,
         what="10 disconnects a minute (counter runs on)"),
    Case("everything", stream={"loss": 0.01, "burst": 0.005, "burst_length": (2, 12),
                               "duplicate": 0.02, "reorder": 0.02, "malformed": 0.01,
                               "stall_every_s": 25.0, "stall_s": 2.0},
         disconnect_every_s=6.0, what="all of the above but the fast clock, at once"),
)


def fast(name: str) -> FirmwareProfile:
    """A bundled profile without its settle waits (the emulated board needs none)."""
    return dataclasses.replace(load_profile(name), timing=Timing())


# --------------------------------------------------------------------------- memory


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    """Resident set size now, in MB (psutil if installed, else /proc, else the peak)."""
    try:
        import psutil
    except ImportError:
        kb = _status_kb("VmRSS")
        if kb is None:
            kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb / 1024.0
    return float(psutil.Process().memory_info().rss) / 2**20


def reset_peak() -> bool:
    """Reset the kernel's peak RSS of this process (Linux), so a case measures its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """Peak RSS since the last :func:`reset_peak` (else of the whole process), in MB."""
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


# --------------------------------------------------------------------------- problems


class Problems(logging.Handler):
    """Counts exceptions: raised by a run, left in a task, or logged as errors."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.items: list[str] = []
        self.notes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.items.append(f"log {record.name}: {record.getMessage()}"[:300])

    def loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self.items.append(f"loop: {context.get('message')} {exc!r}"[:300])

    def raised(self, exc: BaseException) -> None:
        self.items.append("raised: " + "".join(
            traceback.format_exception_only(type(exc), exc)).strip()[:300])


# --------------------------------------------------------------------------- truth


@dataclasses.dataclass
class Outcome:
    """One run: the truth, what the source counted, what the recording holds."""

    case: Case
    mode: str
    board_seconds: float
    wall_s: float
    truth: dict[str, int]
    stats: dict[str, int]
    recording: dict[str, int]
    problems: list[str]
    notes: list[str]
    peak_mb: float
    checks: dict[str, tuple[int, int]]   # what: (got, want)
    estimated_error: int | None          # samples, for outages measured by time
    by_time: bool                        # outages measured on the host clock

    @property
    def exact(self) -> bool:
        return all(got == want for got, want in self.checks.values())


def truth_of(stream: BoardStream, start_sample: int, start_position: int,
             connections: int, notifications: int) -> dict[str, int]:
    """The board's books for a run that started at the given positions."""
    f = stream.faults
    return {
        "packets": stream.position - start_position,
        "notifications": notifications,
        "elapsed": stream.sample_position - start_sample,
        "dropped": f.packets_dropped, "malformed": f.packets_malformed,
        "duplicated": f.packets_duplicated, "reordered": f.packets_reordered,
        "stalled": f.packets_stalled, "stalled_cut": f.packets_stalled_cut,
        "bursts": f.bursts, "stalls": f.stalls,
        "samples_dropped": f.samples_dropped, "samples_stalled": f.samples_stalled,
        "samples_reordered": f.samples_reordered, "samples_skipped": f.samples_skipped,
        "skipped_packets": f.samples_skipped // stream.samples_per_packet,
        "reconnects": connections - 1,
    }


def judge(case: Case, mode: str, profile: FirmwareProfile, truth: dict[str, int],
          stats: StreamStats, recording: dict[str, int], summary_lost: int,
          board_seconds: float, wall_s: float, problems: Problems,
          peak: float) -> Outcome:
    """Compare the source's counts with the board's truth."""
    s = stats
    lost_truth = (truth["samples_dropped"] + truth["samples_stalled"]
                  + truth["samples_reordered"] + truth["samples_skipped"])
    received = truth["elapsed"] - lost_truth
    counter_runs_on = not profile.commands.start   # the counter survives a reconnect
    by_time = truth["reconnects"] > 0 and not counter_runs_on
    by_counter = truth["dropped"] + truth["malformed"] + truth["reordered"] + truth["stalled"]
    if by_time:   # packets withheld or skipped across a reconnect are measured by time
        by_counter -= truth["stalled_cut"]
    else:
        by_counter += truth["skipped_packets"]
    checks = {
        "samples received": (s.samples, received),
        "lost packets": (s.lost_packets, by_counter),
        "malformed": (s.malformed, truth["malformed"]),
        "duplicates": (s.duplicates, truth["duplicated"] + truth["reordered"]),
        "late": (s.late_packets, truth["reordered"]),
        "reconnects": (s.reconnects, truth["reconnects"]),
        "recording lost samples": (recording["lost"], s.lost_samples),
        "recording reconnects": (recording["reconnected"], s.reconnects),
        "pipeline lost samples": (summary_lost, s.lost_samples),
    }
    if case.rate == 1.0:
        checks["early packets"] = (s.early_packets, 0)
    error = None
    if by_time:
        error = s.samples + s.lost_samples - truth["elapsed"]
    else:
        checks["timeline"] = (s.samples + s.lost_samples, truth["elapsed"])
        checks["lost samples"] = (s.lost_samples, lost_truth)
    return Outcome(case, mode, board_seconds, wall_s, truth, s.as_dict(), recording,
                   problems.items, problems.notes, peak, checks, error, by_time)


_LOST = re.compile(r"^lost (\d+) samples$")


def read_back(path: Path) -> dict[str, int]:
    """Lost samples and reconnects annotated in a recording, and its samples."""
    with open_recording(path) as reader:   # the header and annotations, not the samples
        info = reader.info
    texts = [str(t) for t in info.annotations["text"]]
    lost = sum(int(m.group(1)) for t in texts if (m := _LOST.match(t)))
    return {"lost": lost, "reconnected": sum(t == "reconnected" for t in texts),
            "malformed_notes": sum(t == "malformed packets skipped" for t in texts),
            "samples": int(info.n_samples or 0)}


# --------------------------------------------------------------------------- BLE runs


def _stream_kwargs(case: Case, profile: FirmwareProfile, speed: float,
                   silence_s: float) -> dict[str, Any]:
    kwargs = dict(case.stream)
    if case.long_stall:   # longer than the silence timeout in board time
        kwargs["stall_s"] = 3.0 * silence_s * speed
    return kwargs


async def ble_run(case: Case, minutes: float, speed: float, seed: int, workdir: Path,
                  episodes: bool, problems: Problems, *, hourly: list[float] | None = None,
                  deadline_s: float | None = None) -> Outcome:
    """Stream one case from an emulated board through BleSource and run_async."""
    from emg_pipeline.emulation.air import VirtualAir
    from emg_pipeline.emulation.peripheral import EmulatedBoard
    from emg_pipeline.sources.ble import BleSource, ReconnectPolicy, bumble_backend
    from emg_pipeline.sources.ble.bleak_bumble import BumbleCentral

    asyncio.get_running_loop().set_exception_handler(problems.loop_handler)
    profile = fast(case.profile)
    silence_s = 1.0   # host seconds: speed x this in board time
    board_seconds = minutes * 60.0
    air = VirtualAir()
    signal = board_signal(profile, np.random.default_rng(seed), duration_s=120.0)
    stream = BoardStream(profile, signal, np.random.default_rng(seed + 1),
                         **_stream_kwargs(case, profile, speed, silence_s))
    board = EmulatedBoard(air.device("board"), stream, speed=speed, rate=case.rate,
                          disconnect_every_s=case.disconnect_every_s,
                          stop_after_s=board_seconds)
    await board.start()
    central = BumbleCentral(air.device("central"))
    source = BleSource(profile, backend=bumble_backend(central), time_scale=speed,
                       silence_timeout_s=silence_s,
                       reconnect=ReconnectPolicy(backoff_initial_s=0.05, backoff_max_s=0.5,
                                                 give_up_after_s=30.0))
    record = workdir / f"{case.name}.bdf"
    sinks: list[Any] = [RecordingSink(record)]
    if episodes:
        sinks.append(EpisodeFile(workdir / f"{case.name}.csv"))
    pipe = Pipeline(profile.fs, profile.channels, unit=source.unit)
    next_hour = [3600.0 * profile.fs]

    def on_result(result: Any) -> None:
        if hourly is not None and pipe.n_samples >= next_hour[0]:
            hourly.append(rss_mb())
            next_hour[0] += 3600.0 * profile.fs

    async def consume() -> Any:
        async with source:
            return await run_async(source, pipe, sinks, on_result=on_result,
                                   stats=lambda: source.stats.as_dict())

    if deadline_s is None:
        deadline_s = 60.0 + 3.0 * board_seconds / speed
    t0 = time.monotonic()
    summary = None
    task = asyncio.get_running_loop().create_task(consume())
    try:
        async with asyncio.timeout(deadline_s):
            quiet_since: float | None = None
            while not task.done():
                await asyncio.sleep(0.05)
                if not board.state.finished:
                    continue
                # the consumer waits for the next notification: everything received so far
                # was placed and went through the pipeline and the sinks
                if source.stats.packets >= board.state.notifications:
                    break
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 2.0:
                    problems.items.append(
                        f"received {source.stats.packets} of {board.state.notifications} "
                        "notifications")
                    break
    except TimeoutError:
        problems.items.append(f"deadline: {deadline_s:.0f} s passed")
    try:
        if not task.done():
            task.cancel()   # what Ctrl-C does: run_async ends the stream and closes the sinks
        summary = await task
    except BaseException as exc:
        problems.raised(exc)
    finally:
        await board.close()
    if board.state.max_lag_s > 1.0:
        problems.notes.append(f"note: the board fell {board.state.max_lag_s:.1f} s behind its "
                              "clock (pace faster than the link and the consumer)")
    wall = time.monotonic() - t0
    peak = peak_mb()
    starts = board.state.stream_starts
    truth = truth_of(stream, board.state.stream_start_samples[0] if starts else 0,
                     starts[0] if starts else 0, board.state.connections,
                     board.state.notifications)
    recording = read_back(record) if record.exists() else {"lost": -1, "reconnected": -1}
    lost = summary.lost_samples if summary is not None else -1
    return judge(case, "ble", source.profile, truth, source.stats, recording, lost,
                 board_seconds, wall, problems, peak)


# --------------------------------------------------------------------------- direct runs


def direct_chunks(stream: BoardStream, asm: PacketAssembler, board_seconds: float, *,
                  disconnect_every_s: float | None, outage_s: float, restarts_counter: bool,
                  chars: Sequence[str], drain_s: float = 0.02,
                  hourly: list[float] | None = None) -> Iterator[Chunk]:
    """The board's notifications pushed with synthetic receive times (the board's clock).

    A disconnect is an outage of ``outage_s``: the samples that go by are
    skipped, the counter restarts if the board restarts it, and the assembler
    is told of the reconnect, as the BLE source does. The last packet before
    a disconnect and the last two of the run are delivered intact, as the
    emulated peripheral does.
    """
    pps = stream.packets_per_second
    spp_fs = stream.profile.fs
    end = round(board_seconds * pps)
    every = None if disconnect_every_s is None else max(1, round(disconnect_every_s * pps))
    outage = round(outage_s * pps)
    per_drain = max(1, round(drain_s * pps))
    stream.begin()
    next_drop = every
    next_hour = 3600.0 * spp_fs
    since_drain = 0
    while stream.position < end:
        drop = next_drop is not None and stream.position + 1 >= next_drop \
            and stream.position + outage + 3 < end   # packets follow every outage
        clean = drop or stream.position >= end - 2
        notifications = stream.next_packet(clean=clean)
        t = (stream.position - 1) / pps   # a swapped pair comes when its later packet is due
        for index, payload in notifications:
            asm.push(payload, chars[index], t)
        since_drain += 1
        if drop:
            yield from asm.drain()
            stream.skip_to(stream.position + outage)
            if restarts_counter:
                stream.restart_counter()
            stream.begin()
            asm.reconnected()
            next_drop = stream.position + (every or 0)
            since_drain = 0
        if since_drain >= per_drain:
            since_drain = 0
            for chunk in asm.drain():
                yield chunk
                if hourly is not None and (chunk.first_index + chunk.n_samples) >= next_hour:
                    hourly.append(rss_mb())
                    next_hour += 3600.0 * spp_fs
    yield from asm.drain()


def direct_run(case: Case, board_seconds: float, seed: int, workdir: Path, episodes: bool,
               problems: Problems, *, outage_s: float = 1.5,
               hourly: list[float] | None = None) -> Outcome:
    """A case without Bluetooth: the board's packets straight into the assembler."""
    profile = load_profile(case.profile)
    if profile.variants:
        profile = profile.with_variant(profile.select_variant({"software_revision": b"3.0.2"}))
    signal = board_signal(profile, np.random.default_rng(seed), duration_s=120.0)
    kwargs = dict(case.stream)
    stream = BoardStream(profile, signal, np.random.default_rng(seed + 1), **kwargs)
    asm = PacketAssembler(profile, time_scale=1.0)
    record = workdir / f"{case.name}-direct.bdf"
    sinks: list[Any] = [RecordingSink(record)]
    if episodes:
        sinks.append(EpisodeFile(workdir / f"{case.name}-direct.csv"))
    pipe = Pipeline(profile.fs, profile.channels,
                    unit="uV" if profile.scale.calibrated else "counts")
    t0 = time.monotonic()
    summary = None
    try:
        summary = run(direct_chunks(stream, asm, board_seconds,
                                    disconnect_every_s=case.disconnect_every_s,
                                    outage_s=outage_s,
                                    restarts_counter=bool(profile.commands.start),
                                    chars=profile.gatt.notify, hourly=hourly),
                      pipe, sinks, stats=lambda: asm.stats.as_dict())
    except Exception as exc:
        problems.raised(exc)
    wall = time.monotonic() - t0
    peak = peak_mb()
    f = stream.faults
    books = sum(len(x) for x in (f.positions, f.burst_positions, f.burst_lengths,
                                 f.duplicate_positions, f.reorder_positions,
                                 f.stall_positions, f.stall_lengths))
    problems.notes.append(f"kept for the whole run: {len(pipe.gaps)} bridged gaps "
                          f"(Pipeline.gaps), {len(pipe.episodes)} episodes, {books} "
                          "entries of the emulator's fault books")
    truth = truth_of(stream, 0, 0, asm.stats.reconnects + 1, 0)
    truth["notifications"] = asm.stats.packets
    recording = read_back(record) if record.exists() else {"lost": -1, "reconnected": -1}
    lost = summary.lost_samples if summary is not None else -1
    return judge(case, "direct", profile, truth, asm.stats, recording, lost,
                 board_seconds, wall, problems, peak)


def warm_up(workdir: Path) -> None:
    """Load the pipeline's compiled kernels before timing anything (a first chunk is slow)."""
    from emg_pipeline import simulate

    rec = simulate(np.random.default_rng(0), fs=1000.0, duration_s=10.0, n_channels=2)
    pipe = Pipeline(rec.fs, rec.channels, unit="uV")
    path = workdir / "warm-up.bdf"
    run(np.array_split(rec.signal, 20), pipe, [RecordingSink(path)])
    path.unlink()


# --------------------------------------------------------------------------- output


def _row(o: Outcome) -> str:
    t, s = o.truth, o.stats
    wrong = [f"{k} {g} != {w}" for k, (g, w) in o.checks.items() if g != w]
    exact = "yes" if not wrong else "no: " + "; ".join(wrong)
    timeline = s["samples"] + s["lost_samples"]
    if o.estimated_error is not None:
        exact += f" (outages by time: {o.estimated_error:+d} samples)"
    return (f"| {o.case.name} | {o.case.profile} | {t['packets']} | {t['dropped']} "
            f"({t['bursts']} bursts) / {t['duplicated']} / {t['reordered']} / {t['malformed']} "
            f"/ {t['stalled']} ({t['stalls']}) | {s['lost_packets']} / {s['lost_samples']} "
            f"({s['estimated_lost_samples']} by time) / {s['duplicates']} "
            f"({s['late_packets']} late) / {s['malformed']} / {s['reconnects']} "
            f"/ {s['early_packets']} | {exact} | {timeline} / {t['elapsed']} "
            f"| {len(o.problems)} | {o.peak_mb:.0f} | {o.wall_s:.1f} |")


HEADER = ("| case | board | packets sent | dropped (bursts) / duplicated / reordered / corrupted "
          "/ stalled (stalls), truth | source: lost packets / lost samples (by time) / "
          "duplicates (late) / malformed / reconnects / early | exact? | samples on the "
          "timeline / board samples elapsed | exceptions | peak RSS MB | wall s |\n"
          "|---|---|---:|---|---|---|---|---:|---:|---:|")


def slope(hourly: Sequence[float]) -> float:
    """Least-squares slope in MB per hour of the samples after the first hour."""
    y = np.asarray(hourly[1:], dtype=float)
    if y.size < 2:
        return float("nan")
    x = np.arange(y.size, dtype=float)
    return float(np.polyfit(x, y, 1)[0])


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0,
                        help="board time per case, in minutes (default 1)")
    parser.add_argument("--speed", type=float, default=10.0,
                        help="emulated boards run this many times faster than real time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", action="append", default=None, metavar="NAME",
                        choices=[c.name for c in CASES], help="run only this case (repeatable)")
    parser.add_argument("--episodes", action="store_true", help="also write an episode file")
    parser.add_argument("--soak-hours", type=float, default=24.0,
                        help="board time of the soak (default 24 h)")
    parser.add_argument("--skip-soak", action="store_true", help="no soak")
    parser.add_argument("--soak-mode", choices=("auto", "ble", "direct"), default="auto")
    parser.add_argument("--soak-speed", type=float, default=200.0,
                        help="pace of the BLE soak (default 200x real time)")
    parser.add_argument("--soak-budget-min", type=float, default=30.0,
                        help="auto mode: BLE only if the soak fits in this many minutes")
    parser.add_argument("--outage-s", type=float, default=1.5,
                        help="direct mode: board seconds lost at each disconnect")
    parser.add_argument("--quiet-logs", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)   # counted, not printed
    cases = [c for c in CASES if args.case is None or c.name in args.case]
    reset_ok = reset_peak()
    workdir = Path(tempfile.mkdtemp(prefix="emg-faults-"))
    print(f"Fault benchmark: {args.minutes:g} min of board time per case at {args.speed:g}x, "
          f"seed {args.seed}; BLE source on the virtual link, run_async, Pipeline, "
          f"RecordingSink{' and episode file' if args.episodes else ''}. Peak RSS per case "
          f"{'(reset before each)' if reset_ok else '(of the whole process so far)'}.\n")
    warm_up(workdir)
    print(HEADER)
    outcomes = []
    throughput: list[float] = []   # notifications per wall-clock second
    for case in cases:
        problems = Problems()
        logging.getLogger().addHandler(problems)
        reset_peak()
        try:
            outcome = asyncio.run(ble_run(case, args.minutes, args.speed, args.seed, workdir,
                                          args.episodes, problems))
        finally:
            logging.getLogger().removeHandler(problems)
        outcomes.append(outcome)
        throughput.append(outcome.truth["notifications"] / max(outcome.wall_s, 1e-9))
        print(_row(outcome))
        sys.stdout.flush()
    for o in outcomes:
        for p in [*o.problems[:5], *o.notes]:
            print(f"  {o.case.name}: {p}")
    print()
    for c in cases:
        print(f"- {c.name}: {c.what}")
    print(f"\nall exact: {all(o.exact for o in outcomes)}; exceptions: "
          f"{sum(len(o.problems) for o in outcomes)}")
    if not args.skip_soak:
        soak(args, workdir, throughput)
    for path in workdir.iterdir():
        path.unlink()
    workdir.rmdir()
    return 0


def soak(args: argparse.Namespace, workdir: Path, throughput: list[float]) -> None:
    """The long session: every fault at once, RSS every stream hour."""
    case = next(c for c in CASES if c.name == "everything")
    hours = args.soak_hours
    mode = args.soak_mode
    why = ""
    nominal = BoardStream(load_profile(case.profile),
                          board_signal(load_profile(case.profile), np.random.default_rng(0),
                                       duration_s=1.0),
                          np.random.default_rng(0)).packets_per_second
    # the link and the consumer carry at most what the fastest case carried
    sustained = max(throughput) / nominal if throughput else args.speed
    speed = min(args.soak_speed, 0.8 * sustained)
    if mode == "auto":
        need_min = hours * 3600.0 / speed / 60.0
        mode = "ble" if need_min <= args.soak_budget_min else "direct"
        why = (f" (the cases carried at most {max(throughput, default=0):.0f} notifications/s: "
               f"BLE at {speed:.0f}x would need about {need_min:.0f} min, budget "
               f"{args.soak_budget_min:g} min)")
    elif mode == "ble":
        speed = args.soak_speed
    pace = f" at {speed:.0f}x" if mode == "ble" else " (synthetic receive times)"
    print(f"\nSoak: {hours:g} h of board time, case 'everything', mode {mode}{pace}{why}")
    problems = Problems()
    logging.getLogger().addHandler(problems)
    hourly: list[float] = [rss_mb()]
    reset_peak()
    try:
        if mode == "ble":
            outcome = asyncio.run(ble_run(case, hours * 60.0, speed, args.seed,
                                          workdir, args.episodes, problems, hourly=hourly,
                                          deadline_s=hours * 3600.0 / speed * 5 + 120.0))
        else:
            outcome = direct_run(case, hours * 3600.0, args.seed, workdir, args.episodes,
                                 problems, outage_s=args.outage_s, hourly=hourly)
    finally:
        logging.getLogger().removeHandler(problems)
    print(HEADER)
    print(_row(outcome))
    for p in [*outcome.problems[:5], *outcome.notes]:
        print(f"  soak: {p}")
    print(f"\nRSS per stream hour (MB): {' '.join(f'{x:.1f}' for x in hourly)}")
    print(f"peak RSS {outcome.peak_mb:.1f} MB; slope after the first hour "
          f"{slope(hourly):+.3f} MB per stream hour (goal <= 1); wall {outcome.wall_s:.0f} s "
          f"({outcome.board_seconds / max(outcome.wall_s, 1e-9):.0f}x real time); "
          f"exact: {outcome.exact}")


if __name__ == "__main__":
    sys.exit(main())
