"""Lab Streaming Layer output: the conditioned EMG and the live events, for LabRecorder and co.

:class:`LslOutlet` is a :class:`~emg_pipeline.run.Sink` that publishes two streams
while ``replay``, ``stream`` (or any :func:`~emg_pipeline.run.run`) goes on:

``NAME`` (type ``EMG``)
    The EMG as the pipeline conditions it (band-pass, heartbeat and mains
    removal: the chunk results' ``band``, the very numbers the envelope is
    made of) or, with ``signal="raw"``, as received; float32, one
    channel per input channel, at the stream's nominal rate. The XML
    description holds, per channel, ``label``, ``unit`` (``microvolts`` or
    ``counts``), ``type`` (``EMG``) and ``site`` (the body site), and the
    band, the signal kind and the LSL time of sample 0 under ``filtering``
    and ``emg_pipeline``.
``NAME-markers`` (type ``Markers``)
    One JSON string per live event: ``{"event": "onset" | "sustained" |
    "end", "channel", "site", "label", "onset_s", "decided_s", ...}``, an
    ``end`` with every feature of the episode (``offset_s``, ``duration_s``,
    ``pattern``, ``peak``, ``mean``, ``unit``, ``burst_count``,
    ``burst_rate_hz``, ``median_freq_hz``, ``floor``, ``truncated``,
    ``gap_s``); ``packet_loss`` (with ``lost_samples``) and ``reconnected``
    for the link; ``mark`` for a manual mark made on the dashboard;
    ``stream_start`` (stamped at sample 0, with ``clock_zero``) first and
    ``stream_end`` with the totals last.

Timestamps
----------
Every timestamp is on the LSL clock and comes from the sample's place on the
stream's sample clock, never from the moment it is sent: when the stream
opens, the LSL time of sample 0 is fixed (``clock_zero``, by default
``local_clock()`` at that moment) and sample ``k`` is stamped
``clock_zero + k / fs``. A marker is stamped with the time of what it marks:
an onset at the onset, an alert when it was decided, an end at the episode's
end (``decided_s`` in the JSON is when the pipeline could say it).

Gaps
----
Samples lost upstream (packet loss, a reconnect: NaN on every channel in
:attr:`ChunkResult.samples`) are not sent: the stream's timestamps jump over
them, so a recorder or an inlet sees the gap where it was, counted exactly,
and no invented sample. A value missing on some channels only is sent as NaN.
Each contiguous run is pushed as one chunk with the timestamp of its last
sample; liblsl derives the others from the nominal rate, exactly.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from emg_pipeline import __version__
from emg_pipeline.chunk import ChunkFlags
from emg_pipeline.conditioning.gaps import is_missing
from emg_pipeline.errors import ConfigError
from emg_pipeline.lab.deps import import_pylsl
from emg_pipeline.settings import PipelineSettings

if TYPE_CHECKING:
    from emg_pipeline.events import LiveEvent
    from emg_pipeline.pipeline import ChunkResult
    from emg_pipeline.run import RunSummary, StreamInfo

__all__ = ["DEFAULT_NAME", "LslOutlet", "event_marker"]

#: name of the EMG stream when none is given (the markers add ``-markers``)
DEFAULT_NAME = "emg-pipeline"
#: once the EMG stream has a consumer, how long the marker stream waits for one
_MARKER_GRACE_S = 1.0
_SIGNALS = ("conditioned", "raw")


def _plain(value: object) -> object:
    """A JSON-safe scalar: NaN and infinities become null, enums their value."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return str(value)


def event_marker(event: LiveEvent, site: str | None = None) -> tuple[dict[str, object], float]:
    """The marker of a live event: its JSON fields and its stream time in seconds.

    Examples
    --------
    >>> from emg_pipeline.events import LiveEvent
    >>> fields, t = event_marker(LiveEvent("onset", "calf", 3.25, 3.0), site="calf")
    >>> fields["event"], fields["channel"], fields["onset_s"], t
    ('onset', 'calf', 3.0, 3.0)
    """
    fields: dict[str, object] = {"event": event.kind, "channel": event.channel, "site": site,
                                 "label": "spasm" if event.kind == "sustained" else None,
                                 "onset_s": _plain(event.onset_s),
                                 "decided_s": _plain(event.time_s)}
    at = event.onset_s if event.kind == "onset" else event.time_s
    episode = event.episode if event.episode is not None else event.rejected
    if event.kind == "end" and episode is not None:
        for key, value in episode.as_dict().items():
            if key != "channel":
                fields[key] = _plain(value)
        if event.episode is None:   # rejected: not muscle, and why
            fields["label"] = "not muscle"
            fields["because"] = episode.because
        at = episode.offset_s
    return fields, float(at)


