"""Write the benchmark report: Markdown, PNG plots (matplotlib, Agg) and JSON of all figures."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import peers, real, robust, semi, speed, synthetic
from .common import jsonable, provenance_text

__all__ = ["write_report"]


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _nan(v: Any) -> float:
    return math.nan if v is None else float(v)


def plot_snr(results: dict[str, Any], path: Path) -> bool:
    """F1 and median absolute onset error against SNR, one line per method."""
    series: dict[str, list[tuple[float, float, float]]] = {}
    if "synthetic" in results:
        for r in results["synthetic"]["rows"]:
            if r["group"] == "snr":
                series.setdefault("emg-pipeline (streamed, 2 ch, 2 kHz)", []).append(
                    (r["snr_db"], _nan(r["f1"]), _nan(r["onset_err_median_abs_ms"])))
    if "peers" in results:
        for r in results["peers"]["synthetic"]:
            if "error" not in r:
                series.setdefault(f"{r['method']} (1 ch, 1 kHz)", []).append(
                    (r["snr_db"], _nan(r["f1"]), _nan(r["onset_err_median_abs_ms"])))
    if not series:
        return False
    plt = _figure()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, pts in series.items():
        pts.sort()
        x = [p[0] for p in pts]
        ax1.plot(x, [p[1] for p in pts], marker="o", label=name)
        ax2.plot(x, [p[2] for p in pts], marker="o", label=name)
    ax1.set(xlabel="SNR (dB)", ylabel="F1", ylim=(-0.02, 1.02), title="F1 against SNR")
    ax2.set(xlabel="SNR (dB)", ylabel="median |onset error| (ms)",
            title="Onset error against SNR")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_latency(results: dict[str, Any], path: Path) -> bool:
    """Distributions of live alert latencies (synthetic cells) and streaming call latency."""
    syn = results.get("synthetic", {}).get("rows", [])
    spd = results.get("speed", {}).get("stream", [])
    if not syn and not spd:
        return False
    plt = _figure()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    onset = [v for r in syn for v in r.get("onset_latencies_ms", [])]
    sustained = [v for r in syn for v in r.get("sustained_latencies_ms", [])]
    ax = axes[0]
    if onset or sustained:
        boundary = f"{synthetic.SPASM_MIN_S:g} s"
        ax.hist([onset, sustained], bins=30, label=["onset alert − true onset",
                                                    f"sustained alert − (onset + {boundary})"])
        ax.legend(fontsize=7)
    ax.set(xlabel="ms", ylabel="events", title="Live alert latency (all synthetic cells)")
    ax = axes[1]
    if spd:
        ax.boxplot([s["latencies_ms"] for s in spd], whis=(1, 99), showfliers=False)
        ax.set_xticks(range(1, len(spd) + 1), [f"{s['chunk_ms']:g}" for s in spd])
    ax.set(xlabel="chunk (ms)", ylabel="ms per call (whiskers p1-p99)",
           title="Pipeline.process latency per chunk")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_throughput(results: dict[str, Any], path: Path) -> bool:
    """Offline × real time against channel count, per rate, with the sosfilt floor."""
    grid = results.get("speed", {}).get("grid", [])
    if not grid:
        return False
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for fs in sorted({c["fs"] for c in grid}):
        cells = sorted((c for c in grid if c["fs"] == fs), key=lambda c: c["channels"])
        n = [c["channels"] for c in cells]
        line, = ax.plot(n, [c["x_real_time"] for c in cells], marker="o",
                        label=f"detect {fs:g} Hz")
        ax.plot(n, [c["sosfilt_x_real_time"] for c in cells], ls="--",
                color=line.get_color(), label=f"bare sosfilt {fs:g} Hz")
    ax.set(xscale="log", yscale="log", xlabel="channels", ylabel="× real time",
           title="Offline throughput against channels")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


PLOTS: dict[str, tuple[str, Callable[[dict[str, Any], Path], bool]]] = {
    "snr.png": ("F1 and onset error against SNR per method", plot_snr),
    "latency.png": ("Latency distributions", plot_latency),
    "throughput.png": ("Throughput against channels", plot_throughput),
}


def write_report(results: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write ``report.md``, ``results.json`` and the plots into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    meta = results["meta"]
    env = meta["environment"]
    parts = [
        "# emg-pipeline benchmark report",
        f"{provenance_text(meta['package'])}; run {meta['date']}; command `{meta['command']}`; "
        f"Python {env['python']}, numpy {env['numpy']}, scipy {env['scipy']}, pandas "
        f"{env['pandas']}; {env['cpu_count']} CPUs ({env['machine']}); seed {meta['seed']}; "
        f"{'quick (small cells: figures are rough)' if meta['quick'] else 'full'} run; "
        f"{meta['elapsed_s']:.0f} s.",
        "Matching: same channel, overlapping, onsets within the tolerance (250 ms unless "
        "stated), one-to-one closest onsets first; a split event's extra pieces are false "
        "positives. Figures that are undefined are n/a, never 0 or 1.",
    ]
    sections = {"synthetic": synthetic.section, "robust": robust.section,
                "physio": robust.section, "mains": robust.mains_section,
                "real": real.section, "semi": semi.section, "speed": speed.section,
                "peers": peers.section}
    for name, fn in sections.items():
        if name in results:
            parts.append(fn(results[name]))
    plots = []
    for fname, (title, fn) in PLOTS.items():
        if fn(results, out / fname):
            written[fname] = out / fname
            plots.append(f"### {title}\n\n![{title}]({fname})")
    if plots:
        parts.append("## Plots\n\n" + "\n\n".join(plots))
    (out / "report.md").write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    written["report.md"] = out / "report.md"
    with open(out / "results.json", "w", encoding="utf-8") as fh:
        json.dump(jsonable(results), fh, indent=1, allow_nan=False)
    written["results.json"] = out / "results.json"
    return written
