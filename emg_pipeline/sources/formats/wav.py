"""WAV (RIFF/RIFX/RF64) files, one channel per audio channel.

Read with :func:`scipy.io.wavfile.read` memory-mapped (``mmap=True``), so
chunks come from disk as they are requested. 24-bit files cannot be
memory-mapped by scipy and are read whole once; scipy returns them
left-aligned in int32 and they are shifted back to their 24-bit values. A file
shorter than its ``data`` chunk says is reported as truncated.

Units
-----
``'counts'``: the sample values as stored (integers of the file's bit depth,
or the floats of a float WAV), with no scaling. WAV has no notion of
microvolts. Channels are named ``ch1..chN``; the rate is the file's.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy.io import wavfile

from emg_pipeline.errors import RecordingError

from ._base import RecordingInfo, RecordingReader, read_head, resolve_fs

__all__ = ["WavReader"]


class WavReader(RecordingReader):
    """Reader of WAV files (format ``'wav'``); see the module docstring."""

    format: ClassVar[str] = "wav"
    extensions: ClassVar[tuple[str, ...]] = (".wav",)

    _data: np.ndarray | None = None
    _divisor: float = 1.0

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> bool:
        """Tell whether ``head`` is a RIFF/RIFX/RF64 WAVE header."""
        return head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE"

    def _inspect(self, fs: float | None) -> RecordingInfo:
        path = self.path
        rate, data, mapped = self._load()
        if data.ndim == 1:
            data = data[:, None]
        self._data = data
        container = _container_bytes(read_head(path, 4096))
        if container == 3 and data.dtype == np.int32:
            self._divisor = 256.0  # scipy puts 3-byte samples in the top bytes of an int32
        return RecordingInfo(
            path=path,
            format=self.format,
            fs=resolve_fs(path, float(rate), fs, "the WAV header"),
            channels=tuple(f"ch{k + 1}" for k in range(data.shape[1])),
            unit="counts",
            n_samples=int(data.shape[0]),
            metadata={
                "dtype": str(data.dtype),
                "bytes_per_sample": container,
                "memory_mapped": mapped,
            },
        )

    def _load(self) -> tuple[int, np.ndarray, bool]:
        with warnings.catch_warnings():
            # unknown chunks (LIST, bext...) are skipped by scipy with a warning
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            try:
                rate, data = wavfile.read(self.path, mmap=True)
                return rate, data, True
            except ValueError as error:
                if "mmap length is greater than file size" in str(error):
                    raise RecordingError(
                        self.path, "truncated: WAV data chunk is incomplete"
                    ) from None
                if "not compatible" not in str(error):
                    raise RecordingError(self.path, f"cannot read WAV: {_line(error)}") from None
            except (OSError, EOFError) as error:
                raise RecordingError(self.path, f"cannot read WAV: {_line(error)}") from None
            try:
                rate, data = wavfile.read(self.path, mmap=False)
            except (ValueError, OSError, EOFError) as error:
                raise RecordingError(self.path, f"cannot read WAV: {_line(error)}") from None
            return rate, data, False

    def _blocks(self, size_hint: int) -> Iterator[np.ndarray]:
        data = self._data
        if data is None:
            raise RecordingError(self.path, "reader is closed")
        for start in range(0, data.shape[0], size_hint):
            block = np.asarray(data[start : start + size_hint], dtype=np.float64)
            yield block / self._divisor if self._divisor != 1.0 else block

    def close(self) -> None:
        """Drop the memory map."""
        self._data = None


def _container_bytes(head: bytes) -> int | None:
    """Bytes per sample and channel, from the ``fmt `` chunk (None if not in ``head``)."""
    order = ">" if head[:4] == b"RIFX" else "<"
    pos = 12
    while pos + 8 <= len(head):
        chunk_id = head[pos : pos + 4]
        (size,) = struct.unpack(order + "I", head[pos + 4 : pos + 8])
        if chunk_id == b"fmt " and pos + 24 <= len(head):
            channels, _, _, block_align = struct.unpack(order + "HIIH", head[pos + 10 : pos + 22])
            return block_align // channels if channels else None
        pos += 8 + size + (size & 1)
    return None


def _line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
