"""The BLE source end to end against emulated boards, through the real bleak API.

Every test runs an emulated board (bumble peripheral on a virtual link) and
the project's :class:`BleSource` with bleak's ``BleakScanner``/``BleakClient``
on the bumble backend: emulated board -> bleak -> decoder -> sequence check
-> chunks -> pipeline. No radio, no BlueZ. Emulated boards are paced
``SPEED`` times faster than real time to keep the tests short.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("bumble")

from emg_pipeline import Chunk, ChunkFlags, Pipeline, detect
from emg_pipeline.emulation import BoardStream, board_signal
from emg_pipeline.emulation.air import VirtualAir
from emg_pipeline.emulation.peripheral import EmulatedBoard
from emg_pipeline.errors import DeviceNotFoundError
from emg_pipeline.profiles import FirmwareProfile, Timing, list_profiles, load_profile
from emg_pipeline.sources.ble import BleSource, ReconnectPolicy, bumble_backend, scan
from emg_pipeline.sources.ble.bleak_bumble import BumbleCentral

# each test runs an emulated link in an event loop: a deadline enforced from a thread
# outside the loop (pytest-timeout's thread method) ends a hang with every stack printed
pytestmark = pytest.mark.timeout(120, method="thread")

SPEED = 10.0
COUNTER_PROFILES = ["nus_emg", "ganglion", "myo", "bitalino_ble", "npg_lite", "umyo"]


def fast(name: str) -> FirmwareProfile:
    """A bundled profile without its settle waits (the emulated board needs none)."""
    return dataclasses.replace(load_profile(name), timing=Timing())


@dataclasses.dataclass
class Run:
    board: EmulatedBoard
    source: BleSource
    chunks: list[Chunk]
    signal_counts: np.ndarray
    truth: pd.DataFrame | None


def expected_samples(profile: FirmwareProfile, counts: np.ndarray) -> np.ndarray:
    """What the decoder should give for the board's counts (from the documented scales)."""
    x = counts.astype(np.float64)
    if profile.decoder == "ganglion":  # 18-bit fields keep the top 17 bits of 24
        x = np.floor_divide(counts, 128).astype(np.float64) * 128
    if profile.scale.uv_per_count is not None:
        x = (x - profile.scale.zero) * profile.scale.uv_per_count
    return x


async def stream_from_board(
    name: str, *, seconds: float, loss: float = 0.0, malformed: float = 0.0, seed: int = 0,
    during: Callable[[EmulatedBoard, BleSource, list[Chunk]], Awaitable[None]] | None = None,
    reconnect: ReconnectPolicy | None = None, firmware: int | None = None,
) -> Run:
    """Stream ``seconds`` of board time from an emulated board through BleSource."""
    profile = fast(name)
    air = VirtualAir()
    signal = board_signal(profile, np.random.default_rng(seed), duration_s=60.0)
    stream = BoardStream(profile, signal, np.random.default_rng(seed + 1), loss=loss,
                         malformed=malformed, firmware=firmware)
    board = EmulatedBoard(air.device("board"), stream, speed=SPEED)
    await board.start()
    central = BumbleCentral(air.device("central"))
    source = BleSource(profile, backend=bumble_backend(central), time_scale=SPEED,
                       silence_timeout_s=2.0, reconnect=reconnect)
    chunks: list[Chunk] = []
    want = seconds * profile.fs
    async with source:
        async for chunk in source:
            chunks.append(chunk)
            if during is not None:
                await during(board, source, chunks)
            if chunk.first_index + chunk.n_samples >= want:
                break
    await board.close()
    return Run(board, source, chunks, signal.counts, signal.truth)


def check_timeline(run: Run, profile: FirmwareProfile, start_sample: int) -> None:
    """Every chunk holds exactly the board's samples at its place on the sample clock."""
    n = run.signal_counts.shape[0]
    for chunk in run.chunks:
        rows = (start_sample + chunk.first_index + np.arange(chunk.n_samples)) % n
        np.testing.assert_allclose(chunk.samples,
                                   expected_samples(profile, run.signal_counts[rows]),
                                   rtol=0, atol=1e-9)


def timeline_end(run: Run) -> int:
    """Samples on the stream's clock (received + marked lost), all drained chunks included."""
    stats = run.source.stats
    return stats.samples + stats.lost_samples


def matched(found: pd.DataFrame, truth: pd.DataFrame, tol_s: float = 0.5) -> float:
    """Fraction of true events (>= 0.3 s) with a detected onset on their channel within tol_s."""
    if truth.empty:
        return float("nan")
    hits = 0
    for _, t in truth.iterrows():
        same = found[found.channel == t.channel]
        hits += bool(np.any(np.abs(same.onset_s.to_numpy() - t.onset_s) <= tol_s))
    return hits / len(truth)


