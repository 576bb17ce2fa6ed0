"""PNG plots of the spasm diary and of a stretch of recording.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot,
no global state, no display needed). Colours follow the Okabe-Ito palette,
readable with colour-blindness: twitches blue, tonic spasms vermillion,
clonic spasms reddish purple.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from emg_pipeline.events import Episode
from emg_pipeline.sinks._output import atomic_write
from emg_pipeline.sites import SiteMap

from ..labels import Label
from .digest import StretchRecorder
from .summary import DiarySummary

__all__ = [
    "COLOURS",
    "plot_daily_bars",
    "plot_day_timeline",
    "plot_duration_histogram",
    "plot_hourly",
    "plot_stretch",
]

#: colour of each class of episode
COLOURS = {"twitch": "#0072B2", "tonic": "#D55E00", "clonic": "#CC79A7"}
_THRESHOLD_ON = "#009E73"
_THRESHOLD_OFF = "#E69F00"
_DPI = 110


def _kind(label: str, pattern: str) -> str:
    return "twitch" if label == Label.TWITCH else ("clonic" if pattern == "clonic" else "tonic")


def _legend_handles() -> list[Patch]:
    return [Patch(color=COLOURS["twitch"], label="twitch"),
            Patch(color=COLOURS["tonic"], label="spasm, tonic"),
            Patch(color=COLOURS["clonic"], label="spasm, clonic")]


def _save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` in one step (a temporary file renamed over it)."""
    FigureCanvasAgg(fig)
    path = Path(path)
    with atomic_write(path, binary=True) as handle:
        fig.savefig(handle, format=path.suffix.lstrip(".").lower() or "png", dpi=_DPI)
    return path


def plot_day_timeline(summary: DiarySummary, path: str | Path) -> Path:
    """Episodes of every day and site along the 24 hours of the day.

    One row per day and site; spasms are bars (widened to at least four
    minutes so that they show), twitches are ticks.
    """
    eps = summary.episodes
    rows = list(dict.fromkeys(zip(eps["day"], eps["site"], strict=True))) if len(eps) else []
    order = {d: i for i, d in enumerate(summary.days)}
    rows.sort(key=lambda r: (order.get(r[0], 0), r[1]))
    height = 1.6 + 0.32 * max(len(rows), 1)
    fig = Figure(figsize=(10, min(height, 30)), layout="constrained")
    ax = fig.add_subplot()
    index = {r: i for i, r in enumerate(rows)}
    min_width_h = 4 / 60
    for kind in ("twitch", "tonic", "clonic"):
        if not len(eps):
            break
        mask = [_kind(lb, pt) == kind for lb, pt in zip(eps["label"], eps["pattern"], strict=True)]
        part = eps[mask]
        if not len(part):
            continue
        y = np.array([index[(d, s)] for d, s in zip(part["day"], part["site"], strict=True)])
        start_h = np.array([_hour_of_day(t, o) for t, o in
                            zip(part["local_time"], part["onset_s"], strict=True)])
        if kind == Label.TWITCH:
            ax.scatter(start_h, y, marker="|", s=120, color=COLOURS[kind], linewidths=1.2)
        else:
            width = np.maximum(part["duration_s"].to_numpy() / 3600.0, min_width_h)
            # one collection per row: thousands of single bars (patches) take seconds
            for row in np.unique(y):
                on_row = y == row
                ax.broken_barh(list(zip(start_h[on_row], width[on_row], strict=True)),
                               (row - 0.3, 0.6), facecolors=COLOURS[kind])
    ax.set_yticks(range(len(rows)), [f"{d}  {s}" for d, s in rows])
    ax.set_ylim(max(len(rows), 1) - 0.5, -0.5)
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 2))
    ax.set_xlabel("hour of the day (local time; undated sessions: hours from their start)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Episodes by day and site", pad=22)
    ax.legend(handles=_legend_handles(), loc="lower center", fontsize="small", ncol=3,
              bbox_to_anchor=(0.5, 1.0), frameon=False)
    if not rows:
        ax.text(12, 0, "no episodes", ha="center", va="center", color="grey")
    return _save(fig, path)


def _hour_of_day(moment: object, onset_s: float) -> float:
    if isinstance(moment, datetime):
        return moment.hour + moment.minute / 60 + (moment.second + moment.microsecond / 1e6) / 3600
    return (float(onset_s) / 3600.0) % 24


