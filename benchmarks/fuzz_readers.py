"""Reader fuzzing: a damaged recording must give data or one RecordingError, nothing else.

For every format the readers know (:data:`emg_pipeline.sources.formats.FORMATS`),
one small valid file is built (with the project's own writers where they
exist: :class:`emg_pipeline.sinks.RecordingWriter` for EDF+/BDF+; by hand in
the documented layout otherwise; scipy for WAV, h5py for OpenSignals HDF5),
then damaged ``--mutations`` times at random, each time by one to three of:

- truncation at a random byte (anywhere, inside the header, or near the end);
- flipped bits, overwritten bytes, runs of random or repeated bytes, inserted
  or deleted runs, duplicated chunks;
- altered header fields: a number of an EDF header field or a WAV chunk field
  replaced by an awkward value (0, -1, huge, NaN, inf, text...), two fields of
  the same width swapped, a number in a text header (WFDB header lines, CSV
  header cells, BioSPPy/OpenBCI/OpenSignals header lines) replaced, header
  lines deleted, duplicated, swapped or given extra or missing tokens.

Each damaged file is read with :func:`~emg_pipeline.sources.formats.read_recording`
in a worker process (and again with ``fs=`` when the reader says the rate is
unknown, as for Myo exports and headerless tables); every third one with its
format forced (as ``--format`` does), so that each reader also meets files its
sniffer would turn away. Data must also come out the same when the file is
streamed in chunks, as the commands read it. The deadline of each file
is enforced by the parent, which kills and restarts a worker that overruns it
(a hang); the worker's address space is capped with ``RLIMIT_AS`` at
``--memory-mb`` above what it uses after its imports (a memory blow-up is a
``MemoryError`` there). Every outcome is one of: data (a float64 array
consistent with its info), :class:`~emg_pipeline.errors.RecordingError`, another
exception (a bug: the goal is 0), a hang (goal 0), a memory blow-up (goal 0).

It is a benchmark: it prints a Markdown table and the first failures of each
format, and exits 0. ``--keep DIR`` saves every failing input (with a note of
its outcome) to reproduce it; mutation ``I`` of a format is the same for the
same ``--seed``.

    python benchmarks/fuzz_readers.py                      # 10 000 mutations per format
    python benchmarks/fuzz_readers.py --mutations 500 --format edf --format wfdb-212
    python benchmarks/fuzz_readers.py --keep fuzz-failures --jobs 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import re
import resource
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

__all__ = [
    "FS",
    "ROWS",
    "Outcome",
    "Region",
    "Sample",
    "build_samples",
    "main",
    "mutate",
    "read_mutated",
    "write_files",
]

#: the table rows: one valid sample file each (a format, or a format and a variant)
ROWS = ("csv", "csv-iso", "csv.gz", "biosppy", "opensignals-txt", "opensignals-h5",
        "openbci-v6", "openbci-v5", "myo", "wav", "edf", "bdf", "wfdb-16", "wfdb-212")
#: sampling rate of every sample file, and the rate given when a reader asks for one
FS = 250.0
#: seconds of signal in each sample file
DURATION_S = 2.0
_N = int(FS * DURATION_S)

# ---------------------------------------------------------------------------------------------
# the valid sample files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """Where the structure of one file is, for the mutations that aim at it.

    Parameters
    ----------
    header_end : int
        Bytes of header at the start of the file (0: none worth aiming at).
    fields : tuple of (offset, width, kind)
        Fixed-width header fields; ``kind`` is ``"text"`` (ASCII, space padded,
        as in EDF) or ``"<"`` / ``">"`` (a little- or big-endian integer).
    text : bool
        Whether the file is text (line mutations apply).
    inner : Region or None
        For a gzipped file, the structure of its decompressed content: half of
        the mutations then damage that content and compress it again.
    """

    header_end: int = 0
    fields: tuple[tuple[int, int, str], ...] = ()
    text: bool = False
    inner: Region | None = None


@dataclass(frozen=True)
class Sample:
    """One valid recording: its files, the one to read, where its headers are.

    Parameters
    ----------
    name : str
        Row of the table (a format, or a format and a variant).
    format : str
        The reader's format name.
    files : mapping of str to bytes
        File name to content (a WFDB record has several files).
    target : str
        The file given to ``read_recording``.
    regions : mapping of str to Region
        The structure of each file.
    """

    name: str
    format: str
    files: Mapping[str, bytes]
    target: str
    regions: Mapping[str, Region] = field(default_factory=dict)


def _signal(n_channels: int, seed: int = 0) -> np.ndarray:
    """A few seconds of EMG-like noise with a burst, in µV."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 20.0, (_N, n_channels))
    x[_N // 3 : _N // 2] *= 8.0
    return x


def _edf(folder: Path, suffix: str) -> Sample:
    from emg_pipeline.sinks import RecordingWriter

    path = folder / f"session{suffix}"
    x = _signal(2)
    start = datetime(2026, 11, 27, 8, 0, 0, 250000)
    with RecordingWriter(path, FS, ("calf", "thigh"), record_s=0.5, start_time=start,
                         annotation_bytes=96, recording="fuzz sample") as writer:
        writer.write(x)
        writer.annotate(0.7, 0.4, "spasm (tonic) calf")
        writer.annotate(1.2, None, "twitch thigh")
    data = path.read_bytes()
    n_signals = int(data[252:256])
    fields = [(0, 8), (8, 80), (88, 80), (168, 8), (176, 8), (184, 8), (192, 44), (236, 8),
              (244, 8), (252, 4)]
    offset = 256
    for width in (16, 80, 8, 8, 8, 8, 8, 80, 8, 32):
        fields += [(offset + k * width, width) for k in range(n_signals)]
        offset += n_signals * width
    region = Region(header_end=offset, fields=tuple((o, w, "text") for o, w in fields))
    return Sample(suffix[1:], "edf", {path.name: data}, path.name, {path.name: region})


def _wav(folder: Path) -> Sample:
    from scipy.io import wavfile

    path = folder / "session.wav"
    samples = np.round(_signal(2) * 10).astype(np.int16)
    wavfile.write(path, int(FS), samples)
    data = bytearray(path.read_bytes())
    # a LIST/INFO chunk with the creation date, after the data chunk, as some writers put it
    entry = b"2026-11-27T08:00:00\x00"
    info = b"INFO" + b"ICRD" + struct.pack("<I", len(entry)) + entry
    data += b"LIST" + struct.pack("<I", len(info)) + info
    data[4:8] = struct.pack("<I", len(data) - 8)
    fields = [(4, 4, "<")]
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = bytes(data[pos : pos + 4]), struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        fields.append((pos + 4, 4, "<"))
        if chunk == b"fmt ":
            fields += [(pos + 8, 2, "<"), (pos + 10, 2, "<"), (pos + 12, 4, "<"),
                       (pos + 16, 4, "<"), (pos + 20, 2, "<"), (pos + 22, 2, "<")]
        pos += 8 + size + (size & 1)
    region = Region(header_end=44, fields=tuple(fields))
    return Sample("wav", "wav", {path.name: bytes(data)}, path.name, {path.name: region})


def _wfdb_16() -> Sample:
    adu = np.round(_signal(2) * 0.2).astype(np.int64)  # 200 adu/mV
    dat = adu.reshape(-1).astype("<i2").tobytes()
    hea = (
        f"rec16 2 {FS:g} {_N} 08:00:00 27/11/2026\n"
        f"rec16.dat 16 200(0)/mV 16 0 {adu[0, 0]} 0 0 calf\n"
        f"rec16.dat 16 200(0)/mV 16 0 {adu[0, 1]} 0 0 thigh\n"
        "# age: 50 sex: F\n"
    ).encode()
    return Sample(
        "wfdb-16", "wfdb", {"rec16.hea": hea, "rec16.dat": dat}, "rec16.hea",
        {"rec16.hea": Region(header_end=len(hea), text=True), "rec16.dat": Region()},
    )


def pack_212(samples: np.ndarray) -> bytes:
    """Pack 12-bit samples (two per 3 bytes) the way WFDB format 212 stores them."""
    s = np.asarray(samples, dtype=np.int64) & 0xFFF
    if s.size % 2:
        s = np.append(s, 0)
    a, b = s[0::2], s[1::2]
    out = np.column_stack([a & 0xFF, ((a >> 8) & 0x0F) | ((b >> 8) << 4), b & 0xFF])
    return out.astype(np.uint8).tobytes()


def _wfdb_212() -> Sample:
    """Two signal files: format 212 (two signals) and format 16 after a 6-byte offset."""
    adu = np.clip(np.round(_signal(3) * 0.2), -2047, 2047).astype(np.int64)
    first = pack_212(adu[:, :2].reshape(-1))
    second = b"offset" + adu[:, 2].astype("<i2").tobytes()
    hea = (
        f"rec212 3 {FS:g}/{FS:g} {_N} 08:00:00.5 27/11/2026\n"
        "rec212_a.dat 212 200/mV 12 0 0 0 0 calf\n"
        "rec212_a.dat 212 200(5)/mV 12 0 0 0 0 thigh\n"
        "rec212_b.dat 16+6 0.2/uV 16 0 0 0 0 back\n"
    ).encode()
    return Sample(
        "wfdb-212", "wfdb",
        {"rec212.hea": hea, "rec212_a.dat": first, "rec212_b.dat": second}, "rec212.hea",
        {"rec212.hea": Region(header_end=len(hea), text=True), "rec212_a.dat": Region(),
         "rec212_b.dat": Region(header_end=6)},
    )


def _text(name: str, format: str, file_name: str, header: str, rows: Sequence[str]) -> Sample:
    data = (header + "".join(rows)).encode()
    region = Region(header_end=len(header.encode()), text=True)
    return Sample(name, format, {file_name: data}, file_name, {file_name: region})


def _csv() -> Sample:
    x = _signal(2)
    header = "# start_time: 2026-11-27T08:00:00+01:00\n# site: calf\ntime,calf (uV),thigh (uV)\n"
    rows = [f"{k / FS:.3f},{a:.2f},{b:.2f}\n" for k, (a, b) in enumerate(x)]
    return _text("csv", "csv", "session.csv", header, rows)


def _csv_iso() -> Sample:
    x = _signal(2)
    header = "timestamp;calf;label\n"
    rows = [f"2026-11-27T08:00:{k / FS:06.3f}+01:00;{str(round(a, 2)).replace('.', ',')};"
            f"{'rest' if k % 7 else 'move'}\n" for k, (a, _) in enumerate(x)]
    return _text("csv-iso", "csv", "session.tsv", header, rows)


def _csv_gz() -> Sample:
    x = _signal(2)
    text = "time\tcalf\tthigh\n" + "".join(
        f"{k / FS:.3f}\t{a:.2f}\t{b:.2f}\n" for k, (a, b) in enumerate(x)
    )
    data = gzip.compress(text.encode(), mtime=0)
    inner = Region(header_end=len(text.splitlines()[0]) + 1, text=True)
    return Sample("csv.gz", "csv", {"session.csv.gz": data}, "session.csv.gz",
                  {"session.csv.gz": Region(header_end=10, inner=inner)})


def _biosppy() -> Sample:
    x = np.round(_signal(2) + 2048).astype(int)
    header = (
        "# Simple Text Format\n"
        f"# Sampling Rate (Hz):= {FS:.2f}\n"
        "# Resolution:= 12\n"
        "# Date:= 2017-03-14T10:21:05.000123\n"
        "# Labels:= EMG1\tEMG2\n"
        '# {"units": "counts", "device": "bitalino"}\n'
    )
    rows = [f"{a}\t{b}\n" for a, b in x]
    return _text("biosppy", "biosppy", "emg.txt", header, rows)


def _opensignals_txt() -> Sample:
    header = {
        "20:16:02:26:60:88": {
            "sensor": ["EMG", "RAW"],
            "column": ["nSeq", "I1", "I2", "O1", "O2", "A1", "A2"],
            "channels": [1, 2],
            "label": ["A1", "A2"],
            "resolution": [4, 1, 1, 1, 1, 10, 10],
            "sampling rate": FS,
            "device": "bitalino",
            "date": "2016-6-11",
            "time": "7:5:4.409",
            "firmware version": 52,
        }
    }
    adc = np.clip(np.round(_signal(2) + 512), 0, 1023).astype(int)
    rows = [f"{k % 16}\t1\t1\t0\t0\t{a}\t{b}\n" for k, (a, b) in enumerate(adc)]
    text = "# OpenSignals Text File Format\n# " + json.dumps(header) + "\n# EndOfHeader\n"
    return _text("opensignals-txt", "opensignals", "opensignals.txt", text, rows)


def _opensignals_h5(folder: Path) -> Sample:
    import h5py

    path = folder / "opensignals.h5"
    adc = np.clip(np.round(_signal(2) * 30 + 32768), 0, 65535).astype(np.uint16)
    with h5py.File(path, "w") as f:
        g = f.create_group("00:07:80:3B:46:61")
        g.attrs.update({
            "sampling rate": FS,
            "resolution": np.array([16, 16]),
            "channels": np.array([1, 2]),
            "device": "biosignalsplux",
            "date": "2017-1-23",
            "time": "10:28:51.69",
        })
        raw = g.create_group("raw")
        raw.create_dataset("channel_1", data=adc[:, :1]).attrs.update(
            {"sensor": "EMG", "label": "calf"})
        raw.create_dataset("channel_2", data=adc[:, 1:]).attrs.update(
            {"sensor": "EMG", "label": "thigh"})
        raw.create_dataset("nSeq", data=np.arange(_N, dtype=np.uint16)[:, None])
    data = path.read_bytes()
    return Sample("opensignals-h5", "opensignals", {path.name: data}, path.name,
                  {path.name: Region(header_end=2048)})


def _openbci_v6() -> Sample:
    x = _signal(4)
    cols = ["Sample Index", *(f"EXG Channel {k}" for k in range(4)), "Accel Channel 0",
            "Accel Channel 1", "Accel Channel 2", "Timestamp", "Marker Channel",
            "Timestamp (Formatted)"]
    header = ("%OpenBCI Raw EXG Data\n%Number of channels = 4\n%Sample Rate = 250 Hz\n"
              "%Board = OpenBCI_GUI$BoardCytonSerial\n" + ", ".join(cols) + "\n")
    rows = [
        ", ".join([str(i % 256), *(f"{v:.2f}" for v in x[i]), "0.040", "0.420", "0.238",
                   f"{1557936053.329 + i / FS:.3f}", "0", "12:00:53.329"]) + "\n"
        for i in range(_N)
    ]
    return _text("openbci-v6", "openbci", "OpenBCI-RAW-v6.txt", header, rows)


def _openbci_v5() -> Sample:
    x = _signal(4)
    header = ("%OpenBCI Raw EEG Data\n%Number of channels = 4\n%Sample Rate = 250.0 Hz\n"
              "%Board = OpenBCI_GUI$BoardCytonSerial\n")
    rows = [", ".join(["0"] * 12) + "\n"] + [
        ", ".join([str(i % 256), *(f"{v:.2f}" for v in x[i]), "0.0", "0.0", "0.0",
                   f"{1557936053329 + 4 * i}", "12:00:53.329"]) + "\n"
        for i in range(_N)
    ]
    return _text("openbci-v5", "openbci", "OpenBCI-RAW-v5.txt", header, rows)


def _myo() -> Sample:
    rng = np.random.default_rng(3)
    emg = rng.integers(-128, 128, size=(_N, 8))
    labels = np.repeat([0, 3, 0, 5], _N // 4)
    rows = [",".join(map(str, [*row, lab])) + "\n" for row, lab in zip(emg, labels, strict=True)]
    data = "".join(rows).encode()
    return Sample("myo", "myo", {"myo.csv": data}, "myo.csv",
                  {"myo.csv": Region(header_end=200, text=True)})


def build_samples(folder: Path | None = None) -> dict[str, Sample]:
    """Build the valid sample recordings, one per table row.

    Parameters
    ----------
    folder : Path, optional
        Scratch folder for the writers that write files (a temporary one when omitted).

    Returns
    -------
    dict of str to Sample
        By row name, in the order of :data:`ROWS`.
    """
    if folder is None:
        with tempfile.TemporaryDirectory() as tmp:
            return build_samples(Path(tmp))
    samples = [
        _csv(), _csv_iso(), _csv_gz(), _biosppy(), _opensignals_txt(), _opensignals_h5(folder),
        _openbci_v6(), _openbci_v5(), _myo(), _wav(folder), _edf(folder, ".edf"),
        _edf(folder, ".bdf"), _wfdb_16(), _wfdb_212(),
    ]
    assert tuple(s.name for s in samples) == ROWS
    return {s.name: s for s in samples}


# ---------------------------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------------------------

#: awkward replacements for a number in a header
AWKWARD: tuple[bytes, ...] = (
    b"0", b"-1", b"1", b"-0", b"2", b"7", b"255", b"256", b"65535", b"65536", b"-32768",
    b"2147483647", b"2147483648", b"-2147483649", b"4294967296", b"9223372036854775807",
    b"9223372036854775808", b"18446744073709551616", b"99999999", b"1" + b"0" * 30,
    b"1e308", b"1e309", b"-1e309", b"1e-320", b"nan", b"NaN", b"inf", b"-inf", b"0.5",
    b"1.2.3", b".", b"-", b"+", b"", b" ", b"abc", b"\xb2", b"\xff", b"1_000", b"0x10",
    b"1e5", b"-99999999", b"3.0e2", b"\xd9\xa3",
)
#: awkward integers for binary fields
AWKWARD_INTS: tuple[int, ...] = (
    0, 1, 2, 3, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
    0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 1 << 40, (1 << 63) - 1, (1 << 64) - 1,
)
_NUMBER = re.compile(rb"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_TOKEN = re.compile(rb"[^\s,;\t]+")
_FILLS = (b"\x00", b"\xff", b"9", b",", b"\n", b"\t", b" ", b"#", b"%", b'"', b"\r")


def _position(data: bytes, rng: random.Random, region: Region) -> int:
    """A byte position of ``data`` (non-empty), inside the header half of the time."""
    if region.header_end and rng.random() < 0.5:
        return rng.randrange(min(region.header_end, len(data)))
    return rng.randrange(len(data))


def _random_bytes(rng: random.Random, n: int) -> bytes:
    if rng.random() < 0.3:
        return rng.choice(_FILLS) * n
    return bytes(rng.getrandbits(8) for _ in range(n))


def _truncate(data: bytes, rng: random.Random, region: Region) -> bytes:
    mode = rng.random()
    if mode < 0.4:
        cut = rng.randrange(len(data) + 1)
    elif mode < 0.7 and region.header_end:
        cut = rng.randrange(min(region.header_end, len(data)) + 1)
    else:
        cut = len(data) - rng.randrange(1, min(len(data), 64) + 1)
    return data[:cut]


def _flip_bits(data: bytes, rng: random.Random, region: Region) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        out[_position(data, rng, region)] ^= 1 << rng.randrange(8)
    return bytes(out)


def _set_bytes(data: bytes, rng: random.Random, region: Region) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 2, 4, 8))):
        out[_position(data, rng, region)] = rng.getrandbits(8)
    return bytes(out)


