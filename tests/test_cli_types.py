"""The shared command-line value types: every command rejects a bad value the same way."""

from __future__ import annotations

import argparse

import pytest

from emg_pipeline.cli import build_parser, main
from emg_pipeline.commands._common import settings_from_args
from emg_pipeline.commands._types import (
    endpoint,
    hertz_or_zero,
    port,
    positive,
    positive_at_most,
    probability,
    sampling_rate,
    seconds,
    whole_at_least,
)


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (positive, "abc", "not a number: 'abc'"),
        (positive, "0", "must be a positive number, got '0'"),
        (positive, "nan", "must be a positive number"),
        (positive, "inf", "must be a positive number"),
        (seconds, "-1", "must be zero or more seconds, got '-1'"),
        (seconds, "x", "not a number of seconds"),
        (probability, "1", "must be a probability in [0, 1)"),
        (probability, "-0.1", "must be a probability"),
        (whole_at_least(2, "days"), "1", "must be at least 2 days, got '1'"),
        (whole_at_least(2, "days"), "2.5", "not a whole number of days"),
        (port, "0", "must be a port number 1-65535"),
        (port, "65536", "must be a port number"),
        (port, "-5", "must be a port number"),
        (endpoint, "localhost", "expected HOST:PORT"),
        (endpoint, ":7600", "expected HOST:PORT"),
        (hertz_or_zero, "-3", "must be zero or more Hz, got '-3'"),
        (hertz_or_zero, "inf", "must be zero or more Hz"),
        (sampling_rate, "1e9", "must be a sampling rate from 100 Hz to 100 kHz, got '1e9'"),
        (sampling_rate, "50", "must be a sampling rate from 100 Hz to 100 kHz"),
        (sampling_rate, "nan", "must be a sampling rate"),
        (sampling_rate, "x", "not a number: 'x'"),
        (positive_at_most(1000, "ms"), "100000", "must be above 0 and at most 1000 ms, got "
                                                 "'100000'"),
        (positive_at_most(1000, "ms"), "0", "must be above 0"),
    ],
)
def test_bad_values_are_refused_with_the_text_quoted(parse, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse(text)
    assert message in str(info.value)


def test_good_values() -> None:
    assert positive("1e3") == 1000.0 and seconds("0") == 0.0 and probability("0") == 0.0
    assert whole_at_least(2, "days")("7") == 7 and port("1") == 1
    assert endpoint("::1:7600") == ("::1", 7600)
    assert hertz_or_zero("0") == 0.0 and hertz_or_zero("30") == 30.0
    assert sampling_rate("100") == 100.0 and sampling_rate("1e5") == 100_000.0


@pytest.mark.parametrize(
    "argv",
    [
        ["detect", "--chunk-ms", "0"],
        ["detect", "--fs", "-1000"],
        ["detect", "--fs", "1e9"],
        ["detect", "--window-ms", "nan"],
        ["detect", "--min-median-freq-hz", "-1"],
        ["detect", "--min-median-freq-hz", "5000"],
        ["detect", "--window-ms", "100000"],
        ["detect", "--merge-gap-s", "-0.1"],
        ["replay", "--window-ms", "1001"],
        ["replay", "--speed", "0"],
        ["replay", "--fs", "x"],
        ["replay", "--chunk-ms", "-20"],
        ["report", "--recurring-days", "1"],
        ["report", "--long-spasm-s", "0"],
        ["plot", "--start", "-1"],
        ["plot", "--chunk-ms", "0"],
        ["stream", "nus_emg", "--duration", "0"],
        ["stream", "nus_emg", "--emulator", "nowhere"],
        ["emulate", "nus_emg", "--port", "70000"],
        ["emulate", "nus_emg", "--loss", "1.5"],
        ["scan", "--timeout", "-5"],
    ],
)
def test_every_command_reports_a_bad_value_on_one_line(capsys, argv: list[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("emg-pipeline: error: argument ")
    assert "Traceback" not in captured.err


def test_fs_help_states_the_range(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    assert "100 Hz to 100 kHz" in " ".join(capsys.readouterr().out.split())


def test_window_and_merge_gap_bounds_reach_the_settings() -> None:
    parser = build_parser()
    args = parser.parse_args(["detect", "--window-ms", "1000", "--merge-gap-s", "0"])
    settings = settings_from_args(args)
    assert settings.window_s == 1.0 and settings.merge_gap_s == 0.0


def test_min_median_frequency_above_the_band_of_the_rate_names_the_option(
    tmp_path, capsys
) -> None:
    # at 200 Hz the band ends at 90 Hz: a 95 Hz threshold would reject every burst
    path = tmp_path / "slow.csv"
    path.write_text("time,emg\n" + "".join(f"{k / 200:.3f},{(-1) ** k}\n" for k in range(400)))
    assert main(["detect", str(path), "--min-median-freq-hz", "95", "-q"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "emg-pipeline: error: argument --min-median-freq-hz: expected below 90 Hz, the band's "
        "upper edge at 200 Hz sampling (no burst's median frequency reaches it; 0 keeps every "
        "burst), got 95"
    ]
    assert main(["detect", str(path), "--min-median-freq-hz", "85", "-q", "--out",
                 str(tmp_path / "episodes.csv")]) == 0
