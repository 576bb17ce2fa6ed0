"""The BLE tests again and again under a CPU hog: do they ever fail or hang?

Each run is one pytest process over the emulated-board tests (``tests/test_ble.py``
and ``tests/test_assembler.py`` by default), while one busy-loop process per core
keeps the machine saturated, as a loaded CI machine would be. A run that outlives
``--deadline-s`` is killed and counted as a hang. The table gives, per run, the
outcome, its wall time and the tests that failed; then the totals (goal: 0 failures,
0 hangs).

    python benchmarks/ble_stress.py                      # 50 runs of both files
    python benchmarks/ble_stress.py --runs 10 -k cancel  # a quicker look at one test

It tests the code of the checkout it sits in (``PYTHONPATH``): run it from a checkout
nobody edits meanwhile (``git worktree add``), or the runs test half-made edits.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TESTS = ("tests/test_ble.py", "tests/test_assembler.py")


def _burn() -> None:  # pragma: no cover - runs in the hog processes
    while True:
        pass


def run_once(
    tests: Sequence[str], keyword: str | None, deadline_s: float
) -> tuple[str, float, str]:
    """One pytest run: (outcome, wall seconds, failed test ids or the reason)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    if keyword:
        cmd += ["-k", keyword]
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=deadline_s,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        return "HANG", time.monotonic() - started, f"killed after {deadline_s:g} s"
    wall = time.monotonic() - started
    out = done.stdout + done.stderr
    if done.returncode == 0:
        return "pass", wall, ""
    if "Timeout" in out and "Stack of" in out:
        return "HANG", wall, "pytest-timeout ended the run"
    failed = sorted(set(re.findall(r"^FAILED (\S+)", out, flags=re.M)))
    return "FAIL", wall, " ".join(failed) or f"exit code {done.returncode}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="pytest runs (default 50)")
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1,
                        help="busy-loop processes (default: one per core)")
    parser.add_argument("-k", dest="keyword", default=None, help="pytest -k expression")
    parser.add_argument("--deadline-s", type=float, default=600.0,
                        help="a run taking longer is killed and counted as a hang")
    parser.add_argument("tests", nargs="*", default=list(DEFAULT_TESTS))
    args = parser.parse_args(argv)
    hogs = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    outcomes: list[tuple[str, float, str]] = []
    try:
        print(f"# BLE tests under {args.hogs} busy-loop process(es), {args.runs} runs\n")
        print("| run | outcome | wall s | failed |")
        print("|---:|---|---:|---|")
        for k in range(args.runs):
            outcome = run_once(args.tests, args.keyword, args.deadline_s)
            outcomes.append(outcome)
            print(f"| {k + 1} | {outcome[0]} | {outcome[1]:.1f} | {outcome[2]} |", flush=True)
    finally:
        for hog in hogs:
            hog.terminate()
    walls = sorted(o[1] for o in outcomes)
    fails = sum(o[0] == "FAIL" for o in outcomes)
    hangs = sum(o[0] == "HANG" for o in outcomes)
    if walls:
        print("\n| runs | failures (goal 0) | hangs (goal 0) | median wall s | max wall s |")
        print("|---:|---:|---:|---:|---:|")
        print(f"| {len(walls)} | {fails} | {hangs} | {walls[len(walls) // 2]:.1f} | "
              f"{walls[-1]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