def _overwrite_run(data: bytes, rng: random.Random, region: Region) -> bytes:
    at = _position(data, rng, region)
    run = _random_bytes(rng, rng.choice((1, 2, 4, 8, 16, 64, 256)))
    return data[:at] + run + data[at + len(run) :]


def _insert_run(data: bytes, rng: random.Random, region: Region) -> bytes:
    at = _position(data, rng, region)
    return data[:at] + _random_bytes(rng, rng.choice((1, 2, 3, 8, 64, 512))) + data[at:]


def _delete_run(data: bytes, rng: random.Random, region: Region) -> bytes:
    at = _position(data, rng, region)
    return data[:at] + data[at + rng.choice((1, 2, 3, 8, 64, 512, 4096)) :]


def _duplicate_chunk(data: bytes, rng: random.Random, region: Region) -> bytes:
    at = _position(data, rng, region)
    chunk = data[at : at + rng.choice((1, 4, 16, 64, 256, 1024, 8192))]
    to = at + len(chunk) if rng.random() < 0.5 else rng.randrange(len(data) + 1)
    return data[:to] + chunk * rng.choice((1, 1, 2, 10)) + data[to:]


def _binary_int(data: bytes, rng: random.Random, region: Region) -> bytes:
    width = rng.choice((1, 2, 4, 8))
    value = rng.choice(AWKWARD_INTS) & ((1 << (8 * width)) - 1)
    order = rng.choice(("little", "big"))
    at = _position(data, rng, region)
    return data[:at] + value.to_bytes(width, order) + data[at + width :]


