"""The streaming pipeline: one path for live streams and recorded files.

:class:`Pipeline` turns each chunk into a :class:`~emg_pipeline.stage.Block`
and folds it through its stages (:func:`~emg_pipeline.stages.build_stages`,
in flow order: NaN bridge, band-pass, ECG suppression, mains removal,
envelope, artefact gating, no-signal test, detection, classification). All
stages carry their state, so any chunking of the same samples gives
bit-for-bit the same envelope, events and episodes; offline detection
(:func:`detect`) is this pipeline fed one chunk or many, and the end of a
stream (:meth:`Pipeline.flush`) is one more, empty, block marked
``end_of_stream``.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from ._jit import jit
from .chunk import Chunk, ChunkFlags, as_samples
from .conditioning.filters import effective_band
from .conditioning.gaps import Gap
from .errors import ConfigError
from .events import EPISODE_COLUMNS, Episode, LiveEvent
from .settings import PipelineSettings, validate_fs
from .stage import Block, Stage
from .stages import (
    SLICE_S,
    Bridging,
    DetectionStage,
    MainsRemoval,
    StreamSpec,
    build_stages,
)

__all__ = ["ChunkResult", "Pipeline", "detect", "episodes_frame"]

_S = typing.TypeVar("_S")


_NO_SAMPLES = np.empty((0, 0))
_NO_VALUES = np.empty(0)
_NO_FLAGS = np.empty((0, 0), dtype=bool)
for _empty in (_NO_SAMPLES, _NO_VALUES, _NO_FLAGS):
    _empty.flags.writeable = False


class ChunkResult(NamedTuple):
    """What the pipeline returns for one chunk (a named tuple: cheap to make per live chunk).

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
    flags : ChunkFlags
        What went wrong while this chunk was acquired (packet loss, a
        reconnect, malformed packets) or conditioned (missing samples bridged).
    lost_samples : int
        Samples lost just before this chunk (inserted as a bridged gap).
    samples : ndarray, shape (n_samples, n_channels)
        The chunk's samples as received, lost ones included as NaN (their
        place on the timeline kept): what a recording of the stream holds.
    first_sample : int
        Index of the first of those samples on the stream's sample clock.
    floor, on_threshold, off_threshold : ndarray, shape (n_channels,)
        The detector's noise floor and thresholds at the end of the chunk
        (envelope units; NaN and inf before the first floor).
    band : ndarray, shape (n_samples, n_channels)
        The same samples conditioned (band-passed, heartbeats and mains
        removed, gaps bridged): the signal the envelope is made of.
    no_signal : ndarray of bool, shape (n_frames, n_channels)
        Frames without signal (a flat line: electrode off, zeros); they are
        also marked in ``artefact``.
    """

    envelope: np.ndarray
    first_frame: int
    frame_s: float
    artefact: np.ndarray
    events: tuple[LiveEvent, ...] = ()
    flags: ChunkFlags = ChunkFlags.NONE
    lost_samples: int = 0
    samples: np.ndarray = _NO_SAMPLES
    first_sample: int = 0
    floor: np.ndarray = _NO_VALUES
    on_threshold: np.ndarray = _NO_VALUES
    off_threshold: np.ndarray = _NO_VALUES
    band: np.ndarray = _NO_SAMPLES
    no_signal: np.ndarray = _NO_FLAGS

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

    Raises
    ------
    ConfigError
        On a bad setting, or one this rate cannot honour: a band above its
        Nyquist frequency, a ``min_median_freq_hz`` at or above the band's
        upper edge (``0.45 * fs`` when below ``lowpass_hz``).

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
        self.frame_len = max(1, round(s.frame_s * self.fs))
        self.frame_s = self.frame_len / self.fs
        try:
            self.band_hz = effective_band(self.fs, s.highpass_hz, s.lowpass_hz)
        except ValueError as exc:
            raise ConfigError("highpass_hz", s.highpass_hz, str(exc)) from None
        if s.min_median_freq_hz >= self.band_hz[1]:
            raise ConfigError(
                "min_median_freq_hz", s.min_median_freq_hz,
                f"below {self.band_hz[1]:g} Hz, the band's upper edge at {self.fs:g} Hz sampling "
                "(no burst's median frequency reaches it; 0 keeps every burst)",
            )
        self.spec = StreamSpec(self.fs, names, unit == "uV", self.frame_len, self.band_hz, s)
        self.stages: tuple[Stage, ...] = build_stages(self.spec)
        self._slice = round(SLICE_S * self.fs)
        self._detector = self.stage(DetectionStage).detector
        self.reset()

    def stage(self, kind: type[_S]) -> _S:
        """The stage of this type (e.g. ``pipe.stage(MainsRemoval)``).

        Raises
        ------
        LookupError
            If the pipeline has no such stage (it is switched off).
        """
        for stage in self.stages:
            if isinstance(stage, kind):
                return stage
        raise LookupError(f"this pipeline has no {kind.__name__} stage")

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Return to the freshly built state (settings are kept)."""
        for stage in self.stages:
            stage.reset()
        self.n_samples = 0
        self.n_frames = 0
        self.episodes: list[Episode] = []
        #: what ended but was rejected as not muscle (each one's ``because`` says why)
        self.rejected: list[Episode] = []
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
        """The most recent runs of missing samples that were bridged.

        At most :data:`~emg_pipeline.conditioning.gaps.MAX_GAPS_KEPT` are kept (a
        long stream's memory must not grow with it); every bridged sample is
        counted in :attr:`bridged_samples`.
        """
        return list(self.stage(Bridging).bridge.gaps)

    @property
    def bridged_samples(self) -> np.ndarray:
        """Number of bridged (missing) samples per channel."""
        return self.stage(Bridging).bridge.n_bridged.copy()

    @property
    def mains_hz(self) -> float | None:
        """Grid frequency found (or set), None if none."""
        return self.stage(MainsRemoval).canceller.mains_hz

    @property
    def mains_level(self) -> np.ndarray:
        """Per channel: RMS of the mains interference removed over the RMS of the rest."""
        return self.stage(MainsRemoval).level

    @property
    def floor(self) -> np.ndarray:
        """Current noise floor per channel (envelope units)."""
        return self.stage(DetectionStage).detector.floor

    @property
    def thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Current on and off thresholds per channel (envelope units)."""
        detector = self.stage(DetectionStage).detector
        return detector.on_threshold.copy(), detector.off_threshold.copy()

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
        flags, missing = ChunkFlags.NONE, 0
        if isinstance(chunk, Chunk):
            if not math.isclose(chunk.fs, self.fs, rel_tol=1e-9):
                raise ValueError(f"chunk at {chunk.fs:g} Hz fed to a pipeline at {self.fs:g} Hz")
            flags = chunk.flags
            missing = chunk.first_index - self.n_samples
            if missing < 0:
                raise ValueError(
                    f"chunk starts at sample {chunk.first_index}, but {self.n_samples} "
                    "samples were already processed"
                )
            if missing:
                self.lost_samples += missing
                x = np.concatenate([np.full((missing, self.n_channels), np.nan), x])
        first_frame, first_sample = self.n_frames, self.n_samples
        # slices keep memory bounded and the feature histories valid; every stage is
        # chunking-independent, so this changes no result
        parts = [self._run(x[i : i + self._slice], flags)
                 for i in range(0, x.shape[0], self._slice)] or [self._run(x, flags)]
        return self._result(parts, first_frame, missing, x, first_sample)

    def flush(self) -> ChunkResult:
        """End the stream: close open episodes (marked ``truncated``)."""
        empty = np.empty((0, self.n_channels))
        part = self._run(empty, ChunkFlags.NONE, end_of_stream=True)
        self.finished = True
        return self._result([part], self.n_frames, 0, empty, self.n_samples)

    def _run(self, x: np.ndarray, flags: ChunkFlags, *, end_of_stream: bool = False) -> Block:
        block = Block.of_samples(x, self.n_samples, self.n_frames, flags,
                                 end_of_stream=end_of_stream)
        for stage in self.stages:
            block = stage.process(block)
        self.n_samples += block.n_samples
        self.n_frames += block.n_frames
        for event in block.events:
            if event.episode is not None:
                self.episodes.append(event.episode)
            elif event.rejected is not None:
                self.rejected.append(event.rejected)
        return block

    def _result(
        self, parts: list[Block], first_frame: int, lost_samples: int, samples: np.ndarray,
        first_sample: int,
    ) -> ChunkResult:
        if len(parts) == 1:
            part = parts[0]
            env, artefact, no_signal = part.envelope, part.artefact, part.no_signal
            flags, events, band = part.flags, part.events, part.band
        else:
            band = np.concatenate([p.band for p in parts])
            env = np.concatenate([p.envelope for p in parts])
            artefact = np.concatenate([p.artefact for p in parts])
            no_signal = np.concatenate([p.no_signal for p in parts])
            flags = ChunkFlags.NONE
            for p in parts:
                flags |= p.flags
            events = tuple(e for p in parts for e in p.events)
        if artefact.shape != env.shape:   # no gating stage
            artefact = np.zeros(env.shape, dtype=bool)
        if no_signal.shape != env.shape:   # no no-signal stage
            no_signal = np.zeros(env.shape, dtype=bool)
        # a flat line (electrode off, zeros before streaming, held gaps) is no signal:
        # counted as such, not as an artefact as well
        either = _tally(artefact, no_signal, self.artefact_frames, self.no_signal_frames)
        detector = self._detector
        return ChunkResult(
            env, first_frame, self.frame_s, either, events, flags, lost_samples, samples,
            first_sample, detector.floor, detector.on_threshold, detector.off_threshold, band,
            no_signal,
        )

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
    from .run import run  # the run loop is built on this module

    if chunk_s is None:
        chunks: Iterable[np.ndarray] = [x]
    else:
        step = max(1, round(float(chunk_s) * pipe.fs))
        chunks = (x[start : start + step] for start in range(0, x.shape[0], step))
    run(chunks, pipe).raise_if_interrupted()
    return pipe.episodes_frame()
