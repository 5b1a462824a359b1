"""Tenant queries of the projection store: jobs, trials, datasets, models, idempotency keys.

Every query but ``status_counts`` is scoped by tenant: another tenant's record is simply
absent. Listings are newest first (created_at desc, then id desc) and paged by an opaque
cursor; a malformed cursor raises ``InvalidCursor`` (a ValueError).
"""

from __future__ import annotations

import base64
import json
import sqlite3
from typing import Any, NamedTuple

from tabstream.projection.fold_job import Json
from tabstream.projection.tables import dumps

MAX_LIMIT = 500


class InvalidCursor(ValueError):
    """A listing's cursor that no listing returned."""


class Page(NamedTuple):
    """One page of a listing and the opaque cursor of the next one (None on the last)."""

    items: list[Json]
    next_cursor: str | None


class TenantQueries:
    """Reads of the store open at ``db`` (a connection the store shares with its writes)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def get_job(self, tenant: str, job_id: str) -> Json | None:
        """The job as the API shows it, or None when absent or owned by another tenant."""
        row = self._db.execute(
            "SELECT state FROM jobs WHERE job_id = ? AND tenant = ?", (job_id, tenant)
        ).fetchone()
        return None if row is None else _public_job(json.loads(row[0]))

    def job_owner(self, job_id: str) -> str | None:
        """The tenant owning ``job_id`` (None when unknown)."""
        row = self._db.execute("SELECT tenant FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else str(row[0])

    def list_jobs(
        self,
        tenant: str,
        status: str | None = None,
        dataset_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        """A page of the tenant's jobs, optionally of one status and of one dataset."""
        filters: dict[str, Any] = {"tenant": tenant}
        if status is not None:
            filters["status"] = status
        if dataset_id is not None:
            filters["dataset_id"] = dataset_id
        page = self._page("jobs", "job_id", "state", filters, cursor, limit)
        return Page([_public_job(job) for job in page.items], page.next_cursor)

    def find_idempotent(self, tenant: str, key: str) -> tuple[str, str] | None:
        """(job_id, request_digest) of the tenant's earliest run submitted with ``key``."""
        row = self._db.execute(
            "SELECT job_id, state FROM jobs WHERE tenant = ? AND idempotency_key = ?"
            " ORDER BY created_at, job_id LIMIT 1",
            (tenant, key),
        ).fetchone()
        return None if row is None else (str(row[0]), str(json.loads(row[1])["request_digest"]))

    def job_trials(self, tenant: str, job_id: str) -> list[Json] | None:
        """The job's trials ordered by (row, trial); None when the job is not the tenant's."""
        if self.job_owner(job_id) != tenant:
            return None
        rows = self._db.execute(
            "SELECT data FROM trials WHERE job_id = ? ORDER BY row, trial", (job_id,)
        )
        return [json.loads(data) for (data,) in rows]

    def get_dataset(self, tenant: str, dataset_id: str) -> Json | None:
        """A registered dataset of the tenant, or None."""
        return self._get("datasets", "dataset_id", tenant, dataset_id)

    def list_datasets(self, tenant: str, cursor: str | None = None, limit: int = 50) -> Page:
        """A page of the tenant's datasets."""
        return self._page("datasets", "dataset_id", "data", {"tenant": tenant}, cursor, limit)

    def get_upload(self, tenant: str, upload_id: str) -> Json | None:
        """An upload of the tenant with its ``completion`` (None until bytes were PUT)."""
        upload = self._get("uploads", "upload_id", tenant, upload_id)
        if upload is not None:
            upload["completion"] = self._get("upload_completions", "upload_id", tenant, upload_id)
        return upload

    def get_model(self, tenant: str, model_id: str) -> Json | None:
        """A registered model of the tenant, or None."""
        return self._get("models", "model_id", tenant, model_id)

    def list_models(
        self, tenant: str, job_id: str | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page:
        """A page of the tenant's models, optionally of one job."""
        filters: dict[str, Any] = {"tenant": tenant}
        if job_id is not None:
            filters["job_id"] = job_id
        return self._page("models", "model_id", "data", filters, cursor, limit)

    def status_counts(self) -> dict[str, int]:
        """Number of jobs per status, all tenants (for metrics)."""
        rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    def _get(self, table: str, key: str, tenant: str, value: str) -> Json | None:
        row = self._db.execute(
            f"SELECT data FROM {table} WHERE {key} = ? AND tenant = ?", (value, tenant)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _page(
        self,
        table: str,
        key: str,
        column: str,
        filters: dict[str, Any],
        cursor: str | None,
        limit: int,
    ) -> Page:
        """``limit`` (1 to ``MAX_LIMIT``) rows of ``column`` after ``cursor``."""
        limit = max(1, min(int(limit), MAX_LIMIT))
        query, args = page_query(table, key, column, filters, cursor, limit)
        rows = self._db.execute(query, args).fetchall()
        more = len(rows) > limit
        nxt = encode_cursor(rows[limit - 1][0], rows[limit - 1][1]) if more else None
        return Page([json.loads(r[2]) for r in rows[:limit]], nxt)


def page_query(
    table: str, key: str, column: str, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[str, list[Any]]:
    """SELECT ``column`` of ``table`` by equality ``filters``, newest first, after ``cursor``;
    one row more than ``limit`` (whether another page follows)."""
    where = [f"{name} = ?" for name in filters]
    args: list[Any] = list(filters.values())
    if cursor is not None:
        created_at, last = decode_cursor(cursor)
        where.append(f"(created_at < ? OR (created_at = ? AND {key} < ?))")
        args += [created_at, created_at, last]
    sql = (
        f"SELECT created_at, {key}, {column} FROM {table} WHERE {' AND '.join(where)}"
        f" ORDER BY created_at DESC, {key} DESC LIMIT ?"
    )
    return sql, [*args, limit + 1]


def encode_cursor(created_at: str, key: str) -> str:
    """An opaque cursor pointing just after (created_at, key) in descending order."""
    return base64.urlsafe_b64encode(dumps([created_at, key]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Inverse of ``encode_cursor``; ``InvalidCursor`` on a malformed cursor."""
    try:
        created_at, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("invalid cursor") from exc
    if not isinstance(created_at, str) or not isinstance(key, str):
        raise InvalidCursor("invalid cursor")
    return created_at, key


def _public_job(job: Json) -> Json:
    """A job's state without the fold's bookkeeping (``meta``)."""
    return {k: v for k, v in job.items() if k != "meta"}
