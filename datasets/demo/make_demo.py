"""Regenerate the bundled demo session and its ground truth.

Run from the repository root: ``python datasets/demo/make_demo.py``. The output
is deterministic (fixed seed), so the committed files can be checked against a
fresh run (``tests/test_replay.py`` does).

Files written next to this script:

- ``session.csv.gz``: ``time_s`` then one column per muscle site, in µV (the
  ``(uV)`` header suffix tells the reader), rounded to 0.1 µV;
- ``truth.csv``: one row per simulated contraction: ``channel, onset_s,
  offset_s, duration_s, label (twitch|spasm), pattern (phasic|tonic|clonic),
  snr_db``;
- ``artefacts.csv``: one row per simulated artefact: ``channel, onset_s,
  offset_s, kind (motion|pop|knock)``; ECG and mains run throughout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emg_pipeline.sources.synthetic import simulate

HERE = Path(__file__).resolve().parent
SEED = 20261125
FS = 1000.0
DURATION_S = 150.0
SITES = ("calf_left", "thigh_right", "lower_back")


def main(out_dir: Path = HERE) -> None:
    """Write the demo files into ``out_dir`` (default: next to this script)."""
    out_dir = Path(out_dir)
    rec = simulate(
        np.random.default_rng(SEED),
        fs=FS,
        duration_s=DURATION_S,
        channels=SITES,
        snr_db=14.0,
        noise_uv=3.0,
        rest_s=(3.0, 12.0),
        mains_hz=50.0,
        mains_uv=25.0,
        mains_drift_hz=0.3,
        ecg_uv=[0.0, 0.0, 60.0],  # heartbeats on the trunk channel
        motion_per_min=0.5,
        pops_per_min=0.3,
        knocks_per_min=0.3,
    )
    t = np.arange(rec.signal.shape[0]) / FS
    frame = pd.DataFrame(np.round(rec.signal, 1), columns=[f"{site} (uV)" for site in SITES])
    frame.insert(0, "time_s", np.round(t, 3))
    gzip_options = {"method": "gzip", "mtime": 0}  # no timestamp: the same bytes every run
    frame.to_csv(out_dir / "session.csv.gz", index=False, compression=gzip_options)
    rec.truth.to_csv(out_dir / "truth.csv", index=False, float_format="%.4f")
    rec.artefacts.to_csv(out_dir / "artefacts.csv", index=False, float_format="%.4f")
    print(f"{len(rec.truth)} events, {len(rec.artefacts)} artefacts written to {out_dir}")


if __name__ == "__main__":
    main()