def plot_duration_histogram(summary: DiarySummary, path: str | Path) -> Path:
    """Histogram of episode durations (log scale), stacked by class."""
    eps = summary.episodes
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    durations = eps["duration_s"].to_numpy(dtype=np.float64) if len(eps) else np.empty(0)
    positive = durations[durations > 0]
    lo = max(float(positive.min()) if positive.size else 0.01, 0.005)
    hi = max(float(positive.max()) if positive.size else 10.0, lo * 10)
    bins = np.logspace(math.log10(lo) - 0.05, math.log10(hi) + 0.05, 30)
    kinds = [_kind(lb, pt) for lb, pt in zip(eps["label"], eps["pattern"], strict=True)] \
        if len(eps) else []
    kinds_arr = np.asarray(kinds, dtype=object)
    data = [np.clip(durations[kinds_arr == k], bins[0], bins[-1]) for k in COLOURS]
    labels = [f"{k if k == 'twitch' else 'spasm, ' + k} ({len(d)})" for k, d in
              zip(COLOURS, data, strict=True)]
    ax.hist(data, bins=bins, stacked=True, color=list(COLOURS.values()), label=labels)
    ax.set_xscale("log")
    ax.set_xlabel("episode duration (s, log scale)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("episodes")
    ax.set_title("How long episodes last")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_daily_bars(summary: DiarySummary, path: str | Path) -> Path:
    """Per-day counts of twitches and spasms, and spasm time per day by site."""
    by_day = summary.by_day
    days = list(by_day["day"])
    x = np.arange(len(days))
    fig = Figure(figsize=(max(6, 1 + 0.55 * len(days)), 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    twitches = by_day["twitches"].to_numpy(dtype=float)
    tonic = by_day["tonic"].to_numpy(dtype=float)
    clonic = by_day["clonic"].to_numpy(dtype=float)
    top.bar(x, twitches, color=COLOURS["twitch"], label="twitches")
    top.bar(x, tonic, bottom=twitches, color=COLOURS["tonic"], label="spasms, tonic")
    top.bar(x, clonic, bottom=twitches + tonic, color=COLOURS["clonic"], label="spasms, clonic")
    top.yaxis.set_major_locator(MaxNLocator(integer=True))
    top.set_ylabel("episodes")
    top.set_title("Episodes per day")
    top.legend(fontsize="small")
    top.grid(axis="y", alpha=0.3)
    table = summary.by_day_site
    sites = sorted(set(table["site"])) if len(table) else []
    base = np.zeros(len(days))
    greys = ["#56B4E9", "#009E73", "#F0E442", "#E69F00", "#999999", "#000000", "#0072B2"]
    for k, site in enumerate(sites):
        part = table[table["site"] == site].set_index("day")["spasm_time_s"]
        minutes = part.reindex(days, fill_value=0.0).to_numpy(dtype=float) / 60.0
        bottom.bar(x, minutes, bottom=base, color=greys[k % len(greys)], label=site)
        base += minutes
    bottom.set_ylabel("spasm time (min)")
    bottom.set_title("Time in spasm per day, by site")
    if sites:
        bottom.legend(fontsize="small")
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(x, days, rotation=45 if len(days) > 6 else 0, ha="right"
                      if len(days) > 6 else "center")
    return _save(fig, path)


def plot_hourly(summary: DiarySummary, path: str | Path) -> Path:
    """Episodes per hour of the day, all days together."""
    tw = summary.hourly_matrix("twitches").sum(axis=0).to_numpy(dtype=float)
    sp = summary.hourly_matrix("spasms").sum(axis=0).to_numpy(dtype=float)
    hours = np.arange(24)
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(hours - 0.2, tw, width=0.4, color=COLOURS["twitch"], label="twitches")
    ax.bar(hours + 0.2, sp, width=0.4, color=COLOURS["tonic"], label="spasms")
    ax.set_xticks(hours, [f"{h:02d}" for h in hours])
    ax.set_xlabel("hour of the day (local time)")
    ax.set_ylabel("episodes")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("When episodes happen")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _shade(ax: object, episodes: Sequence[Episode], to_x: object, label: bool) -> None:
    spasm_rank = 0
    for ep in episodes:
        kind = _kind(ep.label, ep.pattern)
        x0, x1 = to_x(ep.onset_s), to_x(ep.offset_s)  # type: ignore[operator]
        ax.axvspan(x0, x1, color=COLOURS[kind], alpha=0.22, linewidth=0)  # type: ignore[attr-defined]
        if label:
            text = "twitch" if kind == Label.TWITCH else f"{kind} {ep.duration_s:.1f} s"
            # successive spasm labels alternate between two lines so neighbours do not collide
            dy = -2 if kind == Label.TWITCH else -2 - 9 * (spasm_rank % 2)
            spasm_rank += kind != "twitch"
            ax.annotate(  # type: ignore[attr-defined]
                text, xy=(x0, 1.0), xycoords=("data", "axes fraction"), xytext=(1, dy),
                textcoords="offset points", fontsize=7, va="top", color=COLOURS[kind],
                rotation=0 if kind != "twitch" else 90, annotation_clip=True,
            )


def plot_stretch(
    recorder: StretchRecorder,
    path: str | Path,
    channels: Sequence[str],
    *,
    unit: str = "counts",
    sites: SiteMap | None = None,
    raw: bool = True,
    title: str = "",
) -> Path:
    """Raw signal, envelope, on/off thresholds and labelled episodes of a stretch.

    Parameters
    ----------
    recorder : StretchRecorder
        Fed with the stream (see :class:`~emg_pipeline.report.digest.StretchRecorder`).
    path : str or Path
        PNG to write.
    channels : sequence of str
        Channel names, in column order.
    unit : str
        Unit of the raw signal (``uV`` or ``counts``).
    sites : SiteMap, optional
        To name each channel's site and, if the start time is known, to put
        clock time on the time axis.
    raw : bool
        Draw the raw signal above each envelope (else envelopes only).
    title : str
        Figure title.
    """
    sites = sites if sites is not None else SiteMap()
    start = sites.local_start()
    n = len(channels)
    rows = 2 * n if raw else n
    fig = Figure(figsize=(11, 1.2 + (1.7 if raw else 2.0) * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, 1, sharex=True))
    if start is not None:
        base = start.replace(tzinfo=None)

        def to_x(t: float) -> object:
            return base + timedelta(seconds=float(t))

        def to_xs(t: np.ndarray) -> np.ndarray:
            return np.datetime64(base) + (np.asarray(t) * 1e6).astype("timedelta64[us]")
    else:

        def to_x(t: float) -> object:
            return float(t)

        def to_xs(t: np.ndarray) -> np.ndarray:
            return np.asarray(t, dtype=np.float64)

    rs, rmin, rmax = recorder.raw.bins()
    r_t = recorder.first_time_s + rs / recorder.fs
    es, emin, emax = recorder.envelope.bins()
    frame_s = recorder.frame_s if math.isfinite(recorder.frame_s) else 1.0
    e_t = recorder.envelope_first_time_s + (es + 0.5 * recorder.envelope.bin_len) * frame_s
    th = recorder.thresholds()
    episodes = recorder.episodes()
    env_unit = "µV" if unit == "uV" else "counts"
    for k, name in enumerate(channels):
        site = sites.site(name)
        label = name if site in ("unspecified", name) else f"{name} ({site})"
        mine = [e for e in episodes if e.channel == name]
        if raw:
            ax = axes[2 * k]
            lo, hi = _finite(rmin[:, k]), _finite(rmax[:, k])
            if recorder.raw.bin_len == 1:
                ax.plot(to_xs(r_t), lo, color="#333333", linewidth=0.5)
            else:
                ax.fill_between(to_xs(r_t), lo, hi, color="#333333", linewidth=0.3, step="post")
            ax.set_ylabel(f"{label}\nraw ({env_unit})", fontsize=8)
            _shade(ax, mine, to_x, label=False)
            ax.grid(alpha=0.25)
        ax = axes[2 * k + 1] if raw else axes[k]
        lo, hi = _finite(emin[:, k]), _finite(emax[:, k])
        if recorder.envelope.bin_len == 1:
            ax.plot(to_xs(e_t), hi, color="#000000", linewidth=0.8, label="envelope")
        else:
            ax.fill_between(to_xs(e_t), lo, hi, color="#000000", linewidth=0.5, step="mid",
                            label="envelope")
        if th.times_s.size:
            ax.step(to_xs(th.times_s), th.on[:, k], where="pre", color=_THRESHOLD_ON,
                    linewidth=1.0, linestyle="--", label="on threshold")
            ax.step(to_xs(th.times_s), th.off[:, k], where="pre", color=_THRESHOLD_OFF,
                    linewidth=1.0, linestyle=":", label="off threshold")
        _shade(ax, mine, to_x, label=True)
        ax.set_ylabel(f"{label}\nenvelope ({env_unit})", fontsize=8)
        ax.set_ylim(bottom=0)
        top = float(np.max(hi[np.isfinite(hi)], initial=0.0))
        if th.on.size:
            # the thresholds are undefined (NaN) until the noise floor is learnt
            on = th.on[:, k]
            top = max(top, float(np.max(on[np.isfinite(on)], initial=0.0)))
        ax.set_ylim(0, top * 1.35 if top > 0 else 1.0)
        ax.grid(alpha=0.25)
        if k == 0:
            handles, _ = ax.get_legend_handles_labels()
            axes[0].legend(handles=handles + _legend_handles(), fontsize=7, ncol=6,
                           loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False)
    end = recorder.end_s if math.isfinite(recorder.end_s) else recorder.seen_s
    axes[-1].set_xlim(to_x(recorder.start_s), to_x(max(end, recorder.start_s + 1e-3)))
    if start is not None:
        axes[-1].set_xlabel(f"local time ({start:%Y-%m-%d}, UTC{start:%z})")
    else:
        axes[-1].set_xlabel("time from the start of the recording (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _finite(values: np.ndarray) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).copy()
    out[~np.isfinite(out)] = np.nan
    return out

