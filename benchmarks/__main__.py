"""Run every benchmark module: ``python -m benchmarks [names...]``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

MODULES = (
    "bus",
    "projection",
    "control_plane",
    "forecast",
    "scheduling",
    "distill",
    "predict",
    "family_costs",
    "regression_costs",
    "quality",
    "quality_splits",
    "overhead",
    "soak",
)


def main(argv: list[str] | None = None) -> int:
    """Run the named benchmark modules (all of ``MODULES`` when none are named)."""
    names = (argv if argv is not None else sys.argv[1:]) or list(MODULES)
    for name in names:
        print(f"== benchmarks.{name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main([])
    write_report(RESULTS)
    return 0


def write_report(results: Path) -> Path:
    """Join every module's Markdown result into ``results/REPORT.md`` (plots are linked there)."""
    parts = [
        "# tabstream benchmark report",
        "",
        "Written by `make bench`; one section per module.",
        "",
    ]
    for name in [n for m in MODULES for n in (m, f"{m}_cluster")]:
        md = results / f"{name}.md"
        if md.exists():
            parts += [md.read_text().strip(), ""]
    report = results / "REPORT.md"
    report.write_text("\n".join(parts))
    return report


if __name__ == "__main__":
    raise SystemExit(main())
