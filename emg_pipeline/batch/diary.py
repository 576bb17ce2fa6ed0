"""The spasm diary of a batch: one diary per subject and an index over them.

``DIR/report/index.html`` lists every subject (recordings, hours of signal,
twitches, spasms, time in spasm, flags, recordings that could not be read) and
links to ``DIR/report/<subject>/index.html``: the diary of the existing report
code (:func:`emg_pipeline.report.summarise` and
:func:`emg_pipeline.report.write_report`: per local day and per site, with
its plots, CSV and JSON), over all of that subject's recordings.
``DIR/report/by_subject.csv`` holds the index's figures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path

import pandas as pd

from emg_pipeline import __version__
from emg_pipeline.report import summarise, write_report
from emg_pipeline.report.summary import (
    DEFAULT_LONG_SPASM_S,
    DEFAULT_RECURRING_DAYS,
    DISCLAIMER,
    format_duration,
)
from emg_pipeline.sinks.episodes import EPISODE_FILE_COLUMNS

__all__ = ["SUBJECT_COLUMNS", "diary_table", "write_batch_report"]

#: columns of ``by_subject.csv``
SUBJECT_COLUMNS = ("subject", "recordings", "errors", "hours", "twitches", "spasms",
                   "spasm_time_s", "flags", "diary")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222;
       line-height: 1.4; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td.text, th.text { text-align: left; }
.note { color: #555; font-size: 0.9em; }
"""


def diary_table(episodes: pd.DataFrame) -> pd.DataFrame:
    """A batch's episodes as the report code reads them: ``session`` and aware onset times.

    Parameters
    ----------
    episodes : DataFrame
        Rows of the episode dataset (one subject's, or any).

    Returns
    -------
    DataFrame
        ``session`` (the recording) and the columns of an episode file, with
        ``onset_time`` as aware datetimes (None when unknown).
    """
    table = episodes[list(EPISODE_FILE_COLUMNS)].copy()
    table["onset_time"] = [datetime.fromisoformat(t) if isinstance(t, str) and t else None
                           for t in episodes["onset_time"]]
    table.insert(0, "session", episodes["recording"].to_numpy())
    return table.reset_index(drop=True)


def _folder_names(subjects: Sequence[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    used: set[str] = set()
    for subject in subjects:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", subject).strip("._") or "subject"
        name, k = base, 1
        while name.lower() in used or name in ("index.html", "by_subject.csv"):
            k += 1
            name = f"{base}-{k}"
        used.add(name.lower())
        names[subject] = name
    return names


def write_batch_report(
    episodes: pd.DataFrame,
    recordings: pd.DataFrame,
    out_dir: str | Path,
    *,
    title: str = "Spasm diary",
    long_spasm_s: float | None = None,
    recurring_days: int | None = None,
) -> Path:
    """Write the diary of every subject and the index over them; return the index page.

    Parameters
    ----------
    episodes : DataFrame
        The batch's episodes (with ``subject``).
    recordings : DataFrame
        The batch's recordings (with ``subject`` and ``error``).
    out_dir : path
        The report folder.
    title : str
        Title of the pages (each diary adds its subject).
    long_spasm_s, recurring_days
        As for :func:`emg_pipeline.report.summarise` (None: its defaults).
    """
    long_spasm_s = DEFAULT_LONG_SPASM_S if long_spasm_s is None else long_spasm_s
    recurring_days = DEFAULT_RECURRING_DAYS if recurring_days is None else recurring_days
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    subjects = sorted(set(recordings["subject"]))
    folders = _folder_names(subjects)
    rows = []
    for subject in subjects:
        recs = recordings[recordings["subject"] == subject]
        ok = recs[recs["error"].isna()]
        eps = episodes[episodes["subject"] == subject]
        row = {"subject": subject, "recordings": len(recs), "errors": len(recs) - len(ok),
               "hours": float(ok["duration_s"].sum()) / 3600.0, "twitches": 0, "spasms": 0,
               "spasm_time_s": 0.0, "flags": 0, "diary": ""}
        if len(ok):
            summary = summarise(diary_table(eps), long_spasm_s=long_spasm_s,
                                recurring_days=recurring_days)
            written = write_report(summary, out / folders[subject],
                                   title=f"{title}: {subject}")
            spasms = eps["label"] == "spasm"
            row.update(twitches=int((~spasms).sum()), spasms=int(spasms.sum()),
                       spasm_time_s=float(eps.loc[spasms, "duration_s"].sum()),
                       flags=len(summary.flags),
                       diary=written["html"].relative_to(out).as_posix())
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(SUBJECT_COLUMNS))
    table.to_csv(out / "by_subject.csv", index=False, float_format="%.3f")
    page = out / "index.html"
    page.write_text(_index_html(table, recordings, title), encoding="utf-8")
    return page


def _index_html(table: pd.DataFrame, recordings: pd.DataFrame, title: str) -> str:
    heads = ["subject", "recordings", "hours of signal", "twitches", "spasms", "time in spasm",
             "flags", "not read"]
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>', "<!DOCTYPE html>",
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8" />',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="note">{len(recordings)} recording(s) of {len(table)} subject(s). '
        f"{escape(DISCLAIMER)}</p>",
        "<table><tr>" + "".join(f'<th class="text">{escape(h)}</th>' if h == "subject"
                                else f"<th>{escape(h)}</th>" for h in heads) + "</tr>",
    ]
    for row in table.to_dict("records"):
        name = escape(str(row["subject"]))
        link = f'<a href="{escape(row["diary"])}">{name}</a>' if row["diary"] else name
        cells = [link, str(row["recordings"]), f"{row['hours']:.1f}", str(row["twitches"]),
                 str(row["spasms"]), escape(format_duration(row["spasm_time_s"])),
                 str(row["flags"]), str(row["errors"])]
        lines.append("<tr>" + "".join(f'<td class="text">{c}</td>' if i == 0 else f"<td>{c}</td>"
                                      for i, c in enumerate(cells)) + "</tr>")
    lines.append("</table>")
    failed = recordings[recordings["error"].notna()]
    if len(failed):
        lines += ["<h2>Recordings not read</h2>",
                  '<table><tr><th class="text">subject</th><th class="text">recording</th>'
                  '<th class="text">error</th></tr>']
        lines += [f'<tr><td class="text">{escape(str(r["subject"]))}</td>'
                  f'<td class="text">{escape(str(r["recording"]))}</td>'
                  f'<td class="text">{escape(str(r["error"]))}</td></tr>'
                  for r in failed.to_dict("records")]
        lines.append("</table>")
    lines.append(f'<p class="note">emg-pipeline {escape(__version__)}</p></body></html>')
    return "\n".join(lines) + "\n"
