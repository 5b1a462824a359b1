"""``tune_gc``: servers freeze their start-up heap and collect the young generation less often."""

from __future__ import annotations

import json
import subprocess
import sys

from tabstream.bootstrap.api import GC_YOUNG

PROBE = """
import gc, json
from tabstream.bootstrap.api import tune_gc
before = gc.get_freeze_count()
tune_gc()
print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()]))
"""


def test_tune_gc_freezes_the_startup_heap_and_raises_the_young_threshold() -> None:
    # in a child process: freezing this test process would keep every later test's garbage
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    before, after, threshold = json.loads(out.stdout)
    assert before == 0 and after > 10_000
    assert threshold[0] == GC_YOUNG > 700
