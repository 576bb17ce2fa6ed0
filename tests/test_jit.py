"""The compiled-kernel set-up: the first-run notice of the commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emg_pipeline import _jit, cli
from emg_pipeline.pipeline import Pipeline


def _recording(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "rec.csv"
    t = np.arange(2000) / 1000.0
    rows = "\n".join(f"{ti:.3f},{v:.3f}" for ti, v in zip(t, rng.normal(0, 5, t.size), strict=True))
    path.write_text("time_s,emg\n" + rows + "\n")
    return path


@pytest.mark.parametrize(("pending", "quiet", "shown"),
                         [(True, False, True), (True, True, False), (False, False, False)])
def test_first_run_notice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str], pending: bool, quiet: bool,
                          shown: bool) -> None:
    monkeypatch.setattr(_jit, "compilation_pending", lambda: pending)
    argv = ["detect", str(_recording(tmp_path)), "--out", str(tmp_path / "ep.csv")]
    assert cli.main([*argv, "-q"] if quiet else argv) == 0
    assert ("compiling the signal kernels" in capsys.readouterr().err) is shown


def test_compilation_pending_sees_the_cache() -> None:
    # by now this process has compiled (or loaded) kernels, and the package folder
    # of a development checkout is writable: their cache index exists
    Pipeline(1000.0, 1).process(np.zeros((10, 1)))
    assert _jit.compilation_pending() is False