def _field_value(rng: random.Random, width: int, kind: str) -> bytes:
    if kind == "text":
        value = rng.choice(AWKWARD) if rng.random() < 0.8 else str(rng.randint(-10**9, 10**9))\
            .encode()
        return value[:width].ljust(width)
    value = rng.choice(AWKWARD_INTS) if rng.random() < 0.8 else rng.getrandbits(8 * width)
    order = "little" if kind == "<" else "big"
    return (value & ((1 << (8 * width)) - 1)).to_bytes(width, order)


def _header_number(data: bytes, rng: random.Random, region: Region) -> bytes:
    """Replace a header field (fixed-width) or a number of a text header by an awkward value."""
    fields = [f for f in region.fields if f[0] + f[1] <= len(data)]
    if fields:
        offset, width, kind = rng.choice(fields)
        return data[:offset] + _field_value(rng, width, kind) + data[offset + width :]
    end = region.header_end if region.header_end and rng.random() < 0.8 else len(data)
    numbers = list(_NUMBER.finditer(data, 0, end))
    if not numbers:
        return _binary_int(data, rng, region)
    match = rng.choice(numbers)
    return data[: match.start()] + rng.choice(AWKWARD) + data[match.end() :]


def _swap_fields(data: bytes, rng: random.Random, region: Region) -> bytes:
    """Swap two header fields of the same width, or two numbers of a text header."""
    fields = [f for f in region.fields if f[0] + f[1] <= len(data)]
    if len(fields) > 1:
        a = rng.choice(fields)
        same = [f for f in fields if f[1] == a[1] and f != a]
        if same:
            b = rng.choice(same)
            (a0, w, _), (b0, _, _) = sorted((a, b))
            return (data[:a0] + data[b0 : b0 + w] + data[a0 + w : b0] + data[a0 : a0 + w]
                    + data[b0 + w :])
    end = region.header_end or len(data)
    numbers = list(_NUMBER.finditer(data, 0, end))
    if len(numbers) < 2:
        return _set_bytes(data, rng, region)
    a, b = sorted(rng.sample(numbers, 2), key=lambda m: m.start())
    return (data[: a.start()] + b.group() + data[a.end() : b.start()] + a.group()
            + data[b.end() :])


