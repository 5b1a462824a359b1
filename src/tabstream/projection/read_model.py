"""The API's read side of the projection: tenant queries of the store, and the service's wait
for a record to be folded.

``ProjectionReadModel`` has the shape of ``producer_api.readmodel.JobReadModel`` (a Protocol:
it matches structurally, the services never import each other); the composition root hands it
to the API. It knows nothing of HTTP: a malformed cursor raises ``InvalidCursor`` (a
ValueError), which the API turns into a 422.
"""

from __future__ import annotations

from tabstream.projection.fold_job import Json
from tabstream.projection.queries import Page
from tabstream.projection.service import ProjectionService
from tabstream.projection.sqlite_store import ProjectionStore
from tabstream.schemas.events import Envelope


class ProjectionReadModel:
    """``JobReadModel`` over the projection's store (queries) and service (wait, lag)."""

    def __init__(self, store: ProjectionStore, service: ProjectionService) -> None:
        self._queries, self._service = store.queries, service

    def get_job(self, tenant: str, job_id: str) -> Json | None:
        """The tenant's job, or None."""
        return self._queries.get_job(tenant, job_id)

    def list_jobs(
        self,
        tenant: str,
        *,
        status: str | None = None,
        dataset_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        """A page of the tenant's jobs, newest first."""
        return self._queries.list_jobs(tenant, status, dataset_id, cursor, limit)

    def job_trials(self, tenant: str, job_id: str) -> list[Json]:
        """The job's trials in (row, trial) order; none when the job is not the tenant's."""
        return self._queries.job_trials(tenant, job_id) or []

    def find_idempotent(self, tenant: str, key: str) -> tuple[str, str] | None:
        """(job_id, request_digest) of the tenant's run submitted with ``key``, if any."""
        return self._queries.find_idempotent(tenant, key)

    def get_dataset(self, tenant: str, dataset_id: str) -> Json | None:
        """The tenant's dataset, or None."""
        return self._queries.get_dataset(tenant, dataset_id)

    def list_datasets(self, tenant: str, *, cursor: str | None = None, limit: int = 50) -> Page:
        """A page of the tenant's datasets, newest first."""
        return self._queries.list_datasets(tenant, cursor, limit)

    def get_upload(self, tenant: str, upload_id: str) -> Json | None:
        """The tenant's upload (with its ``completion``, None while pending), or None."""
        return self._queries.get_upload(tenant, upload_id)

    def get_model(self, tenant: str, model_id: str) -> Json | None:
        """The tenant's model, or None."""
        return self._queries.get_model(tenant, model_id)

    def list_models(self, tenant: str, *, cursor: str | None = None, limit: int = 50) -> Page:
        """A page of the tenant's models, newest first."""
        return self._queries.list_models(tenant, None, cursor, limit)

    async def wait_applied(
        self,
        topic: str,
        partition: int,
        offset: int,
        timeout_s: float,
        envelope: Envelope | None = None,
    ) -> bool:
        """Wait until the record is folded (``ProjectionService.wait_applied``)."""
        return await self._service.wait_applied(topic, partition, offset, timeout_s, envelope)

    async def lag(self) -> int | None:
        """Records published but not yet folded, all partitions together."""
        return sum((await self._service.lag()).values())
