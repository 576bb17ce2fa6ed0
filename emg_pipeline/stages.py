"""The pipeline's stages, in the order the data meets them, and :func:`build_stages`.

Each class here is one step of the flow as a :class:`~emg_pipeline.stage.Stage`:
it takes the :class:`~emg_pipeline.stage.Block` the previous step returned and
gives the next one, using one signal component (the band-pass filter, the mains
canceller, the envelope, the detector...) that does the numerical work on
arrays and is tested on its own. Adding a step is one class here and one line
in :func:`build_stages`.

::

    NanBridge ─► BandPass ─► EcgSuppression ─► MainsRemoval ─► EnvelopeStage
      ─► ArtefactGating ─► GapFrames ─► NoSignal ─► Detection ─► Classification
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from ._jit import jit
from .chunk import ChunkFlags
from .classification import Classifier
from .conditioning import (
    ArtefactGate,
    EcgSuppressor,
    FlatLine,
    MainsCanceller,
    MainsNotch,
    NanBridge,
    SosFilter,
    bandpass_sos,
)
from .conditioning.gaps import MAX_GAPS_KEPT, Gap
from .detection import Detection, Detector
from .envelope import Envelope
from .events import Episode, LiveEvent
from .framing import History
from .settings import PipelineSettings
from .stage import Block, Stage

__all__ = [
    "ArtefactGating",
    "BandPass",
    "Bridging",
    "Classification",
    "DetectionStage",
    "EcgSuppression",
    "EnvelopeStage",
    "GapFrames",
    "MainsRemoval",
    "NoSignal",
    "StreamSpec",
    "build_stages",
]

#: envelope history kept for episode features
HISTORY_S = 600.0
#: large chunks are processed in slices of this length (bounded memory)
SLICE_S = 10.0
_KIND_ORDER = {"end": 0, "onset": 1, "sustained": 2}


@dataclass(frozen=True)
class StreamSpec:
    """What every stage needs to know of the stream it is built for.

    Attributes
    ----------
    fs : float
        Sampling rate in Hz.
    channels : tuple of str
        Channel names.
    calibrated : bool
        Samples are µV (else counts of an unknown gain).
    frame_len : int
        Samples per envelope frame.
    band_hz : tuple of float
        The band-pass corners in use (the upper one clamped below Nyquist).
    settings : PipelineSettings
        Every setting.
    """

    fs: float
    channels: tuple[str, ...]
    calibrated: bool
    frame_len: int
    band_hz: tuple[float, float]
    settings: PipelineSettings

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @property
    def frame_s(self) -> float:
        """Frame duration in seconds."""
        return self.frame_len / self.fs


class Bridging(Stage):
    """Hold missing samples (NaN, ±inf, beyond MAX_ABS_SAMPLE) at their channel's last value."""

    def __init__(self, spec: StreamSpec) -> None:
        self.bridge = NanBridge(spec.n_channels)

    def reset(self) -> None:
        self.bridge.reset()

    def process(self, block: Block) -> Block:
        before = self.bridge.n_gaps
        raw = self.bridge.process(block.raw)
        flags = block.flags
        new = self.bridge.n_gaps - before
        if new:
            flags |= ChunkFlags.NAN_BRIDGED
            gaps = self.bridge.gaps
            block.gaps = tuple(gaps[-k] for k in range(min(new, len(gaps)), 0, -1))
        block.raw = block.band = raw
        block.flags = flags
        return block


class BandPass(Stage):
    """Causal Butterworth band-pass (removes drift, DC and what lies above the EMG band)."""

    def __init__(self, spec: StreamSpec) -> None:
        sos = bandpass_sos(spec.fs, *spec.band_hz, spec.settings.filter_order)
        self.filter = SosFilter(sos, spec.n_channels)

    def reset(self) -> None:
        self.filter.reset()

    def process(self, block: Block) -> Block:
        block.band = self.filter.process(block.band)
        return block


class EcgSuppression(Stage):
    """Channels carrying a heartbeat get an extra high-pass; their frames are flagged."""

    def __init__(self, spec: StreamSpec) -> None:
        self.suppressor = EcgSuppressor(spec.fs, spec.n_channels, spec.frame_len, spec.band_hz,
                                        highpass_hz=spec.settings.ecg_highpass_hz)

    def reset(self) -> None:
        self.suppressor.reset()

    def process(self, block: Block) -> Block:
        block.band, block.ecg = self.suppressor.process(block.raw, block.band)
        return block


@jit
def _add_energies(before: np.ndarray, after: np.ndarray, removed: np.ndarray,
                  residual: np.ndarray) -> None:
    """Per channel, add the energy of ``before - after`` and of ``after`` (one pass, no copy).

    The same as ``removed += ((before - after) ** 2).sum(0)`` and
    ``residual += (after ** 2).sum(0)``.
    """
    n, n_ch = after.shape
    for i in range(n):
        for c in range(n_ch):
            d = before[i, c] - after[i, c]
            removed[c] += d * d
            residual[c] += after[i, c] * after[i, c]


