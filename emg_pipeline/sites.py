"""Muscle sites: which body site each channel records.

A report is read by site ("three spasms at the calf last night"), so every
channel is mapped to a body site: one of :data:`SITES` or free text (e.g.
``"shin"``). The mapping comes, in order of precedence, from

1. ``--site CH=SITE`` options (repeatable);
2. a small session settings file, TOML or JSON, which may also carry the
   recording's start time and the time zone it was recorded in::

       # session.toml
       start_time = "2024-05-03T22:10:00+02:00"   # optional
       timezone = "Europe/Paris"                   # optional: zone name or "+02:00"
       [sites]
       ch1 = "calf"
       ch2 = "lower back"

   (JSON: ``{"start_time": "...", "timezone": "...", "sites": {"ch1": "calf"}}``);
3. the recording itself: channel names that name a site or a muscle
   (``calf_left``, ``lower_back``, ``Biceps``), and, for a one-channel
   recording, a header comment saying where the electrode was placed.

Channels with no site are reported under :data:`UNSPECIFIED`.

Examples
--------
>>> site_of_name("calf_left"), site_of_name("LowerBack"), site_of_name("EXG Channel 0")
('calf', 'back', None)
>>> normalise_site(" Gastrocnemius "), normalise_site("left shin"), normalise_site("big toe")
('calf', 'shin', 'big toe')
>>> m = resolve_sites(("calf_left", "ch2"), options=["ch2=neck"])
>>> m.site("calf_left"), m.site("ch2")
('calf', 'neck')
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import SiteError

__all__ = [
    "ATTENTION_SITES",
    "SITES",
    "UNSPECIFIED",
    "SessionSettings",
    "SiteError",
    "SiteMap",
    "load_session",
    "normalise_site",
    "parse_site_option",
    "parse_timezone",
    "resolve_sites",
    "site_of_name",
]

#: the body sites known by name; anything else is kept as free text
SITES: tuple[str, ...] = ("calf", "thigh", "foot", "hand", "arm", "abdomen", "back", "neck")

#: sites where spasms are flagged for attention (with numbness, tingling or weakness)
ATTENTION_SITES: frozenset[str] = frozenset({"neck", "back"})

#: the site of a channel that has none
UNSPECIFIED = "unspecified"

# Words (lower case) that name a site or a muscle of it. Matched as whole words
# of a channel name, so "ch1" or "A1" never match by accident.
_ALIASES: dict[str, str] = {
    **{site: site for site in SITES},
    "calves": "calf", "gastrocnemius": "calf", "gastroc": "calf", "soleus": "calf",
    "thighs": "thigh", "quadriceps": "thigh", "quad": "thigh", "quads": "thigh",
    "hamstring": "thigh", "hamstrings": "thigh", "vastus": "thigh", "femoris": "thigh",
    "adductor": "thigh",
    "feet": "foot", "toe": "foot", "toes": "foot", "plantar": "foot", "sole": "foot",
    "hands": "hand", "finger": "hand", "fingers": "hand", "thumb": "hand", "palm": "hand",
    "pollicis": "hand", "interosseous": "hand",
    "arms": "arm", "biceps": "arm", "triceps": "arm", "forearm": "arm", "brachii": "arm",
    "brachioradialis": "arm", "deltoid": "arm", "flexor": "arm", "extensor": "arm",
    "abdominal": "abdomen", "abdominis": "abdomen", "abs": "abdomen", "oblique": "abdomen",
    "belly": "abdomen",
    "lumbar": "back", "paraspinal": "back", "erector": "back", "spinae": "back",
    "thoracic": "back", "latissimus": "back",
    "cervical": "neck", "sternocleidomastoid": "neck", "scm": "neck", "trapezius": "neck",
    "tibialis": "shin", "shin": "shin",
}

# "pollicis" alone is a thumb muscle, but "adductor pollicis" must not read as the
# thigh's adductor: two-word names are checked first.
_PHRASES: dict[tuple[str, str], str] = {
    ("adductor", "pollicis"): "hand",
    ("flexor", "pollicis"): "hand",
    ("rectus", "abdominis"): "abdomen",
    ("rectus", "femoris"): "thigh",
    ("tibialis", "anterior"): "shin",
    ("erector", "spinae"): "back",
}

_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_PLACEMENT = re.compile(r"electrode|placed|muscle|site", re.IGNORECASE)


def _words(text: str) -> list[str]:
    """Lower-case words of ``text``, splitting snake_case, kebab-case and CamelCase."""
    return [w.lower() for w in _WORD.findall(text)]


def site_of_name(name: str) -> str | None:
    """Return the site a channel name or phrase names, or None.

    Parameters
    ----------
    name : str
        A channel name (``"calf_left"``, ``"RightBiceps"``) or a phrase.

    Returns
    -------
    str or None
        A site of :data:`SITES`, ``"shin"`` for the tibialis, or None.

    Examples
    --------
    >>> site_of_name("adductor pollicis"), site_of_name("thigh_right"), site_of_name("EMG")
    ('hand', 'thigh', None)
    """
    words = _words(name)
    for pair in itertools.pairwise(words):
        if pair in _PHRASES:
            return _PHRASES[pair]
    for word in words:
        if word in _ALIASES:
            return _ALIASES[word]
    return None


def normalise_site(text: str) -> str:
    """Return the canonical site for ``text``: a known site, or the text itself.

    A single word naming a site or a muscle gives the site (``"Biceps"`` ->
    ``"arm"``); anything else is kept as free text, trimmed and lower-cased.

    Raises
    ------
    SiteError
        If ``text`` is empty.

    Examples
    --------
    >>> normalise_site("NECK"), normalise_site("lower back"), normalise_site("right pinky")
    ('neck', 'back', 'right pinky')
    """
    cleaned = " ".join(str(text).split()).lower()
    if not cleaned:
        raise SiteError(text, "a site cannot be empty")
    words = _words(cleaned)
    known = site_of_name(cleaned)
    # a phrase keeps its wording unless it is a site with a side or level qualifier
    qualifiers = {"left", "right", "upper", "lower", "l", "r", "inner", "outer", "middle"}
    if known is not None and all(w in _ALIASES or w in qualifiers for w in words):
        return known
    return cleaned


def parse_site_option(text: str) -> tuple[str, str]:
    """Split a ``CH=SITE`` option into ``(channel, site)``.

    Raises
    ------
    SiteError
        If there is no ``=`` or either side is empty.

    Examples
    --------
    >>> parse_site_option("EXG Channel 0 = neck")
    ('EXG Channel 0', 'neck')
    """
    channel, sep, site = str(text).partition("=")
    if not sep or not channel.strip() or not site.strip():
        raise SiteError(text, f"--site expects CHANNEL=SITE (e.g. ch1=calf), got {text!r}")
    return channel.strip(), normalise_site(site)


def parse_timezone(text: str) -> tzinfo:
    """Return the time zone named by ``text``: an IANA name, ``UTC`` or ``+HH:MM``.

    Examples
    --------
    >>> parse_timezone("+02:00"), parse_timezone("UTC")
    (datetime.timezone(datetime.timedelta(seconds=7200)), datetime.timezone.utc)
    """
    value = str(text).strip()
    if value.upper() in ("UTC", "Z"):
        return UTC
    match = re.fullmatch(r"([+-])(\d{1,2}):?(\d{2})?", value)
    if match:
        sign = 1 if match.group(1) == "+" else -1
        hours, minutes = int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes >= 60:
            raise SiteError(text, f"time zone offset out of range: {text!r}")
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SiteError(
            text, f"unknown time zone {text!r}: expected a name like Europe/Paris, UTC or +02:00"
        ) from None


def parse_start_time(text: object, where: str = "start_time") -> datetime:
    """Parse an ISO-8601 date and time (a TOML datetime is accepted as is).

    Examples
    --------
    >>> parse_start_time("2024-05-03T22:10:00+02:00").isoformat()
    '2024-05-03T22:10:00+02:00'
    """
    if isinstance(text, datetime):
        return text
    try:
        return datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise SiteError(
            text, f"{where}: expected an ISO-8601 date and time like "
            f"2024-05-03T22:10:00+02:00, got {text!r}"
        ) from None


@dataclass(frozen=True)
class SessionSettings:
    """What a session settings file says.

    Attributes
    ----------
    sites : Mapping[str, str]
        Channel name -> site (normalised).
    start_time : datetime or None
        Wall-clock time of the first sample, if given; one written without a
        UTC offset is read in :attr:`timezone` when the file gives one.
    timezone : tzinfo or None
        Zone the session was recorded in, if given.
    """

    sites: Mapping[str, str] = field(default_factory=dict)
    start_time: datetime | None = None
    timezone: tzinfo | None = None


def load_session(path: str | Path) -> SessionSettings:
    """Read a session settings file (TOML, or JSON when it ends in ``.json``).

    Raises
    ------
    SiteError
        If the file is missing, malformed or holds unknown keys or bad values.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteError(path, f"{path}: cannot read session file: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise SiteError(path, f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise SiteError(path, f"{path}: expected a table of settings, got {type(data).__name__}")
    unknown = sorted(set(data) - {"sites", "start_time", "timezone"})
    if unknown:
        raise SiteError(
            path, f"{path}: unknown setting(s) {', '.join(unknown)}; "
            "expected sites, start_time, timezone"
        )
    raw_sites = data.get("sites", {})
    if not isinstance(raw_sites, dict):
        raise SiteError(path, f"{path}: 'sites' must map channel names to sites")
    sites: dict[str, str] = {}
    for channel, site in raw_sites.items():
        if not isinstance(site, str):
            raise SiteError(site, f"{path}: site of channel {channel!r} must be text, got {site!r}")
        sites[str(channel)] = normalise_site(site)
    start = None if data.get("start_time") is None else \
        parse_start_time(data["start_time"], f"{path}: start_time")
    zone = None if data.get("timezone") is None else parse_timezone(data["timezone"])
    return SessionSettings(sites=sites, start_time=_in_zone(start, zone), timezone=zone)


def _in_zone(start: datetime | None, zone: tzinfo | None) -> datetime | None:
    """``start``, read in ``zone`` if it is wall-clock time without a zone of its own.

    Examples
    --------
    >>> _in_zone(datetime(2026, 11, 27, 23, 30), parse_timezone("+01:00")).isoformat()
    '2026-11-27T23:30:00+01:00'
    """
    if start is None or zone is None or start.tzinfo is not None:
        return start
    return start.replace(tzinfo=zone)


def _metadata_site(metadata: Mapping[str, object]) -> str | None:
    """Site from header comments describing the electrode placement, if any."""
    for key in ("comments", "comment", "description", "site", "muscle", "location"):
        value = metadata.get(key)
        lines: Iterable[object]
        if isinstance(value, str):
            lines = [value]
        elif isinstance(value, Sequence):
            lines = value
        else:
            continue
        for line in lines:
            text = str(line)
            # only placement lines: "chronic low back pain" is a diagnosis, not a site
            if key in ("site", "muscle", "location") or _PLACEMENT.search(text):
                found = site_of_name(text)
                if found is not None:
                    return found
    return None


@dataclass(frozen=True)
class SiteMap:
    """Channel -> site, with the session's start time and zone when known.

    Attributes
    ----------
    sites : Mapping[str, str]
        Site of every channel that has one.
    start_time : datetime or None
        Wall-clock time of the first sample.
    timezone : tzinfo or None
        Zone to express local times in (None: the start time's own zone, else
        this computer's).
    """

    sites: Mapping[str, str] = field(default_factory=dict)
    start_time: datetime | None = None
    timezone: tzinfo | None = None

    def site(self, channel: str) -> str:
        """Site of ``channel``, :data:`UNSPECIFIED` when unknown."""
        return self.sites.get(channel, UNSPECIFIED)

    def local_start(self) -> datetime | None:
        """The start time as an aware datetime in the local zone, or None.

        A naive start time (EDF, WFDB, OpenSignals state wall-clock time without
        a zone) is taken as wall-clock time in :attr:`timezone`, else in this
        computer's zone; an aware one is converted to :attr:`timezone` if set.
        """
        start = self.start_time
        if start is None:
            return None
        if start.tzinfo is None:
            return start.replace(tzinfo=self.timezone) if self.timezone else start.astimezone()
        return start.astimezone(self.timezone) if self.timezone else start


def resolve_sites(
    channels: Sequence[str],
    *,
    options: Iterable[str] = (),
    session: SessionSettings | None = None,
    info: object | None = None,
    timezone: tzinfo | None = None,
    start_time: datetime | None = None,
) -> SiteMap:
    """Map ``channels`` to sites from options, a session file and the recording.

    Parameters
    ----------
    channels : sequence of str
        Channel names of the recording.
    options : iterable of str
        ``CH=SITE`` texts; highest precedence.
    session : SessionSettings, optional
        A loaded session file; its start time and zone win over the recording's.
        A start time without a zone (the file's, the recording's or
        ``start_time``) is wall-clock time in the session file's zone, if it
        gives one.
    info : RecordingInfo, optional
        The recording's description: channel names, header comments and start time.
    timezone : tzinfo, optional
        Zone to express local times in; wins over the session file's, but does
        not move the start time: one without a zone is read in this zone only
        when the session file gives none.
    start_time : datetime, optional
        Start time to use; wins over everything else.

    Raises
    ------
    SiteError
        If an option or the session file names a channel the recording lacks.
    """
    names = tuple(str(c) for c in channels)
    sites: dict[str, str] = {}
    for name in names:
        found = site_of_name(name)
        if found is not None:
            sites[name] = found
    metadata = getattr(info, "metadata", None)
    if len(names) == 1 and names[0] not in sites and isinstance(metadata, Mapping):
        found = _metadata_site(metadata)
        if found is not None:
            sites[names[0]] = found
    given: list[tuple[str, str, str]] = []
    if session is not None:
        given += [(ch, site, "session file") for ch, site in session.sites.items()]
    given += [(*parse_site_option(text), "--site") for text in options]
    for channel, site, origin in given:
        if channel not in names:
            raise SiteError(
                channel, f"{origin} names channel {channel!r}, but the recording has "
                f"{', '.join(map(repr, names))}"
            )
        sites[channel] = site
    start = start_time
    if start is None and session is not None:
        start = session.start_time
    if start is None:
        start = getattr(info, "start_time", None)
    if session is not None:
        # wall-clock time without a zone was kept where the session was recorded
        start = _in_zone(start, session.timezone)
    zone = timezone if timezone is not None else (session.timezone if session else None)
    return SiteMap(sites=sites, start_time=start, timezone=zone)
