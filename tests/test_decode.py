"""Decoders against golden byte vectors, fuzzing, and the sequence tracker.

The packet builders below are small independent encoders written from the
documented formats (ble_boards.md), with plain Python integers and bit
strings rather than numpy, so that they do not share code with the decoders.
A few literal packets are checked by hand in comments.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emg_pipeline.decode import (
    DecodedPacket,
    PacketKind,
    SeqEvent,
    SequenceTracker,
    make_decoder,
)
from emg_pipeline.decode.bitalino import crc4_table, frame_bytes
from emg_pipeline.errors import ConfigError, DecodeError
from emg_pipeline.profiles import PROFILES_DIR, list_profiles, load_profile, profile_from_dict

GANGLION_UV = 0.001869917
BITALINO_UV = 3.3e6 / 1024 / 1000
MYOWARE_UV = 3.3e6 / 4096 / 200
FUZZ = settings(max_examples=250, deadline=None)


# --------------------------------------------------------------------------- independent encoders


def pack_bits(fields: Sequence[int], width: int, total_bytes: int) -> bytes:
    """Concatenate unsigned fields MSB-first, zero-padded on the right."""
    acc = 0
    for f in fields:
        assert 0 <= f < (1 << width)
        acc = (acc << width) | f
    pad = total_bytes * 8 - width * len(fields)
    assert pad >= 0
    return (acc << pad).to_bytes(total_bytes, "big")


def ganglion_field(value: int, width: int, shift: int) -> int:
    """What the firmware sends: sign copied into bit `shift`, arithmetic >> shift, width bits."""
    sign = 1 if value < 0 else 0
    marked = (value & ~(1 << shift)) | (sign << shift)
    return (marked >> shift) & ((1 << width) - 1)


def ganglion_fw3_packet(pid: int, a: Sequence[int], b: Sequence[int]) -> bytes:
    width = 18 if pid < 100 else 19
    shift = 24 - width
    fields = [ganglion_field(v, width, shift) for v in [*a, *b]]
    payload = pack_bits(fields, width, 19)  # 18-bit: 18 bytes + accelerometer byte 0
    return bytes([pid]) + payload


def ganglion_fw2_packet(pid: int, deltas: Sequence[int]) -> bytes:
    width = 18 if pid <= 100 else 19
    fields = [ganglion_field(d, width, 0) for d in deltas]  # sign in the LSB, no shift
    return bytes([pid]) + pack_bits(fields, width, 19)


def ganglion_raw_packet(values: Sequence[int]) -> bytes:
    body = b"".join((v & 0xFFFFFF).to_bytes(3, "big") for v in values)
    return bytes([0]) + body + bytes(7)


def crc4_reference(frame: bytes) -> int:
    """CRC-4 (x^4 + x + 1) by long division over the frame's nibbles, CRC nibble as 0."""
    message = int.from_bytes(frame, "big") & ~0xF
    nbits = len(frame) * 8
    for bit in range(nbits - 1, 3, -1):
        if message & (1 << bit):
            message ^= 0b10011 << (bit - 4)
    return message & 0xF


def bitalino_frame(seq: int, analog: Sequence[int], digital: int = 0) -> bytes:
    n = len(analog)
    size = frame_bytes(n)
    widths = [10] * min(n, 4) + [6] * max(n - 4, 0)
    acc, used = (seq << 8) | digital, 12  # seq(4) crc(4)=0 digital(4)
    for value, width in zip(analog, widths, strict=True):
        acc = (acc << width) | value
        used += width
    acc <<= size * 8 - used
    frame = bytearray(acc.to_bytes(size, "big")[::-1])  # the stream is the frame reversed
    frame[-1] |= crc4_reference(bytes(frame))
    return bytes(frame)


def npg_packet(first_counter: int, rows: Sequence[Sequence[int]]) -> bytes:
    out = b""
    for i, row in enumerate(rows):
        out += bytes([(first_counter + i) % 256])
        out += b"".join(v.to_bytes(2, "big", signed=True) for v in row)
    return out


def gforce_fragments(frame: bytes, chunk: int) -> list[bytes]:
    parts = [frame[i:i + chunk] for i in range(0, len(frame), chunk)]
    return [bytes([0xFF, len(parts) - 1 - i]) + p for i, p in enumerate(parts)]


def decoder_for(name: str, variant: str | None = None):
    return make_decoder(load_profile(name), variant=variant)


