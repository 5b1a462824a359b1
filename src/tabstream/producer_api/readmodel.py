"""What the API needs from the projection, as a Protocol (the API never imports the projection).

``tabstream.projection.ProjectionReadModel`` has its shape; the composition root
(``tabstream.bootstrap.api``) hands one to the API. Every query is scoped by tenant: another
tenant's record is simply absent (-> 404). Records are plain JSON-ready mappings. A listing
given a malformed cursor raises ValueError (-> 422, ``errors.cursor_errors_as_422``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from tabstream.schemas import Envelope

Row = Mapping[str, Any]


class Page(Protocol):
    """One page of a listing and the opaque cursor of the next one (None at the end)."""

    @property
    def items(self) -> Sequence[Row]:
        """The page's records."""
        ...

    @property
    def next_cursor(self) -> str | None:
        """The cursor of the next page (None on the last)."""
        ...


@runtime_checkable
class JobReadModel(Protocol):
    """Read side of the projection, scoped by tenant."""

    def get_job(self, tenant: str, job_id: str) -> Row | None:
        """A job (status, attempts, timestamps, progress, request, results, error) or None."""
        ...

    def list_jobs(
        self,
        tenant: str,
        *,
        status: str | None = None,
        dataset_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        """The tenant's jobs, newest first."""
        ...

    def job_trials(self, tenant: str, job_id: str) -> Sequence[Row]:
        """TrialCompleted payloads of a job, in order."""
        ...

    def find_idempotent(self, tenant: str, key: str) -> tuple[str, str] | None:
        """(job_id, request_digest) of the tenant's run submitted with ``key``, if any."""
        ...

    def get_dataset(self, tenant: str, dataset_id: str) -> Row | None:
        """A dataset (dataset_id, name, rows, columns, sha256, created_at, uri) or None."""
        ...

    def list_datasets(self, tenant: str, *, cursor: str | None = None, limit: int = 50) -> Page:
        """The tenant's datasets."""
        ...

    def get_upload(self, tenant: str, upload_id: str) -> Row | None:
        """An upload (upload_id, file_format, expires_at, created_at, and ``completion``:
        None while no bytes were PUT, else key, size_bytes, sha256, completed_at) or None."""
        ...

    def get_model(self, tenant: str, model_id: str) -> Row | None:
        """A registered model or None."""
        ...

    def list_models(self, tenant: str, *, cursor: str | None = None, limit: int = 50) -> Page:
        """The tenant's models."""
        ...

    async def wait_applied(
        self,
        topic: str,
        partition: int,
        offset: int,
        timeout_s: float,
        envelope: Envelope | None = None,
    ) -> bool:
        """Wait until the record at (topic, partition, offset) is folded; False on timeout.

        ``envelope``: the record's own envelope, when the caller published it; the projection
        may fold it as it is instead of decoding the record's bytes again."""
        ...

    async def lag(self) -> int | None:
        """Records published but not yet folded (None while unknown)."""
        ...
