"""Damaged recordings give data or one RecordingError, never another exception.

A small, reproducible sample of the reader fuzzing of
``benchmarks/fuzz_readers.py`` (whose builders and mutations it uses): for each
sample file (every format the readers know, some in two variants), twenty
damaged versions (truncations, flipped bits and bytes, runs of random bytes,
duplicated chunks, awkward header fields and lines) are read with
``read_recording``, the format detected or forced. Hypothesis draws the
damage; ``derandomize`` makes the sample the same on every run. The benchmark
runs thousands per format in worker processes with a deadline and a memory cap.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fuzz_readers import ROWS, Sample, build_samples, main, mutate, read_mutated
from benchmarks.fuzz_readers import write_files as write_damaged

#: damaged files per sample file (14 of them)
EXAMPLES = 20


@pytest.fixture(scope="module")
def samples() -> dict[str, Sample]:
    return build_samples()


@pytest.mark.parametrize("name", ROWS)
def test_damaged_files_give_data_or_one_recording_error(
    samples: dict[str, Sample], name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sample = samples[name]
    folder = tmp_path_factory.mktemp(name)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(rng=st.randoms(use_true_random=False), forced=st.booleans())
    def check(rng: random.Random, forced: bool) -> None:
        files, applied = mutate(sample, rng)
        write_damaged(folder, files)
        outcome = read_mutated(folder, sample, forced=forced)
        assert outcome.kind in ("data", "RecordingError"), (
            f"{name} damaged by {'; '.join(applied)} (format forced: {forced}): "
            f"{outcome.describe()}"
        )

    check()


def test_the_samples_are_valid_recordings(samples: dict[str, Sample], tmp_path: Path) -> None:
    for name, sample in samples.items():
        folder = tmp_path / name
        folder.mkdir()
        write_damaged(folder, sample.files)
        outcome = read_mutated(folder, sample)
        assert outcome.kind == "data" and not outcome.warned, (name, outcome.describe())
        assert not outcome.other_warnings, (name, outcome.other_warnings)


def test_mutations_are_reproducible_and_damage(samples: dict[str, Sample]) -> None:
    sample = samples["wfdb-212"]
    damaged = [mutate(sample, random.Random(f"seed {k}")) for k in range(50)]
    assert damaged == [mutate(sample, random.Random(f"seed {k}")) for k in range(50)]
    changed = sum(files != sample.files for files, _ in damaged)
    assert changed >= 45  # a few mutations may leave the bytes as they were
    touched = {applied.split(":")[0] for _, steps in damaged for applied in steps}
    assert touched == set(sample.files)  # the header and both signal files


def test_benchmark_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--mutations", "3", "--format", "wfdb-16", "--format", "wav"]) == 0
    out = capsys.readouterr().out
    assert "| format | mutations | data |" in out
    assert "| wfdb-16 | 3 |" in out and "| wav | 3 |" in out


# ---------------------------------------------------------------------------------------------
# damage the fuzzing found to hang or crash inside the HDF5 library, made on purpose
# ---------------------------------------------------------------------------------------------


def test_hdf5_global_heap_that_never_ends_is_refused(
    samples: dict[str, Sample], tmp_path: Path
) -> None:
    """A free-space object of size 0 in a global heap: the HDF5 library loops forever on it."""
    import struct

    from emg_pipeline.errors import RecordingError
    from emg_pipeline.sources.formats import read_recording

    data = bytearray(samples["opensignals-h5"].files["opensignals.h5"])
    heap = data.find(b"GCOL\x01\x00\x00\x00")
    assert heap > 0  # the sample's text attributes live in a global heap
    (size,) = struct.unpack_from("<Q", data, heap + 8)
    p = heap + 16
    while struct.unpack_from("<H", data, p)[0] != 0:  # to the free-space object
        p += 16 + -(-struct.unpack_from("<Q", data, p + 8)[0] // 8) * 8
    assert heap < p < heap + size
    struct.pack_into("<Q", data, p + 8, 0)
    path = tmp_path / "loop.h5"
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match="damaged global heap collection"):
        read_recording(path)


def test_hdf5_attribute_of_another_type_is_refused_unread(tmp_path: Path) -> None:
    """A text attribute turned into a variable-length sequence crashed the HDF5 library."""
    import h5py
    import numpy as np

    from emg_pipeline.errors import RecordingError
    from emg_pipeline.sources.formats import read_recording

    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("00:07:80:3B:46:61")
        g.attrs.update({"sampling rate": 1000, "channels": np.array([1]),
                        "resolution": np.array([16])})
        sequence = np.empty(1, dtype=object)
        sequence[0] = np.arange(3, dtype=np.uint8)
        g.attrs.create("date", sequence, dtype=h5py.vlen_dtype(np.uint8))
        g.create_group("raw").create_dataset("channel_1", data=np.zeros((10, 1), np.uint16))
    with pytest.raises(RecordingError, match=r"attribute 'date' .* is not a number or a text"):
        read_recording(path)