# --------------------------------------------------------------------------- Ganglion


def test_ganglion_fw3_literal_packet() -> None:
    # ID 5 (18-bit). Payload bit stream: field A1 = 0b...10 = 2, fields A2..B3 = 0,
    # field B4 = all ones (two's complement -1). Bits 16-17 hold A1's low bits, so
    # payload byte 2 = 0b10000000; B4 occupies bits 126-143: bytes 15-17 = 03 ff ff.
    # Decode: A1 = (2 & ~1) << 6 = 128 counts; B4 = (-1 & ~1) << 6 = -128 counts.
    packet = bytes.fromhex("05" "0000 8000 0000 0000 0000 0000 0000 0003 ffff" "00")
    assert len(packet) == 20
    out = decoder_for("ganglion", "fw3").decode(packet)
    assert out.kind is PacketKind.EMG and out.seq == 5 and out.seq_unit == "packet"
    assert out.span == 1
    expected = np.array([[128, 0, 0, 0], [0, 0, 0, -128]]) * GANGLION_UV
    np.testing.assert_allclose(out.samples, expected, rtol=1e-12)
    assert out.samples.dtype == np.float64 and not out.samples.flags.writeable


@pytest.mark.parametrize("pid", [0, 7, 99, 100, 142, 199])
def test_ganglion_fw3_encoded(pid: int) -> None:
    rng = random.Random(pid)
    width = 18 if pid < 100 else 19
    a = [rng.randrange(-(1 << 23), 1 << 23) for _ in range(4)]
    b = [-(1 << 23), (1 << 23) - 1, -1, 0]
    out = decoder_for("ganglion", "fw3").decode(ganglion_fw3_packet(pid, a, b))
    keep = 25 - width  # top width-1 bits survive; the LSB of the field is the sign copy
    expected = [[(v >> keep) << keep for v in a], [(v >> keep) << keep for v in b]]
    np.testing.assert_allclose(out.samples / GANGLION_UV, expected, rtol=0, atol=1e-6)
    assert out.seq == pid % 100