# --------------------------------------------------------------------------- every profile


@pytest.mark.parametrize("name", list_profiles())
def test_each_profile_end_to_end(name: str) -> None:
    seconds = 16.0
    run = asyncio.run(stream_from_board(name, seconds=seconds))
    profile = run.source.profile
    board, source = run.board, run.source
    # the board was found by the scan filter, configured and started as the profile says
    cmds = profile.commands
    sent = board.state.commands
    if cmds.start:
        expected = [x for x in (cmds.keep_awake, *cmds.setup, cmds.start) if x]
        assert sent[: len(expected)] == expected
    assert not board.state.streaming and board.state.disconnections == 1
    if cmds.stop:
        assert sent[-1] == cmds.stop and board.state.stopped_by_command
    # nothing lost on a clean link, and every sample is the board's own, in place
    assert source.stats.lost_samples == 0 and source.stats.malformed == 0
    assert all(c.flags == ChunkFlags.NONE for c in run.chunks)
    first_packet = board.state.stream_starts[0]
    start = first_packet * board.stream.samples_per_packet
    check_timeline(run, profile, start)
    # live detection over BLE == offline detection on the same samples
    pipe = Pipeline(profile.fs, profile.channels, unit=source.unit)
    for chunk in run.chunks:
        pipe.process(chunk)
    pipe.flush()
    received = np.concatenate([c.samples for c in run.chunks])
    offline = detect(received, profile.fs, channels=profile.channels, unit=source.unit)
    live = pipe.episodes_frame()
    pd.testing.assert_frame_equal(live, offline)
    # and the episodes are those of the emulated signal (boards fast enough for sEMG)
    if profile.fs >= 200 and run.truth is not None:
        t0 = start / profile.fs
        end = t0 + timeline_end(run) / profile.fs - 1.0
        truth = run.truth[(run.truth.onset_s >= t0 + 0.5) & (run.truth.offset_s <= end)
                          & (run.truth.duration_s >= 0.3)].copy()
        truth["onset_s"] -= t0
        assert truth.empty or matched(live, truth) >= 0.5, (live, truth)


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("name", COUNTER_PROFILES)
def test_five_percent_loss_counted_exactly(name: str) -> None:
    run = asyncio.run(stream_from_board(name, seconds=12.0, loss=0.05, seed=3))
    profile, stats, board = run.source.profile, run.source.stats, run.board
    spp = board.stream.samples_per_packet
    first = board.state.stream_starts[0]
    end_packet = first + timeline_end(run) // spp
    dropped = board.stream.faults.between(first, end_packet)
    assert dropped > 10
    assert stats.lost_packets == dropped
    assert stats.lost_samples == dropped * spp
    assert stats.estimated_lost_samples == 0
    lossy = [c for c in run.chunks if c.flags & ChunkFlags.PACKET_LOSS]
    seen = sum(c.lost_samples for c in lossy)
    assert seen > 0
    check_timeline(run, profile, first * spp)   # lost samples are gaps, never closed up
    pipe = Pipeline(profile.fs, profile.channels, unit=run.source.unit)
    for chunk in run.chunks:
        pipe.process(chunk)
    assert pipe.lost_samples == seen
    assert int(pipe.bridged_samples.max()) == seen


def test_malformed_packets_counted_and_skipped() -> None:
    run = asyncio.run(stream_from_board("nus_emg", seconds=12.0, malformed=0.05, seed=5))
    stats, board = run.source.stats, run.board
    spp = board.stream.samples_per_packet
    first = board.state.stream_starts[0]
    end_packet = first + timeline_end(run) // spp
    bad = board.stream.faults.between(first, end_packet)
    assert bad > 5
    assert stats.malformed == bad
    assert stats.lost_packets == bad   # their samples are a gap on the timeline
    assert any(c.flags & ChunkFlags.MALFORMED for c in run.chunks)
    check_timeline(run, run.source.profile, first * spp)


