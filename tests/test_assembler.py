"""The packet assembler with exact receive times: counters, gaps, outages.

The end-to-end BLE tests run on the test machine's clock; here every
notification carries a receive time chosen by the test, so the gap measured
by time after a reconnect is checked to the sample.
"""

from __future__ import annotations

import numpy as np
import pytest

from emg_pipeline import ChunkFlags
from emg_pipeline.decode import make_decoder
from emg_pipeline.emulation.protocol import BoardProtocol
from emg_pipeline.profiles import load_profile
from emg_pipeline.sources.ble.assembler import PacketAssembler

PROFILE = load_profile("nus_emg")          # 1000 Hz, 25 samples per packet, u16 counter
SPP = 25
PACKET_S = SPP / PROFILE.fs


def payload(proto: BoardProtocol, counter: int, value: int) -> bytes:
    """One notification of the board: its counter and SPP samples of ``value``."""
    counts = np.full((SPP, len(PROFILE.channels)), value, dtype=np.int64)
    ((_, data),) = proto.encode(counts, counter, counter * SPP)
    return data


def assembler() -> PacketAssembler:
    return PacketAssembler(PROFILE, make_decoder(PROFILE), time_scale=1.0, silence_gap_s=1.0)


def test_counter_gap_is_exact() -> None:
    proto, asm = BoardProtocol(PROFILE), assembler()
    for k in (0, 1, 2, 5, 6):                 # packets 3 and 4 lost
        asm.push(payload(proto, k, k), None, k * PACKET_S)
    chunks = asm.drain()
    assert [(c.first_index, c.n_samples) for c in chunks] == [(0, 3 * SPP), (5 * SPP, 2 * SPP)]
    assert chunks[1].lost_samples == 2 * SPP and chunks[1].flags & ChunkFlags.PACKET_LOSS
    assert asm.stats.lost_packets == 2 and asm.stats.lost_samples == 2 * SPP
    assert asm.stats.estimated_lost_samples == 0


@pytest.mark.parametrize("outage_s", [1.5, 3.0, 12.345])
def test_outage_after_a_reconnect_is_measured_by_time(outage_s: float) -> None:
    """The counter restarts at 0 after a reconnect: the gap is the silence's length."""
    proto, asm = BoardProtocol(PROFILE), assembler()
    for k in range(4):
        asm.push(payload(proto, k, 1), None, k * PACKET_S)
    last_rx = 3 * PACKET_S
    asm.reconnected()
    first_rx = last_rx + outage_s
    for k in range(3):
        asm.push(payload(proto, k, 2), None, first_rx + k * PACKET_S)
    before, after = asm.drain()
    # the new packet's samples end at its receive time: the silence holds the rest
    want = round(outage_s * PROFILE.fs) - SPP
    assert after.lost_samples == want == asm.stats.estimated_lost_samples
    assert after.first_index == before.n_samples + want
    assert after.flags & ChunkFlags.RECONNECTED and after.flags & ChunkFlags.PACKET_LOSS
    assert asm.stats.reconnects == 1 and asm.stats.lost_packets == 0
    np.testing.assert_array_equal(after.samples, 2.0)


def test_time_scale_converts_host_seconds_to_board_seconds() -> None:
    """An emulated board paced 10x: one host second is ten seconds of signal."""
    proto = BoardProtocol(PROFILE)
    asm = PacketAssembler(PROFILE, make_decoder(PROFILE), time_scale=10.0, silence_gap_s=1.0)
    asm.push(payload(proto, 0, 1), None, 0.0)
    asm.reconnected()
    asm.push(payload(proto, 0, 1), None, 0.5)
    _, after = asm.drain()
    assert after.lost_samples == 5000 - SPP


def test_malformed_and_duplicate_packets_are_counted_not_placed() -> None:
    proto, asm = BoardProtocol(PROFILE), assembler()
    asm.push(payload(proto, 0, 1), None, 0.0)
    asm.push(b"\x01", None, 0.01)                       # too short to be a packet
    asm.push(payload(proto, 0, 1), None, 0.02)          # the same counter again
    asm.push(payload(proto, 1, 1), None, 0.03)
    chunks = asm.drain()
    assert asm.stats.malformed == 1 and asm.stats.duplicates == 1
    assert sum(c.n_samples for c in chunks) == 2 * SPP
    assert any(c.flags & ChunkFlags.MALFORMED for c in chunks)
