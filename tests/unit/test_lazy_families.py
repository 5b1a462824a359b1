"""Family modules load on first use: a job that trains only tree families never imports
torch."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import tabstream.bootstrap.child, tabstream.pipeline.train
from tabstream.pipeline.families import Families
families = Families()
assert sorted(families) == ["catboost", "extratrees", "lightgbm", "randomforest", "tabicl",
                            "tabm", "xgboost", "xrfm"] and "tabm" in families
for trees in ("xgboost", "lightgbm", "catboost", "extratrees", "randomforest"):
    families[trees]
print("torch" in sys.modules)
families["tabm"]
print("torch" in sys.modules)
"""


def test_tree_families_do_not_import_torch() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, timeout=120
    ).stdout.split()
    assert out == ["False", "True"]
