"""Shared fixtures: seeded randomness, synthetic recordings, chunk splitters."""

from __future__ import annotations

import ctypes
import itertools
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ble-address", default=None, help="address of a real BLE board for hardware tests"
    )
    parser.addoption(
        "--ble-profile", default="nus_emg", help="firmware profile of that board (hardware tests)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--ble-address"):
        return
    skip = pytest.mark.skip(reason="hardware test: pass --ble-address to run it")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


def random_splits(rng: np.random.Generator, n: int, parts: int) -> list[int]:
    """Sorted random cut points (including runs of tiny chunks and empty ones)."""
    cuts = np.sort(rng.integers(0, n + 1, size=parts))
    return cuts.tolist()


def feed(stage_process, x: np.ndarray, cuts: list[int]) -> list:
    """Feed ``x`` to ``stage_process`` in pieces cut at ``cuts``."""
    bounds = [0, *cuts, x.shape[0]]
    return [stage_process(x[a:b]) for a, b in itertools.pairwise(bounds)]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def _die_with_parent() -> None:
    """In a child, before exec: be killed when the test process dies (Linux).

    pytest-timeout's thread method ends a hung run with ``os._exit``; a child
    left behind would hold CI's pipes open. Elsewhere this is a no-op.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)   # a background run starts with it ignored
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)               # PR_SET_PDEATHSIG


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start child processes that cannot outlive the test (killed at teardown or with it)."""
    children: list[subprocess.Popen] = []

    def start(args: list[str], **kwargs: object) -> subprocess.Popen:
        child = subprocess.Popen(args, preexec_fn=_die_with_parent, **kwargs)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
