"""The HTML page of the spasm diary.

One self-contained page: inline style, no script, no external resource; the
PNG plots sit next to it and are referenced by file name, so the folder can
be zipped, mailed or opened offline. Every tag is closed (void elements as
``<img ... />``), so the page also parses as XML.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import pandas as pd

from emg_pipeline import __version__

from ..labels import Label
from .summary import DISCLAIMER, DiarySummary, format_duration

__all__ = ["render_html"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222;
       line-height: 1.4; padding: 0 1em; }
h1 { margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td.text, th.text { text-align: left; }
.flags { border-left: 4px solid #E69F00; background: #fff8e6; padding: 0.5em 1em; }
.note { color: #555; font-size: 0.9em; }
table.hours td { padding: 0.2em 0.3em; min-width: 1.6em; text-align: center; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _num(value: object, fmt: str = "{:d}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def _share(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * float(value):.0f} %"


def _figures_table(frame: pd.DataFrame, first: Sequence[str]) -> str:
    heads = [*first, "twitches", "spasms", "spasm time", "longest spasm", "tonic", "clonic"]
    out = ["<table>", "<tr>" + "".join(
        f'<th class="text">{escape(h)}</th>' if h in first else f"<th>{escape(h)}</th>"
        for h in heads) + "</tr>"]
    for row in frame.to_dict("records"):
        cells = [f'<td class="text">{escape(str(row[c]))}</td>' for c in first]
        longest = row["longest_spasm_s"]
        cells += [
            f"<td>{_num(row['twitches'])}</td>",
            f"<td>{_num(row['spasms'])}</td>",
            f"<td>{escape(format_duration(float(row['spasm_time_s'])))}</td>",
            f"<td>{escape(format_duration(float(longest)))}</td>",
            f"<td>{_share(row['tonic_share'])}</td>",
            f"<td>{_share(row['clonic_share'])}</td>",
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _hours_table(summary: DiarySummary) -> str:
    twitches = summary.hourly_matrix("twitches")
    spasms = summary.hourly_matrix("spasms")
    top = max(1, int(spasms.to_numpy().max(initial=0)))
    out = ['<table class="hours">',
           '<tr><th class="text">day</th>' + "".join(f"<th>{h:02d}</th>" for h in range(24))
           + "</tr>"]
    for day in summary.days:
        cells = []
        for hour in range(24):
            t, s = int(twitches.at[day, hour]), int(spasms.at[day, hour])
            if t == 0 and s == 0:
                cells.append("<td></td>")
                continue
            alpha = 0.15 + 0.75 * s / top if s else 0.0
            style = f' style="background: rgba(213, 94, 0, {alpha:.2f})"' if s else ""
            title = f"{t} twitches, {s} spasms"
            cells.append(f'<td{style} title="{title}">{s}/{t}</td>')
        out.append(f'<tr><td class="text">{escape(day)}</td>' + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_html(
    summary: DiarySummary,
    images: Mapping[str, tuple[str, str]],
    files: Mapping[str, str],
    title: str = "Spasm diary",
) -> str:
    """Return the report page.

    Parameters
    ----------
    summary : DiarySummary
        The figures.
    images : mapping
        ``key -> (file name, caption)`` of the PNG plots, in display order.
    files : mapping
        ``label -> file name`` of the CSV and JSON summaries.
    title : str
        Page title.
    """
    eps = summary.episodes
    dated = [d for d in summary.days if d != "undated"]
    period = f"{dated[0]} to {dated[-1]}" if dated else "no dated episodes"
    parts = [
        '<!DOCTYPE html>',
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8" />',
        '<meta name="viewport" content="width=device-width, initial-scale=1" />',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">{escape(period)}; {len(summary.sessions)} session(s): '
        f"{escape(', '.join(summary.sessions))}. "
        f"Days and hours are local time. Spasm: sustained activity that lasted long enough "
        f"to count as a prolonged spasm; twitch: a brief contraction.</p>",
        f'<p class="note">{escape(DISCLAIMER)}</p>',
        "<h2>Worth a look</h2>",
    ]
    if summary.flags:
        parts.append('<div class="flags"><ul>')
        parts += [f"<li>{escape(f.message)}</li>" for f in summary.flags]
        parts.append("</ul></div>")
    else:
        parts.append(
            "<p>Nothing to point out: no prolonged spasms on "
            f"{summary.recurring_days} or more consecutive days, none at the neck or back, "
            f"none longer than {escape(format_duration(summary.long_spasm_s))}.</p>"
        )
    n_tw = int((eps["label"] == Label.TWITCH).sum()) if len(eps) else 0
    n_sp = int((eps["label"] == Label.SPASM).sum()) if len(eps) else 0
    parts += [
        "<h2>Per day</h2>",
        f"<p>{n_tw} twitches and {n_sp} spasms in all.</p>",
        _figures_table(summary.by_day, ["day"]),
        "<h2>Per day and site</h2>",
        _figures_table(summary.by_day_site, ["day", "site"]),
        "<h2>Per site</h2>",
        _figures_table(summary.by_site, ["site"]),
        "<h2>Hour by hour</h2>",
        '<p class="note">Each cell: spasms/twitches that began in that hour; darker cells '
        "had more spasms.</p>",
        _hours_table(summary),
        "<h2>Plots</h2>",
    ]
    for name, caption in images.values():
        parts.append(
            f'<figure><img src="{escape(name)}" alt="{escape(caption)}" />'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    parts.append("<h2>Data</h2><ul>")
    parts += [f'<li><a href="{escape(name)}">{escape(label)}</a></li>'
              for label, name in files.items()]
    parts += [
        "</ul>",
        f'<p class="note">Made with emg-pipeline {escape(__version__)}.</p>',
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