def _edit_line(data: bytes, rng: random.Random, region: Region) -> bytes:
    """Delete, duplicate, swap or alter a line (a header line most of the time)."""
    lines = data.splitlines(keepends=True)
    if not lines:
        return _insert_run(data, rng, region)
    n_header = data[: region.header_end].count(b"\n") if region.header_end else 0
    if n_header and rng.random() < 0.7:
        k = rng.randrange(min(n_header, len(lines)))
    else:
        k = rng.randrange(len(lines))
    line = lines[k]
    action = rng.randrange(7)
    if action == 0:
        del lines[k]
    elif action == 1:
        lines.insert(k, line)
    elif action == 2:
        j = rng.randrange(len(lines))
        lines[k], lines[j] = lines[j], lines[k]
    else:
        tokens = list(_TOKEN.finditer(line))
        if not tokens:
            lines[k] = _random_bytes(rng, 8) + line
        else:
            t = rng.choice(tokens)
            if action == 3:    # an awkward value
                new = rng.choice(AWKWARD)
            elif action == 4:  # an extra token
                new = t.group() + rng.choice((b" ", b",", b"\t", b";")) + rng.choice(AWKWARD)
            elif action == 5:  # a missing token
                new = b""
            else:              # a token made longer
                new = t.group() * rng.choice((2, 50))
            lines[k] = line[: t.start()] + new + line[t.end() :]
    return b"".join(lines)


