"""Shared fixtures: seeded randomness, synthetic recordings, chunk splitters."""

from __future__ import annotations

import itertools
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
