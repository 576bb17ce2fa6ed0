"""The command line's entry: Ctrl-C at any moment, ``--version`` at once, a light package."""

from __future__ import annotations

import importlib
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable

import pytest

import emg_pipeline
from emg_pipeline import cli
from emg_pipeline.cli import main

HEAVY = ("numpy", "scipy", "numba", "pandas", "matplotlib")


def _sigint_as_at_a_terminal() -> None:
    """In the child, before exec: SIGINT as a terminal gives it (a background run ignores it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _assert_ended_by_ctrl_c(done: subprocess.CompletedProcess[str]) -> None:
    """Exit status 130, the one line on stderr, nothing on stdout."""
    assert done.returncode == 130
    assert done.stderr == "emg-pipeline: interrupted\n" and done.stdout == ""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, preexec_fn=_sigint_as_at_a_terminal)


def test_ctrl_c_while_the_commands_load_is_one_line(monkeypatch, capsys) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["detect"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "emg-pipeline: interrupted\n" and captured.out == ""


def test_ctrl_c_inside_an_import_ends_the_program_at_once() -> None:
    # a KeyboardInterrupt raised inside an extension's import can surface as an
    # ImportError, or be swallowed by a library: while loading, SIGINT exits instead
    done = _python("import os, signal, time\n"
                   "from emg_pipeline._entry import interruptible_loading\n"
                   "with interruptible_loading():\n"
                   "    os.kill(os.getpid(), signal.SIGINT)\n"
                   "    time.sleep(30)\n"
                   "print('not reached')\n")
    _assert_ended_by_ctrl_c(done)


def test_ctrl_c_early_in_a_real_run(tmp_path, spawn: Callable[..., subprocess.Popen]) -> None:
    child = spawn([sys.executable, "-m", "emg_pipeline", "detect", "-q", "--out",
                   str(tmp_path / "episodes.csv")], stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)   # the modules are loading (they take a second or more)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err and len(err.splitlines()) <= 1 and out == ""


def test_ctrl_c_while_numba_loads_its_registries_ends_at_once() -> None:
    # numba loads its registries on the first kernel call; Ctrl-C then left them half
    # filled and the pipeline's flush failed with numba's "duplicate registration"
    done = _python("import os, signal, sys, time\n"
                   "import emg_pipeline._jit as jit\n"
                   "def loading():\n"
                   "    os.kill(os.getpid(), signal.SIGINT)\n"
                   "    time.sleep(30)\n"
                   "jit.load_numba = loading\n"
                   "from emg_pipeline.cli import main\n"
                   "sys.exit(main(['detect', '-q', '--out', '-']))\n")
    _assert_ended_by_ctrl_c(done)


def test_the_command_line_module_loads_no_heavy_library() -> None:
    done = _python("import sys\n"
                   "from emg_pipeline._entry import main\n"
                   "from emg_pipeline.cli import main\n"
                   f"print(sorted(set({HEAVY!r}) & set(sys.modules)))\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_version_is_answered_without_loading_the_commands() -> None:
    done = _python("import sys\n"
                   "from emg_pipeline.cli import main\n"
                   "try:\n"
                   "    main(['--version'])\n"
                   "except SystemExit as exc:\n"
                   "    print(exc.code)\n"
                   f"print(sorted(set({HEAVY!r}) & set(sys.modules)))\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"emg-pipeline {emg_pipeline.__version__}", "0", "[]"]


@pytest.mark.parametrize("name", ["run", "batch"])
def test_a_submodule_of_the_same_name_never_hides_a_public_function(name: str) -> None:
    module = importlib.import_module(f"emg_pipeline.{name}")
    setattr(emg_pipeline, name, module)   # what the first import of the submodule does
    assert isinstance(getattr(emg_pipeline, name), types.FunctionType)
    assert getattr(emg_pipeline, name) is getattr(module, name)


def test_every_public_name_resolves() -> None:
    for name in emg_pipeline.__all__:
        assert getattr(emg_pipeline, name) is not None
    assert set(emg_pipeline.__all__) <= set(dir(emg_pipeline))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        emg_pipeline.nothing  # noqa: B018
