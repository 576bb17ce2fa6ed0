"""The session diary of the dashboard: the report's figures and plots, kept in memory.

The episodes of the running session (and those of earlier sessions, read from
their episode files at start) go through the same steps as ``emg-pipeline
report``: the episode table (:func:`~emg_pipeline.sinks.episodes.episode_table`,
read back by :func:`~emg_pipeline.sinks.episodes.read_episodes`),
:func:`~emg_pipeline.report.summary.summarise` (per day and site, the
consecutive-day and neck/back flags) and the report's plots. The PNG files are
drawn in a private temporary folder and kept as bytes; the server only ever
answers with those bytes, never with a file named by a request.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from emg_pipeline.events import Episode
from emg_pipeline.sites import SiteMap

__all__ = ["PLOTS", "Diary", "DiaryView"]

#: the plots of the diary: name -> caption
PLOTS: dict[str, str] = {
    "timeline": "Episodes along the hours of each day, one row per day and site.",
    "per_day": "Episodes per day, and time in spasm per day by site.",
    "durations": "How long episodes last, by class.",
    "hourly": "Episodes by hour of the day, all days together.",
}


@dataclass(frozen=True)
class DiaryView:
    """One computed diary: JSON-ready figures and the plots as PNG bytes."""

    data: dict[str, Any]
    plots: dict[str, bytes] = field(default_factory=dict)


class Diary:
    """The diary shown by the dashboard.

    Parameters
    ----------
    past : DataFrame, optional
        Episodes of earlier sessions (as
        :func:`~emg_pipeline.report.load_episode_files` returns).
    session : str
        Name of the live session in the diary.
    """

    def __init__(self, past: pd.DataFrame | None = None, session: str = "live") -> None:
        self.past = past
        self.session = session

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], sites: SiteMap | None = None,
                   session: str = "live") -> Diary:
        """Read (and validate, now) the episode files of earlier sessions.

        Raises
        ------
        EpisodeFileError
            If a file is missing or invalid (one line naming it).
        """
        from emg_pipeline.report import load_episode_files

        past = load_episode_files(list(paths)) if paths else None
        return cls(past, session)

    def table(self, episodes: Sequence[Episode], sites: SiteMap) -> pd.DataFrame:
        """The episodes of every session, as the report reads them."""
        from emg_pipeline.sinks.episodes import episode_table, read_episodes

        text = io.StringIO()
        episode_table(list(episodes), sites).to_csv(text, index=False, float_format="%.4f")
        text.seek(0)
        live = read_episodes(text)
        live.insert(0, "session", self.session)
        if self.past is None or not len(self.past):
            return live
        if not len(live):
            return self.past.copy()
        return pd.concat([self.past, live], ignore_index=True)

    def build(self, episodes: Sequence[Episode], sites: SiteMap,
              plots: bool = True) -> DiaryView:
        """Figures, flags and plots of the diary (seconds of work: run it off the event loop)."""
        from emg_pipeline.report.plots import (
            plot_daily_bars,
            plot_day_timeline,
            plot_duration_histogram,
            plot_hourly,
        )
        from emg_pipeline.report.summary import summarise

        summary = summarise(self.table(episodes, sites))
        data = summary.as_dict()
        data["live_session"] = self.session
        images: dict[str, bytes] = {}
        if plots and len(summary.episodes):
            drawers: dict[str, Callable[..., Path]] = {
                "timeline": plot_day_timeline, "per_day": plot_daily_bars,
                "durations": plot_duration_histogram, "hourly": plot_hourly,
            }
            with tempfile.TemporaryDirectory(prefix="emg-diary-") as folder:
                for name, draw in drawers.items():
                    path = draw(summary, Path(folder) / f"{name}.png")
                    images[name] = path.read_bytes()
        data["plots"] = [{"name": name, "caption": PLOTS[name]} for name in images]
        return DiaryView(data, images)