class MainsRemoval(Stage):
    """Remove 50/60 Hz mains interference and its harmonics from the EMG band.

    Also keeps, per channel, the energy removed and the energy left, so that a
    summary can say how strong the mains line was (:attr:`level`), not only
    that one was modelled.
    """

    def __init__(self, spec: StreamSpec) -> None:
        s = spec.settings
        remover = MainsNotch if s.mains_removal == "notch" else MainsCanceller
        self.canceller = remover(spec.fs, spec.n_channels, mains=s.mains,
                                 max_harmonics=s.mains_harmonics, band_hz=spec.band_hz)
        self.n_channels = spec.n_channels
        self.reset()

    def reset(self) -> None:
        self.canceller.reset()
        self.removed_energy = np.zeros(self.n_channels)
        self.residual_energy = np.zeros(self.n_channels)

    def process(self, block: Block) -> Block:
        out = self.canceller.process(block.band)
        if self.canceller.mains_hz is not None and out.shape[0]:
            _add_energies(block.band, out, self.removed_energy, self.residual_energy)
        block.band = out
        if self.canceller.mains_hz is not None:
            block.mains = (self.canceller.mains_hz, self.canceller.found_at)
        return block

    @property
    def level(self) -> np.ndarray:
        """Per channel: RMS of the mains removed over RMS of what is left (0 without mains).

        The notch comb measures the lines themselves (the EMG inside its notches
        is not mains); the model's removal is all mains.
        """
        removed = getattr(self.canceller, "line_energy", self.removed_energy)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.sqrt(np.maximum(removed, 0.0) / self.residual_energy)
        return np.nan_to_num(ratio, nan=0.0, posinf=0.0)


class EnvelopeStage(Stage):
    """Amplitude envelope of the EMG band, one value per frame (and each frame's power)."""

    def __init__(self, spec: StreamSpec) -> None:
        s = spec.settings
        self.envelope = Envelope(spec.fs, spec.n_channels, spec.frame_len, s.window_s, s.envelope)

    def reset(self) -> None:
        self.envelope.reset()

    def process(self, block: Block) -> Block:
        env = self.envelope.process(block.band)
        block.envelope, block.power = env, self.envelope.frame_power
        return block


class ArtefactGating(Stage):
    """Remove from the envelope what sub-band artefacts explain; flag their frames."""

    def __init__(self, spec: StreamSpec) -> None:
        s = spec.settings
        self.gate = ArtefactGate(spec.fs, spec.n_channels, spec.frame_len, s.window_s,
                                 ratio=s.artefact_ratio)

    def reset(self) -> None:
        self.gate.reset()

    def process(self, block: Block) -> Block:
        env = self.gate.process(block.raw, block.envelope, block.ecg)
        block.envelope, block.artefact = env, self.gate.artefact
        return block


class GapFrames(Stage):
    """Frames that hold bridged samples, and the envelope window after them, are artefact.

    A held gap has no signal, and the band-pass rings where it starts and ends:
    what the envelope shows there was not measured, so the detector neither
    starts nor ends anything on it.
    """

    def __init__(self, spec: StreamSpec) -> None:
        self.frame_len = spec.frame_len
        self.n_channels = spec.n_channels
        # the envelope window and the band-pass's settling after the gap
        self.after = round((spec.settings.window_s + 0.05) * spec.fs)
        self.reset()

    def reset(self) -> None:
        self.spans: list[tuple[int, int, int]] = []   # (channel, first sample, stop sample)

    def process(self, block: Block) -> Block:
        self.spans += [(g.channel, g.start, g.start + g.n_samples + self.after)
                       for g in block.gaps]
        n = block.n_frames
        if block.artefact.shape != block.envelope.shape:   # no gating stage before
            block.artefact = np.zeros(block.envelope.shape, dtype=bool)
        if not self.spans or n == 0:
            return block
        artefact = block.artefact.copy()
        starts = (block.first_frame + np.arange(n)) * self.frame_len
        for c, first, stop in self.spans:
            artefact[:, c] |= (starts + self.frame_len > first) & (starts < stop)
        end = (block.first_frame + n) * self.frame_len
        self.spans = [span for span in self.spans if span[2] > end]
        block.artefact = artefact
        return block


class NoSignal(Stage):
    """Flag the frames of a flat line (electrode off, zeros, held gaps): no signal."""

    def __init__(self, spec: StreamSpec) -> None:
        self.flat = FlatLine(spec.fs, spec.n_channels, spec.frame_len,
                             hold_s=spec.settings.window_s + 0.05)

    def reset(self) -> None:
        self.flat.reset()

    def process(self, block: Block) -> Block:
        block.no_signal = self.flat.process(block.raw)
        return block


