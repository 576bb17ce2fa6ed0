"""Value types of the command-line options, shared by every subcommand.

Each is an ``argparse`` ``type=`` function: it turns the option's text into a
value or raises :class:`argparse.ArgumentTypeError` with a message that quotes
the text, which the parser reports as one error line (exit status 2).

Examples
--------
>>> positive("2.5"), seconds("0"), probability("0.05"), whole_at_least(2)("3")
(2.5, 0.0, 0.05, 3)
>>> positive_at_most(1000, "ms")("250")
250.0
>>> endpoint("127.0.0.1:7600"), port("7600")
(('127.0.0.1', 7600), 7600)
>>> positive("-1")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: must be a positive number, got '-1'
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from emg_pipeline.settings import MAX_FS_HZ, MIN_FS_HZ

__all__ = ["endpoint", "hertz_or_zero", "port", "positive", "positive_at_most", "probability",
           "sampling_rate", "seconds", "share", "whole_at_least"]

#: the range of sampling rates, as the help texts state it
FS_RANGE_TEXT = f"{MIN_FS_HZ:g} Hz to {MAX_FS_HZ / 1000:g} kHz"


def _number(value: str, what: str = "a number") -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {value!r}") from None


def positive(value: str) -> float:
    """A finite number greater than zero (rates, durations, speeds, windows)."""
    number = _number(value)
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value!r}")
    return number


def sampling_rate(value: str) -> float:
    """A sampling rate in Hz, from :data:`~emg_pipeline.settings.MIN_FS_HZ` to ``MAX_FS_HZ``.

    Examples
    --------
    >>> sampling_rate("2000")
    2000.0
    >>> sampling_rate("1e9")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a sampling rate from 100 Hz to 100 kHz, got '1e9'
    """
    number = _number(value)
    if not MIN_FS_HZ <= number <= MAX_FS_HZ:  # NaN fails too
        raise argparse.ArgumentTypeError(
            f"must be a sampling rate from {FS_RANGE_TEXT}, got {value!r}"
        )
    return number


def positive_at_most(limit: float, unit: str) -> Callable[[str], float]:
    """A type for finite numbers above zero and at most ``limit`` (of ``unit``, in messages)."""

    def parse(value: str) -> float:
        number = _number(value)
        if not math.isfinite(number) or not 0 < number <= limit:
            raise argparse.ArgumentTypeError(
                f"must be above 0 and at most {limit:g} {unit}, got {value!r}"
            )
        return number

    parse.__name__ = f"number of {unit}"
    return parse


def _zero_or_more(unit: str, what: str) -> Callable[[str], float]:
    """A type for finite numbers of ``unit``, zero or more (``what`` names one in messages)."""

    def parse(value: str) -> float:
        number = _number(value, what)
        if not math.isfinite(number) or number < 0:
            raise argparse.ArgumentTypeError(f"must be zero or more {unit}, got {value!r}")
        return number

    return parse


#: A number of seconds, zero or more (a position in a recording).
seconds = _zero_or_more("seconds", "a number of seconds")
#: A frequency in Hz, zero or more (zero: a rule switched off).
hertz_or_zero = _zero_or_more("Hz", "a frequency in Hz")


def probability(value: str) -> float:
    """A probability in ``[0, 1)`` (a share of packets to lose or corrupt)."""
    number = _number(value)
    if not 0.0 <= number < 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1), got {value!r}")
    return number


def share(value: str) -> float:
    """A share in ``(0, 1]`` (of a burst's power: 1 switches the rule off)."""
    number = _number(value)
    if not 0.0 < number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a share above 0 and at most 1, got {value!r}")
    return number


def whole_at_least(minimum: int, unit: str = "days") -> Callable[[str], int]:
    """A type for whole numbers of at least ``minimum`` (``unit`` names them in messages)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a whole number of {unit}: {value!r}"
            ) from None
        if number < minimum:
            raise argparse.ArgumentTypeError(
                f"must be at least {minimum} {unit}, got {value!r}"
            )
        return number

    parse.__name__ = f"whole number of {unit}"
    return parse


def port(value: str) -> int:
    """A TCP port number, 1 to 65535."""
    if not value.strip().isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"must be a port number 1-65535, got {value!r}")
    return int(value)


def endpoint(value: str) -> tuple[str, int]:
    """``HOST:PORT`` as ``(host, port)``."""
    host, sep, number = value.rpartition(":")
    if not sep or not host or not number.isdigit() or not 0 < int(number) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(number)
