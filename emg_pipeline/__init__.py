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

Each name is imported when first used, so ``import emg_pipeline`` is cheap.
"""

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from .lab import to_mne
    from .labels import Label, Pattern
    from .pipeline import ChunkResult, Pipeline, detect, episodes_frame
    from .run import RunSummary, Sink, StreamInfo, run, run_async
    from .settings import PipelineSettings
    from .sources.synthetic import SyntheticRecording, simulate

__version__ = "0.1.0"

#: the module of each public name, imported when the name is first used: importing the
#: package stays cheap (the command line starts, answers ``--version`` and can be
#: interrupted before numpy, scipy and numba are loaded)
_LAZY: dict[str, str] = {
    name: module
    for module, names in {
        ".batch": ("batch",),
        ".chunk": ("Chunk", "ChunkFlags"),
        ".errors": ("ConfigError", "DecodeError", "EmgPipelineError", "ProfileError",
                    "RecordingError", "SampleRateError"),
        ".events": ("Episode", "LiveEvent"),
        ".lab": ("to_mne",),  # mne itself is imported when to_mne is called
        ".labels": ("Label", "Pattern"),
        ".pipeline": ("ChunkResult", "Pipeline", "detect", "episodes_frame"),
        ".run": ("RunSummary", "Sink", "StreamInfo", "run", "run_async"),
        ".settings": ("PipelineSettings",),
        ".sources.synthetic": ("SyntheticRecording", "simulate"),
    }.items()
    for name in names
}


def __getattr__(name: str) -> object:
    """A public name, its module imported on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package's module: importing a submodule never hides a public name.

    ``batch`` and ``run`` are both functions exported here and submodules;
    the import of a submodule sets the package's attribute of its name, which
    would otherwise make ``emg_pipeline.run`` the module once it is imported.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if not (name in _LAZY and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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
