"""Fault injection against the BLE source: every fault counted exactly, nothing raised.

Short, deterministic versions of the cases of ``benchmarks/faults.py``:

* the emulator's fault injection and its books (pure :class:`BoardStream`);
* the packet assembler fed a faulty board's notifications with exact receive
  times (loss bursts, duplicates, reordered and corrupted packets, stalls, a
  fast clock, disconnect storms, a lagging host), every count checked against
  the board's truth;
* a few end-to-end runs through bleak, :class:`BleSource`, ``run_async``, the
  pipeline and the recording sink, where only what does not depend on the
  host's clock is asserted exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("bumble")

from emg_pipeline import Chunk, ChunkFlags, Pipeline
from emg_pipeline.emulation import BoardStream, board_signal
from emg_pipeline.emulation.air import VirtualAir
from emg_pipeline.emulation.peripheral import EmulatedBoard
from emg_pipeline.errors import ConfigError
from emg_pipeline.profiles import FirmwareProfile, Timing, load_profile
from emg_pipeline.run import RunSummary, run_async
from emg_pipeline.sinks import RecordingSink
from emg_pipeline.sources.ble import BleSource, PacketAssembler, ReconnectPolicy, bumble_backend
from emg_pipeline.sources.ble.bleak_bumble import BumbleCentral
from emg_pipeline.sources.formats import open_recording

# each end-to-end test runs an emulated link in an event loop: a deadline from a thread
pytestmark = pytest.mark.timeout(120, method="thread")

SPEED = 10.0


def profile_of(name: str, firmware: int | None = None) -> FirmwareProfile:
    profile = load_profile(name)
    if profile.variants:
        revision = b"2.0.0" if firmware == 2 else b"3.0.2"
        profile = profile.with_variant(profile.select_variant({"software_revision": revision}))
    return profile


def make_stream(name: str, seed: int = 0, firmware: int | None = None,
                **faults: Any) -> tuple[FirmwareProfile, BoardStream]:
    profile = profile_of(name, firmware)
    signal = board_signal(profile, np.random.default_rng(seed), duration_s=20.0)
    return profile, BoardStream(profile, signal, np.random.default_rng(seed + 1),
                                firmware=firmware, **faults)


def expected_samples(profile: FirmwareProfile, counts: np.ndarray) -> np.ndarray:
    """What the decoder gives for the board's counts (documented scales)."""
    x = counts.astype(np.float64)
    if profile.decoder == "ganglion":
        x = np.floor_divide(counts, 128).astype(np.float64) * 128
    if profile.scale.uv_per_count is not None:
        x = (x - profile.scale.zero) * profile.scale.uv_per_count
    return x


@dataclasses.dataclass
class Fed:
    asm: PacketAssembler
    stream: BoardStream
    chunks: list[Chunk]
    drops: int


def feed(profile: FirmwareProfile, stream: BoardStream, n_packets: int, *,
         rate: float = 1.0, disconnect_every: int | None = None, outage: int = 60,
         lag_before_drop_s: float = 0.0) -> Fed:
    """Push a board's notifications into an assembler with exact receive times.

    Each packet is received when it is sent on the board's clock (``rate``
    times the nominal packet rate). With ``disconnect_every``, the link drops
    after that many packets: the last one is delivered intact, ``outage``
    packets go by, the counter restarts if the board restarts it, and the
    assembler is told of the reconnect; ``lag_before_drop_s`` delays the
    receive times of the packets of the last second before each drop (a
    host that lags behind when the link drops).
    """
    asm = PacketAssembler(profile)
    pps = stream.packets_per_second * rate
    chars = profile.gatt.notify
    stream.begin()
    chunks: list[Chunk] = []
    drops = 0
    next_drop = disconnect_every
    while stream.position < n_packets:
        drop = next_drop is not None and stream.position + 1 >= next_drop \
            and stream.position + outage + 3 < n_packets   # packets follow every outage
        clean = drop or stream.position >= n_packets - 2
        notifications = stream.next_packet(clean=clean)
        last = stream.position - 1          # a swapped pair comes when its later packet is due
        t = last / pps
        if next_drop is not None and lag_before_drop_s and 0 <= next_drop - 1 - last < pps:
            t += lag_before_drop_s
        for index, payload in notifications:
            asm.push(payload, chars[index], t)
        if drop:
            chunks += asm.drain()
            stream.skip_to(stream.position + outage)
            if profile.commands.start:
                stream.restart_counter()
            stream.begin()
            asm.reconnected()
            drops += 1
            next_drop = stream.position + (disconnect_every or 0)
    chunks += asm.drain()
    return Fed(asm, stream, chunks, drops)


