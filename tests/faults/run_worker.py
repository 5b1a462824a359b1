"""``tabstream worker`` with a fake child, for fault tests: ``python run_worker.py MODE SECONDS
<worker args...>`` (MODE ``real`` keeps the real pipeline child). Production code has no fault
flags: this wraps the composition root's ``build_worker`` with ``child_argv``."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tabstream.bootstrap.worker as bootstrap
from tabstream.cli import main
from tests.faults.worker_support import fake_child

if __name__ == "__main__":
    mode, seconds = sys.argv[1], float(sys.argv[2])
    if mode != "real":
        original = bootstrap.build_worker
        bootstrap.build_worker = functools.partial(  # type: ignore[assignment]
            original, child_argv=fake_child(mode, seconds)
        )
    sys.argv = ["tabstream", "worker", *sys.argv[3:]]
    main()
