"""Detection quality of emg-pipeline on its synthetic recordings (Markdown tables).

A thin entry point over :mod:`emg_pipeline.bench.synthetic` (the ``synthetic``
suite of ``emg-pipeline bench``), restricted to the cells that carry goals:
each row is one seeded recording streamed through :class:`emg_pipeline.Pipeline`
in 20 ms chunks and scored with :mod:`emg_pipeline.metrics`.

    python benchmarks/detection.py            # 30 min per row
    python benchmarks/detection.py --quick    # 3 min per row (smoke run)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from emg_pipeline.bench.common import environment, jsonable, provenance, provenance_text
from emg_pipeline.bench.synthetic import (
    latency_table,
    quality_table,
    run_synthetic,
    timing_table,
)

#: the cells with goals (see benchmarks/README.md)
KEYS = ("snr20", "snr12", "snr6", "snr3", "rate200", "rest_artefacts", "rest_ecg")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=None,
                   help="minutes of 2-channel signal per row (default 30; 3 with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 min per row")
    p.add_argument("--seed", type=int, default=0, help="base seed of the recordings")
    p.add_argument("--no-live", action="store_true", help="leave out the live-alert table")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    if args.minutes is None:
        args.minutes = 3.0 if args.quick else 30.0
    if args.minutes <= 0:
        p.error("--minutes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every row, print the tables; exit status 0 whatever the verdicts."""
    args = parse_args(argv)
    prov = provenance()
    env = environment()
    print("# emg-pipeline detection benchmark\n")
    print(f"{provenance_text(prov)}; Python {env['python']}, numpy {env['numpy']}, pandas "
          f"{env['pandas']}; seed {args.seed}; {args.minutes:g} min of 2-channel signal per "
          "row; default settings; streamed in 20 ms chunks.\n")
    sys.stdout.flush()
    result = run_synthetic(args.minutes, args.seed, keys=KEYS,
                           progress=lambda line: print(f"  {line}", file=sys.stderr,
                                                       flush=True))
    rows = result["rows"]
    print("## Detection quality\n")
    print(quality_table(rows))
    n_fail = sum(1 for r in rows if r["failed"])
    print(f"\n{len(rows) - n_fail} of {len(rows)} rows pass.\n")
    print("## Time per row\n")
    print(timing_table(rows))
    if not args.no_live:
        print("\n## Live alerts (from the live event stream)\n")
        print(latency_table(rows))
    if args.json:
        payload = {"benchmark": "detection", "seed": args.seed, "minutes": args.minutes,
                   "package": prov, "versions": env, "rows": rows}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(jsonable(payload), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