class LslOutlet:
    """Publish the stream's EMG and its live events as two LSL streams (a Sink).

    Parameters
    ----------
    name : str
        Name of the EMG stream; the marker stream is ``NAME-markers``.
    signal : {"conditioned", "raw"}
        Publish the EMG as the pipeline conditions it, or as received.
    settings : PipelineSettings, optional
        The pipeline's settings, described in the stream's XML (default:
        the defaults).
    sites : mapping, optional
        Body site per channel, written into the stream's description and the
        markers.
    source_id : str, optional
        Unique id of the streams (default: from the name): an inlet that
        lost the stream finds it again by it when it comes back.
    clock_zero : float, optional
        LSL time of sample 0 (default: ``local_clock()`` when the stream opens).
    wait_for_consumers_s : float
        Wait up to this long at opening until a consumer (a recorder, an inlet)
        is connected to the EMG stream, so that it misses nothing (then up to
        a second more for one on the marker stream).
    linger_s : float
        At the end, keep the streams up this long (at most) while consumers
        are connected, so that they can fetch the last samples.

    Attributes
    ----------
    clock_zero : float or None
        LSL time of sample 0, once open.
    samples_sent : int
        Samples pushed (per channel); lost ones are not sent.
    gaps_sent : int
        Gaps left in the stream (runs of lost samples).
    markers_sent : int
        Markers pushed.

    Raises
    ------
    ConfigError
        If an argument is invalid.
    MissingDependencyError
        (at opening) If pylsl or its liblsl is missing.
    """

    def __init__(self, name: str = DEFAULT_NAME, *, signal: str = "conditioned",
                 settings: PipelineSettings | None = None,
                 sites: Mapping[str, str] | None = None, source_id: str | None = None,
                 clock_zero: float | None = None, wait_for_consumers_s: float = 0.0,
                 linger_s: float = 1.0) -> None:
        self.name = str(name).strip()
        if not self.name:
            raise ConfigError("name", name, "a non-empty LSL stream name")
        if signal not in _SIGNALS:
            raise ConfigError("signal", signal, "'conditioned' or 'raw'")
        for what, value in (("wait_for_consumers_s", wait_for_consumers_s),
                            ("linger_s", linger_s)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(what, value, "zero or more seconds")
        self.signal = signal
        self.settings = settings if settings is not None else PipelineSettings()
        self.sites = dict(sites or {})
        self.source_id = source_id or f"emg-pipeline:{self.name}"
        self._clock_zero_given = clock_zero
        self.wait_for_consumers_s = float(wait_for_consumers_s)
        self.linger_s = float(linger_s)
        self.clock_zero: float | None = None
        self.samples_sent = 0
        self.gaps_sent = 0
        self.markers_sent = 0
        self.info: StreamInfo | None = None
        self._pylsl: Any = None
        self._emg: Any = None
        self._markers: Any = None
        self._next_index = 0   # index after the last sample sent

    # ------------------------------------------------------------------ sink
    def open(self, info: StreamInfo) -> None:
        """Create both outlets and fix the LSL time of sample 0."""
        pylsl = import_pylsl()
        self._pylsl = pylsl
        self.info = info
        emg_info = pylsl.StreamInfo(self.name, "EMG", info.n_channels, float(info.fs),
                                    pylsl.cf_float32, self.source_id)
        self._describe(emg_info, info)
        marker_info = pylsl.StreamInfo(f"{self.name}-markers", "Markers", 1,
                                       pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                       f"{self.source_id}:markers")
        marker_info.desc().append_child_value("emg_stream", self.name)
        marker_info.desc().append_child_value("format", "JSON")
        self._emg = pylsl.StreamOutlet(emg_info)
        self._markers = pylsl.StreamOutlet(marker_info)
        if self.wait_for_consumers_s and self._emg.wait_for_consumers(
                self.wait_for_consumers_s):
            # a recorder subscribes to both at once; a plain EMG inlet never comes for the markers
            self._markers.wait_for_consumers(_MARKER_GRACE_S)
        self.clock_zero = (float(self._clock_zero_given) if self._clock_zero_given is not None
                           else float(pylsl.local_clock()))
        self._marker({"event": "stream_start", "clock_zero": self.clock_zero,
                      "fs": float(info.fs), "channels": list(info.channels),
                      "unit": info.unit, "signal": self.signal}, 0.0)

    def update(self, result: ChunkResult) -> None:
        """Push the chunk's received samples (gaps skipped) and its events."""
        if self._emg is None or self.info is None or self.clock_zero is None:
            raise RuntimeError("the LSL outlet was not opened")
        fs = self.info.fs
        raw = result.samples
        n = raw.shape[0]
        if n:
            values = self._signal(result)
            finite = np.isfinite(raw)
            present = finite.any(axis=1)
            self._push_runs(values, present, result.first_sample, fs)
        if result.lost_samples:
            self._marker({"event": "packet_loss", "lost_samples": result.lost_samples,
                          "onset_s": result.first_sample / fs,
                          "duration_s": result.lost_samples / fs},
                         result.first_sample / fs)
        if result.flags & ChunkFlags.RECONNECTED:
            at = (result.first_sample + result.lost_samples) / fs
            self._marker({"event": "reconnected", "onset_s": at}, at)
        for event in result.events:
            fields, at = event_marker(event, self.sites.get(event.channel))
            self._marker(fields, at)

    def close(self, summary: RunSummary) -> None:
        """Say the stream ended (a ``stream_end`` marker), let consumers drain, release."""
        try:
            if self._markers is not None and self.clock_zero is not None:
                end = summary.duration_s
                self._marker({"event": "stream_end", "duration_s": end,
                              "episodes": len(summary.episodes),
                              "twitches": summary.n_twitches, "spasms": summary.n_spasms,
                              "alerts": summary.n_alerts,
                              "lost_samples": summary.lost_samples,
                              "interrupted": summary.interrupted}, end)
                self._linger()
        finally:
            # liblsl destroys an outlet with its last reference
            self._emg = self._markers = None

    def mark(self, time_s: float, note: str = "", channel: str | None = None) -> None:
        """Publish a manual mark ("I felt a spasm now") as a ``mark`` marker at ``time_s``.

        Parameters
        ----------
        time_s : float
            Stream time of the mark, in seconds (its LSL timestamp comes from it).
        note : str
            What was felt.
        channel : str, optional
            The channel concerned.
        """
        if self._markers is None or self.clock_zero is None:
            raise RuntimeError("the LSL outlet is not open")
        self._marker({"event": "mark", "onset_s": float(time_s), "channel": channel,
                      "site": self.sites.get(channel) if channel else None, "note": note},
                     float(time_s))

    def _signal(self, result: ChunkResult) -> np.ndarray:
        """What is published of the chunk: its samples as conditioned, or as received."""
        raw = result.samples
        if self.signal == "raw" or result.band.shape != raw.shape:
            return raw
        missing = is_missing(raw)
        if missing.any():   # a held value is the pipeline's bridge, not a sample: say NaN
            return np.where(missing, np.nan, result.band)
        return result.band

    def _push_runs(self, values: np.ndarray, present: np.ndarray, first_sample: int,
                   fs: float) -> None:
        """Push each run of received samples with the timestamp of its last sample."""
        assert self.clock_zero is not None
        n = present.shape[0]
        if present.all():
            runs = [(0, n)]
        else:
            edges = np.flatnonzero(np.diff(np.concatenate(([False], present, [False]))
                                           .astype(np.int8)))
            runs = list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
        for a, b in runs:
            if first_sample + a > self._next_index and self.samples_sent:
                self.gaps_sent += 1
            stamp = self.clock_zero + (first_sample + b - 1) / fs
            self._emg.push_chunk(np.ascontiguousarray(values[a:b], dtype=np.float32), stamp)
            self.samples_sent += b - a
            self._next_index = first_sample + b

    def _marker(self, fields: dict[str, object], at_s: float) -> None:
        assert self.clock_zero is not None
        text = json.dumps(fields, separators=(",", ":"), allow_nan=False)
        self._markers.push_sample([text], self.clock_zero + at_s)
        self.markers_sent += 1

    def _linger(self) -> None:
        if not self.linger_s or self._emg is None:
            return
        if not (self._emg.have_consumers() or self._markers.have_consumers()):
            return
        time.sleep(self.linger_s)

    def _describe(self, stream: Any, info: StreamInfo) -> None:
        desc = stream.desc()
        unit = "microvolts" if info.unit == "uV" else "counts"
        channels = desc.append_child("channels")
        for name in info.channels:
            ch = channels.append_child("channel")
            ch.append_child_value("label", name)
            ch.append_child_value("unit", unit)
            ch.append_child_value("type", "EMG")
            ch.append_child_value("site", self.sites.get(name, ""))
        filtering = desc.append_child("filtering")
        if self.signal == "conditioned":
            from emg_pipeline.conditioning.filters import effective_band

            low, high = effective_band(info.fs, self.settings.highpass_hz,
                                       self.settings.lowpass_hz)
            filtering.append_child_value("highpass_hz", f"{low:g}")
            filtering.append_child_value("lowpass_hz", f"{high:g}")
            filtering.append_child_value("mains", str(self.settings.mains))
        else:
            filtering.append_child_value("none", "as received")
        acquisition = desc.append_child("acquisition")
        acquisition.append_child_value("manufacturer", "emg-pipeline")
        acquisition.append_child_value("model", info.title or "stream")
        own = desc.append_child("emg_pipeline")
        own.append_child_value("version", __version__)
        own.append_child_value("signal", self.signal)
        own.append_child_value("markers", f"{self.name}-markers")
        own.append_child_value("frame_s", f"{info.frame_s:g}")
        if info.start_time is not None:
            own.append_child_value("start_time", info.start_time.isoformat())

    def __repr__(self) -> str:
        return (f"LslOutlet({self.name!r}, signal={self.signal!r}, "
                f"samples_sent={self.samples_sent})")
