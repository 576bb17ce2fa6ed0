"""Readers of recording files: one module per format, one mechanism to choose.

Every format has a :class:`RecordingReader` subclass that can tell its files
from their first bytes (``sniff``), describe them (:class:`RecordingInfo`) and
stream them as float64 ``(n_samples, n_channels)`` chunks. :func:`detect_format`
asks the readers in a fixed order, most specific first; the file's extension
only breaks ties. :func:`open_recording` picks the reader, :func:`read_recording`
reads everything.

=========== ====================================================== ======
format      files                                                  unit
=========== ====================================================== ======
csv         CSV/TSV/TXT tables, header optional, ``.gz`` too       counts
openbci     OpenBCI GUI text (v6, v5, legacy)                      uV
opensignals BITalino/PLUX OpenSignals TXT and HDF5                 uV
myo         Myo armband exports: 8 int8 per line (+ label)         counts
biosppy     BioSPPy simple text                                    counts
wfdb        PhysioNet WFDB ``.hea`` + ``.dat`` (16, 212, 80, ...)  uV
edf         EDF, EDF+, BDF, BDF+                                   uV
wav         WAV                                                    counts
xdf         XDF (LabRecorder): the EMG stream, markers as          uV
            annotations, gaps in time kept (``lab`` extra)
=========== ====================================================== ======

Each module's docstring states its layout, its unit conversion and where the
recording's start time (``RecordingInfo.start_time``) comes from: the header of
EDF/BDF, WFDB and OpenSignals, the timestamps of OpenBCI, a ``timestamp`` or
ISO-8601 time column or a ``# start_time:`` comment of a CSV, the ``bext`` or
``LIST``/``INFO`` chunk of a WAV, the ``Date`` entry of a BioSPPy header. Myo
exports and XDF files state none.

An XDF file holds several streams: ``open_recording(path, stream=NAME)``
chooses one (by default the stream of type EMG); other formats hold one
recording and refuse ``stream``.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.csv"
>>> _ = path.write_text("time,biceps\\n0.0,1.5\\n0.001,2.5\\n0.002,3.5\\n")
>>> detect_format(path)
'csv'
>>> data, info = read_recording(path)
>>> data.shape, info.fs, info.channels
((3, 1), 1000.0, ('biceps',))
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from emg_pipeline.errors import ConfigError, RecordingError

from ._base import RecordingInfo, RecordingReader, is_gzip, read_head, text_of
from .biosppy import BioSppyReader
from .csv import CsvReader
from .edf import EdfReader
from .myo import MyoReader
from .openbci import OpenBciReader
from .opensignals import OpenSignalsReader
from .wav import WavReader
from .wfdb import WfdbReader
from .xdf import XdfReader

__all__ = [
    "FORMATS",
    "READERS",
    "RecordingInfo",
    "RecordingReader",
    "detect_format",
    "open_recording",
    "read_recording",
]

#: the reader classes, in the order detect_format asks them (most specific first;
#: the generic CSV table last, as most text formats are tables too)
READERS: tuple[type[RecordingReader], ...] = (
    XdfReader,
    WavReader,
    EdfReader,
    OpenSignalsReader,
    WfdbReader,
    OpenBciReader,
    BioSppyReader,
    MyoReader,
    CsvReader,
)

#: the format names, as accepted by ``open_recording(format=...)``
FORMATS: tuple[str, ...] = (
    "csv", "openbci", "opensignals", "myo", "biosppy", "wfdb", "edf", "wav", "xdf",
)

_BY_NAME = {reader.format: reader for reader in READERS}


def _existing(path: Path) -> Path:
    """Return the file to read for ``path``, or raise if there is none."""
    if path.is_file():
        return path
    if path.is_dir():
        raise RecordingError(path, "is a directory, not a recording file")
    for reader in READERS:
        found = reader.locate(path)
        if found is not None:
            return found
    raise RecordingError(path, "file not found")


def detect_format(path: str | Path) -> str:
    """Return the format of a recording, judged by its content.

    The readers' ``sniff`` methods are asked in the order of :data:`READERS`;
    when several accept the file, one whose extensions include the file's
    ending is preferred, else the first.

    Parameters
    ----------
    path : str or Path
        The file (a WFDB record may be named without extension).

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    RecordingError
        If the file is missing, empty or in no known format.
    """
    path = _existing(Path(path))
    head = read_head(path)
    if not head.strip():
        if path.stat().st_size and is_gzip(path):
            raise RecordingError(path, "damaged gzip stream: nothing could be decompressed")
        raise RecordingError(path, "file is empty")
    matches = [reader for reader in READERS if reader.sniff(head, path)]
    if not matches:
        kind = "binary" if text_of(head) is None else "text"
        raise RecordingError(
            path, f"unknown format ({kind} content matches none of {', '.join(FORMATS)})"
        )
    name = path.name.lower()
    for reader in matches:
        if any(name.endswith(ext) for ext in reader.extensions):
            return reader.format
    return matches[0].format


def open_recording(
    path: str | Path,
    *,
    format: str | None = None,
    fs: float | None = None,
    strict: bool = False,
    stream: str | None = None,
) -> RecordingReader:
    """Open a recording with the reader of its format.

    Parameters
    ----------
    path : str or Path
        The file.
    format : str, optional
        One of :data:`FORMATS`; detected from the content when omitted.
    fs : float, optional
        Sampling rate in Hz: required when the file does not state one
        (headerless CSV, Myo), else checked against the file's (1 % tolerance).
    strict : bool
        A damaged file of which a part can be read (a truncated EDF/BDF or
        WFDB record) is read up to its last whole record with one
        :class:`~emg_pipeline.errors.RecordingWarning` saying what was lost;
        with ``strict=True`` it raises :class:`RecordingError` instead.
    stream : str, optional
        For files that hold several streams (XDF): the name of the one to
        read (default: the EMG stream).

    Returns
    -------
    RecordingReader
        An open reader; use it as a context manager to close it.

    Raises
    ------
    ConfigError
        If ``format`` is not a known format name, or ``stream`` is given for
        a format that holds one recording.
    RecordingError
        If the file is missing or malformed (or, with ``strict=True``, can
        only be read in part).
    SampleRateError
        If the rate is unknown or disagrees with the file.
    """
    if format is not None and format not in _BY_NAME:
        raise ConfigError("format", format, f"one of {', '.join(FORMATS)}")
    target = _existing(Path(path))
    name = format if format is not None else detect_format(target)
    if stream is None:
        return _BY_NAME[name](target, fs=fs, strict=strict)
    if name != XdfReader.format:
        raise ConfigError("stream", stream, f"a stream of an XDF file ({name} files hold "
                                            "one recording)")
    return XdfReader(target, fs=fs, strict=strict, stream=stream)


def read_recording(
    path: str | Path,
    *,
    format: str | None = None,
    fs: float | None = None,
    strict: bool = False,
    stream: str | None = None,
) -> tuple[np.ndarray, RecordingInfo]:
    """Read a whole recording: ``(samples, info)``.

    Parameters are those of :func:`open_recording`.

    Returns
    -------
    samples : ndarray, shape (n_samples, n_channels)
        Float64, in ``info.unit``.
    info : RecordingInfo
        The description, with ``n_samples`` filled in.
    """
    with open_recording(path, format=format, fs=fs, strict=strict, stream=stream) as reader:
        data = reader.read()
        info = reader.info
    if info.n_samples is None:
        info = dataclasses.replace(info, n_samples=int(data.shape[0]))
    return data, info
