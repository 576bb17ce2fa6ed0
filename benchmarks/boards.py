"""CPU cost of BLE boards: decode + pipeline per second of stream, for every profile.

For each firmware profile, a synthetic signal is turned into the board's exact
notifications (the emulator's encoder, no Bluetooth), then timed on one core:

- **decode**: :class:`~emg_pipeline.sources.ble.PacketAssembler` (decoding,
  counter checks, placing samples on the sample clock), fed every notification
  as the BLE source does, drained every ``--chunk-ms``;
- **pipeline**: :class:`~emg_pipeline.Pipeline` on those chunks (default
  settings; ``unit`` as the profile says).

It prints CPU seconds per second of stream and how many boards at full rate
one core sustains (``1 / total``, before any Bluetooth stack overhead).

    python benchmarks/boards.py               # 60 s of stream per profile
    python benchmarks/boards.py --seconds 10  # quicker
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # single-core figures: set before numpy is imported

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from emg_pipeline import Chunk, Pipeline, run  # noqa: E402
from emg_pipeline.emulation import BoardStream, board_signal  # noqa: E402
from emg_pipeline.profiles import list_profiles, load_profile  # noqa: E402
from emg_pipeline.sources.ble import PacketAssembler  # noqa: E402


def measure(name: str, seconds: float, chunk_ms: float, seed: int) -> dict[str, float]:
    """CPU time of decode and pipeline for ``seconds`` of one board's stream."""
    profile = load_profile(name)
    if profile.variants:
        profile = profile.with_variant(profile.select_variant({"software_revision": b"3.0.2"}))
    signal = board_signal(profile, np.random.default_rng(seed), duration_s=seconds)
    stream = BoardStream(profile, signal, np.random.default_rng(seed))
    n_packets = int(seconds * stream.packets_per_second)
    notifications = [item for _ in range(n_packets) for item in stream.next_packet()]
    chars = profile.gatt.notify
    per_drain = max(1, round(chunk_ms / 1000.0 * stream.packets_per_second))
    asm = PacketAssembler(profile)
    pipe = Pipeline(profile.fs, profile.channels,
                    unit="uV" if profile.scale.calibrated else "counts")
    spent = {"decode": 0.0, "pipeline": 0.0}

    def decoded() -> Iterator[Chunk]:
        # the time until a drained chunk is asked for again is the pipeline's
        for start in range(0, len(notifications), per_drain):
            t0 = time.process_time()
            for k, (index, payload) in enumerate(notifications[start: start + per_drain]):
                asm.push(payload, chars[index], (start + k) / stream.packets_per_second)
            chunks = asm.drain()
            spent["decode"] += time.process_time() - t0
            for chunk in chunks:
                t1 = time.process_time()
                yield chunk
                spent["pipeline"] += time.process_time() - t1

    run(decoded(), pipe)
    decode_s, pipeline_s = spent["decode"], spent["pipeline"]
    stream_s = asm.stats.samples / profile.fs
    total = (decode_s + pipeline_s) / stream_s
    return {
        "fs": profile.fs, "channels": profile.n_channels,
        "notifications_per_s": len(notifications) / stream_s,
        "decode": decode_s / stream_s, "pipeline": pipeline_s / stream_s, "total": total,
        "boards_per_core": 1.0 / total if total > 0 else float("inf"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="stream length per profile")
    parser.add_argument("--chunk-ms", type=float, default=20.0,
                        help="how often the notification queue is drained")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profiles", nargs="*", default=None, help="default: all bundled")
    args = parser.parse_args(argv)
    names = args.profiles or list_profiles()
    print(f"CPU per second of stream, one core ({platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, numpy {np.__version__}); "
          f"{args.seconds:g} s per profile, queue drained every {args.chunk_ms:g} ms\n")
    print("| profile | fs (Hz) | ch | notif./s | decode (ms/s) | pipeline (ms/s) "
          "| total (ms/s) | boards per core |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        r = measure(name, args.seconds, args.chunk_ms, args.seed)
        print(f"| {name} | {r['fs']:g} | {r['channels']} | {r['notifications_per_s']:.0f} "
              f"| {1000 * r['decode']:.2f} | {1000 * r['pipeline']:.2f} "
              f"| {1000 * r['total']:.2f} | {r['boards_per_core']:.0f} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
