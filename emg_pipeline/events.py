"""Episodes and live events: values, not indicator columns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .labels import Label, NotMuscle, Pattern

__all__ = ["EPISODE_COLUMNS", "Episode", "LiveEvent", "not_muscle_reasons"]

#: columns of an episode table, in order (the fields of :class:`Episode` that are columns):
#:
#: - ``channel``: the channel's name;
#: - ``onset_s``, ``offset_s``, ``duration_s``: start, end and length in seconds from the
#:   stream's first sample;
#: - ``label``: ``twitch`` or ``spasm``; ``pattern``: ``phasic`` (a twitch), ``tonic`` or
#:   ``clonic`` (a spasm);
#: - ``peak``, ``mean``: highest and mean envelope over the episode, in ``unit``;
#: - ``unit``: ``uV`` for a signal calibrated in microvolts, else ``x_floor``: ``peak`` and
#:   ``mean`` are then multiples of ``floor``;
#: - ``burst_count``, ``burst_rate_hz``: bursts found, and their dominant rhythm (NaN for a
#:   twitch or a spasm without one);
#: - ``median_freq_hz``: median frequency of the episode's signal (its last ``spectrum_s``);
#: - ``floor``: the noise floor when the onset was confirmed, in the signal's own units
#:   (µV when calibrated, else the raw values, e.g. ADC counts), **not** in ``unit``: for
#:   an ``x_floor`` episode, ``peak * floor`` is its peak in raw values;
#: - ``truncated``: the stream ended before the episode did;
#: - ``gap_s``: seconds of missing samples bridged inside the episode.
#:
#: An episode file (:mod:`emg_pipeline.sinks.episodes`) adds ``site``, ``onset_time`` and
#: ``note``.
EPISODE_COLUMNS = (
    "channel",
    "onset_s",
    "offset_s",
    "duration_s",
    "label",
    "pattern",
    "peak",
    "mean",
    "unit",
    "burst_count",
    "burst_rate_hz",
    "median_freq_hz",
    "floor",
    "truncated",
    "gap_s",
)


@dataclass(frozen=True)
class Episode:
    """One contraction episode on one channel, labelled.

    Attributes
    ----------
    channel : str
        Channel name.
    onset_s, offset_s : float
        Start and end in seconds from the start of the stream.
    duration_s : float
        ``offset_s - onset_s``.
    label : Label
        Brief twitch or prolonged (sustained) spasm (equal to ``"twitch"`` or ``"spasm"``).
    pattern : Pattern
        ``phasic`` for twitches; ``tonic`` (sustained) or ``clonic`` (rhythmic
        bursting) for spasms.
    peak, mean : float
        Peak and mean envelope, in ``unit``.
    unit : {"uV", "x_floor"}
        µV when the signal is calibrated, else multiples of ``floor``.
    burst_count : int
        Bursts found in the episode.
    burst_rate_hz : float
        Dominant burst rhythm (NaN when there is none).
    median_freq_hz : float
        Median frequency of the episode's spectrum.
    floor : float
        Noise floor when the onset was confirmed, in the signal's own units:
        µV when calibrated, else the raw values (not ``x_floor``).
    truncated : bool
        The stream ended before the episode did.
    gap_s : float
        Seconds of missing samples (lost packets, NaN) inside the episode,
        bridged: there its figures rest on held values, not on signal.
    mains_share : float
        Share of the power of the episode's spectrum (its last ``spectrum_s``)
        that lies at the harmonics of the mains frequency removed; NaN when no
        mains was found or the spectrum is too short to tell. Not a column of
        the episode table.
    not_muscle : NotMuscle or None
        For a burst rejected as not muscle, why (see :attr:`because`); None
        for every episode. Not a column of the episode table.
    """

    channel: str
    onset_s: float
    offset_s: float
    duration_s: float
    label: Label
    pattern: Pattern
    peak: float
    mean: float
    unit: str
    burst_count: int
    burst_rate_hz: float
    median_freq_hz: float
    floor: float
    truncated: bool = False
    gap_s: float = 0.0
    mains_share: float = math.nan
    not_muscle: NotMuscle | None = None

    @property
    def because(self) -> str:
        """Why this burst is not muscle, as a phrase with its figure ("" for an episode).

        Examples
        --------
        >>> from emg_pipeline.labels import Label, NotMuscle, Pattern
        >>> burst = Episode("calf", 3.0, 3.4, 0.4, Label.TWITCH, Pattern.PHASIC, 9.0, 4.0,
        ...                 "uV", 1, float("nan"), 12.0, 2.0, not_muscle=NotMuscle.KNOCK)
        >>> burst.because
        'median frequency 12 Hz: a knock or motion'
        """
        if self.not_muscle is NotMuscle.KNOCK:
            return f"median frequency {self.median_freq_hz:.0f} Hz: {self.not_muscle}"
        if self.not_muscle is NotMuscle.MAINS:
            return f"{self.mains_share:.0%} of its power at the mains lines: {self.not_muscle}"
        return ""

    def as_dict(self) -> dict[str, object]:
        """The episode as a plain dict, in :data:`EPISODE_COLUMNS` order."""
        # every field is a plain scalar: no deep copy (dataclasses.asdict) needed
        return {name: getattr(self, name) for name in EPISODE_COLUMNS}


@dataclass(frozen=True)
class LiveEvent:
    """Something the live pipeline says while streaming.

    Attributes
    ----------
    kind : {"onset", "sustained", "end"}
        ``onset``: a contraction is confirmed; ``sustained``: an ongoing
        contraction has just crossed the spasm boundary (the prolonged-spasm
        alert); ``end``: the episode is over and labelled.
    channel : str
        Channel name.
    time_s : float
        Stream time at which the pipeline could say it (the end of the frame
        that decided it). ``time_s - onset_s`` is the alert latency.
    onset_s : float
        Onset of the episode concerned.
    episode : Episode or None
        The finished episode, for ``end`` events (None when it was rejected).
    rejected : Episode or None
        For an ``end`` event without an episode: what ended, measured, and
        rejected as not muscle (``rejected.because`` says why); it is in no
        episode count or file.
    """

    kind: Literal["onset", "sustained", "end"]
    channel: str
    time_s: float
    onset_s: float
    episode: Episode | None = None
    rejected: Episode | None = None


def not_muscle_reasons(rejected: Sequence[Episode]) -> str:
    """How many bursts were rejected as not muscle, for each reason.

    Examples
    --------
    >>> class Burst:
    ...     def __init__(self, why): self.not_muscle = why
    >>> not_muscle_reasons([Burst(NotMuscle.MAINS), Burst(NotMuscle.KNOCK), Burst(NotMuscle.MAINS)])
    'a knock or motion: 1, mains hum: 2'
    """
    return ", ".join(f"{reason}: {n}" for reason in NotMuscle
                     if (n := sum(e.not_muscle is reason for e in rejected)))
