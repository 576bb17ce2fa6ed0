"""Figures of the spasm diary: per local day and per site, and the flags.

Everything here is a pure function of an episode table (as read by
:func:`emg_pipeline.sinks.episodes.read_episodes`, with a ``session`` column
added): no files, no plots.

Days and hours are local: the wall-clock time of each onset in the offset it
was written with (``onset_time``), or in the zone given to
:func:`summarise`. An episode belongs to the day and hour of its onset, even
when it runs past midnight. Episodes without wall-clock time (the recording's
start time was unknown) are grouped under the day ``undated``, with hours
counted from the start of their session.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

import numpy as np
import pandas as pd

from emg_pipeline.errors import ConfigError
from emg_pipeline.sites import ATTENTION_SITES

from ..labels import Label

__all__ = [
    "DEFAULT_LONG_SPASM_S",
    "DEFAULT_RECURRING_DAYS",
    "DISCLAIMER",
    "UNDATED",
    "DiarySummary",
    "Flag",
    "format_duration",
    "summarise",
]

#: a single spasm longer than this is flagged (settable)
DEFAULT_LONG_SPASM_S = 300.0
#: prolonged spasms on this many consecutive days are flagged (settable)
DEFAULT_RECURRING_DAYS = 3
#: day label of episodes without wall-clock time
UNDATED = "undated"

DISCLAIMER = (
    "This report describes what the sensor recorded. It is information to share with a "
    "clinician, not a diagnosis."
)
_ATTENTION_ADVICE = (
    "Medical advice recommends seeking attention if numbness, tingling or weakness come "
    "with spasms in the neck or back."
)

#: columns of the per-day tables
DAY_COLUMNS = (
    "day", "site", "twitches", "spasms", "spasm_time_s", "longest_spasm_s",
    "tonic", "clonic", "tonic_share", "clonic_share", "truncated_spasms",
)


def format_duration(seconds: float) -> str:
    """Say a duration the way people do.

    Examples
    --------
    >>> format_duration(4.25), format_duration(75), format_duration(120), format_duration(3725)
    ('4.2 s', '1 min 15 s', '2 min', '1 h 2 min')
    """
    if not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60} min"


@dataclass(frozen=True)
class Flag:
    """A plain-language observation worth a look (not a diagnosis).

    Attributes
    ----------
    kind : {"recurring", "attention_site", "long_spasm"}
        What was seen.
    message : str
        One or two sentences for people.
    days : tuple of str
        ISO dates concerned.
    sites : tuple of str
        Sites concerned.
    value : float
        The figure behind the flag: run length in days, spasm count, or
        spasm duration in seconds.
    """

    kind: str
    message: str
    days: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    value: float = math.nan

    def as_dict(self) -> dict[str, object]:
        """The flag as JSON-ready dict."""
        return {
            "kind": self.kind, "message": self.message, "days": list(self.days),
            "sites": list(self.sites), "value": None if math.isnan(self.value) else self.value,
        }


@dataclass(frozen=True)
class DiarySummary:
    """The figures of a report.

    Attributes
    ----------
    episodes : DataFrame
        The episodes with ``session``, ``local_time`` (aware datetime or None),
        ``day`` (ISO date or ``undated``) and ``hour`` (0-23) added.
    by_day : DataFrame
        One row per day, all sites together (``site == "all"``); columns
        :data:`DAY_COLUMNS`.
    by_day_site : DataFrame
        One row per day and site.
    by_site : DataFrame
        One row per site over the whole period (``day == "all"``).
    hourly : DataFrame
        ``day``, ``site``, ``hour`` and counts, for every hour with an episode.
    flags : tuple of Flag
    long_spasm_s : float
    recurring_days : int
    sessions : tuple of str
    """

    episodes: pd.DataFrame
    by_day: pd.DataFrame
    by_day_site: pd.DataFrame
    by_site: pd.DataFrame
    hourly: pd.DataFrame
    flags: tuple[Flag, ...]
    long_spasm_s: float
    recurring_days: int
    sessions: tuple[str, ...] = field(default=())

    @property
    def days(self) -> tuple[str, ...]:
        """The days covered, in order (``undated`` last)."""
        return tuple(self.by_day["day"])

    def hourly_matrix(self, kind: str = "spasms") -> pd.DataFrame:
        """Counts of ``kind`` (``twitches`` or ``spasms``) as a days x 24 hours table."""
        table = self.hourly.pivot_table(
            index="day", columns="hour", values=kind, aggfunc="sum", fill_value=0
        ) if len(self.hourly) else pd.DataFrame()
        table = table.reindex(index=list(self.days), columns=range(24), fill_value=0)
        return table.astype(np.int64)

    def as_dict(self) -> dict[str, object]:
        """Everything as JSON-ready data."""

        def records(frame: pd.DataFrame) -> list[dict[str, object]]:
            out = []
            for row in frame.to_dict("records"):
                out.append({k: _plain(v) for k, v in row.items()})
            return out

        twitches = self.hourly_matrix("twitches")
        spasms = self.hourly_matrix("spasms")
        days = []
        for row in records(self.by_day):
            day = str(row["day"])
            row["sites"] = records(self.by_day_site[self.by_day_site["day"] == day].drop(
                columns="day"))
            row["hourly_twitches"] = [int(v) for v in twitches.loc[day]]
            row["hourly_spasms"] = [int(v) for v in spasms.loc[day]]
            days.append(row)
        return {
            "disclaimer": DISCLAIMER,
            "settings": {"long_spasm_s": self.long_spasm_s,
                         "recurring_days": self.recurring_days},
            "sessions": list(self.sessions),
            "totals": _totals(self.episodes),
            "days": days,
            "sites": records(self.by_site.drop(columns="day")),
            "flags": [f.as_dict() for f in self.flags],
        }


def _plain(value: object) -> object:
    """A JSON-ready scalar (NaN -> None, numpy -> Python)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _totals(episodes: pd.DataFrame) -> dict[str, object]:
    row = _figures(episodes)
    return {k: _plain(v) for k, v in row.items()}