_MUTATIONS: tuple[tuple[Callable[[bytes, random.Random, Region], bytes], int, bool], ...] = (
    # (mutation, weight, for text files only)
    (_truncate, 4, False),
    (_flip_bits, 3, False),
    (_set_bytes, 2, False),
    (_overwrite_run, 2, False),
    (_insert_run, 1, False),
    (_delete_run, 1, False),
    (_duplicate_chunk, 2, False),
    (_binary_int, 1, False),
    (_header_number, 4, False),
    (_swap_fields, 2, False),
    (_edit_line, 4, True),
)


def mutate(sample: Sample, rng: random.Random) -> tuple[dict[str, bytes], list[str]]:
    """Damage a sample: one to three random mutations of its files.

    Parameters
    ----------
    sample : Sample
        The valid recording.
    rng : random.Random
        The source of every choice (the same state gives the same damage).

    Returns
    -------
    files : dict of str to bytes
        The damaged files (file name to content).
    applied : list of str
        What was done, e.g. ``["session.edf: _header_number"]``.
    """
    files = dict(sample.files)
    applied = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        name = rng.choice(sorted(files))
        region = sample.regions.get(name, Region())
        data = files[name]
        if region.inner is not None and rng.random() < 0.5:
            try:
                content = gzip.decompress(data)
            except (OSError, EOFError, zlib.error):
                content = None  # damaged already: damage the compressed bytes instead
            if content is not None:
                mutation = _pick_mutation(rng, region.inner)
                files[name] = gzip.compress(_apply(mutation, content, rng, region.inner), mtime=0)
                applied.append(f"{name} (content): {mutation.__name__.lstrip('_')}")
                continue
        mutation = _pick_mutation(rng, region)
        files[name] = _apply(mutation, data, rng, region)
        applied.append(f"{name}: {mutation.__name__.lstrip('_')}")
    return files, applied