def test_ganglion_fw2_delta_chain() -> None:
    rng = random.Random(2)
    dec = decoder_for("ganglion", "fw2")
    start = [1000, -2000, 0, 123456]
    out0 = dec.decode(ganglion_raw_packet(start))
    assert out0.seq == 0 and out0.span == 1 and out0.seq_unit == "sample" and out0.n_samples == 1
    assert dec.anchored
    np.testing.assert_allclose(out0.samples / GANGLION_UV, [start], atol=1e-6)
    truth, got = [], []
    prev = start
    for k in range(30):
        pid = 1 + k % 100 if k < 20 else 101 + k % 100  # 18-bit then 19-bit packets
        limit = 1 << (16 if pid <= 100 else 17)
        a = [p + 2 * rng.randrange(-limit // 2, limit // 2) for p in prev]  # even deltas
        b = [x + 2 * rng.randrange(-limit // 2, limit // 2) for x in a]
        deltas = [p - x for p, x in zip(prev, a, strict=True)]
        deltas += [x - y for x, y in zip(a, b, strict=True)]
        out = dec.decode(ganglion_fw2_packet(pid, deltas))
        assert out.seq == 2 * (k + 1) - 1 and out.span == 2   # samples into the 201-sample cycle
        truth += [a, b]
        got.append(out.samples)
        prev = b
    np.testing.assert_allclose(np.vstack(got) / GANGLION_UV, truth, atol=1e-6)


def test_ganglion_fw2_literal_delta() -> None:
    # After raw [0, 0, 0, 0]: packet ID 1, deltas [4, 0, 0, 0, -2, 0, 0, 0] (18-bit).
    # delta 4 -> field 0b...100; delta -2 -> field all ones but LSB (sign) = 1: 0x3FFFF.
    # A = 0 - [4,0,0,0] = [-4, 0, 0, 0]; B = A - [-2,0,0,0] = [-2, 0, 0, 0].
    # Bits: field 0 = 4 -> bit 15 set -> payload byte 1 = 0x01; field 4 at bits 72-89
    # all ones -> bytes 9, 10 = ff ff and the top 2 bits of byte 11 = 0xc0.
    packet = bytes.fromhex("01" "0001 0000 0000 0000 00ff ffc0 0000 0000 0000" "00")
    dec = decoder_for("ganglion", "fw2")
    dec.decode(ganglion_raw_packet([0, 0, 0, 0]))
    out = dec.decode(packet)
    np.testing.assert_allclose(out.samples / GANGLION_UV, [[-4, 0, 0, 0], [-2, 0, 0, 0]],
                               atol=1e-9)
    dec.reset()  # chain restarts at zero: same packet, same result
    np.testing.assert_allclose(dec.decode(packet).samples, out.samples)


def test_ganglion_impedance_and_messages() -> None:
    dec = decoder_for("ganglion", "fw3")
    imp = dec.decode(bytes([203]) + b"1234Z" + bytes(14))
    assert imp.kind is PacketKind.IMPEDANCE and imp.value == 1234.0 and imp.code == 203
    assert imp.samples.shape == (0, 4)
    assert dec.decode(bytes([206]) + b"Hello ").kind is PacketKind.FRAGMENT
    msg = dec.decode(bytes([207]) + b"world\x00\x00")
    assert msg.kind is PacketKind.MESSAGE and msg.text == "Hello world"
    for bad in (bytes([201]) + b"12a4Z", bytes([201]) + b"1234", bytes([201]) + b"Z",
                bytes([200]) + bytes(19), bytes([250]) + bytes(19), bytes([5]) * 19, b""):
        with pytest.raises(DecodeError):
            dec.decode(bad)


# --------------------------------------------------------------------------- Myo


def test_myo_literal_and_rotation() -> None:
    profile = load_profile("myo")
    dec = make_decoder(profile)
    # int8: 0x80 = -128, 0xff = -1, 0x7f = 127
    packet = bytes.fromhex("00 01 02 03 04 05 06 7f  80 ff fe 10 20 30 40 50")
    out = dec.decode(packet, characteristic=profile.gatt.notify[2].upper())
    np.testing.assert_array_equal(out.samples, [[0, 1, 2, 3, 4, 5, 6, 127],
                                                [-128, -1, -2, 16, 32, 48, 64, 80]])
    assert (out.seq, out.seq_unit, out.span) == (2, "packet", 1)
    assert dec.decode(packet).seq is None
    with pytest.raises(DecodeError, match="not a notify characteristic"):
        dec.decode(packet, characteristic="2a28")
    with pytest.raises(DecodeError, match="16 bytes"):
        dec.decode(packet[:15])


# --------------------------------------------------------------------------- layout decoders


def test_npg_lite_counter_and_big_endian() -> None:
    # record = counter, ch1 0x0102 = 258, ch2 0xfffe = -2, ch3 0x8000 = -32768
    record = bytes.fromhex("07 0102 fffe 8000")
    dec = decoder_for("npg_lite")
    single = dec.decode(record)
    np.testing.assert_array_equal(single.samples, [[258, -2, -32768]])
    assert (single.seq, single.seq_unit, single.span) == (7, "sample", 1)
    rows = [[i, -i, 1000 * i] for i in range(10)]
    out = dec.decode(npg_packet(250, rows))
    np.testing.assert_array_equal(out.samples, rows)
    assert (out.seq, out.span) == (250, 10)
    with pytest.raises(DecodeError, match="length 69"):
        dec.decode(npg_packet(0, rows)[:-1])


def test_umyo_index_quaternion_and_imu() -> None:
    dec = decoder_for("umyo")
    values = list(range(-12, 12))
    body = b"".join(v.to_bytes(2, "little", signed=True) for v in values)
    index = (1000).to_bytes(4, "little")  # e8 03 00 00
    out = dec.decode(index + body)
    np.testing.assert_array_equal(out.samples[:, 0], values)
    assert (out.seq, out.seq_unit, out.span) == (1000, "sample", 24)
    with_quat = dec.decode(index + body + bytes(range(8)))
    np.testing.assert_array_equal(with_quat.samples, out.samples)
    short = dec.decode(index + body[:16])  # 8 samples
    assert short.n_samples == 8 and short.span == 8
    imu = dec.decode(bytes(26))
    assert imu.kind is PacketKind.OTHER and imu.n_samples == 0
    with pytest.raises(DecodeError):
        dec.decode(index + body[:15])


def test_nus_recommended_frame() -> None:
    dec = decoder_for("nus_emg")
    rows = [[i, -32768 + i] for i in range(25)]
    body = b"".join(v.to_bytes(2, "little", signed=True) for row in rows for v in row)
    out = dec.decode(bytes.fromhex("0201") + body)  # counter 0x0102 little-endian
    assert (out.seq, out.seq_unit, out.span) == (0x0102, "packet", 1)
    np.testing.assert_array_equal(out.samples, rows)
    assert out.samples.shape == (25, 2)


# --------------------------------------------------------------------------- gForce


def gforce_profile(bits: int):
    data = tomllib.loads((PROFILES_DIR / "gforce.toml").read_text(encoding="utf-8"))
    data["format"]["bits"] = bits
    return profile_from_dict(data, "gforce.toml")


def test_gforce_8bit_frame_and_fragments() -> None:
    dec = make_decoder(load_profile("gforce"))
    values = [(7 * i) % 256 for i in range(128)]
    frame = bytes([0x08, *values])
    whole = dec.decode(frame)
    np.testing.assert_array_equal(whole.samples, np.reshape(values, (16, 8)))
    kinds = [dec.decode(f).kind for f in gforce_fragments(frame, 50)]
    assert kinds == [PacketKind.FRAGMENT, PacketKind.FRAGMENT, PacketKind.EMG]
    last = dec.decode(gforce_fragments(frame, 50)[0])
    assert last.kind is PacketKind.FRAGMENT
    dec.reset()
    out = [dec.decode(f) for f in gforce_fragments(frame, 20)]
    np.testing.assert_array_equal(out[-1].samples, whole.samples)
    other = dec.decode(bytes([0x01]) + bytes(12))
    assert other.kind is PacketKind.OTHER and other.code == 0x01


def test_gforce_12bit_little_endian() -> None:
    dec = make_decoder(gforce_profile(12))
    values = [(37 * i) % 4096 for i in range(64)]
    frame = bytes([0x08]) + b"".join(v.to_bytes(2, "little") for v in values)
    out = [dec.decode(f) for f in gforce_fragments(frame, 40)][-1]
    np.testing.assert_array_equal(out.samples, np.reshape(values, (8, 8)))


def test_gforce_lost_fragment() -> None:
    dec = make_decoder(load_profile("gforce"))
    frame = bytes([0x08, *range(128)])
    parts = gforce_fragments(frame, 30)  # n = 4, 3, 2, 1, 0
    dec.decode(parts[0])
    dec.decode(parts[1])
    with pytest.raises(DecodeError, match="lost fragment"):
        dec.decode(parts[3])  # 2 missing
    assert dec.decode(parts[4]).kind is PacketKind.FRAGMENT  # tail of the broken frame skipped
    out = [dec.decode(p) for p in parts]  # the next frame decodes
    assert out[-1].kind is PacketKind.EMG and out[-1].n_samples == 16
    # countdown restarting (the previous frame's tail lost) keeps the new head
    dec.decode(parts[0])
    with pytest.raises(DecodeError, match="restarted"):
        dec.decode(parts[0])
    assert [dec.decode(p).kind for p in parts[1:]][-1] is PacketKind.EMG
    # a whole frame interrupting a fragmented one
    dec.decode(parts[0])
    with pytest.raises(DecodeError, match="interrupted"):
        dec.decode(frame[:17])
    assert dec.decode(frame[:17]).n_samples == 2
    for bad in (b"", b"\xff", bytes([0x08]), bytes([0x08]) + bytes(7)):
        with pytest.raises(DecodeError):
            dec.decode(bad)


# --------------------------------------------------------------------------- BITalino


def test_crc4_table_matches_long_division() -> None:
    table = crc4_table()
    assert list(table) == [0, 3, 6, 5, 12, 15, 10, 9, 11, 8, 13, 14, 7, 4, 1, 2]


def test_bitalino_literal_frame() -> None:
    # 1 channel: stream (frame reversed) = seq 0101 | crc | 0000 | A1 1000000000 | 00
    # -> reversed bytes 5c 08 00, frame 00 08 5c. CRC over nibbles 0 0 0 8 5 0:
    # x^11 + x^6 + x^4 mod x^4 + x + 1 = 1, so the last byte is 0x51.
    dec = decoder_for("bitalino_ble")
    out = dec.decode(bytes.fromhex("000851"))
    assert (out.seq, out.seq_unit, out.span) == (5, "sample", 1)
    np.testing.assert_allclose(out.samples, [[0.0]], atol=1e-12)  # 512 = mid-scale
    with pytest.raises(DecodeError, match="CRC4"):
        dec.decode(bytes.fromhex("000852"))


@pytest.mark.parametrize("n_channels", [1, 2, 3, 4, 5, 6])
def test_bitalino_encoded_frames(n_channels: int) -> None:
    rng = random.Random(n_channels)
    text = (PROFILES_DIR / "bitalino_ble.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    data["channels"] = [f"A{i + 1}" for i in range(n_channels)]
    dec = make_decoder(profile_from_dict(data, "bitalino_ble.toml"))
    widths = [10] * min(n_channels, 4) + [6] * max(n_channels - 4, 0)
    rows = [[rng.randrange(1 << w) for w in widths] for _ in range(5)]
    packet = b"".join(bitalino_frame((9 + i) % 16, row, rng.randrange(16))
                      for i, row in enumerate(rows))
    out = dec.decode(packet)
    counts = [[v << (10 - w) for v, w in zip(row, widths, strict=True)] for row in rows]
    np.testing.assert_allclose(out.samples, (np.array(counts) - 512) * BITALINO_UV, atol=1e-9)
    assert out.seq == 9 and out.span == 5
    corrupted = bytearray(packet)
    corrupted[frame_bytes(n_channels)] ^= 0x10  # flip a bit of the second frame
    with pytest.raises(DecodeError, match="frame 1"):
        dec.decode(bytes(corrupted))
    with pytest.raises(DecodeError, match="whole"):
        dec.decode(packet[:-1])


def test_bitalino_full_scale() -> None:
    out = decoder_for("bitalino_ble").decode(bitalino_frame(0, [1023]))
    assert out.samples[0, 0] == pytest.approx(511 * BITALINO_UV)  # just under +1.65 mV


# --------------------------------------------------------------------------- MyoWare ASCII


def test_myoware_ascii() -> None:
    dec = decoder_for("myoware_shield")
    assert dec.decode(b"2048").samples[0, 0] == 0.0
    assert dec.decode(b"3000\r\n").samples[0, 0] == pytest.approx(952 * MYOWARE_UV)
    assert dec.decode(b" 1024.00\x00\x00").samples[0, 0] == pytest.approx(-1024 * MYOWARE_UV)
    for bad in (b"", b"abc", b"12,13", b"nan", b"1e3", b"\xff12", b"1_000"):
        with pytest.raises(DecodeError):
            dec.decode(bad)


# --------------------------------------------------------------------------- fuzzing


ALL_DECODERS = [(name, None) for name in list_profiles()] + [("ganglion", "fw3")]


def check(result: DecodedPacket, n_channels: int) -> None:
    assert isinstance(result, DecodedPacket)
    assert result.samples.dtype == np.float64
    assert result.samples.ndim == 2 and result.samples.shape[1] == n_channels
    assert np.all(np.isfinite(result.samples))
    if result.kind is not PacketKind.EMG:
        assert result.n_samples == 0


def feed(name: str, variant: str | None, packets: list[bytes]) -> None:
    profile = load_profile(name)
    dec = make_decoder(profile, variant=variant)
    for packet in packets:
        chars = profile.gatt.notify
        try:
            result = dec.decode(packet, characteristic=chars[len(packet) % len(chars)])
        except DecodeError:
            continue
        check(result, profile.n_channels)


@pytest.mark.parametrize(("name", "variant"), ALL_DECODERS)
@FUZZ
@given(packet=st.binary(max_size=300))
def test_fuzz_any_bytes(name: str, variant: str | None, packet: bytes) -> None:
    feed(name, variant, [packet])


@pytest.mark.parametrize(("name", "variant"), ALL_DECODERS)
@FUZZ
@given(packets=st.lists(st.binary(max_size=80), max_size=12))
def test_fuzz_packet_sequences(name: str, variant: str | None, packets: list[bytes]) -> None:
    feed(name, variant, packets)


@FUZZ
@given(parts=st.lists(st.tuples(st.integers(0, 6), st.binary(max_size=40)), max_size=15))
def test_fuzz_gforce_fragment_sequences(parts: list[tuple[int, bytes]]) -> None:
    feed("gforce", None, [bytes([0xFF, n]) + chunk for n, chunk in parts])


@pytest.mark.parametrize("variant", ["fw2", "fw3"])
@FUZZ
@given(packets=st.lists(st.tuples(st.integers(0, 255), st.binary(min_size=19, max_size=19)),
                        max_size=20))
def test_fuzz_ganglion_packets(variant: str, packets: list[tuple[int, bytes]]) -> None:
    feed("ganglion", variant, [bytes([pid]) + body for pid, body in packets])


@FUZZ
@given(frames=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 1023)), min_size=1,
                       max_size=6))
def test_fuzz_bitalino_roundtrip(frames: list[tuple[int, int]]) -> None:
    packet = b"".join(bitalino_frame(seq, [value]) for seq, value in frames)
    out = decoder_for("bitalino_ble").decode(packet)
    np.testing.assert_allclose(out.samples[:, 0],
                               [(v - 512) * BITALINO_UV for _, v in frames], atol=1e-9)
    assert out.seq == frames[0][0]


# --------------------------------------------------------------------------- SequenceTracker


def test_tracker_wrap_and_gap() -> None:
    t = SequenceTracker(modulus=100)
    events = [t.update(s) for s in (97, 98, 99, 0, 1, 5, 6)]
    assert [e.event for e in events] == [SeqEvent.FIRST, SeqEvent.OK, SeqEvent.OK, SeqEvent.OK,
                                         SeqEvent.OK, SeqEvent.GAP, SeqEvent.OK]
    assert [e.lost for e in events] == [0, 0, 0, 0, 0, 3, 0]
    gap = t.update(3)  # 3 behind expected 7: a late packet
    assert gap.event is SeqEvent.OUT_OF_ORDER and gap.lost == 0 and not gap.accepted


@pytest.mark.parametrize(("modulus", "span"), [(100, 1), (256, 10), (16, 1), (4, 1)])
def test_tracker_counts_random_loss_exactly(modulus: int, span: int) -> None:
    rng = random.Random(modulus)
    tracker = SequenceTracker(modulus=modulus, increment=span)
    dropped, lost, run = 0, 0, 0
    n_packets = 3000
    first = True
    for k in range(n_packets):
        seq = (k * span) % modulus
        # 5 % loss; never drop so many in a row that the counter could wrap past them
        limit = max(tracker.max_gap // span, 1)
        if not first and rng.random() < 0.05 and run < min(limit, 2):
            dropped += span
            run += 1
            continue
        status = tracker.update(seq)
        assert status.lost is not None
        lost += status.lost
        first, run = False, 0
    assert dropped > 0 and lost == dropped


def test_tracker_duplicates_and_reset() -> None:
    t = SequenceTracker(modulus=2**32, increment=24)
    assert t.update(1000).event is SeqEvent.FIRST
    assert t.update(1000).event is SeqEvent.DUPLICATE
    assert t.update(1024).event is SeqEvent.OK
    assert t.update(1024).event is SeqEvent.DUPLICATE
    gap = t.update(1096)
    assert gap.event is SeqEvent.GAP and gap.lost == 48
    restarted = t.update(0)  # the board restarted its index
    assert restarted.event is SeqEvent.RESET and restarted.lost is None
    assert t.update(24).event is SeqEvent.OK
    t.reset()
    assert t.update(5).event is SeqEvent.FIRST


def test_tracker_duplicates_do_not_count() -> None:
    t = SequenceTracker(modulus=256)
    total = 0
    for s in [1, 2, 2, 3, 3, 3, 4, 6, 6, 7]:
        status = t.update(s)
        total += status.lost or 0
    assert total == 1


def test_tracker_variable_span_and_profile() -> None:
    t = SequenceTracker.from_profile(load_profile("bitalino_ble"))
    assert t.modulus == 16 and t.increment == 1
    t.update(14, span=3)  # frames 14, 15, 0
    assert t.update(1, span=2).event is SeqEvent.OK
    assert t.update(5).lost == 2
    npg = SequenceTracker.from_profile(load_profile("npg_lite"))
    assert npg.increment == 10
    with pytest.raises(ConfigError):
        SequenceTracker.from_profile(load_profile("gforce"))


def test_tracker_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        SequenceTracker(modulus=1)
    t = SequenceTracker(modulus=10)
    with pytest.raises(ConfigError):
        t.update(10)
    with pytest.raises(ConfigError):
        t.update(1, span=0)


def test_decoded_packets_feed_the_tracker() -> None:
    dec = decoder_for("npg_lite")
    tracker = SequenceTracker.from_profile(load_profile("npg_lite"))
    rows = [[0, 0, 0]] * 10
    lost = []
    for first in (250, 4, 24, 34):  # packet starting at 14 lost: 10 samples
        out = dec.decode(npg_packet(first, rows))
        assert out.seq is not None
        lost.append(tracker.update(out.seq, out.span).lost)
    assert lost == [0, 0, 10, 0]
