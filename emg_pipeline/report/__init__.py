"""The spasm diary: reports per local day and per site, from episode files or recordings.

- :func:`load_episode_files` reads and validates episode files (one per session);
- :func:`detect_recording` runs the streaming pipeline over a recording and
  keeps its episodes and a bounded digest of its envelope;
- :func:`~emg_pipeline.report.summary.summarise` computes the figures and flags;
- :func:`write_report` writes the HTML page, the PNG plots and the CSV and
  JSON summaries into a folder.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "night.csv").write_text(
...     "channel,site,onset_s,onset_time,offset_s,duration_s,label,pattern\\n"
...     "ch1,calf,10.0,2024-05-01T23:00:10.000+02:00,16.0,6.0,spasm,tonic\\n")
>>> table = load_episode_files([folder / "night.csv"])
>>> files = write_report(summarise(table), folder / "report")
>>> sorted(p.name for p in files.values() if p.suffix != ".png")
['by_day.csv', 'by_day_site.csv', 'episodes.csv', 'hourly.csv', 'index.html', 'summary.json']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

import pandas as pd

from emg_pipeline.pipeline import Pipeline
from emg_pipeline.run import run
from emg_pipeline.settings import PipelineSettings
from emg_pipeline.sinks._output import atomic_write
from emg_pipeline.sinks.episodes import (
    EPISODE_FILE_COLUMNS,
    read_episodes,
    write_episodes,
)
from emg_pipeline.sites import SiteError, SiteMap, normalise_site, parse_site_option

from .digest import MinMaxDigest, StretchRecorder
from .html import render_html
from .plots import (
    plot_daily_bars,
    plot_day_timeline,
    plot_duration_histogram,
    plot_hourly,
    plot_stretch,
)
from .summary import DiarySummary, Flag, summarise

__all__ = [
    "DiarySummary",
    "Flag",
    "MinMaxDigest",
    "RecordingSession",
    "StretchRecorder",
    "detect_recording",
    "load_episode_files",
    "session_name",
    "summarise",
    "write_report",
]

#: chunk fed to the pipeline when a report detects episodes itself (results do not
#: depend on it; larger chunks are faster)
_CHUNK_S = 0.5


def session_name(path: str | Path) -> str:
    """Name of a session from its file name (``night1.episodes.csv`` -> ``night1``).

    Examples
    --------
    >>> session_name("data/night1.episodes.csv"), session_name("rec.csv.gz")
    ('night1', 'rec')
    """
    name = Path(path).name
    for suffix in (".gz", ".csv", ".txt", ".episodes", ".tsv"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def load_episode_files(
    paths: Sequence[str | Path], *, site_options: Iterable[str] = (),
    names: Sequence[str] | None = None, timezone: tzinfo | None = None,
) -> pd.DataFrame:
    """Read episode files into one table with a ``session`` column.

    Parameters
    ----------
    paths : sequence of path
        Episode files (see :mod:`emg_pipeline.sinks.episodes`).
    site_options : iterable of str
        ``CH=SITE`` texts; they override the files' sites for that channel.
        Files without a ``site`` column get the site their channel names name.
    names : sequence of str, optional
        Session names (default: from the file names).
    timezone : tzinfo, optional
        Zone of onset times written without a UTC offset (default: this
        computer's); the table's ``attrs["local_times"]`` lists the files read so.

    Raises
    ------
    EpisodeFileError
        If a file is missing or invalid.
    SiteError
        If a ``--site`` option names a channel found in none of the files.
    """
    from emg_pipeline.sites import site_of_name

    names = _unique(session_name(p) for p in paths) if names is None else list(names)
    overrides = dict(parse_site_option(text) for text in site_options)
    tables = []
    local: list[str] = []
    for path, name in zip(paths, names, strict=True):
        table = read_episodes(path, timezone=timezone)
        if "local_times" in table.attrs:
            local.append(f"{Path(path).name}: onset_time without a UTC offset, read as local "
                         f"time in {table.attrs['local_times']}")
        unspecified = table["site"] == "unspecified"
        if unspecified.any():
            guessed = [site_of_name(c) or "unspecified" for c in table.loc[unspecified, "channel"]]
            table.loc[unspecified, "site"] = guessed
        table.insert(0, "session", name)
        tables.append(table)
    columns = ["session", *EPISODE_FILE_COLUMNS]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
    for channel, site in overrides.items():
        hit = table["channel"] == channel
        if not hit.any():
            raise SiteError(channel, f"--site names channel {channel!r}, found in no episode file")
        table.loc[hit, "site"] = normalise_site(site)
    if local:
        table.attrs["local_times"] = local
    return table


@dataclass
class RecordingSession:
    """A recording a report detected itself.

    Attributes
    ----------
    name : str
        Session name.
    episodes : DataFrame
        Its episode table (as read back by ``read_episodes``).
    recorder : StretchRecorder
        Envelope digest, thresholds and episodes for the timeline.
    channels : tuple of str
    unit : str
    sites : SiteMap
    """

    name: str
    episodes: pd.DataFrame
    recorder: StretchRecorder
    channels: tuple[str, ...]
    unit: str
    sites: SiteMap


def detect_recording(
    path: str | Path,
    episodes_out: str | Path,
    *,
    settings: PipelineSettings | None = None,
    format: str | None = None,
    fs: float | None = None,
    resolve: object = None,
    name: str | None = None,
    strict: bool = False,
) -> RecordingSession:
    """Detect the episodes of a recording, write its episode file and keep its envelope digest.

    Parameters
    ----------
    path : path
        The recording (any supported format).
    episodes_out : path
        Where to write its episode file.
    settings : PipelineSettings, optional
        Detection settings.
    format, fs, strict : optional
        As for :func:`~emg_pipeline.sources.formats.open_recording`.
    resolve : callable, optional
        ``(channels, info) -> SiteMap``; default: sites from the channel names
        and the recording's start time.
    name : str, optional
        Session name (default from the file name).
    """
    from emg_pipeline.sites import resolve_sites
    from emg_pipeline.sources.formats import open_recording

    with open_recording(path, format=format, fs=fs, strict=strict) as reader:
        info = reader.info
        pipe = Pipeline(info.fs, info.channels, unit=info.unit, settings=settings)
        sites = (resolve(info.channels, info) if callable(resolve)
                 else resolve_sites(info.channels, info=info))
        recorder = StretchRecorder(info.fs, len(info.channels), target_bins=3000)
        chunk = max(1, round(_CHUNK_S * info.fs))
        run(reader.iter_chunks(chunk), pipe, [recorder]).raise_if_interrupted()
    write_episodes(pipe.episodes, episodes_out, sites)
    table = read_episodes(episodes_out)
    table.insert(0, "session", name or session_name(path))
    return RecordingSession(
        name=name or session_name(path), episodes=table, recorder=recorder,
        channels=tuple(info.channels), unit=info.unit, sites=sites,
    )


def write_report(
    summary: DiarySummary,
    out_dir: str | Path,
    recordings: Sequence[RecordingSession] = (),
    title: str = "Spasm diary",
) -> dict[str, Path]:
    """Write the report folder: ``index.html``, PNG plots, CSV and JSON summaries.

    Each file is replaced in one step (written under a temporary name, then
    renamed), ``index.html`` last.

    Returns
    -------
    dict
        ``key -> path`` of every file written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    images: dict[str, tuple[str, str]] = {}

    def image(key: str, file: str, caption: str, draw: object) -> None:
        path = draw(out / file)  # type: ignore[operator]
        written[key] = path
        images[key] = (file, caption)

    for rec in recordings:
        image(f"timeline_{rec.name}", f"timeline_{_safe(rec.name)}.png",
              f"Session {rec.name}: envelope of each channel with its on/off thresholds and "
              "the episodes found (shaded by class).",
              lambda p, rec=rec: plot_stretch(rec.recorder, p, rec.channels, unit=rec.unit,
                                              sites=rec.sites, raw=False,
                                              title=f"Session: {rec.name}"))
    image("timeline", "timeline.png",
          "Episodes along the hours of each day, one row per day and site "
          "(spasm bars widened to at least 4 minutes so they show).",
          lambda p: plot_day_timeline(summary, p))
    image("durations", "durations.png",
          "How long episodes last, by class (logarithmic time axis).",
          lambda p: plot_duration_histogram(summary, p))
    image("per_day", "per_day.png", "Episodes per day, and time in spasm per day by site.",
          lambda p: plot_daily_bars(summary, p))
    image("hourly", "hourly.png", "Episodes by hour of the day, all days together.",
          lambda p: plot_hourly(summary, p))
    csv_files = {
        "by_day": summary.by_day,
        "by_day_site": summary.by_day_site,
        "hourly": summary.hourly,
    }
    for key, frame in csv_files.items():
        path = out / f"{key}.csv"
        with atomic_write(path) as handle:
            frame.to_csv(handle, index=False, float_format="%.3f")
        written[key] = path
    episodes = summary.episodes.drop(columns=["local_time"]).copy()
    episodes["onset_time"] = [t.isoformat(timespec="milliseconds") if t is not None else ""
                              for t in summary.episodes["local_time"]]
    path = out / "episodes.csv"
    with atomic_write(path) as handle:
        episodes.to_csv(handle, index=False, float_format="%.4f")
    written["episodes"] = path
    files = {
        "per day (CSV)": "by_day.csv", "per day and site (CSV)": "by_day_site.csv",
        "per hour (CSV)": "hourly.csv", "all episodes (CSV)": "episodes.csv",
        "summary (JSON)": "summary.json",
    }
    path = out / "summary.json"
    with atomic_write(path) as handle:
        handle.write(json.dumps(summary.as_dict(), indent=2, allow_nan=False) + "\n")
    written["json"] = path
    path = out / "index.html"
    with atomic_write(path) as handle:   # last: the page is there once all it shows is
        handle.write(render_html(summary, images, files, title=title))
    written["html"] = path
    return written


def _safe(name: str) -> str:
    """A file-name-safe version of a session name."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return cleaned or "session"