@pytest.mark.parametrize("name", ["nus_emg", "umyo"])
def test_forced_disconnect_reconnects_and_marks_the_gap(name: str) -> None:
    fired = []

    async def drop_once(board: EmulatedBoard, source: BleSource, chunks: list[Chunk]) -> None:
        if not fired and chunks[-1].first_index > 4.0 * source.fs:
            fired.append(chunks[-1].first_index + chunks[-1].n_samples)
            await board.force_disconnect()

    policy = ReconnectPolicy(backoff_initial_s=0.05, give_up_after_s=10.0)
    run = asyncio.run(stream_from_board(name, seconds=12.0, during=drop_once, reconnect=policy))
    profile, stats, board = run.source.profile, run.source.stats, run.board
    assert board.state.forced_disconnects == 1 and board.state.connections == 2
    assert stats.reconnects == 1
    marked = [c for c in run.chunks if c.flags & ChunkFlags.RECONNECTED]
    assert len(marked) == 1
    chunk = marked[0]
    spp = board.stream.samples_per_packet
    starts = board.state.stream_starts
    # where the board was when the stream resumed, on the first stream's clock
    true_index = (starts[1] - starts[0]) * spp if name == "nus_emg" else None
    if name == "umyo":   # the sample index keeps running: the gap is exact
        assert stats.estimated_lost_samples == 0
        check_timeline(run, profile, starts[0] * spp)
    else:                # the counter restarted: the gap is measured by the host's clock
        # (its arithmetic is checked with exact timestamps in test_assembler.py; here,
        # where the clock is the loaded test machine's, only that it was measured)
        assert stats.estimated_lost_samples == chunk.lost_samples > 0
        assert true_index is not None and chunk.first_index > 0
    assert chunk.lost_samples > 0 and chunk.flags & ChunkFlags.PACKET_LOSS
    # detection continues after the reconnect
    pipe = Pipeline(profile.fs, profile.channels, unit=run.source.unit)
    events_after = []
    for c in run.chunks:
        result = pipe.process(c)
        if c.first_index >= chunk.first_index:
            events_after.extend(result.envelope)
    last = run.chunks[-1]
    assert len(events_after) > 0 and pipe.n_samples == last.first_index + last.n_samples


def test_cancellation_leaves_the_board_stopped() -> None:
    async def scenario() -> EmulatedBoard:
        profile = fast("ganglion")
        air = VirtualAir()
        signal = board_signal(profile, np.random.default_rng(0), duration_s=30.0)
        board = EmulatedBoard(air.device("board"),
                              BoardStream(profile, signal, np.random.default_rng(1)), speed=SPEED)
        await board.start()
        source = BleSource(profile, backend=bumble_backend(BumbleCentral(air.device("c"))))
        got: list[Chunk] = []

        async def consume() -> None:
            async for chunk in source:     # no context manager: the generator cleans up
                got.append(chunk)

        loop = asyncio.get_running_loop()
        task = loop.create_task(consume())
        deadline = loop.time() + 30.0
        while sum(c.n_samples for c in got) < 400:
            if task.done():
                task.result()  # the consumer failed: raise its error here
            assert loop.time() < deadline, "no samples from the emulated board in 30 s"
            await asyncio.sleep(0.01)
        assert board.state.streaming
        task.cancel()                      # what Ctrl-C does to the running task
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
        # the board's own tasks end here, not in asyncio.run's cancellation of leftovers
        await board.close()
        return board

    board = asyncio.run(scenario())
    assert board.state.commands[-1] == b"s" and board.state.stopped_by_command
    assert not board.state.streaming and not board.state.subscribed
    assert board.state.disconnections == 1


# --------------------------------------------------------------------------- Ganglion firmware 2

FW2_CYCLE = 201   # one raw sample, then 100 delta packets of two samples


def fw2_decoded(counts: np.ndarray) -> np.ndarray:
    """A firmware-2 decoder's counts for a stream's samples: exact at each cycle's raw
    sample, then minus each delta (old - new) rounded down to even (its LSB is the sign)."""
    out = np.empty_like(counts)
    for start in range(0, counts.shape[0], FW2_CYCLE):
        x = counts[start: start + FW2_CYCLE]
        deltas = (x[:-1] - x[1:]) & ~np.int64(1)
        out[start: start + FW2_CYCLE] = x[0] - np.vstack(
            [np.zeros((1, x.shape[1]), np.int64), np.cumsum(deltas, axis=0)])
    return out


