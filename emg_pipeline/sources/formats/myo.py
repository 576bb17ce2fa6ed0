"""Thalmic Myo armband exports: 8 signed 8-bit EMG values per line, no header.

Layout
------
One sample per line: 8 integers in −128..127, comma- or blank-separated, and
optionally a 9th non-negative integer, the class label of that sample (as in
gesture data sets). No header, no rate.

Recognised by content: every line of the file's head has 8 or 9 integer fields
with the first 8 in −128..127 (a generic headerless CSV of that shape is taken
to be a Myo file).

Rate
----
Not in the file: ``fs=`` is required (the Myo streams EMG at 200 Hz).

Units
-----
``'counts'``: the Myo's EMG values are unitless (no µV scale is published).

Labels
------
With a 9th column, ``metadata['labels']`` is the per-sample label array
(int64, −1 where the cell is empty; a label that is not a whole number in
0..2**31−1 is an error) and the annotations have one row per run of
equal labels: ``onset_s``, ``duration_s`` and ``text = f"label {k}"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from emg_pipeline.errors import RecordingError, SampleRateError

from ._base import (
    RecordingInfo,
    RecordingReader,
    check_fs,
    empty_annotations,
    leading_lines,
    make_annotations,
    read_head,
    text_of,
)
from ._table import WHITESPACE, TableSpec, iter_table, table_spec

__all__ = ["MyoReader", "label_segments"]

N_EMG = 8
#: largest class label accepted (labels are small integers; far larger is a damaged cell)
_MAX_LABEL = 2**31 - 1
_INTEGER = re.compile(r"^[+-]?\d+$")


def _layout(text: str) -> tuple[str, int] | None:
    """Return ``(separator, n_fields)`` if the lines look like Myo samples."""
    lines = [line for line in leading_lines(text, 200) if line.strip()]
    if not lines:
        return None
    sep = "," if "," in lines[0] else WHITESPACE
    width = None
    for line in lines:
        fields = line.split(",") if sep == "," else line.split()
        fields = [f.strip() for f in fields]
        if width is None:
            width = len(fields)
            if width not in (N_EMG, N_EMG + 1):
                return None
        if len(fields) != width or not all(_INTEGER.match(f) for f in fields):
            return None
        emg = [int(f) for f in fields[:N_EMG]]  # Python ints: a 30-digit field is no overflow
        if min(emg) < -128 or max(emg) > 127:
            return None
        if width == N_EMG + 1 and int(fields[N_EMG]) < 0:
            return None
    return (sep, width) if width is not None else None


def label_segments(labels: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split per-sample labels into runs: ``(onset_s, duration_s, label)`` arrays.

    Examples
    --------
    >>> onset, duration, label = label_segments(np.array([0, 0, 3, 3, 3, 0]), 2.0)
    >>> onset.tolist(), duration.tolist(), label.tolist()
    ([0.0, 1.0, 2.5], [1.0, 1.5, 0.5], [0, 3, 0])
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        empty = np.empty(0)
        return empty, empty, labels[:0]
    starts = np.concatenate(([0], np.flatnonzero(labels[1:] != labels[:-1]) + 1))
    stops = np.append(starts[1:], labels.size)
    return starts / fs, (stops - starts) / fs, labels[starts]


class MyoReader(RecordingReader):
    """Reader of Myo armband text exports (format ``'myo'``); see the module docstring."""

    format: ClassVar[str] = "myo"
    extensions: ClassVar[tuple[str, ...]] = (".csv", ".txt")

    _spec: TableSpec

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """Tell whether ``head`` is lines of 8 int8 values (plus an optional label)."""
        text = text_of(head)
        return text is not None and _layout(text) is not None

    def _inspect(self, fs: float | None) -> RecordingInfo:
        path = self.path
        head = read_head(path)
        if not head.strip():
            raise RecordingError(path, "file is empty")
        text = text_of(head)
        layout = None if text is None else _layout(text)
        if layout is None:
            raise RecordingError(
                path, "not a Myo export: expected 8 integers in -128..127 per line"
            )
        if fs is None:
            raise SampleRateError(
                f"{path}: sampling rate unknown: pass --fs (the Myo streams EMG at 200 Hz)"
            )
        rate = check_fs(fs, path, "fs")
        sep, width = layout
        names = tuple(f"ch{k + 1}" for k in range(N_EMG))
        self._spec = table_spec(path, skiprows=0, sep=sep, usecols=range(N_EMG), names=names)
        metadata: dict[str, object] = {
            "device": "Thalmic Myo armband",
            "delimiter": "whitespace" if sep == WHITESPACE else sep,
        }
        annotations = None
        n_samples = None
        if width == N_EMG + 1:
            label_spec = table_spec(path, skiprows=0, sep=sep, usecols=[N_EMG], names=["label"])
            parts = [b[:, 0] for b in iter_table(path, label_spec, 1 << 16)]
            values = np.concatenate(parts) if parts else np.empty(0)
            given = ~np.isnan(values)
            bad = given & ((values != np.round(values)) | (values < 0) | (values > _MAX_LABEL))
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise RecordingError(
                    path, f"label {values[k]:g} at data row {k + 1} is not a whole number "
                    f"in 0..{_MAX_LABEL}"
                )
            labels = np.where(given, values, -1).astype(np.int64)
            onset, duration, seg = label_segments(labels, rate)
            annotations = make_annotations(onset, duration, [f"label {k}" for k in seg.tolist()])
            metadata["labels"] = labels
            n_samples = int(labels.size)
        return RecordingInfo(
            path=path,
            format=self.format,
            fs=rate,
            channels=names,
            unit="counts",
            n_samples=n_samples,
            annotations=empty_annotations() if annotations is None else annotations,
            metadata=metadata,
        )

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        return iter_table(self.path, self._spec, size_hint)
