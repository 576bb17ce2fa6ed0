"""The whole pipeline: chunking invariance, live events, detection and labels."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emg_pipeline import (
    Chunk,
    ConfigError,
    Pipeline,
    PipelineSettings,
    SampleRateError,
    detect,
    simulate,
)
from emg_pipeline.cli import detect_summary
from emg_pipeline.metrics import match_events, score
from emg_pipeline.run import run
from emg_pipeline.sinks import format_event
from emg_pipeline.sinks.console import summary_lines
from emg_pipeline.sinks.lsl import event_marker
from emg_pipeline.sinks.recording import RecordingWriter
from emg_pipeline.sources.formats import read_recording
from emg_pipeline.sources.synthetic import emg_noise

from .conftest import random_splits


def _run(pipe: Pipeline, x: np.ndarray, cuts: list[int]) -> tuple[np.ndarray, list]:
    bounds = [0, *cuts, x.shape[0]]
    envs, events = [], []
    for a, b in itertools.pairwise(bounds):
        r = pipe.process(x[a:b])
        envs.append(r.envelope)
        events.extend(r.events)
    events.extend(pipe.flush().events)
    return np.concatenate(envs), events


def test_pipeline_identical_whatever_the_chunking(rng: np.random.Generator) -> None:
    rec = simulate(rng, fs=1000.0, duration_s=90.0, n_channels=2, snr_db=10.0,
                   mains_uv=25.0, ecg_uv=[0.0, 300.0], pops_per_min=4.0, lead_in_s=2.0)
    whole_env, whole_events = _run(Pipeline(rec.fs, rec.channels, unit="uV"), rec.signal, [])
    assert any(e.kind == "sustained" for e in whole_events)
    for parts in (3, 200, 13000):  # 13000 pieces: chunks of ~7 samples (7 ms)
        pipe = Pipeline(rec.fs, rec.channels, unit="uV")
        env, events = _run(pipe, rec.signal, random_splits(rng, rec.signal.shape[0], parts))
        assert np.array_equal(env, whole_env)
        assert events == whole_events


def test_detect_matches_truth_at_20_db(rng: np.random.Generator) -> None:
    rec = simulate(rng, fs=2000.0, duration_s=240.0, n_channels=2, snr_db=20.0)
    found = detect(rec.signal, rec.fs, channels=rec.channels, unit="uV")
    s = score(rec.truth, found)
    assert s["f1"] >= 0.95, s
    assert s["onset_mae_s"] <= 0.025, s
    assert s["label_accuracy"] >= 0.97, s
    m = match_events(rec.truth, found)
    true_pattern = rec.truth["pattern"].to_numpy()[m.pairs["ref"]]
    got_pattern = found["pattern"].to_numpy()[m.pairs["det"]]
    assert np.mean(true_pattern == got_pattern) >= 0.9


def test_detect_on_a_200_hz_board(rng: np.random.Generator) -> None:
    rec = simulate(rng, fs=200.0, duration_s=300.0, n_channels=2, snr_db=15.0)
    found = detect(rec.signal, rec.fs, channels=rec.channels, unit="uV")
    assert score(rec.truth, found)["f1"] >= 0.9


def _one_burst(rng: np.random.Generator, fs: float, rest_s: float, burst_s: float,
               snr_db: float, noise: float = 3.0) -> tuple[np.ndarray, float]:
    n = int((2 * rest_s + burst_s) * fs)
    x = rng.standard_normal(n) * noise
    i0, i1 = int(rest_s * fs), int((rest_s + burst_s) * fs)
    x[i0:i1] += emg_noise(rng, i1 - i0, fs) * noise * 10 ** (snr_db / 20) * 1.03
    return x[:, None], rest_s


def test_live_events_onset_latency_and_sustained_alert(rng: np.random.Generator) -> None:
    fs = 1000.0
    x, onset = _one_burst(rng, fs, rest_s=10.0, burst_s=6.0, snr_db=12.0)
    pipe = Pipeline(fs, ["calf"], unit="uV", mains="off")
    events = []
    for i in range(0, x.shape[0], 20):  # 20 ms chunks, as a live stream
        events.extend(pipe.process(x[i : i + 20]).events)
    events.extend(pipe.flush().events)
    kinds = [e.kind for e in events]
    assert kinds == ["onset", "sustained", "end"]
    first = events[0]
    assert abs(first.onset_s - onset) <= 0.03  # dated back to where it began
    assert first.time_s - onset <= 0.1  # confirmed within 100 ms
    sustained = events[1]
    # alert the moment the contraction has lasted 2 s, well before it ends
    assert sustained.time_s == pytest.approx(first.onset_s + 2.0, abs=0.011)
    assert sustained.time_s < onset + 6.0
    end = events[2]
    assert end.episode is not None
    assert end.episode.label == "spasm" and end.episode.pattern == "tonic"
    assert end.time_s == pytest.approx(end.episode.offset_s + 0.5, abs=0.011)


def test_noise_floor_stays_below_a_strong_long_spasm(rng: np.random.Generator) -> None:
    # 90 s of a spasm 20 dB above rest: the floor may rise by at most
    # floor_max_rise, so the spasm stays one episode
    fs = 1000.0
    x, _ = _one_burst(rng, fs, rest_s=20.0, burst_s=90.0, snr_db=20.0)
    pipe = Pipeline(fs, 1, unit="uV", mains="off")
    pipe.process(x[: int(19 * fs)])
    before = pipe.floor.copy()
    pipe.process(x[int(19 * fs) : int(105 * fs)])
    during = pipe.floor.copy()
    pipe.process(x[int(105 * fs) :])
    pipe.flush()
    assert during <= before * pipe.settings.floor_max_rise * 1.2
    assert len(pipe.episodes) == 1
    assert pipe.episodes[0].duration_s == pytest.approx(90.0, abs=0.3)


def test_a_weak_long_contraction_becomes_the_rest(rng: np.random.Generator) -> None:
    # the documented price of a detector that cannot latch: activity less than
    # floor_max_rise above rest for longer than floor_hold_s becomes the rest
    fs = 1000.0
    x, _ = _one_burst(rng, fs, rest_s=20.0, burst_s=90.0, snr_db=6.0)
    pipe = Pipeline(fs, 1, unit="uV", mains="off")
    run([x], pipe)
    assert len(pipe.episodes) >= 1
    first = pipe.episodes[0]
    assert first.onset_s == pytest.approx(20.0, abs=0.3)
    assert first.duration_s <= pipe.settings.floor_hold_s + 5.0


def test_clonic_spasm_is_one_clonic_episode(rng: np.random.Generator) -> None:
    fs = 1000.0
    n = int(30 * fs)
    x = rng.standard_normal(n) * 3.0
    t = np.arange(n) / fs
    active = (t > 10) & (t < 18)
    bursts = (np.sin(2 * np.pi * 5.5 * t) > 0.3) & active
    x += emg_noise(rng, n, fs) * 40.0 * bursts
    found = detect(x, fs, unit="uV", mains="off")
    assert len(found) == 1
    row = found.iloc[0]
    assert row.label == "spasm" and row.pattern == "clonic"
    assert row.burst_rate_hz == pytest.approx(5.5, abs=0.3)
    assert row.burst_count >= 40


def test_absolute_microvolt_rule(rng: np.random.Generator) -> None:
    fs = 1000.0
    # a burst of about 13 µV RMS over 2 µV of rest: clearly 8 µV above it
    x, onset = _one_burst(rng, fs, rest_s=5.0, burst_s=1.0, snr_db=16.0, noise=2.0)
    found = detect(x, fs, unit="uV", threshold="absolute_uv", mains="off")
    assert len(found) == 1 and found.iloc[0].label == "twitch"
    assert abs(found.iloc[0].onset_s - onset) < 0.03
    with pytest.raises(ValueError, match="calibrated"):
        detect(x, fs, unit="counts", threshold="absolute_uv")


def test_rest_with_artefacts_gives_no_episode(rng: np.random.Generator) -> None:
    rec = simulate(rng, fs=1000.0, duration_s=300.0, n_channels=2, events=False,
                   ecg_uv=[800.0, 300.0], motion_per_min=2.0, pops_per_min=2.0,
                   knocks_per_min=2.0)
    found = detect(rec.signal, rec.fs, channels=rec.channels, unit="uV")
    assert len(found) <= 1, found


def _pink(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """Gaussian noise with a 1/f power spectrum above 1 Hz."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    return np.fft.irfft(spectrum / np.sqrt(np.maximum(f, 1.0)), n)


