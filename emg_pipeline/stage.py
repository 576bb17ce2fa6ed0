"""What flows between the pipeline's stages, and the one protocol every stage follows.

A :class:`Block` is one chunk on its way through the pipeline: the samples
(raw, and the EMG band as conditioned so far), then the frames the chunk
completed (envelope, frame power, and the flags of artefact, ECG and no
signal), then the detector's decisions and the live events. Each stage reads
the fields it needs, sets the fields it makes and returns the block; nothing
else passes between stages. A stage never writes into an array it was given:
it sets a new one.

A :class:`Stage` is built from its configuration (never mutated), builds its
carried state in ``reset``, and maps one block to the next with ``process``.
Feeding a stage one chunk or the same samples split anywhere gives identical
output and identical final state: that is what makes the live path and the
offline path one path. The last block of a stream has ``end_of_stream`` set
(and may hold no samples): stages that hold something open close it then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from .chunk import ChunkFlags

if TYPE_CHECKING:
    from .conditioning.gaps import Gap
    from .detection import Detection
    from .events import LiveEvent

__all__ = ["Block", "Stage"]

_NO_FLAGS = ChunkFlags.NONE


@dataclass(slots=True, eq=False)
class Block:
    """One chunk on its way through the stages: the record each stage fills in.

    Mutable on purpose: setting a field costs a tenth of a microsecond, where
    making a new block per stage costs microseconds, which matters for live
    chunks of a few milliseconds.

    Attributes
    ----------
    first_sample : int
        Index of the first sample on the stream's sample clock.
    raw : ndarray, shape (n_samples, n_channels)
        Input samples (after the NaN bridge: gaps held at the last value).
    band : ndarray, shape (n_samples, n_channels)
        The EMG band as conditioned by the stages so far.
    flags : ChunkFlags
        What went wrong while acquiring or conditioning this chunk.
    first_frame : int
        Index of the first frame completed by this chunk on the frame clock.
    envelope, power : ndarray, shape (n_frames, n_channels)
        Envelope and mean square of each completed frame (empty before the
        envelope stage).
    artefact, ecg, no_signal : ndarray of bool, shape (n_frames, n_channels)
        Frames explained by an artefact, frames of a channel carrying ECG,
        frames without signal (a flat line). ``ecg`` is None when no stage
        looks for ECG.
    decisions : tuple of Detection
        The detector's decisions on these frames.
    events : tuple of LiveEvent
        Live events (onset, sustained, end with its episode).
    end_of_stream : bool
        The stream ends with this block.
    gaps : tuple of Gap
        Runs of missing samples bridged in this block (per channel, on the
        stream's sample clock).
    mains : tuple of (float, int), or None
        The nominal mains frequency being removed, and the first sample of
        the stream it is removed from (None: no mains found, or no mains
        stage).
    """

    first_sample: int
    raw: np.ndarray
    band: np.ndarray
    flags: ChunkFlags
    first_frame: int
    envelope: np.ndarray
    power: np.ndarray
    artefact: np.ndarray
    ecg: np.ndarray | None
    no_signal: np.ndarray
    decisions: tuple[Detection, ...]
    events: tuple[LiveEvent, ...]
    end_of_stream: bool
    gaps: tuple[Gap, ...]
    mains: tuple[float, int] | None = None

    @classmethod
    def of_samples(
        cls, samples: np.ndarray, first_sample: int, first_frame: int,
        flags: ChunkFlags = _NO_FLAGS, *, end_of_stream: bool = False,
    ) -> Block:
        """A block entering the pipeline: samples only, no frames yet."""
        no_frames = np.empty((0, samples.shape[1]))
        no_flags = np.empty((0, samples.shape[1]), dtype=bool)
        return cls(first_sample, samples, samples, flags, first_frame, no_frames, no_frames,
                   no_flags, None, no_flags, (), (), end_of_stream, ())

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return int(self.raw.shape[0])

    @property
    def n_frames(self) -> int:
        """Number of frames completed (0 before the envelope stage)."""
        return int(self.envelope.shape[0])


@runtime_checkable
class Stage(Protocol):
    """A streaming stage: ``process(block) -> block`` and ``reset()``."""

    def process(self, block: Block) -> Block:
        """Consume one block and return it with this stage's outputs added."""
        ...

    def reset(self) -> None:
        """Forget all carried state, as if freshly constructed."""
        ...
