"""Muscle sites: names, options, session files, recording metadata; episode files."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from emg_pipeline.commands._common import add_site_options, sites_from_args
from emg_pipeline.events import EPISODE_COLUMNS, Episode
from emg_pipeline.sinks.episodes import (
    EpisodeFileError,
    append_rows,
    episode_table,
    is_episode_file,
    read_episodes,
    write_episodes,
)
from emg_pipeline.sites import (
    UNSPECIFIED,
    SiteError,
    SiteMap,
    load_session,
    normalise_site,
    parse_site_option,
    parse_timezone,
    resolve_sites,
    site_of_name,
)
from emg_pipeline.sources.formats import open_recording

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.parametrize(
    ("name", "site"),
    [
        ("calf_left", "calf"),
        ("thigh_right", "thigh"),
        ("lower_back", "back"),
        ("RightBiceps", "arm"),
        ("Neck-L", "neck"),
        ("rectus abdominis", "abdomen"),
        ("adductor pollicis", "hand"),
        ("adductor_magnus", "thigh"),
        ("EXG Channel 0", None),
        ("PORT1_CHN1", None),
        ("A1", None),
        ("ch2", None),
        ("EMG", None),
        ("abstract", None),  # whole words only
    ],
)
def test_site_of_name(name: str, site: str | None) -> None:
    assert site_of_name(name) == site


def test_normalise_keeps_free_text_and_rejects_empty() -> None:
    assert normalise_site("Calf") == "calf"
    assert normalise_site("left  lower back") == "back"
    assert normalise_site("Big Toe") == "big toe"
    assert normalise_site("jaw") == "jaw"
    with pytest.raises(SiteError):
        normalise_site("  ")


def test_site_option_parsing() -> None:
    assert parse_site_option("ch1=calf") == ("ch1", "calf")
    assert parse_site_option("EXG Channel 0 = Trapezius") == ("EXG Channel 0", "neck")
    for bad in ("ch1", "=calf", "ch1="):
        with pytest.raises(SiteError, match="CHANNEL=SITE") as info:
            parse_site_option(bad)
        assert info.value.value == bad


def test_precedence_options_over_session_over_names(tmp_path: Path) -> None:
    session = tmp_path / "s.toml"
    session.write_text(
        'start_time = "2024-05-03T22:10:00+02:00"\ntimezone = "Europe/Paris"\n'
        '[sites]\ncalf_left = "thigh"\nch2 = "neck"\n'
    )
    settings = load_session(session)
    assert settings.sites == {"calf_left": "thigh", "ch2": "neck"}
    assert settings.start_time == datetime(2024, 5, 3, 22, 10, tzinfo=timezone(timedelta(hours=2)))
    m = resolve_sites(("calf_left", "ch2", "ch3"), session=settings, options=["ch2=hand"])
    assert (m.site("calf_left"), m.site("ch2"), m.site("ch3")) == ("thigh", "hand", UNSPECIFIED)
    assert m.local_start() is not None
    assert m.local_start().utcoffset() == timedelta(hours=2)


def test_json_session_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "s.json"
    good.write_text(json.dumps({"sites": {"ch1": "Gastrocnemius"}}))
    assert load_session(good).sites == {"ch1": "calf"}
    assert load_session(good).start_time is None
    cases = {
        "bad.json": ("{not json", "not valid JSON"),
        "bad.toml": ("sites = [", "not valid TOML"),
        "extra.toml": ('colour = "red"\n', "unknown setting"),
        "time.toml": ('start_time = "yesterday"\n', "ISO-8601"),
        "zone.toml": ('timezone = "Mars/Olympus"\n', "unknown time zone"),
        "site.toml": ("[sites]\nch1 = 3\n", "must be text"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(SiteError, match=message):
            load_session(path)
    with pytest.raises(SiteError, match="cannot read"):
        load_session(tmp_path / "missing.toml")


def test_unknown_channel_in_option_is_an_error() -> None:
    with pytest.raises(SiteError, match="'ch9'") as info:
        resolve_sites(("ch1",), options=["ch9=calf"])
    assert info.value.value == "ch9"


def test_timezones() -> None:
    assert parse_timezone("UTC") is UTC
    assert parse_timezone("-05:30").utcoffset(None) == -timedelta(hours=5, minutes=30)
    assert str(parse_timezone("Europe/Paris")) == "Europe/Paris"
    with pytest.raises(SiteError):
        parse_timezone("+25:00")


def test_naive_start_is_wall_clock_in_the_given_zone() -> None:
    naive = datetime(2024, 1, 15, 23, 30)
    m = SiteMap({}, naive, parse_timezone("Europe/Paris"))
    assert m.local_start().isoformat() == "2024-01-15T23:30:00+01:00"
    aware = datetime(2024, 1, 15, 23, 30, tzinfo=UTC)
    assert SiteMap({}, aware, parse_timezone("+02:00")).local_start().hour == 1


def test_argparse_helper(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_site_options(parser)
    args = parser.parse_args(["--site", "ch1=calf", "--site", "ch2=lower back",
                              "--timezone", "UTC"])
    m = sites_from_args(args, ("ch1", "ch2"))
    assert dict(m.sites) == {"ch1": "calf", "ch2": "back"}
    assert m.timezone is UTC


# -- recording metadata -----------------------------------------------------------------------


def test_sites_from_demo_channel_names() -> None:
    from emg_pipeline.cli import demo_recording

    with open_recording(demo_recording()) as reader:
        m = resolve_sites(reader.info.channels, info=reader.info)
    assert dict(m.sites) == {"calf_left": "calf", "thigh_right": "thigh", "lower_back": "back"}


@pytest.mark.skipif(not (DATA / "physionet-emgdb").is_dir(), reason="shared data absent")
def test_site_from_wfdb_placement_comment_not_from_diagnosis() -> None:
    # the header says "chronic low back pain" (a diagnosis) and "needle electrode placed
    # in tibialis anterior muscle" (the site): only the placement counts
    with open_recording(DATA / "physionet-emgdb" / "emg_neuropathy.hea") as reader:
        m = resolve_sites(reader.info.channels, info=reader.info)
    assert m.site("EMG") == "shin"


@pytest.mark.skipif(not (DATA / "plux-biosignalsnotebooks").is_dir(), reason="shared data absent")
def test_start_time_from_opensignals_is_kept() -> None:
    with open_recording(DATA / "plux-biosignalsnotebooks" / "emg_bursts.h5") as reader:
        m = resolve_sites(reader.info.channels, info=reader.info, options=["PORT3_CHN1=arm"],
                          timezone=UTC)
    assert m.site("PORT3_CHN1") == "arm"
    assert m.local_start() == datetime(2017, 1, 23, 10, 28, 51, 69000, tzinfo=UTC)


# -- episode files ----------------------------------------------------------------------------


def _episode(onset: float, duration: float, label: str = "spasm", channel: str = "ch1",
             pattern: str = "tonic") -> Episode:
    return Episode(channel, onset, onset + duration, duration, label, pattern,  # type: ignore[arg-type]
                   10.0, 5.0, "uV", 3, 4.0, 90.0, 2.0)


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    start = datetime(2024, 3, 30, 23, 59, 0, tzinfo=parse_timezone("Europe/Paris"))
    eps = [_episode(90.0, 3.0), _episode(12.5, 0.25, "twitch", "ch2", "phasic")]
    sites = SiteMap({"ch1": "calf"}, start)
    out = tmp_path / "sub" / "night.episodes.csv"
    written = write_episodes(eps, out, sites)
    assert list(written.columns[:4]) == ["channel", "site", "onset_s", "onset_time"]
    assert set(EPISODE_COLUMNS) <= set(written.columns)
    assert is_episode_file(out)
    table = read_episodes(out)
    assert table["channel"].tolist() == ["ch2", "ch1"]  # sorted by onset
    assert table["site"].tolist() == [UNSPECIFIED, "calf"]
    assert table.loc[1, "onset_time"] == start + timedelta(seconds=90)
    assert table.loc[1, "onset_time"].isoformat() == "2024-03-31T00:00:30+01:00"
    assert table["duration_s"].tolist() == [0.25, 3.0]


@pytest.mark.parametrize("timed", [False, True])
def test_appended_rows_are_the_rows_of_the_table(timed: bool) -> None:
    # the live episode file appends rows without pandas: the same text as the table's
    start = datetime(2024, 3, 30, 23, 59, 0, tzinfo=parse_timezone("Europe/Paris"))
    sites = SiteMap({"ch1": "calf"}, start if timed else None)
    episodes = [
        _episode(90.0, 3.0), _episode(12.5, 0.25, "twitch", "ch2", "phasic"),
        _episode(12.5, 0.125, "twitch", "ch1", "phasic"),          # same onset: by channel
        dataclasses.replace(_episode(1 / 3, 2.0), peak=float("nan"), truncated=True,
                            burst_count=7, gap_s=0.02),
    ]
    marks = [{"channel": "any", "onset_s": 5.0, "offset_s": 5.0, "duration_s": 0.0,
              "label": "mark", "pattern": "manual", "unit": "", "note": 'cramp, "bad" one'}]
    for rows in (episodes, marks):   # the sink appends episodes and marks apart
        text = io.StringIO()
        append_rows(rows, text, sites)
        expected = episode_table(rows, sites).to_csv(index=False, header=False,
                                                     float_format="%.4f")
        assert text.getvalue() == expected
    assert 'cramp, ""bad"" one' in text.getvalue()
    # the whole file rewritten at the end: counts stay whole beside a mark's empty cells
    both = episode_table([*episodes, *marks], sites).to_csv(index=False, float_format="%.4f")
    assert both.count(",3,4.0000,") == 3 and ",7,4.0000," in both


def test_onset_time_crosses_a_daylight_saving_change() -> None:
    # Paris moved from +01:00 to +02:00 at 2024-03-31 02:00 local time
    start = datetime(2024, 3, 31, 1, 0, tzinfo=parse_timezone("Europe/Paris"))
    table = episode_table([_episode(2 * 3600.0, 5.0)], SiteMap({}, start))
    assert table.loc[0, "onset_time"] == "2024-03-31T04:00:00.000+02:00"


def test_without_start_time_there_is_no_onset_time() -> None:
    table = episode_table([_episode(1.0, 2.0)])
    assert "onset_time" not in table
    assert table.loc[0, "site"] == UNSPECIFIED


def test_reads_a_plain_detect_table(tmp_path: Path) -> None:
    path = tmp_path / "detect.csv"
    frame = pd.DataFrame([_episode(1.0, 2.5).as_dict()], columns=list(EPISODE_COLUMNS))
    frame.to_csv(path, index=False, float_format="%.4f")
    table = read_episodes(path)
    assert table.loc[0, "site"] == UNSPECIFIED and table.loc[0, "onset_time"] is None


HEADER = "channel,onset_s,offset_s,duration_s,label,pattern,onset_time,truncated\n"


@pytest.mark.parametrize(
    ("row", "message", "column"),
    [
        ("ch1,x,2,1,spasm,tonic,,False", "onset_s must be a non-negative number", "onset_s"),
        ("ch1,1,2,5,spasm,tonic,,False", "differs from offset_s - onset_s", "duration_s"),
        ("ch1,3,2,0,spasm,tonic,,False", "before onset_s", "offset_s"),
        ("ch1,1,2,1,cramp,tonic,,False", "label 'cramp' is not one of", "label"),
        ("ch1,1,2,1,spasm,wobbly,,False", "pattern 'wobbly'", "pattern"),
        ("ch1,1,2,1,spasm,tonic,yesterday,False", "not an ISO-8601", "onset_time"),
        ("ch1,1,2,1,spasm,tonic,,maybe", "truncated must be True or False", "truncated"),
        (",1,2,1,spasm,tonic,,False", "empty channel", "channel"),
    ],
)
def test_bad_values_name_row_and_column(row: str, message: str, column: str) -> None:
    good = "ch1,0.5,0.75,0.25,twitch,phasic,,False\n"
    with pytest.raises(EpisodeFileError, match=message) as info:
        read_episodes(io.StringIO(HEADER + good + row + "\n"))
    assert info.value.row == 2
    assert info.value.column == column
    assert "\n" not in str(info.value)


def test_onset_time_without_offset_is_local_time() -> None:
    from zoneinfo import ZoneInfo

    text = HEADER + "ch1,1,2,1,spasm,tonic,2024-07-01T10:00:00,False\n"
    table = read_episodes(io.StringIO(text), timezone=ZoneInfo("Europe/Paris"))
    moment = table.loc[0, "onset_time"]
    assert moment.utcoffset().total_seconds() == 2 * 3600          # summer time in Paris
    assert table.attrs["local_times"] == "Europe/Paris"
    # with no zone given: this computer's zone, and the table says so
    table = read_episodes(io.StringIO(text))
    assert table.loc[0, "onset_time"].tzinfo is not None and "local_times" in table.attrs
    # an offset written in the file is kept, and nothing is said
    table = read_episodes(io.StringIO(HEADER + "ch1,1,2,1,spasm,tonic,"
                                      "2024-07-01T10:00:00+05:00,False\n"))
    assert "local_times" not in table.attrs


def test_missing_columns_and_files(tmp_path: Path) -> None:
    with pytest.raises(EpisodeFileError, match=r"missing column.*label"):
        read_episodes(io.StringIO("channel,onset_s,offset_s,duration_s\nch1,1,2,1\n"))
    with pytest.raises(EpisodeFileError, match="not found"):
        read_episodes(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(EpisodeFileError, match="empty file"):
        read_episodes(empty)
    assert not is_episode_file(empty)


# -- detect writes episode files --------------------------------------------------------------


@pytest.fixture
def timed_csv(tmp_path: Path) -> Path:
    """20 s of two simulated channels with a Unix ``timestamp`` column (a known start time)."""
    import numpy as np

    from emg_pipeline import simulate

    rec = simulate(np.random.default_rng(7), fs=1000.0, duration_s=20.0, n_channels=2)
    t0 = datetime(2024, 5, 1, 21, 30, tzinfo=UTC).timestamp()
    frame = pd.DataFrame(rec.signal, columns=["ch1", "ch2"])
    frame.insert(0, "timestamp", t0 + np.arange(len(frame)) / rec.fs)
    path = tmp_path / "timed.csv"
    frame.to_csv(path, index=False, float_format="%.3f")
    return path


def test_detect_writes_sites_and_wall_clock_onsets(tmp_path: Path, timed_csv: Path) -> None:
    from emg_pipeline.cli import main

    out = tmp_path / "ep.csv"
    args = ["detect", str(timed_csv), "--out", str(out), "-q", "--site", "ch2=neck",
            "--timezone", "+02:00"]
    assert main(args) == 0
    table = read_episodes(out)
    assert len(table) > 0
    assert set(table["site"]) <= {"neck", UNSPECIFIED} and "neck" in set(table["site"])
    first = table.loc[0]
    expected = datetime(2024, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=2))) + timedelta(
        seconds=float(first["onset_s"]))
    assert abs(first["onset_time"] - expected) < timedelta(milliseconds=1)
    assert first["onset_time"].utcoffset() == timedelta(hours=2)
    assert main([*args[:-2], "--site", "ch7=calf"]) == 2  # no such channel: one-line error


def test_detect_without_site_options_writes_an_episode_file(tmp_path: Path) -> None:
    import numpy as np

    from emg_pipeline.cli import main
    from emg_pipeline.sinks.episodes import EPISODE_FILE_COLUMNS

    frame = pd.DataFrame(np.random.default_rng(1).normal(0, 10, (3000, 1)), columns=["ch1"])
    frame.insert(0, "time_s", np.arange(3000) / 1000.0)
    path = tmp_path / "plain.csv"
    frame.to_csv(path, index=False)
    assert main(["detect", str(path), "--out", str(tmp_path / "o.csv"), "-q"]) == 0
    # the same columns as with sites, less onset_time (no start time in the file)
    columns = list(pd.read_csv(tmp_path / "o.csv").columns)
    assert columns == [c for c in EPISODE_FILE_COLUMNS if c != "onset_time"]