def test_a_rest_of_one_over_f_noise_is_not_artefact_and_twitches_in_it_are_found(
    rng: np.random.Generator,
) -> None:
    """1/f noise puts as much power in the gate's 4-18 Hz band as in a 200 Hz
    board's 20-90 Hz EMG band: the gate counts only what stands above that
    background, so the rest is not flagged, a knock still is, and 60 ms
    twitches at 12 dB are found."""
    fs, n = 200.0, 12_000
    x = _pink(rng, n, fs)
    x *= 5.0 / x.std()
    knock_at, twitches_at = 30.0, (20.0, 40.0, 50.0)
    t = np.arange(round(0.4 * fs)) / fs
    i = round(knock_at * fs)
    x[i : i + t.size] += 500.0 * np.exp(-t / 0.1) * np.sin(2 * np.pi * 10.0 * t)
    for at in twitches_at:
        i = round(at * fs)
        x[i : i + 12] += 4.0 * 5.0 * emg_noise(rng, 12, fs)
    pipe = Pipeline(fs, ["calf"], unit="uV", mains="off")
    result = pipe.process(x[:, None])
    pipe.flush()
    frame_t = (result.first_frame + np.arange(result.envelope.shape[0])) * pipe.frame_s
    flagged = result.artefact[:, 0]
    rest = (frame_t > 5.0) & (np.abs(frame_t - knock_at) > 1.0)
    assert flagged[rest].mean() < 0.02
    assert flagged[(frame_t > knock_at + 0.05) & (frame_t < knock_at + 0.25)].all()
    found = pipe.episodes_frame()
    for at in twitches_at:
        assert (np.abs(found.onset_s - at) < 0.05).sum() == 1, (at, found)


