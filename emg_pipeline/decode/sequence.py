"""Counting lost packets or samples from a board's wrapping counter.

:class:`SequenceTracker` is pure bookkeeping: no clock, no I/O. Give it each
packet's counter value (``DecodedPacket.seq``) and how many ticks the packet
covers (``DecodedPacket.span``); it says how many ticks were lost before
that packet.

Policy, with ``d = (seq - expected) mod modulus`` and
``b = (expected - seq) mod modulus``:

1. first packet, or first after :meth:`~SequenceTracker.reset`: ``FIRST``;
2. ``d == 0``: ``OK``;
3. ``seq`` equals the previous packet's value: ``DUPLICATE`` (ignored: the
   tracker keeps its state);
4. ``b <= max_back``: ``OUT_OF_ORDER`` (a late or repeated packet; ignored);
5. ``d <= max_gap``: ``GAP`` with ``lost = d``;
6. otherwise: ``RESET``: the counter jumped too far to be a gap (board
   restarted, long outage); ``lost`` is ``None`` (unknown) and the tracker
   resynchronises on ``seq``.

Defaults: ``max_back = min(8 * increment, modulus // 4)`` and
``max_gap = min(modulus - max_back - 1, 65536)``. A loss of a whole multiple
of ``modulus`` ticks cannot be seen from the counter alone; use timing for
that. Call :meth:`~SequenceTracker.reset` after a reconnect.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from emg_pipeline.errors import ConfigError
from emg_pipeline.profiles import FirmwareProfile

__all__ = ["SeqEvent", "SequenceStatus", "SequenceTracker"]


class SeqEvent(enum.StrEnum):
    """How a packet's counter relates to the previous ones."""

    FIRST = "first"
    OK = "ok"
    GAP = "gap"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    RESET = "reset"


@dataclass(frozen=True)
class SequenceStatus:
    """Result of :meth:`SequenceTracker.update`.

    Parameters
    ----------
    event : SeqEvent
        What happened.
    lost : int or None
        Counter ticks (packets or samples, per the profile's counter unit)
        missing just before this packet; ``None`` when unknown (``RESET``).
    expected : int or None
        The value that was expected (``None`` for the first packet).
    """

    event: SeqEvent
    lost: int | None
    expected: int | None

    @property
    def accepted(self) -> bool:
        """Whether the packet is new data (not a duplicate or a late packet)."""
        return self.event not in (SeqEvent.DUPLICATE, SeqEvent.OUT_OF_ORDER)


class SequenceTracker:
    """Track a wrapping counter and count what was lost.

    Parameters
    ----------
    modulus : int
        The counter wraps to 0 at this value (>= 2).
    increment : int
        Default ticks per packet (``span`` when :meth:`update` is not told).
    max_back : int, optional
        How far behind the expected value a packet is still called late
        (``OUT_OF_ORDER``) rather than a jump.
    max_gap : int, optional
        Largest forward jump counted as a gap rather than a ``RESET``.

    Examples
    --------
    >>> t = SequenceTracker(modulus=100)
    >>> [t.update(s).lost for s in (98, 99, 2, 3)]
    [0, 0, 2, 0]
    >>> t.update(3).event
    <SeqEvent.DUPLICATE: 'duplicate'>
    """

    def __init__(self, modulus: int, increment: int = 1, *, max_back: int | None = None,
                 max_gap: int | None = None) -> None:
        if isinstance(modulus, bool) or not isinstance(modulus, int) or modulus < 2:
            raise ConfigError("modulus", modulus, "an integer >= 2")
        if isinstance(increment, bool) or not isinstance(increment, int) \
                or not 1 <= increment < modulus:
            raise ConfigError("increment", increment, f"an integer in [1, {modulus - 1}]")
        self.modulus = modulus
        self.increment = increment
        self.max_back = min(8 * increment, modulus // 4) if max_back is None else max_back
        if not 0 <= self.max_back < modulus:
            raise ConfigError("max_back", max_back, f"an integer in [0, {modulus - 1}]")
        default_gap = min(modulus - self.max_back - 1, 65536)
        self.max_gap = default_gap if max_gap is None else max_gap
        if not 0 <= self.max_gap <= modulus - self.max_back - 1:
            raise ConfigError("max_gap", max_gap,
                              f"an integer in [0, modulus - max_back - 1 = "
                              f"{modulus - self.max_back - 1}]")
        self.reset()

    @classmethod
    def from_profile(cls, profile: FirmwareProfile) -> SequenceTracker:
        """A tracker for a profile's counter.

        Parameters
        ----------
        profile : FirmwareProfile
            Must declare a ``[counter]``.

        Returns
        -------
        SequenceTracker
            With the default ``increment`` of one full packet.

        Raises
        ------
        ConfigError
            If the profile has no counter.
        """
        c = profile.counter
        if c is None:
            raise ConfigError("profile", profile.name, "a profile with a [counter]")
        per_packet = c.increment * (profile.format.samples_per_packet if c.unit == "sample" else 1)
        return cls(c.modulus, min(per_packet, c.modulus - 1))

    @property
    def expected(self) -> int | None:
        """Counter value the next packet should carry (None before the first packet)."""
        return self._expected

    def reset(self) -> None:
        """Forget the history (the next packet is ``FIRST``)."""
        self._last: int | None = None
        self._expected: int | None = None

    def update(self, seq: int, span: int | None = None) -> SequenceStatus:
        """Account for one packet.

        Parameters
        ----------
        seq : int
            The packet's counter value, in ``[0, modulus)``.
        span : int, optional
            Ticks this packet covers (default: ``increment``).

        Returns
        -------
        SequenceStatus
        """
        m = self.modulus
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < m:
            raise ConfigError("seq", seq, f"an integer in [0, {m - 1}]")
        step = self.increment if span is None else span
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ConfigError("span", span, "a positive integer")
        expected = self._expected
        if expected is None:
            self._accept(seq, step)
            return SequenceStatus(SeqEvent.FIRST, 0, None)
        ahead = (seq - expected) % m
        if ahead == 0:
            self._accept(seq, step)
            return SequenceStatus(SeqEvent.OK, 0, expected)
        if seq == self._last:
            return SequenceStatus(SeqEvent.DUPLICATE, 0, expected)
        if (expected - seq) % m <= self.max_back:
            return SequenceStatus(SeqEvent.OUT_OF_ORDER, 0, expected)
        self._accept(seq, step)
        if ahead <= self.max_gap:
            return SequenceStatus(SeqEvent.GAP, ahead, expected)
        return SequenceStatus(SeqEvent.RESET, None, expected)

    def _accept(self, seq: int, step: int) -> None:
        self._last = seq
        self._expected = (seq + step) % self.modulus
