"""The job child (``python -m tabstream.bootstrap.child``) exits cleanly, and at once when its
worker goes.

The first test runs a real child through its normal entry point. The worker keeps the child's
stdin open until the child has exited, so the parent-watch thread is still blocked reading
stdin when the interpreter shuts down: that is what made every child abort with ``Fatal Python
error: _enter_buffered_busy`` (exit -6) while the watcher read through ``sys.stdin.buffer``.
The second checks the watcher still ends the process (exit 70) on EOF.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from tabstream.consumer.protocol import JobSpec, parse_line
from tests.faults.worker_support import run_request

CHILD = (sys.executable, "-m", "tabstream.bootstrap.child")
TIMEOUT_S = 120


def _spec(tmp_path: Path) -> JobSpec:
    """A job that ends early with an error line: its teacher model is not in the store."""
    dataset = uuid.UUID(int=1)
    request = run_request(dataset, teacher_model_id=str(uuid.UUID(int=2)))
    return JobSpec(
        job_id=str(uuid.UUID(int=3)),
        attempt=1,
        dataset_id=str(dataset),
        dataset_key=f"datasets/{dataset}/data.parquet",
        request=request.model_dump(mode="json"),
        device="cpu",
        artifacts_uri=(tmp_path / "artifacts").as_uri(),
    )


def test_child_exits_cleanly_while_its_stdin_is_still_open(tmp_path: Path) -> None:
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(CHILD, stdin=subprocess.PIPE, stdout=out, stderr=err)
    try:
        assert proc.stdin is not None
        proc.stdin.write(_spec(tmp_path).to_bytes())
        proc.stdin.flush()
        # stdin stays open until the child has exited, as the worker keeps it
        code = proc.wait(timeout=TIMEOUT_S)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdin is not None
        proc.stdin.close()
    stderr = err_path.read_text(errors="replace")
    assert "Fatal Python error" not in stderr, stderr
    assert code == 0, stderr
    lines = [parse_line(raw) for raw in out_path.read_bytes().splitlines() if raw.strip()]
    assert [line.kind for line in lines] == ["error"], lines
    assert lines[0].reason == "invalid_input"


def test_child_exits_70_when_its_parent_closes_stdin() -> None:
    program = (
        "import time\n"
        "from tabstream.consumer.attempt import exit_with_parent\n"
        "exit_with_parent()\n"
        "time.sleep(60)\n"
    )
    cmd = [sys.executable, "-c", program]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            assert proc.stdin is not None and proc.stderr is not None
            proc.stdin.close()  # what the worker's death looks like from the child
            code = proc.wait(timeout=30)
        finally:
            proc.kill()
        stderr = proc.stderr.read().decode(errors="replace")
    assert code == 70, stderr