def _figures(group: pd.DataFrame) -> dict[str, object]:
    """Counts, spasm time, longest spasm and tonic/clonic shares of a group of episodes."""
    spasm = group["label"].to_numpy() == Label.SPASM
    durations = group["duration_s"].to_numpy(dtype=np.float64)
    patterns = group["pattern"].to_numpy()
    n_spasms = int(spasm.sum())
    tonic = int(np.sum(spasm & (patterns == "tonic")))
    clonic = int(np.sum(spasm & (patterns == "clonic")))
    return {
        "twitches": int(np.sum(group["label"].to_numpy() == Label.TWITCH)),
        "spasms": n_spasms,
        "spasm_time_s": float(durations[spasm].sum()),
        "longest_spasm_s": float(durations[spasm].max()) if n_spasms else math.nan,
        "tonic": tonic,
        "clonic": clonic,
        "tonic_share": tonic / n_spasms if n_spasms else math.nan,
        "clonic_share": clonic / n_spasms if n_spasms else math.nan,
        "truncated_spasms": int(np.sum(spasm & group["truncated"].to_numpy(dtype=bool))),
    }


def _table(episodes: pd.DataFrame, keys: list[str], fixed: dict[str, str]) -> pd.DataFrame:
    rows = []
    if len(episodes):
        for key, group in episodes.groupby(keys, sort=False):
            values = key if isinstance(key, tuple) else (key,)
            rows.append({**fixed, **dict(zip(keys, values, strict=True)), **_figures(group)})
    frame = pd.DataFrame(rows, columns=list(DAY_COLUMNS))
    return frame


def _day_order(days: Sequence[str]) -> list[str]:
    dated = sorted(d for d in set(days) if d != UNDATED)
    return dated + ([UNDATED] if UNDATED in days else [])


