"""emg-pipeline: live detection of muscle twitches and prolonged spasms from surface EMG.

Data flows one way::

    source -> decode -> conditioning -> envelope -> detector -> classifier -> sinks

The public surface:

- :func:`detect` — offline detection on an array or DataFrame (the streaming
  pipeline fed one chunk or many);
- :class:`Pipeline` — the streaming object: ``process(chunk)`` returns the
  envelope and the live events of that chunk, ``flush()`` ends the stream;
- :class:`PipelineSettings` — every setting, validated;
- :class:`Episode`, :class:`LiveEvent` — what comes out;
- :func:`simulate` — synthetic recordings with ground truth.
"""

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
from .pipeline import ChunkResult, Pipeline, detect, episodes_frame
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
    "LiveEvent",
    "Pipeline",
    "PipelineSettings",
    "ProfileError",
    "RecordingError",
    "SampleRateError",
    "SyntheticRecording",
    "__version__",
    "detect",
    "episodes_frame",
    "simulate",
]