def test_a_burst_below_any_muscles_median_frequency_is_rejected(
    rng: np.random.Generator, tmp_path: Path,
) -> None:
    """A 24 Hz ringing (a knock's, just above the band's 20 Hz edge) ends without an
    episode and is counted as rejected; a contraction of the same strength is kept."""
    fs = 1000.0
    x = 5.0 * rng.standard_normal((30_000, 1))
    t = np.arange(1500) / fs
    x[10_000:11_500, 0] += 200.0 * np.sin(2 * np.pi * 24.0 * t)
    x[20_000:21_500, 0] += 200.0 * emg_noise(rng, 1500, fs)
    runs = []
    for cuts in ([], random_splits(rng, x.shape[0], 40)):
        pipe = Pipeline(fs, ["calf"], unit="uV")
        _, events = _run(pipe, x, cuts)
        runs.append((pipe.episodes_frame(), pipe.rejected, events))
    (episodes, rejected, events), (episodes_2, rejected_2, _) = runs
    pd.testing.assert_frame_equal(episodes, episodes_2)
    assert rejected == rejected_2
    assert len(episodes) == 1 and abs(episodes.onset_s[0] - 20.0) < 0.1
    assert episodes.median_freq_hz[0] > 40.0
    assert len(rejected) == 1 and abs(rejected[0].onset_s - 10.0) < 0.1
    assert abs(rejected[0].median_freq_hz - 24.0) < 4.0
    ends = [e for e in events if e.kind == "end"]
    assert [e.episode is None for e in ends] == [True, False]
    assert ends[0].rejected == rejected[0]
    # the console says so, live and in the summary
    assert "was not muscle (median frequency 2" in format_event(ends[0])
    summary = run([x], Pipeline(fs, ["calf"], unit="uV"))
    assert len(summary.rejected) == 1 and len(summary.episodes) == 1
    assert "  not muscle: 1 burst (a knock or motion: 1), counted nowhere above" \
        in summary_lines(summary)
    assert detect_summary(summary)[-1] == \
        "not muscle (a knock or motion: 1), not counted -> calf: 1"
    # the LSL marker and a durable recording's annotation say what it was
    fields, at = event_marker(ends[0], site="calf")
    assert fields["label"] == "not muscle" and fields["event"] == "end"
    assert fields["because"].startswith("median frequency 2")
    assert at == pytest.approx(rejected[0].offset_s)
    with RecordingWriter(tmp_path / "r.bdf", fs, ("calf",)) as writer:
        writer.write(x)
        writer.add_events(events)
    ann = read_recording(tmp_path / "r.bdf")[1].annotations
    assert (ann["text"] == "not muscle (a knock or motion) calf").sum() == 1 and len(ann) == 2
    # the setting at 0 keeps everything
    pipe = Pipeline(fs, ["calf"], unit="uV", min_median_freq_hz=0.0)
    _run(pipe, x, [])
    assert len(pipe.episodes) == 2 and not pipe.rejected


