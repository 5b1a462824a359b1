"""Composition root of a job's child process (``python -m tabstream.bootstrap.child``).

The worker starts it with the job spec on stdin; this builds the artifact store (one that stays
unreachable past ``TABSTREAM_S3_RETRY_S`` ends the attempt: ``lose_attempt``), the pipeline's
options (``TABSTREAM_FAMILY_THREADS``, TabICL checkpoints, ``TABSTREAM_DISTILL_*``) and the run's
teacher and, for prediction jobs, the operator's S3 filesystem (``TABSTREAM_S3_ENDPOINT``,
``TABSTREAM_S3_REGION``), then runs one attempt (``consumer.attempt.run_spec``)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import pyarrow.fs as pafs

from tabstream.adapters.artifacts.port import (
    ArtifactNotFound,
    ArtifactStore,
    ArtifactStoreUnavailable,
)
from tabstream.adapters.s3_imports import S3ImportConfig
from tabstream.adapters.teacher import teacher_from_settings
from tabstream.bootstrap.common import build_artifacts, pipeline_options
from tabstream.common.logs import get_logger
from tabstream.consumer.attempt import StopFlag, exit_with_parent, protocol_stream, run_spec
from tabstream.consumer.protocol import JobSpec
from tabstream.pipeline.finish.bundle import load_bundle
from tabstream.pipeline.options import FamilyOptions
from tabstream.pipeline.predict import InProcessTeacher, registered_sha256
from tabstream.pipeline.types import Teacher
from tabstream.schemas.run import TrainerRunRequest
from tabstream.settings import CommonSettings, PipelineSettings, TeacherSettings

_log = get_logger(__name__)
STORE_UNAVAILABLE_EXIT = 75  # EX_TEMPFAIL


def build_teacher(
    request: TrainerRunRequest,
    artifacts: ArtifactStore,
    expected_sha256: str | None = None,
    options: FamilyOptions | None = None,
) -> Teacher | None:
    """The run's teacher, in the worker's child: ``teacher_model_id`` -> the registered model
    in-process (no HTTP self-loop); ``teacher_predict_url`` -> the SSRF-guarded HTTP client
    (``TABSTREAM_TEACHER_*``) with the decrypted headers; None without one. The model bundle is
    verified against ``expected_sha256`` (what its ModelRegistered event recorded) when given,
    and loads with the family ``options``. Raises ValueError (``TeacherRefused``, missing or
    corrupt model) with a clear message."""
    if request.teacher_model_id is not None:
        model_id = str(request.teacher_model_id)
        try:
            digest = expected_sha256 or registered_sha256(artifacts, model_id)
            return InProcessTeacher(load_bundle(artifacts, model_id, digest, options))
        except (FileNotFoundError, ArtifactNotFound):
            raise ValueError(f"teacher model {model_id} is not in the artifact store") from None
    if request.teacher_predict_url is not None:
        url, headers = request.teacher_predict_url, request.teacher_predict_headers
        return teacher_from_settings(url, headers, TeacherSettings())
    return None


def lose_attempt(error: ArtifactStoreUnavailable) -> NoReturn:
    """An artifact store that stays unreachable ends this attempt like a crash (no outcome,
    exit code ``STORE_UNAVAILABLE_EXIT``): the worker reports ``JobInterrupted`` and the next
    attempt resumes from the journal. Raising would let the pipeline take the outage for a
    failed trial or a failed job, which a storage outage is not."""
    _log.error("artifact store unavailable; this attempt is lost", error=str(error)[:500])
    sys.stderr.flush()
    os._exit(STORE_UNAVAILABLE_EXIT)


def main() -> None:
    """Read the spec, build the attempt's adapters, run it, exit 0 (the outcome is in the last
    protocol line)."""
    out = protocol_stream()
    should_stop = StopFlag()
    spec = JobSpec.from_bytes(sys.stdin.buffer.readline())
    exit_with_parent()
    settings = CommonSettings(artifacts_uri=spec.artifacts_uri)
    artifacts = build_artifacts(settings, on_unavailable=lose_attempt)
    options = pipeline_options(PipelineSettings())

    def teacher_for(request: TrainerRunRequest) -> Teacher | None:
        return build_teacher(request, artifacts, spec.teacher_sha256, options.families)

    def s3_filesystem() -> pafs.FileSystem:
        return S3ImportConfig.from_settings(settings.s3_endpoint, settings.s3_region).filesystem()

    run_spec(spec, out, should_stop, artifacts, teacher_for, options, s3_filesystem)
    out.flush()


if __name__ == "__main__":
    main()