def check_books(fed: Fed, *, skipped_by_counter: bool = True) -> None:
    """The assembler's counts against the board's truth, and every sample in its place."""
    f, s, stream = fed.stream.faults, fed.asm.stats, fed.stream
    lost = f.samples_dropped + f.samples_stalled + f.samples_reordered + f.samples_skipped
    assert s.samples == stream.sample_position - lost          # none invented, none dropped
    assert s.samples + s.lost_samples == stream.sample_position
    assert s.lost_samples == lost
    skipped = f.samples_skipped // stream.samples_per_packet if skipped_by_counter else 0
    assert s.lost_packets == (f.packets_dropped + f.packets_malformed + f.packets_reordered
                              + f.packets_stalled + skipped)
    assert s.malformed == f.packets_malformed
    assert s.duplicates == f.packets_duplicated + f.packets_reordered
    assert s.late_packets == f.packets_reordered
    assert s.early_packets == 0
    assert sum(c.lost_samples for c in fed.chunks) == s.lost_samples
    assert sum(c.n_samples for c in fed.chunks) == s.samples


def check_placement(fed: Fed, profile: FirmwareProfile) -> None:
    """Every delivered sample is the board's own, at its place on the sample clock."""
    counts = fed.stream.signal.counts
    for chunk in fed.chunks:
        rows = (chunk.first_index + np.arange(chunk.n_samples)) % counts.shape[0]
        np.testing.assert_allclose(chunk.samples, expected_samples(profile, counts[rows]),
                                   rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- the emulator


def test_fault_injection_is_seeded_and_booked() -> None:
    faults = dict(loss=0.01, burst=0.01, burst_length=(2, 6), duplicate=0.02, reorder=0.02,
                  malformed=0.01, stall_every_s=10.0, stall_s=1.0)
    _, a = make_stream("nus_emg", **faults)
    _, b = make_stream("nus_emg", **faults)
    a.begin()
    b.begin()
    out_a = [a.next_packet() for _ in range(3000)]
    out_b = [b.next_packet() for _ in range(3000)]
    assert out_a == out_b and a.faults == b.faults
    f = a.faults
    assert f.bursts > 5 and f.packets_duplicated > 10 and f.packets_reordered > 10
    assert all(2 <= n <= 6 for n in f.burst_lengths)
    assert f.packets_dropped >= sum(f.burst_lengths)
    for first, n in zip(f.burst_positions, f.burst_lengths, strict=True):
        assert set(range(first, first + n)) <= set(f.positions)
    # stalls start at multiples of 10 s (400 packets) and withhold 1 s (40 packets)
    assert list(f.stall_positions[:3]) == [400, 800, 1200] and set(f.stall_lengths) == {40}
    assert f.packets_stalled == 40 * f.stalls and f.samples_stalled == 25 * f.packets_stalled
    # the books add up: every position was sent, dropped, corrupted or withheld
    assert (f.packets_sent + f.packets_dropped + f.packets_malformed + f.packets_stalled
            == a.position)
    notifications = sum(len(o) for o in out_a)
    assert notifications == f.packets_sent + f.packets_duplicated + f.packets_malformed


def test_duplicates_reorders_and_their_notifications() -> None:
    _, stream = make_stream("nus_emg", duplicate=0.5)
    stream.begin()
    stream.next_packet()
    while not stream.faults.packets_duplicated:
        out = stream.next_packet()
    assert len(out) == 2 and out[0] == out[1]
    _, stream = make_stream("nus_emg", reorder=0.5)
    stream.begin()
    stream.next_packet()
    while not stream.faults.packets_reordered:
        before = stream.position
        out = stream.next_packet()
    assert stream.position == before + 2 and list(stream.faults.reorder_positions) == [before]
    counters = [int.from_bytes(p[:2], "little") for _, p in out]
    assert counters == [before + 1, before]     # the successor first


def test_faults_a_counter_cannot_reveal_are_refused() -> None:
    with pytest.raises(ConfigError):
        make_stream("gforce", duplicate=0.1)        # no counter
    with pytest.raises(ConfigError):
        make_stream("myo", reorder=0.1)             # rotation modulo 4: a swap looks like a gap
    with pytest.raises(ConfigError):
        make_stream("nus_emg", burst_length=0)
    with pytest.raises(ConfigError):
        make_stream("nus_emg", stall_every_s=5.0, stall_s=0.0)
    make_stream("myo", duplicate=0.1)               # a repeat is seen by any counter


def test_a_new_stream_or_a_clean_packet_ends_a_stall() -> None:
    _, stream = make_stream("nus_emg", stall_every_s=1.0, stall_s=5.0)
    stream.begin()
    sent = [bool(stream.next_packet()) for _ in range(60)]
    assert sent[:40] == [True] * 40 and not any(sent[40:]) and stream.stalled
    stream.begin()                                   # a reconnect
    assert not stream.stalled and stream.faults.stalls_cut == 1
    assert stream.faults.packets_stalled_cut == 20
    assert stream.next_packet()
    _, stream = make_stream("nus_emg", burst=0.5, burst_length=50)
    stream.begin()
    stream.next_packet()
    while not stream.faults.bursts:
        stream.next_packet()
    assert stream.next_packet(clean=True)            # ends the burst under way
    assert list(stream.faults.burst_lengths) == [1]


# --------------------------------------------------------------------------- exact, by counter


@pytest.mark.parametrize(("name", "firmware"), [("nus_emg", None), ("ganglion", None),
                                                ("npg_lite", None), ("umyo", None),
                                                ("ganglion", 2)])
def test_every_stream_fault_counted_exactly(name: str, firmware: int | None) -> None:
    profile, stream = make_stream(name, seed=4, firmware=firmware, loss=0.01, burst=0.005,
                                  burst_length=(2, 5), duplicate=0.03, reorder=0.03,
                                  malformed=0.01, stall_every_s=8.0, stall_s=0.3)
    fed = feed(profile, stream, 2000)
    f = stream.faults
    assert min(f.packets_dropped, f.packets_duplicated, f.packets_reordered,
               f.packets_malformed, f.packets_stalled) > 0
    check_books(fed)
    if firmware == 2:   # repeats never break the delta chain; only losses do
        assert fed.asm.stats.chain_breaks <= f.packets_dropped + f.packets_malformed \
            + f.packets_reordered + f.stalls
    else:
        check_placement(fed, profile)
    pipe = Pipeline(profile.fs, profile.channels, unit="uV" if profile.scale.calibrated
                    else "counts")
    for chunk in fed.chunks:
        pipe.process(chunk)
    assert pipe.lost_samples == fed.asm.stats.lost_samples
    assert pipe.n_samples == stream.sample_position


def test_a_repeated_delta_packet_keeps_the_chain() -> None:
    profile, stream = make_stream("ganglion", firmware=2, duplicate=0.05)
    fed = feed(profile, stream, 1000)
    assert stream.faults.packets_duplicated > 20
    check_books(fed)
    assert fed.asm.stats.chain_breaks == 0 and fed.asm.stats.unanchored_samples == 0


def test_a_swapped_pair_is_one_lost_and_one_late_packet() -> None:
    profile, stream = make_stream("nus_emg", reorder=0.02)
    fed = feed(profile, stream, 1000)
    k = stream.faults.packets_reordered
    assert k > 5
    s = fed.asm.stats
    assert (s.lost_packets, s.late_packets, s.duplicates) == (k, k, k)
    lossy = [c for c in fed.chunks if c.flags & ChunkFlags.PACKET_LOSS]
    assert len(lossy) == k and all(c.lost_samples == 25 for c in lossy)
    check_placement(fed, profile)


def test_a_short_stall_is_a_gap_by_counter() -> None:
    profile, stream = make_stream("nus_emg", stall_every_s=5.0, stall_s=2.5)
    fed = feed(profile, stream, 1000)
    assert stream.faults.stalls == 4 and stream.faults.packets_stalled == 400
    check_books(fed)
    assert fed.asm.stats.loss_events == 4 and fed.asm.stats.estimated_lost_samples == 0


# --------------------------------------------------------------------------- a fast clock


@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_a_fast_board_clock_invents_nothing_and_shows(rate: float) -> None:
    profile, stream = make_stream("nus_emg")
    fed = feed(profile, stream, 800, rate=rate)       # 20 s of samples
    s = fed.asm.stats
    assert s.samples == stream.sample_position == 20000 and s.lost_samples == 0
    check_placement(fed, profile)
    if rate == 1.0:
        assert s.early_packets == 0
    else:   # ahead by more than 1 s after 2 s of samples (received in 1 s): 18 s worth
        assert s.early_packets == 800 - 2 * 40 - 1


# --------------------------------------------------------------------------- disconnect storms


def test_storm_with_a_counter_that_runs_on_is_exact() -> None:
    profile, stream = make_stream("umyo", loss=0.01)
    pps = stream.packets_per_second
    fed = feed(profile, stream, round(60 * pps), disconnect_every=round(6 * pps),
               outage=round(1.5 * pps))
    s = fed.asm.stats
    assert s.reconnects == fed.drops == 7 and s.estimated_lost_samples == 0
    check_books(fed)
    marked = [c for c in fed.chunks if c.flags & ChunkFlags.RECONNECTED]
    assert len(marked) == 7 and all(c.lost_samples > 0 for c in marked)
    check_placement(fed, profile)


@pytest.mark.parametrize("lag_s", [0.0, 0.6])
def test_storm_with_a_counter_that_restarts_is_measured_by_time(lag_s: float) -> None:
    """nus_emg restarts its counter on 'start': each outage is measured on the host clock,
    exactly here (exact receive times), even when the host lagged before the drop."""
    profile, stream = make_stream("nus_emg", loss=0.01, duplicate=0.01)
    fed = feed(profile, stream, 2400, disconnect_every=240, outage=60,
               lag_before_drop_s=lag_s)
    s, f = fed.asm.stats, stream.faults
    assert s.reconnects == fed.drops == 7
    assert s.estimated_lost_samples == f.samples_skipped == 7 * 60 * 25
    check_books(fed, skipped_by_counter=False)


def test_lost_packets_just_before_a_drop_are_not_hidden() -> None:
    """The board delivers its last packet before a scheduled drop: a loss there is seen."""
    profile, stream = make_stream("nus_emg", loss=0.3)
    fed = feed(profile, stream, 400, disconnect_every=50, outage=10)
    check_books(fed, skipped_by_counter=False)


# --------------------------------------------------------------------------- end to end


def fast(name: str) -> FirmwareProfile:
    return dataclasses.replace(load_profile(name), timing=Timing())


@dataclasses.dataclass
class Streamed:
    board: EmulatedBoard
    source: BleSource
    summary: RunSummary
    chunks: list[Chunk]
    record: Path


async def stream_case(name: str, tmp: Path, *, seconds: float, silence_s: float = 1.0,
                      rate: float = 1.0, disconnect_every_s: float | None = None,
                      **faults: Any) -> Streamed:
    """An emulated board through BleSource, run_async, a pipeline and a recording.

    The board stops after ``seconds`` of its clock; the run is stopped (as
    Ctrl-C would) once every notification it sent was received.
    """
    profile = fast(name)
    air = VirtualAir()
    signal = board_signal(profile, np.random.default_rng(0), duration_s=30.0)
    stream = BoardStream(profile, signal, np.random.default_rng(1), **faults)
    board = EmulatedBoard(air.device("board"), stream, speed=SPEED, rate=rate,
                          disconnect_every_s=disconnect_every_s, stop_after_s=seconds)
    await board.start()
    source = BleSource(profile, backend=bumble_backend(BumbleCentral(air.device("central"))),
                       time_scale=SPEED, silence_timeout_s=silence_s,
                       reconnect=ReconnectPolicy(backoff_initial_s=0.05, give_up_after_s=20.0))
    record = tmp / f"{name}.bdf"
    chunks: list[Chunk] = []

    async def collected() -> Any:
        async for chunk in source:
            chunks.append(chunk)
            yield chunk

    async def consume() -> RunSummary:
        async with source:
            pipe = Pipeline(profile.fs, profile.channels, unit=source.unit)
            return await run_async(collected(), pipe, [RecordingSink(record)],
                                   stats=lambda: source.stats.as_dict())

    task = asyncio.get_running_loop().create_task(consume())
    while not (board.state.finished and source.stats.packets >= board.state.notifications):
        assert not task.done(), task.result()
        await asyncio.sleep(0.02)
    task.cancel()
    summary = await task
    await board.close()
    return Streamed(board, source, summary, chunks, record)


def annotations(path: Path) -> list[str]:
    with open_recording(path) as reader:
        return [str(t) for t in reader.info.annotations["text"]]


def received_truth(run: Streamed) -> int:
    """Samples the board delivered intact (each once), from its books."""
    stream, f = run.board.stream, run.board.stream.faults
    elapsed = stream.sample_position - run.board.state.stream_start_samples[0]
    return elapsed - (f.samples_dropped + f.samples_stalled + f.samples_reordered
                      + f.samples_skipped)


def test_end_to_end_stream_faults_exact_in_stats_and_recording(tmp_path: Path) -> None:
    run = asyncio.run(stream_case("nus_emg", tmp_path, seconds=15.0, burst=0.01,
                                  burst_length=(2, 6), duplicate=0.03, reorder=0.03,
                                  malformed=0.02, stall_every_s=6.0, stall_s=1.0))
    s, f, board = run.source.stats, run.board.stream.faults, run.board
    assert board.state.connections == 1 and s.reconnects == 0
    assert s.packets == board.state.notifications
    elapsed = board.stream.sample_position - board.state.stream_start_samples[0]
    assert s.samples == received_truth(run) and s.samples + s.lost_samples == elapsed
    assert s.lost_packets == (f.packets_dropped + f.packets_malformed + f.packets_reordered
                              + f.packets_stalled)
    assert (s.malformed, s.late_packets) == (f.packets_malformed, f.packets_reordered)
    assert s.duplicates == f.packets_duplicated + f.packets_reordered
    assert run.summary.lost_samples == s.lost_samples
    assert run.summary.n_samples == elapsed
    notes = annotations(run.record)
    assert sum(int(t.split()[1]) for t in notes if t.startswith("lost ")) == s.lost_samples


def test_end_to_end_storm_reconnects_every_time(tmp_path: Path) -> None:
    """Disconnects every 3 s of board time: the source reconnects every time and never
    raises; what it received is exact whatever the host's clock."""
    run = asyncio.run(stream_case("umyo", tmp_path, seconds=13.0, disconnect_every_s=3.0,
                                  loss=0.02))
    s, board = run.source.stats, run.board
    assert board.state.forced_disconnects >= 1   # how many depends on the host's pace
    assert s.reconnects == board.state.connections - 1 >= board.state.forced_disconnects
    assert s.packets == board.state.notifications
    assert s.samples == received_truth(run)
    marked = [c for c in run.chunks if c.flags & ChunkFlags.RECONNECTED]
    # every reconnect that packets followed is marked (on a slow host the board's stop
    # can overtake the last reconnect: then no packet follows it)
    assert len(marked) == board.state.connections_notified - 1
    assert board.state.connections_notified >= board.state.connections - 1
    assert annotations(run.record).count("reconnected") == s.reconnects
    assert run.summary.lost_samples == s.lost_samples


def test_end_to_end_stall_past_the_silence_timeout_reconnects(tmp_path: Path) -> None:
    """A board that stays connected but falls silent for 10 times the silence timeout:
    the source reconnects (which ends the stall) and the stream goes on."""
    run = asyncio.run(stream_case("nus_emg", tmp_path, seconds=10.0, silence_s=0.3,
                                  stall_every_s=3.0, stall_s=30.0))
    s, board, f = run.source.stats, run.board, run.board.stream.faults
    assert f.stalls_cut >= 1 and board.state.forced_disconnects == 0
    assert s.reconnects == board.state.connections - 1 >= 1
    assert s.packets == board.state.notifications
    assert s.samples == received_truth(run)
    assert s.lost_packets == f.packets_stalled - f.packets_stalled_cut   # the rest by time
    assert s.estimated_lost_samples > 0
    assert annotations(run.record).count("reconnected") == s.reconnects


def test_end_to_end_fast_clock_invents_no_sample(tmp_path: Path) -> None:
    run = asyncio.run(stream_case("nus_emg", tmp_path, seconds=10.0, rate=2.0))
    s, board = run.source.stats, run.board
    start = board.state.stream_start_samples[0]
    assert s.samples == board.stream.sample_position - start == 10000 and s.lost_samples == 0
    counts = board.stream.signal.counts
    profile = run.source.profile
    for chunk in run.chunks:
        rows = (start + chunk.first_index + np.arange(chunk.n_samples)) % counts.shape[0]
        np.testing.assert_allclose(chunk.samples, expected_samples(profile, counts[rows]),
                                   rtol=0, atol=1e-9)
