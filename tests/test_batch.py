"""``emg-pipeline batch`` and :func:`emg_pipeline.batch` on a real two-process Dask cluster.

One ``LocalCluster`` (2 worker processes) serves the whole module; the study is a
handful of short recordings written by the package's own simulator and BDF
writer. Checked: the episodes are those of ``detect``, bit for bit; a bad or
truncated file is a row with its error; a second run reuses what is unchanged and
recomputes what changed; a killed run (simulated, and a real SIGKILL of the
command) leaves no half-written file and resumes to the same dataset; a manifest
gives subjects, sites and times; every bad input is one error line; the robust
benchmark suite gives the same rows on the engine as in one process.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from emg_pipeline import Pipeline, PipelineSettings, batch, run, simulate
from emg_pipeline.batch import BatchResult, find_recordings
from emg_pipeline.batch.engine import Engine
from emg_pipeline.batch.store import read_episode_dataset
from emg_pipeline.cli import main
from emg_pipeline.run import StreamInfo
from emg_pipeline.sinks.episodes import EPISODE_FILE_COLUMNS, EpisodeFile
from emg_pipeline.sinks.recording import RecordingWriter
from emg_pipeline.sites import resolve_sites
from emg_pipeline.sources.formats import open_recording

#: columns that say how and when a result was computed, not what it is
VOLATILE = ["wall_s", "worker", "reused"]
SECONDS = 30.0


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    # kernels compiled (or loaded) here first: with a stale cache the workers then load
    # them instead of all compiling at once on a busy machine
    rec = simulate(np.random.default_rng(0), fs=1000.0, duration_s=SECONDS, n_channels=3,
                   ecg_uv=300.0, motion_per_min=2.0)
    run(np.array_split(rec.signal, 30), Pipeline(rec.fs, rec.channels, unit=rec.unit))
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.WARNING)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def _write_bdf(path: Path, seed: int, start: datetime, seconds: float = SECONDS,
               channels: tuple[str, ...] = ("calf", "back", "ch3")) -> Path:
    rec = simulate(np.random.default_rng(seed), fs=1000.0, duration_s=seconds,
                   channels=list(channels))
    path.parent.mkdir(parents=True, exist_ok=True)
    with RecordingWriter(path, rec.fs, rec.channels, unit="uV", start_time=start) as writer:
        writer.write(rec.signal)
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """Two subjects, five recordings: four BDF nights and one CSV table."""
    root = tmp_path_factory.mktemp("data") / "study"
    for k in range(4):
        _write_bdf(root / f"P0{k % 2 + 1}" / f"night{k}.bdf", seed=k,
                   start=datetime(2024, 5, 1 + k, 22, 30))
    rec = simulate(np.random.default_rng(9), fs=500.0, duration_s=SECONDS, n_channels=2)
    table = pd.DataFrame(rec.signal, columns=list(rec.channels))
    table.insert(0, "time", np.arange(len(table)) / rec.fs)
    table.to_csv(root / "P02" / "day.csv", index=False, float_format="%.3f")
    (root / "P01" / "notes.txt").write_text("electrode on the calf re-taped at 23:10\n")
    return root


def _detect_table(path: Path) -> tuple[pd.DataFrame, int]:
    """The episode table exactly as ``emg-pipeline detect --timezone UTC`` builds it, and
    the number of bursts rejected as not muscle."""
    from datetime import UTC

    with open_recording(path) as reader:
        info = reader.info
        sites = resolve_sites(info.channels, info=info, timezone=UTC)
        sink = EpisodeFile(path.with_suffix(".detect.csv"), sites)
        pipe = Pipeline(info.fs, info.channels, unit=info.unit)
        summary = run(reader.iter_chunks(max(1, round(0.02 * info.fs))), pipe, [sink],
                      info=StreamInfo.of(pipe, title=path.name, start_time=info.start_time))
    path.with_suffix(".detect.csv").unlink()
    assert sink.table is not None
    return sink.table, len(summary.rejected)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_exact=True, check_dtype=False)


def test_episodes_are_those_of_detect_bit_for_bit(client, study, tmp_path, capsys):
    result = batch(study, client=client, out=tmp_path / "out", timezone="UTC", report=False)
    recs = result.recordings
    assert sorted(recs["recording"]) == ["study/P01/night0.bdf", "study/P01/night2.bdf",
                                         "study/P02/day.csv", "study/P02/night1.bdf",
                                         "study/P02/night3.bdf"]
    assert recs["error"].isna().all() and not recs["reused"].any()
    assert dict(zip(recs["recording"], recs["subject"], strict=True))["study/P02/day.csv"] == "P02"
    assert (recs["duration_s"] == SECONDS).all()
    assert len(result.episodes) > 20 and set(result.episodes["subject"]) == {"P01", "P02"}
    for rec in recs.itertuples():
        mine = result.episodes[result.episodes["recording"] == rec.recording]
        theirs, rejected = _detect_table(Path(rec.path))
        columns = [c for c in EPISODE_FILE_COLUMNS if c in theirs.columns]
        assert rec.n_episodes == len(theirs) == len(mine)
        assert rec.n_not_muscle == rejected
        _same(mine[columns].astype({"label": str, "pattern": str}),
              theirs[columns].astype({"label": str, "pattern": str}))
        if "onset_time" not in theirs.columns:   # the CSV states no start time
            assert mine["onset_time"].isna().all() and mine["onset_utc"].isna().all()
    # the command itself, on one night: the same file, byte for byte, from the dataset
    night = study / "P01" / "night0.bdf"
    assert main(["detect", str(night), "--out", str(tmp_path / "d.csv"), "-q",
                 "--timezone", "UTC"]) == 0
    mine = result.episodes[result.episodes["recording"] == "study/P01/night0.bdf"]
    text = mine[list(EPISODE_FILE_COLUMNS)].to_csv(index=False, float_format="%.4f")
    assert (tmp_path / "d.csv").read_text() == text
    # what was written is what was returned
    _same(read_episode_dataset(tmp_path / "out" / "episodes"), result.episodes)
    loaded = BatchResult.load(tmp_path / "out")
    _same(loaded.recordings, result.recordings)


def test_a_recordings_row_counts_the_bursts_rejected_as_not_muscle(tmp_path):
    # a 24 Hz ringing (a knock's) and a contraction: one episode, one burst not muscle
    from emg_pipeline.batch.inputs import RecordingSpec
    from emg_pipeline.batch.task import process_recording

    rng = np.random.default_rng(4)
    fs = 1000.0
    x = 5.0 * rng.standard_normal((30_000, 1))
    x[10_000:11_500, 0] += 200.0 * np.sin(2 * np.pi * 24.0 * np.arange(1500) / fs)
    x[20_000:21_500, 0] += 200.0 * rng.standard_normal(1500)
    path = tmp_path / "knock.bdf"
    with RecordingWriter(path, fs, ("calf",), unit="uV") as writer:
        writer.write(x)
    outcome = process_recording(RecordingSpec(path, "knock.bdf", "P01"), PipelineSettings())
    assert outcome.row["error"] is None
    assert outcome.row["n_episodes"] == 1 and outcome.row["n_not_muscle"] == 1


def test_bad_and_truncated_files_are_rows_with_their_error(client, study, tmp_path):
    folder = tmp_path / "mixed"
    good = _write_bdf(folder / "good.bdf", 1, datetime(2024, 5, 2, 22, 0))
    (folder / "garbage.bdf").write_bytes(b"\x00\x01not a recording" * 50)
    (folder / "empty.csv").write_text("")
    cut = folder / "cut.bdf"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) * 2 // 3])
    (folder / "header.bdf").write_bytes(good.read_bytes()[:100])
    result = batch(folder, client=client, out=tmp_path / "out", report=True)
    rows = result.recordings.set_index("recording")
    assert len(rows) == 5
    errors = rows["error"].dropna()
    assert set(errors.index) == {"mixed/garbage.bdf", "mixed/empty.csv", "mixed/header.bdf"}
    for text in errors:
        assert text and "\n" not in text and "Traceback" not in text
    assert "empty" in errors["mixed/empty.csv"]
    assert rows.loc["mixed/header.bdf", "error_type"] == "RecordingError"
    # the truncated file is read up to its last whole record, and says so
    assert pd.isna(rows.loc["mixed/cut.bdf", "error"])
    assert rows.loc["mixed/cut.bdf", "warning"]
    assert 0 < rows.loc["mixed/cut.bdf", "duration_s"] < rows.loc["mixed/good.bdf", "duration_s"]
    assert result.report is not None and "Recordings not read" in result.report.read_text()
    # strict: the truncated file is refused instead
    strict = batch(folder, client=client, strict=True)
    assert strict.recordings.set_index("recording").loc["mixed/cut.bdf", "error_type"] \
        == "RecordingError"
    assert strict.out is None


def test_a_second_run_reuses_what_is_unchanged(client, study, tmp_path):
    data = tmp_path / "study"
    for path in study.rglob("*"):
        if path.is_file():
            target = data / path.relative_to(study)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    out = tmp_path / "out"
    first = batch(data, client=client, out=out, report=False)
    again = batch(data, client=client, out=out, report=False)
    assert again.recordings["reused"].all() and again.n_reused == 5
    _same(again.episodes, first.episodes)
    _same(again.recordings.drop(columns=VOLATILE), first.recordings.drop(columns=VOLATILE))
    assert "5 reused" in again.totals_line()
    # one file changed: only it is computed again
    _write_bdf(data / "P01" / "night0.bdf", 42, datetime(2024, 5, 1, 22, 30))
    changed = batch(data, client=client, out=out, report=False).recordings.set_index("recording")
    assert not changed.loc["study/P01/night0.bdf", "reused"]
    assert changed.drop(index="study/P01/night0.bdf")["reused"].all()
    # other settings: everything is computed again, and the old files are gone
    other = batch(data, {"spasm_min_s": 3.0}, client=client, out=out, report=False)
    assert not other.recordings["reused"].any()
    assert len(list((out / "episodes").rglob("*.parquet"))) == 5
    # a recording moved to another subject: no file of it stays under the old one
    moved = batch(data, client=client, out=out, subject="S9", report=False)
    assert set(moved.episodes["subject"]) == {"S9"}
    assert [p.name for p in (out / "episodes").iterdir()] == ["subject=S9"]


def test_a_killed_run_leaves_no_half_file_and_resumes_to_the_same_dataset(client, study, tmp_path):
    out = tmp_path / "out"
    whole = batch(study, client=client, out=out, report=False)
    files = sorted((out / "episodes").rglob("*.parquet"))
    # what a kill can leave: finished files, a temporary file cut short, no recordings.parquet
    half = files[0].with_name(f".{files[0].name}.tmp-4242")
    half.write_bytes(files[1].read_bytes()[:300])
    for path in files[:3]:
        path.unlink()
    (out / "recordings.parquet").unlink()
    # a reader of the dataset sees only whole files meanwhile
    assert len(pd.read_parquet(out / "episodes")) == len(read_episode_dataset(out / "episodes"))
    # and a file damaged at its final name is not trusted
    files[3].write_bytes(files[3].read_bytes()[:200])
    notes: list[str] = []
    resumed = batch(study, client=client, out=out, report=False, announce=notes.append)
    assert not half.exists()
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    assert int(resumed.recordings["reused"].sum()) == 1
    assert any("interrupted run" in n for n in notes)
    _same(resumed.episodes, whole.episodes)
    _same(resumed.recordings.drop(columns=VOLATILE), whole.recordings.drop(columns=VOLATILE))


def test_the_command_killed_with_sigkill_resumes(study, tmp_path, spawn):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "emg_pipeline", "batch", str(study), "--out", str(out),
            "--workers", "1", "--no-report", "-q"]
    child = spawn(argv, start_new_session=True, stdout=subprocess.DEVNULL,
                  stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if list((out / "episodes").glob("*/*.parquet")):
            break
        time.sleep(0.05)
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGKILL)   # the command, its cluster and its workers
    child.wait(timeout=30)
    done = {p.name for p in (out / "episodes").glob("*/*.parquet")}
    assert done, child.stderr.read().decode() if child.stderr else ""
    status = main(["batch", str(study), "--out", str(out), "--workers", "1", "--no-report",
                   "-qq"])
    assert status == 0
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    result = BatchResult.load(out)
    assert len(result.recordings) == 5 and result.recordings["error"].isna().all()
    assert int(result.recordings["reused"].sum()) == len(done)
    assert set(result.episodes["recording"]) == set(result.recordings["recording"])


def test_a_manifest_gives_subjects_sites_and_times(client, study, tmp_path):
    manifest = tmp_path / "study.csv"
    rel = os.path.relpath(study, tmp_path)
    manifest.write_text(
        "path,subject,sites,start_time,timezone\n"
        f"{rel}/P01/night0.bdf,anna,ch3=neck; calf=thigh,2024-06-01T23:00:00,Europe/Paris\n"
        f"{rel}/P02/night1.bdf,ben,,,\n"
        f"{rel}/P02/missing.bdf,ben,,,\n"
    )
    result = batch([manifest], client=client, out=tmp_path / "out", timezone="UTC")
    rows = result.recordings.set_index("recording")
    # paths that leave the manifest's folder are named after their own folder
    assert sorted(rows.index) == ["P01/night0.bdf", "P02/missing.bdf", "P02/night1.bdf"]
    anna = rows.loc["P01/night0.bdf"]
    assert anna["subject"] == "anna" and anna["start_time"] == "2024-06-01T23:00:00.000+02:00"
    eps = result.episodes[result.episodes["subject"] == "anna"]
    assert set(eps["site"]) <= {"thigh", "back", "neck"} and "neck" in set(eps["site"])
    first = eps.iloc[0]
    expected = pd.Timestamp("2024-06-01T21:00:00Z") + pd.Timedelta(seconds=first["onset_s"])
    assert abs(first["onset_utc"] - expected) < pd.Timedelta(milliseconds=1)
    ben = rows.loc["P02/night1.bdf"]
    assert ben["subject"] == "ben" and ben["start_time"].endswith("+00:00")
    missing = rows.loc["P02/missing.bdf"]
    assert "cannot read the file" in missing["error"]
    # the report: one diary per subject, an index over them
    index = (tmp_path / "out" / "report" / "index.html").read_text()
    assert "anna/index.html" in index and "ben/index.html" in index
    assert (tmp_path / "out" / "report" / "anna" / "by_day.csv").is_file()
    # a missing file is not remembered as done: it is tried again next time
    again = batch([manifest], client=client, out=tmp_path / "out", report=False)
    again_rows = again.recordings.set_index("recording")
    assert not again_rows.loc["P02/missing.bdf", "reused"]
    assert again_rows.loc["P01/night0.bdf", "reused"]


def test_without_an_output_folder_nothing_is_written(client, study, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = batch(str(study / "P02" / "*.bdf"), client=client, settings=PipelineSettings())
    assert sorted(result.recordings["recording"]) == ["P02/night1.bdf", "P02/night3.bdf"]
    assert result.out is None and result.report is None and not list(tmp_path.iterdir())


def test_find_recordings(study, tmp_path):
    found = find_recordings([study], exclude=[study / "P02"])
    assert [s.recording for s in found.specs] == ["study/P01/night0.bdf", "study/P01/night2.bdf"]
    assert [p.name for p in found.skipped] == ["notes.txt"]
    one = find_recordings([study / "P01" / "night0.bdf", study / "P01"], subject="x")
    assert [(s.recording, s.subject) for s in one.specs] == [
        ("P01/night0.bdf", "x"), ("P01/night2.bdf", "x")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{study}/nope", "--out", "{tmp}/o"], "no such file or folder"),
        (["{study}/*.xyz", "--out", "{tmp}/o"], "no file matches"),
        (["{study}", "--out", "{study}/P01/night0.bdf"], "is a file, not a folder"),
        (["{study}", "--out", "{tmp}/o", "--workers", "0"], "must be at least 1"),
        (["{study}", "--out", "{tmp}/o", "--site", "calf"], "CHANNEL=SITE"),
        (["{study}", "--out", "{tmp}/o", "--timezone", "Mars/Base"], "unknown time zone"),
        (["{study}", "--out", "{tmp}/o", "--scheduler", "nowhere"], "Dask scheduler"),
        (["{tmp}/bad.csv", "--out", "{tmp}/o"], "row 1: start_time"),
        (["{tmp}/nopath.csv", "--out", "{tmp}/o"], "unknown column"),
        (["{study}"], "--out"),
    ],
)
def test_every_bad_input_is_one_error_line(study, tmp_path, capsys, argv, message):
    (tmp_path / "bad.csv").write_text("path,start_time\nP01/night0.bdf,yesterday\n")
    (tmp_path / "nopath.csv").write_text("path,colour\nP01/night0.bdf,red\n")
    args = [a.format(study=study, tmp=tmp_path) for a in argv]
    assert main(["batch", *args]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("emg-pipeline: error: "), captured.err
    assert message in lines[0] and "Traceback" not in captured.err


def test_without_dask_one_line_says_how_to_install_it(study, tmp_path):
    code = ("import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None; "
            "from emg_pipeline.cli import main; "
            f"sys.exit(main(['batch', {str(study)!r}, '--out', {str(tmp_path / 'o')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "emg-pipeline: error: batch needs the package 'dask', which is not installed: "
        "pip install 'emg-pipeline[batch]'"]


def test_importing_the_package_does_not_import_dask():
    code = "import sys, emg_pipeline; print(callable(emg_pipeline.batch), 'distributed' in " \
           "sys.modules, 'dask' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["True", "False", "False"]


def test_the_robust_suite_gives_the_same_rows_on_the_engine(client, request):
    from distributed import Future

    from emg_pipeline.bench.common import jsonable
    from emg_pipeline.bench.robust import run_robust

    def scores(result: dict) -> list:   # NaN as None, so that equal rows compare equal
        return jsonable([{k: v for k, v in r.items() if k not in ("generate_s", "detect_s")}
                         for r in result["rows"]])

    serial = run_robust(2, seed=3)
    done = threading.Event()
    stall: list[str] = []

    def report_a_stall() -> None:
        # this run (7 s as a rule) has stalled until the test's deadline, rarely: if it
        # does again, say what the workers were doing (past pytest's capture, which the
        # deadline's ending of the process throws away), then cancel the tasks, so that
        # the test fails with the report instead
        if done.wait(120.0):
            return
        stall.extend(str(part) for part in (
            "stalled: tasks processing", client.processing(),
            "futures", {key: state.status for key, state in client.futures.items()},
            "worker stacks", client.call_stack(),
            "scheduler log", client.get_scheduler_logs(n=30),
            "worker logs", client.get_worker_logs(n=30)))
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(*stall, sep="\n", file=sys.stderr, flush=True)
        client.cancel([Future(key, client) for key in list(client.futures)])

    threading.Thread(target=report_a_stall, daemon=True).start()
    try:
        with Engine(client) as engine:
            parallel = run_robust(2, seed=3, engine=engine)
    except Exception:
        if stall:
            pytest.fail("\n".join(stall))
        raise
    finally:
        done.set()
    assert scores(parallel) == scores(serial)
