"""Emulated boards: the bytes they send, their fault injection, their GATT, and the CLI."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("bumble")

from bleak import BleakClient, BleakScanner

from emg_pipeline.cli import main
from emg_pipeline.decode import make_decoder
from emg_pipeline.emulation import BoardStream, board_signal, counts_from_uv
from emg_pipeline.emulation.air import VirtualAir
from emg_pipeline.emulation.peripheral import EmulatedBoard
from emg_pipeline.emulation.protocol import BoardProtocol, count_range
from emg_pipeline.errors import ConfigError
from emg_pipeline.profiles import list_profiles, load_profile
from emg_pipeline.sinks.episodes import EPISODE_FILE_COLUMNS, read_episodes
from emg_pipeline.sources.ble.bleak_bumble import (
    BumbleCentral,
    BumbleClient,
    BumbleScanner,
)
from emg_pipeline.sources.formats import read_recording


@pytest.mark.parametrize("name", list_profiles())
def test_protocol_round_trips_through_the_decoder(name: str) -> None:
    profile = load_profile(name)
    rng = np.random.default_rng(7)
    lo, hi = count_range(profile)
    proto = BoardProtocol(profile)
    dec = make_decoder(profile, variant="fw3" if name == "ganglion" else None)
    spp = proto.samples_per_packet
    for k in range(6):
        counts = rng.integers(lo, hi + 1, size=(spp, profile.n_channels))
        counts[0] = lo
        counts[-1] = hi
        out = [dec.decode(p, characteristic=profile.gatt.notify[i])
               for i, p in proto.encode(counts, k, k * spp)]
        got = out[-1]
        expected = counts.astype(float)
        if name == "ganglion":
            expected = np.floor_divide(counts, 128).astype(float) * 128
        if name == "bitalino_ble":
            assert got.seq == (k * spp) % 16
        if profile.scale.uv_per_count is not None:
            expected = (expected - profile.scale.zero) * profile.scale.uv_per_count
        np.testing.assert_allclose(got.samples, expected, rtol=0, atol=1e-9)
        if profile.counter is not None and got.seq is not None:
            c = profile.counter
            tick = k if c.unit == "packet" else k * spp
            assert got.seq == (tick * c.increment) % c.modulus


def test_gforce_fragments_on_a_small_mtu() -> None:
    profile = load_profile("gforce")
    proto = BoardProtocol(profile, max_payload=20)
    counts = np.arange(128).reshape(16, 8) % 256
    parts = proto.encode(counts, 0, 0)
    assert len(parts) == 8 and [p[1][1] for p in parts] == list(range(7, -1, -1))
    dec = make_decoder(profile)
    np.testing.assert_array_equal([dec.decode(p) for _, p in parts][-1].samples, counts)


def test_corrupted_packets_are_rejected_by_every_decoder() -> None:
    from emg_pipeline.errors import DecodeError

    for name in list_profiles():
        profile = load_profile(name)
        proto = BoardProtocol(profile)
        dec = make_decoder(profile, variant="fw3" if name == "ganglion" else None)
        counts = np.zeros((proto.samples_per_packet, profile.n_channels), dtype=np.int64)
        *_, (index, payload) = proto.encode(counts, 1, proto.samples_per_packet)
        with pytest.raises(DecodeError):
            dec.decode(proto.corrupt(payload), characteristic=profile.gatt.notify[index])


def test_counts_from_uv_scales_and_clips() -> None:
    ganglion = load_profile("ganglion")
    counts = counts_from_uv(ganglion, np.array([[0.0, 1.0, 1e9, -1e9]]))
    assert counts.tolist() == [[0, 535, 2**23 - 1, -(2**23)]]
    bitalino = load_profile("bitalino_ble")
    assert counts_from_uv(bitalino, np.array([[0.0]])).item() == 512
    gforce = load_profile("gforce")
    assert counts_from_uv(gforce, np.array([[0.0, 500.0]])).tolist() == [[128, 255]]


def test_fault_runs_stay_detectable() -> None:
    profile = load_profile("myo")  # rotation counter modulo 4: at most 2 losses in a row visible
    sig = board_signal(profile, np.random.default_rng(0), duration_s=5.0)
    stream = BoardStream(profile, sig, np.random.default_rng(1), loss=0.9)
    stream.begin()
    sent = [bool(stream.next_packet()) for _ in range(400)]
    assert sent[0]
    runs = "".join("x" if not s else "." for s in sent).split(".")
    assert max(len(r) for r in runs) <= stream.max_fault_run
    assert stream.faults.packets_dropped == len(stream.faults.positions) > 100
    with pytest.raises(ConfigError):
        BoardStream(profile, sig, np.random.default_rng(1), loss=1.0)


def test_board_signal_from_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "rec.csv"
    t = np.arange(2000) / 500.0
    pd.DataFrame({"time": t, "a": np.sin(2 * np.pi * 60 * t)}).to_csv(path, index=False)
    profile = load_profile("nus_emg")   # 1000 Hz, 2 channels
    sig = board_signal(profile, np.random.default_rng(0), source=path)
    assert sig.counts.shape == (4000, 2) and sig.truth is None
    np.testing.assert_array_equal(sig.counts[:, 0], sig.counts[:, 1])


def test_gatt_and_advertising_through_the_bleak_api() -> None:
    async def scenario() -> tuple[object, dict, bytes, bytes]:
        air = VirtualAir()
        profile = load_profile("myo")
        sig = board_signal(profile, np.random.default_rng(0), duration_s=5.0)
        board = EmulatedBoard(air.device("myo"),
                              BoardStream(profile, sig, np.random.default_rng(0)))
        await board.start()
        central = BumbleCentral(air.device("central"))
        device = await BleakScanner.find_device_by_filter(
            lambda d, ad: "d5060001-a904-deb9-4748-2c7f4a124842" in ad.service_uuids,
            timeout=2.0, backend=BumbleScanner, bumble=central)
        assert device is not None
        async with BleakClient(device, backend=BumbleClient, bumble=central) as client:
            layout = {s.uuid: sorted(c.uuid for c in s.characteristics)
                      for s in client.services}
            props = client.services.get_characteristic(profile.gatt.notify[0]).properties
            version = await client.read_gatt_char("d5060201-a904-deb9-4748-2c7f4a124842")
            await client.write_gatt_char(profile.gatt.command, b"\x09\x01\x01", response=True)
            await asyncio.sleep(0.05)
            mtu = client.mtu_size
        await board.close()
        return (device.name, mtu, props), layout, bytes(version), board.state.commands[-1]

    (name, mtu, props), layout, version, command = asyncio.run(scenario())
    assert name == "myo-emu" and mtu >= 23 and "notify" in props
    assert layout["d5060005-a904-deb9-4748-2c7f4a124842"] == [
        f"d5060{i}05-a904-deb9-4748-2c7f4a124842" for i in range(1, 5)]
    assert "d5060401-a904-deb9-4748-2c7f4a124842" in layout["d5060001-a904-deb9-4748-2c7f4a124842"]
    assert version == bytes.fromhex("0100 0500 b207 0200")
    assert command == b"\x09\x01\x01"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_emulate_then_stream_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture,
                                            spawn: Callable[..., subprocess.Popen]) -> None:
    port = _free_port()
    emulator = spawn(
        [sys.executable, "-m", "emg_pipeline", "emulate", "nus_emg", "--port", str(port),
         "--loss", "0.05", "--speed", "4", "--duration", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        out, record = tmp_path / "episodes.csv", tmp_path / "stream.bdf"
        before = datetime.now().astimezone()
        status = main(["stream", "nus_emg", "--emulator", f"127.0.0.1:{port}", "--duration",
                       "12", "--out", str(out), "--record", str(record), "--site", "ch1=calf"])
        assert status == 0
    finally:
        emulator.terminate()
        emulator.wait(timeout=20)
    printed = capsys.readouterr()
    # the summary (live view, standard output) counts packets; the losses are in the recording
    assert "lost by counter" in printed.out and "reconnects: 0" in printed.out
    assert "lost samples written as 0" in printed.err
    episodes = read_episodes(out)
    assert len(episodes) >= 1
    assert set(episodes["site"]) <= {"calf", "unspecified"}
    # a live stream knows its start: every onset has a wall-clock time, after the command began
    assert all(t is not None and t >= before for t in episodes["onset_time"])
    data, info = read_recording(record)
    assert info.channels == ("ch1", "ch2") and data.shape[0] >= 12000
    assert info.start_time is not None
    # detect on the recording writes the same episode file columns as the stream did
    again = tmp_path / "detected.csv"
    assert main(["detect", str(record), "--out", str(again), "-q", "--site", "ch1=calf"]) == 0
    assert list(pd.read_csv(again).columns) == list(pd.read_csv(out).columns)
    assert list(pd.read_csv(out).columns) == list(EPISODE_FILE_COLUMNS)


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture) -> None:
    assert main(["stream", "nus_emg", "--emulator", "nonsense"]) == 2
    assert main(["stream", "no_such_board", "--emulator", "127.0.0.1:9"]) == 2
    assert main(["stream", "nus_emg", "--emulator", f"127.0.0.1:{_free_port()}"]) == 2
    assert main(["emulate", "nus_emg", "--loss", "1.5"]) == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("emg-pipeline:")]
    assert len(lines) == 4 and all("Traceback" not in x for x in lines)


# --------------------------------------------------------------------------- Ganglion firmware 2

FW2_CYCLE = 201   # one raw sample, then 100 packets of two


def fw2_decoded(counts: np.ndarray) -> np.ndarray:
    """What a firmware-2 decoder gives for a stream's samples (counts from the raw packet on).

    Each cycle starts exact at its raw sample; a delta (old - new) arrives with its
    LSB replaced by the sign, so the decoder subtracts it rounded down to even.
    """
    out = np.empty_like(counts)
    for start in range(0, counts.shape[0], FW2_CYCLE):
        x = counts[start: start + FW2_CYCLE]
        deltas = (x[:-1] - x[1:]) & ~np.int64(1)
        out[start: start + FW2_CYCLE] = x[0] - np.vstack(
            [np.zeros((1, x.shape[1]), np.int64), np.cumsum(deltas, axis=0)])
    return out


def test_ganglion_fw2_literal_packets() -> None:
    proto = BoardProtocol(load_profile("ganglion"), firmware=2)
    [(_, raw)] = proto.encode(np.array([[1, -1, 0x123456, -(1 << 23)]]), 0, 0)
    assert raw == bytes.fromhex("00" "000001" "ffffff" "123456" "800000") + b"ABCDEFG"
    # previous [1, -1, ...]: A = [-3, -1, ...] (delta 4), B = [-5, ...] (delta 2); 19-bit
    # fields MSB first: delta 4 sets bit 16 (payload byte 2 = 0x80), delta 2 sets bit 93
    # (byte 11 = 0x04)
    rest = [0x123456, -(1 << 23)]
    [(_, packet)] = proto.encode(np.array([[-3, -1, *rest], [-5, -1, *rest]]), 1, 1)
    assert packet == bytes([101]) + bytes.fromhex("0000 8000 0000 0000 0000 0004") + bytes(7)
    with pytest.raises(ConfigError):
        BoardProtocol(load_profile("ganglion"), firmware=2).encode(np.zeros((2, 4)), 5, 9)
    with pytest.raises(ConfigError):
        BoardProtocol(load_profile("myo"), firmware=2)


def _fw2_packets(counts: np.ndarray, n_packets: int) -> list[bytes]:
    proto = BoardProtocol(load_profile("ganglion"), firmware=2)
    packets = []
    for k in range(n_packets):
        at, n = proto.sample_offset(k), proto.samples_in_packet(k)
        [(_, payload)] = proto.encode(counts[at: at + n], k, at)
        assert len(payload) == 20
        packets.append(payload)
    return packets


def test_ganglion_fw2_round_trip_over_counter_wraps() -> None:
    profile = load_profile("ganglion")
    sig = board_signal(profile, np.random.default_rng(3), duration_s=5.0)
    n_packets = 3 * 101 + 40                       # three wraps of the packet counter
    counts = sig.counts[: FW2_CYCLE * 4]
    packets = _fw2_packets(counts, n_packets)
    ids = [p[0] for p in packets]
    assert ids[:3] == [0, 101, 102] and ids[100:103] == [200, 0, 101]
    assert ids.count(0) == 4 and set(ids) == {0, *range(101, 201)}
    dec = make_decoder(profile, variant="fw2")
    out = [dec.decode(p) for p in packets]
    got = np.vstack([o.samples for o in out]) / profile.scale.uv_per_count
    want = fw2_decoded(counts[: got.shape[0]])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # the reconstruction really drifts within a cycle (odd deltas lose their LSB) and
    # is exact again at every raw packet
    assert np.abs(want - counts[: got.shape[0]]).max() > 0
    np.testing.assert_array_equal(want[::FW2_CYCLE], counts[: got.shape[0]: FW2_CYCLE])
    assert [o.seq for o in out[:3]] == [0, 1, 3] and out[100].seq == 199 and out[101].seq == 0
    assert dec.anchored and dec.chain_breaks == 0


def test_ganglion_fw2_lost_packets_unanchor_until_the_raw_packet() -> None:
    profile = load_profile("ganglion")
    sig = board_signal(profile, np.random.default_rng(4), duration_s=5.0)
    counts = sig.counts[: FW2_CYCLE * 4]
    packets = _fw2_packets(counts, 4 * 101)
    proto = BoardProtocol(profile, firmware=2)
    lost = {30, 31, 101 + 70, 303}        # two deltas, one delta, the raw packet of cycle 3
    dec = make_decoder(profile, variant="fw2")
    want = fw2_decoded(counts)
    offsets, anchored = {}, {}
    for k, packet in enumerate(packets):
        if k in lost:
            continue
        out = dec.decode(packet)
        at = proto.sample_offset(k)
        diff = out.samples / profile.scale.uv_per_count - want[at: at + out.n_samples]
        assert np.ptp(diff, axis=0).max() < 1e-6       # the shape is always right
        offsets[k], anchored[k] = diff[0], dec.anchored
    assert dec.chain_breaks == 3
    for k in offsets:
        cycle, ring = divmod(k, 101)
        broken = (cycle == 0 and ring > 30) or (cycle == 1 and ring > 70) or cycle == 3
        assert anchored[k] is not broken, k
        if not broken:
            np.testing.assert_allclose(offsets[k], 0, atol=1e-6)
    assert np.abs(offsets[32]).max() > 0 and np.abs(offsets[101 + 71]).max() > 0


def test_cli_emulate_firmware_option_errors(capsys: pytest.CaptureFixture) -> None:
    assert main(["emulate", "myo", "--firmware", "2", "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err
    assert "--firmware" in err and "Traceback" not in err
