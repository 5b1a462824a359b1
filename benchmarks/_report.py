"""Helpers shared by the ML benchmarks: machine info, JSON/Markdown output, bar plots."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Where the numbers were taken (they depend on the cores and on the load)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": list(load) if load else None,
    }


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write(out: Path, name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / f"{name}.json", out / f"{name}.md"
    js.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    md.write_text(markdown)
    return js, md


def bar_panels(
    path: Path,
    panels: Sequence[tuple[str, dict[str, float | None]]],
    title: str,
) -> Path:
    """One small bar chart per panel (title, {system: value}) in a grid, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for ax, (name, values) in zip(axes.flat, panels, strict=False):
        labels = list(values)
        heights = [values[k] if values[k] is not None else 0.0 for k in labels]
        bars = ax.bar(labels, heights, color=colours[: len(labels)])
        ok = [h for h, k in zip(heights, labels, strict=True) if values[k] is not None]
        if ok:
            lo, hi = min(ok), max(ok)
            pad = (hi - lo) * 0.5 or abs(hi) * 0.05 or 0.01
            ax.set_ylim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        for bar, k in zip(bars, labels, strict=True):
            if values[k] is not None:
                ax.annotate(
                    f"{values[k]:.4g}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
        ax.set_title(name, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
