"""A stand-in for ``tabstream.bootstrap.child`` in fault tests: no pipeline, instant start.

``python fake_child.py MODE [SECONDS]``: ``crash`` exits 3 with no result; ``sleep`` reports
one trial, sleeps SECONDS, then completes; ``segv`` kills itself with SIGKILL;
``segv_first`` does so in attempt 1 only and then behaves like ``sleep``; ``slow_first``
sleeps SECONDS in attempt 1 only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid


def main() -> None:
    """Read the spec and act out MODE."""
    mode = sys.argv[1]
    spec = json.loads(sys.stdin.readline())
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    job_id = spec["job_id"]
    if mode == "crash":
        os._exit(3)
    if mode == "segv" or (mode == "segv_first" and spec["attempt"] == 1):
        os.kill(os.getpid(), signal.SIGKILL)
    trial = {"job_id": job_id, "row": 0, "family": "xgboost", "trial": 0, "state": "complete",
             "params": {}, "fold_metrics": [], "metrics": {"auc": 0.5}, "fit_seconds": 0.0,
             "predict_seconds": 0.0, "device": spec["device"]}  # fmt: skip
    out.write(json.dumps({"kind": "event", "type": "TrialCompleted", "payload": trial}) + "\n")
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
    time.sleep(seconds if mode != "slow_first" or spec["attempt"] == 1 else 0.1)
    result = {"job_id": job_id, "leaderboard": [], "duration_s": 0.1,
              "best_model_id": str(uuid.uuid4())}  # fmt: skip
    out.write(json.dumps({"kind": "result", "payload": result}) + "\n")


if __name__ == "__main__":
    main()
