"""The unit of data that flows through the pipeline.

Arrays are float64 with shape ``(n_samples, n_channels)``: time on axis 0.
A :class:`Chunk` adds where the block sits on the sample clock of its stream
(``first_index``) and what went wrong while it was acquired (``flags``), so that
time always comes from sample counts and data loss travels with the data.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Chunk", "ChunkFlags", "as_samples"]


class ChunkFlags(enum.IntFlag):
    """Conditions attached to a chunk; OR-combinable."""

    NONE = 0
    #: samples in the chunk were missing (NaN) and were bridged
    NAN_BRIDGED = enum.auto()
    #: packets were lost before or inside this chunk; lost samples are marked as a gap
    PACKET_LOSS = enum.auto()
    #: the source reconnected before this chunk
    RECONNECTED = enum.auto()
    #: samples reached the converter's full scale
    CLIPPED = enum.auto()
    #: packets that could not be decoded were skipped
    MALFORMED = enum.auto()


@dataclass(frozen=True)
class Chunk:
    """A block of consecutive samples from one stream.

    Parameters
    ----------
    samples : ndarray, shape (n_samples, n_channels)
        Float samples (µV when the stream is calibrated, else counts).
    fs : float
        Sampling rate in Hz.
    first_index : int
        Index of the first sample on the stream's sample clock.
    flags : ChunkFlags
        Conditions met while acquiring this chunk.
    lost_samples : int
        Samples known to be missing just before this chunk (they are *not*
        in ``samples``; sources insert a NaN gap instead when the timeline
        must stay right).
    """

    samples: np.ndarray
    fs: float
    first_index: int = 0
    flags: ChunkFlags = ChunkFlags.NONE
    lost_samples: int = 0
    channels: tuple[str, ...] = field(default=())

    @property
    def n_samples(self) -> int:
        """Number of samples (rows)."""
        return int(self.samples.shape[0])

    @property
    def t0(self) -> float:
        """Time of the first sample in seconds, from the sample clock."""
        return self.first_index / self.fs


def as_samples(data: object, n_channels: int | None = None) -> np.ndarray:
    """Return ``data`` as a float64 ``(n_samples, n_channels)`` array.

    One-dimensional input is one channel. The input is never modified; a copy
    is made only when the dtype or layout requires it.

    Parameters
    ----------
    data : array_like or Chunk
        Samples.
    n_channels : int, optional
        Expected number of channels.

    Returns
    -------
    ndarray
        Two-dimensional float64 view or copy.

    Raises
    ------
    ValueError
        If the array has more than two dimensions or the wrong channel count.

    Examples
    --------
    >>> as_samples([1, 2, 3]).shape
    (3, 1)
    """
    if isinstance(data, Chunk):
        data = data.samples
    x = np.asarray(data, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"samples must be (n_samples, n_channels), got shape {x.shape}")
    if n_channels is not None and x.shape[1] != n_channels:
        raise ValueError(f"expected {n_channels} channels, got {x.shape[1]}")
    return x