def _localise(episodes: pd.DataFrame, zone: tzinfo | None) -> pd.DataFrame:
    out = episodes.copy()
    times: list[datetime | None] = []
    days: list[str] = []
    hours: list[int] = []
    for moment, onset_s in zip(out["onset_time"], out["onset_s"], strict=True):
        if isinstance(moment, datetime):
            local = moment.astimezone(zone) if zone is not None else moment
            times.append(local)
            days.append(local.date().isoformat())
            hours.append(local.hour)
        else:
            times.append(None)
            days.append(UNDATED)
            hours.append(int(float(onset_s) // 3600) % 24)
    out["local_time"] = pd.Series(times, index=out.index, dtype=object)
    out["day"] = days
    out["hour"] = np.asarray(hours, dtype=np.int64)
    return out


def _runs(days: Sequence[date]) -> list[list[date]]:
    """Runs of consecutive calendar days in a sorted sequence of distinct dates."""
    runs: list[list[date]] = []
    for day in days:
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def _flags(episodes: pd.DataFrame, long_spasm_s: float, recurring_days: int) -> list[Flag]:
    flags: list[Flag] = []
    spasms = episodes[episodes["label"] == Label.SPASM]
    dated = spasms[spasms["day"] != UNDATED]
    spasm_days = sorted({date.fromisoformat(d) for d in dated["day"]})
    for run in _runs(spasm_days):
        if len(run) < recurring_days:
            continue
        names = [d.isoformat() for d in run]
        in_run = dated[dated["day"].isin(names)]
        sites = tuple(sorted(set(in_run["site"])))
        flags.append(Flag(
            "recurring",
            f"Prolonged spasms were recorded on {len(run)} consecutive days, from "
            f"{names[0]} to {names[-1]} ({len(in_run)} spasms; sites: {', '.join(sites)}). "
            "Recurring spasms are worth mentioning to a clinician.",
            days=tuple(names), sites=sites, value=float(len(run)),
        ))
    for site in sorted(ATTENTION_SITES):
        at_site = spasms[spasms["site"] == site]
        if not len(at_site):
            continue
        days = tuple(_day_order(list(at_site["day"])))
        n = len(at_site)
        flags.append(Flag(
            "attention_site",
            f"{n} prolonged spasm{'s' if n != 1 else ''} recorded at the {site} "
            f"({', '.join(days)}). {_ATTENTION_ADVICE}",
            days=days, sites=(site,), value=float(n),
        ))
    long = spasms[spasms["duration_s"] > long_spasm_s]
    for _, row in long.sort_values("onset_s", kind="stable").iterrows():
        local = row["local_time"]
        when = (f"on {row['day']} at {local:%H:%M}" if isinstance(local, datetime)
                else f"{format_duration(float(row['onset_s']))} into session {row['session']}")
        at_least = "at least " if bool(row["truncated"]) else ""
        flags.append(Flag(
            "long_spasm",
            f"A single spasm lasted {at_least}{format_duration(float(row['duration_s']))} at "
            f"the {row['site']} ({row['channel']}) {when}, longer than the "
            f"{format_duration(long_spasm_s)} set as the limit.",
            days=(str(row["day"]),), sites=(str(row["site"]),),
            value=float(row["duration_s"]),
        ))
    return flags


def summarise(
    episodes: pd.DataFrame,
    *,
    long_spasm_s: float = DEFAULT_LONG_SPASM_S,
    recurring_days: int = DEFAULT_RECURRING_DAYS,
    timezone: tzinfo | None = None,
) -> DiarySummary:
    """Compute the diary figures and flags of an episode table.

    Parameters
    ----------
    episodes : DataFrame
        Columns of :data:`~emg_pipeline.sinks.episodes.EPISODE_FILE_COLUMNS`
        (as :func:`~emg_pipeline.sinks.episodes.read_episodes` returns) and
        optionally ``session``.
    long_spasm_s : float
        Single spasms longer than this are flagged.
    recurring_days : int
        Prolonged spasms on at least this many consecutive days are flagged.
    timezone : tzinfo, optional
        Zone of the local days; default: each onset's own UTC offset.

    Returns
    -------
    DiarySummary

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> t0 = datetime(2024, 5, 1, 23, 59, tzinfo=timezone.utc)
    >>> table = pd.DataFrame({
    ...     "channel": ["ch1", "ch1"], "site": ["calf", "calf"], "onset_s": [0.0, 120.0],
    ...     "onset_time": [t0, t0 + timedelta(seconds=120)], "offset_s": [5.0, 120.5],
    ...     "duration_s": [5.0, 0.5], "label": ["spasm", "twitch"],
    ...     "pattern": ["tonic", "phasic"], "truncated": [False, False]})
    >>> s = summarise(table)
    >>> s.by_day[["day", "twitches", "spasms", "spasm_time_s"]].values.tolist()
    [['2024-05-01', 0, 1, 5.0], ['2024-05-02', 1, 0, 0.0]]
    """
    if not (isinstance(long_spasm_s, int | float) and long_spasm_s > 0
            and math.isfinite(long_spasm_s)):
        raise ConfigError("long_spasm_s", long_spasm_s, "a positive number of seconds")
    if isinstance(recurring_days, bool) or not isinstance(recurring_days, int) \
            or recurring_days < 2:
        raise ConfigError("recurring_days", recurring_days, "a whole number of days, at least 2")
    table = episodes.copy()
    if "session" not in table:
        table["session"] = ""
    if "truncated" not in table:
        table["truncated"] = False
    table = _localise(table.reset_index(drop=True), timezone)
    order = _day_order(list(table["day"]))
    by_day = _table(table, ["day"], {"site": "all"})
    by_day_site = _table(table, ["day", "site"], {})
    by_site = _table(table, ["site"], {"day": "all"})
    rank = {d: i for i, d in enumerate(order)}
    by_day = by_day.sort_values("day", key=lambda s: s.map(rank)).reset_index(drop=True)
    by_day_site = by_day_site.sort_values(
        ["day", "site"], key=lambda s: s.map(rank) if s.name == "day" else s
    ).reset_index(drop=True)
    by_site = by_site.sort_values("site").reset_index(drop=True)
    hourly_rows = []
    if len(table):
        for (day, site, hour), group in table.groupby(["day", "site", "hour"]):
            figures = _figures(group)
            hourly_rows.append({"day": day, "site": site, "hour": int(hour),
                                "twitches": figures["twitches"], "spasms": figures["spasms"],
                                "spasm_time_s": figures["spasm_time_s"]})
    hourly = pd.DataFrame(
        hourly_rows, columns=["day", "site", "hour", "twitches", "spasms", "spasm_time_s"]
    )
    if len(hourly):
        hourly = hourly.sort_values(
            ["day", "hour", "site"], key=lambda s: s.map(rank) if s.name == "day" else s
        ).reset_index(drop=True)
    sessions = tuple(dict.fromkeys(str(s) for s in table["session"] if str(s)))
    return DiarySummary(
        episodes=table,
        by_day=by_day,
        by_day_site=by_day_site,
        by_site=by_site,
        hourly=hourly,
        flags=tuple(_flags(table, float(long_spasm_s), recurring_days)),
        long_spasm_s=float(long_spasm_s),
        recurring_days=recurring_days,
        sessions=sessions,
    )