def test_hum_left_by_the_mains_canceller_is_not_muscle(rng: np.random.Generator) -> None:
    # a 50 Hz grid found by itself; the comb notches only the fundamental, so a
    # 3 s swell of the third harmonic passes it: hum, not muscle. A burst of EMG
    # later is an episode, whatever the chunking
    fs = 1000.0
    n = 40_000
    t = np.arange(n) / fs
    x = 5.0 * rng.standard_normal((n, 1)) + 40.0 * np.sin(2 * np.pi * 50.0 * t)[:, None]
    x[10_000:13_000, 0] += 60.0 * np.sin(2 * np.pi * 150.0 * t[10_000:13_000])
    x[25_000:28_000, 0] += 60.0 * emg_noise(rng, 3000, fs)
    runs = []
    for cuts in ([], random_splits(rng, n, 60)):
        pipe = Pipeline(fs, ["calf"], unit="uV", mains_harmonics=1)
        _, events = _run(pipe, x, cuts)
        runs.append((pipe.episodes_frame(), pipe.rejected, events))
    (episodes, rejected, events), (episodes_2, rejected_2, events_2) = runs
    pd.testing.assert_frame_equal(episodes, episodes_2)
    assert rejected == rejected_2 and events == events_2
    assert len(episodes) == 1 and abs(episodes.onset_s[0] - 25.0) < 0.1
    assert len(rejected) == 1 and abs(rejected[0].onset_s - 10.0) < 0.1
    assert rejected[0].mains_share > 0.9 and rejected[0].median_freq_hz > 100.0
    assert rejected[0].because.endswith("of its power at the mains lines: mains hum")
    end = next(e for e in events if e.kind == "end" and e.rejected is not None)
    assert "(9" in format_event(end) and "mains hum); not counted" in format_event(end)
    # muscle puts on the lines about the share of the band they cover
    assert pipe.episodes[0].mains_share < 0.2
    # the hum lasted 3 s: its live prolonged-spasm alert is told apart in the summary
    summary = run([x], Pipeline(fs, ["calf"], unit="uV", mains_harmonics=1))
    assert "  total: 0 twitches, 1 spasm, 2 prolonged-spasm alerts (1 for a burst found " \
        "not muscle at its end)" in summary_lines(summary)
    # 1 keeps every burst
    pipe = Pipeline(fs, ["calf"], unit="uV", mains_harmonics=1, max_mains_share=1.0)
    _run(pipe, x, [])
    assert len(pipe.episodes) == 2 and not pipe.rejected


def test_nan_gaps_are_bridged_and_reported(rng: np.random.Generator) -> None:
    rec = simulate(rng, fs=1000.0, duration_s=30.0, n_channels=2, snr_db=20.0)
    x = rec.signal.copy()
    x[5000:5300, 0] = np.nan
    pipe = Pipeline(rec.fs, rec.channels, unit="uV")
    r = pipe.process(x)
    pipe.flush()
    assert np.isfinite(r.envelope).all()
    assert pipe.bridged_samples.tolist() == [300, 0]
    assert [(g.channel, g.start, g.n_samples) for g in pipe.gaps] == [(0, 5000, 300)]


def test_values_beyond_any_measurement_are_bridged_without_warnings(
    rng: np.random.Generator,
) -> None:
    rec = simulate(rng, fs=1000.0, duration_s=20.0, n_channels=2, snr_db=20.0)
    x = rec.signal.copy()
    x[[3000, 3001, 9000], 0] = [1e200, -1.7e308, 2e12]  # damaged or misread values
    x[12_000, 1] = 9e11  # large, but a value: kept
    pipe = Pipeline(rec.fs, rec.channels, unit="uV")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # before: 'overflow encountered in square'
        r = pipe.process(x)
        pipe.flush()
    assert np.isfinite(r.envelope).all()
    assert pipe.bridged_samples.tolist() == [3, 0]
    assert [(g.channel, g.start, g.n_samples) for g in pipe.gaps] == [
        (0, 3000, 2), (0, 9000, 1)]


