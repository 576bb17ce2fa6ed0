"""Sinks: where the pipeline's results go while a stream runs.

Each is a :class:`~emg_pipeline.run.Sink` (``open(info)``, ``update(result)`` with
every :class:`~emg_pipeline.pipeline.ChunkResult`, ``close(summary)``), driven by
:func:`~emg_pipeline.run.run`:

- :func:`open_live_view`: the live view of ``replay`` and ``stream``: the
  terminal monitor (:class:`TerminalMonitor`) on a terminal, one line per live
  event (:class:`ConsoleView`) elsewhere, and the end summary;
- :class:`~emg_pipeline.sinks.episodes.EpisodeFile`: the episode file, each
  episode appended as it ends;
- :class:`RecordingSink`: a durable BDF+/EDF+ recording (:class:`RecordingWriter`)
  with onsets, alerts, episodes and link faults as annotations;
- :class:`~emg_pipeline.sinks.lsl.LslOutlet`: the conditioned EMG and the live
  events as Lab Streaming Layer streams (the ``lab`` extra);
- :class:`~emg_pipeline.web.WebSink`: the live browser dashboard (the ``web``
  extra).
"""

from .console import ConsoleView, format_event, format_stream_time
from .monitor import TerminalMonitor, open_live_view
from .recording import RecordingSink, RecordingWriter

__all__ = [
    "ConsoleView",
    "RecordingSink",
    "RecordingWriter",
    "TerminalMonitor",
    "format_event",
    "format_stream_time",
    "open_live_view",
]
