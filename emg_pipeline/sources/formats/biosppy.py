"""BioSPPy "Simple Text Format" files.

Layout
------
Header lines start with ``#``; the first is ``# Simple Text Format`` and the
others are ``# Key:= value`` pairs, for example::

    # Simple Text Format
    # Sampling Rate (Hz):= 1000.00
    # Resolution:= 12
    # Labels:= EMG

A header line holding a JSON object (``# {"sampling_rate": 1000, ...}``) is
merged in as well. Then one sample per line: one value, or several separated
by blanks or tabs (one column per label).

Rate
----
From the ``Sampling Rate`` entry; ``fs=`` must agree within 1 %.

Start time
----------
From a ``# Date:= 2017-03-14T10:21:05.000123`` entry (the one BioSPPy's
``store_txt`` writes; ``Start Time``, ``start_time`` and ``Datetime`` are read
too) when it holds an ISO-8601 date and time of day, with its zone if it
states one, else naive. A date alone, or text that is no date, gives no start
time and stays in ``metadata['header']``. An entry that names the start
(``Start Time``, ``start_time``) but holds no date and time is an error. Note
that ``store_txt`` writes the UTC time of writing when it is given no date:
such a naive time is taken as local time unless ``--timezone UTC`` is given.

Units
-----
``'counts'`` (raw ADC values, e.g. 12-bit with mid-scale ~2048), unless the
header declares a voltage unit with ``# Units:= uV`` (or ``mV``, ``V``), in
which case values are multiplied by 1, 1e3 or 1e6 to give µV.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import numpy as np

from emg_pipeline.errors import RecordingError

from ._base import (
    RecordingInfo,
    RecordingReader,
    leading_lines,
    parse_date_time,
    read_head,
    resolve_fs,
    text_of,
    to_uv,
    uv_per_unit,
)
from ._table import WHITESPACE, TableSpec, iter_table, table_spec

__all__ = ["BioSppyReader", "parse_header"]

MAGIC = "# Simple Text Format"
_PAIR = re.compile(r"^#\s*([^:]+?)\s*:=\s*(.*)$")


def parse_header(lines: list[str]) -> dict[str, object]:
    """Parse ``# Key:= value`` and ``# {json}`` header lines into a dict (keys lower-cased).

    Examples
    --------
    >>> parse_header(["# Simple Text Format", "# Sampling Rate (Hz):= 1000.00"])
    {'sampling rate (hz)': '1000.00'}
    """
    out: dict[str, object] = {}
    for line in lines:
        body = line.lstrip("#").strip()
        if body.startswith("{"):
            try:
                value = json.loads(body)
            except (ValueError, RecursionError):  # malformed, or nested beyond the parser
                continue
            if isinstance(value, dict):
                out.update({str(k).lower(): v for k, v in value.items()})
            continue
        match = _PAIR.match(line.strip())
        if match:
            out[match.group(1).strip().lower()] = match.group(2).strip()
    return out


def _rate(header: dict[str, object]) -> float | None:
    for key, value in header.items():
        if re.sub(r"[\s_]+", " ", key).startswith("sampling rate"):
            try:
                return float(str(value).split()[0])
            except (ValueError, IndexError):
                return None
    return None


#: header keys (normalised) that date the recording; those naming the start must be valid
_START_KEYS = ("start time", "start_time")
_DATE_KEYS = ("date", "datetime", "date time")


def _start_time(path: Path, header: dict[str, object]) -> datetime | None:
    """The start time of the ``Date`` (or ``Start Time``) header entry, or None."""
    for key, value in header.items():
        name = " ".join(key.split())
        if name in _START_KEYS:
            moment = parse_date_time(str(value))
            if moment is None:
                raise RecordingError(
                    path, f"header entry '{key}:= {value}' is not an ISO-8601 date and time "
                    "(expected e.g. 2026-11-27T08:00:00+01:00)"
                )
            return moment
    for key, value in header.items():
        if " ".join(key.split()) in _DATE_KEYS:
            moment = parse_date_time(str(value))
            if moment is not None:
                return moment
    return None


def _bits(value: object) -> int | None:
    try:
        return int(float(str(value)))
    except (ValueError, OverflowError):  # not a number, or inf
        return None


class BioSppyReader(RecordingReader):
    """Reader of BioSPPy simple text files (format ``'biosppy'``); see the module docstring."""

    format: ClassVar[str] = "biosppy"
    extensions: ClassVar[tuple[str, ...]] = (".txt",)

    _spec: TableSpec
    _scale: float = 1.0

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """Tell whether ``head`` starts with ``# Simple Text Format``."""
        text = text_of(head[:400])
        return text is not None and text.lstrip("\ufeff").startswith(MAGIC)

    def _inspect(self, fs: float | None) -> RecordingInfo:
        path = self.path
        text = text_of(read_head(path))
        if text is None:
            raise RecordingError(path, "binary content: not a BioSPPy text file")
        lines = leading_lines(text.lstrip("\ufeff"), 400)
        n_header = 0
        while n_header < len(lines) and lines[n_header].lstrip().startswith("#"):
            n_header += 1
        header = parse_header(lines[:n_header])
        data = [line for line in lines[n_header:] if line.strip()]
        if not data:
            raise RecordingError(path, "no data rows after the BioSPPy header")
        width = len(data[0].split())
        labels_text = str(header.get("labels", "")).strip()
        labels = [x.strip() for x in re.split(r"[,\t]", labels_text) if x.strip()]
        if len(labels) != width:
            labels = [f"ch{k + 1}" for k in range(width)] if width > 1 else (labels or ["ch1"])[:1]
        rate = resolve_fs(path, _rate(header), fs, "the BioSPPy header")
        unit_text = str(header.get("units", header.get("unit", ""))).strip()
        scale = uv_per_unit(unit_text) if unit_text else None
        self._scale = 1.0 if scale is None else scale
        self._spec = table_spec(
            path, skiprows=n_header, sep=WHITESPACE, usecols=range(width), names=labels
        )
        return RecordingInfo(
            path=path,
            format=self.format,
            fs=rate,
            channels=tuple(labels),
            unit="counts" if scale is None else "uV",
            n_samples=None,
            start_time=_start_time(path, header),
            metadata={
                "header": dict(header),
                "resolution_bits": _bits(header.get("resolution")),
                "scale_uv": scale,
            },
        )

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        for block in iter_table(self.path, self._spec, size_hint):
            yield block if self._scale == 1.0 else to_uv(block, self._scale)