def test_csv_with_values_beyond_range_gives_no_raw_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from emg_pipeline.cli import main

    rows = [f"{k / 1000:.3f},{k % 13 - 6},{k % 7 - 3}" for k in range(3000)]
    rows[1000] = "1.000,1e200,2"
    rows[2000] = "2.000,3,1e305"  # in volts: beyond what a float holds once in µV
    path = tmp_path / "huge.csv"
    path.write_text("time,a (uV),b (V)\n" + "\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["detect", str(path), "--out", str(tmp_path / "out.csv")]) == 0
    err = capsys.readouterr().err
    assert "Warning" not in err and "a: 1, b: 1" in err


def test_lost_samples_keep_the_timeline(rng: np.random.Generator) -> None:
    fs = 1000.0
    x, onset = _one_burst(rng, fs, rest_s=8.0, burst_s=1.0, snr_db=20.0)
    pipe = Pipeline(fs, 1, unit="uV", mains="off")
    pipe.process(Chunk(x[:3000], fs, 0))
    pipe.process(Chunk(x[3500:], fs, 3500))  # 500 samples lost in transit
    pipe.flush()
    assert pipe.lost_samples == 500
    assert pipe.episodes[0].onset_s == pytest.approx(onset, abs=0.03)
    with pytest.raises(ValueError, match="already processed"):
        pipe2 = Pipeline(fs, 1)
        pipe2.process(Chunk(x[:100], fs, 0))
        pipe2.process(Chunk(x[:100], fs, 50))


def test_detect_accepts_dataframes_and_chunking(rng: np.random.Generator) -> None:
    rec = simulate(rng, fs=1000.0, duration_s=60.0, n_channels=2, snr_db=15.0)
    frame = pd.DataFrame(rec.signal, columns=["calf", "thigh"])
    a = detect(frame, rec.fs, unit="uV")
    b = detect(frame, rec.fs, unit="uV", chunk_s=0.007)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["channel"]) <= {"calf", "thigh"}
    assert list(a.columns[:7]) == [
        "channel", "onset_s", "offset_s", "duration_s", "label", "pattern", "peak"]
    assert set(a["label"]) <= {"twitch", "spasm"}


def test_unitless_signals_report_multiples_of_the_floor(rng: np.random.Generator) -> None:
    fs = 1000.0
    x, _ = _one_burst(rng, fs, rest_s=5.0, burst_s=0.5, snr_db=20.0)
    found = detect(x * 37.0, fs, mains="off")  # counts, arbitrary scale
    row = found.iloc[0]
    assert row.unit == "x_floor"
    assert 5 < row.peak < 20  # ~10x the floor at 20 dB, whatever the scale


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"fs": 0}, SampleRateError),
        ({"fs": float("nan")}, SampleRateError),
        ({"fs": "fast"}, SampleRateError),
        ({"fs": 50.0}, SampleRateError),
        ({"fs": 1e9}, SampleRateError),  # before: buffers of a terabyte asked for
        ({"fs": 1000.0, "window_ms": 5}, ConfigError),
        ({"fs": 1000.0, "merge_gap_s": -1.0}, ConfigError),
        ({"fs": 1000.0, "mains": "55"}, ConfigError),
        ({"fs": 1000.0, "lowpass_hz": 10.0}, ConfigError),
        ({"fs": 1000.0, "window_s": 1.5}, ConfigError),
        ({"fs": 1000.0, "min_median_freq_hz": 450.0}, ConfigError),
        ({"fs": 200.0, "min_median_freq_hz": 90.0}, ConfigError),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs: dict, error: type) -> None:
    x = np.zeros((2000, 1))
    with pytest.raises(error):
        detect(x, **kwargs)


def test_settings_bounds_say_what_is_expected() -> None:
    with pytest.raises(ConfigError, match=r"invalid window_s=100\.0: expected at most 1 s"):
        PipelineSettings(window_s=100.0)
    with pytest.raises(ConfigError, match="expected below 450 Hz, the band's upper edge"):
        PipelineSettings(min_median_freq_hz=5000.0)
    with pytest.raises(ConfigError, match="below 90 Hz, the band's upper edge at 200 Hz"):
        Pipeline(200.0, 1, min_median_freq_hz=95.0)
    assert PipelineSettings(window_s=1.0, merge_gap_s=0.0).merge_gap_s == 0.0
    assert Pipeline(200.0, 1, min_median_freq_hz=89.0).band_hz == (20.0, 90.0)


