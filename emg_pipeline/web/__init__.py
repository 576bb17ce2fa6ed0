"""A live browser dashboard: the signal, the episodes and the diary on any screen.

``emg-pipeline serve`` (and ``--web [HOST:]PORT`` on ``replay`` and ``stream``)
serve one page, by default on this computer only (127.0.0.1): live traces of
every channel (the signal as min/max columns and the envelope with the on and
off thresholds, 10 to 30 s visible), each channel's site, state, noise floor and
counts, the prolonged-spasm alert (a banner, the tab's title, an optional
sound), packet loss, reconnects and no-signal time as they happen, the live
episode list, the session diary with the report's plots, and controls to
pause, change the window, and mark an event by hand (written to the episode
file and the recording as an annotation).

- :class:`WebSink`: the dashboard as a :class:`~emg_pipeline.run.Sink`;
- :mod:`~emg_pipeline.web.frames`: the screen columns and the binary frames;
- :mod:`~emg_pipeline.web.hub`: the fan-out to viewers, with bounded queues;
- :mod:`~emg_pipeline.web.guard`: sizes, origin, host and token checks;
- :mod:`~emg_pipeline.web.app` and :mod:`~emg_pipeline.web.server`: the FastAPI
  app on uvicorn, in a background thread (imported only when a server starts;
  ``pip install 'emg-pipeline[web]'`` installs them).

Examples
--------
>>> import numpy as np
>>> from emg_pipeline import Pipeline, run, simulate
>>> rec = simulate(np.random.default_rng(0), fs=1000.0, duration_s=10.0, n_channels=2)
>>> sink = WebSink("127.0.0.1:0")            # not started: no server, no thread
>>> _ = run(np.array_split(rec.signal, 50), Pipeline(rec.fs, rec.channels, unit="uV"), [sink])
>>> sink.hub.drain()                          # what the server's loop would do
>>> sink.hub.status()["t"], sink.hub.ended["duration_s"]
(10.0, 10.0)
"""

from .diary import Diary
from .frames import decode_frame, encode_frame
from .server import WebAddress, parse_web_address, require_web
from .sink import MarkRejected, MarkTarget, WebSink

__all__ = [
    "Diary",
    "MarkRejected",
    "MarkTarget",
    "WebAddress",
    "WebSink",
    "decode_frame",
    "encode_frame",
    "parse_web_address",
    "require_web",
]
