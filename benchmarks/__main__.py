"""Run every benchmark module: ``python -m benchmarks [names...]``."""

from __future__ import annotations

import importlib
import sys

MODULES = (
    "bus",
    "projection",
    "control_plane",
    "forecast",
    "scheduling",
    "distill",
    "predict",
    "quality",
    "overhead",
)


def main(argv: list[str] | None = None) -> int:
    """Run the named benchmark modules (all of ``MODULES`` when none are named)."""
    names = (argv if argv is not None else sys.argv[1:]) or list(MODULES)
    for name in names:
        print(f"== benchmarks.{name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
