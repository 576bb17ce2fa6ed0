"""emg-pipeline: live detection of muscle twitches and prolonged spasms from surface EMG.

Data flows one way::

    source -> decode -> conditioning -> envelope -> detector -> classifier -> sinks

The public surface:

- :func:`detect` — offline detection on an array or DataFrame (the streaming
  pipeline fed one chunk or many);
- :class:`Pipeline` — the streaming object: ``process(chunk)`` returns the
  envelope and the live events of that chunk, ``flush()`` ends the stream;
- :func:`run` / :func:`run_async` — the one loop that drives a source through a
  pipeline into :class:`Sink` s, returning a :class:`RunSummary`;
- :class:`PipelineSettings` — every setting, validated;
- :class:`Label` — ``twitch`` or ``spasm`` (one boundary, ``spasm_min_s``);
- :class:`Episode`, :class:`LiveEvent` — what comes out;
- :func:`simulate` — synthetic recordings with ground truth;
- :func:`to_mne` — a recording and its episodes as an MNE ``Raw`` (the ``lab``
  extra, imported when called; see :mod:`emg_pipeline.lab`).
"""

from .batch import batch
from .chunk import Chunk, ChunkFlags
from .errors import (
    ConfigError,
    DecodeError,
    EmgPipelineError,
    ProfileError,
    RecordingError,
    SampleRateError,
)
from .events import Episode, LiveEvent
from .lab import to_mne  # mne is imported when to_mne is called
from .labels import Label, Pattern
from .pipeline import ChunkResult, Pipeline, detect, episodes_frame
from .run import RunSummary, Sink, StreamInfo, run, run_async
from .settings import PipelineSettings
from .sources.synthetic import SyntheticRecording, simulate

__version__ = "0.1.0"

__all__ = [
    "Chunk",
    "ChunkFlags",
    "ChunkResult",
    "ConfigError",
    "DecodeError",
    "EmgPipelineError",
    "Episode",
    "Label",
    "LiveEvent",
    "Pattern",
    "Pipeline",
    "PipelineSettings",
    "ProfileError",
    "RecordingError",
    "RunSummary",
    "SampleRateError",
    "Sink",
    "StreamInfo",
    "SyntheticRecording",
    "__version__",
    "batch",
    "detect",
    "episodes_frame",
    "run",
    "run_async",
    "simulate",
    "to_mne",
]