@pytest.mark.parametrize("loss", [0.0, 0.05])
def test_ganglion_firmware_2_end_to_end(loss: float) -> None:
    run = asyncio.run(stream_from_board("ganglion", seconds=12.0, loss=loss, seed=3,
                                        firmware=2))
    profile, stats, board, source = run.source.profile, run.source.stats, run.board, run.source
    assert board.firmware_revision == "2.0.0" and source.variant == "fw2"
    proto = board.stream.protocol
    first, start = board.state.stream_starts[0], board.state.stream_start_samples[0]
    end = timeline_end(run)
    # every packet the board dropped before the last one received, and its samples
    n_packets = next(k for k in range(10**6) if proto.sample_offset(k) >= end)
    dropped = [p - first for p in board.stream.faults.positions if first <= p < first + n_packets]
    assert stats.lost_packets == len(dropped)
    assert stats.lost_samples == sum(proto.samples_in_packet(k) for k in dropped)
    assert stats.estimated_lost_samples == 0 and stats.malformed == 0
    # samples whose delta chain is broken: after a loss, until the next raw packet
    broken = np.zeros(end, dtype=bool)
    for k in dropped:
        cycle_end = (proto.sample_offset(k) // FW2_CYCLE + 1) * FW2_CYCLE
        broken[proto.sample_offset(k): cycle_end] = True
    for k in dropped:
        n = proto.samples_in_packet(k)
        broken[proto.sample_offset(k): proto.sample_offset(k) + n] = False   # not received
    assert stats.unanchored_samples == int(broken.sum())
    breaks = {proto.sample_offset(k) // FW2_CYCLE for k in dropped}
    assert stats.chain_breaks == len(breaks)
    # every sample is in its place; anchored ones exact, the others off by a constant
    n = run.signal_counts.shape[0]
    want = fw2_decoded(run.signal_counts[(start + np.arange(end)) % n]) * profile.scale.uv_per_count
    for chunk in run.chunks:
        idx = chunk.first_index + np.arange(chunk.n_samples)
        diff = chunk.samples - want[idx]
        exact = ~broken[idx]
        np.testing.assert_allclose(diff[exact], 0.0, atol=1e-9)
        for cycle in np.unique(idx[~exact] // FW2_CYCLE):
            part = diff[~exact & (idx // FW2_CYCLE == cycle)]
            assert np.ptp(part, axis=0).max() < 1e-6      # shape right, DC offset unknown
    if loss:
        assert len(dropped) > 10 and stats.unanchored_samples > 0
        # the chunks delivered carry exactly the losses before their end (the stats also
        # count chunks drained but not consumed: the test stops mid-batch)
        seen = sum(c.lost_samples for c in run.chunks if c.flags & ChunkFlags.PACKET_LOSS)
        delivered = run.chunks[-1].first_index + run.chunks[-1].n_samples
        assert seen == sum(proto.samples_in_packet(k) for k in dropped
                           if proto.sample_offset(k) < delivered)
        pipe = Pipeline(profile.fs, profile.channels, unit=source.unit)
        for chunk in run.chunks:
            pipe.process(chunk)
        assert pipe.lost_samples == seen
    else:
        assert stats.lost_samples == 0 and stats.unanchored_samples == 0
        assert all(c.flags == ChunkFlags.NONE for c in run.chunks)


# --------------------------------------------------------------------------- scanning


def test_scan_lists_boards_with_profile_and_rssi() -> None:
    async def scenario() -> list:
        air = VirtualAir()
        boards = []
        for name in ("ganglion", "myo", "npg_lite"):
            profile = fast(name)
            signal = board_signal(profile, np.random.default_rng(0), duration_s=5.0)
            board = EmulatedBoard(air.device(name),
                                  BoardStream(profile, signal, np.random.default_rng(0)))
            await board.start()
            boards.append(board)
        central = BumbleCentral(air.device("central"))
        return await scan(0.5, backend=bumble_backend(central))

    found = asyncio.run(scenario())
    assert sorted(b.profile for b in found) == ["ganglion", "myo", "npg_lite"]
    by_profile = {b.profile: b for b in found}
    assert by_profile["ganglion"].name == "Ganglion-emu"
    assert all(isinstance(b.rssi, int) and b.rssi < 0 for b in found)


def test_missing_board_is_a_typed_error() -> None:
    async def scenario() -> None:
        air = VirtualAir()
        source = BleSource(fast("myo"), backend=bumble_backend(BumbleCentral(air.device("c"))),
                           scan_timeout_s=0.3)
        await source.connect()

    with pytest.raises(DeviceNotFoundError) as info:
        asyncio.run(scenario())
    assert info.value.identifier == "myo" and info.value.timeout_s == 0.3


# --------------------------------------------------------------------------- real hardware


@pytest.mark.hardware
def test_real_board_streams(request: pytest.FixtureRequest) -> None:
    """Stream 5 s from a real board: ``pytest --ble-address ADDR [--ble-profile NAME]``."""
    address = request.config.getoption("--ble-address")
    name = request.config.getoption("--ble-profile")

    async def scenario() -> BleSource:
        source = BleSource(name, address=address)
        async for chunk in source:
            if chunk.first_index + chunk.n_samples >= 5 * source.fs:
                break
        return source

    source = asyncio.run(scenario())
    assert source.stats.samples > 0
    assert source.stats.loss_fraction < 0.5
