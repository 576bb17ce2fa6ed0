"""The streaming pipeline: one path for live streams and recorded files.

::

    samples ─► NanBridge ─► band-pass (SOS) ─► MainsCanceller ─► Envelope ─┐
                  │                                                       ▼
                  └──────────────────────────────► ArtefactGate ─► Detector ─► Classifier
                                                                      │
                                             live events (onset, sustained, end) + episodes

:class:`Pipeline` feeds each chunk through every stage in turn. All stages
carry their state, so any chunking of the same samples gives bit-for-bit the
same envelope, events and episodes; offline detection (:func:`detect`) is this
pipeline fed one chunk or many.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._jit import jit
from .chunk import Chunk, as_samples
from .classification import Classifier
from .conditioning import (
    ArtefactGate,
    EcgSuppressor,
    FlatLine,
    MainsCanceller,
    NanBridge,
    SosFilter,
    bandpass_sos,
)
from .conditioning.filters import effective_band
from .conditioning.gaps import Gap
from .detection import Detector
from .envelope import Envelope
from .errors import ConfigError
from .events import EPISODE_COLUMNS, Episode, LiveEvent
from .framing import History
from .settings import PipelineSettings, validate_fs

__all__ = ["ChunkResult", "Pipeline", "detect", "episodes_frame"]

_KIND_ORDER = {"end": 0, "onset": 1, "sustained": 2}
_HISTORY_S = 600.0  # envelope history kept for episode features
_SLICE_S = 10.0  # large chunks are processed in slices of this length (bounded memory)


@dataclass(frozen=True)
class ChunkResult:
    """What the pipeline returns for one chunk.

    Attributes
    ----------
    envelope : ndarray, shape (n_frames, n_channels)
        Envelope of the frames completed by this chunk (after removal of what
        sub-band artefacts explain).
    first_frame : int
        Index of the first of those frames on the frame clock.
    frame_s : float
        Frame duration in seconds: frame ``k`` covers ``[k, k + 1) * frame_s``.
    artefact : ndarray of bool, shape (n_frames, n_channels)
        Frames marked as artefact.
    events : tuple of LiveEvent
        Events decided within this chunk, in time order.
    """

    envelope: np.ndarray
    first_frame: int
    frame_s: float
    artefact: np.ndarray
    events: tuple[LiveEvent, ...] = field(default=())

    @property
    def times(self) -> np.ndarray:
        """End time of each envelope frame in seconds."""
        return (self.first_frame + 1 + np.arange(self.envelope.shape[0])) * self.frame_s


@jit
def _tally(
    artefact: np.ndarray, flat: np.ndarray, artefact_frames: np.ndarray,
    no_signal_frames: np.ndarray,
) -> np.ndarray:
    """Count artefact and no-signal frames per channel (in place); return their union.

    A flat frame counts as no signal only, not as an artefact as well.
    """
    n, n_ch = artefact.shape
    either = np.empty((n, n_ch), dtype=np.bool_)
    for i in range(n):
        for c in range(n_ch):
            if flat[i, c]:
                no_signal_frames[c] += 1
                either[i, c] = True
            elif artefact[i, c]:
                artefact_frames[c] += 1
                either[i, c] = True
            else:
                either[i, c] = False
    return either


class Pipeline:
    """Streaming detector of twitches and prolonged spasms.

    Parameters
    ----------
    fs : float
        Sampling rate in Hz.
    channels : int or sequence of str
        Number of channels, or their names.
    unit : {"uV", "counts"}
        ``"uV"`` when samples are calibrated microvolts; otherwise envelope
        figures are reported as multiples of the noise floor.
    settings : PipelineSettings, optional
        All settings; keyword arguments override single fields.
    **overrides
        Fields of :class:`PipelineSettings`.

    Examples
    --------
    >>> from emg_pipeline.sources.synthetic import simulate
    >>> rec = simulate(np.random.default_rng(1), fs=1000.0, duration_s=20.0, n_channels=1)
    >>> pipe = Pipeline(1000.0, rec.channels, unit="uV")
    >>> results = [pipe.process(part) for part in np.array_split(rec.signal, 50)]
    >>> _ = pipe.flush()
    >>> len(pipe.episodes) == len(rec.truth)
    True
    """

    def __init__(
        self,
        fs: float,
        channels: int | Sequence[str],
        *,
        unit: str = "counts",
        settings: PipelineSettings | None = None,
        **overrides: object,
    ) -> None:
        self.fs = validate_fs(fs)
        if isinstance(channels, int | np.integer):
            if channels < 1:
                raise ConfigError("channels", channels, "at least one channel")
            names: tuple[str, ...] = tuple(f"ch{i + 1}" for i in range(int(channels)))
        else:
            names = tuple(str(c) for c in channels)
            if not names:
                raise ConfigError("channels", channels, "at least one channel")
            if len(set(names)) != len(names):
                raise ConfigError("channels", channels, "distinct channel names")
        self.channels = names
        if unit not in ("uV", "counts"):
            raise ConfigError("unit", unit, "'uV' or 'counts'")
        self.unit = unit
        base = settings if settings is not None else PipelineSettings()
        self.settings = base.replace(**overrides) if overrides else base
        s = self.settings
        C = len(self.channels)
        self.frame_len = max(1, round(s.frame_s * self.fs))
        self.frame_s = self.frame_len / self.fs
        try:
            self.band_hz = effective_band(self.fs, s.highpass_hz, s.lowpass_hz)
        except ValueError as exc:
            raise ConfigError("highpass_hz", s.highpass_hz, str(exc)) from None
        calibrated = unit == "uV"
        self._bridge = NanBridge(C)
        self._bandpass = SosFilter(bandpass_sos(self.fs, *self.band_hz, s.filter_order), C)
        self._mains = MainsCanceller(
            self.fs, C, mains=s.mains, max_harmonics=s.mains_harmonics, band_hz=self.band_hz
        )
        self._ecg = EcgSuppressor(
            self.fs, C, self.frame_len, self.band_hz, highpass_hz=s.ecg_highpass_hz
        ) if s.ecg_suppression else None
        self._envelope = Envelope(self.fs, C, self.frame_len, s.window_s, s.envelope)
        self._flat = FlatLine(self.fs, C, self.frame_len, hold_s=s.window_s + 0.05)
        self._gate = ArtefactGate(
            self.fs, C, self.frame_len, s.window_s, ratio=s.artefact_ratio
        ) if s.artefact_rejection else None
        self._detector = Detector(C, self.frame_s, s, calibrated)
        self._classifier = Classifier(self.fs, self.frame_len, s, calibrated, self.channels)
        frame_rate = 1.0 / self.frame_s
        self._env_hist = History(round(_HISTORY_S * frame_rate), C)
        self._power_hist = History(round(_HISTORY_S * frame_rate), C)
        self._slice = max(1, round(_SLICE_S * self.fs))
        history_s = s.spectrum_s + s.merge_gap_s + _SLICE_S + 1.0
        self._sample_hist = History(round(history_s * self.fs), C)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Return to the freshly built state (settings are kept)."""
        for stage in (self._bridge, self._bandpass, self._mains, self._envelope,
                      self._detector, self._env_hist, self._power_hist, self._sample_hist):
            stage.reset()
        self._flat.reset()
        for optional in (self._gate, self._ecg):
            if optional is not None:
                optional.reset()
        self.n_samples = 0
        self.n_frames = 0
        self.episodes: list[Episode] = []
        self.artefact_frames = np.zeros(len(self.channels), dtype=np.int64)
        self.no_signal_frames = np.zeros(len(self.channels), dtype=np.int64)
        self.lost_samples = 0
        self.finished = False

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @property
    def gaps(self) -> list[Gap]:
        """Runs of missing samples that were bridged, per channel."""
        return list(self._bridge.gaps)

    @property
    def bridged_samples(self) -> np.ndarray:
        """Number of bridged (missing) samples per channel."""
        return self._bridge.n_bridged.copy()

    @property
    def mains_hz(self) -> float | None:
        """Grid frequency found (or set), None if none."""
        return self._mains.mains_hz

    @property
    def floor(self) -> np.ndarray:
        """Current noise floor per channel (envelope units)."""
        return self._detector.floor

    @property
    def thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Current on and off thresholds per channel (envelope units)."""
        return self._detector.on_threshold.copy(), self._detector.off_threshold.copy()

    # --------------------------------------------------------------- process
    def process(self, chunk: Chunk | np.ndarray) -> ChunkResult:
        """Run one chunk through the pipeline.

        Parameters
        ----------
        chunk : Chunk or array_like, shape (n_samples, n_channels)
            Samples. A :class:`Chunk` whose ``first_index`` lies beyond the
            samples seen so far marks lost samples: they are inserted as a
            gap (bridged and counted), so the timeline stays right.

        Returns
        -------
        ChunkResult
        """
        if self.finished:
            raise RuntimeError("the stream was flushed; call reset() to start a new one")
        x = as_samples(chunk)
        if x.shape[1] != self.n_channels:
            raise ValueError(f"expected {self.n_channels} channels, got {x.shape[1]}")
        if isinstance(chunk, Chunk):
            if not math.isclose(chunk.fs, self.fs, rel_tol=1e-9):
                raise ValueError(f"chunk at {chunk.fs:g} Hz fed to a pipeline at {self.fs:g} Hz")
            missing = chunk.first_index - self.n_samples
            if missing < 0:
                raise ValueError(
                    f"chunk starts at sample {chunk.first_index}, but {self.n_samples} "
                    "samples were already processed"
                )
            if missing:
                self.lost_samples += missing
                x = np.concatenate([np.full((missing, self.n_channels), np.nan), x])
        first_frame = self.n_frames
        if x.shape[0] <= self._slice:
            env, artefact, events = self._run(x)
        else:
            # slices keep memory bounded and the feature histories valid; every
            # stage is chunking-independent, so this changes no result
            parts = [self._run(x[i : i + self._slice]) for i in range(0, x.shape[0], self._slice)]
            env = np.concatenate([p[0] for p in parts])
            artefact = np.concatenate([p[1] for p in parts])
            events = tuple(e for p in parts for e in p[2])
        return ChunkResult(env, first_frame, self.frame_s, artefact, events)

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[LiveEvent, ...]]:
        raw = self._bridge.process(x)
        y = self._bandpass.process(raw)
        ecg = None
        if self._ecg is not None:
            # before the mains canceller: heartbeat spikes would make every block
            # look active to it, and it would stop following the grid
            y, ecg = self._ecg.process(raw, y)
        y = self._mains.process(y)
        self._sample_hist.write(y)
        env = self._envelope.process(y)
        if self._gate is not None:
            env = self._gate.process(raw, env, ecg)
            artefact = self._gate.artefact
        else:
            artefact = np.zeros(env.shape, dtype=bool)
        # a flat line (electrode off, zeros before streaming, held gaps) is no
        # signal: neither rest for the floor nor activity
        flat = self._flat.process(raw)
        either = _tally(artefact, flat, self.artefact_frames, self.no_signal_frames)
        self._env_hist.write(env)
        self._power_hist.write(self._envelope.frame_power)
        events = self._events(self._detector.process(env, artefact, ecg, flat))
        self.n_samples += x.shape[0]
        self.n_frames += env.shape[0]
        return env, either, events

    def flush(self) -> ChunkResult:
        """End the stream: close open episodes (marked ``truncated``)."""
        events = self._events(self._detector.flush())
        self.finished = True
        empty = np.empty((0, self.n_channels))
        return ChunkResult(empty, self.n_frames, self.frame_s, empty.astype(bool), events)

    def _events(self, decisions: list) -> tuple[LiveEvent, ...]:
        out = []
        fs_frame = self.frame_s
        for d in decisions:
            name = self.channels[d.channel]
            time_s = (d.frame + 1) * fs_frame
            onset_s = d.onset_frame * fs_frame
            if d.kind == "end":
                episode = self._classifier.classify(
                    d, self._env_hist, self._power_hist, self._sample_hist
                )
                self.episodes.append(episode)
                out.append(LiveEvent("end", name, time_s, onset_s, episode))
            else:
                out.append(LiveEvent(d.kind, name, time_s, onset_s))
        out.sort(key=lambda e: (e.time_s, self.channels.index(e.channel), _KIND_ORDER[e.kind]))
        return tuple(out)

    def episodes_frame(self) -> pd.DataFrame:
        """All finished episodes as a table (see :func:`episodes_frame`)."""
        return episodes_frame(self.episodes)


def episodes_frame(episodes: Sequence[Episode]) -> pd.DataFrame:
    """Table of episodes with the columns of :data:`~emg_pipeline.events.EPISODE_COLUMNS`.

    Rows are sorted by onset, then channel name (a stable sort).
    """
    ordered = sorted(episodes, key=lambda e: (e.onset_s, e.channel))
    return pd.DataFrame(
        {name: [getattr(e, name) for e in ordered] for name in EPISODE_COLUMNS},
        columns=list(EPISODE_COLUMNS),
    )


def detect(
    data: object,
    fs: float,
    *,
    channels: Sequence[str] | None = None,
    unit: str = "counts",
    chunk_s: float | None = None,
    **settings: object,
) -> pd.DataFrame:
    """Detect and label contraction episodes in a recording.

    This is the streaming :class:`Pipeline` fed the whole recording as one
    chunk (or in chunks of ``chunk_s``); the result does not depend on the
    chunking.

    Parameters
    ----------
    data : array_like, shape (n_samples, n_channels), or DataFrame
        Samples; DataFrame columns are channels.
    fs : float
        Sampling rate in Hz.
    channels : sequence of str, optional
        Channel names (default: DataFrame columns, or ch1..chN).
    unit : {"uV", "counts"}
        Whether samples are calibrated microvolts.
    chunk_s : float, optional
        Feed the pipeline in chunks of this length (as a live stream would).
    **settings
        Fields of :class:`~emg_pipeline.settings.PipelineSettings`.

    Returns
    -------
    DataFrame
        One row per episode with columns ``channel, onset_s, offset_s,
        duration_s, label, pattern, peak, mean, unit, burst_count,
        burst_rate_hz, median_freq_hz, floor, truncated``.

    Examples
    --------
    >>> from emg_pipeline.sources.synthetic import simulate
    >>> rec = simulate(np.random.default_rng(0), fs=1000.0, duration_s=30.0, n_channels=2)
    >>> found = detect(rec.signal, rec.fs, channels=rec.channels, unit="uV")
    >>> sorted(found.columns[:7])
    ['channel', 'duration_s', 'label', 'offset_s', 'onset_s', 'pattern', 'peak']
    """
    if isinstance(data, pd.DataFrame):
        if channels is None:
            channels = [str(c) for c in data.columns]
        data = data.to_numpy(dtype=np.float64)
    x = as_samples(data)
    pipe = Pipeline(
        fs,
        tuple(channels) if channels is not None else x.shape[1],
        unit=unit,
        settings=PipelineSettings.from_kwargs(**settings),
    )
    if chunk_s is None:
        pipe.process(x)
    else:
        step = max(1, round(float(chunk_s) * pipe.fs))
        for start in range(0, x.shape[0], step):
            pipe.process(x[start : start + step])
    pipe.flush()
    return pipe.episodes_frame()