class DetectionStage(Stage):
    """Adaptive double-threshold detection: onset, sustained and end decisions."""

    def __init__(self, spec: StreamSpec) -> None:
        self.detector = Detector(spec.n_channels, spec.frame_s, spec.settings, spec.calibrated)

    def reset(self) -> None:
        self.detector.reset()

    def process(self, block: Block) -> Block:
        artefact = block.artefact
        if artefact.shape != block.envelope.shape:   # no gating stage
            artefact = np.zeros(block.envelope.shape, dtype=bool)
        decisions = self.detector.process(block.envelope, artefact, block.ecg, block.no_signal)
        if block.end_of_stream:
            decisions = [*decisions, *self.detector.flush()]
        block.decisions = tuple(decisions)
        return block


class Classification(Stage):
    """Label each finished episode (twitch or spasm, its pattern and features).

    Keeps the recent history of the stream (conditioned samples, envelope and
    frame power) that an episode's features are computed from, and turns the
    detector's decisions into live events in time order. The sample history
    holds :data:`SLICE_S` more than the features need: a block may be at most
    that long (:class:`~emg_pipeline.pipeline.Pipeline` cuts longer chunks).
    """

    def __init__(self, spec: StreamSpec) -> None:
        s = spec.settings
        self.channels = spec.channels
        self.frame_s = spec.frame_s
        self.classifier = Classifier(spec.fs, spec.frame_len, s, spec.calibrated, spec.channels,
                                     spec.band_hz)
        frames = round(HISTORY_S / spec.frame_s)
        self.envelope = History(frames, spec.n_channels)
        self.power = History(frames, spec.n_channels)
        history_s = s.spectrum_s + s.merge_gap_s + SLICE_S + 1.0
        self.samples = History(round(history_s * spec.fs), spec.n_channels)
        self._order = {name: k for k, name in enumerate(spec.channels)}
        self._max_block = round(SLICE_S * spec.fs)
        self._frame_len = spec.frame_len
        self._fs = spec.fs
        self.gaps: deque[Gap] = deque(maxlen=MAX_GAPS_KEPT)
        self.mains: tuple[float, int] | None = None

    def reset(self) -> None:
        for history in (self.envelope, self.power, self.samples):
            history.reset()
        self.gaps.clear()
        self.mains = None

    def process(self, block: Block) -> Block:
        if block.n_samples > self._max_block:
            raise ValueError(f"a block of {block.n_samples} samples is longer than "
                             f"SLICE_S = {SLICE_S:g} s: cut it first")
        self.samples.write(block.band)
        self.envelope.write(block.envelope)
        self.power.write(block.power)
        self.gaps.extend(block.gaps)
        if block.mains is not None:
            self.mains = block.mains
        if not block.decisions:
            return block
        block.events = tuple(self._events(block.decisions))
        return block

    def _missing(self, d: Detection) -> int:
        """Samples of the episode of ``d`` that were missing and bridged."""
        start, stop = d.onset_frame * self._frame_len, d.offset_frame * self._frame_len
        return sum(_overlap(start, stop, g.start, g.start + g.n_samples)
                   for g in self.gaps if g.channel == d.channel)

    def _mains_during(self, d: Detection) -> float | None:
        """The mains frequency removed by the end of the episode of ``d`` (None: none)."""
        if self.mains is None or d.offset_frame * self._frame_len < self.mains[1]:
            return None
        return self.mains[0]

    def _events(self, decisions: tuple[Detection, ...]) -> list[LiveEvent]:
        out = []
        for d in decisions:
            name = self.channels[d.channel]
            time_s = (d.frame + 1) * self.frame_s
            onset_s = d.onset_frame * self.frame_s
            episode: Episode | None = None
            rejected: Episode | None = None
            if d.kind == "end":
                episode = self.classifier.classify(d, self.envelope, self.power, self.samples,
                                                   self._mains_during(d))
                missing = self._missing(d)
                if missing:
                    episode = replace(episode, gap_s=missing / self._fs)
                if episode.not_muscle is not None:
                    episode, rejected = None, episode
            out.append(LiveEvent(d.kind, name, time_s, onset_s, episode, rejected))
        out.sort(key=lambda e: (e.time_s, self._order[e.channel], _KIND_ORDER[e.kind]))
        return out


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def build_stages(spec: StreamSpec) -> tuple[Stage, ...]:
    """The pipeline's stages for one stream, in order (optional ones as the settings say)."""
    s = spec.settings
    stages: list[Stage | None] = [
        Bridging(spec),
        BandPass(spec),
        # before the mains canceller: heartbeat spikes would make every block look
        # active to it, and it would stop following the grid
        EcgSuppression(spec) if s.ecg_suppression else None,
        MainsRemoval(spec),
        EnvelopeStage(spec),
        ArtefactGating(spec) if s.artefact_rejection else None,
        GapFrames(spec),
        NoSignal(spec),
        DetectionStage(spec),
        Classification(spec),
    ]
    return tuple(stage for stage in stages if stage is not None)