def _pick_mutation(
    rng: random.Random, region: Region
) -> Callable[[bytes, random.Random, Region], bytes]:
    choices = [(m, w) for m, w, text_only in _MUTATIONS if region.text or not text_only]
    return rng.choices([m for m, _ in choices], weights=[w for _, w in choices])[0]


def _apply(mutation: Callable[[bytes, random.Random, Region], bytes], data: bytes,
           rng: random.Random, region: Region) -> bytes:
    return mutation(data, rng, region) if data else _insert_run(b"\n", rng, region)


def write_files(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` (name to content) into ``folder``, replacing what was there."""
    for old in folder.iterdir():
        if old.is_file():
            old.unlink()
    for name, data in files.items():
        (folder / name).write_bytes(data)


# ---------------------------------------------------------------------------------------------
# reading and judging
# ---------------------------------------------------------------------------------------------

#: rows per chunk when the file is streamed, to compare with reading it whole
_CHUNK = 97
#: outcome kinds, in table order
KINDS = ("data", "RecordingError", "other", "hang", "memory")


@dataclass(frozen=True)
class Outcome:
    """What reading a damaged file gave.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    error : str
        Exception type ("" for data).
    message : str
        First line of the exception's text (or of what went wrong).
    where : str
        The innermost frame in the package, ``file:line function`` ("" if none).
    warned : bool
        Whether a :class:`~emg_pipeline.errors.RecordingWarning` was given.
    other_warnings : tuple of str
        Other warnings given while reading (e.g. numpy's RuntimeWarning).
    seconds : float
        Time the reading took.
    """

    kind: str
    error: str = ""
    message: str = ""
    where: str = ""
    warned: bool = False
    other_warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    def describe(self) -> str:
        """One line: kind, type, message, place."""
        parts = [self.kind]
        if self.error:
            parts.append(self.error)
        if self.message:
            parts.append(self.message[:200])
        if self.where:
            parts.append(f"at {self.where}")
        return ": ".join(parts)


def _where(error: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if f"{os.sep}emg_pipeline{os.sep}" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno} {f.name}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def read_mutated(folder: Path, sample: Sample, forced: bool = False) -> Outcome:
    """Read the damaged ``sample`` written in ``folder`` and say what came of it.

    The format is detected from the content, or with ``forced`` given as the
    sample's (as ``--format`` does, so that a reader meets files its sniffer
    would have turned away). ``read_recording`` is called without a rate, and
    again with ``fs=FS`` when
    the reader says the rate is unknown (Myo exports, headerless tables).
    Data must be a float64 ``(n_samples, n_channels)`` array that agrees with
    its info, and streaming the file in chunks (as the commands do) must give
    the same samples; else the outcome is ``other`` (``InconsistentResult``).
    """
    from emg_pipeline.errors import RecordingError, RecordingWarning, SampleRateError
    from emg_pipeline.sources.formats import open_recording, read_recording

    path = folder / sample.target
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fs = None
        format = sample.format if forced else None
        try:
            try:
                data, info = read_recording(path, format=format)
            except SampleRateError as error:
                if "sampling rate unknown" not in str(error):
                    raise
                fs = FS
                data, info = read_recording(path, format=format, fs=fs)
            problem = _inconsistency(data, info)
            if not problem:
                # the commands stream the recording: the chunks must be the same samples
                with open_recording(path, format=format, fs=fs) as reader:
                    chunks = list(reader.iter_chunks(_CHUNK))
                joined = np.concatenate(chunks) if chunks else np.empty((0, data.shape[1]))
                if not np.array_equal(joined, data, equal_nan=True):
                    problem = f"chunks of {_CHUNK} give {joined.shape}, read() {data.shape}"
        except RecordingError as error:
            outcome = Outcome("RecordingError", type(error).__name__, error.reason)
        except MemoryError as error:
            outcome = Outcome("memory", type(error).__name__, _first_line(error), _where(error))
        except Exception as error:  # the point of the benchmark: any other exception is a bug
            outcome = Outcome("other", type(error).__name__, _first_line(error), _where(error))
        else:
            outcome = Outcome("other", "InconsistentResult", problem) if problem else Outcome(
                "data"
            )
    seconds = time.perf_counter() - started
    warned = any(issubclass(w.category, RecordingWarning) for w in caught)
    others = tuple(sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:80]}"
                           for w in caught if not issubclass(w.category, RecordingWarning)}))
    return Outcome(outcome.kind, outcome.error, outcome.message, outcome.where, warned, others,
                   seconds)


def _inconsistency(data: object, info: object) -> str:
    if not isinstance(data, np.ndarray) or data.dtype != np.float64 or data.ndim != 2:
        return f"samples are not a 2-D float64 array: {type(data).__name__}"
    channels = getattr(info, "channels", ())
    if data.shape[1] != len(channels) or not channels:
        return f"{data.shape[1]} columns for {len(channels)} channel names"
    n = getattr(info, "n_samples", None)
    if n is not None and n != data.shape[0]:
        return f"info says {n} samples, {data.shape[0]} were read"
    return ""


# ---------------------------------------------------------------------------------------------
# workers: one damaged file at a time, with a deadline and a memory cap
# ---------------------------------------------------------------------------------------------


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _worker(conn: multiprocessing.connection.Connection,
            parent_end: multiprocessing.connection.Connection, samples: dict[str, Sample],
            memory_mb: int) -> None:
    """Read the damaged files the parent names, one at a time, and send back the outcomes."""
    parent_end.close()  # so that the parent's death is an end of file here, not a wait
    import h5py  # noqa: F401  (imported before the memory cap, as the readers import it lazily)
    import scipy.io.wavfile  # noqa: F401

    import emg_pipeline.sources.formats  # noqa: F401

    cap = _vm_bytes() + memory_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        folder, name, forced = job
        conn.send(read_mutated(Path(folder), samples[name], forced))


class _Worker:
    """A worker process, its pipe and its scratch folder."""

    def __init__(self, ctx: multiprocessing.context.BaseContext, folder: Path,
                 samples: dict[str, Sample], memory_mb: int) -> None:
        self.ctx = ctx
        self.folder = folder
        self.samples = samples
        self.memory_mb = memory_mb
        folder.mkdir(parents=True, exist_ok=True)
        self.job: tuple[str, int, list[str]] | None = None
        self.deadline = 0.0
        self.start()

    def start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.process = self.ctx.Process(target=_worker, args=(child, self.conn, self.samples,
                                                              self.memory_mb), daemon=True)
        self.process.start()
        child.close()

    def restart(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()
        self.start()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    warned: int = 0
    slowest_s: float = 0.0
    failures: list[tuple[int, Outcome, list[str]]] = field(default_factory=list)
    other_warnings: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)


def _jobs(names: Sequence[str], n: int) -> Iterator[tuple[str, int]]:
    for name in names:
        for index in range(n):
            yield name, index


def run(samples: dict[str, Sample], names: Sequence[str], n: int, seed: int, deadline_s: float,
        jobs: int, memory_mb: int, keep: Path | None, scratch: Path) -> dict[str, _Tally]:
    """Read ``n`` damaged versions of each named sample; tally the outcomes by sample."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    tallies = {name: _Tally() for name in names}
    workers = [_Worker(ctx, scratch / f"worker{k}", samples, memory_mb) for k in range(jobs)]
    pending = _jobs(names, n)
    idle = list(workers)

    def record(worker: _Worker, outcome: Outcome) -> None:
        assert worker.job is not None
        name, index, applied = worker.job
        worker.job = None
        tally = tallies[name]
        tally.counts[outcome.kind] += 1
        tally.warned += outcome.warned
        tally.slowest_s = max(tally.slowest_s, outcome.seconds)
        if outcome.kind == "RecordingError":
            reason = re.sub(r"[0-9]+", "N", outcome.message)[:90]
            tally.reasons[reason] = tally.reasons.get(reason, 0) + 1
        for text in outcome.other_warnings:
            tally.other_warnings[text] = tally.other_warnings.get(text, 0) + 1
        if outcome.kind in ("data", "RecordingError"):
            return
        tally.failures.append((index, outcome, applied))
        if keep is not None:
            target = keep / f"{name}-{seed}-{index}"
            target.mkdir(parents=True, exist_ok=True)
            write_files(target, _damaged(samples[name], seed, index)[0])
            (target / "OUTCOME.txt").write_text(
                f"{outcome.describe()}\nmutations: {'; '.join(applied)}\n")

    try:
        while True:
            while idle:
                job = next(pending, None)
                if job is None:
                    break
                worker = idle.pop()
                name, index = job
                files, applied = _damaged(samples[name], seed, index)
                forced = index % 3 == 2  # a third of the files are read with --format
                if forced:
                    applied = [*applied, f"read with format={samples[name].format!r}"]
                write_files(worker.folder, files)
                worker.job = (name, index, applied)
                worker.deadline = time.monotonic() + deadline_s
                worker.conn.send((str(worker.folder), name, forced))
            busy = [w for w in workers if w.job is not None]
            if not busy:
                break
            timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            ready = multiprocessing.connection.wait([w.conn for w in busy], timeout)
            for worker in busy:
                if worker.conn in ready:
                    try:
                        outcome: Outcome | None = worker.conn.recv()
                    except (EOFError, OSError):
                        outcome = None
                    if outcome is None:  # the worker died (a crash in native code...)
                        worker.process.join()
                        code = worker.process.exitcode
                        outcome = Outcome("other", "WorkerDied", f"exit status {code}")
                        worker.restart()
                    record(worker, outcome)
                    idle.append(worker)
                elif time.monotonic() >= worker.deadline:
                    worker.restart()
                    record(worker, Outcome("hang", "", f"no outcome within {deadline_s:g} s"))
                    idle.append(worker)
    finally:
        for worker in workers:
            worker.stop()
    return tallies


def _damaged(sample: Sample, seed: int, index: int) -> tuple[dict[str, bytes], list[str]]:
    """Mutation ``index`` of ``sample`` for ``seed`` (the same every time)."""
    return mutate(sample, random.Random(f"{seed}:{sample.name}:{index}"))


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def _table(tallies: dict[str, _Tally], n: int) -> str:
    rows = [
        "| format | mutations | data | of which with a warning | RecordingError | "
        "other exceptions (goal 0) | hangs (goal 0) | memory (goal 0) | slowest read (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t in tallies.items():
        c = t.counts
        rows.append(f"| {name} | {n} | {c['data']} | {t.warned} | {c['RecordingError']} | "
                    f"{c['other']} | {c['hang']} | {c['memory']} | {t.slowest_s:.2f} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fuzzing and print the table; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutations", type=int, default=10_000, metavar="N",
                        help="damaged files per format (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--deadline-s", type=float, default=5.0, metavar="S",
                        help="time allowed to read one file before it counts as a hang "
                             "(default 5 s)")
    parser.add_argument("--memory-mb", type=int, default=2048, metavar="MB",
                        help="address space a worker may use above its imports (default 2048)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--format", action="append", default=None, metavar="NAME",
                        help="only this table row (repeatable); default: all")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="save every failing input (and its outcome) into DIR")
    parser.add_argument("--examples", type=int, default=5, metavar="K",
                        help="failures shown per format (default 5)")
    parser.add_argument("--reasons", type=int, default=0, metavar="K",
                        help="also list the K commonest RecordingError reasons per format")
    args = parser.parse_args(argv)
    samples = build_samples()
    names = args.format or list(samples)
    unknown = [n for n in names if n not in samples]
    if unknown:
        parser.error(f"unknown format row(s) {unknown}; known: {', '.join(samples)}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        tallies = run(samples, names, args.mutations, args.seed, args.deadline_s,
                      max(1, args.jobs), args.memory_mb, args.keep, Path(scratch))
    elapsed = time.monotonic() - started
    print(f"# Reader fuzzing: {args.mutations} mutations per format, seed {args.seed}, "
          f"deadline {args.deadline_s:g} s per file, memory cap +{args.memory_mb} MB, "
          f"{max(1, args.jobs)} worker(s)\n")
    print(_table(tallies, args.mutations))
    total = sum(sum(t.counts.values()) for t in tallies.values())
    print(f"\n{total} files read in {elapsed:.0f} s ({total / max(elapsed, 1e-9):.0f} per s).")
    failures = [(name, f) for name, t in tallies.items() for f in t.failures]
    if failures:
        print(f"\n## First failures (of {len(failures)})\n")
        for name, t in tallies.items():
            for index, outcome, applied in t.failures[: args.examples]:
                print(f"- {name} #{index} ({'; '.join(applied)}): {outcome.describe()}")
        if args.keep is not None:
            print(f"\nFailing inputs saved in {args.keep}.")
    if args.reasons:
        print("\n## Commonest RecordingError reasons (digits shown as N)\n")
        for name, t in tallies.items():
            top = sorted(t.reasons.items(), key=lambda item: -item[1])[: args.reasons]
            for reason, k in top:
                print(f"- {name}: {reason} ({k})")
    other = {(name, text): k for name, t in tallies.items() for text, k in t.other_warnings.items()}
    if other:
        print("\n## Other warnings while reading\n")
        for (name, text), k in sorted(other.items()):
            print(f"- {name}: {text} ({k} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
