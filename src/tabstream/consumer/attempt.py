"""One attempt of one job in the worker's child process (started as
``python -m tabstream.bootstrap.child``, which builds the adapters and calls ``run_spec``).

The worker sets CUDA_VISIBLE_DEVICES and the thread budget in this process's environment before
it starts, so nothing here can initialise CUDA on the wrong device. The job spec arrives on
stdin; protocol lines (``consumer.protocol``) go to the original stdout, while ``sys.stdout``
and fd 1 are pointed at stderr so that library prints cannot corrupt the stream.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import IO, Any


def protocol_stream() -> IO[bytes]:
    """Keep the real stdout for the protocol; send everything else printed to stderr."""
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "wb", buffering=0)


class StopFlag:
    """Set by SIGTERM; the pipeline polls it between trials."""

    def __init__(self) -> None:
        self.stopped = False
        signal.signal(signal.SIGTERM, self._set)

    def _set(self, *_: Any) -> None:
        self.stopped = True

    def __call__(self) -> bool:
        return self.stopped


def exit_with_parent() -> None:
    """The worker keeps our stdin open; EOF means it died (even by kill -9): exit at once, so
    no orphan keeps training (and writing the journal) beside the next attempt.

    The watcher reads the raw file descriptor: a thread blocked in ``sys.stdin.buffer.read``
    holds the BufferedReader's lock, and a daemon thread holding that lock when the main thread
    finishes makes interpreter shutdown abort (``Fatal Python error: _enter_buffered_busy``)."""
    fd = sys.stdin.fileno()

    def watch() -> None:
        while os.read(fd, 65536):
            pass
        os._exit(70)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_spec(
    spec: Any,
    out: IO[bytes],
    should_stop: StopFlag,
    artifacts: Any,
    teacher_for: Callable[[Any], Any],
    options: Any = None,
    s3_filesystem: Callable[[], Any] | None = None,
) -> None:
    """Run the pipeline for ``spec`` on ``artifacts`` and write events and the outcome to
    ``out``; ``teacher_for(request)`` builds the run's teacher (ValueError: refused);
    ``options`` are the pipeline's (``pipeline.options.PipelineOptions``, None: defaults).
    A prediction job (``spec.kind == "predict"``) runs ``predict_attempt.run_predict``, which
    reads S3 sources with ``s3_filesystem()``. A completed job's result.json is stored in
    ``artifacts`` before its result line (``job_result``)."""
    if getattr(spec, "kind", "train") == "predict":
        from tabstream.consumer.predict_attempt import run_predict

        run_predict(spec, out, should_stop, artifacts, options, s3_filesystem)
        return
    from uuid import UUID

    from tabstream.consumer.protocol import cancelled_line, error_line, event_line
    from tabstream.pipeline.train import (
        Cancelled,
        DatasetRef,
        PipelineInputError,
        job_completed_event,
        run,
    )
    from tabstream.schemas.run import TrainerRunRequest

    request = TrainerRunRequest.model_validate(spec.request)
    dataset = DatasetRef(UUID(spec.dataset_id), spec.dataset_key)

    def emit(payload: Any) -> None:
        out.write(event_line(payload))

    try:
        teacher = teacher_for(request)
    except ValueError as exc:
        out.write(error_line("invalid_input", str(exc)))
        return
    try:
        result = run(
            request,
            dataset,
            artifacts,
            emit,
            spec.device,
            job_id=UUID(spec.job_id),
            should_stop=should_stop,
            time_budget_s=request.time_budget_s,
            teacher=teacher,
            options=options,
            announced=_announced(spec.announced_trials),
        )
    except Cancelled:
        out.write(cancelled_line())
    except PipelineInputError as exc:
        out.write(error_line(exc.reason, str(exc)))
    except Exception as exc:
        out.write(error_line("training_error", f"{type(exc).__name__}: {exc}"))
    else:
        out.write(_completed_line(artifacts, job_completed_event(result)))


def _completed_line(artifacts: Any, completed: Any) -> bytes:
    """The result line, once the job's result.json is stored (an error line when it cannot be)."""
    from tabstream.consumer.job_result import with_stored_result
    from tabstream.consumer.protocol import error_line, result_line

    try:
        return result_line(with_stored_result(artifacts, completed))
    except Exception as exc:
        return error_line("training_error", f"cannot store result.json: {exc!r}")


def _announced(trials: list[list[int]] | None) -> frozenset[tuple[int, int]] | None:
    """The spec's announced (row, trial) pairs (None on a first attempt)."""
    return None if trials is None else frozenset((row, trial) for row, trial in trials)
