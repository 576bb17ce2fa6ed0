"""Settings of the streaming pipeline, kept apart from its carried state.

:class:`PipelineSettings` is a frozen dataclass: every field has a physical unit
in its name where it has one, is validated once at construction, and is never
mutated. Stages turn seconds into samples or frames once, in their constructor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from .errors import ConfigError, SampleRateError
from .labels import DEFAULT_SPASM_MIN_S

__all__ = ["MAX_FS_HZ", "MAX_WINDOW_S", "MIN_FS_HZ", "PipelineSettings", "validate_fs"]

Mains = Literal["auto", "50", "60", "off"]

#: lowest sampling rate accepted: the surface-EMG band reaches a few hundred Hz
MIN_FS_HZ = 100.0
#: highest sampling rate accepted: surface-EMG amplifiers sample at a few kHz, the fastest
#: at tens of kHz; a rate beyond this is a mistake, whose buffers would not fit in memory
MAX_FS_HZ = 100_000.0
#: longest envelope window: a longer one stretches every burst by about its length (at
#: 2 s, every twitch of the bundled demo comes out a spasm)
MAX_WINDOW_S = 1.0


def validate_fs(fs: object) -> float:
    """Return ``fs`` as a float from :data:`MIN_FS_HZ` to :data:`MAX_FS_HZ` or raise.

    Raises
    ------
    SampleRateError
        If ``fs`` is not a number, or not a surface-EMG sampling rate.

    Examples
    --------
    >>> validate_fs(1000)
    1000.0
    """
    try:
        value = float(fs)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SampleRateError(f"sampling rate must be a number in Hz, got {fs!r}", None) from None
    if not math.isfinite(value) or value <= 0:
        raise SampleRateError(f"sampling rate must be positive and finite, got {fs!r}", None)
    if value < MIN_FS_HZ:
        raise SampleRateError(
            f"sampling rate {value:g} Hz is too low for surface EMG (need at least "
            f"{MIN_FS_HZ:g} Hz)", value
        )
    if value > MAX_FS_HZ:
        raise SampleRateError(
            f"sampling rate {value:g} Hz is too high for surface EMG (at most {MAX_FS_HZ:g} Hz)",
            value,
        )
    return value


@dataclass(frozen=True)
class PipelineSettings:
    """Every setting of the detection pipeline.

    Parameters
    ----------
    highpass_hz : float
        Lower corner of the band-pass (also removes DC and drift).
    lowpass_hz : float
        Upper corner of the band-pass; clamped to ``0.45 * fs`` so that boards
        sampling at 200 Hz work.
    filter_order : int
        Butterworth order of each band edge.
    mains : {"auto", "50", "60", "off"}
        Mains interference removal. ``"auto"`` detects 50 or 60 Hz from the data.
    mains_harmonics : int
        Highest harmonic of the mains frequency that is cancelled (harmonics
        above the band-pass are skipped).
    mains_removal : {"notch", "model"}
        ``"notch"``: a comb of notches retuned to the tracked grid frequency
        (:mod:`emg_pipeline.conditioning.notch`); ``"model"``: subtract a
        fitted, Kalman-tracked model of the harmonics
        (:mod:`emg_pipeline.conditioning.mains`).
    ecg_suppression : bool
        Find channels that carry ECG (trunk muscles) and filter the heartbeat
        out of their EMG band (see :mod:`emg_pipeline.conditioning.ecg`).
    ecg_highpass_hz : float
        Corner of the extra high-pass on channels that carry ECG.
    ecg_min_on_s : float
        Confirmation time of an onset on a channel that carries ECG: there the
        artefact gate lets the heartbeat's own low-band energy pass, so an
        electrode pop no larger than a beat is told from a contraction by its
        brevity (brief twitches under ECG are missed).
    artefact_rejection : bool
        Remove from the envelope the power that artefacts below the EMG band
        (ECG, motion, electrode pops, cable knocks) can explain.
    artefact_ratio : float
        Largest EMG-band leak of such an artefact as a multiple of its
        low-band (4-18 Hz) amplitude.
    frame_s : float
        Frame length of the envelope and detector (the detector's time step).
    envelope : {"rms", "lowpass"}
        Moving RMS over ``window_s`` or a first-order low-pass of the
        rectified signal with time constant ``window_s / 2``.
    window_s : float
        Envelope window; at most :data:`MAX_WINDOW_S` (1 s).
    threshold : {"relative", "absolute_uv"}
        ``"relative"``: thresholds are set from the adaptive noise floor and
        its spread. ``"absolute_uv"``: the sleep-scoring rule, on at
        ``on_uv`` above rest and off below ``off_uv`` above rest (needs a
        signal calibrated in µV).
    on_sd, off_sd : float
        Relative rule: on and off thresholds in robust standard deviations of
        the resting log-envelope above the floor.
    min_on_ratio, min_off_ratio : float
        Lower bounds of the on and off thresholds as multiples of the floor.
    on_uv, off_uv : float
        Absolute rule: µV above the resting level.
    min_on_s : float
        Activity above the on threshold must last this long to confirm an onset.
        The default (50 ms) outlasts the delay with which the artefact gate
        recognises an electrode pop or a cable knock (about 25-30 ms), so those
        never confirm an episode.
    merge_gap_s : float
        Pauses shorter than this do not end an episode. The detector counts
        pauses in frames, at least one: 0 merges nothing, an episode ends at
        its first inactive frame (``frame_s``).
    floor_block_s : float
        The noise floor and thresholds are updated once per block of this length.
    floor_window_s : float
        The noise floor is the least block level of this recent window (see
        :mod:`emg_pipeline.detection`): a level that persists this long
        becomes the floor, unless it stands more than ``floor_max_rise``
        above the long memory.
    floor_hold_s, floor_hold_rise : float
        A level more than ``floor_hold_rise`` times the rest becomes the floor
        only after ``floor_hold_s`` (a spasm of tens of seconds stays one
        episode), unless it is more than ``floor_max_rise`` above the memory.
    floor_memory_s : float
        Length of the long memory of block levels (its 5th percentile).
    floor_max_rise : float
        Largest factor by which the floor may stand above the long memory:
        sustained activity higher than this above its rest stays one episode
        for up to ``floor_memory_s``.
    spasm_min_s : float
        Sustained activity at least this long makes a ``spasm``; shorter
        episodes are ``twitch``.
    clonic_band_hz : tuple of float
        Burst rate range of clonus.
    clonic_min_depth : float
        Minimum modulation depth of the burst rhythm for a ``clonic`` pattern.
    spectrum_s : float
        Length of signal kept for the median frequency of an episode.
    min_median_freq_hz : float
        An ended episode whose median frequency lies below this is not taken
        for muscle: it is the ringing of a cable knock or of motion just above
        the band's lower edge (surface EMG's median frequency lies at 40-150 Hz;
        the lowest of the 437 episodes found in the shared real recordings was
        46 Hz, from an 8-bit armband at 200 Hz). It ends without an episode,
        and is counted as rejected (:attr:`Pipeline.rejected
        <emg_pipeline.pipeline.Pipeline.rejected>`). 0 keeps every episode.
        It must lie below the band's upper edge, ``lowpass_hz`` (checked
        here) or ``0.45 * fs`` when lower (checked by the
        :class:`~emg_pipeline.pipeline.Pipeline`): no burst's median frequency
        reaches it, so every burst would be rejected.
    max_mains_share : float
        An ended episode with more than this share of its power (over its last
        ``spectrum_s``) at the harmonics of the mains frequency removed is not
        taken for muscle either: it is hum the canceller left, after a swell or a
        jump of the grid. Muscle is broadband and puts on those lines about
        the share of the band they cover (the rule applies only where they
        cover at most a quarter of it): in the shared real recordings, the
        highest share among the 34 episodes measured against a mains line
        found was 0.28. 1 keeps every episode.
    """

    highpass_hz: float = 20.0
    lowpass_hz: float = 450.0
    filter_order: int = 4
    mains: Mains = "auto"
    mains_harmonics: int = 9
    mains_removal: Literal["notch", "model"] = "notch"
    ecg_suppression: bool = True
    ecg_highpass_hz: float = 60.0
    ecg_min_on_s: float = 0.15
    artefact_rejection: bool = True
    artefact_ratio: float = 0.8
    frame_s: float = 0.005
    envelope: Literal["rms", "lowpass"] = "rms"
    window_s: float = 0.1
    threshold: Literal["relative", "absolute_uv"] = "relative"
    on_sd: float = 5.5
    off_sd: float = 3.0
    min_on_ratio: float = 1.55
    min_off_ratio: float = 1.15
    on_uv: float = 8.0
    off_uv: float = 2.0
    min_on_s: float = 0.05
    merge_gap_s: float = 0.5
    floor_block_s: float = 0.5
    floor_window_s: float = 10.0
    floor_hold_s: float = 30.0
    floor_hold_rise: float = 2.0
    floor_memory_s: float = 600.0
    floor_max_rise: float = 4.0
    spasm_min_s: float = DEFAULT_SPASM_MIN_S
    clonic_band_hz: tuple[float, float] = (3.0, 8.0)
    clonic_min_depth: float = 0.35
    spectrum_s: float = 10.0
    min_median_freq_hz: float = 30.0
    max_mains_share: float = 0.6

    def __post_init__(self) -> None:
        positive = (
            "highpass_hz", "lowpass_hz", "ecg_highpass_hz", "artefact_ratio", "frame_s",
            "window_s", "on_sd",
            "min_on_ratio", "min_off_ratio", "on_uv", "floor_block_s", "floor_window_s",
            "floor_hold_s", "floor_memory_s", "spasm_min_s", "spectrum_s",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(name, value, "a positive number")
        non_negative = ("off_sd", "off_uv", "min_on_s", "ecg_min_on_s", "merge_gap_s",
                        "min_median_freq_hz")
        for name in non_negative:
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(name, value, "a number >= 0")
        if self.lowpass_hz <= self.highpass_hz:
            raise ConfigError(
                "lowpass_hz", self.lowpass_hz, f"more than highpass_hz={self.highpass_hz}"
            )
        if not isinstance(self.filter_order, int) or not 1 <= self.filter_order <= 8:
            raise ConfigError("filter_order", self.filter_order, "an integer from 1 to 8")
        if str(self.mains) not in ("auto", "50", "60", "off"):
            raise ConfigError("mains", self.mains, "'auto', '50', '60' or 'off'")
        object.__setattr__(self, "mains", str(self.mains))
        if not isinstance(self.mains_harmonics, int) or not 1 <= self.mains_harmonics <= 40:
            raise ConfigError("mains_harmonics", self.mains_harmonics, "an integer from 1 to 40")
        if self.mains_removal not in ("notch", "model"):
            raise ConfigError("mains_removal", self.mains_removal, "'notch' or 'model'")
        if self.envelope not in ("rms", "lowpass"):
            raise ConfigError("envelope", self.envelope, "'rms' or 'lowpass'")
        if self.threshold not in ("relative", "absolute_uv"):
            raise ConfigError("threshold", self.threshold, "'relative' or 'absolute_uv'")
        if self.off_sd > self.on_sd:
            raise ConfigError("off_sd", self.off_sd, f"at most on_sd={self.on_sd}")
        if self.min_off_ratio > self.min_on_ratio:
            raise ConfigError("min_off_ratio", self.min_off_ratio, "at most min_on_ratio")
        if self.off_uv > self.on_uv:
            raise ConfigError("off_uv", self.off_uv, f"at most on_uv={self.on_uv}")
        for name in ("floor_hold_rise", "floor_max_rise"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 1:
                raise ConfigError(name, value, "a number >= 1")
        if self.window_s < self.frame_s:
            raise ConfigError("window_s", self.window_s, f"at least frame_s={self.frame_s}")
        if self.window_s > MAX_WINDOW_S:
            raise ConfigError("window_s", self.window_s, f"at most {MAX_WINDOW_S:g} s (a longer "
                              "envelope window stretches every burst by about its length)")
        if self.min_median_freq_hz >= self.lowpass_hz:
            raise ConfigError("min_median_freq_hz", self.min_median_freq_hz,
                              f"below {self.lowpass_hz:g} Hz, the band's upper edge (lowpass_hz;"
                              " no burst's median frequency reaches it; 0 keeps every burst)")
        lo, hi = self.clonic_band_hz
        if not 0 < lo < hi:
            raise ConfigError(
                "clonic_band_hz", self.clonic_band_hz, "(low, high) with 0 < low < high"
            )
        if not 0 <= self.clonic_min_depth <= 1:
            raise ConfigError("clonic_min_depth", self.clonic_min_depth, "a number from 0 to 1")
        if not isinstance(self.max_mains_share, int | float) or not 0 < self.max_mains_share <= 1:
            raise ConfigError("max_mains_share", self.max_mains_share,
                              "a number above 0, at most 1")

    @classmethod
    def from_kwargs(cls, **settings: Any) -> PipelineSettings:
        """Build settings from keyword arguments, rejecting unknown names.

        Examples
        --------
        >>> PipelineSettings.from_kwargs(window_s=0.05).window_s
        0.05
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            expected = f"one of {', '.join(sorted(known))}"
            raise ConfigError(unknown[0], settings[unknown[0]], expected)
        return cls(**settings)

    def replace(self, **changes: Any) -> PipelineSettings:
        """Return a copy with some settings changed (validated again)."""
        return replace(self, **changes)
