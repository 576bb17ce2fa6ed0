"""The domain's words in one place: what an episode is called, and the spasm boundary.

An episode is a **twitch** (brief, usually harmless) or a **spasm** (a prolonged,
sustained contraction); a spasm's pattern is **tonic** (sustained) or **clonic**
(rhythmic bursting), a twitch's is **phasic**. Whether an episode is a spasm
depends on one setting, :attr:`~emg_pipeline.settings.PipelineSettings.spasm_min_s`,
and on one rule, :func:`label_for`: the classifier, the live prolonged-spasm
alert, the simulators' ground truth, the metrics and the benchmarks all use it,
so changing the setting moves all of them together.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_SPASM_MIN_S",
    "Label",
    "NotMuscle",
    "Pattern",
    "boundary_frames",
    "label_for",
    "labels_for",
]

#: default twitch/spasm boundary in seconds (see ``PipelineSettings.spasm_min_s``)
DEFAULT_SPASM_MIN_S = 2.0


class Label(enum.StrEnum):
    """What an episode is. Members equal their text (``Label.SPASM == "spasm"``)."""

    TWITCH = "twitch"
    SPASM = "spasm"


class Pattern(enum.StrEnum):
    """How an episode's activity runs."""

    PHASIC = "phasic"   # a twitch
    TONIC = "tonic"     # sustained
    CLONIC = "clonic"   # rhythmic bursting (3-8 Hz)


class NotMuscle(enum.StrEnum):
    """Why a burst that ended is not taken for muscle (it ends without an episode)."""

    #: its median frequency lies below any muscle's: the ringing of a cable knock or motion
    KNOCK = "a knock or motion"
    #: most of its power lies at the mains lines: hum that the mains canceller left
    MAINS = "mains hum"


def label_for(duration_s: float, spasm_min_s: float = DEFAULT_SPASM_MIN_S) -> Label:
    """A spasm lasts at least ``spasm_min_s``; anything shorter is a twitch.

    Examples
    --------
    >>> label_for(0.4), label_for(2.0), label_for(2.9, spasm_min_s=3.0)
    (<Label.TWITCH: 'twitch'>, <Label.SPASM: 'spasm'>, <Label.TWITCH: 'twitch'>)
    """
    return Label.SPASM if duration_s >= spasm_min_s else Label.TWITCH


def labels_for(durations_s: object, spasm_min_s: float = DEFAULT_SPASM_MIN_S) -> np.ndarray:
    """:func:`label_for` of each duration, as an array of label texts.

    Examples
    --------
    >>> labels_for([0.5, 2.5]).tolist()
    ['twitch', 'spasm']
    """
    import numpy as np  # here: the settings, and the command line, load without numpy

    d = np.asarray(durations_s, dtype=float)
    return np.where(d >= spasm_min_s, Label.SPASM.value, Label.TWITCH.value).astype(object)


def boundary_frames(spasm_min_s: float, frame_s: float) -> int:
    """Frames an episode must last to be a spasm (the boundary on the frame clock).

    An episode of ``k`` frames lasts ``k * frame_s``; it is a spasm when that
    reaches ``spasm_min_s`` (to rounding: 2 s of 5 ms frames is 400 frames).

    Examples
    --------
    >>> boundary_frames(2.0, 0.005), boundary_frames(2.0, 0.003)
    (400, 667)
    """
    return max(1, math.ceil(spasm_min_s / frame_s - 1e-9))
