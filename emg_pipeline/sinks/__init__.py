"""Sinks: where the pipeline's results go while a stream runs.

- :func:`open_live_view` — the live console output shared by ``emg-pipeline
  replay`` and the BLE ``stream`` command: one line per live event, a summary
  at the end;
- :class:`~emg_pipeline.sinks.recording.RecordingWriter` — a durable BDF+/EDF+
  recording of the samples with the detected episodes as annotations.

Both are fed the same way: ``update(result)`` with every
:class:`~emg_pipeline.pipeline.ChunkResult` (including the one of
``pipe.flush()``), then ``close()``.
"""

from .console import ConsoleView, format_event, format_stream_time, open_live_view
from .recording import RecordingWriter

__all__ = [
    "ConsoleView",
    "RecordingWriter",
    "format_event",
    "format_stream_time",
    "open_live_view",
]