def test_a_merge_gap_of_zero_is_one_frame(rng: np.random.Generator) -> None:
    rec = simulate(rng, fs=1000.0, duration_s=30.0, n_channels=1)
    none = detect(rec.signal, rec.fs, merge_gap_s=0.0)
    one_frame = detect(rec.signal, rec.fs, merge_gap_s=PipelineSettings().frame_s)
    merged = detect(rec.signal, rec.fs)
    pd.testing.assert_frame_equal(none, one_frame)
    assert len(none) >= len(merged) > 0


def test_wrong_channel_count_is_an_error() -> None:
    pipe = Pipeline(1000.0, 2)
    with pytest.raises(ValueError, match="expected 2 channels"):
        pipe.process(np.zeros((10, 3)))


def test_an_adc_offset_and_a_start_transient_do_not_spoil_the_first_floor(
    rng: np.random.Generator,
) -> None:
    # raw ADC counts sit on a large offset; the first samples differ from it
    # (a board starting up), so the filters ring and the artefact gate acts at
    # the start: the first noise floor must still come from real rest
    rec = simulate(rng, fs=1000.0, duration_s=120.0, n_channels=1, snr_db=12.0, mains_hz=None)
    counts = rec.signal / 0.5 + 2040.0
    counts[:200] = 2000.0
    found = detect(counts, rec.fs, channels=rec.channels)
    assert score(rec.truth, found)["f1"] >= 0.9
    floors = found["floor"].to_numpy()
    assert floors.min() > 0.5 * np.median(floors)


def test_contractions_are_found_on_a_channel_that_carries_ecg(rng: np.random.Generator) -> None:
    # a back muscle under a 500 uV heartbeat: the beats are filtered out of the
    # EMG band and allowed for by the artefact gate, so contractions still show
    rec = simulate(rng, fs=1000.0, duration_s=300.0, n_channels=2, snr_db=12.0,
                   channels=["calf", "lower_back"], ecg_uv=[0.0, 500.0])
    found = detect(rec.signal, rec.fs, channels=rec.channels, unit="uV")
    back = rec.truth[rec.truth.channel == "lower_back"].reset_index(drop=True)
    got = found[found.channel == "lower_back"].reset_index(drop=True)
    assert score(back, got)["f1"] >= 0.8


def test_a_flat_line_is_no_signal(rng: np.random.Generator) -> None:
    # zeros before the board streams, then a lead-off in the middle: neither may
    # teach the floor "rest", or the signal's return would be one endless episode
    rec = simulate(rng, fs=1000.0, duration_s=150.0, n_channels=1, snr_db=12.0, mains_hz=None)
    x = rec.signal.copy()
    x[:30_000] = 0.0
    x[80_000:90_000] = 37.0
    pipe = Pipeline(rec.fs, rec.channels, unit="uV")
    pipe.process(x)
    pipe.flush()
    found = pipe.episodes_frame()
    t = rec.truth
    clear = t[((t.onset_s > 32.0) & (t.offset_s < 78.0)) | (t.onset_s > 92.0)]
    assert len(clear) >= 3
    assert len(match_events(clear.reset_index(drop=True), found).missed) == 0
    in_flat = (found.onset_s < 30.0) | ((found.onset_s > 80.2) & (found.onset_s < 89.8))
    assert not in_flat.any()
    assert found.duration_s.max() < 60.0
    assert pipe.no_signal_frames[0] * pipe.frame_s >= 39.0


def test_episodes_say_how_much_of_them_was_missing() -> None:
    rec = simulate(np.random.default_rng(3), fs=1000.0, duration_s=30.0, n_channels=2)
    x = rec.signal.copy()
    x[5000:5300, 0] = np.nan     # inside ch1's spasm (3.0-21.5 s)
    x[25000:25100, 1] = np.nan   # ch2 at rest: the held gap must not look like a twitch
    found = detect(x, rec.fs, channels=rec.channels, unit="uV")
    spasm = found[(found.channel == "ch1") & (found.onset_s < 5.0)].iloc[0]
    assert spasm.gap_s == pytest.approx(0.3)
    assert (found[found.channel == "ch1"].gap_s.iloc[1:] == 0.0).all()
    assert not ((found.channel == "ch2") & (found.onset_s.between(24.5, 25.5))).any()
    assert found.equals(detect(x, rec.fs, channels=rec.channels, unit="uV", chunk_s=0.013))
