"""Family modules load on first use: a job that trains only xgboost never imports torch."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import tabstream.bootstrap.child, tabstream.pipeline.run
from tabstream.pipeline.families import FAMILIES, get_family
assert sorted(FAMILIES) == ["tabicl", "tabm", "xgboost", "xrfm"]
get_family("xgboost")
print("torch" in sys.modules)
get_family("tabm")
print("torch" in sys.modules)
"""


def test_xgboost_only_does_not_import_torch() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, timeout=120
    ).stdout.split()
    assert out == ["False", "True"]
