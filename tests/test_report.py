"""The spasm diary: figures on episode files with known content, flags, the page, the plots."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emg_pipeline.cli import main
from emg_pipeline.events import Episode
from emg_pipeline.report import load_episode_files, summarise, write_report
from emg_pipeline.report.digest import MinMaxDigest, StretchRecorder
from emg_pipeline.sinks.episodes import write_episodes
from emg_pipeline.sites import SiteMap

PLUS2 = timezone(timedelta(hours=2))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def ep(channel: str, onset: float, duration: float, label: str = "spasm",
       pattern: str | None = None, truncated: bool = False) -> Episode:
    pattern = pattern or ("phasic" if label == "twitch" else "tonic")
    return Episode(channel, onset, onset + duration, duration, label, pattern,  # type: ignore[arg-type]
                   12.0, 6.0, "uV", 4, 5.0, 95.0, 2.5, truncated)


def session(tmp: Path, name: str, start: datetime | None, episodes: list[Episode],
            sites: dict[str, str] | None = None) -> Path:
    path = tmp / f"{name}.episodes.csv"
    write_episodes(episodes, path, SiteMap(sites if sites is not None else
                                           {"ch1": "calf", "ch2": "back"}, start))
    return path


@pytest.fixture
def three_nights(tmp_path: Path) -> list[Path]:
    """Three sessions starting at 22:00 (+02:00) on 1, 2 and 3 May 2024."""
    night1 = session(tmp_path, "n1", datetime(2024, 5, 1, 22, 0, tzinfo=PLUS2), [
        ep("ch1", 600.0, 0.5, "twitch"),          # 22:10 on 1 May
        ep("ch1", 3000.0, 12.0, "spasm", "tonic"),  # 22:50
        ep("ch1", 7190.0, 30.0, "spasm", "clonic"),  # 23:59:50 (1 May, local)
        ep("ch2", 7210.0, 4.0, "spasm", "tonic"),   # 00:00:10 on 2 May local = 1 May UTC
        ep("ch2", 7300.0, 0.3, "twitch"),
    ])
    night2 = session(tmp_path, "n2", datetime(2024, 5, 2, 22, 0, tzinfo=PLUS2), [
        ep("ch1", 100.0, 0.2, "twitch"),
        ep("ch1", 200.0, 400.0, "spasm", "tonic"),   # long: 6 min 40 s, on 2 May
    ])
    night3 = session(tmp_path, "n3", datetime(2024, 5, 3, 21, 0, tzinfo=PLUS2), [
        ep("ch1", 60.0, 3.0, "spasm", "clonic"),     # 21:01 on 3 May
    ])
    return [night1, night2, night3]


def test_figures_per_local_day(three_nights: list[Path]) -> None:
    table = load_episode_files(three_nights)
    assert table["session"].unique().tolist() == ["n1", "n2", "n3"]
    s = summarise(table)
    by_day = s.by_day.set_index("day")
    assert s.days == ("2024-05-01", "2024-05-02", "2024-05-03")
    assert by_day.loc["2024-05-01", ["twitches", "spasms"]].tolist() == [1, 2]
    assert by_day.loc["2024-05-01", "spasm_time_s"] == pytest.approx(42.0)
    assert by_day.loc["2024-05-01", "longest_spasm_s"] == pytest.approx(30.0)
    assert by_day.loc["2024-05-01", "tonic_share"] == pytest.approx(0.5)
    # 00:00:10 local (22:00:10 UTC on 1 May) belongs to 2 May
    assert by_day.loc["2024-05-02", ["twitches", "spasms"]].tolist() == [2, 2]
    assert by_day.loc["2024-05-02", "spasm_time_s"] == pytest.approx(404.0)
    assert by_day.loc["2024-05-02", "longest_spasm_s"] == pytest.approx(400.0)
    assert by_day.loc["2024-05-03", "clonic_share"] == 1.0
    sites = s.by_day_site.set_index(["day", "site"])
    assert sites.loc[("2024-05-02", "back"), "spasms"] == 1
    assert sites.loc[("2024-05-02", "calf"), "spasms"] == 1
    hours = s.hourly_matrix("spasms")
    assert hours.loc["2024-05-01", 22] == 1 and hours.loc["2024-05-01", 23] == 1
    assert hours.loc["2024-05-02", 0] == 1 and hours.loc["2024-05-03", 21] == 1
    assert int(hours.to_numpy().sum()) == 5


def test_report_zone_moves_day_boundaries(three_nights: list[Path]) -> None:
    s = summarise(load_episode_files(three_nights), timezone=UTC)
    by_day = s.by_day.set_index("day")
    # in UTC the first night (20:00-22:00 UTC) is entirely on 1 May
    assert by_day.loc["2024-05-01", "spasms"] == 3
    assert s.hourly_matrix("spasms").loc["2024-05-01", 22] == 1


def kinds(summary: object) -> list[str]:
    return [f.kind for f in summary.flags]  # type: ignore[attr-defined]


def test_consecutive_day_flag_on_and_off(tmp_path: Path, three_nights: list[Path]) -> None:
    s = summarise(load_episode_files(three_nights), long_spasm_s=1000)
    recurring = [f for f in s.flags if f.kind == "recurring"]
    assert len(recurring) == 1
    assert recurring[0].days == ("2024-05-01", "2024-05-02", "2024-05-03")
    assert recurring[0].value == 3
    assert "not a diagnosis" not in recurring[0].message  # the page carries the disclaimer
    assert "consecutive days" in recurring[0].message
    # a day with twitches only breaks the run
    gap = [
        session(tmp_path, "a", datetime(2024, 6, 1, 12, tzinfo=PLUS2), [ep("ch1", 0, 5)]),
        session(tmp_path, "b", datetime(2024, 6, 2, 12, tzinfo=PLUS2),
                [ep("ch1", 0, 0.5, "twitch")]),
        session(tmp_path, "c", datetime(2024, 6, 3, 12, tzinfo=PLUS2), [ep("ch1", 0, 5)]),
        session(tmp_path, "d", datetime(2024, 6, 4, 12, tzinfo=PLUS2), [ep("ch1", 0, 5)]),
    ]
    s = summarise(load_episode_files(gap))
    assert "recurring" not in kinds(s)
    s = summarise(load_episode_files(gap), recurring_days=2)
    assert [f.days for f in s.flags if f.kind == "recurring"] == [("2024-06-03", "2024-06-04")]


def test_neck_back_and_long_spasm_flags(tmp_path: Path) -> None:
    start = datetime(2024, 7, 1, 8, 0, tzinfo=PLUS2)
    path = session(tmp_path, "s", start, [
        ep("ch1", 0.0, 2.5),                       # calf spasm
        ep("ch2", 10.0, 0.4, "twitch"),            # neck twitch: no flag
        ep("ch3", 20.0, 95.0, truncated=True),     # back spasm, long, cut by the end
    ], sites={"ch1": "calf", "ch2": "neck", "ch3": "back"})
    s = summarise(load_episode_files([path]), long_spasm_s=60.0)
    attention = [f for f in s.flags if f.kind == "attention_site"]
    assert [f.sites for f in attention] == [("back",)]
    assert "numbness, tingling or weakness" in attention[0].message
    long = [f for f in s.flags if f.kind == "long_spasm"]
    assert len(long) == 1 and long[0].value == pytest.approx(95.0)
    assert "at least 1 min 35 s" in long[0].message and "08:00" in long[0].message
    assert "long_spasm" not in kinds(summarise(load_episode_files([path]), long_spasm_s=120))


def test_site_mapping_of_episode_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"  # a 'detect' table: no site column, no times
    pd.DataFrame([ep("calf_left", 1.0, 3.0).as_dict(), ep("ch7", 5.0, 0.2, "twitch").as_dict()]
                 ).to_csv(plain, index=False)
    table = load_episode_files([plain])
    assert table["site"].tolist() == ["calf", "unspecified"]
    assert (table["note"] == "").all()  # files from before the note column
    table = load_episode_files([plain], site_options=["ch7=Neck", "calf_left=foot"])
    assert table["site"].tolist() == ["foot", "neck"]
    with pytest.raises(ValueError, match="ch9"):
        load_episode_files([plain], site_options=["ch9=arm"])
    s = summarise(table)
    assert s.days == ("undated",)
    assert "attention_site" not in kinds(s)  # a twitch at the neck is not flagged


class _Balanced(HTMLParser):
    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(str(values.get("src")))
            if not values.get("alt"):
                self.errors.append("img without alt")
        if tag == "a":
            self.links.append(str(values.get("href")))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def check_page(folder: Path) -> _Balanced:
    text = (folder / "index.html").read_text(encoding="utf-8")
    parser = _Balanced()
    parser.feed(text)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    ET.fromstring(text.split("\n", 1)[1])  # every tag closed: it parses as XML too
    assert "http://" not in text and "https://" not in text and "<script" not in text
    for src in parser.images + parser.links:
        assert "/" not in src and (folder / src).is_file(), src
    for src in parser.images:
        data = (folder / src).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    return parser


def test_cli_report_on_episode_files(tmp_path: Path, three_nights: list[Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "diary"
    status = main(["report", *map(str, three_nights), "--out", str(out),
                   "--long-spasm-s", "300"])
    assert status == 0
    err = capsys.readouterr().err
    assert "3 session(s), 3 day(s), 3 twitches, 5 spasms, 3 flag(s)" in err
    page = check_page(out)
    assert {"timeline.png", "durations.png", "per_day.png", "hourly.png"} <= set(page.images)
    summary = json.loads((out / "summary.json").read_text())
    assert [d["day"] for d in summary["days"]] == ["2024-05-01", "2024-05-02", "2024-05-03"]
    assert summary["days"][1]["spasms"] == 2
    assert sum(summary["days"][0]["hourly_spasms"]) == 2
    assert sorted(f["kind"] for f in summary["flags"]) == [
        "attention_site", "long_spasm", "recurring"]  # ch2 is at the back
    by_day = pd.read_csv(out / "by_day.csv")
    assert by_day["spasm_time_s"].tolist() == pytest.approx([42.0, 404.0, 3.0])
    html = (out / "index.html").read_text()
    assert "not a diagnosis" in html and "6 min 40 s" in html


def test_cli_report_errors_are_one_line(tmp_path: Path, three_nights: list[Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("channel,onset_s,offset_s,duration_s,label\nch1,1,2,1,spasm\nch1,4,3,1,x\n")
    assert main(["report", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "row 2" in err and "before onset_s" in err
    assert main(["report", str(three_nights[0]), "--site", "calf", "--out",
                 str(tmp_path / "o")]) == 2
    assert "CHANNEL=SITE" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.csv")]) == 2
    assert main(["report", str(three_nights[0]), "--recurring-days", "1"]) == 2
    assert main(["report", str(three_nights[0]), "--timezone", "Nowhere/Land"]) == 2


def test_report_detects_on_a_recording(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["report", "--out", str(out), "-q", "--site", "lower_back=neck"]) == 0
    page = check_page(out)
    assert "timeline_session.png" in page.images
    episodes = pd.read_csv(out / "session.episodes.csv")
    assert set(episodes["site"]) == {"calf", "thigh", "neck"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["days"][0]["day"] == "undated"  # the demo has no start time
    assert summary["totals"]["spasms"] == int((episodes["label"] == "spasm").sum()) > 0
    assert any(f["kind"] == "attention_site" and f["sites"] == ["neck"]
               for f in summary["flags"])


def test_plot_command_on_the_demo(tmp_path: Path) -> None:
    from matplotlib.image import imread

    png = tmp_path / "stretch.png"
    assert main(["plot", "--start", "20", "--end", "40", "--out", str(png), "-q"]) == 0
    image = imread(png)
    assert image.shape[0] > 800 and image.shape[1] > 1000
    assert float(image[..., :3].std()) > 0.05  # not a blank canvas
    assert main(["plot", "--start", "200", "--out", str(png)]) == 2  # past the end
    assert main(["plot", "--start", "5", "--end", "4", "--out", str(png)]) == 2
    assert main(["plot", "--out", str(tmp_path / "x.jpg")]) == 2


def test_plot_checks_its_output_before_the_first_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pipeline ran before --out was checked")

    monkeypatch.setattr("emg_pipeline.commands.report.run", never)
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "x.png"          # under a file: no folder can be made
    assert main(["plot", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"emg-pipeline: error: --out: {out}: ")
    (tmp_path / "adir.png").mkdir()
    assert main(["plot", "--out", str(tmp_path / "adir.png")]) == 2
    assert capsys.readouterr().err.endswith(": is a directory\n")


def test_stretch_recorder_keeps_only_the_stretch(rng: np.random.Generator) -> None:
    from emg_pipeline import Pipeline, run, simulate

    rec = simulate(rng, fs=1000.0, duration_s=40.0, n_channels=1)
    pipe = Pipeline(rec.fs, rec.channels, unit="uV")
    stretch = StretchRecorder(rec.fs, 1, 10.0, 20.0, target_bins=500)
    run(np.array_split(rec.signal, 400), pipe, [stretch])
    assert stretch.raw.n_samples == 10_000
    _, mins, maxs = stretch.raw.bins()
    assert mins.shape[0] <= 1000
    assert mins.min() == pytest.approx(rec.signal[10_000:20_000].min())
    assert maxs.max() == pytest.approx(rec.signal[10_000:20_000].max())
    assert all(e.offset_s > 10.0 and e.onset_s < 20.0 for e in stretch.episodes())
    expected = [e for e in pipe.episodes if e.offset_s > 10.0 and e.onset_s < 20.0]
    assert stretch.episodes() == sorted(expected, key=lambda e: (e.onset_s, e.channel))
    times = stretch.thresholds().times_s
    assert times.min() >= 10.0 and times.max() <= 20.0 + 0.2


def test_minmax_digest_is_chunking_independent(rng: np.random.Generator) -> None:
    x = rng.normal(size=(50_001, 2))
    x[100:300, 0] = np.nan
    whole = MinMaxDigest(2, target_bins=64)
    whole.process(x)
    parts = MinMaxDigest(2, target_bins=64)
    cuts = np.sort(rng.integers(0, x.shape[0], size=300))
    for part in np.split(x, cuts):
        parts.process(part)
    assert whole.bin_len == parts.bin_len and 64 <= whole.mins.shape[0] <= 128
    np.testing.assert_array_equal(whole.bins()[1], parts.bins()[1])
    np.testing.assert_array_equal(whole.bins()[2], parts.bins()[2])
    w = whole.bin_len
    assert whole.maxs[3, 1] == x[3 * w : 4 * w, 1].max()


def test_empty_diary_still_writes_a_valid_page(tmp_path: Path) -> None:
    path = session(tmp_path, "quiet", datetime(2024, 1, 1, tzinfo=UTC), [])
    s = summarise(load_episode_files([path]))
    files = write_report(s, tmp_path / "out")
    check_page(tmp_path / "out")
    assert json.loads(files["json"].read_text())["totals"]["spasms"] == 0
    assert math.isnan(s.long_spasm_s) is False


def test_report_tells_episode_files_from_recordings(tmp_path: Path, capsys) -> None:
    text_table = tmp_path / "table.csv"
    text_table.write_text("foo,bar\nx,1\ny,2\nz,3\n")
    assert main(["report", str(text_table), "--fs", "1000", "--out", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err
    assert "neither an episode file" in err and "'foo'" in err and err.count("\n") == 1
    half = tmp_path / "half.csv"
    half.write_text("channel,onset_s,label\nch1,1.0,twitch\n")
    assert main(["report", str(half), "--out", str(tmp_path / "r2")]) == 2
    assert "lacks the column(s) offset_s, duration_s" in capsys.readouterr().err
    naive = tmp_path / "naive.csv"
    naive.write_text("channel,onset_s,offset_s,duration_s,label,onset_time\n"
                     "ch1,1.0,2.0,1.0,twitch,2026-03-01T10:00:01\n")
    assert main(["report", str(naive), "--out", str(tmp_path / "r3"),
                 "--timezone", "Europe/Paris"]) == 0
    err = capsys.readouterr().err
    assert "read as local time in Europe/Paris" in err and "1 twitch," in err


def test_report_out_is_checked_before_detection(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["report", "--out", str(afile)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"emg-pipeline: error: --out: {afile}: is a file, not a folder"
    assert "detecting" not in err


@pytest.mark.parametrize("command", ["report", "plot"])
def test_ctrl_c_during_detection_writes_nothing_and_exits_130(
    tmp_path: Path, monkeypatch, capsys, command: str
) -> None:
    # the run loop catches Ctrl-C to close its sinks: a report or a plot of the part
    # detected so far must not pass for the whole recording
    update = StretchRecorder.update
    pressed: list[bool] = []

    def interrupted(self, result) -> None:
        if not pressed:   # Ctrl-C once, during the first chunk
            pressed.append(True)
            raise KeyboardInterrupt
        update(self, result)

    monkeypatch.setattr(StretchRecorder, "update", interrupted)
    path = tmp_path / "night.csv"
    path.write_text("time,calf\n" + "".join(f"{k / 1000:.3f},{k % 7}\n" for k in range(3000)))
    out = tmp_path / ("diary" if command == "report" else "stretch.png")
    assert main([command, str(path), "--out", str(out)]) == 130
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1] == "emg-pipeline: interrupted"
    assert "Traceback" not in captured.err
    assert not (out / "index.html").exists() and not out.is_file()
